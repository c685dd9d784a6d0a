/*
 * risk/money.h — fixed-point money, prices and quantities for all of Tradewink core.
 *
 * THE SCALES (the one place they are documented):
 *
 *   kind                      C type        scale        resolution        largest magnitude
 *   money (cash, P&L, equity) risk_money    10^6         0.000001 USD      9,223,372,036,854.775807
 *   price (per share)         risk_price    10^6         0.000001 USD      9,223,372,036,854.775807
 *   quantity (shares)         risk_qty      10^9         0.000000001 share 9,223,372,036.854775807
 *   ratios (limits)           int32_t bps   10^4 = 100%  0.01 %            (validated per field)
 *
 * All three are plain int64_t with the decimal point moved: "12.5" dollars is 12500000 money,
 * "0.25" shares is 250000000 qty. No double or float is ever used for these values; products
 * go through a 128-bit intermediate and are checked for overflow.
 *
 * The valid range is symmetric: [-INT64_MAX, INT64_MAX]. INT64_MIN is never produced by the
 * parser or the arithmetic helpers, so negating any value we hand out is always defined.
 *
 * Decimal strings (the wire form, as Alpaca uses) follow this grammar, nothing else:
 *     ["-"] DIGIT+ [ "." DIGIT+ ]
 *   - no leading "+", no whitespace anywhere, no exponent, no "NaN"/"Inf", no ".5" or "5.";
 *   - leading zeros are accepted ("007.50" = 7.5);
 *   - "-0" and "-0.000" are accepted and mean 0 (there is no negative zero in int64);
 *   - more fractional digits than the scale are accepted only when the extra digits are all
 *     zero (the value is still exact); a non-zero digit beyond the scale is RISK_DEC_PRECISION,
 *     never silently rounded;
 *   - magnitudes above INT64_MAX units are RISK_DEC_OVERFLOW (also "-9223372036854775808" at
 *     scale 0: see the symmetric range above).
 * Formatting writes the canonical form: "-" only for negative values, no leading zeros, at
 * least min_frac fractional digits, trailing zeros beyond that trimmed, no "." when there is
 * no fractional digit. parse(format(v)) == v for every v in the valid range.
 *
 * Nothing here allocates, reads a clock, or touches global state.
 */
#ifndef TW_RISK_MONEY_H
#define TW_RISK_MONEY_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t risk_money; /* scale RISK_MONEY_SCALE */
typedef int64_t risk_price; /* scale RISK_PRICE_SCALE */
typedef int64_t risk_qty;   /* scale RISK_QTY_SCALE */

#define RISK_MONEY_DIGITS 6
#define RISK_PRICE_DIGITS 6
#define RISK_QTY_DIGITS 9
#define RISK_MONEY_SCALE INT64_C(1000000)
#define RISK_PRICE_SCALE INT64_C(1000000)
#define RISK_QTY_SCALE INT64_C(1000000000)
#define RISK_BPS_SCALE 10000 /* 10000 bps = 100 % */

/* Whole units to fixed point, for constants in code and tests: RISK_USD(25000). */
#define RISK_USD(n) ((risk_money)(n)*RISK_MONEY_SCALE)
#define RISK_SHARES(n) ((risk_qty)(n)*RISK_QTY_SCALE)

/* Largest buffer risk_dec_format can need: sign + 19 digits + "." + "0" padding + NUL. */
#define RISK_DEC_STRMAX 48

/* Results of the decimal helpers. Only ever appended. */
typedef enum risk_dec_rc {
    RISK_DEC_OK = 0,
    RISK_DEC_EMPTY = 1,     /* zero-length input */
    RISK_DEC_SYNTAX = 2,    /* not ["-"] DIGIT+ ["." DIGIT+] */
    RISK_DEC_PRECISION = 3, /* a non-zero digit beyond the scale */
    RISK_DEC_OVERFLOW = 4,  /* magnitude above INT64_MAX units, or an arithmetic overflow */
    RISK_DEC_BUFFER = 5,    /* output buffer too small */
    RISK_DEC_INVALID = 6,   /* bad argument (NULL pointer, scale out of 0..18, divide by 0) */
} risk_dec_rc;

/* Rounding for the arithmetic helpers. */
typedef enum risk_round {
    RISK_ROUND_HALF_AWAY = 0, /* to nearest, ties away from zero (commercial rounding) */
    RISK_ROUND_TRUNC = 1,     /* toward zero */
    RISK_ROUND_AWAY = 2,      /* away from zero: the conservative choice for exposure checks */
} risk_round;

/* Static English name of a result code ("ok", "syntax", ...). Never NULL. */
const char *risk_dec_strerror(risk_dec_rc rc);

/*
 * Parses s[0..len) (not NUL-terminated; an embedded NUL is a syntax error) as a decimal with
 * `digits` fractional digits of scale (0..18) into *out. *out is written only on RISK_DEC_OK.
 */
risk_dec_rc risk_dec_parse(const char *s, size_t len, int digits, int64_t *out);

/* Convenience wrappers for NUL-terminated strings at the documented scales. */
risk_dec_rc risk_money_parse(const char *s, risk_money *out);
risk_dec_rc risk_price_parse(const char *s, risk_price *out);
risk_dec_rc risk_qty_parse(const char *s, risk_qty *out);

/*
 * Formats v (scale `digits`, 0..18) into buf (capacity cap, always NUL-terminated on success)
 * with at least min_frac (0..digits) fractional digits. On success *len_out (may be NULL) gets
 * the length without the NUL. RISK_DEC_BUFFER when cap is too small (buf then holds "").
 * Every int64_t, INT64_MIN included, is formatted exactly.
 */
risk_dec_rc risk_dec_format(int64_t v, int digits, int min_frac, char *buf, size_t cap,
                            size_t *len_out);

/* Canonical money/price ("12.5", "-0.000001") and quantity ("0.25") formatting. */
risk_dec_rc risk_money_format(risk_money v, char *buf, size_t cap);
risk_dec_rc risk_qty_format(risk_qty v, char *buf, size_t cap);

/* Checked addition/subtraction in the symmetric range; *out untouched on overflow. */
risk_dec_rc risk_money_add(int64_t a, int64_t b, int64_t *out);
risk_dec_rc risk_money_sub(int64_t a, int64_t b, int64_t *out);

/*
 * Notional = qty (1e9) * price (1e6) -> money (1e6), computed in 128 bits and rounded as asked.
 * RISK_DEC_OVERFLOW when the result leaves the symmetric range.
 */
risk_dec_rc risk_notional(risk_qty qty, risk_price price, risk_round mode, risk_money *out);

/* amount * bps / 10000 (a percentage of a money amount), 128-bit intermediate, rounded. */
risk_dec_rc risk_money_bps(risk_money amount, int32_t bps, risk_round mode, risk_money *out);

/*
 * part / whole expressed in basis points, rounded as asked. whole must be non-zero.
 * Example: risk_ratio_bps(RISK_USD(2), RISK_USD(100), ...) -> 200 (2 %).
 */
risk_dec_rc risk_ratio_bps(int64_t part, int64_t whole, risk_round mode, int64_t *out);

/*
 * Exact comparison of part/whole against bps/10000 without division: returns -1, 0 or 1 for
 * part*10000 <, ==, > bps*whole. Both products are formed in 128 bits, so it cannot overflow.
 * Used for every "at most N % of X" rule: exactly at the limit compares equal.
 */
int risk_cmp_bps(int64_t part, int64_t whole, int32_t bps);

#endif
