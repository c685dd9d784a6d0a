/*
 * Application wiring: builds the modules in dependency order (log redaction, store and
 * migrations, vault, auth, health, reflection) and provides the transport's interceptor hooks.
 * Authentication failures are logged with the verifier's precise reason (never the token) and
 * answered with one generic message. A user row is created on the first authenticated call;
 * subject -> user id is cached so later calls do not touch the database for it.
 */
#include "app.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/health.h"
#include "admin/reflection.h"
#include "auth/auth.h"
#include "audit/audit.h"
#include "core/log.h"
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

static tw_status app_authenticate(void *appv, tw_call *c, const char *authorization,
                                  tw_principal *out)
{
    srv_app *app = appv;
    auth_principal p;
    const char *reason = "no verifier";
    if (!app->auth ||
        auth_verify(app->auth, authorization, (int64_t)time(NULL), &p, &reason) != AUTH_OK) {
        tw_logline l;
        tw_log_begin(&l, TW_LOG_WARN, "auth_failed");
        tw_log_uint(&l, "req_id", tw_call_id(c));
        tw_log_str(&l, "method", tw_call_method(c));
        tw_log_str(&l, "peer", tw_call_peer(c));
        tw_log_str(&l, "reason", reason);
        tw_log_end(&l);
        return tw_err(TW_UNAUTHENTICATED, "invalid or missing credentials");
    }
    out->subject = tw_arena_strdup(tw_call_arena(c), p.subject);
    if (!out->subject)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    out->role = p.role == AUTH_ROLE_ADMIN ? TW_ROLE_ADMIN : TW_ROLE_USER;
    out->expires_at = p.expires_at;
    out->issued_at = p.issued_at;
    return app->store ? resolve_user(app, out) : tw_ok();
}

static void app_denied(void *appv, tw_call *c)
{
    srv_app *app = appv;
    const tw_principal *p = tw_call_principal(c);
    /* Role failures on admin methods are audited in the caller's own chain. */
    store_conn *conn;
    if (app->store && p->user_id && store_conn_acquire(app->store, &conn) == STORE_OK) {
        char details[320];
        snprintf(details, sizeof(details), "{\"method\":\"%s\"}", tw_call_method(c));
        audit_entry e = {.user_id = p->user_id,
                         .actor = "user",
                         .actor_id = p->subject,
                         .action = "AUTH_DENIED",
                         .object_id = tw_call_method(c),
                         .outcome = "DENIED",
                         .details = details};
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (store_tx_begin_user(conn, p->user_id) == STORE_OK) {
            if (audit_append(conn, &e, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, NULL) ==
                STORE_OK)
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

srv_hooks app_hooks(srv_app *app)
{
    srv_hooks h = {
        .app = app,
        .authenticate = app_authenticate,
        .on_denied = app_denied,
    };
    return h;
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

int app_create(srv_app *app, const tw_config *cfg, const char *const *names, size_t nnames)
{
    memset(app, 0, sizeof(*app));
    app->cfg = cfg;
    pthread_mutex_init(&app->prober_mu, NULL);
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
    app->audit_feed = audit_feed_start(app->store);
    if (!app->audit_feed)
        return -1;
    /* Orders left open by a previous run are resolved before new work arrives. */
    trading_reconcile(app->trading);
    if (trading_start_reconciler(app->trading) != 0)
        return -1;
    return 0;
}

void app_destroy(srv_app *app)
{
    app_stop_prober(app);
    audit_feed_stop(app->audit_feed);
    trading_destroy(app->trading);
    auth_verifier_destroy(app->auth);
    vault_destroy(app->vault);
    store_close(app->store);
    srv_health_destroy(app->health);
    refl_index_destroy(app->refl);
    if (app->users) {
        pthread_mutex_destroy(&app->users->mu);
        free(app->users);
    }
    pthread_mutex_destroy(&app->prober_mu);
    pthread_cond_destroy(&app->prober_cv);
    memset(app, 0, sizeof(*app));
}

/* ---- health prober ---------------------------------------------------------------------- */

static void *prober_main(void *arg)
{
    srv_app *app = arg;
    int last = -1;
    pthread_mutex_lock(&app->prober_mu);
    while (!app->stopping) {
        pthread_mutex_unlock(&app->prober_mu);
        char err[128];
        int up = store_ping(app->store, err, sizeof(err)) == STORE_OK;
        if (up != last) {
            tw_logf(up ? TW_LOG_INFO : TW_LOG_WARN, "health", "store %s",
                    up ? "reachable: SERVING" : "unreachable: NOT_SERVING");
            last = up;
        }
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
