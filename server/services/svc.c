/* Shared service helpers (see svc.h). */
#include "core/clock.h"
#include "svc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "core/log.h"
#include "trading/trading.h"

static void release_conn(void *arg)
{
    store_conn_release(arg);
}

tw_status svc_conn(tw_call *c, store_conn **out)
{
    srv_app *app = tw_call_app(c);
    store_rc rc = store_conn_acquire(app->store, out);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "database");
    tw_arena_defer(tw_call_arena(c), release_conn, *out);
    return tw_ok();
}

tw_status svc_store_status(tw_call *c, store_rc rc, const char *what)
{
    switch (rc) {
    case STORE_OK:
        return tw_ok();
    case STORE_NOT_FOUND:
        return tw_call_errorf(c, TW_NOT_FOUND, "%s not found", what);
    case STORE_CONFLICT:
        return tw_call_errorf(c, TW_ALREADY_EXISTS, "%s already exists", what);
    case STORE_UNAVAILABLE:
    case STORE_BUSY:
        return tw_err(TW_UNAVAILABLE, "database unavailable, retry later");
    case STORE_INVALID:
        return tw_call_errorf(c, TW_INVALID_ARGUMENT, "%s: value refused", what);
    default:
        return tw_err(TW_INTERNAL, "internal storage error");
    }
}

int64_t svc_user_id(tw_call *c)
{
    return tw_call_principal(c)->user_id;
}

int64_t svc_now_us(tw_call *c)
{
    srv_app *app = tw_call_app(c);
    if (app && app->trading)
        return trading_now_ms(app->trading) * 1000;
    return tw_wall_us();
}

const char *svc_traced_details(tw_call *c, const char *details)
{
    const tw_trace *t = tw_call_trace(c);
    const char *body = details && details[0] == '{' ? details + 1 : "}";
    while (*body == ' ')
        body++;
    if (details && details[0] != '{')
        return details; /* not an object: left as it is */
    char *out = tw_arena_printf(tw_call_arena(c), "{\"trace_id\":\"%s\",\"span_id\":\"%s\"%s%s",
                                t->trace_id, t->span_id, *body == '}' ? "" : ",", body);
    /* An event is never refused for its trace: past the store's cap, the plain details. */
    return out && strlen(out) <= STORE_DETAILS_MAX ? out : details;
}

const char *svc_traceparent(tw_call *c)
{
    char *out = tw_arena_alloc(tw_call_arena(c), TW_TRACEPARENT_LEN + 1);
    if (out)
        tw_trace_format(tw_call_trace(c), out);
    return out;
}

tw_status svc_audit(tw_call *c, store_conn *conn, int64_t chain_user_id, const char *action,
                    const char *object_id, const char *outcome, const char *details)
{
    const tw_principal *p = tw_call_principal(c);
    details = svc_traced_details(c, details);
    audit_entry e = {
        .user_id = chain_user_id,
        .actor = p->role == TW_ROLE_ADMIN ? "admin" : "user",
        .actor_id = p->subject ? p->subject : "",
        .action = action,
        .object_id = object_id ? object_id : "",
        .outcome = outcome,
        .details = details,
    };
    store_rc rc = audit_append(conn, &e, svc_now_us(c), NULL);
    if (rc != STORE_OK) {
        tw_logf(TW_LOG_ERROR, "audit_failed", "%s: %s (change not applied)", action,
                store_rc_name(rc));
        return tw_err(TW_UNAVAILABLE, "audit trail unavailable, change not applied");
    }
    return tw_ok();
}

void svc_audit_refusal(tw_call *c, store_conn *conn, const char *action, const char *object_id,
                       const char *outcome, const char *details)
{
    int64_t uid = svc_user_id(c);
    if (store_tx_begin_user(conn, uid) != STORE_OK)
        return;
    if (svc_audit(c, conn, uid, action, object_id, outcome, details).code == TW_OK)
        store_tx_commit(conn);
    else
        store_tx_rollback(conn);
}

int64_t svc_parse_id(const char *s)
{
    char *end;
    if (!s || *s < '1' || *s > '9')
        return 0;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || v <= 0)
        return 0;
    return (int64_t)v;
}

char *svc_id_str(tw_call *c, int64_t id)
{
    return tw_arena_printf(tw_call_arena(c), "%lld", (long long)id);
}

long svc_printable_chars(const char *s)
{
    long n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return -1;
        if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            return -1;
        if ((*p & 0xc0) != 0x80)
            n++;
    }
    return n;
}
