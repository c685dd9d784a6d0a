/*
 * Sealed broker secrets (issue 20): a client encrypts the secret to the server's published
 * sealing key, so neither a web backend nor a TLS-terminating edge ever holds it in the clear.
 *
 * Scheme (all of it in WebCrypto and node:crypto): the client makes an ephemeral P-256 key,
 * ECDH with the sealing key gives a 32-byte shared x; HKDF-SHA256(ikm = that x, salt = the
 * ephemeral public point, info = "tradewink-seal-v1") gives a 32-byte AES-256-GCM key; the
 * secret is encrypted with a random 12-byte IV and the associated data (see vault.h) that
 * binds user, broker, key id, environment and sealing key version. Sealed bytes: ephemeral
 * point (65, uncompressed SEC1) || IV (12) || ciphertext || tag (16).
 *
 * Keys: "vN:BASE64[@UNTIL],..." newest first; BASE64 is a 32-byte P-256 private scalar; an
 * older key's @UNTIL (Unix seconds) ends its grace period, after which it opens nothing.
 */
#include "vault.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vault_int.h"

#define MAX_SEAL_KEYS 8
#define PT_MAX 4096

struct vault_sealer {
    size_t n;
    struct {
        uint32_t version;
        int64_t until; /* 0 = no end */
        EVP_PKEY *key;
        unsigned char pub[VAULT_SEAL_PUB_LEN];
    } keys[MAX_SEAL_KEYS];
};

void vault_sealer_destroy(vault_sealer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        EVP_PKEY_free(s->keys[i].key);
    free(s);
}

/* A P-256 key from its private scalar, with its public point computed here. */
static EVP_PKEY *p256_from_scalar(const unsigned char d[32], unsigned char pub[65])
{
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn = BN_bin2bn(d, 32, NULL);
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    unsigned char priv[32];
    if (!bn || !pt || !ctx || BN_is_zero(bn) || BN_cmp(bn, EC_GROUP_get0_order(g)) >= 0 ||
        EC_POINT_mul(g, pt, bn, NULL, NULL, NULL) != 1 ||
        EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, pub, 65, NULL) != 65 ||
        BN_bn2nativepad(bn, priv, 32) != 32)
        goto out;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
        OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, priv, 32),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, 65), OSSL_PARAM_END};
    if (EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1)
        pkey = NULL;
out:
    OPENSSL_cleanse(priv, sizeof(priv));
    BN_clear_free(bn);
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

vault_rc vault_sealer_parse(const char *text, vault_sealer **out, char *why, size_t why_cap)
{
    vault_rc rc = VAULT_ERR_INVALID_ARG;
    vault_sealer *s = NULL;
    unsigned char d[48];
    size_t dlen = 0;
    *out = NULL;
    if (!text || !*text)
        return VAULT_OK;
    if (!(s = calloc(1, sizeof(*s)))) {
        snprintf(why, why_cap, "out of memory");
        return VAULT_ERR_NOMEM;
    }
    for (const char *p = text; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        const char *at = memchr(p, '@', len);
        char *num_end = NULL;
        long v = (len > 1 && p[0] == 'v') ? strtol(p + 1, &num_end, 10) : 0;
        long long until = 0;
        if (!colon || num_end != colon || v < 1 || v > 1000000 || s->n == MAX_SEAL_KEYS) {
            snprintf(why, why_cap, "entry %zu: expected vN:BASE64[@UNTIL] (at most %d)", s->n + 1,
                     MAX_SEAL_KEYS);
            goto out;
        }
        if (at) {
            char *e = NULL;
            until = strtoll(at + 1, &e, 10);
            if (e != p + len || until <= 0) {
                snprintf(why, why_cap, "v%ld: @UNTIL must be Unix seconds", v);
                goto out;
            }
        }
        size_t b64len = (size_t)((at ? at : p + len) - (colon + 1));
        for (size_t i = 0; i < s->n; i++)
            if (s->keys[i].version == (uint32_t)v) {
                snprintf(why, why_cap, "version v%ld listed twice", v);
                goto out;
            }
        if (b64len > 64 || vault_b64_decode(colon + 1, b64len, 0, 1, d, &dlen) != 0 || dlen != 32) {
            snprintf(why, why_cap, "v%ld: not the base64 of a 32-byte P-256 private key", v);
            goto out;
        }
        EVP_PKEY *k = p256_from_scalar(d, s->keys[s->n].pub);
        OPENSSL_cleanse(d, sizeof(d));
        if (!k) {
            snprintf(why, why_cap, "v%ld: not a valid P-256 private key", v);
            goto out;
        }
        s->keys[s->n].version = (uint32_t)v;
        s->keys[s->n].until = until;
        s->keys[s->n].key = k;
        s->n++;
        p = end ? end + 1 : p + len;
    }
    *out = s;
    s = NULL;
    rc = VAULT_OK;
out:
    OPENSSL_cleanse(d, sizeof(d));
    vault_sealer_destroy(s);
    return rc;
}

