/*
 * tests/risk/test_engine.c — one table per risk rule (boundaries: exactly at the limit is
 * allowed, one cent or one micro-unit over is refused), breaker state changes, invalid input
 * (fails closed), limits validation against admin bounds, and determinism of the bytes.
 * PDT has its own file (test_pdt.c), random streams are in test_property.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "fixture.h"

static risk_sector_map *g_map;

static int load_map(void **state)
{
    FILE *f = fopen(TW_RISK_SECTORS_CSV_PATH, "rb");
    static char buf[1 << 17];
    size_t n;
    (void)state;
    if (f == NULL) {
        return -1;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return risk_sectors_parse(buf, n, &g_map, NULL, 0);
}

static int free_map(void **state)
{
    (void)state;
    risk_sectors_destroy(g_map);
    return 0;
}

typedef struct rule_case {
    const char *name;
    void (*setup)(fx *f);
    risk_code code;
    bool violation; /* expected presence of `code` */
    int allowed;    /* 1/0 expected decision, -1 = not checked */
} rule_case;

static void run_table(const rule_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const rule_case *c = &cases[i];
        fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        fx_init(f, g_map);
        c->setup(f);
        risk_rc rc = fx_decide(f);
        if (rc != RISK_OK) {
            fail_msg("%s: rc %d (%s)", c->name, rc, f->d.violations[0].message);
        }
        if (fx_has(&f->d, c->code) != c->violation) {
            fail_msg("%s: %s %s (first: %s)", c->name, risk_code_name(c->code),
                     c->violation ? "missing" : "unexpected",
                     f->d.n_violations ? f->d.violations[0].message : "none");
        }
        if (c->allowed >= 0 && f->d.allowed != (c->allowed == 1)) {
            fail_msg("%s: allowed=%d (first: %s)", c->name, f->d.allowed,
                     f->d.n_violations ? f->d.violations[0].message : "none");
        }
        if (f->d.allowed != (f->d.n_violations == 0)) {
            fail_msg("%s: allowed inconsistent with violations", c->name);
        }
        for (size_t k = 0; k < f->d.n_violations; k++) {
            if (f->d.violations[k].message[0] == '\0') {
                fail_msg("%s: violation without a message", c->name);
            }
        }
        free(f);
    }
}

#define RUN(table) run_table(table, sizeof(table) / sizeof(table[0]))

/* ------------------------------------------------------------------ trading state */

static void st_active(fx *f)
{
    (void)f;
}
static void st_user_halt(fx *f)
{
    f->s.halt_reasons = RISK_HALT_USER;
}
static void st_user_halt_reduce(fx *f)
{
    f->s.halt_reasons = RISK_HALT_USER;
    fx_pos(f, "AAPL", RISK_SHARES(50), RISK_USD(100));
    fx_intent(f, "AAPL", RISK_SELL, RISK_SHARES(50));
}
static void st_admin_halt(fx *f)
{
    f->s.halt_reasons = RISK_HALT_ADMIN;
}
static void st_halted_state(fx *f)
{
    f->s.state = RISK_STATE_HALTED;
}
static void st_reducing_open(fx *f)
{
    f->s.state = RISK_STATE_REDUCING;
}
static void st_reducing_reduce(fx *f)
{
    f->s.state = RISK_STATE_REDUCING;
    fx_pos(f, "AAPL", RISK_SHARES(50), RISK_USD(100));
    fx_intent(f, "AAPL", RISK_SELL, RISK_SHARES(20));
}
static void st_halt_flip(fx *f)
{
    f->s.halt_reasons = RISK_HALT_USER;
    fx_pos(f, "AAPL", RISK_SHARES(50), RISK_USD(100));
    fx_intent(f, "AAPL", RISK_SELL, RISK_SHARES(50) + 1); /* one nano-share past flat */
}
static void st_halt_pending_exceeds(fx *f)
{
    f->s.halt_reasons = RISK_HALT_USER;
    fx_pos(f, "AAPL", RISK_SHARES(50), RISK_USD(100));
    fx_open(f, "AAPL", RISK_SELL, RISK_SHARES(40), RISK_USD(100));
    fx_intent(f, "AAPL", RISK_SELL, RISK_SHARES(20));
}
static void st_halt_pending_fits(fx *f)
{
    st_halt_pending_exceeds(f);
    f->in.qty = RISK_SHARES(10);
}
static void st_halt_cover_short(fx *f)
{
    f->s.halt_reasons = RISK_HALT_ADMIN;
    fx_pos(f, "AAPL", -RISK_SHARES(30), RISK_USD(100));
    fx_intent(f, "AAPL", RISK_BUY, RISK_SHARES(30));
}
static void st_halt_add_short(fx *f)
{
    st_halt_cover_short(f);
    f->in.side = RISK_SELL;
}
static void st_breaker_active(fx *f)
{
    f->s.halt_reasons = RISK_HALT_BREAKER;
    f->s.breaker_reason = RISK_BREAKER_DAILY_LOSS;
    f->s.breaker_until_ms = f->now_ms + 1;
}
static void st_breaker_expired(fx *f)
{
    st_breaker_active(f);
    f->s.breaker_until_ms = f->now_ms;
}

static const rule_case state_cases[] = {
    {"active account may open", st_active, RISK_V_TRADING_HALTED, false, 1},
    {"user kill switch refuses an opening order", st_user_halt, RISK_V_TRADING_HALTED, true, 0},
    {"user kill switch allows a full exit", st_user_halt_reduce, RISK_V_TRADING_HALTED, false, 1},
    {"admin kill switch refuses an opening order", st_admin_halt, RISK_V_TRADING_HALTED, true, 0},
    {"stored HALTED state refuses", st_halted_state, RISK_V_TRADING_HALTED, true, 0},
    {"REDUCING refuses an opening order", st_reducing_open, RISK_V_TRADING_HALTED, true, 0},
    {"REDUCING allows a partial exit", st_reducing_reduce, RISK_V_TRADING_HALTED, false, 1},
    {"halted: selling past flat (flip) is refused", st_halt_flip, RISK_V_TRADING_HALTED, true, 0},
    {"halted: exit plus pending exits beyond the position is refused", st_halt_pending_exceeds,
     RISK_V_TRADING_HALTED, true, 0},
    {"halted: exit plus pending exits exactly flat is allowed", st_halt_pending_fits,
     RISK_V_TRADING_HALTED, false, 1},
    {"halted: buying to cover a short is allowed", st_halt_cover_short, RISK_V_TRADING_HALTED,
     false, 1},
    {"halted: adding to a short is refused", st_halt_add_short, RISK_V_TRADING_HALTED, true, 0},
    {"tripped breaker refuses until its time", st_breaker_active, RISK_V_TRADING_HALTED, true, 0},
    {"breaker at its expiry instant no longer refuses", st_breaker_expired, RISK_V_TRADING_HALTED,
     false, 1},
};

