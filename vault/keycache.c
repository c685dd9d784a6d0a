/* keycache.c - derived-key cache: bounded LRU with TTL, single flight, bounded derivations.
 *
 * Design. One mutex guards everything. Entries are keyed by (master version, user id, salt)
 * in a chained hash table (FNV-1a with a random per-cache seed). A key's bytes live in one
 * slab of capacity * 32 bytes taken from secure memory (locked, MADV_DONTDUMP); entries hold
 * only a slot index, and every slot is OPENSSL_cleanse'd when its key is evicted, expires, is
 * cleared or the cache is destroyed.
 *
 * A miss inserts a PENDING entry and the missing thread becomes its deriver; any other thread
 * asking for the same key finds the PENDING entry and waits on a condition variable, so a key
 * is derived once however many requests race for it (single flight). Derivations run outside
 * the lock but need one of max_concurrent permits, so a flood of new users queues instead of
 * pinning every worker on PBKDF2. Waits are bounded by max_wait_ms (VAULT_ERR_BUSY).
 *
 * Invariants: READY entries are in the LRU list and own exactly one slot; PENDING entries own
 * none; an entry leaves the table when it is evicted, expired or failed and is freed only
 * when no waiter still holds it (refs == 0); ready count <= capacity.
 */
#include "vault/vault_int.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KC_MAX_SALT 64

enum kc_state { KC_PENDING, KC_READY, KC_FAILED, KC_GONE };

struct kc_entry {
    struct kc_entry *hnext;
    struct kc_entry *prev, *next; /* LRU: head = most recent */
    enum kc_state state;
    vault_rc fail_rc;
    int version;
    int slot;
    unsigned refs;
    int64_t born_ms;
    uint64_t hash;
    size_t salt_len, user_len;
    unsigned char salt[KC_MAX_SALT];
    char user[VAULT_USER_ID_MAX];
};

struct vault_keycache {
    pthread_mutex_t lock;
    pthread_cond_t state_cond; /* an entry left PENDING */
    pthread_cond_t pool_cond;  /* a derivation permit was released */
    vault_keycache_config cfg;
    uint64_t seed;
    struct kc_entry **buckets;
    size_t nbuckets;
    struct kc_entry *lru_head, *lru_tail;
    unsigned char *slab; /* capacity * VAULT_KEY_LEN, secure memory */
    int *free_slots;
    size_t nfree;
    unsigned active;
    vault_keycache_stats st;
};

void vault_keycache_config_default(vault_keycache_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->capacity = 1024;
    cfg->ttl_ms = 15 * 60 * 1000;
    cfg->max_concurrent = 1;
    cfg->max_wait_ms = 30000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const vault_keycache *c)
{
    return c->cfg.clock != NULL ? c->cfg.clock(c->cfg.clock_ctx) : mono_ms();
}

static uint64_t kc_hash(uint64_t seed, int version, const char *user, size_t user_len,
                        const unsigned char *salt, size_t salt_len)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    size_t i;
#define MIX(b)                                                                                     \
    do {                                                                                           \
        h ^= (unsigned char)(b);                                                                   \
        h *= 1099511628211ull;                                                                     \
    } while (0)
    for (i = 0; i < sizeof(version); i++)
        MIX((unsigned)version >> (8 * i));
    MIX(user_len);
    for (i = 0; i < user_len; i++)
        MIX(user[i]);
    MIX(salt_len);
    for (i = 0; i < salt_len; i++)
        MIX(salt[i]);
#undef MIX
    return h;
}

static void lru_unlink(vault_keycache *c, struct kc_entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->lru_head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_head(vault_keycache *c, struct kc_entry *e)
{
    e->prev = NULL;
    e->next = c->lru_head;
    if (c->lru_head != NULL)
        c->lru_head->prev = e;
    c->lru_head = e;
    if (c->lru_tail == NULL)
        c->lru_tail = e;
}

static void table_unlink(vault_keycache *c, struct kc_entry *e)
{
    struct kc_entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != NULL && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp == e)
        *pp = e->hnext;
    e->hnext = NULL;
}

static void entry_free(struct kc_entry *e)
{
    OPENSSL_cleanse(e, sizeof(*e)); /* salts and user ids are not secret, but cheap to wipe */
    free(e);
}

/* Removes a READY entry: wipes its key, returns its slot, frees it unless a waiter holds it. */
static void drop_ready(vault_keycache *c, struct kc_entry *e)
{
    OPENSSL_cleanse(c->slab + (size_t)e->slot * VAULT_KEY_LEN, VAULT_KEY_LEN);
    c->free_slots[c->nfree++] = e->slot;
    e->slot = -1;
    lru_unlink(c, e);
    table_unlink(c, e);
    c->st.size--;
    e->state = KC_GONE;
    if (e->refs == 0)
        entry_free(e);
}

static int expired(const vault_keycache *c, const struct kc_entry *e, int64_t now)
{
    return c->cfg.ttl_ms > 0 && now - e->born_ms >= c->cfg.ttl_ms;
}

