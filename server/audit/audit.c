/*
 * Audit writer and chain verification (see audit.h for the hash definition). Details pass
 * through the vault's JSON redaction before they are hashed and stored, so a secret that slips
 * into a details object is masked in the permanent record too.
 */
#include "audit.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vault/vault.h"

static void put_field(EVP_MD_CTX *md, const void *data, size_t len)
{
    unsigned char be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    EVP_DigestUpdate(md, be, 8);
    EVP_DigestUpdate(md, data, len);
}

static void put_int(EVP_MD_CTX *md, int64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%lld", (long long)v);
    put_field(md, buf, (size_t)n);
}

static void put_str(EVP_MD_CTX *md, const char *s)
{
    put_field(md, s, strlen(s));
}

void audit_hash(const store_audit_event *ev, unsigned char out[STORE_HASH_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        /* Cannot hash: return an all-ones hash that never verifies rather than crash. */
        memset(out, 0xff, STORE_HASH_LEN);
        EVP_MD_CTX_free(md);
        return;
    }
    EVP_DigestUpdate(md, ev->prev_hash, STORE_HASH_LEN);
    put_int(md, ev->user_id);
    put_int(md, ev->seq);
    put_int(md, ev->time_us);
    put_str(md, ev->actor);
    put_str(md, ev->actor_id);
    put_str(md, ev->action);
    put_str(md, ev->object_id);
    put_str(md, ev->outcome);
    put_str(md, ev->details);
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
}

static int copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src ? src : "");
    if (n >= cap)
        return -1;
    memcpy(dst, src ? src : "", n + 1);
    return 0;
}

store_rc audit_append(store_conn *c, const audit_entry *e, int64_t now_us, store_audit_event *out)
{
    store_audit_event *ev = calloc(1, sizeof(*ev));
    char *clean = NULL;
    store_rc rc = STORE_INVALID;
    if (!ev)
        return STORE_NOMEM;
    const char *details = e->details ? e->details : "{}";
    if (vault_redact_json_line(details, strlen(details), &clean) != VAULT_OK) {
        rc = STORE_INVALID;
        goto out;
    }
    ev->user_id = e->user_id;
    ev->time_us = now_us;
    if (copy(ev->actor, sizeof(ev->actor), e->actor) != 0 ||
        copy(ev->actor_id, sizeof(ev->actor_id), e->actor_id) != 0 ||
        copy(ev->action, sizeof(ev->action), e->action) != 0 ||
        copy(ev->object_id, sizeof(ev->object_id), e->object_id) != 0 ||
        copy(ev->outcome, sizeof(ev->outcome), e->outcome) != 0 ||
        copy(ev->details, sizeof(ev->details), clean) != 0)
        goto out;
    int64_t last_seq;
    rc = store_audit_last(c, e->user_id, &last_seq, ev->prev_hash);
    if (rc != STORE_OK)
        goto out;
    ev->seq = last_seq + 1;
    audit_hash(ev, ev->hash);
    rc = store_audit_append(c, ev);
    if (rc == STORE_OK && out)
        *out = *ev;
out:
    free(clean);
    free(ev);
    return rc;
}

store_rc audit_verify_chain(store_conn *c, int64_t user_id, int64_t *checked, int64_t *first_broken)
{
    unsigned char prev[STORE_HASH_LEN] = {0};
    int64_t expect_seq = 1;
    store_audit_filter f = {.after_seq = 0, .limit = 500};
    *checked = 0;
    *first_broken = 0;
    for (;;) {
        store_audit_event *evs = NULL;
        size_t n = 0;
        store_rc rc = store_audit_list(c, user_id, &f, &evs, &n);
        if (rc != STORE_OK)
            return rc;
        for (size_t i = 0; i < n && *first_broken == 0; i++) {
            unsigned char h[STORE_HASH_LEN];
            audit_hash(&evs[i], h);
            if (evs[i].seq != expect_seq) {
                /* A gap: the event expect_seq was deleted. */
                *first_broken = expect_seq;
            } else if (memcmp(evs[i].prev_hash, prev, STORE_HASH_LEN) != 0 ||
                       memcmp(evs[i].hash, h, STORE_HASH_LEN) != 0) {
                *first_broken = evs[i].seq;
            }
            memcpy(prev, evs[i].hash, STORE_HASH_LEN);
            expect_seq = evs[i].seq + 1;
            (*checked)++;
        }
        if (n > 0)
            f.after_seq = evs[n - 1].seq;
        free(evs);
        if (n < (size_t)f.limit || *first_broken)
            return STORE_OK;
    }
}
