/*
 * tradewink.v1.Audit: ListEvents, StreamEvents, VerifyChain.
 *
 * Users read their own chain; admins may name a user or ask for all users. StreamEvents is
 * fed by one poller thread per process (audit_feed_*): it reads events past the highest id it
 * has seen and fans them out to subscribers. It reads when this process commits audit events
 * (the store's audit hook wakes it, so local updates arrive within milliseconds) and at least
 * every 200 ms otherwise. Because it reads the database, a subscriber also sees events written
 * by other replicas, within that interval. A resuming subscriber
 * gets its backlog (seq > from_sequence) while the feed lock is held, so no live event can
 * overtake it.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "app.h"
#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "core/alloc.h"
#include "core/log.h"
#include "services.h"
#include "svc.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX 500
#define FEED_INTERVAL_MS 200
#define FEED_MIN_GAP_MS 2 /* between reads, however often commits wake the poller */

typedef Tradewink__V1__AuditEvent wire_event;

static int action_value(const char *name)
{
    char full[96];
    snprintf(full, sizeof(full), "AUDIT_ACTION_%s", name);
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(
        &tradewink__v1__audit_action__descriptor, full);
    return v ? v->value : 0;
}

static const char *action_name(int value)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&tradewink__v1__audit_action__descriptor, value);
    return v ? v->name + strlen("AUDIT_ACTION_") : NULL;
}

/* Heap (not arena) conversion, for streams: free with free_wire. */
static wire_event *to_wire(const store_audit_event *e, ProtobufCAllocator *al)
{
    wire_event *w = al->alloc(al->allocator_data, sizeof(*w));
    Google__Protobuf__Timestamp *t = al->alloc(al->allocator_data, sizeof(*t));
    char *uid = al->alloc(al->allocator_data, 24);
    if (!w || !t || !uid)
        return NULL;
    tradewink__v1__audit_event__init(w);
    google__protobuf__timestamp__init(t);
    t->seconds = e->time_us / 1000000;
    t->nanos = (int32_t)(e->time_us % 1000000) * 1000;
    if (e->user_id)
        snprintf(uid, 24, "%lld", (long long)e->user_id);
    else
        uid[0] = '\0'; /* the system chain */
    w->sequence = (uint64_t)e->seq;
    w->time = t;
    w->actor_type = strcmp(e->actor, "admin") == 0  ? TRADEWINK__V1__ACTOR_TYPE__ACTOR_TYPE_ADMIN
                    : strcmp(e->actor, "user") == 0 ? TRADEWINK__V1__ACTOR_TYPE__ACTOR_TYPE_USER
                                                    : TRADEWINK__V1__ACTOR_TYPE__ACTOR_TYPE_SYSTEM;
    w->actor_id = (char *)e->actor_id;
    w->user_id = uid;
    w->action = (Tradewink__V1__AuditAction)action_value(e->action);
    w->object_id = (char *)e->object_id;
    w->outcome =
        strcmp(e->outcome, "SUCCESS") == 0  ? TRADEWINK__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_SUCCESS
        : strcmp(e->outcome, "DENIED") == 0 ? TRADEWINK__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_DENIED
                                            : TRADEWINK__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_FAILURE;
    w->details_json = (char *)e->details;
    w->prev_hash.data = (uint8_t *)e->prev_hash;
    w->prev_hash.len = STORE_HASH_LEN;
    w->hash.data = (uint8_t *)e->hash;
    w->hash.len = STORE_HASH_LEN;
    return w;
}

/* A user asking for another user's chain (or all chains) is refused by role: PERMISSION_DENIED,
 * audited as AUTH_DENIED in the caller's own chain (audit.proto AUTH_DENIED). */
static tw_status denied(tw_call *c, const char *user_id, protobuf_c_boolean all)
{
    store_conn *conn;
    if (svc_conn(c, &conn).code == TW_OK) {
        json_t *d = json_pack("{s:s,s:s,s:b}", "method", tw_call_method(c), "target_user_id",
                              user_id, "all_users", (int)all);
        char *s = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(d);
        svc_audit_refusal(c, conn, "AUTH_DENIED", tw_call_method(c), "DENIED", s);
        free(s);
    }
    return tw_err(TW_PERMISSION_DENIED, "only admins read other users' events");
}

