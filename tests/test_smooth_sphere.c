/* The Fréchet mean on the unit sphere (sj_sphere_mean,
 * frontend/smooth_geometry.c, docs/smooth.md):
 *
 *   - its value against Karcher's fixed-point iteration p ← exp_p(mean_i
 *     log_p(x_i)) written here in plain C with acos/sin/cos, run 2,000
 *     times (converged to rounding): 1e-10 absolute (the fit stops at a
 *     gradient below 1e-11; Newton's last step leaves far less);
 *   - the gradient of Σ c ⊙ mean in x against central differences of
 *     complete refits (h = 1e-6: truncation ~1e-10, rounding of the refit
 *     ~1e-10/h: 1e-6 relative), and a second derivative (the jvp of that
 *     gradient) against central differences of gradients (1e-5 relative);
 *   - vmap over three data sets against the single means (each item runs
 *     the same Newton loop: 1e-12);
 *   - degenerate data: identical rows give that row, converged; an
 *     antipodal pair (no unique mean, extrinsic mean 0) is SJ_ERR_DOMAIN. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { N = 6, D = 3 };

static void karcher(const double *x, int n, int d, double *p)
{
    double m[8] = {0}, nm = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            m[j] += x[i * d + j];
    for (int j = 0; j < d; j++)
        nm += m[j] * m[j];
    for (int j = 0; j < d; j++)
        p[j] = m[j] / sqrt(nm);
    for (int it = 0; it < 2000; it++) {
        double v[8] = {0};
        for (int i = 0; i < n; i++) {
            double c = 0, u[8], nu = 0;
            for (int j = 0; j < d; j++)
                c += p[j] * x[i * d + j];
            for (int j = 0; j < d; j++)
                u[j] = x[i * d + j] - c * p[j], nu += u[j] * u[j];
            nu = sqrt(nu);
            double th = acos(fmax(-1.0, fmin(1.0, c)));
            if (nu > 0)
                for (int j = 0; j < d; j++)
                    v[j] += th * u[j] / nu / n;
        }
        double nv = 0;
        for (int j = 0; j < d; j++)
            nv += v[j] * v[j];
        nv = sqrt(nv);
        if (nv == 0)
            break;
        double np = 0;
        for (int j = 0; j < d; j++)
            p[j] = cos(nv) * p[j] + sin(nv) * v[j] / nv, np += p[j] * p[j];
        for (int j = 0; j < d; j++)
            p[j] /= sqrt(np);
    }
}

static void data(double *x, double spread, double phase)
{
    for (int i = 0; i < N; i++) {
        double a = 0.4 + spread * sin(1.3 * i + phase), b = 0.7 + spread * cos(2.1 * i + phase);
        x[i * D] = sin(a) * cos(b);
        x[i * D + 1] = sin(a) * sin(b);
        x[i * D + 2] = cos(a);
    }
}

static sj_fn *mean_fn(test_graph *e, int with_sum)
{
    sj_graph *g = e->g;
    sj_value x = sj_input(g, "x", 2, (const char *[]){"n", "3"});
    sj_value c = sj_input(g, "c", 1, (const char *[]){"3"});
    sj_value m, conv;
    assert_ok(sj_sphere_mean(g, x, &m, &conv), e->ctx);
    sj_value outs[2] = {with_sum ? sj_sum_all(g, sj_mul(g, c, m)) : m, conv};
    sj_fn *fn;
    assert_ok(sj_fn_create(g, 2, outs, &fn), e->ctx);
    return fn;
}

static const int64_t xdim[2] = {N, D}, cdim[1] = {D};

static void test_sphere_mean_value(void **state)
{
    test_graph *e = *state;
    sj_fn *fn = mean_fn(e, 0);
    double x[N * D], want[D], got[D], conv, c[D] = {0};
    for (int s = 0; s < 3; s++) {
        data(x, 0.2 + 0.3 * s, 0.5 * s);
        karcher(x, N, D, want);
        assert_ok(sj_fn_call(fn, 2, (int[]){2, 1}, (const int64_t *[]){xdim, cdim},
                             (const double *[]){x, c}, (double *[]){got, &conv}),
                  e->ctx);
        assert_true(conv == 1.0);
        assert_close(got, want, D, 0, 1e-10);
    }
    sj_fn_free(fn);
}

static double mean_dot(sj_fn *fn, const double *x, const double *c, test_graph *e)
{
    double f, conv;
    assert_ok(sj_fn_call(fn, 2, (int[]){2, 1}, (const int64_t *[]){xdim, cdim},
                         (const double *[]){x, c}, (double *[]){&f, &conv}),
              e->ctx);
    return f;
}

static void test_sphere_mean_derivatives(void **state)
{
    test_graph *e = *state;
    sj_fn *fn = mean_fn(e, 1), *gr, *hv;
    assert_ok(sj_grad(fn, 0, 1, (int[]){0}, &gr), e->ctx);
    assert_ok(sj_jvp(gr, 1, (int[]){0}, &hv), e->ctx);
    double x[N * D], c[D] = {0.3, -1.1, 0.7}, gx[N * D], dx[N * D], hx[N * D], g2[N * D];
    data(x, 0.4, 0.2);
    assert_ok(sj_fn_call(gr, 2, (int[]){2, 1}, (const int64_t *[]){xdim, cdim},
                         (const double *[]){x, c}, (double *[]){gx}),
              e->ctx);
    const double h = 1e-6;
    for (int k = 0; k < N * D; k++) {
        double xp[N * D];
        memcpy(xp, x, sizeof xp);
        xp[k] += h;
        double fp = mean_dot(fn, xp, c, e);
        xp[k] -= 2 * h;
        double fd = (fp - mean_dot(fn, xp, c, e)) / (2 * h);
        assert_close(&gx[k], &fd, 1, 1e-6, 1e-8);
    }
    /* second order: d/dε ∇f(x + ε dx) */
    for (int k = 0; k < N * D; k++)
        dx[k] = cos(0.7 * k);
    assert_ok(sj_fn_call(hv, 3, (int[]){2, 1, 2}, (const int64_t *[]){xdim, cdim, xdim},
                         (const double *[]){x, c, dx}, (double *[]){g2, hx}),
              e->ctx);
    double xp[N * D], gp[N * D], gm[N * D], fd[N * D];
    const double h2 = 1e-5;
    for (int k = 0; k < N * D; k++)
        xp[k] = x[k] + h2 * dx[k];
    assert_ok(sj_fn_call(gr, 2, (int[]){2, 1}, (const int64_t *[]){xdim, cdim},
                         (const double *[]){xp, c}, (double *[]){gp}),
              e->ctx);
    for (int k = 0; k < N * D; k++)
        xp[k] = x[k] - h2 * dx[k];
    assert_ok(sj_fn_call(gr, 2, (int[]){2, 1}, (const int64_t *[]){xdim, cdim},
                         (const double *[]){xp, c}, (double *[]){gm}),
              e->ctx);
    double scale = 0;
    for (int k = 0; k < N * D; k++)
        fd[k] = (gp[k] - gm[k]) / (2 * h2), scale = fmax(scale, fabs(fd[k]));
    assert_close(hx, fd, N * D, 1e-5, 1e-5 * scale);
    sj_fn_free(hv);
    sj_fn_free(gr);
    sj_fn_free(fn);
}

