/*
 * W3C traceparent parsing and id generation.
 *
 * Ids come from a per-thread splitmix64 stream seeded once from getrandom(): trace ids need
 * to be unique and unguessable enough to not collide across replicas, not secret, and a
 * syscall per call would cost more than the rest of the bookkeeping. The all-zero id, which
 * the spec forbids, is redrawn.
 */
#include "core/trace.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int lower_hex(const char *s, size_t n, int *all_zero)
{
    *all_zero = 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
        if (c != '0')
            *all_zero = 0;
    }
    return 1;
}

static unsigned hexval(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

int tw_trace_parse(const char *v, size_t n, tw_trace *out)
{
    int zero;
    if (!v || n < TW_TRACEPARENT_LEN || v[2] != '-' || v[35] != '-' || v[52] != '-')
        return -1;
    if (!lower_hex(v, 2, &zero) || (v[0] == 'f' && v[1] == 'f'))
        return -1;
    int v00 = v[0] == '0' && v[1] == '0';
    if ((v00 && n != TW_TRACEPARENT_LEN) || (!v00 && n > TW_TRACEPARENT_LEN && v[55] != '-'))
        return -1;
    if (!lower_hex(v + 3, 32, &zero) || zero)
        return -1;
    if (!lower_hex(v + 36, 16, &zero) || zero)
        return -1;
    if (!lower_hex(v + 53, 2, &zero))
        return -1;
    memcpy(out->trace_id, v + 3, 32);
    out->trace_id[32] = '\0';
    memcpy(out->parent_id, v + 36, 16);
    out->parent_id[16] = '\0';
    out->flags = (uint8_t)((hexval(v[53]) << 4 | hexval(v[54])) & 0x01);
    return 0;
}

static _Thread_local uint64_t rng_state;
static _Thread_local int rng_seeded;

static uint64_t next64(void)
{
    if (!rng_seeded) {
        if (getrandom(&rng_state, sizeof(rng_state), 0) != (ssize_t)sizeof(rng_state)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            rng_state ^= (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec;
        }
        rng_seeded = 1;
    }
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* n/16 random non-zero 64-bit words as lowercase hex (n = 16 or 32) plus a NUL. */
static void random_hex(char *out, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        uint64_t w;
        do
            w = next64();
        while (w == 0);
        snprintf(out + i, 17, "%016llx", (unsigned long long)w);
    }
}

void tw_trace_start(tw_trace *t, const char *value, size_t n)
{
    if (!value || tw_trace_parse(value, n, t) != 0) {
        random_hex(t->trace_id, 32);
        t->parent_id[0] = '\0';
        t->flags = 0;
    }
    random_hex(t->span_id, 16);
}

void tw_trace_format(const tw_trace *t, char out[TW_TRACEPARENT_LEN + 1])
{
    snprintf(out, TW_TRACEPARENT_LEN + 1, "00-%.32s-%.16s-%02x", t->trace_id, t->span_id,
             (unsigned)t->flags);
}
