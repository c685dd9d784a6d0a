/*
 * test_store.c - the store suite, run once per backend: `test_store sqlite` (temp file) and
 * `test_store pg` (TW_TEST_PG_URL; a fresh schema per run so "migrate from empty" is real).
 *
 * Without TW_TEST_PG_URL the pg run FAILS, unless TW_TEST_ALLOW_SKIP_PG=1 (then exit 77 =
 * skipped), so CI can never go green without having tested PostgreSQL.
 *
 * Covers: migrations (from empty, re-run no-op, refusal on newer), race-free user creation,
 * per-user isolation through every per-user function, verbatim storage of hostile strings,
 * append-only audit, atomic rollback, the per-user lock, URL checks (TLS warning, no password
 * in logs). Raw SQL for checks goes through the internal db_exec.
 */
#include "store_int.h"

#include <libpq-fe.h>

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Changes to a user's trading state need the user's lock (the store refuses them otherwise):
 * expr runs in a user transaction of its own, committed when it succeeds. */
static store_rc end_locked(store_conn *c, store_rc rc)
{
    if (rc != STORE_OK) {
        store_tx_rollback(c);
        return rc;
    }
    return store_tx_commit(c);
}
#define LOCKED(c, uid, expr)                                                                       \
    (store_tx_begin_user((c), (uid)) == STORE_OK ? end_locked((c), (expr)) : STORE_NOT_FOUND)

static char g_url[2048];
static bool g_pg;
static store *g_st;

/* ---- helpers ----------------------------------------------------------------------------- */

static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_log[16384];
static int g_log_warns;

static void capture_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    pthread_mutex_lock(&g_log_mu);
    if (level >= STORE_LOG_WARN)
        g_log_warns++;
    size_t used = strlen(g_log);
    snprintf(g_log + used, sizeof(g_log) - used, "%s\n", msg);
    pthread_mutex_unlock(&g_log_mu);
}

static void log_reset(void)
{
    pthread_mutex_lock(&g_log_mu);
    g_log[0] = '\0';
    g_log_warns = 0;
    pthread_mutex_unlock(&g_log_mu);
}

static store_conn *conn(void)
{
    store_conn *c = NULL;
    assert_int_equal(store_conn_acquire(g_st, &c), STORE_OK);
    return c;
}

static int64_t mkuser(store_conn *c, const char *subject)
{
    store_user u;
    store_rc rc = store_user_get_or_create(c, subject, STORE_ROLE_USER, &u, NULL);
    if (rc != STORE_OK)
        fail_msg("get_or_create(%s): %s %s", subject, store_rc_name(rc), store_conn_errmsg(c));
    return u.id;
}

static int64_t raw_count(store_conn *c, const char *sql, int64_t arg)
{
    db_res r;
    db_res_init(&r);
    db_val p[1] = {P_INT(arg)};
    store_rc rc = db_exec(c, sql, p, strstr(sql, "$1") ? 1 : 0, &r);
    if (rc != STORE_OK)
        fail_msg("%s: %s %s", sql, store_rc_name(rc), store_conn_errmsg(c));
    int64_t n = db_int(&r, 0, 0);
    db_res_clear(&r);
    return n;
}

static store_broker_key key_of(const char *label, const char *token)
{
    store_broker_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.broker, sizeof(k.broker), "alpaca");
    snprintf(k.label, sizeof(k.label), "%s", label);
    snprintf(k.environment, sizeof(k.environment), "paper");
    snprintf(k.key_id_mask, sizeof(k.key_id_mask), "PK…9XQ2");
    snprintf(k.ciphertext, sizeof(k.ciphertext), "%s", token);
    k.master_version = 1;
    return k;
}

static store_order order_of(const char *coid)
{
    store_order o;
    memset(&o, 0, sizeof(o));
    snprintf(o.client_order_id, sizeof(o.client_order_id), "%s", coid);
    snprintf(o.symbol, sizeof(o.symbol), "AAPL");
    o.side = STORE_SIDE_BUY;
    o.type = STORE_TYPE_LIMIT;
    o.tif = STORE_TIF_DAY;
    snprintf(o.status, sizeof(o.status), "PENDING_SUBMIT");
    snprintf(o.origin, sizeof(o.origin), "user");
    snprintf(o.mode, sizeof(o.mode), "paper");
    snprintf(o.broker, sizeof(o.broker), "sim");
    o.qty = 10 * 1000000000LL;
    o.limit_price = 187250000; /* 187.25 */
    return o;
}

static store_audit_event event_of(int64_t user_id, int64_t seq, const unsigned char *prev,
                                  unsigned char tag)
{
    store_audit_event e;
    memset(&e, 0, sizeof(e));
    e.user_id = user_id;
    e.seq = seq;
    e.time_us = 1700000000000000LL + seq;
    snprintf(e.actor, sizeof(e.actor), "user");
    snprintf(e.actor_id, sizeof(e.actor_id), "sub-%lld", (long long)user_id);
    snprintf(e.action, sizeof(e.action), seq % 2 ? "order.submit" : "key.add");
    snprintf(e.object_id, sizeof(e.object_id), "obj-%lld", (long long)seq);
    snprintf(e.outcome, sizeof(e.outcome), "ok");
    snprintf(e.details, sizeof(e.details), "{\"n\":%lld}", (long long)seq);
    memcpy(e.prev_hash, prev, STORE_HASH_LEN);
    memset(e.hash, tag, STORE_HASH_LEN);
    return e;
}

static void assert_limits_equal(const store_risk_limits *x, const store_risk_limits *y)
{
    assert_int_equal(x->daily_loss_bps, y->daily_loss_bps);
    assert_int_equal(x->daily_loss_abs, y->daily_loss_abs);
    assert_int_equal(x->drawdown_bps, y->drawdown_bps);
    assert_int_equal(x->max_positions, y->max_positions);
    assert_int_equal(x->max_sector_bps, y->max_sector_bps);
    assert_int_equal(x->max_notional_bps, y->max_notional_bps);
    assert_int_equal(x->collar_bps, y->collar_bps);
    assert_int_equal(x->dup_window_s, y->dup_window_s);
    assert_int_equal(x->max_orders_per_s, y->max_orders_per_s);
    assert_int_equal(x->pdt_enabled, y->pdt_enabled);
}

static int setup(void **state)
{
    (void)state;
    char err[512] = "";
    store_rc rc = store_migrate(g_st, NULL, err, sizeof(err));
    if (rc != STORE_OK)
        fail_msg("migrate: %s %s", store_rc_name(rc), err);
    return 0;
}

/* ---- migrations ------------------------------------------------------------------------------ */

static void store_migrate_from_empty_then_rerun_is_noop(void **state)
{
    (void)state;
    char err[512] = "";
    int v = -1;
    store_conn *c = conn();
    /* Fresh database: no schema_version yet. */
    db_res r;
    db_res_init(&r);
    assert_int_not_equal(db_exec(c, "SELECT COUNT(*) FROM users", NULL, 0, &r), STORE_OK);
    db_res_clear(&r);
    store_conn_release(c);

    assert_int_equal(store_migrate(g_st, &v, err, sizeof(err)), STORE_OK);
    assert_int_equal(v, store_schema_version());
    c = conn();
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM schema_version", 0),
                     store_schema_version());
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM users", 0), 0);
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM global_state", 0), 1);
    store_conn_release(c);

    assert_int_equal(store_migrate(g_st, &v, err, sizeof(err)), STORE_OK);
    assert_int_equal(v, store_schema_version());
    c = conn();
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM schema_version", 0),
                     store_schema_version());
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM global_state", 0), 1);
    store_conn_release(c);
    for (int i = 0; i < STORE_SCHEMA_VERSION; i++) {
        assert_non_null(store_sqlite_migrations[i]);
        assert_non_null(store_pg_migrations[i]);
    }
}

static void store_migrate_refuses_newer_database(void **state)
{
    (void)state;
    char err[512] = "";
    store_conn *c = conn();
    db_val p[1] = {P_INT(store_schema_version() + 7)};
    assert_int_equal(db_exec(c,
                             "INSERT INTO schema_version (version, applied_at_us) VALUES ($1, 0)",
                             p, 1, NULL),
                     STORE_OK);
    store_conn_release(c);

    assert_int_equal(store_migrate(g_st, NULL, err, sizeof(err)), STORE_VERSION);
    assert_non_null(strstr(err, "refusing to start"));
    char want[32];
    snprintf(want, sizeof(want), "version %d", store_schema_version() + 7);
    assert_non_null(strstr(err, want));

    c = conn();
    assert_int_equal(db_exec(c, "DELETE FROM schema_version WHERE version = $1", p, 1, NULL),
                     STORE_OK);
    store_conn_release(c);
    assert_int_equal(store_migrate(g_st, NULL, err, sizeof(err)), STORE_OK);
}

/* ---- users ------------------------------------------------------------------------------------
 */

