/* The reference evaluator (ir/eval*.c), op by op, through the public API:
 * build with sj_*, sj_fn_create, sj_fn_specialize, sj_compiled_eval.  Every
 * op of ir/ops.def appears on hand-checked values, with edge shapes (a
 * zero-length axis, 1x1 matrices, size-1 broadcasting, a leading batch axis)
 * and the error paths.  IR attributes the public API never sets (matmul's
 * transpose flags, a non-trailing broadcast map) are checked on an IR graph
 * with ir_eval directly.
 *
 * Tolerances, unless a test says otherwise: 0 where the result is exact in
 * binary floating point (data movement, comparisons, sums of small integers);
 * 1e-15 relative for one libm call (correctly rounded or within 1 ulp);
 * 1e-13 relative for short chains of arithmetic; 1e-12 relative for LAPACK
 * results (backward-stable algorithms on well-conditioned matrices). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir/alloc.h"
#include "ir/eval.h"
#include "ir/graph.h"
#include "testutil.h"

#define SENTINEL 12345.0
#define NOUT_MAX 4

typedef struct arr {
    int rank;
    int64_t dim[SJ_MAX_RANK];
    const double *data;
} arr;

typedef struct shp {
    int rank;
    int64_t dim[SJ_MAX_RANK];
} shp;

/* An input of the given rank whose sizes come at specialisation. */
static sj_value in_any(sj_graph *g, const char *name, int rank)
{
    const char *d[SJ_MAX_RANK] = {"?", "?", "?", "?", "?", "?", "?", "?"};
    return sj_input(g, name, rank, d);
}

static sj_value cst(sj_graph *g, int rank, const int64_t *dims, const double *data)
{
    return sj_constant(g, rank, dims, data);
}

static size_t numel(const shp *s)
{
    size_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= (size_t)s->dim[i];
    return n;
}

/* Specialises the graph's function with outputs outs to the inputs' shapes,
 * checks each output's shape against want[k], fills res[k] with SENTINEL and
 * evaluates.  Returns the status of sj_compiled_eval. */
static sj_status run_n(test_graph *e, int nout, const sj_value *outs, int nin, const arr *in,
                       const shp *want, double *const *res)
{
    assert_ok(sj_graph_status(e->g), e->ctx);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(e->g, nout, outs, &fn), e->ctx);
    assert_int_equal(sj_fn_ninput(fn), nin);
    int ranks[8];
    const int64_t *dims[8];
    const double *data[8];
    for (int i = 0; i < nin; i++) {
        ranks[i] = in[i].rank;
        dims[i] = in[i].dim;
        data[i] = in[i].data;
    }
    sj_compiled *c = NULL;
    assert_ok(sj_fn_specialize(fn, nin, ranks, dims, &c), e->ctx);
    for (int k = 0; k < nout; k++) {
        int rank = -1;
        int64_t d[SJ_MAX_RANK];
        assert_ok(sj_compiled_output_shape(c, k, &rank, d), e->ctx);
        assert_int_equal(rank, want[k].rank);
        for (int i = 0; i < rank; i++)
            assert_int_equal(d[i], want[k].dim[i]);
        for (size_t i = 0; i < numel(&want[k]); i++)
            res[k][i] = SENTINEL;
    }
    sj_status st = sj_compiled_eval(c, data, res);
    sj_compiled_free(c);
    sj_fn_free(fn);
    return st;
}

static sj_status run1(test_graph *e, sj_value out, int nin, const arr *in, shp want, double *res)
{
    return run_n(e, 1, &out, nin, in, &want, &res);
}

/* run1 that must succeed and match want_values with the given tolerances. */
static void check1(test_graph *e, sj_value out, int nin, const arr *in, shp want,
                   const double *want_values, double rtol, double atol)
{
    size_t n = numel(&want);
    double *res = malloc((n ? n : 1) * sizeof *res);
    assert_non_null(res);
    assert_ok(run1(e, out, nin, in, want, res), e->ctx);
    assert_close(res, want_values, n, rtol, atol);
    free(res);
}

static void assert_all_sentinel(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_true(x[i] == SENTINEL);
}

/* ---- sources ------------------------------------------------------------------- */

static void test_sources(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    const char *n[] = {"n"};
    sj_value x = sj_input(g, "x", 1, n);
    static const double c[3] = {1.5, -2, 4};
    /* x + const + scalar, and eye(n) sized by x; exact. */
    sj_value s = sj_add(g, sj_add(g, x, cst(g, 1, (int64_t[]){3}, c)), sj_scalar(g, 0.25));
    sj_value id = sj_eye(g, "n");
    sj_value outs[3] = {s, id, x};
    static const double xv[3] = {1, 2, 3};
    double r0[3], r1[9], r2[3];
    shp want[3] = {{1, {3}}, {2, {3, 3}}, {1, {3}}};
    assert_ok(run_n(e, 3, outs, 1, (arr[]){{1, {3}, xv}}, want, (double *[]){r0, r1, r2}), e->ctx);
    assert_close(r0, ((double[]){2.75, 0.25, 7.25}), 3, 0, 0);
    assert_close(r1, ((double[]){1, 0, 0, 0, 1, 0, 0, 0, 1}), 9, 0, 0);
    assert_close(r2, xv, 3, 0, 0);
}

/* eye of size 0 and 1 (edge shapes); exact. */
static void test_eye_edges(void **state)
{
    test_graph *e = *state;
    sj_value v = in_any(e->g, "v", 1);
    sj_value outs[2] = {sj_eye(e->g, "1"), sj_mul(e->g, sj_eye(e->g, "0"), sj_scalar(e->g, 2))};
    (void)v;
    double r0[1], r1[1] = {SENTINEL};
    shp want[2] = {{2, {1, 1}}, {2, {0, 0}}};
    assert_ok(run_n(e, 2, outs, 1, (arr[]){{1, {0}, NULL}}, want, (double *[]){r0, r1}), e->ctx);
    assert_true(r0[0] == 1.0);
}

/* ---- elementwise unary ------------------------------------------------------------ */

/* One libm call each: 1e-15 relative (constants from mpmath, 40 digits). */
static void test_unary_basic(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 1);
    static const double xv[4] = {1, 2, 0.5, 1e-10};
    sj_value outs[4] = {sj_exp(g, x), sj_log(g, x), sj_sqrt(g, x), sj_tanh(g, x)};
    double r[4][4];
    shp want[4] = {{1, {4}}, {1, {4}}, {1, {4}}, {1, {4}}};
    assert_ok(run_n(e, 4, outs, 1, (arr[]){{1, {4}, xv}}, want, (double *[]){r[0], r[1], r[2], r[3]}),
              e->ctx);
    assert_close(r[0], ((double[]){2.718281828459045, 7.38905609893065, 1.6487212707001282,
                                   1.0000000001}), 4, 1e-15, 0);
    assert_close(r[1], ((double[]){0, 0.6931471805599453, -0.6931471805599453,
                                   -23.025850929940457}), 4, 1e-15, 0);
    assert_close(r[2], ((double[]){1, 1.4142135623730951, 0.7071067811865476, 1e-5}), 4, 1e-15, 0);
    assert_close(r[3], ((double[]){0.7615941559557649, 0.9640275800758169, 0.46211715726000974,
                                   1e-10}), 4, 1e-15, 0);
}

/* log1p/expm1 keep the small-x digits; neg/square/recip/abs/sign exact. */
static void test_unary_more(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 1);
    static const double xv[5] = {1e-10, -2, 0, 0.5, -0.0};
    sj_value outs[4] = {sj_log1p(g, x), sj_expm1(g, x), sj_neg(g, x), sj_square(g, x)};
    double r[4][5];
    shp want[4] = {{1, {5}}, {1, {5}}, {1, {5}}, {1, {5}}};
    assert_ok(run_n(e, 4, outs, 1, (arr[]){{1, {5}, xv}}, want, (double *[]){r[0], r[1], r[2], r[3]}),
              e->ctx);
    assert_true(isnan(r[0][1])); /* log1p(-2) */
    assert_close(r[0], ((double[]){9.9999999995e-11, r[0][1], 0, 0.4054651081081644, 0}), 5,
                 1e-15, 0);
    assert_close(r[1], ((double[]){1.00000000005e-10, -0.8646647167633873, 0, 0.6487212707001282,
                                   0}), 5, 1e-15, 0);
    assert_close(r[2], ((double[]){-1e-10, 2, 0, -0.5, 0}), 5, 0, 0);
    assert_close(r[3], ((double[]){1e-10 * 1e-10, 4, 0, 0.25, 0}), 5, 0, 0);
}

