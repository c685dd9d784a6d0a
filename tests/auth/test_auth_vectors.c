/*
 * test_auth_vectors.c - external test vectors against the JWS layer and key loading:
 * Wycheproof json_web_signature_test.json (RS256-relevant groups: every valid vector accepted,
 * every invalid one refused; all other groups refused under the default RS256-only policy),
 * Wycheproof json_web_key_test.json (JWK sets loaded through the JWKS parser), and the RFC 7515
 * appendix A.2 example with the clock fixed. Wycheproof payloads are not JWT claim sets, so
 * these go through auth_jws_verify_keyset (structure, header policy, key, signature) and the
 * full verifier is exercised on A.2 for the claim layer.
 */
#include "auth_test_util.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define RS256 AUTH_ALG_BIT(AUTH_ALG_RS256)

static json_t *load_json(const char *name)
{
    char path[512];
    json_error_t e;
    snprintf(path, sizeof(path), "%s/%s", TW_VECTORS_DIR, name);
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fail_msg("cannot load %s: %s", path, e.text);
    return j;
}

/* A one-key set from a JWK object; a JWK without kid acts like PEM mode (single key). */
static auth_keyset *keyset_from_jwk(json_t *jwk)
{
    json_t *copy = json_deep_copy(jwk);
    int no_kid = json_object_get(copy, "kid") == NULL;
    if (no_kid)
        json_object_set_new(copy, "kid", json_string("k"));
    json_t *doc = json_pack("{s:[o]}", "keys", copy);
    char *s = json_dumps(doc, JSON_COMPACT);
    const char *why;
    auth_keyset *ks = auth_keyset_from_jwks(s, strlen(s), RS256, &why);
    if (ks && no_kid)
        ks->kid_optional = 1;
    free(s);
    json_decref(doc);
    return ks;
}

static int verify(const auth_keyset *ks, json_t *jws)
{
    char *tok = json_is_string(jws) ? strdup(json_string_value(jws))
                                    : json_dumps(jws, JSON_COMPACT); /* JSON serialization */
    char *pl = NULL;
    size_t n;
    const char *why;
    int ok = ks && auth_jws_verify_keyset(ks, tok, RS256, &pl, &n, &why) == 0;
    free(pl);
    free(tok);
    return ok;
}

static void test_wycheproof_jws(void **state)
{
    (void)state;
    json_t *root = load_json("jwt-wycheproof/json_web_signature_test.json"), *g, *t;
    size_t gi, ti, valid_ok = 0, invalid_refused = 0, policy_refused = 0;
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        json_t *pub = json_object_get(g, "public");
        const char *kty = json_string_value(json_object_get(pub, "kty"));
        const char *alg = json_string_value(json_object_get(pub, "alg"));
        int rs256_group = kty && strcmp(kty, "RSA") == 0 && json_object_get(pub, "n") &&
                          (!alg || strcmp(alg, "RS256") == 0);
        auth_keyset *ks = kty && strcmp(kty, "RSA") == 0 ? keyset_from_jwk(pub) : NULL;
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            int valid = strcmp(json_string_value(json_object_get(t, "result")), "valid") == 0;
            int id = (int)json_integer_value(json_object_get(t, "tcId"));
            int ok = verify(ks, json_object_get(t, "jws"));
            if (rs256_group && valid) {
                if (!ok)
                    fail_msg("tcId %d: valid RS256 vector refused", id);
                valid_ok++;
            } else if (ok) {
                fail_msg("tcId %d (%s): accepted", id, valid ? "valid, non-RS256" : "invalid");
            } else if (valid) {
                policy_refused++; /* HS*, ES*, PS*, RS384/512: not on the allow-list */
            } else {
                invalid_refused++;
            }
        }
        auth_keyset_unref(ks);
    }
    print_message("wycheproof jws: %zu valid RS256 accepted, %zu invalid refused, "
                  "%zu valid non-RS256 refused by policy\n",
                  valid_ok, invalid_refused, policy_refused);
    assert_true(valid_ok >= 8);
    assert_true(invalid_refused >= 300);
    json_decref(root);
}

