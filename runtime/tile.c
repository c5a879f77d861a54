/* Batch tiling of vmapped functions (tile.h, docs/vmap.md "Batch tiling").
 *
 * A vmapped graph runs each op as a loop over the whole batch, so with a
 * large batch every intermediate is a large array and the function is
 * memory-bound.  The same function compiled for C items keeps a chunk's
 * intermediates in cache; its items are independent, so chunks of
 * consecutive items are also independent and run on the batch pool.
 *
 * Only layouts where a chunk is a contiguous slice are tiled: every batched
 * input has its batch axis at 0 and every output out axis 0 or -1.  A chunk
 * is then a pointer offset into the caller's inputs; the last chunk, when C
 * does not divide B, runs on a padded copy (its real items, then the last one
 * repeated) so that one kernel serves every chunk.  Chunks write into a
 * per-call area copied to the caller's outputs only when every chunk
 * succeeded, so the outputs are unchanged on failure, as untiled. */
#include "runtime/tile.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/pool.h"
#include "ir/alloc.h"
#include "runtime/transform.h"

/* One input or output of the tiled function.  Offsets are in bytes. */
typedef struct tile_io {
    int64_t item;  /* doubles per item; 0: not batched */
    int64_t numel; /* doubles of the whole value */
    size_t whole;  /* outputs: the whole result in the call area */
    size_t pad;    /* batched, with a remainder: the padded chunk's copy in the call area */
    size_t sink;   /* unbatched outputs: where chunks after the first write it (chunk area) */
} tile_io;

struct rt_tile {
    sj_compiled *chunk; /* a reference: the kernel for C items */
    int64_t B, C, nchunk;
    uint32_t ninput, noutput;
    tile_io *in, *out;
    /* The chunk area (one per running chunk): the kernel's scratch, the
     * pointer arrays, the unbatched outputs' sinks.  The call area (one per
     * call): every output whole, the padded chunk's inputs and outputs. */
    size_t ptrs;
    rt_pool chunks, calls;
    /* Per node of the chunk graph, for messages (cg_batch_pos). */
    int64_t (*lead)[3];
    ir_shape *shape;
};

int rt_tiling_enabled(void)
{
    const char *e = getenv("SJ_NO_TILE");
    return !e || !*e || strcmp(e, "0") == 0;
}

/* ---- when to tile ------------------------------------------------------------ */

/* The batch size when fn's last step is a vmap whose chunks are contiguous
 * slices (batched inputs at axis 0, outputs at 0 or -1) and whose batch size
 * is not fixed by a numeric batch dimension; 0 otherwise. */
static int64_t tileable_batch(const sj_fn *fn, const ir_shape *shapes)
{
    if (fn->nxform == 0 || fn->xform[fn->nxform - 1].kind != RT_XF_VMAP)
        return 0;
    const rt_xform *x = &fn->xform[fn->nxform - 1];
    if (x->batch_dim && x->batch_dim[0] >= '0' && x->batch_dim[0] <= '9')
        return 0;
    int64_t b = 0;
    for (uint32_t i = 0; i < x->ninner; i++) {
        if (x->in_axes[i] > 0)
            return 0;
        if (x->in_axes[i] == 0)
            b = shapes[i].dim[0];
    }
    for (int k = 0; k < x->nout_axes; k++)
        if (x->out_axes[k] > 0)
            return 0;
    return b;
}

/* Whether spec has a fit node: its items already run on the batch pool (or
 * in lock step), iterating on per-item data, so chunking would only cut the
 * batch that makes them efficient. */
static int has_fit(const ir_graph *spec)
{
    for (uint32_t v = 0; v < spec->nnode; v++)
        if (spec->node[v].op == IR_OP_FIT)
            return 1;
    return 0;
}

/* The chunk size for a batch of b whose whole graph is spec: what keeps a
 * chunk's scratch near RT_TILE_TARGET_BYTES, estimated from the plan of spec
 * (the shared values' scratch spread over the items: an overestimate per
 * item, so chunks err small).  0: do not tile. */
static int64_t chunk_size(const ir_graph *spec, int64_t b)
{
    size_t bytes = 0;
    ir_err err = {0};
    if (cg_plan_scratch_bytes(spec, &bytes, &err) != SJ_OK)
        return 0; /* cg_compile reports it */
    double per_item = (double)bytes / (double)b;
    int64_t c = per_item < 1 ? b : (int64_t)(RT_TILE_TARGET_BYTES / per_item);
    /* A multiple of 8 items: vectorised loops (up to 8 lanes) then split a
     * chunk as they split the whole batch, so tiling does not move an item
     * into a loop's remainder, where its rounding could differ. */
    c = c >= 16 ? c & ~(int64_t)7 : c < 1 ? 1 : c;
    /* Fewer than two chunks is the untiled function at best. */
    return b >= 2 * c ? c : 0;
}

