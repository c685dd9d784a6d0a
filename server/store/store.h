/*
 * store.h - the one persistence interface of tradewinkd.
 *
 * Two backends behind it, chosen by TW_DATABASE_URL: `sqlite:PATH` (embedded default) and
 * `postgres://...` / `postgresql://...` (libpq; the URL is passed to libpq as is, so
 * `sslmode=verify-full&sslrootcert=...` work). The SQL of every typed function is written once;
 * dialect differences live in the backends (store_sqlite.c, store_pg.c) and in the migrations.
 *
 * Units (no floating point anywhere near money):
 *   - money and prices: int64 fixed point, 1e6 units per currency unit (micro-dollars);
 *   - quantities: int64 fixed point, 1e9 units per share/coin;
 *   - basis points: plain int64 (1 bp = 0.01 %);
 *   - timestamps: int64 microseconds since the Unix epoch, fields named *_us; 0 = "never";
 *   - trading days: int YYYYMMDD.
 *
 * Threads: a `store` is shared by all threads. A `store_conn` is used by ONE thread at a time:
 * take it with store_conn_acquire() for the duration of a call (or keep one per worker thread)
 * and give it back with store_conn_release(). Every typed function runs on a conn, inside or
 * outside a transaction opened on that conn.
 *
 * Isolation: every per-user function takes the user id and puts it in every WHERE clause; an
 * object of another user is indistinguishable from a missing one (STORE_NOT_FOUND). Reads
 * across users are separate functions named store_admin_*.
 *
 * Errors: one result enum. The message of the last failure on a conn (store_conn_errmsg) never
 * contains a URL, password, parameter value or ciphertext.
 */
#ifndef TW_STORE_H
#define TW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Result of every store function. Only ever appended to. */
typedef enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND,   /* no such row for this user (or it belongs to someone else) */
    STORE_CONFLICT,    /* unique key taken, or an optimistic check failed (audit seq, rewrap) */
    STORE_UNAVAILABLE, /* database unreachable / connection lost; the next call reconnects */
    STORE_BUSY,        /* lock timeout, deadlock, serialization failure: retry the transaction */
    STORE_INVALID,     /* bad argument or a constraint of the schema refused the value */
    STORE_DENIED,      /* the database refused by policy (append-only audit trigger) */
    STORE_VERSION,     /* database schema newer than this binary; refuse to start */
    STORE_CORRUPT,     /* database file/rows malformed */
    STORE_NOMEM,
    STORE_INTERNAL,
} store_rc;

/* Static name of a result ("OK", "NOT_FOUND", ...). Never NULL. */
const char *store_rc_name(store_rc rc);

/* Log levels passed to the caller's log callback. */
enum { STORE_LOG_DEBUG = 0, STORE_LOG_INFO = 1, STORE_LOG_WARN = 2, STORE_LOG_ERROR = 3 };

/* Log callback provided by the caller; msg is only valid during the call and never contains
 * a password. May be called from any thread. */
typedef void (*store_log_fn)(void *ctx, int level, const char *msg);

typedef struct store store;           /* opaque; thread-safe */
typedef struct store_conn store_conn; /* opaque; one thread at a time */

#define STORE_DEFAULT_URL "sqlite:./tradewink.db"
#define STORE_POOL_MAX 64 /* connections per store; acquire blocks beyond this */

/* ---- lifecycle ------------------------------------------------------------------------- */

/* Checks a database URL without connecting: syntax, and for PostgreSQL logs a loud WARN when a
 * non-loopback host is used without sslmode=verify-full. Called by store_open(). log may be
 * NULL. Returns STORE_OK or STORE_INVALID (message in err, which may be NULL). */
store_rc store_url_check(const char *url, store_log_fn log, void *log_ctx, char *err,
                         size_t errlen);

/* Opens a store and one connection (so bad credentials / an absent server fail here with
 * STORE_UNAVAILABLE). Does not migrate: call store_migrate() once at start. url NULL or "" means
 * STORE_DEFAULT_URL. log/log_ctx are kept for the store's lifetime (log may be NULL). On success
 * *out is owned by the caller: store_close(). err (may be NULL) receives a message without secrets
 * on failure. */
