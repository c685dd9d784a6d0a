/*
 * risk/engine.c — risk_decide / risk_assess: the pure pre-trade risk engine.
 *
 * Design: one preparation pass (prepare) validates the snapshot, hashes every symbol once and
 * builds a small open-addressing symbol set on the stack (held symbols and pending-entry
 * symbols), derives the effective trading state, the breaker decision and the PDT count. Then
 * each rule is a small static function that reads that context and appends at most one
 * violation. Rules never stop early: the caller gets every violation.
 *
 * Invariants:
 *  - no I/O, no clock, no globals with state; no allocation for snapshots up to about 250
 *    symbols (a 32 KiB stack workspace), one malloc/free for larger ones;
 *  - all money comparisons are exact 128-bit cross-multiplications ("at most N %" means
 *    part * 10000 <= N * whole), so exactly-at-the-limit is allowed and one micro-unit over is
 *    refused; notionals are rounded away from zero (conservative);
 *  - *out is zeroed first and every write is a field store, so equal inputs give equal bytes;
 *  - invalid input never allows: it yields RISK_V_INVALID_INPUT (fail closed).
 *
 * Order classification: an intent is "reduce-only" when it is opposite to the current
 * position and, together with the pending orders on the same symbol and side, does not exceed
 * the position (so it can never flip or grow it). Reduce-only orders pass the trading-state,
 * loss, drawdown, positions, sector and notional rules; the collar, duplicate, rate and PDT
 * rules apply to every order.
 *
 * PDT guard. FINRA Rule 4210(f)(8)(B) defined a pattern day trader as a margin customer who
 * executes four or more day trades within five business days (when those are more than 6 % of
 * the account's trades in that period), and required $25,000 minimum equity on any day such a
 * customer day trades; the NASD/NYSE rules date from 2001. FINRA replaced the pattern day
 * trading provisions with a new intraday-margin framework effective 2026-06-04 and the
 * SEC-approved transition lets brokers keep applying the old rule until 2027-10-20, so brokers
 * differ today: the guard is configurable (threshold, window, equity floor) and can be switched
 * off per broker connection. We model the conservative reading: in a margin account whose
 * previous-close equity is under the floor, the order that would complete the (threshold+1)-th
 * day trade within the window is refused (an opening order only when a pending exit could close
 * it the same day); the
 * 6 % test is ignored (conservative); cash accounts are not subject.
 * Counting follows FINRA's interpretation 4210/02 "by change of direction", from our own fills:
 * per symbol, executions in order, partial fills of one order are one execution; a closing
 * execution that closes quantity opened the same day (closed LIFO: same-day lots before the
 * overnight position, so selling an overnight long before any new purchase is not a day trade)
 * counts one day trade when its direction differs from the previous execution's. Hence buy
 * 250, buy 250, sell 500 = 1; buy, sell, buy, sell = 2; one buy then several sells = 1.
 * Pending open orders are simulated after today's fills as if they filled, in creation order.
 * The intent is simulated both before and after them and the worse result counts: an opening
 * order is refused when a pending exit would turn it into the (threshold+1)-th day trade.
 * Limitation: pending orders that later fill out of creation order among themselves can
 * complete a day trade no single decision saw; each was checked in both positions relative to
 * the orders pending when it was submitted.
 */
#include "risk/risk_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef __int128 i128;

#define STACK_WORKSPACE 32768 /* covers about 250 symbols; larger snapshots use the heap */

/*
 * Symbol set: open addressing over symbol keys (an all-zero key marks an empty slot; a valid
 * key never is zero). One slot per distinct symbol among positions, open orders and fills.
 * Every per-slot field uses -1 for "none" so the whole table is initialised by one memset and
 * claiming a slot needs no branch (mispredicted branches dominated the cost before).
 */
typedef struct slot {
    int16_t pos;        /* position index, -1 when not held */
    int16_t fill_first; /* first/last fill of this symbol today (-1 none): execution order */
    int16_t fill_last;
    int16_t open_first; /* first/last open order of this symbol (-1 none) */
    int16_t open_last;
    int16_t pending; /* -1, or 1 when it has an open order and is not held */
    int16_t done;    /* -1, or 1 once PDT-simulated */
    int16_t pad;
} slot;
/* Indices fit int16_t: every RISK_MAX_* array limit is below 32768. */
_Static_assert(RISK_MAX_POSITIONS < 32768 && RISK_MAX_OPEN_ORDERS < 32768 && RISK_MAX_FILLS < 32768,
               "slot indices are int16_t");

typedef struct ctx {
    const risk_intent *in; /* NULL in risk_assess */
    const risk_snapshot *s;
    const risk_limits *l;
    int64_t now_ms;
    risk_decision *d; /* NULL in risk_assess */
    risk_assessment *a;

    bool active; /* state before this call was ACTIVE with no halt reason */
    bool breaker_was_active;
    bool loss_exceeded;
    bool dd_exceeded;
    int32_t held;          /* distinct held symbols */
    int32_t pending_entry; /* distinct symbols with open orders, not held */

    /* Intent-derived. */
    risk_symkey in_key;
    uint64_t in_hash;
    int32_t in_slot; /* -1 when the symbol is in no position, order or fill */
    risk_qty pos_qty;
    bool new_symbol;
    bool reduce_only;
    risk_price order_price;  /* max of limit/stop/ref, 0 when none */
    i128 notional;           /* money, rounded away from zero */
    i128 sym_post_exposure;  /* |projected position| * order price */
    int pdt_candidate_extra; /* day trades the intent adds (worst order vs pending) */
    int64_t day_lo_ms;       /* the trading date's New York midnight .. next midnight */
    int64_t day_hi_ms;

    /* Workspace arrays (stack or heap), sized by the snapshot. */
    risk_symkey *pos_key;
    uint64_t *pos_hash;
    risk_symkey *open_key;
    uint64_t *open_hash;
    int32_t *open_slot;
    int16_t *open_next;
    risk_symkey *fill_key;
    int32_t *fill_slot; /* -2: not today; -1: not yet in the set */
    int16_t *fill_next;
    risk_symkey *keys; /* per slot; all-zero = empty */
    slot *set;         /* per slot, valid once the key is set */
    size_t mask;
} ctx;

