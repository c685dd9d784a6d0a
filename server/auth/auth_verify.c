/*
 * auth_verify.c - the verifier: "Bearer <jwt>" -> principal, for every key source.
 *
 * Design: auth_verify is one straight pipeline, each step with its own failure reason:
 * bearer syntax and size cap -> token cache (SHA-256 of the token) -> JWS structure and header
 * policy (auth_jws.c) -> key by kid from the mode's source -> signature -> claims (JSON with
 * duplicate keys rejected; exp required; nbf; iat; iss; aud/azp; sub; role) -> cache insert.
 * Claims are parsed only after the signature holds, so forged tokens never get as far as
 * claim-level reasons. The caller sees one result (AUTH_UNAUTHENTICATED); the reason is a
 * static string for the server log and never quotes the token.
 * Invariants: the verifier is read-only after create apart from the cache, the JWKS source and
 * the counters, each of which has its own synchronisation.
 */
#include "auth_int.h"

#include <jansson.h>
#include <stdbool.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_AUD 16
#define MAX_ROLE_PATH 4

struct auth_verifier {
    auth_mode mode;
    char *issuer; /* NULL = any */
    char *aud[MAX_AUD];
    size_t naud;
    char *role_path[MAX_ROLE_PATH];
    size_t nrole_path;
    unsigned algs;
    int skew;
    size_t max_token;
    auth_keyset *fixed; /* DEV, PEM and the static test seam */
    auth_jwks *jwks;    /* JWKS */
    auth_devkey *devkey;
    auth_cache *cache;
    auth_hdr_cache *hdr_cache;
    _Atomic uint64_t hits, misses;
};

void auth_config_defaults(auth_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mode = AUTH_MODE_DEV;
    cfg->dev_key_file = "./tradewink-dev-key.pem";
    cfg->role_claim = "role";
    cfg->algorithms = "RS256";
    cfg->clock_skew_s = 5;
    cfg->jwks_cache_ttl_s = 300;
    cfg->jwks_min_refetch_s = 30;
    cfg->jwks_max_stale_s = 86400;
    cfg->jwks_timeout_ms = 3000;
    cfg->jwks_background = 1;
    cfg->max_token_bytes = 8192;
    cfg->cache_entries = 4096;
}

static int dflt(int v, int d)
{
    return v == 0 ? d : v;
}

/* Splits "a,b" (spaces around items ignored) into malloc'd strings. -1 on an empty item. */
static int split_list(const char *s, char sep, char **out, size_t max, size_t *n)
{
    *n = 0;
    while (*s) {
        while (*s == ' ')
            s++;
        size_t len = strcspn(s, (char[]){sep, '\0'});
        size_t end = len;
        while (end > 0 && s[end - 1] == ' ')
            end--;
        if (end == 0 || *n == max)
            return -1;
        out[*n] = strndup(s, end);
        if (!out[*n])
            return -1;
        (*n)++;
        s += len;
        if (*s == sep && *++s == '\0')
            return -1; /* trailing separator */
    }
    return 0;
}

void auth_verifier_destroy(auth_verifier *v)
{
    if (!v)
        return;
    auth_jwks_destroy(v->jwks);
    auth_keyset_unref(v->fixed);
    auth_devkey_destroy(v->devkey);
    auth_cache_destroy(v->cache);
    auth_hdr_cache_destroy(v->hdr_cache);
    free(v->issuer);
    for (size_t i = 0; i < v->naud; i++)
        free(v->aud[i]);
    for (size_t i = 0; i < v->nrole_path; i++)
        free(v->role_path[i]);
    free(v);
}

/* Everything but the key source. */
static auth_verifier *verifier_new(const auth_config *cfg, char *err, size_t errlen)
{
    auth_verifier *v = calloc(1, sizeof(*v));
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    v->mode = cfg->mode;
    v->skew = dflt(cfg->clock_skew_s, 5);
    v->max_token = cfg->max_token_bytes ? cfg->max_token_bytes : 8192;
    if (v->skew < 0 || v->skew > 300) {
        snprintf(err, errlen, "clock skew must be 0..300 s");
        goto fail;
    }
    if (v->max_token < 256 || v->max_token > 65536) {
        snprintf(err, errlen, "max token size must be 256..65536 bytes");
        goto fail;
    }
    if (auth_algs_parse(cfg->algorithms ? cfg->algorithms : "RS256", &v->algs) != 0) {
        snprintf(err, errlen, "algorithms: only RS256/384/512 and PS256/384/512 are allowed");
        goto fail;
    }
    const char *iss = cfg->issuer;
    if (!iss && cfg->mode == AUTH_MODE_DEV)
        iss = "tradewink-dev";
    if (iss && !(v->issuer = strdup(iss))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->audience && split_list(cfg->audience, ',', v->aud, MAX_AUD, &v->naud) != 0) {
        snprintf(err, errlen, "audience must be a comma list of 1..16 non-empty names");
        goto fail;
    }
    if (split_list(cfg->role_claim ? cfg->role_claim : "role", '.', v->role_path, MAX_ROLE_PATH,
                   &v->nrole_path) != 0) {
        snprintf(err, errlen, "role claim must be a name or a dotted path of up to 4 names");
        goto fail;
    }
    if (cfg->cache_entries > (1u << 20)) {
        snprintf(err, errlen, "cache entries must be at most 1048576");
        goto fail;
    }
    if (cfg->cache_entries && !(v->cache = auth_cache_create(cfg->cache_entries))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(v->hdr_cache = auth_hdr_cache_create())) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return v;
fail:
    auth_verifier_destroy(v);
    return NULL;
}

