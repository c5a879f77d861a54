/* The compile cache and native calls: one compile per new shape and none for
 * a repeated one (read through the counters), shared entries for identical
 * functions, native results equal to the reference evaluator, kernel errors
 * that leave outputs unchanged, a steady state that allocates nothing, the
 * SJ_DUMP switch, and misuse of the new entry points. */
#include "testutil.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir/alloc.h"

typedef struct fixture {
    sj_ctx *ctx;
    sj_fn *fn;
} fixture;

/* f(A: [n, n], b: [n]) = (logdet A, A⁻¹ b, sum(2 exp(b / 4) + scale)). */
static sj_fn *make_fn(sj_ctx *ctx, double scale)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *nn[] = {"n", "n"}, *n[] = {"n"};
    sj_value a = sj_input(g, "A", 2, nn);
    sj_value b = sj_input(g, "b", 1, n);
    sj_value l = sj_cholesky(g, a);
    sj_value out[3];
    out[0] = sj_logdet(g, a);
    out[1] = sj_cholesky_solve(g, l, b);
    sj_value e = sj_exp(g, sj_div(g, b, sj_scalar(g, 4.0)));
    out[2] = sj_add(g, sj_sum_all(g, sj_mul(g, sj_scalar(g, 2.0), e)), sj_scalar(g, scale));
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, 3, out, &fn), ctx);
    sj_graph_free(g);
    return fn;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || sj_ctx_create(&f->ctx) != SJ_OK)
        return -1;
    f->fn = make_fn(f->ctx, 1.0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sj_fn_free(f->fn);
    sj_ctx_free(f->ctx);
    free(f);
    return 0;
}

static double counter(const sj_ctx *ctx, const char *name)
{
    double v = -1;
    assert_ok(sj_ctx_counter(ctx, name, &v), ctx);
    return v;
}

/* A random SPD matrix A = M Mᵀ + n I and a vector b. */
static void spd(uint64_t *rng, int64_t n, double *a, double *b)
{
    double *m = malloc((size_t)(n * n) * sizeof *m);
    for (int64_t i = 0; i < n * n; i++)
        m[i] = test_uniform(rng, -1, 1);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = i == j ? (double)n : 0;
            for (int64_t k = 0; k < n; k++)
                s += m[i * n + k] * m[j * n + k];
            a[i * n + j] = s;
        }
    for (int64_t i = 0; i < n; i++)
        b[i] = test_uniform(rng, -2, 2);
    free(m);
}

static sj_status compile_n(sj_fn *fn, int64_t n, sj_compiled **c)
{
    int ranks[2] = {2, 1};
    int64_t dnn[2] = {n, n}, dn[1] = {n};
    const int64_t *dims[2] = {dnn, dn};
    return sj_fn_compile(fn, 2, ranks, dims, c);
}

static sj_status call_n(sj_fn *fn, int64_t n, const double *a, const double *b, double *ld,
                        double *x, double *s)
{
    int ranks[2] = {2, 1};
    int64_t dnn[2] = {n, n}, dn[1] = {n};
    const int64_t *dims[2] = {dnn, dn};
    const double *in[2] = {a, b};
    double *out[3] = {ld, x, s};
    return sj_fn_call(fn, 2, ranks, dims, in, out);
}

