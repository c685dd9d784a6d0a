/*
 * Risk.GetState and Risk.CheckOrder: the account as the risk engine sees it right now (from
 * our own records plus the broker's equity), and a dry run of an order through the same
 * decision SubmitOrder makes — every violation, no state change.
 */
#include <string.h>

#include "risk/money.h"
#include "risk_service.h"
#include "services.h"
#include "svc.h"
#include "trading/trading.h"

static char *money(tw_call *c, int64_t v)
{
    char buf[48];
    if (risk_money_format(v, buf, sizeof(buf)) != RISK_DEC_OK)
        return (char *)"";
    return tw_arena_strdup(tw_call_arena(c), buf);
}

/* Whose state a GetState reads: the caller's, or for an admin the user it names. */
static tw_status state_user(tw_call *c, const Tradewink__V1__GetStateRequest *req, int64_t *uid)
{
    const tw_principal *p = tw_call_principal(c);
    *uid = p->user_id;
    if (!*req->user_id)
        return tw_ok();
    int64_t want = svc_parse_id(req->user_id);
    if (!want)
        return tw_err(TW_INVALID_ARGUMENT, "user_id: not a user id");
    if (want != *uid && p->role != TW_ROLE_ADMIN)
        return tw_err(TW_PERMISSION_DENIED, "only admins read other users' state");
    *uid = want;
    return tw_ok();
}

/* The answer from the account's inputs, whether the store or the ledger gave them. */
static tw_status state_answer(tw_call *c, int64_t uid, const trading_view *v,
                              const brk_account *acct, const store_global_state *g,
                              Tradewink__V1__GetStateResponse *resp)
{
    trading *t = ((srv_app *)tw_call_app(c))->trading;
    risk_assessment as;
    int64_t now_ms = trading_now_ms(t);
    if (risk_assess(&v->snap, &v->limits, now_ms, &as) != RISK_OK)
        return tw_err(TW_INTERNAL, "risk assessment failed");
    Tradewink__V1__RiskState *w = risksvc_state_to_wire(c, uid, &v->state, g, now_ms * 1000);
    if (!w)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    w->equity = money(c, acct->equity);
    w->start_of_day_equity = money(c, v->snap.sod_equity);
    w->pnl_today = money(c, as.day_pnl);
    w->open_positions = as.open_positions;
    w->day_trades_in_window = as.day_trades_in_window;
    if (as.trip_breaker || (as.halt_reasons & RISK_HALT_BREAKER)) {
        w->breaker_tripped = 1;
        risk_breaker_reason why = as.trip_breaker ? as.trip_reason : as.breaker_reason;
        w->breaker_rule = why == RISK_BREAKER_DRAWDOWN
                              ? TRADEWINK__V1__RISK_RULE__RISK_RULE_DRAWDOWN
                              : TRADEWINK__V1__RISK_RULE__RISK_RULE_DAILY_LOSS;
        if (w->trading_state == TRADEWINK__V1__TRADING_STATE__TRADING_STATE_ACTIVE)
            w->trading_state = TRADEWINK__V1__TRADING_STATE__TRADING_STATE_HALTED;
    }
    int64_t mark_ms;
    if (trading_last_mark(t, uid, &mark_ms) && !(w->last_mark = svc_timestamp(c, mark_ms / 1000)))
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    resp->state = w;
    return tw_ok();
}

