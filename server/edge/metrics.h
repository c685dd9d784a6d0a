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
/* Values are doubles (edge_metric_set_double), e.g. process_cpu_seconds_total. Counter or
 * gauge only; the integer update functions ignore such a family. */
#define EDGE_METRIC_FLOAT 2u

typedef struct {
    const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]*; counters should end in _total */
    const char *help; /* one line; escaped on output */
    edge_metric_type type;
    const edge_label_def *labels; /* may be NULL when n_labels == 0 */
    size_t n_labels;              /* at most EDGE_METRIC_MAX_LABELS; "le" is reserved */
    const double *buckets;        /* histogram upper bounds, strictly increasing, finite */
    size_t n_buckets;             /* histogram: 1..32 (the +Inf bucket is implicit) */
    unsigned flags;               /* EDGE_METRIC_SPARSE | EDGE_METRIC_FLOAT */
    /* The first n_joint labels (0, or 2..n_labels) vary together: their value lists have the
     * same length and row i is (labels[0].values[i], labels[1].values[i], ...). Series exist
     * per row, not per product, so (service, method) pairs cost one series each; a lookup
     * matching no row lands in the "other" row (every joint label "other"). */
    size_t n_joint;
    /* Also rendered under this name (same type, labels and values; HELP prefixed with
     * "DEPRECATED, use <name>:"), for a name being retired. NULL = none. */
    const char *deprecated_alias;
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
void edge_metric_set_double(edge_metric *f, size_t series, double v); /* EDGE_METRIC_FLOAT */

/* Convenience for families with 0, 1 or 2 labels: resolve + add / set / observe. */
void edge_metric_inc0(edge_metric *f);
void edge_metric_inc1(edge_metric *f, const char *v1);
void edge_metric_inc2(edge_metric *f, const char *v1, const char *v2);
void edge_metric_observe1(edge_metric *f, const char *v1, double v);

/* Reads (tests, readiness): counter count, gauge value, histogram observation count. */
int64_t edge_metric_value(const edge_metric *f, size_t series);

/* fn(ctx) runs at the start of every render, before any value is read, so values that are
 * sampled rather than counted (/proc, another module's counters) are current in each scrape.
 * It may run on several threads at once. One hook per registry; set before rendering starts. */
void edge_metrics_on_render(edge_metrics *m, void (*fn)(void *ctx), void *ctx);

/* Renders the whole registry. Returns 0 and *out (malloc'd, NUL terminated, caller frees;
 * *len without the NUL), -1 on allocation failure. */
int edge_metrics_render(edge_metrics *m, char **out, size_t *len);

#define EDGE_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- the Tradewink families ---------------------------------------------------------- */

/*
 * RPC families carry go-grpc-prometheus's names and labels, so stock gRPC dashboards and
 * alerts work unchanged: grpc_type (unary, client_stream, server_stream, bidi_stream),
 * grpc_service ("tradewink.v1.Orders"), grpc_method ("SubmitOrder"), grpc_code (Go's
 * spelling: "OK", "InvalidArgument", ...). (type, service, method) is a joint label: one row
 * per route, one per served service for unknown methods of it, and one for everything else,
 * so an attacker's million distinct paths still land in a handful of series.
 * Domain families are tradewink_*. The tw_* names of the previous release are still rendered
 * (deprecated, for one release) so existing alerts keep working while they move.
 */
#define EDGE_GRPC_UNKNOWN "unknown" /* grpc_service / grpc_method of a path no route serves */

typedef enum {
    EDGE_GRPC_UNARY,
    EDGE_GRPC_CLIENT_STREAM,
    EDGE_GRPC_SERVER_STREAM,
    EDGE_GRPC_BIDI_STREAM
} edge_grpc_type;

/* "unary", "client_stream", "server_stream", "bidi_stream". */
const char *edge_grpc_type_name(edge_grpc_type t);
/* The grpc_code label of a gRPC status code 0..16 ("OK", "Canceled", "InvalidArgument", ...,
 * as Go's codes.Code.String()); anything else is "Unknown". */
const char *edge_grpc_code_name(int code);

