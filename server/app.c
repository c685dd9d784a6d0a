/*
 * Application wiring: builds the modules in dependency order and provides the transport's
 * interceptor hooks. Authentication failures are logged with the verifier's precise reason
 * (never the token) and answered with one generic message.
 */
#include "app.h"

#include <string.h>
#include <time.h>

#include "admin/health.h"
#include "admin/reflection.h"
#include "auth/auth.h"
#include "core/log.h"

extern const unsigned char tw_descriptor_set[];
extern const size_t tw_descriptor_set_len;

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
    return tw_ok();
}

static void app_denied(void *appv, tw_call *c)
{
    (void)appv;
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
    app->refl = refl_index_create(tw_descriptor_set, tw_descriptor_set_len, names, nnames);
    if (!app->refl) {
        tw_logf(TW_LOG_ERROR, "start", "cannot index the embedded descriptor set");
        return -1;
    }
    app->health = srv_health_create(names, nnames);
    if (!app->health)
        return -1;
    if (auth_create(app, cfg) != 0)
        return -1;
    return 0;
}

void app_destroy(srv_app *app)
{
    auth_verifier_destroy(app->auth);
    srv_health_destroy(app->health);
    refl_index_destroy(app->refl);
    memset(app, 0, sizeof(*app));
}
