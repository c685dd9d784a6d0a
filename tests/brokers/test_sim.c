/*
 * tests/brokers/test_sim.c — the sim paper exchange: fills, resting and partial fills, cancel,
 * positions and cash, buying power, events, determinism, threads, CSV loading, the clock.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brokers/broker.h"

#define T0 INT64_C(1767364200000) /* 2026-01-02 14:30 UTC */

static risk_price px(const char *s)
{
    risk_price v = 0;
    assert_int_equal(risk_price_parse(s, &v), RISK_DEC_OK);
    return v;
}

/* ---- an event recorder ------------------------------------------------------------------- */

typedef struct rec {
    pthread_mutex_t mu;
    int inside; /* listener re-entrance / concurrency detector */
    int overlap;
    size_t n;
    uint64_t last_seq;
    int seq_errors;
    char log[16384];
    size_t loglen;
    brk_sim_event last;
    char last_coid[BRK_ID_MAX];
    char last_acct[BRK_ID_MAX];
} rec;

static void on_event(void *ctx, const brk_sim_event *ev)
{
    rec *r = ctx;
    if (__atomic_fetch_add(&r->inside, 1, __ATOMIC_SEQ_CST) != 0)
        r->overlap++;
    pthread_mutex_lock(&r->mu);
    if (ev->seq <= r->last_seq)
        r->seq_errors++;
    r->last_seq = ev->seq;
    r->n++;
    r->last = *ev;
    snprintf(r->last_coid, sizeof r->last_coid, "%s", ev->client_order_id);
    snprintf(r->last_acct, sizeof r->last_acct, "%s", ev->account_id);
    if (r->loglen < sizeof r->log - 200) {
        int w = snprintf(
            r->log + r->loglen, sizeof r->log - r->loglen,
            "%llu %d %s %s %s %lld@%lld cum=%lld avg=%lld %s t=%lld\n", (unsigned long long)ev->seq,
            (int)ev->kind, ev->account_id, ev->client_order_id, ev->broker_order_id,
            (long long)ev->fill_qty, (long long)ev->fill_price, (long long)ev->cum_qty,
            (long long)ev->avg_price, brk_order_status_name(ev->status), (long long)ev->time_ms);
        if (w > 0)
            r->loglen += (size_t)w;
    }
    pthread_mutex_unlock(&r->mu);
    __atomic_fetch_sub(&r->inside, 1, __ATOMIC_SEQ_CST);
}

typedef struct fx {
    brk_sim_engine *e;
    brk_conn *a;
    brk_conn *b;
    rec r;
} fx;

static fx *fx_new(risk_qty liquidity)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    pthread_mutex_init(&f->r.mu, NULL);
    brk_sim_config cfg = {.liquidity = liquidity};
    assert_int_equal(brk_sim_engine_create(&cfg, &f->e), BRK_OK);
    brk_sim_clock_set(f->e, T0, false);
    brk_sim_set_fill_listener(f->e, on_event, &f->r);
    assert_int_equal(brk_sim_connect(f->e, "user-a", &f->a), BRK_OK);
    assert_int_equal(brk_sim_connect(f->e, "user-b", &f->b), BRK_OK);
    brk_quote q = {.bid = px("99.5"), .ask = px("100.5"), .last = px("100")};
    assert_int_equal(brk_sim_set_quote(f->e, "AAPL", &q, NULL), BRK_OK);
    return f;
}

static void fx_free(fx *f)
{
    brk_conn_destroy(f->a);
    brk_conn_destroy(f->b);
    brk_sim_engine_destroy(f->e);
    pthread_mutex_destroy(&f->r.mu);
    free(f);
}

static brk_order_req req(const char *coid, brk_side side, brk_type type, brk_tif tif, int shares,
                         const char *limit)
{
    brk_order_req r = {.client_order_id = coid,
                       .symbol = "AAPL",
                       .side = side,
                       .type = type,
                       .tif = tif,
                       .qty = RISK_SHARES(shares),
                       .limit_price = limit ? px(limit) : 0};
    return r;
}

static void set_quote(fx *f, const char *bid, const char *ask)
{
    brk_quote q = {.bid = px(bid), .ask = px(ask), .last = px(bid)};
    assert_int_equal(brk_sim_set_quote(f->e, "AAPL", &q, NULL), BRK_OK);
}

/* ---- fills ------------------------------------------------------------------------------------
 */