store_rc store_open(const char *url, store_log_fn log, void *log_ctx, store **out, char *err,
                    size_t errlen);

/* Closes all connections and frees the store. All conns must have been released. NULL ok. */
void store_close(store *st);

/* "sqlite" or "postgres". */
const char *store_backend_name(const store *st);

/* Applies the missing migrations in one transaction (serialized across processes: PG advisory
 * lock, SQLite BEGIN IMMEDIATE). Idempotent. STORE_VERSION if the database is newer than
 * this binary. *version_out (may be NULL) receives the resulting schema version. */
store_rc store_migrate(store *st, int *version_out, char *err, size_t errlen);

/* The clock for every timestamp the store writes (created_at, updated_at, ...), in unix
 * microseconds; NULL = wall clock. Process-wide; set before any thread uses the store (the
 * server points it at the sim clock so stored times and risk windows agree). */
void store_set_clock(int64_t (*fn)(void *ctx), void *ctx);
/* The time (Unix microseconds) the store stamps on what it writes now: that clock, or the real one.
 */
int64_t store_now_us(void);

/* Schema version this binary writes. */
int store_schema_version(void);

/* Cheap liveness check (SELECT 1 on a pooled conn, reconnecting if needed). For health. */
store_rc store_ping(store *st, char *err, size_t errlen);

/* ---- connections and transactions ----------------------------------------------------- */

/* Takes a conn from the pool (opening one lazily; blocks while STORE_POOL_MAX are in use).
 * Returns STORE_UNAVAILABLE if a new connection cannot be opened. The conn stays owned by the
 * store: give it back with store_conn_release(). */
store_rc store_conn_acquire(store *st, store_conn **out);

/* Returns a conn to the pool; an open transaction is rolled back first. NULL ok. */
void store_conn_release(store_conn *c);

/* Message of the last failure on this conn ("" if none). Valid until the next call on c. */
const char *store_conn_errmsg(const store_conn *c);

typedef void (*store_tx_end_fn)(void *ctx, store_conn *c, bool committed);

/* Plain write transaction (PG: BEGIN; SQLite: BEGIN IMMEDIATE). No nesting. */
store_rc store_tx_begin(store_conn *c);

/* Write transaction holding the user's serialization lock until commit/rollback. One upsert
 * of the user's risk_state row creates it if missing, takes the lock (PostgreSQL: the row lock
 * of an updating upsert; SQLite: BEGIN IMMEDIATE already serializes writers) and bumps the
 * user's version, so every committed user transaction moves it by exactly one. A cache of the
 * user's state that knows the version its own last commit left (v) is current exactly when this
 * transaction's version is v + 1. STORE_NOT_FOUND if the user is unknown. */
store_rc store_tx_begin_user(store_conn *c, int64_t user_id);
/* The user's version as last committed (a read outside the user's lock: a copy of the state
 * known exact at this version answers as the database would now). */
store_rc store_user_version(store_conn *c, int64_t user_id, int64_t *version);
/* The version the open user transaction set; 0 outside one. */
int64_t store_tx_version(const store_conn *c);
/* Whether the admin kill switch was on when the user's lock was taken (the same statement
 * reads it: the switch's own transaction holds the global row, not the user's). */
bool store_tx_global_halted(const store_conn *c);
/* Changes (INSERT, UPDATE, DELETE statements) the open transaction ran since it began or took
 * the user's lock, and how many of them were audit appends. A copy of the user's state that
 * reflects every one of them is exact when the transaction commits. */
unsigned store_tx_writes(const store_conn *c);
unsigned store_tx_audits(const store_conn *c);
/* Seed the open user transaction's audit head (what its first append builds on) from a copy
 * known to be current, so the append reads nothing. */
void store_tx_seed_head(store_conn *c, int64_t seq, const unsigned char hash[32]);
/* The head of the user's chain as the open transaction knows it (read or written); false when
 * it has not touched the chain. */
