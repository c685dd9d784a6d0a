/*
 * Per-call arena. Blocks form a singly linked list; small requests bump inside the current
 * block, large ones get a block of their own so a big allocation does not waste a block's
 * tail. Alignment is max_align_t. Cleanups are a linked list allocated from the arena itself.
 * Invariant: every pointer handed out stays valid until tw_arena_destroy.
 */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define ARENA_BLOCK 4096
#define ARENA_ALIGN (_Alignof(max_align_t))

struct block {
    struct block *next;
    size_t size, used;
    _Alignas(max_align_t) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    void (*fn)(void *);
    void *arg;
};

struct tw_arena {
    struct block *head;
    struct cleanup *cleanups;
    size_t used;
    ProtobufCAllocator pb;
};

static void *pb_alloc(void *data, size_t n)
{
    return tw_arena_alloc(data, n);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

static struct block *block_new(size_t size)
{
    struct block *b = tw_malloc(sizeof(*b) + size);
    if (b) {
        b->next = NULL;
        b->size = size;
        b->used = 0;
    }
    return b;
}

tw_arena *tw_arena_create(void)
{
    tw_arena *a = tw_malloc(sizeof(*a));
    if (!a)
        return NULL;
    a->head = NULL;
    a->cleanups = NULL;
    a->used = 0;
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    return a;
}

void tw_arena_destroy(tw_arena *a)
{
    if (!a)
        return;
    for (struct cleanup *c = a->cleanups; c; c = c->next)
        c->fn(c->arg);
    struct block *b = a->head;
    while (b) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

void *tw_arena_alloc(tw_arena *a, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    size_t need = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    struct block *b = a->head;
    if (!b || b->size - b->used < need) {
        if (need > ARENA_BLOCK / 4) {
            /* Dedicated block, linked behind the current one so bumping continues there. */
            struct block *big = block_new(need);
            if (!big)
                return NULL;
            big->used = need;
            if (b) {
                big->next = b->next;
                b->next = big;
            } else {
                a->head = big;
            }
            a->used += n;
            return big->data;
        }
        b = block_new(ARENA_BLOCK);
        if (!b)
            return NULL;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->used += n;
    return p;
}

void *tw_arena_zalloc(tw_arena *a, size_t n)
{
    void *p = tw_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *tw_arena_strdup(tw_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = tw_arena_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

char *tw_arena_printf(tw_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = tw_arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

int tw_arena_defer(tw_arena *a, void (*fn)(void *), void *arg)
{
    struct cleanup *c = tw_arena_alloc(a, sizeof(*c));
    if (!c) {
        fn(arg);
        return -1;
    }
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}

ProtobufCAllocator *tw_arena_protobuf_allocator(tw_arena *a)
{
    return &a->pb;
}

size_t tw_arena_used(const tw_arena *a)
{
    return a->used;
}
