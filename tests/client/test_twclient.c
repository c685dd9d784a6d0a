/*
 * test_twclient.c - libtwclient against a live tradewinkd (argv[1] = the server binary).
 *
 * What must hold: every generated stub reaches the server and comes back with a status the
 * server produced (OK, UNAUTHENTICATED, UNIMPLEMENTED, ...), never a transport failure;
 * statuses keep code and message; tokens work per client and per call; deadlines are
 * honoured; plaintext is refused off loopback; bad TLS settings are refused.
 * Tokens come from the server's own dev key file (auth_devkey_mint, as twctl does) and from
 * the generated Auth.IssueDevToken stub.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"
#include "twc_services.h"
#include "twc_testsrv.h"

static const char *server_binary;
static twc_testsrv srv;
static char *admin_token;
static char *user_token;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *mint(const char *sub, auth_role role)
{
    char err[256];
    char *tok = NULL;
    auth_devkey *k = auth_devkey_load_or_create(srv.keyfile, err, sizeof err);
    if (k == NULL) {
        fprintf(stderr, "dev key: %s\n", err);
        return NULL;
    }
    if (auth_devkey_mint(k, NULL, sub, role, 600, (int64_t)time(NULL), &tok) != 0)
        tok = NULL;
    auth_devkey_destroy(k);
    return tok;
}

static int group_setup(void **state)
{
    (void)state;
    if (twc_testsrv_start(&srv, server_binary) != 0)
        return -1;
    admin_token = mint("twc-admin", AUTH_ROLE_ADMIN);
    user_token = mint("twc-user-1", AUTH_ROLE_USER);
    return admin_token && user_token ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    free(admin_token);
    free(user_token);
    return twc_testsrv_stop(&srv) == 0 ? 0 : -1;
}

static twc_client *connect_to(const char *target, const char *token)
{
    twc_client_opts o = {0};
    twc_client *c = NULL;
    o.target = target;
    o.token = token;
    twc_status st = twc_client_create(&o, &c);
    assert_int_equal(st.code, TWC_OK);
    twc_status_clear(&st);
    return c;
}

/* A status the server (or grpc on its behalf for an unknown path) decided, as opposed to a
 * transport failure or one of our own client-side errors. */
static int is_server_verdict(const twc_status *st)
{
    switch (st->code) {
    case TWC_UNAVAILABLE:
    case TWC_DEADLINE_EXCEEDED:
    case TWC_CANCELLED:
    case TWC_UNKNOWN:
    case TWC_INTERNAL:
        return 0;
    default:
        return 1;
    }
}

/* Calls every method once (default request) and checks a server verdict came back. */
static void call_every_method(twc_client *c, const char *who, int expect_unauth)
{
    for (size_t i = 0; i < twc_methods_count; i++) {
        const twc_method *m = twc_methods[i];
        twc_status st;
        int public_method = strncmp(m->path, "/grpc.health.", 13) == 0 ||
                            strcmp(m->path, "/tradewink.v1.Auth/IssueDevToken") == 0;
        twc_call_opts o = {0};
        o.timeout_ms = m->server_streaming ? 1500 : 5000;
        if (m->server_streaming) {
            twc_stream *s = NULL;
            st = m->open(c, NULL, &s, &o);
            assert_int_equal(st.code, TWC_OK);
            ProtobufCMessage *msg = NULL;
            int got = twc_stream_next(s, &msg);
            if (got == 1) { /* a live stream (health watch, or an implemented feed) */
                twc_message_free(msg);
                twc_status_clear(&st);
                st.code = TWC_OK;
            } else {
                const twc_status *fin = twc_stream_status(s);
                st.code = fin->code;
                st.message = fin->message ? strdup(fin->message) : NULL;
            }
            twc_stream_close(s);
            /* A feed with nothing to say yet stays open until our deadline. That is the
             * server accepting the call, provided this channel demonstrably reaches the
             * server right now (a black hole would also give DEADLINE_EXCEEDED). */
            if (st.code == TWC_DEADLINE_EXCEEDED && !expect_unauth) {
                Grpc__Health__V1__HealthCheckResponse *h = NULL;
                twc_status hs = twc_health_check(c, NULL, &h, NULL);
                assert_int_equal(hs.code, TWC_OK);
                twc_message_free(h);
                twc_status_clear(&st);
                st.code = TWC_OK;
            }
        } else {
            ProtobufCMessage *out = NULL;
            st = m->invoke(c, NULL, &out, &o);
            assert_true((st.code == TWC_OK) == (out != NULL));
            twc_message_free(out);
        }
        if (!is_server_verdict(&st))
            fail_msg("%s %s: transport-level status %s (%s)", who, m->path, twc_code_name(st.code),
                     st.message ? st.message : "");
        if (expect_unauth && !public_method && st.code != TWC_UNAUTHENTICATED &&
            st.code != TWC_UNIMPLEMENTED)
            fail_msg("%s %s: expected UNAUTHENTICATED without a token, got %s", who, m->path,
                     twc_code_name(st.code));
        twc_status_clear(&st);
    }
}

