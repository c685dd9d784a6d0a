/*
 * Ops HTTP server on libmicrohttpd.
 *
 * Design: we create, bind and listen on the socket ourselves (so port 0 works and the bound
 * port is known) and hand it to MHD, which runs an internal thread pool. The access handler
 * routes on the first call. A webhook POST gets a small per-request context that
 * accumulates the body up to the verifier's cap: a Content-Length over the cap is answered
 * 413 before any body is read; a chunked body that grows past the cap is discarded (never
 * buffered) and answered 413 when it ends, and a sender that keeps streaming past four times
 * the cap is disconnected. Only the final call verifies and dispatches.
 *
 * Invariants: the handler only ever sees verified bytes; no body or header value is logged;
 * responses carry fixed short texts.
 */
#include "edge/ops_http.h"

#include "core/log.h"

#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connection budget of the ops port (see edge_ops_start). */
#define OPS_MAX_CONNECTIONS 1024
#define OPS_PER_IP_CONNECTIONS 16
#define OPS_IDLE_TIMEOUT_S 5

struct edge_ops {
    edge_ops_config cfg;
    struct MHD_Daemon *d;
    uint16_t port;
    size_t max_body;
};

typedef struct {
    char source[EDGE_WH_SOURCE_MAX + 1];
    uint8_t *buf;
    size_t len;
    size_t discarded;
    int too_large;
} wh_req;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text,
                             const char *ctype, const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
                                                             MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            ctype ? ctype : "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_metrics(edge_ops *ops, struct MHD_Connection *c)
{
    char *text = NULL;
    size_t len = 0;
    struct MHD_Response *r;
    enum MHD_Result ret;
    if (!ops->cfg.metrics || edge_metrics_render(ops->cfg.metrics, &text, &len) != 0)
        return reply(c, 503, "metrics unavailable\n", NULL, NULL);
    r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, EDGE_METRICS_CONTENT_TYPE);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_ready(edge_ops *ops, struct MHD_Connection *c)
{
    char reason[160] = "";
    char body[200];
    struct MHD_Response *r;
    enum MHD_Result ret;
    if (!ops->cfg.ready || ops->cfg.ready(ops->cfg.ready_ctx, reason, sizeof reason))
        return reply(c, 200, "ready\n", NULL, NULL);
    reason[sizeof reason - 1] = '\0';
    for (char *p = reason; *p; p++) /* keep the reason one printable line */
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = ' ';
    snprintf(body, sizeof body, "not ready: %s\n", reason[0] ? reason : "unspecified");
    r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    ret = MHD_queue_response(c, 503, r);
    MHD_destroy_response(r);
    return ret;
}

static int source_accepted(const edge_ops *ops, const char *name)
{
    if (!edge_wh_valid_source(name))
        return 0;
    if (!ops->cfg.webhook_sources)
        return 1;
    for (size_t i = 0; i < ops->cfg.n_webhook_sources; i++)
        if (strcmp(ops->cfg.webhook_sources[i], name) == 0)
            return 1;
    return 0;
}

static void count_result(edge_ops *ops, edge_wh_result r)
{
    if (ops->cfg.webhook_counter)
        edge_metric_inc1(ops->cfg.webhook_counter, edge_wh_result_name(r));
}

static enum MHD_Result webhook_refuse(edge_ops *ops, struct MHD_Connection *c, const char *source,
                                      edge_wh_result r)
{
    static const char *const texts[EDGE_WH_RESULT_COUNT] = {
        "ok\n",           "duplicate\n",    "in progress\n",
        "unauthorized\n", "bad request\n",  "unauthorized\n",
        "unauthorized\n", "unauthorized\n", "payload too large\n",
        "busy\n"};
    int status = edge_wh_http_status(r);
    count_result(ops, r);
    tw_logf(status >= 500 ? TW_LOG_WARN : TW_LOG_INFO, "webhook", "source=%s result=%s status=%d",
            source, edge_wh_result_name(r), status);
    return reply(c, (unsigned)status, texts[r], NULL, NULL);
}

static const char *hdr(struct MHD_Connection *c, const char *name, size_t *len)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    *len = v ? strlen(v) : 0;
    return v;
}

