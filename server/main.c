/*
 * tradewinkd: configuration, start-up in dependency order, signal handling, shutdown.
 * SIGINT/SIGTERM are blocked before grpc starts its threads and taken with sigwait here, so
 * no work ever runs in a signal handler. Shutdown order: report NOT_SERVING to health
 * watchers, give load balancers a moment to see it, then drain the transport.
 *
 * Under systemd (Type=notify) the same loop tells the manager READY=1 once the listener
 * serves and the store answers (app_ready, what /readyz answers), STOPPING=1 when draining
 * starts, and feeds the watchdog (WatchdogSec=) only while every completion-queue worker
 * keeps coming back from its queue (srv_transport_progress): a wedged worker stops the
 * pings and systemd restarts the process. Without NOTIFY_SOCKET nothing is sent.
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

#include "core/clock.h"
#include "admin/health.h"
#include "admin/sdnotify.h"
#include "app.h"
#include "audit/checkpoint.h"
#include "config/config.h"
#include "core/log.h"
#include "routes/routes_table.h"
#include "transport/transport.h"

extern char **environ; /* POSIX: the process's environment (unistd.h declares it only for GNU) */

#define TRIM_EVERY_S 20

/* Waits for SIGINT/SIGTERM and returns it. Meanwhile: READY=1 as soon as the app is ready
 * (checked every NOT_READY_POLL_MS until then), WATCHDOG=1 every half watchdog interval if
 * the completion queues made progress in it, and every TRIM_EVERY_S the free pages of the
 * malloc arenas (each keeps up to the trim threshold at its top) go back to the kernel. */
#define NOT_READY_POLL_MS 100

static int serve_until_signal(srv_app *app, srv_transport *t, const sigset_t *sigs)
{
    uint64_t wd_usec = srv_sd_watchdog_usec();
    int64_t wd_every = wd_usec ? (int64_t)(wd_usec / 2000) : 0; /* ms */
    size_t nq = (size_t)srv_transport_queues(t);
    uint64_t *seen = calloc(nq ? nq : 1, sizeof(*seen));
    int ready = 0, stalled = 0, sig = 0;
    char why[128] = "", last_why[128] = "";
    int64_t now = tw_mono_ms(), next_trim = now + TRIM_EVERY_S * 1000, next_wd = now + wd_every;
    if (!seen)
        wd_every = 0; /* cannot tell progress: never feed, so systemd notices */
    else
        srv_transport_progress(t, seen, nq);
    for (;;) {
        if (!ready) {
            if (app_ready(app, why, sizeof(why))) {
                ready = 1;
                srv_sd_ready("serving");
                tw_logf(TW_LOG_INFO, "ready", "listener serves and the store answers");
            } else if (strcmp(why, last_why) != 0) {
                srv_sd_status(why);
                snprintf(last_why, sizeof(last_why), "%s", why);
            }
        }
        now = tw_mono_ms();
        int64_t wait = next_trim - now;
        if (wd_every && next_wd - now < wait)
            wait = next_wd - now;
        if (!ready && wait > NOT_READY_POLL_MS)
            wait = NOT_READY_POLL_MS;
        if (wait < 1)
            wait = 1;
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        sig = sigtimedwait(sigs, NULL, &ts);
        if (sig > 0)
            break;
        now = tw_mono_ms();
        if (wd_every && now >= next_wd) {
            next_wd = now + wd_every;
            if (srv_transport_progress(t, seen, nq)) {
                srv_sd_watchdog();
                if (stalled)
                    tw_logf(TW_LOG_INFO, "watchdog", "completion queues progress again");
                stalled = 0;
            } else if (!stalled) {
                stalled = 1;
                tw_logf(TW_LOG_ERROR, "watchdog",
                        "a completion-queue worker made no progress for %lld ms: watchdog not "
                        "fed",
                        (long long)wd_every);
            }
        }
        if (now >= next_trim) {
            malloc_trim(0);
            next_trim = now + TRIM_EVERY_S * 1000;
        }
    }
    free(seen);
    return sig;
}

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

    int print_audit_keys = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--audit-public-keys") == 0) {
            print_audit_keys = 1;
            continue;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            tw_config_print_help(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--config-markdown") == 0) {
            tw_config_print_markdown(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            app_print_version(stdout);
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
    if (print_audit_keys) {
        /* The public halves of TW_AUDIT_SIGNING_KEYS, for `twctl audit verify --public-keys`:
         * checkpoints verify offline with these lines and nothing else. */
        audit_signer *signer = NULL;
        char why[128];
        rc = audit_signer_parse(cfg.audit_signing_keys, &signer, why, sizeof(why)) == 0 && signer &&
                     audit_signer_print_public(signer, stdout) == 0
                 ? 0
                 : 2;
        if (rc != 0)
            fprintf(stderr, "tradewinkd: TW_AUDIT_SIGNING_KEYS is not set\n");
        audit_signer_destroy(signer);
        tw_config_free(&cfg);
        return rc;
    }
    tw_log_setup((tw_log_level)cfg.log_level, 2);
    /* A TW_* name that is no setting is most often a typo of one, silently left at its
     * default: say so, with the nearest name. */
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        char name[64];
        if (strncmp(*e, "TW_", 3) != 0 || !eq || (size_t)(eq - *e) >= sizeof(name))
            continue;
        memcpy(name, *e, (size_t)(eq - *e));
        name[eq - *e] = '\0';
        if (tw_config_is_setting(name))
            continue;
        const char *near = tw_config_nearest(name);
        tw_logf(TW_LOG_WARN, "config", "%s is not a setting and is ignored%s%s%s", name,
                near ? " (did you mean " : "", near ? near : "", near ? "?)" : "");
    }
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
        .trusted_fronts = cfg.trusted_fronts,
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

    int sig = serve_until_signal(&app, transport, &sigs);
    srv_sd_stopping("draining");
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
