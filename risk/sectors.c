/*
 * risk/sectors.c — symbol -> GICS sector map parsed from a CSV buffer (no file access: the
 * server reads risk/data/sp500-constituents.csv or a configured path and hands us the bytes).
 *
 * Design: entries live in one array sorted by symbol (strcmp order), so iteration and
 * duplicate detection are deterministic and risk_sectors_lookup can bsearch. Because the engine
 * looks up every held symbol on every decision, the map also carries an open-addressing index
 * (power-of-two slots holding key and sector, linear probing, risk_symkey_hash) built from the
 * same array; it is an accelerator only and is checked against the sorted array in tests. Sector
 * ids are the positions of the names in sorted order. Invariant: the map is immutable after parse,
 * so it can be shared across threads without locks.
 */
#include "risk/risk_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sector_entry {
    union {
        char symbol[RISK_SYMBOL_MAX]; /* zero-padded, so its bytes are also its key */
        risk_symkey key;
    } u;
    uint64_t hash;
    int32_t sector;
} sector_entry;

struct risk_sector_map {
    sector_entry *entries; /* sorted by symbol */
    size_t n;
    risk_symkey *slot_keys; /* hash index: all-zero key = empty; n_slots is a power of two */
    int32_t *slot_sector;   /* the sector of the key in the same slot */
    size_t n_slots;
    size_t n_sectors;
    char names[RISK_SECTORS_MAX][RISK_SECTOR_NAME_MAX];
};

#define FIELD_MAX 256

/* CSV cursor over the input buffer. */
typedef struct csv {
    const char *p;
    const char *end;
    size_t line; /* 1-based line of the cursor */
} csv;

/*
 * Reads one field into out (truncated to FIELD_MAX-1; *truncated set). Returns 1 when the field
 * ended its record (newline or end of input), 0 when a comma follows, -1 on a quoting error.
 */
static int csv_field(csv *c, char *out, int *truncated)
{
    size_t n = 0;
    *truncated = 0;

    if (c->p < c->end && *c->p == '"') {
        c->p++;
        for (;;) {
            if (c->p >= c->end) {
                return -1; /* unterminated quote */
            }
            char ch = *c->p++;
            if (ch == '"') {
                if (c->p < c->end && *c->p == '"') {
                    c->p++;
                } else {
                    break;
                }
            } else if (ch == '\n') {
                c->line++;
            }
            if (n + 1 < FIELD_MAX) {
                out[n++] = ch;
            } else {
                *truncated = 1;
            }
        }
    } else {
        while (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r') {
            if (*c->p == '"') {
                return -1; /* a quote inside an unquoted field */
            }
            if (n + 1 < FIELD_MAX) {
                out[n++] = *c->p;
            } else {
                *truncated = 1;
            }
            c->p++;
        }
    }
    out[n] = '\0';
    if (c->p >= c->end) {
        return 1;
    }
    if (*c->p == ',') {
        c->p++;
        return 0;
    }
    if (*c->p == '\r') {
        c->p++;
        if (c->p < c->end && *c->p != '\n') {
            return -1; /* bare CR */
        }
    }
    if (c->p < c->end && *c->p == '\n') {
        c->p++;
        c->line++;
        return 1;
    }
    return -1; /* garbage after a closing quote */
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const sector_entry *)a)->u.symbol, ((const sector_entry *)b)->u.symbol);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void set_err(char *err, size_t cap, size_t line, const char *what)
{
    if (err != NULL && cap > 0) {
        snprintf(err, cap, "sector CSV line %zu: %s", line, what);
    }
}

static int build_index(risk_sector_map *m)
{
    size_t want = 16;
    while (want < m->n * 2) {
        want *= 2;
    }
    m->slot_keys = calloc(want, sizeof(*m->slot_keys));
    m->slot_sector = calloc(want, sizeof(*m->slot_sector));
    if (m->slot_keys == NULL || m->slot_sector == NULL) {
        return -1;
    }
    m->n_slots = want;
    for (size_t i = 0; i < m->n; i++) {
        size_t s = (size_t)m->entries[i].hash & (want - 1);
        while (m->slot_keys[s].a != 0) {
            s = (s + 1) & (want - 1);
        }
        m->slot_keys[s] = m->entries[i].u.key;
        m->slot_sector[s] = m->entries[i].sector;
    }
    return 0;
}

