/*
 * risk/periods.c — the periods risk inputs describe (the trading date and its bounds, the PDT
 * window) and day-trade counting over one day's executions (see risk.h).
 *
 * Design: risk_day_trades groups the executions by symbol without moving them (a stable sort of
 * indices by symbol key), steps the same counting machine the engine's PDT rule uses
 * (risk_pdt_step in risk_int.h) through each symbol's executions in order, marks the
 * executions that completed a day trade, and reports them in execution order. Scratch memory:
 * one heap block of about 40 bytes per execution.
 *
 * Invariants: pure (no clock, no I/O, no globals); invalid input never yields a count.
 */
#include "risk/risk_int.h"

#include <stdlib.h>
#include <string.h>

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        q--;
    }
    return q;
}

risk_day risk_trade_date(const risk_calendar *cal, int64_t now_ms, int64_t *start_ms,
                         int64_t *end_ms)
{
    int64_t t = floor_div(now_ms, 1000);
    int64_t off = risk_ny_is_dst(t) ? -4 * 3600 : -5 * 3600;
    risk_day day = (risk_day)floor_div(t + off, 86400);
    int64_t lo;

    if (risk_cal_is_trading_day(cal, day)) {
        /* A weekday: no DST change inside it, so now's offset holds from midnight on. */
        lo = (int64_t)day * 86400 - off;
    } else {
        day = risk_cal_next_trading_day(cal, day);
        lo = risk_ny_local_to_unix(day, 0);
    }
    if (start_ms != NULL) {
        *start_ms = lo * 1000;
    }
    if (end_ms != NULL) {
        /* Trading days never hold a DST change (they happen on Sundays): 24 hours long. */
        *end_ms = (lo + 86400) * 1000;
    }
    return day;
}

risk_day risk_pdt_window_start(const risk_calendar *cal, risk_day trade_date, int32_t window_days)
{
    risk_day start = trade_date;
    int32_t n = window_days < 1                     ? 1
                : window_days > RISK_PDT_MAX_WINDOW ? RISK_PDT_MAX_WINDOW
                                                    : window_days;
    for (int32_t i = 1; i < n; i++) {
        start = risk_cal_prev_trading_day(cal, start);
    }
    return start;
}

typedef struct fill_ref {
    risk_symkey key;
    uint32_t idx; /* index into fills */
} fill_ref;

static int cmp_fill_ref(const void *a, const void *b)
{
    const fill_ref *x = a;
    const fill_ref *y = b;
    if (x->key.a != y->key.a) {
        return x->key.a < y->key.a ? -1 : 1;
    }
    if (x->key.b != y->key.b) {
        return x->key.b < y->key.b ? -1 : 1;
    }
    return (x->idx > y->idx) - (x->idx < y->idx); /* stable: execution order within a symbol */
}

/* Quantity of the position in key, 0 when flat or absent; -1 on a malformed position row. */
static int position_of(const risk_position *positions, size_t n, const risk_symkey *key,
                       risk_i128 *qty)
{
    *qty = 0;
    for (size_t i = 0; i < n; i++) {
        risk_symkey k;
        if (risk_symkey_make(positions[i].symbol, &k) != 0) {
            return -1;
        }
        if (risk_symkey_eq(&k, key)) {
            *qty += positions[i].qty;
        }
    }
    return 0;
}

int32_t risk_day_trades(const risk_position *positions, size_t n_positions, const risk_fill *fills,
                        size_t n_fills, risk_day_trade *out, size_t cap)
{
    fill_ref *refs = NULL;
    unsigned char *completes = NULL;
    int32_t count = -1;

    if ((n_positions > 0 && positions == NULL) || (n_fills > 0 && fills == NULL) ||
        (cap > 0 && out == NULL) || n_fills > (size_t)INT32_MAX) {
        return -1;
    }
    if (n_fills == 0) {
        return 0;
    }
    refs = malloc(n_fills * sizeof(*refs));
    completes = calloc(n_fills, 1);
    if (refs == NULL || completes == NULL) {
        goto out;
    }
    for (size_t i = 0; i < n_fills; i++) {
        const risk_fill *f = &fills[i];
        if (risk_symkey_make(f->symbol, &refs[i].key) != 0 ||
            (f->side != RISK_BUY && f->side != RISK_SELL) || f->qty <= 0) {
            goto out;
        }
        refs[i].idx = (uint32_t)i;
    }
    qsort(refs, n_fills, sizeof(*refs), cmp_fill_ref);

    count = 0;
    for (size_t g = 0; g < n_fills;) {
        size_t end = g;
        risk_i128 held;
        risk_i128 net = 0;
        risk_pdt_sim m;

        while (end < n_fills && risk_symkey_eq(&refs[end].key, &refs[g].key)) {
            const risk_fill *f = &fills[refs[end].idx];
            net += f->side == RISK_BUY ? (risk_i128)f->qty : -(risk_i128)f->qty;
            end++;
        }
        if (position_of(positions, n_positions, &refs[g].key, &held) != 0) {
            count = -1;
            goto out;
        }
        risk_pdt_sim_start(&m, held - net); /* the overnight position */
        for (size_t i = g; i < end; i++) {
            const risk_fill *f = &fills[refs[i].idx];
            if (risk_pdt_step(&m, f->side == RISK_BUY ? 1 : -1, f->qty, f->order_id)) {
                completes[refs[i].idx] = 1;
                count++;
            }
        }
        g = end;
    }
    size_t k = 0;
    for (size_t i = 0; i < n_fills && k < cap; i++) {
        if (completes[i]) {
            risk_day_trade *d = &out[k++];
            memset(d, 0, sizeof(*d));
            memcpy(d->symbol, fills[i].symbol, strnlen(fills[i].symbol, RISK_SYMBOL_MAX - 1));
            d->order_id = fills[i].order_id;
            d->closed_ms = fills[i].filled_ms;
            d->fill_index = i;
        }
    }
out:
    free(refs);
    free(completes);
    return count;
}
