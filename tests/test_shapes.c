/* Shape checking: every shape rule's error at build time (concrete sizes),
 * the errors only specialisation can see (symbolic sizes bound to
 * inconsistent values), and the shapes of valid graphs after specialisation
 * (implicit broadcasting, NumPy matmul of vectors and batches).  Messages must
 * name the op, the value ("value %k") and the shapes involved. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

/* Input called name with dims given as one string, e.g. "n,3" ("" = scalar). */
static sj_value in(test_graph *f, const char *name, const char *spec)
{
    static char buf[8][16];
    const char *dims[8];
    int rank = 0;
    for (const char *p = spec; *p && rank < 8;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf[rank], sizeof buf[rank], "%.*s", (int)len, p);
        dims[rank] = buf[rank];
        rank++;
        p += len + (e ? 1 : 0);
    }
    return sj_input(f->g, name, rank, dims);
}

/* v is SJ_INVALID, the graph failed with want, and the message holds every
 * fragment (a NULL-terminated list). */
static void expect_error_impl(test_graph *f, sj_value v, sj_status want, const char *const *frag,
                              const char *file, int line)
{
    const char *msg = sj_ctx_last_error(f->ctx);
    int ok = v == SJ_INVALID && sj_graph_status(f->g) == want;
    for (int i = 0; ok && frag[i]; i++)
        ok = strstr(msg, frag[i]) != NULL;
    if (!ok) {
        print_error("%s:%d: got id %lld, %s \"%s\"; want %s with:\n", file, line, (long long)v,
                    sj_status_name(sj_graph_status(f->g)), msg, sj_status_name(want));
        for (int i = 0; frag[i]; i++)
            print_error("    \"%s\"\n", frag[i]);
        _fail(file, line);
    }
}
#define expect_shape_error(f, v, ...)                                                     \
    expect_error_impl((f), (v), SJ_ERR_SHAPE, (const char *const[]){__VA_ARGS__, NULL},     \
                      __FILE__, __LINE__)
#define expect_error(f, v, st, ...)                                                       \
    expect_error_impl((f), (v), (st), (const char *const[]){__VA_ARGS__, NULL}, __FILE__,   \
                      __LINE__)

/* ---- build time, concrete sizes --------------------------------------------------- */

static void test_matmul_inner(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3"), b = in(f, "b", "4,5");
    expect_shape_error(f, sj_matmul(f->g, a, b), "sj_matmul: matmul (value %2)",
                       "inner dimensions differ", "[2, 3]", "[4, 5]");
}

static void test_matmul_inner_vector(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "3"), b = in(f, "b", "4,5");
    expect_shape_error(f, sj_matmul(f->g, a, b), "matmul (value %2)", "a is [3] and b is [4, 5]");
}

static void test_matmul_scalar(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", ""), b = in(f, "b", "4,5");
    expect_shape_error(f, sj_matmul(f->g, a, b), "matmul (value %2)", "scalars", "[] and [4, 5]");
}

static void test_matmul_batch(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3,4"), b = in(f, "b", "5,4,6");
    expect_shape_error(f, sj_matmul(f->g, a, b), "matmul (value %2)", "batch axes",
                       "[2, 3, 4]", "[5, 4, 6]");
}

static void test_batch_exact(void **state)
{
    /* Linear algebra other than matmul needs equal batch axes. */
    test_graph *f = *state;
    sj_value l = in(f, "l", "2,3,3"), b = in(f, "b", "4,3,1");
    expect_shape_error(f, sj_cholesky_solve(f->g, l, b), "cholesky_solve (value %2)",
                       "batch axis 0 differs", "[2, 3, 3]", "[4, 3, 1]");
}

static void test_batch_rank(void **state)
{
    test_graph *f = *state;
    sj_value l = in(f, "l", "2,3,3"), b = in(f, "b", "3,1");
    expect_shape_error(f, sj_solve(f->g, l, b), "solve (value %2)", "same rank", "[2, 3, 3]",
                       "[3, 1]");
}

static void test_cholesky_square(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3");
    expect_shape_error(f, sj_cholesky(f->g, a), "sj_cholesky: cholesky (value %1)",
                       "must be square, got [2, 3]");
}

