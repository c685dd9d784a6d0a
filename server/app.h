/*
 * srv_app: the process's services and what handlers reach through tw_call_app(). Built once
 * by app_create before the transport starts, read-only afterwards except through each
 * module's own thread-safe functions. app.c also holds the transport hooks (authentication,
 * authorization audit, rate limiting).
 */
#ifndef SRV_APP_H
#define SRV_APP_H

#include "config/config.h"
#include "edge/metrics.h"
#include "transport/transport.h"

#include <pthread.h>

struct refl_index;
struct srv_health;
struct auth_verifier;
struct store;
struct vault;
struct users_cache;
struct audit_feed;
struct trading;

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
    struct edge_rl *rl;
    struct edge_wh *wh;
    struct edge_ops *ops;
    edge_metrics *metrics;
    edge_tw_metrics m;
    int ops_port;
    const tw_routes *routes;
    size_t *lat_series;        /* per route: tw_rpc_latency_seconds series */
    size_t (*call_series)[17]; /* per route and status code: tw_rpc_calls_total series */
    uint64_t jwks_seen_ok, jwks_seen_failed;

    /* Health prober: pings the store every second and flips health. */
    pthread_t prober;
    int prober_running;
    pthread_mutex_t prober_mu;
    pthread_cond_t prober_cv;
    int stopping;
} srv_app;

/* Build every module from cfg (which must outlive the app). names: the served services.
 * 0, or -1 after logging why (then app_destroy what was built). */
int app_create(srv_app *app, const tw_config *cfg, const char *const *names, size_t nnames,
               const tw_routes *routes);
void app_destroy(srv_app *app);
/* The interceptor hooks for the transport, bound to app. */
srv_hooks app_hooks(srv_app *app);
/* Start / stop the background health prober (store reachability -> grpc.health.v1). */
int app_start_prober(srv_app *app);
void app_stop_prober(srv_app *app);

#endif
