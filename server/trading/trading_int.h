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

    pthread_t rec_thread;
    int rec_running, rec_stop;
    int64_t rec_cursor; /* quiet open orders: the next pass starts after this id */
    pthread_mutex_t rec_mu;
    pthread_cond_t rec_cv;
};

/*
 * Mark user_id's account to market inside the user's transaction (store_tx_begin_user): its
 * broker account and positions at current prices, the peak raised, the daily-loss and drawdown
 * breakers tripped (or an expired trip cleared) and saved with their audit events. *out: the
 * mark, for ledger_note_mark once the transaction commits. Only sim accounts are marked here
 * (TW_OK, out->at_ms == 0 for others): a real broker's equity needs a broker call, which never
 * happens under the user's lock.
 */
tw_status trading_mark_locked(trading *t, store_conn *conn, int64_t user_id, ledger_mark *out);

#endif
