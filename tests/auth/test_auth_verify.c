/*
 * test_auth_verify.c - the verifier's policy: a table of bad tokens, each refused for its own
 * logged reason, a table of good ones, plus modes (dev, pem), the token cache, dev-key files
 * and the reason strings never quoting the token.
 *
 * Tokens are built here from raw header/payload text and signed with EVP directly (not with
 * the library's minting), so malformed and hostile inputs can be expressed exactly. The clock
 * is fixed at NOW; the verifier under test uses a static key set (the JWKS document below:
 * a 2048-bit "good" key and a 1024-bit "weak" one) with issuer/audience configured.
 */
#include "auth_test_util.h"

#include <openssl/pem.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define NOW 1700000000
#define HDR "{\"alg\":\"RS256\",\"kid\":\"good\",\"typ\":\"JWT\"}"
#define CLAIMS_TAIL "\"iat\":1700000000,\"exp\":1700000600}"
#define CLAIMS "{\"iss\":\"tradewink-test\",\"sub\":\"user-1\",\"aud\":\"tw-web\"," CLAIMS_TAIL

static char tmpdir[] = "/tmp/test_auth_verify.XXXXXX";
static char devpath[128];
static auth_devkey *dev;
static EVP_PKEY *good, *other, *weak;
static auth_verifier *ver;

typedef enum { S_GOOD, S_OTHER, S_WEAK, S_HS_PUB, S_NONE, S_RS384 } signer;
typedef enum {
    M_NONE,
    M_FLIP_SIG,
    M_CUT_SIG,
    M_DROP_SIG_SEG,
    M_EXTRA_SEG,
    M_PAD_SIG,
    M_PAD_HDR,
    M_TRAIL_BITS,
    M_EMPTY_SIG,
    M_PAYLOAD_PLUS,
    M_BIG,
    M_GLUED_BEARER,
    M_NO_BEARER,
    M_TWO_SPACES,
} mutation;

typedef struct {
    const char *name;
    const char *header, *payload;
    signer s;
    mutation m;
    const char *reason;
} bad_row;

