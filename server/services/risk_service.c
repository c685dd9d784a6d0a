/*
 * tradewink.v1.Risk: GetLimits, SetLimits, Halt, Resume, HaltAll, ResumeAll (GetState and
 * CheckOrder need the account snapshot and live elsewhere).
 *
 * Limits are described once, in limit_fields[]: wire name, kind, where the field sits in the
 * request, the reply and the store, and two ranges. Admins may set any value within the hard
 * range (what the engine accepts, risk_limits_check); users only within the user bounds below,
 * which also forbid a user from switching a protective check off (0) and from disabling the PDT
 * guard. Only the fields a request names are checked against the caller's bounds, so a user
 * can change one field while another keeps a looser value an admin gave them.
 *
 * Every change is audited in the same transaction as the change (svc_audit, fail-closed):
 * LIMITS_CHANGE (old/new of the named fields) in the target user's chain, HALT/RESUME in the
 * caller's chain, HALT_ALL/RESUME_ALL in the acting admin's own chain. A user naming another
 * user gets PERMISSION_DENIED, audited as AUTH_DENIED in the caller's chain. A refused Resume is
 * audited as RESUME with outcome FAILURE.
 *
 * Invariants: a rejected request changes nothing (validation completes before the
 * transaction); per-user state is written only under store_tx_begin_user for that user.
 */
#include "risk_service.h"

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "services.h"
#include "risk/money.h"
#include "svc.h"

/* ---- user bounds (compile-time policy; store units) -----------------------------------------
 * A user may not loosen a limit past these; 0 ("off") is refused wherever it would mean
 * "unlimited". daily_loss_abs may be 0 for a user because daily_loss_pct always applies.
 */
#define USER_DAILY_LOSS_BPS_MAX 2000           /* 20 % of start-of-day equity */
#define USER_DRAWDOWN_BPS_MAX 5000             /* 50 % below the intraday peak */
#define USER_MAX_POSITIONS_MAX 100             /* distinct symbols */
#define USER_SECTOR_BPS_MAX 10000              /* 100 % of equity in one sector */
#define USER_NOTIONAL_BPS_MAX 10000            /* one order up to 100 % of equity */
#define USER_COLLAR_BPS_MAX 5000               /* limit price within 50 % of the reference */
#define USER_DUP_WINDOW_S_MAX 3600             /* duplicate window 1 s .. 1 h */
#define USER_ORDERS_PER_S_MAX 100              /* order rate */
#define USER_MAY_DISABLE_PDT 0                 /* only an admin may turn the PDT guard off */
#define HARD_USD_MAX RISK_USD(1000000000000LL) /* daily_loss_abs: 1e12 USD */

#define REASON_MAX STORE_REASON_MAX /* Halt / HaltAll reason, bytes */
#define ERRBUF 1024

typedef enum { K_PCT, K_USD, K_INT, K_BOOL } lim_kind;

typedef struct lim_field {
    const char *name; /* wire name, used in errors and audit details */
    lim_kind kind;
    size_t req_off;   /* wrapper pointer in Tradewink__V1__SetLimitsRequest */
    size_t wire_off;  /* field in Tradewink__V1__RiskLimits */
    size_t store_off; /* int64_t (bool for K_BOOL) in store_risk_limits */
    int64_t hard_max; /* any caller: 0 .. hard_max */
    int64_t user_min; /* users: user_min .. user_max */
    int64_t user_max;
} lim_field;

#define LIM(name, kind, store_field, hard, umin, umax)                                             \
    {                                                                                              \
#name, kind, offsetof(Tradewink__V1__SetLimitsRequest, name),                              \
            offsetof(Tradewink__V1__RiskLimits, name), offsetof(store_risk_limits, store_field),   \
            hard, umin, umax                                                                       \
    }

