/*
 * tests/brokers/alpaca_stub.c — see alpaca_stub.h. Thread per connection so a stalled answer
 * (timeout tests) does not hold up other requests; one mutex over all stub state. Response
 * shapes follow Alpaca's documented order/account/position objects (decimals as strings).
 */
#include "alpaca_stub.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_KEYS 8
#define MAX_FAULTS 16
#define MAX_REQS 512
#define MAX_ORDERS 256
#define MAX_TRADES 16
#define MAX_WS 8

typedef struct fault {
    char method[16];
    char prefix[128];
    int status;
    char body[1024];
    int delay_ms;
    int times;
} fault;

typedef struct order {
    char key[300];
    json_t *obj;
} order;

struct stub {
    struct MHD_Daemon *d;
    unsigned port;
    pthread_mutex_t mu;
    char keys[MAX_KEYS][2][300];
    int nkeys;
    fault faults[MAX_FAULTS];
    stub_req *reqs;
    size_t nreqs;
    order orders[MAX_ORDERS];
    size_t norders;
    char trades[MAX_TRADES][3][64]; /* symbol, raw JSON of "p", "t" ("" = now) */
    int ntrades;
    char *positions; /* NULL = POSITIONS */
    int rl_limit, rl_window_ms, rl_count, rl_refused;
    int64_t rl_start_ms; /* Unix ms */
    /* trade_updates WebSocket (GET /stream): one thread per connection. */
    int stream_mode; /* 0 off (404), 1 on, 2 refusing (503) */
    struct ws {
        bool used, listening, done;
        int sock;
        pthread_t thread;
        char key[300];
        stub *s;
    } ws[MAX_WS];
    int ws_listen; /* the stream's own loopback listener (-1 none) */
    unsigned ws_port;
    pthread_t ws_accept;
    int ws_auths;
};

typedef struct upload {
    char *buf;
    size_t len;
} upload;

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

typedef struct qbuild {
    char *q;
    size_t cap;
} qbuild;

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
    (void)kind;
    qbuild *b = cls;
    size_t n = strlen(b->q);
    snprintf(b->q + n, b->cap - n, "%s%s=%s", n ? "&" : "", k, v ? v : "");
    return MHD_YES;
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *body)
{
    const char *b = body ? body : "";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(b), (void *)(uintptr_t)b, MHD_RESPMEM_MUST_COPY);
    if (body)
        MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    enum MHD_Result ret = reply(c, status, s);
    free(s);
    return ret;
}

static const char ACCOUNT[] =
    "{\"id\":\"6b0d5b2c-0000-4000-8000-000000000001\",\"account_number\":\"PA3ABCDEF\","
    "\"status\":\"ACTIVE\",\"currency\":\"USD\",\"cash\":\"25431.07\",\"portfolio_value\":"
    "\"31002.55\",\"pattern_day_trader\":false,\"trading_blocked\":false,\"transfers_blocked\":"
    "false,\"account_blocked\":false,\"trade_suspended_by_user\":false,\"shorting_enabled\":true,"
    "\"multiplier\":\"2\",\"equity\":\"31002.55\",\"last_equity\":\"30500.1\",\"long_market_"
    "value\":"
    "\"5571.48\",\"short_market_value\":\"0\",\"buying_power\":\"62005.1\",\"daytrade_count\":2,"
    "\"created_at\":\"2024-01-02T15:04:05.123456Z\"}";

static const char POSITIONS[] =
    "[{\"asset_id\":\"b0b6dd9d-8b9b-48a9-ba46-b9d54906e415\",\"symbol\":\"AAPL\",\"exchange\":"
    "\"NASDAQ\",\"asset_class\":\"us_equity\",\"qty\":\"10\",\"avg_entry_price\":\"150.1234567\","
    "\"side\":\"long\",\"market_value\":\"1550.5\",\"cost_basis\":\"1501.23\",\"unrealized_pl\":"
    "\"49.27\",\"current_price\":\"155.05\",\"qty_available\":\"10\"},"
    "{\"asset_id\":\"x\",\"symbol\":\"TSLA\",\"qty\":\"-2.5\",\"avg_entry_price\":\"200\","
    "\"side\":\"short\",\"market_value\":\"-490\",\"cost_basis\":\"-500\",\"unrealized_pl\":\"10\","
    "\"current_price\":\"196\"}]";