auth_verifier *auth_verifier_create(const auth_config *cfg, char *err, size_t errlen)
{
    auth_verifier *v;
    const char *why = NULL;
    if (!cfg) {
        snprintf(err, errlen, "no config");
        return NULL;
    }
    v = verifier_new(cfg, err, errlen);
    if (!v)
        return NULL;
    switch (cfg->mode) {
    case AUTH_MODE_DEV:
        v->devkey = auth_devkey_load_or_create(
            cfg->dev_key_file ? cfg->dev_key_file : "./tradewink-dev-key.pem", err, errlen);
        if (!v->devkey)
            goto fail;
        if (!(v->fixed = auth_devkey_keyset(v->devkey, &why)))
            goto fail_why;
        break;
    case AUTH_MODE_PEM: {
        if (!cfg->public_key_file) {
            snprintf(err, errlen, "pem mode needs a public key file");
            goto fail;
        }
        EVP_PKEY *pkey = auth_pem_public_load(cfg->public_key_file, &why);
        if (!pkey || !(v->fixed = auth_keyset_from_pkey(pkey, NULL, &why)))
            goto fail_why;
        break;
    }
    case AUTH_MODE_JWKS: {
        int ttl = dflt(cfg->jwks_cache_ttl_s, 300), refetch = dflt(cfg->jwks_min_refetch_s, 30);
        int stale = dflt(cfg->jwks_max_stale_s, 86400), tmo = dflt(cfg->jwks_timeout_ms, 3000);
        if (ttl < 1 || refetch < 1 || stale < 0 || tmo < 100 || tmo > 60000) {
            snprintf(err, errlen, "JWKS ttl/refetch/stale/timeout out of range");
            goto fail;
        }
        auth_jwks_opts o = {
            cfg->jwks_url, cfg->jwks_ca_file,    v->algs,    ttl,           refetch, stale,
            tmo,           cfg->jwks_background, cfg->clock, cfg->clock_arg};
        if (!(v->jwks = auth_jwks_create(&o, err, errlen)))
            goto fail;
        break;
    }
    default:
        snprintf(err, errlen, "unknown auth mode");
        goto fail;
    }
    return v;
fail_why:
    snprintf(err, errlen, "auth key: %s", why ? why : "unusable");
fail:
    auth_verifier_destroy(v);
    return NULL;
}

auth_verifier *auth_verifier_create_static(const auth_config *cfg, auth_keyset *ks, char *err,
                                           size_t errlen)
{
    auth_verifier *v = ks ? verifier_new(cfg, err, errlen) : NULL;
    if (!v) {
        auth_keyset_unref(ks);
        return NULL;
    }
    v->fixed = ks;
    return v;
}

static int in_audience(const auth_verifier *v, const json_t *s)
{
    const char *str = json_string_value(s);
    if (!str)
        return 0;
    for (size_t i = 0; i < v->naud; i++)
        if (strcmp(v->aud[i], str) == 0)
            return 1;
    return 0;
}

/* RFC 7519 2: a NumericDate is seconds since the epoch, "possibly non-integer". A fraction is
 * rounded the strict way for its claim: toward the past for exp (a token never lives longer
 * than it says), toward the future for nbf and iat (round_up). Non-integers beyond year 9999
 * are out of range (-1, like any value that is not a number). */
#define NUMERIC_DATE_MAX 253402300799.0 /* 9999-12-31T23:59:59Z */

static int numeric_date(json_t *claims, const char *name, bool round_up, int64_t *out, int *present)
{
    json_t *j = json_object_get(claims, name);
    *present = j != NULL;
    if (!j)
        return 0;
    if (json_is_integer(j)) {
        *out = (int64_t)json_integer_value(j);
        return 0;
    }
    if (!json_is_real(j))
        return -1;
    double v = json_real_value(j);
    if (!(v >= 0.0 && v <= NUMERIC_DATE_MAX))
        return -1;
    int64_t whole = (int64_t)v; /* v >= 0: truncation is the floor */
    *out = round_up && (double)whole < v ? whole + 1 : whole;
    return 0;
}

