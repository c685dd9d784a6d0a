/*
 * tests/risk/test_pdt.c — the pattern-day-trader guard: FINRA 4210 interpretation /02
 * counting examples (change of direction, partial fills, overnight positions, shorts, flips,
 * pending orders), and the rule's decisions at the equity floor, across weekends, holidays
 * and the New York day boundary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "fixture.h"

#define B RISK_BUY
#define S RISK_SELL

typedef struct exec {
    risk_side side;
    int shares;
    uint64_t order_id; /* 0 = a new order id per execution */
} exec;

typedef struct count_case {
    const char *name;
    int overnight; /* shares held at the previous close (negative = short) */
    exec ex[8];
    int n;
    int pending_side; /* 0 none, else one pending order of this side */
    int pending_shares;
    int want;
} count_case;

static const count_case count_cases[] = {
    {"FINRA: buy 250, buy 250, sell 500 = 1",
     0,
     {{B, 250, 0}, {B, 250, 0}, {S, 500, 0}},
     3,
     0,
     0,
     1},
    {"FINRA: buy, sell, buy, sell = 2",
     0,
     {{B, 100, 0}, {S, 100, 0}, {B, 100, 0}, {S, 100, 0}},
     4,
     0,
     0,
     2},
    {"FINRA: one buy then several sells = 1",
     0,
     {{B, 100, 0}, {S, 50, 0}, {S, 30, 0}, {S, 20, 0}},
     4,
     0,
     0,
     1},
    {"partial fills of one buy and one sell order = 1",
     0,
     {{B, 30, 1}, {B, 30, 1}, {B, 40, 1}, {S, 60, 2}, {S, 40, 2}},
     5,
     0,
     0,
     1},
    {"interleaved partial fills of two orders = 1",
     0,
     {{B, 50, 1}, {S, 30, 2}, {B, 50, 1}, {S, 70, 2}},
     4,
     0,
     0,
     1},
    {"several buys then several sells = 1",
     0,
     {{B, 10, 0}, {B, 10, 0}, {B, 10, 0}, {S, 10, 0}, {S, 20, 0}},
     5,
     0,
     0,
     1},
    {"overnight long sold, then bought back = 0", 100, {{S, 100, 0}, {B, 100, 0}}, 2, 0, 0, 0},
    {"overnight long sold, bought, sold again = 1",
     100,
     {{S, 100, 0}, {B, 100, 0}, {S, 100, 0}},
     3,
     0,
     0,
     1},
    {"overnight long, buy more, sell all = 1 (same-day lot closed first)",
     100,
     {{B, 100, 0}, {S, 200, 0}},
     2,
     0,
     0,
     1},
    {"overnight long partly sold only = 0", 100, {{S, 40, 0}, {S, 60, 0}}, 2, 0, 0, 0},
    {"short then cover = 1", 0, {{S, 100, 0}, {B, 100, 0}}, 2, 0, 0, 1},
    {"overnight short covered, then shorted again = 0",
     -100,
     {{B, 100, 0}, {S, 100, 0}},
     2,
     0,
     0,
     0},
    {"flip long to short and cover = 2", 0, {{B, 100, 0}, {S, 200, 0}, {B, 100, 0}}, 3, 0, 0, 2},
    {"buys only = 0", 0, {{B, 100, 0}, {B, 100, 0}}, 2, 0, 0, 0},
    {"pending exit of a same-day buy is a potential day trade", 0, {{B, 100, 0}}, 1, S, 100, 1},
    {"pending exit of an overnight position is not", 100, {{S, 0, 0}}, 0, S, 100, 0},
    {"pending add in the same direction is not", 0, {{B, 100, 0}}, 1, B, 100, 0},
    {"round trip then a pending re-entry = 1", 0, {{B, 100, 0}, {S, 100, 0}}, 2, B, 100, 1},
};

static void test_finra_counting(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(count_cases) / sizeof(count_cases[0]); i++) {
        const count_case *c = &count_cases[i];
        fx *f = calloc(1, sizeof(*f));
        risk_assessment a;
        int net = c->overnight;
        assert_non_null(f);
        fx_init(f, NULL);
        for (int k = 0; k < c->n; k++) {
            uint64_t oid = c->ex[k].order_id ? c->ex[k].order_id : 100 + (uint64_t)k;
            fx_fill(f, "MSFT", c->ex[k].side, RISK_SHARES(c->ex[k].shares), 120 - k, oid);
            net += c->ex[k].side == B ? c->ex[k].shares : -c->ex[k].shares;
        }
        if (net != 0) {
            fx_pos(f, "MSFT", RISK_SHARES(net), RISK_USD(100));
        }
        if (c->pending_side != 0) {
            fx_open(f, "MSFT", (risk_side)c->pending_side, RISK_SHARES(c->pending_shares),
                    RISK_USD(100));
        }
        assert_int_equal(risk_assess(&f->s, &f->l, f->now_ms, &a), RISK_OK);
        if (a.day_trades_in_window != c->want) {
            fail_msg("%s: counted %d, want %d", c->name, a.day_trades_in_window, c->want);
        }
        free(f);
    }
}

