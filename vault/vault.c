/* vault.c - the high-level vault: master keys + derived-key cache + Fernet.
 *
 * Per-user key = PBKDF2-HMAC-SHA256(master secret of version V, user salt, iterations, 32),
 * used as a Fernet key (signing half, encryption half). New tokens are always made under the
 * newest master version; records name their version so old ones decrypt until rewrapped.
 * Derivations go through the key cache (single flight, bounded concurrency). Derived keys
 * leave the cache only into stack buffers here, which are wiped before returning.
 * The iteration floor (VAULT_PBKDF2_MIN_ITERATIONS) is enforced here; only the explicitly
 * named test flag lowers it.
 */
#include "vault/vault_int.h"

#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct vault {
    vault_masterkeys *keys;
    vault_keycache *cache;
    uint32_t iterations;
    atomic_ullong decrypt_ok, decrypt_failed; /* vault_decrypt_counts */
};

const char *vault_strerror(vault_rc rc)
{
    switch (rc) {
    case VAULT_OK:
        return "ok";
    case VAULT_ERR_INVALID_ARG:
        return "invalid argument";
    case VAULT_ERR_NOMEM:
        return "out of memory";
    case VAULT_ERR_TOKEN:
        return "invalid token";
    case VAULT_ERR_CRYPTO:
        return "cryptographic library failure";
    case VAULT_ERR_MASTER_KEY:
        return "invalid master key configuration";
    case VAULT_ERR_UNKNOWN_VERSION:
        return "no master key with that version";
    case VAULT_ERR_IO:
        return "master key file I/O error";
    case VAULT_ERR_PERMISSION:
        return "master key file permissions too open";
    case VAULT_ERR_BUSY:
        return "key derivation busy";
    case VAULT_ERR_WEAK_PARAMS:
        return "PBKDF2 iterations below the minimum";
    }
    return "unknown error";
}

void vault_config_default(vault_config *cfg)
{
    vault_keycache_config kc;

    vault_keycache_config_default(&kc);
    memset(cfg, 0, sizeof(*cfg));
    cfg->iterations = VAULT_PBKDF2_DEFAULT_ITERATIONS;
    cfg->cache_capacity = kc.capacity;
    cfg->cache_ttl_ms = kc.ttl_ms;
    cfg->max_concurrent_derivations = kc.max_concurrent;
    cfg->max_wait_ms = kc.max_wait_ms;
}

static vault_rc derive(void *ctx, int version, const unsigned char *salt, size_t salt_len,
                       unsigned char out[VAULT_KEY_LEN])
{
    const vault *v = ctx;
    size_t mlen = 0;
    const unsigned char *m = vault_masterkeys_lookup(v->keys, version, &mlen);

    if (m == NULL)
        return VAULT_ERR_UNKNOWN_VERSION;
    return vault_pbkdf2_sha256(m, mlen, salt, salt_len, v->iterations, out, VAULT_KEY_LEN);
}

vault_rc vault_create(const vault_config *cfg, vault_masterkeys *keys, vault **out)
{
    vault_keycache_config kc;
    vault *v = NULL;
    vault_rc rc = VAULT_ERR_INVALID_ARG;

    if (cfg == NULL || keys == NULL || out == NULL || vault_masterkeys_count(keys) == 0)
        goto out;
    if (!vault_iterations_ok(cfg->iterations) &&
        !(cfg->unsafe_allow_low_iterations_for_tests && cfg->iterations > 0)) {
        rc = VAULT_ERR_WEAK_PARAMS;
        goto out;
    }
    (void)vault_secure_memory_init(cfg->secure_heap_bytes);
    v = vault_calloc(1, sizeof(*v));
    if (v == NULL) {
        rc = VAULT_ERR_NOMEM;
        goto out;
    }
    v->keys = keys;
    keys = NULL;
    v->iterations = cfg->iterations;
    vault_keycache_config_default(&kc);
    kc.capacity = cfg->cache_capacity ? cfg->cache_capacity : kc.capacity;
    kc.ttl_ms = cfg->cache_ttl_ms;
    kc.max_concurrent = cfg->max_concurrent_derivations ? cfg->max_concurrent_derivations : 1;
    kc.max_wait_ms = cfg->max_wait_ms;
    kc.derive = derive;
    kc.derive_ctx = v;
    kc.clock = cfg->clock;
    kc.clock_ctx = cfg->clock_ctx;
    rc = vault_keycache_create(&kc, &v->cache);
    if (rc != VAULT_OK)
        goto out;
    *out = v;
    v = NULL;
out:
    vault_destroy(v);
    vault_masterkeys_destroy(keys);
    return rc;
}