static void test_recip_abs_sign(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 1);
    static const double xv[5] = {-4, 0, 0.5, NAN, -0.0};
    sj_value outs[3] = {sj_recip(g, x), sj_abs(g, x), sj_sign(g, x)};
    double r[3][5];
    shp want[3] = {{1, {5}}, {1, {5}}, {1, {5}}};
    assert_ok(run_n(e, 3, outs, 1, (arr[]){{1, {5}, xv}}, want, (double *[]){r[0], r[1], r[2]}),
              e->ctx);
    /* exact; sign(NaN) = NaN, sign(±0) = 0 */
    assert_close(r[0], ((double[]){-0.25, INFINITY, 2, NAN, -INFINITY}), 5, 0, 0);
    assert_close(r[1], ((double[]){4, 0, 0.5, NAN, 0}), 5, 0, 0);
    assert_close(r[2], ((double[]){-1, 0, 1, NAN, 0}), 5, 0, 0);
}

/* logistic is stable in both tails: no overflow, no 0/0, small tail kept. */
static void test_logistic(void **state)
{
    test_graph *e = *state;
    sj_value x = in_any(e->g, "x", 1);
    static const double xv[6] = {0, 2, -30, 40, -1000, 1000};
    static const double want[6] = {0.5, 0.8807970779778824, 9.357622968839299e-14, 1.0, 0.0, 1.0};
    /* a few libm calls: 1e-15 relative */
    check1(e, sj_logistic(e->g, x), 1, (arr[]){{1, {6}, xv}}, (shp){1, {6}}, want, 1e-15, 0);
}

/* lgamma (libm): 1e-15 relative.  digamma/polygamma (ours): 1e-14 relative,
 * 1e-13 for high orders and negative x; reference values from mpmath at 40
 * digits, or closed forms (digamma(1) = -γ, trigamma(1) = π²/6,
 * polygamma(2, 1) = -2ζ(3), polygamma(3, 1) = π⁴/15). */
static void test_lgamma(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 1);
    static const double xv[3] = {0.5, 10, 3.5};
    check1(e, sj_lgamma(g, x), 1, (arr[]){{1, {3}, xv}}, (shp){1, {3}},
           (double[]){0.5723649429247001, 12.801827480081469, 1.2009736023470743}, 1e-15, 0);
}

static void test_digamma(void **state)
{
    test_graph *e = *state;
    sj_value x = in_any(e->g, "x", 1);
    static const double xv[10] = {1, 0.5, 100, 1e-8, 1e10, -0.5, -2.5, -99999.7, -0.001, 1.4616321449683622};
    static const double want[10] = {-0.5772156649015329, -1.9635100260214235, 4.600161852738087,
                                    -100000000.57721564, 23.025850929890456, 0.03648997397857652,
                                    1.103156640645243, 9.230426796514083, 999.4211381978913,
                                    -1.3669595495722517e-16};
    /* the last is ψ near its positive root: only absolute accuracy is meaningful */
    check1(e, sj_digamma(e->g, x), 1, (arr[]){{1, {10}, xv}}, (shp){1, {10}}, want, 1e-14, 1e-15);
}

static void test_digamma_poles(void **state)
{
    test_graph *e = *state;
    sj_value x = in_any(e->g, "x", 1);
    static const double xv[6] = {0, -1, -7, NAN, -INFINITY, INFINITY};
    /* convention: NaN at the poles and -inf, +inf at +inf */
    check1(e, sj_digamma(e->g, x), 1, (arr[]){{1, {6}, xv}}, (shp){1, {6}},
           (double[]){NAN, NAN, NAN, NAN, NAN, INFINITY}, 0, 0);
}

static void test_polygamma(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 1);
    static const double x1[6] = {1, 0.5, 1e6, 1e-5, -0.5, 25};
    static const double x2[2] = {1, -1.5};
    static const double xn[1] = {1};
    sj_value outs[4] = {sj_polygamma(g, 1, x), sj_polygamma(g, 2, x), sj_polygamma(g, 3, x),
                        sj_polygamma(g, 0, x)};
    double r1[6];
    shp w6 = {1, {6}};
    assert_ok(run1(e, outs[0], 1, (arr[]){{1, {6}, x1}}, w6, r1), e->ctx);
    assert_close(r1, ((double[]){1.6449340668482264, 4.934802200544679, 1.0000005000001667e-06,
                                 10000000001.64491, 8.934802200544679, 0.04081066325722558}), 6,
                 1e-14, 0);
    double r2[2];
    assert_ok(run1(e, outs[1], 1, (arr[]){{1, {2}, x2}}, (shp){1, {2}}, r2), e->ctx);
    assert_close(r2, ((double[]){-2.4041138063191885, -0.2362040516417274}), 2, 1e-13, 0);
    double r3;
    assert_ok(run1(e, outs[2], 1, (arr[]){{1, {1}, xn}}, (shp){1, {1}}, &r3), e->ctx);
    assert_close(&r3, ((double[]){6.493939402266829}), 1, 1e-14, 0);
    /* order 0 is digamma */
    double r0;
    assert_ok(run1(e, outs[3], 1, (arr[]){{1, {1}, xn}}, (shp){1, {1}}, &r0), e->ctx);
    assert_close(&r0, ((double[]){-0.5772156649015329}), 1, 1e-14, 0);
}

static void test_polygamma_high_order_and_poles(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 1);
    static const double xv[1] = {1}, x2[1] = {2}, x37[1] = {3.7}, x1e3[1] = {1000};
    static const double poles[5] = {0, -3, NAN, -INFINITY, INFINITY};
    double r;
    /* polygamma(20, 1) = -20! ζ(21): 1e-13 relative */
    assert_ok(run1(e, sj_polygamma(g, 20, x), 1, (arr[]){{1, {1}, xv}}, (shp){1, {1}}, &r), e->ctx);
    assert_close(&r, ((double[]){-2.4329031685078615e+18}), 1, 1e-13, 0);
    assert_ok(run1(e, sj_polygamma(g, 64, x), 1, (arr[]){{1, {1}, x2}}, (shp){1, {1}}, &r), e->ctx);
    assert_close(&r, ((double[]){-3.43927718841123e+69}), 1, 1e-13, 0);
    assert_ok(run1(e, sj_polygamma(g, 5, x), 1, (arr[]){{1, {1}, x37}}, (shp){1, {1}}, &r), e->ctx);
    assert_close(&r, ((double[]){0.0639397539020398}), 1, 1e-13, 0);
    assert_ok(run1(e, sj_polygamma(g, 3, x), 1, (arr[]){{1, {1}, x1e3}}, (shp){1, {1}}, &r), e->ctx);
    assert_close(&r, ((double[]){2.003001999999e-09}), 1, 1e-13, 0);
    /* negative x through the reflection formula; tiny results at large x
     * (mpmath at 300 digits): 1e-13 relative */
    static const double xneg[4] = {-5000.5, -0.999, -123.456, 1e300};
    sj_value neg[4] = {sj_polygamma(g, 4, x), sj_polygamma(g, 3, x), sj_polygamma(g, 64, x),
                       sj_polygamma(g, 1, x)};
    static const double wneg[4] = {-9.592323518848285e-15, 6000000000012.472,
                                   1.8650805333574172e+111, 1e-300};
    for (int i = 0; i < 4; i++) {
        assert_ok(run1(e, neg[i], 1, (arr[]){{1, {1}, &xneg[i]}}, (shp){1, {1}}, &r), e->ctx);
        assert_close(&r, &wneg[i], 1, 1e-13, 0);
    }
    /* convention: NaN at poles, NaN and -inf; 0 at +inf */
    double rp[5];
    assert_ok(run1(e, sj_polygamma(g, 1, x), 1, (arr[]){{1, {5}, poles}}, (shp){1, {5}}, rp),
              e->ctx);
    assert_close(rp, ((double[]){NAN, NAN, NAN, NAN, 0}), 5, 0, 0);
}

