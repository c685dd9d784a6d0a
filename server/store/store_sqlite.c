/*
 * store_sqlite.c - SQLite backend of the store (the embedded default).
 *
 * Design: one sqlite3 handle per store_conn, opened NOMUTEX (a conn is used by one thread at
 * a time) with WAL, busy_timeout, foreign_keys=ON and synchronous=NORMAL. Statements are
 * prepared once per connection with SQLITE_PREPARE_PERSISTENT and cached by SQL text; the
 * generic SQL's $N placeholders are rewritten to ?N (outside quoted literals) at prepare time.
 * Write transactions are BEGIN IMMEDIATE: SQLite has one writer per database, so that lock is
 * also the per-user serialization primitive (coarser than PostgreSQL's row lock, same
 * guarantee) and avoids the deferred-upgrade SQLITE_BUSY trap of WAL. Before it, the process's
 * writers queue FIFO in the store's writerq (writerq.c), so a writer wakes the moment the one
 * before it commits instead of sleeping out SQLite's busy handler; a write statement outside
 * a transaction queues the same way.
 *
 * Invariants: after every exec the statement is reset and its bindings cleared, so a cached
 * statement never holds a read snapshot or a borrowed parameter.
 */
#include "store_int.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define SQLITE_BUSY_MS 5000

typedef struct sq_stmt {
    const char *key; /* the generic SQL text (static storage) */
    sqlite3_stmt *stmt;
} sq_stmt;

typedef struct sq_conn {
    sqlite3 *db;
    sq_stmt *stmts;
    size_t n, cap;
    store_writerq *wq; /* the store's, shared by every conn */
    bool wlocked;      /* this conn holds wq */
} sq_conn;

static store_rc map_err(store_conn *c, sqlite3 *db, int rc)
{
    int ext = sqlite3_extended_errcode(db);
    const char *msg = sqlite3_errmsg(db); /* names constraints/columns, never values */
    store_rc out;

    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
            out = STORE_CONFLICT;
        else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
            out = STORE_NOT_FOUND;
        else if (ext == SQLITE_CONSTRAINT_TRIGGER)
            out = STORE_DENIED;
        else
            out = STORE_INVALID;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        out = STORE_BUSY;
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        out = STORE_CORRUPT;
        break;
    case SQLITE_NOMEM:
        out = STORE_NOMEM;
        break;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        out = STORE_UNAVAILABLE;
        break;
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        out = STORE_INVALID;
        break;
    default:
        out = STORE_INTERNAL;
    }
    return store_fail(c, out, "sqlite: %s", msg);
}

/* Every connection of the pool keeps its own page cache (2 MB by default), and a busy server
 * opens a dozen: SQLite's heap grew with the database for the whole soak. One process-wide
 * soft limit makes it recycle cache pages instead; the OS page cache still holds the file. */
#define SQ_SOFT_HEAP_LIMIT (8 << 20)

static void sq_global_setup(void)
{
    sqlite3_soft_heap_limit64(SQ_SOFT_HEAP_LIMIT);
}

static store_rc sq_open(store_conn *c)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sq_global_setup);
    static const char setup[] = "PRAGMA journal_mode=WAL;"
                                "PRAGMA foreign_keys=ON;"
                                "PRAGMA synchronous=NORMAL;";
    sq_conn *q = calloc(1, sizeof(*q));
    store_rc rc = STORE_OK;
    int src;

    if (q == NULL)
        return STORE_NOMEM;
    src = sqlite3_open_v2(c->st->target, &q->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = q->db ? map_err(c, q->db, src)
                   : store_fail(c, STORE_NOMEM, "sqlite: cannot allocate a handle");
        if (rc != STORE_NOMEM)
            rc = STORE_UNAVAILABLE;
        goto out;
    }
    q->wq = c->st->be_shared;
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, SQLITE_BUSY_MS);
    src = sqlite3_exec(q->db, setup, NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rc = map_err(c, q->db, src);
        goto out;
    }
    c->impl = q;
    q = NULL;
out:
    if (q != NULL) {
        sqlite3_close_v2(q->db);
        free(q);
    }
    return rc;
}

static void wq_leave(sq_conn *q)
{
    if (q->wlocked) {
        q->wlocked = false;
        store_writerq_release(q->wq);
    }
}

