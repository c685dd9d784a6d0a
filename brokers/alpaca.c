/*
 * brokers/alpaca.c — the "alpaca" brk_ops backend: Alpaca Trading API v2 over libcurl, one
 * conn per user built from that user's own key id and secret.
 *
 * Design:
 *  - The credentials are copied once into conn-owned buffers and two prebuilt header lists
 *    (APCA-API-KEY-ID / APCA-API-SECRET-KEY); every copy we own is wiped with OPENSSL_cleanse
 *    on destroy. libcurl's verbose mode and debug callback are never enabled, and every log
 *    line and error message is built from our own text, HTTP status codes and curl's static
 *    error strings. The only broker text we pass on is the "message" of a refusal (422, 403 on
 *    submit), sanitised and with the conn's key id and secret masked.
 *  - POST /v2/orders is sent exactly once: a timeout or 5xx there means "outcome unknown"
 *    (BRK_UNAVAILABLE) and the caller reconciles with GET /v2/orders:by_client_order_id. GET
 *    and DELETE are retried on network errors, timeouts, 5xx and 429 with doubling backoff.
 *    The one exception for POST is a 429: Alpaca did not process it, so it is sent once more
 *    after X-Ratelimit-Reset. Every request draws on the account's request budget (below).
 *  - Redirects are never followed (they could carry the key headers elsewhere); plain http is
 *    accepted only for loopback hosts (tests).
 *  - Decimal strings become fixed point through risk/money.h: quantities and money exactly;
 *    broker-computed averages and marks are rounded half away to 1e-6.
 *  - Easy handles are pooled per conn (keeps TLS sessions warm), so one conn may be used from
 *    several threads at once.
 *  - Last trade prices come from the Market Data API v2 (a second base URL, same key headers).
 *    Its price is a JSON number: jansson checks the document's shape, but the digits are taken
 *    from the raw number token by a small strict scanner and converted with the decimal
 *    helpers, so no price ever passes through a double. Crypto pairs ("BTC/USD") have their own
 *    endpoint (/v1beta3/crypto/us/latest/trades). Every price comes with its trade time "t":
 *    a price whose age cannot be told is refused, so the server can refuse a stale one.
 *  - Order states: every documented status is mapped (map_status); "replaced" carries
 *    replaced_by, read by GET /v2/orders/{id}. What Alpaca documents it refuses (fractional
 *    qty unless DAY, extended hours unless limit + DAY, crypto unless GTC/IOC) is refused
 *    locally by alp_check before any request. Crypto positions ("BTCUSD") are reported in
 *    order form ("BTC/USD").
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "brokers/alpaca_int.h"
#include "brokers/broker_int.h"

#define ALP_POOL_MAX 4
#define ALP_BODY_MAX (4u << 20)
#define ALP_MSG_MAX 200
#define ALP_CRED_MAX 256
#define ALP_OPEN_LIMIT 500 /* Alpaca's largest page for GET /v2/orders */

#define ALP_FEED_MAX 16

typedef struct alp_conn {
    brk_conn base; /* first */
    char *base_url;
    char *data_url;
    char data_feed[ALP_FEED_MAX + 1];
    char *interface;
    char *ca_file;
    long connect_timeout_ms;
    long timeout_ms;
    int max_attempts;
    long backoff_ms;
    brk_log_fn log;
    void *log_ctx;
    char *key_id; /* wiped on destroy */
    size_t key_id_len;
    char *secret; /* wiped on destroy; NUL-terminated copy */
    size_t secret_len;
    struct curl_slist *hdr_get;  /* credentials inside: wiped on destroy */
    struct curl_slist *hdr_post; /* same plus Content-Type */
    pthread_mutex_t mu;
    CURL *idle[ALP_POOL_MAX];
    size_t n_idle;
    /* the request budget (see "request budget" below); per_min 0 = none */
    unsigned char account[SHA256_DIGEST_LENGTH]; /* SHA-256 of the key id */
    int per_min;
    bool background;
    long rate_wait_max_ms;
    const brk_shared_budget *shared; /* NULL = this process's bucket only */
} alp_conn;

typedef struct alp_resp {
    long status;
    char *body;
    size_t len, cap;
    bool too_big;
    int64_t reset_unix; /* X-Ratelimit-Reset of the answer, 0 when absent */
} alp_resp;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- credentials and strings ---------------------------------------------------------------- */

static bool cred_ok(const void *p, size_t len)
{
    if (!p || len == 0 || len > ALP_CRED_MAX)
        return false;
    const unsigned char *s = p;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e) /* no CR/LF/space: nothing can split a header */
            return false;
    return true;
}

static void wipe_free(void *p, size_t len)
{
    if (!p)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

static void slist_wipe_free(struct curl_slist *l)
{
    for (struct curl_slist *n = l; n; n = n->next)
        if (n->data)
            OPENSSL_cleanse(n->data, strlen(n->data));
    curl_slist_free_all(l);
}

/* Appends "name: value" (value len bytes) to *l; the temporary is wiped. */
static bool hdr_add(struct curl_slist **l, const char *name, const char *value, size_t len)
{
    size_t nl = strlen(name), total = nl + 2 + len + 1;
    char *h = malloc(total);
    if (!h)
        return false;
    memcpy(h, name, nl);
    memcpy(h + nl, ": ", 2);
    memcpy(h + nl + 2, value, len);
    h[total - 1] = '\0';
    struct curl_slist *n = curl_slist_append(*l, h);
    wipe_free(h, total);
    if (!n)
        return false;
    *l = n;
    return true;
}

/* The shape of a W3C traceparent we send: "vv-" 32 "-" 16 "-" "ff", lower-case hex. */
static bool traceparent_ok(const char *s)
{
    static const char shape[] = "xx-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx-xx";
    if (strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i]; i++) {
        bool hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
        if (shape[i] == '-' ? s[i] != '-' : !hex)
            return false;
    }
    return true;
}

static char *dup_opt(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

/* https://host[:port][/] or http://{127.0.0.1,localhost,[::1]}[:port][/]; no userinfo, path,
 * query or fragment. */
static bool base_url_ok(const char *u)
{
    bool tls;
    const char *a;
    if (strncmp(u, "https://", 8) == 0) {
        tls = true;
        a = u + 8;
    } else if (strncmp(u, "http://", 7) == 0) {
        tls = false;
        a = u + 7;
    } else {
        return false;
    }
    size_t alen = strcspn(a, "/");
    if (alen == 0 || (a[alen] == '/' && a[alen + 1] != '\0'))
        return false;
    for (size_t i = 0; i < alen; i++) {
        unsigned char ch = (unsigned char)a[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '@' || ch == '?' || ch == '#' || ch == '\\')
            return false;
    }
    if (tls)
        return true;
    size_t hlen;
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', alen);
        if (!rb)
            return false;
        hlen = (size_t)(rb - a) + 1;
    } else {
        const char *colon = memchr(a, ':', alen);
        hlen = colon ? (size_t)(colon - a) : alen;
    }
    if (hlen < alen) {
        if (a[hlen] != ':' || hlen + 1 == alen)
            return false;
        for (size_t i = hlen + 1; i < alen; i++)
            if (!isdigit((unsigned char)a[i]))
                return false;
    }
    static const char *const loop[] = {"127.0.0.1", "localhost", "[::1]"};
    for (size_t i = 0; i < sizeof loop / sizeof loop[0]; i++)
        if (strlen(loop[i]) == hlen && strncmp(a, loop[i], hlen) == 0)
            return true;
    return false;
}

