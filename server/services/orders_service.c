/*
 * tradewink.v1.Orders.
 *
 * SubmitOrder, in order:
 *  1. validate every field (INVALID_ARGUMENT names it); an existing client_order_id of this
 *     user returns that order (idempotent retries, also under concurrency: the store's unique
 *     key decides);
 *  2. resolve the user's own broker (their key, or the sim exchange for paper without one) and
 *     read the account outside any transaction;
 *  3. admission in ONE transaction under the user's lock (PostgreSQL row lock / SQLite
 *     BEGIN IMMEDIATE): snapshot from our records, risk_decide, insert the order as REJECTED,
 *     PENDING_CONFIRMATION (automation without autonomous mode) or PENDING_SUBMIT, persist
 *     breaker changes, audit ORDER_ENTRY / ORDER_EXIT / ORDER_REJECT — all or nothing;
 *  4. outside the transaction, send PENDING_SUBMIT orders to the broker with "tw-<our id>" as
 *     the broker's client order id, then store its answer. A lost answer (timeout, crash) is
 *     resolved by the reconciler asking the broker, never by sending again.
 * A risk rejection is not an RPC error: the call returns OK with status REJECTED.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/log.h"
#include "risk/money.h"
#include "services.h"
#include "svc.h"
#include "trading/trading.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX 500
#define CONFIRM_WINDOW_MS (5 * 60 * 1000)
#define NOTE_MAX_CHARS 256 /* orders.proto: SubmitOrderRequest.note */

typedef Tradewink__V1__Order wire_order;

/* ---- conversions ------------------------------------------------------------------------- */

static char *fmt_qty(tw_call *c, int64_t v)
{
    char buf[48];
    if (risk_qty_format(v, buf, sizeof(buf)) != RISK_DEC_OK)
        return (char *)"";
    return tw_arena_strdup(tw_call_arena(c), buf);
}

static char *fmt_money(tw_call *c, int64_t v)
{
    char buf[48];
    if (risk_money_format(v, buf, sizeof(buf)) != RISK_DEC_OK)
        return (char *)"";
    return tw_arena_strdup(tw_call_arena(c), buf);
}

static int enum_value(const ProtobufCEnumDescriptor *d, const char *prefix, const char *word)
{
    char name[96];
    size_t i;
    int n = snprintf(name, sizeof(name), "%s", prefix);
    for (i = 0; word[i] && (size_t)n + i + 1 < sizeof(name); i++)
        name[n + i] = (char)(word[i] >= 'a' && word[i] <= 'z' ? word[i] - 32 : word[i]);
    name[n + i] = '\0';
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(d, name);
    return v ? v->value : 0;
}

static void add_violations(tw_call *c, wire_order *w, const char *json)
{
    json_error_t e;
    json_t *arr = json && *json ? json_loads(json, 0, &e) : NULL;
    if (!json_is_array(arr)) {
        json_decref(arr);
        return;
    }
    size_t n = json_array_size(arr);
    tw_arena *a = tw_call_arena(c);
    w->violations = tw_arena_alloc(a, (n ? n : 1) * sizeof(*w->violations));
    for (size_t i = 0; w->violations && i < n; i++) {
        json_t *it = json_array_get(arr, i);
        Tradewink__V1__RiskViolation *v = tw_arena_alloc(a, sizeof(*v));
        if (!v)
            break;
        tradewink__v1__risk_violation__init(v);
        v->code = (Tradewink__V1__RiskRule)json_integer_value(json_object_get(it, "code"));
        const char *m = json_string_value(json_object_get(it, "message"));
        v->message = tw_arena_strdup(a, m ? m : "");
        w->violations[w->n_violations++] = v;
    }
    json_decref(arr);
}

Tradewink__V1__Order *orders_to_wire(tw_call *c, const store_order *o)
{
    tw_arena *a = tw_call_arena(c);
    wire_order *w = tw_arena_alloc(a, sizeof(*w));
    if (!w)
        return NULL;
    tradewink__v1__order__init(w);
    w->id = svc_id_str(c, o->id);
    w->client_order_id = tw_arena_strdup(a, o->client_order_id);
    w->user_id = svc_id_str(c, o->user_id);
    w->symbol = tw_arena_strdup(a, o->symbol);
    w->side = o->side == STORE_SIDE_BUY    ? TRADEWINK__V1__ORDER_SIDE__ORDER_SIDE_BUY
              : o->side == STORE_SIDE_SELL ? TRADEWINK__V1__ORDER_SIDE__ORDER_SIDE_SELL
                                           : TRADEWINK__V1__ORDER_SIDE__ORDER_SIDE_UNSPECIFIED;
    w->type = o->type == STORE_TYPE_MARKET  ? TRADEWINK__V1__ORDER_TYPE__ORDER_TYPE_MARKET
              : o->type == STORE_TYPE_LIMIT ? TRADEWINK__V1__ORDER_TYPE__ORDER_TYPE_LIMIT
                                            : TRADEWINK__V1__ORDER_TYPE__ORDER_TYPE_UNSPECIFIED;
    w->time_in_force = o->tif == STORE_TIF_DAY   ? TRADEWINK__V1__TIME_IN_FORCE__TIME_IN_FORCE_DAY
                       : o->tif == STORE_TIF_GTC ? TRADEWINK__V1__TIME_IN_FORCE__TIME_IN_FORCE_GTC
                       : o->tif == STORE_TIF_IOC
                           ? TRADEWINK__V1__TIME_IN_FORCE__TIME_IN_FORCE_IOC
                           : TRADEWINK__V1__TIME_IN_FORCE__TIME_IN_FORCE_UNSPECIFIED;
    w->qty = fmt_qty(c, o->qty);
    w->filled_qty = fmt_qty(c, o->filled_qty);
    w->avg_fill_price = o->filled_qty ? fmt_money(c, o->avg_fill_price) : (char *)"";
    w->limit_price = o->limit_price ? fmt_money(c, o->limit_price) : (char *)"";
    w->status = (Tradewink__V1__OrderStatus)enum_value(&tradewink__v1__order_status__descriptor,
                                                       "ORDER_STATUS_", o->status);
    w->origin = (Tradewink__V1__OrderOrigin)enum_value(&tradewink__v1__order_origin__descriptor,
                                                       "ORDER_ORIGIN_", o->origin);
    w->trading_mode = (Tradewink__V1__TradingMode)enum_value(
        &tradewink__v1__trading_mode__descriptor, "TRADING_MODE_", o->mode);
    w->broker = tw_arena_strdup(a, o->broker);
    w->broker_key_id = o->broker_key_id ? svc_id_str(c, o->broker_key_id) : (char *)"";
    w->broker_order_id = tw_arena_strdup(a, o->broker_order_id);
    w->note = tw_arena_strdup(a, o->note);
    add_violations(c, w, o->violations);
    w->status_message = tw_arena_strdup(a, o->status_message);
    w->created_at = svc_timestamp(c, o->created_at_us / 1000000);
    w->updated_at = svc_timestamp(c, o->updated_at_us / 1000000);
    if (o->confirm_by_us)
        w->confirm_by = svc_timestamp(c, o->confirm_by_us / 1000000);
    return w;
}

