/*
 * Standard Webhooks verifier (see webhook.h for the contract).
 *
 * Design: sources are a small fixed array, each with up to EDGE_WH_KEYS decoded HMAC keys
 * and a "poisoned" flag set when its configuration had any error, so a half-broken entry
 * refuses everything instead of running with fewer keys than intended. Checks run cheapest
 * and most fail-closed first: source has keys -> body size -> id -> timestamp syntax ->
 * signature header syntax -> time window -> HMAC over the raw bytes (every v1 entry against
 * every key, constant-time compare) -> replay table.
 *
 * Replay table: a chained hash of 128-bit digests of (source, id), each with an expiry of
 * timestamp + tolerance + 60 s (after that the timestamp alone refuses the delivery) and a
 * state (pending while the handler runs, committed after). Bounded: when full, expired
 * entries are swept; if still full the delivery is refused with BUSY (503) rather than
 * evicting a live id, which would re-open a replay window.
 *
 * Invariants: only digests of ids are stored; keys are wiped on destroy; error texts never
 * contain a secret; nothing here logs.
 */
#include "edge/webhook.h"

#include "core/clock.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EDGE_WH_SOURCES 32
#define EDGE_WH_KEYS 8
#define KEY_MIN 16
#define KEY_MAX 256
#define SIG_HDR_MAX 8192
#define SIG_ENTRIES_MAX 32
#define REPLAY_BUCKETS 4096
#define REPLAY_MARGIN_S 60

typedef struct {
    char name[EDGE_WH_SOURCE_MAX + 1];
    uint8_t keys[EDGE_WH_KEYS][KEY_MAX];
    size_t key_len[EDGE_WH_KEYS];
    size_t n_keys;
    int poisoned;
} wh_source;

typedef struct wh_seen {
    struct wh_seen *next;
    int64_t expires;
    int committed;
    uint8_t digest[16];
} wh_seen;

struct edge_wh {
    edge_wh_config cfg;
    wh_source sources[EDGE_WH_SOURCES];
    size_t n_sources;
    EVP_MAC *mac;
    pthread_mutex_t mu;
    wh_seen *buckets[REPLAY_BUCKETS];
    size_t n_seen;
};

static const char *const result_names[EDGE_WH_RESULT_COUNT] = {
    "ok",           "duplicate",     "in_progress", "no_secret", "malformed",
    "no_signature", "bad_signature", "stale",       "too_large", "busy"};

const char *edge_wh_result_name(edge_wh_result r)
{
    if ((int)r < 0 || r >= EDGE_WH_RESULT_COUNT)
        return "unknown";
    return result_names[r];
}

int edge_wh_http_status(edge_wh_result r)
{
    switch (r) {
    case EDGE_WH_OK:
    case EDGE_WH_DUPLICATE:
        return 200;
    case EDGE_WH_IN_PROGRESS:
        return 409;
    case EDGE_WH_MALFORMED:
        return 400;
    case EDGE_WH_TOO_LARGE:
        return 413;
    case EDGE_WH_BUSY:
        return 503;
    case EDGE_WH_NO_SECRET:
    case EDGE_WH_NO_SIGNATURE:
    case EDGE_WH_BAD_SIGNATURE:
    case EDGE_WH_STALE:
    default:
        return 401;
    }
}

static int64_t wh_now(const edge_wh *v)
{
    return v->cfg.clock ? v->cfg.clock(v->cfg.clock_ctx) : tw_wall_seconds();
}

edge_wh *edge_wh_create(const edge_wh_config *cfg)
{
    edge_wh *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    if (cfg)
        v->cfg = *cfg;
    if (!v->cfg.max_body)
        v->cfg.max_body = (size_t)256 * 1024;
    if (!v->cfg.replay_capacity)
        v->cfg.replay_capacity = 100000;
    v->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!v->mac) {
        free(v);
        return NULL;
    }
    pthread_mutex_init(&v->mu, NULL);
    return v;
}

