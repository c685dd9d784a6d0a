/*
 * gRPC core transport.
 *
 * Design. Every completion-queue tag points at a `struct tag` whose callback knows its owner
 * (container_of). Each worker thread owns one completion queue; for every route and every
 * queue a few requests are kept posted (grpc_server_request_registered_call), and one is
 * re-posted as each call arrives, so arrival never waits for a free slot. A handful of
 * grpc_server_request_call are kept for paths with no route: they answer UNIMPLEMENTED at
 * once instead of hanging to the deadline.
 *
 * Three call shapes:
 *  - unary (struct rpc): the request payload arrives with the call; the interceptor chain runs
 *    on the worker thread; one batch sends initial metadata, message, status and receives
 *    close. The access-log line is written when that batch completes.
 *  - server stream (struct tw_stream): the single request arrives with the call; a lone
 *    RECV_CLOSE_ON_SERVER batch tells when the client goes away; messages queue under a mutex
 *    and go out one SEND_MESSAGE at a time; the status follows the queue. Reference-counted:
 *    each outstanding batch and each subscriber holds a reference.
 *  - bidi stream (struct bidi): receive, answer, receive again; strictly sequential, so no
 *    locking. RECV_CLOSE_ON_SERVER only goes in the final batch (in an earlier one it would
 *    never complete).
 *
 * Invariants. Nothing is posted after shutdown starts (flag under `lock`). Every call context
 * is freed exactly once, by the completion of its last batch. No handler ever sees a grpc type.
 */
#include "core/clock.h"
#include "transport.h"

#include <grpc/byte_buffer.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice_buffer.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/alloc.h"
#include "core/codec.h"
#include "core/errdetail.h"
#include "core/log.h"
#include "core/netaddr.h"
#include "selfcert.h"

#ifndef REQUESTS_PER_ROUTE_PER_CQ
#define REQUESTS_PER_ROUTE_PER_CQ 4
#endif
#define UNKNOWN_REQUESTS_PER_CQ 2
#define MAX_TRAILERS 4
#define STREAM_QUEUE_MAX 1024
#define SELF_CHECK_MD "x-tw-self-check"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct tag {
    void (*fn)(struct tag *tag, int ok);
};

struct tw_call {
    srv_transport *t;
    void *app;
    const tw_route *route;
    tw_arena *arena;
    tw_principal principal;
    char peer[64];
    uint64_t id;
    gpr_timespec deadline;
    grpc_metadata trailers[MAX_TRAILERS];
    size_t ntrailers;
    int quiet;     /* our own listener check: no access line, no metrics, no rate limit */
    bool on_cq;    /* running on a completion-queue thread: nothing may block (tw_call_inline) */
    bool deferred; /* a step asked to run again on an executor (tw_call_defer) */
    tw_trace trace;
};

/* One per worker thread: its queue and how many times it came back from it. */
struct worker {
    srv_transport *t;
    int q;
    atomic_ullong ticks; /* srv_transport_progress */
};

struct srv_transport {
    grpc_server *server;
    grpc_completion_queue **cqs;
    struct worker *workers; /* ncq */
    grpc_completion_queue *shutdown_cq;
    pthread_t *threads;
    int ncq;
    int port;            /* bound gRPC port, for srv_transport_self_check */
    char self_token[33]; /* random; marks srv_transport_self_check's own calls */
    int started;
    void **registered; /* per route */
    const tw_routes *routes;
    srv_hooks hooks;
    srv_transport_config cfg;
    /* The self-check's client credentials under TLS (NULL = plaintext): the listener's own
     * certificate is not verified (the check dials our own bound port), and under mTLS it
     * presents the in-memory identity of selfcert.h, which the listener trusts. */
    grpc_channel_credentials *check_creds;
    tw_ip fronts[TW_MAX_TRUSTED_FRONTS]; /* cfg.trusted_fronts, parsed once */
    size_t nfronts;

    pthread_mutex_t lock; /* guards shutting_down and the stream list */
    int shutting_down;
    int shut;
    struct tw_stream *streams;

    uint64_t next_id; /* atomic */

    /* Executor: unary handlers that may block (database, broker) run here, not on the
     * completion-queue threads, so one slow call never stalls the other calls that grpc core
     * delivers to the same queue (all of one connection's calls). */
    pthread_t *execs;
    int nexec, execs_started;
    pthread_mutex_t exec_mu;
    pthread_cond_t exec_cv;
    struct rpc *exec_head, *exec_tail;
    int exec_stop;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static int accepting(srv_transport *t)
{
    pthread_mutex_lock(&t->lock);
    int ok = !t->shutting_down;
    pthread_mutex_unlock(&t->lock);
    return ok;
}

static void call_init(tw_call *c, srv_transport *t, const tw_route *r, grpc_call *call,
                      gpr_timespec deadline)
{
    memset(c, 0, sizeof(*c));
    c->t = t;
    c->app = t->hooks.app;
    c->route = r;
    c->deadline = deadline;
    c->id = __atomic_add_fetch(&t->next_id, 1, __ATOMIC_RELAXED);
    char *peer = grpc_call_get_peer(call);
    snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "unknown");
    gpr_free(peer);
}

static void call_release_trailers(tw_call *c)
{
    for (size_t i = 0; i < c->ntrailers; i++) {
        grpc_slice_unref(c->trailers[i].key);
        grpc_slice_unref(c->trailers[i].value);
    }
    c->ntrailers = 0;
}

/* Metadata value for key: NULL when absent; *dup set when it appears more than once. */
static const char *md_get(tw_arena *a, const grpc_metadata_array *md, const char *key, int *dup)
{
    const char *found = NULL;
    size_t klen = strlen(key);
    *dup = 0;
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice *k = &md->metadata[i].key;
        if (GRPC_SLICE_LENGTH(*k) != klen || memcmp(GRPC_SLICE_START_PTR(*k), key, klen) != 0)
            continue;
        if (found) {
            *dup = 1;
            return NULL;
        }
        const grpc_slice *v = &md->metadata[i].value;
        size_t n = GRPC_SLICE_LENGTH(*v);
        char *s = tw_arena_alloc(a, n + 1);
        if (!s)
            return NULL;
        memcpy(s, GRPC_SLICE_START_PTR(*v), n);
        s[n] = '\0';
        if (strlen(s) != n) { /* embedded NUL: treat as malformed */
            *dup = 1;
            return NULL;
        }
        found = s;
    }
    return found;
}

/* On arrival, once the call has its arena: marks our own self-check quiet, and counts the
 * start of every other call. */
static void call_started(tw_call *c, const grpc_metadata_array *md);

/* A message of c went in (sent = 0) or out (sent = 1). */
static void call_msg(tw_call *c, int sent)
{
    if (!c->quiet && c->t->hooks.on_msg)
        c->t->hooks.on_msg(c->t->hooks.app, c->route, sent);
}

static void access_log(tw_call *c, tw_code code, int64_t started, size_t in, size_t out)
{
    if (c->quiet)
        return;
    int64_t lat = tw_mono_us() - started;
    if (c->t->hooks.on_done)
        c->t->hooks.on_done(c->t->hooks.app, c->route, code, lat);
    if (!tw_log_enabled(TW_LOG_INFO))
        return;
    tw_logline l;
    tw_log_begin(&l, TW_LOG_INFO, "access");
    tw_log_uint(&l, "req_id", c->id);
    tw_log_str(&l, "method", c->route ? c->route->path : "unknown");
    tw_log_str(&l, "trace_id", c->trace.trace_id);
    tw_log_str(&l, "span_id", c->trace.span_id);
    tw_log_str(&l, "principal", c->principal.subject ? c->principal.subject : "-");
    tw_log_str(&l, "status", tw_code_name(code));
    tw_log_double(&l, "latency_ms", (double)lat / 1000.0);
    tw_log_str(&l, "peer", c->peer);
    tw_log_uint(&l, "bytes_in", in);
    tw_log_uint(&l, "bytes_out", out);
    tw_log_end(&l);
}

/* Decode *payload into a fresh message of desc allocated from the arena, and release the
 * payload (*payload = NULL) as soon as its bytes are no longer needed.
 *
 * grpc's own decompression is off (srv_transport_create): with it on, grpc 1.51 inflated a
 * whole body before the size cap applied (a 255 KB gzip body became 256 MiB, before
 * authentication). So a compressed payload arrives here as the compressed bytes, already
 * capped at max_message_bytes by grpc, and tw_codec_inflate refuses it before allocating
 * anything if it would inflate past the same cap. *nbytes is the size on the wire. */
