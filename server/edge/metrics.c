/*
 * Metrics registry and Prometheus text exposition (format 0.0.4).
 *
 * Design: a family owns one flat array of series slots. A series index is a mixed-radix
 * number over its labels, each label having n_values + 1 digits (the last is "other"), so
 * every possible series exists from registration on and updates never allocate or lock.
 * Counters and gauges are one atomic 64-bit integer per series; a histogram series holds
 * per-bucket counts (not cumulative: each observation touches one bucket), a count and a
 * double sum kept as bits in an atomic integer updated by compare-and-swap. Rendering takes
 * relaxed snapshots and makes buckets cumulative; a scrape racing with updates may see a
 * _count that lags a bucket by in-flight observations, which Prometheus tolerates.
 *
 * Joint labels (n_joint) are one digit of that number whose values are rows of label tuples,
 * so a (service, method) pair costs one series instead of services x methods. FLOAT families
 * keep a double's bits in the same atomic slot.
 *
 * Invariants: names are validated at registration; label values are escaped (\\, \", \n)
 * and HELP text (\\, \n) on output; "other" series render only once touched.
 */
#include "edge/metrics.h"

#include "core/status.h"
#include "edge/ratelimit.h"
#include "edge/webhook.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUCKETS 32
#define MAX_SERIES 4096

typedef struct {
    char *name;
    char **values;
    size_t n; /* registered values; index n is "other" */
} m_label;

struct edge_metric {
    struct edge_metric *next;
    char *name;
    char *help;
    char *alias; /* deprecated second name, or NULL */
    edge_metric_type type;
    unsigned flags;
    m_label labels[EDGE_METRIC_MAX_LABELS];
    size_t n_labels;
    size_t n_joint; /* labels 0..n_joint-1 share one digit (their row) */
    size_t n_series;
    double bounds[MAX_BUCKETS];
    size_t n_bounds;
    atomic_llong *val;       /* counter / gauge: n_series; histogram: count per series */
    atomic_ullong *buckets;  /* histogram: n_series * (n_bounds + 1) */
    atomic_ullong *sum_bits; /* histogram: n_series */
    atomic_uchar *touched;   /* n_series */
};

struct edge_metrics {
    edge_metric *head, *tail;
    void (*on_render)(void *ctx);
    void *on_render_ctx;
};

edge_metrics *edge_metrics_create(void)
{
    return calloc(1, sizeof(edge_metrics));
}

static void metric_free(edge_metric *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_labels; i++) {
        for (size_t j = 0; f->labels[i].values && j < f->labels[i].n; j++)
            free(f->labels[i].values[j]);
        free(f->labels[i].values);
        free(f->labels[i].name);
    }
    free(f->name);
    free(f->alias);
    free(f->help);
    free(f->val);
    free(f->buckets);
    free(f->sum_bits);
    free(f->touched);
    free(f);
}

void edge_metrics_destroy(edge_metrics *m)
{
    if (!m)
        return;
    edge_metric *f = m->head;
    while (f) {
        edge_metric *n = f->next;
        metric_free(f);
        f = n;
    }
    free(m);
}

