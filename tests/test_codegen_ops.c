/* The code generator (codegen/) against the reference evaluator (ir_eval),
 * op by op.  Graphs are built through the public API and specialised with
 * sj_fn_specialize; the specialised IR (runtime/handles.h: c->ir) is then
 * compiled with cg_compile and run with cg_kernel_run on a scratch buffer
 * filled with NaN bytes (so nothing may rely on zeroed scratch), and compared
 * with ir_eval to 1e-12 relative (1e-12 absolute near zero).
 *
 * Every op appears with edge shapes: a zero-length axis, 1x1 matrices,
 * size-1 broadcasting, batched linear algebra, matrices small enough for the
 * inline loops (<= 8) and large enough for BLAS/LAPACK (9, 20, 50).  Error
 * paths check the status against ir_eval's and that outputs are unchanged.
 * Fusion is checked through cg_kernel_stats and the IR text. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/pool.h"
#include "ir/alloc.h"
#include "ir/eval.h"
#include "runtime/handles.h"
#include "testutil.h"

#define SENTINEL 12345.0
#define MAXIN 8
#define MAXOUT 4

/* One test graph: the builder, and the inputs' concrete shapes and data. */
typedef struct sess {
    sj_ctx *ctx;
    sj_graph *g;
    int nin;
    int rank[MAXIN];
    int64_t dim[MAXIN][SJ_MAX_RANK];
    double *data[MAXIN];
    uint64_t seed;
    cg_stats stats;   /* of the last check */
    size_t scratch;   /* of the last check */
    char msg[IR_ERR_MSG];
    int opt_level;
} sess;

static int setup(void **state)
{
    sess *s = calloc(1, sizeof *s);
    if (!s || sj_ctx_create(&s->ctx) != SJ_OK || sj_graph_create(s->ctx, &s->g) != SJ_OK)
        return -1;
    s->seed = 0x1234567u;
    s->opt_level = 2;
    *state = s;
    return 0;
}

static void reset(sess *s)
{
    for (int i = 0; i < s->nin; i++)
        free(s->data[i]);
    s->nin = 0;
    sj_graph_free(s->g);
    sj_graph_create(s->ctx, &s->g);
}

static int teardown(void **state)
{
    sess *s = *state;
    reset(s);
    sj_graph_free(s->g);
    sj_ctx_free(s->ctx);
    free(s);
    return 0;
}

static size_t count(int rank, const int64_t *dim)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)dim[i];
    return n;
}

/* Declares an input with sizes "?" and concrete shape dim; data copied from
 * `data` or drawn uniformly from [lo, hi). */
static sj_value input_data(sess *s, int rank, const int64_t *dim, const double *data, double lo,
                           double hi)
{
    const char *any[SJ_MAX_RANK]; /* "1" where the size is 1, so NumPy broadcasting sees it */
    for (int k = 0; k < rank; k++)
        any[k] = dim[k] == 1 ? "1" : "?";
    char name[16];
    snprintf(name, sizeof name, "x%d", s->nin);
    int i = s->nin++;
    s->rank[i] = rank;
    memcpy(s->dim[i], dim, (size_t)rank * sizeof *dim);
    size_t n = count(rank, dim);
    s->data[i] = malloc((n ? n : 1) * sizeof(double));
    for (size_t k = 0; k < n; k++)
        s->data[i][k] = data ? data[k] : test_uniform(&s->seed, lo, hi);
    return sj_input(s->g, name, rank, any);
}

static sj_value input(sess *s, int rank, const int64_t *dim, double lo, double hi)
{
    return input_data(s, rank, dim, NULL, lo, hi);
}

/* Symmetric positive definite matrices A Aᵀ + n I, batched over dim[0..rank-3]. */
static sj_value input_pd(sess *s, int rank, const int64_t *dim)
{
    int64_t n = dim[rank - 1];
    size_t nb = count(rank - 2, dim), nn = (size_t)(n * n);
    size_t total = nb * nn;
    double *x = malloc((total ? total : 1) * sizeof *x), *a = malloc((nn ? nn : 1) * sizeof *a);
    for (size_t b = 0; b < nb; b++) {
        for (size_t k = 0; k < nn; k++)
            a[k] = test_uniform(&s->seed, -1, 1);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                double t = i == j ? (double)n : 0.0;
                for (int64_t l = 0; l < n; l++)
                    t += a[i * n + l] * a[j * n + l];
                x[b * nn + (size_t)(i * n + j)] = t;
            }
    }
    sj_value v = input_data(s, rank, dim, x, 0, 0);
    free(x);
    free(a);
    return v;
}

/* Lower-triangular matrices with a dominant diagonal (random above it too,
 * which the solves must not read). */
static sj_value input_tri(sess *s, int rank, const int64_t *dim, int upper)
{
    sj_value v = input(s, rank, dim, -1, 1);
    int64_t n = dim[rank - 1];
    double *x = s->data[s->nin - 1];
    size_t nb = count(rank - 2, dim);
    for (size_t b = 0; b < nb; b++)
        for (int64_t i = 0; i < n; i++) {
            double *d = &x[b * (size_t)(n * n) + (size_t)(i * n + i)];
            *d = (upper ? 1 : -1) * (2.0 + fabs(*d));
        }
    return v;
}

#define D(...) ((const int64_t[]){__VA_ARGS__})

/* Compiles fn(outs) for the session's inputs, runs it and ir_eval, and checks
 * both agree: same status, same values (or, on error, untouched outputs and a
 * message naming the op).  Returns the status. */
static sj_status check_outs(sess *s, int nout, const sj_value *outs)
{
    assert_ok(sj_graph_status(s->g), s->ctx);
    sj_fn *fn;
    sj_compiled *c;
    assert_ok(sj_fn_create(s->g, nout, outs, &fn), s->ctx);
    const int64_t *dims[MAXIN];
    for (int i = 0; i < s->nin; i++)
        dims[i] = s->dim[i];
    assert_ok(sj_fn_specialize(fn, s->nin, s->rank, dims, &c), s->ctx);
    const ir_graph *g = c->ir;
    cg_kernel *k = NULL;
    ir_err err = {0};
    cg_options opt = {s->opt_level};
    sj_status st = cg_compile(g, &opt, &k, &err);
    if (st != SJ_OK)
        fail_msg("cg_compile: %s", err.msg);
    s->scratch = cg_kernel_scratch_bytes(k);
    cg_kernel_stats(k, &s->stats);
    size_t bytes = (s->scratch + 63) & ~(size_t)63;
    void *scratch = aligned_alloc(64, bytes);
    memset(scratch, 0xff, bytes); /* NaN bytes: results must not depend on them */
    double *got[MAXOUT], *want[MAXOUT];
    size_t n[MAXOUT];
    for (int j = 0; j < nout; j++) {
        const ir_shape *os = ir_shape_of(g, g->output[j]);
        n[j] = ir_shape_numel(os);
        got[j] = malloc((n[j] + 1) * sizeof(double));
        want[j] = malloc((n[j] + 1) * sizeof(double));
        for (size_t e = 0; e <= n[j]; e++)
            got[j][e] = want[j][e] = SENTINEL;
    }
    ir_err cerr = {0}, eerr = {0};
    sj_status cs = cg_kernel_run(k, (const double *const *)s->data, got, scratch, &cerr);
    sj_status es = ir_eval(g, (const double *const *)s->data, want, &eerr);
    if (cs != es)
        fail_msg("codegen %s (%s) but ir_eval %s (%s)", sj_status_name(cs), cerr.msg,
                 sj_status_name(es), eerr.msg);
    for (int j = 0; j < nout; j++) {
        assert_close(got[j], want[j], n[j] + 1, 1e-12, 1e-12);
        if (cs != SJ_OK)
            for (size_t e = 0; e <= n[j]; e++)
                assert_true(got[j][e] == SENTINEL);
    }
    if (cs != SJ_OK) {
        /* the message names the op that ir_eval names */
        char op[32] = "";
        sscanf(eerr.msg, "%31s", op);
        if (!strstr(cerr.msg, op))
            fail_msg("message \"%s\" does not name %s", cerr.msg, op);
        snprintf(s->msg, sizeof s->msg, "%s", cerr.msg);
    }
    /* A second run on the same scratch gives the same answer. */
    if (cs == SJ_OK) {
        for (int j = 0; j < nout; j++)
            for (size_t e = 0; e < n[j]; e++)
                got[j][e] = SENTINEL;
        assert_int_equal(cg_kernel_run(k, (const double *const *)s->data, got, scratch, &cerr), SJ_OK);
        for (int j = 0; j < nout; j++)
            assert_close(got[j], want[j], n[j], 1e-12, 1e-12);
    }
    for (int j = 0; j < nout; j++) {
        free(got[j]);
        free(want[j]);
    }
    free(scratch);
    cg_kernel_free(k);
    sj_compiled_free(c);
    sj_fn_free(fn);
    return cs;
}

