/*
 * Test helpers for tests/edge: temp dirs, free loopback ports, child processes started with
 * posix_spawn and stopped by their PID (never by name), waiting for a port to accept.
 */
#ifndef EDGE_TEST_PROC_H
#define EDGE_TEST_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* mkdtemp under $TMPDIR or /tmp; writes the path into out. 0 on success. */
int etp_tempdir(char *out, size_t cap);
/* rm -r of a temp dir made by etp_tempdir (only paths under /tmp are accepted). */
void etp_rmdir(const char *dir);
/* A loopback TCP port that was free a moment ago (bind :0, read, close). 0 on failure. */
int etp_free_port(void);
/* Starts argv[0] (PATH search) with stdout+stderr appended to logpath; returns the pid or -1. */
pid_t etp_spawn(const char *const argv[], const char *logpath);
/* SIGTERM, wait up to 5 s, then SIGKILL; reaps. pid <= 0 is a no-op. */
void etp_stop(pid_t pid);
/* SIGKILL and reap (a crash). */
void etp_kill(pid_t pid);
/* Waits until 127.0.0.1:port accepts a TCP connection; 0 when it did within timeout_ms. */
int etp_wait_port(int port, int timeout_ms);
/* Runs a command to completion (no shell); returns its exit status or -1. */
int etp_run(const char *const argv[], const char *logpath);
/* 1 if an executable is found on PATH. */
int etp_have(const char *prog);
/* Sleep for ms milliseconds. */
void etp_sleep_ms(int ms);

#endif
