/*
 * edge_webhook: the Standard Webhooks verifier. The published known-answer vector and the
 * published negative cases (from shared/data/vectors/webhooks), then our own table signed
 * here with OpenSSL's HMAC: window edges (300 s in, 301 s out, both directions), tampering
 * (one byte, re-serialised JSON), key rotation (any one of several signatures, any one of
 * several secrets), unknown versions ignored, replay (duplicate, in progress, release),
 * fail-closed sources, size cap, malformed headers, and the TW_WEBHOOK_SECRETS parser
 * (clear errors that never echo a secret; broken sources refused).
 */
#include "edge/webhook.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t now_s;

static int64_t clock_fn(void *ctx)
{
    (void)ctx;
    return now_s;
}

static edge_wh *make(size_t max_body, size_t capacity)
{
    edge_wh_config cfg = {max_body, capacity, clock_fn, NULL};
    edge_wh *v = edge_wh_create(&cfg);
    assert_non_null(v);
    return v;
}

static edge_wh_result verify(edge_wh *v, const char *source, const char *id, const char *ts,
                             const char *sig, const char *body)
{
    edge_wh_headers h = {id,  id ? strlen(id) : 0,  ts, ts ? strlen(ts) : 0,
                         sig, sig ? strlen(sig) : 0};
    return edge_wh_verify(v, source, &h, (const uint8_t *)body, strlen(body));
}

/* ---- published vectors ---------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void test_published_vectors(void **state)
{
    json_error_t e;
    char err[256];
    (void)state;
    json_t *root =
        json_load_file(TW_VECTORS_DIR "/webhooks/standard-webhooks-published.json", 0, &e);
    if (!root)
        fail_msg("cannot read the published webhook vectors: %s", e.text);
    json_t *kat = json_object_get(root, "known_answer");
    json_t *cases = json_object_get(root, "cases");
    assert_true(json_is_array(cases));
    assert_true(json_array_size(cases) >= 10);
    /* The KAT: our HMAC over id.timestamp.body gives the published header. */
    {
        edge_wh *v = make(0, 0);
        assert_int_equal(edge_wh_add_secret(v, "broker", jstr(kat, "secret"), err, sizeof err), 0);
        now_s = strtoll(jstr(kat, "webhook_timestamp"), NULL, 10);
        assert_int_equal(verify(v, "broker", jstr(kat, "webhook_id"),
                                jstr(kat, "webhook_timestamp"),
                                jstr(kat, "expected_signature_header"), jstr(kat, "body")),
                         EDGE_WH_OK);
        edge_wh_destroy(v);
    }
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        const char *name = jstr(c, "name"), *expect = jstr(c, "expect");
        const char *reason = jstr(c, "reason");
        edge_wh *v = make(0, 0);
        int add = edge_wh_add_secret(v, "broker", jstr(c, "secret"), err, sizeof err);
        if (strcmp(expect, "reject_at_configuration") == 0) {
            if (add == 0)
                fail_msg("%s: secret should be refused at configuration", name);
            assert_int_equal(edge_wh_source_enabled(v, "broker"), 0);
            edge_wh_destroy(v);
            continue;
        }
        assert_int_equal(add, 0);
        now_s = json_integer_value(json_object_get(c, "now"));
        edge_wh_result want = EDGE_WH_OK;
        if (strcmp(expect, "accept") != 0) {
            if (strcmp(reason, "no_matching_signature") == 0)
                want = EDGE_WH_BAD_SIGNATURE;
            else if (strcmp(reason, "invalid_timestamp") == 0)
                want = EDGE_WH_MALFORMED;
            else if (strcmp(reason, "missing_header") == 0)
                want = jstr(c, "webhook_signature") ? EDGE_WH_MALFORMED : EDGE_WH_NO_SIGNATURE;
            else
                fail_msg("%s: unknown reason %s", name, reason);
        }
        edge_wh_result got =
            verify(v, "broker", jstr(c, "webhook_id"), jstr(c, "webhook_timestamp"),
                   jstr(c, "webhook_signature"), jstr(c, "body"));
        if (got != want)
            fail_msg("%s: got %s, want %s", name, edge_wh_result_name(got),
                     edge_wh_result_name(want));
        edge_wh_destroy(v);
    }
    json_decref(root);
}