/* A PDT-subject account: margin, previous close $20,000; other limits off to isolate. */
static void pdt_base(fx *f)
{
    fx_init(f, NULL);
    f->s.equity = f->s.sod_equity = f->s.peak_equity = f->s.prev_close_equity = RISK_USD(20000);
    f->l.max_order_notional_bps = RISK_OFF;
    f->l.sector_max_bps = RISK_OFF;
    f->l.unknown_sector_max_bps = RISK_OFF;
}

/* History: `n` day trades on the trading days before now (one per day). */
static void history(fx *f, int n)
{
    risk_day d = risk_ny_day(f->now_ms / 1000);
    for (int i = 0; i < n; i++) {
        d = risk_cal_prev_trading_day(&f->cal, d);
        f->hist[f->s.n_day_trade_days++] = d;
    }
}

/* Bought 10 MSFT today; the intent sells them (completing a day trade). */
static void closing_intent(fx *f)
{
    fx_fill(f, "MSFT", B, RISK_SHARES(10), 60, 1);
    fx_pos(f, "MSFT", RISK_SHARES(10), RISK_USD(100));
    fx_intent(f, "MSFT", S, RISK_SHARES(10));
}

static void p_three_then_fourth(fx *f)
{
    pdt_base(f);
    history(f, 3);
    closing_intent(f);
}
static void p_two_then_third(fx *f)
{
    pdt_base(f);
    history(f, 2);
    closing_intent(f);
}
static void p_floor_exact_exempt(fx *f)
{
    p_three_then_fourth(f);
    f->s.prev_close_equity = RISK_USD(25000);
}
static void p_floor_cent_under(fx *f)
{
    p_three_then_fourth(f);
    f->s.prev_close_equity = RISK_USD(25000) - 10000;
}
static void p_current_equity_irrelevant(fx *f)
{
    p_three_then_fourth(f);
    f->s.equity = f->s.peak_equity = RISK_USD(30000); /* previous close is what counts */
    f->s.sod_equity = RISK_USD(30000);
}
static void p_cash_account(fx *f)
{
    p_three_then_fourth(f);
    f->s.account_type = RISK_ACCOUNT_CASH;
}
static void p_disabled(fx *f)
{
    p_three_then_fourth(f);
    f->s.pdt.enabled = false;
}
static void p_opening_never_refused(fx *f)
{
    pdt_base(f);
    history(f, 5);
    fx_intent(f, "MSFT", B, RISK_SHARES(10));
}
static void p_opening_with_pending_exit(fx *f)
{
    /* Overnight long 10 with a resting sell 10: if the new buy fills first, the sell closes
     * the same-day lot (LIFO), completing a 4th day trade. */
    pdt_base(f);
    history(f, 3);
    fx_pos(f, "MSFT", RISK_SHARES(10), RISK_USD(100));
    fx_open(f, "MSFT", S, RISK_SHARES(10), RISK_USD(100));
    fx_intent(f, "MSFT", B, RISK_SHARES(10));
}
static void p_opening_with_pending_add(fx *f)
{
    p_opening_with_pending_exit(f);
    f->open[0].side = B;
}
static void p_higher_threshold(fx *f)
{
    p_three_then_fourth(f);
    f->s.pdt.max_day_trades = 4;
}
static void p_lower_floor(fx *f)
{
    p_three_then_fourth(f);
    f->s.pdt.equity_floor = RISK_USD(10000);
}
static void p_pending_counts(fx *f)
{
    p_two_then_third(f);
    /* Another symbol bought today with a pending exit: a potential day trade. */
    fx_fill(f, "NVDA", B, RISK_SHARES(5), 50, 2);
    fx_pos(f, "NVDA", RISK_SHARES(5), RISK_USD(100));
    fx_open(f, "NVDA", S, RISK_SHARES(5), RISK_USD(100));
}
static void p_today_counts(fx *f)
{
    p_two_then_third(f);
    fx_fill(f, "NVDA", B, RISK_SHARES(5), 50, 2);
    fx_fill(f, "NVDA", S, RISK_SHARES(5), 40, 3);
}
static void p_old_history_outside_window(fx *f)
{
    pdt_base(f);
    /* Three day trades 5, 6 and 7 trading days ago: outside the 5-day window. */
    risk_day d = risk_ny_day(f->now_ms / 1000);
    for (int i = 0; i < 7; i++) {
        d = risk_cal_prev_trading_day(&f->cal, d);
        if (i >= 4) {
            f->hist[f->s.n_day_trade_days++] = d;
        }
    }
    closing_intent(f);
}
static void p_window_edge_inside(fx *f)
{
    p_old_history_outside_window(f);
    f->hist[0] = risk_cal_prev_trading_day(&f->cal, f->hist[0] + 1); /* unchanged: 5 back */
    /* Move one entry to exactly 4 trading days back: the window's first day. */
    risk_day d = risk_ny_day(f->now_ms / 1000);
    for (int i = 0; i < 4; i++) {
        d = risk_cal_prev_trading_day(&f->cal, d);
    }
    f->hist[0] = d;
    f->hist[1] = d;
    f->hist[2] = d;
}
static void p_future_history_ignored(fx *f)
{
    pdt_base(f);
    risk_day today = risk_ny_day(f->now_ms / 1000);
    f->hist[0] = f->hist[1] = f->hist[2] = today; /* today's come from fills, not history */
    f->s.n_day_trade_days = 3;
    closing_intent(f);
}
static void p_sell_more_than_intraday(fx *f)
{
    /* Overnight 100 + bought 10 today; selling 50 still closes the same-day lot first. */
    pdt_base(f);
    history(f, 3);
    fx_fill(f, "MSFT", B, RISK_SHARES(10), 60, 1);
    fx_pos(f, "MSFT", RISK_SHARES(110), RISK_USD(100));
    fx_intent(f, "MSFT", S, RISK_SHARES(50));
}
static void p_sell_overnight_first(fx *f)
{
    /* Overnight 100, nothing bought today: selling is not a day trade. */
    pdt_base(f);
    history(f, 3);
    fx_pos(f, "MSFT", RISK_SHARES(100), RISK_USD(100));
    fx_intent(f, "MSFT", S, RISK_SHARES(50));
}
static void p_same_direction_after_count(fx *f)
{
    /* Bought 10, sold 5 (day trade 3), selling the other 5 is the same day trade. */
    pdt_base(f);
    history(f, 2);
    fx_fill(f, "MSFT", B, RISK_SHARES(10), 60, 1);
    fx_fill(f, "MSFT", S, RISK_SHARES(5), 30, 2);
    fx_pos(f, "MSFT", RISK_SHARES(5), RISK_USD(100));
    fx_intent(f, "MSFT", S, RISK_SHARES(5));
}

