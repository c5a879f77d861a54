/* Covariance tree parameters: every transform and chains of them (values,
 * inverses, and dV/dθ = f'(θ) I through a σ² I leaf), hierarchical names,
 * fixed parameters, initial values, sealing, and the error messages. */
#include "cov_check.h"

typedef struct tcase {
    const char *what;
    sj_transform t;
    double x, y, dy; /* raw, natural value, derivative */
} tcase;

static void test_transforms(void **state)
{
    double s = cov_sigmoid(0.3);
    tcase cases[] = {
        {"identity", sj_transform_identity(), 0.3, 0.3, 1},
        {"exp", sj_transform_exp(), 0.3, exp(0.3), exp(0.3)},
        {"exp2", sj_transform_exp2(), 0.3, exp(0.6), 2 * exp(0.6)},
        {"sigmoid", sj_transform_sigmoid(), 0.3, s, s * (1 - s)},
        {"sigmoid_range", sj_transform_sigmoid_range(-2, 3), 0.3, -2 + 5 * s, 5 * s * (1 - s)},
        {"scale_shift", sj_transform_scale_shift(-3, 1), 0.3, 0.1, -3},
        {"power", sj_transform_power(2.5), 0.3, pow(0.3, 2.5), 2.5 * pow(0.3, 1.5)},
        /* exp then power(2): exp(2x), as exp2. */
        {"exp then power", sj_transform_then(sj_transform_exp(), sj_transform_power(2)), 0.3,
         exp(0.6), 2 * exp(0.6)},
        /* sigmoid then scale_shift(2, -1): torch_openreml's AR1 ρ. */
        {"sigmoid then scale_shift",
         sj_transform_then(sj_transform_sigmoid(), sj_transform_scale_shift(2, -1)), 0.3,
         2 * s - 1, 2 * s * (1 - s)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tcase *c = &cases[i];
        double y = sj_transform_apply(&c->t, c->x), x;
        assert_close(&y, &c->y, 1, 1e-14, 1e-15);
        assert_ok(sj_transform_inverse(&c->t, c->y, &x), NULL);
        assert_close(&x, &c->x, 1, 1e-12, 1e-14);
        /* dV/dθ of σ² I with this transform. */
        sj_ctx *ctx = NULL;
        sj_graph *g = NULL;
        assert_ok(sj_ctx_create(&ctx), NULL);
        assert_ok(sj_graph_create(ctx, &g), ctx);
        const char *d1[] = {"1"};
        sj_value th = sj_input(g, "theta", 1, d1);
        sj_cov *cov = sj_cov_scalar(g, c->what, "2", c->y, c->t);
        assert_non_null(cov);
        double init;
        assert_ok(sj_cov_init(cov, &init, 1), ctx);
        assert_close(&init, &c->x, 1, 1e-12, 1e-14);
        double want[4] = {c->y, 0, 0, c->y}, j[4] = {c->dy, 0, 0, c->dy};
        val in = cov_vec(1, &c->x);
        cov_check(ctx, g, cov, th, 1, &in, 2, 2, want, j, 1e-13);
        val_free(&in);
        sj_graph_free(g);
        sj_ctx_free(ctx);
        print_message("transform %-26s ok\n", c->what);
    }
    (void)state;
}

static void test_transform_domains(void **state)
{
    double x;
    sj_transform e = sj_transform_exp(), sr = sj_transform_sigmoid_range(-1, 1);
    assert_int_equal(sj_transform_inverse(&e, -1, &x), SJ_ERR_DOMAIN);
    assert_int_equal(sj_transform_inverse(&sr, 1, &x), SJ_ERR_DOMAIN);
    sj_transform bad = sj_transform_sigmoid_range(1, -1);
    assert_int_equal(sj_transform_inverse(&bad, 0, &x), SJ_ERR_INVALID_ARGUMENT);
    assert_true(isnan(sj_transform_apply(&bad, 0)));
    sj_transform longc = sj_transform_exp();
    for (int i = 0; i < 4; i++)
        longc = sj_transform_then(longc, sj_transform_exp());
    assert_true(longc.nstep < 0);
    sj_transform zero = {0};
    assert_true(sj_transform_apply(&zero, 1.25) == 1.25);
    (void)state;
}

/* Fixed parameters are constants; the free ones keep their order; names
 * follow the named operators only. */
static void test_fixed_and_names(void **state)
{
    test_graph *f = *state;
    const char *d2[] = {"2"};
    sj_value th = sj_input(f->g, "theta", 1, d2);
    sj_cov *cs = sj_cov_compound_symmetric(f->g, "cs", 3);
    sj_cov *d = sj_cov_diagonal(f->g, "d", 3, 2.0, sj_transform_exp());
    assert_ok(sj_cov_fix(cs, "rho", 0.25), f->ctx);
    assert_ok(sj_cov_fix(d, "sigma2_0", 0.5), f->ctx);
    assert_ok(sj_cov_fix(d, "sigma2_2", 0.75), f->ctx);
    assert_ok(sj_cov_set_init(cs, "sigma2", 4.0), f->ctx);
    sj_cov *kids[2] = {cs, d};
    sj_cov *inner = sj_cov_sum(f->g, NULL, 2, kids);
    sj_cov *root = sj_cov_sum(f->g, "R", 1, &inner);
    assert_int_equal(sj_cov_nparam(root), 2);
    assert_string_equal(sj_cov_param_name(root, 0), "R/cs/sigma2");
    assert_string_equal(sj_cov_param_name(root, 1), "R/d/sigma2_1");
    assert_null(sj_cov_param_name(root, 2));
    assert_error(SJ_ERR_INVALID_ARGUMENT, SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "parameter 2 is out of range (node 'R' has 2 free parameters)");
    int idx;
    assert_error(sj_cov_param_index(root, "R/d/sigma2_0", &idx), SJ_ERR_UNKNOWN_NAME, f->ctx,
                 "no free parameter 'R/d/sigma2_0'");
    sj_transform t;
    assert_ok(sj_cov_param_transform(root, 0, &t), f->ctx);
    assert_int_equal(t.nstep, 1);
    assert_int_equal(t.step[0].kind, SJ_TRANSFORM_EXP2);
    double init[2];
    assert_ok(sj_cov_init(root, init, 2), f->ctx);
    assert_close(&init[0], &(double){log(2.0)}, 1, 1e-15, 0);
    assert_close(&init[1], &(double){log(2.0)}, 1, 1e-15, 0);
    double raw[2] = {0.1, -0.2}, s2 = exp(0.2), want[9] = {0}, j[18] = {0};
    double dd[3] = {0.5, exp(-0.2), 0.75};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            want[3 * a + b] = s2 * (a == b ? 1 : 0.25) + (a == b ? dd[a] : 0);
            JAC(j, 3, 2, a, b, 0) = 2 * s2 * (a == b ? 1 : 0.25);
        }
    JAC(j, 3, 2, 1, 1, 1) = exp(-0.2);
    val in = cov_vec(2, raw);
    cov_check(f->ctx, f->g, root, th, 1, &in, 3, 3, want, j, 1e-13);
    val_free(&in);
    /* Sealed now. */
    assert_error(sj_cov_fix(d, "sigma2_1", 1.0), SJ_ERR_INVALID_ARGUMENT, f->ctx, "node 'd' is sealed");
}

