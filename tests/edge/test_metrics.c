/*
 * edge_metrics: the registry and its Prometheus text exposition (0.0.4). A strict parser
 * written here checks every line of the output: HELP/TYPE once per family and before its
 * samples, samples contiguous per family, `name{labels} value` with only the three legal
 * escapes in label values, no duplicate series, histogram buckets non-decreasing in le and
 * ending in +Inf equal to _count, _sum and _count present. When `promtool` is on PATH the
 * same text also goes through `promtool check metrics`. Counters move with the calls made.
 */
#include "edge/metrics.h"
#include "edge/webhook.h"
#include "edge_test_proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- strict parser -------------------------------------------------------------------- */

#define MAXS 4096

typedef struct {
    char name[128];
    char labels[1024]; /* canonical: decoded k=v pairs joined by \x1f, le excluded */
    char le[32];
    double value;
} sample;

typedef struct {
    sample s[MAXS];
    size_t n;
    char err[256];
} parsed;

static int name_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

static int parse_value(const char *s, double *out)
{
    char *end;
    if (strcmp(s, "+Inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Inf") == 0) {
        *out = -INFINITY;
        return 0;
    }
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
        return 0;
    }
    if (!*s || strchr(s, ' ') || strstr(s, "inf") || strstr(s, "nan"))
        return -1;
    *out = strtod(s, &end);
    return *end == '\0' ? 0 : -1;
}

/* Family of a sample name given the declared type of the current family. */
static int belongs(const char *sname, const char *fam, const char *type)
{
    size_t n = strlen(fam);
    if (strcmp(type, "histogram") != 0)
        return strcmp(sname, fam) == 0;
    return strncmp(sname, fam, n) == 0 &&
           (strcmp(sname + n, "_bucket") == 0 || strcmp(sname + n, "_sum") == 0 ||
            strcmp(sname + n, "_count") == 0);
}

static int fail_p(parsed *p, int line, const char *why)
{
    snprintf(p->err, sizeof p->err, "line %d: %s", line, why);
    return -1;
}