/* t in microseconds when it is in google.protobuf.Timestamp's range (0001-01-01 to
 * 9999-12-31, nanos 0..999999999), where microseconds cannot overflow; else false. */
static bool timestamp_us(const Google__Protobuf__Timestamp *t, int64_t *us)
{
    if (t->nanos < 0 || t->nanos > 999999999 || t->seconds < -62135596800LL ||
        t->seconds > 253402300799LL)
        return false;
    *us = t->seconds * 1000000 + t->nanos / 1000;
    return true;
}

/* Which chain a request targets: the caller's, a named user's (admin), or all (admin, -1). */
static tw_status target_user(tw_call *c, const char *user_id, protobuf_c_boolean all, int64_t *out)
{
    const tw_principal *p = tw_call_principal(c);
    if (p->role != TW_ROLE_ADMIN) {
        if (all || (*user_id && svc_parse_id(user_id) != p->user_id))
            return denied(c, user_id, all);
        *out = p->user_id;
        return tw_ok();
    }
    if (all) {
        if (*user_id)
            return tw_err(TW_INVALID_ARGUMENT, "user_id and all_users are exclusive");
        *out = -1;
        return tw_ok();
    }
    if (!*user_id) {
        *out = p->user_id;
        return tw_ok();
    }
    if ((*out = svc_parse_id(user_id)) == 0)
        return tw_err(TW_INVALID_ARGUMENT, "user_id: not a user id");
    return tw_ok();
}

tw_status audit_list_events(tw_call *c, const Tradewink__V1__ListEventsRequest *req,
                            Tradewink__V1__ListEventsResponse *resp)
{
    store_conn *conn;
    int64_t uid;
    tw_status st = target_user(c, req->user_id, req->all_users, &uid);
    if (st.code != TW_OK)
        return st;
    /* Every field first, so one answer names every bad one. */
    tw_violations bad;
    tw_violations_init(&bad, tw_call_arena(c));
    if (req->page_size < 0)
        tw_violation_add(&bad, "page_size", "must not be negative");
    int limit = req->page_size == 0 ? PAGE_DEFAULT
                                    : (req->page_size > PAGE_MAX ? PAGE_MAX : req->page_size);
    /* audit.proto: newest first. One row more than the page tells whether another page
     * follows, so the last page has no token. The token is the last returned event's sequence
     * (own chain) or global id (another user's chain, all chains); the next page holds the
     * events older than it, so events appended meanwhile never shift a page. */
    store_audit_filter f = {.limit = limit + 1, .newest_first = true};
    int64_t before = 0;
    if (*req->page_token && (before = svc_parse_id(req->page_token)) == 0)
        tw_violation_add(&bad, "page_token", "not a token from a previous page");
    int by_id = uid < 0 || uid != tw_call_principal(c)->user_id;
    if (by_id)
        f.before_id = before;
    else
        f.before_seq = before;
    if (req->action && !(f.action = action_name(req->action)))
        tw_violation_add(&bad, "action", "unknown value");
    if (*req->object_id)
        f.object_id = req->object_id;
    if (req->start_time && !timestamp_us(req->start_time, &f.since_us))
        tw_violation_add(&bad, "start_time", "not a valid timestamp (0001-01-01 to 9999-12-31)");
    if (req->end_time && !timestamp_us(req->end_time, &f.until_us))
        tw_violation_add(&bad, "end_time", "not a valid timestamp (0001-01-01 to 9999-12-31)");
    else if (req->end_time && f.until_us == 0)
        f.until_us = -1; /* before the epoch: to the store, 0 is no bound */
    if ((st = tw_violations_status(&bad)).code != TW_OK)
        return st;
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    store_audit_event *evs = NULL;
    size_t n = 0;
    store_rc rc = by_id ? store_admin_audit_list(conn, uid, &f, &evs, &n)
                        : store_audit_list(conn, uid, &f, &evs, &n);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "audit events");
    tw_arena *a = tw_call_arena(c);
    tw_arena_defer(a, free, evs);
    size_t page = n > (size_t)limit ? (size_t)limit : n;
    resp->events = tw_arena_alloc(a, (page ? page : 1) * sizeof(*resp->events));
    if (!resp->events)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < page; i++) {
        resp->events[i] = to_wire(&evs[i], tw_arena_protobuf_allocator(a));
        if (!resp->events[i])
            return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    }
    resp->n_events = page;
    if (n > page)
        resp->next_page_token = svc_id_str(c, by_id ? evs[page - 1].id : evs[page - 1].seq);
    return tw_ok();
}

