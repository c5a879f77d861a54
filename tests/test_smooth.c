/* Penalised smoothing (frontend/smooth_*.c, docs/smooth.md):
 *
 *   - B-spline bases: partition of unity (plain and periodic), the
 *     derivative basis and the gradient in t against central differences,
 *     native code against the evaluator;
 *   - mgcv's P-spline knots and difference penalty (with its null space);
 *   - Gaussian REML against mgcv::gam(y ~ s(x, bs = "ps"), method = "REML")
 *     (data/smooth_golden.h, made by data/make_smooth_golden.R): λ, fitted
 *     values and total EDF within 1e-5 relative;
 *   - columns sharing λ, batches, and the degenerate cases (penalty of rank
 *     0, XᵀWX singular) with their status and message. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "data/smooth_golden.h"

/* Basis [n, ncol] (or its deriv-th derivative) at x through the evaluator
 * and native code (which must agree to 1e-13). */
static void basis_at(sj_ctx *ctx, const double *x, int64_t n, const double *knots, size_t nk,
                     int degree, int deriv, int periodic, double *out, int64_t ncol)
{
    sj_graph *g;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value t = sj_input(g, "t", 1, (const char *[]){"n"});
    sj_value b = periodic ? sj_bspline_basis_periodic(g, t, nk, knots, degree, deriv)
                          : sj_bspline_basis(g, t, nk, knots, degree, deriv);
    assert_true(b != SJ_INVALID);
    sj_fn *fn;
    assert_ok(sj_fn_create(g, 1, &b, &fn), ctx);
    const int64_t *dims[1] = {&n};
    sj_compiled *c;
    assert_ok(sj_fn_specialize(fn, 1, (int[]){1}, dims, &c), ctx);
    assert_ok(sj_compiled_eval(c, (const double *[]){x}, (double *[]){out}), ctx);
    sj_compiled_free(c);
    double *nat = malloc((size_t)(n * ncol) * sizeof *nat);
    assert_ok(sj_fn_call(fn, 1, (int[]){1}, dims, (const double *[]){x}, (double *[]){nat}), ctx);
    assert_close(nat, out, (size_t)(n * ncol), 1e-13, 1e-13);
    free(nat);
    sj_fn_free(fn);
    sj_graph_free(g);
}

static void test_partition_of_unity(void **state)
{
    test_graph *e = *state;
    double x[50], knots[32], b[50 * 12];
    for (int i = 0; i < 50; i++)
        x[i] = i / 49.0;
    for (int degree = 0; degree <= 4; degree++) {
        size_t nk = sj_pspline_knots(x, 50, 8 + degree, degree, knots);
        assert_int_equal(nk, 8 + 2 * degree + 1);
        basis_at(e->ctx, x, 50, knots, nk, degree, 0, 0, b, 8 + degree);
        for (int i = 0; i < 50; i++) {
            double s = 0;
            for (int j = 0; j < 8 + degree; j++) {
                s += b[i * (8 + degree) + j];
                assert_true(b[i * (8 + degree) + j] >= -1e-15);
            }
            assert_close(&s, ((double[]){1.0}), 1, 1e-13, 0);
        }
    }
    /* quantile knots: the boundary knots repeated, still a partition of 1
     * up to and including max x */
    size_t nk = sj_quantile_knots(x, 50, 4, 3, knots);
    assert_int_equal(nk, 12);
    basis_at(e->ctx, x, 50, knots, nk, 3, 0, 0, b, 8);
    for (int i = 0; i < 50; i++) {
        double s = 0;
        for (int j = 0; j < 8; j++)
            s += b[i * 8 + j];
        assert_close(&s, ((double[]){1.0}), 1, 1e-13, 0);
    }
    /* periodic on [0, 1): 6 columns; the wrapped basis sums to 1 and equals
     * itself one period on */
    double pk[7] = {0, 1.0 / 6, 2.0 / 6, 3.0 / 6, 4.0 / 6, 5.0 / 6, 1};
    double xp[49];
    for (int i = 0; i < 49; i++)
        xp[i] = i / 49.0;
    basis_at(e->ctx, xp, 49, pk, 7, 3, 0, 1, b, 6);
    for (int i = 0; i < 49; i++) {
        double s = 0;
        for (int j = 0; j < 6; j++)
            s += b[i * 6 + j];
        assert_close(&s, ((double[]){1.0}), 1, 1e-13, 0);
    }
    /* periodicity of the first derivative: value just below 1 ≈ value at 0 */
    double ends[2] = {0.0, 1.0 - 1e-9}, d1[12];
    basis_at(e->ctx, ends, 2, pk, 7, 3, 1, 1, d1, 6);
    assert_close(d1 + 6, d1, 6, 1e-6, 1e-6);
}

