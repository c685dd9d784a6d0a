/*
 * store_pg.c - PostgreSQL backend of the store (libpq).
 *
 * Design: one PGconn per store_conn. The URL goes to libpq as is (after our defaults for
 * connect_timeout, client_encoding and application_name, which the URL may override), so
 * sslmode=verify-full&sslrootcert=... work unchanged. Statements are prepared once per
 * connection under generated names (tw1, tw2, ...) with parameter types taken from the first
 * call (int8 / text / bytea; NULL lets the server infer); results come back in binary format
 * and are converted by column type.
 *
 * Resilience: before each use an idle connection is probed without blocking (PQconsumeInput),
 * so a connection the server closed (restart, failover) is noticed before a statement is sent;
 * it is then PQreset and the statement cache is dropped (prepared statements are per session).
 * While the server is down every call returns STORE_UNAVAILABLE; the first call after it is
 * back succeeds on the same store. A statement is never re-sent after it may have reached the
 * server, and a connection lost inside a transaction fails that transaction (UNAVAILABLE).
 *
 * Invariants: error messages carry libpq's primary message only (no DETAIL, which can echo
 * row values), never the URL.
 */
#include "store_int.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25

typedef struct pg_stmt {
    const char *key; /* the SQL text (static storage) */
    char name[16];
} pg_stmt;

typedef struct pg_conn {
    PGconn *pg;
    pg_stmt *stmts;
    size_t n, cap;
    unsigned next_id;
    bool begin_pending; /* BEGIN goes out with the transaction's first statement (pg_exec) */
    bool stuck;         /* a pipeline could not be left: the session is reset before reuse */
} pg_conn;

/* First line of libpq's connection error, without the trailing newline. */
static store_rc conn_fail(store_conn *c, PGconn *pg, const char *what)
{
    const char *m = pg ? PQerrorMessage(pg) : "out of memory";
    int len = (int)strcspn(m, "\n");
    return store_fail(c, STORE_UNAVAILABLE, "postgres: %s: %.*s", what, len > 200 ? 200 : len, m);
}

/* Server notices (e.g. "relation already exists, skipping") go to the caller's log at debug
 * level instead of libpq's default, stderr. */
static void on_notice(void *arg, const char *message)
{
    store_conn *c = arg;
    int len = (int)strcspn(message, "\n");
    store_logf(c->st, STORE_LOG_DEBUG, "store: postgres notice: %.*s", len > 300 ? 300 : len,
               message);
}

static store_rc pg_open(store_conn *c)
{
    const char *keys[] = {"connect_timeout", "client_encoding", "application_name", "dbname", NULL};
    const char *vals[] = {"10", "UTF8", "tradewinkd", c->st->target, NULL};
    pg_conn *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return STORE_NOMEM;
    q->pg = PQconnectdbParams(keys, vals, 1);
    if (q->pg == NULL || PQstatus(q->pg) != CONNECTION_OK) {
        store_rc rc = conn_fail(c, q->pg, "cannot connect");
        PQfinish(q->pg);
        free(q);
        return rc;
    }
    PQsetNoticeProcessor(q->pg, on_notice, c);
    c->impl = q;
    return STORE_OK;
}

static void pg_close(store_conn *c)
{
    pg_conn *q = c->impl;
    PQfinish(q->pg);
    free(q->stmts);
    free(q);
    c->impl = NULL;
}

/* Makes sure the connection is usable, resetting it when the server dropped it. */
static store_rc ensure_conn(store_conn *c)
{
    pg_conn *q = c->impl;
    if (PQstatus(q->pg) == CONNECTION_OK && PQtransactionStatus(q->pg) == PQTRANS_IDLE &&
        !q->begin_pending) { /* pg_begin probed just now */
        /* Non-blocking probe: reads a pending FATAL and the EOF of a server that went away
         * (two reads: the first may return the FATAL message, the second sees the EOF). */
        if (PQconsumeInput(q->pg) != 0)
            (void)PQconsumeInput(q->pg);
    }
    if (PQstatus(q->pg) == CONNECTION_OK && !q->stuck)
        return STORE_OK;
    if (c->in_tx)
        return store_fail(c, STORE_UNAVAILABLE, "postgres: connection lost in a transaction");
    q->n = 0; /* prepared statements died with the session */
    q->stuck = false;
    PQreset(q->pg);
    (void)PQexitPipelineMode(q->pg); /* the new session starts outside any pipeline */
    if (PQstatus(q->pg) != CONNECTION_OK)
        return conn_fail(c, q->pg, "reconnect failed");
    store_logf(c->st, STORE_LOG_INFO, "store: reconnected to PostgreSQL");
    return STORE_OK;
}

