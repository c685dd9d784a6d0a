/*
 * tests/risk/test_property.c — property test: thousands of seeded random order streams are
 * applied to a simulated account (prices move, orders fill or rest, days roll over the NYSE
 * calendar, breakers trip and clear, the user halts and resumes). After every order the engine
 * allows, the account must be within every limit, judged by this file's own bookkeeping:
 *   - opening orders only while ACTIVE and under the loss/drawdown limits;
 *   - distinct symbols held or pending <= max positions;
 *   - order notional <= 10 % of equity; post-trade sector exposure <= 25 % (UNKNOWN pooled);
 *   - limit prices inside the collar; no duplicate within 5 s; at most 5 orders per second;
 *   - a PDT-subject account never holds more than 3 day trades in its window.
 * Every tenth decision is also repeated and compared byte for byte (determinism).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "risk/risk.h"

#define NSYM 12
#define MAXOPEN 32
#define MAXRECENT 256
#define MAXFILLS 512
#define MAXHIST 512

__extension__ typedef __int128 i128;

static const char *const sym_names[NSYM] = {"AAPL", "MSFT", "NVDA", "JPM", "GS",  "XOM",
                                            "CVX",  "JNJ",  "PFE",  "KO",  "ZZA", "ZZB"};

static const char csv[] = "Symbol,GICS Sector\n"
                          "AAPL,Information Technology\nMSFT,Information Technology\n"
                          "NVDA,Information Technology\nJPM,Financials\nGS,Financials\n"
                          "XOM,Energy\nCVX,Energy\nJNJ,Health Care\nPFE,Health Care\n"
                          "KO,Consumer Staples\n";

typedef struct sim {
    uint64_t rng;
    risk_calendar cal;
    risk_sector_map *map;
    risk_limits lim;
    int64_t now_ms;
    risk_price px[NSYM];
    risk_qty pos[NSYM];
    risk_money cash;
    risk_money sod, peak, prev_close;
    uint32_t halt;
    risk_breaker_reason breaker_reason;
    int64_t breaker_until;
    risk_account_type acct;
    risk_open_order open[MAXOPEN];
    int open_sym[MAXOPEN];
    size_t n_open;
    risk_recent_order recent[MAXRECENT];
    size_t n_recent;
    risk_fill fills[MAXFILLS];
    size_t n_fills;
    risk_day hist[MAXHIST];
    size_t n_hist;
    uint64_t next_oid;
    long allowed, refused;
} sim;

static uint64_t rnd(sim *s)
{
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    return x;
}

static int64_t rnd_range(sim *s, int64_t lo, int64_t hi) /* inclusive */
{
    return lo + (int64_t)(rnd(s) % (uint64_t)(hi - lo + 1));
}

static i128 notional(risk_qty q, risk_price p)
{
    i128 v = (i128)(q < 0 ? -q : q) * p;
    return v / RISK_QTY_SCALE + (v % RISK_QTY_SCALE != 0);
}

static risk_money equity(const sim *s)
{
    i128 e = s->cash;
    for (int i = 0; i < NSYM; i++) {
        i128 v = (i128)s->pos[i] * s->px[i] / RISK_QTY_SCALE;
        e += v;
    }
    return (risk_money)e;
}

static int sector_of(const sim *s, int i)
{
    return risk_sectors_lookup(s->map, sym_names[i]);
}

static void set_sym(char dst[RISK_SYMBOL_MAX], int i)
{
    memset(dst, 0, RISK_SYMBOL_MAX);
    memcpy(dst, sym_names[i], strlen(sym_names[i]));
}