static tw_status decode(tw_call *c, grpc_byte_buffer **payload,
                        const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg,
                        size_t *nbytes)
{
    grpc_byte_buffer *bb = *payload;
    size_t max = (size_t)c->t->cfg.max_message_bytes;
    uint8_t *flat = NULL; /* tw_malloc'd contiguous body, when we made one */
    const uint8_t *data;
    size_t n;
    tw_status st;
    *msg = NULL;
    *nbytes = 0;
    if (!bb)
        return tw_err(TW_INVALID_ARGUMENT, "missing request message");
    if (bb->type != GRPC_BB_RAW)
        return tw_err(TW_INVALID_ARGUMENT, "request message could not be read");
    grpc_slice_buffer *sb = &bb->data.raw.slice_buffer;
    *nbytes = sb->length;
    if (sb->length > max) /* grpc checks this too; never rely on one layer alone */
        return tw_err(TW_RESOURCE_EXHAUSTED, "request message too large");
    switch (bb->data.raw.compression) {
    case GRPC_COMPRESS_NONE:
        if (sb->count == 1) {
            data = GRPC_SLICE_START_PTR(sb->slices[0]);
            n = GRPC_SLICE_LENGTH(sb->slices[0]);
            break;
        }
        n = sb->length;
        flat = tw_malloc(n ? n : 1);
        if (!flat)
            return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
        /* Release each slice once copied, so the body is not held twice. */
        for (size_t off = 0; sb->count > 0;) {
            grpc_slice piece = grpc_slice_buffer_take_first(sb);
            size_t k = GRPC_SLICE_LENGTH(piece);
            memcpy(flat + off, GRPC_SLICE_START_PTR(piece), k);
            off += k;
            explicit_bzero(GRPC_SLICE_START_PTR(piece), k);
            grpc_slice_unref(piece);
        }
        data = flat;
        break;
    case GRPC_COMPRESS_DEFLATE:
    case GRPC_COMPRESS_GZIP: {
        tw_codec_chunk *chunks =
            tw_arena_alloc(c->arena, (sb->count ? sb->count : 1) * sizeof(*chunks));
        if (!chunks)
            return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
        for (size_t i = 0; i < sb->count; i++) {
            chunks[i].data = GRPC_SLICE_START_PTR(sb->slices[i]);
            chunks[i].len = GRPC_SLICE_LENGTH(sb->slices[i]);
        }
        st = tw_codec_inflate(bb->data.raw.compression == GRPC_COMPRESS_GZIP ? TW_CODEC_GZIP
                                                                             : TW_CODEC_DEFLATE,
                              chunks, sb->count, max, &flat, &n);
        if (st.code != TW_OK)
            return st;
        data = flat;
        break;
    }
    default:
        /* grpc refuses encodings outside the enabled set before the call reaches us. */
        return tw_err(TW_UNIMPLEMENTED, "request compression not supported (use gzip)");
    }
    st = tw_codec_decode(c->arena, desc, data, n, max, msg);
    /* The request's bytes are the DATA frame's payload inside grpc's read buffer (a slice
     * of it, not a copy), and grpc keeps that buffer alive for the connection's next read.
     * Wipe them where they lie: nothing reads them after us, and a broker secret in a
     * PutBrokerKey request must not outlive the call (issue 20). KeyVault wipes the decoded
     * copy in the call's arena itself; every freed block is wiped by wipe_alloc.c. */
    for (size_t i = 0; i < sb->count; i++)
        explicit_bzero(GRPC_SLICE_START_PTR(sb->slices[i]), GRPC_SLICE_LENGTH(sb->slices[i]));
    grpc_byte_buffer_destroy(bb);
    *payload = NULL;
    if (flat)
        explicit_bzero(flat, n);
    free(flat);
    return st;
}

static grpc_byte_buffer *encode(const ProtobufCMessage *msg, size_t *nbytes)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    *nbytes = n;
    return bb;
}

static int deadline_passed(gpr_timespec deadline)
{
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    gpr_timespec d = gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC);
    return gpr_time_cmp(d, now) <= 0;
}

/*
 * The interceptor chain up to (not including) decode: deadline, authenticate, authorize,
 * rate limit. Fills c->principal.
 */
/* 1 when md carries this process's self-check token (compared in constant time). */
static int is_self_check(tw_call *c, const grpc_metadata_array *md)
{
    int dup;
    const char *v = md_get(c->arena, md, SELF_CHECK_MD, &dup);
    unsigned diff = 0;
    if (!v || dup || strlen(v) != 32 || strlen(c->t->self_token) != 32)
        return 0;
    for (size_t i = 0; i < 32; i++)
        diff |= (unsigned)(v[i] ^ c->t->self_token[i]);
    return diff == 0;
}

/* The trace context from the request's traceparent (a single, valid one), else a new trace.
 * Read straight from the metadata slices: nothing to copy, no arena needed. */
static void trace_from(tw_trace *t, const grpc_metadata_array *md)
{
    const grpc_slice *found = NULL;
    int n = 0;
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice *k = &md->metadata[i].key;
        if (GRPC_SLICE_LENGTH(*k) == 11 &&
            memcmp(GRPC_SLICE_START_PTR(*k), "traceparent", 11) == 0) {
            found = &md->metadata[i].value;
            n++;
        }
    }
    if (n == 1)
        tw_trace_start(t, (const char *)GRPC_SLICE_START_PTR(*found), GRPC_SLICE_LENGTH(*found));
    else
        tw_trace_start(t, NULL, 0); /* absent, or repeated: the spec says start over */
}

/* Behind a trusted front the connection's peer is the front; the client is the address the
 * front put in x-forwarded-for. Believed only from a configured front, and only when there is
 * exactly one such header holding one bare address (the shipped front replaces whatever the
 * client sent); otherwise the call keeps the connection's peer. */
static void peer_forwarded(tw_call *c, const grpc_metadata_array *md)
{
    srv_transport *t = c->t;
    tw_ip ip;
    if (t->nfronts == 0 || tw_ip_from_peer(c->peer, &ip) != 0 ||
        !tw_ip_in(&ip, t->fronts, t->nfronts))
        return;
    const grpc_slice *found = NULL;
    int n = 0;
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice *k = &md->metadata[i].key;
        if (GRPC_SLICE_LENGTH(*k) == 15 &&
            memcmp(GRPC_SLICE_START_PTR(*k), "x-forwarded-for", 15) == 0) {
            found = &md->metadata[i].value;
            n++;
        }
    }
    if (n == 1 && tw_ip_parse((const char *)GRPC_SLICE_START_PTR(*found), GRPC_SLICE_LENGTH(*found),
                              &ip) == 0)
        tw_ip_peer_format(&ip, c->peer, sizeof(c->peer));
}

static void call_started(tw_call *c, const grpc_metadata_array *md)
{
    peer_forwarded(c, md);
    trace_from(&c->trace, md);
    c->quiet = c->arena ? is_self_check(c, md) : 0;
    if (!c->quiet && c->t->hooks.on_start)
        c->t->hooks.on_start(c->t->hooks.app, c->route);
}

static tw_status admit(tw_call *c, const grpc_metadata_array *md)
{
    srv_transport *t = c->t;
    const tw_route_def *d = c->route->def;
    if (deadline_passed(c->deadline))
        return tw_err(TW_DEADLINE_EXCEEDED, "deadline exceeded before the call started");
    if (d->role != TW_ROLE_PUBLIC) {
        int dup;
        const char *authz = md_get(c->arena, md, "authorization", &dup);
        if (dup || !t->hooks.authenticate)
            return tw_err(TW_UNAUTHENTICATED, "authentication required");
        tw_status st = t->hooks.authenticate(t->hooks.app, c, authz, &c->principal);
        if (st.code != TW_OK || c->deferred)
            return st;
        if (c->principal.role < d->role) {
            if (c->on_cq && t->hooks.on_denied) { /* the hook writes an audit event */
                c->deferred = true;
                return tw_ok();
            }
            if (t->hooks.on_denied)
                t->hooks.on_denied(t->hooks.app, c);
            return tw_err(TW_PERMISSION_DENIED, "this method needs the admin role");
        }
    }
    if (t->hooks.rate_limit && d->rate != TW_RL_NONE && !c->quiet) {
        tw_status st = t->hooks.rate_limit(t->hooks.app, c, d->rate);
        if (st.code != TW_OK || c->deferred)
            return st;
    }
    return tw_ok();
}

/* Every non-OK status carries google.rpc.Status details (core/errdetail.h) in
 * grpc-status-details-bin, encoded in arena a (temporary: the trailer copies the bytes). A
 * failure to encode or a full trailer array only loses the details, never the status. */
