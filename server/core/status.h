/*
 * tw_status: the one error type of the server. Codes are gRPC's (only ever appended), so a
 * handler's result maps to the wire without translation. The message is either a string
 * literal or lives in the call's arena; it is never freed by the receiver and never holds a
 * secret, a token or another user's data.
 */
#ifndef TW_STATUS_H
#define TW_STATUS_H

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

typedef struct {
    tw_code code;
    const char *message; /* borrowed: a literal or arena memory; "" for OK */
} tw_status;

static inline tw_status tw_ok(void)
{
    tw_status s = {TW_OK, ""};
    return s;
}

/* tw_err: an error with a literal (or otherwise longer-lived) message. */
static inline tw_status tw_err(tw_code code, const char *message)
{
    tw_status s = {code, message};
    return s;
}

/* Canonical upper-case name of a code, e.g. "NOT_FOUND"; never NULL. */
const char *tw_code_name(tw_code code);

#endif