static int parse_exposition(const char *text, parsed *p)
{
    char fam[128] = "", type[32] = "";
    char seen_fams[64][128];
    size_t n_seen = 0;
    int line = 0, help_seen = 0;
    const char *l = text;
    p->n = 0;
    if (!*text || text[strlen(text) - 1] != '\n')
        return fail_p(p, 0, "output must end with a newline");
    while (*l) {
        const char *eol = strchr(l, '\n');
        char buf[2048];
        size_t len = (size_t)(eol - l);
        line++;
        if (len >= sizeof buf)
            return fail_p(p, line, "line too long");
        memcpy(buf, l, len);
        buf[len] = '\0';
        l = eol + 1;
        if (len == 0)
            return fail_p(p, line, "empty line");
        if (buf[0] == '#') {
            char kw[8], name[128];
            int off = 0;
            if (sscanf(buf, "# %7s %127s %n", kw, name, &off) < 2)
                return fail_p(p, line, "bad comment line");
            if (strcmp(kw, "HELP") != 0 && strcmp(kw, "TYPE") != 0)
                return fail_p(p, line, "unknown comment keyword");
            if (strcmp(name, fam) != 0) {
                for (size_t i = 0; i < n_seen; i++)
                    if (strcmp(seen_fams[i], name) == 0)
                        return fail_p(p, line, "family declared twice / not contiguous");
                if (n_seen == 64)
                    return fail_p(p, line, "too many families");
                snprintf(seen_fams[n_seen++], 128, "%s", name);
                snprintf(fam, sizeof fam, "%s", name);
                type[0] = '\0';
                help_seen = 0;
            }
            if (strcmp(kw, "HELP") == 0) {
                if (help_seen++)
                    return fail_p(p, line, "HELP twice");
                for (const char *c = buf + off; *c; c++)
                    if (*c == '\\' && c[1] != '\\' && c[1] != 'n')
                        return fail_p(p, line, "bad escape in HELP");
                    else if (*c == '\\')
                        c++;
            } else {
                if (type[0])
                    return fail_p(p, line, "TYPE twice");
                snprintf(type, sizeof type, "%s", buf + off);
                if (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram") &&
                    strcmp(type, "summary") && strcmp(type, "untyped"))
                    return fail_p(p, line, "unknown TYPE");
            }
            continue;
        }
        if (p->n == MAXS)
            return fail_p(p, line, "too many samples");
        sample *s = &p->s[p->n];
        memset(s, 0, sizeof *s);
        const char *c = buf;
        size_t nl = 0;
        if (!name_char(*c, 1))
            return fail_p(p, line, "bad metric name");
        while (name_char(*c, 0) && nl < sizeof s->name - 1)
            s->name[nl++] = *c++;
        if (!type[0] || !belongs(s->name, fam, type))
            return fail_p(p, line, "sample without TYPE or outside its family");
        size_t ll = 0;
        if (*c == '{') {
            c++;
            while (*c != '}') {
                char lname[64], lval[512];
                size_t ln = 0, lv = 0;
                if (!name_char(*c, 1) || *c == ':')
                    return fail_p(p, line, "bad label name");
                while (name_char(*c, 0) && *c != ':' && ln < sizeof lname - 1)
                    lname[ln++] = *c++;
                lname[ln] = '\0';
                if (*c++ != '=' || *c++ != '"')
                    return fail_p(p, line, "label needs =\"");
                while (*c != '"') {
                    if (!*c)
                        return fail_p(p, line, "unterminated label value");
                    if (*c == '\\') {
                        c++;
                        if (*c == 'n')
                            lval[lv++] = '\n';
                        else if (*c == '\\' || *c == '"')
                            lval[lv++] = *c;
                        else
                            return fail_p(p, line, "bad escape in label value");
                        c++;
                    } else {
                        lval[lv++] = *c++;
                    }
                    if (lv >= sizeof lval - 1)
                        return fail_p(p, line, "label value too long");
                }
                lval[lv] = '\0';
                c++;
                if (strcmp(lname, "le") == 0) {
                    snprintf(s->le, sizeof s->le, "%.31s", lval);
                } else {
                    int w = snprintf(s->labels + ll, sizeof s->labels - ll, "%s%s=%s",
                                     ll ? "\x1f" : "", lname, lval);
                    ll += (size_t)w;
                }
                if (*c == ',') {
                    c++;
                    if (*c == '}')
                        return fail_p(p, line, "trailing comma");
                } else if (*c != '}') {
                    return fail_p(p, line, "expected , or }");
                }
            }
            c++;
        }
        if (*c++ != ' ')
            return fail_p(p, line, "expected one space before the value");
        if (parse_value(c, &s->value) != 0)
            return fail_p(p, line, "bad value");
        size_t sn = strlen(s->name);
        int is_bucket =
            sn > 7 && strcmp(s->name + sn - 7, "_bucket") == 0 && strcmp(type, "histogram") == 0;
        if (is_bucket != (s->le[0] != '\0'))
            return fail_p(p, line, "le only (and always) on _bucket samples");
        for (size_t i = 0; i < p->n; i++)
            if (!strcmp(p->s[i].name, s->name) && !strcmp(p->s[i].labels, s->labels) &&
                !strcmp(p->s[i].le, s->le))
                return fail_p(p, line, "duplicate series");
        p->n++;
    }
    /* Histogram invariants per (family, labels). */
    for (size_t i = 0; i < p->n; i++) {
        const sample *s = &p->s[i];
        size_t sn = strlen(s->name);
        if (!(sn > 7 && strcmp(s->name + sn - 7, "_bucket") == 0) || !s->le[0])
            continue;
        if (i > 0 && !strcmp(p->s[i - 1].name, s->name) && !strcmp(p->s[i - 1].labels, s->labels)) {
            double a, b;
            parse_value(p->s[i - 1].le, &a);
            parse_value(s->le, &b);
            if (!(b > a))
                return fail_p(p, 0, "le not increasing");
            if (s->value < p->s[i - 1].value)
                return fail_p(p, 0, "bucket counts decrease");
        }
        if (strcmp(s->le, "+Inf") == 0) {
            char cname[140];
            int found = 0, sum = 0;
            snprintf(cname, sizeof cname, "%.*s_count", (int)(sn - 7), s->name);
            for (size_t j = 0; j < p->n; j++) {
                if (!strcmp(p->s[j].labels, s->labels) && !strcmp(p->s[j].name, cname)) {
                    found = 1;
                    if (p->s[j].value != s->value)
                        return fail_p(p, 0, "+Inf bucket != _count");
                }
                if (!strcmp(p->s[j].labels, s->labels) && !strncmp(p->s[j].name, s->name, sn - 7) &&
                    !strcmp(p->s[j].name + sn - 7, "_sum"))
                    sum = 1;
            }
            if (!found || !sum)
                return fail_p(p, 0, "histogram without _count or _sum");
        } else if (i + 1 >= p->n || strcmp(p->s[i + 1].name, s->name) != 0 ||
                   strcmp(p->s[i + 1].labels, s->labels) != 0) {
            return fail_p(p, 0, "bucket series does not end with +Inf");
        }
    }
    return 0;
}

