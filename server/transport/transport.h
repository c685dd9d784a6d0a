/*
 * srv_transport: tradewinkd's gRPC server on the core C API. N worker threads, each polling
 * its own completion queue; every route registered with grpc core; calls run the interceptor
 * chain (deadline -> authenticate -> authorize -> rate limit -> decode -> handler -> encode)
 * and end with one access-log line. All grpc types stay inside this folder.
 */
#ifndef SRV_TRANSPORT_H
#define SRV_TRANSPORT_H

#include <stdint.h>

#include "core/call.h"
#include "routes/routes.h"

typedef struct srv_transport srv_transport;

/* Interceptor hooks, all optional (NULL = step skipped; without authenticate every non-public
 * route answers UNAUTHENTICATED). Called on worker threads, concurrently. */
typedef struct {
    void *app; /* handed to every hook and to tw_call_app() */
    /* authorization: the single `authorization` metadata value, or NULL. Fill *out. */
    tw_status (*authenticate)(void *app, tw_call *c, const char *authorization, tw_principal *out);
    tw_status (*rate_limit)(void *app, tw_call *c, tw_rate_class cls);
    /* A caller authenticated but lacking the route's role (for AUTH_DENIED audit). */
    void (*on_denied)(void *app, tw_call *c);
    /* Metrics. Every routed call gets exactly one on_start (on arrival) and one on_done (its
     * status went out, or it was cancelled), in that order; on_msg for each message received
     * (sent = 0) or sent (sent = 1) in between. The self-check's own calls get none. */
    void (*on_start)(void *app, const tw_route *r);
    void (*on_msg)(void *app, const tw_route *r, int sent);
    void (*on_done)(void *app, const tw_route *r, tw_code code, int64_t latency_us);
    /* A call to a path no route serves, once it was answered (UNIMPLEMENTED, or CANCELLED):
     * path is the client's bytes (len of them, not NUL-terminated, any content). */
    void (*on_unknown)(void *app, const char *path, size_t len, tw_code code, int64_t latency_us);
} srv_hooks;

typedef struct {
    const char *listen; /* host:port; port 0 picks a free one */
    const char *tls_cert_file, *tls_key_file, *tls_client_ca_file; /* NULL = plaintext */
    int workers;           /* completion-queue threads, >= 1 */
    int executors;         /* threads running blocking (non-public) unary handlers; 0 = workers */
    int max_message_bytes; /* request cap */
    int shutdown_grace_ms; /* in-flight calls get this long on shutdown */
    /* TW_TRUSTED_FRONTS (validated): from these peers only, a single valid x-forwarded-for
     * names the call's peer (tw_call_peer, "ipv4:ADDR:0"). NULL = never. */
    const char *trusted_fronts;
} srv_transport_config;

/* Create, register every route and bind. *port gets the bound port. 0 on success; on failure
 * logs why and returns -1 with *out NULL. routes must outlive the transport. */
int srv_transport_create(const srv_transport_config *cfg, const tw_routes *routes,
                         const srv_hooks *hooks, srv_transport **out, int *port);
/* Start the worker threads. */
int srv_transport_start(srv_transport *t);
/* Graceful stop: refuse new calls, end open streams with UNAVAILABLE, wait up to the grace
 * period for in-flight calls, cancel the rest, join workers. Idempotent. */
void srv_transport_shutdown(srv_transport *t);
/* Shutdown if needed, then free. NULL is a no-op. */
void srv_transport_destroy(srv_transport *t);

/* Readiness: one grpc.health.v1.Health/Check to our own port over a brand-new connection,
 * bounded by timeout_ms. 0 = the listener accepted and answered OK (whatever the serving
 * status), -1 = it did not. Under TLS the check does not verify the listener's certificate
 * (it dials the port this process bound); under mTLS it presents a certificate made in
 * memory at start (selfcert.h) that the listener trusts besides TW_TLS_CLIENT_CA_FILE. The
 * call carries a random per-process token, so it writes no access line, counts in no
 * metric and no rate limit. Blocking; any thread. */
int srv_transport_self_check(srv_transport *t, int timeout_ms);

/* Liveness for the systemd watchdog: 1 when every completion-queue worker came back from its
 * queue since the previous call (they do at least every 200 ms, idle or not), else 0 (a
 * worker wedged in grpc or in a callback; or the transport is not started). seen holds n
 * counters, zero at first, updated in place; n must be srv_transport_queues(t). One caller. */
int srv_transport_progress(srv_transport *t, uint64_t *seen, size_t n);
int srv_transport_queues(const srv_transport *t);

/* grpc core's version ("1.51.1"), for the build-info metric. Static string. */
const char *srv_transport_grpc_version(void);

/* Process-wide grpc init/teardown; call once each from main. */
void srv_transport_global_init(void);
void srv_transport_global_shutdown(void);

#endif
