/*
 * store_int.h - internals shared by the store's generic layer and its two backends.
 *
 * The generic layer (store.c, store_ops.c) speaks SQL written once with $1..$n placeholders,
 * parameters as db_val (int64 / text / blob / NULL) and results materialized into db_res.
 * A backend is a const vtable (store_backend); it owns its native connection in conn->impl,
 * caches prepared statements per connection keyed by the SQL text, and maps native errors to
 * store_rc with a message that never contains parameter values.
 */
#ifndef TW_STORE_INT_H
#define TW_STORE_INT_H

#include "store.h"

#include <pthread.h>

typedef enum { DBV_NULL = 0, DBV_INT, DBV_TEXT, DBV_BLOB } db_type;

/* A parameter (borrowed pointers) or a result cell (owned, text NUL-terminated). */
typedef struct db_val {
    db_type type;
    int64_t i;
    const void *p;
    size_t n;
} db_val;

/* A NULL parameter carries the type it stands for in .i (DBV_INT / DBV_TEXT), so PostgreSQL
 * can prepare the statement with a typed parameter; P_NULL leaves the type to the server. */
#define P_NULL ((db_val){DBV_NULL, 0, NULL, 0})
#define P_NULL_INT ((db_val){DBV_NULL, DBV_INT, NULL, 0})
#define P_NULL_TEXT ((db_val){DBV_NULL, DBV_TEXT, NULL, 0})
#define P_INT(x) ((db_val){DBV_INT, (int64_t)(x), NULL, 0})
#define P_BLOB(ptr, len) ((db_val){DBV_BLOB, 0, (ptr), (len)})
db_val P_TEXT(const char *s);     /* NULL -> P_NULL_TEXT */
db_val P_TEXT_OPT(const char *s); /* NULL or "" -> P_NULL_TEXT */
db_val P_ID_OPT(int64_t id);      /* 0 -> P_NULL_INT */

/* Materialized result rows. Owns its cells. */
typedef struct db_res {
    int nrows, ncols;
    db_val *cells;   /* nrows * ncols, row-major */
    size_t cap_rows; /* rows cells has room for (grown by doubling) */
    int64_t changes;
} db_res;

void db_res_init(db_res *r);
void db_res_clear(db_res *r); /* frees cells, leaves an empty result */
/* Appends a row of ncols cells (each cell's p is malloc'd and taken over). */
store_rc db_res_add_row(db_res *r, int ncols, db_val *cells);
int64_t db_int(const db_res *r, int row, int col);      /* NULL -> 0 */
const char *db_text(const db_res *r, int row, int col); /* NULL -> "" */
store_rc db_copy_text(const db_res *r, int row, int col, char *buf, size_t size);
store_rc db_copy_blob(const db_res *r, int row, int col, unsigned char *buf, size_t len);

/* The writers of one embedded database file in this process, queued FIFO (writerq.c). */
typedef struct store_writerq store_writerq;
store_writerq *store_writerq_new(void);
void store_writerq_free(store_writerq *q);
/* Waits for the lock at most timeout_ms; false if it did not come (nothing held then). */
bool store_writerq_acquire(store_writerq *q, int timeout_ms);
void store_writerq_release(store_writerq *q); /* by the holder only; hands it to the oldest */
void store_writerq_stats(store_writerq *q, uint64_t *waits, uint64_t *timeouts);

typedef struct store_backend {
    const char *name;
    /* Open conn->impl for the store's target. */
    store_rc (*open)(store_conn *c);
    void (*close)(store_conn *c);
    /* Runs one statement (cached prepared by sql pointer/text). res may be NULL. */
    store_rc (*exec)(store_conn *c, const char *sql, const db_val *params, int nparams,
                     db_res *res);
    /* Runs a multi-statement script without parameters (migrations). */
    store_rc (*script)(store_conn *c, const char *sql);
    store_rc (*begin)(store_conn *c); /* write transaction */
    store_rc (*commit)(store_conn *c);
    store_rc (*rollback)(store_conn *c);
    store_rc (*ping)(store_conn *c);
    /* Optional: state shared by every connection of one store (st->be_shared), set up before
     * the first connection opens and torn down after the last one closed. */
    store_rc (*attach)(store *st);
    void (*detach)(store *st);
    /* SQL taking the global row's lock inside begin, NULL if begin already serializes writers
     * (a user's lock is the version upsert of store_tx_begin_user on both). */
    const char *global_lock_sql;
    /* Serializes concurrent migrators inside the migration transaction; NULL if begin does. */
    const char *migrate_lock_sql;
    /* Migrations: migrations[i] brings the schema to version i + 1. */
    const char *const *migrations;
    int nmigrations;
} store_backend;

extern const store_backend store_sqlite_backend;
extern const store_backend store_pg_backend;

struct store {
    const store_backend *be;
    char *target; /* sqlite: file path; postgres: the URL (holds a password: wiped on close) */
    store_log_fn log;
    void *log_ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    store_conn *idle; /* free list */
    size_t nopen;
    void (*audit_hook)(void *ctx); /* store_set_audit_hook */
    void *audit_hook_ctx;
    void (*commit_hook)(void *ctx, int64_t user_id, int64_t version); /* set before use */
    void *commit_hook_ctx;
    uint64_t n_statements, n_commits; /* store_counts; atomic */
    void *be_shared;                  /* the backend's attach state (sqlite: the writerq) */
};

struct store_conn {
    store *st;
    void *impl;
    store_conn *next_idle;
    bool in_tx;
    int64_t tx_user;    /* user whose lock the open tx holds, 0 = none */
    bool tx_global;     /* the open tx holds the global lock */
    bool tx_global_set; /* the open tx changed the kill switch (store_global_set) */
    bool tx_audit;      /* the open tx appended audit events */
    /* The head of one audit chain as this transaction last read or wrote it. Valid only inside
     * the transaction that holds that chain's lock (no one else can append meanwhile), so an
     * append re-reads nothing it already knows; cleared when the transaction ends. */
    int64_t tx_version;     /* the user's version this transaction set (store_tx_version) */
    bool tx_halted;         /* the admin kill switch as the user's lock found it */
    unsigned tx_writes;     /* INSERT/UPDATE/DELETE run since the lock (audit appends included) */
    unsigned tx_audits;     /* audit events appended */
    store_tx_end_fn tx_end; /* store_tx_on_end */
    void *tx_end_ctx;
    bool head_valid;
    int64_t head_chain, head_seq;
    unsigned char head_hash[32];
    char errmsg[256]; /* last failure; never a secret or a parameter value */
};

/* Sets c->errmsg (printf-style) and returns rc. */
store_rc store_fail(store_conn *c, store_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void store_logf(const store *st, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Runs sql on c. res may be NULL. */
store_rc db_exec(store_conn *c, const char *sql, const db_val *p, int n, db_res *res);

/* Schema version of this binary: both dialects have exactly this many migrations. */
#define STORE_SCHEMA_VERSION 10
extern const char *const store_sqlite_migrations[STORE_SCHEMA_VERSION];
extern const char *const store_pg_migrations[STORE_SCHEMA_VERSION];

#endif