static void every_generated_method_reaches_the_server(void **state)
{
    (void)state;
    twc_client *anon = connect_to(srv.target, NULL);
    twc_client *admin = connect_to(srv.target, admin_token);
    twc_client *user = connect_to(srv.target, user_token);
    call_every_method(anon, "anonymous", 1);
    call_every_method(admin, "admin", 0);
    call_every_method(user, "user", 0);
    twc_client_destroy(anon);
    twc_client_destroy(admin);
    twc_client_destroy(user);
}

/* The generator covered every method protoc-c knows for each service: the table and the
 * service descriptors agree, name by name. */
static void method_table_matches_service_descriptors(void **state)
{
    (void)state;
    const ProtobufCServiceDescriptor *services[] = {
        &tradewink__v1__auth__descriptor,     &tradewink__v1__key_vault__descriptor,
        &tradewink__v1__orders__descriptor,   &tradewink__v1__risk__descriptor,
        &tradewink__v1__audit__descriptor,    &tradewink__v1__sim__descriptor,
        &grpc__health__v1__health__descriptor};
    size_t total = 0;
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        for (unsigned k = 0; k < services[i]->n_methods; k++) {
            char path[256];
            snprintf(path, sizeof path, "/%s/%s", services[i]->name, services[i]->methods[k].name);
            const twc_method *m = twc_method_find(path);
            if (m == NULL)
                fail_msg("no generated stub for %s", path);
            assert_ptr_equal(m->input, services[i]->methods[k].input);
            assert_ptr_equal(m->output, services[i]->methods[k].output);
            total++;
        }
    }
    assert_int_equal(total, twc_methods_count);
    assert_null(twc_method_find("/tradewink.v1.Nope/Nothing"));
}

static void whoami_ok_with_a_locally_minted_dev_token(void **state)
{
    (void)state;
    twc_client *c = connect_to(srv.target, user_token);
    Tradewink__V1__WhoAmIResponse *who = NULL;
    twc_status st = twc_auth_who_am_i(c, NULL, &who, NULL);
    assert_int_equal(st.code, TWC_OK);
    assert_non_null(who);
    assert_string_equal(who->subject, "twc-user-1");
    assert_int_equal(who->role, TRADEWINK__V1__ROLE__ROLE_USER);
    assert_non_null(who->expires_at);
    assert_true(who->expires_at->seconds > (int64_t)time(NULL));
    twc_message_free(who);
    twc_status_clear(&st);
    twc_client_destroy(c);
}

static void per_call_token_overrides_the_client_token(void **state)
{
    (void)state;
    twc_client *c = connect_to(srv.target, user_token);
    Tradewink__V1__WhoAmIResponse *who = NULL;
    twc_call_opts o = {0};

    o.token = admin_token;
    twc_status st = twc_auth_who_am_i(c, NULL, &who, &o);
    assert_int_equal(st.code, TWC_OK);
    assert_string_equal(who->subject, "twc-admin");
    assert_int_equal(who->role, TRADEWINK__V1__ROLE__ROLE_ADMIN);
    twc_message_free(who);

    o.token = ""; /* explicitly no token for this call */
    st = twc_auth_who_am_i(c, NULL, &who, &o);
    assert_int_equal(st.code, TWC_UNAUTHENTICATED);
    assert_null(who);
    twc_status_clear(&st);
    twc_client_destroy(c);
}