static const bad_row bad_rows[] = {
    {"alg_none_refused", "{\"alg\":\"none\",\"kid\":\"good\"}", CLAIMS, S_NONE, M_NONE,
     "alg none refused"},
    {"alg_NONE_any_case_refused", "{\"alg\":\"NONE\",\"kid\":\"good\"}", CLAIMS, S_NONE, M_NONE,
     "alg none refused"},
    {"hs256_signed_with_rsa_public_key_bytes_refused", "{\"alg\":\"HS256\",\"kid\":\"good\"}",
     CLAIMS, S_HS_PUB, M_NONE, "alg HS* (symmetric) refused"},
    {"hs512_refused", "{\"alg\":\"HS512\",\"kid\":\"good\"}", CLAIMS, S_HS_PUB, M_NONE,
     "alg HS* (symmetric) refused"},
    {"rs384_not_on_default_allow_list", "{\"alg\":\"RS384\",\"kid\":\"good\"}", CLAIMS, S_RS384,
     M_NONE, "alg not on the allow-list"},
    {"ps256_not_on_default_allow_list", "{\"alg\":\"PS256\",\"kid\":\"good\"}", CLAIMS, S_GOOD,
     M_NONE, "alg not on the allow-list"},
    {"es256_unsupported", "{\"alg\":\"ES256\",\"kid\":\"good\"}", CLAIMS, S_GOOD, M_NONE,
     "alg not on the allow-list"},
    {"alg_missing", "{\"kid\":\"good\"}", CLAIMS, S_GOOD, M_NONE, "alg missing"},
    {"alg_not_a_string", "{\"alg\":256,\"kid\":\"good\"}", CLAIMS, S_GOOD, M_NONE,
     "alg is not a string"},
    {"unknown_kid", "{\"alg\":\"RS256\",\"kid\":\"nope\"}", CLAIMS, S_GOOD, M_NONE, "unknown kid"},
    {"kid_with_path_traversal_is_just_unknown", "{\"alg\":\"RS256\",\"kid\":\"../../etc/passwd\"}",
     CLAIMS, S_GOOD, M_NONE, "unknown kid"},
    {"kid_with_sql_characters_refused", "{\"alg\":\"RS256\",\"kid\":\"x' OR '1'='1\"}", CLAIMS,
     S_GOOD, M_NONE, "kid has characters outside [A-Za-z0-9._~+/=:@-]"},
    {"kid_with_escaped_nul_refused_by_the_json_parser",
     "{\"alg\":\"RS256\",\"kid\":\"go\\u0000od\"}", CLAIMS, S_GOOD, M_NONE, "header is not JSON"},
    {"kid_too_long",
     "{\"alg\":\"RS256\",\"kid\":\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
     "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\"}",
     CLAIMS, S_GOOD, M_NONE, "kid length outside 1..128"},
    {"kid_missing_with_a_key_set", "{\"alg\":\"RS256\"}", CLAIMS, S_GOOD, M_NONE, "kid missing"},
    {"kid_not_a_string", "{\"alg\":\"RS256\",\"kid\":7}", CLAIMS, S_GOOD, M_NONE,
     "kid is not a string"},
    {"expired", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\",\"exp\":1699999990}", S_GOOD,
     M_NONE, "token expired"},
    {"not_yet_valid", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\",\"nbf\":1700000060,"
     "\"exp\":1700000600}",
     S_GOOD, M_NONE, "token not yet valid (nbf)"},
    {"iat_far_in_the_future", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\",\"iat\":1700003600,"
     "\"exp\":1700007200}",
     S_GOOD, M_NONE, "iat is in the future"},
    {"wrong_iss", HDR, "{\"iss\":\"evil\",\"sub\":\"u\",\"aud\":\"tw-web\"," CLAIMS_TAIL, S_GOOD,
     M_NONE, "iss does not match the configured issuer"},
    {"iss_prefix_is_not_enough", HDR,
     "{\"iss\":\"tradewink-test2\",\"sub\":\"u\",\"aud\":\"tw-web\"," CLAIMS_TAIL, S_GOOD, M_NONE,
     "iss does not match the configured issuer"},
    {"iss_missing", HDR, "{\"sub\":\"u\",\"aud\":\"tw-web\"," CLAIMS_TAIL, S_GOOD, M_NONE,
     "iss missing"},
    {"wrong_aud", HDR, "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"other\"," CLAIMS_TAIL,
     S_GOOD, M_NONE, "aud/azp not in the accepted audience"},
    {"wrong_aud_array", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":[\"a\",\"b\"]," CLAIMS_TAIL, S_GOOD, M_NONE,
     "aud/azp not in the accepted audience"},
    {"aud_array_with_non_string", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":[\"tw-web\",1]," CLAIMS_TAIL, S_GOOD,
     M_NONE, "aud array holds a non-string"},
    {"wrong_azp", HDR, "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"azp\":\"evil\"," CLAIMS_TAIL,
     S_GOOD, M_NONE, "aud/azp not in the accepted audience"},
    {"aud_and_azp_missing", HDR, "{\"iss\":\"tradewink-test\",\"sub\":\"u\"," CLAIMS_TAIL, S_GOOD,
     M_NONE, "aud/azp missing"},
    {"exp_missing", HDR, "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\"}", S_GOOD,
     M_NONE, "exp missing"},
    {"exp_as_string", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\",\"exp\":\"1700000600\"}", S_GOOD,
     M_NONE, "exp is not a NumericDate"},
    {"non_integer_exp_expired_rounds_toward_the_past", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\",\"exp\":1699999994.9}", S_GOOD,
     M_NONE, "token expired"},
    {"non_integer_nbf_rounds_toward_the_future", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\",\"nbf\":1700000005.1,"
     "\"exp\":1700000600}",
     S_GOOD, M_NONE, "token not yet valid (nbf)"},
    {"non_integer_exp_beyond_year_9999", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\",\"exp\":1e300}", S_GOOD, M_NONE,
     "exp is not a NumericDate"},
    {"negative_non_integer_exp", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\",\"exp\":-0.5}", S_GOOD, M_NONE,
     "exp is not a NumericDate"},
    {"exp_overflowing", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\","
     "\"exp\":9223372036854775807}",
     S_GOOD, M_NONE, "exp out of range"},
    {"nbf_as_string", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\",\"nbf\":\"0\"," CLAIMS_TAIL,
     S_GOOD, M_NONE, "nbf is not a NumericDate"},
    {"bad_signature_flipped_bit", HDR, CLAIMS, S_GOOD, M_FLIP_SIG, "signature invalid"},
    {"signed_by_another_key", HDR, CLAIMS, S_OTHER, M_NONE, "signature invalid"},
    {"truncated_signature", HDR, CLAIMS, S_GOOD, M_CUT_SIG,
     "signature length differs from the key size"},
    {"truncated_to_two_segments", HDR, CLAIMS, S_GOOD, M_DROP_SIG_SEG,
     "token has fewer than three segments"},
    {"extra_segment", HDR, CLAIMS, S_GOOD, M_EXTRA_SEG, "token has more than three segments"},
    {"padding_in_signature", HDR, CLAIMS, S_GOOD, M_PAD_SIG,
     "signature is not canonical base64url"},
    {"padding_in_header", HDR, CLAIMS, S_GOOD, M_PAD_HDR, "header is not canonical base64url"},
    {"non_zero_trailing_bits_in_signature", HDR, CLAIMS, S_GOOD, M_TRAIL_BITS,
     "signature is not canonical base64url"},
    {"invalid_character_in_signed_payload", HDR, CLAIMS, S_GOOD, M_PAYLOAD_PLUS,
     "payload is not canonical base64url"},
    {"empty_signature", HDR, CLAIMS, S_GOOD, M_EMPTY_SIG, "signature segment empty"},
    {"duplicate_claim_keys", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"sub\":\"admin-1\",\"aud\":\"tw-web\","
     "\"exp\":1700000600}",
     S_GOOD, M_NONE, "claims have duplicate JSON keys"},
    {"duplicate_header_keys", "{\"alg\":\"RS256\",\"kid\":\"good\",\"alg\":\"none\"}", CLAIMS,
     S_GOOD, M_NONE, "header has duplicate JSON keys"},
    {"crit_header", "{\"alg\":\"RS256\",\"kid\":\"good\",\"crit\":[\"exp\"]}", CLAIMS, S_GOOD,
     M_NONE, "crit header refused"},
    {"jku_pointing_elsewhere",
     "{\"alg\":\"RS256\",\"kid\":\"good\",\"jku\":\"https://evil.example/jwks.json\"}", CLAIMS,
     S_GOOD, M_NONE, "jku header refused (key URLs are never followed)"},
    {"x5u_pointing_elsewhere",
     "{\"alg\":\"RS256\",\"kid\":\"good\",\"x5u\":\"https://evil.example/cert.pem\"}", CLAIMS,
     S_GOOD, M_NONE, "x5u header refused (key URLs are never followed)"},
    {"embedded_jwk", "{\"alg\":\"RS256\",\"kid\":\"good\",\"jwk\":{\"kty\":\"RSA\"}}", CLAIMS,
     S_GOOD, M_NONE, "jwk header refused (embedded keys are never trusted)"},
    {"embedded_x5c", "{\"alg\":\"RS256\",\"kid\":\"good\",\"x5c\":[\"MII\"]}", CLAIMS, S_GOOD,
     M_NONE, "x5c header refused (embedded certificates are never trusted)"},
    {"key_of_1024_bits_in_jwks", "{\"alg\":\"RS256\",\"kid\":\"weak\"}", CLAIMS, S_WEAK, M_NONE,
     "RSA key under 2048 bits refused"},
    {"token_of_9_KiB", HDR, NULL, S_GOOD, M_BIG, "token larger than the size cap"},
    {"bearer_without_space", HDR, CLAIMS, S_GOOD, M_GLUED_BEARER,
     "authorization scheme is not Bearer"},
    {"missing_bearer_prefix", HDR, CLAIMS, S_GOOD, M_NO_BEARER,
     "authorization scheme is not Bearer"},
    {"two_spaces_after_bearer", HDR, CLAIMS, S_GOOD, M_TWO_SPACES,
     "header is not canonical base64url"},
    {"header_not_an_object", "[\"RS256\"]", CLAIMS, S_GOOD, M_NONE, "header is not a JSON object"},
    {"header_not_json", "{alg:RS256}", CLAIMS, S_GOOD, M_NONE, "header is not JSON"},
    {"claims_not_an_object", HDR, "[1,2,3]", S_GOOD, M_NONE, "claims are not a JSON object"},
    {"claims_not_json", HDR, "{\"exp\":", S_GOOD, M_NONE, "claims are not JSON"},
    {"role_unknown_value", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\",\"role\":\"root\"," CLAIMS_TAIL,
     S_GOOD, M_NONE, "role claim has an unknown value"},
    {"role_not_a_string", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\",\"role\":[\"admin\"]"
     "," CLAIMS_TAIL,
     S_GOOD, M_NONE, "role claim is not a string"},
    {"role_admin_in_wrong_case", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"aud\":\"tw-web\",\"role\":\"Admin\"," CLAIMS_TAIL,
     S_GOOD, M_NONE, "role claim has an unknown value"},
    {"sub_missing", HDR, "{\"iss\":\"tradewink-test\",\"aud\":\"tw-web\"," CLAIMS_TAIL, S_GOOD,
     M_NONE, "sub missing"},
    {"sub_empty", HDR, "{\"iss\":\"tradewink-test\",\"sub\":\"\",\"aud\":\"tw-web\"," CLAIMS_TAIL,
     S_GOOD, M_NONE, "sub missing"},
    {"sub_with_newline", HDR,
     "{\"iss\":\"tradewink-test\",\"sub\":\"a\\nb\",\"aud\":\"tw-web\"," CLAIMS_TAIL, S_GOOD,
     M_NONE, "sub holds control characters"},
};