/* d/dt of the basis: the derivative basis against central differences, and
 * the gradient of Σ C ⊙ B(t) through sj_grad. */
static void test_basis_derivatives(void **state)
{
    test_graph *e = *state;
    double x[20], knots[20], xp[20], xm[20];
    for (int i = 0; i < 20; i++)
        x[i] = 0.03 + 0.9 * i / 19.0 + 0.001 * sin(i);
    size_t nk = sj_pspline_knots(x, 20, 9, 3, knots);
    double b1[180], bp[180], bm[180], fd[180];
    const double h = 1e-6;
    for (int i = 0; i < 20; i++)
        xp[i] = x[i] + h, xm[i] = x[i] - h;
    for (int deriv = 1; deriv <= 2; deriv++) {
        basis_at(e->ctx, x, 20, knots, nk, 3, deriv, 0, b1, 9);
        basis_at(e->ctx, xp, 20, knots, nk, 3, deriv - 1, 0, bp, 9);
        basis_at(e->ctx, xm, 20, knots, nk, 3, deriv - 1, 0, bm, 9);
        for (int i = 0; i < 180; i++)
            fd[i] = (bp[i] - bm[i]) / (2 * h);
        assert_close(b1, fd, 180, 1e-5, 1e-4);
    }
    /* sj_grad of Σ C ⊙ B(t) in t equals row sums of C ⊙ B'(t) */
    sj_graph *g;
    assert_ok(sj_graph_create(e->ctx, &g), e->ctx);
    sj_value t = sj_input(g, "t", 1, (const char *[]){"n"});
    double cw[180];
    for (int i = 0; i < 180; i++)
        cw[i] = cos(0.37 * i);
    sj_value cc = sj_constant(g, 2, (int64_t[]){20, 9}, cw);
    sj_value f = sj_sum_all(g, sj_mul(g, cc, sj_bspline_basis(g, t, nk, knots, 3, 0)));
    sj_fn *fn, *gr;
    assert_ok(sj_fn_create(g, 1, &f, &fn), e->ctx);
    assert_ok(sj_grad(fn, 0, 1, (int[]){0}, &gr), e->ctx);
    int64_t n = 20;
    const int64_t *dims[1] = {&n};
    double got[20], want[20];
    assert_ok(sj_fn_call(gr, 1, (int[]){1}, dims, (const double *[]){x}, (double *[]){got}),
              e->ctx);
    basis_at(e->ctx, x, 20, knots, nk, 3, 1, 0, b1, 9);
    for (int i = 0; i < 20; i++) {
        want[i] = 0;
        for (int j = 0; j < 9; j++)
            want[i] += cw[i * 9 + j] * b1[i * 9 + j];
    }
    assert_close(got, want, 20, 1e-12, 1e-12);
    sj_fn_free(gr);
    sj_fn_free(fn);
    sj_graph_free(g);
}

