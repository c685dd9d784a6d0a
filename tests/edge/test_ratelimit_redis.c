/*
 * edge_ratelimit_redis: the Redis backend against a real redis-server.
 *
 * Uses TW_TEST_REDIS_URL (the CI's Redis) for limits, the combined limit of two limiter
 * instances ("replicas"), NOSCRIPT recovery, key TTLs and key shape. Without it the test fails
 * unless TW_TEST_ALLOW_SKIP_REDIS=1. The outage test always starts its own redis-server on a
 * free loopback port in a temp dir (it kills it mid-test and restarts it), stopped by PID.
 *
 * Limits: Redis time cannot be injected, so these tests use each class's default burst with
 * an emission interval of 400 ms: long against a loopback round trip (a burst's worth of
 * checks finishes well within one interval), short enough to wait for.
 */
#include "edge/ratelimit.h"
#include "edge_test_proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define INTERVAL_MS 400

static const char *redis_url;
static char prefix[64];
static pid_t own_redis = -1; /* stopped by teardown even when an assertion fails */
static char own_dir[256];

static void unique_prefix(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(prefix, sizeof prefix, "twtest:%ld:%ld:", (long)getpid(), (long)ts.tv_nsec);
}

static void test_config(edge_rl_config *cfg, const char *url)
{
    static const uint32_t bursts[EDGE_RL_CLASS_COUNT] = {10, 5, 20, 100, 200};
    edge_rl_config_defaults(cfg);
    for (int c = 0; c < EDGE_RL_CLASS_COUNT; c++)
        cfg->rules[c] = (edge_rl_rule){bursts[c], bursts[c] * INTERVAL_MS, bursts[c]};
    cfg->redis_url = url;
    cfg->key_prefix = prefix;
}

static edge_rl *make(const char *url)
{
    edge_rl_config cfg;
    edge_rl *rl = NULL;
    char err[512];
    test_config(&cfg, url);
    if (edge_rl_create(&cfg, &rl, err, sizeof err) != 0)
        fail_msg("create: %s", err);
    return rl;
}

static int setup(void **state)
{
    (void)state;
    unique_prefix();
    return 0;
}

/* Parses host and port from the test URL (redis://host:port/db) for direct commands. */
static redisContext *direct(const char *url)
{
    char host[128] = "127.0.0.1";
    int port = 6379;
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    const char *at = strchr(h, '@');
    if (at)
        h = at + 1;
    const char *colon = strchr(h, ':');
    if (colon && (size_t)(colon - h) < sizeof host) {
        memcpy(host, h, (size_t)(colon - h));
        host[colon - h] = '\0';
        port = (int)strtol(colon + 1, NULL, 10);
    }
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    return c;
}

static void test_each_class_trips_at_burst_and_recovers_on_redis(void **state)
{
    (void)state;
    edge_rl *rl = make(redis_url);
    edge_rl_stats st;
    assert_int_equal(edge_rl_fallback_active(rl), 0);
    for (int c = 0; c < EDGE_RL_CLASS_COUNT; c++) {
        edge_rl_config cfg;
        int64_t retry = 0;
        uint32_t allowed = 0;
        test_config(&cfg, NULL);
        while (edge_rl_check(rl, (edge_rl_class)c, "user-r", &retry) == EDGE_RL_ALLOW &&
               allowed < 1000)
            allowed++;
        assert_int_equal(allowed, cfg.rules[c].burst);
        assert_in_range(retry, 1, INTERVAL_MS);
        etp_sleep_ms((int)retry + 20);
        assert_int_equal(edge_rl_check(rl, (edge_rl_class)c, "user-r", NULL), EDGE_RL_ALLOW);
    }
    edge_rl_stats_get(rl, &st);
    assert_int_equal(st.local_checks, 0);
    assert_true(st.redis_checks > 300);
    edge_rl_destroy(rl);
}

