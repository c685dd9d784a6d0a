/*
 * tw_status: the one error type of the server. Codes are gRPC's (only ever appended), so a
 * handler's result maps to the wire without translation. The message is either a string
 * literal or lives in the call's arena; it is never freed by the receiver and never holds a
 * secret, a token or another user's data.
 *
 * An error may carry what the transport sends as google.rpc.Status details
 * (core/errdetail.h): an ErrorInfo reason, the field violations of a BadRequest and a
 * RetryInfo delay. All of it is borrowed like the message: literals or call-arena memory.
 */
#ifndef TW_STATUS_H
#define TW_STATUS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    TW_OK = 0,
    TW_CANCELLED = 1,
    TW_UNKNOWN = 2,
    TW_INVALID_ARGUMENT = 3,
    TW_DEADLINE_EXCEEDED = 4,
    TW_NOT_FOUND = 5,
    TW_ALREADY_EXISTS = 6,
    TW_PERMISSION_DENIED = 7,
    TW_RESOURCE_EXHAUSTED = 8,
    TW_FAILED_PRECONDITION = 9,
    TW_ABORTED = 10,
    TW_OUT_OF_RANGE = 11,
    TW_UNIMPLEMENTED = 12,
    TW_INTERNAL = 13,
    TW_UNAVAILABLE = 14,
    TW_DATA_LOSS = 15,
    TW_UNAUTHENTICATED = 16,
} tw_code;

/* One bad field of a request: field is the dotted proto path ("order.note"), description
 * says what a valid value is. Both borrowed (literals or arena memory). */
typedef struct {
    const char *field;
    const char *description;
} tw_field_violation;

typedef struct {
    tw_code code;
    const char *message; /* borrowed: a literal or arena memory; "" for OK */
    const char *reason;  /* ErrorInfo reason (errdetail.h's list); NULL: derived from code */
    const tw_field_violation *violations; /* BadRequest; nviolations entries, or NULL */
    size_t nviolations;
    int64_t retry_ms; /* > 0: RetryInfo.retry_delay */
} tw_status;

static inline tw_status tw_ok(void)
{
    tw_status s = {.code = TW_OK, .message = ""};
    return s;
}

/* tw_err: an error with a literal (or otherwise longer-lived) message. */
static inline tw_status tw_err(tw_code code, const char *message)
{
    tw_status s = {.code = code, .message = message};
    return s;
}

/* tw_err_reason: the same with an explicit ErrorInfo reason (a literal from errdetail.h). */
static inline tw_status tw_err_reason(tw_code code, const char *reason, const char *message)
{
    tw_status s = {.code = code, .message = message, .reason = reason};
    return s;
}

/*
 * Collects every bad field of a request, so one INVALID_ARGUMENT names them all. Storage comes
 * from arena a and dies with it. A violation that cannot be stored (out of memory) still makes
 * the result an error. Usage: tw_violations_init; tw_violation_add for each bad field;
 * tw_violations_status (TW_OK when nothing was added).
 */
typedef struct tw_arena tw_arena;
typedef struct {
    tw_arena *arena;
    tw_field_violation *items;
    size_t n, cap;
    int lost; /* a violation could not be stored */
} tw_violations;

void tw_violations_init(tw_violations *v, tw_arena *a);
/* field and description are borrowed: literals or memory of v's arena. */
void tw_violation_add(tw_violations *v, const char *field, const char *description);
/* TW_OK, or INVALID_ARGUMENT with reason INVALID_FIELD, the violations, and the message
 * "field: description" of the first (with "(and N more ...)" when there are several). */
tw_status tw_violations_status(const tw_violations *v);

/* Canonical upper-case name of a code, e.g. "NOT_FOUND"; never NULL. */
const char *tw_code_name(tw_code code);

#endif