static void test_constructor_errors(void **state)
{
    test_graph *f = *state;
    sj_graph *g = f->g;
    assert_null(sj_cov_diagonal(g, "d", 0, 1.0, sj_transform_exp()));
    assert_error(sj_graph_status(g), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "sj_cov_diagonal: node 'd': dim 0 is outside 1..");
    /* Sticky: later constructors return NULL quietly. */
    assert_null(sj_cov_scalar(g, "s", "3", 1.0, sj_transform_exp()));
    assert_error(sj_graph_status(g), SJ_ERR_INVALID_ARGUMENT, f->ctx, "sj_cov_diagonal");
}

typedef sj_cov *(*make_fn)(sj_graph *g, sj_ctx *ctx);

static sj_cov *bad_init(sj_graph *g, sj_ctx *ctx) { return sj_cov_scalar(g, "s", "3", -1.0, sj_transform_exp()); }
static sj_cov *bad_transform(sj_graph *g, sj_ctx *ctx)
{
    return sj_cov_scalar(g, "s", "3", 1.0, sj_transform_scale_shift(0, 1));
}
static sj_cov *bad_dim(sj_graph *g, sj_ctx *ctx) { return sj_cov_identity(g, "I", "?"); }
static sj_cov *slash_name(sj_graph *g, sj_ctx *ctx) { return sj_cov_ar1(g, "a/b", 3); }
static sj_cov *equi_one(sj_graph *g, sj_ctx *ctx) { return sj_cov_equicorrelation(g, "e", 1); }
static sj_cov *lower_wide(sj_graph *g, sj_ctx *ctx) { return sj_cov_lower_triangular(g, "L", 2, 3); }
static sj_cov *null_child(sj_graph *g, sj_ctx *ctx)
{
    sj_cov *kids[2] = {sj_cov_identity(g, "I", "3"), NULL};
    return sj_cov_sum(g, "S", 2, kids);
}
static sj_cov *sum_shapes(sj_graph *g, sj_ctx *ctx)
{
    sj_cov *kids[2] = {sj_cov_identity(g, "I", "3"), sj_cov_identity(g, "J", "4")};
    return sj_cov_sum(g, "S", 2, kids);
}
static sj_cov *propagate_shapes(sj_graph *g, sj_ctx *ctx)
{
    const char *dz[] = {"5", "2"};
    return sj_cov_propagate(g, "P", sj_cov_fixed(g, "Z", sj_input(g, "Z", 2, dz)),
                            sj_cov_unstructured(g, "G", 3));
}
static sj_cov *hadamard_shapes(sj_graph *g, sj_ctx *ctx)
{
    return sj_cov_hadamard(g, "H", sj_cov_ar1(g, "A", 3), sj_cov_ar1(g, "B", 2));
}
static sj_cov *gram_kind(sj_graph *g, sj_ctx *ctx)
{
    return sj_cov_gram(g, "G", sj_cov_identity(g, "I", "2"), (sj_gram)7);
}
static sj_cov *fixed_rank(sj_graph *g, sj_ctx *ctx)
{
    const char *d[] = {"3"};
    return sj_cov_fixed(g, "K", sj_input(g, "k", 1, d));
}
static sj_cov *dummy_names_symbolic(sj_graph *g, sj_ctx *ctx)
{
    const char *d[] = {"n"}, *lv[] = {"a"};
    return sj_cov_dummy(g, "Z", sj_input(g, "c", 1, d), "m", lv);
}
static sj_cov *interaction_of_fixed(sj_graph *g, sj_ctx *ctx)
{
    const char *d[] = {"n"}, *dm[] = {"n", "2"};
    sj_cov *a = sj_cov_dummy(g, "A", sj_input(g, "c", 1, d), "2", NULL);
    return sj_cov_dummy_interaction(g, "AB", a, sj_cov_fixed(g, "M", sj_input(g, "m", 2, dm)));
}
static sj_cov *other_graph_child(sj_graph *g, sj_ctx *ctx)
{
    sj_graph *h = NULL;
    sj_graph_create(ctx, &h);
    sj_cov *foreign = sj_cov_identity(h, "I", "2");
    sj_cov *r = sj_cov_kron(g, "K", foreign, foreign);
    sj_graph_free(h);
    return r;
}

