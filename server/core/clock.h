/*
 * clock.h - the wall clock in whole seconds, read exactly.
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

#endif