static void test_two_replicas_share_one_limit(void **state)
{
    (void)state;
    edge_rl *a = make(redis_url), *b = make(redis_url);
    int allowed = 0;
    for (int i = 0; i < 40; i++)
        if (edge_rl_check(i % 2 ? b : a, EDGE_RL_ORDERS, "shared-user", NULL) == EDGE_RL_ALLOW)
            allowed++;
    assert_int_equal(allowed, 20); /* one combined burst, not 2 x 20 */
    assert_int_equal(edge_rl_check(a, EDGE_RL_ORDERS, "other-user", NULL), EDGE_RL_ALLOW);
    edge_rl_destroy(a);
    edge_rl_destroy(b);
}

/* The broker's budget (edge_rl_shared_*): one bucket for two limiters, a reserve that a smaller
 * burst cannot take, a hold until a reset, and -1 (never a guess) without Redis. */
static void test_shared_budget_has_one_bucket_a_reserve_and_holds(void **state)
{
    (void)state;
    edge_rl *a = make(redis_url), *b = make(redis_url), *none = make(NULL);
    const uint8_t acct[EDGE_RL_KEY_BYTES] = {0xa1, 0xb2, 0xc3, 1};
    const uint8_t other[EDGE_RL_KEY_BYTES] = {0xa1, 0xb2, 0xc3, 2};
    edge_rl_rule user = {8, 8 * INTERVAL_MS, 8}, background = {8, 8 * INTERVAL_MS, 6};
    int64_t retry = 0;
    int allowed = 0;
    for (int i = 0; i < 12; i++) /* background, alternating replicas: 6, two kept */
        allowed += edge_rl_shared_check(i % 2 ? b : a, "alpaca", acct, &background, &retry) == 1;
    assert_int_equal(allowed, 6);
    assert_in_range(retry, 1, 3 * INTERVAL_MS);
    allowed = 0;
    for (int i = 0; i < 4; i++) /* the trader's: the two the background left */
        allowed += edge_rl_shared_check(i % 2 ? a : b, "alpaca", acct, &user, &retry) == 1;
    assert_int_equal(allowed, 2);
    assert_in_range(retry, 1, INTERVAL_MS);
    /* Another account is untouched; a hold stops it for every replica, then it refills. */
    assert_int_equal(edge_rl_shared_check(a, "alpaca", other, &user, NULL), 1);
    assert_int_equal(edge_rl_shared_hold(b, "alpaca", other, &user, 3 * INTERVAL_MS), 0);
    assert_int_equal(edge_rl_shared_check(a, "alpaca", other, &user, &retry), 0);
    assert_in_range(retry, 2 * INTERVAL_MS, 3 * INTERVAL_MS);
    etp_sleep_ms((int)retry + 20);
    assert_int_equal(edge_rl_shared_check(b, "alpaca", other, &user, NULL), 1);
    assert_int_equal(edge_rl_shared_check(a, "alpaca", other, &user, &retry), 0); /* empty */
    /* Without Redis, or with a rule that admits everything, the caller decides alone. */
    assert_int_equal(edge_rl_shared_check(none, "alpaca", acct, &user, &retry), -1);
    assert_int_equal(edge_rl_shared_hold(none, "alpaca", acct, &user, 1000), -1);
    edge_rl_rule off = {0, 60000, 0};
    assert_int_equal(edge_rl_shared_check(a, "alpaca", acct, &off, NULL), -1);
    edge_rl_destroy(a);
    edge_rl_destroy(b);
    edge_rl_destroy(none);
}

static void test_peek_on_redis_does_not_count(void **state)
{
    (void)state;
    edge_rl *rl = make(redis_url);
    int64_t retry = 0;
    for (int i = 0; i < 50; i++)
        assert_int_equal(edge_rl_peek(rl, EDGE_RL_KEY_SUBMIT, "peeker", NULL), EDGE_RL_ALLOW);
    int allowed = 0;
    while (edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, "peeker", NULL) == EDGE_RL_ALLOW && allowed < 50)
        allowed++;
    assert_int_equal(allowed, 5);
    assert_int_equal(edge_rl_peek(rl, EDGE_RL_KEY_SUBMIT, "peeker", &retry), EDGE_RL_DENY);
    assert_in_range(retry, 1, INTERVAL_MS);
    assert_int_equal(edge_rl_fallback_active(rl), 0);
    edge_rl_destroy(rl);
}

