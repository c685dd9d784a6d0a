/*
 * store_ops.c - the typed store functions, SQL written once for both backends.
 *
 * Design: every function validates its inputs (lengths fit the fixed-size fields of the
 * output structs, ids positive), runs one or a few statements through db_exec with $N
 * parameters and copies the result into caller-owned structs. Values are always parameters,
 * never spliced into SQL text, so any string is stored and returned verbatim.
 *
 * Invariants: every statement on per-user data has `user_id = $1` in its WHERE clause (or
 * inserts $1 as the owner); only the store_admin_* functions read across users. A row of
 * another user is reported exactly like a missing row (STORE_NOT_FOUND).
 */
#include "store_int.h"

#include <openssl/rand.h>

#include <stdlib.h>
#include <string.h>

#define LIST_MAX 1000

/* ---- helpers ------------------------------------------------------------------------------ */

static store_rc check_text(store_conn *c, const char *s, size_t max, bool allow_empty,
                           const char *field)
{
    if (s == NULL)
        return store_fail(c, STORE_INVALID, "%s is missing", field);
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return store_fail(c, STORE_INVALID, "%s is longer than %zu bytes", field, max);
    if (n == 0 && !allow_empty)
        return store_fail(c, STORE_INVALID, "%s is empty", field);
    return STORE_OK;
}

static store_rc check_id(store_conn *c, int64_t id, const char *field)
{
    c->errmsg[0] = '\0';
    if (id <= 0)
        return store_fail(c, STORE_INVALID, "%s must be positive", field);
    return STORE_OK;
}

static store_rc check_limit(store_conn *c, int limit)
{
    if (limit < 1 || limit > LIST_MAX)
        return store_fail(c, STORE_INVALID, "limit must be 1..%d", LIST_MAX);
    return STORE_OK;
}

/* ---- words: the enums the database holds as text ------------------------------------------
 * Each table lists the names of values 1..n (0 is none, never written). */

static const char *const side_words[] = {"buy", "sell"};
static const char *const type_words[] = {"market", "limit"};
static const char *const tif_words[] = {"day", "gtc", "ioc"};
#define NWORDS(t) (sizeof(t) / sizeof((t)[0]))

static const char *word_name(const char *const *t, size_t n, int v)
{
    return v >= 1 && (size_t)v <= n ? t[v - 1] : "";
}

static int word_value(const char *const *t, size_t n, const char *text)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(text, t[i]) == 0)
            return (int)i + 1;
    return 0;
}

const char *store_side_name(store_side s)
{
    return word_name(side_words, NWORDS(side_words), (int)s);
}

bool store_side_parse(const char *text, store_side *out)
{
    *out = (store_side)word_value(side_words, NWORDS(side_words), text);
    return *out != STORE_SIDE_NONE;
}

const char *store_order_type_name(store_order_type t)
{
    return word_name(type_words, NWORDS(type_words), (int)t);
}

bool store_order_type_parse(const char *text, store_order_type *out)
{
    *out = (store_order_type)word_value(type_words, NWORDS(type_words), text);
    return *out != STORE_TYPE_NONE;
}

const char *store_tif_name(store_tif t)
{
    return word_name(tif_words, NWORDS(tif_words), (int)t);
}

bool store_tif_parse(const char *text, store_tif *out)
{
    *out = (store_tif)word_value(tif_words, NWORDS(tif_words), text);
    return *out != STORE_TIF_NONE;
}

/* The word in column col of row as its value: STORE_CORRUPT for any other text. */
static store_rc read_word(const db_res *r, int row, int col, const char *const *t, size_t n,
                          int *out)
{
    char text[STORE_WORD_MAX + 1];
    store_rc rc = db_copy_text(r, row, col, text, sizeof(text));
    if (rc == STORE_OK && !(*out = word_value(t, n, text)))
        rc = STORE_CORRUPT;
    return rc;
}

static store_rc read_side(const db_res *r, int row, int col, store_side *out)
{
    int v = 0;
    store_rc rc = read_word(r, row, col, side_words, NWORDS(side_words), &v);
    *out = (store_side)v;
    return rc;
}

/* A side to write: STORE_INVALID unless it is one of the two. */
static store_rc check_side(store_conn *c, store_side s)
{
    if (!*store_side_name(s))
        return store_fail(c, STORE_INVALID, "side must be buy or sell");
    return STORE_OK;
}

static store_rc corrupt(store_conn *c, store_rc rc, const char *table)
{
    if (rc == STORE_OK)
        return rc;
    return store_fail(c, rc, "%s: a stored value does not fit its field", table);
}

typedef store_rc (*row_fn)(const db_res *r, int row, void *out);

/* Copies every row of r through fn into a malloc'd array. */
static store_rc read_list(store_conn *c, const db_res *r, size_t elsize, row_fn fn, void **out,
                          size_t *n, const char *table)
{
    unsigned char *arr = NULL;
    store_rc rc = STORE_OK;
    *out = NULL;
    *n = 0;
    if (r->nrows == 0)
        return STORE_OK;
    arr = calloc((size_t)r->nrows, elsize);
    if (arr == NULL)
        return store_fail(c, STORE_NOMEM, "out of memory");
    for (int i = 0; i < r->nrows && rc == STORE_OK; i++)
        rc = fn(r, i, arr + (size_t)i * elsize);
    if (rc != STORE_OK) {
        free(arr);
        return corrupt(c, rc, table);
    }
    *out = arr;
    *n = (size_t)r->nrows;
    return STORE_OK;
}

/* Runs a single-row query: STORE_NOT_FOUND when it returns no row. */
static store_rc query_one(store_conn *c, const char *sql, const db_val *p, int n, db_res *r)
{
    store_rc rc = db_exec(c, sql, p, n, r);
    if (rc == STORE_OK && r->nrows == 0)
        rc = store_fail(c, STORE_NOT_FOUND, "not found");
    return rc;
}

/* Runs a statement that must change one row: STORE_NOT_FOUND when it changed none. */
static store_rc change_one(store_conn *c, const char *sql, const db_val *p, int n)
{
    db_res r;
    db_res_init(&r);
    store_rc rc = db_exec(c, sql, p, n, &r);
    if (rc == STORE_OK && r.changes == 0)
        rc = store_fail(c, STORE_NOT_FOUND, "not found");
    db_res_clear(&r);
    return rc;
}

/* ---- users and settings ------------------------------------------------------------------- */

#define USER_COLS                                                                                  \
    "id, subject, role, salt, trading_mode, autonomous, default_broker_key_id, created_at_us"

static store_rc read_user(const db_res *r, int row, void *vout)
{
    store_user *u = vout;
    store_rc rc;
    memset(u, 0, sizeof(*u));
    u->id = db_int(r, row, 0);
    rc = db_copy_text(r, row, 1, u->subject, sizeof(u->subject));
    u->role = strcmp(db_text(r, row, 2), "admin") == 0 ? STORE_ROLE_ADMIN : STORE_ROLE_USER;
    if (rc == STORE_OK)
        rc = db_copy_blob(r, row, 3, u->salt, sizeof(u->salt));
    u->settings.trading_mode =
        strcmp(db_text(r, row, 4), "live") == 0 ? STORE_MODE_LIVE : STORE_MODE_PAPER;
    u->settings.autonomous = db_int(r, row, 5) != 0;
    u->settings.default_broker_key_id = db_int(r, row, 6);
    u->created_at_us = db_int(r, row, 7);
    return rc;
}

/* Changes to a user's trading state need that user's lock: the lock bumps the user's version,
 * which is how every copy of the state (this process's and another replica's) learns that it
 * changed. */
static store_rc user_locked(store_conn *c, int64_t user_id, const char *what)
{
    if (c->in_tx && c->tx_user == user_id)
        return STORE_OK;
    return store_fail(c, STORE_INVALID, "%s changes need the user's lock (store_tx_begin_user)",
                      what);
}

store_rc store_user_get_or_create(store_conn *c, const char *subject, store_role role,
                                  store_user *out, bool *created)
{
    static const char insert_sql[] =
        "INSERT INTO users (subject, role, salt, trading_mode, autonomous, created_at_us)"
        " VALUES ($1, $2, $3, 'paper', 0, $4) ON CONFLICT (subject) DO NOTHING RETURNING id";
    static const char state_sql[] =
        "INSERT INTO risk_state (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING";
    static const char select_sql[] = "SELECT " USER_COLS " FROM users WHERE subject = $1";
    unsigned char salt[STORE_SALT_LEN];
    db_res r;
    store_rc rc;

    db_res_init(&r);
    if (created != NULL)
        *created = false;
    c->errmsg[0] = '\0';
    rc = check_text(c, subject, STORE_SUBJECT_MAX, false, "subject");
    if (rc != STORE_OK)
        goto out;
    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        rc = store_fail(c, STORE_INTERNAL, "no randomness for the user salt");
        goto out;
    }
    /* ON CONFLICT DO NOTHING: of two concurrent first calls one inserts, the other waits on
     * the unique index and then inserts nothing; both read the one row below. */
    db_val ins[4] = {P_TEXT(subject), P_TEXT(role == STORE_ROLE_ADMIN ? "admin" : "user"),
                     P_BLOB(salt, sizeof(salt)), P_INT(store_now_us())};
    rc = db_exec(c, insert_sql, ins, 4, &r);
    if (rc != STORE_OK)
        goto out;
    if (r.nrows == 1) {
        db_val st[1] = {P_INT(db_int(&r, 0, 0))};
        rc = db_exec(c, state_sql, st, 1, NULL);
        if (rc != STORE_OK)
            goto out;
        if (created != NULL)
            *created = true;
    }
    db_val sel[1] = {P_TEXT(subject)};
    rc = query_one(c, select_sql, sel, 1, &r);
    if (rc == STORE_OK)
        rc = corrupt(c, read_user(&r, 0, out), "users");