static void store_user_get_or_create_is_idempotent_with_fresh_salt(void **state)
{
    (void)state;
    store_conn *c = conn();
    store_user a, a2, b;
    bool created = false;
    static const unsigned char zero[STORE_SALT_LEN];

    assert_int_equal(store_user_get_or_create(c, "idem-a", STORE_ROLE_USER, &a, &created),
                     STORE_OK);
    assert_true(created);
    assert_true(a.id > 0);
    assert_string_equal(a.subject, "idem-a");
    assert_memory_not_equal(a.salt, zero, STORE_SALT_LEN);
    assert_int_equal(a.settings.trading_mode, STORE_MODE_PAPER);
    assert_false(a.settings.autonomous);
    assert_int_equal(a.settings.default_broker_key_id, 0);

    assert_int_equal(store_user_get_or_create(c, "idem-a", STORE_ROLE_ADMIN, &a2, &created),
                     STORE_OK);
    assert_false(created);
    assert_int_equal(a2.id, a.id);
    assert_memory_equal(a2.salt, a.salt, STORE_SALT_LEN);
    assert_int_equal(a2.role, STORE_ROLE_USER); /* recorded at creation */

    assert_int_equal(store_user_get_or_create(c, "idem-b", STORE_ROLE_ADMIN, &b, &created),
                     STORE_OK);
    assert_true(created);
    assert_int_not_equal(b.id, a.id);
    assert_int_equal(b.role, STORE_ROLE_ADMIN);
    assert_memory_not_equal(b.salt, a.salt, STORE_SALT_LEN);

    /* A new user has its risk_state row (the lock row) from the start. */
    store_risk_state rs;
    assert_int_equal(store_risk_state_get(c, a.id, &rs), STORE_OK);
    assert_string_equal(rs.trading_state, "ACTIVE");

    char longsub[STORE_SUBJECT_MAX + 2];
    memset(longsub, 'x', sizeof(longsub) - 1);
    longsub[sizeof(longsub) - 1] = '\0';
    assert_int_equal(store_user_get_or_create(c, longsub, STORE_ROLE_USER, &a2, NULL),
                     STORE_INVALID);
    assert_int_equal(store_user_get_or_create(c, "", STORE_ROLE_USER, &a2, NULL), STORE_INVALID);
    assert_int_equal(store_user_get(c, 987654321, &a2), STORE_NOT_FOUND);
    store_conn_release(c);
}

#define RACERS 8

typedef struct racer {
    pthread_barrier_t *bar;
    const char *subject;
    store_rc rc;
    int64_t id;
    bool created;
} racer;

static void *race_create(void *arg)
{
    racer *r = arg;
    store_conn *c = NULL;
    store_user u;
    r->rc = store_conn_acquire(g_st, &c);
    pthread_barrier_wait(r->bar);
    if (r->rc == STORE_OK)
        r->rc = store_user_get_or_create(c, r->subject, STORE_ROLE_USER, &u, &r->created);
    if (r->rc == STORE_OK)
        r->id = u.id;
    store_conn_release(c);
    return NULL;
}

static void store_user_concurrent_first_calls_create_one_user(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        pthread_t th[RACERS];
        racer rs[RACERS];
        pthread_barrier_t bar;
        char subject[64];
        snprintf(subject, sizeof(subject), "racer-%d", round);
        pthread_barrier_init(&bar, NULL, RACERS);
        for (int i = 0; i < RACERS; i++) {
            rs[i] = (racer){.bar = &bar, .subject = subject};
            assert_int_equal(pthread_create(&th[i], NULL, race_create, &rs[i]), 0);
        }
        int creators = 0;
        for (int i = 0; i < RACERS; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(rs[i].rc, STORE_OK);
            assert_int_equal(rs[i].id, rs[0].id);
            creators += rs[i].created;
        }
        pthread_barrier_destroy(&bar);
        assert_int_equal(creators, 1);
        store_conn *c = conn();
        db_res r;
        db_res_init(&r);
        db_val p[1] = {P_TEXT(subject)};
        assert_int_equal(db_exec(c, "SELECT COUNT(*) FROM users WHERE subject = $1", p, 1, &r),
                         STORE_OK);
        assert_int_equal(db_int(&r, 0, 0), 1);
        db_res_clear(&r);
        store_conn_release(c);
    }
}

/* ---- settings, keys, orders --------------------------------------------------------------------
 */

static void store_settings_roundtrip_and_default_key_must_be_own(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "settings-a"), b = mkuser(c, "settings-b");
    store_broker_key k = key_of("main", "gAAAAA-token-a");
    int64_t kid = 0;
    assert_int_equal(store_key_put(c, a, &k, &kid), STORE_OK);

    store_settings s = {
        .trading_mode = STORE_MODE_LIVE, .autonomous = true, .default_broker_key_id = kid};
    assert_int_equal(LOCKED(c, a, store_settings_update(c, a, &s)), STORE_OK);
    store_settings got;
    assert_int_equal(store_settings_get(c, a, &got), STORE_OK);
    assert_int_equal(got.trading_mode, STORE_MODE_LIVE);
    assert_true(got.autonomous);
    assert_int_equal(got.default_broker_key_id, kid);

    /* B may not point its default at A's key; B's settings stay unchanged. */
    assert_int_equal(LOCKED(c, b, store_settings_update(c, b, &s)), STORE_NOT_FOUND);
    assert_int_equal(store_settings_get(c, b, &got), STORE_OK);
    assert_int_equal(got.trading_mode, STORE_MODE_PAPER);
    assert_int_equal(got.default_broker_key_id, 0);

    /* Deleting the default key clears it. */
    assert_int_equal(store_key_delete(c, a, kid), STORE_OK);
    assert_int_equal(store_settings_get(c, a, &got), STORE_OK);
    assert_int_equal(got.default_broker_key_id, 0);
    assert_int_equal(store_settings_get(c, 99999999, &got), STORE_NOT_FOUND);
    store_conn_release(c);
}

static void store_keys_put_list_get_touch_delete(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "keys-a");
    store_broker_key k1 = key_of("one", "gAAAAA-1"), k2 = key_of("two", "gAAAAA-2"), got;
    int64_t id1 = 0, id2 = 0;
    assert_int_equal(store_key_put(c, a, &k1, &id1), STORE_OK);
    assert_int_equal(store_key_put(c, a, &k2, &id2), STORE_OK);
    assert_true(id2 > id1);

    store_broker_key *list = NULL;
    size_t n = 0;
    assert_int_equal(store_key_list(c, a, &list, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, id1);
    assert_string_equal(list[1].label, "two");
    assert_string_equal(list[1].ciphertext, "gAAAAA-2");
    assert_int_equal(list[1].user_id, a);
    assert_int_equal(list[0].last_used_at_us, 0);
    free(list);

    assert_int_equal(store_key_touch(c, a, id1, 1234567), STORE_OK);
    assert_int_equal(store_key_get(c, a, id1, &got), STORE_OK);
    assert_int_equal(got.last_used_at_us, 1234567);
    assert_string_equal(got.key_id_mask, "PK…9XQ2");
    assert_true(got.created_at_us > 0);

    assert_int_equal(store_key_delete(c, a, id1), STORE_OK);
    assert_int_equal(store_key_delete(c, a, id1), STORE_NOT_FOUND);
    assert_int_equal(store_key_get(c, a, id1, &got), STORE_NOT_FOUND);

    k1.environment[0] = '\0';
    assert_int_equal(store_key_put(c, a, &k1, NULL), STORE_INVALID);
    snprintf(k1.environment, sizeof(k1.environment), "moon"); /* schema CHECK */
    assert_int_equal(store_key_put(c, a, &k1, NULL), STORE_INVALID);
    k1 = key_of("x", "");
    assert_int_equal(store_key_put(c, a, &k1, NULL), STORE_INVALID);
    k1 = key_of("x", "t");
    assert_int_equal(store_key_put(c, 424242424, &k1, NULL), STORE_NOT_FOUND); /* FK */
    store_conn_release(c);
}

static void store_admin_keys_batch_pages_and_rewrap_is_optimistic(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "rewrap-a"), b = mkuser(c, "rewrap-b");
    int64_t ids[4];
    for (int i = 0; i < 4; i++) {
        store_broker_key k = key_of("r", "gAAAAA-old");
        assert_int_equal(store_key_put(c, i % 2 ? b : a, &k, &ids[i]), STORE_OK);
    }
    /* Page through everything after ids[0]-1 two at a time: sees both users' keys in order. */
    int64_t after = ids[0] - 1;
    int seen = 0;
    for (;;) {
        store_broker_key *page = NULL;
        size_t n = 0;
        assert_int_equal(store_admin_keys_batch(c, after, 2, &page, &n), STORE_OK);
        if (n == 0)
            break;
        assert_true(n <= 2);
        for (size_t i = 0; i < n; i++) {
            assert_true(page[i].id > after);
            after = page[i].id;
            if (page[i].id >= ids[0] && page[i].id <= ids[3])
                seen++;
            if (page[i].master_version == 1 && page[i].id >= ids[0] && page[i].id <= ids[3])
                assert_int_equal(store_admin_key_rewrap(c, page[i].id, 1, "gAAAAA-new", 2),
                                 STORE_OK);
        }
        free(page);
    }
    assert_int_equal(seen, 4);
    store_broker_key got;
    assert_int_equal(store_key_get(c, b, ids[1], &got), STORE_OK);
    assert_string_equal(got.ciphertext, "gAAAAA-new");
    assert_int_equal(got.master_version, 2);
    /* A second rewrapper that read version 1 loses. */
    assert_int_equal(store_admin_key_rewrap(c, ids[1], 1, "gAAAAA-other", 3), STORE_CONFLICT);
    assert_int_equal(store_admin_key_rewrap(c, 987654321, 1, "t", 2), STORE_NOT_FOUND);
    store_broker_key *page = NULL;
    size_t n = 0;
    assert_int_equal(store_admin_keys_batch(c, 0, 0, &page, &n), STORE_INVALID);
    assert_int_equal(store_admin_keys_batch(c, 0, 1001, &page, &n), STORE_INVALID);
    store_conn_release(c);
}

