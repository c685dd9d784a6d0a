/*
 * reconciler: the thread that settles what no report told us. Every RECONCILE_EVERY_MS it
 * expires pending confirmations whose window passed, asks the broker about submissions stuck
 * in PENDING_SUBMIT (a lost answer or a crash before sending: "not found" is final, the order
 * is never sent again from here) and about open orders that have been quiet for a while, at
 * most RECONCILE_MAX_ASKS broker requests a pass, from background connections (they never take
 * the last quarter of the user's request budget). What the broker says is applied through
 * the one report path, trading_apply_report. The open orders of an Alpaca key whose
 * trade_updates stream (stream.c) is healthy are read once a minute (a sweep), and all of them
 * once after the stream (re)connects.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "trading_int.h"

#define RECONCILE_EVERY_MS 2000
/* PENDING_SUBMIT older than this is asked about: longer than a submission can still be in
 * flight (adapter connect 5 s + request 10 s), so "the broker has no such order" is final. */
#define STUCK_SUBMIT_MS 30000
/* Open orders the broker keeps reporting on (sim events, webhooks) are re-checked only when
 * quiet this long, and a pass asks the broker at most this many times. */
#define QUIET_OPEN_MS 5000
#define RECONCILE_MAX_ASKS 50
/* "Not found" after an outcome-unknown submit is final only when the broker says it again at
 * least this long after the first time (an order a broker has just taken may not be readable
 * by its client order id yet; a lost answer must not become a rejection of a live order). */
#define NOT_FOUND_CONFIRM_MS 5000

/* Whether this "not found" of a stuck submission confirms an earlier one (then forgotten);
 * the first is remembered (reconciler thread only; a full table forgets its oldest entry,
 * which only delays that verdict). Real elapsed time (monotonic): the wait is for the broker,
 * whatever the trading clock does. */
static bool not_found_confirmed(trading *t, int64_t order_id)
{
    int64_t now_ms = tw_mono_ms();
    size_t oldest = 0;
    for (size_t i = 0; i < TRADING_NOT_FOUND_SLOTS; i++) {
        if (t->not_found[i].order_id == order_id) {
            if (now_ms - t->not_found[i].first_ms < NOT_FOUND_CONFIRM_MS)
                return false;
            t->not_found[i].order_id = 0;
            return true;
        }
        if (t->not_found[i].first_ms < t->not_found[oldest].first_ms)
            oldest = i;
    }
    t->not_found[oldest].order_id = order_id;
    t->not_found[oldest].first_ms = now_ms;
    return false;
}

static void reconcile_one(trading *t, store_conn *conn, const store_order *o, int64_t now_ms,
                          int *asks)
{
    /* Pending confirmations expire. */
    if (strcmp(o->status, ORD_PENDING_CONFIRMATION) == 0) {
        if (o->confirm_by_us && o->confirm_by_us / 1000 < now_ms) {
            brk_order r;
            memset(&r, 0, sizeof(r));
            r.status = BRK_ORDER_EXPIRED;
            r.filled_qty = o->filled_qty;
            r.filled_avg_price = o->avg_fill_price;
            trading_apply_report(t, o->user_id, o->id, &r, "system");
        }
        return;
    }
    /* Store timestamps use the same clock (store_set_clock). */
    int64_t age_ms = now_ms - o->updated_at_us / 1000;
    bool stuck = strcmp(o->status, ORD_PENDING_SUBMIT) == 0;
    int64_t quiet_ms = stuck ? STUCK_SUBMIT_MS : QUIET_OPEN_MS;
    if (!stuck && o->broker_key_id) {
        /* A healthy trade_updates stream reports fills as they happen: polling is then only a
         * safety net, except once after each (re)connection, when every open order is read. */
        switch (trading_stream_state_of(t, conn, o->user_id, o->broker_key_id, now_ms)) {
        case TRADING_STREAM_UP:
            return; /* the stream reports it; the next sweep reads it */
        case TRADING_STREAM_SWEEP:
            break;
        case TRADING_STREAM_CATCH_UP:
            quiet_ms = 0;
            break;
        case TRADING_STREAM_NONE:
            break;
        }
    }
    if (age_ms < quiet_ms)
        return; /* a submission may be in flight, or the broker reported recently */
    if (*asks >= RECONCILE_MAX_ASKS)
        return;
    (*asks)++;
    store_broker_key key, *kp = NULL;
    if (o->broker_key_id) {
        if (store_key_get(conn, o->user_id, o->broker_key_id, &key) != STORE_OK)
            return;
        kp = &key;
    }
    brk_conn *bc = NULL;
    if (trading_broker_conn(t, conn, o->user_id, kp, true, NULL, &bc).code != TW_OK)
        return;
    brk_order r;
    /* What the broker says is the broker's report (audit.proto's "broker"), polled or
     * streamed alike; "system" is only for what the server decides itself (below). */
    brk_rc rc =
        trading_sync_order(t, bc, o->user_id, o->id, o->broker_order_id, "broker", &r, NULL);
    /* The in-process sim knows at once what it has; a real broker is asked twice. */
    bool sim = strcmp(brk_conn_backend(bc), "sim") == 0;
    brk_conn_destroy(bc);
    if (rc == BRK_NOT_FOUND && strcmp(o->status, ORD_PENDING_SUBMIT) == 0) {
        if (!sim && !not_found_confirmed(t, o->id)) {
            tw_logf(TW_LOG_INFO, "reconcile",
                    "order %lld: not found at the broker; asking again before rejecting",
                    (long long)o->id);
            return;
        }
        /* The broker never received it (crash or lost request before sending): it is safe to
         * close, and it is never sent again from here. */
        memset(&r, 0, sizeof(r));
        r.status = BRK_ORDER_REJECTED;
        trading_apply_report(t, o->user_id, o->id, &r, "system");
        tw_logf(TW_LOG_WARN, "reconcile", "order %lld never reached the broker: rejected",
                (long long)o->id);
    }
}

