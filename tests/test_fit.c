/* The fit op (docs/fit.md): sj_fit_argmin, the damped Newton solver in the
 * reference evaluator and in native code, derivatives by the implicit
 * function theorem, batching, and errors.
 *
 *   quadratic      ½θᵀAθ − bᵀθ: θ̂ = A⁻¹b in one step (1e-10), both paths;
 *   rosenbrock     from (−1.2, 1): converges to (1, 1) (1e-8) in 5..60 steps,
 *                  through indefinite Hessians (Levenberg);
 *   logistic       NLL of a logistic regression against a hand-written Newton
 *                  (IRLS) loop (1e-9), with the exact Hessian and with the
 *                  Fisher information as the curvature;
 *   failing step   −logdet(diag θ) + cᵀθ from θ0 = (3, 0.5): the full step
 *                  leaves the domain (cholesky fails), is halved, and the
 *                  fit converges to 1/c;
 *   not converged  max_iter 1 and 0: converged 0, finite best iterate;
 *   bad start      an objective failing at theta0 is an error;
 *   derivatives    jvp and vjp of θ̂(X, y) against central differences of
 *                  refits (h = 1e-5, rtol 1e-6, atol 1e-8), the dot-product
 *                  identity (1e-10), the Hessian of a held-out loss through
 *                  the fit against differences of its gradient (rtol 1e-5),
 *                  natively and in the evaluator;
 *   vmap           fits over many data sets (batched y; batched X and y; a
 *                  vmap of a vmap; vmap of grad) against a loop (1e-10);
 *   errors         shapes, counts, settings, foreign values;
 *   cache key      fits differing only in their objective compile apart. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static sj_ctx *ctx;

static int setup(void **state) { return sj_ctx_create(&ctx) == SJ_OK ? 0 : -1; }
static int teardown(void **state)
{
    sj_ctx_free(ctx);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

/* Runs f on the inputs, natively (sj_fn_call) or in the evaluator. */
static sj_status run(sj_fn *f, int native, int nin, const int *ranks,
                     const int64_t *const *dims, const double *const *in, double *const *out)
{
    if (native)
        return sj_fn_call(f, nin, ranks, dims, in, out);
    sj_compiled *c = NULL;
    sj_status st = sj_fn_specialize(f, nin, ranks, dims, &c);
    if (st == SJ_OK)
        st = sj_compiled_eval(c, in, out);
    sj_compiled_free(c);
    return st;
}

static sj_graph *graph(void)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    return g;
}

static sj_fn *fn_of(sj_graph *g, int n, const sj_value *outs)
{
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, n, outs, &f), ctx);
    sj_graph_free(g);
    return f;
}

#define DIMS(...) ((const char *[]){__VA_ARGS__})

/* f(θ, A, b) = ½ θᵀAθ − bᵀθ. */
static sj_fn *quadratic_objective(void)
{
    sj_graph *h = graph();
    sj_value th = sj_input(h, "theta", 1, DIMS("k"));
    sj_value a = sj_input(h, "A", 2, DIMS("k", "k"));
    sj_value b = sj_input(h, "b", 1, DIMS("k"));
    sj_value q = sj_mul(h, sj_scalar(h, 0.5), sj_sum_all(h, sj_mul(h, th, sj_matmul(h, a, th))));
    sj_value f = sj_sub(h, q, sj_sum_all(h, sj_mul(h, b, th)));
    return fn_of(h, 1, &f);
}

/* f(θ, X, y) = Σ log(1 + exp(Xθ)) − y·Xθ. */
static sj_fn *logistic_objective(void)
{
    sj_graph *h = graph();
    sj_value th = sj_input(h, "theta", 1, DIMS("p"));
    sj_value x = sj_input(h, "X", 2, DIMS("n", "p"));
    sj_value y = sj_input(h, "y", 1, DIMS("n"));
    sj_value eta = sj_matmul(h, x, th);
    sj_value f = sj_sum_all(h, sj_sub(h, sj_log1p(h, sj_exp(h, eta)), sj_mul(h, y, eta)));
    return fn_of(h, 1, &f);
}

/* Fisher information Xᵀ diag(μ(1 − μ)) X of the logistic model. */
static sj_fn *logistic_fisher(void)
{
    sj_graph *h = graph();
    sj_value th = sj_input(h, "theta", 1, DIMS("p"));
    sj_value x = sj_input(h, "X", 2, DIMS("n", "p"));
    sj_input(h, "y", 1, DIMS("n"));
    sj_value mu = sj_logistic(h, sj_matmul(h, x, th));
    sj_value w = sj_mul(h, mu, sj_sub(h, sj_scalar(h, 1.0), mu));
    sj_value wx = sj_mul(h, sj_reshape(h, w, 2, DIMS("n", "1")), x);
    sj_value c = sj_matmul(h, sj_mT(h, x), wx);
    return fn_of(h, 1, &c);
}

/* The logistic fit: inputs theta0 [p], X [n, p], y [n]; outputs θ̂, steps,
 * flag. */
static sj_fn *logistic_fit(int with_fisher, int max_iter, sj_fit_rule rule, double tol)
{
    sj_fn *obj = logistic_objective(), *fisher = with_fisher ? logistic_fisher() : NULL;
    sj_graph *g = graph();
    sj_value t0 = sj_input(g, "theta0", 1, DIMS("p"));
    sj_value x = sj_input(g, "X", 2, DIMS("n", "p"));
    sj_value y = sj_input(g, "y", 1, DIMS("n"));
    sj_value out[3];
    assert_ok(sj_fit_argmin(g, obj, fisher, t0, 2, (sj_value[]){x, y}, max_iter, rule, tol,
                            &out[0], &out[1], &out[2]),
              ctx);
    sj_fn_free(obj);
    sj_fn_free(fisher);
    return fn_of(g, 3, out);
}

enum { N = 40, P = 3 };

static void logistic_data(uint64_t seed, double *x, double *y)
{
    uint64_t rng = seed;
    const double beta[P] = {0.5, -1.0, 0.8};
    for (int i = 0; i < N; i++) {
        double eta = 0;
        for (int j = 0; j < P; j++) {
            x[i * P + j] = j == 0 ? 1.0 : test_uniform(&rng, -2, 2);
            eta += x[i * P + j] * beta[j];
        }
        y[i] = test_uniform(&rng, 0, 1) < 1 / (1 + exp(-eta)) ? 1.0 : 0.0;
    }
}

