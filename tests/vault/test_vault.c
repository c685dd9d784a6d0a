/* test_vault.c - the high-level vault: iteration floor, per-user tokens under the newest
 * master version, decrypting old versions, rewrap to the newest, wrong user/salt/version
 * failing, and the warm cache (no derivation per call). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vault/vault.h"

#define K_A "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define K_B "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="

static const unsigned char salt_a[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const unsigned char salt_b[16] = {16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1};

static vault *make_vault(const char *spec, uint32_t iterations)
{
    vault_masterkeys *mk = NULL;
    vault_config cfg;
    vault *v = NULL;
    char err[200];
    assert_int_equal(vault_masterkeys_parse(spec, strlen(spec), &mk, err, sizeof(err)), VAULT_OK);
    vault_config_default(&cfg);
    cfg.iterations = iterations;
    cfg.unsafe_allow_low_iterations_for_tests = 1;
    assert_int_equal(vault_create(&cfg, mk, &v), VAULT_OK);
    return v;
}

static void iterations_below_the_floor_are_refused(void **state)
{
    vault_masterkeys *mk = NULL;
    vault_config cfg;
    vault *v = NULL;
    (void)state;
    vault_config_default(&cfg);
    assert_int_equal(cfg.iterations, 600000);
    cfg.iterations = 599999;
    assert_int_equal(vault_masterkeys_parse("v1:" K_A, strlen("v1:" K_A), &mk, NULL, 0), VAULT_OK);
    assert_int_equal(vault_create(&cfg, mk, &v), VAULT_ERR_WEAK_PARAMS); /* takes mk anyway */
    assert_null(v);
    cfg.iterations = 1200000; /* upward is fine */
    assert_int_equal(vault_masterkeys_parse("v1:" K_A, strlen("v1:" K_A), &mk, NULL, 0), VAULT_OK);
    assert_int_equal(vault_create(&cfg, mk, &v), VAULT_OK);
    vault_destroy(v);
    vault_destroy(NULL);
}

static void encrypt_decrypt_round_trip_with_warm_cache(void **state)
{
    vault *v = make_vault("v1:" K_A, 1000);
    vault_secret *pt = NULL, *back = NULL;
    vault_keycache_stats st;
    char *tok = NULL;
    int version = 0, i;
    (void)state;
    assert_int_equal(vault_secret_create("SECRET-ALPHA-123", 16, &pt), VAULT_OK);
    for (i = 0; i < 20; i++) {
        assert_int_equal(vault_encrypt_secret(v, "user-a", salt_a, 16, pt, &tok, &version),
                         VAULT_OK);
        assert_int_equal(version, 1);
        assert_null(strstr(tok, "SECRET"));
        assert_int_equal(vault_decrypt_secret(v, "user-a", salt_a, 16, version, tok, &back, NULL),
                         VAULT_OK);
        assert_true(vault_secret_equals(back, "SECRET-ALPHA-123", 16));
        vault_secret_destroy(back);
        free(tok);
    }
    vault_keycache_stats_of(v, &st);
    assert_int_equal(st.derivations, 1); /* derived once, not per call */
    vault_secret_destroy(pt);
    vault_destroy(v);
}

static void another_users_salt_or_version_cannot_decrypt(void **state)
{
    vault *v = make_vault("v2:" K_B ",v1:" K_A, 1000);
    vault_secret *pt = NULL, *back = NULL;
    vault_token_reason why = VAULT_REASON_NONE;
    char *tok = NULL;
    int version = 0;
    (void)state;
    assert_int_equal(vault_secret_create("SECRET", 6, &pt), VAULT_OK);
    assert_int_equal(vault_encrypt_secret(v, "user-a", salt_a, 16, pt, &tok, &version), VAULT_OK);
    assert_int_equal(version, 2);
    assert_int_equal(vault_decrypt_secret(v, "user-b", salt_b, 16, 2, tok, &back, &why),
                     VAULT_ERR_TOKEN);
    assert_int_equal(why, VAULT_REASON_MAC);
    assert_int_equal(vault_decrypt_secret(v, "user-a", salt_a, 16, 1, tok, &back, &why),
                     VAULT_ERR_TOKEN);
    assert_int_equal(vault_decrypt_secret(v, "user-a", salt_a, 16, 3, tok, &back, &why),
                     VAULT_ERR_UNKNOWN_VERSION);
    assert_null(back);
    /* Every attempt is counted for tradewink_key_decryptions_total: three failures. */
    uint64_t ok = 9, failed = 9;
    vault_decrypt_counts(v, &ok, &failed);
    assert_int_equal(ok, 0);
    assert_int_equal(failed, 3);
    assert_int_equal(vault_decrypt_secret(v, "user-a", salt_a, 16, 2, tok, &back, &why), VAULT_OK);
    vault_secret_destroy(back);
    vault_decrypt_counts(v, &ok, &failed);
    assert_int_equal(ok, 1);
    assert_int_equal(failed, 3);
    vault_decrypt_counts(NULL, &ok, &failed);
    assert_int_equal(ok + failed, 0);
    free(tok);
    vault_secret_destroy(pt);
    vault_destroy(v);
}

