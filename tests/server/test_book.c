/* Books (trading/book.h) and the ledger's custody of them: each change mirrors what the store's
 * own read would return afterwards, a book is handed only to the transaction whose version
 * follows it, and the books' memory stays within the ledger's budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "trading/book.h"
#include "trading/ledger.h"

static store_order order(int64_t id, const char *symbol, const char *status, int64_t at_us)
{
    store_order o;
    memset(&o, 0, sizeof(o));
    o.id = id;
    snprintf(o.symbol, sizeof(o.symbol), "%s", symbol);
    snprintf(o.side, sizeof(o.side), "buy");
    snprintf(o.status, sizeof(o.status), "%s", status);
    o.qty = 1000000000;
    o.created_at_us = at_us;
    return o;
}

static void orders_enter_and_leave_the_open_and_recent_lists(void **state)
{
    (void)state;
    book *b = book_new(7);
    assert_non_null(b);
    b->recent_since_us = 1000;
    store_order a = order(1, "AAPL", "PENDING_SUBMIT", 2000);
    store_order r = order(2, "MSFT", "REJECTED", 2100);
    store_order old = order(3, "IBM", "ACCEPTED", 500); /* before the window the book holds */
    book_order_added(b, &a);
    book_order_added(b, &r);
    book_order_added(b, &old);
    assert_int_equal(b->modeled, 3);
    /* Rejected orders are never open nor submissions; the old one is open, not recent. */
    assert_int_equal(b->nopen, 2);
    assert_int_equal(b->open[0].id, 1);
    assert_int_equal(b->open[1].id, 3);
    assert_int_equal(b->nrecent, 1);
    assert_int_equal(b->recent[0].id, 1);

    a.filled_qty = 400000000;
    snprintf(a.status, sizeof(a.status), "PARTIALLY_FILLED");
    book_order_changed(b, &a);
    assert_int_equal(b->nopen, 2);
    assert_int_equal(b->open[0].filled_qty, 400000000);
    assert_string_equal(b->recent[0].status, "PARTIALLY_FILLED");
    snprintf(a.status, sizeof(a.status), "FILLED");
    book_order_changed(b, &a);
    assert_int_equal(b->nopen, 1); /* closed: no longer open, still a recent submission */
    assert_int_equal(b->open[0].id, 3);
    assert_int_equal(b->nrecent, 1);
    /* A broker rejection after admission stops it counting as a submission. */
    store_order c = order(4, "NVDA", "ACCEPTED", 3000);
    book_order_added(b, &c);
    snprintf(c.status, sizeof(c.status), "REJECTED");
    book_order_changed(b, &c);
    assert_int_equal(b->nrecent, 1);
    assert_int_equal(b->nopen, 1);
    assert_true(b->keep);
    /* An order it never saw turning up open: the book cannot be exact any more. */
    store_order ghost = order(99, "GME", "ACCEPTED", 3100);
    book_order_changed(b, &ghost);
    assert_false(b->keep);
    book_free(b);
}

/* A rejection the broker later contradicts (the fill of a submit whose outcome was unknown):
 * the order counts as a submission again, which a book that removed it cannot say exactly. */
static void a_rejected_order_reported_filled_drops_the_book(void **state)
{
    (void)state;
    book *b = book_new(7);
    assert_non_null(b);
    b->recent_since_us = 1000;
    store_order a = order(1, "AAPL", "PENDING_SUBMIT", 2000);
    book_order_added(b, &a);
    snprintf(a.status, sizeof(a.status), "REJECTED");
    book_order_changed(b, &a);
    assert_int_equal(b->nrecent, 0);
    assert_true(b->keep);
    snprintf(a.status, sizeof(a.status), "FILLED");
    a.filled_qty = a.qty;
    book_order_changed(b, &a);
    assert_false(b->keep);
    book_free(b);
}

/* A user with more orders inside the windows than a book holds: the book stops holding those
 * (each decision reads them from the store) but keeps the rest, so its other reads stay saved
 * (a user crossing the line used to lose the whole book on every transaction). */
static void too_many_recent_orders_drop_only_that_part(void **state)
{
    (void)state;
    book *b = book_new(7);
    assert_non_null(b);
    for (int64_t i = 1; i <= BOOK_RECENT_MAX + 5; i++) {
        store_order o = order(i, "AAPL", "FILLED", 1000 + i);
        book_order_added(b, &o);
    }
    assert_true(b->recent_cut);
    assert_int_equal(b->nrecent, 0);
    assert_true(b->keep);
    store_order open = order(BOOK_RECENT_MAX + 10, "MSFT", "ACCEPTED", 99999);
    book_order_added(b, &open);
    assert_int_equal(b->nopen, 1);
    assert_int_equal(b->nrecent, 0);
    book_free(b);
}

