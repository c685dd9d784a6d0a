/*
 * brokers/broker_int.h — helpers shared by the broker backends. Not a public header.
 */
#ifndef TW_BROKERS_BROKER_INT_H
#define TW_BROKERS_BROKER_INT_H

#include <stdarg.h>

#include "brokers/broker.h"

#if defined(__GNUC__)
#define BRK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BRK_PRINTF(a, b)
#endif

/* Replaces err->message with a formatted one (err may be NULL). Returns rc for tail calls. */
brk_rc brk_err_set(brk_err *err, brk_rc rc, int http_status, const char *fmt, ...) BRK_PRINTF(4, 5);

/* Formats one log line and hands it to fn (a no-op when fn is NULL). */
void brk_logf(brk_log_fn fn, void *ctx, brk_log_level level, const char *fmt, ...) BRK_PRINTF(4, 5);

/* 1..128 chars of [A-Za-z0-9._:-] */
bool brk_valid_order_id(const char *s);
/* 1..31 chars of [A-Za-z0-9./-] */
bool brk_valid_symbol(const char *s);

/* Bounded copy that always NUL-terminates; returns false when src did not fit. */
bool brk_copy(char *dst, size_t cap, const char *src);

/*
 * Parses a decimal like risk_dec_parse, but digits beyond the scale are rounded half away
 * from zero instead of refused (for averages a broker computed). NUL-terminated s.
 */
risk_dec_rc brk_dec_parse_round(const char *s, int digits, int64_t *out);

#endif