/* R's glm.fit for the logit link, in C: β ← β + (XᵀWX)⁻¹Xᵀ(y − μ). */
static void logistic_newton(const double *x, const double *y, double *beta)
{
    memset(beta, 0, P * sizeof *beta);
    for (int it = 0; it < 50; it++) {
        double h[P][P] = {{0}}, g[P] = {0};
        for (int i = 0; i < N; i++) {
            double eta = 0;
            for (int j = 0; j < P; j++)
                eta += x[i * P + j] * beta[j];
            double mu = 1 / (1 + exp(-eta)), w = mu * (1 - mu);
            for (int j = 0; j < P; j++) {
                g[j] += x[i * P + j] * (y[i] - mu);
                for (int l = 0; l < P; l++)
                    h[j][l] += w * x[i * P + j] * x[i * P + l];
            }
        }
        /* Gaussian elimination (H is SPD). */
        for (int c = 0; c < P; c++)
            for (int r = c + 1; r < P; r++) {
                double m = h[r][c] / h[c][c];
                for (int l = c; l < P; l++)
                    h[r][l] -= m * h[c][l];
                g[r] -= m * g[c];
            }
        double d[P];
        for (int r = P - 1; r >= 0; r--) {
            double s = g[r];
            for (int l = r + 1; l < P; l++)
                s -= h[r][l] * d[l];
            d[r] = s / h[r][r];
        }
        for (int j = 0; j < P; j++)
            beta[j] += d[j];
    }
}

static const int64_t dim_p[1] = {P}, dim_np[2] = {N, P}, dim_n[1] = {N};

/* ---- solver results ----------------------------------------------------------- */

static void test_quadratic(void **state)
{
    sj_fn *obj = quadratic_objective();
    sj_graph *g = graph();
    sj_value t0 = sj_input(g, "theta0", 1, DIMS("3"));
    sj_value a = sj_input(g, "A", 2, DIMS("3", "3"));
    sj_value b = sj_input(g, "b", 1, DIMS("3"));
    sj_value out[3];
    assert_ok(sj_fit_argmin(g, obj, NULL, t0, 2, (sj_value[]){a, b}, 10, SJ_FIT_GRAD_NORM, 1e-10,
                            &out[0], &out[1], &out[2]),
              ctx);
    char *s = sj_graph_print(g);
    assert_non_null(strstr(s, "fit[problem=0]"));
    assert_non_null(strstr(s, "problem 0 [max_iter=10,tol=1e-10,grad_norm] {"));
    assert_non_null(strstr(s, "  objective graph(theta: [k], A: [k, k], b: [k]) {"));
    sj_string_free(s);
    sj_fn *f = fn_of(g, 3, out);
    sj_fn_free(obj);
    double am[9] = {4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2}, bv[3] = {1, -2, 0.5};
    double th0[3] = {10, -3, 7};
    /* θ̂ = A⁻¹ b, solved by Cramer's rule. */
    double det = am[0] * (am[4] * am[8] - am[5] * am[7]) - am[1] * (am[3] * am[8] - am[5] * am[6]) +
                 am[2] * (am[3] * am[7] - am[4] * am[6]);
    double want[3];
    for (int c = 0; c < 3; c++) {
        double m[9];
        memcpy(m, am, sizeof m);
        for (int r = 0; r < 3; r++)
            m[r * 3 + c] = bv[r];
        want[c] = (m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                   m[2] * (m[3] * m[7] - m[4] * m[6])) / det;
    }
    for (int native = 0; native < 2; native++) {
        double th[3], it = -1, cv = -1;
        assert_ok(run(f, native, 3, (int[]){1, 2, 1},
                      (const int64_t *[]){(int64_t[]){3}, (int64_t[]){3, 3}, (int64_t[]){3}},
                      (const double *[]){th0, am, bv}, (double *[]){th, &it, &cv}),
                  ctx);
        assert_close(th, want, 3, 1e-10, 1e-12);
        assert_true(it == 1.0);
        assert_true(cv == 1.0);
    }
    sj_fn_free(f);
}

/* (a − θ0)² + b (θ1 − θ0²)², data (a, b). */
static sj_fn *rosenbrock_fit(int max_iter)
{
    sj_graph *h = graph();
    sj_value th = sj_input(h, "theta", 1, DIMS("2"));
    sj_value ab = sj_input(h, "ab", 1, DIMS("2"));
    sj_value t0 = sj_slice(h, th, 0, 0, 1), t1 = sj_slice(h, th, 0, 1, 2);
    sj_value a = sj_slice(h, ab, 0, 0, 1), b = sj_slice(h, ab, 0, 1, 2);
    sj_value f = sj_sum_all(h, sj_add(h, sj_square(h, sj_sub(h, a, t0)),
                                      sj_mul(h, b, sj_square(h, sj_sub(h, t1, sj_square(h, t0))))));
    sj_fn *obj = fn_of(h, 1, &f);
    sj_graph *g = graph();
    sj_value th0 = sj_input(g, "theta0", 1, DIMS("2"));
    sj_value d = sj_input(g, "ab", 1, DIMS("2"));
    sj_value out[3];
    assert_ok(sj_fit_argmin(g, obj, NULL, th0, 1, &d, max_iter, SJ_FIT_GRAD_NORM, 1e-9, &out[0],
                            &out[1], &out[2]),
              ctx);
    sj_fn_free(obj);
    return fn_of(g, 3, out);
}

