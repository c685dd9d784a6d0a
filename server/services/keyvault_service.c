/*
 * tradewink.v1.KeyVault. A broker credential (key id + secret) is encrypted as one Fernet token
 * under the user's derived key the moment it is decoded: the decoded protobuf fields are wiped,
 * the plaintext lives only in a vault_secret, and the store, replies, logs and audit details
 * only ever see the token or a mask ("PK…9XQ2" of the key id). Plaintext layout inside the
 * token: key_id "\n" secret. Every change is audited in the same transaction.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "services.h"
#include "core/log.h"
#include "svc.h"
#include "vault/vault.h"

#define KEY_ID_MAX 128
#define SECRET_MAX 512
#define PAGE_DEFAULT 50
#define PAGE_MAX 500
#define LABEL_MAX 64
#define REWRAP_DEFAULT 100
#define REWRAP_MAX 1000

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* keyvault.proto: a label is 0-64 printable characters (code points; control characters
 * refused). */
static int label_ok(const char *s)
{
    long n = svc_printable_chars(s);
    return n >= 0 && n <= LABEL_MAX;
}

/* Whether the user already has a key labelled label (non-empty labels are unique per user).
 * Runs inside the user's transaction, so two concurrent puts cannot both pass. */
static store_rc label_taken(store_conn *conn, int64_t uid, const char *label, int *taken)
{
    store_broker_key *keys = NULL;
    size_t n = 0;
    *taken = 0;
    if (!*label)
        return STORE_OK;
    store_rc rc = store_key_list(conn, uid, &keys, &n);
    if (rc != STORE_OK)
        return rc;
    for (size_t i = 0; i < n && !*taken; i++)
        *taken = strcmp(keys[i].label, label) == 0;
    if (keys) {
        memset(keys, 0, n * sizeof(*keys));
        free(keys);
    }
    return STORE_OK;
}

static const char *env_word(Tradewink__V1__TradingMode m)
{
    return m == TRADEWINK__V1__TRADING_MODE__TRADING_MODE_LIVE ? "live" : "paper";
}

static Tradewink__V1__BrokerKey *key_to_wire(tw_call *c, const store_broker_key *k)
{
    tw_arena *a = tw_call_arena(c);
    Tradewink__V1__BrokerKey *w = tw_arena_alloc(a, sizeof(*w));
    if (!w)
        return NULL;
    tradewink__v1__broker_key__init(w);
    w->id = svc_id_str(c, k->id);
    w->user_id = svc_id_str(c, k->user_id);
    w->broker = tw_arena_strdup(a, k->broker);
    w->label = tw_arena_strdup(a, k->label);
    w->environment = strcmp(k->environment, "live") == 0
                         ? TRADEWINK__V1__TRADING_MODE__TRADING_MODE_LIVE
                         : TRADEWINK__V1__TRADING_MODE__TRADING_MODE_PAPER;
    w->key_id_masked = tw_arena_strdup(a, k->key_id_mask);
    w->created_at = svc_timestamp(c, k->created_at_us / 1000000);
    if (k->last_used_at_us)
        w->last_used_at = svc_timestamp(c, k->last_used_at_us / 1000000);
    w->master_key_version = (uint32_t)k->master_version;
    if (!w->id || !w->user_id || !w->broker || !w->label || !w->key_id_masked)
        return NULL;
    return w;
}

static char *details_json(tw_call *c, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(obj);
    if (!s)
        return NULL;
    char *out = tw_arena_strdup(tw_call_arena(c), s);
    free(s);
    return out;
}

/* Plaintext "key_id\nsecret" in a secret buffer; wipes both request fields. */
static tw_status take_credential(char *key_id, char *secret, vault_secret **out)
{
    size_t kl = strlen(key_id), sl = strlen(secret);
    tw_status st = tw_ok();
    char *buf = malloc(kl + 1 + sl);
    if (!buf) {
        st = tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    } else {
        memcpy(buf, key_id, kl);
        buf[kl] = '\n';
        memcpy(buf + kl + 1, secret, sl);
        if (vault_secret_take(buf, kl + 1 + sl, out) != VAULT_OK)
            st = tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
        free(buf);
    }
    memset(secret, 0, sl);
    memset(key_id, 0, kl);
    return st;
}

/* A sealed secret opened for the caller, broker, key id, environment and version it names
 * (*out malloc'd, NUL-terminated; the caller wipes and frees it), or *out = NULL for a plain
 * secret, which TW_REQUIRE_SEALED_KEYS refuses. */
