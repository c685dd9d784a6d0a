/*
 * brokers/broker.h — one interface to every broker Tradewink core places orders with.
 *
 * A brk_conn is one user's connection to one broker, made from that user's own credentials
 * (alpaca) or account id (sim). Backends are const vtables (struct brk_ops), one file each:
 * sim.c (the built-in deterministic paper exchange) and alpaca.c (Trading API v2 via libcurl).
 * Callers use the brk_* wrappers below, which validate arguments before dispatching.
 *
 * Money, prices and quantities are the fixed-point types of risk/money.h (money and prices
 * 1e6, quantities 1e9). No floating point anywhere.
 *
 * Results: every operation returns a brk_rc and may fill a brk_err (HTTP status and a message
 * that never contains credentials). For brk_submit the codes mean:
 *   BRK_OK           the broker has the order (out holds its id and initial status);
 *   BRK_UNAVAILABLE  OUTCOME UNKNOWN (timeout, network error, 5xx): the broker may or may not
 *                    have the order; never resend it — ask brk_get_by_client_order_id;
 *   anything else    the broker did not take the order.
 *
 * This folder never includes server/ headers. Links OpenSSL, libcurl, jansson, pthreads and
 * tw_risk only.
 */
#ifndef TW_BROKERS_BROKER_H
#define TW_BROKERS_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "risk/money.h"

/* ---- results ----------------------------------------------------------------------------- */

/* Only ever appended. */
typedef enum brk_rc {
    BRK_OK = 0,
    BRK_REJECTED = 1,     /* the broker said no (422, insufficient funds, not cancelable ...) */
    BRK_NOT_FOUND = 2,    /* no such order / account (404) */
    BRK_UNAVAILABLE = 3,  /* network error, timeout, 5xx, unparseable answer: outcome unknown */
    BRK_AUTH = 4,         /* credentials refused (401, 403) */
    BRK_INVALID = 5,      /* bad argument (checked locally before any I/O) or HTTP 400 */
    BRK_RATE_LIMITED = 6, /* 429 */
    BRK_INTERNAL = 7,     /* local failure: out of memory, libcurl setup */
    BRK_UNSUPPORTED = 8,  /* the backend has no such operation (e.g. no market data) */
} brk_rc;

/* Static lower-case name ("ok", "rejected", ...). Never NULL. */
const char *brk_rc_name(brk_rc rc);

/*
 * Details of a failed call. Zero-initialise; every operation that receives one clears it
 * first. message is heap memory owned by the brk_err (free with brk_err_clear), NULL when
 * there is nothing to say, and never contains a credential: it is built from status codes,
 * our own text and — only for BRK_REJECTED — the broker's own explanation, sanitised
 * (printable ASCII, at most 200 bytes, the conn's key id and secret overwritten with '*').
 */
typedef struct brk_err {
    int http_status; /* last HTTP status seen, 0 when there was none (sim, transport error) */
    char *message;
} brk_err;

/* Frees err->message and zeroes *err. err may be NULL. */
void brk_err_clear(brk_err *err);

/* ---- logging ----------------------------------------------------------------------------- */

typedef enum brk_log_level {
    BRK_LOG_DEBUG = 0,
    BRK_LOG_INFO = 1,
    BRK_LOG_WARN = 2,
    BRK_LOG_ERROR = 3,
} brk_log_level;

/*
 * Log sink. msg is a single line, valid only during the call, never contains a credential or
 * a request/response body. May be called from any thread that uses the conn/engine.
 */
typedef void (*brk_log_fn)(void *ctx, brk_log_level level, const char *msg);

/* ---- orders ------------------------------------------------------------------------------ */

#define BRK_ID_MAX 129    /* client/broker order ids: at most 128 chars + NUL (Alpaca's cap) */
#define BRK_SYMBOL_MAX 32 /* at most 31 chars + NUL */

typedef enum brk_side {
    BRK_SIDE_BUY = 1,
    BRK_SIDE_SELL = 2,
} brk_side;

typedef enum brk_type {
    BRK_TYPE_MARKET = 1,
    BRK_TYPE_LIMIT = 2,
} brk_type;

