/*
 * Rate limiter: GCRA (see ratelimit.h) over two backends.
 *
 * In process: 64 shards, each a mutex-protected chained hash table of (class, 128-bit key
 * digest) -> TAT. The total number of entries is bounded: when a shard is full, expired
 * entries (TAT <= now, i.e. indistinguishable from a fresh key) are swept, and if none were
 * expired the entry with the oldest TAT (the one closest to expiring) is evicted.
 *
 * Redis: one Lua script per check, run with EVALSHA (EVAL when the server answers NOSCRIPT,
 * e.g. after a restart). The script reads TIME on the server, so replicas with skewed clocks
 * agree, and stores the TAT with a PX TTL equal to its remaining life. Connections live in a
 * small pool of mutex-guarded slots; each has connect and command timeouts. A failed command
 * flips the limiter into fallback (the in-process table answers), bumps a connection
 * generation so every pooled connection is rebuilt, and from then on at most one thread per
 * retry interval probes Redis; the first success flips back.
 *
 * Invariants: raw keys are never stored (only digests); the password from the URL is kept
 * only for AUTH and never logged or copied into an error message.
 */
#include "core/clock.h"
#include "edge/ratelimit.h"

#include "core/log.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RL_SHARDS 64
#define RL_BUCKETS 256
#define RL_DIGEST 16
#define RL_PREFIX_MAX 64

static const char *const rl_class_names[EDGE_RL_CLASS_COUNT] = {"auth_fail", "key_submit", "orders",
                                                                "api", "public"};

/* KEYS[1] = key; ARGV[1] = emission interval T (us), ARGV[2] = burst capacity B*T (us),
 * ARGV[3] = "1" to count the request, "0" to only look (peek), "H" to hold: no request is
 * allowed for the next ARGV[4] us (then the bucket starts empty).
 * Returns {1, 0} when allowed (or held), {0, retry_after_us} when denied. Numbers are
 * formatted with %d because Lua's default number formatting would round microsecond
 * timestamps. */
static const char rl_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local T = tonumber(ARGV[1])\n"
    "local B = tonumber(ARGV[2])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
    "if tat < now then tat = now end\n"
    "if ARGV[3] == 'H' then\n"
    "  local held = now + tonumber(ARGV[4]) + B - T\n"
    "  if held > tat then\n"
    "    local hl = math.floor((held - now) / 1000) + 1\n"
    "    redis.call('SET', KEYS[1], string.format('%d', held), 'PX', string.format('%d', hl))\n"
    "  end\n"
    "  return {1, 0}\n"
    "end\n"
    "local new_tat = tat + T\n"
    "local allow_at = new_tat - B\n"
    "if now < allow_at then return {0, allow_at - now} end\n"
    "if ARGV[3] ~= '1' then return {1, 0} end\n"
    "local ttl = math.floor((new_tat - now) / 1000) + 1\n"
    "redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', ttl))\n"
    "return {1, 0}\n";

typedef struct rl_entry {
    struct rl_entry *next;
    int64_t tat;
    uint8_t cls;
    uint8_t digest[RL_DIGEST];
} rl_entry;

typedef struct {
    pthread_mutex_t mu;
    rl_entry *buckets[RL_BUCKETS];
    size_t count;
} rl_shard;

typedef struct {
    pthread_mutex_t mu;
    redisContext *c;
    uint64_t gen;
} rl_slot;

struct edge_rl {
    edge_rl_config cfg;
    EVP_MD *sha256; /* fetched once: an implicit fetch per check costs a global lock */
    int64_t t_us[EDGE_RL_CLASS_COUNT];
    int64_t b_us[EDGE_RL_CLASS_COUNT];
    rl_shard shards[RL_SHARDS];
    size_t shard_cap;
    /* Redis */
    int redis;
    char *host;
    int port;
    int db;
    char *user;
    char *password;
    char prefix[RL_PREFIX_MAX + 1];
    char sha[41];
    rl_slot *slots;
    uint32_t nslots;
    atomic_uint rr;
    atomic_int fallback;
    atomic_llong next_retry_us;
    atomic_ullong gen;
    /* stats */
    atomic_ullong n_redis, n_local, n_fail, n_trans, n_evict;
};

const char *edge_rl_class_name(edge_rl_class c)
{
    if ((int)c < 0 || c >= EDGE_RL_CLASS_COUNT)
        return "unknown";
    return rl_class_names[c];
}

