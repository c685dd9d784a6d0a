/*
 * Application wiring: builds the modules in dependency order (log redaction, store and
 * migrations, vault, auth, health, reflection) and provides the transport's interceptor hooks.
 * Authentication failures are logged with the verifier's precise reason (never the token) and
 * answered with one generic message. A user row is created on the first authenticated call;
 * subject -> user id is cached so later calls do not touch the database for it.
 */
#include "app.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/health.h"
#include "admin/reflection.h"
#include "auth/auth.h"
#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "core/clock.h"
#include "core/log.h"
#include "edge/ops_http.h"
#include "edge/ratelimit.h"
#include "edge/webhook.h"
#include "risk/risk.h"
#include "services/services.h"
#include "store/store.h"
#include "trading/trading.h"
#include "vault/vault.h"

extern const unsigned char tw_descriptor_set[];
extern const size_t tw_descriptor_set_len;

/* ---- subject -> user id cache ---------------------------------------------------------- */

#define USERS_CACHE_SLOTS 4096

struct users_slot {
    char subject[STORE_SUBJECT_MAX + 1];
    int64_t user_id;
};

struct users_cache {
    pthread_mutex_t mu;
    struct users_slot slots[USERS_CACHE_SLOTS]; /* direct-mapped by hash; a miss re-reads */
};

static size_t subject_hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h % USERS_CACHE_SLOTS;
}

static int64_t users_lookup(struct users_cache *uc, const char *subject)
{
    int64_t id = 0;
    struct users_slot *slot = &uc->slots[subject_hash(subject)];
    pthread_mutex_lock(&uc->mu);
    if (strcmp(slot->subject, subject) == 0)
        id = slot->user_id;
    pthread_mutex_unlock(&uc->mu);
    return id;
}

static void users_remember(struct users_cache *uc, const char *subject, int64_t id)
{
    struct users_slot *slot = &uc->slots[subject_hash(subject)];
    pthread_mutex_lock(&uc->mu);
    snprintf(slot->subject, sizeof(slot->subject), "%s", subject);
    slot->user_id = id;
    pthread_mutex_unlock(&uc->mu);
}

static tw_status resolve_user(srv_app *app, tw_principal *p)
{
    int64_t id = users_lookup(app->users, p->subject);
    if (id) {
        p->user_id = id;
        return tw_ok();
    }
    store_conn *conn;
    store_rc rc = store_conn_acquire(app->store, &conn);
    if (rc == STORE_OK) {
        store_user u;
        rc = store_user_get_or_create(conn, p->subject,
                                      p->role == TW_ROLE_ADMIN ? STORE_ROLE_ADMIN : STORE_ROLE_USER,
                                      &u, NULL);
        store_conn_release(conn);
        if (rc == STORE_OK) {
            users_remember(app->users, p->subject, u.id);
            p->user_id = u.id;
            return tw_ok();
        }
    }
    tw_logf(TW_LOG_WARN, "user_resolve", "store: %s", store_rc_name(rc));
    if (rc == STORE_INVALID)
        return tw_err(TW_UNAUTHENTICATED, "invalid or missing credentials");
    return tw_err(TW_UNAVAILABLE, "database unavailable, retry later");
}

/* ---- hooks ------------------------------------------------------------------------------ */

/* "ipv4:1.2.3.4:5555" -> "1.2.3.4", "ipv6:[::1]:5555" -> "[::1]": the rate-limit key of a
 * peer (the port changes per connection). */
