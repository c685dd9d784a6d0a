/*
 * edge_ops_http: the ops port end to end over loopback with libcurl. /healthz, /readyz in both
 * states, /metrics (content type and parseable families), 404/405, and webhook deliveries
 * with every refusal status, checking that the handler runs exactly once per accepted
 * delivery, receives the verified bytes verbatim, and is never called for a refused one.
 */
#include "edge/metrics.h"
#include "edge/ops_http.h"
#include "edge/webhook.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
#define NOW 1700000000
#define MAX_BODY 1024

static edge_ops *ops;
static edge_wh *wh;
static edge_metrics *reg;
static edge_tw_metrics tw;
static int port;
static atomic_int ready_flag;
static atomic_int handler_status;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int calls;
static char last_source[64];
static uint8_t last_body[MAX_BODY];
static size_t last_len;

static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return NOW;
}

static int ready_cb(void *ctx, char *reason, size_t cap)
{
    (void)ctx;
    if (atomic_load(&ready_flag))
        return 1;
    snprintf(reason, cap, "store unreachable");
    return 0;
}

static int webhook_cb(void *ctx, const char *source, const char *id, const uint8_t *body,
                      size_t len)
{
    (void)ctx;
    (void)id;
    pthread_mutex_lock(&mu);
    calls++;
    snprintf(last_source, sizeof last_source, "%s", source);
    last_len = len < sizeof last_body ? len : sizeof last_body;
    memcpy(last_body, body, last_len);
    pthread_mutex_unlock(&mu);
    return atomic_load(&handler_status);
}

static int handler_calls(void)
{
    pthread_mutex_lock(&mu);
    int n = calls;
    pthread_mutex_unlock(&mu);
    return n;
}

static int setup(void **state)
{
    static const char *const sources[] = {"broker", "signal"};
    char err[256];
    (void)state;
    edge_wh_config wcfg = {MAX_BODY, 0, fixed_clock, NULL};
    wh = edge_wh_create(&wcfg);
    reg = edge_metrics_create();
    edge_tw_metrics_spec spec = {0};
    if (!wh || !reg || edge_tw_metrics_register(reg, &spec, &tw, err, sizeof err) != 0)
        return -1;
    /* signal is a route but has no secret: fail-closed. */
    if (edge_wh_load_env(wh, "broker:" SECRET, err, sizeof err) != 0)
        return -1;
    atomic_store(&handler_status, 200);
    edge_ops_config cfg = {"127.0.0.1:0", 2,        reg,  wh,         sources, 2,
                           tw.webhooks,   ready_cb, NULL, webhook_cb, NULL};
    if (edge_ops_start(&cfg, &ops, err, sizeof err) != 0) {
        fprintf(stderr, "ops start: %s\n", err);
        return -1;
    }
    port = edge_ops_port(ops);
    return port > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    edge_ops_stop(ops);
    edge_ops_stop(NULL);
    edge_wh_destroy(wh);
    edge_metrics_destroy(reg);
    return 0;
}

/* ---- HTTP client ---------------------------------------------------------------------- */

typedef struct {
    char body[1 << 16];
    size_t len;
    char ctype[128];
    char allow[64];
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    size_t k = sz * n;
    if (r->len + k < sizeof r->body) {
        memcpy(r->body + r->len, p, k);
        r->len += k;
        r->body[r->len] = '\0';
    }
    return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    size_t k = sz * n;
    if (k > 7 && strncasecmp(p, "Allow: ", 7) == 0)
        snprintf(r->allow, sizeof r->allow, "%.*s", (int)(k - 9), p + 7);
    return k;
}

typedef struct {
    const uint8_t *data;
    size_t len, off;
} upload;

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
    upload *u = ud;
    size_t k = sz * n;
    if (k > u->len - u->off)
        k = u->len - u->off;
    if (k > 100)
        k = 100; /* many small chunks */
    memcpy(buf, u->data + u->off, k);
    u->off += k;
    return k;
}

