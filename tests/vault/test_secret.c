/* test_secret.c - secret buffers (copy, take-and-wipe, constant-time compare, NUL), masks,
 * and key memory: OpenSSL's secure heap or our locked, MADV_DONTDUMP fallback pages, checked
 * against the kernel's own view in /proc/self/smaps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "vault/vault_int.h"

static void secret_copies_and_is_nul_terminated(void **state)
{
    vault_secret *s = NULL;
    (void)state;
    assert_int_equal(vault_secret_create("abc", 3, &s), VAULT_OK);
    assert_int_equal(vault_secret_len(s), 3);
    assert_memory_equal(vault_secret_data(s), "abc", 3);
    assert_int_equal(vault_secret_data(s)[3], '\0');
    assert_true(vault_secret_equals(s, "abc", 3));
    assert_false(vault_secret_equals(s, "abd", 3));
    assert_false(vault_secret_equals(s, "ab", 2));
    vault_secret_destroy(s);
    assert_int_equal(vault_secret_create(NULL, 0, &s), VAULT_OK);
    assert_int_equal(vault_secret_len(s), 0);
    vault_secret_destroy(s);
    assert_int_equal(vault_secret_create(NULL, 4, &s), VAULT_ERR_INVALID_ARG);
    vault_secret_destroy(NULL);
}

static void take_wipes_the_source_buffer(void **state)
{
    char field[] = "SECRETKEYFROMPROTOBUF";
    size_t n = strlen(field), i;
    vault_secret *s = NULL;
    (void)state;
    assert_int_equal(vault_secret_take(field, n, &s), VAULT_OK);
    for (i = 0; i < n; i++)
        assert_int_equal(field[i], 0);
    assert_true(vault_secret_equals(s, "SECRETKEYFROMPROTOBUF", n));
    vault_secret_destroy(s);
}

static void take_wipes_the_source_even_when_allocation_fails(void **state)
{
    char field[] = "SECRETKEYFROMPROTOBUF";
    size_t n = strlen(field), i;
    vault_secret *s = NULL;
    (void)state;
    if (CRYPTO_secure_malloc_initialized())
        skip(); /* secure heap path does not use the wrapper */
    vault_test_fail_alloc_after(1);
    assert_int_equal(vault_secret_take(field, n, &s), VAULT_ERR_NOMEM);
    vault_test_fail_alloc_after(0);
    assert_null(s);
    for (i = 0; i < n; i++)
        assert_int_equal(field[i], 0);
}

static void mask_shows_two_and_four_only(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"PKAB12CD34EF9XQ2", "PK\xe2\x80\xa6"
                             "9XQ2"},
        {"AKIAIOSFODNN7EXAMPLE", "AK\xe2\x80\xa6"
                                 "MPLE"},
        {"123456789012", "12\xe2\x80\xa6"
                         "9012"},        /* exactly the minimum */
        {"12345678901", "\xe2\x80\xa6"}, /* one short: fully masked */
        {"short", "\xe2\x80\xa6"},
        {"", "\xe2\x80\xa6"},
        {"P\nAB12CD34EF9XQ2", "\xe2\x80\xa6"}, /* control char in the shown part */
        {"PKAB12CD34EF9X Q", "\xe2\x80\xa6"},  /* space in the shown part */
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[VAULT_MASK_MAX];
        memset(out, 'X', sizeof(out));
        vault_mask(cases[i].in, strlen(cases[i].in), out);
        assert_string_equal(out, cases[i].out);
    }
    {
        vault_secret *s = NULL;
        char out[VAULT_MASK_MAX];
        assert_int_equal(vault_secret_create("PKAB12CD34EF9XQ2", 16, &s), VAULT_OK);
        vault_mask_secret(s, out);
        assert_string_equal(out, "PK\xe2\x80\xa6"
                                 "9XQ2");
        vault_secret_destroy(s);
        vault_mask_secret(NULL, out);
        assert_string_equal(out, "\xe2\x80\xa6");
    }
}

/* VmFlags of the mapping containing p, from /proc/self/smaps. */
/* One smaps line: the VmFlags text copied out of it always fits a buffer of the same size. */
enum { SMAPS_LINE = 512 };

static int vmflags_of(const void *p, char *flags, size_t len)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[SMAPS_LINE];
    int in = 0, found = 0;
    uintptr_t a = (uintptr_t)p;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = a >= lo && a < hi;
            continue;
        }
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flags, len, "%s", line + 8);
            found = 1;
            break;
        }
    }
    fclose(f);
    return found ? 0 : -1;
}

/* ASan replaces mlock with a no-op that reports success, so "lo" cannot show up there. */
#if defined(__SANITIZE_ADDRESS__)
#define MLOCK_REAL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MLOCK_REAL 0
#endif
#endif
#ifndef MLOCK_REAL
#define MLOCK_REAL 1
#endif

static int has_flag(const char *flags, const char *f)
{
    char pat[8];
    snprintf(pat, sizeof(pat), " %s", f);
    return strstr(flags, pat) != NULL;
}

static void fallback_pages_are_locked_and_never_dumped(void **state)
{
    char flags[SMAPS_LINE];
    int locked = 0;
    unsigned char *p;
    (void)state;
    p = vault_smem_page_alloc(100, &locked);
    assert_non_null(p);
    assert_int_equal(p[0], 0);
    assert_int_equal(vmflags_of(p, flags, sizeof(flags)), 0);
    print_message("fallback VmFlags:%s", flags);
    assert_true(has_flag(flags, "dd"));
    if (locked && MLOCK_REAL)
        assert_true(has_flag(flags, "lo"));
    assert_true(vault_smem_is_secure(p) == locked);
    vault_smem_page_free(p, 100);
}

static void key_memory_comes_from_the_secure_heap(void **state)
{
    char flags[SMAPS_LINE];
    vault_smem_mode mode = vault_secure_memory_init(64 * 1024);
    unsigned char *p;
    vault_secret *s = NULL;
    (void)state;
    print_message("secure memory mode %d\n", (int)mode);
    assert_true(mode == VAULT_SMEM_OPENSSL || mode == VAULT_SMEM_FALLBACK);
    assert_int_equal(vault_secure_memory_init(0), mode); /* idempotent */
    p = vault_smem_alloc(64);
    assert_non_null(p);
    assert_true(vault_smem_is_secure(p));
    assert_int_equal(vmflags_of(p, flags, sizeof(flags)), 0);
    print_message("key memory VmFlags:%s", flags);
    assert_true(has_flag(flags, "dd"));
    assert_true(has_flag(flags, "lo"));
    vault_smem_free(p, 64);
    if (mode == VAULT_SMEM_OPENSSL) {
        /* secrets go to the secure heap as well once it exists */
        assert_int_equal(vault_secret_create("x", 1, &s), VAULT_OK);
        assert_true(CRYPTO_secure_allocated(s));
        vault_secret_destroy(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(secret_copies_and_is_nul_terminated),
        cmocka_unit_test(take_wipes_the_source_buffer),
        cmocka_unit_test(take_wipes_the_source_even_when_allocation_fails),
        cmocka_unit_test(mask_shows_two_and_four_only),
        cmocka_unit_test(fallback_pages_are_locked_and_never_dumped),
        cmocka_unit_test(key_memory_comes_from_the_secure_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