static char *build_token(const bad_row *r)
{
    char *in = NULL, *sig = NULL, *tok = NULL, *pub = NULL;
    char *payload = r->payload ? strdup(r->payload) : NULL;
    if (r->m == M_BIG) {
        payload = malloc(9300);
        int n = snprintf(payload, 9300, "{\"iss\":\"tradewink-test\",\"sub\":\"u\",\"pad\":\"");
        memset(payload + n, 'x', 9000);
        snprintf(payload + n + 9000, 300, "\",\"aud\":\"tw-web\"," CLAIMS_TAIL);
    }
    in = tu_signing_input(r->header, payload);
    if (r->m == M_PAYLOAD_PLUS) { /* a '+' inside the payload segment, then signed as is */
        char *dot = strchr(in, '.');
        dot[1] = '+';
    }
    switch (r->s) {
    case S_GOOD:
        sig = tu_rsa_sig(good, "SHA256", 0, in);
        break;
    case S_OTHER:
        sig = tu_rsa_sig(other, "SHA256", 0, in);
        break;
    case S_WEAK:
        sig = tu_rsa_sig(weak, "SHA256", 0, in);
        break;
    case S_RS384:
        sig = tu_rsa_sig(good, "SHA384", 0, in);
        break;
    case S_NONE:
        sig = strdup("");
        break;
    case S_HS_PUB: { /* the classic key confusion: HMAC keyed with the PEM public key */
        BIO *b = BIO_new(BIO_s_mem());
        PEM_write_bio_PUBKEY(b, good);
        char *pem;
        long pl = BIO_get_mem_data(b, &pem);
        sig = tu_hmac_sig(pem, (size_t)pl, in);
        BIO_free(b);
        break;
    }
    }
    assert_non_null(sig);
    size_t sl = strlen(sig);
    switch (r->m) {
    case M_FLIP_SIG:
        sig[sl / 2] = sig[sl / 2] == 'A' ? 'B' : 'A';
        break;
    case M_CUT_SIG:
        sig[sl - 6] = 0; /* 336 characters: 252 canonical bytes */
        break;
    case M_TRAIL_BITS: { /* 256-byte signature: the last character carries 4 unused bits */
        static const char alpha[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *p = strchr(alpha, sig[sl - 1]);
        sig[sl - 1] = alpha[(p - alpha) | 1];
        break;
    }
    case M_EMPTY_SIG:
        sig[0] = '\0';
        break;
    default:
        break;
    }
    if (r->m == M_DROP_SIG_SEG)
        tok = strdup(in);
    else if (r->m == M_PAD_SIG)
        tok = tu_join(in, ".", pub = tu_join(sig, "", "=="));
    else if (r->m == M_EXTRA_SEG)
        tok = tu_join(in, ".", pub = tu_join(sig, ".", "e30"));
    else
        tok = tu_join(in, ".", sig);
    if (r->m == M_PAD_HDR) {
        char *dot = strchr(tok, '.');
        *dot = '\0';
        char *t2 = tu_join(tok, "=.", dot + 1);
        free(tok);
        tok = t2;
    }
    free(pub);
    free(in);
    free(sig);
    free(payload);
    return tok;
}

static char *bearer_for(const bad_row *r, const char *tok)
{
    switch (r->m) {
    case M_GLUED_BEARER:
        return tu_join("Bearer", "", tok);
    case M_NO_BEARER:
        return strdup(tok);
    case M_TWO_SPACES:
        return tu_join("Bearer  ", "", tok);
    default:
        return tu_join("Bearer ", "", tok);
    }
}

static void check_refused(auth_verifier *v, const char *authz, const char *want, const char *name)
{
    auth_principal p;
    const char *why = NULL;
    memset(&p, 0x5a, sizeof(p));
    auth_result r = auth_verify(v, authz, NOW, &p, &why);
    if (r != AUTH_UNAUTHENTICATED || !why || strcmp(why, want) != 0)
        fail_msg("%s: want refused for \"%s\", got %s \"%s\"", name, want,
                 r == AUTH_OK ? "accepted" : "refused", why ? why : "(null)");
    assert_int_equal(p.subject[0], 0); /* out is zeroed on failure */
    assert_int_equal(p.role, 0);
}

static void test_bad_token_table(void **state)
{
    (void)state;
    assert_true(sizeof(bad_rows) / sizeof(bad_rows[0]) >= 30);
    for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
        const bad_row *r = &bad_rows[i];
        char *tok = build_token(r), *authz = bearer_for(r, tok);
        check_refused(ver, authz, r->reason, r->name);
        /* the logged reason is static text, it never carries token bytes */
        free(tok);
        free(authz);
    }
}