static long http(const char *method, const char *path, struct curl_slist *hdrs, const uint8_t *body,
                 size_t blen, int chunked, resp *r)
{
    char url[256];
    long code = 0;
    upload u = {body, blen, 0};
    CURL *c = curl_easy_init();
    assert_non_null(c);
    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* send ../ verbatim */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    struct curl_slist *h = hdrs;
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        if (chunked) {
            h = curl_slist_append(h, "Transfer-Encoding: chunked");
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &u);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
        }
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        if (ct)
            snprintf(r->ctype, sizeof r->ctype, "%s", ct);
    } else {
        code = -(long)rc;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

static void test_healthz(void **state)
{
    resp r;
    (void)state;
    assert_int_equal(http("GET", "/healthz", NULL, NULL, 0, 0, &r), 200);
    assert_string_equal(r.body, "ok\n");
    assert_int_equal(http("POST", "/healthz", NULL, NULL, 0, 0, &r), 405);
    assert_string_equal(r.allow, "GET, HEAD");
}

static void test_readyz_follows_the_callback(void **state)
{
    resp r;
    (void)state;
    atomic_store(&ready_flag, 0);
    assert_int_equal(http("GET", "/readyz", NULL, NULL, 0, 0, &r), 503);
    assert_non_null(strstr(r.body, "store unreachable"));
    atomic_store(&ready_flag, 1);
    assert_int_equal(http("GET", "/readyz", NULL, NULL, 0, 0, &r), 200);
    assert_int_equal(http("DELETE", "/readyz", NULL, NULL, 0, 0, &r), 405);
}

static void test_metrics_endpoint(void **state)
{
    resp r;
    (void)state;
    edge_metric_inc0(tw.auth_failures);
    assert_int_equal(http("GET", "/metrics", NULL, NULL, 0, 0, &r), 200);
    assert_non_null(strstr(r.ctype, "text/plain"));
    assert_non_null(strstr(r.ctype, "version=0.0.4"));
    assert_non_null(strstr(r.body, "# TYPE tw_rpc_calls_total counter\n"));
    assert_non_null(strstr(r.body, "\ntw_auth_failures_total 1\n"));
    assert_int_equal(http("PUT", "/metrics", NULL, NULL, 0, 0, &r), 405);
}

static void test_unknown_paths_404(void **state)
{
    resp r;
    (void)state;
    static const char *const paths[] = {"/",
                                        "/nope",
                                        "/healthz/x",
                                        "/webhooks/",
                                        "/webhooks/unknown",
                                        "/webhooks/Broker",
                                        "/webhooks/broker/x",
                                        "/webhooks/../healthz"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        long code = http("POST", paths[i], NULL, (const uint8_t *)"x", 1, 0, &r);
        if (code != 404)
            fail_msg("%s: %ld, want 404", paths[i], code);
    }
    assert_int_equal(http("GET", "/webhooks/broker", NULL, NULL, 0, 0, &r), 405);
    assert_string_equal(r.allow, "POST");
}

static struct curl_slist *wh_headers(const char *id, const char *ts, const char *sig)
{
    char line[512];
    struct curl_slist *h = NULL;
    if (id) {
        snprintf(line, sizeof line, "webhook-id: %s", id);
        h = curl_slist_append(h, line);
    }
    if (ts) {
        snprintf(line, sizeof line, "webhook-timestamp: %s", ts);
        h = curl_slist_append(h, line);
    }
    if (sig) {
        snprintf(line, sizeof line, "webhook-signature: %s", sig);
        h = curl_slist_append(h, line);
    }
    return curl_slist_append(h, "Content-Type: application/json");
}

static void sign(const char *id, const char *ts, const uint8_t *body, size_t blen, char *out,
                 size_t cap)
{
    uint8_t key[64], mac[32];
    unsigned char b64[64];
    unsigned int mlen;
    const char *b = &SECRET[6];
    int klen = EVP_DecodeBlock(key, (const unsigned char *)b, (int)strlen(b)) - 1; /* one = */
    size_t n = strlen(id) + strlen(ts) + 2 + blen;
    uint8_t *content = malloc(n);
    assert_non_null(content);
    int k = snprintf((char *)content, n, "%s.%s.", id, ts);
    memcpy(content + k, body, blen);
    assert_non_null(HMAC(EVP_sha256(), key, klen, content, n, mac, &mlen));
    free(content);
    EVP_EncodeBlock(b64, mac, 32);
    snprintf(out, cap, "v1,%s", (const char *)b64);
}

static void test_webhook_accepted_once_and_replay_ignored(void **state)
{
    static const uint8_t body[] = "{\"event\":\"fill\",\"qty\":\"5\"}\0tail-after-nul";
    size_t blen = sizeof body - 1;
    char sig[128];
    resp r;
    (void)state;
    int before = handler_calls();
    sign("msg_ok_1", "1700000000", body, blen, sig, sizeof sig);
    assert_int_equal(http("POST", "/webhooks/broker", wh_headers("msg_ok_1", "1700000000", sig),
                          body, blen, 0, &r),
                     200);
    assert_int_equal(handler_calls(), before + 1);
    pthread_mutex_lock(&mu);
    assert_string_equal(last_source, "broker");
    assert_int_equal(last_len, blen);
    assert_memory_equal(last_body, body, blen); /* raw bytes, NUL included */
    pthread_mutex_unlock(&mu);
    /* Replay: 200, not dispatched again. */
    assert_int_equal(http("POST", "/webhooks/broker", wh_headers("msg_ok_1", "1700000000", sig),
                          body, blen, 0, &r),
                     200);
    assert_string_equal(r.body, "duplicate\n");
    assert_int_equal(handler_calls(), before + 1);
    /* Chunked upload of a valid delivery works too. */
    sign("msg_ok_2", "1700000000", body, blen, sig, sizeof sig);
    assert_int_equal(http("POST", "/webhooks/broker", wh_headers("msg_ok_2", "1700000000", sig),
                          body, blen, 1, &r),
                     200);
    assert_int_equal(handler_calls(), before + 2);
}

typedef struct {
    const char *name;
    const char *path;
    const char *id;
    const char *ts;
    int sig_mode;    /* 0 valid, 1 absent, 2 wrong, 3 raw "garbage", 4 valid for other body */
    size_t body_len; /* 0 = default body */
    int chunked;
    long want;
} refuse_case;

static const refuse_case refusals[] = {
    {"bad_signature", "/webhooks/broker", "msg_r1", "1700000000", 2, 0, 0, 401},
    {"missing_signature", "/webhooks/broker", "msg_r2", "1700000000", 1, 0, 0, 401},
    {"missing_id", "/webhooks/broker", NULL, "1700000000", 0, 0, 0, 400},
    {"missing_timestamp", "/webhooks/broker", "msg_r3", NULL, 0, 0, 0, 400},
    {"malformed_timestamp", "/webhooks/broker", "msg_r4", "17e8", 0, 0, 0, 400},
    {"malformed_signature", "/webhooks/broker", "msg_r5", "1700000000", 3, 0, 0, 400},
    {"stale_301s", "/webhooks/broker", "msg_r6", "1699999699", 0, 0, 0, 401},
    {"future_301s", "/webhooks/broker", "msg_r7", "1700000301", 0, 0, 0, 401},
    {"body_altered", "/webhooks/broker", "msg_r8", "1700000000", 4, 0, 0, 401},
    {"source_without_secret", "/webhooks/signal", "msg_r9", "1700000000", 0, 0, 0, 401},
    {"oversized_content_length", "/webhooks/broker", "msg_r10", "1700000000", 0, MAX_BODY + 1, 0,
     413},
    {"oversized_chunked", "/webhooks/broker", "msg_r11", "1700000000", 0, MAX_BODY * 3, 1, 413},
};

static void test_refused_deliveries_never_reach_the_handler(void **state)
{
    static uint8_t big[MAX_BODY * 3];
    static const uint8_t body[] = "{\"event\":\"canceled\"}";
    char sig[128];
    resp r;
    (void)state;
    memset(big, 'a', sizeof big);
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        const refuse_case *c = &refusals[i];
        const uint8_t *b = c->body_len ? big : body;
        size_t blen = c->body_len ? c->body_len : sizeof body - 1;
        const char *sigv = sig;
        int before = handler_calls();
        sign(c->id ? c->id : "x", c->ts ? c->ts : "1700000000", b, blen, sig, sizeof sig);
        if (c->sig_mode == 1)
            sigv = NULL;
        else if (c->sig_mode == 2)
            sigv = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
        else if (c->sig_mode == 3)
            sigv = "garbage";
        else if (c->sig_mode == 4)
            sign(c->id, c->ts, (const uint8_t *)"{\"event\":\"cancelled\"}", 21, sig, sizeof sig);
        long code = http("POST", c->path, wh_headers(c->id, c->ts, sigv), b, blen, c->chunked, &r);
        if (code != c->want)
            fail_msg("%s: status %ld, want %ld", c->name, code, c->want);
        if (handler_calls() != before)
            fail_msg("%s: handler was called for a refused delivery", c->name);
    }
}