int edge_rl_class_parse(const char *name)
{
    for (int i = 0; name && i < EDGE_RL_CLASS_COUNT; i++)
        if (strcmp(name, rl_class_names[i]) == 0)
            return i;
    return -1;
}

void edge_rl_config_defaults(edge_rl_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->rules[EDGE_RL_AUTH_FAIL] = (edge_rl_rule){10, 60000, 10};
    cfg->rules[EDGE_RL_KEY_SUBMIT] = (edge_rl_rule){5, 60000, 5};
    cfg->rules[EDGE_RL_ORDERS] = (edge_rl_rule){10, 1000, 20};
    cfg->rules[EDGE_RL_API] = (edge_rl_rule){50, 1000, 100};
    cfg->rules[EDGE_RL_PUBLIC] = (edge_rl_rule){100, 1000, 200};
    cfg->redis_timeout_ms = 200;
    cfg->redis_retry_ms = 1000;
    cfg->redis_pool = 4;
    cfg->key_prefix = "tw:rl:";
    cfg->max_entries = 100000;
}

static int parse_u32(const char *s, const char *end, uint32_t *out)
{
    uint64_t v = 0;
    if (s == end)
        return -1;
    for (const char *p = s; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX)
            return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int edge_rl_rule_parse(const char *s, edge_rl_rule *out, char *err, size_t errcap)
{
    uint32_t limit = 0, mult = 1, burst = 0, unit_ms = 0;
    const char *slash, *colon, *unit, *uend;
    if (!s || !*s) {
        snprintf(err, errcap, "empty rate rule (want LIMIT/UNIT[:BURST], e.g. 10/s:20)");
        return -1;
    }
    slash = strchr(s, '/');
    if (!slash || parse_u32(s, slash, &limit) != 0) {
        snprintf(err, errcap, "rate rule needs a whole LIMIT before '/' (e.g. 10/s:20)");
        return -1;
    }
    colon = strchr(slash + 1, ':');
    uend = colon ? colon : slash + 1 + strlen(slash + 1);
    unit = slash + 1;
    while (unit < uend && *unit >= '0' && *unit <= '9')
        unit++;
    if (unit > slash + 1 && (parse_u32(slash + 1, unit, &mult) != 0 || mult == 0)) {
        snprintf(err, errcap, "rate rule period count must be a positive integer");
        return -1;
    }
    size_t ul = (size_t)(uend - unit);
    if (ul == 2 && memcmp(unit, "ms", 2) == 0)
        unit_ms = 1;
    else if ((ul == 1 && *unit == 's') || (ul == 3 && memcmp(unit, "sec", 3) == 0))
        unit_ms = 1000;
    else if ((ul == 1 && *unit == 'm') || (ul == 3 && memcmp(unit, "min", 3) == 0))
        unit_ms = 60000;
    else if (ul == 1 && *unit == 'h')
        unit_ms = 3600000;
    else {
        snprintf(err, errcap, "rate rule unit must be ms, s, min or h");
        return -1;
    }
    if ((uint64_t)mult * unit_ms > UINT32_MAX) {
        snprintf(err, errcap, "rate rule period too long");
        return -1;
    }
    if (colon && parse_u32(colon + 1, colon + 1 + strlen(colon + 1), &burst) != 0) {
        snprintf(err, errcap, "rate rule BURST after ':' must be a whole number");
        return -1;
    }
    if (limit > 0 && colon && burst == 0) {
        snprintf(err, errcap, "rate rule BURST must be at least 1");
        return -1;
    }
    out->limit = limit;
    out->period_ms = mult * unit_ms;
    out->burst = burst ? burst : limit;
    return 0;
}

static int64_t rl_now(edge_rl *rl)
{
    return rl->cfg.clock ? rl->cfg.clock(rl->cfg.clock_ctx) : tw_mono_us();
}

/* ---- URL ------------------------------------------------------------------------------ */

static char *dup_range(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes in place; -1 on a bad escape. */
static int pct_decode(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '%') {
            int hi = hexval(r[1]), lo = hi >= 0 ? hexval(r[2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return 0;
}

static int parse_url(edge_rl *rl, const char *url, char *err, size_t errcap)
{
    const char *p, *at, *hostend, *slash, *hs;
    if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(err, errcap,
                 "TW_REDIS_URL: rediss:// is not supported (this hiredis has no TLS); run a "
                 "stunnel client sidecar on loopback in front of the TLS Redis (see "
                 "deploy/stunnel/) and point TW_REDIS_URL at it with redis://127.0.0.1:PORT");
        return -1;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errcap, "TW_REDIS_URL must start with redis://");
        return -1;
    }
    p = url + 8;
    slash = strchr(p, '/');
    if (!slash)
        slash = p + strlen(p);
    /* The last '@' before the path separates credentials (a password may contain '@'
     * only percent-encoded, but be lenient). */
    at = NULL;
    for (const char *q = p; q < slash; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) {
            snprintf(err, errcap,
                     "TW_REDIS_URL: credentials must be :PASSWORD@ or "
                     "USER:PASSWORD@");
            return -1;
        }
        if (colon > p)
            rl->user = dup_range(p, (size_t)(colon - p));
        rl->password = dup_range(colon + 1, (size_t)(at - colon - 1));
        if (!rl->password || (colon > p && !rl->user)) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        if (pct_decode(rl->password) != 0 || (rl->user && pct_decode(rl->user) != 0)) {
            snprintf(err, errcap, "TW_REDIS_URL: bad percent-escape in credentials");
            return -1;
        }
        hs = at + 1;
    } else {
        hs = p;
    }
    rl->port = 6379;
    if (*hs == '[') {
        const char *rb = memchr(hs, ']', (size_t)(slash - hs));
        if (!rb) {
            snprintf(err, errcap, "TW_REDIS_URL: unterminated [IPv6] host");
            return -1;
        }
        rl->host = dup_range(hs + 1, (size_t)(rb - hs - 1));
        hostend = rb + 1;
    } else {
        hostend = memchr(hs, ':', (size_t)(slash - hs));
        if (!hostend)
            hostend = slash;
        rl->host = dup_range(hs, (size_t)(hostend - hs));
    }
    if (!rl->host || !rl->host[0]) {
        snprintf(err, errcap, "TW_REDIS_URL: missing host");
        return -1;
    }
    if (hostend < slash) {
        uint32_t port = 0;
        if (*hostend != ':' || parse_u32(hostend + 1, slash, &port) != 0 || port == 0 ||
            port > 65535) {
            snprintf(err, errcap, "TW_REDIS_URL: port must be 1..65535");
            return -1;
        }
        rl->port = (int)port;
    }
    if (*slash == '/' && slash[1]) {
        uint32_t db = 0;
        if (parse_u32(slash + 1, slash + 1 + strlen(slash + 1), &db) != 0 || db > 65535) {
            snprintf(err, errcap, "TW_REDIS_URL: database after '/' must be a number");
            return -1;
        }
        rl->db = (int)db;
    }
    return 0;
}

/* ---- in-process backend --------------------------------------------------------------- */

static void key_digest(const EVP_MD *md, edge_rl_class cls, const char *key, uint8_t out[RL_DIGEST])
{
    /* One-shot digest over the class byte and the key: no context allocation per call (this
     * runs on every rate-limited call, public health checks included). */
    uint8_t full[EVP_MAX_MD_SIZE];
    unsigned char buf[512];
    unsigned int n = 0;
    size_t kl = strlen(key);
    uint8_t c = (uint8_t)cls;
    int ok = 0;
    if (md && kl < sizeof(buf)) {
        buf[0] = c;
        memcpy(buf + 1, key, kl);
        ok = EVP_Digest(buf, kl + 1, full, &n, md, NULL) == 1;
    } else if (md) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, &c, 1) == 1 &&
             EVP_DigestUpdate(ctx, key, kl) == 1 && EVP_DigestFinal_ex(ctx, full, &n) == 1;
        EVP_MD_CTX_free(ctx);
    }
    if (ok && n >= RL_DIGEST) {
        memcpy(out, full, RL_DIGEST);
    } else {
        /* Digest failure (allocation): degrade to a bounded copy, still fixed-size. */
        memset(out, 0, RL_DIGEST);
        memcpy(out, key, kl < RL_DIGEST ? kl : RL_DIGEST);
        out[0] ^= c;
    }
}

