/*
 * auth_jwks.c - the JWKS key source: HTTPS fetch (libcurl), cache, rotation, staleness.
 *
 * Design: one current key set (immutable, refcounted) behind a mutex; readers take a reference
 * and verify without the lock. Fetches are single-flight: one thread fetches with the lock
 * released, concurrent callers that need the result wait on a condition variable. Fetches
 * caused by requests (an unknown kid, or an expired set without a refresher) happen at most
 * once per min_refetch_s, so a flood of tokens with invented kids costs the provider one
 * request per window. A background thread refreshes at 80% of the TTL, off the request path;
 * when it fails the old set is still served until ttl + max_stale, then dropped.
 * Only https:// is fetched, redirects are not followed, the body is capped at 256 KiB, and
 * peer and host verification stay on (CA from ca_file or the system store).
 * Invariants: `current` is NULL or a set with at least one key; `generation` changes whenever
 * the served set changes; `fetching` is set by exactly one thread at a time.
 */
#include "auth_int.h"

#include <curl/curl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct auth_jwks {
    char *url, *ca_file;
    unsigned algs;
    int ttl_s, min_refetch_s, max_stale_s, timeout_ms;
    int64_t (*clock)(void *arg);
    void *clock_arg;

    pthread_mutex_t mu;
    pthread_cond_t done; /* a fetch finished */
    pthread_cond_t kick; /* wake the refresher */
    auth_keyset *current;
    uint8_t body_hash[32]; /* of the body behind `current`, to keep generation on no change */
    int64_t fetched_at;    /* last success; meaningful when current != NULL */
    int64_t last_attempt;
    int attempted, fetching, stop, kicked;
    _Atomic uint64_t generation;
    _Atomic int64_t fresh_at; /* fetched_at of `current`, INT64_MIN when none */
    _Atomic uint64_t fetches, failures;
    pthread_t thread;
    int has_thread;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t default_clock(void *arg)
{
    (void)arg;
    struct timespec ts; /* exact: time(NULL) reads the coarse clock, up to a tick behind */
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (int64_t)time(NULL);
    return (int64_t)ts.tv_sec;
}

typedef struct {
    char *buf;
    size_t len;
} body;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    body *b = arg;
    size_t n = size * nmemb;
    if (n > AUTH_JWKS_MAX_BYTES - b->len)
        return 0; /* aborts the transfer: oversized document */
    char *nb = realloc(b->buf, b->len + n + 1);
    if (!nb)
        return 0;
    b->buf = nb;
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return n;
}

/* Fetches and parses the JWKS. Called without the lock. */
static auth_keyset *fetch(auth_jwks *j, uint8_t hash[32], const char **reason)
{
    CURL *h = curl_easy_init();
    body b = {NULL, 0};
    long status = 0;
    auth_keyset *ks = NULL;
    if (!h) {
        *reason = "curl init failed";
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, j->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (j->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, j->ca_file);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tradewinkd-jwks/1");
    if (curl_easy_perform(h) != CURLE_OK) {
        *reason = "JWKS fetch failed (network, TLS, timeout or size)";
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || !b.buf) {
        *reason = "JWKS fetch returned a non-200 status";
        goto out;
    }
    ks = auth_keyset_from_jwks(b.buf, b.len, j->algs, reason);
    if (ks)
        auth_digest(256, b.buf, b.len, hash);
out:
    if (h)
        curl_easy_cleanup(h);
    free(b.buf);
    return ks;
}

/* Runs one fetch with the lock released; the caller holds the lock and has set fetching. */
static void fetch_locked(auth_jwks *j, int64_t now)
{
    uint8_t hash[32];
    const char *why = NULL;
    j->last_attempt = now;
    j->attempted = 1;
    pthread_mutex_unlock(&j->mu);
    atomic_fetch_add(&j->fetches, 1);
    auth_keyset *ks = fetch(j, hash, &why);
    pthread_mutex_lock(&j->mu);
    if (ks) {
        if (!j->current || memcmp(hash, j->body_hash, 32) != 0)
            atomic_fetch_add(&j->generation, 1);
        auth_keyset_unref(j->current);
        j->current = ks;
        memcpy(j->body_hash, hash, 32);
        j->fetched_at = now;
        atomic_store(&j->fresh_at, now);
    } else {
        atomic_fetch_add(&j->failures, 1);
    }
    j->fetching = 0;
    pthread_cond_broadcast(&j->done);
}

/* Drops a set older than ttl + max_stale. Lock held. */
static void expire_locked(auth_jwks *j, int64_t now)
{
    if (j->current && now - j->fetched_at >= (int64_t)j->ttl_s + j->max_stale_s) {
        auth_keyset_unref(j->current);
        j->current = NULL;
        atomic_store(&j->fresh_at, INT64_MIN);
        atomic_fetch_add(&j->generation, 1);
    }
}

static int may_fetch_locked(const auth_jwks *j, int64_t now)
{
    return !j->attempted || now - j->last_attempt >= j->min_refetch_s ||
           now < j->last_attempt /* clock went back */;
}

auth_keyset *auth_jwks_get(auth_jwks *j, const char *kid, int64_t now, const char **reason)
{
    auth_keyset *ks = NULL;
    int fetched = 0;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        expire_locked(j, now);
        int stale = !j->current || now - j->fetched_at >= j->ttl_s;
        int found = j->current && auth_keyset_find(j->current, kid) != NULL;
        if (found && (!stale || fetched)) {
            ks = j->current;
            break;
        }
        if (found && j->has_thread) {
            j->kicked = 1; /* refresh in the background, serve the stale set now */
            pthread_cond_signal(&j->kick);
            ks = j->current;
            break;
        }
        if (j->fetching) {
            pthread_cond_wait(&j->done, &j->mu); /* share the fetch in flight */
            fetched = 1;
            continue;
        }
        if (!fetched && may_fetch_locked(j, now)) {
            j->fetching = 1;
            fetch_locked(j, now);
            fetched = 1;
            continue;
        }
        ks = found ? j->current : NULL;
        break;
    }
    if (ks)
        auth_keyset_ref(ks);
    else
        *reason = j->current ? "unknown kid (not in the JWKS)" : "no JWKS keys available";
    pthread_mutex_unlock(&j->mu);
    return ks;
}