static store_rc map_result(store_conn *c, PGresult *r)
{
    pg_conn *q = c->impl;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    store_rc rc = STORE_INTERNAL;

    if (PQstatus(q->pg) != CONNECTION_OK || state == NULL) {
        if (PQstatus(q->pg) != CONNECTION_OK)
            return conn_fail(c, q->pg, "connection lost");
        if (r == NULL)
            return store_fail(c, STORE_NOMEM, "postgres: out of memory");
    } else if (strcmp(state, "23505") == 0) {
        rc = STORE_CONFLICT;
    } else if (strcmp(state, "23503") == 0) {
        rc = STORE_NOT_FOUND;
    } else if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0) {
        rc = STORE_INVALID;
    } else if (strcmp(state, "P0001") == 0 || strcmp(state, "42501") == 0) {
        rc = STORE_DENIED;
    } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
               strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0) {
        rc = STORE_BUSY;
    } else if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
               strncmp(state, "53", 2) == 0) {
        rc = STORE_UNAVAILABLE;
    } else if (strncmp(state, "XX", 2) == 0) {
        rc = STORE_CORRUPT;
    }
    return store_fail(c, rc, "postgres: %s%s%s", msg ? msg : "error", state ? " SQLSTATE " : "",
                      state ? state : "");
}

static store_rc get_stmt(store_conn *c, const char *sql, const db_val *p, int n, const char **name)
{
    pg_conn *q = c->impl;
    Oid types[32];
    PGresult *r;
    store_rc rc = STORE_OK;

    for (size_t i = 0; i < q->n; i++) {
        if (q->stmts[i].key == sql || strcmp(q->stmts[i].key, sql) == 0) {
            *name = q->stmts[i].name;
            return STORE_OK;
        }
    }
    if (n > (int)(sizeof(types) / sizeof(types[0])))
        return store_fail(c, STORE_INTERNAL, "postgres: too many parameters");
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 32;
        pg_stmt *grown = realloc(q->stmts, cap * sizeof(*grown));
        if (grown == NULL)
            return store_fail(c, STORE_NOMEM, "postgres: out of memory");
        q->stmts = grown;
        q->cap = cap;
    }
    for (int i = 0; i < n; i++)
        types[i] = p[i].type == DBV_INT    ? OID_INT8
                   : p[i].type == DBV_TEXT ? OID_TEXT
                   : p[i].type == DBV_BLOB ? OID_BYTEA
                   : p[i].i == DBV_INT     ? OID_INT8 /* typed NULL */
                   : p[i].i == DBV_TEXT    ? OID_TEXT
                                           : 0;
    pg_stmt *s = &q->stmts[q->n];
    snprintf(s->name, sizeof(s->name), "tw%u", ++q->next_id);
    r = PQprepare(q->pg, s->name, sql, n, types);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        rc = map_result(c, r);
        goto out;
    }
    s->key = sql;
    q->n++;
    *name = s->name;
out:
    PQclear(r);
    return rc;
}

static int64_t be_int(const unsigned char *b, int len)
{
    uint64_t v = 0;
    for (int i = 0; i < len; i++)
        v = (v << 8) | b[i];
    if (len < 8 && len > 0 && (b[0] & 0x80)) /* sign-extend int2/int4 */
        v |= ~(uint64_t)0 << (8 * len);
    return (int64_t)v;
}

