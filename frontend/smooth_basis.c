/* B-spline bases as graph builders (docs/smooth.md): the Cox–de Boor
 * recursion written with elementwise ops over the positions t, so the basis
 * and its derivatives are differentiable with respect to t (the interval
 * indicators are comparisons, whose derivative is zero; the polynomial pieces
 * carry the derivative).  Knot placement helpers (mgcv's P-spline knots,
 * quantile knots) are plain C. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/handles.h"
#include "ir/alloc.h"
#include "ir/graph.h"

/* Records the first error on the graph (later builder calls pass it on). */
static sj_value reject(sj_graph *g, const char *fn, const char *msg)
{
    if (fe_graph_valid(g) && ir_graph_ok(g->ir)) {
        ir_fail(&g->ir->err, SJ_ERR_INVALID_ARGUMENT, "%s: %s", fn, msg);
        fe_ctx_fail(g->ctx, &g->ir->err);
    }
    return SJ_INVALID;
}

#define KNOTS_MSG "knots must be finite and non-decreasing, nknots >= degree + 2, " \
                  "0 <= degree <= 20, deriv >= 0"

/* Row vector constant [c]. */
static sj_value row(sj_graph *g, int64_t c, const double *v)
{
    return sj_constant(g, 1, &c, v);
}

/* t [n] as [n, c]. */
static sj_value spread(sj_graph *g, sj_value t, int64_t c)
{
    double *one = ir_malloc((size_t)(c ? c : 1) * sizeof *one);
    if (!one)
        return SJ_INVALID;
    for (int64_t i = 0; i < c; i++)
        one[i] = 1.0;
    sj_value r = sj_outer(g, t, row(g, c, one));
    ir_free(one);
    return r;
}

/* 1/x, or 0 where x == 0 (the 0/0 = 0 convention of de Boor). */
static double inv0(double x) { return x == 0.0 ? 0.0 : 1.0 / x; }

/* The degree-p basis (deriv-th derivative) over knots k[0..nk-1]:
 * [n, nk - p - 1]. */
static sj_value basis(sj_graph *g, sj_value t, int64_t nk, const double *k, int p, int deriv,
                      double *tmp)
{
    if (p == 0) {
        int64_t c = nk - 1;
        /* [k_i, k_{i+1}), the last nonempty interval closed on the right */
        int64_t last = -1;
        for (int64_t i = 0; i < c; i++)
            if (k[i] < k[i + 1])
                last = i;
        sj_value tt = spread(g, t, c);
        for (int64_t i = 0; i < c; i++)
            tmp[i] = k[i];
        sj_value lo = sj_compare(g, SJ_GE, tt, row(g, c, tmp));
        for (int64_t i = 0; i < c; i++)
            tmp[i] = k[i + 1];
        /* right end: t <= k_{last+1} for the last interval */
        sj_value hi = sj_compare(g, SJ_LT, tt, row(g, c, tmp));
        if (last >= 0) {
            for (int64_t i = 0; i < c; i++)
                tmp[i] = i == last ? 1.0 : 0.0;
            sj_value eq = sj_mul(g, sj_compare(g, SJ_LE, tt, sj_scalar(g, k[last + 1])),
                                 row(g, c, tmp));
            hi = sj_max(g, hi, eq);
        }
        return sj_mul(g, lo, hi);
    }
    int64_t c = nk - p - 1;
    sj_value prev = basis(g, t, nk, k, p - 1, deriv > 0 ? deriv - 1 : 0, tmp);
    sj_value left = sj_slice(g, prev, 1, 0, c), right = sj_slice(g, prev, 1, 1, c + 1);
    if (deriv > 0) {
        /* B'_{i,p} = p (B_{i,p-1} / (k_{i+p} - k_i) - B_{i+1,p-1} / (k_{i+p+1} - k_{i+1})) */
        for (int64_t i = 0; i < c; i++)
            tmp[i] = p * inv0(k[i + p] - k[i]);
        sj_value a = sj_mul(g, left, row(g, c, tmp));
        for (int64_t i = 0; i < c; i++)
            tmp[i] = p * inv0(k[i + p + 1] - k[i + 1]);
        return sj_sub(g, a, sj_mul(g, right, row(g, c, tmp)));
    }
    sj_value tt = spread(g, t, c);
    for (int64_t i = 0; i < c; i++)
        tmp[i] = k[i];
    sj_value wl = sj_sub(g, tt, row(g, c, tmp));
    for (int64_t i = 0; i < c; i++)
        tmp[i] = inv0(k[i + p] - k[i]);
    wl = sj_mul(g, wl, row(g, c, tmp));
    for (int64_t i = 0; i < c; i++)
        tmp[i] = k[i + p + 1];
    sj_value wr = sj_sub(g, row(g, c, tmp), tt);
    for (int64_t i = 0; i < c; i++)
        tmp[i] = inv0(k[i + p + 1] - k[i + 1]);
    wr = sj_mul(g, wr, row(g, c, tmp));
    return sj_add(g, sj_mul(g, wl, left), sj_mul(g, wr, right));
}

