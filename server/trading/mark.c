/*
 * mark: mark-to-market. The intraday peak and the daily-loss and drawdown breakers follow the
 * market, not the next order: a trip is saved with its BREAKER_TRIP audit event in the
 * transaction of the mark that saw it (issue 18).
 *
 *  - Sim accounts: a quote change re-values every user holding the symbol (Sim/SetQuotes), and
 *    a fill that reduces a position re-values its user, inside the fill's transaction.
 *  - Real brokers: the marker thread re-values every user who trades through a stored key and
 *    holds a position, every TW_MARK_INTERVAL_S in the NYSE session (TW_MARK_CLOSED_INTERVAL_S
 *    outside it): one account request per user per period, from a background connection (it
 *    never takes the last quarter of the request budget), made before the user's lock is
 *    taken, so no transaction waits on the network.
 *
 * Position reconciliation rides on the real-broker mark: our positions vs GET /v2/positions,
 * per user per period. A difference (outside symbols with open orders, where a fill may be in
 * flight) is a drift: tradewink_position_drifts_total, a POSITION_DRIFT audit event per
 * symbol and a warning, once while it stays the same; our records are never overwritten.
 *
 * A mark is one user transaction: lock the user's row, load the risk view for the account just
 * read, assess, persist what changed (peak, day roll, trip or clear). Its result (when, and the
 * account) goes to the ledger once the transaction commits; GetState answers a real broker's
 * equity from there instead of calling the broker on a read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "audit/audit.h"
#include "core/arena.h"
#include "core/log.h"
#include "trading_int.h"

/* Users re-valued per store read of the marker's pass (the pass continues until none is left). */
#define MARK_BATCH 100

/* Inside the user's transaction: assess the user's view for acct and persist what changed. */
static tw_status mark_account_locked(trading *t, store_conn *conn, int64_t user_id, int64_t key_id,
                                     const brk_account *acct, ledger_mark *out)
{
    tw_arena *arena = tw_arena_create();
    trading_view *v = arena ? tw_arena_zalloc(arena, sizeof(*v)) : NULL;
    tw_status st = v ? trading_view_load(t, arena, conn, user_id, acct, NULL, 0, 0, v)
                     : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    int64_t now_ms = trading_now_ms(t);
    risk_assessment a;
    if (st.code == TW_OK && risk_assess(&v->snap, &v->limits, now_ms, &a) != RISK_OK)
        st = tw_err(TW_INTERNAL, "risk assessment failed");
    if (st.code == TW_OK)
        st = trading_persist_assessment(t, conn, user_id, v, &a);
    if (st.code == TW_OK) {
        out->at_ms = now_ms;
        out->key_id = key_id;
        out->acct = *acct;
    }
    tw_arena_destroy(arena);
    return st;
}

tw_status trading_mark_locked(trading *t, store_conn *conn, int64_t user_id, ledger_mark *out)
{
    memset(out, 0, sizeof(*out));
    if (!t->sim)
        return tw_ok();
    /* Which broker the user trades at: the ledger's reads when nobody committed since they
     * were exact (a fill's mark, right after its admission), else the store's. */
    ledger_reads r;
    store_settings set;
    if (trading_reads_known(t, user_id, &r) && r.version == store_tx_version(conn) - 1) {
        if (!r.key_sim)
            return tw_ok(); /* the user trades at a real broker: the marker thread marks it */
    } else if (store_settings_get(conn, user_id, &set) != STORE_OK) {
        return tw_err(TW_UNAVAILABLE, "database unavailable, retry later");
    } else if (set.default_broker_key_id) {
        store_broker_key key;
        if (store_key_get(conn, user_id, set.default_broker_key_id, &key) != STORE_OK)
            return tw_err(TW_UNAVAILABLE, "database unavailable, retry later");
        if (strcmp(key.broker, "sim") != 0)
            return tw_ok(); /* the user trades at a real broker: the marker thread marks it */
    }

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
    return mark_account_locked(t, conn, user_id, 0, &acct, out);
}

/* One user transaction around mark (the sim's, or a real broker's account already read),
 * retried when the store is busy; the ledger learns the mark once it is committed. */
