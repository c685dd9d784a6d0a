/*
 * twclient.c - the hand-written core of libtwclient on the gRPC core C API.
 *
 * Design: one grpc_channel per client; every call gets its own pluck completion queue, so
 * calls from different threads never share queue state and a call's lifetime is one
 * function (unary) or one twc_stream (server streaming). Messages are packed and unpacked
 * with protobuf-c using the descriptors of the generated twc_method table.
 *
 * Invariants:
 *  - Plaintext channels only to loopback targets; the check runs before any channel exists.
 *  - Token copies are wiped (explicit_bzero) before they are freed; no status message ever
 *    contains request metadata.
 *  - Every grpc resource taken in a function is released on its single exit path; a stream
 *    owns its call and queue until twc_stream_close, which cancels and drains first.
 */
#include "twclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

struct twc_client {
    grpc_channel *channel;
    int tls;
    int64_t timeout_ms;
    pthread_mutex_t lock; /* guards token */
    char *token;
};

enum { STREAM_OPEN, STREAM_DONE };

struct twc_stream {
    grpc_call *call;
    grpc_completion_queue *cq;
    const twc_method *method;
    int state;
    int got_initial_md;
    int status_pending; /* the RECV_STATUS batch has not been plucked yet */
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_status_code code;
    grpc_slice details;
    twc_status status;
    int tag_status; /* addresses used as completion tags */
    int tag_recv;
};

/* ---------------------------------------------------------------- status helpers */

static const char *const code_names[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

const char *twc_code_name(int code)
{
    if (code < 0 || (size_t)code >= sizeof code_names / sizeof code_names[0])
        return "UNKNOWN_CODE";
    return code_names[code];
}

int twc_code_from_name(const char *name)
{
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < sizeof code_names / sizeof code_names[0]; i++)
        if (strcmp(code_names[i], name) == 0)
            return (int)i;
    return -1;
}

void twc_status_clear(twc_status *st)
{
    if (st == NULL)
        return;
    free(st->message);
    st->message = NULL;
    st->code = TWC_OK;
    st->retry_after_ms = -1;
}

static twc_status status_ok(void)
{
    twc_status st = {TWC_OK, NULL, -1};
    return st;
}

/* A client-side failure; the message is formatted from our own text only. */
static twc_status status_local(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static twc_status status_local(int code, const char *fmt, ...)
{
    twc_status st = {code, NULL, -1};
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    st.message = strdup(buf); /* NULL on OOM: the code alone still tells the story */
    return st;
}

static char *slice_dup(grpc_slice s)
{
    size_t n = GRPC_SLICE_LENGTH(s);
    char *p = malloc(n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, GRPC_SLICE_START_PTR(s), n);
    p[n] = '\0';
    return p;
}

/* Fills st from what RECV_STATUS_ON_CLIENT delivered. */
static void status_from_grpc(twc_status *st, grpc_status_code code, grpc_slice details,
                             const grpc_metadata_array *trailing)
{
    st->code = (int)code;
    st->message = GRPC_SLICE_LENGTH(details) > 0 ? slice_dup(details) : NULL;
    st->retry_after_ms = -1;
    for (size_t i = 0; trailing != NULL && i < trailing->count; i++) {
        const grpc_metadata *md = &trailing->metadata[i];
        if (grpc_slice_str_cmp(md->key, "retry-after-ms") != 0)
            continue;
        char *v = slice_dup(md->value);
        if (v != NULL) {
            char *end = NULL;
            errno = 0;
            long long ms = strtoll(v, &end, 10);
            if (errno == 0 && end != v && *end == '\0' && ms >= 0)
                st->retry_after_ms = ms;
            free(v);
        }
    }
}

void twc_message_free(void *msg)
{
    if (msg != NULL)
        protobuf_c_message_free_unpacked((ProtobufCMessage *)msg, NULL);
}

/* ---------------------------------------------------------------- client */

static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* 1 when host (no brackets, no port) names this machine's loopback interface. */
static int host_is_loopback(const char *host)
{
    unsigned char buf[16];
    if (strcmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, buf) == 1)
        return buf[0] == 127;
    if (inet_pton(AF_INET6, host, buf) == 1) {
        static const unsigned char v6_loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        return memcmp(buf, v6_loop, 16) == 0;
    }
    return 0;
}

/* Accepts "host:port", "[v6]:port", "ipv4:host:port", "ipv6:[v6]:port" and "unix:PATH".
 * Returns 1 for loopback, 0 otherwise (including every name that would need DNS). */