/* ---- elementwise binary, compare, select ----------------------------------------------- */

/* Φ and Φ⁻¹ (ours, on libm's erfc): 2e-15 relative over the whole range,
 * both tails included; reference values from mpmath at 50+ digits (the
 * exact values at the double inputs; R's pnorm(1.96) is 1 ulp above). */
static void test_ndtr(void **state)
{
    test_graph *e = *state;
    sj_value x = in_any(e->g, "x", 1);
    static const double xv[12] = {0, 1.96, -1.96, -8, 8, -37.5, -1, 5, -38.4, -INFINITY, INFINITY, NAN};
    static const double want[12] = {0.5, 0.97500210485177952, 0.024997895148220435,
                                    6.2209605742717839e-16, 0.99999999999999933,
                                    4.6053530095819552e-308, 0.15865525393145705,
                                    0.99999971334842808, 6.4228533959362051e-323, 0, 1, NAN};
    /* the subnormal Φ(-38.4) has 9 significant bits: an absolute tolerance */
    check1(e, sj_ndtr(e->g, x), 1, (arr[]){{1, {12}, xv}}, (shp){1, {12}}, want, 2e-15, 1e-323);
}

static void test_ndtri(void **state)
{
    test_graph *e = *state;
    sj_value p = in_any(e->g, "p", 1);
    static const double pv[16] = {0.5, 0.975, 0.025, 1e-300, 1e-10, 0.3, 0.9, 1 - 1e-12, 0.075,
                                  0.925, 2.2250738585072014e-308, 0, 1, -0.5, 1.5, NAN};
    static const double want[16] = {0, 1.9599639845400538, -1.9599639845400543,
                                    -37.047096299361201, -6.3613409024040566,
                                    -0.52440051270804078, 1.2815515655446006,
                                    7.0344869100478356, -1.4395314709384559,
                                    1.4395314709384561, -37.519379347144501,
                                    -INFINITY, INFINITY, NAN, NAN, NAN};
    check1(e, sj_ndtri(e->g, p), 1, (arr[]){{1, {16}, pv}}, (shp){1, {16}}, want, 2e-15, 0);
    /* Φ(Φ⁻¹(p)) = p, to the conditioning of Φ: an ulp of z = Φ⁻¹(p) moves
     * Φ by |z|·ulp(z)·φ/Φ ≈ z² ε relative (1.5e-13 at p = 1e-300) */
    static const double rv[5] = {1e-300, 1e-20, 0.01, 0.4, 0.999};
    check1(e, sj_ndtr(e->g, sj_ndtri(e->g, p)), 1, (arr[]){{1, {5}, rv}}, (shp){1, {5}}, rv,
           5e-13, 0);
}

/* atan, tan: libm, 1e-15 relative. */
static void test_atan_tan(void **state)
{
    test_graph *e = *state;
    sj_value x = in_any(e->g, "x", 1);
    static const double xv[4] = {0.5, -3, 1.5, 1e-10};
    check1(e, sj_atan(e->g, x), 1, (arr[]){{1, {4}, xv}}, (shp){1, {4}},
           (double[]){0.46364760900080609, -1.2490457723982544, 0.98279372324732905, 1e-10},
           1e-15, 0);
    check1(e, sj_tan(e->g, x), 1, (arr[]){{1, {4}, xv}}, (shp){1, {4}},
           (double[]){0.54630248984379048, 0.1425465430742778, 14.101419947171719, 1e-10},
           1e-15, 0);
}

static void test_binary(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 1), b = in_any(g, "b", 1);
    static const double av[4] = {3, -1.5, 2, NAN}, bv[4] = {4, 0.5, -3, 1};
    sj_value outs[4] = {sj_add(g, a, b), sj_sub(g, a, b), sj_mul(g, a, b), sj_div(g, a, b)};
    double r[4][4];
    shp w[4] = {{1, {4}}, {1, {4}}, {1, {4}}, {1, {4}}};
    arr in[2] = {{1, {4}, av}, {1, {4}, bv}};
    assert_ok(run_n(e, 4, outs, 2, in, w, (double *[]){r[0], r[1], r[2], r[3]}), e->ctx);
    /* exact in binary */
    assert_close(r[0], ((double[]){7, -1, -1, NAN}), 4, 0, 0);
    assert_close(r[1], ((double[]){-1, -2, 5, NAN}), 4, 0, 0);
    assert_close(r[2], ((double[]){12, -0.75, -6, NAN}), 4, 0, 0);
    assert_close(r[3], ((double[]){0.75, -3, -2.0 / 3.0, NAN}), 4, 0, 0);
}

static void test_pow_min_max(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 1), b = in_any(g, "b", 1);
    static const double av[4] = {2, 9, NAN, 1}, bv[4] = {10, 0.5, 1, NAN};
    sj_value outs[3] = {sj_pow(g, a, b), sj_min(g, a, b), sj_max(g, a, b)};
    double r[3][4];
    shp w[3] = {{1, {4}}, {1, {4}}, {1, {4}}};
    arr in[2] = {{1, {4}, av}, {1, {4}, bv}};
    assert_ok(run_n(e, 3, outs, 2, in, w, (double *[]){r[0], r[1], r[2]}), e->ctx);
    /* exact; pow(1, NaN) = 1 as in C; min/max propagate NaN */
    assert_close(r[0], ((double[]){1024, 3, NAN, 1}), 4, 0, 0);
    assert_close(r[1], ((double[]){2, 0.5, NAN, NAN}), 4, 0, 0);
    assert_close(r[2], ((double[]){10, 9, NAN, NAN}), 4, 0, 0);
}

static void test_compare(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 1), b = in_any(g, "b", 1);
    static const double av[3] = {1, 2, NAN}, bv[3] = {2, 2, 1};
    sj_value outs[6];
    for (int c = SJ_LT; c <= SJ_NE; c++)
        outs[c] = sj_compare(g, (sj_cmp)c, a, b);
    double r[6][3];
    shp w[6] = {{1, {3}}, {1, {3}}, {1, {3}}, {1, {3}}, {1, {3}}, {1, {3}}};
    arr in[2] = {{1, {3}, av}, {1, {3}, bv}};
    assert_ok(run_n(e, 4, outs, 2, in, w, (double *[]){r[0], r[1], r[2], r[3]}), e->ctx);
    assert_ok(run_n(e, 2, outs + 4, 2, in, w, (double *[]){r[4], r[5]}), e->ctx);
    /* exact 1.0/0.0; IEEE: NaN compares false except NE */
    assert_close(r[SJ_LT], ((double[]){1, 0, 0}), 3, 0, 0);
    assert_close(r[SJ_LE], ((double[]){1, 1, 0}), 3, 0, 0);
    assert_close(r[SJ_GT], ((double[]){0, 0, 0}), 3, 0, 0);
    assert_close(r[SJ_GE], ((double[]){0, 1, 0}), 3, 0, 0);
    assert_close(r[SJ_EQ], ((double[]){0, 1, 0}), 3, 0, 0);
    assert_close(r[SJ_NE], ((double[]){1, 0, 1}), 3, 0, 0);
}

static void test_select(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value p = in_any(g, "p", 1), a = in_any(g, "a", 1);
    static const double pv[4] = {1, 0, -2, NAN}, av[4] = {10, 20, 30, 40};
    /* b is a broadcast scalar; a NaN predicate selects a; exact */
    sj_value s = sj_select(g, p, a, sj_scalar(g, -1));
    check1(e, s, 2, (arr[]){{1, {4}, pv}, {1, {4}, av}}, (shp){1, {4}},
           (double[]){10, -1, 30, 40}, 0, 0);
}

/* ---- data movement ----------------------------------------------------------------- */

/* NumPy broadcasting [n,1] + [m] -> [n,m] and sj_broadcast_to; exact.  (The
 * unit axis must be declared: implicit broadcasting of "?" sizes assumes they
 * are equal.) */
