/* test_redact.c - log redaction, table driven: every sensitive shape and name is redacted
 * (the secret part never survives), harmless text and look-alike names pass unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vault/vault.h"

#define JWT "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlX2J5dGVz"
#define FERNET                                                                                     \
    "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_"                                    \
    "5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA=="
#define PEM                                                                                        \
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"

static const struct {
    const char *in;
    const char *secret; /* must not survive */
    const char *expect; /* exact output, or NULL to only check the secret is gone */
} text_cases[] = {
    {"auth with " JWT " ok", "c2lnbmF0dXJl", "auth with [REDACTED:jwt] ok"},
    {"unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0. end", "eyJzdWIiOiJ1In0", NULL},
    {"token " FERNET " stored", "021cpGVWKZ", NULL},
    {"key: " PEM " done", "MIIEvQIBADAN", "key: [REDACTED:pem] done"},
    {"truncated -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA", "MIIEowIBAAK", NULL},
    {"Authorization: Bearer abc.def-ghi", "abc.def-ghi", "Authorization: [REDACTED]"},
    {"sent bearer sk-abcdef123456 upstream", "sk-abcdef123456", "sent bearer [REDACTED] upstream"},
    {"header Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "header Basic [REDACTED]"},
    {"postgres://tw:hunter2@db:5432/tw", "hunter2", "postgres://tw:[REDACTED]@db:5432/tw"},
    {"redis://:s3cr3t@cache:6379", "s3cr3t", "redis://:[REDACTED]@cache:6379"},
    {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw here", "MfKQ9r8GKYqr", "whsec_[REDACTED] here"},
    {"password=hunter2&user=bob", "hunter2", "password=[REDACTED]&user=bob"},
    {"api_key: AKIAXYZ123, ok", "AKIAXYZ123", "api_key: [REDACTED], ok"},
    {"APCA-API-SECRET-KEY=abcd1234efgh", "abcd1234efgh", NULL},
    {"X-Api-Key: k-123456", "k-123456", NULL},
    {"client_secret=\"quoted value here\"", "quoted value", NULL},
    {"{\"passwd\": \"pw1234\"}", "pw1234", NULL},
    {"Cookie: session=abcdef0123", "abcdef0123", NULL},
    {"TW_VAULT_MASTER_KEYS=v2:AAAAbbbbCCCC", "AAAAbbbbCCCC", NULL},
    {"access_token=ya29.a0AfH6SM", "ya29.a0AfH6SM", NULL},
    /* Alpaca's own key header, one-time codes, payment cards (issue 20 part 5). */
    {"APCA-API-KEY-ID: PKAB12CD34EF56GH", "PKAB12CD34EF56GH", "APCA-API-KEY-ID: [REDACTED]"},
    {"otp=493817 sent", "493817", "otp=[REDACTED] sent"},
    {"TOTP: 112233", "112233", NULL},
    {"two_factor=556677", "556677", NULL},
    {"2fa_code: 778899", "778899", NULL},
    {"user_otp=135790", "135790", NULL},
    {"card 4111 1111 1111 1111 on file", "1111 1111 1111", "card [REDACTED:card] on file"},
    {"pay with 5500-0055-5555-5559.", "5555-5559", "pay with [REDACTED:card]."},
    {"amex 378282246310005 ok", "378282246310005", "amex [REDACTED:card] ok"},
    {"{\"note\":\"my card is 6011111111111117\"}", "6011111111111117", NULL},
};

static const char *const harmless[] = {
    "plain log line with nothing secret",
    "author=alice token_count=42 tokens_used=7",
    "max_tokens: 100",
    "https://api.alpaca.markets/v2/orders?limit=5",
    "user@example.com wrote to postgres://db:5432/tw",
    "the bearer of bad news",
    "secretary=bob",
    "keyId=PKAB12CD34 broker=alpaca",
    "eyJ is how JSON base64 starts",
    "gAAAAA short",
    "order 123 filled at 187.25",
    "time_us=1796050800123456 seq=42",  /* a 16-digit timestamp starts with 1 */
    "ref 4111111111111112 fails Luhn",  /* not a card number */
    "order 412345678901 is 12 digits",  /* too short */
    "id 41111111111111110000 too long", /* longer than any card */
    "laptop depot topology factorial",
    "",
};

static void every_sensitive_shape_is_redacted(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
        char *out = NULL;
        assert_int_equal(vault_redact_text(text_cases[i].in, strlen(text_cases[i].in), &out),
                         VAULT_OK);
        print_message("case %zu -> %s\n", i, out);
        if (strstr(out, text_cases[i].secret) != NULL)
            fail_msg("case %zu leaked '%s' in '%s'", i, text_cases[i].secret, out);
        assert_non_null(strstr(out, "REDACTED"));
        if (text_cases[i].expect != NULL)
            assert_string_equal(out, text_cases[i].expect);
        free(out);
    }
}

static void harmless_text_is_untouched(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(harmless) / sizeof(harmless[0]); i++) {
        char *out = NULL;
        assert_int_equal(vault_redact_text(harmless[i], strlen(harmless[i]), &out), VAULT_OK);
        assert_string_equal(out, harmless[i]);
        free(out);
    }
}