/* A wire checkpoint into cp; INVALID_ARGUMENT naming every field of the wrong shape. */
static tw_status cp_from_wire(tw_call *c, const Tradewink__V1__AuditCheckpoint *w,
                              audit_checkpoint *cp)
{
    tw_violations bad;
    tw_violations_init(&bad, tw_call_arena(c));
    memset(cp, 0, sizeof(*cp));
    char *end = NULL;
    errno = 0;
    long long uid = strtoll(w->user_id, &end, 10);
    if (!*w->user_id || *end || errno || uid < 0 || (uid == 0 && strcmp(w->user_id, "0") != 0))
        tw_violation_add(&bad, "checkpoint.user_id", "a chain number");
    if (w->sequence < 1 || w->sequence > INT64_MAX)
        tw_violation_add(&bad, "checkpoint.sequence", "1 or more");
    if (w->hash.len != STORE_HASH_LEN)
        tw_violation_add(&bad, "checkpoint.hash", "32 bytes");
    if (w->signature.len != AUDIT_SIG_LEN)
        tw_violation_add(&bad, "checkpoint.signature", "64 bytes");
    if (!w->time || !timestamp_us(w->time, &cp->time_us))
        tw_violation_add(&bad, "checkpoint.time", "required, a valid timestamp");
    tw_status st = tw_violations_status(&bad);
    if (st.code != TW_OK)
        return st;
    cp->user_id = uid;
    cp->seq = (int64_t)w->sequence;
    memcpy(cp->hash, w->hash.data, STORE_HASH_LEN);
    cp->key_version = w->key_version;
    memcpy(cp->sig, w->signature.data, AUDIT_SIG_LEN);
    return tw_ok();
}

static Tradewink__V1__AuditCheckpoint *cp_to_wire(tw_call *c, const audit_checkpoint *cp)
{
    tw_arena *a = tw_call_arena(c);
    Tradewink__V1__AuditCheckpoint *w = tw_arena_alloc(a, sizeof(*w));
    Google__Protobuf__Timestamp *t = tw_arena_alloc(a, sizeof(*t));
    unsigned char *bytes = tw_arena_alloc(a, STORE_HASH_LEN + AUDIT_SIG_LEN);
    if (!w || !t || !bytes)
        return NULL;
    tradewink__v1__audit_checkpoint__init(w);
    google__protobuf__timestamp__init(t);
    t->seconds = cp->time_us / 1000000;
    t->nanos = (int32_t)(cp->time_us % 1000000) * 1000;
    w->user_id = svc_id_str(c, cp->user_id);
    if (!w->user_id)
        return NULL;
    w->sequence = (uint64_t)cp->seq;
    memcpy(bytes, cp->hash, STORE_HASH_LEN);
    memcpy(bytes + STORE_HASH_LEN, cp->sig, AUDIT_SIG_LEN);
    w->hash.data = bytes;
    w->hash.len = STORE_HASH_LEN;
    w->time = t;
    w->key_version = cp->key_version;
    w->signature.data = bytes + STORE_HASH_LEN;
    w->signature.len = AUDIT_SIG_LEN;
    return w;
}

/* How the walked chain relates to a checkpoint whose signature checked out: every event up
 * to cp->seq must be present, verify, and end in the signed hash. */