/* The metric families when the edge is up (NULL in tests without it). */
static edge_tw_metrics *app_metrics(tw_call *c)
{
    srv_app *app = tw_call_app(c);
    return app && app->metrics ? &app->m : NULL;
}

/* ---- validation -------------------------------------------------------------------------- */

typedef struct {
    char coid[STORE_COID_MAX + 1];
    char symbol[RISK_SYMBOL_MAX];
    store_side side;
    store_order_type type;
    store_tif tif;
    const char *origin;
    risk_qty qty;
    risk_price limit;
    int64_t key_id;
    const char *note; /* the request's, valid for the call */
} order_in;

static int valid_coid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > STORE_COID_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == ':' || *s == '-'))
            return 0;
    return 1;
}

/* orders.proto: 1-15 characters of [A-Z0-9./-] once lower case is upper-cased (Alpaca's
 * share classes "BRK.B" and crypto pairs "BTC/USD"). Writes the upper-cased symbol to out. */
static int normal_symbol(const char *s, char out[RISK_SYMBOL_MAX])
{
    size_t n = strlen(s);
    if (n == 0 || n >= RISK_SYMBOL_MAX)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];
        if (i < n && !((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                       ch == '/' || ch == '-'))
            return 0;
        out[i] = ch;
    }
    return 1;
}

/* Every bad field is reported (BadRequest), not only the first; the message still names the
 * first. o is filled only when the result is OK. */
static tw_status parse_order(tw_arena *a, const Tradewink__V1__SubmitOrderRequest *r, order_in *o)
{
    tw_violations bad;
    tw_violations_init(&bad, a);
    memset(o, 0, sizeof(*o));
    if (!valid_coid(r->client_order_id))
        tw_violation_add(&bad, "client_order_id", "1..128 characters of A-Z a-z 0-9 . _ : -");
    else
        snprintf(o->coid, sizeof(o->coid), "%s", r->client_order_id);
    if (!normal_symbol(r->symbol, o->symbol))
        tw_violation_add(&bad, "symbol", "1..15 characters of A-Z 0-9 . / -");
    switch (r->side) {
    case TRADEWINK__V1__ORDER_SIDE__ORDER_SIDE_BUY:
        o->side = STORE_SIDE_BUY;
        break;
    case TRADEWINK__V1__ORDER_SIDE__ORDER_SIDE_SELL:
        o->side = STORE_SIDE_SELL;
        break;
    default:
        tw_violation_add(&bad, "side", "must be BUY or SELL");
    }
    switch (r->type) {
    case TRADEWINK__V1__ORDER_TYPE__ORDER_TYPE_MARKET:
        o->type = STORE_TYPE_MARKET;
        break;
    case TRADEWINK__V1__ORDER_TYPE__ORDER_TYPE_LIMIT:
        o->type = STORE_TYPE_LIMIT;
        break;
    default:
        tw_violation_add(&bad, "type", "must be MARKET or LIMIT");
    }
    /* Required (orders.proto, common.proto: zero values are never valid inputs): 0 is not
     * taken to mean DAY / USER. */
    switch (r->time_in_force) {
    case TRADEWINK__V1__TIME_IN_FORCE__TIME_IN_FORCE_DAY:
        o->tif = STORE_TIF_DAY;
        break;
    case TRADEWINK__V1__TIME_IN_FORCE__TIME_IN_FORCE_GTC:
        o->tif = STORE_TIF_GTC;
        break;
    case TRADEWINK__V1__TIME_IN_FORCE__TIME_IN_FORCE_IOC:
        o->tif = STORE_TIF_IOC;
        break;
    default:
        tw_violation_add(&bad, "time_in_force", "required, DAY, GTC or IOC");
    }
    switch (r->origin) {
    case TRADEWINK__V1__ORDER_ORIGIN__ORDER_ORIGIN_USER:
        o->origin = "user";
        break;
    case TRADEWINK__V1__ORDER_ORIGIN__ORDER_ORIGIN_AUTOMATION:
        o->origin = "automation";
        break;
    default:
        tw_violation_add(&bad, "origin", "required, USER or AUTOMATION");
    }
    if (risk_qty_parse(r->qty, &o->qty) != RISK_DEC_OK || o->qty <= 0)
        tw_violation_add(&bad, "qty", "a positive decimal with at most 9 decimals");
    /* An unknown type says nothing about the price: it is checked for a known type only. */
    if (o->type == STORE_TYPE_LIMIT) {
        if (risk_price_parse(r->limit_price, &o->limit) != RISK_DEC_OK || o->limit <= 0)
            tw_violation_add(&bad, "limit_price", "a positive decimal with at most 6 decimals");
    } else if (o->type != STORE_TYPE_NONE && *r->limit_price) {
        tw_violation_add(&bad, "limit_price", "not allowed for market orders");
    }
    if (*r->broker_key_id && (o->key_id = svc_parse_id(r->broker_key_id)) == 0)
        tw_violation_add(&bad, "broker_key_id", "not a key id");
    long chars = svc_printable_chars(r->note);
    if (chars < 0 || chars > NOTE_MAX_CHARS)
        tw_violation_add(&bad, "note", "at most 256 characters, no control characters");
    o->note = r->note;
    return tw_violations_status(&bad);
}

/* ---- admission --------------------------------------------------------------------------- */

static char *violations_json(const risk_decision *d, int live_refused)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < d->n_violations; i++)
        json_array_append_new(arr,
                              json_pack("{s:i,s:s}", "code", trading_rule_of(d->violations[i].code),
                                        "message", d->violations[i].message));
    if (arr && live_refused)
        json_array_append_new(arr, json_pack("{s:i,s:s}", "code", 11, "message",
                                             "live trading is not enabled for this account"));
    char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    return s;
}

static tw_status load_order(tw_call *c, store_conn *conn, int64_t uid, int64_t id, wire_order **out)
{
    store_order o;
    store_rc rc = store_order_get(conn, uid, id, &o);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "order");
    *out = orders_to_wire(c, &o);
    return *out ? tw_ok() : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
}

/* The broker key an order uses: the request's, else the user's default; must be the caller's
 * own and match the trading mode. NULL key = the sim exchange (paper only). */
static tw_status pick_key(tw_call *c, store_conn *conn, int64_t uid, int64_t req_key,
                          const store_settings *set, store_broker_key *key, int *have_key)
{
    int64_t kid = req_key ? req_key : set->default_broker_key_id;
    *have_key = 0;
    if (!kid) {
        if (set->trading_mode == STORE_MODE_LIVE)
            return tw_err(TW_FAILED_PRECONDITION, "live trading needs a live broker key");
        return tw_ok();
    }
    store_rc rc = store_key_get(conn, uid, kid, key);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "broker key");
    int live = strcmp(key->environment, "live") == 0;
    if (live != (set->trading_mode == STORE_MODE_LIVE))
        return tw_err(TW_FAILED_PRECONDITION,
                      "broker key environment does not match the account's trading mode");
    *have_key = 1;
    return tw_ok();
}