static void peer_host(const char *peer, char *out, size_t cap)
{
    const char *p = strchr(peer, ':');
    p = p ? p + 1 : peer;
    const char *end = strrchr(p, ':');
    size_t n = end && end > p ? (size_t)(end - p) : strlen(p);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* RESOURCE_EXHAUSTED with the retry hint both ways: the standard RetryInfo detail (sent by the
 * transport with ErrorInfo RATE_LIMITED, core/errdetail.h) and a plain retry-after-ms trailer.
 * Nothing of the request runs. */
static tw_status rate_denied(srv_app *app, tw_call *c, edge_rl_class cls, int64_t retry_ms)
{
    static const char msg[] = "rate limit exceeded, retry later";
    char ms[32];
    if (retry_ms < 1)
        retry_ms = 1;
    snprintf(ms, sizeof(ms), "%lld", (long long)retry_ms);
    tw_call_add_trailer(c, "retry-after-ms", ms);
    if (app->metrics)
        edge_metric_inc1(app->m.ratelimit_rejects, edge_rl_class_name(cls));
    tw_status st = tw_err_reason(TW_RESOURCE_EXHAUSTED, "RATE_LIMITED", msg);
    st.retry_ms = retry_ms;
    return st;
}

/* The call's principal from a verified token (user_id is resolve_user's). */
static tw_status principal_from(tw_call *c, const auth_principal *p, tw_principal *out)
{
    out->subject = tw_arena_strdup(tw_call_arena(c), p->subject);
    if (!out->subject)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    out->role = p->role == AUTH_ROLE_ADMIN ? TW_ROLE_ADMIN : TW_ROLE_USER;
    out->expires_at = p->expires_at;
    out->issued_at = p->issued_at;
    return tw_ok();
}

static tw_status app_authenticate(void *appv, tw_call *c, const char *authorization,
                                  tw_principal *out)
{
    srv_app *app = appv;
    auth_principal p;
    const char *reason = "no verifier";
    char host[80];
    int64_t retry = 0;
    /* Inline (a fast route on a completion-queue thread): only with an in-process limiter, a
     * token the cache verified and a user the process knows; anything else is done again on an
     * executor, before any of it was counted. */
    bool inl = tw_call_inline(c);
    if (inl && app->rl && edge_rl_uses_redis(app->rl)) {
        tw_call_defer(c);
        return tw_ok();
    }
    peer_host(tw_call_peer(c), host, sizeof(host));
    /* A peer over its failed-authentication budget is refused before any verification. */
    if (app->rl && edge_rl_peek(app->rl, EDGE_RL_AUTH_FAIL, host, &retry) == EDGE_RL_DENY)
        return rate_denied(app, c, EDGE_RL_AUTH_FAIL, retry);
    if (inl) {
        if (!app->auth || !app->store ||
            auth_verify_cached(app->auth, authorization, tw_wall_seconds(), &p) != AUTH_OK ||
            !(out->user_id = users_lookup(app->users, p.subject))) {
            tw_call_defer(c);
            return tw_ok();
        }
        return principal_from(c, &p, out);
    }
    if (!app->auth ||
        auth_verify(app->auth, authorization, tw_wall_seconds(), &p, &reason) != AUTH_OK) {
        /* Only a presented credential that fails counts: guessing needs one. */
        if (app->rl && authorization)
            edge_rl_check(app->rl, EDGE_RL_AUTH_FAIL, host, NULL);
        if (app->metrics)
            edge_metric_inc0(app->m.auth_failures);
        tw_logline l;
        tw_log_begin(&l, TW_LOG_WARN, "auth_failed");
        tw_log_uint(&l, "req_id", tw_call_id(c));
        tw_log_str(&l, "method", tw_call_method(c));
        tw_log_str(&l, "peer", tw_call_peer(c));
        tw_log_str(&l, "reason", reason);
        tw_log_end(&l);
        return tw_err(TW_UNAUTHENTICATED, "invalid or missing credentials");
    }
    tw_status st = principal_from(c, &p, out);
    return st.code == TW_OK && app->store ? resolve_user(app, out) : st;
}

static void app_denied(void *appv, tw_call *c)
{
    srv_app *app = appv;
    const tw_principal *p = tw_call_principal(c);
    /* Role failures on admin methods are audited in the caller's own chain. */
    store_conn *conn;
    if (app->store && p->user_id && store_conn_acquire(app->store, &conn) == STORE_OK) {
        char details[400];
        const tw_trace *t = tw_call_trace(c);
        snprintf(details, sizeof(details),
                 "{\"trace_id\":\"%s\",\"span_id\":\"%s\",\"method\":\"%s\"}", t->trace_id,
                 t->span_id, tw_call_method(c));
        audit_entry e = {.user_id = p->user_id,
                         .actor = "user",
                         .actor_id = p->subject,
                         .action = "AUTH_DENIED",
                         .object_id = tw_call_method(c),
                         .outcome = "DENIED",
                         .details = details};
        if (store_tx_begin_user(conn, p->user_id) == STORE_OK) {
            if (audit_append(conn, &e, tw_wall_us(), NULL) == STORE_OK)
                store_tx_commit(conn);
            else
                store_tx_rollback(conn);
        }
        store_conn_release(conn);
    }
    tw_logline l;
    tw_log_begin(&l, TW_LOG_WARN, "auth_denied");
    tw_log_uint(&l, "req_id", tw_call_id(c));
    tw_log_str(&l, "method", tw_call_method(c));
    tw_log_str(&l, "principal", tw_call_principal(c)->subject);
    tw_log_end(&l);
}

static tw_status app_rate_limit(void *appv, tw_call *c, tw_rate_class cls)
{
    srv_app *app = appv;
    edge_rl_class ec;
    char key[80];
    switch (cls) {
    case TW_RL_PUBLIC:
        ec = EDGE_RL_PUBLIC;
        break;
    case TW_RL_ORDERS:
        ec = EDGE_RL_ORDERS;
        break;
    case TW_RL_KEY_SUBMIT:
        ec = EDGE_RL_KEY_SUBMIT;
        break;
    default:
        ec = EDGE_RL_API;
    }
    /* Per user by token subject (stable across databases and replicas), per peer otherwise.
     * The limiter hashes long keys. */
    const tw_principal *p = tw_call_principal(c);
    char keybuf[300];
    const char *k = key;
    if (ec == EDGE_RL_PUBLIC || !p->subject) {
        peer_host(tw_call_peer(c), key, sizeof(key));
    } else {
        snprintf(keybuf, sizeof(keybuf), "s:%s", p->subject);
        k = keybuf;
    }
    int64_t retry = 0;
    if (tw_call_inline(c) && app->rl && edge_rl_uses_redis(app->rl)) {
        tw_call_defer(c); /* a Redis round trip (authenticate defers first; said again here) */
        return tw_ok();
    }
    if (app->rl && edge_rl_check(app->rl, ec, k, &retry) == EDGE_RL_DENY)
        return rate_denied(app, c, ec, retry);
    return tw_ok();
}

/* The per-route series of r, resolved once at start, or NULL (no metrics, foreign route). */
static const struct app_rpc_series *route_series(srv_app *app, const tw_route *r)
{
    if (!app->metrics || !r || !app->routes)
        return NULL;
    size_t i = (size_t)(r - app->routes->routes);
    return i < app->routes->count ? &app->rpc_series[i] : NULL;
}

static void app_start(void *appv, const tw_route *r)
{
    srv_app *app = appv;
    const struct app_rpc_series *rs = route_series(app, r);
    if (!rs)
        return;
    edge_metric_add(app->m.started, rs->row, 1);
    edge_metric_gauge_add(app->m.in_flight, rs->row, 1);
}

static void app_msg(void *appv, const tw_route *r, int sent)
{
    srv_app *app = appv;
    const struct app_rpc_series *rs = route_series(app, r);
    if (rs)
        edge_metric_add(sent ? app->m.msg_sent : app->m.msg_received, rs->row, 1);
}

static void app_done(void *appv, const tw_route *r, tw_code code, int64_t latency_us)
{
    srv_app *app = appv;
    const struct app_rpc_series *rs = route_series(app, r);
    if (!rs || (unsigned)code > 16)
        return;
    double s = (double)latency_us / 1e6;
    edge_metric_gauge_add(app->m.in_flight, rs->row, -1);
    edge_metric_add(app->m.handled, rs->handled[code], 1);
    edge_metric_observe(app->m.handling, rs->row, s);
    edge_metric_add(app->m.rpc_calls, rs->legacy_calls[code], 1);
    edge_metric_observe(app->m.rpc_latency, rs->legacy_latency, s);
}

/* A path no route serves: counted under its service when that is one we serve, else under
 * ("unknown", "unknown"); the method is always "unknown". The client chooses the path, so
 * nothing of it becomes a label value of its own (cardinality stays n_services + 1). Started
 * and handled are counted together: nothing of such a call runs in between. */
static void app_unknown(void *appv, const char *path, size_t len, tw_code code, int64_t latency_us)
{
    srv_app *app = appv;
    if (!app->metrics || (unsigned)code > 16)
        return;
    size_t row = app->n_services; /* neither */
    const char *slash = len > 1 && path[0] == '/' ? memchr(path + 1, '/', len - 1) : NULL;
    for (size_t i = 0; slash && i < app->n_services; i++) {
        size_t n = strlen(app->services[i]);
        if ((size_t)(slash - path - 1) == n && memcmp(path + 1, app->services[i], n) == 0) {
            row = i;
            break;
        }
    }
    edge_metric_add(app->m.started, app->unknown_series[row], 1);
    edge_metric_add(app->m.handled, app->unknown_handled[row][code], 1);
    edge_metric_observe(app->m.handling, app->unknown_series[row], (double)latency_us / 1e6);
}

srv_hooks app_hooks(srv_app *app)
{
    srv_hooks h = {
        .app = app,
        .authenticate = app_authenticate,
        .rate_limit = app_rate_limit,
        .on_denied = app_denied,
        .on_start = app_start,
        .on_msg = app_msg,
        .on_done = app_done,
        .on_unknown = app_unknown,
    };
    return h;
}

/* ---- edge: metrics, limiter, ops port, webhooks ---------------------------------------- */

static void rl_fallback(void *ctx, int fallback)
{
    srv_app *app = ctx;
    if (app->metrics)
        edge_metric_set(app->m.redis_fallback, 0, fallback);
    tw_logf(fallback ? TW_LOG_WARN : TW_LOG_INFO, "ratelimit",
            fallback ? "redis unreachable: using the in-process limiter"
                     : "redis reachable again: shared limits resumed");
}

/* One counter another module keeps (now, monotonic) mirrored into series of m: what it
 * gained since *seen. */
static void sync_counter(edge_metric *m, size_t series, uint64_t now, uint64_t *seen)
{
    if (now > *seen)
        edge_metric_add(m, series, now - *seen);
    *seen = now;
}

/* Counters other modules keep themselves, mirrored into the registry as deltas. Runs at
 * the start of every scrape (edge_metrics_on_render), so /metrics is exact when read. */
static void app_metrics_sync(void *ctx)
{
    srv_app *app = ctx;
    pthread_mutex_lock(&app->sync_mu);
    edge_proc_metrics_update(&app->proc);
    if (app->auth) {
        auth_stats as;
        auth_verifier_stats(app->auth, &as);
        uint64_t ok = as.jwks_fetches - as.jwks_fetch_failures;
        const char *okv[] = {"ok"}, *errv[] = {"error"};
        sync_counter(app->m.jwks_fetches, edge_metric_series(app->m.jwks_fetches, okv), ok,
                     &app->jwks_seen_ok);
        sync_counter(app->m.jwks_fetches, edge_metric_series(app->m.jwks_fetches, errv),
                     as.jwks_fetch_failures, &app->jwks_seen_failed);
    }
    if (app->store) {
        uint64_t stmts, commits;
        store_counts(app->store, &stmts, &commits);
        sync_counter(app->m.store_statements, 0, stmts, &app->store_seen_statements);
        sync_counter(app->m.store_commits, 0, commits, &app->store_seen_commits);
    }
    if (app->vault) {
        uint64_t ok, failed;
        vault_decrypt_counts(app->vault, &ok, &failed);
        sync_counter(app->m.key_decryptions, 0, ok, &app->decrypt_seen_ok);
        sync_counter(app->m.key_decryptions, 1, failed, &app->decrypt_seen_failed);
    }
    if (app->trading) {
        ledger_book_stats_t ls;
        trading_ledger_stats(app->trading, &ls);
        edge_metric_set(app->m.ledger_books, 0, (int64_t)ls.books);
        edge_metric_set(app->m.ledger_book_bytes, 0, (int64_t)ls.bytes);
        sync_counter(app->m.ledger_takes, 0, ls.hits, &app->ledger_seen_hits);
        sync_counter(app->m.ledger_takes, 1, ls.misses, &app->ledger_seen_misses);
        uint64_t from_memory, from_database;
        trading_read_counts(app->trading, &from_memory, &from_database);
        sync_counter(app->m.ledger_reads, 0, from_memory, &app->reads_seen_memory);
        sync_counter(app->m.ledger_reads, 1, from_database, &app->reads_seen_database);
        size_t up, down;
        trading_streams_count(app->trading, &up, &down);
        edge_metric_set(app->m.alpaca_streams, 0, (int64_t)up);
        edge_metric_set(app->m.alpaca_streams, 1, (int64_t)down);
    }
    pthread_mutex_unlock(&app->sync_mu);
}

/* 1 when name is one of list[0..n). */
static int has_service(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return 1;
    return 0;
}

void app_print_version(FILE *out)
{
    fprintf(out, "tradewinkd %s (revision %s, gRPC core %s)\n", TW_VERSION, TW_REVISION,
            srv_transport_grpc_version());
}

int app_metrics_create(srv_app *app, const tw_routes *routes)
{
    static const char *const statuses[] = {ORD_PENDING_CONFIRMATION,
                                           ORD_PENDING_SUBMIT,
                                           ORD_ACCEPTED,
                                           ORD_PARTIALLY_FILLED,
                                           ORD_FILLED,
                                           ORD_CANCELED,
                                           ORD_REJECTED,
                                           ORD_EXPIRED};
    char err[512] = "";
    const char *rules[64];
    size_t n_rules = 0;
    int rc = -1;
    /* The engine's own names, so a rule can never be counted under a different spelling
     * (codes are contiguous from 1 and only ever appended: see risk.h). */
    for (int code = 1; n_rules < 64; code++) {
        const char *name = risk_code_name((risk_code)code);
        if (strcmp(name, "unknown") == 0)
            break;
        rules[n_rules++] = name;
    }
    size_t nr = routes->count;
    /* Rows: every route, then (service, unknown) per served service, then (unknown, unknown). */
    size_t cap = 2 * nr + 1;
    const char **types = calloc(cap, sizeof(char *));
    const char **svcs = calloc(cap, sizeof(char *));
    const char **meths = calloc(cap, sizeof(char *));
    const char **paths = calloc(nr ? nr : 1, sizeof(char *));
    app->services = calloc(nr ? nr : 1, sizeof(char *));
    app->rpc_series = calloc(nr ? nr : 1, sizeof(*app->rpc_series));
    app->unknown_series = calloc(nr + 1, sizeof(*app->unknown_series));
    app->unknown_handled = calloc(nr + 1, sizeof(*app->unknown_handled));
    pthread_mutex_init(&app->sync_mu, NULL);
    if (!types || !svcs || !meths || !paths || !app->services || !app->rpc_series ||
        !app->unknown_series || !app->unknown_handled)
        goto out;
    size_t n = 0;
    for (size_t i = 0; i < nr; i++) {
        const tw_route_def *d = routes->routes[i].def;
        types[n] = edge_grpc_type_name(d->kind == TW_KIND_SERVER_STREAM ? EDGE_GRPC_SERVER_STREAM
                                       : d->kind == TW_KIND_BIDI_STREAM ? EDGE_GRPC_BIDI_STREAM
                                                                        : EDGE_GRPC_UNARY);
        svcs[n] = d->service;
        meths[n++] = d->method;
        paths[i] = routes->routes[i].path;
        if (!has_service(app->services, app->n_services, d->service))
            app->services[app->n_services++] = d->service;
    }
    /* An unknown method is answered at once with UNIMPLEMENTED, as a unary call would be. */
    for (size_t i = 0; i <= app->n_services; i++) {
        types[n] = edge_grpc_type_name(EDGE_GRPC_UNARY);
        svcs[n] = i < app->n_services ? app->services[i] : EDGE_GRPC_UNKNOWN;
        meths[n++] = EDGE_GRPC_UNKNOWN;
    }
    edge_tw_metrics_spec spec = {.rpc_types = types,
                                 .rpc_services = svcs,
                                 .rpc_methods = meths,
                                 .n_rpcs = n,
                                 .methods = paths,
                                 .n_methods = nr,
                                 .risk_rules = rules,
                                 .n_risk_rules = n_rules,
                                 .order_statuses = statuses,
                                 .n_order_statuses = sizeof(statuses) / sizeof(statuses[0]),
                                 .version = TW_VERSION,
                                 .revision = TW_REVISION,
                                 .grpc_version = srv_transport_grpc_version()};
    app->metrics = edge_metrics_create();
    if (!app->metrics ||
        edge_tw_metrics_register(app->metrics, &spec, &app->m, err, sizeof(err)) != 0 ||
        edge_proc_metrics_register(app->metrics, &app->proc, err, sizeof(err)) != 0)
        goto out;
    app->routes = routes;
    for (size_t i = 0; i < n; i++) {
        const char *v[4] = {types[i], svcs[i], meths[i], NULL};
        size_t row = edge_metric_series(app->m.started, v);
        size_t(*handled)[17] = NULL;
        if (i < nr) {
            struct app_rpc_series *rs = &app->rpc_series[i];
            const char *lm[1] = {paths[i]};
            rs->row = row;
            rs->legacy_latency = edge_metric_series(app->m.rpc_latency, lm);
            for (int code = 0; code <= 16; code++) {
                const char *l2[2] = {paths[i], tw_code_name((tw_code)code)};
                rs->legacy_calls[code] = edge_metric_series(app->m.rpc_calls, l2);
            }
            handled = &rs->handled;
        } else {
            app->unknown_series[i - nr] = row;
            handled = &app->unknown_handled[i - nr];
        }
        for (int code = 0; code <= 16; code++) {
            v[3] = edge_grpc_code_name(code);
            (*handled)[code] = edge_metric_series(app->m.handled, v);
        }
    }
    edge_metrics_on_render(app->metrics, app_metrics_sync, app);
    rc = 0;
out:
    if (rc != 0)
        tw_logf(TW_LOG_ERROR, "start", "metrics: %s", err[0] ? err : "out of memory");
    free(types);
    free(svcs);
    free(meths);
    free(paths);
    return rc;
}

void app_metrics_destroy(srv_app *app)
{
    edge_metrics_destroy(app->metrics);
    app->metrics = NULL;
    free(app->rpc_series);
    free(app->services);
    free(app->unknown_series);
    free(app->unknown_handled);
    app->rpc_series = NULL;
    app->services = NULL;
    app->unknown_series = NULL;
    app->unknown_handled = NULL;
    pthread_mutex_destroy(&app->sync_mu);
}

static void breaker_tripped(void *ctx)
{
    srv_app *app = ctx;
    edge_metric_inc0(app->m.breaker_trips);
}

static void positions_drifted(void *ctx, size_t n)
{
    srv_app *app = ctx;
    edge_metric_add(app->m.position_drifts, 0, n);
}

static int ops_ready(void *ctx, char *reason, size_t cap)
{
    return app_ready(ctx, reason, cap);
}

int app_ready(srv_app *app, char *reason, size_t cap)
{
    if (!app->vault) {
        snprintf(reason, cap, "keys not loaded");
        return 0;
    }
    if (!srv_health_serving(app->health)) {
        snprintf(reason, cap, "store unreachable");
        return 0;
    }
    /* The prober's last real call to the gRPC port, not a flag anyone sets: /readyz itself
     * never opens a connection, so probing it cannot be turned into load. */
    pthread_mutex_lock(&app->prober_mu);
    int answers = app->grpc_answers;
    pthread_mutex_unlock(&app->prober_mu);
    if (!answers) {
        snprintf(reason, cap, "gRPC listener not answering");
        return 0;
    }
    return 1;
}

/* ---- Alpaca's request budget, one per account for every replica on the Redis ---- */

static edge_rl_rule broker_rule(int per_min, bool background)
{
    /* A background request may not take the last quarter: a smaller burst on the same
     * bucket (ratelimit.h), as brokers/alpaca.c's own bucket keeps it. */
    uint32_t n = (uint32_t)per_min;
    edge_rl_rule r = {.limit = n, .period_ms = 60000, .burst = background ? n - n / 4 : n};
    return r;
}

static int64_t broker_budget_take(void *ctx, const unsigned char account[16], int per_min,
                                  bool background)
{
    srv_app *app = ctx;
    edge_rl_rule r = broker_rule(per_min, background);
    int64_t retry = 0;
    int rc = edge_rl_shared_check(app->rl, "alpaca", account, &r, &retry);
    return rc < 0 ? -1 : rc == 1 ? 0 : retry;
}

static void broker_budget_hold(void *ctx, const unsigned char account[16], int per_min,
                               int64_t hold_ms)
{
    srv_app *app = ctx;
    edge_rl_rule r = broker_rule(per_min, false);
    (void)edge_rl_shared_hold(app->rl, "alpaca", account, &r, hold_ms);
}

static int edge_create(srv_app *app, const tw_config *cfg, const tw_routes *routes)
{
    char err[512] = "";
    if (app_metrics_create(app, routes) != 0)
        return -1;

    edge_rl_config rc_cfg;
    edge_rl_config_defaults(&rc_cfg);
    const struct {
        const char *name, *value;
        edge_rl_class cls;
    } rates[] = {
        {"TW_RATE_AUTH_FAIL", cfg->rate_auth_fail, EDGE_RL_AUTH_FAIL},
        {"TW_RATE_KEY_SUBMIT", cfg->rate_key_submit, EDGE_RL_KEY_SUBMIT},
        {"TW_RATE_ORDERS", cfg->rate_orders, EDGE_RL_ORDERS},
        {"TW_RATE_API", cfg->rate_api, EDGE_RL_API},
        {"TW_RATE_PUBLIC", cfg->rate_public, EDGE_RL_PUBLIC},
    };
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        if (rates[i].value && edge_rl_rule_parse(rates[i].value, &rc_cfg.rules[rates[i].cls], err,
                                                 sizeof(err)) != 0) {
            tw_logf(TW_LOG_ERROR, "start", "%s: %s", rates[i].name, err);
            return -1;
        }
    }
    rc_cfg.redis_url = cfg->redis_url;
    rc_cfg.on_fallback = rl_fallback;
    rc_cfg.fallback_ctx = app;
    if (edge_rl_create(&rc_cfg, &app->rl, err, sizeof(err)) != 0) {
        tw_logf(TW_LOG_ERROR, "start", "rate limiter: %s", err);
        return -1;
    }

    app->wh = edge_wh_create(NULL);
    if (!app->wh)
        return -1;
    if (cfg->webhook_secrets &&
        edge_wh_load_env(app->wh, cfg->webhook_secrets, err, sizeof(err)) != 0) {
        tw_logf(TW_LOG_ERROR, "start", "TW_WEBHOOK_SECRETS: %s", err);
        return -1;
    }
    static const char *const sources[] = {"broker", "signal"};
    edge_ops_config oc = {.listen = cfg->ops_listen,
                          .metrics = app->metrics,
                          .webhooks = app->wh,
                          .webhook_sources = sources,
                          .n_webhook_sources = 2,
                          .webhook_counter = app->m.webhooks,
                          .ready = ops_ready,
                          .ready_ctx = app,
                          .on_webhook = svc_webhook,
                          .webhook_ctx = app};
    if (edge_ops_start(&oc, &app->ops, err, sizeof(err)) != 0) {
        tw_logf(TW_LOG_ERROR, "start", "ops port %s: %s", cfg->ops_listen, err);
        return -1;
    }
    app->ops_port = edge_ops_port(app->ops);
    trading_set_breaker_hook(app->trading, breaker_tripped, app);
    trading_set_drift_hook(app->trading, positions_drifted, app);
    return 0;
}