static sj_status check1(sess *s, sj_value out)
{
    sj_status st = check_outs(s, 1, &out);
    reset(s);
    return st;
}

/* ---- elementwise -------------------------------------------------------------- */

typedef sj_value unary_fn(sj_graph *, sj_value);

static const struct {
    unary_fn *fn;
    double lo, hi; /* domain of the random inputs */
} unaries[] = {
    {sj_neg, -3, 3},      {sj_exp, -3, 3},   {sj_log, 0.1, 4},     {sj_log1p, -0.5, 3},
    {sj_expm1, -2, 2},    {sj_sqrt, 0, 4},   {sj_square, -3, 3},   {sj_recip, 0.5, 3},
    {sj_tanh, -3, 3},     {sj_logistic, -30, 30}, {sj_lgamma, 0.1, 6}, {sj_digamma, -3.9, 6},
    {sj_abs, -3, 3},      {sj_sign, -3, 3},
    {sj_ndtr, -40, 10},   {sj_ndtri, 1e-12, 1}, {sj_atan, -5, 5},  {sj_tan, -1.5, 1.5},
};

static const int64_t shapes[][4] = {
    /* rank, dims... */
    {2, 3, 4, 0}, {0, 0, 0, 0}, {1, 0, 0, 0}, {2, 1, 1, 0}, {3, 2, 3, 5}, {1, 1000, 0, 0},
};
#define NSHAPE (sizeof shapes / sizeof shapes[0])

static void test_unary(void **state)
{
    sess *s = *state;
    for (size_t u = 0; u < sizeof unaries / sizeof unaries[0]; u++)
        for (size_t k = 0; k < NSHAPE; k++) {
            sj_value x = input(s, (int)shapes[k][0], shapes[k] + 1, unaries[u].lo, unaries[u].hi);
            check1(s, unaries[u].fn(s->g, x));
        }
    for (int order = 1; order <= 4; order++) {
        sj_value x = input(s, 2, D(3, 4), -3.9, 8);
        check1(s, sj_polygamma(s->g, order, x));
    }
}

typedef sj_value binary_fn(sj_graph *, sj_value, sj_value);

static sj_value cmp_lt(sj_graph *g, sj_value a, sj_value b) { return sj_compare(g, SJ_LT, a, b); }
static sj_value cmp_le(sj_graph *g, sj_value a, sj_value b) { return sj_compare(g, SJ_LE, a, b); }
static sj_value cmp_gt(sj_graph *g, sj_value a, sj_value b) { return sj_compare(g, SJ_GT, a, b); }
static sj_value cmp_ge(sj_graph *g, sj_value a, sj_value b) { return sj_compare(g, SJ_GE, a, b); }
static sj_value cmp_eq(sj_graph *g, sj_value a, sj_value b) { return sj_compare(g, SJ_EQ, a, b); }
static sj_value cmp_ne(sj_graph *g, sj_value a, sj_value b) { return sj_compare(g, SJ_NE, a, b); }

static binary_fn *const binaries[] = {sj_add, sj_sub, sj_mul, sj_div, sj_pow, sj_min, sj_max,
                                      cmp_lt, cmp_le, cmp_gt, cmp_ge, cmp_eq, cmp_ne};

static void test_binary(void **state)
{
    sess *s = *state;
    /* (a shape, b shape) pairs, b broadcast NumPy-style */
    static const int64_t pairs[][2][4] = {
        {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {1, 4}},    {{2, 3, 4}, {2, 3, 1}}, {{2, 3, 4}, {0}},
        {{2, 0, 4}, {1, 4}},    {{0}, {0}},             {{2, 1, 1}, {2, 1, 1}}, {{3, 2, 1, 5}, {2, 4, 1}},
        {{1, 1000}, {1, 1000}},
    };
    for (size_t f = 0; f < sizeof binaries / sizeof binaries[0]; f++)
        for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
            sj_value a = input(s, (int)pairs[p][0][0], pairs[p][0] + 1, 0.2, 3);
            sj_value b = input(s, (int)pairs[p][1][0], pairs[p][1] + 1, 0.2, 3);
            if (f >= 7) /* comparisons: make some elements equal */
                s->data[1][0] = s->data[0][0];
            check1(s, binaries[f](s->g, a, b));
        }
}

static void test_select_and_nan(void **state)
{
    sess *s = *state;
    static const double x[6] = {NAN, 1, -2, 0, -0.0, NAN}, y[6] = {1, NAN, -3, 0, 2, NAN};
    for (size_t f = 0; f < sizeof binaries / sizeof binaries[0]; f++) {
        sj_value a = input_data(s, 1, D(6), x, 0, 0), b = input_data(s, 1, D(6), y, 0, 0);
        check1(s, binaries[f](s->g, a, b));
    }
    sj_value a = input_data(s, 1, D(6), x, 0, 0);
    check1(s, sj_sign(s->g, a));
    a = input_data(s, 1, D(6), x, 0, 0);
    check1(s, sj_logistic(s->g, a));
    sj_value p = input_data(s, 1, D(6), x, 0, 0);
    sj_value q = input(s, 1, D(6), -1, 1), r = input(s, 0, D(0), -1, 1);
    check1(s, sj_select(s->g, p, q, r));
    p = input(s, 2, D(3, 1), -1, 1);
    q = input(s, 2, D(3, 4), -1, 1);
    s->data[0][1] = 0;
    check1(s, sj_select(s->g, sj_compare(s->g, SJ_GT, p, sj_scalar(s->g, 0)), q, sj_neg(s->g, q)));
}

/* ---- data movement ----------------------------------------------------------- */

