/*
 * store_schema.c - versioned schema migrations, one C string per version per dialect.
 *
 * Design: the table definitions are written once as a macro over the few tokens where the
 * dialects differ (auto-increment primary key, binary type); triggers differ for real and are
 * written per dialect. Migration i (0-based) brings the schema to version i + 1; store_migrate
 * applies the missing ones in one transaction and records each in schema_version. A released
 * migration is never edited: changes go into a new version appended to both arrays.
 *
 * Units: money/price columns are BIGINT fixed point 1e6 per currency unit; quantities BIGINT
 * 1e9 per share; *_bps plain basis points; *_us microseconds since the Unix epoch; trading_day
 * INTEGER YYYYMMDD. Booleans are INTEGER 0/1. JSON (violations, details) is TEXT so the bytes
 * stored are the bytes returned (audit details are hashed).
 *
 * Invariants: no plaintext secret column exists (broker_keys holds a Fernet token only);
 * audit_events is append-only (UPDATE/DELETE raise on both; TRUNCATE raises on PostgreSQL).
 */
#include "store_int.h"

/* PK: auto id primary key; BLOB: binary type. */
#define SCHEMA_V1(PK, BLOB)                                                                        \
    "CREATE TABLE users ("                                                                         \
    " id " PK ","                                                                                  \
    " subject TEXT NOT NULL UNIQUE,"                                                               \
    " role TEXT NOT NULL CHECK (role IN ('user', 'admin')),"                                       \
    " salt " BLOB " NOT NULL CHECK (length(salt) = 16),"                                           \
    " trading_mode TEXT NOT NULL DEFAULT 'paper' CHECK (trading_mode IN ('paper', 'live')),"       \
    " autonomous INTEGER NOT NULL DEFAULT 0 CHECK (autonomous IN (0, 1)),"                         \
    " default_broker_key_id BIGINT,"                                                               \
    " created_at_us BIGINT NOT NULL);"                                                             \
    "CREATE TABLE broker_keys ("                                                                   \
    " id " PK ","                                                                                  \
    " user_id BIGINT NOT NULL REFERENCES users (id),"                                              \
    " broker TEXT NOT NULL,"                                                                       \
    " label TEXT NOT NULL,"                                                                        \
    " environment TEXT NOT NULL CHECK (environment IN ('paper', 'live')),"                         \
    " key_id_mask TEXT NOT NULL,"                                                                  \
    " ciphertext TEXT NOT NULL," /* Fernet token; there is no plaintext column */                  \
    " master_version INTEGER NOT NULL,"                                                            \
    " created_at_us BIGINT NOT NULL,"                                                              \
    " last_used_at_us BIGINT);"                                                                    \
    "CREATE INDEX broker_keys_user ON broker_keys (user_id, id);"                                  \
    "CREATE TABLE orders ("                                                                        \
    " id " PK ","                                                                                  \
    " user_id BIGINT NOT NULL REFERENCES users (id),"                                              \
    " client_order_id TEXT NOT NULL,"                                                              \
    " symbol TEXT NOT NULL,"                                                                       \
    " side TEXT NOT NULL,"                                                                         \
    " type TEXT NOT NULL,"                                                                         \
    " tif TEXT NOT NULL,"                                                                          \
    " qty BIGINT NOT NULL,"                      /* 1e9 */                                         \
    " limit_price BIGINT,"                       /* 1e6, NULL = market */                          \
    " filled_qty BIGINT NOT NULL DEFAULT 0,"     /* 1e9 */                                         \
    " avg_fill_price BIGINT NOT NULL DEFAULT 0," /* 1e6 */                                         \
    " status TEXT NOT NULL,"                                                                       \
    " origin TEXT NOT NULL,"                                                                       \
    " mode TEXT NOT NULL,"                                                                         \
    " broker TEXT NOT NULL,"                                                                       \
    " broker_key_id BIGINT," /* no FK: history outlives a deleted key */                           \
    " broker_order_id TEXT,"                                                                       \
    " violations TEXT NOT NULL DEFAULT '[]',"                                                      \
    " confirm_by_us BIGINT,"                                                                       \
    " created_at_us BIGINT NOT NULL,"                                                              \
    " updated_at_us BIGINT NOT NULL,"                                                              \
    " UNIQUE (user_id, client_order_id));"                                                         \
    "CREATE INDEX orders_user_status ON orders (user_id, status);"                                 \
    "CREATE TABLE fills ("                                                                         \
    " id " PK ","                                                                                  \
    " user_id BIGINT NOT NULL REFERENCES users (id),"                                              \
    " order_id BIGINT NOT NULL REFERENCES orders (id),"                                            \
    " broker_fill_id TEXT,"                                                                        \
    " symbol TEXT NOT NULL,"                                                                       \
    " side TEXT NOT NULL,"                                                                         \
    " qty BIGINT NOT NULL,"   /* 1e9 */                                                            \
    " price BIGINT NOT NULL," /* 1e6 */                                                            \
    " time_us BIGINT NOT NULL,"                                                                    \
    " UNIQUE (order_id, broker_fill_id));"                                                         \
    "CREATE INDEX fills_user_order ON fills (user_id, order_id);"                                  \
    "CREATE TABLE positions ("                                                                     \
    " user_id BIGINT NOT NULL REFERENCES users (id),"                                              \
    " symbol TEXT NOT NULL,"                                                                       \
    " qty BIGINT NOT NULL,"          /* 1e9, signed */                                             \
    " avg_cost BIGINT NOT NULL,"     /* 1e6 */                                                     \
    " realized_pnl BIGINT NOT NULL," /* 1e6, signed */                                             \
    " updated_at_us BIGINT NOT NULL,"                                                              \
    " PRIMARY KEY (user_id, symbol));"                                                             \
    "CREATE TABLE day_trades ("                                                                    \
    " id " PK ","                                                                                  \
    " user_id BIGINT NOT NULL REFERENCES users (id),"                                              \
    " symbol TEXT NOT NULL,"                                                                       \
    " trading_day INTEGER NOT NULL,"                                                               \
    " open_order_id BIGINT,"                                                                       \
    " close_order_id BIGINT,"                                                                      \
    " time_us BIGINT NOT NULL);"                                                                   \
    "CREATE INDEX day_trades_user_day ON day_trades (user_id, trading_day);"                       \
    "CREATE TABLE risk_limits ("                                                                   \
    " user_id BIGINT PRIMARY KEY REFERENCES users (id),"                                           \
    " daily_loss_bps BIGINT NOT NULL,"                                                             \
    " daily_loss_abs BIGINT NOT NULL," /* 1e6 */                                                   \
    " drawdown_bps BIGINT NOT NULL,"                                                               \
    " max_positions BIGINT NOT NULL,"                                                              \
    " max_sector_bps BIGINT NOT NULL,"                                                             \
    " max_notional_bps BIGINT NOT NULL,"                                                           \
    " collar_bps BIGINT NOT NULL,"                                                                 \
    " dup_window_s BIGINT NOT NULL,"                                                               \
    " max_orders_per_s BIGINT NOT NULL,"                                                           \
    " pdt_enabled INTEGER NOT NULL CHECK (pdt_enabled IN (0, 1)),"                                 \
    " updated_at_us BIGINT NOT NULL);"                                                             \
    "CREATE TABLE risk_state (" /* also the per-user lock row (FOR UPDATE) */                      \
    " user_id BIGINT PRIMARY KEY REFERENCES users (id),"                                           \
    " trading_state TEXT NOT NULL DEFAULT 'ACTIVE',"                                               \
    " halted_by TEXT NOT NULL DEFAULT '',"                                                         \
    " halt_reason TEXT NOT NULL DEFAULT '',"                                                       \
    " breaker_until_us BIGINT NOT NULL DEFAULT 0,"                                                 \
    " sod_equity BIGINT NOT NULL DEFAULT 0,"  /* 1e6 */                                            \
    " peak_equity BIGINT NOT NULL DEFAULT 0," /* 1e6 */                                            \
    " trading_day INTEGER NOT NULL DEFAULT 0,"                                                     \
    " updated_at_us BIGINT NOT NULL DEFAULT 0);"                                                   \
    "CREATE TABLE global_state ("                                                                  \
    " id INTEGER PRIMARY KEY CHECK (id = 1),"                                                      \
    " halted INTEGER NOT NULL DEFAULT 0 CHECK (halted IN (0, 1)),"                                 \
    " halted_by TEXT NOT NULL DEFAULT '',"                                                         \
    " halt_reason TEXT NOT NULL DEFAULT '',"                                                       \
    " updated_at_us BIGINT NOT NULL DEFAULT 0);"                                                   \
    "INSERT INTO global_state (id) VALUES (1);"                                                    \
    "CREATE TABLE audit_events ("                                                                  \
    " id " PK ","                                                                                  \
    " chain BIGINT NOT NULL," /* user_id, or 0 for the system chain */                             \
    " seq BIGINT NOT NULL CHECK (seq >= 1),"                                                       \
    " user_id BIGINT REFERENCES users (id),"                                                       \
    " time_us BIGINT NOT NULL,"                                                                    \
    " actor TEXT NOT NULL,"                                                                        \
    " actor_id TEXT NOT NULL,"                                                                     \
    " action TEXT NOT NULL,"                                                                       \
    " object_id TEXT NOT NULL,"                                                                    \
    " outcome TEXT NOT NULL,"                                                                      \
    " details TEXT NOT NULL,"                                                                      \
    " prev_hash " BLOB " NOT NULL CHECK (length(prev_hash) = 32),"                                 \
    " hash " BLOB " NOT NULL CHECK (length(hash) = 32),"                                           \
    " CHECK (chain = COALESCE(user_id, 0)),"                                                       \
    " UNIQUE (chain, seq));"                                                                       \
    "CREATE INDEX audit_events_time ON audit_events (chain, time_us);"