out:
    memset(salt, 0, sizeof(salt));
    db_res_clear(&r);
    return rc;
}

store_rc store_user_get(store_conn *c, int64_t user_id, store_user *out)
{
    static const char sql[] = "SELECT " USER_COLS " FROM users WHERE id = $1";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    db_res_init(&r);
    if (rc == STORE_OK) {
        db_val p[1] = {P_INT(user_id)};
        rc = query_one(c, sql, p, 1, &r);
    }
    if (rc == STORE_OK)
        rc = corrupt(c, read_user(&r, 0, out), "users");
    db_res_clear(&r);
    return rc;
}

store_rc store_settings_get(store_conn *c, int64_t user_id, store_settings *out)
{
    store_user u;
    store_rc rc = store_user_get(c, user_id, &u);
    if (rc == STORE_OK)
        *out = u.settings;
    return rc;
}

store_rc store_settings_update(store_conn *c, int64_t user_id, const store_settings *in)
{
    /* The default key must be one of this user's keys: checked in the same statement. */
    static const char sql[] =
        "UPDATE users SET trading_mode = $2, autonomous = $3, default_broker_key_id = $4"
        " WHERE id = $1 AND ($4 IS NULL OR EXISTS"
        " (SELECT 1 FROM broker_keys k WHERE k.id = $4 AND k.user_id = $1))";
    store_rc rc = check_id(c, user_id, "user id");
    if (rc == STORE_OK)
        rc = user_locked(c, user_id, "account setting");
    if (rc != STORE_OK)
        return rc;
    if (in->default_broker_key_id < 0)
        return store_fail(c, STORE_INVALID, "default broker key id must not be negative");
    db_val p[4] = {P_INT(user_id), P_TEXT(in->trading_mode == STORE_MODE_LIVE ? "live" : "paper"),
                   P_INT(in->autonomous ? 1 : 0), P_ID_OPT(in->default_broker_key_id)};
    return change_one(c, sql, p, 4);
}

/* ---- broker keys ------------------------------------------------------------------------------
 */

#define KEY_COLS                                                                                   \
    "id, user_id, broker, label, environment, key_id_mask, ciphertext, master_version,"            \
    " created_at_us, last_used_at_us"

static store_rc read_key(const db_res *r, int row, void *vout)
{
    store_broker_key *k = vout;
    store_rc rc;
    memset(k, 0, sizeof(*k));
    k->id = db_int(r, row, 0);
    k->user_id = db_int(r, row, 1);
    rc = db_copy_text(r, row, 2, k->broker, sizeof(k->broker));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 3, k->label, sizeof(k->label));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 4, k->environment, sizeof(k->environment));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 5, k->key_id_mask, sizeof(k->key_id_mask));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 6, k->ciphertext, sizeof(k->ciphertext));
    k->master_version = (int)db_int(r, row, 7);
    k->created_at_us = db_int(r, row, 8);
    k->last_used_at_us = db_int(r, row, 9);
    return rc;
}

store_rc store_key_put(store_conn *c, int64_t user_id, const store_broker_key *in, int64_t *id_out)
{
    static const char sql[] =
        "INSERT INTO broker_keys (user_id, broker, label, environment, key_id_mask, ciphertext,"
        " master_version, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    db_res_init(&r);
    if (rc == STORE_OK)
        rc = check_text(c, in->broker, STORE_BROKER_MAX, false, "broker");
    if (rc == STORE_OK)
        rc = check_text(c, in->label, STORE_LABEL_MAX, true, "label");
    if (rc == STORE_OK)
        rc = check_text(c, in->environment, STORE_ENV_MAX, false, "environment");
    if (rc == STORE_OK)
        rc = check_text(c, in->key_id_mask, STORE_MASK_MAX, true, "key id mask");
    if (rc == STORE_OK)
        rc = check_text(c, in->ciphertext, STORE_CIPHERTEXT_MAX, false, "ciphertext");
    if (rc != STORE_OK)
        goto out;
    db_val p[8] = {P_INT(user_id),
                   P_TEXT(in->broker),
                   P_TEXT(in->label),
                   P_TEXT(in->environment),
                   P_TEXT(in->key_id_mask),
                   P_TEXT(in->ciphertext),
                   P_INT(in->master_version),
                   P_INT(store_now_us())};
    rc = query_one(c, sql, p, 8, &r);
    if (rc == STORE_OK && id_out != NULL)
        *id_out = db_int(&r, 0, 0);
out:
    db_res_clear(&r);
    return rc;
}

store_rc store_key_list(store_conn *c, int64_t user_id, store_broker_key **out, size_t *n)
{
    static const char sql[] = "SELECT " KEY_COLS " FROM broker_keys WHERE user_id = $1 ORDER BY id";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    *out = NULL;
    *n = 0;
    db_res_init(&r);
    if (rc == STORE_OK) {
        db_val p[1] = {P_INT(user_id)};
        rc = db_exec(c, sql, p, 1, &r);
    }
    if (rc == STORE_OK)
        rc = read_list(c, &r, sizeof(**out), read_key, (void **)out, n, "broker_keys");
    db_res_clear(&r);
    return rc;
}

store_rc store_key_get(store_conn *c, int64_t user_id, int64_t key_id, store_broker_key *out)
{
    static const char sql[] = "SELECT " KEY_COLS " FROM broker_keys WHERE user_id = $1 AND id = $2";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    db_res_init(&r);
    if (rc == STORE_OK) {
        db_val p[2] = {P_INT(user_id), P_INT(key_id)};
        rc = query_one(c, sql, p, 2, &r);
    }
    if (rc == STORE_OK)
        rc = corrupt(c, read_key(&r, 0, out), "broker_keys");
    db_res_clear(&r);
    return rc;
}

store_rc store_key_delete(store_conn *c, int64_t user_id, int64_t key_id)
{
    static const char clear_sql[] = "UPDATE users SET default_broker_key_id = NULL"
                                    " WHERE id = $1 AND default_broker_key_id = $2";
    static const char delete_sql[] = "DELETE FROM broker_keys WHERE user_id = $1 AND id = $2";
    store_rc rc = check_id(c, user_id, "user id");
    if (rc != STORE_OK)
        return rc;
    db_val p[2] = {P_INT(user_id), P_INT(key_id)};
    rc = db_exec(c, clear_sql, p, 2, NULL);
    if (rc == STORE_OK)
        rc = change_one(c, delete_sql, p, 2);
    return rc;
}

store_rc store_key_touch(store_conn *c, int64_t user_id, int64_t key_id, int64_t now_us)
{
    static const char sql[] =
        "UPDATE broker_keys SET last_used_at_us = $3 WHERE user_id = $1 AND id = $2";
    store_rc rc = check_id(c, user_id, "user id");
    if (rc != STORE_OK)
        return rc;
    db_val p[3] = {P_INT(user_id), P_INT(key_id), P_INT(now_us)};
    return change_one(c, sql, p, 3);
}

store_rc store_admin_keys_batch(store_conn *c, int64_t after_id, int limit, store_broker_key **out,
                                size_t *n)
{
    static const char sql[] =
        "SELECT " KEY_COLS " FROM broker_keys WHERE id > $1 ORDER BY id LIMIT $2";
    db_res r;
    store_rc rc;
    *out = NULL;
    *n = 0;
    c->errmsg[0] = '\0';
    db_res_init(&r);
    rc = check_limit(c, limit);
    if (rc == STORE_OK) {
        db_val p[2] = {P_INT(after_id), P_INT(limit)};
        rc = db_exec(c, sql, p, 2, &r);
    }
    if (rc == STORE_OK)
        rc = read_list(c, &r, sizeof(**out), read_key, (void **)out, n, "broker_keys");
    db_res_clear(&r);
    return rc;
}