typedef enum brk_tif {
    BRK_TIF_DAY = 1,
    BRK_TIF_GTC = 2,
    BRK_TIF_IOC = 3,
    BRK_TIF_FOK = 4,
    BRK_TIF_OPG = 5, /* alpaca only */
    BRK_TIF_CLS = 6, /* alpaca only */
} brk_tif;

/*
 * Only ever appended. Alpaca's status strings map as noted. Only FILLED, CANCELED, EXPIRED and
 * REJECTED end an order of ours. REPLACED ends this broker order but not the trader's intent: a
 * replacement (brk_order.replaced_by) works on. DONE_FOR_DAY may still fill on the next trading
 * day, and OTHER is anything still alive or unknown: both stay open and are asked about again.
 */
typedef enum brk_order_status {
    BRK_ORDER_OTHER = 0,            /* stopped, suspended, calculated, pending_replace, unknown */
    BRK_ORDER_PENDING_NEW = 1,      /* pending_new, accepted, accepted_for_bidding */
    BRK_ORDER_NEW = 2,              /* new: working, nothing filled */
    BRK_ORDER_PARTIALLY_FILLED = 3, /* partially_filled */
    BRK_ORDER_FILLED = 4,           /* filled (terminal) */
    BRK_ORDER_CANCELED = 5,         /* canceled (terminal) */
    BRK_ORDER_EXPIRED = 6,          /* expired (terminal) */
    BRK_ORDER_REJECTED = 7,         /* rejected (terminal) */
    BRK_ORDER_PENDING_CANCEL = 8,   /* pending_cancel */
    BRK_ORDER_DONE_FOR_DAY = 9,     /* done_for_day */
    BRK_ORDER_REPLACED = 10,        /* replaced: follow replaced_by (this broker order is over) */
} brk_order_status;

/* Static names: "new", "partially_filled", ... (Alpaca's spelling). Never NULL. */
const char *brk_order_status_name(brk_order_status s);
/* True for filled, canceled, expired, rejected, replaced: THIS broker order will not change
 * again. For replaced the order of ours lives on in brk_order.replaced_by. */
bool brk_order_status_is_terminal(brk_order_status s);
const char *brk_side_name(brk_side s); /* "buy" / "sell" / "?" */
const char *brk_type_name(brk_type t); /* "market" / "limit" / "?" */
const char *brk_tif_name(brk_tif t);   /* "day", "gtc", "ioc", "fok", "opg", "cls" / "?" */

/*
 * An order to place. All pointers are borrowed for the duration of the call.
 * client_order_id: OUR order id, 1..128 chars of [A-Za-z0-9._:-]; the broker stores it so a
 *   lost answer can be recovered with brk_get_by_client_order_id.
 * symbol: 1..31 chars of [A-Za-z0-9./-].
 * qty > 0. limit_price > 0 for BRK_TYPE_LIMIT and must be 0 for BRK_TYPE_MARKET.
 */
typedef struct brk_order_req {
    const char *client_order_id;
    const char *symbol;
    brk_side side;
    brk_type type;
    brk_tif tif;
    risk_qty qty;
    risk_price limit_price;
    bool extended_hours; /* alpaca: also trade pre/post market; limit + DAY only */
} brk_order_req;

/* A broker's view of one order. Plain value, no heap pointers. */
typedef struct brk_order {
    char broker_order_id[BRK_ID_MAX];
    char client_order_id[BRK_ID_MAX];
    char symbol[BRK_SYMBOL_MAX];
    brk_side side;
    brk_type type;
    brk_tif tif;
    brk_order_status status;
    risk_qty qty;
    risk_price limit_price;      /* 0 for market orders */
    risk_qty filled_qty;         /* cumulative */
    risk_price filled_avg_price; /* 0 while nothing is filled; rounded half away to 1e-6 */
    int64_t created_ms;          /* Unix ms; 0 when the broker did not say */
    int64_t updated_ms;          /* Unix ms; 0 when the broker did not say */
    /* The broker order id that replaced this one ("" unless the broker said): set with
     * BRK_ORDER_REPLACED. The order of ours continues as that broker order. */
    char replaced_by[BRK_ID_MAX];
    /* When the latest fill this report counts happened, at the broker (Unix ms): a streamed
     * fill's own timestamp, or a polled order's filled_at. 0 when the broker did not say (the
     * receiver then uses its own clock). */
    int64_t filled_ms;
} brk_order;

