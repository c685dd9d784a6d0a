/* test_fernet.c - Fernet against the spec's vectors, plus the negative properties the vault
 * relies on: any tampered byte, a wrong key, an expired TTL or a far-future timestamp fails,
 * always with the one generic VAULT_ERR_TOKEN and a precise reason for logs. */
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

static const char spec_key[] = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
static const uint64_t t0 = 499162800; /* 1985-10-26T01:20:00-07:00 */

static void key_of(const char *b64, unsigned char key[VAULT_KEY_LEN])
{
    assert_int_equal(vault_fernet_key_decode(b64, strlen(b64), key), VAULT_OK);
}

static void spec_generate_vectors_match_byte_for_byte(void **state)
{
    json_t *all = vt_load_json("fernet/generate.json"), *c;
    size_t i, k;
    (void)state;
    assert_true(json_array_size(all) > 0);
    json_array_foreach(all, i, c)
    {
        unsigned char key[VAULT_KEY_LEN], iv[16];
        const char *src = json_string_value(json_object_get(c, "src"));
        char *tok = NULL;
        json_t *ivj = json_object_get(c, "iv");
        key_of(json_string_value(json_object_get(c, "secret")), key);
        assert_int_equal(json_array_size(ivj), 16);
        for (k = 0; k < 16; k++)
            iv[k] = (unsigned char)json_integer_value(json_array_get(ivj, k));
        assert_int_equal(vault_fernet_encrypt_at(
                             key, src, strlen(src),
                             vt_rfc3339(json_string_value(json_object_get(c, "now"))), iv, &tok),
                         VAULT_OK);
        assert_string_equal(tok, json_string_value(json_object_get(c, "token")));
        free(tok);
    }
    json_decref(all);
}

static void spec_verify_vectors_decrypt(void **state)
{
    json_t *all = vt_load_json("fernet/verify.json"), *c;
    size_t i;
    (void)state;
    assert_true(json_array_size(all) > 0);
    json_array_foreach(all, i, c)
    {
        unsigned char key[VAULT_KEY_LEN];
        const char *tok = json_string_value(json_object_get(c, "token"));
        const char *src = json_string_value(json_object_get(c, "src"));
        vault_secret *pt = NULL;
        vault_token_reason why = VAULT_REASON_INTERNAL;
        key_of(json_string_value(json_object_get(c, "secret")), key);
        assert_int_equal(vault_fernet_decrypt_at(
                             key, tok, strlen(tok),
                             json_integer_value(json_object_get(c, "ttl_sec")),
                             vt_rfc3339(json_string_value(json_object_get(c, "now"))), &pt, &why),
                         VAULT_OK);
        assert_int_equal(why, VAULT_REASON_NONE);
        assert_true(vault_secret_equals(pt, src, strlen(src)));
        vault_secret_destroy(pt);
    }
    json_decref(all);
}

static vault_token_reason expected_reason(const char *desc)
{
    static const struct {
        const char *prefix;
        vault_token_reason r;
    } map[] = {
        {"incorrect mac", VAULT_REASON_MAC},
        {"too short", VAULT_REASON_TOO_SHORT},
        {"invalid base64", VAULT_REASON_BASE64},
        {"payload size not multiple", VAULT_REASON_BLOCK_SIZE},
        {"payload padding error", VAULT_REASON_PADDING},
        {"far-future TS", VAULT_REASON_FUTURE},
        {"expired TTL", VAULT_REASON_EXPIRED},
        {"incorrect IV", VAULT_REASON_PADDING},
    };
    size_t i;
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strncmp(desc, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].r;
    fail_msg("unmapped invalid vector: %s", desc);
    return VAULT_REASON_INTERNAL;
}

