/*
 * risk/risk.h — the pure pre-trade risk engine: NYSE calendar, sector map, and
 * risk_decide(intent, snapshot, limits, now) -> allow | reject(every violation) + state changes.
 *
 * No I/O, no clock reads, no global mutable state: every input is an argument, so the same
 * inputs always give the same decision bytes. Money, prices and quantities are fixed point;
 * the scales are documented in risk/money.h. Times are Unix milliseconds (UTC) unless a name
 * ends in _unix (Unix seconds). Dates are "day numbers": days since 1970-01-01 of a calendar
 * date in America/New_York (risk_day).
 */
#ifndef TW_RISK_RISK_H
#define TW_RISK_RISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "risk/money.h"

/* ---------------------------------------------------------------- dates and the calendar */

typedef int32_t risk_day; /* days since 1970-01-01 (that day is 0, a Thursday) */

/* Proleptic Gregorian conversions; valid for years 1..9999. month 1..12, mday 1..31. */
risk_day risk_day_from_ymd(int year, int month, int mday);
void risk_day_to_ymd(risk_day d, int *year, int *month, int *mday);
int risk_day_weekday(risk_day d); /* 0 = Sunday .. 6 = Saturday */

/* Whether US daylight saving time is in effect in New York at Unix time t (seconds).
 * Rules computed in code: 2007+ second Sunday of March 02:00 EST to first Sunday of November
 * 02:00 EDT; 1987-2006 first Sunday of April to last Sunday of October; none before 1987. */
bool risk_ny_is_dst(int64_t t_unix);
/* The New York calendar date of Unix time t (seconds). */
risk_day risk_ny_day(int64_t t_unix);
/* Unix seconds of New York local wall time (day, seconds since local midnight). */
int64_t risk_ny_local_to_unix(risk_day day, int32_t sec_of_day);

/*
 * NYSE calendar: weekends, the rule-based full-day holidays below, plus an optional sorted
 * list of extra closures (one-off events such as the 2025-01-09 national day of mourning for
 * President Carter, 2012-10-29/30 Hurricane Sandy, 2001-09-11..14), which no rule can predict.
 * Holidays: New Year's Day (Sunday -> Monday; Saturday -> not observed, the NYSE does not close
 * on Friday Dec 31), Martin Luther King Jr. Day (3rd Monday of January, from 1998),
 * Washington's Birthday (3rd Monday of February), Good Friday (Easter Sunday - 2, computed),
 * Memorial Day (last Monday of May), Juneteenth (June 19, from 2022), Independence Day (July 4),
 * Labor Day (1st Monday of September), Thanksgiving (4th Thursday of November), Christmas
 * (Dec 25). Juneteenth, Independence Day and Christmas move Saturday -> Friday and
 * Sunday -> Monday. Early closes (13:00) do not change the session start, so they are not
 * modelled. The session opens 09:30 America/New_York.
 *
 * The struct is plain data owned by the caller; `extra_closed` is borrowed (must outlive the
 * calendar) and must be sorted ascending without duplicates (risk_calendar_init checks it).
 */
typedef struct risk_calendar {
    const risk_day *extra_closed;
    size_t n_extra_closed;
} risk_calendar;

/* Fills *cal. extra may be NULL when n is 0. Returns 0, or -1 when extra is not strictly
 * ascending (cal is then left as the rules-only calendar). */
int risk_calendar_init(risk_calendar *cal, const risk_day *extra, size_t n);

/* Name of the rule-based holiday on day d ("Good Friday"), or NULL when d is not one.
 * Extra closures return "Special closure". Weekends return NULL. */
const char *risk_cal_holiday_name(const risk_calendar *cal, risk_day d);
bool risk_cal_is_trading_day(const risk_calendar *cal, risk_day d);
risk_day risk_cal_next_trading_day(const risk_calendar *cal, risk_day d); /* first > d */
risk_day risk_cal_prev_trading_day(const risk_calendar *cal, risk_day d); /* last < d */
/* Number of trading days t with from < t <= to (0 when to <= from). */
int32_t risk_cal_business_days_between(const risk_calendar *cal, risk_day from, risk_day to);
/* Unix seconds of 09:30 America/New_York on day d (whether or not d is a trading day). */
int64_t risk_cal_session_start_unix(risk_day d);
/* Session start of the first trading day strictly after the NY date of t (seconds). */
int64_t risk_cal_next_session_start_unix(const risk_calendar *cal, int64_t t_unix);

