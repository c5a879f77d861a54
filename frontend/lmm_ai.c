/* Average-information steps for the LMM fit (sj_lmm_set_optimizer,
 * docs/lmm.md): the curvature handed to the fit op instead of the exact
 * Hessian of the criterion.
 *
 * For the criterion −2ℓ (REML or ML), Gilmour, Thompson & Cullis (1995)'s
 * average information is
 *
 *   AI_ij = u_iᵀ P u_j,   u_i = V̇_i P y,   V̇_i = ∂V/∂θ_i,
 *
 * (twice the AI of −ℓ, ½ yᵀP V̇_i P V̇_j P y), P = V⁻¹ − V⁻¹X(XᵀV⁻¹X)⁻¹XᵀV⁻¹,
 * for REML and ML alike: the profiled ML deviance's observed Hessian has
 * the term 2 r̃ᵀV̇_i P V̇_j r̃ (r̃ = V⁻¹(y − Xβ̂) = P y; the P comes from β̂
 * moving with θ), and its second-derivative-of-V terms vanish on average.
 * (With V⁻¹ in place of the middle P the ML fit of Dyestuff crawled: 100
 * steps without reaching the gradient tolerance.)  It is built as a graph:
 *
 *   F(θ, y, X, codes, Z, a) = V(θ) a          (the model's covariance tree)
 *   J(θ, data, a, θ̇) = jvp of F in θ          (V̇ θ̇ a)
 *   C(θ, data) = Uᵀ P U,  U_i = J(θ, data, P y, e_i)  (J inlined k times)
 *
 * so the derivative of V comes from the forward-mode rules (no hand-written
 * V̇), and the curvature compiles with the fit like its objective. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/handles.h"
#include "frontend/lmm.h"
#include "passes/passes.h"
#include "passes/rebuild.h"

sj_status sj_lmm_set_optimizer(sj_lmm *m, sj_lmm_optimizer optimizer)
{
    if (!m)
        return SJ_ERR_INVALID_ARGUMENT;
    if (optimizer != SJ_LMM_NEWTON && optimizer != SJ_LMM_AVERAGE_INFORMATION)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_lmm_set_optimizer: unknown optimizer %d (SJ_LMM_NEWTON or "
                            "SJ_LMM_AVERAGE_INFORMATION)",
                            (int)optimizer);
    m->optimizer = (int)optimizer;
    return SJ_OK;
}

typedef struct ai_inputs {
    sj_value theta, y, x, codes[FE_LMM_MAX_TERMS], zs[FE_LMM_MAX_TERMS], a;
} ai_inputs;

/* The fit's inputs θ [k], y [n], X [n, p], codes_t [n], Z_t [n, k_t] (the
 * order and names of frontend/lmm.c), then a [n] if with_a. */
static void declare(sj_graph *g, const sj_lmm *m, int ntheta, int with_a, ai_inputs *in)
{
    char ks[24], ps[24];
    snprintf(ks, sizeof ks, "%d", ntheta);
    snprintf(ps, sizeof ps, "%d", m->p);
    const char *dk[] = {ks}, *dn[] = {"n"}, *dx[] = {"n", ps};
    in->theta = sj_input(g, "theta", 1, dk);
    in->y = sj_input(g, "y", 1, dn);
    in->x = sj_input(g, "X", 2, dx);
    for (int t = 0; t < m->nterm; t++) {
        char nm[32];
        snprintf(nm, sizeof nm, "codes%d", t);
        in->codes[t] = sj_input(g, nm, 1, dn);
    }
    for (int t = 0; t < m->nterm; t++) {
        char nm[32], kz[24];
        snprintf(nm, sizeof nm, "Z%d", t);
        snprintf(kz, sizeof kz, "%d", m->term[t].k);
        const char *dz[] = {"n", kz};
        in->zs[t] = sj_input(g, nm, 2, dz);
    }
    in->a = with_a ? sj_input(g, "a", 1, dn) : SJ_INVALID;
}

static ir_val iv(sj_value v) { return (ir_val)(uint32_t)(uint64_t)v; }

/* v [n] as [n, 1]. */
static sj_value col(sj_graph *g, sj_value v)
{
    int64_t one = 1;
    double c = 1.0;
    return sj_outer(g, v, sj_constant(g, 1, &one, &c));
}

