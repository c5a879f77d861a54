#include "ir/arena.h"

#include <stdint.h>
#include <string.h>

#include "ir/alloc.h"

struct ir_arena_block {
    ir_arena_block *prev;
    _Alignas(16) unsigned char data[];
};

enum { BLOCK_SIZE = 16 * 1024 };

void ir_arena_init(ir_arena *a) { memset(a, 0, sizeof *a); }

void ir_arena_free(ir_arena *a)
{
    ir_arena_block *b = a->head;
    while (b) {
        ir_arena_block *prev = b->prev;
        ir_free(b);
        b = prev;
    }
    ir_arena_init(a);
}

void *ir_arena_alloc(ir_arena *a, size_t size)
{
    if (size > SIZE_MAX - 32)
        return NULL;
    size = (size + 15) & ~(size_t)15;
    if (!a->head || a->cap - a->used < size) {
        size_t cap = size > BLOCK_SIZE ? size : BLOCK_SIZE;
        ir_arena_block *b = ir_malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->prev = a->head;
        a->head = b;
        a->used = 0;
        a->cap = cap;
    }
    void *p = a->head->data + a->used;
    a->used += size;
    memset(p, 0, size);
    return p;
}

void *ir_arena_dup(ir_arena *a, const void *src, size_t size)
{
    void *p = ir_arena_alloc(a, size);
    if (p && size && src) /* src NULL: an empty list padded to one slot (zeroed) */
        memcpy(p, src, size);
    return p;
}

char *ir_arena_strdup(ir_arena *a, const char *s)
{
    return ir_arena_dup(a, s, strlen(s) + 1);
}
