/*
 * tradewink.v1.Auth: WhoAmI reports the caller's principal; IssueDevToken mints a token with
 * the local dev key and exists only in dev mode (which itself is refused off loopback).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "auth/auth.h"
#include "core/clock.h"
#include "services.h"

Google__Protobuf__Timestamp *svc_timestamp(tw_call *c, int64_t unix_s)
{
    Google__Protobuf__Timestamp *t = tw_arena_alloc(tw_call_arena(c), sizeof(*t));
    if (!t)
        return NULL;
    google__protobuf__timestamp__init(t);
    t->seconds = unix_s;
    return t;
}

tw_status auth_whoami(tw_call *c, const Tradewink__V1__WhoAmIRequest *req,
                      Tradewink__V1__WhoAmIResponse *resp)
{
    (void)req;
    const tw_principal *p = tw_call_principal(c);
    resp->subject = (char *)p->subject;
    resp->role =
        p->role == TW_ROLE_ADMIN ? TRADEWINK__V1__ROLE__ROLE_ADMIN : TRADEWINK__V1__ROLE__ROLE_USER;
    resp->expires_at = svc_timestamp(c, p->expires_at);
    if (p->issued_at)
        resp->issued_at = svc_timestamp(c, p->issued_at);
    return tw_ok();
}

/* auth.proto: subject 1-128 characters of [A-Za-z0-9._@-]; ROLE_UNSPECIFIED is refused;
 * ttl 0 = 3600, maximum 86400. */
#define DEV_TOKEN_SUBJECT_MAX 128
#define DEV_TOKEN_DEFAULT_TTL 3600
#define DEV_TOKEN_MAX_TTL 86400

static int subject_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '@' || ch == '-';
}

tw_status auth_issue_dev_token(tw_call *c, const Tradewink__V1__IssueDevTokenRequest *req,
                               Tradewink__V1__IssueDevTokenResponse *resp)
{
    srv_app *app = tw_call_app(c);
    /* The contract: outside dev mode the method does not exist. */
    if (app->cfg->auth_mode != TW_AUTH_DEV || !app->auth)
        return tw_err(TW_UNIMPLEMENTED, "dev tokens are only issued in dev auth mode");
    tw_violations bad;
    tw_violations_init(&bad, tw_call_arena(c));
    size_t sublen = strlen(req->subject);
    if (sublen == 0 || sublen > DEV_TOKEN_SUBJECT_MAX) {
        tw_violation_add(&bad, "subject", "must be 1..128 characters");
    } else {
        for (size_t i = 0; i < sublen; i++)
            if (!subject_char(req->subject[i])) {
                tw_violation_add(&bad, "subject", "only A-Z a-z 0-9 . _ @ - are allowed");
                break;
            }
    }
    auth_role role = AUTH_ROLE_USER;
    switch (req->role) {
    case TRADEWINK__V1__ROLE__ROLE_USER:
        role = AUTH_ROLE_USER;
        break;
    case TRADEWINK__V1__ROLE__ROLE_ADMIN:
        role = AUTH_ROLE_ADMIN;
        break;
    default:
        tw_violation_add(&bad, "role", "must be ROLE_USER or ROLE_ADMIN");
    }
    int64_t ttl = req->ttl_seconds ? req->ttl_seconds : DEV_TOKEN_DEFAULT_TTL;
    if (ttl < 1 || ttl > DEV_TOKEN_MAX_TTL)
        tw_violation_add(&bad, "ttl_seconds", "must be 0 (3600) or 1..86400");
    tw_status st = tw_violations_status(&bad);
    if (st.code != TW_OK)
        return st;
    int64_t now = tw_wall_seconds();
    char *token = NULL;
    if (auth_mint_dev_token(app->auth, req->subject, role, ttl, now, &token) != 0)
        return tw_err(TW_INTERNAL, "could not mint a dev token");
    resp->token = tw_arena_strdup(tw_call_arena(c), token);
    size_t n = strlen(token);
    memset(token, 0, n);
    free(token);
    if (!resp->token)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    resp->expires_at = svc_timestamp(c, now + ttl);
    return tw_ok();
}
