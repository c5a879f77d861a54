/* The problem table of the fit op: ownership, copies and checks.  See
 * ir/problem.h and docs/fit.md. */
#include "ir/problem.h"

#include <inttypes.h>
#include <string.h>

#include "ir/alloc.h"

void ir_problem_clear(ir_problem *p)
{
    ir_graph_free(p->objective);
    ir_graph_free(p->curvature);
    ir_graph_free(p->gradient);
    ir_graph_free(p->hessian);
    memset(p, 0, sizeof *p);
}

void ir_graph_free_problems(ir_graph *g)
{
    for (uint32_t i = 0; i < g->nproblem; i++)
        ir_problem_clear(&g->problem[i]);
    ir_free(g->problem);
    g->problem = NULL;
    g->nproblem = 0;
}

int ir_graph_add_problem(ir_graph *g, ir_problem *p)
{
    ir_problem *t = ir_realloc_array(g->problem, g->nproblem + 1, sizeof *t);
    if (!t) {
        ir_problem_clear(p);
        ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "out of memory for a fit problem");
        return -1;
    }
    g->problem = t;
    t[g->nproblem] = *p;
    memset(p, 0, sizeof *p);
    return (int)g->nproblem++;
}

static int copy_graph(const ir_graph *src, ir_graph **dst)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = ir_graph_copy(src);
    return *dst ? 0 : -1;
}

int ir_problem_copy(const ir_problem *p, ir_problem *out)
{
    *out = *p;
    out->objective = out->curvature = out->gradient = out->hessian = NULL;
    if (copy_graph(p->objective, &out->objective) || copy_graph(p->curvature, &out->curvature) ||
        copy_graph(p->gradient, &out->gradient) || copy_graph(p->hessian, &out->hessian)) {
        ir_problem_clear(out);
        return -1;
    }
    return 0;
}

int ir_graph_copy_problems(ir_graph *dst, const ir_graph *src)
{
    if (dst == src)
        return 0;
    for (uint32_t i = 0; i < src->nproblem; i++) {
        ir_problem c;
        if (ir_problem_copy(&src->problem[i], &c) != 0) {
            ir_fail(&dst->err, SJ_ERR_OUT_OF_MEMORY, "out of memory copying a fit problem");
            return -1;
        }
        if (ir_graph_add_problem(dst, &c) < 0)
            return -1;
    }
    return 0;
}

ir_shape ir_fit_item_shape(const ir_graph *g, const ir_node *n, int i)
{
    ir_shape s = *ir_shape_of(g, n->input[i]);
    int batched = i == 0 ? n->attr[IR_FIT_BATCHED] != 0 : ir_fit_data_batched(n, i - 1);
    if (batched && s.rank > 0) {
        memmove(s.dim, s.dim + 1, (size_t)(s.rank - 1) * sizeof s.dim[0]);
        s.rank--;
    }
    return s;
}

/* Sub-graph `sub` (called what) takes the node's per-item inputs and returns
 * one value of rank out_rank (last two dims k when out_rank is 2, k when 1). */
static sj_status check_sub(const ir_graph *g, ir_val v, const ir_node *n, const ir_graph *sub,
                           const char *what, int out_rank, ir_err *err)
{
    char sa[128], sb[128];
    if (sub->ninput != (uint32_t)n->ninput)
        return ir_fail(err, SJ_ERR_SHAPE, "fit (value %%%d): the %s takes %u inputs, the fit "
                       "gives it %d (theta and %d data)", (int)v, what, sub->ninput, n->ninput,
                       n->ninput - 1);
    for (int i = 0; i < n->ninput; i++) {
        ir_shape have = ir_fit_item_shape(g, n, i);
        const ir_shape *want = ir_shape_of(sub, sub->input[i]);
        int bad = have.rank != want->rank;
        for (int d = 0; !bad && d < have.rank; d++)
            bad = ir_dim_conflict(have.dim[d], want->dim[d]);
        if (bad)
            return ir_fail(err, SJ_ERR_SHAPE, "fit (value %%%d): %s input \"%s\" is %s but the fit "
                           "gives %s", (int)v, what, sub->input_name[i],
                           ir_shape_str(sub, want, sa, sizeof sa),
                           ir_shape_str(g, &have, sb, sizeof sb));
    }
    if (sub->noutput < 1)
        return ir_fail(err, SJ_ERR_SHAPE, "fit (value %%%d): the %s has no output", (int)v, what);
    const ir_shape *o = ir_shape_of(sub, sub->output[0]);
    ir_shape theta = ir_fit_item_shape(g, n, 0);
    int bad = o->rank != out_rank || theta.rank != 1;
    for (int d = 0; !bad && d < out_rank; d++)
        bad = ir_dim_conflict(o->dim[d], theta.dim[0]);
    if (bad) {
        const char *want = out_rank == 0 ? "a scalar" : out_rank == 1 ? "[k]" : "[k, k]";
        return ir_fail(err, SJ_ERR_SHAPE, "fit (value %%%d): the %s returns %s, not %s (theta is %s)",
                       (int)v, what, ir_shape_str(sub, o, sa, sizeof sa), want,
                       ir_shape_str(g, &theta, sb, sizeof sb));
    }
    return SJ_OK;
}

sj_status ir_fit_check(const ir_graph *g, ir_val v, ir_err *err)
{
    const ir_node *n = ir_node_at(g, v);
    const ir_problem *p = ir_graph_problem(g, n->attr[IR_FIT_PROBLEM]);
    if (!p || !p->objective)
        return ir_fail(err, SJ_ERR_INTERNAL, "fit (value %%%d): problem %" PRId64 " is not in "
                       "the graph (%u problems)", (int)v, n->attr[IR_FIT_PROBLEM], g->nproblem);
    if (n->ninput - 1 > IR_FIT_MAX_DATA)
        return ir_fail(err, SJ_ERR_UNSUPPORTED, "fit (value %%%d): %d data inputs, at most %d",
                       (int)v, n->ninput - 1, IR_FIT_MAX_DATA);
    if (!(p->tol > 0) || p->max_iter < 0 ||
        (p->rule != SJ_FIT_REL_OBJECTIVE && p->rule != SJ_FIT_GRAD_NORM))
        return ir_fail(err, SJ_ERR_INTERNAL, "fit (value %%%d): bad solver settings", (int)v);
    sj_status st = check_sub(g, v, n, p->objective, "objective", 0, err);
    if (st == SJ_OK && p->curvature)
        st = check_sub(g, v, n, p->curvature, "curvature", 2, err);
    if (st == SJ_OK && p->gradient)
        st = check_sub(g, v, n, p->gradient, "gradient", 1, err);
    if (st == SJ_OK && p->hessian)
        st = check_sub(g, v, n, p->hessian, "hessian", 2, err);
    return st;
}
