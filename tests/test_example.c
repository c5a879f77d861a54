/* The README's example model (examples/example_model.c), evaluated and
 * compiled, against a direct computation: V formed densely, LAPACKE_dpotrf,
 * log det V = 2 Σ log diag L, V⁻¹ y by LAPACKE_dpotrs.  On the bundled data
 * and on a random data set.  Tolerance 1e-12 relative: both sides are
 * backward-stable Cholesky computations on a well-conditioned V (s2 > 0.1
 * bounds its smallest eigenvalue), differing only in summation order. */
#include <math.h>
#include <stdlib.h>

#include <lapacke.h>

#include "example_model.h"
#include "testutil.h"

/* f(codes, theta, s2, y) = logdet(V) + yᵀ V⁻¹ y with V = Z G Zᵀ + s2 I, Z the
 * one-hot design of codes, G = diag(exp(2θ)): as in examples/example_reml.c. */
static double direct(int n, const double *codes, const double *theta, double s2, const double *y)
{
    double *v = calloc((size_t)n * (size_t)n, sizeof *v), *alpha = malloc((size_t)n * sizeof *alpha);
    assert_non_null(v);
    assert_non_null(alpha);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++)
            if (codes[i] == codes[j])
                v[i * n + j] = exp(2.0 * theta[(int)codes[i]]);
        v[i * n + i] += s2;
        alpha[i] = y[i];
    }
    assert_int_equal(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, v, n), 0);
    double logdet = 0.0, quad = 0.0;
    for (int i = 0; i < n; i++)
        logdet += 2.0 * log(v[i * n + i]);
    assert_int_equal(LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', n, 1, v, n, alpha, 1), 0);
    for (int i = 0; i < n; i++)
        quad += y[i] * alpha[i];
    free(v);
    free(alpha);
    return logdet + quad;
}

/* Builds the model and runs it for (n, q) twice: through the reference
 * evaluator (values[0]) and as native code (values[1]). */
static void through_statjit(int n, int q, const double *codes, const double *theta, double s2,
                            const double *y, double values[2])
{
    sj_ctx *ctx = NULL;
    assert_int_equal(sj_ctx_create(&ctx), SJ_OK);
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value f = example_model(g);
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, 1, &f, &fn), ctx);
    int ranks[4] = {1, 1, 0, 1};
    int64_t dn[1] = {n}, dq[1] = {q};
    const int64_t *dims[4] = {dn, dq, NULL, dn};
    const double *in[4] = {codes, theta, &s2, y};
    sj_compiled *c = NULL;
    assert_ok(sj_fn_compile(fn, 4, ranks, dims, &c), ctx);
    size_t size = 0;
    assert_ok(sj_compiled_output_size(c, 0, &size), ctx);
    assert_int_equal(size, 1);
    values[0] = values[1] = NAN;
    assert_ok(sj_compiled_eval(c, in, (double *[]){&values[0]}), ctx);
    assert_ok(sj_compiled_call(c, in, (double *[]){&values[1]}), ctx);
    sj_compiled_free(c);
    sj_fn_free(fn);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* The bundled 12-row, 3-group data of examples/example_reml.c. */
static void test_example_data(void **state)
{
    (void)state;
    static const double codes[12] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2};
    static const double y[12] = {1.2, 0.8, 1.5, 1.1, -0.3, 0.2, -0.6, 0.1, 2.1, 2.6, 1.9, 2.4};
    static const double theta[3] = {0.1, -0.2, 0.3};
    double got[2], want = direct(12, codes, theta, 0.5, y);
    through_statjit(12, 3, codes, theta, 0.5, y, got);
    assert_close(&got[0], &want, 1, 1e-12, 0);
    assert_close(&got[1], &want, 1, 1e-12, 0);
}

/* 40 rows in 6 groups assigned at random (one group may be empty). */
static void test_random_data(void **state)
{
    (void)state;
    enum { N = 40, Q = 6 };
    uint64_t rng = 20240611;
    double codes[N], y[N], theta[Q];
    for (int i = 0; i < N; i++) {
        codes[i] = floor(test_uniform(&rng, 0, Q));
        y[i] = test_uniform(&rng, -3, 3);
    }
    for (int k = 0; k < Q; k++)
        theta[k] = test_uniform(&rng, -1, 1);
    double s2 = test_uniform(&rng, 0.1, 2);
    double got[2], want = direct(N, codes, theta, s2, y);
    through_statjit(N, Q, codes, theta, s2, y, got);
    assert_close(&got[0], &want, 1, 1e-12, 0);
    assert_close(&got[1], &want, 1, 1e-12, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_data),
        cmocka_unit_test(test_random_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