static void test_cholesky_rank(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "3");
    expect_shape_error(f, sj_cholesky(f->g, a), "cholesky (value %1)", "rank >= 2, got [3]");
}

static void test_logdet_square(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "5,3,4");
    expect_shape_error(f, sj_logdet(f->g, a), "logdet (value %1)", "must be square, got [5, 3, 4]");
}

static void test_solve_square(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "3,4"), b = in(f, "b", "3,2");
    expect_shape_error(f, sj_solve(f->g, a, b), "solve (value %2)", "must be square, got [3, 4]");
}

static void test_solve_fit(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "3,3"), b = in(f, "b", "4,2");
    expect_shape_error(f, sj_solve(f->g, a, b), "solve (value %2)", "a [3, 3] does not fit b [4, 2]");
}

static void test_trisolve_left(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "3,3"), b = in(f, "b", "4,2");
    expect_shape_error(f, sj_triangular_solve(f->g, a, b, 0), "triangular_solve (value %2)",
                       "a [3, 3] does not fit b [4, 2] (solving from the left)");
}

static void test_trisolve_right(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "3,3"), b = in(f, "b", "3,2");
    expect_shape_error(f, sj_triangular_solve(f->g, a, b, SJ_SOLVE_RIGHT | SJ_SOLVE_UPPER),
                       "triangular_solve (value %2)", "[3, 3]", "[3, 2]", "from the right");
}

static void test_trisolve_vector(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "3,3"), b = in(f, "b", "4");
    expect_shape_error(f, sj_triangular_solve(f->g, a, b, 0), "triangular_solve (value %3)",
                       "[3, 3]", "[4, 1]");
}

static void test_concat_mismatch(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3"), b = in(f, "b", "2,4");
    sj_value xs[] = {a, b};
    expect_shape_error(f, sj_concat(f->g, 2, xs, 0), "concat (value %2)",
                       "operand 1 has shape [2, 4]", "does not fit [2, 3] outside axis 0");
}

static void test_concat_rank(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3"), b = in(f, "b", "3");
    sj_value xs[] = {a, b};
    expect_shape_error(f, sj_concat(f->g, 2, xs, 1), "concat (value %2)", "[3]", "[2, 3]");
}

static void test_reshape_count(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3");
    const char *d[] = {"4", "2"};
    expect_shape_error(f, sj_reshape(f->g, a, 2, d), "reshape (value %1)",
                       "cannot reshape [2, 3] into [4, 2]");
}

static void test_broadcast_size(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3");
    const char *d[] = {"4", "3"};
    expect_shape_error(f, sj_broadcast_to(f->g, a, 2, d), "sj_broadcast_to: broadcast (value %1)",
                       "cannot broadcast [2, 3] to [4, 3]");
}

static void test_broadcast_rank(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3");
    const char *d[] = {"3"};
    expect_shape_error(f, sj_broadcast_to(f->g, a, 1, d), "broadcast (value %1)",
                       "cannot broadcast [2, 3] to the lower rank of [3]");
}

static void test_add_no_broadcast(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3"), b = in(f, "b", "3,2");
    expect_shape_error(f, sj_add(f->g, a, b), "sj_add: add (value %2)",
                       "operand shapes [2, 3] and [3, 2] do not broadcast");
}

static void test_select_no_broadcast(void **state)
{
    test_graph *f = *state;
    sj_value p = in(f, "p", "3"), a = in(f, "a", "1"), b = in(f, "b", "4");
    expect_shape_error(f, sj_select(f->g, p, a, b), "select (value %3)", "[1]", "[4]");
}

static void test_transpose_perm(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3");
    int perm[] = {1, 1};
    expect_shape_error(f, sj_transpose(f->g, a, perm), "transpose (value %1)",
                       "perm (1,1) is not a permutation of the 2 axes of [2, 3]");
}

static void test_slice_range(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "5");
    expect_shape_error(f, sj_slice(f->g, a, 0, 2, 7), "slice (value %1)",
                       "slice [2:7] is out of range for axis 0 of size 5");
}