static void store_orders_idempotent_by_client_order_id_and_paged(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "orders-a"), b = mkuser(c, "orders-b");
    store_order o = order_of("coid-1"), got;
    int64_t id1 = 0, again = 0, idb = 0;
    assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o, &id1)), STORE_OK);
    assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o, &again)), STORE_CONFLICT);
    assert_int_equal(again, id1);
    /* The same client order id is free for another user. */
    assert_int_equal(LOCKED(c, b, store_order_insert(c, b, &o, &idb)), STORE_OK);
    assert_int_not_equal(idb, id1);

    assert_int_equal(store_order_get(c, a, id1, &got), STORE_OK);
    assert_int_equal(got.qty, 10 * 1000000000LL);
    assert_int_equal(got.limit_price, 187250000);
    assert_string_equal(got.violations, "[]");
    assert_int_equal(got.broker_key_id, 0);
    assert_int_equal(got.confirm_by_us, 0);

    snprintf(got.status, sizeof(got.status), "FILLED");
    got.filled_qty = got.qty;
    got.avg_fill_price = 187000000;
    snprintf(got.broker_order_id, sizeof(got.broker_order_id), "brk-77");
    assert_int_equal(LOCKED(c, a, store_order_update(c, a, id1, &got)), STORE_OK);
    assert_int_equal(store_order_get_by_coid(c, a, "coid-1", &got), STORE_OK);
    assert_string_equal(got.status, "FILLED");
    assert_string_equal(got.broker_order_id, "brk-77");
    assert_int_equal(got.avg_fill_price, 187000000);

    /* Who asked to cancel: nobody until recorded; kept by a later status update. */
    assert_string_equal(got.cancel_by.actor, "");
    store_canceler by = {.actor = "admin",
                         .actor_id = "ops@example",
                         .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
                         .span_id = "00f067aa0ba902b7"};
    assert_int_equal(LOCKED(c, a, store_order_cancel_requested(c, a, id1, &by)), STORE_OK);
    assert_int_equal(LOCKED(c, a, store_order_update(c, a, id1, &got)), STORE_OK);
    assert_int_equal(store_order_get(c, a, id1, &got), STORE_OK);
    assert_string_equal(got.cancel_by.actor, "admin");
    assert_string_equal(got.cancel_by.actor_id, "ops@example");
    assert_string_equal(got.cancel_by.trace_id, by.trace_id);
    assert_string_equal(got.cancel_by.span_id, by.span_id);
    /* Another user's order, no lock, and malformed askers change nothing. */
    assert_int_equal(LOCKED(c, b, store_order_cancel_requested(c, b, id1, &by)), STORE_NOT_FOUND);
    assert_int_not_equal(store_order_cancel_requested(c, a, id1, &by), STORE_OK);
    store_canceler bad[4] = {by, by, by, by};
    snprintf(bad[0].actor, sizeof(bad[0].actor), "broker");
    bad[1].actor_id[0] = '\0';
    snprintf(bad[2].trace_id, sizeof(bad[2].trace_id), "4bf92f35");
    bad[3].span_id[0] = '\0';
    for (int i = 0; i < 4; i++)
        assert_int_equal(LOCKED(c, a, store_order_cancel_requested(c, a, id1, &bad[i])),
                         STORE_INVALID);
    assert_int_equal(store_order_get(c, a, id1, &got), STORE_OK);
    assert_string_equal(got.cancel_by.actor, "admin");
    assert_string_equal(got.cancel_by.trace_id, by.trace_id);

    for (int i = 2; i <= 5; i++) {
        char coid[16];
        snprintf(coid, sizeof(coid), "coid-%d", i);
        o = order_of(coid);
        assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o, NULL)), STORE_OK);
    }
    store_order *list = NULL;
    size_t n = 0;
    assert_int_equal(store_order_list(c, a, NULL, 0, 3, &list, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].client_order_id, "coid-5"); /* newest first */
    int64_t before = list[2].id;
    free(list);
    assert_int_equal(store_order_list(c, a, NULL, before, 10, &list, &n), STORE_OK);
    assert_int_equal(n, 2);
    free(list);
    assert_int_equal(store_order_list(c, a, "FILLED", 0, 10, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, id1);
    free(list);

    /* The brief rows select exactly what the full list does, with the same values. */
    assert_int_equal(store_order_list(c, a, NULL, 0, 10, &list, &n), STORE_OK);
    store_order_brief *brief = NULL;
    size_t nb = 0;
    assert_int_equal(store_order_brief_list(c, a, NULL, 0, 10, &brief, &nb), STORE_OK);
    assert_int_equal(nb, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(brief[i].id, list[i].id);
        assert_string_equal(brief[i].symbol, list[i].symbol);
        assert_int_equal(brief[i].side, list[i].side);
        assert_string_equal(brief[i].status, list[i].status);
        assert_int_equal(brief[i].qty, list[i].qty);
        assert_int_equal(brief[i].limit_price, list[i].limit_price);
        assert_int_equal(brief[i].filled_qty, list[i].filled_qty);
        assert_int_equal(brief[i].avg_fill_price, list[i].avg_fill_price);
        assert_int_equal(brief[i].created_at_us, list[i].created_at_us);
        assert_int_equal(brief[i].updated_at_us, list[i].updated_at_us);
    }
    free(brief);
    free(list);
    assert_int_equal(store_order_brief_list(c, a, "FILLED", before, 10, &brief, &nb), STORE_OK);
    assert_int_equal(nb, id1 < before ? 1 : 0);
    free(brief);
    assert_int_equal(store_order_brief_list(c, a, "'; DROP TABLE orders; --", 0, 10, &brief, &nb),
                     STORE_OK);
    assert_int_equal(nb, 0);
    free(brief);
    assert_int_equal(store_order_brief_list(c, a, NULL, 0, 0, &brief, &nb), STORE_INVALID);

    o = order_of("bad");
    o.qty = -1;
    assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o, NULL)), STORE_INVALID);
    store_conn_release(c);
}

static void store_positions_fills_day_trades_roundtrip(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "pos-a");
    store_order o = order_of("pf-1");
    int64_t oid = 0, fid = 0;
    assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o, &oid)), STORE_OK);
    store_fill f = {.order_id = oid, .qty = 5000000000LL, .price = 100500000, .time_us = 9};
    snprintf(f.broker_fill_id, sizeof(f.broker_fill_id), "f-1");
    snprintf(f.symbol, sizeof(f.symbol), "AAPL");
    f.side = STORE_SIDE_BUY;
    assert_int_equal(LOCKED(c, a, store_fill_insert(c, a, &f, &fid)), STORE_OK);
    assert_int_equal(LOCKED(c, a, store_fill_insert(c, a, &f, NULL)),
                     STORE_CONFLICT); /* same fill id */
    store_fill *fl = NULL;
    size_t n = 0;
    assert_int_equal(store_fill_list(c, a, oid, &fl, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(fl[0].id, fid);
    assert_int_equal(fl[0].price, 100500000);
    free(fl);

    store_position p = {.qty = -3000000000LL, .avg_cost = 5, .realized_pnl = -7};
    snprintf(p.symbol, sizeof(p.symbol), "MSFT");
    assert_int_equal(LOCKED(c, a, store_position_put(c, a, &p)), STORE_OK);
    p.qty = 4;
    assert_int_equal(LOCKED(c, a, store_position_put(c, a, &p)), STORE_OK); /* replaces */
    store_position gp;
    assert_int_equal(store_position_get(c, a, "MSFT", &gp), STORE_OK);
    assert_int_equal(gp.qty, 4);
    assert_int_equal(gp.realized_pnl, -7);
    store_position *pl = NULL;
    assert_int_equal(store_position_list(c, a, &pl, &n), STORE_OK);
    assert_int_equal(n, 1);
    free(pl);
    assert_int_equal(store_position_get(c, a, "NOPE", &gp), STORE_NOT_FOUND);

    store_day_trade d = {.trading_day = 20260105, .open_order_id = oid, .close_order_id = oid};
    snprintf(d.symbol, sizeof(d.symbol), "AAPL");
    assert_int_equal(LOCKED(c, a, store_day_trade_insert(c, a, &d)), STORE_OK);
    d.trading_day = 20251201;
    assert_int_equal(LOCKED(c, a, store_day_trade_insert(c, a, &d)), STORE_OK);
    store_day_trade *dl = NULL;
    assert_int_equal(store_day_trade_list(c, a, 20260101, &dl, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(dl[0].trading_day, 20260105);
    free(dl);
    store_conn_release(c);
}

static int64_t g_fake_now_us;
static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return g_fake_now_us;
}

/* The side is text only in the database, and only its two words (type and time in force
 * likewise): an order or a fill without a
 * side is refused, and a row holding any other word (a hand edit, "BUY", "short") reads as
 * corrupt. Text compared with "buy" used to take every other word for a sell. */
static void store_sides_are_two_words(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "sides-a");
    store_order o = order_of("side-0");
    o.side = STORE_SIDE_NONE;
    int64_t oid = 0;
    assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o, &oid)), STORE_INVALID);
    o.side = STORE_SIDE_SELL;
    assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o, &oid)), STORE_OK);
    store_fill f = {.order_id = oid, .qty = 1, .price = 1, .time_us = 1};
    snprintf(f.symbol, sizeof(f.symbol), "AAPL");
    assert_int_equal(LOCKED(c, a, store_fill_insert(c, a, &f, NULL)), STORE_INVALID);
    f.side = STORE_SIDE_SELL;
    assert_int_equal(LOCKED(c, a, store_fill_insert(c, a, &f, NULL)), STORE_OK);
    store_order got;
    assert_int_equal(store_order_get(c, a, oid, &got), STORE_OK);
    assert_int_equal(got.side, STORE_SIDE_SELL);
    assert_string_equal(store_side_name(got.side), "sell");

    const char *words[] = {"BUY", "short", ""};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        db_res r;
        db_res_init(&r);
        db_val p[3] = {P_TEXT(words[i]), P_INT(oid), P_INT(a)};
        assert_int_equal(
            db_exec(c, "UPDATE orders SET side = $1 WHERE id = $2 AND user_id = $3", p, 3, &r),
            STORE_OK);
        db_res_clear(&r);
        assert_int_equal(
            db_exec(c, "UPDATE fills SET side = $1 WHERE order_id = $2 AND user_id = $3", p, 3, &r),
            STORE_OK);
        db_res_clear(&r);
        assert_int_equal(store_order_get(c, a, oid, &got), STORE_CORRUPT);
        store_order_brief *ob = NULL;
        size_t n = 0;
        assert_int_equal(store_order_brief_since(c, a, 0, NULL, STORE_SIDE_NONE, 0, 0, 10, &ob, &n),
                         STORE_CORRUPT);
        assert_null(ob);
        store_fill *fl = NULL;
        assert_int_equal(store_fill_list(c, a, oid, &fl, &n), STORE_CORRUPT);
        assert_null(fl);
    }

    /* Type and time in force: the same. */
    store_order o2 = order_of("side-1");
    o2.type = STORE_TYPE_NONE;
    assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o2, NULL)), STORE_INVALID);
    o2.type = STORE_TYPE_MARKET;
    o2.tif = STORE_TIF_NONE;
    assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o2, NULL)), STORE_INVALID);
    o2.tif = STORE_TIF_IOC;
    int64_t oid2 = 0;
    assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o2, &oid2)), STORE_OK);
    assert_int_equal(store_order_get(c, a, oid2, &got), STORE_OK);
    assert_int_equal(got.type, STORE_TYPE_MARKET);
    assert_int_equal(got.tif, STORE_TIF_IOC);
    const char *changes[] = {"UPDATE orders SET type = 'stop' WHERE id = $1",
                             "UPDATE orders SET type = 'market', tif = 'fok' WHERE id = $1"};
    for (size_t i = 0; i < 2; i++) {
        db_res r;
        db_res_init(&r);
        db_val p[1] = {P_INT(oid2)};
        assert_int_equal(db_exec(c, changes[i], p, 1, &r), STORE_OK);
        db_res_clear(&r);
        assert_int_equal(store_order_get(c, a, oid2, &got), STORE_CORRUPT);
    }
    store_conn_release(c);
}

