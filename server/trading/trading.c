/*
 * trading: snapshot building, broker resolution and applying broker reports (see trading.h).
 *
 * Invariants:
 *  - Risk counts come from our own records (orders, fills, day_trades), never a broker counter.
 *  - Every input that describes a period is read for the whole period, bounded by time, never
 *    as "the N most recent orders": today's fills (since the trading day's start), the PDT
 *    history (since the window's first session), the rate and duplicate windows (orders created
 *    since now minus the window), and every open order. The counting itself is risk/'s.
 *  - A report is applied as a delta against what we stored (cumulative filled quantity), so
 *    repeated or reordered reports never double-count; an order's status only moves forward.
 *  - Every state change and its audit event share one transaction on the user's lock.
 */
#include "core/clock.h"
#include "trading.h"
#include "book.h"
#include "position.h"
#include "trading_int.h"

#include <errno.h>
#include <stddef.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "core/alloc.h"
#include "core/log.h"
#include "vault/vault.h"

extern const unsigned char tw_sector_map[];
extern const size_t tw_sector_map_len;

/* Accounts the ledger holds before evicting the least recently touched: at ~1 KB each without
 * a book, 100,000 accounts are ~100 MB at most; books (a few KB for a typical trader, at most
 * ~1.5 MB for one at every engine limit) share a budget of their own. */
#define TRADING_LEDGER_ACCOUNTS 100000
#define TRADING_LEDGER_BOOK_BYTES ((size_t)256 << 20)

/* ---- small helpers ----------------------------------------------------------------------- */

int64_t trading_now_ms(trading *t)
{
    if (t->sim)
        return brk_sim_now(t->sim);
    return tw_wall_us() / 1000;
}

void trading_set_breaker_hook(trading *t, void (*fn)(void *ctx), void *ctx)
{
    t->on_trip = fn;
    t->on_trip_ctx = ctx;
}

brk_sim_engine *trading_sim(trading *t)
{
    return t->sim;
}

const risk_calendar *trading_calendar(const trading *t)
{
    return &t->cal;
}

bool trading_status_open(const char *s)
{
    order_status st;
    return order_status_parse(s, &st) && order_status_open(st);
}

static int ymd_of(risk_day d)
{
    int y, m, dd;
    risk_day_to_ymd(d, &y, &m, &dd);
    return y * 10000 + m * 100 + dd;
}

static risk_day day_of_ymd(int ymd)
{
    return risk_day_from_ymd(ymd / 10000, (ymd / 100) % 100, ymd % 100);
}

/* The trading date `now` belongs to (today on a trading day, else the next one) and the
 * bounds of its fills, exactly as the risk engine reads them. */
static risk_day trade_date(const trading *t, int64_t now_ms, int64_t *lo_ms, int64_t *hi_ms)
{
    return risk_trade_date(&t->cal, now_ms, lo_ms, hi_ms);
}

/* +1 for a buy, -1 for a sell: what a fill does to a position's quantity. */
static int side_dir(store_side side)
{
    return side == STORE_SIDE_BUY ? 1 : -1;
}

int trading_rule_of(risk_code code)
{
    switch (code) {
    case RISK_V_TRADING_HALTED:
        return 1;
    case RISK_V_DAILY_LOSS_LIMIT:
        return 2;
    case RISK_V_DRAWDOWN:
        return 3;
    case RISK_V_MAX_POSITIONS:
        return 4;
    case RISK_V_SECTOR_CONCENTRATION:
        return 5;
    case RISK_V_MAX_ORDER_NOTIONAL:
        return 6;
    case RISK_V_PRICE_COLLAR:
        return 7;
    case RISK_V_DUPLICATE_ORDER:
        return 8;
    case RISK_V_ORDER_RATE:
        return 9;
    case RISK_V_PDT:
        return 10;
    case RISK_V_NO_REFERENCE_PRICE:
        return 14;
    default:
        return 0;
    }
}

risk_price trading_ref_price(trading *t, const char *symbol)
{
    brk_quote q;
    if (t->sim && brk_sim_get_quote(t->sim, symbol, &q) == BRK_OK)
        return q.last;
    return 0;
}

/* ---- broker resolution ------------------------------------------------------------------- */

tw_status trading_open_credential(trading *t, store_conn *conn, const store_broker_key *k,
                                  vault_secret **out)
{
    store_user u;
    if (store_user_get(conn, k->user_id, &u) != STORE_OK)
        return tw_err(TW_UNAVAILABLE, "database unavailable, retry later");
    char uid[32];
    snprintf(uid, sizeof(uid), "%lld", (long long)u.id);
    vault_token_reason why;
    vault_rc vr = vault_decrypt_secret(t->vault, uid, u.salt, sizeof(u.salt), k->master_version,
                                       k->ciphertext, out, &why);
    if (vr != VAULT_OK) {
        tw_logf(TW_LOG_ERROR, "key_decrypt", "key %lld: %s (%s)", (long long)k->id,
                vault_strerror(vr), vault_token_reason_str(why));
        return vr == VAULT_ERR_BUSY
                   ? tw_err(TW_UNAVAILABLE, "key derivation busy, retry later")
                   : tw_err(TW_FAILED_PRECONDITION, "stored broker key cannot be decrypted");
    }
    return tw_ok();
}

tw_status trading_key_decrypts(trading *t, store_conn *conn, const store_broker_key *k)
{
    vault_secret *cred = NULL;
    tw_status st = trading_open_credential(t, conn, k, &cred);
    vault_secret_destroy(cred);
    return st;
}

static void brk_log(void *ctx, brk_log_level level, const char *msg)
{
    (void)ctx;
    tw_logf(level >= BRK_LOG_ERROR  ? TW_LOG_ERROR
            : level >= BRK_LOG_WARN ? TW_LOG_WARN
                                    : TW_LOG_DEBUG,
            "broker", "%s", msg);
}

tw_status trading_broker_conn(trading *t, store_conn *conn, int64_t user_id,
                              const store_broker_key *key, bool background, const char *traceparent,
                              brk_conn **out)
{
    char uid[32];
    snprintf(uid, sizeof(uid), "%lld", (long long)user_id);
    *out = NULL;
    if (!key || strcmp(key->broker, "sim") == 0) {
        if (!t->sim)
            return tw_err(TW_FAILED_PRECONDITION, "the sim broker is disabled on this server");
        if (brk_sim_connect(t->sim, uid, out) != BRK_OK)
            return tw_err(TW_INTERNAL, "sim broker unavailable");
        return tw_ok();
    }
    if (key->user_id != user_id) /* defence in depth: the store already scopes by user */
        return tw_err(TW_NOT_FOUND, "broker key not found");
    vault_secret *cred = NULL;
    tw_status st = trading_open_credential(t, conn, key, &cred);
    if (st.code != TW_OK)
        return st;
    const unsigned char *p = vault_secret_data(cred);
    size_t n = vault_secret_len(cred);
    const unsigned char *nl = memchr(p, '\n', n);
    if (!nl) {
        vault_secret_destroy(cred);
        return tw_err(TW_FAILED_PRECONDITION, "stored broker key is malformed");
    }
    brk_alpaca_config ac = {.live = strcmp(key->environment, "live") == 0,
                            .base_url = t->cfg->alpaca_base_url,
                            .interface = t->cfg->alpaca_interface,
                            .log = brk_log,
                            .data_url = t->cfg->alpaca_data_url,
                            .data_feed = t->cfg->alpaca_data_feed,
                            .requests_per_min = t->cfg->alpaca_requests_per_min,
                            .background = background,
                            .shared_budget = t->shared_budget,
                            .traceparent = traceparent};
    brk_rc rc = brk_alpaca_connect(&ac, (const char *)p, (size_t)(nl - p), nl + 1,
                                   n - (size_t)(nl - p) - 1, out, NULL);
    vault_secret_destroy(cred);
    if (rc != BRK_OK)
        return tw_err(TW_FAILED_PRECONDITION, "broker connection could not be configured");
    return tw_ok();
}

int64_t trading_latest_session(const trading *t, int64_t now_s, bool *open)
{
    risk_day d = risk_ny_day(now_s);
    if (!risk_cal_is_trading_day(&t->cal, d) || now_s < risk_cal_session_start_unix(d))
        d = risk_cal_prev_trading_day(&t->cal, d);
    int64_t start = risk_cal_session_start_unix(d);
    *open = now_s >= start && now_s < start + (6 * 3600 + 30 * 60);
    return start;
}

/* Whether a last trade at trade_ms may price a decision at now_ms (see trading.h); else why. */
static bool trade_fresh(const trading *t, const char *symbol, int64_t trade_ms, int64_t now_ms,
                        char *why, size_t why_cap)
{
    int64_t max_ms = (int64_t)t->cfg->ref_price_max_age_s * 1000;
    int64_t age_ms = now_ms - trade_ms;
    if (age_ms <= max_ms)
        return true;
    bool open = false;
    int64_t session_s = trading_latest_session(t, now_ms / 1000, &open);
    if (!brk_symbol_is_crypto(symbol) && !open && trade_ms >= session_s * 1000)
        return true;
    if (why && why_cap)
        snprintf(why, why_cap,
                 "stale reference price for %s: its last trade is %lld s old, more than the %d s "
                 "allowed%s",
                 symbol, (long long)(age_ms / 1000), t->cfg->ref_price_max_age_s,
                 brk_symbol_is_crypto(symbol) || open ? "" : " and before the latest session");
    return false;
}

