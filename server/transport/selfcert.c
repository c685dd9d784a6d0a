/*
 * The mTLS self-check identity (selfcert.h): OpenSSL 3 key generation and a minimal X.509 v3
 * certificate. A self-signed certificate that is itself in the trust store verifies as a
 * chain of one, so the client CA list only grows by this certificate: no CA key exists that
 * could sign anything else, and the key of this one lives only in the process.
 */
#include "selfcert.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* The BIO's bytes as a NUL-terminated heap string, or NULL. */
static char *bio_string(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n <= 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s) {
        memcpy(s, data, (size_t)n);
        s[n] = '\0';
    }
    return s;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e)
        return -1;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

int srv_selfcert_create(char **cert_pem, char **key_pem)
{
    int rc = -1;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    BIO *cb = NULL, *kb = NULL;
    BIGNUM *bn = NULL;
    ASN1_INTEGER *sn = NULL;
    X509_NAME *name = NULL;
    unsigned char serial[16];
    *cert_pem = NULL;
    *key_pem = NULL;

    key = EVP_EC_gen("P-256");
    x = X509_new();
    cb = BIO_new(BIO_s_mem());
    kb = BIO_new(BIO_s_mem());
    if (!key || !x || !cb || !kb || RAND_bytes(serial, sizeof serial) != 1)
        goto out;
    serial[0] &= 0x7f; /* a positive serial */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    if (!sn || !X509_set_serialNumber(x, sn))
        goto out;
    name = X509_get_subject_name(x);
    if (!X509_set_version(x, 2) || !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), 3650, 0, NULL) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"tradewinkd listener self-check", -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key))
        goto out;
    if (add_ext(x, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        add_ext(x, NID_key_usage, "critical,digitalSignature") != 0 ||
        add_ext(x, NID_ext_key_usage, "clientAuth") != 0)
        goto out;
    if (!X509_sign(x, key, EVP_sha256()) || !PEM_write_bio_X509(cb, x) ||
        !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL))
        goto out;
    *cert_pem = bio_string(cb);
    *key_pem = bio_string(kb);
    if (*cert_pem && *key_pem)
        rc = 0;
out:
    if (rc != 0) {
        free(*cert_pem);
        if (*key_pem) {
            memset(*key_pem, 0, strlen(*key_pem));
            free(*key_pem);
        }
        *cert_pem = *key_pem = NULL;
    }
    if (kb) {
        char *data = NULL;
        long n = BIO_get_mem_data(kb, &data);
        if (n > 0)
            OPENSSL_cleanse(data, (size_t)n);
    }
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}