/* The broker's view of one of our orders (coid: "tw-<order id>", or any valid id for a check). */
static brk_order_req broker_req(const char *coid, const char *symbol, store_side side,
                                store_order_type type, store_tif tif, risk_qty qty,
                                risk_price limit)
{
    brk_order_req req = {.client_order_id = coid,
                         .symbol = symbol,
                         .side = side == STORE_SIDE_BUY ? BRK_SIDE_BUY : BRK_SIDE_SELL,
                         .type = type == STORE_TYPE_LIMIT ? BRK_TYPE_LIMIT : BRK_TYPE_MARKET,
                         .tif = tif == STORE_TIF_GTC   ? BRK_TIF_GTC
                                : tif == STORE_TIF_IOC ? BRK_TIF_IOC
                                                       : BRK_TIF_DAY,
                         .qty = qty,
                         .limit_price = limit};
    return req;
}

/*
 * The broker's own documented order rules (Alpaca: fractional only DAY, extended hours only
 * limit + DAY, crypto only GTC/IOC), checked locally before anything is recorded or sent:
 * INVALID_ARGUMENT naming the field and the reason, never a 422 from the broker later.
 */
static tw_status broker_rules(tw_call *c, brk_conn *bc, const order_in *in)
{
    brk_order_req req =
        broker_req("tw-check", in->symbol, in->side, in->type, in->tif, in->qty, in->limit);
    brk_err err = {0};
    brk_rc rc = brk_order_check(bc, &req, &err);
    tw_status st = tw_ok();
    if (rc != BRK_OK) {
        char *m = err.message ? tw_arena_strdup(tw_call_arena(c), err.message) : NULL;
        st = tw_err(TW_INVALID_ARGUMENT, m ? m : "order: refused by the broker's order rules");
    }
    brk_err_clear(&err);
    return st;
}

/* Send an admitted order to its broker and store the answer. Never called twice for one order
 * by the same request; a lost answer is left to the reconciler. A refusal's reason (sanitised
 * and masked by the adapter) becomes the order's status_message and its audit event's reason. */
static void send_to_broker(tw_call *c, trading *t, store_conn *conn, int64_t uid,
                           const store_order *o, brk_conn *bc)
{
    char coid[48];
    snprintf(coid, sizeof(coid), "tw-%lld", (long long)o->id);
    brk_order_req req =
        broker_req(coid, o->symbol, o->side, o->type, o->tif, o->qty, o->limit_price);
    brk_order ans;
    brk_err err = {0};
    memset(&ans, 0, sizeof(ans));
    brk_rc rc = brk_submit(bc, &req, &ans, &err);
    (void)c;
    (void)conn;
    if (rc == BRK_OK) {
        trading_apply_report(t, uid, o->id, &ans, "broker");
    } else if (rc == BRK_REJECTED || rc == BRK_INVALID || rc == BRK_AUTH ||
               rc == BRK_RATE_LIMITED) {
        /* RATE_LIMITED: our budget or Alpaca's 429 (also after waiting for its reset and
         * sending once more): nothing was placed, and the trader is told so, not left
         * waiting for a silent REJECTED from the reconciler. */
        memset(&ans, 0, sizeof(ans));
        ans.status = BRK_ORDER_REJECTED;
        const char *why = rc == BRK_RATE_LIMITED
                              ? "broker request limit reached; nothing was placed, submit again"
                          : err.message ? err.message
                                        : brk_rc_name(rc);
        tw_logf(TW_LOG_INFO, "broker_reject", "order %lld: %s: %s", (long long)o->id,
                brk_rc_name(rc), why);
        trading_apply_report_why(t, uid, o->id, &ans, "broker", why);
    } else {
        /* UNAVAILABLE / timeout: the broker may or may not have it. Ask, do not resend. */
        tw_logf(TW_LOG_WARN, "broker_unavailable",
                "order %lld: %s; left PENDING_SUBMIT for the reconciler", (long long)o->id,
                brk_rc_name(rc));
    }
    brk_err_clear(&err);
}

/* send_to_broker, keeping in *o what the reports its sending committed on this thread left of
 * it; false: none did (another thread applied them, or none came), *o is stale, read it.
 * version: the user's version the call's own commit left *o at. */
static bool send_answered(tw_call *c, trading *t, store_conn *conn, int64_t uid, store_order *o,
                          int64_t version, brk_conn *bc)
{
    store_order *sent = tw_arena_alloc(tw_call_arena(c), sizeof(*sent));
    if (!sent) {
        send_to_broker(c, t, conn, uid, o, bc);
        return false;
    }
    *sent = *o;
    trading_answer_begin(uid, o->id, o, version);
    send_to_broker(c, t, conn, uid, sent, bc);
    return trading_answer_end();
}

/* A missing reference price because the broker's last trade was stale: the violation says so
 * (why, from trading_ref_price_from) instead of the generic "no reference price". */
static void explain_no_ref(risk_decision *d, const char *why)
{
    for (size_t i = 0; why && why[0] && i < d->n_violations; i++)
        if (d->violations[i].code == RISK_V_NO_REFERENCE_PRICE)
            snprintf(d->violations[i].message, sizeof(d->violations[i].message), "%s", why);
}

/*
 * The reference price was not available because the broker could not answer (ref_st is
 * UNAVAILABLE) and the decision needed one: the caller gets ref_st (retryable) instead of a
 * recorded NO_REFERENCE_PRICE rejection. An order that needs no reference (a market exit) is
 * decided as usual.
 */
static tw_status ref_outage(tw_status ref_st, const risk_decision *d)
{
    if (ref_st.code == TW_OK)
        return ref_st;
    for (size_t i = 0; i < d->n_violations; i++)
        if (d->violations[i].code == RISK_V_NO_REFERENCE_PRICE)
            return ref_st;
    return tw_ok();
}

/*
 * One admission for SubmitOrder (record), ConfirmOrder (confirm) and Risk/CheckOrder (dry
 * run): admit_prepare learns what needs I/O before the user's lock (settings and key for a new
 * order, the broker account, the broker's own order rules, the reference price), admit_decide
 * makes the decision from the user's view (inside the lock unless a dry run) and, for a
 * recorded decision, persists the assessment (breaker trip, day roll) and counts the
 * rejections. What each caller does with the decision (insert, update, nothing) is its own.
 */
typedef struct admission {
    store_settings set; /* a new order's account settings (mode, autonomous) */
    /* set came from the ledger, exact at set_version: the user's lock must confirm it. */
    bool set_known;
    int64_t set_version;
    store_broker_key key;
    int have_key; /* 0: the sim exchange */
    brk_conn *bc; /* the user's broker connection, open until admit_done */
    brk_account acct;
    risk_price ref; /* the symbol's reference price (0 = none) */
    tw_status ref_st;
    char ref_why[RISK_MESSAGE_MAX];
} admission;

/* For a new order (in) or a pending one (pending: its own key, its rules already checked).
 * known: a new order's settings may come from the ledger (admit_confirmed checks them under
 * the user's lock); else they are read from the store. */
