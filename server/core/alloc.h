/*
 * One allocation wrapper for the server's own heap use, so a test can fail the Nth
 * allocation (curl's "torture" idea): tw_alloc_fail_after(n) makes the (n+1)th call fail.
 */
#ifndef TW_ALLOC_H
#define TW_ALLOC_H

#include <stddef.h>

/* malloc/calloc with the failure hook; free with free(). */
void *tw_malloc(size_t n);
void *tw_calloc(size_t count, size_t size);
char *tw_strdup(const char *s);

/* Tests only: fail every allocation after n more succeed; n < 0 turns the hook off. */
void tw_alloc_fail_after(long n);

#endif