void edge_wh_destroy(edge_wh *v)
{
    if (!v)
        return;
    OPENSSL_cleanse(v->sources, sizeof v->sources);
    for (int b = 0; b < REPLAY_BUCKETS; b++) {
        wh_seen *e = v->buckets[b];
        while (e) {
            wh_seen *n = e->next;
            free(e);
            e = n;
        }
    }
    EVP_MAC_free(v->mac);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

size_t edge_wh_max_body(const edge_wh *v)
{
    return v->cfg.max_body;
}

int edge_wh_valid_source(const char *name)
{
    size_t n = 0;
    if (!name)
        return 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
        if (n >= EDGE_WH_SOURCE_MAX)
            return 0;
    }
    return n > 0;
}

static wh_source *find_source(edge_wh *v, const char *name)
{
    for (size_t i = 0; i < v->n_sources; i++)
        if (strcmp(v->sources[i].name, name) == 0)
            return &v->sources[i];
    return NULL;
}

static wh_source *get_source(edge_wh *v, const char *name)
{
    wh_source *s = find_source(v, name);
    if (s || v->n_sources == EDGE_WH_SOURCES)
        return s;
    s = &v->sources[v->n_sources++];
    memset(s, 0, sizeof *s);
    memcpy(s->name, name, strlen(name) + 1);
    return s;
}

int edge_wh_source_enabled(edge_wh *v, const char *source)
{
    wh_source *s = source ? find_source(v, source) : NULL;
    return s && s->n_keys > 0 && !s->poisoned;
}

/* Standard base64 with optional '=' padding. Returns the decoded length or -1. */
static long b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        int v;
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad)
            return -1; /* data after padding */
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (pad > 2 || (pad && (n % 4) != 0) || bits >= 6)
        return -1;
    if (bits && (acc & ((1u << bits) - 1)) != 0)
        return -1; /* non-canonical trailing bits */
    return (long)o;
}

int edge_wh_add_secret(edge_wh *v, const char *source, const char *secret, char *err, size_t errcap)
{
    wh_source *s;
    const char *b64;
    uint8_t key[KEY_MAX];
    long n;
    if (!edge_wh_valid_source(source)) {
        snprintf(err, errcap, "webhook source name must match [a-z0-9_-]{1,32}");
        return -1;
    }
    s = get_source(v, source);
    if (!s) {
        snprintf(err, errcap, "more than %d webhook sources", EDGE_WH_SOURCES);
        return -1;
    }
    b64 = secret ? secret : "";
    if (strncmp(b64, "whsec_", 6) == 0)
        b64 += 6;
    if (!*b64) {
        s->poisoned = 1;
        snprintf(err, errcap, "webhook source '%s': empty secret (source refuses every request)",
                 source);
        return -1;
    }
    n = b64_decode(b64, strlen(b64), key, sizeof key);
    if (n < 0) {
        s->poisoned = 1;
        snprintf(err, errcap, "webhook source '%s': secret is not whsec_ + base64", source);
        goto fail;
    }
    if (n < KEY_MIN) {
        s->poisoned = 1;
        snprintf(err, errcap, "webhook source '%s': secret decodes to fewer than %d bytes", source,
                 KEY_MIN);
        goto fail;
    }
    if (s->n_keys == EDGE_WH_KEYS) {
        s->poisoned = 1;
        snprintf(err, errcap, "webhook source '%s': more than %d secrets", source, EDGE_WH_KEYS);
        goto fail;
    }
    memcpy(s->keys[s->n_keys], key, (size_t)n);
    s->key_len[s->n_keys++] = (size_t)n;
    OPENSSL_cleanse(key, sizeof key);
    return 0;
fail:
    OPENSSL_cleanse(key, sizeof key);
    return -1;
}

