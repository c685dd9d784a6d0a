/* Allocation wrapper with a failure-injection counter for tests (off unless armed). */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown = -1;

static int should_fail(void)
{
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n < 0)
        return 0;
    if (n == 0)
        return 1;
    atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed);
    return 0;
}

void tw_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}

void *tw_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n);
}

void *tw_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count, size);
}

char *tw_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = tw_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}
