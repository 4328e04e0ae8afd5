/* Arena allocator: bump allocation in chained blocks, freed all at once. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arena.h"

#define TT_ARENA_ALIGN 16

typedef struct tt_block {
    struct tt_block *next;
    size_t           size;      /* usable bytes in data[] */
    size_t           used;
    _Alignas(TT_ARENA_ALIGN) unsigned char data[];
} tt_block;

struct tt_arena {
    tt_block *head;             /* current block, chained to older ones */
    tt_block *first;            /* kept by tt_arena_reset() */
    size_t    block_size;
};

static tt_block *block_new(size_t size)
{
    tt_block *b = malloc(sizeof(*b) + size);
    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

tt_arena *tt_arena_create(size_t first_block)
{
    tt_arena *a = malloc(sizeof(*a));
    if (a == NULL)
        return NULL;
    if (first_block < 256)
        first_block = 256;
    a->block_size = first_block;
    a->first = a->head = block_new(first_block);
    if (a->head == NULL) {
        free(a);
        return NULL;
    }
    return a;
}

void *tt_arena_alloc(tt_arena *a, size_t n)
{
    size_t need = (n + TT_ARENA_ALIGN - 1) & ~(size_t)(TT_ARENA_ALIGN - 1);
    tt_block *b = a->head;

    if (need == 0)
        need = TT_ARENA_ALIGN;
    if (b->size - b->used < need) {
        /* big requests get a block of their own; the rest grow geometrically */
        size_t size = a->block_size * 2;
        if (size < need)
            size = need;
        if (size <= 1 << 20)
            a->block_size = size;
        b = block_new(size);
        if (b == NULL)
            return NULL;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    memset(p, 0, n);
    return p;
}

char *tt_arena_strndup(tt_arena *a, const char *s, size_t n)
{
    char *p = tt_arena_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *tt_arena_strdup(tt_arena *a, const char *s)
{
    return tt_arena_strndup(a, s, strlen(s));
}

char *tt_arena_printf(tt_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = tt_arena_alloc(a, (size_t)n + 1);
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void tt_arena_reset(tt_arena *a)
{
    tt_block *b = a->head;
    while (b != a->first) {
        tt_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = a->first;
    a->first->used = 0;
}

void tt_arena_destroy(tt_arena *a)
{
    if (a == NULL)
        return;
    tt_block *b = a->head;
    while (b != NULL) {
        tt_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}
