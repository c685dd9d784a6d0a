/*
 * edge_rl: per-class rate limiting with GCRA, in process or in a shared Redis.
 *
 * GCRA (generic cell rate algorithm): each (class, key) holds one number, the theoretical
 * arrival time TAT. With emission interval T = period / limit and capacity B = burst:
 *   tat   = max(TAT, now)
 *   allow when tat + T - B*T <= now, then TAT := tat + T
 *   else deny with retry_after = tat + T - B*T - now
 * A fresh key admits B requests at once, then one per T; a key idle for B*T is fresh again
 * (its TAT is in the past), so state expires after TAT - now and keys carry that TTL.
 *
 * Keys: the caller's key (user id, peer address) is hashed with SHA-256 and truncated to 128
 * bits, so neither memory nor Redis key names ever hold unbounded raw input.
 *
 * Backends: in-process (sharded hash table, bounded entries, injectable clock) always exists;
 * with a redis:// URL every check is one EVALSHA of a Lua script that reads Redis TIME, so all
 * replicas sharing the Redis enforce one combined limit. When Redis fails the check falls back
 * to the in-process table (one warn line per transition, fallback gauge/callback) and Redis is
 * retried at most once per retry interval.
 */
#ifndef EDGE_RATELIMIT_H
#define EDGE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    EDGE_RL_AUTH_FAIL = 0, /* per peer address: failed authentications, 10/min */
    EDGE_RL_KEY_SUBMIT,    /* per user: broker key submissions, 5/min */
    EDGE_RL_ORDERS,        /* per user: order calls, 10/s burst 20 */
    EDGE_RL_API,           /* per user: every other authenticated call, 50/s burst 100 */
    EDGE_RL_PUBLIC,        /* per peer address: unauthenticated calls, 100/s burst 200 */
    EDGE_RL_CLASS_COUNT
} edge_rl_class;

typedef enum { EDGE_RL_ALLOW = 0, EDGE_RL_DENY = 1 } edge_rl_result;

/* limit requests per period_ms, at most burst at once. limit == 0 disables the class (every
 * check allows). burst == 0 means burst = limit. */
typedef struct {
    uint32_t limit;
    uint32_t period_ms;
    uint32_t burst;
} edge_rl_rule;

/* Clock in microseconds (any epoch, monotonic). */
typedef int64_t (*edge_rl_clock_fn)(void *ctx);
/* Called on each backend transition: fallback = 1 when Redis became unusable and the
 * in-process table took over, 0 when Redis answers again. Called from a checking thread. */
typedef void (*edge_rl_fallback_fn)(void *ctx, int fallback);

typedef struct {
    edge_rl_rule rules[EDGE_RL_CLASS_COUNT];
    const char *redis_url;     /* NULL or "" = in-process only; copied by create */
    uint32_t redis_timeout_ms; /* connect and command timeout; default 200 */
    uint32_t redis_retry_ms;   /* at most one reconnect attempt per interval; default 1000 */
    uint32_t redis_pool;       /* connections (each used by one thread at a time); default 4 */
    const char *key_prefix;    /* Redis key prefix, at most 64 bytes; default "tw:rl:" */
    size_t max_entries;        /* in-process bound across all shards; default 100000 */
    edge_rl_clock_fn clock;    /* in-process clock; NULL = CLOCK_MONOTONIC */
    void *clock_ctx;
    edge_rl_fallback_fn on_fallback; /* optional */
    void *fallback_ctx;
} edge_rl_config;

typedef struct edge_rl edge_rl;

typedef struct {
    uint64_t redis_checks;   /* checks answered by Redis */
    uint64_t local_checks;   /* checks answered in process (no Redis, or fallback) */
    uint64_t redis_failures; /* failed Redis commands or connects */
    uint64_t transitions;    /* backend transitions (either direction) */
    uint64_t evictions;      /* live in-process entries evicted because the table was full */
    int fallback;            /* 1 while Redis is configured but not in use */
} edge_rl_stats;

