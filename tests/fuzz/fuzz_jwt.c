/*
 * fuzz_jwt - bearer JWT verification (auth_verify): bearer syntax, compact JWS split, header
 * policy, signature and, for signed inputs, every claim check.
 *
 * Byte 0 selects the mode; the rest is mode data:
 *   bit 0 clear: the rest is a token checked by a PEM-mode verifier whose key (TEST_PUBLIC_PEM,
 *                a fixed throwaway key) is written to a temp file at first use. "Bearer " is
 *                prepended unless bit 1 is set (then the rest is the whole header value).
 *   bit 0 set:   the rest is "header-json NUL claims-json" (no NUL: the claims, with a default
 *                RS256 header); the target signs it with a key generated at start, so random
 *                claim sets get past the signature and exercise the claim checks.
 * Properties: AUTH_OK gives a non-empty NUL-terminated subject and a known role; a refusal
 * gives a reason and a zeroed principal. Time is fixed, the token cache is off, so an input
 * always gives the same answer.
 */
#include "fuzz.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "auth_int.h"

#define NOW INT64_C(1700000000)

/* Public half of a key made for this target only (its private half was used once to sign the
 * seed tokens in corpus/fuzz_jwt and then discarded). */
static const char TEST_PUBLIC_PEM[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA4RwgrPem8zbkOHq66BDG\n"
    "r8zplwm9XDzUYD4QWH0p5FV/RRV1R82/4Znb0VKuZArL49i2D4AZgao2qWKzFeCL\n"
    "efcL3HMpfYQ+WKmVZevrNahk0pYCZY31793lZrwT6W4TkDkcBWW0eXtSzoRchTGh\n"
    "JvmQIdrYAnsp/KPMehZN/KreWNyCXYBYvPbXN9JHnQG1vrytHRdf/8EId9f6OnWb\n"
    "/DLXJhH9uoQdGIFj8oWpFXaeoe5PgFnhnNjw8YHTWo8MBP01mgq3uXGT1iXSSCSe\n"
    "IH6BFgKUiNPvSpY8TdKWAUCktcgm1XOdUKZUlSvrwiZRFFf7npcq+Bo/n4UrzaqQ\n"
    "mwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static void base_config(auth_config *cfg)
{
    auth_config_defaults(cfg);
    cfg->issuer = "https://issuer.fuzz.test";
    cfg->audience = "tradewink,twctl";
    cfg->cache_entries = 0;
    cfg->jwks_background = 0;
}

static auth_verifier *pem_verifier(void)
{
    static auth_verifier *v;
    if (v)
        return v;
    char path[] = "/tmp/tw-fuzz-jwt-XXXXXX";
    char err[256] = "";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, TEST_PUBLIC_PEM, sizeof(TEST_PUBLIC_PEM) - 1) !=
                      (ssize_t)(sizeof(TEST_PUBLIC_PEM) - 1))
        abort();
    close(fd);
    auth_config cfg;
    base_config(&cfg);
    cfg.mode = AUTH_MODE_PEM;
    cfg.public_key_file = path;
    v = auth_verifier_create(&cfg, err, sizeof(err));
    unlink(path);
    if (!v) {
        fprintf(stderr, "fuzz_jwt: pem verifier: %s\n", err);
        abort();
    }
    return v;
}

static EVP_PKEY *signing_key;

static auth_verifier *signed_verifier(void)
{
    static auth_verifier *v;
    if (v)
        return v;
    char err[256] = "";
    const char *why = NULL;
    auth_config cfg;
    if (!(signing_key = EVP_RSA_gen(2048)) || EVP_PKEY_up_ref(signing_key) != 1)
        abort();
    auth_keyset *ks = auth_keyset_from_pkey(signing_key, NULL, &why);
    if (!ks)
        abort();
    base_config(&cfg);
    cfg.mode = AUTH_MODE_PEM;
    cfg.role_claim = "app.role"; /* exercises the dotted claim walk */
    if (!(v = auth_verifier_create_static(&cfg, ks, err, sizeof(err)))) {
        fprintf(stderr, "fuzz_jwt: static verifier: %s\n", err);
        abort();
    }
    return v;
}

static void check(auth_verifier *v, const char *value)
{
    auth_principal p;
    const char *reason = NULL;
    memset(&p, 0xa5, sizeof(p));
    auth_result r = auth_verify(v, value, NOW, &p, &reason);
    if (r == AUTH_OK) {
        size_t n = strnlen(p.subject, sizeof(p.subject));
        FUZZ_CHECK(n > 0 && n < sizeof(p.subject));
        FUZZ_CHECK(p.role == AUTH_ROLE_USER || p.role == AUTH_ROLE_ADMIN);
    } else {
        static const auth_principal zero;
        FUZZ_CHECK(r == AUTH_UNAUTHENTICATED);
        FUZZ_CHECK(reason != NULL && reason[0] != '\0');
        FUZZ_CHECK(memcmp(&p, &zero, sizeof(p)) == 0);
    }
}

/* "Bearer " + data[0..size) as a C string (malloc'd). */
static char *bearer(const char *tok, size_t size)
{
    static const char prefix[] = "Bearer ";
    char *s = malloc(sizeof(prefix) + size);
    if (!s)
        abort();
    memcpy(s, prefix, sizeof(prefix) - 1);
    memcpy(s + sizeof(prefix) - 1, tok, size);
    s[sizeof(prefix) - 1 + size] = '\0';
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    char *rest = fuzz_strndup(data + 1, size - 1), *value = NULL, *tok = NULL;
    if (!(mode & 1)) {
        auth_verifier *v = pem_verifier();
        if (mode & 2) {
            check(v, rest);
        } else {
            value = bearer(rest, strlen(rest));
            check(v, value);
        }
    } else {
        auth_verifier *v = signed_verifier();
        const char *header = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", *claims = rest;
        const char *nul = memchr(data + 1, 0, size - 1);
        if (nul) {
            header = rest;
            claims = rest + (nul - (const char *)(data + 1)) + 1;
        }
        if (auth_jws_sign(signing_key, AUTH_ALG_RS256, header, claims, &tok) == 0) {
            value = bearer(tok, strlen(tok));
            check(v, value);
        }
    }
    free(rest);
    free(value);
    free(tok);
    return 0;
}