static json_t *new_order(stub *s, json_t *req)
{
    char id[64];
    snprintf(id, sizeof id, "61e69015-8549-4bfd-b9c3-%012zu", s->norders + 1);
    json_t *lp = json_object_get(req, "limit_price");
    json_t *o = json_pack(
        "{s:s, s:O, s:s, s:s, s:s, s:n, s:O, s:O, s:s, s:s, s:O, s:O, s:O, s:O, s:s}", "id", id,
        "client_order_id", json_object_get(req, "client_order_id"), "created_at",
        "2026-01-02T14:30:00.123456Z", "updated_at", "2026-01-02T14:30:00.5-05:00", "submitted_at",
        "2026-01-02T14:30:00.123456Z", "filled_at", "symbol", json_object_get(req, "symbol"), "qty",
        json_object_get(req, "qty"), "filled_qty", "0", "order_class", "", "type",
        json_object_get(req, "type"), "order_type", json_object_get(req, "type"), "side",
        json_object_get(req, "side"), "time_in_force", json_object_get(req, "time_in_force"),
        "status", "accepted");
    if (o) {
        json_object_set(o, "limit_price", lp ? lp : json_null());
        json_object_set_new(o, "filled_avg_price", json_null());
    }
    return o;
}

/* Under mu. Checks the documented body: required strings, optional limit_price string. */
static const char *check_order_body(json_t *j)
{
    if (!json_is_object(j))
        return "body is not a JSON object";
    static const char *const req[] = {"symbol", "qty",           "side",
                                      "type",   "time_in_force", "client_order_id"};
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
        if (!json_is_string(json_object_get(j, req[i])))
            return "missing or non-string field";
    json_t *lp = json_object_get(j, "limit_price");
    const char *type = json_string_value(json_object_get(j, "type"));
    if (strcmp(type, "limit") == 0 && !json_is_string(lp))
        return "limit_price required";
    return NULL;
}

