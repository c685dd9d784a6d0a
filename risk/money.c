/*
 * risk/money.c — decimal parse/format and checked fixed-point arithmetic (see money.h for the
 * scales and the exact grammar).
 *
 * Design: the parser accumulates the magnitude in an unsigned 64-bit value and checks every
 * step against INT64_MAX, so it never relies on signed overflow; the sign is applied last.
 * Products use a 128-bit intermediate (__int128, available in gcc and clang on 64-bit
 * targets) and are range-checked before narrowing. Invariant: every value these functions
 * produce lies in [-INT64_MAX, INT64_MAX].
 */
#include "risk/money.h"

#include <string.h>

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

static const uint64_t pow10_u64[19] = {1ULL,
                                       10ULL,
                                       100ULL,
                                       1000ULL,
                                       10000ULL,
                                       100000ULL,
                                       1000000ULL,
                                       10000000ULL,
                                       100000000ULL,
                                       1000000000ULL,
                                       10000000000ULL,
                                       100000000000ULL,
                                       1000000000000ULL,
                                       10000000000000ULL,
                                       100000000000000ULL,
                                       1000000000000000ULL,
                                       10000000000000000ULL,
                                       100000000000000000ULL,
                                       1000000000000000000ULL};

const char *risk_dec_strerror(risk_dec_rc rc)
{
    switch (rc) {
    case RISK_DEC_OK:
        return "ok";
    case RISK_DEC_EMPTY:
        return "empty";
    case RISK_DEC_SYNTAX:
        return "syntax";
    case RISK_DEC_PRECISION:
        return "too many decimal places";
    case RISK_DEC_OVERFLOW:
        return "overflow";
    case RISK_DEC_BUFFER:
        return "buffer too small";
    case RISK_DEC_INVALID:
        return "invalid argument";
    }
    return "unknown";
}

/* Appends one decimal digit to *acc; fails when the result would exceed INT64_MAX. */
static int acc_digit(uint64_t *acc, unsigned d)
{
    if (*acc > ((uint64_t)INT64_MAX - d) / 10) {
        return -1;
    }
    *acc = *acc * 10 + d;
    return 0;
}

risk_dec_rc risk_dec_parse(const char *s, size_t len, int digits, int64_t *out)
{
    risk_dec_rc rc = RISK_DEC_OK;
    uint64_t acc = 0;
    size_t i = 0;
    int neg = 0;
    int frac = 0;
    int overflow = 0;

    if (s == NULL || out == NULL || digits < 0 || digits > 18) {
        return RISK_DEC_INVALID;
    }
    if (len == 0) {
        return RISK_DEC_EMPTY;
    }
    if (s[0] == '-') {
        neg = 1;
        i = 1;
    }
    /* Integer part: at least one digit. */
    if (i >= len || s[i] < '0' || s[i] > '9') {
        return RISK_DEC_SYNTAX;
    }
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (acc_digit(&acc, (unsigned)(s[i] - '0')) != 0) {
            overflow = 1;
        }
    }
    if (i < len) {
        if (s[i] != '.') {
            return RISK_DEC_SYNTAX;
        }
        i++;
        if (i >= len) {
            return RISK_DEC_SYNTAX; /* "5." */
        }
        for (; i < len; i++) {
            if (s[i] < '0' || s[i] > '9') {
                return RISK_DEC_SYNTAX;
            }
            if (frac < digits) {
                if (acc_digit(&acc, (unsigned)(s[i] - '0')) != 0) {
                    overflow = 1;
                }
                frac++;
            } else if (s[i] != '0') {
                rc = RISK_DEC_PRECISION; /* keep scanning: syntax errors win */
            }
        }
    }
    if (rc != RISK_DEC_OK) {
        return rc;
    }
    /* Scale the integer part up by the fractional digits not written. */
    for (; frac < digits; frac++) {
        if (acc_digit(&acc, 0) != 0) {
            overflow = 1;
        }
    }
    if (overflow) {
        return RISK_DEC_OVERFLOW;
    }
    *out = neg ? -(int64_t)acc : (int64_t)acc;
    return RISK_DEC_OK;
}

risk_dec_rc risk_money_parse(const char *s, risk_money *out)
{
    return s == NULL ? RISK_DEC_INVALID : risk_dec_parse(s, strlen(s), RISK_MONEY_DIGITS, out);
}

risk_dec_rc risk_price_parse(const char *s, risk_price *out)
{
    return s == NULL ? RISK_DEC_INVALID : risk_dec_parse(s, strlen(s), RISK_PRICE_DIGITS, out);
}

risk_dec_rc risk_qty_parse(const char *s, risk_qty *out)
{
    return s == NULL ? RISK_DEC_INVALID : risk_dec_parse(s, strlen(s), RISK_QTY_DIGITS, out);
}