/* Overwrites every occurrence of needle (n bytes) in buf with '*' (same length, in place). */
static void mask_in(char *buf, const char *needle, size_t n)
{
    if (!needle || n == 0)
        return;
    size_t bl = strlen(buf);
    for (size_t i = 0; i + n <= bl; i++)
        if (memcmp(buf + i, needle, n) == 0)
            memset(buf + i, '*', n);
}

/* The broker's "message" (if any), printable ASCII, bounded, credentials masked. */
static void broker_message(const alp_conn *c, const alp_resp *r, char *out, size_t cap)
{
    out[0] = '\0';
    if (!r->body || r->len == 0)
        return;
    json_t *root = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
    const char *m = root ? json_string_value(json_object_get(root, "message")) : NULL;
    if (m) {
        /* Copy all of it first (bounded by the body cap) so masking sees whole credentials. */
        size_t ml = strlen(m);
        char *tmp = malloc(ml + 1);
        if (tmp) {
            size_t k = 0;
            for (size_t i = 0; i < ml; i++)
                tmp[k++] = (m[i] >= 0x20 && m[i] <= 0x7e) ? m[i] : '?';
            tmp[k] = '\0';
            mask_in(tmp, c->secret, c->secret_len);
            mask_in(tmp, c->key_id, c->key_id_len);
            size_t n = strlen(tmp);
            if (n > ALP_MSG_MAX)
                n = ALP_MSG_MAX;
            if (n >= cap)
                n = cap - 1;
            memcpy(out, tmp, n);
            out[n] = '\0';
            OPENSSL_cleanse(tmp, ml + 1);
            free(tmp);
        }
    }
    json_decref(root);
}

/* Alpaca's numeric error code in the body, or 0. */
static long long broker_code(const alp_resp *r)
{
    if (!r->body || r->len == 0)
        return 0;
    json_t *root = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
    json_t *code = root ? json_object_get(root, "code") : NULL;
    long long v = json_is_integer(code) ? (long long)json_integer_value(code) : 0;
    json_decref(root);
    return v;
}