static void test_rosenbrock(void **state)
{
    sj_fn *f = rosenbrock_fit(100);
    double th0[2] = {-1.2, 1}, ab[2] = {1, 100}, one[2] = {1, 1};
    double ref[4] = {0};
    for (int native = 0; native < 2; native++) {
        double out[4] = {0};
        assert_ok(run(f, native, 2, (int[]){1, 1}, (const int64_t *[]){(int64_t[]){2}, (int64_t[]){2}},
                      (const double *[]){th0, ab}, (double *[]){out, out + 2, out + 3}),
                  ctx);
        print_message("rosenbrock (%s): theta (%.12g, %.12g) after %g steps, converged %g\n",
                      native ? "native" : "evaluator", out[0], out[1], out[2], out[3]);
        assert_close(out, one, 2, 1e-8, 1e-8);
        assert_true(out[2] >= 5 && out[2] <= 60);
        assert_true(out[3] == 1.0);
        if (native)
            assert_close(out, ref, 4, 1e-12, 1e-12); /* the same loop, the same steps */
        else
            memcpy(ref, out, sizeof ref);
    }
    sj_fn_free(f);
    /* Not converged: one step, and none. */
    for (int max_iter = 0; max_iter < 2; max_iter++) {
        sj_fn *f1 = rosenbrock_fit(max_iter);
        for (int native = 0; native < 2; native++) {
            double out[4] = {NAN, NAN, NAN, NAN};
            assert_ok(run(f1, native, 2, (int[]){1, 1},
                          (const int64_t *[]){(int64_t[]){2}, (int64_t[]){2}},
                          (const double *[]){th0, ab}, (double *[]){out, out + 2, out + 3}),
                      ctx);
            assert_true(isfinite(out[0]) && isfinite(out[1]));
            assert_true(out[2] == (double)max_iter);
            assert_true(out[3] == 0.0);
            if (max_iter == 0)
                assert_close(out, th0, 2, 0, 0);
        }
        sj_fn_free(f1);
    }
}

static void test_logistic(void **state)
{
    double x[N * P], y[N], want[P], th0[P] = {0};
    logistic_data(7, x, y);
    logistic_newton(x, y, want);
    for (int fisher = 0; fisher < 2; fisher++) {
        sj_fn *f = logistic_fit(fisher, 25, SJ_FIT_REL_OBJECTIVE, 1e-10);
        for (int native = 0; native < 2; native++) {
            double th[P], it, cv;
            assert_ok(run(f, native, 3, (int[]){1, 2, 1}, (const int64_t *[]){dim_p, dim_np, dim_n},
                          (const double *[]){th0, x, y}, (double *[]){th, &it, &cv}),
                      ctx);
            print_message("logistic (%s, %s): %g steps\n", fisher ? "Fisher" : "Hessian",
                          native ? "native" : "evaluator", it);
            assert_close(th, want, P, 1e-9, 1e-10);
            assert_true(cv == 1.0);
            assert_true(it >= 3 && it <= 25);
        }
        sj_fn_free(f);
    }
}

/* −logdet(diag θ) + cᵀθ: defined only for θ > 0; θ̂ = 1/c. */
static sj_fn *logdet_fit(void)
{
    sj_graph *h = graph();
    sj_value th = sj_input(h, "theta", 1, DIMS("2"));
    sj_value c = sj_input(h, "c", 1, DIMS("2"));
    sj_value f = sj_add(h, sj_neg(h, sj_logdet(h, sj_diag_embed(h, th))),
                        sj_sum_all(h, sj_mul(h, c, th)));
    sj_fn *obj = fn_of(h, 1, &f);
    sj_graph *g = graph();
    sj_value t0 = sj_input(g, "theta0", 1, DIMS("2"));
    sj_value cv = sj_input(g, "c", 1, DIMS("2"));
    sj_value out[3];
    assert_ok(sj_fit_argmin(g, obj, NULL, t0, 1, &cv, 50, SJ_FIT_GRAD_NORM, 1e-12, &out[0],
                            &out[1], &out[2]),
              ctx);
    sj_fn_free(obj);
    return fn_of(g, 3, out);
}

static void test_failing_step(void **state)
{
    sj_fn *f = logdet_fit();
    double th0[2] = {3, 0.5}, c[2] = {1, 1}, want[2] = {1, 1};
    const int64_t *dims[2] = {(int64_t[]){2}, (int64_t[]){2}};
    for (int native = 0; native < 2; native++) {
        double th[2], it, cv;
        assert_ok(run(f, native, 2, (int[]){1, 1}, dims, (const double *[]){th0, c},
                      (double *[]){th, &it, &cv}),
                  ctx);
        assert_close(th, want, 2, 1e-10, 1e-12);
        assert_true(cv == 1.0);
        /* A start outside the domain is an error, not a NaN. */
        double bad[2] = {-1, 1}, keep[2] = {42, 42};
        sj_status st = run(f, native, 2, (int[]){1, 1}, dims, (const double *[]){bad, c},
                           (double *[]){keep, &it, &cv});
        assert_int_equal(st, SJ_ERR_NOT_POSITIVE_DEFINITE);
        if (!native)
            assert_error(st, SJ_ERR_NOT_POSITIVE_DEFINITE, ctx, "starting point");
        assert_true(keep[0] == 42 && keep[1] == 42);
    }
    sj_fn_free(f);
}

/* ---- derivatives ---------------------------------------------------------------- */

/* θ̂ as a function of (X, y) with a tight rule, for differences of refits. */
static sj_fn *logistic_theta(void)
{
    sj_fn *f = logistic_fit(0, 50, SJ_FIT_GRAD_NORM, 1e-11);
    sj_fn *obj = logistic_objective();
    sj_fn_free(obj);
    return f;
}

static void fit_theta(sj_fn *f, const double *x, const double *y, double *th)
{
    double th0[P] = {0}, it, cv;
    assert_ok(run(f, 0, 3, (int[]){1, 2, 1}, (const int64_t *[]){dim_p, dim_np, dim_n},
                  (const double *[]){th0, x, y}, (double *[]){th, &it, &cv}),
              ctx);
    assert_true(cv == 1.0);
}

