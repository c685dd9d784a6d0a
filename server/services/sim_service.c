/*
 * tradewink.v1.Sim: the admin surface of the built-in paper exchange, present only while the
 * sim broker is enabled. Quotes, accounts and the engine's one clock (which every time-based
 * rule of the server reads), so day boundaries can be driven from outside the process.
 */
#include <stdlib.h>
#include <string.h>

#include "risk/money.h"
#include "services.h"
#include "svc.h"
#include "trading/trading.h"

/* Quote.symbol: "Ticker symbol, upper case" -- the same alphabet Orders accepts. */
static int valid_symbol(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 15)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '/' ||
              *s == '-'))
            return 0;
    return 1;
}

static brk_sim_engine *engine(tw_call *c)
{
    srv_app *app = tw_call_app(c);
    return app->trading ? trading_sim(app->trading) : NULL;
}

tw_status sim_set_quotes(tw_call *c, const Tradewink__V1__SetQuotesRequest *req,
                         Tradewink__V1__SetQuotesResponse *resp)
{
    brk_sim_engine *e = engine(c);
    if (!e)
        return tw_err(TW_FAILED_PRECONDITION, "the sim broker is disabled");
    if (req->n_quotes == 0 || req->n_quotes > 1000)
        return tw_err(TW_INVALID_ARGUMENT, "quotes: 1..1000 entries");
    /* Validate all first: a bad entry changes nothing, and one answer names every bad field
     * (the first 100: the answer stays small). */
    tw_arena *a = tw_call_arena(c);
    tw_violations bad;
    tw_violations_init(&bad, a);
    size_t n_bad = 0;
    brk_quote *qs = tw_arena_alloc(a, req->n_quotes * sizeof(*qs));
    if (!qs)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < req->n_quotes && n_bad < 100; i++) {
        const Tradewink__V1__Quote *q = req->quotes[i];
        const char *field = NULL, *why = NULL;
        if (!valid_symbol(q->symbol)) {
            field = "symbol";
            why = "1..15 of A-Z 0-9 . / -";
        } else if (risk_price_parse(q->bid, &qs[i].bid) != RISK_DEC_OK || qs[i].bid <= 0) {
            field = "bid";
            why = "a decimal above 0";
        } else if (risk_price_parse(q->ask, &qs[i].ask) != RISK_DEC_OK || qs[i].ask < qs[i].bid) {
            field = "ask";
            why = "a decimal at or above bid";
        } else if (risk_price_parse(q->last, &qs[i].last) != RISK_DEC_OK || qs[i].last <= 0) {
            field = "last";
            why = "a decimal above 0";
        } else {
            /* One quote per symbol (n <= 1000, so the quadratic scan is cheap). */
            for (size_t j = 0; j < i && !field; j++)
                if (strcmp(req->quotes[j]->symbol, q->symbol) == 0) {
                    field = "symbol";
                    why = tw_arena_printf(a, "repeats quotes[%zu]", j);
                }
        }
        if (field) {
            const char *name = tw_arena_printf(a, "quotes[%zu].%s", i, field);
            if (!name || !why)
                return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
            tw_violation_add(&bad, name, why);
            n_bad++;
        }
    }
    tw_status bad_st = tw_violations_status(&bad);
    if (bad_st.code != TW_OK)
        return bad_st;
    const char **syms = tw_arena_alloc(tw_call_arena(c), req->n_quotes * sizeof(*syms));
    if (!syms)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    tw_status st = tw_ok();
    for (size_t i = 0; i < req->n_quotes; i++) {
        syms[i] = req->quotes[i]->symbol;
        if (brk_sim_set_quote(e, req->quotes[i]->symbol, &qs[i], NULL) != BRK_OK) {
            st = tw_call_errorf(c, TW_INVALID_ARGUMENT, "quotes[%zu]: refused by the sim", i);
            break;
        }
        resp->quotes_set++;
    }
    /* Every holder of a symbol whose quote moved is re-valued now, so peaks and breakers follow
     * the market (the fills the new quotes matched were applied before brk_sim_set_quote
     * returned). */
    srv_app *app = tw_call_app(c);
    trading_mark_symbols(app->trading, syms, resp->quotes_set);
    return st;
}