static void test_broadcast_reshape_transpose(void **state)
{
    sess *s = *state;
    const char *d34[] = {"3", "4"}, *d234[] = {"2", "3", "4"};
    sj_value x = input(s, 1, D(4), -1, 1);
    check1(s, sj_broadcast_to(s->g, x, 2, d34));
    x = input(s, 2, D(3, 1), -1, 1);
    check1(s, sj_broadcast_to(s->g, x, 3, d234));
    x = input(s, 0, D(0), -1, 1);
    check1(s, sj_broadcast_to(s->g, x, 2, d34));
    const char *d0[] = {"0", "4"};
    x = input(s, 1, D(4), -1, 1);
    check1(s, sj_broadcast_to(s->g, x, 2, d0));
    /* reshape aliases; of an expression it materialises the expression */
    const char *r26[] = {"2", "6"}, *r12[] = {"12"};
    x = input(s, 2, D(3, 4), -1, 1);
    check1(s, sj_reshape(s->g, x, 2, r26));
    x = input(s, 2, D(3, 4), -1, 1);
    check1(s, sj_exp(s->g, sj_reshape(s->g, sj_exp(s->g, x), 1, r12)));
    x = input(s, 2, D(3, 4), -1, 1);
    sj_value r = sj_reshape(s->g, sj_mT(s->g, x), 2, r26);
    check1(s, sj_add(s->g, r, sj_sum_all(s->g, r)));
    static const int perms[][4] = {{1, 0, 2}, {2, 0, 1}, {0, 2, 1}, {2, 1, 0}};
    for (int p = 0; p < 4; p++) {
        x = input(s, 3, D(2, 3, 4), -1, 1);
        check1(s, sj_transpose(s->g, x, perms[p]));
        x = input(s, 3, D(2, 3, 4), -1, 1);
        check1(s, sj_exp(s->g, sj_transpose(s->g, x, perms[p])));
    }
    x = input(s, 2, D(0, 3), -1, 1);
    check1(s, sj_mT(s->g, x));
    x = input(s, 2, D(1, 1), -1, 1);
    check1(s, sj_mT(s->g, x));
}

static void test_slice_concat(void **state)
{
    sess *s = *state;
    static const int64_t sl[][3] = {{0, 1, 3}, {1, 0, INT64_MAX}, {1, -2, INT64_MAX}, {0, 2, 2},
                                    {2, 1, 4},  {1, -3, -1}};
    for (size_t i = 0; i < sizeof sl / sizeof sl[0]; i++) {
        sj_value x = input(s, 3, D(4, 3, 5), -1, 1);
        check1(s, sj_slice(s->g, x, (int)sl[i][0], sl[i][1], sl[i][2]));
        x = input(s, 3, D(4, 3, 5), -1, 1);
        check1(s, sj_square(s->g, sj_slice(s->g, x, (int)sl[i][0], sl[i][1], sl[i][2])));
    }
    for (int axis = 0; axis < 2; axis++) {
        sj_value xs[3] = {input(s, 2, D(2, 3), -1, 1), input(s, 2, D(2, 3), -1, 1),
                          input(s, 2, axis ? D(2, 0) : D(0, 3), -1, 1)};
        xs[1] = sj_exp(s->g, xs[1]);
        check1(s, sj_concat(s->g, 3, xs, axis));
    }
    sj_value a = input(s, 1, D(3), -1, 1), b = input(s, 1, D(1), -1, 1);
    sj_value xs[2] = {a, b};
    check1(s, sj_concat(s->g, 2, xs, 0));
}

static void test_gather_segment_one_hot(void **state)
{
    sess *s = *state;
    static const double idx[7] = {2, 0, 1, 2, 2, 0, 3};
    sj_value x = input(s, 2, D(4, 3), -1, 1), i = input_data(s, 1, D(7), idx, 0, 0);
    check1(s, sj_gather(s->g, x, i));
    x = input(s, 1, D(4), -1, 1);
    i = input_data(s, 1, D(7), idx, 0, 0);
    check1(s, sj_gather(s->g, sj_exp(s->g, x), i));
    x = input(s, 3, D(4, 2, 2), -1, 1);
    i = input_data(s, 1, D(0), idx, 0, 0);
    check1(s, sj_gather(s->g, x, i));
    x = input(s, 2, D(7, 3), -1, 1);
    i = input_data(s, 1, D(7), idx, 0, 0);
    check1(s, sj_segment_sum(s->g, x, i, "5"));
    x = input(s, 1, D(7), -1, 1);
    i = input_data(s, 1, D(7), idx, 0, 0);
    check1(s, sj_segment_sum(s->g, sj_square(s->g, x), i, "4"));
    x = input(s, 2, D(0, 3), -1, 1);
    i = input_data(s, 1, D(0), idx, 0, 0);
    check1(s, sj_segment_sum(s->g, x, i, "2"));
    i = input_data(s, 1, D(7), idx, 0, 0);
    check1(s, sj_one_hot(s->g, i, "4"));
    i = input_data(s, 1, D(7), idx, 0, 0);
    check1(s, sj_one_hot(s->g, i, "6"));
}

/* ---- reductions ----------------------------------------------------------------- */

static void test_reductions(void **state)
{
    sess *s = *state;
    typedef sj_value reduce_fn(sj_graph *, sj_value, int, const int *);
    reduce_fn *fns[] = {sj_sum, sj_reduce_max, sj_mean};
    static const int axes[][4] = {{1, 0}, {1, 1}, {1, 2}, {2, 0, 2}, {3, 0, 1, 2}, {0}};
    for (int f = 0; f < 3; f++) {
        for (size_t a = 0; a < sizeof axes / sizeof axes[0]; a++) {
            sj_value x = input(s, 3, D(2, 3, 4), -2, 2);
            check1(s, fns[f](s->g, x, axes[a][0], axes[a] + 1));
            x = input(s, 3, D(2, 0, 4), -2, 2);
            check1(s, fns[f](s->g, x, axes[a][0], axes[a] + 1));
        }
        sj_value x = input(s, 1, D(1000), -2, 2);
        sj_value y = sj_square(s->g, sj_sub(s->g, x, sj_scalar(s->g, 0.5)));
        check1(s, fns[f](s->g, y, 1, (const int[]){0}));
        static const double nan3[3] = {1, NAN, 2};
        x = input_data(s, 1, D(3), nan3, 0, 0);
        check1(s, fns[f](s->g, x, 1, (const int[]){0}));
        x = input(s, 0, D(0), -2, 2);
        check1(s, fns[f](s->g, x, 0, NULL));
    }
}

/* ---- linear algebra: products and structure ---------------------------------------- */

static void test_matmul(void **state)
{
    sess *s = *state;
    static const int64_t mm[][2][5] = {
        /* a shape, b shape (rank first) */
        {{2, 3, 3}, {2, 3, 3}},     {{2, 50, 50}, {2, 50, 50}}, {{2, 3, 4}, {2, 4, 5}},
        {{2, 9, 4}, {2, 4, 12}},    {{2, 1, 1}, {2, 1, 1}},     {{2, 20, 30}, {1, 30}},
        {{1, 30}, {2, 30, 20}},     {{1, 4}, {1, 4}},           {{3, 4, 3, 4}, {3, 4, 4, 2}},
        {{3, 2, 20, 10}, {3, 2, 10, 15}}, {{2, 3, 0}, {2, 0, 4}}, {{2, 0, 3}, {2, 3, 4}},
        {{2, 1, 40}, {2, 40, 1}},   {{2, 8, 8}, {2, 8, 8}},     {{2, 9, 9}, {2, 9, 9}},
    };
    for (size_t c = 0; c < sizeof mm / sizeof mm[0]; c++) {
        sj_value a = input(s, (int)mm[c][0][0], mm[c][0] + 1, -1, 1);
        sj_value b = input(s, (int)mm[c][1][0], mm[c][1] + 1, -1, 1);
        check1(s, sj_matmul(s->g, a, b));
    }
    /* transposes folded into the BLAS flags; AᵀA and AAᵀ through dsyrk */
    static const int64_t sq[] = {3, 30};
    for (int k = 0; k < 2; k++) {
        int64_t n = sq[k], m = sq[k] + 7;
        sj_value x = input(s, 2, D(m, n), -1, 1);
        check1(s, sj_matmul(s->g, sj_mT(s->g, x), x));
        x = input(s, 2, D(m, n), -1, 1);
        check1(s, sj_matmul(s->g, x, sj_mT(s->g, x)));
        x = input(s, 2, D(m, n), -1, 1);
        sj_value y = input(s, 2, D(m, n), -1, 1);
        check1(s, sj_matmul(s->g, sj_mT(s->g, x), y));
        x = input(s, 2, D(n, m), -1, 1);
        y = input(s, 2, D(n, m), -1, 1);
        check1(s, sj_matmul(s->g, sj_mT(s->g, x), sj_mT(s->g, sj_exp(s->g, sj_mT(s->g, y)))));
        x = input(s, 3, D(2, m, n), -1, 1);
        check1(s, sj_matmul(s->g, sj_mT(s->g, x), x));
        x = input(s, 2, D(m, n), -1, 1);
        y = input(s, 1, D(m), -1, 1);
        check1(s, sj_matmul(s->g, sj_mT(s->g, x), y));
    }
    /* Matrix-vector products in every layout: inline loops up to
     * CG_INLINE_GEMV (dot products or column sweeps), dgemv above. */
    static const int64_t mv[][2] = {{300, 7}, {7, 300}, {300, 300}};
    for (int k = 0; k < 3; k++) {
        int64_t r = mv[k][0], c = mv[k][1];
        for (int layout = 0; layout < 5; layout++) { /* a check starts a new graph */
            sj_value a = input(s, layout == 4 ? 3 : 2, layout == 4 ? D(3, r, c) : D(r, c), -1, 1);
            sj_value u = input(s, 2, D(c, 1), -1, 1), w = input(s, 2, D(r, 1), -1, 1);
            sj_value at = sj_mT(s->g, a);
            sj_value l = layout == 0 || layout == 4 ? a : layout == 1 ? at : sj_mT(s->g, layout == 2 ? w : u);
            sj_value rt = layout == 0 || layout == 4 ? u : layout == 1 ? w : layout == 2 ? a : at;
            check1(s, sj_matmul(s->g, l, rt)); /* A u, Aᵀ w, wᵀ A, uᵀ Aᵀ, batched A u */
        }
    }
}