/* ---- HTTP ---------------------------------------------------------------------------------------
 */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    alp_resp *r = ud;
    size_t n = size * nmemb;
    if (r->len + n > ALP_BODY_MAX) {
        r->too_big = true;
        return 0;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static void resp_free(alp_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

static CURL *handle_get(alp_conn *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->n_idle > 0)
        h = c->idle[--c->n_idle];
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_reset(h);
    else
        h = curl_easy_init();
    return h;
}

static void handle_put(alp_conn *c, CURL *h)
{
    pthread_mutex_lock(&c->mu);
    if (c->n_idle < ALP_POOL_MAX) {
        c->idle[c->n_idle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_cleanup(h);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ---- request budget
 * ------------------------------------------------------------------------------
 *
 * Alpaca allows about 200 requests per minute per account, submits and cancels included, and
 * answers 429 beyond. Every conn made for one key id shares one budget in this process (conns
 * are short-lived: one per call), so polling, marks and the trader's own actions draw from the
 * same bucket: a token bucket of per_min tokens refilled continuously. A background conn
 * (reconciler polling, marks) may not take the last quarter of the bucket and never waits: it
 * gets BRK_RATE_LIMITED, and the trader's submit or cancel finds tokens left. A user call waits
 * for a token (at most rate_wait_max_ms). A 429 empties the bucket until its X-Ratelimit-Reset,
 * for every conn of the account. The registry is keyed by the SHA-256 of the key id, so it
 * never holds the credential itself. With a shared budget (the server's Redis) the bucket is
 * one for every replica: while it answers it decides, and this process's bucket only keeps a
 * 429's reset; when it cannot answer, this process's bucket decides alone, as without one.
 */

#define ALP_BUDGETS 64
#define ALP_TOKEN INT64_C(60000)  /* units per token: per_min tokens per 60000 ms */
#define ALP_BUDGET_IDLE_MS 120000 /* a bucket unused this long is full again: reusable */

typedef struct alp_budget {
    unsigned char account[SHA256_DIGEST_LENGTH];
    bool used;
    int64_t units;      /* tokens x ALP_TOKEN: one ms refills exactly per_min units */
    int64_t refill_ms;  /* monotonic time of the last refill */
    int64_t blocked_ms; /* monotonic: no request before this (a 429's reset) */
} alp_budget;

static pthread_mutex_t budget_mu = PTHREAD_MUTEX_INITIALIZER;
static alp_budget budgets[ALP_BUDGETS];

/* Under budget_mu: the account's bucket, refilled to now; a new one starts full. */
static alp_budget *budget_of(const alp_conn *c, int64_t now)
{
    alp_budget *b = NULL, *idle = NULL;
    for (size_t i = 0; i < ALP_BUDGETS && !b; i++) {
        if (budgets[i].used && memcmp(budgets[i].account, c->account, sizeof c->account) == 0)
            b = &budgets[i];
        else if (!idle && (!budgets[i].used || (now - budgets[i].refill_ms > ALP_BUDGET_IDLE_MS &&
                                                now >= budgets[i].blocked_ms)))
            idle = &budgets[i];
    }
    if (!b) {
        if (!idle)
            return NULL;
        b = idle;
        memcpy(b->account, c->account, sizeof b->account);
        b->used = true;
        b->units = (int64_t)c->per_min * ALP_TOKEN;
        b->refill_ms = now;
        b->blocked_ms = 0;
    }
    int64_t cap = (int64_t)c->per_min * ALP_TOKEN;
    b->units += (now - b->refill_ms) * c->per_min;
    if (b->units > cap)
        b->units = cap;
    b->refill_ms = now;
    return b;
}

/* One token for a request, or BRK_RATE_LIMITED (err says why). */
static brk_rc budget_take(alp_conn *c, const char *method, const char *path, brk_err *err)
{
    if (c->per_min <= 0)
        return BRK_OK;
    int64_t start = mono_ms();
    int64_t reserve = c->background ? (int64_t)c->per_min * ALP_TOKEN / 4 : 0;
    for (;;) {
        int64_t now = mono_ms(), wait = 0;
        pthread_mutex_lock(&budget_mu);
        alp_budget *b = budget_of(c, now);
        bool blocked = b && now < b->blocked_ms;
        if (blocked)
            wait = b->blocked_ms - now;
        pthread_mutex_unlock(&budget_mu);
        int64_t shared = blocked || !c->shared ? -1
                                               : c->shared->take(c->shared->ctx, c->account,
                                                                 c->per_min, c->background);
        if (shared >= 0) {
            wait = shared; /* the replicas' one bucket decided */
        } else if (!blocked) {
            pthread_mutex_lock(&budget_mu);
            b = budget_of(c, now);
            if (!b) {
                wait = -1; /* every slot busy with another account: do not guess, refuse */
            } else if (now < b->blocked_ms) {
                wait = b->blocked_ms - now;
            } else if (b->units >= ALP_TOKEN + reserve) {
                b->units -= ALP_TOKEN;
            } else {
                wait = (ALP_TOKEN + reserve - b->units) / c->per_min + 1;
            }
            pthread_mutex_unlock(&budget_mu);
        }
        if (wait == 0)
            return BRK_OK;
        if (wait < 0)
            return brk_err_set(err, BRK_RATE_LIMITED, 0, "%s %s: request budget unavailable",
                               method, path);
        if (c->background)
            return brk_err_set(err, BRK_RATE_LIMITED, 0,
                               "%s %s: request budget kept for the trader's own actions", method,
                               path);
        if (now + wait - start > c->rate_wait_max_ms)
            return brk_err_set(err, BRK_RATE_LIMITED, 0,
                               "%s %s: request budget exhausted (next request in %lld ms)", method,
                               path, (long long)wait);
        sleep_ms((long)wait);
    }
}

/* A 429: nobody of this account asks again before until_ms (monotonic). */
static void budget_block(const alp_conn *c, int64_t until_ms)
{
    if (c->per_min <= 0)
        return;
    int64_t now = mono_ms();
    pthread_mutex_lock(&budget_mu);
    alp_budget *b = budget_of(c, now);
    if (b) {
        b->units = 0;
        if (until_ms > b->blocked_ms)
            b->blocked_ms = until_ms;
    }
    pthread_mutex_unlock(&budget_mu);
    if (c->shared && c->shared->hold && until_ms > now)
        c->shared->hold(c->shared->ctx, c->account, c->per_min, until_ms - now);
}

/* "X-Ratelimit-Reset: 1767364260" (Unix seconds), any case. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    alp_resp *r = ud;
    size_t n = size * nmemb;
    static const char name[] = "x-ratelimit-reset:";
    size_t nl = sizeof name - 1;
    if (n > nl && n < 64 && strncasecmp(ptr, name, nl) == 0) {
        char buf[64];
        memcpy(buf, ptr + nl, n - nl);
        buf[n - nl] = '\0';
        char *end = NULL;
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        while (end && (*end == ' ' || *end == '\r' || *end == '\n'))
            end++;
        if (!errno && end && *end == '\0' && v > 0)
            r->reset_unix = v;
    }
    return n;
}

/* How long to wait after a 429: until its reset (never before 0), else the backoff. */
static int64_t wait_after_429(const alp_resp *r, long backoff)
{
    if (r->reset_unix <= 0)
        return backoff;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t w = r->reset_unix * 1000 - now;
    return w > 0 ? w : 0;
}

/* One exchange. Returns the curl code; r->status holds the HTTP status when CURLE_OK. */
static CURLcode http_once(alp_conn *c, CURL *h, const char *method, const char *url,
                          const char *body, alp_resp *r)
{
    bool ok = true;
#define SETOPT(o, v) ok = ok && curl_easy_setopt(h, o, v) == CURLE_OK
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_VERBOSE, 0L);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, c->timeout_ms);
    SETOPT(CURLOPT_USERAGENT, "tradewink-core/1");
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, r);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, r);
    SETOPT(CURLOPT_HTTPHEADER, body ? c->hdr_post : c->hdr_get);
    if (c->interface)
        SETOPT(CURLOPT_INTERFACE, c->interface);
    if (c->ca_file)
        SETOPT(CURLOPT_CAINFO, c->ca_file);
    if (body) {
        SETOPT(CURLOPT_POSTFIELDS, body);
        SETOPT(CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "GET") != 0) {
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }
#undef SETOPT
    if (!ok)
        return CURLE_FAILED_INIT;
    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    return cc;
}

/*
 * Sends method path (path includes any query; our own ASCII only) and maps the outcome.
 * idempotent requests are retried; POST only after a 429 (Alpaca did not process it), once,
 * after X-Ratelimit-Reset. Every attempt takes a token of the account's request budget. On
 * BRK_OK r holds a 2xx body (caller frees with resp_free in every case).
 */
static brk_rc http_call_at(alp_conn *c, const char *base, const char *method, const char *path,
                           const char *body, alp_resp *r, brk_err *err)
{
    bool idempotent = body == NULL;
    int attempts = idempotent ? c->max_attempts : 2;
    long backoff = c->backoff_ms;
    size_t ul = strlen(base) + strlen(path) + 1;
    char *url = malloc(ul);
    if (!url)
        return brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
    snprintf(url, ul, "%s%s", base, path);
    brk_rc rc = BRK_INTERNAL;
    for (int attempt = 1; attempt <= attempts; attempt++) {
        resp_free(r);
        if ((rc = budget_take(c, method, path, err)) != BRK_OK)
            break;
        CURL *h = handle_get(c);
        if (!h) {
            rc = brk_err_set(err, BRK_INTERNAL, 0, "curl: cannot create handle");
            break;
        }
        int64_t t0 = mono_ms();
        CURLcode cc = http_once(c, h, method, url, body, r);
        long ms = (long)(mono_ms() - t0);
        handle_put(c, h);
        bool retry = false;
        int64_t wait = backoff;
        if (cc != CURLE_OK) {
            brk_logf(c->log, c->log_ctx, BRK_LOG_WARN,
                     "alpaca: %s %s failed: %s (%ld ms, attempt %d/%d)", method, path,
                     curl_easy_strerror(cc), ms, attempt, attempts);
            if (cc == CURLE_FAILED_INIT || cc == CURLE_OUT_OF_MEMORY) {
                rc = brk_err_set(err, BRK_INTERNAL, 0, "curl: %s", curl_easy_strerror(cc));
                break;
            }
            rc = brk_err_set(err, BRK_UNAVAILABLE, 0, "%s %s: %s%s", method, path,
                             cc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "network error: ",
                             cc == CURLE_OPERATION_TIMEDOUT ? "" : curl_easy_strerror(cc));
            retry = true;
        } else {
            long st = r->status;
            brk_logf(c->log, c->log_ctx, st >= 400 ? BRK_LOG_WARN : BRK_LOG_DEBUG,
                     "alpaca: %s %s -> %ld (%ld ms, attempt %d/%d)", method, path, st, ms, attempt,
                     attempts);
            char msg[ALP_MSG_MAX + 1];
            if (st >= 200 && st < 300) {
                rc = BRK_OK;
                brk_err_clear(err);
                if (err)
                    err->http_status = (int)st;
            } else if (st == 401 || st == 403) {
                rc = brk_err_set(err, BRK_AUTH, (int)st, "%s %s: credentials refused (HTTP %ld)",
                                 method, path, st);
            } else if (st == 404) {
                rc = brk_err_set(err, BRK_NOT_FOUND, (int)st, "%s %s: not found (HTTP 404)", method,
                                 path);
            } else if (st == 429) {
                wait = wait_after_429(r, backoff);
                budget_block(c, mono_ms() + wait);
                rc = brk_err_set(err, BRK_RATE_LIMITED, (int)st,
                                 "%s %s: rate limited (HTTP 429), reset in %lld ms", method, path,
                                 (long long)wait);
                /* Not processed by Alpaca, so even a POST may go again; a background conn
                 * leaves the budget to the trader instead of waiting. */
                retry = !c->background && wait <= c->rate_wait_max_ms;
            } else if (st == 400) {
                rc = brk_err_set(err, BRK_INVALID, (int)st, "%s %s: bad request (HTTP 400)", method,
                                 path);
            } else if (st >= 400 && st < 500) {
                broker_message(c, r, msg, sizeof msg);
                rc = brk_err_set(err, BRK_REJECTED, (int)st, "%s %s: refused (HTTP %ld)%s%s",
                                 method, path, st, msg[0] ? ": " : "", msg);
            } else {
                rc = brk_err_set(err, BRK_UNAVAILABLE, (int)st,
                                 "%s %s: broker unavailable (HTTP %ld)", method, path, st);
                retry = st >= 500;
            }
        }
        if (!idempotent && !(cc == CURLE_OK && r->status == 429))
            retry = false; /* a POST is sent once unless Alpaca refused it unprocessed */
        if (!retry || attempt == attempts)
            break;
        if (c->per_min <= 0 || !(cc == CURLE_OK && r->status == 429))
            sleep_ms((long)wait); /* with a budget, budget_take waits for the reset */
        backoff *= 2;
    }
    free(url);
    return rc;
}

/* A Trading API call (base_url). */
static brk_rc http_call(alp_conn *c, const char *method, const char *path, const char *body,
                        alp_resp *r, brk_err *err)
{
    return http_call_at(c, c->base_url, method, path, body, r, err);
}

/* ---- JSON -> fixed point
 * -------------------------------------------------------------------------- */

/* A decimal field: string (or integer); null/missing allowed unless required. */
static bool get_dec(json_t *o, const char *key, int digits, bool round, bool required, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v || json_is_null(v))
        return !required;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        int64_t scale = 1;
        for (int k = 0; k < digits; k++)
            scale *= 10;
        __int128 p = (__int128)i * scale;
        if (p > INT64_MAX || p < -INT64_MAX)
            return false;
        *out = (int64_t)p;
        return true;
    }
    const char *s = json_string_value(v);
    if (!s)
        return false;
    if (round)
        return brk_dec_parse_round(s, digits, out) == RISK_DEC_OK;
    return risk_dec_parse(s, strlen(s), digits, out) == RISK_DEC_OK;
}

