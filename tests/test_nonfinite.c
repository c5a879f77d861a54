/* Non-finite inputs (NaN, ±Inf) give defined results or a status, the same
 * in the reference evaluator and in native code:
 *   - elementwise ops and reductions propagate them as IEEE arithmetic does
 *     (exp(NaN) = NaN, tanh(±Inf) = ±1, a sum with a NaN is NaN);
 *   - matmul propagates them into the rows/columns they touch;
 *   - cholesky and logdet of a matrix with a NaN in its lower triangle are
 *     SJ_ERR_NOT_POSITIVE_DEFINITE (ir/eval_linalg.c's convention);
 *   - a failing call leaves its outputs unchanged.
 * Matrices with infinite entries are not pinned down here: the evaluator
 * (OpenBLAS's dpotrf) and generated code may disagree on whether such a
 * matrix is positive definite; see docs/reliability.md. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#define SENTINEL 42.0

/* Specialises and compiles fn at the given shapes, runs both on `in`, and
 * checks that they agree: same status, and outputs equal (NaN = NaN) when
 * both succeed, untouched when both fail.  Returns the status; the
 * evaluator's outputs are left in out. */
static sj_status run_both(sj_ctx *ctx, sj_fn *fn, int ninput, const int *ranks,
                          const int64_t *const *dims, const double *const *in, int noutput,
                          double *const *out, const size_t *size)
{
    sj_compiled *spec = NULL, *nat = NULL;
    assert_ok(sj_fn_specialize(fn, ninput, ranks, dims, &spec), ctx);
    assert_ok(sj_fn_compile(fn, ninput, ranks, dims, &nat), ctx);
    double *nout[16];
    assert_true(noutput <= 16);
    for (int k = 0; k < noutput; k++) {
        nout[k] = test_malloc(size[k] * sizeof(double));
        for (size_t i = 0; i < size[k]; i++)
            nout[k][i] = out[k][i] = SENTINEL;
    }
    sj_status se = sj_compiled_eval(spec, in, out);
    sj_status sn = sj_compiled_call(nat, in, nout);
    if (se != sn)
        print_error("evaluator %s, native %s (%s)\n", sj_status_name(se), sj_status_name(sn),
                    sj_ctx_last_error(ctx));
    assert_int_equal(se, sn);
    for (int k = 0; k < noutput; k++) {
        if (se == SJ_OK) {
            assert_close(nout[k], out[k], size[k], 1e-12, 1e-12);
        } else {
            for (size_t i = 0; i < size[k]; i++) {
                assert_true(out[k][i] == SENTINEL);
                assert_true(nout[k][i] == SENTINEL);
            }
        }
        test_free(nout[k]);
    }
    sj_compiled_free(nat);
    sj_compiled_free(spec);
    return se;
}

static void test_elementwise(void **state)
{
    test_graph *f = *state;
    sj_graph *g = f->g;
    const char *n1[] = {"n"};
    sj_value x = sj_input(g, "x", 1, n1);
    sj_value outs[] = {sj_exp(g, x),      sj_log(g, x),      sj_tanh(g, x),
                       sj_logistic(g, x), sj_sqrt(g, x),     sj_abs(g, x),
                       sj_mul(g, x, x),   sj_sum_all(g, x),  sj_reduce_max(g, x, 1, (int[]){0}),
                       sj_add(g, x, sj_neg(g, x))};
    enum { NO = sizeof outs / sizeof *outs, NX = 5 };
    assert_ok(sj_graph_status(g), f->ctx);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, NO, outs, &fn), f->ctx);
    double x0[NX] = {NAN, INFINITY, -INFINITY, 0.0, 1.0};
    double r[NO][NX];
    double *out[NO];
    size_t size[NO];
    for (int k = 0; k < NO; k++) {
        out[k] = r[k];
        size[k] = (k == 7 || k == 8) ? 1 : NX;
    }
    int rank = 1;
    int64_t d[1] = {NX};
    const int64_t *dims[1] = {d};
    const double *in[1] = {x0};
    /* run_both compares native code with the evaluator; the values checked
     * below are IEEE's. */
    assert_ok(run_both(f->ctx, fn, 1, &rank, dims, in, NO, out, size), f->ctx);
    assert_true(isnan(r[0][0]) && r[0][1] == INFINITY && r[0][2] == 0.0 && r[0][3] == 1.0);
    assert_true(isnan(r[1][0]) && r[1][1] == INFINITY && isnan(r[1][2]) && r[1][3] == -INFINITY);
    assert_true(isnan(r[2][0]) && r[2][1] == 1.0 && r[2][2] == -1.0);
    assert_true(isnan(r[3][0]) && r[3][1] == 1.0 && r[3][2] == 0.0);
    assert_true(isnan(r[4][0]) && r[4][1] == INFINITY && isnan(r[4][2]));
    assert_true(isnan(r[5][0]) && r[5][1] == INFINITY && r[5][2] == INFINITY);
    assert_true(isnan(r[6][0]) && r[6][1] == INFINITY && r[6][2] == INFINITY);
    assert_true(isnan(r[7][0]));  /* NaN + Inf - Inf + ... */
    assert_true(isnan(r[9][0]) && isnan(r[9][1]) && isnan(r[9][2]) && r[9][3] == 0.0);
    sj_fn_free(fn);
}

