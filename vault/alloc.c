/* alloc.c - the vault's one allocation wrapper.
 *
 * Every vault allocation goes through vault_malloc/vault_calloc so a test can make the Nth
 * allocation fail and check that each error path cleans up (curl's "torture" idea). Memory is
 * released with plain free(), so callers of the public API free tokens with free().
 */
#include "vault/vault_int.h"

#include <stdatomic.h>
#include <stdlib.h>

static atomic_long fail_countdown;

void vault_test_fail_alloc_after(long n)
{
    atomic_store(&fail_countdown, n);
}

static int should_fail(void)
{
    long cur = atomic_load(&fail_countdown);
    while (cur > 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &cur, cur - 1))
            return cur == 1;
    }
    return 0;
}

void *vault_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *vault_calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}
