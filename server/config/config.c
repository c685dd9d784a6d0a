/*
 * The configuration table. One row per TW_* variable: name, type, offset into tw_config,
 * bounds, default, whether it is secret, and help text. Loading walks the table once, then
 * cross-field rules run (TLS pairs, auth mode needs, loopback-only plaintext). Secret values
 * are never echoed in errors or help. Strings are heap copies owned by the config.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/checkpoint.h"
#include "brokers/broker.h"
#include "core/log.h"
#include "core/netaddr.h"
#include "edge/ratelimit.h"
#include "edge/webhook.h"
#include "risk/risk.h"
#include "vault/vault.h"

typedef enum { T_STR, T_INT, T_ENUM, T_ADDR, T_FILE, T_BOOL } field_type;

typedef struct {
    const char *name;
    field_type type;
    size_t offset;
    long min, max;
    const char *def;            /* textual default; NULL = unset */
    const char *const *choices; /* T_ENUM: NULL-terminated, index is the stored value */
    int secret;
    const char *help;
} field;

static const char *const auth_modes[] = {"dev", "jwks", "pem", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

#define F(n) offsetof(tw_config, n)
static const field fields[] = {
    {"TW_LISTEN", T_ADDR, F(listen), 0, 0, "127.0.0.1:50051", NULL, 0,
     "gRPC listen address host:port. Plaintext is allowed only on loopback."},
    {"TW_OPS_LISTEN", T_ADDR, F(ops_listen), 0, 0, "127.0.0.1:9090", NULL, 0,
     "Ops HTTP address (health, metrics, webhooks)."},
    {"TW_DATABASE_URL", T_STR, F(database_url), 0, 0, "sqlite:./tradewink.db", NULL, 1,
     "Store: sqlite:PATH or postgres://... (use sslmode=verify-full for remote hosts)."},
    {"TW_REDIS_URL", T_STR, F(redis_url), 0, 0, NULL, NULL, 1,
     "redis://host:port/db for shared rate limits; unset = in-process limiter."},
    {"TW_AUTH_MODE", T_ENUM, F(auth_mode), 0, 0, "dev", auth_modes, 0,
     "Token verification: dev (local signing key), jwks, pem."},
    {"TW_JWKS_URL", T_STR, F(jwks_url), 0, 0, NULL, NULL, 0,
     "JWKS endpoint (https://) for jwks mode."},
    {"TW_JWKS_CA_FILE", T_FILE, F(jwks_ca_file), 0, 0, NULL, NULL, 0,
     "CA bundle to trust for the JWKS endpoint; unset = system store."},
    {"TW_JWT_PUBLIC_KEY_FILE", T_FILE, F(jwt_public_key_file), 0, 0, NULL, NULL, 0,
     "RSA public key PEM for pem mode."},
    {"TW_JWT_ISSUER", T_STR, F(jwt_issuer), 0, 0, NULL, NULL, 0,
     "Required iss claim (dev mode default: tradewink-dev)."},
    {"TW_JWT_AUDIENCE", T_STR, F(jwt_audience), 0, 0, NULL, NULL, 0,
     "Accepted aud/azp values, comma-separated; unset = not checked."},
    {"TW_JWT_ROLE_CLAIM", T_STR, F(jwt_role_claim), 0, 0, "role", NULL, 0,
     "Claim holding the role (user|admin; missing = user)."},
    {"TW_JWT_CLOCK_SKEW_S", T_INT, F(jwt_clock_skew_s), 0, 300, "5", NULL, 0,
     "Allowed clock skew for exp/nbf in seconds."},
    {"TW_JWKS_CACHE_TTL_S", T_INT, F(jwks_cache_ttl_s), 10, 86400, "300", NULL, 0,
     "How long fetched JWKS keys are fresh."},
    {"TW_DEV_KEY_FILE", T_STR, F(dev_key_file), 0, 0, "./tradewink-dev-key.pem", NULL, 0,
     "Dev signing key (RSA PEM), created 0600 if missing."},
    {"TW_VAULT_MASTER_KEYS", T_STR, F(vault_master_keys), 0, 0, NULL, NULL, 1,
     "Vault master secrets v2:BASE64,v1:BASE64 (newest first, >= 32 bytes each)."},
    {"TW_VAULT_MASTER_KEY_FILE", T_STR, F(vault_master_key_file), 0, 0, "./tradewink-master-keys",
     NULL, 0, "Dev mode only: master key file generated 0600 when TW_VAULT_MASTER_KEYS is unset."},
    {"TW_PBKDF2_ITERATIONS", T_INT, F(pbkdf2_iterations), 600000, 10000000, "600000", NULL, 0,
     "PBKDF2-HMAC-SHA256 iterations per user key (never below 600000)."},
    {"TW_TLS_CERT_FILE", T_FILE, F(tls_cert_file), 0, 0, NULL, NULL, 0,
     "Server certificate chain PEM (enables TLS)."},
    {"TW_TLS_KEY_FILE", T_FILE, F(tls_key_file), 0, 0, NULL, NULL, 0, "Server private key PEM."},
    {"TW_TLS_CLIENT_CA_FILE", T_FILE, F(tls_client_ca_file), 0, 0, NULL, NULL, 0,
     "CA for client certificates: when set, clients must present one (mTLS)."},
    {"TW_WEBHOOK_SECRETS", T_STR, F(webhook_secrets), 0, 0, NULL, NULL, 1,
     "source:whsec_...[ whsec_...],... ; a source without a secret refuses every request."},
    {"TW_VAULT_SEALING_KEYS", T_STR, F(vault_sealing_keys), 0, 0, NULL, NULL, 1,
     "P-256 keys clients seal broker secrets to (KeyVault.GetSealingKey): v2:BASE64,"
     "v1:BASE64@UNTIL (newest first; each the base64 of a 32-byte private scalar; an older "
     "key opens sealed secrets until Unix second UNTIL). Unset = no sealed submission."},
    {"TW_REQUIRE_SEALED_KEYS", T_BOOL, F(require_sealed_keys), 0, 1, "0", NULL, 0,
     "1 = PutBrokerKey accepts only sealed secrets (needs TW_VAULT_SEALING_KEYS)."},
    {"TW_AUDIT_SIGNING_KEYS", T_STR, F(audit_signing_keys), 0, 0, NULL, NULL, 1,
     "Ed25519 keys that sign audit checkpoints: v2:BASE64,v1:BASE64 (newest first; each the "
     "base64 of a 32-byte private key; older versions only verify). Unset = no checkpoints."},
    {"TW_AUDIT_CHECKPOINT_INTERVAL_S", T_INT, F(audit_checkpoint_interval_s), 0, 86400, "300", NULL,
     0,
     "How often (seconds) every audit chain whose head moved gets a signed checkpoint, stored "
     "and logged (event audit_checkpoint); 0 = only on demand (Audit.CreateCheckpoint)."},
    {"TW_WORKERS", T_INT, F(workers), 0, 256, "0", NULL, 0,
     "Completion-queue threads (0 = one per core); blocking handlers run on four executor threads "
     "per worker."},
    {"TW_LOG_LEVEL", T_ENUM, F(log_level), 0, 0, "info", log_levels, 0,
     "Minimum log level: debug, info, warn, error."},
    {"TW_MAX_MESSAGE_BYTES", T_INT, F(max_message_bytes), 1024, 16 << 20, "1048576", NULL, 0,
     "Largest request message accepted; larger ones get RESOURCE_EXHAUSTED."},
    {"TW_SHUTDOWN_GRACE_MS", T_INT, F(shutdown_grace_ms), 0, 600000, "5000", NULL, 0,
     "On SIGTERM: how long in-flight calls may finish before they are cancelled."},
    {"TW_BROKER", T_STR, F(broker), 0, 0, "sim", NULL, 0,
     "Default broker for users without a stored key: sim (paper) or alpaca."},
    {"TW_SIM_ENABLED", T_BOOL, F(sim_enabled), 0, 1, "1", NULL, 0,
     "Serve the built-in sim exchange and its admin Sim service (0 in production)."},
    {"TW_SECTOR_MAP_FILE", T_FILE, F(sector_map_file), 0, 0, NULL, NULL, 0,
     "CSV sector map (Symbol,...,GICS Sector); unset = the built-in S&P 500 map."},
    {"TW_ALPACA_BASE_URL", T_STR, F(alpaca_base_url), 0, 0, NULL, NULL, 0,
     "Alpaca API base URL override (https://, or http:// to loopback for a test stub); unset = "
     "the paper or live URL by key environment."},
    {"TW_ALPACA_INTERFACE", T_STR, F(alpaca_interface), 0, 0, NULL, NULL, 0,
     "Outbound interface or source address for broker calls (a static egress IP), e.g. "
     "host!203.0.113.7."},
    {"TW_ALPACA_DATA_URL", T_STR, F(alpaca_data_url), 0, 0, "https://data.alpaca.markets", NULL, 0,
     "Alpaca Market Data API v2 base URL: the reference (last trade) price for orders placed "
     "through alpaca (https://, or http:// to loopback for a test stub)."},
    {"TW_ALPACA_DATA_FEED", T_STR, F(alpaca_data_feed), 0, 0, "iex", NULL, 0,
     "Market data feed for the latest-trade request: iex (free plans), sip, delayed_sip ..."},
    {"TW_ALPACA_REQUESTS_PER_MIN", T_INT, F(alpaca_requests_per_min), 0, 100000, "180", NULL, 0,
     "Alpaca request budget per account (Alpaca allows 200/min): polling and marks never take "
     "the last quarter, so the trader's submits and cancels find room; 0 = none. With "
     "TW_REDIS_URL every replica draws on one bucket there; while Redis is down, each its own."},
    {"TW_REF_PRICE_MAX_AGE_S", T_INT, F(ref_price_max_age_s), 1, 86400, "60", NULL, 0,
     "Oldest broker last trade (seconds) used as an order's reference price; an older one is "
     "refused as stale (no reference price). While the NYSE session is closed a stock's trade "
     "from the latest session counts as current; crypto always uses this age."},
    {"TW_MARK_INTERVAL_S", T_INT, F(mark_interval_s), 1, 3600, "60", NULL, 0,
     "How often (seconds) an account at a real broker that holds positions is marked to market "
     "during the NYSE regular session: one account request per user, the peak raised and the "
     "daily-loss and drawdown breakers tripped and saved at that moment."},
    {"TW_MARK_CLOSED_INTERVAL_S", T_INT, F(mark_closed_interval_s), 1, 86400, "900", NULL, 0,
     "The same mark while the NYSE session is closed (extended hours and crypto still move "
     "equity, more slowly than the request budget needs)."},
    {"TW_LEDGER_VERIFY", T_BOOL, F(ledger_verify), 0, 1, "0", NULL, 0,
     "Check each user's cached trading state against a fresh read of the database before a "
     "decision uses it; a difference is logged (event ledger_drift) and the database's copy is "
     "used. For tests and diagnosis: it costs the reads the cache saves."},
    {"TW_LEDGER_READ_MAX_AGE_MS", T_INT, F(ledger_read_max_age_ms), 0, 60000, "1000", NULL, 0,
     "Reads of a warm account (Risk.GetState, Orders.GetAccountSettings) are answered from "
     "memory, without the database, while what they answer from was confirmed by the database "
     "at most this long ago; this process's own changes show at once, another replica's within "
     "this age. 0 = every read asks the database."},
    {"TW_RATE_AUTH_FAIL", T_STR, F(rate_auth_fail), 0, 0, "10/min", NULL, 0,
     "Failed authentications per peer address: N/s|N/min|N/<ms>ms[:burst]."},
    {"TW_RATE_KEY_SUBMIT", T_STR, F(rate_key_submit), 0, 0, "5/min", NULL, 0,
     "Broker key submissions and tests per user."},
    {"TW_RATE_ORDERS", T_STR, F(rate_orders), 0, 0, "10/s:20", NULL, 0,
     "Order calls (submit, confirm, cancel) per user."},
    {"TW_RATE_API", T_STR, F(rate_api), 0, 0, "50/s:100", NULL, 0,
     "Every other authenticated call per user."},
    {"TW_RATE_PUBLIC", T_STR, F(rate_public), 0, 0, "100/s:200", NULL, 0,
     "Unauthenticated calls (health, reflection, dev tokens) per peer address."},
    {"TW_TRUSTED_FRONTS", T_STR, F(trusted_fronts), 0, 0, NULL, NULL, 0,
     "IP addresses (comma-separated, at most 8) of the HTTP/2 front (deploy/haproxy) as "
     "tradewinkd sees it, e.g. 127.0.0.1. A call from one of them is attributed to the client "
     "its single x-forwarded-for header names (the front sets it from the connection and drops "
     "any the client sent): per-peer rate limits and logs see that address. From any other "
     "peer, or when unset, the header is ignored."},
};
#undef F

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static char **str_slot(tw_config *cfg, const field *f)
{
    return (char **)((char *)cfg + f->offset);
}

static int *int_slot(tw_config *cfg, const field *f)
{
    return (int *)((char *)cfg + f->offset);
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* host:port, host may be [v6]; port 0..65535 (0 = pick a free port, for tests). */
static int valid_addr(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return 0;
    long port;
    if (parse_long(colon + 1, &port) != 0 || port < 0 || port > 65535)
        return 0;
    if (s[0] == '[')
        return colon[-1] == ']';
    return memchr(s, ':', (size_t)(colon - s)) == NULL;
}

int tw_config_addr_is_loopback(const char *addr)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return 0;
    size_t n = (size_t)(colon - addr);
    if (n >= sizeof(host))
        return 0;
    memcpy(host, addr, n);
    host[n] = '\0';
    if (strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
        return 1;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return 0;
}

static int set_field(tw_config *cfg, const field *f, const char *v, FILE *err)
{
    long n;
    switch (f->type) {
    case T_STR:
    case T_ADDR:
    case T_FILE:
        if (f->type == T_ADDR && !valid_addr(v)) {
            fprintf(err, "%s: '%s' is not host:port (port 0-65535)\n", f->name, v);
            return 1;
        }
        if (f->type == T_FILE && access(v, R_OK) != 0) {
            fprintf(err, "%s: cannot read file '%s': %s\n", f->name, v, strerror(errno));
            return 1;
        }
        if (*v == '\0' && f->type != T_STR) {
            fprintf(err, "%s: empty value\n", f->name);
            return 1;
        }
        free(*str_slot(cfg, f));
        *str_slot(cfg, f) = strdup(v);
        if (!*str_slot(cfg, f)) {
            fprintf(err, "%s: out of memory\n", f->name);
            return 1;
        }
        return 0;
    case T_INT:
        if (parse_long(v, &n) != 0) {
            fprintf(err, "%s: '%s' is not an integer\n", f->name, v);
            return 1;
        }
        if (n < f->min || n > f->max) {
            fprintf(err, "%s: %ld is out of range [%ld, %ld]\n", f->name, n, f->min, f->max);
            return 1;
        }
        *int_slot(cfg, f) = (int)n;
        return 0;
    case T_BOOL:
        if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
            *int_slot(cfg, f) = 1;
        } else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0) {
            *int_slot(cfg, f) = 0;
        } else {
            fprintf(err, "%s: '%s' is not a boolean (1, 0, true, false)\n", f->name, v);
            return 1;
        }
        return 0;
    case T_ENUM:
        for (int i = 0; f->choices[i]; i++) {
            if (strcmp(v, f->choices[i]) == 0) {
                *int_slot(cfg, f) = i;
                return 0;
            }
        }
        fprintf(err, "%s: '%s' is not one of:", f->name, v);
        for (int i = 0; f->choices[i]; i++)
            fprintf(err, " %s", f->choices[i]);
        fputc('\n', err);
        return 1;
    }
    return 1;
}

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

