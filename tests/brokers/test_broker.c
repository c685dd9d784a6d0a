/*
 * tests/brokers/test_broker.c — the backend-independent layer: request validation (every bad
 * field refused before a backend is reached), names, and a fake backend plugged into brk_ops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brokers/broker.h"
#include "brokers/broker_int.h"

static int backend_calls;

static brk_rc fake_submit(brk_conn *c, const brk_order_req *r, brk_order *o, brk_err *e)
{
    (void)c;
    (void)r;
    (void)e;
    backend_calls++;
    o->status = BRK_ORDER_NEW;
    return BRK_OK;
}

static const struct brk_ops fake_ops = {.name = "fake", .submit = fake_submit};

static risk_price fake_price; /* what fake_last_price answers (0 = a backend bug) */

static brk_rc fake_last_price(brk_conn *c, const char *symbol, risk_price *out, brk_err *e)
{
    (void)c;
    (void)symbol;
    (void)e;
    backend_calls++;
    *out = fake_price;
    return BRK_OK;
}

static const struct brk_ops priced_ops = {.name = "priced", .last_price = fake_last_price};

static void last_price_is_unsupported_without_the_op_and_checked_with_it(void **state)
{
    (void)state;
    brk_conn plain = {.ops = &fake_ops};
    brk_conn priced = {.ops = &priced_ops};
    brk_err err = {0};
    risk_price px = 5;
    backend_calls = 0;
    assert_int_equal(brk_last_price(&plain, "AAPL", &px, &err), BRK_UNSUPPORTED);
    assert_int_equal(px, 0);
    assert_non_null(strstr(err.message, "fake"));
    fake_price = 1234;
    assert_int_equal(brk_last_price(&priced, "AAPL", &px, &err), BRK_OK);
    assert_int_equal(px, 1234);
    assert_null(err.message);
    /* a backend answering a non-positive price is not believed */
    fake_price = 0;
    assert_int_equal(brk_last_price(&priced, "AAPL", &px, &err), BRK_UNAVAILABLE);
    assert_int_equal(px, 0);
    fake_price = -1;
    assert_int_equal(brk_last_price(&priced, "AAPL", &px, &err), BRK_UNAVAILABLE);
    assert_int_equal(backend_calls, 3);
    /* arguments are checked before the backend */
    assert_int_equal(brk_last_price(&priced, "AA PL", &px, &err), BRK_INVALID);
    assert_int_equal(brk_last_price(&priced, "", &px, &err), BRK_INVALID);
    assert_int_equal(brk_last_price(&priced, NULL, &px, &err), BRK_INVALID);
    assert_int_equal(brk_last_price(&priced, "AAPL", NULL, &err), BRK_INVALID);
    assert_int_equal(brk_last_price(NULL, "AAPL", &px, &err), BRK_INVALID);
    assert_int_equal(backend_calls, 3);
    brk_err_clear(&err);
}

static void every_malformed_request_is_invalid_before_the_backend(void **state)
{
    (void)state;
    char long_id[BRK_ID_MAX + 1];
    memset(long_id, 'a', BRK_ID_MAX);
    long_id[BRK_ID_MAX] = '\0';
    char max_id[BRK_ID_MAX];
    memset(max_id, 'a', BRK_ID_MAX - 1);
    max_id[BRK_ID_MAX - 1] = '\0';
    const brk_order_req good = {.client_order_id = "ord-1",
                                .symbol = "AAPL",
                                .side = BRK_SIDE_BUY,
                                .type = BRK_TYPE_LIMIT,
                                .tif = BRK_TIF_DAY,
                                .qty = RISK_SHARES(1),
                                .limit_price = RISK_USD(10)};
    struct {
        const char *name;
        brk_order_req r;
        brk_rc want;
    } cases[] = {
        {"good", good, BRK_OK},
        {"longest id", good, BRK_OK},
        {"null coid", good, BRK_INVALID},
        {"empty coid", good, BRK_INVALID},
        {"coid too long", good, BRK_INVALID},
        {"coid with slash", good, BRK_INVALID},
        {"coid with space", good, BRK_INVALID},
        {"symbol empty", good, BRK_INVALID},
        {"symbol with space", good, BRK_INVALID},
        {"symbol too long", good, BRK_INVALID},
        {"side 0", good, BRK_INVALID},
        {"type 3", good, BRK_INVALID},
        {"tif 7", good, BRK_INVALID},
        {"qty 0", good, BRK_INVALID},
        {"qty negative", good, BRK_INVALID},
        {"limit without price", good, BRK_INVALID},
        {"market with price", good, BRK_INVALID},
        {"crypto symbol", good, BRK_OK},
    };
    cases[1].r.client_order_id = max_id;
    cases[2].r.client_order_id = NULL;
    cases[3].r.client_order_id = "";
    cases[4].r.client_order_id = long_id;
    cases[5].r.client_order_id = "a/b";
    cases[6].r.client_order_id = "a b";
    cases[7].r.symbol = "";
    cases[8].r.symbol = "AA PL";
    cases[9].r.symbol = "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG";
    cases[10].r.side = 0;
    cases[11].r.type = 3;
    cases[12].r.tif = 7;
    cases[13].r.qty = 0;
    cases[14].r.qty = -1;
    cases[15].r.limit_price = 0;
    cases[16].r.type = BRK_TYPE_MARKET;
    cases[17].r.symbol = "BTC/USD";
    brk_conn conn = {.ops = &fake_ops};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        backend_calls = 0;
        brk_order o;
        brk_err err = {0};
        brk_rc rc = brk_submit(&conn, &cases[i].r, &o, &err);
        if (rc != cases[i].want)
            fail_msg("case '%s': got %s", cases[i].name, brk_rc_name(rc));
        assert_int_equal(backend_calls, rc == BRK_OK ? 1 : 0);
        if (rc != BRK_OK)
            assert_non_null(err.message);
        brk_err_clear(&err);
    }
    brk_order o;
    assert_int_equal(brk_submit(NULL, &good, &o, NULL), BRK_INVALID);
    assert_int_equal(brk_submit(&conn, NULL, &o, NULL), BRK_INVALID);
    assert_int_equal(brk_submit(&conn, &good, NULL, NULL), BRK_INVALID);
    assert_string_equal(brk_conn_backend(&conn), "fake");
}