static void add_status_details(tw_call *c, tw_arena *a, const tw_status *st)
{
    uint8_t *bin;
    size_t len;
    if (st->code == TW_OK || !a || tw_status_details_encode(a, st, &bin, &len) != 0)
        return;
    tw_call_add_trailer_bin(c, "grpc-status-details-bin", bin, len);
}

/* The SEND_STATUS_FROM_SERVER op for code, with the call's trailing metadata. details must live
 * until the batch completes. */
static void status_op(grpc_op *op, tw_code code, grpc_slice *details, tw_call *c)
{
    op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op->data.send_status_from_server.status = (grpc_status_code)code;
    op->data.send_status_from_server.status_details = details;
    op->data.send_status_from_server.trailing_metadata_count = c->ntrailers;
    op->data.send_status_from_server.trailing_metadata = c->trailers;
}

/* ---- unary ------------------------------------------------------------------------------ */

struct rpc {
    struct tag arrived, done;
    srv_transport *t;
    int cq;
    size_t route;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_byte_buffer *reply;
    grpc_slice details;
    int cancelled;
    tw_call c;
    tw_code code;
    int64_t started;
    size_t in_bytes, out_bytes;
    /* How far the call got before it was handed to an executor: admitted (the interceptors
     * passed: authentication, role, rate limit counted once), decoded (req set). */
    bool admitted, decoded;
    ProtobufCMessage *req;
    struct rpc *exec_next;
};

static void rpc_post(srv_transport *t, int cq, size_t route);
static void rpc_run(struct rpc *r);
static bool rpc_step(struct rpc *r);
static void rpc_enqueue(srv_transport *t, struct rpc *r);

static void rpc_free(struct rpc *r)
{
    grpc_metadata_array_destroy(&r->md);
    if (r->payload)
        grpc_byte_buffer_destroy(r->payload);
    if (r->reply)
        grpc_byte_buffer_destroy(r->reply);
    call_release_trailers(&r->c);
    tw_arena_destroy(r->c.arena);
    if (r->call)
        grpc_call_unref(r->call);
    free(r);
}

static void rpc_done(struct tag *tag, int ok)
{
    struct rpc *r = container_of(tag, struct rpc, done);
    tw_code code = r->code;
    if (!ok || (r->cancelled && code == TW_OK))
        code = TW_CANCELLED;
    if (ok && r->reply)
        call_msg(&r->c, 1);
    access_log(&r->c, code, r->started, r->in_bytes, r->out_bytes);
    grpc_slice_unref(r->details);
    rpc_free(r);
}

static void rpc_reply(struct rpc *r, tw_status st, const ProtobufCMessage *resp)
{
    grpc_op ops[4];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    r->code = st.code;
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
    if (st.code == TW_OK && resp) {
        r->reply = encode(resp, &r->out_bytes);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = r->reply;
        n++;
    }
    r->details = st.message && st.message[0] ? grpc_slice_from_copied_string(st.message)
                                             : grpc_empty_slice();
    add_status_details(&r->c, r->c.arena, &st);
    status_op(&ops[n], st.code, &r->details, &r->c);
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &r->cancelled;
    n++;
    r->done.fn = rpc_done;
    grpc_call_error e = grpc_call_start_batch(r->call, ops, n, &r->done, NULL);
    if (e != GRPC_CALL_OK) {
        tw_logf(TW_LOG_ERROR, "grpc_batch_failed", "unary reply batch: error %d", (int)e);
        access_log(&r->c, TW_INTERNAL, r->started, r->in_bytes, 0);
        grpc_slice_unref(r->details);
        rpc_free(r);
    }
}

static void rpc_arrived(struct tag *tag, int ok)
{
    struct rpc *r = container_of(tag, struct rpc, arrived);
    srv_transport *t = r->t;
    if (!ok) { /* server shutting down: the request slot is cancelled */
        rpc_free(r);
        return;
    }
    r->started = tw_mono_us();
    if (accepting(t))
        rpc_post(t, r->cq, r->route);
    const tw_route *route = &t->routes->routes[r->route];
    call_init(&r->c, t, route, r->call, r->deadline);
    r->c.arena = tw_arena_create();
    call_started(&r->c, &r->md);
    if (!r->c.arena) {
        rpc_reply(r, tw_err(TW_RESOURCE_EXHAUSTED, "out of memory"), NULL);
        return;
    }
    /* Public methods (health, reflection, dev tokens) never block: answer them right here.
     * A route with a fast handler (reads the ledger answers) is tried here too, up to the
     * first step that would block; everything else goes to the executor. */
    if (route->def->rate != TW_RL_PUBLIC && t->nexec > 0) {
        if (route->def->fast) {
            r->c.on_cq = true;
            if (rpc_step(r))
                return;
            r->c.on_cq = false;
            r->c.deferred = false;
        }
        rpc_enqueue(t, r);
        return;
    }
    rpc_run(r);
}

static void rpc_enqueue(srv_transport *t, struct rpc *r)
{
    pthread_mutex_lock(&t->exec_mu);
    r->exec_next = NULL;
    if (t->exec_tail)
        t->exec_tail->exec_next = r;
    else
        t->exec_head = r;
    t->exec_tail = r;
    pthread_cond_signal(&t->exec_cv);
    pthread_mutex_unlock(&t->exec_mu);
}

/*
 * The interceptor chain and the handler, then the reply; true when the call was answered.
 * On a completion-queue thread (c.on_cq) a step may defer instead of blocking
 * (tw_call_defer): the call then returns false with what it finished recorded (admitted,
 * decoded), and the executor resumes from there, so no interceptor counts a call twice. A
 * deferred fast handler's response is dropped: the executor's handler gets a fresh one.
 */
static bool rpc_step(struct rpc *r)
{
    const tw_route *route = r->c.route;
    tw_status st = tw_ok();
    ProtobufCMessage *resp = NULL;
    if (!r->admitted) {
        st = admit(&r->c, &r->md);
        if (r->c.deferred)
            return false;
        r->admitted = st.code == TW_OK;
    }
    if (st.code == TW_OK && !route->def->unary)
        st = tw_err(TW_UNIMPLEMENTED, "method not implemented yet");
    if (st.code == TW_OK && !r->decoded) {
        st = decode(&r->c, &r->payload, route->in, &r->req, &r->in_bytes);
        if (st.code == TW_OK) {
            r->decoded = true;
            call_msg(&r->c, 0);
        }
    }
    if (st.code == TW_OK) {
        resp = tw_codec_new(r->c.arena, route->out);
        if (!resp)
            st = tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    }
    if (st.code == TW_OK) {
        st = (r->c.on_cq && route->def->fast ? route->def->fast : route->def->unary)(&r->c, r->req,
                                                                                     resp);
        if (r->c.deferred)
            return false;
    }
    rpc_reply(r, st, resp);
    return true;
}

/* The whole call where it may block: an executor, or a CQ thread for public methods. */
static void rpc_run(struct rpc *r)
{
    r->c.on_cq = false;
    rpc_step(r);
}

static void rpc_post(srv_transport *t, int cq, size_t route)
{
    struct rpc *r = tw_calloc(1, sizeof(*r));
    if (!r) {
        tw_logf(TW_LOG_ERROR, "oom", "cannot post a request slot");
        return;
    }
    r->t = t;
    r->cq = cq;
    r->route = route;
    r->arrived.fn = rpc_arrived;
    grpc_metadata_array_init(&r->md);
    grpc_call_error e = grpc_server_request_registered_call(
        t->server, t->registered[route], &r->call, &r->deadline, &r->md, &r->payload, t->cqs[cq],
        t->cqs[cq], &r->arrived);
    if (e != GRPC_CALL_OK) {
        tw_logf(TW_LOG_ERROR, "grpc_request_failed", "request_registered_call: error %d", (int)e);
        grpc_metadata_array_destroy(&r->md);
        free(r);
    }
}

/* ---- unknown methods -------------------------------------------------------------------- */

struct unknown {
    struct tag arrived, done;
    srv_transport *t;
    int cq;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_slice status;
    grpc_metadata trailer; /* grpc-status-details-bin, when ntrailers is 1 */
    size_t ntrailers;
    int cancelled;
    int64_t started;
    uint64_t id;
};

static void unknown_post(srv_transport *t, int cq);

static void unknown_free(struct unknown *u)
{
    if (u->ntrailers) {
        grpc_slice_unref(u->trailer.key);
        grpc_slice_unref(u->trailer.value);
    }
    grpc_call_details_destroy(&u->details);
    grpc_metadata_array_destroy(&u->md);
    if (u->call)
        grpc_call_unref(u->call);
    free(u);
}