static void test_derivatives(void **state)
{
    double x[N * P], y[N], th0[P] = {0};
    logistic_data(11, x, y);
    for (int i = 0; i < N; i++) /* y in (0, 1): a smooth function of y */
        y[i] = 0.25 + 0.5 * y[i];
    sj_fn *f = logistic_theta();
    sj_fn *jf = NULL, *vf = NULL;
    assert_ok(sj_jvp(f, 2, (int[]){1, 2}, &jf), ctx);
    assert_ok(sj_vjp(f, 2, (int[]){1, 2}, &vf), ctx);
    uint64_t rng = 3;
    double tx[N * P], ty[N], u[P];
    for (int i = 0; i < N * P; i++)
        tx[i] = test_uniform(&rng, -1, 1);
    for (int i = 0; i < N; i++)
        ty[i] = test_uniform(&rng, -1, 1);
    for (int j = 0; j < P; j++)
        u[j] = test_uniform(&rng, -1, 1);
    /* Central differences of refits along (tx, ty). */
    const double hstep = 1e-5;
    double xp[N * P], xm[N * P], yp[N], ym[N], tp[P], tm[P], fd[P];
    for (int i = 0; i < N * P; i++) {
        xp[i] = x[i] + hstep * tx[i];
        xm[i] = x[i] - hstep * tx[i];
    }
    for (int i = 0; i < N; i++) {
        yp[i] = y[i] + hstep * ty[i];
        ym[i] = y[i] - hstep * ty[i];
    }
    fit_theta(f, xp, yp, tp);
    fit_theta(f, xm, ym, tm);
    for (int j = 0; j < P; j++)
        fd[j] = (tp[j] - tm[j]) / (2 * hstep);
    for (int native = 0; native < 2; native++) {
        /* jvp: outputs θ̂, steps, flag, then their tangents. */
        double o[P], it, cv, dth[P], dit = -1, dcv = -1;
        assert_ok(run(jf, native, 5, (int[]){1, 2, 1, 2, 1},
                      (const int64_t *[]){dim_p, dim_np, dim_n, dim_np, dim_n},
                      (const double *[]){th0, x, y, tx, ty},
                      (double *[]){o, &it, &cv, dth, &dit, &dcv}),
                  ctx);
        assert_close(dth, fd, P, 1e-6, 1e-8);
        assert_true(dit == 0.0 && dcv == 0.0);
        /* vjp with cotangents (u, 1, 1): the last two have no effect. */
        double gx[N * P], gy[N], one = 1.0;
        assert_ok(run(vf, native, 6, (int[]){1, 2, 1, 1, 0, 0},
                      (const int64_t *[]){dim_p, dim_np, dim_n, dim_p, NULL, NULL},
                      (const double *[]){th0, x, y, u, &one, &one}, (double *[]){gx, gy}),
                  ctx);
        double lhs = 0, rhs = 0;
        for (int j = 0; j < P; j++)
            lhs += u[j] * dth[j];
        for (int i = 0; i < N * P; i++)
            rhs += gx[i] * tx[i];
        for (int i = 0; i < N; i++)
            rhs += gy[i] * ty[i];
        assert_close(&rhs, &lhs, 1, 1e-10, 1e-12);
        /* One element of the cotangent against a difference of refits. */
        double e = 0;
        for (int j = 0; j < P; j++)
            e += u[j] * fd[j];
        assert_close(&lhs, &e, 1, 1e-6, 1e-8);
        print_message("derivatives (%s): jvp vs FD ok, <u, jvp v> = %.15g, <vjp u, v> = %.15g\n",
                      native ? "native" : "evaluator", lhs, rhs);
    }
    sj_fn_free(jf);
    sj_fn_free(vf);
    sj_fn_free(f);
}

/* A held-out loss through the fit: L(y) = Σ (X2 θ̂(X, y) − y2)², differentiated
 * twice with respect to y. */
static void test_second_order(void **state)
{
    sj_fn *obj = logistic_objective();
    sj_graph *g = graph();
    sj_value t0 = sj_input(g, "theta0", 1, DIMS("p"));
    sj_value x = sj_input(g, "X", 2, DIMS("n", "p"));
    sj_value y = sj_input(g, "y", 1, DIMS("n"));
    sj_value x2 = sj_input(g, "X2", 2, DIMS("m", "p"));
    sj_value y2 = sj_input(g, "y2", 1, DIMS("m"));
    sj_value th;
    assert_ok(sj_fit_argmin(g, obj, NULL, t0, 2, (sj_value[]){x, y}, 50, SJ_FIT_GRAD_NORM, 1e-11,
                            &th, NULL, NULL),
              ctx);
    sj_value loss = sj_sum_all(g, sj_square(g, sj_sub(g, sj_matmul(g, x2, th), y2)));
    sj_fn *f = fn_of(g, 1, &loss);
    sj_fn_free(obj);
    sj_fn *gr = NULL, *he = NULL;
    assert_ok(sj_grad(f, 0, 1, (int[]){2}, &gr), ctx);
    assert_ok(sj_hessian(f, 0, 1, (int[]){2}, &he), ctx);
    enum { M = 5 };
    double xv[N * P], yv[N], x2v[M * P], y2v[M], th0[P] = {0};
    logistic_data(5, xv, yv);
    for (int i = 0; i < N; i++)
        yv[i] = 0.3 + 0.4 * yv[i];
    uint64_t rng = 9;
    for (int i = 0; i < M * P; i++)
        x2v[i] = test_uniform(&rng, -1, 1);
    for (int i = 0; i < M; i++)
        y2v[i] = test_uniform(&rng, -1, 1);
    const int ranks[5] = {1, 2, 1, 2, 1};
    const int64_t *dims[5] = {dim_p, dim_np, dim_n, (int64_t[]){M, P}, (int64_t[]){M}};
    static double hess[N * N], fdh[N * N];
    for (int native = 0; native < 2; native++) {
        assert_ok(run(he, native, 5, ranks, dims, (const double *[]){th0, xv, yv, x2v, y2v},
                      (double *[]){hess}),
                  ctx);
        /* Columns j of the Hessian from differences of the gradient. */
        for (int j = 0; j < N; j += 7) {
            double yp[N], ym[N], gp[N], gm[N];
            const double hstep = 1e-5;
            memcpy(yp, yv, sizeof yp);
            memcpy(ym, yv, sizeof ym);
            yp[j] += hstep;
            ym[j] -= hstep;
            assert_ok(run(gr, native, 5, ranks, dims, (const double *[]){th0, xv, yp, x2v, y2v},
                          (double *[]){gp}),
                      ctx);
            assert_ok(run(gr, native, 5, ranks, dims, (const double *[]){th0, xv, ym, x2v, y2v},
                          (double *[]){gm}),
                      ctx);
            for (int i = 0; i < N; i++) {
                fdh[i] = (gp[i] - gm[i]) / (2 * hstep);
                double hij = hess[i * N + j];
                assert_close(&hij, &fdh[i], 1, 1e-5, 1e-7);
            }
        }
        for (int i = 0; i < N; i++) /* symmetric */
            for (int j = 0; j < i; j++)
                assert_close(&hess[i * N + j], &hess[j * N + i], 1, 1e-9, 1e-11);
    }
    sj_fn_free(gr);
    sj_fn_free(he);
    sj_fn_free(f);
}