/* ---- log redaction ---------------------------------------------------------------------- */

static size_t redact_line(const char *line, size_t len, char *out, size_t cap)
{
    char *clean = NULL;
    size_t n;
    /* The line ends with '\n'; redact the JSON object without it. */
    size_t body = len > 0 && line[len - 1] == '\n' ? len - 1 : len;
    if (vault_redact_json_line(line, body, &clean) != VAULT_OK || !clean) {
        static const char fallback[] = "{\"event\":\"log_redaction_failed\"}\n";
        n = sizeof(fallback) - 1 < cap ? sizeof(fallback) - 1 : cap;
        memcpy(out, fallback, n);
        return n;
    }
    n = strlen(clean);
    if (n + 1 > cap)
        n = cap - 1;
    memcpy(out, clean, n);
    out[n++] = '\n';
    free(clean);
    return n;
}

/* ---- store, vault, auth ---------------------------------------------------------------- */

static void store_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    tw_log_level l = level >= STORE_LOG_ERROR  ? TW_LOG_ERROR
                     : level >= STORE_LOG_WARN ? TW_LOG_WARN
                     : level >= STORE_LOG_INFO ? TW_LOG_INFO
                                               : TW_LOG_DEBUG;
    tw_logf(l, "store", "%s", msg);
}