static void err_append(char *err, size_t errcap, size_t *used, const char *line)
{
    if (!err || !errcap || *used >= errcap - 1)
        return;
    int n = snprintf(err + *used, errcap - *used, "%s%s", *used ? "\n" : "", line);
    if (n > 0)
        *used += (size_t)n < errcap - *used ? (size_t)n : errcap - *used - 1;
}

int edge_wh_load_env(edge_wh *v, const char *spec, char *err, size_t errcap)
{
    int bad = 0, entry = 0;
    size_t used = 0;
    const char *p = spec;
    char line[256];
    char name[EDGE_WH_SOURCE_MAX + 1];
    if (err && errcap)
        err[0] = '\0';
    if (!spec || !*spec)
        return 0;
    while (p) {
        const char *end = strchr(p, ','), *colon;
        size_t len;
        if (!end)
            end = p + strlen(p);
        entry++;
        while (p < end && *p == ' ')
            p++;
        len = (size_t)(end - p);
        while (len && p[len - 1] == ' ')
            len--;
        colon = memchr(p, ':', len);
        if (len == 0) {
            snprintf(line, sizeof line, "entry %d: empty (want source:whsec_...)", entry);
            err_append(err, errcap, &used, line);
            bad++;
        } else if (!colon) {
            snprintf(line, sizeof line, "entry %d: missing ':' (want source:whsec_...)", entry);
            err_append(err, errcap, &used, line);
            bad++;
        } else {
            size_t nl = (size_t)(colon - p);
            name[0] = '\0';
            if (nl <= EDGE_WH_SOURCE_MAX) {
                memcpy(name, p, nl);
                name[nl] = '\0';
            }
            wh_source *dup = edge_wh_valid_source(name) ? find_source(v, name) : NULL;
            if (!edge_wh_valid_source(name)) {
                snprintf(line, sizeof line, "entry %d: source name must match [a-z0-9_-]{1,32}",
                         entry);
                err_append(err, errcap, &used, line);
                bad++;
            } else if (dup) {
                dup->poisoned = 1;
                snprintf(line, sizeof line,
                         "entry %d (source '%s'): source listed twice; put its secrets in one "
                         "entry separated by spaces (source refused)",
                         entry, name);
                err_append(err, errcap, &used, line);
                bad++;
            } else {
                const char *q = colon + 1, *qend = p + len;
                int nsec = 0, entry_bad = 0;
                while (q < qend) {
                    const char *sp = memchr(q, ' ', (size_t)(qend - q));
                    const char *send = sp ? sp : qend;
                    if (send > q) {
                        char sec[400], why[200];
                        size_t sl = (size_t)(send - q);
                        nsec++;
                        if (sl >= sizeof sec) {
                            wh_source *src = get_source(v, name);
                            if (src)
                                src->poisoned = 1;
                            snprintf(line, sizeof line,
                                     "entry %d (source '%s'): secret %d is too long", entry, name,
                                     nsec);
                            err_append(err, errcap, &used, line);
                            entry_bad = 1;
                        } else {
                            memcpy(sec, q, sl);
                            sec[sl] = '\0';
                            if (edge_wh_add_secret(v, name, sec, why, sizeof why) != 0) {
                                snprintf(line, sizeof line, "entry %d (secret %d): %s", entry, nsec,
                                         why);
                                err_append(err, errcap, &used, line);
                                entry_bad = 1;
                            }
                            OPENSSL_cleanse(sec, sizeof sec);
                        }
                    }
                    q = send + (sp ? 1 : 0);
                }
                if (nsec == 0) {
                    char why[200];
                    edge_wh_add_secret(v, name, "", why, sizeof why);
                    snprintf(line, sizeof line, "entry %d: %s", entry, why);
                    err_append(err, errcap, &used, line);
                    entry_bad = 1;
                }
                bad += entry_bad;
            }
        }
        p = *end ? end + 1 : NULL;
    }
    return bad;
}