/* Heap array of orders. Free with brk_order_list_free (which zeroes it). */
typedef struct brk_order_list {
    brk_order *items;
    size_t n;
} brk_order_list;
void brk_order_list_free(brk_order_list *l);

/* ---- account and positions ---------------------------------------------------------------- */

typedef enum brk_account_type {
    BRK_ACCOUNT_CASH = 1,
    BRK_ACCOUNT_MARGIN = 2, /* alpaca: multiplier >= 2 */
} brk_account_type;

typedef struct brk_account {
    brk_account_type type;
    int32_t multiplier;      /* 1 cash, 2 or 4 margin */
    risk_money cash;         /* may be negative on margin */
    risk_money equity;       /* cash + market value of positions */
    risk_money last_equity;  /* equity at the previous close (start-of-day equity) */
    risk_money buying_power; /* never negative */
    int32_t daytrade_count;  /* broker's counter (informational: risk counts our own fills) */
    bool pattern_day_trader;
    bool trading_blocked;
} brk_account;

typedef struct brk_position {
    char symbol[BRK_SYMBOL_MAX];
    risk_qty qty;               /* signed: negative = short */
    risk_price avg_entry_price; /* rounded half away */
    risk_money cost_basis;      /* signed like qty */
    risk_price current_price;   /* 0 when unknown */
    risk_money market_value;    /* signed like qty */
    risk_money unrealized_pl;
} brk_position;

/* Heap array of positions. Free with brk_position_list_free (which zeroes it). */
typedef struct brk_position_list {
    brk_position *items;
    size_t n;
} brk_position_list;
void brk_position_list_free(brk_position_list *l);

/* ---- the interface ------------------------------------------------------------------------ */

typedef struct brk_conn brk_conn;

/*
 * A backend: a const table of functions (one per broker file). The brk_* wrappers have
 * already validated arguments and cleared err (may be NULL) when these are called, and
 * out-parameters are zeroed. A backend must be safe for concurrent calls on one conn.
 */
struct brk_ops {
    const char *name; /* "sim", "alpaca" */
    brk_rc (*submit)(brk_conn *c, const brk_order_req *req, brk_order *out, brk_err *err);
    brk_rc (*cancel)(brk_conn *c, const char *broker_order_id, brk_err *err);
    brk_rc (*get_by_client_order_id)(brk_conn *c, const char *client_order_id, brk_order *out,
                                     brk_err *err);
    brk_rc (*list_open)(brk_conn *c, brk_order_list *out, brk_err *err);
    brk_rc (*account)(brk_conn *c, brk_account *out, brk_err *err);
    brk_rc (*positions)(brk_conn *c, brk_position_list *out, brk_err *err);
    void (*destroy)(brk_conn *c);
    /* Optional (NULL -> BRK_UNSUPPORTED): the last trade price of symbol, > 0. */
    brk_rc (*last_price)(brk_conn *c, const char *symbol, risk_price *out, brk_err *err);
    /* Optional (NULL -> BRK_UNSUPPORTED): one order by the broker's own id. */
    brk_rc (*get_by_broker_order_id)(brk_conn *c, const char *broker_order_id, brk_order *out,
                                     brk_err *err);
    /* Optional (NULL -> last_price with time 0): the last trade and its time (Unix ms). */
    brk_rc (*last_trade)(brk_conn *c, const char *symbol, risk_price *price, int64_t *time_ms,
                         brk_err *err);
    /* Optional (NULL -> no extra rules): the backend's own order rules, checked locally before
     * anything is sent (BRK_OK or BRK_INVALID with a message that names the field). */
    brk_rc (*check)(brk_conn *c, const brk_order_req *req, brk_err *err);
};

