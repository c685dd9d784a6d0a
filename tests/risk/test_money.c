/*
 * tests/risk/test_money.c — fixed-point parse/format/arithmetic (risk/money.h), table driven,
 * with the worst inputs we could think of: INT64 edges at each scale, 19-20 digit strings,
 * signs, exponents, whitespace, embedded NULs, trailing zeros beyond the scale.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "risk/money.h"

typedef struct parse_case {
    const char *name;
    const char *in;
    int digits;
    risk_dec_rc rc;
    int64_t want;
} parse_case;

static const parse_case parse_cases[] = {
    {"zero", "0", 6, RISK_DEC_OK, 0},
    {"integer", "12", 6, RISK_DEC_OK, 12000000},
    {"fraction", "12.5", 6, RISK_DEC_OK, 12500000},
    {"full scale", "0.000001", 6, RISK_DEC_OK, 1},
    {"negative", "-0.000001", 6, RISK_DEC_OK, -1},
    {"leading zeros ok", "007.50", 6, RISK_DEC_OK, 7500000},
    {"many leading zeros", "0000000000000000000000000001", 0, RISK_DEC_OK, 1},
    {"minus zero is zero", "-0", 6, RISK_DEC_OK, 0},
    {"minus zero fraction is zero", "-0.000", 6, RISK_DEC_OK, 0},
    {"extra zero decimals exact", "1.50000000000", 6, RISK_DEC_OK, 1500000},
    {"qty scale", "0.123456789", 9, RISK_DEC_OK, 123456789},
    {"int64 max at scale 0", "9223372036854775807", 0, RISK_DEC_OK, INT64_MAX},
    {"minus int64 max at scale 0", "-9223372036854775807", 0, RISK_DEC_OK, -INT64_MAX},
    {"int64 min refused (symmetric range)", "-9223372036854775808", 0, RISK_DEC_OVERFLOW, 0},
    {"int64 max + 1", "9223372036854775808", 0, RISK_DEC_OVERFLOW, 0},
    {"20 digits", "18446744073709551616", 0, RISK_DEC_OVERFLOW, 0},
    {"uint64 wrap attempt", "18446744073709551615", 0, RISK_DEC_OVERFLOW, 0},
    {"money max", "9223372036854.775807", 6, RISK_DEC_OK, INT64_MAX},
    {"money max + 1 micro", "9223372036854.775808", 6, RISK_DEC_OVERFLOW, 0},
    {"money integer part overflows on scaling", "9223372036855", 6, RISK_DEC_OVERFLOW, 0},
    {"qty max", "9223372036.854775807", 9, RISK_DEC_OK, INT64_MAX},
    {"qty over", "9223372037", 9, RISK_DEC_OVERFLOW, 0},
    {"huge with zeros", "100000000000000000000000000000.0", 6, RISK_DEC_OVERFLOW, 0},
    {"too many decimals", "1.0000001", 6, RISK_DEC_PRECISION, 0},
    {"too many decimals qty", "0.0000000001", 9, RISK_DEC_PRECISION, 0},
    {"scale 0 rejects fraction", "1.5", 0, RISK_DEC_PRECISION, 0},
    {"empty", "", 6, RISK_DEC_EMPTY, 0},
    {"plus alone", "+", 6, RISK_DEC_SYNTAX, 0},
    {"plus sign refused", "+1", 6, RISK_DEC_SYNTAX, 0},
    {"minus alone", "-", 6, RISK_DEC_SYNTAX, 0},
    {"double minus", "--1", 6, RISK_DEC_SYNTAX, 0},
    {"exponent", "1e5", 6, RISK_DEC_SYNTAX, 0},
    {"exponent upper", "1E5", 6, RISK_DEC_SYNTAX, 0},
    {"two points", "1.2.3", 6, RISK_DEC_SYNTAX, 0},
    {"leading space", " 1", 6, RISK_DEC_SYNTAX, 0},
    {"trailing space", "1 ", 6, RISK_DEC_SYNTAX, 0},
    {"NaN", "NaN", 6, RISK_DEC_SYNTAX, 0},
    {"inf", "inf", 6, RISK_DEC_SYNTAX, 0},
    {"leading point", ".5", 6, RISK_DEC_SYNTAX, 0},
    {"trailing point", "5.", 6, RISK_DEC_SYNTAX, 0},
    {"minus point", "-.5", 6, RISK_DEC_SYNTAX, 0},
    {"comma decimal", "1,5", 6, RISK_DEC_SYNTAX, 0},
    {"hex", "0x10", 6, RISK_DEC_SYNTAX, 0},
    {"underscore", "1_000", 6, RISK_DEC_SYNTAX, 0},
    {"unicode digit", "\xd9\xa1", 6, RISK_DEC_SYNTAX, 0},
    {"syntax error wins over precision", "1.0000001x", 6, RISK_DEC_SYNTAX, 0},
    {"syntax after overflow", "99999999999999999999x", 0, RISK_DEC_SYNTAX, 0},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const parse_case *c = &parse_cases[i];
        int64_t out = 424242;
        risk_dec_rc rc = risk_dec_parse(c->in, strlen(c->in), c->digits, &out);
        if (rc != c->rc) {
            fail_msg("%s: %s -> rc %d (%s), want %d", c->name, c->in, rc, risk_dec_strerror(rc),
                     c->rc);
        }
        if (rc == RISK_DEC_OK && out != c->want) {
            fail_msg("%s: %s -> %lld, want %lld", c->name, c->in, (long long)out,
                     (long long)c->want);
        }
        if (rc != RISK_DEC_OK && out != 424242) {
            fail_msg("%s: output written on error", c->name);
        }
    }
}

static void test_parse_embedded_nul_and_length(void **state)
{
    int64_t out;
    (void)state;
    assert_int_equal(risk_dec_parse("1\0002", 3, 6, &out), RISK_DEC_SYNTAX);
    /* Only len bytes are read: "12" with len 1 is "1". */
    assert_int_equal(risk_dec_parse("12", 1, 0, &out), RISK_DEC_OK);
    assert_int_equal(out, 1);
    assert_int_equal(risk_dec_parse(NULL, 0, 6, &out), RISK_DEC_INVALID);
    assert_int_equal(risk_dec_parse("1", 1, 19, &out), RISK_DEC_INVALID);
    assert_int_equal(risk_dec_parse("1", 1, -1, &out), RISK_DEC_INVALID);
    assert_int_equal(risk_money_parse(NULL, &out), RISK_DEC_INVALID);
}

