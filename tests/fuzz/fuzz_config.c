/*
 * fuzz_config - tradewinkd's configuration table (tw_config_load): every TW_* value's parser
 * (integers with bounds, enums, booleans, host:port, files) and the cross-field rules.
 * The input is split on NUL bytes; the k-th piece is the value of the k-th variable the loader
 * asks for (the table order), a piece that is exactly "\xff" leaves that variable unset, and
 * variables past the last piece are unset (their defaults apply).
 * Properties: a load with no errors gives in-range integers and a loopback listen address
 * unless TLS is configured; tw_config_free leaves nothing behind (LeakSanitizer).
 */
#include "fuzz.h"

#include <string.h>

#include "config/config.h"

#define MAX_PIECES 64

static const char *pieces[MAX_PIECES];
static size_t npieces, next_piece;

static const char *lookup(const char *name)
{
    (void)name;
    if (next_piece >= npieces)
        return NULL;
    const char *v = pieces[next_piece++];
    return strcmp(v, "\xff") == 0 ? NULL : v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = fuzz_strndup(data, size);
    tw_config cfg;
    npieces = next_piece = 0;
    for (size_t start = 0; start <= size && npieces < MAX_PIECES;) {
        pieces[npieces++] = buf + start;
        start += strlen(buf + start) + 1;
    }
    int bad = tw_config_load(&cfg, lookup, fuzz_devnull());
    FUZZ_CHECK(bad >= 0);
    if (bad == 0) {
        FUZZ_CHECK(cfg.auth_mode >= 0 && cfg.auth_mode <= TW_AUTH_PEM);
        FUZZ_CHECK(cfg.workers >= 0 && cfg.workers <= 256);
        FUZZ_CHECK(cfg.pbkdf2_iterations >= 600000);
        FUZZ_CHECK(cfg.max_message_bytes >= 1024);
        FUZZ_CHECK(cfg.sim_enabled == 0 || cfg.sim_enabled == 1);
        if (cfg.listen && !cfg.tls_cert_file)
            FUZZ_CHECK(tw_config_addr_is_loopback(cfg.listen));
        if (cfg.auth_mode == TW_AUTH_JWKS)
            FUZZ_CHECK(cfg.jwks_url && strncmp(cfg.jwks_url, "https://", 8) == 0);
    }
    tw_config_free(&cfg);
    free(buf);
    return 0;
}
