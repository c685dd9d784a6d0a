/*
 * mark: mark-to-market. A quote change re-values the positions of every user holding the
 * symbol, so the intraday peak and the daily-loss and drawdown breakers follow the market, not
 * the next order: a trip is saved with its BREAKER_TRIP audit event in the transaction of the
 * mark that saw it (issue 18).
 *
 * A mark is one user transaction: lock the user's row, read the account (the sim's, in
 * memory), load the risk view, assess, persist what changed (peak, day roll, trip or clear).
 * Nothing in it waits on the network. Real brokers are not marked here: their equity needs a
 * broker call, which is made only outside the user's lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "trading_int.h"

tw_status trading_mark_locked(trading *t, store_conn *conn, int64_t user_id, ledger_mark *out)
{
    out->at_ms = 0;
    out->equity = 0;
    if (!t->sim)
        return tw_ok();
    store_settings set;
    if (store_settings_get(conn, user_id, &set) != STORE_OK)
        return tw_err(TW_UNAVAILABLE, "database unavailable, retry later");
    if (set.default_broker_key_id)
        return tw_ok(); /* the user trades at a real broker: not a sim account */

    char uid[32];
    snprintf(uid, sizeof(uid), "%lld", (long long)user_id);
    brk_conn *bc = NULL;
    brk_account acct;
    if (brk_sim_connect(t->sim, uid, &bc) != BRK_OK)
        return tw_err(TW_UNAVAILABLE, "sim account unavailable");
    brk_rc brc = brk_account_get(bc, &acct, NULL);
    brk_conn_destroy(bc);
    if (brc != BRK_OK)
        return tw_err(TW_UNAVAILABLE, "sim account unavailable");

    tw_arena *arena = tw_arena_create();
    trading_view *v = arena ? tw_arena_zalloc(arena, sizeof(*v)) : NULL;
    tw_status st = v ? trading_view_load(t, arena, conn, user_id, &acct, NULL, 0, 0, v)
                     : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    int64_t now_ms = trading_now_ms(t);
    risk_assessment a;
    if (st.code == TW_OK && risk_assess(&v->snap, &v->limits, now_ms, &a) != RISK_OK)
        st = tw_err(TW_INTERNAL, "risk assessment failed");
    if (st.code == TW_OK)
        st = trading_persist_assessment(t, conn, user_id, v, &a);
    if (st.code == TW_OK) {
        out->at_ms = now_ms;
        out->equity = acct.equity;
    }
    tw_arena_destroy(arena);
    return st;
}

static int cmp_id(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Every user holding any of symbols, ascending, each once. *out: free(). */
static store_rc holders(store_conn *conn, const char *const *symbols, size_t n, int64_t **out,
                        size_t *n_out)
{
    int64_t *all = NULL;
    size_t count = 0;
    store_rc rc = STORE_OK;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        int64_t *ids = NULL;
        size_t k = 0;
        rc = store_position_holders(conn, symbols[i], &ids, &k);
        if (rc == STORE_OK && k) {
            int64_t *grown = realloc(all, (count + k) * sizeof(*all));
            if (grown) {
                all = grown;
                memcpy(all + count, ids, k * sizeof(*ids));
                count += k;
            } else {
                rc = STORE_NOMEM;
            }
        }
        free(ids);
    }
    if (rc != STORE_OK) {
        free(all);
        return rc;
    }
    if (count)
        qsort(all, count, sizeof(*all), cmp_id);
    size_t u = 0;
    for (size_t i = 0; i < count; i++)
        if (u == 0 || all[u - 1] != all[i])
            all[u++] = all[i];
    *out = all;
    *n_out = u;
    return STORE_OK;
}

static void mark_user(trading *t, store_conn *conn, int64_t user_id)
{
    ledger_mark m = {0};
    tw_status st = tw_ok();
    store_rc rc = STORE_OK;
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = store_tx_begin_user(conn, user_id);
        if (rc != STORE_OK)
            continue;
        st = trading_mark_locked(t, conn, user_id, &m);
        if (st.code == TW_OK) {
            rc = store_tx_commit(conn);
        } else {
            store_tx_rollback(conn);
            break;
        }
        if (rc != STORE_BUSY)
            break;
    }
    if (st.code == TW_OK && rc == STORE_OK) {
        if (m.at_ms)
            ledger_note_mark(t->ledger, user_id, &m);
        return;
    }
    tw_logf(TW_LOG_ERROR, "mark", "user %lld: not marked (%s)", (long long)user_id,
            st.code != TW_OK ? st.message : store_rc_name(rc));
}

void trading_mark_symbols(trading *t, const char *const *symbols, size_t n)
{
    if (!t->sim || n == 0)
        return;
    store_conn *conn;
    if (store_conn_acquire(t->st, &conn) != STORE_OK) {
        tw_logf(TW_LOG_ERROR, "mark", "database unavailable: %zu symbols not marked", n);
        return;
    }
    int64_t *ids = NULL;
    size_t nids = 0;
    store_rc rc = holders(conn, symbols, n, &ids, &nids);
    if (rc != STORE_OK)
        tw_logf(TW_LOG_ERROR, "mark", "holders not read (%s): not marked", store_rc_name(rc));
    for (size_t i = 0; i < nids; i++)
        mark_user(t, conn, ids[i]);
    free(ids);
    store_conn_release(conn);
}

bool trading_last_mark(trading *t, int64_t user_id, int64_t *at_ms)
{
    ledger_mark m;
    if (!ledger_last_mark(t->ledger, user_id, &m))
        return false;
    *at_ms = m.at_ms;
    return true;
}
