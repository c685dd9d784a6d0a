/*
 * auth_int.h - internals of server/auth shared between its files and its tests: strict
 * base64url, RSA key checks and JWK parsing, immutable refcounted key sets, the compact-JWS
 * signature layer (no claim checks), the JWKS source and the verified-token cache.
 * Not for use outside server/auth and tests/auth.
 */
#ifndef TW_AUTH_INT_H
#define TW_AUTH_INT_H

#include "auth.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_KID_MAX 128
#define AUTH_RSA_MIN_BITS 2048
#define AUTH_RSA_MAX_BITS 8192
#define AUTH_JWKS_MAX_BYTES (256 * 1024)
#define AUTH_JWKS_MAX_KEYS 64

/* ---- strict base64url (RFC 7515 section 2: no padding, canonical trailing bits) ---- */
size_t auth_b64url_encoded_len(size_t n);
/* Writes auth_b64url_encoded_len(n) characters and a NUL into out. */
void auth_b64url_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly len characters. -1 on '=', any character outside [A-Za-z0-9_-], a length
 * of 1 mod 4, non-zero unused trailing bits, or output larger than cap. */
int auth_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* ---- algorithms ---- */
typedef enum {
    AUTH_ALG_RS256 = 0,
    AUTH_ALG_RS384,
    AUTH_ALG_RS512,
    AUTH_ALG_PS256,
    AUTH_ALG_PS384,
    AUTH_ALG_PS512,
    AUTH_ALG_COUNT
} auth_alg;
#define AUTH_ALG_BIT(a) (1u << (a))
/* Parses "RS256,PS256" into a mask. -1 on an unknown or forbidden (none, HS*) name. */
int auth_algs_parse(const char *list, unsigned *mask);
/* -1 when name is not a supported asymmetric alg. */
int auth_alg_from_name(const char *name);

/* SHA-256/384/512 (bits = 256, 384, 512) with digests fetched once per process: the one-shot
 * SHA256() of OpenSSL 3 re-fetches the algorithm (and takes a global lock) on every call.
 * Returns the digest length, or 0. */
size_t auth_digest(int bits, const void *in, size_t len, uint8_t *out);

/* ---- keys ---- */
/* Checks an RSA public key: 2048..8192 bits, odd public exponent > 1, no ROCA fingerprint.
 * Returns 0, or -1 with a static reason. */
int auth_rsa_key_check(EVP_PKEY *pkey, const char **reason);
/* RFC 7638 thumbprint of an RSA key into out (44 bytes incl. NUL). 0 or -1. */
int auth_rsa_thumbprint(EVP_PKEY *pkey, char out[44]);

typedef struct auth_ctx_pool auth_ctx_pool;

typedef struct {
    char kid[AUTH_KID_MAX + 1];
    EVP_PKEY *pkey;      /* NULL when the key was refused at load */
    const char *refused; /* static reason when pkey == NULL */
    unsigned algs;       /* algorithms this key may verify (its `alg` member, if any) */
    auth_ctx_pool *pool; /* reusable verify contexts, one stack per alg */
} auth_key;

/* Immutable after creation (the context pools have their own lock); shared by refcount. */
typedef struct {
    atomic_int refs;
    int kid_optional; /* PEM/dev: a single key, a token without kid may use it */
    size_t n;
    auth_key *keys;
} auth_keyset;

/* Parses a JWK Set (RFC 7517) with duplicate JSON keys rejected. The whole set is refused when
 * it is not an object with a "keys" array, holds private key members, or repeats a kid. Keys
 * that are not RSA, not for signing (use/key_ops) or of an alg outside algs are skipped; RSA
 * keys failing auth_rsa_key_check are kept as refused entries so a token naming them gets the
 * precise reason. Returns a keyset with refs = 1, or NULL + static reason. */
auth_keyset *auth_keyset_from_jwks(const char *json, size_t len, unsigned algs,
                                   const char **reason);
/* One-key set taking ownership of pkey (freed on failure too). kid NULL = its thumbprint. */
auth_keyset *auth_keyset_from_pkey(EVP_PKEY *pkey, const char *kid, const char **reason);
void auth_keyset_ref(auth_keyset *ks);
void auth_keyset_unref(auth_keyset *ks); /* NULL is a no-op */
/* The key named kid (NULL when kid_optional and there is one key), or NULL. */
const auth_key *auth_keyset_find(const auth_keyset *ks, const char *kid);
/* A verify context for (k, alg) from the key's pool (or a new one); give it back with
 * auth_key_ctx_release. NULL on OpenSSL failure. */
EVP_PKEY_CTX *auth_key_ctx_acquire(const auth_key *k, int alg);
void auth_key_ctx_release(const auth_key *k, int alg, EVP_PKEY_CTX *ctx);
/* Reads an RSA public key PEM file (SPKI or PKCS#1). NULL + reason. Caller frees. */
EVP_PKEY *auth_pem_public_load(const char *path, const char **reason);

