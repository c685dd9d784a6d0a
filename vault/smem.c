/* smem.c - memory for key material: locked, excluded from core dumps, wiped on free.
 *
 * First choice is OpenSSL's secure heap (CRYPTO_secure_malloc_init mmaps an arena, mlocks it,
 * marks it MADV_DONTDUMP and puts guard pages around it). When that cannot be set up (or comes
 * up without its protections, e.g. RLIMIT_MEMLOCK too small) we use our own mmap'd pages with
 * mlock + MADV_DONTDUMP per allocation; if even mlock is refused the pages are still never
 * dumped and always wiped. Allocations here are few and long lived (master keys, the key-cache
 * slab), so page granularity in the fallback costs nothing.
 * Invariant: every byte handed out is zeroed and is OPENSSL_cleanse'd before release.
 */
#include "vault/vault_int.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SMEM_DEFAULT_HEAP (256u * 1024u)
#define SMEM_MIN_ALLOC 32
#define PAGE_MAGIC 0x5641554c54504731ull /* "VAULTPG1" */
#define PAGE_HDR 64                      /* keeps the user pointer 64-byte aligned */

struct page_hdr {
    uint64_t magic;
    size_t map_len;
    int locked;
};

static pthread_mutex_t smem_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int smem_mode = VAULT_SMEM_NONE;

static size_t round_pow2(size_t n)
{
    size_t p = 4096;
    while (p < n && p < ((size_t)1 << 30))
        p <<= 1;
    return p;
}

vault_smem_mode vault_secure_memory_init(size_t heap_bytes)
{
    int ret, mode;

    pthread_mutex_lock(&smem_lock);
    mode = atomic_load(&smem_mode);
    if (mode != VAULT_SMEM_NONE)
        goto out;
    if (CRYPTO_secure_malloc_initialized()) {
        mode = VAULT_SMEM_OPENSSL; /* someone else (the server's TLS setup) did it */
        goto out;
    }
    ret = CRYPTO_secure_malloc_init(round_pow2(heap_bytes ? heap_bytes : SMEM_DEFAULT_HEAP),
                                    SMEM_MIN_ALLOC);
    if (ret == 1) {
        mode = VAULT_SMEM_OPENSSL;
        goto out;
    }
    if (ret == 2) /* usable but unprotected: not good enough for keys */
        CRYPTO_secure_malloc_done();
    {
        /* Probe whether our own pages can be locked, to report the mode honestly. */
        int locked = 0;
        void *p = vault_smem_page_alloc(1, &locked);
        if (p != NULL)
            vault_smem_page_free(p, 1);
        mode = locked ? VAULT_SMEM_FALLBACK : VAULT_SMEM_UNLOCKED;
    }
out:
    atomic_store(&smem_mode, mode);
    pthread_mutex_unlock(&smem_lock);
    return (vault_smem_mode)mode;
}

vault_smem_mode vault_secure_memory_mode(void)
{
    return (vault_smem_mode)atomic_load(&smem_mode);
}

void *vault_smem_page_alloc(size_t n, int *locked)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    size_t len;
    struct page_hdr *h;
    void *m;

    if (n > SIZE_MAX - PAGE_HDR - page)
        return NULL;
    len = (n + PAGE_HDR + page - 1) / page * page;
    m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
#ifdef MADV_DONTDUMP
    (void)madvise(m, len, MADV_DONTDUMP);
#endif
    h = m;
    h->magic = PAGE_MAGIC;
    h->map_len = len;
    h->locked = mlock(m, len) == 0;
    if (locked != NULL)
        *locked = h->locked;
    return (unsigned char *)m + PAGE_HDR;
}

void vault_smem_page_free(void *p, size_t n)
{
    struct page_hdr *h;
    size_t len;

    (void)n;
    if (p == NULL)
        return;
    h = (struct page_hdr *)(void *)((unsigned char *)p - PAGE_HDR);
    len = h->map_len;
    OPENSSL_cleanse(h, len);
    (void)munlock(h, len);
    (void)munmap(h, len);
}

void *vault_smem_alloc(size_t n)
{
    void *p = NULL;

    if (vault_secure_memory_mode() == VAULT_SMEM_NONE)
        (void)vault_secure_memory_init(0);
    if (vault_secure_memory_mode() == VAULT_SMEM_OPENSSL)
        p = CRYPTO_secure_zalloc(n, OPENSSL_FILE, OPENSSL_LINE);
    if (p == NULL) /* fallback mode, or the secure heap is full */
        p = vault_smem_page_alloc(n, NULL);
    return p;
}

void vault_smem_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    if (CRYPTO_secure_allocated(p))
        CRYPTO_secure_clear_free(p, n, OPENSSL_FILE, OPENSSL_LINE);
    else
        vault_smem_page_free(p, n);
}

int vault_smem_is_secure(const void *p)
{
    const struct page_hdr *h;

    if (p == NULL)
        return 0;
    if (CRYPTO_secure_allocated(p))
        return 1;
    h = (const struct page_hdr *)(const void *)((const unsigned char *)p - PAGE_HDR);
    return h->magic == PAGE_MAGIC && h->locked;
}