static void test_bearer_edge_cases_refused(void **state)
{
    (void)state;
    check_refused(ver, NULL, "authorization metadata missing", "null");
    check_refused(ver, "", "authorization metadata empty", "empty");
    check_refused(ver, "Bearer ", "bearer token empty", "empty bearer");
    check_refused(ver, "Bearer", "authorization scheme is not Bearer", "no space");
    check_refused(ver, "Bearerx abc", "authorization scheme is not Bearer", "glued");
    check_refused(ver, "bearerx abc", "authorization scheme is not Bearer", "glued lower");
    check_refused(ver, "Bearer\tabc", "authorization scheme is not Bearer", "tab");
    check_refused(ver, "Basic dXNlcjpwYXNz", "authorization scheme is not Bearer", "basic");
    check_refused(ver, "Basic x", "authorization scheme is not Bearer", "basic x");
    check_refused(ver, "BEARER ", "bearer token empty", "empty upper bearer");
    check_refused(ver, "Bearer ..", "header segment empty", "dots");
    check_refused(ver, "Bearer a.b", "token has fewer than three segments", "two");
}

typedef struct {
    const char *name, *payload;
    auth_role role;
} good_row;

static const good_row good_rows[] = {
    {"user_token_accepted", CLAIMS, AUTH_ROLE_USER},
    {"admin_role_accepted",
     "{\"iss\":\"tradewink-test\",\"sub\":\"user-1\",\"aud\":\"tw-web\",\"role\":"
     "\"admin\"," CLAIMS_TAIL,
     AUTH_ROLE_ADMIN},
    {"aud_array_with_one_accepted_value",
     "{\"iss\":\"tradewink-test\",\"sub\":\"user-1\",\"aud\":[\"x\",\"tw-admin\"]," CLAIMS_TAIL,
     AUTH_ROLE_USER},
    {"clerk_azp_without_aud",
     "{\"iss\":\"tradewink-test\",\"sub\":\"user-1\",\"azp\":\"tw-web\"," CLAIMS_TAIL,
     AUTH_ROLE_USER},
    {"expired_within_clock_skew",
     "{\"iss\":\"tradewink-test\",\"sub\":\"user-1\",\"aud\":\"tw-web\",\"exp\":1699999996}",
     AUTH_ROLE_USER},
    {"nbf_within_clock_skew",
     "{\"iss\":\"tradewink-test\",\"sub\":\"user-1\",\"aud\":\"tw-web\",\"nbf\":"
     "1700000004," CLAIMS_TAIL,
     AUTH_ROLE_USER},
    /* RFC 7519 2: NumericDates may be non-integer (most JOSE libraries issue and accept them). */
    {"non_integer_exp_and_iat_accepted",
     "{\"iss\":\"tradewink-test\",\"sub\":\"user-1\",\"aud\":\"tw-web\",\"iat\":"
     "1700000000.25,\"exp\":1700000060.5}",
     AUTH_ROLE_USER},
    {"unknown_extra_claims_ignored",
     "{\"iss\":\"tradewink-test\",\"sub\":\"user-1\",\"aud\":\"tw-web\",\"x\":{\"y\":[1]}"
     "," CLAIMS_TAIL,
     AUTH_ROLE_USER},
};

