/* fernet.c - Fernet tokens exactly as the Fernet spec (version 0x80).
 *
 * token = base64url(0x80 | timestamp (u64 big endian) | IV (16) | AES-128-CBC(PKCS#7) | HMAC)
 * with HMAC-SHA256 under the signing key (first 16 key bytes) over everything before it and
 * AES under the encryption key (last 16 bytes). Base64 is url-safe with '=' padding, as
 * Python's cryptography writes it.
 *
 * Verification order (the spec's, plus structure checks on public data first): size cap,
 * strict base64url, version byte, minimum length, ciphertext block multiple, TTL, clock skew,
 * then the MAC in constant time, and only then AES-CBC decryption and unpadding. Every failure
 * is VAULT_ERR_TOKEN to the caller; the precise reason goes to an optional out-parameter that
 * callers may log but must not return (no padding or MAC oracle). The clock-skew check
 * (tokens more than 60 s in the future) applies even without a TTL.
 */
#include "vault/vault_int.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define F_VERSION 0x80
#define F_HDR (1 + 8 + 16) /* version, timestamp, IV */
#define F_MAC 32
#define F_MIN (F_HDR + 16 + F_MAC)

const char *vault_token_reason_str(vault_token_reason r)
{
    switch (r) {
    case VAULT_REASON_NONE:
        return "ok";
    case VAULT_REASON_TOO_LONG:
        return "token longer than the size cap";
    case VAULT_REASON_BASE64:
        return "token is not canonical padded base64url";
    case VAULT_REASON_TOO_SHORT:
        return "token shorter than the minimum";
    case VAULT_REASON_VERSION:
        return "unknown version byte";
    case VAULT_REASON_EXPIRED:
        return "token older than the TTL";
    case VAULT_REASON_FUTURE:
        return "token timestamp too far in the future";
    case VAULT_REASON_BLOCK_SIZE:
        return "ciphertext not a multiple of the block size";
    case VAULT_REASON_MAC:
        return "HMAC mismatch";
    case VAULT_REASON_PADDING:
        return "bad padding after decryption";
    case VAULT_REASON_INTERNAL:
        return "internal error";
    }
    return "unknown";
}

vault_rc vault_fernet_encrypt_at(const unsigned char key[VAULT_KEY_LEN], const void *msg,
                                 size_t msg_len, uint64_t now, const unsigned char iv[16],
                                 char **token_out)
{
    unsigned char *ct = NULL, *raw = NULL;
    size_t ct_len = 0, raw_len, i;
    char *tok = NULL;
    vault_rc rc;

    if (key == NULL || iv == NULL || token_out == NULL || (msg == NULL && msg_len > 0))
        return VAULT_ERR_INVALID_ARG;
    rc = vault_aes_cbc_encrypt(key + 16, 16, iv, msg, msg_len, &ct, &ct_len);
    if (rc != VAULT_OK)
        goto out;
    raw_len = F_HDR + ct_len + F_MAC;
    raw = vault_malloc(raw_len);
    tok = vault_malloc(vault_b64_encoded_len(raw_len) + 1);
    if (raw == NULL || tok == NULL) {
        rc = VAULT_ERR_NOMEM;
        goto out;
    }
    raw[0] = F_VERSION;
    for (i = 0; i < 8; i++)
        raw[1 + i] = (unsigned char)(now >> (56 - 8 * i));
    memcpy(raw + 9, iv, 16);
    memcpy(raw + F_HDR, ct, ct_len);
    rc = vault_hmac_sha256(key, 16, raw, F_HDR + ct_len, raw + F_HDR + ct_len);
    if (rc != VAULT_OK)
        goto out;
    vault_b64_encode(raw, raw_len, 1, tok);
    *token_out = tok;
    tok = NULL;
out:
    free(ct);
    free(raw);
    free(tok);
    return rc;
}

/* The exact wall clock: time(NULL) reads the kernel's coarse clock, up to a tick behind. */
static int64_t fernet_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec;
}

vault_rc vault_fernet_encrypt(const unsigned char key[VAULT_KEY_LEN], const void *msg,
                              size_t msg_len, char **token_out)
{
    unsigned char iv[16];
    int64_t now = fernet_now();

    if (now < 0)
        return VAULT_ERR_CRYPTO;
    if (RAND_bytes(iv, sizeof(iv)) != 1)
        return VAULT_ERR_CRYPTO;
    return vault_fernet_encrypt_at(key, msg, msg_len, (uint64_t)now, iv, token_out);
}

