/* test_keycache.c - derived-key cache: hits, LRU eviction, TTL expiry on an injected clock,
 * single flight (N threads, one derivation), the bounded derivation pool, failures, and
 * that key slots sit in secure memory and are wiped when dropped. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vault/vault_int.h"

struct fake {
    atomic_int derivations;
    atomic_int active, max_active;
    int delay_ms;
    int fail;
    int64_t now_ms;
};

static vault_rc fake_derive(void *ctx, int version, const unsigned char *salt, size_t salt_len,
                            unsigned char out[VAULT_KEY_LEN])
{
    struct fake *f = ctx;
    int a = atomic_fetch_add(&f->active, 1) + 1, m = atomic_load(&f->max_active);
    size_t i;
    while (a > m && !atomic_compare_exchange_weak(&f->max_active, &m, a))
        ;
    atomic_fetch_add(&f->derivations, 1);
    if (f->delay_ms > 0)
        usleep((useconds_t)f->delay_ms * 1000);
    for (i = 0; i < VAULT_KEY_LEN; i++)
        out[i] = (unsigned char)(salt[i % salt_len] ^ version ^ i);
    atomic_fetch_sub(&f->active, 1);
    return f->fail ? VAULT_ERR_CRYPTO : VAULT_OK;
}

static int64_t fake_clock(void *ctx)
{
    return ((struct fake *)ctx)->now_ms;
}

static vault_keycache *make(struct fake *f, size_t cap, int64_t ttl, unsigned k)
{
    vault_keycache_config cfg;
    vault_keycache *c = NULL;
    vault_keycache_config_default(&cfg);
    cfg.capacity = cap;
    cfg.ttl_ms = ttl;
    cfg.max_concurrent = k;
    cfg.derive = fake_derive;
    cfg.derive_ctx = f;
    cfg.clock = fake_clock;
    cfg.clock_ctx = f;
    assert_int_equal(vault_keycache_create(&cfg, &c), VAULT_OK);
    return c;
}

static void salt_of(int n, unsigned char salt[16])
{
    memset(salt, 0, 16);
    memcpy(salt, &n, sizeof(n));
}

static void expect_key(unsigned char key[VAULT_KEY_LEN], int version, const unsigned char *salt)
{
    size_t i;
    for (i = 0; i < VAULT_KEY_LEN; i++)
        assert_int_equal(key[i], (unsigned char)(salt[i % 16] ^ version ^ i));
}

static void second_get_is_a_hit_without_derivation(void **state)
{
    struct fake f = {0};
    vault_keycache *c = make(&f, 4, 1000, 1);
    unsigned char salt[16], key[VAULT_KEY_LEN];
    vault_keycache_stats st;
    (void)state;
    salt_of(1, salt);
    assert_int_equal(vault_keycache_get(c, 1, "alice", salt, 16, key), VAULT_OK);
    expect_key(key, 1, salt);
    assert_int_equal(vault_keycache_get(c, 1, "alice", salt, 16, key), VAULT_OK);
    expect_key(key, 1, salt);
    assert_int_equal(atomic_load(&f.derivations), 1);
    /* another version, user or salt is another key */
    assert_int_equal(vault_keycache_get(c, 2, "alice", salt, 16, key), VAULT_OK);
    expect_key(key, 2, salt);
    assert_int_equal(vault_keycache_get(c, 1, "bob", salt, 16, key), VAULT_OK);
    assert_int_equal(atomic_load(&f.derivations), 3);
    vault_keycache_stats_get(c, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 3);
    assert_int_equal(st.size, 3);
    vault_keycache_destroy(c);
}