static void test_structure(void **state)
{
    sess *s = *state;
    sj_value a = input(s, 1, D(3), -1, 1), b = input(s, 1, D(4), -1, 1);
    check1(s, sj_outer(s->g, a, b));
    a = input(s, 2, D(2, 3), -1, 1);
    b = input(s, 2, D(2, 0), -1, 1);
    check1(s, sj_outer(s->g, a, b));
    a = input(s, 2, D(2, 3), -1, 1);
    b = input(s, 2, D(4, 5), -1, 1);
    check1(s, sj_kron(s->g, a, b));
    a = input(s, 3, D(2, 2, 2), -1, 1);
    b = input(s, 3, D(2, 3, 1), -1, 1);
    check1(s, sj_kron(s->g, sj_exp(s->g, a), b));
    a = input(s, 2, D(2, 3), -1, 1);
    b = input(s, 2, D(0, 5), -1, 1);
    check1(s, sj_kron(s->g, a, b));
    a = input(s, 2, D(4, 4), -1, 1);
    check1(s, sj_diag(s->g, a));
    a = input(s, 3, D(3, 2, 2), -1, 1);
    check1(s, sj_diag(s->g, sj_exp(s->g, a)));
    a = input(s, 1, D(4), -1, 1);
    check1(s, sj_diag_embed(s->g, a));
    a = input(s, 2, D(2, 3), -1, 1);
    check1(s, sj_diag_embed(s->g, sj_exp(s->g, a)));
    a = input(s, 1, D(0), -1, 1);
    check1(s, sj_diag_embed(s->g, a));
    for (int k = -2; k <= 2; k++) {
        a = input(s, 2, D(4, 5), -1, 1);
        check1(s, sj_tril(s->g, a, k));
        a = input(s, 3, D(2, 5, 3), -1, 1);
        check1(s, sj_triu(s->g, a, k));
    }
    check1(s, sj_eye(s->g, "4"));
    check1(s, sj_eye(s->g, "0"));
    a = input(s, 2, D(3, 3), -1, 1);
    check1(s, sj_add(s->g, a, sj_eye(s->g, "3")));
    a = input(s, 2, D(3, 3), -1, 1);
    check1(s, sj_matmul(s->g, sj_eye(s->g, "3"), a));
}

/* ---- factorisations and solves -------------------------------------------------------- */

static const int64_t pd_shapes[][5] = {
    {2, 1, 1}, {2, 3, 3}, {2, 8, 8}, {2, 9, 9}, {2, 50, 50}, {3, 4, 3, 3}, {3, 2, 20, 20}, {2, 0, 0},
    {3, 0, 2, 2}, {4, 2, 3, 2, 2},
};
#define NPD (sizeof pd_shapes / sizeof pd_shapes[0])

static void test_cholesky_logdet(void **state)
{
    sess *s = *state;
    for (size_t k = 0; k < NPD; k++) {
        sj_value a = input_pd(s, (int)pd_shapes[k][0], pd_shapes[k] + 1);
        check1(s, sj_cholesky(s->g, a));
        a = input_pd(s, (int)pd_shapes[k][0], pd_shapes[k] + 1);
        check1(s, sj_logdet(s->g, a));
    }
    /* the factorisation reads an elementwise expression through its copy */
    sj_value a = input_pd(s, 2, D(4, 4));
    sj_value d = input(s, 1, D(4), 0.5, 1);
    check1(s, sj_cholesky(s->g, sj_add(s->g, a, sj_diag_embed(s->g, d))));
}

/* eigvalsh / eigvecsh call the evaluator's kernel: bit for bit the same,
 * batched, empty and on an elementwise input (materialised first). */
static void test_eigh(void **state)
{
    sess *s = *state;
    for (size_t k = 0; k < NPD; k++) {
        sj_value a = input_pd(s, (int)pd_shapes[k][0], pd_shapes[k] + 1);
        sj_value outs[2] = {sj_eigvalsh(s->g, a), sj_eigvecsh(s->g, a)};
        check_outs(s, 2, outs);
        reset(s);
    }
    sj_value a = input_pd(s, 2, D(4, 4));
    sj_value d = input(s, 1, D(4), 0.5, 1);
    check1(s, sj_eigvecsh(s->g, sj_add(s->g, a, sj_diag_embed(s->g, d))));
}

static void test_triangular_solve(void **state)
{
    sess *s = *state;
    static const int64_t n[] = {1, 3, 8, 20};
    for (unsigned flags = 0; flags < 8; flags++)
        for (int k = 0; k < 4; k++) {
            int right = flags & SJ_SOLVE_RIGHT;
            sj_value a = input_tri(s, 2, D(n[k], n[k]), flags & SJ_SOLVE_UPPER);
            sj_value b = input(s, 2, right ? D(5, n[k]) : D(n[k], 5), -1, 1);
            check1(s, sj_triangular_solve(s->g, a, b, flags));
            a = input_tri(s, 3, D(2, n[k], n[k]), flags & SJ_SOLVE_UPPER);
            b = input(s, 3, right ? D(2, 1, n[k]) : D(2, n[k], 1), -1, 1);
            check1(s, sj_triangular_solve(s->g, a, b, flags));
        }
    sj_value a = input_tri(s, 2, D(4, 4), 0), b = input(s, 1, D(4), -1, 1);
    check1(s, sj_triangular_solve(s->g, a, b, 0));
    a = input_tri(s, 2, D(3, 3), 0);
    b = input(s, 2, D(3, 0), -1, 1);
    check1(s, sj_triangular_solve(s->g, a, b, 0));
}