static int target_is_loopback(const char *target)
{
    char host[256];
    const char *p = target;
    if (strncmp(p, "unix:", 5) == 0)
        return 1;
    if (strncmp(p, "ipv4:", 5) == 0 || strncmp(p, "ipv6:", 5) == 0)
        p += 5;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL || (size_t)(close - p - 1) >= sizeof host)
            return 0;
        memcpy(host, p + 1, (size_t)(close - p - 1));
        host[close - p - 1] = '\0';
        if (close[1] != ':' && close[1] != '\0')
            return 0;
    } else {
        const char *colon = strrchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (n == 0 || n >= sizeof host || (colon && strchr(p, ':') != colon))
            return 0;
        memcpy(host, p, n);
        host[n] = '\0';
    }
    return host_is_loopback(host);
}

/* Reads a whole (small) PEM file; caller wipes and frees. NULL + errno on failure. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        if (cap - len < 4096) {
            if (cap > (1u << 20)) { /* 1 MiB: no PEM file of ours is that large */
                errno = EFBIG;
                goto fail;
            }
            char *nb = malloc(cap * 2 + 4096);
            if (nb == NULL)
                goto fail;
            if (buf != NULL) {
                memcpy(nb, buf, len);
                explicit_bzero(buf, cap);
                free(buf);
            }
            buf = nb;
            cap = cap * 2 + 4096;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f))
        goto fail;
    fclose(f);
    buf[len] = '\0';
    return buf;
fail:
    if (buf != NULL) {
        explicit_bzero(buf, cap);
        free(buf);
    }
    fclose(f);
    return NULL;
}

