/* Message codec and arena: round trips, malformed and oversized input, allocation failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

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

/* n zero bytes compressed as fmt; malloc'd, *len set. */
static uint8_t *zeros_compressed(tw_codec_zformat fmt, size_t n, size_t *len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(
        deflateInit2(&zs, 9, Z_DEFLATED, fmt == TW_CODEC_GZIP ? 31 : 15, 9, Z_DEFAULT_STRATEGY),
        Z_OK);
    size_t cap = n / 500 + 1024;
    uint8_t *out = malloc(cap);
    static const uint8_t zero[65536];
    assert_non_null(out);
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    size_t left = n;
    int r;
    do {
        size_t k = left < sizeof(zero) ? left : sizeof(zero);
        zs.next_in = (Bytef *)(uintptr_t)zero;
        zs.avail_in = (uInt)k;
        left -= k;
        r = deflate(&zs, left ? Z_NO_FLUSH : Z_FINISH);
        assert_true(r == Z_OK || r == Z_STREAM_END);
        assert_true(zs.avail_out > 0);
    } while (r != Z_STREAM_END);
    *len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static uint8_t *text_compressed(tw_codec_zformat fmt, const char *text, size_t *len)
{
    uLongf cap = compressBound((uLong)strlen(text)) + 32;
    uint8_t *out = malloc(cap);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_non_null(out);
    assert_int_equal(
        deflateInit2(&zs, 6, Z_DEFLATED, fmt == TW_CODEC_GZIP ? 31 : 15, 8, Z_DEFAULT_STRATEGY),
        Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)text;
    zs.avail_in = (uInt)strlen(text);
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static void inflate_round_trips_across_any_chunking(void **state)
{
    (void)state;
    static const char text[] = "symbol AAPL qty 10 symbol AAPL qty 10 symbol MSFT qty 3";
    for (int f = TW_CODEC_DEFLATE; f <= TW_CODEC_GZIP; f++) {
        size_t zlen;
        uint8_t *z = text_compressed((tw_codec_zformat)f, text, &zlen);
        /* Two chunks split at every position, an empty chunk between them. */
        for (size_t cut = 0; cut <= zlen; cut++) {
            tw_codec_chunk in[3] = {{z, cut}, {NULL, 0}, {z + cut, zlen - cut}};
            uint8_t *out;
            size_t n;
            tw_status st = tw_codec_inflate((tw_codec_zformat)f, in, 3, 1024, &out, &n);
            assert_int_equal(st.code, TW_OK);
            assert_int_equal(n, strlen(text));
            assert_memory_equal(out, text, n);
            free(out);
        }
        free(z);
    }
}

static void inflate_refuses_a_bomb_without_allocating(void **state)
{
    (void)state;
    size_t zlen;
    uint8_t *z = zeros_compressed(TW_CODEC_GZIP, 64u << 20, &zlen);
    assert_true(zlen < 80 * 1024); /* ~65 KB of gzip, 64 MiB inflated */
    tw_codec_chunk in = {z, zlen};
    uint8_t *out = (uint8_t *)1;
    size_t n = 1;
    tw_alloc_fail_after(0); /* any tw_malloc would fail and say "out of memory" */
    tw_status st = tw_codec_inflate(TW_CODEC_GZIP, &in, 1, 1u << 20, &out, &n);
    tw_alloc_fail_after(-1);
    assert_int_equal(st.code, TW_RESOURCE_EXHAUSTED);
    assert_string_equal(st.message, "request message too large when inflated");
    assert_null(out);
    assert_int_equal(n, 0);
    free(z);
}

static void inflate_cap_is_inclusive(void **state)
{
    (void)state;
    const size_t max = 100000;
    for (int f = TW_CODEC_DEFLATE; f <= TW_CODEC_GZIP; f++) {
        size_t zlen;
        uint8_t *z = zeros_compressed((tw_codec_zformat)f, max, &zlen);
        tw_codec_chunk in = {z, zlen};
        uint8_t *out;
        size_t n;
        tw_status st = tw_codec_inflate((tw_codec_zformat)f, &in, 1, max, &out, &n);
        assert_int_equal(st.code, TW_OK);
        assert_int_equal(n, max);
        free(out);
        st = tw_codec_inflate((tw_codec_zformat)f, &in, 1, max - 1, &out, &n);
        assert_int_equal(st.code, TW_RESOURCE_EXHAUSTED);
        assert_null(out);
        free(z);
    }
}

static void inflate_refuses_corrupt_truncated_and_trailing_bytes(void **state)
{
    (void)state;
    size_t zlen;
    uint8_t *z = text_compressed(TW_CODEC_GZIP, "hello hello hello", &zlen);
    uint8_t *out;
    size_t n;
    for (size_t cut = 0; cut < zlen; cut++) { /* every strict prefix is truncated */
        tw_codec_chunk in = {z, cut};
        tw_status st = tw_codec_inflate(TW_CODEC_GZIP, &in, 1, 1024, &out, &n);
        assert_int_equal(st.code, TW_INVALID_ARGUMENT);
        assert_null(out);
    }
    tw_codec_chunk two[2] = {{z, zlen}, {(const uint8_t *)"x", 1}};
    assert_int_equal(tw_codec_inflate(TW_CODEC_GZIP, two, 2, 1024, &out, &n).code,
                     TW_INVALID_ARGUMENT);
    uint8_t bad[64];
    memcpy(bad, z, zlen < sizeof(bad) ? zlen : sizeof(bad));
    bad[zlen - 5] ^= 0x55; /* the CRC-32 trailer no longer matches */
    tw_codec_chunk in = {bad, zlen};
    assert_int_equal(tw_codec_inflate(TW_CODEC_GZIP, &in, 1, 1024, &out, &n).code,
                     TW_INVALID_ARGUMENT);
    /* gzip bytes are not a zlib stream. */
    tw_codec_chunk gz = {z, zlen};
    assert_int_equal(tw_codec_inflate(TW_CODEC_DEFLATE, &gz, 1, 1024, &out, &n).code,
                     TW_INVALID_ARGUMENT);
    assert_int_equal(tw_codec_inflate((tw_codec_zformat)7, &gz, 1, 1024, &out, &n).code,
                     TW_UNIMPLEMENTED);
    free(z);
}

static void field_flood_is_bounded_by_the_decode_budget(void **state)
{
    (void)state;
    /* 512 Ki repetitions of "time_in_force (field 5) = 0": 1 MiB on the wire; protobuf-c keeps ~32
     * bytes of bookkeeping per field, so unbounded this took ~16 MiB of arena. */
    const size_t max = 1u << 20;
    uint8_t *buf = malloc(max);
    assert_non_null(buf);
    for (size_t i = 0; i < max; i += 2) {
        buf[i] = 0x28;
        buf[i + 1] = 0x00;
    }
    tw_arena *a = tw_arena_create();
    ProtobufCMessage *m;
    tw_status st =
        tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, buf, max, max, &m);
    assert_int_equal(st.code, TW_RESOURCE_EXHAUSTED);
    assert_null(m);
    assert_true(tw_arena_used(a) <= max); /* 1.75 * max - len */
    tw_arena_destroy(a);
    /* The same flood, short enough, decodes. */
    a = tw_arena_create();
    st = tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, buf, 2000, max, &m);
    assert_int_equal(st.code, TW_OK);
    tw_arena_destroy(a);
    free(buf);
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
        cmocka_unit_test(inflate_round_trips_across_any_chunking),
        cmocka_unit_test(inflate_refuses_a_bomb_without_allocating),
        cmocka_unit_test(inflate_cap_is_inclusive),
        cmocka_unit_test(inflate_refuses_corrupt_truncated_and_trailing_bytes),
        cmocka_unit_test(field_flood_is_bounded_by_the_decode_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
