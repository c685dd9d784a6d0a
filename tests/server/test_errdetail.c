/* google.rpc.Status details (core/errdetail.c) and the violation collector (core/status.c):
 * the bytes are read back with a small wire reader written here, independent of the encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/errdetail.h"

/* ---- a minimal protobuf reader: fields of one message level ------------------------------ */

typedef struct {
    unsigned field;
    int wire;         /* 0 varint, 2 length-delimited */
    uint64_t v;       /* varint value */
    const uint8_t *p; /* bytes of a length-delimited field */
    size_t n;
} fld;

static size_t read_fields(const uint8_t *p, size_t n, fld *out, size_t cap)
{
    size_t k = 0, i = 0;
    while (i < n) {
        uint64_t tag = 0, v = 0;
        for (int s = 0; i < n; s += 7) {
            tag |= (uint64_t)(p[i] & 0x7f) << s;
            if (!(p[i++] & 0x80))
                break;
        }
        for (int s = 0; i < n; s += 7) {
            v |= (uint64_t)(p[i] & 0x7f) << s;
            if (!(p[i++] & 0x80))
                break;
        }
        assert_true(k < cap);
        out[k].field = (unsigned)(tag >> 3);
        out[k].wire = (int)(tag & 7);
        out[k].v = v;
        out[k].p = NULL;
        out[k].n = 0;
        if (out[k].wire == 2) {
            assert_true(v <= n - i);
            out[k].p = p + i;
            out[k].n = (size_t)v;
            i += (size_t)v;
        } else {
            assert_int_equal(out[k].wire, 0);
        }
        k++;
    }
    assert_int_equal(i, n);
    return k;
}

static void assert_str(const fld *f, unsigned field, const char *want)
{
    assert_int_equal(f->field, field);
    assert_int_equal(f->wire, 2);
    assert_int_equal(f->n, strlen(want));
    assert_memory_equal(f->p, want, f->n);
}

/* The Any at details[i] of a Status: checks its type and returns its value field. */
static fld any_value(const fld *status, size_t nstatus, size_t i, const char *type)
{
    size_t seen = 0;
    for (size_t j = 0; j < nstatus; j++) {
        if (status[j].field != 3)
            continue;
        if (seen++ != i)
            continue;
        fld any[4];
        assert_int_equal(read_fields(status[j].p, status[j].n, any, 4), 2);
        assert_str(&any[0], 1, type);
        assert_int_equal(any[1].field, 2);
        return any[1];
    }
    fail_msg("no details[%zu]", i);
    fld none = {0};
    return none;
}

static size_t count_details(const fld *status, size_t n)
{
    size_t k = 0;
    for (size_t j = 0; j < n; j++)
        k += status[j].field == 3;
    return k;
}

/* ---- cases ---------------------------------------------------------------------------------- */

static void three_bad_fields_give_errorinfo_and_three_violations(void **state)
{
    (void)state;
    tw_arena *a = tw_arena_create();
    tw_violations v;
    tw_violations_init(&v, a);
    tw_violation_add(&v, "symbol", "1..15 characters");
    tw_violation_add(&v, "qty", "a positive decimal");
    tw_violation_add(&v, "origin", "required");
    tw_status st = tw_violations_status(&v);
    assert_int_equal(st.code, TW_INVALID_ARGUMENT);
    assert_string_equal(st.reason, "INVALID_FIELD");
    assert_string_equal(st.message,
                        "symbol: 1..15 characters (and 2 more invalid fields, see details)");

    uint8_t *bin;
    size_t len;
    assert_int_equal(tw_status_details_encode(a, &st, &bin, &len), 0);
    fld s[8];
    size_t ns = read_fields(bin, len, s, 8);
    assert_int_equal(s[0].field, 1);
    assert_int_equal(s[0].v, 3);
    assert_str(&s[1], 2, st.message);
    assert_int_equal(count_details(s, ns), 2);

    fld info = any_value(s, ns, 0, "type.googleapis.com/google.rpc.ErrorInfo");
    fld e[4];
    assert_int_equal(read_fields(info.p, info.n, e, 4), 2); /* no metadata */
    assert_str(&e[0], 1, "INVALID_FIELD");
    assert_str(&e[1], 2, "tradewink.v1");

    fld br = any_value(s, ns, 1, "type.googleapis.com/google.rpc.BadRequest");
    fld fv[4];
    assert_int_equal(read_fields(br.p, br.n, fv, 4), 3);
    static const char *const fields[] = {"symbol", "qty", "origin"};
    static const char *const descs[] = {"1..15 characters", "a positive decimal", "required"};
    for (size_t i = 0; i < 3; i++) {
        fld one[2];
        assert_int_equal(fv[i].field, 1);
        assert_int_equal(read_fields(fv[i].p, fv[i].n, one, 2), 2);
        assert_str(&one[0], 1, fields[i]);
        assert_str(&one[1], 2, descs[i]);
    }
    tw_arena_destroy(a);
}

