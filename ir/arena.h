/* A bump allocator owned by one graph: everything a graph points to (input
 * lists, constant data, names) lives here and is freed at once with it. */
#ifndef IR_ARENA_H
#define IR_ARENA_H

#include <stddef.h>

typedef struct ir_arena_block ir_arena_block;

typedef struct ir_arena {
    ir_arena_block *head;
    size_t used, cap; /* within head */
} ir_arena;

void ir_arena_init(ir_arena *a);
void ir_arena_free(ir_arena *a);
/* 16-byte aligned, zeroed; NULL when out of memory. */
void *ir_arena_alloc(ir_arena *a, size_t size);
/* A copy of size bytes of src.  src may be NULL (an empty list whose copy is
 * padded to a non-zero size): the block is then left zeroed. */
void *ir_arena_dup(ir_arena *a, const void *src, size_t size);
char *ir_arena_strdup(ir_arena *a, const char *s);

#endif