typedef struct fmt_case {
    int64_t v;
    int digits;
    int min_frac;
    const char *want;
} fmt_case;

static const fmt_case fmt_cases[] = {
    {0, 6, 0, "0"},
    {0, 6, 2, "0.00"},
    {1, 6, 0, "0.000001"},
    {-1, 6, 0, "-0.000001"},
    {12500000, 6, 0, "12.5"},
    {12500000, 6, 2, "12.50"},
    {12000000, 6, 0, "12"},
    {INT64_MAX, 6, 0, "9223372036854.775807"},
    {-INT64_MAX, 6, 0, "-9223372036854.775807"},
    {INT64_MIN, 6, 0, "-9223372036854.775808"},
    {INT64_MIN, 0, 0, "-9223372036854775808"},
    {INT64_MAX, 18, 0, "9.223372036854775807"},
    {5, 18, 0, "0.000000000000000005"},
    {250000000, 9, 0, "0.25"},
    {-1000000000, 9, 3, "-1.000"},
};

static void test_format_table(void **state)
{
    char buf[RISK_DEC_STRMAX];
    size_t n = 0;
    (void)state;
    for (size_t i = 0; i < sizeof(fmt_cases) / sizeof(fmt_cases[0]); i++) {
        const fmt_case *c = &fmt_cases[i];
        assert_int_equal(risk_dec_format(c->v, c->digits, c->min_frac, buf, sizeof(buf), &n),
                         RISK_DEC_OK);
        assert_string_equal(buf, c->want);
        assert_int_equal(n, strlen(c->want));
    }
}

