/*
 * edge_ratelimit: the in-process GCRA limiter on an injected clock. Every class trips exactly
 * at its configured burst, reports the emission interval as retry-after, recovers one request
 * per interval and fully after the window; keys and classes are independent; the table stays
 * bounded; configuration errors (rediss://, bad URLs, bad rules) are refused clearly and
 * never echo a password.
 */
#include "edge/ratelimit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t fake_now;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static edge_rl *make_local(edge_rl_config *cfg)
{
    char err[256];
    edge_rl *rl = NULL;
    cfg->clock = fake_clock;
    assert_int_equal(edge_rl_create(cfg, &rl, err, sizeof err), 0);
    assert_non_null(rl);
    return rl;
}

typedef struct {
    edge_rl_class cls;
    uint32_t burst;
    int64_t interval_ms; /* period / limit */
} class_case;

static const class_case class_cases[] = {
    {EDGE_RL_AUTH_FAIL, 10, 6000},  /* 10/min */
    {EDGE_RL_KEY_SUBMIT, 5, 12000}, /* 5/min */
    {EDGE_RL_ORDERS, 20, 100},      /* 10/s burst 20 */
    {EDGE_RL_API, 100, 20},         /* 50/s burst 100 */
    {EDGE_RL_PUBLIC, 200, 10},      /* 100/s burst 200 */
};

static void test_each_default_class_trips_at_burst_and_recovers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof class_cases / sizeof class_cases[0]; i++) {
        const class_case *c = &class_cases[i];
        edge_rl_config cfg;
        int64_t retry = -1;
        edge_rl_config_defaults(&cfg);
        fake_now = 1000000000;
        edge_rl *rl = make_local(&cfg);
        for (uint32_t n = 0; n < c->burst; n++)
            assert_int_equal(edge_rl_check(rl, c->cls, "user-1", &retry), EDGE_RL_ALLOW);
        assert_int_equal(retry, 0);
        assert_int_equal(edge_rl_check(rl, c->cls, "user-1", &retry), EDGE_RL_DENY);
        assert_int_equal(retry, c->interval_ms);
        /* Denied checks do not consume: still denied just before the interval. */
        fake_now += (c->interval_ms - 1) * 1000;
        assert_int_equal(edge_rl_check(rl, c->cls, "user-1", &retry), EDGE_RL_DENY);
        assert_int_equal(retry, 1);
        fake_now += 1000;
        assert_int_equal(edge_rl_check(rl, c->cls, "user-1", NULL), EDGE_RL_ALLOW);
        assert_int_equal(edge_rl_check(rl, c->cls, "user-1", NULL), EDGE_RL_DENY);
        /* After a full window the whole burst is available again. */
        fake_now += (int64_t)c->burst * c->interval_ms * 1000;
        for (uint32_t n = 0; n < c->burst; n++)
            assert_int_equal(edge_rl_check(rl, c->cls, "user-1", NULL), EDGE_RL_ALLOW);
        assert_int_equal(edge_rl_check(rl, c->cls, "user-1", NULL), EDGE_RL_DENY);
        edge_rl_destroy(rl);
    }
}

static void test_keys_and_classes_are_independent(void **state)
{
    edge_rl_config cfg;
    (void)state;
    edge_rl_config_defaults(&cfg);
    fake_now = 5;
    edge_rl *rl = make_local(&cfg);
    for (int n = 0; n < 5; n++)
        assert_int_equal(edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, "alice", NULL), EDGE_RL_ALLOW);
    assert_int_equal(edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, "alice", NULL), EDGE_RL_DENY);
    assert_int_equal(edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, "bob", NULL), EDGE_RL_ALLOW);
    assert_int_equal(edge_rl_check(rl, EDGE_RL_ORDERS, "alice", NULL), EDGE_RL_ALLOW);
    /* Prefix-sharing keys are distinct (they are hashed whole). */
    assert_int_equal(edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, "alice2", NULL), EDGE_RL_ALLOW);
    assert_int_equal(edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, NULL, NULL), EDGE_RL_ALLOW);
    edge_rl_destroy(rl);
}

static void test_disabled_class_always_allows(void **state)
{
    edge_rl_config cfg;
    (void)state;
    edge_rl_config_defaults(&cfg);
    cfg.rules[EDGE_RL_KEY_SUBMIT].limit = 0;
    edge_rl *rl = make_local(&cfg);
    for (int n = 0; n < 100; n++)
        assert_int_equal(edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, "u", NULL), EDGE_RL_ALLOW);
    edge_rl_destroy(rl);
}