static void mark_user(trading *t, store_conn *conn, int64_t user_id, int64_t key_id,
                      const brk_account *acct)
{
    ledger_mark m;
    memset(&m, 0, sizeof(m));
    tw_status st = tw_ok();
    store_rc rc = STORE_OK;
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = store_tx_begin_user(conn, user_id);
        if (rc != STORE_OK)
            continue;
        st = acct ? mark_account_locked(t, conn, user_id, key_id, acct, &m)
                  : trading_mark_locked(t, conn, user_id, &m);
        if (st.code != TW_OK) {
            store_tx_rollback(conn);
            break;
        }
        rc = store_tx_commit(conn);
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

/* ---- sim: marks on quote changes ------------------------------------------------------------ */

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
        mark_user(t, conn, ids[i], 0, NULL);
    free(ids);
    store_conn_release(conn);
}

/* ---- real brokers: the periodic mark --------------------------------------------------------- */

/* The mark period now: TW_MARK_INTERVAL_S in the NYSE session, TW_MARK_CLOSED_INTERVAL_S out. */
static int64_t mark_period_ms(trading *t)
{
    bool open = false;
    (void)trading_latest_session(t, trading_now_ms(t) / 1000, &open);
    return (int64_t)(open ? t->cfg->mark_interval_s : t->cfg->mark_closed_interval_s) * 1000;
}

/* ---- real brokers: position reconciliation -------------------------------------------------- */

/* What we hold, read BEFORE the broker's positions: a fill applied between the two reads then
 * belongs to an order that was open at ours, and symbols with open orders are not compared (a
 * fill in flight explains a difference there; the reconciler settles the order). */
typedef struct {
    store_position *pos;
    size_t npos;
    store_order_brief *open;
    size_t nopen;
} ours_snapshot;

static void ours_free(ours_snapshot *o)
{
    free(o->pos);
    free(o->open);
    memset(o, 0, sizeof(*o));
}

static bool has_open_order(const ours_snapshot *o, const char *symbol)
{
    for (size_t i = 0; i < o->nopen; i++)
        if (strcmp(o->open[i].symbol, symbol) == 0)
            return true;
    return false;
}

static int64_t broker_qty(const brk_position_list *bl, const char *symbol)
{
    for (size_t i = 0; i < bl->n; i++)
        if (strcmp(bl->items[i].symbol, symbol) == 0)
            return bl->items[i].qty;
    return 0;
}

static int64_t our_qty(const ours_snapshot *o, const char *symbol)
{
    for (size_t i = 0; i < o->npos; i++)
        if (strcmp(o->pos[i].symbol, symbol) == 0)
            return o->pos[i].qty;
    return 0;
}

static bool add_drift(json_t *drifts, const char *symbol, int64_t ours, int64_t theirs)
{
    char q[48], b[48];
    risk_qty_format(ours, q, sizeof(q));
    risk_qty_format(theirs, b, sizeof(b));
    return json_array_append_new(
               drifts, json_pack("{s:s,s:s,s:s}", "symbol", symbol, "ours", q, "broker", b)) == 0;
}

/* FNV-1a: the drift set as reported, so an unchanged drift is not reported every period. */
static uint64_t drift_sig(const char *text)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h ? h : 1;
}

/* Each drifting symbol: one POSITION_DRIFT audit event in the user's chain, in one
 * transaction. Our records are left as they are: a drift is for a person to resolve. */
static store_rc audit_drifts(trading *t, store_conn *conn, int64_t user_id, json_t *drifts)
{
    int64_t now_us = trading_now_ms(t) * 1000;
    store_rc rc = STORE_OK;
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = store_tx_begin_user(conn, user_id);
        size_t i;
        json_t *d;
        json_array_foreach(drifts, i, d)
        {
            if (rc != STORE_OK)
                break;
            char *details = json_dumps(d, JSON_COMPACT);
            audit_entry e = {.user_id = user_id,
                             .actor = "system",
                             .actor_id = "reconcile",
                             .action = "POSITION_DRIFT",
                             .object_id = json_string_value(json_object_get(d, "symbol")),
                             .outcome = "FAILURE",
                             .details = details};
            rc = details ? audit_append(conn, &e, now_us, NULL) : STORE_NOMEM;
            free(details);
        }
        if (rc == STORE_OK)
            rc = store_tx_commit(conn);
        else
            store_tx_rollback(conn);
        if (rc != STORE_BUSY)
            break;
    }
    return rc;
}