static store_rc wq_enter(store_conn *c, sq_conn *q)
{
    if (!store_writerq_acquire(q->wq, SQLITE_BUSY_MS))
        return store_fail(c, STORE_BUSY, "sqlite: no write lock within %d ms", SQLITE_BUSY_MS);
    q->wlocked = true;
    return STORE_OK;
}

static void sq_close(store_conn *c)
{
    sq_conn *q = c->impl;
    wq_leave(q);
    for (size_t i = 0; i < q->n; i++)
        sqlite3_finalize(q->stmts[i].stmt);
    free(q->stmts);
    sqlite3_close_v2(q->db);
    free(q);
    c->impl = NULL;
}

/* Copies sql with $N -> ?N outside '...' and "..." literals. Caller frees. */
static char *translate(const char *sql)
{
    size_t len = strlen(sql);
    char *out = malloc(len + 1);
    char quote = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i <= len; i++) {
        char ch = sql[i];
        if (quote) {
            if (ch == quote)
                quote = 0;
        } else if (ch == '\'' || ch == '"') {
            quote = ch;
        } else if (ch == '$' && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
            ch = '?';
        }
        out[i] = ch;
    }
    return out;
}

static store_rc get_stmt(store_conn *c, const char *sql, sqlite3_stmt **out)
{
    sq_conn *q = c->impl;
    char *tr = NULL;
    sqlite3_stmt *st = NULL;
    store_rc rc = STORE_OK;
    int src;

    for (size_t i = 0; i < q->n; i++) {
        if (q->stmts[i].key == sql || strcmp(q->stmts[i].key, sql) == 0) {
            *out = q->stmts[i].stmt;
            return STORE_OK;
        }
    }
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 32;
        sq_stmt *grown = realloc(q->stmts, cap * sizeof(*grown));
        if (grown == NULL)
            return store_fail(c, STORE_NOMEM, "sqlite: out of memory");
        q->stmts = grown;
        q->cap = cap;
    }
    tr = translate(sql);
    if (tr == NULL)
        return store_fail(c, STORE_NOMEM, "sqlite: out of memory");
    src = sqlite3_prepare_v3(q->db, tr, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (src != SQLITE_OK) {
        rc = map_err(c, q->db, src);
        goto out;
    }
    q->stmts[q->n].key = sql;
    q->stmts[q->n].stmt = st;
    q->n++;
    *out = st;
out:
    free(tr);
    return rc;
}

static store_rc bind_all(store_conn *c, sqlite3_stmt *st, const db_val *p, int n)
{
    sq_conn *q = c->impl;
    if (sqlite3_bind_parameter_count(st) > n)
        return store_fail(c, STORE_INTERNAL, "sqlite: statement needs more parameters");
    for (int i = 0; i < n; i++) {
        int src;
        switch (p[i].type) {
        case DBV_INT:
            src = sqlite3_bind_int64(st, i + 1, p[i].i);
            break;
        case DBV_TEXT:
            src = sqlite3_bind_text64(st, i + 1, p[i].p, p[i].n, SQLITE_STATIC, SQLITE_UTF8);
            break;
        case DBV_BLOB:
            src = sqlite3_bind_blob64(st, i + 1, p[i].p ? p[i].p : "", p[i].n, SQLITE_STATIC);
            break;
        default:
            src = sqlite3_bind_null(st, i + 1);
        }
        if (src != SQLITE_OK)
            return map_err(c, q->db, src);
    }
    return STORE_OK;
}