static tw_status unseal_secret(tw_call *c, const Tradewink__V1__PutBrokerKeyRequest *req,
                               char **out)
{
    srv_app *app = tw_call_app(c);
    *out = NULL;
    if (req->sealed_secret.len == 0) {
        if (app->cfg->require_sealed_keys)
            return tw_err(TW_FAILED_PRECONDITION,
                          "this server accepts only sealed secrets (sealed_secret)");
        return tw_ok();
    }
    if (*req->secret)
        return tw_err(TW_INVALID_ARGUMENT, "secret and sealed_secret are exclusive");
    if (!app->sealer)
        return tw_err(TW_FAILED_PRECONDITION, "this server has no sealing key");
    const tw_principal *p = tw_call_principal(c);
    vault_seal_binding b = {.user = p->subject ? p->subject : "",
                            .broker = req->broker,
                            .key_id = req->key_id,
                            .environment = env_word(req->environment)};
    vault_rc vr = vault_unseal(app->sealer, req->sealing_key_version, req->sealed_secret.data,
                               req->sealed_secret.len, &b, tw_wall_seconds(), out);
    if (vr == VAULT_ERR_UNKNOWN_VERSION)
        return tw_err(TW_FAILED_PRECONDITION,
                      "sealing_key_version: not accepted (unknown, or its grace period ended)");
    if (vr == VAULT_ERR_NOMEM)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    if (vr != VAULT_OK)
        return tw_err(TW_INVALID_ARGUMENT,
                      "sealed_secret: does not open for this user, broker, key id, environment "
                      "and version");
    return tw_ok();
}

tw_status keyvault_sealing_key(tw_call *c, const Tradewink__V1__GetSealingKeyRequest *req,
                               Tradewink__V1__GetSealingKeyResponse *resp)
{
    srv_app *app = tw_call_app(c);
    uint32_t version;
    unsigned char *pub = tw_arena_alloc(tw_call_arena(c), VAULT_SEAL_PUB_LEN);
    (void)req;
    if (!pub)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    if (vault_sealer_current(app->sealer, &version, pub) != 0)
        return tw_err(TW_FAILED_PRECONDITION, "this server has no sealing key");
    resp->version = version;
    resp->public_key.data = pub;
    resp->public_key.len = VAULT_SEAL_PUB_LEN;
    resp->algorithm = (char *)"ECDH-P256+HKDF-SHA256+A256GCM/tradewink-seal-v1";
    return tw_ok();
}

