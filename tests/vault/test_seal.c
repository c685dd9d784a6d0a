/* Sealed broker secrets (vault/seal.c): the key list's rules, the public point a client seals to,
 * and what opens and what does not (wrong binding, tampering, an old key past its grace). The
 * client side here is written from the scheme in vault.h with OpenSSL's EVP API, as a backend's
 * WebCrypto code would be; tests/services/test_sealed_keys.py seals with python3-cryptography. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "vault/vault.h"

/* base64 of the 32-byte scalars 1 and 2 (valid P-256 private keys). */
#define SCALAR_ONE "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="
#define SCALAR_TWO "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI="

static const vault_seal_binding BIND = {
    .user = "alice", .broker = "alpaca", .key_id = "PKTEST", .environment = "paper"};

static size_t aad_field(unsigned char *buf, size_t at, const char *s)
{
    size_t len = strlen(s);
    for (int i = 0; i < 8; i++)
        buf[at + (size_t)i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    memcpy(buf + at + 8, s, len);
    return at + 8 + len;
}

/* The client's side: seals pt (ptlen bytes) to pub under binding b and version; returns the
 * sealed length written to out (at least 65 + 12 + ptlen + 16 bytes). */
static size_t seal(const unsigned char pub[VAULT_SEAL_PUB_LEN], uint32_t version,
                   const vault_seal_binding *b, const unsigned char *pt, size_t ptlen,
                   unsigned char *out)
{
    EVP_PKEY *eph = EVP_EC_gen("P-256");
    assert_non_null(eph);
    size_t plen = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(eph, OSSL_PKEY_PARAM_PUB_KEY, out,
                                                     VAULT_SEAL_PUB_LEN, &plen),
                     1);
    assert_int_equal(plen, VAULT_SEAL_PUB_LEN);

    EVP_PKEY *server = NULL;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM pp[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pub, VAULT_SEAL_PUB_LEN),
        OSSL_PARAM_END};
    assert_int_equal(EVP_PKEY_fromdata_init(pc), 1);
    assert_int_equal(EVP_PKEY_fromdata(pc, &server, EVP_PKEY_PUBLIC_KEY, pp), 1);
    unsigned char shared[32], key[32];
    size_t slen = sizeof(shared);
    EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL);
    assert_int_equal(EVP_PKEY_derive_init(dc), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(dc, server), 1);
    assert_int_equal(EVP_PKEY_derive(dc, shared, &slen), 1);

    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM kp[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, shared, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, out, VAULT_SEAL_PUB_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)"tradewink-seal-v1", 17),
        OSSL_PARAM_END};
    assert_int_equal(EVP_KDF_derive(kc, key, 32, kp), 1);

    unsigned char aad[512];
    char ver[16];
    snprintf(ver, sizeof(ver), "%u", (unsigned)version);
    size_t alen = aad_field(aad, 0, "tradewink-seal-v1");
    alen = aad_field(aad, alen, b->user);
    alen = aad_field(aad, alen, b->broker);
    alen = aad_field(aad, alen, b->key_id);
    alen = aad_field(aad, alen, b->environment);
    alen = aad_field(aad, alen, ver);

    unsigned char *iv = out + VAULT_SEAL_PUB_LEN, *ct = iv + 12;
    assert_int_equal(RAND_bytes(iv, 12), 1);
    EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    assert_int_equal(EVP_EncryptInit_ex(cc, EVP_aes_256_gcm(), NULL, key, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(cc, NULL, &n, aad, (int)alen), 1);
    assert_int_equal(EVP_EncryptUpdate(cc, ct, &n, pt, (int)ptlen), 1);
    assert_int_equal(EVP_EncryptFinal_ex(cc, ct + n, &fin), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_GET_TAG, 16, ct + ptlen), 1);

    EVP_CIPHER_CTX_free(cc);
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    EVP_PKEY_CTX_free(dc);
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(server);
    EVP_PKEY_free(eph);
    return VAULT_SEAL_PUB_LEN + 12 + ptlen + 16;
}

static vault_sealer *parse_ok(const char *text)
{
    vault_sealer *s = NULL;
    char why[128] = "";
    assert_int_equal(vault_sealer_parse(text, &s, why, sizeof(why)), VAULT_OK);
    assert_non_null(s);
    return s;
}