/* ------------------------------------------------------------------------ small helpers */

static int64_t floor_div64(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        q--;
    }
    return q;
}

static i128 abs128(i128 v)
{
    return v < 0 ? -v : v;
}

static int64_t clamp64(i128 v)
{
    if (v > INT64_MAX) {
        return INT64_MAX;
    }
    if (v < -INT64_MAX) {
        return -INT64_MAX;
    }
    return (int64_t)v;
}

/* qty (1e9) * price (1e6) -> money (1e6), rounded away from zero, in 128 bits. */
static i128 notional128(i128 qty, i128 price)
{
    i128 p = qty * price;
    i128 m = abs128(p);
    i128 q = m / RISK_QTY_SCALE + (m % RISK_QTY_SCALE != 0 ? 1 : 0);
    return p < 0 ? -q : q;
}

/* part * 10000 > bps * whole, exactly. */
static bool over_bps(i128 part, i128 whole, int32_t bps)
{
    return part * RISK_BPS_SCALE > (i128)bps * whole;
}

static const char *money_str(i128 v, char *buf, size_t cap)
{
    if (risk_dec_format(clamp64(v), RISK_MONEY_DIGITS, 2, buf, cap, NULL) != RISK_DEC_OK) {
        snprintf(buf, cap, "?");
    }
    return buf;
}

static const char *qty_str(risk_qty v, char *buf, size_t cap)
{
    if (risk_qty_format(v, buf, cap) != RISK_DEC_OK) {
        snprintf(buf, cap, "?");
    }
    return buf;
}

static const char *bps_str(int32_t bps, char *buf, size_t cap)
{
    /* 250 bps -> "2.5%" : bps has two implied decimals of a percent. */
    if (risk_dec_format(bps, 2, 0, buf, cap, NULL) != RISK_DEC_OK) {
        snprintf(buf, cap, "?");
    }
    return buf;
}

/* "2026-03-10 09:30 EDT": an instant as New York wall time, for messages. */
static const char *ny_time_str(int64_t ms, char *buf, size_t cap)
{
    int64_t t = floor_div64(ms, 1000);
    bool dst = risk_ny_is_dst(t);
    int64_t local = t + (dst ? -4 : -5) * 3600;
    int64_t day = floor_div64(local, 86400);
    int64_t sec = local - day * 86400;
    int y;
    int m;
    int md;

    risk_day_to_ymd((risk_day)day, &y, &m, &md);
    snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d %s", y, m, md, (int)(sec / 3600),
             (int)(sec / 60 % 60), dst ? "EDT" : "EST");
    return buf;
}

__attribute__((format(printf, 3, 4))) static void add_violation(ctx *c, risk_code code,
                                                                const char *fmt, ...)
{
    risk_decision *d = c->d;
    va_list ap;

    if (d == NULL || d->n_violations >= RISK_MAX_VIOLATIONS) {
        return;
    }
    risk_violation *v = &d->violations[d->n_violations++];
    v->code = code;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof(v->message), fmt, ap);
    va_end(ap);
}

static bool side_ok(risk_side s)
{
    return s == RISK_BUY || s == RISK_SELL;
}

static int dir_of(risk_side s)
{
    return s == RISK_BUY ? 1 : -1;
}

/* ------------------------------------------------------------------------ symbol set */

/* Finds or claims the slot of key; returns its index. The set never fills (2x sized). */
static int32_t set_put(ctx *c, const risk_symkey *k, uint64_t h)
{
    size_t i = (size_t)h & c->mask;
    /* The first probe nearly always ends the loop (empty or equal), so this branch predicts
     * well; writing the key again on a hit is harmless. */
    while (c->keys[i].a != 0 && !risk_symkey_eq(&c->keys[i], k)) {
        i = (i + 1) & c->mask;
    }
    c->keys[i] = *k;
    return (int32_t)i;
}

/* Slot of key, or -1. */
static int32_t set_find(const ctx *c, const risk_symkey *k, uint64_t h)
{
    size_t i = (size_t)h & c->mask;
    while (c->keys[i].a != 0) {
        if (risk_symkey_eq(&c->keys[i], k)) {
            return (int32_t)i;
        }
        i = (i + 1) & c->mask;
    }
    return -1;
}

/* Carves the workspace arrays out of buf (or a heap block). Returns the heap block to free, or
 * NULL; *ok is false when memory is missing. */