static void market_buy_fills_at_ask_and_moves_cash_and_position(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    brk_order o;
    brk_order_req r = req("o1", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_DAY, 10, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    assert_string_equal(o.broker_order_id, "sim-000000000001");
    assert_string_equal(o.client_order_id, "o1");
    assert_int_equal(o.status, BRK_ORDER_FILLED);
    assert_int_equal(o.filled_qty, RISK_SHARES(10));
    assert_int_equal(o.filled_avg_price, px("100.5"));
    assert_int_equal(o.created_ms, T0);
    /* event delivered before submit returned (single caller) */
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.last.kind, BRK_SIM_EV_FILL);
    assert_string_equal(f->r.last_acct, "user-a");
    assert_string_equal(f->r.last_coid, "o1");
    assert_int_equal(f->r.last.fill_price, px("100.5"));
    assert_int_equal(f->r.last.fill_qty, RISK_SHARES(10));

    brk_account acc;
    assert_int_equal(brk_account_get(f->a, &acc, NULL), BRK_OK);
    assert_int_equal(acc.cash, RISK_USD(100000) - RISK_USD(1005));
    assert_int_equal(acc.type, BRK_ACCOUNT_CASH);
    assert_int_equal(acc.multiplier, 1);
    /* equity marks at last (100): 98995 + 1000 */
    assert_int_equal(acc.equity, RISK_USD(99995));
    brk_position_list pl;
    assert_int_equal(brk_positions(f->a, &pl, NULL), BRK_OK);
    assert_int_equal(pl.n, 1);
    assert_string_equal(pl.items[0].symbol, "AAPL");
    assert_int_equal(pl.items[0].qty, RISK_SHARES(10));
    assert_int_equal(pl.items[0].avg_entry_price, px("100.5"));
    assert_int_equal(pl.items[0].cost_basis, RISK_USD(1005));
    assert_int_equal(pl.items[0].unrealized_pl, -RISK_USD(5));
    brk_position_list_free(&pl);
    /* the other user saw nothing */
    assert_int_equal(brk_account_get(f->b, &acc, NULL), BRK_OK);
    assert_int_equal(acc.cash, RISK_USD(100000));
    assert_int_equal(brk_positions(f->b, &pl, NULL), BRK_OK);
    assert_int_equal(pl.n, 0);
    fx_free(f);
}