risk_dec_rc risk_dec_format(int64_t v, int digits, int min_frac, char *buf, size_t cap,
                            size_t *len_out)
{
    char tmp[RISK_DEC_STRMAX];
    size_t n = 0;
    uint64_t mag;
    uint64_t ip;
    uint64_t fp;
    char fbuf[20];
    int nfrac;

    if (buf == NULL || digits < 0 || digits > 18 || min_frac < 0 || min_frac > digits) {
        return RISK_DEC_INVALID;
    }
    if (cap > 0) {
        buf[0] = '\0';
    }
    /* Magnitude in unsigned arithmetic: well defined for INT64_MIN too. */
    mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    ip = mag / pow10_u64[digits];
    fp = mag % pow10_u64[digits];
    if (v < 0) {
        tmp[n++] = '-';
    }
    {
        char ibuf[24];
        int k = 0;
        do {
            ibuf[k++] = (char)('0' + ip % 10);
            ip /= 10;
        } while (ip != 0);
        while (k > 0) {
            tmp[n++] = ibuf[--k];
        }
    }
    for (int k = digits - 1; k >= 0; k--) {
        fbuf[k] = (char)('0' + fp % 10);
        fp /= 10;
    }
    nfrac = digits;
    while (nfrac > min_frac && fbuf[nfrac - 1] == '0') {
        nfrac--;
    }
    if (nfrac > 0) {
        tmp[n++] = '.';
        memcpy(tmp + n, fbuf, (size_t)nfrac);
        n += (size_t)nfrac;
    }
    if (n + 1 > cap) {
        return RISK_DEC_BUFFER;
    }
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    if (len_out != NULL) {
        *len_out = n;
    }
    return RISK_DEC_OK;
}

risk_dec_rc risk_money_format(risk_money v, char *buf, size_t cap)
{
    return risk_dec_format(v, RISK_MONEY_DIGITS, 0, buf, cap, NULL);
}

risk_dec_rc risk_qty_format(risk_qty v, char *buf, size_t cap)
{
    return risk_dec_format(v, RISK_QTY_DIGITS, 0, buf, cap, NULL);
}

static risk_dec_rc narrow(i128 v, int64_t *out)
{
    if (v > (i128)INT64_MAX || v < -(i128)INT64_MAX) {
        return RISK_DEC_OVERFLOW;
    }
    *out = (int64_t)v;
    return RISK_DEC_OK;
}

risk_dec_rc risk_money_add(int64_t a, int64_t b, int64_t *out)
{
    if (out == NULL) {
        return RISK_DEC_INVALID;
    }
    return narrow((i128)a + (i128)b, out);
}

risk_dec_rc risk_money_sub(int64_t a, int64_t b, int64_t *out)
{
    if (out == NULL) {
        return RISK_DEC_INVALID;
    }
    return narrow((i128)a - (i128)b, out);
}

/* num / den rounded as asked; den > 0. Works on magnitudes so the rules are sign-symmetric. */
static i128 div_round(i128 num, i128 den, risk_round mode)
{
    int neg = num < 0;
    u128 mag = neg ? (u128)0 - (u128)num : (u128)num;
    u128 d = (u128)den;
    u128 q = mag / d;
    u128 r = mag % d;

    switch (mode) {
    case RISK_ROUND_TRUNC:
        break;
    case RISK_ROUND_AWAY:
        if (r != 0) {
            q++;
        }
        break;
    case RISK_ROUND_HALF_AWAY:
    default:
        if (r >= d - r) {
            q++;
        }
        break;
    }
    /* q <= 2^127 / 1 only in theory; callers divide products of two int64 by >= 1. */
    return neg ? -(i128)q : (i128)q;
}

risk_dec_rc risk_notional(risk_qty qty, risk_price price, risk_round mode, risk_money *out)
{
    if (out == NULL) {
        return RISK_DEC_INVALID;
    }
    /* 1e9 * 1e6 -> 1e6: divide the 1e15-scaled product by 1e9. */
    return narrow(div_round((i128)qty * (i128)price, (i128)RISK_QTY_SCALE, mode), out);
}

risk_dec_rc risk_money_bps(risk_money amount, int32_t bps, risk_round mode, risk_money *out)
{
    if (out == NULL) {
        return RISK_DEC_INVALID;
    }
    return narrow(div_round((i128)amount * (i128)bps, (i128)RISK_BPS_SCALE, mode), out);
}

risk_dec_rc risk_ratio_bps(int64_t part, int64_t whole, risk_round mode, int64_t *out)
{
    i128 num;
    i128 den;

    if (out == NULL || whole == 0) {
        return RISK_DEC_INVALID;
    }
    num = (i128)part * RISK_BPS_SCALE;
    den = (i128)whole;
    if (den < 0) {
        num = -num;
        den = -den;
    }
    return narrow(div_round(num, den, mode), out);
}

int risk_cmp_bps(int64_t part, int64_t whole, int32_t bps)
{
    i128 l = (i128)part * RISK_BPS_SCALE;
    i128 r = (i128)bps * (i128)whole;

    return l < r ? -1 : (l > r ? 1 : 0);
}
