/*
 * auth_devkey.c - the dev signing key: load or create TW_DEV_KEY_FILE, mint dev tokens.
 *
 * Design: creation writes a fresh RSA-2048 key (PKCS#8 PEM) to a mkstemp() file (mode 0600)
 * in the same directory and link()s it into place, so readers never see a partial file and two
 * processes racing to create it end up sharing the first one's key. Loading accepts PKCS#8
 * and PKCS#1 PEM through OSSL_DECODER and applies the same RSA policy as verification keys.
 * Tokens follow ../shared/DESIGN.md: RS256, kid = RFC 7638 thumbprint, iss/sub/role/iat/exp.
 * Invariants: an auth_devkey is immutable after load; nothing here logs key material.
 */
#include "auth_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/decoder.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct auth_devkey {
    EVP_PKEY *pkey;
    char kid[44];
};

const char *auth_role_name(auth_role role)
{
    switch (role) {
    case AUTH_ROLE_USER:
        return "user";
    case AUTH_ROLE_ADMIN:
        return "admin";
    }
    return NULL;
}

static EVP_PKEY *load_private(const char *path, char *err, size_t errlen)
{
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "dev key %s: %s", path, strerror(errno));
        return NULL;
    }
    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, "RSA", EVP_PKEY_KEYPAIR, NULL, NULL);
    if (!dctx || !OSSL_DECODER_from_fp(dctx, f)) {
        snprintf(err, errlen, "dev key %s: not an unencrypted RSA private key PEM", path);
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    fclose(f);
    return pkey;
}

/* Creates the key file; returns 0 when this call created it, 1 when it already existed. */
static int create_key_file(const char *path, char *err, size_t errlen)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    FILE *f = NULL;
    int fd = -1, rc = -1, made = 0;
    if (!tmp) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp); /* mode 0600 */
    made = fd >= 0;
    if (fd < 0) {
        snprintf(err, errlen, "dev key %s: cannot create: %s", path, strerror(errno));
        goto out;
    }
    pkey = EVP_RSA_gen(2048);
    f = fdopen(fd, "wb");
    if (!pkey || !f) {
        snprintf(err, errlen, "dev key generation failed");
        goto out;
    }
    fd = -1;
    bio = BIO_new_fp(f, BIO_NOCLOSE);
    if (!bio || !PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) ||
        BIO_flush(bio) != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        snprintf(err, errlen, "dev key %s: write failed", path);
        goto out;
    }
    if (link(tmp, path) != 0) {
        if (errno == EEXIST) {
            rc = 1; /* someone else created it first: use theirs */
            goto out;
        }
        snprintf(err, errlen, "dev key %s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    BIO_free(bio);
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (made)
        unlink(tmp);
    EVP_PKEY_free(pkey);
    free(tmp);
    return rc;
}

auth_devkey *auth_devkey_load_or_create(const char *path, char *err, size_t errlen)
{
    auth_devkey *k = NULL;
    EVP_PKEY *pkey = NULL;
    const char *why;
    if (!path || !*path) {
        snprintf(err, errlen, "dev key path empty");
        return NULL;
    }
    if (access(path, F_OK) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "dev key %s: %s", path, strerror(errno));
            return NULL;
        }
        if (create_key_file(path, err, errlen) < 0)
            return NULL;
    }
    pkey = load_private(path, err, errlen);
    if (!pkey)
        return NULL;
    if (auth_rsa_key_check(pkey, &why) != 0) {
        snprintf(err, errlen, "dev key %s: %s", path, why);
        goto fail;
    }
    k = calloc(1, sizeof(*k));
    if (!k || auth_rsa_thumbprint(pkey, k->kid) != 0) {
        snprintf(err, errlen, "dev key: out of memory");
        goto fail;
    }
    k->pkey = pkey;
    return k;
fail:
    EVP_PKEY_free(pkey);
    free(k);
    return NULL;
}

void auth_devkey_destroy(auth_devkey *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

const char *auth_devkey_kid(const auth_devkey *k)
{
    return k->kid;
}

/* The public half as a one-key set named by the thumbprint (kid required). */
auth_keyset *auth_devkey_keyset(const auth_devkey *k, const char **reason)
{
    EVP_PKEY *pub = NULL;
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(k->pkey, &der);
    const unsigned char *p = der;
    if (len > 0)
        pub = d2i_PUBKEY(NULL, &p, len);
    OPENSSL_free(der);
    if (!pub) {
        *reason = "dev key export failed";
        return NULL;
    }
    auth_keyset *ks = auth_keyset_from_pkey(pub, k->kid, reason);
    if (ks)
        ks->kid_optional = 0;
    return ks;
}

int auth_devkey_mint(const auth_devkey *k, const char *issuer, const char *sub, auth_role role,
                     int64_t ttl_s, int64_t now, char **token_out)
{
    json_t *hdr = NULL, *claims = NULL;
    char *hs = NULL, *cs = NULL;
    int rc = -1;
    if (!k || !sub || !token_out || !auth_role_name(role) || ttl_s < 1 || ttl_s > 31 * 86400 ||
        now < 0)
        goto out;
    size_t sl = strlen(sub);
    if (sl == 0 || sl > 255)
        goto out;
    for (size_t i = 0; i < sl; i++)
        if ((unsigned char)sub[i] < 0x20 || sub[i] == 0x7f)
            goto out;
    hdr = json_pack("{s:s, s:s, s:s}", "alg", "RS256", "kid", k->kid, "typ", "JWT");
    claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", issuer ? issuer : "tradewink-dev", "sub",
                       sub, "role", auth_role_name(role), "iat", (json_int_t)now, "exp",
                       (json_int_t)now + (json_int_t)ttl_s);
    if (!hdr || !claims)
        goto out; /* also: sub or issuer not valid UTF-8 */
    hs = json_dumps(hdr, JSON_COMPACT);
    cs = json_dumps(claims, JSON_COMPACT);
    if (!hs || !cs)
        goto out;
    rc = auth_jws_sign(k->pkey, AUTH_ALG_RS256, hs, cs, token_out);
out:
    json_decref(hdr);
    json_decref(claims);
    free(hs);
    free(cs);
    return rc;
}

EVP_PKEY *auth_devkey_pkey(const auth_devkey *k)
{
    return k->pkey;
}
