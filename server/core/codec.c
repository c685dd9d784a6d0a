/*
 * Bounded inflate, and protobuf-c decode/new on a per-call arena (see codec.h).
 *
 * Inflate counts before it allocates: grpc core 1.51 would inflate a whole body before
 * checking its size (a 255 KB gzip body became 256 MiB), so the transport turns grpc's own
 * decompression off and hands compressed bodies here. Decode goes through a budgeted view of
 * the arena allocator, so protobuf-c's per-field bookkeeping cannot multiply a request's size.
 */
#include "codec.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "alloc.h"

#define INFLATE_SCRATCH 16384

/* One inflate pass over in[]. dst NULL: count only, into scratch. Otherwise write into
 * dst[0..cap). *total is the inflated size; more than max is RESOURCE_EXHAUSTED at once. */
static tw_status inflate_pass(int wbits, const tw_codec_chunk *in, size_t nin, size_t max,
                              uint8_t *dst, size_t cap, size_t *total)
{
    unsigned char scratch[INFLATE_SCRATCH];
    z_stream zs;
    tw_status st = tw_ok();
    int ended = 0;
    *total = 0;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, wbits) != Z_OK)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < nin; i++) {
        if (in[i].len == 0)
            continue;
        if (ended || in[i].len > UINT_MAX) {
            st = tw_err(TW_INVALID_ARGUMENT, "compressed request has bytes after its end");
            goto out;
        }
        zs.next_in = (unsigned char *)(uintptr_t)in[i].data; /* zlib never writes input */
        zs.avail_in = (uInt)in[i].len;
        for (;;) {
            size_t room;
            if (dst) {
                room = cap - *total;
                zs.next_out = dst + *total;
            } else {
                room = sizeof(scratch);
                zs.next_out = scratch;
            }
            zs.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
            uInt before = zs.avail_out;
            int r = inflate(&zs, Z_NO_FLUSH);
            *total += before - zs.avail_out;
            if (*total > max) {
                st = tw_err(TW_RESOURCE_EXHAUSTED, "request message too large when inflated");
                goto out;
            }
            if (r == Z_STREAM_END) {
                ended = 1;
                if (zs.avail_in != 0) {
                    st = tw_err(TW_INVALID_ARGUMENT, "compressed request has bytes after its end");
                    goto out;
                }
                break;
            }
            if (r == Z_OK || r == Z_BUF_ERROR) {
                if (zs.avail_in == 0 && (zs.avail_out != 0 || r == Z_BUF_ERROR))
                    break; /* this chunk is used up (and no output pending): next one */
                if (r == Z_BUF_ERROR) {
                    /* No progress with input left: only a full dst does that (cap = the size
                     * the counting pass found, so the stream is longer than counted). */
                    st = tw_err(TW_RESOURCE_EXHAUSTED, "request message too large when inflated");
                    goto out;
                }
                continue;
            }
            st = r == Z_MEM_ERROR ? tw_err(TW_RESOURCE_EXHAUSTED, "out of memory")
                                  : tw_err(TW_INVALID_ARGUMENT, "compressed request is corrupt");
            goto out;
        }
    }
    if (!ended)
        st = tw_err(TW_INVALID_ARGUMENT, "compressed request is truncated");
out:
    inflateEnd(&zs);
    return st;
}

tw_status tw_codec_inflate(tw_codec_zformat fmt, const tw_codec_chunk *in, size_t nin, size_t max,
                           uint8_t **out, size_t *out_len)
{
    int wbits = fmt == TW_CODEC_GZIP ? 15 + 16 : 15;
    size_t n = 0, again = 0;
    uint8_t *buf = NULL;
    *out = NULL;
    *out_len = 0;
    if (fmt != TW_CODEC_GZIP && fmt != TW_CODEC_DEFLATE)
        return tw_err(TW_UNIMPLEMENTED, "unsupported request compression");
    tw_status st = inflate_pass(wbits, in, nin, max, NULL, 0, &n);
    if (st.code != TW_OK)
        return st;
    buf = tw_malloc(n ? n : 1);
    if (!buf)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    st = inflate_pass(wbits, in, nin, n, buf, n, &again);
    if (st.code == TW_OK && again != n)
        st = tw_err(TW_INTERNAL, "request inflated to two different sizes");
    if (st.code != TW_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = n;
    return tw_ok();
}

/* The arena allocator with a byte budget: protobuf-c's unpack fails cleanly (NULL) once the
 * decoded message would take more than the budget. */
struct budget {
    ProtobufCAllocator pb;
    ProtobufCAllocator *inner;
    size_t left;
    int exceeded;
};

static void *budget_alloc(void *data, size_t n)
{
    struct budget *b = data;
    if (n > b->left) {
        b->exceeded = 1;
        return NULL;
    }
    b->left -= n;
    return b->inner->alloc(b->inner->allocator_data, n);
}

static void budget_free(void *data, void *p)
{
    struct budget *b = data;
    b->inner->free(b->inner->allocator_data, p);
}

/* protobuf-c keeps fields numbered 0 as unknown fields, but 0 is not a valid field number: a
 * message carrying one (at any depth) is malformed, and would not survive re-encoding. */
static int has_field0(const ProtobufCMessage *m, int depth)
{
    if (depth > 64)
        return 1;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return 1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m + f->offset;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(const void *)((const char *)m + f->quantifier_offset) != f->id)
            continue; /* another member of the oneof is set: this union slot is not a message */
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)((const char *)m + f->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(const void *)base;
            for (size_t k = 0; k < n; k++)
                if (arr[k] && has_field0(arr[k], depth + 1))
                    return 1;
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(const void *)base;
            if (sub && has_field0(sub, depth + 1))
                return 1;
        }
    }
    return 0;
}

tw_status tw_codec_decode(tw_arena *a, const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                          size_t len, size_t max, ProtobufCMessage **out)
{
    *out = NULL;
    if (len > max)
        return tw_err(TW_RESOURCE_EXHAUSTED, "request message too large");
    struct budget b;
    b.inner = tw_arena_protobuf_allocator(a);
    /* len <= max here. The bytes and the decoded message together stay within 1.75 x the cap,
     * leaving the rest of 2 x for grpc's own receive buffers. */
    b.left = max / 4 * 7 - (len < max / 4 * 7 ? len : max / 4 * 7);
    if (b.left < TW_CODEC_DECODE_FLOOR)
        b.left = TW_CODEC_DECODE_FLOOR;
    b.exceeded = 0;
    b.pb.alloc = budget_alloc;
    b.pb.free = budget_free;
    b.pb.allocator_data = &b;
    *out = protobuf_c_message_unpack(desc, &b.pb, len, data);
    if (!*out && b.exceeded)
        return tw_err(TW_RESOURCE_EXHAUSTED, "request message too large when decoded");
    if (!*out)
        return tw_err(TW_INVALID_ARGUMENT, "request message could not be decoded");
    if (has_field0(*out, 0)) {
        *out = NULL; /* arena memory: freed with the call */
        return tw_err(TW_INVALID_ARGUMENT, "request message could not be decoded");
    }
    return tw_ok();
}

ProtobufCMessage *tw_codec_new(tw_arena *a, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = tw_arena_alloc(a, desc->sizeof_message);
    if (m)
        desc->message_init(m);
    return m;
}
