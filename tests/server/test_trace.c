/*
 * core/trace: W3C traceparent parsing (the spec's valid and invalid shapes), continuation of
 * a caller's trace, fresh ids (lower-case hex, never zero, distinct), and the outgoing form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/trace.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"

typedef struct {
    const char *why;
    const char *value;
} bad_case;

static void test_invalid_traceparents_are_refused(void **state)
{
    static const bad_case bad[] = {
        {"empty", ""},
        {"short", "00-" TID "-" PID "-0"},
        {"version ff", "ff-" TID "-" PID "-01"},
        {"upper-case trace id", "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01"},
        {"all-zero trace id", "00-00000000000000000000000000000000-" PID "-01"},
        {"all-zero parent id", "00-" TID "-0000000000000000-01"},
        {"non-hex flags", "00-" TID "-" PID "-0g"},
        {"wrong separator", "00_" TID "-" PID "-01"},
        {"version 00 with a tail", "00-" TID "-" PID "-01-extra"},
        {"future version, tail without dash", "01-" TID "-" PID "-01x"},
        {"non-hex version", "0x-" TID "-" PID "-01"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tw_trace t;
        if (tw_trace_parse(bad[i].value, strlen(bad[i].value), &t) == 0)
            fail_msg("accepted: %s", bad[i].why);
    }
}

static void test_valid_traceparent_is_continued_with_a_new_span(void **state)
{
    static const char v[] = "00-" TID "-" PID "-01";
    static const char future[] = "cc-" TID "-" PID "-09-what-the-future-holds";
    tw_trace t;
    char out[TW_TRACEPARENT_LEN + 1];
    (void)state;
    tw_trace_start(&t, v, sizeof v - 1);
    assert_string_equal(t.trace_id, TID);
    assert_string_equal(t.parent_id, PID);
    assert_int_equal(t.flags, 1);
    assert_int_equal(strlen(t.span_id), 16);
    assert_string_not_equal(t.span_id, PID);
    tw_trace_format(&t, out);
    assert_int_equal(strlen(out), TW_TRACEPARENT_LEN);
    assert_memory_equal(out, "00-" TID "-", 36);
    assert_memory_equal(out + 36, t.span_id, 16);
    assert_string_equal(out + 52, "-01");
    /* A later version is read by its first 55 bytes; unknown flag bits are not passed on. */
    assert_int_equal(tw_trace_parse(future, sizeof future - 1, &t), 0);
    assert_string_equal(t.trace_id, TID);
    assert_int_equal(t.flags, 1);
}

static void test_absent_or_invalid_starts_a_fresh_trace(void **state)
{
    tw_trace a, b, c;
    int zero = 1;
    (void)state;
    tw_trace_start(&a, NULL, 0);
    tw_trace_start(&b, "garbage", 7);
    tw_trace_start(&c, NULL, 0);
    assert_int_equal(strlen(a.trace_id), 32);
    assert_int_equal(a.parent_id[0], '\0');
    assert_int_equal(b.parent_id[0], '\0');
    assert_int_equal(a.flags, 0);
    assert_string_not_equal(a.trace_id, b.trace_id);
    assert_string_not_equal(a.trace_id, c.trace_id);
    assert_string_not_equal(a.span_id, c.span_id);
    for (const char *p = a.trace_id; *p; p++) {
        assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
        zero &= *p == '0';
    }
    assert_false(zero);
    /* What we send out parses as what we are. */
    char out[TW_TRACEPARENT_LEN + 1];
    tw_trace back;
    tw_trace_format(&a, out);
    assert_int_equal(tw_trace_parse(out, strlen(out), &back), 0);
    assert_string_equal(back.trace_id, a.trace_id);
    assert_string_equal(back.parent_id, a.span_id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_traceparents_are_refused),
        cmocka_unit_test(test_valid_traceparent_is_continued_with_a_new_span),
        cmocka_unit_test(test_absent_or_invalid_starts_a_fresh_trace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
