/* The batched fused function of a batched fit node, for the lock-step
 * solver (ir/newton_lockstep.c, docs/fit.md "Lock-step batches").
 *
 * The fused graph (objective, gradient and curvature of one item in one
 * graph, lower_fit.c) is vmapped over a chunk of the node's batch
 * (CG_FIT_LOCKSTEP_CHUNK items at most; the chunks run on the pool): theta and the
 * batched data inputs carry the batch axis, shared data do not, so the
 * batching rules turn the per-item products with the shared X into single
 * GEMMs (η = X β_b for all b is [B, p] @ Xᵀ).  The structure rewrites then
 * run on it: the row-scaled Gram rewrite (passes/structure_rowgram.c) turns
 * the per-item curvatures Xᵀ diag(s_b²) X into one GEMM with the row-wise
 * Kronecker product of X. */
#include "codegen/cg.h"
#include "ir/alloc.h"
#include "ir/problem.h"
#include "passes/passes.h"

int cg_fit_lockstep_applies(const ir_graph *g, ir_val v)
{
    const ir_node *n = ir_node_at(g, v);
    const ir_problem *p = ir_graph_problem(g, n->attr[IR_FIT_PROBLEM]);
    return p && p->rule == SJ_FIT_REL_OBJECTIVE && n->attr[IR_FIT_BATCHED] &&
           n->shape.dim[0] >= CG_FIT_LOCKSTEP_MIN;
}

int64_t cg_fit_lockstep_chunk(int64_t nb)
{
    int64_t nchunk = (nb + CG_FIT_LOCKSTEP_CHUNK - 1) / CG_FIT_LOCKSTEP_CHUNK;
    return (nb + nchunk - 1) / nchunk;
}

sj_status cg_fit_lockstep_graph(const ir_graph *g, ir_val v, const ir_graph *fused,
                                ir_graph **out, ir_err *err)
{
    *out = NULL;
    const ir_node *n = ir_node_at(g, v);
    int np = n->ninput;
    int *in_axes = ir_malloc((size_t)np * sizeof *in_axes);
    ir_shape *outer = ir_malloc((size_t)np * sizeof *outer);
    if (!in_axes || !outer) {
        ir_free(in_axes);
        ir_free(outer);
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "codegen: fit: out of memory");
    }
    int64_t chunk = cg_fit_lockstep_chunk(n->shape.dim[0]);
    for (int i = 0; i < np; i++) {
        in_axes[i] = i == 0 || ir_fit_data_batched(n, i - 1) ? 0 : -1;
        outer[i] = *ir_shape_of(g, n->input[i]);
        if (in_axes[i] == 0)
            outer[i].dim[0] = chunk;
    }
    static const int out_axes[3] = {0, 0, 0};
    ir_graph *b = NULL;
    sj_status st = pass_vmap(fused, in_axes, out_axes, outer, chunk, &b, err);
    ir_free(in_axes);
    ir_free(outer);
    int changed = 0;
    if (st == SJ_OK)
        st = pass_cleanup(&b, err);
    if (st == SJ_OK)
        st = pass_structure(&b, &changed, err);
    if (st != SJ_OK) {
        ir_graph_free(b);
        return st;
    }
    *out = b;
    return SJ_OK;
}
