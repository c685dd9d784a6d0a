/*
 * JSON-lines logger. The builder appends into a fixed stack buffer and marks the line
 * truncated rather than allocating; the finished line goes through the redaction hook and out
 * in one write(2). Settings are plain globals written once at start-up, before any thread.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static tw_log_level min_level = TW_LOG_INFO;
static int log_fd = 2;
static tw_log_redactor redactor;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void tw_log_setup(tw_log_level min, int fd)
{
    min_level = min;
    log_fd = fd;
}

void tw_log_set_redactor(tw_log_redactor fn)
{
    redactor = fn;
}

int tw_log_enabled(tw_log_level level)
{
    return level >= min_level;
}

int tw_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    if (strcmp(s, "warning") == 0)
        return TW_LOG_WARN;
    return -1;
}

static void put_raw(tw_logline *l, const char *s, size_t n)
{
    /* Keep room for the truncation mark and the closing "}\n". */
    if (l->truncated || l->len + n + 32 > sizeof(l->buf)) {
        if (!l->truncated)
            l->len = l->field_start; /* drop the partial field: the line stays valid JSON */
        l->truncated = 1;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_escaped(tw_logline *l, const char *s)
{
    put_raw(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"':
            put_raw(l, "\\\"", 2);
            break;
        case '\\':
            put_raw(l, "\\\\", 2);
            break;
        case '\n':
            put_raw(l, "\\n", 2);
            break;
        case '\r':
            put_raw(l, "\\r", 2);
            break;
        case '\t':
            put_raw(l, "\\t", 2);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                int n = snprintf(esc, sizeof(esc), "\\u%04x", *p);
                put_raw(l, esc, (size_t)n);
            } else {
                put_raw(l, (const char *)p, 1);
            }
        }
        if (l->truncated)
            return;
    }
    put_raw(l, "\"", 1);
}

static void put_key(tw_logline *l, const char *key)
{
    l->field_start = l->len;
    put_raw(l, ",", 1);
    put_escaped(l, key);
    put_raw(l, ":", 1);
}

void tw_log_begin(tw_logline *l, tw_log_level level, const char *event)
{
    struct timespec ts;
    struct tm tm;
    char head[96];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(head, sizeof(head),
                     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\",\"level\":\"%s\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000, level_names[level]);
    l->len = 0;
    l->field_start = 0;
    l->truncated = 0;
    l->level = level;
    put_raw(l, head, (size_t)n);
    tw_log_str(l, "event", event);
}

void tw_log_str(tw_logline *l, const char *key, const char *value)
{
    put_key(l, key);
    if (value)
        put_escaped(l, value);
    else
        put_raw(l, "null", 4);
}

void tw_log_int(tw_logline *l, const char *key, int64_t value)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%lld", (long long)value);
    put_key(l, key);
    put_raw(l, num, (size_t)n);
}

void tw_log_uint(tw_logline *l, const char *key, uint64_t value)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)value);
    put_key(l, key);
    put_raw(l, num, (size_t)n);
}

void tw_log_double(tw_logline *l, const char *key, double value)
{
    char num[48];
    int n = snprintf(num, sizeof(num), "%.3f", value);
    put_key(l, key);
    put_raw(l, num, (size_t)n);
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(log_fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void tw_log_end(tw_logline *l)
{
    if (!tw_log_enabled(l->level))
        return;
    if (l->truncated) {
        const char *mark = ",\"truncated\":true";
        memcpy(l->buf + l->len, mark, strlen(mark));
        l->len += strlen(mark);
    }
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    if (redactor) {
        char out[TW_LOG_LINE_MAX + 256];
        size_t n = redactor(l->buf, l->len, out, sizeof(out));
        write_all(out, n);
    } else {
        write_all(l->buf, l->len);
    }
}

void tw_logf(tw_log_level level, const char *event, const char *fmt, ...)
{
    if (!tw_log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tw_logline l;
    tw_log_begin(&l, level, event);
    tw_log_str(&l, "msg", msg);
    tw_log_end(&l);
}
