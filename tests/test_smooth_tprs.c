/* The 1-D thin-plate regression spline basis (sj_tprs_basis,
 * sj_tprs_penalty; frontend/smooth_tprs.c, docs/smooth.md):
 *
 *   - Gaussian REML with the full-rank basis (knots at the unique x) against
 *     mgcv::gam(y ~ s(x, bs = "tp", k = #unique x), method = "REML")
 *     (data/tprs_golden.h, made by data/make_tprs_golden.R): λ, total EDF
 *     and fitted values within 1e-5 relative (mgcv's own convergence is
 *     to about 1e-7 in λ; its basis is an eigen-rotation of ours, so the
 *     agreement is limited by the two optimisers, not by rounding);
 *   - the penalty: symmetric, null space the last two columns (1 and t),
 *     positive semi-definite of rank K − 2;
 *   - the gradient in t against central differences (h = 1e-6; |d|³ is C²,
 *     so the difference quotient is accurate to ~1e-9 relative: 1e-7);
 *   - native code against the evaluator (1e-13) and the errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lapacke.h>

#include "testutil.h"
#include "data/tprs_golden.h"

static void tprs_at(sj_ctx *ctx, const double *x, int64_t n, const double *knots, size_t nk,
                    double *out)
{
    sj_graph *g;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value t = sj_input(g, "t", 1, (const char *[]){"n"});
    sj_value b = sj_tprs_basis(g, t, nk, knots);
    assert_true(b != SJ_INVALID);
    sj_fn *fn;
    assert_ok(sj_fn_create(g, 1, &b, &fn), ctx);
    const int64_t *dims[1] = {&n};
    sj_compiled *c;
    assert_ok(sj_fn_specialize(fn, 1, (int[]){1}, dims, &c), ctx);
    assert_ok(sj_compiled_eval(c, (const double *[]){x}, (double *[]){out}), ctx);
    sj_compiled_free(c);
    double *nat = malloc((size_t)n * nk * sizeof *nat);
    assert_ok(sj_fn_call(fn, 1, (int[]){1}, dims, (const double *[]){x}, (double *[]){nat}), ctx);
    assert_close(nat, out, (size_t)n * nk, 1e-13, 1e-13);
    free(nat);
    sj_fn_free(fn);
    sj_graph_free(g);
}

static void test_tprs_vs_mgcv(void **state)
{
    test_graph *e = *state;
    for (int ci = 0; ci < TPRS_GOLDEN_N; ci++) {
        const struct tprs_golden *c = &tprs_golden[ci];
        size_t n = (size_t)c->n, k = (size_t)c->k;
        double *xm = malloc(n * k * sizeof *xm), *s = malloc(k * k * sizeof *s);
        double *fit = malloc(n * sizeof *fit);
        tprs_at(e->ctx, c->x, c->n, c->knots, k, xm);
        assert_ok(sj_tprs_penalty(k, c->knots, s), e->ctx);
        sj_smooth_reml_result r;
        assert_ok(sj_smooth_reml(e->ctx, n, k, 1, xm, c->y, s, c->w, NULL, fit, &r), e->ctx);
        double maxf = 0;
        for (size_t i = 0; i < n; i++)
            maxf = fmax(maxf, fabs(fit[i] - c->fitted[i]) / fabs(c->fitted[i]));
        print_message("%-9s lambda %.10g (mgcv %.10g, rel %.1e)  edf %.8g (mgcv %.8g, rel %.1e)  "
                      "fitted max rel %.1e\n",
                      c->name, r.lambda, c->lambda, fabs(r.lambda / c->lambda - 1), r.edf, c->edf,
                      fabs(r.edf / c->edf - 1), maxf);
        assert_true(r.converged);
        assert_int_equal(r.rank, c->k - 2);
        assert_close(&r.lambda, &c->lambda, 1, 1e-5, 0);
        assert_close(&r.edf, &c->edf, 1, 1e-5, 0);
        assert_close(fit, c->fitted, n, 1e-5, 1e-7);
        free(xm), free(s), free(fit);
    }
}

static void test_tprs_penalty(void **state)
{
    test_graph *e = *state;
    const struct tprs_golden *c = &tprs_golden[0];
    size_t k = (size_t)c->k;
    double *s = malloc(k * k * sizeof *s), *ev = malloc(k * sizeof *ev);
    assert_ok(sj_tprs_penalty(k, c->knots, s), e->ctx);
    double smax = 0;
    for (size_t i = 0; i < k * k; i++)
        smax = fmax(smax, fabs(s[i]));
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++) {
            assert_true(s[i * k + j] == s[j * k + i]);
            if (i >= k - 2 || j >= k - 2)
                assert_true(s[i * k + j] == 0.0);
        }
    /* positive semi-definite of rank k − 2 (eigenvalues relative to the
     * largest above 1e-12, two exact zeros) */
    assert_int_equal(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (int)k, s, (int)k, ev), 0);
    int pos = 0;
    for (size_t i = 0; i < k; i++) {
        assert_true(ev[i] > -1e-12 * smax);
        pos += ev[i] > 1e-12 * smax;
    }
    assert_int_equal(pos, (int)k - 2);
    free(s), free(ev);
}