static void sensitive_names_match_whole_or_by_suffix(void **state)
{
    static const struct {
        const char *name;
        int sensitive;
    } cases[] = {
        {"secret", 1},
        {"api_key", 1},
        {"apiKey", 1},
        {"API-KEY", 1},
        {"APCA-API-SECRET-KEY", 1},
        {"x-api-key", 1},
        {"token", 1},
        {"access_token", 1},
        {"Authorization", 1},
        {"password", 1},
        {"passwd", 1},
        {"private_key", 1},
        {"master_key", 1},
        {"cookie", 1},
        {"Set-Cookie", 1},
        {"client_secret", 1},
        {"db_password", 1},
        {"refresh-token", 1},
        {"webhook.secret", 1},
        {"author", 0},
        {"token_count", 0},
        {"tokens_used", 0},
        {"max_tokens", 0},
        {"secretary", 0},
        {"key_id", 0},
        {"api_key_id", 0},
        {"passwordless", 0},
        {"user", 0},
        {"", 0},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (vault_redact_is_sensitive_name(cases[i].name, strlen(cases[i].name)) !=
            cases[i].sensitive)
            fail_msg("name '%s' expected %d", cases[i].name, cases[i].sensitive);
    }
}

static void json_lines_redact_keys_and_shapes(void **state)
{
    static const struct {
        const char *in;
        const char *expect;
    } cases[] = {
        {"{\"msg\":\"hi\",\"password\":\"pw\"}", "{\"msg\":\"hi\",\"password\":\"[REDACTED]\"}"},
        {"{\"api_key\":12345,\"n\":1}", "{\"api_key\":\"[REDACTED]\",\"n\":1}"},
        {"{\"secret\":{\"a\":[1,\"x\"]},\"ok\":true}", "{\"secret\":\"[REDACTED]\",\"ok\":true}"},
        {"{\"headers\":{\"Authorization\":\"Bearer abc\"}}",
         "{\"headers\":{\"Authorization\":\"[REDACTED]\"}}"},
        {"{\"msg\":\"got " JWT "\"}", "{\"msg\":\"got [REDACTED:jwt]\"}"},
        {"{\"pem\":\"-----BEGIN KEY-----\\nAAAA\\n-----END KEY-----\"}",
         "{\"pem\":\"[REDACTED:pem]\"}"},
        {"{\"url\":\"postgres://u:p%40ss@h/db\"}", "{\"url\":\"postgres://u:[REDACTED]@h/db\"}"},
        {"{\"token_count\":3,\"author\":\"al\\\"ice\",\"arr\":[\"a\",null]}",
         "{\"token_count\":3,\"author\":\"al\\\"ice\",\"arr\":[\"a\",null]}"},
        {"{\"t\\u006fken\":\"x\"}", "{\"t\\u006fken\":\"[REDACTED]\"}"}, /* escaped name */
        {"  [1, 2]  ", "  [1, 2]  "},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        assert_int_equal(vault_redact_json_line(cases[i].in, strlen(cases[i].in), &out), VAULT_OK);
        print_message("json case %zu -> %s\n", i, out);
        assert_string_equal(out, cases[i].expect);
        free(out);
    }
}

static void broken_json_falls_back_to_text_redaction(void **state)
{
    static const char *const cases[] = {
        "{\"password\":\"pw\"", /* unterminated */
        "not json password=pw", "{\"a\":1} trailing password=pw",
        "{\"password\":\"pw\",}", /* trailing comma */
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        assert_int_equal(vault_redact_json_line(cases[i], strlen(cases[i]), &out), VAULT_OK);
        print_message("broken case %zu -> %s\n", i, out);
        assert_null(strstr(out, "pw\""));
        assert_null(strstr(out, "=pw"));
        free(out);
    }
}

static void deep_nesting_does_not_overflow(void **state)
{
    char *in = malloc(20001), *out = NULL;
    (void)state;
    assert_non_null(in);
    memset(in, '[', 10000);
    memset(in + 10000, ']', 10000);
    in[20000] = '\0';
    assert_int_equal(vault_redact_json_line(in, 20000, &out), VAULT_OK);
    assert_string_equal(out, in); /* too deep for the parser: treated as text, unchanged */
    free(out);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_sensitive_shape_is_redacted),
        cmocka_unit_test(harmless_text_is_untouched),
        cmocka_unit_test(sensitive_names_match_whole_or_by_suffix),
        cmocka_unit_test(json_lines_redact_keys_and_shapes),
        cmocka_unit_test(broken_json_falls_back_to_text_redaction),
        cmocka_unit_test(deep_nesting_does_not_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