static tw_status admit_prepare(tw_call *c, trading *t, store_conn *conn, int64_t uid,
                               const order_in *in, const store_order *pending, bool known,
                               admission *ad)
{
    tw_status st;
    store_rc rc;
    memset(ad, 0, sizeof(*ad));
    ledger_reads r;
    bool note = false;
    if (in && known && trading_reads_known(t, uid, &r)) {
        ad->set = r.set;
        ad->set_known = true;
        ad->set_version = r.version;
    } else if (in) {
        /* Kept for the next order (and the reads), at the version read before them. */
        note = trading_reads_begin(conn, uid, &r);
        if ((rc = store_settings_get(conn, uid, &ad->set)) != STORE_OK)
            return svc_store_status(c, rc, "account settings");
    }
    if (in) {
        if ((st = pick_key(c, conn, uid, in->key_id, &ad->set, &ad->key, &ad->have_key)).code !=
            TW_OK)
            return st;
        /* The reads hold the default key's kind: known when this order uses it. */
        int64_t def = ad->set.default_broker_key_id;
        if (note && (!def || (ad->have_key && ad->key.id == def))) {
            r.set = ad->set;
            r.key_id = def;
            r.key_sim = !def || strcmp(ad->key.broker, "sim") == 0;
            trading_reads_note(t, uid, &r);
        }
    } else if (pending && pending->broker_key_id) {
        if ((rc = store_key_get(conn, uid, pending->broker_key_id, &ad->key)) != STORE_OK)
            return svc_store_status(c, rc, "broker key");
        ad->have_key = 1;
    }
    st = trading_account(t, conn, uid, ad->have_key ? &ad->key : NULL, svc_traceparent(c),
                         &ad->acct, &ad->bc);
    if (st.code != TW_OK)
        return st;
    if (in && (st = broker_rules(c, ad->bc, in)).code != TW_OK) {
        brk_conn_destroy(ad->bc);
        ad->bc = NULL;
        return st;
    }
    /* From the same broker connection, before the user's lock (it may be a network call). */
    const char *symbol = in ? in->symbol : pending ? pending->symbol : "";
    ad->ref_st =
        trading_ref_price_from(t, ad->bc, symbol, &ad->ref, ad->ref_why, sizeof(ad->ref_why));
    return tw_ok();
}

static void admit_done(admission *ad)
{
    brk_conn_destroy(ad->bc);
    ad->bc = NULL;
}

/* Under the user's lock: whether the settings ad was prepared with are still the account's
 * (read from the store, or the ledger's at the version this transaction follows). */
static bool admit_confirmed(store_conn *conn, const admission *ad)
{
    return !ad->set_known || store_tx_version(conn) - 1 == ad->set_version;
}

/* The rejections a committed decision made, by the engine's rule names. */
static void count_rejections(tw_call *c, const risk_decision *d)
{
    edge_tw_metrics *m = app_metrics(c);
    for (size_t i = 0; m && i < d->n_violations; i++)
        edge_metric_inc1(m->risk_rejects, risk_code_name(d->violations[i].code));
}

/* The decision on ri. exclude_id: the pending order being confirmed (not counted as open).
 * record: inside the user's transaction; persists the assessment (the caller counts the
 * rejections once it committed: count_rejections). */
static tw_status admit_decide(tw_call *c, trading *t, store_conn *conn, int64_t uid,
                              const admission *ad, const risk_intent *ri, int64_t exclude_id,
                              bool record, risk_decision *d)
{
    tw_arena *a = tw_call_arena(c);
    trading_view *v = tw_arena_zalloc(a, sizeof(*v));
    if (!v)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    tw_status st = trading_view_load(t, a, conn, uid, &ad->acct, ri, ad->ref, exclude_id, v);
    if (st.code != TW_OK)
        return st;
    risk_decide(ri, &v->snap, &v->limits, trading_now_ms(t), d);
    explain_no_ref(d, ad->ref_why);
    if ((st = ref_outage(ad->ref_st, d)).code != TW_OK || !record)
        return st;
    return trading_persist_assessment(t, conn, uid, v, &d->account);
}

/* A rejected decision's violations on the order, and its status REJECTED. */
static void reject_order(store_order *o, const risk_decision *d)
{
    char *vj = violations_json(d, 0);
    snprintf(o->violations, sizeof(o->violations), "%s", vj ? vj : "[]");
    free(vj);
    snprintf(o->status, sizeof(o->status), ORD_REJECTED);
}

/* A SubmitOrder that failed with st before recording an order: the order its client_order_id
 * already names when it is a retry (the same order, whatever a new one would meet now: a
 * broker outage, changed settings, a risk rule), else st. */
static tw_status submitted_before(tw_call *c, store_conn *conn, int64_t uid, const char *coid,
                                  tw_status st, Tradewink__V1__SubmitOrderResponse *resp)
{
    store_order *o = tw_arena_zalloc(tw_call_arena(c), sizeof(*o));
    if (!o || store_order_get_by_coid(conn, uid, coid, o) != STORE_OK)
        return st;
    return (resp->order = orders_to_wire(c, o)) ? tw_ok()
                                                : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
}

/* Insert the new order as the decision says (REJECTED, PENDING_CONFIRMATION for automation
 * without autonomous mode, else PENDING_SUBMIT) with its audit event. In the transaction. */
static tw_status record_order(tw_call *c, trading *t, store_conn *conn, int64_t uid,
                              const order_in *in, const admission *ad, const risk_decision *d,
                              store_order *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->client_order_id, sizeof(o->client_order_id), "%s", in->coid);
    snprintf(o->symbol, sizeof(o->symbol), "%s", in->symbol);
    o->side = in->side;
    o->type = in->type;
    o->tif = in->tif;
    snprintf(o->origin, sizeof(o->origin), "%s", in->origin);
    snprintf(o->mode, sizeof(o->mode), "%s",
             ad->set.trading_mode == STORE_MODE_LIVE ? "live" : "paper");
    snprintf(o->broker, sizeof(o->broker), "%s", ad->have_key ? ad->key.broker : "sim");
    o->broker_key_id = ad->have_key ? ad->key.id : 0;
    snprintf(o->note, sizeof(o->note), "%s", in->note);
    const tw_trace *tr = tw_call_trace(c);
    snprintf(o->trace_id, sizeof(o->trace_id), "%s", tr->trace_id);
    snprintf(o->span_id, sizeof(o->span_id), "%s", tr->span_id);
    o->qty = in->qty;
    o->limit_price = in->limit;
    const char *action = d->reduce_only ? "ORDER_EXIT" : "ORDER_ENTRY";
    if (!d->allowed) {
        reject_order(o, d);
        action = "ORDER_REJECT";
    } else if (strcmp(in->origin, "automation") == 0 && !ad->set.autonomous) {
        snprintf(o->status, sizeof(o->status), ORD_PENDING_CONFIRMATION);
        o->confirm_by_us = (trading_now_ms(t) + CONFIRM_WINDOW_MS) * 1000;
    } else {
        snprintf(o->status, sizeof(o->status), ORD_PENDING_SUBMIT);
    }
    int64_t id = 0;
    o->created_at_us = o->updated_at_us = store_now_us();
    store_rc rc = store_order_insert(conn, uid, o, &id);
    if (rc == STORE_CONFLICT)
        return tw_err(TW_ALREADY_EXISTS, "client_order_id already used");
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "order");
    o->id = id;
    o->user_id = uid;
    trading_order_recorded(conn, uid, o);
    char q[48];
    risk_qty_format(o->qty, q, sizeof(q));
    char *details =
        tw_arena_printf(tw_call_arena(c),
                        "{\"symbol\":\"%s\",\"side\":\"%s\",\"qty\":\"%s\",\"type\":"
                        "\"%s\",\"status\":\"%s\",\"origin\":\"%s\",\"violations\":%d}",
                        o->symbol, store_side_name(o->side), q, store_order_type_name(o->type),
                        o->status, o->origin, (int)d->n_violations);
    return svc_audit(c, conn, uid, action, svc_id_str(c, id), d->allowed ? "SUCCESS" : "DENIED",
                     details);
}