int risk_sectors_parse(const char *buf, size_t len, risk_sector_map **out, char *err,
                       size_t err_cap)
{
    int rc = -1;
    risk_sector_map *m = NULL;
    csv c;
    char field[FIELD_MAX];
    char sym[FIELD_MAX];
    char sec[FIELD_MAX];
    int trunc = 0;
    int idx_sym = -1;
    int idx_sec = -1;
    size_t cap = 0;
    int remap[RISK_SECTORS_MAX];
    char seen[RISK_SECTORS_MAX][RISK_SECTOR_NAME_MAX];

    if (out == NULL) {
        return -1;
    }
    *out = NULL;
    if (buf == NULL) {
        set_err(err, err_cap, 0, "no input");
        return -1;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        set_err(err, err_cap, 0, "out of memory");
        return -1;
    }
    c.p = buf;
    c.end = buf + len;
    c.line = 1;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
        c.p += 3; /* UTF-8 byte order mark */
    }
    /* Header row. */
    for (int col = 0;; col++) {
        int r = csv_field(&c, field, &trunc);
        if (r < 0) {
            set_err(err, err_cap, c.line, "malformed header");
            goto out;
        }
        if (strcmp(field, "Symbol") == 0) {
            idx_sym = col;
        } else if (strcmp(field, "GICS Sector") == 0) {
            idx_sec = col;
        }
        if (r == 1) {
            break;
        }
    }
    if (idx_sym < 0 || idx_sec < 0) {
        set_err(err, err_cap, 1, "header lacks \"Symbol\" or \"GICS Sector\"");
        goto out;
    }
    while (c.p < c.end) {
        size_t line = c.line;
        int col = 0;
        int got = 0;
        int r;
        int sym_trunc = 0;
        int sec_trunc = 0;
        int empty_line = (*c.p == '\n' || *c.p == '\r');

        sym[0] = sec[0] = '\0';
        do {
            r = csv_field(&c, field, &trunc);
            if (r < 0) {
                set_err(err, err_cap, c.line, "malformed field");
                goto out;
            }
            if (col == idx_sym) {
                memcpy(sym, field, sizeof(sym));
                sym_trunc = trunc;
                got++;
            }
            if (col == idx_sec) {
                memcpy(sec, field, sizeof(sec));
                sec_trunc = trunc;
                got++;
            }
            col++;
        } while (r == 0);
        if (empty_line && col == 1) {
            continue; /* blank line */
        }
        if (got != 2) {
            set_err(err, err_cap, line, "too few fields");
            goto out;
        }
        size_t sl = strlen(sym);
        if (sym_trunc || sl == 0 || sl >= RISK_SYMBOL_MAX) {
            set_err(err, err_cap, line, "symbol length not 1..15");
            goto out;
        }
        for (size_t i = 0; i < sl; i++) {
            if (!risk_symbol_char_ok((unsigned char)sym[i])) {
                set_err(err, err_cap, line, "symbol has a character outside A-Z 0-9 . - /");
                goto out;
            }
        }
        size_t nl = strlen(sec);
        if (sec_trunc || nl == 0 || nl >= RISK_SECTOR_NAME_MAX) {
            set_err(err, err_cap, line, "sector name empty or too long");
            goto out;
        }
        if (strcmp(sec, "UNKNOWN") == 0) {
            set_err(err, err_cap, line, "sector name UNKNOWN is reserved");
            goto out;
        }
        size_t s = 0;
        while (s < m->n_sectors && strcmp(seen[s], sec) != 0) {
            s++;
        }
        if (s == m->n_sectors) {
            if (m->n_sectors == RISK_SECTORS_MAX) {
                set_err(err, err_cap, line, "too many distinct sectors");
                goto out;
            }
            memcpy(seen[s], sec, nl + 1);
            m->n_sectors++;
        }
        if (m->n == cap) {
            size_t ncap = cap ? cap * 2 : 512;
            sector_entry *ne = realloc(m->entries, ncap * sizeof(*ne));
            if (ne == NULL) {
                set_err(err, err_cap, line, "out of memory");
                goto out;
            }
            m->entries = ne;
            cap = ncap;
        }
        sector_entry *e = &m->entries[m->n++];
        memset(e, 0, sizeof(*e));
        memcpy(e->u.symbol, sym, sl + 1);
        e->hash = risk_symkey_hash(&e->u.key);
        e->sector = (int32_t)s;
    }
    /* Sector ids follow the sorted names, independent of row order. */
    memcpy(m->names, seen, sizeof(seen[0]) * m->n_sectors);
    qsort(m->names, m->n_sectors, sizeof(m->names[0]), cmp_name);
    for (size_t i = 0; i < m->n_sectors; i++) {
        for (size_t j = 0; j < m->n_sectors; j++) {
            if (strcmp(seen[i], m->names[j]) == 0) {
                remap[i] = (int)j;
            }
        }
    }
    for (size_t i = 0; i < m->n; i++) {
        m->entries[i].sector = remap[m->entries[i].sector];
    }
    if (m->n > 0) {
        qsort(m->entries, m->n, sizeof(*m->entries), cmp_entry);
    }
    for (size_t i = 1; i < m->n; i++) {
        if (strcmp(m->entries[i].u.symbol, m->entries[i - 1].u.symbol) == 0) {
            char what[64];
            snprintf(what, sizeof(what), "duplicate symbol %s", m->entries[i].u.symbol);
            set_err(err, err_cap, 0, what);
            goto out;
        }
    }
    if (build_index(m) != 0) {
        set_err(err, err_cap, 0, "out of memory");
        goto out;
    }
    *out = m;
    m = NULL;
    rc = 0;
