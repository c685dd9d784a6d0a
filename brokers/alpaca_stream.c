/*
 * brokers/alpaca_stream.c — Alpaca's trade_updates WebSocket (the contract is in broker.h),
 * over libwebsockets.
 *
 * Design:
 *  - One lws context and one service thread for every stream of the process (the hub), made
 *    by the first stream and destroyed when the last one stops. One context, not one per key:
 *    libwebsockets 4.1 keeps its OpenSSL ex-data indexes in globals that every context with
 *    TLS allocates anew, so with two contexts alive the first one's client SSL_CTX is never
 *    freed (it is looked up under the other index) and its handshakes can lose their wsi.
 *    The hub thread owns every connection and makes every lws call; another thread only reads
 *    a stream's up/generation under its mu, or sets stop and wakes the loop with
 *    lws_cancel_service (the one lws call documented for other threads).
 *  - A 200 ms lws timer (and every wake-up) sweeps the streams: a stream without a connection
 *    whose backoff has passed connects; a stopped one is closed, then released to its stop.
 *    A failure doubles the backoff up to its maximum; a stream that reached "listening" starts
 *    over from the first delay.
 *  - The protocol, one message in flight at a time: connected -> send auth; "authorization"
 *    with status "authorized" -> send listen; "listening" naming trade_updates -> up, one more
 *    generation; "trade_updates" -> on_update. A refused key closes the connection (it is
 *    retried at the maximum backoff: a key can be fixed at the broker).
 *  - Frames may be text or binary (Alpaca's paper stream sends binary) and fragmented; a
 *    message is collected up to STREAM_MSG_MAX bytes, a longer one is dropped with a warning.
 *  - The key and secret are copied once (the secret masked, see struct brk_alpaca_stream), put
 *    only into the auth message (wiped after it is written) and wiped on stop. Log lines are our
 * own text and lws's connection error string.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "brokers/alpaca_int.h"
#include "brokers/broker_int.h"

#define STREAM_MSG_MAX (1 << 20)
#define TICK_US (200 * LWS_US_PER_MS)
#define STREAM_PATH "/stream"
#define LOCAL_PROTOCOL "tw-alpaca-trade-updates"

struct brk_alpaca_stream {
    pthread_mutex_t mu;
    bool up;             /* under mu */
    uint64_t generation; /* under mu */
    bool stop;           /* under mu */

    brk_alpaca_stream *next; /* the hub's list (under hub.mu; unlinked by the hub thread) */
    bool released;           /* under hub.mu: the hub will not touch it again */

    /* Everything below belongs to the hub thread once the stream is on the list. */
    struct lws *wsi; /* NULL while not connected */
    bool killing;    /* stopped: its connection was told to close */
    int64_t next_try_ms;
    long backoff_first_ms, backoff_max_ms, backoff_ms;
    char host[256]; /* without brackets */
    char host_hdr[264];
    int port;
    bool tls;
    char *key_id;
    /* The secret for each (re)authentication, never held in the clear: secret XOR pad, two
     * allocations (a scan of the process's memory finds neither the secret nor both halves
     * as one); unmasked on the stack only while the auth message is built. */
    unsigned char *secret, *pad;
    size_t key_id_len, secret_len;
    unsigned char *out; /* LWS_PRE + out_len bytes to send, NULL when nothing is queued */
    size_t out_len;
    bool close_now; /* the last message asked for the connection to end */
    char *rx;
    size_t rx_len;
    bool rx_over;
    brk_stream_update_fn on_update;
    void *cb_ctx;
    brk_log_fn log;
    void *log_ctx;
};

static pthread_once_t lws_log_once = PTHREAD_ONCE_INIT;

/* The hub (see Design). life serialises making and destroying the context, so two never
 * exist at once; ctx and thread are written only under life while no hub thread runs. mu
 * guards the list, the count, quit and dead. */
