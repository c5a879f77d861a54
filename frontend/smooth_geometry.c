/* Response geometry as graph builders (docs/smooth.md): compositions (rows
 * of an [n, D] matrix on the simplex) and points of the unit sphere (rows of
 * [n, D]).  Everything is elementwise ops, row sums and slices, so the maps
 * are differentiable and batch like any graph. */
#include <math.h>
#include <stdio.h>

#include "frontend/cov.h"
#include "frontend/handles.h"
#include "ir/graph.h"

/* x [n, D] with every row scaled by r [n]. */
static sj_value rowscale(sj_graph *g, sj_value x, sj_value r)
{
    return sj_mT(g, sj_mul(g, sj_mT(g, x), r));
}

static sj_value rowsum(sj_graph *g, sj_value x) { return sj_sum(g, x, 1, (int[]){1}); }
static sj_value rowdot(sj_graph *g, sj_value a, sj_value b) { return rowsum(g, sj_mul(g, a, b)); }

sj_value sj_closure(sj_graph *g, sj_value x) { return rowscale(g, x, sj_recip(g, rowsum(g, x))); }

sj_value sj_clr(sj_graph *g, sj_value x)
{
    sj_value l = sj_log(g, x);
    sj_value m = sj_mean(g, l, 1, (int[]){1});
    return sj_mT(g, sj_sub(g, sj_mT(g, l), m));
}

/* log(x_j / x_D), j < D: [n, D - 1]. */
sj_value sj_alr(sj_graph *g, sj_value x, int64_t d)
{
    sj_value l = sj_log(g, x);
    sj_value head = sj_slice(g, l, 1, 0, d - 1), last = sj_slice(g, l, 1, d - 1, d);
    sj_value lastv = rowsum(g, last); /* [n] */
    return sj_mT(g, sj_sub(g, sj_mT(g, head), lastv));
}

sj_value sj_alr_inv(sj_graph *g, sj_value y)
{
    sj_value e = sj_exp(g, y);
    sj_value one = sj_add(g, sj_mul(g, sj_slice(g, y, 1, 0, 1), sj_scalar(g, 0.0)),
                          sj_scalar(g, 1.0)); /* [n, 1] */
    sj_value parts[2] = {e, one};
    return sj_closure(g, sj_concat(g, 2, parts, 1));
}

/* cos θ and sin θ from t = tan(θ/2) (θ in [0, π)). */
static void cossin(sj_graph *g, sj_value theta, sj_value *c, sj_value *s)
{
    sj_value t = sj_tan(g, sj_mul(g, theta, sj_scalar(g, 0.5)));
    sj_value t2 = sj_square(g, t), den = sj_recip(g, sj_add(g, t2, sj_scalar(g, 1.0)));
    *c = sj_mul(g, sj_sub(g, sj_scalar(g, 1.0), t2), den);
    *s = sj_mul(g, sj_mul(g, t, sj_scalar(g, 2.0)), den);
}

/* exp_p(v) = cos|v| p + sin|v| v/|v| (|v| in (0, π)). */
sj_value sj_sphere_exp(sj_graph *g, sj_value p, sj_value v)
{
    sj_value nv = sj_sqrt(g, rowdot(g, v, v)), c, s;
    cossin(g, nv, &c, &s);
    return sj_add(g, rowscale(g, p, c), rowscale(g, v, sj_div(g, s, nv)));
}

/* log_p(x) = θ u/|u|, u = x − (p·x) p, θ = 2 atan(|x − p| / |x + p|). */
sj_value sj_sphere_log(sj_graph *g, sj_value p, sj_value x)
{
    sj_value u = sj_sub(g, x, rowscale(g, p, rowdot(g, p, x)));
    sj_value dm = sj_sub(g, x, p), dp = sj_add(g, x, p);
    sj_value theta = sj_mul(g, sj_scalar(g, 2.0),
                            sj_atan(g, sj_sqrt(g, sj_div(g, rowdot(g, dm, dm), rowdot(g, dp, dp)))));
    return rowscale(g, u, sj_div(g, theta, sj_sqrt(g, rowdot(g, u, u))));
}

/* The simplex with the Aitchison geometry: log_p(x) = clr x − clr p,
 * exp_p(v) = closure(exp(clr p + v)), and the Fréchet mean of the rows,
 * closed form: the closed geometric mean ([D]). */
sj_value sj_simplex_log(sj_graph *g, sj_value p, sj_value x)
{
    return sj_sub(g, sj_clr(g, x), sj_clr(g, p));
}

sj_value sj_simplex_exp(sj_graph *g, sj_value p, sj_value v)
{
    return sj_closure(g, sj_exp(g, sj_add(g, sj_clr(g, p), v)));
}

sj_value sj_simplex_mean(sj_graph *g, sj_value x)
{
    sj_value m = sj_exp(g, sj_mean(g, sj_log(g, x), 1, (int[]){0})); /* [D] */
    return sj_mul(g, m, sj_recip(g, sj_sum_all(g, m)));
}