/* Bad knots: SJ_INVALID and the graph's status names the builder. */
static void test_basis_errors(void **state)
{
    test_graph *e = *state;
    sj_value t = sj_input(e->g, "t", 1, (const char *[]){"n"});
    static const double down[5] = {0, 1, 0.5, 2, 3};
    assert_true(sj_bspline_basis(e->g, t, 5, down, 1, 0) == SJ_INVALID);
    assert_int_equal(sj_graph_status(e->g), SJ_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(sj_ctx_last_error(e->ctx), "sj_bspline_basis"));
}

static void test_penalty(void **state)
{
    (void)state;
    double s[25], z[10];
    assert_int_equal(sj_difference_penalty(5, 2, s), SJ_OK);
    /* D₂ᵀD₂ for m = 5 (as diff(diff(diag(5))) in R) */
    static const double want[25] = {1, -2, 1, 0, 0, -2, 5, -4, 1, 0, 1, -4, 6, -4, 1,
                                    0, 1, -4, 5, -2, 0, 0, 1, -2, 1};
    assert_close(s, want, 25, 0, 0);
    assert_int_equal(sj_difference_penalty_null_space(5, 2, z), SJ_OK);
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 5; i++) {
            double v = 0;
            for (int k = 0; k < 5; k++)
                v += s[i * 5 + k] * z[k * 2 + j];
            assert_true(fabs(v) < 1e-12);
        }
    double zz = 0;
    for (int k = 0; k < 5; k++)
        zz += z[k * 2] * z[k * 2 + 1];
    assert_true(fabs(zz) < 1e-12);
    assert_int_equal(sj_difference_penalty(3, 3, s), SJ_ERR_INVALID_ARGUMENT);
}

/* The design of a golden case through sj_bspline_basis. */
static double *golden_design(sj_ctx *ctx, const struct smooth_golden *c)
{
    double *xm = malloc((size_t)c->n * (size_t)c->k * sizeof *xm);
    basis_at(ctx, c->x, c->n, c->knots, (size_t)(c->k + 4), 3, 0, 0, xm, c->k);
    return xm;
}

static void test_reml_vs_mgcv(void **state)
{
    test_graph *e = *state;
    for (int ci = 0; ci < SMOOTH_GOLDEN_N; ci++) {
        const struct smooth_golden *c = &smooth_golden[ci];
        double knots[64];
        /* our knot placement is mgcv's */
        assert_int_equal(sj_pspline_knots(c->x, (size_t)c->n, c->k, 3, knots), (size_t)c->k + 4);
        assert_close(knots, c->knots, (size_t)c->k + 4, 1e-14, 1e-15);
        double *xm = golden_design(e->ctx, c);
        double *s = malloc((size_t)(c->k * c->k) * sizeof *s);
        double *fit = malloc((size_t)c->n * sizeof *fit), beta[64];
        assert_int_equal(sj_difference_penalty(c->k, 2, s), SJ_OK);
        sj_smooth_reml_result r;
        assert_ok(sj_smooth_reml(e->ctx, (size_t)c->n, (size_t)c->k, 1, xm, c->y, s, c->w, beta,
                                 fit, &r),
                  e->ctx);
        print_message("%-9s lambda %.10g (mgcv %.10g, rel %.1e)  edf %.8g (mgcv %.8g)  "
                      "grad %.1e  iters %d\n",
                      c->name, r.lambda, c->lambda, fabs(r.lambda / c->lambda - 1), r.edf, c->edf,
                      r.gradient, r.iterations);
        assert_true(r.converged);
        assert_false(r.at_bound);
        assert_int_equal(r.rank, c->k - 2);
        assert_close(&r.lambda, &c->lambda, 1, 1e-5, 0);
        assert_close(&r.edf, &c->edf, 1, 1e-5, 0);
        assert_close(fit, c->fitted, (size_t)c->n, 1e-5, 1e-7);
        free(xm);
        free(s);
        free(fit);
    }
}

/* Columns share λ, each with its own σ²: [y, 3y + 1ᵀ-free shift] gives the
 * λ of y alone (scaling a column moves its criterion by a constant);
 * batches equal their items. */