static int valid_name(const char *s, int allow_colon)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (allow_colon && c == ':') || (p > s && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

edge_metric *edge_metrics_find(edge_metrics *m, const char *name)
{
    for (edge_metric *f = m->head; f; f = f->next)
        if (strcmp(f->name, name) == 0 || (f->alias && strcmp(f->alias, name) == 0))
            return f;
    return NULL;
}

edge_metric *edge_metrics_register(edge_metrics *m, const edge_metric_def *def, char *err,
                                   size_t errcap)
{
    edge_metric *f = NULL, *res = NULL;
    if (!valid_name(def->name, 1) || strncmp(def->name, "__", 2) == 0) {
        snprintf(err, errcap, "invalid metric name");
        goto out;
    }
    if (edge_metrics_find(m, def->name)) {
        snprintf(err, errcap, "metric %s registered twice", def->name);
        goto out;
    }
    if (def->n_labels > EDGE_METRIC_MAX_LABELS || (def->n_labels && !def->labels)) {
        snprintf(err, errcap, "metric %s: too many labels", def->name);
        goto out;
    }
    if (def->n_joint == 1 || def->n_joint > def->n_labels) {
        snprintf(err, errcap, "metric %s: n_joint must be 0 or 2..n_labels", def->name);
        goto out;
    }
    if ((def->flags & EDGE_METRIC_FLOAT) && def->type == EDGE_METRIC_HISTOGRAM) {
        snprintf(err, errcap, "metric %s: a histogram cannot be FLOAT", def->name);
        goto out;
    }
    if (def->deprecated_alias &&
        (!valid_name(def->deprecated_alias, 1) || edge_metrics_find(m, def->deprecated_alias) ||
         strcmp(def->deprecated_alias, def->name) == 0)) {
        snprintf(err, errcap, "metric %s: invalid or duplicate alias", def->name);
        goto out;
    }
    f = calloc(1, sizeof *f);
    if (!f)
        goto oom;
    f->name = strdup(def->name);
    f->help = strdup(def->help ? def->help : "");
    f->alias = def->deprecated_alias ? strdup(def->deprecated_alias) : NULL;
    if (!f->name || !f->help || (def->deprecated_alias && !f->alias))
        goto oom;
    f->type = def->type;
    f->flags = def->flags;
    f->n_joint = def->n_joint;
    f->n_series = 1;
    for (size_t i = 0; i < def->n_labels; i++) {
        const edge_label_def *l = &def->labels[i];
        if (!valid_name(l->name, 0) || strcmp(l->name, "le") == 0 ||
            strncmp(l->name, "__", 2) == 0) {
            snprintf(err, errcap, "metric %s: invalid label name", def->name);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(def->labels[j].name, l->name) == 0) {
                snprintf(err, errcap, "metric %s: duplicate label", def->name);
                goto out;
            }
        f->labels[i].name = strdup(l->name);
        f->labels[i].values = calloc(l->n_values ? l->n_values : 1, sizeof(char *));
        f->n_labels = i + 1;
        if (!f->labels[i].name || !f->labels[i].values)
            goto oom;
        for (size_t j = 0; j < l->n_values; j++) {
            if (!l->values[j]) {
                snprintf(err, errcap, "metric %s: NULL label value", def->name);
                goto out;
            }
            f->labels[i].values[j] = strdup(l->values[j]);
            if (!f->labels[i].values[j])
                goto oom;
            f->labels[i].n = j + 1;
        }
        if (i > 0 && i < def->n_joint) {
            if (l->n_values != def->labels[0].n_values) {
                snprintf(err, errcap, "metric %s: joint labels need equal value lists", def->name);
                goto out;
            }
            continue; /* shares label 0's digit */
        }
        f->n_series *= l->n_values + 1;
        if (f->n_series > MAX_SERIES) {
            snprintf(err, errcap, "metric %s: more than %d series", def->name, MAX_SERIES);
            goto out;
        }
    }
    if (f->type == EDGE_METRIC_HISTOGRAM) {
        if (def->n_buckets < 1 || def->n_buckets > MAX_BUCKETS || !def->buckets) {
            snprintf(err, errcap, "metric %s: 1..%d buckets", def->name, MAX_BUCKETS);
            goto out;
        }
        for (size_t i = 0; i < def->n_buckets; i++) {
            if (!isfinite(def->buckets[i]) || (i && def->buckets[i] <= def->buckets[i - 1])) {
                snprintf(err, errcap, "metric %s: buckets must increase", def->name);
                goto out;
            }
            f->bounds[i] = def->buckets[i];
        }
        f->n_bounds = def->n_buckets;
        f->buckets = calloc(f->n_series * (f->n_bounds + 1), sizeof *f->buckets);
        f->sum_bits = calloc(f->n_series, sizeof *f->sum_bits);
        if (!f->buckets || !f->sum_bits)
            goto oom;
    } else if (f->type != EDGE_METRIC_COUNTER && f->type != EDGE_METRIC_GAUGE) {
        snprintf(err, errcap, "metric %s: unknown type", def->name);
        goto out;
    }
    f->val = calloc(f->n_series, sizeof *f->val);
    f->touched = calloc(f->n_series, sizeof *f->touched);
    if (!f->val || !f->touched)
        goto oom;
    if (m->tail)
        m->tail->next = f;
    else
        m->head = f;
    m->tail = f;
    res = f;
    f = NULL;
    goto out;
oom:
    snprintf(err, errcap, "out of memory");
out:
    metric_free(f);
    return res;
}

/* Digits label i contributes to the series number: 1 for the joint labels after the first. */
static size_t radix(const edge_metric *f, size_t i)
{
    return i > 0 && i < f->n_joint ? 1 : f->labels[i].n + 1;
}

/* The joint row whose every label matches values[0..n_joint-1]; labels[0].n when none. */
static size_t joint_row(const edge_metric *f, const char *const *values)
{
    for (size_t r = 0; values && r < f->labels[0].n; r++) {
        size_t k = 0;
        while (k < f->n_joint && values[k] && strcmp(f->labels[k].values[r], values[k]) == 0)
            k++;
        if (k == f->n_joint)
            return r;
    }
    return f->labels[0].n;
}

size_t edge_metric_series(const edge_metric *f, const char *const *values)
{
    size_t idx = 0;
    for (size_t i = 0; i < f->n_labels; i++) {
        const m_label *l = &f->labels[i];
        size_t j = l->n;
        const char *v = values ? values[i] : NULL;
        if (i == 0 && f->n_joint) {
            j = joint_row(f, values);
        } else if (i < f->n_joint) {
            j = 0;
        } else {
            for (size_t k = 0; v && k < l->n; k++)
                if (strcmp(l->values[k], v) == 0) {
                    j = k;
                    break;
                }
        }
        idx = idx * radix(f, i) + j;
    }
    return idx;
}

/* Value index of every label of series s (joint labels all get their row). */
static void decode_series(const edge_metric *f, size_t s, size_t idx[EDGE_METRIC_MAX_LABELS])
{
    memset(idx, 0, EDGE_METRIC_MAX_LABELS * sizeof(idx[0]));
    for (size_t i = f->n_labels; i-- > 0;) {
        idx[i] = s % radix(f, i);
        s /= radix(f, i);
    }
    for (size_t i = 1; i < f->n_joint && i < f->n_labels; i++)
        idx[i] = idx[0];
}

void edge_metric_add(edge_metric *f, size_t series, uint64_t n)
{
    if (!f || f->type != EDGE_METRIC_COUNTER || (f->flags & EDGE_METRIC_FLOAT) ||
        series >= f->n_series)
        return;
    atomic_fetch_add_explicit(&f->val[series], (long long)n, memory_order_relaxed);
    atomic_store_explicit(&f->touched[series], 1, memory_order_relaxed);
}

void edge_metric_set(edge_metric *f, size_t series, int64_t v)
{
    if (!f || f->type != EDGE_METRIC_GAUGE || (f->flags & EDGE_METRIC_FLOAT) ||
        series >= f->n_series)
        return;
    atomic_store_explicit(&f->val[series], v, memory_order_relaxed);
    atomic_store_explicit(&f->touched[series], 1, memory_order_relaxed);
}

void edge_metric_gauge_add(edge_metric *f, size_t series, int64_t d)
{
    if (!f || f->type != EDGE_METRIC_GAUGE || (f->flags & EDGE_METRIC_FLOAT) ||
        series >= f->n_series)
        return;
    atomic_fetch_add_explicit(&f->val[series], d, memory_order_relaxed);
    atomic_store_explicit(&f->touched[series], 1, memory_order_relaxed);
}

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

void edge_metric_observe(edge_metric *f, size_t series, double v)
{
    size_t b = 0;
    if (!f || f->type != EDGE_METRIC_HISTOGRAM || series >= f->n_series || isnan(v))
        return;
    while (b < f->n_bounds && v > f->bounds[b])
        b++;
    atomic_fetch_add_explicit(&f->buckets[series * (f->n_bounds + 1) + b], 1, memory_order_relaxed);
    unsigned long long old = atomic_load_explicit(&f->sum_bits[series], memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&f->sum_bits[series], &old, dbits(bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    atomic_fetch_add_explicit(&f->val[series], 1, memory_order_relaxed);
    atomic_store_explicit(&f->touched[series], 1, memory_order_relaxed);
}

void edge_metric_set_double(edge_metric *f, size_t series, double v)
{
    if (!f || !(f->flags & EDGE_METRIC_FLOAT) || series >= f->n_series)
        return;
    atomic_store_explicit(&f->val[series], (long long)dbits(v), memory_order_relaxed);
    atomic_store_explicit(&f->touched[series], 1, memory_order_relaxed);
}

void edge_metric_inc0(edge_metric *f)
{
    if (f)
        edge_metric_add(f, 0, 1);
}

void edge_metric_inc1(edge_metric *f, const char *v1)
{
    const char *v[EDGE_METRIC_MAX_LABELS] = {v1, NULL, NULL, NULL};
    if (f)
        edge_metric_add(f, edge_metric_series(f, v), 1);
}

void edge_metric_inc2(edge_metric *f, const char *v1, const char *v2)
{
    const char *v[EDGE_METRIC_MAX_LABELS] = {v1, v2, NULL, NULL};
    if (f)
        edge_metric_add(f, edge_metric_series(f, v), 1);
}

void edge_metric_observe1(edge_metric *f, const char *v1, double v)
{
    const char *vals[EDGE_METRIC_MAX_LABELS] = {v1, NULL, NULL, NULL};
    if (f)
        edge_metric_observe(f, edge_metric_series(f, vals), v);
}

int64_t edge_metric_value(const edge_metric *f, size_t series)
{
    if (!f || series >= f->n_series)
        return 0;
    long long v = atomic_load_explicit(&f->val[series], memory_order_relaxed);
    if (f->flags & EDGE_METRIC_FLOAT)
        return (int64_t)bitsd((uint64_t)v);
    return v;
}

void edge_metrics_on_render(edge_metrics *m, void (*fn)(void *ctx), void *ctx)
{
    m->on_render = fn;
    m->on_render_ctx = ctx;
}

/* ---- rendering ------------------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* Escapes backslash and newline, and the double quote when in_label. */
static void sb_escaped(sbuf *b, const char *s, int in_label)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            sb_put(b, "\\\\", 2);
        else if (*p == '\n')
            sb_put(b, "\\n", 2);
        else if (*p == '"' && in_label)
            sb_put(b, "\\\"", 2);
        else
            sb_put(b, p, 1);
    }
}

static void fmt_double(char *out, size_t cap, double d)
{
    if (isinf(d)) {
        snprintf(out, cap, "%s", d > 0 ? "+Inf" : "-Inf");
        return;
    }
    snprintf(out, cap, "%.15g", d);
    if (strtod(out, NULL) != d)
        snprintf(out, cap, "%.17g", d);
}

/* Writes {a="x",b="y"[,le="..."]} for series s; nothing when there are no labels. */
static void sb_labels(sbuf *b, const edge_metric *f, size_t s, const char *le)
{
    size_t idx[EDGE_METRIC_MAX_LABELS];
    if (f->n_labels == 0 && !le)
        return;
    decode_series(f, s, idx);
    sb_put(b, "{", 1);
    for (size_t i = 0; i < f->n_labels; i++) {
        const m_label *l = &f->labels[i];
        if (i)
            sb_put(b, ",", 1);
        sb_str(b, l->name);
        sb_put(b, "=\"", 2);
        sb_escaped(b, idx[i] == l->n ? EDGE_METRIC_OTHER : l->values[idx[i]], 1);
        sb_put(b, "\"", 1);
    }
    if (le) {
        if (f->n_labels)
            sb_put(b, ",", 1);
        sb_put(b, "le=\"", 4);
        sb_str(b, le);
        sb_put(b, "\"", 1);
    }
    sb_put(b, "}", 1);
}

static int series_has_other(const edge_metric *f, size_t s)
{
    size_t idx[EDGE_METRIC_MAX_LABELS];
    decode_series(f, s, idx);
    for (size_t i = 0; i < f->n_labels; i++)
        if (idx[i] == f->labels[i].n)
            return 1;
    return 0;
}

/* One family under name (its own, or its deprecated alias with a HELP that says so). */
static void render_family(sbuf *b, const edge_metric *f, const char *name)
{
    static const char *const tnames[] = {"counter", "gauge", "histogram"};
    char num[64];
    sb_str(b, "# HELP ");
    sb_str(b, name);
    sb_put(b, " ", 1);
    if (name != f->name) {
        sb_str(b, "DEPRECATED, use ");
        sb_str(b, f->name);
        sb_str(b, ": ");
    }
    sb_escaped(b, f->help, 0);
    sb_str(b, "\n# TYPE ");
    sb_str(b, name);
    sb_put(b, " ", 1);
    sb_str(b, tnames[f->type]);
    sb_put(b, "\n", 1);
    for (size_t s = 0; s < f->n_series; s++) {
        int touched = atomic_load_explicit(&f->touched[s], memory_order_relaxed);
        if (!touched && ((f->flags & EDGE_METRIC_SPARSE) || series_has_other(f, s)))
            continue;
        if (f->type != EDGE_METRIC_HISTOGRAM) {
            long long v = atomic_load_explicit(&f->val[s], memory_order_relaxed);
            sb_str(b, name);
            sb_labels(b, f, s, NULL);
            if (f->flags & EDGE_METRIC_FLOAT) {
                fmt_double(num, sizeof num, bitsd((uint64_t)v));
                sb_put(b, " ", 1);
                sb_str(b, num);
                sb_put(b, "\n", 1);
            } else {
                snprintf(num, sizeof num, " %lld\n", v);
                sb_str(b, num);
            }
            continue;
        }
        uint64_t cum = 0;
        for (size_t k = 0; k <= f->n_bounds; k++) {
            char le[40];
            cum +=
                atomic_load_explicit(&f->buckets[s * (f->n_bounds + 1) + k], memory_order_relaxed);
            if (k < f->n_bounds)
                fmt_double(le, sizeof le, f->bounds[k]);
            else
                snprintf(le, sizeof le, "+Inf");
            sb_str(b, name);
            sb_str(b, "_bucket");
            sb_labels(b, f, s, le);
            snprintf(num, sizeof num, " %llu\n", (unsigned long long)cum);
            sb_str(b, num);
        }
        /* _count is the +Inf bucket of the same snapshot, so the two always agree. */
        sb_str(b, name);
        sb_str(b, "_sum");
        sb_labels(b, f, s, NULL);
        fmt_double(num, sizeof num - 2,
                   bitsd(atomic_load_explicit(&f->sum_bits[s], memory_order_relaxed)));
        sb_put(b, " ", 1);
        sb_str(b, num);
        sb_put(b, "\n", 1);
        sb_str(b, name);
        sb_str(b, "_count");
        sb_labels(b, f, s, NULL);
        snprintf(num, sizeof num, " %llu\n", (unsigned long long)cum);
        sb_str(b, num);
    }
}

int edge_metrics_render(edge_metrics *m, char **out, size_t *len)
{
    sbuf b = {0};
    sb_put(&b, "", 0);
    if (m->on_render)
        m->on_render(m->on_render_ctx);
    for (const edge_metric *f = m->head; f; f = f->next) {
        render_family(&b, f, f->name);
        if (f->alias)
            render_family(&b, f, f->alias);
    }
    if (b.oom) {
        free(b.p);
        *out = NULL;
        return -1;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return 0;
}

/* ---- Tradewink families --------------------------------------------------------------- */

const char *edge_grpc_type_name(edge_grpc_type t)
{
    switch (t) {
    case EDGE_GRPC_UNARY:
        return "unary";
    case EDGE_GRPC_CLIENT_STREAM:
        return "client_stream";
    case EDGE_GRPC_SERVER_STREAM:
        return "server_stream";
    case EDGE_GRPC_BIDI_STREAM:
        return "bidi_stream";
    }
    return "unary";
}

const char *edge_grpc_code_name(int code)
{
    static const char *const names[17] = {
        "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
        "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
        "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
        "DataLoss", "Unauthenticated"};
    return code >= 0 && code <= 16 ? names[code] : "Unknown";
}

int edge_tw_metrics_register(edge_metrics *m, const edge_tw_metrics_spec *spec,
                             edge_tw_metrics *out, char *err, size_t errcap)
{
    static const char *const d_store[] = {"connect", "query", "constraint", "timeout"};
    static const char *const d_jwks[] = {"ok", "error", "not_modified", "stale"};
    static const char *const decrypt_results[] = {"ok", "error"};
    static const double lat_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    const size_t n_lat = sizeof lat_buckets / sizeof lat_buckets[0];
    const char *codes[17], *gcodes[17];
    const char *classes[EDGE_RL_CLASS_COUNT];
    const char *whres[EDGE_WH_RESULT_COUNT];
    for (int i = 0; i < 17; i++) {
        codes[i] = tw_code_name((tw_code)i);
        gcodes[i] = edge_grpc_code_name(i);
    }
    for (int i = 0; i < EDGE_RL_CLASS_COUNT; i++)
        classes[i] = edge_rl_class_name((edge_rl_class)i);
    for (int i = 0; i < EDGE_WH_RESULT_COUNT; i++)
        whres[i] = edge_wh_result_name((edge_wh_result)i);
    const char *ver[1] = {spec->version ? spec->version : "unknown"};
    const char *rev[1] = {spec->revision ? spec->revision : "unknown"};
    const char *gver[1] = {spec->grpc_version ? spec->grpc_version : "unknown"};

    edge_label_def rpc[4] = {{"grpc_type", spec->rpc_types, spec->n_rpcs},
                             {"grpc_service", spec->rpc_services, spec->n_rpcs},
                             {"grpc_method", spec->rpc_methods, spec->n_rpcs},
                             {"grpc_code", gcodes, 17}};
    edge_label_def method = {"method", spec->methods, spec->n_methods};
    edge_label_def mc[2] = {method, {"code", codes, 17}};
    edge_label_def cls = {"class", classes, EDGE_RL_CLASS_COUNT};
    edge_label_def rule = {"rule", spec->risk_rules, spec->n_risk_rules};
    edge_label_def status = {"status", spec->order_statuses, spec->n_order_statuses};
    edge_label_def dres = {"result", decrypt_results, 2};
    static const char *const take_results[] = {"hit", "miss"};
    edge_label_def tres = {"result", take_results, 2};
    static const char *const read_sources[] = {"memory", "database"};
    edge_label_def rsrc = {"answered_from", read_sources, 2};
    static const char *const stream_states[] = {"up", "down"};
    edge_label_def sstate = {"state", stream_states, 2};
    edge_label_def kind = {"kind", spec->store_kinds ? spec->store_kinds : d_store,
                           spec->store_kinds ? spec->n_store_kinds : 4};
    edge_label_def jres = {"result", spec->jwks_results ? spec->jwks_results : d_jwks,
                           spec->jwks_results ? spec->n_jwks_results : 4};
    edge_label_def wres = {"result", whres, EDGE_WH_RESULT_COUNT};
    edge_label_def build[3] = {
        {"version", ver, 1}, {"revision", rev, 1}, {"grpc_core_version", gver, 1}};
    /* As go-grpc-prometheus pre-registers them: every route x code renders from the start at
     * 0, so rate() and alerts see a series before its first event. Only the histogram and the
     * deprecated method x code families render just what was touched. */
    const unsigned sp = EDGE_METRIC_SPARSE;
    const edge_metric_def defs[] = {
        {"grpc_server_started_total", "RPCs started on the server.", EDGE_METRIC_COUNTER, rpc, 3,
         NULL, 0, 0, 3, NULL},
        {"grpc_server_handled_total",
         "RPCs completed on the server, regardless of success or failure.", EDGE_METRIC_COUNTER,
         rpc, 4, NULL, 0, 0, 3, NULL},
        {"grpc_server_handling_seconds",
         "Response latency (seconds) of gRPC that had been application-level handled by the "
         "server.",
         EDGE_METRIC_HISTOGRAM, rpc, 3, lat_buckets, n_lat, sp, 3, NULL},
        {"grpc_server_msg_received_total", "RPC stream messages received on the server.",
         EDGE_METRIC_COUNTER, rpc, 3, NULL, 0, 0, 3, NULL},
        {"grpc_server_msg_sent_total", "gRPC stream messages sent on the server.",
         EDGE_METRIC_COUNTER, rpc, 3, NULL, 0, 0, 3, NULL},
        {"tradewink_grpc_server_in_flight_calls",
         "RPCs started and not yet handled (open streams included).", EDGE_METRIC_GAUGE, rpc, 3,
         NULL, 0, 0, 3, NULL},
        {"tw_rpc_calls_total",
         "RPCs finished, by method and gRPC status code (removed in the next release).",
         EDGE_METRIC_COUNTER, mc, 2, NULL, 0, sp, 0, NULL},
        {"tw_rpc_latency_seconds",
         "RPC latency from accept to status, by method (removed in the next release).",
         EDGE_METRIC_HISTOGRAM, &method, 1, lat_buckets, n_lat, sp, 0, NULL},
        {"tradewink_ratelimit_rejections_total", "Calls refused by a rate limit, by class.",
         EDGE_METRIC_COUNTER, &cls, 1, NULL, 0, 0, 0, "tw_ratelimit_rejections_total"},
        {"tradewink_risk_rejections_total",
         "Risk-engine violations on submitted orders, by rule (risk_code_name).",
         EDGE_METRIC_COUNTER, &rule, 1, NULL, 0, 0, 0, "tw_risk_rejections_total"},
        {"tradewink_breaker_trips_total", "Daily loss / drawdown breaker trips.",
         EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, 0, 0, "tw_breaker_trips_total"},
        {"tradewink_position_drifts_total",
         "Positions found differing from the broker's by position reconciliation (each new "
         "drift once, per symbol).",
         EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, 0, 0, NULL},
        {"tradewink_orders_total", "Orders recorded by SubmitOrder, by the status recorded.",
         EDGE_METRIC_COUNTER, &status, 1, NULL, 0, 0, 0, NULL},
        {"tradewink_key_decryptions_total", "Broker key decryptions in the vault, by result.",
         EDGE_METRIC_COUNTER, &dres, 1, NULL, 0, 0, 0, NULL},
        {"tradewink_store_errors_total", "Store (database) errors, by kind.", EDGE_METRIC_COUNTER,
         &kind, 1, NULL, 0, 0, 0, "tw_store_errors_total"},
        {"tradewink_store_statements_total",
         "SQL statements the store executed (queries and changes, not BEGIN/COMMIT).",
         EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, 0, 0, NULL},
        {"tradewink_store_commits_total", "Store transactions committed.", EDGE_METRIC_COUNTER,
         NULL, 0, NULL, 0, 0, 0, NULL},
        {"tradewink_ledger_books", "Users whose trading state the ledger holds in memory.",
         EDGE_METRIC_GAUGE, NULL, 0, NULL, 0, 0, 0, NULL},
        {"tradewink_ledger_book_bytes",
         "Heap bytes of the books the ledger holds (bounded; the least recently used go first).",
         EDGE_METRIC_GAUGE, NULL, 0, NULL, 0, 0, 0, NULL},
        {"tradewink_ledger_book_takes_total",
         "User transactions that found the user's book exact (hit) or read the store (miss).",
         EDGE_METRIC_COUNTER, &tres, 1, NULL, 0, 0, 0, NULL},
        {"tradewink_ledger_reads_total",
         "Risk.GetState and Orders.GetAccountSettings answers, by where they came from: memory "
         "(a warm account, on the completion-queue thread) or the database (an executor).",
         EDGE_METRIC_COUNTER, &rsrc, 1, NULL, 0, 0, 0, NULL},
        {"tradewink_alpaca_streams",
         "Alpaca trade_updates streams of keys with open orders, by state: up, or down "
         "(starting, reconnecting or refused: those fills come from polling).",
         EDGE_METRIC_GAUGE, &sstate, 1, NULL, 0, 0, 0, NULL},
        {"tradewink_jwks_fetches_total", "JWKS fetches, by result.", EDGE_METRIC_COUNTER, &jres, 1,
         NULL, 0, 0, 0, "tw_jwks_fetches_total"},
        {"tradewink_redis_fallback",
         "1 while the Redis rate limiter is down and the in-process limiter answers, else 0.",
         EDGE_METRIC_GAUGE, NULL, 0, NULL, 0, 0, 0, "tw_redis_fallback"},
        {"tradewink_auth_failures_total", "Failed authentications.", EDGE_METRIC_COUNTER, NULL, 0,
         NULL, 0, 0, 0, "tw_auth_failures_total"},
        {"tradewink_webhook_requests_total", "Webhook deliveries on the ops port, by result.",
         EDGE_METRIC_COUNTER, &wres, 1, NULL, 0, 0, 0, "tw_webhook_requests_total"},
        {"tradewink_build_info", "Always 1; the labels say which build is running.",
         EDGE_METRIC_GAUGE, build, 3, NULL, 0, 0, 0, NULL},
    };
    edge_metric **slots[] = {&out->started,
                             &out->handled,
                             &out->handling,
                             &out->msg_received,
                             &out->msg_sent,
                             &out->in_flight,
                             &out->rpc_calls,
                             &out->rpc_latency,
                             &out->ratelimit_rejects,
                             &out->risk_rejects,
                             &out->breaker_trips,
                             &out->position_drifts,
                             &out->orders,
                             &out->key_decryptions,
                             &out->store_errors,
                             &out->store_statements,
                             &out->store_commits,
                             &out->ledger_books,
                             &out->ledger_book_bytes,
                             &out->ledger_takes,
                             &out->ledger_reads,
                             &out->alpaca_streams,
                             &out->jwks_fetches,
                             &out->redis_fallback,
                             &out->auth_failures,
                             &out->webhooks,
                             &out->build_info};
    _Static_assert(sizeof defs / sizeof defs[0] == sizeof slots / sizeof slots[0],
                   "one slot per family");
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        *slots[i] = edge_metrics_register(m, &defs[i], err, errcap);
        if (!*slots[i])
            return -1;
    }
    edge_metric_set(out->redis_fallback, 0, 0);
    edge_metric_set(out->alpaca_streams, 0, 0); /* both series exist from the first scrape */
    edge_metric_set(out->alpaca_streams, 1, 0);
    edge_metric_set(out->build_info, 0, 1);
    return 0;
}