static void *workspace(ctx *c, unsigned char *buf, size_t cap, bool *ok)
{
    const risk_snapshot *s = c->s;
    size_t np = s->n_positions;
    size_t no = s->n_open_orders;
    size_t nf = s->n_fills_today;
    size_t slots = 16;
    size_t need;
    unsigned char *p;
    void *heap = NULL;

    /* Load at most ~2/3 for positions and open orders (the common path); fills join only
     * when the full PDT count is needed, and the table must still never fill. */
    while (slots < (np + no + 1) * 3 / 2 + 1 || slots < np + no + nf + 2) {
        slots *= 2;
    }
#define WS_ALIGN(n) (((n) + 15) & ~(size_t)15)
    need = WS_ALIGN(np * sizeof(risk_symkey)) + WS_ALIGN(np * 8) +
           WS_ALIGN(no * sizeof(risk_symkey)) + WS_ALIGN(no * 8) + 2 * WS_ALIGN(no * 4) +
           WS_ALIGN(nf * sizeof(risk_symkey)) + 2 * WS_ALIGN(nf * 4) +
           WS_ALIGN(slots * sizeof(risk_symkey)) + WS_ALIGN(slots * sizeof(slot));
    p = buf;
    if (need > cap) {
        heap = malloc(need);
        if (heap == NULL) {
            *ok = false;
            return NULL;
        }
        p = heap;
    }
    c->pos_key = (risk_symkey *)(void *)p;
    p += WS_ALIGN(np * sizeof(risk_symkey));
    c->pos_hash = (uint64_t *)(void *)p;
    p += WS_ALIGN(np * 8);
    c->open_key = (risk_symkey *)(void *)p;
    p += WS_ALIGN(no * sizeof(risk_symkey));
    c->open_hash = (uint64_t *)(void *)p;
    p += WS_ALIGN(no * 8);
    c->open_slot = (int32_t *)(void *)p;
    p += WS_ALIGN(no * 4);
    c->open_next = (int16_t *)(void *)p;
    p += WS_ALIGN(no * 4);
    c->fill_key = (risk_symkey *)(void *)p;
    p += WS_ALIGN(nf * sizeof(risk_symkey));
    c->fill_slot = (int32_t *)(void *)p;
    p += WS_ALIGN(nf * 4);
    c->fill_next = (int16_t *)(void *)p;
    p += WS_ALIGN(nf * 4);
    c->keys = (risk_symkey *)(void *)p;
    p += WS_ALIGN(slots * sizeof(risk_symkey));
    c->set = (slot *)(void *)p;
    c->mask = slots - 1;
#undef WS_ALIGN
    /* Only the empty markers: a strided loop, which compilers keep as plain stores (a large
     * memset becomes "rep stosb", and reading those lines right after it stalled). */
    for (size_t i = 0; i < slots; i++) {
        c->keys[i].a = 0;
    }
    memset(c->set, 0xff, slots * sizeof(slot)); /* every field -1 */
    *ok = true;
    return heap;
}

/* ------------------------------------------------------------------------ limits */

void risk_limits_default(risk_limits *l)
{
    if (l == NULL) {
        return;
    }
    memset(l, 0, sizeof(*l));
    l->daily_loss_bps = 200;
    l->daily_loss_abs = RISK_OFF;
    l->drawdown_bps = 500;
    l->max_open_positions = 10;
    l->sector_max_bps = 2500;
    l->unknown_sector_max_bps = 2500;
    l->max_order_notional_bps = 1000;
    l->price_collar_bps = 1000;
    l->duplicate_window_ms = 5000;
    l->max_orders_per_window = 5;
    l->rate_window_ms = 1000;
}

void risk_pdt_default(risk_pdt_config *p)
{
    if (p == NULL) {
        return;
    }
    memset(p, 0, sizeof(*p));
    p->enabled = true;
    p->max_day_trades = 3;
    p->window_days = 5;
    p->equity_floor = RISK_USD(25000);
}

typedef struct limit_field {
    const char *name;
    size_t off;
    int is64;
    int64_t min;
    int64_t max;
    int bigger_is_stricter; /* windows: a longer window is stricter */
} limit_field;

#define LF(f, is64, mn, mx, dir)                                                                   \
    {                                                                                              \
#f, offsetof(risk_limits, f), is64, mn, mx, dir                                            \
    }
static const limit_field limit_fields[] = {
    LF(daily_loss_bps, 0, 0, 10000, 0),         LF(daily_loss_abs, 1, 0, INT64_MAX, 0),
    LF(drawdown_bps, 0, 0, 10000, 0),           LF(max_open_positions, 0, 0, RISK_MAX_POSITIONS, 0),
    LF(sector_max_bps, 0, 0, 10000, 0),         LF(unknown_sector_max_bps, 0, 0, 10000, 0),
    LF(max_order_notional_bps, 0, 0, 10000, 0), LF(price_collar_bps, 0, 0, 100000, 0),
    LF(duplicate_window_ms, 0, 1, 86400000, 1), LF(max_orders_per_window, 0, 0, 1000000, 0),
    LF(rate_window_ms, 0, 1, 86400000, 1),
};