static void test_error_messages(void **state)
{
    struct {
        make_fn make;
        sj_status st;
        const char *fragment;
    } cases[] = {
        {bad_init, SJ_ERR_DOMAIN, "sj_cov_scalar: node 's', parameter 'sigma2': initial value -1 is outside the range of its transform exp"},
        {bad_transform, SJ_ERR_INVALID_ARGUMENT, "scale_shift needs a finite, non-zero scale"},
        {bad_dim, SJ_ERR_INVALID_ARGUMENT, "sj_cov_identity: node 'I': dim must be a dimension name or a size, got \"?\""},
        {slash_name, SJ_ERR_INVALID_ARGUMENT, "node name 'a/b' contains '/'"},
        {equi_one, SJ_ERR_INVALID_ARGUMENT, "sj_cov_equicorrelation: node 'e': dim 1 is outside 2..4096"},
        {lower_wide, SJ_ERR_INVALID_ARGUMENT, "node 'L': cols 3 is outside 1..2"},
        {null_child, SJ_ERR_INVALID_ARGUMENT, "sj_cov_sum: child 1 is NULL"},
        {sum_shapes, SJ_ERR_SHAPE, "sj_cov_sum: node 'S': terms of different shapes: node 'I' is [3, 3] and node 'J' is [4, 4]"},
        {propagate_shapes, SJ_ERR_SHAPE, "columns of Z and rows of G differ: node 'Z' is [5, 2] and node 'G' is [3, 3]"},
        {hadamard_shapes, SJ_ERR_SHAPE, "factors of different shapes"},
        {gram_kind, SJ_ERR_INVALID_ARGUMENT, "unknown sj_gram 7"},
        {fixed_rank, SJ_ERR_SHAPE, "sj_cov_fixed: node 'K': matrix must have rank 2, got shape [3]"},
        {dummy_names_symbolic, SJ_ERR_INVALID_ARGUMENT, "level names need a decimal nlevels"},
        {interaction_of_fixed, SJ_ERR_INVALID_ARGUMENT, "b (node 'M') must be a dummy node"},
        {other_graph_child, SJ_ERR_INVALID_ARGUMENT, "sj_cov_kron: child 0 (node 'I') belongs to another graph"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sj_ctx *ctx = NULL;
        sj_graph *g = NULL;
        assert_ok(sj_ctx_create(&ctx), NULL);
        assert_ok(sj_graph_create(ctx, &g), ctx);
        assert_null(cases[i].make(g, ctx));
        print_message("%s\n", sj_ctx_last_error(ctx));
        assert_error(sj_graph_status(g), cases[i].st, ctx, cases[i].fragment);
        sj_graph_free(g);
        sj_ctx_free(ctx);
    }
    (void)state;
}

static void test_setter_and_build_errors(void **state)
{
    test_graph *f = *state;
    sj_graph *g = f->g;
    sj_cov *a = sj_cov_ar1(g, "A", 3);
    assert_error(sj_cov_set_init(a, "phi", 0.5), SJ_ERR_UNKNOWN_NAME, f->ctx,
                 "node 'A' has no parameter 'phi' (it has: sigma2, rho)");
    sj_graph_free(g);
    assert_ok(sj_graph_create(f->ctx, &f->g), f->ctx);
    g = f->g;
    a = sj_cov_ar1(g, "A", 3);
    assert_error(sj_cov_set_init(a, "rho", 1.5), SJ_ERR_DOMAIN, f->ctx,
                 "initial value 1.5 is outside the range of its transform sigmoid_range(-1, 1)");
    sj_graph_free(g);
    assert_ok(sj_graph_create(f->ctx, &f->g), f->ctx);
    g = f->g;
    /* Duplicate full names. */
    sj_cov *kids[2] = {sj_cov_scalar(g, "s", "2", 1, sj_transform_exp()),
                       sj_cov_scalar(g, "s", "2", 1, sj_transform_exp())};
    sj_cov *sum = sj_cov_sum(g, "V", 2, kids);
    assert_int_equal(sj_cov_nparam(sum), -1);
    assert_error(sj_graph_status(g), SJ_ERR_INVALID_ARGUMENT, f->ctx,
                 "two free parameters (0 and 1) of the tree under node 'V' are named 'V/s/sigma2'");
    sj_graph_free(g);
    assert_ok(sj_graph_create(f->ctx, &f->g), f->ctx);
    g = f->g;
    /* θ of the wrong length. */
    const char *d3[] = {"3"};
    sj_value th = sj_input(g, "theta", 1, d3);
    sj_cov *u = sj_cov_unstructured(g, "U", 3);
    sj_value v;
    sj_cov *root = sj_cov_sum(g, "M", 1, &u);
    assert_error(sj_cov_build(root, th, &v), SJ_ERR_SHAPE, f->ctx,
                 "sj_cov_build: theta must be a vector of the 6 free parameters of node 'M', got shape [3]");
    assert_int_equal(v, SJ_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transforms),
        cmocka_unit_test(test_transform_domains),
        cmocka_unit_test_setup_teardown(test_fixed_and_names, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_constructor_errors, test_graph_setup, test_graph_teardown),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test_setup_teardown(test_setter_and_build_errors, test_graph_setup, test_graph_teardown),
    };
    return cmocka_run_group_tests_name("cov_params", tests, NULL, NULL);
}