static void test_wycheproof_jwk_sets(void **state)
{
    (void)state;
    json_t *root = load_json("jwt-wycheproof/json_web_key_test.json"), *g, *t;
    size_t gi, ti, accepted = 0, refused = 0;
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        json_t *set = json_object_get(g, "public");
        if (!set)
            set = json_object_get(g, "private"); /* symmetric sets: must not load */
        char *s = json_dumps(set, JSON_COMPACT);
        const char *why;
        auth_keyset *ks = auth_keyset_from_jwks(s, strlen(s), RS256, &why);
        free(s);
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            int valid = strcmp(json_string_value(json_object_get(t, "result")), "valid") == 0;
            int id = (int)json_integer_value(json_object_get(t, "tcId"));
            json_t *jws = json_object_get(t, "jws");
            const char *tok = json_string_value(jws);
            int is_rs256 = tok && strncmp(tok, "eyJhbGciOiJSUzI1NiIs", 20) == 0;
            int ok = verify(ks, jws);
            if (valid && is_rs256 && !ok)
                fail_msg("JWK tcId %d: valid RS256 vector refused", id);
            if (!valid && ok)
                fail_msg("JWK tcId %d: invalid vector accepted", id);
            if (valid && !is_rs256 && ok)
                fail_msg("JWK tcId %d: HS* accepted", id);
            ok ? accepted++ : refused++;
        }
        auth_keyset_unref(ks);
    }
    print_message("wycheproof jwk: %zu accepted, %zu refused\n", accepted, refused);
    assert_int_equal(accepted, 1);
    json_decref(root);
}

static void test_jwk_set_refusals_have_precise_reasons(void **state)
{
    (void)state;
    json_t *root = load_json("jwt-wycheproof/json_web_key_test.json"), *g;
    size_t gi;
    int seen = 0;
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        const char *c = json_string_value(json_object_get(g, "comment"));
        json_t *set = json_object_get(g, "public");
        const char *want = NULL;
        if (strcmp(c, "keysize_too_small") == 0)
            want = "RSA key under 2048 bits refused";
        else if (strcmp(c, "exponentOne") == 0)
            want = "RSA public exponent refused (must be odd, >= 3)";
        else if (strcmp(c, "jws_rsa_roca_key") == 0)
            want = "RSA key has the ROCA fingerprint";
        if (!want)
            continue;
        char *s = json_dumps(set, JSON_COMPACT);
        const char *why = NULL;
        auth_keyset *ks = auth_keyset_from_jwks(s, strlen(s), RS256, &why);
        assert_non_null(ks); /* kept as a refused entry so tokens get the precise reason */
        json_t *t = json_array_get(json_object_get(g, "tests"), 0);
        char *pl = NULL;
        size_t n;
        assert_int_equal(auth_jws_verify_keyset(ks, json_string_value(json_object_get(t, "jws")),
                                                RS256, &pl, &n, &why),
                         -1);
        assert_string_equal(why, want);
        auth_keyset_unref(ks);
        free(s);
        seen++;
    }
    assert_int_equal(seen, 3);
    json_decref(root);
}

