/*
 * The route table: every gRPC method tradewinkd can answer, with its policy. Rows are written
 * by hand in routes_table.c (one place to review every method's role and rate class); at start
 * routes_build() checks them against protoc-c's service descriptors: every method of every
 * served service needs exactly one row, every row must name a real method, and each handler's
 * C request/response types must be the descriptor's. Any mismatch stops the start.
 */
#ifndef SRV_ROUTES_H
#define SRV_ROUTES_H

#include <stddef.h>
#include <stdio.h>
#include <protobuf-c/protobuf-c.h>

#include "core/call.h"

typedef enum { TW_KIND_UNARY = 0, TW_KIND_SERVER_STREAM, TW_KIND_BIDI_STREAM } tw_kind;

/* Rate-limit classes (the limiter maps each to its bucket and key). */
typedef enum {
    TW_RL_NONE = 0,
    TW_RL_PUBLIC,     /* per peer: health, reflection */
    TW_RL_API,        /* per user: reads and ordinary writes */
    TW_RL_ORDERS,     /* per user: order entry */
    TW_RL_KEY_SUBMIT, /* per user: broker key submission (costly derivation) */
} tw_rate_class;

typedef tw_status (*tw_unary_thunk)(tw_call *, const ProtobufCMessage *, ProtobufCMessage *);
typedef tw_status (*tw_stream_thunk)(tw_call *, const ProtobufCMessage *, tw_stream *);

typedef struct {
    const char *service; /* full name, "tradewink.v1.Orders" */
    const char *method;  /* "SubmitOrder" */
    tw_kind kind;
    tw_role role;
    tw_rate_class rate;
    tw_unary_thunk unary;   /* UNARY, and BIDI_STREAM (one reply per request message) */
    tw_stream_thunk stream; /* SERVER_STREAM */
    const char *req_c_name, *resp_c_name; /* C type names the handler was written for */
    /* UNARY, optional: tried first on the completion-queue thread (never blocks: anything that
     * would, it hands to `unary` on an executor with tw_call_defer). Same types as `unary`. */
    tw_unary_thunk fast;
    const char *fast_req_c_name, *fast_resp_c_name;
} tw_route_def;

typedef struct {
    const tw_route_def *def;
    char *path; /* "/service/method" */
    const ProtobufCMessageDescriptor *in, *out;
} tw_route;

typedef struct {
    tw_route *routes;
    size_t count;
} tw_routes;

/*
 * Typed handler glue. TW_UNARY_THUNK(fn, Req, Resp) defines fn__thunk calling
 * `tw_status fn(tw_call *, const Req *, Resp *)`; TW_STREAM_THUNK(fn, Req, Resp) calls
 * `tw_status fn(tw_call *, const Req *, tw_stream *)` (Resp is what it sends). Use
 * TW_HANDLER(fn) / TW_STREAMER(fn) in a table row, and TW_FAST(fn) beside TW_HANDLER for a
 * unary route's inline attempt (thunk made with TW_UNARY_THUNK too). The casts are safe because
 * routes_build proves the C type names match the descriptors the transport decodes with.
 */
#define TW_UNARY_THUNK(fn, Req, Resp)                                                              \
    static tw_status fn##__thunk(tw_call *c, const ProtobufCMessage *in, ProtobufCMessage *out)    \
    {                                                                                              \
        return fn(c, (const Req *)in, (Resp *)out);                                                \
    }                                                                                              \
    static const char fn##__req[] = #Req, fn##__resp[] = #Resp
#define TW_STREAM_THUNK(fn, Req, Resp)                                                             \
    static tw_status fn##__thunk(tw_call *c, const ProtobufCMessage *in, tw_stream *s)             \
    {                                                                                              \
        return fn(c, (const Req *)in, s);                                                          \
    }                                                                                              \
    static const char fn##__req[] = #Req, fn##__resp[] = #Resp
#define TW_HANDLER(fn) .unary = fn##__thunk, .req_c_name = fn##__req, .resp_c_name = fn##__resp
#define TW_FAST(fn)                                                                                \
    .fast = fn##__thunk, .fast_req_c_name = fn##__req, .fast_resp_c_name = fn##__resp
#define TW_NO_HANDLER .unary = NULL
#define TW_STREAMER(fn) .stream = fn##__thunk, .req_c_name = fn##__req, .resp_c_name = fn##__resp

/* Build the table; writes one line per problem to err and returns their count (0 = ok, *out
 * set; free with routes_free). Rows with no handler are allowed: they answer UNIMPLEMENTED. */
int routes_build(const ProtobufCServiceDescriptor *const *services, size_t nservices,
                 const tw_route_def *defs, size_t ndefs, tw_routes *out, FILE *err);
void routes_free(tw_routes *r);
/* Route by "/service/method" path, or NULL. */
const tw_route *routes_find(const tw_routes *r, const char *path);

const char *tw_role_name(tw_role role);

#endif
