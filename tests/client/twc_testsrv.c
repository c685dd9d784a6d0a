/*
 * twc_testsrv.c - a live tradewinkd for the client tests (see twc_testsrv.h).
 * Design: fork + exec with stderr on a pipe; the parent reads JSON log lines until the
 * "listening" event names the port, then a detached thread keeps draining the pipe so the
 * server never blocks on logging. All waits are bounded.
 */
#include "twc_testsrv.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int drain_fd = -1;

/* 1 when the NAME part of "NAME=value" contains "proxy" in any case. */
static int is_proxy_var(const char *kv)
{
    static const char word[] = "proxy";
    size_t n = strcspn(kv, "=");
    for (size_t i = 0; i + 5 <= n; i++) {
        size_t k = 0;
        while (k < 5 && (kv[i + k] | 0x20) == word[k])
            k++;
        if (k == 5)
            return 1;
    }
    return 0;
}

static void *drain(void *arg)
{
    char buf[4096];
    ssize_t n;
    int verbose = getenv("TWC_TEST_VERBOSE") != NULL;
    (void)arg;
    while ((n = read(drain_fd, buf, sizeof buf)) > 0)
        if (verbose && write(2, buf, (size_t)n) < 0)
            break;
    close(drain_fd);
    return NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Port from a line like {...,"event":"listening",...,"port":44879,...}, or 0. */
static int port_of(const char *line)
{
    const char *p;
    if (strstr(line, "\"event\":\"listening\"") == NULL || (p = strstr(line, "\"port\":")) == NULL)
        return 0;
    long v = strtol(p + 7, NULL, 10);
    return v > 0 && v < 65536 ? (int)v : 0;
}

int twc_testsrv_start(twc_testsrv *s, const char *binary)
{
    int fds[2];
    char line[2048];
    size_t len = 0;

    memset(s, 0, sizeof *s);
    char *abs = realpath(binary, NULL); /* the child changes directory before exec */
    if (abs == NULL) {
        perror(binary);
        return -1;
    }
    snprintf(s->dir, sizeof s->dir, "/tmp/twc-test-XXXXXX");
    if (mkdtemp(s->dir) == NULL || pipe(fds) != 0) {
        perror("twc_testsrv");
        return -1;
    }
    snprintf(s->keyfile, sizeof s->keyfile, "%s/tradewink-dev-key.pem", s->dir);
    s->pid = fork();
    if (s->pid < 0) {
        free(abs);
        return -1;
    }
    if (s->pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        if (chdir(s->dir) != 0)
            _exit(127);
        for (char **e = environ; *e != NULL;) { /* only our TW_* settings, no proxies */
            if (strncmp(*e, "TW_", 3) == 0 || is_proxy_var(*e)) {
                char name[256];
                size_t n = strcspn(*e, "=");
                snprintf(name, sizeof name, "%.*s", (int)n, *e);
                unsetenv(name);
            } else {
                e++;
            }
        }
        setenv("TW_LISTEN", "127.0.0.1:0", 1);
        setenv("TW_OPS_LISTEN", "127.0.0.1:0", 1);
        /* The suite calls every method in bursts; limits are tested in tests/services. */
        setenv("TW_RATE_AUTH_FAIL", "100000/s:100000", 1);
        setenv("TW_RATE_PUBLIC", "100000/s:100000", 1);
        setenv("TW_RATE_API", "100000/s:100000", 1);
        execl(abs, abs, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    free(abs);
    int64_t end = now_ms() + 30000;
    while (s->port == 0) {
        struct pollfd p = {fds[0], POLLIN, 0};
        int64_t left = end - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        char ch;
        ssize_t n = read(fds[0], &ch, 1);
        if (n <= 0)
            break;
        if (ch == '\n' || len + 1 >= sizeof line) {
            line[len] = '\0';
            s->port = port_of(line);
            len = 0;
        } else {
            line[len++] = ch;
        }
    }
    if (s->port == 0) {
        fprintf(stderr, "twc_testsrv: %s did not report a listening port\n", binary);
        close(fds[0]);
        twc_testsrv_stop(s);
        return -1;
    }
    snprintf(s->target, sizeof s->target, "127.0.0.1:%d", s->port);
    drain_fd = fds[0];
    pthread_t t;
    if (pthread_create(&t, NULL, drain, NULL) == 0)
        pthread_detach(t);
    return 0;
}

int twc_testsrv_stop(twc_testsrv *s)
{
    int status = 0, result = -1;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int64_t end = now_ms() + 10000;
        pid_t r = 0;
        while ((r = waitpid(s->pid, &status, WNOHANG)) == 0 && now_ms() < end)
            usleep(20000);
        if (r == 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
        } else if (r == s->pid && WIFEXITED(status)) {
            result = WEXITSTATUS(status);
        }
        s->pid = 0;
    }
    if (s->dir[0] != '\0') {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "twc_testsrv: could not remove %s\n", s->dir);
        s->dir[0] = '\0';
    }
    return result;
}
