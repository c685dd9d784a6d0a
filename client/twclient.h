/*
 * twclient.h - libtwclient: a C client for tradewinkd over the gRPC core C API.
 *
 * This is the hand-written core. The typed per-RPC functions (twc_orders_submit_order, ...)
 * are generated from the proto descriptors into twc_services.h, which includes this header;
 * include "twc_services.h" to get both.
 *
 * Connections: plaintext only to a loopback address (127.0.0.0/8, ::1, localhost, unix:);
 * anything else needs TLS (server verified against a CA file or the system roots), optionally
 * with a client certificate (mTLS).
 * Credentials: a bearer token per client (twc_client_opts.token / twc_client_set_token) or
 * per call (twc_call_opts.token), sent as `authorization: Bearer <token>`. Tokens are copied,
 * wiped when replaced or destroyed, and never appear in a status message.
 * Threads: a twc_client may be used by several threads at once; a twc_stream by one at a
 * time (twc_stream_cancel excepted).
 * Errors: every call returns a twc_status whose code is a gRPC status code (0 = OK); failures
 * detected on the client side use INVALID_ARGUMENT (bad arguments), INTERNAL (a reply that
 * does not decode) or UNAVAILABLE / DEADLINE_EXCEEDED as produced by gRPC itself.
 */
#ifndef TWCLIENT_H
#define TWCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#ifdef __cplusplus
extern "C" {
#endif

/* gRPC status codes (numerically identical to grpc_status_code). Exit codes of twctl. */
enum {
    TWC_OK = 0,
    TWC_CANCELLED = 1,
    TWC_UNKNOWN = 2,
    TWC_INVALID_ARGUMENT = 3,
    TWC_DEADLINE_EXCEEDED = 4,
    TWC_NOT_FOUND = 5,
    TWC_ALREADY_EXISTS = 6,
    TWC_PERMISSION_DENIED = 7,
    TWC_RESOURCE_EXHAUSTED = 8,
    TWC_FAILED_PRECONDITION = 9,
    TWC_ABORTED = 10,
    TWC_OUT_OF_RANGE = 11,
    TWC_UNIMPLEMENTED = 12,
    TWC_INTERNAL = 13,
    TWC_UNAVAILABLE = 14,
    TWC_DATA_LOSS = 15,
    TWC_UNAUTHENTICATED = 16
};

#define TWC_DEFAULT_TARGET "127.0.0.1:50051"
#define TWC_DEFAULT_TIMEOUT_MS 10000

/* Result of every call. message is malloc'd (NULL when the server sent none) and owned by
 * whoever holds the struct: release with twc_status_clear(). retry_after_ms is the server's
 * `retry-after-ms` trailer (RESOURCE_EXHAUSTED), -1 when absent. */
typedef struct twc_status {
    int code;
    char *message;
    int64_t retry_after_ms;
} twc_status;

/* Frees st->message and resets *st to OK. NULL is a no-op. */
void twc_status_clear(twc_status *st);

/* "OK", "UNAUTHENTICATED", ... for a gRPC code; "UNKNOWN_CODE" otherwise. Static string. */
const char *twc_code_name(int code);

/* The code for a name as printed by twc_code_name ("NOT_FOUND"), or -1. */
int twc_code_from_name(const char *name);

typedef struct twc_client twc_client;
typedef struct twc_stream twc_stream;

/* Everything is borrowed during twc_client_create only (copied inside). Zero/NULL = default. */
typedef struct twc_client_opts {
    const char *target;          /* "host:port", "[::1]:port" or "unix:/path"; default
                                    TWC_DEFAULT_TARGET */
    const char *token;           /* bearer token sent on every call; NULL = none */
    int tls;                     /* 1 = TLS even without a CA file (system roots) */
    const char *tls_ca_file;     /* PEM roots to verify the server; implies TLS */
    const char *tls_cert_file;   /* PEM client certificate for mTLS; needs tls_key_file */
    const char *tls_key_file;    /* PEM private key of tls_cert_file */
    const char *tls_server_name; /* name to verify instead of the target's host; NULL = host */
    int64_t timeout_ms;          /* default unary deadline; 0 = TWC_DEFAULT_TIMEOUT_MS,
                                    < 0 = none */
    const char *user_agent;      /* prepended to gRPC's user agent; NULL = "libtwclient" */
} twc_client_opts;

/* Creates a client (the connection is made lazily by the first call). Refuses plaintext to a
 * non-loopback target and unreadable TLS files with INVALID_ARGUMENT. On OK the caller owns
 * *out (twc_client_destroy); otherwise *out is NULL. opts NULL = all defaults. */
twc_status twc_client_create(const twc_client_opts *opts, twc_client **out);

/* Closes the channel and wipes the token. Outstanding streams must be closed first.
 * NULL is a no-op. */
void twc_client_destroy(twc_client *c);

/* Replaces the client's token (copied; NULL = none). Returns 0, or -1 when out of memory. */
int twc_client_set_token(twc_client *c, const char *token);

/* 1 when the client talks TLS, 0 for plaintext. */
int twc_client_is_tls(const twc_client *c);

/* One extra metadata entry for a call. Keys lower case; both borrowed for the call. */
typedef struct twc_metadata {
    const char *key;
    const char *value;
} twc_metadata;

/* Per-call options; NULL = all defaults. Borrowed for the call only. */
typedef struct twc_call_opts {
    const char *token;            /* overrides the client's token; "" = send no token */
    int64_t timeout_ms;           /* 0 = client default (unary) / none (streams); < 0 = none */
    const twc_metadata *metadata; /* extra request metadata; may be NULL */
    size_t metadata_count;
} twc_call_opts;

/* Generic description of one RPC; the generator emits one per method (twc_services.h). */
typedef struct twc_method {
    const char *path;    /* "/tradewink.v1.Orders/SubmitOrder" */
    const char *service; /* "tradewink.v1.Orders" */
    const char *name;    /* "SubmitOrder" */
    const char *c_name;  /* "twc_orders_submit_order" */
    const ProtobufCMessageDescriptor *input;
    const ProtobufCMessageDescriptor *output;
    int server_streaming;
    /* The typed stub behind a generic signature: invoke for unary, open for streams. */
    twc_status (*invoke)(twc_client *c, const ProtobufCMessage *req, ProtobufCMessage **out,
                         const twc_call_opts *opts);
    twc_status (*open)(twc_client *c, const ProtobufCMessage *req, twc_stream **out,
                       const twc_call_opts *opts);
} twc_method;

/* Unary call. req must be of m->input (NULL = default request). On OK *out is a decoded
 * m->output message owned by the caller (twc_message_free); on any error *out is NULL. */
twc_status twc_call_unary(twc_client *c, const twc_method *m, const ProtobufCMessage *req,
                          ProtobufCMessage **out, const twc_call_opts *opts);

/* Opens a server-streaming call. OK means the request was sent; the server's verdict
 * (including UNAUTHENTICATED) arrives through twc_stream_next/twc_stream_status. On OK the
 * caller owns *out (twc_stream_close). Streams have no deadline unless opts->timeout_ms > 0. */
twc_status twc_call_stream(twc_client *c, const twc_method *m, const ProtobufCMessage *req,
                           twc_stream **out, const twc_call_opts *opts);

/* Blocks for the next message. Returns 1 with *msg set (caller frees with twc_message_free),
 * or 0 when the stream ended (normally or not: see twc_stream_status) with *msg NULL. */
int twc_stream_next(twc_stream *s, ProtobufCMessage **msg);

/* Final status once twc_stream_next returned 0; code TWC_UNKNOWN with message "stream still
 * open" before that. Borrowed: valid until twc_stream_close. */
const twc_status *twc_stream_status(const twc_stream *s);

/* Asks the server to stop the stream; a blocked twc_stream_next then returns 0 with
 * CANCELLED. Safe from another thread. */
void twc_stream_cancel(twc_stream *s);

/* Cancels the call if still open and frees everything. NULL is a no-op. */
void twc_stream_close(twc_stream *s);

/* Frees a message returned by this library (any typed response: pass the pointer itself).
 * NULL is a no-op. */
void twc_message_free(void *msg);

/* ---- JSON and text rendering (descriptor driven, proto3 JSON mapping) ---- */

enum {
    TWC_JSON_PRETTY = 1u << 0,       /* two-space indentation, one field per line */
    TWC_JSON_OMIT_DEFAULTS = 1u << 1 /* leave out zero/empty scalars and unset messages */
};

/* Writes m as proto3 JSON: lowerCamelCase names, 64-bit integers as strings, enums by name,
 * bytes as base64, Timestamp as RFC 3339, Duration as "1.5s", wrappers as their value.
 * Returns 0, or -1 on a write error. */
int twc_json_write(FILE *f, const ProtobufCMessage *m, unsigned flags);

/* The same as a malloc'd NUL-terminated string (caller frees), or NULL when out of memory. */
char *twc_json_string(const ProtobufCMessage *m, unsigned flags);

/* Human text of one singular field of m: strings verbatim, enums without their common prefix
 * (ORDER_STATUS_FILLED -> FILLED), Timestamps RFC 3339, wrappers their value, unset messages
 * "" and other messages as compact JSON. malloc'd (caller frees), or NULL when out of memory. */
char *twc_field_text(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

/* Standard base64 with padding into a malloc'd string (caller frees); NULL on OOM. */
char *twc_base64(const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