static void least_recently_used_key_is_evicted_at_capacity(void **state)
{
    struct fake f = {0};
    vault_keycache *c = make(&f, 3, 0, 1);
    unsigned char s[5][16], key[VAULT_KEY_LEN];
    vault_keycache_stats st;
    int i;
    (void)state;
    for (i = 0; i < 5; i++)
        salt_of(i, s[i]);
    for (i = 0; i < 3; i++)
        assert_int_equal(vault_keycache_get(c, 1, "u", s[i], 16, key), VAULT_OK);
    assert_int_equal(vault_keycache_get(c, 1, "u", s[0], 16, key), VAULT_OK); /* 0 is fresh */
    assert_int_equal(vault_keycache_get(c, 1, "u", s[3], 16, key), VAULT_OK); /* evicts 1 */
    assert_int_equal(atomic_load(&f.derivations), 4);
    assert_int_equal(vault_keycache_get(c, 1, "u", s[0], 16, key), VAULT_OK); /* still there */
    assert_int_equal(vault_keycache_get(c, 1, "u", s[2], 16, key), VAULT_OK); /* still there */
    assert_int_equal(atomic_load(&f.derivations), 4);
    assert_int_equal(vault_keycache_get(c, 1, "u", s[1], 16, key), VAULT_OK); /* was evicted */
    assert_int_equal(atomic_load(&f.derivations), 5);
    expect_key(key, 1, s[1]);
    vault_keycache_stats_get(c, &st);
    assert_int_equal(st.evictions, 2);
    assert_int_equal(st.size, 3);
    vault_keycache_destroy(c);
}

static void expired_key_is_derived_again(void **state)
{
    struct fake f = {0};
    vault_keycache *c = make(&f, 4, 1000, 1);
    unsigned char salt[16], key[VAULT_KEY_LEN];
    vault_keycache_stats st;
    (void)state;
    salt_of(7, salt);
    f.now_ms = 5000;
    assert_int_equal(vault_keycache_get(c, 1, "u", salt, 16, key), VAULT_OK);
    f.now_ms = 5999;
    assert_int_equal(vault_keycache_get(c, 1, "u", salt, 16, key), VAULT_OK);
    assert_int_equal(atomic_load(&f.derivations), 1);
    f.now_ms = 6000; /* ttl reached */
    assert_int_equal(vault_keycache_get(c, 1, "u", salt, 16, key), VAULT_OK);
    assert_int_equal(atomic_load(&f.derivations), 2);
    /* sweep drops expired keys without a lookup */
    f.now_ms = 20000;
    vault_keycache_sweep(c);
    vault_keycache_stats_get(c, &st);
    assert_int_equal(st.size, 0);
    assert_int_equal(st.expirations, 2);
    vault_keycache_destroy(c);
}

struct worker {
    vault_keycache *c;
    int salt_n;
    vault_rc rc;
    unsigned char key[VAULT_KEY_LEN];
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    unsigned char salt[16];
    salt_of(w->salt_n, salt);
    w->rc = vault_keycache_get(w->c, 1, "same-user", salt, 16, w->key);
    return NULL;
}