static void test_good_token_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good_rows) / sizeof(good_rows[0]); i++) {
        char *tok = tu_rs256(good, HDR, good_rows[i].payload), *authz;
        auth_principal p;
        const char *why = NULL;
        authz = tu_join("Bearer ", "", tok);
        if (auth_verify(ver, authz, NOW, &p, &why) != AUTH_OK)
            fail_msg("%s: refused: %s", good_rows[i].name, why);
        assert_string_equal(p.subject, "user-1");
        assert_int_equal(p.role, good_rows[i].role);
        assert_string_equal(why, "ok");
        free(tok);
        free(authz);
    }
}

static void test_non_integer_exp_is_kept_to_the_second_before(void **state)
{
    (void)state;
    char *tok = tu_rs256(good, HDR,
                         "{\"iss\":\"tradewink-test\",\"sub\":\"user-1\",\"aud\":\"tw-web\","
                         "\"exp\":1700000060.9}");
    char *authz = tu_join("Bearer ", "", tok);
    auth_principal p;
    const char *why = NULL;
    assert_int_equal(auth_verify(ver, authz, NOW, &p, &why), AUTH_OK);
    assert_int_equal(p.expires_at, NOW + 60); /* never later than the token says */
    free(tok);
    free(authz);
}

static void test_bearer_scheme_is_case_insensitive(void **state)
{
    (void)state;
    /* RFC 7235 2.1: auth-scheme names are case-insensitive. */
    static const char *const schemes[] = {"Bearer ", "bearer ", "BEARER ", "bEaReR "};
    char *tok = tu_rs256(good, HDR, CLAIMS);
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        char *authz = tu_join(schemes[i], "", tok);
        auth_principal p;
        const char *why = NULL;
        if (auth_verify(ver, authz, NOW, &p, &why) != AUTH_OK)
            fail_msg("\"%s<jwt>\" refused: %s", schemes[i], why);
        assert_string_equal(p.subject, "user-1");
        free(authz);
    }
    free(tok);
}

static auth_verifier *make_static(size_t cache_entries, const char *role_claim)
{
    char *j1 = auth_rsa_jwk_json(good, "good"), *j2 = auth_rsa_jwk_json(weak, "weak");
    char doc[8192], err[256];
    const char *why = NULL;
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", j1, j2);
    free(j1);
    free(j2);
    auth_keyset *ks = auth_keyset_from_jwks(doc, strlen(doc), AUTH_ALG_BIT(AUTH_ALG_RS256), &why);
    assert_non_null(ks);
    auth_config cfg;
    auth_config_defaults(&cfg);
    cfg.mode = AUTH_MODE_JWKS;
    cfg.issuer = "tradewink-test";
    cfg.audience = "tw-web, tw-admin";
    cfg.cache_entries = cache_entries;
    if (role_claim)
        cfg.role_claim = role_claim;
    auth_verifier *v = auth_verifier_create_static(&cfg, ks, err, sizeof(err));
    assert_non_null(v);
    return v;
}