static void test_compiles_once_per_shape(void **state)
{
    fixture *f = *state;
    sj_ctx *ctx = f->ctx;
    assert_true(counter(ctx, "compiles") == 0);
    assert_true(counter(ctx, "cache_hits") == 0);
    assert_true(counter(ctx, "compile_seconds") == 0);

    sj_compiled *c4 = NULL, *c4b = NULL, *c5 = NULL;
    assert_ok(compile_n(f->fn, 4, &c4), ctx);
    assert_true(counter(ctx, "compiles") == 1);
    assert_true(counter(ctx, "cache_hits") == 0);
    assert_true(counter(ctx, "compile_seconds") > 0);
    assert_true(counter(ctx, "cache_entries") == 1);

    assert_ok(compile_n(f->fn, 4, &c4b), ctx);
    assert_true(counter(ctx, "compiles") == 1);
    assert_true(counter(ctx, "cache_hits") == 1);
    assert_ptr_equal(c4, c4b);

    assert_ok(compile_n(f->fn, 5, &c5), ctx);
    assert_true(counter(ctx, "compiles") == 2);
    assert_true(counter(ctx, "cache_hits") == 1);
    assert_ptr_not_equal(c4, c5);

    /* Releasing the callers' references leaves the cache's. */
    sj_compiled_free(c4);
    sj_compiled_free(c4b);
    sj_compiled_free(c5);
    sj_compiled *again = NULL;
    assert_ok(compile_n(f->fn, 4, &again), ctx);
    assert_true(counter(ctx, "compiles") == 2);
    assert_true(counter(ctx, "cache_hits") == 2);
    assert_int_equal(sj_compiled_noutput(again), 3);
    sj_compiled_free(again);

    /* sj_fn_call: a hit for a known shape, a compile for a new one. */
    uint64_t rng = 7;
    double a[36], b[6], ld, x[6], s;
    spd(&rng, 5, a, b);
    assert_ok(call_n(f->fn, 5, a, b, &ld, x, &s), ctx);
    assert_true(counter(ctx, "compiles") == 2);
    assert_true(counter(ctx, "cache_hits") == 3);
    spd(&rng, 6, a, b);
    assert_ok(call_n(f->fn, 6, a, b, &ld, x, &s), ctx);
    assert_true(counter(ctx, "compiles") == 3);
    assert_true(counter(ctx, "cache_hits") == 3);
    for (int i = 0; i < 5; i++)
        assert_ok(call_n(f->fn, 6, a, b, &ld, x, &s), ctx);
    assert_true(counter(ctx, "compiles") == 3);
    assert_true(counter(ctx, "cache_hits") == 8);
    assert_true(counter(ctx, "cache_entries") == 3);
}

static void test_identical_functions_share(void **state)
{
    fixture *f = *state;
    sj_ctx *ctx = f->ctx;
    sj_fn *twin = make_fn(ctx, 1.0);     /* the same graph, built again */
    sj_fn *other = make_fn(ctx, 2.0);    /* differs in one constant */
    sj_compiled *c1 = NULL, *c2 = NULL, *c3 = NULL;
    assert_ok(compile_n(f->fn, 4, &c1), ctx);
    sj_fn_free(f->fn); /* the cache does not depend on the sj_fn living on */
    f->fn = NULL;
    assert_ok(compile_n(twin, 4, &c2), ctx);
    assert_ptr_equal(c1, c2);
    assert_true(counter(ctx, "compiles") == 1);
    assert_true(counter(ctx, "cache_hits") == 1);
    assert_ok(compile_n(other, 4, &c3), ctx);
    assert_ptr_not_equal(c1, c3);
    assert_true(counter(ctx, "compiles") == 2);

    uint64_t rng = 3;
    double a[16], b[4], o1[3][4], o3[3][4];
    spd(&rng, 4, a, b);
    const double *in[2] = {a, b};
    double *out1[3] = {o1[0], o1[1], o1[2]}, *out3[3] = {o3[0], o3[1], o3[2]};
    assert_ok(sj_compiled_call(c2, in, out1), ctx);
    assert_ok(sj_compiled_call(c3, in, out3), ctx);
    assert_close(&o3[2][0], (double[]){o1[2][0] + 1.0}, 1, 1e-12, 1e-12);
    sj_compiled_free(c1);
    sj_compiled_free(c2);
    sj_compiled_free(c3);
    sj_fn_free(twin);
    sj_fn_free(other);
}

/* A transformed function is a different key from its base even with the same
 * input shapes; two identical transforms share their entry. */
static void test_transforms_are_distinct_keys(void **state)
{
    fixture *f = *state;
    sj_ctx *ctx = f->ctx;
    int wrt[1] = {1};
    sj_fn *g1 = NULL, *g2 = NULL;
    assert_ok(sj_grad(f->fn, 0, 1, wrt, &g1), ctx); /* d logdet A / d b = 0 */
    assert_ok(sj_grad(f->fn, 2, 1, wrt, &g2), ctx); /* d sum(2 exp(b/4)) / d b */
    sj_fn *g2b = NULL;
    assert_ok(sj_grad(f->fn, 2, 1, wrt, &g2b), ctx);
    sj_compiled *c0 = NULL, *c1 = NULL, *c2 = NULL, *c2b = NULL;
    assert_ok(compile_n(f->fn, 4, &c0), ctx);
    assert_ok(compile_n(g1, 4, &c1), ctx);
    assert_ok(compile_n(g2, 4, &c2), ctx);
    assert_ok(compile_n(g2b, 4, &c2b), ctx);
    assert_true(counter(ctx, "compiles") == 3);
    assert_true(counter(ctx, "cache_hits") == 1);
    assert_ptr_equal(c2, c2b);
    assert_ptr_not_equal(c0, c1);
    assert_ptr_not_equal(c1, c2);

    uint64_t rng = 17;
    double a[16], b[4], grad[4], want[4];
    spd(&rng, 4, a, b);
    const double *in[2] = {a, b};
    double *out[1] = {grad};
    assert_ok(sj_compiled_call(c2, in, out), ctx);
    for (int i = 0; i < 4; i++)
        want[i] = 0.5 * exp(b[i] / 4);
    assert_close(grad, want, 4, 1e-12, 1e-14);
    sj_compiled_free(c0);
    sj_compiled_free(c1);
    sj_compiled_free(c2);
    sj_compiled_free(c2b);
    sj_fn_free(g1);
    sj_fn_free(g2);
    sj_fn_free(g2b);
}