/* ---- verification --------------------------------------------------------------------- */

static void id_digest(const char *source, const char *id, size_t id_len, uint8_t out[16])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    memset(out, 0, 16);
    if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(c, source, strlen(source) + 1) == 1 &&
        EVP_DigestUpdate(c, id, id_len) == 1 && EVP_DigestFinal_ex(c, md, &n) == 1)
        memcpy(out, md, 16);
    EVP_MD_CTX_free(c);
}

static int hmac_sha256(edge_wh *v, const uint8_t *key, size_t klen, const edge_wh_headers *h,
                       const uint8_t *body, size_t blen, uint8_t out[32])
{
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(v->mac);
    OSSL_PARAM params[2];
    size_t olen = 0;
    int rc = -1;
    char digest[] = "SHA256";
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!c || EVP_MAC_init(c, key, klen, params) != 1)
        goto out;
    if (EVP_MAC_update(c, (const uint8_t *)h->id, h->id_len) != 1 ||
        EVP_MAC_update(c, (const uint8_t *)".", 1) != 1 ||
        EVP_MAC_update(c, (const uint8_t *)h->timestamp, h->timestamp_len) != 1 ||
        EVP_MAC_update(c, (const uint8_t *)".", 1) != 1 ||
        (blen && EVP_MAC_update(c, body, blen) != 1) || EVP_MAC_final(c, out, &olen, 32) != 1 ||
        olen != 32)
        goto out;
    rc = 0;
out:
    EVP_MAC_CTX_free(c);
    return rc;
}