static enum MHD_Result webhook_finish(edge_ops *ops, struct MHD_Connection *c, wh_req *q)
{
    edge_wh_headers h;
    edge_wh_result r;
    int status;
    static const uint8_t empty[1] = {0};
    if (q->too_large)
        return webhook_refuse(ops, c, q->source, EDGE_WH_TOO_LARGE);
    if (!ops->cfg.webhooks)
        return webhook_refuse(ops, c, q->source, EDGE_WH_NO_SECRET);
    h.id = hdr(c, "webhook-id", &h.id_len);
    h.timestamp = hdr(c, "webhook-timestamp", &h.timestamp_len);
    h.signature = hdr(c, "webhook-signature", &h.signature_len);
    r = edge_wh_verify(ops->cfg.webhooks, q->source, &h, q->buf ? q->buf : empty, q->len);
    if (r != EDGE_WH_OK)
        return webhook_refuse(ops, c, q->source, r);
    status = ops->cfg.on_webhook ? ops->cfg.on_webhook(ops->cfg.webhook_ctx, q->source, h.id,
                                                       q->buf ? q->buf : empty, q->len)
                                 : 503;
    if (status < 200 || status > 599)
        status = 500;
    if (status >= 500)
        edge_wh_release(ops->cfg.webhooks, q->source, h.id, h.id_len);
    else
        edge_wh_commit(ops->cfg.webhooks, q->source, h.id, h.id_len);
    count_result(ops, r);
    tw_logf(status >= 500 ? TW_LOG_WARN : TW_LOG_INFO, "webhook", "source=%s result=%s status=%d",
            q->source, edge_wh_result_name(r), status);
    return reply(c, (unsigned)status,
                 status < 300   ? "ok\n"
                 : status < 500 ? "refused\n"
                                : "temporarily unavailable\n",
                 NULL, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    edge_ops *ops = cls;
    wh_req *q = *con_cls;
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    (void)version;
    if (q) {
        if (*upload_data_size) {
            size_t n = *upload_data_size;
            *upload_data_size = 0;
            if (!q->too_large && q->len + n <= ops->max_body) {
                if (!q->buf) {
                    q->buf = malloc(ops->max_body ? ops->max_body : 1);
                    if (!q->buf)
                        return MHD_NO;
                }
                memcpy(q->buf + q->len, upload_data, n);
                q->len += n;
            } else {
                q->too_large = 1;
                q->discarded += n;
                if (q->discarded > 4 * ops->max_body)
                    return MHD_NO; /* stop reading an endless stream */
            }
            return MHD_YES;
        }
        return webhook_finish(ops, c, q);
    }
    if (strcmp(url, "/healthz") == 0)
        return get ? reply(c, 200, "ok\n", NULL, NULL)
                   : reply(c, 405, "method not allowed\n", NULL, "GET, HEAD");
    if (strcmp(url, "/readyz") == 0)
        return get ? reply_ready(ops, c) : reply(c, 405, "method not allowed\n", NULL, "GET, HEAD");
    if (strcmp(url, "/metrics") == 0)
        return get ? reply_metrics(ops, c)
                   : reply(c, 405, "method not allowed\n", NULL, "GET, HEAD");
    if (strncmp(url, "/webhooks/", 10) == 0 && source_accepted(ops, url + 10)) {
        const char *cl;
        if (strcmp(method, "POST") != 0)
            return reply(c, 405, "method not allowed\n", NULL, "POST");
        q = calloc(1, sizeof *q);
        if (!q)
            return MHD_NO;
        memcpy(q->source, url + 10, strlen(url + 10) + 1);
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            unsigned long long n = strtoull(cl, &end, 10);
            if (end != cl && *end == '\0' && n > ops->max_body) {
                free(q);
                return webhook_refuse(ops, c, url + 10, EDGE_WH_TOO_LARGE);
            }
        }
        *con_cls = q;
        return MHD_YES;
    }
    return reply(c, 404, "not found\n", NULL, NULL);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    wh_req *q = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (q) {
        free(q->buf);
        free(q);
        *con_cls = NULL;
    }
}

static int split_listen(const char *listen, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;
    size_t hl;
    if (!listen || !*listen)
        return -1;
    if (listen[0] == '[') {
        const char *rb = strchr(listen, ']');
        if (!rb || rb[1] != ':')
            return -1;
        hl = (size_t)(rb - listen - 1);
        if (hl >= hcap)
            return -1;
        memcpy(host, listen + 1, hl);
        host[hl] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - listen);
        if (hl >= hcap || memchr(listen, ':', hl))
            return -1;
        memcpy(host, listen, hl);
        host[hl] = '\0';
    }
    if (!colon[1] || strlen(colon + 1) >= pcap ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -1;
    memcpy(port, colon + 1, strlen(colon + 1) + 1);
    return host[0] ? 0 : -1;
}

int edge_ops_start(const edge_ops_config *cfg, edge_ops **out, char *err, size_t errcap)
{
    char host[256], port[8];
    struct addrinfo hints, *ai = NULL;
    edge_ops *ops = NULL;
    int fd = -1, rc = -1, one = 1, gai;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *out = NULL;
    if (split_listen(cfg->listen, host, sizeof host, port, sizeof port) != 0 ||
        strtol(port, NULL, 10) > 65535) {
        snprintf(err, errcap, "TW_OPS_LISTEN must be HOST:PORT or [V6]:PORT");
        goto out;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, errcap, "TW_OPS_LISTEN: cannot resolve host: %s", gai_strerror(gai));
        goto out;
    }
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 256) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(err, errcap, "TW_OPS_LISTEN: cannot listen on %s:%s", host, port);
        goto out;
    }
    ops = calloc(1, sizeof *ops);
    if (!ops) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    ops->cfg = *cfg;
    ops->cfg.listen = NULL;
    ops->max_body = cfg->webhooks ? edge_wh_max_body(cfg->webhooks) : (size_t)256 * 1024;
    ops->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    /* Slow clients: MHD's timeout only counts idle time, so a client sending one header line
     * a second holds its connection forever. With one shared cap, 256 such connections from
     * anywhere made /healthz and /readyz unreachable (the platform's checks then fail). So
     * each peer address gets at most OPS_PER_IP_CONNECTIONS, and the total cap is far above
     * what the prober, the scraper and webhook senders need together. */
    ops->d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL, on_request, ops, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(cfg->threads ? cfg->threads : 2),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)OPS_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)OPS_PER_IP_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)OPS_IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!ops->d) {
        snprintf(err, errcap, "ops HTTP server failed to start");
        goto out;
    }
    fd = -1; /* owned by MHD now */
    tw_logf(TW_LOG_INFO, "ops_listen", "ops HTTP on %s port %u", host, (unsigned)ops->port);
    *out = ops;
    ops = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (ai)
        freeaddrinfo(ai);
    free(ops);
    return rc;
}

uint16_t edge_ops_port(const edge_ops *ops)
{
    return ops->port;
}

void edge_ops_stop(edge_ops *ops)
{
    if (!ops)
        return;
    MHD_stop_daemon(ops->d);
    free(ops);
}