static void test_slice_reversed(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "4,5");
    expect_shape_error(f, sj_slice(f->g, a, -1, 4, 2), "slice (value %1)", "[4:2]",
                       "axis 1 of size 5");
}

static void test_slice_negative(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "5");
    expect_shape_error(f, sj_slice(f->g, a, 0, -9, INT64_MAX), "slice (value %1)", "[-9:",
                       "size 5");
}

static void test_reduce_axis(void **state)
{
    /* A bad axis is an argument error, caught before the shape rule. */
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3");
    int axes[] = {2};
    expect_error(f, sj_sum(f->g, a, 1, axes), SJ_ERR_INVALID_ARGUMENT,
                 "sj_sum: axis 2 is out of range for rank 2");
}

static void test_gather_index_matrix(void **state)
{
    test_graph *f = *state;
    sj_value x = in(f, "x", "5,2"), idx = in(f, "idx", "3,1");
    expect_shape_error(f, sj_gather(f->g, x, idx), "gather (value %2)",
                       "index must be a vector, got [3, 1]");
}

static void test_gather_scalar(void **state)
{
    test_graph *f = *state;
    sj_value x = in(f, "x", ""), idx = in(f, "idx", "3");
    expect_shape_error(f, sj_gather(f->g, x, idx), "gather (value %2)", "rank >= 1, got []");
}

static void test_segment_sum_length(void **state)
{
    test_graph *f = *state;
    sj_value x = in(f, "x", "5,2"), idx = in(f, "idx", "4");
    expect_shape_error(f, sj_segment_sum(f->g, x, idx, "3"), "segment_sum (value %2)",
                       "x [5, 2] and index [4] differ in length");
}

static void test_segment_sum_index(void **state)
{
    test_graph *f = *state;
    sj_value x = in(f, "x", "5"), idx = in(f, "idx", "");
    expect_shape_error(f, sj_segment_sum(f->g, x, idx, "3"), "segment_sum (value %2)",
                       "index must be a vector, got []");
}

static void test_one_hot_index(void **state)
{
    test_graph *f = *state;
    sj_value idx = in(f, "idx", "3,2");
    expect_shape_error(f, sj_one_hot(f->g, idx, "4"), "one_hot (value %1)",
                       "index must be a vector, got [3, 2]");
}

static void test_diag_square(void **state)
{
    test_graph *f = *state;
    sj_value x = in(f, "x", "2,3");
    expect_shape_error(f, sj_diag(f->g, x), "diag (value %1)", "must be square, got [2, 3]");
}

static void test_tril_rank(void **state)
{
    test_graph *f = *state;
    sj_value x = in(f, "x", "3");
    expect_shape_error(f, sj_tril(f->g, x, 0), "tril (value %1)", "rank >= 2, got [3]");
}

static void test_outer_rank9(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "1,1,1,1,1,1,1,2"), b = in(f, "b", "1,1,1,1,1,1,1,3");
    expect_shape_error(f, sj_outer(f->g, a, b), "outer (value %2)", "more than 8 axes",
                       "[1, 1, 1, 1, 1, 1, 1, 2]", "[1, 1, 1, 1, 1, 1, 1, 3]");
}

static void test_diag_embed_rank9(void **state)
{
    test_graph *f = *state;
    sj_value v = in(f, "v", "1,1,1,1,1,1,1,2");
    expect_shape_error(f, sj_diag_embed(f->g, v), "diag_embed (value %1)", "more than 8 axes",
                       "[1, 1, 1, 1, 1, 1, 1, 2]");
}

static void test_outer_batch(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3"), b = in(f, "b", "4,3");
    expect_shape_error(f, sj_outer(f->g, a, b), "outer (value %2)", "batch axis 0 differs",
                       "[2, 3]", "[4, 3]");
}

static void test_kron_rank(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "2,3"), b = in(f, "b", "3");
    expect_shape_error(f, sj_kron(f->g, a, b), "kron (value %2)", "b must have rank >= 2, got [3]");
}

static void test_elementwise_same_rank_symbolic_vs_size(void **state)
{
    /* A symbol never conflicts at build time; sizes do. */
    test_graph *f = *state;
    sj_value a = in(f, "a", "n,3"), b = in(f, "b", "p,3");
    assert_int_not_equal(sj_add(f->g, a, b), SJ_INVALID);
    sj_value c = in(f, "c", "n,4");
    expect_shape_error(f, sj_mul(f->g, a, c), "mul (value %", "[n, 3] and [n, 4]");
}