static void test_call_matches_eval(void **state)
{
    fixture *f = *state;
    sj_ctx *ctx = f->ctx;
    uint64_t rng = 11;
    for (int64_t n = 1; n <= 9; n += 4) {
        double *a = malloc((size_t)(n * n) * sizeof *a), *b = malloc((size_t)n * sizeof *b);
        double *x1 = malloc((size_t)n * sizeof *x1), *x2 = malloc((size_t)n * sizeof *x2);
        double *x3 = malloc((size_t)n * sizeof *x3);
        spd(&rng, n, a, b);
        sj_compiled *c = NULL, *ref = NULL;
        assert_ok(compile_n(f->fn, n, &c), ctx);
        int ranks[2] = {2, 1};
        int64_t dnn[2] = {n, n}, dn[1] = {n};
        const int64_t *dims[2] = {dnn, dn};
        assert_ok(sj_fn_specialize(f->fn, 2, ranks, dims, &ref), ctx);
        double ld1, ld2, ld3, s1, s2, s3;
        const double *in[2] = {a, b};
        double *o1[3] = {&ld1, x1, &s1}, *o2[3] = {&ld2, x2, &s2}, *o3[3] = {&ld3, x3, &s3};
        assert_ok(sj_compiled_call(c, in, o1), ctx);
        assert_ok(sj_compiled_eval(c, in, o2), ctx);   /* reference path on a compiled object */
        assert_ok(sj_compiled_eval(ref, in, o3), ctx);
        assert_close(&ld1, &ld2, 1, 1e-12, 1e-12);
        assert_close(x1, x2, (size_t)n, 1e-10, 1e-12);
        assert_close(&s1, &s2, 1, 1e-12, 1e-12);
        assert_close(&ld2, &ld3, 1, 0, 0);
        assert_close(x2, x3, (size_t)n, 0, 0);
        /* sj_fn_call gives the same. */
        double ld4, s4;
        assert_ok(call_n(f->fn, n, a, b, &ld4, x3, &s4), ctx);
        assert_close(&ld4, &ld1, 1, 0, 0);
        assert_close(x3, x1, (size_t)n, 0, 0);
        sj_compiled_free(c);
        sj_compiled_free(ref);
        free(a), free(b), free(x1), free(x2), free(x3);
    }
}

static void test_kernel_error_leaves_outputs(void **state)
{
    fixture *f = *state;
    sj_ctx *ctx = f->ctx;
    double a[9] = {1, 2, 0, 2, 1, 0, 0, 0, 1}; /* indefinite: eigenvalues 3, -1, 1 */
    double b[3] = {1, 2, 3};
    double ld = 123.0, x[3] = {4, 5, 6}, s = 7.0;
    sj_compiled *c = NULL;
    assert_ok(compile_n(f->fn, 3, &c), ctx);
    const double *in[2] = {a, b};
    double *out[3] = {&ld, x, &s};
    sj_status st = sj_compiled_call(c, in, out);
    assert_int_equal(st, SJ_ERR_NOT_POSITIVE_DEFINITE);
    const char *msg = sj_ctx_last_error(ctx);
    assert_true(strstr(msg, "cholesky") || strstr(msg, "logdet"));
    assert_true(ld == 123.0 && s == 7.0);
    assert_true(x[0] == 4 && x[1] == 5 && x[2] == 6);

    st = call_n(f->fn, 3, a, b, &ld, x, &s);
    assert_int_equal(st, SJ_ERR_NOT_POSITIVE_DEFINITE);
    assert_true(ld == 123.0 && s == 7.0 && x[0] == 4 && x[1] == 5 && x[2] == 6);

    /* The function still works afterwards. */
    double good[9] = {4, 1, 0, 1, 3, 0, 0, 0, 2};
    in[0] = good;
    assert_ok(sj_compiled_call(c, in, out), ctx);
    assert_close(&ld, (double[]){log(22.0)}, 1, 1e-12, 1e-12);
    sj_compiled_free(c);
}

