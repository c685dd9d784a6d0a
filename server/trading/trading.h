/*
 * trading: the order path shared by the Orders, Risk and Sim services.
 *
 * It owns the process's sim exchange (when enabled), the NYSE calendar and the sector map;
 * resolves a user's broker connection from that user's own stored credential; builds the risk
 * engine's account snapshot from our own records (positions, orders, fills, day trades, risk
 * state) plus the broker's account; and applies broker updates (fills, cancels, expiries) to
 * orders, positions, day trades, the breaker and the audit trail in one transaction each.
 *
 * Time: trading_now_ms() is the sim engine's clock when the sim broker is on (so day
 * boundaries can be driven from outside the process), real time otherwise.
 *
 * Scales: prices and money 1e6, quantities 1e9 (risk/money.h and store/store.h agree).
 */
#ifndef SRV_TRADING_H
#define SRV_TRADING_H

#include <stdbool.h>
#include <stdint.h>

#include "brokers/broker.h"
#include "config/config.h"
#include "core/call.h"
#include "risk/risk.h"
#include "store/store.h"
#include "trading/ledger.h"

struct vault;
typedef struct trading trading;

/* Build from config; st and v must outlive it. 0, or -1 after logging why. */
int trading_create(const tw_config *cfg, store *st, struct vault *v, trading **out);
/* Stops the reconciler. NULL is a no-op. */
void trading_destroy(trading *t);
/* Starts the reconciler and the marker (real-broker marks) threads. */
int trading_start_reconciler(trading *t);
/* One reconciliation pass now (tests, start-up): expire stale confirmations, ask the broker
 * about orders stuck in PENDING_SUBMIT or still open. */
void trading_reconcile(trading *t);

int64_t trading_now_ms(trading *t);
/* Called (with ctx) whenever a breaker trips, for metrics. Set before threads start. */
void trading_set_breaker_hook(trading *t, void (*fn)(void *ctx), void *ctx);
/* Called (with ctx and how many symbols) when position reconciliation reports new drifts, for
 * metrics. Set before threads start. */
void trading_set_drift_hook(trading *t, void (*fn)(void *ctx, size_t n), void *ctx);
/* The request budget every replica's Alpaca conns share (brokers/broker.h; b must outlive t,
 * NULL = each process its own). Set before threads start. */
void trading_set_shared_budget(trading *t, const brk_shared_budget *b);
brk_sim_engine *trading_sim(trading *t); /* NULL when the sim broker is off */
const risk_calendar *trading_calendar(const trading *t);

/* Order status words as stored (the proto enum names without prefix). */
#define ORD_PENDING_CONFIRMATION "PENDING_CONFIRMATION"
#define ORD_PENDING_SUBMIT "PENDING_SUBMIT"
#define ORD_ACCEPTED "ACCEPTED"
#define ORD_PARTIALLY_FILLED "PARTIALLY_FILLED"
#define ORD_FILLED "FILLED"
#define ORD_CANCELED "CANCELED"
#define ORD_REJECTED "REJECTED"
#define ORD_EXPIRED "EXPIRED"

/* 0..4: lifecycle rank (terminal = 4); a stored status never moves to a lower rank. */
bool trading_status_open(const char *status);

/* The broker connection for one of the user's orders: the given stored key (the user's own,
 * decrypted only here), or the sim exchange when key is NULL. traceparent: the W3C trace
 * context of the call it serves (tw_trace_format), sent on every broker request; NULL = none.
 * *out: brk_conn_destroy. */
tw_status trading_broker(trading *t, store_conn *conn, int64_t user_id, const store_broker_key *key,
                         const char *traceparent, brk_conn **out);

/* Whether the stored key k decrypts (then wiped at once): TestBrokerKey of a key whose broker
 * takes any credential (the sim). FAILED_PRECONDITION when it does not, UNAVAILABLE when the
 * vault is busy. Broker resolution (trading_broker) is the only other code that decrypts. */
tw_status trading_key_decrypts(trading *t, store_conn *conn, const store_broker_key *k);

/* The user's broker connection and its account (equity, type): the first step of every
 * decision. traceparent: as for trading_broker. keep: receives the open connection
 * (brk_conn_destroy), or NULL to close it. */
tw_status trading_account(trading *t, store_conn *conn, int64_t user_id,
                          const store_broker_key *key, const char *traceparent, brk_account *out,
                          brk_conn **keep);

/* The risk engine's view of an order: symbol, side, quantity and limit price (0 = market). */
void trading_intent(risk_intent *ri, const char *symbol, store_side side, risk_qty qty,
                    risk_price limit);

/* Everything risk_decide needs about one user, loaded inside the user's transaction. Arrays
 * live in the call's arena. */
typedef struct {
    risk_snapshot snap;
    risk_limits limits;
    store_risk_state state;
    bool state_changed; /* state was rolled to a new trading day: persist it */
    bool global_halt;
} trading_view;