/*
 * The common head of every connection; a backend embeds it as its FIRST member, so a test or
 * the server can plug in its own backend by filling ops. Callers never touch it otherwise.
 */
struct brk_conn {
    const struct brk_ops *ops;
};

/* Name of the conn's backend ("sim", "alpaca"). */
const char *brk_conn_backend(const brk_conn *c);

/*
 * Places req. On BRK_OK, *out holds the broker order id and the initial status (a sim market
 * order may already be FILLED). See the top of this file for BRK_UNAVAILABLE: never retried.
 */
brk_rc brk_submit(brk_conn *c, const brk_order_req *req, brk_order *out, brk_err *err);

/*
 * Requests cancellation of broker_order_id. BRK_OK means the broker accepted the request (the
 * order may still fill before the cancel lands); BRK_REJECTED when it is no longer cancelable;
 * BRK_NOT_FOUND when the broker does not know it.
 */
brk_rc brk_cancel(brk_conn *c, const char *broker_order_id, brk_err *err);

/* "Did the broker get this order?" BRK_NOT_FOUND means it did not (as far as it says). */
brk_rc brk_get_by_client_order_id(brk_conn *c, const char *client_order_id, brk_order *out,
                                  brk_err *err);

/*
 * One order by the broker's own id (how a replacement, which has its own client order id at
 * Alpaca, is followed). BRK_UNSUPPORTED when the backend cannot (sim: ask by client order id).
 */
brk_rc brk_get_by_broker_order_id(brk_conn *c, const char *broker_order_id, brk_order *out,
                                  brk_err *err);

/*
 * The backend's own rules for req (brk_order_req_check first), with no I/O: what the broker
 * documents it would refuse is refused here, before anything is sent. brk_submit applies it
 * too. BRK_OK or BRK_INVALID; err->message then starts with the field's name.
 */
brk_rc brk_order_check(brk_conn *c, const brk_order_req *req, brk_err *err);

/* A crypto pair in order form ("BTC/USD"): the symbol has a '/'. Stocks never do at Alpaca
 * (share classes use '.', "BRK.B"). */
bool brk_symbol_is_crypto(const char *symbol);

/*
 * The same instrument in either of Alpaca's spellings: orders say "BTC/USD", positions
 * "BTCUSD". Exact match, or one side is a crypto pair and the other its slash-less form.
 */
bool brk_symbol_same(const char *a, const char *b);

/* Open (non-terminal) orders of this conn's account. *out: brk_order_list_free. */
brk_rc brk_list_open(brk_conn *c, brk_order_list *out, brk_err *err);

brk_rc brk_account_get(brk_conn *c, brk_account *out, brk_err *err);

/* *out: brk_position_list_free. */
brk_rc brk_positions(brk_conn *c, brk_position_list *out, brk_err *err);

/*
 * The last trade price of symbol (1..31 chars of [A-Za-z0-9./-]), > 0, scale 1e6: the
 * reference price the risk engine checks orders against. Read-only (retried like every GET).
 *   BRK_OK           *out > 0;
 *   BRK_NOT_FOUND    the broker's market data does not know the symbol (or has no trade);
 *   BRK_UNSUPPORTED  the backend has no market data (the ops member is NULL);
 *   BRK_UNAVAILABLE  network error, timeout, 5xx, unparseable answer: ask again later;
 *   BRK_AUTH / BRK_RATE_LIMITED / BRK_REJECTED / BRK_INVALID as for the other calls.
 * *out is 0 unless BRK_OK.
 */
brk_rc brk_last_price(brk_conn *c, const char *symbol, risk_price *out, brk_err *err);

/*
 * brk_last_price plus the trade's time (Unix ms) so a caller can refuse a stale price. *time_ms
 * is 0 when the backend prices from a live quote it holds (sim, or any backend without the
 * last_trade op): such a price is current by construction. Same results as brk_last_price;
 * *price and *time_ms are 0 unless BRK_OK.
 */