tw_status trading_broker(trading *t, store_conn *conn, int64_t user_id, const store_broker_key *key,
                         const char *traceparent, brk_conn **out)
{
    return trading_broker_conn(t, conn, user_id, key, false, traceparent, out);
}

tw_status trading_ref_price_from(trading *t, brk_conn *bc, const char *symbol, risk_price *out,
                                 char *why, size_t why_cap)
{
    *out = 0;
    if (why && why_cap)
        why[0] = '\0';
    if (!bc) {
        *out = trading_ref_price(t, symbol);
        return tw_ok();
    }
    brk_err err = {0};
    int64_t trade_ms = 0;
    brk_rc rc = brk_last_trade(bc, symbol, out, &trade_ms, &err);
    tw_status st = tw_ok();
    switch (rc) {
    case BRK_OK:
        /* trade_ms 0: a live quote the backend holds (the sim), current by construction. */
        if (trade_ms > 0 && !trade_fresh(t, symbol, trade_ms, trading_now_ms(t), why, why_cap)) {
            tw_logf(TW_LOG_INFO, "ref_price", "%s: %s", brk_conn_backend(bc),
                    why && why[0] ? why : "stale last trade");
            *out = 0;
        }
        break;
    case BRK_UNSUPPORTED:
        *out = trading_ref_price(t, symbol);
        break;
    case BRK_NOT_FOUND:
    case BRK_REJECTED:
    case BRK_INVALID:
        /* The broker's market data does not know it: no reference, the risk engine decides. */
        tw_logf(TW_LOG_INFO, "ref_price", "%s: no last trade for %s (%s)", brk_conn_backend(bc),
                symbol, brk_rc_name(rc));
        *out = 0;
        break;
    default:
        /* err.message is built by the adapter from our own text and status codes: no secret. */
        tw_logf(TW_LOG_WARN, "ref_price", "%s: last trade for %s: %s: %s", brk_conn_backend(bc),
                symbol, brk_rc_name(rc), err.message ? err.message : "");
        *out = 0;
        st = tw_err(TW_UNAVAILABLE, "broker market data unavailable, retry later");
        break;
    }
    brk_err_clear(&err);
    return st;
}

void trading_broker_marks(trading *t, store_conn *conn, int64_t user_id,
                          const store_broker_key *key, const char *traceparent, brk_position **out,
                          size_t *n)
{
    *out = NULL;
    *n = 0;
    brk_conn *bc = NULL;
    if (trading_broker_conn(t, conn, user_id, key, true, traceparent, &bc).code != TW_OK)
        return;
    brk_position_list l = {0};
    brk_rc rc = brk_positions(bc, &l, NULL);
    brk_conn_destroy(bc);
    if (rc != BRK_OK) {
        tw_logf(TW_LOG_WARN, "broker_marks", "positions: %s", brk_rc_name(rc));
        return;
    }
    *out = l.items; /* a plain heap array: the caller frees it */
    *n = l.n;
}

tw_status trading_account(trading *t, store_conn *conn, int64_t user_id,
                          const store_broker_key *key, const char *traceparent, brk_account *out,
                          brk_conn **keep)
{
    brk_conn *bc = NULL;
    tw_status st = trading_broker(t, conn, user_id, key, traceparent, &bc);
    if (st.code != TW_OK)
        return st;
    if (brk_account_get(bc, out, NULL) != BRK_OK) {
        brk_conn_destroy(bc);
        return tw_err(TW_UNAVAILABLE, "broker unavailable, retry later");
    }
    if (keep)
        *keep = bc;
    else
        brk_conn_destroy(bc);
    return tw_ok();
}

void trading_intent(risk_intent *ri, const char *symbol, store_side side, risk_qty qty,
                    risk_price limit)
{
    memset(ri, 0, sizeof(*ri));
    snprintf(ri->symbol, sizeof(ri->symbol), "%.15s", symbol);
    ri->side = side == STORE_SIDE_BUY ? RISK_BUY : RISK_SELL;
    ri->type = limit ? RISK_ORDER_LIMIT : RISK_ORDER_MARKET;
    ri->qty = qty;
    ri->limit_price = limit;
}

/* ---- the snapshot ------------------------------------------------------------------------ */

static void limits_from_store(const store_risk_limits *s, risk_limits *l, bool *pdt)
{
    risk_limits_default(l);
#define OFF_IF_ZERO(v) ((v) == 0 ? RISK_OFF : (int32_t)(v))
    l->daily_loss_bps = OFF_IF_ZERO(s->daily_loss_bps);
    l->daily_loss_abs = s->daily_loss_abs == 0 ? RISK_OFF : s->daily_loss_abs;
    l->drawdown_bps = OFF_IF_ZERO(s->drawdown_bps);
    l->max_open_positions = OFF_IF_ZERO(s->max_positions);
    l->sector_max_bps = OFF_IF_ZERO(s->max_sector_bps);
    l->unknown_sector_max_bps = l->sector_max_bps;
    l->max_order_notional_bps = OFF_IF_ZERO(s->max_notional_bps);
    l->price_collar_bps = OFF_IF_ZERO(s->collar_bps);
    l->duplicate_window_ms = s->dup_window_s == 0 ? RISK_OFF : (int32_t)(s->dup_window_s * 1000);
    l->max_orders_per_window = OFF_IF_ZERO(s->max_orders_per_s);
    l->rate_window_ms = 1000;
#undef OFF_IF_ZERO
    *pdt = s->pdt_enabled;
}

static void copy_symbol(char dst[RISK_SYMBOL_MAX], const char *src)
{
    snprintf(dst, RISK_SYMBOL_MAX, "%.15s", src);
}

static risk_breaker_reason breaker_reason_of(const char *halt_reason)
{
    if (strncmp(halt_reason, "DRAWDOWN", 8) == 0)
        return RISK_BREAKER_DRAWDOWN;
    return RISK_BREAKER_DAILY_LOSS;
}

/* A mark for symbol: the decision's reference price for its own symbol, else the sim quote. */
static risk_price mark_of(trading *t, const char *symbol, const char *ref_symbol, risk_price ref)
{
    if (ref > 0 && ref_symbol && strcmp(symbol, ref_symbol) == 0)
        return ref;
    return trading_ref_price(t, symbol);
}

static const char *ref_symbol(const risk_intent *intent)
{
    return intent ? intent->symbol : NULL;
}

static risk_side side_of(store_side side)
{
    return side == STORE_SIDE_BUY ? RISK_BUY : RISK_SELL;
}

/* ---- the user's book (book.h) ------------------------------------------------------------- */

/* The window the rate and duplicate rules look back over with limits l (0: neither is on). */
static int64_t recent_window_ms(const risk_limits *l)
{
    int64_t w = 0;
    if (l->max_orders_per_window != RISK_OFF && l->rate_window_ms != RISK_OFF)
        w = l->rate_window_ms;
    if (l->duplicate_window_ms != RISK_OFF && l->duplicate_window_ms > w)
        w = l->duplicate_window_ms;
    return w;
}

static tw_status db_down(void)
{
    return tw_err(TW_UNAVAILABLE, "database unavailable, retry later");
}

/* Everything a decision reads, from the store, as of now in the open transaction (or outside
 * one for a read). A part too large to hold whole leaves the book not kept; the open orders
 * read one more than the engine takes so "at most" is told from "more". */
static tw_status book_read(trading *t, store_conn *conn, int64_t user_id, int64_t now_ms, book *b)
{
    int64_t day_lo, day_hi;
    risk_day today = trade_date(t, now_ms, &day_lo, &day_hi);
    b->trading_day = ymd_of(today);
    b->day_lo_us = day_lo * 1000;
    b->day_hi_us = day_hi * 1000;

    store_rc rc = store_risk_limits_get(conn, user_id, &b->limits);
    b->has_limits = rc == STORE_OK;
    if (rc != STORE_OK && rc != STORE_NOT_FOUND)
        return db_down();
    if (store_risk_state_get(conn, user_id, &b->state) != STORE_OK)
        return db_down();

    store_position *pos = NULL;
    size_t npos = 0;
    if (store_position_list(conn, user_id, &pos, &npos) != STORE_OK)
        return db_down();
    book_set_positions(b, pos, npos);

    store_order_brief *ords = NULL;
    size_t n = 0;
    if (store_order_open_brief_list(conn, user_id, RISK_MAX_OPEN_ORDERS + 2, &ords, &n) != STORE_OK)
        return db_down();
    book_set_open(b, ords, n);
    if (n == RISK_MAX_OPEN_ORDERS + 2)
        b->keep = false; /* there may be more than it holds */

    risk_limits lim;
    bool pdt_on = true;
    if (b->has_limits)
        limits_from_store(&b->limits, &lim, &pdt_on);
    else
        risk_limits_default(&lim);
    int64_t w = recent_window_ms(&lim);
    int64_t since = (now_ms - w) * 1000;
    ords = NULL;
    n = 0;
    if (w && store_order_brief_since(conn, user_id, since, NULL, STORE_SIDE_NONE, 0, 0,
                                     BOOK_RECENT_MAX + 1, &ords, &n) != STORE_OK)
        return db_down();
    /* Neither rule on: nothing to hold (a change of the limits reads the book again). */
    book_set_recent(b, ords, n, w ? since : INT64_MAX, w * 1000);

    store_fill *fl = NULL;
    n = 0;
    if (store_fill_list_period(conn, user_id, b->day_lo_us, b->day_hi_us, RISK_MAX_FILLS + 1, &fl,
                               &n) != STORE_OK)
        return db_down();
    book_set_fills(b, fl, n);
    if (n > RISK_MAX_FILLS)
        b->keep = false;

    risk_pdt_config pdt;
    risk_pdt_default(&pdt);
    b->dt_since_day = ymd_of(risk_pdt_window_start(&t->cal, today, pdt.window_days));
    store_day_trade *dts = NULL;
    n = 0;
    if (store_day_trade_list(conn, user_id, b->dt_since_day, &dts, &n) != STORE_OK)
        return db_down();
    book_set_day_trades(b, dts, n);
    return tw_ok();
}