static void test_reml_columns_and_batch(void **state)
{
    test_graph *e = *state;
    const struct smooth_golden *c = &smooth_golden[0];
    int n = c->n, k = c->k;
    double *xm = golden_design(e->ctx, c), s[400];
    sj_difference_penalty(k, 2, s);
    double *y2 = malloc((size_t)n * 2 * sizeof *y2);
    for (int i = 0; i < n; i++)
        y2[2 * i] = c->y[i], y2[2 * i + 1] = 3 * c->y[i];
    sj_smooth_reml_result r1, r2;
    assert_ok(sj_smooth_reml(e->ctx, (size_t)n, (size_t)k, 1, xm, c->y, s, NULL, NULL, NULL, &r1),
              e->ctx);
    assert_ok(sj_smooth_reml(e->ctx, (size_t)n, (size_t)k, 2, xm, y2, s, NULL, NULL, NULL, &r2),
              e->ctx);
    assert_close(&r2.lambda, &r1.lambda, 1, 1e-8, 0);
    /* batch of 3: the golden case, its y reversed, its y scaled */
    double *xb = malloc((size_t)(3 * n * k) * sizeof *xb), *yb = malloc((size_t)(3 * n) * sizeof *yb);
    for (int b = 0; b < 3; b++) {
        memcpy(xb + (size_t)(b * n * k), xm, (size_t)(n * k) * sizeof *xb);
        for (int i = 0; i < n; i++)
            yb[b * n + i] = b == 1 ? c->y[n - 1 - i] : (b == 2 ? 2 * c->y[i] : c->y[i]);
    }
    sj_smooth_reml_result rb[3], ri;
    double *fb = malloc((size_t)(3 * n) * sizeof *fb), *fi = malloc((size_t)n * sizeof *fi);
    assert_ok(sj_smooth_reml_batch(e->ctx, 3, (size_t)n, (size_t)k, 1, xb, yb, s, NULL, NULL, fb,
                                   rb),
              e->ctx);
    for (int b = 0; b < 3; b++) {
        assert_ok(sj_smooth_reml(e->ctx, (size_t)n, (size_t)k, 1, xm, yb + b * n, s, NULL, NULL,
                                 fi, &ri),
                  e->ctx);
        /* the batch runs BLAS single-threaded on the pool: rounding differs */
        assert_close(&rb[b].lambda, &ri.lambda, 1, 1e-10, 0);
        assert_close(fb + b * n, fi, (size_t)n, 1e-10, 1e-12);
    }
    assert_close(&rb[2].lambda, &rb[0].lambda, 1, 1e-8, 0);
    free(xb), free(yb), free(fb), free(fi), free(y2), free(xm);
}

/* f = Σ c ⊙ fitted of the REML fit on the "weighted" golden case. */
static double fit_objective(sj_ctx *ctx, int n, int k, const double *xm, const double *y,
                            const double *s, const double *w, const double *c)
{
    double *fit = malloc((size_t)n * sizeof *fit);
    sj_smooth_reml_result r;
    assert_ok(sj_smooth_reml(ctx, (size_t)n, (size_t)k, 1, xm, y, s, w, NULL, fit, &r), ctx);
    double f = 0;
    for (int i = 0; i < n; i++)
        f += c[i] * fit[i];
    free(fit);
    return f;
}

/* Derivatives of the fit (sj_smooth_reml_graph, implicit in ρ) with respect
 * to y, x, w, s and the positions t of the design, against central
 * differences of complete refits (λ re-estimated each time). */