static void unknown_done(struct tag *tag, int ok)
{
    struct unknown *u = container_of(tag, struct unknown, done);
    if (u->t->hooks.on_unknown)
        u->t->hooks.on_unknown(u->t->hooks.app,
                               (const char *)GRPC_SLICE_START_PTR(u->details.method),
                               GRPC_SLICE_LENGTH(u->details.method),
                               ok ? TW_UNIMPLEMENTED : TW_CANCELLED, tw_mono_us() - u->started);
    if (tw_log_enabled(TW_LOG_INFO)) {
        /* The path is the client's text: the logger escapes it and the line cap bounds it. */
        char *method = grpc_slice_to_c_string(u->details.method);
        char *peer = grpc_call_get_peer(u->call);
        tw_trace trace;
        trace_from(&trace, &u->md);
        tw_logline l;
        tw_log_begin(&l, TW_LOG_INFO, "access");
        tw_log_uint(&l, "req_id", u->id);
        tw_log_str(&l, "method", method);
        tw_log_str(&l, "trace_id", trace.trace_id);
        tw_log_str(&l, "span_id", trace.span_id);
        tw_log_str(&l, "principal", "-");
        tw_log_str(&l, "status", ok ? "UNIMPLEMENTED" : "CANCELLED");
        tw_log_double(&l, "latency_ms", (double)(tw_mono_us() - u->started) / 1000.0);
        tw_log_str(&l, "peer", peer ? peer : "unknown");
        tw_log_uint(&l, "bytes_in", 0);
        tw_log_uint(&l, "bytes_out", 0);
        tw_log_end(&l);
        gpr_free(method);
        gpr_free(peer);
    }
    grpc_slice_unref(u->status);
    unknown_free(u);
}

static void unknown_arrived(struct tag *tag, int ok)
{
    struct unknown *u = container_of(tag, struct unknown, arrived);
    if (!ok) {
        unknown_free(u);
        return;
    }
    u->started = tw_mono_us();
    u->id = __atomic_add_fetch(&u->t->next_id, 1, __ATOMIC_RELAXED);
    if (accepting(u->t))
        unknown_post(u->t, u->cq);
    grpc_op ops[3];
    memset(ops, 0, sizeof(ops));
    u->status = grpc_slice_from_static_string("unknown method");
    /* The same error details as every other error (ErrorInfo UNIMPLEMENTED); there is no call
     * arena here, so a short-lived one. Without memory the status still goes out, bare. */
    tw_status st = tw_err(TW_UNIMPLEMENTED, "unknown method");
    tw_arena *tmp = tw_arena_create();
    uint8_t *bin;
    size_t len;
    if (tmp && tw_status_details_encode(tmp, &st, &bin, &len) == 0) {
        u->trailer.key = grpc_slice_from_static_string("grpc-status-details-bin");
        u->trailer.value = grpc_slice_from_copied_buffer((const char *)bin, len);
        u->ntrailers = 1;
    }
    tw_arena_destroy(tmp);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[1].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
    ops[1].data.send_status_from_server.status_details = &u->status;
    ops[1].data.send_status_from_server.trailing_metadata_count = u->ntrailers;
    ops[1].data.send_status_from_server.trailing_metadata = &u->trailer;
    ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[2].data.recv_close_on_server.cancelled = &u->cancelled;
    u->done.fn = unknown_done;
    if (grpc_call_start_batch(u->call, ops, 3, &u->done, NULL) != GRPC_CALL_OK) {
        grpc_slice_unref(u->status);
        unknown_free(u);
    }
}

static void unknown_post(srv_transport *t, int cq)
{
    struct unknown *u = tw_calloc(1, sizeof(*u));
    if (!u)
        return;
    u->t = t;
    u->cq = cq;
    u->arrived.fn = unknown_arrived;
    grpc_call_details_init(&u->details);
    grpc_metadata_array_init(&u->md);
    if (grpc_server_request_call(t->server, &u->call, &u->details, &u->md, t->cqs[cq], t->cqs[cq],
                                 &u->arrived) != GRPC_CALL_OK) {
        grpc_call_details_destroy(&u->details);
        grpc_metadata_array_destroy(&u->md);
        free(u);
    }
}

/* ---- server streaming ------------------------------------------------------------------- */

struct qmsg {
    struct qmsg *next;
    grpc_byte_buffer *bb;
};

struct tw_stream {
    struct tag arrived, sent, close_tag, status_sent;
    srv_transport *t;
    int cq;
    size_t route;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    tw_call c;
    tw_principal principal; /* stable copy for tw_stream_principal */
    int64_t started;
    size_t in_bytes, out_bytes;

    pthread_mutex_t mu;
    int refs;
    struct qmsg *head, *tail;
    size_t qlen;
    int sending;   /* a SEND_MESSAGE batch is in flight */
    int md_sent;   /* initial metadata went out */
    int finishing; /* status requested */
    int status_started;
    int closed;    /* client gone or status done: no more sends */
    int cancelled; /* from RECV_CLOSE_ON_SERVER */
    tw_status final;
    char *final_msg;
    grpc_slice details;
    void (*on_close)(tw_stream *, void *);
    void *on_close_arg;
    int on_close_ran;
    int close_seen; /* RECV_CLOSE_ON_SERVER completed */
    int registered; /* in t->streams */
    struct tw_stream *next_stream, *prev_stream;
};

static void stream_post(srv_transport *t, int cq, size_t route);

static void stream_free(tw_stream *s)
{
    srv_transport *t = s->t;
    if (s->registered) {
        pthread_mutex_lock(&t->lock);
        if (s->prev_stream)
            s->prev_stream->next_stream = s->next_stream;
        else
            t->streams = s->next_stream;
        if (s->next_stream)
            s->next_stream->prev_stream = s->prev_stream;
        pthread_mutex_unlock(&t->lock);
    }
    while (s->head) {
        struct qmsg *q = s->head;
        s->head = q->next;
        grpc_byte_buffer_destroy(q->bb);
        free(q);
    }
    grpc_metadata_array_destroy(&s->md);
    if (s->payload)
        grpc_byte_buffer_destroy(s->payload);
    call_release_trailers(&s->c);
    tw_arena_destroy(s->c.arena);
    free(s->final_msg);
    if (s->call)
        grpc_call_unref(s->call);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void tw_stream_ref(tw_stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->refs++;
    pthread_mutex_unlock(&s->mu);
}

void tw_stream_unref(tw_stream *s)
{
    pthread_mutex_lock(&s->mu);
    int left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left == 0)
        stream_free(s);
}

const tw_principal *tw_stream_principal(const tw_stream *s)
{
    return &s->principal;
}

void tw_stream_on_close(tw_stream *s, void (*fn)(tw_stream *, void *), void *arg)
{
    int run_now = 0;
    pthread_mutex_lock(&s->mu);
    if (s->close_seen && !s->on_close_ran) {
        /* Closed before the callback was set: run it now so its owner still cleans up. */
        s->on_close_ran = 1;
        run_now = fn != NULL;
    } else {
        s->on_close = fn;
        s->on_close_arg = arg;
    }
    pthread_mutex_unlock(&s->mu);
    if (run_now)
        fn(s, arg);
}

static void stream_run_on_close(tw_stream *s)
{
    void (*fn)(tw_stream *, void *) = NULL;
    void *arg = NULL;
    pthread_mutex_lock(&s->mu);
    s->close_seen = 1;
    if (!s->on_close_ran && s->on_close) {
        s->on_close_ran = 1;
        fn = s->on_close;
        arg = s->on_close_arg;
    }
    pthread_mutex_unlock(&s->mu);
    if (fn)
        fn(s, arg);
}

static void stream_status_done(struct tag *tag, int ok)
{
    (void)ok;
    tw_stream *s = container_of(tag, tw_stream, status_sent);
    access_log(&s->c, s->final.code, s->started, s->in_bytes, s->out_bytes);
    grpc_slice_unref(s->details);
    tw_stream_unref(s);
}

/* Start the next batch if none is in flight. Called with s->mu held. */
static void stream_pump_locked(tw_stream *s)
{
    if (s->sending || s->status_started)
        return;
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!s->md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    }
    if (s->head && !s->closed) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = s->head->bb;
        n++;
        s->sending = 1;
        s->md_sent = 1;
        s->refs++;
        if (grpc_call_start_batch(s->call, ops, n, &s->sent, NULL) != GRPC_CALL_OK) {
            s->sending = 0;
            s->closed = 1;
            s->refs--;
        }
        return;
    }
    if (s->finishing && !s->cancelled) {
        s->status_started = 1;
        s->details = grpc_slice_from_copied_string(s->final_msg ? s->final_msg : "");
        status_op(&ops[n], s->final.code, &s->details, &s->c);
        n++;
        s->md_sent = 1;
        s->refs++;
        if (grpc_call_start_batch(s->call, ops, n, &s->status_sent, NULL) != GRPC_CALL_OK) {
            grpc_slice_unref(s->details);
            s->refs--;
        }
    }
}