static Tradewink__V1__CheckpointResult cp_relation(const audit_walk_result *w,
                                                   const audit_checkpoint *cp)
{
    if (w->first_broken && w->first_broken <= cp->seq)
        return w->head_seq < cp->seq ? TRADEWINK__V1__CHECKPOINT_RESULT__CHECKPOINT_RESULT_TRUNCATED
                                     : TRADEWINK__V1__CHECKPOINT_RESULT__CHECKPOINT_RESULT_DIVERGED;
    if (!w->at_found)
        return TRADEWINK__V1__CHECKPOINT_RESULT__CHECKPOINT_RESULT_TRUNCATED;
    if (memcmp(w->at_hash, cp->hash, STORE_HASH_LEN) != 0)
        return TRADEWINK__V1__CHECKPOINT_RESULT__CHECKPOINT_RESULT_DIVERGED;
    return TRADEWINK__V1__CHECKPOINT_RESULT__CHECKPOINT_RESULT_EXTENDS;
}

tw_status audit_verify_chain_rpc(tw_call *c, const Tradewink__V1__VerifyChainRequest *req,
                                 Tradewink__V1__VerifyChainResponse *resp)
{
    store_conn *conn;
    int64_t uid;
    audit_checkpoint cp;
    tw_status st = target_user(c, req->user_id, 0, &uid);
    if (st.code != TW_OK)
        return st;
    if (req->checkpoint) {
        if ((st = cp_from_wire(c, req->checkpoint, &cp)).code != TW_OK)
            return st;
        if (cp.user_id != uid)
            return tw_err(TW_INVALID_ARGUMENT, "checkpoint.user_id: another chain");
    }
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    if (!req->checkpoint) {
        int64_t checked = 0, broken = 0;
        store_rc rc = audit_verify_chain(conn, uid, &checked, &broken);
        if (rc != STORE_OK)
            return svc_store_status(c, rc, "audit chain");
        resp->ok = broken == 0;
        resp->events_checked = (uint64_t)checked;
        resp->first_broken_sequence = (uint64_t)broken;
        return tw_ok();
    }
    audit_walk_result w;
    store_rc rc = audit_walk(conn, uid, cp.seq, &w);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "audit chain");
    srv_app *app = tw_call_app(c);
    switch (audit_checkpoint_check(app->audit_signer, &cp)) {
    case AUDIT_CP_SIG_OK:
        resp->checkpoint_result = cp_relation(&w, &cp);
        break;
    case AUDIT_CP_SIG_UNKNOWN_KEY:
        resp->checkpoint_result = TRADEWINK__V1__CHECKPOINT_RESULT__CHECKPOINT_RESULT_UNKNOWN_KEY;
        break;
    default:
        resp->checkpoint_result = TRADEWINK__V1__CHECKPOINT_RESULT__CHECKPOINT_RESULT_BAD_SIGNATURE;
        break;
    }
    resp->ok =
        w.first_broken == 0 &&
        resp->checkpoint_result == TRADEWINK__V1__CHECKPOINT_RESULT__CHECKPOINT_RESULT_EXTENDS;
    resp->events_checked = (uint64_t)w.checked;
    resp->first_broken_sequence = (uint64_t)w.first_broken;
    return tw_ok();
}

tw_status audit_create_checkpoint_rpc(tw_call *c, const Tradewink__V1__CreateCheckpointRequest *req,
                                      Tradewink__V1__CreateCheckpointResponse *resp)
{
    store_conn *conn;
    int64_t uid;
    tw_status st = target_user(c, req->user_id, 0, &uid);
    if (st.code != TW_OK)
        return st;
    srv_app *app = tw_call_app(c);
    if (!app->audit_signer)
        return tw_err(TW_FAILED_PRECONDITION, "no audit signing key (TW_AUDIT_SIGNING_KEYS)");
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    audit_checkpoint cp;
    audit_cp_state state;
    store_rc rc = audit_checkpoint_create(conn, app->audit_signer, uid, tw_wall_us(), &cp, &state);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "audit checkpoint");
    switch (state) {
    case AUDIT_CP_SIGNED:
        break;
    case AUDIT_CP_EMPTY:
        return tw_err(TW_FAILED_PRECONDITION, "the chain has no events to sign");
    case AUDIT_CP_BROKEN:
        return tw_err(TW_FAILED_PRECONDITION, "the chain does not verify; its head is not signed");
    default:
        return tw_err(TW_INTERNAL, "the checkpoint could not be signed");
    }
    resp->checkpoint = cp_to_wire(c, &cp);
    return resp->checkpoint ? tw_ok() : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
}