int vault_sealer_current(const vault_sealer *s, uint32_t *version,
                         unsigned char pub[VAULT_SEAL_PUB_LEN])
{
    if (!s || s->n == 0)
        return -1;
    *version = s->keys[0].version;
    memcpy(pub, s->keys[0].pub, VAULT_SEAL_PUB_LEN);
    return 0;
}

static int derive_key(EVP_PKEY *priv, const unsigned char *eph, unsigned char key[32])
{
    int ok = 0;
    unsigned char shared[32];
    size_t slen = sizeof(shared);
    EVP_PKEY *peer = NULL;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY_CTX *dc = NULL;
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kc = NULL;
    OSSL_PARAM pp[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)eph, VAULT_SEAL_PUB_LEN),
        OSSL_PARAM_END};
    if (!pc || EVP_PKEY_fromdata_init(pc) != 1 ||
        EVP_PKEY_fromdata(pc, &peer, EVP_PKEY_PUBLIC_KEY, pp) != 1)
        goto out;
    /* derive_set_peer validates the point (on the curve, not infinity) */
    dc = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    if (!dc || EVP_PKEY_derive_init(dc) != 1 || EVP_PKEY_derive_set_peer(dc, peer) != 1 ||
        EVP_PKEY_derive(dc, shared, &slen) != 1 || slen != 32)
        goto out;
    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM kp[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, shared, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)eph, VAULT_SEAL_PUB_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)"tradewink-seal-v1", 17),
        OSSL_PARAM_END};
    ok = kc && EVP_KDF_derive(kc, key, 32, kp) == 1;
out:
    OPENSSL_cleanse(shared, sizeof(shared));
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    EVP_PKEY_CTX_free(dc);
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(peer);
    return ok ? 0 : -1;
}

static size_t put_field(unsigned char *buf, size_t cap, size_t at, const char *s)
{
    size_t len = strlen(s);
    if (at + 8 + len > cap)
        return cap + 1;
    for (int i = 0; i < 8; i++)
        buf[at + (size_t)i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    memcpy(buf + at + 8, s, len);
    return at + 8 + len;
}

vault_rc vault_unseal(const vault_sealer *s, uint32_t version, const unsigned char *sealed,
                      size_t len, const vault_seal_binding *b, int64_t now_s, char **out)
{
    vault_rc rc = VAULT_ERR_TOKEN;
    unsigned char key[32], aad[1024];
    char ver[16];
    unsigned char *pt = NULL;
    EVP_CIPHER_CTX *cc = NULL;
    int n = 0, fin = 0;
    *out = NULL;
    EVP_PKEY *priv = NULL;
    for (size_t i = 0; s && i < s->n; i++)
        if (s->keys[i].version == version && (!s->keys[i].until || now_s < s->keys[i].until))
            priv = s->keys[i].key;
    if (!priv)
        return VAULT_ERR_UNKNOWN_VERSION; /* not configured, or its grace period is over */
    if (len < VAULT_SEAL_PUB_LEN + 12 + 16 + 1 || len > VAULT_SEAL_PUB_LEN + 12 + 16 + PT_MAX)
        return VAULT_ERR_TOKEN;
    size_t ctlen = len - VAULT_SEAL_PUB_LEN - 12 - 16;
    snprintf(ver, sizeof(ver), "%u", (unsigned)version);
    size_t alen = put_field(aad, sizeof(aad), 0, "tradewink-seal-v1");
    const char *fields[] = {b->user, b->broker, b->key_id, b->environment, ver};
    for (size_t i = 0; i < 5; i++)
        alen = put_field(aad, sizeof(aad), alen, fields[i]);
    if (alen > sizeof(aad))
        return VAULT_ERR_TOKEN;
    if (derive_key(priv, sealed, key) != 0)
        goto out;
    const unsigned char *iv = sealed + VAULT_SEAL_PUB_LEN, *ct = iv + 12, *tag = ct + ctlen;
    pt = malloc(ctlen + 1);
    cc = EVP_CIPHER_CTX_new();
    if (!pt || !cc) {
        rc = VAULT_ERR_NOMEM;
        goto out;
    }
    if (EVP_DecryptInit_ex(cc, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
        EVP_DecryptUpdate(cc, NULL, &n, aad, (int)alen) != 1 ||
        EVP_DecryptUpdate(cc, pt, &n, ct, (int)ctlen) != 1 ||
        EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) != 1 ||
        EVP_DecryptFinal_ex(cc, pt + n, &fin) != 1)
        goto out; /* wrong binding, tampered, or another key: all look the same */
    if (memchr(pt, '\0', ctlen))
        goto out;
    pt[ctlen] = '\0';
    *out = (char *)pt;
    pt = NULL;
    rc = VAULT_OK;
out:
    OPENSSL_cleanse(key, sizeof(key));
    if (pt) {
        OPENSSL_cleanse(pt, ctlen + 1);
        free(pt);
    }
    EVP_CIPHER_CTX_free(cc);
    return rc;
}