tw_status risksvc_get_state(tw_call *c, const Tradewink__V1__GetStateRequest *req,
                            Tradewink__V1__GetStateResponse *resp)
{
    srv_app *app = tw_call_app(c);
    trading *t = app->trading;
    int64_t uid;
    store_conn *conn;
    tw_status st;
    if ((st = state_user(c, req, &uid)).code != TW_OK || (st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    tw_arena *a = tw_call_arena(c);
    /* What this read finds is kept for the reads after it (trading_reads_note): the version
     * and the kill switch's generation come first, so a change racing the read is not. */
    ledger_reads r;
    bool note = trading_reads_begin(conn, uid, &r);
    uint64_t gen = trading_global_gen(t);
    store_settings set;
    store_rc rc = store_settings_get(conn, uid, &set);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "user");
    store_broker_key *key = tw_arena_zalloc(a, sizeof(*key));
    trading_view *v = tw_arena_zalloc(a, sizeof(*v));
    if (!key || !v)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    int have_key = set.default_broker_key_id &&
                   store_key_get(conn, uid, set.default_broker_key_id, key) == STORE_OK;
    r.set = set;
    r.key_id = have_key ? key->id : 0;
    r.key_sim = !have_key || strcmp(key->broker, "sim") == 0;
    /* A real broker's account comes from the last mark when it is fresh: a read never costs
     * a broker request (the marker re-values the account every period). Until the first mark,
     * and for the sim (in memory), the account is read now. */
    brk_account acct;
    bool marked = !r.key_sim && trading_marked_account(t, uid, key->id, &acct);
    if (!marked &&
        (st = trading_account(t, conn, uid, have_key ? key : NULL, svc_traceparent(c), &acct, NULL))
                .code != TW_OK)
        return st;
    if ((st = trading_view_load(t, a, conn, uid, &acct, NULL, 0, 0, v)).code != TW_OK)
        return st;
    store_global_state g;
    g.halted = v->global_halt;
    if (store_global_get(conn, &g) != STORE_OK)
        return tw_err(TW_UNAVAILABLE, "database unavailable, retry later");
    trading_global_note(t, gen, r.confirmed_ms, &g);
    if (note)
        trading_reads_note(t, uid, &r);
    trading_count_read(t, false);
    return state_answer(c, uid, v, &acct, &g, resp);
}

/* Inline: a warm account (trading.h, trading_view_cached) answers from memory; the rest goes
 * to risksvc_get_state on an executor. */
tw_status risksvc_get_state_fast(tw_call *c, const Tradewink__V1__GetStateRequest *req,
                                 Tradewink__V1__GetStateResponse *resp)
{
    trading *t = ((srv_app *)tw_call_app(c))->trading;
    int64_t uid;
    tw_status st = state_user(c, req, &uid);
    if (st.code != TW_OK)
        return st;
    ledger_reads r;
    store_global_state g;
    brk_account acct;
    trading_view *v = tw_arena_zalloc(tw_call_arena(c), sizeof(*v));
    if (v && trading_reads_cached(t, uid, &r) && trading_global_cached(t, &g) &&
        (r.key_sim ? trading_sim_account(t, uid, &acct)
                   : trading_marked_account(t, uid, r.key_id, &acct)) &&
        trading_view_cached(t, tw_call_arena(c), uid, &r, g.halted, &acct, v)) {
        trading_count_read(t, true);
        return state_answer(c, uid, v, &acct, &g, resp);
    }
    tw_call_defer(c);
    return tw_ok();
}

tw_status risksvc_check_order(tw_call *c, const Tradewink__V1__CheckOrderRequest *req,
                              Tradewink__V1__CheckOrderResponse *resp)
{
    /* CheckOrderRequest mirrors SubmitOrderRequest field for field. */
    Tradewink__V1__SubmitOrderRequest s = TRADEWINK__V1__SUBMIT_ORDER_REQUEST__INIT;
    s.client_order_id = *req->client_order_id ? req->client_order_id : (char *)"check";
    s.symbol = req->symbol;
    s.side = req->side;
    s.type = req->type;
    s.time_in_force = req->time_in_force;
    s.qty = req->qty;
    s.limit_price = req->limit_price;
    s.origin = req->origin;
    s.broker_key_id = req->broker_key_id;
    s.note = req->note;
    tw_arena *a = tw_call_arena(c);
    risk_decision *d = tw_arena_zalloc(a, sizeof(*d));
    if (!d)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    tw_status st = orders_dry_run(c, &s, d);
    if (st.code != TW_OK)
        return st;
    resp->allowed = d->allowed;
    resp->violations =
        tw_arena_alloc(a, (d->n_violations ? d->n_violations : 1) * sizeof(*resp->violations));
    if (!resp->violations)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < d->n_violations; i++) {
        Tradewink__V1__RiskViolation *v = tw_arena_alloc(a, sizeof(*v));
        if (!v)
            return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
        tradewink__v1__risk_violation__init(v);
        v->code = (Tradewink__V1__RiskRule)trading_rule_of(d->violations[i].code);
        v->message = tw_arena_strdup(a, d->violations[i].message);
        resp->violations[resp->n_violations++] = v;
    }
    return tw_ok();
}