/* ---- matching the chunk graph to the whole graph -------------------------------- */

/* Items of axis 0 that one batch item spans in a value of shape a (chunk)
 * that is f in the whole graph: a and f agree but for axis 0, which is
 * m·C and m·B.  0 when a is not batched that way (then messages about it
 * name the chunk's item; a value laid out otherwise never fails per item). */
static int64_t lead_of(const ir_shape *a, const ir_shape *f, int64_t c, int64_t b)
{
    if (a->rank != f->rank || a->rank == 0 || ir_shape_equal(a, f))
        return 0;
    for (int i = 1; i < a->rank; i++)
        if (a->dim[i] != f->dim[i])
            return 0;
    int64_t m = a->dim[0] / c;
    return a->dim[0] == m * c && f->dim[0] == m * b ? m : 0;
}

/* Whether shape a (chunk) is f (whole) with `batched` items at axis 0. */
static int io_matches(const ir_shape *a, const ir_shape *f, int batched, int64_t c, int64_t b)
{
    return batched ? lead_of(a, f, c, b) == 1 : ir_shape_equal(a, f);
}

/* Checks that the chunk graph is the whole graph at C items (the same ops,
 * inputs and outputs batched as the vmap says) and fills lead/shape. */
static int match_graphs(rt_tile *t, const rt_xform *x, const ir_graph *cg, const ir_graph *fg)
{
    if (cg->nnode != fg->nnode || cg->ninput != fg->ninput || cg->noutput != fg->noutput ||
        fg->ninput != x->ninner || (int)fg->noutput != x->nout_axes)
        return 0;
    for (uint32_t i = 0; i < fg->ninput; i++)
        if (!io_matches(ir_shape_of(cg, cg->input[i]), ir_shape_of(fg, fg->input[i]),
                        x->in_axes[i] == 0, t->C, t->B))
            return 0;
    for (uint32_t k = 0; k < fg->noutput; k++)
        if (!io_matches(ir_shape_of(cg, cg->output[k]), ir_shape_of(fg, fg->output[k]),
                        x->out_axes[k] == 0, t->C, t->B))
            return 0;
    for (uint32_t v = 0; v < fg->nnode; v++) {
        const ir_node *a = &cg->node[v], *f = &fg->node[v];
        if (a->op != f->op || a->ninput != f->ninput)
            return 0;
        t->shape[v] = f->ninput ? *ir_shape_of(fg, f->input[0]) : f->shape;
        for (int i = 0; i < 2 && i < (int)f->ninput; i++)
            t->lead[v][i] = lead_of(ir_shape_of(cg, a->input[i]), ir_shape_of(fg, f->input[i]),
                                    t->C, t->B);
        t->lead[v][2] = lead_of(&a->shape, &f->shape, t->C, t->B);
    }
    return 1;
}

/* ---- the layout of the work areas ----------------------------------------------- */

static void lay_out(rt_tile *t, const rt_xform *x, const ir_graph *fg, size_t kernel_scratch)
{
    int pad = t->B % t->C != 0;
    size_t call = 0;
    for (uint32_t i = 0; i < t->ninput; i++) {
        tile_io *io = &t->in[i];
        io->numel = (int64_t)ir_shape_numel(ir_shape_of(fg, fg->input[i]));
        io->item = x->in_axes[i] == 0 ? io->numel / t->B : 0;
    }
    for (uint32_t k = 0; k < t->noutput; k++) {
        tile_io *io = &t->out[k];
        io->numel = (int64_t)ir_shape_numel(ir_shape_of(fg, fg->output[k]));
        io->item = x->out_axes[k] == 0 ? io->numel / t->B : 0;
        io->whole = call;
        call += ir_align64((size_t)io->numel * sizeof(double));
    }
    for (uint32_t i = 0; i < t->ninput + t->noutput; i++) {
        tile_io *io = i < t->ninput ? &t->in[i] : &t->out[i - t->ninput];
        if (pad && io->item) {
            io->pad = call;
            call += ir_align64((size_t)(t->C * io->item) * sizeof(double));
        }
    }
    t->ptrs = ir_align64(kernel_scratch);
    size_t chunk = t->ptrs + ir_align64((t->ninput + t->noutput) * sizeof(void *));
    for (uint32_t k = 0; k < t->noutput; k++)
        if (!t->out[k].item) {
            t->out[k].sink = chunk;
            chunk += ir_align64((size_t)t->out[k].numel * sizeof(double));
        }
    t->chunks.bytes = chunk;
    t->calls.bytes = call ? call : 64;
}

