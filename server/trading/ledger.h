/*
 * ledger: what this process knows of each user's account between calls.
 *
 * One entry per user the process has marked to market, keyed by user id, bounded in count: when
 * full, the least recently touched account is evicted (its state is all in the store, so an
 * evicted account only loses what the process alone knew, e.g. the time of its last mark).
 * An account holds the last mark (when, and the broker account it found), the state of its
 * most recently committed orders and the user's book (book.h): the state a risk decision reads,
 * exact at one store version. The store remains the source of truth: a book is used only by
 * the transaction whose version follows it. Thread-safe; every call but the budget's eviction
 * is O(1).
 */
#ifndef SRV_LEDGER_H
#define SRV_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trading/order_status.h"
#include "brokers/broker.h"
#include "store/store.h"

typedef struct ledger ledger;

typedef struct ledger_mark {
    int64_t at_ms;    /* trading clock when the positions were re-valued */
    int64_t key_id;   /* the stored broker key whose account it read; 0 = the sim */
    brk_account acct; /* the broker account that mark found (equity, type, ...) */
} ledger_mark;

/* An order as this process last committed it: enough to know a broker report about it brings
 * nothing new without reading the store. */
typedef struct ledger_order {
    int64_t order_id;
    risk_qty filled_qty;
    order_status status;
} ledger_order;

/* Orders remembered per account (the most recently committed ones). */
#define LEDGER_ORDERS 8

/* At most max_accounts entries (>= 1), whose books hold at most max_book_bytes in all. NULL on
 * out of memory. */
ledger *ledger_create(size_t max_accounts, size_t max_book_bytes);
void ledger_destroy(ledger *l); /* NULL is a no-op */

/* Record a mark of user_id's account, creating (and maybe evicting) an entry. false: out of
 * memory, nothing recorded. */
bool ledger_note_mark(ledger *l, int64_t user_id, const ledger_mark *m);
/* The last mark of user_id since it entered the ledger; false when there is none. */
bool ledger_last_mark(ledger *l, int64_t user_id, ledger_mark *out);
/* Record an order's state just committed for user_id (replacing what was known of it). */
bool ledger_note_order(ledger *l, int64_t user_id, const ledger_order *o);
/* What was last committed of order_id by this process, if it is still remembered. */
bool ledger_known_order(ledger *l, int64_t user_id, int64_t order_id, ledger_order *out);
/* Accounts held now (for metrics and tests). */
size_t ledger_size(ledger *l);

struct book;
/* The user's book if it is exact at version (the caller's transaction set version + 1), taken
 * out of the ledger for that transaction; NULL otherwise (a stale book is dropped). */
struct book *ledger_book_take(ledger *l, int64_t user_id, int64_t version);
/* A copy of the user's book if it is exact at version (a read's: the version it just read),
 * leaving the book where it is; NULL otherwise. */
struct book *ledger_book_copy(ledger *l, int64_t user_id, int64_t version);
/* Give a book back after its transaction committed (b->version: that transaction's version).
 * Reads exact at the version before are exact at b's too (every change of the transaction
 * was one the book followed) and count as confirmed now. Kept unless a newer one is already there
 * or it alone exceeds the budget; books of the least recently touched accounts are dropped to stay
 * within it. Takes b over. */
void ledger_book_put(ledger *l, struct book *b);

/*
 * What a read answers from besides the book (GetState, GetAccountSettings), and how fresh it
 * is. Exact at version, as a store read (or this process's own commit) confirmed at
 * confirmed_ms (CLOCK_MONOTONIC). A commit of the user by this process that the book did not
 * follow (ledger_note_commit with a later version) makes them stale at once; another
 * process's commit only ages them: a reader bounds that with min_confirmed_ms.
 */
typedef struct ledger_reads {
    int64_t version;
    int64_t confirmed_ms;
    store_settings set;
    int64_t key_id; /* the default broker key, 0 = none */
    bool key_sim;   /* that key is a sim key, or there is none: the sim's account */
} ledger_reads;

/* Monotonic milliseconds, the clock of confirmed_ms. */
int64_t ledger_now_ms(void);
/* This process committed a transaction of user_id that set version (store commit hook). */
void ledger_note_commit(ledger *l, int64_t user_id, int64_t version);
/* Keep r for user_id, unless this process committed past r->version meanwhile. */
void ledger_reads_put(ledger *l, int64_t user_id, const ledger_reads *r);
/* user_id's reads if current (nothing committed here since) and confirmed at or after
 * min_confirmed_ms; false otherwise. */
bool ledger_reads_get(ledger *l, int64_t user_id, int64_t min_confirmed_ms, ledger_reads *out);
/* Those reads and a copy of the book exact at their version, without its recent orders
 * (book_clone), for an assessment that reads nothing else; NULL when either is missing. */
struct book *ledger_book_read(ledger *l, int64_t user_id, int64_t min_confirmed_ms,
                              ledger_reads *out);

typedef struct ledger_book_stats_t {
    size_t books, bytes;
    uint64_t hits, misses; /* takes that found an exact book, and that did not */
} ledger_book_stats_t;
void ledger_book_stats(ledger *l, ledger_book_stats_t *out);

#endif
