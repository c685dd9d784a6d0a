/*
 * edge_ops: the ops HTTP port (libmicrohttpd, internal thread pool).
 *
 * Routes:
 *   GET|HEAD /healthz           200 "ok" while the process runs
 *   GET|HEAD /readyz            200 "ready" when the readiness callback says so, else 503
 *                               with the callback's short reason
 *   GET|HEAD /metrics           the registry in Prometheus text 0.0.4
 *   POST /webhooks/{source}     Standard Webhooks verification (edge_wh), then the handler
 *                               with the verified raw body; a duplicate answers 200 without
 *                               calling the handler; every refusal leaves the handler uncalled
 *   anything else               404; a known path with another method 405 (with Allow)
 * Connections: at most 16 per peer address and 1024 in all (more are accepted and closed at
 * once), 5 s idle timeout; so slow clients from one address cannot starve the platform's
 * health checks from another.
 * Bodies and header values are never logged; one log line per webhook delivery names the
 * source, the result and the status.
 */
#ifndef EDGE_OPS_HTTP_H
#define EDGE_OPS_HTTP_H

#include "edge/metrics.h"
#include "edge/webhook.h"

#include <stddef.h>
#include <stdint.h>

/* Readiness: return 1 when ready; else 0 and a short reason in reason (cap bytes, NUL
 * terminated; it is sent to the client, so no secrets). Called from an HTTP thread. */
typedef int (*edge_ops_ready_fn)(void *ctx, char *reason, size_t cap);

/* Verified webhook: body (borrowed for the call) is exactly the bytes that were verified.
 * Return the HTTP status to answer: 2xx = handled, 4xx = refused for good (the id stays
 * used: replays are duplicates), 5xx = temporary failure (the id is released so the
 * sender's retry is accepted). Called from an HTTP thread; must be thread-safe. */
typedef int (*edge_ops_webhook_fn)(void *ctx, const char *source, const char *webhook_id,
                                   const uint8_t *body, size_t len);

typedef struct {
    const char *listen;                 /* "host:port" or "[v6]:port"; port 0 = any free port */
    unsigned threads;                   /* thread pool size; default 2 */
    edge_metrics *metrics;              /* borrowed; NULL -> /metrics answers 503 */
    edge_wh *webhooks;                  /* borrowed; NULL -> every webhook refused (401) */
    const char *const *webhook_sources; /* accepted {source} path names; NULL = any name
                                           matching [a-z0-9_-]{1,32} */
    size_t n_webhook_sources;
    edge_metric *webhook_counter; /* optional: counter with one label (edge_wh result) */
    edge_ops_ready_fn ready;      /* NULL = always ready */
    void *ready_ctx;
    edge_ops_webhook_fn on_webhook; /* NULL -> verified deliveries answer 503 */
    void *webhook_ctx;
} edge_ops_config;

typedef struct edge_ops edge_ops;

/* Binds, listens and starts serving. Returns 0 and *out (stop with edge_ops_stop), or -1
 * with a reason in err. The borrowed pointers in cfg must outlive the server. */
int edge_ops_start(const edge_ops_config *cfg, edge_ops **out, char *err, size_t errcap);
/* The bound TCP port (useful with port 0). */
uint16_t edge_ops_port(const edge_ops *ops);
/* Stops accepting, waits for in-flight requests, frees. NULL is a no-op. */
void edge_ops_stop(edge_ops *ops);

#endif