bool store_tx_head(const store_conn *c, int64_t *seq, unsigned char hash[32]);
/* fn(ctx, c, committed) runs once when the open transaction ends: after a successful commit
 * (committed: the store_tx_* readers above still answer for it) or on rollback or a failed
 * commit. One per transaction; the transaction must be open. fn must not use c's store. */
void store_tx_on_end(store_conn *c, store_tx_end_fn fn, void *ctx);
/* The ctx store_tx_on_end registered with fn for the open transaction, else NULL. */
void *store_tx_end_ctx(const store_conn *c, store_tx_end_fn fn);
/* The user whose lock the open transaction holds; 0 for none. */
int64_t store_tx_user(const store_conn *c);

/* Write transaction holding the global lock (global_state row): for the system audit chain and
 * the admin kill switch. */
store_rc store_tx_begin_global(store_conn *c);

/* After any failure inside a transaction, roll it back: PostgreSQL aborts the transaction on
 * an error, and store_tx_commit() then reports STORE_INVALID instead of committing. Lock waits
 * have no timeout of their own; add `options=-c%20lock_timeout%3D5s` to a PostgreSQL URL to
 * bound them (SQLite waits at most 5 s, then STORE_BUSY). */
store_rc store_tx_commit(store_conn *c);
store_rc store_tx_rollback(store_conn *c); /* OK also when the connection is already gone */

/* fn(ctx) runs on the committing thread after the commit of a transaction that appended audit
 * events (appends need a transaction). It must not block or call into the store. Set it before
 * concurrent use, clear it (NULL) before ctx goes away and only once no thread writes any more. */
void store_set_audit_hook(store *st, void (*fn)(void *ctx), void *ctx);
/* fn(ctx, user_id, version) runs on the committing thread after each commit of a user
 * transaction (store_tx_begin_user: version is the one it set), and fn(ctx, 0, 0) after each
 * commit of a global one (store_tx_begin_global) or of one that set the kill switch
 * (store_global_set): how caches of this process learn of its own
 * commits. It must not block or call into the store. Set it before concurrent use and clear it
 * only once no thread commits any more. */
void store_set_commit_hook(store *st, void (*fn)(void *ctx, int64_t user_id, int64_t version),
                           void *ctx);
/* Statements executed (every query and change, not BEGIN/COMMIT) and transactions committed
 * since the store was opened, over all connections: what a step of the order path costs the
 * database (metrics, tests). */
void store_counts(store *st, uint64_t *statements, uint64_t *commits);

/* ---- users and settings --------------------------------------------------------------- */

#define STORE_SALT_LEN 16
#define STORE_SUBJECT_MAX 255 /* bytes, without the NUL */

typedef enum store_role { STORE_ROLE_USER = 0, STORE_ROLE_ADMIN = 1 } store_role;
typedef enum store_mode { STORE_MODE_PAPER = 0, STORE_MODE_LIVE = 1 } store_mode;

typedef struct store_settings {
    store_mode trading_mode;       /* paper by default */
    bool autonomous;               /* false by default */
    int64_t default_broker_key_id; /* 0 = none; must be one of the user's keys */
} store_settings;

typedef struct store_user {
    int64_t id;
    char subject[STORE_SUBJECT_MAX + 1];
    store_role role; /* as recorded at creation */
    unsigned char salt[STORE_SALT_LEN];
    store_settings settings;
    int64_t created_at_us;
} store_user;

/* Returns the user with this external subject, creating it (fresh RAND_bytes salt, paper,
 * not autonomous, a risk_state row) if absent. Race-free across threads and processes: two
 * concurrent first calls create one user. *created (may be NULL) tells which happened.
 * subject: 1..STORE_SUBJECT_MAX bytes. */
store_rc store_user_get_or_create(store_conn *c, const char *subject, store_role role,
                                  store_user *out, bool *created);

/* The user by id. */
store_rc store_user_get(store_conn *c, int64_t user_id, store_user *out);

store_rc store_settings_get(store_conn *c, int64_t user_id, store_settings *out);

/* Replaces the settings. STORE_NOT_FOUND if the user or the default key (of THIS user) does
 * not exist. */
store_rc store_settings_update(store_conn *c, int64_t user_id, const store_settings *in);

