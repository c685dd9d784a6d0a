/*
 * The audit writer every service uses. Events are appended inside the caller's transaction
 * (the one that makes the change), so a change without its event cannot commit: if the append
 * fails the caller rolls back and answers UNAVAILABLE (fail-closed).
 *
 * Chains: one per user (user_id > 0) and one for the system (user_id 0). Each event's
 * hash = SHA-256(prev_hash || canonical(event)), where canonical() is the concatenation of
 * the fields below, each as an 8-byte big-endian length followed by its bytes (integers as
 * decimal text): user_id, seq, time_us, actor, actor_id, action, object_id, outcome, details.
 * The first event of a chain has prev_hash = 32 zero bytes.
 */
#ifndef SRV_AUDIT_H
#define SRV_AUDIT_H

#include <stdint.h>

#include "store/store.h"

typedef struct {
    int64_t user_id;      /* chain owner; 0 = system chain */
    const char *actor;    /* "user", "admin", "system", "broker" */
    const char *actor_id; /* subject or component; "" allowed */
    const char *action;   /* AUDIT action name, e.g. "ORDER_ENTRY" */
    const char *object_id;
    const char *outcome; /* "SUCCESS", "DENIED", "FAILURE" */
    const char *details; /* JSON object text; NULL = "{}"; sanitized before hashing */
} audit_entry;

/* Append e at the end of its chain on conn c, which must be inside a transaction holding the
 * chain's lock (store_tx_begin_user / store_tx_begin_global). out (may be NULL) receives the
 * stored event. */
store_rc audit_append(store_conn *c, const audit_entry *e, int64_t now_us, store_audit_event *out);

/* Hash of ev over its fields and ev->prev_hash (see the canonical form above). */
void audit_hash(const store_audit_event *ev, unsigned char out[STORE_HASH_LEN]);

/* Recompute the chain of user_id (0 = system) from its first event. *checked = events read;
 * *first_broken = sequence number of the first event whose prev_hash, hash or sequence does
 * not follow (0 when the chain is intact). */
store_rc audit_verify_chain(store_conn *c, int64_t user_id, int64_t *checked,
                            int64_t *first_broken);

#endif