static int store_create(srv_app *app, const tw_config *cfg)
{
    char err[256] = "";
    int version = 0;
    store_rc rc = store_open(cfg->database_url, store_log, NULL, &app->store, err, sizeof(err));
    if (rc != STORE_OK) {
        tw_logf(TW_LOG_ERROR, "start", "store: %s (%s)", err, store_rc_name(rc));
        return -1;
    }
    rc = store_migrate(app->store, &version, err, sizeof(err));
    if (rc != STORE_OK) {
        tw_logf(TW_LOG_ERROR, "start", "store migration: %s (%s)", err, store_rc_name(rc));
        return -1;
    }
    tw_logf(TW_LOG_INFO, "store", "%s ready, schema version %d", store_backend_name(app->store),
            version);
    return 0;
}

static int vault_open(srv_app *app, const tw_config *cfg)
{
    char err[256] = "";
    vault_masterkeys *mk = NULL;
    vault_rc rc;
    if (cfg->vault_master_keys)
        rc = vault_masterkeys_parse(cfg->vault_master_keys, strlen(cfg->vault_master_keys), &mk,
                                    err, sizeof(err));
    else if (cfg->auth_mode == TW_AUTH_DEV)
        rc = vault_masterkeys_load_or_create(cfg->vault_master_key_file, &mk, err, sizeof(err));
    else
        rc = VAULT_ERR_MASTER_KEY;
    if (rc != VAULT_OK) {
        tw_logf(TW_LOG_ERROR, "start", "vault master keys: %s (%s)", err, vault_strerror(rc));
        return -1;
    }
    vault_config vc;
    vault_config_default(&vc);
    vc.iterations = (uint32_t)cfg->pbkdf2_iterations;
    rc = vault_create(&vc, mk, &app->vault);
    if (rc != VAULT_OK) {
        tw_logf(TW_LOG_ERROR, "start", "vault: %s", vault_strerror(rc));
        return -1;
    }
    return 0;
}