static void test_cholesky_solve_and_solve(void **state)
{
    sess *s = *state;
    for (size_t k = 0; k < NPD; k++) {
        const int64_t *sh = pd_shapes[k];
        int r = (int)sh[0];
        int64_t bd[SJ_MAX_RANK];
        memcpy(bd, sh + 1, (size_t)r * sizeof *bd);
        bd[r - 1] = 3;
        sj_value a = input_pd(s, r, sh + 1), b = input(s, r, bd, -1, 1);
        check1(s, sj_cholesky_solve(s->g, sj_cholesky(s->g, a), b));
        a = input_pd(s, r, sh + 1);
        b = input(s, r, bd, -1, 1);
        check1(s, sj_solve(s->g, a, b));
        a = input(s, r, sh + 1, -1, 1); /* general (non-symmetric) */
        b = input(s, r, bd, -1, 1);
        check1(s, sj_solve(s->g, sj_add(s->g, a, sj_scalar(s->g, 0.1)), b));
    }
    sj_value a = input_pd(s, 2, D(5, 5)), b = input(s, 1, D(5), -1, 1);
    check1(s, sj_solve(s->g, a, b));
    a = input_pd(s, 2, D(5, 5));
    b = input(s, 1, D(5), -1, 1);
    check1(s, sj_cholesky_solve(s->g, sj_cholesky(s->g, a), b));
}

/* Makes matrix `batch` of input i not positive definite. */
static void make_not_pd(sess *s, int i, int64_t n, int64_t batch)
{
    double *x = s->data[i] + batch * n * n;
    x[(n - 1) * n + (n - 1)] = -1.0;
}

/* A Cholesky solve against the identity is an explicit inverse, lowered to
 * dpotri (a copy of L, dtrtri + dlauum, the upper triangle mirrored): eye
 * directly, broadcast along a batch, through a reshape; at the inline size
 * it stays two substitutions.  A factor that is not from our cholesky is
 * checked for a zero diagonal as the solves are. */
static void test_inverse(void **state)
{
    sess *s = *state;
    static const int64_t n[] = {3, 9, 20, 50};
    for (int k = 0; k < 4; k++) {
        char dim[16];
        snprintf(dim, sizeof dim, "%d", (int)n[k]);
        sj_value a = input_pd(s, 2, D(n[k], n[k]));
        check1(s, sj_cholesky_solve(s->g, sj_cholesky(s->g, a), sj_eye(s->g, dim)));
        assert_int_equal(s->stats.nlibcall, (n[k] > 8) + (n[k] > 16)); /* inverse, cholesky */
        const char *bd[3] = {"3", dim, dim}, *rd[3] = {"1", dim, dim};
        a = input_pd(s, 3, D(3, n[k], n[k]));
        sj_value eye = sj_broadcast_to(s->g, sj_eye(s->g, dim), 3, bd);
        check1(s, sj_cholesky_solve(s->g, sj_cholesky(s->g, a), eye));
        a = input_pd(s, 3, D(1, n[k], n[k]));
        eye = sj_reshape(s->g, sj_eye(s->g, dim), 3, rd);
        check1(s, sj_cholesky_solve(s->g, sj_cholesky(s->g, a), eye));
        /* a triangular input as the factor (only its lower triangle is read) */
        a = input_tri(s, 2, D(n[k], n[k]), 0);
        check1(s, sj_cholesky_solve(s->g, a, sj_eye(s->g, dim)));
        a = input_tri(s, 2, D(n[k], n[k]), 0);
        s->data[0][(n[k] / 2) * (n[k] + 1)] = 0;
        assert_int_equal(check1(s, sj_cholesky_solve(s->g, a, sj_eye(s->g, dim))), SJ_ERR_SINGULAR);
    }
    /* the IR calls dpotri, and no dtrsm, for a LAPACK-sized inverse */
    sj_value a = input_pd(s, 2, D(30, 30));
    sj_value x = sj_cholesky_solve(s->g, sj_cholesky(s->g, a), sj_eye(s->g, "30"));
    sj_fn *fn;
    sj_compiled *c;
    assert_ok(sj_fn_create(s->g, 1, &x, &fn), s->ctx);
    const int64_t *dims[1] = {s->dim[0]};
    assert_ok(sj_fn_compile(fn, 1, s->rank, dims, &c), s->ctx);
    char *ir = sj_compiled_llvm_ir(c);
    assert_true(strstr(ir, "LAPACKE_dpotri_work") && !strstr(ir, "cblas_dtrsm"));
    sj_string_free(ir);
    sj_compiled_free(c);
    sj_fn_free(fn);
    reset(s);
}

/* ---- batches across cores ------------------------------------------------------------------ */

/* OpenBLAS's thread count (its cblas.h is not on the tests' include path). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* Compiles outs, runs the kernel with the pool limited to 1 thread (serial)
 * and to `threads`, and checks both runs give the same bytes (and the same
 * status and message).  The serial run has OpenBLAS on one thread too, as the
 * pool's items have: a threaded dpotrf may round differently.  Returns the
 * status; the message is in s->msg. */
static sj_status check_threads(sess *s, int nout, const sj_value *outs, int threads,
                               int expect_pool)
{
    sj_status st = check_outs(s, nout, outs); /* against ir_eval, at the default */
    sj_fn *fn;
    sj_compiled *c;
    assert_ok(sj_fn_create(s->g, nout, outs, &fn), s->ctx);
    const int64_t *dims[MAXIN];
    for (int i = 0; i < s->nin; i++)
        dims[i] = s->dim[i];
    assert_ok(sj_fn_specialize(fn, s->nin, s->rank, dims, &c), s->ctx);
    cg_kernel *k = NULL;
    ir_err err = {0};
    assert_int_equal(cg_compile(c->ir, &(cg_options){2}, &k, &err), SJ_OK);
    char *ir = cg_kernel_llvm_ir(k);
    assert_int_equal(strstr(ir, "sj_batch_run") != NULL, expect_pool);
    ir_free(ir);
    size_t bytes = (cg_kernel_scratch_bytes(k) + 63) & ~(size_t)63;
    void *scratch = aligned_alloc(64, bytes);
    double *got[2][MAXOUT];
    size_t n[MAXOUT];
    sj_status run[2];
    char msg[2][IR_ERR_MSG];
    for (int j = 0; j < nout; j++)
        n[j] = ir_shape_numel(ir_shape_of(c->ir, c->ir->output[j]));
    for (int t = 0; t < 2; t++) {
        int old = cg_pool_set_threads(t ? threads : 1), blas = openblas_get_num_threads();
        if (!t)
            openblas_set_num_threads(1);
        for (int j = 0; j < nout; j++) {
            got[t][j] = malloc((n[j] + 1) * sizeof(double));
            for (size_t e = 0; e <= n[j]; e++)
                got[t][j][e] = SENTINEL;
        }
        memset(scratch, 0xff, bytes);
        ir_err e = {0};
        run[t] = cg_kernel_run(k, (const double *const *)s->data, got[t], scratch, &e);
        snprintf(msg[t], sizeof msg[t], "%s", e.msg);
        cg_pool_set_threads(old);
        openblas_set_num_threads(blas);
    }
    assert_int_equal(run[0], st);
    assert_int_equal(run[1], st);
    assert_string_equal(msg[0], msg[1]);
    for (int j = 0; j < nout; j++) {
        assert_memory_equal(got[0][j], got[1][j], (n[j] + 1) * sizeof(double));
        free(got[0][j]);
        free(got[1][j]);
    }
    if (st != SJ_OK)
        snprintf(s->msg, sizeof s->msg, "%s", msg[1]);
    free(scratch);
    cg_kernel_free(k);
    sj_compiled_free(c);
    sj_fn_free(fn);
    reset(s);
    return st;
}

/* Large batches of factorisations, solves and products run across the
 * pool's threads: the same bytes as the serial loop, the first failing item
 * in batch order named however the items were split, small batches serial. */