static void test_rule_trading_state(void **state)
{
    (void)state;
    RUN(state_cases);
}

static void test_breaker_expiry_clears(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    (void)state;
    fx_init(f, g_map);
    st_breaker_expired(f);
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_true(f->d.account.clear_breaker);
    assert_false(f->d.account.trip_breaker);
    assert_int_equal(f->d.account.effective_state, RISK_STATE_ACTIVE);
    st_breaker_active(f);
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_false(f->d.account.clear_breaker);
    assert_int_equal(f->d.account.effective_state, RISK_STATE_HALTED);
    assert_int_equal(f->d.account.breaker_reason, RISK_BREAKER_DAILY_LOSS);
    assert_non_null(strstr(fx_msg(&f->d, RISK_V_TRADING_HALTED), "circuit breaker"));
    free(f);
}

/* ------------------------------------------------------------------ daily loss */

static void dl_at_limit(fx *f)
{
    f->s.equity = RISK_USD(98000); /* loss 2,000.00 = 2 % of 100,000 */
    f->s.peak_equity = RISK_USD(100000);
}
static void dl_cent_over(fx *f)
{
    f->s.equity = RISK_USD(98000) - 10000; /* 2,000.01 */
}
static void dl_micro_over(fx *f)
{
    f->s.equity = RISK_USD(98000) - 1;
}
static void dl_abs_at(fx *f)
{
    f->l.daily_loss_abs = RISK_USD(500);
    f->s.equity = RISK_USD(99500);
}
static void dl_abs_over(fx *f)
{
    f->l.daily_loss_abs = RISK_USD(500);
    f->s.equity = RISK_USD(99500) - 10000;
}
static void dl_pct_off_abs_only(fx *f)
{
    f->l.daily_loss_bps = RISK_OFF;
    f->l.daily_loss_abs = RISK_USD(3000);
    f->s.equity = RISK_USD(97500); /* 2.5 %: over 2 % but under the absolute */
}
static void dl_off(fx *f)
{
    f->l.daily_loss_bps = RISK_OFF;
    f->l.drawdown_bps = RISK_OFF;
    f->s.equity = RISK_USD(50000);
}
static void dl_over_exit(fx *f)
{
    dl_cent_over(f);
    fx_pos(f, "AAPL", RISK_SHARES(10), RISK_USD(100));
    fx_intent(f, "AAPL", RISK_SELL, RISK_SHARES(10));
}
static void dl_gain(fx *f)
{
    f->s.equity = RISK_USD(150000);
    f->s.peak_equity = RISK_USD(150000);
}

static const rule_case loss_cases[] = {
    {"loss exactly 2 % is allowed", dl_at_limit, RISK_V_DAILY_LOSS_LIMIT, false, 1},
    {"loss one cent over 2 % trips", dl_cent_over, RISK_V_DAILY_LOSS_LIMIT, true, 0},
    {"loss one micro over 2 % trips", dl_micro_over, RISK_V_DAILY_LOSS_LIMIT, true, 0},
    {"absolute limit exactly is allowed", dl_abs_at, RISK_V_DAILY_LOSS_LIMIT, false, 1},
    {"absolute limit one cent over trips", dl_abs_over, RISK_V_DAILY_LOSS_LIMIT, true, 0},
    {"percent off: absolute alone governs", dl_pct_off_abs_only, RISK_V_DAILY_LOSS_LIMIT, false, 1},
    {"both off: any loss passes", dl_off, RISK_V_DAILY_LOSS_LIMIT, false, -1},
    {"over the limit an exit is still allowed", dl_over_exit, RISK_V_DAILY_LOSS_LIMIT, false, 1},
    {"a gain never trips", dl_gain, RISK_V_DAILY_LOSS_LIMIT, false, 1},
};

static void test_rule_daily_loss(void **state)
{
    (void)state;
    RUN(loss_cases);
}

typedef struct trip_case {
    const char *name;
    int64_t now_unix;
    int64_t until_unix;
} trip_case;

/* The breaker holds until the next trading day's 09:30 New York. */
static const trip_case trip_cases[] = {
    {"Wednesday 14:00 EDT -> Thursday 09:30 EDT", 1773252000, 1773322200},
    {"Friday 15:00 EST -> Monday after DST starts, 09:30 EDT", 1772827200, 1773063000},
    {"Thursday before Good Friday 2026 -> Monday April 6", 1775156400, 1775482200},
    {"Wednesday before Thanksgiving 2026 -> Friday Nov 27 09:30 EST", 1795633200, 1795789800},
    {"Saturday -> Monday", 1773504000, 1773667800},
    {"Thursday Dec 23 2027 -> Monday Dec 27 (Christmas observed Friday)", 1829588400, 1829917800},
};

static void test_breaker_trip_until_next_session(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(trip_cases) / sizeof(trip_cases[0]); i++) {
        fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        fx_init(f, g_map);
        f->now_ms = trip_cases[i].now_unix * 1000;
        dl_cent_over(f);
        assert_int_equal(fx_decide(f), RISK_OK);
        if (!f->d.account.trip_breaker || f->d.account.trip_reason != RISK_BREAKER_DAILY_LOSS ||
            f->d.account.trip_until_ms != trip_cases[i].until_unix * 1000) {
            fail_msg("%s: trip %d until %lld", trip_cases[i].name, f->d.account.trip_breaker,
                     (long long)f->d.account.trip_until_ms / 1000);
        }
        assert_true(f->d.account.halt_reasons & RISK_HALT_BREAKER);
        assert_int_equal(f->d.account.effective_state, RISK_STATE_HALTED);
        free(f);
    }
}

