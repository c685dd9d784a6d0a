/*
 * auth_cache.c - verified-token cache: SHA-256(token) -> principal, bounded, expiring at exp.
 *
 * Design: 16 shards, each a set-associative table (4 ways per set) behind its own mutex, so
 * concurrent workers rarely meet on a lock and memory is fixed at creation. Replacement picks
 * an empty way first, otherwise the way that expires soonest (so expired ones go first). An entry
 * is only served when the key-set generation it was verified under is still current (a rotated-out
 * key invalidates its tokens at once) and now <= exp + skew (the same rule as a full verify).
 * Invariants: a key is present in at most one way of its set; nothing here holds a token.
 */
#include "auth_int.h"

#include <stdlib.h>
#include <string.h>

#define SHARDS 16
#define WAYS 4

typedef struct {
    uint8_t key[32];
    uint64_t gen;
    int used;
    auth_principal p;
} entry;

typedef struct {
    pthread_mutex_t mu;
    size_t sets;
    entry *e; /* sets * WAYS */
} shard;

struct auth_cache {
    shard shards[SHARDS];
};

auth_cache *auth_cache_create(size_t entries)
{
    auth_cache *c;
    size_t sets;
    if (entries == 0)
        return NULL;
    sets = (entries + SHARDS * WAYS - 1) / (SHARDS * WAYS);
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    for (int i = 0; i < SHARDS; i++) {
        c->shards[i].sets = sets;
        c->shards[i].e = calloc(sets * WAYS, sizeof(entry));
        if (!c->shards[i].e || pthread_mutex_init(&c->shards[i].mu, NULL) != 0) {
            free(c->shards[i].e);
            c->shards[i].e = NULL;
            auth_cache_destroy(c);
            return NULL;
        }
    }
    return c;
}

void auth_cache_destroy(auth_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < SHARDS; i++)
        if (c->shards[i].e) {
            pthread_mutex_destroy(&c->shards[i].mu);
            free(c->shards[i].e);
        }
    free(c);
}

/* The key is a uniformly distributed hash: its bytes pick shard and set directly. */
static entry *set_of(auth_cache *c, const uint8_t key[32], shard **sh)
{
    uint64_t h;
    memcpy(&h, key + 8, sizeof(h));
    *sh = &c->shards[key[0] % SHARDS];
    return &(*sh)->e[(h % (*sh)->sets) * WAYS];
}

int auth_cache_get(auth_cache *c, const uint8_t key[32], uint64_t gen, int64_t now, int skew,
                   auth_principal *out)
{
    shard *sh;
    int hit = 0;
    if (!c || gen == 0)
        return 0;
    entry *set = set_of(c, key, &sh);
    pthread_mutex_lock(&sh->mu);
    for (int w = 0; w < WAYS; w++) {
        entry *e = &set[w];
        if (e->used && memcmp(e->key, key, 32) == 0) {
            if (e->gen == gen && now <= e->p.expires_at + skew) {
                *out = e->p;
                hit = 1;
            } else {
                e->used = 0; /* expired or verified under keys that are gone */
            }
            break;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return hit;
}

void auth_cache_put(auth_cache *c, const uint8_t key[32], uint64_t gen, const auth_principal *p)
{
    shard *sh;
    if (!c || gen == 0)
        return;
    entry *set = set_of(c, key, &sh);
    pthread_mutex_lock(&sh->mu);
    entry *victim = NULL;
    for (int w = 0; w < WAYS && !victim; w++)
        if (set[w].used && memcmp(set[w].key, key, 32) == 0)
            victim = &set[w];
    for (int w = 0; w < WAYS && !victim; w++)
        if (!set[w].used)
            victim = &set[w];
    if (!victim) {
        victim = &set[0];
        for (int w = 1; w < WAYS; w++)
            if (set[w].p.expires_at < victim->p.expires_at)
                victim = &set[w];
    }
    memcpy(victim->key, key, 32);
    victim->gen = gen;
    victim->p = *p;
    victim->used = 1;
    pthread_mutex_unlock(&sh->mu);
}

void auth_cache_flush(auth_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].mu);
        memset(c->shards[i].e, 0, c->shards[i].sets * WAYS * sizeof(entry));
        pthread_mutex_unlock(&c->shards[i].mu);
    }
}
