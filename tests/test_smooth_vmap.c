/* The differentiable smoothing fit (sj_smooth_reml_graph, a fit op in ρ;
 * frontend/smooth_reml.c, docs/smooth.md) under vmap and to second order,
 * on the "sine" case of data/smooth_golden.h (n = 100, cubic P-spline,
 * k = 10):
 *
 *   - vmap over four responses Y_b sharing X and S (one Newton loop per
 *     item, all started at the search's ρ̂ of Y_0) against the same graph
 *     called once per item: λ and fitted values within 1e-12 relative (the
 *     same loop on the same numbers; only the order of BLAS work differs);
 *     and each item against sj_smooth_reml on Y_b (λ 1e-8 relative: both
 *     converge, the graph to |V′| < 1e-9, the search to its own tolerance);
 *   - the gradient of Σ_b c ⊙ fitted_b in Y (vjp of the vmapped function
 *     with a cotangent of ones) against the stacked single gradients
 *     (1e-12 relative, 1e-14 absolute);
 *   - a second derivative: the jvp of that gradient in y along a direction,
 *     against central differences of the gradient (h = 1e-4: truncation
 *     ~1e-8 relative; 1e-5 relative), which the implicit function theorem
 *     through the fit op gives exactly (V‴ included);
 *   - argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "data/smooth_golden.h"

enum { B = 4 };

typedef struct setup_data {
    int n, k;
    double *xm, *s, *yb, *cw;
    sj_smooth_reml_result r0;
} setup_data;

static void design(sj_ctx *ctx, const struct smooth_golden *c, double *xm)
{
    sj_graph *g;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value t = sj_input(g, "t", 1, (const char *[]){"n"});
    sj_value b = sj_bspline_basis(g, t, (size_t)c->k + 4, c->knots, 3, 0);
    sj_fn *fn;
    assert_ok(sj_fn_create(g, 1, &b, &fn), ctx);
    int64_t n = c->n;
    assert_ok(sj_fn_call(fn, 1, (int[]){1}, (const int64_t *[]){&n}, (const double *[]){c->x},
                         (double *[]){xm}),
              ctx);
    sj_fn_free(fn);
    sj_graph_free(g);
}

static void make(test_graph *e, setup_data *d)
{
    const struct smooth_golden *c = &smooth_golden[0];
    d->n = c->n, d->k = c->k;
    d->xm = malloc((size_t)(d->n * d->k) * sizeof *d->xm);
    d->s = malloc((size_t)(d->k * d->k) * sizeof *d->s);
    d->yb = malloc((size_t)(B * d->n) * sizeof *d->yb);
    d->cw = malloc((size_t)d->n * sizeof *d->cw);
    design(e->ctx, c, d->xm);
    assert_int_equal(sj_difference_penalty(d->k, 2, d->s), SJ_OK);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < d->n; i++)
            d->yb[b * d->n + i] = c->y[i] + 0.15 * b * sin(0.3 * i * (b + 1));
    for (int i = 0; i < d->n; i++)
        d->cw[i] = cos(0.1 * i);
    assert_ok(sj_smooth_reml(e->ctx, (size_t)d->n, (size_t)d->k, 1, d->xm, d->yb, d->s, NULL,
                             NULL, NULL, &d->r0),
              e->ctx);
}

static void unmake(setup_data *d) { free(d->xm), free(d->s), free(d->yb), free(d->cw); }

/* h(x, y, s, c) = (Σ c ⊙ fitted, λ, fitted) */
static sj_fn *fit_fn(test_graph *e, setup_data *d)
{
    sj_graph *g = e->g;
    sj_value x = sj_input(g, "x", 2, (const char *[]){"n", "m"});
    sj_value y = sj_input(g, "y", 2, (const char *[]){"n", "1"});
    sj_value s = sj_input(g, "s", 2, (const char *[]){"m", "m"});
    sj_value cc = sj_input(g, "c", 2, (const char *[]){"n", "1"});
    sj_value lam, fitted;
    assert_ok(sj_smooth_reml_graph(g, x, y, s, SJ_INVALID, &d->r0, &lam, NULL, &fitted), e->ctx);
    sj_value outs[3] = {sj_sum_all(g, sj_mul(g, cc, fitted)), lam, fitted};
    sj_fn *fn;
    assert_ok(sj_fn_create(g, 3, outs, &fn), e->ctx);
    return fn;
}