static const lim_field limit_fields[] = {
    LIM(daily_loss_pct, K_PCT, daily_loss_bps, 10000, 1, USER_DAILY_LOSS_BPS_MAX),
    LIM(daily_loss_abs, K_USD, daily_loss_abs, HARD_USD_MAX, 0, HARD_USD_MAX),
    LIM(max_drawdown_pct, K_PCT, drawdown_bps, 10000, 1, USER_DRAWDOWN_BPS_MAX),
    LIM(max_open_positions, K_INT, max_positions, RISK_MAX_POSITIONS, 1, USER_MAX_POSITIONS_MAX),
    LIM(max_sector_pct, K_PCT, max_sector_bps, 10000, 1, USER_SECTOR_BPS_MAX),
    LIM(max_order_notional_pct, K_PCT, max_notional_bps, 10000, 1, USER_NOTIONAL_BPS_MAX),
    LIM(price_collar_pct, K_PCT, collar_bps, 100000, 1, USER_COLLAR_BPS_MAX),
    LIM(duplicate_window_seconds, K_INT, dup_window_s, 86400, 1, USER_DUP_WINDOW_S_MAX),
    LIM(max_orders_per_second, K_INT, max_orders_per_s, 1000000, 1, USER_ORDERS_PER_S_MAX),
    LIM(pdt_enabled, K_BOOL, pdt_enabled, 1, USER_MAY_DISABLE_PDT ? 0 : 1, 1),
};
#define N_FIELDS (sizeof(limit_fields) / sizeof(limit_fields[0]))

/* ---- limits: defaults, load, engine conversion ------------------------------------------- */

void risksvc_limits_default(store_risk_limits *out)
{
    risk_limits l;
    risk_pdt_config pdt;
    risk_limits_default(&l);
    risk_pdt_default(&pdt);
    memset(out, 0, sizeof(*out));
    out->daily_loss_bps = l.daily_loss_bps == RISK_OFF ? 0 : l.daily_loss_bps;
    out->daily_loss_abs = l.daily_loss_abs == RISK_OFF ? 0 : l.daily_loss_abs;
    out->drawdown_bps = l.drawdown_bps == RISK_OFF ? 0 : l.drawdown_bps;
    out->max_positions = l.max_open_positions == RISK_OFF ? 0 : l.max_open_positions;
    out->max_sector_bps = l.sector_max_bps == RISK_OFF ? 0 : l.sector_max_bps;
    out->max_notional_bps = l.max_order_notional_bps == RISK_OFF ? 0 : l.max_order_notional_bps;
    out->collar_bps = l.price_collar_bps == RISK_OFF ? 0 : l.price_collar_bps;
    out->dup_window_s = l.duplicate_window_ms == RISK_OFF ? 0 : l.duplicate_window_ms / 1000;
    /* The engine's default window is one second, so its count is already per second. */
    out->max_orders_per_s = l.max_orders_per_window == RISK_OFF ? 0 : l.max_orders_per_window;
    out->pdt_enabled = pdt.enabled;
}

store_rc risksvc_limits_load(store_conn *c, int64_t user_id, store_risk_limits *out,
                             bool *is_default)
{
    store_rc rc = store_risk_limits_get(c, user_id, out);
    if (is_default)
        *is_default = rc == STORE_NOT_FOUND;
    if (rc == STORE_NOT_FOUND) {
        risksvc_limits_default(out);
        rc = STORE_OK;
    }
    return rc;
}

static int32_t off32(int64_t v)
{
    return v == 0 ? RISK_OFF : (int32_t)v;
}

void risksvc_limits_to_engine(const store_risk_limits *in, risk_limits *out, risk_pdt_config *pdt)
{
    memset(out, 0, sizeof(*out));
    out->daily_loss_bps = off32(in->daily_loss_bps);
    out->daily_loss_abs = in->daily_loss_abs == 0 ? RISK_OFF : in->daily_loss_abs;
    out->drawdown_bps = off32(in->drawdown_bps);
    out->max_open_positions = off32(in->max_positions);
    out->sector_max_bps = off32(in->max_sector_bps);
    out->unknown_sector_max_bps = off32(in->max_sector_bps);
    out->max_order_notional_bps = off32(in->max_notional_bps);
    out->price_collar_bps = off32(in->collar_bps);
    out->duplicate_window_ms =
        in->dup_window_s == 0 ? RISK_OFF : (int32_t)(in->dup_window_s * 1000);
    out->max_orders_per_window = off32(in->max_orders_per_s);
    out->rate_window_ms = 1000;
    if (pdt)
        pdt->enabled = in->pdt_enabled;
}

