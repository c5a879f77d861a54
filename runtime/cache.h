/* The compile cache of a context: specialised, natively compiled functions
 * keyed by (function, input shapes, options).
 *
 * A function is identified by its record: the first compile of an sj_fn finds
 * (by fingerprint, then a full comparison of the serialised function) or
 * makes the record of an identical function and remembers it in fn->rec; from
 * then on a lookup hashes the record pointer, the options and the shapes, and
 * compares them exactly.  Entries live until the context is freed.
 *
 * Thread safety: one mutex guards the tables and counters; compiling happens
 * outside it.  An entry being compiled is in the table with no result yet, so
 * a second thread asking for the same key waits for the first instead of
 * compiling again; if the compile fails the entry is removed and the waiters
 * try again themselves (each then gets the error). */
#ifndef RT_CACHE_H
#define RT_CACHE_H

#include "runtime/handles.h"

typedef struct rt_cache rt_cache;

/* NULL when out of memory.  Reads SJ_OPT_LEVEL (2 or 3) for the options and
 * SJ_NO_TILE. */
rt_cache *rt_cache_new(void);
/* Drops the cache's reference on every compiled function and frees it. */
void rt_cache_free(rt_cache *cache);

/* The compiled fn for these input shapes (shapes[i] for input i), compiled
 * now if the cache has none: *out is a new reference. */
sj_status rt_cache_get(rt_cache *cache, sj_fn *fn, const ir_shape *shapes, sj_compiled **out,
                       ir_err *err);

/* "compiles", "cache_hits", "compile_seconds", "cache_entries", "tiled_calls";
 * SJ_ERR_UNKNOWN_NAME for anything else. */
sj_status rt_cache_counter(rt_cache *cache, const char *name, double *value);

/* Whether vmapped functions are tiled (runtime/tile.h): SJ_NO_TILE as it
 * was when the cache was made, so that every entry of one cache agrees. */
int rt_cache_tiling(const rt_cache *cache);
/* Counts one call of a tiled function ("tiled_calls"). */
void rt_cache_note_tiled_call(rt_cache *cache);

#endif
