/* The reference evaluator of the fit op: the solver of ir/newton.c over
 * ir_eval of the problem's specialised sub-graphs (objective, gradient, and
 * the curvature or else the Hessian), one batch item at a time. */
#include <string.h>

#include "ir/alloc.h"
#include "ir/eval.h"
#include "ir/eval_kernels.h"
#include "ir/newton.h"
#include "ir/problem.h"

typedef struct fit_eval {
    const ir_graph *sub[3]; /* objective, gradient, curvature */
    const double **in;      /* theta, then the item's data */
    ir_err err;             /* of the last failed evaluation */
} fit_eval;

static sj_status run(fit_eval *e, int which, const double *theta, double *res)
{
    e->in[0] = theta;
    double *out[1] = {res};
    memset(&e->err, 0, sizeof e->err);
    return ir_eval(e->sub[which], (const double *const *)e->in, out, &e->err);
}

static sj_status objective(void *ctx, const double *theta, double *f) { return run(ctx, 0, theta, f); }
static sj_status gradient(void *ctx, const double *theta, double *g) { return run(ctx, 1, theta, g); }
static sj_status curvature(void *ctx, const double *theta, double *c) { return run(ctx, 2, theta, c); }

sj_status ev_fit(const ev_args *a)
{
    const ir_node *n = a->n;
    const ir_problem *p = ir_graph_problem(a->g, n->attr[IR_FIT_PROBLEM]);
    if (!p || !p->objective)
        return ev_fail(a, SJ_ERR_INTERNAL, "problem %d is not in the graph",
                       (int)n->attr[IR_FIT_PROBLEM]);
    const ir_graph *curv = p->curvature ? p->curvature : p->hessian;
    if (!p->gradient || !curv)
        return ev_fail(a, SJ_ERR_INTERNAL, "the problem has no derived gradient or Hessian "
                       "(pass_fill_problems runs when a function is materialised)");
    ir_shape theta = ir_fit_item_shape(a->g, n, 0);
    int64_t k = theta.dim[0], ndata = n->ninput - 1;
    int batched = n->attr[IR_FIT_BATCHED] != 0;
    int64_t nb = batched ? ir_shape_of(a->g, n->input[0])->dim[0] : 1;
    fit_eval e = {.sub = {p->objective, p->gradient, curv}};
    e.in = ir_malloc((size_t)(1 + ndata) * sizeof *e.in);
    double *work = ir_malloc(ir_newton_work(k) * sizeof *work);
    size_t *item = ir_malloc((size_t)(ndata + 1) * sizeof *item);
    sj_status st = SJ_OK;
    if (!e.in || !work || !item) {
        st = ev_fail(a, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int64_t j = 0; j < ndata; j++) {
        ir_shape s = ir_fit_item_shape(a->g, n, (int)j + 1);
        item[j] = ir_fit_data_batched(n, (int)j) ? ir_shape_numel(&s) : 0;
    }
    ir_newton_settings s = {.k = k, .max_iter = p->max_iter, .tol = p->tol, .rule = p->rule,
                            .previous = n->attr[IR_FIT_PREVIOUS] != 0};
    ir_newton_fns fns = {&e, objective, gradient, curvature, NULL};
    for (int64_t b = 0; b < nb; b++) {
        for (int64_t j = 0; j < ndata; j++)
            e.in[1 + j] = ev_in(a, (int)j + 1) + (size_t)b * item[j];
        double *out = a->out + b * ir_newton_out_len(k, s.previous);
        st = ir_newton(&fns, &s, ev_in(a, 0) + (batched ? b * k : 0), out, work);
        if (st != SJ_OK) {
            const char *why = e.err.status != SJ_OK ? e.err.msg : "the value is not finite";
            st = ev_fail(a, st, "the objective fails at the starting point [batch %lld]: %s",
                         (long long)b, why);
            goto done;
        }
    }
done:
    ir_free(e.in);
    ir_free(work);
    ir_free(item);
    return st;
}