/* ---- the feed ---------------------------------------------------------------------------- */

struct sub {
    struct sub *next;
    tw_stream *stream;
    int64_t user_id;  /* -1 = all */
    int64_t last_seq; /* per-user streams: skip anything at or below */
    int kind;         /* AUDIT_FEED_EVENTS or AUDIT_FEED_ORDERS */
    void *app;
};

struct audit_feed {
    pthread_mutex_t mu; /* subscribers and reading */
    pthread_t thread;
    int running;
    pthread_mutex_t wake_mu; /* guards woken and stopping; never held while reading */
    pthread_cond_t wake_cv;
    int woken, stopping;
    store *st;
    int64_t last_id;
    struct sub *subs;
};

static ProtobufCAllocator heap_alloc_pb;
static void *heap_alloc(void *d, size_t n)
{
    (void)d;
    return calloc(1, n);
}
static void heap_free(void *d, void *p)
{
    (void)d;
    free(p);
}

/* An order update for an ORDER_* event: the order as it is now, the kind from the action. */
static void deliver_order(struct sub *s, store_conn *conn, const store_audit_event *e)
{
    static const struct {
        const char *action;
        Tradewink__V1__OrderUpdateKind kind;
    } kinds[] = {
        {"ORDER_ENTRY", TRADEWINK__V1__ORDER_UPDATE_KIND__ORDER_UPDATE_KIND_CREATED},
        {"ORDER_EXIT", TRADEWINK__V1__ORDER_UPDATE_KIND__ORDER_UPDATE_KIND_CREATED},
        {"ORDER_CONFIRM", TRADEWINK__V1__ORDER_UPDATE_KIND__ORDER_UPDATE_KIND_CONFIRMED},
        {"ORDER_PARTIAL_FILL", TRADEWINK__V1__ORDER_UPDATE_KIND__ORDER_UPDATE_KIND_PARTIAL_FILL},
        {"ORDER_FILL", TRADEWINK__V1__ORDER_UPDATE_KIND__ORDER_UPDATE_KIND_FILL},
        {"ORDER_CANCEL", TRADEWINK__V1__ORDER_UPDATE_KIND__ORDER_UPDATE_KIND_CANCELED},
        {"ORDER_REJECT", TRADEWINK__V1__ORDER_UPDATE_KIND__ORDER_UPDATE_KIND_REJECTED},
        {"ORDER_EXPIRE", TRADEWINK__V1__ORDER_UPDATE_KIND__ORDER_UPDATE_KIND_EXPIRED},
    };
    size_t k;
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        if (strcmp(kinds[k].action, e->action) == 0)
            break;
    if (k == sizeof(kinds) / sizeof(kinds[0]))
        return;
    int64_t oid = svc_parse_id(e->object_id);
    store_order o;
    if (!oid || store_order_get(conn, e->user_id, oid, &o) != STORE_OK)
        return;
    tw_arena *a = tw_arena_create();
    tw_call *c = a ? tw_call_detached(a, s->app) : NULL;
    Tradewink__V1__OrderUpdate *u = c ? tw_arena_alloc(a, sizeof(*u)) : NULL;
    if (u) {
        tradewink__v1__order_update__init(u);
        u->sequence = (uint64_t)e->seq;
        u->time = svc_timestamp(c, e->time_us / 1000000);
        u->kind = kinds[k].kind;
        u->order = orders_to_wire(c, &o);
        json_error_t je;
        json_t *d = json_loads(e->details, 0, &je);
        const char *q = json_string_value(json_object_get(d, "qty"));
        const char *p = json_string_value(json_object_get(d, "avg_price"));
        if (q && strstr(e->action, "FILL"))
            u->fill_qty = tw_arena_strdup(a, q);
        if (p && strstr(e->action, "FILL"))
            u->fill_price = tw_arena_strdup(a, p);
        json_decref(d);
        Tradewink__V1__StreamOrderUpdatesResponse r =
            TRADEWINK__V1__STREAM_ORDER_UPDATES_RESPONSE__INIT;
        r.update = u;
        if (u->order)
            tw_stream_send(s->stream, &r.base);
    }
    tw_arena_destroy(a);
}

