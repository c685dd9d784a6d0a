/*
 * tw_arena: a per-call bump allocator. Everything a call decodes, builds or formats lives here
 * and dies with the call in one tw_arena_destroy; cleanups registered on the arena run first,
 * in reverse order (PQclear, freeReplyObject, secret wiping). protobuf-c is pointed at the
 * arena through tw_arena_protobuf_allocator(), so decoded requests need no per-field frees.
 */
#ifndef TW_ARENA_H
#define TW_ARENA_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

typedef struct tw_arena tw_arena;

/* New arena; NULL on allocation failure. Free with tw_arena_destroy. */
tw_arena *tw_arena_create(void);
/* Runs cleanups, frees every block. NULL is a no-op. */
void tw_arena_destroy(tw_arena *a);

/* Memory valid until tw_arena_destroy, aligned for any type; NULL when out of memory. */
void *tw_arena_alloc(tw_arena *a, size_t n);
void *tw_arena_zalloc(tw_arena *a, size_t n);
char *tw_arena_strdup(tw_arena *a, const char *s);
char *tw_arena_printf(tw_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Register fn(arg) to run at tw_arena_destroy. Returns 0, or -1 (fn was run at once). */
int tw_arena_defer(tw_arena *a, void (*fn)(void *), void *arg);

/* A protobuf-c allocator that allocates from a and never frees (the arena does). The
 * allocator struct is owned by the arena. */
ProtobufCAllocator *tw_arena_protobuf_allocator(tw_arena *a);

/* Bytes handed out so far (for tests and metrics). */
size_t tw_arena_used(const tw_arena *a);

#endif
