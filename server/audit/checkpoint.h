/*
 * Signed checkpoints of the audit chains (issue 20 part 3), as Certificate Transparency's
 * signed tree heads: the server signs a chain's head (chain, sequence, hash, time) with a
 * versioned Ed25519 key, so whoever keeps the checkpoint (the log store, a client) can later
 * prove the chain was neither truncated nor rewritten up to that sequence, even by someone who
 * can write the database and recompute the unkeyed hashes.
 *
 * Signed bytes (the contract is proto/tradewink/v1/audit.proto, AuditCheckpoint.signature):
 * the fields "tradewink-audit-checkpoint-v1", user_id, sequence, hash, time_us, key_version,
 * each as an 8-byte big-endian length followed by its bytes; integers as decimal text, the
 * hash as its 32 raw bytes. Ed25519 is RFC 8032 pure (no pre-hash, no context).
 *
 * Keys: TW_AUDIT_SIGNING_KEYS = "vN:BASE64,vM:BASE64", newest first; each BASE64 is a 32-byte
 * Ed25519 private key (seed). The first signs; all verify, so checkpoints signed before a key
 * rotation keep verifying while the old version stays listed.
 *
 * Threading: a signer is immutable after audit_signer_parse; any thread may sign and verify.
 */
#ifndef SRV_AUDIT_CHECKPOINT_H
#define SRV_AUDIT_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

#define AUDIT_SIG_LEN STORE_SIG_LEN
#define AUDIT_PUB_LEN 32
#define AUDIT_MAX_KEYS 16
/* Longest canonical message: 6 length prefixes, the domain, the hash, five decimal fields. */
#define AUDIT_CP_MSG_MAX (6 * 8 + 29 + STORE_HASH_LEN + 5 * 20)

typedef struct audit_signer audit_signer;

/* The signed fields and the signature (user_id, seq, hash, time_us, key_version, sig). */
typedef store_audit_checkpoint audit_checkpoint;

typedef enum {
    AUDIT_CP_SIG_OK = 0,
    AUDIT_CP_SIG_BAD,         /* does not verify under the key of that version */
    AUDIT_CP_SIG_UNKNOWN_KEY, /* no key of that version */
} audit_cp_sig;

/* Parse TW_AUDIT_SIGNING_KEYS. text NULL or "" = no keys: *out = NULL, returns 0. Returns -1
 * with a reason in why (never the key text) on malformed input. *out is freed with
 * audit_signer_destroy. */
int audit_signer_parse(const char *text, audit_signer **out, char *why, size_t why_cap);
void audit_signer_destroy(audit_signer *s); /* NULL is a no-op */

/* Sets cp->key_version to the newest key's and cp->sig over the other fields. -1 on failure
 * (s NULL, or OpenSSL refused). */
int audit_checkpoint_sign(const audit_signer *s, audit_checkpoint *cp);

/* Whether cp->sig is the signature of the key of cp->key_version over cp's fields. */
audit_cp_sig audit_checkpoint_check(const audit_signer *s, const audit_checkpoint *cp);

/* The canonical signed bytes of cp into buf (AUDIT_CP_MSG_MAX bytes); returns their length. */
size_t audit_checkpoint_message(const audit_checkpoint *cp, unsigned char buf[AUDIT_CP_MSG_MAX]);

/* Writes one line per key, "vN:BASE64" of the 32-byte raw public key, newest first. */
int audit_signer_print_public(const audit_signer *s, FILE *out);

/* A chain walk (audit_walk) from its first event: hashes, links and sequences checked, and
 * what a checkpoint needs to be compared with. */
typedef struct {
    int64_t checked;      /* events read, up to and including the first broken one */
    int64_t first_broken; /* 0 when intact */
    int64_t head_seq;     /* last sequence present (0 = empty chain) */
    unsigned char head_hash[STORE_HASH_LEN];
    bool at_found; /* event `at` exists; its stored hash is in at_hash */
    unsigned char at_hash[STORE_HASH_LEN];
} audit_walk_result;

/* Walk the chain of user_id from sequence 1; at (0 = none) names an event whose hash to
 * report. Reads in pages on conn c (no transaction needed). */
store_rc audit_walk(store_conn *c, int64_t user_id, int64_t at, audit_walk_result *out);

typedef enum {
    AUDIT_CP_SIGNED = 0, /* *out holds the new checkpoint, stored and logged */
    AUDIT_CP_NO_KEY,     /* no signing key configured (or OpenSSL refused to sign) */
    AUDIT_CP_EMPTY,      /* the chain has no events: nothing to sign */
    AUDIT_CP_BROKEN,     /* the chain does not verify: its head is not signed */
} audit_cp_state;

/* Verify the chain of user_id and, when it is intact and not empty, sign its head at now_us,
 * store the checkpoint and write it to the log (event "audit_checkpoint"). The walk starts at
 * the chain's newest stored checkpoint whose signature verifies (its event must still hold
 * the signed hash), so each run reads only what is new; with none, or one signed by a key no
 * longer configured, it starts at event 1. A chain that no longer extends that checkpoint,
 * or whose newest stored checkpoint has a bad signature, is BROKEN and not signed. *state
 * says which; a store error is returned as such. */
store_rc audit_checkpoint_create(store_conn *c, const audit_signer *s, int64_t user_id,
                                 int64_t now_us, audit_checkpoint *out, audit_cp_state *state);

#endif
