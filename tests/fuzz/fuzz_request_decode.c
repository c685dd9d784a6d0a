/*
 * fuzz_request_decode - every RPC's request decoding exactly as the transport does it: the real
 * route table (Sim included), tw_codec_decode into a call arena with the default 1 MiB cap,
 * and no handler. Input: byte 0 picks the route (modulo the route count), the rest is the
 * request message.
 * Property: a decoded message packs, and the packed form is a fixed point (decode(pack(m))
 * packs to the same bytes), so what the server logs or forwards after decoding is stable.
 * History: protobuf-c 1.4 accepts a field number 0 written as an overlong tag varint (80 00)
 * and re-packs it as 00, which it then refuses. This target found it; tw_codec_decode now
 * refuses such messages (crashes/request_decode-field0-overlong-tag).
 * TW_FUZZ_LIST_ROUTES=1 in the environment prints "byte path request-type" per route (for
 * writing seeds: corpus/fuzz_request_decode/gen.sh).
 */
#include "fuzz.h"

#include <string.h>

#include "core/arena.h"
#include "core/codec.h"
#include "routes/routes_table.h"

#define MAX_MESSAGE (1u << 20)

static const tw_routes *routes(void)
{
    static tw_routes r;
    static int built;
    if (!built) {
        if (routes_table_build(1, &r, stderr) != 0 || r.count == 0)
            abort();
        built = 1;
        if (getenv("TW_FUZZ_LIST_ROUTES"))
            for (size_t i = 0; i < r.count; i++)
                fprintf(stderr, "%zu %s %s\n", i, r.routes[i].path, r.routes[i].in->name);
    }
    return &r;
}

/* Packs m into a malloc'd buffer of exactly its packed size. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        abort();
    *len = protobuf_c_message_pack(m, buf);
    FUZZ_CHECK(*len == n);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const tw_routes *r = routes();
    if (size < 1)
        return 0;
    const tw_route *route = &r->routes[data[0] % r->count];
    tw_arena *a = tw_arena_create();
    uint8_t *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    ProtobufCMessage *msg = NULL, *again = NULL;
    if (!a)
        abort();
    tw_status st = tw_codec_decode(a, route->in, data + 1, size - 1, MAX_MESSAGE, &msg);
    if (st.code != TW_OK) {
        FUZZ_CHECK(msg == NULL);
        goto out;
    }
    FUZZ_CHECK(msg != NULL && msg->descriptor == route->in);
    first = pack(msg, &first_len);
    st = tw_codec_decode(a, route->in, first, first_len, MAX_MESSAGE, &again);
    FUZZ_CHECK(st.code == TW_OK && again != NULL);
    second = pack(again, &second_len);
    FUZZ_CHECK(first_len == second_len && memcmp(first, second, first_len) == 0);
out:
    free(first);
    free(second);
    tw_arena_destroy(a);
    return 0;
}
