/* sj_fn (a graph snapshot with chosen outputs) and sj_compiled (the same,
 * specialised to concrete input shapes). */
#include <inttypes.h>
#include <string.h>

#include "ir/alloc.h"
#include "ir/eval.h"
#include "ir/print.h"
#include "codegen/codegen.h"
#include "runtime/fingerprint.h"
#include "runtime/handles.h"
#include "runtime/materialize.h"
#include "runtime/tile.h"

int rt_fn_valid(const sj_fn *fn)
{
    return fn && fn->magic == FE_MAGIC_FN && fe_ctx_valid(fn->ctx);
}

int rt_compiled_valid(const sj_compiled *c)
{
    return c && c->magic == FE_MAGIC_COMPILED && fe_ctx_valid(c->ctx);
}

sj_status sj_fn_create(sj_graph *g, int noutput, const sj_value *outputs, sj_fn **out)
{
    if (!fe_graph_valid(g))
        return SJ_ERR_INVALID_ARGUMENT;
    sj_ctx *ctx = g->ctx;
    if (!out)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "sj_fn_create: out is NULL");
    *out = NULL;
    if (!ir_graph_ok(g->ir))
        return fe_ctx_failf(ctx, g->ir->err.status,
                            "sj_fn_create: the graph has an error: %s", g->ir->err.msg);
    if (noutput < 1 || !outputs)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_fn_create: needs at least one output (noutput = %d%s)", noutput,
                            outputs ? "" : ", outputs is NULL");
    ir_val *outs = ir_malloc((size_t)noutput * sizeof *outs);
    if (!outs)
        return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "sj_fn_create: out of memory");
    for (int i = 0; i < noutput; i++) {
        uint64_t u = (uint64_t)outputs[i];
        if (outputs[i] < 0 || (uint32_t)(u >> 32) != g->serial || (uint32_t)u >= g->ir->nnode) {
            ir_free(outs);
            return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT,
                                "sj_fn_create: output %d (id %" PRId64 ") is not a value of this graph",
                                i, outputs[i]);
        }
        outs[i] = (ir_val)(uint32_t)u;
    }
    sj_fn *fn = ir_calloc(1, sizeof *fn);
    ir_graph *copy = fn ? ir_graph_copy(g->ir) : NULL;
    if (!copy || ir_graph_set_outputs(copy, (uint32_t)noutput, outs) != SJ_OK) {
        ir_free(outs);
        ir_graph_free(copy);
        ir_free(fn);
        return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "sj_fn_create: out of memory");
    }
    ir_free(outs);
    fn->magic = FE_MAGIC_FN;
    fn->ctx = ctx;
    fn->ir = copy;
    fn->fingerprint = rt_fn_fingerprint(fn);
    atomic_init(&fn->rec, NULL);
    *out = fn;
    return SJ_OK;
}

void sj_fn_free(sj_fn *fn)
{
    if (!rt_fn_valid(fn))
        return;
    fn->magic = FE_MAGIC_DEAD;
    rt_fn_free_xforms(fn);
    ir_graph_free(fn->ir);
    ir_free(fn);
}

int sj_fn_ninput(const sj_fn *fn) { return rt_fn_valid(fn) ? (int)rt_fn_sig(fn)->ninput : -1; }
int sj_fn_noutput(const sj_fn *fn) { return rt_fn_valid(fn) ? (int)rt_fn_sig(fn)->noutput : -1; }

sj_status sj_fn_input_index(const sj_fn *fn, const char *name, int *index)
{
    if (!rt_fn_valid(fn))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!name || !index)
        return fe_ctx_failf(fn->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_fn_input_index: %s is NULL", name ? "index" : "name");
    int i = ir_graph_find_input(rt_fn_sig(fn), name);
    if (i < 0)
        return fe_ctx_failf(fn->ctx, SJ_ERR_UNKNOWN_NAME,
                            "sj_fn_input_index: no input is called \"%s\"", name);
    *index = i;
    return SJ_OK;
}

sj_status sj_fn_input_rank(const sj_fn *fn, int i, int *rank)
{
    if (!rt_fn_valid(fn))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!rank || i < 0 || (uint32_t)i >= rt_fn_sig(fn)->ninput)
        return fe_ctx_failf(fn->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_fn_input_rank: %s", rank ? "input index out of range" : "rank is NULL");
    *rank = ir_shape_of(rt_fn_sig(fn), rt_fn_sig(fn)->input[i])->rank;
    return SJ_OK;
}

sj_status sj_fn_specialize(sj_fn *fn, int ninput, const int *ranks, const int64_t *const *dims,
                           sj_compiled **out)
{
    if (!rt_fn_valid(fn))
        return SJ_ERR_INVALID_ARGUMENT;
    sj_ctx *ctx = fn->ctx;
    if (!out)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "sj_fn_specialize: out is NULL");
    *out = NULL;
    ir_shape small[RT_SMALL_NINPUT];
    ir_shape *shapes = NULL;
    sj_status st = rt_shapes_from(fn, ninput, ranks, dims, small, &shapes, "sj_fn_specialize");
    if (st != SJ_OK)
        return st;
    ir_err err = {0};
    ir_graph *spec = NULL;
    st = rt_fn_materialize(fn, shapes, &spec, &err);
    if (shapes != small)
        ir_free(shapes);
    if (st != SJ_OK)
        return fe_ctx_failf(ctx, st, "sj_fn_specialize: %s", err.msg);
    sj_compiled *c = rt_compiled_new(ctx, spec, NULL);
    if (!c) {
        ir_graph_free(spec);
        return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "sj_fn_specialize: out of memory");
    }
    *out = c;
    return SJ_OK;
}