static void stream_sent(struct tag *tag, int ok)
{
    tw_stream *s = container_of(tag, tw_stream, sent);
    if (ok)
        call_msg(&s->c, 1);
    pthread_mutex_lock(&s->mu);
    s->sending = 0;
    struct qmsg *q = s->head;
    if (q) {
        s->head = q->next;
        if (!s->head)
            s->tail = NULL;
        s->qlen--;
    }
    if (!ok)
        s->closed = 1;
    stream_pump_locked(s);
    pthread_mutex_unlock(&s->mu);
    if (q) {
        grpc_byte_buffer_destroy(q->bb);
        free(q);
    }
    tw_stream_unref(s);
}

static void stream_closed(struct tag *tag, int ok)
{
    (void)ok;
    tw_stream *s = container_of(tag, tw_stream, close_tag);
    pthread_mutex_lock(&s->mu);
    s->closed = 1;
    int log_cancel = s->cancelled && !s->status_started;
    pthread_mutex_unlock(&s->mu);
    if (log_cancel)
        access_log(&s->c, TW_CANCELLED, s->started, s->in_bytes, s->out_bytes);
    stream_run_on_close(s);
    tw_stream_unref(s);
}

int tw_stream_send(tw_stream *s, const ProtobufCMessage *msg)
{
    int rc = -1;
    pthread_mutex_lock(&s->mu);
    if (s->closed || s->finishing)
        goto out;
    if (msg->descriptor != s->c.route->out) {
        tw_logf(TW_LOG_ERROR, "stream_type", "stream %s: wrong message type %s", s->c.route->path,
                msg->descriptor->name);
        goto out;
    }
    if (s->qlen >= STREAM_QUEUE_MAX) {
        /* A reader this slow would hold unbounded memory: end its stream. */
        s->closed = 1;
        grpc_call_cancel_with_status(s->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                     "stream reader too slow", NULL);
        goto out;
    }
    struct qmsg *q = malloc(sizeof(*q));
    if (!q)
        goto out;
    size_t n;
    q->bb = encode(msg, &n);
    q->next = NULL;
    s->out_bytes += n;
    if (s->tail)
        s->tail->next = q;
    else
        s->head = q;
    s->tail = q;
    s->qlen++;
    stream_pump_locked(s);
    rc = 0;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void tw_stream_finish(tw_stream *s, tw_status st)
{
    pthread_mutex_lock(&s->mu);
    if (!s->finishing) {
        s->finishing = 1;
        /* Details now, while st's borrowed parts are alive; the finisher may be any thread,
         * so they are encoded in an arena of their own rather than the stream's. */
        if (st.code != TW_OK) {
            tw_arena *tmp = tw_arena_create();
            add_status_details(&s->c, tmp, &st);
            tw_arena_destroy(tmp);
        }
        s->final = st;
        s->final.violations = NULL;
        s->final.nviolations = 0;
        s->final_msg = st.message ? strdup(st.message) : NULL;
        s->final.message = s->final_msg;
        stream_pump_locked(s);
    }
    pthread_mutex_unlock(&s->mu);
}

static void stream_arrived(struct tag *tag, int ok)
{
    tw_stream *s = container_of(tag, tw_stream, arrived);
    srv_transport *t = s->t;
    if (!ok) {
        stream_free(s);
        return;
    }
    s->started = tw_mono_us();
    const tw_route *route = &t->routes->routes[s->route];
    if (accepting(t))
        stream_post(t, s->cq, s->route);
    call_init(&s->c, t, route, s->call, s->deadline);
    s->c.arena = tw_arena_create();
    call_started(&s->c, &s->md);
    s->refs = 2; /* the close batch below, and this function until it returns */

    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &s->cancelled;
    if (grpc_call_start_batch(s->call, &op, 1, &s->close_tag, NULL) != GRPC_CALL_OK) {
        access_log(&s->c, TW_INTERNAL, s->started, 0, 0);
        stream_free(s);
        return;
    }
    /* Register so shutdown can end it. */
    pthread_mutex_lock(&t->lock);
    s->registered = 1;
    s->next_stream = t->streams;
    if (t->streams)
        t->streams->prev_stream = s;
    t->streams = s;
    int late = t->shutting_down;
    pthread_mutex_unlock(&t->lock);

    tw_status st = s->c.arena ? tw_ok() : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    if (st.code == TW_OK && late)
        st = tw_err(TW_UNAVAILABLE, "server shutting down");
    if (st.code == TW_OK)
        st = admit(&s->c, &s->md);
    ProtobufCMessage *req = NULL;
    if (st.code == TW_OK && !route->def->stream)
        st = tw_err(TW_UNIMPLEMENTED, "method not implemented yet");
    if (st.code == TW_OK) {
        st = decode(&s->c, &s->payload, route->in, &req, &s->in_bytes);
        if (st.code == TW_OK)
            call_msg(&s->c, 0);
    }
    if (st.code == TW_OK) {
        s->principal = s->c.principal;
        if (s->c.principal.subject)
            s->principal.subject = s->c.principal.subject; /* arena lives with the stream */
        st = route->def->stream(&s->c, req, s);
    }
    if (st.code != TW_OK)
        tw_stream_finish(s, st);
    tw_stream_unref(s);
}

static void stream_post(srv_transport *t, int cq, size_t route)
{
    tw_stream *s = tw_calloc(1, sizeof(*s));
    if (!s)
        return;
    s->t = t;
    s->cq = cq;
    s->route = route;
    s->arrived.fn = stream_arrived;
    s->sent.fn = stream_sent;
    s->close_tag.fn = stream_closed;
    s->status_sent.fn = stream_status_done;
    pthread_mutex_init(&s->mu, NULL);
    grpc_metadata_array_init(&s->md);
    if (grpc_server_request_registered_call(t->server, t->registered[route], &s->call, &s->deadline,
                                            &s->md, &s->payload, t->cqs[cq], t->cqs[cq],
                                            &s->arrived) != GRPC_CALL_OK) {
        grpc_metadata_array_destroy(&s->md);
        pthread_mutex_destroy(&s->mu);
        free(s);
    }
}

/* ---- bidirectional streaming ------------------------------------------------------------ */

struct bidi {
    struct tag arrived, step, final;
    srv_transport *t;
    int cq;
    size_t route;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *recv;
    grpc_byte_buffer *reply;
    grpc_slice details;
    int cancelled;
    tw_call c;
    tw_code code;
    int64_t started;
    size_t in_bytes, out_bytes;
};

static void bidi_post(srv_transport *t, int cq, size_t route);

static void bidi_free(struct bidi *b)
{
    grpc_metadata_array_destroy(&b->md);
    if (b->recv)
        grpc_byte_buffer_destroy(b->recv);
    if (b->reply)
        grpc_byte_buffer_destroy(b->reply);
    call_release_trailers(&b->c);
    tw_arena_destroy(b->c.arena);
    if (b->call)
        grpc_call_unref(b->call);
    free(b);
}

static void bidi_final_done(struct tag *tag, int ok)
{
    struct bidi *b = container_of(tag, struct bidi, final);
    access_log(&b->c, ok ? b->code : TW_CANCELLED, b->started, b->in_bytes, b->out_bytes);
    grpc_slice_unref(b->details);
    bidi_free(b);
}

static void bidi_finish(struct bidi *b, tw_status st, int send_md)
{
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (send_md)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    b->code = st.code;
    b->details = grpc_slice_from_copied_string(st.message ? st.message : "");
    add_status_details(&b->c, b->c.arena, &st);
    status_op(&ops[n], st.code, &b->details, &b->c);
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &b->cancelled;
    n++;
    if (grpc_call_start_batch(b->call, ops, n, &b->final, NULL) != GRPC_CALL_OK) {
        access_log(&b->c, TW_INTERNAL, b->started, b->in_bytes, b->out_bytes);
        grpc_slice_unref(b->details);
        bidi_free(b);
    }
}

static void bidi_step(struct tag *tag, int ok)
{
    struct bidi *b = container_of(tag, struct bidi, step);
    const tw_route *route = b->c.route;
    if (b->reply) {
        if (ok)
            call_msg(&b->c, 1);
        grpc_byte_buffer_destroy(b->reply);
        b->reply = NULL;
    }
    if (!ok) { /* cancelled or past deadline */
        access_log(&b->c, TW_CANCELLED, b->started, b->in_bytes, b->out_bytes);
        bidi_free(b);
        return;
    }
    if (!b->recv) { /* client half-closed */
        bidi_finish(b, tw_ok(), 0);
        return;
    }
    /* Each message gets its own arena so a long stream does not grow without bound. */
    tw_arena_destroy(b->c.arena);
    b->c.arena = tw_arena_create();
    tw_status st = b->c.arena ? tw_ok() : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    ProtobufCMessage *req = NULL, *resp = NULL;
    size_t n = 0;
    if (st.code == TW_OK && !accepting(b->t))
        st = tw_err(TW_UNAVAILABLE, "server shutting down");
    if (st.code == TW_OK) {
        st = decode(&b->c, &b->recv, route->in, &req, &n);
        if (st.code == TW_OK)
            call_msg(&b->c, 0);
    }
    b->in_bytes += n;
    if (b->recv) {
        grpc_byte_buffer_destroy(b->recv);
        b->recv = NULL;
    }
    if (st.code == TW_OK) {
        resp = tw_codec_new(b->c.arena, route->out);
        if (!resp)
            st = tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    }
    if (st.code == TW_OK)
        st = route->def->unary(&b->c, req, resp);
    if (st.code != TW_OK) {
        bidi_finish(b, st, 0);
        return;
    }
    b->reply = encode(resp, &n);
    b->out_bytes += n;
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_MESSAGE;
    ops[0].data.send_message.send_message = b->reply;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &b->recv;
    if (grpc_call_start_batch(b->call, ops, 2, &b->step, NULL) != GRPC_CALL_OK) {
        access_log(&b->c, TW_INTERNAL, b->started, b->in_bytes, b->out_bytes);
        bidi_free(b);
    }
}

static void bidi_arrived(struct tag *tag, int ok)
{
    struct bidi *b = container_of(tag, struct bidi, arrived);
    srv_transport *t = b->t;
    if (!ok) {
        bidi_free(b);
        return;
    }
    b->started = tw_mono_us();
    if (accepting(t))
        bidi_post(t, b->cq, b->route);
    const tw_route *route = &t->routes->routes[b->route];
    call_init(&b->c, t, route, b->call, b->deadline);
    b->c.arena = tw_arena_create();
    call_started(&b->c, &b->md);
    tw_status st = b->c.arena ? tw_ok() : tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    if (st.code == TW_OK)
        st = admit(&b->c, &b->md);
    if (st.code == TW_OK && !route->def->unary)
        st = tw_err(TW_UNIMPLEMENTED, "method not implemented yet");
    if (st.code != TW_OK) {
        bidi_finish(b, st, 1);
        return;
    }
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &b->recv;
    if (grpc_call_start_batch(b->call, ops, 2, &b->step, NULL) != GRPC_CALL_OK) {
        access_log(&b->c, TW_INTERNAL, b->started, b->in_bytes, b->out_bytes);
        bidi_free(b);
    }
}

static void bidi_post(srv_transport *t, int cq, size_t route)
{
    struct bidi *b = tw_calloc(1, sizeof(*b));
    if (!b)
        return;
    b->t = t;
    b->cq = cq;
    b->route = route;
    b->arrived.fn = bidi_arrived;
    b->step.fn = bidi_step;
    b->final.fn = bidi_final_done;
    grpc_metadata_array_init(&b->md);
    if (grpc_server_request_registered_call(t->server, t->registered[route], &b->call, &b->deadline,
                                            &b->md, NULL, t->cqs[cq], t->cqs[cq],
                                            &b->arrived) != GRPC_CALL_OK) {
        grpc_metadata_array_destroy(&b->md);
        free(b);
    }
}

/* ---- tw_call accessors ------------------------------------------------------------------ */

tw_arena *tw_call_arena(tw_call *c)
{
    return c->arena;
}

tw_principal *tw_call_principal(tw_call *c)
{
    return &c->principal;
}

const char *tw_call_peer(const tw_call *c)
{
    return c->peer;
}

const char *tw_call_method(const tw_call *c)
{
    return c->route ? c->route->path : "internal";
}

uint64_t tw_call_id(const tw_call *c)
{
    return c->id;
}

const tw_trace *tw_call_trace(const tw_call *c)
{
    return &c->trace;
}

bool tw_call_inline(const tw_call *c)
{
    return c->on_cq;
}

void tw_call_defer(tw_call *c)
{
    if (c->on_cq)
        c->deferred = true;
}

void *tw_call_app(const tw_call *c)
{
    return c->app;
}

tw_call *tw_call_detached(tw_arena *a, void *app)
{
    tw_call *c = tw_arena_zalloc(a, sizeof(*c));
    if (c) {
        c->arena = a;
        c->app = app;
        c->deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
        snprintf(c->peer, sizeof(c->peer), "internal");
        tw_trace_start(&c->trace, NULL, 0); /* background work: a trace of its own */
    }
    return c;
}

int64_t tw_call_remaining_ms(const tw_call *c)
{
    gpr_timespec d = gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    if (gpr_time_cmp(c->deadline, gpr_inf_future(c->deadline.clock_type)) == 0)
        return INT64_MAX;
    gpr_timespec left = gpr_time_sub(d, now);
    if (left.tv_sec < 0)
        return 0;
    return left.tv_sec * 1000 + left.tv_nsec / 1000000;
}

tw_status tw_call_errorf(tw_call *c, tw_code code, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    const char *msg = c->arena ? tw_arena_strdup(c->arena, buf) : NULL;
    return tw_err(code, msg ? msg : "error");
}

int tw_call_add_trailer(tw_call *c, const char *key, const char *value)
{
    if (c->ntrailers >= MAX_TRAILERS)
        return -1;
    c->trailers[c->ntrailers].key = grpc_slice_from_copied_string(key);
    c->trailers[c->ntrailers].value = grpc_slice_from_copied_string(value);
    c->ntrailers++;
    return 0;
}

int tw_call_add_trailer_bin(tw_call *c, const char *key, const void *value, size_t len)
{
    if (c->ntrailers >= MAX_TRAILERS)
        return -1;
    c->trailers[c->ntrailers].key = grpc_slice_from_copied_string(key);
    c->trailers[c->ntrailers].value = grpc_slice_from_copied_buffer(value, len);
    c->ntrailers++;
    return 0;
}

static void *exec_main(void *arg)
{
    srv_transport *t = arg;
    pthread_mutex_lock(&t->exec_mu);
    for (;;) {
        while (!t->exec_head && !t->exec_stop)
            pthread_cond_wait(&t->exec_cv, &t->exec_mu);
        struct rpc *r = t->exec_head;
        if (!r)
            break; /* stopping and drained */
        t->exec_head = r->exec_next;
        if (!t->exec_head)
            t->exec_tail = NULL;
        pthread_mutex_unlock(&t->exec_mu);
        rpc_run(r);
        pthread_mutex_lock(&t->exec_mu);
    }
    pthread_mutex_unlock(&t->exec_mu);
    return NULL;
}

/* Drain the queue, then join the executors. */
static void exec_stop(srv_transport *t)
{
    if (!t->execs_started)
        return;
    pthread_mutex_lock(&t->exec_mu);
    t->exec_stop = 1;
    pthread_cond_broadcast(&t->exec_cv);
    pthread_mutex_unlock(&t->exec_mu);
    for (int i = 0; i < t->nexec; i++)
        pthread_join(t->execs[i], NULL);
    t->execs_started = 0;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

/* The worker comes back from its queue at least every WORKER_TICK_MS even when idle, and
 * counts each return: a queue (or a worker stuck in a callback) that stops counting is what
 * the systemd watchdog must see (srv_transport_progress). */
#define WORKER_TICK_MS 200

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    grpc_completion_queue *cq = w->t->cqs[w->q];
    for (;;) {
        gpr_timespec tick = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(WORKER_TICK_MS, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(cq, tick, NULL);
        atomic_fetch_add_explicit(&w->ticks, 1, memory_order_relaxed);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE) {
            struct tag *tag = ev.tag;
            tag->fn(tag, ev.success);
        }
    }
    return NULL;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (1 << 20) ||
        fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)n + 1);
    if (!buf)
        goto out;
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
out:
    fclose(f);
    return buf;
}