/* RFC 3339 "2021-03-16T18:38:01.942282Z" / "...+02:00" -> Unix ms; 0 when absent or odd. */
static int64_t get_time(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s)
        return 0;
    int f[6] = {0};
    static const int width[6] = {4, 2, 2, 2, 2, 2};
    static const char sep[6] = {'-', '-', 'T', ':', ':', 0};
    const char *p = s;
    for (int i = 0; i < 6; i++) {
        for (int k = 0; k < width[i]; k++, p++) {
            if (!isdigit((unsigned char)*p))
                return 0;
            f[i] = f[i] * 10 + (*p - '0');
        }
        if (sep[i]) {
            if (*p != sep[i] && !(i == 2 && *p == 't'))
                return 0;
            p++;
        }
    }
    int64_t ms = 0;
    if (*p == '.') {
        p++;
        int k = 0;
        for (; isdigit((unsigned char)*p); p++, k++)
            if (k < 3)
                ms = ms * 10 + (*p - '0');
        if (k == 0)
            return 0;
        for (; k < 3; k++)
            ms *= 10;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) || p[3] != ':' ||
            !isdigit((unsigned char)p[4]) || !isdigit((unsigned char)p[5]))
            return 0;
        off = sign * (((p[1] - '0') * 10 + (p[2] - '0')) * 3600L +
                      ((p[4] - '0') * 10 + (p[5] - '0')) * 60L);
        p += 6;
    } else {
        return 0;
    }
    if (*p)
        return 0;
    struct tm tm = {0};
    tm.tm_year = f[0] - 1900;
    tm.tm_mon = f[1] - 1;
    tm.tm_mday = f[2];
    tm.tm_hour = f[3];
    tm.tm_min = f[4];
    tm.tm_sec = f[5];
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return 0;
    return ((int64_t)t - off) * 1000 + ms;
}

/*
 * Every status Alpaca documents, with its meaning for us. Anything not listed (a status added
 * later) is BRK_ORDER_OTHER: still open, asked about again, never guessed terminal.
 */
static brk_order_status map_status(const char *s)
{
    static const struct {
        const char *name;
        brk_order_status st;
    } t[] = {
        {"new", BRK_ORDER_NEW},
        {"partially_filled", BRK_ORDER_PARTIALLY_FILLED},
        {"filled", BRK_ORDER_FILLED},
        /* may still receive fills the next trading day: open */
        {"done_for_day", BRK_ORDER_DONE_FOR_DAY},
        {"canceled", BRK_ORDER_CANCELED},
        {"expired", BRK_ORDER_EXPIRED},
        /* this broker order is over; the order continues as replaced_by */
        {"replaced", BRK_ORDER_REPLACED},
        {"pending_cancel", BRK_ORDER_PENDING_CANCEL},
        /* a replace is in flight: the order still works and may fill */
        {"pending_replace", BRK_ORDER_OTHER},
        {"accepted", BRK_ORDER_PENDING_NEW},
        {"pending_new", BRK_ORDER_PENDING_NEW},
        {"accepted_for_bidding", BRK_ORDER_PENDING_NEW},
        /* a fill is guaranteed but has not happened yet */
        {"stopped", BRK_ORDER_OTHER},
        {"rejected", BRK_ORDER_REJECTED},
        /* suspended: not eligible for trading now, may resume; calculated: the day's fills are
         * in, settlement pending. Neither is final. */
        {"suspended", BRK_ORDER_OTHER},
        {"calculated", BRK_ORDER_OTHER},
    };
    if (!s)
        return BRK_ORDER_OTHER;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(s, t[i].name) == 0)
            return t[i].st;
    return BRK_ORDER_OTHER;
}

static bool parse_order(json_t *o, brk_order *out)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(o))
        return false;
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *coid = json_string_value(json_object_get(o, "client_order_id"));
    const char *sym = json_string_value(json_object_get(o, "symbol"));
    const char *status = json_string_value(json_object_get(o, "status"));
    if (!id || !brk_copy(out->broker_order_id, sizeof out->broker_order_id, id) ||
        !brk_valid_order_id(id) || !status)
        return false;
    if (coid && !brk_copy(out->client_order_id, sizeof out->client_order_id, coid))
        return false;
    if (sym && !brk_copy(out->symbol, sizeof out->symbol, sym))
        return false;
    out->status = map_status(status);
    const char *rep = json_string_value(json_object_get(o, "replaced_by"));
    if (rep &&
        (!brk_valid_order_id(rep) || !brk_copy(out->replaced_by, sizeof out->replaced_by, rep)))
        return false;
    const char *side = json_string_value(json_object_get(o, "side"));
    out->side = side && strcmp(side, "sell") == 0 ? BRK_SIDE_SELL : BRK_SIDE_BUY;
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!type)
        type = json_string_value(json_object_get(o, "order_type"));
    out->type = type && strcmp(type, "limit") == 0 ? BRK_TYPE_LIMIT : BRK_TYPE_MARKET;
    const char *tif = json_string_value(json_object_get(o, "time_in_force"));
    static const char *const tifs[] = {"day", "gtc", "ioc", "fok", "opg", "cls"};
    out->tif = BRK_TIF_DAY;
    for (int i = 0; tif && i < 6; i++)
        if (strcmp(tif, tifs[i]) == 0)
            out->tif = (brk_tif)(i + 1);
    if (!get_dec(o, "qty", RISK_QTY_DIGITS, false, false, &out->qty) ||
        !get_dec(o, "filled_qty", RISK_QTY_DIGITS, false, false, &out->filled_qty) ||
        !get_dec(o, "limit_price", RISK_PRICE_DIGITS, true, false, &out->limit_price) ||
        !get_dec(o, "filled_avg_price", RISK_PRICE_DIGITS, true, false, &out->filled_avg_price))
        return false;
    out->created_ms = get_time(o, "created_at");
    out->updated_ms = get_time(o, "updated_at");
    out->filled_ms = get_time(o, "filled_at");
    return true;
}

bool alp_parse_order(json_t *o, brk_order *out)
{
    return parse_order(o, out);
}

int64_t alp_parse_time(json_t *o, const char *key)
{
    return get_time(o, key);
}

bool alp_base_url_ok(const char *u)
{
    return base_url_ok(u);
}

static json_t *parse_body(const alp_resp *r)
{
    if (!r->body)
        return NULL;
    return json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
}

/* ---- the alpaca backend
 * ---------------------------------------------------------------------------- */