static void *refresher(void *arg)
{
    auth_jwks *j = arg;
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&j->kick, &j->mu, &ts);
        if (j->stop)
            break;
        int64_t now = j->clock(j->clock_arg);
        expire_locked(j, now);
        int due = !j->current || now - j->fetched_at >= (int64_t)j->ttl_s * 4 / 5 || j->kicked;
        int retry_ok = !j->attempted || now - j->last_attempt >= j->min_refetch_s ||
                       (j->current && now - j->last_attempt >= (int64_t)j->ttl_s * 4 / 5);
        if (due && retry_ok && !j->fetching) {
            j->kicked = 0;
            j->fetching = 1;
            fetch_locked(j, now);
        }
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

auth_jwks *auth_jwks_create(const auth_jwks_opts *o, char *err, size_t errlen)
{
    auth_jwks *j = NULL;
    if (!o->url || strncmp(o->url, "https://", 8) != 0) {
        snprintf(err, errlen, "JWKS URL must start with https://");
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    j = calloc(1, sizeof(*j));
    if (!j)
        goto oom;
    j->url = strdup(o->url);
    j->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
    if (!j->url || (o->ca_file && !j->ca_file))
        goto oom;
    j->algs = o->algs;
    j->ttl_s = o->ttl_s;
    j->min_refetch_s = o->min_refetch_s;
    j->max_stale_s = o->max_stale_s;
    j->timeout_ms = o->timeout_ms;
    j->clock = o->clock ? o->clock : default_clock;
    j->clock_arg = o->clock_arg;
    atomic_init(&j->generation, 1);
    atomic_init(&j->fresh_at, INT64_MIN);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->done, NULL);
    pthread_cond_init(&j->kick, NULL);
    /* First fetch now so the first requests find keys; failure is not fatal (the provider
     * may come up later), the refresher or the first request retries. */
    pthread_mutex_lock(&j->mu);
    j->fetching = 1;
    fetch_locked(j, j->clock(j->clock_arg));
    pthread_mutex_unlock(&j->mu);
    if (o->background) {
        if (pthread_create(&j->thread, NULL, refresher, j) != 0) {
            snprintf(err, errlen, "cannot start the JWKS refresher thread");
            auth_jwks_destroy(j);
            return NULL;
        }
        j->has_thread = 1;
    }
    return j;
oom:
    snprintf(err, errlen, "out of memory");
    if (j) {
        free(j->url);
        free(j->ca_file);
        free(j);
    }
    return NULL;
}

void auth_jwks_destroy(auth_jwks *j)
{
    if (!j)
        return;
    if (j->has_thread) {
        pthread_mutex_lock(&j->mu);
        j->stop = 1;
        pthread_cond_signal(&j->kick);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thread, NULL);
    }
    auth_keyset_unref(j->current);
    pthread_cond_destroy(&j->done);
    pthread_cond_destroy(&j->kick);
    pthread_mutex_destroy(&j->mu);
    free(j->url);
    free(j->ca_file);
    free(j);
}

uint64_t auth_jwks_generation(auth_jwks *j, int64_t now)
{
    uint64_t gen = atomic_load(&j->generation);
    int64_t at = atomic_load(&j->fresh_at);
    /* A set past its TTL must go through auth_jwks_get (which refreshes it) before any cached
     * token verified under it is served again. */
    return at != INT64_MIN && now - at < j->ttl_s && now >= at ? gen : 0;
}

void auth_jwks_counters(auth_jwks *j, uint64_t *fetches, uint64_t *failures)
{
    *fetches = atomic_load(&j->fetches);
    *failures = atomic_load(&j->failures);
}
