/*
 * auth_jws.c - the compact JWS layer (RFC 7515 section 7.1): split, header policy, signature.
 *
 * Design: the header is checked before any key is touched, so refused algorithms (none, HS*,
 * anything off the allow-list) and key-reference headers (jku, x5u, jwk, x5c) never reach key
 * lookup; an HS256 token "signed" with the RSA public key bytes is refused for its alg, there is
 * no code path that would use an RSA key as an HMAC secret. The signature is checked with a
 * pooled EVP_PKEY_CTX over the SHA-2 digest of the exact signing input.
 * Invariants: exactly two '.' separators; every segment canonical base64url; the header is a
 * JSON object without duplicate keys; reasons are static strings without token bytes.
 */
#include "auth_int.h"

#include <jansson.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEADER_MAX 1024

static int kid_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("-_.~+/=:@", c) != NULL;
}

static const char *json_reason(const json_error_t *e, const char *dup, const char *bad)
{
    return strstr(e->text, "duplicate") ? dup : bad;
}

#define HC_SLOTS 8
#define HC_SEG_MAX 256
struct auth_hdr_cache {
    pthread_mutex_t mu;
    struct {
        size_t len;
        char seg[HC_SEG_MAX];
        int alg, has_kid;
        char kid[AUTH_KID_MAX + 1];
    } e[HC_SLOTS];
    unsigned next;
};

auth_hdr_cache *auth_hdr_cache_create(void)
{
    auth_hdr_cache *c = calloc(1, sizeof(*c));
    if (c && pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        c = NULL;
    }
    return c;
}

void auth_hdr_cache_destroy(auth_hdr_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void auth_hdr_cache_put(auth_hdr_cache *c, const auth_jws *jws)
{
    if (!c || jws->header_len > HC_SEG_MAX)
        return;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < HC_SLOTS; i++)
        if (c->e[i].len == jws->header_len && memcmp(c->e[i].seg, jws->token, c->e[i].len) == 0)
            goto out;
    unsigned i = c->next++ % HC_SLOTS;
    c->e[i].len = jws->header_len;
    memcpy(c->e[i].seg, jws->token, jws->header_len);
    c->e[i].alg = jws->alg;
    c->e[i].has_kid = jws->has_kid;
    memcpy(c->e[i].kid, jws->kid, sizeof(jws->kid));
out:
    pthread_mutex_unlock(&c->mu);
}

static int split(const char *token, size_t len, size_t *d1, size_t *d2, const char **reason)
{
    size_t dots = 0;
    if (len == 0) {
        *reason = "token empty";
        return -1;
    }
    const char *p = token, *end = token + len, *dot;
    while ((dot = memchr(p, '.', (size_t)(end - p))) != NULL) {
        if (dots == 0)
            *d1 = (size_t)(dot - token);
        else if (dots == 1)
            *d2 = (size_t)(dot - token);
        dots++;
        p = dot + 1;
    }
    if (dots != 2) {
        *reason =
            dots < 2 ? "token has fewer than three segments" : "token has more than three segments";
        return -1;
    }
    if (*d1 == 0) {
        *reason = "header segment empty";
        return -1;
    }
    return 0;
}

static int finish(const char *token, size_t len, size_t d1, size_t d2, auth_jws *jws,
                  const char **reason)
{
    if (d2 + 1 == len) {
        *reason = "signature segment empty";
        return -1;
    }
    if (auth_b64url_decode(token + d2 + 1, len - d2 - 1, jws->sig, sizeof(jws->sig),
                           &jws->sig_len) != 0) {
        *reason = "signature is not canonical base64url";
        return -1;
    }
    jws->token = token;
    jws->header_len = d1;
    jws->signing_len = d2;
    jws->payload = token + d1 + 1;
    jws->payload_len = d2 - d1 - 1;
    return 0;
}

static int parse_header(const char *token, size_t d1, unsigned algs, auth_jws *jws,
                        const char **reason);

int auth_jws_parse(const char *token, size_t len, unsigned algs, auth_jws *jws, const char **reason)
{
    size_t d1 = 0, d2 = 0;
    jws->alg = -1;
    jws->has_kid = 0;
    jws->kid[0] = '\0';
    if (split(token, len, &d1, &d2, reason) != 0 || parse_header(token, d1, algs, jws, reason) != 0)
        return -1;
    return finish(token, len, d1, d2, jws, reason);
}

