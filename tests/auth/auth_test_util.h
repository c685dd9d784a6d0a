/*
 * auth_test_util.h - helpers shared by the tests/auth programs: temp dirs, JWS building with
 * arbitrary (even malformed) headers and payloads, RSA/HMAC signing outside the library's
 * minting path so the verifier is tested against tokens it did not produce.
 */
#ifndef TW_AUTH_TEST_UTIL_H
#define TW_AUTH_TEST_UTIL_H

#include "auth_int.h"

#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *tu_b64(const void *data, size_t n)
{
    char *o = malloc(auth_b64url_encoded_len(n) + 1);
    if (o)
        auth_b64url_encode(data, n, o);
    return o;
}

/* base64url signature of signing_input with an RSA key (PKCS#1 v1.5 or PSS by alg name). */
static inline char *tu_rsa_sig(EVP_PKEY *key, const char *md, int pss, const char *input)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    uint8_t sig[1024];
    size_t sl = sizeof(sig);
    char *o = NULL;
    if (EVP_DigestSignInit_ex(c, &pc, md, NULL, NULL, key, NULL) > 0 &&
        (!pss || (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0 &&
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) > 0)) &&
        EVP_DigestSign(c, sig, &sl, (const uint8_t *)input, strlen(input)) > 0)
        o = tu_b64(sig, sl);
    EVP_MD_CTX_free(c);
    return o;
}

static inline char *tu_hmac_sig(const void *key, size_t keylen, const char *input)
{
    uint8_t mac[64];
    size_t ml = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen, (const uint8_t *)input,
                   strlen(input), mac, sizeof(mac), &ml))
        return NULL;
    return tu_b64(mac, ml);
}

/* "b64(header).b64(payload)" */
static inline char *tu_signing_input(const char *header, const char *payload)
{
    char *h = tu_b64(header, strlen(header)), *p = tu_b64(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2;
    char *o = malloc(n);
    snprintf(o, n, "%s.%s", h, p);
    free(h);
    free(p);
    return o;
}

static inline char *tu_join(const char *a, const char *sep, const char *b)
{
    size_t n = strlen(a) + strlen(sep) + strlen(b) + 1;
    char *o = malloc(n);
    snprintf(o, n, "%s%s%s", a, sep, b);
    return o;
}

/* RS256 token over arbitrary header/payload text. */
static inline char *tu_rs256(EVP_PKEY *key, const char *header, const char *payload)
{
    char *in = tu_signing_input(header, payload), *sig = tu_rsa_sig(key, "SHA256", 0, in);
    char *t = tu_join(in, ".", sig);
    free(in);
    free(sig);
    return t;
}

static inline char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            if (len)
                *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static inline int tu_write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int rc = fputs(data, f) < 0 ? -1 : 0;
    return fclose(f) == 0 ? rc : -1;
}

#endif