static void test_reml_derivatives(void **state)
{
    test_graph *e = *state;
    const struct smooth_golden *c = &smooth_golden[1];
    int n = c->n, k = c->k;
    size_t nk = (size_t)k + 4;
    double *xm = golden_design(e->ctx, c), *s = malloc((size_t)(k * k) * sizeof *s);
    sj_difference_penalty(k, 2, s);
    double *cw = malloc((size_t)n * sizeof *cw);
    for (int i = 0; i < n; i++)
        cw[i] = cos(0.1 * i);
    sj_smooth_reml_result r;
    assert_ok(sj_smooth_reml(e->ctx, (size_t)n, (size_t)k, 1, xm, c->y, s,
                             c->w, NULL, NULL, &r),
              e->ctx);
    /* graph: t -> basis -> fit */
    sj_graph *g;
    assert_ok(sj_graph_create(e->ctx, &g), e->ctx);
    sj_value t = sj_input(g, "t", 1, (const char *[]){"n"});
    sj_value x = sj_input(g, "x", 2, (const char *[]){"n", "m"});
    sj_value y = sj_input(g, "y", 2, (const char *[]){"n", "1"});
    sj_value sv = sj_input(g, "s", 2, (const char *[]){"m", "m"});
    sj_value w = sj_input(g, "w", 1, (const char *[]){"n"});
    sj_value cc = sj_input(g, "c", 2, (const char *[]){"n", "1"});
    /* x enters as basis(t) + x, so both derivatives are checked (x = 0) */
    sj_value xd = sj_add(g, sj_bspline_basis(g, t, nk, c->knots, 3, 0), x);
    sj_value fitted;
    assert_ok(sj_smooth_reml_graph(g, xd, y, sv, w, &r, NULL, NULL, &fitted), e->ctx);
    sj_value f = sj_sum_all(g, sj_mul(g, cc, fitted));
    sj_fn *fn, *gr;
    assert_ok(sj_fn_create(g, 1, &f, &fn), e->ctx);
    assert_ok(sj_value_and_grad(fn, 0, 5, (int[]){0, 1, 2, 3, 4}, &gr), e->ctx);
    int64_t dn = n, dm = k, d1 = 1;
    int64_t sx[2] = {dn, dm}, sy[2] = {dn, d1}, ss[2] = {dm, dm};
    const int64_t *dims[6] = {&dn, sx, sy, ss, &dn, sy};
    double *zero = calloc((size_t)(n * k), sizeof *zero);
    double val, *gt = malloc((size_t)n * sizeof *gt), *gx = malloc((size_t)(n * k) * sizeof *gx),
               *gy = malloc((size_t)n * sizeof *gy), *gs = malloc((size_t)(k * k) * sizeof *gs),
               *gw = malloc((size_t)n * sizeof *gw);
    assert_ok(sj_fn_call(gr, 6, (int[]){1, 2, 2, 2, 1, 2}, dims,
                         (const double *[]){c->x, zero, c->y, s, c->w, cw},
                         (double *[]){&val, gt, gx, gy, gs, gw}),
              e->ctx);
    double f0 = fit_objective(e->ctx, n, k, xm, c->y, s, c->w, cw);
    assert_close(&val, &f0, 1, 1e-8, 1e-10);
    const double h = 1e-5;
    double *yp = malloc((size_t)n * sizeof *yp), *wp = malloc((size_t)n * sizeof *wp);
    double *xp = malloc((size_t)(n * k) * sizeof *xp), *sp = malloc((size_t)(k * k) * sizeof *sp);
    double *tp = malloc((size_t)n * sizeof *tp);
    int idx[4] = {3, 40, 77, 141};
    for (int q = 0; q < 4; q++) {
        int i = idx[q];
        double fd;
        /* y */
        memcpy(yp, c->y, (size_t)n * sizeof *yp);
        yp[i] += h;
        fd = fit_objective(e->ctx, n, k, xm, yp, s, c->w, cw);
        yp[i] -= 2 * h;
        fd = (fd - fit_objective(e->ctx, n, k, xm, yp, s, c->w, cw)) / (2 * h);
        assert_close(&gy[i], &fd, 1, 1e-4, 1e-7);
        /* w */
        memcpy(wp, c->w, (size_t)n * sizeof *wp);
        wp[i] += h;
        fd = fit_objective(e->ctx, n, k, xm, c->y, s, wp, cw);
        wp[i] -= 2 * h;
        fd = (fd - fit_objective(e->ctx, n, k, xm, c->y, s, wp, cw)) / (2 * h);
        assert_close(&gw[i], &fd, 1, 1e-4, 1e-7);
        /* x[i, j] */
        int j = (i * 7) % k;
        memcpy(xp, xm, (size_t)(n * k) * sizeof *xp);
        xp[i * k + j] += h;
        fd = fit_objective(e->ctx, n, k, xp, c->y, s, c->w, cw);
        xp[i * k + j] -= 2 * h;
        fd = (fd - fit_objective(e->ctx, n, k, xp, c->y, s, c->w, cw)) / (2 * h);
        assert_close(&gx[i * k + j], &fd, 1, 1e-4, 1e-7);
        /* t[i]: the design row moves */
        memcpy(tp, c->x, (size_t)n * sizeof *tp);
        tp[i] += h;
        basis_at(e->ctx, tp, n, c->knots, nk, 3, 0, 0, xp, k);
        fd = fit_objective(e->ctx, n, k, xp, c->y, s, c->w, cw);
        tp[i] -= 2 * h;
        basis_at(e->ctx, tp, n, c->knots, nk, 3, 0, 0, xp, k);
        fd = (fd - fit_objective(e->ctx, n, k, xp, c->y, s, c->w, cw)) / (2 * h);
        assert_close(&gt[i], &fd, 1, 1e-4, 1e-7);
    }
    /* s: along Δ = S E S with E symmetric (entries (a, b) and (b, a)), which
     * keeps the null space (perturbations that change the rank of S move
     * log|S|₊ discontinuously) */
    double *dl = malloc((size_t)(k * k) * sizeof *dl);
    for (int q = 0; q < 3; q++) {
        int a = q + 2, b = q + 5;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                dl[i * k + j] = s[i * k + a] * s[b * k + j] + s[i * k + b] * s[a * k + j];
        double got = 0;
        for (int i = 0; i < k * k; i++)
            got += gs[i] * dl[i];
        for (int i = 0; i < k * k; i++)
            sp[i] = s[i] + h * dl[i];
        double fd = fit_objective(e->ctx, n, k, xm, c->y, sp, c->w, cw);
        for (int i = 0; i < k * k; i++)
            sp[i] = s[i] - h * dl[i];
        fd = (fd - fit_objective(e->ctx, n, k, xm, c->y, sp, c->w, cw)) / (2 * h);
        assert_close(&got, &fd, 1, 1e-4, 1e-7);
    }
    free(dl);
    free(yp), free(wp), free(xp), free(sp), free(tp), free(zero);
    free(gt), free(gx), free(gy), free(gs), free(gw), free(cw), free(s), free(xm);
    sj_fn_free(gr);
    sj_fn_free(fn);
    sj_graph_free(g);
}