/* ------------------------------------------------------------------ drawdown */

static void dd_at(fx *f)
{
    f->s.peak_equity = RISK_USD(110000);
    f->s.sod_equity = RISK_USD(104000);
    f->s.equity = RISK_USD(104500); /* 5,500 = 5 % of 110,000 */
}
static void dd_cent_over(fx *f)
{
    dd_at(f);
    f->s.equity -= 10000;
}
static void dd_peak_below_equity(fx *f)
{
    f->s.peak_equity = RISK_USD(90000); /* stale peak: the engine uses max(peak, equity) */
}
static void dd_exit(fx *f)
{
    dd_cent_over(f);
    fx_pos(f, "AAPL", RISK_SHARES(10), RISK_USD(100));
    fx_intent(f, "AAPL", RISK_SELL, RISK_SHARES(5));
}
static void dd_off(fx *f)
{
    dd_cent_over(f);
    f->l.drawdown_bps = RISK_OFF;
}

static const rule_case dd_cases[] = {
    {"drawdown exactly 5 % is allowed", dd_at, RISK_V_DRAWDOWN, false, 1},
    {"drawdown one cent over trips", dd_cent_over, RISK_V_DRAWDOWN, true, 0},
    {"a stale peak below equity is ignored", dd_peak_below_equity, RISK_V_DRAWDOWN, false, 1},
    {"over the drawdown an exit is allowed", dd_exit, RISK_V_DRAWDOWN, false, 1},
    {"drawdown off", dd_off, RISK_V_DRAWDOWN, false, 1},
};

static void test_rule_drawdown(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    (void)state;
    RUN(dd_cases);
    /* Both breakers at once: both violations, loss is the recorded reason. */
    fx_init(f, g_map);
    f->s.peak_equity = RISK_USD(120000);
    f->s.equity = RISK_USD(90000);
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_true(fx_has(&f->d, RISK_V_DAILY_LOSS_LIMIT));
    assert_true(fx_has(&f->d, RISK_V_DRAWDOWN));
    assert_int_equal(f->d.account.trip_reason, RISK_BREAKER_DAILY_LOSS);
    /* Breaker already tripped earlier: no second trip, reported as halted. */
    f->s.halt_reasons = RISK_HALT_BREAKER;
    f->s.breaker_reason = RISK_BREAKER_DRAWDOWN;
    f->s.breaker_until_ms = f->now_ms + 3600000;
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_false(f->d.account.trip_breaker);
    assert_true(fx_has(&f->d, RISK_V_TRADING_HALTED));
    assert_false(fx_has(&f->d, RISK_V_DAILY_LOSS_LIMIT));
    assert_non_null(strstr(fx_msg(&f->d, RISK_V_TRADING_HALTED), "drawdown"));
    free(f);
}

/* ------------------------------------------------------------------ max open positions */

static const char *const syms[] = {"MSFT", "NVDA", "AMZN", "GOOGL", "META", "JPM",
                                   "V",    "UNH",  "XOM",  "JNJ",   "PG",   "HD"};

static void hold(fx *f, int n)
{
    for (int i = 0; i < n; i++) {
        fx_pos(f, syms[i], RISK_SHARES(1), RISK_USD(100));
    }
}
static void mp_nine(fx *f)
{
    hold(f, 9);
}
static void mp_ten(fx *f)
{
    hold(f, 10);
}
static void mp_nine_plus_pending(fx *f)
{
    hold(f, 9);
    fx_open(f, "KO", RISK_BUY, RISK_SHARES(1), RISK_USD(100));
}
static void mp_pending_twice_same_symbol(fx *f)
{
    hold(f, 8);
    fx_open(f, "KO", RISK_BUY, RISK_SHARES(1), RISK_USD(100));
    fx_open(f, "KO", RISK_BUY, RISK_SHARES(2), RISK_USD(100));
}
static void mp_pending_on_held(fx *f)
{
    hold(f, 9);
    fx_open(f, "MSFT", RISK_BUY, RISK_SHARES(1), RISK_USD(100));
}
static void mp_ten_add_held(fx *f)
{
    hold(f, 10);
    fx_intent(f, "MSFT", RISK_BUY, RISK_SHARES(1));
}
static void mp_pending_same_as_intent(fx *f)
{
    hold(f, 9);
    fx_open(f, "AAPL", RISK_BUY, RISK_SHARES(1), RISK_USD(100));
}
static void mp_zero_rows_ignored(fx *f)
{
    hold(f, 9);
    fx_pos(f, "KO", 0, RISK_USD(100));
}
static void mp_off(fx *f)
{
    hold(f, 12);
    f->l.max_open_positions = RISK_OFF;
}
static void mp_zero_limit(fx *f)
{
    f->l.max_open_positions = 0;
}

static const rule_case mp_cases[] = {
    {"9 held + new symbol = 10 is allowed", mp_nine, RISK_V_MAX_POSITIONS, false, 1},
    {"10 held + new symbol is refused", mp_ten, RISK_V_MAX_POSITIONS, true, 0},
    {"9 held + 1 pending entry + new is refused", mp_nine_plus_pending, RISK_V_MAX_POSITIONS, true,
     0},
    {"two pending orders in one symbol count once", mp_pending_twice_same_symbol,
     RISK_V_MAX_POSITIONS, false, 1},
    {"a pending order in a held symbol is not an entry", mp_pending_on_held, RISK_V_MAX_POSITIONS,
     false, 1},
    {"adding to a held symbol at the limit is allowed", mp_ten_add_held, RISK_V_MAX_POSITIONS,
     false, 1},
    {"a symbol already pending is not new", mp_pending_same_as_intent, RISK_V_MAX_POSITIONS, false,
     1},
    {"flat position rows are ignored", mp_zero_rows_ignored, RISK_V_MAX_POSITIONS, false, 1},
    {"limit off", mp_off, RISK_V_MAX_POSITIONS, false, 1},
    {"limit 0 refuses any new symbol", mp_zero_limit, RISK_V_MAX_POSITIONS, true, 0},
};