static void test_matmul_propagates(void **state)
{
    test_graph *f = *state;
    sj_graph *g = f->g;
    const char *nn[] = {"n", "n"};
    sj_value a = sj_input(g, "a", 2, nn), b = sj_input(g, "b", 2, nn);
    sj_value c = sj_matmul(g, a, b);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, 1, &c, &fn), f->ctx);
    double av[9] = {1, 2, 3, 4, NAN, 6, 7, 8, 9}, bv[9] = {1, 0, 0, 0, 1, 0, 0, 0, INFINITY};
    double r[9], *out[1] = {r};
    size_t size[1] = {9};
    int ranks[2] = {2, 2};
    int64_t d[2] = {3, 3};
    const int64_t *dims[2] = {d, d};
    const double *in[2] = {av, bv};
    assert_ok(run_both(f->ctx, fn, 2, ranks, dims, in, 1, out, size), f->ctx);
    /* Row 1 holds the NaN: all NaN.  Column 2 times Inf: ±Inf or NaN. */
    assert_true(isnan(r[3]) && isnan(r[4]) && isnan(r[5]));
    assert_true(r[0] == 1 && r[1] == 2 && r[2] == INFINITY);
    sj_fn_free(fn);
}

static void test_cholesky_nan_is_not_pd(void **state)
{
    test_graph *f = *state;
    sj_graph *g = f->g;
    const char *nn[] = {"n", "n"};
    sj_value a = sj_input(g, "a", 2, nn);
    sj_value outs[2] = {sj_cholesky(g, a), sj_logdet(g, a)};
    sj_fn *chol = NULL, *ld = NULL;
    assert_ok(sj_fn_create(g, 1, &outs[0], &chol), f->ctx);
    assert_ok(sj_fn_create(g, 1, &outs[1], &ld), f->ctx);
    int rank = 2;
    double r[9], ldv, *lout[1] = {&ldv};
    size_t lsize[1] = {1};
    /* Sizes 3 (inline loops in native code) and 40 (LAPACK) both. */
    for (int n = 3; n <= 40; n += 37) {
        double *av = test_malloc((size_t)(n * n) * sizeof *av);
        double *big = test_malloc((size_t)(n * n) * sizeof *big);
        for (int pos = 0; pos < 3; pos++) {
            for (int i = 0; i < n * n; i++)
                av[i] = i % (n + 1) == 0 ? n + 1.0 : 0.5;
            /* NaN on the diagonal, below it, in the last row. */
            int at = pos == 0 ? 0 : pos == 1 ? n + 0 : (n - 1) * n + 1;
            av[at] = NAN;
            int64_t d[2] = {n, n};
            const int64_t *dims[1] = {d};
            const double *in[1] = {av};
            double *o = n == 3 ? r : big;
            double *outn[1] = {o};
            size_t sz[1] = {(size_t)(n * n)};
            assert_int_equal(run_both(f->ctx, chol, 1, &rank, dims, in, 1, outn, sz),
                             SJ_ERR_NOT_POSITIVE_DEFINITE);
            assert_int_equal(run_both(f->ctx, ld, 1, &rank, dims, in, 1, lout, lsize),
                             SJ_ERR_NOT_POSITIVE_DEFINITE);
        }
        test_free(av);
        test_free(big);
    }
    sj_fn_free(chol);
    sj_fn_free(ld);
}

/* Solves and the REML criterion with a NaN in y: defined (NaN) results, the
 * same in both; a NaN in the matrix of a general solve: either a status or
 * NaNs, the same in both. */
static void test_solves(void **state)
{
    test_graph *f = *state;
    sj_graph *g = f->g;
    const char *nn[] = {"n", "n"}, *n1[] = {"n"}, *n2[] = {"n", "2"};
    sj_value a = sj_input(g, "a", 2, nn), y = sj_input(g, "y", 1, n1), x = sj_input(g, "x", 2, n2);
    sj_value outs[3] = {sj_solve(g, a, y), sj_cholesky_solve(g, sj_cholesky(g, a), y),
                        sj_reml_criterion(g, a, x, y)};
    sj_fn *fn[3];
    for (int k = 0; k < 3; k++)
        assert_ok(sj_fn_create(g, 1, &outs[k], &fn[k]), f->ctx);
    double av[16], yv[4] = {1, NAN, 2, 3}, xv[8] = {1, 0, 1, 1, 1, 2, 1, 3};
    for (int i = 0; i < 16; i++)
        av[i] = i % 5 == 0 ? 4.0 : 0.25;
    int ranks[3] = {2, 1, 2};
    int64_t d2[2] = {4, 4}, d1[1] = {4}, dx[2] = {4, 2};
    const int64_t *dims[3] = {d2, d1, dx};
    const double *in[3] = {av, yv, xv};
    double r[4], *out[1] = {r};
    size_t size[3] = {4, 4, 1};
    for (int k = 0; k < 3; k++) {
        size_t sz[1] = {size[k]};
        assert_ok(run_both(f->ctx, fn[k], 3, ranks, dims, in, 1, out, sz), f->ctx);
        assert_true(isnan(r[0]));
    }
    /* A NaN in the general matrix. */
    av[5] = NAN;
    yv[1] = 1;
    size_t sz[1] = {4};
    sj_status st = run_both(f->ctx, fn[0], 3, ranks, dims, in, 1, out, sz);
    assert_true(st == SJ_OK || st == SJ_ERR_SINGULAR);
    if (st == SJ_OK)
        assert_true(isnan(r[1]));
    for (int k = 0; k < 3; k++)
        sj_fn_free(fn[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_elementwise, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_matmul_propagates, test_graph_setup,
                                        test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_cholesky_nan_is_not_pd, test_graph_setup,
                                        test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_solves, test_graph_setup, test_graph_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