int auth_jws_parse_cached(auth_hdr_cache *hc, const char *token, size_t len, unsigned algs,
                          auth_jws *jws, const char **reason)
{
    size_t d1 = 0, d2 = 0;
    int hit = 0;
    if (!hc)
        return auth_jws_parse(token, len, algs, jws, reason);
    if (split(token, len, &d1, &d2, reason) != 0)
        return -1;
    pthread_mutex_lock(&hc->mu);
    for (int i = 0; i < HC_SLOTS && !hit; i++)
        if (hc->e[i].len == d1 && memcmp(hc->e[i].seg, token, d1) == 0) {
            jws->alg = hc->e[i].alg;
            jws->has_kid = hc->e[i].has_kid;
            memcpy(jws->kid, hc->e[i].kid, sizeof(jws->kid));
            hit = 1;
        }
    pthread_mutex_unlock(&hc->mu);
    if (!hit)
        return auth_jws_parse(token, len, algs, jws, reason);
    return finish(token, len, d1, d2, jws, reason);
}

static int parse_header(const char *token, size_t d1, unsigned algs, auth_jws *jws,
                        const char **reason)
{
    uint8_t hdr[HEADER_MAX];
    size_t hdr_len;
    json_error_t jerr;
    json_t *h = NULL, *v;
    int rc = -1;

    if (auth_b64url_decode(token, d1, hdr, sizeof(hdr), &hdr_len) != 0) {
        *reason =
            d1 > HEADER_MAX * 4 / 3 + 4 ? "header too large" : "header is not canonical base64url";
        goto out;
    }
    h = json_loadb((const char *)hdr, hdr_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!h) {
        *reason = json_reason(&jerr, "header has duplicate JSON keys", "header is not JSON");
        goto out;
    }
    if (!json_is_object(h)) {
        *reason = "header is not a JSON object";
        goto out;
    }
    v = json_object_get(h, "alg");
    if (!v) {
        *reason = "alg missing";
        goto out;
    }
    if (!json_is_string(v)) {
        *reason = "alg is not a string";
        goto out;
    }
    const char *alg = json_string_value(v);
    if (strcasecmp(alg, "none") == 0) {
        *reason = "alg none refused";
        goto out;
    }
    if (strncasecmp(alg, "HS", 2) == 0) {
        *reason = "alg HS* (symmetric) refused";
        goto out;
    }
    jws->alg = auth_alg_from_name(alg);
    if (jws->alg < 0 || !(algs & AUTH_ALG_BIT(jws->alg))) {
        *reason = "alg not on the allow-list";
        goto out;
    }
    if (json_object_get(h, "crit")) {
        *reason = "crit header refused";
        goto out;
    }
    if (json_object_get(h, "jku")) {
        *reason = "jku header refused (key URLs are never followed)";
        goto out;
    }
    if (json_object_get(h, "x5u")) {
        *reason = "x5u header refused (key URLs are never followed)";
        goto out;
    }
    if (json_object_get(h, "jwk")) {
        *reason = "jwk header refused (embedded keys are never trusted)";
        goto out;
    }
    if (json_object_get(h, "x5c")) {
        *reason = "x5c header refused (embedded certificates are never trusted)";
        goto out;
    }
    v = json_object_get(h, "kid");
    if (v) {
        if (!json_is_string(v)) {
            *reason = "kid is not a string";
            goto out;
        }
        size_t kl = json_string_length(v);
        const char *kid = json_string_value(v);
        if (kl == 0 || kl > AUTH_KID_MAX) {
            *reason = "kid length outside 1..128";
            goto out;
        }
        for (size_t i = 0; i < kl; i++)
            if (!kid_char_ok((unsigned char)kid[i])) {
                *reason = "kid has characters outside [A-Za-z0-9._~+/=:@-]";
                goto out;
            }
        memcpy(jws->kid, kid, kl + 1);
        jws->has_kid = 1;
    }
    rc = 0;
out:
    json_decref(h);
    return rc;
}