static void test_broadcast(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = sj_input(g, "a", 2, (const char *[]){"n", "1"});
    sj_value b = sj_input(g, "b", 1, (const char *[]){"m"});
    static const double av[2] = {10, 20}, bv[3] = {1, 2, 3};
    const char *d[3] = {"2", "2", "3"};
    sj_value outs[2] = {sj_add(g, a, b), sj_broadcast_to(g, a, 3, d)};
    double r0[6], r1[12];
    shp w[2] = {{2, {2, 3}}, {3, {2, 2, 3}}};
    arr in[2] = {{2, {2, 1}, av}, {1, {3}, bv}};
    assert_ok(run_n(e, 2, outs, 2, in, w, (double *[]){r0, r1}), e->ctx);
    assert_close(r0, ((double[]){11, 12, 13, 21, 22, 23}), 6, 0, 0);
    assert_close(r1, ((double[]){10, 10, 10, 20, 20, 20, 10, 10, 10, 20, 20, 20}), 12, 0, 0);
}

/* A zero-length axis flows through broadcasting, elementwise ops and a sum. */
static void test_zero_length(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 2), b = in_any(g, "b", 1);
    int ax0[1] = {0}, ax1[1] = {1};
    sj_value y = sj_exp(g, sj_add(g, x, b));
    sj_value outs[4] = {y, sj_sum(g, y, 1, ax0), sj_sum(g, y, 1, ax1),
                        sj_matmul(g, sj_mT(g, x), x)};
    static const double bv[3] = {1, 2, 3};
    double r0[1], r1[3], r2[1], r3[9];
    shp w[4] = {{2, {0, 3}}, {1, {3}}, {1, {0}}, {2, {3, 3}}};
    arr in[2] = {{2, {0, 3}, NULL}, {1, {3}, bv}};
    assert_ok(run_n(e, 4, outs, 2, in, w, (double *[]){r0, r1, r2, r3}), e->ctx);
    /* sums over the empty axis are 0; xᵀx with an empty inner axis is zeros */
    assert_close(r1, ((double[]){0, 0, 0}), 3, 0, 0);
    assert_close(r3, ((double[]){0, 0, 0, 0, 0, 0, 0, 0, 0}), 9, 0, 0);
}

static void test_reshape_transpose(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 3);
    static const double xv[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}; /* [2,2,3] */
    const char *d[2] = {"3", "4"};
    int perm[3] = {2, 0, 1};
    sj_value outs[3] = {sj_reshape(g, x, 2, d), sj_transpose(g, x, perm), sj_mT(g, x)};
    double r0[12], r1[12], r2[12];
    shp w[3] = {{2, {3, 4}}, {3, {3, 2, 2}}, {3, {2, 3, 2}}};
    assert_ok(run_n(e, 3, outs, 1, (arr[]){{3, {2, 2, 3}, xv}}, w, (double *[]){r0, r1, r2}),
              e->ctx);
    /* exact: out[i,j,k] = x[j,k,i] for perm (2,0,1) */
    assert_close(r0, xv, 12, 0, 0);
    assert_close(r1, ((double[]){0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11}), 12, 0, 0);
    assert_close(r2, ((double[]){0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11}), 12, 0, 0);
}

static void test_slice(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 2);
    static const double xv[8] = {0, 1, 2, 3, 4, 5, 6, 7}; /* [2,4] */
    sj_value outs[4] = {sj_slice(g, x, 1, 1, 3), sj_slice(g, x, -1, -2, INT64_MAX),
                        sj_slice(g, x, 0, 1, 2), sj_slice(g, x, 1, 2, 2)};
    double r0[4], r1[4], r2[4], r3[1];
    shp w[4] = {{2, {2, 2}}, {2, {2, 2}}, {2, {1, 4}}, {2, {2, 0}}};
    assert_ok(run_n(e, 4, outs, 1, (arr[]){{2, {2, 4}, xv}}, w, (double *[]){r0, r1, r2, r3}),
              e->ctx);
    /* exact; the last slice is empty */
    assert_close(r0, ((double[]){1, 2, 5, 6}), 4, 0, 0);
    assert_close(r1, ((double[]){2, 3, 6, 7}), 4, 0, 0);
    assert_close(r2, ((double[]){4, 5, 6, 7}), 4, 0, 0);
}

static void test_concat(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 2), b = in_any(g, "b", 2), z = in_any(g, "z", 2);
    static const double av[4] = {1, 2, 3, 4}, bv[2] = {5, 6};
    sj_value rows[3] = {a, z, sj_mT(g, b)};  /* [2,2] ++ [0,2] ++ [1,2] */
    sj_value cols[2] = {a, b};               /* [2,2] ++ [2,1] */
    sj_value outs[2] = {sj_concat(g, 3, rows, 0), sj_concat(g, 2, cols, -1)};
    double r0[6], r1[6];
    shp w[2] = {{2, {3, 2}}, {2, {2, 3}}};
    arr in[3] = {{2, {2, 2}, av}, {2, {2, 1}, bv}, {2, {0, 2}, NULL}};
    assert_ok(run_n(e, 2, outs, 3, in, w, (double *[]){r0, r1}), e->ctx);
    /* exact */
    assert_close(r0, ((double[]){1, 2, 3, 4, 5, 6}), 6, 0, 0);
    assert_close(r1, ((double[]){1, 2, 5, 3, 4, 6}), 6, 0, 0);
}

/* ---- indexing ------------------------------------------------------------------------ */

static void test_gather_segment_one_hot(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 2), idx = in_any(g, "idx", 1);
    static const double xv[6] = {1, 2, 3, 4, 5, 6}; /* [3,2] */
    static const double iv[4] = {2, 0, 2, 1};
    sj_value outs[3] = {sj_gather(g, x, idx), sj_segment_sum(g, sj_gather(g, x, idx), idx, "4"),
                        sj_one_hot(g, idx, "3")};
    double r0[8], r1[8], r2[12];
    shp w[3] = {{2, {4, 2}}, {2, {4, 2}}, {2, {4, 3}}};
    arr in[2] = {{2, {3, 2}, xv}, {1, {4}, iv}};
    assert_ok(run_n(e, 3, outs, 2, in, w, (double *[]){r0, r1, r2}), e->ctx);
    /* exact; segment 3 is empty (zeros) */
    assert_close(r0, ((double[]){5, 6, 1, 2, 5, 6, 3, 4}), 8, 0, 0);
    assert_close(r1, ((double[]){1, 2, 3, 4, 10, 12, 0, 0}), 8, 0, 0);
    assert_close(r2, ((double[]){0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0}), 12, 0, 0);
}

/* Vector x and empty index vectors. */
static void test_index_edges(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 1), idx = in_any(g, "idx", 1);
    static const double xv[3] = {7, 8, 9};
    sj_value outs[3] = {sj_gather(g, x, idx), sj_segment_sum(g, sj_gather(g, x, idx), idx, "2"),
                        sj_one_hot(g, idx, "2")};
    double r0[1], r1[2], r2[1];
    shp w[3] = {{1, {0}}, {1, {2}}, {2, {0, 2}}};
    arr in[2] = {{1, {3}, xv}, {1, {0}, NULL}};
    assert_ok(run_n(e, 3, outs, 2, in, w, (double *[]){r0, r1, r2}), e->ctx);
    assert_close(r1, ((double[]){0, 0}), 2, 0, 0);
}

/* ---- reductions ---------------------------------------------------------------------- */

static void test_reductions(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 3);
    static const double xv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -12}; /* [2,2,3] */
    int a0[1] = {0}, a02[2] = {0, 2}, a1[1] = {-2};
    sj_value outs[4] = {sj_sum(g, x, 1, a0), sj_reduce_max(g, x, 2, a02), sj_mean(g, x, 1, a1),
                        sj_sum_all(g, x)};
    double r0[6], r1[2], r2[6], r3[1];
    shp w[4] = {{2, {2, 3}}, {1, {2}}, {2, {2, 3}}, {0, {0}}};
    assert_ok(run_n(e, 4, outs, 1, (arr[]){{3, {2, 2, 3}, xv}}, w, (double *[]){r0, r1, r2, r3}),
              e->ctx);
    /* exact (halves of small integers) */
    assert_close(r0, ((double[]){8, 10, 12, 14, 16, -6}), 6, 0, 0);
    assert_close(r1, ((double[]){9, 11}), 2, 0, 0);
    assert_close(r2, ((double[]){2.5, 3.5, 4.5, 8.5, 9.5, -1.5}), 6, 0, 0);
    assert_close(r3, ((double[]){54}), 1, 0, 0);
}

