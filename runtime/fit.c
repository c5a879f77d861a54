/* The public fit builder, sj_fit_argmin (include/statjit.h, "fits"): turns
 * the objective (and curvature) functions into a problem of the graph and
 * appends a fit node and the slices of its output.  See docs/fit.md. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir/alloc.h"
#include "ir/problem.h"
#include "runtime/handles.h"
#include "runtime/materialize.h"

static const char *const who = "sj_fit_argmin";

/* Records the first error of this call on g (prefixed) and in the context. */
__attribute__((format(printf, 3, 4)))
static sj_status reject(sj_graph *g, sj_status st, const char *fmt, ...)
{
    if (ir_graph_ok(g->ir)) {
        char msg[IR_ERR_MSG];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        ir_fail(&g->ir->err, st, "%s: %s", who, msg);
    }
    return fe_ctx_fail(g->ctx, &g->ir->err);
}

static ir_val arg(sj_graph *g, sj_value v, const char *what, int j)
{
    uint64_t u = (uint64_t)v;
    if (v == SJ_INVALID || v < 0 || (uint32_t)(u >> 32) != g->serial ||
        (uint32_t)u >= g->ir->nnode) {
        char name[32];
        snprintf(name, sizeof name, j >= 0 ? "%s[%d]" : "%s", what, j);
        reject(g, SJ_ERR_INVALID_ARGUMENT, "%s (id %" PRId64 ") is not a value of this graph",
               name, v);
        return IR_NONE;
    }
    return (ir_val)(uint32_t)u;
}

/* The graph of function fn with only output 0: its base graph, or, when it
 * has pending transforms, its materialisation at its (concrete) declared
 * input shapes. */