static void market_sell_fills_at_bid_and_closes_position(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    brk_order o;
    brk_order_req r = req("b1", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_DAY, 10, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    r = req("s1", BRK_SIDE_SELL, BRK_TYPE_MARKET, BRK_TIF_DAY, 4, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    assert_int_equal(o.filled_avg_price, px("99.5"));
    brk_position_list pl;
    assert_int_equal(brk_positions(f->a, &pl, NULL), BRK_OK);
    assert_int_equal(pl.items[0].qty, RISK_SHARES(6));
    assert_int_equal(pl.items[0].cost_basis, px("603")); /* 6/10 of 1005 */
    assert_int_equal(pl.items[0].avg_entry_price, px("100.5"));
    brk_position_list_free(&pl);
    r = req("s2", BRK_SIDE_SELL, BRK_TYPE_MARKET, BRK_TIF_DAY, 6, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    assert_int_equal(brk_positions(f->a, &pl, NULL), BRK_OK);
    assert_int_equal(pl.n, 0);
    brk_account acc;
    assert_int_equal(brk_account_get(f->a, &acc, NULL), BRK_OK);
    assert_int_equal(acc.cash, RISK_USD(100000) - RISK_USD(1005) + RISK_USD(995));
    fx_free(f);
}

static void marketable_limit_buy_fills_at_ask_not_at_limit(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    brk_order o;
    brk_order_req r = req("l1", BRK_SIDE_BUY, BRK_TYPE_LIMIT, BRK_TIF_GTC, 5, "101");
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_FILLED);
    assert_int_equal(o.filled_avg_price, px("100.5"));
    assert_int_equal(o.limit_price, px("101"));
    fx_free(f);
}

static void resting_limit_fills_when_a_later_quote_crosses(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    brk_order o;
    brk_order_req r = req("l1", BRK_SIDE_BUY, BRK_TYPE_LIMIT, BRK_TIF_DAY, 5, "99");
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_NEW);
    assert_int_equal(o.filled_qty, 0);
    assert_int_equal(f->r.n, 0);
    brk_order_list ol;
    assert_int_equal(brk_list_open(f->a, &ol, NULL), BRK_OK);
    assert_int_equal(ol.n, 1);
    assert_string_equal(ol.items[0].client_order_id, "l1");
    brk_order_list_free(&ol);

    set_quote(f, "99.1", "99.2"); /* still above the limit */
    assert_int_equal(f->r.n, 0);
    brk_sim_clock_advance(f->e, 60000);
    set_quote(f, "98.9", "98.95");
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.last.fill_price, px("98.95"));
    assert_int_equal(f->r.last.status, BRK_ORDER_FILLED);
    assert_int_equal(f->r.last.time_ms, T0 + 60000);
    assert_int_equal(brk_get_by_client_order_id(f->a, "l1", &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_FILLED);
    assert_int_equal(o.updated_ms, T0 + 60000);
    assert_int_equal(brk_list_open(f->a, &ol, NULL), BRK_OK);
    assert_int_equal(ol.n, 0);
    fx_free(f);
}

static void resting_limit_sell_fills_when_bid_rises(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    brk_order o;
    brk_order_req r = req("b", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_DAY, 5, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    r = req("s", BRK_SIDE_SELL, BRK_TYPE_LIMIT, BRK_TIF_GTC, 5, "102");
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_NEW);
    set_quote(f, "102.25", "102.5");
    assert_int_equal(brk_get_by_client_order_id(f->a, "s", &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_FILLED);
    assert_int_equal(o.filled_avg_price, px("102.25"));
    fx_free(f);
}

static void large_order_fills_partially_per_quote_step(void **state)
{
    (void)state;
    fx *f = fx_new(RISK_SHARES(100));
    brk_order o;
    brk_order_req r = req("big", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_DAY, 250, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_PARTIALLY_FILLED);
    assert_int_equal(o.filled_qty, RISK_SHARES(100));
    set_quote(f, "100.5", "101.5");
    assert_int_equal(f->r.n, 2);
    assert_int_equal(f->r.last.fill_qty, RISK_SHARES(100));
    assert_int_equal(f->r.last.cum_qty, RISK_SHARES(200));
    assert_int_equal(f->r.last.status, BRK_ORDER_PARTIALLY_FILLED);
    set_quote(f, "101.5", "102.5");
    assert_int_equal(f->r.n, 3);
    assert_int_equal(f->r.last.fill_qty, RISK_SHARES(50));
    assert_int_equal(f->r.last.status, BRK_ORDER_FILLED);
    /* (100*100.5 + 100*101.5 + 50*102.5) / 250 = 101.3 */
    assert_int_equal(f->r.last.avg_price, px("101.3"));
    set_quote(f, "101.5", "102.5");
    assert_int_equal(f->r.n, 3); /* nothing left to fill */
    brk_account acc;
    assert_int_equal(brk_account_get(f->a, &acc, NULL), BRK_OK);
    assert_int_equal(acc.cash, RISK_USD(100000) - px("25325"));
    fx_free(f);
}

static void ioc_cancels_what_one_step_did_not_fill(void **state)
{
    (void)state;
    fx *f = fx_new(RISK_SHARES(100));
    brk_order o;
    brk_order_req r = req("ioc", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_IOC, 150, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_CANCELED);
    assert_int_equal(o.filled_qty, RISK_SHARES(100));
    assert_int_equal(f->r.n, 2);
    assert_int_equal(f->r.last.kind, BRK_SIM_EV_CANCELED);
    r = req("ioc2", BRK_SIDE_BUY, BRK_TYPE_LIMIT, BRK_TIF_IOC, 1, "50");
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_CANCELED);
    assert_int_equal(o.filled_qty, 0);
    fx_free(f);
}

static void fok_is_all_or_nothing(void **state)
{
    (void)state;
    fx *f = fx_new(RISK_SHARES(100));
    brk_order o;
    brk_order_req r = req("fok1", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_FOK, 150, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_CANCELED);
    assert_int_equal(o.filled_qty, 0);
    r = req("fok2", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_FOK, 100, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_FILLED);
    fx_free(f);
}

/* ---- cancel ---------------------------------------------------------------------------------- */

static void cancel_resting_order_then_it_never_fills(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    brk_order o;
    brk_err err = {0};
    brk_order_req r = req("c1", BRK_SIDE_BUY, BRK_TYPE_LIMIT, BRK_TIF_GTC, 5, "90");
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    /* another user cannot cancel it, nor learn that it exists */
    assert_int_equal(brk_cancel(f->b, o.broker_order_id, &err), BRK_NOT_FOUND);
    assert_int_equal(brk_cancel(f->a, o.broker_order_id, &err), BRK_OK);
    assert_int_equal(f->r.last.kind, BRK_SIM_EV_CANCELED);
    assert_int_equal(f->r.last.status, BRK_ORDER_CANCELED);
    set_quote(f, "80", "81");
    brk_order g;
    assert_int_equal(brk_get_by_client_order_id(f->a, "c1", &g, NULL), BRK_OK);
    assert_int_equal(g.status, BRK_ORDER_CANCELED);
    assert_int_equal(g.filled_qty, 0);
    assert_int_equal(brk_cancel(f->a, o.broker_order_id, &err), BRK_REJECTED);
    assert_non_null(err.message);
    assert_int_equal(brk_cancel(f->a, "sim-999", &err), BRK_NOT_FOUND);
    assert_int_equal(brk_cancel(f->a, "bad id/..", &err), BRK_INVALID);
    brk_err_clear(&err);
    fx_free(f);
}

/* ---- refusals ----------------------------------------------------------------------------------
 */

static void refusals_are_rejected_and_not_stored(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    brk_order o;
    brk_err err = {0};
    brk_order_req r = req("x1", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_DAY, 2000, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, &err), BRK_REJECTED); /* 201,000 > 100,000 */
    assert_string_equal(err.message, "insufficient buying power");
    assert_int_equal(brk_get_by_client_order_id(f->a, "x1", &o, NULL), BRK_NOT_FOUND);
    r = req("x2", BRK_SIDE_SELL, BRK_TYPE_MARKET, BRK_TIF_DAY, 1, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, &err), BRK_REJECTED); /* cash account: no short */
    r = req("x3", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_DAY, 1, NULL);
    r.symbol = "NOPE";
    assert_int_equal(brk_submit(f->a, &r, &o, &err), BRK_REJECTED);
    r = req("x4", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_OPG, 1, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, &err), BRK_INVALID);
    r = req("dup", BRK_SIDE_BUY, BRK_TYPE_LIMIT, BRK_TIF_DAY, 1, "1");
    assert_int_equal(brk_submit(f->a, &r, &o, &err), BRK_OK);
    assert_int_equal(brk_submit(f->a, &r, &o, &err), BRK_REJECTED);
    /* the same client order id is independent per account */
    assert_int_equal(brk_submit(f->b, &r, &o, &err), BRK_OK);
    /* open buys reserve buying power: 99,000 reserved at the limit leaves < 1,005 */
    r = req("res", BRK_SIDE_BUY, BRK_TYPE_LIMIT, BRK_TIF_DAY, 990, "100");
    set_quote(f, "100.5", "101");
    assert_int_equal(brk_submit(f->a, &r, &o, &err), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_NEW);
    r = req("res2", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_DAY, 10, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, &err), BRK_REJECTED);
    brk_err_clear(&err);
    fx_free(f);
}