/* ---------------------------------------------------------------- sector map */

#define RISK_SYMBOL_MAX 16     /* bytes incl. the NUL: symbols are 1..15 characters */
#define RISK_SECTOR_UNKNOWN -1 /* sector id of a symbol outside the map */
#define RISK_SECTORS_MAX 64    /* distinct sector names a map may hold */
#define RISK_SECTOR_NAME_MAX 48

/* Symbol -> GICS sector lookup built from a CSV buffer; immutable once built, so one map can
 * be shared by any number of threads. Opaque. */
typedef struct risk_sector_map risk_sector_map;

/*
 * Parses CSV text (RFC 4180: quoted fields, "" escapes, LF or CRLF line ends) whose header row
 * names the columns "Symbol" and "GICS Sector" (any position; other columns ignored), in the
 * format of data/sp500-constituents.csv. Symbols must be 1..15 of [A-Z0-9.-/]; a duplicate
 * symbol, an empty sector, or more than RISK_SECTORS_MAX sectors is an error. On success *out
 * owns a new map (free with risk_sectors_destroy). On error returns -1, *out is NULL and, when
 * err is non-NULL, err gets a message naming the line.
 */
int risk_sectors_parse(const char *csv, size_t len, risk_sector_map **out, char *err,
                       size_t err_cap);
void risk_sectors_destroy(risk_sector_map *map);              /* NULL is a no-op */
size_t risk_sectors_count(const risk_sector_map *map);        /* symbols in the map */
size_t risk_sectors_sector_count(const risk_sector_map *map); /* distinct sectors */
/* Sector id (0..sector_count-1, ids follow the sorted sector names) or RISK_SECTOR_UNKNOWN.
 * map may be NULL (everything is unknown). Exact, case-sensitive match. */
int risk_sectors_lookup(const risk_sector_map *map, const char *symbol);
/* Sector name for an id; "UNKNOWN" for RISK_SECTOR_UNKNOWN or an id out of range. The string
 * is owned by the map (or static) and lives as long as the map. */
const char *risk_sectors_name(const risk_sector_map *map, int sector_id);

/* ---------------------------------------------------------------- engine inputs */

typedef enum risk_side { RISK_BUY = 1, RISK_SELL = 2 } risk_side;

typedef enum risk_order_type {
    RISK_ORDER_MARKET = 1,
    RISK_ORDER_LIMIT = 2,
    RISK_ORDER_STOP = 3,
    RISK_ORDER_STOP_LIMIT = 4,
} risk_order_type;

typedef enum risk_trading_state {
    RISK_STATE_ACTIVE = 0,
    RISK_STATE_HALTED = 1,
    RISK_STATE_REDUCING = 2, /* only position-reducing orders, set by the user */
} risk_trading_state;

/* Who halted (bit set in risk_snapshot.halt_reasons). */
#define RISK_HALT_USER 0x1u    /* user kill switch */
#define RISK_HALT_ADMIN 0x2u   /* admin global kill switch */
#define RISK_HALT_BREAKER 0x4u /* circuit breaker, until breaker_until_ms */

typedef enum risk_breaker_reason {
    RISK_BREAKER_NONE = 0,
    RISK_BREAKER_DAILY_LOSS = 1,
    RISK_BREAKER_DRAWDOWN = 2,
} risk_breaker_reason;

typedef enum risk_account_type { RISK_ACCOUNT_CASH = 1, RISK_ACCOUNT_MARGIN = 2 } risk_account_type;

/* The order being checked. */
typedef struct risk_intent {
    char symbol[RISK_SYMBOL_MAX]; /* NUL-terminated, 1..15 of [A-Z0-9.-/] */
    risk_side side;
    risk_order_type type;
    risk_qty qty;           /* > 0 */
    risk_price limit_price; /* > 0 for LIMIT and STOP_LIMIT, else ignored */
    risk_price stop_price;  /* > 0 for STOP and STOP_LIMIT, else ignored */
} risk_intent;

typedef struct risk_position {
    char symbol[RISK_SYMBOL_MAX];
    risk_qty qty;          /* signed: > 0 long, < 0 short; 0 rows are ignored */
    risk_price avg_cost;   /* informational */
    risk_price last_price; /* mark used for exposure; > 0 */
} risk_position;