static void test_huge_keys_are_hashed_not_stored(void **state)
{
    edge_rl_config cfg;
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    (void)state;
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    edge_rl_config_defaults(&cfg);
    edge_rl *rl = make_local(&cfg);
    for (int i = 0; i < 5; i++)
        assert_int_equal(edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, big, NULL), EDGE_RL_ALLOW);
    assert_int_equal(edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, big, NULL), EDGE_RL_DENY);
    big[n - 1] = 'y';
    assert_int_equal(edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, big, NULL), EDGE_RL_ALLOW);
    edge_rl_destroy(rl);
    free(big);
}

static void test_table_is_bounded_and_evicts_oldest(void **state)
{
    edge_rl_config cfg;
    edge_rl_stats st;
    char key[32];
    (void)state;
    edge_rl_config_defaults(&cfg);
    cfg.max_entries = 256; /* 4 per shard */
    fake_now = 1;
    edge_rl *rl = make_local(&cfg);
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "peer-%d", i);
        assert_int_equal(edge_rl_check(rl, EDGE_RL_AUTH_FAIL, key, NULL), EDGE_RL_ALLOW);
    }
    edge_rl_stats_get(rl, &st);
    assert_true(st.evictions >= 20000 - 256);
    assert_int_equal(st.local_checks, 20000);
    /* Expired entries are swept before anything live is evicted. */
    fake_now += 61LL * 1000000;
    edge_rl_stats_get(rl, &st);
    uint64_t before = st.evictions;
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "later-%d", i);
        edge_rl_check(rl, EDGE_RL_AUTH_FAIL, key, NULL);
    }
    edge_rl_stats_get(rl, &st);
    assert_true(st.evictions - before < 200);
    edge_rl_destroy(rl);
}

typedef struct {
    edge_rl *rl;
    atomic_int allowed;
} race_ctx;

static void *race_thread(void *arg)
{
    race_ctx *c = arg;
    for (int i = 0; i < 500; i++)
        if (edge_rl_check(c->rl, EDGE_RL_ORDERS, "same-user", NULL) == EDGE_RL_ALLOW)
            atomic_fetch_add(&c->allowed, 1);
    return NULL;
}

static void test_concurrent_checks_admit_exactly_the_burst(void **state)
{
    edge_rl_config cfg;
    race_ctx c;
    pthread_t t[4];
    (void)state;
    edge_rl_config_defaults(&cfg);
    fake_now = 77; /* frozen clock: nothing refills */
    c.rl = make_local(&cfg);
    atomic_init(&c.allowed, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race_thread, &c), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&c.allowed), 20);
    edge_rl_destroy(c.rl);
}

typedef struct {
    const char *in;
    int ok;
    uint32_t limit, period_ms, burst;
} rule_case;

static const rule_case rule_cases[] = {
    {"10/min", 1, 10, 60000, 10},
    {"10/s:20", 1, 10, 1000, 20},
    {"5/m", 1, 5, 60000, 5},
    {"100/10s:150", 1, 100, 10000, 150},
    {"1/h", 1, 1, 3600000, 1},
    {"50/500ms", 1, 50, 500, 50},
    {"0/s", 1, 0, 1000, 0},
    {"", 0, 0, 0, 0},
    {"10", 0, 0, 0, 0},
    {"x/s", 0, 0, 0, 0},
    {"10/day", 0, 0, 0, 0},
    {"10/s:", 0, 0, 0, 0},
    {"10/s:0", 0, 0, 0, 0},
    {"-1/s", 0, 0, 0, 0},
    {"99999999999/s", 0, 0, 0, 0},
    {"10/0s", 0, 0, 0, 0},
    {"10/s:2x", 0, 0, 0, 0},
};

static void test_rule_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rule_cases / sizeof rule_cases[0]; i++) {
        const rule_case *c = &rule_cases[i];
        edge_rl_rule r = {0, 0, 0};
        char err[128] = "";
        int rc = edge_rl_rule_parse(c->in, &r, err, sizeof err);
        if (c->ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(r.limit, c->limit);
            assert_int_equal(r.period_ms, c->period_ms);
            assert_int_equal(r.burst, c->burst);
        } else {
            if (rc == 0)
                fail_msg("rule '%s' should be refused", c->in);
            assert_true(strlen(err) > 0);
        }
    }
}

typedef struct {
    const char *url;
    const char *must_contain; /* in the error */
} url_case;

static const url_case bad_urls[] = {
    {"rediss://:hunter2secret@redis.example:6380/0", "stunnel"},
    {"http://127.0.0.1:6379", "redis://"},
    {"redis://", "host"},
    {"redis://127.0.0.1:0/0", "port"},
    {"redis://127.0.0.1:99999/0", "port"},
    {"redis://127.0.0.1:6379/x", "database"},
    {"redis://hunter2secret@127.0.0.1:6379/0", "credentials"},
    {"redis://[::1:6379/0", "IPv6"},
    {"redis://:bad%zzsecret@127.0.0.1/0", "percent"},
};

