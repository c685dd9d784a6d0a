/*
 * srv_sd: the service-manager protocol (sd_notify) for Type=notify units. Without
 * NOTIFY_SOCKET in the environment (not run by systemd) every call is a no-op, so the same
 * binary runs anywhere. Called from the main thread only.
 */
#ifndef SRV_SDNOTIFY_H
#define SRV_SDNOTIFY_H

#include <stdint.h>

/* READY=1 plus a STATUS= line: the listener serves and the store answers. */
void srv_sd_ready(const char *status);
/* STOPPING=1 plus STATUS=: draining has begun. */
void srv_sd_stopping(const char *status);
/* STATUS= only (e.g. why start-up still waits). */
void srv_sd_status(const char *status);
/* WATCHDOG=1: the process is making progress. */
void srv_sd_watchdog(void);
/* The watchdog interval the manager asked for (WATCHDOG_USEC, for this pid), in
 * microseconds; 0 when no watchdog is set. */
uint64_t srv_sd_watchdog_usec(void);

#endif