static void test_format_buffer_too_small(void **state)
{
    char buf[8];
    (void)state;
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(risk_money_format(INT64_MAX, buf, sizeof(buf)), RISK_DEC_BUFFER);
    assert_string_equal(buf, "");
    assert_int_equal(risk_money_format(1500000, buf, 4), RISK_DEC_OK); /* "1.5" + NUL */
    assert_string_equal(buf, "1.5");
    assert_int_equal(risk_money_format(1500000, buf, 3), RISK_DEC_BUFFER);
    assert_int_equal(risk_dec_format(1, 6, 7, buf, sizeof(buf), NULL), RISK_DEC_INVALID);
}

/* parse(format(v)) == v across edges and a deterministic pseudo-random sweep. */
static void test_round_trip(void **state)
{
    char buf[RISK_DEC_STRMAX];
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    const int64_t edges[] = {0,
                             1,
                             -1,
                             9,
                             10,
                             999999,
                             1000000,
                             -1000000,
                             INT64_MAX,
                             -INT64_MAX,
                             INT64_MAX - 1,
                             -INT64_MAX + 1,
                             1000000000000000000LL};
    (void)state;
    for (int digits = 0; digits <= 18; digits++) {
        for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
            int64_t back;
            assert_int_equal(risk_dec_format(edges[i], digits, 0, buf, sizeof(buf), NULL),
                             RISK_DEC_OK);
            assert_int_equal(risk_dec_parse(buf, strlen(buf), digits, &back), RISK_DEC_OK);
            assert_true(back == edges[i]);
        }
    }
    for (int i = 0; i < 200000; i++) {
        int64_t v;
        int64_t back;
        int digits = i % 19;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v = (int64_t)(x >> (i % 64)) * ((i & 1) ? -1 : 1);
        if (v == INT64_MIN) {
            continue;
        }
        assert_int_equal(risk_dec_format(v, digits, i % (digits + 1), buf, sizeof(buf), NULL),
                         RISK_DEC_OK);
        assert_int_equal(risk_dec_parse(buf, strlen(buf), digits, &back), RISK_DEC_OK);
        assert_true(back == v);
    }
}

static void test_notional(void **state)
{
    risk_money m = 0;
    (void)state;
    /* 100 shares x $12.345678 = $1234.5678 */
    assert_int_equal(risk_notional(RISK_SHARES(100), 12345678, RISK_ROUND_HALF_AWAY, &m),
                     RISK_DEC_OK);
    assert_int_equal(m, 1234567800);
    /* 0.000000001 share x $0.5 = 0.0000000005 USD: rounds to 0 or 1 micro by mode. */
    assert_int_equal(risk_notional(1, 500000, RISK_ROUND_TRUNC, &m), RISK_DEC_OK);
    assert_int_equal(m, 0);
    assert_int_equal(risk_notional(1, 500000, RISK_ROUND_AWAY, &m), RISK_DEC_OK);
    assert_int_equal(m, 1);
    /* 0.5 share x $0.000001 = half a micro: half-away -> 1, negative -> -1. */
    assert_int_equal(risk_notional(500000000, 1, RISK_ROUND_HALF_AWAY, &m), RISK_DEC_OK);
    assert_int_equal(m, 1);
    assert_int_equal(risk_notional(-500000000, 1, RISK_ROUND_HALF_AWAY, &m), RISK_DEC_OK);
    assert_int_equal(m, -1);
    assert_int_equal(risk_notional(499999999, 1, RISK_ROUND_HALF_AWAY, &m), RISK_DEC_OK);
    assert_int_equal(m, 0);
    /* Products far beyond 64 bits are computed exactly, then range-checked. */
    assert_int_equal(risk_notional(INT64_MAX, INT64_MAX, RISK_ROUND_TRUNC, &m), RISK_DEC_OVERFLOW);
    assert_int_equal(risk_notional(INT64_MIN, INT64_MIN, RISK_ROUND_TRUNC, &m), RISK_DEC_OVERFLOW);
    assert_int_equal(risk_notional(INT64_MAX, RISK_PRICE_SCALE, RISK_ROUND_TRUNC, &m), RISK_DEC_OK);
    assert_true(m == INT64_MAX / 1000); /* qty max shares x $1 */
    assert_int_equal(risk_notional(RISK_QTY_SCALE, INT64_MAX, RISK_ROUND_TRUNC, &m), RISK_DEC_OK);
    assert_true(m == INT64_MAX);
    assert_int_equal(risk_notional(RISK_QTY_SCALE + 1, INT64_MAX, RISK_ROUND_TRUNC, &m),
                     RISK_DEC_OVERFLOW);
    assert_int_equal(risk_notional(1, 1, RISK_ROUND_TRUNC, NULL), RISK_DEC_INVALID);
}