/* 4 atan(√z)², smooth in z = |x − p|²/|x + p|² (the squared geodesic
 * distance): the series 4(z − 2z²/3 + 23z³/45) below 1e-6 (relative error
 * below 1e-18), so value, gradient and Hessian are finite and exact at
 * coincident points; the other branch sees a safe argument there. */
static sj_value dist2_of_ratio(sj_graph *g, sj_value z)
{
    sj_value small = sj_compare(g, SJ_LT, z, sj_scalar(g, 1e-6));
    sj_value zs = sj_select(g, small, sj_scalar(g, 1.0), z);
    sj_value at = sj_atan(g, sj_sqrt(g, zs));
    sj_value big = sj_mul(g, sj_scalar(g, 4.0), sj_square(g, at));
    sj_value z2 = sj_square(g, z);
    sj_value ser = sj_add(g, sj_sub(g, z, sj_mul(g, sj_scalar(g, 2.0 / 3.0), z2)),
                          sj_mul(g, sj_scalar(g, 23.0 / 45.0), sj_mul(g, z2, z)));
    return sj_select(g, small, sj_mul(g, sj_scalar(g, 4.0), ser), big);
}

/* The Fréchet function of p = θ/|θ| plus (|θ|² − 1)²: mean_i d(p, x_i)²
 * is homogeneous of degree 0 in θ, the second term fixes the radius, so the
 * minimiser is the unit Fréchet mean and the Hessian there is positive
 * definite (the radial direction has curvature 8). */
static sj_value sphere_objective(sj_graph *g, sj_value th, sj_value x)
{
    sj_value r2 = sj_sum_all(g, sj_square(g, th));
    sj_value p = sj_mul(g, th, sj_recip(g, sj_sqrt(g, r2))); /* [D] */
    sj_value dm = sj_sub(g, x, p), dp = sj_add(g, x, p);     /* [n, D] */
    sj_value z = sj_div(g, rowdot(g, dm, dm), rowdot(g, dp, dp));
    sj_value f = sj_mean(g, dist2_of_ratio(g, z), 1, (int[]){0});
    return sj_add(g, f, sj_square(g, sj_sub(g, r2, sj_scalar(g, 1.0))));
}

sj_status sj_sphere_mean(sj_graph *g, sj_value x, sj_value *mean, sj_value *converged)
{
    if (mean)
        *mean = SJ_INVALID;
    if (converged)
        *converged = SJ_INVALID;
    if (!fe_graph_valid(g))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!ir_graph_ok(g->ir))
        return g->ir->err.status;
    if (!mean)
        return fe_ctx_failf(g->ctx, SJ_ERR_INVALID_ARGUMENT, "sj_sphere_mean: mean is NULL");
    if (x == SJ_INVALID)
        return fe_ctx_failf(g->ctx, SJ_ERR_INVALID_ARGUMENT, "sj_sphere_mean: x is SJ_INVALID");
    /* the start: the normalised extrinsic mean (NaN for antipodal data, which
     * the fit reports as an objective that is not finite at its start) */
    sj_value m = sj_sum(g, x, 1, (int[]){0});
    sj_value th0 = sj_mul(g, m, sj_recip(g, sj_sqrt(g, sj_sum_all(g, sj_square(g, m)))));
    sj_status st = sj_graph_status(g);
    if (st != SJ_OK)
        return st;
    ir_val xi = fe_cov_arg(g, x, "sj_sphere_mean", "x");
    const ir_shape *xs = xi == IR_NONE ? NULL : ir_shape_of(g->ir, xi);
    if (!xs || xs->rank != 2) {
        ir_fail(&g->ir->err, SJ_ERR_SHAPE, "sj_sphere_mean: x must be [n, D]");
        return fe_ctx_fail(g->ctx, &g->ir->err);
    }
    char dd[24];
    const char *dname = "D";
    if (IR_DIM_IS_SIZE(xs->dim[1])) {
        snprintf(dd, sizeof dd, "%lld", (long long)xs->dim[1]);
        dname = dd;
    }
    sj_graph *og = NULL;
    sj_fn *obj = NULL;
    if ((st = sj_graph_create(g->ctx, &og)) == SJ_OK) {
        sj_value th = sj_input(og, "theta", 1, (const char *[]){dname});
        sj_value xv = sj_input(og, "x", 2, (const char *[]){"n", dname});
        sj_value f = sphere_objective(og, th, xv);
        st = sj_graph_status(og);
        if (st == SJ_OK)
            st = sj_fn_create(og, 1, &f, &obj);
    }
    sj_value th = SJ_INVALID, conv = SJ_INVALID;
    if (st == SJ_OK)
        st = sj_fit_argmin(g, obj, NULL, th0, 1, &x, 100, SJ_FIT_GRAD_NORM, 1e-11, &th, NULL,
                           &conv);
    sj_fn_free(obj);
    sj_graph_free(og);
    if (st != SJ_OK)
        return st;
    *mean = sj_mul(g, th, sj_recip(g, sj_sqrt(g, sj_sum_all(g, sj_square(g, th)))));
    if (converged)
        *converged = conv;
    return sj_graph_status(g);
}