store_rc store_admin_key_rewrap(store_conn *c, int64_t key_id, int old_version,
                                const char *new_token, int new_version)
{
    static const char sql[] = "UPDATE broker_keys SET ciphertext = $3, master_version = $4"
                              " WHERE id = $1 AND master_version = $2";
    static const char exists_sql[] = "SELECT id FROM broker_keys WHERE id = $1";
    db_res r;
    store_rc rc = check_id(c, key_id, "key id");
    db_res_init(&r);
    if (rc == STORE_OK)
        rc = check_text(c, new_token, STORE_CIPHERTEXT_MAX, false, "ciphertext");
    if (rc != STORE_OK)
        goto out;
    db_val p[4] = {P_INT(key_id), P_INT(old_version), P_TEXT(new_token), P_INT(new_version)};
    rc = db_exec(c, sql, p, 4, &r);
    if (rc != STORE_OK || r.changes == 1)
        goto out;
    rc = query_one(c, exists_sql, p, 1, &r);
    if (rc == STORE_OK)
        rc = store_fail(c, STORE_CONFLICT, "key was rewrapped or replaced concurrently");
out:
    db_res_clear(&r);
    return rc;
}

/* ---- orders ------------------------------------------------------------------------------------
 */

/* One order of user $1 by its id $2: found by the primary key, the owner checked on that row.
 * Written plainly (user_id = $1 AND id = $2), PostgreSQL's generic plan for a prepared
 * statement, made on a connection's sixth execution, can pick the (user_id, created_at_us)
 * index with a filter on id when the table was small at that moment, and every later call
 * then walks all of the user's orders (measured: 1 ms at 1,250 orders, the fill's insert and
 * update 4x the floor's at 16 clients). "user_id + 0" leaves the primary key the only index
 * the planner can use, whatever the statistics. */
#define ORDER_OF_USER "id = $2 AND user_id + 0 = $1"

#define ORDER_COLS                                                                                 \
    "id, user_id, client_order_id, symbol, side, type, tif, qty, limit_price, filled_qty,"         \
    " avg_fill_price, status, origin, mode, broker, broker_key_id, broker_order_id,"               \
    " violations, confirm_by_us, created_at_us, updated_at_us, status_message, note, trace_id,"    \
    " span_id, cancel_actor, cancel_actor_id, cancel_trace_id, cancel_span_id"

static store_rc read_order(const db_res *r, int row, void *vout)
{
    store_order *o = vout;
    store_rc rc;
    memset(o, 0, sizeof(*o));
    o->id = db_int(r, row, 0);
    o->user_id = db_int(r, row, 1);
    rc = db_copy_text(r, row, 2, o->client_order_id, sizeof(o->client_order_id));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 3, o->symbol, sizeof(o->symbol));
    if (rc == STORE_OK)
        rc = read_side(r, row, 4, &o->side);
    int type = 0, tif = 0;
    if (rc == STORE_OK)
        rc = read_word(r, row, 5, type_words, NWORDS(type_words), &type);
    if (rc == STORE_OK)
        rc = read_word(r, row, 6, tif_words, NWORDS(tif_words), &tif);
    o->type = (store_order_type)type;
    o->tif = (store_tif)tif;
    o->qty = db_int(r, row, 7);
    o->limit_price = db_int(r, row, 8);
    o->filled_qty = db_int(r, row, 9);
    o->avg_fill_price = db_int(r, row, 10);
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 11, o->status, sizeof(o->status));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 12, o->origin, sizeof(o->origin));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 13, o->mode, sizeof(o->mode));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 14, o->broker, sizeof(o->broker));
    o->broker_key_id = db_int(r, row, 15);
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 16, o->broker_order_id, sizeof(o->broker_order_id));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 17, o->violations, sizeof(o->violations));
    o->confirm_by_us = db_int(r, row, 18);
    o->created_at_us = db_int(r, row, 19);
    o->updated_at_us = db_int(r, row, 20);
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 21, o->status_message, sizeof(o->status_message));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 22, o->note, sizeof(o->note));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 23, o->trace_id, sizeof(o->trace_id));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 24, o->span_id, sizeof(o->span_id));
    store_canceler *by = &o->cancel_by;
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 25, by->actor, sizeof(by->actor));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 26, by->actor_id, sizeof(by->actor_id));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 27, by->trace_id, sizeof(by->trace_id));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 28, by->span_id, sizeof(by->span_id));
    return rc;
}

static store_rc check_order(store_conn *c, const store_order *o, bool full)
{
    struct {
        const char *v;
        size_t max;
        bool empty_ok;
        const char *name;
    } f[] = {
        {o->status, STORE_WORD_MAX, false, "status"},
        {o->broker_order_id, STORE_COID_MAX, true, "broker order id"},
        {o->violations, STORE_VIOLATIONS_MAX, true, "violations"},
        {o->status_message, STORE_STATUS_MESSAGE_MAX, true, "status message"},
        {o->client_order_id, STORE_COID_MAX, false, "client order id"},
        {o->symbol, STORE_SYMBOL_MAX, false, "symbol"},
        {o->origin, STORE_WORD_MAX, false, "origin"},
        {o->mode, STORE_WORD_MAX, false, "mode"},
        {o->broker, STORE_BROKER_MAX, false, "broker"},
        {o->note, STORE_NOTE_MAX, true, "note"},
        {o->trace_id, 32, true, "trace id"},
        {o->span_id, 16, true, "span id"},
    };
    size_t n = full ? sizeof(f) / sizeof(f[0]) : 4;
    for (size_t i = 0; i < n; i++) {
        store_rc rc = check_text(c, f[i].v, f[i].max, f[i].empty_ok, f[i].name);
        if (rc != STORE_OK)
            return rc;
    }
    if (full && check_side(c, o->side) != STORE_OK)
        return STORE_INVALID;
    if (full && !*store_order_type_name(o->type))
        return store_fail(c, STORE_INVALID, "type must be market or limit");
    if (full && !*store_tif_name(o->tif))
        return store_fail(c, STORE_INVALID, "time in force must be day, gtc or ioc");
    if (o->qty <= 0 || o->filled_qty < 0 || o->limit_price < 0 || o->avg_fill_price < 0)
        return store_fail(c, STORE_INVALID, "quantities and prices must not be negative");
    return STORE_OK;
}

store_rc store_order_insert(store_conn *c, int64_t user_id, const store_order *in, int64_t *id_out)
{
    static const char key_sql[] = "SELECT id FROM broker_keys WHERE user_id = $1 AND id = $2";
    static const char sql[] =
        "INSERT INTO orders (user_id, client_order_id, symbol, side, type, tif, qty, limit_price,"
        " filled_qty, avg_fill_price, status, origin, mode, broker, broker_key_id,"
        " broker_order_id, violations, confirm_by_us, created_at_us, updated_at_us,"
        " status_message, note, trace_id, span_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
        " $18, $19, $19, $20, $21, $22, $23) ON CONFLICT (user_id, client_order_id) DO NOTHING "
        "RETURNING id";
    static const char coid_sql[] =
        "SELECT id FROM orders WHERE user_id = $1 AND client_order_id = $2";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    if (rc == STORE_OK)
        rc = user_locked(c, user_id, "order");
    db_res_init(&r);
    if (rc == STORE_OK)
        rc = check_order(c, in, true);
    if (rc != STORE_OK)
        goto out;
    if (in->broker_key_id != 0) { /* the key must be this user's */
        db_val k[2] = {P_INT(user_id), P_INT(in->broker_key_id)};
        rc = query_one(c, key_sql, k, 2, &r);
        if (rc != STORE_OK)
            goto out;
    }
    db_val p[23] = {P_INT(user_id),
                    P_TEXT(in->client_order_id),
                    P_TEXT(in->symbol),
                    P_TEXT(store_side_name(in->side)),
                    P_TEXT(store_order_type_name(in->type)),
                    P_TEXT(store_tif_name(in->tif)),
                    P_INT(in->qty),
                    P_ID_OPT(in->limit_price),
                    P_INT(in->filled_qty),
                    P_INT(in->avg_fill_price),
                    P_TEXT(in->status),
                    P_TEXT(in->origin),
                    P_TEXT(in->mode),
                    P_TEXT(in->broker),
                    P_ID_OPT(in->broker_key_id),
                    P_TEXT_OPT(in->broker_order_id),
                    P_TEXT(in->violations[0] ? in->violations : "[]"),
                    P_ID_OPT(in->confirm_by_us),
                    P_INT(in->created_at_us > 0 ? in->created_at_us : store_now_us()),
                    P_TEXT(in->status_message),
                    P_TEXT(in->note),
                    P_TEXT(in->trace_id),
                    P_TEXT(in->span_id)};
    rc = db_exec(c, sql, p, 23, &r);
    if (rc != STORE_OK)
        goto out;
    if (r.nrows == 0) {
        rc = query_one(c, coid_sql, p, 2, &r);
        if (rc == STORE_OK) {
            if (id_out != NULL)
                *id_out = db_int(&r, 0, 0);
            rc = store_fail(c, STORE_CONFLICT, "client order id already used");
        }
        goto out;
    }
    if (id_out != NULL)
        *id_out = db_int(&r, 0, 0);
out:
    db_res_clear(&r);
    return rc;
}