static void issued_dev_token_from_the_stub_authenticates(void **state)
{
    (void)state;
    twc_client *c = connect_to(srv.target, NULL);
    Tradewink__V1__IssueDevTokenRequest req = TRADEWINK__V1__ISSUE_DEV_TOKEN_REQUEST__INIT;
    Tradewink__V1__IssueDevTokenResponse *tok = NULL;
    req.subject = (char *)(uintptr_t) "stub-user";
    req.role = TRADEWINK__V1__ROLE__ROLE_USER;
    req.ttl_seconds = 120;
    twc_status st = twc_auth_issue_dev_token(c, &req, &tok, NULL);
    assert_int_equal(st.code, TWC_OK);
    assert_true(strlen(tok->token) > 20);

    assert_int_equal(twc_client_set_token(c, tok->token), 0);
    Tradewink__V1__WhoAmIResponse *who = NULL;
    st = twc_auth_who_am_i(c, NULL, &who, NULL);
    assert_int_equal(st.code, TWC_OK);
    assert_string_equal(who->subject, "stub-user");
    twc_message_free(who);
    twc_message_free(tok);
    twc_client_destroy(c);
}

/* Bad credentials are a server verdict with code and message copied out. */
static void bad_tokens_map_to_unauthenticated(void **state)
{
    (void)state;
    static const char *const tokens[] = {NULL, "", "not-a-jwt", "a.b.c",
                                         "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."};
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
        twc_client *c = connect_to(srv.target, tokens[i]);
        Tradewink__V1__WhoAmIResponse *who = NULL;
        twc_status st = twc_auth_who_am_i(c, NULL, &who, NULL);
        assert_int_equal(st.code, TWC_UNAUTHENTICATED);
        assert_string_equal(twc_code_name(st.code), "UNAUTHENTICATED");
        assert_null(who);
        /* The message never echoes the credential back. */
        if (st.message != NULL && tokens[i] != NULL && tokens[i][0] != '\0')
            assert_null(strstr(st.message, tokens[i]));
        twc_status_clear(&st);
        assert_null(st.message);
        twc_client_destroy(c);
    }
}

static void stream_without_token_ends_unauthenticated(void **state)
{
    (void)state;
    twc_client *c = connect_to(srv.target, NULL);
    twc_stream *s = NULL;
    Tradewink__V1__StreamOrderUpdatesResponse *msg = NULL;
    twc_status st = twc_orders_stream_order_updates(c, NULL, &s, NULL);
    assert_int_equal(st.code, TWC_OK);
    assert_int_equal(twc_orders_stream_order_updates_next(s, &msg), 0);
    assert_null(msg);
    assert_int_equal(twc_stream_status(s)->code, TWC_UNAUTHENTICATED);
    assert_int_equal(twc_orders_stream_order_updates_next(s, &msg), 0); /* stays ended */
    twc_stream_close(s);
    twc_client_destroy(c);
}