/* Conventions: over an empty axis sum = 0, mean = NaN, reduce_max = -inf;
 * reduce_max propagates NaN. */
static void test_reduction_edges(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 2), y = in_any(g, "y", 1);
    int a1[1] = {1};
    sj_value outs[4] = {sj_sum(g, x, 1, a1), sj_mean(g, x, 1, a1), sj_reduce_max(g, x, 1, a1),
                        sj_reduce_max(g, y, 1, (int[]){0})};
    static const double yv[3] = {1, NAN, 2};
    double r0[2], r1[2], r2[2], r3[1];
    shp w[4] = {{1, {2}}, {1, {2}}, {1, {2}}, {0, {0}}};
    arr in[2] = {{2, {2, 0}, NULL}, {1, {3}, yv}};
    assert_ok(run_n(e, 4, outs, 2, in, w, (double *[]){r0, r1, r2, r3}), e->ctx);
    assert_close(r0, ((double[]){0, 0}), 2, 0, 0);
    assert_close(r1, ((double[]){NAN, NAN}), 2, 0, 0);
    assert_close(r2, ((double[]){-INFINITY, -INFINITY}), 2, 0, 0);
    assert_true(isnan(r3[0]));
}

/* ---- products and structure -------------------------------------------------------------- */

static void test_matmul(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 2), b = in_any(g, "b", 2), v = in_any(g, "v", 1);
    static const double av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {7, 8, 9, 10, 11, 12}, vv[3] = {1, 0, -1};
    sj_value outs[4] = {sj_matmul(g, a, b), sj_matmul(g, a, v), sj_matmul(g, sj_slice(g, v, 0, 0, 2), a),
                        sj_matmul(g, sj_slice(g, a, 0, 0, 1), sj_slice(g, b, 1, 0, 1))};
    double r0[4], r1[2], r2[3], r3[1];
    shp w[4] = {{2, {2, 2}}, {1, {2}}, {1, {3}}, {2, {1, 1}}};
    arr in[3] = {{2, {2, 3}, av}, {2, {3, 2}, bv}, {1, {3}, vv}};
    assert_ok(run_n(e, 4, outs, 3, in, w, (double *[]){r0, r1, r2, r3}), e->ctx);
    /* exact (small integers); a 1x3 @ 3x1 gives a 1x1 */
    assert_close(r0, ((double[]){58, 64, 139, 154}), 4, 0, 0);
    assert_close(r1, ((double[]){-2, -2}), 2, 0, 0);
    assert_close(r2, ((double[]){1, 2, 3}), 3, 0, 0);
    assert_close(r3, ((double[]){58}), 1, 0, 0);
}

/* A leading batch axis, and an unbatched right operand broadcast over it. */
static void test_matmul_batched(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 3), b = in_any(g, "b", 2);
    static const double av[8] = {1, 2, 3, 4, 0, 1, 1, 0}, bv[4] = {1, 1, 0, 2};
    check1(e, sj_matmul(g, a, b), 2, (arr[]){{3, {2, 2, 2}, av}, {2, {2, 2}, bv}},
           (shp){3, {2, 2, 2}}, (double[]){1, 5, 3, 11, 0, 2, 1, 1}, 0, 0); /* exact */
}

static void test_outer_kron(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 2), b = in_any(g, "b", 2), u = in_any(g, "u", 2);
    static const double av[4] = {1, 2, 3, 4}, bv[4] = {0, 5, 6, 7}, uv[5] = {1, 2, 3, 4, 5};
    sj_value outs[3] = {sj_kron(g, a, b), sj_outer(g, a, a), sj_kron(g, u, sj_slice(g, u, 1, 0, 1))};
    double r0[16], r1[8], r2[5];
    shp w[3] = {{2, {4, 4}}, {3, {2, 2, 2}}, {2, {1, 5}}};
    arr in[3] = {{2, {2, 2}, av}, {2, {2, 2}, bv}, {2, {1, 5}, uv}};
    assert_ok(run_n(e, 3, outs, 3, in, w, (double *[]){r0, r1, r2}), e->ctx);
    /* exact: kron([[1,2],[3,4]], [[0,5],[6,7]]); outer batched over rows of a */
    assert_close(r0, ((double[]){0, 5, 0, 10, 6, 7, 12, 14, 0, 15, 0, 20, 18, 21, 24, 28}), 16, 0, 0);
    assert_close(r1, ((double[]){1, 2, 2, 4, 9, 12, 12, 16}), 8, 0, 0);
    assert_close(r2, uv, 5, 0, 0);
}

/* kron with a leading batch axis; exact. */
static void test_kron_batched(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 3), b = in_any(g, "b", 3);
    static const double av[4] = {1, 2, 3, 4}, bv[4] = {1, -1, 2, 0}; /* [2,1,2] and [2,2,1] */
    check1(e, sj_kron(g, a, b), 2, (arr[]){{3, {2, 1, 2}, av}, {3, {2, 2, 1}, bv}},
           (shp){3, {2, 2, 2}}, (double[]){1, 2, -1, -2, 6, 8, 0, 0}, 0, 0);
}

static void test_diag_tri(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 2), v = in_any(g, "v", 2);
    static const double xv[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, vv[4] = {1, 2, 3, 4};
    sj_value outs[4] = {sj_diag(g, x), sj_diag_embed(g, v), sj_tril(g, x, -1), sj_triu(g, x, 1)};
    double r0[3], r1[8], r2[9], r3[9];
    shp w[4] = {{1, {3}}, {3, {2, 2, 2}}, {2, {3, 3}}, {2, {3, 3}}};
    arr in[2] = {{2, {3, 3}, xv}, {2, {2, 2}, vv}};
    assert_ok(run_n(e, 4, outs, 2, in, w, (double *[]){r0, r1, r2, r3}), e->ctx);
    /* exact; tril keeps j <= i + k, triu keeps j >= i + k (NumPy) */
    assert_close(r0, ((double[]){1, 5, 9}), 3, 0, 0);
    assert_close(r1, ((double[]){1, 0, 0, 2, 3, 0, 0, 4}), 8, 0, 0);
    assert_close(r2, ((double[]){0, 0, 0, 4, 0, 0, 7, 8, 0}), 9, 0, 0);
    assert_close(r3, ((double[]){0, 2, 3, 0, 0, 6, 0, 0, 0}), 9, 0, 0);
}

static void test_tri_offsets(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 2);
    static const double xv[6] = {1, 2, 3, 4, 5, 6}; /* [2,3], non-square */
    sj_value outs[3] = {sj_tril(g, x, 0), sj_tril(g, x, 1), sj_triu(g, x, -1)};
    double r0[6], r1[6], r2[6];
    shp w[3] = {{2, {2, 3}}, {2, {2, 3}}, {2, {2, 3}}};
    assert_ok(run_n(e, 3, outs, 1, (arr[]){{2, {2, 3}, xv}}, w, (double *[]){r0, r1, r2}), e->ctx);
    assert_close(r0, ((double[]){1, 0, 0, 4, 5, 0}), 6, 0, 0);
    assert_close(r1, ((double[]){1, 2, 0, 4, 5, 6}), 6, 0, 0);
    assert_close(r2, ((double[]){1, 2, 3, 4, 5, 6}), 6, 0, 0);
}

/* ---- factorisations and solves ----------------------------------------------------------- */

/* A = L Lᵀ with L = [[2,0,0],[1,3,0],[-1,1,2]]; the entries above A's diagonal
 * are garbage the factorisation must not read. */
static const double A3[9] = {4, 99, 99, 2, 10, 99, -2, 2, 6};
static const double L3[9] = {2, 0, 0, 1, 3, 0, -1, 1, 2};