/* ---- making one ------------------------------------------------------------------- */

void rt_tile_free(rt_tile *t)
{
    if (!t)
        return;
    sj_compiled_free(t->chunk);
    rt_pool_destroy(&t->chunks);
    rt_pool_destroy(&t->calls);
    ir_free(t->in);
    ir_free(t->out);
    ir_free(t->lead);
    ir_free(t->shape);
    ir_free(t);
}

static rt_tile *tile_new(uint32_t ninput, uint32_t noutput, uint32_t nnode)
{
    rt_tile *t = ir_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (rt_pool_init(&t->chunks, 0) != 0) {
        ir_free(t);
        return NULL;
    }
    if (rt_pool_init(&t->calls, 0) != 0) {
        rt_pool_destroy(&t->chunks);
        ir_free(t);
        return NULL;
    }
    t->ninput = ninput;
    t->noutput = noutput;
    t->in = ir_calloc(ninput ? ninput : 1, sizeof *t->in);
    t->out = ir_calloc(noutput ? noutput : 1, sizeof *t->out);
    t->lead = ir_calloc(nnode ? nnode : 1, sizeof *t->lead);
    t->shape = ir_calloc(nnode ? nnode : 1, sizeof *t->shape);
    if (!t->in || !t->out || !t->lead || !t->shape) {
        rt_tile_free(t);
        return NULL;
    }
    return t;
}

/* The chunk of t through the cache: fn at the chunk's shapes. */
static sj_status get_chunk(rt_cache *cache, sj_fn *fn, const ir_shape *shapes, rt_tile *t,
                           ir_err *err)
{
    const rt_xform *x = &fn->xform[fn->nxform - 1];
    ir_shape *cs = ir_malloc((x->ninner ? x->ninner : 1) * sizeof *cs);
    if (!cs)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while tiling");
    for (uint32_t i = 0; i < x->ninner; i++) {
        cs[i] = shapes[i];
        if (x->in_axes[i] == 0)
            cs[i].dim[0] = t->C;
    }
    sj_status st = rt_cache_get(cache, fn, cs, &t->chunk, err);
    ir_free(cs);
    return st;
}

sj_status rt_tile_compile(rt_cache *cache, sj_fn *fn, const ir_shape *shapes, ir_graph *spec,
                          sj_compiled **out, ir_err *err)
{
    *out = NULL;
    int64_t b = rt_cache_tiling(cache) ? tileable_batch(fn, shapes) : 0;
    int64_t c = b > 1 && !has_fit(spec) ? chunk_size(spec, b) : 0;
    if (c == 0)
        return SJ_OK;
    const rt_xform *x = &fn->xform[fn->nxform - 1];
    rt_tile *t = tile_new(spec->ninput, spec->noutput, spec->nnode);
    if (!t)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while tiling");
    t->B = b;
    t->C = c;
    t->nchunk = (b + c - 1) / c;
    sj_status st = get_chunk(cache, fn, shapes, t, err);
    /* A chunk that is not the whole graph at C items (a rewrite that depends
     * on the batch size), or is tiled itself: compile untiled instead. */
    if (st != SJ_OK || !t->chunk->kernel || !match_graphs(t, x, t->chunk->ir, spec)) {
        rt_tile_free(t);
        return st;
    }
    lay_out(t, x, spec, t->chunk->scratch.bytes);
    sj_compiled *r = rt_compiled_new(fn->ctx, spec, NULL);
    if (!r) {
        rt_tile_free(t);
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while tiling");
    }
    r->tile = t;
    *out = r;
    return SJ_OK;
}

/* ---- calling ------------------------------------------------------------------- */

typedef struct tile_call {
    rt_tile *t;
    const double *const *inputs;
    char *area; /* the call area */
    atomic_llong fail; /* the first failing chunk, or INT64_MAX */
} tile_call;

/* Points the chunk's inputs at item `first` of the caller's, or at the
 * padded copy (n real items, then the last one repeated). */
static void chunk_inputs(const tile_call *e, int64_t first, int64_t n, const double **in)
{
    const rt_tile *t = e->t;
    for (uint32_t i = 0; i < t->ninput; i++) {
        const tile_io *io = &t->in[i];
        const double *src = e->inputs[i];
        if (!io->item) {
            in[i] = src;
            continue;
        }
        src += first * io->item;
        if (n == t->C) {
            in[i] = src;
            continue;
        }
        double *pad = (double *)(e->area + io->pad);
        size_t item = (size_t)io->item * sizeof(double);
        memcpy(pad, src, (size_t)n * item);
        for (int64_t j = n; j < t->C; j++)
            memcpy(pad + j * io->item, src + (n - 1) * io->item, item);
        in[i] = pad;
    }
}

