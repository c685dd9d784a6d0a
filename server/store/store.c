/*
 * store.c - store lifecycle, connection pool, transactions, migrations, result helpers.
 *
 * Design: the store picks a backend vtable from the URL scheme and keeps a pool of lazily
 * opened connections (free list under one mutex, at most STORE_POOL_MAX open, acquire waits
 * on a condvar beyond that). A conn is owned by one thread between acquire and release.
 * Transactions are per conn; the generic layer tracks which lock the open tx holds so typed
 * functions can insist on it (risk state updates need the user's lock).
 *
 * Invariants: the URL (it may hold a password) is never logged nor copied into a message, and
 * is wiped on close; a released conn never carries an open transaction.
 */
#include "store_int.h"

#include <openssl/crypto.h>

#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *store_rc_name(store_rc rc)
{
    switch (rc) {
    case STORE_OK:
        return "OK";
    case STORE_NOT_FOUND:
        return "NOT_FOUND";
    case STORE_CONFLICT:
        return "CONFLICT";
    case STORE_UNAVAILABLE:
        return "UNAVAILABLE";
    case STORE_BUSY:
        return "BUSY";
    case STORE_INVALID:
        return "INVALID";
    case STORE_DENIED:
        return "DENIED";
    case STORE_VERSION:
        return "VERSION";
    case STORE_CORRUPT:
        return "CORRUPT";
    case STORE_NOMEM:
        return "NOMEM";
    case STORE_INTERNAL:
        return "INTERNAL";
    }
    return "UNKNOWN";
}

/* The clock behind every timestamp the store writes. Set once before threads start. */
static int64_t (*now_fn)(void *ctx);
static void *now_ctx;

void store_set_clock(int64_t (*fn)(void *ctx), void *ctx)
{
    now_fn = fn;
    now_ctx = ctx;
}

