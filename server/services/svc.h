/*
 * Helpers shared by the service handlers: the caller's store connection (released with the
 * call), the caller's user row, store-result mapping, and parsing of wire decimals.
 */
#ifndef SRV_SVC_H
#define SRV_SVC_H

#include <stdint.h>

#include "app.h"
#include "core/call.h"
#include "store/store.h"

/* A pooled connection for this call; released automatically when the call ends. */
tw_status svc_conn(tw_call *c, store_conn **out);

/* Map a store result to the RPC status every service uses (UNAVAILABLE when the database is
 * down, NOT_FOUND for another user's object, ...). what names the object for NOT_FOUND. */
tw_status svc_store_status(tw_call *c, store_rc rc, const char *what);

/* The caller's user id (resolved at authentication). */
int64_t svc_user_id(tw_call *c);

/* Wall-clock now in microseconds (the sim clock when the sim broker is on). */
int64_t svc_now_us(tw_call *c);

/* Ask k's broker to accept the credential (its account endpoint; for the sim, that the stored
 * token decrypts). *ok and *message set. The key is decrypted only by trading. */
tw_status svc_broker_test(tw_call *c, const store_broker_key *k, protobuf_c_boolean *ok,
                          char **message);

/* Printable characters in s, which decode already guarantees is UTF-8 without NUL: the number
 * of code points, or -1 when s holds a control character (C0, DEL or C1 U+0080-U+009F). For
 * the proto fields limited in characters, not bytes (key labels, order notes). */
long svc_printable_chars(const char *s);

#endif

/* details (a JSON object, or NULL for {}) with the call's "trace_id" and "span_id" first,
 * in the call's arena, so an audit event can be joined to the access log and the caller's
 * trace; details unchanged when it is not an object or the result would pass
 * STORE_DETAILS_MAX. svc_audit applies it to every event. */
const char *svc_traced_details(tw_call *c, const char *details);

/* The call's W3C traceparent for the requests it makes to a broker (this call's span as their
 * parent), in the call's arena; NULL when out of memory (the broker call then carries none). */
const char *svc_traceparent(tw_call *c);

/* Append an audit event for the caller's own chain (actor = the caller), inside the open
 * transaction on conn. details: a JSON object text or NULL. Returns the RPC status to fail
 * with (UNAVAILABLE) when the event cannot be written: the caller must then roll back. */
tw_status svc_audit(tw_call *c, store_conn *conn, int64_t chain_user_id, const char *action,
                    const char *object_id, const char *outcome, const char *details);

/* Append one event to the caller's own chain in a transaction of its own, for a refusal that
 * changes nothing else (AUTH_DENIED when a user names another user's object). Best effort: a
 * failure is logged by svc_audit and the refusal stands. details: JSON object text or NULL. */
void svc_audit_refusal(tw_call *c, store_conn *conn, const char *action, const char *object_id,
                       const char *outcome, const char *details);

/* Strict decimal id ("42"): 0 when s is not a positive integer. */
int64_t svc_parse_id(const char *s);
/* Decimal id as arena text. */
char *svc_id_str(tw_call *c, int64_t id);