typedef struct pdt_case {
    const char *name;
    void (*setup)(fx *f);
    bool refused;
} pdt_case;

static const pdt_case pdt_cases[] = {
    {"3 in window: the exit that makes a 4th is refused", p_three_then_fourth, true},
    {"2 in window: the 3rd is allowed", p_two_then_third, false},
    {"previous close exactly $25,000 is exempt", p_floor_exact_exempt, false},
    {"previous close one cent under $25,000 is subject", p_floor_cent_under, true},
    {"current equity above the floor does not exempt", p_current_equity_irrelevant, true},
    {"cash accounts are not subject", p_cash_account, false},
    {"guard off for this broker connection", p_disabled, false},
    {"an opening order with no pending exit is not refused", p_opening_never_refused, false},
    {"an opening order a pending exit would close the same day is refused",
     p_opening_with_pending_exit, true},
    {"an opening order beside a pending add is not refused", p_opening_with_pending_add, false},
    {"threshold 4 allows the 4th", p_higher_threshold, false},
    {"floor $10,000 exempts a $20,000 account", p_lower_floor, false},
    {"a pending exit counts as a potential day trade", p_pending_counts, true},
    {"today's completed day trades count", p_today_counts, true},
    {"day trades older than the window do not count", p_old_history_outside_window, false},
    {"the window's first day counts", p_window_edge_inside, true},
    {"history dated today is ignored (fills are the source)", p_future_history_ignored, false},
    {"a sale closes the same-day lot before the overnight one", p_sell_more_than_intraday, true},
    {"selling an overnight position is not a day trade", p_sell_overnight_first, false},
    {"a second sale in the same direction adds no day trade", p_same_direction_after_count, false},
};

static void test_pdt_rule_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(pdt_cases) / sizeof(pdt_cases[0]); i++) {
        fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        pdt_cases[i].setup(f);
        assert_int_equal(fx_decide(f), RISK_OK);
        if (fx_has(&f->d, RISK_V_PDT) != pdt_cases[i].refused) {
            fail_msg("%s: PDT %s (%s)", pdt_cases[i].name,
                     pdt_cases[i].refused ? "missing" : "unexpected",
                     f->d.n_violations ? f->d.violations[0].message : "no violation");
        }
        if (f->d.allowed == pdt_cases[i].refused) {
            fail_msg("%s: allowed=%d", pdt_cases[i].name, f->d.allowed);
        }
        free(f);
    }
}

static risk_day ymd(int y, int m, int d)
{
    return risk_day_from_ymd(y, m, d);
}