/* Period reads return every row of the period and nothing outside it, however many rows of the
 * user lie around it, and only the user's own. */
static void store_period_reads_cover_the_period(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "period-a"), b = mkuser(c, "period-b");
    int64_t ids[40], other = 0;
    store_set_clock(fake_clock, NULL);
    for (int i = 0; i < 40; i++) {
        char coid[32];
        snprintf(coid, sizeof(coid), "p-%d", i);
        store_order o = order_of(coid);
        o.qty = 1000000000LL * (1 + i % 3);
        snprintf(o.status, sizeof(o.status), "%s",
                 i % 10 == 9  ? "REJECTED"
                 : i % 4 == 0 ? "ACCEPTED"
                              : "CANCELED");
        g_fake_now_us = 1000000 + (int64_t)i * 1000; /* 1 ms apart */
        assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o, &ids[i])), STORE_OK);
        store_fill f = {.order_id = ids[i], .qty = 1000000000LL, .price = 5, .time_us = 0};
        snprintf(f.broker_fill_id, sizeof(f.broker_fill_id), "f");
        snprintf(f.symbol, sizeof(f.symbol), "%s", i % 2 ? "MSFT" : "AAPL");
        f.side = STORE_SIDE_SELL;
        f.time_us = 5000000 + (int64_t)(39 - i) * 10; /* fills in the reverse order of ids */
        assert_int_equal(LOCKED(c, a, store_fill_insert(c, a, &f, NULL)), STORE_OK);
    }
    store_order ob = order_of("p-b");
    g_fake_now_us = 1020000;
    assert_int_equal(LOCKED(c, b, store_order_insert(c, b, &ob, &other)), STORE_OK);
    store_set_clock(NULL, NULL);

    /* Orders created since 1.020 s: ids[20..39] minus the rejected 29 and 39, newest first. */
    store_order_brief *ob_l = NULL;
    size_t n = 0;
    assert_int_equal(store_order_brief_since(c, a, 1020000, NULL, STORE_SIDE_NONE, 0, 0,
                                             STORE_PERIOD_MAX, &ob_l, &n),
                     STORE_OK);
    assert_int_equal(n, 18);
    assert_int_equal(ob_l[0].id, ids[38]);
    assert_int_equal(ob_l[n - 1].id, ids[20]);
    for (size_t i = 0; i < n; i++) {
        assert_string_not_equal(ob_l[i].status, "REJECTED");
        assert_true(ob_l[i].created_at_us >= 1020000);
        assert_true(ob_l[i].id != other);
    }
    free(ob_l);
    /* A limit takes the newest; exclude_id leaves one out. */
    assert_int_equal(
        store_order_brief_since(c, a, 1020000, NULL, STORE_SIDE_NONE, 0, ids[38], 2, &ob_l, &n),
        STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ob_l[0].id, ids[37]);
    assert_int_equal(ob_l[1].id, ids[36]);
    free(ob_l);
    /* Identical orders (AAPL buy 2 shares): i % 3 == 1 from 20 on: 22, 25, 28, 31, 34, 37. */
    assert_int_equal(store_order_brief_since(c, a, 1020000, "AAPL", STORE_SIDE_BUY, 2000000000LL, 0,
                                             10, &ob_l, &n),
                     STORE_OK);
    assert_int_equal(n, 6);
    assert_int_equal(ob_l[0].id, ids[37]);
    free(ob_l);
    assert_int_equal(store_order_brief_since(c, a, 1020000, "AAPL", STORE_SIDE_SELL, 2000000000LL,
                                             0, 10, &ob_l, &n),
                     STORE_OK);
    assert_int_equal(n, 0);
    free(ob_l);
    assert_int_equal(store_order_brief_since(c, a, 0, NULL, STORE_SIDE_NONE, 0, 0, 0, &ob_l, &n),
                     STORE_INVALID);
    assert_int_equal(store_order_brief_since(c, a, 0, NULL, STORE_SIDE_NONE, 0, 0,
                                             STORE_PERIOD_MAX + 1, &ob_l, &n),
                     STORE_INVALID);

    /* Open orders, oldest first: every fourth (0, 4, ... 36). */
    assert_int_equal(store_order_open_brief_list(c, a, STORE_PERIOD_MAX, &ob_l, &n), STORE_OK);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ob_l[i].id, ids[4 * i]);
    free(ob_l);

    /* Fills in [5.000100 s, 5.000200 s): those of ids[20..29], in time order (reverse id). */
    store_fill *fl = NULL;
    assert_int_equal(store_fill_list_period(c, a, 5000100, 5000200, STORE_PERIOD_MAX, &fl, &n),
                     STORE_OK);
    assert_int_equal(n, 10);
    assert_int_equal(fl[0].order_id, ids[29]);
    assert_int_equal(fl[9].order_id, ids[20]);
    for (size_t i = 1; i < n; i++)
        assert_true(fl[i - 1].time_us <= fl[i].time_us);
    free(fl);
    assert_int_equal(store_fill_list_period(c, a, 0, 0, STORE_PERIOD_MAX, &fl, &n), STORE_OK);
    assert_int_equal(n, 40); /* until 0 = unbounded */
    free(fl);
    assert_int_equal(store_fill_list_period(c, b, 0, 0, STORE_PERIOD_MAX, &fl, &n), STORE_OK);
    assert_int_equal(n, 0); /* the other user's */
    free(fl);
    store_conn_release(c);
}

static void store_risk_limits_roundtrip_and_global_halt(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "limits-a");
    store_risk_limits l = {1, 2, 3, 4, 5, 6, 7, 8, 9, true}, got;
    assert_int_equal(store_risk_limits_get(c, a, &got), STORE_NOT_FOUND);
    assert_int_equal(LOCKED(c, a, store_risk_limits_set(c, a, &l)), STORE_OK);
    l.daily_loss_abs = 250000000000LL; /* $250,000 */
    l.pdt_enabled = false;
    assert_int_equal(LOCKED(c, a, store_risk_limits_set(c, a, &l)), STORE_OK);
    assert_int_equal(store_risk_limits_get(c, a, &got), STORE_OK);
    assert_limits_equal(&got, &l);

    store_global_state g;
    assert_int_equal(store_global_set(c, true, "admin-1", "market chaos", 42), STORE_OK);
    assert_int_equal(store_global_get(c, &g), STORE_OK);
    assert_true(g.halted);
    assert_string_equal(g.halted_by, "admin-1");
    assert_string_equal(g.halt_reason, "market chaos");
    assert_int_equal(g.updated_at_us, 42);
    assert_int_equal(store_global_set(c, false, "", "", 43), STORE_OK);
    assert_int_equal(store_global_get(c, &g), STORE_OK);
    assert_false(g.halted);
    store_conn_release(c);
}

/* ---- isolation
 * ----------------------------------------------------------------------------------- */