tw_status orders_submit(tw_call *c, const Tradewink__V1__SubmitOrderRequest *req,
                        Tradewink__V1__SubmitOrderResponse *resp)
{
    srv_app *app = tw_call_app(c);
    trading *t = app->trading;
    tw_arena *a = tw_call_arena(c);
    store_conn *conn;
    order_in in;
    tw_status st = parse_order(a, req, &in);
    if (st.code != TW_OK)
        return st;
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    int64_t uid = svc_user_id(c);
    store_order *o = tw_arena_zalloc(a, sizeof(*o));
    admission *ad = tw_arena_zalloc(a, sizeof(*ad));
    risk_decision *d = tw_arena_zalloc(a, sizeof(*d));
    if (!o || !ad || !d)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");

    /* 1. What needs the broker, before the user's lock. */
    if ((st = admit_prepare(c, t, conn, uid, &in, NULL, true, ad)).code != TW_OK)
        return submitted_before(c, conn, uid, in.coid, st, resp);
    risk_intent ri;
    trading_intent(&ri, in.symbol, in.side, in.qty, in.limit);

    /* 2. Decide and record in one transaction (retried when the store is busy). An idempotent
     * retry (a client_order_id already used) is found by the insert's unique key, not by a
     * read before it. */
    bool recorded = false; /* this call inserted the order (it alone may send it) */
    int64_t version = 0;   /* the user's version its commit set */
    store_rc rc;
    for (int attempt = 0;; attempt++) {
        if ((rc = store_tx_begin_user(conn, uid)) != STORE_OK) {
            st = svc_store_status(c, rc, "user");
            break;
        }
        if (!admit_confirmed(conn, ad)) {
            /* Another replica changed the account since the ledger's settings: start over
             * from the store's (once: they are confirmed by this lock's version then). */
            store_tx_rollback(conn);
            admit_done(ad);
            if ((st = admit_prepare(c, t, conn, uid, &in, NULL, false, ad)).code != TW_OK)
                break;
            continue;
        }
        st = admit_decide(c, t, conn, uid, ad, &ri, 0, true, d);
        if (st.code == TW_OK)
            st = record_order(c, t, conn, uid, &in, ad, d, o);
        if (st.code == TW_OK) {
            version = store_tx_version(conn);
            rc = store_tx_commit(conn);
            st = svc_store_status(c, rc, "order");
            recorded = st.code == TW_OK;
            edge_tw_metrics *m = st.code == TW_OK ? app_metrics(c) : NULL;
            if (m)
                edge_metric_inc1(m->orders, o->status);
            if (recorded)
                count_rejections(c, d);
        } else {
            store_tx_rollback(conn);
        }
        if (st.code == TW_ALREADY_EXISTS) {
            /* A retry, or a concurrent retry of the same client_order_id that won: return its
             * order, which that call sent (sending it here too would place it twice). */
            rc = store_order_get_by_coid(conn, uid, in.coid, o);
            st = svc_store_status(c, rc, "order");
            break;
        }
        if (!(st.code == TW_UNAVAILABLE && rc == STORE_BUSY && attempt < 3))
            break;
    }
    if (st.code != TW_OK && !recorded) {
        admit_done(ad);
        return submitted_before(c, conn, uid, in.coid, st, resp);
    }

    /* 3. Send what this call admitted, outside the transaction. */
    bool answered = true; /* o is the order as last committed */
    if (recorded && strcmp(o->status, ORD_PENDING_SUBMIT) == 0)
        answered = send_answered(c, t, conn, uid, o, version, ad->bc);
    admit_done(ad);
    if (!answered)
        return load_order(c, conn, uid, o->id, &resp->order);
    return (resp->order = orders_to_wire(c, o)) ? tw_ok()
                                                : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
}

tw_status orders_dry_run(tw_call *c, const Tradewink__V1__SubmitOrderRequest *req, risk_decision *d)
{
    srv_app *app = tw_call_app(c);
    trading *t = app->trading;
    store_conn *conn;
    order_in in;
    tw_status st = parse_order(tw_call_arena(c), req, &in);
    if (st.code != TW_OK)
        return st;
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    int64_t uid = svc_user_id(c);
    admission *ad = tw_arena_zalloc(tw_call_arena(c), sizeof(*ad));
    if (!ad)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    if ((st = admit_prepare(c, t, conn, uid, &in, NULL, false, ad)).code != TW_OK)
        return st;
    admit_done(ad); /* a dry run sends nothing */
    /* A read: no transaction, nothing persisted (a dry run changes no state). */
    risk_intent ri;
    trading_intent(&ri, in.symbol, in.side, in.qty, in.limit);
    return admit_decide(c, t, conn, uid, ad, &ri, 0, false, d);
}

/* Inside the user's transaction: the confirmation window of o has passed. The expiry is
 * recorded (and committed); the confirmation itself is refused. */
static tw_status expire_pending(tw_call *c, store_conn *conn, int64_t uid, const char *order_id,
                                store_order *o)
{
    snprintf(o->status, sizeof(o->status), ORD_EXPIRED);
    store_rc rc = store_order_update(conn, uid, o->id, o);
    /* The window ended, not the caller: the expiry is the system's, as the reconciler's is. */
    audit_entry e = {.user_id = uid,
                     .actor = "system",
                     .actor_id = "system",
                     .action = "ORDER_EXPIRE",
                     .object_id = order_id,
                     .outcome = "SUCCESS",
                     .details = svc_traced_details(c, NULL)};
    tw_status st = rc != STORE_OK ? svc_store_status(c, rc, "order")
                   : audit_append(conn, &e, svc_now_us(c), NULL) == STORE_OK
                       ? tw_ok()
                       : tw_err(TW_UNAVAILABLE, "audit trail unavailable, change not applied");
    if (st.code != TW_OK)
        return st;
    rc = store_tx_commit(conn);
    return rc == STORE_OK ? tw_err(TW_FAILED_PRECONDITION, "the confirmation window has passed")
                          : svc_store_status(c, rc, "order");
}