static int check_claims(const auth_verifier *v, const char *payload, size_t len, int64_t now,
                        auth_principal *p, const char **reason)
{
    json_error_t jerr;
    json_t *c = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr), *j;
    int64_t exp = 0, nbf = 0, iat = 0;
    int has_exp, has_nbf, has_iat, rc = -1;
    if (!c) {
        *reason = strstr(jerr.text, "duplicate") ? "claims have duplicate JSON keys"
                                                 : "claims are not JSON";
        goto out;
    }
    if (!json_is_object(c)) {
        *reason = "claims are not a JSON object";
        goto out;
    }
    if (numeric_date(c, "exp", false, &exp, &has_exp) != 0) {
        *reason = "exp is not a NumericDate";
        goto out;
    }
    if (!has_exp) {
        *reason = "exp missing";
        goto out;
    }
    if (numeric_date(c, "nbf", true, &nbf, &has_nbf) != 0) {
        *reason = "nbf is not a NumericDate";
        goto out;
    }
    if (numeric_date(c, "iat", true, &iat, &has_iat) != 0) {
        *reason = "iat is not a NumericDate";
        goto out;
    }
    if (exp > INT64_MAX - v->skew || now > exp + v->skew) {
        *reason = exp > INT64_MAX - v->skew ? "exp out of range" : "token expired";
        goto out;
    }
    if (has_nbf && now + v->skew < nbf) {
        *reason = "token not yet valid (nbf)";
        goto out;
    }
    if (has_iat && iat > now + v->skew) {
        *reason = "iat is in the future";
        goto out;
    }
    if (v->issuer) {
        j = json_object_get(c, "iss");
        if (!json_is_string(j)) {
            *reason = "iss missing";
            goto out;
        }
        if (strcmp(json_string_value(j), v->issuer) != 0 ||
            json_string_length(j) != strlen(v->issuer)) {
            *reason = "iss does not match the configured issuer";
            goto out;
        }
    }
    if (v->naud) {
        json_t *aud = json_object_get(c, "aud"), *azp = json_object_get(c, "azp"), *a;
        int ok = 0;
        size_t i;
        if (json_is_string(aud)) {
            ok = in_audience(v, aud);
        } else if (json_is_array(aud)) {
            json_array_foreach(aud, i, a)
            {
                if (!json_is_string(a)) {
                    *reason = "aud array holds a non-string";
                    goto out;
                }
                ok |= in_audience(v, a);
            }
        } else if (aud) {
            *reason = "aud is neither a string nor an array";
            goto out;
        }
        if (!ok && azp)
            ok = in_audience(v, azp); /* Clerk: azp names the authorised party */
        if (!ok) {
            *reason = aud || azp ? "aud/azp not in the accepted audience" : "aud/azp missing";
            goto out;
        }
    }
    j = json_object_get(c, "sub");
    const char *sub = json_string_value(j);
    size_t sl = sub ? json_string_length(j) : 0;
    if (!sub || sl == 0) {
        *reason = "sub missing";
        goto out;
    }
    if (sl >= sizeof(p->subject) || strlen(sub) != sl) {
        *reason = "sub too long or holds NUL";
        goto out;
    }
    for (size_t i = 0; i < sl; i++)
        if ((unsigned char)sub[i] < 0x20 || sub[i] == 0x7f) {
            *reason = "sub holds control characters";
            goto out;
        }
    j = c;
    for (size_t i = 0; i < v->nrole_path && j; i++)
        j = json_is_object(j) ? json_object_get(j, v->role_path[i]) : NULL;
    p->role = AUTH_ROLE_USER;
    if (j) {
        if (!json_is_string(j)) {
            *reason = "role claim is not a string";
            goto out;
        }
        if (strcmp(json_string_value(j), "admin") == 0)
            p->role = AUTH_ROLE_ADMIN;
        else if (strcmp(json_string_value(j), "user") != 0) {
            *reason = "role claim has an unknown value";
            goto out;
        }
    }
    memcpy(p->subject, sub, sl + 1);
    p->expires_at = exp;
    p->issued_at = has_iat ? iat : 0;
    rc = 0;
out:
    json_decref(c);
    return rc;
}

/* The token68 of "Bearer <token>" (RFC 7235 2.1: the scheme in any case, then one space;
 * RFC 6750 2.1), within the size cap; -1 with *why naming the failed check. */
