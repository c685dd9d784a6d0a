/*
 * sqlite_floor - the SQLite floor of the order path (issue 18): the least durable work one
 * filled market order needs, run straight through sqlite3, as the baseline of SubmitOrder on
 * the SQLite store.
 *
 * Design: N threads, each with its own connection opened the way the server opens one
 * (server/store/store_sqlite.c: NOMUTEX, WAL, foreign_keys=ON, synchronous=NORMAL, a 5 s busy
 * timeout) and its own user (uid0 + i, a user the server does not trade for), on a database
 * whose schema the server created (its migrations ran). Statements are prepared once per
 * connection. Per order, two write transactions (BEGIN IMMEDIATE, as the server's), with the
 * statements and values the server writes (bench/orders/floor.sql is the PostgreSQL twin):
 *   T1 admission: lock + version upsert on risk_state, order insert, audit event;
 *   T2 fill: lock + version, fill row, position upsert, order update, audit event.
 * No reads besides what the writes return. Audit seq and hash are random (seq from [1e12,
 * 2^63), so the unique key (chain, seq) holds); the server's seqs are small and on other chains.
 * Closed loop, bounded by --count orders in total and --duration seconds.
 *
 * Output: one JSON object (stdout or --out) shaped like bench_orders': counts, errors,
 * orders/s and per-order latency (both transactions) percentiles in ms.
 * Invariants: every handle, statement and allocation is released on exit; nothing but the
 * given database file is touched.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SF_BUSY_MS 5000
#define SF_NOW_US INT64_C(1796050800000000) /* the bench's sim clock: Monday 10:00 New York */

enum {
    SF_BEGIN,
    SF_LOCK,
    SF_ORDER,
    SF_AUDIT,
    SF_FILL,
    SF_POSITION,
    SF_UPDATE,
    SF_COMMIT,
    SF_ROLLBACK,
    SF_NSTMT
};