vault_rc vault_fernet_decrypt_at(const unsigned char key[VAULT_KEY_LEN], const char *token,
                                 size_t token_len, int64_t ttl_s, uint64_t now, vault_secret **out,
                                 vault_token_reason *reason)
{
    unsigned char *raw = NULL;
    size_t raw_len = 0, ct_len, pt_len = 0, i;
    uint64_t ts = 0;
    vault_secret *pt = NULL;
    vault_token_reason why = VAULT_REASON_INTERNAL;
    vault_rc rc = VAULT_ERR_TOKEN;

    if (key == NULL || token == NULL || out == NULL)
        return VAULT_ERR_INVALID_ARG;
    if (token_len > VAULT_FERNET_MAX_TOKEN) {
        why = VAULT_REASON_TOO_LONG;
        goto out;
    }
    raw = vault_malloc(token_len / 4 * 3 + 3);
    if (raw == NULL) {
        rc = VAULT_ERR_NOMEM;
        goto out;
    }
    if (vault_b64_decode(token, token_len, 1, 1, raw, &raw_len) != 0) {
        why = VAULT_REASON_BASE64;
        goto out;
    }
    if (raw_len < 1) {
        why = VAULT_REASON_TOO_SHORT;
        goto out;
    }
    if (raw[0] != F_VERSION) {
        why = VAULT_REASON_VERSION;
        goto out;
    }
    if (raw_len < F_MIN) {
        /* a short token whose ciphertext is not whole blocks is reported as the latter */
        why = raw_len > F_HDR + F_MAC && (raw_len - F_HDR - F_MAC) % 16 != 0
                  ? VAULT_REASON_BLOCK_SIZE
                  : VAULT_REASON_TOO_SHORT;
        goto out;
    }
    ct_len = raw_len - F_HDR - F_MAC;
    if (ct_len % 16 != 0) {
        why = VAULT_REASON_BLOCK_SIZE;
        goto out;
    }
    for (i = 0; i < 8; i++)
        ts = ts << 8 | raw[1 + i];
    if (ttl_s > 0 && ts <= UINT64_MAX - (uint64_t)ttl_s && ts + (uint64_t)ttl_s < now) {
        why = VAULT_REASON_EXPIRED;
        goto out;
    }
    if (now <= UINT64_MAX - VAULT_FERNET_MAX_CLOCK_SKEW && now + VAULT_FERNET_MAX_CLOCK_SKEW < ts) {
        why = VAULT_REASON_FUTURE;
        goto out;
    }
    if (!vault_hmac_sha256_verify(key, 16, raw, raw_len - F_MAC, raw + raw_len - F_MAC, F_MAC)) {
        why = VAULT_REASON_MAC;
        goto out;
    }
    rc = vault_secret_new(ct_len + 16, &pt);
    if (rc != VAULT_OK) {
        goto out;
    }
    rc = vault_aes_cbc_decrypt(key + 16, 16, raw + 9, raw + F_HDR, ct_len, vault_secret_mut(pt),
                               &pt_len);
    if (rc != VAULT_OK) {
        why = rc == VAULT_ERR_TOKEN ? VAULT_REASON_PADDING : VAULT_REASON_INTERNAL;
        goto out;
    }
    vault_secret_truncate(pt, pt_len);
    *out = pt;
    pt = NULL;
    why = VAULT_REASON_NONE;
out:
    vault_secret_destroy(pt);
    free(raw);
    if (reason != NULL)
        *reason = why;
    return rc;
}

vault_rc vault_fernet_decrypt(const unsigned char key[VAULT_KEY_LEN], const char *token,
                              size_t token_len, int64_t ttl_s, vault_secret **out,
                              vault_token_reason *reason)
{
    int64_t now = fernet_now();

    if (now < 0)
        return VAULT_ERR_CRYPTO;
    return vault_fernet_decrypt_at(key, token, token_len, ttl_s, (uint64_t)now, out, reason);
}

vault_rc vault_fernet_key_decode(const char *b64, size_t len, unsigned char key[VAULT_KEY_LEN])
{
    unsigned char buf[48];
    size_t n = 0;
    vault_rc rc = VAULT_ERR_INVALID_ARG;

    if (b64 == NULL || key == NULL || len > 44)
        goto out;
    if (vault_b64_decode(b64, len, 2, 1, buf, &n) != 0 || n != VAULT_KEY_LEN)
        goto out;
    memcpy(key, buf, VAULT_KEY_LEN);
    rc = VAULT_OK;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    if (rc != VAULT_OK && key != NULL)
        OPENSSL_cleanse(key, VAULT_KEY_LEN);
    return rc;
}