static void build_snapshot(sim *s, risk_snapshot *snap, risk_position *rows, int sym_idx)
{
    size_t n = 0;
    memset(snap, 0, sizeof(*snap));
    for (int i = 0; i < NSYM; i++) {
        if (s->pos[i] != 0) {
            memset(&rows[n], 0, sizeof(rows[n]));
            set_sym(rows[n].symbol, i);
            rows[n].qty = s->pos[i];
            rows[n].avg_cost = s->px[i];
            rows[n].last_price = s->px[i];
            n++;
        }
    }
    risk_money eq = equity(s);
    snap->equity = eq;
    snap->sod_equity = s->sod;
    snap->peak_equity = s->peak > eq ? s->peak : eq;
    snap->prev_close_equity = s->prev_close;
    snap->positions = rows;
    snap->n_positions = n;
    snap->open_orders = s->open;
    snap->n_open_orders = s->n_open;
    snap->recent_orders = s->recent;
    snap->n_recent_orders = s->n_recent;
    snap->day_trade_days = s->hist;
    snap->n_day_trade_days = s->n_hist;
    snap->fills_today = s->fills;
    snap->n_fills_today = s->n_fills;
    snap->halt_reasons = s->halt;
    snap->breaker_reason = s->breaker_reason;
    snap->breaker_until_ms = s->breaker_until;
    snap->account_type = s->acct;
    risk_pdt_default(&snap->pdt);
    snap->sectors = s->map;
    snap->calendar = &s->cal;
    snap->ref_price = sym_idx >= 0 ? s->px[sym_idx] : 0;
}

static void fill(sim *s, int i, risk_side side, risk_qty q, uint64_t oid)
{
    risk_fill *f;
    i128 v = (i128)q * s->px[i] / RISK_QTY_SCALE;
    s->pos[i] += side == RISK_BUY ? q : -q;
    s->cash -= side == RISK_BUY ? (risk_money)v : -(risk_money)v;
    assert_true(s->n_fills < MAXFILLS);
    f = &s->fills[s->n_fills++];
    memset(f, 0, sizeof(*f));
    set_sym(f->symbol, i);
    f->side = side;
    f->qty = q;
    f->price = s->px[i];
    f->filled_ms = s->now_ms;
    f->order_id = oid;
}

/* Day trades completed today, by the engine's own counter (no history, no pending). */
static int today_count(sim *s)
{
    risk_snapshot snap;
    risk_position rows[NSYM];
    risk_assessment a;
    build_snapshot(s, &snap, rows, -1);
    snap.n_open_orders = 0;
    snap.n_day_trade_days = 0;
    assert_int_equal(risk_assess(&snap, &s->lim, s->now_ms, &a), RISK_OK);
    return a.day_trades_in_window;
}

/* The real-world property: completed day trades in the window (history + today's fills). */
static void check_completed_day_trades(sim *s)
{
    if (s->acct != RISK_ACCOUNT_MARGIN || s->prev_close >= RISK_USD(25000)) {
        return;
    }
    risk_day today = risk_ny_day(s->now_ms / 1000);
    risk_day start = today;
    int n = today_count(s);
    for (int i = 1; i < 5; i++) {
        start = risk_cal_prev_trading_day(&s->cal, start);
    }
    for (size_t i = 0; i < s->n_hist; i++) {
        n += s->hist[i] >= start && s->hist[i] < today;
    }
    if (n > 3) {
        fail_msg("%d day trades completed in the window", n);
    }
}

static void next_day(sim *s)
{
    int n = today_count(s);
    risk_day today = risk_ny_day(s->now_ms / 1000);
    for (int k = 0; k < n && s->n_hist < MAXHIST; k++) {
        s->hist[s->n_hist++] = today;
    }
    risk_day d = risk_cal_next_trading_day(&s->cal, today);
    s->now_ms = (risk_cal_session_start_unix(d) + rnd_range(s, 0, 6 * 3600)) * 1000;
    s->n_open = 0; /* day orders expire */
    s->n_fills = 0;
    s->n_recent = 0;
    s->sod = s->peak = s->prev_close = equity(s);
}