brk_rc brk_last_trade(brk_conn *c, const char *symbol, risk_price *price, int64_t *time_ms,
                      brk_err *err);

/* Destroys the conn, wiping any credentials it holds. NULL is a no-op. */
void brk_conn_destroy(brk_conn *c);

/* Validates a request as brk_submit does (BRK_OK or BRK_INVALID with a message). */
brk_rc brk_order_req_check(const brk_order_req *req, brk_err *err);

/* ==== sim: the built-in paper exchange ===================================================== */

/*
 * One engine per process, shared by every user's sim conn. Thread-safe. Deterministic: the
 * same sequence of calls with the same clock readings yields the same ids, fills and prices.
 *
 * Matching: a market buy fills at the ask, a market sell at the bid. A limit buy is
 * marketable when ask <= limit and fills at the ask; a limit sell when bid >= limit, at the
 * bid. Each match step fills at most `liquidity` shares of each order (0 = unlimited); the
 * rest rests (market orders too) and a later brk_sim_set_quote on that symbol runs another
 * step over the resting orders of that symbol in submission order. IOC cancels what one step
 * did not fill; FOK fills completely in one step or is canceled. DAY and GTC rest until
 * canceled, except that brk_sim_roll_day expires open DAY orders. OPG/CLS are BRK_INVALID.
 * Orders for a symbol without a quote are BRK_REJECTED. Buys need buying power (cash
 * account: cash minus open buy orders' notional; margin: 2 x equity minus gross position
 * value minus open buys); sells on a cash account need the shares (no shorting).
 * Broker order ids are "sim-" + a 12-digit per-engine sequence.
 */
typedef struct brk_sim_engine brk_sim_engine;

/* A clock: Unix time in milliseconds. */
typedef int64_t (*brk_clock_fn)(void *ctx);

typedef struct brk_sim_config {
    risk_money default_cash;               /* starting cash of new accounts; 0 -> $100,000 */
    brk_account_type default_account_type; /* 0 -> BRK_ACCOUNT_CASH */
    risk_qty liquidity;                    /* max shares per order per match step; 0 = no cap */
    brk_clock_fn clock;                    /* base clock; NULL -> CLOCK_REALTIME */
    void *clock_ctx;
    brk_log_fn log; /* may be NULL */
    void *log_ctx;
} brk_sim_config;

/* cfg may be NULL (all defaults). *out: brk_sim_engine_destroy. */
brk_rc brk_sim_engine_create(const brk_sim_config *cfg, brk_sim_engine **out);

/*
 * Drops the caller's reference. The engine is freed when the last conn made from it is
 * destroyed too, so conns and engine may be destroyed in any order. NULL is a no-op.
 */
void brk_sim_engine_destroy(brk_sim_engine *e);

/*
 * A conn for account_id (the server passes the user id; 1..128 printable chars). The account
 * is created with the engine defaults if it does not exist. *out: brk_conn_destroy.
 */
brk_rc brk_sim_connect(brk_sim_engine *e, const char *account_id, brk_conn **out);

/* Quotes: all > 0 and bid <= ask. */
typedef struct brk_quote {
    risk_price bid;
    risk_price ask;
    risk_price last;
} brk_quote;

/* Sets symbol's quote and runs one match step over its resting orders. */
brk_rc brk_sim_set_quote(brk_sim_engine *e, const char *symbol, const brk_quote *q, brk_err *err);
/* BRK_NOT_FOUND when the symbol has no quote. A sim conn's brk_last_price is q.last. */
brk_rc brk_sim_get_quote(brk_sim_engine *e, const char *symbol, brk_quote *out);

/*
 * Loads CSV text "symbol,bid,ask,last" (one quote per line; an optional first line that is
 * exactly that header; blank lines and CRLF accepted; decimals per risk/money.h). All or
 * nothing: on any error nothing changes and err->message names the 1-based line. On success
 * the quotes are applied in file order, each running a match step; *n_loaded (may be NULL)
 * gets the number of quotes.
 */
brk_rc brk_sim_load_quotes_csv(brk_sim_engine *e, const char *text, size_t len, size_t *n_loaded,
                               brk_err *err);

