/* Message codec and arena: round trips, malformed and oversized input, allocation failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/codec.h"
#include "tradewink/v1/orders.pb-c.h"

static size_t pack_order(uint8_t *buf, size_t cap, const char *symbol, const char *qty)
{
    Tradewink__V1__SubmitOrderRequest r = TRADEWINK__V1__SUBMIT_ORDER_REQUEST__INIT;
    r.symbol = (char *)symbol;
    r.qty = (char *)qty;
    r.client_order_id = (char *)"cid-1";
    size_t n = tradewink__v1__submit_order_request__get_packed_size(&r);
    assert_true(n <= cap);
    return tradewink__v1__submit_order_request__pack(&r, buf);
}

static void round_trip_decodes_every_field(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = pack_order(buf, sizeof(buf), "AAPL", "10.5");
    tw_arena *a = tw_arena_create();
    ProtobufCMessage *m;
    tw_status st =
        tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, buf, n, 1024, &m);
    assert_int_equal(st.code, TW_OK);
    const Tradewink__V1__SubmitOrderRequest *r = (const Tradewink__V1__SubmitOrderRequest *)m;
    assert_string_equal(r->symbol, "AAPL");
    assert_string_equal(r->qty, "10.5");
    assert_string_equal(r->client_order_id, "cid-1");
    assert_string_equal(r->limit_price, ""); /* proto3 default */
    tw_arena_destroy(a);
}

static void oversized_message_is_resource_exhausted(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = pack_order(buf, sizeof(buf), "AAPL", "1");
    tw_arena *a = tw_arena_create();
    ProtobufCMessage *m;
    tw_status st =
        tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, buf, n, n - 1, &m);
    assert_int_equal(st.code, TW_RESOURCE_EXHAUSTED);
    assert_null(m);
    tw_arena_destroy(a);
}

static void malformed_bytes_are_invalid_argument(void **state)
{
    (void)state;
    uint8_t good[256];
    size_t n = pack_order(good, sizeof(good), "MSFT", "3");
    static const uint8_t garbage[][8] = {
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* endless varint */
        {0x0a, 0x7f, 'x', 0, 0, 0, 0, 0},                 /* length past the end */
        {0x0f, 0, 0, 0, 0, 0, 0, 0},                      /* wire type 7 */
    };
    tw_arena *a = tw_arena_create();
    ProtobufCMessage *m;
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        tw_status st = tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor,
                                       garbage[i], sizeof(garbage[i]), 1024, &m);
        assert_int_equal(st.code, TW_INVALID_ARGUMENT);
    }
    /* Every strict prefix that cuts a field in half must fail, never crash. */
    for (size_t cut = 1; cut < n; cut++) {
        tw_status st = tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, good,
                                       cut, 1024, &m);
        assert_true(st.code == TW_OK || st.code == TW_INVALID_ARGUMENT);
    }
    tw_arena_destroy(a);
}

static void field_number_zero_is_refused(void **state)
{
    (void)state;
    /* Found by fuzz_request_decode: tag 0 (overlong varint 80 00) then a varint value. */
    static const uint8_t bad[] = {0x80, 0x00, 0x00, 0x80, 0x00, 0x0c};
    tw_arena *a = tw_arena_create();
    ProtobufCMessage *m;
    tw_status st = tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, bad,
                                   sizeof(bad), 1024, &m);
    assert_int_equal(st.code, TW_INVALID_ARGUMENT);
    assert_null(m);
    tw_arena_destroy(a);
}

static void empty_message_decodes_to_defaults(void **state)
{
    (void)state;
    tw_arena *a = tw_arena_create();
    ProtobufCMessage *m;
    tw_status st =
        tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, NULL, 0, 16, &m);
    assert_int_equal(st.code, TW_OK);
    assert_string_equal(((Tradewink__V1__SubmitOrderRequest *)m)->symbol, "");
    tw_arena_destroy(a);
}

static void allocation_failure_is_reported_not_crashed(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = pack_order(buf, sizeof(buf), "AAPL", "10");
    for (long k = 0; k < 6; k++) {
        tw_arena *a = tw_arena_create();
        assert_non_null(a);
        tw_alloc_fail_after(k);
        ProtobufCMessage *m;
        tw_status st =
            tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, buf, n, 1024, &m);
        tw_alloc_fail_after(-1);
        assert_true(st.code == TW_OK || st.code == TW_INVALID_ARGUMENT);
        tw_arena_destroy(a);
    }
}

static int cleanup_runs;
static void count_cleanup(void *arg)
{
    cleanup_runs += *(int *)arg;
}

static void arena_alignment_large_blocks_and_cleanups(void **state)
{
    (void)state;
    tw_arena *a = tw_arena_create();
    for (size_t n = 1; n < 3000; n += 97) {
        void *p = tw_arena_alloc(a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        memset(p, 0xab, n);
    }
    void *big = tw_arena_alloc(a, 1 << 20);
    assert_non_null(big);
    memset(big, 1, 1 << 20);
    assert_string_equal(tw_arena_printf(a, "%s-%d", "x", 42), "x-42");
    int one = 1, ten = 10;
    tw_arena_defer(a, count_cleanup, &one);
    tw_arena_defer(a, count_cleanup, &ten);
    cleanup_runs = 0;
    tw_arena_destroy(a);
    assert_int_equal(cleanup_runs, 11);
    tw_arena_destroy(NULL);
}

static void new_message_is_initialised(void **state)
{
    (void)state;
    tw_arena *a = tw_arena_create();
    ProtobufCMessage *m = tw_codec_new(a, &tradewink__v1__submit_order_response__descriptor);
    assert_non_null(m);
    assert_ptr_equal(m->descriptor, &tradewink__v1__submit_order_response__descriptor);
    tw_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_decodes_every_field),
        cmocka_unit_test(oversized_message_is_resource_exhausted),
        cmocka_unit_test(malformed_bytes_are_invalid_argument),
        cmocka_unit_test(empty_message_decodes_to_defaults),
        cmocka_unit_test(field_number_zero_is_refused),
        cmocka_unit_test(allocation_failure_is_reported_not_crashed),
        cmocka_unit_test(arena_alignment_large_blocks_and_cleanups),
        cmocka_unit_test(new_message_is_initialised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
