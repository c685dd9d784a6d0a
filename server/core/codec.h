/*
 * Message codec: protobuf-c decode into a call arena with a size cap, and encode into a
 * caller-provided buffer. Kept free of grpc types so it can be unit-tested and fuzzed alone.
 */
#ifndef TW_CODEC_H
#define TW_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "status.h"

/* Decode data[0..len) as desc into *out (arena memory; lives until the arena dies).
 * RESOURCE_EXHAUSTED when len > max, INVALID_ARGUMENT when the bytes are not a valid desc. */
tw_status tw_codec_decode(tw_arena *a, const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                          size_t len, size_t max, ProtobufCMessage **out);

/* A fresh, initialised message of desc in arena memory; NULL when out of memory. */
ProtobufCMessage *tw_codec_new(tw_arena *a, const ProtobufCMessageDescriptor *desc);

#endif