static int64_t lim_get(const store_risk_limits *l, const lim_field *f)
{
    const char *p = (const char *)l + f->store_off;
    if (f->kind == K_BOOL) {
        bool b;
        memcpy(&b, p, sizeof(b));
        return b ? 1 : 0;
    }
    int64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static void lim_put(store_risk_limits *l, const lim_field *f, int64_t v)
{
    char *p = (char *)l + f->store_off;
    if (f->kind == K_BOOL) {
        bool b = v != 0;
        memcpy(p, &b, sizeof(b));
    } else {
        memcpy(p, &v, sizeof(v));
    }
}

/* Canonical text of a stored value: "2.5" for percentages, "1000.5" for USD, "10", "true". */
static void lim_format(const lim_field *f, int64_t v, char *buf, size_t cap)
{
    switch (f->kind) {
    case K_PCT:
        if (risk_dec_format(v, 2, 0, buf, cap, NULL) != RISK_DEC_OK)
            snprintf(buf, cap, "?");
        break;
    case K_USD:
        if (risk_money_format(v, buf, cap) != RISK_DEC_OK)
            snprintf(buf, cap, "?");
        break;
    case K_INT:
        snprintf(buf, cap, "%lld", (long long)v);
        break;
    case K_BOOL:
        snprintf(buf, cap, "%s", v ? "true" : "false");
        break;
    }
}

static json_t *lim_json(const lim_field *f, int64_t v)
{
    char buf[RISK_DEC_STRMAX];
    switch (f->kind) {
    case K_INT:
        return json_integer((json_int_t)v);
    case K_BOOL:
        return json_boolean(v != 0);
    default:
        lim_format(f, v, buf, sizeof(buf));
        return json_string(buf);
    }
}

static Tradewink__V1__RiskLimits *limits_to_wire(tw_call *c, const store_risk_limits *l,
                                                 int64_t updated_at_us)
{
    tw_arena *a = tw_call_arena(c);
    Tradewink__V1__RiskLimits *w = tw_arena_alloc(a, sizeof(*w));
    if (!w)
        return NULL;
    tradewink__v1__risk_limits__init(w);
    for (size_t i = 0; i < N_FIELDS; i++) {
        const lim_field *f = &limit_fields[i];
        int64_t v = lim_get(l, f);
        char *dst = (char *)w + f->wire_off;
        if (f->kind == K_PCT || f->kind == K_USD) {
            char buf[RISK_DEC_STRMAX];
            lim_format(f, v, buf, sizeof(buf));
            char *s = tw_arena_strdup(a, buf);
            if (!s)
                return NULL;
            memcpy(dst, &s, sizeof(s));
        } else if (f->kind == K_INT) {
            int32_t i32 = (int32_t)v; /* hard ranges fit in int32 */
            memcpy(dst, &i32, sizeof(i32));
        } else {
            protobuf_c_boolean b = v != 0;
            memcpy(dst, &b, sizeof(b));
        }
    }
    if (updated_at_us) {
        w->updated_at = svc_timestamp(c, updated_at_us / 1000000);
        if (!w->updated_at)
            return NULL;
    }
    return w;
}

/* Appends "; "-separated text to an error buffer (truncation is harmless: it is a message). */
static void err_add(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_add(char *err, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(err);
    if (n + 3 >= cap)
        return;
    if (n) {
        memcpy(err + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, cap - n, fmt, ap);
    va_end(ap);
}

/* One bad limit: "name: description" appended to err (the message names every bad field, as
 * it always did) and the same as a field violation for the BadRequest details. */
static void lim_bad(tw_violations *bad, char *err, size_t cap, const lim_field *f, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));
static void lim_bad(tw_violations *bad, char *err, size_t cap, const lim_field *f, const char *fmt,
                    ...)
{
    char d[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d, sizeof(d), fmt, ap);
    va_end(ap);
    err_add(err, cap, "%s: %s", f->name, d);
    const char *desc = tw_arena_strdup(bad->arena, d);
    tw_violation_add(bad, f->name, desc ? desc : "invalid value");
}

/* The request's value of f, if present: 1 and *v (store units), 0 when unset, -1 with a
 * reason appended to err and bad when malformed or outside the caller's bounds. */
static int requested_value(const Tradewink__V1__SetLimitsRequest *req, const lim_field *f,
                           bool admin, int64_t *v, tw_violations *bad, char *err, size_t cap)
{
    const void *wrapper;
    memcpy(&wrapper, (const char *)req + f->req_off, sizeof(wrapper));
    if (!wrapper)
        return 0;
    char shown[RISK_DEC_STRMAX];
    if (f->kind == K_PCT || f->kind == K_USD) {
        const Google__Protobuf__StringValue *sv = wrapper;
        const char *s = sv->value ? sv->value : "";
        int digits = f->kind == K_PCT ? 2 : RISK_MONEY_DIGITS;
        risk_dec_rc rc = risk_dec_parse(s, strlen(s), digits, v);
        if (rc == RISK_DEC_PRECISION) {
            lim_bad(bad, err, cap, f, "at most %d decimal places", digits);
            return -1;
        }
        if (rc != RISK_DEC_OK) {
            lim_bad(bad, err, cap, f, "not a decimal number%s",
                    f->kind == K_PCT ? " of percent (e.g. \"2.5\")" : " of USD (e.g. \"500\")");
            return -1;
        }
    } else if (f->kind == K_INT) {
        *v = ((const Google__Protobuf__Int32Value *)wrapper)->value;
    } else {
        *v = ((const Google__Protobuf__BoolValue *)wrapper)->value ? 1 : 0;
    }
    if (*v < 0) {
        lim_bad(bad, err, cap, f, "must not be negative");
        return -1;
    }
    if (*v > f->hard_max) {
        lim_format(f, f->hard_max, shown, sizeof(shown));
        lim_bad(bad, err, cap, f, "at most %s", shown);
        return -1;
    }
    if (admin)
        return 1;
    if (f->kind == K_BOOL && *v < f->user_min) {
        lim_bad(bad, err, cap, f, "only an admin may turn this check off");
        return -1;
    }
    if (*v < f->user_min) {
        lim_format(f, f->user_min, shown, sizeof(shown));
        lim_bad(bad, err, cap, f, "0 (off) is not allowed for users; the minimum is %s", shown);
        return -1;
    }
    if (*v > f->user_max) {
        lim_format(f, f->user_max, shown, sizeof(shown));
        lim_bad(bad, err, cap, f, "above the user bound %s (an admin may set it)", shown);
        return -1;
    }
    return 1;
}

/* ---- shared helpers ------------------------------------------------------------------------ */

static bool is_admin(tw_call *c)
{
    return tw_call_principal(c)->role == TW_ROLE_ADMIN;
}

static char *details_json(tw_call *c, json_t *obj)
{
    if (!obj)
        return NULL;
    char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(obj);
    if (!s)
        return NULL;
    char *out = tw_arena_strdup(tw_call_arena(c), s);
    free(s);
    return out;
}

/* Records a refused request in the caller's chain, in a transaction of its own. The refusal is
 * answered whatever happens to this event (svc_audit logs a failure). Consumes details. */
static void audit_refusal(tw_call *c, store_conn *conn, const char *action, const char *object_id,
                          const char *outcome, json_t *details)
{
    svc_audit_refusal(c, conn, action, object_id, outcome, details_json(c, details));
}

/* Whose limits a request targets: "" = the caller; another user needs the admin role (else
 * PERMISSION_DENIED, audited as AUTH_DENIED); an unknown user is NOT_FOUND. */
static tw_status target_user(tw_call *c, store_conn *conn, const char *user_id, int64_t *out)
{
    int64_t self = svc_user_id(c);
    *out = 0; /* no user until one is named and allowed */
    if (!user_id || !*user_id) {
        *out = self;
        return tw_ok();
    }
    int64_t id = svc_parse_id(user_id);
    if (!id)
        return tw_err(TW_INVALID_ARGUMENT, "user_id: not a user id");
    if (id == self) {
        *out = self;
        return tw_ok();
    }
    if (!is_admin(c)) {
        audit_refusal(
            c, conn, "AUTH_DENIED", tw_call_method(c), "DENIED",
            json_pack("{s:s,s:s}", "method", tw_call_method(c), "target_user_id", user_id));
        return tw_err(TW_PERMISSION_DENIED, "only admins may name another user");
    }
    store_user u;
    store_rc rc = store_user_get(conn, id, &u);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "user");
    *out = id;
    return tw_ok();
}

static bool word_is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* 1..REASON_MAX bytes of valid UTF-8 with at least one visible character; ASCII control
 * characters become spaces. The result is arena memory. */
static tw_status clean_reason(tw_call *c, const char *in, char **out)
{
    size_t n = in ? strlen(in) : 0;
    if (n == 0 || n > REASON_MAX)
        return tw_err(TW_INVALID_ARGUMENT, "reason: 1-256 bytes");
    char *s = tw_arena_strdup(tw_call_arena(c), in);
    if (!s)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    bool visible = false;
    for (size_t i = 0; i < n;) {
        unsigned char b = (unsigned char)s[i];
        size_t len = b < 0x80             ? 1
                     : (b & 0xe0) == 0xc0 ? 2
                     : (b & 0xf0) == 0xe0 ? 3
                     : (b & 0xf8) == 0xf0 ? 4
                                          : 0;
        if (len == 0 || i + len > n || (len == 2 && b < 0xc2) || (len == 4 && b > 0xf4))
            return tw_err(TW_INVALID_ARGUMENT, "reason: not valid UTF-8");
        for (size_t k = 1; k < len; k++)
            if (((unsigned char)s[i + k] & 0xc0) != 0x80)
                return tw_err(TW_INVALID_ARGUMENT, "reason: not valid UTF-8");
        if (len == 3) {
            unsigned char b1 = (unsigned char)s[i + 1];
            if ((b == 0xe0 && b1 < 0xa0) || (b == 0xed && b1 >= 0xa0))
                return tw_err(TW_INVALID_ARGUMENT, "reason: not valid UTF-8");
        } else if (len == 4) {
            unsigned char b1 = (unsigned char)s[i + 1];
            if ((b == 0xf0 && b1 < 0x90) || (b == 0xf4 && b1 >= 0x90))
                return tw_err(TW_INVALID_ARGUMENT, "reason: not valid UTF-8");
        }
        if (len == 1 && (b < 0x20 || b == 0x7f))
            s[i] = ' ';
        else if (b != ' ')
            visible = true;
        i += len;
    }
    if (!visible)
        return tw_err(TW_INVALID_ARGUMENT, "reason: must not be blank");
    *out = s;
    return tw_ok();
}

/* ---- state view ---------------------------------------------------------------------------- */

static Tradewink__V1__RiskRule breaker_rule(const char *reason)
{
    if (strncmp(reason, "DAILY_LOSS", 10) == 0)
        return TRADEWINK__V1__RISK_RULE__RISK_RULE_DAILY_LOSS;
    if (strncmp(reason, "DRAWDOWN", 8) == 0)
        return TRADEWINK__V1__RISK_RULE__RISK_RULE_DRAWDOWN;
    return TRADEWINK__V1__RISK_RULE__RISK_RULE_UNSPECIFIED;
}

Tradewink__V1__RiskState *risksvc_state_to_wire(tw_call *c, int64_t user_id,
                                                const store_risk_state *rs,
                                                const store_global_state *g, int64_t now_us)
{
    tw_arena *a = tw_call_arena(c);
    Tradewink__V1__RiskState *w = tw_arena_alloc(a, sizeof(*w));
    if (!w)
        return NULL;
    tradewink__v1__risk_state__init(w);
    bool breaker = rs->breaker_until_us > now_us;
    bool by_breaker = word_is(rs->halted_by, "breaker");
    bool user_halt = word_is(rs->halted_by, "user");
    bool admin_halt = word_is(rs->halted_by, "admin");
    /* HALTED with no known cause other than an expired breaker is not a halt any more. */
    bool other_halt =
        word_is(rs->trading_state, "HALTED") && !by_breaker && !user_halt && !admin_halt;
    char reason[4 * (STORE_REASON_MAX + 32)];
    reason[0] = '\0';
    if (g && g->halted)
        err_add(reason, sizeof(reason), "global halt: %s", g->halt_reason);
    if (breaker)
        err_add(reason, sizeof(reason), "breaker: %s",
                by_breaker ? rs->halt_reason : "tripped, halted until the next session");
    if (admin_halt)
        err_add(reason, sizeof(reason), "admin halt: %s", rs->halt_reason);
    if (user_halt)
        err_add(reason, sizeof(reason), "user halt: %s", rs->halt_reason);
    if (other_halt)
        err_add(reason, sizeof(reason), "halted: %s", rs->halt_reason);
    bool halted = (g && g->halted) || breaker || admin_halt || user_halt || other_halt;
    if (halted) {
        w->trading_state = TRADEWINK__V1__TRADING_STATE__TRADING_STATE_HALTED;
    } else if (word_is(rs->trading_state, "REDUCING")) {
        w->trading_state = TRADEWINK__V1__TRADING_STATE__TRADING_STATE_REDUCING;
        err_add(reason, sizeof(reason), "reduce only: %s", rs->halt_reason);
    } else {
        w->trading_state = TRADEWINK__V1__TRADING_STATE__TRADING_STATE_ACTIVE;
    }
    w->user_id = svc_id_str(c, user_id);
    w->halt_reason = tw_arena_strdup(a, reason);
    w->global_halt = g && g->halted;
    w->breaker_tripped = breaker;
    if (breaker) {
        w->breaker_rule = by_breaker ? breaker_rule(rs->halt_reason)
                                     : TRADEWINK__V1__RISK_RULE__RISK_RULE_UNSPECIFIED;
        w->breaker_reason =
            tw_arena_strdup(a, by_breaker ? rs->halt_reason : "tripped earlier today");
    }
    w->as_of = svc_timestamp(c, now_us / 1000000);
    if (!w->user_id || !w->halt_reason || !w->breaker_reason || !w->as_of)
        return NULL;
    return w;
}

/* ---- GetLimits / SetLimits ---------------------------------------------------------------- */

tw_status risksvc_get_limits(tw_call *c, const Tradewink__V1__GetLimitsRequest *req,
                             Tradewink__V1__GetLimitsResponse *resp)
{
    store_conn *conn;
    int64_t uid = 0;
    tw_status st;
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    if ((st = target_user(c, conn, req->user_id, &uid)).code != TW_OK)
        return st;
    store_risk_limits l;
    store_rc rc = risksvc_limits_load(conn, uid, &l, NULL);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "risk limits");
    /* The store does not return updated_at_us yet: updated_at stays unset here. */
    resp->limits = limits_to_wire(c, &l, 0);
    return resp->limits ? tw_ok() : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
}