static store_rc order_get(store_conn *c, const char *sql, const db_val *p, store_order *out)
{
    db_res r;
    store_rc rc;
    db_res_init(&r);
    rc = query_one(c, sql, p, 2, &r);
    if (rc == STORE_OK)
        rc = corrupt(c, read_order(&r, 0, out), "orders");
    db_res_clear(&r);
    return rc;
}

store_rc store_order_get(store_conn *c, int64_t user_id, int64_t order_id, store_order *out)
{
    static const char sql[] = "SELECT " ORDER_COLS " FROM orders WHERE " ORDER_OF_USER;
    store_rc rc = check_id(c, user_id, "user id");
    if (rc != STORE_OK)
        return rc;
    db_val p[2] = {P_INT(user_id), P_INT(order_id)};
    return order_get(c, sql, p, out);
}

store_rc store_order_get_by_coid(store_conn *c, int64_t user_id, const char *client_order_id,
                                 store_order *out)
{
    static const char sql[] =
        "SELECT " ORDER_COLS " FROM orders WHERE user_id = $1 AND client_order_id = $2";
    store_rc rc = check_id(c, user_id, "user id");
    if (rc == STORE_OK)
        rc = check_text(c, client_order_id, STORE_COID_MAX, false, "client order id");
    if (rc != STORE_OK)
        return rc;
    db_val p[2] = {P_INT(user_id), P_TEXT(client_order_id)};
    return order_get(c, sql, p, out);
}

store_rc store_order_update(store_conn *c, int64_t user_id, int64_t order_id, store_order *in)
{
    static const char sql[] = "UPDATE orders SET status = $3, filled_qty = $4, avg_fill_price = $5,"
                              " broker_order_id = $6, violations = $7, updated_at_us = $8,"
                              " status_message = $9 WHERE " ORDER_OF_USER;
    store_rc rc = check_id(c, user_id, "user id");
    if (rc == STORE_OK)
        rc = user_locked(c, user_id, "order");
    if (rc == STORE_OK)
        rc = check_text(c, in->status, STORE_WORD_MAX, false, "status");
    if (rc == STORE_OK)
        rc = check_text(c, in->broker_order_id, STORE_COID_MAX, true, "broker order id");
    if (rc == STORE_OK)
        rc = check_text(c, in->violations, STORE_VIOLATIONS_MAX, true, "violations");
    if (rc == STORE_OK)
        rc = check_text(c, in->status_message, STORE_STATUS_MESSAGE_MAX, true, "status message");
    if (rc == STORE_OK && (in->filled_qty < 0 || in->avg_fill_price < 0))
        rc = store_fail(c, STORE_INVALID, "fill quantity and price must not be negative");
    if (rc != STORE_OK)
        return rc;
    int64_t now_us = store_now_us();
    db_val p[9] = {P_INT(user_id),
                   P_INT(order_id),
                   P_TEXT(in->status),
                   P_INT(in->filled_qty),
                   P_INT(in->avg_fill_price),
                   P_TEXT_OPT(in->broker_order_id),
                   P_TEXT(in->violations[0] ? in->violations : "[]"),
                   P_INT(now_us),
                   P_TEXT(in->status_message)};
    rc = change_one(c, sql, p, 9);
    if (rc == STORE_OK)
        in->updated_at_us = now_us;
    return rc;
}

store_rc store_order_cancel_requested(store_conn *c, int64_t user_id, int64_t order_id,
                                      const store_canceler *by)
{
    static const char sql[] = "UPDATE orders SET cancel_actor = $3, cancel_actor_id = $4,"
                              " cancel_trace_id = $5, cancel_span_id = $6"
                              " WHERE " ORDER_OF_USER;
    store_rc rc = check_id(c, user_id, "user id");
    if (rc == STORE_OK)
        rc = user_locked(c, user_id, "order");
    if (rc == STORE_OK && strcmp(by->actor, "user") != 0 && strcmp(by->actor, "admin") != 0)
        rc = store_fail(c, STORE_INVALID, "canceler must be a user or an admin");
    if (rc == STORE_OK)
        rc = check_text(c, by->actor_id, STORE_SUBJECT_MAX, false, "canceler subject");
    if (rc == STORE_OK && (strlen(by->trace_id) != (by->trace_id[0] ? 32 : 0) ||
                           strlen(by->span_id) != (by->trace_id[0] ? 16 : 0)))
        rc = store_fail(c, STORE_INVALID, "canceler trace must be 32 and 16 characters or none");
    if (rc != STORE_OK)
        return rc;
    db_val p[6] = {P_INT(user_id),       P_INT(order_id),      P_TEXT(by->actor),
                   P_TEXT(by->actor_id), P_TEXT(by->trace_id), P_TEXT(by->span_id)};
    return change_one(c, sql, p, 6);
}

#define ORDER_PAGE_WHERE                                                                           \
    " FROM orders WHERE user_id = $1 AND (CAST($2 AS TEXT) IS NULL OR status = $2)"                \
    " AND ($3 = 0 OR id < $3) ORDER BY id DESC LIMIT $4"

/* One page of a user's orders (ORDER_PAGE_WHERE's parameters), rows read by fn. */
static store_rc order_page(store_conn *c, const char *sql, int64_t user_id, const char *status,
                           int64_t before_id, int limit, size_t elsize, row_fn fn, void **out,
                           size_t *n)
{
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    *out = NULL;
    *n = 0;
    db_res_init(&r);
    if (rc == STORE_OK)
        rc = check_limit(c, limit);
    if (rc == STORE_OK && status != NULL)
        rc = check_text(c, status, STORE_WORD_MAX, false, "status");
    if (rc == STORE_OK) {
        db_val p[4] = {P_INT(user_id), P_TEXT(status), P_INT(before_id), P_INT(limit)};
        rc = db_exec(c, sql, p, 4, &r);
    }
    if (rc == STORE_OK)
        rc = read_list(c, &r, elsize, fn, out, n, "orders");
    db_res_clear(&r);
    return rc;
}

store_rc store_order_list(store_conn *c, int64_t user_id, const char *status, int64_t before_id,
                          int limit, store_order **out, size_t *n)
{
    static const char sql[] = "SELECT " ORDER_COLS ORDER_PAGE_WHERE;
    return order_page(c, sql, user_id, status, before_id, limit, sizeof(**out), read_order,
                      (void **)out, n);
}

#define ORDER_BRIEF_COLS                                                                           \
    "id, symbol, side, status, qty, limit_price, filled_qty, avg_fill_price, created_at_us,"       \
    " updated_at_us"

static store_rc read_order_brief(const db_res *r, int row, void *vout)
{
    store_order_brief *o = vout;
    store_rc rc;
    memset(o, 0, sizeof(*o));
    o->id = db_int(r, row, 0);
    rc = db_copy_text(r, row, 1, o->symbol, sizeof(o->symbol));
    if (rc == STORE_OK)
        rc = read_side(r, row, 2, &o->side);
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 3, o->status, sizeof(o->status));
    o->qty = db_int(r, row, 4);
    o->limit_price = db_int(r, row, 5);
    o->filled_qty = db_int(r, row, 6);
    o->avg_fill_price = db_int(r, row, 7);
    o->created_at_us = db_int(r, row, 8);
    o->updated_at_us = db_int(r, row, 9);
    return rc;
}

store_rc store_order_brief_list(store_conn *c, int64_t user_id, const char *status,
                                int64_t before_id, int limit, store_order_brief **out, size_t *n)
{
    static const char sql[] = "SELECT " ORDER_BRIEF_COLS ORDER_PAGE_WHERE;
    return order_page(c, sql, user_id, status, before_id, limit, sizeof(**out), read_order_brief,
                      (void **)out, n);
}

static store_rc check_period_limit(store_conn *c, int limit)
{
    if (limit < 1 || limit > STORE_PERIOD_MAX)
        return store_fail(c, STORE_INVALID, "limit must be 1..%d", STORE_PERIOD_MAX);
    return STORE_OK;
}