tw_status keyvault_put(tw_call *c, const Tradewink__V1__PutBrokerKeyRequest *req,
                       Tradewink__V1__PutBrokerKeyResponse *resp)
{
    srv_app *app = tw_call_app(c);
    /* The decoded request lives in this call's arena; wiping its secret fields is ours to do. */
    char *key_id = req->key_id, *secret = req->secret;
    char *opened = NULL; /* the unsealed secret, when it came sealed */
    vault_secret *cred = NULL;
    char *token = NULL;
    store_broker_key *k = NULL;
    store_conn *conn;
    tw_status st;

    /* Every bad field at once (BadRequest); the secret's value never appears in a message. */
    tw_violations bad;
    tw_violations_init(&bad, tw_call_arena(c));
    if (strcmp(req->broker, "sim") != 0 && strcmp(req->broker, "alpaca") != 0)
        tw_violation_add(&bad, "broker", "must be sim or alpaca");
    if (req->environment != TRADEWINK__V1__TRADING_MODE__TRADING_MODE_PAPER &&
        req->environment != TRADEWINK__V1__TRADING_MODE__TRADING_MODE_LIVE)
        tw_violation_add(&bad, "environment", "must be PAPER or LIVE");
    if (!label_ok(req->label))
        tw_violation_add(&bad, "label", "at most 64 printable characters");
    if (*key_id == '\0' || strlen(key_id) > KEY_ID_MAX || !printable(key_id))
        tw_violation_add(&bad, "key_id", "1..128 printable ASCII characters");
    /* A plain secret is checked with the rest; a sealed one once it is opened (only then is
     * there a secret to check, and only a well-formed request is worth opening). */
    bool plain = req->sealed_secret.len == 0;
    if (plain && (*secret == '\0' || strlen(secret) > SECRET_MAX || !printable(secret)))
        tw_violation_add(&bad, "secret", "1..512 printable ASCII characters");
    st = tw_violations_status(&bad);
    if (st.code == TW_OK && (st = unseal_secret(c, req, &opened)).code == TW_OK && opened) {
        secret = opened;
        if (*secret == '\0' || strlen(secret) > SECRET_MAX || !printable(secret))
            st = tw_err(TW_INVALID_ARGUMENT, "secret: 1..512 printable ASCII characters");
    }
    char mask[VAULT_MASK_MAX];
    vault_mask(key_id, strlen(key_id), mask);
    tw_status taken = take_credential(key_id, secret, &cred);
    if (st.code != TW_OK || (st = taken).code != TW_OK)
        goto out;

    if ((st = svc_conn(c, &conn)).code != TW_OK)
        goto out;
    store_user u;
    store_rc rc = store_user_get(conn, svc_user_id(c), &u);
    if (rc != STORE_OK) {
        st = svc_store_status(c, rc, "user");
        goto out;
    }
    char uid[32];
    snprintf(uid, sizeof(uid), "%lld", (long long)u.id);
    int version = 0;
    vault_rc vr =
        vault_encrypt_secret(app->vault, uid, u.salt, sizeof(u.salt), cred, &token, &version);
    if (vr != VAULT_OK) {
        st = vr == VAULT_ERR_BUSY ? tw_err(TW_UNAVAILABLE, "key derivation busy, retry later")
                                  : tw_err(TW_INTERNAL, "encryption failed");
        goto out;
    }
    k = calloc(1, sizeof(*k));
    if (!k || strlen(token) > STORE_CIPHERTEXT_MAX) {
        st = tw_err(TW_RESOURCE_EXHAUSTED, "credential too large");
        goto out;
    }
    snprintf(k->broker, sizeof(k->broker), "%s", req->broker);
    snprintf(k->label, sizeof(k->label), "%s", req->label);
    snprintf(k->environment, sizeof(k->environment), "%s", env_word(req->environment));
    snprintf(k->key_id_mask, sizeof(k->key_id_mask), "%s", mask);
    snprintf(k->ciphertext, sizeof(k->ciphertext), "%s", token);
    k->master_version = version;

    if ((rc = store_tx_begin_user(conn, u.id)) != STORE_OK) {
        st = svc_store_status(c, rc, "user");
        goto out;
    }
    int dup = 0;
    if ((rc = label_taken(conn, u.id, k->label, &dup)) != STORE_OK || dup) {
        st = dup ? tw_err(TW_ALREADY_EXISTS, "label: you already have a key with this label")
                 : svc_store_status(c, rc, "broker keys");
        store_tx_rollback(conn);
        goto out;
    }
    int64_t id = 0;
    rc = store_key_put(conn, u.id, k, &id);
    if (rc != STORE_OK) {
        st = svc_store_status(c, rc, "broker key");
        store_tx_rollback(conn);
        goto out;
    }
    char *details = details_json(c, json_pack("{s:s,s:s,s:s,s:i}", "broker", k->broker,
                                              "environment", k->environment, "key_id_masked",
                                              k->key_id_mask, "master_version", version));
    st = svc_audit(c, conn, u.id, "KEY_ADD", svc_id_str(c, id), "SUCCESS", details);
    if (st.code != TW_OK) {
        store_tx_rollback(conn);
        goto out;
    }
    if ((rc = store_tx_commit(conn)) != STORE_OK) {
        st = svc_store_status(c, rc, "broker key");
        goto out;
    }
    if ((rc = store_key_get(conn, u.id, id, k)) != STORE_OK) {
        st = svc_store_status(c, rc, "broker key");
        goto out;
    }
    resp->key = key_to_wire(c, k);
    if (!resp->key)
        st = tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
out:
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    if (k) {
        memset(k, 0, sizeof(*k));
        free(k);
    }
    vault_secret_destroy(cred);
    if (opened) {
        OPENSSL_cleanse(opened, strlen(opened));
        free(opened);
    }
    return st;
}