/* Label value lists for the standard families; NULL lists take the defaults noted. */
typedef struct {
    /* RPC rows (joint grpc_type, grpc_service, grpc_method), n_rpcs each. */
    const char *const *rpc_types;
    const char *const *rpc_services;
    const char *const *rpc_methods;
    size_t n_rpcs;
    const char *const *methods; /* deprecated tw_rpc_*: full paths "/pkg.Svc/Method" */
    size_t n_methods;
    const char *const *risk_rules; /* risk rule codes; default: none (all "other") */
    size_t n_risk_rules;
    const char *const *order_statuses; /* default: none (all "other") */
    size_t n_order_statuses;
    const char *const *store_kinds; /* default: connect, query, constraint, timeout */
    size_t n_store_kinds;
    const char *const *jwks_results; /* default: ok, error, not_modified, stale */
    size_t n_jwks_results;
    /* tradewink_build_info labels; NULL -> "unknown". */
    const char *version, *revision, *grpc_version;
} edge_tw_metrics_spec;

/* Handles owned by the registry. rpc families share the row labels, so one series index
 * (edge_metric_series on started) serves started, handling, msg_*, in_flight. */
typedef struct {
    edge_metric *started;           /* grpc_server_started_total{rpc} */
    edge_metric *handled;           /* grpc_server_handled_total{rpc,grpc_code} */
    edge_metric *handling;          /* grpc_server_handling_seconds{rpc} histogram */
    edge_metric *msg_received;      /* grpc_server_msg_received_total{rpc} */
    edge_metric *msg_sent;          /* grpc_server_msg_sent_total{rpc} */
    edge_metric *in_flight;         /* tradewink_grpc_server_in_flight_calls{rpc} gauge */
    edge_metric *rpc_calls;         /* DEPRECATED tw_rpc_calls_total{method,code}; tw_code_name */
    edge_metric *rpc_latency;       /* DEPRECATED tw_rpc_latency_seconds{method} histogram */
    edge_metric *ratelimit_rejects; /* tradewink_ratelimit_rejections_total{class} */
    edge_metric *risk_rejects;      /* tradewink_risk_rejections_total{rule} */
    edge_metric *breaker_trips;     /* tradewink_breaker_trips_total */
    edge_metric *position_drifts;   /* tradewink_position_drifts_total */
    edge_metric *orders;            /* tradewink_orders_total{status} */
    edge_metric *key_decryptions;   /* tradewink_key_decryptions_total{result}: ok, error */
    edge_metric *store_errors;      /* tradewink_store_errors_total{kind} */
    edge_metric *store_statements;  /* tradewink_store_statements_total */
    edge_metric *store_commits;     /* tradewink_store_commits_total */
    edge_metric *ledger_books;      /* tradewink_ledger_books gauge */
    edge_metric *ledger_book_bytes; /* tradewink_ledger_book_bytes gauge */
    edge_metric *ledger_takes;      /* tradewink_ledger_book_takes_total{result}: hit, miss */
    edge_metric *ledger_reads;   /* tradewink_ledger_reads_total{answered_from}: memory, database */
    edge_metric *alpaca_streams; /* tradewink_alpaca_streams{state}: up, down */
    edge_metric *jwks_fetches;   /* tradewink_jwks_fetches_total{result} */
    edge_metric *redis_fallback; /* tradewink_redis_fallback gauge 0/1 */
    edge_metric *auth_failures;  /* tradewink_auth_failures_total */
    edge_metric *webhooks;       /* tradewink_webhook_requests_total{result} */
    edge_metric *build_info;     /* tradewink_build_info{version,revision,grpc_core_version} 1 */
} edge_tw_metrics;

/* Registers all of the above in m. Returns 0, or -1 with a reason in err. */
int edge_tw_metrics_register(edge_metrics *m, const edge_tw_metrics_spec *spec,
                             edge_tw_metrics *out, char *err, size_t errcap);

/* ---- process_* (the names every Prometheus client library exports) -------------------- */

typedef struct {
    edge_metric *cpu_seconds; /* process_cpu_seconds_total (user + system) */
    edge_metric *resident;    /* process_resident_memory_bytes */
    edge_metric *virtual_mem; /* process_virtual_memory_bytes */
    edge_metric *open_fds;    /* process_open_fds */
    edge_metric *max_fds;     /* process_max_fds (RLIMIT_NOFILE soft limit) */
    edge_metric *start_time;  /* process_start_time_seconds (Unix time) */
} edge_proc_metrics;

/* Registers the families (values read on each edge_proc_metrics_update). 0 or -1 + err. */
int edge_proc_metrics_register(edge_metrics *m, edge_proc_metrics *out, char *err, size_t errcap);
/* Reads /proc/self (stat, statm, fd) and getrlimit; a value that cannot be read keeps its
 * last one. Works under systemd's ProcSubset=pid (no /proc/stat needed: the start time
 * comes from CLOCK_BOOTTIME). Thread-safe. */
void edge_proc_metrics_update(const edge_proc_metrics *p);

#endif
