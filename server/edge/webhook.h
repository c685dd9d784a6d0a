/*
 * edge_wh: Standard Webhooks (symmetric v1, HMAC-SHA256) verification with replay
 * protection, fail-closed per source.
 *
 * A delivery carries webhook-id, webhook-timestamp (unix seconds) and webhook-signature
 * (space-separated "version,base64" entries). It is accepted when the source has at least one
 * secret, the headers are well formed, |now - timestamp| <= 300 s, and some "v1" entry equals
 * base64(HMAC-SHA256(key, id "." timestamp "." body)) for some secret key of the source
 * (compared in constant time); other versions are ignored. Verification runs on the raw body
 * bytes before anything parses them. An accepted id is remembered per source until its
 * timestamp can no longer pass the window, so a replay is reported as a duplicate.
 */
#ifndef EDGE_WEBHOOK_H
#define EDGE_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#define EDGE_WH_TOLERANCE_S 300
#define EDGE_WH_ID_MAX 256
#define EDGE_WH_SOURCE_MAX 32

typedef enum {
    EDGE_WH_OK = 0,        /* verified, id reserved: dispatch, then commit or release */
    EDGE_WH_DUPLICATE,     /* verified replay of an id already accepted: answer 200, skip */
    EDGE_WH_IN_PROGRESS,   /* verified, same id is being handled right now: 409, sender retries */
    EDGE_WH_NO_SECRET,     /* source has no (or only empty) secrets: fail-closed, 401 */
    EDGE_WH_MALFORMED,     /* a header is missing/unparseable (not the signature): 400 */
    EDGE_WH_NO_SIGNATURE,  /* webhook-signature header missing: 401 */
    EDGE_WH_BAD_SIGNATURE, /* no v1 entry matches: 401 */
    EDGE_WH_STALE,         /* timestamp more than 300 s away from now: 401 */
    EDGE_WH_TOO_LARGE,     /* body over the cap: 413 */
    EDGE_WH_BUSY,          /* replay cache full of live ids: 503, sender retries */
    EDGE_WH_RESULT_COUNT
} edge_wh_result;

/* Short stable name ("ok", "duplicate", "bad_signature", ...), the metrics label value. */
const char *edge_wh_result_name(edge_wh_result r);
/* The HTTP status the ops port answers for r (200, 401, 400, 413, 409, 503). */
int edge_wh_http_status(edge_wh_result r);

/* Unix seconds; injectable for tests. */
typedef int64_t (*edge_wh_clock_fn)(void *ctx);

typedef struct {
    size_t max_body;        /* default 256 KiB */
    size_t replay_capacity; /* remembered ids across sources; default 100000 */
    edge_wh_clock_fn clock; /* NULL = tw_wall_seconds() */
    void *clock_ctx;
} edge_wh_config;

typedef struct edge_wh edge_wh;

/* Creates a verifier with no sources (every source refused). cfg may be NULL (defaults).
 * Returns NULL on allocation failure. Destroy with edge_wh_destroy. */
edge_wh *edge_wh_create(const edge_wh_config *cfg);
/* Wipes keys, frees. NULL is a no-op. */
void edge_wh_destroy(edge_wh *v);

/* Adds one secret for source ("whsec_" + base64 of 16..256 bytes; the prefix is optional).
 * Registers the source when new. An empty secret ("" or "whsec_") registers the source with
 * no key (it then refuses every request) and returns -1. Returns 0, or -1 with a reason in
 * err that never contains the secret. Not thread-safe with verify: configure first. */
int edge_wh_add_secret(edge_wh *v, const char *source, const char *secret, char *err,
                       size_t errcap);

/* Parses TW_WEBHOOK_SECRETS ("source:whsec_A[ whsec_B],source2:whsec_C") into v. Every bad
 * entry is reported on its own line in err ("entry 2 (source 'x'): ..."), never echoing a
 * secret; good entries are still loaded and sources of bad entries stay refused
 * (fail-closed). Returns the number of bad entries (0 = all good). NULL or "" = no sources. */
int edge_wh_load_env(edge_wh *v, const char *spec, char *err, size_t errcap);

/* 1 if name is a well-formed source name ([a-z0-9_-]{1,32}). */
int edge_wh_valid_source(const char *name);
/* 1 if source has at least one usable secret. */
int edge_wh_source_enabled(edge_wh *v, const char *source);

/* Raw header values as received (NULL when absent; not NUL-required: lengths given). */
typedef struct {
    const char *id;
    size_t id_len;
    const char *timestamp;
    size_t timestamp_len;
    const char *signature;
    size_t signature_len;
} edge_wh_headers;

/* Verifies one delivery. On EDGE_WH_OK the id is reserved: the caller must then call
 * edge_wh_commit (handled, or refused for good: replays become duplicates) or edge_wh_release
 * (temporary failure: the sender's retry is accepted). Thread-safe. */
edge_wh_result edge_wh_verify(edge_wh *v, const char *source, const edge_wh_headers *h,
                              const uint8_t *body, size_t body_len);
void edge_wh_commit(edge_wh *v, const char *source, const char *id, size_t id_len);
void edge_wh_release(edge_wh *v, const char *source, const char *id, size_t id_len);

/* Maximum body size the verifier accepts (the HTTP layer enforces it while reading). */
size_t edge_wh_max_body(const edge_wh *v);

#endif