int vault_current_version(const vault *v)
{
    return v != NULL ? vault_masterkeys_version(v->keys, 0) : 0;
}

static vault_rc user_key(vault *v, int version, const char *user_id, const unsigned char *salt,
                         size_t salt_len, unsigned char key[VAULT_KEY_LEN])
{
    if (vault_masterkeys_lookup(v->keys, version, NULL) == NULL)
        return VAULT_ERR_UNKNOWN_VERSION;
    return vault_keycache_get(v->cache, version, user_id, salt, salt_len, key);
}

vault_rc vault_encrypt_secret(vault *v, const char *user_id, const unsigned char *salt,
                              size_t salt_len, const vault_secret *plaintext, char **token_out,
                              int *version_out)
{
    unsigned char key[VAULT_KEY_LEN];
    int version;
    vault_rc rc;

    if (v == NULL || plaintext == NULL || token_out == NULL || version_out == NULL)
        return VAULT_ERR_INVALID_ARG;
    version = vault_current_version(v);
    rc = user_key(v, version, user_id, salt, salt_len, key);
    if (rc == VAULT_OK)
        rc = vault_fernet_encrypt(key, vault_secret_data(plaintext), vault_secret_len(plaintext),
                                  token_out);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc == VAULT_OK)
        *version_out = version;
    return rc;
}

vault_rc vault_decrypt_secret(vault *v, const char *user_id, const unsigned char *salt,
                              size_t salt_len, int version, const char *token, vault_secret **out,
                              vault_token_reason *reason)
{
    unsigned char key[VAULT_KEY_LEN];
    vault_rc rc;

    if (reason != NULL)
        *reason = VAULT_REASON_NONE;
    if (v == NULL || token == NULL || out == NULL)
        return VAULT_ERR_INVALID_ARG;
    rc = user_key(v, version, user_id, salt, salt_len, key);
    if (rc == VAULT_OK)
        rc = vault_fernet_decrypt(key, token, strlen(token), 0, out, reason);
    OPENSSL_cleanse(key, sizeof(key));
    atomic_fetch_add_explicit(rc == VAULT_OK ? &v->decrypt_ok : &v->decrypt_failed, 1,
                              memory_order_relaxed);
    return rc;
}

vault_rc vault_rewrap(vault *v, const char *user_id, const unsigned char *salt, size_t salt_len,
                      int old_version, const char *old_token, char **new_token_out,
                      int *new_version_out, vault_token_reason *reason)
{
    vault_secret *pt = NULL;
    vault_rc rc;

    if (new_token_out == NULL || new_version_out == NULL)
        return VAULT_ERR_INVALID_ARG;
    rc = vault_decrypt_secret(v, user_id, salt, salt_len, old_version, old_token, &pt, reason);
    if (rc == VAULT_OK)
        rc = vault_encrypt_secret(v, user_id, salt, salt_len, pt, new_token_out, new_version_out);
    vault_secret_destroy(pt);
    return rc;
}

void vault_decrypt_counts(vault *v, uint64_t *ok, uint64_t *failed)
{
    *ok = v ? atomic_load_explicit(&v->decrypt_ok, memory_order_relaxed) : 0;
    *failed = v ? atomic_load_explicit(&v->decrypt_failed, memory_order_relaxed) : 0;
}

void vault_keycache_stats_of(vault *v, vault_keycache_stats *out)
{
    if (v != NULL)
        vault_keycache_stats_get(v->cache, out);
}

void vault_destroy(vault *v)
{
    if (v == NULL)
        return;
    vault_keycache_destroy(v->cache);
    vault_masterkeys_destroy(v->keys);
    OPENSSL_cleanse(v, sizeof(*v));
    free(v);
}
