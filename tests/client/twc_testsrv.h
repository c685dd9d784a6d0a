/*
 * twc_testsrv.h - starts a real tradewinkd for the client tests and stops it again.
 * The server runs in its own temporary directory (so its dev key, database and master-key
 * file are fresh) on a free loopback port. Not thread-safe; one server per test process.
 */
#ifndef TWC_TESTSRV_H
#define TWC_TESTSRV_H

#include <sys/types.h>

typedef struct twc_testsrv {
    pid_t pid;
    int port;
    char dir[256];     /* the server's working directory */
    char target[64];   /* "127.0.0.1:<port>" */
    char keyfile[512]; /* <dir>/tradewink-dev-key.pem */
} twc_testsrv;

/* Starts binary (TW_LISTEN=127.0.0.1:0) and waits up to 30 s for its "listening" log line.
 * Returns 0, or -1 with a message on stderr. stderr of the server is drained by a thread and
 * echoed to our stderr when TWC_TEST_VERBOSE is set. */
int twc_testsrv_start(twc_testsrv *s, const char *binary);

/* SIGTERM, waits up to 10 s (then SIGKILL), removes the directory. Returns the server's exit
 * status (0 = clean), or -1 when it had to be killed. */
int twc_testsrv_stop(twc_testsrv *s);

#endif