static brk_rc alp_submit(brk_conn *bc, const brk_order_req *req, brk_order *out, brk_err *err)
{
    alp_conn *c = (alp_conn *)bc;
    brk_rc rc = BRK_INTERNAL;
    alp_resp r = {0};
    char *body = NULL;
    json_t *root = NULL, *resp = NULL;
    char qty[RISK_DEC_STRMAX], px[RISK_DEC_STRMAX];
    if (risk_qty_format(req->qty, qty, sizeof qty) != RISK_DEC_OK ||
        risk_money_format(req->limit_price, px, sizeof px) != RISK_DEC_OK) {
        rc = brk_err_set(err, BRK_INVALID, 0, "order: cannot format qty/price");
        goto out;
    }
    root = json_object();
    if (!root || json_object_set_new(root, "symbol", json_string(req->symbol)) ||
        json_object_set_new(root, "qty", json_string(qty)) ||
        json_object_set_new(root, "side", json_string(brk_side_name(req->side))) ||
        json_object_set_new(root, "type", json_string(brk_type_name(req->type))) ||
        json_object_set_new(root, "time_in_force", json_string(brk_tif_name(req->tif))) ||
        (req->type == BRK_TYPE_LIMIT &&
         json_object_set_new(root, "limit_price", json_string(px))) ||
        (req->extended_hours && json_object_set_new(root, "extended_hours", json_true())) ||
        json_object_set_new(root, "client_order_id", json_string(req->client_order_id))) {
        rc = brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
        goto out;
    }
    body = json_dumps(root, JSON_COMPACT);
    if (!body) {
        rc = brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
        goto out;
    }
    rc = http_call(c, "POST", "/v2/orders", body, &r, err);
    if (rc == BRK_AUTH && r.status == 403) {
        /* Alpaca answers 403 with an error code for business refusals on orders (e.g.
         * insufficient buying power); a bare 403 stays an auth failure. */
        long long code = broker_code(&r);
        if (code >= 40300000LL && code <= 40399999LL) {
            char msg[ALP_MSG_MAX + 1];
            broker_message(c, &r, msg, sizeof msg);
            rc = brk_err_set(err, BRK_REJECTED, 403, "POST /v2/orders: refused (HTTP 403)%s%s",
                             msg[0] ? ": " : "", msg);
        }
    }
    if (rc != BRK_OK)
        goto out;
    resp = parse_body(&r);
    if (!parse_order(resp, out)) {
        /* The broker took something; we cannot tell what. Outcome unknown: reconcile. */
        memset(out, 0, sizeof *out);
        rc = brk_err_set(err, BRK_UNAVAILABLE, (int)r.status,
                         "POST /v2/orders: unparseable answer (HTTP %ld)", r.status);
        goto out;
    }
out:
    json_decref(resp);
    json_decref(root);
    free(body);
    resp_free(&r);
    return rc;
}

static brk_rc alp_cancel(brk_conn *bc, const char *broker_order_id, brk_err *err)
{
    alp_conn *c = (alp_conn *)bc;
    alp_resp r = {0};
    char path[32 + BRK_ID_MAX];
    snprintf(path, sizeof path, "/v2/orders/%s", broker_order_id); /* id charset checked */
    brk_rc rc = http_call(c, "DELETE", path, NULL, &r, err);
    resp_free(&r);
    return rc;
}

static brk_rc alp_get(brk_conn *bc, const char *client_order_id, brk_order *out, brk_err *err)
{
    alp_conn *c = (alp_conn *)bc;
    alp_resp r = {0};
    json_t *resp = NULL;
    /* The id charset ([A-Za-z0-9._:-]) needs no escaping except ':' which is fine in a query. */
    char path[64 + BRK_ID_MAX];
    snprintf(path, sizeof path, "/v2/orders:by_client_order_id?client_order_id=%s",
             client_order_id);
    brk_rc rc = http_call(c, "GET", path, NULL, &r, err);
    if (rc != BRK_OK)
        goto out;
    resp = parse_body(&r);
    if (!parse_order(resp, out)) {
        memset(out, 0, sizeof *out);
        rc = brk_err_set(err, BRK_UNAVAILABLE, (int)r.status, "GET order: unparseable answer");
    }
out:
    json_decref(resp);
    resp_free(&r);
    return rc;
}

static brk_rc alp_get_by_id(brk_conn *bc, const char *broker_order_id, brk_order *out, brk_err *err)
{
    alp_conn *c = (alp_conn *)bc;
    alp_resp r = {0};
    json_t *resp = NULL;
    char path[32 + BRK_ID_MAX];
    snprintf(path, sizeof path, "/v2/orders/%s", broker_order_id); /* id charset checked */
    brk_rc rc = http_call(c, "GET", path, NULL, &r, err);
    if (rc != BRK_OK)
        goto out;
    resp = parse_body(&r);
    if (!parse_order(resp, out) || strcmp(out->broker_order_id, broker_order_id) != 0) {
        memset(out, 0, sizeof *out);
        rc = brk_err_set(err, BRK_UNAVAILABLE, (int)r.status, "GET order: unparseable answer");
    }
out:
    json_decref(resp);
    resp_free(&r);
    return rc;
}

/* Alpaca's documented order rules that it would answer 422 to, refused before any I/O. */
static brk_rc alp_check(brk_conn *bc, const brk_order_req *req, brk_err *err)
{
    (void)bc;
    if (brk_symbol_is_crypto(req->symbol)) {
        if (req->tif != BRK_TIF_GTC && req->tif != BRK_TIF_IOC)
            return brk_err_set(err, BRK_INVALID, 0,
                               "time_in_force: crypto orders take GTC or IOC only (Alpaca)");
        if (req->extended_hours)
            return brk_err_set(err, BRK_INVALID, 0,
                               "extended_hours: not for crypto, which trades around the clock");
        return BRK_OK;
    }
    if (req->qty % RISK_QTY_SCALE != 0 && req->tif != BRK_TIF_DAY)
        return brk_err_set(err, BRK_INVALID, 0,
                           "time_in_force: fractional quantities take DAY only (Alpaca)");
    if (req->extended_hours && (req->type != BRK_TYPE_LIMIT || req->tif != BRK_TIF_DAY))
        return brk_err_set(err, BRK_INVALID, 0,
                           "extended_hours: only for limit orders with time_in_force DAY (Alpaca)");
    return BRK_OK;
}

static brk_rc alp_list_open(brk_conn *bc, brk_order_list *out, brk_err *err)
{
    alp_conn *c = (alp_conn *)bc;
    alp_resp r = {0};
    json_t *resp = NULL;
    char path[96];
    snprintf(path, sizeof path, "/v2/orders?status=open&limit=%d&direction=asc", ALP_OPEN_LIMIT);
    brk_rc rc = http_call(c, "GET", path, NULL, &r, err);
    if (rc != BRK_OK)
        goto out;
    resp = parse_body(&r);
    if (!json_is_array(resp)) {
        rc = brk_err_set(err, BRK_UNAVAILABLE, (int)r.status, "GET orders: unparseable answer");
        goto out;
    }
    size_t n = json_array_size(resp);
    if (n) {
        out->items = calloc(n, sizeof *out->items);
        if (!out->items) {
            rc = brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!parse_order(json_array_get(resp, i), &out->items[out->n])) {
            brk_order_list_free(out);
            rc = brk_err_set(err, BRK_UNAVAILABLE, (int)r.status,
                             "GET orders: unparseable order at index %zu", i);
            goto out;
        }
        out->n++;
    }
out:
    json_decref(resp);
    resp_free(&r);
    return rc;
}