/* When the user's transaction ends: a committed one whose every change the book modeled
 * leaves it exact at the transaction's version, for the next one. */
static void book_end(void *ctx, store_conn *c, bool committed)
{
    book *b = ctx;
    ledger *l = b->ledger;
    if (committed && b->keep && store_tx_writes(c) == b->modeled + store_tx_audits(c)) {
        b->has_head = store_tx_head(c, &b->head_seq, b->head_hash) || b->has_head;
        b->version = store_tx_version(c);
        ledger_book_put(l, b);
        return;
    }
    book_free(b);
}

/* The first part in which two books differ, or NULL when they hold the same state. */
static const char *book_diff(const book *x, const book *y)
{
    if (x->has_limits != y->has_limits ||
        (x->has_limits &&
         memcmp(&x->limits, &y->limits, offsetof(store_risk_limits, pdt_enabled)) != 0) ||
        (x->has_limits && x->limits.pdt_enabled != y->limits.pdt_enabled))
        return "limits";
    const store_risk_state *a = &x->state, *b = &y->state;
    if (strcmp(a->trading_state, b->trading_state) != 0 ||
        strcmp(a->halted_by, b->halted_by) != 0 || strcmp(a->halt_reason, b->halt_reason) != 0 ||
        a->breaker_until_us != b->breaker_until_us || a->sod_equity != b->sod_equity ||
        a->peak_equity != b->peak_equity || a->trading_day != b->trading_day)
        return "risk state";
    if (x->npos != y->npos)
        return "positions";
    for (size_t i = 0; i < x->npos; i++)
        if (strcmp(x->pos[i].symbol, y->pos[i].symbol) != 0 || x->pos[i].qty != y->pos[i].qty ||
            x->pos[i].avg_cost != y->pos[i].avg_cost ||
            x->pos[i].realized_pnl != y->pos[i].realized_pnl)
            return "positions";
    if (x->nopen != y->nopen)
        return "open orders";
    for (size_t i = 0; i < x->nopen; i++) {
        const store_order_brief *o = &x->open[i], *p = &y->open[i];
        if (o->id != p->id || strcmp(o->symbol, p->symbol) != 0 || o->side != p->side ||
            strcmp(o->status, p->status) != 0 || o->qty != p->qty ||
            o->limit_price != p->limit_price || o->filled_qty != p->filled_qty ||
            o->created_at_us != p->created_at_us)
            return "open orders";
    }
    /* The submissions both hold: the cached book's window may start earlier (its start moves
     * only when an order is added) or later (it held the maximum and dropped the oldest). */
    int64_t from =
        x->recent_since_us > y->recent_since_us ? x->recent_since_us : y->recent_since_us;
    size_t xi = 0, yi = 0;
    for (;;) {
        while (xi < x->nrecent && book_recent_at(x, xi)->created_at_us < from)
            xi++;
        while (yi < y->nrecent && book_recent_at(y, yi)->created_at_us < from)
            yi++;
        if (xi == x->nrecent || yi == y->nrecent)
            break;
        const book_recent *o = book_recent_at(x, xi++), *p = book_recent_at(y, yi++);
        if (o->id != p->id || o->created_at_us != p->created_at_us || o->qty != p->qty ||
            o->side != p->side || strcmp(o->symbol, p->symbol) != 0)
            return "recent orders";
    }
    if (xi != x->nrecent || yi != y->nrecent)
        return "recent orders";
    if (x->nfills != y->nfills)
        return "fills";
    for (size_t i = 0; i < x->nfills; i++)
        if (x->fills[i].order_id != y->fills[i].order_id || x->fills[i].qty != y->fills[i].qty ||
            x->fills[i].price != y->fills[i].price || x->fills[i].time_us != y->fills[i].time_us ||
            strcmp(x->fills[i].symbol, y->fills[i].symbol) != 0 ||
            x->fills[i].side != y->fills[i].side)
            return "fills";
    if (x->ndts != y->ndts)
        return "day trades";
    for (size_t i = 0; i < x->ndts; i++)
        if (x->dts[i].trading_day != y->dts[i].trading_day ||
            x->dts[i].close_order_id != y->dts[i].close_order_id ||
            strcmp(x->dts[i].symbol, y->dts[i].symbol) != 0)
            return "day trades";
    return NULL;
}

/* TW_LEDGER_VERIFY: the cached book b against the store now; the store's copy when they
 * differ (logged as ledger_drift, which tests treat as a failure). read_version: 0 inside the
 * user's lock, else the version a read found. */
static tw_status verify_book(trading *t, store_conn *conn, int64_t now_ms, int64_t read_version,
                             book **b)
{
    book *fresh = book_new((*b)->user_id);
    if (!fresh)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    tw_status st = book_read(t, conn, (*b)->user_id, now_ms, fresh);
    int64_t seq = 0;
    unsigned char hash[32];
    const char *diff = NULL;
    /* Outside the user's lock (read_version: what the read saw) the database may move on
     * while it is read again: compared only if it did not. */
    int64_t now_version = read_version;
    if (st.code == TW_OK && read_version &&
        store_user_version(conn, (*b)->user_id, &now_version) != STORE_OK)
        now_version = -1;
    if (st.code == TW_OK && now_version == read_version) {
        diff = book_diff(*b, fresh);
        /* A transaction that already appended knows a newer head than the book left: only
         * a chain this transaction has not touched is compared. */
        if (!diff && (*b)->has_head && !store_tx_head(conn, &seq, hash)) {
            /* A database that stops answering here is down, not a drift. */
            store_rc rc = store_audit_last(conn, (*b)->user_id, &seq, hash);
            if (rc != STORE_OK && rc != STORE_NOT_FOUND)
                st = db_down();
            else if (rc == STORE_NOT_FOUND || seq != (*b)->head_seq ||
                     memcmp(hash, (*b)->head_hash, sizeof(hash)) != 0)
                diff = "audit head";
        }
    }
    if (st.code != TW_OK || diff) {
        if (diff)
            tw_logf(TW_LOG_ERROR, "ledger_drift",
                    "user %lld: the cached book (version %lld) differs from the database in %s; "
                    "using the database's",
                    (long long)(*b)->user_id, (long long)(*b)->version, diff);
        book_free(*b);
        *b = st.code == TW_OK ? fresh : NULL;
        if (st.code != TW_OK)
            book_free(fresh);
        return st;
    }
    book_free(fresh);
    return tw_ok();
}

/*
 * The book of the user transaction open on conn: the one it already has, else the ledger's
 * when that is exact at the version before this transaction's (and of today), else read from
 * the store now. Outside a transaction of user_id's lock, a book read now and freed with the
 * arena a (reads only; never kept).
 */
static tw_status tx_book(trading *t, tw_arena *a, store_conn *conn, int64_t user_id, book **out)
{
    *out = NULL;
    bool locked = store_tx_user(conn) == user_id;
    if (!locked && !a)
        return tw_err(TW_INTERNAL, "a book outside the user's transaction needs an arena");
    book *b = locked ? store_tx_end_ctx(conn, book_end) : NULL;
    if (b) {
        *out = b;
        return tw_ok();
    }
    int64_t now_ms = trading_now_ms(t), version = 0, lo, hi;
    bool have_version = false;
    if (locked)
        b = ledger_book_take(t->ledger, user_id, store_tx_version(conn) - 1);
    else if ((have_version = store_user_version(conn, user_id, &version) == STORE_OK))
        b = ledger_book_copy(t->ledger, user_id, version); /* a read: the book stays */
    if (b && b->trading_day != ymd_of(trade_date(t, now_ms, &lo, &hi))) {
        book_free(b); /* a new trading day: its fills and windows are read again */
        b = NULL;
    }
    if (b && t->cfg->ledger_verify) {
        tw_status st = verify_book(t, conn, now_ms, locked ? 0 : version, &b);
        if (st.code != TW_OK)
            return st;
    }
    if (b) {
        b->modeled = 0;
        if (b->has_head && locked)
            store_tx_seed_head(conn, b->head_seq, b->head_hash);
    }
    bool read_now = !b;
    if (!b) {
        if (!(b = book_new(user_id)))
            return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
        tw_status st = book_read(t, conn, user_id, now_ms, b);
        if (st.code != TW_OK) {
            book_free(b);
            return st;
        }
        /* Read inside the transaction, it already reflects the transaction's earlier changes. */
        b->modeled = locked ? store_tx_writes(conn) - store_tx_audits(conn) : 0;
    }
    if (locked) {
        b->ledger = t->ledger;
        store_tx_on_end(conn, book_end, b);
    } else {
        /* A read's book is exact at version when the version did not move while it was read
         * (every change of a user's state moves it, under the user's lock): the ledger keeps
         * a copy, so the next decision or read of the user starts from memory. */
        int64_t after;
        book *copy;
        if (read_now && have_version && b->keep &&
            store_user_version(conn, user_id, &after) == STORE_OK && after == version &&
            (copy = book_clone(b, true))) {
            copy->version = version;
            ledger_book_put(t->ledger, copy);
        }
        b->keep = false;
        tw_arena_defer(a, (void (*)(void *))book_free, b);
    }
    *out = b;
    return tw_ok();
}

