/*
 * tradewinkd: configuration, start-up in dependency order, signal handling, shutdown.
 * SIGINT/SIGTERM are blocked before grpc starts its threads and taken with sigwait here, so
 * no work ever runs in a signal handler. Shutdown order: report NOT_SERVING to health
 * watchers, give load balancers a moment to see it, then drain the transport.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/health.h"
#include "app.h"
#include "config/config.h"
#include "core/log.h"
#include "routes/routes_table.h"
#include "transport/transport.h"

#define TRIM_EVERY_S 20

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int main(int argc, char **argv)
{
    tw_config cfg;
    tw_routes routes = {0};
    srv_app app = {0};
    srv_transport *transport = NULL;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            tw_config_print_help(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--config-markdown") == 0) {
            tw_config_print_markdown(stdout);
            return 0;
        }
        fprintf(stderr, "tradewinkd: unknown argument '%s' (try --help)\n", argv[i]);
        return 2;
    }
    if (tw_config_load(&cfg, NULL, stderr) != 0) {
        fprintf(stderr, "tradewinkd: invalid configuration, not starting\n");
        tw_config_free(&cfg);
        return 2;
    }
    tw_log_setup((tw_log_level)cfg.log_level, 2);
    /* Everything the server creates (database, keys) is private to its user. */
    umask(0077);
    if (cfg.auth_mode != TW_AUTH_DEV) {
        /* Outside dev mode no core dump may carry keys or secrets out of the process. */
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    /* Fewer page faults under load: keep freed memory instead of trimming it back on every
     * free. What a burst left behind is returned by the main thread's periodic malloc_trim
     * (below), so the resident size follows the working set over minutes. Blocks of 256 KB
     * and more (result sets, list pages) are mapped and unmapped on their own, so they never
     * leave holes between the long-lived small allocations of the heap. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
    /* glibc gives each busy thread its own arena (up to 8 per core), and memory freed in one
     * is not reusable by the others: with a dozen executor and service threads the soak's
     * resident size was 105 MB against a 23 MB heap peak (heaptrack). Two arenas: 71 MB,
     * same call count. */
    mallopt(M_ARENA_MAX, 2);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (routes_table_build(cfg.sim_enabled, &routes, stderr) != 0)
        goto out;

    size_t nsvc;
    const ProtobufCServiceDescriptor *const *svcs = routes_table_services(cfg.sim_enabled, &nsvc);
    const char *names[16];
    for (size_t i = 0; i < nsvc && i < 16; i++)
        names[i] = svcs[i]->name;
    if (app_create(&app, &cfg, names, nsvc, &routes) != 0)
        goto out;

    srv_transport_global_init();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    srv_transport_config tc = {
        .listen = cfg.listen,
        .tls_cert_file = cfg.tls_cert_file,
        .tls_key_file = cfg.tls_key_file,
        .tls_client_ca_file = cfg.tls_client_ca_file,
        /* Completion queues: one per core (TW_WORKERS overrides). Blocking handlers run on the
         * executors, several per core, so a slow database or broker round trip neither idles
         * the CPU nor stalls the other calls of its connection. */
        .workers = cfg.workers > 0 ? cfg.workers : (ncpu > 0 ? (int)ncpu : 2),
        .executors = cfg.workers > 0 ? 4 * cfg.workers : (ncpu > 0 ? 4 * (int)ncpu : 8),
        .max_message_bytes = cfg.max_message_bytes,
        .shutdown_grace_ms = cfg.shutdown_grace_ms,
    };
    srv_hooks hooks = app_hooks(&app);
    int port = 0;
    if (srv_transport_create(&tc, &routes, &hooks, &transport, &port) != 0)
        goto out_grpc;
    if (app_start_prober(&app) != 0)
        goto out_grpc;
    if (srv_transport_start(transport) != 0)
        goto out_grpc;
    app_watch_listener(&app, transport);
    {
        tw_logline l;
        tw_log_begin(&l, TW_LOG_INFO, "listening");
        tw_log_str(&l, "addr", cfg.listen);
        tw_log_int(&l, "port", port);
        tw_log_str(&l, "tls",
                   cfg.tls_cert_file ? (cfg.tls_client_ca_file ? "mtls" : "tls") : "off");
        tw_log_int(&l, "workers", tc.workers);
        tw_log_int(&l, "executors", tc.executors);
        tw_log_int(&l, "ops_port", app.ops_port);
        tw_log_end(&l);
    }

    /* Wait for SIGINT/SIGTERM; meanwhile, every TRIM_EVERY_S, hand the free pages of the
     * malloc arenas (each keeps up to the trim threshold at its top) back to the kernel. */
    int sig;
    for (;;) {
        struct timespec every = {TRIM_EVERY_S, 0};
        sig = sigtimedwait(&sigs, NULL, &every);
        if (sig > 0)
            break;
        if (errno == EAGAIN)
            malloc_trim(0);
    }
    tw_logf(TW_LOG_INFO, "shutdown", "signal %d: draining", sig);
    app_stop_prober(&app);
    srv_health_set_serving(app.health, 0);
    sleep_ms(cfg.shutdown_grace_ms > 200 ? 200 : cfg.shutdown_grace_ms / 2);
    srv_transport_shutdown(transport);
    /* 3: the gRPC listener stopped accepting (app_watch_listener); restart, unlike 2. */
    rc = app.listener_dead ? 3 : 0;
out_grpc:
    srv_transport_destroy(transport);
    srv_transport_global_shutdown();
out:
    app_destroy(&app);
    routes_free(&routes);
    tw_config_free(&cfg);
    if (rc == 0)
        tw_logf(TW_LOG_INFO, "stopped", "clean shutdown");
    return rc;
}