static void test_rule_max_positions(void **state)
{
    (void)state;
    RUN(mp_cases);
}

/* ------------------------------------------------------------------ sector concentration */

/* Equity 100,000 -> 25 % = 25,000. Notional limit off to isolate the rule. */
static void sc_base(fx *f)
{
    f->l.max_order_notional_bps = RISK_OFF;
    f->l.max_open_positions = RISK_OFF;
    fx_pos(f, "AAPL", RISK_SHARES(200), RISK_USD(100)); /* IT 20,000 */
}
static void sc_at(fx *f)
{
    sc_base(f);
    fx_intent(f, "MSFT", RISK_BUY, RISK_SHARES(50)); /* +5,000 = 25,000 */
}
static void sc_cent_over(fx *f)
{
    sc_base(f);
    fx_intent(f, "MSFT", RISK_BUY, RISK_SHARES(1));
    f->s.ref_price = RISK_USD(5000) + 10000; /* 5,000.01 */
}
static void sc_same_symbol_at(fx *f)
{
    sc_base(f);
    fx_intent(f, "AAPL", RISK_BUY, RISK_SHARES(50));
}
static void sc_same_symbol_over(fx *f)
{
    sc_base(f);
    fx_intent(f, "AAPL", RISK_BUY, RISK_SHARES(50) + 1);
}
static void sc_other_sector(fx *f)
{
    sc_base(f);
    fx_pos(f, "XOM", RISK_SHARES(300), RISK_USD(100)); /* Energy 30,000, not IT */
    fx_intent(f, "MSFT", RISK_BUY, RISK_SHARES(50));
}
static void sc_pending_entry_counts(fx *f)
{
    sc_at(f);
    fx_open(f, "NVDA", RISK_BUY, RISK_SHARES(10), RISK_USD(100));
}
static void sc_pending_exit_ignored(fx *f)
{
    sc_at(f);
    fx_open(f, "AAPL", RISK_SELL, RISK_SHARES(10), RISK_USD(100));
}
static void sc_short_counts_gross(fx *f)
{
    f->l.max_order_notional_bps = RISK_OFF;
    fx_pos(f, "MSFT", -RISK_SHARES(200), RISK_USD(100));
    fx_intent(f, "AAPL", RISK_BUY, RISK_SHARES(51));
}
static void sc_unknown_collective_at(fx *f)
{
    f->l.max_order_notional_bps = RISK_OFF;
    fx_pos(f, "ZZZA", RISK_SHARES(200), RISK_USD(100));
    fx_intent(f, "ZZZB", RISK_BUY, RISK_SHARES(50));
}
static void sc_unknown_collective_over(fx *f)
{
    sc_unknown_collective_at(f);
    f->in.qty += 1;
}
static void sc_unknown_own_limit(fx *f)
{
    sc_unknown_collective_at(f);
    f->l.unknown_sector_max_bps = 2000;
}
static void sc_no_map(fx *f)
{
    sc_at(f);
    f->s.sectors = NULL; /* AAPL and MSFT both UNKNOWN: 25,000 still at the limit */
}
static void sc_reduce_when_over(fx *f)
{
    f->l.max_order_notional_bps = RISK_OFF;
    fx_pos(f, "AAPL", RISK_SHARES(400), RISK_USD(100)); /* 40 % */
    fx_intent(f, "AAPL", RISK_SELL, RISK_SHARES(10));
}
static void sc_flip_counts_new_side(fx *f)
{
    f->l.max_order_notional_bps = RISK_OFF;
    fx_pos(f, "AAPL", RISK_SHARES(100), RISK_USD(100));
    fx_intent(f, "AAPL", RISK_SELL, RISK_SHARES(351)); /* short 251 -> 25,100 */
}
static void sc_zero_equity(fx *f)
{
    f->s.equity = 0;
    f->s.sod_equity = 0;
    f->s.peak_equity = 0;
}

static const rule_case sc_cases[] = {
    {"sector exactly at 25 % is allowed", sc_at, RISK_V_SECTOR_CONCENTRATION, false, 1},
    {"sector one cent over 25 % is refused", sc_cent_over, RISK_V_SECTOR_CONCENTRATION, true, 0},
    {"same symbol up to 25 % is allowed", sc_same_symbol_at, RISK_V_SECTOR_CONCENTRATION, false, 1},
    {"same symbol one nano-share over is refused", sc_same_symbol_over, RISK_V_SECTOR_CONCENTRATION,
     true, 0},
    {"other sectors do not count", sc_other_sector, RISK_V_SECTOR_CONCENTRATION, false, 1},
    {"pending entries in the sector count", sc_pending_entry_counts, RISK_V_SECTOR_CONCENTRATION,
     true, 0},
    {"pending exits do not count", sc_pending_exit_ignored, RISK_V_SECTOR_CONCENTRATION, false, 1},
    {"short positions count gross", sc_short_counts_gross, RISK_V_SECTOR_CONCENTRATION, true, 0},
    {"unknown symbols share one bucket: at the limit", sc_unknown_collective_at,
     RISK_V_SECTOR_CONCENTRATION, false, 1},
    {"unknown symbols share one bucket: over", sc_unknown_collective_over,
     RISK_V_SECTOR_CONCENTRATION, true, 0},
    {"unknown bucket has its own limit", sc_unknown_own_limit, RISK_V_SECTOR_CONCENTRATION, true,
     0},
    {"no sector map: everything is UNKNOWN", sc_no_map, RISK_V_SECTOR_CONCENTRATION, false, 1},
    {"reducing an over-limit sector is allowed", sc_reduce_when_over, RISK_V_SECTOR_CONCENTRATION,
     false, 1},
    {"a flip counts the new side", sc_flip_counts_new_side, RISK_V_SECTOR_CONCENTRATION, true, 0},
    {"zero equity refuses any exposure", sc_zero_equity, RISK_V_SECTOR_CONCENTRATION, true, 0},
};

static void test_rule_sector(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    (void)state;
    RUN(sc_cases);
    fx_init(f, g_map);
    sc_unknown_collective_over(f);
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_non_null(strstr(fx_msg(&f->d, RISK_V_SECTOR_CONCENTRATION), "UNKNOWN"));
    fx_init(f, g_map);
    sc_cent_over(f);
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_non_null(strstr(fx_msg(&f->d, RISK_V_SECTOR_CONCENTRATION), "Information Technology"));
    free(f);
}