static int auth_create(srv_app *app, const tw_config *cfg)
{
    auth_config ac;
    char err[256];
    auth_config_defaults(&ac);
    ac.mode = cfg->auth_mode == TW_AUTH_JWKS  ? AUTH_MODE_JWKS
              : cfg->auth_mode == TW_AUTH_PEM ? AUTH_MODE_PEM
                                              : AUTH_MODE_DEV;
    ac.jwks_url = cfg->jwks_url;
    ac.jwks_ca_file = cfg->jwks_ca_file;
    ac.public_key_file = cfg->jwt_public_key_file;
    ac.issuer = cfg->jwt_issuer;
    ac.audience = cfg->jwt_audience;
    ac.dev_key_file = cfg->dev_key_file;
    ac.role_claim = cfg->jwt_role_claim;
    ac.clock_skew_s = cfg->jwt_clock_skew_s;
    ac.jwks_cache_ttl_s = cfg->jwks_cache_ttl_s;
    app->auth = auth_verifier_create(&ac, err, sizeof(err));
    if (!app->auth) {
        tw_logf(TW_LOG_ERROR, "start", "auth: %s", err);
        return -1;
    }
    return 0;
}

int app_create(srv_app *app, const tw_config *cfg, const char *const *names, size_t nnames,
               const tw_routes *routes)
{
    memset(app, 0, sizeof(*app));
    app->cfg = cfg;
    pthread_mutex_init(&app->prober_mu, NULL);
    app->grpc_answers = 1;
    pthread_cond_init(&app->prober_cv, NULL);
    tw_log_set_redactor(redact_line);
    app->users = calloc(1, sizeof(*app->users));
    if (!app->users)
        return -1;
    pthread_mutex_init(&app->users->mu, NULL);
    app->refl = refl_index_create(tw_descriptor_set, tw_descriptor_set_len, names, nnames);
    if (!app->refl) {
        tw_logf(TW_LOG_ERROR, "start", "cannot index the embedded descriptor set");
        return -1;
    }
    app->health = srv_health_create(names, nnames);
    if (!app->health)
        return -1;
    if (store_create(app, cfg) != 0 || vault_open(app, cfg) != 0 || auth_create(app, cfg) != 0)
        return -1;
    if (trading_create(cfg, app->store, app->vault, &app->trading) != 0)
        return -1;
    char why[128];
    if (audit_signer_parse(cfg->audit_signing_keys, &app->audit_signer, why, sizeof(why)) != 0) {
        tw_logf(TW_LOG_ERROR, "start", "TW_AUDIT_SIGNING_KEYS: %s", why);
        return -1;
    }
    if (vault_sealer_parse(cfg->vault_sealing_keys, &app->sealer, why, sizeof(why)) != VAULT_OK) {
        tw_logf(TW_LOG_ERROR, "start", "TW_VAULT_SEALING_KEYS: %s", why);
        return -1;
    }
    app->audit_feed = audit_feed_start(app->store);
    if (!app->audit_feed)
        return -1;
    if (edge_create(app, cfg, routes) != 0)
        return -1;
    if (app->rl && edge_rl_uses_redis(app->rl)) {
        app->broker_budget =
            (brk_shared_budget){.take = broker_budget_take, .hold = broker_budget_hold, .ctx = app};
        trading_set_shared_budget(app->trading, &app->broker_budget);
    }
    /* Orders left open by a previous run are resolved before new work arrives. */
    trading_reconcile(app->trading);
    if (trading_start_reconciler(app->trading) != 0)
        return -1;
    return 0;
}

