/*
 * position: the money math of fills, in integers (quantities 1e9, prices and money 1e6).
 *
 * A position is signed (negative = short) with an average cost (always > 0 while open) and the
 * realized P&L accrued on the parts that were closed. Rounding is half away from zero, once per
 * operation, in 128-bit intermediates; results that do not fit 64 bits are refused (-1), never
 * wrapped.
 */
#ifndef SRV_POSITION_H
#define SRV_POSITION_H

#include <stdint.h>

#include "risk/money.h"
#include "store/store.h"

/* (a * b) / d rounded half away from zero; -1 on overflow or d == 0. */
int position_muldiv(int64_t a, int64_t b, int64_t d, int64_t *out);

/*
 * Apply a fill of qty (> 0) at price (> 0) on side dir (+1 buy, -1 sell) to p:
 *  - same side (or flat): quantities add, the average cost is the quantity-weighted mean;
 *  - opposite side: the closing part realizes (price - avg) * closed (sign of the side closed);
 *    a position closed to zero has avg_cost 0; one that flips opens the rest at price.
 * 0, or -1 (p unchanged) on invalid input or overflow.
 */
int position_apply_fill(store_position *p, int dir, risk_qty qty, risk_price price);

/*
 * The price of the part of an order newly filled, from a broker's cumulative report: the order
 * had filled prev_qty at average prev_avg and now reports cum_qty (> prev_qty) at cum_avg. The
 * delta's price is (cum_qty*cum_avg - prev_qty*prev_avg) / (cum_qty - prev_qty), rounded. 0, or
 * -1 when that is not a positive price that fits (an inconsistent report).
 */
int position_delta_price(risk_qty prev_qty, risk_price prev_avg, risk_qty cum_qty,
                         risk_price cum_avg, risk_price *out);

#endif
