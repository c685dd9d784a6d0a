/* protobuf-c decode/new on a per-call arena (see codec.h). */
#include "codec.h"

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
    *out = protobuf_c_message_unpack(desc, tw_arena_protobuf_allocator(a), len, data);
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