/* ---- our own table ------------------------------------------------------------------- */

/* 32 bytes 0x01..0x20 and 0xA1..0xC0, base64. */
#define SECRET_A "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
#define SECRET_B "whsec_oaKjpKWmp6ipqqusra6vsLGys7S1tre4ubq7vL2+v8A="
#define NOW 1700000000
#define BODY "{\"event\":\"fill\",\"order\":\"o-1\",\"qty\":\"10\"}"

static void b64_key(const char *secret, uint8_t *key, int *klen)
{
    const char *b = secret + 6;
    size_t n = strlen(b), pads = 0;
    *klen = EVP_DecodeBlock(key, (const unsigned char *)b, (int)n);
    assert_true(*klen > 0);
    /* EVP_DecodeBlock counts padding as zero bytes: trim one per '='. */
    while (pads < n && b[n - 1 - pads] == '=')
        pads++;
    *klen -= (int)pads;
}

/* "v1," + base64(HMAC-SHA256(key(secret), id.ts.body)) into out. */
static void sign(const char *secret, const char *id, const char *ts, const char *body, char *out,
                 size_t cap)
{
    uint8_t key[64], mac[32];
    unsigned int mlen = 0;
    int klen = 0;
    char content[4096];
    unsigned char b64[64];
    b64_key(secret, key, &klen);
    int n = snprintf(content, sizeof content, "%s.%s.%s", id, ts, body);
    assert_true(n > 0 && (size_t)n < sizeof content);
    assert_non_null(
        HMAC(EVP_sha256(), key, klen, (const unsigned char *)content, (size_t)n, mac, &mlen));
    EVP_EncodeBlock(b64, mac, 32);
    snprintf(out, cap, "v1,%s", (const char *)b64);
}

typedef struct {
    const char *name;
    const char *source;
    const char *id;
    int64_t ts_offset;       /* timestamp = NOW + ts_offset */
    const char *ts_raw;      /* overrides the timestamp when set */
    const char *sig_fmt;     /* %s = a valid "v1,..." entry; NULL = header absent; "RAW:" literal */
    const char *sign_body;   /* body that was signed (defaults to BODY) */
    const char *sent_body;   /* body that arrives (defaults to BODY) */
    const char *sign_secret; /* defaults to SECRET_A */
    edge_wh_result want;
} wh_case;