static void test_handler_failure_lets_the_retry_in(void **state)
{
    static const uint8_t body[] = "{\"event\":\"expired\"}";
    char sig[128];
    resp r;
    (void)state;
    int before = handler_calls();
    sign("msg_retry", "1700000000", body, sizeof body - 1, sig, sizeof sig);
    atomic_store(&handler_status, 503);
    assert_int_equal(http("POST", "/webhooks/broker", wh_headers("msg_retry", "1700000000", sig),
                          body, sizeof body - 1, 0, &r),
                     503);
    atomic_store(&handler_status, 200);
    assert_int_equal(http("POST", "/webhooks/broker", wh_headers("msg_retry", "1700000000", sig),
                          body, sizeof body - 1, 0, &r),
                     200);
    assert_int_equal(handler_calls(), before + 2);
    /* A permanent refusal by the handler (4xx) uses the id up. */
    sign("msg_perm", "1700000000", body, sizeof body - 1, sig, sizeof sig);
    atomic_store(&handler_status, 422);
    assert_int_equal(http("POST", "/webhooks/broker", wh_headers("msg_perm", "1700000000", sig),
                          body, sizeof body - 1, 0, &r),
                     422);
    atomic_store(&handler_status, 200);
    assert_int_equal(http("POST", "/webhooks/broker", wh_headers("msg_perm", "1700000000", sig),
                          body, sizeof body - 1, 0, &r),
                     200);
    assert_string_equal(r.body, "duplicate\n");
    assert_int_equal(handler_calls(), before + 3);
}