/* ---- batching ------------------------------------------------------------------ */

static void test_vmap(void **state)
{
    enum { B = 6 };
    sj_fn *f = logistic_fit(0, 50, SJ_FIT_GRAD_NORM, 1e-11);
    static double xs[B][N * P], ys[B][N];
    double th0[P] = {0};
    for (int b = 0; b < B; b++)
        logistic_data(100 + (uint64_t)b, xs[b], ys[b]);
    /* The loop. */
    double want[B][P + 2];
    for (int b = 0; b < B; b++)
        assert_ok(run(f, 0, 3, (int[]){1, 2, 1}, (const int64_t *[]){dim_p, dim_np, dim_n},
                      (const double *[]){th0, xs[0], ys[b]},
                      (double *[]){want[b], want[b] + P, want[b] + P + 1}),
                  ctx);
    /* Batched y, shared X. */
    sj_fn *vf = NULL;
    assert_ok(sj_vmap(f, (int[]){-1, -1, 0}, NULL, "b", &vf), ctx);
    for (int native = 0; native < 2; native++) {
        double th[B][P], it[B], cv[B];
        assert_ok(run(vf, native, 3, (int[]){1, 2, 2},
                      (const int64_t *[]){dim_p, dim_np, (int64_t[]){B, N}},
                      (const double *[]){th0, xs[0], &ys[0][0]}, (double *[]){&th[0][0], it, cv}),
                  ctx);
        for (int b = 0; b < B; b++) {
            assert_close(th[b], want[b], P, 1e-10, 1e-12);
            assert_true(it[b] == want[b][P] && cv[b] == want[b][P + 1] && cv[b] == 1.0);
        }
    }
    sj_fn_free(vf);
    /* Batched X and y (and theta0), and a vmap of a vmap over 2 × 3 items. */
    double wantxy[B][P + 2];
    for (int b = 0; b < B; b++)
        assert_ok(run(f, 0, 3, (int[]){1, 2, 1}, (const int64_t *[]){dim_p, dim_np, dim_n},
                      (const double *[]){th0, xs[b], ys[b]},
                      (double *[]){wantxy[b], wantxy[b] + P, wantxy[b] + P + 1}),
                  ctx);
    assert_ok(sj_vmap(f, (int[]){-1, 0, 0}, NULL, NULL, &vf), ctx);
    sj_fn *vvf = NULL;
    assert_ok(sj_vmap(vf, (int[]){-1, 0, 0}, NULL, NULL, &vvf), ctx);
    for (int native = 0; native < 2; native++) {
        double th[B][P], it[B], cv[B];
        assert_ok(run(vf, native, 3, (int[]){1, 3, 2},
                      (const int64_t *[]){dim_p, (int64_t[]){B, N, P}, (int64_t[]){B, N}},
                      (const double *[]){th0, &xs[0][0], &ys[0][0]}, (double *[]){&th[0][0], it, cv}),
                  ctx);
        for (int b = 0; b < B; b++)
            assert_close(th[b], wantxy[b], P, 1e-10, 1e-12);
        memset(th, 0, sizeof th);
        assert_ok(run(vvf, native, 3, (int[]){1, 4, 3},
                      (const int64_t *[]){dim_p, (int64_t[]){2, 3, N, P}, (int64_t[]){2, 3, N}},
                      (const double *[]){th0, &xs[0][0], &ys[0][0]}, (double *[]){&th[0][0], it, cv}),
                  ctx);
        for (int b = 0; b < B; b++) {
            assert_close(th[b], wantxy[b], P, 1e-10, 1e-12);
            assert_true(cv[b] == 1.0);
        }
    }
    /* vmap of a derivative and a derivative of the vmap: the jvp of θ̂ with
     * respect to y, per data set. */
    sj_fn *jf = NULL, *vjf = NULL, *jvf = NULL;
    assert_ok(sj_jvp(f, 1, (int[]){2}, &jf), ctx);
    assert_ok(sj_vmap(jf, (int[]){-1, 0, 0, 0}, NULL, NULL, &vjf), ctx);
    assert_ok(sj_jvp(vf, 1, (int[]){2}, &jvf), ctx);
    static double ts[B][N];
    uint64_t rng = 17;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++)
            ts[b][i] = test_uniform(&rng, -1, 1);
    double dwant[B][P];
    for (int b = 0; b < B; b++) {
        double o[P], it, cv, dit, dcv;
        assert_ok(run(jf, 0, 4, (int[]){1, 2, 1, 1},
                      (const int64_t *[]){dim_p, dim_np, dim_n, dim_n},
                      (const double *[]){th0, xs[b], ys[b], ts[b]},
                      (double *[]){o, &it, &cv, dwant[b], &dit, &dcv}),
                  ctx);
    }
    for (int native = 0; native < 2; native++) {
        sj_fn *fs[2] = {vjf, jvf};
        for (int which = 0; which < 2; which++) {
            double o[B][P], it[B], cv[B], d[B][P], dit[B], dcv[B];
            assert_ok(run(fs[which], native, 4, (int[]){1, 3, 2, 2},
                          (const int64_t *[]){dim_p, (int64_t[]){B, N, P}, (int64_t[]){B, N},
                                              (int64_t[]){B, N}},
                          (const double *[]){th0, &xs[0][0], &ys[0][0], &ts[0][0]},
                          (double *[]){&o[0][0], it, cv, &d[0][0], dit, dcv}),
                      ctx);
            for (int b = 0; b < B; b++)
                assert_close(d[b], dwant[b], P, 1e-9, 1e-11);
        }
    }
    sj_fn_free(jf);
    sj_fn_free(vjf);
    sj_fn_free(jvf);
    sj_fn_free(vvf);
    sj_fn_free(vf);
    sj_fn_free(f);
}

/* ---- errors ----------------------------------------------------------------------- */

/* The logistic fit with the previous iterate (concrete p): outputs θ̂,
 * steps, flag, previous. */
