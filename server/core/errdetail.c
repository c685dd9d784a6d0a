/*
 * google.rpc.Status with ErrorInfo, BadRequest and RetryInfo, written straight to protobuf
 * wire format. Design: a growable buffer in the call's arena; a nested message is written into
 * a buffer of its own and then appended as one length-delimited field, so no size pass is
 * needed. Only errors pay for this; the OK path never calls it.
 */
#include "errdetail.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    tw_arena *a;
    uint8_t *p;
    size_t n, cap;
    int oom;
} wbuf;

static void wb_init(wbuf *w, tw_arena *a)
{
    memset(w, 0, sizeof(*w));
    w->a = a;
}

static void wb_put(wbuf *w, const void *data, size_t n)
{
    if (w->oom || n == 0)
        return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 128;
        while (cap < w->n + n)
            cap *= 2;
        uint8_t *p = tw_arena_alloc(w->a, cap);
        if (!p) {
            w->oom = 1;
            return;
        }
        if (w->n)
            memcpy(p, w->p, w->n);
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->n, data, n);
    w->n += n;
}

static void wb_varint(wbuf *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    wb_put(w, b, n);
}

static void wb_uint(wbuf *w, unsigned field, uint64_t v)
{
    wb_varint(w, (uint64_t)field << 3);
    wb_varint(w, v);
}

static void wb_bytes(wbuf *w, unsigned field, const void *data, size_t n)
{
    wb_varint(w, (uint64_t)field << 3 | 2);
    wb_varint(w, n);
    wb_put(w, data, n);
}

static void wb_str(wbuf *w, unsigned field, const char *s)
{
    wb_bytes(w, field, s, strlen(s));
}

static void wb_sub(wbuf *w, unsigned field, const wbuf *sub)
{
    if (sub->oom)
        w->oom = 1;
    else
        wb_bytes(w, field, sub->p, sub->n);
}

/* google.protobuf.Any {type_url = 1, value = 2} wrapping msg, as Status.details (field 3). */
static void wb_any(wbuf *status, const char *type, const wbuf *msg)
{
    wbuf any;
    wb_init(&any, status->a);
    wb_str(&any, 1, type);
    wb_sub(&any, 2, msg);
    wb_sub(status, 3, &any);
}

/* A validator that reports one field writes "field: description" (the codebase's convention,
 * e.g. "order_id: not an order id"): the length of that field path ([a-z][a-z0-9_.[]]*), so
 * the answer carries it as the one BadRequest violation; 0 for any other message. */
static size_t message_field_len(const tw_status *st)
{
    const char *m = st->message;
    if (st->code != TW_INVALID_ARGUMENT || st->nviolations || !m || !(m[0] >= 'a' && m[0] <= 'z'))
        return 0;
    size_t i = 1;
    while ((m[i] >= 'a' && m[i] <= 'z') || (m[i] >= '0' && m[i] <= '9') || m[i] == '_' ||
           m[i] == '.' || m[i] == '[' || m[i] == ']')
        i++;
    return m[i] == ':' && m[i + 1] == ' ' && m[i + 2] ? i : 0;
}

const char *tw_status_reason(const tw_status *st)
{
    if (st->reason)
        return st->reason;
    switch (st->code) {
    case TW_INVALID_ARGUMENT:
        return st->nviolations || message_field_len(st) ? "INVALID_FIELD" : "INVALID_REQUEST";
    case TW_RESOURCE_EXHAUSTED:
        return st->retry_ms > 0 ? "RATE_LIMITED" : "RESOURCE_EXHAUSTED";
    default:
        return tw_code_name(st->code);
    }
}

int tw_status_details_encode(tw_arena *a, const tw_status *st, uint8_t **out, size_t *len)
{
    wbuf s, info, entry, msg;
    char num[24];
    wb_init(&s, a);
    wb_uint(&s, 1, (uint64_t)st->code);
    if (st->message && st->message[0])
        wb_str(&s, 2, st->message);

    /* ErrorInfo {reason = 1, domain = 2, map<string,string> metadata = 3} */
    wb_init(&info, a);
    wb_str(&info, 1, tw_status_reason(st));
    wb_str(&info, 2, TW_ERROR_DOMAIN);
    if (st->retry_ms > 0) {
        snprintf(num, sizeof(num), "%lld", (long long)st->retry_ms);
        wb_init(&entry, a);
        wb_str(&entry, 1, "retry_after_ms");
        wb_str(&entry, 2, num);
        wb_sub(&info, 3, &entry);
    }
    wb_any(&s, "type.googleapis.com/google.rpc.ErrorInfo", &info);

    /* BadRequest {repeated FieldViolation field_violations = 1 {field = 1, description = 2}} */
    size_t flen = message_field_len(st);
    if (flen && st->message) { /* flen > 0 only for a message */
        wb_init(&msg, a);
        wb_init(&entry, a);
        wb_bytes(&entry, 1, st->message, flen);
        wb_str(&entry, 2, st->message + flen + 2);
        wb_sub(&msg, 1, &entry);
        wb_any(&s, "type.googleapis.com/google.rpc.BadRequest", &msg);
    } else if (st->nviolations) {
        wb_init(&msg, a);
        for (size_t i = 0; i < st->nviolations; i++) {
            wb_init(&entry, a);
            wb_str(&entry, 1, st->violations[i].field ? st->violations[i].field : "");
            wb_str(&entry, 2, st->violations[i].description ? st->violations[i].description : "");
            wb_sub(&msg, 1, &entry);
        }
        wb_any(&s, "type.googleapis.com/google.rpc.BadRequest", &msg);
    }

    /* RetryInfo {google.protobuf.Duration retry_delay = 1 {seconds = 1, nanos = 2}} */
    if (st->retry_ms > 0) {
        wbuf dur;
        wb_init(&dur, a);
        wb_uint(&dur, 1, (uint64_t)(st->retry_ms / 1000));
        wb_uint(&dur, 2, (uint64_t)(st->retry_ms % 1000) * 1000000);
        wb_init(&msg, a);
        wb_sub(&msg, 1, &dur);
        wb_any(&s, "type.googleapis.com/google.rpc.RetryInfo", &msg);
    }
    if (s.oom)
        return -1;
    *out = s.p;
    *len = s.n;
    return 0;
}
