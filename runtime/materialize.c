/* Materialisation: the concrete graph of a function for given input shapes.
 * First the input shapes of every step of the chain are found, from the
 * last step back to the base graph: derivative steps append inputs, so the
 * function they apply to has a prefix of their inputs; vmap removes the batch
 * axes (and checks the batch sizes agree).  The base graph is specialised to
 * the shapes of its inputs, then each pending transform runs in order on the
 * concrete graph, each result cleaned by DCE and CSE (passes/pipeline.c)
 * before the next step sees it (the base graph too, when there are
 * transforms).
 *
 * Structure rewrites (passes/structure_*.c, docs/structure.md) run on the
 * specialised base graph before the transform chain, so derivatives and
 * batching are taken of the cheap graph, and again after each transform
 * (a derivative may expose a pattern anew).  SJ_NO_REWRITE=1 in the
 * environment turns them off (read at every materialisation; code already
 * in a context's compile cache is not recompiled, so set it before the
 * first compile of a context). */
#include "runtime/materialize.h"

#include <stdlib.h>
#include <string.h>

#include "ir/alloc.h"
#include "ir/specialize.h"
#include "passes/passes.h"
#include "runtime/transform.h"

int rt_structure_rewrites_enabled(void)
{
    const char *e = getenv("SJ_NO_REWRITE");
    return !e || !*e || strcmp(e, "0") == 0;
}

sj_status rt_fn_materialize(const sj_fn *fn, const ir_shape *shapes, ir_graph **out, ir_err *err)
{
    *out = NULL;
    ir_graph *g = NULL;
    const ir_graph *sig = rt_fn_sig(fn);
    const char *const *names = (const char *const *)sig->input_name;
    /* level[i]: the input shapes of the function step i applies to;
     * level[nxform] = shapes.  Only vmap changes shapes, so without one every
     * level is `shapes` itself. */
    const ir_shape **level = ir_malloc((fn->nxform + 1) * sizeof *level);
    ir_shape *store = NULL;
    sj_status st = SJ_OK;
    if (!level)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while materialising");
    level[fn->nxform] = shapes;
    int any_vmap = 0;
    for (uint32_t i = 0; i < fn->nxform; i++)
        any_vmap |= fn->xform[i].kind == RT_XF_VMAP;
    if (any_vmap) {
        /* Ranks first: a batched input given without its batch axis would
         * otherwise be reported against the unbatched declaration. */
        for (uint32_t p = 0; p < sig->ninput; p++) {
            const ir_shape *decl = ir_shape_of(sig, sig->input[p]);
            if (shapes[p].rank != decl->rank) {
                char a[128];
                st = ir_fail(err, SJ_ERR_SHAPE,
                             "input \"%s\" is declared %s (rank %d) but given rank %d", names[p],
                             ir_shape_str(sig, decl, a, sizeof a), decl->rank, shapes[p].rank);
                goto done;
            }
        }
        size_t total = 0;
        for (uint32_t i = 0; i < fn->nxform; i++)
            total += fn->xform[i].ninner;
        store = ir_malloc((total ? total : 1) * sizeof *store);
        if (!store) {
            st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while materialising");
            goto done;
        }
        size_t at = 0;
        for (uint32_t i = 0; i < fn->nxform; i++) {
            level[i] = store + at;
            at += fn->xform[i].ninner;
        }
        for (uint32_t i = fn->nxform; i-- > 0;) {
            st = rt_xform_inner_shapes(&fn->xform[i], level[i + 1], names, (ir_shape *)level[i],
                                       err);
            if (st != SJ_OK)
                goto done;
        }
    } else {
        for (uint32_t i = 0; i < fn->nxform; i++)
            level[i] = shapes;
    }
    st = ir_specialize(fn->ir, level[0], &g, err);
    int rewrite = rt_structure_rewrites_enabled(), changed = 0;
    if (st == SJ_OK) /* the fit problems' gradient and Hessian graphs */
        st = pass_fill_problems(g, rewrite, err);
    if (st == SJ_OK && rewrite)
        st = pass_structure(&g, &changed, err);
    if (st != SJ_OK || fn->nxform == 0)
        goto done;
    st = pass_cleanup(&g, err); /* no derivative of dead or repeated work */
    for (uint32_t i = 0; i < fn->nxform && st == SJ_OK; i++) {
        ir_graph *next = NULL;
        st = rt_xform_apply(&fn->xform[i], g, level[i + 1], &next, err);
        /* The derivative walkers start from a copy of g (log included);
         * other transforms start afresh. */
        if (st == SJ_OK && next->nrewrite == 0 && ir_graph_merge_rewrites(next, g) != 0)
            st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while materialising");
        ir_graph_free(g);
        g = next;
        if (st == SJ_OK)
            st = pass_cleanup(&g, err);
        if (st == SJ_OK && rewrite)
            st = pass_structure(&g, &changed, err);
    }
done:
    ir_free(level);
    ir_free(store);
    if (st != SJ_OK) {
        ir_graph_free(g);
        return st;
    }
    *out = g;
    return SJ_OK;
}