static const wh_case cases[] = {
    {"valid", "broker", "msg_1", 0, NULL, "%s", NULL, NULL, NULL, EDGE_WH_OK},
    {"wrong_secret", "broker", "msg_2", 0, NULL, "%s", NULL, NULL,
     "whsec_c3VwZXJzZWNyZXRzdXBlcnNlY3JldDEyMzQ1Ng==", EDGE_WH_BAD_SIGNATURE},
    {"second_secret_of_source_valid", "broker", "msg_3", 0, NULL, "%s", NULL, NULL, SECRET_B,
     EDGE_WH_OK},
    {"stale_301s", "broker", "msg_4", -301, NULL, "%s", NULL, NULL, NULL, EDGE_WH_STALE},
    {"future_301s", "broker", "msg_5", 301, NULL, "%s", NULL, NULL, NULL, EDGE_WH_STALE},
    {"future_one_hour", "broker", "msg_6", 3600, NULL, "%s", NULL, NULL, NULL, EDGE_WH_STALE},
    {"exactly_300s_old_accepted", "broker", "msg_7", -300, NULL, "%s", NULL, NULL, NULL,
     EDGE_WH_OK},
    {"exactly_300s_ahead_accepted", "broker", "msg_8", 300, NULL, "%s", NULL, NULL, NULL,
     EDGE_WH_OK},
    {"body_altered_one_byte", "broker", "msg_9", 0, NULL, "%s", NULL,
     "{\"event\":\"fill\",\"order\":\"o-1\",\"qty\":\"11\"}", NULL, EDGE_WH_BAD_SIGNATURE},
    {"body_reserialized_json", "broker", "msg_10", 0, NULL, "%s", NULL,
     "{\"event\": \"fill\", \"order\": \"o-1\", \"qty\": \"10\"}", NULL, EDGE_WH_BAD_SIGNATURE},
    {"body_with_trailing_newline", "broker", "msg_11", 0, NULL, "%s", NULL, BODY "\n", NULL,
     EDGE_WH_BAD_SIGNATURE},
    {"two_signatures_one_valid", "broker", "msg_12", 0, NULL,
     "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= %s", NULL, NULL, NULL, EDGE_WH_OK},
    {"unknown_version_ignored", "broker", "msg_13", 0, NULL, "v9,abc v1a,xyz %s", NULL, NULL, NULL,
     EDGE_WH_OK},
    {"valid_mac_under_unknown_version_not_accepted", "broker", "msg_14", 0, NULL, "v2%s", NULL,
     NULL, NULL, EDGE_WH_BAD_SIGNATURE},
    {"signature_for_other_id", "broker", "msg_15", 0, NULL, "RAW:other", NULL, NULL, NULL,
     EDGE_WH_BAD_SIGNATURE},
    {"missing_signature_header", "broker", "msg_16", 0, NULL, NULL, NULL, NULL, NULL,
     EDGE_WH_NO_SIGNATURE},
    {"missing_id_header", "broker", NULL, 0, NULL, "%s", NULL, NULL, NULL, EDGE_WH_MALFORMED},
    {"missing_timestamp_header", "broker", "msg_17", 0, "ABSENT", "%s", NULL, NULL, NULL,
     EDGE_WH_MALFORMED},
    {"timestamp_not_a_number", "broker", "msg_18", 0, "17000000x0", "%s", NULL, NULL, NULL,
     EDGE_WH_MALFORMED},
    {"timestamp_negative", "broker", "msg_19", 0, "-1700000000", "%s", NULL, NULL, NULL,
     EDGE_WH_MALFORMED},
    {"timestamp_empty", "broker", "msg_20", 0, "", "%s", NULL, NULL, NULL, EDGE_WH_MALFORMED},
    {"timestamp_huge", "broker", "msg_21", 0, "99999999999999999999999", "%s", NULL, NULL, NULL,
     EDGE_WH_MALFORMED},
    {"id_too_long", "broker", "LONGID", 0, NULL, "%s", NULL, NULL, NULL, EDGE_WH_MALFORMED},
    {"id_with_space", "broker", "msg 22", 0, NULL, "%s", NULL, NULL, NULL, EDGE_WH_MALFORMED},
    {"id_empty", "broker", "", 0, NULL, "%s", NULL, NULL, NULL, EDGE_WH_MALFORMED},
    {"signature_without_comma", "broker", "msg_23", 0, NULL, "RAW:garbage", NULL, NULL, NULL,
     EDGE_WH_MALFORMED},
    {"signature_empty", "broker", "msg_24", 0, NULL, "RAW:", NULL, NULL, NULL, EDGE_WH_MALFORMED},
    {"signature_only_spaces", "broker", "msg_25", 0, NULL, "RAW:   ", NULL, NULL, NULL,
     EDGE_WH_MALFORMED},
    {"signature_not_base64", "broker", "msg_26", 0, NULL, "RAW:v1,!!!!", NULL, NULL, NULL,
     EDGE_WH_BAD_SIGNATURE},
    {"signature_truncated", "broker", "msg_27", 0, NULL, "RAW:v1,g0hM9SsE+OTPJTGt", NULL, NULL,
     NULL, EDGE_WH_BAD_SIGNATURE},
    {"source_without_secret_refused", "signal", "msg_28", 0, NULL, "%s", NULL, NULL, NULL,
     EDGE_WH_NO_SECRET},
    {"source_with_empty_secret_refused", "empty", "msg_29", 0, NULL, "%s", NULL, NULL, NULL,
     EDGE_WH_NO_SECRET},
    {"unknown_source_refused", "nobody", "msg_30", 0, NULL, "%s", NULL, NULL, NULL,
     EDGE_WH_NO_SECRET},
};