static void test_batch_threads(void **state)
{
    sess *s = *state;
    for (int threads = 2; threads <= 4; threads += 2) {
        sj_value a = input_pd(s, 3, D(64, 24, 24));
        sj_value outs[2] = {sj_cholesky(s->g, a), sj_logdet(s->g, a)};
        check_threads(s, 2, outs, threads, 1);
        /* inline-sized matrices, many of them */
        a = input_pd(s, 3, D(3000, 6, 6));
        sj_value b = input(s, 3, D(3000, 6, 2), -1, 1);
        sj_value l = sj_cholesky(s->g, a);
        sj_value outs2[2] = {l, sj_cholesky_solve(s->g, l, b)};
        check_threads(s, 2, outs2, threads, 1);
        a = input_tri(s, 3, D(40, 30, 30), 0);
        b = input(s, 3, D(40, 30, 7), -1, 1);
        sj_value x = sj_triangular_solve(s->g, a, b, 0);
        check_threads(s, 1, &x, threads, 1);
        a = input_pd(s, 3, D(40, 30, 30));
        x = sj_cholesky_solve(s->g, sj_cholesky(s->g, a),
                              sj_broadcast_to(s->g, sj_eye(s->g, "30"), 3,
                                              (const char *const[]){"40", "30", "30"}));
        check_threads(s, 1, &x, threads, 1);
        a = input(s, 3, D(40, 30, 30), -1, 1);
        b = input(s, 3, D(40, 30, 3), -1, 1);
        x = sj_solve(s->g, sj_add(s->g, a, sj_scalar(s->g, 0.1)), b);
        check_threads(s, 1, &x, threads, 1);
        a = input(s, 3, D(50, 20, 20), -1, 1);
        b = input(s, 3, D(50, 20, 20), -1, 1);
        x = sj_matmul(s->g, a, b);
        check_threads(s, 1, &x, threads, 1);
        /* errors: items 37 and 50 are not positive definite; 37 is reported */
        for (int rep = 0; rep < 5; rep++) {
            a = input_pd(s, 3, D(64, 24, 24));
            make_not_pd(s, 0, 24, 50);
            make_not_pd(s, 0, 24, 37);
            sj_value outs3[2] = {sj_exp(s->g, a), sj_cholesky(s->g, a)};
            assert_int_equal(check_threads(s, 2, outs3, threads, 1), SJ_ERR_NOT_POSITIVE_DEFINITE);
            assert_non_null(strstr(s->msg, "batch 37"));
        }
        a = input_pd(s, 3, D(3000, 4, 4));
        make_not_pd(s, 0, 4, 2999);
        make_not_pd(s, 0, 4, 1234);
        sj_value ld = sj_logdet(s->g, a);
        assert_int_equal(check_threads(s, 1, &ld, threads, 1), SJ_ERR_NOT_POSITIVE_DEFINITE);
        assert_non_null(strstr(s->msg, "batch 1234"));
        a = input(s, 3, D(40, 30, 30), -1, 1);
        b = input(s, 3, D(40, 30, 3), -1, 1);
        for (int item = 33; item >= 21; item -= 12) /* a zero column: singular */
            for (int64_t j = 0; j < 30; j++)
                s->data[0][item * 900 + j * 30 + 4] = 0;
        x = sj_solve(s->g, a, b);
        assert_int_equal(check_threads(s, 1, &x, threads, 1), SJ_ERR_SINGULAR);
        assert_non_null(strstr(s->msg, "batch 21"));
    }
    /* small batches stay plain loops */
    sj_value a = input_pd(s, 3, D(4, 9, 9));
    sj_value x = sj_cholesky(s->g, a);
    check_threads(s, 1, &x, 2, 0);
}

/* ---- error paths ---------------------------------------------------------------------------- */

static void test_errors(void **state)
{
    sess *s = *state;
    static const int64_t n[] = {3, 9, 30};
    for (int k = 0; k < 3; k++) {
        /* a second output computed before the failing op stays unchanged too */
        sj_value a = input_pd(s, 3, D(3, n[k], n[k]));
        make_not_pd(s, 0, n[k], 1);
        sj_value outs[2] = {sj_exp(s->g, a), sj_cholesky(s->g, a)};
        assert_int_equal(check_outs(s, 2, outs), SJ_ERR_NOT_POSITIVE_DEFINITE);
        assert_non_null(strstr(s->msg, "cholesky"));
        assert_non_null(strstr(s->msg, "batch 1"));
        reset(s);
        a = input_pd(s, 2, D(n[k], n[k]));
        make_not_pd(s, 0, n[k], 0);
        assert_int_equal(check1(s, sj_logdet(s->g, a)), SJ_ERR_NOT_POSITIVE_DEFINITE);
        a = input_pd(s, 2, D(n[k], n[k]));
        s->data[0][(n[k] - 1) * n[k]] = NAN; /* NaN in the lower triangle */
        assert_int_equal(check1(s, sj_cholesky(s->g, a)), SJ_ERR_NOT_POSITIVE_DEFINITE);
        a = input_pd(s, 2, D(n[k], n[k]));
        sj_value b = input(s, 2, D(n[k], 2), -1, 1);
        for (int64_t j = 0; j < n[k]; j++) /* a zero column: singular */
            s->data[0][j * n[k] + 1] = 0;
        assert_int_equal(check1(s, sj_solve(s->g, a, b)), SJ_ERR_SINGULAR);
        a = input_tri(s, 2, D(n[k], n[k]), 0);
        b = input(s, 2, D(n[k], 2), -1, 1);
        s->data[0][n[k] + 1] = 0;
        assert_int_equal(check1(s, sj_triangular_solve(s->g, a, b, 0)), SJ_ERR_SINGULAR);
        a = input_tri(s, 2, D(n[k], n[k]), 0);
        b = input(s, 2, D(n[k], 2), -1, 1);
        s->data[0][0] = 0;
        assert_int_equal(check1(s, sj_cholesky_solve(s->g, a, b)), SJ_ERR_SINGULAR);
    }
    /* An infinity in the lower triangle is not positive definite either
     * (docs/reliability.md), in ir_eval (a non-finite scan) and in the
     * generated code (inline pivots, or the diagonal after dpotrf); one in
     * the upper triangle is never read. */
    static const int64_t sizes[] = {1, 2, 3, 9, 30};
    for (int k = 0; k < 5; k++) {
        int64_t m = sizes[k];
        struct { int64_t i, j; double x; } infs[] = {
            {0, 0, INFINITY}, {m - 1, m - 1, INFINITY}, {m - 1, 0, INFINITY},
            {m - 1, 0, -INFINITY}, {m / 2, m / 2, -INFINITY}};
        for (int c = 0; c < 5; c++) {
            if (infs[c].i == infs[c].j ? 0 : m < 2)
                continue;
            for (int op = 0; op < 2; op++) {
                sj_value a = input_pd(s, 2, D(m, m));
                s->data[0][infs[c].i * m + infs[c].j] = infs[c].x;
                if (c == 2) /* the case of docs/reliability.md: Inf below and on the diagonal */
                    for (int64_t d = 0; d < m; d++)
                        s->data[0][d * m + d] = INFINITY;
                sj_value out = op ? sj_logdet(s->g, a) : sj_cholesky(s->g, a);
                assert_int_equal(check1(s, out), SJ_ERR_NOT_POSITIVE_DEFINITE);
                assert_non_null(strstr(s->msg, op ? "logdet" : "cholesky"));
            }
        }
        if (m > 1) {
            sj_value a = input_pd(s, 2, D(m, m));
            s->data[0][m - 1] = INFINITY; /* upper triangle: not read */
            assert_int_equal(check1(s, sj_cholesky(s->g, a)), SJ_OK);
        }
    }
    static const double bad[][3] = {{0, 4, 1}, {0, 1.5, 1}, {-1, 0, 1}, {0, NAN, 1}, {INFINITY, 0, 0}};
    for (int k = 0; k < 5; k++) {
        sj_value x = input(s, 2, D(4, 2), -1, 1), i = input_data(s, 1, D(3), bad[k], 0, 0);
        sj_value outs[2] = {sj_exp(s->g, x), sj_gather(s->g, x, i)};
        assert_int_equal(check_outs(s, 2, outs), SJ_ERR_DOMAIN);
        reset(s);
        x = input(s, 2, D(3, 2), -1, 1);
        i = input_data(s, 1, D(3), bad[k], 0, 0);
        assert_int_equal(check1(s, sj_segment_sum(s->g, x, i, "4")), SJ_ERR_DOMAIN);
        i = input_data(s, 1, D(3), bad[k], 0, 0);
        assert_int_equal(check1(s, sj_one_hot(s->g, i, "4")), SJ_ERR_DOMAIN);
    }
}

