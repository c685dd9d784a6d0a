/* vault_int.h - internals shared by the vault sources and the vault unit tests. Not for the server.
 */
#ifndef VAULT_VAULT_INT_H
#define VAULT_VAULT_INT_H

#include "vault/vault.h"

#include <stddef.h>
#include <stdint.h>

/* ---- allocation: one wrapper so tests can fail the Nth allocation ------------------------- */
void *vault_malloc(size_t n);
void *vault_calloc(size_t n, size_t size);
/* Test hook: the nth allocation from now (1 = the next) fails; 0 disables. */
void vault_test_fail_alloc_after(long n);

/* ---- secret buffer internals ------------------------------------------------------------ */
/* A zeroed secret of len bytes to be filled in place via vault_secret_mut. */
vault_rc vault_secret_new(size_t len, vault_secret **out);
unsigned char *vault_secret_mut(vault_secret *s);
/* Shrinks the visible length (wiping the tail); new_len <= current length. */
void vault_secret_truncate(vault_secret *s, size_t new_len);

/* ---- base64 ------------------------------------------------------------------------------ */
/* Encoded length including padding, without NUL. */
size_t vault_b64_encoded_len(size_t n);
/* Encodes with '=' padding into out (vault_b64_encoded_len(n) + 1 bytes), NUL terminated.
 * url != 0 uses the url-safe alphabet. */
void vault_b64_encode(const unsigned char *in, size_t n, int url, char *out);
/* Strict decoder. url: 1 = url-safe alphabet only, 0 = standard only, 2 = either.
 * require_pad: padding mandatory (length % 4 == 0) else optional. Non-canonical trailing bits
 * are refused. out must hold len / 4 * 3 + 3 bytes. Returns 0 and *out_len, or -1. */
int vault_b64_decode(const char *in, size_t len, int url, int require_pad, unsigned char *out,
                     size_t *out_len);

/* ---- secure memory ----------------------------------------------------------------------- */
/* Zeroed key memory: OpenSSL secure heap when initialised, else locked never-dumped pages. */
void *vault_smem_alloc(size_t n);
/* Wipes and frees memory from vault_smem_alloc. NULL is a no-op. */
void vault_smem_free(void *p, size_t n);
/* 1 if p came from locked or secure memory. */
int vault_smem_is_secure(const void *p);
/* The fallback path on its own (mmap + mlock + MADV_DONTDUMP), for tests. *locked tells
 * whether mlock succeeded. Free with vault_smem_page_free. */
void *vault_smem_page_alloc(size_t n, int *locked);
void vault_smem_page_free(void *p, size_t n);

/* ---- primitives (exposed for the Wycheproof vectors) ------------------------------------ */
/* AES-CBC with PKCS#7; key_len 16, 24 or 32. Encrypt: *out malloc'd (free()). Decrypt: out
 * must hold n + 16 bytes and is wiped on failure. Decrypt failures
 * (bad padding, bad length) return VAULT_ERR_TOKEN. */
vault_rc vault_aes_cbc_encrypt(const unsigned char *key, size_t key_len, const unsigned char iv[16],
                               const unsigned char *in, size_t n, unsigned char **out,
                               size_t *out_len);
vault_rc vault_aes_cbc_decrypt(const unsigned char *key, size_t key_len, const unsigned char iv[16],
                               const unsigned char *in, size_t n, unsigned char *out,
                               size_t *out_len);
vault_rc vault_hmac_sha256(const unsigned char *key, size_t key_len, const unsigned char *msg,
                           size_t n, unsigned char out[32]);
/* Constant-time check of a possibly truncated tag (1 <= tag_len <= 32). 1 valid, 0 not. */
int vault_hmac_sha256_verify(const unsigned char *key, size_t key_len, const unsigned char *msg,
                             size_t n, const unsigned char *tag, size_t tag_len);

/* Master key lookup for vault.c: borrowed bytes of version, or NULL. */
const unsigned char *vault_masterkeys_lookup(const vault_masterkeys *mk, int version, size_t *len);

#endif