static void check_invariants(sim *s, const risk_intent *in, int si, bool reduce_only,
                             const risk_snapshot *before, risk_money eq_before)
{
    /* Opening orders only while active and inside the loss limits. */
    if (!reduce_only) {
        i128 loss = (i128)before->sod_equity - eq_before;
        i128 dd = (i128)before->peak_equity - eq_before;
        assert_true(before->halt_reasons == 0 ||
                    ((before->halt_reasons & RISK_HALT_BREAKER) && s->now_ms >= s->breaker_until &&
                     (before->halt_reasons & ~RISK_HALT_BREAKER) == 0));
        assert_false(loss * 10000 > (i128)200 * before->sod_equity);
        assert_false(dd * 10000 > (i128)500 * before->peak_equity);
        /* Notional against the equity at decision time. */
        risk_price p = before->ref_price;
        if (in->type == RISK_ORDER_LIMIT && in->limit_price > p) {
            p = in->limit_price;
        }
        assert_false(notional(in->qty, p) * 10000 > (i128)1000 * eq_before);
        /* Distinct symbols held or pending. */
        int distinct = 0;
        for (int i = 0; i < NSYM; i++) {
            bool pend = false;
            for (size_t k = 0; k < s->n_open; k++) {
                pend = pend || s->open_sym[k] == i;
            }
            distinct += s->pos[i] != 0 || pend;
        }
        assert_true(distinct <= s->lim.max_open_positions);
        /* Sector exposure post-trade (positions at last price + pending entries). */
        int sec = sector_of(s, si);
        i128 exp = 0;
        for (int i = 0; i < NSYM; i++) {
            if (sector_of(s, i) == sec) {
                exp += notional(s->pos[i], s->px[i]);
            }
        }
        for (size_t k = 0; k < s->n_open; k++) {
            int i = s->open_sym[k];
            int dir = s->open[k].side == RISK_BUY ? 1 : -1;
            bool entry = s->pos[i] == 0 || (s->pos[i] > 0 ? 1 : -1) == dir;
            if (sector_of(s, i) == sec && entry && i != si) {
                exp += notional(s->open[k].qty, s->open[k].price);
            }
        }
        assert_false(exp * 10000 > (i128)2500 * eq_before);
    }
    /* Collar. */
    if (in->type == RISK_ORDER_LIMIT) {
        i128 diff = (i128)in->limit_price - before->ref_price;
        diff = diff < 0 ? -diff : diff;
        assert_false(diff * 10000 > (i128)1000 * before->ref_price);
    }
    /* Duplicates and rate, over the orders we submitted (the recent list). */
    int in_window = 0;
    for (size_t k = 0; k < s->n_recent; k++) {
        const risk_recent_order *r = &s->recent[k];
        if (s->now_ms - r->submitted_ms < 1000) {
            in_window++;
        }
        if (k + 1 < s->n_recent && s->now_ms - r->submitted_ms < 5000 && r->side == in->side &&
            r->qty == in->qty && strcmp(r->symbol, in->symbol) == 0) {
            fail_msg("duplicate allowed");
        }
    }
    assert_true(in_window <= 5);
    /* PDT. */
    if (s->acct == RISK_ACCOUNT_MARGIN && before->prev_close_equity < RISK_USD(25000)) {
        risk_snapshot snap;
        risk_position rows[NSYM];
        risk_assessment a;
        build_snapshot(s, &snap, rows, -1);
        assert_int_equal(risk_assess(&snap, &s->lim, s->now_ms, &a), RISK_OK);
        assert_true(a.day_trades_in_window <= 3);
    }
}