static void store_isolation_user_b_cannot_read_change_or_delete_user_a_rows(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "iso-a"), b = mkuser(c, "iso-b");
    store_broker_key k = key_of("a-key", "gAAAAA-secret-of-a"), gk;
    int64_t kid = 0, oid = 0;
    assert_int_equal(store_key_put(c, a, &k, &kid), STORE_OK);
    store_order o = order_of("iso-1"), go;
    o.broker_key_id = kid;
    assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o, &oid)), STORE_OK);
    store_risk_limits la = {100, 200, 300, 4, 500, 600, 700, 8, 9, true}, gl;
    assert_int_equal(LOCKED(c, a, store_risk_limits_set(c, a, &la)), STORE_OK);
    store_settings sa = {.trading_mode = STORE_MODE_LIVE, .default_broker_key_id = kid};
    assert_int_equal(LOCKED(c, a, store_settings_update(c, a, &sa)), STORE_OK);
    store_position pa = {.qty = 1, .avg_cost = 2, .realized_pnl = 3};
    snprintf(pa.symbol, sizeof(pa.symbol), "TSLA");
    assert_int_equal(LOCKED(c, a, store_position_put(c, a, &pa)), STORE_OK);

    /* keys */
    assert_int_equal(store_key_get(c, b, kid, &gk), STORE_NOT_FOUND);
    assert_int_equal(store_key_touch(c, b, kid, 5), STORE_NOT_FOUND);
    assert_int_equal(store_key_delete(c, b, kid), STORE_NOT_FOUND);
    store_broker_key *kl = NULL;
    size_t n = 1;
    assert_int_equal(store_key_list(c, b, &kl, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_null(kl);
    /* orders */
    assert_int_equal(store_order_get(c, b, oid, &go), STORE_NOT_FOUND);
    assert_int_equal(store_order_get_by_coid(c, b, "iso-1", &go), STORE_NOT_FOUND);
    go = order_of("iso-1");
    snprintf(go.status, sizeof(go.status), "CANCELED");
    assert_int_equal(LOCKED(c, b, store_order_update(c, b, oid, &go)), STORE_NOT_FOUND);
    store_order *ol = NULL;
    assert_int_equal(store_order_list(c, b, NULL, 0, 100, &ol, &n), STORE_OK);
    assert_int_equal(n, 0);
    store_order ob = order_of("iso-b");
    ob.broker_key_id = kid; /* B cannot route through A's key */
    assert_int_equal(LOCKED(c, b, store_order_insert(c, b, &ob, NULL)), STORE_NOT_FOUND);
    /* fills on A's order */
    store_fill f = {.order_id = oid, .qty = 1, .price = 1, .time_us = 1};
    snprintf(f.symbol, sizeof(f.symbol), "AAPL");
    f.side = STORE_SIDE_BUY;
    assert_int_equal(LOCKED(c, b, store_fill_insert(c, b, &f, NULL)), STORE_NOT_FOUND);
    store_fill *fl = NULL;
    assert_int_equal(store_fill_list(c, b, oid, &fl, &n), STORE_OK);
    assert_int_equal(n, 0);
    /* settings, limits, positions */
    store_settings sb = {.default_broker_key_id = kid};
    assert_int_equal(LOCKED(c, b, store_settings_update(c, b, &sb)), STORE_NOT_FOUND);
    assert_int_equal(store_risk_limits_get(c, b, &gl), STORE_NOT_FOUND);
    store_position gp;
    assert_int_equal(store_position_get(c, b, "TSLA", &gp), STORE_NOT_FOUND);
    /* B writing its own rows leaves A's untouched. */
    store_risk_limits lb = {1, 1, 1, 1, 1, 1, 1, 1, 1, false};
    assert_int_equal(LOCKED(c, b, store_risk_limits_set(c, b, &lb)), STORE_OK);
    pa.qty = 999;
    assert_int_equal(LOCKED(c, b, store_position_put(c, b, &pa)), STORE_OK);

    /* A's rows are intact. */
    assert_int_equal(store_key_get(c, a, kid, &gk), STORE_OK);
    assert_int_equal(gk.last_used_at_us, 0);
    assert_int_equal(store_order_get(c, a, oid, &go), STORE_OK);
    assert_string_equal(go.status, "PENDING_SUBMIT");
    assert_int_equal(store_risk_limits_get(c, a, &gl), STORE_OK);
    assert_limits_equal(&gl, &la);
    store_settings gs;
    assert_int_equal(store_settings_get(c, a, &gs), STORE_OK);
    assert_int_equal(gs.default_broker_key_id, kid);
    assert_int_equal(store_position_get(c, a, "TSLA", &gp), STORE_OK);
    assert_int_equal(gp.qty, 1);
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM fills WHERE order_id = $1", oid), 0);

    /* audit: B sees only its own chain */
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    static const unsigned char zero[STORE_HASH_LEN];
    store_audit_event e = event_of(a, 1, zero, 0xA1);
    assert_int_equal(store_audit_append(c, &e), STORE_OK);
    assert_int_equal(store_tx_commit(c), STORE_OK);
    store_audit_filter af = {.limit = 100};
    store_audit_event *al = NULL;
    assert_int_equal(store_audit_list(c, b, &af, &al, &n), STORE_OK);
    assert_int_equal(n, 0);
    /* B cannot append to A's chain while holding only its own lock. */
    assert_int_equal(store_tx_begin_user(c, b), STORE_OK);
    unsigned char h[STORE_HASH_LEN];
    memset(h, 0xA1, sizeof(h));
    e = event_of(a, 2, h, 0xA2);
    assert_int_equal(store_audit_append(c, &e), STORE_INVALID);
    assert_int_equal(store_tx_rollback(c), STORE_OK);
    store_conn_release(c);
}

/* ---- hostile strings
 * ------------------------------------------------------------------------------ */

static const char *const hostile[] = {
    "'; DROP TABLE users; --",
    "\"; DROP TABLE broker_keys; --",
    "' OR '1'='1",
    "Robert'); DELETE FROM orders WHERE ('1'='1",
    "back\\slash \\' \\\\ \\x00 \\n",
    "$1 $2 ?1 ? :name @p %s %n",
    ("\xc3\xa9\xe2\x82\xac\xf0\x9f\x9a\x80 \xe4\xb8\xad\xe6\x96\x87 " /* é€🚀 中文 */
     "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"),                             /* שלום */
    "tab\there\nnewline\r\n",
    "/* comment */ SELECT 1; --",
    "E'\\x41' || chr(0)",
};

static void store_hostile_strings_are_stored_and_returned_verbatim(void **state)
{
    (void)state;
    store_conn *c = conn();
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        const char *s = hostile[i];
        char sub[STORE_SUBJECT_MAX + 1];
        snprintf(sub, sizeof(sub), "%s#%zu", s, i);
        store_user u, u2;
        assert_int_equal(store_user_get_or_create(c, sub, STORE_ROLE_USER, &u, NULL), STORE_OK);
        assert_string_equal(u.subject, sub);
        assert_int_equal(store_user_get_or_create(c, sub, STORE_ROLE_USER, &u2, NULL), STORE_OK);
        assert_int_equal(u2.id, u.id);

        store_broker_key k = key_of(s, s), gk;
        snprintf(k.broker, sizeof(k.broker), "%.32s", s);
        snprintf(k.key_id_mask, sizeof(k.key_id_mask), "%s", s);
        int64_t kid = 0;
        assert_int_equal(store_key_put(c, u.id, &k, &kid), STORE_OK);
        assert_int_equal(store_key_get(c, u.id, kid, &gk), STORE_OK);
        assert_string_equal(gk.broker, k.broker);
        assert_string_equal(gk.label, s);
        assert_string_equal(gk.key_id_mask, s);
        assert_string_equal(gk.ciphertext, s);
        assert_int_equal(store_admin_key_rewrap(c, kid, 1, s, 2), STORE_OK);

        store_order o, go;
        memset(&o, 0, sizeof(o));
        snprintf(o.client_order_id, sizeof(o.client_order_id), "%s", s);
        snprintf(o.symbol, sizeof(o.symbol), "%.32s", s);
        o.side = STORE_SIDE_SELL; /* a word of two: not free text (store_sides_are_two_words) */
        o.type = STORE_TYPE_MARKET;
        o.tif = STORE_TIF_GTC;
        snprintf(o.status, sizeof(o.status), "%.32s", s);
        snprintf(o.origin, sizeof(o.origin), "%.32s", s);
        snprintf(o.mode, sizeof(o.mode), "%.32s", s);
        snprintf(o.broker, sizeof(o.broker), "%.32s", s);
        snprintf(o.broker_order_id, sizeof(o.broker_order_id), "%s", s);
        snprintf(o.violations, sizeof(o.violations), "%s", s);
        o.qty = 1;
        int64_t oid = 0;
        assert_int_equal(LOCKED(c, u.id, store_order_insert(c, u.id, &o, &oid)), STORE_OK);
        assert_int_equal(store_order_get_by_coid(c, u.id, s, &go), STORE_OK);
        assert_int_equal(go.id, oid);
        assert_string_equal(go.symbol, o.symbol);
        assert_int_equal(go.side, o.side);
        assert_int_equal(go.type, o.type);
        assert_int_equal(go.tif, o.tif);
        assert_string_equal(go.status, o.status);
        assert_string_equal(go.origin, o.origin);
        assert_string_equal(go.mode, o.mode);
        assert_string_equal(go.broker, o.broker);
        assert_string_equal(go.broker_order_id, s);
        assert_string_equal(go.violations, s);
        store_order *ol = NULL;
        size_t n = 0;
        assert_int_equal(store_order_list(c, u.id, o.status, 0, 10, &ol, &n), STORE_OK);
        assert_int_equal(n, 1);
        free(ol);

        store_fill f = {.order_id = oid, .qty = 1, .price = 1};
        snprintf(f.broker_fill_id, sizeof(f.broker_fill_id), "%s", s);
        snprintf(f.symbol, sizeof(f.symbol), "%.32s", s);
        f.side = STORE_SIDE_SELL;
        assert_int_equal(LOCKED(c, u.id, store_fill_insert(c, u.id, &f, NULL)), STORE_OK);
        store_fill *fl = NULL;
        assert_int_equal(store_fill_list(c, u.id, oid, &fl, &n), STORE_OK);
        assert_int_equal(n, 1);
        assert_string_equal(fl[0].broker_fill_id, s);
        assert_string_equal(fl[0].symbol, f.symbol);
        free(fl);

        store_position p = {.qty = 1}, gp;
        snprintf(p.symbol, sizeof(p.symbol), "%.32s", s);
        assert_int_equal(LOCKED(c, u.id, store_position_put(c, u.id, &p)), STORE_OK);
        assert_int_equal(store_position_get(c, u.id, p.symbol, &gp), STORE_OK);
        assert_string_equal(gp.symbol, p.symbol);
        store_day_trade d = {.trading_day = 20260102}, *dl = NULL;
        snprintf(d.symbol, sizeof(d.symbol), "%.32s", s);
        assert_int_equal(LOCKED(c, u.id, store_day_trade_insert(c, u.id, &d)), STORE_OK);
        assert_int_equal(store_day_trade_list(c, u.id, 0, &dl, &n), STORE_OK);
        assert_int_equal(n, 1);
        assert_string_equal(dl[0].symbol, d.symbol);
        free(dl);

        assert_int_equal(store_tx_begin_user(c, u.id), STORE_OK);
        store_risk_state rs, grs;
        memset(&rs, 0, sizeof(rs));
        snprintf(rs.trading_state, sizeof(rs.trading_state), "%.32s", s);
        snprintf(rs.halted_by, sizeof(rs.halted_by), "%.32s", s);
        snprintf(rs.halt_reason, sizeof(rs.halt_reason), "%s", s);
        assert_int_equal(store_risk_state_update(c, u.id, &rs), STORE_OK);
        static const unsigned char zero[STORE_HASH_LEN];
        store_audit_event e = event_of(u.id, 1, zero, 7);
        snprintf(e.actor, sizeof(e.actor), "%.16s", s);
        snprintf(e.actor_id, sizeof(e.actor_id), "%s", s);
        snprintf(e.action, sizeof(e.action), "%s", s);
        snprintf(e.object_id, sizeof(e.object_id), "%s", s);
        snprintf(e.outcome, sizeof(e.outcome), "%.32s", s);
        snprintf(e.details, sizeof(e.details), "%s", s);
        assert_int_equal(store_audit_append(c, &e), STORE_OK);
        assert_int_equal(store_tx_commit(c), STORE_OK);
        assert_int_equal(store_risk_state_get(c, u.id, &grs), STORE_OK);
        assert_string_equal(grs.trading_state, rs.trading_state);
        assert_string_equal(grs.halted_by, rs.halted_by);
        assert_string_equal(grs.halt_reason, s);
        store_audit_filter af = {.action = s, .limit = 10};
        store_audit_event *al = NULL;
        assert_int_equal(store_audit_list(c, u.id, &af, &al, &n), STORE_OK);
        assert_int_equal(n, 1);
        assert_string_equal(al[0].actor, e.actor);
        assert_string_equal(al[0].actor_id, s);
        assert_string_equal(al[0].action, s);
        assert_string_equal(al[0].object_id, s);
        assert_string_equal(al[0].outcome, e.outcome);
        assert_string_equal(al[0].details, s);
        free(al);

        store_global_state g;
        assert_int_equal(store_global_set(c, false, s, s, 1), STORE_OK);
        assert_int_equal(store_global_get(c, &g), STORE_OK);
        assert_string_equal(g.halted_by, s);
        assert_string_equal(g.halt_reason, s);
    }
    /* Every table is still there and holds what it should. */
    assert_true(raw_count(c, "SELECT COUNT(*) FROM users", 0) >= 10);
    assert_true(raw_count(c, "SELECT COUNT(*) FROM broker_keys", 0) >= 10);
    assert_true(raw_count(c, "SELECT COUNT(*) FROM orders", 0) >= 10);
    store_conn_release(c);
}

