/*
 * tests/risk/test_periods.c — risk_day_trades (FINRA counting over one day's executions),
 * risk_trade_date (the day "today's fills" cover) and risk_pdt_window_start (the 5-session
 * window on the NYSE calendar): table-driven counting cases, agreement with the engine's own
 * count on random executions, the reported trades, invalid input, weekends, holidays and DST.
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
    const char *symbol; /* NULL = "MSFT" */
    risk_side side;
    int shares;
    uint64_t order_id; /* 0 = a new order id per execution */
} exec;

typedef struct count_case {
    const char *name;
    int overnight; /* MSFT shares held at the previous close (negative = short) */
    exec ex[10];
    int n;
    int want;
} count_case;

static const count_case count_cases[] = {
    {"FINRA: buy 250, buy 250, sell 500 = 1",
     0,
     {{0, B, 250, 0}, {0, B, 250, 0}, {0, S, 500, 0}},
     3,
     1},
    {"FINRA: buy, sell, buy, sell = 2",
     0,
     {{0, B, 100, 0}, {0, S, 100, 0}, {0, B, 100, 0}, {0, S, 100, 0}},
     4,
     2},
    {"FINRA: one buy then several sells = 1",
     0,
     {{0, B, 100, 0}, {0, S, 50, 0}, {0, S, 30, 0}, {0, S, 20, 0}},
     4,
     1},
    {"multiple buys then one sell = 1",
     0,
     {{0, B, 10, 0}, {0, B, 20, 0}, {0, B, 30, 0}, {0, S, 60, 0}},
     4,
     1},
    {"partial fills of one buy and one sell order = 1",
     0,
     {{0, B, 30, 1}, {0, B, 30, 1}, {0, B, 40, 1}, {0, S, 60, 2}, {0, S, 40, 2}},
     5,
     1},
    {"interleaved partial fills of a buy and a sell order = 1",
     0,
     {{0, B, 50, 1}, {0, S, 30, 2}, {0, B, 50, 1}, {0, S, 70, 2}},
     4,
     1},
    {"partial sell of a same-day buy, the rest sold later = 1",
     0,
     {{0, B, 100, 1}, {0, S, 40, 2}, {0, S, 60, 3}},
     3,
     1},
    {"short then cover = 1", 0, {{0, S, 100, 0}, {0, B, 100, 0}}, 2, 1},
    {"short, cover in partial fills of one order = 1",
     0,
     {{0, S, 100, 1}, {0, B, 30, 2}, {0, B, 70, 2}},
     3,
     1},
    {"short, cover, short, cover = 2",
     0,
     {{0, S, 100, 0}, {0, B, 100, 0}, {0, S, 100, 0}, {0, B, 100, 0}},
     4,
     2},
    {"overnight long sold, then bought back = 0", 100, {{0, S, 100, 0}, {0, B, 100, 0}}, 2, 0},
    {"overnight long sold, bought, sold again = 1",
     100,
     {{0, S, 100, 0}, {0, B, 100, 0}, {0, S, 100, 0}},
     3,
     1},
    {"overnight long, buy more, sell all = 1 (same-day lot first)",
     100,
     {{0, B, 100, 0}, {0, S, 200, 0}},
     2,
     1},
    {"overnight long partly sold only = 0", 100, {{0, S, 40, 0}, {0, S, 60, 0}}, 2, 0},
    {"overnight short covered, then shorted again = 0",
     -100,
     {{0, B, 100, 0}, {0, S, 100, 0}},
     2,
     0},
    {"flip long to short and cover = 2", 0, {{0, B, 100, 0}, {0, S, 200, 0}, {0, B, 100, 0}}, 3, 2},
    {"buys only = 0", 0, {{0, B, 100, 0}, {0, B, 100, 0}}, 2, 0},
    {"no executions = 0", 0, {{0, B, 0, 0}}, 0, 0},
    {"symbols count separately, interleaved = 2",
     0,
     {{"AAPL", B, 10, 0}, {0, B, 10, 0}, {"AAPL", S, 10, 0}, {0, S, 10, 0}},
     4,
     2},
    {"buy one symbol, sell another = 0", 0, {{"AAPL", B, 10, 0}, {0, S, 10, 0}}, 2, 0},
    {"the issue's day: three round trips, then a buy = 3",
     0,
     {{"AAPL", B, 10, 0},
      {"AAPL", S, 10, 0},
      {"MSFT", B, 10, 0},
      {"MSFT", S, 10, 0},
      {"KO", B, 10, 0},
      {"KO", S, 10, 0},
      {"PEP", B, 10, 0}},
     7,
     3},
};