static int bad_knots(size_t nknots, const double *knots, int degree)
{
    if (!knots || degree < 0 || degree > 20 || nknots < (size_t)degree + 2 || nknots > 100000)
        return 1;
    for (size_t i = 0; i < nknots; i++)
        if (!isfinite(knots[i]) || (i && knots[i] < knots[i - 1]))
            return 1;
    return 0;
}

sj_value sj_bspline_basis(sj_graph *g, sj_value t, size_t nknots, const double *knots,
                          int degree, int deriv)
{
    if (!g)
        return SJ_INVALID;
    if (bad_knots(nknots, knots, degree) || deriv < 0)
        return reject(g, "sj_bspline_basis", KNOTS_MSG);
    if (deriv > degree) {
        /* identically zero */
        sj_value b = sj_bspline_basis(g, t, nknots, knots, degree, 0);
        return sj_mul(g, b, sj_scalar(g, 0.0));
    }
    double *tmp = ir_malloc(nknots * sizeof *tmp);
    if (!tmp)
        return SJ_INVALID;
    sj_value r = basis(g, t, (int64_t)nknots, knots, degree, deriv, tmp);
    ir_free(tmp);
    return r;
}

sj_value sj_bspline_basis_periodic(sj_graph *g, sj_value t, size_t nknots, const double *knots,
                                   int degree, int deriv)
{
    if (!g)
        return SJ_INVALID;
    if (bad_knots(nknots, knots, 0) || nknots < 2 || degree < 0 || degree > 20 ||
        nknots - 1 < (size_t)degree + 1 || knots[nknots - 1] <= knots[0])
        return reject(g, "sj_bspline_basis_periodic",
                      "knots must be finite, non-decreasing, span a positive period and "
                      "give at least degree + 1 intervals");
    /* extend the knots periodically by `degree` on each side */
    size_t m = nknots - 1, p = (size_t)degree, ne = nknots + 2 * p;
    double period = knots[m] - knots[0];
    double *k = ir_malloc(ne * sizeof *k);
    if (!k)
        return SJ_INVALID;
    for (size_t i = 0; i < p; i++) {
        k[p - 1 - i] = knots[m - 1 - i] - period;
        k[p + nknots + i] = knots[1 + i] + period;
    }
    memcpy(k + p, knots, nknots * sizeof *k);
    sj_value full = sj_bspline_basis(g, t, ne, k, degree, deriv); /* [n, m + p] */
    ir_free(k);
    if (full == SJ_INVALID || p == 0)
        return full;
    /* wrap: column j (j < p) gathers column j + m */
    sj_value head = sj_add(g, sj_slice(g, full, 1, 0, (int64_t)p),
                           sj_slice(g, full, 1, (int64_t)m, (int64_t)(m + p)));
    sj_value parts[2] = {head, sj_slice(g, full, 1, (int64_t)p, (int64_t)m)};
    return sj_concat(g, 2, parts, 1);
}

