/* crypto.c - the primitives under Fernet and key derivation: AES-CBC/PKCS#7, HMAC-SHA256,
 * PBKDF2-HMAC-SHA256, all through OpenSSL's EVP layer.
 *
 * Kept in one small file so the Wycheproof vectors can test each primitive on its own and the
 * Fernet code reads as the spec's steps. Key schedules live in EVP contexts, which OpenSSL
 * wipes when they are freed. MAC comparison is CRYPTO_memcmp (constant time).
 */
#include "vault/vault_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>

static const EVP_CIPHER *aes_cbc(size_t key_len)
{
    switch (key_len) {
    case 16:
        return EVP_aes_128_cbc();
    case 24:
        return EVP_aes_192_cbc();
    case 32:
        return EVP_aes_256_cbc();
    default:
        return NULL;
    }
}

vault_rc vault_aes_cbc_encrypt(const unsigned char *key, size_t key_len, const unsigned char iv[16],
                               const unsigned char *in, size_t n, unsigned char **out,
                               size_t *out_len)
{
    const EVP_CIPHER *cipher = aes_cbc(key_len);
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *buf = NULL;
    int l1 = 0, l2 = 0;
    vault_rc rc = VAULT_ERR_CRYPTO;

    if (cipher == NULL || key == NULL || iv == NULL || out == NULL || out_len == NULL ||
        (in == NULL && n > 0) || n > (size_t)INT32_MAX - 32)
        return VAULT_ERR_INVALID_ARG;
    buf = vault_malloc(n / 16 * 16 + 16);
    ctx = EVP_CIPHER_CTX_new();
    if (buf == NULL || ctx == NULL) {
        rc = VAULT_ERR_NOMEM;
        goto out;
    }
    if (EVP_EncryptInit_ex(ctx, cipher, NULL, key, iv) != 1 ||
        EVP_EncryptUpdate(ctx, buf, &l1, in, (int)n) != 1 ||
        EVP_EncryptFinal_ex(ctx, buf + l1, &l2) != 1)
        goto out;
    *out = buf;
    *out_len = (size_t)l1 + (size_t)l2;
    buf = NULL;
    rc = VAULT_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    free(buf);
    return rc;
}

vault_rc vault_aes_cbc_decrypt(const unsigned char *key, size_t key_len, const unsigned char iv[16],
                               const unsigned char *in, size_t n, unsigned char *out,
                               size_t *out_len)
{
    const EVP_CIPHER *cipher = aes_cbc(key_len);
    EVP_CIPHER_CTX *ctx = NULL;
    int l1 = 0, l2 = 0;
    vault_rc rc = VAULT_ERR_TOKEN;

    if (cipher == NULL || key == NULL || iv == NULL || out == NULL || out_len == NULL ||
        n > (size_t)INT32_MAX)
        return VAULT_ERR_INVALID_ARG;
    if (n == 0 || n % 16 != 0)
        return VAULT_ERR_TOKEN;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return VAULT_ERR_NOMEM;
    if (EVP_DecryptInit_ex(ctx, cipher, NULL, key, iv) != 1) {
        rc = VAULT_ERR_CRYPTO;
        goto out;
    }
    if (EVP_DecryptUpdate(ctx, out, &l1, in, (int)n) != 1 ||
        EVP_DecryptFinal_ex(ctx, out + l1, &l2) != 1) {
        OPENSSL_cleanse(out, n); /* never leave a partially decrypted block behind */
        goto out;
    }
    *out_len = (size_t)l1 + (size_t)l2;
    rc = VAULT_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

vault_rc vault_hmac_sha256(const unsigned char *key, size_t key_len, const unsigned char *msg,
                           size_t n, unsigned char out[32])
{
    static const unsigned char empty[1] = {0};
    unsigned int len = 0;

    if (key == NULL || out == NULL || (msg == NULL && n > 0) || key_len > INT32_MAX)
        return VAULT_ERR_INVALID_ARG;
    if (HMAC(EVP_sha256(), key, (int)key_len, msg != NULL ? msg : empty, n, out, &len) == NULL ||
        len != 32)
        return VAULT_ERR_CRYPTO;
    return VAULT_OK;
}

int vault_hmac_sha256_verify(const unsigned char *key, size_t key_len, const unsigned char *msg,
                             size_t n, const unsigned char *tag, size_t tag_len)
{
    unsigned char mac[32];
    int ok;

    if (tag == NULL || tag_len == 0 || tag_len > sizeof(mac))
        return 0;
    if (vault_hmac_sha256(key, key_len, msg, n, mac) != VAULT_OK)
        return 0;
    ok = CRYPTO_memcmp(mac, tag, tag_len) == 0;
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok;
}

int vault_iterations_ok(uint32_t n)
{
    return n >= VAULT_PBKDF2_MIN_ITERATIONS;
}

vault_rc vault_pbkdf2_sha256(const void *password, size_t password_len, const void *salt,
                             size_t salt_len, uint32_t iterations, unsigned char *out,
                             size_t out_len)
{
    static const unsigned char empty[1] = {0};

    if (out == NULL || out_len == 0 || iterations == 0 || iterations > INT32_MAX ||
        (password == NULL && password_len > 0) || (salt == NULL && salt_len > 0) ||
        password_len > INT32_MAX || salt_len > INT32_MAX || out_len > INT32_MAX)
        return VAULT_ERR_INVALID_ARG;
    if (PKCS5_PBKDF2_HMAC(password != NULL ? password : (const void *)empty, (int)password_len,
                          salt != NULL ? salt : empty, (int)salt_len, (int)iterations, EVP_sha256(),
                          (int)out_len, out) != 1) {
        OPENSSL_cleanse(out, out_len);
        return VAULT_ERR_CRYPTO;
    }
    return VAULT_OK;
}
