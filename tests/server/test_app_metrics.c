/*
 * app_metrics: the registry tradewinkd builds (app_metrics_create) and the transport hooks
 * that feed it, without the rest of the app. Risk rejections are counted the way
 * orders_service.c counts them (risk_code_name of each violation), so every rule of the
 * engine must have its own label value and none may fall into rule="other". Unknown methods
 * must stay within n_services + 1 series however many distinct paths arrive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "edge/metrics.h"
#include "risk/risk.h"
#include "routes/routes_table.h"

typedef struct {
    tw_routes routes;
    srv_app app;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f || routes_table_build(1, &f->routes, stderr) != 0 ||
        app_metrics_create(&f->app, &f->routes) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    app_metrics_destroy(&f->app);
    routes_free(&f->routes);
    free(f);
    return 0;
}

static char *render(fixture *f)
{
    char *text = NULL;
    size_t len;
    assert_int_equal(edge_metrics_render(f->app.metrics, &text, &len), 0);
    return text;
}

/* Value of the sample line that starts with prefix (name and labels, exactly), or -1. */
static double sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, prefix, n) == 0 && l[n] == ' ')
            return strtod(l + n + 1, NULL);
    return -1;
}

static size_t count_lines(const char *text, const char *prefix)
{
    size_t c = 0, n = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        c += strncmp(l, prefix, n) == 0;
    return c;
}

static void test_every_risk_rule_has_its_own_label(void **state)
{
    fixture *f = *state;
    int codes = 0;
    for (int code = 1; strcmp(risk_code_name((risk_code)code), "unknown") != 0; code++) {
        edge_metric_inc1(f->app.m.risk_rejects, risk_code_name((risk_code)code));
        codes++;
    }
    assert_int_equal(codes, 12);
    char *text = render(f);
    for (int code = 1; code <= codes; code++) {
        char want[128];
        snprintf(want, sizeof want, "tradewink_risk_rejections_total{rule=\"%s\"}",
                 risk_code_name((risk_code)code));
        if (sample(text, want) != 1)
            fail_msg("%s is not 1: a rule counted under another label", want);
    }
    if (strstr(text, "tradewink_risk_rejections_total{rule=\"other\"}"))
        fail_msg("some risk rule was counted as rule=\"other\"");
    free(text);
}

static void test_unknown_methods_collapse_into_bounded_series(void **state)
{
    fixture *f = *state;
    srv_hooks h = app_hooks(&f->app);
    char path[64];
    char *before = render(f);
    size_t n_before = count_lines(before, "grpc_server_started_total{");
    size_t n_handled = count_lines(before, "grpc_server_handled_total{");
    free(before);
    /* One row per route, per served service (unknown method), and (unknown, unknown). */
    assert_int_equal(n_before, f->routes.count + f->app.n_services + 1);
    assert_int_equal(n_handled, 17 * n_before);
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(path, sizeof path, "/attacker.S%d/M%d", i, i);
        h.on_unknown(h.app, path, (size_t)n, TW_UNIMPLEMENTED, 10);
    }
    static const char known[] = "/tradewink.v1.Orders/NoSuchMethod";
    h.on_unknown(h.app, known, sizeof known - 1, TW_UNIMPLEMENTED, 10);
    h.on_unknown(h.app, "", 0, TW_UNIMPLEMENTED, 10);
    h.on_unknown(h.app, "/tradewink.v1.Orders", 20, TW_CANCELLED, 10); /* no method part */
    char *text = render(f);
    assert_true(sample(text, "grpc_server_started_total{grpc_type=\"unary\",grpc_service="
                             "\"unknown\",grpc_method=\"unknown\"}") == 20002);
    assert_true(sample(text, "grpc_server_handled_total{grpc_type=\"unary\",grpc_service="
                             "\"tradewink.v1.Orders\",grpc_method=\"unknown\",grpc_code="
                             "\"Unimplemented\"}") == 1);
    assert_true(sample(text, "grpc_server_handled_total{grpc_type=\"unary\",grpc_service="
                             "\"unknown\",grpc_method=\"unknown\",grpc_code=\"Canceled\"}") == 1);
    assert_int_equal(count_lines(text, "grpc_server_started_total{"), n_before);
    assert_int_equal(count_lines(text, "grpc_server_handled_total{"), n_handled);
    assert_null(strstr(text, "attacker"));
    free(text);
}

static void test_routed_calls_use_go_names_and_in_flight_returns_to_zero(void **state)
{
    fixture *f = *state;
    srv_hooks h = app_hooks(&f->app);
    const tw_route *submit = NULL, *tail = NULL;
    for (size_t i = 0; i < f->routes.count; i++) {
        if (strcmp(f->routes.routes[i].path, "/tradewink.v1.Orders/SubmitOrder") == 0)
            submit = &f->routes.routes[i];
        if (f->routes.routes[i].def->kind == TW_KIND_SERVER_STREAM && !tail)
            tail = &f->routes.routes[i];
    }
    assert_non_null(submit);
    assert_non_null(tail);
    h.on_start(h.app, submit);
    h.on_msg(h.app, submit, 0);
    h.on_start(h.app, tail);
    h.on_msg(h.app, tail, 1);
    h.on_msg(h.app, tail, 1);
    char *text = render(f);
    const char *s = "{grpc_type=\"unary\",grpc_service=\"tradewink.v1.Orders\","
                    "grpc_method=\"SubmitOrder\"}";
    char name[256];
    snprintf(name, sizeof name, "tradewink_grpc_server_in_flight_calls%s", s);
    assert_true(sample(text, name) == 1);
    free(text);
    h.on_done(h.app, submit, TW_INVALID_ARGUMENT, 1500);
    text = render(f);
    assert_true(sample(text, name) == 0);
    snprintf(name, sizeof name, "grpc_server_msg_received_total%s", s);
    assert_true(sample(text, name) == 1);
    assert_true(sample(text, "grpc_server_handled_total{grpc_type=\"unary\",grpc_service="
                             "\"tradewink.v1.Orders\",grpc_method=\"SubmitOrder\",grpc_code="
                             "\"InvalidArgument\"}") == 1);
    /* The previous release's family keeps its own spelling for one more release. */
    assert_true(sample(text, "tw_rpc_calls_total{method=\"/tradewink.v1.Orders/SubmitOrder\","
                             "code=\"INVALID_ARGUMENT\"}") == 1);
    char stream_sent[256];
    snprintf(stream_sent, sizeof stream_sent,
             "grpc_server_msg_sent_total{grpc_type=\"server_stream\",grpc_service=\"%s\","
             "grpc_method=\"%s\"}",
             tail->def->service, tail->def->method);
    assert_true(sample(text, stream_sent) == 2);
    assert_non_null(strstr(text, "process_open_fds "));
    assert_non_null(strstr(text, "tradewink_build_info{version=\""));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_risk_rule_has_its_own_label, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_methods_collapse_into_bounded_series, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_routed_calls_use_go_names_and_in_flight_returns_to_zero, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
