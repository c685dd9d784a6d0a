/*
 * Signed audit checkpoints and the chain walk they are checked against (see checkpoint.h for
 * the signed form and the key format). Private keys live in OpenSSL EVP_PKEY objects only;
 * the decoded seed is wiped as soon as the key object holds it.
 */
#include "checkpoint.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "core/log.h"

struct audit_signer {
    size_t n;
    struct {
        uint32_t version;
        EVP_PKEY *key;
    } keys[AUDIT_MAX_KEYS]; /* newest first */
};

static const char DOMAIN[] = "tradewink-audit-checkpoint-v1";

void audit_signer_destroy(audit_signer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        EVP_PKEY_free(s->keys[i].key);
    free(s);
}

/* Strict standard base64 of exactly 32 bytes (44 characters, one '='). */
static int decode_seed(const char *b64, size_t len, unsigned char out[32])
{
    unsigned char buf[36];
    if (len != 44 || b64[43] != '=' || b64[42] == '=')
        return -1;
    for (size_t i = 0; i < 43; i++) {
        char ch = b64[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/'))
            return -1;
    }
    int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, 44);
    int rc = n == 33 ? 0 : -1; /* EVP_DecodeBlock counts the padding byte */
    if (rc == 0)
        memcpy(out, buf, 32);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

int audit_signer_parse(const char *text, audit_signer **out, char *why, size_t why_cap)
{
    int rc = -1;
    audit_signer *s = NULL;
    unsigned char seed[32];
    *out = NULL;
    if (!text || !*text)
        return 0;
    s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(why, why_cap, "out of memory");
        goto out;
    }
    for (const char *p = text; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        char *num_end = NULL;
        long v = (len > 1 && p[0] == 'v') ? strtol(p + 1, &num_end, 10) : 0;
        if (!colon || num_end != colon || v < 1 || v > 1000000) {
            snprintf(why, why_cap, "entry %zu: expected vN:BASE64 with N >= 1", s->n + 1);
            goto out;
        }
        if (s->n == AUDIT_MAX_KEYS) {
            snprintf(why, why_cap, "more than %d keys", AUDIT_MAX_KEYS);
            goto out;
        }
        for (size_t i = 0; i < s->n; i++)
            if (s->keys[i].version == (uint32_t)v) {
                snprintf(why, why_cap, "version v%ld listed twice", v);
                goto out;
            }
        if (decode_seed(colon + 1, len - (size_t)(colon + 1 - p), seed) != 0) {
            snprintf(why, why_cap, "v%ld: not the base64 of a 32-byte Ed25519 private key", v);
            goto out;
        }
        EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
        OPENSSL_cleanse(seed, sizeof(seed));
        if (!k) {
            snprintf(why, why_cap, "v%ld: OpenSSL refused the Ed25519 key", v);
            goto out;
        }
        s->keys[s->n].version = (uint32_t)v;
        s->keys[s->n].key = k;
        s->n++;
        p = end ? end + 1 : p + len;
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    OPENSSL_cleanse(seed, sizeof(seed));
    audit_signer_destroy(s);
    return rc;
}

static size_t put_field(unsigned char *buf, size_t at, const void *data, size_t len)
{
    for (int i = 0; i < 8; i++)
        buf[at + (size_t)i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    memcpy(buf + at + 8, data, len);
    return at + 8 + len;
}

static size_t put_int(unsigned char *buf, size_t at, int64_t v)
{
    char s[24];
    int n = snprintf(s, sizeof(s), "%lld", (long long)v);
    return put_field(buf, at, s, (size_t)n);
}

size_t audit_checkpoint_message(const audit_checkpoint *cp, unsigned char buf[AUDIT_CP_MSG_MAX])
{
    size_t at = put_field(buf, 0, DOMAIN, sizeof(DOMAIN) - 1);
    at = put_int(buf, at, cp->user_id);
    at = put_int(buf, at, cp->seq);
    at = put_field(buf, at, cp->hash, STORE_HASH_LEN);
    at = put_int(buf, at, cp->time_us);
    return put_int(buf, at, (int64_t)cp->key_version);
}

int audit_checkpoint_sign(const audit_signer *s, audit_checkpoint *cp)
{
    unsigned char msg[AUDIT_CP_MSG_MAX];
    size_t siglen = AUDIT_SIG_LEN;
    int rc = -1;
    if (!s || s->n == 0)
        return -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return -1;
    cp->key_version = s->keys[0].version;
    size_t n = audit_checkpoint_message(cp, msg);
    if (EVP_DigestSignInit(md, NULL, NULL, NULL, s->keys[0].key) == 1 &&
        EVP_DigestSign(md, cp->sig, &siglen, msg, n) == 1 && siglen == AUDIT_SIG_LEN)
        rc = 0;
    EVP_MD_CTX_free(md);
    return rc;
}

audit_cp_sig audit_checkpoint_check(const audit_signer *s, const audit_checkpoint *cp)
{
    unsigned char msg[AUDIT_CP_MSG_MAX];
    EVP_PKEY *key = NULL;
    for (size_t i = 0; s && i < s->n; i++)
        if (s->keys[i].version == cp->key_version)
            key = s->keys[i].key;
    if (!key)
        return AUDIT_CP_SIG_UNKNOWN_KEY;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return AUDIT_CP_SIG_BAD;
    size_t n = audit_checkpoint_message(cp, msg);
    int ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestVerify(md, cp->sig, AUDIT_SIG_LEN, msg, n) == 1;
    EVP_MD_CTX_free(md);
    return ok ? AUDIT_CP_SIG_OK : AUDIT_CP_SIG_BAD;
}

int audit_signer_print_public(const audit_signer *s, FILE *out)
{
    for (size_t i = 0; s && i < s->n; i++) {
        unsigned char pub[AUDIT_PUB_LEN];
        size_t len = sizeof(pub);
        char b64[48];
        if (EVP_PKEY_get_raw_public_key(s->keys[i].key, pub, &len) != 1 || len != AUDIT_PUB_LEN)
            return -1;
        EVP_EncodeBlock((unsigned char *)b64, pub, (int)len);
        if (fprintf(out, "v%u:%s\n", (unsigned)s->keys[i].version, b64) < 0)
            return -1;
    }
    return 0;
}

/* The walk from sequence 1 (anchor NULL), or from a checkpoint we signed: its event must still
 * be there with the signed hash (which commits to everything before it), and is not linked to
 * what precedes it; every later event is checked as in a full walk. */
static store_rc walk(store_conn *c, int64_t user_id, const audit_checkpoint *anchor, int64_t at,
                     audit_walk_result *out)
{
    unsigned char prev[STORE_HASH_LEN] = {0};
    int64_t expect_seq = anchor ? anchor->seq : 1;
    store_audit_filter f = {.after_seq = expect_seq - 1, .limit = 500};
    memset(out, 0, sizeof(*out));
    for (;;) {
        store_audit_event *evs = NULL;
        size_t n = 0;
        store_rc rc = store_audit_list(c, user_id, &f, &evs, &n);
        if (rc != STORE_OK)
            return rc;
        for (size_t i = 0; i < n; i++) {
            const store_audit_event *e = &evs[i];
            if (out->first_broken == 0) {
                unsigned char h[STORE_HASH_LEN];
                audit_hash(e, h);
                bool linked = anchor && e->seq == anchor->seq
                                  ? memcmp(e->hash, anchor->hash, STORE_HASH_LEN) == 0
                                  : memcmp(e->prev_hash, prev, STORE_HASH_LEN) == 0;
                if (e->seq != expect_seq) /* a gap: event expect_seq was deleted */
                    out->first_broken = expect_seq;
                else if (!linked || memcmp(e->hash, h, STORE_HASH_LEN) != 0)
                    out->first_broken = e->seq;
                out->checked++;
            }
            /* Past a break keep reading: the head and the checkpoint's event still count. */
            if (e->seq == at) {
                out->at_found = true;
                memcpy(out->at_hash, e->hash, STORE_HASH_LEN);
            }
            memcpy(prev, e->hash, STORE_HASH_LEN);
            expect_seq = e->seq + 1;
            out->head_seq = e->seq;
            memcpy(out->head_hash, e->hash, STORE_HASH_LEN);
        }
        if (n > 0)
            f.after_seq = evs[n - 1].seq;
        free(evs);
        if (n < (size_t)f.limit)
            break;
    }
    if (anchor && out->first_broken == 0 && out->head_seq < anchor->seq)
        out->first_broken = anchor->seq; /* truncated below what we signed */
    return STORE_OK;
}

store_rc audit_walk(store_conn *c, int64_t user_id, int64_t at, audit_walk_result *out)
{
    return walk(c, user_id, NULL, at, out);
}

/* One log line per checkpoint: the external log store keeps what the database may lose. */
static void log_checkpoint(const audit_checkpoint *cp)
{
    char hash[2 * STORE_HASH_LEN + 1], sig[4 * ((AUDIT_SIG_LEN + 2) / 3) + 1];
    for (size_t i = 0; i < STORE_HASH_LEN; i++)
        snprintf(hash + 2 * i, 3, "%02x", cp->hash[i]);
    EVP_EncodeBlock((unsigned char *)sig, cp->sig, AUDIT_SIG_LEN);
    tw_logline l;
    tw_log_begin(&l, TW_LOG_INFO, "audit_checkpoint");
    tw_log_int(&l, "user_id", cp->user_id);
    tw_log_int(&l, "sequence", cp->seq);
    tw_log_str(&l, "hash_hex", hash);
    tw_log_int(&l, "time_us", cp->time_us);
    tw_log_uint(&l, "key_version", cp->key_version);
    tw_log_str(&l, "ed25519_b64", sig);
    tw_log_end(&l);
}

store_rc audit_checkpoint_create(store_conn *c, const audit_signer *s, int64_t user_id,
                                 int64_t now_us, audit_checkpoint *out, audit_cp_state *state)
{
    audit_walk_result w;
    memset(out, 0, sizeof(*out));
    *state = AUDIT_CP_NO_KEY;
    if (!s)
        return STORE_OK;
    /* From the newest checkpoint we signed: the walk reads only what came after it, and a
     * chain rewritten under it (hashes recomputed, so a full walk passes) is not signed. */
    audit_checkpoint last;
    const audit_checkpoint *anchor = NULL;
    store_rc rc = store_audit_checkpoint_latest(c, user_id, &last);
    if (rc == STORE_OK) {
        switch (audit_checkpoint_check(s, &last)) {
        case AUDIT_CP_SIG_OK:
            anchor = &last;
            break;
        case AUDIT_CP_SIG_BAD: /* a row we never signed: the table was written around us */
            tw_logf(TW_LOG_ERROR, "audit_checkpoint",
                    "chain %lld: stored checkpoint at sequence %lld has a bad signature",
                    (long long)user_id, (long long)last.seq);
            *state = AUDIT_CP_BROKEN;
            return STORE_OK;
        case AUDIT_CP_SIG_UNKNOWN_KEY: /* signed by a retired key: walk from the start */
            break;
        }
    } else if (rc != STORE_NOT_FOUND) {
        return rc;
    }
    if ((rc = walk(c, user_id, anchor, 0, &w)) != STORE_OK)
        return rc;
    *state = w.first_broken ? AUDIT_CP_BROKEN : w.head_seq == 0 ? AUDIT_CP_EMPTY : AUDIT_CP_SIGNED;
    if (*state != AUDIT_CP_SIGNED)
        return STORE_OK;
    out->user_id = user_id;
    out->seq = w.head_seq;
    memcpy(out->hash, w.head_hash, STORE_HASH_LEN);
    out->time_us = now_us;
    if (audit_checkpoint_sign(s, out) != 0) {
        *state = AUDIT_CP_NO_KEY;
        return STORE_OK;
    }
    rc = store_audit_checkpoint_put(c, out);
    if (rc == STORE_OK)
        log_checkpoint(out);
    return rc;
}
