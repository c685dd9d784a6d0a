/*
 * test_twc_json.c - the descriptor-driven proto3 JSON and text rendering of libtwclient.
 * Expected strings are written out by hand from the proto3 JSON mapping, so a change in the
 * printer (names, 64-bit quoting, enums, bytes, timestamps, wrappers, escaping) fails here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "twc_services.h"

#define S(lit) ((char *)(uintptr_t)(lit))

static void check_json(const ProtobufCMessage *m, unsigned flags, const char *want)
{
    char *got = twc_json_string(m, flags);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void whoami_uses_camel_case_enum_names_and_rfc3339(void **state)
{
    (void)state;
    Tradewink__V1__WhoAmIResponse w = TRADEWINK__V1__WHO_AM_IRESPONSE__INIT;
    Google__Protobuf__Timestamp exp = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    exp.seconds = 1700000000;
    exp.nanos = 5000000;
    w.subject = S("a\"b\\c\n\x01");
    w.role = TRADEWINK__V1__ROLE__ROLE_ADMIN;
    w.expires_at = &exp;
    check_json(&w.base, 0,
               "{\"subject\":\"a\\\"b\\\\c\\n\\u0001\",\"role\":\"ROLE_ADMIN\","
               "\"expiresAt\":\"2023-11-14T22:13:20.005Z\",\"issuedAt\":null}");
    check_json(&w.base, TWC_JSON_OMIT_DEFAULTS,
               "{\"subject\":\"a\\\"b\\\\c\\n\\u0001\",\"role\":\"ROLE_ADMIN\","
               "\"expiresAt\":\"2023-11-14T22:13:20.005Z\"}");
}

static void int64_are_strings_and_unknown_enums_numbers(void **state)
{
    (void)state;
    Tradewink__V1__RewrapKeysResponse r = TRADEWINK__V1__REWRAP_KEYS_RESPONSE__INIT;
    r.rewrapped = 9007199254740993LL; /* not representable as a double */
    r.remaining = -1;
    r.target_master_version = 3;
    check_json(&r.base, 0,
               "{\"rewrapped\":\"9007199254740993\",\"remaining\":\"-1\",\"failed\":\"0\","
               "\"targetMasterVersion\":3}");
    Tradewink__V1__WhoAmIResponse w = TRADEWINK__V1__WHO_AM_IRESPONSE__INIT;
    w.role = (Tradewink__V1__Role)77;
    check_json(&w.base, TWC_JSON_OMIT_DEFAULTS, "{\"role\":77}");
}

static void bytes_are_base64_and_repeated_are_arrays(void **state)
{
    (void)state;
    uint8_t h1[] = {0xff, 0x00, 0x10}, h2[] = {'a', 'b'};
    Tradewink__V1__AuditEvent e = TRADEWINK__V1__AUDIT_EVENT__INIT;
    e.sequence = 18446744073709551615ULL;
    e.prev_hash.data = h1;
    e.prev_hash.len = sizeof h1;
    e.hash.data = h2;
    e.hash.len = sizeof h2;
    check_json(&e.base, TWC_JSON_OMIT_DEFAULTS,
               "{\"sequence\":\"18446744073709551615\",\"prevHash\":\"/wAQ\",\"hash\":\"YWI=\"}");
    Tradewink__V1__AuditEvent *list[] = {&e, &e};
    Tradewink__V1__ListEventsResponse l = TRADEWINK__V1__LIST_EVENTS_RESPONSE__INIT;
    l.n_events = 2;
    l.events = list;
    char *got = twc_json_string(&l.base, TWC_JSON_OMIT_DEFAULTS);
    assert_non_null(got);
    assert_non_null(strstr(got, "{\"events\":[{\"sequence\""));
    assert_non_null(strstr(got, "},{\"sequence\""));
    free(got);
    Tradewink__V1__ListEventsResponse empty = TRADEWINK__V1__LIST_EVENTS_RESPONSE__INIT;
    check_json(&empty.base, 0, "{\"events\":[],\"nextPageToken\":\"\"}");
    check_json(&empty.base, TWC_JSON_OMIT_DEFAULTS, "{}");
}

static void wrappers_print_their_value_and_durations_seconds(void **state)
{
    (void)state;
    Google__Protobuf__StringValue pct = GOOGLE__PROTOBUF__STRING_VALUE__INIT;
    Google__Protobuf__Int32Value maxpos = GOOGLE__PROTOBUF__INT32_VALUE__INIT;
    Google__Protobuf__BoolValue pdt = GOOGLE__PROTOBUF__BOOL_VALUE__INIT;
    pct.value = S("2.5");
    maxpos.value = 0; /* a present wrapper holding the default is still printed */
    Tradewink__V1__SetLimitsRequest r = TRADEWINK__V1__SET_LIMITS_REQUEST__INIT;
    r.daily_loss_pct = &pct;
    r.max_open_positions = &maxpos;
    r.pdt_enabled = &pdt;
    check_json(&r.base, TWC_JSON_OMIT_DEFAULTS,
               "{\"dailyLossPct\":\"2.5\",\"maxOpenPositions\":0,\"pdtEnabled\":false}");
    Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
    d.seconds = 90;
    d.nanos = 500000000;
    Tradewink__V1__AdvanceClockRequest a = TRADEWINK__V1__ADVANCE_CLOCK_REQUEST__INIT;
    a.duration = &d;
    check_json(&a.base, 0, "{\"duration\":\"90.500s\"}");
}

static void pretty_output_indents(void **state)
{
    (void)state;
    Tradewink__V1__VerifyChainResponse v = TRADEWINK__V1__VERIFY_CHAIN_RESPONSE__INIT;
    v.ok = 1;
    v.events_checked = 4;
    check_json(
        &v.base, TWC_JSON_PRETTY,
        "{\n  \"ok\": true,\n  \"eventsChecked\": \"4\",\n  \"firstBrokenSequence\": \"0\",\n"
        "  \"checkpointResult\": \"CHECKPOINT_RESULT_UNSPECIFIED\"\n}");
}

static void field_text_is_human(void **state)
{
    (void)state;
    static const struct {
        const char *field;
        const char *want;
    } cases[] = {
        {"status", "FILLED"}, {"side", "BUY"},
        {"symbol", "AAPL"},   {"created_at", "1970-01-01T00:00:01.000000001Z"},
        {"updated_at", ""},   {"violations", ""},
    };
    Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    t.seconds = 1;
    t.nanos = 1;
    Tradewink__V1__Order o = TRADEWINK__V1__ORDER__INIT;
    o.status = TRADEWINK__V1__ORDER_STATUS__ORDER_STATUS_FILLED;
    o.side = TRADEWINK__V1__ORDER_SIDE__ORDER_SIDE_BUY;
    o.symbol = S("AAPL");
    o.created_at = &t;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(o.base.descriptor, cases[i].field);
        assert_non_null(f);
        char *got = twc_field_text(&o.base, f);
        assert_non_null(got);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
}

static void base64_matches_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const out[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char *got = twc_base64((const uint8_t *)in[i], strlen(in[i]));
        assert_string_equal(got, out[i]);
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whoami_uses_camel_case_enum_names_and_rfc3339),
        cmocka_unit_test(int64_are_strings_and_unknown_enums_numbers),
        cmocka_unit_test(bytes_are_base64_and_repeated_are_arrays),
        cmocka_unit_test(wrappers_print_their_value_and_durations_seconds),
        cmocka_unit_test(pretty_output_indents),
        cmocka_unit_test(field_text_is_human),
        cmocka_unit_test(base64_matches_rfc4648_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