/* The book the open user transaction holds, NULL when it has none (nothing to keep exact). */
static book *held_book(store_conn *conn, int64_t user_id)
{
    return store_tx_user(conn) == user_id ? store_tx_end_ctx(conn, book_end) : NULL;
}

void trading_ledger_stats(trading *t, ledger_book_stats_t *out)
{
    ledger_book_stats(t->ledger, out);
}

void trading_order_recorded(store_conn *conn, int64_t user_id, const store_order *o)
{
    book *b = held_book(conn, user_id);
    if (b)
        book_order_added(b, o);
}

#define OPEN_ORDERS_MAX_TEXT "512"
_Static_assert(RISK_MAX_OPEN_ORDERS == 512, "OPEN_ORDERS_MAX_TEXT spells RISK_MAX_OPEN_ORDERS");

/* Every open order, oldest first (the engine simulates pending orders in creation order). */
static tw_status load_open_orders(trading *t, tw_arena *a, const book *b, const char *ref_sym,
                                  risk_price ref, int64_t exclude_order_id, bool intent_new,
                                  risk_snapshot *s)
{
    const store_order_brief *ords = b->open;
    size_t n = b->nopen;
    size_t open = 0;
    for (size_t i = 0; i < n; i++)
        open += ords[i].id != exclude_order_id && ords[i].qty > ords[i].filled_qty;
    /* A new order would make one more open order than the engine evaluates: refused before it
     * exists, so no user ever holds more open orders than a decision can see. */
    if (open > RISK_MAX_OPEN_ORDERS || (intent_new && open >= RISK_MAX_OPEN_ORDERS))
        return tw_err(TW_FAILED_PRECONDITION,
                      "open orders: " OPEN_ORDERS_MAX_TEXT
                      " are working, the most one risk decision evaluates; cancel some first");
    risk_open_order *oo = tw_arena_alloc(a, (n ? n : 1) * sizeof(*oo));
    if (!oo)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    size_t no = 0;
    for (size_t i = 0; i < n && no < RISK_MAX_OPEN_ORDERS; i++) {
        const store_order_brief *o = &ords[i];
        if (o->id == exclude_order_id || o->qty <= o->filled_qty)
            continue;
        copy_symbol(oo[no].symbol, o->symbol);
        oo[no].side = side_of(o->side);
        oo[no].qty = o->qty - o->filled_qty;
        risk_price px = o->limit_price ? o->limit_price : mark_of(t, o->symbol, ref_sym, ref);
        oo[no].price = px > 0 ? px : 1;
        oo[no].created_ms = o->created_at_us / 1000;
        oo[no].order_id = (uint64_t)o->id;
        no++;
    }
    s->open_orders = oo;
    s->n_open_orders = no;
    return tw_ok();
}

static void recent_to_engine(risk_recent_order *r, const char *symbol, risk_side side, int64_t qty,
                             int64_t created_at_us)
{
    copy_symbol(r->symbol, symbol);
    r->side = side;
    r->qty = qty;
    r->submitted_ms = created_at_us / 1000;
}

/*
 * The orders the rate and duplicate rules look at: the newest orders created within the rate
 * window and, for an intent, the most recent identical one (symbol, side, quantity) within the
 * duplicate window. Rejected orders are not submissions. The rate rule only asks whether the
 * count reaches its limit, so no more than the limit + 1 are taken (and at most what the engine
 * takes: a limit above RISK_MAX_RECENT_ORDERS - 1 per window is not told apart from that many).
 * The book answers both when it holds every submission since the window's start; past its
 * maximum it still answers the rate rule when it holds as many inside the window as the rule
 * counts, and a duplicate it does not hold is looked up in the store (one row).
 */
static tw_status load_recent_orders(tw_arena *a, store_conn *conn, const book *b, int64_t user_id,
                                    const risk_limits *lim, const risk_intent *intent,
                                    int64_t now_ms, int64_t exclude_order_id, risk_snapshot *s)
{
    size_t cap = 0, nr = 0;
    bool rate_on = lim->max_orders_per_window != RISK_OFF && lim->rate_window_ms != RISK_OFF;
    if (rate_on)
        cap = lim->max_orders_per_window < RISK_MAX_RECENT_ORDERS - 1
                  ? (size_t)lim->max_orders_per_window + 1
                  : RISK_MAX_RECENT_ORDERS - 1;
    risk_recent_order *ro = tw_arena_alloc(a, (cap + 1) * sizeof(*ro));
    int64_t *ids = tw_arena_alloc(a, (cap + 1) * sizeof(*ids)); /* ro's orders */
    if (!ro || !ids)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    store_order_brief *rows = NULL;
    size_t n = 0;
    if (rate_on) {
        int64_t since = (now_ms - lim->rate_window_ms) * 1000;
        for (size_t i = b->nrecent; i-- > 0 && nr < cap;) { /* newest first, as the store */
            const book_recent *o = book_recent_at(b, i);
            if (o->created_at_us >= since && o->id != exclude_order_id) {
                ids[nr] = o->id;
                recent_to_engine(&ro[nr++], o->symbol, side_of(o->side), o->qty, o->created_at_us);
            }
        }
        if (nr < cap && since < b->recent_since_us) { /* it may not hold them all */
            if (store_order_brief_since(conn, user_id, since, NULL, STORE_SIDE_NONE, 0,
                                        exclude_order_id, (int)cap, &rows, &n) != STORE_OK)
                return db_down();
            for (nr = 0; nr < n; nr++) {
                ids[nr] = rows[nr].id;
                recent_to_engine(&ro[nr], rows[nr].symbol, side_of(rows[nr].side), rows[nr].qty,
                                 rows[nr].created_at_us);
            }
            free(rows);
        }
    }
    size_t nrate = nr;
    if (intent && lim->duplicate_window_ms != RISK_OFF) {
        int64_t since = (now_ms - lim->duplicate_window_ms) * 1000;
        const book_recent *dup = NULL;
        for (size_t i = b->nrecent; i-- > 0 && !dup;) {
            const book_recent *o = book_recent_at(b, i);
            if (o->created_at_us >= since && o->id != exclude_order_id &&
                side_of(o->side) == intent->side && o->qty == intent->qty &&
                strcmp(o->symbol, intent->symbol) == 0)
                dup = o;
        }
        if (dup) {
            ids[nr] = dup->id;
            recent_to_engine(&ro[nr++], dup->symbol, side_of(dup->side), dup->qty,
                             dup->created_at_us);
        } else if (since < b->recent_since_us) {
            rows = NULL, n = 0;
            if (store_order_brief_since(conn, user_id, since, intent->symbol,
                                        intent->side == RISK_BUY ? STORE_SIDE_BUY : STORE_SIDE_SELL,
                                        intent->qty, exclude_order_id, 1, &rows, &n) != STORE_OK)
                return db_down();
            if (n) {
                ids[nr] = rows[0].id;
                recent_to_engine(&ro[nr++], rows[0].symbol, side_of(rows[0].side), rows[0].qty,
                                 rows[0].created_at_us);
            }
            free(rows);
        }
        for (size_t i = 0; i < nrate && nr > nrate; i++)
            if (ids[i] == ids[nrate])
                nr = nrate; /* already counted by the rate rule: once is what it is */
    }
    s->recent_orders = ro;
    s->n_recent_orders = nr;
    return tw_ok();
}

/* Every execution of the trading date [lo_ms, hi_ms), in execution order, as the engine's
 * fills (fills of one order share its id, so partial fills count once). More than the engine
 * takes is refused rather than cut: a cut day would hide the day trades the guard counts. */
static tw_status load_fills(tw_arena *a, const book *b, int64_t user_id, const risk_fill **out,
                            size_t *n_out)
{
    const store_fill *fl = b->fills;
    size_t n = b->nfills;
    *out = NULL;
    *n_out = 0;
    if (n > RISK_MAX_FILLS) {
        tw_logf(TW_LOG_ERROR, "risk_snapshot", "user %lld: more than %d executions today",
                (long long)user_id, RISK_MAX_FILLS);
        return tw_err(TW_FAILED_PRECONDITION,
                      "too many executions today for the risk checks; no new orders until the "
                      "next trading day");
    }
    risk_fill *ft = tw_arena_alloc(a, (n ? n : 1) * sizeof(*ft));
    if (!ft)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < n; i++) {
        copy_symbol(ft[i].symbol, fl[i].symbol);
        ft[i].side = side_of(fl[i].side);
        ft[i].qty = fl[i].qty;
        ft[i].price = fl[i].price > 0 ? fl[i].price : 1;
        ft[i].filled_ms = fl[i].time_us / 1000;
        ft[i].order_id = (uint64_t)fl[i].order_id;
    }
    *out = ft;
    *n_out = n;
    return tw_ok();
}

/* The view of book b (global_halt: the admin kill switch), for an intent or an assessment
 * (intent NULL: then conn is not used and may be NULL). See trading_view_load. */