static const sample *find(const parsed *p, const char *name, const char *labels, const char *le)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->s[i].name, name) && !strcmp(p->s[i].labels, labels) &&
            !strcmp(p->s[i].le, le ? le : ""))
            return &p->s[i];
    return NULL;
}

static double value_of(const parsed *p, const char *name, const char *labels, const char *le)
{
    const sample *s = find(p, name, labels, le);
    if (!s) {
        fail_msg("no sample %s{%s}", name, labels);
        return 0; /* not reached: cmocka's fail_msg does not return */
    }
    return s->value;
}

static parsed P;

static void render_parse(edge_metrics *m, char **text)
{
    size_t len = 0;
    assert_int_equal(edge_metrics_render(m, text, &len), 0);
    assert_int_equal(strlen(*text), len);
    if (parse_exposition(*text, &P) != 0)
        fail_msg("exposition does not parse: %s\n%s", P.err, *text);
}

/* ---- the parser itself must reject bad text ------------------------------------------- */

static void test_parser_rejects_bad_exposition(void **state)
{
    static const char *const bad[] = {
        "x 1\n",                                                          /* no TYPE */
        "# TYPE x counter\nx{a=\"b\\t\"} 1\n",                            /* bad escape */
        "# TYPE x counter\nx{a=\"b\",} 1\n",                              /* trailing comma */
        "# TYPE x counter\nx 1\nx 2\n",                                   /* duplicate */
        "# TYPE x counter\nx one\n",                                      /* bad value */
        "# TYPE x counter\nx  1\n",                                       /* two spaces */
        "# TYPE x counter\n# TYPE x counter\nx 1\n",                      /* TYPE twice */
        "# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\n# TYPE x counter\n", /* not contiguous */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n"
        "h_count 1\n", /* decreasing */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\n"
        "h_count 3\n",                                                    /* +Inf != count */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", /* no +Inf */
        "# TYPE x counter\nx 1",                                          /* no final newline */
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse_exposition(bad[i], &P) == 0)
            fail_msg("parser accepted bad case %zu", i);
    assert_int_equal(
        parse_exposition("# HELP x a \\\\ b\n# TYPE x counter\nx{a=\"q\\\"\"} 1\n", &P), 0);
}

/* ---- registry ------------------------------------------------------------------------- */

static const char *const methods[] = {"/tradewink.v1.Orders/SubmitOrder",
                                      "/tradewink.v1.Auth/WhoAmI"};