/* Builds the fills and post-trade positions of a case into f. */
static void build(fx *f, const count_case *c)
{
    int net_msft = c->overnight;
    int net_aapl = 0;
    fx_init(f, NULL);
    for (int k = 0; k < c->n; k++) {
        const exec *e = &c->ex[k];
        const char *sym = e->symbol ? e->symbol : "MSFT";
        uint64_t oid = e->order_id ? e->order_id : 100 + (uint64_t)k;
        fx_fill(f, sym, e->side, RISK_SHARES(e->shares), 120 - k, oid);
        int d = e->side == B ? e->shares : -e->shares;
        if (strcmp(sym, "MSFT") == 0) {
            net_msft += d;
        } else if (strcmp(sym, "AAPL") == 0) {
            net_aapl += d;
        }
    }
    if (net_msft != 0) {
        fx_pos(f, "MSFT", RISK_SHARES(net_msft), RISK_USD(100));
    }
    if (net_aapl != 0) {
        fx_pos(f, "AAPL", RISK_SHARES(net_aapl), RISK_USD(100));
    }
    /* KO and PEP: round trip flat, PEP held. */
    for (int k = 0; k < c->n; k++) {
        if (c->ex[k].symbol && strcmp(c->ex[k].symbol, "PEP") == 0) {
            fx_pos(f, "PEP", RISK_SHARES(10), RISK_USD(100));
        }
    }
}

static void test_counts_by_change_of_direction(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(count_cases) / sizeof(count_cases[0]); i++) {
        const count_case *c = &count_cases[i];
        fx *f = calloc(1, sizeof(*f));
        risk_assessment a;
        assert_non_null(f);
        build(f, c);
        int32_t got = risk_day_trades(f->s.positions, f->s.n_positions, f->s.fills_today,
                                      f->s.n_fills_today, NULL, 0);
        if (got != c->want) {
            fail_msg("%s: counted %d, want %d", c->name, (int)got, c->want);
        }
        /* The engine counts the same day the same way. */
        assert_int_equal(risk_assess(&f->s, &f->l, f->now_ms, &a), RISK_OK);
        if (a.day_trades_in_window != got) {
            fail_msg("%s: engine counted %d, risk_day_trades %d", c->name,
                     (int)a.day_trades_in_window, (int)got);
        }
        free(f);
    }
}

static void test_reports_each_completing_execution_in_order(void **state)
{
    (void)state;
    fx *f = calloc(1, sizeof(*f));
    risk_day_trade out[4];
    assert_non_null(f);
    fx_init(f, NULL);
    fx_fill(f, "AAPL", B, RISK_SHARES(10), 50, 1);
    fx_fill(f, "MSFT", S, RISK_SHARES(5), 40, 2); /* short */
    fx_fill(f, "AAPL", S, RISK_SHARES(4), 30, 3); /* completes AAPL */
    fx_fill(f, "AAPL", S, RISK_SHARES(6), 20, 4); /* same direction: not another */
    fx_fill(f, "MSFT", B, RISK_SHARES(5), 10, 5); /* completes MSFT */
    memset(out, 0x5a, sizeof(out));
    assert_int_equal(risk_day_trades(f->s.positions, 0, f->fills, f->s.n_fills_today, out, 4), 2);
    assert_string_equal(out[0].symbol, "AAPL");
    assert_int_equal(out[0].order_id, 3);
    assert_int_equal(out[0].fill_index, 2);
    assert_int_equal(out[0].closed_ms, f->fills[2].filled_ms);
    assert_string_equal(out[1].symbol, "MSFT");
    assert_int_equal(out[1].order_id, 5);
    assert_int_equal(out[1].fill_index, 4);
    /* A smaller cap still returns the full count, and writes only cap entries. */
    memset(out, 0x5a, sizeof(out));
    assert_int_equal(risk_day_trades(NULL, 0, f->fills, f->s.n_fills_today, out, 1), 2);
    assert_int_equal(out[0].order_id, 3);
    assert_int_equal(out[1].order_id, 0x5a5a5a5a5a5a5a5aULL);
    free(f);
}