static int64_t field_get(const risk_limits *l, const limit_field *f)
{
    const char *p = (const char *)l + f->off;
    if (f->is64) {
        int64_t v;
        memcpy(&v, p, sizeof(v));
        return v;
    }
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

int risk_limits_check(const risk_limits *l, const risk_limits *bounds, char *err, size_t cap)
{
    if (l == NULL) {
        if (err != NULL && cap > 0) {
            snprintf(err, cap, "limits: missing");
        }
        return -1;
    }
    for (size_t i = 0; i < sizeof(limit_fields) / sizeof(limit_fields[0]); i++) {
        const limit_field *f = &limit_fields[i];
        int64_t v = field_get(l, f);
        if (v != RISK_OFF && (v < f->min || v > f->max)) {
            if (err != NULL && cap > 0) {
                snprintf(err, cap, "%s: %lld outside %lld..%lld (or -1 = off)", f->name,
                         (long long)v, (long long)f->min, (long long)f->max);
            }
            return -1;
        }
        if (bounds == NULL) {
            continue;
        }
        int64_t b = field_get(bounds, f);
        if (b == RISK_OFF) {
            continue; /* the bound allows anything */
        }
        bool looser = v == RISK_OFF || (f->bigger_is_stricter ? v < b : v > b);
        if (looser) {
            if (err != NULL && cap > 0) {
                snprintf(err, cap, "%s: %lld is looser than the admin bound %lld", f->name,
                         (long long)v, (long long)b);
            }
            return -1;
        }
    }
    return 0;
}

const char *risk_code_name(risk_code code)
{
    switch (code) {
    case RISK_V_INVALID_INPUT:
        return "invalid_input";
    case RISK_V_TRADING_HALTED:
        return "trading_halted";
    case RISK_V_DAILY_LOSS_LIMIT:
        return "daily_loss_limit";
    case RISK_V_DRAWDOWN:
        return "drawdown";
    case RISK_V_MAX_POSITIONS:
        return "max_open_positions";
    case RISK_V_SECTOR_CONCENTRATION:
        return "sector_concentration";
    case RISK_V_MAX_ORDER_NOTIONAL:
        return "max_order_notional";
    case RISK_V_PRICE_COLLAR:
        return "price_collar";
    case RISK_V_DUPLICATE_ORDER:
        return "duplicate_order";
    case RISK_V_ORDER_RATE:
        return "order_rate";
    case RISK_V_PDT:
        return "pattern_day_trader";
    case RISK_V_NO_REFERENCE_PRICE:
        return "no_reference_price";
    }
    return "unknown";
}

/* ------------------------------------------------------------------------ preparation */

static bool arr_ok(const void *p, size_t n, size_t max)
{
    return n <= max && (n == 0 || p != NULL);
}

/* Cheap checks that must pass before the workspace is sized. */
static const char *check_arrays(const risk_snapshot *s)
{
    if (!arr_ok(s->positions, s->n_positions, RISK_MAX_POSITIONS) ||
        !arr_ok(s->open_orders, s->n_open_orders, RISK_MAX_OPEN_ORDERS) ||
        !arr_ok(s->recent_orders, s->n_recent_orders, RISK_MAX_RECENT_ORDERS) ||
        !arr_ok(s->fills_today, s->n_fills_today, RISK_MAX_FILLS) ||
        !arr_ok(s->day_trade_days, s->n_day_trade_days, SIZE_MAX)) {
        return "snapshot array missing or too long";
    }
    if (s->calendar == NULL) {
        return "snapshot has no calendar";
    }
    if (s->account_type != RISK_ACCOUNT_CASH && s->account_type != RISK_ACCOUNT_MARGIN) {
        return "unknown account type";
    }
    if (s->pdt.enabled && (s->pdt.max_day_trades < 0 || s->pdt.window_days < 1 ||
                           s->pdt.window_days > RISK_PDT_MAX_WINDOW || s->pdt.equity_floor < 0)) {
        return "PDT configuration out of range";
    }
    if (s->state != RISK_STATE_ACTIVE && s->state != RISK_STATE_HALTED &&
        s->state != RISK_STATE_REDUCING) {
        return "unknown trading state";
    }
    return NULL;
}

/* Validates the rows, keys every symbol once and builds the symbol set. Snapshot symbols come
 * from our own store, so only their framing (non-empty, NUL inside the field) is checked;
 * the intent's symbol gets the strict character check. */
static const char *prepare_symbols(ctx *c)
{
    const risk_snapshot *s = c->s;

    for (size_t i = 0; i < s->n_positions; i++) {
        const risk_position *p = &s->positions[i];
        if (risk_symkey_make(p->symbol, &c->pos_key[i]) != 0) {
            return "position with an invalid symbol";
        }
        c->pos_hash[i] = risk_symkey_hash(&c->pos_key[i]);
        if (p->qty == 0) {
            continue;
        }
        if (p->last_price <= 0 || p->qty == INT64_MIN) {
            return "position without a positive last price";
        }
        slot *e = &c->set[set_put(c, &c->pos_key[i], c->pos_hash[i])];
        if (e->pos >= 0) {
            return "two position rows for one symbol";
        }
        e->pos = (int16_t)i;
        c->held++;
    }
    for (size_t i = 0; i < s->n_open_orders; i++) {
        const risk_open_order *o = &s->open_orders[i];
        if (risk_symkey_make(o->symbol, &c->open_key[i]) != 0 || !side_ok(o->side) || o->qty <= 0 ||
            o->price <= 0) {
            return "open order with an invalid symbol, side, quantity or price";
        }
        c->open_hash[i] = risk_symkey_hash(&c->open_key[i]);
        int32_t k = set_put(c, &c->open_key[i], c->open_hash[i]);
        slot *e = &c->set[k];
        c->open_slot[i] = k;
        c->open_next[i] = -1;
        int16_t *link = e->open_last >= 0 ? &c->open_next[e->open_last] : &e->open_first;
        *link = (int16_t)i;
        e->open_last = (int16_t)i;
        int newly = e->pos < 0 && e->pending < 0;
        c->pending_entry += newly;
        e->pending = (int16_t)(newly ? 1 : e->pending);
    }
    for (size_t i = 0; i < s->n_recent_orders; i++) {
        if (!side_ok(s->recent_orders[i].side)) {
            return "recent order with an invalid side";
        }
    }
    return NULL;
}

/* Effective trading state, loss and drawdown figures, breaker trip/clear. */
static void prepare_state(ctx *c)
{
    const risk_snapshot *s = c->s;
    const risk_limits *l = c->l;
    risk_assessment *a = c->a;
    uint32_t reasons = s->halt_reasons & (RISK_HALT_USER | RISK_HALT_ADMIN | RISK_HALT_BREAKER);

    if (reasons & RISK_HALT_BREAKER) {
        if (c->now_ms < s->breaker_until_ms) {
            c->breaker_was_active = true;
            a->breaker_reason = s->breaker_reason;
            a->breaker_until_ms = s->breaker_until_ms;
        } else {
            reasons &= ~RISK_HALT_BREAKER;
            a->clear_breaker = true;
        }
    }

    i128 equity = s->equity;
    i128 sod = s->sod_equity;
    i128 peak = s->peak_equity > s->equity ? s->peak_equity : s->equity;
    i128 loss = sod - equity;
    i128 dd = peak - equity;

    a->day_pnl = clamp64(equity - sod);
    a->drawdown = clamp64(dd);
    a->daily_loss_limit = RISK_OFF;
    a->drawdown_limit = RISK_OFF;
    if (l->daily_loss_bps != RISK_OFF) {
        a->daily_loss_limit = clamp64(sod > 0 ? sod * l->daily_loss_bps / RISK_BPS_SCALE : 0);
        c->loss_exceeded = loss > 0 && over_bps(loss, sod, l->daily_loss_bps);
    }
    if (l->daily_loss_abs != RISK_OFF) {
        if (a->daily_loss_limit == RISK_OFF || l->daily_loss_abs < a->daily_loss_limit) {
            a->daily_loss_limit = l->daily_loss_abs;
        }
        c->loss_exceeded = c->loss_exceeded || loss > l->daily_loss_abs;
    }
    if (l->drawdown_bps != RISK_OFF) {
        a->drawdown_limit = clamp64(peak > 0 ? peak * l->drawdown_bps / RISK_BPS_SCALE : 0);
        c->dd_exceeded = dd > 0 && over_bps(dd, peak, l->drawdown_bps);
    }
    if (!c->breaker_was_active && (c->loss_exceeded || c->dd_exceeded)) {
        int64_t now_s = floor_div64(c->now_ms, 1000);
        a->trip_breaker = true;
        a->trip_reason = c->loss_exceeded ? RISK_BREAKER_DAILY_LOSS : RISK_BREAKER_DRAWDOWN;
        a->trip_until_ms = risk_cal_next_session_start_unix(s->calendar, now_s) * 1000;
        reasons |= RISK_HALT_BREAKER;
        a->breaker_reason = a->trip_reason;
        a->breaker_until_ms = a->trip_until_ms;
    }
    a->halt_reasons = reasons;
    if (reasons != 0 || s->state == RISK_STATE_HALTED) {
        a->effective_state = RISK_STATE_HALTED;
    } else {
        a->effective_state = s->state;
    }
    /* The state rule judges the state before this call's trip; the trip rules report it. */
    c->active = s->state == RISK_STATE_ACTIVE &&
                (s->halt_reasons & (RISK_HALT_USER | RISK_HALT_ADMIN)) == 0 &&
                !c->breaker_was_active;
    a->open_positions = c->held + c->pending_entry;
}

/* Intent classification: position, pending, reduce-only, prices, projected exposure. */
static const char *prepare_intent(ctx *c)
{
    const risk_intent *in = c->in;
    const risk_snapshot *s = c->s;
    bool has_limit = in->type == RISK_ORDER_LIMIT || in->type == RISK_ORDER_STOP_LIMIT;
    bool has_stop = in->type == RISK_ORDER_STOP || in->type == RISK_ORDER_STOP_LIMIT;
    int dir = dir_of(in->side);

    if (!risk_symbol_valid(in->symbol) || risk_symkey_make(in->symbol, &c->in_key) != 0) {
        return "order symbol must be 1..15 of A-Z 0-9 . - /";
    }
    c->in_hash = risk_symkey_hash(&c->in_key);
    if (!side_ok(in->side)) {
        return "order side must be buy or sell";
    }
    if (in->type < RISK_ORDER_MARKET || in->type > RISK_ORDER_STOP_LIMIT) {
        return "unknown order type";
    }
    if (in->qty <= 0) {
        return "order quantity must be positive";
    }
    if ((has_limit && in->limit_price <= 0) || (has_stop && in->stop_price <= 0) ||
        s->ref_price < 0) {
        return "order price must be positive";
    }

    c->in_slot = set_find(c, &c->in_key, c->in_hash);
    const slot *e = c->in_slot >= 0 ? &c->set[c->in_slot] : NULL;
    c->pos_qty = e != NULL && e->pos >= 0 ? s->positions[e->pos].qty : 0;
    c->new_symbol = e == NULL || (e->pos < 0 && e->open_first < 0);

    i128 same_side = 0;
    for (int32_t i = e != NULL ? e->open_first : -1; i >= 0; i = c->open_next[i]) {
        if (s->open_orders[i].side == in->side) {
            same_side += s->open_orders[i].qty;
        }
    }
    i128 pos = c->pos_qty;
    c->reduce_only = pos != 0 && (pos > 0 ? -1 : 1) == dir && same_side + in->qty <= abs128(pos);

    risk_price price = s->ref_price;
    if (has_limit && in->limit_price > price) {
        price = in->limit_price;
    }
    if (has_stop && in->stop_price > price) {
        price = in->stop_price;
    }
    c->order_price = price;
    c->notional = notional128(in->qty, price);
    c->d->notional = clamp64(c->notional);
    c->sym_post_exposure = notional128(abs128(pos + dir * (same_side + in->qty)), price);
    c->d->reduce_only = c->reduce_only;
    return NULL;
}

/* ------------------------------------------------------------------------ PDT counting */

enum { CAND_NONE, CAND_FIRST, CAND_LAST };

/* One run over symbol slot k (may be -1 for a symbol only the intent has): today's fills, then
 * the pending orders in creation order, with the intent placed before or after the pending
 * orders (or absent). Adds the completed and potential day trades to *today and *pending. */
static void pdt_run(ctx *c, int32_t k, int cand, int *today, int *pending)
{
    const risk_snapshot *s = c->s;
    risk_pdt_sim m;
    i128 today_net = 0;
    const slot *e = k >= 0 ? &c->set[k] : NULL;

    risk_pdt_sim_start(&m, 0);
    if (e != NULL) {
        for (int32_t i = e->fill_first; i >= 0; i = c->fill_next[i]) {
            today_net += dir_of(s->fills_today[i].side) * (i128)s->fills_today[i].qty;
        }
        risk_pdt_sim_start(&m, (e->pos >= 0 ? s->positions[e->pos].qty : 0) - today_net);
        for (int32_t i = e->fill_first; i >= 0; i = c->fill_next[i]) {
            const risk_fill *f = &s->fills_today[i];
            *today += risk_pdt_step(&m, dir_of(f->side), f->qty, f->order_id);
        }
    }
    if (cand == CAND_FIRST) {
        *pending += risk_pdt_step(&m, dir_of(c->in->side), c->in->qty, 0);
    }
    for (int32_t i = e != NULL ? e->open_first : -1; i >= 0; i = c->open_next[i]) {
        const risk_open_order *o = &s->open_orders[i];
        *pending += risk_pdt_step(&m, dir_of(o->side), o->qty, o->order_id);
    }
    if (cand == CAND_LAST) {
        *pending += risk_pdt_step(&m, dir_of(c->in->side), c->in->qty, 0);
    }
}

/* Counts one symbol. For the intent's symbol it also measures how many day trades the intent
 * adds in the worse of two orders: filled before the pending orders (they may close the lot it
 * opens) or after them (it may close theirs). */
static void pdt_symbol(ctx *c, int32_t k, int *today, int *pending)
{
    int t = 0;
    int p = 0;

    if (k >= 0) {
        c->set[k].done = 1;
    }
    pdt_run(c, k, CAND_NONE, &t, &p);
    /* The intent can only complete a day trade against same-day quantity: fills today or
     * pending orders of its symbol. Without pending orders both placements are the same. */
    const slot *e = k >= 0 ? &c->set[k] : NULL;
    if (c->in != NULL && k == c->in_slot && e != NULL &&
        (e->fill_first >= 0 || e->open_first >= 0)) {
        int t1 = 0;
        int first = 0;
        int last = 0;
        pdt_run(c, k, CAND_LAST, &t1, &last);
        if (e->open_first >= 0) {
            pdt_run(c, k, CAND_FIRST, &t1, &first);
        }
        int worst = first > last ? first : last;
        c->pdt_candidate_extra = worst > p ? worst - p : 0;
    }
    *today += t;
    *pending += p;
}

/* Appends fill i to the execution-ordered list of slot k. */
static void chain_fill(ctx *c, int32_t k, size_t i)
{
    slot *e = &c->set[k];
    int16_t *link = e->fill_last >= 0 ? &c->fill_next[e->fill_last] : &e->fill_first;
    *link = (int16_t)i;
    e->fill_last = (int16_t)i;
    c->fill_slot[i] = k;
}

/* The trading date (today in New York, or the next trading day) and its UTC bounds. */
static void prepare_day(ctx *c)
{
    c->a->trade_date = risk_trade_date(c->s->calendar, c->now_ms, &c->day_lo_ms, &c->day_hi_ms);
}

/* One pass over the fills: validate, key, keep the trading date's, and chain the intent's. */
static const char *prepare_fills(ctx *c)
{
    const risk_snapshot *s = c->s;
    bool have_in = c->in != NULL;

    if (have_in && c->in_slot < 0 && s->n_fills_today > 0) {
        c->in_slot = set_put(c, &c->in_key, c->in_hash);
    }
    for (size_t i = 0; i < s->n_fills_today; i++) {
        const risk_fill *f = &s->fills_today[i];
        if (risk_symkey_make(f->symbol, &c->fill_key[i]) != 0 || !side_ok(f->side) || f->qty <= 0) {
            return "fill with an invalid symbol, side or quantity";
        }
        c->fill_next[i] = -1;
        c->fill_slot[i] = (f->filled_ms < c->day_lo_ms || f->filled_ms >= c->day_hi_ms) ? -2 : -1;
        if (have_in && c->fill_slot[i] == -1 && risk_symkey_eq(&c->fill_key[i], &c->in_key)) {
            chain_fill(c, c->in_slot, i);
        }
    }
    return NULL;
}

static void prepare_pdt(ctx *c)
{
    const risk_snapshot *s = c->s;
    const risk_calendar *cal = s->calendar;
    risk_assessment *a = c->a;
    int today = 0;
    int pending = 0;
    int history = 0;
    risk_day day = a->trade_date;

    a->pdt_applies = s->pdt.enabled && s->account_type == RISK_ACCOUNT_MARGIN &&
                     s->prev_close_equity < s->pdt.equity_floor;

    /* risk_decide: the intent's symbol first (its fills were chained by prepare_fills); the
     * whole count only when the rule needs it. */
    if (c->in != NULL) {
        if (a->pdt_applies) {
            pdt_symbol(c, c->in_slot, &today, &pending);
        }
        if (!a->pdt_applies || c->pdt_candidate_extra == 0) {
            a->day_trades_in_window = -1;
            return;
        }
    }
    for (size_t i = 0; i < s->n_fills_today; i++) {
        if (c->fill_slot[i] == -1) {
            chain_fill(c, set_put(c, &c->fill_key[i], risk_symkey_hash(&c->fill_key[i])), i);
        }
    }

    int32_t window = s->pdt.window_days >= 1 && s->pdt.window_days <= RISK_PDT_MAX_WINDOW
                         ? s->pdt.window_days
                         : 5;
    risk_day start = risk_pdt_window_start(cal, day, window);
    for (size_t i = 0; i < s->n_day_trade_days; i++) {
        risk_day d = s->day_trade_days[i];
        history += d >= start && d < day;
    }
    for (size_t i = 0; i < s->n_fills_today; i++) {
        int32_t k = c->fill_slot[i];
        if (k >= 0 && c->set[k].done < 0) {
            pdt_symbol(c, k, &today, &pending);
        }
    }
    for (size_t i = 0; i < s->n_open_orders; i++) {
        int32_t k = c->open_slot[i];
        if (c->set[k].done < 0) {
            pdt_symbol(c, k, &today, &pending);
        }
    }
    a->day_trades_in_window = history + today + pending;
}

/* ------------------------------------------------------------------------ rules */

static void rule_trading_state(ctx *c)
{
    const risk_snapshot *s = c->s;
    char when[48];

    if (c->active || c->reduce_only) {
        return;
    }
    if (s->halt_reasons & RISK_HALT_ADMIN) {
        add_violation(c, RISK_V_TRADING_HALTED,
                      "trading is halted for all accounts by an administrator; only orders "
                      "that reduce a position are accepted");
    } else if (c->breaker_was_active) {
        add_violation(c, RISK_V_TRADING_HALTED,
                      "the circuit breaker (%s) halted trading until %s; only orders that "
                      "reduce a position are accepted",
                      s->breaker_reason == RISK_BREAKER_DRAWDOWN ? "drawdown" : "daily loss",
                      ny_time_str(s->breaker_until_ms, when, sizeof(when)));
    } else if (s->halt_reasons & RISK_HALT_USER) {
        add_violation(c, RISK_V_TRADING_HALTED,
                      "trading is halted by your kill switch; only orders that reduce a "
                      "position are accepted");
    } else {
        add_violation(c, RISK_V_TRADING_HALTED,
                      "the account is %s; only orders that reduce a position are accepted",
                      s->state == RISK_STATE_REDUCING ? "in reduce-only mode" : "halted");
    }
}

static void rule_daily_loss(ctx *c)
{
    char b1[RISK_DEC_STRMAX];
    char b2[RISK_DEC_STRMAX];
    char when[48];

    if (!c->loss_exceeded || c->breaker_was_active || c->reduce_only) {
        return;
    }
    add_violation(c, RISK_V_DAILY_LOSS_LIMIT,
                  "today's loss of %s exceeds the daily loss limit of %s; trading is halted "
                  "until %s",
                  money_str(-(i128)c->a->day_pnl, b1, sizeof(b1)),
                  money_str(c->a->daily_loss_limit, b2, sizeof(b2)),
                  ny_time_str(c->a->trip_until_ms, when, sizeof(when)));
}

static void rule_drawdown(ctx *c)
{
    char b1[RISK_DEC_STRMAX];
    char b2[RISK_DEC_STRMAX];
    char when[48];

    if (!c->dd_exceeded || c->breaker_was_active || c->reduce_only) {
        return;
    }
    add_violation(c, RISK_V_DRAWDOWN,
                  "drawdown of %s from today's peak exceeds the limit of %s; trading is halted "
                  "until %s",
                  money_str(c->a->drawdown, b1, sizeof(b1)),
                  money_str(c->a->drawdown_limit, b2, sizeof(b2)),
                  ny_time_str(c->a->trip_until_ms, when, sizeof(when)));
}

static void rule_max_positions(ctx *c)
{
    int32_t max = c->l->max_open_positions;

    if (max == RISK_OFF || c->reduce_only || !c->new_symbol) {
        return;
    }
    if (c->a->open_positions + 1 > max) {
        add_violation(c, RISK_V_MAX_POSITIONS,
                      "opening %s would make %d open positions (including pending entries); "
                      "the limit is %d",
                      c->in->symbol, (int)c->a->open_positions + 1, (int)max);
    }
}

static void rule_sector(ctx *c)
{
    const risk_snapshot *s = c->s;
    int sector = risk_sectors_lookup_key(s->sectors, &c->in_key, c->in_hash);
    int32_t bps =
        sector == RISK_SECTOR_UNKNOWN ? c->l->unknown_sector_max_bps : c->l->sector_max_bps;
    i128 exposure = c->sym_post_exposure;
    char b1[RISK_DEC_STRMAX];
    char b2[RISK_DEC_STRMAX];

    if (bps == RISK_OFF || c->reduce_only || c->order_price <= 0) {
        return;
    }
    for (size_t i = 0; i < s->n_positions; i++) {
        const risk_position *p = &s->positions[i];
        if (p->qty == 0 || risk_symkey_eq(&c->pos_key[i], &c->in_key)) {
            continue;
        }
        if (risk_sectors_lookup_key(s->sectors, &c->pos_key[i], c->pos_hash[i]) == sector) {
            exposure += notional128(abs128(p->qty), p->last_price);
        }
    }
    for (size_t i = 0; i < s->n_open_orders; i++) {
        const risk_open_order *o = &s->open_orders[i];
        if (c->open_slot[i] == c->in_slot) {
            continue; /* already in the projected position of the intent's symbol */
        }
        /* An entry: its symbol is not held, or it adds to the held direction. */
        int32_t pi = c->set[c->open_slot[i]].pos;
        risk_qty held = pi >= 0 ? s->positions[pi].qty : 0;
        if (held != 0 && (held > 0 ? 1 : -1) != dir_of(o->side)) {
            continue;
        }
        if (risk_sectors_lookup_key(s->sectors, &c->open_key[i], c->open_hash[i]) == sector) {
            exposure += notional128(o->qty, o->price);
        }
    }
    if (over_bps(exposure, s->equity, bps)) {
        char b3[16];
        add_violation(c, RISK_V_SECTOR_CONCENTRATION,
                      "%s exposure after this order would be %s, above %s%% of equity (%s)%s",
                      risk_sectors_name(s->sectors, sector), money_str(exposure, b1, sizeof(b1)),
                      bps_str(bps, b3, sizeof(b3)), money_str(s->equity, b2, sizeof(b2)),
                      sector == RISK_SECTOR_UNKNOWN
                          ? "; symbols outside the sector map share one UNKNOWN bucket"
                          : "");
    }
}

static void rule_order_notional(ctx *c)
{
    int32_t bps = c->l->max_order_notional_bps;
    char b1[RISK_DEC_STRMAX];
    char b2[RISK_DEC_STRMAX];
    char b3[16];

    if (bps == RISK_OFF || c->reduce_only || c->order_price <= 0) {
        return;
    }
    if (over_bps(c->notional, c->s->equity, bps)) {
        add_violation(c, RISK_V_MAX_ORDER_NOTIONAL,
                      "order notional %s is above %s%% of equity (%s)",
                      money_str(c->notional, b1, sizeof(b1)), bps_str(bps, b3, sizeof(b3)),
                      money_str(c->s->equity, b2, sizeof(b2)));
    }
}

static void rule_reference_price(ctx *c)
{
    bool has_limit = c->in->type == RISK_ORDER_LIMIT || c->in->type == RISK_ORDER_STOP_LIMIT;

    /* Limit orders need a reference for the collar; opening orders need one for exposure. */
    if (c->s->ref_price > 0) {
        return;
    }
    if ((has_limit && c->l->price_collar_bps != RISK_OFF) || !c->reduce_only) {
        add_violation(c, RISK_V_NO_REFERENCE_PRICE,
                      "no reference price for %s; the order cannot be checked", c->in->symbol);
    }
}

static void rule_price_collar(ctx *c)
{
    int32_t bps = c->l->price_collar_bps;
    const risk_intent *in = c->in;
    risk_price ref = c->s->ref_price;
    char b1[RISK_DEC_STRMAX];
    char b2[RISK_DEC_STRMAX];
    char b3[16];

    if (bps == RISK_OFF || ref <= 0 ||
        (in->type != RISK_ORDER_LIMIT && in->type != RISK_ORDER_STOP_LIMIT)) {
        return;
    }
    if (over_bps(abs128((i128)in->limit_price - ref), ref, bps)) {
        add_violation(c, RISK_V_PRICE_COLLAR,
                      "limit price %s is more than %s%% away from the reference price %s",
                      money_str(in->limit_price, b1, sizeof(b1)), bps_str(bps, b3, sizeof(b3)),
                      money_str(ref, b2, sizeof(b2)));
    }
}

static void rule_duplicate(ctx *c)
{
    const risk_snapshot *s = c->s;
    int32_t win = c->l->duplicate_window_ms;
    char b1[RISK_DEC_STRMAX];

    if (win == RISK_OFF) {
        return;
    }
    for (size_t i = 0; i < s->n_recent_orders; i++) {
        const risk_recent_order *r = &s->recent_orders[i];
        risk_symkey k;
        if (r->side == c->in->side && r->qty == c->in->qty &&
            (i128)c->now_ms - r->submitted_ms < win && risk_symkey_make(r->symbol, &k) == 0 &&
            risk_symkey_eq(&k, &c->in_key)) {
            add_violation(c, RISK_V_DUPLICATE_ORDER,
                          "an identical order (%s %s %s) was submitted less than %d ms ago",
                          c->in->side == RISK_BUY ? "buy" : "sell",
                          qty_str(c->in->qty, b1, sizeof(b1)), c->in->symbol, (int)win);
            return;
        }
    }
}

static void rule_order_rate(ctx *c)
{
    const risk_snapshot *s = c->s;
    int32_t max = c->l->max_orders_per_window;
    int32_t win = c->l->rate_window_ms;
    size_t n = 0;

    if (max == RISK_OFF || win == RISK_OFF) {
        return;
    }
    for (size_t i = 0; i < s->n_recent_orders; i++) {
        n += (i128)c->now_ms - s->recent_orders[i].submitted_ms < win;
    }
    if (n + 1 > (size_t)max) {
        add_violation(c, RISK_V_ORDER_RATE,
                      "order rate limit: at most %d orders per %d ms (%zu already)", (int)max,
                      (int)win, n);
    }
}

static void rule_pdt(ctx *c)
{
    const risk_snapshot *s = c->s;
    char b1[RISK_DEC_STRMAX];

    if (!c->a->pdt_applies || c->pdt_candidate_extra == 0) {
        return;
    }
    if (c->a->day_trades_in_window + c->pdt_candidate_extra > s->pdt.max_day_trades) {
        add_violation(c, RISK_V_PDT,
                      "pattern day trader guard: this order would complete day trade %d within "
                      "%d business days, and the account's previous-close equity is under %s",
                      (int)(c->a->day_trades_in_window + c->pdt_candidate_extra),
                      (int)s->pdt.window_days, money_str(s->pdt.equity_floor, b1, sizeof(b1)));
    }
}

/* ------------------------------------------------------------------------ entry points */

static risk_rc run(ctx *c)
{
    const char *bad = NULL;
    char err[128];
    _Alignas(16) unsigned char stack_ws[STACK_WORKSPACE];
    void *heap = NULL;
    bool ok = true;

    if (c->s == NULL || c->l == NULL) {
        bad = "missing snapshot or limits";
    } else if (risk_limits_check(c->l, NULL, err, sizeof(err)) != 0) {
        bad = err;
    } else {
        bad = check_arrays(c->s);
    }
    if (bad == NULL) {
        heap = workspace(c, stack_ws, sizeof(stack_ws), &ok);
        bad = ok ? prepare_symbols(c) : "out of memory";
    }
    if (bad == NULL) {
        prepare_state(c);
        if (c->in != NULL) {
            bad = prepare_intent(c);
        }
    }
    if (bad == NULL) {
        prepare_day(c);
        bad = prepare_fills(c);
    }
    if (bad == NULL) {
        prepare_pdt(c);
    }
    if (bad != NULL) {
        add_violation(c, RISK_V_INVALID_INPUT, "invalid input: %s", bad);
        free(heap);
        return RISK_EINVAL;
    }
    if (c->in != NULL) {
        rule_trading_state(c);
        rule_daily_loss(c);
        rule_drawdown(c);
        rule_max_positions(c);
        rule_sector(c);
        rule_order_notional(c);
        rule_reference_price(c);
        rule_price_collar(c);
        rule_duplicate(c);
        rule_order_rate(c);
        rule_pdt(c);
        c->d->allowed = c->d->n_violations == 0;
    }
    free(heap);
    return RISK_OK;
}

risk_rc risk_decide(const risk_intent *intent, const risk_snapshot *snap, const risk_limits *lim,
                    int64_t now_ms, risk_decision *out)
{
    ctx c;

    if (out == NULL) {
        return RISK_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    memset(&c, 0, sizeof(c));
    c.in = intent;
    c.s = snap;
    c.l = lim;
    c.now_ms = now_ms;
    c.d = out;
    c.a = &out->account;
    c.in_slot = -1;
    if (intent == NULL) {
        add_violation(&c, RISK_V_INVALID_INPUT, "invalid input: missing order");
        return RISK_EINVAL;
    }
    return run(&c);
}

risk_rc risk_assess(const risk_snapshot *snap, const risk_limits *lim, int64_t now_ms,
                    risk_assessment *out)
{
    ctx c;

    if (out == NULL) {
        return RISK_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    memset(&c, 0, sizeof(c));
    c.s = snap;
    c.l = lim;
    c.now_ms = now_ms;
    c.a = out;
    c.in_slot = -1;
    return run(&c);
}