/* ---- per-user version ------------------------------------------------------------------ */

/* Every committed user transaction bumps that user's version by one (a rolled-back one leaves
 * it), other users' versions stay: what a cache of a user's state checks (issue 18). */
static void store_user_version_counts_committed_user_transactions(void **state)
{
    (void)state;
    store_conn *c = conn(), *d = conn();
    int64_t a = mkuser(c, "ver-a"), b = mkuser(c, "ver-b");
    assert_int_equal(store_tx_version(c), 0); /* outside a transaction */
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    int64_t v = store_tx_version(c);
    assert_true(v >= 0);
    assert_int_equal(store_tx_commit(c), STORE_OK);
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_int_equal(store_tx_version(c), v + 1);
    assert_int_equal(store_tx_rollback(c), STORE_OK);
    /* Another connection (another process, in production) sees what was committed. */
    assert_int_equal(store_tx_begin_user(d, a), STORE_OK);
    assert_int_equal(store_tx_version(d), v + 1);
    assert_int_equal(store_tx_commit(d), STORE_OK);
    assert_int_equal(store_tx_begin_user(c, b), STORE_OK);
    int64_t vb = store_tx_version(c);
    assert_int_equal(store_tx_commit(c), STORE_OK);
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_int_equal(store_tx_version(c), v + 2); /* b's transaction did not move a's version */
    assert_int_equal(store_tx_commit(c), STORE_OK);
    assert_int_equal(store_tx_begin_user(c, b), STORE_OK);
    assert_int_equal(store_tx_version(c), vb + 1);
    assert_int_equal(store_tx_commit(c), STORE_OK);
    store_conn_release(d);
    store_conn_release(c);
}

static int ends, ends_committed;
static void count_end(void *ctx, store_conn *c, bool committed)
{
    (void)ctx;
    ends++;
    ends_committed += committed;
    /* Still answers for the transaction that just ended. */
    assert_true(store_tx_version(c) > 0);
}

/* What a copy of the user's state (the ledger's book) relies on: every change a user
 * transaction makes is counted, only under the user's lock, the lock reads the kill switch,
 * an end hook runs exactly once, and a seeded audit head spares the append its read. */
static void store_user_tx_counts_changes_and_ends_once(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "cnt-a");
    store_order o = order_of("cnt-1");
    store_position p = {.symbol = "CNT", .qty = 1000000000, .avg_cost = 5000000};

    /* No lock, no change: a change the version would not announce is refused. */
    assert_int_equal(store_order_insert(c, a, &o, NULL), STORE_INVALID);
    assert_int_equal(store_position_put(c, a, &p), STORE_INVALID);
    assert_int_equal(store_tx_begin(c), STORE_OK);
    assert_int_equal(store_position_put(c, a, &p), STORE_INVALID); /* a plain tx is not it */
    assert_int_equal(store_tx_rollback(c), STORE_OK);
    int64_t b = mkuser(c, "cnt-b");
    assert_int_equal(store_tx_begin_user(c, b), STORE_OK);
    assert_int_equal(store_position_put(c, a, &p), STORE_INVALID); /* another user's lock */
    assert_int_equal(store_tx_rollback(c), STORE_OK);

    ends = ends_committed = 0;
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_false(store_tx_global_halted(c));
    assert_int_equal(store_tx_writes(c), 0); /* the lock itself is no change */
    store_tx_on_end(c, count_end, NULL);
    assert_ptr_equal(store_tx_end_ctx(c, count_end), NULL);
    assert_int_equal(store_order_insert(c, a, &o, NULL), STORE_OK);
    assert_int_equal(store_position_put(c, a, &p), STORE_OK);
    static const unsigned char zero[STORE_HASH_LEN];
    store_audit_event e = event_of(a, 1, zero, 3);
    assert_int_equal(store_audit_append(c, &e), STORE_OK);
    assert_int_equal(store_tx_writes(c), 3);
    assert_int_equal(store_tx_audits(c), 1);
    int64_t seq;
    unsigned char h[STORE_HASH_LEN];
    assert_true(store_tx_head(c, &seq, h));
    assert_int_equal(seq, 1);
    assert_int_equal(store_tx_commit(c), STORE_OK);
    assert_int_equal(ends, 1);
    assert_int_equal(ends_committed, 1);
    assert_int_equal(store_tx_writes(c), 0);

    /* A rollback ends it too, not committed. */
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    store_tx_on_end(c, count_end, &ends);
    assert_ptr_equal(store_tx_end_ctx(c, count_end), &ends);
    assert_int_equal(store_tx_rollback(c), STORE_OK);
    assert_int_equal(ends, 2);
    assert_int_equal(ends_committed, 1);

    /* The kill switch is read by the user's lock. */
    assert_int_equal(store_tx_begin_global(c), STORE_OK);
    assert_int_equal(store_global_set(c, true, "admin", "test", 1), STORE_OK);
    assert_int_equal(store_tx_commit(c), STORE_OK);
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_true(store_tx_global_halted(c));
    /* A seeded head: the append builds on it without reading the chain. */
    unsigned char h1[STORE_HASH_LEN];
    memset(h1, 3, sizeof(h1));
    store_tx_seed_head(c, 1, h1);
    uint64_t n0, n1, commits;
    store_counts(g_st, &n0, &commits);
    store_audit_event e2 = event_of(a, 2, h1, 4);
    assert_int_equal(store_audit_append(c, &e2), STORE_OK);
    store_counts(g_st, &n1, &commits);
    assert_int_equal(n1 - n0, 1); /* the INSERT alone */
    assert_int_equal(store_tx_commit(c), STORE_OK);
    assert_int_equal(store_tx_begin_global(c), STORE_OK);
    assert_int_equal(store_global_set(c, false, "", "", 2), STORE_OK);
    assert_int_equal(store_tx_commit(c), STORE_OK);
    store_conn_release(c);
}

/* ---- audit
 * ----------------------------------------------------------------------------------------- */

