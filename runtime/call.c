/* Compiling through the cache and calling native code: sj_fn_compile,
 * sj_fn_call, sj_compiled_call, and the introspection calls. */
#include <stdint.h>

#include "codegen/codegen.h"
#include "ir/alloc.h"
#include "runtime/cache.h"
#include "runtime/handles.h"
#include "runtime/tile.h"

/* ---- compiling -------------------------------------------------------------- */

static sj_status compile_cached(sj_fn *fn, int ninput, const int *ranks,
                                const int64_t *const *dims, sj_compiled **out, const char *who)
{
    sj_ctx *ctx = fn->ctx;
    if (!ctx->cache)
        return fe_ctx_failf(ctx, SJ_ERR_INTERNAL, "%s: the context has no compile cache", who);
    ir_shape small[RT_SMALL_NINPUT];
    ir_shape *shapes = NULL;
    sj_status st = rt_shapes_from(fn, ninput, ranks, dims, small, &shapes, who);
    if (st != SJ_OK)
        return st;
    ir_err err;
    err.status = SJ_OK;
    err.msg[0] = '\0';
    st = rt_cache_get(ctx->cache, fn, shapes, out, &err);
    if (shapes != small)
        ir_free(shapes);
    if (st != SJ_OK)
        return fe_ctx_fail(ctx, &err);
    return SJ_OK;
}

sj_status sj_fn_compile(sj_fn *fn, int ninput, const int *ranks, const int64_t *const *dims,
                        sj_compiled **out)
{
    if (!rt_fn_valid(fn))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!out)
        return fe_ctx_failf(fn->ctx, SJ_ERR_INVALID_ARGUMENT, "sj_fn_compile: out is NULL");
    *out = NULL;
    return compile_cached(fn, ninput, ranks, dims, out, "sj_fn_compile");
}

/* ---- calling ---------------------------------------------------------------- */

static sj_status check_buffers(const sj_compiled *c, const double *const *inputs,
                               double *const *outputs, const char *who)
{
    const ir_graph *g = c->ir;
    if ((g->ninput && !inputs) || !outputs)
        return fe_ctx_failf(c->ctx, SJ_ERR_INVALID_ARGUMENT, "%s: %s is NULL", who,
                            outputs ? "inputs" : "outputs");
    for (uint32_t i = 0; i < g->ninput; i++)
        if (!inputs[i] && ir_shape_numel(ir_shape_of(g, g->input[i])) > 0)
            return fe_ctx_failf(c->ctx, SJ_ERR_INVALID_ARGUMENT, "%s: input \"%s\" is NULL", who,
                                g->input_name[i]);
    for (uint32_t k = 0; k < g->noutput; k++)
        if (!outputs[k] && ir_shape_numel(ir_shape_of(g, g->output[k])) > 0)
            return fe_ctx_failf(c->ctx, SJ_ERR_INVALID_ARGUMENT, "%s: output %u is NULL", who, k);
    return SJ_OK;
}

/* The kernel of c on its own scratch buffer. */
static sj_status run_kernel(sj_compiled *c, const double *const *inputs, double *const *outputs,
                            ir_err *err, const char *who)
{
    void *s = NULL;
    if (c->scratch.bytes && !(s = rt_pool_take(&c->scratch)))
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu bytes of scratch",
                       who, c->scratch.bytes);
    sj_status st = cg_kernel_run(c->kernel, inputs, outputs, s, err);
    if (s)
        rt_pool_give(&c->scratch, s);
    return st;
}

static sj_status run(sj_compiled *c, const double *const *inputs, double *const *outputs,
                     const char *who)
{
    sj_status st = check_buffers(c, inputs, outputs, who);
    if (st != SJ_OK)
        return st;
    ir_err err;
    err.status = SJ_OK;
    err.msg[0] = '\0';
    st = c->tile ? rt_tile_call(c, inputs, outputs, &err)
                 : run_kernel(c, inputs, outputs, &err, who);
    if (st != SJ_OK) {
        if (!err.msg[0])
            return fe_ctx_failf(c->ctx, st, "%s: the compiled code failed (%s)", who,
                                sj_status_name(st));
        return fe_ctx_fail(c->ctx, &err);
    }
    return SJ_OK;
}

sj_status sj_compiled_call(sj_compiled *c, const double *const *inputs, double *const *outputs)
{
    if (!rt_compiled_valid(c))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!c->kernel && !c->tile)
        return fe_ctx_failf(c->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_compiled_call: this function was made by sj_fn_specialize and has "
                            "no native code; use sj_fn_compile (or sj_compiled_eval)");
    return run(c, inputs, outputs, "sj_compiled_call");
}

sj_status sj_fn_call(sj_fn *fn, int ninput, const int *ranks, const int64_t *const *dims,
                     const double *const *inputs, double *const *outputs)
{
    if (!rt_fn_valid(fn))
        return SJ_ERR_INVALID_ARGUMENT;
    sj_compiled *c = NULL;
    sj_status st = compile_cached(fn, ninput, ranks, dims, &c, "sj_fn_call");
    if (st != SJ_OK)
        return st;
    st = run(c, inputs, outputs, "sj_fn_call");
    sj_compiled_free(c); /* the cache keeps its own reference */
    return st;
}

/* ---- introspection ------------------------------------------------------------ */

char *sj_compiled_llvm_ir(const sj_compiled *c)
{
    if (!rt_compiled_valid(c))
        return NULL;
    if (c->tile) /* the chunk's kernel is the code that runs */
        c = rt_tile_chunk(c->tile);
    if (!c->kernel) {
        fe_ctx_failf(c->ctx, SJ_ERR_INVALID_ARGUMENT,
                     "sj_compiled_llvm_ir: made by sj_fn_specialize, there is no native code");
        return NULL;
    }
    char *s = cg_kernel_llvm_ir(c->kernel);
    if (!s)
        fe_ctx_failf(c->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_compiled_llvm_ir: out of memory");
    return s;
}

sj_status sj_ctx_counter(const sj_ctx *cctx, const char *name, double *value)
{
    if (!fe_ctx_valid(cctx))
        return SJ_ERR_INVALID_ARGUMENT;
    sj_ctx *ctx = (sj_ctx *)cctx; /* the message buffer is mutable state */
    if (!name || !value)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "sj_ctx_counter: %s is NULL",
                            name ? "value" : "name");
    if (!ctx->cache)
        return fe_ctx_failf(ctx, SJ_ERR_INTERNAL, "sj_ctx_counter: the context has no cache");
    sj_status st = rt_cache_counter(ctx->cache, name, value);
    if (st == SJ_ERR_UNKNOWN_NAME)
        return fe_ctx_failf(ctx, st,
                            "sj_ctx_counter: no counter is called \"%s\" (known: compiles, "
                            "cache_hits, compile_seconds, cache_entries, tiled_calls)",
                            name);
    return st;
}
