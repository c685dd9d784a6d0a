/*
 * twc_json.c - proto3 JSON and human text for any protobuf-c message, driven by descriptors.
 *
 * protobuf-c has no JSON support, and twctl --json must print every response type without
 * per-message code, so this walks ProtobufCMessageDescriptor fields generically.
 * Mapping (proto3 JSON): field names in lowerCamelCase; int64/uint64/fixed64 as strings;
 * enums by value name (unknown numbers as numbers); bytes as standard base64; NaN/Infinity
 * as strings; google.protobuf.Timestamp as RFC 3339 UTC with 0, 3, 6 or 9 fraction digits;
 * Duration as "<seconds>[.fraction]s"; the wrapper types as their bare value.
 * By default every field is written (unset messages as null), so scripts can rely on keys.
 *
 * Invariants: output is always valid JSON (strings escaped, invalid UTF-8 is not repaired
 * but control characters are); nothing here allocates except through open_memstream.
 */
#include "twclient.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    FILE *f;
    unsigned flags;
    int err;
} jw;

static void put(jw *w, const char *s)
{
    if (fputs(s, w->f) == EOF)
        w->err = 1;
}

static void putn(jw *w, int depth)
{
    if (!(w->flags & TWC_JSON_PRETTY))
        return;
    put(w, "\n");
    for (int i = 0; i < depth; i++)
        put(w, "  ");
}

static void put_string(jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(w, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[7];
        switch (ch) {
        case '"':
            put(w, "\\\"");
            continue;
        case '\\':
            put(w, "\\\\");
            continue;
        case '\n':
            put(w, "\\n");
            continue;
        case '\r':
            put(w, "\\r");
            continue;
        case '\t':
            put(w, "\\t");
            continue;
        default:
            break;
        }
        if (ch < 0x20 || ch == 0x7f) {
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            esc[6] = '\0';
            put(w, esc);
        } else if (fputc(ch, w->f) == EOF) {
            w->err = 1;
        }
    }
    put(w, "\"");
}

char *twc_base64(const uint8_t *data, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1);
    size_t o = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* The fraction part of nanos with 0, 3, 6 or 9 digits, as proto3 JSON prints it. */
static void fraction(char *buf, size_t cap, int32_t nanos)
{
    if (nanos <= 0 || nanos > 999999999)
        buf[0] = '\0';
    else if (nanos % 1000000 == 0)
        snprintf(buf, cap, ".%03d", nanos / 1000000);
    else if (nanos % 1000 == 0)
        snprintf(buf, cap, ".%06d", nanos / 1000);
    else
        snprintf(buf, cap, ".%09d", nanos);
}

static const ProtobufCFieldDescriptor *field_named(const ProtobufCMessage *m, const char *name)
{
    return protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
}

static int64_t get_i64(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f = field_named(m, name);
    int64_t v = 0;
    if (f != NULL)
        memcpy(&v, (const char *)m + f->offset, sizeof v);
    return v;
}

static int32_t get_i32(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f = field_named(m, name);
    int32_t v = 0;
    if (f != NULL)
        memcpy(&v, (const char *)m + f->offset, sizeof v);
    return v;
}

/* RFC 3339 text of a google.protobuf.Timestamp into buf. */
static void timestamp_text(const ProtobufCMessage *m, char *buf, size_t cap)
{
    time_t secs = (time_t)get_i64(m, "seconds");
    struct tm tm;
    char frac[16];
    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, cap, "%lld", (long long)secs);
        return;
    }
    fraction(frac, sizeof frac, get_i32(m, "nanos"));
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static void duration_text(const ProtobufCMessage *m, char *buf, size_t cap)
{
    int64_t s = get_i64(m, "seconds");
    int32_t n = get_i32(m, "nanos");
    char frac[16];
    fraction(frac, sizeof frac, n < 0 ? -n : n);
    snprintf(buf, cap, "%s%lld%ss", (s == 0 && n < 0) ? "-" : "", (long long)s, frac);
}

static int is_wkt(const ProtobufCMessageDescriptor *d, const char *name)
{
    return strcmp(d->name, name) == 0;
}

static int is_wrapper(const ProtobufCMessageDescriptor *d)
{
    return strncmp(d->name, "google.protobuf.", 16) == 0 && strlen(d->name) > 21 &&
           strcmp(d->name + strlen(d->name) - 5, "Value") == 0 && d->n_fields == 1 &&
           strcmp(d->fields[0].name, "value") == 0;
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* Enum value name without the prefix shared by the enum's values (taken from value 0's
 * name minus "UNSPECIFIED"): ORDER_STATUS_FILLED -> FILLED. */
static const char *enum_short(const ProtobufCEnumDescriptor *d, const char *name)
{
    const ProtobufCEnumValue *zero = protobuf_c_enum_descriptor_get_value(d, 0);
    if (zero == NULL)
        return name;
    size_t zl = strlen(zero->name);
    if (zl < 11 || strcmp(zero->name + zl - 11, "UNSPECIFIED") != 0)
        return name;
    size_t pl = zl - 11;
    if (strncmp(name, zero->name, pl) == 0 && name[pl] != '\0')
        return name + pl;
    return name;
}

static void write_message(jw *w, const ProtobufCMessage *m, int depth);

/* One value (element i of a repeated field or the singular value at p). text = human mode:
 * no quotes around strings, short enum names. */