/* ---- broker keys (ciphertext only; the plaintext never reaches the store) -------------- */

#define STORE_BROKER_MAX 32
#define STORE_LABEL_MAX 256 /* bytes: 64 characters of UTF-8 (keyvault.proto) */
#define STORE_ENV_MAX 16
#define STORE_MASK_MAX 64
#define STORE_CIPHERTEXT_MAX 4096

typedef struct store_broker_key {
    int64_t id;                                /* output only */
    int64_t user_id;                           /* output only */
    char broker[STORE_BROKER_MAX + 1];         /* "sim", "alpaca" */
    char label[STORE_LABEL_MAX + 1];           /* user's name for it; may be empty */
    char environment[STORE_ENV_MAX + 1];       /* "paper" or "live" */
    char key_id_mask[STORE_MASK_MAX + 1];      /* "PK…9XQ2" */
    char ciphertext[STORE_CIPHERTEXT_MAX + 1]; /* Fernet token text */
    int master_version;                        /* vault master secret version */
    int64_t created_at_us;                     /* output only */
    int64_t last_used_at_us;                   /* output only; 0 = never */
} store_broker_key;

/* Inserts a key for user_id (id/user_id/timestamps of *in are ignored); new id in *id_out. */
store_rc store_key_put(store_conn *c, int64_t user_id, const store_broker_key *in, int64_t *id_out);

/* The user's keys, oldest first. *out is a malloc'd array of *n entries (NULL when 0), the
 * caller frees it with free() — it holds ciphertexts, so callers wipe it if they care. */
store_rc store_key_list(store_conn *c, int64_t user_id, store_broker_key **out, size_t *n);

store_rc store_key_get(store_conn *c, int64_t user_id, int64_t key_id, store_broker_key *out);

/* Deletes the key (and clears it as the user's default). STORE_NOT_FOUND if not the user's. */
store_rc store_key_delete(store_conn *c, int64_t user_id, int64_t key_id);

/* Sets last_used_at_us. */
store_rc store_key_touch(store_conn *c, int64_t user_id, int64_t key_id, int64_t now_us);

/* ADMIN: keys of all users with id > after_id, ascending, at most limit (1..1000). For the
 * vault rewrap. *out as for store_key_list. */
store_rc store_admin_keys_batch(store_conn *c, int64_t after_id, int limit, store_broker_key **out,
                                size_t *n);

/* ADMIN: replaces a key's ciphertext if its master_version is still old_version
 * (STORE_CONFLICT otherwise, STORE_NOT_FOUND if gone). */
store_rc store_admin_key_rewrap(store_conn *c, int64_t key_id, int old_version,
                                const char *new_token, int new_version);

/* ---- orders ----------------------------------------------------------------------------- */

#define STORE_COID_MAX 128
#define STORE_SYMBOL_MAX 32
#define STORE_WORD_MAX 32 /* side, type, tif, status, origin, mode */
#define STORE_VIOLATIONS_MAX 4096
#define STORE_STATUS_MESSAGE_MAX 512
#define STORE_NOTE_MAX 1024 /* bytes: orders.proto allows 256 characters, UTF-8 is <= 4 each */

/* Who asked to cancel an order: actor "user" or "admin" ("" = nobody asked), actor_id the
 * principal's subject, and the CancelOrder call's W3C trace ("" = none). */
typedef struct store_canceler {
    char actor[8];
    char actor_id[STORE_SUBJECT_MAX + 1];
    char trace_id[33], span_id[17];
} store_canceler;

/* An order's or a fill's side. The database holds its text ("buy", "sell"); a row holding
 * anything else reads as STORE_CORRUPT and STORE_SIDE_NONE (a zeroed struct) is refused on
 * write, so no code between the store and the wire takes an unknown side for one of the two. */
typedef enum store_side { STORE_SIDE_NONE = 0, STORE_SIDE_BUY, STORE_SIDE_SELL } store_side;
/* "buy", "sell"; "" for any other value. */
const char *store_side_name(store_side s);
/* The side named text, exactly ("buy", "sell"); false for anything else. */
bool store_side_parse(const char *text, store_side *out);