static void concurrent_requests_for_one_key_derive_once(void **state)
{
    enum { N = 16 };
    struct fake f = {0};
    vault_keycache *c;
    struct worker w[N];
    pthread_t t[N];
    unsigned char salt[16];
    vault_keycache_stats st;
    int i;
    (void)state;
    f.delay_ms = 150; /* about one real derivation */
    c = make(&f, 8, 0, 2);
    for (i = 0; i < N; i++) {
        w[i].c = c;
        w[i].salt_n = 42;
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    salt_of(42, salt);
    for (i = 0; i < N; i++) {
        assert_int_equal(w[i].rc, VAULT_OK);
        expect_key(w[i].key, 1, salt);
    }
    assert_int_equal(atomic_load(&f.derivations), 1);
    vault_keycache_stats_get(c, &st);
    assert_int_equal(st.derivations, 1);
    assert_true(st.waits >= 1);
    vault_keycache_destroy(c);
}

static void derivations_never_exceed_the_pool_size(void **state)
{
    enum { N = 8 };
    struct fake f = {0};
    vault_keycache *c;
    struct worker w[N];
    pthread_t t[N];
    int i;
    (void)state;
    f.delay_ms = 30;
    c = make(&f, 16, 0, 2);
    for (i = 0; i < N; i++) {
        w[i].c = c;
        w[i].salt_n = 100 + i; /* all different users: a flood of misses */
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (i = 0; i < N; i++)
        assert_int_equal(w[i].rc, VAULT_OK);
    assert_int_equal(atomic_load(&f.derivations), N);
    assert_true(atomic_load(&f.max_active) <= 2);
    assert_int_equal(atomic_load(&f.max_active), 2);
    vault_keycache_destroy(c);
}

static void queue_wait_is_bounded(void **state)
{
    enum { N = 4 };
    struct fake f = {0};
    vault_keycache_config cfg;
    vault_keycache *c = NULL;
    struct worker w[N];
    pthread_t t[N];
    int i, busy = 0, ok = 0;
    (void)state;
    f.delay_ms = 300;
    vault_keycache_config_default(&cfg);
    cfg.capacity = 8;
    cfg.max_concurrent = 1;
    cfg.max_wait_ms = 100;
    cfg.derive = fake_derive;
    cfg.derive_ctx = &f;
    assert_int_equal(vault_keycache_create(&cfg, &c), VAULT_OK);
    for (i = 0; i < N; i++) {
        w[i].c = c;
        w[i].salt_n = 200 + i;
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        busy += w[i].rc == VAULT_ERR_BUSY;
        ok += w[i].rc == VAULT_OK;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(busy, N - 1);
    vault_keycache_destroy(c);
}

static void failed_derivation_is_not_cached(void **state)
{
    struct fake f = {0};
    vault_keycache *c = make(&f, 4, 0, 1);
    unsigned char salt[16], key[VAULT_KEY_LEN];
    vault_keycache_stats st;
    (void)state;
    salt_of(3, salt);
    f.fail = 1;
    assert_int_equal(vault_keycache_get(c, 1, "u", salt, 16, key), VAULT_ERR_CRYPTO);
    f.fail = 0;
    assert_int_equal(vault_keycache_get(c, 1, "u", salt, 16, key), VAULT_OK);
    assert_int_equal(atomic_load(&f.derivations), 2);
    vault_keycache_stats_get(c, &st);
    assert_int_equal(st.failures, 1);
    vault_keycache_destroy(c);
}

static void bad_arguments_are_refused(void **state)
{
    struct fake f = {0};
    vault_keycache *c = make(&f, 2, 0, 1);
    unsigned char salt[16] = {0}, key[VAULT_KEY_LEN];
    char longid[VAULT_USER_ID_MAX + 2];
    vault_keycache_config cfg;
    vault_keycache *d = NULL;
    (void)state;
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(vault_keycache_get(c, 1, longid, salt, 16, key), VAULT_ERR_INVALID_ARG);
    assert_int_equal(vault_keycache_get(c, 1, "u", salt, 0, key), VAULT_ERR_INVALID_ARG);
    assert_int_equal(vault_keycache_get(c, 1, "u", NULL, 16, key), VAULT_ERR_INVALID_ARG);
    assert_int_equal(atomic_load(&f.derivations), 0);
    vault_keycache_config_default(&cfg);
    assert_int_equal(vault_keycache_create(&cfg, &d), VAULT_ERR_INVALID_ARG); /* no derive */
    vault_keycache_destroy(c);
    vault_keycache_destroy(NULL);
}

static void key_slots_are_secure_memory(void **state)
{
    struct fake f = {0};
    vault_keycache *c;
    (void)state;
    (void)vault_secure_memory_init(0);
    c = make(&f, 64, 0, 1);
    assert_true(vault_keycache_is_secure(c));
    vault_keycache_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(second_get_is_a_hit_without_derivation),
        cmocka_unit_test(least_recently_used_key_is_evicted_at_capacity),
        cmocka_unit_test(expired_key_is_derived_again),
        cmocka_unit_test(concurrent_requests_for_one_key_derive_once),
        cmocka_unit_test(derivations_never_exceed_the_pool_size),
        cmocka_unit_test(queue_wait_is_bounded),
        cmocka_unit_test(failed_derivation_is_not_cached),
        cmocka_unit_test(bad_arguments_are_refused),
        cmocka_unit_test(key_slots_are_secure_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