/* Monday 2026-03-16 14:00 EDT: the window is Tue 10 .. Mon 16 (a weekend inside). */
static void test_window_across_weekend(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    (void)state;
    pdt_base(f);
    f->now_ms = INT64_C(1773684000) * 1000;
    f->hist[0] = ymd(2026, 3, 10);
    f->hist[1] = ymd(2026, 3, 11);
    f->hist[2] = ymd(2026, 3, 12);
    f->s.n_day_trade_days = 3;
    closing_intent(f);
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_true(fx_has(&f->d, RISK_V_PDT));
    assert_int_equal(f->d.account.day_trades_in_window, 3);
    f->hist[0] = ymd(2026, 3, 9); /* a week ago Monday: outside */
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_false(fx_has(&f->d, RISK_V_PDT));
    free(f);
}

/* Monday 2026-04-06 (after Good Friday): the window is Mon 30 Mar .. Mon 6 Apr. */
static void test_window_across_holiday(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    (void)state;
    pdt_base(f);
    f->now_ms = INT64_C(1775498400) * 1000; /* 2026-04-06 14:00 EDT */
    f->hist[0] = ymd(2026, 3, 30);
    f->hist[1] = ymd(2026, 3, 31);
    f->hist[2] = ymd(2026, 4, 1);
    f->s.n_day_trade_days = 3;
    closing_intent(f);
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_true(fx_has(&f->d, RISK_V_PDT)); /* Mar 30 is in: Good Friday is skipped */
    f->hist[0] = ymd(2026, 3, 27);
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_false(fx_has(&f->d, RISK_V_PDT));
    free(f);
}

/* Saturday 2026-03-14: orders are for Monday 16, so the window is Tue 10 .. Mon 16. */
static void test_weekend_order_uses_next_trading_day(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    (void)state;
    pdt_base(f);
    f->now_ms = INT64_C(1773504000) * 1000;
    f->hist[0] = ymd(2026, 3, 9); /* inside a window anchored on Friday, not on Monday */
    f->hist[1] = ymd(2026, 3, 10);
    f->hist[2] = ymd(2026, 3, 11);
    f->s.n_day_trade_days = 3;
    fx_open(f, "MSFT", B, RISK_SHARES(10), RISK_USD(100)); /* entry queued for Monday */
    fx_intent(f, "MSFT", S, RISK_SHARES(10));
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_int_equal(f->d.account.trade_date, ymd(2026, 3, 16));
    assert_false(fx_has(&f->d, RISK_V_PDT)); /* 2 in window + this = 3 */
    f->hist[0] = ymd(2026, 3, 12);
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_true(fx_has(&f->d, RISK_V_PDT));
    free(f);
}

/* Fills before New York midnight belong to yesterday, even though UTC says today. */
static void test_new_york_day_boundary(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    risk_assessment a;
    (void)state;
    pdt_base(f);
    /* now: Wednesday 2026-03-11 14:00 EDT. Buy at 23:59 EDT Tuesday, sell at 00:01 EDT. */
    fx_fill(f, "MSFT", B, RISK_SHARES(10), 0, 1);
    f->fills[0].filled_ms = INT64_C(1773201540) * 1000; /* 2026-03-11 03:59 UTC */
    fx_fill(f, "MSFT", S, RISK_SHARES(10), 0, 2);
    f->fills[1].filled_ms = INT64_C(1773201660) * 1000; /* 2026-03-11 04:01 UTC */
    assert_int_equal(risk_assess(&f->s, &f->l, f->now_ms, &a), RISK_OK);
    assert_int_equal(a.day_trades_in_window, 0); /* overnight long sold: not a day trade */
    f->fills[0].filled_ms += 120000;             /* 00:01 EDT too: same day */
    f->fills[1].filled_ms += 120000;
    assert_int_equal(risk_assess(&f->s, &f->l, f->now_ms, &a), RISK_OK);
    assert_int_equal(a.day_trades_in_window, 1);
    free(f);
}

static void test_message_and_count_reported(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    (void)state;
    p_three_then_fourth(f);
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_int_equal(f->d.account.day_trades_in_window, 3);
    assert_true(f->d.account.pdt_applies);
    assert_non_null(strstr(fx_msg(&f->d, RISK_V_PDT), "day trade 4"));
    assert_non_null(strstr(fx_msg(&f->d, RISK_V_PDT), "25000.00"));
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finra_counting),
        cmocka_unit_test(test_pdt_rule_table),
        cmocka_unit_test(test_window_across_weekend),
        cmocka_unit_test(test_window_across_holiday),
        cmocka_unit_test(test_weekend_order_uses_next_trading_day),
        cmocka_unit_test(test_new_york_day_boundary),
        cmocka_unit_test(test_message_and_count_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
