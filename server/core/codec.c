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
#include <stdio.h>
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
    int exceeded; /* the message would take more than the budget */
    int oom;      /* the arena could not give memory within it */
};

static void *budget_alloc(void *data, size_t n)
{
    struct budget *b = data;
    if (n > b->left) {
        b->exceeded = 1;
        return NULL;
    }
    b->left -= n;
    void *p = b->inner->alloc(b->inner->allocator_data, n);
    if (!p)
        b->oom = 1;
    return p;
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

/* Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
 * 0 valid, 1 not UTF-8, 2 valid but holds a NUL. */
static int utf8_check(const uint8_t *s, size_t n)
{
    int nul = 0;
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            nul |= c == 0;
            i++;
            continue;
        }
        size_t k;
        uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong below U+0800 */
            else if (c == 0xed)
                hi = 0x9f; /* U+D800..U+DFFF: surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong below U+10000 */
            else if (c == 0xf4)
                hi = 0x8f; /* past U+10FFFF */
        } else {
            return 1; /* continuation byte first, C0/C1 overlongs, F5..FF */
        }
        if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi)
            return 1;
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xbf)
                return 1;
        i += k + 1;
    }
    return nul ? 2 : 0;
}

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

#define PATH_MAX_LEN 160

/*
 * Every string field of a message, at any depth, must be UTF-8 without NUL (proto3 says
 * UTF-8; everything behind the decoder uses C strings, where a NUL silently ends the value:
 * "AAPL\0X" traded AAPL, and client_order_id "k1\0other" collided with "k1"). protobuf-c
 * checks neither, and after unpack a char * no longer knows its wire length, so this walks
 * the wire bytes with the descriptor: length-delimited records of string fields are checked,
 * those of message fields are walked in turn (repeated fields and map entries are records
 * like any other). Unknown fields are skipped. Runs after a successful unpack, so structure
 * errors here are only defence in depth. path holds the dotted name so far. Every bad string
 * is added to bad (one violation per occurrence, so a repeated field may appear twice); the
 * returned status is only for structure errors.
 */
static tw_status check_strings(tw_violations *bad_list, const ProtobufCMessageDescriptor *d,
                               const uint8_t *p, size_t n, char *path, size_t plen, int depth)
{
    const uint8_t *end = p + n;
    static const tw_status malformed = {.code = TW_INVALID_ARGUMENT,
                                        .message = "request message could not be decoded"};
    if (depth > 64)
        return malformed;
    while (p < end) {
        uint64_t tag, v;
        if (read_varint(&p, end, &tag) != 0)
            return malformed;
        switch (tag & 7) {
        case 0:
            if (read_varint(&p, end, &v) != 0)
                return malformed;
            break;
        case 1:
            if ((size_t)(end - p) < 8)
                return malformed;
            p += 8;
            break;
        case 5:
            if ((size_t)(end - p) < 4)
                return malformed;
            p += 4;
            break;
        case 2: {
            if (read_varint(&p, end, &v) != 0 || v > (uint64_t)(end - p))
                return malformed;
            const ProtobufCFieldDescriptor *f =
                (tag >> 3) <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3))
                    : NULL;
            if (f && (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)) {
                size_t sub = plen;
                int w =
                    snprintf(path + plen, PATH_MAX_LEN - plen, "%s%s", plen ? "." : "", f->name);
                if (w > 0)
                    sub = plen + (size_t)w < PATH_MAX_LEN ? plen + (size_t)w : PATH_MAX_LEN - 1;
                if (f->type == PROTOBUF_C_TYPE_STRING) {
                    int bad = utf8_check(p, (size_t)v);
                    if (bad) {
                        const char *field = tw_arena_strdup(bad_list->arena, path);
                        tw_violation_add(bad_list, field ? field : "?",
                                         bad == 1 ? "must be valid UTF-8"
                                                  : "must not contain NUL characters");
                    }
                } else {
                    tw_status st =
                        check_strings(bad_list, f->descriptor, p, (size_t)v, path, sub, depth + 1);
                    if (st.code != TW_OK)
                        return st;
                }
                path[plen] = '\0';
            }
            p += v;
            break;
        }
        default: /* groups (3, 4) and 6, 7: protobuf-c refuses them anyway */
            return malformed;
        }
    }
    return tw_ok();
}

/* Arena a message of len bytes may decode into. Small messages of small sub-messages (1000
 * sim quotes) legitimately decode to ~6x their size, so up to 8 x len; but the bytes and the
 * decoded message together stay within 15/8 of the cap, leaving 1/8 of the 2 x bound for
 * grpc's own receive buffers. len <= max here. */
static size_t decode_budget(size_t len, size_t max)
{
    size_t whole = max / 8 * 15;
    size_t left = whole > len ? whole - len : 0;
    size_t ratio = len * 8 + TW_CODEC_DECODE_FLOOR;
    size_t b = ratio < left ? ratio : left;
    return b > TW_CODEC_DECODE_FLOOR ? b : TW_CODEC_DECODE_FLOOR;
}

tw_status tw_codec_decode(tw_arena *a, const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                          size_t len, size_t max, ProtobufCMessage **out)
{
    *out = NULL;
    if (len > max)
        return tw_err(TW_RESOURCE_EXHAUSTED, "request message too large");
    struct budget b;
    b.inner = tw_arena_protobuf_allocator(a);
    b.left = decode_budget(len, max);
    b.exceeded = 0;
    b.oom = 0;
    b.pb.alloc = budget_alloc;
    b.pb.free = budget_free;
    b.pb.allocator_data = &b;
    *out = protobuf_c_message_unpack(desc, &b.pb, len, data);
    if (!*out && b.exceeded)
        return tw_err(TW_RESOURCE_EXHAUSTED, "request message too large when decoded");
    if (!*out && b.oom) /* the server's shortage, not a fault of the request */
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    if (!*out)
        return tw_err(TW_INVALID_ARGUMENT, "request message could not be decoded");
    if (has_field0(*out, 0)) {
        *out = NULL; /* arena memory: freed with the call */
        return tw_err(TW_INVALID_ARGUMENT, "request message could not be decoded");
    }
    char path[PATH_MAX_LEN];
    path[0] = '\0';
    tw_violations bad;
    tw_violations_init(&bad, a);
    tw_status st = check_strings(&bad, desc, data, len, path, 0, 0);
    if (st.code == TW_OK)
        st = tw_violations_status(&bad);
    if (st.code != TW_OK)
        *out = NULL;
    return st;
}

ProtobufCMessage *tw_codec_new(tw_arena *a, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = tw_arena_alloc(a, desc->sizeof_message);
    if (m)
        desc->message_init(m);
    return m;
}
