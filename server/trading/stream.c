/*
 * stream: Alpaca trade_updates streams, one per stored Alpaca key that has open orders, fed
 * into the one report path (trading_apply_report) with the broker's fill time.
 *
 * Design: the reconciler is the only thread that starts and stops streams. While it scans the
 * open orders it asks trading_stream_state for each order's key: the first ask about a key
 * decrypts it (once) and starts its stream; every ask marks the key as still needed. A stream
 * not needed for STREAM_IDLE_MS is stopped at the end of a pass. Every stream of the process
 * runs on the broker's one service thread (brokers/alpaca_stream.c), which calls on_update;
 * on_update only queues the report, and STREAM_WORKERS threads apply them (a user's always on
 * the same one, in order), so a slow commit for one user never holds another's events nor the
 * streams' pings. The queue is bounded: a report that finds it full is dropped and its key is
 * caught up by the reconciler (every open order read once), as after a reconnection.
 *
 * What the reconciler does with the answer: no healthy stream -> poll as always; healthy ->
 * the key's quiet open orders are read only in one sweep every TRADING_STREAMED_QUIET_MS (a
 * safety net, not the way fills arrive: at most one GET per open order per minute); healthy
 * with a generation not yet caught up (the stream just came up, or
 * came back) -> every open order of the key is read once regardless of age, because events
 * sent while it was down are not replayed. Streams and polls may report the same fill: the
 * report path is idempotent (cumulative quantities), so nothing is counted twice.
 *
 * Invariants: entries live in a list under str_mu; an entry is freed only by the reconciler
 * thread after its stream stopped (so on_update never sees a freed entry).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "trading_int.h"
#include "vault/vault.h"

/* A key without open orders this long has its stream closed. */
#define STREAM_IDLE_MS 60000
#define STREAM_WORKERS 2
#define STREAM_QUEUE_MAX 4096 /* reports waiting in all, about 1 KB each */

struct trading_stream {
    struct trading_stream *next;
    trading *t;
    int64_t user_id, key_id;
    brk_alpaca_stream *s; /* NULL: not an Alpaca key, or its stream could not start */
    bool alpaca;          /* an Alpaca key: it should have a stream */
    int64_t needed_ms;    /* last pass that found an open order of this key */
    uint64_t pass_gen;    /* the generation seen up at the start of this pass (0 = down) */
    uint64_t polled_gen;  /* the last generation whose catch-up poll completed */
    int64_t sweep_due_ms; /* next safety-net read of the key's quiet open orders */
    bool sweeping;        /* this pass is one */
};

static void brk_log_to_ours(void *ctx, brk_log_level level, const char *msg)
{
    (void)ctx;
    tw_logf(level >= BRK_LOG_ERROR  ? TW_LOG_ERROR
            : level >= BRK_LOG_WARN ? TW_LOG_WARN
                                    : TW_LOG_INFO,
            "alpaca_stream", "%s", msg);
}

/* On the stream's thread. An order placed by someone else on the same account, or a
 * replacement (Alpaca gives it its own client order id), is not ours by id: it is left to the
 * reconciler, which follows replaced_by. The store scopes the order to this key's user. */
typedef struct stream_job {
    struct stream_job *next;
    int64_t user_id, order_id;
    brk_order o;
} stream_job;

struct stream_workers;
typedef struct stream_worker {
    struct stream_workers *sw;
    int i;
    pthread_t th;
} stream_worker;

struct stream_workers {
    trading *t;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    stream_job *head[STREAM_WORKERS], *tail[STREAM_WORKERS]; /* by user_id % STREAM_WORKERS */
    size_t queued;
    bool stop;
    int running; /* threads started */
    stream_worker w[STREAM_WORKERS];
};

static void *stream_worker_main(void *arg)
{
    stream_worker *w = arg;
    struct stream_workers *sw = w->sw;
    pthread_mutex_lock(&sw->mu);
    for (;;) {
        stream_job *j = sw->head[w->i];
        if (!j) {
            if (sw->stop)
                break; /* drained */
            pthread_cond_wait(&sw->cv, &sw->mu);
            continue;
        }
        sw->head[w->i] = j->next;
        if (!sw->head[w->i])
            sw->tail[w->i] = NULL;
        sw->queued--;
        pthread_mutex_unlock(&sw->mu);
        trading_apply_report(sw->t, j->user_id, j->order_id, &j->o, "broker");
        free(j);
        pthread_mutex_lock(&sw->mu);
    }
    pthread_mutex_unlock(&sw->mu);
    return NULL;
}