static void store_audit_chain_appends_in_order_and_is_append_only(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "audit-a");
    static const unsigned char zero[STORE_HASH_LEN];
    unsigned char h[STORE_HASH_LEN];
    int64_t seq = -1;

    assert_int_equal(store_audit_last(c, a, &seq, h), STORE_OK);
    assert_int_equal(seq, 0);
    assert_memory_equal(h, zero, STORE_HASH_LEN);

    /* Outside a transaction: refused. */
    store_audit_event e = event_of(a, 1, zero, 1);
    assert_int_equal(store_audit_append(c, &e), STORE_INVALID);

    for (int i = 1; i <= 3; i++) {
        assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
        assert_int_equal(store_audit_last(c, a, &seq, h), STORE_OK);
        assert_int_equal(seq, i - 1);
        e = event_of(a, seq + 1, h, (unsigned char)i);
        assert_int_equal(store_audit_append(c, &e), STORE_OK);
        assert_int_equal(store_tx_commit(c), STORE_OK);
    }
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    memset(h, 3, sizeof(h));
    e = event_of(a, 3, h, 9); /* seq already taken */
    assert_int_equal(store_audit_append(c, &e), STORE_CONFLICT);
    e = event_of(a, 4, zero, 9); /* wrong prev hash */
    assert_int_equal(store_audit_append(c, &e), STORE_CONFLICT);
    e = event_of(a, 5, h, 9); /* gap */
    assert_int_equal(store_audit_append(c, &e), STORE_CONFLICT);
    assert_int_equal(store_tx_rollback(c), STORE_OK);

    /* System chain under the global lock. */
    assert_int_equal(store_tx_begin_global(c), STORE_OK);
    assert_int_equal(store_audit_last(c, 0, &seq, h), STORE_OK);
    e = event_of(0, seq + 1, h, 0x55);
    snprintf(e.actor, sizeof(e.actor), "system");
    assert_int_equal(store_audit_append(c, &e), STORE_OK);
    assert_int_equal(store_tx_commit(c), STORE_OK);

    store_audit_filter f = {.limit = 2};
    store_audit_event *l = NULL;
    size_t n = 0;
    assert_int_equal(store_audit_list(c, a, &f, &l, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(l[0].seq, 1);
    assert_int_equal(l[1].seq, 2);
    assert_int_equal(l[1].user_id, a);
    assert_memory_equal(l[1].prev_hash, l[0].hash, STORE_HASH_LEN);
    assert_string_equal(l[1].details, "{\"n\":2}");
    free(l);
    f.after_seq = 2;
    assert_int_equal(store_audit_list(c, a, &f, &l, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(l[0].seq, 3);
    free(l);
    f = (store_audit_filter){.action = "key.add", .limit = 10};
    assert_int_equal(store_audit_list(c, a, &f, &l, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(l[0].seq, 2);
    free(l);
    f = (store_audit_filter){
        .since_us = 1700000000000002LL, .until_us = 1700000000000003LL, .limit = 10};
    assert_int_equal(store_audit_list(c, a, &f, &l, &n), STORE_OK);
    assert_int_equal(n, 1);
    free(l);

    /* Admin: one chain, the system chain, all chains. */
    f = (store_audit_filter){.limit = 1000};
    assert_int_equal(store_admin_audit_list(c, a, &f, &l, &n), STORE_OK);
    assert_int_equal(n, 3);
    free(l);
    assert_int_equal(store_admin_audit_list(c, 0, &f, &l, &n), STORE_OK);
    assert_true(n >= 1);
    assert_int_equal(l[0].user_id, 0);
    free(l);
    assert_int_equal(store_admin_audit_list(c, -1, &f, &l, &n), STORE_OK);
    assert_true(n >= 4);
    for (size_t i = 1; i < n; i++)
        assert_true(l[i].id > l[i - 1].id);
    free(l);

    /* Append-only at the database level. */
    db_val p[1] = {P_INT(a)};
    assert_int_equal(
        db_exec(c, "UPDATE audit_events SET outcome = 'forged' WHERE chain = $1", p, 1, NULL),
        STORE_DENIED);
    assert_int_equal(db_exec(c, "DELETE FROM audit_events WHERE chain = $1", p, 1, NULL),
                     STORE_DENIED);
    if (g_pg)
        assert_int_equal(db_exec(c, "TRUNCATE audit_events", NULL, 0, NULL), STORE_DENIED);
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM audit_events WHERE chain = $1", a), 3);
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM audit_events WHERE outcome = 'forged'", 0),
                     0);
    store_conn_release(c);
}

/* ---- transactions
 * ----------------------------------------------------------------------------------- */

static void count_hook(void *ctx)
{
    (*(int *)ctx)++;
}

/* The audit hook (it wakes the event streams) runs once per committed transaction that appended
 * audit events: not for one rolled back, not for one without events, not after it is cleared. */
static void store_audit_hook_runs_after_commits_that_wrote_events(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "hook-a");
    static const unsigned char zero[STORE_HASH_LEN];
    int calls = 0;
    store_set_audit_hook(g_st, count_hook, &calls);

    store_audit_event e = event_of(a, 1, zero, 1);
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_int_equal(store_audit_append(c, &e), STORE_OK);
    assert_int_equal(calls, 0); /* not before the commit */
    assert_int_equal(store_tx_rollback(c), STORE_OK);
    assert_int_equal(calls, 0);

    store_broker_key k = key_of("hook", "gAAAAA-hook");
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_int_equal(store_key_put(c, a, &k, NULL), STORE_OK);
    assert_int_equal(store_tx_commit(c), STORE_OK);
    assert_int_equal(calls, 0); /* no audit event in it */

    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_int_equal(store_audit_append(c, &e), STORE_OK);
    unsigned char h[STORE_HASH_LEN];
    memset(h, 1, sizeof(h));
    store_audit_event e2 = event_of(a, 2, h, 2);
    assert_int_equal(store_audit_append(c, &e2), STORE_OK);
    assert_int_equal(store_tx_commit(c), STORE_OK);
    assert_int_equal(calls, 1); /* two events, one commit */

    store_set_audit_hook(g_st, NULL, NULL);
    memset(h, 2, sizeof(h));
    store_audit_event e3 = event_of(a, 3, h, 3);
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_int_equal(store_audit_append(c, &e3), STORE_OK);
    assert_int_equal(store_tx_commit(c), STORE_OK);
    assert_int_equal(calls, 1);
    store_conn_release(c);
}

static void store_tx_rollback_leaves_no_half_written_rows(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "tx-a");
    static const unsigned char zero[STORE_HASH_LEN];
    store_broker_key k = key_of("tx", "gAAAAA-tx");
    store_order o = order_of("tx-1");

    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_int_equal(store_tx_begin(c), STORE_INVALID); /* no nesting */
    assert_int_equal(store_key_put(c, a, &k, NULL), STORE_OK);
    assert_int_equal(store_order_insert(c, a, &o, NULL), STORE_OK);
    store_audit_event e = event_of(a, 1, zero, 1);
    assert_int_equal(store_audit_append(c, &e), STORE_OK);
    assert_int_equal(store_tx_rollback(c), STORE_OK);
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM broker_keys WHERE user_id = $1", a), 0);
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM orders WHERE user_id = $1", a), 0);
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM audit_events WHERE chain = $1", a), 0);

    /* A failure mid-transaction (duplicate client order id) and rollback: nothing of it stays. */
    assert_int_equal(LOCKED(c, a, store_order_insert(c, a, &o, NULL)), STORE_OK);
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_int_equal(store_key_put(c, a, &k, NULL), STORE_OK);
    assert_int_equal(store_order_insert(c, a, &o, NULL), STORE_CONFLICT);
    assert_int_equal(store_tx_rollback(c), STORE_OK);
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM broker_keys WHERE user_id = $1", a), 0);
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM orders WHERE user_id = $1", a), 1);

    /* Commit keeps everything; releasing a conn with an open tx rolls it back. */
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_int_equal(store_key_put(c, a, &k, NULL), STORE_OK);
    assert_int_equal(store_tx_commit(c), STORE_OK);
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_int_equal(store_key_put(c, a, &k, NULL), STORE_OK);
    store_conn_release(c);
    c = conn();
    assert_int_equal(raw_count(c, "SELECT COUNT(*) FROM broker_keys WHERE user_id = $1", a), 1);
    assert_int_equal(store_tx_commit(c), STORE_INVALID); /* nothing open */
    assert_int_equal(store_tx_begin_user(c, 77777777), STORE_NOT_FOUND);
    assert_int_equal(store_tx_begin(c), STORE_OK); /* the failed begin left no tx behind */
    assert_int_equal(store_tx_rollback(c), STORE_OK);
    store_conn_release(c);
}

static void store_risk_state_update_requires_the_users_lock(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "rs-a"), b = mkuser(c, "rs-b");
    store_risk_state rs, got;
    assert_int_equal(store_risk_state_get(c, a, &rs), STORE_OK);
    snprintf(rs.trading_state, sizeof(rs.trading_state), "HALTED");
    snprintf(rs.halted_by, sizeof(rs.halted_by), "breaker");
    rs.sod_equity = 100000000000LL;
    rs.peak_equity = 120000000000LL;
    rs.trading_day = 20260302;
    rs.breaker_until_us = 99;
    assert_int_equal(store_risk_state_update(c, a, &rs), STORE_INVALID); /* no tx */
    assert_int_equal(store_tx_begin_user(c, b), STORE_OK);
    assert_int_equal(store_risk_state_update(c, a, &rs), STORE_INVALID); /* B's lock */
    assert_int_equal(store_tx_rollback(c), STORE_OK);
    assert_int_equal(store_tx_begin_user(c, a), STORE_OK);
    assert_int_equal(store_risk_state_update(c, a, &rs), STORE_OK);
    assert_int_equal(store_tx_commit(c), STORE_OK);
    assert_int_equal(store_risk_state_get(c, a, &got), STORE_OK);
    assert_memory_equal(&got, &rs, sizeof(rs));
    assert_int_equal(store_risk_state_get(c, b, &got), STORE_OK);
    assert_string_equal(got.trading_state, "ACTIVE");
    store_conn_release(c);
}

#define LOCKERS 6
#define LOCK_ROUNDS 15

typedef struct locker {
    int64_t user_id;
    int failures;
} locker;

/* Read-modify-write of sod_equity under the user lock; lost updates would show in the sum. */
static void *lock_worker(void *arg)
{
    locker *l = arg;
    store_conn *c = NULL;
    if (store_conn_acquire(g_st, &c) != STORE_OK) {
        l->failures++;
        return NULL;
    }
    for (int i = 0; i < LOCK_ROUNDS; i++) {
        store_risk_state rs;
        store_rc rc = store_tx_begin_user(c, l->user_id);
        if (rc == STORE_OK)
            rc = store_risk_state_get(c, l->user_id, &rs);
        if (rc == STORE_OK) {
            rs.sod_equity += 1;
            usleep(200);
            rc = store_risk_state_update(c, l->user_id, &rs);
        }
        if (rc == STORE_OK)
            rc = store_tx_commit(c);
        if (rc != STORE_OK) {
            store_tx_rollback(c);
            l->failures++;
        }
    }
    store_conn_release(c);
    return NULL;
}

static void store_user_lock_serializes_read_modify_write(void **state)
{
    (void)state;
    store_conn *c = conn();
    int64_t a = mkuser(c, "lock-a");
    store_conn_release(c);
    pthread_t th[LOCKERS];
    locker ls[LOCKERS];
    for (int i = 0; i < LOCKERS; i++) {
        ls[i] = (locker){.user_id = a};
        assert_int_equal(pthread_create(&th[i], NULL, lock_worker, &ls[i]), 0);
    }
    for (int i = 0; i < LOCKERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ls[i].failures, 0);
    }
    c = conn();
    store_risk_state rs;
    assert_int_equal(store_risk_state_get(c, a, &rs), STORE_OK);
    assert_int_equal(rs.sod_equity, LOCKERS * LOCK_ROUNDS);
    store_conn_release(c);
}