tw_status risksvc_set_limits(tw_call *c, const Tradewink__V1__SetLimitsRequest *req,
                             Tradewink__V1__SetLimitsResponse *resp)
{
    store_conn *conn;
    int64_t uid = 0;
    tw_status st;
    char err[ERRBUF];
    int64_t want[N_FIELDS];
    bool present[N_FIELDS];
    size_t n_present = 0;

    /* Every field first, so one answer names every bad field and nothing is touched. */
    err[0] = '\0';
    tw_violations bad;
    tw_violations_init(&bad, tw_call_arena(c));
    bool admin = is_admin(c);
    for (size_t i = 0; i < N_FIELDS; i++) {
        int r = requested_value(req, &limit_fields[i], admin, &want[i], &bad, err, sizeof(err));
        present[i] = r == 1;
        n_present += present[i];
    }
    if (err[0]) {
        st = tw_violations_status(&bad);
        const char *m = tw_arena_strdup(tw_call_arena(c), err);
        if (m)
            st.message = m;
        return st;
    }

    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    if ((st = target_user(c, conn, req->user_id, &uid)).code != TW_OK)
        return st;
    store_risk_limits old, cur;
    bool was_default = false;
    store_rc rc = store_tx_begin_user(conn, uid);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "user");
    if ((rc = risksvc_limits_load(conn, uid, &old, &was_default)) != STORE_OK) {
        store_tx_rollback(conn);
        return svc_store_status(c, rc, "risk limits");
    }
    cur = old;
    if (n_present == 0) { /* nothing to change, nothing to audit */
        store_tx_rollback(conn);
        resp->limits = limits_to_wire(c, &cur, 0);
        return resp->limits ? tw_ok() : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    }
    json_t *jold = json_object(), *jnew = json_object();
    for (size_t i = 0; i < N_FIELDS; i++) {
        if (!present[i])
            continue;
        json_object_set_new(jold, limit_fields[i].name,
                            lim_json(&limit_fields[i], lim_get(&old, &limit_fields[i])));
        json_object_set_new(jnew, limit_fields[i].name, lim_json(&limit_fields[i], want[i]));
        lim_put(&cur, &limit_fields[i], want[i]);
    }
    /* Belt and braces: the merged limits must be what the engine accepts. */
    risk_limits engine;
    risksvc_limits_to_engine(&cur, &engine, NULL);
    char why[256];
    if (risk_limits_check(&engine, NULL, why, sizeof(why)) != 0) {
        json_decref(jold);
        json_decref(jnew);
        store_tx_rollback(conn);
        return tw_call_errorf(c, TW_INVALID_ARGUMENT, "limits refused by the engine: %s", why);
    }
    char *details =
        details_json(c, json_pack("{s:s,s:b,s:o,s:o}", "user_id", svc_id_str(c, uid), "was_default",
                                  was_default, "old", jold, "new", jnew));
    if (!details) {
        store_tx_rollback(conn);
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    }
    if ((rc = store_risk_limits_set(conn, uid, &cur)) != STORE_OK) {
        store_tx_rollback(conn);
        return svc_store_status(c, rc, "risk limits");
    }
    st = svc_audit(c, conn, uid, "LIMITS_CHANGE", "", "SUCCESS", details);
    if (st.code != TW_OK) {
        store_tx_rollback(conn);
        return st;
    }
    if ((rc = store_tx_commit(conn)) != STORE_OK)
        return svc_store_status(c, rc, "risk limits");
    resp->limits = limits_to_wire(c, &cur, svc_now_us(c));
    return resp->limits ? tw_ok() : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
}