static void rewrap_moves_a_v1_record_to_v2(void **state)
{
    vault *v1 = make_vault("v1:" K_A, 1000), *v12, *v2only;
    vault_secret *pt = NULL, *back = NULL;
    char *old = NULL, *neu = NULL;
    int ver = 0, nver = 0;
    (void)state;
    assert_int_equal(vault_secret_create("BROKER-SECRET-XYZ", 17, &pt), VAULT_OK);
    assert_int_equal(vault_encrypt_secret(v1, "u", salt_a, 16, pt, &old, &ver), VAULT_OK);
    assert_int_equal(ver, 1);
    vault_destroy(v1);
    /* operator adds v2: old tokens still decrypt, rewrap moves them */
    v12 = make_vault("v2:" K_B ",v1:" K_A, 1000);
    assert_int_equal(vault_current_version(v12), 2);
    assert_int_equal(vault_decrypt_secret(v12, "u", salt_a, 16, 1, old, &back, NULL), VAULT_OK);
    vault_secret_destroy(back);
    assert_int_equal(vault_rewrap(v12, "u", salt_a, 16, 1, old, &neu, &nver, NULL), VAULT_OK);
    assert_int_equal(nver, 2);
    vault_destroy(v12);
    /* v1 retired: the rewrapped record still decrypts, the old one cannot */
    v2only = make_vault("v2:" K_B, 1000);
    assert_int_equal(vault_decrypt_secret(v2only, "u", salt_a, 16, 2, neu, &back, NULL), VAULT_OK);
    assert_true(vault_secret_equals(back, "BROKER-SECRET-XYZ", 17));
    vault_secret_destroy(back);
    back = NULL;
    assert_int_equal(vault_decrypt_secret(v2only, "u", salt_a, 16, 1, old, &back, NULL),
                     VAULT_ERR_UNKNOWN_VERSION);
    /* a tampered old token does not rewrap */
    assert_int_equal(vault_rewrap(v2only, "u", salt_a, 16, 2, "gAAAAA", &neu, &nver, NULL),
                     VAULT_ERR_TOKEN);
    vault_destroy(v2only);
    free(old);
    free(neu);
    vault_secret_destroy(pt);
}

static void key_matches_an_independent_pbkdf2(void **state)
{
    /* the vault's derived key is PBKDF2(master, salt, iterations) used as the Fernet key */
    vault *v = make_vault("v1:" K_A, 1000);
    vault_secret *pt = NULL, *back = NULL;
    unsigned char key[VAULT_KEY_LEN];
    char *tok = NULL;
    int ver;
    (void)state;
    assert_int_equal(vault_secret_create("abc", 3, &pt), VAULT_OK);
    assert_int_equal(vault_encrypt_secret(v, "u", salt_a, 16, pt, &tok, &ver), VAULT_OK);
    assert_int_equal(vault_pbkdf2_sha256("0123456789abcdef0123456789abcdef", 32, salt_a, 16, 1000,
                                         key, sizeof(key)),
                     VAULT_OK);
    assert_int_equal(vault_fernet_decrypt(key, tok, strlen(tok), 0, &back, NULL), VAULT_OK);
    assert_true(vault_secret_equals(back, "abc", 3));
    vault_secret_destroy(back);
    vault_secret_destroy(pt);
    free(tok);
    vault_destroy(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iterations_below_the_floor_are_refused),
        cmocka_unit_test(encrypt_decrypt_round_trip_with_warm_cache),
        cmocka_unit_test(another_users_salt_or_version_cannot_decrypt),
        cmocka_unit_test(rewrap_moves_a_v1_record_to_v2),
        cmocka_unit_test(key_matches_an_independent_pbkdf2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