/*
 * Sets an account's cash and type, creating it if needed; positions and orders stay.
 * brk_sim_account_reset does the same but first cancels its open orders (events are
 * delivered) and clears its positions and order history.
 */
brk_rc brk_sim_account_set(brk_sim_engine *e, const char *account_id, risk_money cash,
                           brk_account_type type);
brk_rc brk_sim_account_reset(brk_sim_engine *e, const char *account_id, risk_money cash,
                             brk_account_type type);

/*
 * End of a trading day: expires every open DAY order (events delivered) and records each
 * account's equity as last_equity. The server calls it at the session boundary.
 */
void brk_sim_roll_day(brk_sim_engine *e);

/*
 * The engine's one clock: now = base clock + offset, or a frozen value. brk_sim_clock_set
 * makes now == unix_ms at once, then frozen (running=false) or flowing with the base clock.
 * brk_sim_clock_advance moves it by delta_ms (either mode). brk_sim_clock_reset returns to
 * the plain base clock. brk_sim_clock_frozen says whether the clock is frozen. brk_sim_clock_fn has
 * the brk_clock_fn shape (ctx = the engine) so the server can hand the engine's clock to everything
 * else that reads time.
 */
int64_t brk_sim_now(brk_sim_engine *e);
int64_t brk_sim_clock_fn(void *engine);
void brk_sim_clock_set(brk_sim_engine *e, int64_t unix_ms, bool running);
void brk_sim_clock_advance(brk_sim_engine *e, int64_t delta_ms);
void brk_sim_clock_reset(brk_sim_engine *e);
bool brk_sim_clock_frozen(brk_sim_engine *e);

typedef enum brk_sim_event_kind {
    BRK_SIM_EV_FILL = 1,     /* fill_qty > 0 at fill_price */
    BRK_SIM_EV_CANCELED = 2, /* by brk_cancel, IOC/FOK remainder, or account reset */
    BRK_SIM_EV_EXPIRED = 3,  /* DAY order at brk_sim_roll_day */
} brk_sim_event_kind;

/* One order update. Pointers valid only during the listener call. */
typedef struct brk_sim_event {
    brk_sim_event_kind kind;
    uint64_t seq; /* engine-wide, strictly increasing, delivery order */
    const char *account_id;
    const char *client_order_id;
    const char *broker_order_id;
    const char *symbol;
    brk_side side;
    risk_qty order_qty;
    risk_qty fill_qty;       /* 0 unless BRK_SIM_EV_FILL */
    risk_price fill_price;   /* 0 unless BRK_SIM_EV_FILL */
    risk_qty cum_qty;        /* cumulative filled after this event */
    risk_price avg_price;    /* average fill price after this event, 0 if none */
    brk_order_status status; /* after this event */
    int64_t time_ms;         /* engine clock */
} brk_sim_event;

typedef void (*brk_sim_listener_fn)(void *ctx, const brk_sim_event *ev);

/*
 * Subscribes one listener (NULL unsubscribes). Each account's events are delivered in seq
 * order, one at a time; different accounts' events may be delivered concurrently, on different
 * threads. Delivery happens outside every engine lock, so the listener may call into the
 * engine. The call that generated an event delivers its account's queue unless another thread
 * is already delivering that account (that thread then delivers it too): a submit or cancel
 * delivers only its own account's events, so it never waits for other accounts' listeners; a
 * quote, a CSV load and the day roll deliver every account they touched. With a single caller
 * per account every event is delivered before the call that caused it returns. Events
 * generated while no listener is set are dropped.
 */
void brk_sim_set_fill_listener(brk_sim_engine *e, brk_sim_listener_fn fn, void *ctx);

/* ==== alpaca: Trading API v2 ================================================================ */

#define BRK_ALPACA_PAPER_URL "https://paper-api.alpaca.markets"
#define BRK_ALPACA_LIVE_URL "https://api.alpaca.markets"
#define BRK_ALPACA_DATA_URL "https://data.alpaca.markets" /* Market Data API v2, paper and live */
#define BRK_ALPACA_DATA_FEED "iex"