/* ---- Halt / Resume (the caller's own kill switch) ------------------------------------------ */

/* Opens the caller's transaction and reads their state and the global switch. */
static tw_status begin_own_state(tw_call *c, store_conn **conn, store_risk_state *rs,
                                 store_global_state *g)
{
    tw_status st = svc_conn(c, conn);
    if (st.code != TW_OK)
        return st;
    int64_t uid = svc_user_id(c);
    store_rc rc = store_tx_begin_user(*conn, uid);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "user");
    if ((rc = store_risk_state_get(*conn, uid, rs)) == STORE_OK)
        rc = store_global_get(*conn, g);
    if (rc != STORE_OK) {
        store_tx_rollback(*conn);
        return svc_store_status(c, rc, "risk state");
    }
    return tw_ok();
}

/* Writes rs, appends the audit event and commits; rolls back on any failure. */
static tw_status commit_state(tw_call *c, store_conn *conn, const store_risk_state *rs, bool write,
                              const char *action, char *details)
{
    int64_t uid = svc_user_id(c);
    store_rc rc = STORE_OK;
    tw_status st;
    if (!details) {
        store_tx_rollback(conn);
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    }
    if (write && (rc = store_risk_state_update(conn, uid, rs)) != STORE_OK) {
        store_tx_rollback(conn);
        return svc_store_status(c, rc, "risk state");
    }
    if ((st = svc_audit(c, conn, uid, action, "", "SUCCESS", details)).code != TW_OK) {
        store_tx_rollback(conn);
        return st;
    }
    return svc_store_status(c, store_tx_commit(conn), "risk state");
}