static void write_value(jw *w, const ProtobufCFieldDescriptor *f, const void *p, int depth,
                        int text)
{
    char buf[96];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf(buf, sizeof buf, "%d", *(const int32_t *)p);
        put(w, buf);
        return;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(buf, sizeof buf, "%u", *(const uint32_t *)p);
        put(w, buf);
        return;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf, sizeof buf, text ? "%lld" : "\"%lld\"", (long long)*(const int64_t *)p);
        put(w, buf);
        return;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, sizeof buf, text ? "%llu" : "\"%llu\"",
                 (unsigned long long)*(const uint64_t *)p);
        put(w, buf);
        return;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double d = f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)p : *(const double *)p;
        if (isnan(d))
            put(w, text ? "NaN" : "\"NaN\"");
        else if (isinf(d))
            put(w, d > 0 ? (text ? "Infinity" : "\"Infinity\"")
                         : (text ? "-Infinity" : "\"-Infinity\""));
        else {
            snprintf(buf, sizeof buf, "%.17g", d);
            put(w, buf);
        }
        return;
    }
    case PROTOBUF_C_TYPE_BOOL:
        put(w, *(const protobuf_c_boolean *)p ? "true" : "false");
        return;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value((const ProtobufCEnumDescriptor *)f->descriptor, v);
        if (ev == NULL) {
            snprintf(buf, sizeof buf, "%d", v);
            put(w, buf);
        } else if (text) {
            put(w, enum_short(f->descriptor, ev->name));
        } else {
            put_string(w, ev->name, strlen(ev->name));
        }
        return;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        if (s == NULL)
            s = "";
        if (text)
            put(w, s);
        else
            put_string(w, s, strlen(s));
        return;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        char *enc = twc_base64(b->data, b->len);
        if (enc == NULL) {
            w->err = 1;
            return;
        }
        if (text)
            put(w, enc);
        else
            put_string(w, enc, strlen(enc));
        free(enc);
        return;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (sub == NULL) {
            put(w, text ? "" : "null");
            return;
        }
        const ProtobufCMessageDescriptor *d = sub->descriptor;
        if (is_wkt(d, "google.protobuf.Timestamp") || is_wkt(d, "google.protobuf.Duration")) {
            char t[64];
            if (is_wkt(d, "google.protobuf.Timestamp"))
                timestamp_text(sub, t, sizeof t);
            else
                duration_text(sub, t, sizeof t);
            if (text)
                put(w, t);
            else
                put_string(w, t, strlen(t));
            return;
        }
        if (is_wrapper(d)) {
            write_value(w, &d->fields[0], (const char *)sub + d->fields[0].offset, depth, text);
            return;
        }
        unsigned saved = w->flags;
        if (text)
            w->flags &= ~(unsigned)TWC_JSON_PRETTY;
        write_message(w, sub, depth);
        w->flags = saved;
        return;
    }
    }
}

/* 1 when a singular field holds its default (used for OMIT_DEFAULTS and oneof presence). */
static int field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    const void *p = base + f->offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(const void *)(base + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
        f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
        return *(const protobuf_c_boolean *)(const void *)(base + f->quantifier_offset) != 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s != NULL && s[0] != '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len > 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p != NULL;
    default: {
        static const unsigned char zero[8];
        return memcmp(p, zero, elem_size(f->type)) != 0;
    }
    }
}

static void write_name(jw *w, const char *name)
{
    char buf[128];
    size_t o = 0;
    int up = 0;
    for (const char *s = name; *s && o + 1 < sizeof buf; s++) {
        if (*s == '_') {
            up = 1;
            continue;
        }
        buf[o++] = up && *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
        up = 0;
    }
    buf[o] = '\0';
    put_string(w, buf, o);
    put(w, (w->flags & TWC_JSON_PRETTY) ? ": " : ":");
}

static void write_message(jw *w, const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int first = 1;
    put(w, "{");
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *p = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)((const char *)m + f->quantifier_offset);
            if (n == 0 && (w->flags & TWC_JSON_OMIT_DEFAULTS))
                continue;
            put(w, first ? "" : ",");
            first = 0;
            putn(w, depth + 1);
            write_name(w, f->name);
            put(w, "[");
            const char *arr = *(char *const *)(const void *)p;
            for (size_t k = 0; k < n; k++) {
                put(w, k ? "," : "");
                putn(w, depth + 2);
                write_value(w, f, arr + k * elem_size(f->type), depth + 2, 0);
            }
            if (n > 0)
                putn(w, depth + 1);
            put(w, "]");
            continue;
        }
        int present = field_present(m, f);
        if (!present &&
            ((w->flags & TWC_JSON_OMIT_DEFAULTS) || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)))
            continue;
        put(w, first ? "" : ",");
        first = 0;
        putn(w, depth + 1);
        write_name(w, f->name);
        write_value(w, f, p, depth + 1, 0);
    }
    if (!first)
        putn(w, depth);
    put(w, "}");
}

int twc_json_write(FILE *f, const ProtobufCMessage *m, unsigned flags)
{
    jw w = {f, flags, 0};
    write_message(&w, m, 0);
    return w.err ? -1 : 0;
}

char *twc_json_string(const ProtobufCMessage *m, unsigned flags)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
    int r = twc_json_write(f, m, flags);
    if (fclose(f) != 0 || r != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *twc_field_text(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    if (fp == NULL)
        return NULL;
    jw w = {fp, 0, 0};
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)(const void *)((const char *)m + f->quantifier_offset);
        const char *arr = *(char *const *)(const void *)((const char *)m + f->offset);
        for (size_t k = 0; k < n; k++) {
            put(&w, k ? "," : "");
            write_value(&w, f, arr + k * elem_size(f->type), 0, 1);
        }
    } else if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || field_present(m, f)) {
        write_value(&w, f, (const char *)m + f->offset, 0, 1);
    }
    if (fclose(fp) != 0 || w.err) {
        free(buf);
        return NULL;
    }
    return buf;
}