static void test_tw_metrics_parse_and_move(void **state)
{
    edge_metrics *m = edge_metrics_create();
    edge_tw_metrics tw;
    char err[256], *text = NULL;
    static const char *const rules[] = {"max_notional", "pdt"};
    edge_tw_metrics_spec spec = {
        .methods = methods, .n_methods = 2, .risk_rules = rules, .n_risk_rules = 2};
    (void)state;
    assert_int_equal(edge_tw_metrics_register(m, &spec, &tw, err, sizeof err), 0);

    render_parse(m, &text);
    assert_true(value_of(&P, "tradewink_redis_fallback", "", NULL) == 0);
    assert_true(value_of(&P, "tradewink_ratelimit_rejections_total", "class=orders", NULL) == 0);
    assert_true(value_of(&P, "tradewink_auth_failures_total", "", NULL) == 0);
    assert_null(find(&P, "tw_rpc_calls_total",
                     "method=/tradewink.v1.Orders/SubmitOrder\x1f"
                     "code=OK",
                     NULL));
    assert_null(strstr(text, "\"other\"")); /* untouched "other" series are not shown */
    free(text);

    for (int i = 0; i < 3; i++)
        edge_metric_inc2(tw.rpc_calls, methods[0], "OK");
    edge_metric_inc2(tw.rpc_calls, methods[0], "RESOURCE_EXHAUSTED");
    edge_metric_inc2(tw.rpc_calls, "/evil/{\"injected\"}", "OK"); /* -> other */
    edge_metric_observe1(tw.rpc_latency, methods[1], 0.0007);
    edge_metric_observe1(tw.rpc_latency, methods[1], 0.003);
    edge_metric_observe1(tw.rpc_latency, methods[1], 42.0);
    edge_metric_inc1(tw.ratelimit_rejects, "orders");
    edge_metric_inc1(tw.risk_rejects, "pdt");
    edge_metric_inc1(tw.risk_rejects, "brand_new_rule");
    edge_metric_inc0(tw.breaker_trips);
    edge_metric_inc1(tw.store_errors, "timeout");
    edge_metric_inc1(tw.jwks_fetches, "ok");
    edge_metric_set(tw.redis_fallback, 0, 1);
    edge_metric_inc0(tw.auth_failures);
    edge_metric_inc0(tw.auth_failures);
    edge_metric_inc1(tw.webhooks, edge_wh_result_name(EDGE_WH_BAD_SIGNATURE));

    render_parse(m, &text);
    assert_true(value_of(&P, "tw_rpc_calls_total",
                         "method=/tradewink.v1.Orders/SubmitOrder\x1f"
                         "code=OK",
                         NULL) == 3);
    assert_true(value_of(&P, "tw_rpc_calls_total",
                         "method=/tradewink.v1.Orders/SubmitOrder\x1f"
                         "code=RESOURCE_EXHAUSTED",
                         NULL) == 1);
    assert_true(value_of(&P, "tw_rpc_calls_total",
                         "method=other\x1f"
                         "code=OK",
                         NULL) == 1);
    assert_null(strstr(text, "evil"));
    const char *lat = "method=/tradewink.v1.Auth/WhoAmI";
    assert_true(value_of(&P, "tw_rpc_latency_seconds_bucket", lat, "0.0005") == 0);
    assert_true(value_of(&P, "tw_rpc_latency_seconds_bucket", lat, "0.001") == 1);
    assert_true(value_of(&P, "tw_rpc_latency_seconds_bucket", lat, "0.005") == 2);
    assert_true(value_of(&P, "tw_rpc_latency_seconds_bucket", lat, "10") == 2);
    assert_true(value_of(&P, "tw_rpc_latency_seconds_bucket", lat, "+Inf") == 3);
    assert_true(value_of(&P, "tw_rpc_latency_seconds_count", lat, NULL) == 3);
    assert_true(fabs(value_of(&P, "tw_rpc_latency_seconds_sum", lat, NULL) - 42.0037) < 1e-9);
    assert_true(value_of(&P, "tradewink_ratelimit_rejections_total", "class=orders", NULL) == 1);
    assert_true(value_of(&P, "tradewink_risk_rejections_total", "rule=pdt", NULL) == 1);
    assert_true(value_of(&P, "tradewink_risk_rejections_total", "rule=other", NULL) == 1);
    assert_true(value_of(&P, "tradewink_breaker_trips_total", "", NULL) == 1);
    assert_true(value_of(&P, "tradewink_store_errors_total", "kind=timeout", NULL) == 1);
    assert_true(value_of(&P, "tradewink_jwks_fetches_total", "result=ok", NULL) == 1);
    assert_true(value_of(&P, "tradewink_redis_fallback", "", NULL) == 1);
    assert_true(value_of(&P, "tradewink_auth_failures_total", "", NULL) == 2);
    assert_true(value_of(&P, "tradewink_webhook_requests_total", "result=bad_signature", NULL) ==
                1);
    assert_non_null(strstr(text, "# TYPE tw_rpc_latency_seconds histogram\n"));
    assert_non_null(strstr(text, "# TYPE tradewink_redis_fallback gauge\n"));
    /* The previous release's names render too, same values, HELP saying what replaces them. */
    assert_true(value_of(&P, "tw_risk_rejections_total", "rule=pdt", NULL) == 1);
    assert_true(value_of(&P, "tw_auth_failures_total", "", NULL) == 2);
    assert_non_null(strstr(text, "# HELP tw_auth_failures_total DEPRECATED, use "
                                 "tradewink_auth_failures_total: "));

    if (etp_have("promtool")) {
        char dir[256], file[300], log[300];
        assert_int_equal(etp_tempdir(dir, sizeof dir), 0);
        snprintf(file, sizeof file, "%s/metrics.txt", dir);
        snprintf(log, sizeof log, "%s/promtool.log", dir);
        FILE *f = fopen(file, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        const char *argv[] = {"sh", "-c", "promtool check metrics < \"$0\"", file, NULL};
        assert_int_equal(etp_run(argv, log), 0);
        etp_rmdir(dir);
    } else {
        fprintf(stderr, "promtool not on PATH: strict in-test parser only\n");
    }
    free(text);
    edge_metrics_destroy(m);
}

static void test_label_values_and_help_are_escaped(void **state)
{
    static const char *const vals[] = {"quote\"d", "back\\slash", "new\nline"};
    edge_label_def l = {"v", vals, 3};
    edge_metric_def d = {
        "esc_total", "help with \\ and\nnewline", EDGE_METRIC_COUNTER, &l, 1, NULL, 0, 0, 0, NULL};
    char err[128], *text = NULL;
    (void)state;
    edge_metrics *m = edge_metrics_create();
    edge_metric *f = edge_metrics_register(m, &d, err, sizeof err);
    assert_non_null(f);
    for (int i = 0; i < 3; i++)
        edge_metric_inc1(f, vals[i]);
    render_parse(m, &text);
    assert_non_null(strstr(text, "# HELP esc_total help with \\\\ and\\nnewline\n"));
    assert_true(value_of(&P, "esc_total", "v=quote\"d", NULL) == 1);
    assert_true(value_of(&P, "esc_total", "v=back\\slash", NULL) == 1);
    assert_true(value_of(&P, "esc_total", "v=new\nline", NULL) == 1);
    free(text);
    edge_metrics_destroy(m);
}

typedef struct {
    const char *why;
    edge_metric_def def;
} bad_def;

static void test_bad_registrations_refused(void **state)
{
    static const char *const many[100] = {"x"};
    static const char *const two[] = {"a", "b"};
    static const double dec[] = {1, 0.5};
    static const double ok_b[] = {1, 2};
    static const double inf_b[] = {1, INFINITY};
    edge_label_def le = {"le", two, 2};
    edge_label_def dup[2] = {{"a", two, 2}, {"a", two, 2}};
    edge_label_def big[3] = {{"a", many, 100}, {"b", many, 100}, {"c", two, 2}};
    edge_label_def badname = {"0a", two, 2};
    static const char *const three[] = {"a", "b", "c"};
    edge_label_def uneven[2] = {{"a", two, 2}, {"b", three, 3}};
    const bad_def bad[] = {
        {"bad name", {"1abc", "", EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, 0, 0, NULL}},
        {"dash in name", {"a-b", "", EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, 0, 0, NULL}},
        {"reserved __", {"__x", "", EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, 0, 0, NULL}},
        {"duplicate family", {"dup_total", "", EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, 0, 0, NULL}},
        {"label le", {"x_total", "", EDGE_METRIC_COUNTER, &le, 1, NULL, 0, 0, 0, NULL}},
        {"duplicate label", {"y_total", "", EDGE_METRIC_COUNTER, dup, 2, NULL, 0, 0, 0, NULL}},
        {"bad label name", {"z_total", "", EDGE_METRIC_COUNTER, &badname, 1, NULL, 0, 0, 0, NULL}},
        {"too many series", {"w_total", "", EDGE_METRIC_COUNTER, big, 3, NULL, 0, 0, 0, NULL}},
        {"decreasing buckets", {"h1", "", EDGE_METRIC_HISTOGRAM, NULL, 0, dec, 2, 0, 0, NULL}},
        {"infinite bucket", {"h2", "", EDGE_METRIC_HISTOGRAM, NULL, 0, inf_b, 2, 0, 0, NULL}},
        {"no buckets", {"h3", "", EDGE_METRIC_HISTOGRAM, NULL, 0, ok_b, 0, 0, 0, NULL}},
        {"joint of one label", {"j1_total", "", EDGE_METRIC_COUNTER, dup, 2, NULL, 0, 0, 1, NULL}},
        {"joint past the labels",
         {"j2_total", "", EDGE_METRIC_COUNTER, dup, 2, NULL, 0, 0, 3, NULL}},
        {"joint lists of unequal length",
         {"j3_total", "", EDGE_METRIC_COUNTER, uneven, 2, NULL, 0, 0, 2, NULL}},
        {"float histogram",
         {"h4", "", EDGE_METRIC_HISTOGRAM, NULL, 0, ok_b, 2, EDGE_METRIC_FLOAT, 0, NULL}},
        {"alias taken", {"a1_total", "", EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, 0, 0, "dup_total"}},
        {"alias is its own name",
         {"a2_total", "", EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, 0, 0, "a2_total"}},
        {"alias with a bad name",
         {"a3_total", "", EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, 0, 0, "a-3"}},
    };
    edge_metric_def first = {"dup_total", "", EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, 0, 0, NULL};
    char err[128];
    (void)state;
    edge_metrics *m = edge_metrics_create();
    assert_non_null(edge_metrics_register(m, &first, err, sizeof err));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (edge_metrics_register(m, &bad[i].def, err, sizeof err))
            fail_msg("registration should fail: %s", bad[i].why);
        assert_true(strlen(err) > 0);
    }
    assert_non_null(edge_metrics_find(m, "dup_total"));
    assert_null(edge_metrics_find(m, "h1"));
    edge_metrics_destroy(m);
    edge_metrics_destroy(NULL);
}