static void test_singular_solve(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *nn[] = {"n", "n"}, *n[] = {"n"};
    sj_value a = sj_input(g, "A", 2, nn), b = sj_input(g, "b", 1, n);
    sj_value x = sj_solve(g, a, b);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, 1, &x, &fn), ctx);
    double am[4] = {1, 2, 2, 4}, bv[2] = {1, 1}, out[2] = {9, 9};
    int ranks[2] = {2, 1};
    int64_t d2[2] = {2, 2}, d1[1] = {2};
    const int64_t *dims[2] = {d2, d1};
    const double *in[2] = {am, bv};
    double *outs[1] = {out};
    sj_status st = sj_fn_call(fn, 2, ranks, dims, in, outs);
    assert_error(st, SJ_ERR_SINGULAR, ctx, "solve");
    assert_true(out[0] == 9 && out[1] == 9);
    sj_fn_free(fn);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* After a warm-up, a call makes no allocation through the library's
 * allocator: with every allocation set to fail, calls still succeed. */
static void test_steady_state_allocates_nothing(void **state)
{
    fixture *f = *state;
    sj_ctx *ctx = f->ctx;
    uint64_t rng = 5;
    double a[64], b[8], ld, x[8], s;
    spd(&rng, 8, a, b);
    sj_compiled *c = NULL;
    assert_ok(compile_n(f->fn, 8, &c), ctx);
    const double *in[2] = {a, b};
    double *out[3] = {&ld, x, &s};
    assert_ok(sj_compiled_call(c, in, out), ctx);
    assert_ok(call_n(f->fn, 8, a, b, &ld, x, &s), ctx);
    ir_alloc_fail_at(1);
    sj_status st1 = sj_compiled_call(c, in, out);
    sj_status st2 = call_n(f->fn, 8, a, b, &ld, x, &s);
    sj_status st3 = sj_compiled_call(c, in, out);
    ir_alloc_fail_at(0);
    assert_ok(st1, ctx);
    assert_ok(st2, ctx);
    assert_ok(st3, ctx);
    sj_compiled_free(c);
}

/* Runs a compile of a new shape with stderr captured; returns what it printed. */
static char *compile_capturing_stderr(sj_fn *fn, int64_t n)
{
    char path[] = "/tmp/sj_dump_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    sj_compiled *c = NULL;
    sj_status st = compile_n(fn, n, &c);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(st, SJ_OK);
    sj_compiled_free(c);
    off_t len = lseek(fd, 0, SEEK_END);
    char *text = calloc((size_t)len + 1, 1);
    assert_true(pread(fd, text, (size_t)len, 0) == len);
    close(fd);
    unlink(path);
    return text;
}

static void test_dump_and_introspection(void **state)
{
    fixture *f = *state;
    sj_ctx *ctx = f->ctx;
    setenv("SJ_DUMP", "graph,llvm", 1);
    char *text = compile_capturing_stderr(f->fn, 7);
    unsetenv("SJ_DUMP");
    assert_non_null(strstr(text, "graph(A: [7, 7], b: [7])"));
    assert_non_null(strstr(text, "define"));
    free(text);
    setenv("SJ_DUMP", "graph", 1);
    text = compile_capturing_stderr(f->fn, 8);
    unsetenv("SJ_DUMP");
    assert_non_null(strstr(text, "cholesky"));
    assert_null(strstr(text, "define"));
    free(text);
    text = compile_capturing_stderr(f->fn, 9); /* no SJ_DUMP: silent */
    assert_string_equal(text, "");
    free(text);

    sj_compiled *c = NULL;
    assert_ok(compile_n(f->fn, 7, &c), ctx);
    char *ll = sj_compiled_llvm_ir(c);
    assert_non_null(ll);
    assert_non_null(strstr(ll, "define"));
    sj_string_free(ll);
    char *gr = sj_compiled_print(c);
    assert_non_null(strstr(gr, "[7, 7]"));
    sj_string_free(gr);
    sj_compiled_free(c);
}