tw_status sim_get_quote(tw_call *c, const Tradewink__V1__GetQuoteRequest *req,
                        Tradewink__V1__GetQuoteResponse *resp)
{
    brk_sim_engine *e = engine(c);
    brk_quote q;
    if (!e)
        return tw_err(TW_FAILED_PRECONDITION, "the sim broker is disabled");
    if (brk_sim_get_quote(e, req->symbol, &q) != BRK_OK)
        return tw_err(TW_NOT_FOUND, "no quote for this symbol");
    tw_arena *a = tw_call_arena(c);
    Tradewink__V1__Quote *w = tw_arena_alloc(a, sizeof(*w));
    char b[48], k[48], l[48];
    if (!w)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    tradewink__v1__quote__init(w);
    risk_money_format(q.bid, b, sizeof(b));
    risk_money_format(q.ask, k, sizeof(k));
    risk_money_format(q.last, l, sizeof(l));
    w->symbol = tw_arena_strdup(a, req->symbol);
    w->bid = tw_arena_strdup(a, b);
    w->ask = tw_arena_strdup(a, k);
    w->last = tw_arena_strdup(a, l);
    w->time = svc_timestamp(c, brk_sim_now(e) / 1000);
    resp->quote = w;
    return tw_ok();
}

/* The server's own position records follow the user's broker; when that broker is the sim
 * (no default key, or a sim key), the reset account has none. Realized P&L stays as history. */
static store_rc clear_sim_positions(store_conn *conn, int64_t uid)
{
    store_settings set;
    store_rc rc = store_settings_get(conn, uid, &set);
    if (rc != STORE_OK)
        return rc;
    if (set.default_broker_key_id) {
        store_broker_key *k = calloc(1, sizeof(*k));
        if (!k)
            return STORE_NOMEM;
        rc = store_key_get(conn, uid, set.default_broker_key_id, k);
        int sim = rc == STORE_OK && strcmp(k->broker, "sim") == 0;
        memset(k, 0, sizeof(*k));
        free(k);
        if (rc == STORE_NOT_FOUND)
            sim = 1; /* a deleted default key falls back to the sim */
        else if (rc != STORE_OK)
            return rc;
        if (!sim)
            return STORE_OK;
    }
    store_position *pos = NULL;
    size_t n = 0;
    if ((rc = store_position_list(conn, uid, &pos, &n)) != STORE_OK)
        return rc;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        if (pos[i].qty == 0)
            continue;
        pos[i].qty = 0;
        pos[i].avg_cost = 0;
        rc = store_position_put(conn, uid, &pos[i]);
    }
    free(pos);
    return rc;
}

tw_status sim_set_account(tw_call *c, const Tradewink__V1__SetAccountRequest *req,
                          Tradewink__V1__SetAccountResponse *resp)
{
    brk_sim_engine *e = engine(c);
    risk_money cash;
    if (!e)
        return tw_err(TW_FAILED_PRECONDITION, "the sim broker is disabled");
    tw_violations bad;
    tw_violations_init(&bad, tw_call_arena(c));
    int64_t uid = svc_parse_id(req->user_id);
    if (!uid)
        tw_violation_add(&bad, "user_id", "not a user id");
    if (risk_money_parse(req->starting_cash, &cash) != RISK_DEC_OK || cash < 0)
        tw_violation_add(&bad, "starting_cash", "a non-negative decimal");
    brk_account_type type = BRK_ACCOUNT_CASH;
    if (req->account_type == TRADEWINK__V1__ACCOUNT_TYPE__ACCOUNT_TYPE_MARGIN)
        type = BRK_ACCOUNT_MARGIN;
    else if (req->account_type != TRADEWINK__V1__ACCOUNT_TYPE__ACCOUNT_TYPE_CASH)
        tw_violation_add(&bad, "account_type", "must be CASH or MARGIN");
    tw_status st = tw_violations_status(&bad);
    if (st.code != TW_OK)
        return st;
    store_conn *conn;
    st = svc_conn(c, &conn);
    if (st.code != TW_OK)
        return st;
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)uid);
    /* "Resetting clears positions and open orders": a reset, not a cash edit. The sim's
     * start-of-day equity becomes the starting cash. */
    if (brk_sim_account_reset(e, id, cash, type) != BRK_OK)
        return tw_err(TW_INVALID_ARGUMENT, "user_id: the sim refused the account");
    /* The risk state's day baseline belongs to the old account: forget it, so the next
     * evaluation starts today's day (and the drawdown peak) at the new account's equity. */
    store_rc rc = store_tx_begin_user(conn, uid);
    if (rc == STORE_OK) {
        store_risk_state rs;
        rc = store_risk_state_get(conn, uid, &rs);
        if (rc == STORE_OK) {
            rs.trading_day = 0;
            rs.sod_equity = cash;
            rs.peak_equity = cash;
            rc = store_risk_state_update(conn, uid, &rs);
        }
        if (rc == STORE_OK)
            rc = clear_sim_positions(conn, uid);
        if (rc == STORE_OK)
            rc = store_tx_commit(conn);
        else
            store_tx_rollback(conn);
        if (rc != STORE_OK)
            return svc_store_status(c, rc, "risk state");
    } else if (rc != STORE_NOT_FOUND) {
        return svc_store_status(c, rc, "user");
    }
    char buf[48];
    risk_money_format(cash, buf, sizeof(buf));
    resp->cash = tw_arena_strdup(tw_call_arena(c), buf);
    return tw_ok();
}