/* (service, method) rows: one series per row, not per product, and any other pair (an
 * attacker's million invented names) lands in the one "other" row. */
static void test_joint_labels_count_rows_not_products(void **state)
{
    static const char *const svc[] = {"a.S", "a.S", "b.T"};
    static const char *const meth[] = {"M1", "M2", "M1"};
    static const char *const code[] = {"OK", "Internal"};
    edge_label_def l[3] = {{"svc", svc, 3}, {"meth", meth, 3}, {"code", code, 2}};
    edge_metric_def d = {"j_total", "", EDGE_METRIC_COUNTER, l, 3, NULL, 0, 0, 2, NULL};
    char err[128], *text = NULL;
    (void)state;
    edge_metrics *m = edge_metrics_create();
    edge_metric *f = edge_metrics_register(m, &d, err, sizeof err);
    assert_non_null(f);
    /* (3 rows + other) x (2 codes + other) series; every real row renders at 0. */
    render_parse(m, &text);
    assert_true(value_of(&P, "j_total",
                         "svc=a.S\x1fmeth=M2\x1f"
                         "code=Internal",
                         NULL) == 0);
    assert_true(value_of(&P, "j_total",
                         "svc=b.T\x1fmeth=M1\x1f"
                         "code=OK",
                         NULL) == 0);
    assert_null(find(&P, "j_total",
                     "svc=b.T\x1fmeth=M2\x1f"
                     "code=OK",
                     NULL)); /* no product */
    assert_int_equal(P.n, 6);
    free(text);
    const char *v[3] = {"a.S", "M2", "OK"};
    edge_metric_add(f, edge_metric_series(f, v), 2);
    char name[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(name, sizeof name, "m%d", i);
        const char *evil[3] = {"a.S", name, "OK"};
        edge_metric_add(f, edge_metric_series(f, evil), 1);
    }
    const char *cross[3] = {"b.T", "M2", "OK"}; /* both values exist, the pair does not */
    edge_metric_add(f, edge_metric_series(f, cross), 1);
    render_parse(m, &text);
    assert_true(value_of(&P, "j_total",
                         "svc=a.S\x1fmeth=M2\x1f"
                         "code=OK",
                         NULL) == 2);
    assert_true(value_of(&P, "j_total",
                         "svc=other\x1fmeth=other\x1f"
                         "code=OK",
                         NULL) == 100001);
    assert_int_equal(P.n, 7);
    free(text);
    edge_metrics_destroy(m);
}

