/*
 * ledger: a hash of accounts by user id with an LRU list for eviction (see ledger.h).
 *
 * Buckets chain through acct.next; the LRU list runs from the most recently touched (head) to
 * the least (tail). One mutex guards both: every operation is a lookup and a few pointer
 * moves, far shorter than any store call made around it.
 */
#include "core/clock.h"
#include "ledger.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "book.h"
#include "core/alloc.h"

typedef struct acct {
    int64_t user_id;
    ledger_mark mark;
    bool has_mark;
    ledger_order orders[LEDGER_ORDERS]; /* order_id 0 = empty; oldest replaced first */
    unsigned next_order;
    book *book; /* the user's state at book->version; NULL while a transaction holds it */
    ledger_reads reads;
    bool has_reads;
    int64_t committed;          /* the latest version this process committed (ledger_note_commit) */
    struct acct *next;          /* bucket chain */
    struct acct *newer, *older; /* LRU list */
} acct;

struct ledger {
    pthread_mutex_t mu;
    acct **buckets;
    size_t nbuckets; /* power of two */
    size_t count, max;
    size_t book_bytes, max_book_bytes; /* the books' heap, and its budget */
    uint64_t hits, misses;
    acct *newest, *oldest;
};

ledger *ledger_create(size_t max_accounts, size_t max_book_bytes)
{
    ledger *l = tw_calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->max = max_accounts ? max_accounts : 1;
    l->max_book_bytes = max_book_bytes;
    l->nbuckets = 16;
    while (l->nbuckets < l->max)
        l->nbuckets <<= 1;
    l->buckets = tw_calloc(l->nbuckets, sizeof(*l->buckets));
    if (!l->buckets) {
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

void ledger_destroy(ledger *l)
{
    if (!l)
        return;
    for (acct *a = l->newest, *next; a; a = next) {
        next = a->older;
        book_free(a->book);
        free(a);
    }
    free(l->buckets);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static size_t bucket_of(const ledger *l, int64_t user_id)
{
    uint64_t h = (uint64_t)user_id * 0x9E3779B97F4A7C15ULL; /* Fibonacci hashing */
    return (size_t)(h >> 32) & (l->nbuckets - 1);
}

static void lru_unlink(ledger *l, acct *a)
{
    if (a->newer)
        a->newer->older = a->older;
    else
        l->newest = a->older;
    if (a->older)
        a->older->newer = a->newer;
    else
        l->oldest = a->newer;
    a->newer = a->older = NULL;
}

static void lru_push(ledger *l, acct *a)
{
    a->older = l->newest;
    a->newer = NULL;
    if (l->newest)
        l->newest->newer = a;
    l->newest = a;
    if (!l->oldest)
        l->oldest = a;
}

static acct *find(ledger *l, int64_t user_id)
{
    for (acct *a = l->buckets[bucket_of(l, user_id)]; a; a = a->next)
        if (a->user_id == user_id)
            return a;
    return NULL;
}

static void drop_book(ledger *l, acct *a)
{
    if (!a->book)
        return;
    l->book_bytes -= book_bytes(a->book);
    book_free(a->book);
    a->book = NULL;
}

static void evict_oldest(ledger *l)
{
    acct *a = l->oldest;
    if (!a)
        return; /* count > 0 always has one; said for the analyzer */
    drop_book(l, a);
    acct **pp = &l->buckets[bucket_of(l, a->user_id)];
    while (*pp != a)
        pp = &(*pp)->next;
    *pp = a->next;
    lru_unlink(l, a);
    free(a);
    l->count--;
}

/* The account of user_id, now the most recently touched; created when absent. NULL: OOM. */
static acct *touch(ledger *l, int64_t user_id)
{
    acct *a = find(l, user_id);
    if (a) {
        lru_unlink(l, a);
        lru_push(l, a);
        return a;
    }
    if (l->count == l->max)
        evict_oldest(l);
    a = tw_calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->user_id = user_id;
    size_t b = bucket_of(l, user_id);
    a->next = l->buckets[b];
    l->buckets[b] = a;
    lru_push(l, a);
    l->count++;
    return a;
}

bool ledger_note_mark(ledger *l, int64_t user_id, const ledger_mark *m)
{
    pthread_mutex_lock(&l->mu);
    acct *a = touch(l, user_id);
    if (a) {
        a->mark = *m;
        a->has_mark = true;
    }
    pthread_mutex_unlock(&l->mu);
    return a != NULL;
}

bool ledger_last_mark(ledger *l, int64_t user_id, ledger_mark *out)
{
    pthread_mutex_lock(&l->mu);
    acct *a = find(l, user_id);
    bool have = a && a->has_mark;
    if (have)
        *out = a->mark;
    pthread_mutex_unlock(&l->mu);
    return have;
}

bool ledger_note_order(ledger *l, int64_t user_id, const ledger_order *o)
{
    pthread_mutex_lock(&l->mu);
    acct *a = touch(l, user_id);
    if (a) {
        size_t slot = LEDGER_ORDERS;
        for (size_t i = 0; i < LEDGER_ORDERS && slot == LEDGER_ORDERS; i++)
            if (a->orders[i].order_id == o->order_id)
                slot = i;
        if (slot == LEDGER_ORDERS)
            slot = a->next_order++ % LEDGER_ORDERS;
        a->orders[slot] = *o;
    }
    pthread_mutex_unlock(&l->mu);
    return a != NULL;
}

bool ledger_known_order(ledger *l, int64_t user_id, int64_t order_id, ledger_order *out)
{
    bool found = false;
    pthread_mutex_lock(&l->mu);
    acct *a = order_id ? find(l, user_id) : NULL;
    for (size_t i = 0; a && i < LEDGER_ORDERS && !found; i++)
        if (a->orders[i].order_id == order_id) {
            *out = a->orders[i];
            found = true;
        }
    pthread_mutex_unlock(&l->mu);
    return found;
}

size_t ledger_size(ledger *l)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->count;
    pthread_mutex_unlock(&l->mu);
    return n;
}

static void count_take(ledger *l, bool hit)
{
    if (hit)
        l->hits++;
    else
        l->misses++;
}

book *ledger_book_take(ledger *l, int64_t user_id, int64_t version)
{
    book *b = NULL;
    pthread_mutex_lock(&l->mu);
    acct *a = find(l, user_id);
    if (a && a->book && a->book->version == version) {
        b = a->book;
        l->book_bytes -= book_bytes(b);
        a->book = NULL;
    } else if (a) {
        drop_book(l, a); /* another transaction moved the store past it */
    }
    count_take(l, b != NULL);
    pthread_mutex_unlock(&l->mu);
    return b;
}

book *ledger_book_copy(ledger *l, int64_t user_id, int64_t version)
{
    book *b = NULL;
    pthread_mutex_lock(&l->mu);
    acct *a = find(l, user_id);
    if (a && a->book && a->book->version == version)
        b = book_clone(a->book, true);
    count_take(l, b != NULL);
    pthread_mutex_unlock(&l->mu);
    return b;
}

void ledger_book_put(ledger *l, book *b)
{
    size_t bytes = book_bytes(b);
    pthread_mutex_lock(&l->mu);
    acct *a = find(l, b->user_id);
    bool keep = bytes <= l->max_book_bytes && !(a && a->book && a->book->version >= b->version);
    if (keep) {
        if (a)
            drop_book(l, a); /* older than b */
        /* Room first: the least recently touched accounts lose their books. */
        for (acct *o = l->oldest; o && l->book_bytes + bytes > l->max_book_bytes; o = o->newer)
            drop_book(l, o);
        if ((a = touch(l, b->user_id))) {
            if (a->has_reads && a->reads.version + 1 == b->version) {
                a->reads.version = b->version;
                a->reads.confirmed_ms = ledger_now_ms();
            }
            a->book = b;
            l->book_bytes += bytes;
            b = NULL;
        }
    }
    pthread_mutex_unlock(&l->mu);
    book_free(b);
}

int64_t ledger_now_ms(void)
{
    return tw_mono_ms();
}

void ledger_note_commit(ledger *l, int64_t user_id, int64_t version)
{
    pthread_mutex_lock(&l->mu);
    acct *a = find(l, user_id);
    if (a && version > a->committed)
        a->committed = version;
    pthread_mutex_unlock(&l->mu);
}

static bool reads_current(const acct *a, int64_t min_confirmed_ms)
{
    return a->has_reads && a->reads.version >= a->committed &&
           a->reads.confirmed_ms >= min_confirmed_ms;
}

void ledger_reads_put(ledger *l, int64_t user_id, const ledger_reads *r)
{
    pthread_mutex_lock(&l->mu);
    acct *a = touch(l, user_id);
    if (a && r->version >= a->committed && !(a->has_reads && a->reads.version > r->version)) {
        a->reads = *r;
        a->has_reads = true;
    }
    pthread_mutex_unlock(&l->mu);
}

bool ledger_reads_get(ledger *l, int64_t user_id, int64_t min_confirmed_ms, ledger_reads *out)
{
    pthread_mutex_lock(&l->mu);
    acct *a = find(l, user_id);
    bool ok = a && reads_current(a, min_confirmed_ms);
    if (ok)
        *out = a->reads;
    pthread_mutex_unlock(&l->mu);
    return ok;
}

book *ledger_book_read(ledger *l, int64_t user_id, int64_t min_confirmed_ms, ledger_reads *out)
{
    book *b = NULL;
    pthread_mutex_lock(&l->mu);
    acct *a = find(l, user_id);
    if (a && reads_current(a, min_confirmed_ms) && a->book &&
        a->book->version == a->reads.version && (b = book_clone(a->book, false)))
        *out = a->reads;
    pthread_mutex_unlock(&l->mu);
    return b;
}

void ledger_book_stats(ledger *l, ledger_book_stats_t *out)
{
    pthread_mutex_lock(&l->mu);
    out->bytes = l->book_bytes;
    out->hits = l->hits;
    out->misses = l->misses;
    size_t n = 0;
    for (acct *a = l->newest; a; a = a->older)
        n += a->book != NULL;
    out->books = n;
    pthread_mutex_unlock(&l->mu);
}