tw_status keyvault_list(tw_call *c, const Tradewink__V1__ListBrokerKeysRequest *req,
                        Tradewink__V1__ListBrokerKeysResponse *resp)
{
    store_conn *conn;
    store_broker_key *keys = NULL;
    size_t n = 0;
    tw_status st;
    if (req->page_size < 0)
        return tw_err(TW_INVALID_ARGUMENT, "page_size: must not be negative");
    int64_t after = 0;
    if (*req->page_token && (after = svc_parse_id(req->page_token)) == 0)
        return tw_err(TW_INVALID_ARGUMENT, "page_token: not a token from a previous page");
    size_t limit = req->page_size == 0
                       ? PAGE_DEFAULT
                       : (req->page_size > PAGE_MAX ? PAGE_MAX : (size_t)req->page_size);
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    store_rc rc = store_key_list(conn, svc_user_id(c), &keys, &n);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "broker keys");
    resp->keys = tw_arena_alloc(tw_call_arena(c), (n ? n : 1) * sizeof(*resp->keys));
    if (!resp->keys) {
        st = tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    /* Newest first: the store lists in id order, so walk it backwards. The page token is the
     * id of the last key returned; the next page holds the keys older than it. */
    for (size_t j = n; j-- > 0;) {
        if (after && keys[j].id >= after)
            continue;
        if (resp->n_keys == limit) {
            resp->next_page_token = svc_id_str(c, keys[j + 1].id);
            break;
        }
        if (!(resp->keys[resp->n_keys++] = key_to_wire(c, &keys[j]))) {
            st = tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
            goto out;
        }
    }
    st = tw_ok();
out:
    if (keys) {
        memset(keys, 0, n * sizeof(*keys));
        free(keys);
    }
    return st;
}

tw_status keyvault_delete(tw_call *c, const Tradewink__V1__DeleteBrokerKeyRequest *req,
                          Tradewink__V1__DeleteBrokerKeyResponse *resp)
{
    (void)resp;
    store_conn *conn;
    tw_status st;
    int64_t id = svc_parse_id(req->broker_key_id);
    if (!id)
        return tw_err(TW_INVALID_ARGUMENT, "broker_key_id: not a key id");
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    int64_t uid = svc_user_id(c);
    store_rc rc = store_tx_begin_user(conn, uid);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "user");
    rc = store_key_delete(conn, uid, id);
    if (rc != STORE_OK) {
        store_tx_rollback(conn);
        return svc_store_status(c, rc, "broker key");
    }
    st = svc_audit(c, conn, uid, "KEY_DELETE", req->broker_key_id, "SUCCESS", NULL);
    if (st.code != TW_OK) {
        store_tx_rollback(conn);
        return st;
    }
    rc = store_tx_commit(conn);
    return svc_store_status(c, rc, "broker key");
}

tw_status keyvault_test(tw_call *c, const Tradewink__V1__TestBrokerKeyRequest *req,
                        Tradewink__V1__TestBrokerKeyResponse *resp)
{
    store_conn *conn;
    store_broker_key *k = calloc(1, sizeof(*k));
    tw_status st;
    int64_t id = svc_parse_id(req->broker_key_id);
    int64_t uid = svc_user_id(c);
    if (!k)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    if (!id) {
        st = tw_err(TW_INVALID_ARGUMENT, "broker_key_id: not a key id");
        goto out;
    }
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        goto out;
    store_rc rc = store_key_get(conn, uid, id, k);
    if (rc != STORE_OK) {
        st = svc_store_status(c, rc, "broker key");
        goto out;
    }
    /* The key is decrypted only by trading's broker resolution (trading_broker_conn). */
    st = svc_broker_test(c, k, &resp->ok, &resp->broker_message);
    if (st.code != TW_OK)
        goto out;
    int64_t now = svc_now_us(c);
    resp->tested_at = svc_timestamp(c, now / 1000000);
    if ((rc = store_tx_begin_user(conn, uid)) != STORE_OK) {
        st = svc_store_status(c, rc, "user");
        goto out;
    }
    rc = store_key_touch(conn, uid, id, now);
    if (rc == STORE_OK)
        st = svc_audit(c, conn, uid, "KEY_TEST", req->broker_key_id,
                       resp->ok ? "SUCCESS" : "FAILURE", NULL);
    else
        st = svc_store_status(c, rc, "broker key");
    if (st.code != TW_OK) {
        store_tx_rollback(conn);
        goto out;
    }
    rc = store_tx_commit(conn);
    st = svc_store_status(c, rc, "broker key");
out:
    if (k) {
        memset(k, 0, sizeof(*k));
        free(k);
    }
    return st;
}

