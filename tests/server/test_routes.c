/* Route table: every served method has exactly one row with matching types; bad tables are
 * refused at build time with a line naming the method. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "routes/routes.h"
#include "routes/routes_table.h"
#include "grpc/health/v1/health.pb-c.h"

static tw_status fake_check(tw_call *c, const Grpc__Health__V1__HealthCheckRequest *req,
                            Grpc__Health__V1__HealthCheckResponse *resp)
{
    (void)c;
    (void)req;
    (void)resp;
    return tw_ok();
}
TW_UNARY_THUNK(fake_check, Grpc__Health__V1__HealthCheckRequest,
               Grpc__Health__V1__HealthCheckResponse);

/* Declared with the wrong request type on purpose. */
static tw_status wrong_types(tw_call *c, const Grpc__Health__V1__HealthCheckResponse *req,
                             Grpc__Health__V1__HealthCheckResponse *resp)
{
    (void)c;
    (void)req;
    (void)resp;
    return tw_ok();
}
TW_UNARY_THUNK(wrong_types, Grpc__Health__V1__HealthCheckResponse,
               Grpc__Health__V1__HealthCheckResponse);

static const ProtobufCServiceDescriptor *const health_only[] = {
    &grpc__health__v1__health__descriptor};

static int build_with(const tw_route_def *rows, size_t n, char *errbuf, size_t errlen)
{
    tw_routes r;
    FILE *err = fmemopen(errbuf, errlen, "w");
    int bad = routes_build(health_only, 1, rows, n, &r, err);
    fclose(err);
    if (bad == 0)
        routes_free(&r);
    return bad;
}

static void product_table_covers_every_method(void **state)
{
    (void)state;
    for (int sim = 0; sim <= 1; sim++) {
        tw_routes r;
        assert_int_equal(routes_table_build(sim, &r, stderr), 0);
        size_t nsvc, total = 0;
        const ProtobufCServiceDescriptor *const *svcs = routes_table_services(sim, &nsvc);
        for (size_t i = 0; i < nsvc; i++) {
            total += svcs[i]->n_methods;
            for (unsigned m = 0; m < svcs[i]->n_methods; m++) {
                char path[256];
                snprintf(path, sizeof(path), "/%s/%s", svcs[i]->name, svcs[i]->methods[m].name);
                const tw_route *route = routes_find(&r, path);
                assert_non_null(route);
                assert_ptr_equal(route->in, svcs[i]->methods[m].input);
                assert_ptr_equal(route->out, svcs[i]->methods[m].output);
            }
        }
        assert_int_equal(r.count, total);
        assert_true(sim ? routes_find(&r, "/tradewink.v1.Sim/SetClock") != NULL
                        : routes_find(&r, "/tradewink.v1.Sim/SetClock") == NULL);
        routes_free(&r);
    }
}

static void product_table_policy_is_as_designed(void **state)
{
    (void)state;
    tw_routes r;
    assert_int_equal(routes_table_build(1, &r, stderr), 0);
    /* Admin-only methods. */
    const char *admin[] = {"/tradewink.v1.KeyVault/RewrapKeys", "/tradewink.v1.Risk/HaltAll",
                           "/tradewink.v1.Risk/ResumeAll", "/tradewink.v1.Sim/SetQuotes"};
    for (size_t i = 0; i < sizeof(admin) / sizeof(admin[0]); i++)
        assert_int_equal(routes_find(&r, admin[i])->def->role, TW_ROLE_ADMIN);
    /* Only health, reflection and the dev-token mint are public. */
    for (size_t i = 0; i < r.count; i++) {
        const tw_route *x = &r.routes[i];
        if (x->def->role == TW_ROLE_PUBLIC)
            assert_true(strncmp(x->path, "/grpc.", 6) == 0 ||
                        strcmp(x->path, "/tradewink.v1.Auth/IssueDevToken") == 0);
    }
    assert_int_equal(routes_find(&r, "/tradewink.v1.Orders/SubmitOrder")->def->rate, TW_RL_ORDERS);
    assert_int_equal(routes_find(&r, "/tradewink.v1.KeyVault/PutBrokerKey")->def->rate,
                     TW_RL_KEY_SUBMIT);
    assert_int_equal(routes_find(&r, "/tradewink.v1.Orders/StreamOrderUpdates")->def->kind,
                     TW_KIND_SERVER_STREAM);
    assert_null(routes_find(&r, "/tradewink.v1.Orders/Nope"));
    routes_free(&r);
}

