/* Ledger: marks recorded per user, bounded size with least-recently-touched eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "trading/ledger.h"

static ledger_mark mark_at(int64_t ms)
{
    ledger_mark m = {.at_ms = ms};
    m.acct.equity = ms * 10;
    return m;
}

static void marks_are_per_user_and_latest_wins(void **state)
{
    (void)state;
    ledger *l = ledger_create(8, 1 << 20);
    assert_non_null(l);
    ledger_mark m;
    assert_false(ledger_last_mark(l, 1, &m));
    ledger_mark a = mark_at(100), b = mark_at(200), c = mark_at(300);
    assert_true(ledger_note_mark(l, 1, &a));
    assert_true(ledger_note_mark(l, 2, &b));
    assert_true(ledger_note_mark(l, 1, &c));
    assert_true(ledger_last_mark(l, 1, &m));
    assert_int_equal(m.at_ms, 300);
    assert_int_equal(m.acct.equity, 3000);
    assert_true(ledger_last_mark(l, 2, &m));
    assert_int_equal(m.at_ms, 200);
    assert_false(ledger_last_mark(l, 3, &m));
    assert_int_equal(ledger_size(l), 2);
    ledger_destroy(l);
}

static void full_ledger_evicts_the_least_recently_touched(void **state)
{
    (void)state;
    ledger *l = ledger_create(3, 1 << 20);
    ledger_mark m = mark_at(1);
    for (int64_t u = 1; u <= 3; u++)
        assert_true(ledger_note_mark(l, u, &m));
    assert_true(ledger_note_mark(l, 1, &m)); /* 1 is now the newest: 2 is the oldest */
    assert_true(ledger_note_mark(l, 4, &m));
    assert_int_equal(ledger_size(l), 3);
    assert_false(ledger_last_mark(l, 2, &m));
    assert_true(ledger_last_mark(l, 1, &m));
    assert_true(ledger_last_mark(l, 3, &m));
    assert_true(ledger_last_mark(l, 4, &m));
    ledger_destroy(l);
}

static void many_users_stay_within_the_bound(void **state)
{
    (void)state;
    ledger *l = ledger_create(1000, 1 << 20);
    ledger_mark m;
    /* Ids that collide in a naive modulo hash: multiples of the bucket count. */
    for (int64_t u = 1; u <= 50000; u++) {
        m = mark_at(u);
        assert_true(ledger_note_mark(l, u * 1024, &m));
    }
    assert_int_equal(ledger_size(l), 1000);
    for (int64_t u = 49001; u <= 50000; u++) {
        assert_true(ledger_last_mark(l, u * 1024, &m));
        assert_int_equal(m.at_ms, u);
    }
    assert_false(ledger_last_mark(l, 49000 * 1024, &m));
    ledger_destroy(l);
    ledger_destroy(NULL);
}

static void orders_are_remembered_per_account_most_recent_first(void **state)
{
    (void)state;
    ledger *l = ledger_create(4, 1 << 20);
    ledger_order o, got;
    for (int64_t id = 1; id <= LEDGER_ORDERS + 2; id++) {
        o = (ledger_order){.order_id = id, .filled_qty = id * 10, .status = ORDER_ACCEPTED};
        assert_true(ledger_note_order(l, 7, &o));
    }
    /* The two oldest gave way; the rest are known, each with its last state. */
    assert_false(ledger_known_order(l, 7, 1, &got));
    assert_false(ledger_known_order(l, 7, 2, &got));
    assert_true(ledger_known_order(l, 7, 3, &got));
    assert_int_equal(got.filled_qty, 30);
    o = (ledger_order){.order_id = 3, .filled_qty = 35, .status = ORDER_FILLED};
    assert_true(ledger_note_order(l, 7, &o)); /* an update replaces, never duplicates */
    assert_true(ledger_known_order(l, 7, 3, &got));
    assert_int_equal(got.filled_qty, 35);
    assert_int_equal(got.status, ORDER_FILLED);
    assert_true(ledger_known_order(l, 7, LEDGER_ORDERS + 2, &got));
    assert_false(ledger_known_order(l, 8, 3, &got)); /* another user's account knows nothing */
    assert_false(ledger_known_order(l, 7, 0, &got));
    ledger_destroy(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(marks_are_per_user_and_latest_wins),
        cmocka_unit_test(full_ledger_evicts_the_least_recently_touched),
        cmocka_unit_test(many_users_stay_within_the_bound),
        cmocka_unit_test(orders_are_remembered_per_account_most_recent_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