static void spec_invalid_vectors_all_fail_generically(void **state)
{
    json_t *all = vt_load_json("fernet/invalid.json"), *c;
    size_t i;
    (void)state;
    assert_true(json_array_size(all) >= 8);
    json_array_foreach(all, i, c)
    {
        unsigned char key[VAULT_KEY_LEN];
        const char *tok = json_string_value(json_object_get(c, "token"));
        const char *desc = json_string_value(json_object_get(c, "desc"));
        vault_secret *pt = NULL;
        vault_token_reason why = VAULT_REASON_NONE;
        key_of(json_string_value(json_object_get(c, "secret")), key);
        print_message("invalid vector: %s\n", desc);
        assert_int_equal(vault_fernet_decrypt_at(
                             key, tok, strlen(tok),
                             json_integer_value(json_object_get(c, "ttl_sec")),
                             vt_rfc3339(json_string_value(json_object_get(c, "now"))), &pt, &why),
                         VAULT_ERR_TOKEN);
        assert_null(pt);
        assert_int_equal(why, expected_reason(desc));
    }
    json_decref(all);
}

/* A fixed token over a 40-byte message (3 cipher blocks) for the tamper tests. */
static char *make_token(const unsigned char key[VAULT_KEY_LEN], uint64_t now)
{
    static const unsigned char iv[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
    const char *msg = "PKTESTSECRET0123456789abcdefghijklmnopqr";
    char *tok = NULL;
    assert_int_equal(vault_fernet_encrypt_at(key, msg, strlen(msg), now, iv, &tok), VAULT_OK);
    return tok;
}

static void tampering_any_decoded_byte_fails(void **state)
{
    unsigned char key[VAULT_KEY_LEN], raw[512];
    char *tok, enc[700];
    size_t n = 0, i;
    int bit;
    (void)state;
    key_of(spec_key, key);
    tok = make_token(key, t0);
    assert_int_equal(vault_b64_decode(tok, strlen(tok), 1, 1, raw, &n), 0);
    assert_int_equal(n, 1 + 8 + 16 + 48 + 32);
    for (i = 0; i < n; i++) {
        for (bit = 0; bit < 8; bit += 7) {
            vault_secret *pt = NULL;
            vault_token_reason why = VAULT_REASON_NONE;
            raw[i] ^= (unsigned char)(1u << bit);
            vault_b64_encode(raw, n, 1, enc);
            assert_int_equal(vault_fernet_decrypt_at(key, enc, strlen(enc), 0, t0, &pt, &why),
                             VAULT_ERR_TOKEN);
            assert_null(pt);
            assert_int_not_equal(why, VAULT_REASON_NONE);
            raw[i] ^= (unsigned char)(1u << bit);
        }
    }
    /* and the untouched bytes still decrypt, so the loop above tested something */
    vault_b64_encode(raw, n, 1, enc);
    {
        vault_secret *pt = NULL;
        assert_int_equal(vault_fernet_decrypt_at(key, enc, strlen(enc), 0, t0, &pt, NULL),
                         VAULT_OK);
        vault_secret_destroy(pt);
    }
    free(tok);
}

static void tampering_any_token_character_fails(void **state)
{
    unsigned char key[VAULT_KEY_LEN];
    char *tok;
    size_t i, len;
    (void)state;
    key_of(spec_key, key);
    tok = make_token(key, t0);
    len = strlen(tok);
    for (i = 0; i < len; i++) {
        char saved = tok[i];
        vault_secret *pt = NULL;
        tok[i] = saved == 'A' ? 'B' : 'A';
        if (saved == '=')
            tok[i] = 'A';
        assert_int_equal(vault_fernet_decrypt_at(key, tok, len, 0, t0, &pt, NULL), VAULT_ERR_TOKEN);
        assert_null(pt);
        tok[i] = saved;
    }
    /* every truncation fails too */
    for (i = 0; i < len; i++) {
        vault_secret *pt = NULL;
        assert_int_equal(vault_fernet_decrypt_at(key, tok, i, 0, t0, &pt, NULL), VAULT_ERR_TOKEN);
    }
    free(tok);
}

static void wrong_key_fails_on_the_mac(void **state)
{
    unsigned char key[VAULT_KEY_LEN], other[VAULT_KEY_LEN];
    vault_token_reason why = VAULT_REASON_NONE;
    char *tok;
    size_t i;
    (void)state;
    key_of(spec_key, key);
    tok = make_token(key, t0);
    for (i = 0; i < VAULT_KEY_LEN; i++) {
        vault_secret *pt = NULL;
        memcpy(other, key, sizeof(other));
        other[i] ^= 0x80;
        if (i < 16) { /* any signing-key change is caught by the MAC */
            assert_int_equal(vault_fernet_decrypt_at(other, tok, strlen(tok), 0, t0, &pt, &why),
                             VAULT_ERR_TOKEN);
            assert_int_equal(why, VAULT_REASON_MAC);
            assert_null(pt);
        } else { /* an encryption-key change never yields the original plaintext */
            vault_rc rc = vault_fernet_decrypt_at(other, tok, strlen(tok), 0, t0, &pt, &why);
            if (rc == VAULT_OK)
                assert_false(
                    vault_secret_equals(pt, "PKTESTSECRET0123456789abcdefghijklmnopqr", 40));
            else
                assert_int_equal(why, VAULT_REASON_PADDING);
            vault_secret_destroy(pt);
        }
    }
    free(tok);
}

static void expired_ttl_fails_and_boundary_passes(void **state)
{
    unsigned char key[VAULT_KEY_LEN];
    vault_secret *pt = NULL;
    vault_token_reason why = VAULT_REASON_NONE;
    char *tok;
    (void)state;
    key_of(spec_key, key);
    tok = make_token(key, t0);
    assert_int_equal(vault_fernet_decrypt_at(key, tok, strlen(tok), 60, t0 + 60, &pt, &why),
                     VAULT_OK);
    vault_secret_destroy(pt);
    pt = NULL;
    assert_int_equal(vault_fernet_decrypt_at(key, tok, strlen(tok), 60, t0 + 61, &pt, &why),
                     VAULT_ERR_TOKEN);
    assert_int_equal(why, VAULT_REASON_EXPIRED);
    /* no TTL: an old token is fine (stored broker keys never expire) */
    assert_int_equal(vault_fernet_decrypt_at(key, tok, strlen(tok), 0, t0 + 100000000, &pt, &why),
                     VAULT_OK);
    vault_secret_destroy(pt);
    free(tok);
}

static void far_future_timestamp_fails_even_without_ttl(void **state)
{
    unsigned char key[VAULT_KEY_LEN];
    vault_secret *pt = NULL;
    vault_token_reason why = VAULT_REASON_NONE;
    char *tok;
    (void)state;
    key_of(spec_key, key);
    tok = make_token(key, t0 + 61);
    assert_int_equal(vault_fernet_decrypt_at(key, tok, strlen(tok), 60, t0, &pt, &why),
                     VAULT_ERR_TOKEN);
    assert_int_equal(why, VAULT_REASON_FUTURE);
    assert_int_equal(vault_fernet_decrypt_at(key, tok, strlen(tok), 0, t0, &pt, &why),
                     VAULT_ERR_TOKEN);
    assert_int_equal(why, VAULT_REASON_FUTURE);
    assert_int_equal(vault_fernet_decrypt_at(key, tok, strlen(tok), 0, t0 + 1, &pt, &why),
                     VAULT_OK); /* exactly 60 s ahead is accepted, as Python does */
    vault_secret_destroy(pt);
    free(tok);
}

static void random_iv_round_trips_every_length(void **state)
{
    unsigned char key[VAULT_KEY_LEN], msg[100];
    size_t n;
    char *a = NULL, *b = NULL;
    (void)state;
    key_of(spec_key, key);
    for (n = 0; n < sizeof(msg); n++)
        msg[n] = (unsigned char)(n * 7 + 1);
    for (n = 0; n <= sizeof(msg); n++) {
        vault_secret *pt = NULL;
        assert_int_equal(vault_fernet_encrypt(key, msg, n, &a), VAULT_OK);
        assert_int_equal(vault_fernet_encrypt(key, msg, n, &b), VAULT_OK);
        assert_string_not_equal(a, b); /* fresh IV each time */
        assert_int_equal(strlen(a) % 4, 0);
        assert_int_equal(vault_fernet_decrypt(key, a, strlen(a), 60, &pt, NULL), VAULT_OK);
        assert_int_equal(vault_secret_len(pt), n);
        assert_true(vault_secret_equals(pt, msg, n));
        vault_secret_destroy(pt);
        free(a);
        free(b);
    }
}

static void malformed_encodings_are_refused(void **state)
{
    unsigned char key[VAULT_KEY_LEN];
    vault_token_reason why = VAULT_REASON_NONE;
    vault_secret *pt = NULL;
    char *tok, *big;
    size_t len;
    (void)state;
    key_of(spec_key, key);
    /* 5 bytes -> 73 raw bytes -> the token ends in "==" */
    assert_int_equal(vault_fernet_encrypt(key, "hello", 5, &tok), VAULT_OK);
    len = strlen(tok);
    assert_int_equal(tok[len - 1], '=');
    /* without its padding */
    while (tok[len - 1] == '=')
        len--;
    assert_int_equal(vault_fernet_decrypt_at(key, tok, len, 0, t0, &pt, &why), VAULT_ERR_TOKEN);
    assert_int_equal(why, VAULT_REASON_BASE64);
    /* standard alphabet characters are not base64url */
    tok[5] = '+';
    assert_int_equal(vault_fernet_decrypt_at(key, tok, strlen(tok), 0, t0, &pt, &why),
                     VAULT_ERR_TOKEN);
    assert_int_equal(why, VAULT_REASON_BASE64);
    /* over the size cap: refused before decoding */
    big = malloc(VAULT_FERNET_MAX_TOKEN + 5);
    assert_non_null(big);
    memset(big, 'A', VAULT_FERNET_MAX_TOKEN + 4);
    assert_int_equal(
        vault_fernet_decrypt_at(key, big, VAULT_FERNET_MAX_TOKEN + 4, 0, t0, &pt, &why),
        VAULT_ERR_TOKEN);
    assert_int_equal(why, VAULT_REASON_TOO_LONG);
    free(big);
    free(tok);
    /* a key that is not 32 bytes */
    assert_int_equal(vault_fernet_key_decode("AAAA", 4, key), VAULT_ERR_INVALID_ARG);
}

static void allocation_failures_are_clean(void **state)
{
    unsigned char key[VAULT_KEY_LEN];
    long n;
    (void)state;
    key_of(spec_key, key);
    for (n = 1; n < 10; n++) {
        char *tok = NULL;
        vault_secret *pt = NULL;
        vault_rc rc;
        vault_test_fail_alloc_after(n);
        rc = vault_fernet_encrypt(key, "abc", 3, &tok);
        if (rc == VAULT_OK) {
            vault_test_fail_alloc_after(n);
            rc = vault_fernet_decrypt(key, tok, strlen(tok), 0, &pt, NULL);
            assert_true(rc == VAULT_OK || rc == VAULT_ERR_NOMEM);
            vault_secret_destroy(pt);
            free(tok);
        } else {
            assert_int_equal(rc, VAULT_ERR_NOMEM);
            assert_null(tok);
        }
    }
    vault_test_fail_alloc_after(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spec_generate_vectors_match_byte_for_byte),
        cmocka_unit_test(spec_verify_vectors_decrypt),
        cmocka_unit_test(spec_invalid_vectors_all_fail_generically),
        cmocka_unit_test(tampering_any_decoded_byte_fails),
        cmocka_unit_test(tampering_any_token_character_fails),
        cmocka_unit_test(wrong_key_fails_on_the_mac),
        cmocka_unit_test(expired_ttl_fails_and_boundary_passes),
        cmocka_unit_test(far_future_timestamp_fails_even_without_ttl),
        cmocka_unit_test(random_iv_round_trips_every_length),
        cmocka_unit_test(malformed_encodings_are_refused),
        cmocka_unit_test(allocation_failures_are_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