static void test_bad_redis_urls_refused_without_echoing_secrets(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        edge_rl_config cfg;
        edge_rl *rl = NULL;
        char err[512] = "";
        edge_rl_config_defaults(&cfg);
        cfg.redis_url = bad_urls[i].url;
        assert_int_equal(edge_rl_create(&cfg, &rl, err, sizeof err), -1);
        assert_null(rl);
        if (!strstr(err, bad_urls[i].must_contain))
            fail_msg("error for case %zu lacks '%s': %s", i, bad_urls[i].must_contain, err);
        assert_null(strstr(err, "hunter2"));
        assert_null(strstr(err, "secret@"));
    }
}

static void test_unreachable_redis_starts_in_fallback(void **state)
{
    edge_rl_config cfg;
    edge_rl *rl = NULL;
    edge_rl_stats st;
    char err[256];
    (void)state;
    edge_rl_config_defaults(&cfg);
    cfg.redis_url = "redis://127.0.0.1:1/0"; /* nothing listens on port 1 */
    cfg.clock = fake_clock;
    fake_now = 10;
    assert_int_equal(edge_rl_create(&cfg, &rl, err, sizeof err), 0);
    assert_true(edge_rl_uses_redis(rl));
    assert_int_equal(edge_rl_fallback_active(rl), 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, "u", NULL), EDGE_RL_ALLOW);
    assert_int_equal(edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, "u", NULL), EDGE_RL_DENY);
    edge_rl_stats_get(rl, &st);
    assert_int_equal(st.redis_checks, 0);
    assert_int_equal(st.local_checks, 6);
    edge_rl_destroy(rl);
    edge_rl_destroy(NULL);
}

static void test_peek_looks_without_counting(void **state)
{
    edge_rl_config cfg;
    int64_t retry = -1;
    (void)state;
    edge_rl_config_defaults(&cfg);
    fake_now = 1000;
    edge_rl *rl = make_local(&cfg);
    for (int i = 0; i < 100; i++)
        assert_int_equal(edge_rl_peek(rl, EDGE_RL_AUTH_FAIL, "10.0.0.9", &retry), EDGE_RL_ALLOW);
    assert_int_equal(retry, 0);
    for (int i = 0; i < 10; i++) /* ten failed logins */
        assert_int_equal(edge_rl_check(rl, EDGE_RL_AUTH_FAIL, "10.0.0.9", NULL), EDGE_RL_ALLOW);
    assert_int_equal(edge_rl_peek(rl, EDGE_RL_AUTH_FAIL, "10.0.0.9", &retry), EDGE_RL_DENY);
    assert_int_equal(retry, 6000);
    fake_now += 6000 * 1000;
    /* Peeking did not push the window: one attempt is available again. */
    assert_int_equal(edge_rl_peek(rl, EDGE_RL_AUTH_FAIL, "10.0.0.9", NULL), EDGE_RL_ALLOW);
    assert_int_equal(edge_rl_check(rl, EDGE_RL_AUTH_FAIL, "10.0.0.9", NULL), EDGE_RL_ALLOW);
    assert_int_equal(edge_rl_peek(rl, EDGE_RL_AUTH_FAIL, "10.0.0.9", NULL), EDGE_RL_DENY);
    edge_rl_destroy(rl);
}

static void test_class_names_round_trip(void **state)
{
    (void)state;
    for (int c = 0; c < EDGE_RL_CLASS_COUNT; c++)
        assert_int_equal(edge_rl_class_parse(edge_rl_class_name((edge_rl_class)c)), c);
    assert_int_equal(edge_rl_class_parse("nope"), -1);
    assert_string_equal(edge_rl_class_name(EDGE_RL_CLASS_COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_default_class_trips_at_burst_and_recovers),
        cmocka_unit_test(test_keys_and_classes_are_independent),
        cmocka_unit_test(test_disabled_class_always_allows),
        cmocka_unit_test(test_huge_keys_are_hashed_not_stored),
        cmocka_unit_test(test_table_is_bounded_and_evicts_oldest),
        cmocka_unit_test(test_concurrent_checks_admit_exactly_the_burst),
        cmocka_unit_test(test_rule_parse_table),
        cmocka_unit_test(test_bad_redis_urls_refused_without_echoing_secrets),
        cmocka_unit_test(test_unreachable_redis_starts_in_fallback),
        cmocka_unit_test(test_peek_looks_without_counting),
        cmocka_unit_test(test_class_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