static void deliver(struct sub *s, store_conn *conn, const store_audit_event *e)
{
    if (s->user_id >= 0 && (e->user_id != s->user_id || e->seq <= s->last_seq))
        return;
    if (s->kind == AUDIT_FEED_ORDERS) {
        deliver_order(s, conn, e);
        s->last_seq = e->seq;
        return;
    }
    /* Conversion borrows e's strings; the stream packs at send time. */
    wire_event w;
    Google__Protobuf__Timestamp t;
    char uid[24];
    tradewink__v1__audit_event__init(&w);
    google__protobuf__timestamp__init(&t);
    wire_event *tmp = to_wire(e, &heap_alloc_pb);
    if (!tmp)
        return;
    w = *tmp;
    t = *tmp->time;
    snprintf(uid, sizeof(uid), "%s", tmp->user_id);
    free(tmp->time);
    free(tmp->user_id);
    free(tmp);
    w.time = &t;
    w.user_id = uid;
    Tradewink__V1__StreamEventsResponse r = TRADEWINK__V1__STREAM_EVENTS_RESPONSE__INIT;
    r.event = &w;
    tw_stream_send(s->stream, &r.base);
    if (s->user_id >= 0)
        s->last_seq = e->seq;
}

/* Read events past last_id and hand them to the subscribers. Called with f->mu held. */
static void feed_poll_locked(struct audit_feed *f)
{
    store_conn *conn;
    if (store_conn_acquire(f->st, &conn) != STORE_OK)
        return;
    for (;;) {
        store_audit_event *evs = NULL;
        size_t n = 0;
        store_audit_filter flt = {.after_id = f->last_id, .limit = 500};
        if (store_admin_audit_list(conn, -1, &flt, &evs, &n) != STORE_OK) {
            free(evs);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            for (struct sub *s = f->subs; s; s = s->next)
                deliver(s, conn, &evs[i]);
            f->last_id = evs[i].id;
        }
        free(evs);
        if (n < 500)
            break;
    }
    store_conn_release(conn);
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_nsec += ms * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

static void feed_wake(void *arg)
{
    struct audit_feed *f = arg;
    pthread_mutex_lock(&f->wake_mu);
    f->woken = 1;
    pthread_cond_signal(&f->wake_cv);
    pthread_mutex_unlock(&f->wake_mu);
}

static void *feed_main(void *arg)
{
    struct audit_feed *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        if (f->subs)
            feed_poll_locked(f);
        pthread_mutex_unlock(&f->mu);

        struct timespec ts;
        pthread_mutex_lock(&f->wake_mu);
        /* A short gap first, so a burst of commits costs one read, not one each. */
        deadline_in(&ts, FEED_MIN_GAP_MS);
        while (!f->stopping && pthread_cond_timedwait(&f->wake_cv, &f->wake_mu, &ts) == 0)
            ;
        deadline_in(&ts, FEED_INTERVAL_MS);
        while (!f->woken && !f->stopping &&
               pthread_cond_timedwait(&f->wake_cv, &f->wake_mu, &ts) == 0)
            ;
        f->woken = 0;
        int stop = f->stopping;
        pthread_mutex_unlock(&f->wake_mu);
        if (stop)
            break;
    }
    return NULL;
}

/* The newest event id now: live delivery starts after it. */
static int64_t newest_id(store *st)
{
    store_conn *conn;
    int64_t last = 0;
    if (store_conn_acquire(st, &conn) != STORE_OK)
        return -1;
    for (;;) {
        store_audit_event *evs = NULL;
        size_t n = 0;
        store_audit_filter flt = {.after_id = last, .limit = 1000};
        if (store_admin_audit_list(conn, -1, &flt, &evs, &n) != STORE_OK) {
            free(evs);
            last = -1;
            break;
        }
        if (n)
            last = evs[n - 1].id;
        free(evs);
        if (n < 1000)
            break;
    }
    store_conn_release(conn);
    return last;
}

