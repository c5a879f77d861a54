/* The GLM fit as a graph value: IRLS is the fit op (docs/fit.md) with the
 * deviance as objective and twice the Fisher information 2 XᵀWX as
 * curvature, so a Newton step is exactly R's IRLS step and the relative
 * objective rule |Δdev|/(|dev| + 0.1) < 1e-8 is R's glm.control criterion.
 * A step that takes μ or η outside the family's domain makes the objective
 * +∞ and is halved, as R's glm.fit does.  Starting values are R's: one
 * weighted least-squares step on the working response at mustart (R's first
 * iteration), built as graph ops before the fit.  β̂ is then differentiable
 * (implicit function theorem) and batchable like any other fit. */
#include <math.h>

#include "frontend/cov.h"
#include "frontend/glm_family.h"
#include "frontend/glm_model.h"

#define DIMS(...) ((const char *const[]){__VA_ARGS__})

/* η = X β + offset, μ = g⁻¹(η) in a sub-graph. */
static sj_value eta_of(sj_graph *h, sj_value x, sj_value beta, sj_value off)
{
    return sj_add(h, sj_matmul(h, x, beta), off);
}

/* A sub-graph with inputs beta [p], X [n, p], y [n], then w [n] and
 * offset [n] when the fit has them (else the scalars 1 and 0: no per-item
 * arrays of ones and zeros to pass around, batched along with y). */
static sj_fn *subfn(sj_ctx *ctx, const sj_glm_family *fam, int curvature, int has_w,
                    int has_off)
{
    sj_graph *h = NULL;
    if (sj_graph_create(ctx, &h) != SJ_OK)
        return NULL;
    sj_value beta = sj_input(h, "beta", 1, DIMS("p"));
    sj_value x = sj_input(h, "X", 2, DIMS("n", "p"));
    sj_value y = sj_input(h, "y", 1, DIMS("n"));
    sj_value w = has_w ? sj_input(h, "weights", 1, DIMS("n")) : sj_scalar(h, 1.0);
    sj_value off = has_off ? sj_input(h, "offset", 1, DIMS("n")) : sj_scalar(h, 0.0);
    sj_value eta = eta_of(h, x, beta, off), out;
    if (curvature) {
        /* 2 XᵀWX as AᵀA with A = √W X: a syrk-shaped product */
        sj_value ww = sj_glm_working_weights(h, fam, eta, w);
        sj_value a = sj_mul(h, sj_reshape(h, sj_sqrt(h, ww), 2, DIMS("n", "1")), x);
        out = sj_mul(h, sj_scalar(h, 2.0), sj_matmul(h, sj_mT(h, a), a));
    } else {
        sj_value mu = sj_glm_linkinv(h, fam, eta);
        sj_value dev = sj_glm_deviance(h, fam, y, mu, w);
        sj_value ok = sj_mul(h, sj_glm_valid_eta(h, fam, eta), sj_glm_valid_mu(h, fam, mu));
        out = sj_select(h, ok, dev, sj_scalar(h, INFINITY));
    }
    sj_fn *f = NULL;
    sj_status st = sj_graph_status(h);
    if (st == SJ_OK)
        st = sj_fn_create(h, 1, &out, &f);
    sj_graph_free(h);
    return st == SJ_OK ? f : NULL;
}

/* R's first IRLS iteration from mustart: β₀ = (XᵀWX)⁻¹ XᵀW z. */
static sj_value start_beta(sj_graph *g, const sj_glm_family *fam, sj_value x, sj_value y,
                           sj_value w, sj_value off)
{
    sj_value mu0 = sj_glm_mustart(g, fam, y, w);
    sj_value eta0 = sj_glm_linkfun(g, fam, mu0);
    sj_value z = sj_sub(g, sj_glm_working_response(g, fam, y, eta0), off);
    sj_value ww = sj_glm_working_weights(g, fam, eta0, w);
    sj_value a = sj_mul(g, sj_reshape(g, sj_sqrt(g, ww), 2, DIMS("n", "1")), x);
    sj_value xtwx = sj_matmul(g, sj_mT(g, a), a);
    sj_value xtwz = sj_matmul(g, sj_mT(g, x), sj_mul(g, ww, z));
    return sj_cholesky_solve(g, sj_cholesky(g, xtwx), xtwz);
}

sj_status fe_glm_fit_graph(sj_graph *g, const sj_glm_family *fam, sj_value x, sj_value y,
                           sj_value weights, sj_value offset, int max_iter, sj_value *beta,
                           sj_value *iterations, sj_value *converged, sj_value *previous)
{
    const char *fn = "sj_glm_fit_graph";
    if (!fe_graph_valid(g))
        return SJ_ERR_INVALID_ARGUMENT;
    if (sj_graph_status(g) != SJ_OK)
        return sj_graph_status(g);
    if (!fam || fam->magic != FE_MAGIC_GLM_FAMILY)
        return fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: family is not a valid sj_glm_family",
                           fn);
    if (!beta)
        return fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: beta is NULL", fn);
    if (max_iter < 0)
        return fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: max_iter = %d must be >= 0", fn,
                           max_iter);
    if (max_iter == 0)
        max_iter = 25;
    /* Weights and offset default to the scalars 1 and 0 (broadcast). */
    int has_w = weights != SJ_INVALID, has_off = offset != SJ_INVALID;
    sj_value w = has_w ? weights : sj_scalar(g, 1.0);
    sj_value off = has_off ? offset : sj_scalar(g, 0.0);
    sj_value b0 = start_beta(g, fam, x, y, w, off);
    if (sj_graph_status(g) != SJ_OK)
        return sj_graph_status(g);
    sj_fn *obj = subfn(g->ctx, fam, 0, has_w, has_off);
    sj_fn *curv = obj ? subfn(g->ctx, fam, 1, has_w, has_off) : NULL;
    if (!obj || !curv) {
        sj_fn_free(obj);
        sj_fn_free(curv);
        return fe_cov_fail(g, SJ_ERR_INTERNAL, "%s: building the IRLS sub-graphs failed: %s", fn,
                           sj_ctx_last_error(g->ctx));
    }
    /* R's first iteration is the start step, so R's count is ours + 1. */
    sj_value it = SJ_INVALID;
    sj_value data[4] = {x, y};
    int ndata = 2;
    if (has_w)
        data[ndata++] = w;
    if (has_off)
        data[ndata++] = off;
    sj_status st =
        previous ? sj_fit_argmin_previous(g, obj, curv, b0, ndata, data, max_iter - 1,
                                          SJ_FIT_REL_OBJECTIVE, 1e-8, beta, &it, converged,
                                          previous)
                 : sj_fit_argmin(g, obj, curv, b0, ndata, data, max_iter - 1, SJ_FIT_REL_OBJECTIVE,
                                 1e-8, beta, &it, converged);
    sj_fn_free(obj);
    sj_fn_free(curv);
    if (st != SJ_OK)
        return st;
    if (iterations)
        *iterations = sj_add(g, it, sj_scalar(g, 1.0));
    return sj_graph_status(g);
}

sj_status sj_glm_fit_graph(sj_graph *g, const sj_glm_family *fam, sj_value x, sj_value y,
                           sj_value weights, sj_value offset, int max_iter, sj_value *beta,
                           sj_value *iterations, sj_value *converged)
{
    return fe_glm_fit_graph(g, fam, x, y, weights, offset, max_iter, beta, iterations, converged,
                            NULL);
}