static void test_reml_degenerate(void **state)
{
    test_graph *e = *state;
    const struct smooth_golden *c = &smooth_golden[0];
    int n = c->n, k = c->k;
    double *xm = golden_design(e->ctx, c), s[400] = {0};
    sj_smooth_reml_result r;
    /* penalty of rank 0 */
    assert_int_equal(sj_smooth_reml(e->ctx, (size_t)n, (size_t)k, 1, xm, c->y, s, NULL, NULL, NULL,
                                    &r),
                     SJ_ERR_DOMAIN);
    assert_non_null(strstr(sj_ctx_last_error(e->ctx), "rank 0"));
    /* XᵀWX singular: all weight on 3 rows */
    sj_difference_penalty(k, 2, s);
    double *w = calloc((size_t)n, sizeof *w);
    w[0] = w[50] = w[99] = 1;
    assert_int_equal(sj_smooth_reml(e->ctx, (size_t)n, (size_t)k, 1, xm, c->y, s, w, NULL, NULL,
                                    &r),
                     SJ_ERR_SINGULAR);
    assert_non_null(strstr(sj_ctx_last_error(e->ctx), "singular"));
    w[0] = -1;
    assert_int_equal(sj_smooth_reml(e->ctx, (size_t)n, (size_t)k, 1, xm, c->y, s, w, NULL, NULL,
                                    &r),
                     SJ_ERR_DOMAIN);
    assert_int_equal(sj_smooth_reml(NULL, 0, (size_t)k, 1, xm, c->y, s, NULL, NULL, NULL, &r),
                     SJ_ERR_INVALID_ARGUMENT);
    /* a batch names the failing problem */
    double *xb = malloc((size_t)(2 * n * k) * sizeof *xb), *yb = malloc((size_t)(2 * n) * sizeof *yb);
    memcpy(xb, xm, (size_t)(n * k) * sizeof *xb);
    memset(xb + n * k, 0, (size_t)(n * k) * sizeof *xb);
    memcpy(yb, c->y, (size_t)n * sizeof *yb);
    memcpy(yb + n, c->y, (size_t)n * sizeof *yb);
    sj_smooth_reml_result rb[2];
    assert_int_equal(sj_smooth_reml_batch(e->ctx, 2, (size_t)n, (size_t)k, 1, xb, yb, s, NULL,
                                          NULL, NULL, rb),
                     SJ_ERR_SINGULAR);
    assert_non_null(strstr(sj_ctx_last_error(e->ctx), "problem 1: "));
    free(xb);
    free(yb);
    free(w);
    free(xm);
}