static void one_order(sim *s)
{
    risk_snapshot snap;
    risk_position rows[NSYM];
    risk_intent in;
    risk_decision d;
    risk_decision d2;
    int si = (int)rnd_range(s, 0, NSYM - 1);
    risk_money eq = equity(s);

    memset(&in, 0, sizeof(in));
    set_sym(in.symbol, si);
    in.side = rnd(s) & 1 ? RISK_BUY : RISK_SELL;
    /* Mostly exits when holding, to exercise day trades. */
    if (s->pos[si] != 0 && rnd_range(s, 0, 2) > 0) {
        in.side = s->pos[si] > 0 ? RISK_SELL : RISK_BUY;
    }
    int64_t max_shares = eq / s->px[si] / 6 + 1;
    in.qty = RISK_SHARES(rnd_range(s, 1, max_shares > 1 ? max_shares : 1));
    if (rnd_range(s, 0, 9) == 0) {
        in.qty = rnd_range(s, 1, RISK_SHARES(3)); /* fractional */
    }
    if (s->pos[si] != 0 && rnd_range(s, 0, 3) == 0) {
        in.qty = s->pos[si] > 0 ? s->pos[si] : -s->pos[si]; /* flatten */
    }
    in.type = RISK_ORDER_MARKET;
    if (rnd_range(s, 0, 2) == 0) {
        in.type = RISK_ORDER_LIMIT;
        in.limit_price = s->px[si] + s->px[si] / 1000 * rnd_range(s, -120, 120);
        if (in.limit_price <= 0) {
            in.limit_price = 1;
        }
    }
    build_snapshot(s, &snap, rows, si);
    assert_int_equal(risk_decide(&in, &snap, &s->lim, s->now_ms, &d), RISK_OK);
    if (rnd_range(s, 0, 9) == 0) {
        memset(&d2, 0xA5, sizeof(d2));
        assert_int_equal(risk_decide(&in, &snap, &s->lim, s->now_ms, &d2), RISK_OK);
        assert_memory_equal(&d, &d2, sizeof(d));
    }
    /* Persist state changes like the server would. */
    if (d.account.clear_breaker) {
        s->halt &= ~RISK_HALT_BREAKER;
    }
    if (d.account.trip_breaker) {
        s->halt |= RISK_HALT_BREAKER;
        s->breaker_reason = d.account.trip_reason;
        s->breaker_until = d.account.trip_until_ms;
    }
    if (!d.allowed) {
        s->refused++;
        return;
    }
    s->allowed++;
    /* Our own reduce-only classification, as specified. */
    i128 same = 0;
    for (size_t k = 0; k < s->n_open; k++) {
        if (s->open_sym[k] == si && s->open[k].side == in.side) {
            same += s->open[k].qty;
        }
    }
    i128 p = s->pos[si];
    bool reduce_only =
        p != 0 && (p > 0) == (in.side == RISK_SELL) && same + in.qty <= (p < 0 ? -p : p);
    assert_int_equal(reduce_only, d.reduce_only);

    uint64_t oid = s->next_oid++;
    if (s->n_recent == MAXRECENT) {
        memmove(s->recent, s->recent + 1, sizeof(s->recent[0]) * (MAXRECENT - 1));
        s->n_recent--;
    }
    risk_recent_order *r = &s->recent[s->n_recent++];
    memset(r, 0, sizeof(*r));
    set_sym(r->symbol, si);
    r->side = in.side;
    r->qty = in.qty;
    r->submitted_ms = s->now_ms;
    /* Rest some limit orders, fill the rest now (in several partial fills sometimes). */
    if (in.type == RISK_ORDER_LIMIT && s->n_open < MAXOPEN && rnd_range(s, 0, 3) == 0) {
        risk_open_order *o = &s->open[s->n_open];
        memset(o, 0, sizeof(*o));
        set_sym(o->symbol, si);
        o->side = in.side;
        o->qty = in.qty;
        o->price = in.limit_price > s->px[si] ? in.limit_price : s->px[si];
        o->created_ms = s->now_ms;
        o->order_id = oid;
        s->open_sym[s->n_open++] = si;
    } else if (in.qty > 2 && rnd_range(s, 0, 4) == 0) {
        fill(s, si, in.side, in.qty / 2, oid);
        fill(s, si, in.side, in.qty - in.qty / 2, oid);
    } else {
        fill(s, si, in.side, in.qty, oid);
    }
    check_invariants(s, &in, si, reduce_only, &snap, eq);
    check_completed_day_trades(s);
}