store_rc store_order_brief_since(store_conn *c, int64_t user_id, int64_t since_us,
                                 const char *symbol, store_side side, int64_t qty,
                                 int64_t exclude_id, int limit, store_order_brief **out, size_t *n)
{
    /* orders_user_created bounds the scan to the period; the rest filters inside it. */
    static const char sql[] =
        "SELECT " ORDER_BRIEF_COLS " FROM orders WHERE user_id = $1 AND created_at_us >= $2"
        " AND status <> 'REJECTED' AND id <> $3"
        " AND (CAST($4 AS TEXT) IS NULL OR (symbol = $4 AND side = $5 AND qty = $6))"
        " ORDER BY created_at_us DESC, id DESC LIMIT $7";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    *out = NULL;
    *n = 0;
    db_res_init(&r);
    if (rc == STORE_OK)
        rc = check_period_limit(c, limit);
    if (rc == STORE_OK && symbol != NULL)
        rc = check_text(c, symbol, STORE_SYMBOL_MAX, false, "symbol");
    if (rc == STORE_OK && symbol != NULL)
        rc = check_side(c, side);
    if (rc == STORE_OK) {
        db_val p[7] = {P_INT(user_id),
                       P_INT(since_us),
                       P_INT(exclude_id),
                       P_TEXT(symbol),
                       symbol ? P_TEXT(store_side_name(side)) : P_NULL_TEXT,
                       P_INT(symbol ? qty : 0),
                       P_INT(limit)};
        rc = db_exec(c, sql, p, 7, &r);
    }
    if (rc == STORE_OK)
        rc = read_list(c, &r, sizeof(**out), read_order_brief, (void **)out, n, "orders");
    db_res_clear(&r);
    return rc;
}

store_rc store_order_open_brief_list(store_conn *c, int64_t user_id, int limit,
                                     store_order_brief **out, size_t *n)
{
    /* orders_user_open (a partial index of open orders): the status list must stay the
     * index's, word for word, for the planners to use it. */
    static const char sql[] =
        "SELECT " ORDER_BRIEF_COLS " FROM orders WHERE user_id = $1 AND status IN"
        " ('PENDING_CONFIRMATION', 'PENDING_SUBMIT', 'ACCEPTED', 'PARTIALLY_FILLED')"
        " ORDER BY id LIMIT $2";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    *out = NULL;
    *n = 0;
    db_res_init(&r);
    if (rc == STORE_OK)
        rc = check_period_limit(c, limit);
    if (rc == STORE_OK) {
        db_val p[2] = {P_INT(user_id), P_INT(limit)};
        rc = db_exec(c, sql, p, 2, &r);
    }
    if (rc == STORE_OK)
        rc = read_list(c, &r, sizeof(**out), read_order_brief, (void **)out, n, "orders");
    db_res_clear(&r);
    return rc;
}

/* ADMIN (reconciler): orders of every user whose status is one of the open ones, oldest id
 * first, id > after_id. */
store_rc store_admin_orders_open(store_conn *c, int64_t after_id, int limit, store_order **out,
                                 size_t *n)
{
    static const char sql[] =
        "SELECT " ORDER_COLS " FROM orders WHERE id > $1 AND status IN"
        " ('PENDING_CONFIRMATION', 'PENDING_SUBMIT', 'ACCEPTED', 'PARTIALLY_FILLED')"
        " ORDER BY id LIMIT $2";
    db_res r;
    store_rc rc = check_limit(c, limit);
    *out = NULL;
    *n = 0;
    db_res_init(&r);
    if (rc == STORE_OK) {
        db_val p[2] = {P_INT(after_id), P_INT(limit)};
        rc = db_exec(c, sql, p, 2, &r);
    }
    if (rc == STORE_OK)
        rc = read_list(c, &r, sizeof(**out), read_order, (void **)out, n, "orders");
    db_res_clear(&r);
    return rc;
}

/* ADMIN (broker webhooks): the owner of an order id, for routing a broker's report. */
store_rc store_admin_order_owner(store_conn *c, int64_t order_id, int64_t *user_id)
{
    static const char sql[] = "SELECT user_id FROM orders WHERE id = $1";
    db_res r;
    store_rc rc = check_id(c, order_id, "order id");
    db_res_init(&r);
    if (rc == STORE_OK) {
        db_val p[1] = {P_INT(order_id)};
        rc = db_exec(c, sql, p, 1, &r);
    }
    if (rc == STORE_OK) {
        if (r.nrows == 0)
            rc = STORE_NOT_FOUND;
        else
            *user_id = db_int(&r, 0, 0);
    }
    db_res_clear(&r);
    return rc;
}

/* ---- fills, positions, day trades ------------------------------------------------------------ */

static store_rc read_fill(const db_res *r, int row, void *vout)
{
    store_fill *f = vout;
    store_rc rc;
    memset(f, 0, sizeof(*f));
    f->id = db_int(r, row, 0);
    f->order_id = db_int(r, row, 1);
    rc = db_copy_text(r, row, 2, f->broker_fill_id, sizeof(f->broker_fill_id));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 3, f->symbol, sizeof(f->symbol));
    if (rc == STORE_OK)
        rc = read_side(r, row, 4, &f->side);
    f->qty = db_int(r, row, 5);
    f->price = db_int(r, row, 6);
    f->time_us = db_int(r, row, 7);
    return rc;
}

store_rc store_fill_insert(store_conn *c, int64_t user_id, const store_fill *in, int64_t *id_out)
{
    /* INSERT ... SELECT from the user's own order: no row is written for another's order. */
    static const char sql[] =
        "INSERT INTO fills (user_id, order_id, broker_fill_id, symbol, side, qty, price, time_us)"
        " SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM orders WHERE " ORDER_OF_USER " RETURNING id";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    if (rc == STORE_OK)
        rc = user_locked(c, user_id, "fill");
    db_res_init(&r);
    if (rc == STORE_OK)
        rc = check_text(c, in->broker_fill_id, STORE_COID_MAX, true, "broker fill id");
    if (rc == STORE_OK)
        rc = check_text(c, in->symbol, STORE_SYMBOL_MAX, false, "symbol");
    if (rc == STORE_OK)
        rc = check_side(c, in->side);
    if (rc == STORE_OK && (in->qty <= 0 || in->price < 0))
        rc = store_fail(c, STORE_INVALID, "fill quantity must be positive, price not negative");
    if (rc != STORE_OK)
        goto out;
    db_val p[8] = {P_INT(user_id),
                   P_INT(in->order_id),
                   P_TEXT_OPT(in->broker_fill_id),
                   P_TEXT(in->symbol),
                   P_TEXT(store_side_name(in->side)),
                   P_INT(in->qty),
                   P_INT(in->price),
                   P_INT(in->time_us)};
    rc = query_one(c, sql, p, 8, &r);
    if (rc == STORE_OK && id_out != NULL)
        *id_out = db_int(&r, 0, 0);
out:
    db_res_clear(&r);
    return rc;
}

store_rc store_fill_list(store_conn *c, int64_t user_id, int64_t order_id, store_fill **out,
                         size_t *n)
{
    static const char sql[] =
        "SELECT id, order_id, broker_fill_id, symbol, side, qty, price, time_us FROM fills"
        " WHERE user_id = $1 AND order_id = $2 ORDER BY id";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    *out = NULL;
    *n = 0;
    db_res_init(&r);
    if (rc == STORE_OK) {
        db_val p[2] = {P_INT(user_id), P_INT(order_id)};
        rc = db_exec(c, sql, p, 2, &r);
    }
    if (rc == STORE_OK)
        rc = read_list(c, &r, sizeof(**out), read_fill, (void **)out, n, "fills");
    db_res_clear(&r);
    return rc;
}

store_rc store_fill_list_period(store_conn *c, int64_t user_id, int64_t since_us, int64_t until_us,
                                int limit, store_fill **out, size_t *n)
{
    /* fills_user_time bounds the scan to the period. */
    static const char sql[] =
        "SELECT id, order_id, broker_fill_id, symbol, side, qty, price, time_us FROM fills"
        " WHERE user_id = $1 AND time_us >= $2 AND ($3 = 0 OR time_us < $3)"
        " ORDER BY time_us, id LIMIT $4";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    *out = NULL;
    *n = 0;
    db_res_init(&r);
    if (rc == STORE_OK)
        rc = check_period_limit(c, limit);
    if (rc == STORE_OK) {
        db_val p[4] = {P_INT(user_id), P_INT(since_us), P_INT(until_us), P_INT(limit)};
        rc = db_exec(c, sql, p, 4, &r);
    }
    if (rc == STORE_OK)
        rc = read_list(c, &r, sizeof(**out), read_fill, (void **)out, n, "fills");
    db_res_clear(&r);
    return rc;
}

static store_rc read_position(const db_res *r, int row, void *vout)
{
    store_position *p = vout;
    memset(p, 0, sizeof(*p));
    p->qty = db_int(r, row, 1);
    p->avg_cost = db_int(r, row, 2);
    p->realized_pnl = db_int(r, row, 3);
    return db_copy_text(r, row, 0, p->symbol, sizeof(p->symbol));
}

store_rc store_position_put(store_conn *c, int64_t user_id, const store_position *in)
{
    static const char sql[] =
        "INSERT INTO positions (user_id, symbol, qty, avg_cost, realized_pnl, updated_at_us)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, symbol) DO UPDATE SET"
        " qty = excluded.qty, avg_cost = excluded.avg_cost,"
        " realized_pnl = excluded.realized_pnl, updated_at_us = excluded.updated_at_us";
    store_rc rc = check_id(c, user_id, "user id");
    if (rc == STORE_OK)
        rc = user_locked(c, user_id, "position");
    if (rc == STORE_OK)
        rc = check_text(c, in->symbol, STORE_SYMBOL_MAX, false, "symbol");
    if (rc != STORE_OK)
        return rc;
    db_val p[6] = {P_INT(user_id),      P_TEXT(in->symbol),      P_INT(in->qty),
                   P_INT(in->avg_cost), P_INT(in->realized_pnl), P_INT(store_now_us())};
    return db_exec(c, sql, p, 6, NULL);
}