/* Runs the graph's outputs at inputs [3, 4] (all inputs that shape). */
static void run_rows(test_graph *e, int nout, const sj_value *outs, int nin,
                     const double *const *in, double *const *res)
{
    sj_fn *fn;
    assert_ok(sj_fn_create(e->g, nout, outs, &fn), e->ctx);
    int64_t d[2] = {3, 4};
    const int64_t *dims[4] = {d, d, d, d};
    assert_ok(sj_fn_call(fn, nin, (int[]){2, 2, 2, 2}, dims, in, res), e->ctx);
    sj_fn_free(fn);
}

static void test_geometry(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = sj_input(g, "x", 2, (const char *[]){"n", "D"});
    sj_value p = sj_input(g, "p", 2, (const char *[]){"n", "D"});
    sj_value q = sj_input(g, "q", 2, (const char *[]){"n", "D"});
    sj_value outs[6] = {sj_closure(g, x), sj_clr(g, x), sj_alr_inv(g, sj_alr(g, x, 4)),
                        sj_sphere_log(g, p, q), sj_sphere_exp(g, p, sj_sphere_log(g, p, q)),
                        sj_sum_all(g, sj_mul(g, x, sj_sphere_log(g, p, q)))};
    static const double xv[12] = {1, 2, 3, 4, 0.5, 0.5, 2, 1, 3, 1, 1, 5};
    double pv[12], qv[12];
    for (int i = 0; i < 3; i++) {
        double np = 0, nq = 0;
        for (int j = 0; j < 4; j++) {
            pv[i * 4 + j] = 1 + 0.3 * i + 0.2 * j * j;
            qv[i * 4 + j] = 1 + sin(1.0 + i + 2.0 * j);
            np += pv[i * 4 + j] * pv[i * 4 + j];
            nq += qv[i * 4 + j] * qv[i * 4 + j];
        }
        for (int j = 0; j < 4; j++)
            pv[i * 4 + j] /= sqrt(np), qv[i * 4 + j] /= sqrt(nq);
    }
    double clo[12], clr[12], rt[12], lg[12], ex[12], f;
    run_rows(e, 6, outs, 3, (const double *[]){xv, pv, qv},
             (double *[]){clo, clr, rt, lg, ex, &f});
    for (int i = 0; i < 3; i++) {
        double s = 0, c = 0, dot = 0, want_theta, got_theta = 0, pq = 0;
        for (int j = 0; j < 4; j++) {
            s += clo[i * 4 + j];
            c += clr[i * 4 + j];
            dot += lg[i * 4 + j] * pv[i * 4 + j];
            pq += pv[i * 4 + j] * qv[i * 4 + j];
            got_theta += lg[i * 4 + j] * lg[i * 4 + j];
        }
        assert_close(&s, ((double[]){1}), 1, 1e-14, 0);
        assert_true(fabs(c) < 1e-13);
        assert_true(fabs(dot) < 1e-13); /* log_p(q) is tangent at p */
        want_theta = acos(pq);
        got_theta = sqrt(got_theta);
        assert_close(&got_theta, &want_theta, 1, 1e-12, 0);
    }
    assert_close(rt, clo, 12, 1e-14, 0);
    assert_close(ex, qv, 12, 1e-12, 1e-14);
    /* gradient of Σ x ⊙ log_p(q) in q against central differences */
    sj_fn *fn, *gr;
    assert_ok(sj_fn_create(g, 1, &outs[5], &fn), e->ctx);
    assert_ok(sj_grad(fn, 0, 1, (int[]){2}, &gr), e->ctx);
    int64_t d[2] = {3, 4};
    const int64_t *dims[3] = {d, d, d};
    double gq[12];
    assert_ok(sj_fn_call(gr, 3, (int[]){2, 2, 2}, dims, (const double *[]){xv, pv, qv},
                         (double *[]){gq}),
              e->ctx);
    for (int k = 0; k < 12; k++) {
        double qp[12], fp, fm, h = 1e-6;
        memcpy(qp, qv, sizeof qp);
        qp[k] += h;
        assert_ok(sj_fn_call(fn, 3, (int[]){2, 2, 2}, dims, (const double *[]){xv, pv, qp},
                             (double *[]){&fp}),
                  e->ctx);
        qp[k] -= 2 * h;
        assert_ok(sj_fn_call(fn, 3, (int[]){2, 2, 2}, dims, (const double *[]){xv, pv, qp},
                             (double *[]){&fm}),
                  e->ctx);
        double fd = (fp - fm) / (2 * h);
        assert_close(&gq[k], &fd, 1, 1e-6, 1e-8);
    }
    sj_fn_free(gr);
    sj_fn_free(fn);
}

