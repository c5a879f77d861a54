/* The fit op's case for the per-op tables (test_ad_ops.c, test_vmap_ops.c):
 *
 *   θ̂(a, w) = argmin_θ Σ w·exp(θ) − a·θ + ½θ²,   θ, a, w in R³, w > 0,
 *
 * strictly convex, so θ̂ solves w·exp(θ) + θ = a elementwise: a smooth,
 * nonlinear function of both data inputs.  Solved by damped Newton from
 * θ0 = 0 to a gradient norm of 1e-13, so differences of refits are as
 * accurate as the tables' tolerances need.  The objective function lives in
 * a context of its own (any context's function may define a fit). */
#ifndef SJ_TEST_FIT_CASE_H
#define SJ_TEST_FIT_CASE_H

#include <stdlib.h>

#include "statjit.h"

static sj_ctx *fit_case_ctx;
static sj_fn *fit_case_objective;

static void fit_case_free(void)
{
    sj_fn_free(fit_case_objective);
    sj_ctx_free(fit_case_ctx);
}

static sj_fn *fit_case_fn(void)
{
    if (fit_case_objective)
        return fit_case_objective;
    sj_graph *h = NULL;
    if (sj_ctx_create(&fit_case_ctx) != SJ_OK || sj_graph_create(fit_case_ctx, &h) != SJ_OK)
        return NULL;
    const char *k[1] = {"k"};
    sj_value th = sj_input(h, "theta", 1, k);
    sj_value a = sj_input(h, "a", 1, k);
    sj_value w = sj_input(h, "w", 1, k);
    sj_value terms = sj_add(h, sj_sub(h, sj_mul(h, w, sj_exp(h, th)), sj_mul(h, a, th)),
                            sj_mul(h, sj_scalar(h, 0.5), sj_square(h, th)));
    sj_value f = sj_sum_all(h, terms);
    sj_fn_create(h, 1, &f, &fit_case_objective);
    sj_graph_free(h);
    atexit(fit_case_free);
    return fit_case_objective;
}

/* x[0] = a [3], x[1] = w [3] (positive). */
static sj_value fit_case(sj_graph *g, const sj_value *x)
{
    sj_value t0 = sj_constant(g, 1, (int64_t[]){3}, (double[]){0, 0, 0}), th = SJ_INVALID;
    sj_fit_argmin(g, fit_case_fn(), NULL, t0, 2, x, 50, SJ_FIT_GRAD_NORM, 1e-13, &th, NULL, NULL);
    return th;
}

#endif