/* Client credentials for srv_transport_self_check over TLS: no server verification, and
 * the given identity (mTLS) when self_cert is not NULL. */
static grpc_channel_credentials *check_credentials(const char *self_cert, const char *self_key)
{
    grpc_tls_credentials_options *o = grpc_tls_credentials_options_create();
    if (self_cert) { /* without an identity no provider at all: it needs one or roots */
        grpc_tls_identity_pairs *pairs = grpc_tls_identity_pairs_create();
        grpc_tls_identity_pairs_add_pair(pairs, self_key, self_cert);
        grpc_tls_certificate_provider *p =
            grpc_tls_certificate_provider_static_data_create(NULL, pairs);
        grpc_tls_credentials_options_set_certificate_provider(o, p);
        grpc_tls_certificate_provider_release(p);
        grpc_tls_credentials_options_watch_identity_key_cert_pairs(o);
    }
    grpc_tls_credentials_options_set_verify_server_cert(o, 0);
    grpc_tls_certificate_verifier *v = grpc_tls_certificate_verifier_no_op_create();
    grpc_tls_credentials_options_set_certificate_verifier(o, v);
    grpc_tls_certificate_verifier_release(v);
    grpc_tls_credentials_options_set_check_call_host(o, 0);
    return grpc_tls_credentials_create(o);
}