/* The largest sector map file read (trading.c reads the same). */
#define SECTOR_MAP_MAX (4 << 20)

/* Values whose shape only their own parser knows, each checked by that parser now, before
 * anything is opened, so one start reports them all (the parsers' messages never quote a
 * secret). */
static int check_values(const tw_config *c, FILE *err)
{
    int bad = 0;
    char why[256];
    const struct {
        const char *name, *value;
    } rates[] = {
        {"TW_RATE_AUTH_FAIL", c->rate_auth_fail}, {"TW_RATE_KEY_SUBMIT", c->rate_key_submit},
        {"TW_RATE_ORDERS", c->rate_orders},       {"TW_RATE_API", c->rate_api},
        {"TW_RATE_PUBLIC", c->rate_public},
    };
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        edge_rl_rule rule;
        why[0] = '\0';
        if (rates[i].value && edge_rl_rule_parse(rates[i].value, &rule, why, sizeof(why)) != 0) {
            fprintf(err, "%s: %s\n", rates[i].name, why);
            bad++;
        }
    }
    if (c->webhook_secrets) {
        edge_wh *wh = edge_wh_create(NULL);
        why[0] = '\0';
        if (!wh || edge_wh_load_env(wh, c->webhook_secrets, why, sizeof(why)) != 0) {
            size_t n = strlen(why);
            while (n && why[n - 1] == '\n') /* one bad entry per line: the last ends the text */
                why[--n] = '\0';
            fprintf(err, "TW_WEBHOOK_SECRETS: %s\n", wh ? why : "out of memory");
            bad++;
        }
        edge_wh_destroy(wh);
    }
    if (c->vault_master_keys) {
        vault_masterkeys *mk = NULL;
        why[0] = '\0';
        vault_rc rc = vault_masterkeys_parse(c->vault_master_keys, strlen(c->vault_master_keys),
                                             &mk, why, sizeof(why));
        if (rc != VAULT_OK) {
            fprintf(err, "TW_VAULT_MASTER_KEYS: %s\n", why[0] ? why : vault_strerror(rc));
            bad++;
        }
        vault_masterkeys_destroy(mk);
    }
    if (c->sector_map_file) {
        FILE *f = fopen(c->sector_map_file, "rb");
        char *buf = f ? malloc(SECTOR_MAP_MAX + 1) : NULL;
        size_t len = buf ? fread(buf, 1, SECTOR_MAP_MAX + 1, f) : 0;
        risk_sector_map *map = NULL;
        why[0] = '\0';
        if (!f || !buf) {
            fprintf(err, "TW_SECTOR_MAP_FILE: cannot read '%s'\n", c->sector_map_file);
            bad++;
        } else if (len > SECTOR_MAP_MAX) {
            fprintf(err, "TW_SECTOR_MAP_FILE: '%s' is larger than %d bytes\n", c->sector_map_file,
                    SECTOR_MAP_MAX);
            bad++;
        } else if (risk_sectors_parse(buf, len, &map, why, sizeof(why)) != 0) {
            fprintf(err, "TW_SECTOR_MAP_FILE: %s\n", why);
            bad++;
        }
        risk_sectors_destroy(map);
        free(buf);
        if (f)
            fclose(f);
    }
    return bad;
}