static void margin_account_may_short_cash_account_may_not(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    assert_int_equal(brk_sim_account_set(f->e, "user-b", RISK_USD(50000), BRK_ACCOUNT_MARGIN),
                     BRK_OK);
    brk_order o;
    brk_order_req r = req("sh", BRK_SIDE_SELL, BRK_TYPE_MARKET, BRK_TIF_DAY, 10, NULL);
    assert_int_equal(brk_submit(f->b, &r, &o, NULL), BRK_OK);
    brk_position_list pl;
    assert_int_equal(brk_positions(f->b, &pl, NULL), BRK_OK);
    assert_int_equal(pl.items[0].qty, -RISK_SHARES(10));
    assert_int_equal(pl.items[0].cost_basis, -RISK_USD(995));
    brk_position_list_free(&pl);
    brk_account acc;
    assert_int_equal(brk_account_get(f->b, &acc, NULL), BRK_OK);
    assert_int_equal(acc.type, BRK_ACCOUNT_MARGIN);
    assert_int_equal(acc.multiplier, 2);
    assert_int_equal(acc.cash, RISK_USD(50995));
    assert_int_equal(acc.equity, RISK_USD(49995)); /* 50995 - 10*100 */
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_REJECTED);
    fx_free(f);
}

/* ---- clock, day roll, reset ---------------------------------------------------------------- */

static void clock_is_settable_advanceable_and_resettable(void **state)
{
    (void)state;
    brk_sim_engine *e = NULL;
    assert_int_equal(brk_sim_engine_create(NULL, &e), BRK_OK);
    int64_t real = brk_sim_now(e);
    assert_true(real > INT64_C(1700000000000));
    brk_sim_clock_set(e, T0, false);
    assert_int_equal(brk_sim_now(e), T0);
    assert_int_equal(brk_sim_clock_fn(e), T0);
    brk_sim_clock_advance(e, 86400000);
    assert_int_equal(brk_sim_now(e), T0 + 86400000);
    brk_sim_clock_set(e, T0, true); /* running from T0 */
    int64_t t = brk_sim_now(e);
    assert_true(t >= T0 && t < T0 + 5000);
    brk_sim_clock_reset(e);
    assert_true(brk_sim_now(e) >= real);
    brk_sim_engine_destroy(e);
}