static void test_sphere_mean_vmap(void **state)
{
    test_graph *e = *state;
    sj_fn *fn = mean_fn(e, 0), *vf;
    assert_ok(sj_vmap(fn, (int[]){0, -1}, NULL, "B", &vf), e->ctx);
    double xs[3 * N * D], c[D] = {0}, got[3 * D], conv[3], one[D], oc;
    for (int b = 0; b < 3; b++)
        data(xs + b * N * D, 0.3 + 0.1 * b, 1.0 * b);
    int64_t bx[3] = {3, N, D};
    assert_ok(sj_fn_call(vf, 2, (int[]){3, 1}, (const int64_t *[]){bx, cdim},
                         (const double *[]){xs, c}, (double *[]){got, conv}),
              e->ctx);
    for (int b = 0; b < 3; b++) {
        assert_ok(sj_fn_call(fn, 2, (int[]){2, 1}, (const int64_t *[]){xdim, cdim},
                             (const double *[]){xs + b * N * D, c}, (double *[]){one, &oc}),
                  e->ctx);
        assert_close(got + b * D, one, D, 1e-12, 1e-14);
        assert_true(conv[b] == oc);
    }
    sj_fn_free(vf);
    sj_fn_free(fn);
}

static void test_sphere_mean_degenerate(void **state)
{
    test_graph *e = *state;
    sj_fn *fn = mean_fn(e, 0);
    double x[N * D], got[D], conv, c[D] = {0};
    const double p[D] = {0.48, -0.6, 0.64};
    for (int i = 0; i < N; i++)
        memcpy(x + i * D, p, sizeof p);
    assert_ok(sj_fn_call(fn, 2, (int[]){2, 1}, (const int64_t *[]){xdim, cdim},
                         (const double *[]){x, c}, (double *[]){got, &conv}),
              e->ctx);
    assert_true(conv == 1.0);
    assert_close(got, p, D, 0, 1e-15);
    /* antipodal pairs: no unique mean */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            x[i * D + j] = i % 2 ? -p[j] : p[j];
    assert_error(sj_fn_call(fn, 2, (int[]){2, 1}, (const int64_t *[]){xdim, cdim},
                            (const double *[]){x, c}, (double *[]){got, &conv}),
                 SJ_ERR_DOMAIN, e->ctx, "");
    sj_fn_free(fn);
    /* argument errors */
    sj_value m;
    assert_int_equal(sj_sphere_mean(e->g, SJ_INVALID, &m, NULL), SJ_ERR_INVALID_ARGUMENT);
    assert_true(m == SJ_INVALID);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, test_graph_setup, test_graph_teardown)
    const struct CMUnitTest tests[] = {
        T(test_sphere_mean_value), T(test_sphere_mean_derivatives), T(test_sphere_mean_vmap),
        T(test_sphere_mean_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