/* A working (unfilled or partially filled) order at the broker or awaiting submission. */
typedef struct risk_open_order {
    char symbol[RISK_SYMBOL_MAX];
    risk_side side;
    risk_qty qty;     /* remaining quantity, > 0 */
    risk_price price; /* limit price, or the reference price for market/stop orders; > 0 */
    int64_t created_ms;
    uint64_t order_id; /* same id as its fills in fills_today (0 = none): no double counting */
} risk_open_order;

/* An order submitted recently (any outcome but a risk rejection): duplicate + rate rules. */
typedef struct risk_recent_order {
    char symbol[RISK_SYMBOL_MAX];
    risk_side side;
    risk_qty qty;
    int64_t submitted_ms;
} risk_recent_order;

/* One execution today. Fills of one order share order_id (partial fills = one trade). */
typedef struct risk_fill {
    char symbol[RISK_SYMBOL_MAX];
    risk_side side;
    risk_qty qty; /* > 0 */
    risk_price price;
    int64_t filled_ms;
    uint64_t order_id;
} risk_fill;

/* Pattern-day-trader guard parameters: a property of the broker connection. */
typedef struct risk_pdt_config {
    bool enabled;            /* false: the guard is off for this broker connection */
    int32_t max_day_trades;  /* 3: the order that would make the 4th is refused */
    int32_t window_days;     /* 5 business days, today included */
    risk_money equity_floor; /* $25,000: accounts at or above it (previous close) exempt */
} risk_pdt_config;

/*
 * Everything the engine knows about the account, all borrowed for the duration of the call.
 * Array limits (more is RISK_V_INVALID_INPUT): RISK_MAX_POSITIONS, RISK_MAX_OPEN_ORDERS,
 * RISK_MAX_RECENT_ORDERS, RISK_MAX_FILLS; day_trade_days is unbounded.
 */
typedef struct risk_snapshot {
    risk_money equity;             /* current, marked to market */
    risk_money sod_equity;         /* start of the trading day (previous close + cash flows) */
    risk_money peak_equity;        /* intraday high-water mark (engine uses max with equity) */
    risk_money prev_close_equity;  /* previous close: the PDT equity test */
    risk_money realized_pnl_today; /* informational; the loss rule uses equity - sod_equity */

    const risk_position *positions;
    size_t n_positions;
    const risk_open_order *open_orders; /* in creation order (PDT simulates them in order) */
    size_t n_open_orders;
    const risk_recent_order *recent_orders; /* at least the last max(dup, rate) window */
    size_t n_recent_orders;
    /* One entry per day trade made on an earlier trading day (NY date); entries on or after
     * the current trading day are ignored (today's are recomputed from fills_today). */
    const risk_day *day_trade_days;
    size_t n_day_trade_days;
    /* Executions of the current trading day in execution order (fills from other days are
     * ignored). */
    const risk_fill *fills_today;
    size_t n_fills_today;

    risk_trading_state state;           /* stored state */
    uint32_t halt_reasons;              /* RISK_HALT_* bits */
    risk_breaker_reason breaker_reason; /* why the breaker is tripped (when the bit is set) */
    int64_t breaker_until_ms;           /* breaker expiry; only read when the bit is set */

    risk_account_type account_type;
    risk_pdt_config pdt;

    const risk_sector_map *sectors; /* may be NULL: every symbol is UNKNOWN */
    const risk_calendar *calendar;  /* required */
    risk_price ref_price;           /* reference price of the intent's symbol; 0 = none */
} risk_snapshot;

/* ---------------------------------------------------------------- periods and day trades
 *
 * The period computations the snapshot's inputs come from, as plain functions of records, so
 * that a caller (the store-backed snapshot today, an in-memory account ledger later) derives
 * them exactly as the engine reads them.
 */

/* The trading date of instant now_ms: its New York date when that is a trading day, else the
 * next trading day (a weekend's orders count toward Monday). *start_ms and *end_ms (either may
 * be NULL) get the date's New York midnight and the next midnight: "today's fills" are the fills
 * in [start, end), the same bounds the engine applies to fills_today. */
risk_day risk_trade_date(const risk_calendar *cal, int64_t now_ms, int64_t *start_ms,
                         int64_t *end_ms);

