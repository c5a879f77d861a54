/* The one allocator every part of the library uses, so that out-of-memory
 * paths can be exercised by a test hook (the SQLite / Lua habit).  Callers
 * must handle NULL from every function here. */
#ifndef IR_ALLOC_H
#define IR_ALLOC_H

#include <stddef.h>

void *ir_malloc(size_t size);
void *ir_calloc(size_t count, size_t size);
void *ir_realloc(void *p, size_t size);
/* realloc of count*size bytes, NULL if the product overflows. */
void *ir_realloc_array(void *p, size_t count, size_t size);
void ir_free(void *p);
char *ir_strdup(const char *s);
/* n rounded up to a multiple of 64 bytes (a cache line: buffers carved out
 * of one allocation start on one). */
static inline size_t ir_align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Test hook: the k-th allocation from now on fails (k >= 1); 0 disables. */
void ir_alloc_fail_at(long k);
/* Test hook: nonzero while the failure armed by ir_alloc_fail_at has not
 * happened yet (the code under test made fewer than k allocations). */
int ir_alloc_fail_pending(void);

#endif
