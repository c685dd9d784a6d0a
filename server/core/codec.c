/* protobuf-c decode/new on a per-call arena (see codec.h). */
#include "codec.h"

tw_status tw_codec_decode(tw_arena *a, const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                          size_t len, size_t max, ProtobufCMessage **out)
{
    *out = NULL;
    if (len > max)
        return tw_err(TW_RESOURCE_EXHAUSTED, "request message too large");
    *out = protobuf_c_message_unpack(desc, tw_arena_protobuf_allocator(a), len, data);
    if (!*out)
        return tw_err(TW_INVALID_ARGUMENT, "request message could not be decoded");
    return tw_ok();
}

ProtobufCMessage *tw_codec_new(tw_arena *a, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = tw_arena_alloc(a, desc->sizeof_message);
    if (m)
        desc->message_init(m);
    return m;
}