tw_status risksvc_halt(tw_call *c, const Tradewink__V1__HaltRequest *req,
                       Tradewink__V1__HaltResponse *resp)
{
    store_conn *conn;
    store_risk_state rs = {0}, prev;
    store_global_state g;
    char *reason;
    tw_status st = clean_reason(c, req->reason, &reason);
    if (st.code != TW_OK)
        return st;
    if ((st = begin_own_state(c, &conn, &rs, &g)).code != TW_OK)
        return st;
    prev = rs;
    /* An admin's per-user halt is kept (the user could otherwise lift it with Resume); a
     * breaker is replaced by the user halt but its expiry stays, so Resume stays refused. */
    if (!word_is(rs.halted_by, "admin")) {
        snprintf(rs.trading_state, sizeof(rs.trading_state), "HALTED");
        snprintf(rs.halted_by, sizeof(rs.halted_by), "user");
        snprintf(rs.halt_reason, sizeof(rs.halt_reason), "%s", reason);
    }
    char *details =
        details_json(c, json_pack("{s:s,s:s,s:s}", "reason", reason, "previous_state",
                                  prev.trading_state, "previous_halted_by", prev.halted_by));
    int64_t now = svc_now_us(c);
    if ((st = commit_state(c, conn, &rs, true, "HALT", details)).code != TW_OK)
        return st;
    resp->state = risksvc_state_to_wire(c, svc_user_id(c), &rs, &g, now);
    return resp->state ? tw_ok() : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
}

