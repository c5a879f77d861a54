/* Materialisation: the concrete graph of a function for given input shapes.
 * The base graph is specialised to the shapes of the inputs it has (a prefix
 * of the function's: every transform appends its inputs), then each pending
 * transform runs in order on the concrete graph, each result cleaned by DCE
 * and CSE (passes/pipeline.c) before the next step sees it (the base graph
 * too, when there are transforms). */
#include "runtime/materialize.h"

#include "ir/specialize.h"
#include "passes/passes.h"
#include "runtime/transform.h"

sj_status rt_fn_materialize(const sj_fn *fn, const ir_shape *shapes, ir_graph **out, ir_err *err)
{
    *out = NULL;
    ir_graph *g = NULL;
    sj_status st = ir_specialize(fn->ir, shapes, &g, err);
    if (st != SJ_OK || fn->nxform == 0)
        goto done;
    st = pass_cleanup(&g, err); /* no derivative of dead or repeated work */
    for (uint32_t i = 0; i < fn->nxform && st == SJ_OK; i++) {
        ir_graph *next = NULL;
        st = rt_xform_apply(&fn->xform[i], g, shapes, &next, err);
        ir_graph_free(g);
        g = next;
        if (st == SJ_OK)
            st = pass_cleanup(&g, err);
    }
done:
    if (st != SJ_OK) {
        ir_graph_free(g);
        return st;
    }
    *out = g;
    return SJ_OK;
}