/* ------------------------------------------------------------------ max order notional */

static void mn_at(fx *f)
{
    f->in.qty = RISK_SHARES(100); /* 100 x 100 = 10,000 = 10 % */
}
static void mn_cent_over(fx *f)
{
    f->in.qty = RISK_SHARES(100);
    f->in.type = RISK_ORDER_LIMIT;
    f->in.limit_price = RISK_USD(100) + 100; /* 100.0001 x 100 = 10,000.01 */
}
static void mn_limit_below_ref_uses_ref(fx *f)
{
    f->in.qty = RISK_SHARES(101);
    f->in.type = RISK_ORDER_LIMIT;
    f->in.limit_price = RISK_USD(98); /* 9,898 at the limit, but 10,100 at the reference */
}
static void mn_fractional(fx *f)
{
    f->in.qty = RISK_SHARES(1) / 2;
    f->s.ref_price = RISK_USD(20000) + 20000; /* 0.5 x 20,000.02 = 10,000.01 */
}
static void mn_fractional_rounds_up(fx *f)
{
    /* one nano-share x $100 = $0.0000001 -> rounds up to one micro-dollar, which is above
     * 10 % of an equity of nine micro-dollars (0.9). Truncation would have said 0. */
    f->in.qty = 1;
    f->s.equity = f->s.sod_equity = f->s.peak_equity = 9;
}
static void mn_exit_exempt(fx *f)
{
    fx_pos(f, "AAPL", RISK_SHARES(500), RISK_USD(100));
    fx_intent(f, "AAPL", RISK_SELL, RISK_SHARES(500));
    f->l.sector_max_bps = RISK_OFF;
}
static void mn_stop_uses_stop(fx *f)
{
    f->in.qty = RISK_SHARES(100);
    f->in.type = RISK_ORDER_STOP;
    f->in.stop_price = RISK_USD(101);
}

static const rule_case mn_cases[] = {
    {"notional exactly 10 % is allowed", mn_at, RISK_V_MAX_ORDER_NOTIONAL, false, 1},
    {"notional one cent over is refused", mn_cent_over, RISK_V_MAX_ORDER_NOTIONAL, true, 0},
    {"a limit below the reference is priced at the reference", mn_limit_below_ref_uses_ref,
     RISK_V_MAX_ORDER_NOTIONAL, true, 0},
    {"fractional shares: one cent over is refused", mn_fractional, RISK_V_MAX_ORDER_NOTIONAL, true,
     0},
    {"sub-micro notionals round up, never to zero", mn_fractional_rounds_up,
     RISK_V_MAX_ORDER_NOTIONAL, true, 0},
    {"a full exit is exempt", mn_exit_exempt, RISK_V_MAX_ORDER_NOTIONAL, false, 1},
    {"a buy stop is priced at its stop", mn_stop_uses_stop, RISK_V_MAX_ORDER_NOTIONAL, true, 0},
};

static void test_rule_order_notional(void **state)
{
    (void)state;
    RUN(mn_cases);
}

/* ------------------------------------------------------------------ price collar */

static void pc_limit(fx *f, risk_price px)
{
    f->in.type = RISK_ORDER_LIMIT;
    f->in.limit_price = px;
    f->in.qty = RISK_SHARES(1);
}
static void pc_upper_at(fx *f)
{
    pc_limit(f, RISK_USD(110));
}
static void pc_upper_over(fx *f)
{
    pc_limit(f, RISK_USD(110) + 1);
}
static void pc_lower_at(fx *f)
{
    pc_limit(f, RISK_USD(90));
}
static void pc_lower_cent_under(fx *f)
{
    pc_limit(f, RISK_USD(90) - 10000);
}
static void pc_stop_limit(fx *f)
{
    pc_limit(f, RISK_USD(120));
    f->in.type = RISK_ORDER_STOP_LIMIT;
    f->in.stop_price = RISK_USD(119);
}
static void pc_market_ignored(fx *f)
{
    f->in.qty = RISK_SHARES(1);
}
static void pc_exit_also_collared(fx *f)
{
    fx_pos(f, "AAPL", RISK_SHARES(1), RISK_USD(100));
    pc_limit(f, RISK_USD(50));
    f->in.side = RISK_SELL;
}
static void pc_off(fx *f)
{
    pc_limit(f, RISK_USD(50));
    f->l.price_collar_bps = RISK_OFF;
}
static void pc_no_reference(fx *f)
{
    pc_limit(f, RISK_USD(100));
    f->s.ref_price = 0;
}

static const rule_case pc_cases[] = {
    {"limit exactly 10 % above reference is allowed", pc_upper_at, RISK_V_PRICE_COLLAR, false, 1},
    {"limit one micro above the collar is refused", pc_upper_over, RISK_V_PRICE_COLLAR, true, 0},
    {"limit exactly 10 % below reference is allowed", pc_lower_at, RISK_V_PRICE_COLLAR, false, 1},
    {"limit one cent below the collar is refused", pc_lower_cent_under, RISK_V_PRICE_COLLAR, true,
     0},
    {"stop-limit orders are collared on the limit", pc_stop_limit, RISK_V_PRICE_COLLAR, true, -1},
    {"market orders have no collar", pc_market_ignored, RISK_V_PRICE_COLLAR, false, 1},
    {"exits are collared too", pc_exit_also_collared, RISK_V_PRICE_COLLAR, true, 0},
    {"collar off", pc_off, RISK_V_PRICE_COLLAR, false, 1},
    {"no reference price refuses a limit order", pc_no_reference, RISK_V_NO_REFERENCE_PRICE, true,
     0},
};

static void test_rule_price_collar(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    (void)state;
    RUN(pc_cases);
    /* A reduce-only market exit needs no reference price. */
    fx_init(f, g_map);
    fx_pos(f, "AAPL", RISK_SHARES(5), RISK_USD(100));
    fx_intent(f, "AAPL", RISK_SELL, RISK_SHARES(5));
    f->s.ref_price = 0;
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_true(f->d.allowed);
    /* An opening market order without a reference price cannot be sized: refused. */
    fx_init(f, g_map);
    f->s.ref_price = 0;
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_true(fx_has(&f->d, RISK_V_NO_REFERENCE_PRICE));
    free(f);
}