/* Our positions vs the broker's: every difference outside symbols with open orders is a drift,
 * reported once while it stays the same (metric, audit event, warning), never applied. */
static void reconcile_positions(trading *t, store_conn *conn, int64_t user_id,
                                const ours_snapshot *ours, const brk_position_list *bl)
{
    json_t *drifts = json_array();
    char *text = NULL;
    if (!drifts)
        return;
    for (size_t i = 0; i < ours->npos; i++) {
        const char *sym = ours->pos[i].symbol;
        int64_t theirs = broker_qty(bl, sym);
        if (ours->pos[i].qty != theirs && !has_open_order(ours, sym) &&
            !add_drift(drifts, sym, ours->pos[i].qty, theirs))
            goto out;
    }
    for (size_t i = 0; i < bl->n; i++) {
        const char *sym = bl->items[i].symbol;
        bool known = false;
        for (size_t k = 0; k < ours->npos && !known; k++)
            known = strcmp(ours->pos[k].symbol, sym) == 0;
        if (!known && bl->items[i].qty != 0 && !has_open_order(ours, sym) &&
            !add_drift(drifts, sym, our_qty(ours, sym), bl->items[i].qty))
            goto out;
    }
    size_t n = json_array_size(drifts);
    text = n ? json_dumps(drifts, JSON_COMPACT) : NULL;
    if (n && !text)
        goto out;
    uint64_t sig = n ? drift_sig(text) : 0;
    trading_drift_slot *slot = &t->drifts[(uint64_t)user_id % TRADING_DRIFT_SLOTS];
    uint64_t known_sig = slot->user_id == user_id ? slot->sig : 0;
    if (sig == known_sig)
        goto out; /* nothing new: no drift, or the same one already reported */
    if (!n) {
        tw_logf(TW_LOG_INFO, "reconcile", "user %lld: positions agree with the broker again",
                (long long)user_id);
    } else {
        size_t i;
        json_t *d;
        json_array_foreach(drifts, i, d)
        {
            tw_logf(TW_LOG_WARN, "reconcile",
                    "user %lld: position drift in %s: ours %s, broker %s (not overwritten)",
                    (long long)user_id, json_string_value(json_object_get(d, "symbol")),
                    json_string_value(json_object_get(d, "ours")),
                    json_string_value(json_object_get(d, "broker")));
        }
        store_rc rc = audit_drifts(t, conn, user_id, drifts);
        if (rc != STORE_OK) {
            tw_logf(TW_LOG_ERROR, "reconcile", "user %lld: drift not audited (%s); next period",
                    (long long)user_id, store_rc_name(rc));
            goto out; /* not remembered: reported again next period */
        }
        if (t->on_drift)
            t->on_drift(t->on_drift_ctx, n);
    }
    slot->user_id = user_id;
    slot->sig = sig;
out:
    free(text);
    json_decref(drifts);
}

