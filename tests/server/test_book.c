/* Books (trading/book.h) and the ledger's custody of them: each change mirrors what the store's
 * own read would return afterwards, a book is handed only to the transaction whose version
 * follows it, and the books' memory stays within the ledger's budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
    o.side = STORE_SIDE_BUY;
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
    assert_int_equal(b->nrecent, 1); /* a fill does not change what the rules count */
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

/* The ids of the submissions held, oldest first, are first..last (none missing). */
static void assert_holds(const book *b, int64_t first, int64_t last)
{
    assert_int_equal(b->nrecent, (size_t)(last - first + 1));
    for (size_t i = 0; i < b->nrecent; i++)
        assert_int_equal(book_recent_at(b, i)->id, first + (int64_t)i);
}

/* A user with more orders inside the windows than a book holds (a bot, a frozen sim clock):
 * the book keeps the newest BOOK_RECENT_MAX, enough for any count the rate rule makes, and
 * says from when it holds every one; the rest of the book stays held. It used to stop holding
 * them at 1,024, and every decision then read them all from the store. */
static void a_busy_user_keeps_the_newest_submissions(void **state)
{
    (void)state;
    book *b = book_new(7);
    assert_non_null(b);
    const int64_t over = BOOK_RECENT_MAX + 5;
    for (int64_t i = 1; i <= over; i++) {
        store_order o = order(i, i % 2 ? "AAPL" : "MSFT", "FILLED", 1000 + i);
        book_order_added(b, &o);
    }
    assert_true(b->keep);
    assert_holds(b, 6, over);
    assert_int_equal(b->recent_since_us, 1000 + 5 + 1); /* every one from there on */
    assert_string_equal(book_recent_at(b, 0)->symbol, "MSFT");
    assert_int_equal(book_recent_at(b, 0)->side, STORE_SIDE_BUY);

    /* A broker rejection in the middle of the (wrapped) ring: the others keep their order. */
    store_order mid = order(over - 100, "MSFT", "REJECTED", 1000 + over - 100);
    book_order_changed(b, &mid);
    assert_int_equal(b->nrecent, BOOK_RECENT_MAX - 1);
    assert_int_equal(book_recent_at(b, BOOK_RECENT_MAX - 102)->id, over - 101);
    assert_int_equal(book_recent_at(b, BOOK_RECENT_MAX - 101)->id, over - 99);
    assert_int_equal(book_recent_at(b, b->nrecent - 1)->id, over);

    /* A copy holds the same, oldest first; one for an assessment holds none. */
    book *c = book_clone(b, true);
    assert_non_null(c);
    assert_int_equal(c->nrecent, b->nrecent);
    assert_int_equal(c->recent_head, 0);
    for (size_t i = 0; i < b->nrecent; i++)
        assert_int_equal(book_recent_at(c, i)->id, book_recent_at(b, i)->id);
    store_order next = order(over + 1, "AAPL", "FILLED", 1000 + over + 1);
    book_order_added(c, &next); /* the copy's ring was full: it grows, not wraps */
    assert_int_equal(book_recent_at(c, c->nrecent - 1)->id, over + 1);
    book_free(c);
    book *d = book_clone(b, false);
    assert_non_null(d);
    assert_int_equal(d->nrecent, 0);
    assert_int_equal(d->recent_since_us, INT64_MAX);
    book_free(d);

    store_order open = order(over + 10, "MSFT", "ACCEPTED", 99999);
    book_order_added(b, &open);
    assert_int_equal(b->nopen, 1);
    assert_int_equal(book_recent_at(b, b->nrecent - 1)->id, over + 10);
    book_free(b);
}

/* An active day's orders leave the book as they leave the longest window the limits look
 * back over: a user never reaches the maximum by trading slowly (the book used to keep every
 * order since it was read, and past 1,024 read them from the store on every decision). */
static void submissions_leave_the_book_with_the_window(void **state)
{
    (void)state;
    book *b = book_new(7);
    assert_non_null(b);
    b->recent_since_us = 0;
    b->recent_window_us = 5000000; /* a 5 s duplicate window */
    for (int64_t i = 1; i <= 3 * BOOK_RECENT_MAX; i++) {
        store_order o = order(i, "AAPL", "FILLED", i * 1000000); /* one a second */
        book_order_added(b, &o);
    }
    int64_t last = 3 * BOOK_RECENT_MAX;
    assert_holds(b, last - 5, last); /* the last 5 s and the one at its start */
    assert_int_equal(b->recent_since_us, (last - 5) * 1000000);
    assert_true(b->cap_recent <= 16);
    assert_true(b->keep);

    /* Read from the store: the newest first, one more than it holds when there are more. */
    store_order_brief *rows = calloc(BOOK_RECENT_MAX + 1, sizeof(*rows));
    assert_non_null(rows);
    for (size_t i = 0; i <= BOOK_RECENT_MAX; i++) {
        rows[i].id = 10000 - (int64_t)i;
        rows[i].created_at_us = 50000 - (int64_t)i;
        snprintf(rows[i].symbol, sizeof(rows[i].symbol), "IBM");
        rows[i].side = STORE_SIDE_SELL;
    }
    book_set_recent(b, rows, BOOK_RECENT_MAX + 1, 0, 0);
    assert_holds(b, 10000 - BOOK_RECENT_MAX + 1, 10000);
    assert_int_equal(b->recent_since_us, 50000 - BOOK_RECENT_MAX + 1);
    assert_int_equal(book_recent_at(b, 0)->side, STORE_SIDE_SELL);
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

    store_fill f = {
        .order_id = 1, .symbol = "AAPL", .side = STORE_SIDE_BUY, .qty = 1, .time_us = 2000};
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
        cmocka_unit_test(a_busy_user_keeps_the_newest_submissions),
        cmocka_unit_test(submissions_leave_the_book_with_the_window),
        cmocka_unit_test(positions_stay_sorted_and_fills_stay_in_their_day),
        cmocka_unit_test(a_book_goes_only_to_the_next_version),
        cmocka_unit_test(books_stay_within_the_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