int64_t store_now_us(void)
{
    if (now_fn)
        return now_fn(now_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

store_rc store_fail(store_conn *c, store_rc rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
    va_end(ap);
    return rc;
}

void store_logf(const store *st, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (st == NULL || st->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    st->log(st->log_ctx, level, msg);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- db_val / db_res helpers ---------------------------------------------------------- */

db_val P_TEXT(const char *s)
{
    if (s == NULL)
        return P_NULL_TEXT;
    return (db_val){DBV_TEXT, 0, s, strlen(s)};
}

db_val P_TEXT_OPT(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return P_NULL_TEXT;
    return P_TEXT(s);
}

db_val P_ID_OPT(int64_t id)
{
    return id == 0 ? P_NULL_INT : P_INT(id);
}

void db_res_init(db_res *r)
{
    memset(r, 0, sizeof(*r));
}

void db_res_clear(db_res *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->nrows * r->ncols; i++)
        free((void *)r->cells[i].p); /* cells own their bytes */
    free(r->cells);
    db_res_init(r);
}

store_rc db_res_add_row(db_res *r, int ncols, db_val *cells)
{
    if (r->nrows > 0 && r->ncols != ncols)
        return STORE_INTERNAL;
    if (ncols <= 0) { /* a row of no columns carries nothing to store */
        r->nrows++;
        return STORE_OK;
    }
    /* Room grows by doubling: tradewinkd's realloc always moves and wipes the old block
     * (wipe_alloc.c), so growing by one row made reading n rows cost n^2/2 row copies (1,250
     * recent orders: 65% of the server's CPU, 8x fewer orders per second). */
    if ((size_t)r->nrows >= r->cap_rows) {
        size_t want = r->cap_rows ? r->cap_rows * 2 : 16;
        if (want > SIZE_MAX / sizeof(db_val) / (size_t)ncols)
            return STORE_NOMEM;
        db_val *grown = realloc(r->cells, sizeof(db_val) * want * (size_t)ncols);
        if (grown == NULL)
            return STORE_NOMEM;
        r->cells = grown;
        r->cap_rows = want;
    }
    memcpy(r->cells + (size_t)r->nrows * (size_t)ncols, cells, sizeof(db_val) * (size_t)ncols);
    r->ncols = ncols;
    r->nrows++;
    return STORE_OK;
}

static const db_val *cell(const db_res *r, int row, int col)
{
    if (row < 0 || row >= r->nrows || col < 0 || col >= r->ncols)
        return NULL;
    return &r->cells[(size_t)row * (size_t)r->ncols + (size_t)col];
}

int64_t db_int(const db_res *r, int row, int col)
{
    const db_val *v = cell(r, row, col);
    return (v != NULL && v->type == DBV_INT) ? v->i : 0;
}

const char *db_text(const db_res *r, int row, int col)
{
    const db_val *v = cell(r, row, col);
    if (v == NULL || (v->type != DBV_TEXT && v->type != DBV_BLOB) || v->p == NULL)
        return "";
    return v->p;
}

store_rc db_copy_text(const db_res *r, int row, int col, char *buf, size_t size)
{
    const db_val *v = cell(r, row, col);
    buf[0] = '\0';
    if (v == NULL)
        return STORE_INTERNAL;
    if (v->type == DBV_NULL)
        return STORE_OK;
    if (v->type != DBV_TEXT && v->type != DBV_BLOB)
        return STORE_CORRUPT;
    if (v->n >= size || memchr(v->p, '\0', v->n) != NULL)
        return STORE_CORRUPT;
    memcpy(buf, v->p, v->n);
    buf[v->n] = '\0';
    return STORE_OK;
}

store_rc db_copy_blob(const db_res *r, int row, int col, unsigned char *buf, size_t len)
{
    const db_val *v = cell(r, row, col);
    if (v == NULL || v->type != DBV_BLOB || v->n != len)
        return STORE_CORRUPT;
    memcpy(buf, v->p, len);
    return STORE_OK;
}

/* Whether sql changes rows (the store's own statements start with their verb). */
static bool is_change(const char *sql)
{
    return strncmp(sql, "INSERT", 6) == 0 || strncmp(sql, "UPDATE", 6) == 0 ||
           strncmp(sql, "DELETE", 6) == 0;
}

store_rc db_exec(store_conn *c, const char *sql, const db_val *p, int n, db_res *res)
{
    if (res != NULL)
        db_res_clear(res);
    c->errmsg[0] = '\0';
    __atomic_fetch_add(&c->st->n_statements, 1, __ATOMIC_RELAXED);
    if (c->in_tx && is_change(sql))
        c->tx_writes++;
    return c->st->be->exec(c, sql, p, n, res);
}

int64_t store_tx_version(const store_conn *c)
{
    return c->in_tx && c->tx_user ? c->tx_version : 0;
}

store_rc store_user_version(store_conn *c, int64_t user_id, int64_t *version)
{
    static const char sql[] = "SELECT version FROM risk_state WHERE user_id = $1";
    db_val p[1] = {P_INT(user_id)};
    db_res r;
    db_res_init(&r);
    store_rc rc = db_exec(c, sql, p, 1, &r);
    if (rc == STORE_OK && r.nrows != 1)
        rc = store_fail(c, STORE_NOT_FOUND, "user not found");
    *version = rc == STORE_OK ? db_int(&r, 0, 0) : 0;
    db_res_clear(&r);
    return rc;
}

bool store_tx_global_halted(const store_conn *c)
{
    return c->in_tx && c->tx_user && c->tx_halted;
}

unsigned store_tx_writes(const store_conn *c)
{
    return c->tx_writes;
}

unsigned store_tx_audits(const store_conn *c)
{
    return c->tx_audits;
}

void store_tx_seed_head(store_conn *c, int64_t seq, const unsigned char hash[32])
{
    if (!c->in_tx || !c->tx_user || c->head_valid)
        return;
    c->head_valid = true;
    c->head_chain = c->tx_user;
    c->head_seq = seq;
    memcpy(c->head_hash, hash, sizeof(c->head_hash));
}

bool store_tx_head(const store_conn *c, int64_t *seq, unsigned char hash[32])
{
    if (!c->in_tx || !c->tx_user || !c->head_valid || c->head_chain != c->tx_user)
        return false;
    *seq = c->head_seq;
    memcpy(hash, c->head_hash, sizeof(c->head_hash));
    return true;
}

void store_tx_on_end(store_conn *c, store_tx_end_fn fn, void *ctx)
{
    if (!c->in_tx)
        return;
    c->tx_end = fn;
    c->tx_end_ctx = ctx;
}

void *store_tx_end_ctx(const store_conn *c, store_tx_end_fn fn)
{
    return c->in_tx && c->tx_end == fn ? c->tx_end_ctx : NULL;
}

int64_t store_tx_user(const store_conn *c)
{
    return c->in_tx ? c->tx_user : 0;
}

/* Runs (and forgets) the transaction's end hook, before its state is reset. */
static void tx_end_hook(store_conn *c, bool committed)
{
    store_tx_end_fn fn = c->tx_end;
    void *ctx = c->tx_end_ctx;
    c->tx_end = NULL;
    c->tx_end_ctx = NULL;
    if (fn)
        fn(ctx, c, committed);
}

void store_counts(store *st, uint64_t *statements, uint64_t *commits)
{
    *statements = __atomic_load_n(&st->n_statements, __ATOMIC_RELAXED);
    *commits = __atomic_load_n(&st->n_commits, __ATOMIC_RELAXED);
}

/* ---- URL handling ----------------------------------------------------------------------- */

static bool is_loopback_host(const char *h, size_t n)
{
    static const char *const names[] = {"localhost", "::1", "[::1]"};
    if (n == 0 || h[0] == '/' || h[0] == '@') /* default or unix-domain socket */
        return true;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n && strncmp(h, names[i], n) == 0)
            return true;
    return n >= 4 && strncmp(h, "127.", 4) == 0;
}

static store_rc pg_url_check(const char *url, store_log_fn log, void *log_ctx, char *err,
                             size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    const char *host = "", *hostaddr = "", *sslmode = NULL;
    store_rc rc = STORE_OK;

    if (opts == NULL) {
        /* libpq's parse message names the bad part, never echoes a password value. */
        set_err(err, errlen, "TW_DATABASE_URL: invalid PostgreSQL URL: %s",
                perr ? perr : "out of memory");
        rc = STORE_INVALID;
        goto out;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (strcmp(o->keyword, "sslmode") == 0)
            sslmode = o->val;
    }
    if (sslmode == NULL)
        sslmode = getenv("PGSSLMODE");
    if (sslmode == NULL)
        sslmode = "prefer";
    if (host[0] == '\0' && getenv("PGHOST") != NULL)
        host = getenv("PGHOST");
    /* Every host of a multi-host list (and hostaddr) must be loopback to go without TLS. */
    const char *lists[2] = {host, hostaddr};
    for (int l = 0; l < 2; l++) {
        const char *s = lists[l];
        while (s && *s != '\0') {
            size_t len = strcspn(s, ",");
            if (!is_loopback_host(s, len) && strcmp(sslmode, "verify-full") != 0 && log) {
                char msg[512];
                snprintf(msg, sizeof(msg),
                         "SECURITY WARNING: TW_DATABASE_URL points at the non-loopback "
                         "PostgreSQL host '%.*s' with sslmode=%s; use "
                         "sslmode=verify-full&sslrootcert=CA_FILE or the connection (and the "
                         "database password) can be intercepted",
                         (int)(len > 200 ? 200 : len), s, sslmode);
                log(log_ctx, STORE_LOG_WARN, msg);
                goto out;
            }
            s += len;
            if (*s == ',')
                s++;
        }
    }
out:
    if (opts != NULL)
        PQconninfoFree(opts);
    PQfreemem(perr);
    return rc;
}

static const store_backend *backend_for(const char *url, const char **target)
{
    if (strncmp(url, "sqlite:", 7) == 0) {
        *target = url + 7;
        return &store_sqlite_backend;
    }
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
        *target = url;
        return &store_pg_backend;
    }
    return NULL;
}

store_rc store_url_check(const char *url, store_log_fn log, void *log_ctx, char *err, size_t errlen)
{
    const char *target = NULL;
    const store_backend *be;
    if (url == NULL || url[0] == '\0')
        url = STORE_DEFAULT_URL;
    be = backend_for(url, &target);
    if (be == NULL) {
        set_err(err, errlen, "TW_DATABASE_URL: must start with sqlite: or postgres://");
        return STORE_INVALID;
    }
    if (be == &store_sqlite_backend) {
        if (target[0] == '\0') {
            set_err(err, errlen, "TW_DATABASE_URL: sqlite: needs a file path");
            return STORE_INVALID;
        }
        if (strcmp(target, ":memory:") == 0) {
            set_err(err, errlen,
                    "TW_DATABASE_URL: sqlite::memory: is not shareable between "
                    "connections; use a file path");
            return STORE_INVALID;
        }
        return STORE_OK;
    }
    return pg_url_check(url, log, log_ctx, err, errlen);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void conn_destroy(store_conn *c)
{
    if (c == NULL)
        return;
    if (c->impl != NULL)
        c->st->be->close(c);
    free(c);
}

static store_rc conn_create(store *st, store_conn **out)
{
    store_conn *c = calloc(1, sizeof(*c));
    store_rc rc;
    if (c == NULL)
        return STORE_NOMEM;
    c->st = st;
    rc = st->be->open(c);
    if (rc != STORE_OK) {
        store_logf(st, STORE_LOG_ERROR, "store: cannot open a %s connection: %s", st->be->name,
                   c->errmsg);
        conn_destroy(c);
        return rc;
    }
    *out = c;
    return STORE_OK;
}

store_rc store_open(const char *url, store_log_fn log, void *log_ctx, store **out, char *err,
                    size_t errlen)
{
    store *st = NULL;
    store_conn *c = NULL;
    const char *target = "";
    store_rc rc;

    *out = NULL;
    if (url == NULL || url[0] == '\0')
        url = STORE_DEFAULT_URL;
    rc = store_url_check(url, log, log_ctx, err, errlen);
    if (rc != STORE_OK)
        goto out;
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        rc = STORE_NOMEM;
        goto out;
    }
    st->be = backend_for(url, &target);
    st->log = log;
    st->log_ctx = log_ctx;
    st->target = strdup(target);
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    if (st->target == NULL) {
        rc = STORE_NOMEM;
        goto out;
    }
    if (st->be->attach != NULL && (rc = st->be->attach(st)) != STORE_OK)
        goto out;
    rc = conn_create(st, &c);
    if (rc != STORE_OK) {
        set_err(err, errlen, "cannot open the %s database", st->be->name);
        goto out;
    }
    c->next_idle = st->idle;
    st->idle = c;
    st->nopen = 1;
    store_logf(st, STORE_LOG_INFO, "store: %s database opened", st->be->name);
    *out = st;
    st = NULL;
out:
    store_close(st);
    return rc;
}

void store_close(store *st)
{
    if (st == NULL)
        return;
    while (st->idle != NULL) {
        store_conn *c = st->idle;
        st->idle = c->next_idle;
        conn_destroy(c);
    }
    if (st->be != NULL && st->be->detach != NULL)
        st->be->detach(st);
    if (st->target != NULL) {
        OPENSSL_cleanse(st->target, strlen(st->target));
        free(st->target);
    }
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

const char *store_backend_name(const store *st)
{
    return st->be->name;
}

int store_schema_version(void)
{
    return STORE_SCHEMA_VERSION;
}

store_rc store_conn_acquire(store *st, store_conn **out)
{
    store_conn *c = NULL;
    store_rc rc = STORE_OK;

    *out = NULL;
    pthread_mutex_lock(&st->mu);
    while (st->idle == NULL && st->nopen >= STORE_POOL_MAX)
        pthread_cond_wait(&st->cv, &st->mu);
    if (st->idle != NULL) {
        c = st->idle;
        st->idle = c->next_idle;
        c->next_idle = NULL;
    } else {
        st->nopen++; /* reserve the slot; open outside the lock */
    }
    pthread_mutex_unlock(&st->mu);
    if (c == NULL) {
        rc = conn_create(st, &c);
        if (rc != STORE_OK) {
            pthread_mutex_lock(&st->mu);
            st->nopen--;
            pthread_cond_signal(&st->cv);
            pthread_mutex_unlock(&st->mu);
            return rc;
        }
    }
    c->errmsg[0] = '\0';
    *out = c;
    return STORE_OK;
}

void store_conn_release(store_conn *c)
{
    store *st;
    if (c == NULL)
        return;
    st = c->st;
    if (c->in_tx)
        store_tx_rollback(c);
    pthread_mutex_lock(&st->mu);
    c->next_idle = st->idle;
    st->idle = c;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

const char *store_conn_errmsg(const store_conn *c)
{
    return c->errmsg;
}

/* ---- transactions -----------------------------------------------------------------------------
 */

store_rc store_tx_begin(store_conn *c)
{
    store_rc rc;
    c->errmsg[0] = '\0';
    if (c->in_tx)
        return store_fail(c, STORE_INVALID, "transaction already open on this connection");
    rc = c->st->be->begin(c);
    if (rc != STORE_OK)
        return rc;
    c->in_tx = true;
    c->tx_user = 0;
    c->tx_global = false;
    c->head_valid = false;
    return STORE_OK;
}

store_rc store_tx_begin_user(store_conn *c, int64_t user_id)
{
    /* One statement creates the row if missing, takes its lock (an upsert that updates locks
     * the row on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the writer lock) and bumps
     * the user's version, which every user transaction thereby changes. */
    static const char lock_sql[] =
        "INSERT INTO risk_state (user_id) VALUES ($1) ON CONFLICT (user_id)"
        " DO UPDATE SET version = risk_state.version + 1 RETURNING version,"
        " (SELECT halted FROM global_state WHERE id = 1)";
    db_val p[1] = {P_INT(user_id)};
    db_res r;
    store_rc rc;

    if (user_id <= 0)
        return store_fail(c, STORE_INVALID, "user id must be positive");
    rc = store_tx_begin(c);
    if (rc != STORE_OK)
        return rc;
    db_res_init(&r);
    rc = db_exec(c, lock_sql, p, 1, &r);
    if (rc == STORE_OK && r.nrows != 1)
        rc = store_fail(c, STORE_INTERNAL, "user lock returned no version");
    if (rc == STORE_OK) {
        c->tx_version = db_int(&r, 0, 0);
        c->tx_halted = db_int(&r, 0, 1) != 0;
    }
    c->tx_writes = 0; /* the lock's own upsert is not a change of the user's state */
    db_res_clear(&r);
    if (rc != STORE_OK) {
        char saved[sizeof(c->errmsg)];
        memcpy(saved, c->errmsg, sizeof(saved));
        store_tx_rollback(c);
        memcpy(c->errmsg, saved, sizeof(saved));
        return rc;
    }
    c->tx_user = user_id;
    return STORE_OK;
}

store_rc store_tx_begin_global(store_conn *c)
{
    store_rc rc = store_tx_begin(c);
    if (rc != STORE_OK)
        return rc;
    if (c->st->be->global_lock_sql != NULL) {
        rc = db_exec(c, c->st->be->global_lock_sql, NULL, 0, NULL);
        if (rc != STORE_OK) {
            store_tx_rollback(c);
            return rc;
        }
    }
    c->tx_global = true;
    return STORE_OK;
}

static void tx_reset(store_conn *c)
{
    c->in_tx = false;
    c->tx_user = 0;
    c->tx_global = false;
    c->tx_global_set = false;
    c->tx_audit = false;
    c->head_valid = false;
    c->tx_version = 0;
    c->tx_halted = false;
    c->tx_writes = 0;
    c->tx_audits = 0;
    c->tx_end = NULL;
    c->tx_end_ctx = NULL;
}

void store_set_audit_hook(store *st, void (*fn)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&st->mu);
    st->audit_hook = fn;
    st->audit_hook_ctx = ctx;
    pthread_mutex_unlock(&st->mu);
}

void store_set_commit_hook(store *st, void (*fn)(void *ctx, int64_t user_id, int64_t version),
                           void *ctx)
{
    st->commit_hook = fn;
    st->commit_hook_ctx = ctx;
}

static void run_audit_hook(store *st)
{
    pthread_mutex_lock(&st->mu);
    void (*fn)(void *) = st->audit_hook;
    void *ctx = st->audit_hook_ctx;
    pthread_mutex_unlock(&st->mu);
    if (fn)
        fn(ctx);
}

store_rc store_tx_commit(store_conn *c)
{
    store_rc rc;
    if (!c->in_tx)
        return store_fail(c, STORE_INVALID, "no transaction open");
    rc = c->st->be->commit(c);
    bool audit = c->tx_audit;
    int64_t user = c->tx_user, version = c->tx_version;
    bool global = c->tx_global || c->tx_global_set;
    tx_end_hook(c, rc == STORE_OK);
    tx_reset(c);
    if (rc == STORE_OK)
        __atomic_fetch_add(&c->st->n_commits, 1, __ATOMIC_RELAXED);
    if (rc == STORE_OK && c->st->commit_hook) {
        if (user)
            c->st->commit_hook(c->st->commit_hook_ctx, user, version);
        if (global)
            c->st->commit_hook(c->st->commit_hook_ctx, 0, 0);
    }
    if (rc == STORE_OK && audit)
        run_audit_hook(c->st);
    return rc;
}

store_rc store_tx_rollback(store_conn *c)
{
    store_rc rc;
    if (!c->in_tx)
        return STORE_OK;
    rc = c->st->be->rollback(c);
    tx_end_hook(c, false);
    tx_reset(c);
    return rc;
}

/* ---- migrations and health ------------------------------------------------------------------- */

store_rc store_migrate(store *st, int *version_out, char *err, size_t errlen)
{
    static const char create_sql[] = "CREATE TABLE IF NOT EXISTS schema_version ("
                                     " version INTEGER PRIMARY KEY,"
                                     " applied_at_us BIGINT NOT NULL)";
    static const char max_sql[] = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
    static const char insert_sql[] =
        "INSERT INTO schema_version (version, applied_at_us) VALUES ($1, $2)";
    store_conn *c = NULL;
    db_res res;
    int have = 0, latest = st->be->nmigrations;
    store_rc rc;

    db_res_init(&res);
    rc = store_conn_acquire(st, &c);
    if (rc != STORE_OK) {
        set_err(err, errlen, "migrate: database unavailable");
        goto out;
    }
    rc = store_tx_begin(c);
    if (rc == STORE_OK && st->be->migrate_lock_sql != NULL)
        rc = st->be->script(c, st->be->migrate_lock_sql);
    if (rc == STORE_OK)
        rc = st->be->script(c, create_sql);
    if (rc == STORE_OK)
        rc = db_exec(c, max_sql, NULL, 0, &res);
    if (rc != STORE_OK) {
        set_err(err, errlen, "migrate: %s", c->errmsg);
        goto out;
    }
    have = (int)db_int(&res, 0, 0);
    if (have > latest) {
        rc = STORE_VERSION;
        set_err(err, errlen,
                "migrate: the database schema is version %d but this tradewinkd only knows up "
                "to version %d; refusing to start (upgrade tradewinkd)",
                have, latest);
        goto out;
    }
    for (int v = have + 1; v <= latest; v++) {
        db_val p[2] = {P_INT(v), P_INT(store_now_us())};
        rc = st->be->script(c, st->be->migrations[v - 1]);
        if (rc == STORE_OK)
            rc = db_exec(c, insert_sql, p, 2, NULL);
        if (rc != STORE_OK) {
            set_err(err, errlen, "migrate: version %d failed: %s", v, c->errmsg);
            goto out;
        }
        store_logf(st, STORE_LOG_INFO, "store: applied schema migration %d", v);
    }
    rc = store_tx_commit(c);
    if (rc != STORE_OK) {
        set_err(err, errlen, "migrate: commit failed: %s", c->errmsg);
        goto out;
    }
    if (version_out != NULL)
        *version_out = latest;
out:
    if (c != NULL)
        store_tx_rollback(c);
    store_conn_release(c);
    db_res_clear(&res);
    return rc;
}

store_rc store_ping(store *st, char *err, size_t errlen)
{
    store_conn *c = NULL;
    store_rc rc = store_conn_acquire(st, &c);
    if (rc != STORE_OK) {
        set_err(err, errlen, "database unavailable");
        return rc;
    }
    rc = st->be->ping(c);
    if (rc != STORE_OK)
        set_err(err, errlen, "%s", c->errmsg);
    store_conn_release(c);
    return rc;
}