static sj_fn *logistic_fit_previous(int max_iter)
{
    sj_fn *obj = logistic_objective(), *fisher = logistic_fisher();
    sj_graph *g = graph();
    sj_value t0 = sj_input(g, "theta0", 1, DIMS("3"));
    sj_value x = sj_input(g, "X", 2, DIMS("n", "3"));
    sj_value y = sj_input(g, "y", 1, DIMS("n"));
    sj_value out[4];
    assert_ok(sj_fit_argmin_previous(g, obj, fisher, t0, 2, (sj_value[]){x, y}, max_iter,
                                     SJ_FIT_REL_OBJECTIVE, 1e-10, &out[0], &out[1], &out[2],
                                     &out[3]),
              ctx);
    sj_fn_free(obj);
    sj_fn_free(fisher);
    return fn_of(g, 4, out);
}

/* vmap of the previous-iterate fit over B responses against single fits. */
static void check_previous_batched(sj_fn *f, const double *x, const double *th0, int B)
{
    double *ys = malloc((size_t)B * N * sizeof *ys), *want = malloc((size_t)B * (2 * P + 2) * sizeof *want);
    double *th = malloc((size_t)B * P * sizeof *th), *pr = malloc((size_t)B * P * sizeof *pr);
    double *it = malloc((size_t)B * sizeof *it), *cv = malloc((size_t)B * sizeof *cv);
    double xb[N * P];
    assert_true(ys && want && th && pr && it && cv);
    for (int b = 0; b < B; b++) {
        logistic_data(200 + (uint64_t)b, xb, ys + (size_t)b * N); /* X stays x */
        double *w = want + (size_t)b * (2 * P + 2);
        assert_ok(run(f, 0, 3, (int[]){1, 2, 1}, (const int64_t *[]){dim_p, dim_np, dim_n},
                      (const double *[]){th0, x, ys + (size_t)b * N},
                      (double *[]){w, w + P, w + P + 1, w + P + 2}),
                  ctx);
    }
    sj_fn *vf = NULL;
    assert_ok(sj_vmap(f, (int[]){-1, -1, 0}, NULL, NULL, &vf), ctx);
    for (int native = 0; native < 2; native++) {
        assert_ok(run(vf, native, 3, (int[]){1, 2, 2},
                      (const int64_t *[]){dim_p, dim_np, (int64_t[]){B, N}},
                      (const double *[]){th0, x, ys}, (double *[]){th, it, cv, pr}),
                  ctx);
        for (int b = 0; b < B; b++) {
            const double *w = want + (size_t)b * (2 * P + 2);
            /* 1e-10: the lock-step function sums in another order */
            assert_close(th + (size_t)b * P, w, P, 1e-10, 1e-12);
            assert_close(pr + (size_t)b * P, w + P + 2, P, 1e-10, 1e-12);
            assert_true(it[b] == w[P] && cv[b] == w[P + 1]);
        }
    }
    sj_fn_free(vf);
    free(ys), free(want), free(th), free(pr), free(it), free(cv);
}

/* The previous iterate is the θ̂ of the same fit stopped one step earlier;
 * θ̂, steps and flag are those of the fit without it; batched, each item
 * has its own; its derivatives are zero and θ̂'s unchanged. */
static void test_previous(void **state)
{
    double x[N * P], y[N], th0[P] = {0.1, 0.1, 0.1};
    logistic_data(19, x, y);
    sj_fn *f = logistic_fit_previous(25), *plain = logistic_fit(1, 25, SJ_FIT_REL_OBJECTIVE, 1e-10);
    const int ranks[3] = {1, 2, 1};
    const int64_t *dims[3] = {dim_p, dim_np, dim_n};
    const double *in[3] = {th0, x, y};
    for (int native = 0; native < 2; native++) {
        double o[2 * P + 2], w[P + 2];
        assert_ok(run(f, native, 3, ranks, dims, in, (double *[]){o, o + P, o + P + 1, o + P + 2}),
                  ctx);
        assert_ok(run(plain, native, 3, ranks, dims, in, (double *[]){w, w + P, w + P + 1}), ctx);
        /* The same iterations: 1e-13 allows for the two kernels vectorising
         * their loops differently. */
        assert_close(o, w, P + 2, 1e-13, 1e-15);
        assert_true(o[P + 1] == 1.0 && o[P] >= 2);
        sj_fn *early = logistic_fit(1, (int)o[P] - 1, SJ_FIT_REL_OBJECTIVE, 1e-10);
        double e[P + 2];
        assert_ok(run(early, native, 3, ranks, dims, in, (double *[]){e, e + P, e + P + 1}), ctx);
        assert_true(e[P] == o[P] - 1 && e[P + 1] == 0.0);
        assert_close(o + P + 2, e, P, 1e-13, 1e-15);
        sj_fn_free(early);
        print_message("previous (%s): %g steps, theta %.10g %.10g %.10g, previous %.10g %.10g "
                      "%.10g\n", native ? "native" : "evaluator", o[P], o[0], o[1], o[2],
                      o[P + 2], o[P + 3], o[P + 4]);
    }
    /* No step taken: the previous iterate is theta0. */
    sj_fn *none = logistic_fit_previous(0);
    for (int native = 0; native < 2; native++) {
        double o[2 * P + 2];
        assert_ok(run(none, native, 3, ranks, dims, in,
                      (double *[]){o, o + P, o + P + 1, o + P + 2}),
                  ctx);
        assert_true(o[P] == 0.0 && o[P + 1] == 0.0);
        assert_close(o + P + 2, th0, P, 0, 0);
    }
    sj_fn_free(none);
    /* Batched over y: each item's previous iterate is its own fit's, item
     * by item (4) and in lock step (12, docs/fit.md). */
    for (int B = 4; B <= 12; B += 8)
        check_previous_batched(f, x, th0, B);
    /* jvp along y: θ̂'s tangent is the plain fit's, the previous iterate's 0. */
    for (int i = 0; i < N; i++)
        y[i] = 0.25 + 0.5 * y[i];
    double ty[N];
    uint64_t rng = 5;
    for (int i = 0; i < N; i++)
        ty[i] = test_uniform(&rng, -1, 1);
    sj_fn *jf = NULL, *jp = NULL;
    assert_ok(sj_jvp(f, 1, (int[]){2}, &jf), ctx);
    assert_ok(sj_jvp(plain, 1, (int[]){2}, &jp), ctx);
    for (int native = 0; native < 2; native++) {
        double o[2 * P + 2], d[2 * P + 2], w[P + 2], dw[P + 2];
        for (int i = 0; i < 2 * P + 2; i++)
            d[i] = NAN;
        assert_ok(run(jf, native, 4, (int[]){1, 2, 1, 1},
                      (const int64_t *[]){dim_p, dim_np, dim_n, dim_n},
                      (const double *[]){th0, x, y, ty},
                      (double *[]){o, o + P, o + P + 1, o + P + 2, d, d + P, d + P + 1, d + P + 2}),
                  ctx);
        assert_ok(run(jp, native, 4, (int[]){1, 2, 1, 1},
                      (const int64_t *[]){dim_p, dim_np, dim_n, dim_n},
                      (const double *[]){th0, x, y, ty},
                      (double *[]){w, w + P, w + P + 1, dw, dw + P, dw + P + 1}),
                  ctx);
        assert_close(d, dw, P + 2, 1e-12, 1e-14);
        for (int j = 0; j < P; j++)
            assert_true(d[P + 2 + j] == 0.0);
    }
    sj_fn_free(jf);
    sj_fn_free(jp);
    /* A symbolic theta0 has no concrete size for the previous iterate. */
    sj_fn *obj = logistic_objective();
    sj_graph *g = graph();
    sj_value t0 = sj_input(g, "theta0", 1, DIMS("p"));
    sj_value xs = sj_input(g, "X", 2, DIMS("n", "p"));
    sj_value yv = sj_input(g, "y", 1, DIMS("n"));
    sj_value th, it, cv, pr;
    assert_error(sj_fit_argmin_previous(g, obj, NULL, t0, 2, (sj_value[]){xs, yv}, 10,
                                        SJ_FIT_GRAD_NORM, 1e-8, &th, &it, &cv, &pr),
                 SJ_ERR_UNSUPPORTED, ctx, "concrete size");
    assert_true(pr == SJ_INVALID && th == SJ_INVALID);
    sj_graph_free(g);
    sj_fn_free(obj);
    sj_fn_free(f);
    sj_fn_free(plain);
}