static int64_t fake_now = T0;
static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static void injected_base_clock_drives_the_engine(void **state)
{
    (void)state;
    brk_sim_config cfg = {.clock = fake_clock};
    brk_sim_engine *e = NULL;
    assert_int_equal(brk_sim_engine_create(&cfg, &e), BRK_OK);
    assert_int_equal(brk_sim_now(e), T0);
    fake_now = T0 + 42;
    assert_int_equal(brk_sim_now(e), T0 + 42);
    brk_sim_clock_advance(e, 1000);
    assert_int_equal(brk_sim_now(e), T0 + 1042);
    brk_sim_engine_destroy(e);
}

static void roll_day_expires_day_orders_only_and_records_last_equity(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    brk_order o;
    brk_order_req r = req("d", BRK_SIDE_BUY, BRK_TYPE_LIMIT, BRK_TIF_DAY, 1, "50");
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    r = req("g", BRK_SIDE_BUY, BRK_TYPE_LIMIT, BRK_TIF_GTC, 1, "50");
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    r = req("m", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_DAY, 10, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    brk_sim_roll_day(f->e);
    assert_int_equal(f->r.last.kind, BRK_SIM_EV_EXPIRED);
    assert_string_equal(f->r.last_coid, "d");
    assert_int_equal(brk_get_by_client_order_id(f->a, "d", &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_EXPIRED);
    assert_int_equal(brk_get_by_client_order_id(f->a, "g", &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_NEW);
    brk_account acc;
    assert_int_equal(brk_account_get(f->a, &acc, NULL), BRK_OK);
    assert_int_equal(acc.last_equity, RISK_USD(99995));
    fx_free(f);
}

static void account_reset_cancels_and_clears(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    brk_order o;
    brk_order_req r = req("m", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_DAY, 10, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    r = req("g", BRK_SIDE_BUY, BRK_TYPE_LIMIT, BRK_TIF_GTC, 1, "50");
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    size_t before = f->r.n;
    assert_int_equal(brk_sim_account_reset(f->e, "user-a", RISK_USD(20000), BRK_ACCOUNT_MARGIN),
                     BRK_OK);
    assert_int_equal(f->r.n, before + 1);
    assert_int_equal(f->r.last.kind, BRK_SIM_EV_CANCELED);
    brk_account acc;
    assert_int_equal(brk_account_get(f->a, &acc, NULL), BRK_OK);
    assert_int_equal(acc.cash, RISK_USD(20000));
    assert_int_equal(acc.equity, RISK_USD(20000));
    assert_int_equal(acc.type, BRK_ACCOUNT_MARGIN);
    assert_int_equal(brk_get_by_client_order_id(f->a, "m", &o, NULL), BRK_NOT_FOUND);
    brk_position_list pl;
    assert_int_equal(brk_positions(f->a, &pl, NULL), BRK_OK);
    assert_int_equal(pl.n, 0);
    assert_int_equal(brk_sim_account_reset(f->e, "", RISK_USD(1), BRK_ACCOUNT_CASH), BRK_INVALID);
    assert_int_equal(brk_sim_account_set(f->e, "x", RISK_USD(1), (brk_account_type)9), BRK_INVALID);
    fx_free(f);
}

/* ---- determinism -------------------------------------------------------------------------------
 */

static void scenario(char *out, size_t cap)
{
    fx *f = fx_new(RISK_SHARES(30));
    brk_order o;
    static const char *const asks[] = {"100.5", "100.25", "99.75", "99", "101", "98.5"};
    for (int i = 0; i < 6; i++) {
        char coid[16];
        snprintf(coid, sizeof coid, "o%d", i);
        brk_order_req r =
            req(coid, i % 2 ? BRK_SIDE_BUY : BRK_SIDE_BUY, i % 3 ? BRK_TYPE_LIMIT : BRK_TYPE_MARKET,
                BRK_TIF_DAY, 40 + i * 7, i % 3 ? "99.5" : NULL);
        assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
        brk_sim_clock_advance(f->e, 1000);
        char bid[16];
        snprintf(bid, sizeof bid, "%d", 97 + i % 2);
        set_quote(f, bid, asks[i]);
    }
    brk_sim_roll_day(f->e);
    snprintf(out, cap, "%s", f->r.log);
    fx_free(f);
}

static void same_calls_give_identical_event_streams(void **state)
{
    (void)state;
    static char a[16384], b[16384];
    scenario(a, sizeof a);
    scenario(b, sizeof b);
    assert_true(strlen(a) > 200); /* fills, partials and expiries happened */
    assert_non_null(strstr(a, "partially_filled"));
    assert_non_null(strstr(a, "expired"));
    assert_string_equal(a, b);
}

/* ---- threads ------------------------------------------------------------------------------------
 */

#define N_THREADS 8
#define N_PER_THREAD 50

typedef struct worker {
    brk_sim_engine *e;
    int idx;
    int ok;
} worker;

static void *submit_many(void *p)
{
    worker *w = p;
    brk_conn *c = NULL;
    if (brk_sim_connect(w->e, "shared", &c) != BRK_OK)
        return NULL;
    for (int i = 0; i < N_PER_THREAD; i++) {
        char coid[32];
        snprintf(coid, sizeof coid, "t%d-%d", w->idx, i);
        brk_order_req r = {.client_order_id = coid,
                           .symbol = "AAPL",
                           .side = BRK_SIDE_BUY,
                           .type = BRK_TYPE_MARKET,
                           .tif = BRK_TIF_DAY,
                           .qty = RISK_SHARES(1)};
        brk_order o;
        if (brk_submit(c, &r, &o, NULL) == BRK_OK && o.status == BRK_ORDER_FILLED)
            w->ok++;
    }
    brk_conn_destroy(c);
    return NULL;
}

static void concurrent_submits_all_fill_once_and_events_are_serialised(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    pthread_t th[N_THREADS];
    worker w[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker){.e = f->e, .idx = i};
        assert_int_equal(pthread_create(&th[i], NULL, submit_many, &w[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
    }
    assert_int_equal(ok, N_THREADS * N_PER_THREAD);
    assert_int_equal(f->r.n, N_THREADS * N_PER_THREAD);
    assert_int_equal(f->r.overlap, 0);
    assert_int_equal(f->r.seq_errors, 0);
    brk_conn *c = NULL;
    assert_int_equal(brk_sim_connect(f->e, "shared", &c), BRK_OK);
    brk_position_list pl;
    assert_int_equal(brk_positions(c, &pl, NULL), BRK_OK);
    assert_int_equal(pl.items[0].qty, RISK_SHARES(N_THREADS * N_PER_THREAD));
    brk_position_list_free(&pl);
    brk_account acc;
    assert_int_equal(brk_account_get(c, &acc, NULL), BRK_OK);
    assert_int_equal(acc.cash, RISK_USD(100000) - (int64_t)N_THREADS * N_PER_THREAD * px("100.5"));
    brk_conn_destroy(c);
    fx_free(f);
}

/* Delivery is per account: while one account's listener call is slow (a database
 * transaction, say), another account's submit still gets its own events delivered before it
 * returns, instead of leaving them queued behind the slow one (issue 18: one caller used to
 * apply everyone's fills). */
typedef struct slow_rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool a_inside, release, b_seen;
} slow_rec;

static void slow_listener(void *ctx, const brk_sim_event *ev)
{
    slow_rec *r = ctx;
    pthread_mutex_lock(&r->mu);
    if (strcmp(ev->account_id, "user-a") == 0) {
        r->a_inside = true;
        pthread_cond_broadcast(&r->cv);
        while (!r->release)
            pthread_cond_wait(&r->cv, &r->mu);
    } else {
        r->b_seen = true;
    }
    pthread_mutex_unlock(&r->mu);
}

static void *submit_for_a(void *p)
{
    fx *f = p;
    brk_order o;
    brk_order_req r = req("slow-a", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_DAY, 1, NULL);
    (void)brk_submit(f->a, &r, &o, NULL);
    return NULL;
}

static void one_accounts_slow_listener_does_not_hold_another_accounts_events(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    slow_rec r = {.a_inside = false};
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    brk_sim_set_fill_listener(f->e, slow_listener, &r);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, submit_for_a, f), 0);
    pthread_mutex_lock(&r.mu);
    while (!r.a_inside)
        pthread_cond_wait(&r.cv, &r.mu);
    pthread_mutex_unlock(&r.mu);
    /* user-a's fill is inside its (blocked) listener call; now user-b submits. */
    brk_order o;
    brk_order_req rq = req("fast-b", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_DAY, 1, NULL);
    assert_int_equal(brk_submit(f->b, &rq, &o, NULL), BRK_OK);
    pthread_mutex_lock(&r.mu);
    bool b_seen = r.b_seen;
    r.release = true;
    pthread_cond_broadcast(&r.cv);
    pthread_mutex_unlock(&r.mu);
    pthread_join(th, NULL);
    assert_true(b_seen);
    brk_sim_set_fill_listener(f->e, NULL, NULL);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
    fx_free(f);
}

/* A listener that calls back into the engine must not deadlock. */
static brk_sim_engine *reentrant_engine;
static int reentrant_calls;
static void reentrant_listener(void *ctx, const brk_sim_event *ev)
{
    (void)ctx;
    (void)ev;
    brk_quote q;
    if (brk_sim_get_quote(reentrant_engine, "AAPL", &q) == BRK_OK)
        reentrant_calls++;
}

static void listener_may_call_back_into_the_engine(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    reentrant_engine = f->e;
    brk_sim_set_fill_listener(f->e, reentrant_listener, NULL);
    brk_order o;
    brk_order_req r = req("re", BRK_SIDE_BUY, BRK_TYPE_MARKET, BRK_TIF_DAY, 1, NULL);
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    assert_int_equal(reentrant_calls, 1);
    fx_free(f);
}

static void engine_may_be_destroyed_before_its_conns(void **state)
{
    (void)state;
    brk_sim_engine *e = NULL;
    brk_conn *c = NULL;
    assert_int_equal(brk_sim_engine_create(NULL, &e), BRK_OK);
    assert_int_equal(brk_sim_connect(e, "u", &c), BRK_OK);
    brk_sim_engine_destroy(e);
    brk_account acc;
    assert_int_equal(brk_account_get(c, &acc, NULL), BRK_OK);
    assert_int_equal(acc.cash, RISK_USD(100000));
    assert_string_equal(brk_conn_backend(c), "sim");
    brk_conn_destroy(c);
    brk_sim_engine_destroy(NULL);
    brk_conn_destroy(NULL);
    assert_int_equal(brk_sim_connect(NULL, "u", &c), BRK_INVALID);
}

/* ---- CSV ---------------------------------------------------------------------------------------
 */

static void csv_loads_with_header_crlf_and_blank_lines_and_matches(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    brk_order o;
    brk_order_req r = req("l", BRK_SIDE_BUY, BRK_TYPE_LIMIT, BRK_TIF_DAY, 1, "95");
    assert_int_equal(brk_submit(f->a, &r, &o, NULL), BRK_OK);
    const char csv[] = "symbol,bid,ask,last\r\nMSFT,400.1,400.2,400.15\r\n\nAAPL,94,94.5,94.25\n";
    size_t n = 0;
    brk_err err = {0};
    assert_int_equal(brk_sim_load_quotes_csv(f->e, csv, strlen(csv), &n, &err), BRK_OK);
    assert_int_equal(n, 2);
    brk_quote q;
    assert_int_equal(brk_sim_get_quote(f->e, "MSFT", &q), BRK_OK);
    assert_int_equal(q.bid, px("400.1"));
    assert_int_equal(q.ask, px("400.2"));
    assert_int_equal(q.last, px("400.15"));
    assert_int_equal(brk_get_by_client_order_id(f->a, "l", &o, NULL), BRK_OK);
    assert_int_equal(o.status, BRK_ORDER_FILLED);
    assert_int_equal(brk_sim_get_quote(f->e, "TSLA", &q), BRK_NOT_FOUND);
    fx_free(f);
}

static void csv_errors_name_the_line_and_change_nothing(void **state)
{
    (void)state;
    static const struct {
        const char *name, *csv, *expect;
    } cases[] = {
        {"too few fields", "MSFT,1,2\n", "line 1"},
        {"too many fields", "MSFT,1,2,3,4\n", "line 1"},
        {"bad decimal", "MSFT,1,2,3\nIBM,1,x,3\n", "line 2: bad ask"},
        {"exponent", "MSFT,1e2,2,3\n", "line 1: bad bid"},
        {"beyond scale", "MSFT,1.0000001,2,3\n", "line 1: bad bid"},
        {"crossed", "MSFT,3,2,2.5\n", "line 1: prices"},
        {"zero", "MSFT,0,2,1\n", "line 1: prices"},
        {"negative", "MSFT,-1,2,1\n", "line 1: prices"},
        {"bad symbol", "MS FT,1,2,1.5\n", "line 1: bad symbol"},
        {"empty symbol", ",1,2,1.5\n", "line 1: bad symbol"},
        {"header not first", "MSFT,1,2,1.5\nsymbol,bid,ask,last\n", "line 2"},
        {"whitespace", "MSFT, 1,2,1.5\n", "line 1: bad bid"},
    };
    fx *f = fx_new(0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        brk_err err = {0};
        size_t n = 99;
        brk_rc rc = brk_sim_load_quotes_csv(f->e, cases[i].csv, strlen(cases[i].csv), &n, &err);
        if (rc != BRK_INVALID || !err.message || !strstr(err.message, cases[i].expect))
            fail_msg("case '%s': rc=%d msg=%s", cases[i].name, rc,
                     err.message ? err.message : "(null)");
        assert_int_equal(n, 0);
        brk_quote q;
        assert_int_equal(brk_sim_get_quote(f->e, "MSFT", &q), BRK_NOT_FOUND);
        brk_err_clear(&err);
    }
    const char nul[] = "MSFT,1,2,1.5\0\n";
    assert_int_equal(brk_sim_load_quotes_csv(f->e, nul, sizeof nul - 1, NULL, NULL), BRK_INVALID);
    fx_free(f);
}

static void last_price_is_the_quote_tables_last(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    risk_price p = 0;
    brk_err err = {0};
    assert_int_equal(brk_last_price(f->a, "AAPL", &p, &err), BRK_OK);
    assert_int_equal(p, px("100"));
    brk_quote q = {.bid = px("12.34"), .ask = px("12.36"), .last = px("12.345678")};
    assert_int_equal(brk_sim_set_quote(f->e, "KO", &q, NULL), BRK_OK);
    assert_int_equal(brk_last_price(f->b, "KO", &p, &err), BRK_OK); /* any account sees it */
    assert_int_equal(p, px("12.345678"));
    p = 9;
    assert_int_equal(brk_last_price(f->a, "NOPE", &p, &err), BRK_NOT_FOUND);
    assert_int_equal(p, 0);
    assert_non_null(err.message);
    assert_int_equal(brk_last_price(f->a, "NO PE", &p, &err), BRK_INVALID);
    brk_err_clear(&err);
    fx_free(f);
}

static void set_quote_refuses_bad_quotes(void **state)
{
    (void)state;
    fx *f = fx_new(0);
    brk_quote bad[] = {
        {.bid = 0, .ask = 1, .last = 1},
        {.bid = 2, .ask = 1, .last = 1},
        {.bid = 1, .ask = 2, .last = 0},
        {.bid = -1, .ask = 2, .last = 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(brk_sim_set_quote(f->e, "X", &bad[i], NULL), BRK_INVALID);
    brk_quote ok = {.bid = 1, .ask = 1, .last = 1};
    assert_int_equal(brk_sim_set_quote(f->e, "bad sym", &ok, NULL), BRK_INVALID);
    assert_int_equal(brk_sim_set_quote(f->e, "X", NULL, NULL), BRK_INVALID);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(market_buy_fills_at_ask_and_moves_cash_and_position),
        cmocka_unit_test(market_sell_fills_at_bid_and_closes_position),
        cmocka_unit_test(marketable_limit_buy_fills_at_ask_not_at_limit),
        cmocka_unit_test(resting_limit_fills_when_a_later_quote_crosses),
        cmocka_unit_test(resting_limit_sell_fills_when_bid_rises),
        cmocka_unit_test(large_order_fills_partially_per_quote_step),
        cmocka_unit_test(ioc_cancels_what_one_step_did_not_fill),
        cmocka_unit_test(fok_is_all_or_nothing),
        cmocka_unit_test(cancel_resting_order_then_it_never_fills),
        cmocka_unit_test(refusals_are_rejected_and_not_stored),
        cmocka_unit_test(margin_account_may_short_cash_account_may_not),
        cmocka_unit_test(clock_is_settable_advanceable_and_resettable),
        cmocka_unit_test(injected_base_clock_drives_the_engine),
        cmocka_unit_test(roll_day_expires_day_orders_only_and_records_last_equity),
        cmocka_unit_test(account_reset_cancels_and_clears),
        cmocka_unit_test(same_calls_give_identical_event_streams),
        cmocka_unit_test(concurrent_submits_all_fill_once_and_events_are_serialised),
        cmocka_unit_test(listener_may_call_back_into_the_engine),
        cmocka_unit_test(one_accounts_slow_listener_does_not_hold_another_accounts_events),
        cmocka_unit_test(engine_may_be_destroyed_before_its_conns),
        cmocka_unit_test(csv_loads_with_header_crlf_and_blank_lines_and_matches),
        cmocka_unit_test(csv_errors_name_the_line_and_change_nothing),
        cmocka_unit_test(set_quote_refuses_bad_quotes),
        cmocka_unit_test(last_price_is_the_quote_tables_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