static void test_vmap_over_y(void **state)
{
    test_graph *e = *state;
    setup_data d;
    make(e, &d);
    int n = d.n, k = d.k;
    sj_fn *fn = fit_fn(e, &d), *vf;
    assert_ok(sj_vmap(fn, (int[]){-1, 0, -1, -1}, NULL, "B", &vf), e->ctx);
    int64_t sx[2] = {n, k}, sy[2] = {n, 1}, ss[2] = {k, k}, sb[3] = {B, n, 1};
    double hv[B], lv[B], *fv = malloc((size_t)(B * n) * sizeof *fv);
    assert_ok(sj_fn_call(vf, 4, (int[]){2, 3, 2, 2}, (const int64_t *[]){sx, sb, ss, sy},
                         (const double *[]){d.xm, d.yb, d.s, d.cw}, (double *[]){hv, lv, fv}),
              e->ctx);
    double *f1 = malloc((size_t)n * sizeof *f1), h1, l1;
    for (int b = 0; b < B; b++) {
        assert_ok(sj_fn_call(fn, 4, (int[]){2, 2, 2, 2}, (const int64_t *[]){sx, sy, ss, sy},
                             (const double *[]){d.xm, d.yb + b * n, d.s, d.cw},
                             (double *[]){&h1, &l1, f1}),
                  e->ctx);
        assert_close(&lv[b], &l1, 1, 1e-12, 0);
        assert_close(&hv[b], &h1, 1, 1e-12, 1e-14);
        assert_close(fv + b * n, f1, (size_t)n, 1e-12, 1e-14);
        sj_smooth_reml_result rb;
        assert_ok(sj_smooth_reml(e->ctx, (size_t)n, (size_t)k, 1, d.xm, d.yb + b * n, d.s, NULL,
                                 NULL, NULL, &rb),
                  e->ctx);
        print_message("item %d: lambda (vmap) %.12g, sj_smooth_reml %.12g (rel %.1e)\n", b,
                      lv[b], rb.lambda, fabs(lv[b] / rb.lambda - 1));
        assert_close(&lv[b], &rb.lambda, 1, 1e-8, 0);
    }
    free(f1), free(fv);
    sj_fn_free(vf);
    sj_fn_free(fn);
    unmake(&d);
}

static void test_grad_of_vmap_sum(void **state)
{
    test_graph *e = *state;
    setup_data d;
    make(e, &d);
    int n = d.n, k = d.k;
    sj_fn *fn = fit_fn(e, &d), *h, *vh, *vj, *gr;
    /* h alone (output 0), then vmap and its vjp (cotangent of ones: the
     * gradient of the sum over the batch) */
    sj_graph *g2;
    assert_ok(sj_graph_create(e->ctx, &g2), e->ctx);
    sj_value x = sj_input(g2, "x", 2, (const char *[]){"n", "m"});
    sj_value y = sj_input(g2, "y", 2, (const char *[]){"n", "1"});
    sj_value s = sj_input(g2, "s", 2, (const char *[]){"m", "m"});
    sj_value cc = sj_input(g2, "c", 2, (const char *[]){"n", "1"});
    sj_value fitted;
    assert_ok(sj_smooth_reml_graph(g2, x, y, s, SJ_INVALID, &d.r0, NULL, NULL, &fitted), e->ctx);
    sj_value hv = sj_sum_all(g2, sj_mul(g2, cc, fitted));
    assert_ok(sj_fn_create(g2, 1, &hv, &h), e->ctx);
    assert_ok(sj_vmap(h, (int[]){-1, 0, -1, -1}, NULL, "B", &vh), e->ctx);
    assert_ok(sj_vjp(vh, 1, (int[]){1}, &vj), e->ctx);
    assert_ok(sj_grad(h, 0, 1, (int[]){1}, &gr), e->ctx);
    int64_t sx[2] = {n, k}, sy[2] = {n, 1}, ss[2] = {k, k}, sb[3] = {B, n, 1}, s1[1] = {B};
    double ones[B] = {1, 1, 1, 1};
    double *gv = malloc((size_t)(B * n) * sizeof *gv), *g1 = malloc((size_t)n * sizeof *g1);
    assert_ok(sj_fn_call(vj, 5, (int[]){2, 3, 2, 2, 1}, (const int64_t *[]){sx, sb, ss, sy, s1},
                         (const double *[]){d.xm, d.yb, d.s, d.cw, ones},
                         (double *[]){gv}),
              e->ctx);
    for (int b = 0; b < B; b++) {
        assert_ok(sj_fn_call(gr, 4, (int[]){2, 2, 2, 2}, (const int64_t *[]){sx, sy, ss, sy},
                             (const double *[]){d.xm, d.yb + b * n, d.s, d.cw}, (double *[]){g1}),
                  e->ctx);
        assert_close(gv + b * n, g1, (size_t)n, 1e-12, 1e-14);
    }
    free(gv), free(g1);
    sj_fn_free(gr), sj_fn_free(vj), sj_fn_free(vh), sj_fn_free(h), sj_fn_free(fn);
    sj_graph_free(g2);
    unmake(&d);
}

