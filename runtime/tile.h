/* Batch tiling of vmapped functions (docs/vmap.md, "Batch tiling"): a
 * function whose last step is a vmap, compiled for a batch of B items, is
 * compiled for a chunk of C items instead and called as ceil(B / C) chunks,
 * shared across cores by the batch pool.  Internal. */
#ifndef RT_TILE_H
#define RT_TILE_H

#include "runtime/cache.h"
#include "runtime/handles.h"

typedef struct rt_tile rt_tile;

/* Scratch aimed at per chunk: a chunk's intermediates stay in the core's
 * cache (measured on the REML gradient: chunks of 20-50 items, 130-330 KB,
 * ran fastest; 100 items and up were memory-bound again). */
#define RT_TILE_TARGET_BYTES (256u * 1024u)

/* 0 when SJ_NO_TILE is set (non-empty and not "0").  The compile cache
 * reads it once, when the context is created. */
int rt_tiling_enabled(void);

/* The tiled form of fn for input shapes `shapes`, whose whole graph is spec
 * (materialised, not compiled): when fn can be tiled at this batch size,
 * *out is a new sj_compiled that owns spec, and its chunk kernel comes from
 * cache (compiled there under the chunk's shapes); otherwise *out is NULL
 * and spec is still the caller's. */
sj_status rt_tile_compile(rt_cache *cache, sj_fn *fn, const ir_shape *shapes, ir_graph *spec,
                          sj_compiled **out, ir_err *err);

/* Runs tiled c (buffers already checked).  On failure the outputs are left
 * unchanged and err names the item of the whole batch. */
sj_status rt_tile_call(sj_compiled *c, const double *const *inputs, double *const *outputs,
                       ir_err *err);

/* The chunk's compiled function (its kernel and graph). */
const sj_compiled *rt_tile_chunk(const rt_tile *t);

/* The chunk size of c, or 0 when c is not tiled.  For tests. */
int64_t rt_compiled_tile_size(const sj_compiled *c);

void rt_tile_free(rt_tile *t);

#endif