/* ---- compact JWS layer ---- */
typedef struct {
    const char *token;   /* borrowed */
    size_t header_len;   /* bytes of the header segment */
    size_t signing_len;  /* bytes of "header.payload" */
    const char *payload; /* borrowed, base64url */
    size_t payload_len;
    int alg;
    char kid[AUTH_KID_MAX + 1];
    int has_kid;
    uint8_t sig[AUTH_RSA_MAX_BITS / 8];
    size_t sig_len;
} auth_jws;

/* Remembers headers (exact base64url text -> alg, kid) that led to a valid signature, so the
 * repeated header of a provider's tokens is not JSON-parsed on every call. Bounded,
 * round-robin replacement, mutex inside. */
typedef struct auth_hdr_cache auth_hdr_cache;
auth_hdr_cache *auth_hdr_cache_create(void);
void auth_hdr_cache_destroy(auth_hdr_cache *c);
void auth_hdr_cache_put(auth_hdr_cache *c, const auth_jws *jws);

/* Splits and checks structure and header: exactly three segments, canonical base64url, header
 * an object with unique keys, alg in algs (none/HS* named as such), no crit/jku/x5u/jwk/x5c,
 * kid (if present) a string of 1..128 visible characters. 0 or -1 + reason. */
int auth_jws_parse(const char *token, size_t len, unsigned algs, auth_jws *jws,
                   const char **reason);
/* The same, consulting hc first for the header (hc may be NULL). */
int auth_jws_parse_cached(auth_hdr_cache *hc, const char *token, size_t len, unsigned algs,
                          auth_jws *jws, const char **reason);
/* EVP verification of jws's signature with key. 0 or -1 + reason. */
int auth_jws_check_signature(const auth_key *key, const auth_jws *jws, const char **reason);
/* Decodes the payload into malloc'd *out (NUL-terminated). 0 or -1 + reason. */
int auth_jws_payload(const auth_jws *jws, char **out, size_t *outlen, const char **reason);
/* parse + find + check_signature + payload against a fixed key set: the signature layer alone,
 * without any claim (used for JWS test vectors whose payload is not a JWT claim set). */
int auth_jws_verify_keyset(const auth_keyset *ks, const char *token, unsigned algs,
                           char **payload_out, size_t *payload_len, const char **reason);
/* Signs header/payload JSON text with an RSA private key; *out malloc'd. 0 or -1. */
int auth_jws_sign(EVP_PKEY *priv, int alg, const char *header_json, const char *payload_json,
                  char **out);

/* ---- JWKS source ---- */
typedef struct auth_jwks auth_jwks;
typedef struct {
    const char *url, *ca_file;
    unsigned algs;
    int ttl_s, min_refetch_s, max_stale_s, timeout_ms, background;
    int64_t (*clock)(void *arg);
    void *clock_arg;
} auth_jwks_opts;
auth_jwks *auth_jwks_create(const auth_jwks_opts *o, char *err, size_t errlen);
void auth_jwks_destroy(auth_jwks *j);
/* A referenced key set that should contain kid, fetching first when the cache is missing the
 * kid (rate-limited, single flight) or expired. NULL + reason when no usable set exists. */
auth_keyset *auth_jwks_get(auth_jwks *j, const char *kid, int64_t now, const char **reason);
/* Changes whenever the served key set changes (for the token cache); 0 while the set is past
 * its TTL or absent, so no cached token is served until auth_jwks_get has refreshed it. */
uint64_t auth_jwks_generation(auth_jwks *j, int64_t now);
void auth_jwks_counters(auth_jwks *j, uint64_t *fetches, uint64_t *failures);

/* The dev key's public half as a one-key set whose kid (the thumbprint) tokens must carry. */
auth_keyset *auth_devkey_keyset(const auth_devkey *k, const char **reason);

/* The dev key's private key, borrowed (tests and the benchmark sign with it). */
EVP_PKEY *auth_devkey_pkey(const auth_devkey *k);
/* {"kty":"RSA","kid":kid,"n":..,"e":..} for pkey's public half; malloc'd, caller frees. */
char *auth_rsa_jwk_json(EVP_PKEY *pkey, const char *kid);

/* ---- test seam ---- */
/* A verifier over a fixed key set instead of cfg->mode's source (takes ownership of ks, also on
 * failure); claims are checked exactly as in every other mode. Tests only. */
auth_verifier *auth_verifier_create_static(const auth_config *cfg, auth_keyset *ks, char *err,
                                           size_t errlen);

/* ---- verified-token cache ---- */
typedef struct auth_cache auth_cache;
auth_cache *auth_cache_create(size_t entries); /* NULL when entries == 0 or no memory */
void auth_cache_destroy(auth_cache *c);
/* 1 and *out on a live entry (now <= exp + skew, same non-zero key generation), else 0. */
int auth_cache_get(auth_cache *c, const uint8_t key[32], uint64_t gen, int64_t now, int skew,
                   auth_principal *out);
void auth_cache_put(auth_cache *c, const uint8_t key[32], uint64_t gen, const auth_principal *p);
void auth_cache_flush(auth_cache *c);

#endif