static store_rc read_row(sqlite3_stmt *st, db_res *res)
{
    int ncols = sqlite3_column_count(st);
    db_val *cells = calloc((size_t)(ncols ? ncols : 1), sizeof(*cells));
    store_rc rc = STORE_OK;
    if (cells == NULL)
        return STORE_NOMEM;
    for (int i = 0; i < ncols; i++) {
        int t = sqlite3_column_type(st, i);
        if (t == SQLITE_INTEGER) {
            cells[i].type = DBV_INT;
            cells[i].i = sqlite3_column_int64(st, i);
        } else if (t == SQLITE_TEXT || t == SQLITE_BLOB) {
            const void *src = t == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, i)
                                               : sqlite3_column_blob(st, i);
            size_t n = (size_t)sqlite3_column_bytes(st, i);
            char *copy = malloc(n + 1);
            if (copy == NULL) {
                rc = STORE_NOMEM;
                break;
            }
            if (n > 0)
                memcpy(copy, src, n);
            copy[n] = '\0';
            cells[i].type = t == SQLITE_TEXT ? DBV_TEXT : DBV_BLOB;
            cells[i].p = copy;
            cells[i].n = n;
        } else if (t == SQLITE_FLOAT) {
            rc = STORE_CORRUPT; /* the schema has no floating point column */
            break;
        }
    }
    if (rc == STORE_OK)
        rc = db_res_add_row(res, ncols, cells);
    if (rc != STORE_OK)
        for (int i = 0; i < ncols; i++)
            free((void *)cells[i].p);
    free(cells);
    return rc;
}

static store_rc sq_exec(store_conn *c, const char *sql, const db_val *p, int n, db_res *res)
{
    sq_conn *q = c->impl;
    sqlite3_stmt *st = NULL;
    store_rc rc;
    int src;

    rc = get_stmt(c, sql, &st);
    if (rc != STORE_OK)
        return rc;
    rc = bind_all(c, st, p, n);
    /* A write outside a transaction takes SQLite's write lock for itself: queue for it too. */
    bool lone_write = rc == STORE_OK && !q->wlocked && sqlite3_get_autocommit(q->db) != 0 &&
                      sqlite3_stmt_readonly(st) == 0;
    if (lone_write)
        rc = wq_enter(c, q);
    while (rc == STORE_OK) {
        src = sqlite3_step(st);
        if (src == SQLITE_DONE)
            break;
        if (src != SQLITE_ROW) {
            rc = map_err(c, q->db, src);
            break;
        }
        if (res != NULL) {
            rc = read_row(st, res);
            if (rc != STORE_OK)
                store_fail(c, rc, "sqlite: cannot read a row");
        }
    }
    if (rc == STORE_OK && res != NULL)
        res->changes = sqlite3_changes64(q->db);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (lone_write)
        wq_leave(q);
    return rc;
}

static store_rc sq_script(store_conn *c, const char *sql)
{
    sq_conn *q = c->impl;
    int src = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? STORE_OK : map_err(c, q->db, src);
}

static store_rc sq_begin(store_conn *c)
{
    sq_conn *q = c->impl;
    store_rc rc = q->wlocked ? STORE_OK : wq_enter(c, q);
    if (rc == STORE_OK)
        rc = sq_exec(c, "BEGIN IMMEDIATE", NULL, 0, NULL);
    if (rc != STORE_OK)
        wq_leave(q);
    return rc;
}

static store_rc sq_commit(store_conn *c)
{
    sq_conn *q = c->impl;
    store_rc rc = sq_exec(c, "COMMIT", NULL, 0, NULL);
    if (rc != STORE_OK && sqlite3_get_autocommit(q->db) == 0)
        sq_exec(c, "ROLLBACK", NULL, 0, NULL); /* never leave a tx open on a pooled conn */
    wq_leave(q);
    return rc;
}

static store_rc sq_rollback(store_conn *c)
{
    sq_conn *q = c->impl;
    store_rc rc = STORE_OK;
    if (sqlite3_get_autocommit(q->db) == 0) /* else SQLite already rolled back (SQLITE_FULL) */
        rc = sq_exec(c, "ROLLBACK", NULL, 0, NULL);
    wq_leave(q);
    return rc;
}

static store_rc sq_attach(store *st)
{
    st->be_shared = store_writerq_new();
    return st->be_shared != NULL ? STORE_OK : STORE_NOMEM;
}

static void sq_detach(store *st)
{
    store_writerq_free(st->be_shared);
    st->be_shared = NULL;
}

static store_rc sq_ping(store_conn *c)
{
    return sq_exec(c, "SELECT 1", NULL, 0, NULL);
}

const store_backend store_sqlite_backend = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .exec = sq_exec,
    .script = sq_script,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .ping = sq_ping,
    .attach = sq_attach,
    .detach = sq_detach,
    .global_lock_sql = NULL,
    .migrate_lock_sql = NULL,
    .migrations = store_sqlite_migrations,
    .nmigrations = STORE_SCHEMA_VERSION,
};
