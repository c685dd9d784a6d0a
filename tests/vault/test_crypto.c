/* test_crypto.c - the primitives under Fernet and key derivation against published vectors:
 * PBKDF2-HMAC-SHA256 (RFC 7914, RFC 6070-style and Wycheproof), AES-CBC-PKCS#5 and
 * HMAC-SHA256 (Wycheproof, including bad padding and modified tags), and the strict base64
 * codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vault/vault_int.h"
#include "vt_util.h"

static void hex_or_fail(const char *hex, unsigned char **out, size_t *len)
{
    assert_int_equal(vt_hex(hex, out, len), 0);
}

static void pbkdf2_rfc_vectors_all_match(void **state)
{
    json_t *doc = vt_load_json("pbkdf2/vectors.json"), *v;
    json_t *arr = json_object_get(doc, "vectors");
    size_t i, count = 0;
    (void)state;
    assert_true(json_array_size(arr) >= 8);
    json_array_foreach(arr, i, v)
    {
        unsigned char *pw, *salt, *dk, *out;
        size_t pwl, sl, dkl;
        hex_or_fail(json_string_value(json_object_get(v, "password_hex")), &pw, &pwl);
        hex_or_fail(json_string_value(json_object_get(v, "salt_hex")), &salt, &sl);
        hex_or_fail(json_string_value(json_object_get(v, "dk")), &dk, &dkl);
        assert_int_equal((size_t)json_integer_value(json_object_get(v, "dklen")), dkl);
        out = malloc(dkl);
        assert_non_null(out);
        assert_int_equal(
            vault_pbkdf2_sha256(pw, pwl, salt, sl,
                                (uint32_t)json_integer_value(json_object_get(v, "iterations")), out,
                                dkl),
            VAULT_OK);
        assert_memory_equal(out, dk, dkl);
        count++;
        free(pw);
        free(salt);
        free(dk);
        free(out);
    }
    assert_int_equal(count, json_array_size(arr));
    json_decref(doc);
}

static void pbkdf2_wycheproof_vectors_all_match(void **state)
{
    json_t *doc = vt_load_json("pbkdf2/pbkdf2_hmacsha256_test.json"), *g, *t;
    size_t gi, ti, count = 0;
    (void)state;
    json_array_foreach(json_object_get(doc, "testGroups"), gi, g)
    {
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            unsigned char *pw, *salt, *dk, *out;
            size_t pwl, sl, dkl;
            vault_rc rc;
            hex_or_fail(json_string_value(json_object_get(t, "password")), &pw, &pwl);
            hex_or_fail(json_string_value(json_object_get(t, "salt")), &salt, &sl);
            hex_or_fail(json_string_value(json_object_get(t, "dk")), &dk, &dkl);
            out = malloc(dkl + 1);
            assert_non_null(out);
            rc = vault_pbkdf2_sha256(
                pw, pwl, salt, sl,
                (uint32_t)json_integer_value(json_object_get(t, "iterationCount")), out, dkl);
            if (strcmp(json_string_value(json_object_get(t, "result")), "valid") == 0) {
                assert_int_equal(rc, VAULT_OK);
                assert_memory_equal(out, dk, dkl);
            } else {
                assert_true(rc != VAULT_OK || memcmp(out, dk, dkl) != 0);
            }
            count++;
            free(pw);
            free(salt);
            free(dk);
            free(out);
        }
    }
    assert_int_equal(count, json_integer_value(json_object_get(doc, "numberOfTests")));
    json_decref(doc);
}

static void pbkdf2_rejects_nonsense_arguments(void **state)
{
    unsigned char out[32];
    (void)state;
    assert_int_equal(vault_pbkdf2_sha256("p", 1, "s", 1, 0, out, 32), VAULT_ERR_INVALID_ARG);
    assert_int_equal(vault_pbkdf2_sha256("p", 1, "s", 1, 1, out, 0), VAULT_ERR_INVALID_ARG);
    assert_int_equal(vault_pbkdf2_sha256(NULL, 3, "s", 1, 1, out, 32), VAULT_ERR_INVALID_ARG);
    assert_false(vault_iterations_ok(599999));
    assert_true(vault_iterations_ok(600000));
    assert_true(vault_iterations_ok(2000000));
}

static void aes_cbc_wycheproof_vectors(void **state)
{
    json_t *doc = vt_load_json("fernet/aes_cbc_pkcs5_test.json"), *g, *t;
    size_t gi, ti, count = 0, invalid = 0;
    (void)state;
    json_array_foreach(json_object_get(doc, "testGroups"), gi, g)
    {
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            unsigned char *key, *iv, *msg, *ct, *enc = NULL, *dec;
            size_t kl, ivl, ml, cl, el = 0, dl = 0;
            int valid = strcmp(json_string_value(json_object_get(t, "result")), "valid") == 0;
            vault_rc rc;
            hex_or_fail(json_string_value(json_object_get(t, "key")), &key, &kl);
            hex_or_fail(json_string_value(json_object_get(t, "iv")), &iv, &ivl);
            hex_or_fail(json_string_value(json_object_get(t, "msg")), &msg, &ml);
            hex_or_fail(json_string_value(json_object_get(t, "ct")), &ct, &cl);
            assert_int_equal(ivl, 16);
            dec = malloc(cl + 16);
            assert_non_null(dec);
            rc = vault_aes_cbc_decrypt(key, kl, iv, ct, cl, dec, &dl);
            if (valid) {
                assert_int_equal(rc, VAULT_OK);
                assert_int_equal(dl, ml);
                assert_memory_equal(dec, msg, ml);
                assert_int_equal(vault_aes_cbc_encrypt(key, kl, iv, msg, ml, &enc, &el), VAULT_OK);
                assert_int_equal(el, cl);
                assert_memory_equal(enc, ct, cl);
            } else {
                assert_int_equal(rc, VAULT_ERR_TOKEN);
                invalid++;
            }
            count++;
            free(key);
            free(iv);
            free(msg);
            free(ct);
            free(enc);
            free(dec);
        }
    }
    assert_int_equal(count, json_integer_value(json_object_get(doc, "numberOfTests")));
    assert_true(invalid > 0);
    json_decref(doc);
}

static void hmac_sha256_wycheproof_vectors(void **state)
{
    json_t *doc = vt_load_json("fernet/hmac_sha256_test.json"), *g, *t;
    size_t gi, ti, count = 0, invalid = 0;
    (void)state;
    json_array_foreach(json_object_get(doc, "testGroups"), gi, g)
    {
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            unsigned char *key, *msg, *tag, full[32];
            size_t kl, ml, tl;
            int valid = strcmp(json_string_value(json_object_get(t, "result")), "valid") == 0;
            hex_or_fail(json_string_value(json_object_get(t, "key")), &key, &kl);
            hex_or_fail(json_string_value(json_object_get(t, "msg")), &msg, &ml);
            hex_or_fail(json_string_value(json_object_get(t, "tag")), &tag, &tl);
            assert_int_equal(tl * 8, (size_t)json_integer_value(json_object_get(g, "tagSize")));
            assert_int_equal(vault_hmac_sha256_verify(key, kl, msg, ml, tag, tl), valid);
            assert_int_equal(vault_hmac_sha256(key, kl, msg, ml, full), VAULT_OK);
            assert_int_equal(memcmp(full, tag, tl) == 0, valid);
            if (!valid)
                invalid++;
            count++;
            free(key);
            free(msg);
            free(tag);
        }
    }
    assert_int_equal(count, json_integer_value(json_object_get(doc, "numberOfTests")));
    assert_true(invalid > 0);
    json_decref(doc);
}

static void base64_is_strict_and_canonical(void **state)
{
    static const struct {
        const char *in;
        int url, pad, ok;
        const char *out;
    } cases[] = {
        {"", 1, 1, 1, ""},
        {"Zg==", 1, 1, 1, "f"},
        {"Zm8=", 1, 1, 1, "fo"},
        {"Zm9v", 1, 1, 1, "foo"},
        {"Zg", 1, 0, 1, "f"},      /* padding optional when allowed */
        {"Zg", 1, 1, 0, NULL},     /* but required for tokens */
        {"Zh==", 1, 1, 0, NULL},   /* non-canonical trailing bits */
        {"Zg=", 1, 0, 0, NULL},    /* half padding */
        {"Z===", 1, 1, 0, NULL},   /* too much padding */
        {"Zm9v\n", 1, 0, 0, NULL}, /* no whitespace */
        {"-_-_", 1, 1, 1, "\xfb\xff\xbf"},
        {"-_-_", 0, 1, 0, NULL}, /* url chars in standard mode */
        {"+/+/", 1, 1, 0, NULL}, /* standard chars in url mode */
        {"+/+/", 2, 1, 1, "\xfb\xff\xbf"},
        {"Zm=9", 1, 1, 0, NULL}, /* padding in the middle */
        {"Z", 1, 0, 0, NULL},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char out[16];
        size_t n = 0;
        int rc =
            vault_b64_decode(cases[i].in, strlen(cases[i].in), cases[i].url, cases[i].pad, out, &n);
        print_message("b64 case %zu: %s\n", i, cases[i].in);
        assert_int_equal(rc == 0, cases[i].ok);
        if (cases[i].ok) {
            char enc[32];
            assert_int_equal(n, strlen(cases[i].out));
            assert_memory_equal(out, cases[i].out, n);
            vault_b64_encode(out, n, cases[i].url != 0, enc);
            if (cases[i].pad && cases[i].url != 2)
                assert_string_equal(enc, cases[i].in);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pbkdf2_rfc_vectors_all_match),
        cmocka_unit_test(pbkdf2_wycheproof_vectors_all_match),
        cmocka_unit_test(pbkdf2_rejects_nonsense_arguments),
        cmocka_unit_test(aes_cbc_wycheproof_vectors),
        cmocka_unit_test(hmac_sha256_wycheproof_vectors),
        cmocka_unit_test(base64_is_strict_and_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
