/*
 * brokers/broker.c — the backend-independent half of the broker interface: argument checks
 * that run before any backend sees a call, result/status names, error and list helpers.
 *
 * Invariant: a backend function is only ever reached through a wrapper here, so it may rely
 * on validated arguments, a cleared brk_err and zeroed out-parameters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brokers/broker_int.h"

const char *brk_rc_name(brk_rc rc)
{
    switch (rc) {
    case BRK_OK:
        return "ok";
    case BRK_REJECTED:
        return "rejected";
    case BRK_NOT_FOUND:
        return "not_found";
    case BRK_UNAVAILABLE:
        return "unavailable";
    case BRK_AUTH:
        return "auth";
    case BRK_INVALID:
        return "invalid";
    case BRK_RATE_LIMITED:
        return "rate_limited";
    case BRK_INTERNAL:
        return "internal";
    case BRK_UNSUPPORTED:
        return "unsupported";
    }
    return "unknown";
}

const char *brk_order_status_name(brk_order_status s)
{
    switch (s) {
    case BRK_ORDER_OTHER:
        return "other";
    case BRK_ORDER_PENDING_NEW:
        return "pending_new";
    case BRK_ORDER_NEW:
        return "new";
    case BRK_ORDER_PARTIALLY_FILLED:
        return "partially_filled";
    case BRK_ORDER_FILLED:
        return "filled";
    case BRK_ORDER_CANCELED:
        return "canceled";
    case BRK_ORDER_EXPIRED:
        return "expired";
    case BRK_ORDER_REJECTED:
        return "rejected";
    case BRK_ORDER_PENDING_CANCEL:
        return "pending_cancel";
    case BRK_ORDER_DONE_FOR_DAY:
        return "done_for_day";
    case BRK_ORDER_REPLACED:
        return "replaced";
    }
    return "other";
}

bool brk_order_status_is_terminal(brk_order_status s)
{
    return s == BRK_ORDER_FILLED || s == BRK_ORDER_CANCELED || s == BRK_ORDER_EXPIRED ||
           s == BRK_ORDER_REJECTED || s == BRK_ORDER_REPLACED;
}

const char *brk_side_name(brk_side s)
{
    switch (s) {
    case BRK_SIDE_BUY:
        return "buy";
    case BRK_SIDE_SELL:
        return "sell";
    }
    return "?";
}

const char *brk_type_name(brk_type t)
{
    switch (t) {
    case BRK_TYPE_MARKET:
        return "market";
    case BRK_TYPE_LIMIT:
        return "limit";
    }
    return "?";
}

const char *brk_tif_name(brk_tif t)
{
    switch (t) {
    case BRK_TIF_DAY:
        return "day";
    case BRK_TIF_GTC:
        return "gtc";
    case BRK_TIF_IOC:
        return "ioc";
    case BRK_TIF_FOK:
        return "fok";
    case BRK_TIF_OPG:
        return "opg";
    case BRK_TIF_CLS:
        return "cls";
    }
    return "?";
}

void brk_err_clear(brk_err *err)
{
    if (!err)
        return;
    free(err->message);
    err->message = NULL;
    err->http_status = 0;
}

brk_rc brk_err_set(brk_err *err, brk_rc rc, int http_status, const char *fmt, ...)
{
    if (!err)
        return rc;
    free(err->message);
    err->message = NULL;
    err->http_status = http_status;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return rc;
    err->message = strdup(buf); /* NULL on OOM: the code still says what happened */
    return rc;
}

void brk_logf(brk_log_fn fn, void *ctx, brk_log_level level, const char *fmt, ...)
{
    if (!fn)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    fn(ctx, level, buf);
}

bool brk_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        if (cap)
            dst[0] = '\0';
        return false;
    }
    memcpy(dst, src, n + 1);
    return true;
}

static bool is_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

bool brk_valid_order_id(const char *s)
{
    if (!s)
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!is_alnum(ch) && ch != '.' && ch != '_' && ch != ':' && ch != '-')
            return false;
        if (n >= BRK_ID_MAX - 1)
            return false;
    }
    return n > 0;
}

bool brk_valid_symbol(const char *s)
{
    if (!s)
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!is_alnum(ch) && ch != '.' && ch != '/' && ch != '-')
            return false;
        if (n >= BRK_SYMBOL_MAX - 1)
            return false;
    }
    return n > 0;
}

