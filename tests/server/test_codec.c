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
#include "tradewink/v1/risk.pb-c.h"
#include "tradewink/v1/sim.pb-c.h"

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
    /* An allocation failure is the server's (RESOURCE_EXHAUSTED), never the client's fault
     * (INVALID_ARGUMENT): every k either decodes or says so, and the first k fails. */
    int exhausted = 0;
    for (long k = 0; k < 6; k++) {
        tw_arena *a = tw_arena_create();
        assert_non_null(a);
        tw_alloc_fail_after(k);
        ProtobufCMessage *m;
        tw_status st =
            tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, buf, n, 1024, &m);
        tw_alloc_fail_after(-1);
        if (st.code != TW_OK && st.code != TW_RESOURCE_EXHAUSTED)
            fail_msg("allocation %ld failing: %s (%s)", k, tw_code_name(st.code),
                     st.message ? st.message : "");
        exhausted += st.code == TW_RESOURCE_EXHAUSTED;
        tw_arena_destroy(a);
    }
    assert_true(exhausted >= 1);
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
    assert_true(tw_arena_used(a) <= max); /* 15/8 * max - len */
    tw_arena_destroy(a);
    /* The same flood, short enough, decodes. */
    a = tw_arena_create();
    st = tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, buf, 2000, max, &m);
    assert_int_equal(st.code, TW_OK);
    tw_arena_destroy(a);
    free(buf);
}

static void legitimate_large_requests_fit_the_decode_budget(void **state)
{
    (void)state;
    /* 1000 sim quotes (the API's maximum): small sub-messages decode to ~6x their size. */
    enum { NQ = 1000 };
    Tradewink__V1__Quote q[NQ], *qp[NQ];
    char sym[NQ][8];
    for (int i = 0; i < NQ; i++) {
        tradewink__v1__quote__init(&q[i]);
        snprintf(sym[i], sizeof(sym[i]), "S%04d", i);
        q[i].symbol = sym[i];
        q[i].bid = (char *)"99.99";
        q[i].ask = (char *)"100.01";
        q[i].last = (char *)"100";
        qp[i] = &q[i];
    }
    Tradewink__V1__SetQuotesRequest r = TRADEWINK__V1__SET_QUOTES_REQUEST__INIT;
    r.n_quotes = NQ;
    r.quotes = qp;
    size_t n = tradewink__v1__set_quotes_request__get_packed_size(&r);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    tradewink__v1__set_quotes_request__pack(&r, buf);
    tw_arena *a = tw_arena_create();
    ProtobufCMessage *m;
    tw_status st =
        tw_codec_decode(a, &tradewink__v1__set_quotes_request__descriptor, buf, n, 1u << 20, &m);
    assert_int_equal(st.code, TW_OK);
    assert_int_equal(((Tradewink__V1__SetQuotesRequest *)m)->n_quotes, NQ);
    tw_arena_destroy(a);
    free(buf);
    /* One 900 KiB string under the 1 MiB default cap. */
    const size_t big = 900u << 10;
    char *s = malloc(big + 1);
    assert_non_null(s);
    memset(s, 'y', big);
    s[big] = '\0';
    size_t cap = big + 16;
    buf = malloc(cap);
    assert_non_null(buf);
    n = pack_order(buf, cap, s, "1");
    a = tw_arena_create();
    st = tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, buf, n, 1u << 20, &m);
    assert_int_equal(st.code, TW_OK);
    assert_int_equal(strlen(((Tradewink__V1__SubmitOrderRequest *)m)->symbol), big);
    tw_arena_destroy(a);
    free(buf);
    free(s);
}

/* Appends field `field` (wire type 2) holding v[0..n) to buf at *at. */
static void put_ld(uint8_t *buf, size_t *at, unsigned field, const void *v, size_t n)
{
    assert_true(field < 16 && n < 128);
    buf[(*at)++] = (uint8_t)(field << 3 | 2);
    buf[(*at)++] = (uint8_t)n;
    memcpy(buf + *at, v, n);
    *at += n;
}

