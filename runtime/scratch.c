/* Scratch buffer pools (scratch.h). */
#include "runtime/scratch.h"

#include <stdint.h>

#include "ir/alloc.h"

/* The header sits just before the 64-byte aligned buffer it describes. */
typedef struct rt_scratch {
    struct rt_scratch *next;
    void *raw; /* what ir_malloc returned */
} rt_scratch;

#define SCRATCH_ALIGN 64

static void *scratch_data(rt_scratch *s) { return (char *)s + sizeof *s; }
static rt_scratch *scratch_of(void *buf) { return (rt_scratch *)((char *)buf - sizeof(rt_scratch)); }

static rt_scratch *scratch_new(size_t bytes)
{
    if (bytes > SIZE_MAX - 2 * SCRATCH_ALIGN - sizeof(rt_scratch))
        return NULL;
    char *raw = ir_malloc(bytes + SCRATCH_ALIGN + sizeof(rt_scratch));
    if (!raw)
        return NULL;
    uintptr_t data = ((uintptr_t)raw + sizeof(rt_scratch) + SCRATCH_ALIGN - 1) &
                     ~(uintptr_t)(SCRATCH_ALIGN - 1);
    rt_scratch *s = (rt_scratch *)(data - sizeof(rt_scratch));
    s->next = NULL;
    s->raw = raw;
    return s;
}

int rt_pool_init(rt_pool *p, size_t bytes)
{
    p->bytes = bytes;
    atomic_init(&p->hot, NULL);
    p->idle = NULL;
    return pthread_mutex_init(&p->lock, NULL) != 0;
}

void rt_pool_destroy(rt_pool *p)
{
    rt_scratch *s = atomic_exchange(&p->hot, NULL);
    if (s)
        ir_free(s->raw);
    for (rt_scratch *q = p->idle, *next; q; q = next) {
        next = q->next;
        ir_free(q->raw);
    }
    p->idle = NULL;
    pthread_mutex_destroy(&p->lock);
}

void *rt_pool_take(rt_pool *p)
{
    rt_scratch *s = atomic_exchange_explicit(&p->hot, NULL, memory_order_acquire);
    if (!s) {
        pthread_mutex_lock(&p->lock);
        s = p->idle;
        if (s)
            p->idle = s->next;
        pthread_mutex_unlock(&p->lock);
    }
    if (!s)
        s = scratch_new(p->bytes);
    return s ? scratch_data(s) : NULL;
}

void rt_pool_give(rt_pool *p, void *buf)
{
    rt_scratch *s = scratch_of(buf), *none = NULL;
    if (atomic_compare_exchange_strong_explicit(&p->hot, &none, s, memory_order_release,
                                                memory_order_relaxed))
        return;
    pthread_mutex_lock(&p->lock);
    s->next = p->idle;
    p->idle = s;
    pthread_mutex_unlock(&p->lock);
}