static void test_cache_hit_still_checks_exp(void **state)
{
    (void)state;
    auth_verifier *v = make_static(64, NULL);
    char *tok = tu_rs256(good, HDR, CLAIMS), *authz = tu_join("Bearer ", "", tok);
    auth_principal p;
    const char *why;
    auth_stats st;
    assert_int_equal(auth_verify(v, authz, NOW, &p, &why), AUTH_OK);
    assert_int_equal(auth_verify(v, authz, NOW + 100, &p, &why), AUTH_OK);
    auth_verifier_stats(v, &st);
    assert_int_equal(st.cache_hits, 1);
    assert_string_equal(p.subject, "user-1");
    /* past exp + skew the cached entry must not answer */
    assert_int_equal(auth_verify(v, authz, 1700000606, &p, &why), AUTH_UNAUTHENTICATED);
    assert_string_equal(why, "token expired");
    /* a tampered token never hits the entry of the original */
    authz[strlen(authz) - 3] ^= 1;
    assert_int_equal(auth_verify(v, authz, NOW, &p, &why), AUTH_UNAUTHENTICATED);
    free(tok);
    free(authz);
    auth_verifier_destroy(v);
}

static void test_cache_is_bounded(void **state)
{
    (void)state;
    auth_verifier *v = make_static(64, NULL);
    char payload[256];
    auth_principal p;
    const char *why;
    auth_stats st;
    char *authz[200];
    for (int i = 0; i < 200; i++) {
        snprintf(payload, sizeof(payload),
                 "{\"iss\":\"tradewink-test\",\"sub\":\"user-%d\",\"aud\":\"tw-web\"," CLAIMS_TAIL,
                 i);
        char *tok = tu_rs256(good, HDR, payload);
        authz[i] = tu_join("Bearer ", "", tok);
        free(tok);
        assert_int_equal(auth_verify(v, authz[i], NOW, &p, &why), AUTH_OK);
    }
    for (int i = 0; i < 200; i++) {
        assert_int_equal(auth_verify(v, authz[i], NOW, &p, &why), AUTH_OK);
        char want[32];
        snprintf(want, sizeof(want), "user-%d", i);
        assert_string_equal(p.subject, want); /* never another token's principal */
        free(authz[i]);
    }
    auth_verifier_stats(v, &st);
    assert_true(st.cache_hits <= 64); /* 200 distinct tokens cannot all stay cached */
    auth_verifier_destroy(v);
}

static void test_role_claim_path_configurable(void **state)
{
    (void)state;
    auth_verifier *v = make_static(0, "public_metadata.role");
    char *tok = tu_rs256(good, HDR,
                         "{\"iss\":\"tradewink-test\",\"sub\":\"user-1\",\"aud\":\"tw-web\","
                         "\"role\":\"user\",\"public_metadata\":{\"role\":\"admin\"}," CLAIMS_TAIL);
    char *authz = tu_join("Bearer ", "", tok);
    auth_principal p;
    const char *why;
    assert_int_equal(auth_verify(v, authz, NOW, &p, &why), AUTH_OK);
    assert_int_equal(p.role, AUTH_ROLE_ADMIN);
    free(tok);
    free(authz);
    auth_verifier_destroy(v);
}