/* Simplex maps: exp_p(log_p(x)) = closure(x); the mean of (x, x) is
 * closure(x); the mean of rows a and b is closure(√(a b)). */
static void test_simplex(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = sj_input(g, "x", 2, (const char *[]){"n", "D"});
    sj_value p = sj_input(g, "p", 2, (const char *[]){"n", "D"});
    sj_value outs[3] = {sj_simplex_exp(g, p, sj_simplex_log(g, p, x)), sj_closure(g, x),
                        sj_simplex_mean(g, x)};
    static const double xv[12] = {1, 2, 3, 4, 0.5, 0.5, 2, 1, 3, 1, 1, 5};
    static const double pv[12] = {1, 1, 1, 1, 2, 1, 1, 1, 1, 3, 1, 2};
    double rt[12], clo[12], mean[4];
    run_rows(e, 3, outs, 2, (const double *[]){xv, pv}, (double *[]){rt, clo, mean});
    assert_close(rt, clo, 12, 1e-14, 0);
    double want[4], s = 0;
    for (int j = 0; j < 4; j++)
        s += want[j] = cbrt(xv[j] * xv[4 + j] * xv[8 + j]);
    for (int j = 0; j < 4; j++)
        want[j] /= s;
    assert_close(mean, want, 4, 1e-14, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, test_graph_setup, test_graph_teardown)
    const struct CMUnitTest tests[] = {
        T(test_partition_of_unity), T(test_basis_derivatives), T(test_basis_errors),
        T(test_penalty),
        T(test_reml_vs_mgcv),       T(test_reml_columns_and_batch), T(test_reml_derivatives),
        T(test_reml_degenerate), T(test_geometry),
        T(test_simplex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
