/*
 * auth.h - bearer JWT verification (RS256 against a JWKS, a static PEM or the dev key) and
 * dev-token minting. No gRPC types: the interceptor passes the raw `authorization` metadata
 * value in and gets a principal (or one generic failure plus a precise log reason) out.
 *
 * Threading: an auth_verifier is safe to share between threads once created; auth_verify may
 * be called concurrently. An auth_devkey is immutable after load and equally shareable.
 * Clock: every time-dependent call takes `now` (seconds since the epoch) so tests can fix it;
 * the JWKS background refresher uses auth_config.clock (NULL = time()).
 */
#ifndef TW_AUTH_H
#define TW_AUTH_H

#include <stddef.h>
#include <stdint.h>

typedef enum { AUTH_ROLE_USER = 1, AUTH_ROLE_ADMIN = 2 } auth_role;

typedef enum {
    AUTH_MODE_DEV = 0, /* local RSA key in dev_key_file, created if missing */
    AUTH_MODE_JWKS,    /* keys fetched from jwks_url (https only), cached, refreshed */
    AUTH_MODE_PEM      /* one static public key from public_key_file */
} auth_mode;

/* Only two outcomes reach the caller; the reason string says which check failed. */
typedef enum {
    AUTH_OK = 0,
    AUTH_UNAUTHENTICATED = 1 /* map to gRPC UNAUTHENTICATED with one generic message */
} auth_result;

typedef struct {
    char subject[256]; /* the `sub` claim, NUL-terminated, never empty */
    auth_role role;
    int64_t expires_at; /* `exp` */
    int64_t issued_at;  /* `iat`, 0 when the token has none */
} auth_principal;

/* Every pointer member is borrowed during auth_verifier_create only (copied inside). Zero or
 * NULL members take the documented defaults; start from auth_config_defaults(). */
typedef struct auth_config {
    auth_mode mode;
    const char *jwks_url;        /* JWKS: must start with https:// */
    const char *jwks_ca_file;    /* JWKS: CA bundle; NULL = system store */
    const char *public_key_file; /* PEM: SPKI ("PUBLIC KEY") or PKCS#1 ("RSA PUBLIC KEY") */
    const char *issuer;          /* required `iss`; NULL = any (dev: "tradewink-dev") */
    const char *audience;        /* comma list of accepted `aud`/`azp`; NULL = not checked */
    const char *dev_key_file;    /* DEV: default "./tradewink-dev-key.pem" */
    const char *role_claim;      /* default "role"; dots walk into objects ("meta.role") */
    const char *algorithms;      /* comma allow-list; default "RS256"; none/HS* always refused */
    int clock_skew_s;            /* default 5 */
    int jwks_cache_ttl_s;        /* default 300 */
    int jwks_min_refetch_s;      /* default 30: floor between fetches caused by requests */
    int jwks_max_stale_s;        /* default 86400: serve cached keys this long past ttl */
    int jwks_timeout_ms;         /* default 3000: whole fetch, connect included */
    int jwks_background;         /* 1 (default): refresher thread; 0: refresh on demand */
    size_t max_token_bytes;      /* default 8192 */
    size_t cache_entries;        /* verified-token cache size; default 4096; 0 = off */
    int64_t (*clock)(void *arg); /* background refresher clock; NULL = time() */
    void *clock_arg;
} auth_config;

/* Fills *cfg with the defaults above (mode DEV). */
void auth_config_defaults(auth_config *cfg);

typedef struct auth_verifier auth_verifier;

/* Builds a verifier. DEV loads or creates the key file; PEM loads the key; JWKS does one
 * synchronous fetch, and a failed first fetch is not fatal (keys come later) unless the URL or
 * CA are unusable. Returns NULL with a message in err (never a secret) on failure.
 * Caller owns the result: auth_verifier_destroy. */
auth_verifier *auth_verifier_create(const auth_config *cfg, char *err, size_t errlen);

/* Stops the refresher thread and frees everything. NULL is a no-op. */
void auth_verifier_destroy(auth_verifier *v);

/* Verifies one `authorization` metadata value ("Bearer <jwt>", the scheme in any case; may
 * be NULL). On AUTH_OK fills *out. On failure *out is zeroed and *reason (if reason != NULL) points
 * to a static string naming the failed check; it never contains any part of the token. */
auth_result auth_verify(auth_verifier *v, const char *authorization_value, int64_t now,
                        auth_principal *out, const char **reason);

/* auth_verify's answer when it is one the verified-token cache holds (AUTH_OK, *out filled);
 * otherwise AUTH_UNAUTHENTICATED without verifying anything, counting nothing: the caller then
 * runs auth_verify. Never blocks (no JWKS fetch, no signature check). */
auth_result auth_verify_cached(auth_verifier *v, const char *authorization_value, int64_t now,
                               auth_principal *out);

/* Mints an RS256 dev token with the verifier's dev key (DEV mode only), iss = configured issuer
 * or "tradewink-dev". *token_out is malloc'd, caller frees. Returns 0, or -1 (bad argument or
 * not in DEV mode). */
int auth_mint_dev_token(const auth_verifier *v, const char *sub, auth_role role, int64_t ttl_s,
                        int64_t now, char **token_out);

/* Counters for metrics and tests; a snapshot, taken without stopping verification. */
typedef struct {
    uint64_t jwks_fetches; /* attempts, successful or not */
    uint64_t jwks_fetch_failures;
    uint64_t cache_hits;
    uint64_t cache_misses;
} auth_stats;
void auth_verifier_stats(auth_verifier *v, auth_stats *out);

/* Drops every verified-token cache entry (tests, key compromise). */
void auth_verifier_flush_cache(auth_verifier *v);

/* ---- dev key, usable without a verifier (twctl dev-token) ---- */
typedef struct auth_devkey auth_devkey;

/* Loads the RSA private key at path (PKCS#8 or PKCS#1 PEM, >= 2048 bits), or creates a
 * 2048-bit one there (PKCS#8, mode 0600, written atomically: a concurrent creator's key wins).
 * Caller owns the result: auth_devkey_destroy. NULL + err on failure. */
auth_devkey *auth_devkey_load_or_create(const char *path, char *err, size_t errlen);
void auth_devkey_destroy(auth_devkey *k);

/* RFC 7638 thumbprint (base64url SHA-256), used as `kid`. Borrowed; lives as long as k. */
const char *auth_devkey_kid(const auth_devkey *k);

/* Mints {"alg":"RS256","kid":thumbprint,"typ":"JWT"} . {iss,sub,role,iat,exp}. issuer NULL =
 * "tradewink-dev". sub: 1..255 bytes, no control characters. ttl_s: 1..31 days.
 * *token_out malloc'd, caller frees. Returns 0 or -1. */
int auth_devkey_mint(const auth_devkey *k, const char *issuer, const char *sub, auth_role role,
                     int64_t ttl_s, int64_t now, char **token_out);

/* "user" / "admin" / NULL for an unknown role. */
const char *auth_role_name(auth_role role);

#endif