static void test_cholesky(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 2), one = in_any(g, "one", 2), z = in_any(g, "z", 2);
    sj_value outs[4] = {sj_cholesky(g, a), sj_cholesky(g, one), sj_logdet(g, a), sj_logdet(g, z)};
    static const double ov[1] = {9};
    double r0[9], r1[1], r2[1], r3[1] = {SENTINEL};
    shp w[4] = {{2, {3, 3}}, {2, {1, 1}}, {0, {0}}, {0, {0}}};
    arr in[3] = {{2, {3, 3}, A3}, {2, {1, 1}, ov}, {2, {0, 0}, NULL}};
    assert_ok(run_n(e, 4, outs, 3, in, w, (double *[]){r0, r1, r2, r3}), e->ctx);
    /* LAPACK: 1e-12 relative (exact zeros above the diagonal) */
    assert_close(r0, L3, 9, 1e-12, 0);
    assert_close(r1, ((double[]){3}), 1, 1e-12, 0);
    /* logdet = log det = log (2·3·2)² = log 144; logdet of a 0x0 matrix is 0 */
    assert_close(r2, ((double[]){4.969813299576001}), 1, 1e-12, 0);
    assert_close(r3, ((double[]){0}), 1, 0, 0);
}

/* Batched cholesky and logdet: [2, 2, 2]. */
static void test_cholesky_batched(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 3);
    static const double av[8] = {4, 0, 2, 5, 9, 0, 3, 2}; /* [[4,.],[2,5]], [[9,.],[3,2]] */
    sj_value outs[2] = {sj_cholesky(g, a), sj_logdet(g, a)};
    double r0[8], r1[2];
    shp w[2] = {{3, {2, 2, 2}}, {1, {2}}};
    assert_ok(run_n(e, 2, outs, 1, (arr[]){{3, {2, 2, 2}, av}}, w, (double *[]){r0, r1}), e->ctx);
    /* LAPACK: 1e-12 relative. L = [[2,0],[1,2]] and [[3,0],[1,1]] */
    assert_close(r0, ((double[]){2, 0, 1, 2, 3, 0, 1, 1}), 8, 1e-12, 0);
    assert_close(r1, ((double[]){log(16.0), log(9.0)}), 2, 1e-12, 0);
}

/* Symmetric eigendecomposition: [[2,1],[1,2]] has eigenvalues 1, 3 with
 * eigenvectors (1,-1)/√2 and (1,1)/√2 (largest-magnitude component positive:
 * the first on the tie); the upper triangle is garbage and never read.
 * diag(3, -1, 2): eigenvalues sorted, vectors unit basis vectors with +1.
 * Batched [2, 2, 2] and 0x0. */
static void test_eigh(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 2), d = in_any(g, "d", 2), b = in_any(g, "b", 3),
             z = in_any(g, "z", 2);
    sj_value outs[7] = {sj_eigvalsh(g, a), sj_eigvecsh(g, a), sj_eigvalsh(g, d),
                        sj_eigvecsh(g, d), sj_eigvalsh(g, b), sj_eigvecsh(g, b), sj_eigvecsh(g, z)};
    static const double av[4] = {2, 99, 1, 2};
    static const double dv[9] = {3, 0, 0, 0, -1, 0, 0, 0, 2};
    static const double bv[8] = {2, 1, 1, 2, 4, 0, 0, 1};
    double r0[2], r1[4], r2[3], r3[9], r4[4], r5[8], r6[1] = {SENTINEL};
    shp w[7] = {{1, {2}}, {2, {2, 2}}, {1, {3}}, {2, {3, 3}}, {2, {2, 2}}, {3, {2, 2, 2}},
                {2, {0, 0}}};
    arr in[4] = {{2, {2, 2}, av}, {2, {3, 3}, dv}, {3, {2, 2, 2}, bv}, {2, {0, 0}, NULL}};
    assert_ok(run_n(e, 7, outs, 4, in, w, (double *[]){r0, r1, r2, r3, r4, r5, r6}), e->ctx);
    double h = sqrt(0.5);
    /* LAPACK: 1e-12 */
    assert_close(r0, ((double[]){1, 3}), 2, 1e-12, 1e-12);
    assert_close(r1, ((double[]){h, h, -h, h}), 4, 1e-12, 1e-12);
    assert_close(r2, ((double[]){-1, 2, 3}), 3, 1e-12, 1e-12);
    assert_close(r3, ((double[]){0, 0, 1, 1, 0, 0, 0, 1, 0}), 9, 1e-12, 1e-12);
    assert_close(r4, ((double[]){1, 3, 1, 4}), 4, 1e-12, 1e-12);
    assert_close(r5, ((double[]){h, h, -h, h, 0, 1, 1, 0}), 8, 1e-12, 1e-12);
    assert_true(r6[0] == SENTINEL);
}

/* A NaN in the lower triangle gives NaN eigenvalues and vectors, no error. */
static void test_eigh_nan(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 2);
    sj_value outs[2] = {sj_eigvalsh(g, a), sj_eigvecsh(g, a)};
    static const double av[4] = {2, 0, NAN, 2};
    double r0[2], r1[4];
    shp w[2] = {{1, {2}}, {2, {2, 2}}};
    assert_ok(run_n(e, 2, outs, 1, (arr[]){{2, {2, 2}, av}}, w, (double *[]){r0, r1}), e->ctx);
    for (int i = 0; i < 2; i++)
        assert_true(isnan(r0[i]));
    for (int i = 0; i < 4; i++)
        assert_true(isnan(r1[i]));
}

/* The triangle of m that flags name, as a dense n x n matrix. */
static void triangle_of(const double *m, int n, unsigned flags, double *t)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int keep = (flags & SJ_SOLVE_UPPER) ? j >= i : j <= i;
            t[i * n + j] = keep ? m[i * n + j] : 0.0;
        }
}

/* op(T) X (left) or X op(T) (right) for T n x n and X n x m / m x n. */
static void apply_triangle(const double *t, int n, unsigned flags, const double *x, int m,
                           double *out)
{
    int tr = (flags & SJ_SOLVE_TRANSPOSE) != 0, right = (flags & SJ_SOLVE_RIGHT) != 0;
    for (int i = 0; i < (right ? m : n); i++)
        for (int j = 0; j < (right ? n : m); j++) {
            double s = 0;
            for (int k = 0; k < n; k++) {
                double tv = right ? (tr ? t[j * n + k] : t[k * n + j]) : (tr ? t[k * n + i] : t[i * n + k]);
                s += right ? x[i * n + k] * tv : tv * x[k * m + j];
            }
            out[i * (right ? n : m) + j] = s;
        }
}

/* All eight flag combinations, checked by the residual op(T) X - B: 1e-13
 * absolute (entries of size ~10, triangular solves are backward stable). */
static void test_triangular_solve_flags(void **state)
{
    test_graph *e = *state;
    static const double m3[9] = {2, 5, 7, 1, 3, 11, 4, -1, 5};
    static const double b6[6] = {1, -2, 3, 0.5, 4, 6};
    for (unsigned flags = 0; flags < 8; flags++) {
        sj_graph *g = NULL;
        assert_ok(sj_graph_create(e->ctx, &g), e->ctx);
        sj_graph *saved = e->g;
        e->g = g;
        int right = (flags & SJ_SOLVE_RIGHT) != 0;
        sj_value a = in_any(g, "a", 2), b = in_any(g, "b", 2);
        arr in[2] = {{2, {3, 3}, m3}, {2, {right ? 2 : 3, right ? 3 : 2}, b6}};
        double x[6], t[9], back[6];
        assert_ok(run1(e, sj_triangular_solve(g, a, b, flags), 2, in,
                       (shp){2, {in[1].dim[0], in[1].dim[1]}}, x), e->ctx);
        triangle_of(m3, 3, flags, t);
        apply_triangle(t, 3, flags, x, 2, back);
        assert_close(back, b6, 6, 0, 1e-13);
        sj_graph_free(g);
        e->g = saved;
    }
}

/* Hand-checked: [[2,0],[1,3]] x = [2,7] gives x = [1,2] (vector right-hand
 * side); batched left solve; 1x1; exact in binary.  */