static void format_utc(int64_t us, char *buf, size_t cap)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "?");
}

tw_status risksvc_resume(tw_call *c, const Tradewink__V1__ResumeRequest *req,
                         Tradewink__V1__ResumeResponse *resp)
{
    (void)req;
    store_conn *conn;
    store_risk_state rs = {0}, prev;
    store_global_state g = {0};
    tw_status st;
    if ((st = begin_own_state(c, &conn, &rs, &g)).code != TW_OK)
        return st;
    int64_t now = svc_now_us(c);
    const char *refused = NULL;
    char until[32] = "";
    if (g.halted) {
        refused = "global halt";
        st = tw_err_reason(TW_FAILED_PRECONDITION, "TRADING_HALTED",
                           "a global halt is in force until an admin lifts it");
    } else if (rs.breaker_until_us > now) {
        refused = "breaker";
        format_utc(rs.breaker_until_us, until, sizeof(until));
        st = tw_call_errorf(c, TW_FAILED_PRECONDITION,
                            "the circuit breaker tripped today; trading resumes at %s", until);
        st.reason = "TRADING_HALTED";
    } else if (word_is(rs.halted_by, "admin")) {
        refused = "admin halt";
        st = tw_err_reason(TW_FAILED_PRECONDITION, "TRADING_HALTED",
                           "halted by an admin; only an admin can lift it");
    }
    if (refused) {
        store_tx_rollback(conn);
        audit_refusal(c, conn, "RESUME", "", "FAILURE",
                      json_pack("{s:s,s:s,s:s}", "refused", refused, "state", rs.trading_state,
                                "halted_by", rs.halted_by));
        return st;
    }
    prev = rs;
    /* REDUCING is not a halt: Resume leaves it alone. */
    bool write = rs.halted_by[0] != '\0' || word_is(rs.trading_state, "HALTED");
    if (write) {
        snprintf(rs.trading_state, sizeof(rs.trading_state), "ACTIVE");
        rs.halted_by[0] = '\0';
        rs.halt_reason[0] = '\0';
    }
    char *details = details_json(c, json_pack("{s:s,s:s,s:s}", "previous_state", prev.trading_state,
                                              "previous_halted_by", prev.halted_by,
                                              "previous_reason", prev.halt_reason));
    if ((st = commit_state(c, conn, &rs, write, "RESUME", details)).code != TW_OK)
        return st;
    resp->state = risksvc_state_to_wire(c, svc_user_id(c), &rs, &g, now);
    return resp->state ? tw_ok() : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
}