static brk_rc alp_account(brk_conn *bc, brk_account *out, brk_err *err)
{
    alp_conn *c = (alp_conn *)bc;
    alp_resp r = {0};
    json_t *o = NULL;
    brk_rc rc = http_call(c, "GET", "/v2/account", NULL, &r, err);
    if (rc != BRK_OK)
        goto out;
    o = parse_body(&r);
    int64_t mult = 0;
    if (!json_is_object(o) || !get_dec(o, "cash", RISK_MONEY_DIGITS, true, true, &out->cash) ||
        !get_dec(o, "equity", RISK_MONEY_DIGITS, true, true, &out->equity) ||
        !get_dec(o, "last_equity", RISK_MONEY_DIGITS, true, false, &out->last_equity) ||
        !get_dec(o, "buying_power", RISK_MONEY_DIGITS, true, true, &out->buying_power) ||
        !get_dec(o, "multiplier", 0, false, false, &mult) || mult < 0 || mult > 100) {
        memset(out, 0, sizeof *out);
        rc = brk_err_set(err, BRK_UNAVAILABLE, (int)r.status, "GET account: unparseable answer");
        goto out;
    }
    out->multiplier = mult ? (int32_t)mult : 1;
    out->type = out->multiplier >= 2 ? BRK_ACCOUNT_MARGIN : BRK_ACCOUNT_CASH;
    if (out->buying_power < 0)
        out->buying_power = 0;
    json_t *dt = json_object_get(o, "daytrade_count");
    if (json_is_integer(dt))
        out->daytrade_count = (int32_t)json_integer_value(dt);
    out->pattern_day_trader = json_is_true(json_object_get(o, "pattern_day_trader"));
    out->trading_blocked = json_is_true(json_object_get(o, "trading_blocked")) ||
                           json_is_true(json_object_get(o, "account_blocked")) ||
                           json_is_true(json_object_get(o, "trade_suspended_by_user"));
out:
    json_decref(o);
    resp_free(&r);
    return rc;
}

/*
 * A crypto position's symbol in order form: Alpaca reports "BTCUSD" (asset_class "crypto")
 * where orders and market data say "BTC/USD". The quote currency is one Alpaca lists pairs in;
 * a symbol that ends in none of them is kept as it is.
 */
static bool position_symbol(json_t *o, const char *sym, char *out, size_t cap)
{
    static const char *const quotes[] = {"USDT", "USDC", "USD", "BTC"};
    const char *cls = json_string_value(json_object_get(o, "asset_class"));
    size_t n = strlen(sym);
    if (!cls || strcmp(cls, "crypto") != 0 || strchr(sym, '/'))
        return brk_copy(out, cap, sym);
    for (size_t i = 0; i < sizeof quotes / sizeof quotes[0]; i++) {
        size_t q = strlen(quotes[i]);
        if (n > q && strcmp(sym + n - q, quotes[i]) == 0) {
            if (n + 2 > cap)
                return false;
            snprintf(out, cap, "%.*s/%s", (int)(n - q), sym, quotes[i]);
            return true;
        }
    }
    return brk_copy(out, cap, sym);
}

static bool parse_position(json_t *o, brk_position *p)
{
    memset(p, 0, sizeof *p);
    const char *sym = json_string_value(json_object_get(o, "symbol"));
    if (!sym || !position_symbol(o, sym, p->symbol, sizeof p->symbol))
        return false;
    if (!get_dec(o, "qty", RISK_QTY_DIGITS, false, true, &p->qty) ||
        !get_dec(o, "avg_entry_price", RISK_PRICE_DIGITS, true, false, &p->avg_entry_price) ||
        !get_dec(o, "cost_basis", RISK_MONEY_DIGITS, true, false, &p->cost_basis) ||
        !get_dec(o, "current_price", RISK_PRICE_DIGITS, true, false, &p->current_price) ||
        !get_dec(o, "market_value", RISK_MONEY_DIGITS, true, false, &p->market_value) ||
        !get_dec(o, "unrealized_pl", RISK_MONEY_DIGITS, true, false, &p->unrealized_pl))
        return false;
    const char *side = json_string_value(json_object_get(o, "side"));
    if (side && strcmp(side, "short") == 0 && p->qty > 0) {
        p->qty = -p->qty;
        if (p->cost_basis > 0)
            p->cost_basis = -p->cost_basis;
        if (p->market_value > 0)
            p->market_value = -p->market_value;
    }
    return true;
}

static brk_rc alp_positions(brk_conn *bc, brk_position_list *out, brk_err *err)
{
    alp_conn *c = (alp_conn *)bc;
    alp_resp r = {0};
    json_t *resp = NULL;
    brk_rc rc = http_call(c, "GET", "/v2/positions", NULL, &r, err);
    if (rc != BRK_OK)
        goto out;
    resp = parse_body(&r);
    if (!json_is_array(resp)) {
        rc = brk_err_set(err, BRK_UNAVAILABLE, (int)r.status, "GET positions: unparseable answer");
        goto out;
    }
    size_t n = json_array_size(resp);
    if (n) {
        out->items = calloc(n, sizeof *out->items);
        if (!out->items) {
            rc = brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!parse_position(json_array_get(resp, i), &out->items[out->n])) {
            brk_position_list_free(out);
            rc = brk_err_set(err, BRK_UNAVAILABLE, (int)r.status,
                             "GET positions: unparseable position at index %zu", i);
            goto out;
        }
        out->n++;
    }
out:
    json_decref(resp);
    resp_free(&r);
    return rc;
}

/* ---- market data: the last trade price -------------------------------------------------------
 *
 * The scanner below walks the raw body (already accepted by jansson, so it is well-formed JSON)
 * only to find the text of one number token. It is strict anyway: anything it does not expect
 * (an escaped key in a searched object, nesting deeper than ALP_SCAN_DEPTH) is an error, never a
 * guess. Results: 1 found, 0 absent, -1 error.
 */

#define ALP_SCAN_DEPTH 32
#define ALP_NUM_MAX 64 /* longest number token we convert */

typedef struct jscan {
    const char *p, *end;
} jscan;

static void js_ws(jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* At '"': moves past the closing quote; tok and len: the raw content; esc: it had a backslash. */
static bool js_string(jscan *s, const char **tok, size_t *len, bool *esc)
{
    if (s->p >= s->end || *s->p != '"')
        return false;
    const char *start = ++s->p;
    *esc = false;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\') {
            *esc = true;
            s->p++;
            if (s->p >= s->end)
                return false;
        }
        s->p++;
    }
    if (s->p >= s->end)
        return false;
    *tok = start;
    *len = (size_t)(s->p - start);
    s->p++;
    return true;
}

/* At a number: the JSON grammar -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, exactly. */
static bool js_number(jscan *s, const char **tok, size_t *len)
{
    const char *q = s->p, *e = s->end;
#define DIG(x) ((x) < e && *(x) >= '0' && *(x) <= '9')
    *tok = q;
    if (q < e && *q == '-')
        q++;
    if (!DIG(q))
        return false;
    if (*q == '0')
        q++;
    else
        while (DIG(q))
            q++;
    if (q < e && *q == '.') {
        q++;
        if (!DIG(q))
            return false;
        while (DIG(q))
            q++;
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < e && (*q == '+' || *q == '-'))
            q++;
        if (!DIG(q))
            return false;
        while (DIG(q))
            q++;
    }
#undef DIG
    *len = (size_t)(q - *tok);
    s->p = q;
    return true;
}

static bool js_skip(jscan *s, int depth)
{
    js_ws(s);
    if (s->p >= s->end || depth > ALP_SCAN_DEPTH)
        return false;
    const char *tok;
    size_t len;
    bool esc;
    char open = *s->p;
    if (open == '"')
        return js_string(s, &tok, &len, &esc);
    if (open == '{' || open == '[') {
        char close = open == '{' ? '}' : ']';
        s->p++;
        js_ws(s);
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return true;
        }
        for (;;) {
            if (open == '{') {
                js_ws(s);
                if (!js_string(s, &tok, &len, &esc))
                    return false;
                js_ws(s);
                if (s->p >= s->end || *s->p != ':')
                    return false;
                s->p++;
            }
            if (!js_skip(s, depth + 1))
                return false;
            js_ws(s);
            if (s->p >= s->end)
                return false;
            if (*s->p == close) {
                s->p++;
                return true;
            }
            if (*s->p != ',')
                return false;
            s->p++;
        }
    }
    static const char *const lit[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(lit[i]);
        if ((size_t)(s->end - s->p) >= n && memcmp(s->p, lit[i], n) == 0) {
            s->p += n;
            return true;
        }
    }
    return js_number(s, &tok, &len);
}