static store_rc read_rows(store_conn *c, PGresult *r, db_res *res)
{
    int nrows = PQntuples(r), ncols = PQnfields(r);
    store_rc rc = STORE_OK;
    for (int row = 0; row < nrows && rc == STORE_OK; row++) {
        db_val *cells = calloc((size_t)(ncols ? ncols : 1), sizeof(*cells));
        if (cells == NULL)
            return store_fail(c, STORE_NOMEM, "postgres: out of memory");
        for (int col = 0; col < ncols && rc == STORE_OK; col++) {
            Oid t = PQftype(r, col);
            const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, col);
            int len = PQgetlength(r, row, col);
            if (PQgetisnull(r, row, col))
                continue;
            if (t == OID_INT8 || t == OID_INT4 || t == OID_INT2 || t == OID_BOOL) {
                int want = t == OID_INT8 ? 8 : t == OID_INT4 ? 4 : t == OID_INT2 ? 2 : 1;
                if (len != want) {
                    rc = store_fail(c, STORE_CORRUPT, "postgres: bad integer width");
                    break;
                }
                cells[col].type = DBV_INT;
                cells[col].i = t == OID_BOOL ? (v[0] != 0) : be_int(v, len);
            } else {
                char *copy = malloc((size_t)len + 1);
                if (copy == NULL) {
                    rc = store_fail(c, STORE_NOMEM, "postgres: out of memory");
                    break;
                }
                memcpy(copy, v, (size_t)len);
                copy[len] = '\0';
                cells[col].type = t == OID_BYTEA ? DBV_BLOB : DBV_TEXT;
                cells[col].p = copy;
                cells[col].n = (size_t)len;
            }
        }
        if (rc == STORE_OK)
            rc = db_res_add_row(res, ncols, cells);
        if (rc != STORE_OK)
            for (int col = 0; col < ncols; col++)
                free((void *)cells[col].p);
        free(cells);
    }
    return rc;
}

/*
 * BEGIN and the transaction's first statement in one round trip (libpq's pipeline mode):
 * nothing is decided on BEGIN's answer, so it does not wait for one. Every user transaction
 * starts with the user's lock (store_tx_begin_user), whose answer the transaction does wait
 * for; BEGIN used to cost a round trip of its own before it, two per filled order. *out: the
 * statement's result; an error of BEGIN itself, or a connection lost, is returned instead.
 */
static store_rc begin_and_exec(store_conn *c, const char *name, int n, const char *const *values,
                               const int *lengths, const int *formats, PGresult **out)
{
    pg_conn *q = c->impl;
    PGresult *begin_err = NULL;
    store_rc rc = STORE_OK;
    *out = NULL;
    q->begin_pending = false;
    if (!PQenterPipelineMode(q->pg))
        return conn_fail(c, q->pg, "pipeline");
    if (!PQsendQueryParams(q->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
        !PQsendQueryPrepared(q->pg, name, n, values, lengths, formats, 1) || !PQpipelineSync(q->pg))
        rc = conn_fail(c, q->pg, "send");
    /* BEGIN's results, a NULL, the statement's, a NULL, then the sync; a lost connection ends
     * it early (no sync comes). */
    for (int nulls = 0; rc == STORE_OK && nulls <= 2;) {
        PGresult *r = PQgetResult(q->pg);
        if (r == NULL) {
            if (PQstatus(q->pg) != CONNECTION_OK)
                break;
            nulls++;
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (nulls == 0 && st != PGRES_COMMAND_OK && !begin_err)
            begin_err = r;
        else if (nulls == 1 && !*out)
            *out = r;
        else
            PQclear(r);
    }
    /* Answers still owed (a send failed half-way, the connection went): the session is not
     * used again before a reset (ensure_conn). */
    if (!PQexitPipelineMode(q->pg))
        q->stuck = true;
    if (rc == STORE_OK && begin_err)
        rc = map_result(c, begin_err);
    else if (rc == STORE_OK && !*out)
        rc = conn_fail(c, q->pg, "connection lost");
    PQclear(begin_err);
    if (rc != STORE_OK) {
        PQclear(*out);
        *out = NULL;
    }
    return rc;
}

static store_rc pg_exec(store_conn *c, const char *sql, const db_val *p, int n, db_res *res)
{
    pg_conn *q = c->impl;
    const char *values[32];
    int lengths[32], formats[32];
    char nums[32][24];
    const char *name = NULL;
    PGresult *r = NULL;
    store_rc rc;

    if (n > 32)
        return store_fail(c, STORE_INTERNAL, "postgres: too many parameters");
    rc = ensure_conn(c);
    if (rc != STORE_OK)
        return rc;
    rc = get_stmt(c, sql, p, n, &name);
    if (rc == STORE_UNAVAILABLE && !c->in_tx) {
        /* Preparing is idempotent: reconnect and try once more. */
        rc = ensure_conn(c);
        if (rc == STORE_OK)
            rc = get_stmt(c, sql, p, n, &name);
    }
    if (rc != STORE_OK)
        return rc;
    for (int i = 0; i < n; i++) {
        formats[i] = 0;
        lengths[i] = 0;
        switch (p[i].type) {
        case DBV_INT:
            snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)p[i].i);
            values[i] = nums[i];
            break;
        case DBV_TEXT:
            values[i] = p[i].p;
            break;
        case DBV_BLOB:
            values[i] = p[i].p ? p[i].p : "";
            lengths[i] = (int)p[i].n;
            formats[i] = 1;
            break;
        default:
            values[i] = NULL;
        }
    }
    if (q->begin_pending) {
        if ((rc = begin_and_exec(c, name, n, values, lengths, formats, &r)) != STORE_OK)
            return rc;
    } else {
        r = PQexecPrepared(q->pg, name, n, values, lengths, formats, 1);
    }
    ExecStatusType est = PQresultStatus(r);
    if (est == PGRES_TUPLES_OK || est == PGRES_COMMAND_OK) {
        if (est == PGRES_TUPLES_OK && res != NULL)
            rc = read_rows(c, r, res);
        if (rc == STORE_OK && res != NULL)
            res->changes = strtoll(PQcmdTuples(r), NULL, 10);
    } else {
        rc = map_result(c, r);
    }
    PQclear(r);
    return rc;
}

