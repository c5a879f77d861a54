/* Response geometry as graph builders (docs/smooth.md): compositions (rows
 * of an [n, D] matrix on the simplex) and points of the unit sphere (rows of
 * [n, D]).  Everything is elementwise ops, row sums and slices, so the maps
 * are differentiable and batch like any graph. */
#include <math.h>

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