/* The listener's credentials, and under TLS the self-check's (*check). Under mTLS the client
 * CAs are the configured file plus the self-check's own certificate. */
static grpc_server_credentials *make_credentials(const srv_transport_config *cfg,
                                                 grpc_channel_credentials **check)
{
    *check = NULL;
    if (!cfg->tls_cert_file)
        return grpc_insecure_server_credentials_create();
    grpc_server_credentials *creds = NULL;
    char *self_cert = NULL, *self_key = NULL;
    char *cert = read_file(cfg->tls_cert_file);
    char *key = read_file(cfg->tls_key_file);
    char *ca = cfg->tls_client_ca_file ? read_file(cfg->tls_client_ca_file) : NULL;
    if (!cert || !key || (cfg->tls_client_ca_file && !ca)) {
        tw_logf(TW_LOG_ERROR, "tls", "cannot read TLS certificate, key or client CA file");
        goto out;
    }
    if (ca) {
        if (srv_selfcert_create(&self_cert, &self_key) != 0) {
            tw_logf(TW_LOG_ERROR, "tls", "cannot make the listener self-check's certificate");
            goto out;
        }
        size_t na = strlen(ca), nc = strlen(self_cert);
        char *both = malloc(na + 1 + nc + 1);
        if (!both)
            goto out;
        memcpy(both, ca, na);
        both[na] = '\n';
        memcpy(both + na + 1, self_cert, nc + 1);
        free(ca);
        ca = both;
    }
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    grpc_ssl_server_certificate_config *sc =
        grpc_ssl_server_certificate_config_create(ca, &pair, 1);
    grpc_ssl_server_credentials_options *opts =
        grpc_ssl_server_credentials_create_options_using_config(
            ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
               : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
            sc);
    creds = grpc_ssl_server_credentials_create_with_options(opts);
    if (creds) {
        *check = check_credentials(self_cert, self_key);
        if (!*check) {
            grpc_server_credentials_release(creds);
            creds = NULL;
        }
    }
out:
    free(self_cert);
    if (self_key) {
        memset(self_key, 0, strlen(self_key));
        free(self_key);
    }
    free(cert);
    if (key) {
        memset(key, 0, strlen(key));
        free(key);
    }
    free(ca);
    return creds;
}

int srv_transport_progress(srv_transport *t, uint64_t *seen, size_t n)
{
    int all = t->started && n >= (size_t)t->ncq;
    for (int q = 0; q < t->ncq && (size_t)q < n; q++) {
        uint64_t now = atomic_load_explicit(&t->workers[q].ticks, memory_order_relaxed);
        if (now == seen[q])
            all = 0;
        seen[q] = now;
    }
    return all;
}

int srv_transport_queues(const srv_transport *t)
{
    return t->ncq;
}

const char *srv_transport_grpc_version(void)
{
    return grpc_version_string();
}

void srv_transport_global_init(void)
{
    grpc_init();
}

void srv_transport_global_shutdown(void)
{
    grpc_shutdown_blocking();
}

int srv_transport_create(const srv_transport_config *cfg, const tw_routes *routes,
                         const srv_hooks *hooks, srv_transport **out, int *port)
{
    srv_transport *t = tw_calloc(1, sizeof(*t));
    grpc_server_credentials *creds = NULL;
    int rc = -1;
    *out = NULL;
    if (!t)
        return -1;
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->exec_mu, NULL);
    pthread_cond_init(&t->exec_cv, NULL);
    t->cfg = *cfg;
    t->routes = routes;
    if (hooks)
        t->hooks = *hooks;
    t->ncq = cfg->workers > 0 ? cfg->workers : 1;
    if (cfg->trusted_fronts &&
        tw_ip_list_parse(cfg->trusted_fronts, t->fronts, TW_MAX_TRUSTED_FRONTS, &t->nfronts) != 0) {
        tw_logf(TW_LOG_ERROR, "transport", "TW_TRUSTED_FRONTS: not a list of IP addresses");
        goto out;
    }
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) == (ssize_t)sizeof rnd)
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(t->self_token + 2 * i, 3, "%02x", rnd[i]);

    /* At most 100 concurrent streams per connection (1.51's default is unlimited). This is
     * a bound, not a defence: gRPC core 1.51.1 has none against rapid reset (CVE-2023-44487)
     * or the CONTINUATION header flood (CVE-2023-33953). Measured with the attacks of
     * tests/integration/h2attack.py: with or without this, a resource quota or
     * grpc.max_metadata_size (already 8 KiB by default, checked only once a header is
     * complete), 10,000 reset pairs grew RSS by 6-171 MB depending on how fast the socket
     * was read, and 8 flooding connections took 12-14 s of CPU in 5 s. The supported
     * deployment therefore puts HAProxy in front (deploy/haproxy/). */
    static const struct {
        const char *key;
        int value;
    } iargs[] = {
        {GRPC_ARG_ALLOW_REUSEPORT, 0},
        {GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, 16 << 20},
        /* channelz keeps per-channel call counters and traces that nothing here can read (the
         * core C API serves no channelz service); each call would pay for them. */
        {GRPC_ARG_ENABLE_CHANNELZ, 0},
        {GRPC_ARG_MAX_CONCURRENT_STREAMS, 100},
        /* grpc 1.51 inflates a compressed message completely and only then applies the size
         * cap: a 255 KB gzip body cost 256 MiB before authentication (issue 19). Turned off,
         * grpc hands over the compressed bytes and decode() inflates them, bounded. */
        {GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, 0},
        /* The encodings decode() can inflate; grpc answers any other grpc-encoding
         * UNIMPLEMENTED and advertises exactly these in grpc-accept-encoding. */
        {GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET,
         (1 << GRPC_COMPRESS_NONE) | (1 << GRPC_COMPRESS_DEFLATE) | (1 << GRPC_COMPRESS_GZIP)},
    };
    enum { NIARGS = sizeof(iargs) / sizeof(iargs[0]) };
    grpc_arg args[NIARGS + 1];
    memset(args, 0, sizeof(args));
    for (size_t i = 0; i < NIARGS; i++) {
        args[i].type = GRPC_ARG_INTEGER;
        args[i].key = (char *)iargs[i].key;
        args[i].value.integer = iargs[i].value;
    }
    /* With decompression off this caps the compressed size; decode() caps the inflated size
     * with the same number. */
    args[NIARGS].type = GRPC_ARG_INTEGER;
    args[NIARGS].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[NIARGS].value.integer = cfg->max_message_bytes;
    grpc_channel_args cargs = {NIARGS + 1, args};
    t->server = grpc_server_create(&cargs, NULL);

    t->cqs = tw_calloc((size_t)t->ncq, sizeof(*t->cqs));
    t->threads = tw_calloc((size_t)t->ncq, sizeof(*t->threads));
    t->workers = tw_calloc((size_t)t->ncq, sizeof(*t->workers));
    t->nexec = cfg->executors > 0 ? cfg->executors : t->ncq;
    t->execs = tw_calloc((size_t)t->nexec, sizeof(*t->execs));
    t->registered = tw_calloc(routes->count ? routes->count : 1, sizeof(void *));
    if (!t->server || !t->cqs || !t->threads || !t->workers || !t->registered || !t->execs)
        goto out;
    for (int i = 0; i < t->ncq; i++) {
        t->cqs[i] = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(t->server, t->cqs[i], NULL);
    }
    t->shutdown_cq = grpc_completion_queue_create_for_pluck(NULL);

    for (size_t i = 0; i < routes->count; i++) {
        const tw_route *r = &routes->routes[i];
        grpc_server_register_method_payload_handling payload =
            r->def->kind == TW_KIND_BIDI_STREAM ? GRPC_SRM_PAYLOAD_NONE
                                                : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER;
        t->registered[i] = grpc_server_register_method(t->server, r->path, NULL, payload, 0);
        if (!t->registered[i]) {
            tw_logf(TW_LOG_ERROR, "start", "cannot register method %s", r->path);
            goto out;
        }
    }
    creds = make_credentials(cfg, &t->check_creds);
    if (!creds)
        goto out;
    int bound = grpc_server_add_http2_port(t->server, cfg->listen, creds);
    if (bound <= 0) {
        tw_logf(TW_LOG_ERROR, "start", "cannot listen on %s (address in use or invalid)",
                cfg->listen);
        goto out;
    }
    *port = bound;
    t->port = bound;
    rc = 0;