/* The server's statements (server/store/store.c, store_ops.c), in its ?N form. */
static const char *const sf_sql[SF_NSTMT] = {
    [SF_BEGIN] = "BEGIN IMMEDIATE",
    [SF_LOCK] = "INSERT INTO risk_state (user_id) VALUES (?1) ON CONFLICT (user_id)"
                " DO UPDATE SET version = risk_state.version + 1 RETURNING version,"
                " (SELECT halted FROM global_state WHERE id = 1)",
    [SF_ORDER] = "INSERT INTO orders (user_id, client_order_id, symbol, side, type, tif, qty,"
                 " limit_price, filled_qty, avg_fill_price, status, origin, mode, broker,"
                 " broker_key_id, broker_order_id, violations, confirm_by_us, created_at_us,"
                 " updated_at_us, status_message, note)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
                 " ?16, ?17, ?18, ?19, ?19, ?20, ?21)"
                 " ON CONFLICT (user_id, client_order_id) DO NOTHING RETURNING id",
    [SF_AUDIT] = "INSERT INTO audit_events (chain, seq, user_id, time_us, actor, actor_id, action,"
                 " object_id, outcome, details, prev_hash, hash)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [SF_FILL] = "INSERT INTO fills (user_id, order_id, broker_fill_id, symbol, side, qty, price,"
                " time_us) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM orders"
                " WHERE user_id = ?1 AND id = ?2 RETURNING id",
    [SF_POSITION] = "INSERT INTO positions (user_id, symbol, qty, avg_cost, realized_pnl,"
                    " updated_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (user_id, symbol)"
                    " DO UPDATE SET qty = excluded.qty, avg_cost = excluded.avg_cost,"
                    " realized_pnl = excluded.realized_pnl, updated_at_us = excluded.updated_at_us",
    [SF_UPDATE] = "UPDATE orders SET status = ?3, filled_qty = ?4, avg_fill_price = ?5,"
                  " broker_order_id = ?6, violations = ?7, updated_at_us = ?8,"
                  " status_message = ?9 WHERE user_id = ?1 AND id = ?2",
    [SF_COMMIT] = "COMMIT",
    [SF_ROLLBACK] = "ROLLBACK",
};

typedef struct sf_opts {
    const char *db;
    const char *prefix;
    const char *out;
    long uid0;
    long threads;
    long count;
    double duration_s;
} sf_opts;

typedef struct sf_thread {
    pthread_t tid;
    long index;
    const sf_opts *o;
    long quota;
    double start;
    double *lat_ms; /* quota entries, owned */
    long n_lat;
    long n_err;
    uint64_t rng;
    char first_err[200];
} sf_thread;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next_rand(uint64_t *s)
{
    /* xorshift64*: cheap, per thread, good enough for unique-enough keys */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/* Runs a prepared statement to completion; *id_out gets column 0 of its first row if asked. */
static int step(sqlite3_stmt *s, int64_t *id_out)
{
    int rc;
    int got = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (id_out != NULL && !got)
            *id_out = sqlite3_column_int64(s, 0);
        got = 1;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE)
        return rc;
    return (id_out != NULL && !got) ? SQLITE_NOTFOUND : SQLITE_OK;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static int audit(sqlite3_stmt *s, int64_t uid, uint64_t *rng, const char *actor,
                 const char *actor_id, const char *action, const char *object_id,
                 const char *details)
{
    unsigned char hash[2][32];
    for (size_t i = 0; i < sizeof(hash) / sizeof(uint64_t); i++) {
        uint64_t v = next_rand(rng);
        memcpy((unsigned char *)hash + i * sizeof(v), &v, sizeof(v));
    }
    int64_t seq = (int64_t)(next_rand(rng) >> 1);
    if (seq < INT64_C(1000000000000))
        seq += INT64_C(1000000000000);
    sqlite3_bind_int64(s, 1, uid);
    sqlite3_bind_int64(s, 2, seq);
    sqlite3_bind_int64(s, 3, uid);
    sqlite3_bind_int64(s, 4, SF_NOW_US);
    bind_text(s, 5, actor);
    bind_text(s, 6, actor_id);
    bind_text(s, 7, action);
    bind_text(s, 8, object_id);
    bind_text(s, 9, "SUCCESS");
    bind_text(s, 10, details);
    sqlite3_bind_blob(s, 11, hash[0], 32, SQLITE_STATIC);
    sqlite3_bind_blob(s, 12, hash[1], 32, SQLITE_STATIC);
    return step(s, NULL);
}

/* One order: the admission and the fill transaction. Returns an SQLite code. */
static int one_order(sqlite3_stmt **st, int64_t uid, long k, sf_thread *t)
{
    const char *side = (k & 1) ? "sell" : "buy";
    char coid[64], oid_text[24], boid[32], details[320];
    int64_t version = 0, oid = 0, fill_id = 0;
    sqlite3_stmt *o = st[SF_ORDER], *f = st[SF_FILL], *p = st[SF_POSITION], *u = st[SF_UPDATE];
    int rc;

    /* a failed statement rolls its transaction back (out:); a failed BEGIN has none */
    snprintf(coid, sizeof(coid), "%s-%ld-%ld", t->o->prefix, t->index, k);
    /* T1: admission */
    if ((rc = step(st[SF_BEGIN], NULL)) != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st[SF_LOCK], 1, uid);
    if ((rc = step(st[SF_LOCK], &version)) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(o, 1, uid);
    bind_text(o, 2, coid);
    bind_text(o, 3, "BNCH");
    bind_text(o, 4, side);
    bind_text(o, 5, "market");
    bind_text(o, 6, "day");
    sqlite3_bind_int64(o, 7, INT64_C(1000000000));
    sqlite3_bind_null(o, 8);
    sqlite3_bind_int64(o, 9, 0);
    sqlite3_bind_int64(o, 10, 0);
    bind_text(o, 11, "PENDING_SUBMIT");
    bind_text(o, 12, "user");
    bind_text(o, 13, "paper");
    bind_text(o, 14, "sim");
    sqlite3_bind_null(o, 15);
    sqlite3_bind_null(o, 16);
    bind_text(o, 17, "[]");
    sqlite3_bind_null(o, 18);
    sqlite3_bind_int64(o, 19, SF_NOW_US);
    bind_text(o, 20, "");
    bind_text(o, 21, "");
    if ((rc = step(o, &oid)) != SQLITE_OK)
        goto out;
    snprintf(oid_text, sizeof(oid_text), "%" PRId64, oid);
    snprintf(details, sizeof(details),
             "{\"trace_id\":\"1c2694247889a73d22946ba93eab1b84\",\"span_id\":\"b4a3719f948d7471\","
             "\"symbol\":\"BNCH\",\"side\":\"%s\",\"qty\":\"1\",\"type\":\"market\","
             "\"status\":\"PENDING_SUBMIT\",\"origin\":\"user\",\"violations\":0}",
             side);
    rc = audit(st[SF_AUDIT], uid, &t->rng, "user", "bench-f000",
               (k & 1) ? "ORDER_EXIT" : "ORDER_ENTRY", oid_text, details);
    if (rc != SQLITE_OK || (rc = step(st[SF_COMMIT], NULL)) != SQLITE_OK)
        goto out;
    /* T2: the fill */
    if ((rc = step(st[SF_BEGIN], NULL)) != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st[SF_LOCK], 1, uid);
    if ((rc = step(st[SF_LOCK], &version)) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(f, 1, uid);
    sqlite3_bind_int64(f, 2, oid);
    bind_text(f, 3, "cum-1000000000");
    bind_text(f, 4, "BNCH");
    bind_text(f, 5, side);
    sqlite3_bind_int64(f, 6, INT64_C(1000000000));
    sqlite3_bind_int64(f, 7, INT64_C(100000000));
    sqlite3_bind_int64(f, 8, SF_NOW_US);
    if ((rc = step(f, &fill_id)) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(p, 1, uid);
    bind_text(p, 2, "BNCH");
    sqlite3_bind_int64(p, 3, (k & 1) ? 0 : INT64_C(1000000000));
    sqlite3_bind_int64(p, 4, INT64_C(100000000));
    sqlite3_bind_int64(p, 5, 0);
    sqlite3_bind_int64(p, 6, SF_NOW_US);
    if ((rc = step(p, NULL)) != SQLITE_OK)
        goto out;
    snprintf(boid, sizeof(boid), "sim-%012" PRId64, oid);
    sqlite3_bind_int64(u, 1, uid);
    sqlite3_bind_int64(u, 2, oid);
    bind_text(u, 3, "FILLED");
    sqlite3_bind_int64(u, 4, INT64_C(1000000000));
    sqlite3_bind_int64(u, 5, INT64_C(100000000));
    bind_text(u, 6, boid);
    bind_text(u, 7, "[]");
    sqlite3_bind_int64(u, 8, SF_NOW_US);
    bind_text(u, 9, "");
    if ((rc = step(u, NULL)) != SQLITE_OK)
        goto out;
    snprintf(details, sizeof(details),
             "{\"symbol\":\"BNCH\",\"side\":\"%s\",\"qty\":\"1\",\"avg_price\":\"100\"}", side);
    rc = audit(st[SF_AUDIT], uid, &t->rng, "broker", "broker", "ORDER_FILL", oid_text, details);
    if (rc == SQLITE_OK)
        rc = step(st[SF_COMMIT], NULL);
out:
    if (rc != SQLITE_OK)
        step(st[SF_ROLLBACK], NULL);
    return rc;
}

static void *sf_run(void *arg)
{
    sf_thread *t = arg;
    const sf_opts *o = t->o;
    sqlite3 *db = NULL;
    sqlite3_stmt *st[SF_NSTMT] = {0};
    int rc = sqlite3_open_v2(o->db, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, SF_BUSY_MS);
        rc = sqlite3_exec(db,
                          "PRAGMA journal_mode=WAL;PRAGMA foreign_keys=ON;"
                          "PRAGMA synchronous=NORMAL;",
                          NULL, NULL, NULL);
    }
    for (int i = 0; rc == SQLITE_OK && i < SF_NSTMT; i++)
        rc = sqlite3_prepare_v3(db, sf_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL);
    if (rc != SQLITE_OK) {
        snprintf(t->first_err, sizeof(t->first_err), "open/prepare: %s",
                 db ? sqlite3_errmsg(db) : "out of memory");
        t->n_err = t->quota;
        goto out;
    }
    double deadline = t->start + o->duration_s;
    int64_t uid = o->uid0 + t->index;
    for (long k = 0; k < t->quota; k++) {
        double t0 = now_s();
        if (t0 >= deadline)
            break;
        rc = one_order(st, uid, k, t);
        if (rc == SQLITE_OK) {
            t->lat_ms[t->n_lat++] = (now_s() - t0) * 1000.0;
        } else {
            t->n_err++;
            if (!t->first_err[0])
                snprintf(t->first_err, sizeof(t->first_err), "order %ld: %d %s", k, rc,
                         sqlite3_errmsg(db));
        }
    }
out:
    for (int i = 0; i < SF_NSTMT; i++)
        sqlite3_finalize(st[i]);
    sqlite3_close_v2(db);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double p)
{
    if (n == 0)
        return 0;
    long i = (long)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void usage(void)
{
    fprintf(stderr, "usage: sqlite_floor --db FILE --uid0 ID [--threads N] [--count N] "
                    "[--duration S] [--prefix P] [--out FILE]\n"
                    "  users uid0 .. uid0+N-1 must exist in FILE (a tradewinkd database)\n");
}

static int parse_long(const char *v, long *out)
{
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0')
        return -1;
    *out = x;
    return 0;
}

int main(int argc, char **argv)
{
    sf_opts o = {.prefix = "sf", .threads = 4, .count = 1000, .duration_s = 30};
    int rc = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        int bad = 0;
        if (!strcmp(k, "--db"))
            o.db = v;
        else if (!strcmp(k, "--uid0"))
            bad = parse_long(v, &o.uid0);
        else if (!strcmp(k, "--threads"))
            bad = parse_long(v, &o.threads);
        else if (!strcmp(k, "--count"))
            bad = parse_long(v, &o.count);
        else if (!strcmp(k, "--duration"))
            o.duration_s = strtod(v, NULL);
        else if (!strcmp(k, "--prefix"))
            o.prefix = v;
        else if (!strcmp(k, "--out"))
            o.out = v;
        else
            bad = 1;
        if (bad) {
            usage();
            return 2;
        }
    }
    if (argc % 2 == 0 || !o.db || o.uid0 < 1 || o.threads < 1 || o.threads > 1024 || o.count < 1 ||
        o.duration_s <= 0) {
        usage();
        return 2;
    }
    sf_thread *th = calloc((size_t)o.threads, sizeof(*th));
    double *all = calloc((size_t)o.count + 1, sizeof(double));
    FILE *out = NULL;
    if (!th || !all) {
        fprintf(stderr, "sqlite_floor: out of memory\n");
        goto out;
    }
    double start = now_s();
    long made = 0;
    for (long i = 0; i < o.threads; i++) {
        th[i].index = i;
        th[i].o = &o;
        th[i].quota = o.count / o.threads + (i < o.count % o.threads);
        th[i].start = start;
        th[i].rng = UINT64_C(0x9e3779b97f4a7c15) ^ ((uint64_t)time(NULL) << 20) ^ (uint64_t)i;
        th[i].lat_ms = calloc((size_t)th[i].quota + 1, sizeof(double));
        if (!th[i].lat_ms || pthread_create(&th[i].tid, NULL, sf_run, &th[i]) != 0)
            break;
        made++;
    }
    for (long i = 0; i < made; i++)
        pthread_join(th[i].tid, NULL);
    double elapsed = now_s() - start;
    if (made != o.threads) {
        fprintf(stderr, "sqlite_floor: could not start %ld threads\n", o.threads);
        goto out;
    }
    long n = 0, errs = 0;
    const char *first_err = "";
    for (long i = 0; i < o.threads; i++) {
        memcpy(all + n, th[i].lat_ms, (size_t)th[i].n_lat * sizeof(double));
        n += th[i].n_lat;
        errs += th[i].n_err;
        if (!first_err[0] && th[i].first_err[0])
            first_err = th[i].first_err;
    }
    qsort(all, (size_t)n, sizeof(double), cmp_double);
    out = o.out ? fopen(o.out, "w") : stdout;
    if (!out) {
        perror(o.out);
        goto out;
    }
    fprintf(out,
            "{\"threads\":%ld,\"requested\":%ld,\"ok\":%ld,\"errors\":%ld,\"elapsed_s\":%.3f,"
            "\"orders_per_s\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
            "\"max_ms\":%.3f,\"sqlite_version\":\"%s\",\"first_error\":\"",
            o.threads, o.count, n, errs, elapsed, elapsed > 0 ? (double)n / elapsed : 0,
            pct(all, n, 50), pct(all, n, 90), pct(all, n, 99), n ? all[n - 1] : 0,
            sqlite3_libversion());
    for (const char *p = first_err; *p; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            fputc(*p, out);
    fprintf(out, "\"}\n");
    rc = (errs == 0 && n > 0) ? 0 : 1;
out:
    if (out && out != stdout)
        fclose(out);
    for (long i = 0; th && i < o.threads; i++)
        free(th[i].lat_ms);
    free(th);
    free(all);
    return rc;
}