/* Fills the defaults above (all classes, no Redis). */
void edge_rl_config_defaults(edge_rl_config *cfg);

/* Parses "LIMIT/UNIT[:BURST]" with UNIT one of ms, s, sec, m, min, h (optionally preceded by
 * a count, e.g. "100/10s"), e.g. "10/min", "10/s:20". Returns 0, or -1 with a reason in err
 * (never echoes more than the input it was given). */
int edge_rl_rule_parse(const char *s, edge_rl_rule *out, char *err, size_t errcap);

/* Canonical class names ("auth_fail", "key_submit", "orders", "api", "public"); the metrics
 * label values. Returns "unknown" for an invalid class. */
const char *edge_rl_class_name(edge_rl_class c);
/* Class by name; -1 when unknown. */
int edge_rl_class_parse(const char *name);

/* Creates a limiter. Checks the config (a rediss:// URL is refused with an error explaining
 * the stunnel sidecar); does not require Redis to be up: when the first connect fails it
 * starts in fallback. Returns 0 and *out (destroy with edge_rl_destroy), or -1 with a
 * reason in err (secrets in the URL are never copied into err). */
int edge_rl_create(const edge_rl_config *cfg, edge_rl **out, char *err, size_t errcap);
/* Closes connections and frees everything. NULL is a no-op. */
void edge_rl_destroy(edge_rl *rl);

/* One check: counts this request against (cls, key) and says whether it may run. key may be
 * any bytes (NUL terminated, NULL = ""); it is hashed. On DENY, *retry_after_ms (if not
 * NULL) is the wait until one request would be allowed (>= 1); on ALLOW it is 0.
 * Thread-safe. Never fails: backend errors fall back to the in-process table. */
edge_rl_result edge_rl_check(edge_rl *rl, edge_rl_class cls, const char *key,
                             int64_t *retry_after_ms);

/* Like edge_rl_check but only looks: says whether a request would be allowed now, without
 * counting one. For auth_fail: peek before verifying a token (a blocked peer is refused
 * without the verification running), and edge_rl_check after each failed verification. */
edge_rl_result edge_rl_peek(edge_rl *rl, edge_rl_class cls, const char *key,
                            int64_t *retry_after_ms);

/* Budgets kept in the shared Redis only, for a caller that keeps its own in-process copy
 * (the broker's per-account request budget, brokers/alpaca.c): label names the budget in the
 * Redis key (prefix + label + ':' + the key in hex; at most 31 bytes are used), key is the
 * caller's fixed-size digest, rule the caller's. Every replica sharing the Redis draws on one
 * bucket. A caller may pass a smaller burst than another for the same key: it is then refused
 * while fewer than (burst difference + 1) requests are left (a reserve for the others).
 *
 * edge_rl_shared_check counts one request: 1 allowed, 0 denied (*retry_after_ms >= 1 is the
 * wait), -1 when no Redis is configured or it does not answer now (the caller decides alone;
 * Redis failures count toward the fallback as for edge_rl_check).
 * edge_rl_shared_hold: no request of (label, key) is allowed for the next hold_ms (a broker's
 * 429 until its reset), after which the bucket starts empty. 0, or -1 as above. */
#define EDGE_RL_KEY_BYTES 16
int edge_rl_shared_check(edge_rl *rl, const char *label, const uint8_t key[EDGE_RL_KEY_BYTES],
                         const edge_rl_rule *rule, int64_t *retry_after_ms);
int edge_rl_shared_hold(edge_rl *rl, const char *label, const uint8_t key[EDGE_RL_KEY_BYTES],
                        const edge_rl_rule *rule, int64_t hold_ms);

/* Snapshot of counters; thread-safe. */
void edge_rl_stats_get(edge_rl *rl, edge_rl_stats *out);
/* 1 when Redis is configured and currently not used. */
int edge_rl_fallback_active(edge_rl *rl);
/* 1 when a Redis URL was configured. */
int edge_rl_uses_redis(const edge_rl *rl);

#endif