static int hook_calls;
static edge_metric *hook_target;

static void count_hook(void *ctx)
{
    (void)ctx;
    hook_calls++;
    edge_metric_set_double(hook_target, 0, 0.25 * hook_calls);
}

/* FLOAT families print doubles; the render hook runs before every render, so sampled values
 * are fresh in each scrape. */
static void test_float_values_and_render_hook(void **state)
{
    edge_metric_def d = {
        "f_seconds_total", "", EDGE_METRIC_COUNTER, NULL, 0, NULL, 0, EDGE_METRIC_FLOAT, 0, NULL};
    char err[128], *text = NULL;
    (void)state;
    edge_metrics *m = edge_metrics_create();
    hook_target = edge_metrics_register(m, &d, err, sizeof err);
    assert_non_null(hook_target);
    edge_metric_add(hook_target, 0, 7); /* integer updates do not apply to a FLOAT family */
    edge_metrics_on_render(m, count_hook, NULL);
    render_parse(m, &text);
    assert_true(value_of(&P, "f_seconds_total", "", NULL) == 0.25);
    free(text);
    render_parse(m, &text);
    assert_true(value_of(&P, "f_seconds_total", "", NULL) == 0.5);
    assert_int_equal(hook_calls, 2);
    free(text);
    edge_metrics_destroy(m);
}