static void test_verification_table(void **state)
{
    char err[256], sig[512], valid[128], ts[64], longid[EDGE_WH_ID_MAX + 2];
    (void)state;
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const wh_case *c = &cases[i];
        edge_wh *v = make(0, 0);
        assert_int_equal(edge_wh_add_secret(v, "broker", SECRET_A, err, sizeof err), 0);
        assert_int_equal(edge_wh_add_secret(v, "broker", SECRET_B, err, sizeof err), 0);
        assert_int_equal(edge_wh_add_secret(v, "empty", "whsec_", err, sizeof err), -1);
        now_s = NOW;
        const char *id = c->id && strcmp(c->id, "LONGID") == 0 ? longid : c->id;
        snprintf(ts, sizeof ts, "%lld", (long long)(NOW + c->ts_offset));
        const char *tsv = c->ts_raw ? (strcmp(c->ts_raw, "ABSENT") == 0 ? NULL : c->ts_raw) : ts;
        sign(c->sign_secret ? c->sign_secret : SECRET_A, id ? id : "x", tsv ? tsv : ts,
             c->sign_body ? c->sign_body : BODY, valid, sizeof valid);
        const char *sigv = NULL;
        if (c->sig_fmt && strncmp(c->sig_fmt, "RAW:", 4) == 0) {
            sigv = c->sig_fmt + 4;
            if (strcmp(sigv, "other") == 0) {
                sign(SECRET_A, "msg_other", ts, BODY, sig, sizeof sig);
                sigv = sig;
            }
        } else if (c->sig_fmt) {
            /* sig_fmt is one of the table's literals with a single %s. */
            const char *pct = strstr(c->sig_fmt, "%s");
            snprintf(sig, sizeof sig, "%.*s%s%s", (int)(pct - c->sig_fmt), c->sig_fmt,
                     strcmp(c->sig_fmt, "v2%s") == 0 ? valid + 2 : valid, pct + 2);
            sigv = sig;
        }
        edge_wh_result got =
            verify(v, c->source, id, tsv, sigv, c->sent_body ? c->sent_body : BODY);
        if (got != c->want)
            fail_msg("case %s: got %s, want %s", c->name, edge_wh_result_name(got),
                     edge_wh_result_name(c->want));
        edge_wh_destroy(v);
    }
}

static void test_replay_is_a_duplicate_after_commit(void **state)
{
    char err[128], sig[128];
    (void)state;
    edge_wh *v = make(0, 0);
    assert_int_equal(edge_wh_add_secret(v, "broker", SECRET_A, err, sizeof err), 0);
    now_s = NOW;
    sign(SECRET_A, "msg_r", "1700000000", BODY, sig, sizeof sig);
    assert_int_equal(verify(v, "broker", "msg_r", "1700000000", sig, BODY), EDGE_WH_OK);
    /* While the first delivery is being handled, a concurrent copy is told to retry. */
    assert_int_equal(verify(v, "broker", "msg_r", "1700000000", sig, BODY), EDGE_WH_IN_PROGRESS);
    edge_wh_commit(v, "broker", "msg_r", 5);
    now_s = NOW + 299;
    assert_int_equal(verify(v, "broker", "msg_r", "1700000000", sig, BODY), EDGE_WH_DUPLICATE);
    /* A bad signature on a known id is still a bad signature (no oracle, no state). */
    assert_int_equal(verify(v, "broker", "msg_r", "1700000000", "v1,AAAA", BODY),
                     EDGE_WH_BAD_SIGNATURE);
    /* Past the window the timestamp refuses it; the id is not needed any more. */
    now_s = NOW + 301;
    assert_int_equal(verify(v, "broker", "msg_r", "1700000000", sig, BODY), EDGE_WH_STALE);
    /* The same id from another source is another message. */
    assert_int_equal(edge_wh_add_secret(v, "signal", SECRET_A, err, sizeof err), 0);
    now_s = NOW;
    assert_int_equal(verify(v, "signal", "msg_r", "1700000000", sig, BODY), EDGE_WH_OK);
    edge_wh_destroy(v);
}