/* Under mu: the trade set for symbol (price JSON, RFC 3339 time), false when none. */
static bool trade_of(stub *s, const char *sym, const char **px, char *t, size_t tcap)
{
    for (int i = 0; i < s->ntrades; i++) {
        if (strcmp(s->trades[i][0], sym) != 0)
            continue;
        *px = s->trades[i][1];
        if (s->trades[i][2][0]) {
            copy(t, tcap, s->trades[i][2]);
        } else {
            time_t now = time(NULL);
            struct tm tm;
            gmtime_r(&now, &tm);
            strftime(t, tcap, "%Y-%m-%dT%H:%M:%S.123456789Z", &tm);
        }
        return true;
    }
    return false;
}

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Under mu: true when this request is over the limit (then answered 429 with Alpaca's
 * X-RateLimit-* headers; the reset is the window's end in Unix seconds, rounded up). */
static bool over_limit(stub *s, struct MHD_Connection *c, enum MHD_Result *ret)
{
    if (s->rl_limit <= 0)
        return false;
    int64_t now = unix_ms();
    if (now >= s->rl_start_ms + s->rl_window_ms) {
        s->rl_start_ms = now;
        s->rl_count = 0;
    }
    if (s->rl_count < s->rl_limit) {
        s->rl_count++;
        return false;
    }
    s->rl_refused++;
    static const char body[] = "{\"code\":42910000,\"message\":\"rate limit exceeded\"}";
    char v[32];
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body,
                                                             MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    snprintf(v, sizeof v, "%d", s->rl_limit);
    MHD_add_response_header(r, "X-RateLimit-Limit", v);
    MHD_add_response_header(r, "X-RateLimit-Remaining", "0");
    snprintf(v, sizeof v, "%lld", (long long)((s->rl_start_ms + s->rl_window_ms + 999) / 1000));
    MHD_add_response_header(r, "X-RateLimit-Reset", v);
    *ret = MHD_queue_response(c, 429, r);
    MHD_destroy_response(r);
    return true;
}

/* Alpaca's terminal order states: a DELETE of such an order answers 422. */
static bool terminal(const char *st)
{
    static const char *const t[] = {"filled", "canceled", "expired", "rejected", "replaced"};
    for (size_t i = 0; st && i < sizeof t / sizeof t[0]; i++)
        if (strcmp(st, t[i]) == 0)
            return true;
    return false;
}

/* ---- trade_updates WebSocket ---------------------------------------------------------------- */

/* One unmasked server frame (FIN set). 0 on success. */
static int ws_send_frame(int fd, int opcode, bool fin, const char *p, size_t n)
{
    unsigned char h[10];
    size_t hl = 2;
    h[0] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    if (n < 126) {
        h[1] = (unsigned char)n;
    } else if (n < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    if (send(fd, h, hl, MSG_NOSIGNAL) != (ssize_t)hl)
        return -1;
    return n == 0 || send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static bool read_full(struct ws *w, unsigned char *p, size_t n)
{
    while (n) {
        ssize_t r = recv(w->sock, p, n, 0);
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* One client frame (masked), payload NUL-terminated in *out (free). false on close/error. */
static bool ws_read_frame(struct ws *w, int *opcode, char **out, size_t *len)
{
    unsigned char h[2], ext[8], mask[4] = {0};
    if (!read_full(w, h, 2))
        return false;
    *opcode = h[0] & 0x0f;
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        if (!read_full(w, ext, 2))
            return false;
        n = ((uint64_t)ext[0] << 8) | ext[1];
    } else if (n == 127) {
        if (!read_full(w, ext, 8))
            return false;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = (n << 8) | ext[i];
    }
    if (n > (1u << 20) || ((h[1] & 0x80) && !read_full(w, mask, 4)))
        return false;
    char *p = malloc((size_t)n + 1);
    if (!p || !read_full(w, (unsigned char *)p, (size_t)n)) {
        free(p);
        return false;
    }
    for (uint64_t i = 0; i < n; i++)
        p[i] ^= (char)mask[i % 4];
    p[n] = '\0';
    *out = p;
    *len = (size_t)n;
    return true;
}

static void ws_reply(struct ws *w, const char *stream, json_t *data)
{
    json_t *m = json_pack("{s:s,s:o}", "stream", stream, "data", data);
    char *t = m ? json_dumps(m, JSON_COMPACT) : NULL;
    if (t)
        (void)ws_send_frame(w->sock, 0x2, true, t, strlen(t));
    free(t);
    json_decref(m);
}

static void *ws_main(void *arg)
{
    struct ws *w = arg;
    stub *s = w->s;
    int op;
    char *msg;
    size_t len;
    while (ws_read_frame(w, &op, &msg, &len)) {
        if (op == 0x8) {
            free(msg);
            break;
        }
        if (op == 0x9)
            (void)ws_send_frame(w->sock, 0xA, true, msg, len);
        json_t *j = op == 0x1 || op == 0x2 ? json_loads(msg, 0, NULL) : NULL;
        free(msg);
        const char *action = json_string_value(json_object_get(j, "action"));
        if (action && strcmp(action, "auth") == 0) {
            const char *k = json_string_value(json_object_get(j, "key"));
            const char *sec = json_string_value(json_object_get(j, "secret"));
            bool ok = false;
            pthread_mutex_lock(&s->mu);
            s->ws_auths++;
            for (int i = 0; k && sec && i < s->nkeys; i++)
                ok = ok || (strcmp(s->keys[i][0], k) == 0 && strcmp(s->keys[i][1], sec) == 0);
            if (ok)
                copy(w->key, sizeof w->key, k);
            pthread_mutex_unlock(&s->mu);
            ws_reply(w, "authorization",
                     json_pack("{s:s,s:s}", "action", "authenticate", "status",
                               ok ? "authorized" : "unauthorized"));
        } else if (action && strcmp(action, "listen") == 0 && w->key[0]) {
            ws_reply(w, "listening", json_pack("{s:[s]}", "streams", "trade_updates"));
            pthread_mutex_lock(&s->mu);
            w->listening = true;
            pthread_mutex_unlock(&s->mu);
        }
        json_decref(j);
    }
    pthread_mutex_lock(&s->mu);
    w->listening = false;
    w->done = true;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Case-insensitive strstr (header names). */
static const char *find_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return hay;
    return NULL;
}

/* The HTTP upgrade request, read by hand up to its blank line; answered 101 (then the
 * connection is served as a WebSocket), or 404/503/400 and closed. */
static bool ws_handshake(stub *s, int fd)
{
    char req[4096];
    size_t n = 0;
    while (n + 1 < sizeof req) {
        ssize_t r = recv(fd, req + n, 1, 0); /* byte by byte: nothing past the request is read */
        if (r <= 0)
            return false;
        n++;
        req[n] = '\0';
        if (n >= 4 && memcmp(req + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    pthread_mutex_lock(&s->mu);
    int mode = s->stream_mode;
    pthread_mutex_unlock(&s->mu);
    char key[80] = "";
    const char *k = find_ci(req, "\r\nSec-WebSocket-Key:");
    if (k) {
        k += strlen("\r\nSec-WebSocket-Key:");
        while (*k == ' ')
            k++;
        size_t kl = strcspn(k, "\r\n");
        if (kl < sizeof key)
            snprintf(key, sizeof key, "%.*s", (int)kl, k);
    }
    const char *status = NULL;
    if (strncmp(req, "GET /stream ", 12) != 0 || mode == 0)
        status = "404 Not Found";
    else if (mode == 2)
        status = "503 Service Unavailable";
    else if (!key[0] || !find_ci(req, "\r\nUpgrade: websocket"))
        status = "400 Bad Request";
    char out[512];
    if (status) {
        int len = snprintf(out, sizeof out,
                           "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: "
                           "2\r\nConnection: close\r\n\r\n{}",
                           status);
        (void)send(fd, out, (size_t)len, MSG_NOSIGNAL);
        return false;
    }
    char buf[160];
    unsigned char dig[SHA_DIGEST_LENGTH], acc[64];
    snprintf(buf, sizeof buf, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    SHA1((const unsigned char *)buf, strlen(buf), dig);
    EVP_EncodeBlock(acc, dig, SHA_DIGEST_LENGTH);
    int len = snprintf(out, sizeof out,
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                       "Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                       (const char *)acc);
    return send(fd, out, (size_t)len, MSG_NOSIGNAL) == len;
}

static void *ws_conn_main(void *arg)
{
    struct ws *w = arg;
    if (ws_handshake(w->s, w->sock))
        return ws_main(w);
    pthread_mutex_lock(&w->s->mu);
    w->done = true;
    pthread_mutex_unlock(&w->s->mu);
    return NULL;
}

/* Joins and closes the connections whose thread ended (all of them when all is set, after
 * shutting their sockets down). Not under mu. */
static void ws_reap(stub *s, bool all)
{
    for (int i = 0; i < MAX_WS; i++) {
        struct ws *w = &s->ws[i];
        pthread_mutex_lock(&s->mu);
        bool used = w->used, done = w->done;
        pthread_mutex_unlock(&s->mu);
        if (!used || (!done && !all))
            continue;
        if (!done)
            shutdown(w->sock, SHUT_RDWR);
        pthread_join(w->thread, NULL);
        close(w->sock);
        pthread_mutex_lock(&s->mu);
        w->used = false;
        pthread_mutex_unlock(&s->mu);
    }
}

static void *ws_accept_main(void *arg)
{
    stub *s = arg;
    for (;;) {
        int fd = accept(s->ws_listen, NULL, NULL);
        if (fd < 0)
            return NULL; /* the listener was shut down: stub_stop */
        ws_reap(s, false);
        struct ws *w = NULL;
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < MAX_WS && !w; i++)
            if (!s->ws[i].used)
                w = &s->ws[i];
        if (w) {
            memset(w, 0, sizeof *w);
            w->used = true;
            w->sock = fd;
            w->s = s;
            if (pthread_create(&w->thread, NULL, ws_conn_main, w) != 0)
                w->used = false;
        }
        bool taken = w && w->used;
        pthread_mutex_unlock(&s->mu);
        if (!taken)
            close(fd);
    }
}

static int ws_listen_start(stub *s)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    s->ws_listen = socket(AF_INET, SOCK_STREAM, 0);
    if (s->ws_listen < 0 || bind(s->ws_listen, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(s->ws_listen, 16) != 0 ||
        getsockname(s->ws_listen, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    s->ws_port = ntohs(sa.sin_port);
    if (pthread_create(&s->ws_accept, NULL, ws_accept_main, s) != 0)
        return -1;
    return 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    stub *s = cls;
    upload *u = *con_cls;
    if (!u) {
        u = calloc(1, sizeof *u);
        *con_cls = u;
        return MHD_YES;
    }
    if (*upload_data_size) {
        char *nb = realloc(u->buf, u->len + *upload_data_size + 1);
        if (!nb)
            return MHD_NO;
        u->buf = nb;
        memcpy(u->buf + u->len, upload_data, *upload_data_size);
        u->len += *upload_data_size;
        u->buf[u->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }

    stub_req rq;
    memset(&rq, 0, sizeof rq);
    copy(rq.method, sizeof rq.method, method);
    copy(rq.path, sizeof rq.path, url);
    qbuild qb = {rq.query, sizeof rq.query};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &qb);
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "APCA-API-KEY-ID");
    const char *sec = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "APCA-API-SECRET-KEY");
    copy(rq.key_id, sizeof rq.key_id, key);
    copy(rq.secret, sizeof rq.secret, sec);
    copy(rq.content_type, sizeof rq.content_type,
         MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"));
    copy(rq.body, sizeof rq.body, u->buf);

    pthread_mutex_lock(&s->mu);
    if (s->nreqs < MAX_REQS)
        s->reqs[s->nreqs++] = rq;
    fault f = {0};
    for (int i = 0; i < MAX_FAULTS; i++) {
        fault *x = &s->faults[i];
        if (x->times > 0 && strcmp(x->method, method) == 0 &&
            strncmp(url, x->prefix, strlen(x->prefix)) == 0) {
            x->times--;
            f = *x;
            f.times = 1;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (f.times) {
        if (f.delay_ms > 0) {
            struct timespec ts = {f.delay_ms / 1000, (f.delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (f.status)
            return reply(c, f.status, f.body[0] ? f.body : NULL);
    }

    enum MHD_Result ret;
    pthread_mutex_lock(&s->mu);
    bool authed = false;
    for (int i = 0; i < s->nkeys; i++)
        if (key && sec && strcmp(s->keys[i][0], key) == 0 && strcmp(s->keys[i][1], sec) == 0)
            authed = true;
    if (!authed) {
        ret = reply(c, 401, "{\"code\":40110000,\"message\":\"request is not authorized\"}");
    } else if (over_limit(s, c, &ret)) {
        /* answered 429 */
    } else if (strcmp(method, "POST") == 0 && strcmp(url, "/v2/orders") == 0) {
        json_t *j = u->buf ? json_loads(u->buf, 0, NULL) : NULL;
        const char *why = check_order_body(j);
        const char *coid = j ? json_string_value(json_object_get(j, "client_order_id")) : NULL;
        for (size_t i = 0; !why && i < s->norders; i++)
            if (strcmp(s->orders[i].key, key) == 0 &&
                strcmp(json_string_value(json_object_get(s->orders[i].obj, "client_order_id")),
                       coid) == 0)
                why = "client_order_id must be unique";
        if (why) {
            json_t *e = json_pack("{s:i, s:s}", "code", 40010001, "message", why);
            ret = reply_json(c, 422, e);
            json_decref(e);
        } else {
            json_t *o = new_order(s, j);
            copy(s->orders[s->norders].key, sizeof s->orders[0].key, key);
            s->orders[s->norders++].obj = o;
            ret = reply_json(c, 200, o);
        }
        json_decref(j);
    } else if (strcmp(method, "GET") == 0 && strcmp(url, "/v2/orders") == 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < s->norders; i++)
            if (strcmp(s->orders[i].key, key) == 0 &&
                strcmp(json_string_value(json_object_get(s->orders[i].obj, "status")),
                       "canceled") != 0)
                json_array_append(a, s->orders[i].obj);
        ret = reply_json(c, 200, a);
        json_decref(a);
    } else if (strcmp(method, "GET") == 0 && strcmp(url, "/v2/orders:by_client_order_id") == 0) {
        const char *coid = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "client_order_id");
        json_t *hit = NULL;
        for (size_t i = 0; coid && i < s->norders; i++)
            if (strcmp(s->orders[i].key, key) == 0 &&
                strcmp(json_string_value(json_object_get(s->orders[i].obj, "client_order_id")),
                       coid) == 0)
                hit = s->orders[i].obj;
        ret = hit ? reply_json(c, 200, hit)
                  : reply(c, 404, "{\"code\":40410000,\"message\":\"order not found\"}");
    } else if (strcmp(method, "GET") == 0 && strncmp(url, "/v2/orders/", 11) == 0) {
        json_t *hit = NULL;
        for (size_t i = 0; i < s->norders; i++)
            if (strcmp(s->orders[i].key, key) == 0 &&
                strcmp(json_string_value(json_object_get(s->orders[i].obj, "id")), url + 11) == 0)
                hit = s->orders[i].obj;
        ret = hit ? reply_json(c, 200, hit)
                  : reply(c, 404, "{\"code\":40410000,\"message\":\"order not found\"}");
    } else if (strcmp(method, "DELETE") == 0 && strncmp(url, "/v2/orders/", 11) == 0) {
        json_t *hit = NULL;
        for (size_t i = 0; i < s->norders; i++)
            if (strcmp(s->orders[i].key, key) == 0 &&
                strcmp(json_string_value(json_object_get(s->orders[i].obj, "id")), url + 11) == 0)
                hit = s->orders[i].obj;
        if (!hit) {
            ret = reply(c, 404, "{\"code\":40410000,\"message\":\"order not found\"}");
        } else if (terminal(json_string_value(json_object_get(hit, "status")))) {
            ret = reply(c, 422, "{\"code\":42210000,\"message\":\"order is not cancelable\"}");
        } else {
            json_object_set_new(hit, "status", json_string("canceled"));
            ret = reply(c, 204, NULL);
        }
    } else if (strcmp(method, "GET") == 0 && strcmp(url, "/v2/account") == 0) {
        ret = reply(c, 200, ACCOUNT);
    } else if (strcmp(method, "GET") == 0 && strcmp(url, "/v2/positions") == 0) {
        ret = reply(c, 200, s->positions ? s->positions : POSITIONS);
    } else if (strcmp(method, "GET") == 0 && strcmp(url, "/v1beta3/crypto/us/latest/trades") == 0) {
        /* {"trades":{"BTC/USD":{...}}}; a pair without a trade is simply absent. */
        const char *syms = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "symbols");
        const char *px = NULL;
        char t[64], body[512];
        if (syms && trade_of(s, syms, &px, t, sizeof t))
            snprintf(body, sizeof body,
                     "{\"trades\":{\"%s\":{\"c\":\"B\",\"i\":7,\"p\":%s,\"s\":0.0123,"
                     "\"t\":\"%s\",\"tks\":\"B\"}}}",
                     syms, px, t);
        else
            snprintf(body, sizeof body, "{\"trades\":{}}");
        ret = reply(c, 200, body);
    } else if (strcmp(method, "GET") == 0 && strncmp(url, "/v2/stocks/", 11) == 0 &&
               strlen(url) > 11 + 14 && strcmp(url + strlen(url) - 14, "/trades/latest") == 0) {
        /* The path arrives percent-decoded: "BTC%2FUSD" is "BTC/USD" here. */
        char sym[64];
        snprintf(sym, sizeof sym, "%.*s", (int)(strlen(url) - 11 - 14), url + 11);
        const char *px = NULL;
        char t[64];
        if (!trade_of(s, sym, &px, t, sizeof t)) {
            ret = reply(c, 404, "{\"code\":40410000,\"message\":\"symbol not found\"}");
        } else {
            char body[512];
            snprintf(body, sizeof body,
                     "{\"symbol\":\"%s\",\"trade\":{\"t\":\"%s\","
                     "\"x\":\"V\",\"p\":%s,\"s\":100,\"c\":[\"@\"],\"i\":52983525029461,"
                     "\"z\":\"C\"}}",
                     sym, t, px);
            ret = reply(c, 200, body);
        }
    } else {
        ret = reply(c, 404, "{\"code\":40410000,\"message\":\"endpoint not found\"}");
    }
    pthread_mutex_unlock(&s->mu);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    upload *u = *con_cls;
    if (u) {
        free(u->buf);
        free(u);
        *con_cls = NULL;
    }
}

stub *stub_start(void)
{
    stub *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->reqs = calloc(MAX_REQS, sizeof *s->reqs);
    pthread_mutex_init(&s->mu, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->ws_listen = -1;
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                            NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
    if (!s->d || !s->reqs || ws_listen_start(s) != 0) {
        stub_stop(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    return s;
}

void stub_stop(stub *s)
{
    if (!s)
        return;
    if (s->ws_port) {
        shutdown(s->ws_listen, SHUT_RDWR);
        pthread_join(s->ws_accept, NULL);
        ws_reap(s, true);
    }
    if (s->ws_listen >= 0)
        close(s->ws_listen);
    if (s->d)
        MHD_stop_daemon(s->d);
    for (size_t i = 0; i < s->norders; i++)
        json_decref(s->orders[i].obj);
    free(s->positions);
    free(s->reqs);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

unsigned stub_port(const stub *s)
{
    return s->port;
}

void stub_add_key(stub *s, const char *key_id, const char *secret)
{
    pthread_mutex_lock(&s->mu);
    if (s->nkeys < MAX_KEYS) {
        copy(s->keys[s->nkeys][0], sizeof s->keys[0][0], key_id);
        copy(s->keys[s->nkeys][1], sizeof s->keys[0][1], secret);
        s->nkeys++;
    }
    pthread_mutex_unlock(&s->mu);
}

void stub_set_trade_at(stub *s, const char *symbol, const char *price_json, const char *time)
{
    pthread_mutex_lock(&s->mu);
    int i = 0;
    while (i < s->ntrades && strcmp(s->trades[i][0], symbol) != 0)
        i++;
    if (i < MAX_TRADES) {
        copy(s->trades[i][0], sizeof s->trades[i][0], symbol);
        copy(s->trades[i][1], sizeof s->trades[i][1], price_json);
        copy(s->trades[i][2], sizeof s->trades[i][2], time);
        if (i == s->ntrades)
            s->ntrades++;
    }
    pthread_mutex_unlock(&s->mu);
}

void stub_set_trade(stub *s, const char *symbol, const char *price_json)
{
    stub_set_trade_at(s, symbol, price_json, NULL);
}

void stub_rate_limit(stub *s, int limit, int window_ms)
{
    pthread_mutex_lock(&s->mu);
    s->rl_limit = limit;
    s->rl_window_ms = window_ms > 0 ? window_ms : 60000;
    s->rl_count = 0;
    s->rl_start_ms = unix_ms();
    pthread_mutex_unlock(&s->mu);
}

int stub_rate_limited(stub *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->rl_refused;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void stub_set_positions(stub *s, const char *json)
{
    pthread_mutex_lock(&s->mu);
    free(s->positions);
    s->positions = json ? strdup(json) : NULL;
    pthread_mutex_unlock(&s->mu);
}

int stub_order_patch(stub *s, const char *broker_order_id, const char *fields_json)
{
    int rc = -1;
    json_t *f = json_loads(fields_json, 0, NULL);
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; f && i < s->norders; i++)
        if (strcmp(json_string_value(json_object_get(s->orders[i].obj, "id")), broker_order_id) ==
            0)
            rc = json_object_update(s->orders[i].obj, f);
    pthread_mutex_unlock(&s->mu);
    json_decref(f);
    return rc;
}

int stub_order_add(stub *s, const char *key_id, const char *order_json)
{
    int rc = -1;
    json_t *o = json_loads(order_json, 0, NULL);
    pthread_mutex_lock(&s->mu);
    if (json_is_string(json_object_get(o, "id")) &&
        json_is_string(json_object_get(o, "client_order_id")) && s->norders < MAX_ORDERS) {
        copy(s->orders[s->norders].key, sizeof s->orders[0].key, key_id);
        s->orders[s->norders++].obj = o;
        o = NULL;
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    json_decref(o);
    return rc;
}

void stub_fault(stub *s, const char *method, const char *path_prefix, int status, const char *body,
                int delay_ms, int times)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < MAX_FAULTS; i++) {
        fault *f = &s->faults[i];
        if (f->times == 0) {
            copy(f->method, sizeof f->method, method);
            copy(f->prefix, sizeof f->prefix, path_prefix);
            copy(f->body, sizeof f->body, body);
            f->status = status;
            f->delay_ms = delay_ms;
            f->times = times;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

size_t stub_count(stub *s, const char *method, const char *path)
{
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nreqs; i++)
        if ((!method || strcmp(s->reqs[i].method, method) == 0) &&
            (!path || strcmp(s->reqs[i].path, path) == 0))
            n++;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int stub_get(stub *s, size_t i, stub_req *out)
{
    int rc = -1;
    pthread_mutex_lock(&s->mu);
    if (i < s->nreqs) {
        *out = s->reqs[i];
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

size_t stub_total(stub *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nreqs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void stub_stream_mode(stub *s, int mode)
{
    pthread_mutex_lock(&s->mu);
    s->stream_mode = mode;
    pthread_mutex_unlock(&s->mu);
    if (mode != 1)
        ws_reap(s, true); /* a dropped stream: every connection closed now */
}

int stub_stream_listening(stub *s, const char *key_id)
{
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < MAX_WS; i++)
        n += s->ws[i].used && s->ws[i].listening && strcmp(s->ws[i].key, key_id) == 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int stub_stream_auths(stub *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->ws_auths;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int stub_stream_send(stub *s, const char *key_id, const char *message, size_t split)
{
    int n = 0;
    size_t len = strlen(message);
    if (split > len)
        split = len;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < MAX_WS; i++) {
        struct ws *w = &s->ws[i];
        if (!w->used || !w->listening || strcmp(w->key, key_id) != 0)
            continue;
        int rc = split ? ws_send_frame(w->sock, 0x2, false, message, split) |
                             ws_send_frame(w->sock, 0x0, true, message + split, len - split)
                       : ws_send_frame(w->sock, 0x2, true, message, len);
        n += rc == 0;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

unsigned stub_stream_port(const stub *s)
{
    return s->ws_port;
}