static tw_status view_build(trading *t, tw_arena *a, store_conn *conn, int64_t user_id, book *b,
                            bool global_halt, const brk_account *acct, const risk_intent *intent,
                            risk_price ref, int64_t exclude_order_id, trading_view *v)
{
    int64_t now_ms = trading_now_ms(t), day_lo, day_hi;
    risk_day today = trade_date(t, now_ms, &day_lo, &day_hi);
    tw_status st;
    memset(v, 0, sizeof(*v));
    bool pdt_on = true;
    if (b->has_limits)
        limits_from_store(&b->limits, &v->limits, &pdt_on);
    else
        risk_limits_default(&v->limits);
    v->state = b->state;
    v->global_halt = global_halt;

    /* A new trading day: the day's baseline is yesterday's close (the broker's last equity)
     * or, when the broker does not say, the first equity seen today. */
    if (v->state.trading_day != ymd_of(today)) {
        v->state.trading_day = ymd_of(today);
        v->state.sod_equity = acct->last_equity > 0 ? acct->last_equity : acct->equity;
        v->state.peak_equity = acct->equity;
        v->state_changed = true;
    }
    if (acct->equity > v->state.peak_equity) {
        v->state.peak_equity = acct->equity;
        v->state_changed = true;
    }

    risk_snapshot *s = &v->snap;
    s->equity = acct->equity;
    s->sod_equity = v->state.sod_equity;
    s->peak_equity = v->state.peak_equity;
    s->prev_close_equity = v->state.sod_equity;
    s->account_type = acct->type == BRK_ACCOUNT_MARGIN ? RISK_ACCOUNT_MARGIN : RISK_ACCOUNT_CASH;
    risk_pdt_default(&s->pdt);
    s->pdt.enabled = pdt_on;
    s->sectors = t->sectors;
    s->calendar = &t->cal;
    s->ref_price = ref;

    /* Trading state: the stored base state (ACTIVE or REDUCING); every halt is a reason bit,
     * so an expired breaker clears without touching a user's own halt. */
    s->state =
        strcmp(v->state.trading_state, "REDUCING") == 0 ? RISK_STATE_REDUCING : RISK_STATE_ACTIVE;
    if (strcmp(v->state.halted_by, "user") == 0)
        s->halt_reasons |= RISK_HALT_USER;
    if (strcmp(v->state.halted_by, "breaker") == 0) {
        s->halt_reasons |= RISK_HALT_BREAKER;
        s->breaker_reason = breaker_reason_of(v->state.halt_reason);
        s->breaker_until_ms = v->state.breaker_until_us / 1000;
    }
    if (v->global_halt)
        s->halt_reasons |= RISK_HALT_ADMIN;

    /* Positions, marked at the reference or last quote (or cost when none). */
    risk_position *rp = tw_arena_alloc(a, (b->npos ? b->npos : 1) * sizeof(*rp));
    if (!rp)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < b->npos && k < RISK_MAX_POSITIONS; i++) {
        const store_position *pos = &b->pos[i];
        if (pos->qty == 0)
            continue;
        copy_symbol(rp[k].symbol, pos->symbol);
        rp[k].qty = pos->qty;
        rp[k].avg_cost = pos->avg_cost;
        risk_price last = mark_of(t, pos->symbol, ref_symbol(intent), ref);
        rp[k].last_price = last > 0 ? last : (pos->avg_cost > 0 ? pos->avg_cost : 1);
        k++;
    }
    s->positions = rp;
    s->n_positions = k;

    /* An intent that is not an order yet (SubmitOrder, CheckOrder) would add an open order; a
     * confirmation (exclude_order_id) decides an order that is already counted. */
    bool intent_new = intent && !exclude_order_id;
    if ((st = load_open_orders(t, a, b, ref_symbol(intent), ref, exclude_order_id, intent_new, s))
            .code != TW_OK)
        return st;
    /* Only the rules of an intent (rate, duplicate) read recent orders: an assessment (a mark,
     * GetState) leaves them out, which for a user past BOOK_RECENT_MAX saves a store read. */
    if (intent && (st = load_recent_orders(a, conn, b, user_id, &v->limits, intent, now_ms,
                                           exclude_order_id, s))
                          .code != TW_OK)
        return st;
    if ((st = load_fills(a, b, user_id, &s->fills_today, &s->n_fills_today)).code != TW_OK)
        return st;

    /* Day-trade history: every day trade recorded since the window's first session (the engine
     * ignores today's rows and recounts today from the fills). */
    risk_day *days = tw_arena_alloc(a, (b->ndts ? b->ndts : 1) * sizeof(*days));
    if (!days)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < b->ndts; i++)
        days[i] = day_of_ymd(b->dts[i].trading_day);
    s->day_trade_days = days;
    s->n_day_trade_days = b->ndts;
    return tw_ok();
}

tw_status trading_view_load(trading *t, tw_arena *a, store_conn *conn, int64_t user_id,
                            const brk_account *acct, const risk_intent *intent, risk_price ref,
                            int64_t exclude_order_id, trading_view *v)
{
    book *b;
    bool halted;
    tw_status st = tx_book(t, a, conn, user_id, &b);
    if (st.code != TW_OK)
        return st;
    if (store_tx_user(conn) == user_id) {
        halted = store_tx_global_halted(conn); /* read by the lock's own statement */
    } else {
        store_global_state g;
        if (store_global_get(conn, &g) != STORE_OK)
            return db_down();
        halted = g.halted;
    }
    return view_build(t, a, conn, user_id, b, halted, acct, intent, ref, exclude_order_id, v);
}

tw_status trading_cancel_request(trading *t, store_conn *conn, int64_t user_id, int64_t order_id,
                                 const store_canceler *by)
{
    store_rc rc = STORE_BUSY;
    for (int attempt = 0; attempt < 3 && rc == STORE_BUSY; attempt++) {
        store_order o;
        book *b = NULL;
        rc = store_tx_begin_user(conn, user_id);
        if (rc != STORE_OK)
            break;
        if (tx_book(t, NULL, conn, user_id, &b).code != TW_OK)
            rc = STORE_UNAVAILABLE;
        if (rc == STORE_OK)
            rc = store_order_get(conn, user_id, order_id, &o);
        if (rc == STORE_OK && !trading_status_open(o.status)) {
            store_tx_rollback(conn);
            return tw_err(TW_FAILED_PRECONDITION, "order is already final");
        }
        if (rc == STORE_OK &&
            (rc = store_order_cancel_requested(conn, user_id, order_id, by)) == STORE_OK)
            book_unheld_change(b);
        if (rc == STORE_OK)
            rc = store_tx_commit(conn);
        else
            store_tx_rollback(conn);
    }
    switch (rc) {
    case STORE_OK:
        return tw_ok();
    case STORE_NOT_FOUND:
        return tw_err(TW_NOT_FOUND, "order not found");
    case STORE_NOMEM:
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    case STORE_INVALID:
        return tw_err(TW_INTERNAL, "the cancel request could not be recorded");
    default:
        return db_down();
    }
}

/* details (a JSON object text or NULL) with trace_id and span_id first, as svc_audit writes a
 * call's own events; *out malloc'd, or NULL when trace_id is "" (details stand as they are). */
static store_rc traced_details(const char *details, const char *trace_id, const char *span_id,
                               char **out)
{
    *out = NULL;
    if (!trace_id[0])
        return STORE_OK;
    json_t *d = details ? json_loads(details, 0, NULL) : json_object();
    json_t *o = json_pack("{s:s,s:s}", "trace_id", trace_id, "span_id", span_id);
    if (!d || !o || json_object_update(o, d) != 0) {
        json_decref(d);
        json_decref(o);
        return STORE_NOMEM;
    }
    *out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(d);
    json_decref(o);
    return *out ? STORE_OK : STORE_NOMEM;
}

/* An event written for the principal who asked for it (by): their actor, and their trace first
 * in the details (an object text or NULL), as svc_audit writes a call's own events. */
static store_rc audit_for(store_conn *conn, int64_t user_id, const char *action,
                          const char *object_id, const char *outcome, const char *details,
                          int64_t now_us, const store_canceler *by)
{
    char *traced;
    store_rc rc = traced_details(details, by->trace_id, by->span_id, &traced);
    if (rc != STORE_OK)
        return rc;
    audit_entry e = {.user_id = user_id,
                     .actor = by->actor,
                     .actor_id = by->actor_id,
                     .action = action,
                     .object_id = object_id,
                     .outcome = outcome,
                     .details = traced ? traced : details};
    rc = audit_append(conn, &e, now_us, NULL);
    free(traced);
    return rc;
}

static store_rc audit_system(store_conn *conn, int64_t user_id, const char *action,
                             const char *object_id, const char *outcome, const char *details,
                             int64_t now_us, const char *actor)
{
    audit_entry e = {.user_id = user_id,
                     .actor = actor ? actor : "system",
                     .actor_id = actor ? actor : "risk",
                     .action = action,
                     .object_id = object_id,
                     .outcome = outcome,
                     .details = details};
    return audit_append(conn, &e, now_us, NULL);
}

/* An event of order o applied in the background (a fill, a broker's end or replace): the
 * system's, carrying the trace of the call that submitted o (stored with it). */
static store_rc audit_order(store_conn *conn, const store_order *o, const char *action,
                            const char *object_id, const char *details, int64_t now_us,
                            const char *actor)
{
    char *traced;
    store_rc rc = traced_details(details, o->trace_id, o->span_id, &traced);
    if (rc == STORE_OK)
        rc = audit_system(conn, o->user_id, action, object_id, "SUCCESS", traced ? traced : details,
                          now_us, actor);
    free(traced);
    return rc;
}