/* go-grpc-prometheus names and labels, codes spelt as Go's codes.Code.String(). */
static void test_grpc_families_use_go_grpc_prometheus_names(void **state)
{
    static const char *const go[17] = {
        "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
        "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
        "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
        "DataLoss", "Unauthenticated"};
    static const char *const types[] = {"unary", "server_stream", "unary"};
    static const char *const svcs[] = {"tradewink.v1.Orders", "tradewink.v1.Audit", "unknown"};
    static const char *const meths[] = {"SubmitOrder", "Tail", "unknown"};
    edge_tw_metrics tw;
    edge_tw_metrics_spec spec = {
        .rpc_types = types, .rpc_services = svcs, .rpc_methods = meths, .n_rpcs = 3};
    char err[256], *text = NULL;
    (void)state;
    for (int i = 0; i < 17; i++)
        assert_string_equal(edge_grpc_code_name(i), go[i]);
    assert_string_equal(edge_grpc_code_name(17), "Unknown");
    assert_string_equal(edge_grpc_code_name(-1), "Unknown");
    assert_string_equal(edge_grpc_type_name(EDGE_GRPC_BIDI_STREAM), "bidi_stream");
    assert_string_equal(edge_grpc_type_name(EDGE_GRPC_CLIENT_STREAM), "client_stream");
    edge_metrics *m = edge_metrics_create();
    assert_int_equal(edge_tw_metrics_register(m, &spec, &tw, err, sizeof err), 0);
    const char *row[4] = {"unary", "tradewink.v1.Orders", "SubmitOrder", "InvalidArgument"};
    size_t r = edge_metric_series(tw.started, row);
    edge_metric_add(tw.started, r, 1);
    edge_metric_add(tw.msg_received, r, 1);
    edge_metric_gauge_add(tw.in_flight, r, 1);
    edge_metric_observe(tw.handling, r, 0.002);
    edge_metric_add(tw.handled, edge_metric_series(tw.handled, row), 1);
    render_parse(m, &text);
    const char *ls =
        "grpc_type=unary\x1fgrpc_service=tradewink.v1.Orders\x1fgrpc_method=SubmitOrder";
    char lc[200];
    snprintf(lc, sizeof lc, "%s\x1fgrpc_code=InvalidArgument", ls);
    assert_true(value_of(&P, "grpc_server_started_total", ls, NULL) == 1);
    assert_true(value_of(&P, "grpc_server_handled_total", lc, NULL) == 1);
    assert_true(value_of(&P, "grpc_server_msg_received_total", ls, NULL) == 1);
    assert_true(value_of(&P, "grpc_server_handling_seconds_bucket", ls, "0.0025") == 1);
    assert_true(value_of(&P, "grpc_server_handling_seconds_count", ls, NULL) == 1);
    assert_true(value_of(&P, "tradewink_grpc_server_in_flight_calls", ls, NULL) == 1);
    assert_true(value_of(&P, "tradewink_build_info",
                         "version=unknown\x1frevision=unknown\x1fgrpc_core_version=unknown",
                         NULL) == 1);
    assert_non_null(strstr(text, "# TYPE grpc_server_handling_seconds histogram\n"));
    free(text);
    edge_metrics_destroy(m);
}