static void test_release_lets_the_retry_through(void **state)
{
    char err[128], sig[128];
    (void)state;
    edge_wh *v = make(0, 0);
    assert_int_equal(edge_wh_add_secret(v, "broker", SECRET_A, err, sizeof err), 0);
    now_s = NOW;
    sign(SECRET_A, "msg_t", "1700000000", BODY, sig, sizeof sig);
    assert_int_equal(verify(v, "broker", "msg_t", "1700000000", sig, BODY), EDGE_WH_OK);
    edge_wh_release(v, "broker", "msg_t", 5);
    assert_int_equal(verify(v, "broker", "msg_t", "1700000000", sig, BODY), EDGE_WH_OK);
    edge_wh_commit(v, "broker", "msg_t", 5);
    edge_wh_release(v, "broker", "msg_t", 5); /* a committed id is never released */
    assert_int_equal(verify(v, "broker", "msg_t", "1700000000", sig, BODY), EDGE_WH_DUPLICATE);
    edge_wh_destroy(v);
}

static void test_replay_cache_full_refuses_instead_of_forgetting(void **state)
{
    char err[128], sig[128], id[32];
    (void)state;
    edge_wh *v = make(0, 3);
    assert_int_equal(edge_wh_add_secret(v, "broker", SECRET_A, err, sizeof err), 0);
    now_s = NOW;
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "msg_c%d", i);
        sign(SECRET_A, id, "1700000000", BODY, sig, sizeof sig);
        assert_int_equal(verify(v, "broker", id, "1700000000", sig, BODY), EDGE_WH_OK);
        edge_wh_commit(v, "broker", id, strlen(id));
    }
    sign(SECRET_A, "msg_c3", "1700000000", BODY, sig, sizeof sig);
    assert_int_equal(verify(v, "broker", "msg_c3", "1700000000", sig, BODY), EDGE_WH_BUSY);
    /* Once the remembered ids expire, room is made. */
    now_s = NOW + 400;
    sign(SECRET_A, "msg_c4", "1700000400", BODY, sig, sizeof sig);
    assert_int_equal(verify(v, "broker", "msg_c4", "1700000400", sig, BODY), EDGE_WH_OK);
    edge_wh_destroy(v);
}

static void test_oversized_body_refused(void **state)
{
    char err[128], sig[128];
    (void)state;
    edge_wh *v = make(16, 0);
    assert_int_equal(edge_wh_add_secret(v, "broker", SECRET_A, err, sizeof err), 0);
    now_s = NOW;
    sign(SECRET_A, "msg_b", "1700000000", BODY, sig, sizeof sig);
    assert_int_equal(verify(v, "broker", "msg_b", "1700000000", sig, BODY), EDGE_WH_TOO_LARGE);
    assert_int_equal(edge_wh_max_body(v), 16);
    edge_wh_destroy(v);
}

static void test_status_mapping(void **state)
{
    static const int want[EDGE_WH_RESULT_COUNT] = {200, 200, 409, 401, 400,
                                                   401, 401, 401, 413, 503};
    (void)state;
    for (int r = 0; r < EDGE_WH_RESULT_COUNT; r++) {
        assert_int_equal(edge_wh_http_status((edge_wh_result)r), want[r]);
        assert_string_not_equal(edge_wh_result_name((edge_wh_result)r), "unknown");
    }
}

typedef struct {
    const char *spec;
    int bad;
    const char *enabled;  /* space-separated sources that must verify */
    const char *disabled; /* space-separated sources that must refuse */
    const char *err_has;
} env_case;