/* Points the chunk's outputs into the call area (the padded chunk's batched
 * ones at its own copy); an unbatched output is kept from chunk 0 only. */
static void chunk_outputs(const tile_call *e, char *chunk, int64_t j, int64_t n, double **out)
{
    const rt_tile *t = e->t;
    for (uint32_t k = 0; k < t->noutput; k++) {
        const tile_io *io = &t->out[k];
        if (!io->item)
            out[k] = (double *)(j == 0 ? e->area + io->whole : chunk + io->sink);
        else if (n < t->C)
            out[k] = (double *)(e->area + io->pad);
        else
            out[k] = (double *)(e->area + io->whole) + j * t->C * io->item;
    }
}

/* The padded chunk's real items into the whole outputs. */
static void unpad_outputs(const tile_call *e, int64_t first, int64_t n)
{
    const rt_tile *t = e->t;
    for (uint32_t k = 0; k < t->noutput; k++) {
        const tile_io *io = &t->out[k];
        if (io->item)
            memcpy((double *)(e->area + io->whole) + first * io->item, e->area + io->pad,
                   (size_t)(n * io->item) * sizeof(double));
    }
}

/* Lowers e->fail to j.  sj_batch_run reports the record of the first
 * failing chunk in order; this is that chunk's index. */
static void note_failure(tile_call *e, int64_t j)
{
    long long cur = atomic_load(&e->fail);
    while (j < cur && !atomic_compare_exchange_weak(&e->fail, &cur, j))
        ;
}

/* The batch-pool body: chunk j.  A failure leaves the kernel's record in rec
 * (rec[0] = -1: no memory for the chunk area). */
static int32_t run_chunk(void *env, int64_t j, int64_t *rec)
{
    tile_call *e = env;
    rt_tile *t = e->t;
    char *chunk = rt_pool_take(&t->chunks);
    if (!chunk) {
        rec[0] = -1;
        note_failure(e, j);
        return SJ_ERR_OUT_OF_MEMORY;
    }
    int64_t first = j * t->C, n = t->B - first < t->C ? t->B - first : t->C;
    const double **in = (const double **)(void *)(chunk + t->ptrs);
    double **out = (double **)(void *)(chunk + t->ptrs + t->ninput * sizeof(void *));
    chunk_inputs(e, first, n, in);
    chunk_outputs(e, chunk, j, n, out);
    int32_t st = cg_kernel_exec(t->chunk->kernel, in, out, chunk);
    if (st != 0) {
        memcpy(rec, chunk, 4 * sizeof *rec);
        note_failure(e, j);
    } else if (n < t->C)
        unpad_outputs(e, first, n);
    rt_pool_give(&t->chunks, chunk);
    return st;
}

/* The first failing chunk: the one whose record sj_batch_run returned. */
static sj_status explain(const rt_tile *t, int32_t st, const int64_t *rec, int64_t j,
                         ir_err *err)
{
    if (rec[0] == -1)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory for %zu bytes of scratch",
                       t->chunks.bytes);
    cg_batch_pos pos = {.first = j * t->C, .chunk = t->C, .count = t->B, .lead = t->lead,
                        .shape = t->shape};
    return cg_kernel_explain(t->chunk->kernel, (sj_status)st, rec, &pos, err);
}

sj_status rt_tile_call(sj_compiled *c, const double *const *inputs, double *const *outputs,
                       ir_err *err)
{
    rt_tile *t = c->tile;
    tile_call e = {.t = t, .inputs = inputs, .area = rt_pool_take(&t->calls)};
    if (!e.area)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory for %zu bytes of scratch",
                       t->calls.bytes);
    atomic_init(&e.fail, INT64_MAX);
    int64_t rec[4] = {0};
    int32_t st = sj_batch_run(run_chunk, &e, t->nchunk, rec);
    if (st == 0) {
        for (uint32_t k = 0; k < t->noutput; k++)
            if (t->out[k].numel)
                memcpy(outputs[k], e.area + t->out[k].whole,
                       (size_t)t->out[k].numel * sizeof(double));
        rt_cache_note_tiled_call(c->ctx->cache);
    }
    rt_pool_give(&t->calls, e.area);
    return st == 0 ? SJ_OK : explain(t, st, rec, atomic_load(&e.fail), err);
}

const sj_compiled *rt_tile_chunk(const rt_tile *t) { return t->chunk; }

int64_t rt_compiled_tile_size(const sj_compiled *c)
{
    return rt_compiled_valid(c) && c->tile ? c->tile->C : 0;
}
