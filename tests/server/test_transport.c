/*
 * srv_transport_progress, what the systemd watchdog is fed from: no progress before the
 * workers run, progress while they idle, none while the only worker is wedged inside a
 * callback (a hook that sleeps on the completion-queue thread), progress again after.
 * The call that wedges it is a real gRPC call from Debian's python3-grpcio to 127.0.0.1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "routes/routes_table.h"
#include "transport/transport.h"

static atomic_int entered, left;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs on the worker thread that answered the unknown method: holds it for 1.5 s. */
static void wedge(void *app, const char *path, size_t len, tw_code code, int64_t latency_us)
{
    (void)app, (void)path, (void)len, (void)code, (void)latency_us;
    atomic_store(&entered, 1);
    sleep_ms(1500);
    atomic_store(&left, 1);
}

static int port;

static void *client(void *arg)
{
    char cmd[512];
    (void)arg;
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import grpc; ch = grpc.insecure_channel('127.0.0.1:%d');\n"
             "try: ch.unary_unary('/no.Such/Method')(b'', timeout=10)\n"
             "except grpc.RpcError: pass\" >/dev/null 2>&1",
             port);
    if (system(cmd) != 0)
        fprintf(stderr, "client exited non-zero\n");
    return NULL;
}

static int wait_flag(atomic_int *f, int ms)
{
    for (int i = 0; i < ms / 10 && !atomic_load(f); i++)
        sleep_ms(10);
    return atomic_load(f);
}

static void test_progress_follows_the_workers(void **state)
{
    tw_routes routes = {0};
    srv_transport *t = NULL;
    srv_hooks hooks = {.on_unknown = wedge};
    srv_transport_config cfg = {.listen = "127.0.0.1:0",
                                .workers = 1,
                                .executors = 1,
                                .max_message_bytes = 1 << 20,
                                .shutdown_grace_ms = 1000};
    uint64_t seen[1] = {0};
    pthread_t th;
    (void)state;
    assert_int_equal(routes_table_build(0, &routes, stderr), 0);
    srv_transport_global_init();
    assert_int_equal(srv_transport_create(&cfg, &routes, &hooks, &t, &port), 0);
    assert_int_equal(srv_transport_queues(t), 1);
    /* Not started: nobody polls the queue. */
    assert_int_equal(srv_transport_progress(t, seen, 1), 0);
    sleep_ms(300);
    assert_int_equal(srv_transport_progress(t, seen, 1), 0);

    assert_int_equal(srv_transport_start(t), 0);
    sleep_ms(500);
    assert_int_equal(srv_transport_progress(t, seen, 1), 1); /* idle, still coming back */
    sleep_ms(500);
    assert_int_equal(srv_transport_progress(t, seen, 1), 1);

    assert_int_equal(pthread_create(&th, NULL, client, NULL), 0);
    assert_true(wait_flag(&entered, 15000));
    srv_transport_progress(t, seen, 1); /* the window starts inside the wedge */
    sleep_ms(500);
    assert_int_equal(srv_transport_progress(t, seen, 1), 0);
    assert_true(wait_flag(&left, 5000));
    sleep_ms(500);
    srv_transport_progress(t, seen, 1);
    sleep_ms(500);
    assert_int_equal(srv_transport_progress(t, seen, 1), 1);
    pthread_join(th, NULL);

    srv_transport_destroy(t);
    srv_transport_global_shutdown();
    routes_free(&routes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_follows_the_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