tw_status orders_confirm(tw_call *c, const Tradewink__V1__ConfirmOrderRequest *req,
                         Tradewink__V1__ConfirmOrderResponse *resp)
{
    srv_app *app = tw_call_app(c);
    trading *t = app->trading;
    store_conn *conn;
    tw_status st;
    int64_t id = svc_parse_id(req->order_id);
    if (!id)
        return tw_err(TW_INVALID_ARGUMENT, "order_id: not an order id");
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    int64_t uid = svc_user_id(c);
    tw_arena *a = tw_call_arena(c);
    store_order *o = tw_arena_zalloc(a, sizeof(*o));
    admission *ad = tw_arena_zalloc(a, sizeof(*ad));
    risk_decision *d = tw_arena_zalloc(a, sizeof(*d));
    if (!o || !ad || !d)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    store_rc rc = store_order_get(conn, uid, id, o);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "order");
    if (strcmp(o->status, ORD_PENDING_CONFIRMATION) != 0)
        return tw_err(TW_FAILED_PRECONDITION, "order is not waiting for confirmation");
    if ((st = admit_prepare(c, t, conn, uid, NULL, o, false, ad)).code != TW_OK)
        return st;
    if ((rc = store_tx_begin_user(conn, uid)) != STORE_OK) {
        admit_done(ad);
        return svc_store_status(c, rc, "user");
    }
    /* Re-read under the lock: confirm once, and check expiry and risk again now. */
    bool send = false;
    int64_t version = 0; /* the user's version the confirmation's commit set */
    rc = store_order_get(conn, uid, id, o);
    if (rc != STORE_OK) {
        st = svc_store_status(c, rc, "order");
    } else if (strcmp(o->status, ORD_PENDING_CONFIRMATION) != 0) {
        st = tw_err(TW_FAILED_PRECONDITION, "order is not waiting for confirmation");
    } else if (o->confirm_by_us && o->confirm_by_us / 1000 < trading_now_ms(t)) {
        st = expire_pending(c, conn, uid, req->order_id, o);
    } else {
        risk_intent ri;
        trading_intent(&ri, o->symbol, o->side, o->qty, o->limit_price);
        st = admit_decide(c, t, conn, uid, ad, &ri, id, true, d);
        if (st.code == TW_OK && !d->allowed) {
            reject_order(o, d);
        } else if (st.code == TW_OK) {
            snprintf(o->status, sizeof(o->status), ORD_PENDING_SUBMIT);
            send = true;
        }
        if (st.code == TW_OK && (rc = store_order_update(conn, uid, id, o)) != STORE_OK)
            st = svc_store_status(c, rc, "order");
        if (st.code == TW_OK)
            st = svc_audit(c, conn, uid, send ? "ORDER_CONFIRM" : "ORDER_REJECT", req->order_id,
                           send ? "SUCCESS" : "DENIED", NULL);
        if (st.code == TW_OK) {
            version = store_tx_version(conn);
            st = svc_store_status(c, store_tx_commit(conn), "order");
        }
        if (st.code == TW_OK)
            count_rejections(c, d);
    }
    if (st.code != TW_OK)
        store_tx_rollback(conn);
    bool answered = true; /* o is the order as last committed */
    if (st.code == TW_OK && send)
        answered = send_answered(c, t, conn, uid, o, version, ad->bc);
    admit_done(ad);
    if (st.code != TW_OK)
        return st;
    if (!answered)
        return load_order(c, conn, uid, id, &resp->order);
    return (resp->order = orders_to_wire(c, o)) ? tw_ok()
                                                : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
}

/*
 * Cancels o at its broker: read it first (what the broker says is applied, replacements
 * followed), then DELETE the broker order we track, then read it again and apply that. A cancel
 * the broker refuses (Alpaca 422: not cancelable) usually lost a race with a fill: the re-read
 * applies the fill through the one report path and the call returns the order as it now is
 * (FILLED). Only an order that is still open after a refusal is an error, and it carries the
 * broker's reason. Every fill goes through trading_apply_report (by cumulative quantity).
 */
static tw_status cancel_at_broker(tw_call *c, trading *t, brk_conn *bc, int64_t uid,
                                  const store_order *o)
{
    brk_order r;
    brk_err err = {0};
    tw_status st = tw_ok();
    brk_rc brc = trading_sync_order(t, bc, uid, o->id, o->broker_order_id, "user", &r, NULL);
    if (brc == BRK_NOT_FOUND && strcmp(o->status, ORD_PENDING_SUBMIT) == 0) {
        /* The broker never got it: nothing to cancel there, close it here. */
        memset(&r, 0, sizeof(r));
        r.status = BRK_ORDER_CANCELED;
        trading_apply_report(t, uid, o->id, &r, "user");
        return tw_ok();
    }
    if (brc != BRK_OK)
        return tw_err(TW_UNAVAILABLE, "broker unavailable, retry later");
    if (brk_order_status_is_terminal(r.status))
        return tw_ok(); /* already over at the broker; applied above */
    brk_rc cancel_rc = brk_cancel(bc, r.broker_order_id, &err);
    if (cancel_rc == BRK_OK || cancel_rc == BRK_REJECTED || cancel_rc == BRK_NOT_FOUND) {
        /* Whatever the answer, the broker's order now says what happened. */
        brc = trading_sync_order(t, bc, uid, o->id, r.broker_order_id, "user", &r, NULL);
        if (brc != BRK_OK)
            st = tw_err(TW_UNAVAILABLE, "broker unavailable, retry later");
        else if (cancel_rc != BRK_OK && !brk_order_status_is_terminal(r.status)) {
            char *m = tw_arena_printf(tw_call_arena(c), "the broker refused the cancel: %s",
                                      err.message ? err.message : brk_rc_name(cancel_rc));
            st = tw_err(TW_FAILED_PRECONDITION, m ? m : "the broker refused the cancel");
        }
    } else {
        tw_logf(TW_LOG_WARN, "broker_cancel", "order %lld: %s: %s", (long long)o->id,
                brk_rc_name(cancel_rc), err.message ? err.message : "");
        st = tw_err(TW_UNAVAILABLE, cancel_rc == BRK_RATE_LIMITED
                                        ? "broker request limit reached, retry the cancel shortly"
                                        : "broker unavailable, retry later");
    }
    brk_err_clear(&err);
    return st;
}

/* Cancels open order o: locally when it was never sent, else at its broker. */
static tw_status cancel_order(tw_call *c, trading *t, store_conn *conn, int64_t uid,
                              const store_order *o)
{
    store_rc rc;
    tw_status st;
    if (strcmp(o->status, ORD_PENDING_CONFIRMATION) == 0) {
        /* Never sent: cancel locally. */
        brk_order r;
        memset(&r, 0, sizeof(r));
        r.status = BRK_ORDER_CANCELED;
        r.filled_qty = o->filled_qty;
        r.filled_avg_price = o->avg_fill_price;
        rc = trading_apply_report(t, uid, o->id, &r, "user");
        return rc == STORE_OK ? tw_ok() : svc_store_status(c, rc, "order");
    }
    store_broker_key key;
    if (o->broker_key_id && (rc = store_key_get(conn, uid, o->broker_key_id, &key)) != STORE_OK)
        return svc_store_status(c, rc, "broker key");
    brk_conn *bc = NULL;
    if ((st = trading_broker(t, conn, uid, o->broker_key_id ? &key : NULL, svc_traceparent(c), &bc))
            .code != TW_OK)
        return st;
    st = cancel_at_broker(c, t, bc, uid, o);
    brk_conn_destroy(bc);
    return st;
}