static void test_webhook_results_are_counted(void **state)
{
    resp r;
    (void)state;
    assert_int_equal(http("GET", "/metrics", NULL, NULL, 0, 0, &r), 200);
    assert_non_null(strstr(r.body, "tw_webhook_requests_total{result=\"ok\"} "));
    assert_null(strstr(r.body, "tw_webhook_requests_total{result=\"bad_signature\"} 0\n"));
    assert_non_null(strstr(r.body, "tw_webhook_requests_total{result=\"duplicate\"} "));
    assert_null(strstr(r.body, "tw_webhook_requests_total{result=\"too_large\"} 0\n"));
}

static void test_bad_listen_addresses_refused(void **state)
{
    static const char *const bad[] = {
        "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:70000", "::1:80", "[::1]80"};
    char err[256];
    edge_ops *o = NULL;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        edge_ops_config cfg = {bad[i], 1, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL};
        if (edge_ops_start(&cfg, &o, err, sizeof err) == 0)
            fail_msg("listen '%s' should be refused", bad[i]);
        assert_null(o);
    }
    /* The port in use is refused with a clear error. */
    char taken[32];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", port);
    edge_ops_config cfg = {taken, 1, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL};
    assert_int_equal(edge_ops_start(&cfg, &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot listen"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_readyz_follows_the_callback),
        cmocka_unit_test(test_metrics_endpoint),
        cmocka_unit_test(test_unknown_paths_404),
        cmocka_unit_test(test_webhook_accepted_once_and_replay_ignored),
        cmocka_unit_test(test_refused_deliveries_never_reach_the_handler),
        cmocka_unit_test(test_handler_failure_lets_the_retry_in),
        cmocka_unit_test(test_webhook_results_are_counted),
        cmocka_unit_test(test_bad_listen_addresses_refused),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
