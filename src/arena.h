/* Arena allocator: many small allocations, one free.
 *
 * The config tree and every request draw their memory from an arena that is
 * destroyed as a whole, so forgetting a free() is structurally hard.
 */
#ifndef TT_ARENA_H
#define TT_ARENA_H

#include <stddef.h>

typedef struct tt_arena tt_arena;

tt_arena *tt_arena_create(size_t first_block);
void     *tt_arena_alloc(tt_arena *a, size_t n);          /* zeroed, aligned to 16 */
char     *tt_arena_strndup(tt_arena *a, const char *s, size_t n);
char     *tt_arena_strdup(tt_arena *a, const char *s);
char     *tt_arena_printf(tt_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void      tt_arena_reset(tt_arena *a);    /* keep the first block, drop the rest */
void      tt_arena_destroy(tt_arena *a);

#endif