twc_status twc_client_create(const twc_client_opts *opts, twc_client **out)
{
    static const twc_client_opts defaults = {0};
    twc_status st = status_ok();
    twc_client *c = NULL;
    char *ca = NULL, *cert = NULL, *key = NULL;
    grpc_channel_credentials *creds = NULL;
    grpc_arg args[3];
    size_t nargs = 0;
    char ua[128];

    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    const char *target = opts->target ? opts->target : TWC_DEFAULT_TARGET;
    int tls = opts->tls || opts->tls_ca_file || opts->tls_cert_file || opts->tls_key_file;

    if (!tls && !target_is_loopback(target)) {
        st = status_local(TWC_INVALID_ARGUMENT,
                          "refusing plaintext to non-loopback target %s: use TLS", target);
        goto out;
    }
    if ((opts->tls_cert_file == NULL) != (opts->tls_key_file == NULL)) {
        st = status_local(TWC_INVALID_ARGUMENT, "mTLS needs both a client certificate and key");
        goto out;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        st = status_local(TWC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->tls = tls;
    c->timeout_ms = opts->timeout_ms == 0 ? TWC_DEFAULT_TIMEOUT_MS : opts->timeout_ms;
    if (opts->token != NULL && (c->token = strdup(opts->token)) == NULL) {
        st = status_local(TWC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }

    grpc_init();
    if (tls) {
        if (opts->tls_ca_file != NULL && (ca = read_file(opts->tls_ca_file)) == NULL) {
            st = status_local(TWC_INVALID_ARGUMENT, "cannot read CA file %s: %s", opts->tls_ca_file,
                              strerror(errno));
            goto out_grpc;
        }
        if (opts->tls_cert_file != NULL) {
            if ((cert = read_file(opts->tls_cert_file)) == NULL) {
                st = status_local(TWC_INVALID_ARGUMENT, "cannot read certificate %s: %s",
                                  opts->tls_cert_file, strerror(errno));
                goto out_grpc;
            }
            if ((key = read_file(opts->tls_key_file)) == NULL) {
                st = status_local(TWC_INVALID_ARGUMENT, "cannot read key %s: %s",
                                  opts->tls_key_file, strerror(errno));
                goto out_grpc;
            }
        }
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
    } else {
        creds = grpc_insecure_credentials_create();
    }
    if (creds == NULL) {
        st = status_local(TWC_INTERNAL, "cannot create channel credentials");
        goto out_grpc;
    }

    /* Never route our calls through an HTTP proxy picked up from the environment. */
    args[nargs].type = GRPC_ARG_INTEGER;
    args[nargs].key = (char *)(uintptr_t)GRPC_ARG_ENABLE_HTTP_PROXY;
    args[nargs++].value.integer = 0;
    snprintf(ua, sizeof ua, "%s", opts->user_agent ? opts->user_agent : "libtwclient");
    args[nargs].type = GRPC_ARG_STRING;
    args[nargs].key = (char *)(uintptr_t)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
    args[nargs++].value.string = ua;
    if (tls && opts->tls_server_name != NULL) {
        args[nargs].type = GRPC_ARG_STRING;
        args[nargs].key = (char *)(uintptr_t)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
        args[nargs++].value.string = (char *)(uintptr_t)opts->tls_server_name;
    }
    grpc_channel_args cargs = {nargs, args};
    c->channel = grpc_channel_create(target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    if (c->channel == NULL) {
        st = status_local(TWC_INVALID_ARGUMENT, "cannot create a channel to %s", target);
        goto out_grpc;
    }
    *out = c;
    c = NULL;
    goto out;

out_grpc:
    grpc_shutdown();
out:
    wipe_free(ca);
    wipe_free(cert);
    wipe_free(key);
    if (c != NULL) {
        wipe_free(c->token);
        pthread_mutex_destroy(&c->lock);
        free(c);
    }
    return st;
}

void twc_client_destroy(twc_client *c)
{
    if (c == NULL)
        return;
    grpc_channel_destroy(c->channel);
    wipe_free(c->token);
    pthread_mutex_destroy(&c->lock);
    free(c);
    grpc_shutdown();
}

int twc_client_set_token(twc_client *c, const char *token)
{
    char *copy = NULL;
    if (token != NULL && (copy = strdup(token)) == NULL)
        return -1;
    pthread_mutex_lock(&c->lock);
    char *old = c->token;
    c->token = copy;
    pthread_mutex_unlock(&c->lock);
    wipe_free(old);
    return 0;
}

int twc_client_is_tls(const twc_client *c)
{
    return c->tls;
}

/* ---------------------------------------------------------------- call setup */

/* Request metadata for one call: authorization first, then the caller's extras. */
typedef struct {
    grpc_metadata *md;
    size_t count;
} call_md;

static void call_md_free(call_md *m)
{
    for (size_t i = 0; i < m->count; i++) {
        /* Not wiped: gRPC may still hold references to these slices after the call. */
        grpc_slice_unref(m->md[i].key);
        grpc_slice_unref(m->md[i].value);
    }
    free(m->md);
    m->md = NULL;
    m->count = 0;
}

static twc_status call_md_build(twc_client *c, const twc_call_opts *opts, call_md *m)
{
    size_t extra = opts ? opts->metadata_count : 0;
    m->count = 0;
    m->md = calloc(extra + 1, sizeof *m->md);
    if (m->md == NULL)
        return status_local(TWC_RESOURCE_EXHAUSTED, "out of memory");

    pthread_mutex_lock(&c->lock);
    const char *token = (opts && opts->token) ? opts->token : c->token;
    if (token != NULL && token[0] != '\0') {
        size_t n = strlen(token) + sizeof "Bearer ";
        grpc_slice v = grpc_slice_malloc(n - 1);
        memcpy(GRPC_SLICE_START_PTR(v), "Bearer ", 7);
        memcpy(GRPC_SLICE_START_PTR(v) + 7, token, n - 8);
        m->md[m->count].key = grpc_slice_from_static_string("authorization");
        m->md[m->count++].value = v;
    }
    pthread_mutex_unlock(&c->lock);

    for (size_t i = 0; i < extra; i++) {
        const twc_metadata *e = &opts->metadata[i];
        if (e->key == NULL || e->value == NULL || strcmp(e->key, "authorization") == 0) {
            call_md_free(m);
            return status_local(TWC_INVALID_ARGUMENT,
                                "bad extra metadata #%zu (NULL, or authorization: use token)", i);
        }
        m->md[m->count].key = grpc_slice_from_copied_string(e->key);
        m->md[m->count++].value = grpc_slice_from_copied_string(e->value);
    }
    return status_ok();
}

static gpr_timespec deadline_after(int64_t ms)
{
    if (ms <= 0)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* Packs req (or a default m->input message when req is NULL) into a byte buffer. */
static twc_status pack_request(const twc_method *m, const ProtobufCMessage *req,
                               grpc_byte_buffer **out)
{
    twc_status st = status_ok();
    void *empty = NULL;
    uint8_t *buf = NULL;

    *out = NULL;
    if (m == NULL)
        return status_local(TWC_INVALID_ARGUMENT, "no method");
    if (req == NULL) {
        empty = malloc(m->input->sizeof_message);
        if (empty == NULL)
            return status_local(TWC_RESOURCE_EXHAUSTED, "out of memory");
        protobuf_c_message_init(m->input, empty);
        req = empty;
    }
    if (req->descriptor != m->input) {
        st = status_local(TWC_INVALID_ARGUMENT, "%s takes %s, not %s", m->path, m->input->name,
                          req->descriptor ? req->descriptor->name : "?");
        goto out;
    }
    size_t len = protobuf_c_message_get_packed_size(req);
    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        st = status_local(TWC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    protobuf_c_message_pack(req, buf);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
    *out = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    /* A request may carry a broker secret (PutBrokerKey): do not leave a copy behind. */
    explicit_bzero(buf, len);
out:
    free(buf);
    free(empty);
    return st;
}

static twc_status unpack_reply(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb,
                               ProtobufCMessage **out)
{
    grpc_byte_buffer_reader r;
    *out = NULL;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return status_local(TWC_INTERNAL, "cannot read reply");
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    *out = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    if (*out == NULL)
        return status_local(TWC_INTERNAL, "reply does not decode as %s", d->name);
    return status_ok();
}

static grpc_call *call_create(twc_client *c, const twc_method *m, grpc_completion_queue *cq,
                              int64_t timeout_ms)
{
    grpc_slice path = grpc_slice_from_static_string(m->path);
    grpc_call *call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, path,
                                               NULL, deadline_after(timeout_ms), NULL);
    grpc_slice_unref(path);
    return call;
}

static void cq_destroy(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
}

/* ---------------------------------------------------------------- unary */

twc_status twc_call_unary(twc_client *c, const twc_method *m, const ProtobufCMessage *req,
                          ProtobufCMessage **out, const twc_call_opts *opts)
{
    twc_status st = status_ok();
    call_md md = {NULL, 0};
    grpc_byte_buffer *send = NULL, *recv = NULL;
    grpc_completion_queue *cq = NULL;
    grpc_call *call = NULL;
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    const char *error_string = NULL;
    int tag = 0;

    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    *out = NULL;
    if (c == NULL || m == NULL || m->server_streaming) {
        st = status_local(TWC_INVALID_ARGUMENT, "twc_call_unary needs a client and a unary method");
        goto out;
    }
    st = pack_request(m, req, &send);
    if (st.code != TWC_OK)
        goto out;
    st = call_md_build(c, opts, &md);
    if (st.code != TWC_OK)
        goto out;
    cq = grpc_completion_queue_create_for_pluck(NULL);
    int64_t timeout = (opts && opts->timeout_ms != 0) ? opts->timeout_ms : c->timeout_ms;
    call = call_create(c, m, cq, timeout);
    if (call == NULL) {
        st = status_local(TWC_INTERNAL, "cannot create call");
        goto out;
    }

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = md.count;
    ops[0].data.send_initial_metadata.metadata = md.md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &code;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.error_string = &error_string;
    if (grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
        st = status_local(TWC_INTERNAL, "cannot start call");
        goto out;
    }
    grpc_event ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
        st = status_local(TWC_INTERNAL, "completion queue failed");
        goto out;
    }
    status_from_grpc(&st, code, details, &trailing_md);
    if (st.code == TWC_OK) {
        if (recv == NULL) {
            twc_status_clear(&st);
            st = status_local(TWC_INTERNAL, "server sent OK without a reply message");
            goto out;
        }
        twc_status dec = unpack_reply(m->output, recv, out);
        if (dec.code != TWC_OK) {
            twc_status_clear(&st);
            st = dec;
        }
    }
out:
    if (call != NULL)
        grpc_call_unref(call);
    if (cq != NULL)
        cq_destroy(cq);
    if (send != NULL)
        grpc_byte_buffer_destroy(send);
    if (recv != NULL)
        grpc_byte_buffer_destroy(recv);
    call_md_free(&md);
    grpc_slice_unref(details);
    gpr_free((void *)(uintptr_t)error_string);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    return st;
}

/* ---------------------------------------------------------------- server streaming */

twc_status twc_call_stream(twc_client *c, const twc_method *m, const ProtobufCMessage *req,
                           twc_stream **out, const twc_call_opts *opts)
{
    twc_status st = status_ok();
    call_md md = {NULL, 0};
    grpc_byte_buffer *send = NULL;
    twc_stream *s = NULL;
    int tag_send = 0;

    *out = NULL;
    if (c == NULL || m == NULL || !m->server_streaming) {
        st = status_local(TWC_INVALID_ARGUMENT,
                          "twc_call_stream needs a client and a server-streaming method");
        goto out;
    }
    st = pack_request(m, req, &send);
    if (st.code != TWC_OK)
        goto out;
    st = call_md_build(c, opts, &md);
    if (st.code != TWC_OK)
        goto out;
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        st = status_local(TWC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    s->method = m;
    s->details = grpc_empty_slice();
    grpc_metadata_array_init(&s->initial_md);
    grpc_metadata_array_init(&s->trailing_md);
    s->status = status_local(TWC_UNKNOWN, "stream still open");
    s->cq = grpc_completion_queue_create_for_pluck(NULL);
    s->call = call_create(c, m, s->cq, (opts && opts->timeout_ms > 0) ? opts->timeout_ms : -1);
    if (s->call == NULL) {
        st = status_local(TWC_INTERNAL, "cannot create call");
        goto out;
    }

    /* The status batch goes in first so the call's end is always observable. */
    grpc_op sop;
    memset(&sop, 0, sizeof sop);
    sop.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    sop.data.recv_status_on_client.trailing_metadata = &s->trailing_md;
    sop.data.recv_status_on_client.status = &s->code;
    sop.data.recv_status_on_client.status_details = &s->details;
    if (grpc_call_start_batch(s->call, &sop, 1, &s->tag_status, NULL) != GRPC_CALL_OK) {
        st = status_local(TWC_INTERNAL, "cannot start call");
        goto out;
    }
    s->status_pending = 1;

    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = md.count;
    ops[0].data.send_initial_metadata.metadata = md.md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    if (grpc_call_start_batch(s->call, ops, 3, &tag_send, NULL) != GRPC_CALL_OK) {
        st = status_local(TWC_INTERNAL, "cannot start call");
        goto out;
    }
    /* Sending finishes (or fails, which the status batch will report) without the server. */
    grpc_completion_queue_pluck(s->cq, &tag_send, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    *out = s;
    s = NULL;
out:
    twc_stream_close(s);
    if (send != NULL)
        grpc_byte_buffer_destroy(send);
    call_md_free(&md);
    return st;
}

static void stream_finish(twc_stream *s)
{
    if (s->status_pending) {
        grpc_completion_queue_pluck(s->cq, &s->tag_status, gpr_inf_future(GPR_CLOCK_REALTIME),
                                    NULL);
        s->status_pending = 0;
        twc_status_clear(&s->status);
        status_from_grpc(&s->status, s->code, s->details, &s->trailing_md);
    }
    s->state = STREAM_DONE;
}

int twc_stream_next(twc_stream *s, ProtobufCMessage **msg)
{
    grpc_byte_buffer *recv = NULL;
    grpc_op ops[2];
    size_t n = 0;

    *msg = NULL;
    if (s == NULL || s->state == STREAM_DONE)
        return 0;
    memset(ops, 0, sizeof ops);
    if (!s->got_initial_md) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
        s->got_initial_md = 1;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &recv;
    if (grpc_call_start_batch(s->call, ops, n, &s->tag_recv, NULL) != GRPC_CALL_OK) {
        grpc_call_cancel(s->call, NULL);
        stream_finish(s);
        return 0;
    }
    grpc_event ev =
        grpc_completion_queue_pluck(s->cq, &s->tag_recv, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type != GRPC_OP_COMPLETE || !ev.success || recv == NULL) {
        if (recv != NULL)
            grpc_byte_buffer_destroy(recv);
        stream_finish(s);
        return 0;
    }
    twc_status dec = unpack_reply(s->method->output, recv, msg);
    grpc_byte_buffer_destroy(recv);
    if (dec.code != TWC_OK) {
        grpc_call_cancel(s->call, NULL);
        stream_finish(s);
        twc_status_clear(&s->status);
        s->status = dec; /* our decode failure explains the end better than CANCELLED */
        return 0;
    }
    return 1;
}

const twc_status *twc_stream_status(const twc_stream *s)
{
    return &s->status;
}

void twc_stream_cancel(twc_stream *s)
{
    if (s != NULL && s->call != NULL)
        grpc_call_cancel(s->call, NULL);
}

void twc_stream_close(twc_stream *s)
{
    if (s == NULL)
        return;
    if (s->call != NULL) {
        if (s->status_pending)
            grpc_call_cancel(s->call, NULL);
        stream_finish(s);
        grpc_call_unref(s->call);
    }
    if (s->cq != NULL)
        cq_destroy(s->cq);
    grpc_slice_unref(s->details);
    grpc_metadata_array_destroy(&s->initial_md);
    grpc_metadata_array_destroy(&s->trailing_md);
    twc_status_clear(&s->status);
    free(s);
}