static void missing_row_is_refused(void **state)
{
    (void)state;
    char err[512] = "";
    tw_route_def rows[] = {
        {"grpc.health.v1.Health", "Check", TW_KIND_UNARY, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_HANDLER(fake_check)},
    };
    assert_int_equal(build_with(rows, 1, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "grpc.health.v1.Health/Watch: no row"));
}

static void duplicate_row_is_refused(void **state)
{
    (void)state;
    char err[512] = "";
    tw_route_def rows[] = {
        {"grpc.health.v1.Health", "Check", TW_KIND_UNARY, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_HANDLER(fake_check)},
        {"grpc.health.v1.Health", "Check", TW_KIND_UNARY, TW_ROLE_USER, TW_RL_API, TW_NO_HANDLER},
        {"grpc.health.v1.Health", "Watch", TW_KIND_SERVER_STREAM, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_NO_HANDLER},
    };
    assert_true(build_with(rows, 3, err, sizeof(err)) >= 1);
    assert_non_null(strstr(err, "Check: 2 rows"));
}

static void dead_row_is_refused(void **state)
{
    (void)state;
    char err[512] = "";
    tw_route_def rows[] = {
        {"grpc.health.v1.Health", "Check", TW_KIND_UNARY, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_NO_HANDLER},
        {"grpc.health.v1.Health", "Watch", TW_KIND_SERVER_STREAM, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_NO_HANDLER},
        {"grpc.health.v1.Health", "Ghost", TW_KIND_UNARY, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_NO_HANDLER},
    };
    assert_int_equal(build_with(rows, 3, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "Ghost: row names no method"));
}

static void handler_type_mismatch_is_refused(void **state)
{
    (void)state;
    char err[512] = "";
    tw_route_def rows[] = {
        {"grpc.health.v1.Health", "Check", TW_KIND_UNARY, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_HANDLER(wrong_types)},
        {"grpc.health.v1.Health", "Watch", TW_KIND_SERVER_STREAM, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_NO_HANDLER},
    };
    assert_int_equal(build_with(rows, 2, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "handler takes Grpc__Health__V1__HealthCheckResponse"));
}

static void unary_handler_on_stream_row_is_refused(void **state)
{
    (void)state;
    char err[512] = "";
    tw_route_def rows[] = {
        {"grpc.health.v1.Health", "Check", TW_KIND_UNARY, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_NO_HANDLER},
        {"grpc.health.v1.Health", "Watch", TW_KIND_SERVER_STREAM, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_HANDLER(fake_check)},
    };
    assert_int_equal(build_with(rows, 2, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "server-streaming row has a unary handler"));
}

static void fast_handler_needs_the_methods_types_and_a_unary_handler(void **state)
{
    (void)state;
    char err[512] = "";
    tw_route_def wrong[] = {
        {"grpc.health.v1.Health", "Check", TW_KIND_UNARY, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_HANDLER(fake_check), TW_FAST(wrong_types)},
        {"grpc.health.v1.Health", "Watch", TW_KIND_SERVER_STREAM, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_NO_HANDLER},
    };
    assert_int_equal(build_with(wrong, 2, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "Check: the fast handler's types are not the method's"));
    tw_route_def alone[] = {
        {"grpc.health.v1.Health", "Check", TW_KIND_UNARY, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_NO_HANDLER, TW_FAST(fake_check)},
        {"grpc.health.v1.Health", "Watch", TW_KIND_SERVER_STREAM, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_NO_HANDLER},
    };
    assert_int_equal(build_with(alone, 2, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "Check: a fast handler needs a unary row with a unary handler"));
    tw_route_def good[] = {
        {"grpc.health.v1.Health", "Check", TW_KIND_UNARY, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_HANDLER(fake_check), TW_FAST(fake_check)},
        {"grpc.health.v1.Health", "Watch", TW_KIND_SERVER_STREAM, TW_ROLE_PUBLIC, TW_RL_PUBLIC,
         TW_NO_HANDLER},
    };
    assert_int_equal(build_with(good, 2, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(product_table_covers_every_method),
        cmocka_unit_test(product_table_policy_is_as_designed),
        cmocka_unit_test(missing_row_is_refused),
        cmocka_unit_test(duplicate_row_is_refused),
        cmocka_unit_test(dead_row_is_refused),
        cmocka_unit_test(handler_type_mismatch_is_refused),
        cmocka_unit_test(unary_handler_on_stream_row_is_refused),
        cmocka_unit_test(fast_handler_needs_the_methods_types_and_a_unary_handler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