static void test_invalid_input_never_counts(void **state)
{
    (void)state;
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    fx_init(f, NULL);
    fx_fill(f, "AAPL", B, RISK_SHARES(10), 50, 1);
    fx_fill(f, "AAPL", S, RISK_SHARES(10), 40, 2);
    assert_int_equal(risk_day_trades(NULL, 0, f->fills, 2, NULL, 0), 1);
    assert_int_equal(risk_day_trades(NULL, 0, NULL, 2, NULL, 0), -1);
    assert_int_equal(risk_day_trades(NULL, 1, f->fills, 2, NULL, 0), -1);
    assert_int_equal(risk_day_trades(NULL, 0, f->fills, 2, NULL, 1), -1);
    f->fills[1].qty = 0;
    assert_int_equal(risk_day_trades(NULL, 0, f->fills, 2, NULL, 0), -1);
    f->fills[1].qty = RISK_SHARES(10);
    f->fills[1].side = (risk_side)0;
    assert_int_equal(risk_day_trades(NULL, 0, f->fills, 2, NULL, 0), -1);
    f->fills[1].side = S;
    memset(f->fills[1].symbol, 'A', RISK_SYMBOL_MAX); /* no NUL in the field */
    assert_int_equal(risk_day_trades(NULL, 0, f->fills, 2, NULL, 0), -1);
    fx_sym(f->fills[1].symbol, "AAPL");
    fx_pos(f, "", RISK_SHARES(1), RISK_USD(1));
    assert_int_equal(risk_day_trades(f->pos, 1, f->fills, 2, NULL, 0), -1);
    free(f);
}

/* Random executions over three symbols with random overnight positions: risk_day_trades and
 * the engine's risk_assess always agree. */
static void test_agrees_with_the_engine_on_random_days(void **state)
{
    (void)state;
    static const char *const syms[] = {"AAPL", "MSFT", "KO"};
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    for (int round = 0; round < 2000; round++) {
        int pos[3];
        risk_assessment a;
        fx_init(f, NULL);
        for (int k = 0; k < 3; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            pos[k] = (int)(seed >> 60) - 8; /* overnight -8..7 */
        }
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int n = (int)(seed >> 59); /* 0..31 executions */
        for (int i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            int k = (int)((seed >> 33) % 3);
            risk_side side = (seed >> 40) & 1 ? B : S;
            int shares = 1 + (int)((seed >> 45) % 12);
            uint64_t oid = 1 + (seed >> 50) % 8; /* few orders: partial fills recur */
            fx_fill(f, syms[k], side, RISK_SHARES(shares), 400 - i, oid * 10 + (uint64_t)k);
            pos[k] += side == B ? shares : -shares;
        }
        for (int k = 0; k < 3; k++) {
            if (pos[k] != 0) {
                fx_pos(f, syms[k], RISK_SHARES(pos[k]), RISK_USD(100));
            }
        }
        int32_t got = risk_day_trades(f->s.positions, f->s.n_positions, f->s.fills_today,
                                      f->s.n_fills_today, NULL, 0);
        assert_int_equal(risk_assess(&f->s, &f->l, f->now_ms, &a), RISK_OK);
        if (got < 0 || got != a.day_trades_in_window) {
            fail_msg("round %d: risk_day_trades %d, engine %d", round, (int)got,
                     (int)a.day_trades_in_window);
        }
    }
    free(f);
}

/* ---- periods ----------------------------------------------------------------------------- */

static int64_t ny_ms(int y, int m, int d, int hh, int mm)
{
    return risk_ny_local_to_unix(risk_day_from_ymd(y, m, d), hh * 3600 + mm * 60) * 1000;
}

static void test_trade_date_is_the_ny_day_or_the_next_trading_day(void **state)
{
    (void)state;
    risk_calendar cal;
    int64_t lo, hi;
    risk_calendar_init(&cal, NULL, 0);
    /* Monday 2026-11-23 10:00 EST: that day, New York midnight to midnight. */
    risk_day d = risk_trade_date(&cal, ny_ms(2026, 11, 23, 10, 0), &lo, &hi);
    assert_int_equal(d, risk_day_from_ymd(2026, 11, 23));
    assert_int_equal(lo, ny_ms(2026, 11, 23, 0, 0));
    assert_int_equal(hi, ny_ms(2026, 11, 24, 0, 0));
    /* Its first and last millisecond, and the one after (Tuesday). Sunday trades as Monday. */
    assert_int_equal(risk_trade_date(&cal, lo, NULL, NULL), d);
    assert_int_equal(risk_trade_date(&cal, hi - 1, NULL, NULL), d);
    assert_int_equal(risk_trade_date(&cal, hi, NULL, NULL), d + 1);
    assert_int_equal(risk_trade_date(&cal, lo - 1, NULL, NULL), d);
    /* Friday's last millisecond is Friday's. */
    assert_int_equal(risk_trade_date(&cal, ny_ms(2026, 11, 21, 0, 0) - 1, NULL, NULL),
                     risk_day_from_ymd(2026, 11, 20));
    /* Thanksgiving (Thursday 2026-11-26) counts toward Friday the 27th. */
    d = risk_trade_date(&cal, ny_ms(2026, 11, 26, 12, 0), &lo, &hi);
    assert_int_equal(d, risk_day_from_ymd(2026, 11, 27));
    assert_int_equal(lo, ny_ms(2026, 11, 27, 0, 0));
    /* Saturday 2026-03-07 -> Monday 2026-03-09, across the DST change on Sunday the 8th:
     * Monday's midnight is EDT (04:00 UTC). */
    d = risk_trade_date(&cal, ny_ms(2026, 3, 7, 12, 0), &lo, &hi);
    assert_int_equal(d, risk_day_from_ymd(2026, 3, 9));
    assert_int_equal(lo, (int64_t)risk_day_from_ymd(2026, 3, 9) * 86400000 + 4 * 3600000);
    assert_int_equal(hi - lo, 86400000);
    /* The engine's trading date is the same. */
    fx *f = calloc(1, sizeof(*f));
    risk_assessment a;
    assert_non_null(f);
    fx_init(f, NULL);
    f->now_ms = ny_ms(2026, 11, 26, 12, 0);
    assert_int_equal(risk_assess(&f->s, &f->l, f->now_ms, &a), RISK_OK);
    assert_int_equal(a.trade_date, risk_day_from_ymd(2026, 11, 27));
    free(f);
}