/* Empty intermediates have no buffer: their readers' loops run zero times
 * and get a null base pointer (tests/fuzz/graph/crashes/
 * codegen-zero-size-reduce-segv: sum(x * reshape(A @ reshape(x, [n, 1]), [n]))
 * at n = 0 crashed in cg_gep). */
static void test_empty(void **state)
{
    sess *s = *state;
    sj_value x = input(s, 1, D(0), -1, 1), a = input(s, 2, D(0, 0), -1, 1);
    const char *col[2] = {"0", "1"}, *flat[1] = {"0"};
    sj_value ax = sj_matmul(s->g, a, sj_reshape(s->g, x, 2, col));
    sj_value f = sj_sum_all(s->g, sj_mul(s->g, x, sj_reshape(s->g, ax, 1, flat)));
    assert_int_equal(check1(s, f), SJ_OK);
    /* a matmul with an empty inner axis is a zero matrix */
    sj_value p = input(s, 2, D(3, 0), -1, 1), q = input(s, 2, D(0, 4), -1, 1);
    sj_value outs[2] = {sj_matmul(s->g, p, q), sj_exp(s->g, sj_sum_all(s->g, sj_exp(s->g, p)))};
    assert_int_equal(check_outs(s, 2, outs), SJ_OK);
    reset(s);
    /* batched linear algebra over an empty batch, and of 0 x 0 matrices */
    a = input_pd(s, 3, D(0, 9, 9));
    sj_value outs2[2] = {sj_cholesky(s->g, a), sj_exp(s->g, sj_logdet(s->g, a))};
    assert_int_equal(check_outs(s, 2, outs2), SJ_OK);
    reset(s);
    a = input_pd(s, 3, D(5, 0, 0));
    sj_value outs3[2] = {sj_cholesky(s->g, a), sj_logdet(s->g, a)};
    assert_int_equal(check_outs(s, 2, outs3), SJ_OK);
    reset(s);
}

/* ---- fusion, planning, introspection ---------------------------------------------------------- */