static int bearer_token(const auth_verifier *v, const char *authorization_value, const char **token,
                        size_t *len, const char **why)
{
    if (!authorization_value) {
        *why = "authorization metadata missing";
        return -1;
    }
    size_t n = strnlen(authorization_value, v->max_token + 8);
    if (n == 0) {
        *why = "authorization metadata empty";
        return -1;
    }
    if (strncasecmp(authorization_value, "Bearer ", 7) != 0) {
        *why = "authorization scheme is not Bearer";
        return -1;
    }
    n -= 7;
    if (n == 0) {
        *why = "bearer token empty";
        return -1;
    }
    if (n > v->max_token) {
        *why = "token larger than the size cap";
        return -1;
    }
    *token = authorization_value + 7;
    *len = n;
    return 0;
}

auth_result auth_verify_cached(auth_verifier *v, const char *authorization_value, int64_t now,
                               auth_principal *out)
{
    const char *token, *why;
    size_t len;
    uint8_t hash[SHA256_DIGEST_LENGTH];
    memset(out, 0, sizeof(*out));
    if (!v || !v->cache || bearer_token(v, authorization_value, &token, &len, &why) != 0)
        return AUTH_UNAUTHENTICATED;
    uint64_t gen = v->jwks ? auth_jwks_generation(v->jwks, now) : 1;
    if (auth_digest(256, token, len, hash) != sizeof(hash) ||
        !auth_cache_get(v->cache, hash, gen, now, v->skew, out))
        return AUTH_UNAUTHENTICATED;
    atomic_fetch_add_explicit(&v->hits, 1, memory_order_relaxed);
    return AUTH_OK;
}

auth_result auth_verify(auth_verifier *v, const char *authorization_value, int64_t now,
                        auth_principal *out, const char **reason)
{
    const char *why = "internal error";
    auth_keyset *ks = NULL;
    const auth_key *key;
    auth_jws jws;
    char *payload = NULL;
    size_t payload_len, len;
    uint8_t hash[SHA256_DIGEST_LENGTH];
    uint64_t gen;
    auth_result res = AUTH_UNAUTHENTICATED;
    auth_principal p;

    memset(&p, 0, sizeof(p));
    if (!v || !out) {
        why = "verifier or output missing";
        goto out;
    }
    const char *token;
    if (bearer_token(v, authorization_value, &token, &len, &why) != 0)
        goto out;
    gen = v->jwks ? auth_jwks_generation(v->jwks, now) : 1;
    if (v->cache) {
        if (auth_digest(256, token, len, hash) != sizeof(hash)) {
            why = "digest failed";
            goto out;
        }
        if (auth_cache_get(v->cache, hash, gen, now, v->skew, &p)) {
            atomic_fetch_add_explicit(&v->hits, 1, memory_order_relaxed);
            res = AUTH_OK;
            goto out;
        }
        atomic_fetch_add_explicit(&v->misses, 1, memory_order_relaxed);
    }
    if (auth_jws_parse_cached(v->hdr_cache, token, len, v->algs, &jws, &why) != 0)
        goto out;
    if (!jws.has_kid && !v->fixed) {
        why = "kid missing";
        goto out;
    }
    if (v->fixed) {
        ks = v->fixed;
        auth_keyset_ref(ks);
    } else if (!(ks = auth_jwks_get(v->jwks, jws.kid, now, &why))) {
        goto out;
    }
    key = auth_keyset_find(ks, jws.has_kid ? jws.kid : NULL);
    if (!key) {
        why = jws.has_kid ? "unknown kid" : "kid missing";
        goto out;
    }
    if (auth_jws_check_signature(key, &jws, &why) != 0)
        goto out;
    auth_hdr_cache_put(v->hdr_cache, &jws);
    if (auth_jws_payload(&jws, &payload, &payload_len, &why) != 0)
        goto out;
    if (check_claims(v, payload, payload_len, now, &p, &why) != 0)
        goto out;
    if (v->cache)
        auth_cache_put(v->cache, hash, gen, &p);
    res = AUTH_OK;
out:
    auth_keyset_unref(ks);
    free(payload);
    if (out)
        *out = res == AUTH_OK ? p : (auth_principal){{0}, 0, 0, 0};
    if (reason)
        *reason = res == AUTH_OK ? "ok" : why;
    return res;
}

int auth_mint_dev_token(const auth_verifier *v, const char *sub, auth_role role, int64_t ttl_s,
                        int64_t now, char **token_out)
{
    if (!v || v->mode != AUTH_MODE_DEV || !v->devkey)
        return -1;
    return auth_devkey_mint(v->devkey, v->issuer, sub, role, ttl_s, now, token_out);
}

void auth_verifier_stats(auth_verifier *v, auth_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!v)
        return;
    if (v->jwks)
        auth_jwks_counters(v->jwks, &out->jwks_fetches, &out->jwks_fetch_failures);
    out->cache_hits = atomic_load(&v->hits);
    out->cache_misses = atomic_load(&v->misses);
}

void auth_verifier_flush_cache(auth_verifier *v)
{
    if (v)
        auth_cache_flush(v->cache);
}