/* Load the view for user_id; arrays are allocated from a. acct: the broker account (equity, type).
 * intent: the order being decided (NULL = none, e.g. GetState): its symbol's position and pending
 * market orders are marked at ref, the reference price of that symbol (0 = none), and the
 * duplicate window is searched for identical orders. exclude_order_id: an order not to count as
 * pending or recent (the one being confirmed), 0 = none.
 * Every period is whole (today's fills, the PDT window, the rate and duplicate windows, every
 * open order). Inside the user's transaction the view comes from the user's book (book.h):
 * the ledger's when no one committed since it was left, else read from the store once and
 * kept exact by the transaction's own changes. FAILED_PRECONDITION when today's
 * executions exceed what the risk engine takes (RISK_MAX_FILLS): refused, never cut. */
tw_status trading_view_load(trading *t, tw_arena *a, store_conn *conn, int64_t user_id,
                            const brk_account *acct, const risk_intent *intent, risk_price ref,
                            int64_t exclude_order_id, trading_view *v);

/* The ledger's books: how many, their bytes, and how often a transaction found one exact. */
void trading_ledger_stats(trading *t, ledger_book_stats_t *out);

/* The Alpaca trade_updates streams of keys with open orders (metrics): *up connected and
 * listening, *down starting, reconnecting or refused (those keys' fills come from polling). */
void trading_streams_count(trading *t, size_t *up, size_t *down);

/* A new order store_order_insert just wrote in the user's open transaction (o->id and
 * o->created_at_us set): the user's book takes it (book.h), so the next decision needs no read. */
void trading_order_recorded(store_conn *conn, int64_t user_id, const store_order *o);

/*
 * Reads a warm account answers without the store (GetState, GetAccountSettings inline on the
 * completion-queue thread). A read that went to the store records what it read with
 * trading_reads_note, taken with the version read before (trading_reads_begin); later reads
 * use it while nothing this process committed for the user changed it and it is at most
 * TW_LEDGER_READ_MAX_AGE_MS old (what another replica committed since shows up within that
 * age). Off (always false) when that age is 0. TW_LEDGER_VERIFY checks the books decisions
 * use, not these reads.
 */
/* Before a read's store statements: the version and the time they are confirmed at. false:
 * the store did not answer, note nothing. */
bool trading_reads_begin(store_conn *conn, int64_t user_id, ledger_reads *r);
/* After them: r's settings and key filled in. */
void trading_reads_note(trading *t, int64_t user_id, const ledger_reads *r);
/* The settings and default key a fresh read recorded; false: not warm. */
bool trading_reads_cached(trading *t, int64_t user_id, ledger_reads *out);
/* The same reads of any age, for a caller that confirms r->version under the user's lock
 * (an admission: store_tx_version - 1 == r->version, else it reads the store). */
bool trading_reads_known(trading *t, int64_t user_id, ledger_reads *out);
/* The admin kill switch as a fresh read or this process's own HaltAll left it; false: ask
 * the store. Before the read, trading_global_gen; after it, trading_global_note. */
bool trading_global_cached(trading *t, store_global_state *out);
uint64_t trading_global_gen(trading *t);
void trading_global_note(trading *t, uint64_t gen, int64_t since_ms, const store_global_state *g);
/* The assessment view (trading_view_load with no intent) of a warm account from the ledger,
 * exact at the version of r (the reads the caller answers from); false when the ledger cannot
 * answer (the caller goes to the store). acct: the broker account, as trading_view_load. */
bool trading_view_cached(trading *t, tw_arena *a, int64_t user_id, const ledger_reads *r,
                         bool global_halt, const brk_account *acct, trading_view *v);
/* One read answered (GetState, GetAccountSettings), from memory or from the database; and
 * the counts so far (metrics). */
void trading_count_read(trading *t, bool from_memory);
void trading_read_counts(trading *t, uint64_t *from_memory, uint64_t *from_database);
/* The sim's account of user_id, without the store; false when the sim is off. */
bool trading_sim_account(trading *t, int64_t user_id, brk_account *out);

/* Persist the assessment's state changes (breaker trip or clear, day roll) with their audit
 * events. Inside the user's transaction. */
tw_status trading_persist_assessment(trading *t, store_conn *conn, int64_t user_id, trading_view *v,
                                     const risk_assessment *a);

/* by asks to cancel user_id's order_id: recorded with the order in a transaction of its own,
 * before the broker is asked, so the report that closes the order as CANCELED -- the caller's
 * own read, the sim's event, a poll or a trade_updates stream, on any replica, during the call
 * or after it -- is audited as theirs, with their trace first in its details.
 * TW_FAILED_PRECONDITION when the order is already final, TW_NOT_FOUND when it is not theirs. */
tw_status trading_cancel_request(trading *t, store_conn *conn, int64_t user_id, int64_t order_id,
                                 const store_canceler *by);

/* A broker's report on one of our orders (from the sim listener, the reconciler or a broker
 * webhook): cumulative filled quantity and average price, and the broker status. Applies the
 * fill delta to the order, positions and day trades, writes the audit events, checks the
 * breaker; idempotent for repeated reports. Runs its own transaction. */
store_rc trading_apply_report(trading *t, int64_t user_id, int64_t order_id,
                              const brk_order *report, const char *actor);