static void health_check_and_watch_serve(void **state)
{
    (void)state;
    twc_client *c = connect_to(srv.target, NULL);
    Grpc__Health__V1__HealthCheckResponse *h = NULL;
    twc_status st = twc_health_check(c, NULL, &h, NULL);
    assert_int_equal(st.code, TWC_OK);
    assert_int_equal(h->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    twc_message_free(h);

    twc_stream *s = NULL;
    st = twc_health_watch(c, NULL, &s, NULL);
    assert_int_equal(st.code, TWC_OK);
    assert_int_equal(twc_health_watch_next(s, &h), 1);
    assert_int_equal(h->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    twc_message_free(h);
    twc_stream_close(s); /* closes a stream that is still open: cancels, no leak */
    twc_client_destroy(c);
}

/* A stream's own deadline ends a live stream with DEADLINE_EXCEEDED. */
static void stream_deadline_is_honoured(void **state)
{
    (void)state;
    twc_client *c = connect_to(srv.target, NULL);
    twc_stream *s = NULL;
    Grpc__Health__V1__HealthCheckResponse *h = NULL;
    twc_call_opts o = {0};
    o.timeout_ms = 400;
    int64_t t0 = now_ms();
    twc_status st = twc_health_watch(c, NULL, &s, &o);
    assert_int_equal(st.code, TWC_OK);
    int n = 0;
    while (twc_health_watch_next(s, &h) == 1) {
        twc_message_free(h);
        n++;
    }
    int64_t el = now_ms() - t0;
    assert_true(n >= 1);
    assert_int_equal(twc_stream_status(s)->code, TWC_DEADLINE_EXCEEDED);
    assert_true(el >= 300 && el < 5000);
    twc_stream_close(s);
    twc_client_destroy(c);
}

/* A peer that accepts TCP but never speaks HTTP/2: the client's default deadline fires. */
static void unary_deadline_is_honoured(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof a;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", ntohs(a.sin_port));

    twc_client_opts o = {0};
    twc_client *c = NULL;
    o.target = target;
    o.timeout_ms = 500;
    twc_status st = twc_client_create(&o, &c);
    assert_int_equal(st.code, TWC_OK);
    Grpc__Health__V1__HealthCheckResponse *h = NULL;
    int64_t t0 = now_ms();
    st = twc_health_check(c, NULL, &h, NULL);
    int64_t el = now_ms() - t0;
    assert_int_equal(st.code, TWC_DEADLINE_EXCEEDED);
    assert_null(h);
    assert_true(el >= 400 && el < 5000);
    twc_status_clear(&st);

    twc_call_opts co = {0}; /* a per-call deadline wins over the client's */
    co.timeout_ms = 150;
    t0 = now_ms();
    st = twc_health_check(c, NULL, &h, &co);
    el = now_ms() - t0;
    assert_int_equal(st.code, TWC_DEADLINE_EXCEEDED);
    assert_true(el >= 100 && el < 450);
    twc_status_clear(&st);
    twc_client_destroy(c);
    close(fd);
}

static void closed_port_is_unavailable(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof a;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", ntohs(a.sin_port));
    close(fd); /* nobody listens there now */
    twc_client *c = connect_to(target, NULL);
    Grpc__Health__V1__HealthCheckResponse *h = NULL;
    twc_status st = twc_health_check(c, NULL, &h, NULL);
    assert_int_equal(st.code, TWC_UNAVAILABLE);
    assert_non_null(st.message);
    twc_status_clear(&st);
    twc_client_destroy(c);
}

/* Plaintext only to loopback; TLS to anywhere. */
static void plaintext_is_refused_off_loopback(void **state)
{
    (void)state;
    static const struct {
        const char *target;
        int ok;
    } cases[] = {
        {"127.0.0.1:50051", 1},
        {"127.1.2.3:1", 1},
        {"localhost:50051", 1},
        {"[::1]:50051", 1},
        {"ipv4:127.0.0.1:9", 1},
        {"unix:/tmp/tw.sock", 1},
        {"10.0.0.1:50051", 0},
        {"0.0.0.0:50051", 0},
        {"example.com:443", 0},
        {"127.0.0.1.evil.com:1", 0},
        {"localhost.evil.com:1", 0},
        {"[::ffff:10.0.0.1]:1", 0},
        {"dns:///127.0.0.1:50051", 0},
        {"[::2]:1", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        twc_client_opts o = {0};
        twc_client *c = NULL;
        o.target = cases[i].target;
        twc_status st = twc_client_create(&o, &c);
        if (cases[i].ok != (st.code == TWC_OK))
            fail_msg("plaintext to '%s': got %s", cases[i].target, twc_code_name(st.code));
        if (!cases[i].ok) {
            assert_int_equal(st.code, TWC_INVALID_ARGUMENT);
            assert_null(c);
        }
        twc_status_clear(&st);
        twc_client_destroy(c);
    }
    twc_client_opts o = {0}; /* the same remote name is fine over TLS */
    twc_client *c = NULL;
    o.target = "example.com:443";
    o.tls = 1;
    twc_status st = twc_client_create(&o, &c);
    assert_int_equal(st.code, TWC_OK);
    assert_int_equal(twc_client_is_tls(c), 1);
    twc_client_destroy(c);
}

static void bad_tls_settings_are_refused(void **state)
{
    (void)state;
    twc_client_opts o = {0};
    twc_client *c = NULL;
    o.target = srv.target;
    o.tls_ca_file = "/nonexistent/ca.pem";
    twc_status st = twc_client_create(&o, &c);
    assert_int_equal(st.code, TWC_INVALID_ARGUMENT);
    assert_null(c);
    twc_status_clear(&st);

    memset(&o, 0, sizeof o); /* mTLS needs both halves */
    o.target = srv.target;
    o.tls_cert_file = srv.keyfile;
    st = twc_client_create(&o, &c);
    assert_int_equal(st.code, TWC_INVALID_ARGUMENT);
    twc_status_clear(&st);

    /* TLS to a plaintext server: the handshake fails, which is a transport error. */
    memset(&o, 0, sizeof o);
    o.target = srv.target;
    o.tls = 1;
    o.timeout_ms = 3000;
    st = twc_client_create(&o, &c);
    assert_int_equal(st.code, TWC_OK);
    Grpc__Health__V1__HealthCheckResponse *h = NULL;
    st = twc_health_check(c, NULL, &h, NULL);
    assert_true(st.code == TWC_UNAVAILABLE || st.code == TWC_DEADLINE_EXCEEDED);
    assert_null(h);
    twc_status_clear(&st);
    twc_client_destroy(c);
}

static void wrong_request_type_is_refused_locally(void **state)
{
    (void)state;
    twc_client *c = connect_to(srv.target, user_token);
    Tradewink__V1__GetOrderRequest wrong = TRADEWINK__V1__GET_ORDER_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    twc_status st = twc_call_unary(c, &twc_auth_who_am_i_method, &wrong.base, &out, NULL);
    assert_int_equal(st.code, TWC_INVALID_ARGUMENT);
    assert_null(out);
    twc_status_clear(&st);
    twc_stream *s = NULL;
    st = twc_call_stream(c, &twc_auth_who_am_i_method, NULL, &s, NULL); /* unary as stream */
    assert_int_equal(st.code, TWC_INVALID_ARGUMENT);
    assert_null(s);
    twc_status_clear(&st);
    twc_call_opts o = {0};
    twc_metadata md[] = {{"authorization", "Bearer smuggled"}};
    o.metadata = md;
    o.metadata_count = 1;
    st = twc_call_unary(c, &twc_auth_who_am_i_method, NULL, &out, &o);
    assert_int_equal(st.code, TWC_INVALID_ARGUMENT);
    twc_status_clear(&st);
    twc_client_destroy(c);
}

static void code_names_round_trip(void **state)
{
    (void)state;
    for (int code = 0; code <= 16; code++)
        assert_int_equal(twc_code_from_name(twc_code_name(code)), code);
    assert_string_equal(twc_code_name(17), "UNKNOWN_CODE");
    assert_string_equal(twc_code_name(-1), "UNKNOWN_CODE");
    assert_int_equal(twc_code_from_name("NOPE"), -1);
    assert_int_equal(twc_code_from_name(NULL), -1);
    twc_status_clear(NULL);
    twc_client_destroy(NULL);
    twc_stream_close(NULL);
    twc_message_free(NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/tradewinkd\n", argv[0]);
        return 2;
    }
    server_binary = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(method_table_matches_service_descriptors),
        cmocka_unit_test(code_names_round_trip),
        cmocka_unit_test(every_generated_method_reaches_the_server),
        cmocka_unit_test(whoami_ok_with_a_locally_minted_dev_token),
        cmocka_unit_test(per_call_token_overrides_the_client_token),
        cmocka_unit_test(issued_dev_token_from_the_stub_authenticates),
        cmocka_unit_test(bad_tokens_map_to_unauthenticated),
        cmocka_unit_test(stream_without_token_ends_unauthenticated),
        cmocka_unit_test(health_check_and_watch_serve),
        cmocka_unit_test(stream_deadline_is_honoured),
        cmocka_unit_test(unary_deadline_is_honoured),
        cmocka_unit_test(closed_port_is_unavailable),
        cmocka_unit_test(plaintext_is_refused_off_loopback),
        cmocka_unit_test(bad_tls_settings_are_refused),
        cmocka_unit_test(wrong_request_type_is_refused_locally),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