/* ---- specialisation ------------------------------------------------------------------- */

/* Specialises a function of g returning out to the given shapes: ranks[i]
 * and the sizes dims[i]; returns the status (c set on success). */
static sj_status specialize(test_graph *f, int nout, const sj_value *out, int n, const int *ranks,
                            const int64_t *const *dims, sj_compiled **c)
{
    assert_ok(sj_graph_status(f->g), f->ctx);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(f->g, nout, out, &fn), f->ctx);
    *c = NULL;
    sj_status st = sj_fn_specialize(fn, n, ranks, dims, c);
    sj_fn_free(fn);
    return st;
}

static void expect_spec_error(test_graph *f, sj_status st, const char *fragment)
{
    assert_error(st, SJ_ERR_SHAPE, f->ctx, fragment);
    assert_non_null(strstr(sj_ctx_last_error(f->ctx), "sj_fn_specialize: "));
}

static void expect_shape(test_graph *f, const sj_compiled *c, int k, int rank,
                         const int64_t *want)
{
    int r = -1;
    int64_t d[SJ_MAX_RANK];
    assert_ok(sj_compiled_output_shape(c, k, &r, d), f->ctx);
    assert_int_equal(r, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(d[i], want[i]);
}

static void test_symbolic_build_ok(void **state)
{
    test_graph *f = *state;
    sj_value y = in(f, "y", "n"), X = in(f, "X", "n,p"), u = in(f, "u", "?");
    sj_value beta = sj_solve(f->g, sj_matmul(f->g, sj_mT(f->g, X), X),
                             sj_matmul(f->g, sj_mT(f->g, X), y));
    sj_value r = sj_sub(f->g, y, sj_matmul(f->g, X, beta));
    sj_value s = sj_add(f->g, sj_sum_all(f->g, u), sj_sum_all(f->g, r));
    assert_int_not_equal(s, SJ_INVALID);
    assert_int_equal(sj_graph_status(f->g), SJ_OK);

    int ranks[] = {1, 2, 1};
    int64_t dy[] = {10}, dX[] = {10, 3}, du[] = {7};
    const int64_t *dims[] = {dy, dX, du};
    sj_compiled *c = NULL;
    sj_value outs[] = {beta, r, s};
    assert_ok(specialize(f, 3, outs, 3, ranks, dims, &c), f->ctx);
    expect_shape(f, c, 0, 1, (int64_t[]){3});
    expect_shape(f, c, 1, 1, (int64_t[]){10});
    expect_shape(f, c, 2, 0, NULL);
    size_t n = 0;
    assert_ok(sj_compiled_output_size(c, 1, &n), f->ctx);
    assert_int_equal(n, 10);
    assert_ok(sj_compiled_output_size(c, 2, &n), f->ctx);
    assert_int_equal(n, 1);
    sj_compiled_free(c);
}

static void test_symbolic_inconsistent(void **state)
{
    test_graph *f = *state;
    sj_value y = in(f, "y", "n"), X = in(f, "X", "n,p");
    sj_value out = sj_matmul(f->g, y, X);
    int ranks[] = {1, 2};
    int64_t dy[] = {12}, dX[] = {10, 3};
    const int64_t *dims[] = {dy, dX};
    sj_compiled *c = NULL;
    expect_spec_error(f, specialize(f, 1, &out, 2, ranks, dims, &c),
                      "dimension \"n\" is 12 in input \"y\" (axis 0) but 10 in input \"X\" (axis 0)");
    assert_null(c);
}

static void test_symbolic_inconsistent_axis(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "n,n");
    sj_value out = sj_cholesky(f->g, a);
    int ranks[] = {2};
    int64_t da[] = {3, 4};
    const int64_t *dims[] = {da};
    sj_compiled *c = NULL;
    expect_spec_error(f, specialize(f, 1, &out, 1, ranks, dims, &c),
                      "dimension \"n\" is 3 in input \"a\" (axis 0) but 4 in input \"a\" (axis 1)");
}