/* ------------------------------------------------------------------ duplicate and rate */

static void du_4999(fx *f)
{
    fx_recent(f, "AAPL", RISK_BUY, RISK_SHARES(10), 4999);
}
static void du_5000(fx *f)
{
    fx_recent(f, "AAPL", RISK_BUY, RISK_SHARES(10), 5000);
}
static void du_other_qty(fx *f)
{
    fx_recent(f, "AAPL", RISK_BUY, RISK_SHARES(10) + 1, 100);
}
static void du_other_side(fx *f)
{
    fx_pos(f, "AAPL", RISK_SHARES(100), RISK_USD(100));
    fx_recent(f, "AAPL", RISK_SELL, RISK_SHARES(10), 100);
}
static void du_other_symbol(fx *f)
{
    fx_recent(f, "AAP", RISK_BUY, RISK_SHARES(10), 100);
}
static void du_garbage_after_nul(fx *f)
{
    fx_recent(f, "AAPL", RISK_BUY, RISK_SHARES(10), 100);
    memcpy(f->recent[0].symbol + 5, "JUNKJUNK", 8);
}
static void du_future_timestamp(fx *f)
{
    fx_recent(f, "AAPL", RISK_BUY, RISK_SHARES(10), -2000); /* clock skew between replicas */
}
static void du_off(fx *f)
{
    du_4999(f);
    f->l.duplicate_window_ms = RISK_OFF;
}
static void du_exit_duplicate(fx *f)
{
    fx_pos(f, "AAPL", RISK_SHARES(100), RISK_USD(100));
    fx_intent(f, "AAPL", RISK_SELL, RISK_SHARES(10));
    fx_recent(f, "AAPL", RISK_SELL, RISK_SHARES(10), 1000);
}

static const rule_case du_cases[] = {
    {"identical order 4.999 s ago is refused", du_4999, RISK_V_DUPLICATE_ORDER, true, 0},
    {"identical order exactly 5 s ago is allowed", du_5000, RISK_V_DUPLICATE_ORDER, false, 1},
    {"different quantity is not a duplicate", du_other_qty, RISK_V_DUPLICATE_ORDER, false, 1},
    {"different side is not a duplicate", du_other_side, RISK_V_DUPLICATE_ORDER, false, 1},
    {"different symbol is not a duplicate", du_other_symbol, RISK_V_DUPLICATE_ORDER, false, 1},
    {"bytes after the symbol's NUL do not matter", du_garbage_after_nul, RISK_V_DUPLICATE_ORDER,
     true, 0},
    {"a future timestamp counts as recent", du_future_timestamp, RISK_V_DUPLICATE_ORDER, true, 0},
    {"duplicate check off", du_off, RISK_V_DUPLICATE_ORDER, false, 1},
    {"duplicate exits are refused too", du_exit_duplicate, RISK_V_DUPLICATE_ORDER, true, 0},
};

static void test_rule_duplicate(void **state)
{
    (void)state;
    RUN(du_cases);
}

static void recent_n(fx *f, int n, int64_t ago)
{
    for (int i = 0; i < n; i++) {
        fx_recent(f, syms[i], RISK_BUY, RISK_SHARES(1), ago);
    }
}
static void rt_four(fx *f)
{
    recent_n(f, 4, 10);
}
static void rt_five(fx *f)
{
    recent_n(f, 5, 10);
}
static void rt_five_one_aged(fx *f)
{
    recent_n(f, 4, 999);
    fx_recent(f, "KO", RISK_BUY, RISK_SHARES(1), 1000);
}
static void rt_many_old(fx *f)
{
    recent_n(f, 12, 1500);
}
static void rt_off(fx *f)
{
    rt_five(f);
    f->l.max_orders_per_window = RISK_OFF;
}

static const rule_case rt_cases[] = {
    {"4 orders in the last second + this = 5 is allowed", rt_four, RISK_V_ORDER_RATE, false, 1},
    {"5 orders in the last second + this is refused", rt_five, RISK_V_ORDER_RATE, true, 0},
    {"an order exactly 1 s old has left the window", rt_five_one_aged, RISK_V_ORDER_RATE, false, 1},
    {"older orders do not count", rt_many_old, RISK_V_ORDER_RATE, false, 1},
    {"rate limit off", rt_off, RISK_V_ORDER_RATE, false, 1},
};

static void test_rule_order_rate(void **state)
{
    (void)state;
    RUN(rt_cases);
}

/* ------------------------------------------------------------------ every violation */

static void test_reports_every_violation(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    (void)state;
    fx_init(f, g_map);
    hold(f, 10);
    f->s.halt_reasons = RISK_HALT_USER;
    f->s.equity = RISK_USD(90000);
    f->s.peak_equity = RISK_USD(100000);
    f->in.type = RISK_ORDER_LIMIT;
    f->in.limit_price = RISK_USD(200);
    f->in.qty = RISK_SHARES(1000);
    recent_n(f, 5, 10);
    fx_recent(f, "AAPL", RISK_BUY, RISK_SHARES(1000), 10);
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_false(f->d.allowed);
    const risk_code want[] = {
        RISK_V_TRADING_HALTED, RISK_V_DAILY_LOSS_LIMIT,     RISK_V_DRAWDOWN,
        RISK_V_MAX_POSITIONS,  RISK_V_SECTOR_CONCENTRATION, RISK_V_MAX_ORDER_NOTIONAL,
        RISK_V_PRICE_COLLAR,   RISK_V_DUPLICATE_ORDER,      RISK_V_ORDER_RATE};
    assert_int_equal(f->d.n_violations, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(f->d.violations[i].code, want[i]); /* rule order */
        assert_string_not_equal(risk_code_name(want[i]), "unknown");
    }
    assert_true(f->d.account.trip_breaker);
    free(f);
}

/* ------------------------------------------------------------------ invalid input */