int auth_jws_check_signature(const auth_key *key, const auth_jws *jws, const char **reason)
{
    uint8_t md[SHA512_DIGEST_LENGTH];
    size_t md_len;
    EVP_PKEY_CTX *ctx;
    int ok;
    if (!key->pkey) {
        *reason = key->refused;
        return -1;
    }
    if (!(key->algs & AUTH_ALG_BIT(jws->alg))) {
        *reason = "alg differs from the key's alg";
        return -1;
    }
    if (jws->sig_len != (size_t)EVP_PKEY_get_size(key->pkey)) {
        *reason = "signature length differs from the key size";
        return -1;
    }
    static const int bits[AUTH_ALG_COUNT] = {256, 384, 512, 256, 384, 512};
    md_len = auth_digest(bits[jws->alg], jws->token, jws->signing_len, md);
    if (md_len == 0) {
        *reason = "digest failed";
        return -1;
    }
    ctx = auth_key_ctx_acquire(key, jws->alg);
    if (!ctx) {
        *reason = "verify context setup failed";
        return -1;
    }
    ok = EVP_PKEY_verify(ctx, jws->sig, jws->sig_len, md, md_len) == 1;
    auth_key_ctx_release(key, jws->alg, ctx);
    if (!ok) {
        *reason = "signature invalid";
        return -1;
    }
    return 0;
}

int auth_jws_payload(const auth_jws *jws, char **out, size_t *outlen, const char **reason)
{
    size_t cap = jws->payload_len / 4 * 3 + 3;
    char *buf = malloc(cap + 1);
    if (!buf) {
        *reason = "out of memory";
        return -1;
    }
    if (auth_b64url_decode(jws->payload, jws->payload_len, (uint8_t *)buf, cap, outlen) != 0) {
        free(buf);
        *reason = "payload is not canonical base64url";
        return -1;
    }
    buf[*outlen] = '\0';
    *out = buf;
    return 0;
}

int auth_jws_verify_keyset(const auth_keyset *ks, const char *token, unsigned algs,
                           char **payload_out, size_t *payload_len, const char **reason)
{
    auth_jws *jws = malloc(sizeof(*jws));
    const auth_key *key;
    int rc = -1;
    if (!jws) {
        *reason = "out of memory";
        return -1;
    }
    if (auth_jws_parse(token, strlen(token), algs, jws, reason) != 0)
        goto out;
    key = auth_keyset_find(ks, jws->has_kid ? jws->kid : NULL);
    if (!key) {
        *reason = jws->has_kid ? "unknown kid" : "kid missing";
        goto out;
    }
    if (auth_jws_check_signature(key, jws, reason) != 0)
        goto out;
    rc = auth_jws_payload(jws, payload_out, payload_len, reason);
out:
    free(jws);
    return rc;
}

int auth_jws_sign(EVP_PKEY *priv, int alg, const char *header_json, const char *payload_json,
                  char **out)
{
    size_t hl = strlen(header_json), pl = strlen(payload_json);
    size_t hb = auth_b64url_encoded_len(hl), pb = auth_b64url_encoded_len(pl);
    size_t sig_cap = (size_t)EVP_PKEY_get_size(priv), sig_len = sig_cap;
    size_t total = hb + 1 + pb + 1 + auth_b64url_encoded_len(sig_cap) + 1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t *sig = malloc(sig_cap);
    char *tok = malloc(total);
    int rc = -1;
    static const char *const mdname[AUTH_ALG_COUNT] = {"SHA256", "SHA384", "SHA512",
                                                       "SHA256", "SHA384", "SHA512"};
    if (!md || !sig || !tok || alg < 0 || alg >= AUTH_ALG_COUNT)
        goto out;
    auth_b64url_encode((const uint8_t *)header_json, hl, tok);
    tok[hb] = '.';
    auth_b64url_encode((const uint8_t *)payload_json, pl, tok + hb + 1);
    if (EVP_DigestSignInit_ex(md, &pctx, mdname[alg], NULL, NULL, priv, NULL) <= 0)
        goto out;
    if (alg >= AUTH_ALG_PS256 &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0))
        goto out;
    if (EVP_DigestSign(md, sig, &sig_len, (const uint8_t *)tok, hb + 1 + pb) <= 0)
        goto out;
    tok[hb + 1 + pb] = '.';
    auth_b64url_encode(sig, sig_len, tok + hb + 1 + pb + 1);
    *out = tok;
    tok = NULL;
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    free(sig);
    free(tok);
    return rc;
}