static void test_tprs_gradient_in_t(void **state)
{
    test_graph *e = *state;
    const struct tprs_golden *c = &tprs_golden[0];
    size_t k = (size_t)c->k;
    int64_t n = 7;
    double t[7], cw[7 * 64];
    for (int i = 0; i < n; i++)
        t[i] = c->knots[0] + (c->knots[k - 1] - c->knots[0]) * (0.05 + 0.13 * i);
    t[3] = c->knots[5]; /* at a knot: |d|³ is C² */
    for (size_t i = 0; i < (size_t)n * k; i++)
        cw[i] = sin(0.37 * (double)i);
    sj_graph *g = e->g;
    sj_value tv = sj_input(g, "t", 1, (const char *[]){"n"});
    int64_t shp[2] = {n, (int64_t)k};
    sj_value f = sj_sum_all(g, sj_mul(g, sj_tprs_basis(g, tv, k, c->knots),
                                      sj_constant(g, 2, shp, cw)));
    sj_fn *fn, *gr;
    assert_ok(sj_fn_create(g, 1, &f, &fn), e->ctx);
    assert_ok(sj_grad(fn, 0, 1, (int[]){0}, &gr), e->ctx);
    const int64_t *dims[1] = {&n};
    double gt[7];
    assert_ok(sj_fn_call(gr, 1, (int[]){1}, dims, (const double *[]){t}, (double *[]){gt}),
              e->ctx);
    for (int i = 0; i < n; i++) {
        double tp[7], fp, fm, h = 1e-6;
        memcpy(tp, t, sizeof tp);
        tp[i] += h;
        assert_ok(sj_fn_call(fn, 1, (int[]){1}, dims, (const double *[]){tp}, (double *[]){&fp}),
                  e->ctx);
        tp[i] -= 2 * h;
        assert_ok(sj_fn_call(fn, 1, (int[]){1}, dims, (const double *[]){tp}, (double *[]){&fm}),
                  e->ctx);
        double fd = (fp - fm) / (2 * h);
        assert_close(&gt[i], &fd, 1, 1e-7, 1e-7);
    }
    sj_fn_free(gr);
    sj_fn_free(fn);
}

static void test_tprs_errors(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value t = sj_input(g, "t", 1, (const char *[]){"n"});
    static const double bad[4] = {0, 1, 1, 2};
    double s[16];
    assert_int_equal(sj_tprs_penalty(4, bad, s), SJ_ERR_INVALID_ARGUMENT);
    assert_int_equal(sj_tprs_penalty(2, bad, s), SJ_ERR_INVALID_ARGUMENT);
    assert_int_equal(sj_tprs_penalty(4, NULL, s), SJ_ERR_INVALID_ARGUMENT);
    assert_true(sj_tprs_basis(g, t, 4, bad) == SJ_INVALID);
    assert_error(sj_graph_status(g), SJ_ERR_INVALID_ARGUMENT, e->ctx, "strictly increasing");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, test_graph_setup, test_graph_teardown)
    const struct CMUnitTest tests[] = {
        T(test_tprs_vs_mgcv), T(test_tprs_penalty), T(test_tprs_gradient_in_t),
        T(test_tprs_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
