/*
 * The error details of a non-OK tw_status as the `grpc-status-details-bin` trailer: a
 * google.rpc.Status {code, message, details[]} whose details are, in this order,
 *   google.rpc.ErrorInfo  {reason, domain = TW_ERROR_DOMAIN, metadata}  (always, AIP-193)
 *   google.rpc.BadRequest {field_violations[] {field, description}}     (when violations, or
 *                         one from a message "field: description" of INVALID_ARGUMENT)
 *   google.rpc.RetryInfo  {retry_delay}                                 (when retry_ms > 0)
 * Hand-encoded: Debian ships none of the google/rpc protos, and these are five tiny messages.
 *
 * Reasons are stable UPPER_SNAKE strings, only ever appended (README "Errors"):
 *   INVALID_FIELD     INVALID_ARGUMENT naming fields (BadRequest lists every one)
 *   INVALID_REQUEST   INVALID_ARGUMENT about the message as a whole (missing, undecodable)
 *   UNAUTHENTICATED   missing, invalid or expired credentials
 *   PERMISSION_DENIED the principal's role does not allow the method
 *   RATE_LIMITED      a rate limit refused the call; RetryInfo and metadata retry_after_ms
 *   TRADING_HALTED    Resume refused: a global halt, an admin halt or the breaker holds
 *   otherwise         the code's name: NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION,
 *                     RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, ...
 */
#ifndef TW_ERRDETAIL_H
#define TW_ERRDETAIL_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "status.h"

#define TW_ERROR_DOMAIN "tradewink.v1"

/* The reason st carries on the wire: st->reason, or the default for its code. Never NULL. */
const char *tw_status_reason(const tw_status *st);

/* Encode st (non-OK) into arena memory: *out, *len. 0, or -1 when out of memory. */
int tw_status_details_encode(tw_arena *a, const tw_status *st, uint8_t **out, size_t *len);

#endif
