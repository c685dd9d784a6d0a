/*
 * Wipe-on-free allocator for tradewinkd (issue 20 part 2): every heap block is zeroed before
 * glibc gets it back, so a broker secret that passed through a buffer we do not own (grpc's
 * HTTP/2 read slices, OpenSSL's TLS records, libcurl's request headers, protobuf-c's decoder)
 * is gone from the process once that buffer is freed. grpc 1.51 has no hook to wipe its
 * slices, and those libraries allocate through plain malloc, so the one place that sees every
 * such buffer is the allocator itself.
 *
 * Design: this file is linked into the tradewinkd executable only (never into tw_server or
 * the tests). An executable's definition of malloc/free/calloc/realloc (and reallocarray,
 * which glibc would otherwise serve with its own realloc) interposes the
 * libraries' calls to them (the dynamic linker binds every DSO's malloc to the first
 * definition, ours); each wrapper delegates to glibc's own allocator through its exported
 * __libc_* entry points, so the heap, its arenas and mallopt() settings stay glibc's.
 * realloc never lets glibc move a block (that would free the old copy unwiped): it keeps the
 * block when the new size fits and is not far smaller, else allocates, copies, wipes, frees.
 * memalign/posix_memalign/aligned_alloc stay glibc's; their blocks come back through our free.
 *
 * Not built with TW_SANITIZE or TW_FUZZ: AddressSanitizer owns malloc there (and poisons
 * freed memory itself). Under valgrind, memcheck replaces the __libc_* entry points and
 * malloc_usable_size, so the wipe covers exactly the bytes the client asked for and memcheck
 * still sees every allocation and free.
 *
 * Invariant: free(p) writes zeros to all malloc_usable_size(p) bytes of p before glibc reuses
 * them; nothing here allocates, locks or logs (these run inside glibc, before main, in every
 * thread).
 */
#include <errno.h>
#include <malloc.h> /* malloc_usable_size; declares the four functions defined here */
#include <stddef.h>
#include <stdlib.h> /* reallocarray */
#include <string.h>

/* glibc's allocator under its own names (GLIBC_2.2.5). */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t count, size_t n);
extern void __libc_free(void *p);

void *malloc(size_t n)
{
    return __libc_malloc(n);
}

void *calloc(size_t count, size_t n)
{
    return __libc_calloc(count, n);
}

void free(void *p)
{
    if (!p)
        return;
    /* explicit_bzero, not memset: a store just before the block dies is dead to the
     * optimiser, which may know free's semantics from its name. */
    explicit_bzero(p, malloc_usable_size(p));
    __libc_free(p);
}

/* A block keeps serving a shrink down to this fraction of its size; below, it is replaced so
 * a large buffer cut down to a few bytes does not pin its memory. */
#define KEEP_SHRINK_DIV 4
#define KEEP_SMALL 256

void *realloc(void *p, size_t n)
{
    if (!p)
        return __libc_malloc(n);
    if (n == 0) { /* glibc's realloc(p, 0): free p, return NULL */
        free(p);
        return NULL;
    }
    size_t have = malloc_usable_size(p);
    if (n <= have && (have <= KEEP_SMALL || n >= have / KEEP_SHRINK_DIV))
        return p;
    void *q = __libc_malloc(n);
    if (!q)
        return NULL; /* p stays valid and untouched, as realloc promises */
    memcpy(q, p, n < have ? n : have);
    free(p);
    return q;
}

/* glibc's reallocarray calls its own realloc directly, which could move a block unwiped:
 * route it through ours. */
void *reallocarray(void *p, size_t count, size_t n)
{
    size_t total;
    if (__builtin_mul_overflow(count, n, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}