/* An order's type and time in force, the same way: text only in the database. */
typedef enum store_order_type {
    STORE_TYPE_NONE = 0,
    STORE_TYPE_MARKET,
    STORE_TYPE_LIMIT
} store_order_type;
typedef enum store_tif {
    STORE_TIF_NONE = 0,
    STORE_TIF_DAY,
    STORE_TIF_GTC,
    STORE_TIF_IOC
} store_tif;
const char *store_order_type_name(store_order_type t); /* "market", "limit"; "" otherwise */
bool store_order_type_parse(const char *text, store_order_type *out);
const char *store_tif_name(store_tif t); /* "day", "gtc", "ioc"; "" otherwise */
bool store_tif_parse(const char *text, store_tif *out);

typedef struct store_order {
    int64_t id;                               /* output only */
    int64_t user_id;                          /* output only */
    char client_order_id[STORE_COID_MAX + 1]; /* unique per user */
    char symbol[STORE_SYMBOL_MAX + 1];
    store_side side;
    store_order_type type;
    store_tif tif;
    int64_t qty;            /* 1e9 */
    int64_t limit_price;    /* 1e6; 0 = none (market) */
    int64_t filled_qty;     /* 1e9 */
    int64_t avg_fill_price; /* 1e6 */
    char status[STORE_WORD_MAX + 1];
    char origin[STORE_WORD_MAX + 1]; /* "user", "strategy", "webhook" */
    char mode[STORE_WORD_MAX + 1];   /* "paper", "live" */
    char broker[STORE_BROKER_MAX + 1];
    int64_t broker_key_id; /* 0 = none */
    char broker_order_id[STORE_COID_MAX + 1];
    char violations[STORE_VIOLATIONS_MAX + 1]; /* JSON text, stored verbatim; "" = [] */
    int64_t confirm_by_us;                     /* 0 = none */
    /* Why the broker refused or ended it, sanitised (no secret); "" = nothing to say. */
    char status_message[STORE_STATUS_MESSAGE_MAX + 1];
    int64_t created_at_us;         /* insert: 0 = the store's clock now */
    int64_t updated_at_us;         /* output only (an insert sets it to created_at_us) */
    char note[STORE_NOTE_MAX + 1]; /* the caller's free text; "" = none */
    /* The submitting call's W3C trace (32 and 16 lowercase hex digits); "" = none. Insert only:
     * store_order_update keeps them. */
    char trace_id[33], span_id[17];
    store_canceler cancel_by; /* output only: store_order_cancel_requested sets it */
} store_order;

/* Inserts an order for user_id. STORE_CONFLICT if the client_order_id is already used by this
 * user; then *id_out (may be NULL) is the existing order's id (idempotent submission). */
store_rc store_order_insert(store_conn *c, int64_t user_id, const store_order *in, int64_t *id_out);

store_rc store_order_get(store_conn *c, int64_t user_id, int64_t order_id, store_order *out);
store_rc store_order_get_by_coid(store_conn *c, int64_t user_id, const char *client_order_id,
                                 store_order *out);

/* Updates status, filled_qty, avg_fill_price, broker_order_id, violations and status_message
 * of the user's order (the other fields of *o are ignored) and sets o->updated_at_us to the
 * time it recorded, so *o reads as the stored order does. */
store_rc store_order_update(store_conn *c, int64_t user_id, int64_t order_id, store_order *o);

/* Records that by asks to cancel the user's order (the latest asker wins), so whichever
 * process applies the broker's cancel later audits it as theirs. Inside the user's
 * transaction. STORE_INVALID for an actor other than "user"/"admin", an empty or oversized
 * subject, or a trace that is not "" or 32/16 characters. */
store_rc store_order_cancel_requested(store_conn *c, int64_t user_id, int64_t order_id,
                                      const store_canceler *by);

/* The user's orders with id < before_id (0 = from the newest), newest first, at most limit
 * (1..1000). status NULL = any. *out malloc'd, caller free()s. */
store_rc store_order_list(store_conn *c, int64_t user_id, const char *status, int64_t before_id,
                          int limit, store_order **out, size_t *n);

