#include "ir/verify.h"

#include <inttypes.h>

#include "ir/problem.h"

static sj_status verify_node(const ir_graph *g, uint32_t v, ir_err *err)
{
    const ir_node *n = ir_node_at(g, v);
    char sa[128], sb[128];
    if (n->op >= IR_NOP)
        return ir_fail(err, SJ_ERR_INTERNAL, "value %%%u: unknown op %d", v, (int)n->op);
    int arity = ir_op_arity(n->op);
    if ((arity >= 0 && n->ninput != arity) || n->ninput < 0)
        return ir_fail(err, SJ_ERR_INTERNAL, "%s (value %%%u): %d inputs, the op takes %d",
                       ir_op_name(n->op), v, n->ninput, arity);
    for (int i = 0; i < n->ninput; i++)
        if (n->input[i] < 0 || (uint32_t)n->input[i] >= v)
            return ir_fail(err, SJ_ERR_INTERNAL,
                           "%s (value %%%u): input %d is %%%d, not an earlier value",
                           ir_op_name(n->op), v, i, (int)n->input[i]);
    ir_shape inferred;
    ir_err rule_err = {0};
    if (ir_infer_shape(g, n, v, &inferred, &rule_err) != 0)
        return ir_fail(err, SJ_ERR_INTERNAL, "%s", rule_err.msg);
    if (!ir_shape_equal(&inferred, &n->shape))
        return ir_fail(err, SJ_ERR_INTERNAL, "%s (value %%%u): stored shape %s, rule gives %s",
                       ir_op_name(n->op), v, ir_shape_str(g, &n->shape, sa, sizeof sa),
                       ir_shape_str(g, &inferred, sb, sizeof sb));
    if (n->op == IR_OP_FIT) {
        ir_err fit_err = {0};
        if (ir_fit_check(g, (ir_val)v, &fit_err) != SJ_OK)
            return ir_fail(err, SJ_ERR_INTERNAL, "%s", fit_err.msg);
    }
    return SJ_OK;
}

/* Every sub-graph of every problem is a valid graph itself. */
static sj_status verify_problems(const ir_graph *g, ir_err *err)
{
    for (uint32_t k = 0; k < g->nproblem; k++) {
        const ir_problem *p = &g->problem[k];
        const ir_graph *sub[4] = {p->objective, p->curvature, p->gradient, p->hessian};
        static const char *const what[4] = {"objective", "curvature", "gradient", "hessian"};
        if (!p->objective)
            return ir_fail(err, SJ_ERR_INTERNAL, "problem %u has no objective", k);
        for (int i = 0; i < 4; i++) {
            ir_err e = {0};
            if (sub[i] && ir_verify(sub[i], &e) != SJ_OK)
                return ir_fail(err, SJ_ERR_INTERNAL, "problem %u, %s: %s", k, what[i], e.msg);
        }
    }
    return SJ_OK;
}

sj_status ir_verify(const ir_graph *g, ir_err *err)
{
    if (verify_problems(g, err) != SJ_OK)
        return err->status;
    for (uint32_t v = 0; v < g->nnode; v++)
        if (verify_node(g, v, err) != SJ_OK)
            return err->status;
    for (uint32_t i = 0; i < g->ninput; i++) {
        ir_val v = g->input[i];
        if (v < 0 || (uint32_t)v >= g->nnode || g->node[v].op != IR_OP_INPUT ||
            g->node[v].attr[0] != (int64_t)i)
            return ir_fail(err, SJ_ERR_INTERNAL, "input %u (\"%s\") is not an input node at position %u",
                           i, g->input_name[i], i);
    }
    for (uint32_t k = 0; k < g->noutput; k++)
        if (g->output[k] < 0 || (uint32_t)g->output[k] >= g->nnode)
            return ir_fail(err, SJ_ERR_INTERNAL, "output %u is %%%d, not a value of the graph", k,
                           (int)g->output[k]);
    return SJ_OK;
}
