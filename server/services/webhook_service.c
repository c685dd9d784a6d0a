/*
 * Webhook payloads, called by the ops HTTP port only after the Standard Webhooks signature,
 * timestamp window and replay checks passed on the raw bytes (server/edge/webhook.c).
 *
 * broker: an Alpaca-style trade update {"event": fill|partial_fill|canceled|rejected|expired,
 *   "order": {"client_order_id": "tw-<our id>", "filled_qty": "...", "filled_avg_price": "..."}}
 *   applied like any broker report (idempotent by cumulative quantity).
 * signal: an automation order proposal {"user_id", "client_order_id", "symbol", "side",
 *   "type", "qty", "limit_price"} placed as an AUTOMATION order for that user, so it waits for
 *   the user's confirmation unless autonomous mode is on. "side" is "buy" or "sell" and "type"
 *   "market" or "limit", exactly; anything else is refused (422) like any invalid order.
 * Return value: the HTTP status (2xx handled, 4xx refused for good, 5xx retry later).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "risk/money.h"
#include "services.h"
#include "svc.h"
#include "trading/trading.h"

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int broker_update(srv_app *app, json_t *doc)
{
    static const struct {
        const char *event;
        brk_order_status status;
    } events[] = {
        {"fill", BRK_ORDER_FILLED},       {"partial_fill", BRK_ORDER_PARTIALLY_FILLED},
        {"canceled", BRK_ORDER_CANCELED}, {"rejected", BRK_ORDER_REJECTED},
        {"expired", BRK_ORDER_EXPIRED},
    };
    const char *event = str(doc, "event");
    json_t *order = json_object_get(doc, "order");
    size_t k;
    for (k = 0; k < sizeof(events) / sizeof(events[0]); k++)
        if (strcmp(events[k].event, event) == 0)
            break;
    if (k == sizeof(events) / sizeof(events[0]) || !json_is_object(order))
        return 400;
    const char *coid = str(order, "client_order_id");
    int64_t oid = strncmp(coid, "tw-", 3) == 0 ? svc_parse_id(coid + 3) : 0;
    if (!oid)
        return 400;
    brk_order r;
    memset(&r, 0, sizeof(r));
    r.status = events[k].status;
    const char *fq = str(order, "filled_qty"), *fp = str(order, "filled_avg_price");
    if (*fq && risk_qty_parse(fq, &r.filled_qty) != RISK_DEC_OK)
        return 400;
    if (*fp && risk_price_parse(fp, &r.filled_avg_price) != RISK_DEC_OK)
        return 400;
    snprintf(r.broker_order_id, sizeof(r.broker_order_id), "%.128s", str(order, "id"));
    store_conn *conn;
    int64_t uid = 0;
    if (store_conn_acquire(app->store, &conn) != STORE_OK)
        return 503;
    store_rc rc = store_admin_order_owner(conn, oid, &uid);
    store_conn_release(conn);
    if (rc == STORE_NOT_FOUND)
        return 404;
    if (rc != STORE_OK)
        return 503;
    rc = trading_apply_report(app->trading, uid, oid, &r, "broker");
    return rc == STORE_OK ? 200 : rc == STORE_NOT_FOUND ? 404 : 503;
}

static int signal_order(srv_app *app, json_t *doc)
{
    int64_t uid = svc_parse_id(str(doc, "user_id"));
    if (!uid)
        return 400;
    tw_arena *a = tw_arena_create();
    tw_call *c = a ? tw_call_detached(a, app) : NULL;
    if (!c) {
        tw_arena_destroy(a);
        return 503;
    }
    store_conn *conn;
    store_user u;
    store_rc rc = store_conn_acquire(app->store, &conn);
    if (rc == STORE_OK) {
        rc = store_user_get(conn, uid, &u);
        store_conn_release(conn);
    }
    int status;
    if (rc == STORE_NOT_FOUND) {
        status = 404;
        goto out;
    }
    if (rc != STORE_OK) {
        status = 503;
        goto out;
    }
    tw_principal *p = tw_call_principal(c);
    p->subject = "webhook:signal";
    p->role = TW_ROLE_USER;
    p->user_id = uid;
    Tradewink__V1__SubmitOrderRequest req = TRADEWINK__V1__SUBMIT_ORDER_REQUEST__INIT;
    Tradewink__V1__SubmitOrderResponse resp = TRADEWINK__V1__SUBMIT_ORDER_RESPONSE__INIT;
    req.client_order_id = (char *)str(doc, "client_order_id");
    req.symbol = (char *)str(doc, "symbol");
    const char *side = str(doc, "side"), *type = str(doc, "type");
    req.side = strcmp(side, "buy") == 0    ? TRADEWINK__V1__ORDER_SIDE__ORDER_SIDE_BUY
               : strcmp(side, "sell") == 0 ? TRADEWINK__V1__ORDER_SIDE__ORDER_SIDE_SELL
                                           : TRADEWINK__V1__ORDER_SIDE__ORDER_SIDE_UNSPECIFIED;
    /* Exactly one of the two words: anything else ("stop", "Limit", none) is refused by the
     * order's own checks, never taken for a market order. */
    req.type = strcmp(type, "limit") == 0    ? TRADEWINK__V1__ORDER_TYPE__ORDER_TYPE_LIMIT
               : strcmp(type, "market") == 0 ? TRADEWINK__V1__ORDER_TYPE__ORDER_TYPE_MARKET
                                             : TRADEWINK__V1__ORDER_TYPE__ORDER_TYPE_UNSPECIFIED;
    req.qty = (char *)str(doc, "qty");
    req.limit_price = (char *)str(doc, "limit_price");
    req.time_in_force = TRADEWINK__V1__TIME_IN_FORCE__TIME_IN_FORCE_DAY; /* signals are DAY */
    req.origin = TRADEWINK__V1__ORDER_ORIGIN__ORDER_ORIGIN_AUTOMATION;
    tw_status st = orders_submit(c, &req, &resp);
    switch (st.code) {
    case TW_OK:
        status = 200;
        break;
    case TW_INVALID_ARGUMENT:
    case TW_FAILED_PRECONDITION:
        status = 422;
        break;
    case TW_NOT_FOUND:
        status = 404;
        break;
    default:
        status = 503;
    }
    if (st.code != TW_OK)
        tw_logf(TW_LOG_WARN, "webhook_signal", "user %lld: %s", (long long)uid, st.message);
out:
    tw_arena_destroy(a);
    return status;
}

int svc_webhook(void *ctx, const char *source, const char *webhook_id, const uint8_t *body,
                size_t len)
{
    (void)webhook_id;
    srv_app *app = ctx;
    json_error_t e;
    json_t *doc = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &e);
    int status = 400;
    if (json_is_object(doc)) {
        if (strcmp(source, "broker") == 0)
            status = broker_update(app, doc);
        else if (strcmp(source, "signal") == 0)
            status = signal_order(app, doc);
        else
            status = 404;
    }
    json_decref(doc);
    return status;
}