/* At '{': finds member key and leaves s at its value (1), or at the end of the object (0). */
static int js_member(jscan *s, const char *key)
{
    js_ws(s);
    if (s->p >= s->end || *s->p != '{')
        return -1;
    s->p++;
    js_ws(s);
    if (s->p < s->end && *s->p == '}')
        return 0;
    size_t kl = strlen(key);
    for (;;) {
        const char *tok;
        size_t len;
        bool esc;
        js_ws(s);
        if (!js_string(s, &tok, &len, &esc) || esc)
            return -1;
        js_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return -1;
        s->p++;
        js_ws(s);
        if (len == kl && memcmp(tok, key, kl) == 0)
            return 1;
        if (!js_skip(s, 1))
            return -1;
        js_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == '}')
            return 0;
        if (*s->p != ',')
            return -1;
        s->p++;
    }
}

/*
 * A JSON number token (tok, len bytes) to a price, exactly: the exponent moves the decimal point
 * in the digit text, then brk_dec_parse_round rounds digits beyond 1e-6 half away from zero.
 */
static bool num_to_price(const char *tok, size_t len, risk_price *out)
{
    if (len == 0 || len > ALP_NUM_MAX)
        return false;
    char digits[ALP_NUM_MAX + 1];
    size_t nd = 0, nint = 0;
    bool neg = false, frac = false;
    long exp = 0;
    size_t i = 0;
    if (tok[i] == '-') {
        neg = true;
        i++;
    }
    for (; i < len; i++) {
        char ch = tok[i];
        if (ch >= '0' && ch <= '9') {
            digits[nd++] = ch;
            if (!frac)
                nint++;
        } else if (ch == '.' && !frac) {
            frac = true;
        } else if (ch == 'e' || ch == 'E') {
            char *end = NULL;
            char ebuf[ALP_NUM_MAX + 1];
            memcpy(ebuf, tok + i + 1, len - i - 1);
            ebuf[len - i - 1] = '\0';
            errno = 0;
            exp = strtol(ebuf, &end, 10);
            if (errno || !end || *end || end == ebuf || exp < -ALP_NUM_MAX || exp > ALP_NUM_MAX)
                return false;
            break;
        } else {
            return false;
        }
    }
    if (nd == 0)
        return false;
    /* Decimal point after `point` digits of digits[] (may be <= 0 or >= nd). */
    long point = (long)nint + exp;
    char buf[4 * ALP_NUM_MAX];
    size_t k = 0;
    if (neg)
        buf[k++] = '-';
    if (point <= 0) {
        buf[k++] = '0';
        buf[k++] = '.';
        for (long z = 0; z < -point; z++)
            buf[k++] = '0';
        memcpy(buf + k, digits, nd);
        k += nd;
    } else if ((size_t)point >= nd) {
        memcpy(buf + k, digits, nd);
        k += nd;
        for (long z = 0; z < point - (long)nd; z++)
            buf[k++] = '0';
    } else {
        memcpy(buf + k, digits, (size_t)point);
        k += (size_t)point;
        buf[k++] = '.';
        memcpy(buf + k, digits + point, nd - (size_t)point);
        k += nd - (size_t)point;
    }
    buf[k] = '\0';
    return brk_dec_parse_round(buf, RISK_PRICE_DIGITS, out) == RISK_DEC_OK;
}

/* Percent-encodes everything but RFC 3986 unreserved characters. false when it does not fit. */
static bool url_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (k + (plain ? 1 : 3) >= cap)
            return false;
        if (plain) {
            out[k++] = (char)ch;
        } else {
            out[k++] = '%';
            out[k++] = hex[ch >> 4];
            out[k++] = hex[ch & 15];
        }
    }
    out[k] = '\0';
    return true;
}

/* 1..ALP_FEED_MAX chars of [a-z0-9_] ("iex", "sip", "delayed_sip", ...). */
static bool feed_ok(const char *f)
{
    size_t n = strlen(f);
    if (n == 0 || n > ALP_FEED_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((f[i] >= 'a' && f[i] <= 'z') || (f[i] >= '0' && f[i] <= '9') || f[i] == '_'))
            return false;
    return true;
}

/*
 * The price and time of a latest-trade answer: stocks {"symbol":"AAPL","trade":{"t":...,"p":...}},
 * crypto {"trades":{"BTC/USD":{"t":...,"p":...}}}. BRK_OK, BRK_NOT_FOUND (no trade for that
 * symbol) or BRK_UNAVAILABLE (anything else unexpected, a missing or odd "t" included: a price
 * whose age cannot be told is never used).
 */
static brk_rc parse_latest_trade(const alp_resp *r, const char *symbol, bool crypto,
                                 risk_price *out, int64_t *time_ms)
{
    brk_rc rc = BRK_UNAVAILABLE;
    json_t *root = parse_body(r), *tr = NULL;
    if (!json_is_object(root))
        goto out;
    if (crypto) {
        json_t *all = json_object_get(root, "trades");
        if (!json_is_object(all))
            goto out;
        tr = json_object_get(all, symbol);
    } else {
        json_t *sym = json_object_get(root, "symbol");
        if (sym && (!json_is_string(sym) || strcmp(json_string_value(sym), symbol) != 0))
            goto out; /* an answer about another symbol */
        tr = json_object_get(root, "trade");
    }
    if (!tr || json_is_null(tr)) {
        rc = BRK_NOT_FOUND;
        goto out;
    }
    json_t *p = json_is_object(tr) ? json_object_get(tr, "p") : NULL;
    if (!json_is_number(p) && !json_is_string(p))
        goto out;
    if ((*time_ms = get_time(tr, "t")) <= 0)
        goto out;
    jscan s = {r->body, r->body + r->len};
    const char *tok;
    size_t len;
    bool esc;
    if (crypto ? js_member(&s, "trades") != 1 || js_member(&s, symbol) != 1
               : js_member(&s, "trade") != 1)
        goto out;
    if (js_member(&s, "p") != 1)
        goto out;
    if (json_is_string(p)) {
        char buf[ALP_NUM_MAX + 1];
        if (!js_string(&s, &tok, &len, &esc) || esc || len == 0 || len > ALP_NUM_MAX)
            goto out;
        memcpy(buf, tok, len);
        buf[len] = '\0';
        if (brk_dec_parse_round(buf, RISK_PRICE_DIGITS, out) != RISK_DEC_OK)
            goto out;
    } else if (!js_number(&s, &tok, &len) || !num_to_price(tok, len, out)) {
        goto out;
    }
    if (*out <= 0)
        goto out;
    rc = BRK_OK;
out:
    if (rc != BRK_OK) {
        *out = 0;
        *time_ms = 0;
    }
    json_decref(root);
    return rc;
}