static sj_status fn_graph(sj_graph *g, sj_fn *fn, const char *what, ir_graph **out)
{
    *out = NULL;
    ir_err err = {0};
    ir_graph *sub = NULL;
    if (fn->nxform == 0) {
        sub = ir_graph_copy(fn->ir);
        if (!sub)
            return reject(g, SJ_ERR_OUT_OF_MEMORY, "out of memory");
    } else {
        const ir_graph *sig = rt_fn_sig(fn);
        ir_shape *shapes = ir_malloc((sig->ninput ? sig->ninput : 1) * sizeof *shapes);
        if (!shapes)
            return reject(g, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        for (uint32_t i = 0; i < sig->ninput; i++) {
            shapes[i] = *ir_shape_of(sig, sig->input[i]);
            if (!ir_shape_is_concrete(&shapes[i])) {
                char a[128];
                ir_free(shapes);
                return reject(g, SJ_ERR_UNSUPPORTED, "the %s has pending transforms and input "
                              "\"%s\" has the symbolic shape %s; declare concrete input shapes",
                              what, sig->input_name[i],
                              ir_shape_str(sig, ir_shape_of(sig, sig->input[i]), a, sizeof a));
            }
        }
        sj_status st = rt_fn_materialize(fn, shapes, &sub, &err);
        ir_free(shapes);
        if (st != SJ_OK)
            return reject(g, st, "the %s: %s", what, err.msg);
    }
    if (sub->noutput < 1 || ir_graph_set_outputs(sub, 1, sub->output) != SJ_OK) {
        ir_graph_free(sub);
        return reject(g, SJ_ERR_OUT_OF_MEMORY, "out of memory");
    }
    *out = sub;
    return SJ_OK;
}

/* x[start:stop] on axis 0. */
static ir_val slice0(ir_graph *g, ir_val x, int64_t start, int64_t stop)
{
    int64_t attr[3] = {0, start, stop};
    return ir_add_node(g, IR_OP_SLICE, 1, &x, attr, 3, NULL, NULL);
}

/* The outputs of a fit node: theta_hat, iterations, converged, previous. */
enum { OUT_THETA, OUT_ITER, OUT_CONV, OUT_PREV, NOUT };

/* Slices the outputs of fit node `fit` (k parameters; k < 0: symbolic, no
 * previous iterate) into out[] (entries may be NULL). */
static void slice_outputs(ir_graph *ir, ir_val fit, const ir_shape *theta_shape, int64_t k,
                          int previous, ir_val *out)
{
    ir_shape scalar = {0};
    int64_t lo[NOUT] = {0, -2, -1, k + 2}, hi[NOUT] = {-2, -1, INT64_MAX, 2 * k + 2};
    if (previous) { /* θ̂, count, flag, previous: the count and flag are not last */
        hi[OUT_THETA] = k, lo[OUT_ITER] = k, hi[OUT_ITER] = k + 1;
        lo[OUT_CONV] = k + 1, hi[OUT_CONV] = k + 2;
    }
    for (int i = 0; i < NOUT - !previous; i++) {
        const ir_shape *s = i == OUT_THETA || i == OUT_PREV ? theta_shape : &scalar;
        out[i] = ir_add_node(ir, IR_OP_RESHAPE, 1, (ir_val[]){slice0(ir, fit, lo[i], hi[i])}, NULL,
                             0, s, NULL);
    }
}

static sj_status fit_argmin(sj_graph *g, sj_fn *objective, sj_fn *curvature, sj_value theta0,
                            int ndata, const sj_value *data, int max_iter, sj_fit_rule rule,
                            double tol, int previous, sj_value *const *outs)
{
    for (int i = 0; i < NOUT; i++)
        if (outs[i])
            *outs[i] = SJ_INVALID;
    if (!fe_graph_valid(g))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!ir_graph_ok(g->ir)) /* sticky: an earlier builder call failed */
        return g->ir->err.status;
    if (!rt_fn_valid(objective))
        return reject(g, SJ_ERR_INVALID_ARGUMENT, "objective is not a function");
    if (curvature && !rt_fn_valid(curvature))
        return reject(g, SJ_ERR_INVALID_ARGUMENT, "curvature is not a function");
    if (ndata < 0 || ndata > IR_FIT_MAX_DATA || (ndata > 0 && !data))
        return reject(g, SJ_ERR_INVALID_ARGUMENT, "ndata = %d%s (0 to %d data values)", ndata,
                      ndata > 0 && !data ? " with data NULL" : "", IR_FIT_MAX_DATA);
    if (max_iter < 0)
        return reject(g, SJ_ERR_INVALID_ARGUMENT, "max_iter is %d, not >= 0", max_iter);
    if (rule != SJ_FIT_REL_OBJECTIVE && rule != SJ_FIT_GRAD_NORM)
        return reject(g, SJ_ERR_INVALID_ARGUMENT, "unknown convergence rule %d", (int)rule);
    if (!(tol > 0) || tol != tol || tol > 1e300)
        return reject(g, SJ_ERR_INVALID_ARGUMENT, "tol is %g, not a positive number", tol);
    ir_val *in = ir_malloc((size_t)(ndata + 1) * sizeof *in);
    if (!in)
        return reject(g, SJ_ERR_OUT_OF_MEMORY, "out of memory");
    in[0] = arg(g, theta0, "theta0", -1);
    for (int j = 0; j < ndata && ir_graph_ok(g->ir); j++)
        in[j + 1] = arg(g, data[j], "data", j);
    if (!ir_graph_ok(g->ir)) {
        ir_free(in);
        return g->ir->err.status;
    }
    const ir_shape *ts = ir_shape_of(g->ir, in[0]);
    if (ts->rank != 1) {
        char a[128];
        ir_free(in);
        return reject(g, SJ_ERR_SHAPE, "theta0 must be a vector (rank 1), got %s",
                      ir_shape_str(g->ir, ts, a, sizeof a));
    }
    if (previous && !IR_DIM_IS_SIZE(ts->dim[0])) {
        char a[128];
        ir_free(in);
        return reject(g, SJ_ERR_UNSUPPORTED, "the previous iterate needs theta0 of a concrete "
                      "size, got %s", ir_shape_str(g->ir, ts, a, sizeof a));
    }
    ir_problem p = {.max_iter = max_iter, .tol = tol, .rule = (int)rule};
    if (fn_graph(g, objective, "objective", &p.objective) != SJ_OK ||
        (curvature && fn_graph(g, curvature, "curvature", &p.curvature) != SJ_OK)) {
        ir_problem_clear(&p);
        ir_free(in);
        return g->ir->err.status;
    }
    ir_graph *ir = g->ir;
    int k = ir_graph_add_problem(ir, &p);
    int64_t attr[4] = {k, 0, 0, previous};
    ir_val fit = k < 0 ? IR_NONE
                       : ir_add_node(ir, IR_OP_FIT, ndata + 1, in, attr, 4, NULL, NULL);
    ir_free(in);
    ir_err err = {0};
    if (fit != IR_NONE && ir_fit_check(ir, fit, &err) != SJ_OK)
        return reject(g, err.status, "%s", err.msg);
    ir_shape theta_shape = *ts;
    ir_val res[NOUT] = {IR_NONE, IR_NONE, IR_NONE, IR_NONE};
    slice_outputs(ir, fit, &theta_shape, ts->dim[0], previous, res);
    if (!ir_graph_ok(ir)) {
        sj_status st = ir->err.status;
        ir_err copy = ir->err;
        memset(&ir->err, 0, sizeof ir->err);
        return reject(g, st, "%s", copy.msg);
    }
    for (int i = 0; i < NOUT; i++)
        if (outs[i])
            *outs[i] = fe_value(g, res[i]);
    return SJ_OK;
}

sj_status sj_fit_argmin(sj_graph *g, sj_fn *objective, sj_fn *curvature, sj_value theta0,
                        int ndata, const sj_value *data, int max_iter, sj_fit_rule rule,
                        double tol, sj_value *theta_hat, sj_value *iterations,
                        sj_value *converged)
{
    sj_value *outs[NOUT] = {theta_hat, iterations, converged, NULL};
    return fit_argmin(g, objective, curvature, theta0, ndata, data, max_iter, rule, tol, 0, outs);
}

sj_status sj_fit_argmin_previous(sj_graph *g, sj_fn *objective, sj_fn *curvature,
                                 sj_value theta0, int ndata, const sj_value *data, int max_iter,
                                 sj_fit_rule rule, double tol, sj_value *theta_hat,
                                 sj_value *iterations, sj_value *converged, sj_value *previous)
{
    sj_value *outs[NOUT] = {theta_hat, iterations, converged, previous};
    return fit_argmin(g, objective, curvature, theta0, ndata, data, max_iter, rule, tol, 1, outs);
}