static void rate_limit_gives_retryinfo_and_retry_metadata(void **state)
{
    (void)state;
    tw_arena *a = tw_arena_create();
    tw_status st = tw_err_reason(TW_RESOURCE_EXHAUSTED, "RATE_LIMITED", "slow down");
    st.retry_ms = 1500;
    uint8_t *bin;
    size_t len;
    assert_int_equal(tw_status_details_encode(a, &st, &bin, &len), 0);
    fld s[8];
    size_t ns = read_fields(bin, len, s, 8);
    assert_int_equal(s[0].v, 8);
    assert_int_equal(count_details(s, ns), 2);

    fld info = any_value(s, ns, 0, "type.googleapis.com/google.rpc.ErrorInfo");
    fld e[4];
    assert_int_equal(read_fields(info.p, info.n, e, 4), 3);
    assert_str(&e[0], 1, "RATE_LIMITED");
    assert_int_equal(e[2].field, 3);
    fld kv[2];
    assert_int_equal(read_fields(e[2].p, e[2].n, kv, 2), 2);
    assert_str(&kv[0], 1, "retry_after_ms");
    assert_str(&kv[1], 2, "1500");

    fld ri = any_value(s, ns, 1, "type.googleapis.com/google.rpc.RetryInfo");
    fld d[2], dur[2];
    assert_int_equal(read_fields(ri.p, ri.n, d, 2), 1);
    assert_int_equal(read_fields(d[0].p, d[0].n, dur, 2), 2);
    assert_int_equal(dur[0].v, 1);
    assert_int_equal(dur[1].v, 500000000);
    tw_arena_destroy(a);
}