sj_status rt_shapes_from(const sj_fn *fn, int ninput, const int *ranks,
                         const int64_t *const *dims, ir_shape *small, ir_shape **out,
                         const char *who)
{
    sj_ctx *ctx = fn->ctx;
    *out = NULL;
    if (ninput != (int)rt_fn_sig(fn)->ninput)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "%s: the function has %u inputs, given %d",
                            who, rt_fn_sig(fn)->ninput, ninput);
    if (ninput && (!ranks || !dims))
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "%s: %s is NULL", who,
                            ranks ? "dims" : "ranks");
    ir_shape *shapes = small;
    if (ninput > RT_SMALL_NINPUT) {
        shapes = ir_calloc((size_t)ninput, sizeof *shapes);
        if (!shapes)
            return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", who);
    }
    for (int i = 0; i < ninput; i++) {
        const char *name = rt_fn_sig(fn)->input_name[i];
        if (ranks[i] < 0 || ranks[i] > IR_MAX_RANK || (ranks[i] && !dims[i])) {
            if (shapes != small)
                ir_free(shapes);
            return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "%s: input \"%s\": rank %d %s", who,
                                name, ranks[i],
                                ranks[i] < 0 || ranks[i] > IR_MAX_RANK ? "is out of range"
                                                                       : "with NULL dims");
        }
        shapes[i].rank = ranks[i];
        for (int k = 0; k < ranks[i]; k++)
            shapes[i].dim[k] = dims[i][k];
    }
    *out = shapes;
    return SJ_OK;
}

sj_compiled *rt_compiled_new(sj_ctx *ctx, ir_graph *spec, struct cg_kernel *kernel)
{
    sj_compiled *c = ir_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (rt_pool_init(&c->scratch, kernel ? cg_kernel_scratch_bytes(kernel) : 0) != 0) {
        ir_free(c);
        return NULL;
    }
    c->magic = FE_MAGIC_COMPILED;
    c->ctx = ctx;
    c->ir = spec;
    atomic_init(&c->refs, 1);
    c->kernel = kernel;
    return c;
}

void rt_compiled_retain(sj_compiled *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void sj_compiled_free(sj_compiled *c)
{
    if (!rt_compiled_valid(c))
        return;
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    c->magic = FE_MAGIC_DEAD;
    rt_pool_destroy(&c->scratch);
    rt_tile_free(c->tile);
    cg_kernel_free(c->kernel);
    ir_graph_free(c->ir);
    ir_free(c);
}

int sj_compiled_noutput(const sj_compiled *c)
{
    return rt_compiled_valid(c) ? (int)c->ir->noutput : -1;
}

static const ir_shape *output_shape(const sj_compiled *c, int k, const char *fn)
{
    if (k < 0 || (uint32_t)k >= c->ir->noutput) {
        fe_ctx_failf(c->ctx, SJ_ERR_INVALID_ARGUMENT, "%s: output %d is out of range (%u outputs)",
                     fn, k, c->ir->noutput);
        return NULL;
    }
    return ir_shape_of(c->ir, c->ir->output[k]);
}

sj_status sj_compiled_output_shape(const sj_compiled *c, int k, int *rank, int64_t *dims)
{
    if (!rt_compiled_valid(c))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!rank)
        return fe_ctx_failf(c->ctx, SJ_ERR_INVALID_ARGUMENT, "sj_compiled_output_shape: rank is NULL");
    const ir_shape *s = output_shape(c, k, "sj_compiled_output_shape");
    if (!s)
        return SJ_ERR_INVALID_ARGUMENT;
    *rank = s->rank;
    if (dims)
        memcpy(dims, s->dim, (size_t)s->rank * sizeof *dims);
    return SJ_OK;
}

sj_status sj_compiled_output_size(const sj_compiled *c, int k, size_t *size)
{
    if (!rt_compiled_valid(c))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!size)
        return fe_ctx_failf(c->ctx, SJ_ERR_INVALID_ARGUMENT, "sj_compiled_output_size: size is NULL");
    const ir_shape *s = output_shape(c, k, "sj_compiled_output_size");
    if (!s)
        return SJ_ERR_INVALID_ARGUMENT;
    *size = ir_shape_numel(s);
    return SJ_OK;
}

char *sj_compiled_print(const sj_compiled *c)
{
    if (!rt_compiled_valid(c))
        return NULL;
    char *s = ir_graph_print(c->ir);
    if (!s)
        fe_ctx_failf(c->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_compiled_print: out of memory");
    return s;
}

sj_status sj_compiled_eval(sj_compiled *c, const double *const *inputs, double *const *outputs)
{
    if (!rt_compiled_valid(c))
        return SJ_ERR_INVALID_ARGUMENT;
    const ir_graph *g = c->ir;
    if ((g->ninput && !inputs) || !outputs)
        return fe_ctx_failf(c->ctx, SJ_ERR_INVALID_ARGUMENT, "sj_compiled_eval: %s is NULL",
                            outputs ? "inputs" : "outputs");
    for (uint32_t i = 0; i < g->ninput; i++)
        if (!inputs[i] && ir_shape_numel(ir_shape_of(g, g->input[i])) > 0)
            return fe_ctx_failf(c->ctx, SJ_ERR_INVALID_ARGUMENT,
                                "sj_compiled_eval: input \"%s\" is NULL", g->input_name[i]);
    for (uint32_t k = 0; k < g->noutput; k++)
        if (!outputs[k] && ir_shape_numel(ir_shape_of(g, g->output[k])) > 0)
            return fe_ctx_failf(c->ctx, SJ_ERR_INVALID_ARGUMENT,
                                "sj_compiled_eval: output %u is NULL", k);
    ir_err err = {0};
    if (ir_eval(g, inputs, outputs, &err) != SJ_OK)
        return fe_ctx_fail(c->ctx, &err);
    return SJ_OK;
}