static int parse_ts(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    if (n == 0 || n > 18)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int valid_id(const char *s, size_t n)
{
    if (!s || n == 0 || n > EDGE_WH_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* Syntax of the signature header: 1..32 space-separated "version,value" entries. */
static int sig_header_ok(const char *s, size_t n)
{
    size_t entries = 0, i = 0;
    if (n == 0 || n > SIG_HDR_MAX)
        return 0;
    while (i < n) {
        size_t start;
        while (i < n && s[i] == ' ')
            i++;
        if (i == n)
            break;
        start = i;
        while (i < n && s[i] != ' ')
            i++;
        const char *comma = memchr(s + start, ',', i - start);
        if (!comma || comma == s + start)
            return 0;
        if (++entries > SIG_ENTRIES_MAX)
            return 0;
    }
    return entries > 0;
}

static int signature_matches(edge_wh *v, const wh_source *src, const edge_wh_headers *h,
                             const uint8_t *body, size_t blen)
{
    uint8_t mac[EDGE_WH_KEYS][32];
    int have[EDGE_WH_KEYS] = {0};
    int match = 0;
    const char *s = h->signature;
    size_t n = h->signature_len, i = 0;
    for (size_t k = 0; k < src->n_keys; k++)
        have[k] = hmac_sha256(v, src->keys[k], src->key_len[k], h, body, blen, mac[k]) == 0;
    while (i < n) {
        size_t start;
        uint8_t got[48];
        long glen;
        while (i < n && s[i] == ' ')
            i++;
        start = i;
        while (i < n && s[i] != ' ')
            i++;
        if (i == start)
            continue;
        if (i - start < 3 || memcmp(s + start, "v1,", 3) != 0)
            continue; /* other versions (v1a = ed25519, future ones) are not ours */
        glen = b64_decode(s + start + 3, i - start - 3, got, sizeof got);
        if (glen != 32)
            continue;
        for (size_t k = 0; k < src->n_keys; k++)
            if (have[k] && CRYPTO_memcmp(got, mac[k], 32) == 0)
                match = 1;
    }
    OPENSSL_cleanse(mac, sizeof mac);
    return match;
}

static wh_seen **seen_find(edge_wh *v, const uint8_t d[16])
{
    wh_seen **pp = &v->buckets[((unsigned)d[0] << 8 | d[1]) % REPLAY_BUCKETS];
    while (*pp && memcmp((*pp)->digest, d, 16) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void seen_sweep(edge_wh *v, int64_t now)
{
    for (int b = 0; b < REPLAY_BUCKETS; b++) {
        wh_seen **pp = &v->buckets[b];
        while (*pp) {
            if ((*pp)->expires < now) {
                wh_seen *e = *pp;
                *pp = e->next;
                free(e);
                v->n_seen--;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

edge_wh_result edge_wh_verify(edge_wh *v, const char *source, const edge_wh_headers *h,
                              const uint8_t *body, size_t body_len)
{
    wh_source *src = source ? find_source(v, source) : NULL;
    int64_t ts = 0, now;
    uint8_t d[16];
    edge_wh_result res;
    if (!src || src->n_keys == 0 || src->poisoned)
        return EDGE_WH_NO_SECRET;
    if (body_len > v->cfg.max_body)
        return EDGE_WH_TOO_LARGE;
    if (!h->id || !valid_id(h->id, h->id_len))
        return EDGE_WH_MALFORMED;
    if (!h->timestamp || parse_ts(h->timestamp, h->timestamp_len, &ts) != 0)
        return EDGE_WH_MALFORMED;
    if (!h->signature)
        return EDGE_WH_NO_SIGNATURE;
    if (!sig_header_ok(h->signature, h->signature_len))
        return EDGE_WH_MALFORMED;
    now = wh_now(v);
    if (now - ts > EDGE_WH_TOLERANCE_S || ts - now > EDGE_WH_TOLERANCE_S)
        return EDGE_WH_STALE;
    if (!signature_matches(v, src, h, body, body_len))
        return EDGE_WH_BAD_SIGNATURE;

    id_digest(source, h->id, h->id_len, d);
    pthread_mutex_lock(&v->mu);
    wh_seen **pp = seen_find(v, d);
    if (*pp && (*pp)->expires >= now) {
        res = (*pp)->committed ? EDGE_WH_DUPLICATE : EDGE_WH_IN_PROGRESS;
        goto out;
    }
    if (*pp) { /* expired leftover: reuse */
        (*pp)->expires = ts + EDGE_WH_TOLERANCE_S + REPLAY_MARGIN_S;
        (*pp)->committed = 0;
        res = EDGE_WH_OK;
        goto out;
    }
    if (v->n_seen >= v->cfg.replay_capacity) {
        seen_sweep(v, now);
        if (v->n_seen >= v->cfg.replay_capacity) {
            res = EDGE_WH_BUSY;
            goto out;
        }
        pp = seen_find(v, d);
    }
    wh_seen *e = calloc(1, sizeof *e);
    if (!e) {
        res = EDGE_WH_BUSY;
        goto out;
    }
    memcpy(e->digest, d, 16);
    e->expires = ts + EDGE_WH_TOLERANCE_S + REPLAY_MARGIN_S;
    *pp = e;
    v->n_seen++;
    res = EDGE_WH_OK;
out:
    pthread_mutex_unlock(&v->mu);
    return res;
}

void edge_wh_commit(edge_wh *v, const char *source, const char *id, size_t id_len)
{
    uint8_t d[16];
    id_digest(source, id, id_len, d);
    pthread_mutex_lock(&v->mu);
    wh_seen **pp = seen_find(v, d);
    if (*pp)
        (*pp)->committed = 1;
    pthread_mutex_unlock(&v->mu);
}

void edge_wh_release(edge_wh *v, const char *source, const char *id, size_t id_len)
{
    uint8_t d[16];
    id_digest(source, id, id_len, d);
    pthread_mutex_lock(&v->mu);
    wh_seen **pp = seen_find(v, d);
    if (*pp && !(*pp)->committed) {
        wh_seen *e = *pp;
        *pp = e->next;
        free(e);
        v->n_seen--;
    }
    pthread_mutex_unlock(&v->mu);
}
