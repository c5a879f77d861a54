/* Compiling through the cache and calling native code: sj_fn_compile,
 * sj_fn_call, sj_compiled_call, and the introspection calls. */
#include <stdint.h>
#include <string.h>

#include "codegen/codegen.h"
#include "ir/alloc.h"
#include "runtime/cache.h"
#include "runtime/handles.h"

/* ---- scratch buffers ------------------------------------------------------ */

/* The header sits just before the 64-byte aligned buffer it describes. */
typedef struct rt_scratch {
    struct rt_scratch *next;
    void *raw; /* what ir_malloc returned */
} rt_scratch;

#define SCRATCH_ALIGN 64

static void *scratch_data(rt_scratch *s) { return (char *)s + sizeof *s; }

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

/* A scratch buffer for one call: the hot one, an idle one, or a new one. */
static rt_scratch *scratch_take(sj_compiled *c)
{
    rt_scratch *s = atomic_exchange_explicit(&c->hot, NULL, memory_order_acquire);
    if (s)
        return s;
    pthread_mutex_lock(&c->pool_lock);
    s = c->pool;
    if (s)
        c->pool = s->next;
    pthread_mutex_unlock(&c->pool_lock);
    return s ? s : scratch_new(c->scratch_bytes);
}

static void scratch_give(sj_compiled *c, rt_scratch *s)
{
    rt_scratch *none = NULL;
    if (atomic_compare_exchange_strong_explicit(&c->hot, &none, s, memory_order_release,
                                                memory_order_relaxed))
        return;
    pthread_mutex_lock(&c->pool_lock);
    s->next = c->pool;
    c->pool = s;
    pthread_mutex_unlock(&c->pool_lock);
}

void rt_scratch_release_all(sj_compiled *c)
{
    rt_scratch *s = atomic_exchange(&c->hot, NULL);
    if (s)
        ir_free(s->raw);
    for (rt_scratch *p = c->pool, *next; p; p = next) {
        next = p->next;
        ir_free(p->raw);
    }
    c->pool = NULL;
}

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

static sj_status run(sj_compiled *c, const double *const *inputs, double *const *outputs,
                     const char *who)
{
    sj_status st = check_buffers(c, inputs, outputs, who);
    if (st != SJ_OK)
        return st;
    rt_scratch *s = NULL;
    if (c->scratch_bytes) {
        s = scratch_take(c);
        if (!s)
            return fe_ctx_failf(c->ctx, SJ_ERR_OUT_OF_MEMORY,
                                "%s: out of memory for %zu bytes of scratch", who, c->scratch_bytes);
    }
    ir_err err;
    err.status = SJ_OK;
    err.msg[0] = '\0';
    st = cg_kernel_run(c->kernel, inputs, outputs, s ? scratch_data(s) : NULL, &err);
    if (s)
        scratch_give(c, s);
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
    if (!c->kernel)
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
                            "cache_hits, compile_seconds, cache_entries)",
                            name);
    return st;
}