static void reasons_default_from_the_code_and_an_explicit_one_wins(void **state)
{
    (void)state;
    static const struct {
        tw_status st;
        const char *want;
    } cases[] = {
        {{.code = TW_UNAUTHENTICATED}, "UNAUTHENTICATED"},
        {{.code = TW_PERMISSION_DENIED}, "PERMISSION_DENIED"},
        {{.code = TW_INVALID_ARGUMENT}, "INVALID_REQUEST"},
        {{.code = TW_INVALID_ARGUMENT, .nviolations = 1}, "INVALID_FIELD"},
        {{.code = TW_INVALID_ARGUMENT, .message = "order_id: not an order id"}, "INVALID_FIELD"},
        {{.code = TW_INVALID_ARGUMENT, .message = "quotes[2].bid: above 0"}, "INVALID_FIELD"},
        {{.code = TW_INVALID_ARGUMENT, .message = "a and b are exclusive"}, "INVALID_REQUEST"},
        {{.code = TW_INVALID_ARGUMENT, .message = "Field: upper case"}, "INVALID_REQUEST"},
        {{.code = TW_INVALID_ARGUMENT, .message = "limits refused: x"}, "INVALID_REQUEST"},
        {{.code = TW_INVALID_ARGUMENT, .message = "field: "}, "INVALID_REQUEST"},
        {{.code = TW_NOT_FOUND, .message = "order: not found"}, "NOT_FOUND"},
        {{.code = TW_RESOURCE_EXHAUSTED}, "RESOURCE_EXHAUSTED"},
        {{.code = TW_RESOURCE_EXHAUSTED, .retry_ms = 5}, "RATE_LIMITED"},
        {{.code = TW_NOT_FOUND}, "NOT_FOUND"},
        {{.code = TW_FAILED_PRECONDITION, .reason = "TRADING_HALTED"}, "TRADING_HALTED"},
        {{.code = (tw_code)99}, "UNKNOWN"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(tw_status_reason(&cases[i].st), cases[i].want);
}

static void no_violation_is_ok_and_one_keeps_the_old_message(void **state)
{
    (void)state;
    tw_arena *a = tw_arena_create();
    tw_violations v;
    tw_violations_init(&v, a);
    assert_int_equal(tw_violations_status(&v).code, TW_OK);
    tw_violation_add(&v, "side", "must be BUY or SELL");
    tw_status st = tw_violations_status(&v);
    assert_int_equal(st.code, TW_INVALID_ARGUMENT);
    assert_string_equal(st.message, "side: must be BUY or SELL");
    assert_int_equal(st.nviolations, 1);
    tw_arena_destroy(a);
}

/* A single-field refusal written as a message ("field: description") is a BadRequest of one. */
static void a_field_message_is_one_violation(void **state)
{
    (void)state;
    tw_arena *a = tw_arena_create();
    tw_status st = {.code = TW_INVALID_ARGUMENT, .message = "page_token: not a token"};
    uint8_t *out;
    size_t len;
    assert_int_equal(tw_status_details_encode(a, &st, &out, &len), 0);
    fld top[8];
    size_t n = read_fields(out, len, top, 8);
    size_t anys = 0;
    for (size_t i = 0; i < n; i++)
        anys += top[i].field == 3;
    assert_int_equal(anys, 2); /* ErrorInfo, BadRequest */
    const fld *any = NULL;
    for (size_t i = 0; i < n; i++)
        if (top[i].field == 3)
            any = &top[i]; /* the last: BadRequest */
    if (!any) {
        fail_msg("no details");
        return;
    }
    fld af[4], bf[4], vf[4];
    size_t na = read_fields(any->p, any->n, af, 4);
    assert_int_equal(na, 2);
    assert_str(&af[0], 1, "type.googleapis.com/google.rpc.BadRequest");
    assert_int_equal(read_fields(af[1].p, af[1].n, bf, 4), 1);
    assert_int_equal(read_fields(bf[0].p, bf[0].n, vf, 4), 2);
    assert_str(&vf[0], 1, "page_token");
    assert_str(&vf[1], 2, "not a token");
    tw_arena_destroy(a);
}

static void many_violations_grow_and_keep_their_order(void **state)
{
    (void)state;
    tw_arena *a = tw_arena_create();
    tw_violations v;
    tw_violations_init(&v, a);
    char name[40][8];
    for (int i = 0; i < 40; i++) {
        snprintf(name[i], sizeof(name[i]), "f%d", i);
        tw_violation_add(&v, name[i], "bad");
    }
    tw_status st = tw_violations_status(&v);
    assert_int_equal(st.nviolations, 40);
    for (int i = 0; i < 40; i++)
        assert_string_equal(st.violations[i].field, name[i]);
    tw_arena_destroy(a);
}

static void out_of_memory_still_reports_an_error(void **state)
{
    (void)state;
    tw_violations v;
    tw_violations_init(&v, NULL); /* no arena: nothing can be stored */
    tw_violation_add(&v, "qty", "bad");
    tw_status st = tw_violations_status(&v);
    assert_int_equal(st.code, TW_INVALID_ARGUMENT);
    assert_int_equal(st.nviolations, 0);
    assert_string_equal(st.message, "invalid request fields");

    /* Encoding fails cleanly at every allocation it makes. */
    tw_status big = tw_err(TW_INTERNAL, "x");
    for (long n = 0; n < 8; n++) {
        tw_arena *a = tw_arena_create();
        assert_non_null(a);
        tw_alloc_fail_after(n);
        uint8_t *bin = NULL;
        size_t len = 0;
        int rc = tw_status_details_encode(a, &big, &bin, &len);
        tw_alloc_fail_after(-1);
        assert_true(rc == 0 || rc == -1);
        if (rc == 0)
            assert_true(len > 0 && bin != NULL);
        tw_arena_destroy(a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(three_bad_fields_give_errorinfo_and_three_violations),
        cmocka_unit_test(rate_limit_gives_retryinfo_and_retry_metadata),
        cmocka_unit_test(reasons_default_from_the_code_and_an_explicit_one_wins),
        cmocka_unit_test(no_violation_is_ok_and_one_keeps_the_old_message),
        cmocka_unit_test(a_field_message_is_one_violation),
        cmocka_unit_test(many_violations_grow_and_keep_their_order),
        cmocka_unit_test(out_of_memory_still_reports_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