/* The columns of an order a risk snapshot reads (about 150 bytes; store_order is 4.6 KB with
 * its inline violations), for the scans every admission makes. */
typedef struct store_order_brief {
    int64_t id;
    char symbol[STORE_SYMBOL_MAX + 1];
    store_side side;
    char status[STORE_WORD_MAX + 1];
    int64_t qty;            /* 1e9 */
    int64_t limit_price;    /* 1e6; 0 = none (market) */
    int64_t filled_qty;     /* 1e9 */
    int64_t avg_fill_price; /* 1e6 */
    int64_t created_at_us;
    int64_t updated_at_us;
} store_order_brief;

/* store_order_list's selection (same arguments and order) as brief rows. *out: free(). */
store_rc store_order_brief_list(store_conn *c, int64_t user_id, const char *status,
                                int64_t before_id, int limit, store_order_brief **out, size_t *n);

/*
 * Period reads: the records of a time period, however many others lie around it. Each is one
 * range scan of an index on (user_id, time) (migration 3), so its cost follows the rows in the
 * period, not the user's history. limit: 1..STORE_PERIOD_MAX; a caller that must see the whole
 * period asks for one row more than it can use, and treats a full answer as "too many".
 */
#define STORE_PERIOD_MAX 8192

/* The user's orders created at or after since_us that the risk engine did not reject, newest
 * first (created_at_us, then id), at most limit; exclude_id (0 = none) is left out. symbol
 * non-NULL narrows it to orders with that symbol, side and qty (duplicates of an intent).
 * *out: free(). */
store_rc store_order_brief_since(store_conn *c, int64_t user_id, int64_t since_us,
                                 const char *symbol, store_side side, int64_t qty,
                                 int64_t exclude_id, int limit, store_order_brief **out, size_t *n);

/* The user's open orders (PENDING_CONFIRMATION, PENDING_SUBMIT, ACCEPTED, PARTIALLY_FILLED),
 * oldest first (by id: creation order), at most limit (1..STORE_PERIOD_MAX). *out: free(). */
store_rc store_order_open_brief_list(store_conn *c, int64_t user_id, int limit,
                                     store_order_brief **out, size_t *n);

/* ADMIN (reconciler): open orders of all users (PENDING_CONFIRMATION, PENDING_SUBMIT, ACCEPTED,
 * PARTIALLY_FILLED) with id > after_id, ascending, at most limit (1..1000). */
store_rc store_admin_orders_open(store_conn *c, int64_t after_id, int limit, store_order **out,
                                 size_t *n);

/* ADMIN (broker webhooks): the user owning order_id. */
store_rc store_admin_order_owner(store_conn *c, int64_t order_id, int64_t *user_id);

/* ---- fills, positions, day trades --------------------------------------------------------- */

typedef struct store_fill {
    int64_t id;                              /* output only */
    int64_t order_id;                        /* must be the user's order */
    char broker_fill_id[STORE_COID_MAX + 1]; /* unique per order when not empty */
    char symbol[STORE_SYMBOL_MAX + 1];
    store_side side;
    int64_t qty;   /* 1e9 */
    int64_t price; /* 1e6 */
    int64_t time_us;
} store_fill;

/* STORE_NOT_FOUND if the order is not the user's; STORE_CONFLICT on a duplicate fill id. */
store_rc store_fill_insert(store_conn *c, int64_t user_id, const store_fill *in, int64_t *id_out);
store_rc store_fill_list(store_conn *c, int64_t user_id, int64_t order_id, store_fill **out,
                         size_t *n);

/* The user's fills with since_us <= time_us < until_us (until_us 0 = no upper bound), in
 * execution order (time_us, then id), at most limit (1..STORE_PERIOD_MAX; see the period reads
 * above). *out malloc'd, caller free()s. */
store_rc store_fill_list_period(store_conn *c, int64_t user_id, int64_t since_us, int64_t until_us,
                                int limit, store_fill **out, size_t *n);

typedef struct store_position {
    char symbol[STORE_SYMBOL_MAX + 1];
    int64_t qty;          /* 1e9, signed */
    int64_t avg_cost;     /* 1e6 */
    int64_t realized_pnl; /* 1e6, signed */
} store_position;

