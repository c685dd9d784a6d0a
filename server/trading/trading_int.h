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

    pthread_t rec_thread, mark_thread;
    int rec_running, mark_running, rec_stop; /* rec_stop stops both threads */
    int64_t rec_cursor; /* quiet open orders: the next pass starts after this id */
    pthread_mutex_t rec_mu;
    pthread_cond_t rec_cv;
};

/* The broker connection for key (NULL or "sim": the sim exchange), decrypting a stored key.
 * background: the reconciler's polling and the marks, which leave the last quarter of the
 * account's request budget to the trader's own calls and never wait for it. */
tw_status trading_broker_conn(trading *t, store_conn *conn, int64_t user_id,
                              const store_broker_key *key, bool background, brk_conn **out);

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

/* Starts the marker thread (real-broker marks, mark.c); stopped with the reconciler. */
int trading_start_marker(trading *t);

#endif
