/*
 * tests/risk/fixture.h — a mutable account snapshot for the engine tests.
 *
 * Defaults: margin account, equity = start-of-day = peak = previous close = $100,000, no
 * positions or orders, PDT guard enabled with FINRA defaults, risk_limits_default(), a rules-
 * only NYSE calendar, now = Wednesday 2026-03-11 14:00 EDT, reference price $100, intent
 * "buy 10 AAPL at market". Tests change fields, then call fx_decide.
 */
#ifndef TW_TESTS_RISK_FIXTURE_H
#define TW_TESTS_RISK_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "risk/risk.h"

#define FX_MAX 64

typedef struct fx {
    risk_position pos[FX_MAX];
    risk_open_order open[FX_MAX];
    risk_recent_order recent[FX_MAX];
    risk_fill fills[FX_MAX];
    risk_day hist[FX_MAX];
    risk_calendar cal;
    risk_snapshot s;
    risk_limits l;
    risk_intent in;
    int64_t now_ms;
    risk_decision d;
} fx;

/* Wednesday 2026-03-11 14:00 EDT (18:00 UTC). */
#define FX_NOW_MS (INT64_C(1773252000) * 1000)

static inline void fx_sym(char dst[RISK_SYMBOL_MAX], const char *src)
{
    memset(dst, 0, RISK_SYMBOL_MAX);
    snprintf(dst, RISK_SYMBOL_MAX, "%s", src);
}

static inline void fx_init(fx *f, const risk_sector_map *sectors)
{
    memset(f, 0, sizeof(*f));
    risk_calendar_init(&f->cal, NULL, 0);
    f->s.equity = f->s.sod_equity = f->s.peak_equity = f->s.prev_close_equity = RISK_USD(100000);
    f->s.positions = f->pos;
    f->s.open_orders = f->open;
    f->s.recent_orders = f->recent;
    f->s.fills_today = f->fills;
    f->s.day_trade_days = f->hist;
    f->s.account_type = RISK_ACCOUNT_MARGIN;
    risk_pdt_default(&f->s.pdt);
    f->s.sectors = sectors;
    f->s.calendar = &f->cal;
    f->s.ref_price = RISK_USD(100);
    risk_limits_default(&f->l);
    fx_sym(f->in.symbol, "AAPL");
    f->in.side = RISK_BUY;
    f->in.type = RISK_ORDER_MARKET;
    f->in.qty = RISK_SHARES(10);
    f->now_ms = FX_NOW_MS;
}

static inline void fx_pos(fx *f, const char *sym, risk_qty qty, risk_price last)
{
    risk_position *p = &f->pos[f->s.n_positions++];
    fx_sym(p->symbol, sym);
    p->qty = qty;
    p->avg_cost = last;
    p->last_price = last;
}

static inline void fx_open(fx *f, const char *sym, risk_side side, risk_qty qty, risk_price px)
{
    risk_open_order *o = &f->open[f->s.n_open_orders];
    fx_sym(o->symbol, sym);
    o->side = side;
    o->qty = qty;
    o->price = px;
    o->created_ms = f->now_ms - 60000;
    o->order_id = 9000 + f->s.n_open_orders;
    f->s.n_open_orders++;
}

static inline void fx_recent(fx *f, const char *sym, risk_side side, risk_qty qty, int64_t ago)
{
    risk_recent_order *r = &f->recent[f->s.n_recent_orders++];
    fx_sym(r->symbol, sym);
    r->side = side;
    r->qty = qty;
    r->submitted_ms = f->now_ms - ago;
}

/* A fill `mins` minutes before now, belonging to order `oid`. */
static inline void fx_fill(fx *f, const char *sym, risk_side side, risk_qty qty, int mins,
                           uint64_t oid)
{
    risk_fill *x = &f->fills[f->s.n_fills_today++];
    fx_sym(x->symbol, sym);
    x->side = side;
    x->qty = qty;
    x->price = RISK_USD(100);
    x->filled_ms = f->now_ms - (int64_t)mins * 60000;
    x->order_id = oid;
}

static inline void fx_intent(fx *f, const char *sym, risk_side side, risk_qty qty)
{
    fx_sym(f->in.symbol, sym);
    f->in.side = side;
    f->in.qty = qty;
}

static inline risk_rc fx_decide(fx *f)
{
    return risk_decide(&f->in, &f->s, &f->l, f->now_ms, &f->d);
}

static inline bool fx_has(const risk_decision *d, risk_code code)
{
    for (size_t i = 0; i < d->n_violations; i++) {
        if (d->violations[i].code == code) {
            return true;
        }
    }
    return false;
}

static inline const char *fx_msg(const risk_decision *d, risk_code code)
{
    for (size_t i = 0; i < d->n_violations; i++) {
        if (d->violations[i].code == code) {
            return d->violations[i].message;
        }
    }
    return "";
}

#endif