tw_status keyvault_rewrap(tw_call *c, const Tradewink__V1__RewrapKeysRequest *req,
                          Tradewink__V1__RewrapKeysResponse *resp)
{
    srv_app *app = tw_call_app(c);
    store_conn *conn;
    tw_status st;
    if (req->batch_size < 0 || req->batch_size > REWRAP_MAX)
        return tw_err(TW_INVALID_ARGUMENT, "batch_size: 0 (default 100) or 1..1000");
    int64_t batch = req->batch_size ? req->batch_size : REWRAP_DEFAULT;
    int target = vault_current_version(app->vault);
    resp->target_master_version = (uint32_t)target;
    if ((st = svc_conn(c, &conn)).code != TW_OK)
        return st;
    /* keyvault.proto: one batch per call, at most batch_size keys re-encrypted; the caller
     * repeats until remaining is 0. Walk in id order from the start each call (keys already
     * under the target are skipped); each record is replaced only if it is still under the
     * version we read, so concurrent rewraps do not fight. Keys that cannot be decrypted do
     * not use up the batch (they would otherwise block every later key forever): they are
     * counted in failed, logged, and left for an operator. */
    int64_t after = 0;
    bool done = false;
    while (!done) {
        store_broker_key *keys = NULL;
        size_t n = 0;
        store_rc rc = store_admin_keys_batch(conn, after, REWRAP_MAX, &keys, &n);
        if (rc != STORE_OK)
            return svc_store_status(c, rc, "broker keys");
        for (size_t i = 0; i < n && !done; i++) {
            after = keys[i].id;
            if (keys[i].master_version == target)
                continue;
            store_user u;
            char *token = NULL;
            int newv = 0;
            vault_token_reason why;
            char uid[32];
            if (store_user_get(conn, keys[i].user_id, &u) != STORE_OK) {
                tw_logf(TW_LOG_ERROR, "key_rewrap", "key %lld: owner not found",
                        (long long)keys[i].id);
                resp->failed++;
                continue;
            }
            snprintf(uid, sizeof(uid), "%lld", (long long)u.id);
            if (vault_rewrap(app->vault, uid, u.salt, sizeof(u.salt), keys[i].master_version,
                             keys[i].ciphertext, &token, &newv, &why) != VAULT_OK) {
                tw_logf(TW_LOG_ERROR, "key_rewrap", "key %lld: %s", (long long)keys[i].id,
                        vault_token_reason_str(why));
                resp->failed++;
                continue;
            }
            rc = store_admin_key_rewrap(conn, keys[i].id, keys[i].master_version, token, newv);
            memset(token, 0, strlen(token));
            free(token);
            if (rc == STORE_OK)
                resp->rewrapped++;
            else if (rc != STORE_CONFLICT)
                resp->failed++;
            done = resp->rewrapped >= batch;
        }
        if (keys) {
            memset(keys, 0, n * sizeof(*keys));
            free(keys);
        }
        if (n < (size_t)REWRAP_MAX)
            break;
    }
    /* What is still not under the target version (failures, concurrent inserts). */
    after = 0;
    for (;;) {
        store_broker_key *keys = NULL;
        size_t n = 0;
        if (store_admin_keys_batch(conn, after, 1000, &keys, &n) != STORE_OK)
            break;
        for (size_t i = 0; i < n; i++) {
            after = keys[i].id;
            if (keys[i].master_version != target)
                resp->remaining++;
        }
        if (keys) {
            memset(keys, 0, n * sizeof(*keys));
            free(keys);
        }
        if (n < 1000)
            break;
    }
    /* "excluding failed ones": this call's failures are reported in failed, not remaining. */
    resp->remaining = resp->remaining > resp->failed ? resp->remaining - resp->failed : 0;
    int64_t uid = svc_user_id(c);
    store_rc rc = store_tx_begin_user(conn, uid);
    if (rc != STORE_OK)
        return svc_store_status(c, rc, "user");
    char *details =
        details_json(c, json_pack("{s:I,s:I,s:I,s:i}", "rewrapped", (json_int_t)resp->rewrapped,
                                  "failed", (json_int_t)resp->failed, "remaining",
                                  (json_int_t)resp->remaining, "target_version", target));
    st = svc_audit(c, conn, uid, "KEY_REWRAP", "", resp->failed ? "FAILURE" : "SUCCESS", details);
    if (st.code != TW_OK) {
        store_tx_rollback(conn);
        return st;
    }
    return svc_store_status(c, store_tx_commit(conn), "audit");
}