static int count_substr(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

static void test_fusion(void **state)
{
    sess *s = *state;
    /* ten elementwise ops, a broadcast scalar and a broadcast row: one loop,
     * no scratch buffer, output written directly */
    sj_value x = input(s, 2, D(200, 50), -1, 1), r = input(s, 1, D(50), -1, 1);
    sj_value y = sj_mul(s->g, x, sj_scalar(s->g, 2.0));
    y = sj_add(s->g, y, r);
    y = sj_exp(s->g, y);
    y = sj_sub(s->g, y, sj_scalar(s->g, 1.0));
    y = sj_square(s->g, y);
    y = sj_sqrt(s->g, y);
    y = sj_log1p(s->g, y);
    y = sj_max(s->g, y, x);
    y = sj_neg(s->g, y);
    y = sj_tanh(s->g, y);
    sj_value out = y;
    sj_fn *fn;
    sj_compiled *c;
    assert_ok(sj_fn_create(s->g, 1, &out, &fn), s->ctx);
    const int64_t *dims[2] = {s->dim[0], s->dim[1]};
    assert_ok(sj_fn_specialize(fn, 2, s->rank, dims, &c), s->ctx);
    cg_kernel *k;
    ir_err err = {0};
    assert_int_equal(cg_compile(c->ir, &(cg_options){2}, &k, &err), SJ_OK);
    cg_stats st;
    cg_kernel_stats(k, &st);
    assert_int_equal(st.nloop, 1);
    assert_int_equal(st.nbuffer, 0);
    assert_true(st.ninlined >= 10);
    assert_int_equal(cg_kernel_scratch_bytes(k), CG_SCRATCH_HEADER);
    char *ir = cg_kernel_llvm_ir(k);
    assert_non_null(ir);
    assert_int_equal(count_substr(ir, "alloca"), 0);
    assert_true(count_substr(ir, "@exp(") >= 1);
    ir_free(ir);
    assert_true(cg_kernel_compile_seconds(k) > 0);
    cg_kernel_free(k);
    sj_compiled_free(c);
    sj_fn_free(fn);
    check1(s, out);

    /* elementwise into a reduction: fused into the sum's loop */
    x = input(s, 2, D(100, 30), -1, 1);
    y = sj_sum(s->g, sj_square(s->g, sj_sub(s->g, x, sj_mean(s->g, x, 1, (const int[]){0}))), 1,
               (const int[]){0});
    check1(s, y);
    assert_int_equal(s->stats.nbuffer, 1); /* the mean only */

    /* an expensive value read twice is computed once (materialised) */
    x = input(s, 1, D(100), -1, 1);
    y = sj_exp(s->g, x);
    check1(s, sj_add(s->g, sj_mul(s->g, y, y), y));
    assert_int_equal(s->stats.nbuffer, 1);
    assert_int_equal(s->stats.nloop, 2);

    /* a cheap value (one multiply) read twice is recomputed in its readers'
     * loop: one loop, no buffer */
    x = input(s, 2, D(30, 20), -1, 1);
    sj_value x2 = input(s, 2, D(30, 20), 0.5, 2);
    sj_value xy = sj_mul(s->g, x, x2);
    y = sj_abs(s->g, sj_sub(s->g, sj_max(s->g, sj_div(s->g, sj_add(s->g, xy, x), x2), x), xy));
    check1(s, y);
    assert_int_equal(s->stats.nbuffer, 0);
    assert_int_equal(s->stats.nloop, 1);

    /* ... but not read many times: 2 adds x 5 extra reads is over budget */
    x = input(s, 1, D(50), -1, 1);
    y = sj_add(s->g, sj_add(s->g, x, sj_scalar(s->g, 1.0)), x);
    sj_value acc = y;
    for (int i = 0; i < 5; i++)
        acc = sj_mul(s->g, acc, y);
    check1(s, acc);
    assert_int_equal(s->stats.nbuffer, 1);
    assert_int_equal(s->stats.nloop, 2);
}

/* logdet A next to cholesky A reuses the factor: one factorisation, at the
 * LAPACK size and at the inline size; small factorisations and solves are
 * shared helper functions, called once per use. */
static void test_linalg_sharing(void **state)
{
    sess *s = *state;
    static const int64_t n[2] = {40, 5};
    for (int k = 0; k < 2; k++) {
        sj_value a = input_pd(s, 2, D(n[k], n[k]));
        sj_value b = input(s, 2, D(n[k], 2), -1, 1);
        sj_value l = sj_cholesky(s->g, a);
        sj_value outs[3] = {sj_logdet(s->g, a), sj_cholesky_solve(s->g, l, b),
                            sj_cholesky_solve(s->g, l, sj_exp(s->g, b))};
        check_outs(s, 3, outs);
        /* cholesky + two solves; the logdet adds none */
        assert_int_equal(s->stats.nlibcall + s->stats.ninline_linalg, 3);
        reset(s);
        /* a logdet before any cholesky still factors a copy */
        a = input_pd(s, 2, D(n[k], n[k]));
        sj_value outs2[2] = {sj_logdet(s->g, a), sj_cholesky(s->g, a)};
        check_outs(s, 2, outs2);
        assert_int_equal(s->stats.nlibcall + s->stats.ninline_linalg, 2);
        reset(s);
    }
    /* batched small factors through the helper: errors still name the batch */
    sj_value a = input_pd(s, 3, D(4, 3, 3));
    check1(s, sj_logdet(s->g, sj_cholesky(s->g, a)));
}

static void test_scratch_reuse(void **state)
{
    sess *s = *state;
    /* a chain of matmuls: intermediates reuse scratch regions */
    sj_value x = input(s, 2, D(30, 30), -1, 1), y = x;
    for (int i = 0; i < 6; i++)
        y = sj_matmul(s->g, y, x);
    check1(s, y);
    assert_int_equal(s->stats.nbuffer, 5);
    assert_true(s->scratch <= CG_SCRATCH_HEADER + 2 * 30 * 30 * 8 + 128);
    assert_int_equal(s->stats.nlibcall, 6);
    /* several outputs, duplicates, an input and a constant as outputs */
    x = input(s, 2, D(3, 4), -1, 1);
    y = sj_exp(s->g, x);
    double cdata[2] = {1.5, -2};
    sj_value k = sj_constant(s->g, 1, D(2), cdata);
    sj_value outs[4] = {y, y, x, k};
    check_outs(s, 4, outs);
    reset(s);
}

/* A small REML-like model: V = Z diag(exp θ) Zᵀ + σ² I, then logdet V and
 * yᵀV⁻¹y through the Cholesky factor; about 25 ops, compiled at O2 and O3. */
static sj_value reml_like(sess *s, int64_t n, int64_t q)
{
    sj_value z = input(s, 2, D(n, q), -1, 1), th = input(s, 1, D(q), -1, 1);
    sj_value y = input(s, 1, D(n), -1, 1), ls = input(s, 0, D(0), -1, 1);
    /* eye(n) with n bound through y's reshape is awkward with "?" sizes;
     * build the identity as diag_embed(y * 0 + 1) instead */
    sj_value ones = sj_add(s->g, sj_mul(s->g, y, sj_scalar(s->g, 0)), sj_scalar(s->g, 1));
    sj_value g = sj_diag_embed(s->g, sj_exp(s->g, sj_mul(s->g, th, sj_scalar(s->g, 2))));
    sj_value v = sj_matmul(s->g, sj_matmul(s->g, z, g), sj_mT(s->g, z));
    v = sj_add(s->g, v, sj_mul(s->g, sj_exp(s->g, ls), sj_diag_embed(s->g, ones)));
    sj_value l = sj_cholesky(s->g, v);
    sj_value ld = sj_mul(s->g, sj_scalar(s->g, 2),
                         sj_sum_all(s->g, sj_log(s->g, sj_diag(s->g, l))));
    sj_value w = sj_triangular_solve(s->g, l, y, 0);
    sj_value quad = sj_sum_all(s->g, sj_square(s->g, w));
    sj_value ld2 = sj_logdet(s->g, v);
    return sj_add(s->g, sj_add(s->g, ld, quad), sj_sub(s->g, ld2, ld));
}

static void test_model(void **state)
{
    sess *s = *state;
    for (int opt = 2; opt <= 3; opt++) {
        s->opt_level = opt;
        check1(s, reml_like(s, 6, 2));
        check1(s, reml_like(s, 60, 5));
    }
    s->opt_level = 2;
}

/* Compile time of a ~50-op graph (printed; the report quotes it). */
static void test_compile_time(void **state)
{
    sess *s = *state;
    sj_value x = input(s, 2, D(40, 10), -1, 1), y = x, acc = sj_scalar(s->g, 0);
    for (int i = 0; i < 8; i++) {
        y = sj_tanh(s->g, sj_add(s->g, y, sj_scalar(s->g, 0.1 * i)));
        sj_value xtx = sj_matmul(s->g, sj_mT(s->g, y), y);
        acc = sj_add(s->g, acc, sj_logdet(s->g, sj_add(s->g, xtx, sj_eye(s->g, "10"))));
        acc = sj_add(s->g, acc, sj_sum_all(s->g, sj_exp(s->g, y)));
    }
    sj_value out = acc;
    sj_fn *fn;
    sj_compiled *c;
    assert_ok(sj_fn_create(s->g, 1, &out, &fn), s->ctx);
    const int64_t *dims[1] = {s->dim[0]};
    assert_ok(sj_fn_specialize(fn, 1, s->rank, dims, &c), s->ctx);
    for (int opt = 2; opt <= 3; opt++) {
        cg_kernel *k;
        ir_err err = {0};
        assert_int_equal(cg_compile(c->ir, &(cg_options){opt}, &k, &err), SJ_OK);
        print_message("compile time of %u nodes at O%d: %.1f ms\n", c->ir->nnode, opt,
                      1e3 * cg_kernel_compile_seconds(k));
        cg_kernel_free(k);
    }
    sj_compiled_free(c);
    sj_fn_free(fn);
    check1(s, out);
}

/* Compiles from several threads at once, then runs every kernel. */
typedef struct job {
    const ir_graph *g;
    cg_kernel *k;
    sj_status st;
} job;

static void *compile_job(void *arg)
{
    job *j = arg;
    ir_err err = {0};
    j->st = cg_compile(j->g, &(cg_options){2}, &j->k, &err);
    return NULL;
}

static void test_concurrent_compile(void **state)
{
    sess *s = *state;
    enum { NT = 4 };
    sj_value x = input(s, 2, D(12, 12), -1, 1);
    sj_value outs[NT] = {sj_exp(s->g, x), sj_cholesky(s->g, sj_add(s->g, sj_matmul(s->g, x, sj_mT(s->g, x)), sj_scalar(s->g, 0))),
                         sj_sum_all(s->g, sj_tanh(s->g, x)), sj_matmul(s->g, x, x)};
    sj_fn *fn[NT];
    sj_compiled *c[NT];
    job jobs[NT];
    pthread_t t[NT];
    const int64_t *dims[1] = {s->dim[0]};
    for (int i = 0; i < NT; i++) {
        assert_ok(sj_fn_create(s->g, 1, &outs[i], &fn[i]), s->ctx);
        assert_ok(sj_fn_specialize(fn[i], 1, s->rank, dims, &c[i]), s->ctx);
        jobs[i] = (job){c[i]->ir, NULL, SJ_OK};
    }
    for (int i = 0; i < NT; i++)
        assert_int_equal(pthread_create(&t[i], NULL, compile_job, &jobs[i]), 0);
    for (int i = 0; i < NT; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NT; i++) {
        assert_int_equal(jobs[i].st, SJ_OK);
        size_t n = ir_shape_numel(ir_shape_of(c[i]->ir, c[i]->ir->output[0]));
        double *got = malloc(n * sizeof *got), *want = malloc(n * sizeof *want);
        void *scratch = aligned_alloc(64, (cg_kernel_scratch_bytes(jobs[i].k) + 63) & ~(size_t)63);
        ir_err err = {0};
        sj_status cs = cg_kernel_run(jobs[i].k, (const double *const *)s->data, &got, scratch, &err);
        sj_status es = ir_eval(c[i]->ir, (const double *const *)s->data, &want, &err);
        assert_int_equal(cs, es);
        if (cs == SJ_OK)
            assert_close(got, want, n, 1e-12, 1e-12);
        free(got);
        free(want);
        free(scratch);
        cg_kernel_free(jobs[i].k);
        sj_compiled_free(c[i]);
        sj_fn_free(fn[i]);
    }
    reset(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_select_and_nan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broadcast_reshape_transpose, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slice_concat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gather_segment_one_hot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reductions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul, setup, teardown),
        cmocka_unit_test_setup_teardown(test_structure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cholesky_logdet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eigh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_triangular_solve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cholesky_solve_and_solve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inverse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fusion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linalg_sharing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scratch_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_compile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