risk_dec_rc brk_dec_parse_round(const char *s, int digits, int64_t *out)
{
    if (!s || !out || digits < 0 || digits > 18)
        return RISK_DEC_INVALID;
    size_t len = strlen(s);
    const char *dot = memchr(s, '.', len);
    if (!dot)
        return risk_dec_parse(s, len, digits, out);
    size_t keep = (size_t)(dot - s) + 1 + (size_t)digits;
    if (len <= keep)
        return risk_dec_parse(s, len, digits, out);
    /* Everything past the scale must still be digits; the first one decides the rounding. */
    for (size_t i = keep; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return RISK_DEC_SYNTAX;
    int64_t v = 0;
    /* With digits == 0 the kept prefix ends in "." which the grammar refuses: drop it. */
    size_t plen = digits == 0 ? keep - 1 : keep;
    risk_dec_rc rc = risk_dec_parse(s, plen, digits, &v);
    if (rc != RISK_DEC_OK)
        return rc;
    if (s[keep] >= '5') {
        bool neg = s[0] == '-';
        if (neg) {
            if (v == -INT64_MAX)
                return RISK_DEC_OVERFLOW;
            v -= 1;
        } else {
            if (v == INT64_MAX)
                return RISK_DEC_OVERFLOW;
            v += 1;
        }
    }
    *out = v;
    return RISK_DEC_OK;
}

void brk_order_list_free(brk_order_list *l)
{
    if (!l)
        return;
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void brk_position_list_free(brk_position_list *l)
{
    if (!l)
        return;
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

const char *brk_conn_backend(const brk_conn *c)
{
    return c && c->ops && c->ops->name ? c->ops->name : "?";
}

brk_rc brk_order_req_check(const brk_order_req *req, brk_err *err)
{
    if (!req)
        return brk_err_set(err, BRK_INVALID, 0, "order: missing request");
    if (!brk_valid_order_id(req->client_order_id))
        return brk_err_set(err, BRK_INVALID, 0,
                           "client_order_id: 1..128 chars of [A-Za-z0-9._:-] required");
    if (!brk_valid_symbol(req->symbol))
        return brk_err_set(err, BRK_INVALID, 0, "symbol: 1..31 chars of [A-Za-z0-9./-] required");
    if (req->side != BRK_SIDE_BUY && req->side != BRK_SIDE_SELL)
        return brk_err_set(err, BRK_INVALID, 0, "side: must be buy or sell");
    if (req->tif < BRK_TIF_DAY || req->tif > BRK_TIF_CLS)
        return brk_err_set(err, BRK_INVALID, 0, "time_in_force: unknown value");
    if (req->qty <= 0)
        return brk_err_set(err, BRK_INVALID, 0, "qty: must be > 0");
    if (req->type == BRK_TYPE_MARKET) {
        if (req->limit_price != 0)
            return brk_err_set(err, BRK_INVALID, 0, "limit_price: must be 0 for market orders");
    } else if (req->type == BRK_TYPE_LIMIT) {
        if (req->limit_price <= 0)
            return brk_err_set(err, BRK_INVALID, 0, "limit_price: must be > 0 for limit orders");
    } else {
        return brk_err_set(err, BRK_INVALID, 0, "type: must be market or limit");
    }
    return BRK_OK;
}

static bool conn_ok(const brk_conn *c)
{
    return c && c->ops;
}

brk_rc brk_submit(brk_conn *c, const brk_order_req *req, brk_order *out, brk_err *err)
{
    brk_err_clear(err);
    if (!conn_ok(c) || !out)
        return brk_err_set(err, BRK_INVALID, 0, "submit: missing conn or output");
    memset(out, 0, sizeof *out);
    brk_rc rc = brk_order_check(c, req, err);
    if (rc != BRK_OK)
        return rc;
    return c->ops->submit(c, req, out, err);
}

brk_rc brk_order_check(brk_conn *c, const brk_order_req *req, brk_err *err)
{
    brk_err_clear(err);
    if (!conn_ok(c))
        return brk_err_set(err, BRK_INVALID, 0, "check: missing conn");
    brk_rc rc = brk_order_req_check(req, err);
    if (rc != BRK_OK || !c->ops->check)
        return rc;
    return c->ops->check(c, req, err);
}

bool brk_symbol_is_crypto(const char *symbol)
{
    return symbol && strchr(symbol, '/') != NULL;
}

bool brk_symbol_same(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    if (strcmp(a, b) == 0)
        return true;
    const char *pair = brk_symbol_is_crypto(a) ? a : b, *flat = pair == a ? b : a;
    const char *slash = strchr(pair, '/');
    if (!slash || strchr(flat, '/') || strchr(slash + 1, '/'))
        return false;
    size_t base = (size_t)(slash - pair);
    return strlen(flat) == strlen(pair) - 1 && strncmp(flat, pair, base) == 0 &&
           strcmp(flat + base, slash + 1) == 0;
}

brk_rc brk_cancel(brk_conn *c, const char *broker_order_id, brk_err *err)
{
    brk_err_clear(err);
    if (!conn_ok(c))
        return brk_err_set(err, BRK_INVALID, 0, "cancel: missing conn");
    if (!brk_valid_order_id(broker_order_id))
        return brk_err_set(err, BRK_INVALID, 0, "broker_order_id: malformed");
    return c->ops->cancel(c, broker_order_id, err);
}

brk_rc brk_get_by_client_order_id(brk_conn *c, const char *client_order_id, brk_order *out,
                                  brk_err *err)
{
    brk_err_clear(err);
    if (!conn_ok(c) || !out)
        return brk_err_set(err, BRK_INVALID, 0, "get: missing conn or output");
    memset(out, 0, sizeof *out);
    if (!brk_valid_order_id(client_order_id))
        return brk_err_set(err, BRK_INVALID, 0, "client_order_id: malformed");
    return c->ops->get_by_client_order_id(c, client_order_id, out, err);
}

brk_rc brk_get_by_broker_order_id(brk_conn *c, const char *broker_order_id, brk_order *out,
                                  brk_err *err)
{
    brk_err_clear(err);
    if (!conn_ok(c) || !out)
        return brk_err_set(err, BRK_INVALID, 0, "get: missing conn or output");
    memset(out, 0, sizeof *out);
    if (!brk_valid_order_id(broker_order_id))
        return brk_err_set(err, BRK_INVALID, 0, "broker_order_id: malformed");
    if (!c->ops->get_by_broker_order_id)
        return brk_err_set(err, BRK_UNSUPPORTED, 0, "get by broker order id: not offered by %s",
                           brk_conn_backend(c));
    return c->ops->get_by_broker_order_id(c, broker_order_id, out, err);
}

brk_rc brk_list_open(brk_conn *c, brk_order_list *out, brk_err *err)
{
    brk_err_clear(err);
    if (!conn_ok(c) || !out)
        return brk_err_set(err, BRK_INVALID, 0, "list_open: missing conn or output");
    memset(out, 0, sizeof *out);
    return c->ops->list_open(c, out, err);
}

brk_rc brk_account_get(brk_conn *c, brk_account *out, brk_err *err)
{
    brk_err_clear(err);
    if (!conn_ok(c) || !out)
        return brk_err_set(err, BRK_INVALID, 0, "account: missing conn or output");
    memset(out, 0, sizeof *out);
    return c->ops->account(c, out, err);
}

brk_rc brk_positions(brk_conn *c, brk_position_list *out, brk_err *err)
{
    brk_err_clear(err);
    if (!conn_ok(c) || !out)
        return brk_err_set(err, BRK_INVALID, 0, "positions: missing conn or output");
    memset(out, 0, sizeof *out);
    return c->ops->positions(c, out, err);
}

brk_rc brk_last_price(brk_conn *c, const char *symbol, risk_price *out, brk_err *err)
{
    brk_err_clear(err);
    if (!conn_ok(c) || !out)
        return brk_err_set(err, BRK_INVALID, 0, "last_price: missing conn or output");
    *out = 0;
    if (!brk_valid_symbol(symbol))
        return brk_err_set(err, BRK_INVALID, 0, "symbol: 1..31 chars of [A-Za-z0-9./-] required");
    if (!c->ops->last_price)
        return brk_err_set(err, BRK_UNSUPPORTED, 0, "last_price: not offered by %s",
                           brk_conn_backend(c));
    brk_rc rc = c->ops->last_price(c, symbol, out, err);
    if (rc == BRK_OK && *out <= 0) {
        *out = 0;
        return brk_err_set(err, BRK_UNAVAILABLE, 0, "last_price: backend returned no price");
    }
    if (rc != BRK_OK)
        *out = 0;
    return rc;
}

brk_rc brk_last_trade(brk_conn *c, const char *symbol, risk_price *price, int64_t *time_ms,
                      brk_err *err)
{
    if (!time_ms)
        return brk_err_set(err, BRK_INVALID, 0, "last_trade: missing output");
    *time_ms = 0;
    if (!conn_ok(c) || !c->ops->last_trade)
        return brk_last_price(c, symbol, price, err);
    brk_err_clear(err);
    if (!price)
        return brk_err_set(err, BRK_INVALID, 0, "last_trade: missing output");
    *price = 0;
    if (!brk_valid_symbol(symbol))
        return brk_err_set(err, BRK_INVALID, 0, "symbol: 1..31 chars of [A-Za-z0-9./-] required");
    brk_rc rc = c->ops->last_trade(c, symbol, price, time_ms, err);
    if (rc == BRK_OK && (*price <= 0 || *time_ms <= 0))
        rc = brk_err_set(err, BRK_UNAVAILABLE, 0, "last_trade: backend returned no price or time");
    if (rc != BRK_OK) {
        *price = 0;
        *time_ms = 0;
    }
    return rc;
}

void brk_conn_destroy(brk_conn *c)
{
    if (c && c->ops && c->ops->destroy)
        c->ops->destroy(c);
}