/* Rules that involve more than one field. */
static int check_cross(const tw_config *c, FILE *err)
{
    int bad = 0;
    int tls = c->tls_cert_file || c->tls_key_file;
    if ((c->tls_cert_file == NULL) != (c->tls_key_file == NULL)) {
        fprintf(err, "TW_TLS_CERT_FILE and TW_TLS_KEY_FILE must be set together\n");
        bad++;
    }
    if (c->tls_client_ca_file && !tls) {
        fprintf(err, "TW_TLS_CLIENT_CA_FILE needs TW_TLS_CERT_FILE and TW_TLS_KEY_FILE\n");
        bad++;
    }
    if (c->listen && !tls && !tw_config_addr_is_loopback(c->listen)) {
        fprintf(err,
                "TW_LISTEN: refusing plaintext gRPC on non-loopback address '%s'; "
                "set TW_TLS_CERT_FILE and TW_TLS_KEY_FILE\n",
                c->listen);
        bad++;
    }
    if (c->auth_mode == TW_AUTH_DEV && c->listen && !tw_config_addr_is_loopback(c->listen)) {
        fprintf(err,
                "TW_AUTH_MODE: dev mode is refused on non-loopback address '%s'; "
                "use jwks or pem\n",
                c->listen);
        bad++;
    }
    if (c->auth_mode == TW_AUTH_JWKS) {
        if (!c->jwks_url) {
            fprintf(err, "TW_JWKS_URL: required when TW_AUTH_MODE=jwks\n");
            bad++;
        } else if (strncmp(c->jwks_url, "https://", 8) != 0) {
            fprintf(err, "TW_JWKS_URL: must be an https:// URL\n");
            bad++;
        }
    }
    if (c->auth_mode == TW_AUTH_PEM && !c->jwt_public_key_file) {
        fprintf(err, "TW_JWT_PUBLIC_KEY_FILE: required when TW_AUTH_MODE=pem\n");
        bad++;
    }
    if (c->auth_mode != TW_AUTH_DEV && !c->vault_master_keys) {
        fprintf(err, "TW_VAULT_MASTER_KEYS: required outside dev mode\n");
        bad++;
    }
    if (c->audit_signing_keys) {
        audit_signer *signer = NULL;
        char why[128];
        if (audit_signer_parse(c->audit_signing_keys, &signer, why, sizeof(why)) != 0) {
            fprintf(err, "TW_AUDIT_SIGNING_KEYS: %s\n", why);
            bad++;
        }
        audit_signer_destroy(signer);
    }
    if (c->vault_sealing_keys) {
        vault_sealer *sealer = NULL;
        char why[128];
        if (vault_sealer_parse(c->vault_sealing_keys, &sealer, why, sizeof(why)) != VAULT_OK) {
            fprintf(err, "TW_VAULT_SEALING_KEYS: %s\n", why);
            bad++;
        }
        vault_sealer_destroy(sealer);
    }
    if (c->require_sealed_keys && !c->vault_sealing_keys) {
        fprintf(err, "TW_REQUIRE_SEALED_KEYS: needs TW_VAULT_SEALING_KEYS\n");
        bad++;
    }
    if (c->database_url && strncmp(c->database_url, "sqlite:", 7) != 0 &&
        strncmp(c->database_url, "postgres://", 11) != 0 &&
        strncmp(c->database_url, "postgresql://", 13) != 0) {
        fprintf(err, "TW_DATABASE_URL: must start with sqlite:, postgres:// or postgresql://\n");
        bad++;
    }
    if (c->redis_url && strncmp(c->redis_url, "rediss://", 9) == 0) {
        fprintf(err, "TW_REDIS_URL: rediss:// is not supported by this build's hiredis; run "
                     "stunnel in client mode on loopback and use redis://127.0.0.1:PORT "
                     "(see deploy/CONFIG.md)\n");
        bad++;
    } else if (c->redis_url && strncmp(c->redis_url, "redis://", 8) != 0) {
        fprintf(err, "TW_REDIS_URL: must start with redis://\n");
        bad++;
    }
    static const char *const url_vars[] = {"TW_ALPACA_BASE_URL", "TW_ALPACA_DATA_URL"};
    const char *urls[] = {c->alpaca_base_url, c->alpaca_data_url};
    for (size_t i = 0; i < 2; i++) {
        if (urls[i] && !brk_alpaca_url_ok(urls[i])) {
            fprintf(err,
                    "%s: must be https://host[:port] (http:// only to 127.0.0.1, localhost "
                    "or [::1]), without credentials, path or query\n",
                    url_vars[i]);
            bad++;
        }
    }
    if (c->alpaca_data_feed && !brk_alpaca_feed_ok(c->alpaca_data_feed)) {
        fprintf(err, "TW_ALPACA_DATA_FEED: 1..16 chars of [a-z0-9_] (e.g. iex, sip)\n");
        bad++;
    }
    tw_ip fronts[TW_MAX_TRUSTED_FRONTS];
    size_t nfronts;
    if (c->trusted_fronts &&
        tw_ip_list_parse(c->trusted_fronts, fronts, TW_MAX_TRUSTED_FRONTS, &nfronts) != 0) {
        fprintf(err,
                "TW_TRUSTED_FRONTS: must be 1-%d IP addresses separated by commas "
                "(no ports, no host names)\n",
                TW_MAX_TRUSTED_FRONTS);
        bad++;
    }
    if (c->broker && strcmp(c->broker, "sim") != 0 && strcmp(c->broker, "alpaca") != 0) {
        fprintf(err, "TW_BROKER: '%s' is not one of: sim alpaca\n", c->broker);
        bad++;
    }
    if (c->broker && strcmp(c->broker, "sim") == 0 && !c->sim_enabled) {
        fprintf(err, "TW_BROKER: sim needs TW_SIM_ENABLED=1\n");
        bad++;
    }
    return bad;
}