/* ---- HaltAll / ResumeAll (admin global kill switch) ---------------------------------------- */

/* Sets the global switch and audits it in the acting admin's own chain, in one transaction. */
static tw_status set_global(tw_call *c, bool halted, const char *reason, const char *action,
                            int64_t now)
{
    store_conn *conn;
    store_global_state prev;
    tw_status st;
    if (!is_admin(c)) /* the route table requires ADMIN already; never rely on one check */
        return tw_err(TW_PERMISSION_DENIED, "admin role required");
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    int64_t uid = svc_user_id(c);
    store_rc rc = store_tx_begin_user(conn, uid);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "user");
    if ((rc = store_global_get(conn, &prev)) != STORE_OK) {
        store_tx_rollback(conn);
        return svc_store_status(c, rc, "global state");
    }
    const char *subject = tw_call_principal(c)->subject;
    char *details =
        halted
            ? details_json(c, json_pack("{s:s,s:b}", "reason", reason, "was_halted", prev.halted))
            : details_json(c,
                           json_pack("{s:b,s:s,s:s}", "was_halted", prev.halted, "previous_reason",
                                     prev.halt_reason, "previous_halted_by", prev.halted_by));
    if (!details) {
        store_tx_rollback(conn);
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    }
    rc = store_global_set(conn, halted, halted ? (subject ? subject : "") : "",
                          halted ? reason : "", now);
    if (rc != STORE_OK) {
        store_tx_rollback(conn);
        return svc_store_status(c, rc, "global state");
    }
    if ((st = svc_audit(c, conn, uid, action, "", "SUCCESS", details)).code != TW_OK) {
        store_tx_rollback(conn);
        return st;
    }
    return svc_store_status(c, store_tx_commit(conn), "global state");
}

tw_status risksvc_halt_all(tw_call *c, const Tradewink__V1__HaltAllRequest *req,
                           Tradewink__V1__HaltAllResponse *resp)
{
    char *reason;
    tw_status st = clean_reason(c, req->reason, &reason);
    if (st.code != TW_OK)
        return st;
    int64_t now = svc_now_us(c);
    if ((st = set_global(c, true, reason, "HALT_ALL", now)).code != TW_OK)
        return st;
    resp->halted_at = svc_timestamp(c, now / 1000000);
    return resp->halted_at ? tw_ok() : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
}

tw_status risksvc_resume_all(tw_call *c, const Tradewink__V1__ResumeAllRequest *req,
                             Tradewink__V1__ResumeAllResponse *resp)
{
    (void)req;
    int64_t now = svc_now_us(c);
    tw_status st = set_global(c, false, "", "RESUME_ALL", now);
    if (st.code != TW_OK)
        return st;
    resp->resumed_at = svc_timestamp(c, now / 1000000);
    return resp->resumed_at ? tw_ok() : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
}