static void positions_stay_sorted_and_fills_stay_in_their_day(void **state)
{
    (void)state;
    book *b = book_new(7);
    assert_non_null(b);
    b->day_lo_us = 1000;
    b->day_hi_us = 9000;
    store_position m = {.symbol = "MSFT", .qty = 5}, a = {.symbol = "AAPL", .qty = 2},
                   z = {.symbol = "ZM", .qty = 1};
    book_position_put(b, &m);
    book_position_put(b, &z);
    book_position_put(b, &a);
    assert_int_equal(b->npos, 3);
    assert_string_equal(b->pos[0].symbol, "AAPL"); /* by symbol, as the store lists them */
    assert_string_equal(b->pos[1].symbol, "MSFT");
    assert_string_equal(b->pos[2].symbol, "ZM");
    m.qty = 0;
    book_position_put(b, &m); /* replaced, not added: a flat position keeps its row */
    assert_int_equal(b->npos, 3);
    assert_int_equal(book_position(b, "MSFT")->qty, 0);
    assert_null(book_position(b, "TSLA"));

    store_fill f = {.order_id = 1, .symbol = "AAPL", .side = "buy", .qty = 1, .time_us = 2000};
    book_fill_added(b, &f);
    f.time_us = 9500; /* the next trading day's: not today's fills */
    book_fill_added(b, &f);
    assert_int_equal(b->nfills, 1);
    assert_true(b->keep);
    f.time_us = 1500; /* before the last one: the book would be out of execution order */
    book_fill_added(b, &f);
    assert_false(b->keep);
    assert_int_equal(b->modeled, 7);
    book_free(b);
}

static book *book_at(int64_t user, int64_t version)
{
    book *b = book_new(user);
    assert_non_null(b);
    b->version = version;
    return b;
}

static void a_book_goes_only_to_the_next_version(void **state)
{
    (void)state;
    ledger *l = ledger_create(8, 1 << 20);
    assert_non_null(l);
    ledger_book_put(l, book_at(1, 10));
    /* Someone committed version 11 elsewhere: this transaction is at 12, wants 11. */
    assert_null(ledger_book_take(l, 1, 11));
    /* The stale book was dropped, not kept for later. */
    assert_null(ledger_book_take(l, 1, 10));
    ledger_book_put(l, book_at(1, 12));
    book *b = ledger_book_take(l, 1, 12);
    assert_non_null(b);
    assert_int_equal(b->version, 12);
    assert_null(ledger_book_take(l, 1, 12)); /* taken: one transaction at a time */
    /* A newer book already back wins over an older one arriving late. */
    ledger_book_put(l, book_at(1, 14));
    b->version = 13;
    ledger_book_put(l, b);
    b = ledger_book_take(l, 1, 14);
    assert_non_null(b);
    book_free(b);
    ledger_book_stats_t st;
    ledger_book_stats(l, &st);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 3);
    ledger_destroy(l);
}

static void books_stay_within_the_budget(void **state)
{
    (void)state;
    book *probe = book_new(0);
    assert_non_null(probe);
    size_t one = book_bytes(probe);
    book_free(probe);
    ledger *l = ledger_create(100, 3 * one);
    assert_non_null(l);
    for (int64_t u = 1; u <= 5; u++)
        ledger_book_put(l, book_at(u, 1));
    ledger_book_stats_t st;
    ledger_book_stats(l, &st);
    assert_int_equal(st.books, 3);
    assert_true(st.bytes <= 3 * one);
    /* The least recently touched lost theirs. */
    assert_null(ledger_book_take(l, 1, 1));
    assert_null(ledger_book_take(l, 2, 1));
    book *b = ledger_book_take(l, 5, 1);
    assert_non_null(b);
    book_free(b);
    /* A book bigger than the whole budget is not kept at all. */
    book *big = book_at(9, 1);
    store_position p = {.symbol = "A"};
    for (int i = 0; i < 64; i++) {
        snprintf(p.symbol, sizeof(p.symbol), "S%02d", i);
        book_position_put(big, &p);
    }
    ledger_book_put(l, big);
    assert_null(ledger_book_take(l, 9, 1));
    ledger_destroy(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(orders_enter_and_leave_the_open_and_recent_lists),
        cmocka_unit_test(a_rejected_order_reported_filled_drops_the_book),
        cmocka_unit_test(too_many_recent_orders_drop_only_that_part),
        cmocka_unit_test(positions_stay_sorted_and_fills_stay_in_their_day),
        cmocka_unit_test(a_book_goes_only_to_the_next_version),
        cmocka_unit_test(books_stay_within_the_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