static void names_are_alpacas_spelling_and_never_null(void **state)
{
    (void)state;
    assert_string_equal(brk_order_status_name(BRK_ORDER_PARTIALLY_FILLED), "partially_filled");
    assert_string_equal(brk_order_status_name((brk_order_status)99), "other");
    assert_string_equal(brk_rc_name(BRK_RATE_LIMITED), "rate_limited");
    assert_string_equal(brk_rc_name(BRK_UNSUPPORTED), "unsupported");
    assert_string_equal(brk_rc_name((brk_rc)99), "unknown");
    assert_string_equal(brk_tif_name(BRK_TIF_GTC), "gtc");
    assert_string_equal(brk_side_name((brk_side)0), "?");
    assert_true(brk_order_status_is_terminal(BRK_ORDER_FILLED));
    assert_true(brk_order_status_is_terminal(BRK_ORDER_REPLACED));
    assert_false(brk_order_status_is_terminal(BRK_ORDER_PARTIALLY_FILLED));
    assert_false(brk_order_status_is_terminal(BRK_ORDER_PENDING_CANCEL));
}

static void rounding_parse_rounds_half_away_and_keeps_the_grammar(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int digits;
        risk_dec_rc rc;
        int64_t v;
    } cases[] = {
        {"150.1234565", 6, RISK_DEC_OK, 150123457},
        {"150.1234564999", 6, RISK_DEC_OK, 150123456},
        {"-1.0000005", 6, RISK_DEC_OK, -1000001},
        {"2.5", 0, RISK_DEC_OK, 3},
        {"12.5", 6, RISK_DEC_OK, 12500000},
        {"1.23456789x", 6, RISK_DEC_SYNTAX, 0},
        {"1e5", 6, RISK_DEC_SYNTAX, 0},
        {"", 6, RISK_DEC_EMPTY, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = 0;
        risk_dec_rc rc = brk_dec_parse_round(cases[i].s, cases[i].digits, &v);
        if (rc != cases[i].rc || (rc == RISK_DEC_OK && v != cases[i].v))
            fail_msg("case '%s': rc=%d v=%lld", cases[i].s, rc, (long long)v);
    }
}

static void err_clear_is_safe_on_null_and_empty(void **state)
{
    (void)state;
    brk_err_clear(NULL);
    brk_err e = {0};
    brk_err_clear(&e);
    assert_int_equal(brk_err_set(&e, BRK_REJECTED, 422, "x %d", 1), BRK_REJECTED);
    assert_string_equal(e.message, "x 1");
    assert_int_equal(e.http_status, 422);
    brk_err_clear(&e);
    assert_null(e.message);
    brk_order_list ol = {0};
    brk_order_list_free(&ol);
    brk_order_list_free(NULL);
    brk_position_list_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_malformed_request_is_invalid_before_the_backend),
        cmocka_unit_test(names_are_alpacas_spelling_and_never_null),
        cmocka_unit_test(rounding_parse_rounds_half_away_and_keeps_the_grammar),
        cmocka_unit_test(err_clear_is_safe_on_null_and_empty),
        cmocka_unit_test(last_price_is_unsupported_without_the_op_and_checked_with_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
