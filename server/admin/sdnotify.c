/*
 * sd_notify for tradewinkd, through Debian's libsystemd (sd-daemon.h): it finds NOTIFY_SOCKET
 * (a path or an abstract socket), sends one datagram with credentials, and validates
 * WATCHDOG_USEC / WATCHDOG_PID, which a hand-written sender would have to get right itself.
 * Failures are ignored on purpose: a manager that cannot be told is not a reason to stop
 * serving (it times the start-up out or kills a silent watchdog on its own).
 */
#include "admin/sdnotify.h"

#include <stdio.h>
#include <systemd/sd-daemon.h>

static void send_with_status(const char *what, const char *status)
{
    char msg[300];
    snprintf(msg, sizeof msg, "%s%sSTATUS=%s", what ? what : "", what ? "\n" : "",
             status ? status : "");
    (void)sd_notify(0, msg);
}

void srv_sd_ready(const char *status)
{
    send_with_status("READY=1", status);
}

void srv_sd_stopping(const char *status)
{
    send_with_status("STOPPING=1", status);
}

void srv_sd_status(const char *status)
{
    send_with_status(NULL, status);
}

void srv_sd_watchdog(void)
{
    (void)sd_notify(0, "WATCHDOG=1");
}

uint64_t srv_sd_watchdog_usec(void)
{
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}