static struct kc_entry *find(vault_keycache *c, uint64_t h, int version, const char *user,
                             size_t user_len, const unsigned char *salt, size_t salt_len)
{
    struct kc_entry *e = c->buckets[h & (c->nbuckets - 1)];
    for (; e != NULL; e = e->hnext) {
        if (e->hash == h && e->version == version && e->user_len == user_len &&
            e->salt_len == salt_len && memcmp(e->user, user, user_len) == 0 &&
            memcmp(e->salt, salt, salt_len) == 0)
            return e;
    }
    return NULL;
}

/* Waits on cond until signalled or the absolute monotonic deadline (0 = none). 0 or ETIMEDOUT */
static int wait_until(vault_keycache *c, pthread_cond_t *cond, const struct timespec *deadline)
{
    if (deadline == NULL)
        return pthread_cond_wait(cond, &c->lock);
    return pthread_cond_timedwait(cond, &c->lock, deadline);
}

vault_rc vault_keycache_create(const vault_keycache_config *cfg, vault_keycache **out)
{
    vault_keycache *c = NULL;
    pthread_condattr_t ca;
    size_t i;
    vault_rc rc = VAULT_ERR_NOMEM;
    int locks = 0;

    if (cfg == NULL || out == NULL || cfg->derive == NULL || cfg->capacity == 0 ||
        cfg->capacity > (1u << 20) || cfg->max_concurrent == 0)
        return VAULT_ERR_INVALID_ARG;
    c = vault_calloc(1, sizeof(*c));
    if (c == NULL)
        goto out;
    c->cfg = *cfg;
    for (c->nbuckets = 16; c->nbuckets < cfg->capacity * 2; c->nbuckets <<= 1)
        ;
    c->buckets = vault_calloc(c->nbuckets, sizeof(*c->buckets));
    c->free_slots = vault_calloc(cfg->capacity, sizeof(*c->free_slots));
    c->slab = vault_smem_alloc(cfg->capacity * VAULT_KEY_LEN);
    if (c->buckets == NULL || c->free_slots == NULL || c->slab == NULL)
        goto out;
    for (i = 0; i < cfg->capacity; i++)
        c->free_slots[i] = (int)(cfg->capacity - 1 - i);
    c->nfree = cfg->capacity;
    if (RAND_bytes((unsigned char *)&c->seed, sizeof(c->seed)) != 1) {
        rc = VAULT_ERR_CRYPTO;
        goto out;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0)
        goto out;
    locks = 1;
    if (pthread_condattr_init(&ca) != 0)
        goto out;
    (void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&c->state_cond, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        goto out;
    }
    locks = 2;
    if (pthread_cond_init(&c->pool_cond, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        goto out;
    }
    pthread_condattr_destroy(&ca);
    *out = c;
    return VAULT_OK;
out:
    if (c != NULL) {
        if (locks >= 2)
            pthread_cond_destroy(&c->state_cond);
        if (locks >= 1)
            pthread_mutex_destroy(&c->lock);
        vault_smem_free(c->slab, cfg->capacity * VAULT_KEY_LEN);
        free(c->free_slots);
        free(c->buckets);
        free(c);
    }
    return rc;
}

vault_rc vault_keycache_get(vault_keycache *c, int master_version, const char *user_id,
                            const unsigned char *salt, size_t salt_len,
                            unsigned char key_out[VAULT_KEY_LEN])
{
    unsigned char tmp[VAULT_KEY_LEN];
    struct timespec dl, *deadline = NULL;
    struct kc_entry *e;
    size_t user_len;
    uint64_t h;
    vault_rc rc;

    if (c == NULL || salt == NULL || key_out == NULL || salt_len == 0 || salt_len > KC_MAX_SALT)
        return VAULT_ERR_INVALID_ARG;
    if (user_id == NULL)
        user_id = "";
    user_len = strnlen(user_id, VAULT_USER_ID_MAX + 1);
    if (user_len > VAULT_USER_ID_MAX)
        return VAULT_ERR_INVALID_ARG;
    if (c->cfg.max_wait_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += c->cfg.max_wait_ms / 1000;
        dl.tv_nsec += (c->cfg.max_wait_ms % 1000) * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
        deadline = &dl;
    }
    h = kc_hash(c->seed, master_version, user_id, user_len, salt, salt_len);

    pthread_mutex_lock(&c->lock);
    for (;;) {
        e = find(c, h, master_version, user_id, user_len, salt, salt_len);
        if (e == NULL)
            break;
        if (e->state == KC_READY) {
            if (expired(c, e, now_ms(c))) {
                c->st.expirations++;
                drop_ready(c, e);
                break;
            }
            memcpy(key_out, c->slab + (size_t)e->slot * VAULT_KEY_LEN, VAULT_KEY_LEN);
            lru_unlink(c, e);
            lru_push_head(c, e);
            c->st.hits++;
            pthread_mutex_unlock(&c->lock);
            return VAULT_OK;
        }
        /* PENDING: someone else is deriving this very key; wait for it. */
        c->st.waits++;
        e->refs++;
        while (e->state == KC_PENDING) {
            if (wait_until(c, &c->state_cond, deadline) == ETIMEDOUT)
                break;
        }
        e->refs--;
        if (e->state == KC_READY) {
            memcpy(key_out, c->slab + (size_t)e->slot * VAULT_KEY_LEN, VAULT_KEY_LEN);
            c->st.hits++;
            pthread_mutex_unlock(&c->lock);
            return VAULT_OK;
        }
        if (e->state == KC_PENDING) {
            c->st.busy++;
            pthread_mutex_unlock(&c->lock);
            return VAULT_ERR_BUSY;
        }
        rc = e->fail_rc;
        if (e->state == KC_FAILED) {
            if (e->refs == 0)
                entry_free(e);
            pthread_mutex_unlock(&c->lock);
            return rc;
        }
        /* KC_GONE: evicted between its derivation and our wake-up; look again. */
        if (e->refs == 0)
            entry_free(e);
    }

    /* Miss: this thread derives. */
    c->st.misses++;
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        pthread_mutex_unlock(&c->lock);
        return VAULT_ERR_NOMEM;
    }
    e->state = KC_PENDING;
    e->version = master_version;
    e->slot = -1;
    e->hash = h;
    e->user_len = user_len;
    memcpy(e->user, user_id, user_len);
    e->salt_len = salt_len;
    memcpy(e->salt, salt, salt_len);
    e->hnext = c->buckets[h & (c->nbuckets - 1)];
    c->buckets[h & (c->nbuckets - 1)] = e;

    rc = VAULT_OK;
    while (c->active >= c->cfg.max_concurrent) {
        if (wait_until(c, &c->pool_cond, deadline) == ETIMEDOUT) {
            if (c->active >= c->cfg.max_concurrent)
                rc = VAULT_ERR_BUSY;
            break;
        }
    }
    if (rc == VAULT_OK) {
        c->active++;
        pthread_mutex_unlock(&c->lock);
        rc = c->cfg.derive(c->cfg.derive_ctx, master_version, salt, salt_len, tmp);
        pthread_mutex_lock(&c->lock);
        c->active--;
        pthread_cond_broadcast(&c->pool_cond);
        c->st.derivations++;
        if (rc != VAULT_OK)
            c->st.failures++;
    } else {
        c->st.busy++;
    }
    if (rc != VAULT_OK) {
        e->state = KC_FAILED;
        e->fail_rc = rc;
        table_unlink(c, e);
        pthread_cond_broadcast(&c->state_cond);
        if (e->refs == 0)
            entry_free(e);
        pthread_mutex_unlock(&c->lock);
        OPENSSL_cleanse(tmp, sizeof(tmp));
        return rc;
    }
    if (c->nfree == 0) {
        /* Full: evict the least recently used key. There is one, since slots are only held
         * by READY entries and capacity >= 1. */
        c->st.evictions++;
        drop_ready(c, c->lru_tail);
    }
    e->slot = c->free_slots[--c->nfree];
    memcpy(c->slab + (size_t)e->slot * VAULT_KEY_LEN, tmp, VAULT_KEY_LEN);
    memcpy(key_out, tmp, VAULT_KEY_LEN);
    OPENSSL_cleanse(tmp, sizeof(tmp));
    e->born_ms = now_ms(c);
    e->state = KC_READY;
    lru_push_head(c, e);
    c->st.size++;
    pthread_cond_broadcast(&c->state_cond);
    pthread_mutex_unlock(&c->lock);
    return VAULT_OK;
}