static void test_declared_size(void **state)
{
    test_graph *f = *state;
    sj_value z = in(f, "Z", "n,3");
    sj_value out = sj_exp(f->g, z);
    int ranks[] = {2};
    int64_t dz[] = {10, 4};
    const int64_t *dims[] = {dz};
    sj_compiled *c = NULL;
    expect_spec_error(f, specialize(f, 1, &out, 1, ranks, dims, &c),
                      "input \"Z\" is declared [n, 3] but given [10, 4] (axis 1 must be 3)");
}

static void test_mismatch_after_binding_add(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "n"), b = in(f, "b", "p");
    sj_value out = sj_add(f->g, a, b);
    int ranks[] = {1, 1};
    int64_t da[] = {3}, db[] = {4};
    const int64_t *dims[] = {da, db};
    sj_compiled *c = NULL;
    sj_status st = specialize(f, 1, &out, 2, ranks, dims, &c);
    expect_spec_error(f, st, "add (value %2)");
    assert_non_null(strstr(sj_ctx_last_error(f->ctx), "[3] and [4]"));
    /* Equal sizes are fine. */
    db[0] = 3;
    assert_ok(specialize(f, 1, &out, 2, ranks, dims, &c), f->ctx);
    expect_shape(f, c, 0, 1, (int64_t[]){3});
    sj_compiled_free(c);
}

static void test_mismatch_after_binding_matmul(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "n,p"), b = in(f, "b", "q,m");
    sj_value out = sj_matmul(f->g, a, b);
    int ranks[] = {2, 2};
    int64_t da[] = {2, 3}, db[] = {4, 5};
    const int64_t *dims[] = {da, db};
    sj_compiled *c = NULL;
    sj_status st = specialize(f, 1, &out, 2, ranks, dims, &c);
    expect_spec_error(f, st, "matmul (value %2)");
    assert_non_null(strstr(sj_ctx_last_error(f->ctx), "inner dimensions differ: a is [2, 3] and b is [4, 5]"));
}

static void test_mismatch_after_binding_cholesky(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "n,p");
    sj_value out = sj_logdet(f->g, a);
    int ranks[] = {2};
    int64_t da[] = {2, 3};
    const int64_t *dims[] = {da};
    sj_compiled *c = NULL;
    expect_spec_error(f, specialize(f, 1, &out, 1, ranks, dims, &c),
                      "logdet (value %1): a must be square, got [2, 3]");
}

static void test_mismatch_after_binding_reshape(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "n,p"), b = in(f, "b", "m");
    const char *d[] = {"m"};
    sj_value out = sj_reshape(f->g, a, 1, d);
    (void)b;
    int ranks[] = {2, 1};
    int64_t da[] = {2, 3}, db[] = {7};
    const int64_t *dims[] = {da, db};
    sj_compiled *c = NULL;
    expect_spec_error(f, specialize(f, 1, &out, 2, ranks, dims, &c),
                      "reshape (value %2): cannot reshape [2, 3] into [7]");
}

static void test_mismatch_after_binding_slice(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "n");
    sj_value out = sj_slice(f->g, a, 0, 1, 5);
    int ranks[] = {1};
    int64_t da[] = {3};
    const int64_t *dims[] = {da};
    sj_compiled *c = NULL;
    expect_spec_error(f, specialize(f, 1, &out, 1, ranks, dims, &c),
                      "slice (value %1): slice [1:5] is out of range for axis 0 of size 3");
}

static void test_unbound_eye(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "n,n");
    sj_value out = sj_matmul(f->g, a, sj_eye(f->g, "q"));
    assert_int_not_equal(out, SJ_INVALID);
    int ranks[] = {2};
    int64_t da[] = {3, 3};
    const int64_t *dims[] = {da};
    sj_compiled *c = NULL;
    expect_spec_error(f, specialize(f, 1, &out, 1, ranks, dims, &c),
                      "eye (value %1) has shape [q, q]: dimension \"q\" is bound by no input");
}