static const env_case env_cases[] = {
    {"broker:" SECRET_A, 0, "broker", "signal", NULL},
    {"broker:" SECRET_A " " SECRET_B ",signal:" SECRET_B, 0, "broker signal", "other", NULL},
    {" broker:" SECRET_A " , signal:" SECRET_B " ", 0, "broker signal", "", NULL},
    {"broker:,signal:" SECRET_B, 1, "signal", "broker", "empty secret"},
    {"broker:whsec_,signal:" SECRET_B, 1, "signal", "broker", "empty secret"},
    {"broker:whsec_c2hvcnQ=", 1, "", "broker", "fewer than 16"},
    {"broker:whsec_not*base64*at*all", 1, "", "broker", "base64"},
    {"broker:" SECRET_A " whsec_bad!", 1, "", "broker", "secret 2"},
    {"Broker:" SECRET_A, 1, "", "broker", "source name"},
    {"whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=", 1, "", "broker", "missing ':'"},
    {"broker:" SECRET_A ",broker:" SECRET_B, 1, "", "broker", "listed twice"},
    {"broker:" SECRET_A ",,signal:" SECRET_B, 1, "broker signal", "", "entry 2: empty"},
    {"", 0, "", "broker", NULL},
};

static void test_env_parse_table(void **state)
{
    char err[1024];
    (void)state;
    for (size_t i = 0; i < sizeof env_cases / sizeof env_cases[0]; i++) {
        const env_case *c = &env_cases[i];
        edge_wh *v = make(0, 0);
        int bad = edge_wh_load_env(v, c->spec, err, sizeof err);
        if (bad != c->bad)
            fail_msg("case %zu: %d bad entries, want %d (%s)", i, bad, c->bad, err);
        if (c->err_has && !strstr(err, c->err_has))
            fail_msg("case %zu: error lacks '%s': %s", i, c->err_has, err);
        /* Never echo a secret (or a piece of one) in the error. */
        assert_null(strstr(err, "AQIDBAUG"));
        assert_null(strstr(err, "oaKjpKWm"));
        assert_null(strstr(err, "c2hvcnQ"));
        assert_null(strstr(err, "not*base64"));
        char list[128];
        snprintf(list, sizeof list, "%s", c->enabled);
        for (char *s = list, *sp; s && *s; s = sp) {
            sp = strchr(s, ' ');
            if (sp)
                *sp++ = '\0';
            if (!edge_wh_source_enabled(v, s))
                fail_msg("case %zu: source %s should be enabled", i, s);
        }
        snprintf(list, sizeof list, "%s", c->disabled);
        for (char *s = list, *sp; s && *s; s = sp) {
            sp = strchr(s, ' ');
            if (sp)
                *sp++ = '\0';
            if (edge_wh_source_enabled(v, s))
                fail_msg("case %zu: source %s should refuse", i, s);
        }
        edge_wh_destroy(v);
    }
    edge_wh_destroy(NULL);
}

static void test_source_names(void **state)
{
    (void)state;
    assert_true(edge_wh_valid_source("broker"));
    assert_true(edge_wh_valid_source("signal-2_x"));
    assert_false(edge_wh_valid_source(""));
    assert_false(edge_wh_valid_source(NULL));
    assert_false(edge_wh_valid_source("Broker"));
    assert_false(edge_wh_valid_source("a/b"));
    assert_false(edge_wh_valid_source("../x"));
    assert_false(edge_wh_valid_source("abcdefghijabcdefghijabcdefghijabc")); /* 33 */
    assert_true(edge_wh_valid_source("abcdefghijabcdefghijabcdefghijab"));   /* 32 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_vectors),
        cmocka_unit_test(test_verification_table),
        cmocka_unit_test(test_replay_is_a_duplicate_after_commit),
        cmocka_unit_test(test_release_lets_the_retry_through),
        cmocka_unit_test(test_replay_cache_full_refuses_instead_of_forgetting),
        cmocka_unit_test(test_oversized_body_refused),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_env_parse_table),
        cmocka_unit_test(test_source_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