/* A request budget kept beyond this process (the server's Redis), so every replica of one
 * account draws on one bucket. take: one request of account (a 16-byte digest of the key id)
 * under a bucket of per_min tokens a minute, of which a background request may not take the
 * last quarter; returns 0 when taken, > 0 the ms until one would be, < 0 when the shared
 * budget cannot answer now (the process's own bucket decides, as without one). hold: no
 * request of the account for the next hold_ms (a 429 until its X-Ratelimit-Reset). Both are
 * called from any thread and may block for a round trip. */
typedef struct brk_shared_budget {
    int64_t (*take)(void *ctx, const unsigned char account[16], int per_min, bool background);
    void (*hold)(void *ctx, const unsigned char account[16], int per_min, int64_t hold_ms);
    void *ctx;
} brk_shared_budget;

typedef struct brk_alpaca_config {
    bool live;               /* default base URL: false -> paper, true -> live */
    const char *base_url;    /* overrides the default; https://, or http:// to 127.0.0.1,
                                localhost or [::1] only; no path, query or credentials */
    long connect_timeout_ms; /* 0 -> 5000 */
    long timeout_ms;         /* whole request, per attempt; 0 -> 10000 */
    int max_attempts;        /* GET/DELETE only, on network error/timeout/5xx/429; 0 -> 3 */
    long backoff_ms;         /* before the 2nd attempt, doubled each time; 0 -> 200 */
    const char *interface;   /* CURLOPT_INTERFACE ("eth1", "host!1.2.3.4", "if!eth0"); NULL */
    const char *ca_file;     /* CA bundle; NULL -> system default */
    brk_log_fn log;          /* may be NULL */
    void *log_ctx;
    const char *data_url;  /* Market Data API base; NULL -> BRK_ALPACA_DATA_URL; same rules as
                              base_url (https://, or http:// to loopback only) */
    const char *data_feed; /* "feed" of the latest-trade request: 1..16 chars of [a-z0-9_];
                              NULL -> BRK_ALPACA_DATA_FEED ("iex", free plans) */
    /* Request budget per account (key id), shared by every conn of that key in the process:
     * requests_per_min tokens (0 = no budget). A background conn (polling, marks) never takes
     * the last quarter and never waits (BRK_RATE_LIMITED); a user conn waits for a token, and
     * after a 429 until X-Ratelimit-Reset, at most rate_wait_max_ms (0 -> 10000). A 429 on
     * POST /v2/orders (not processed by Alpaca) is sent again once after the reset. */
    int requests_per_min;
    bool background;
    long rate_wait_max_ms;
    /* With requests_per_min: the budget shared with other processes (NULL = this process's
     * only). While it answers it decides; the process's bucket still holds a 429's reset. */
    const brk_shared_budget *shared_budget;
    /* W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>", lower case) sent on every request of
     * the conn, so the broker call can be found under the server call it serves; NULL or ""
     * sends none. Any other shape is refused (BRK_INVALID): it is a header value. */
    const char *traceparent;
} brk_alpaca_config;

/*
 * The URL and feed rules brk_alpaca_connect applies, for validating configuration at start:
 * https://host[:port][/], or http:// to 127.0.0.1, localhost or [::1] only; no userinfo, path,
 * query or fragment. A feed is 1..16 chars of [a-z0-9_].
 */
bool brk_alpaca_url_ok(const char *url);
bool brk_alpaca_feed_ok(const char *feed);