static void test_misuse(void **state)
{
    fixture *f = *state;
    sj_ctx *ctx = f->ctx;
    int ranks[2] = {2, 1};
    int64_t dnn[2] = {3, 3}, dn[1] = {3};
    const int64_t *dims[2] = {dnn, dn};
    sj_compiled *c = NULL;

    assert_int_equal(sj_fn_compile(NULL, 2, ranks, dims, &c), SJ_ERR_INVALID_ARGUMENT);
    assert_error(sj_fn_compile(f->fn, 2, ranks, dims, NULL), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "out is NULL");
    assert_error(sj_fn_compile(f->fn, 1, ranks, dims, &c), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "2 inputs, given 1");
    assert_null(c);
    assert_error(sj_fn_compile(f->fn, 2, NULL, dims, &c), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "ranks is NULL");
    assert_error(sj_fn_compile(f->fn, 2, ranks, NULL, &c), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "dims is NULL");
    int bad_ranks[2] = {1, 1};
    assert_error(sj_fn_compile(f->fn, 2, bad_ranks, dims, &c), SJ_ERR_SHAPE, ctx, "\"A\"");
    int huge[2] = {9, 1};
    assert_error(sj_fn_compile(f->fn, 2, huge, dims, &c), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "out of range");
    int64_t mism[1] = {4};
    const int64_t *dims_bad[2] = {dnn, mism};
    assert_error(sj_fn_compile(f->fn, 2, ranks, dims_bad, &c), SJ_ERR_SHAPE, ctx, "");
    assert_true(counter(ctx, "compiles") == 0);
    assert_true(counter(ctx, "cache_entries") == 0);

    double a[9] = {2, 0, 0, 0, 2, 0, 0, 0, 2}, b[3] = {1, 1, 1}, ld, x[3], s;
    const double *in[2] = {a, b};
    double *out[3] = {&ld, x, &s};
    assert_error(sj_fn_call(f->fn, 1, ranks, dims, in, out), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "sj_fn_call");
    assert_int_equal(sj_fn_call(NULL, 2, ranks, dims, in, out), SJ_ERR_INVALID_ARGUMENT);
    assert_error(sj_fn_call(f->fn, 2, ranks, dims, NULL, out), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "inputs is NULL");
    assert_error(sj_fn_call(f->fn, 2, ranks, dims, in, NULL), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "outputs is NULL");

    assert_ok(sj_fn_compile(f->fn, 2, ranks, dims, &c), ctx);
    assert_int_equal(sj_compiled_call(NULL, in, out), SJ_ERR_INVALID_ARGUMENT);
    assert_error(sj_compiled_call(c, NULL, out), SJ_ERR_INVALID_ARGUMENT, ctx, "inputs is NULL");
    assert_error(sj_compiled_call(c, in, NULL), SJ_ERR_INVALID_ARGUMENT, ctx, "outputs is NULL");
    const double *in_hole[2] = {a, NULL};
    assert_error(sj_compiled_call(c, in_hole, out), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "input \"b\" is NULL");
    double *out_hole[3] = {&ld, NULL, &s};
    assert_error(sj_compiled_call(c, in, out_hole), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "output 1 is NULL");
    assert_ok(sj_compiled_call(c, in, out), ctx);
    assert_close(&ld, (double[]){3 * log(2.0)}, 1, 1e-12, 1e-12);
    sj_compiled_free(c);

    /* A reference-only object has no native code. */
    sj_compiled *ref = NULL;
    assert_ok(sj_fn_specialize(f->fn, 2, ranks, dims, &ref), ctx);
    assert_error(sj_compiled_call(ref, in, out), SJ_ERR_INVALID_ARGUMENT, ctx, "sj_fn_compile");
    assert_null(sj_compiled_llvm_ir(ref));
    assert_null(sj_compiled_llvm_ir(NULL));
    sj_compiled_free(ref);

    double v = -1;
    assert_error(sj_ctx_counter(ctx, "nope", &v), SJ_ERR_UNKNOWN_NAME, ctx, "\"nope\"");
    assert_error(sj_ctx_counter(ctx, NULL, &v), SJ_ERR_INVALID_ARGUMENT, ctx, "name is NULL");
    assert_error(sj_ctx_counter(ctx, "compiles", NULL), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "value is NULL");
    assert_int_equal(sj_ctx_counter(NULL, "compiles", &v), SJ_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_compiles_once_per_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identical_functions_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transforms_are_distinct_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_matches_eval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kernel_error_leaves_outputs, setup, teardown),
        cmocka_unit_test(test_singular_solve),
        cmocka_unit_test_setup_teardown(test_steady_state_allocates_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_and_introspection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misuse, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