static brk_rc alp_last_trade(brk_conn *bc, const char *symbol, risk_price *out, int64_t *time_ms,
                             brk_err *err)
{
    alp_conn *c = (alp_conn *)bc;
    alp_resp r = {0};
    bool crypto = brk_symbol_is_crypto(symbol);
    char esym[3 * BRK_SYMBOL_MAX + 1];
    char path[64 + 3 * BRK_SYMBOL_MAX + ALP_FEED_MAX];
    if (!url_encode(symbol, esym, sizeof esym))
        return brk_err_set(err, BRK_INVALID, 0, "symbol: too long");
    if (crypto) /* crypto has its own endpoint and no feed parameter */
        snprintf(path, sizeof path, "/v1beta3/crypto/us/latest/trades?symbols=%s", esym);
    else
        snprintf(path, sizeof path, "/v2/stocks/%s/trades/latest?feed=%s", esym, c->data_feed);
    brk_rc rc = http_call_at(c, c->data_url, "GET", path, NULL, &r, err);
    if (rc != BRK_OK)
        goto out;
    rc = parse_latest_trade(&r, symbol, crypto, out, time_ms);
    if (rc == BRK_NOT_FOUND)
        brk_err_set(err, rc, (int)r.status, "GET latest trade: no trade for %s", symbol);
    else if (rc != BRK_OK)
        brk_err_set(err, rc, (int)r.status, "GET latest trade: unparseable answer (HTTP %ld)",
                    r.status);
out:
    resp_free(&r);
    return rc;
}

static brk_rc alp_last_price(brk_conn *bc, const char *symbol, risk_price *out, brk_err *err)
{
    int64_t t = 0;
    return alp_last_trade(bc, symbol, out, &t, err);
}

bool brk_alpaca_url_ok(const char *url)
{
    return url && base_url_ok(url);
}

bool brk_alpaca_feed_ok(const char *feed)
{
    return feed && feed_ok(feed);
}

static void alp_destroy(brk_conn *bc)
{
    alp_conn *c = (alp_conn *)bc;
    for (size_t i = 0; i < c->n_idle; i++)
        curl_easy_cleanup(c->idle[i]);
    slist_wipe_free(c->hdr_get);
    slist_wipe_free(c->hdr_post);
    wipe_free(c->key_id, c->key_id_len + 1);
    wipe_free(c->secret, c->secret_len + 1);
    free(c->base_url);
    free(c->data_url);
    free(c->interface);
    free(c->ca_file);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static const struct brk_ops alpaca_ops = {
    .name = "alpaca",
    .submit = alp_submit,
    .cancel = alp_cancel,
    .get_by_client_order_id = alp_get,
    .list_open = alp_list_open,
    .account = alp_account,
    .positions = alp_positions,
    .destroy = alp_destroy,
    .last_price = alp_last_price,
    .get_by_broker_order_id = alp_get_by_id,
    .last_trade = alp_last_trade,
    .check = alp_check,
};

brk_rc brk_alpaca_connect(const brk_alpaca_config *cfg, const char *key_id, size_t key_id_len,
                          const unsigned char *secret, size_t secret_len, brk_conn **out,
                          brk_err *err)
{
    brk_err_clear(err);
    if (!out)
        return brk_err_set(err, BRK_INVALID, 0, "alpaca: missing output");
    *out = NULL;
    brk_alpaca_config def = {0};
    if (!cfg)
        cfg = &def;
    if (!cred_ok(key_id, key_id_len) || !cred_ok(secret, secret_len))
        return brk_err_set(err, BRK_INVALID, 0,
                           "alpaca: key id and secret must be 1..256 printable ASCII bytes");
    const char *base =
        cfg->base_url ? cfg->base_url : (cfg->live ? BRK_ALPACA_LIVE_URL : BRK_ALPACA_PAPER_URL);
    if (!base_url_ok(base))
        return brk_err_set(err, BRK_INVALID, 0,
                           "alpaca: base_url must be https://host[:port] (http only to loopback)");
    const char *data = cfg->data_url ? cfg->data_url : BRK_ALPACA_DATA_URL;
    if (!base_url_ok(data))
        return brk_err_set(err, BRK_INVALID, 0,
                           "alpaca: data_url must be https://host[:port] (http only to loopback)");
    const char *feed = cfg->data_feed ? cfg->data_feed : BRK_ALPACA_DATA_FEED;
    if (!feed_ok(feed))
        return brk_err_set(err, BRK_INVALID, 0,
                           "alpaca: data_feed must be 1..16 chars of [a-z0-9_]");
    if (cfg->connect_timeout_ms < 0 || cfg->timeout_ms < 0 || cfg->max_attempts < 0 ||
        cfg->max_attempts > 10 || cfg->backoff_ms < 0 || cfg->requests_per_min < 0 ||
        cfg->rate_wait_max_ms < 0)
        return brk_err_set(err, BRK_INVALID, 0, "alpaca: negative or excessive timeouts/retries");
    if (cfg->traceparent && *cfg->traceparent && !traceparent_ok(cfg->traceparent))
        return brk_err_set(err, BRK_INVALID, 0,
                           "alpaca: traceparent must be 00-<32 hex>-<16 hex>-<2 hex>, lower case");
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return brk_err_set(err, BRK_INTERNAL, 0, "alpaca: curl_global_init failed");

    brk_rc rc = BRK_INTERNAL;
    alp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return brk_err_set(err, BRK_INTERNAL, 0, "alpaca: mutex");
    }
    c->base.ops = &alpaca_ops;
    bool oom = false;
    c->base_url = dup_opt(base, &oom);
    c->data_url = dup_opt(data, &oom);
    c->interface = dup_opt(cfg->interface, &oom);
    c->ca_file = dup_opt(cfg->ca_file, &oom);
    if (oom)
        goto fail;
    char *urls[2] = {c->base_url, c->data_url};
    for (int i = 0; i < 2; i++) {
        size_t bl = strlen(urls[i]);
        if (bl && urls[i][bl - 1] == '/')
            urls[i][bl - 1] = '\0';
    }
    brk_copy(c->data_feed, sizeof c->data_feed, feed); /* fits: feed_ok */
    c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 5000;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
    c->max_attempts = cfg->max_attempts ? cfg->max_attempts : 3;
    c->backoff_ms = cfg->backoff_ms ? cfg->backoff_ms : 200;
    c->per_min = cfg->requests_per_min;
    c->background = cfg->background;
    c->rate_wait_max_ms = cfg->rate_wait_max_ms ? cfg->rate_wait_max_ms : 10000;
    c->shared = cfg->shared_budget && cfg->shared_budget->take ? cfg->shared_budget : NULL;
    SHA256((const unsigned char *)key_id, key_id_len, c->account);
    c->log = cfg->log;
    c->log_ctx = cfg->log_ctx;

    c->key_id = malloc(key_id_len + 1);
    c->secret = malloc(secret_len + 1);
    if (!c->key_id || !c->secret)
        goto fail;
    c->key_id_len = key_id_len;
    c->secret_len = secret_len;
    memcpy(c->key_id, key_id, key_id_len);
    c->key_id[key_id_len] = '\0';
    memcpy(c->secret, secret, secret_len);
    c->secret[secret_len] = '\0';

    struct curl_slist **lists[2] = {&c->hdr_get, &c->hdr_post};
    for (int i = 0; i < 2; i++) {
        if (!hdr_add(lists[i], "APCA-API-KEY-ID", c->key_id, key_id_len) ||
            !hdr_add(lists[i], "APCA-API-SECRET-KEY", c->secret, secret_len) ||
            !hdr_add(lists[i], "Accept", "application/json", 16))
            goto fail;
    }
    if (!hdr_add(&c->hdr_post, "Content-Type", "application/json", 16))
        goto fail;
    if (cfg->traceparent && *cfg->traceparent) {
        for (int i = 0; i < 2; i++)
            if (!hdr_add(lists[i], "traceparent", cfg->traceparent, strlen(cfg->traceparent)))
                goto fail;
    }
    brk_logf(c->log, c->log_ctx, BRK_LOG_INFO, "alpaca: conn ready for %s", c->base_url);
    *out = &c->base;
    return BRK_OK;
fail:
    alp_destroy(&c->base);
    return brk_err_set(err, rc, 0, "out of memory");
}
