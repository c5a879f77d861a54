/* Misuse of every public entry point: NULL handles and pointers, ids of
 * another graph, SJ_INVALID, out-of-range and garbage ids, bad ranks, axes,
 * permutations, flags, comparisons and dimension strings, unknown names.
 * Each must return an error status (never abort or crash) and leave a message
 * in the context that names the function and the cause.  Also: sticky builder
 * errors, and errors reported to the context that owns the handle. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

typedef struct fixture {
    sj_ctx *ctx;
    sj_graph *g;
    sj_value x;  /* input "x": [3] */
    sj_value m;  /* input "m": [3, 3] */
} fixture;

static int setup(void **state)
{
    fixture *f = test_calloc(1, sizeof *f);
    if (sj_ctx_create(&f->ctx) != SJ_OK || sj_graph_create(f->ctx, &f->g) != SJ_OK)
        return -1;
    const char *d3[] = {"3"}, *d33[] = {"3", "3"};
    f->x = sj_input(f->g, "x", 1, d3);
    f->m = sj_input(f->g, "m", 2, d33);
    *state = f;
    return sj_graph_status(f->g) == SJ_OK ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sj_graph_free(f->g);
    sj_ctx_free(f->ctx);
    test_free(f);
    return 0;
}

/* The call returned SJ_INVALID, the graph holds `want`, and the context's
 * message contains both fragments. */
static void expect_builder_error(fixture *f, sj_value v, sj_status want, const char *fn,
                                 const char *what)
{
    const char *msg = sj_ctx_last_error(f->ctx);
    if (v != SJ_INVALID || sj_graph_status(f->g) != want || !strstr(msg, fn) ||
        (what && !strstr(msg, what))) {
        print_error("got id %lld, graph %s \"%s\"; want SJ_INVALID, %s with \"%s\" and \"%s\"\n",
                    (long long)v, sj_status_name(sj_graph_status(f->g)), msg, sj_status_name(want),
                    fn, what ? what : "");
        fail();
    }
}

/* Runs one builder call on a fresh graph of the fixture (inputs x and m made
 * anew; `call` is evaluated after that) and checks its error. */
#define BUILDER_ERROR(f, call, want, fn, what)                                             \
    do {                                                                                   \
        sj_graph_free((f)->g);                                                             \
        assert_int_equal(sj_graph_create((f)->ctx, &(f)->g), SJ_OK);                       \
        const char *d3_[] = {"3"}, *d33_[] = {"3", "3"};                                   \
        (f)->x = sj_input((f)->g, "x", 1, d3_);                                            \
        (f)->m = sj_input((f)->g, "m", 2, d33_);                                           \
        sj_value v_ = (call);                                                              \
        expect_builder_error((f), v_, (want), (fn), (what));                               \
    } while (0)

static sj_value concat2(fixture *f, sj_value a, sj_value b, int axis)
{
    sj_value xs[] = {a, b};
    return sj_concat(f->g, 2, xs, axis);
}

/* ---- context ---------------------------------------------------------------- */

static void test_ctx(void **state)
{
    (void)state;
    assert_int_equal(sj_ctx_create(NULL), SJ_ERR_INVALID_ARGUMENT);
    sj_ctx_free(NULL);
    assert_non_null(sj_ctx_last_error(NULL));
    assert_non_null(strstr(sj_ctx_last_error(NULL), "invalid"));
    sj_ctx *ctx = NULL;
    assert_int_equal(sj_ctx_create(&ctx), SJ_OK);
    assert_string_equal(sj_ctx_last_error(ctx), "");
    sj_ctx_free(ctx);
    /* Every status has a name; an unknown one does not crash. */
    for (int s = SJ_OK; s <= SJ_ERR_INTERNAL; s++)
        assert_true(strncmp(sj_status_name((sj_status)s), "SJ_", 3) == 0);
    assert_string_equal(sj_status_name(SJ_ERR_UNKNOWN_NAME), "SJ_ERR_UNKNOWN_NAME");
    assert_non_null(sj_status_name((sj_status)1234));
    assert_non_null(sj_status_name((sj_status)-5));
    sj_string_free(NULL);
}

/* A handle whose magic is wrong (garbage, or of another kind) is rejected. */
static void test_wrong_kind_of_handle(void **state)
{
    fixture *f = *state;
    /* A graph passed where a function or a compiled function is expected. */
    sj_fn *not_fn = (sj_fn *)(void *)f->g;
    sj_compiled *not_c = (sj_compiled *)(void *)f->g;
    int i = 0, r = 0;
    assert_int_equal(sj_fn_ninput(not_fn), -1);
    assert_int_equal(sj_fn_noutput(not_fn), -1);
    assert_int_equal(sj_fn_input_index(not_fn, "x", &i), SJ_ERR_INVALID_ARGUMENT);
    assert_int_equal(sj_fn_input_rank(not_fn, 0, &r), SJ_ERR_INVALID_ARGUMENT);
    assert_int_equal(sj_compiled_noutput(not_c), -1);
    assert_int_equal(sj_compiled_output_shape(not_c, 0, &r, NULL), SJ_ERR_INVALID_ARGUMENT);
    assert_null(sj_compiled_print(not_c));
    /* A context passed where a graph is expected. */
    sj_graph *not_g = (sj_graph *)(void *)f->ctx;
    assert_int_equal(sj_graph_status(not_g), SJ_ERR_INVALID_ARGUMENT);
    assert_int_equal(sj_exp(not_g, f->x), SJ_INVALID);
    sj_graph_free(not_g); /* ignored */
    assert_string_equal(sj_ctx_last_error(f->ctx), "");
}