static void bad_symbol_lower(fx *f)
{
    fx_sym(f->in.symbol, "aapl");
}
static void bad_symbol_empty(fx *f)
{
    fx_sym(f->in.symbol, "");
}
static void bad_symbol_no_nul(fx *f)
{
    memset(f->in.symbol, 'A', RISK_SYMBOL_MAX);
}
static void bad_symbol_space(fx *f)
{
    fx_sym(f->in.symbol, "AA PL");
}
static void bad_qty_zero(fx *f)
{
    f->in.qty = 0;
}
static void bad_qty_negative(fx *f)
{
    f->in.qty = -RISK_SHARES(1);
}
static void bad_limit_missing(fx *f)
{
    f->in.type = RISK_ORDER_LIMIT;
}
static void bad_stop_missing(fx *f)
{
    f->in.type = RISK_ORDER_STOP;
}
static void bad_side(fx *f)
{
    f->in.side = (risk_side)0;
}
static void bad_type(fx *f)
{
    f->in.type = (risk_order_type)9;
}
static void bad_no_calendar(fx *f)
{
    f->s.calendar = NULL;
}
static void bad_too_many_positions(fx *f)
{
    f->s.n_positions = RISK_MAX_POSITIONS + 1;
}
static void bad_null_array(fx *f)
{
    f->s.n_fills_today = 1;
    f->s.fills_today = NULL;
}
static void bad_duplicate_rows(fx *f)
{
    fx_pos(f, "MSFT", RISK_SHARES(1), RISK_USD(1));
    fx_pos(f, "MSFT", RISK_SHARES(2), RISK_USD(1));
}
static void bad_position_price(fx *f)
{
    fx_pos(f, "MSFT", RISK_SHARES(1), 0);
}
static void bad_open_order_qty(fx *f)
{
    fx_open(f, "MSFT", RISK_BUY, 0, RISK_USD(1));
}
static void bad_fill_side(fx *f)
{
    fx_fill(f, "MSFT", (risk_side)7, RISK_SHARES(1), 5, 1);
}
static void bad_limits_bps(fx *f)
{
    f->l.sector_max_bps = 10001;
}
static void bad_limits_negative(fx *f)
{
    f->l.max_open_positions = -2;
}
static void bad_account_type(fx *f)
{
    f->s.account_type = (risk_account_type)0;
}
static void bad_pdt_window(fx *f)
{
    f->s.pdt.window_days = 0;
}
static void bad_state(fx *f)
{
    f->s.state = (risk_trading_state)5;
}

static const rule_case bad_cases[] = {
    {"lowercase symbol", bad_symbol_lower, RISK_V_INVALID_INPUT, true, 0},
    {"empty symbol", bad_symbol_empty, RISK_V_INVALID_INPUT, true, 0},
    {"symbol without NUL", bad_symbol_no_nul, RISK_V_INVALID_INPUT, true, 0},
    {"symbol with a space", bad_symbol_space, RISK_V_INVALID_INPUT, true, 0},
    {"zero quantity", bad_qty_zero, RISK_V_INVALID_INPUT, true, 0},
    {"negative quantity", bad_qty_negative, RISK_V_INVALID_INPUT, true, 0},
    {"limit order without a price", bad_limit_missing, RISK_V_INVALID_INPUT, true, 0},
    {"stop order without a stop", bad_stop_missing, RISK_V_INVALID_INPUT, true, 0},
    {"unknown side", bad_side, RISK_V_INVALID_INPUT, true, 0},
    {"unknown type", bad_type, RISK_V_INVALID_INPUT, true, 0},
    {"no calendar", bad_no_calendar, RISK_V_INVALID_INPUT, true, 0},
    {"too many positions", bad_too_many_positions, RISK_V_INVALID_INPUT, true, 0},
    {"NULL array with a count", bad_null_array, RISK_V_INVALID_INPUT, true, 0},
    {"two rows for one symbol", bad_duplicate_rows, RISK_V_INVALID_INPUT, true, 0},
    {"position without a price", bad_position_price, RISK_V_INVALID_INPUT, true, 0},
    {"open order with zero quantity", bad_open_order_qty, RISK_V_INVALID_INPUT, true, 0},
    {"fill with an unknown side", bad_fill_side, RISK_V_INVALID_INPUT, true, 0},
    {"limit above 100 %", bad_limits_bps, RISK_V_INVALID_INPUT, true, 0},
    {"negative limit other than RISK_OFF", bad_limits_negative, RISK_V_INVALID_INPUT, true, 0},
    {"unknown account type", bad_account_type, RISK_V_INVALID_INPUT, true, 0},
    {"PDT window 0", bad_pdt_window, RISK_V_INVALID_INPUT, true, 0},
    {"unknown trading state", bad_state, RISK_V_INVALID_INPUT, true, 0},
};

static void test_invalid_input_fails_closed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        fx_init(f, g_map);
        bad_cases[i].setup(f);
        if (fx_decide(f) != RISK_EINVAL || f->d.allowed || !fx_has(&f->d, RISK_V_INVALID_INPUT)) {
            fail_msg("%s: not refused as invalid", bad_cases[i].name);
        }
        free(f);
    }
}

static void test_null_arguments(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    risk_assessment a;
    (void)state;
    fx_init(f, g_map);
    assert_int_equal(risk_decide(&f->in, &f->s, &f->l, f->now_ms, NULL), RISK_EINVAL);
    assert_int_equal(risk_decide(NULL, &f->s, &f->l, f->now_ms, &f->d), RISK_EINVAL);
    assert_false(f->d.allowed);
    assert_int_equal(risk_decide(&f->in, NULL, &f->l, f->now_ms, &f->d), RISK_EINVAL);
    assert_false(f->d.allowed);
    assert_int_equal(risk_decide(&f->in, &f->s, NULL, f->now_ms, &f->d), RISK_EINVAL);
    assert_false(f->d.allowed);
    assert_int_equal(risk_assess(NULL, &f->l, f->now_ms, &a), RISK_EINVAL);
    assert_int_equal(risk_assess(&f->s, &f->l, f->now_ms, NULL), RISK_EINVAL);
    free(f);
}