static void step_world(sim *s)
{
    /* Bursts (orders milliseconds apart) as well as calm stretches. */
    s->now_ms += rnd_range(s, 0, 3) == 0 ? rnd_range(s, 0, 150) : rnd_range(s, 0, 2500);
    for (int i = 0; i < NSYM; i++) {
        s->px[i] += s->px[i] / 10000 * rnd_range(s, -40, 40);
        if (s->px[i] < RISK_USD(1)) {
            s->px[i] = RISK_USD(1);
        }
    }
    risk_money eq = equity(s);
    if (eq > s->peak) {
        s->peak = eq;
    }
    /* Resting orders sometimes fill, sometimes get canceled. */
    for (size_t k = 0; k < s->n_open;) {
        int64_t r = rnd_range(s, 0, 9);
        if (r < 2) {
            if (r == 0) {
                fill(s, s->open_sym[k], s->open[k].side, s->open[k].qty, s->open[k].order_id);
            }
            /* Keep creation order (the engine simulates pending orders in that order). */
            memmove(&s->open[k], &s->open[k + 1], sizeof(s->open[0]) * (s->n_open - k - 1));
            memmove(&s->open_sym[k], &s->open_sym[k + 1], sizeof(int) * (s->n_open - k - 1));
            s->n_open--;
            if (r == 0) {
                check_completed_day_trades(s);
            }
        } else {
            k++;
        }
    }
    if (rnd_range(s, 0, 150) == 0) {
        s->halt ^= RISK_HALT_USER;
    }
    /* Leave the session after a while. */
    risk_day today = risk_ny_day(s->now_ms / 1000);
    if (s->now_ms / 1000 > risk_cal_session_start_unix(today) + 6 * 3600 + 1800 ||
        rnd_range(s, 0, 400) == 0) {
        next_day(s);
    }
}

static void run_stream(uint64_t seed, risk_sector_map *map, long *allowed, long *refused)
{
    sim *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->rng = seed * 0x9e3779b97f4a7c15ULL + 1;
    s->map = map;
    risk_calendar_init(&s->cal, NULL, 0);
    risk_limits_default(&s->lim);
    s->lim.max_open_positions = (int32_t)rnd_range(s, 2, 10);
    s->acct = rnd(s) & 1 ? RISK_ACCOUNT_MARGIN : RISK_ACCOUNT_CASH;
    s->cash = rnd(s) & 1 ? RISK_USD(20000) : RISK_USD(100000);
    s->sod = s->peak = s->prev_close = s->cash;
    for (int i = 0; i < NSYM; i++) {
        s->px[i] = RISK_USD(rnd_range(s, 20, 400)) + rnd_range(s, 0, 99) * 10000;
    }
    /* A random weekday start in 2026-2027. */
    risk_day d = risk_day_from_ymd(2026, 1, 2) + (risk_day)rnd_range(s, 0, 700);
    if (!risk_cal_is_trading_day(&s->cal, d)) {
        d = risk_cal_next_trading_day(&s->cal, d);
    }
    s->now_ms = (risk_cal_session_start_unix(d) + 600) * 1000;
    for (int k = 0; k < 150; k++) {
        one_order(s);
        step_world(s);
    }
    *allowed += s->allowed;
    *refused += s->refused;
    free(s);
}

static void test_random_streams_stay_within_limits(void **state)
{
    risk_sector_map *map = NULL;
    long allowed = 0;
    long refused = 0;
    (void)state;
    assert_int_equal(risk_sectors_parse(csv, sizeof(csv) - 1, &map, NULL, 0), 0);
    for (uint64_t seed = 1; seed <= 3000; seed++) {
        run_stream(seed, map, &allowed, &refused);
    }
    /* The streams must exercise both outcomes, or the property says nothing. */
    print_message("allowed %ld, refused %ld\n", allowed, refused);
    assert_true(allowed > 50000);
    assert_true(refused > 50000);
    risk_sectors_destroy(map);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_streams_stay_within_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
