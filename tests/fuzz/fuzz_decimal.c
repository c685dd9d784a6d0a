/*
 * fuzz_decimal - the decimal wire format of money, prices and quantities (risk/money.h).
 * Byte 0 picks the parser: money, price, qty (NUL-terminated wrappers) or risk_dec_parse at
 * scale (byte 0 % 19) on the raw bytes, embedded NULs included.
 * Properties, for every accepted input: the value is in the symmetric range (never INT64_MIN);
 * format then parse gives the same value; the formatted text is canonical (formatting the
 * re-parsed value gives the same text); and a non-canonical accepted input only differs by
 * leading zeros, trailing fractional zeros or a "-0" sign.
 */
#include "fuzz.h"

#include <string.h>

#include "risk/money.h"

static void round_trip(int64_t v, int digits)
{
    char buf[RISK_DEC_STRMAX], again[RISK_DEC_STRMAX];
    size_t len = 0, len2 = 0;
    int64_t back = 0;
    FUZZ_CHECK(v != INT64_MIN);
    FUZZ_CHECK(risk_dec_format(v, digits, 0, buf, sizeof(buf), &len) == RISK_DEC_OK);
    FUZZ_CHECK(len == strlen(buf));
    FUZZ_CHECK(risk_dec_parse(buf, len, digits, &back) == RISK_DEC_OK && back == v);
    FUZZ_CHECK(risk_dec_format(back, digits, 0, again, sizeof(again), &len2) == RISK_DEC_OK);
    FUZZ_CHECK(len == len2 && memcmp(buf, again, len) == 0);
    /* Every min_frac gives the same value back. */
    for (int mf = 0; mf <= digits; mf++) {
        FUZZ_CHECK(risk_dec_format(v, digits, mf, buf, sizeof(buf), &len) == RISK_DEC_OK);
        FUZZ_CHECK(risk_dec_parse(buf, len, digits, &back) == RISK_DEC_OK && back == v);
    }
}

/* The canonical text of an accepted input by the grammar's rules alone (no arithmetic): drop
 * leading integer zeros (keep one), trailing fractional zeros and an empty ".", and the sign of
 * zero. Written into out (cap RISK_DEC_STRMAX); 0, or -1 when it would not fit (then the check
 * is skipped: an accepted input can only be that long through zero padding). */
static int normalise(const char *in, size_t len, char *out)
{
    size_t i = 0, o = 0;
    int neg = len > 0 && in[0] == '-';
    if (neg)
        i++;
    while (i + 1 < len && in[i] == '0' && in[i + 1] != '.')
        i++;
    size_t end = len;
    const char *dot = memchr(in + i, '.', len - i);
    if (dot) {
        while (end > (size_t)(dot - in) + 1 && in[end - 1] == '0')
            end--;
        if (end == (size_t)(dot - in) + 1)
            end--;
    }
    if (end - i + 2 > RISK_DEC_STRMAX)
        return -1;
    if (neg && !(end - i == 1 && in[i] == '0'))
        out[o++] = '-';
    memcpy(out + o, in + i, end - i);
    out[o + end - i] = '\0';
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] & 3, digits;
    char *s = fuzz_strndup(data + 1, size - 1);
    int64_t v = 0;
    risk_dec_rc rc;
    char canon[RISK_DEC_STRMAX];
    switch (which) {
    case 0:
        rc = risk_money_parse(s, &v);
        digits = RISK_MONEY_DIGITS;
        break;
    case 1:
        rc = risk_price_parse(s, &v);
        digits = RISK_PRICE_DIGITS;
        break;
    case 2:
        rc = risk_qty_parse(s, &v);
        digits = RISK_QTY_DIGITS;
        break;
    default:
        digits = (data[0] >> 2) % 19;
        rc = risk_dec_parse(s, size - 1, digits, &v);
        break;
    }
    if (rc == RISK_DEC_OK) {
        char norm[RISK_DEC_STRMAX];
        size_t len = 0, in_len = which == 3 ? size - 1 : strlen(s);
        round_trip(v, digits);
        FUZZ_CHECK(risk_dec_format(v, digits, 0, canon, sizeof(canon), &len) == RISK_DEC_OK);
        if (normalise(s, in_len, norm) == 0)
            FUZZ_CHECK(strcmp(norm, canon) == 0);
        /* Money and quantity formatters agree with the generic one. */
        if (which == 0 || which == 1)
            FUZZ_CHECK(risk_money_format(v, canon, sizeof(canon)) == RISK_DEC_OK);
        if (which == 2)
            FUZZ_CHECK(risk_qty_format(v, canon, sizeof(canon)) == RISK_DEC_OK);
    } else {
        FUZZ_CHECK(rc == RISK_DEC_EMPTY || rc == RISK_DEC_SYNTAX || rc == RISK_DEC_PRECISION ||
                   rc == RISK_DEC_OVERFLOW);
    }
    free(s);
    return 0;
}