out:
    if (creds)
        grpc_server_credentials_release(creds);
    if (rc != 0) {
        srv_transport_destroy(t);
        return -1;
    }
    *out = t;
    return 0;
}

int srv_transport_start(srv_transport *t)
{
    grpc_server_start(t->server);
    for (int q = 0; q < t->ncq; q++) {
        for (size_t i = 0; i < t->routes->count; i++) {
            for (int k = 0; k < REQUESTS_PER_ROUTE_PER_CQ; k++) {
                switch (t->routes->routes[i].def->kind) {
                case TW_KIND_UNARY:
                    rpc_post(t, q, i);
                    break;
                case TW_KIND_SERVER_STREAM:
                    stream_post(t, q, i);
                    break;
                case TW_KIND_BIDI_STREAM:
                    bidi_post(t, q, i);
                    break;
                }
            }
        }
        for (int k = 0; k < UNKNOWN_REQUESTS_PER_CQ; k++)
            unknown_post(t, q);
    }
    for (int i = 0; i < t->nexec; i++) {
        if (pthread_create(&t->execs[i], NULL, exec_main, t) != 0) {
            tw_logf(TW_LOG_ERROR, "start", "cannot start executor thread: %s", strerror(errno));
            t->nexec = i;
            break;
        }
    }
    t->execs_started = 1;
    for (int q = 0; q < t->ncq; q++) {
        t->workers[q].t = t;
        t->workers[q].q = q;
        if (pthread_create(&t->threads[q], NULL, worker_main, &t->workers[q]) != 0) {
            tw_logf(TW_LOG_ERROR, "start", "cannot start worker thread: %s", strerror(errno));
            t->ncq = q; /* join only those that started */
            return -1;
        }
    }
    t->started = 1;
    return 0;
}

void srv_transport_shutdown(srv_transport *t)
{
    pthread_mutex_lock(&t->lock);
    if (t->shut) {
        pthread_mutex_unlock(&t->lock);
        return;
    }
    t->shut = 1;
    t->shutting_down = 1;
    /* Open streams would hold the shutdown until the grace period: end them now. Take a
     * reference under the lock so none is freed while we finish it. */
    size_t n = 0;
    for (tw_stream *s = t->streams; s; s = s->next_stream)
        n++;
    tw_stream **open = n ? calloc(n, sizeof(*open)) : NULL;
    size_t k = 0;
    if (open) {
        for (tw_stream *s = t->streams; s; s = s->next_stream) {
            tw_stream_ref(s);
            open[k++] = s;
        }
    }
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < k; i++) {
        tw_stream_finish(open[i], tw_err(TW_UNAVAILABLE, "server shutting down"));
        tw_stream_unref(open[i]);
    }
    free(open);

    if (t->server) {
        grpc_server_shutdown_and_notify(t->server, t->shutdown_cq, t);
        gpr_timespec deadline =
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                         gpr_time_from_millis(t->cfg.shutdown_grace_ms, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_pluck(t->shutdown_cq, t, deadline, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            tw_logf(TW_LOG_WARN, "shutdown", "grace period over: cancelling remaining calls");
            grpc_server_cancel_all_calls(t->server);
            grpc_completion_queue_pluck(t->shutdown_cq, t, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                        NULL);
        }
    }
}

void srv_transport_destroy(srv_transport *t)
{
    if (!t)
        return;
    if (t->started)
        srv_transport_shutdown(t);
    if (t->server) {
        if (!t->started) {
            grpc_server_shutdown_and_notify(t->server, t->shutdown_cq, t);
            grpc_server_cancel_all_calls(t->server);
            grpc_completion_queue_pluck(t->shutdown_cq, t, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                        NULL);
        }
        exec_stop(t); /* handlers still running finish (their replies fail if cancelled) */
        grpc_server_destroy(t->server);
    }
    for (int i = 0; t->cqs && i < t->ncq; i++) {
        if (!t->cqs[i])
            continue;
        grpc_completion_queue_shutdown(t->cqs[i]);
        if (t->started) {
            pthread_join(t->threads[i], NULL);
        } else {
            /* No worker ever ran: drain here so request slots are freed. */
            for (;;) {
                grpc_event ev = grpc_completion_queue_next(
                    t->cqs[i], gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                    break;
                if (ev.type == GRPC_OP_COMPLETE)
                    ((struct tag *)ev.tag)->fn(ev.tag, 0);
            }
        }
        grpc_completion_queue_destroy(t->cqs[i]);
    }
    if (t->shutdown_cq) {
        grpc_completion_queue_shutdown(t->shutdown_cq);
        grpc_completion_queue_destroy(t->shutdown_cq);
    }
    exec_stop(t);
    free(t->execs);
    pthread_mutex_destroy(&t->exec_mu);
    pthread_cond_destroy(&t->exec_cv);
    free(t->cqs);
    free(t->threads);
    free(t->workers);
    free(t->registered);
    if (t->check_creds)
        grpc_channel_credentials_release(t->check_creds);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* One Health/Check over a new channel that shares no connection with any other (local
 * subchannel pool), so it proves that the listener still accepts, not that an old
 * connection still works: gRPC 1.51.1 stops accepting for good after accept4 fails once
 * with EMFILE (CVE-2023-4785). */
int srv_transport_self_check(srv_transport *t, int timeout_ms)
{
    char target[300];
    const char *listen = t->cfg.listen;
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    grpc_channel *ch = NULL;
    grpc_completion_queue *cq = NULL;
    grpc_call *call = NULL;
    grpc_byte_buffer *req = NULL, *resp = NULL;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    int rc = -1;
    if (t->cfg.tls_cert_file && !t->check_creds)
        return -1;
    if (!colon || colon - listen > 256)
        return -1;
    snprintf(target, sizeof target, "%.*s:%d", (int)(colon - listen), listen, t->port);
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    grpc_arg args[2];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[0].value.integer = 1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_ENABLE_RETRIES;
    args[1].value.integer = 0;
    grpc_channel_args cargs = {2, args};
    if (t->check_creds) {
        ch = grpc_channel_create(target, t->check_creds, &cargs);
    } else {
        grpc_channel_credentials *creds = grpc_insecure_credentials_create();
        ch = grpc_channel_create(target, creds, &cargs);
        grpc_channel_credentials_release(creds);
    }
    cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_slice method = grpc_slice_from_static_string("/grpc.health.v1.Health/Check");
    call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL, deadline,
                                    NULL);
    if (!ch || !cq || !call)
        goto out;
    grpc_slice empty = grpc_empty_slice();
    req = grpc_raw_byte_buffer_create(&empty, 1);
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    grpc_metadata mark = {.key = grpc_slice_from_static_string(SELF_CHECK_MD),
                          .value = grpc_slice_from_static_string(t->self_token)};
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 1;
    ops[0].data.send_initial_metadata.metadata = &mark;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &resp;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK)
        goto out;
    /* The call's own deadline ends the batch; the margin only guards against a stuck queue. */
    grpc_event ev = grpc_completion_queue_pluck(
        cq, call, gpr_time_add(deadline, gpr_time_from_millis(1000, GPR_TIMESPAN)), NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
        grpc_call_cancel(call, NULL);
        grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        goto out;
    }
    rc = ev.success && status == GRPC_STATUS_OK && resp ? 0 : -1;
out:
    if (call)
        grpc_call_unref(call);
    if (req)
        grpc_byte_buffer_destroy(req);
    if (resp)
        grpc_byte_buffer_destroy(resp);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    if (ch)
        grpc_channel_destroy(ch);
    if (cq) {
        grpc_completion_queue_shutdown(cq);
        while (
            grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
            GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(cq);
    }
    return rc;
}
