/*
 * fuzz_fernet - Fernet token verification and decryption (vault_fernet_decrypt_at) with a
 * fixed key and a fixed clock.
 *
 * Byte 0: bits 0-1 pick the TTL (none, 60 s, 1 h, 1 day); bit 2 selects the mode:
 *   clear: the rest is the token text, as a stored record would hold it;
 *   set:   the rest is the raw token body (version, timestamp, IV, ciphertext); the target adds
 *          the correct HMAC and encodes it, so the fuzzer reaches decryption and unpadding,
 *          which a random MAC never would.
 * Properties (mode "set"): when decryption succeeds, encrypting the plaintext again with the
 * token's own timestamp and IV gives exactly the token (no other plaintext could be accepted);
 * a refusal always names a reason.
 */
#include "fuzz.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "vault/vault.h"

#define NOW UINT64_C(1700000000)

/* 32 fixed bytes: signing key || encryption key. */
static const unsigned char KEY[VAULT_KEY_LEN] = {
    0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb, 0xdc, 0xed, 0xfe, 0x0f,
    0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f, 0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69,
};

/* base64url with '=' padding of in[0..n), malloc'd. */
static char *b64url(const unsigned char *in, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out)
        abort();
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    for (int i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    out[len] = '\0';
    return out;
}

/* The token for body[0..n) with its correct MAC appended. */
static char *sign_body(const uint8_t *body, size_t n)
{
    unsigned char *raw = malloc(n + 32);
    unsigned int maclen = 0;
    if (!raw || !HMAC(EVP_sha256(), KEY, 16, body, n, raw + n, &maclen) || maclen != 32)
        abort();
    if (n)
        memcpy(raw, body, n);
    char *tok = b64url(raw, n + 32);
    free(raw);
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t ttls[4] = {0, 60, 3600, 86400};
    if (size < 1 || size > 2 * VAULT_FERNET_MAX_TOKEN)
        return 0;
    int64_t ttl = ttls[data[0] & 3];
    int resign = (data[0] & 4) != 0;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    char *tok = resign ? sign_body(rest, n) : fuzz_strndup(rest, n);
    size_t tok_len = resign ? strlen(tok) : n;
    vault_secret *pt = NULL;
    vault_token_reason why = VAULT_REASON_NONE;
    vault_rc rc = vault_fernet_decrypt_at(KEY, tok, tok_len, ttl, NOW, &pt, &why);
    if (rc != VAULT_OK) {
        FUZZ_CHECK(pt == NULL);
        FUZZ_CHECK(rc != VAULT_ERR_TOKEN || why != VAULT_REASON_NONE);
    } else {
        FUZZ_CHECK(pt != NULL && why == VAULT_REASON_NONE);
        if (resign) {
            /* body = 0x80 | ts (8, big endian) | IV (16) | ciphertext */
            uint64_t ts = 0;
            char *again = NULL;
            FUZZ_CHECK(n >= 25 && rest[0] == 0x80);
            for (int i = 1; i <= 8; i++)
                ts = (ts << 8) | rest[i];
            FUZZ_CHECK(vault_fernet_encrypt_at(KEY, vault_secret_data(pt), vault_secret_len(pt), ts,
                                               rest + 9, &again) == VAULT_OK);
            FUZZ_CHECK(strcmp(again, tok) == 0);
            free(again);
        }
    }
    vault_secret_destroy(pt);
    free(tok);
    return 0;
}