out:
    risk_sectors_destroy(m);
    return rc;
}

void risk_sectors_destroy(risk_sector_map *map)
{
    if (map == NULL) {
        return;
    }
    free(map->entries);
    free(map->slot_keys);
    free(map->slot_sector);
    free(map);
}

size_t risk_sectors_count(const risk_sector_map *map)
{
    return map == NULL ? 0 : map->n;
}

size_t risk_sectors_sector_count(const risk_sector_map *map)
{
    return map == NULL ? 0 : map->n_sectors;
}

int risk_sectors_lookup_key(const risk_sector_map *map, const risk_symkey *key, uint64_t hash)
{
    if (map == NULL || map->n_slots == 0) {
        return RISK_SECTOR_UNKNOWN;
    }
    size_t mask = map->n_slots - 1;
    for (size_t s = (size_t)hash & mask;; s = (s + 1) & mask) {
        const risk_symkey *k = &map->slot_keys[s];
        if (k->a == 0) {
            return RISK_SECTOR_UNKNOWN;
        }
        if (risk_symkey_eq(k, key)) {
            return map->slot_sector[s];
        }
    }
}

int risk_sectors_lookup(const risk_sector_map *map, const char *symbol)
{
    sector_entry key;
    const sector_entry *hit;
    size_t n;

    if (map == NULL || symbol == NULL || map->n == 0) {
        return RISK_SECTOR_UNKNOWN;
    }
    n = strnlen(symbol, RISK_SYMBOL_MAX);
    if (n == 0 || n == RISK_SYMBOL_MAX) {
        return RISK_SECTOR_UNKNOWN;
    }
    memset(&key, 0, sizeof(key));
    memcpy(key.u.symbol, symbol, n);
    hit = bsearch(&key, map->entries, map->n, sizeof(*map->entries), cmp_entry);
    return hit == NULL ? RISK_SECTOR_UNKNOWN : hit->sector;
}

const char *risk_sectors_name(const risk_sector_map *map, int sector_id)
{
    if (map == NULL || sector_id < 0 || (size_t)sector_id >= map->n_sectors) {
        return "UNKNOWN";
    }
    return map->names[sector_id];
}