static tw_status clock_reply(tw_call *c, brk_sim_engine *e, Google__Protobuf__Timestamp **out)
{
    int64_t ms = brk_sim_now(e);
    Google__Protobuf__Timestamp *t = svc_timestamp(c, ms / 1000);
    if (!t)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    t->nanos = (int32_t)(ms % 1000) * 1000000;
    *out = t;
    return tw_ok();
}

tw_status sim_set_clock(tw_call *c, const Tradewink__V1__SetClockRequest *req,
                        Tradewink__V1__SetClockResponse *resp)
{
    brk_sim_engine *e = engine(c);
    if (!e)
        return tw_err(TW_FAILED_PRECONDITION, "the sim broker is disabled");
    if (!req->time || req->time->seconds < 0 || req->time->seconds > 253402300799LL)
        return tw_err(TW_INVALID_ARGUMENT, "time: required, between 1970 and 9999");
    int64_t before_day = brk_sim_now(e);
    if (req->time->nanos < 0 || req->time->nanos > 999999999)
        return tw_err(TW_INVALID_ARGUMENT, "time: nanos must be 0..999999999");
    /* sim.proto: "Sets the simulated clock to an absolute time and freezes it there." */
    brk_sim_clock_set(e, req->time->seconds * 1000 + req->time->nanos / 1000000, false);
    if (brk_sim_now(e) / 86400000 != before_day / 86400000)
        brk_sim_roll_day(e);
    return clock_reply(c, e, &resp->time);
}

tw_status sim_advance_clock(tw_call *c, const Tradewink__V1__AdvanceClockRequest *req,
                            Tradewink__V1__AdvanceClockResponse *resp)
{
    brk_sim_engine *e = engine(c);
    if (!e)
        return tw_err(TW_FAILED_PRECONDITION, "the sim broker is disabled");
    const Google__Protobuf__Duration *d = req->duration;
    /* Positive: seconds and nanos carry the same sign (protobuf Duration rule), at least 1 ms
     * (the sim clock's resolution), at most 366 days. The range first: then the product
     * cannot overflow. */
    if (!d || d->seconds < 0 || d->nanos < 0 || d->nanos > 999999999 || d->seconds > 366 * 86400 ||
        d->seconds * 1000 + d->nanos / 1000000 <= 0)
        return tw_err(TW_INVALID_ARGUMENT,
                      "duration: must be positive (>= 1 ms), at most 366 days");
    int64_t delta_ms = d->seconds * 1000 + d->nanos / 1000000;
    int64_t before = brk_sim_now(e);
    brk_sim_clock_advance(e, delta_ms);
    if (brk_sim_now(e) / 86400000 != before / 86400000)
        brk_sim_roll_day(e);
    return clock_reply(c, e, &resp->time);
}

tw_status sim_get_clock(tw_call *c, const Tradewink__V1__GetClockRequest *req,
                        Tradewink__V1__GetClockResponse *resp)
{
    (void)req;
    srv_app *app = tw_call_app(c);
    brk_sim_engine *e = engine(c);
    if (!e)
        return tw_err(TW_FAILED_PRECONDITION, "the sim broker is disabled");
    int64_t ms = brk_sim_now(e);
    risk_day d = risk_ny_day(ms / 1000);
    int64_t open = risk_cal_session_start_unix(d) * 1000;
    resp->market_open = risk_cal_is_trading_day(trading_calendar(app->trading), d) && ms >= open &&
                        ms < open + 390 * 60 * 1000;
    resp->frozen = brk_sim_clock_frozen(e);
    return clock_reply(c, e, &resp->time);
}