/* ---- graph handle ----------------------------------------------------------- */

static void test_graph_null(void **state)
{
    fixture *f = *state;
    sj_graph *g = NULL;
    assert_int_equal(sj_graph_create(NULL, &g), SJ_ERR_INVALID_ARGUMENT);
    assert_null(g);
    assert_error(sj_graph_create(f->ctx, NULL), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_graph_create: out is NULL");
    sj_graph_free(NULL);
    assert_int_equal(sj_graph_status(NULL), SJ_ERR_INVALID_ARGUMENT);
    assert_int_equal(sj_graph_size(NULL), 0);
    assert_null(sj_graph_print(NULL));

    /* Every builder returns SJ_INVALID for a NULL graph. */
    const char *d[] = {"3"};
    int64_t shp[] = {1};
    double one = 1;
    int axes[] = {0}, perm[] = {1, 0};
    sj_value xs[] = {f->x, f->x};
    sj_value got[] = {
        sj_input(NULL, "y", 1, d), sj_constant(NULL, 1, shp, &one), sj_scalar(NULL, 1),
        sj_eye(NULL, "n"), sj_neg(NULL, f->x), sj_exp(NULL, f->x), sj_log(NULL, f->x),
        sj_log1p(NULL, f->x), sj_expm1(NULL, f->x), sj_sqrt(NULL, f->x), sj_square(NULL, f->x),
        sj_recip(NULL, f->x), sj_tanh(NULL, f->x), sj_logistic(NULL, f->x),
        sj_lgamma(NULL, f->x), sj_digamma(NULL, f->x), sj_abs(NULL, f->x), sj_sign(NULL, f->x),
        sj_polygamma(NULL, 1, f->x), sj_add(NULL, f->x, f->x), sj_sub(NULL, f->x, f->x),
        sj_mul(NULL, f->x, f->x), sj_div(NULL, f->x, f->x), sj_pow(NULL, f->x, f->x),
        sj_min(NULL, f->x, f->x), sj_max(NULL, f->x, f->x), sj_compare(NULL, SJ_LT, f->x, f->x),
        sj_select(NULL, f->x, f->x, f->x), sj_broadcast_to(NULL, f->x, 1, d),
        sj_reshape(NULL, f->x, 1, d), sj_transpose(NULL, f->m, perm), sj_mT(NULL, f->m),
        sj_slice(NULL, f->x, 0, 0, 1), sj_concat(NULL, 2, xs, 0), sj_gather(NULL, f->x, f->x),
        sj_segment_sum(NULL, f->x, f->x, "3"), sj_one_hot(NULL, f->x, "3"),
        sj_sum(NULL, f->x, 1, axes), sj_reduce_max(NULL, f->x, 1, axes),
        sj_mean(NULL, f->x, 1, axes), sj_sum_all(NULL, f->x), sj_matmul(NULL, f->m, f->m),
        sj_outer(NULL, f->x, f->x), sj_kron(NULL, f->m, f->m), sj_diag(NULL, f->m),
        sj_diag_embed(NULL, f->x), sj_tril(NULL, f->m, 0), sj_triu(NULL, f->m, 0),
        sj_cholesky(NULL, f->m), sj_triangular_solve(NULL, f->m, f->m, 0),
        sj_cholesky_solve(NULL, f->m, f->m), sj_logdet(NULL, f->m), sj_solve(NULL, f->m, f->m),
    };
    for (size_t i = 0; i < sizeof got / sizeof *got; i++)
        assert_int_equal(got[i], SJ_INVALID);
    /* The good graph is untouched. */
    assert_int_equal(sj_graph_status(f->g), SJ_OK);
    assert_int_equal(sj_graph_size(f->g), 2);
}

/* ---- value ids ---------------------------------------------------------------- */

static void test_bad_ids(void **state)
{
    fixture *f = *state;
    sj_graph *other = NULL;
    assert_ok(sj_graph_create(f->ctx, &other), f->ctx);
    const char *d3[] = {"3"};
    sj_value foreign = sj_input(other, "x", 1, d3);
    assert_int_not_equal(foreign, SJ_INVALID);

    /* An id of another graph: same index, different graph. */
    BUILDER_ERROR(f, sj_exp(f->g, foreign), SJ_ERR_INVALID_ARGUMENT, "sj_exp",
                  "is not a value of this graph");
    BUILDER_ERROR(f, sj_add(f->g, f->x, foreign), SJ_ERR_INVALID_ARGUMENT, "sj_add",
                  "b (id");
    BUILDER_ERROR(f, sj_matmul(f->g, foreign, f->m), SJ_ERR_INVALID_ARGUMENT, "sj_matmul",
                  "a (id");
    BUILDER_ERROR(f, sj_select(f->g, f->x, f->x, foreign), SJ_ERR_INVALID_ARGUMENT,
                  "sj_select", "is not a value of this graph");
    /* SJ_INVALID on a healthy graph. */
    BUILDER_ERROR(f, sj_log(f->g, SJ_INVALID), SJ_ERR_INVALID_ARGUMENT, "sj_log",
                  "x is SJ_INVALID");
    BUILDER_ERROR(f, sj_solve(f->g, f->m, SJ_INVALID), SJ_ERR_INVALID_ARGUMENT, "sj_solve",
                  "b is SJ_INVALID");
    /* An index past the end, with this graph's own high half. */
    BUILDER_ERROR(f, sj_sqrt(f->g, f->m + 100), SJ_ERR_INVALID_ARGUMENT, "sj_sqrt",
                  "out of range (graph has 2 values)");
    BUILDER_ERROR(f, sj_neg(f->g, f->x | 0xffffffffLL), SJ_ERR_INVALID_ARGUMENT, "sj_neg",
                  "out of range");
    /* Negative and garbage ids. */
    BUILDER_ERROR(f, sj_tanh(f->g, -2), SJ_ERR_INVALID_ARGUMENT, "sj_tanh",
                  "is not a value of this graph");
    BUILDER_ERROR(f, sj_abs(f->g, INT64_MIN), SJ_ERR_INVALID_ARGUMENT, "sj_abs",
                  "is not a value of this graph");
    BUILDER_ERROR(f, sj_sign(f->g, 0), SJ_ERR_INVALID_ARGUMENT, "sj_sign",
                  "is not a value of this graph");
    BUILDER_ERROR(f, sj_square(f->g, 0x123456789abcdefLL), SJ_ERR_INVALID_ARGUMENT, "sj_square",
                  "is not a value of this graph");
    BUILDER_ERROR(f, sj_gather(f->g, f->m, -7), SJ_ERR_INVALID_ARGUMENT, "sj_gather", "idx");
    BUILDER_ERROR(f, concat2(f, f->x, foreign, 0), SJ_ERR_INVALID_ARGUMENT, "sj_concat",
                  "is not a value of this graph");
    BUILDER_ERROR(f, sj_segment_sum(f->g, f->x, 12345, "3"), SJ_ERR_INVALID_ARGUMENT,
                  "sj_segment_sum", "idx");
    BUILDER_ERROR(f, sj_one_hot(f->g, -1000, "3"), SJ_ERR_INVALID_ARGUMENT, "sj_one_hot",
                  "idx");
    BUILDER_ERROR(f, sj_outer(f->g, f->x, 99), SJ_ERR_INVALID_ARGUMENT, "sj_outer", "b");
    BUILDER_ERROR(f, sj_kron(f->g, foreign, f->m), SJ_ERR_INVALID_ARGUMENT, "sj_kron", "a");
    BUILDER_ERROR(f, sj_triangular_solve(f->g, foreign, f->m, 0), SJ_ERR_INVALID_ARGUMENT,
                  "sj_triangular_solve", "a");
    BUILDER_ERROR(f, sj_cholesky_solve(f->g, f->m, foreign), SJ_ERR_INVALID_ARGUMENT,
                  "sj_cholesky_solve", "b");
    BUILDER_ERROR(f, sj_polygamma(f->g, 2, foreign), SJ_ERR_INVALID_ARGUMENT, "sj_polygamma",
                  "x");
    BUILDER_ERROR(f, sj_compare(f->g, SJ_EQ, foreign, f->x), SJ_ERR_INVALID_ARGUMENT,
                  "sj_compare", "a");
    BUILDER_ERROR(f, sj_sum_all(f->g, foreign), SJ_ERR_INVALID_ARGUMENT, "sj_sum_all", "x");
    BUILDER_ERROR(f, sj_mT(f->g, foreign), SJ_ERR_INVALID_ARGUMENT, "sj_mT", "x");
    BUILDER_ERROR(f, sj_slice(f->g, foreign, 0, 0, 1), SJ_ERR_INVALID_ARGUMENT, "sj_slice", "x");
    int perm[] = {0};
    BUILDER_ERROR(f, sj_transpose(f->g, foreign, perm), SJ_ERR_INVALID_ARGUMENT, "sj_transpose",
                  "x");
    BUILDER_ERROR(f, sj_reshape(f->g, foreign, 1, d3), SJ_ERR_INVALID_ARGUMENT, "sj_reshape",
                  "x");
    BUILDER_ERROR(f, sj_broadcast_to(f->g, foreign, 1, d3), SJ_ERR_INVALID_ARGUMENT,
                  "sj_broadcast_to", "x");

    /* The other graph is unaffected. */
    assert_int_equal(sj_graph_status(other), SJ_OK);
    sj_graph_free(other);
}

/* ---- sources --------------------------------------------------------------------- */

static void test_input_args(void **state)
{
    fixture *f = *state;
    const char *d2[] = {"n", "p"};
    BUILDER_ERROR(f, sj_input(f->g, NULL, 2, d2), SJ_ERR_INVALID_ARGUMENT, "sj_input",
                  "name is NULL");
    BUILDER_ERROR(f, sj_input(f->g, "", 2, d2), SJ_ERR_INVALID_ARGUMENT, "sj_input", "empty");
    BUILDER_ERROR(f, sj_input(f->g, "y", -1, d2), SJ_ERR_INVALID_ARGUMENT, "sj_input",
                  "rank -1");
    BUILDER_ERROR(f, sj_input(f->g, "y", 9, d2), SJ_ERR_INVALID_ARGUMENT, "sj_input", "rank 9");
    BUILDER_ERROR(f, sj_input(f->g, "y", 2, NULL), SJ_ERR_INVALID_ARGUMENT, "sj_input",
                  "dims is NULL");
    BUILDER_ERROR(f, sj_input(f->g, "x", 1, d2), SJ_ERR_INVALID_ARGUMENT, "sj_input",
                  "an input called \"x\" exists already");

    static const char *const bad[] = {"-3", "1x", "", "n m", " 3", "3 ", "+3", "n-1", "a.b",
                                      "99999999999999999999", "281474976710657"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *d[] = {"n", bad[i]};
        char frag[64];
        snprintf(frag, sizeof frag, "dimension \"%s\"", bad[i]);
        BUILDER_ERROR(f, sj_input(f->g, "y", 2, d), SJ_ERR_INVALID_ARGUMENT, "sj_input", frag);
    }
    /* Valid forms: names, sizes (leading zeros read as decimal), "?", NULL. */
    sj_graph_free(f->g);
    assert_ok(sj_graph_create(f->ctx, &f->g), f->ctx);
    const char *ok[] = {"n", "_k2", "007", "?", NULL, "281474976710656", "0", "N_1"};
    assert_int_not_equal(sj_input(f->g, "y", 8, ok), SJ_INVALID);
    assert_int_not_equal(sj_input(f->g, "s", 0, NULL), SJ_INVALID);
    assert_int_equal(sj_graph_status(f->g), SJ_OK);
}

static void test_constant_eye_args(void **state)
{
    fixture *f = *state;
    int64_t shp[] = {2, 2}, neg[] = {2, -1}, huge[] = {(int64_t)1 << 49};
    int64_t big[] = {(int64_t)1 << 40, (int64_t)1 << 40};
    double data[4] = {1, 2, 3, 4};
    BUILDER_ERROR(f, sj_constant(f->g, -1, shp, data), SJ_ERR_INVALID_ARGUMENT, "sj_constant",
                  "rank -1");
    BUILDER_ERROR(f, sj_constant(f->g, 9, shp, data), SJ_ERR_INVALID_ARGUMENT, "sj_constant",
                  "rank 9");
    BUILDER_ERROR(f, sj_constant(f->g, 2, NULL, data), SJ_ERR_INVALID_ARGUMENT, "sj_constant",
                  "dims is NULL");
    BUILDER_ERROR(f, sj_constant(f->g, 2, shp, NULL), SJ_ERR_INVALID_ARGUMENT, "sj_constant",
                  "data is NULL");
    BUILDER_ERROR(f, sj_constant(f->g, 2, neg, data), SJ_ERR_INVALID_ARGUMENT, "sj_constant",
                  "axis 1 has invalid size -1");
    BUILDER_ERROR(f, sj_constant(f->g, 1, huge, data), SJ_ERR_INVALID_ARGUMENT, "sj_constant",
                  "invalid size");
    BUILDER_ERROR(f, sj_constant(f->g, 2, big, data), SJ_ERR_INVALID_ARGUMENT, "sj_constant",
                  "too many elements");
    BUILDER_ERROR(f, sj_eye(f->g, NULL), SJ_ERR_INVALID_ARGUMENT, "sj_eye", "dim is NULL");
    BUILDER_ERROR(f, sj_eye(f->g, "-3"), SJ_ERR_INVALID_ARGUMENT, "sj_eye", "\"-3\"");
    BUILDER_ERROR(f, sj_eye(f->g, "n m"), SJ_ERR_INVALID_ARGUMENT, "sj_eye", "\"n m\"");
    /* Empty constants need no data. */
    int64_t zero[] = {0};
    sj_graph_free(f->g);
    assert_ok(sj_graph_create(f->ctx, &f->g), f->ctx);
    assert_int_not_equal(sj_constant(f->g, 1, zero, NULL), SJ_INVALID);
    assert_int_not_equal(sj_constant(f->g, 0, NULL, data), SJ_INVALID);
    assert_int_equal(sj_graph_status(f->g), SJ_OK);
}

/* ---- op arguments --------------------------------------------------------------- */

static void test_op_args(void **state)
{
    fixture *f = *state;
    BUILDER_ERROR(f, sj_polygamma(f->g, -1, f->x), SJ_ERR_INVALID_ARGUMENT, "sj_polygamma",
                  "order -1");
    BUILDER_ERROR(f, sj_polygamma(f->g, 65, f->x), SJ_ERR_INVALID_ARGUMENT, "sj_polygamma",
                  "order 65");
    BUILDER_ERROR(f, sj_compare(f->g, (sj_cmp)6, f->x, f->x), SJ_ERR_INVALID_ARGUMENT,
                  "sj_compare", "unknown comparison 6");
    BUILDER_ERROR(f, sj_compare(f->g, (sj_cmp)-1, f->x, f->x), SJ_ERR_INVALID_ARGUMENT,
                  "sj_compare", "unknown comparison -1");
    BUILDER_ERROR(f, sj_triangular_solve(f->g, f->m, f->m, 8), SJ_ERR_INVALID_ARGUMENT,
                  "sj_triangular_solve", "unknown flags 0x8");
    BUILDER_ERROR(f, sj_triangular_solve(f->g, f->m, f->m, 0x80000000u), SJ_ERR_INVALID_ARGUMENT,
                  "sj_triangular_solve", "unknown flags");

    /* Transpose: NULL, repeated, negative and too large axes. */
    int dup[] = {0, 0}, negp[] = {-1, 0}, big[] = {0, 2};
    BUILDER_ERROR(f, sj_transpose(f->g, f->m, NULL), SJ_ERR_INVALID_ARGUMENT, "sj_transpose",
                  "perm is NULL");
    BUILDER_ERROR(f, sj_transpose(f->g, f->m, dup), SJ_ERR_SHAPE, "sj_transpose",
                  "perm (0,0) is not a permutation");
    BUILDER_ERROR(f, sj_transpose(f->g, f->m, negp), SJ_ERR_SHAPE, "sj_transpose",
                  "perm (-1,0)");
    BUILDER_ERROR(f, sj_transpose(f->g, f->m, big), SJ_ERR_SHAPE, "sj_transpose", "perm (0,2)");
    BUILDER_ERROR(f, sj_mT(f->g, f->x), SJ_ERR_SHAPE, "sj_mT", "rank >= 2, got [3]");

    /* Axes: slice, concat and reductions. */
    BUILDER_ERROR(f, sj_slice(f->g, f->x, 1, 0, 1), SJ_ERR_INVALID_ARGUMENT, "sj_slice",
                  "axis 1 is out of range for rank 1");
    BUILDER_ERROR(f, sj_slice(f->g, f->x, -2, 0, 1), SJ_ERR_INVALID_ARGUMENT, "sj_slice",
                  "axis -2");
    sj_value xs[] = {SJ_INVALID, SJ_INVALID}; /* not read: the count is checked first */
    BUILDER_ERROR(f, concat2(f, f->x, f->x, 1), SJ_ERR_INVALID_ARGUMENT, "sj_concat", "axis 1");
    BUILDER_ERROR(f, sj_concat(f->g, 0, xs, 0), SJ_ERR_INVALID_ARGUMENT, "sj_concat", "got 0");
    BUILDER_ERROR(f, sj_concat(f->g, -3, xs, 0), SJ_ERR_INVALID_ARGUMENT, "sj_concat", "got -3");
    BUILDER_ERROR(f, sj_concat(f->g, 5000, xs, 0), SJ_ERR_INVALID_ARGUMENT, "sj_concat",
                  "got 5000");
    BUILDER_ERROR(f, sj_concat(f->g, 2, NULL, 0), SJ_ERR_INVALID_ARGUMENT, "sj_concat",
                  "xs is NULL");
    int ax2[] = {2}, axdup[] = {0, -2}, axneg[] = {-3};
    BUILDER_ERROR(f, sj_sum(f->g, f->m, 1, ax2), SJ_ERR_INVALID_ARGUMENT, "sj_sum",
                  "axis 2 is out of range for rank 2");
    BUILDER_ERROR(f, sj_mean(f->g, f->m, 2, axdup), SJ_ERR_INVALID_ARGUMENT, "sj_mean",
                  "given twice");
    BUILDER_ERROR(f, sj_reduce_max(f->g, f->m, 1, axneg), SJ_ERR_INVALID_ARGUMENT,
                  "sj_reduce_max", "axis -3");
    BUILDER_ERROR(f, sj_sum(f->g, f->m, 1, NULL), SJ_ERR_INVALID_ARGUMENT, "sj_sum",
                  "axes is NULL");
    BUILDER_ERROR(f, sj_sum(f->g, f->m, 3, ax2), SJ_ERR_INVALID_ARGUMENT, "sj_sum",
                  "3 axes given for rank 2");
    BUILDER_ERROR(f, sj_sum(f->g, f->m, -1, ax2), SJ_ERR_INVALID_ARGUMENT, "sj_sum",
                  "-1 axes");

    /* Shapes given as strings. */
    const char *bad[] = {"3", "1x"};
    BUILDER_ERROR(f, sj_reshape(f->g, f->x, 2, bad), SJ_ERR_INVALID_ARGUMENT, "sj_reshape",
                  "dimension \"1x\"");
    BUILDER_ERROR(f, sj_reshape(f->g, f->x, 1, NULL), SJ_ERR_INVALID_ARGUMENT, "sj_reshape",
                  "dims is NULL");
    BUILDER_ERROR(f, sj_reshape(f->g, f->x, 9, bad), SJ_ERR_INVALID_ARGUMENT, "sj_reshape",
                  "rank 9");
    BUILDER_ERROR(f, sj_broadcast_to(f->g, f->x, -1, bad), SJ_ERR_INVALID_ARGUMENT,
                  "sj_broadcast_to", "rank -1");
    BUILDER_ERROR(f, sj_broadcast_to(f->g, f->x, 2, bad), SJ_ERR_INVALID_ARGUMENT,
                  "sj_broadcast_to", "dimension \"1x\"");
    BUILDER_ERROR(f, sj_segment_sum(f->g, f->x, f->x, NULL), SJ_ERR_INVALID_ARGUMENT,
                  "sj_segment_sum", "size is NULL");
    BUILDER_ERROR(f, sj_segment_sum(f->g, f->x, f->x, ""), SJ_ERR_INVALID_ARGUMENT,
                  "sj_segment_sum", "dimension \"\"");
    BUILDER_ERROR(f, sj_one_hot(f->g, f->x, NULL), SJ_ERR_INVALID_ARGUMENT, "sj_one_hot",
                  "size is NULL");
    BUILDER_ERROR(f, sj_one_hot(f->g, f->x, "n m"), SJ_ERR_INVALID_ARGUMENT, "sj_one_hot",
                  "dimension \"n m\"");
}

/* ---- sticky errors ------------------------------------------------------------------ */

static void test_sticky(void **state)
{
    fixture *f = *state;
    int ax5[] = {5};
    sj_value bad = sj_sum(f->g, f->m, 1, ax5); /* first error */
    assert_int_equal(bad, SJ_INVALID);
    assert_int_equal(sj_graph_status(f->g), SJ_ERR_INVALID_ARGUMENT);
    char first[512];
    snprintf(first, sizeof first, "%s", sj_ctx_last_error(f->ctx));
    assert_non_null(strstr(first, "sj_sum: axis 5 is out of range"));
    size_t size = sj_graph_size(f->g);

    /* Later calls, good or bad, return SJ_INVALID and change nothing. */
    const char *d[] = {"3"};
    assert_int_equal(sj_exp(f->g, f->x), SJ_INVALID);
    assert_int_equal(sj_exp(f->g, bad), SJ_INVALID);
    assert_int_equal(sj_matmul(f->g, f->x, f->m), SJ_INVALID);
    assert_int_equal(sj_input(f->g, "z", 1, d), SJ_INVALID);
    assert_int_equal(sj_scalar(f->g, 1.0), SJ_INVALID);
    assert_int_equal(sj_transpose(f->g, f->m, NULL), SJ_INVALID); /* would be a new error */
    assert_int_equal(sj_compare(f->g, (sj_cmp)99, f->x, f->x), SJ_INVALID);
    assert_int_equal(sj_polygamma(f->g, -4, f->x), SJ_INVALID);
    assert_int_equal(sj_graph_size(f->g), size);
    assert_int_equal(sj_graph_status(f->g), SJ_ERR_INVALID_ARGUMENT);
    assert_string_equal(sj_ctx_last_error(f->ctx), first);

    /* Quiet: a later error elsewhere in the context is not overwritten by
     * calls that merely pass SJ_INVALID through. */
    sj_fn *fn = NULL;
    assert_int_equal(sj_fn_create(f->g, 1, &bad, &fn), SJ_ERR_INVALID_ARGUMENT);
    assert_null(fn);
    const char *msg = sj_ctx_last_error(f->ctx);
    assert_non_null(strstr(msg, "sj_fn_create"));
    assert_non_null(strstr(msg, "sj_sum: axis 5 is out of range"));
    assert_int_equal(sj_graph_create(f->ctx, NULL), SJ_ERR_INVALID_ARGUMENT);
    assert_int_equal(sj_add(f->g, f->x, f->x), SJ_INVALID);
    assert_string_equal(sj_ctx_last_error(f->ctx), "sj_graph_create: out is NULL");

    /* The printer still works on a failed graph. */
    char *text = sj_graph_print(f->g);
    assert_non_null(text);
    sj_string_free(text);
}

/* A shape error is sticky too, and sj_fn_create reports it. */
static void test_sticky_shape(void **state)
{
    fixture *f = *state;
    sj_value a = sj_matmul(f->g, f->m, f->m);
    assert_int_not_equal(a, SJ_INVALID);
    const char *d[] = {"4"};
    sj_value y = sj_input(f->g, "y", 1, d);
    sj_value bad = sj_add(f->g, f->x, y);
    assert_int_equal(bad, SJ_INVALID);
    assert_error(sj_graph_status(f->g), SJ_ERR_SHAPE, f->ctx, "sj_add: add (value %");
    sj_value later = sj_cholesky(f->g, f->x); /* would fail on its own too */
    assert_int_equal(later, SJ_INVALID);
    assert_int_equal(sj_graph_status(f->g), SJ_ERR_SHAPE);
    sj_fn *fn = NULL;
    assert_error(sj_fn_create(f->g, 1, &a, &fn), SJ_ERR_SHAPE, f->ctx,
                 "sj_fn_create: the graph has an error: sj_add: add (value %");
    assert_non_null(strstr(sj_ctx_last_error(f->ctx), "[3] and [4]"));
    assert_null(fn);
}

/* ---- functions ---------------------------------------------------------------------- */

static void test_fn_create_args(void **state)
{
    fixture *f = *state;
    sj_value y = sj_exp(f->g, f->x);
    sj_fn *fn = (sj_fn *)0x1;
    assert_int_equal(sj_fn_create(NULL, 1, &y, &fn), SJ_ERR_INVALID_ARGUMENT);
    assert_error(sj_fn_create(f->g, 1, &y, NULL), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_fn_create: out is NULL");
    assert_error(sj_fn_create(f->g, 0, &y, &fn), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_fn_create: needs at least one output");
    assert_null(fn);
    assert_error(sj_fn_create(f->g, -1, &y, &fn), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "noutput = -1");
    assert_error(sj_fn_create(f->g, 1, NULL, &fn), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "outputs is NULL");
    sj_value bad[] = {y, SJ_INVALID};
    assert_error(sj_fn_create(f->g, 2, bad, &fn), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_fn_create: output 1 (id -1) is not a value of this graph");
    bad[1] = y + 1000;
    assert_error(sj_fn_create(f->g, 2, bad, &fn), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "output 1");
    bad[1] = 3; /* garbage: no graph's high half */
    assert_error(sj_fn_create(f->g, 2, bad, &fn), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "output 1 (id 3)");
    sj_graph *other = NULL;
    assert_ok(sj_graph_create(f->ctx, &other), f->ctx);
    const char *d[] = {"3"};
    bad[1] = sj_input(other, "x", 1, d);
    assert_error(sj_fn_create(f->g, 2, bad, &fn), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "is not a value of this graph");
    assert_null(fn);
    sj_graph_free(other);
    /* The graph is not poisoned by a failed sj_fn_create. */
    assert_int_equal(sj_graph_status(f->g), SJ_OK);
    assert_ok(sj_fn_create(f->g, 1, &y, &fn), f->ctx);
    sj_fn_free(fn);
    sj_fn_free(NULL);
}

static void test_fn_queries(void **state)
{
    fixture *f = *state;
    sj_value y = sj_exp(f->g, f->x);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(f->g, 1, &y, &fn), f->ctx);
    assert_int_equal(sj_fn_ninput(NULL), -1);
    assert_int_equal(sj_fn_noutput(NULL), -1);
    assert_int_equal(sj_fn_ninput(fn), 2);
    assert_int_equal(sj_fn_noutput(fn), 1);

    int i = -5;
    assert_int_equal(sj_fn_input_index(NULL, "x", &i), SJ_ERR_INVALID_ARGUMENT);
    assert_error(sj_fn_input_index(fn, NULL, &i), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_fn_input_index: name is NULL");
    assert_error(sj_fn_input_index(fn, "x", NULL), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_fn_input_index: index is NULL");
    assert_error(sj_fn_input_index(fn, "X", &i), SJ_ERR_UNKNOWN_NAME, f->ctx,
                 "sj_fn_input_index: no input is called \"X\"");
    assert_error(sj_fn_input_index(fn, "", &i), SJ_ERR_UNKNOWN_NAME, f->ctx, "\"\"");
    assert_int_equal(i, -5); /* untouched on failure */
    assert_ok(sj_fn_input_index(fn, "m", &i), f->ctx);
    assert_int_equal(i, 1);

    int r = -5;
    assert_int_equal(sj_fn_input_rank(NULL, 0, &r), SJ_ERR_INVALID_ARGUMENT);
    assert_error(sj_fn_input_rank(fn, 0, NULL), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_fn_input_rank: rank is NULL");
    assert_error(sj_fn_input_rank(fn, 2, &r), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_fn_input_rank: input index out of range");
    assert_error(sj_fn_input_rank(fn, -1, &r), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "out of range");
    assert_error(sj_fn_input_rank(fn, 1 << 30, &r), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "out of range");
    assert_int_equal(r, -5);
    assert_ok(sj_fn_input_rank(fn, 1, &r), f->ctx);
    assert_int_equal(r, 2);

    /* The function is a snapshot: changing or freeing the graph keeps it. */
    sj_graph_free(f->g);
    f->g = NULL;
    assert_int_equal(sj_fn_ninput(fn), 2);
    assert_int_equal(sj_graph_create(f->ctx, &f->g), SJ_OK);
    sj_fn_free(fn);
}

static void test_specialize_args(void **state)
{
    fixture *f = *state;
    sj_value y = sj_matmul(f->g, f->m, f->x);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(f->g, 1, &y, &fn), f->ctx);
    int ranks[] = {1, 2};
    int64_t dx[] = {3}, dm[] = {3, 3};
    const int64_t *dims[] = {dx, dm};
    sj_compiled *c = (sj_compiled *)0x1;

    assert_int_equal(sj_fn_specialize(NULL, 2, ranks, dims, &c), SJ_ERR_INVALID_ARGUMENT);
    assert_error(sj_fn_specialize(fn, 2, ranks, dims, NULL), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_fn_specialize: out is NULL");
    assert_error(sj_fn_specialize(fn, 1, ranks, dims, &c), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_fn_specialize: the function has 2 inputs, given 1");
    assert_null(c);
    assert_error(sj_fn_specialize(fn, 3, ranks, dims, &c), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "given 3");
    assert_error(sj_fn_specialize(fn, -1, ranks, dims, &c), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "given -1");
    assert_error(sj_fn_specialize(fn, 2, NULL, dims, &c), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_fn_specialize: ranks is NULL");
    assert_error(sj_fn_specialize(fn, 2, ranks, NULL, &c), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_fn_specialize: dims is NULL");
    const int64_t *nodims[] = {dx, NULL};
    assert_error(sj_fn_specialize(fn, 2, ranks, nodims, &c), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "input \"m\": rank 2 with NULL dims");
    int badrank[] = {1, -1};
    assert_error(sj_fn_specialize(fn, 2, badrank, dims, &c), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "input \"m\": rank -1 is out of range");
    badrank[1] = 9;
    assert_error(sj_fn_specialize(fn, 2, badrank, dims, &c), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "rank 9 is out of range");
    /* Wrong rank for the declaration. */
    int wrong[] = {2, 2};
    int64_t dx2[] = {3, 1};
    const int64_t *dims2[] = {dx2, dm};
    assert_error(sj_fn_specialize(fn, 2, wrong, dims2, &c), SJ_ERR_SHAPE, f->ctx,
                 "sj_fn_specialize: input \"x\" is declared [3] (rank 1) but given rank 2");
    /* Negative and huge sizes. */
    int64_t dneg[] = {3, -3};
    const int64_t *dims3[] = {dx, dneg};
    assert_error(sj_fn_specialize(fn, 2, ranks, dims3, &c), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "input \"m\": axis 1 has invalid size -3");
    int64_t dhuge[] = {3, INT64_MAX};
    dims3[1] = dhuge;
    assert_error(sj_fn_specialize(fn, 2, ranks, dims3, &c), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "invalid size");
    assert_null(c);

    assert_ok(sj_fn_specialize(fn, 2, ranks, dims, &c), f->ctx);
    sj_fn_free(fn); /* the compiled function holds no reference to fn */

    /* Compiled-function queries. */
    int r = -5;
    int64_t out[SJ_MAX_RANK];
    size_t n = 77;
    assert_int_equal(sj_compiled_noutput(NULL), -1);
    assert_int_equal(sj_compiled_noutput(c), 1);
    assert_int_equal(sj_compiled_output_shape(NULL, 0, &r, out), SJ_ERR_INVALID_ARGUMENT);
    assert_error(sj_compiled_output_shape(c, 0, NULL, out), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_compiled_output_shape: rank is NULL");
    assert_error(sj_compiled_output_shape(c, 1, &r, out), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_compiled_output_shape: output 1 is out of range (1 outputs)");
    assert_error(sj_compiled_output_shape(c, -1, &r, out), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "output -1 is out of range");
    assert_int_equal(r, -5);
    assert_ok(sj_compiled_output_shape(c, 0, &r, NULL), f->ctx); /* dims may be NULL */
    assert_int_equal(r, 1);
    assert_int_equal(sj_compiled_output_size(NULL, 0, &n), SJ_ERR_INVALID_ARGUMENT);
    assert_error(sj_compiled_output_size(c, 0, NULL), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_compiled_output_size: size is NULL");
    assert_error(sj_compiled_output_size(c, 7, &n), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_compiled_output_size: output 7 is out of range");
    assert_int_equal(n, 77);
    assert_ok(sj_compiled_output_size(c, 0, &n), f->ctx);
    assert_int_equal(n, 3);
    assert_null(sj_compiled_print(NULL));

    /* Evaluation arguments (validated before anything runs). */
    double xin[3] = {0}, min[9] = {0}, yout[3] = {0};
    const double *ins[] = {xin, min}, *noin[] = {xin, NULL};
    double *outs[] = {yout}, *noout[] = {NULL};
    assert_int_equal(sj_compiled_eval(NULL, ins, outs), SJ_ERR_INVALID_ARGUMENT);
    assert_error(sj_compiled_eval(c, NULL, outs), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_compiled_eval: inputs is NULL");
    assert_error(sj_compiled_eval(c, ins, NULL), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_compiled_eval: outputs is NULL");
    assert_error(sj_compiled_eval(c, noin, outs), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_compiled_eval: input \"m\" is NULL");
    assert_error(sj_compiled_eval(c, ins, noout), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_compiled_eval: output 0 is NULL");
    sj_compiled_free(c);
    sj_compiled_free(NULL);
}

/* ---- several contexts ------------------------------------------------------------------ */

/* Errors go to the context that owns the handle, never to another. */
static void test_two_contexts(void **state)
{
    (void)state;
    sj_ctx *a = NULL, *b = NULL;
    assert_ok(sj_ctx_create(&a), NULL);
    assert_ok(sj_ctx_create(&b), NULL);
    sj_graph *ga = NULL, *gb = NULL;
    assert_ok(sj_graph_create(a, &ga), a);
    assert_ok(sj_graph_create(b, &gb), b);
    const char *d[] = {"n"};
    sj_value xa = sj_input(ga, "x", 1, d);
    sj_value xb = sj_input(gb, "x", 1, d);

    /* A value of ctx B's graph given to ctx A's graph: A's error. */
    assert_int_equal(sj_exp(ga, xb), SJ_INVALID);
    assert_non_null(strstr(sj_ctx_last_error(a), "sj_exp: x (id"));
    assert_string_equal(sj_ctx_last_error(b), "");
    assert_int_equal(sj_graph_status(gb), SJ_OK);

    /* sj_fn_create with A's failed graph: the message goes to A. */
    sj_fn *fn = NULL;
    assert_int_equal(sj_fn_create(ga, 1, &xa, &fn), SJ_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(sj_ctx_last_error(a), "sj_fn_create: the graph has an error"));
    assert_string_equal(sj_ctx_last_error(b), "");
    /* B's output id given to A's graph (a healthy one). */
    sj_graph_free(ga);
    assert_ok(sj_graph_create(a, &ga), a);
    xa = sj_input(ga, "x", 1, d);
    assert_int_equal(sj_fn_create(ga, 1, &xb, &fn), SJ_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(sj_ctx_last_error(a), "is not a value of this graph"));
    assert_string_equal(sj_ctx_last_error(b), "");

    /* A function made from A's graph reports to A. */
    sj_value ya = sj_exp(ga, xa);
    assert_ok(sj_fn_create(ga, 1, &ya, &fn), a);
    int idx;
    assert_int_equal(sj_fn_input_index(fn, "nope", &idx), SJ_ERR_UNKNOWN_NAME);
    assert_non_null(strstr(sj_ctx_last_error(a), "\"nope\""));
    assert_string_equal(sj_ctx_last_error(b), "");
    int r1[] = {2};
    int64_t d1[] = {2, 2};
    const int64_t *dd[] = {d1};
    sj_compiled *c = NULL;
    assert_int_equal(sj_fn_specialize(fn, 1, r1, dd, &c), SJ_ERR_SHAPE);
    assert_non_null(strstr(sj_ctx_last_error(a), "sj_fn_specialize"));
    assert_string_equal(sj_ctx_last_error(b), "");
    int r0[] = {1};
    assert_ok(sj_fn_specialize(fn, 1, r0, dd, &c), a);
    int r;
    assert_int_equal(sj_compiled_output_shape(c, 3, &r, NULL), SJ_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(sj_ctx_last_error(a), "sj_compiled_output_shape"));
    assert_string_equal(sj_ctx_last_error(b), "");

    sj_compiled_free(c);
    sj_fn_free(fn);
    sj_graph_free(ga);
    sj_graph_free(gb);
    sj_ctx_free(a);
    sj_ctx_free(b);
}

/* Freed handles are marked dead where the memory allows; the documented rule
 * is not to use them, so only double frees of NULL are exercised here. */
static void test_free_null(void **state)
{
    (void)state;
    sj_graph_free(NULL);
    sj_fn_free(NULL);
    sj_compiled_free(NULL);
    sj_ctx_free(NULL);
    sj_string_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctx),
        cmocka_unit_test_setup_teardown(test_wrong_kind_of_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graph_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_constant_eye_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_op_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sticky, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sticky_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fn_create_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fn_queries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_specialize_args, setup, teardown),
        cmocka_unit_test(test_two_contexts),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
