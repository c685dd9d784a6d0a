/*
 * What a handler sees of a call: its arena, its principal, its peer and id, and a way to add
 * trailing metadata. No grpc type appears here: handlers stay independent of the transport.
 * A tw_call is owned by the transport and valid only during the handler invocation.
 */
#ifndef TW_CALL_H
#define TW_CALL_H

#include "core/trace.h"
#include <stdbool.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "status.h"

typedef struct tw_call tw_call;

typedef enum { TW_ROLE_PUBLIC = 0, TW_ROLE_USER = 1, TW_ROLE_ADMIN = 2 } tw_role;

typedef struct {
    const char *subject; /* token `sub`, arena memory; NULL for public calls */
    tw_role role;        /* TW_ROLE_PUBLIC when no token was presented */
    int64_t expires_at;  /* token exp, unix seconds; 0 when none */
    int64_t issued_at;   /* token iat, unix seconds; 0 when none */
    int64_t user_id;     /* store user id once resolved; 0 before */
} tw_principal;

tw_arena *tw_call_arena(tw_call *c);
tw_principal *tw_call_principal(tw_call *c);
/* "ipv4:127.0.0.1:5555"-style peer; never NULL. */
const char *tw_call_peer(const tw_call *c);
/* "/tradewink.v1.Orders/SubmitOrder" */
const char *tw_call_method(const tw_call *c);
/* Process-unique request id, also in the access log line. */
uint64_t tw_call_id(const tw_call *c);
/* The call's W3C trace context (core/trace.h): the caller's trace continued from its
 * traceparent, or a new one; trace_id and span_id are on the access-log line. Pass
 * tw_trace_format(tw_call_trace(c)) as traceparent on outgoing calls made for this one. */
const tw_trace *tw_call_trace(const tw_call *c);
/* Milliseconds left before the deadline; INT64_MAX when the caller set none. */
int64_t tw_call_remaining_ms(const tw_call *c);
/* Whether the call runs on a completion-queue thread (a route's fast handler, and the
 * interceptors before it), where nothing may block: no store, broker, Redis or JWKS call. */
bool tw_call_inline(const tw_call *c);
/* From inline code: stop here and run the call again from this step on an executor, where it
 * may block. The caller returns at once (any status; it is not sent). No-op elsewhere. */
void tw_call_defer(tw_call *c);
/* The application context given to the transport at start. */
void *tw_call_app(const tw_call *c);

/* A call context for background work (feeds, reconciler) that reuses handler helpers: arena
 * a, application app, no principal, no peer. Lives in a; never passed to the transport. */
tw_call *tw_call_detached(tw_arena *a, void *app);

/* An error whose message is formatted into the call's arena. */
tw_status tw_call_errorf(tw_call *c, tw_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Add a trailing metadata entry (lowercase key, ASCII value); copied. Up to 4 per call;
 * returns -1 when full. */
int tw_call_add_trailer(tw_call *c, const char *key, const char *value);
/* The same for a binary ("-bin") key: value is len raw bytes (grpc base64-encodes it). */
int tw_call_add_trailer_bin(tw_call *c, const char *key, const void *value, size_t len);

/*
 * Server-streaming responses. A stream outlives its opening handler: whoever keeps sending
 * takes a reference (tw_stream_ref) and drops it after finishing or when the close callback
 * runs. All functions are thread-safe.
 */
typedef struct tw_stream tw_stream;

/* Queue one message (packed at once; msg may be freed on return). 0, or -1 when the stream
 * is closed, finishing, or its queue is full (a slow reader is then cancelled). */
int tw_stream_send(tw_stream *s, const ProtobufCMessage *msg);
/* Send the final status after queued messages; later sends fail. Idempotent. */
void tw_stream_finish(tw_stream *s, tw_status st);
void tw_stream_ref(tw_stream *s);
void tw_stream_unref(tw_stream *s);
/* fn(s, arg) runs once when the stream ends for any reason (client gone, finished,
 * server shutdown), on a transport thread; set it inside the opening handler. */
void tw_stream_on_close(tw_stream *s, void (*fn)(tw_stream *s, void *arg), void *arg);
/* The principal the stream was opened with (copied; valid for the stream's lifetime). */
const tw_principal *tw_stream_principal(const tw_stream *s);

#endif