int tw_config_load(tw_config *cfg, const char *(*lookup)(const char *name), FILE *err)
{
    int bad = 0;
    if (!lookup)
        lookup = env_lookup;
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &fields[i];
        const char *v = lookup(f->name);
        int from_env = v != NULL;
        if (!v)
            v = f->def;
        if (!v)
            continue;
        if (set_field(cfg, f, v, err) != 0) {
            if (!from_env)
                fprintf(err, "%s: (built-in default failed validation)\n", f->name);
            bad++;
        }
    }
    bad += check_values(cfg, err);
    if (bad == 0)
        bad += check_cross(cfg, err);
    return bad;
}

/* Edit distance with adjacent transpositions (optimal string alignment), names <= 63 bytes. */
static size_t name_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63)
        return SIZE_MAX;
    size_t d[64][64];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

int tw_config_is_setting(const char *name)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(fields[i].name, name) == 0)
            return 1;
    return 0;
}

const char *tw_config_nearest(const char *name)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < NFIELDS; i++) {
        size_t d = name_distance(name, fields[i].name);
        if (d < best_d) {
            best_d = d;
            best = fields[i].name;
        }
    }
    /* Close enough to be a typo: at most 3 edits, and fewer than a third of the name. */
    return best && best_d <= 3 && best_d * 3 < strlen(name) ? best : NULL;
}

