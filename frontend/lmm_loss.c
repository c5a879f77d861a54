/* Gaussian losses of a linear mixed model y ~ N(Xβ, V) with V given as a
 * dense matrix (usually built by sj_cov_build): the REML criterion and the
 * ML deviance.  Both are ordinary graphs, so they are differentiated,
 * batched and compiled like any other value.
 *
 *   L = chol(V),  A = XᵀV⁻¹X,  b = XᵀV⁻¹y,  β̂ = A⁻¹b,
 *   yᵀPy = yᵀV⁻¹y − bᵀβ̂                      (= r̂ᵀV⁻¹r̂, r̂ = y − Xβ̂)
 *   −2ℓ_R = log|V| + log|A| + yᵀPy + (n − p) log 2π
 *   −2ℓ   = log|V| + yᵀPy + n log 2π
 *
 * (Harville 1977; lme4's "REML criterion at convergence" is −2ℓ_R at the
 * optimum, with σ² profiled: equal to ours at the same variance
 * components — Bates et al. 2015, J. Stat. Softw. 67(1), eqs. 34 and 41.)
 * log-determinants are 2 Σ log diag of the Cholesky factors, so V and A
 * are factorised once each. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "frontend/cov.h"

/* The size of axis `axis` of x as a scalar value: a constant when known,
 * else the sum of a vector of ones of that size. */
static sj_value count(sj_graph *g, ir_val x, int axis)
{
    int64_t d = ir_shape_of(g->ir, x)->dim[axis];
    if (IR_DIM_IS_SIZE(d))
        return sj_scalar(g, (double)d);
    if (IR_DIM_IS_SYM(d)) {
        ir_shape s = {.rank = 1, .dim = {d}};
        ir_val one = ir_scalar(g->ir, 1.0);
        ir_val ones = one == IR_NONE ? IR_NONE : ir_broadcast_trailing(g->ir, one, &s);
        return sj_sum_all(g, fe_value(g, ones));
    }
    /* A derived size: count through a comparison that is 1 everywhere
     * (x == x; x holding NaN makes the loss NaN anyway): summing over the
     * other axis and taking the largest entry gives the size. */
    sj_value xv = fe_value(g, x);
    sj_value ones = sj_compare(g, SJ_EQ, xv, xv);
    if (ir_shape_of(g->ir, x)->rank == 1)
        return sj_sum_all(g, ones);
    int all = 0;
    return sj_reduce_max(g, sj_sum(g, ones, 1, &axis), 1, &all);
}

typedef struct parts {
    sj_value logdet_v, logdet_a, ypy, n, p;
} parts;

static sj_value logdet_chol(sj_graph *g, sj_value l)
{
    return sj_mul(g, sj_scalar(g, 2.0), sj_sum_all(g, sj_log(g, sj_diag(g, l))));
}

/* Checks the shapes and emits the common parts; -1 on error (recorded). */
static int common(sj_graph *g, sj_value v, sj_value x, sj_value y, const char *fn, parts *out)
{
    ir_val iv = fe_cov_arg(g, v, fn, "V");
    ir_val ix = iv == IR_NONE ? IR_NONE : fe_cov_arg(g, x, fn, "X");
    ir_val iy = ix == IR_NONE ? IR_NONE : fe_cov_arg(g, y, fn, "y");
    if (iy == IR_NONE)
        return -1;
    const ir_shape *sv = ir_shape_of(g->ir, iv), *sx = ir_shape_of(g->ir, ix),
                   *sy = ir_shape_of(g->ir, iy);
    char a[128], b[128], c[128];
    ir_shape_str(g->ir, sv, a, sizeof a);
    ir_shape_str(g->ir, sx, b, sizeof b);
    ir_shape_str(g->ir, sy, c, sizeof c);
    const char *bad = NULL;
    if (sv->rank != 2 || sx->rank != 2 || sy->rank != 1)
        bad = "V must be a matrix (n × n), X a matrix (n × p) and y a vector (n)";
    else if (ir_dim_conflict(sv->dim[0], sv->dim[1]))
        bad = "V is not square";
    else if (ir_dim_conflict(sv->dim[0], sx->dim[0]) || ir_dim_conflict(sv->dim[0], sy->dim[0]))
        bad = "V, X and y have different numbers of rows";
    else if (sx->dim[1] == 0)
        bad = "X has no columns";
    if (bad) {
        fe_cov_fail(g, SJ_ERR_SHAPE, "%s: %s: V is %s, X is %s, y is %s", fn, bad, a, b, c);
        return -1;
    }
    sj_value l = sj_cholesky(g, v);
    sj_value vinv_x = sj_cholesky_solve(g, l, x);
    sj_value vinv_y = sj_cholesky_solve(g, l, y);
    sj_value xt = sj_mT(g, x);
    sj_value amat = sj_matmul(g, xt, vinv_x);
    sj_value bvec = sj_matmul(g, xt, vinv_y);
    sj_value la = sj_cholesky(g, amat);
    sj_value beta = sj_cholesky_solve(g, la, bvec);
    out->ypy = sj_sub(g, sj_sum_all(g, sj_mul(g, y, vinv_y)), sj_sum_all(g, sj_mul(g, bvec, beta)));
    out->logdet_v = logdet_chol(g, l);
    out->logdet_a = logdet_chol(g, la);
    out->n = count(g, ix, 0);
    out->p = count(g, ix, 1);
    if (!ir_graph_ok(g->ir)) {
        fe_cov_error(g, fn);
        return -1;
    }
    return 0;
}

static const double LOG_2PI = 1.8378770664093454835606594728112;

sj_value sj_reml_criterion(sj_graph *g, sj_value v, sj_value x, sj_value y)
{
    const char *fn = "sj_reml_criterion";
    if (!fe_cov_graph_ok(g))
        return SJ_INVALID;
    parts p;
    if (common(g, v, x, y, fn, &p) != 0)
        return SJ_INVALID;
    sj_value c = sj_mul(g, sj_sub(g, p.n, p.p), sj_scalar(g, LOG_2PI));
    sj_value r = sj_add(g, sj_add(g, sj_add(g, p.logdet_v, p.logdet_a), p.ypy), c);
    if (r == SJ_INVALID)
        fe_cov_error(g, fn);
    return r;
}

sj_value sj_ml_deviance(sj_graph *g, sj_value v, sj_value x, sj_value y)
{
    const char *fn = "sj_ml_deviance";
    if (!fe_cov_graph_ok(g))
        return SJ_INVALID;
    parts p;
    if (common(g, v, x, y, fn, &p) != 0)
        return SJ_INVALID;
    sj_value c = sj_mul(g, p.n, sj_scalar(g, LOG_2PI));
    sj_value r = sj_add(g, sj_add(g, p.logdet_v, p.ypy), c);
    if (r == SJ_INVALID)
        fe_cov_error(g, fn);
    return r;
}