static const char sqlite_v1[] =
    SCHEMA_V1("INTEGER PRIMARY KEY AUTOINCREMENT",
              "BLOB") "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events"
                      " BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;"
                      "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events"
                      " BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;";

static const char pg_v1[] = SCHEMA_V1(
    "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    "BYTEA") "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$"
             " BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $f$;"
             "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events"
             " FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();"
             "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events"
             " FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();";

/* v2: the order path reads a user's most recent orders (newest first) on every admission and
 * every broker report; without this index that read sorts the user's whole order history. */
#define SCHEMA_V2 "CREATE INDEX orders_user_recent ON orders (user_id, id);"
static const char sqlite_v2[] = SCHEMA_V2;
static const char pg_v2[] = SCHEMA_V2;

/* v3: the risk snapshot reads periods, not a window of recent orders (issue 22): today's fills
 * (fills since the trading day's start) and the orders of the rate and duplicate windows (orders
 * created since now minus the window), each one range scan on (user_id, time); and every open
 * order, from a partial index that holds only open orders (without it SQLite walks the user's
 * whole history in id order to avoid a sort). */
#define SCHEMA_V3                                                                                  \
    "CREATE INDEX fills_user_time ON fills (user_id, time_us);"                                    \
    "CREATE INDEX orders_user_created ON orders (user_id, created_at_us);"                         \
    "CREATE INDEX orders_user_open ON orders (user_id, id) WHERE status IN"                        \
    " ('PENDING_CONFIRMATION', 'PENDING_SUBMIT', 'ACCEPTED', 'PARTIALLY_FILLED');"
static const char sqlite_v3[] = SCHEMA_V3;
static const char pg_v3[] = SCHEMA_V3;

/* v4: mark-to-market (issue 18) asks which users hold a symbol whose quote moved; only open
 * positions matter, so the partial index holds nothing for closed ones. */
#define SCHEMA_V4                                                                                  \
    "CREATE INDEX positions_open_symbol ON positions (symbol, user_id) WHERE qty <> 0;"
static const char sqlite_v4[] = SCHEMA_V4;
static const char pg_v4[] = SCHEMA_V4;

/* v5: why the broker refused or ended an order (issue 23), kept with the order so GetOrder and
 * ListOrders show it after the call that learned it: Order.status_message. Sanitised by the
 * broker adapter (printable ASCII, credentials masked); "" when there is nothing to say. */
#define SCHEMA_V5 "ALTER TABLE orders ADD COLUMN status_message TEXT NOT NULL DEFAULT '';"
static const char sqlite_v5[] = SCHEMA_V5;
static const char pg_v5[] = SCHEMA_V5;

/* v6: SubmitOrderRequest.note is kept with the order and shown back in Order.note
 * (orders.proto); orders before v6 have no note. */
#define SCHEMA_V6 "ALTER TABLE orders ADD COLUMN note TEXT NOT NULL DEFAULT '';"
static const char sqlite_v6[] = SCHEMA_V6;
static const char pg_v6[] = SCHEMA_V6;

/* v7: the per-user version (issue 18): store_tx_begin_user bumps it in the statement that takes
 * the user's lock, so a cache of the user's state can tell whether anyone else changed it. */
#define SCHEMA_V7 "ALTER TABLE risk_state ADD COLUMN version BIGINT NOT NULL DEFAULT 0;"
static const char sqlite_v7[] = SCHEMA_V7;
static const char pg_v7[] = SCHEMA_V7;

/* v8: signed audit checkpoints (issue 20 part 3, server/audit/checkpoint.h): every head the
 * server signed, by chain. Not the trust anchor (whoever can write this table can delete rows;
 * the log and the clients keep copies): it tells the periodic job which chains moved since
 * their last checkpoint, and shows the schedule ran. */
#define SCHEMA_V8(BLOB)                                                                            \
    "CREATE TABLE audit_checkpoints ("                                                             \
    " chain BIGINT NOT NULL,"                                                                      \
    " seq BIGINT NOT NULL CHECK (seq >= 1),"                                                       \
    " hash " BLOB " NOT NULL CHECK (length(hash) = 32),"                                           \
    " time_us BIGINT NOT NULL,"                                                                    \
    " key_version BIGINT NOT NULL,"                                                                \
    " signature " BLOB " NOT NULL CHECK (length(signature) = 64),"                                 \
    " PRIMARY KEY (chain, seq, time_us));"
static const char sqlite_v8[] = SCHEMA_V8("BLOB");
static const char pg_v8[] = SCHEMA_V8("BYTEA");

/* v9: the W3C trace of the call that submitted an order (issue 21), so the events applied
 * later in the background -- a fill, an expiry, a broker's cancel or replace, found by the
 * reconciler, a trade_updates stream or the sim -- carry the trace the trade began with.
 * Orders before v9 have none (""). */
#define SCHEMA_V9                                                                                  \
    "ALTER TABLE orders ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';"                             \
    "ALTER TABLE orders ADD COLUMN span_id TEXT NOT NULL DEFAULT '';"
static const char sqlite_v9[] = SCHEMA_V9;
static const char pg_v9[] = SCHEMA_V9;

/* v10: who asked to cancel an order (issue 21): the principal's kind and subject and the
 * CancelOrder call's trace, written before the broker is asked. A broker's cancel report,
 * applied later by any replica (a poll, a trade_updates stream), is audited as theirs. "" =
 * nobody asked. */
#define SCHEMA_V10                                                                                 \
    "ALTER TABLE orders ADD COLUMN cancel_actor TEXT NOT NULL DEFAULT '';"                         \
    "ALTER TABLE orders ADD COLUMN cancel_actor_id TEXT NOT NULL DEFAULT '';"                      \
    "ALTER TABLE orders ADD COLUMN cancel_trace_id TEXT NOT NULL DEFAULT '';"                      \
    "ALTER TABLE orders ADD COLUMN cancel_span_id TEXT NOT NULL DEFAULT '';"
static const char sqlite_v10[] = SCHEMA_V10;
static const char pg_v10[] = SCHEMA_V10;

/* One line per array: tests/deploy/config_schema_planted.sh appends a version with sed. */
/* clang-format off */
const char *const store_sqlite_migrations[STORE_SCHEMA_VERSION] = {sqlite_v1, sqlite_v2, sqlite_v3, sqlite_v4, sqlite_v5, sqlite_v6, sqlite_v7, sqlite_v8, sqlite_v9, sqlite_v10};
const char *const store_pg_migrations[STORE_SCHEMA_VERSION] = {pg_v1, pg_v2, pg_v3, pg_v4, pg_v5, pg_v6, pg_v7, pg_v8, pg_v9, pg_v10};
/* clang-format on */
