/*
 * Message codec: bounded inflate of compressed request bodies, protobuf-c decode into a call
 * arena with a size cap, and new messages. Kept free of grpc types so it can be unit-tested
 * and fuzzed alone.
 *
 * Memory bound (issue 19): for a cap `max`, a request never costs more than its wire bytes,
 * plus at most `max` inflated bytes; the bytes being decoded and the decoded message together
 * stay within 15/8 * max (the transport releases compressed or copied-from bytes before
 * decoding), which leaves room under 2 * max for grpc's own receive buffers.
 */
#ifndef TW_CODEC_H
#define TW_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "status.h"

/* Arena a decoded message may always use, whatever the cap: protobuf-c's own bookkeeping for
 * a small message can exceed a tiny TW_MAX_MESSAGE_BYTES. */
#define TW_CODEC_DECODE_FLOOR (64u << 10)

/* Decode data[0..len) as desc into *out (arena memory; lives until the arena dies).
 * RESOURCE_EXHAUSTED when len > max, or when decoding would take more arena than
 * min(8 * len, 15/8 * max - len) (at least TW_CODEC_DECODE_FLOOR): protobuf-c spends ~32 bytes
 * per wire field however short, so a flood of 2-byte fields would otherwise cost 16x its size.
 * (So a message in the top ~6% of the cap that is one long string is refused too: requests
 * here are a few KB; a 900 KiB string under the 1 MiB default still decodes.)
 * INVALID_ARGUMENT when the bytes are not a valid desc, or when any string field at any depth
 * is not UTF-8 or holds a NUL: every such field is a violation (tw_violations, reason
 * INVALID_FIELD), the message names the first ("symbol: must be valid UTF-8", "order.note: must
 * not contain NUL characters"), and *out is NULL. */
tw_status tw_codec_decode(tw_arena *a, const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                          size_t len, size_t max, ProtobufCMessage **out);

/* Compressed body formats, as grpc-encoding names them. */
typedef enum {
    TW_CODEC_DEFLATE = 1, /* "deflate": the zlib format (RFC 1950) */
    TW_CODEC_GZIP = 2,    /* "gzip": RFC 1952 */
} tw_codec_zformat;

/* One contiguous piece of a compressed body (a grpc slice, borrowed). */
typedef struct {
    const uint8_t *data;
    size_t len;
} tw_codec_chunk;

/* Inflate the concatenation of in[0..nin) into *out, a tw_malloc'd buffer of exactly *out_len
 * bytes (the caller frees it; *out is NULL on error). The stream is inflated twice: first into
 * a fixed scratch buffer only to count, stopping as soon as the count passes max
 * (RESOURCE_EXHAUSTED, nothing allocated), then into memory of exactly the counted size.
 * INVALID_ARGUMENT for a corrupt or truncated stream, or bytes after its end. */
tw_status tw_codec_inflate(tw_codec_zformat fmt, const tw_codec_chunk *in, size_t nin, size_t max,
                           uint8_t **out, size_t *out_len);

/* A fresh, initialised message of desc in arena memory; NULL when out of memory. */
ProtobufCMessage *tw_codec_new(tw_arena *a, const ProtobufCMessageDescriptor *desc);

#endif
