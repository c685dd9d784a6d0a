/*
 * trading_int.h: the trading object's fields and the helpers its files share (trading.c:
 * snapshots, broker resolution, reports, the reconciler; mark.c: mark-to-market). Not for
 * services, which use trading.h.
 */
#ifndef SRV_TRADING_INT_H
#define SRV_TRADING_INT_H

#include <pthread.h>

#include "ledger.h"
#include "trading.h"

#define TRADING_DRIFT_SLOTS 1024
#define TRADING_NOT_FOUND_SLOTS 64
typedef struct {
    int64_t user_id;
    uint64_t sig; /* 0 = no drift */
} trading_drift_slot;

struct trading {
    const tw_config *cfg;
    store *st;
    struct vault *vault;
    brk_sim_engine *sim;
    risk_calendar cal;
    risk_sector_map *sectors;
    ledger *ledger; /* what the process knows between calls: last marks */

    void (*on_trip)(void *ctx);
    void *on_trip_ctx;
    void (*on_drift)(void *ctx, size_t n);
    void *on_drift_ctx;
    const brk_shared_budget *shared_budget; /* NULL = this process's buckets only */
    /* The drift last reported per user (mark.c; marker thread): a slot per user id modulo
     * TRADING_DRIFT_SLOTS, so an unchanged drift is reported once (a collision only repeats
     * a report). */
    trading_drift_slot drifts[TRADING_DRIFT_SLOTS];

    pthread_t rec_thread, mark_thread;
    int rec_running, mark_running, rec_stop; /* rec_stop stops both threads */
    int64_t rec_cursor; /* quiet open orders: the next pass starts after this id */
    pthread_mutex_t rec_mu;
    pthread_cond_t rec_cv;

    /* Stuck submissions the broker said once it does not know (reconciler.c). */
    struct {
        int64_t order_id; /* 0 = free */
        int64_t first_ms;
    } not_found[TRADING_NOT_FOUND_SLOTS];

    /* The admin kill switch as last read or committed here (trading_global_cached); gen moves
     * with every global commit of this process, so a read that raced one is not kept. */
    pthread_mutex_t ghalt_mu;
    bool ghalt_known;
    store_global_state ghalt;
    int64_t ghalt_at_ms;
    uint64_t ghalt_gen;
    uint64_t reads_memory, reads_database; /* trading_count_read; atomic */

    /* trade_updates streams (stream.c): started and stopped by the reconciler thread. */
    pthread_mutex_t str_mu;
    struct trading_stream *streams;
    struct stream_workers *sw; /* applies the streams' reports; made with the first stream */
};

/* The broker connection for key (NULL or "sim": the sim exchange), decrypting a stored key.
 * background: the reconciler's polling and the marks, which leave the last quarter of the
 * account's request budget to the trader's own calls and never wait for it. traceparent: see
 * trading_broker (background work passes NULL). */
tw_status trading_broker_conn(trading *t, store_conn *conn, int64_t user_id,
                              const store_broker_key *key, bool background, const char *traceparent,
                              brk_conn **out);

/* The start (Unix s) of the latest NYSE regular session that has begun at now_s, and whether
 * that session is still open (09:30-16:00 New York; early closes are not modelled, so the
 * afternoon of an early-close day counts as open: the stricter reading). */
int64_t trading_latest_session(const trading *t, int64_t now_s, bool *open);

/*
 * Mark user_id's account to market inside the user's transaction (store_tx_begin_user): its
 * broker account and positions at current prices, the peak raised, the daily-loss and drawdown
 * breakers tripped (or an expired trip cleared) and saved with their audit events. *out: the
 * mark, for ledger_note_mark once the transaction commits. Only sim accounts are marked here
 * (TW_OK, out->at_ms == 0 for others): a real broker's equity needs a broker call, which never
 * happens under the user's lock.
 */
tw_status trading_mark_locked(trading *t, store_conn *conn, int64_t user_id, ledger_mark *out);

/* Decrypts the stored key k (the vault_secret holds "key_id\nsecret"): the one decryption
 * that broker resolution and the streams share. *out: vault_secret_destroy. */
struct vault_secret;
tw_status trading_open_credential(trading *t, store_conn *conn, const store_broker_key *k,
                                  struct vault_secret **out);

/* ---- trade_updates streams (stream.c) ---- */

/* With a healthy stream, a key's quiet open orders are read in one sweep this often. */
#define TRADING_STREAMED_QUIET_MS 60000

typedef enum trading_stream_state {
    TRADING_STREAM_NONE = 0,     /* no healthy stream: poll as always */
    TRADING_STREAM_UP = 1,       /* healthy and caught up: leave the order to the stream */
    TRADING_STREAM_CATCH_UP = 2, /* healthy since a (re)connection: read every open order once */
    TRADING_STREAM_SWEEP = 3,    /* healthy, and this pass is the key's minutely safety sweep */
} trading_stream_state;

/* For the reconciler, about an open order of user_id through key_id: the key's stream state
 * as of the start of this pass. The first call about a key starts its stream (decrypting the
 * key once); every call keeps it from being closed as idle. Reconciler thread only. */
trading_stream_state trading_stream_state_of(trading *t, store_conn *conn, int64_t user_id,
                                             int64_t key_id, int64_t now_ms);
/* Around each reconciler pass: begin takes each stream's state; end records the catch-up as
 * done when the pass read every open order (complete) and closes streams idle for a minute. */
void trading_streams_pass_begin(trading *t, int64_t now_ms);
void trading_streams_pass_end(trading *t, bool complete, int64_t now_ms);
/* Stops every stream (trading_destroy, after the reconciler stopped). */
void trading_streams_stop_all(trading *t);

/* Our order id in a client order id we gave a broker ("tw-<order id>"); 0 when it is not one
 * of ours. */
int64_t trading_order_ref(const char *client_order_id);

/* Starts the marker thread (real-broker marks, mark.c); stopped with the reconciler. */
int trading_start_marker(trading *t);

#endif
