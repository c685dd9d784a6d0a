/*
 * vg_faulty: a tiny program with one deliberate memory error per mode, run under the same
 * valgrind wrapper as the integration suite so test_harness.py can prove the log check in
 * tests/integration/twserver.py actually fails on each error kind it claims to catch.
 *
 * Design: argv[1] picks the mode (clean, invalid-read, invalid-write, uninit, leak); every
 * index and pointer goes through a volatile so the compiler cannot see (or warn about) the
 * bug. Invariant: "clean" frees everything and must produce no finding; every other mode
 * produces exactly the error it is named after. Never linked into anything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile size_t vg_past_end = 16; /* one past a 16-byte block */

static int vg_invalid_read(void)
{
    unsigned char *p = malloc(16);
    int r = 0;
    if (p == NULL)
        return 1;
    memset(p, 1, 16);
    r = p[vg_past_end] == 7 ? 3 : 0;
    free(p);
    return r;
}

static int vg_invalid_write(void)
{
    unsigned char *p = malloc(16);
    if (p == NULL)
        return 1;
    p[vg_past_end] = 1;
    free(p);
    return 0;
}

static void *volatile vg_sink;

static int vg_uninit(void)
{
    int *p = malloc(sizeof(*p));
    int *q = NULL;
    int r = 0;
    if (p == NULL)
        return 1;
    vg_sink = p; /* launder: the compiler no longer knows q points at fresh malloc memory */
    q = vg_sink;
    vg_sink = NULL;
    if (*q == 42) /* never initialised: "Conditional jump ... uninitialised value(s)" */
        r = 3;
    free(p);
    return r;
}

static int vg_leak(void)
{
    vg_sink = malloc(64);
    if (vg_sink == NULL)
        return 1;
    memset(vg_sink, 0, 64);
    vg_sink = NULL; /* the only pointer is gone: "definitely lost" */
    return 0;
}

static int vg_clean(void)
{
    char *p = malloc(32);
    if (p == NULL)
        return 1;
    memset(p, 0, 32);
    free(p);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(void);
    } modes[] = {
        {"clean", vg_clean},
        {"invalid-read", vg_invalid_read},
        {"invalid-write", vg_invalid_write},
        {"uninit", vg_uninit},
        {"leak", vg_leak},
    };
    if (argc != 2)
        goto usage;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(argv[1], modes[i].name) == 0)
            return modes[i].fn();
    }
usage:
    fprintf(stderr, "usage: vg_faulty clean|invalid-read|invalid-write|uninit|leak\n");
    return 2;
}