static void test_errors(void **state)
{
    sj_fn *obj = logistic_objective(), *quad = quadratic_objective();
    sj_value th, it, cv;
    /* theta0 of rank 2. */
    sj_graph *g = graph();
    sj_value t0 = sj_input(g, "theta0", 2, DIMS("p", "1"));
    sj_value x = sj_input(g, "X", 2, DIMS("n", "p"));
    sj_value y = sj_input(g, "y", 1, DIMS("n"));
    assert_error(sj_fit_argmin(g, obj, NULL, t0, 2, (sj_value[]){x, y}, 10, SJ_FIT_GRAD_NORM,
                               1e-8, &th, &it, &cv),
                 SJ_ERR_SHAPE, ctx, "theta0 must be a vector");
    assert_true(th == SJ_INVALID);
    /* Sticky: a later call passes the error through. */
    assert_int_equal(sj_fit_argmin(g, obj, NULL, x, 1, &y, 10, SJ_FIT_GRAD_NORM, 1e-8, &th, NULL,
                                   NULL),
                     SJ_ERR_SHAPE);
    sj_graph_free(g);
    /* Data count, rank and size mismatches. */
    g = graph();
    t0 = sj_input(g, "theta0", 1, DIMS("3"));
    x = sj_input(g, "X", 2, DIMS("n", "3"));
    y = sj_input(g, "y", 1, DIMS("n"));
    sj_value x4 = sj_input(g, "X4", 2, DIMS("n", "4"));
    assert_error(sj_fit_argmin(g, obj, NULL, t0, 1, &x, 10, SJ_FIT_GRAD_NORM, 1e-8, &th, &it, &cv),
                 SJ_ERR_SHAPE, ctx, "takes 3 inputs");
    sj_graph_free(g);
    g = graph();
    t0 = sj_input(g, "theta0", 1, DIMS("3"));
    x = sj_input(g, "X", 2, DIMS("n", "3"));
    y = sj_input(g, "y", 1, DIMS("n"));
    x4 = sj_input(g, "X4", 2, DIMS("n", "4"));
    assert_error(sj_fit_argmin(g, obj, NULL, t0, 2, (sj_value[]){y, y}, 10, SJ_FIT_GRAD_NORM, 1e-8,
                               &th, &it, &cv),
                 SJ_ERR_SHAPE, ctx, "input \"X\"");
    sj_graph_free(g);
    g = graph();
    t0 = sj_input(g, "theta0", 1, DIMS("3"));
    y = sj_input(g, "y", 1, DIMS("n"));
    x4 = sj_input(g, "X4", 2, DIMS("n", "4"));
    /* p = 3 (theta0) against p = 4 (X4): seen when the objective is
     * specialised to the fit's shapes. */
    assert_ok(sj_fit_argmin(g, obj, NULL, t0, 2, (sj_value[]){x4, y}, 10, SJ_FIT_GRAD_NORM, 1e-8,
                            &th, &it, &cv),
              ctx);
    sj_fn *f4 = fn_of(g, 1, &th);
    sj_compiled *c4 = NULL;
    assert_error(sj_fn_specialize(f4, 3, (int[]){1, 1, 2}, /* theta0, y, X4 */
                                  (const int64_t *[]){(int64_t[]){3}, (int64_t[]){5}, (int64_t[]){5, 4}},
                                  &c4),
                 SJ_ERR_SHAPE, ctx, "dimension \"p\"");
    sj_fn_free(f4);
    /* A curvature of the wrong shape; an objective that is not a scalar. */
    g = graph();
    t0 = sj_input(g, "theta0", 1, DIMS("3"));
    sj_value a = sj_input(g, "A", 2, DIMS("3", "3"));
    sj_value b = sj_input(g, "b", 1, DIMS("3"));
    sj_graph *h = graph();
    sj_value ht = sj_input(h, "theta", 1, DIMS("k"));
    sj_input(h, "A", 2, DIMS("k", "k"));
    sj_input(h, "b", 1, DIMS("k"));
    sj_fn *vec = fn_of(h, 1, &ht);
    assert_error(sj_fit_argmin(g, quad, vec, t0, 2, (sj_value[]){a, b}, 10, SJ_FIT_GRAD_NORM, 1e-8,
                               &th, &it, &cv),
                 SJ_ERR_SHAPE, ctx, "the curvature returns");
    sj_graph_free(g);
    g = graph();
    t0 = sj_input(g, "theta0", 1, DIMS("3"));
    a = sj_input(g, "A", 2, DIMS("3", "3"));
    b = sj_input(g, "b", 1, DIMS("3"));
    assert_error(sj_fit_argmin(g, vec, NULL, t0, 2, (sj_value[]){a, b}, 10, SJ_FIT_GRAD_NORM, 1e-8,
                               &th, &it, &cv),
                 SJ_ERR_SHAPE, ctx, "not a scalar");
    sj_graph_free(g);
    /* Settings and foreign values. */
    const struct {
        int max_iter;
        int rule;
        double tol;
        const char *msg;
    } bad[] = {{-1, SJ_FIT_GRAD_NORM, 1e-8, "max_iter"},
               {10, 7, 1e-8, "rule"},
               {10, SJ_FIT_GRAD_NORM, 0.0, "tol"},
               {10, SJ_FIT_GRAD_NORM, NAN, "tol"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g = graph();
        t0 = sj_input(g, "theta0", 1, DIMS("3"));
        a = sj_input(g, "A", 2, DIMS("3", "3"));
        b = sj_input(g, "b", 1, DIMS("3"));
        assert_error(sj_fit_argmin(g, quad, NULL, t0, 2, (sj_value[]){a, b}, bad[i].max_iter,
                                   (sj_fit_rule)bad[i].rule, bad[i].tol, &th, &it, &cv),
                     SJ_ERR_INVALID_ARGUMENT, ctx, bad[i].msg);
        sj_graph_free(g);
    }
    g = graph();
    sj_graph *other = graph();
    t0 = sj_input(g, "theta0", 1, DIMS("3"));
    a = sj_input(other, "A", 2, DIMS("3", "3"));
    b = sj_input(g, "b", 1, DIMS("3"));
    assert_error(sj_fit_argmin(g, quad, NULL, t0, 2, (sj_value[]){a, b}, 10, SJ_FIT_GRAD_NORM, 1e-8,
                               &th, &it, &cv),
                 SJ_ERR_INVALID_ARGUMENT, ctx, "data[0]");
    sj_graph_free(g);
    g = graph();
    t0 = sj_input(g, "theta0", 1, DIMS("3"));
    assert_error(sj_fit_argmin(g, NULL, NULL, t0, 0, NULL, 10, SJ_FIT_GRAD_NORM, 1e-8, &th, &it,
                               &cv),
                 SJ_ERR_INVALID_ARGUMENT, ctx, "objective");
    sj_graph_free(g);
    sj_graph_free(other);
    /* Sizes that disagree only at specialisation. */
    g = graph();
    t0 = sj_input(g, "theta0", 1, DIMS("q"));
    x = sj_input(g, "X", 2, DIMS("n", "p"));
    y = sj_input(g, "y", 1, DIMS("n"));
    assert_ok(sj_fit_argmin(g, obj, NULL, t0, 2, (sj_value[]){x, y}, 10, SJ_FIT_GRAD_NORM, 1e-8,
                            &th, &it, &cv),
              ctx);
    sj_fn *f = fn_of(g, 1, &th);
    double zero[16] = {0}, out[4];
    sj_compiled *c = NULL;
    assert_error(sj_fn_specialize(f, 3, (int[]){1, 2, 1},
                                  (const int64_t *[]){(int64_t[]){4}, (int64_t[]){2, 3}, (int64_t[]){2}},
                                  &c),
                 SJ_ERR_SHAPE, ctx, "objective");
    (void)zero;
    (void)out;
    sj_fn_free(f);
    sj_fn_free(vec);
    sj_fn_free(obj);
    sj_fn_free(quad);
}

/* Two functions whose outer graphs are identical but whose objectives differ
 * (Σ(θ − c·a)², c = 1, 2) must not share compiled code: the problems are
 * part of the fingerprint and of the cache key. */
static void test_cache_key(void **state)
{
    sj_fn *f[2];
    for (int c = 0; c < 2; c++) {
        sj_graph *h = graph();
        sj_value th = sj_input(h, "theta", 1, DIMS("k"));
        sj_value a = sj_input(h, "a", 1, DIMS("k"));
        sj_value o = sj_sum_all(h, sj_square(h, sj_sub(h, th, sj_mul(h, sj_scalar(h, c + 1.0), a))));
        sj_fn *obj = fn_of(h, 1, &o);
        sj_graph *g = graph();
        sj_value t0 = sj_input(g, "theta0", 1, DIMS("k"));
        sj_value d = sj_input(g, "a", 1, DIMS("k"));
        sj_value out;
        assert_ok(sj_fit_argmin(g, obj, NULL, t0, 1, &d, 10, SJ_FIT_GRAD_NORM, 1e-10, &out, NULL,
                                NULL),
                  ctx);
        sj_fn_free(obj);
        f[c] = fn_of(g, 1, &out);
    }
    double t0[2] = {0, 0}, a[2] = {1, -2};
    for (int c = 0; c < 2; c++) {
        double th[2], want[2] = {(c + 1) * a[0], (c + 1) * a[1]};
        assert_ok(sj_fn_call(f[c], 2, (int[]){1, 1}, (const int64_t *[]){(int64_t[]){2}, (int64_t[]){2}},
                             (const double *[]){t0, a}, (double *[]){th}),
                  ctx);
        assert_close(th, want, 2, 1e-12, 1e-12);
        sj_fn_free(f[c]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quadratic),    cmocka_unit_test(test_rosenbrock),
        cmocka_unit_test(test_logistic),     cmocka_unit_test(test_failing_step),
        cmocka_unit_test(test_derivatives),  cmocka_unit_test(test_second_order),
        cmocka_unit_test(test_vmap),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_previous),
        cmocka_unit_test(test_cache_key),
    };
    return cmocka_run_group_tests_name("fit", tests, setup, teardown);
}