static void test_unbound_segments(void **state)
{
    test_graph *f = *state;
    sj_value x = in(f, "x", "n"), idx = in(f, "idx", "n");
    sj_value out = sj_segment_sum(f->g, x, idx, "?");
    int ranks[] = {1, 1};
    int64_t dn[] = {4};
    const int64_t *dims[] = {dn, dn};
    sj_compiled *c = NULL;
    expect_spec_error(f, specialize(f, 1, &out, 2, ranks, dims, &c),
                      "segment_sum (value %2)");
    assert_non_null(strstr(sj_ctx_last_error(f->ctx), "no input binds"));
}

/* ---- valid shapes -------------------------------------------------------------------- */

/* One output of inputs given as rank/sizes lists; checks its shape. */
static void check_out(test_graph *f, sj_value out, int n, const int *ranks,
                      const int64_t *const *dims, int rank, const int64_t *want)
{
    sj_compiled *c = NULL;
    assert_ok(specialize(f, 1, &out, n, ranks, dims, &c), f->ctx);
    expect_shape(f, c, 0, rank, want);
    sj_compiled_free(c);
}

static void test_broadcast_outer(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "n,1"), b = in(f, "b", "1,p");
    sj_value out = sj_add(f->g, a, b);
    int ranks[] = {2, 2};
    int64_t da[] = {4, 1}, db[] = {1, 5};
    check_out(f, out, 2, ranks, (const int64_t *const[]){da, db}, 2, (int64_t[]){4, 5});
}

static void test_broadcast_scalar(void **state)
{
    test_graph *f = *state;
    sj_value s = in(f, "s", ""), m = in(f, "m", "n,p");
    sj_value out = sj_mul(f->g, sj_add(f->g, s, m), sj_scalar(f->g, 2.0));
    int ranks[] = {0, 2};
    int64_t dm[] = {2, 6};
    check_out(f, out, 2, ranks, (const int64_t *const[]){NULL, dm}, 2, (int64_t[]){2, 6});
}

static void test_broadcast_rank_and_select(void **state)
{
    test_graph *f = *state;
    sj_value v = in(f, "v", "p"), m = in(f, "m", "n,p"), t = in(f, "t", "");
    sj_value out = sj_select(f->g, sj_compare(f->g, SJ_GT, m, t), v, sj_scalar(f->g, 0));
    int ranks[] = {1, 2, 0};
    int64_t dv[] = {3}, dm[] = {5, 3};
    check_out(f, out, 3, ranks, (const int64_t *const[]){dv, dm, NULL}, 2, (int64_t[]){5, 3});
}

static void test_matmul_vector_left(void **state)
{
    test_graph *f = *state;
    sj_value v = in(f, "v", "k"), m = in(f, "m", "k,n");
    sj_value out = sj_matmul(f->g, v, m);
    int ranks[] = {1, 2};
    int64_t dv[] = {3}, dm[] = {3, 4};
    check_out(f, out, 2, ranks, (const int64_t *const[]){dv, dm}, 1, (int64_t[]){4});
}

static void test_matmul_vector_right(void **state)
{
    test_graph *f = *state;
    sj_value m = in(f, "m", "m,k"), v = in(f, "v", "k");
    sj_value out = sj_matmul(f->g, m, v);
    int ranks[] = {2, 1};
    int64_t dm[] = {2, 3}, dv[] = {3};
    check_out(f, out, 2, ranks, (const int64_t *const[]){dm, dv}, 1, (int64_t[]){2});
}

static void test_matmul_dot(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "k"), b = in(f, "b", "k");
    sj_value out = sj_matmul(f->g, a, b);
    int ranks[] = {1, 1};
    int64_t d[] = {3};
    check_out(f, out, 2, ranks, (const int64_t *const[]){d, d}, 0, NULL);
}

static void test_matmul_batched_unbatched(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "b,m,k"), w = in(f, "w", "k,n");
    sj_value out = sj_matmul(f->g, a, w);
    int ranks[] = {3, 2};
    int64_t da[] = {6, 2, 3}, dw[] = {3, 4};
    check_out(f, out, 2, ranks, (const int64_t *const[]){da, dw}, 3, (int64_t[]){6, 2, 4});
}