/*
 * A conn that signs every request with this user's key. key_id/secret are copied into
 * conn-owned memory (the caller's buffers are not kept), never logged, never put into an error
 * message, and wiped with OPENSSL_cleanse when the conn is destroyed. Config strings are
 * copied. POST /v2/orders is never retried except once after a 429 (not processed by Alpaca),
 * at its X-Ratelimit-Reset; GET and DELETE are retried with backoff (after a 429: at the reset).
 * brk_last_price asks the Market Data API v2 (GET {data_url}/v2/stocks/{symbol}/trades/latest
 * ?feed={data_feed}; for a crypto pair GET {data_url}/v1beta3/crypto/us/latest/trades
 * ?symbols={pair}) with the same key headers and reads the trade's "p" from the raw JSON
 * number text (never through a double), rounded half away to 1e-6, and its "t".
 * brk_order_check refuses locally what Alpaca documents it refuses: a fractional quantity
 * unless time_in_force is DAY, extended_hours unless the order is a DAY limit order, a crypto
 * pair unless time_in_force is GTC or IOC. Positions are reported in order form: a crypto
 * position "BTCUSD" (asset_class "crypto") becomes "BTC/USD", so it matches our orders.
 * *out: brk_conn_destroy. err may be NULL.
 */
brk_rc brk_alpaca_connect(const brk_alpaca_config *cfg, const char *key_id, size_t key_id_len,
                          const unsigned char *secret, size_t secret_len, brk_conn **out,
                          brk_err *err);

/* ---- alpaca: the trade_updates stream (alpaca_stream.c, libwebsockets) ------------------- */

/*
 * One account's trade_updates stream: a WebSocket to {base}/stream (https -> wss, http -> ws,
 * loopback only as for base_url). Every stream of the process shares one libwebsockets context
 * and one service thread, made by the first start and ended by the last stop (one context per
 * stream leaked TLS state in libwebsockets 4.1). It authenticates with the key
 * ({"action":"auth",...}), listens to trade_updates, and hands every order event (new, fill,
 * partial_fill, canceled, expired, replaced, rejected, done_for_day, ...) to on_update as a
 * brk_order: the event's order object (cumulative filled_qty and filled_avg_price, as a GET
 * would answer) with filled_ms = the event's timestamp for fill and partial_fill. A dropped or
 * refused connection is retried with backoff (backoff_ms doubling up to backoff_max_ms); a
 * connection silent for 30 s is pinged and closed at 60 s. Nothing the stream says is ever
 * the only word: the caller keeps polling while brk_alpaca_stream_up is false, and polls
 * once after each new generation (events sent while it was down are not replayed).
 *
 * on_update runs on that service thread, one event at a time across all streams, and may
 * block: every stream reads on after it returns (the events wait in their sockets), so it
 * should be as quick as a database commit. order is valid only during the call. The key is
 * copied and wiped on stop, never logged.
 */
typedef struct brk_alpaca_stream brk_alpaca_stream;
typedef void (*brk_stream_update_fn)(void *ctx, const char *event, const brk_order *order);

typedef struct brk_alpaca_stream_config {
    bool live;            /* default base URL as for brk_alpaca_config */
    const char *base_url; /* the Trading API base (same rules as brk_alpaca_config.base_url) */
    /* The stream's own base, overriding the one derived from base_url: wss://host[:port], or
     * ws:// to loopback only (a test stub on a port of its own). NULL = derived. */
    const char *stream_url;
    long backoff_ms;     /* first reconnect delay; 0 -> 500 */
    long backoff_max_ms; /* 0 -> 10000 */
    brk_stream_update_fn on_update;
    void *ctx;
    brk_log_fn log; /* may be NULL */
    void *log_ctx;
} brk_alpaca_stream_config;

/* Starts connecting at once (the first connection is not awaited). *out: brk_alpaca_stream_stop. */
brk_rc brk_alpaca_stream_start(const brk_alpaca_stream_config *cfg, const char *key_id,
                               size_t key_id_len, const unsigned char *secret, size_t secret_len,
                               brk_alpaca_stream **out, brk_err *err);
/*
 * True while connected, authorised and listening to trade_updates. generation (may be NULL):
 * how many times the stream has come up since start (1 after the first listen acknowledgement),
 * so a caller can tell a reconnection (and poll once) from a stream that stayed up.
 */
bool brk_alpaca_stream_up(brk_alpaca_stream *s, uint64_t *generation);
/* Closes the connection, joins the thread (an on_update in progress finishes first), wipes the
 * key. NULL is a no-op. */
void brk_alpaca_stream_stop(brk_alpaca_stream *s);

#endif
