#include "ir/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown;

static int should_fail(void)
{
    long k = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (k <= 0)
        return 0;
    return atomic_fetch_sub(&fail_countdown, 1) == 1;
}

void ir_alloc_fail_at(long k) { atomic_store(&fail_countdown, k); }

int ir_alloc_fail_pending(void) { return atomic_load(&fail_countdown) > 0; }

void *ir_malloc(size_t size)
{
    return should_fail() ? NULL : malloc(size ? size : 1);
}

void *ir_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *ir_realloc(void *p, size_t size)
{
    return should_fail() ? NULL : realloc(p, size ? size : 1);
}

void *ir_realloc_array(void *p, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    return ir_realloc(p, count * size);
}

void ir_free(void *p) { free(p); }

char *ir_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ir_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