static void test_matmul_unbatched_batched_vector(void **state)
{
    test_graph *f = *state;
    sj_value v = in(f, "v", "k"), a = in(f, "a", "b,k,n");
    sj_value out = sj_matmul(f->g, v, a);
    int ranks[] = {1, 3};
    int64_t dv[] = {3}, da[] = {5, 3, 2};
    check_out(f, out, 2, ranks, (const int64_t *const[]){dv, da}, 2, (int64_t[]){5, 2});
}

static void test_matmul_batch_one(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "1,m,k"), b = in(f, "b", "2,b,k,n");
    sj_value out = sj_matmul(f->g, a, b);
    int ranks[] = {3, 4};
    int64_t da[] = {1, 2, 3}, db[] = {2, 7, 3, 4};
    check_out(f, out, 2, ranks, (const int64_t *const[]){da, db}, 4, (int64_t[]){2, 7, 2, 4});
}

static void test_derived_sizes(void **state)
{
    /* Sizes known only after specialisation (a slice of a symbolic axis, a
     * concat) flow through the unit axes sj_matmul inserts. */
    test_graph *f = *state;
    sj_value x = in(f, "x", "n"), m = in(f, "m", "k,p");
    sj_value tail = sj_slice(f->g, x, 0, 1, INT64_MAX); /* [n - 1] */
    sj_value out = sj_matmul(f->g, tail, m);
    sj_value xs[] = {x, x};
    sj_value both = sj_concat(f->g, 2, xs, 0);
    sj_value col = sj_matmul(f->g, sj_outer(f->g, both, both), both);
    int ranks[] = {1, 2};
    int64_t dx[] = {4}, dm[] = {3, 2};
    sj_compiled *c = NULL;
    sj_value outs[] = {out, col};
    assert_ok(specialize(f, 2, outs, 2, ranks, (const int64_t *const[]){dx, dm}, &c), f->ctx);
    expect_shape(f, c, 0, 1, (int64_t[]){2});
    expect_shape(f, c, 1, 1, (int64_t[]){8});
    sj_compiled_free(c);
}

static void test_reshape_anonymous(void **state)
{
    /* One "?" in sj_reshape is inferred from the element count. */
    test_graph *f = *state;
    sj_value x = in(f, "x", "n,p");
    const char *d[] = {"?", "2"};
    sj_value out = sj_reshape(f->g, x, 2, d);
    int ranks[] = {2};
    int64_t dx[] = {3, 4};
    check_out(f, out, 1, ranks, (const int64_t *const[]){dx}, 2, (int64_t[]){6, 2});
}

static void test_linalg_shapes(void **state)
{
    test_graph *f = *state;
    sj_value a = in(f, "a", "n,n"), b = in(f, "b", "n"), z = in(f, "z", "n,q");
    sj_value l = sj_cholesky(f->g, a);
    sj_value outs[] = {
        sj_cholesky_solve(f->g, l, b),                       /* [n] */
        sj_triangular_solve(f->g, l, z, 0),                  /* [n, q] */
        sj_triangular_solve(f->g, l, b, SJ_SOLVE_RIGHT),     /* [n] */
        sj_logdet(f->g, a),                                  /* [] */
        sj_diag(f->g, a),                                    /* [n] */
        sj_kron(f->g, a, z),                                 /* [n*n, n*q] */
        sj_one_hot(f->g, b, "q"),                            /* [n, q] */
        sj_segment_sum(f->g, z, b, "s"),                     /* [s, q]: s bound below */
        sj_gather(f->g, z, b),                               /* [n, q] */
        sj_sum(f->g, z, 1, (int[]){0}),                      /* [q] */
        sj_transpose(f->g, z, (int[]){1, 0}),                /* [q, n] */
        sj_diag_embed(f->g, b),                              /* [n, n] */
    };
    sj_value s = in(f, "s", "s");
    (void)s;
    int ranks[] = {2, 1, 2, 1};
    int64_t da[] = {3, 3}, db[] = {3}, dz[] = {3, 2}, ds[] = {5};
    sj_compiled *c = NULL;
    assert_ok(specialize(f, 12, outs, 4, ranks, (const int64_t *const[]){da, db, dz, ds}, &c),
              f->ctx);
    expect_shape(f, c, 0, 1, (int64_t[]){3});
    expect_shape(f, c, 1, 2, (int64_t[]){3, 2});
    expect_shape(f, c, 2, 1, (int64_t[]){3});
    expect_shape(f, c, 3, 0, NULL);
    expect_shape(f, c, 4, 1, (int64_t[]){3});
    expect_shape(f, c, 5, 2, (int64_t[]){9, 6});
    expect_shape(f, c, 6, 2, (int64_t[]){3, 2});
    expect_shape(f, c, 7, 2, (int64_t[]){5, 2});
    expect_shape(f, c, 8, 2, (int64_t[]){3, 2});
    expect_shape(f, c, 9, 1, (int64_t[]){2});
    expect_shape(f, c, 10, 2, (int64_t[]){2, 3});
    expect_shape(f, c, 11, 2, (int64_t[]){3, 3});
    sj_compiled_free(c);
}

