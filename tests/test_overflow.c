/* Sizes whose products overflow are rejected, never wrapped: at
 * specialisation (an input of [2^40, 2^40] elements, or intermediates that
 * only grow past the limit, such as an outer product or a Kronecker product
 * of large vectors), when compiling, and at build time for a constant. */
#include "testutil.h"

#include <stdint.h>
#include <string.h>

static sj_fn *make(sj_ctx *ctx, int which)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *nm[] = {"n", "m"}, *n1[] = {"n"};
    sj_value out;
    if (which == 0) { /* an input that is itself too large */
        sj_value x = sj_input(g, "x", 2, nm);
        out = sj_sum_all(g, sj_exp(g, x));
    } else if (which == 1) { /* outer product of two 2^32-vectors: 2^64 */
        sj_value x = sj_input(g, "x", 1, n1);
        out = sj_sum_all(g, sj_outer(g, x, x));
    } else { /* kron of [2^24, 2^24] with itself: [2^48, 2^48] */
        sj_value x = sj_input(g, "x", 2, nm);
        out = sj_sum_all(g, sj_kron(g, x, x));
    }
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &fn), ctx);
    sj_graph_free(g);
    return fn;
}

static void expect_rejected(sj_ctx *ctx, sj_fn *fn, int rank, const int64_t *dims)
{
    const int64_t *d[1] = {dims};
    sj_compiled *c = NULL;
    sj_status st = sj_fn_specialize(fn, 1, &rank, d, &c);
    if (st == SJ_OK)
        fail_msg("specialised an overflowing size");
    assert_null(c);
    assert_true(st == SJ_ERR_SHAPE || st == SJ_ERR_INVALID_ARGUMENT);
    assert_true(strlen(sj_ctx_last_error(ctx)) > 0);
    st = sj_fn_compile(fn, 1, &rank, d, &c);
    assert_true(st == SJ_ERR_SHAPE || st == SJ_ERR_INVALID_ARGUMENT);
    assert_null(c);
}

static void test_input_too_large(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    sj_fn *fn = make(ctx, 0);
    const int64_t big[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    expect_rejected(ctx, fn, 2, big);
    const int64_t huge[2] = {INT64_MAX, 2};
    expect_rejected(ctx, fn, 2, huge);
    const int64_t neg[2] = {-1, 2};
    expect_rejected(ctx, fn, 2, neg);
    /* The function still works at a sane size. */
    const int64_t ok[2] = {2, 3};
    const int64_t *d[1] = {ok};
    int rank = 2;
    sj_compiled *c = NULL;
    assert_ok(sj_fn_specialize(fn, 1, &rank, d, &c), ctx);
    double x[6] = {0}, y = 0, *out[1] = {&y};
    const double *in[1] = {x};
    assert_ok(sj_compiled_eval(c, in, out), ctx);
    assert_true(y == 6.0);
    sj_compiled_free(c);
    sj_fn_free(fn);
    sj_ctx_free(ctx);
}

static void test_intermediate_too_large(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    sj_fn *outer = make(ctx, 1);
    const int64_t v32[1] = {(int64_t)1 << 32};
    expect_rejected(ctx, outer, 1, v32);
    sj_fn *kron = make(ctx, 2);
    const int64_t m24[2] = {(int64_t)1 << 24, (int64_t)1 << 24};
    expect_rejected(ctx, kron, 2, m24);
    sj_fn_free(outer);
    sj_fn_free(kron);
    sj_ctx_free(ctx);
}

/* Under a transform the shapes grow too: vmap of an outer product whose
 * unbatched result fits (2^42 elements) but whose batched one does not
 * (2^64).  (jacfwd/jacrev are not tested at such sizes: they emit one sweep
 * per element before the Jacobian's size is checked; see
 * docs/reliability.md.) */
static void test_transformed_too_large(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *n1[] = {"n"};
    sj_value x = sj_input(g, "x", 1, n1);
    sj_value o = sj_outer(g, x, x);
    sj_fn *fn = NULL, *vm = NULL;
    assert_ok(sj_fn_create(g, 1, &o, &fn), ctx);
    assert_ok(sj_vmap(fn, NULL, NULL, "b", &vm), ctx);
    const int64_t bn[2] = {(int64_t)1 << 22, (int64_t)1 << 21};
    expect_rejected(ctx, vm, 2, bn);
    sj_fn_free(vm);
    sj_fn_free(fn);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

static void test_constant_too_large(void **state)
{
    test_graph *f = *state;
    int64_t shape[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    double x = 0;
    assert_true(sj_constant(f->g, 2, shape, &x) == SJ_INVALID);
    assert_true(sj_graph_status(f->g) != SJ_OK);
}

static void test_builder_dims_too_large(void **state)
{
    test_graph *f = *state;
    const char *dims[] = {"99999999999999999999999", "3"};
    assert_true(sj_input(f->g, "x", 2, dims) == SJ_INVALID);
    assert_true(sj_graph_status(f->g) != SJ_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_too_large),
        cmocka_unit_test(test_intermediate_too_large),
        cmocka_unit_test(test_transformed_too_large),
        cmocka_unit_test_setup_teardown(test_constant_too_large, test_graph_setup,
                                        test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_builder_dims_too_large, test_graph_setup,
                                        test_graph_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