/* process_* from /proc/self, checked against what this test process can see itself. */
static void test_process_metrics_read_from_proc(void **state)
{
    edge_proc_metrics pm;
    char err[128], *text = NULL;
    struct rlimit rl;
    (void)state;
    edge_metrics *m = edge_metrics_create();
    assert_int_equal(edge_proc_metrics_register(m, &pm, err, sizeof err), 0);
    volatile double spin = 0;
    for (long i = 0; i < 30000000; i++) /* ~50 ms of CPU */
        spin += (double)i;
    assert_true(spin > 0); /* used, so no compiler drops the loop or warns about it */
    edge_proc_metrics_update(&pm);
    render_parse(m, &text);
    assert_true(value_of(&P, "process_cpu_seconds_total", "", NULL) > 0);
    assert_true(value_of(&P, "process_resident_memory_bytes", "", NULL) > 1 << 20);
    assert_true(value_of(&P, "process_virtual_memory_bytes", "", NULL) >=
                value_of(&P, "process_resident_memory_bytes", "", NULL));
    double fds = value_of(&P, "process_open_fds", "", NULL);
    assert_true(fds >= 3 && fds < 1000);
    int extra = open("/dev/null", O_RDONLY);
    assert_true(extra >= 0);
    edge_proc_metrics_update(&pm);
    assert_int_equal(edge_metric_value(pm.open_fds, 0), (int64_t)fds + 1);
    close(extra);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(value_of(&P, "process_max_fds", "", NULL) == (double)rl.rlim_cur);
    double start = value_of(&P, "process_start_time_seconds", "", NULL);
    double now = (double)time(NULL);
    assert_true(start <= now + 1 && start > now - 600);
    free(text);
    edge_metrics_destroy(m);
}

static edge_metric *hot;

static void *hammer(void *arg)
{
    (void)arg;
    size_t s = edge_metric_series(hot, (const char *const[]){"a"});
    for (int i = 0; i < 100000; i++)
        edge_metric_add(hot, s, 1);
    return NULL;
}

static void test_concurrent_increments_are_exact(void **state)
{
    static const char *const v[] = {"a"};
    edge_label_def l = {"k", v, 1};
    edge_metric_def d = {"hot_total", "", EDGE_METRIC_COUNTER, &l, 1, NULL, 0, 0, 0, NULL};
    char err[64];
    pthread_t t[4];
    (void)state;
    edge_metrics *m = edge_metrics_create();
    hot = edge_metrics_register(m, &d, err, sizeof err);
    assert_non_null(hot);
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(edge_metric_value(hot, 0), 400000);
    /* Wrong-type updates are ignored. */
    edge_metric_set(hot, 0, 5);
    edge_metric_observe(hot, 0, 1.0);
    assert_int_equal(edge_metric_value(hot, 0), 400000);
    edge_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_rejects_bad_exposition),
        cmocka_unit_test(test_tw_metrics_parse_and_move),
        cmocka_unit_test(test_label_values_and_help_are_escaped),
        cmocka_unit_test(test_bad_registrations_refused),
        cmocka_unit_test(test_concurrent_increments_are_exact),
        cmocka_unit_test(test_joint_labels_count_rows_not_products),
        cmocka_unit_test(test_float_values_and_render_hook),
        cmocka_unit_test(test_grpc_families_use_go_grpc_prometheus_names),
        cmocka_unit_test(test_process_metrics_read_from_proc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