/* The first trading day of the window of window_days trading days that ends with trade_date
 * (trade_date itself counts, so 5 gives trade_date and the 4 trading days before it). window_days
 * below 1 is taken as 1, above RISK_PDT_MAX_WINDOW as RISK_PDT_MAX_WINDOW. Day trades recorded
 * on days d with start <= d < trade_date are the PDT history of trade_date. */
risk_day risk_pdt_window_start(const risk_calendar *cal, risk_day trade_date, int32_t window_days);

/* One day trade: the execution that completed it. */
typedef struct risk_day_trade {
    char symbol[RISK_SYMBOL_MAX];
    uint64_t order_id; /* the completing execution's order (risk_fill.order_id) */
    int64_t closed_ms; /* the completing execution's time */
    size_t fill_index; /* its index in the fills passed in */
} risk_day_trade;

/*
 * The day trades completed by one trading day's executions, counted as the engine's PDT rule
 * counts today's (FINRA Rule 4210 interpretation /02, "by change of direction"): per symbol,
 * executions in order, with partial fills of one order (same non-zero order_id) being one
 * execution; an execution that closes quantity opened the same day (same-day lots are closed
 * before the overnight position) completes one day trade when its direction differs from the
 * previous execution's. So buy 250, buy 250, sell 500 = 1; buy, sell, buy, sell = 2; buy then
 * several sells = 1; short then cover = 1; selling an overnight long, then buying it back = 0.
 *
 *   positions: the account's positions AFTER these executions (only symbol and qty are read; a
 *              symbol without a row is flat). A symbol's overnight position is its position
 *              minus the day's net executions.
 *   fills:     the executions of ONE trading day (see risk_trade_date), in execution order.
 *              Their filled_ms is only copied to out: the caller chose the day.
 *   out:       receives the first min(count, cap) day trades in the order of the fills that
 *              completed them; may be NULL when cap is 0.
 *
 * Returns the number of day trades (which may exceed cap), or -1 when an input is invalid (a
 * NULL array with a non-zero count, an empty symbol, a side other than buy/sell, a quantity
 * <= 0) or memory runs out. Pure: no clock, no I/O; it allocates only a scratch block, freed
 * before it returns. An order with more than 32 day trades on one symbol and day may count its
 * later partial fills again (conservative: more day trades, never fewer).
 */
int32_t risk_day_trades(const risk_position *positions, size_t n_positions, const risk_fill *fills,
                        size_t n_fills, risk_day_trade *out, size_t cap);

#define RISK_MAX_POSITIONS 512
#define RISK_MAX_OPEN_ORDERS 512
#define RISK_MAX_RECENT_ORDERS 4096
#define RISK_MAX_FILLS 4096
#define RISK_PDT_MAX_WINDOW 60 /* pdt.window_days upper bound */

#define RISK_OFF (-1) /* a limit set to RISK_OFF is not checked */

/*
 * Per-user limits (defaults from risk_limits_default in brackets). Percentages in basis points.
 * Any field may be RISK_OFF except pdt fields (the guard has its own switch).
 */
typedef struct risk_limits {
    int32_t daily_loss_bps;         /* [200] 2 % of start-of-day equity */
    risk_money daily_loss_abs;      /* [RISK_OFF] absolute amount; with both, the smaller wins */
    int32_t drawdown_bps;           /* [500] 5 % from the intraday peak */
    int32_t max_open_positions;     /* [10] distinct symbols held or with pending entries */
    int32_t sector_max_bps;         /* [2500] post-trade gross exposure per GICS sector/equity */
    int32_t unknown_sector_max_bps; /* [2500] ALL unknown symbols together, as one bucket */
    int32_t max_order_notional_bps; /* [1000] order notional / equity */
    int32_t price_collar_bps;       /* [1000] |limit - reference| / reference */
    int32_t duplicate_window_ms;    /* [5000] same symbol, side and quantity */
    int32_t max_orders_per_window;  /* [5] orders per rate window */
    int32_t rate_window_ms;         /* [1000] */
} risk_limits;

void risk_limits_default(risk_limits *l);
void risk_pdt_default(risk_pdt_config *p);
/*
 * Validates l (ranges: bps 0..10000 except collar 0..100000, counts >= 0, windows 1..86400000 ms)
 * and, when bounds is non-NULL, that no field of l is more permissive than bounds (RISK_OFF is
 * the most permissive). Returns 0, or -1 with the offending field's name and reason in err.
 */
