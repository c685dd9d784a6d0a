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

/*
 * The day-trade counting machine of one symbol, shared by the engine's PDT rule and
 * risk_day_trades so that both count exactly alike (the rule is described at risk_day_trades in
 * risk.h). Start it with the overnight position, then step it through the day's executions in
 * order, then (the engine) through pending orders as if they filled.
 */
#define RISK_PDT_COUNTED_MAX 32 /* orders remembered per symbol as having completed one */

__extension__ typedef __int128 risk_i128;

typedef struct risk_pdt_sim {
    risk_i128 p;        /* signed position */
    risk_i128 intraday; /* |part of p| opened today */
    int last_dir;       /* direction of the previous execution, 0 none */
    int count;          /* day trades */
    uint64_t counted[RISK_PDT_COUNTED_MAX];
    int n_counted;
} risk_pdt_sim;

static inline void risk_pdt_sim_start(risk_pdt_sim *m, risk_i128 overnight)
{
    m->p = overnight;
    m->intraday = 0;
    m->last_dir = 0;
    m->count = 0;
    m->n_counted = 0;
}

/* One execution of dir (+1 buy, -1 sell) and qty > 0 (order_id 0 = unknown order); returns 1
 * when it completes a day trade. */
static inline int risk_pdt_step(risk_pdt_sim *m, int dir, risk_i128 qty, uint64_t order_id)
{
    int counted = 0;

    if (m->p == 0 || (m->p > 0 ? 1 : -1) == dir) {
        m->intraday += qty;
    } else {
        risk_i128 absp = m->p < 0 ? -m->p : m->p;
        risk_i128 close = qty < absp ? qty : absp;
        risk_i128 closed_today = close < m->intraday ? close : m->intraday;
        int seen = 0;
        for (int i = 0; i < m->n_counted && order_id != 0; i++) {
            seen = seen || m->counted[i] == order_id;
        }
        if (closed_today > 0 && m->last_dir != dir && !seen) {
            counted = 1;
            m->count++;
            if (order_id != 0 && m->n_counted < RISK_PDT_COUNTED_MAX) {
                m->counted[m->n_counted++] = order_id;
            }
        }
        m->intraday -= closed_today;
        if (qty > close) {
            m->intraday = qty - close; /* flipped: the new side is all opened today */
        }
    }
    m->p += dir * qty;
    m->last_dir = dir;
    return counted;
}

/* risk_sectors_lookup for a key and its hash. */
int risk_sectors_lookup_key(const risk_sector_map *map, const risk_symkey *key, uint64_t hash);

#endif
