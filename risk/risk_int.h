/*
 * risk/risk_int.h — internals shared by the risk library's own files (not for other folders):
 * the fixed-width symbol key used by the sector map index and the engine.
 *
 * A symbol lives in a char[RISK_SYMBOL_MAX] field. Its key is those 16 bytes with everything
 * from the first NUL on zeroed, read as two 64-bit words: equality is two compares, and the
 * hash mixes the two words. Bytes after the NUL (whatever a caller left there) never matter.
 */
#ifndef TW_RISK_RISK_INT_H
#define TW_RISK_RISK_INT_H

#include <stdint.h>
#include <string.h>

#include "risk/risk.h"

typedef struct risk_symkey {
    uint64_t a;
    uint64_t b;
} risk_symkey;

/* Character classes accepted in symbols: A-Z 0-9 . - / */
static inline int risk_symbol_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '/';
}

/* Strict check: 1..15 accepted characters then a NUL within the buffer. */
static inline int risk_symbol_valid(const char *s)
{
    int i = 0;
    for (; i < RISK_SYMBOL_MAX && s[i] != '\0'; i++) {
        if (!risk_symbol_char_ok((unsigned char)s[i])) {
            return 0;
        }
    }
    return i > 0 && i < RISK_SYMBOL_MAX;
}

static inline uint64_t risk_symkey_hash(const risk_symkey *k)
{
    uint64_t h =
        k->a * 0x9e3779b97f4a7c15ULL ^ (k->b + 0x632be59bd9b4e019ULL) * 0xc2b2ae3d27d4eb4fULL;
    h ^= h >> 31;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

static inline int risk_symkey_eq(const risk_symkey *x, const risk_symkey *y)
{
    return x->a == y->a && x->b == y->b;
}

/*
 * Builds the key of a char[RISK_SYMBOL_MAX] symbol field (the whole field must be readable).
 * Returns 0, or -1 when the symbol is empty or has no NUL within the field. Character classes
 * are not checked here (see risk_symbol_valid).
 */
static inline int risk_symkey_make(const char *field, risk_symkey *k)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t lo = 0x0101010101010101ULL;
    const uint64_t hi = 0x8080808080808080ULL;
    uint64_t a;
    uint64_t b;
    uint64_t z;

    memcpy(&a, field, 8);
    memcpy(&b, field + 8, 8);
    z = (a - lo) & ~a & hi; /* lowest set marker = first zero byte */
    if (z != 0) {
        int idx = __builtin_ctzll(z) / 8;
        if (idx == 0) {
            return -1;
        }
        a &= (1ULL << (8 * idx)) - 1;
        b = 0;
    } else {
        z = (b - lo) & ~b & hi;
        if (z == 0) {
            return -1;
        }
        int idx = __builtin_ctzll(z) / 8;
        b = idx == 0 ? 0 : (b & ((1ULL << (8 * idx)) - 1));
    }
    k->a = a;
    k->b = b;
    return 0;
#else
    unsigned char buf[RISK_SYMBOL_MAX];
    size_t n = strnlen(field, RISK_SYMBOL_MAX);
    if (n == 0 || n == RISK_SYMBOL_MAX) {
        return -1;
    }
    memset(buf, 0, sizeof(buf));
    memcpy(buf, field, n);
    memcpy(&k->a, buf, 8);
    memcpy(&k->b, buf + 8, 8);
    return 0;
#endif
}

/* risk_sectors_lookup for a key and its hash. */
int risk_sectors_lookup_key(const risk_sector_map *map, const risk_symkey *key, uint64_t hash);

#endif
