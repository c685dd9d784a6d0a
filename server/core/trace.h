/*
 * tw_trace: W3C Trace Context (traceparent, https://www.w3.org/TR/trace-context/) for one
 * call. Every call is a server span: it continues the caller's trace when the request carries
 * a valid traceparent (same trace id, the caller's span as parent, its sampled flag) and starts
 * a new trace otherwise. Ids are random, lowercase hex, never all zeros. Pure; any thread.
 */
#ifndef TW_CORE_TRACE_H
#define TW_CORE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define TW_TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */

typedef struct {
    char trace_id[33];  /* 32 hex + NUL */
    char span_id[17];   /* this call's span: 16 hex + NUL */
    char parent_id[17]; /* the caller's span, "" when the trace started here */
    uint8_t flags;      /* trace-flags: only the sampled bit (0x01) is kept */
} tw_trace;

/* Parses a traceparent header value of n bytes (no NUL needed). 0 and *trace_id/parent_id/
 * flags filled when valid, -1 otherwise (bad shape, upper-case hex, version ff, all-zero ids,
 * a version 00 value with trailing bytes). Versions above 00 are read by their first 55
 * bytes, as the spec asks of a parser that does not know them. */
int tw_trace_parse(const char *value, size_t n, tw_trace *out);
/* The server span of a call: continues value when it parses (n bytes; NULL = absent),
 * else a new trace with flags 00. A fresh span id either way. */
void tw_trace_start(tw_trace *t, const char *value, size_t n);
/* "00-<trace_id>-<span_id>-<flags>" for outgoing calls made on behalf of this span;
 * out has room for TW_TRACEPARENT_LEN + 1 bytes. */
void tw_trace_format(const tw_trace *t, char out[TW_TRACEPARENT_LEN + 1]);

#endif