/* Snapshots past the stack workspace use the heap path: same answers. */
static void test_large_snapshot(void **state)
{
    static risk_position pos[RISK_MAX_POSITIONS];
    fx *f = calloc(1, sizeof(*f));
    (void)state;
    fx_init(f, g_map);
    for (int i = 0; i < RISK_MAX_POSITIONS; i++) {
        snprintf(pos[i].symbol, sizeof(pos[i].symbol), "Z%d", i);
        pos[i].qty = RISK_SHARES(1);
        pos[i].last_price = RISK_USD(1);
    }
    f->s.positions = pos;
    f->s.n_positions = RISK_MAX_POSITIONS;
    f->l.max_open_positions = RISK_MAX_POSITIONS;
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_true(fx_has(&f->d, RISK_V_MAX_POSITIONS));
    assert_int_equal(f->d.account.open_positions, RISK_MAX_POSITIONS);
    fx_intent(f, "Z7", RISK_SELL, RISK_SHARES(1));
    assert_int_equal(fx_decide(f), RISK_OK);
    assert_true(f->d.allowed);
    assert_true(f->d.reduce_only);
    free(f);
}

/* ------------------------------------------------------------------ limits validation */

static void test_limits_check_and_bounds(void **state)
{
    risk_limits l;
    risk_limits b;
    char err[128];
    (void)state;
    risk_limits_default(&l);
    risk_limits_default(&b);
    assert_int_equal(risk_limits_check(&l, NULL, err, sizeof(err)), 0);
    assert_int_equal(risk_limits_check(&l, &b, err, sizeof(err)), 0);
    l.sector_max_bps = 2600; /* looser than the admin's 25 % */
    assert_int_equal(risk_limits_check(&l, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "sector_max_bps"));
    l.sector_max_bps = 2000; /* stricter: fine */
    assert_int_equal(risk_limits_check(&l, &b, err, sizeof(err)), 0);
    l.drawdown_bps = RISK_OFF; /* off is the loosest */
    assert_int_equal(risk_limits_check(&l, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "drawdown_bps"));
    l.drawdown_bps = 500;
    l.duplicate_window_ms = 4000; /* a shorter window is looser */
    assert_int_equal(risk_limits_check(&l, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "duplicate_window_ms"));
    l.duplicate_window_ms = 6000;
    assert_int_equal(risk_limits_check(&l, &b, err, sizeof(err)), 0);
    b.max_open_positions = RISK_OFF; /* admin leaves it open */
    l.max_open_positions = 50;
    assert_int_equal(risk_limits_check(&l, &b, err, sizeof(err)), 0);
    l.daily_loss_abs = -5;
    assert_int_equal(risk_limits_check(&l, NULL, err, sizeof(err)), -1);
    l.daily_loss_abs = RISK_USD(100);
    l.rate_window_ms = 0;
    assert_int_equal(risk_limits_check(&l, NULL, err, sizeof(err)), -1);
    assert_int_equal(risk_limits_check(NULL, NULL, err, sizeof(err)), -1);
}

/* ------------------------------------------------------------------ determinism, assess */

static void test_determinism_bytes(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    risk_decision *a = malloc(sizeof(*a));
    risk_decision *b = malloc(sizeof(*b));
    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    fx_init(f, g_map);
    hold(f, 10);
    f->s.equity = RISK_USD(97000);
    fx_recent(f, "AAPL", RISK_BUY, RISK_SHARES(10), 100);
    memset(a, 0xAA, sizeof(*a)); /* different garbage before each call */
    memset(b, 0x55, sizeof(*b));
    assert_int_equal(risk_decide(&f->in, &f->s, &f->l, f->now_ms, a), RISK_OK);
    assert_int_equal(risk_decide(&f->in, &f->s, &f->l, f->now_ms, b), RISK_OK);
    assert_memory_equal(a, b, sizeof(*a));
    /* And the inputs were not modified. */
    assert_int_equal(f->s.n_positions, 10);
    assert_int_equal(f->s.equity, RISK_USD(97000));
    free(a);
    free(b);
    free(f);
}

static void test_assess(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    risk_assessment a;
    (void)state;
    fx_init(f, g_map);
    hold(f, 3);
    fx_open(f, "KO", RISK_BUY, RISK_SHARES(1), RISK_USD(50));
    f->s.equity = RISK_USD(99000);
    f->s.peak_equity = RISK_USD(101000);
    assert_int_equal(risk_assess(&f->s, &f->l, f->now_ms, &a), RISK_OK);
    assert_int_equal(a.open_positions, 4);
    assert_true(a.day_pnl == -RISK_USD(1000));
    assert_true(a.daily_loss_limit == RISK_USD(2000));
    assert_true(a.drawdown == RISK_USD(2000));
    assert_true(a.drawdown_limit == RISK_USD(5050));
    assert_false(a.trip_breaker);
    assert_int_equal(a.effective_state, RISK_STATE_ACTIVE);
    assert_int_equal(a.day_trades_in_window, 0);
    assert_false(a.pdt_applies);
    assert_int_equal(a.trade_date, risk_day_from_ymd(2026, 3, 11));
    f->s.equity = RISK_USD(97000);
    assert_int_equal(risk_assess(&f->s, &f->l, f->now_ms, &a), RISK_OK);
    assert_true(a.trip_breaker);
    assert_int_equal(a.effective_state, RISK_STATE_HALTED);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_trading_state),
        cmocka_unit_test(test_breaker_expiry_clears),
        cmocka_unit_test(test_rule_daily_loss),
        cmocka_unit_test(test_breaker_trip_until_next_session),
        cmocka_unit_test(test_rule_drawdown),
        cmocka_unit_test(test_rule_max_positions),
        cmocka_unit_test(test_rule_sector),
        cmocka_unit_test(test_rule_order_notional),
        cmocka_unit_test(test_rule_price_collar),
        cmocka_unit_test(test_rule_duplicate),
        cmocka_unit_test(test_rule_order_rate),
        cmocka_unit_test(test_reports_every_violation),
        cmocka_unit_test(test_invalid_input_fails_closed),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_large_snapshot),
        cmocka_unit_test(test_limits_check_and_bounds),
        cmocka_unit_test(test_determinism_bytes),
        cmocka_unit_test(test_assess),
    };
    return cmocka_run_group_tests(tests, load_map, free_map);
}