/* Dev mode end to end: key file created 0600, minted token verifies, iss/kid per contract. */
static void test_dev_mode_mint_and_verify(void **state)
{
    (void)state;
    char path[160], err[256];
    snprintf(path, sizeof(path), "%s/dev2/key.pem", tmpdir);
    auth_config cfg;
    auth_config_defaults(&cfg);
    cfg.dev_key_file = path;
    assert_null(auth_verifier_create(&cfg, err, sizeof(err))); /* directory missing */
    snprintf(path, sizeof(path), "%s/dev2", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/dev2/key.pem", tmpdir);
    auth_verifier *v = auth_verifier_create(&cfg, err, sizeof(err));
    assert_non_null(v);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *tok = NULL, *authz;
    assert_int_equal(auth_mint_dev_token(v, "alice", AUTH_ROLE_ADMIN, 600, NOW, &tok), 0);
    authz = tu_join("Bearer ", "", tok);
    auth_principal p;
    const char *why;
    assert_int_equal(auth_verify(v, authz, NOW + 10, &p, &why), AUTH_OK);
    assert_string_equal(p.subject, "alice");
    assert_int_equal(p.role, AUTH_ROLE_ADMIN);
    assert_int_equal(p.expires_at, NOW + 600);
    assert_int_equal(p.issued_at, NOW);
    /* the same file loads to the same key: a second verifier accepts the token */
    auth_verifier *v2 = auth_verifier_create(&cfg, err, sizeof(err));
    assert_non_null(v2);
    assert_int_equal(auth_verify(v2, authz, NOW + 10, &p, &why), AUTH_OK);
    /* a dev verifier with another issuer refuses it */
    cfg.issuer = "someone-else";
    auth_verifier *v3 = auth_verifier_create(&cfg, err, sizeof(err));
    assert_int_equal(auth_verify(v3, authz, NOW + 10, &p, &why), AUTH_UNAUTHENTICATED);
    assert_string_equal(why, "iss does not match the configured issuer");
    /* minting argument checks */
    char *t2 = NULL;
    assert_int_equal(auth_mint_dev_token(v, "", AUTH_ROLE_USER, 600, NOW, &t2), -1);
    assert_int_equal(auth_mint_dev_token(v, "a\nb", AUTH_ROLE_USER, 600, NOW, &t2), -1);
    assert_int_equal(auth_mint_dev_token(v, "a", (auth_role)7, 600, NOW, &t2), -1);
    assert_int_equal(auth_mint_dev_token(v, "a", AUTH_ROLE_USER, 0, NOW, &t2), -1);
    assert_int_equal(auth_mint_dev_token(ver, "a", AUTH_ROLE_USER, 60, NOW, &t2), -1);
    assert_null(t2);
    free(tok);
    free(authz);
    auth_verifier_destroy(v);
    auth_verifier_destroy(v2);
    auth_verifier_destroy(v3);
}

/* The dev token contract: header kid is the RFC 7638 thumbprint; claims iss/sub/role/iat/exp. */
static void test_dev_token_contract(void **state)
{
    (void)state;
    char *tok = NULL;
    assert_int_equal(auth_devkey_mint(dev, NULL, "bob", AUTH_ROLE_USER, 60, NOW, &tok), 0);
    auth_jws jws;
    const char *why;
    assert_int_equal(auth_jws_parse(tok, strlen(tok), 1, &jws, &why), 0);
    assert_string_equal(jws.kid, auth_devkey_kid(dev));
    char kid[44];
    assert_int_equal(auth_rsa_thumbprint(good, kid), 0);
    assert_string_equal(kid, auth_devkey_kid(dev));
    char *pl;
    size_t n;
    assert_int_equal(auth_jws_payload(&jws, &pl, &n, &why), 0);
    char want[200];
    snprintf(want, sizeof(want),
             "{\"iss\":\"tradewink-dev\",\"sub\":\"bob\",\"role\":\"user\",\"iat\":%d,"
             "\"exp\":%d}",
             NOW, NOW + 60);
    assert_string_equal(pl, want);
    free(pl);
    free(tok);
}

/* RFC 7638 section 3.1 example key and thumbprint. */
static void test_thumbprint_rfc7638_example(void **state)
{
    (void)state;
    const char *doc =
        "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"x\",\"e\":\"AQAB\",\"n\":\"0vx7agoebGcQSuuPiLJXZp"
        "tN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
        "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAt"
        "aSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4l"
        "Fd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\"}]}";
    const char *why;
    auth_keyset *ks = auth_keyset_from_jwks(doc, strlen(doc), 1, &why);
    assert_non_null(ks);
    char kid[44];
    assert_int_equal(auth_rsa_thumbprint(ks->keys[0].pkey, kid), 0);
    assert_string_equal(kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    auth_keyset_unref(ks);
}

/* PKCS#1 ("RSA PRIVATE KEY") dev key files load too and give the same kid. */
static void test_devkey_pkcs1_accepted(void **state)
{
    (void)state;
    char path[160], err[256];
    snprintf(path, sizeof(path), "%s/pkcs1.pem", tmpdir);
    BIO *b = BIO_new_file(path, "w");
    assert_true(PEM_write_bio_PrivateKey_traditional(b, good, NULL, NULL, 0, NULL, NULL));
    BIO_free(b);
    char *pem = tu_read_file(path, NULL);
    assert_non_null(strstr(pem, "BEGIN RSA PRIVATE KEY"));
    free(pem);
    auth_devkey *k = auth_devkey_load_or_create(path, err, sizeof(err));
    assert_non_null(k);
    assert_string_equal(auth_devkey_kid(k), auth_devkey_kid(dev));
    auth_devkey_destroy(k);
    /* a 1024-bit dev key is refused at load */
    snprintf(path, sizeof(path), "%s/weak.pem", tmpdir);
    b = BIO_new_file(path, "w");
    assert_true(PEM_write_bio_PrivateKey(b, weak, NULL, NULL, 0, NULL, NULL));
    BIO_free(b);
    assert_null(auth_devkey_load_or_create(path, err, sizeof(err)));
    assert_non_null(strstr(err, "under 2048 bits"));
    /* garbage is refused */
    snprintf(path, sizeof(path), "%s/garbage.pem", tmpdir);
    assert_int_equal(tu_write_file(path, "not a key\n"), 0);
    assert_null(auth_devkey_load_or_create(path, err, sizeof(err)));
}

static void test_pem_mode(void **state)
{
    (void)state;
    char path[160], err[256];
    snprintf(path, sizeof(path), "%s/pub.pem", tmpdir);
    BIO *b = BIO_new_file(path, "w");
    assert_true(PEM_write_bio_PUBKEY(b, good));
    BIO_free(b);
    auth_config cfg;
    auth_config_defaults(&cfg);
    cfg.mode = AUTH_MODE_PEM;
    cfg.public_key_file = path;
    cfg.issuer = "tradewink-test";
    auth_verifier *v = auth_verifier_create(&cfg, err, sizeof(err));
    assert_non_null(v);
    char *tok = tu_rs256(good, "{\"alg\":\"RS256\"}", CLAIMS), *authz = tu_join("Bearer ", "", tok);
    auth_principal p;
    const char *why;
    assert_int_equal(auth_verify(v, authz, NOW, &p, &why), AUTH_OK);
    free(tok);
    free(authz);
    tok = tu_rs256(other, "{\"alg\":\"RS256\"}", CLAIMS);
    authz = tu_join("Bearer ", "", tok);
    assert_int_equal(auth_verify(v, authz, NOW, &p, &why), AUTH_UNAUTHENTICATED);
    assert_string_equal(why, "signature invalid");
    free(tok);
    free(authz);
    auth_verifier_destroy(v);
    /* PKCS#1 public key PEM also loads; a 1024-bit one is refused at start */
    snprintf(path, sizeof(path), "%s/weakpub.pem", tmpdir);
    b = BIO_new_file(path, "w");
    assert_true(PEM_write_bio_PUBKEY(b, weak));
    BIO_free(b);
    assert_null(auth_verifier_create(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "under 2048 bits"));
    cfg.public_key_file = "/nonexistent/pub.pem";
    assert_null(auth_verifier_create(&cfg, err, sizeof(err)));
}

static void test_config_validation(void **state)
{
    (void)state;
    auth_config cfg;
    char err[256];
    auth_config_defaults(&cfg);
    cfg.dev_key_file = devpath;
    cfg.algorithms = "RS256,HS256";
    assert_null(auth_verifier_create(&cfg, err, sizeof(err)));
    cfg.algorithms = "none";
    assert_null(auth_verifier_create(&cfg, err, sizeof(err)));
    cfg.algorithms = "RS256";
    cfg.audience = "a,,b";
    assert_null(auth_verifier_create(&cfg, err, sizeof(err)));
    cfg.audience = NULL;
    cfg.mode = AUTH_MODE_JWKS;
    cfg.jwks_url = "http://127.0.0.1/jwks.json";
    assert_null(auth_verifier_create(&cfg, err, sizeof(err)));
    assert_string_equal(err, "JWKS URL must start with https://");
    auth_verifier_destroy(NULL);
    auth_devkey_destroy(NULL);
}

static void test_jwks_document_policy(void **state)
{
    (void)state;
    const char *why;
    char *g = auth_rsa_jwk_json(good, "a"), doc[4096];
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", g, g);
    assert_null(auth_keyset_from_jwks(doc, strlen(doc), 1, &why));
    assert_string_equal(why, "JWKS repeats a kid");
    snprintf(doc, sizeof(doc), "{\"keys\":[%s],\"keys\":[%s]}", g, g);
    assert_null(auth_keyset_from_jwks(doc, strlen(doc), 1, &why));
    assert_string_equal(why, "JWKS is not a JSON object (or has duplicate keys)");
    snprintf(doc, sizeof(doc), "[%s]", g);
    assert_null(auth_keyset_from_jwks(doc, strlen(doc), 1, &why));
    assert_string_equal(why, "JWKS is not a JSON object (or has duplicate keys)");
    snprintf(doc, sizeof(doc), "{\"keys\":[]}");
    assert_null(auth_keyset_from_jwks(doc, strlen(doc), 1, &why));
    assert_string_equal(why, "JWKS has no \"keys\" array of 1..64 keys");
    /* private members make the whole set suspect */
    snprintf(doc, sizeof(doc), "{\"keys\":[%.*s,\"d\":\"AQAB\"}]}", (int)strlen(g) - 1, g);
    assert_null(auth_keyset_from_jwks(doc, strlen(doc), 1, &why));
    assert_string_equal(why, "JWKS holds private key material");
    /* an encryption-only key is skipped: nothing left */
    snprintf(doc, sizeof(doc), "{\"keys\":[%.*s,\"use\":\"enc\"}]}", (int)strlen(g) - 1, g);
    assert_null(auth_keyset_from_jwks(doc, strlen(doc), 1, &why));
    assert_string_equal(why, "JWKS has no RSA signing key");
    free(g);
}

static int group_setup(void **state)
{
    (void)state;
    char err[256];
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(devpath, sizeof(devpath), "%s/dev.pem", tmpdir);
    dev = auth_devkey_load_or_create(devpath, err, sizeof(err));
    if (!dev)
        return -1;
    good = auth_devkey_pkey(dev);
    other = EVP_RSA_gen(2048);
    weak = EVP_RSA_gen(1024);
    ver = make_static(0, NULL);
    return other && weak && ver ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[200];
    auth_verifier_destroy(ver);
    auth_devkey_destroy(dev);
    EVP_PKEY_free(other);
    EVP_PKEY_free(weak);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_token_table),
        cmocka_unit_test(test_bearer_edge_cases_refused),
        cmocka_unit_test(test_good_token_table),
        cmocka_unit_test(test_non_integer_exp_is_kept_to_the_second_before),
        cmocka_unit_test(test_bearer_scheme_is_case_insensitive),
        cmocka_unit_test(test_cache_hit_still_checks_exp),
        cmocka_unit_test(test_cache_is_bounded),
        cmocka_unit_test(test_role_claim_path_configurable),
        cmocka_unit_test(test_dev_mode_mint_and_verify),
        cmocka_unit_test(test_dev_token_contract),
        cmocka_unit_test(test_thumbprint_rfc7638_example),
        cmocka_unit_test(test_devkey_pkcs1_accepted),
        cmocka_unit_test(test_pem_mode),
        cmocka_unit_test(test_config_validation),
        cmocka_unit_test(test_jwks_document_policy),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
