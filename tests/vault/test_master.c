/* test_master.c - TW_VAULT_MASTER_KEYS parsing (every bad form, errors that name the entry
 * but never echo key material) and the dev-mode master key file (0600, refuses open modes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vault/vault_int.h"

/* 32 bytes "0123456789abcdef0123456789abcdef" in standard base64 */
#define K32 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define K32URL "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY" /* unpadded */
/* 31 bytes */
#define K31 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZQ=="

static void valid_specs_parse_newest_first(void **state)
{
    static const struct {
        const char *spec;
        size_t count;
        int first, last;
    } cases[] = {
        {"v1:" K32, 1, 1, 1},
        {"v2:" K32 ",v1:" K32URL, 2, 2, 1},
        {" v10:" K32 " , v3:" K32 "\n", 2, 10, 3},
        {"V7:" K32, 1, 7, 7},
        {"v2147483:" K32, 1, 2147483, 2147483},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        vault_masterkeys *mk = NULL;
        char err[256];
        size_t len = 0;
        assert_int_equal(
            vault_masterkeys_parse(cases[i].spec, strlen(cases[i].spec), &mk, err, sizeof(err)),
            VAULT_OK);
        assert_int_equal(vault_masterkeys_count(mk), cases[i].count);
        assert_int_equal(vault_masterkeys_version(mk, 0), cases[i].first);
        assert_int_equal(vault_masterkeys_version(mk, cases[i].count - 1), cases[i].last);
        assert_non_null(vault_masterkeys_lookup(mk, cases[i].first, &len));
        assert_int_equal(len, 32);
        assert_memory_equal(vault_masterkeys_lookup(mk, cases[i].first, NULL),
                            "0123456789abcdef0123456789abcdef", 32);
        assert_null(vault_masterkeys_lookup(mk, 99999999, NULL));
        vault_masterkeys_destroy(mk);
    }
}

static void every_bad_form_is_refused_naming_the_entry(void **state)
{
    static const struct {
        const char *spec;
        const char *must_contain;
    } cases[] = {
        {"", "entry 1 is empty"},
        {",", "entry 1 is empty"},
        {"v1:" K32 ",", "entry 2 is empty"},
        {"v1:" K32 ",,v0:" K32, "entry 2 is empty"},
        {K32, "entry 1 must look like"},                 /* no version */
        {"1:" K32, "entry 1 must look like"},            /* no 'v' */
        {"v:" K32, "entry 1 must look like"},            /* no number */
        {"v0:" K32, "entry 1 must look like"},           /* zero */
        {"v-1:" K32, "entry 1 must look like"},          /* negative */
        {"v01:" K32, "entry 1 must look like"},          /* leading zero */
        {"v1x:" K32, "entry 1 must look like"},          /* junk */
        {"v99999999999:" K32, "entry 1 must look like"}, /* overflow */
        {"v2 " K32, "entry 1 must look like"},           /* no colon */
        {"v1:" K31, "entry 1 (v1): key decodes to 31 bytes"},
        {"v1:", "entry 1 (v1): key decodes to 0 bytes"},
        {"v1:" K32 "!", "entry 1 (v1): key is not valid base64"},
        {"v1:MDEy MzQ1", "entry 1 (v1): key is not valid base64"},
        {"v2:" K32 ",v2:" K32, "entry 2 (v2): duplicate version"},
        {"v1:" K32 ",v2:" K32, "entry 2 (v2): versions must be listed newest first"},
        {"v3:" K32 ",v1:" K31, "entry 2 (v1): key decodes to 31 bytes"},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        vault_masterkeys *mk = NULL;
        char err[256];
        print_message("bad spec case %zu\n", i);
        assert_int_equal(
            vault_masterkeys_parse(cases[i].spec, strlen(cases[i].spec), &mk, err, sizeof(err)),
            VAULT_ERR_MASTER_KEY);
        assert_null(mk);
        if (strstr(err, cases[i].must_contain) == NULL)
            fail_msg("case %zu: error '%s' lacks '%s'", i, err, cases[i].must_contain);
        /* never echo key material, not even a fragment */
        assert_null(strstr(err, "MDEy"));
        assert_null(strstr(err, "NjY"));
    }
}

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vault_mk_XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void dev_key_file_is_created_0600_and_reloaded(void **state)
{
    char path[300], err[256];
    vault_masterkeys *a = NULL, *b = NULL;
    struct stat st;
    size_t la = 0, lb = 0;
    const unsigned char *ka, *kb;
    (void)state;
    snprintf(path, sizeof(path), "%s/master.keys", tmpdir);
    assert_int_equal(vault_masterkeys_load_or_create(path, &a, err, sizeof(err)), VAULT_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(vault_masterkeys_count(a), 1);
    assert_int_equal(vault_masterkeys_version(a, 0), 1);
    assert_int_equal(vault_masterkeys_load_or_create(path, &b, err, sizeof(err)), VAULT_OK);
    ka = vault_masterkeys_lookup(a, 1, &la);
    kb = vault_masterkeys_lookup(b, 1, &lb);
    assert_int_equal(la, 32);
    assert_int_equal(lb, 32);
    assert_memory_equal(ka, kb, 32); /* the same key, not a fresh one */
    vault_masterkeys_destroy(a);
    vault_masterkeys_destroy(b);
}

static void dev_key_file_readable_by_others_is_refused(void **state)
{
    static const mode_t bad[] = {0640, 0604, 0660, 0644, 0610};
    char path[300], err[256];
    size_t i;
    (void)state;
    snprintf(path, sizeof(path), "%s/master.keys", tmpdir);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vault_masterkeys *mk = NULL;
        assert_int_equal(chmod(path, bad[i]), 0);
        assert_int_equal(vault_masterkeys_load_or_create(path, &mk, err, sizeof(err)),
                         VAULT_ERR_PERMISSION);
        assert_null(mk);
        assert_non_null(strstr(err, "refusing"));
    }
    assert_int_equal(chmod(path, 0600), 0);
}

static void dev_key_file_symlink_and_garbage_are_refused(void **state)
{
    char path[300], link[300], junk[300], err[256];
    vault_masterkeys *mk = NULL;
    FILE *f;
    (void)state;
    snprintf(path, sizeof(path), "%s/master.keys", tmpdir);
    snprintf(link, sizeof(link), "%s/link.keys", tmpdir);
    snprintf(junk, sizeof(junk), "%s/junk.keys", tmpdir);
    assert_int_equal(symlink(path, link), 0);
    assert_int_not_equal(vault_masterkeys_load_or_create(link, &mk, err, sizeof(err)), VAULT_OK);
    assert_null(mk);
    f = fopen(junk, "w");
    assert_non_null(f);
    fputs("v1:" K31 "\n", f);
    fclose(f);
    assert_int_equal(chmod(junk, 0600), 0);
    assert_int_equal(vault_masterkeys_load_or_create(junk, &mk, err, sizeof(err)),
                     VAULT_ERR_MASTER_KEY);
    assert_null(mk);
}

static void destroy_null_is_a_no_op(void **state)
{
    (void)state;
    vault_masterkeys_destroy(NULL);
    assert_int_equal(vault_masterkeys_count(NULL), 0);
    assert_int_equal(vault_masterkeys_version(NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_specs_parse_newest_first),
        cmocka_unit_test(every_bad_form_is_refused_naming_the_entry),
        cmocka_unit_test(dev_key_file_is_created_0600_and_reloaded),
        cmocka_unit_test(dev_key_file_readable_by_others_is_refused),
        cmocka_unit_test(dev_key_file_symlink_and_garbage_are_refused),
        cmocka_unit_test(destroy_null_is_a_no_op),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