static void workers_stop(struct stream_workers *sw);

/* Reconciler thread, before the first stream starts. NULL when nothing could start: the
 * streams then apply their reports themselves (on the service thread), as a last resort. */
static struct stream_workers *workers_start(trading *t)
{
    struct stream_workers *sw = tw_calloc(1, sizeof(*sw));
    if (!sw)
        return NULL;
    sw->t = t;
    pthread_mutex_init(&sw->mu, NULL);
    pthread_cond_init(&sw->cv, NULL);
    for (int i = 0; i < STREAM_WORKERS; i++) {
        sw->w[i] = (stream_worker){.sw = sw, .i = i};
        if (pthread_create(&sw->w[i].th, NULL, stream_worker_main, &sw->w[i]) != 0)
            break;
        sw->running++;
    }
    if (sw->running == STREAM_WORKERS)
        return sw;
    workers_stop(sw); /* the ones that started */
    return NULL;
}

/* After every stream stopped: applies what is queued, then ends the threads. */
static void workers_stop(struct stream_workers *sw)
{
    if (!sw)
        return;
    pthread_mutex_lock(&sw->mu);
    sw->stop = true;
    pthread_cond_broadcast(&sw->cv);
    pthread_mutex_unlock(&sw->mu);
    for (int i = 0; i < sw->running; i++)
        pthread_join(sw->w[i].th, NULL);
    pthread_cond_destroy(&sw->cv);
    pthread_mutex_destroy(&sw->mu);
    free(sw);
}

/* On the streams' service thread: queue the report for its user's worker. A full queue drops
 * it and has the reconciler read every open order of the key once (what the stream said is
 * never the only word). */
static void on_update(void *ctx, const char *event, const brk_order *o)
{
    struct trading_stream *e = ctx;
    trading *t = e->t;
    int64_t oid = trading_order_ref(o->client_order_id);
    if (!oid)
        return;
    tw_logf(TW_LOG_DEBUG, "alpaca_stream", "order %lld: %s", (long long)oid, event);
    struct stream_workers *sw = t->sw;
    if (!sw) {
        trading_apply_report(t, e->user_id, oid, o, "broker");
        return;
    }
    stream_job *j = NULL;
    pthread_mutex_lock(&sw->mu);
    if (sw->queued < STREAM_QUEUE_MAX && (j = malloc(sizeof(*j))) != NULL) {
        j->next = NULL;
        j->user_id = e->user_id;
        j->order_id = oid;
        j->o = *o;
        int i = (int)((uint64_t)e->user_id % STREAM_WORKERS);
        if (sw->tail[i])
            sw->tail[i]->next = j;
        else
            sw->head[i] = j;
        sw->tail[i] = j;
        sw->queued++;
        pthread_cond_broadcast(&sw->cv);
    }
    pthread_mutex_unlock(&sw->mu);
    if (j)
        return;
    tw_logf(TW_LOG_WARN, "alpaca_stream",
            "order %lld: %d stream reports waiting; this one is dropped and the key's open orders "
            "are read again",
            (long long)oid, STREAM_QUEUE_MAX);
    pthread_mutex_lock(&t->str_mu);
    e->polled_gen = 0; /* the next pass catches the key up */
    pthread_mutex_unlock(&t->str_mu);
}

static struct trading_stream *find(trading *t, int64_t key_id)
{
    for (struct trading_stream *e = t->streams; e; e = e->next)
        if (e->key_id == key_id)
            return e;
    return NULL;
}

/* Decrypts key (once per entry) and starts its stream; e->s stays NULL on any failure, and the
 * key's orders are then polled as before. */
static void start_stream(trading *t, store_conn *conn, const store_broker_key *key,
                         struct trading_stream *e)
{
    if (strcmp(key->broker, "alpaca") != 0)
        return;
    e->alpaca = true;
    brk_alpaca_stream_config sc = {.live = strcmp(key->environment, "live") == 0,
                                   .base_url = t->cfg->alpaca_base_url,
                                   .on_update = on_update,
                                   .ctx = e,
                                   .log = brk_log_to_ours};
    const unsigned char *p = NULL, *nl = NULL;
    size_t n = 0;
    vault_secret *cred = NULL;
    if (trading_open_credential(t, conn, key, &cred).code != TW_OK)
        return;
    p = vault_secret_data(cred);
    n = vault_secret_len(cred);
    nl = memchr(p, '\n', n);
    if (nl && brk_alpaca_stream_start(&sc, (const char *)p, (size_t)(nl - p), nl + 1,
                                      n - (size_t)(nl - p) - 1, &e->s, NULL) != BRK_OK)
        e->s = NULL;
    vault_secret_destroy(cred);
    if (!e->s)
        tw_logf(TW_LOG_WARN, "alpaca_stream", "key %lld: no stream (polling only)",
                (long long)key->id);
}