static void test_triangular_solve_values(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value l = in_any(g, "l", 2), y = in_any(g, "y", 1), lb = in_any(g, "lb", 3),
             bb = in_any(g, "bb", 3);
    static const double lv[4] = {2, 0, 1, 3}, yv[2] = {2, 7};
    static const double lbv[8] = {2, 0, 1, 3, 4, 0, 0, 0.5}, bbv[4] = {2, 7, 8, 1};
    sj_value outs[3] = {sj_triangular_solve(g, l, y, 0), sj_triangular_solve(g, lb, bb, 0),
                        sj_triangular_solve(g, sj_slice(g, sj_slice(g, l, 0, 1, 2), 1, 1, 2),
                                            sj_slice(g, sj_mT(g, sj_reshape(g, y, 2, (const char *[]){"2", "1"})), 1, 1, 2),
                                            SJ_SOLVE_RIGHT)};
    double r0[2], r1[4], r2[1];
    shp w[3] = {{1, {2}}, {3, {2, 2, 1}}, {2, {1, 1}}};
    arr in[4] = {{2, {2, 2}, lv}, {1, {2}, yv}, {3, {2, 2, 2}, lbv}, {3, {2, 2, 1}, bbv}};
    assert_ok(run_n(e, 3, outs, 4, in, w, (double *[]){r0, r1, r2}), e->ctx);
    assert_close(r0, ((double[]){1, 2}), 2, 1e-15, 0);
    assert_close(r1, ((double[]){1, 2, 2, 2}), 4, 1e-15, 0);
    assert_close(r2, ((double[]){7.0 / 3.0}), 1, 1e-15, 0);
}

/* cholesky_solve(L, A x) = x; solve needs pivoting; 1e-12 relative (LAPACK). */
static void test_solves(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value l = in_any(g, "l", 2), b = in_any(g, "b", 1), a = in_any(g, "a", 2),
             c = in_any(g, "c", 2);
    static const double bv[3] = {2, 28, 20}; /* L3 L3ᵀ · (1, 2, 3) */
    static const double av[4] = {0, 2, 1, 1}, cv[4] = {2, 4, 3, 5};
    sj_value outs[3] = {sj_cholesky_solve(g, l, b), sj_solve(g, a, c),
                        sj_solve(g, sj_cholesky(g, sj_add(g, sj_matmul(g, l, sj_mT(g, l)),
                                                           sj_scalar(g, 0))),
                                 sj_reshape(g, b, 2, (const char *[]){"3", "1"}))};
    double r0[3], r1[4], r2[3];
    shp w[3] = {{1, {3}}, {2, {2, 2}}, {2, {3, 1}}};
    arr in[4] = {{2, {3, 3}, L3}, {1, {3}, bv}, {2, {2, 2}, av}, {2, {2, 2}, cv}};
    assert_ok(run_n(e, 3, outs, 4, in, w, (double *[]){r0, r1, r2}), e->ctx);
    assert_close(r0, ((double[]){1, 2, 3}), 3, 1e-12, 0);
    /* [[0,2],[1,1]] X = [[2,4],[3,5]]: X = [[2,3],[1,2]] */
    assert_close(r1, ((double[]){2, 3, 1, 2}), 4, 1e-12, 0);
    /* L3 x = b by LU on the factor of L3 L3ᵀ: forward substitution gives (1, 9, 6) */
    assert_close(r2, ((double[]){1, 9, 6}), 3, 1e-12, 0);
}

/* Batched cholesky_solve and solve; 1x1 systems; 1e-12 relative. */
static void test_solves_batched(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value l = in_any(g, "l", 3), b = in_any(g, "b", 3), one = in_any(g, "one", 2),
             ob = in_any(g, "ob", 2);
    static const double lv[8] = {2, 0, 1, 2, 3, 0, 1, 1};   /* A = [[4,2],[2,5]], [[9,3],[3,2]] */
    static const double bv[4] = {8, 12, 15, 7};             /* A (1, 2) and A (1, 2) */
    static const double ov[1] = {4}, obv[2] = {2, -8};
    sj_value a = sj_matmul(g, l, sj_mT(g, l));
    sj_value outs[3] = {sj_cholesky_solve(g, l, b), sj_solve(g, a, b), sj_solve(g, one, ob)};
    double r0[4], r1[4], r2[2];
    shp w[3] = {{3, {2, 2, 1}}, {3, {2, 2, 1}}, {2, {1, 2}}};
    arr in[4] = {{3, {2, 2, 2}, lv}, {3, {2, 2, 1}, bv}, {2, {1, 1}, ov}, {2, {1, 2}, obv}};
    assert_ok(run_n(e, 3, outs, 4, in, w, (double *[]){r0, r1, r2}), e->ctx);
    assert_close(r0, ((double[]){1, 2, 1, 2}), 4, 1e-12, 0);
    assert_close(r1, ((double[]){1, 2, 1, 2}), 4, 1e-12, 0);
    assert_close(r2, ((double[]){0.5, -2}), 2, 1e-12, 0);
}

/* Empty right-hand sides and 0x0 systems are fine. */
static void test_solves_empty(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 2), b = in_any(g, "b", 2), z = in_any(g, "z", 2),
             zb = in_any(g, "zb", 2);
    sj_value outs[4] = {sj_solve(g, a, b), sj_triangular_solve(g, a, b, 0),
                        sj_cholesky_solve(g, z, zb), sj_cholesky(g, z)};
    static const double av[4] = {1, 0, 0, 1};
    double r[4][1];
    shp w[4] = {{2, {2, 0}}, {2, {2, 0}}, {2, {0, 3}}, {2, {0, 0}}};
    arr in[4] = {{2, {2, 2}, av}, {2, {2, 0}, NULL}, {2, {0, 0}, NULL}, {2, {0, 3}, NULL}};
    assert_ok(run_n(e, 4, outs, 4, in, w, (double *[]){r[0], r[1], r[2], r[3]}), e->ctx);
}

/* ---- IR-level: attributes the public builder never sets ----------------------------------- */

static ir_val ir_in(ir_graph *g, const char *name, int rank, int64_t d0, int64_t d1)
{
    ir_shape s = {.rank = rank, .dim = {d0, d1}};
    return ir_add_input(g, name, &s);
}

/* matmul with attr0/attr1 = transpose a / b, and a broadcast whose map is
 * not trailing ([3] -> [3, 2] along axis 0); exact. */
static void test_ir_matmul_transpose_broadcast(void **state)
{
    (void)state;
    ir_graph *g = ir_graph_new();
    assert_non_null(g);
    ir_val a = ir_in(g, "a", 2, 3, 2), b = ir_in(g, "b", 2, 2, 3), v = ir_in(g, "v", 1, 3, 0);
    ir_val ab[2] = {a, b}, aa[2] = {a, a}, bb[2] = {b, b};
    int64_t tt[2] = {1, 1}, tn[2] = {1, 0}, nt[2] = {0, 1}, map[1] = {0};
    ir_shape s32 = {.rank = 2, .dim = {3, 2}};
    ir_val outs[4] = {ir_add_node(g, IR_OP_MATMUL, 2, ab, tt, 2, NULL, NULL),
                      ir_add_node(g, IR_OP_MATMUL, 2, aa, tn, 2, NULL, NULL),
                      ir_add_node(g, IR_OP_MATMUL, 2, bb, nt, 2, NULL, NULL),
                      ir_add_node(g, IR_OP_BROADCAST, 1, &v, map, 1, &s32, NULL)};
    assert_int_equal(g->err.status, SJ_OK);
    assert_int_equal(ir_graph_set_outputs(g, 4, outs), SJ_OK);
    static const double av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {1, 0, 2, 0, 1, 1}, vv[3] = {7, 8, 9};
    double r0[4], r1[4], r2[4], r3[6];
    ir_err err = {0};
    assert_int_equal(ir_eval(g, (const double *[]){av, bv, vv}, (double *[]){r0, r1, r2, r3}, &err),
                     SJ_OK);
    /* aᵀ bᵀ = (b a)ᵀ: a is [[1,2],[3,4],[5,6]], b is [[1,0,2],[0,1,1]] */
    assert_close(r0, ((double[]){11, 8, 14, 10}), 4, 0, 0);
    assert_close(r1, ((double[]){35, 44, 44, 56}), 4, 0, 0);
    assert_close(r2, ((double[]){5, 2, 2, 2}), 4, 0, 0);
    assert_close(r3, ((double[]){7, 7, 8, 8, 9, 9}), 6, 0, 0);
    ir_graph_free(g);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_error_not_pd(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 3);
    static const double av[8] = {4, 0, 2, 5, 1, 0, 3, 2}; /* item 1: [[1,.],[3,2]] is indefinite */
    sj_value ok = sj_sum_all(g, a), c = sj_cholesky(g, a);
    sj_value outs[2] = {ok, c};
    double r0[1], r1[8];
    shp w[2] = {{0, {0}}, {3, {2, 2, 2}}};
    sj_status st = run_n(e, 2, outs, 1, (arr[]){{3, {2, 2, 2}, av}}, w, (double *[]){r0, r1});
    assert_error(st, SJ_ERR_NOT_POSITIVE_DEFINITE, e->ctx, "cholesky (value %");
    assert_error(st, SJ_ERR_NOT_POSITIVE_DEFINITE, e->ctx, "[batch 1] is not positive definite (leading minor 2)");
    /* every output is untouched, including the one that did not fail */
    assert_all_sentinel(r0, 1);
    assert_all_sentinel(r1, 8);
}

