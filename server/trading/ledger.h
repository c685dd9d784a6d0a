/*
 * ledger: what this process knows of each user's account between calls.
 *
 * One entry per user the process has marked to market, keyed by user id, bounded in count: when
 * full, the least recently touched account is evicted (its state is all in the store, so an
 * evicted account only loses what the process alone knew, e.g. the time of its last mark).
 * Today an account holds the last mark (when, and the broker account it found) and the state
 * of its most recently committed orders; the store remains the source of truth for everything
 * that decides an order. Thread-safe; every call is
 * O(1).
 */
#ifndef SRV_LEDGER_H
#define SRV_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "brokers/broker.h"

typedef struct ledger ledger;

typedef struct ledger_mark {
    int64_t at_ms;    /* trading clock when the positions were re-valued */
    int64_t key_id;   /* the stored broker key whose account it read; 0 = the sim */
    brk_account acct; /* the broker account that mark found (equity, type, ...) */
} ledger_mark;

/* An order as this process last committed it: enough to know a broker report about it brings
 * nothing new without reading the store (status ranks: trading_status_rank). */
typedef struct ledger_order {
    int64_t order_id;
    risk_qty filled_qty;
    int status_rank;
    bool open;
} ledger_order;

/* Orders remembered per account (the most recently committed ones). */
#define LEDGER_ORDERS 8

/* At most max_accounts entries (>= 1). NULL on out of memory. */
ledger *ledger_create(size_t max_accounts);
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

#endif
