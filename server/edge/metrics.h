/*
 * edge_metrics: a fixed-shape metrics registry rendered in the Prometheus text exposition
 * format 0.0.4.
 *
 * Every family (counter, gauge, histogram) is registered at start with its label names and
 * the complete list of values each label may take; all series are allocated then, so the hot
 * path is a lock-free atomic add on a precomputed slot and cardinality is bounded by
 * construction. A value outside the registered list lands in an implicit "other" value
 * (rendered only once non-zero). Registration is not thread-safe: register everything before
 * other threads update or render. Updates and rendering are thread-safe.
 */
#ifndef EDGE_METRICS_H
#define EDGE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define EDGE_METRIC_MAX_LABELS 4
#define EDGE_METRIC_OTHER "other"

typedef enum { EDGE_METRIC_COUNTER, EDGE_METRIC_GAUGE, EDGE_METRIC_HISTOGRAM } edge_metric_type;

typedef struct edge_metrics edge_metrics;
typedef struct edge_metric edge_metric;

/* One label: its name and every value it may take (pointers are copied, strings too). */
typedef struct {
    const char *name;
    const char *const *values;
    size_t n_values;
} edge_label_def;

/* Render only series that were touched (for wide label products such as method x code). */
#define EDGE_METRIC_SPARSE 1u

typedef struct {
    const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]*; counters should end in _total */
    const char *help; /* one line; escaped on output */
    edge_metric_type type;
    const edge_label_def *labels; /* may be NULL when n_labels == 0 */
    size_t n_labels;              /* at most EDGE_METRIC_MAX_LABELS; "le" is reserved */
    const double *buckets;        /* histogram upper bounds, strictly increasing, finite */
    size_t n_buckets;             /* histogram: 1..32 (the +Inf bucket is implicit) */
    unsigned flags;               /* EDGE_METRIC_SPARSE */
} edge_metric_def;

/* Returns a new empty registry (destroy with edge_metrics_destroy), NULL on allocation
 * failure. */
edge_metrics *edge_metrics_create(void);
/* Frees the registry and every family in it; handles become invalid. NULL is a no-op. */
void edge_metrics_destroy(edge_metrics *m);

/* Registers a family. Returns a handle owned by the registry, or NULL with a reason in err
 * (bad name, duplicate, reserved label, too many series, bad buckets). */
edge_metric *edge_metrics_register(edge_metrics *m, const edge_metric_def *def, char *err,
                                   size_t errcap);
/* Family by name, NULL when not registered. */
edge_metric *edge_metrics_find(edge_metrics *m, const char *name);

/* Series index for label values (values[i] for label i; NULL or unknown -> "other"). Resolve
 * once and keep the index when the call site is hot. */
size_t edge_metric_series(const edge_metric *f, const char *const *values);

/* Hot path (lock-free). Wrong-type calls are ignored. */
void edge_metric_add(edge_metric *f, size_t series, uint64_t n);      /* counter */
void edge_metric_set(edge_metric *f, size_t series, int64_t v);       /* gauge */
void edge_metric_gauge_add(edge_metric *f, size_t series, int64_t d); /* gauge */
void edge_metric_observe(edge_metric *f, size_t series, double v);    /* histogram */

/* Convenience for families with 0, 1 or 2 labels: resolve + add / set / observe. */
void edge_metric_inc0(edge_metric *f);
void edge_metric_inc1(edge_metric *f, const char *v1);
void edge_metric_inc2(edge_metric *f, const char *v1, const char *v2);
void edge_metric_observe1(edge_metric *f, const char *v1, double v);

/* Reads (tests, readiness): counter count, gauge value, histogram observation count. */
int64_t edge_metric_value(const edge_metric *f, size_t series);

/* Renders the whole registry. Returns 0 and *out (malloc'd, NUL terminated, caller frees;
 * *len without the NUL), -1 on allocation failure. */
int edge_metrics_render(edge_metrics *m, char **out, size_t *len);

#define EDGE_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- the Tradewink families ---------------------------------------------------------- */

/* Label value lists for the standard families; NULL lists take the defaults noted. */
typedef struct {
    const char *const *methods; /* rpc method names, e.g. "/tradewink.v1.Orders/SubmitOrder" */
    size_t n_methods;
    const char *const *risk_rules; /* risk rule codes; default: none (all "other") */
    size_t n_risk_rules;
    const char *const *store_kinds; /* default: connect, query, constraint, timeout */
    size_t n_store_kinds;
    const char *const *jwks_results; /* default: ok, error, not_modified, stale */
    size_t n_jwks_results;
} edge_tw_metrics_spec;

/* Handles owned by the registry. */
typedef struct {
    edge_metric *rpc_calls;         /* tw_rpc_calls_total{method,code}; code = tw_code_name */
    edge_metric *rpc_latency;       /* tw_rpc_latency_seconds{method} histogram */
    edge_metric *ratelimit_rejects; /* tw_ratelimit_rejections_total{class} */
    edge_metric *risk_rejects;      /* tw_risk_rejections_total{rule} */
    edge_metric *breaker_trips;     /* tw_breaker_trips_total */
    edge_metric *store_errors;      /* tw_store_errors_total{kind} */
    edge_metric *jwks_fetches;      /* tw_jwks_fetches_total{result} */
    edge_metric *redis_fallback;    /* tw_redis_fallback gauge 0/1 */
    edge_metric *auth_failures;     /* tw_auth_failures_total */
    edge_metric *webhooks;          /* tw_webhook_requests_total{result} (edge_wh results) */
} edge_tw_metrics;

/* Registers all of the above in m. Returns 0, or -1 with a reason in err. */
int edge_tw_metrics_register(edge_metrics *m, const edge_tw_metrics_spec *spec,
                             edge_tw_metrics *out, char *err, size_t errcap);

#endif