typedef struct {
    const char *name;
    const char *bytes;
    size_t len;
    int ok; /* 1 accepted, 0 refused */
    const char *why;
} str_case;

#define S(lit) lit, sizeof(lit) - 1

static const str_case str_cases[] = {
    {"plain ascii", S("AAPL"), 1, NULL},
    {"empty", S(""), 1, NULL},
    {"two, three and four byte forms", S("\xc3\xa9\xe2\x82\xac\xf0\x9f\x93\x88"), 1, NULL},
    {"highest code point U+10FFFF", S("\xf4\x8f\xbf\xbf"), 1, NULL},
    {"last before surrogates U+D7FF", S("\xed\x9f\xbf"), 1, NULL},
    {"0xff 0xff", S("\xff\xff"), 0, "must be valid UTF-8"},
    {"embedded NUL", S("AAPL\0X"), 0, "must not contain NUL characters"},
    {"trailing NUL", S("k1\0"), 0, "must not contain NUL characters"},
    {"overlong NUL C0 80", S("\xc0\x80"), 0, "must be valid UTF-8"},
    {"overlong slash C1 AF", S("\xc1\xaf"), 0, "must be valid UTF-8"},
    {"overlong three-byte E0 80 AF", S("\xe0\x80\xaf"), 0, "must be valid UTF-8"},
    {"overlong four-byte F0 80 80 AF", S("\xf0\x80\x80\xaf"), 0, "must be valid UTF-8"},
    {"surrogate ED A0 80", S("\xed\xa0\x80"), 0, "must be valid UTF-8"},
    {"surrogate ED BF BF", S("\xed\xbf\xbf"), 0, "must be valid UTF-8"},
    {"past U+10FFFF F4 90 80 80", S("\xf4\x90\x80\x80"), 0, "must be valid UTF-8"},
    {"F5 lead byte", S("\xf5\x80\x80\x80"), 0, "must be valid UTF-8"},
    {"lone continuation byte", S("a\x80\x62"), 0, "must be valid UTF-8"},
    {"truncated two-byte form", S("ab\xc3"), 0, "must be valid UTF-8"},
    {"truncated four-byte form", S("\xf0\x9f\x93"), 0, "must be valid UTF-8"},
    {"bad second continuation byte", S("\xe2\x82\x41"), 0, "must be valid UTF-8"},
};

static void every_string_field_is_utf8_without_nul(void **state)
{
    (void)state;
    /* SubmitOrderRequest: client_order_id 1, symbol 2, qty 6, note 10. */
    static const struct {
        unsigned field;
        const char *name;
    } fields[] = {{1, "client_order_id"}, {2, "symbol"}, {6, "qty"}, {10, "note"}};
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        for (size_t i = 0; i < sizeof(str_cases) / sizeof(str_cases[0]); i++) {
            const str_case *c = &str_cases[i];
            uint8_t buf[128];
            size_t n = 0;
            put_ld(buf, &n, 2, "MSFT", 4); /* a valid field first: position does not matter */
            put_ld(buf, &n, fields[f].field, c->bytes, c->len);
            tw_arena *a = tw_arena_create();
            ProtobufCMessage *m = NULL;
            tw_status st = tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, buf,
                                           n, 1024, &m);
            if (c->ok) {
                assert_int_equal(st.code, TW_OK);
                assert_non_null(m);
            } else {
                char want[128];
                snprintf(want, sizeof(want), "%s: %s", fields[f].name, c->why);
                if (st.code != TW_INVALID_ARGUMENT || strcmp(st.message, want) != 0)
                    fail_msg("%s in %s: got %d \"%s\", want \"%s\"", c->name, fields[f].name,
                             st.code, st.message, want);
                assert_null(m);
            }
            tw_arena_destroy(a);
        }
    }
}