/* RFC 7515 A.2: RS256 over {"iss":"joe","exp":1300819380,...}; no kid, no sub. */
static void test_rfc7515_a2(void **state)
{
    (void)state;
    char path[512], err[256];
    snprintf(path, sizeof(path), "%s/jws/a2_rs256_token.jws", TW_VECTORS_DIR);
    char *tok = tu_read_file(path, NULL);
    assert_non_null(tok);
    tok[strcspn(tok, "\r\n")] = '\0';
    snprintf(path, sizeof(path), "%s/jws/a2_rs256_public.pem", TW_VECTORS_DIR);
    const char *why;
    EVP_PKEY *pk = auth_pem_public_load(path, &why);
    assert_non_null(pk);
    auth_keyset *ks = auth_keyset_from_pkey(pk, NULL, &why);
    assert_non_null(ks);
    char *pl = NULL;
    size_t n;
    /* the signature layer accepts it */
    assert_int_equal(auth_jws_verify_keyset(ks, tok, RS256, &pl, &n, &why), 0);
    assert_non_null(strstr(pl, "\"iss\":\"joe\""));
    free(pl);
    /* one flipped payload character and it is refused */
    char *bad = strdup(tok);
    bad[40] = bad[40] == 'A' ? 'B' : 'A';
    assert_int_equal(auth_jws_verify_keyset(ks, bad, RS256, &pl, &n, &why), -1);
    free(bad);
    auth_keyset_unref(ks);

    /* the full verifier (PEM mode, clock fixed): signature fine, then the claim layer speaks */
    auth_config cfg;
    auth_config_defaults(&cfg);
    cfg.mode = AUTH_MODE_PEM;
    cfg.public_key_file = path;
    cfg.issuer = "joe";
    auth_verifier *v = auth_verifier_create(&cfg, err, sizeof(err));
    assert_non_null(v);
    char *authz = tu_join("Bearer ", "", tok);
    auth_principal p;
    assert_int_equal(auth_verify(v, authz, 1300819380, &p, &why), AUTH_UNAUTHENTICATED);
    assert_string_equal(why, "sub missing"); /* A.2 names no subject: not a usable login */
    assert_int_equal(auth_verify(v, authz, 1300819380 + 6, &p, &why), AUTH_UNAUTHENTICATED);
    assert_string_equal(why, "token expired");
    auth_verifier_destroy(v);

    /* through the published JWK set: the key has kid "2010-12-29", the token names none */
    snprintf(path, sizeof(path), "%s/jws/a2_rs256_jwks_public.json", TW_VECTORS_DIR);
    char *doc = tu_read_file(path, &n);
    ks = auth_keyset_from_jwks(doc, n, RS256, &why);
    assert_non_null(ks);
    assert_int_equal(auth_jws_verify_keyset(ks, tok, RS256, &pl, &n, &why), -1);
    assert_string_equal(why, "kid missing");
    auth_keyset_unref(ks);
    free(doc);
    free(authz);
    free(tok);
}

static void test_b64url_strictness(void **state)
{
    (void)state;
    uint8_t out[16];
    size_t n;
    assert_int_equal(auth_b64url_decode("Zm9v", 4, out, sizeof(out), &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "foo", 3);
    assert_int_equal(auth_b64url_decode("Zm8", 3, out, sizeof(out), &n), 0);
    assert_int_equal(auth_b64url_decode("Zm9=", 4, out, sizeof(out), &n), -1); /* padding */
    assert_int_equal(auth_b64url_decode("Zm9", 3, out, sizeof(out), &n), -1);  /* bits */
    assert_int_equal(auth_b64url_decode("Zh", 2, out, sizeof(out), &n), -1);   /* bits */
    assert_int_equal(auth_b64url_decode("Zg", 2, out, sizeof(out), &n), 0);
    assert_int_equal(auth_b64url_decode("Z", 1, out, sizeof(out), &n), -1);    /* length */
    assert_int_equal(auth_b64url_decode("Zm+v", 4, out, sizeof(out), &n), -1); /* std b64 */
    assert_int_equal(auth_b64url_decode("Zm/v", 4, out, sizeof(out), &n), -1);
    assert_int_equal(auth_b64url_decode("Zm v", 4, out, sizeof(out), &n), -1);
    assert_int_equal(auth_b64url_decode("Zm9vZm9v", 8, out, 5, &n), -1); /* capacity */
    char enc[8];
    auth_b64url_encode((const uint8_t *)"\xfb\xff", 2, enc);
    assert_string_equal(enc, "-_8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wycheproof_jws),
        cmocka_unit_test(test_wycheproof_jwk_sets),
        cmocka_unit_test(test_jwk_set_refusals_have_precise_reasons),
        cmocka_unit_test(test_rfc7515_a2),
        cmocka_unit_test(test_b64url_strictness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