/* Insert or replace the user's position in symbol. */
store_rc store_position_put(store_conn *c, int64_t user_id, const store_position *in);
store_rc store_position_get(store_conn *c, int64_t user_id, const char *symbol,
                            store_position *out);
/* All of the user's positions by symbol; *out malloc'd, caller free()s. */
store_rc store_position_list(store_conn *c, int64_t user_id, store_position **out, size_t *n);
/* Every user with an open (non-zero) position in symbol, ascending; *out malloc'd, free(). */
store_rc store_position_holders(store_conn *c, const char *symbol, int64_t **out, size_t *n);
/* Users after after_id (ascending, at most limit) who trade through a stored broker key (a
 * default key is set) and hold an open position: the accounts a periodic mark re-values. */
store_rc store_broker_holders(store_conn *c, int64_t after_id, int limit, int64_t **out, size_t *n);

typedef struct store_day_trade {
    char symbol[STORE_SYMBOL_MAX + 1];
    int trading_day; /* YYYYMMDD */
    int64_t open_order_id;
    int64_t close_order_id;
    int64_t time_us;
} store_day_trade;

store_rc store_day_trade_insert(store_conn *c, int64_t user_id, const store_day_trade *in);
/* The user's day trades with trading_day >= since_day, oldest first. */
store_rc store_day_trade_list(store_conn *c, int64_t user_id, int since_day, store_day_trade **out,
                              size_t *n);

/* ---- risk limits, risk state, global kill switch ------------------------------------------- */

typedef struct store_risk_limits {
    int64_t daily_loss_bps;
    int64_t daily_loss_abs; /* 1e6 */
    int64_t drawdown_bps;
    int64_t max_positions;
    int64_t max_sector_bps;
    int64_t max_notional_bps;
    int64_t collar_bps;
    int64_t dup_window_s;
    int64_t max_orders_per_s;
    bool pdt_enabled;
} store_risk_limits;

/* STORE_NOT_FOUND when the user never set limits (the caller applies its defaults). */
store_rc store_risk_limits_get(store_conn *c, int64_t user_id, store_risk_limits *out);
store_rc store_risk_limits_set(store_conn *c, int64_t user_id, const store_risk_limits *in);

#define STORE_REASON_MAX 256

typedef struct store_risk_state {
    char trading_state[STORE_WORD_MAX + 1]; /* e.g. "ACTIVE", "HALTED"; the risk engine's words */
    char halted_by[STORE_WORD_MAX + 1];     /* "" / "breaker" / "user" / "admin" */
    char halt_reason[STORE_REASON_MAX + 1];
    int64_t breaker_until_us;
    int64_t sod_equity;  /* 1e6 */
    int64_t peak_equity; /* 1e6 */
    int trading_day;     /* YYYYMMDD, 0 = never set */
} store_risk_state;

/* A user's row exists from creation: "ACTIVE", zeros. */
store_rc store_risk_state_get(store_conn *c, int64_t user_id, store_risk_state *out);

/* Only inside store_tx_begin_user(c, user_id) for the same user (STORE_INVALID otherwise). */
store_rc store_risk_state_update(store_conn *c, int64_t user_id, const store_risk_state *in);

typedef struct store_global_state {
    bool halted; /* admin kill switch for everyone */
    char halted_by[STORE_SUBJECT_MAX + 1];
    char halt_reason[STORE_REASON_MAX + 1];
    int64_t updated_at_us;
} store_global_state;

store_rc store_global_get(store_conn *c, store_global_state *out);
store_rc store_global_set(store_conn *c, bool halted, const char *halted_by, const char *reason,
                          int64_t now_us);

/* ---- audit (append-only at the database level, hash-chained per user) ---------------------- */

#define STORE_HASH_LEN 32
#define STORE_ACTOR_MAX 16
#define STORE_ACTOR_ID_MAX 255
#define STORE_ACTION_MAX 64
#define STORE_OBJECT_MAX 128
#define STORE_OUTCOME_MAX 32
#define STORE_DETAILS_MAX 4096

