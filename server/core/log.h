/*
 * Structured logging: one JSON object per line, written with a single write(2) so lines from
 * different threads never interleave. Lines are built on the stack by a small builder; a
 * redaction hook (installed from vault/ at start) sees every finished line before it is
 * written. Callers never log payloads or header values; the hook is the second line of
 * defence, not the first.
 */
#ifndef TW_LOG_H
#define TW_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TW_LOG_DEBUG = 0, TW_LOG_INFO, TW_LOG_WARN, TW_LOG_ERROR } tw_log_level;

#define TW_LOG_LINE_MAX 4096

typedef struct {
    char buf[TW_LOG_LINE_MAX];
    size_t len;
    size_t field_start; /* rollback point if a field does not fit */
    int truncated;
    tw_log_level level;
} tw_logline;

/* Redaction hook: rewrite line[0..len) into out (capacity cap), return the new length.
 * Must be thread-safe and must not log. */
typedef size_t (*tw_log_redactor)(const char *line, size_t len, char *out, size_t cap);

/* Process-wide settings; call before threads start. fd defaults to 2 (stderr). */
void tw_log_setup(tw_log_level min, int fd);
void tw_log_set_redactor(tw_log_redactor fn);
int tw_log_enabled(tw_log_level level);
/* Parse "debug" | "info" | "warn" | "error"; returns -1 when unknown. */
int tw_log_level_parse(const char *s);

/* Builder: begin, add fields, end (writes the line). Strings are JSON-escaped. */
void tw_log_begin(tw_logline *l, tw_log_level level, const char *event);
void tw_log_str(tw_logline *l, const char *key, const char *value);
void tw_log_int(tw_logline *l, const char *key, int64_t value);
void tw_log_uint(tw_logline *l, const char *key, uint64_t value);
void tw_log_double(tw_logline *l, const char *key, double value);
void tw_log_end(tw_logline *l);

/* One-liner: event plus a printf-formatted "msg" field. */
void tw_logf(tw_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