static void test_script_reloaded_after_script_flush(void **state)
{
    (void)state;
    edge_rl *rl = make(redis_url);
    redisContext *c = direct(redis_url);
    edge_rl_stats st;
    assert_int_equal(edge_rl_check(rl, EDGE_RL_API, "flush-user", NULL), EDGE_RL_ALLOW);
    redisReply *r = redisCommand(c, "SCRIPT FLUSH");
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(edge_rl_check(rl, EDGE_RL_API, "flush-user", NULL), EDGE_RL_ALLOW);
    edge_rl_stats_get(rl, &st);
    assert_int_equal(st.redis_failures, 0);
    assert_int_equal(st.redis_checks, 2);
    redisFree(c);
    edge_rl_destroy(rl);
}

static void test_keys_are_bounded_hashes_with_ttl(void **state)
{
    (void)state;
    edge_rl *rl = make(redis_url);
    redisContext *c = direct(redis_url);
    char raw[600];
    memset(raw, 'Q', sizeof raw - 1);
    raw[sizeof raw - 1] = '\0';
    assert_int_equal(edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, raw, NULL), EDGE_RL_ALLOW);
    redisReply *r = redisCommand(c, "KEYS %skey_submit:*", prefix);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    const char *k = r->element[0]->str;
    assert_int_equal(strlen(k), strlen(prefix) + strlen("key_submit:") + 32);
    assert_null(strstr(k, "QQQQ"));
    redisReply *t = redisCommand(c, "PTTL %s", k);
    assert_non_null(t);
    assert_int_equal(t->type, REDIS_REPLY_INTEGER);
    /* One request of 5 per 1 s window: TTL is about one interval. */
    assert_in_range(t->integer, 1, INTERVAL_MS + 5);
    freeReplyObject(t);
    freeReplyObject(r);
    redisFree(c);
    edge_rl_destroy(rl);
}

/* ---- outage: our own redis-server ---------------------------------------------------- */

static pid_t start_redis(const char *dir, int port)
{
    char portstr[16], log[512];
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(log, sizeof log, "%s/redis.log", dir);
    const char *argv[] = {
        "redis-server", "--bind", "127.0.0.1", "--port", portstr,       "--save", "",
        "--appendonly", "no",     "--dir",     dir,      "--daemonize", "no",     NULL};
    pid_t pid = etp_spawn(argv, log);
    assert_true(pid > 0);
    own_redis = pid;
    if (etp_wait_port(port, 5000) != 0)
        fail_msg("redis-server did not start on port %d (see %s)", port, log);
    return pid;
}

static int transitions_seen[2];

static void on_fallback(void *ctx, int fb)
{
    (void)ctx;
    transitions_seen[fb ? 1 : 0]++;
}

