/* A pool of equally sized, 64-byte aligned scratch buffers shared by the
 * concurrent calls of one compiled function.  A call takes `hot` (one atomic
 * exchange) or pops the locked list, allocating only when both are empty, and
 * gives the buffer back the same way; so a steady-state call allocates
 * nothing, and each concurrent call has a buffer of its own.  Internal. */
#ifndef RT_SCRATCH_H
#define RT_SCRATCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

struct rt_scratch;

typedef struct rt_pool {
    size_t bytes;
    _Atomic(struct rt_scratch *) hot;
    pthread_mutex_t lock;
    struct rt_scratch *idle;
} rt_pool;

/* An empty pool of buffers of `bytes` bytes; 0 on success. */
int rt_pool_init(rt_pool *p, size_t bytes);
/* Frees every idle buffer (none may be taken) and the lock. */
void rt_pool_destroy(rt_pool *p);
/* A buffer of p->bytes bytes, 64-byte aligned; NULL when out of memory. */
void *rt_pool_take(rt_pool *p);
/* Gives back a buffer rt_pool_take(p) returned. */
void rt_pool_give(rt_pool *p, void *buf);

#endif