store_rc store_position_get(store_conn *c, int64_t user_id, const char *symbol, store_position *out)
{
    static const char sql[] = "SELECT symbol, qty, avg_cost, realized_pnl FROM positions"
                              " WHERE user_id = $1 AND symbol = $2";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    db_res_init(&r);
    if (rc == STORE_OK)
        rc = check_text(c, symbol, STORE_SYMBOL_MAX, false, "symbol");
    if (rc == STORE_OK) {
        db_val p[2] = {P_INT(user_id), P_TEXT(symbol)};
        rc = query_one(c, sql, p, 2, &r);
    }
    if (rc == STORE_OK)
        rc = corrupt(c, read_position(&r, 0, out), "positions");
    db_res_clear(&r);
    return rc;
}

store_rc store_position_list(store_conn *c, int64_t user_id, store_position **out, size_t *n)
{
    static const char sql[] = "SELECT symbol, qty, avg_cost, realized_pnl FROM positions"
                              " WHERE user_id = $1 ORDER BY symbol";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    *out = NULL;
    *n = 0;
    db_res_init(&r);
    if (rc == STORE_OK) {
        db_val p[1] = {P_INT(user_id)};
        rc = db_exec(c, sql, p, 1, &r);
    }
    if (rc == STORE_OK)
        rc = read_list(c, &r, sizeof(**out), read_position, (void **)out, n, "positions");
    db_res_clear(&r);
    return rc;
}

static store_rc read_user_id(const db_res *r, int row, void *vout)
{
    *(int64_t *)vout = db_int(r, row, 0);
    return STORE_OK;
}

store_rc store_position_holders(store_conn *c, const char *symbol, int64_t **out, size_t *n)
{
    static const char sql[] = "SELECT user_id FROM positions WHERE symbol = $1 AND qty <> 0"
                              " ORDER BY user_id";
    db_res r;
    store_rc rc = check_text(c, symbol, STORE_SYMBOL_MAX, false, "symbol");
    *out = NULL;
    *n = 0;
    db_res_init(&r);
    if (rc == STORE_OK) {
        db_val p[1] = {P_TEXT(symbol)};
        rc = db_exec(c, sql, p, 1, &r);
    }
    if (rc == STORE_OK)
        rc = read_list(c, &r, sizeof(**out), read_user_id, (void **)out, n, "positions");
    db_res_clear(&r);
    return rc;
}

store_rc store_broker_holders(store_conn *c, int64_t after_id, int limit, int64_t **out, size_t *n)
{
    static const char sql[] = "SELECT u.id FROM users u WHERE u.id > $1"
                              " AND u.default_broker_key_id IS NOT NULL AND EXISTS"
                              " (SELECT 1 FROM positions p WHERE p.user_id = u.id AND p.qty <> 0)"
                              " ORDER BY u.id LIMIT $2";
    db_res r;
    *out = NULL;
    *n = 0;
    if (limit <= 0)
        return store_fail(c, STORE_INVALID, "limit must be positive");
    db_res_init(&r);
    db_val p[2] = {P_INT(after_id), P_INT(limit)};
    store_rc rc = db_exec(c, sql, p, 2, &r);
    if (rc == STORE_OK)
        rc = read_list(c, &r, sizeof(**out), read_user_id, (void **)out, n, "users");
    db_res_clear(&r);
    return rc;
}

static store_rc read_day_trade(const db_res *r, int row, void *vout)
{
    store_day_trade *d = vout;
    memset(d, 0, sizeof(*d));
    d->trading_day = (int)db_int(r, row, 1);
    d->open_order_id = db_int(r, row, 2);
    d->close_order_id = db_int(r, row, 3);
    d->time_us = db_int(r, row, 4);
    return db_copy_text(r, row, 0, d->symbol, sizeof(d->symbol));
}

store_rc store_day_trade_insert(store_conn *c, int64_t user_id, const store_day_trade *in)
{
    static const char sql[] = "INSERT INTO day_trades (user_id, symbol, trading_day,"
                              " open_order_id, close_order_id, time_us)"
                              " VALUES ($1, $2, $3, $4, $5, $6)";
    store_rc rc = check_id(c, user_id, "user id");
    if (rc == STORE_OK)
        rc = user_locked(c, user_id, "day trade");
    if (rc == STORE_OK)
        rc = check_text(c, in->symbol, STORE_SYMBOL_MAX, false, "symbol");
    if (rc != STORE_OK)
        return rc;
    db_val p[6] = {P_INT(user_id),
                   P_TEXT(in->symbol),
                   P_INT(in->trading_day),
                   P_ID_OPT(in->open_order_id),
                   P_ID_OPT(in->close_order_id),
                   P_INT(in->time_us)};
    return db_exec(c, sql, p, 6, NULL);
}

store_rc store_day_trade_list(store_conn *c, int64_t user_id, int since_day, store_day_trade **out,
                              size_t *n)
{
    static const char sql[] =
        "SELECT symbol, trading_day, open_order_id, close_order_id, time_us FROM day_trades"
        " WHERE user_id = $1 AND trading_day >= $2 ORDER BY trading_day, id";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    *out = NULL;
    *n = 0;
    db_res_init(&r);
    if (rc == STORE_OK) {
        db_val p[2] = {P_INT(user_id), P_INT(since_day)};
        rc = db_exec(c, sql, p, 2, &r);
    }
    if (rc == STORE_OK)
        rc = read_list(c, &r, sizeof(**out), read_day_trade, (void **)out, n, "day_trades");
    db_res_clear(&r);
    return rc;
}

/* ---- risk limits, risk state, global ------------------------------------------------------- */

store_rc store_risk_limits_get(store_conn *c, int64_t user_id, store_risk_limits *out)
{
    static const char sql[] =
        "SELECT daily_loss_bps, daily_loss_abs, drawdown_bps, max_positions, max_sector_bps,"
        " max_notional_bps, collar_bps, dup_window_s, max_orders_per_s, pdt_enabled"
        " FROM risk_limits WHERE user_id = $1";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    db_res_init(&r);
    if (rc == STORE_OK) {
        db_val p[1] = {P_INT(user_id)};
        rc = query_one(c, sql, p, 1, &r);
    }
    if (rc == STORE_OK) {
        memset(out, 0, sizeof(*out));
        out->daily_loss_bps = db_int(&r, 0, 0);
        out->daily_loss_abs = db_int(&r, 0, 1);
        out->drawdown_bps = db_int(&r, 0, 2);
        out->max_positions = db_int(&r, 0, 3);
        out->max_sector_bps = db_int(&r, 0, 4);
        out->max_notional_bps = db_int(&r, 0, 5);
        out->collar_bps = db_int(&r, 0, 6);
        out->dup_window_s = db_int(&r, 0, 7);
        out->max_orders_per_s = db_int(&r, 0, 8);
        out->pdt_enabled = db_int(&r, 0, 9) != 0;
    }
    db_res_clear(&r);
    return rc;
}

store_rc store_risk_limits_set(store_conn *c, int64_t user_id, const store_risk_limits *in)
{
    static const char sql[] =
        "INSERT INTO risk_limits (user_id, daily_loss_bps, daily_loss_abs, drawdown_bps,"
        " max_positions, max_sector_bps, max_notional_bps, collar_bps, dup_window_s,"
        " max_orders_per_s, pdt_enabled, updated_at_us)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        " ON CONFLICT (user_id) DO UPDATE SET daily_loss_bps = excluded.daily_loss_bps,"
        " daily_loss_abs = excluded.daily_loss_abs, drawdown_bps = excluded.drawdown_bps,"
        " max_positions = excluded.max_positions, max_sector_bps = excluded.max_sector_bps,"
        " max_notional_bps = excluded.max_notional_bps, collar_bps = excluded.collar_bps,"
        " dup_window_s = excluded.dup_window_s, max_orders_per_s = excluded.max_orders_per_s,"
        " pdt_enabled = excluded.pdt_enabled, updated_at_us = excluded.updated_at_us";
    store_rc rc = check_id(c, user_id, "user id");
    if (rc == STORE_OK)
        rc = user_locked(c, user_id, "risk limit");
    if (rc != STORE_OK)
        return rc;
    db_val p[12] = {P_INT(user_id),
                    P_INT(in->daily_loss_bps),
                    P_INT(in->daily_loss_abs),
                    P_INT(in->drawdown_bps),
                    P_INT(in->max_positions),
                    P_INT(in->max_sector_bps),
                    P_INT(in->max_notional_bps),
                    P_INT(in->collar_bps),
                    P_INT(in->dup_window_s),
                    P_INT(in->max_orders_per_s),
                    P_INT(in->pdt_enabled ? 1 : 0),
                    P_INT(store_now_us())};
    return db_exec(c, sql, p, 12, NULL);
}