static void nested_and_repeated_strings_are_checked_and_named(void **state)
{
    (void)state;
    /* SetQuotesRequest{quotes: [{symbol: "AAPL"}, {symbol: "AA\0PL"}]} -> quotes.symbol */
    uint8_t q1[16], q2[16], buf[64];
    size_t n1 = 0, n2 = 0, n = 0;
    put_ld(q1, &n1, 1, "AAPL", 4);
    put_ld(q2, &n2, 1, "AA\0PL", 5);
    put_ld(buf, &n, 1, q1, n1);
    put_ld(buf, &n, 1, q2, n2);
    tw_arena *a = tw_arena_create();
    ProtobufCMessage *m;
    tw_status st =
        tw_codec_decode(a, &tradewink__v1__set_quotes_request__descriptor, buf, n, 1024, &m);
    assert_int_equal(st.code, TW_INVALID_ARGUMENT);
    assert_string_equal(st.message, "quotes.symbol: must not contain NUL characters");
    assert_null(m);
    /* The first quote alone is fine. */
    n = 0;
    put_ld(buf, &n, 1, q1, n1);
    st = tw_codec_decode(a, &tradewink__v1__set_quotes_request__descriptor, buf, n, 1024, &m);
    assert_int_equal(st.code, TW_OK);
    /* A wrapper type: SetLimitsRequest.daily_loss_pct (2) is a StringValue {value = 1}. */
    uint8_t w[16];
    size_t nw = 0;
    put_ld(w, &nw, 1, "\xed\xa0\x80", 3);
    n = 0;
    put_ld(buf, &n, 2, w, nw);
    st = tw_codec_decode(a, &tradewink__v1__set_limits_request__descriptor, buf, n, 1024, &m);
    assert_int_equal(st.code, TW_INVALID_ARGUMENT);
    assert_string_equal(st.message, "daily_loss_pct.value: must be valid UTF-8");
    tw_arena_destroy(a);
}

static void every_bad_string_is_a_violation_not_only_the_first(void **state)
{
    (void)state;
    /* symbol (2) not UTF-8, qty (6) fine, note (10) with a NUL: two violations, in order. */
    uint8_t buf[64];
    size_t n = 0;
    put_ld(buf, &n, 2, "\xff", 1);
    put_ld(buf, &n, 6, "1", 1);
    put_ld(buf, &n, 10, "a\0b", 3);
    tw_arena *a = tw_arena_create();
    ProtobufCMessage *m;
    tw_status st =
        tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, buf, n, 1024, &m);
    assert_int_equal(st.code, TW_INVALID_ARGUMENT);
    assert_string_equal(st.reason, "INVALID_FIELD");
    assert_int_equal(st.nviolations, 2);
    assert_string_equal(st.violations[0].field, "symbol");
    assert_string_equal(st.violations[0].description, "must be valid UTF-8");
    assert_string_equal(st.violations[1].field, "note");
    assert_string_equal(st.violations[1].description, "must not contain NUL characters");
    assert_null(m);
    tw_arena_destroy(a);
}

static void unknown_fields_and_bytes_are_not_checked_as_strings(void **state)
{
    (void)state;
    /* Field 15 is not in SubmitOrderRequest: an unknown field, not a string. */
    uint8_t buf[32];
    size_t n = 0;
    put_ld(buf, &n, 2, "AAPL", 4);
    put_ld(buf, &n, 15, "\xff\0", 2);
    tw_arena *a = tw_arena_create();
    ProtobufCMessage *m;
    tw_status st =
        tw_codec_decode(a, &tradewink__v1__submit_order_request__descriptor, buf, n, 1024, &m);
    assert_int_equal(st.code, TW_OK);
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
        cmocka_unit_test(inflate_round_trips_across_any_chunking),
        cmocka_unit_test(inflate_refuses_a_bomb_without_allocating),
        cmocka_unit_test(inflate_cap_is_inclusive),
        cmocka_unit_test(inflate_refuses_corrupt_truncated_and_trailing_bytes),
        cmocka_unit_test(field_flood_is_bounded_by_the_decode_budget),
        cmocka_unit_test(legitimate_large_requests_fit_the_decode_budget),
        cmocka_unit_test(every_string_field_is_utf8_without_nul),
        cmocka_unit_test(nested_and_repeated_strings_are_checked_and_named),
        cmocka_unit_test(every_bad_string_is_a_violation_not_only_the_first),
        cmocka_unit_test(unknown_fields_and_bytes_are_not_checked_as_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
