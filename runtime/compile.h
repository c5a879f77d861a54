/* Specialises a function and compiles it to native code (no cache): the step
 * the cache runs on a miss. */
#ifndef RT_COMPILE_H
#define RT_COMPILE_H

#include "runtime/cache.h"
#include "runtime/handles.h"

/* shapes[i] is the shape of input i; opt_level 2 or 3.  *out holds one
 * reference; *seconds is the wall time taken.  A vmapped function may come
 * out tiled (runtime/tile.h), its chunk compiled through cache.  Honours
 * SJ_DUMP. */
sj_status rt_compile(rt_cache *cache, sj_fn *fn, const ir_shape *shapes, int opt_level,
                     sj_compiled **out, double *seconds, ir_err *err);

/* Monotonic wall clock in seconds. */
double rt_now(void);

#endif