store_rc store_risk_state_get(store_conn *c, int64_t user_id, store_risk_state *out)
{
    static const char sql[] =
        "SELECT trading_state, halted_by, halt_reason, breaker_until_us, sod_equity,"
        " peak_equity, trading_day FROM risk_state WHERE user_id = $1";
    db_res r;
    store_rc rc = check_id(c, user_id, "user id");
    db_res_init(&r);
    if (rc == STORE_OK) {
        db_val p[1] = {P_INT(user_id)};
        rc = query_one(c, sql, p, 1, &r);
    }
    if (rc == STORE_OK) {
        memset(out, 0, sizeof(*out));
        rc = db_copy_text(&r, 0, 0, out->trading_state, sizeof(out->trading_state));
        if (rc == STORE_OK)
            rc = db_copy_text(&r, 0, 1, out->halted_by, sizeof(out->halted_by));
        if (rc == STORE_OK)
            rc = db_copy_text(&r, 0, 2, out->halt_reason, sizeof(out->halt_reason));
        out->breaker_until_us = db_int(&r, 0, 3);
        out->sod_equity = db_int(&r, 0, 4);
        out->peak_equity = db_int(&r, 0, 5);
        out->trading_day = (int)db_int(&r, 0, 6);
        rc = corrupt(c, rc, "risk_state");
    }
    db_res_clear(&r);
    return rc;
}

store_rc store_risk_state_update(store_conn *c, int64_t user_id, const store_risk_state *in)
{
    static const char sql[] =
        "UPDATE risk_state SET trading_state = $2, halted_by = $3, halt_reason = $4,"
        " breaker_until_us = $5, sod_equity = $6, peak_equity = $7, trading_day = $8,"
        " updated_at_us = $9 WHERE user_id = $1";
    store_rc rc = check_id(c, user_id, "user id");
    if (rc != STORE_OK)
        return rc;
    if (!c->in_tx || c->tx_user != user_id)
        return store_fail(c, STORE_INVALID,
                          "risk state changes need the user's lock (store_tx_begin_user)");
    rc = check_text(c, in->trading_state, STORE_WORD_MAX, false, "trading state");
    if (rc == STORE_OK)
        rc = check_text(c, in->halted_by, STORE_WORD_MAX, true, "halted by");
    if (rc == STORE_OK)
        rc = check_text(c, in->halt_reason, STORE_REASON_MAX, true, "halt reason");
    if (rc != STORE_OK)
        return rc;
    db_val p[9] = {P_INT(user_id),          P_TEXT(in->trading_state),   P_TEXT(in->halted_by),
                   P_TEXT(in->halt_reason), P_INT(in->breaker_until_us), P_INT(in->sod_equity),
                   P_INT(in->peak_equity),  P_INT(in->trading_day),      P_INT(store_now_us())};
    return change_one(c, sql, p, 9);
}

store_rc store_global_get(store_conn *c, store_global_state *out)
{
    static const char sql[] =
        "SELECT halted, halted_by, halt_reason, updated_at_us FROM global_state WHERE id = 1";
    db_res r;
    store_rc rc;
    c->errmsg[0] = '\0';
    db_res_init(&r);
    rc = query_one(c, sql, NULL, 0, &r);
    if (rc == STORE_OK) {
        memset(out, 0, sizeof(*out));
        out->halted = db_int(&r, 0, 0) != 0;
        rc = db_copy_text(&r, 0, 1, out->halted_by, sizeof(out->halted_by));
        if (rc == STORE_OK)
            rc = db_copy_text(&r, 0, 2, out->halt_reason, sizeof(out->halt_reason));
        out->updated_at_us = db_int(&r, 0, 3);
        rc = corrupt(c, rc, "global_state");
    }
    db_res_clear(&r);
    return rc;
}

store_rc store_global_set(store_conn *c, bool halted, const char *halted_by, const char *reason,
                          int64_t now_us)
{
    static const char sql[] = "UPDATE global_state SET halted = $1, halted_by = $2,"
                              " halt_reason = $3, updated_at_us = $4 WHERE id = 1";
    store_rc rc;
    c->errmsg[0] = '\0';
    rc = check_text(c, halted_by, STORE_SUBJECT_MAX, true, "halted by");
    if (rc == STORE_OK)
        rc = check_text(c, reason, STORE_REASON_MAX, true, "reason");
    if (rc != STORE_OK)
        return rc;
    db_val p[4] = {P_INT(halted ? 1 : 0), P_TEXT(halted_by), P_TEXT(reason), P_INT(now_us)};
    c->tx_global_set = c->tx_global_set || c->in_tx;
    rc = change_one(c, sql, p, 4);
    if (rc == STORE_OK && !c->in_tx && c->st->commit_hook) /* committed by itself */
        c->st->commit_hook(c->st->commit_hook_ctx, 0, 0);
    return rc;
}

/* ---- audit ----------------------------------------------------------------------------------- */

#define AUDIT_COLS                                                                                 \
    "id, chain, seq, time_us, actor, actor_id, action, object_id, outcome, details,"               \
    " prev_hash, hash"

static store_rc read_audit(const db_res *r, int row, void *vout)
{
    store_audit_event *e = vout;
    store_rc rc;
    memset(e, 0, sizeof(*e));
    e->id = db_int(r, row, 0);
    e->user_id = db_int(r, row, 1);
    e->seq = db_int(r, row, 2);
    e->time_us = db_int(r, row, 3);
    rc = db_copy_text(r, row, 4, e->actor, sizeof(e->actor));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 5, e->actor_id, sizeof(e->actor_id));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 6, e->action, sizeof(e->action));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 7, e->object_id, sizeof(e->object_id));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 8, e->outcome, sizeof(e->outcome));
    if (rc == STORE_OK)
        rc = db_copy_text(r, row, 9, e->details, sizeof(e->details));
    if (rc == STORE_OK)
        rc = db_copy_blob(r, row, 10, e->prev_hash, sizeof(e->prev_hash));
    if (rc == STORE_OK)
        rc = db_copy_blob(r, row, 11, e->hash, sizeof(e->hash));
    return rc;
}

/* Whether the open transaction holds chain's lock (its head cannot move under us). */
static bool holds_chain(const store_conn *c, int64_t chain)
{
    return c->in_tx && (chain > 0 ? c->tx_user == chain : c->tx_global);
}

static void remember_head(store_conn *c, int64_t chain, int64_t seq,
                          const unsigned char hash[STORE_HASH_LEN])
{
    if (!holds_chain(c, chain))
        return;
    c->head_valid = true;
    c->head_chain = chain;
    c->head_seq = seq;
    memcpy(c->head_hash, hash, STORE_HASH_LEN);
}

store_rc store_audit_last(store_conn *c, int64_t user_id, int64_t *seq,
                          unsigned char hash[STORE_HASH_LEN])
{
    static const char sql[] =
        "SELECT seq, hash FROM audit_events WHERE chain = $1 ORDER BY seq DESC LIMIT 1";
    _Static_assert(sizeof(c->head_hash) == STORE_HASH_LEN, "head_hash holds one chain hash");
    db_res r;
    store_rc rc;
    c->errmsg[0] = '\0';
    *seq = 0;
    memset(hash, 0, STORE_HASH_LEN);
    if (user_id < 0)
        return store_fail(c, STORE_INVALID, "user id must not be negative");
    if (c->head_valid && c->head_chain == user_id && holds_chain(c, user_id)) {
        *seq = c->head_seq;
        memcpy(hash, c->head_hash, STORE_HASH_LEN);
        return STORE_OK;
    }
    db_res_init(&r);
    db_val p[1] = {P_INT(user_id)};
    rc = db_exec(c, sql, p, 1, &r);
    if (rc == STORE_OK && r.nrows == 1) {
        *seq = db_int(&r, 0, 0);
        rc = corrupt(c, db_copy_blob(&r, 0, 1, hash, STORE_HASH_LEN), "audit_events");
    }
    db_res_clear(&r);
    if (rc == STORE_OK)
        remember_head(c, user_id, *seq, hash);
    return rc;
}