size_t sj_pspline_knots(const double *x, size_t n, int k, int degree, double *knots)
{
    if (!x || n == 0 || !knots || degree < 0 || k <= degree)
        return 0;
    /* mgcv smooth.construct.ps.smooth.spec, m[1] = degree - 1 */
    int nk = k - degree + 1; /* interior knots incl. the two ends */
    if (nk < 2)
        return 0;
    double xl = x[0], xu = x[0];
    for (size_t i = 1; i < n; i++) {
        xl = fmin(xl, x[i]);
        xu = fmax(xu, x[i]);
    }
    double xr = xu - xl;
    xl -= xr * 0.001;
    xu += xr * 0.001;
    double dx = (xu - xl) / (nk - 1);
    size_t total = (size_t)nk + 2 * (size_t)degree;
    double a = xl - dx * degree, b = xu + dx * degree;
    for (size_t i = 0; i < total; i++)
        knots[i] = a + (b - a) * (double)i / (double)(total - 1);
    return total;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

size_t sj_quantile_knots(const double *x, size_t n, int ninterior, int degree, double *knots)
{
    if (!x || n == 0 || !knots || degree < 0 || ninterior < 0)
        return 0;
    double *s = ir_malloc(n * sizeof *s);
    if (!s)
        return 0;
    memcpy(s, x, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    size_t j = 0;
    for (int i = 0; i <= degree; i++)
        knots[j++] = s[0];
    for (int i = 1; i <= ninterior; i++) {
        /* R's quantile type 7 at i / (ninterior + 1) */
        double h = (double)(n - 1) * i / (ninterior + 1);
        size_t lo = (size_t)floor(h);
        double f = h - (double)lo;
        knots[j++] = lo + 1 < n ? s[lo] + f * (s[lo + 1] - s[lo]) : s[lo];
    }
    for (int i = 0; i <= degree; i++)
        knots[j++] = s[n - 1];
    ir_free(s);
    return j;
}

sj_status sj_difference_penalty(int m, int order, double *s)
{
    if (m <= 0 || order < 0 || order >= m || !s)
        return SJ_ERR_INVALID_ARGUMENT;
    /* D: (m - order) x m, rows the order-th differences; S = Dᵀ D */
    int r = m - order;
    double *d = ir_malloc((size_t)r * (size_t)m * sizeof *d), *c = ir_malloc((size_t)(order + 1) * sizeof *c);
    if (!d || !c) {
        ir_free(d);
        ir_free(c);
        return SJ_ERR_OUT_OF_MEMORY;
    }
    /* binomial coefficients with alternating signs: Δ^o e_i */
    c[0] = 1;
    for (int i = 1; i <= order; i++) {
        c[i] = 0;
        for (int j = i; j > 0; j--)
            c[j] = c[j] - c[j - 1];
        /* c[0] unchanged (1) */
    }
    /* (Δ^o β)_i = Σ_j c_j β_{i+o-j}; with the recursion above c = (1, -1, ...) in
     * reversed order of powers; build rows directly */
    memset(d, 0, (size_t)r * (size_t)m * sizeof *d);
    for (int i = 0; i < r; i++)
        for (int j = 0; j <= order; j++)
            d[(size_t)i * m + i + order - j] = c[j];
    for (int a = 0; a < m; a++)
        for (int b = 0; b < m; b++) {
            double v = 0;
            for (int i = 0; i < r; i++)
                v += d[(size_t)i * m + a] * d[(size_t)i * m + b];
            s[(size_t)a * m + b] = v;
        }
    ir_free(d);
    ir_free(c);
    return SJ_OK;
}

sj_status sj_difference_penalty_null_space(int m, int order, double *z)
{
    if (m <= 0 || order < 0 || order >= m || !z)
        return SJ_ERR_INVALID_ARGUMENT;
    /* polynomials of degree < order in the coefficient index, orthonormalised
     * (Gram–Schmidt): z is m x order, column j the j-th basis vector */
    for (int j = 0; j < order; j++) {
        for (int i = 0; i < m; i++)
            z[(size_t)i * order + j] = pow((double)i - (m - 1) / 2.0, j);
        for (int l = 0; l < j; l++) {
            double dot = 0;
            for (int i = 0; i < m; i++)
                dot += z[(size_t)i * order + j] * z[(size_t)i * order + l];
            for (int i = 0; i < m; i++)
                z[(size_t)i * order + j] -= dot * z[(size_t)i * order + l];
        }
        double nrm = 0;
        for (int i = 0; i < m; i++)
            nrm += z[(size_t)i * order + j] * z[(size_t)i * order + j];
        nrm = sqrt(nrm);
        for (int i = 0; i < m; i++)
            z[(size_t)i * order + j] /= nrm;
    }
    return SJ_OK;
}
