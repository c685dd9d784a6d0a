/*
 * fuzz.h - the libFuzzer entry point every tests/fuzz target defines, plus small helpers the
 * targets share. A target is built two ways (tests/fuzz/CMakeLists.txt): linked with
 * -fsanitize=fuzzer in the fuzz preset, or with replay_main.c as a plain program that runs the
 * seed corpus once in every other build, so ordinary CI keeps the corpus passing.
 * Targets keep no state between inputs except what they build once on first use (verifiers,
 * route tables), so a crash reproduces from its input file alone.
 */
#ifndef TW_FUZZ_H
#define TW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Called by libFuzzer (or replay_main.c) once per input; returns 0. Aborts on a violated
 * property so the fuzzer records the input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() with a message: a property the target checks does not hold. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A malloc'd NUL-terminated copy of data[0..size) (embedded NULs stay: C-string consumers see
 * the prefix). Aborts when out of memory: the fuzzer must not mistake that for a finding. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    for (size_t i = 0; i < size; i++)
        s[i] = (char)data[i];
    s[size] = '\0';
    return s;
}

/* A FILE that discards everything (error output of the code under test). Opened once. */
static inline FILE *fuzz_devnull(void)
{
    static FILE *f;
    if (!f && !(f = fopen("/dev/null", "w")))
        abort();
    return f;
}

#endif