tw_status orders_cancel(tw_call *c, const Tradewink__V1__CancelOrderRequest *req,
                        Tradewink__V1__CancelOrderResponse *resp)
{
    srv_app *app = tw_call_app(c);
    trading *t = app->trading;
    store_conn *conn;
    tw_status st;
    int64_t id = svc_parse_id(req->order_id);
    if (!id)
        return tw_err(TW_INVALID_ARGUMENT, "order_id: not an order id");
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    int64_t uid = svc_user_id(c);
    store_order o;
    store_rc rc = store_order_get(conn, uid, id, &o);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "order");
    if (!trading_status_open(o.status))
        return tw_err(TW_FAILED_PRECONDITION, "order is already final");
    /* The cancel is the caller's, whichever report closes the order and whenever: the sim's
     * event or a stream may land before this call's own read, Alpaca's pending_cancel ends
     * after the call, maybe on another replica. */
    const tw_principal *p = tw_call_principal(c);
    const tw_trace *tr = tw_call_trace(c);
    store_canceler by;
    memset(&by, 0, sizeof(by));
    snprintf(by.actor, sizeof(by.actor), "%s", p->role == TW_ROLE_ADMIN ? "admin" : "user");
    snprintf(by.actor_id, sizeof(by.actor_id), "%s", p->subject ? p->subject : "");
    snprintf(by.trace_id, sizeof(by.trace_id), "%s", tr->trace_id);
    snprintf(by.span_id, sizeof(by.span_id), "%s", tr->span_id);
    if ((st = trading_cancel_request(t, conn, uid, id, &by)).code != TW_OK)
        return st;
    st = cancel_order(c, t, conn, uid, &o);
    if (st.code != TW_OK)
        return st;
    wire_order *w = NULL;
    if ((st = load_order(c, conn, uid, id, &w)).code != TW_OK)
        return st;
    resp->order = w;
    return tw_ok();
}

tw_status orders_get(tw_call *c, const Tradewink__V1__GetOrderRequest *req,
                     Tradewink__V1__GetOrderResponse *resp)
{
    store_conn *conn;
    tw_status st;
    int64_t id = svc_parse_id(req->order_id);
    if (!id)
        return tw_err(TW_INVALID_ARGUMENT, "order_id: not an order id");
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    return load_order(c, conn, svc_user_id(c), id, &resp->order);
}

tw_status orders_list(tw_call *c, const Tradewink__V1__ListOrdersRequest *req,
                      Tradewink__V1__ListOrdersResponse *resp)
{
    store_conn *conn;
    tw_status st;
    if (req->page_size < 0)
        return tw_err(TW_INVALID_ARGUMENT, "page_size: must not be negative");
    size_t limit = req->page_size == 0
                       ? PAGE_DEFAULT
                       : (req->page_size > PAGE_MAX ? PAGE_MAX : (size_t)req->page_size);
    int64_t before = 0;
    if (*req->page_token && (before = svc_parse_id(req->page_token)) == 0)
        return tw_err(TW_INVALID_ARGUMENT, "page_token: not a token from a previous page");
    char symbol[RISK_SYMBOL_MAX] = "";
    if (*req->symbol && !normal_symbol(req->symbol, symbol))
        return tw_err(TW_INVALID_ARGUMENT, "symbol: 1..15 characters of A-Z 0-9 . / -");
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    tw_arena *a = tw_call_arena(c);
    resp->orders = tw_arena_alloc(a, limit * sizeof(*resp->orders));
    if (!resp->orders)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    int64_t after_us = req->created_after ? req->created_after->seconds * 1000000 : 0;
    int64_t before_us = req->created_before ? req->created_before->seconds * 1000000 : 0;
    /* Newest first, filtered in pages of the store's order list. */
    for (;;) {
        store_order *ords = NULL;
        size_t n = 0;
        store_rc rc = store_order_list(conn, svc_user_id(c), NULL, before, 200, &ords, &n);
        if (rc != STORE_OK)
            return svc_store_status(c, rc, "orders");
        tw_arena_defer(a, free, ords);
        for (size_t i = 0; i < n; i++) {
            const store_order *o = &ords[i];
            before = o->id;
            if (*symbol && strcmp(o->symbol, symbol) != 0)
                continue;
            if ((after_us && o->created_at_us < after_us) ||
                (before_us && o->created_at_us >= before_us))
                continue;
            if (req->n_statuses) {
                int want = enum_value(&tradewink__v1__order_status__descriptor, "ORDER_STATUS_",
                                      o->status);
                size_t k;
                for (k = 0; k < req->n_statuses && (int)req->statuses[k] != want; k++)
                    ;
                if (k == req->n_statuses)
                    continue;
            }
            if (resp->n_orders == limit) {
                resp->next_page_token = svc_id_str(c, ords[i - 1].id);
                return tw_ok();
            }
            if (!(resp->orders[resp->n_orders++] = orders_to_wire(c, o)))
                return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
            before = o->id;
        }
        if (n < 200)
            return tw_ok();
    }
}

tw_status orders_stream(tw_call *c, const Tradewink__V1__StreamOrderUpdatesRequest *req,
                        tw_stream *s)
{
    srv_app *app = tw_call_app(c);
    return audit_feed_subscribe(app->audit_feed, s, app, svc_user_id(c),
                                (int64_t)req->from_sequence, AUDIT_FEED_ORDERS);
}

tw_status orders_positions(tw_call *c, const Tradewink__V1__ListPositionsRequest *req,
                           Tradewink__V1__ListPositionsResponse *resp)
{
    srv_app *app = tw_call_app(c);
    store_conn *conn;
    tw_status st;
    if (req->page_size < 0)
        return tw_err(TW_INVALID_ARGUMENT, "page_size: must not be negative");
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    store_position *pos = NULL;
    size_t n = 0;
    store_rc rc = store_position_list(conn, svc_user_id(c), &pos, &n);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "positions");
    tw_arena *a = tw_call_arena(c);
    tw_arena_defer(a, free, pos);
    store_settings set;
    if ((rc = store_settings_get(conn, svc_user_id(c), &set)) != STORE_OK)
        return svc_store_status(c, rc, "account settings");
    resp->positions = tw_arena_alloc(a, (n ? n : 1) * sizeof(*resp->positions));
    if (!resp->positions)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    /* Marks: a user trading through a real broker gets that broker's current prices (one
     * positions call, not one per symbol); otherwise the sim quotes. Best effort either way. */
    brk_position *marks = NULL;
    size_t nmarks = 0;
    store_broker_key *key = tw_arena_zalloc(a, sizeof(*key));
    if (!key)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    if (n && set.default_broker_key_id &&
        store_key_get(conn, svc_user_id(c), set.default_broker_key_id, key) == STORE_OK &&
        strcmp(key->broker, "sim") != 0) {
        trading_broker_marks(app->trading, conn, svc_user_id(c), key, svc_traceparent(c), &marks,
                             &nmarks);
        tw_arena_defer(a, free, marks);
    }
    for (size_t i = 0; i < n; i++) {
        if (pos[i].qty == 0 && pos[i].realized_pnl == 0)
            continue;
        Tradewink__V1__Position *p = tw_arena_alloc(a, sizeof(*p));
        if (!p)
            return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
        tradewink__v1__position__init(p);
        p->symbol = tw_arena_strdup(a, pos[i].symbol);
        p->qty = fmt_qty(c, pos[i].qty);
        p->avg_cost = fmt_money(c, pos[i].avg_cost);
        p->realized_pl = fmt_money(c, pos[i].realized_pnl);
        risk_price last = 0;
        for (size_t m = 0; m < nmarks && !last; m++)
            if (brk_symbol_same(marks[m].symbol, pos[i].symbol))
                last = marks[m].current_price;
        if (!last && !marks)
            last = trading_ref_price(app->trading, pos[i].symbol);
        if (last > 0) {
            risk_money mv = 0, cost = 0;
            risk_notional(pos[i].qty < 0 ? -pos[i].qty : pos[i].qty, last, RISK_ROUND_HALF_AWAY,
                          &mv);
            risk_notional(pos[i].qty < 0 ? -pos[i].qty : pos[i].qty, pos[i].avg_cost,
                          RISK_ROUND_HALF_AWAY, &cost);
            if (pos[i].qty < 0) {
                mv = -mv;
                cost = -cost;
            }
            p->current_price = fmt_money(c, last);
            p->market_value = fmt_money(c, mv);
            p->unrealized_pl = fmt_money(c, mv - cost);
        }
        p->trading_mode = set.trading_mode == STORE_MODE_LIVE
                              ? TRADEWINK__V1__TRADING_MODE__TRADING_MODE_LIVE
                              : TRADEWINK__V1__TRADING_MODE__TRADING_MODE_PAPER;
        p->broker = (char *)"";
        resp->positions[resp->n_positions++] = p;
    }
    return tw_ok();
}