int risk_limits_check(const risk_limits *l, const risk_limits *bounds, char *err, size_t cap);

/* ---------------------------------------------------------------- engine outputs */

/* Violation codes. Only ever appended; each rule emits at most one. */
typedef enum risk_code {
    RISK_V_INVALID_INPUT = 1,
    RISK_V_TRADING_HALTED = 2,
    RISK_V_DAILY_LOSS_LIMIT = 3,
    RISK_V_DRAWDOWN = 4,
    RISK_V_MAX_POSITIONS = 5,
    RISK_V_SECTOR_CONCENTRATION = 6,
    RISK_V_MAX_ORDER_NOTIONAL = 7,
    RISK_V_PRICE_COLLAR = 8,
    RISK_V_DUPLICATE_ORDER = 9,
    RISK_V_ORDER_RATE = 10,
    RISK_V_PDT = 11,
    RISK_V_NO_REFERENCE_PRICE = 12,
} risk_code;

/* Stable snake_case name of a code ("daily_loss_limit"), for logs and the wire. */
const char *risk_code_name(risk_code code);

#define RISK_MAX_VIOLATIONS 12 /* > the number of rules: every violation fits */
#define RISK_MESSAGE_MAX 200

typedef struct risk_violation {
    risk_code code;
    char message[RISK_MESSAGE_MAX]; /* human English, NUL-terminated, may be truncated */
} risk_violation;

/* Account-level view, also produced without an order by risk_assess (for GetState). */
typedef struct risk_assessment {
    risk_trading_state effective_state; /* after applying halt reasons and breaker expiry */
    uint32_t halt_reasons;              /* effective RISK_HALT_* bits (expired breaker cleared) */
    risk_breaker_reason breaker_reason; /* active breaker's reason, else NONE */
    int64_t breaker_until_ms;           /* active breaker's expiry, else 0 */
    /* State changes the caller must persist. */
    bool trip_breaker; /* set HALT_BREAKER with the reason and until below */
    risk_breaker_reason trip_reason;
    int64_t trip_until_ms; /* next trading day's 09:30 New York */
    bool clear_breaker;    /* the stored breaker has expired: clear it */
    /* Figures. */
    risk_money day_pnl;          /* equity - sod_equity */
    risk_money daily_loss_limit; /* effective loss limit in money (RISK_OFF when off) */
    risk_money drawdown;         /* max(peak, equity) - equity */
    risk_money drawdown_limit;   /* in money (RISK_OFF when off) */
    int32_t open_positions;      /* distinct symbols held or with pending entries */
    /* History + today's fills + pending orders as potential day trades. risk_assess always
     * computes it; risk_decide only when the PDT rule needed it (the intent could complete a
     * day trade in an account the guard applies to), else -1. */
    int32_t day_trades_in_window;
    bool pdt_applies;    /* margin, guard enabled, previous close under the floor */
    risk_day trade_date; /* current trading date (today, or the next trading day) */
} risk_assessment;

typedef struct risk_decision {
    bool allowed;        /* true iff n_violations == 0 */
    bool reduce_only;    /* the intent only reduces an existing position */
    risk_money notional; /* qty x order price (rounded up), 0 when no price */
    size_t n_violations;
    risk_violation violations[RISK_MAX_VIOLATIONS]; /* in rule order */
    risk_assessment account;                        /* includes the state changes to persist */
} risk_decision;

typedef enum risk_rc {
    RISK_OK = 0,     /* a decision was made (allowed or not) */
    RISK_EINVAL = 1, /* bad input: *out (when non-NULL) rejects with RISK_V_INVALID_INPUT */
} risk_rc;

/*
 * Decides whether `intent` may be submitted now (Unix ms). Pure and deterministic: *out is
 * fully overwritten (padding included), so equal inputs give byte-identical decisions. The
 * state changes in out->account must be persisted by the caller even when the order is
 * rejected (a breaker trips on the call that notices the loss).
 */
risk_rc risk_decide(const risk_intent *intent, const risk_snapshot *snap, const risk_limits *lim,
                    int64_t now_ms, risk_decision *out);

/* The account view without an order (GetState, fill processing). Same purity guarantees. */
risk_rc risk_assess(const risk_snapshot *snap, const risk_limits *lim, int64_t now_ms,
                    risk_assessment *out);

#endif