store_rc store_audit_append(store_conn *c, const store_audit_event *ev)
{
    static const char sql[] =
        "INSERT INTO audit_events (chain, seq, user_id, time_us, actor, actor_id, action,"
        " object_id, outcome, details, prev_hash, hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    unsigned char last_hash[STORE_HASH_LEN];
    int64_t last_seq = 0;
    store_rc rc;

    c->errmsg[0] = '\0';
    if (ev->user_id < 0)
        return store_fail(c, STORE_INVALID, "user id must not be negative");
    if (!c->in_tx || (ev->user_id > 0 && c->tx_user != ev->user_id) ||
        (ev->user_id == 0 && !c->tx_global))
        return store_fail(c, STORE_INVALID,
                          "audit append needs the chain's lock "
                          "(store_tx_begin_user / store_tx_begin_global)");
    rc = check_text(c, ev->actor, STORE_ACTOR_MAX, false, "actor");
    if (rc == STORE_OK)
        rc = check_text(c, ev->actor_id, STORE_ACTOR_ID_MAX, true, "actor id");
    if (rc == STORE_OK)
        rc = check_text(c, ev->action, STORE_ACTION_MAX, false, "action");
    if (rc == STORE_OK)
        rc = check_text(c, ev->object_id, STORE_OBJECT_MAX, true, "object id");
    if (rc == STORE_OK)
        rc = check_text(c, ev->outcome, STORE_OUTCOME_MAX, true, "outcome");
    if (rc == STORE_OK)
        rc = check_text(c, ev->details, STORE_DETAILS_MAX, true, "details");
    if (rc == STORE_OK)
        rc = store_audit_last(c, ev->user_id, &last_seq, last_hash);
    if (rc != STORE_OK)
        return rc;
    if (ev->seq != last_seq + 1 || memcmp(ev->prev_hash, last_hash, STORE_HASH_LEN) != 0)
        return store_fail(c, STORE_CONFLICT, "audit event does not extend the chain's head");
    db_val p[12] = {P_INT(ev->user_id),
                    P_INT(ev->seq),
                    P_ID_OPT(ev->user_id),
                    P_INT(ev->time_us),
                    P_TEXT(ev->actor),
                    P_TEXT(ev->actor_id),
                    P_TEXT(ev->action),
                    P_TEXT(ev->object_id),
                    P_TEXT(ev->outcome),
                    P_TEXT(ev->details),
                    P_BLOB(ev->prev_hash, STORE_HASH_LEN),
                    P_BLOB(ev->hash, STORE_HASH_LEN)};
    rc = db_exec(c, sql, p, 12, NULL);
    if (rc == STORE_OK) {
        c->tx_audit = true; /* the audit hook runs once this commits */
        c->tx_audits++;
        remember_head(c, ev->user_id, ev->seq, ev->hash);
    }
    return rc;
}

static store_rc audit_query(store_conn *c, const char *sql, int64_t chain, int64_t after,
                            int64_t before, const store_audit_filter *f, store_audit_event **out,
                            size_t *n)
{
    db_res r;
    store_rc rc = check_limit(c, f->limit);
    *out = NULL;
    *n = 0;
    db_res_init(&r);
    if (rc == STORE_OK && f->action != NULL)
        rc = check_text(c, f->action, STORE_ACTION_MAX, false, "action");
    if (rc == STORE_OK && f->object_id != NULL)
        rc = check_text(c, f->object_id, STORE_OBJECT_MAX, true, "object id");
    if (rc == STORE_OK) {
        db_val p[8] = {P_INT(chain),       P_INT(after),        P_TEXT(f->action),
                       P_INT(f->since_us), P_INT(f->until_us),  P_INT(f->limit),
                       P_INT(before),      P_TEXT(f->object_id)};
        rc = db_exec(c, sql, p, 8, &r);
    }
    if (rc == STORE_OK)
        rc = read_list(c, &r, sizeof(**out), read_audit, (void **)out, n, "audit_events");
    db_res_clear(&r);
    return rc;
}

/* The filters both lists share: $3 action, $4/$5 time range, $8 object id (NULL = any). */
#define AUDIT_FILTERS                                                                              \
    " AND (CAST($3 AS TEXT) IS NULL OR action = $3)"                                               \
    " AND ($4 = 0 OR time_us >= $4) AND ($5 = 0 OR time_us < $5)"                                  \
    " AND (CAST($8 AS TEXT) IS NULL OR object_id = $8)"

store_rc store_audit_list(store_conn *c, int64_t user_id, const store_audit_filter *f,
                          store_audit_event **out, size_t *n)
{
    static const char asc[] =
        "SELECT " AUDIT_COLS " FROM audit_events"
        " WHERE chain = $1 AND seq > $2 AND ($7 = 0 OR seq < $7)" AUDIT_FILTERS
        " ORDER BY seq LIMIT $6";
    static const char desc[] =
        "SELECT " AUDIT_COLS " FROM audit_events"
        " WHERE chain = $1 AND seq > $2 AND ($7 = 0 OR seq < $7)" AUDIT_FILTERS
        " ORDER BY seq DESC LIMIT $6";
    store_rc rc = check_id(c, user_id, "user id");
    if (rc != STORE_OK) {
        *out = NULL;
        *n = 0;
        return rc;
    }
    return audit_query(c, f->newest_first ? desc : asc, user_id, f->after_seq, f->before_seq, f,
                       out, n);
}

store_rc store_admin_audit_list(store_conn *c, int64_t user_id, const store_audit_filter *f,
                                store_audit_event **out, size_t *n)
{
    static const char asc[] =
        "SELECT " AUDIT_COLS " FROM audit_events"
        " WHERE ($1 < 0 OR chain = $1) AND id > $2 AND ($7 = 0 OR id < $7)" AUDIT_FILTERS
        " ORDER BY id LIMIT $6";
    static const char desc[] =
        "SELECT " AUDIT_COLS " FROM audit_events"
        " WHERE ($1 < 0 OR chain = $1) AND id > $2 AND ($7 = 0 OR id < $7)" AUDIT_FILTERS
        " ORDER BY id DESC LIMIT $6";
    c->errmsg[0] = '\0';
    return audit_query(c, f->newest_first ? desc : asc, user_id, f->after_id, f->before_id, f, out,
                       n);
}

/* ---- audit checkpoints ------------------------------------------------------------------------
 */

store_rc store_audit_checkpoint_put(store_conn *c, const store_audit_checkpoint *cp)
{
    static const char sql[] = "INSERT INTO audit_checkpoints (chain, seq, hash, time_us,"
                              " key_version, signature) VALUES ($1, $2, $3, $4, $5, $6)";
    c->errmsg[0] = '\0';
    if (cp->user_id < 0 || cp->seq < 1)
        return store_fail(c, STORE_INVALID, "checkpoint needs a chain and a sequence >= 1");
    db_val p[6] = {P_INT(cp->user_id), P_INT(cp->seq),         P_BLOB(cp->hash, STORE_HASH_LEN),
                   P_INT(cp->time_us), P_INT(cp->key_version), P_BLOB(cp->sig, STORE_SIG_LEN)};
    return db_exec(c, sql, p, 6, NULL);
}

store_rc store_audit_checkpoint_latest(store_conn *c, int64_t chain, store_audit_checkpoint *out)
{
    static const char sql[] = "SELECT chain, seq, hash, time_us, key_version, signature"
                              " FROM audit_checkpoints WHERE chain = $1"
                              " ORDER BY seq DESC, time_us DESC LIMIT 1";
    db_res r;
    c->errmsg[0] = '\0';
    memset(out, 0, sizeof(*out));
    db_res_init(&r);
    db_val p[1] = {P_INT(chain)};
    store_rc rc = db_exec(c, sql, p, 1, &r);
    if (rc == STORE_OK && r.nrows == 0)
        rc = STORE_NOT_FOUND;
    if (rc == STORE_OK) {
        int64_t version = db_int(&r, 0, 4);
        out->user_id = db_int(&r, 0, 0);
        out->seq = db_int(&r, 0, 1);
        out->time_us = db_int(&r, 0, 3);
        out->key_version = version >= 0 && version <= UINT32_MAX ? (uint32_t)version : 0;
        rc = db_copy_blob(&r, 0, 2, out->hash, sizeof(out->hash));
        if (rc == STORE_OK)
            rc = db_copy_blob(&r, 0, 5, out->sig, sizeof(out->sig));
    }
    db_res_clear(&r);
    return rc;
}

store_rc store_audit_chains_to_checkpoint(store_conn *c, int64_t after_chain, int64_t *chains,
                                          size_t cap, size_t *n)
{
    static const char sql[] =
        "SELECT e.chain FROM audit_events e WHERE e.chain > $1 GROUP BY e.chain"
        " HAVING MAX(e.seq) > COALESCE((SELECT MAX(k.seq) FROM audit_checkpoints k"
        " WHERE k.chain = e.chain), 0) ORDER BY e.chain LIMIT $2";
    db_res r;
    c->errmsg[0] = '\0';
    *n = 0;
    if (cap == 0 || cap > 1000)
        return store_fail(c, STORE_INVALID, "cap must be 1..1000");
    db_res_init(&r);
    db_val p[2] = {P_INT(after_chain), P_INT(cap)};
    store_rc rc = db_exec(c, sql, p, 2, &r);
    for (int i = 0; rc == STORE_OK && i < r.nrows; i++)
        chains[(*n)++] = db_int(&r, i, 0);
    db_res_clear(&r);
    return rc;
}