static store_rc simple(store_conn *c, const char *sql)
{
    pg_conn *q = c->impl;
    PGresult *r;
    store_rc rc = ensure_conn(c);
    if (rc != STORE_OK)
        return rc;
    if (q->begin_pending) { /* a script inside a transaction: BEGIN first, on its own */
        q->begin_pending = false;
        if ((rc = simple(c, "BEGIN")) != STORE_OK)
            return rc;
    }
    r = PQexec(q->pg, sql);
    if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
        rc = STORE_OK;
    else
        rc = map_result(c, r);
    PQclear(r);
    return rc;
}

/* Nothing is sent yet: BEGIN goes with the first statement (begin_and_exec). */
static store_rc pg_begin(store_conn *c)
{
    pg_conn *q = c->impl;
    store_rc rc = ensure_conn(c); /* outside the transaction still: may reconnect */
    if (rc == STORE_OK)
        q->begin_pending = true;
    return rc;
}

static store_rc pg_commit(store_conn *c)
{
    pg_conn *q = c->impl;
    PGresult *r;
    store_rc rc;
    if (q->begin_pending) { /* a transaction that ran no statement: nothing to commit */
        q->begin_pending = false;
        return STORE_OK;
    }
    if (PQstatus(q->pg) != CONNECTION_OK)
        return store_fail(c, STORE_UNAVAILABLE, "postgres: connection lost in a transaction");
    r = PQexec(q->pg, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = map_result(c, r);
    else if (strcmp(PQcmdStatus(r), "COMMIT") != 0) /* an aborted tx "commits" as ROLLBACK */
        rc = store_fail(c, STORE_INVALID, "postgres: transaction aborted by an earlier error");
    else
        rc = STORE_OK;
    PQclear(r);
    return rc;
}

static store_rc pg_rollback(store_conn *c)
{
    pg_conn *q = c->impl;
    PGresult *r;
    if (q->begin_pending) { /* nothing was sent */
        q->begin_pending = false;
        return STORE_OK;
    }
    if (PQstatus(q->pg) != CONNECTION_OK)
        return STORE_OK; /* the server already dropped the transaction */
    r = PQexec(q->pg, "ROLLBACK");
    PQclear(r);
    return STORE_OK;
}

static store_rc pg_script(store_conn *c, const char *sql)
{
    return simple(c, sql);
}

static store_rc pg_ping(store_conn *c)
{
    return simple(c, "SELECT 1");
}

const store_backend store_pg_backend = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .script = pg_script,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .ping = pg_ping,
    .global_lock_sql = "SELECT id FROM global_state WHERE id = 1 FOR UPDATE",
    .migrate_lock_sql = "SELECT pg_advisory_xact_lock(7470000000000000001)",
    .migrations = store_pg_migrations,
    .nmigrations = STORE_SCHEMA_VERSION,
};