static void test_second_order(void **state)
{
    test_graph *e = *state;
    setup_data d;
    make(e, &d);
    int n = d.n, k = d.k;
    sj_graph *g2;
    assert_ok(sj_graph_create(e->ctx, &g2), e->ctx);
    sj_value x = sj_input(g2, "x", 2, (const char *[]){"n", "m"});
    sj_value y = sj_input(g2, "y", 2, (const char *[]){"n", "1"});
    sj_value s = sj_input(g2, "s", 2, (const char *[]){"m", "m"});
    sj_value cc = sj_input(g2, "c", 2, (const char *[]){"n", "1"});
    sj_value fitted;
    assert_ok(sj_smooth_reml_graph(g2, x, y, s, SJ_INVALID, &d.r0, NULL, NULL, &fitted), e->ctx);
    /* a function of y that is not linear in the fit: Σ c ⊙ fitted² */
    sj_value hv = sj_sum_all(g2, sj_mul(g2, cc, sj_square(g2, fitted)));
    sj_fn *h, *gr, *hvp;
    assert_ok(sj_fn_create(g2, 1, &hv, &h), e->ctx);
    assert_ok(sj_grad(h, 0, 1, (int[]){1}, &gr), e->ctx);
    assert_ok(sj_jvp(gr, 1, (int[]){1}, &hvp), e->ctx);
    int64_t sx[2] = {n, k}, sy[2] = {n, 1}, ss[2] = {k, k};
    double *dy = malloc((size_t)n * sizeof *dy), *g0 = malloc((size_t)n * sizeof *g0),
           *hd = malloc((size_t)n * sizeof *hd), *yp = malloc((size_t)n * sizeof *yp),
           *gp = malloc((size_t)n * sizeof *gp), *gm = malloc((size_t)n * sizeof *gm),
           *fd = malloc((size_t)n * sizeof *fd);
    for (int i = 0; i < n; i++)
        dy[i] = sin(0.7 * i + 0.2);
    assert_ok(sj_fn_call(hvp, 5, (int[]){2, 2, 2, 2, 2}, (const int64_t *[]){sx, sy, ss, sy, sy},
                         (const double *[]){d.xm, d.yb, d.s, d.cw, dy}, (double *[]){g0, hd}),
              e->ctx);
    const double hh = 1e-4;
    for (int sgn = 0; sgn < 2; sgn++) {
        for (int i = 0; i < n; i++)
            yp[i] = d.yb[i] + (sgn ? -hh : hh) * dy[i];
        assert_ok(sj_fn_call(gr, 4, (int[]){2, 2, 2, 2}, (const int64_t *[]){sx, sy, ss, sy},
                             (const double *[]){d.xm, yp, d.s, d.cw}, (double *[]){sgn ? gm : gp}),
                  e->ctx);
    }
    double scale = 0;
    for (int i = 0; i < n; i++)
        fd[i] = (gp[i] - gm[i]) / (2 * hh), scale = fmax(scale, fabs(fd[i]));
    assert_close(hd, fd, (size_t)n, 1e-5, 1e-5 * scale);
    free(dy), free(g0), free(hd), free(yp), free(gp), free(gm), free(fd);
    sj_fn_free(hvp), sj_fn_free(gr), sj_fn_free(h);
    sj_graph_free(g2);
    unmake(&d);
}

/* Argument errors of sj_smooth_reml_graph: a status and a message naming
 * the cause. */
static void test_graph_errors(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = sj_input(g, "x", 2, (const char *[]){"n", "m"});
    sj_value y = sj_input(g, "y", 2, (const char *[]){"n", "1"});
    sj_value s = sj_input(g, "s", 2, (const char *[]){"m", "m"});
    sj_value w2 = sj_input(g, "w", 2, (const char *[]){"n", "1"});
    sj_smooth_reml_result r = {0};
    sj_value lam;
    assert_error(sj_smooth_reml_graph(g, x, y, s, SJ_INVALID, NULL, &lam, NULL, NULL),
                 SJ_ERR_INVALID_ARGUMENT, e->ctx, "NULL fit");
    assert_true(lam == SJ_INVALID);
    assert_error(sj_smooth_reml_graph(g, x, y, s, SJ_INVALID, &r, &lam, NULL, NULL),
                 SJ_ERR_INVALID_ARGUMENT, e->ctx, "not a result");
    r.ncol = 1, r.rank = 8, r.df_resid = 90, r.rho = 0.5;
    assert_error(sj_smooth_reml_graph(g, x, y, s, w2, &r, &lam, NULL, NULL), SJ_ERR_SHAPE,
                 e->ctx, "w [n] has rank 2");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, test_graph_setup, test_graph_teardown)
    const struct CMUnitTest tests[] = {
        T(test_vmap_over_y),
        T(test_grad_of_vmap_sum),
        T(test_second_order),
        T(test_graph_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
