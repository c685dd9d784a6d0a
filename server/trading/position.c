/* position: the money math of fills (see position.h). */
#include "position.h"

static __int128 abs128(__int128 v)
{
    return v < 0 ? -v : v;
}

/* n / d rounded half away from zero (d != 0). */
static __int128 div_round(__int128 n, __int128 d)
{
    __int128 q = n / d, r = n % d;
    if (abs128(r) * 2 >= abs128(d))
        q += (n < 0) != (d < 0) ? -1 : 1;
    return q;
}

static int fits(__int128 v)
{
    return v <= INT64_MAX && v >= INT64_MIN;
}

int position_muldiv(int64_t a, int64_t b, int64_t d, int64_t *out)
{
    if (d == 0)
        return -1;
    __int128 q = div_round((__int128)a * b, d);
    if (!fits(q))
        return -1;
    *out = (int64_t)q;
    return 0;
}

int position_apply_fill(store_position *p, int dir, risk_qty qty, risk_price price)
{
    if (qty <= 0 || price <= 0 || (dir != 1 && dir != -1))
        return -1;
    __int128 q = p->qty;
    __int128 after = q + (__int128)dir * qty;
    if (!fits(after))
        return -1;
    if (q == 0 || (q > 0) == (dir > 0)) {
        __int128 absq = abs128(q);
        __int128 num = absq * p->avg_cost + (__int128)qty * price;
        __int128 avg = div_round(num, absq + qty);
        if (!fits(avg))
            return -1;
        p->avg_cost = (int64_t)avg;
        p->qty = (int64_t)after;
        return 0;
    }
    __int128 absq = abs128(q);
    __int128 closed = qty < absq ? qty : absq;
    /* closed (1e9) * (price - avg) (1e6) / 1e9 -> 1e6; the sign is the closed side's. */
    __int128 pnl =
        div_round(closed * ((__int128)price - p->avg_cost) * (q > 0 ? 1 : -1), RISK_QTY_SCALE);
    __int128 realized = (__int128)p->realized_pnl + pnl;
    if (!fits(pnl) || !fits(realized))
        return -1;
    p->realized_pnl = (int64_t)realized;
    p->qty = (int64_t)after;
    if (after == 0)
        p->avg_cost = 0;
    else if ((after > 0) != (q > 0))
        p->avg_cost = price; /* flipped: the remainder opened at this price */
    return 0;
}

int position_delta_price(risk_qty prev_qty, risk_price prev_avg, risk_qty cum_qty,
                         risk_price cum_avg, risk_price *out)
{
    if (cum_qty <= prev_qty || prev_qty < 0)
        return -1;
    __int128 delta = (__int128)cum_qty - prev_qty;
    __int128 px = div_round((__int128)cum_qty * cum_avg - (__int128)prev_qty * prev_avg, delta);
    if (px <= 0 || px > INT64_MAX)
        return -1;
    *out = (risk_price)px;
    return 0;
}