static void test_pdt_window_skips_weekends_and_holidays(void **state)
{
    (void)state;
    risk_calendar cal;
    risk_calendar_init(&cal, NULL, 0);
    /* Monday 2026-11-30: Nov 30, 27, 25, 24, 23 (Thanksgiving the 26th and the weekend skipped). */
    risk_day mon = risk_day_from_ymd(2026, 11, 30);
    assert_int_equal(risk_pdt_window_start(&cal, mon, 5), risk_day_from_ymd(2026, 11, 23));
    assert_int_equal(risk_pdt_window_start(&cal, mon, 1), mon);
    assert_int_equal(risk_pdt_window_start(&cal, mon, 0), mon);
    assert_int_equal(risk_pdt_window_start(&cal, mon, 2), risk_day_from_ymd(2026, 11, 27));
    /* Tuesday 2026-04-07: Apr 7, 6, 2, 1, Mar 31 (Good Friday, April 3, skipped). */
    assert_int_equal(risk_pdt_window_start(&cal, risk_day_from_ymd(2026, 4, 7), 5),
                     risk_day_from_ymd(2026, 3, 31));
    /* A one-off closure from the calendar's extra list is skipped too. */
    risk_day extra[] = {risk_day_from_ymd(2026, 11, 24)};
    risk_calendar_init(&cal, extra, 1);
    assert_int_equal(risk_pdt_window_start(&cal, mon, 5), risk_day_from_ymd(2026, 11, 20));
    /* Clamped to RISK_PDT_MAX_WINDOW. */
    risk_calendar_init(&cal, NULL, 0);
    assert_int_equal(risk_pdt_window_start(&cal, mon, 1000),
                     risk_pdt_window_start(&cal, mon, RISK_PDT_MAX_WINDOW));
}

/* The engine's history count follows the window: a day trade on its first session counts, one
 * on the session before does not; across Thanksgiving. */
static void test_history_counts_exactly_the_window(void **state)
{
    (void)state;
    fx *f = calloc(1, sizeof(*f));
    risk_assessment a;
    assert_non_null(f);
    fx_init(f, NULL);
    f->now_ms = ny_ms(2026, 11, 30, 10, 0);
    risk_day start = risk_pdt_window_start(&f->cal, risk_day_from_ymd(2026, 11, 30), 5);
    f->hist[f->s.n_day_trade_days++] = start;                                     /* Nov 23 */
    f->hist[f->s.n_day_trade_days++] = risk_day_from_ymd(2026, 11, 25);           /* inside */
    f->hist[f->s.n_day_trade_days++] = risk_cal_prev_trading_day(&f->cal, start); /* Nov 20 */
    f->hist[f->s.n_day_trade_days++] = risk_day_from_ymd(2026, 11, 30); /* today: from fills */
    assert_int_equal(risk_assess(&f->s, &f->l, f->now_ms, &a), RISK_OK);
    assert_int_equal(a.day_trades_in_window, 2);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_by_change_of_direction),
        cmocka_unit_test(test_reports_each_completing_execution_in_order),
        cmocka_unit_test(test_invalid_input_never_counts),
        cmocka_unit_test(test_agrees_with_the_engine_on_random_days),
        cmocka_unit_test(test_trade_date_is_the_ny_day_or_the_next_trading_day),
        cmocka_unit_test(test_pdt_window_skips_weekends_and_holidays),
        cmocka_unit_test(test_history_counts_exactly_the_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