void app_destroy(srv_app *app)
{
    app_stop_prober(app);
    edge_ops_stop(app->ops);
    edge_wh_destroy(app->wh);
    trading_destroy(app->trading); /* its threads commit audit events: before the feed goes */
    edge_rl_destroy(app->rl);      /* after trading: its broker conns draw on the Redis budget */
    audit_feed_stop(app->audit_feed);
    auth_verifier_destroy(app->auth);
    audit_signer_destroy(app->audit_signer);
    vault_sealer_destroy(app->sealer);
    vault_destroy(app->vault);
    store_close(app->store);
    srv_health_destroy(app->health);
    refl_index_destroy(app->refl);
    if (app->users) {
        pthread_mutex_destroy(&app->users->mu);
        free(app->users);
    }
    app_metrics_destroy(app);
    pthread_mutex_destroy(&app->prober_mu);
    pthread_cond_destroy(&app->prober_cv);
    memset(app, 0, sizeof(*app));
}

/* ---- health prober ---------------------------------------------------------------------- */

static void watch_listener_once(srv_app *app)
{
    pthread_mutex_lock(&app->prober_mu);
    srv_transport *t = app->transport;
    pthread_mutex_unlock(&app->prober_mu);
    if (!t)
        return;
    int ok = srv_transport_self_check(t, 1000) >= 0;
    pthread_mutex_lock(&app->prober_mu);
    if (ok != app->grpc_answers)
        tw_logf(ok ? TW_LOG_INFO : TW_LOG_WARN, "listener_check",
                ok ? "gRPC listener answers again: ready"
                   : "gRPC listener does not answer a local Health/Check: not ready");
    app->grpc_answers = ok;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (ok || app->grpc_failing_since == 0)
        app->grpc_failing_since = ok ? 0 : (int64_t)now.tv_sec;
    int dead = !app->stopping && !app->listener_dead && app->grpc_failing_since != 0 &&
               (int64_t)now.tv_sec - app->grpc_failing_since >= APP_LISTENER_DEAD_S;
    if (dead)
        app->listener_dead = 1;
    pthread_mutex_unlock(&app->prober_mu);
    if (dead) {
        tw_logf(TW_LOG_ERROR, "listener_check",
                "gRPC listener has not answered for %d s: stopping (exit status 3) so the "
                "supervisor restarts the process",
                APP_LISTENER_DEAD_S);
        kill(getpid(), SIGTERM);
    }
}