tw_status trading_persist_assessment(trading *t, store_conn *conn, int64_t user_id, trading_view *v,
                                     const risk_assessment *a)
{
    int64_t now_us = trading_now_ms(t) * 1000;
    bool changed = v->state_changed;
    if (a->trip_breaker) {
        const char *why = a->trip_reason == RISK_BREAKER_DRAWDOWN ? "DRAWDOWN" : "DAILY_LOSS";
        snprintf(v->state.trading_state, sizeof(v->state.trading_state), "HALTED");
        snprintf(v->state.halted_by, sizeof(v->state.halted_by), "breaker");
        snprintf(v->state.halt_reason, sizeof(v->state.halt_reason),
                 "%s: circuit breaker tripped until the next session", why);
        v->state.breaker_until_us = a->trip_until_ms * 1000;
        char details[160];
        snprintf(details, sizeof(details), "{\"rule\":\"%s\",\"until_ms\":%lld}", why,
                 (long long)a->trip_until_ms);
        if (audit_system(conn, user_id, "BREAKER_TRIP", "", "SUCCESS", details, now_us, NULL) !=
            STORE_OK)
            return tw_err(TW_UNAVAILABLE, "audit trail unavailable, change not applied");
        if (t->on_trip)
            t->on_trip(t->on_trip_ctx);
        changed = true;
    } else if (a->clear_breaker && strcmp(v->state.halted_by, "breaker") == 0) {
        snprintf(v->state.trading_state, sizeof(v->state.trading_state), "ACTIVE");
        v->state.halted_by[0] = '\0';
        v->state.halt_reason[0] = '\0';
        v->state.breaker_until_us = 0;
        changed = true;
    }
    if (changed && store_risk_state_update(conn, user_id, &v->state) != STORE_OK)
        return db_down();
    book *b = changed ? held_book(conn, user_id) : NULL;
    if (b)
        book_state_set(b, &v->state);
    v->state_changed = false;
    return tw_ok();
}

/* ---- applying broker reports --------------------------------------------------------------- */

/*
 * Our status for a broker's report. Only filled, canceled, expired and rejected end an order of
 * ours. replaced ends that broker order, not ours: the replacement (report->replaced_by) works
 * on and is followed. done_for_day may still fill the next trading day, and an unknown or
 * in-between state (pending_replace, stopped, suspended, calculated, anything new) says nothing
 * final: all of these stay open and keep being asked about.
 */
static order_status status_of_report(brk_order_status s, risk_qty filled)
{
    switch (s) {
    case BRK_ORDER_FILLED:
        return ORDER_FILLED;
    case BRK_ORDER_CANCELED:
        return ORDER_CANCELED;
    case BRK_ORDER_EXPIRED:
        return ORDER_EXPIRED;
    case BRK_ORDER_REJECTED:
        return ORDER_REJECTED;
    case BRK_ORDER_PARTIALLY_FILLED:
        return ORDER_PARTIALLY_FILLED;
    case BRK_ORDER_REPLACED:
    case BRK_ORDER_DONE_FOR_DAY:
    default:
        return filled > 0 ? ORDER_PARTIALLY_FILLED : ORDER_ACCEPTED;
    }
}

/* Today's day trades in symbol, counted by risk_day_trades from every fill of the trading date
 * and the position after them; records the ones not recorded yet, so later sessions see them as
 * history. Only symbol can have changed: the fill just applied was in it. */
static store_rc record_day_trades(trading *t, book *b, store_conn *conn, int64_t user_id,
                                  const char *symbol, int64_t now_ms)
{
    risk_fill *ft = NULL;
    risk_day_trade *made = NULL;
    size_t nf = 0, recorded = 0;
    int64_t day_lo, day_hi;
    risk_day today = trade_date(t, now_ms, &day_lo, &day_hi);
    risk_position rp;
    memset(&rp, 0, sizeof(rp));
    store_rc rc = STORE_OK;
    if (b->trading_day != ymd_of(today)) /* the clock passed midnight inside the transaction */
        return STORE_BUSY;
    if (b->nfills > RISK_MAX_FILLS) {
        tw_logf(TW_LOG_ERROR, "day_trades", "user %lld: more than %d fills today, not counted",
                (long long)user_id, RISK_MAX_FILLS);
        return STORE_INVALID; /* the snapshot refuses new orders as well */
    }
    const store_position *pos = book_position(b, symbol);
    ft = calloc(b->nfills ? b->nfills : 1, sizeof(*ft));
    made = calloc(b->nfills ? b->nfills : 1, sizeof(*made));
    if (!ft || !made) {
        rc = STORE_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < b->nfills; i++) {
        const store_fill *f = &b->fills[i];
        if (strcmp(f->symbol, symbol) != 0)
            continue;
        copy_symbol(ft[nf].symbol, f->symbol);
        ft[nf].side = side_of(f->side);
        ft[nf].qty = f->qty;
        ft[nf].price = f->price;
        ft[nf].filled_ms = f->time_us / 1000;
        ft[nf].order_id = (uint64_t)f->order_id;
        nf++;
    }
    copy_symbol(rp.symbol, symbol);
    rp.qty = pos ? pos->qty : 0;
    int32_t count = risk_day_trades(&rp, 1, ft, nf, made, nf);
    if (count < 0) {
        rc = STORE_INVALID;
        goto out;
    }
    for (size_t i = 0; i < b->ndts; i++)
        recorded += strcmp(b->dts[i].symbol, symbol) == 0 && b->dts[i].trading_day == ymd_of(today);
    /* Counts only grow as fills are appended, so the first `recorded` are already stored. */
    for (size_t i = recorded; i < (size_t)count && rc == STORE_OK; i++) {
        store_day_trade d = {.trading_day = ymd_of(today),
                             .close_order_id = (int64_t)made[i].order_id,
                             .time_us = made[i].closed_ms * 1000};
        snprintf(d.symbol, sizeof(d.symbol), "%s", symbol);
        rc = store_day_trade_insert(conn, user_id, &d);
        if (rc == STORE_OK)
            book_day_trade_added(b, &d);
    }
out:
    free(ft);
    free(made);
    return rc;
}

/* *reduced: the report closed part of a position (only then can a day trade complete or a
 * loss be realized, so only then are those recounted). */
static void note_state(ledger_order *after, const store_order *o, order_status st)
{
    after->order_id = o->id;
    after->filled_qty = o->filled_qty;
    after->status = st;
}

/* Whether report r about an order last committed as k brings nothing new (what apply_locked
 * would find: no more filled, no status move, no replacement, no reason to record). Safe
 * against a stale k: the stored order only moves forward from it. */
static bool report_known(const ledger_order *k, const brk_order *r, const char *reason)
{
    return r->filled_qty == k->filled_qty && r->status != BRK_ORDER_REPLACED &&
           !(reason && reason[0]) &&
           !order_status_may_move(k->status, status_of_report(r->status, r->filled_qty));
}

/* What trading_answer_begin asked this thread to keep (trading.h). */
static _Thread_local struct {
    int64_t user_id, order_id;
    store_order *out;
    bool got;        /* a report this thread committed left *out */
    int64_t version; /* the user's version *out is exact at; 0: not known */
} answer;

void trading_answer_begin(int64_t user_id, int64_t order_id, store_order *out, int64_t version)
{
    answer.user_id = user_id;
    answer.order_id = order_id;
    answer.out = out;
    answer.got = false;
    answer.version = version;
}

bool trading_answer_end(void)
{
    bool got = answer.out && answer.got;
    memset(&answer, 0, sizeof(answer));
    return got;
}

/* *after: the order as this transaction leaves it (for the ledger once committed); *post
 * (NULL: not wanted) the whole order. *post is also the stored order when nobody committed
 * for the user since it was (answer.version): then it is not read again. */