void tw_config_free(tw_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &fields[i];
        if (f->type == T_STR || f->type == T_ADDR || f->type == T_FILE) {
            char **slot = str_slot(cfg, f);
            if (*slot && f->secret)
                memset(*slot, 0, strlen(*slot));
            free(*slot);
            *slot = NULL;
        }
    }
}

static const char *type_name(const field *f)
{
    switch (f->type) {
    case T_STR:
        return "string";
    case T_INT:
        return "integer";
    case T_ENUM:
        return "choice";
    case T_ADDR:
        return "host:port";
    case T_FILE:
        return "file";
    case T_BOOL:
        return "boolean";
    }
    return "?";
}

void tw_config_print_help(FILE *out)
{
    fprintf(out,
            "usage: tradewinkd [--help] [--config-markdown] [--audit-public-keys]\n\n"
            "  --audit-public-keys  print the public keys of TW_AUDIT_SIGNING_KEYS (vN:BASE64\n"
            "                       lines, for twctl audit verify --public-keys) and exit\n\n"
            "Configuration comes from the environment (all optional; the defaults give\n"
            "the embedded mode: SQLite, in-process limiter, dev auth, sim broker,\n"
            "loopback):\n\n");
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &fields[i];
        fprintf(out, "  %-26s %s\n", f->name, f->help);
        fprintf(out, "  %-26s (%s; default: %s)\n", "", type_name(f), f->def ? f->def : "unset");
    }
}

void tw_config_print_markdown(FILE *out)
{
    fprintf(out, "| variable | type | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &fields[i];
        fprintf(out, "| `%s` | %s", f->name, type_name(f));
        if (f->type == T_INT)
            fprintf(out, " [%ld, %ld]", f->min, f->max);
        if (f->type == T_ENUM) {
            fprintf(out, " (");
            for (int k = 0; f->choices[k]; k++)
                fprintf(out, "%s%s", k ? ", " : "", f->choices[k]);
            fprintf(out, ")");
        }
        fprintf(out, " | %s%s%s | ", f->def ? "`" : "", f->def ? f->def : "unset",
                f->def ? "`" : "");
        for (const char *h = f->help; *h; h++) {
            if (*h == '|')
                fputc('\\', out); /* a literal bar inside a Markdown table cell */
            fputc(*h, out);
        }
        fprintf(out, "%s |\n", f->secret ? " **Secret.**" : "");
    }
}