typedef struct store_audit_event {
    int64_t id;      /* output only; global insertion order */
    int64_t user_id; /* 0 = the system chain */
    int64_t seq;     /* 1, 2, ... per chain */
    int64_t time_us;
    char actor[STORE_ACTOR_MAX + 1];       /* "user", "admin", "system", "broker" */
    char actor_id[STORE_ACTOR_ID_MAX + 1]; /* subject or component */
    char action[STORE_ACTION_MAX + 1];
    char object_id[STORE_OBJECT_MAX + 1];
    char outcome[STORE_OUTCOME_MAX + 1];
    char details[STORE_DETAILS_MAX + 1]; /* JSON text, stored byte-exact (it is hashed) */
    unsigned char prev_hash[STORE_HASH_LEN];
    unsigned char hash[STORE_HASH_LEN];
} store_audit_event;

/* The last (seq, hash) of a chain (user_id 0 = system): seq 0 and an all-zero hash when the
 * chain is empty. Call it inside the transaction that appends. */
store_rc store_audit_last(store_conn *c, int64_t user_id, int64_t *seq,
                          unsigned char hash[STORE_HASH_LEN]);

/* Appends ev (the caller computed hash and prev_hash; the store computes nothing crypto).
 * Must run inside a transaction (store_tx_begin_user for a user chain, store_tx_begin_global
 * for the system chain). STORE_CONFLICT unless ev->seq == last seq + 1 and ev->prev_hash ==
 * last hash. */
store_rc store_audit_append(store_conn *c, const store_audit_event *ev);

typedef struct store_audit_filter {
    int64_t after_seq;     /* user list: events with seq > after_seq */
    int64_t after_id;      /* admin list: events with id > after_id */
    int64_t before_seq;    /* user list: events with seq < before_seq; 0 = unbounded */
    int64_t before_id;     /* admin list: events with id < before_id; 0 = unbounded */
    const char *action;    /* NULL = any */
    const char *object_id; /* NULL = any */
    int64_t since_us;      /* 0 = unbounded */
    int64_t until_us;      /* 0 = unbounded (exclusive) */
    int limit;             /* 1..1000 */
    bool newest_first;     /* descending seq / id instead of ascending */
} store_audit_filter;

/* The user's own chain, ascending seq (descending with newest_first). *out malloc'd, caller
 * free()s. */
store_rc store_audit_list(store_conn *c, int64_t user_id, const store_audit_filter *f,
                          store_audit_event **out, size_t *n);

/* ADMIN: events of one chain (user_id > 0, or 0 = system) or of all chains (user_id < 0),
 * ascending id (descending with newest_first). */
store_rc store_admin_audit_list(store_conn *c, int64_t user_id, const store_audit_filter *f,
                                store_audit_event **out, size_t *n);

/* ---- signed audit checkpoints (server/audit/checkpoint.h signs and checks them) ----------- */

#define STORE_SIG_LEN 64

typedef struct store_audit_checkpoint {
    int64_t user_id; /* chain; 0 = system */
    int64_t seq;     /* the head's sequence when signed, >= 1 */
    unsigned char hash[STORE_HASH_LEN];
    int64_t time_us; /* when it was signed */
    uint32_t key_version;
    unsigned char sig[STORE_SIG_LEN];
} store_audit_checkpoint;

/* Stores cp (outside or inside a transaction). STORE_CONFLICT if the same (chain, seq, time)
 * is stored already. */
store_rc store_audit_checkpoint_put(store_conn *c, const store_audit_checkpoint *cp);

/* The newest stored checkpoint of chain (highest sequence, then latest time), as stored: its
 * signature is the caller's to check. STORE_NOT_FOUND when the chain has none. */
store_rc store_audit_checkpoint_latest(store_conn *c, int64_t chain, store_audit_checkpoint *out);

/* Up to cap chains whose newest event is past their newest checkpoint (or that have none),
 * lowest chain first, starting above after_chain (-1 = from the start). */
store_rc store_audit_chains_to_checkpoint(store_conn *c, int64_t after_chain, int64_t *chains,
                                          size_t cap, size_t *n);

#endif