void vault_keycache_sweep(vault_keycache *c)
{
    struct kc_entry *e, *prev;
    int64_t now;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    now = now_ms(c);
    for (e = c->lru_tail; e != NULL; e = prev) {
        prev = e->prev;
        if (expired(c, e, now)) {
            c->st.expirations++;
            drop_ready(c, e);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void vault_keycache_clear(vault_keycache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    /* drop_ready unlinks the entry (moving lru_tail) before freeing it; the analyzer does not
     * follow the unlink. */
    while (c->lru_tail != NULL)
        drop_ready(c, c->lru_tail); // NOLINT(clang-analyzer-unix.Malloc)
    pthread_mutex_unlock(&c->lock);
}

void vault_keycache_stats_get(vault_keycache *c, vault_keycache_stats *out)
{
    if (c == NULL || out == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    pthread_mutex_unlock(&c->lock);
}

int vault_keycache_is_secure(const vault_keycache *c)
{
    return c != NULL && vault_smem_is_secure(c->slab);
}

void vault_keycache_destroy(vault_keycache *c)
{
    size_t i;

    if (c == NULL)
        return;
    vault_keycache_clear(c);
    /* Any entry left is PENDING/FAILED, which the contract (no racing get) rules out; free
     * what remains anyway. */
    for (i = 0; i < c->nbuckets; i++) {
        struct kc_entry *e = c->buckets[i], *n;
        for (; e != NULL; e = n) {
            n = e->hnext;
            entry_free(e);
        }
    }
    vault_smem_free(c->slab, c->cfg.capacity * VAULT_KEY_LEN);
    free(c->free_slots);
    free(c->buckets);
    pthread_cond_destroy(&c->pool_cond);
    pthread_cond_destroy(&c->state_cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
