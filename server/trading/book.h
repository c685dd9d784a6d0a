/*
 * book: one user's trading state as the store holds it at one version — everything a risk
 * decision reads (limits, risk state, positions, open orders, the recent orders the rate and
 * duplicate rules count, today's fills, the day trades of the PDT window, the audit head).
 *
 * A book is filled from the store inside the user's transaction (trading.c, book_read) and kept
 * exact by the transaction's own changes (book_order_added, book_fill_added, ...), each of
 * which counts as one modeled change. When the transaction commits and the store counted no
 * change the book did not model, the book is exact at the version that transaction set and
 * goes back to the ledger; the next transaction of the user takes it only if its own version
 * is the next one (nobody else, in this process or another, committed meanwhile). Anything
 * else — a change the book does not know, a rollback, an out-of-memory update — drops the book
 * and the next transaction reads the store again. Not thread-safe: a book belongs to one
 * transaction at a time (the user's lock serializes them).
 */
#ifndef SRV_BOOK_H
#define SRV_BOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "risk/risk.h" /* RISK_MAX_RECENT_ORDERS */
#include "store/store.h"

/* The most submissions a book holds for the rate and duplicate rules: as many as the rate rule
 * ever counts (it reads at most RISK_MAX_RECENT_ORDERS - 1). A user with more inside the windows
 * keeps the newest; the rate rule still decides from them (it only asks whether the count
 * reaches its limit), and only a duplicate the book no longer holds is looked up in the store. */
#define BOOK_RECENT_MAX (RISK_MAX_RECENT_ORDERS - 1)

/* A submission the rate and duplicate rules count: an order the engine did not reject. */
typedef struct book_recent {
    int64_t id;
    int64_t created_at_us;
    int64_t qty; /* 1e9 */
    store_side side;
    char symbol[STORE_SYMBOL_MAX + 1];
} book_recent;

typedef struct book {
    int64_t user_id;
    int64_t version;       /* the store version the book is exact at (set when its tx commits) */
    unsigned modeled;      /* changes of the current transaction the book reflects */
    bool keep;             /* false: not exact or too large, drop it when the transaction ends */
    struct ledger *ledger; /* where it goes back when its transaction commits */

    int trading_day;              /* YYYYMMDD of the fills held */
    int64_t day_lo_us, day_hi_us; /* that trading date's bounds */

    bool has_limits; /* false: the user never set limits (defaults apply) */
    store_risk_limits limits;
    store_risk_state state;

    store_position *pos; /* by symbol, as store_position_list */
    size_t npos, cap_pos;
    store_order_brief *open; /* open orders, oldest id first */
    size_t nopen, cap_open;
    /* Submissions (orders not REJECTED) in commit order: every one created at or after
     * recent_since_us (INT64_MAX: none held), at most BOOK_RECENT_MAX. An added order moves the
     * start up to its own time less recent_window_us (the longest window the limits look back
     * over) and drops what fell out; past the maximum the oldest goes. */
    int64_t recent_since_us;
    int64_t recent_window_us;
    book_recent *recent; /* a ring: the oldest at recent_head; read it with book_recent_at */
    size_t recent_head, nrecent, cap_recent;
    store_fill *fills; /* the trading day's, in execution order */
    size_t nfills, cap_fills;
    int dt_since_day; /* day trades with trading_day >= this */
    store_day_trade *dts;
    size_t ndts, cap_dts;

    bool has_head; /* the user's audit chain head */
    int64_t head_seq;
    unsigned char head_hash[32];
} book;

book *book_new(int64_t user_id);
void book_free(book *b); /* NULL is a no-op */
/* A deep copy (for a read that must not take the book from its transaction); NULL on OOM.
 * Without recent, the copy holds no submissions (recent_since_us INT64_MAX): enough for an
 * assessment (GetState, a mark), which never reads them, and cheaper for a user with many. */
book *book_clone(const book *b, bool recent);
/* Heap bytes the book holds (struct and arrays): what the ledger budgets. */
size_t book_bytes(const book *b);

/* Take over arrays read from the store (malloc'd; the book frees them). */
void book_set_positions(book *b, store_position *p, size_t n);
void book_set_open(book *b, store_order_brief *o, size_t n);
/* The store's submissions created at or after since_us, newest first, as read with a limit of
 * BOOK_RECENT_MAX + 1 (a full answer: the oldest is left out and the start moves past it);
 * window_us: what the limits look back over. Frees o. */
void book_set_recent(book *b, store_order_brief *o, size_t n, int64_t since_us, int64_t window_us);
void book_set_fills(book *b, store_fill *f, size_t n);
void book_set_day_trades(book *b, store_day_trade *d, size_t n);

/* The transaction's own changes, each after the store accepted it. An update the book cannot
 * make (out of memory) leaves it not kept. */
void book_order_added(book *b, const store_order *o);   /* o->id, o->created_at_us set */
void book_order_changed(book *b, const store_order *o); /* status, fills of an existing order */
void book_fill_added(book *b, const store_fill *f);
void book_position_put(book *b, const store_position *p);
void book_day_trade_added(book *b, const store_day_trade *d);
void book_state_set(book *b, const store_risk_state *s);
/* A change to what the book does not hold (who asked to cancel an order): the book stays
 * exact. */
void book_unheld_change(book *b);

/* The i-th oldest submission held (i < nrecent). */
static inline book_recent *book_recent_at(const book *b, size_t i)
{
    return &b->recent[(b->recent_head + i) % b->cap_recent];
}

/* The position in symbol, or NULL when the user never held it. */
const store_position *book_position(const book *b, const char *symbol);
/* Whether the order status is one of the open ones (the store's open list). */
bool book_status_open(const char *status);

#endif