static tw_status settings_to_wire(tw_call *c, int64_t uid, const store_settings *s,
                                  Tradewink__V1__AccountSettings **out)
{
    Tradewink__V1__AccountSettings *w = tw_arena_alloc(tw_call_arena(c), sizeof(*w));
    if (!w)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    tradewink__v1__account_settings__init(w);
    w->user_id = svc_id_str(c, uid);
    w->trading_mode = s->trading_mode == STORE_MODE_LIVE
                          ? TRADEWINK__V1__TRADING_MODE__TRADING_MODE_LIVE
                          : TRADEWINK__V1__TRADING_MODE__TRADING_MODE_PAPER;
    w->autonomous_mode = s->autonomous;
    w->default_broker_key_id =
        s->default_broker_key_id ? svc_id_str(c, s->default_broker_key_id) : (char *)"";
    *out = w;
    return tw_ok();
}

tw_status orders_get_settings(tw_call *c, const Tradewink__V1__GetAccountSettingsRequest *req,
                              Tradewink__V1__GetAccountSettingsResponse *resp)
{
    (void)req;
    trading *t = ((srv_app *)tw_call_app(c))->trading;
    int64_t uid = svc_user_id(c);
    store_conn *conn;
    tw_status st;
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    /* Kept for the reads after this one, with the default key's kind (what GetState needs). */
    ledger_reads r;
    bool note = trading_reads_begin(conn, uid, &r);
    store_rc rc = store_settings_get(conn, uid, &r.set);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "account settings");
    store_broker_key key;
    r.key_sim = true;
    if (r.set.default_broker_key_id) {
        rc = store_key_get(conn, uid, r.set.default_broker_key_id, &key);
        if (rc == STORE_OK) {
            r.key_id = key.id;
            r.key_sim = strcmp(key.broker, "sim") == 0;
        } else if (rc != STORE_NOT_FOUND) {
            note = false;
        }
    }
    if (note)
        trading_reads_note(t, uid, &r);
    trading_count_read(t, false);
    return settings_to_wire(c, uid, &r.set, &resp->settings);
}

/* Inline: the settings a fresh read or this process's own commit left (trading.h). */
tw_status orders_get_settings_fast(tw_call *c, const Tradewink__V1__GetAccountSettingsRequest *req,
                                   Tradewink__V1__GetAccountSettingsResponse *resp)
{
    (void)req;
    trading *t = ((srv_app *)tw_call_app(c))->trading;
    ledger_reads r;
    if (trading_reads_cached(t, svc_user_id(c), &r)) {
        trading_count_read(t, true);
        return settings_to_wire(c, svc_user_id(c), &r.set, &resp->settings);
    }
    tw_call_defer(c);
    return tw_ok();
}

tw_status orders_update_settings(tw_call *c, const Tradewink__V1__UpdateAccountSettingsRequest *req,
                                 Tradewink__V1__UpdateAccountSettingsResponse *resp)
{
    store_conn *conn;
    tw_status st;
    int64_t uid = svc_user_id(c);
    if (req->trading_mode != TRADEWINK__V1__TRADING_MODE__TRADING_MODE_UNSPECIFIED &&
        req->trading_mode != TRADEWINK__V1__TRADING_MODE__TRADING_MODE_PAPER &&
        req->trading_mode != TRADEWINK__V1__TRADING_MODE__TRADING_MODE_LIVE)
        return tw_err(TW_INVALID_ARGUMENT, "trading_mode: unknown value");
    int64_t new_key = 0;
    if (req->default_broker_key_id && *req->default_broker_key_id->value &&
        (new_key = svc_parse_id(req->default_broker_key_id->value)) == 0)
        return tw_err(TW_INVALID_ARGUMENT, "default_broker_key_id: not a key id");
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    store_rc rc = store_tx_begin_user(conn, uid);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "user");
    store_settings old, s;
    rc = store_settings_get(conn, uid, &old);
    if (rc != STORE_OK) {
        store_tx_rollback(conn);
        return svc_store_status(c, rc, "account settings");
    }
    s = old;
    if (req->trading_mode == TRADEWINK__V1__TRADING_MODE__TRADING_MODE_LIVE)
        s.trading_mode = STORE_MODE_LIVE;
    else if (req->trading_mode == TRADEWINK__V1__TRADING_MODE__TRADING_MODE_PAPER)
        s.trading_mode = STORE_MODE_PAPER;
    if (req->autonomous_mode)
        s.autonomous = req->autonomous_mode->value;
    if (req->default_broker_key_id)
        s.default_broker_key_id = new_key;
    st = tw_ok();
    if (s.trading_mode == STORE_MODE_LIVE && old.trading_mode != STORE_MODE_LIVE) {
        /* Real money: an explicit confirmation and a stored live key of this user. */
        store_broker_key *keys = NULL;
        size_t n = 0, live = 0;
        if (!req->confirm_live)
            st = tw_err(TW_FAILED_PRECONDITION, "switching to live trading needs confirm_live");
        else if ((rc = store_key_list(conn, uid, &keys, &n)) != STORE_OK)
            st = svc_store_status(c, rc, "broker keys");
        for (size_t i = 0; i < n; i++)
            live += strcmp(keys[i].environment, "live") == 0;
        if (keys) {
            memset(keys, 0, n * sizeof(*keys));
            free(keys);
        }
        if (st.code == TW_OK && live == 0)
            st = tw_err(TW_FAILED_PRECONDITION, "live trading needs a stored live broker key");
    }
    if (st.code == TW_OK && (rc = store_settings_update(conn, uid, &s)) != STORE_OK)
        st = svc_store_status(c, rc, "default_broker_key_id");
    if (st.code == TW_OK && s.trading_mode != old.trading_mode)
        st = svc_audit(c, conn, uid, "MODE_CHANGE", "", "SUCCESS",
                       s.trading_mode == STORE_MODE_LIVE ? "{\"mode\":\"live\"}"
                                                         : "{\"mode\":\"paper\"}");
    if (st.code == TW_OK && s.autonomous != old.autonomous)
        st = svc_audit(c, conn, uid, "AUTONOMOUS_CHANGE", "", "SUCCESS",
                       s.autonomous ? "{\"autonomous\":true}" : "{\"autonomous\":false}");
    if (st.code == TW_OK)
        st = svc_store_status(c, store_tx_commit(conn), "account settings");
    else
        store_tx_rollback(conn);
    if (st.code != TW_OK)
        return st;
    return settings_to_wire(c, uid, &s, &resp->settings);
}