/* Read user_id's account at its default broker (outside any transaction), then mark it. */
static void mark_broker_user(trading *t, store_conn *conn, int64_t user_id)
{
    store_settings set;
    store_broker_key key;
    if (store_settings_get(conn, user_id, &set) != STORE_OK || !set.default_broker_key_id ||
        store_key_get(conn, user_id, set.default_broker_key_id, &key) != STORE_OK)
        return; /* the key or setting changed since the list was read */
    if (strcmp(key.broker, "sim") == 0)
        return; /* a sim account: marked on every quote change instead */
    brk_conn *bc = NULL;
    tw_status st = trading_broker_conn(t, conn, user_id, &key, true, NULL, &bc);
    if (st.code != TW_OK) {
        tw_logf(TW_LOG_INFO, "mark", "user %lld: no broker connection (%s)", (long long)user_id,
                st.message);
        return;
    }
    brk_account acct;
    brk_err err = {0};
    brk_rc rc = brk_account_get(bc, &acct, &err);
    /* The position check rides on the mark: one more request per user per period, from the
     * same background budget; skipped when our side cannot be read or the broker says no. */
    ours_snapshot ours = {0};
    brk_position_list bl = {0};
    bool compare =
        rc == BRK_OK && store_position_list(conn, user_id, &ours.pos, &ours.npos) == STORE_OK &&
        store_order_open_brief_list(conn, user_id, STORE_PERIOD_MAX, &ours.open, &ours.nopen) ==
            STORE_OK &&
        brk_positions(bc, &bl, NULL) == BRK_OK;
    brk_conn_destroy(bc);
    if (rc == BRK_OK) {
        mark_user(t, conn, user_id, key.id, &acct);
        if (compare)
            reconcile_positions(t, conn, user_id, &ours, &bl);
    }
    ours_free(&ours);
    brk_position_list_free(&bl);
    if (rc != BRK_OK) {
        /* Not marked this period (network, budget, refused key): the next period tries again;
         * admission still reads the account itself before every order. */
        tw_logf(TW_LOG_INFO, "mark", "user %lld: account not read (%s)", (long long)user_id,
                brk_rc_name(rc));
    }
}

void trading_mark_brokers(trading *t)
{
    store_conn *conn;
    if (store_conn_acquire(t->st, &conn) != STORE_OK)
        return;
    int64_t after = 0;
    for (;;) {
        int64_t *ids = NULL;
        size_t n = 0;
        if (store_broker_holders(conn, after, MARK_BATCH, &ids, &n) != STORE_OK) {
            tw_logf(TW_LOG_ERROR, "mark", "accounts to mark not read: not marked");
            break;
        }
        for (size_t i = 0; i < n; i++)
            mark_broker_user(t, conn, ids[i]);
        after = n ? ids[n - 1] : after;
        free(ids);
        pthread_mutex_lock(&t->rec_mu);
        bool stop = t->rec_stop;
        pthread_mutex_unlock(&t->rec_mu);
        if (n < MARK_BATCH || stop)
            break;
    }
    store_conn_release(conn);
}

static void *marker_main(void *arg)
{
    trading *t = arg;
    pthread_mutex_lock(&t->rec_mu);
    while (!t->rec_stop) {
        pthread_mutex_unlock(&t->rec_mu);
        int64_t start = trading_now_ms(t);
        trading_mark_brokers(t);
        int64_t wait_ms = mark_period_ms(t) - (trading_now_ms(t) - start);
        if (wait_ms < 100)
            wait_ms = 100; /* a pass longer than the period: the next starts at once */
        pthread_mutex_lock(&t->rec_mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!t->rec_stop && pthread_cond_timedwait(&t->rec_cv, &t->rec_mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&t->rec_mu);
    return NULL;
}

int trading_start_marker(trading *t)
{
    if (pthread_create(&t->mark_thread, NULL, marker_main, t) != 0)
        return -1;
    t->mark_running = 1;
    return 0;
}

void trading_set_drift_hook(trading *t, void (*fn)(void *ctx, size_t n), void *ctx)
{
    t->on_drift = fn;
    t->on_drift_ctx = ctx;
}

bool trading_last_mark(trading *t, int64_t user_id, int64_t *at_ms)
{
    ledger_mark m;
    if (!ledger_last_mark(t->ledger, user_id, &m))
        return false;
    *at_ms = m.at_ms;
    return true;
}

bool trading_marked_account(trading *t, int64_t user_id, int64_t key_id, brk_account *out)
{
    ledger_mark m;
    if (!ledger_last_mark(t->ledger, user_id, &m) || m.key_id != key_id)
        return false; /* none, or of another key (the user changed their default since) */
    /* Fresh: at most two periods old (one missed mark is tolerated, more is not). */
    if (trading_now_ms(t) - m.at_ms > 2 * mark_period_ms(t))
        return false;
    *out = m.acct;
    return true;
}
