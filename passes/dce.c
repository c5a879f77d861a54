/* Dead code elimination: keeps what the outputs depend on, plus every input
 * (inputs are the function's signature, used or not). */
#include "ir/alloc.h"
#include "passes/passes.h"
#include "passes/rebuild.h"

sj_status pass_dce(ir_graph **gp, int *changed, ir_err *err)
{
    ir_graph *g = *gp;
    *changed = 0;
    unsigned char *live = ir_calloc(g->nnode ? g->nnode : 1, 1);
    if (!live)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "dce: out of memory");
    for (uint32_t k = 0; k < g->noutput; k++)
        live[g->output[k]] = 1;
    for (uint32_t i = 0; i < g->ninput; i++)
        live[g->input[i]] = 1;
    uint32_t nlive = 0;
    for (uint32_t v = g->nnode; v-- > 0;) {
        if (!live[v])
            continue;
        nlive++;
        const ir_node *n = &g->node[v];
        for (int i = 0; i < n->ninput; i++)
            live[n->input[i]] = 1;
    }
    sj_status st = SJ_OK;
    if (nlive < g->nnode) {
        ir_graph *ng = NULL;
        st = pass_rebuild(g, live, NULL, &ng, err);
        if (st == SJ_OK) {
            ir_graph_free(g);
            *gp = ng;
            *changed = 1;
        }
    }
    ir_free(live);
    return st;
}