static int64_t retry_ms(int64_t us)
{
    int64_t ms = (us + 999) / 1000;
    return ms < 1 ? 1 : ms;
}

/* Sweeps expired entries; when none were expired and the shard is still full, evicts the
 * entry with the oldest TAT. Caller holds the shard lock. */
static void shard_make_room(edge_rl *rl, rl_shard *sh, int64_t now)
{
    rl_entry **oldest = NULL;
    for (int b = 0; b < RL_BUCKETS; b++) {
        rl_entry **pp = &sh->buckets[b];
        while (*pp) {
            rl_entry *e = *pp;
            if (e->tat <= now) {
                *pp = e->next;
                free(e);
                sh->count--;
                continue;
            }
            if (!oldest || e->tat < (*oldest)->tat)
                oldest = pp;
            pp = &e->next;
        }
    }
    if (sh->count >= rl->shard_cap && oldest) {
        rl_entry *e = *oldest;
        *oldest = e->next;
        free(e);
        sh->count--;
        atomic_fetch_add(&rl->n_evict, 1);
    }
}

static edge_rl_result local_check(edge_rl *rl, edge_rl_class cls, const uint8_t *d, int consume,
                                  int64_t *retry_after_ms)
{
    int64_t now = rl_now(rl), tat, new_tat, allow_at;
    rl_shard *sh = &rl->shards[d[0] % RL_SHARDS];
    unsigned b = ((unsigned)d[1] << 8 | d[2]) % RL_BUCKETS;
    edge_rl_result res = EDGE_RL_ALLOW;
    rl_entry *e;

    atomic_fetch_add(&rl->n_local, 1);
    pthread_mutex_lock(&sh->mu);
    for (e = sh->buckets[b]; e; e = e->next)
        if (e->cls == (uint8_t)cls && memcmp(e->digest, d, RL_DIGEST) == 0)
            break;
    tat = e && e->tat > now ? e->tat : now;
    new_tat = tat + rl->t_us[cls];
    allow_at = new_tat - rl->b_us[cls];
    if (now < allow_at) {
        res = EDGE_RL_DENY;
        if (retry_after_ms)
            *retry_after_ms = retry_ms(allow_at - now);
        goto out;
    }
    if (!consume)
        goto out;
    if (!e) {
        if (sh->count >= rl->shard_cap)
            shard_make_room(rl, sh, now);
        e = calloc(1, sizeof *e);
        if (!e)
            goto out; /* allow without state rather than fail the call */
        e->cls = (uint8_t)cls;
        memcpy(e->digest, d, RL_DIGEST);
        e->next = sh->buckets[b];
        sh->buckets[b] = e;
        sh->count++;
    }
    e->tat = new_tat;
out:
    pthread_mutex_unlock(&sh->mu);
    return res;
}

