/* Fill money math: average cost, realized P&L, flips, rounding and overflow (trading/position). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "trading/position.h"

#define SH(x) RISK_SHARES(x)
#define USD(x) RISK_USD(x)

static store_position flat(void)
{
    store_position p;
    memset(&p, 0, sizeof(p));
    return p;
}

static void buys_average_their_cost(void **state)
{
    (void)state;
    store_position p = flat();
    assert_int_equal(position_apply_fill(&p, 1, SH(10), USD(100)), 0);
    assert_int_equal(position_apply_fill(&p, 1, SH(30), USD(120)), 0);
    assert_int_equal(p.qty, SH(40));
    assert_int_equal(p.avg_cost, USD(115)); /* (10*100 + 30*120) / 40 */
    assert_int_equal(p.realized_pnl, 0);
}

static void a_partial_sell_realizes_only_the_closed_part(void **state)
{
    (void)state;
    store_position p = flat();
    position_apply_fill(&p, 1, SH(40), USD(115));
    assert_int_equal(position_apply_fill(&p, -1, SH(15), USD(110)), 0);
    assert_int_equal(p.qty, SH(25));
    assert_int_equal(p.avg_cost, USD(115));     /* a close does not move the average */
    assert_int_equal(p.realized_pnl, -USD(75)); /* 15 * (110 - 115) */
    assert_int_equal(position_apply_fill(&p, -1, SH(25), USD(120)), 0);
    assert_int_equal(p.qty, 0);
    assert_int_equal(p.avg_cost, 0);
    assert_int_equal(p.realized_pnl, -USD(75) + USD(125));
}

static void a_short_gains_when_the_price_falls(void **state)
{
    (void)state;
    store_position p = flat();
    assert_int_equal(position_apply_fill(&p, -1, SH(10), USD(50)), 0);
    assert_int_equal(p.qty, -SH(10));
    assert_int_equal(p.avg_cost, USD(50));
    assert_int_equal(position_apply_fill(&p, 1, SH(4), USD(45)), 0);
    assert_int_equal(p.qty, -SH(6));
    assert_int_equal(p.realized_pnl, USD(20)); /* 4 * (50 - 45) */
}

static void a_fill_past_flat_flips_and_opens_the_rest_at_its_price(void **state)
{
    (void)state;
    store_position p = flat();
    position_apply_fill(&p, 1, SH(10), USD(100));
    assert_int_equal(position_apply_fill(&p, -1, SH(16), USD(90)), 0);
    assert_int_equal(p.qty, -SH(6));
    assert_int_equal(p.avg_cost, USD(90));
    assert_int_equal(p.realized_pnl, -USD(100)); /* only the 10 closed realize */
}

static void fractional_amounts_round_half_away_from_zero(void **state)
{
    (void)state;
    /* Half a share closed 3 micro-dollars above cost: 1.5 micro-dollars -> 2; below: -2. */
    store_position p = flat();
    position_apply_fill(&p, 1, SH(1), USD(10));
    assert_int_equal(position_apply_fill(&p, -1, SH(1) / 2, USD(10) + 3), 0);
    assert_int_equal(p.realized_pnl, 2);
    store_position n = flat();
    position_apply_fill(&n, 1, SH(1), USD(10));
    assert_int_equal(position_apply_fill(&n, -1, SH(1) / 2, USD(10) - 3), 0);
    assert_int_equal(n.realized_pnl, -2);
    int64_t v;
    assert_int_equal(position_muldiv(3, 1, 2, &v), 0);
    assert_int_equal(v, 2); /* 1.5 -> 2 */
    assert_int_equal(position_muldiv(-3, 1, 2, &v), 0);
    assert_int_equal(v, -2); /* -1.5 -> -2 */
    assert_int_equal(position_muldiv(5, 1, 4, &v), 0);
    assert_int_equal(v, 1); /* 1.25 -> 1 */
    /* Average of 1 @ 1 and 2 @ 2 units: 5/3 = 1.67 -> 2. */
    store_position q = flat();
    position_apply_fill(&q, 1, 1, 1);
    position_apply_fill(&q, 1, 2, 2);
    assert_int_equal(q.avg_cost, 2);
}

static void bad_input_and_overflow_are_refused_and_change_nothing(void **state)
{
    (void)state;
    store_position p = flat();
    position_apply_fill(&p, 1, SH(10), USD(100));
    store_position before = p;
    assert_int_equal(position_apply_fill(&p, 1, 0, USD(1)), -1);
    assert_int_equal(position_apply_fill(&p, 1, SH(1), 0), -1);
    assert_int_equal(position_apply_fill(&p, 0, SH(1), USD(1)), -1);
    assert_int_equal(position_apply_fill(&p, 1, INT64_MAX, USD(1)), -1); /* qty overflows */
    assert_memory_equal(&p, &before, sizeof(p));
    store_position r = flat();
    r.qty = SH(1000000000); /* 1e9 shares */
    r.avg_cost = 1;
    r.realized_pnl = INT64_MAX - 10;
    before = r;
    assert_int_equal(position_apply_fill(&r, -1, SH(1000000000), USD(1000)), -1);
    assert_memory_equal(&r, &before, sizeof(r));
    int64_t v;
    assert_int_equal(position_muldiv(INT64_MAX, 4, 2, &v), -1);
    assert_int_equal(position_muldiv(1, 1, 0, &v), -1);
}

static void a_cumulative_report_prices_its_new_part(void **state)
{
    (void)state;
    risk_price px;
    /* 10 @ 100, then cumulative 30 @ 110: the new 20 were filled at 115. */
    assert_int_equal(position_delta_price(SH(10), USD(100), SH(30), USD(110), &px), 0);
    assert_int_equal(px, USD(115));
    assert_int_equal(position_delta_price(0, 0, SH(5), USD(42), &px), 0);
    assert_int_equal(px, USD(42));
    /* An average that implies a non-positive price for the new part is inconsistent. */
    assert_int_equal(position_delta_price(SH(10), USD(100), SH(11), USD(5), &px), -1);
    /* Not more filled than before: nothing to price. */
    assert_int_equal(position_delta_price(SH(10), USD(100), SH(10), USD(100), &px), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buys_average_their_cost),
        cmocka_unit_test(a_partial_sell_realizes_only_the_closed_part),
        cmocka_unit_test(a_short_gains_when_the_price_falls),
        cmocka_unit_test(a_fill_past_flat_flips_and_opens_the_rest_at_its_price),
        cmocka_unit_test(fractional_amounts_round_half_away_from_zero),
        cmocka_unit_test(bad_input_and_overflow_are_refused_and_change_nothing),
        cmocka_unit_test(a_cumulative_report_prices_its_new_part),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