sj_status fe_lmm_ai_curvature(sj_lmm *m, int reml, double s2, int ntheta, sj_fn **out)
{
    *out = NULL;
    (void)reml; /* the same AI for REML and ML (see above) */
    sj_ctx *ctx = m->ctx;
    sj_graph *fg = NULL, *cg = NULL;
    ir_graph *jac = NULL;
    ir_err err = {0};
    ai_inputs fi, ci;
    sj_status st = sj_graph_create(ctx, &fg);
    if (st != SJ_OK)
        return st;
    /* F(θ, data, a) = V(θ) a */
    declare(fg, m, ntheta, 1, &fi);
    sj_value v = fe_lmm_objective(fg, m, FE_LMM_V, fi.theta, fi.y, fi.x, fi.codes, fi.zs, s2,
                                  NULL, NULL);
    sj_value u = sj_matmul(fg, v, col(fg, fi.a)); /* [n, 1] */
    if ((st = sj_graph_status(fg)) != SJ_OK)
        goto done;
    ir_val uo = iv(u);
    if ((st = ir_graph_set_outputs(fg->ir, 1, &uo)) != SJ_OK) {
        st = fe_ctx_fail(ctx, &fg->ir->err);
        goto done;
    }
    /* forward mode, tangent θ̇ as the last input (a Jacobian needs concrete
     * shapes, and n is symbolic here: one inlined jvp per direction) */
    int wrt = 0;
    const char *tname = "theta_dot";
    if ((st = pass_jvp(fg->ir, 1, &wrt, &tname, 1, &jac, &err)) != SJ_OK) {
        st = fe_ctx_failf(ctx, st, "sj_lmm_fit: average information: %s", err.msg);
        goto done;
    }
    /* C(θ, data) = Uᵀ P U */
    if ((st = sj_graph_create(ctx, &cg)) != SJ_OK)
        goto done;
    declare(cg, m, ntheta, 0, &ci);
    sj_value vc = fe_lmm_objective(cg, m, FE_LMM_V, ci.theta, ci.y, ci.x, ci.codes, ci.zs, s2,
                                   NULL, NULL);
    sj_value l = sj_cholesky(cg, vc);
    sj_value vix = sj_cholesky_solve(cg, l, ci.x);            /* [n, p] */
    sj_value viy = sj_cholesky_solve(cg, l, col(cg, ci.y));   /* [n, 1] */
    sj_value xt = sj_mT(cg, ci.x);
    sj_value a = sj_matmul(cg, xt, vix);                       /* XᵀV⁻¹X */
    sj_value la = sj_cholesky(cg, a);
    sj_value py = sj_sub(cg, viy, sj_matmul(cg, vix, sj_cholesky_solve(cg, la, sj_matmul(cg, xt, viy))));
    sj_value pyv = sj_sum(cg, py, 1, (int[]){1}); /* [n] */
    if ((st = sj_graph_status(cg)) != SJ_OK)
        goto done;
    int k = 0;
    ir_val args[3 + 2 * FE_LMM_MAX_TERMS + 2], outs[1];
    args[k++] = iv(ci.theta);
    args[k++] = iv(ci.y);
    args[k++] = iv(ci.x);
    for (int t = 0; t < m->nterm; t++)
        args[k++] = iv(ci.codes[t]);
    for (int t = 0; t < m->nterm; t++)
        args[k++] = iv(ci.zs[t]);
    args[k++] = iv(pyv);
    sj_value cols[64];
    if (ntheta > 64) {
        st = fe_ctx_failf(ctx, SJ_ERR_UNSUPPORTED,
                          "sj_lmm_fit: average information for more than 64 parameters");
        goto done;
    }
    double *e = calloc((size_t)ntheta, sizeof *e);
    if (!e) {
        st = fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "sj_lmm_fit: out of memory");
        goto done;
    }
    int64_t kt = ntheta;
    for (int i = 0; i < ntheta && st == SJ_OK; i++) {
        memset(e, 0, (size_t)ntheta * sizeof *e);
        e[i] = 1.0;
        args[k] = iv(sj_constant(cg, 1, &kt, e));
        if ((st = sj_graph_status(cg)) == SJ_OK &&
            (st = pass_inline(cg->ir, jac, args, outs)) != SJ_OK)
            st = fe_ctx_fail(ctx, &cg->ir->err);
        cols[i] = fe_value(cg, outs[0]); /* V̇_i P y: [n, 1] */
    }
    free(e);
    if (st != SJ_OK)
        goto done;
    sj_value uu = ntheta == 1 ? cols[0] : sj_concat(cg, ntheta, cols, 1); /* [n, k] */
    sj_value viu = sj_cholesky_solve(cg, l, uu);
    sj_value pu = sj_sub(cg, viu, sj_matmul(cg, vix, sj_cholesky_solve(cg, la, sj_matmul(cg, xt, viu))));
    sj_value ai = sj_matmul(cg, sj_mT(cg, uu), pu);
    ai = sj_mul(cg, sj_add(cg, ai, sj_mT(cg, ai)), sj_scalar(cg, 0.5));
    if ((st = sj_graph_status(cg)) != SJ_OK)
        goto done;
    st = sj_fn_create(cg, 1, &ai, out);
done:
    if (jac)
        ir_graph_free(jac);
    sj_graph_free(fg);
    sj_graph_free(cg);
    return st;
}