static store_rc apply_locked(trading *t, store_conn *conn, int64_t user_id, int64_t order_id,
                             const brk_order *r, const char *actor, const char *reason,
                             bool *reduced, ledger_order *after, store_order *post)
{
    store_order o;
    int64_t now_ms = trading_now_ms(t);
    int64_t now_us = now_ms * 1000;
    char oid[32];
    snprintf(oid, sizeof(oid), "%lld", (long long)order_id);
    store_rc rc = STORE_OK;
    if (post && answer.version && answer.version == store_tx_version(conn) - 1)
        o = *post;
    else
        rc = store_order_get(conn, user_id, order_id, &o);
    if (rc != STORE_OK)
        return rc;
    order_status cur, next = status_of_report(r->status, r->filled_qty);
    if (!order_status_parse(o.status, &cur)) {
        tw_logf(TW_LOG_ERROR, "order_report", "order %lld: stored status not known; not applied",
                (long long)order_id);
        return STORE_CORRUPT;
    }
    book *b;
    if (tx_book(t, NULL, conn, user_id, &b).code != TW_OK)
        return STORE_UNAVAILABLE;
    risk_qty delta = r->filled_qty - o.filled_qty;
    bool status_moves = order_status_may_move(cur, next);
    /* A replacement is followed only from the broker order we track (a late report about an
     * older link of the chain never moves us back), and only while ours is open. */
    bool follows = r->status == BRK_ORDER_REPLACED && r->replaced_by[0] && order_status_open(cur) &&
                   (!o.broker_order_id[0] || strcmp(o.broker_order_id, r->broker_order_id) == 0) &&
                   strcmp(r->replaced_by, r->broker_order_id) != 0;
    bool has_reason = reason && reason[0] && (status_moves || delta > 0);
    if (delta < 0)
        /* Never applied (fills only grow), but never silent either: a broker that counts less
         * than we recorded (e.g. a replacement that restarts its filled_qty) is a drift. */
        tw_logf(TW_LOG_WARN, "order_report",
                "order %lld: broker order %s reports less filled than recorded; not applied",
                (long long)order_id, r->broker_order_id);
    if (delta <= 0 && !status_moves && !follows) {
        note_state(after, &o, cur);
        if (post)
            *post = o;
        return STORE_OK; /* nothing new: a repeated or stale report */
    }
    if (delta > 0) {
        /* Price of this delta from the cumulative averages. */
        risk_price px;
        if (position_delta_price(o.filled_qty, o.avg_fill_price, r->filled_qty, r->filled_avg_price,
                                 &px) != 0) {
            tw_logf(TW_LOG_ERROR, "order_report",
                    "order %lld: broker order %s reports an average that prices its new fill at "
                    "no positive price; not applied",
                    (long long)order_id, r->broker_order_id);
            return STORE_INVALID;
        }
        /* The broker's own fill time when it said (a streamed fill, a polled filled_at). */
        int64_t fill_us = r->filled_ms > 0 ? r->filled_ms * 1000 : now_us;
        store_fill f = {.order_id = order_id, .qty = delta, .price = px, .time_us = fill_us};
        snprintf(f.broker_fill_id, sizeof(f.broker_fill_id), "cum-%lld", (long long)r->filled_qty);
        snprintf(f.symbol, sizeof(f.symbol), "%s", o.symbol);
        f.side = o.side;
        if ((rc = store_fill_insert(conn, user_id, &f, NULL)) != STORE_OK)
            return rc == STORE_CONFLICT ? STORE_OK : rc;
        book_fill_added(b, &f);
        store_position p;
        const store_position *held = book_position(b, o.symbol);
        if (held) {
            p = *held;
        } else {
            memset(&p, 0, sizeof(p));
            snprintf(p.symbol, sizeof(p.symbol), "%s", o.symbol);
        }
        if (p.qty != 0 && (p.qty > 0) != (side_dir(o.side) > 0))
            *reduced = true;
        if (position_apply_fill(&p, side_dir(o.side), delta, px) != 0)
            return STORE_INVALID;
        if ((rc = store_position_put(conn, user_id, &p)) != STORE_OK)
            return rc;
        book_position_put(b, &p);
        o.filled_qty = r->filled_qty;
        o.avg_fill_price = r->filled_avg_price;
    }
    if (status_moves) {
        snprintf(o.status, sizeof(o.status), "%s", order_status_name(next));
        cur = next;
    }
    char replaced[sizeof(o.broker_order_id)] = "";
    if (follows) {
        snprintf(replaced, sizeof(replaced), "%s", r->broker_order_id);
        snprintf(o.broker_order_id, sizeof(o.broker_order_id), "%s", r->replaced_by);
    } else if (r->broker_order_id[0] && !o.broker_order_id[0]) {
        snprintf(o.broker_order_id, sizeof(o.broker_order_id), "%s", r->broker_order_id);
    }
    if (has_reason)
        snprintf(o.status_message, sizeof(o.status_message), "%s", reason);
    if ((rc = store_order_update(conn, user_id, order_id, &o)) != STORE_OK)
        return rc;
    book_order_changed(b, &o);
    if (follows) {
        char *details = NULL;
        json_t *d =
            json_pack("{s:s,s:s}", "broker_order_id", replaced, "replaced_by", o.broker_order_id);
        details = d ? json_dumps(d, JSON_COMPACT) : NULL;
        json_decref(d);
        if (!details)
            return STORE_NOMEM;
        rc = audit_order(conn, &o, "ORDER_REPLACE", oid, details, now_us, actor);
        free(details);
        if (rc != STORE_OK)
            return rc;
    }
    if (delta > 0) {
        char details[256], q[48], p[48];
        risk_qty_format(delta, q, sizeof(q));
        risk_money_format(o.avg_fill_price, p, sizeof(p));
        snprintf(details, sizeof(details),
                 "{\"symbol\":\"%s\",\"side\":\"%s\",\"qty\":\"%s\","
                 "\"avg_price\":\"%s\"}",
                 o.symbol, store_side_name(o.side), q, p);
        rc = audit_order(conn, &o,
                         strcmp(o.status, ORD_FILLED) == 0 ? "ORDER_FILL" : "ORDER_PARTIAL_FILL",
                         oid, details, now_us, actor);
        if (rc == STORE_OK && *reduced)
            rc = record_day_trades(t, b, conn, user_id, o.symbol, now_ms);
        if (rc != STORE_OK)
            return rc;
    }
    if (status_moves && !order_status_open(cur) && cur != ORDER_FILLED) {
        const char *action = cur == ORDER_CANCELED  ? "ORDER_CANCEL"
                             : cur == ORDER_EXPIRED ? "ORDER_EXPIRE"
                                                    : "ORDER_REJECT";
        char *details = NULL;
        if (has_reason) { /* the broker's reason, already sanitised and masked by the adapter */
            json_t *d = json_pack("{s:s}", "reason", o.status_message);
            details = d ? json_dumps(d, JSON_COMPACT) : NULL;
            json_decref(d);
            if (!details)
                return STORE_NOMEM;
        }
        if (cur == ORDER_CANCELED && o.cancel_by.actor[0])
            rc = audit_for(conn, user_id, action, oid, "SUCCESS", details, now_us, &o.cancel_by);
        else
            rc = audit_order(conn, &o, action, oid, details, now_us, actor);
        free(details);
    }
    note_state(after, &o, cur);
    if (post)
        *post = o;
    return rc;
}

store_rc trading_apply_report(trading *t, int64_t user_id, int64_t order_id,
                              const brk_order *report, const char *actor)
{
    return trading_apply_report_why(t, user_id, order_id, report, actor, NULL);
}

store_rc trading_apply_report_why(trading *t, int64_t user_id, int64_t order_id,
                                  const brk_order *report, const char *actor, const char *reason)
{
    /* A report this process already applied (the sim's fill event, then the submit's answer
     * saying the same) needs no transaction. */
    ledger_order known, after = {0};
    if (ledger_known_order(t->ledger, user_id, order_id, &known) &&
        report_known(&known, report, reason))
        return STORE_OK;
    store_conn *conn;
    store_rc rc = store_conn_acquire(t->st, &conn);
    if (rc != STORE_OK)
        return rc;
    ledger_mark mark = {0};
    store_order *post =
        answer.out && answer.user_id == user_id && answer.order_id == order_id ? answer.out : NULL;
    if (post)
        answer.got = false; /* until this transaction commits */
    for (int attempt = 0; attempt < 3; attempt++) {
        bool reduced = false;
        int64_t version = 0;
        mark.at_ms = 0;
        after.order_id = 0;
        rc = store_tx_begin_user(conn, user_id);
        if (rc == STORE_OK) {
            version = store_tx_version(conn);
            rc = apply_locked(t, conn, user_id, order_id, report, actor, reason, &reduced, &after,
                              post);
        }
        /* A fill that closed part of a position realized a loss or gain: the breakers look
         * again in the same transaction (a failed look leaves the fill applied; the next mark
         * looks again). */
        if (rc == STORE_OK && reduced)
            (void)trading_mark_locked(t, conn, user_id, &mark);
        if (rc == STORE_OK)
            rc = store_tx_commit(conn);
        else
            store_tx_rollback(conn);
        if (post) /* *post is what this attempt committed, or nothing known */
            answer.version = rc == STORE_OK ? version : 0;
        if (rc != STORE_BUSY)
            break;
    }
    if (rc == STORE_OK && mark.at_ms)
        ledger_note_mark(t->ledger, user_id, &mark);
    if (rc == STORE_OK && after.order_id)
        ledger_note_order(t->ledger, user_id, &after);
    if (rc == STORE_OK && post)
        answer.got = true;
    if (rc != STORE_OK)
        tw_logf(TW_LOG_ERROR, "order_report", "order %lld: %s (the reconciler will retry)",
                (long long)order_id, store_rc_name(rc));
    store_conn_release(conn);
    return rc;
}

/* ---- the sim listener ------------------------------------------------------------------- */

int64_t trading_order_ref(const char *client_order_id)
{
    /* Our client order ids at the broker are "tw-<order id>". */
    if (strncmp(client_order_id, "tw-", 3) != 0)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(client_order_id + 3, &end, 10);
    return errno || *end || v <= 0 ? 0 : (int64_t)v;
}

static void on_sim_event(void *ctx, const brk_sim_event *ev)
{
    trading *t = ctx;
    char *end;
    errno = 0;
    long long uid = strtoll(ev->account_id, &end, 10);
    int64_t oid = trading_order_ref(ev->client_order_id);
    if (errno || *end || uid <= 0 || !oid)
        return;
    brk_order r;
    memset(&r, 0, sizeof(r));
    snprintf(r.broker_order_id, sizeof(r.broker_order_id), "%s", ev->broker_order_id);
    r.status = ev->status;
    r.filled_qty = ev->cum_qty;
    r.filled_avg_price = ev->avg_price;
    trading_apply_report(t, (int64_t)uid, oid, &r, "broker");
}

/* ---- following an order at its broker ----------------------------------------------------- */

