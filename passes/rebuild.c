#include "passes/rebuild.h"

#include "ir/alloc.h"
#include "ir/problem.h"

ir_val pass_copy_node(ir_graph *ng, const ir_node *n, const ir_val *inputs)
{
    return ir_add_node(ng, n->op, n->ninput, inputs, n->attr, IR_NATTR, &n->shape, n->data);
}

static ir_val plain_copy(void *ctx, ir_graph *ng, const ir_node *n, const ir_val *inputs)
{
    return pass_copy_node(ng, n, inputs);
}

sj_status pass_rebuild_with(const ir_graph *g, const unsigned char *keep, rebuild_fn *add,
                            void *ctx, ir_graph **out, ir_err *err)
{
    *out = NULL;
    int most = 1;
    for (uint32_t v = 0; v < g->nnode; v++)
        if (g->node[v].ninput > most)
            most = g->node[v].ninput;
    ir_graph *ng = ir_graph_new();
    ir_val *map = ir_malloc((g->nnode ? g->nnode : 1) * sizeof *map);
    ir_val *buf = ir_malloc((size_t)most * sizeof *buf);
    ir_val *outs = ir_malloc((g->noutput ? g->noutput : 1) * sizeof *outs);
    sj_status st = SJ_OK;
    if (!ng || !map || !buf || !outs) {
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while rebuilding a graph");
        goto done;
    }
    for (uint32_t i = 0; i < g->nsym; i++)
        ir_graph_symbol(ng, g->sym[i]);
    ir_graph_copy_problems(ng, g); /* same indices: fit nodes are copied as they are */
    for (uint32_t v = 0; v < g->nnode && ir_graph_ok(ng); v++) {
        map[v] = IR_NONE;
        if (keep && !keep[v])
            continue;
        const ir_node *n = &g->node[v];
        for (int i = 0; i < n->ninput; i++)
            buf[i] = map[n->input[i]];
        map[v] = (add ? add : plain_copy)(ctx, ng, n, buf);
    }
    for (uint32_t i = 0; i < g->ninput && ir_graph_ok(ng); i++)
        ir_add_input_alias(ng, map[g->input[i]], g->input_name[i]);
    for (uint32_t k = 0; k < g->noutput; k++)
        outs[k] = map[g->output[k]];
    if (ir_graph_ok(ng))
        ir_graph_set_outputs(ng, g->noutput, outs);
    if (!ir_graph_ok(ng)) {
        st = ir_fail(err, ng->err.status, "while rebuilding a graph: %s", ng->err.msg);
        goto done;
    }
    *out = ng;
    ng = NULL;
done:
    ir_graph_free(ng);
    ir_free(map);
    ir_free(buf);
    ir_free(outs);
    return st;
}

sj_status pass_rebuild(const ir_graph *g, const unsigned char *keep, void *unused,
                       ir_graph **out, ir_err *err)
{
    return pass_rebuild_with(g, keep, NULL, NULL, out, err);
}

sj_status pass_inline(ir_graph *g, const ir_graph *sub, const ir_val *args, ir_val *outs)
{
    if (!ir_graph_ok(g))
        return g->err.status;
    int most = 1;
    for (uint32_t v = 0; v < sub->nnode; v++)
        if (sub->node[v].ninput > most)
            most = sub->node[v].ninput;
    ir_val *map = ir_malloc((sub->nnode ? sub->nnode : 1) * sizeof *map);
    ir_val *buf = ir_malloc((size_t)most * sizeof *buf);
    if (!map || !buf) {
        ir_free(map);
        ir_free(buf);
        return ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "out of memory while inlining a graph");
    }
    for (uint32_t v = 0; v < sub->nnode && ir_graph_ok(g); v++) {
        const ir_node *n = &sub->node[v];
        if (n->op == IR_OP_INPUT) {
            ir_val a = args[n->attr[0]];
            if (a != IR_NONE && !ir_shape_equal(ir_shape_of(g, a), &n->shape)) {
                char sa[128], sb[128];
                ir_fail(&g->err, SJ_ERR_INTERNAL, "inlining: input %d is %s, the graph takes %s",
                        (int)n->attr[0], ir_shape_str(g, ir_shape_of(g, a), sa, sizeof sa),
                        ir_shape_str(sub, &n->shape, sb, sizeof sb));
            }
            map[v] = a;
            continue;
        }
        for (int i = 0; i < n->ninput; i++)
            buf[i] = map[n->input[i]];
        if (n->op == IR_OP_FIT) {
            ir_problem c;
            const ir_problem *p = ir_graph_problem(sub, n->attr[IR_FIT_PROBLEM]);
            if (!p || ir_problem_copy(p, &c) != 0) {
                ir_fail(&g->err, p ? SJ_ERR_OUT_OF_MEMORY : SJ_ERR_INTERNAL,
                        "inlining: cannot copy the problem of fit %%%u", v);
                break;
            }
            ir_node copy = *n;
            copy.attr[IR_FIT_PROBLEM] = ir_graph_add_problem(g, &c);
            map[v] = pass_copy_node(g, &copy, buf);
        } else {
            map[v] = pass_copy_node(g, n, buf);
        }
    }
    for (uint32_t k = 0; k < sub->noutput; k++)
        outs[k] = ir_graph_ok(g) ? map[sub->output[k]] : IR_NONE;
    ir_free(map);
    ir_free(buf);
    return g->err.status;
}