/*
 * The answer of a call that sends an order (SubmitOrder, ConfirmOrder): between begin and end,
 * every report about (user_id, order_id) this thread's transactions commit leaves the order as
 * committed in *out (the sim applies its fills on the sending thread, inside brk_submit), so
 * the call answers without reading the order again. end: true when *out holds such an order;
 * false when none was committed on this thread (nothing new came, or another thread applied
 * it): then the caller reads the store.
 */
/* version: the user's version *out (as its call committed it) is exact at; the first report's
 * transaction then takes the order from *out when nobody committed for the user since. */
void trading_answer_begin(int64_t user_id, int64_t order_id, store_order *out, int64_t version);
bool trading_answer_end(void);

/* Like trading_apply_report, and reason (sanitised broker text, may be NULL) becomes the order's
 * status_message and the "reason" of its audit event when the report ends or fills the order.
 * The same one path: trading_apply_report is this with reason NULL. */
store_rc trading_apply_report_why(trading *t, int64_t user_id, int64_t order_id,
                                  const brk_order *report, const char *actor, const char *reason);

/* Replacements followed in one trading_sync_order call. */
#define TRADING_MAX_REPLACEMENTS 4

/*
 * Reads one of our orders at the broker through bc and applies what the broker says with
 * trading_apply_report. broker_order_id: the one we track ("" or NULL: not known yet, asked by
 * our client order id "tw-<order_id>"). A report "replaced" with replaced_by is applied (the
 * order now tracks the replacement, still open) and the replacement is read and applied in turn,
 * up to TRADING_MAX_REPLACEMENTS links. *out: the last report read. Returns the brk_rc of the
 * last read (BRK_NOT_FOUND: the broker does not know the order). Call outside any transaction.
 */
brk_rc trading_sync_order(trading *t, brk_conn *bc, int64_t user_id, int64_t order_id,
                          const char *broker_order_id, const char *actor, brk_order *out,
                          brk_err *err);

/* The reference (last trade) price of symbol from the sim quotes; 0 when unknown. */
risk_price trading_ref_price(trading *t, const char *symbol);

/*
 * The reference (last trade) price of symbol for an order going through bc, the user's broker
 * connection (the one trading_account opened for admission: no second key decryption). bc NULL,
 * or a backend without market data: the sim quotes. Otherwise the broker's own last trade (the
 * Alpaca Market Data API for alpaca). Call it OUTSIDE the user's transaction: it may do I/O.
 *   TW_OK, *out > 0    a price;
 *   TW_OK, *out == 0   the broker does not know the symbol (the risk engine then rejects an
 *                      opening order NO_REFERENCE_PRICE, as for an unquoted sim symbol);
 *   TW_OK, *out == 0   ... or its last trade is stale (see below): why says so;
 *   TW_UNAVAILABLE     the broker could not answer (network, 5xx, 429, refused key): *out is 0.
 *                      Callers still decide (an exit needs no reference price) but answer
 *                      UNAVAILABLE instead of recording a NO_REFERENCE_PRICE rejection.
 * Stale: a last trade older than TW_REF_PRICE_MAX_AGE_S is never used, except that while the
 * NYSE regular session is closed a stock's trade from the latest session (or later) is current
 * (nothing newer can exist). Crypto trades around the clock: always the plain age. A trade time
 * ahead of our clock is not old. why (may be NULL, why_cap bytes): the reason there is no price,
 * "" when there is one or the broker simply has none.
 */
tw_status trading_ref_price_from(trading *t, brk_conn *bc, const char *symbol, risk_price *out,
                                 char *why, size_t why_cap);

/* Broker-reported marks (current_price per symbol) for ListPositions: one brk_positions call on
 * the user's broker (key: the stored key, NULL = the sim). out and n: a heap array (free()), empty
 * when the broker reports nothing or cannot answer (marks are best effort). traceparent: as for
 * trading_broker. */
void trading_broker_marks(trading *t, store_conn *conn, int64_t user_id,
                          const store_broker_key *key, const char *traceparent, brk_position **out,
                          size_t *n);

/* Mark-to-market after the sim quotes of symbols changed: every user whose sim account holds
 * one of them is re-valued in a transaction of its own (peak raised, breakers tripped and saved
 * with their audit events). Errors are logged; a user not marked now is marked by the next
 * quote change or fill. Call outside any transaction. */
void trading_mark_symbols(trading *t, const char *const *symbols, size_t n);
/* One pass of real-broker marks now (the marker thread runs one every mark period; tests). */
void trading_mark_brokers(trading *t);
/* The broker account user_id's last mark found through key_id, when it is at most two mark
 * periods old (a read answers from it instead of calling the broker); false otherwise. */
bool trading_marked_account(trading *t, int64_t user_id, int64_t key_id, brk_account *out);
/* When user_id's positions were last marked by this process (trading clock, ms); false when
 * never since start (or since the account left the ledger). */
bool trading_last_mark(trading *t, int64_t user_id, int64_t *at_ms);

/* Map risk codes to the proto's RiskRule numbers. */
int trading_rule_of(risk_code code);

#endif