trading_stream_state trading_stream_state_of(trading *t, store_conn *conn, int64_t user_id,
                                             int64_t key_id, int64_t now_ms)
{
    pthread_mutex_lock(&t->str_mu);
    struct trading_stream *e = find(t, key_id);
    pthread_mutex_unlock(&t->str_mu);
    if (!e) {
        store_broker_key key;
        if (store_key_get(conn, user_id, key_id, &key) != STORE_OK)
            return TRADING_STREAM_NONE;
        if (!t->sw)
            t->sw = workers_start(t); /* before any stream can call on_update */
        e = tw_calloc(1, sizeof(*e));
        if (!e)
            return TRADING_STREAM_NONE;
        e->t = t;
        e->user_id = user_id;
        e->key_id = key_id;
        start_stream(t, conn, &key, e);
        pthread_mutex_lock(&t->str_mu);
        e->next = t->streams;
        t->streams = e;
        pthread_mutex_unlock(&t->str_mu);
    }
    e->needed_ms = now_ms;
    if (!e->s || !e->pass_gen)
        return TRADING_STREAM_NONE;
    if (e->pass_gen != e->polled_gen)
        return TRADING_STREAM_CATCH_UP;
    return e->sweeping ? TRADING_STREAM_SWEEP : TRADING_STREAM_UP;
}

void trading_streams_pass_begin(trading *t, int64_t now_ms)
{
    pthread_mutex_lock(&t->str_mu);
    for (struct trading_stream *e = t->streams; e; e = e->next) {
        uint64_t gen = 0;
        e->pass_gen = brk_alpaca_stream_up(e->s, &gen) ? gen : 0;
        e->sweeping = e->pass_gen && e->pass_gen == e->polled_gen && now_ms >= e->sweep_due_ms;
        if (e->sweeping)
            e->sweep_due_ms = now_ms + TRADING_STREAMED_QUIET_MS;
    }
    pthread_mutex_unlock(&t->str_mu);
}

void trading_streams_pass_end(trading *t, bool complete, int64_t now_ms)
{
    struct trading_stream *idle = NULL, **pp;
    pthread_mutex_lock(&t->str_mu);
    for (pp = &t->streams; *pp;) {
        struct trading_stream *e = *pp;
        if (complete && e->pass_gen && e->polled_gen != e->pass_gen) {
            e->polled_gen = e->pass_gen; /* every open order of the key was read this pass */
            e->sweep_due_ms = now_ms + TRADING_STREAMED_QUIET_MS;
        }
        if (now_ms - e->needed_ms > STREAM_IDLE_MS) {
            *pp = e->next;
            e->next = idle;
            idle = e;
        } else {
            pp = &e->next;
        }
    }
    pthread_mutex_unlock(&t->str_mu);
    while (idle) {
        struct trading_stream *e = idle;
        idle = e->next;
        brk_alpaca_stream_stop(e->s);
        free(e);
    }
}

void trading_streams_stop_all(trading *t)
{
    pthread_mutex_lock(&t->str_mu);
    struct trading_stream *e = t->streams;
    t->streams = NULL;
    pthread_mutex_unlock(&t->str_mu);
    while (e) {
        struct trading_stream *next = e->next;
        brk_alpaca_stream_stop(e->s);
        free(e);
        e = next;
    }
    workers_stop(t->sw); /* no stream can queue any more: apply what waits, then end */
    t->sw = NULL;
}

void trading_streams_count(trading *t, size_t *up, size_t *down)
{
    *up = *down = 0;
    pthread_mutex_lock(&t->str_mu);
    for (struct trading_stream *e = t->streams; e; e = e->next) {
        if (!e->alpaca)
            continue;
        if (brk_alpaca_stream_up(e->s, NULL))
            (*up)++;
        else
            (*down)++;
    }
    pthread_mutex_unlock(&t->str_mu);
}