static void key_lists_are_checked_and_reasons_hold_no_key(void **state)
{
    (void)state;
    vault_sealer *s = (vault_sealer *)1;
    char why[128];
    assert_int_equal(vault_sealer_parse("", &s, why, sizeof(why)), VAULT_OK);
    assert_null(s); /* no sealing configured */
    static const struct {
        const char *text, *reason;
    } bad[] = {
        {"1:" SCALAR_ONE, "expected vN:BASE64"},
        {"v0:" SCALAR_ONE, "expected vN:BASE64"},
        {"vx:" SCALAR_ONE, "expected vN:BASE64"},
        {"v1" SCALAR_ONE, "expected vN:BASE64"},
        {"v1:" SCALAR_ONE ",v1:" SCALAR_TWO, "listed twice"},
        {"v1:AAAA", "32-byte"},
        {"v1:" SCALAR_ONE "@", "Unix seconds"},
        {"v1:" SCALAR_ONE "@-5", "Unix seconds"},
        {"v1:" SCALAR_ONE "@12x", "Unix seconds"},
        /* 0 and the group order n are not private keys */
        {"v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "not a valid P-256"},
        {"v1://///wAAAAD//////////7zm+q2nF56E87nKwvxjJVE=", "not a valid P-256"},
        {"v1:" SCALAR_ONE ",v2:" SCALAR_TWO ",v3:" SCALAR_ONE ",v4:" SCALAR_TWO ",v5:" SCALAR_ONE
         ",v6:" SCALAR_TWO ",v7:" SCALAR_ONE ",v8:" SCALAR_TWO ",v9:" SCALAR_ONE,
         "at most 8"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s = NULL;
        why[0] = '\0';
        assert_int_equal(vault_sealer_parse(bad[i].text, &s, why, sizeof(why)),
                         VAULT_ERR_INVALID_ARG);
        assert_null(s);
        if (!strstr(why, bad[i].reason))
            fail_msg("entry %zu: reason \"%s\" lacks \"%s\"", i, why, bad[i].reason);
        assert_null(strstr(why, "AAAAAAAA")); /* never the key's base64 */
    }
}

/* The published point is the scalar times the generator: for the scalar 1, G itself. */
static void the_public_point_is_the_keys(void **state)
{
    (void)state;
    static const unsigned char g[VAULT_SEAL_PUB_LEN] = {
        0x04, 0x6B, 0x17, 0xD1, 0xF2, 0xE1, 0x2C, 0x42, 0x47, 0xF8, 0xBC, 0xE6, 0xE5,
        0x63, 0xA4, 0x40, 0xF2, 0x77, 0x03, 0x7D, 0x81, 0x2D, 0xEB, 0x33, 0xA0, 0xF4,
        0xA1, 0x39, 0x45, 0xD8, 0x98, 0xC2, 0x96, 0x4F, 0xE3, 0x42, 0xE2, 0xFE, 0x1A,
        0x7F, 0x9B, 0x8E, 0xE7, 0xEB, 0x4A, 0x7C, 0x0F, 0x9E, 0x16, 0x2B, 0xCE, 0x33,
        0x57, 0x6B, 0x31, 0x5E, 0xCE, 0xCB, 0xB6, 0x40, 0x68, 0x37, 0xBF, 0x51, 0xF5};
    vault_sealer *s = parse_ok("v3:" SCALAR_ONE ",v2:" SCALAR_TWO "@2000000000");
    uint32_t version = 0;
    unsigned char pub[VAULT_SEAL_PUB_LEN];
    assert_int_equal(vault_sealer_current(s, &version, pub), 0);
    assert_int_equal(version, 3); /* the newest: the first listed */
    assert_memory_equal(pub, g, sizeof(g));
    vault_sealer_destroy(s);
    assert_int_equal(vault_sealer_current(NULL, &version, pub), -1);
}

static void a_sealed_secret_opens_only_with_its_binding(void **state)
{
    (void)state;
    vault_sealer *s = parse_ok("v7:" SCALAR_TWO);
    uint32_t version;
    unsigned char pub[VAULT_SEAL_PUB_LEN], sealed[256];
    assert_int_equal(vault_sealer_current(s, &version, pub), 0);
    const char secret[] = "PKTEST\nsecret-of-the-broker";
    size_t n = seal(pub, version, &BIND, (const unsigned char *)secret, strlen(secret), sealed);
    char *out = NULL;
    assert_int_equal(vault_unseal(s, 7, sealed, n, &BIND, 0, &out), VAULT_OK);
    assert_string_equal(out, secret);
    free(out);

    /* Each bound field, changed: a secret sealed for one key, user or environment is not
     * accepted for another. */
    vault_seal_binding other[4] = {BIND, BIND, BIND, BIND};
    other[0].user = "mallory";
    other[1].broker = "sim";
    other[2].key_id = "PKOTHER";
    other[3].environment = "live";
    for (size_t i = 0; i < 4; i++) {
        out = (char *)1;
        assert_int_equal(vault_unseal(s, 7, sealed, n, &other[i], 0, &out), VAULT_ERR_TOKEN);
        assert_null(out);
    }
    /* Sealed for another version number of the same key: the version is bound too. */
    size_t m = seal(pub, 8, &BIND, (const unsigned char *)secret, strlen(secret), sealed);
    assert_int_equal(vault_unseal(s, 7, sealed, m, &BIND, 0, &out), VAULT_ERR_TOKEN);
    assert_int_equal(vault_unseal(s, 8, sealed, m, &BIND, 0, &out), VAULT_ERR_UNKNOWN_VERSION);
    vault_sealer_destroy(s);
}

static void tampered_short_or_nul_bearing_input_is_refused(void **state)
{
    (void)state;
    vault_sealer *s = parse_ok("v1:" SCALAR_TWO);
    uint32_t version;
    unsigned char pub[VAULT_SEAL_PUB_LEN], sealed[256];
    assert_int_equal(vault_sealer_current(s, &version, pub), 0);
    const char secret[] = "abc\ndef";
    size_t n = seal(pub, 1, &BIND, (const unsigned char *)secret, strlen(secret), sealed);
    char *out = NULL;
    for (size_t i = 0; i < n; i++) { /* every byte: the point, the IV, the text, the tag */
        sealed[i] ^= 0x01;
        assert_int_not_equal(vault_unseal(s, 1, sealed, n, &BIND, 0, &out), VAULT_OK);
        assert_null(out);
        sealed[i] ^= 0x01;
    }
    assert_int_equal(vault_unseal(s, 1, sealed, n, &BIND, 0, &out), VAULT_OK);
    free(out);
    for (size_t len = 0; len < VAULT_SEAL_PUB_LEN + 12 + 16 + 1; len++)
        assert_int_equal(vault_unseal(s, 1, sealed, len, &BIND, 0, &out), VAULT_ERR_TOKEN);
    /* A secret with a NUL inside would be cut short by every C string after it. */
    const unsigned char nul[] = {'a', 'b', 0, 'c'};
    n = seal(pub, 1, &BIND, nul, sizeof(nul), sealed);
    assert_int_equal(vault_unseal(s, 1, sealed, n, &BIND, 0, &out), VAULT_ERR_TOKEN);
    assert_null(out);
    vault_sealer_destroy(s);
}

/* Rotation: the older key keeps opening what was sealed to it until its @UNTIL, then nothing. */
static void an_older_key_opens_only_within_its_grace(void **state)
{
    (void)state;
    vault_sealer *s = parse_ok("v2:" SCALAR_ONE ",v1:" SCALAR_TWO "@1800000000");
    vault_sealer *old = parse_ok("v1:" SCALAR_TWO);
    uint32_t version;
    unsigned char pub[VAULT_SEAL_PUB_LEN], sealed[256];
    assert_int_equal(vault_sealer_current(old, &version, pub), 0);
    const char secret[] = "k\ns";
    size_t n = seal(pub, 1, &BIND, (const unsigned char *)secret, strlen(secret), sealed);
    char *out = NULL;
    assert_int_equal(vault_unseal(s, 1, sealed, n, &BIND, 1799999999, &out), VAULT_OK);
    assert_string_equal(out, secret);
    free(out);
    out = NULL;
    assert_int_equal(vault_unseal(s, 1, sealed, n, &BIND, 1800000000, &out),
                     VAULT_ERR_UNKNOWN_VERSION);
    assert_null(out);
    /* Sealed to v1's point but labelled v2: the newer key cannot open it. */
    assert_int_equal(vault_unseal(s, 2, sealed, n, &BIND, 0, &out), VAULT_ERR_TOKEN);
    vault_sealer_destroy(old);
    vault_sealer_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_lists_are_checked_and_reasons_hold_no_key),
        cmocka_unit_test(the_public_point_is_the_keys),
        cmocka_unit_test(a_sealed_secret_opens_only_with_its_binding),
        cmocka_unit_test(tampered_short_or_nul_bearing_input_is_refused),
        cmocka_unit_test(an_older_key_opens_only_within_its_grace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