static bool is_pending(const store_order *o)
{
    return strcmp(o->status, ORD_PENDING_CONFIRMATION) == 0 ||
           strcmp(o->status, ORD_PENDING_SUBMIT) == 0;
}

/* One scan over the open orders with id > *after (and <= upto unless upto is 0), handling those
 * of one kind (pending or not) until the ask budget runs out. Returns true when the scan reached
 * its end. */
static bool reconcile_scan(trading *t, store_conn *conn, bool pending, int64_t *after, int64_t upto,
                           int64_t now_ms, int *asks)
{
    for (;;) {
        store_order *ords = NULL;
        size_t n = 0;
        if (store_admin_orders_open(conn, *after, 200, &ords, &n) != STORE_OK) {
            free(ords);
            return true; /* the next pass starts over */
        }
        for (size_t i = 0; i < n; i++) {
            if (upto && ords[i].id > upto) {
                free(ords);
                return true;
            }
            if (is_pending(&ords[i]) != pending)
                continue;
            if (!pending && *asks >= RECONCILE_MAX_ASKS) {
                free(ords);
                return false;
            }
            *after = ords[i].id;
            reconcile_one(t, conn, &ords[i], now_ms, asks);
        }
        if (n > 0)
            *after = ords[n - 1].id;
        free(ords);
        if (n < 200)
            return true;
    }
}

/* A pass first settles every pending order (expired confirmations, stuck submissions: the
 * states a trader is waiting on), then re-checks quiet open orders with what is left of the
 * ask budget, continuing where the last pass stopped so that no open order is starved by a
 * few hundred older resting ones. */
void trading_reconcile(trading *t)
{
    store_conn *conn;
    if (store_conn_acquire(t->st, &conn) != STORE_OK)
        return;
    int64_t now_ms = trading_now_ms(t), after = 0;
    int asks = 0;
    trading_streams_pass_begin(t, now_ms);
    reconcile_scan(t, conn, true, &after, 0, now_ms, &asks);
    after = t->rec_cursor;
    bool done = reconcile_scan(t, conn, false, &after, 0, now_ms, &asks);
    if (done && t->rec_cursor > 0 && asks < RECONCILE_MAX_ASKS) {
        after = 0; /* wrap around once: the orders up to where this pass began */
        done = reconcile_scan(t, conn, false, &after, t->rec_cursor, now_ms, &asks);
    }
    t->rec_cursor = done ? 0 : after;
    trading_streams_pass_end(t, done, now_ms);
    store_conn_release(conn);
}

static void *reconciler_main(void *arg)
{
    trading *t = arg;
    pthread_mutex_lock(&t->rec_mu);
    while (!t->rec_stop) {
        pthread_mutex_unlock(&t->rec_mu);
        trading_reconcile(t);
        pthread_mutex_lock(&t->rec_mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += RECONCILE_EVERY_MS / 1000;
        while (!t->rec_stop && pthread_cond_timedwait(&t->rec_cv, &t->rec_mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&t->rec_mu);
    return NULL;
}

int trading_start_reconciler(trading *t)
{
    if (pthread_create(&t->rec_thread, NULL, reconciler_main, t) != 0)
        return -1;
    t->rec_running = 1;
    return trading_start_marker(t);
}
