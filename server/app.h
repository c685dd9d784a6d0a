/*
 * srv_app: the process's services and what handlers reach through tw_call_app(). Built once
 * by app_create before the transport starts, read-only afterwards except through each
 * module's own thread-safe functions. app.c also holds the transport hooks (authentication,
 * authorization audit, rate limiting).
 */
#ifndef SRV_APP_H
#define SRV_APP_H

#include "brokers/broker.h"
#include "config/config.h"
#include "edge/metrics.h"
#include "transport/transport.h"

#include <pthread.h>
#include <stdio.h>

struct refl_index;
struct srv_health;
struct auth_verifier;
struct store;
struct vault;
struct users_cache;
struct audit_feed;
struct trading;
struct audit_signer;
struct vault_sealer;

typedef struct srv_app {
    const tw_config *cfg;
    struct refl_index *refl;
    struct srv_health *health;
    struct auth_verifier *auth;
    struct store *store;
    struct vault *vault;
    struct users_cache *users;
    struct audit_feed *audit_feed;
    struct trading *trading;
    struct audit_signer *audit_signer; /* TW_AUDIT_SIGNING_KEYS; NULL = no checkpoints */
    struct vault_sealer *sealer;       /* TW_VAULT_SEALING_KEYS; NULL = no sealed submission */
    struct edge_rl *rl;
    brk_shared_budget broker_budget; /* Alpaca's per-account budget in rl's Redis */
    struct edge_wh *wh;
    struct edge_ops *ops;
    edge_metrics *metrics;
    edge_tw_metrics m;
    int ops_port;
    const tw_routes *routes;
    /* Series indexes resolved once at start, so a call does no label lookups. */
    struct app_rpc_series *rpc_series; /* per route */
    size_t n_services;                 /* distinct services of the routes */
    const char **services;             /* their names (pointers into the route table) */
    size_t *unknown_series;            /* n_services + 1: (service, "unknown"), then neither */
    size_t (*unknown_handled)[17];     /* the same rows x grpc_code */
    edge_proc_metrics proc;
    /* Counters mirrored from other modules at each scrape (app_metrics_sync). */
    pthread_mutex_t sync_mu;
    uint64_t jwks_seen_ok, jwks_seen_failed;
    uint64_t decrypt_seen_ok, decrypt_seen_failed;
    uint64_t store_seen_statements, store_seen_commits;
    uint64_t ledger_seen_hits, ledger_seen_misses;
    uint64_t reads_seen_memory, reads_seen_database;

    /* Health prober: pings the store every second and flips health. */
    pthread_t prober;
    int prober_running;
    pthread_mutex_t prober_mu;
    pthread_cond_t prober_cv;
    int stopping;
    /* gRPC listener watch (app_watch_listener): set under prober_mu, read by /readyz. */
    srv_transport *transport;
    int grpc_answers;           /* last self-check answered (1 until the first one) */
    int64_t grpc_failing_since; /* CLOCK_MONOTONIC second of the first failure in a row, or 0 */
    volatile int listener_dead; /* exit status 3 once main has drained */
} srv_app;

/* Per route: the rpc row's series (started, handling, msg_*, in_flight share it), the
 * grpc_server_handled_total series per status code, and the deprecated tw_rpc_* ones. */
struct app_rpc_series {
    size_t row;
    size_t handled[17];
    size_t legacy_calls[17];
    size_t legacy_latency;
};

/* The metrics registry alone (what edge_create builds first): every family, label values
 * from the routes and from the risk engine's own rule names, series resolved per route.
 * Tests call it without the rest of the app. 0, or -1 after logging why. */
int app_metrics_create(srv_app *app, const tw_routes *routes);
/* Frees what app_metrics_create made (app_destroy calls it). */
void app_metrics_destroy(srv_app *app);

/* Build every module from cfg (which must outlive the app). names: the served services.
 * 0, or -1 after logging why (then app_destroy what was built). */
/* "tradewinkd VERSION (revision REV, gRPC core X)" and a newline: --version. */
void app_print_version(FILE *out);

int app_create(srv_app *app, const tw_config *cfg, const char *const *names, size_t nnames,
               const tw_routes *routes);
void app_destroy(srv_app *app);
/* Readiness, as /readyz and systemd's READY=1 see it: keys loaded, the store answers (the
 * prober's last ping) and the gRPC listener answered its last self-check. 1, or 0 with the
 * reason in reason. Any thread. */
int app_ready(srv_app *app, char *reason, size_t cap);
/* The interceptor hooks for the transport, bound to app. */
srv_hooks app_hooks(srv_app *app);
/* Start / stop the background health prober (store reachability -> grpc.health.v1). */
int app_start_prober(srv_app *app);
void app_stop_prober(srv_app *app);

/* Sign a checkpoint of every chain whose head moved since its newest checkpoint (the periodic
 * job; the prober thread runs it every TW_AUDIT_CHECKPOINT_INTERVAL_S). Returns how many were
 * signed, -1 on a store error. */
int app_audit_checkpoint_all(srv_app *app, int64_t now_us);
/* From now on the prober also calls Health/Check on t's own port every second (a new
 * connection each time, 1 s timeout): /readyz answers 503 while it fails, and after
 * APP_LISTENER_DEAD_S seconds of nothing but failures the process stops itself (SIGTERM to itself,
 * then listener_dead makes main exit with status 3) so its supervisor restarts it. gRPC 1.51.1
 * never accepts again after one EMFILE from accept4. Runs one check before returning. */
void app_watch_listener(srv_app *app, srv_transport *t);
#define APP_LISTENER_DEAD_S 10

#endif