/* ---- URL checks and health
 * ------------------------------------------------------------------------- */

static void store_url_check_warns_for_remote_postgres_without_verify_full(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        store_rc rc;
        bool warn;
    } cases[] = {
        {"postgres://tw:S3cretPw@db.example.com:5432/tw", STORE_OK, true},
        {"postgresql://tw:S3cretPw@10.0.0.5/tw?sslmode=require", STORE_OK, true},
        {"postgres://tw:S3cretPw@db.example.com/tw?sslmode=verify-ca", STORE_OK, true},
        {"postgres://tw:S3cretPw@127.0.0.1,db.example.com/tw", STORE_OK, true},
        {"postgres://tw:S3cretPw@db.example.com/tw?sslmode=verify-full&sslrootcert=/ca.pem",
         STORE_OK, false},
        {"postgres://tw:S3cretPw@127.0.0.1:5432/tw", STORE_OK, false},
        {"postgres://tw:S3cretPw@localhost/tw", STORE_OK, false},
        {"postgres://tw:S3cretPw@[::1]/tw", STORE_OK, false},
        {"postgresql:///tw?host=/var/run/postgresql&password=S3cretPw", STORE_OK, false},
        {"postgres://tw:S3cretPw@db.example.com/tw?sslmode=nonsense&bogus=1", STORE_INVALID, false},
        {"mysql://tw:S3cretPw@db/tw", STORE_INVALID, false},
        {"sqlite:", STORE_INVALID, false},
        {"sqlite::memory:", STORE_INVALID, false},
        {"sqlite:/tmp/x.db", STORE_OK, false},
        {NULL, STORE_OK, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512] = "";
        log_reset();
        store_rc rc = store_url_check(cases[i].url, capture_log, NULL, err, sizeof(err));
        if (rc != cases[i].rc || (g_log_warns > 0) != cases[i].warn)
            fail_msg("case %zu (%s): rc %s warns %d", i, cases[i].url ? cases[i].url : "NULL",
                     store_rc_name(rc), g_log_warns);
        assert_null(strstr(g_log, "S3cretPw"));
        assert_null(strstr(err, "S3cretPw"));
        if (cases[i].warn)
            assert_non_null(strstr(g_log, "verify-full"));
    }
    /* A failed open (nothing listens on port 1) reports no password either. */
    char err[512] = "";
    store *st = NULL;
    log_reset();
    assert_int_equal(store_open("postgres://tw:S3cretPw@127.0.0.1:1/tw", capture_log, NULL, &st,
                                err, sizeof(err)),
                     STORE_UNAVAILABLE);
    assert_null(st);
    assert_null(strstr(g_log, "S3cretPw"));
    assert_null(strstr(err, "S3cretPw"));
}

static void store_ping_answers_and_pool_reuses_connections(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(store_ping(g_st, err, sizeof(err)), STORE_OK);
    assert_string_equal(store_backend_name(g_st), g_pg ? "postgres" : "sqlite");
    store_conn *a = conn(), *b = conn();
    assert_ptr_not_equal(a, b);
    store_conn_release(a);
    store_conn *again = conn();
    assert_ptr_equal(again, a); /* pooled */
    store_conn_release(again);
    store_conn_release(b);
    store_conn_release(NULL);
    store_close(NULL);
}

/* ---- main
 * ----------------------------------------------------------------------------------------- */

static PGconn *g_admin; /* pg: creates and drops the run's schema */
static char g_schema[64];
static char g_dir[256];

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int prepare_pg(void)
{
    const char *base = getenv("TW_TEST_PG_URL");
    if (base == NULL || base[0] == '\0') {
        const char *skip = getenv("TW_TEST_ALLOW_SKIP_PG");
        if (skip != NULL && strcmp(skip, "1") == 0) {
            fprintf(stderr, "store_pg: SKIPPED (TW_TEST_PG_URL unset, TW_TEST_ALLOW_SKIP_PG=1)\n");
            return 77;
        }
        fprintf(stderr, "store_pg: FAIL: TW_TEST_PG_URL is not set (start one with "
                        "scripts/pg-test-server.sh; TW_TEST_ALLOW_SKIP_PG=1 to skip)\n");
        return 1;
    }
    g_admin = PQconnectdb(base);
    if (PQstatus(g_admin) != CONNECTION_OK) {
        fprintf(stderr, "store_pg: cannot connect to TW_TEST_PG_URL: %s", PQerrorMessage(g_admin));
        return 1;
    }
    PQsetNoticeProcessor(g_admin, quiet_notice, NULL);
    unsigned rnd = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL || fread(&rnd, sizeof(rnd), 1, f) != 1) {
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    snprintf(g_schema, sizeof(g_schema), "tw_store_test_%d_%08x", (int)getpid(), rnd);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", g_schema);
    PGresult *r = PQexec(g_admin, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "store_pg: %s", PQerrorMessage(g_admin));
        PQclear(r);
        return 1;
    }
    PQclear(r);
    snprintf(g_url, sizeof(g_url), "%s%coptions=-csearch_path%%3D%s", base,
             strchr(base, '?') ? '&' : '?', g_schema);
    return 0;
}

static void cleanup_pg(void)
{
    char sql[128];
    if (g_admin == NULL)
        return;
    if (g_schema[0] != '\0') {
        snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", g_schema);
        PQclear(PQexec(g_admin, sql));
    }
    PQfinish(g_admin);
}

int main(int argc, char **argv)
{
    int rc;
    char err[512] = "";
    if (argc != 2 || (strcmp(argv[1], "sqlite") != 0 && strcmp(argv[1], "pg") != 0)) {
        fprintf(stderr, "usage: test_store sqlite|pg\n");
        return 2;
    }
    g_pg = strcmp(argv[1], "pg") == 0;
    if (g_pg) {
        rc = prepare_pg();
        if (rc != 0) {
            cleanup_pg();
            return rc;
        }
    } else {
        snprintf(g_dir, sizeof(g_dir), "/tmp/tw-store-test-XXXXXX");
        if (mkdtemp(g_dir) == NULL)
            return 1;
        snprintf(g_url, sizeof(g_url), "sqlite:%s/test.db", g_dir);
    }
    if (store_open(g_url, capture_log, NULL, &g_st, err, sizeof(err)) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        cleanup_pg();
        return 1;
    }

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(store_migrate_from_empty_then_rerun_is_noop),
        cmocka_unit_test_setup(store_migrate_refuses_newer_database, setup),
        cmocka_unit_test_setup(store_user_get_or_create_is_idempotent_with_fresh_salt, setup),
        cmocka_unit_test_setup(store_user_concurrent_first_calls_create_one_user, setup),
        cmocka_unit_test_setup(store_settings_roundtrip_and_default_key_must_be_own, setup),
        cmocka_unit_test_setup(store_user_version_counts_committed_user_transactions, setup),
        cmocka_unit_test_setup(store_user_tx_counts_changes_and_ends_once, setup),
        cmocka_unit_test_setup(store_keys_put_list_get_touch_delete, setup),
        cmocka_unit_test_setup(store_admin_keys_batch_pages_and_rewrap_is_optimistic, setup),
        cmocka_unit_test_setup(store_orders_idempotent_by_client_order_id_and_paged, setup),
        cmocka_unit_test_setup(store_positions_fills_day_trades_roundtrip, setup),
        cmocka_unit_test_setup(store_period_reads_cover_the_period, setup),
        cmocka_unit_test_setup(store_sides_are_two_words, setup),
        cmocka_unit_test_setup(store_risk_limits_roundtrip_and_global_halt, setup),
        cmocka_unit_test_setup(store_isolation_user_b_cannot_read_change_or_delete_user_a_rows,
                               setup),
        cmocka_unit_test_setup(store_hostile_strings_are_stored_and_returned_verbatim, setup),
        cmocka_unit_test_setup(store_audit_chain_appends_in_order_and_is_append_only, setup),
        cmocka_unit_test_setup(store_tx_rollback_leaves_no_half_written_rows, setup),
        cmocka_unit_test_setup(store_audit_hook_runs_after_commits_that_wrote_events, setup),
        cmocka_unit_test_setup(store_risk_state_update_requires_the_users_lock, setup),
        cmocka_unit_test_setup(store_user_lock_serializes_read_modify_write, setup),
        cmocka_unit_test(store_url_check_warns_for_remote_postgres_without_verify_full),
        cmocka_unit_test_setup(store_ping_answers_and_pool_reuses_connections, setup),
    };
    rc = cmocka_run_group_tests_name(g_pg ? "store_pg" : "store_sqlite", tests, NULL, NULL);
    store_close(g_st);
    cleanup_pg();
    if (!g_pg) {
        char path[320];
        static const char *const files[] = {"test.db", "test.db-wal", "test.db-shm"};
        for (size_t i = 0; i < 3; i++) {
            snprintf(path, sizeof(path), "%s/%s", g_dir, files[i]);
            unlink(path);
        }
        rmdir(g_dir);
    }
    return rc;
}