static void test_outage_falls_back_and_resumes_after_restart(void **state)
{
    (void)state;
    char *dir = own_dir, url[64], err[256];
    edge_rl_config cfg;
    edge_rl *rl = NULL;
    edge_rl_stats st;
    if (!etp_have("redis-server")) {
        if (getenv("TW_TEST_ALLOW_SKIP_REDIS"))
            skip();
        fail_msg("redis-server not on PATH (apt-get install redis-server)");
    }
    assert_int_equal(etp_tempdir(own_dir, sizeof own_dir), 0);
    int port = etp_free_port();
    assert_true(port > 0);
    pid_t pid = start_redis(dir, port);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", port);
    test_config(&cfg, url);
    cfg.redis_retry_ms = 300;
    cfg.on_fallback = on_fallback;
    assert_int_equal(edge_rl_create(&cfg, &rl, err, sizeof err), 0);
    assert_int_equal(edge_rl_check(rl, EDGE_RL_API, "u1", NULL), EDGE_RL_ALLOW);
    edge_rl_stats_get(rl, &st);
    assert_int_equal(st.redis_checks, 1);
    assert_int_equal(st.fallback, 0);

    etp_kill(pid); /* crash mid-test */
    own_redis = -1;
    for (int i = 0; i < 50; i++) /* service goes on, answered in process */
        assert_int_equal(edge_rl_check(rl, EDGE_RL_API, "u2", NULL), EDGE_RL_ALLOW);
    edge_rl_stats_get(rl, &st);
    assert_int_equal(st.fallback, 1);
    assert_int_equal(st.local_checks, 50);
    assert_int_equal(transitions_seen[1], 1); /* one transition, however many checks */
    assert_true(st.redis_failures >= 1 && st.redis_failures <= 2);
    /* The fallback still limits. */
    int allowed = 0;
    for (int i = 0; i < 10; i++)
        allowed += edge_rl_check(rl, EDGE_RL_KEY_SUBMIT, "u3", NULL) == EDGE_RL_ALLOW;
    assert_int_equal(allowed, 5);

    pid = start_redis(dir, port);
    etp_sleep_ms(400); /* past the retry interval */
    assert_int_equal(edge_rl_check(rl, EDGE_RL_API, "u4", NULL), EDGE_RL_ALLOW);
    edge_rl_stats_get(rl, &st);
    assert_int_equal(st.fallback, 0);
    assert_int_equal(transitions_seen[0], 1);
    assert_int_equal(st.transitions, 2);
    uint64_t before = st.redis_checks;
    for (int i = 0; i < 10; i++)
        edge_rl_check(rl, EDGE_RL_API, "u5", NULL);
    edge_rl_stats_get(rl, &st);
    assert_int_equal(st.redis_checks, before + 10);
    edge_rl_destroy(rl);
    (void)pid;
}

static int stop_own_redis(void **state)
{
    (void)state;
    etp_stop(own_redis);
    own_redis = -1;
    if (own_dir[0])
        etp_rmdir(own_dir);
    own_dir[0] = '\0';
    return 0;
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test_setup(test_each_class_trips_at_burst_and_recovers_on_redis, setup),
        cmocka_unit_test_setup(test_two_replicas_share_one_limit, setup),
        cmocka_unit_test_setup(test_shared_budget_has_one_bucket_a_reserve_and_holds, setup),
        cmocka_unit_test_setup(test_peek_on_redis_does_not_count, setup),
        cmocka_unit_test_setup(test_script_reloaded_after_script_flush, setup),
        cmocka_unit_test_setup(test_keys_are_bounded_hashes_with_ttl, setup),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test_setup_teardown(test_outage_falls_back_and_resumes_after_restart, setup,
                                        stop_own_redis),
    };
    int failed = 0;
    redis_url = getenv("TW_TEST_REDIS_URL");
    if (!redis_url || !*redis_url) {
        if (getenv("TW_TEST_ALLOW_SKIP_REDIS") &&
            strcmp(getenv("TW_TEST_ALLOW_SKIP_REDIS"), "1") == 0) {
            fprintf(stderr, "TW_TEST_REDIS_URL unset: shared-Redis tests skipped "
                            "(TW_TEST_ALLOW_SKIP_REDIS=1)\n");
        } else {
            fprintf(stderr, "TW_TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0); "
                            "set TW_TEST_ALLOW_SKIP_REDIS=1 to skip deliberately\n");
            return 1;
        }
    } else {
        failed += cmocka_run_group_tests_name("edge_ratelimit_redis_shared", shared, NULL, NULL);
    }
    failed += cmocka_run_group_tests_name("edge_ratelimit_redis_outage", own, NULL, NULL);
    return failed;
}