static void test_same_fn_many_shapes(void **state)
{
    test_graph *f = *state;
    sj_value X = in(f, "X", "n,p");
    sj_value out = sj_matmul(f->g, sj_mT(f->g, X), X);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(f->g, 1, &out, &fn), f->ctx);
    for (int64_t n = 1; n <= 4; n++) {
        int ranks[] = {2};
        int64_t d[] = {n * 3, n};
        sj_compiled *c = NULL;
        assert_ok(sj_fn_specialize(fn, 1, ranks, (const int64_t *const[]){d}, &c), f->ctx);
        expect_shape(f, c, 0, 2, (int64_t[]){n, n});
        sj_compiled_free(c);
    }
    /* Zero-sized axes are shapes too. */
    int ranks[] = {2};
    int64_t d[] = {0, 2};
    sj_compiled *c = NULL;
    assert_ok(sj_fn_specialize(fn, 1, ranks, (const int64_t *const[]){d}, &c), f->ctx);
    expect_shape(f, c, 0, 2, (int64_t[]){2, 2});
    sj_compiled_free(c);
    sj_fn_free(fn);
}

#define T(name) cmocka_unit_test_setup_teardown(name, test_graph_setup, test_graph_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_matmul_inner), T(test_matmul_inner_vector), T(test_matmul_scalar),
        T(test_matmul_batch), T(test_batch_exact), T(test_batch_rank),
        T(test_cholesky_square), T(test_cholesky_rank), T(test_logdet_square),
        T(test_solve_square), T(test_solve_fit), T(test_trisolve_left), T(test_trisolve_right),
        T(test_trisolve_vector), T(test_concat_mismatch), T(test_concat_rank),
        T(test_reshape_count), T(test_broadcast_size), T(test_broadcast_rank),
        T(test_add_no_broadcast), T(test_select_no_broadcast), T(test_transpose_perm),
        T(test_slice_range), T(test_slice_reversed), T(test_slice_negative),
        T(test_reduce_axis), T(test_gather_index_matrix), T(test_gather_scalar),
        T(test_segment_sum_length), T(test_segment_sum_index), T(test_one_hot_index),
        T(test_diag_square), T(test_tril_rank), T(test_outer_rank9), T(test_diag_embed_rank9),
        T(test_outer_batch), T(test_kron_rank), T(test_elementwise_same_rank_symbolic_vs_size),
        T(test_symbolic_build_ok), T(test_symbolic_inconsistent),
        T(test_symbolic_inconsistent_axis), T(test_declared_size),
        T(test_mismatch_after_binding_add), T(test_mismatch_after_binding_matmul),
        T(test_mismatch_after_binding_cholesky), T(test_mismatch_after_binding_reshape),
        T(test_mismatch_after_binding_slice), T(test_unbound_eye), T(test_unbound_segments),
        T(test_broadcast_outer), T(test_broadcast_scalar), T(test_broadcast_rank_and_select),
        T(test_matmul_vector_left), T(test_matmul_vector_right), T(test_matmul_dot),
        T(test_matmul_batched_unbatched), T(test_matmul_unbatched_batched_vector),
        T(test_matmul_batch_one), T(test_derived_sizes), T(test_reshape_anonymous),
        T(test_linalg_shapes), T(test_same_fn_many_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