static void test_add_sub_bps(void **state)
{
    int64_t out = 7;
    (void)state;
    assert_int_equal(risk_money_add(INT64_MAX, 1, &out), RISK_DEC_OVERFLOW);
    assert_int_equal(out, 7);
    assert_int_equal(risk_money_add(-INT64_MAX, -1, &out), RISK_DEC_OVERFLOW);
    assert_int_equal(risk_money_sub(-INT64_MAX, 1, &out), RISK_DEC_OVERFLOW);
    assert_int_equal(risk_money_sub(INT64_MAX, INT64_MAX, &out), RISK_DEC_OK);
    assert_int_equal(out, 0);
    assert_int_equal(risk_money_add(INT64_MAX - 1, 1, &out), RISK_DEC_OK);
    assert_true(out == INT64_MAX);
    /* 2 % of $100,000 = $2,000 */
    assert_int_equal(risk_money_bps(RISK_USD(100000), 200, RISK_ROUND_TRUNC, &out), RISK_DEC_OK);
    assert_true(out == RISK_USD(2000));
    /* 1 bps of 1 micro: 0.0001 micro -> 0 truncated, 1 away. */
    assert_int_equal(risk_money_bps(1, 1, RISK_ROUND_TRUNC, &out), RISK_DEC_OK);
    assert_int_equal(out, 0);
    assert_int_equal(risk_money_bps(1, 1, RISK_ROUND_AWAY, &out), RISK_DEC_OK);
    assert_int_equal(out, 1);
    assert_int_equal(risk_money_bps(INT64_MAX, 20000, RISK_ROUND_TRUNC, &out), RISK_DEC_OVERFLOW);
    assert_int_equal(risk_ratio_bps(RISK_USD(2), RISK_USD(100), RISK_ROUND_TRUNC, &out),
                     RISK_DEC_OK);
    assert_int_equal(out, 200);
    assert_int_equal(risk_ratio_bps(1, -3, RISK_ROUND_HALF_AWAY, &out), RISK_DEC_OK);
    assert_int_equal(out, -3333);
    assert_int_equal(risk_ratio_bps(1, 0, RISK_ROUND_TRUNC, &out), RISK_DEC_INVALID);
    assert_int_equal(risk_ratio_bps(INT64_MAX, 1, RISK_ROUND_TRUNC, &out), RISK_DEC_OVERFLOW);
    assert_int_equal(risk_ratio_bps(INT64_MIN, INT64_MIN, RISK_ROUND_TRUNC, &out), RISK_DEC_OK);
    assert_int_equal(out, 10000);
}

static void test_cmp_bps_exact(void **state)
{
    (void)state;
    /* 2 % of 100,000.000000 is exactly 2,000.000000. */
    assert_int_equal(risk_cmp_bps(RISK_USD(2000), RISK_USD(100000), 200), 0);
    assert_int_equal(risk_cmp_bps(RISK_USD(2000) + 1, RISK_USD(100000), 200), 1);
    assert_int_equal(risk_cmp_bps(RISK_USD(2000) - 1, RISK_USD(100000), 200), -1);
    /* Extreme operands cannot overflow the 128-bit products. */
    assert_int_equal(risk_cmp_bps(INT64_MAX, INT64_MAX, 10000), 0);
    assert_int_equal(risk_cmp_bps(INT64_MIN, INT64_MAX, 10000), -1);
    assert_int_equal(risk_cmp_bps(INT64_MAX, INT64_MIN, INT32_MAX), 1);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(risk_dec_strerror(RISK_DEC_OK), "ok");
    assert_string_equal(risk_dec_strerror((risk_dec_rc)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),  cmocka_unit_test(test_parse_embedded_nul_and_length),
        cmocka_unit_test(test_format_table), cmocka_unit_test(test_format_buffer_too_small),
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_notional),
        cmocka_unit_test(test_add_sub_bps),  cmocka_unit_test(test_cmp_bps_exact),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