struct audit_feed *audit_feed_start(store *st)
{
    struct audit_feed *f = tw_calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    heap_alloc_pb.alloc = heap_alloc;
    heap_alloc_pb.free = heap_free;
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->wake_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->wake_cv, &ca);
    pthread_condattr_destroy(&ca);
    f->st = st;
    f->last_id = newest_id(st);
    if (f->last_id < 0)
        f->last_id = 0;
    if (pthread_create(&f->thread, NULL, feed_main, f) != 0) {
        free(f);
        return NULL;
    }
    f->running = 1;
    store_set_audit_hook(st, feed_wake, f);
    return f;
}

void audit_feed_stop(struct audit_feed *f)
{
    if (!f)
        return;
    store_set_audit_hook(f->st, NULL, NULL);
    pthread_mutex_lock(&f->wake_mu);
    f->stopping = 1;
    pthread_cond_signal(&f->wake_cv);
    pthread_mutex_unlock(&f->wake_mu);
    pthread_join(f->thread, NULL);
    while (f->subs) {
        struct sub *s = f->subs;
        f->subs = s->next;
        tw_stream_on_close(s->stream, NULL, NULL);
        tw_stream_unref(s->stream);
        free(s);
    }
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->wake_mu);
    pthread_cond_destroy(&f->wake_cv);
    free(f);
}

static void sub_closed(tw_stream *stream, void *arg)
{
    struct audit_feed *f = arg;
    struct sub *found = NULL;
    pthread_mutex_lock(&f->mu);
    for (struct sub **pp = &f->subs; *pp; pp = &(*pp)->next) {
        if ((*pp)->stream == stream) {
            found = *pp;
            *pp = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (found) {
        tw_stream_unref(found->stream);
        free(found);
    }
}

tw_status audit_feed_subscribe(struct audit_feed *f, tw_stream *s, void *app, int64_t uid,
                               int64_t from_sequence, int kind)
{
    if (!f)
        return tw_err(TW_UNAVAILABLE, "event feed not running");
    struct sub *sub = tw_calloc(1, sizeof(*sub));
    if (!sub)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    sub->stream = s;
    sub->user_id = uid;
    sub->kind = kind;
    sub->app = app;
    tw_stream_ref(s);
    pthread_mutex_lock(&f->mu);
    /* Catch up first: everything committed before this call is history, not live. */
    feed_poll_locked(f);
    if (from_sequence && uid >= 0) {
        /* Backlog under the feed lock: the poller cannot deliver anything newer meanwhile. */
        store_conn *conn;
        sub->last_seq = from_sequence;
        if (store_conn_acquire(f->st, &conn) == STORE_OK) {
            for (;;) {
                store_audit_event *evs = NULL;
                size_t n = 0;
                store_audit_filter flt = {.after_seq = sub->last_seq, .limit = 500};
                if (store_audit_list(conn, uid, &flt, &evs, &n) != STORE_OK) {
                    free(evs);
                    break;
                }
                size_t i;
                for (i = 0; i < n && evs[i].id <= f->last_id; i++)
                    deliver(sub, conn, &evs[i]);
                free(evs);
                if (n < 500 || i < n)
                    break;
            }
            store_conn_release(conn);
        }
    } else if (uid >= 0) {
        /* Live only: start after the chain's current end. */
        store_conn *conn;
        unsigned char h[STORE_HASH_LEN];
        if (store_conn_acquire(f->st, &conn) == STORE_OK) {
            store_audit_last(conn, uid, &sub->last_seq, h);
            store_conn_release(conn);
        }
    }
    sub->next = f->subs;
    f->subs = sub;
    pthread_mutex_unlock(&f->mu);
    tw_stream_on_close(s, sub_closed, f);
    return tw_ok();
}

tw_status audit_stream_events(tw_call *c, const Tradewink__V1__StreamEventsRequest *req,
                              tw_stream *s)
{
    srv_app *app = tw_call_app(c);
    int64_t uid;
    tw_status st = target_user(c, req->user_id, req->all_users, &uid);
    if (st.code != TW_OK)
        return st;
    if (uid < 0 && req->from_sequence)
        return tw_err(TW_INVALID_ARGUMENT, "from_sequence needs a single user's chain");
    return audit_feed_subscribe(app->audit_feed, s, app, uid, (int64_t)req->from_sequence,
                                AUDIT_FEED_EVENTS);
}