void app_watch_listener(srv_app *app, srv_transport *t)
{
    pthread_mutex_lock(&app->prober_mu);
    app->transport = t;
    pthread_mutex_unlock(&app->prober_mu);
    watch_listener_once(app);
}

int app_audit_checkpoint_all(srv_app *app, int64_t now_us)
{
    store_conn *conn = NULL;
    int64_t chains[100];
    int64_t after = -1;
    size_t n;
    int signed_n = 0;
    if (!app->audit_signer)
        return 0;
    if (store_conn_acquire(app->store, &conn) != STORE_OK)
        return -1;
    do {
        if (store_audit_chains_to_checkpoint(conn, after, chains, 100, &n) != STORE_OK) {
            signed_n = -1;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            audit_checkpoint cp;
            audit_cp_state state;
            store_rc rc =
                audit_checkpoint_create(conn, app->audit_signer, chains[i], now_us, &cp, &state);
            if (rc != STORE_OK && rc != STORE_CONFLICT) {
                signed_n = -1;
                break;
            }
            if (state == AUDIT_CP_BROKEN)
                tw_logf(TW_LOG_ERROR, "audit_checkpoint",
                        "chain %lld does not verify: its head is not signed", (long long)chains[i]);
            signed_n += rc == STORE_OK && state == AUDIT_CP_SIGNED;
            after = chains[i];
        }
    } while (signed_n >= 0 && n == 100);
    store_conn_release(conn);
    return signed_n;
}