static void test_error_logdet_and_nan(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 2), b = in_any(g, "b", 2);
    static const double av[4] = {-1, 0, 0, 1}, bv[4] = {1, 0, NAN, 1};
    double r[1];
    arr in[2] = {{2, {2, 2}, av}, {2, {2, 2}, bv}};
    sj_status st = run1(e, sj_logdet(g, a), 2, in, (shp){0, {0}}, r);
    assert_error(st, SJ_ERR_NOT_POSITIVE_DEFINITE, e->ctx, "logdet (value %");
    assert_error(st, SJ_ERR_NOT_POSITIVE_DEFINITE, e->ctx, "leading minor 1");
    assert_all_sentinel(r, 1);
    double r4[4];
    st = run1(e, sj_cholesky(g, b), 2, in, (shp){2, {2, 2}}, r4);
    assert_error(st, SJ_ERR_NOT_POSITIVE_DEFINITE, e->ctx, "contains NaN");
    assert_all_sentinel(r4, 4);
}

static void test_error_singular(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 2), b = in_any(g, "b", 2);
    static const double av[4] = {1, 2, 2, 4}, bv[2] = {1, 1}, tv[4] = {1, 0, 5, 0};
    double r[2];
    arr in[2] = {{2, {2, 2}, av}, {2, {2, 1}, bv}};
    sj_status st = run1(e, sj_solve(g, a, b), 2, in, (shp){2, {2, 1}}, r);
    assert_error(st, SJ_ERR_SINGULAR, e->ctx, "solve (value %");
    assert_error(st, SJ_ERR_SINGULAR, e->ctx, "[batch 0] is singular");
    assert_all_sentinel(r, 2);
    arr in2[2] = {{2, {2, 2}, tv}, {2, {2, 1}, bv}};
    st = run1(e, sj_triangular_solve(g, a, b, 0), 2, in2, (shp){2, {2, 1}}, r);
    assert_error(st, SJ_ERR_SINGULAR, e->ctx, "triangular_solve (value %");
    assert_error(st, SJ_ERR_SINGULAR, e->ctx, "row 1");
    assert_all_sentinel(r, 2);
    st = run1(e, sj_cholesky_solve(g, a, b), 2, in2, (shp){2, {2, 1}}, r);
    assert_error(st, SJ_ERR_SINGULAR, e->ctx, "cholesky_solve (value %");
    assert_all_sentinel(r, 2);
}

static void expect_index_error(test_graph *e, sj_value out, const double *idx, int64_t n, shp want,
                               const char *op, const char *bad)
{
    static const double xv[3] = {1, 2, 3};
    double r[8];
    arr in[2] = {{1, {3}, xv}, {1, {n}, idx}};
    sj_status st = run1(e, out, 2, in, want, r);
    assert_error(st, SJ_ERR_DOMAIN, e->ctx, op);
    assert_error(st, SJ_ERR_DOMAIN, e->ctx, bad);
    assert_all_sentinel(r, numel(&want));
}

static void test_error_index(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value x = in_any(g, "x", 1), idx = in_any(g, "idx", 1);
    static const double range[3] = {0, 3, 1}, frac[3] = {0, 1.5, 1}, nan[3] = {NAN, 0, 0},
                        neg[3] = {0, 1, -1};
    sj_value gth = sj_gather(g, x, idx);
    sj_value seg = sj_segment_sum(g, x, idx, "2");
    sj_value oh = sj_one_hot(g, idx, "2");
    expect_index_error(e, gth, range, 3, (shp){1, {3}}, "gather (value %", "position 1 is 3,");
    expect_index_error(e, gth, frac, 3, (shp){1, {3}}, "gather (value %", "position 1 is 1.5");
    expect_index_error(e, gth, nan, 3, (shp){1, {3}}, "gather (value %", "position 0 is nan");
    expect_index_error(e, seg, range, 3, (shp){1, {2}}, "segment_sum (value %", "is 3,");
    expect_index_error(e, oh, neg, 3, (shp){2, {3, 2}}, "one_hot (value %", "position 2 is -1");
}

/* Only what the outputs need is computed: a failing node no output reads is
 * not an error. */
static void test_dead_nodes_skipped(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 2);
    static const double av[4] = {-1, 0, 0, -1};
    (void)sj_cholesky(g, a);
    check1(e, sj_neg(g, a), 1, (arr[]){{2, {2, 2}, av}}, (shp){2, {2, 2}},
           (double[]){1, 0, 0, 1}, 0, 0);
}

/* Out of memory inside the evaluator is reported and leaks nothing. */
static void test_out_of_memory(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_value a = in_any(g, "a", 2);
    sj_value f = sj_logdet(g, sj_add(g, sj_matmul(g, a, sj_mT(g, a)), sj_eye(g, "2")));
    static const double av[4] = {1, 2, 3, 4};
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, 1, &f, &fn), e->ctx);
    sj_compiled *c = NULL;
    assert_ok(sj_fn_specialize(fn, 1, (int[]){2}, (const int64_t *[]){(int64_t[]){2, 2}}, &c),
              e->ctx);
    int failures = 0;
    for (long k = 1; k < 40; k++) {
        double r = SENTINEL;
        ir_alloc_fail_at(k);
        sj_status st = sj_compiled_eval(c, (const double *[]){av}, (double *[]){&r});
        ir_alloc_fail_at(0);
        if (st == SJ_OK)
            break;
        assert_int_equal(st, SJ_ERR_OUT_OF_MEMORY);
        assert_true(r == SENTINEL);
        failures++;
    }
    assert_true(failures > 3);
    sj_compiled_free(c);
    sj_fn_free(fn);
}

#define T(name) cmocka_unit_test_setup_teardown(name, test_graph_setup, test_graph_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_sources),
        T(test_eye_edges),
        T(test_unary_basic),
        T(test_unary_more),
        T(test_recip_abs_sign),
        T(test_logistic),
        T(test_lgamma),
        T(test_digamma),
        T(test_digamma_poles),
        T(test_polygamma),
        T(test_polygamma_high_order_and_poles),
        T(test_ndtr),
        T(test_ndtri),
        T(test_atan_tan),
        T(test_binary),
        T(test_pow_min_max),
        T(test_compare),
        T(test_select),
        T(test_broadcast),
        T(test_zero_length),
        T(test_reshape_transpose),
        T(test_slice),
        T(test_concat),
        T(test_gather_segment_one_hot),
        T(test_index_edges),
        T(test_reductions),
        T(test_reduction_edges),
        T(test_matmul),
        T(test_matmul_batched),
        T(test_outer_kron),
        T(test_kron_batched),
        T(test_diag_tri),
        T(test_tri_offsets),
        T(test_cholesky),
        T(test_cholesky_batched),
        T(test_eigh),
        T(test_eigh_nan),
        T(test_triangular_solve_flags),
        T(test_triangular_solve_values),
        T(test_solves),
        T(test_solves_batched),
        T(test_solves_empty),
        T(test_ir_matmul_transpose_broadcast),
        T(test_error_not_pd),
        T(test_error_logdet_and_nan),
        T(test_error_singular),
        T(test_error_index),
        T(test_dead_nodes_skipped),
        T(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