static struct {
    pthread_mutex_t life, mu;
    pthread_cond_t released_cv;
    struct lws_context *ctx;
    pthread_t thread;
    lws_sorted_usec_list_t tick;
    brk_alpaca_stream *streams;
    size_t n;
    bool quit;
    bool dead; /* the service loop failed: stops release their streams themselves */
} hub = {.life = PTHREAD_MUTEX_INITIALIZER,
         .mu = PTHREAD_MUTEX_INITIALIZER,
         .released_cv = PTHREAD_COND_INITIALIZER};

static void lws_quiet(void)
{
    /* lws's own lines go to stderr in its format; ours say what matters (see went_down). */
    lws_set_log_level(0, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(brk_alpaca_stream *s)
{
    pthread_mutex_lock(&s->mu);
    bool st = s->stop;
    pthread_mutex_unlock(&s->mu);
    return st;
}

static void set_up(brk_alpaca_stream *s, bool up)
{
    pthread_mutex_lock(&s->mu);
    if (up && !s->up)
        s->generation++;
    s->up = up;
    pthread_mutex_unlock(&s->mu);
}

static void drop_out(brk_alpaca_stream *s)
{
    if (s->out) {
        OPENSSL_cleanse(s->out, LWS_PRE + s->out_len);
        free(s->out);
    }
    s->out = NULL;
    s->out_len = 0;
}

/* The connection ended (or never began): down, and the next attempt after the backoff. */
static void went_down(brk_alpaca_stream *s, const char *why, long backoff_ms)
{
    bool was_up;
    pthread_mutex_lock(&s->mu);
    was_up = s->up;
    pthread_mutex_unlock(&s->mu);
    set_up(s, false);
    s->wsi = NULL;
    drop_out(s);
    s->rx_len = 0;
    s->rx_over = false;
    s->close_now = false;
    s->next_try_ms = mono_ms() + backoff_ms;
    if (stopping(s)) {
        lws_cancel_service(hub.ctx); /* the sweep releases it now, not at the next tick */
        return;                      /* our own close on stop: nothing to report */
    }
    brk_logf(s->log, s->log_ctx, was_up ? BRK_LOG_WARN : BRK_LOG_INFO,
             "alpaca stream %s:%d: %s; polling covers it, reconnecting in %ld ms", s->host, s->port,
             why, backoff_ms);
    s->backoff_ms = s->backoff_ms * 2 > s->backoff_max_ms ? s->backoff_max_ms : s->backoff_ms * 2;
}

/* Queues one message (a JSON document; its text is wiped once written). */
static bool send_json(brk_alpaca_stream *s, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return false;
    size_t n = strlen(text);
    drop_out(s);
    s->out = malloc(LWS_PRE + n);
    if (s->out) {
        memcpy(s->out + LWS_PRE, text, n);
        s->out_len = n;
    }
    OPENSSL_cleanse(text, n);
    free(text);
    if (!s->out)
        return false;
    lws_callback_on_writable(s->wsi);
    return true;
}

static void on_trade_update(brk_alpaca_stream *s, json_t *data)
{
    const char *event = json_string_value(json_object_get(data, "event"));
    brk_order o;
    if (!event || !alp_parse_order(json_object_get(data, "order"), &o)) {
        brk_logf(s->log, s->log_ctx, BRK_LOG_WARN,
                 "alpaca stream: a trade update without a readable order; ignored (polling "
                 "reads the order)");
        return;
    }
    if (strcmp(event, "fill") == 0 || strcmp(event, "partial_fill") == 0) {
        int64_t ts = alp_parse_time(data, "timestamp");
        if (ts > 0)
            o.filled_ms = ts;
    }
    s->on_update(s->cb_ctx, event, &o);
}

static bool lists_trade_updates(json_t *data)
{
    json_t *streams = json_object_get(data, "streams");
    size_t i;
    json_t *v;
    json_array_foreach(streams, i, v)
    {
        const char *name = json_string_value(v);
        if (name && strcmp(name, "trade_updates") == 0)
            return true;
    }
    return false;
}

/* One whole message from the server. */
static void on_message(brk_alpaca_stream *s)
{
    json_t *m = json_loadb(s->rx, s->rx_len, 0, NULL);
    const char *stream = json_string_value(json_object_get(m, "stream"));
    json_t *data = json_object_get(m, "data");
    if (!stream || !json_is_object(data)) {
        json_decref(m);
        return; /* not a message of the documented shape: nothing to act on */
    }
    if (strcmp(stream, "authorization") == 0) {
        const char *st = json_string_value(json_object_get(data, "status"));
        if (st && strcmp(st, "authorized") == 0) {
            if (!send_json(s, json_pack("{s:s,s:{s:[s]}}", "action", "listen", "data", "streams",
                                        "trade_updates")))
                s->close_now = true;
        } else {
            brk_logf(s->log, s->log_ctx, BRK_LOG_WARN,
                     "alpaca stream %s:%d: the key was not authorised", s->host, s->port);
            s->backoff_ms = s->backoff_max_ms;
            s->close_now = true;
        }
    } else if (strcmp(stream, "listening") == 0) {
        if (lists_trade_updates(data)) {
            set_up(s, true);
            s->backoff_ms = s->backoff_first_ms;
            brk_logf(s->log, s->log_ctx, BRK_LOG_INFO, "alpaca stream %s:%d: listening", s->host,
                     s->port);
        } else {
            brk_logf(s->log, s->log_ctx, BRK_LOG_WARN,
                     "alpaca stream %s:%d: trade_updates not granted", s->host, s->port);
            s->close_now = true;
        }
    } else if (strcmp(stream, "trade_updates") == 0) {
        on_trade_update(s, data);
    }
    json_decref(m);
}

static bool send_auth(brk_alpaca_stream *s)
{
    /* json_pack copies the strings; send_json wipes the dumped text. The copies inside the
     * json_t are freed by jansson without wiping: built with json_stringn from our buffers so
     * at least no other copy exists. */
    char plain[256];
    for (size_t i = 0; i < s->secret_len; i++)
        plain[i] = (char)(s->secret[i] ^ s->pad[i]);
    json_t *doc = json_object();
    json_t *k = json_stringn(s->key_id, s->key_id_len);
    json_t *v = json_stringn(plain, s->secret_len);
    OPENSSL_cleanse(plain, sizeof(plain));
    if (!doc || !k || !v || json_object_set_new(doc, "action", json_string("auth")) != 0 ||
        json_object_set_new(doc, "key", k) != 0) {
        json_decref(doc);
        json_decref(v);
        return false;
    }
    if (json_object_set_new(doc, "secret", v) != 0) {
        json_decref(doc);
        return false;
    }
    return send_json(s, doc);
}

static void sweep(void);

static int on_lws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    (void)user;
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
        sweep(); /* a stream started or stopped */
        return 0;
    }
    brk_alpaca_stream *s = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    if (!s)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!send_auth(s))
            return -1;
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (s->out) {
            int n = lws_write(wsi, s->out + LWS_PRE, s->out_len, LWS_WRITE_TEXT);
            bool ok = n >= 0 && (size_t)n == s->out_len;
            drop_out(s);
            if (!ok)
                return -1;
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!s->rx_over && s->rx_len + len <= STREAM_MSG_MAX) {
            char *grown = realloc(s->rx, s->rx_len + len + 1);
            if (grown) {
                s->rx = grown;
                memcpy(s->rx + s->rx_len, in, len);
                s->rx_len += len;
            } else {
                s->rx_over = true;
            }
        } else {
            s->rx_over = true;
        }
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            if (s->rx_over)
                brk_logf(s->log, s->log_ctx, BRK_LOG_WARN,
                         "alpaca stream: a message over %d bytes; dropped (polling reads it)",
                         STREAM_MSG_MAX);
            else
                on_message(s);
            s->rx_len = 0;
            s->rx_over = false;
        }
        if (s->close_now)
            return -1;
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        char why[160];
        snprintf(why, sizeof(why), "cannot connect (%.*s)", in ? (int)(len < 100 ? len : 100) : 7,
                 in ? (const char *)in : "no text");
        why[strcspn(why, "\r\n")] = '\0';
        went_down(s, why, s->backoff_ms);
        break;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        went_down(s, "connection closed", s->backoff_ms);
        break;
    case LWS_CALLBACK_WSI_DESTROY: /* however it ended, the connection is gone */
        if (s->wsi == wsi) {
            s->wsi = NULL;
            if (stopping(s))
                lws_cancel_service(hub.ctx);
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {LOCAL_PROTOCOL, on_lws, 0, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Pings a connection silent for 30 s and closes it at 60 s (a half-open TCP connection would
 * otherwise look up forever). */
static const uint32_t retry_table[] = {500};
static const lws_retry_bo_t idle_policy = {
    .retry_ms_table = retry_table,
    .retry_ms_table_count = 1,
    .conceal_count = 0,
    .secs_since_valid_ping = 30,
    .secs_since_valid_hangup = 60,
    .jitter_percent = 0,
};

static void connect_now(brk_alpaca_stream *s)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = hub.ctx;
    ci.opaque_user_data = s;
    ci.address = s->host;
    ci.port = s->port;
    ci.ssl_connection = s->tls ? LCCSCF_USE_SSL : 0;
    ci.path = STREAM_PATH;
    ci.host = s->host_hdr;
    ci.origin = s->host_hdr;
    ci.local_protocol_name = LOCAL_PROTOCOL;
    ci.retry_and_idle_policy = &idle_policy;
    ci.pwsi = &s->wsi;
    s->next_try_ms = INT64_MAX; /* the outcome callbacks set the next attempt */
    if (!lws_client_connect_via_info(&ci) && s->next_try_ms == INT64_MAX)
        went_down(s, "cannot start a connection", s->backoff_ms);
}

/* Hub thread: connect what waits for its backoff, close what was stopped, release what is
 * closed. Streams are added at the head by other threads (under hub.mu), so the walk from the
 * head read under the lock stays valid; only this thread unlinks. */
static void sweep(void)
{
    pthread_mutex_lock(&hub.mu);
    brk_alpaca_stream **pp = &hub.streams, *s = hub.streams;
    pthread_mutex_unlock(&hub.mu);
    int64_t now = mono_ms();
    bool released = false;
    while (s) {
        brk_alpaca_stream *next = s->next;
        if (!stopping(s)) {
            if (!s->wsi && now >= s->next_try_ms)
                connect_now(s);
            pp = &s->next;
        } else if (s->wsi) {
            if (!s->killing) /* closes it on the next service pass; CLOSED clears s->wsi */
                lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
            s->killing = true;
            pp = &s->next;
        } else {
            pthread_mutex_lock(&hub.mu);
            if (*pp != s) /* streams were added at the head meanwhile: find the link again */
                for (pp = &hub.streams; *pp != s; pp = &(*pp)->next)
                    ;
            *pp = next;
            s->released = true;
            pthread_mutex_unlock(&hub.mu);
            released = true;
        }
        s = next;
    }
    if (released)
        pthread_cond_broadcast(&hub.released_cv);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    sweep();
    lws_sul_schedule(hub.ctx, 0, &hub.tick, on_tick, TICK_US);
}

static bool hub_quitting(void)
{
    pthread_mutex_lock(&hub.mu);
    bool q = hub.quit;
    pthread_mutex_unlock(&hub.mu);
    return q;
}

static void *hub_main(void *arg)
{
    (void)arg;
    lws_sul_schedule(hub.ctx, 0, &hub.tick, on_tick, 1);
    while (!hub_quitting())
        if (lws_service(hub.ctx, 0) < 0) {
            pthread_mutex_lock(&hub.mu);
            hub.dead = true;
            pthread_mutex_unlock(&hub.mu);
            pthread_cond_broadcast(&hub.released_cv);
            break;
        }
    lws_sul_cancel(&hub.tick);
    return NULL;
}

/* Under hub.life: the hub's context and thread, made when there is none. */
static bool hub_open(void)
{
    if (hub.ctx)
        return true;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    hub.ctx = lws_create_context(&info);
    if (!hub.ctx)
        return false;
    pthread_mutex_lock(&hub.mu);
    hub.quit = hub.dead = false;
    pthread_mutex_unlock(&hub.mu);
    if (pthread_create(&hub.thread, NULL, hub_main, NULL) != 0) {
        lws_context_destroy(hub.ctx);
        hub.ctx = NULL;
        return false;
    }
    return true;
}

/* host, port and scheme of a base URL that passed alp_base_url_ok. */
static bool split_base(brk_alpaca_stream *s, const char *base)
{
    s->tls = strncmp(base, "https://", 8) == 0;
    const char *a = base + (s->tls ? 8 : 7);
    size_t alen = strcspn(a, "/");
    const char *hs = a, *he;
    const char *port = NULL;
    if (a[0] == '[') {
        hs = a + 1;
        he = memchr(a, ']', alen);
        if (!he)
            return false;
        if (he + 1 < a + alen && he[1] == ':')
            port = he + 2;
    } else {
        he = memchr(a, ':', alen);
        if (he)
            port = he + 1;
        else
            he = a + alen;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(s->host))
        return false;
    memcpy(s->host, hs, hl);
    s->host[hl] = '\0';
    s->port = s->tls ? 443 : 80;
    if (port) {
        char *end;
        long p = strtol(port, &end, 10);
        if (end == port || p <= 0 || p > 65535)
            return false;
        s->port = (int)p;
    }
    snprintf(s->host_hdr, sizeof(s->host_hdr), "%.*s", (int)alen, a);
    return true;
}

static void stream_free(brk_alpaca_stream *s)
{
    if (!s)
        return;
    drop_out(s);
    if (s->key_id) {
        OPENSSL_cleanse(s->key_id, s->key_id_len);
        free(s->key_id);
    }
    if (s->secret) {
        OPENSSL_cleanse(s->secret, s->secret_len);
        free(s->secret);
    }
    if (s->pad) {
        OPENSSL_cleanse(s->pad, s->secret_len);
        free(s->pad);
    }
    free(s->rx);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

brk_rc brk_alpaca_stream_start(const brk_alpaca_stream_config *cfg, const char *key_id,
                               size_t key_id_len, const unsigned char *secret, size_t secret_len,
                               brk_alpaca_stream **out, brk_err *err)
{
    brk_err_clear(err);
    if (!out || !cfg || !cfg->on_update)
        return brk_err_set(err, BRK_INVALID, 0, "alpaca stream: missing callback or output");
    *out = NULL;
    if (!key_id || !secret || key_id_len == 0 || key_id_len > 256 || secret_len == 0 ||
        secret_len > 256)
        return brk_err_set(err, BRK_INVALID, 0, "alpaca stream: key id and secret 1..256 bytes");
    const char *base =
        cfg->base_url ? cfg->base_url : (cfg->live ? BRK_ALPACA_LIVE_URL : BRK_ALPACA_PAPER_URL);
    char mapped[300];
    if (cfg->stream_url) { /* ws(s):// under the same rules as http(s):// */
        bool tls = strncmp(cfg->stream_url, "wss://", 6) == 0;
        if (!tls && strncmp(cfg->stream_url, "ws://", 5) != 0)
            return brk_err_set(err, BRK_INVALID, 0, "alpaca stream: stream_url must be ws(s)://");
        snprintf(mapped, sizeof(mapped), "%s%s", tls ? "https://" : "http://",
                 cfg->stream_url + (tls ? 6 : 5));
        base = mapped;
    }
    if (!alp_base_url_ok(base) || cfg->backoff_ms < 0 || cfg->backoff_max_ms < 0)
        return brk_err_set(err, BRK_INVALID, 0, "alpaca stream: bad base URL or backoff");
    pthread_once(&lws_log_once, lws_quiet);

    brk_rc rc = BRK_INTERNAL;
    brk_alpaca_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    if (!split_base(s, base)) {
        rc = brk_err_set(err, BRK_INVALID, 0, "alpaca stream: bad base URL");
        goto fail;
    }
    s->backoff_first_ms = cfg->backoff_ms ? cfg->backoff_ms : 500;
    s->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 10000;
    if (s->backoff_max_ms < s->backoff_first_ms)
        s->backoff_max_ms = s->backoff_first_ms;
    s->backoff_ms = s->backoff_first_ms;
    s->on_update = cfg->on_update;
    s->cb_ctx = cfg->ctx;
    s->log = cfg->log;
    s->log_ctx = cfg->log_ctx;
    s->key_id = malloc(key_id_len);
    s->secret = malloc(secret_len);
    s->pad = malloc(secret_len);
    if (!s->key_id || !s->secret || !s->pad) {
        rc = brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
        goto fail;
    }
    if (RAND_bytes(s->pad, (int)secret_len) != 1) {
        rc = brk_err_set(err, BRK_INTERNAL, 0, "alpaca stream: no randomness for the secret's pad");
        goto fail;
    }
    memcpy(s->key_id, key_id, key_id_len);
    for (size_t i = 0; i < secret_len; i++)
        s->secret[i] = secret[i] ^ s->pad[i];
    s->key_id_len = key_id_len;
    s->secret_len = secret_len;

    pthread_mutex_lock(&hub.life);
    if (!hub_open()) {
        pthread_mutex_unlock(&hub.life);
        rc = brk_err_set(err, BRK_INTERNAL, 0, "alpaca stream: lws context or thread");
        goto fail;
    }
    pthread_mutex_lock(&hub.mu);
    s->next = hub.streams;
    hub.streams = s;
    hub.n++;
    pthread_mutex_unlock(&hub.mu);
    lws_cancel_service(hub.ctx); /* the sweep connects it */
    pthread_mutex_unlock(&hub.life);
    *out = s;
    return BRK_OK;
fail:
    stream_free(s);
    return rc;
}

bool brk_alpaca_stream_up(brk_alpaca_stream *s, uint64_t *generation)
{
    if (!s) {
        if (generation)
            *generation = 0;
        return false;
    }
    pthread_mutex_lock(&s->mu);
    bool up = s->up;
    if (generation)
        *generation = s->generation;
    pthread_mutex_unlock(&s->mu);
    return up;
}

void brk_alpaca_stream_stop(brk_alpaca_stream *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&hub.life);
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_mutex_unlock(&s->mu);
    lws_cancel_service(hub.ctx);
    pthread_mutex_lock(&hub.mu);
    while (!s->released && !hub.dead)
        pthread_cond_wait(&hub.released_cv, &hub.mu);
    if (!s->released) { /* no service loop to release it: unlink it here */
        brk_alpaca_stream **pp = &hub.streams;
        while (*pp && *pp != s)
            pp = &(*pp)->next;
        if (*pp)
            *pp = s->next;
    }
    bool last = --hub.n == 0;
    if (last)
        hub.quit = true;
    pthread_mutex_unlock(&hub.mu);
    if (last) { /* the last stream: the hub goes too, before another can be made */
        lws_cancel_service(hub.ctx);
        pthread_join(hub.thread, NULL);
        lws_context_destroy(hub.ctx);
        hub.ctx = NULL;
    }
    pthread_mutex_unlock(&hub.life);
    stream_free(s);
}
