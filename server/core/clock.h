/*
 * clock.h - the clocks, read exactly: the wall clock (seconds, microseconds) for what is
 * stamped or compared with stamps, the monotonic clock (milliseconds, microseconds) for
 * intervals and deadlines, whatever the wall clock does.
 *
 * time(NULL) on Linux reads the kernel's coarse clock, which lags
 * CLOCK_REALTIME by up to one tick: just after a second boundary it still
 * answers the previous second. A token minted from it can expire a second
 * before the moment its caller measured plus the TTL, and a clock check can
 * disagree with every timestamp the audit trail writes from CLOCK_REALTIME.
 * Everything that stamps or checks seconds uses this instead.
 */
#ifndef TW_CORE_CLOCK_H
#define TW_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t tw_wall_seconds(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (int64_t)time(NULL);
    return (int64_t)ts.tv_sec;
}

static inline int64_t tw_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t tw_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t tw_mono_ms(void)
{
    return tw_mono_us() / 1000;
}

#endif