/* ---- Redis backend -------------------------------------------------------------------- */

static void set_fallback(edge_rl *rl, int on)
{
    if (atomic_exchange(&rl->fallback, on) == on)
        return;
    atomic_fetch_add(&rl->n_trans, 1);
    if (on)
        tw_logf(TW_LOG_WARN, "ratelimit_redis_down",
                "Redis rate limiter unavailable; using the in-process limiter until it "
                "answers again (retry every %u ms)",
                rl->cfg.redis_retry_ms);
    else
        tw_logf(TW_LOG_INFO, "ratelimit_redis_up", "Redis rate limiter answering again");
    if (rl->cfg.on_fallback)
        rl->cfg.on_fallback(rl->cfg.fallback_ctx, on);
}

static void mark_down(edge_rl *rl)
{
    atomic_fetch_add(&rl->n_fail, 1);
    atomic_fetch_add(&rl->gen, 1);
    atomic_store(&rl->next_retry_us, tw_mono_us() + (int64_t)rl->cfg.redis_retry_ms * 1000);
    set_fallback(rl, 1);
}

static redisReply *cmd_argv(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    return redisCommandArgv(c, argc, argv, lens);
}

static int ok_status(redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING ||
                 r->type == REDIS_REPLY_INTEGER);
}

static redisContext *redis_connect(edge_rl *rl)
{
    struct timeval tv = {(time_t)(rl->cfg.redis_timeout_ms / 1000),
                         (suseconds_t)(rl->cfg.redis_timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(rl->host, rl->port, tv);
    redisReply *r = NULL;
    if (!c || c->err)
        goto fail;
    if (redisSetTimeout(c, tv) != REDIS_OK)
        goto fail;
    if (rl->password) {
        const char *argv[3] = {"AUTH", rl->user ? rl->user : rl->password, rl->password};
        size_t lens[3] = {4, strlen(argv[1]), strlen(rl->password)};
        r = cmd_argv(c, rl->user ? 3 : 2, argv, lens);
        if (!ok_status(r))
            goto fail;
        freeReplyObject(r);
        r = NULL;
    }
    if (rl->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", rl->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        r = cmd_argv(c, 2, argv, lens);
        if (!ok_status(r))
            goto fail;
        freeReplyObject(r);
        r = NULL;
    }
    return c;
fail:
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return NULL;
}

/* One request of the script (rl_script's arguments). */
typedef struct rl_req {
    char key[RL_PREFIX_MAX + 32 + 2 * RL_DIGEST + 2];
    int64_t t_us, b_us, hold_us;
    const char *mode; /* "1", "0" or "H" */
} rl_req;

/* The Redis key of (label, digest): prefix, label, ':', the digest in hex. */
static void rl_key(const edge_rl *rl, rl_req *q, const char *label, const uint8_t *d)
{
    static const char hex[] = "0123456789abcdef";
    int n = snprintf(q->key, sizeof q->key, "%s%.31s:", rl->prefix, label);
    for (int i = 0; i < RL_DIGEST; i++) {
        q->key[n++] = hex[d[i] >> 4];
        q->key[n++] = hex[d[i] & 15];
    }
    q->key[n] = '\0';
}

/* Runs the script on c. Returns 0 with *allowed and *retry_us, or -1 on any failure. */
static int redis_eval(edge_rl *rl, redisContext *c, const rl_req *q, int *allowed,
                      int64_t *retry_us)
{
    char t[24], b[24], h[24];
    redisReply *r;
    int rc = -1;
    snprintf(t, sizeof t, "%lld", (long long)q->t_us);
    snprintf(b, sizeof b, "%lld", (long long)q->b_us);
    snprintf(h, sizeof h, "%lld", (long long)q->hold_us);
    const char *argv[8] = {"EVALSHA", rl->sha, "1", q->key, t, b, q->mode, h};
    size_t lens[8] = {7, 40, 1, strlen(q->key), strlen(t), strlen(b), 1, strlen(h)};
    r = cmd_argv(c, 8, argv, lens);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = rl_script;
        lens[0] = 4;
        lens[1] = sizeof rl_script - 1;
        r = cmd_argv(c, 8, argv, lens);
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER)
        goto out;
    *allowed = r->element[0]->integer == 1;
    *retry_us = r->element[1]->integer;
    rc = 0;
out:
    if (r)
        freeReplyObject(r);
    return rc;
}

/* Returns 0 when Redis answered (result in *res), -1 to fall back. */
static int redis_check(edge_rl *rl, const rl_req *q, edge_rl_result *res, int64_t *retry_after_ms)
{
    int allowed = 0, rc = -1;
    int64_t retry_us = 0;
    if (atomic_load(&rl->fallback)) {
        long long nr = atomic_load(&rl->next_retry_us);
        int64_t now = tw_mono_us();
        if (now < nr)
            return -1;
        if (!atomic_compare_exchange_strong(&rl->next_retry_us, &nr,
                                            now + (int64_t)rl->cfg.redis_retry_ms * 1000))
            return -1; /* another thread is probing */
    }
    /* Lowest free slot first: without contention one connection serves everything and the
     * others are only opened when threads actually overlap. */
    rl_slot *s = NULL;
    for (uint32_t i = 0; i < rl->nslots && !s; i++)
        if (pthread_mutex_trylock(&rl->slots[i].mu) == 0)
            s = &rl->slots[i];
    if (!s) {
        s = &rl->slots[atomic_fetch_add(&rl->rr, 1) % rl->nslots];
        pthread_mutex_lock(&s->mu);
    }
    uint64_t gen = atomic_load(&rl->gen);
    if (s->c && s->gen != gen) {
        redisFree(s->c);
        s->c = NULL;
    }
    if (!s->c) {
        s->c = redis_connect(rl);
        s->gen = gen;
    }
    if (s->c && redis_eval(rl, s->c, q, &allowed, &retry_us) == 0) {
        rc = 0;
    } else if (s->c) {
        redisFree(s->c);
        s->c = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) {
        mark_down(rl);
        return -1;
    }
    set_fallback(rl, 0);
    atomic_fetch_add(&rl->n_redis, 1);
    *res = allowed ? EDGE_RL_ALLOW : EDGE_RL_DENY;
    if (!allowed && retry_after_ms)
        *retry_after_ms = retry_ms(retry_us);
    return 0;
}

/* T and B*T (us) of rule; false for a rule that admits everything (limit 0) or has no
 * period. */
static bool rule_us(const edge_rl_rule *rule, int64_t *t_us, int64_t *b_us)
{
    if (!rule || rule->limit == 0 || rule->period_ms == 0)
        return false;
    uint32_t burst = rule->burst ? rule->burst : rule->limit;
    *t_us = (int64_t)rule->period_ms * 1000 / rule->limit;
    if (*t_us < 1)
        *t_us = 1;
    *b_us = *t_us * burst;
    return true;
}

/* ---- public --------------------------------------------------------------------------- */

static int sha1_hex(const char *s, size_t n, char out[41])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    static const char hex[] = "0123456789abcdef";
    if (EVP_Digest(s, n, md, &len, EVP_sha1(), NULL) != 1 || len != 20)
        return -1;
    for (size_t i = 0; i < 20; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[40] = '\0';
    return 0;
}

int edge_rl_create(const edge_rl_config *cfg, edge_rl **out, char *err, size_t errcap)
{
    edge_rl *rl = NULL;
    int rc = -1;
    *out = NULL;
    rl = calloc(1, sizeof *rl);
    if (!rl) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    rl->cfg = *cfg;
    rl->cfg.redis_url = NULL; /* not kept: may hold a password */
    rl->sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    if (!rl->cfg.redis_timeout_ms)
        rl->cfg.redis_timeout_ms = 200;
    if (!rl->cfg.redis_retry_ms)
        rl->cfg.redis_retry_ms = 1000;
    if (!rl->cfg.redis_pool)
        rl->cfg.redis_pool = 4;
    if (!rl->cfg.max_entries)
        rl->cfg.max_entries = 100000;
    const char *prefix = cfg->key_prefix ? cfg->key_prefix : "tw:rl:";
    if (strlen(prefix) > RL_PREFIX_MAX) {
        snprintf(err, errcap, "rate limit key prefix longer than %d bytes", RL_PREFIX_MAX);
        goto out;
    }
    memcpy(rl->prefix, prefix, strlen(prefix) + 1);
    rl->cfg.key_prefix = NULL;
    for (int c = 0; c < EDGE_RL_CLASS_COUNT; c++) {
        const edge_rl_rule *r = &cfg->rules[c];
        if (r->limit == 0) {
            rl->t_us[c] = 0; /* disabled: checks always allow */
            continue;
        }
        if (r->period_ms == 0) {
            snprintf(err, errcap, "rate limit class %s: period must be > 0", rl_class_names[c]);
            goto out;
        }
        (void)rule_us(r, &rl->t_us[c], &rl->b_us[c]);
    }
    rl->shard_cap = rl->cfg.max_entries / RL_SHARDS;
    if (rl->shard_cap < 4)
        rl->shard_cap = 4;
    for (int i = 0; i < RL_SHARDS; i++)
        pthread_mutex_init(&rl->shards[i].mu, NULL);
    if (cfg->redis_url && cfg->redis_url[0]) {
        if (parse_url(rl, cfg->redis_url, err, errcap) != 0)
            goto out;
        if (sha1_hex(rl_script, sizeof rl_script - 1, rl->sha) != 0) {
            snprintf(err, errcap, "cannot hash the rate limit script");
            goto out;
        }
        rl->nslots = rl->cfg.redis_pool;
        rl->slots = calloc(rl->nslots, sizeof *rl->slots);
        if (!rl->slots) {
            snprintf(err, errcap, "out of memory");
            goto out;
        }
        for (uint32_t i = 0; i < rl->nslots; i++)
            pthread_mutex_init(&rl->slots[i].mu, NULL);
        rl->redis = 1;
        /* First contact: a Redis that is down at start is not fatal; we start in fallback. */
        rl->slots[0].c = redis_connect(rl);
        if (!rl->slots[0].c)
            mark_down(rl);
    }
    *out = rl;
    rl = NULL;
    rc = 0;
out:
    edge_rl_destroy(rl);
    return rc;
}

void edge_rl_destroy(edge_rl *rl)
{
    if (!rl)
        return;
    EVP_MD_free(rl->sha256);
    for (int i = 0; i < RL_SHARDS; i++) {
        for (int b = 0; b < RL_BUCKETS; b++) {
            rl_entry *e = rl->shards[i].buckets[b];
            while (e) {
                rl_entry *n = e->next;
                free(e);
                e = n;
            }
        }
        pthread_mutex_destroy(&rl->shards[i].mu);
    }
    for (uint32_t i = 0; rl->slots && i < rl->nslots; i++) {
        if (rl->slots[i].c)
            redisFree(rl->slots[i].c);
        pthread_mutex_destroy(&rl->slots[i].mu);
    }
    free(rl->slots);
    free(rl->host);
    free(rl->user);
    if (rl->password) {
        volatile char *p = rl->password;
        while (*p)
            *p++ = 0;
        free(rl->password);
    }
    free(rl);
}

static edge_rl_result rl_run(edge_rl *rl, edge_rl_class cls, const char *key, int consume,
                             int64_t *retry_after_ms)
{
    uint8_t d[RL_DIGEST];
    edge_rl_result res = EDGE_RL_ALLOW;
    if (retry_after_ms)
        *retry_after_ms = 0;
    if ((int)cls < 0 || cls >= EDGE_RL_CLASS_COUNT || rl->t_us[cls] == 0)
        return EDGE_RL_ALLOW;
    key_digest(rl->sha256, cls, key ? key : "", d);
    if (rl->redis) {
        rl_req q = {.t_us = rl->t_us[cls], .b_us = rl->b_us[cls], .mode = consume ? "1" : "0"};
        rl_key(rl, &q, rl_class_names[cls], d);
        if (redis_check(rl, &q, &res, retry_after_ms) == 0)
            return res;
    }
    return local_check(rl, cls, d, consume, retry_after_ms);
}

edge_rl_result edge_rl_check(edge_rl *rl, edge_rl_class cls, const char *key,
                             int64_t *retry_after_ms)
{
    return rl_run(rl, cls, key, 1, retry_after_ms);
}

edge_rl_result edge_rl_peek(edge_rl *rl, edge_rl_class cls, const char *key,
                            int64_t *retry_after_ms)
{
    return rl_run(rl, cls, key, 0, retry_after_ms);
}

int edge_rl_shared_check(edge_rl *rl, const char *label, const uint8_t key[EDGE_RL_KEY_BYTES],
                         const edge_rl_rule *rule, int64_t *retry_after_ms)
{
    edge_rl_result res = EDGE_RL_ALLOW;
    rl_req q = {.mode = "1"};
    if (retry_after_ms)
        *retry_after_ms = 0;
    if (!rl || !rl->redis || !rule_us(rule, &q.t_us, &q.b_us))
        return -1;
    rl_key(rl, &q, label, key);
    if (redis_check(rl, &q, &res, retry_after_ms) != 0)
        return -1;
    return res == EDGE_RL_ALLOW ? 1 : 0;
}

int edge_rl_shared_hold(edge_rl *rl, const char *label, const uint8_t key[EDGE_RL_KEY_BYTES],
                        const edge_rl_rule *rule, int64_t hold_ms)
{
    edge_rl_result res;
    rl_req q = {.mode = "H", .hold_us = hold_ms > 0 ? hold_ms * 1000 : 0};
    if (!rl || !rl->redis || !rule_us(rule, &q.t_us, &q.b_us))
        return -1;
    rl_key(rl, &q, label, key);
    return redis_check(rl, &q, &res, NULL) == 0 ? 0 : -1;
}

void edge_rl_stats_get(edge_rl *rl, edge_rl_stats *out)
{
    out->redis_checks = atomic_load(&rl->n_redis);
    out->local_checks = atomic_load(&rl->n_local);
    out->redis_failures = atomic_load(&rl->n_fail);
    out->transitions = atomic_load(&rl->n_trans);
    out->evictions = atomic_load(&rl->n_evict);
    out->fallback = atomic_load(&rl->fallback);
}

int edge_rl_fallback_active(edge_rl *rl)
{
    return atomic_load(&rl->fallback);
}

int edge_rl_uses_redis(const edge_rl *rl)
{
    return rl->redis;
}