brk_rc trading_sync_order(trading *t, brk_conn *bc, int64_t user_id, int64_t order_id,
                          const char *broker_order_id, const char *actor, brk_order *out,
                          brk_err *err)
{
    char id[BRK_ID_MAX];
    snprintf(id, sizeof(id), "%s", broker_order_id ? broker_order_id : "");
    brk_rc rc = BRK_INTERNAL;
    memset(out, 0, sizeof(*out));
    for (int hop = 0; hop <= TRADING_MAX_REPLACEMENTS; hop++) {
        rc = id[0] ? brk_get_by_broker_order_id(bc, id, out, err) : BRK_UNSUPPORTED;
        if (rc == BRK_UNSUPPORTED) {
            if (hop > 0)
                break; /* a replacement this backend cannot look up: asked again next pass */
            char coid[48];
            snprintf(coid, sizeof(coid), "tw-%lld", (long long)order_id);
            rc = brk_get_by_client_order_id(bc, coid, out, err);
        }
        if (rc != BRK_OK)
            break;
        if (trading_apply_report(t, user_id, order_id, out, actor) != STORE_OK)
            break; /* the report is asked for again by the next reconciler pass */
        if (out->status != BRK_ORDER_REPLACED || !out->replaced_by[0])
            break;
        if (hop == TRADING_MAX_REPLACEMENTS)
            tw_logf(TW_LOG_WARN, "reconcile",
                    "order %lld: more than %d replacements at once, following on the next pass",
                    (long long)order_id, TRADING_MAX_REPLACEMENTS);
        snprintf(id, sizeof(id), "%s", out->replaced_by);
    }
    return rc;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int load_sectors(trading *t, const tw_config *cfg)
{
    char err[200] = "";
    char *buf = NULL;
    size_t len = 0;
    if (cfg->sector_map_file) {
        FILE *f = fopen(cfg->sector_map_file, "rb");
        if (!f) {
            tw_logf(TW_LOG_ERROR, "start", "TW_SECTOR_MAP_FILE: cannot open %s",
                    cfg->sector_map_file);
            return -1;
        }
        buf = malloc(4 << 20);
        len = buf ? fread(buf, 1, 4 << 20, f) : 0;
        fclose(f);
    }
    int rc = risk_sectors_parse(buf ? buf : (const char *)tw_sector_map,
                                buf ? len : tw_sector_map_len, &t->sectors, err, sizeof(err));
    free(buf);
    if (rc != 0) {
        tw_logf(TW_LOG_ERROR, "start", "sector map: %s", err);
        return -1;
    }
    return 0;
}

/* The store's commit hook: this process's own commits, as they happen. */
static void on_commit(void *ctx, int64_t user_id, int64_t version)
{
    trading *t = ctx;
    if (user_id) {
        ledger_note_commit(t->ledger, user_id, version);
        return;
    }
    pthread_mutex_lock(&t->ghalt_mu);
    t->ghalt_gen++;
    t->ghalt_known = false;
    pthread_mutex_unlock(&t->ghalt_mu);
}

/* The oldest confirmation a read answered without the store may use; false: never. */
static bool reads_floor(const trading *t, int64_t *min_ms)
{
    if (t->cfg->ledger_read_max_age_ms <= 0)
        return false;
    *min_ms = ledger_now_ms() - t->cfg->ledger_read_max_age_ms;
    return true;
}

bool trading_reads_begin(store_conn *conn, int64_t user_id, ledger_reads *r)
{
    memset(r, 0, sizeof(*r));
    r->confirmed_ms = ledger_now_ms();
    return store_user_version(conn, user_id, &r->version) == STORE_OK;
}

void trading_reads_note(trading *t, int64_t user_id, const ledger_reads *r)
{
    int64_t min;
    if (reads_floor(t, &min))
        ledger_reads_put(t->ledger, user_id, r);
}

bool trading_reads_cached(trading *t, int64_t user_id, ledger_reads *out)
{
    int64_t min;
    return reads_floor(t, &min) && ledger_reads_get(t->ledger, user_id, min, out);
}

bool trading_reads_known(trading *t, int64_t user_id, ledger_reads *out)
{
    int64_t min;
    return reads_floor(t, &min) && ledger_reads_get(t->ledger, user_id, 0, out);
}

uint64_t trading_global_gen(trading *t)
{
    pthread_mutex_lock(&t->ghalt_mu);
    uint64_t g = t->ghalt_gen;
    pthread_mutex_unlock(&t->ghalt_mu);
    return g;
}

void trading_global_note(trading *t, uint64_t gen, int64_t since_ms, const store_global_state *g)
{
    pthread_mutex_lock(&t->ghalt_mu);
    if (gen == t->ghalt_gen && (!t->ghalt_known || since_ms >= t->ghalt_at_ms)) {
        t->ghalt_known = true;
        t->ghalt = *g;
        t->ghalt_at_ms = since_ms;
    }
    pthread_mutex_unlock(&t->ghalt_mu);
}

bool trading_global_cached(trading *t, store_global_state *out)
{
    int64_t min;
    if (!reads_floor(t, &min))
        return false;
    pthread_mutex_lock(&t->ghalt_mu);
    bool ok = t->ghalt_known && t->ghalt_at_ms >= min;
    if (ok)
        *out = t->ghalt;
    pthread_mutex_unlock(&t->ghalt_mu);
    return ok;
}

bool trading_view_cached(trading *t, tw_arena *a, int64_t user_id, const ledger_reads *r,
                         bool global_halt, const brk_account *acct, trading_view *v)
{
    int64_t min, lo, hi;
    if (!reads_floor(t, &min))
        return false;
    ledger_reads now;
    book *b = ledger_book_read(t->ledger, user_id, min, &now);
    if (!b)
        return false;
    /* The same reads the caller answered from (settings, key), and of today's trading day. */
    if (now.version != r->version ||
        b->trading_day != ymd_of(trade_date(t, trading_now_ms(t), &lo, &hi)) ||
        tw_arena_defer(a, (void (*)(void *))book_free, b) != 0) {
        book_free(b);
        return false;
    }
    b->keep = false;
    return view_build(t, a, NULL, user_id, b, global_halt, acct, NULL, 0, 0, v).code == TW_OK;
}

void trading_count_read(trading *t, bool from_memory)
{
    __atomic_fetch_add(from_memory ? &t->reads_memory : &t->reads_database, 1, __ATOMIC_RELAXED);
}

void trading_read_counts(trading *t, uint64_t *from_memory, uint64_t *from_database)
{
    *from_memory = __atomic_load_n(&t->reads_memory, __ATOMIC_RELAXED);
    *from_database = __atomic_load_n(&t->reads_database, __ATOMIC_RELAXED);
}

bool trading_sim_account(trading *t, int64_t user_id, brk_account *out)
{
    brk_conn *bc;
    if (trading_broker_conn(t, NULL, user_id, NULL, false, NULL, &bc).code != TW_OK)
        return false;
    bool ok = brk_account_get(bc, out, NULL) == BRK_OK;
    brk_conn_destroy(bc);
    return ok;
}

static int64_t store_clock(void *ctx)
{
    return trading_now_ms(ctx) * 1000;
}

void trading_set_shared_budget(trading *t, const brk_shared_budget *b)
{
    t->shared_budget = b;
}

int trading_create(const tw_config *cfg, store *st, struct vault *v, trading **out)
{
    trading *t = tw_calloc(1, sizeof(*t));
    *out = NULL;
    if (!t)
        return -1;
    t->cfg = cfg;
    t->st = st;
    t->vault = v;
    pthread_mutex_init(&t->rec_mu, NULL);
    pthread_cond_init(&t->rec_cv, NULL);
    pthread_mutex_init(&t->str_mu, NULL);
    pthread_mutex_init(&t->ghalt_mu, NULL);
    t->ledger = ledger_create(TRADING_LEDGER_ACCOUNTS, TRADING_LEDGER_BOOK_BYTES);
    if (!t->ledger || risk_calendar_init(&t->cal, NULL, 0) != 0 || load_sectors(t, cfg) != 0) {
        trading_destroy(t);
        return -1;
    }
    if (cfg->sim_enabled) {
        brk_sim_config sc = {.log = brk_log};
        if (brk_sim_engine_create(&sc, &t->sim) != BRK_OK) {
            tw_logf(TW_LOG_ERROR, "start", "sim broker could not start");
            trading_destroy(t);
            return -1;
        }
        brk_sim_set_fill_listener(t->sim, on_sim_event, t);
        /* Stored timestamps follow the sim clock, so order windows, today's fills and the
         * reconciler's ages are all on one clock. */
        store_set_clock(store_clock, t);
    }
    if (st)
        store_set_commit_hook(st, on_commit, t);
    *out = t;
    return 0;
}

void trading_destroy(trading *t)
{
    if (!t)
        return;
    if (t->rec_running || t->mark_running) {
        pthread_mutex_lock(&t->rec_mu);
        t->rec_stop = 1;
        pthread_cond_broadcast(&t->rec_cv);
        pthread_mutex_unlock(&t->rec_mu);
        if (t->rec_running)
            pthread_join(t->rec_thread, NULL);
        if (t->mark_running)
            pthread_join(t->mark_thread, NULL);
    }
    trading_streams_stop_all(t); /* their reports need the store and the ledger */
    if (t->sim) {
        store_set_clock(NULL, NULL);
        brk_sim_set_fill_listener(t->sim, NULL, NULL);
        brk_sim_engine_destroy(t->sim);
    }
    if (t->st)
        store_set_commit_hook(t->st, NULL, NULL);
    risk_sectors_destroy(t->sectors);
    ledger_destroy(t->ledger);
    pthread_mutex_destroy(&t->rec_mu);
    pthread_cond_destroy(&t->rec_cv);
    pthread_mutex_destroy(&t->str_mu);
    pthread_mutex_destroy(&t->ghalt_mu);
    free(t);
}