static void *prober_main(void *arg)
{
    srv_app *app = arg;
    int last = -1;
    int64_t next_checkpoint = (tw_mono_ms() / 1000) + app->cfg->audit_checkpoint_interval_s;
    pthread_mutex_lock(&app->prober_mu);
    while (!app->stopping) {
        pthread_mutex_unlock(&app->prober_mu);
        /* The periodic checkpoints: on this thread, which already wakes every second and
         * owns no request; a chain that broke is logged and left unsigned. */
        if (app->audit_signer && app->cfg->audit_checkpoint_interval_s > 0 &&
            (tw_mono_ms() / 1000) >= next_checkpoint) {
            if (app_audit_checkpoint_all(app, tw_wall_us()) < 0)
                tw_logf(TW_LOG_WARN, "audit_checkpoint", "store unavailable; next round later");
            next_checkpoint = (tw_mono_ms() / 1000) + app->cfg->audit_checkpoint_interval_s;
        }
        char err[128];
        int up = store_ping(app->store, err, sizeof(err)) == STORE_OK;
        if (up != last) {
            tw_logf(up ? TW_LOG_INFO : TW_LOG_WARN, "health", "store %s",
                    up ? "reachable: SERVING" : "unreachable: NOT_SERVING");
            last = up;
        }
        if (!up && app->metrics)
            edge_metric_inc1(app->m.store_errors, "connect");
        watch_listener_once(app);
        pthread_mutex_lock(&app->prober_mu);
        if (!app->stopping)
            srv_health_set_serving(app->health, up);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        while (!app->stopping &&
               pthread_cond_timedwait(&app->prober_cv, &app->prober_mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&app->prober_mu);
    return NULL;
}

int app_start_prober(srv_app *app)
{
    /* First answer before the port opens: "listening" then means "serving" when it is. */
    char err[128];
    srv_health_set_serving(app->health, store_ping(app->store, err, sizeof(err)) == STORE_OK);
    if (pthread_create(&app->prober, NULL, prober_main, app) != 0)
        return -1;
    app->prober_running = 1;
    return 0;
}

void app_stop_prober(srv_app *app)
{
    if (!app->prober_running)
        return;
    pthread_mutex_lock(&app->prober_mu);
    app->stopping = 1;
    pthread_cond_signal(&app->prober_cv);
    pthread_mutex_unlock(&app->prober_mu);
    pthread_join(app->prober, NULL);
    app->prober_running = 0;
}
