/*
 * auth_b64.c - strict base64url for JWS (RFC 7515 section 2, RFC 4648 section 5).
 *
 * Design: one decode table; every input byte is checked, so '=', '+', '/', whitespace and NUL
 * are refused. Canonical form only: a length of 1 mod 4 is impossible and the unused low bits
 * of the last character must be zero, so each byte string has exactly one accepted encoding
 * (a token cannot be altered without changing its signing input).
 */
#include "auth_int.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63, or 0xff for a byte outside the alphabet. */
static const uint8_t b64_rev[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
}; /* stored +1 so that 0 means "not in the alphabet" */

size_t auth_b64url_encoded_len(size_t n)
{
    return (n / 3) * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

void auth_b64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
}

int auth_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t rem = len % 4, full = len - rem, need = full / 4 * 3 + (rem ? rem - 1 : 0);
    size_t i, o = 0;
    if (rem == 1 || need > cap)
        return -1;
    for (i = 0; i < full; i += 4) {
        uint8_t a = b64_rev[(uint8_t)in[i]], b = b64_rev[(uint8_t)in[i + 1]];
        uint8_t c = b64_rev[(uint8_t)in[i + 2]], d = b64_rev[(uint8_t)in[i + 3]];
        if (!a || !b || !c || !d)
            return -1;
        uint32_t v = (uint32_t)(a - 1) << 18 | (uint32_t)(b - 1) << 12 | (uint32_t)(c - 1) << 6 |
                     (uint32_t)(d - 1);
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (rem) {
        uint8_t a = b64_rev[(uint8_t)in[i]], b = b64_rev[(uint8_t)in[i + 1]];
        uint8_t c = rem == 3 ? b64_rev[(uint8_t)in[i + 2]] : 1;
        if (!a || !b || !c)
            return -1;
        uint32_t v = (uint32_t)(a - 1) << 18 | (uint32_t)(b - 1) << 12 | (uint32_t)(c - 1) << 6;
        if (rem == 2) {
            if (v & 0xffff) /* low 4 bits of the second character must be zero */
                return -1;
            out[o++] = (uint8_t)(v >> 16);
        } else {
            if (v & 0xff) /* low 2 bits of the third character must be zero */
                return -1;
            out[o++] = (uint8_t)(v >> 16);
            out[o++] = (uint8_t)(v >> 8);
        }
    }
    *outlen = o;
    return 0;
}
