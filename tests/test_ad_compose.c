/* Compositions of the transforms, their signatures and errors, and the
 * clean-up of transformed graphs:
 *   grad(grad(f)) and grad(grad(grad(f))) of scalar functions against closed
 *   forms (rtol 1e-12) or central differences of the lower derivative
 *   (rtol 1e-6);  jvp(grad(f)) = hvp(f) (1e-12);  jacfwd(jacrev(f)) =
 *   hessian(f) = jacrev(jacfwd(f)) (1e-12), symmetric;  jacfwd = jacrev on a
 *   vector function (1e-12);  ties of max and reduce_max;  DCE + CSE leave a
 *   known node count. */
#include "ad_check.h"
#include "runtime/handles.h"

static sj_ctx *ctx;

static int setup(void **state)
{
    return sj_ctx_create(&ctx) == SJ_OK ? 0 : -1;
}
static int teardown(void **state)
{
    sj_ctx_free(ctx);
    return 0;
}

/* The scalar output of f at scalar x (a one-input, one-output function). */
static double at(sj_fn *f, double x)
{
    val in = val_new(0, NULL), out[AD_MAX_OUT] = {{0}};
    in.data[0] = x;
    int n = ad_run(ctx, f, 1, &in, out);
    double r = out[0].data[0];
    ad_free_all(out, n);
    val_free(&in);
    return r;
}

typedef sj_value scalar_builder(sj_graph *g, sj_value x);

static sj_fn *scalar_fn(scalar_builder *build)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value x = sj_input(g, "x", 0, NULL);
    sj_value y = build(g, x);
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &y, &f), ctx);
    sj_graph_free(g);
    return f;
}

static sj_value x3exp(sj_graph *g, sj_value x)
{
    return sj_mul(g, sj_mul(g, sj_square(g, x), x), sj_exp(g, x));
}
static sj_value tanh_of(sj_graph *g, sj_value x) { return sj_tanh(g, x); }
/* logdet(A + x B) with A SPD, B symmetric. */
static sj_value logdet_line(sj_graph *g, sj_value x)
{
    int64_t d[2] = {3, 3};
    static const double a[9] = {4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2};
    static const double b[9] = {1, 0.3, -0.2, 0.3, -0.5, 0.4, -0.2, 0.4, 0.8};
    sj_value m = sj_add(g, sj_constant(g, 2, d, a), sj_mul(g, x, sj_constant(g, 2, d, b)));
    return sj_logdet(g, m);
}
static sj_value lgamma_of(sj_graph *g, sj_value x) { return sj_lgamma(g, sj_mul(g, x, x)); }

/* d^k/dx^k of f by k nested sj_grad calls; derivs[k] for k = 0..3. */
static void nested(sj_fn *f, sj_fn **derivs)
{
    derivs[0] = f;
    for (int k = 1; k <= 3; k++)
        assert_ok(sj_grad(derivs[k - 1], 0, 0, NULL, &derivs[k]), ctx);
}

static void test_grad_grad_closed_form(void **state)
{
    sj_fn *d[4];
    nested(scalar_fn(x3exp), d);
    const double xs[3] = {-0.7, 0.3, 1.2};
    for (int i = 0; i < 3; i++) {
        double x = xs[i], e = exp(x);
        double want[4] = {x * x * x * e, (3 * x * x + x * x * x) * e,
                          (6 * x + 6 * x * x + x * x * x) * e,
                          (6 + 18 * x + 9 * x * x + x * x * x) * e};
        for (int k = 0; k < 4; k++) {
            double got = at(d[k], x);
            assert_close(&got, &want[k], 1, 1e-12, 1e-14);
        }
    }
    for (int k = 0; k < 4; k++)
        sj_fn_free(d[k]);

    nested(scalar_fn(tanh_of), d);
    for (int i = 0; i < 3; i++) {
        double t = tanh(xs[i]);
        double want[4] = {t, 1 - t * t, -2 * t * (1 - t * t), (1 - t * t) * (6 * t * t - 2)};
        for (int k = 0; k < 4; k++) {
            double got = at(d[k], xs[i]);
            assert_close(&got, &want[k], 1, 1e-12, 1e-14);
        }
    }
    for (int k = 0; k < 4; k++)
        sj_fn_free(d[k]);
}

/* Third order through linear algebra and special functions, against central
 * differences of the second derivative (h = 1e-5: error O(h²)). */
static void test_third_order_fd(void **state)
{
    scalar_builder *fs[2] = {logdet_line, lgamma_of};
    for (int i = 0; i < 2; i++) {
        sj_fn *d[4];
        nested(scalar_fn(fs[i]), d);
        for (double x = 0.6; x < 1.5; x += 0.4) {
            double h = 1e-5;
            for (int k = 1; k <= 3; k++) {
                double fd = (at(d[k - 1], x + h) - at(d[k - 1], x - h)) / (2 * h);
                double got = at(d[k], x);
                assert_close(&got, &fd, 1, 1e-6, 1e-8);
            }
        }
        for (int k = 0; k < 4; k++)
            sj_fn_free(d[k]);
    }
}

/* f(x) = logdet(diag(exp(x)) + x xᵀ) + Σ x³, x of size n (symbolic). */
static sj_fn *vector_fn(int vector_output)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *n[] = {"n"};
    sj_value x = sj_input(g, "x", 1, n);
    sj_value m = sj_add(g, sj_diag_embed(g, sj_exp(g, x)), sj_outer(g, x, x));
    sj_value y;
    if (vector_output) /* y = M x + exp(x) */
        y = sj_add(g, sj_matmul(g, m, x), sj_exp(g, sj_mul(g, x, x)));
    else
        y = sj_add(g, sj_logdet(g, m), sj_sum_all(g, sj_mul(g, sj_square(g, x), x)));
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &y, &f), ctx);
    sj_graph_free(g);
    return f;
}

static val vec(size_t n, double start, double step)
{
    int64_t d = (int64_t)n;
    val v = val_new(1, &d);
    for (size_t i = 0; i < n; i++)
        v.data[i] = start + step * (double)i;
    return v;
}

static void test_jvp_of_grad_is_hvp(void **state)
{
    sj_fn *f = vector_fn(0), *g = NULL, *jg = NULL, *h = NULL;
    assert_ok(sj_grad(f, 0, 0, NULL, &g), ctx);
    assert_ok(sj_jvp(g, 0, NULL, &jg), ctx);
    assert_ok(sj_hvp(f, 0, 0, NULL, &h), ctx);
    int idx = -1;
    assert_ok(sj_fn_input_index(jg, "tangent:x", &idx), ctx);
    assert_int_equal(idx, 1);
    val in[2] = {vec(4, -0.4, 0.3), vec(4, 0.7, -0.5)}, a[AD_MAX_OUT], b[AD_MAX_OUT];
    assert_int_equal(ad_run(ctx, jg, 2, in, a), 2);
    assert_int_equal(ad_run(ctx, h, 2, in, b), 1);
    assert_close(a[1].data, b[0].data, 4, 1e-12, 1e-14);
    ad_free_all(a, 2);
    ad_free_all(b, 1);
    ad_free_all(in, 2);
    sj_fn_free(f);
    sj_fn_free(g);
    sj_fn_free(jg);
    sj_fn_free(h);
}

static void test_jacfwd_jacrev_is_hessian(void **state)
{
    sj_fn *f = vector_fn(0), *jr = NULL, *jfjr = NULL, *jf = NULL, *jrjf = NULL, *hs = NULL;
    assert_ok(sj_jacrev(f, 0, 0, NULL, &jr), ctx);
    assert_ok(sj_jacfwd(jr, 0, 0, NULL, &jfjr), ctx);
    assert_ok(sj_jacfwd(f, 0, 0, NULL, &jf), ctx);
    assert_ok(sj_jacrev(jf, 0, 0, NULL, &jrjf), ctx);
    assert_ok(sj_hessian(f, 0, 0, NULL, &hs), ctx);
    val x = vec(5, -0.6, 0.25), a[AD_MAX_OUT], b[AD_MAX_OUT], c[AD_MAX_OUT];
    ad_run(ctx, jfjr, 1, &x, a);
    ad_run(ctx, jrjf, 1, &x, b);
    ad_run(ctx, hs, 1, &x, c);
    assert_int_equal(c[0].rank, 2);
    assert_int_equal(c[0].dim[0], 5);
    assert_int_equal(c[0].dim[1], 5);
    assert_close(a[0].data, c[0].data, 25, 1e-12, 1e-13);
    assert_close(b[0].data, c[0].data, 25, 1e-12, 1e-13);
    for (int i = 0; i < 5; i++) /* symmetric */
        for (int j = 0; j < i; j++)
            assert_close(&c[0].data[i * 5 + j], &c[0].data[j * 5 + i], 1, 1e-12, 1e-13);
    ad_free_all(a, 1);
    ad_free_all(b, 1);
    ad_free_all(c, 1);
    val_free(&x);
    sj_fn_free(f);
    sj_fn_free(jr);
    sj_fn_free(jfjr);
    sj_fn_free(jf);
    sj_fn_free(jrjf);
    sj_fn_free(hs);
}

static void test_jacfwd_equals_jacrev(void **state)
{
    sj_fn *f = vector_fn(1), *jf = NULL, *jr = NULL;
    assert_ok(sj_jacfwd(f, 0, 0, NULL, &jf), ctx);
    assert_ok(sj_jacrev(f, 0, 0, NULL, &jr), ctx);
    val x = vec(4, 0.1, 0.2), a[AD_MAX_OUT], b[AD_MAX_OUT];
    ad_run(ctx, jf, 1, &x, a);
    ad_run(ctx, jr, 1, &x, b);
    assert_int_equal(a[0].rank, 2);
    assert_close(a[0].data, b[0].data, 16, 1e-12, 1e-13);
    /* Column j is the jvp along e_j. */
    sj_fn *fj = NULL;
    assert_ok(sj_jvp(f, 0, NULL, &fj), ctx);
    for (int j = 0; j < 4; j++) {
        val in[2] = {x, vec(4, 0, 0)}, o[AD_MAX_OUT];
        in[1].data[j] = 1;
        ad_run(ctx, fj, 2, in, o);
        for (int i = 0; i < 4; i++)
            assert_close(&o[1].data[i], &a[0].data[i * 4 + j], 1, 1e-12, 1e-13);
        ad_free_all(o, 2);
        val_free(&in[1]);
    }
    ad_free_all(a, 1);
    ad_free_all(b, 1);
    val_free(&x);
    sj_fn_free(f);
    sj_fn_free(jf);
    sj_fn_free(jr);
    sj_fn_free(fj);
}

/* Ties: max(x, x) and reduce_max over equal entries share the derivative. */
static void test_ties(void **state)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *d3[] = {"3"};
    sj_value x = sj_input(g, "x", 1, d3);
    sj_value both = sj_concat(g, 2, (sj_value[]){x, x}, 0);
    int axis = 0;
    sj_value y = sj_add(g, sj_sum_all(g, sj_max(g, x, x)), sj_reduce_max(g, both, 1, &axis));
    sj_fn *f = NULL, *gr = NULL;
    assert_ok(sj_fn_create(g, 1, &y, &f), ctx);
    assert_ok(sj_grad(f, 0, 0, NULL, &gr), ctx);
    val in = vec(3, 0.5, -1), out[AD_MAX_OUT]; /* maximum 0.5 at x[0], twice in both */
    ad_run(ctx, gr, 1, &in, out);
    /* max(x, x): 1/2 + 1/2 = 1 each;  reduce_max: the two copies of x[0] get
     * 1/2 each, and both belong to x[0]. */
    double want[3] = {2, 1, 1};
    assert_close(out[0].data, want, 3, 1e-15, 0);
    ad_free_all(out, 1);
    val_free(&in);
    sj_fn_free(f);
    sj_fn_free(gr);
    sj_graph_free(g);
}

static void test_signatures_and_errors(void **state)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *nd[] = {"n"};
    sj_value x = sj_input(g, "x", 1, nd);
    sj_value s = sj_input(g, "s", 0, NULL);
    sj_value outs[2] = {sj_mul(g, x, s), sj_sum_all(g, sj_exp(g, x))};
    sj_fn *f = NULL, *t = NULL;
    assert_ok(sj_fn_create(g, 2, outs, &f), ctx);

    /* grad of a vector output: the message names its shape. */
    assert_error(sj_grad(f, 0, 0, NULL, &t), SJ_ERR_SHAPE, ctx, "[n]");
    assert_null(t);
    assert_error(sj_hessian(f, 0, 0, NULL, &t), SJ_ERR_SHAPE, ctx, "[n]");
    assert_error(sj_hvp(f, 0, 0, NULL, &t), SJ_ERR_SHAPE, ctx, "scalar");
    assert_error(sj_grad(f, 2, 0, NULL, &t), SJ_ERR_INVALID_ARGUMENT, ctx, "output 2");
    assert_error(sj_grad(f, -1, 0, NULL, &t), SJ_ERR_INVALID_ARGUMENT, ctx, "output -1");
    int bad = 5, twice[2] = {0, 0};
    assert_error(sj_grad(f, 1, 1, &bad, &t), SJ_ERR_INVALID_ARGUMENT, ctx, "not an input");
    assert_error(sj_jvp(f, 2, twice, &t), SJ_ERR_INVALID_ARGUMENT, ctx, "twice");
    assert_error(sj_vjp(f, 1, NULL, &t), SJ_ERR_INVALID_ARGUMENT, ctx, "NULL");
    int idx[2];
    assert_error(sj_fn_input_indices(f, 1, (const char *[]){"nope"}, idx), SJ_ERR_UNKNOWN_NAME, ctx,
                 "nope");
    assert_ok(sj_fn_input_indices(f, 2, (const char *[]){"s", "x"}, idx), ctx);
    assert_int_equal(idx[0], 1);
    assert_int_equal(idx[1], 0);

    /* Signatures: jvp adds tangents, vjp cotangents; names stay unique. */
    sj_fn *j1 = NULL, *j2 = NULL, *v1 = NULL, *gr = NULL;
    assert_ok(sj_jvp(f, 1, &idx[1], &j1), ctx);
    assert_int_equal(sj_fn_ninput(j1), 3);
    assert_int_equal(sj_fn_noutput(j1), 4);
    int p = -1, rank = -1;
    assert_ok(sj_fn_input_index(j1, "tangent:x", &p), ctx);
    assert_int_equal(p, 2);
    assert_ok(sj_fn_input_rank(j1, 2, &rank), ctx);
    assert_int_equal(rank, 1);
    assert_ok(sj_jvp(j1, 1, &idx[1], &j2), ctx);
    assert_ok(sj_fn_input_index(j2, "tangent:x.2", &p), ctx);
    assert_int_equal(p, 3);
    assert_int_equal(sj_fn_noutput(j2), 8);
    assert_ok(sj_vjp(f, 0, NULL, &v1), ctx);
    assert_int_equal(sj_fn_ninput(v1), 4);
    assert_int_equal(sj_fn_noutput(v1), 2);
    assert_ok(sj_fn_input_index(v1, "cotangent:1", &p), ctx);
    assert_int_equal(p, 3);
    assert_ok(sj_fn_input_rank(v1, 3, &rank), ctx);
    assert_int_equal(rank, 0);
    assert_ok(sj_value_and_grad(f, 1, 0, NULL, &gr), ctx);
    assert_int_equal(sj_fn_noutput(gr), 3);

    /* A tangent of the wrong size is a shape error at specialisation. */
    int ranks[3] = {1, 0, 1};
    int64_t n3[1] = {3}, n4[1] = {4};
    const int64_t *dims[3] = {n3, NULL, n4};
    sj_compiled *c = NULL;
    assert_error(sj_fn_specialize(j1, 3, ranks, dims, &c), SJ_ERR_SHAPE, ctx, "tangent:x");
    dims[2] = n3;
    assert_ok(sj_fn_specialize(j1, 3, ranks, dims, &c), ctx);
    sj_compiled_free(c);

    /* value_and_grad: value first; the derivative in x of Σ exp(x) is exp(x). */
    val in[2] = {vec(3, 0.1, 0.4), val_new(0, NULL)}, o[AD_MAX_OUT];
    in[1].data[0] = 2.0;
    ad_run(ctx, gr, 2, in, o);
    double sum = 0;
    for (int i = 0; i < 3; i++) {
        double e = exp(in[0].data[i]);
        sum += e;
        assert_close(&o[1].data[i], &e, 1, 1e-15, 0);
    }
    assert_close(&o[0].data[0], &sum, 1, 1e-15, 0);
    assert_true(o[2].data[0] == 0.0); /* s does not enter output 1 */
    ad_free_all(o, 3);
    ad_free_all(in, 2);
    sj_fn_free(j1);
    sj_fn_free(j2);
    sj_fn_free(v1);
    sj_fn_free(gr);
    sj_fn_free(f);
    sj_graph_free(g);
}

/* f(x, y) = Σ exp(x) + Σ exp(x), built with two exp nodes, y unused.  After
 * grad in x, DCE drops the primal sums and the add, CSE merges the exps and
 * the sums: x, y, exp(x), 1.0, 1 + 1, broadcast, mul = 7 nodes. */
static void test_cleanup_node_count(void **state)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *nd[] = {"n"};
    sj_value x = sj_input(g, "x", 1, nd);
    sj_input(g, "y", 1, nd);
    sj_value y = sj_add(g, sj_sum_all(g, sj_exp(g, x)), sj_sum_all(g, sj_exp(g, x)));
    sj_fn *f = NULL, *gr = NULL;
    assert_ok(sj_fn_create(g, 1, &y, &f), ctx);
    int wrt = 0;
    assert_ok(sj_grad(f, 0, 1, &wrt, &gr), ctx);
    int ranks[2] = {1, 1};
    int64_t n[1] = {6};
    const int64_t *dims[2] = {n, n};
    sj_compiled *c = NULL;
    assert_ok(sj_fn_specialize(gr, 2, ranks, dims, &c), ctx);
    if (c->ir->nnode != 7) {
        char *text = sj_compiled_print(c);
        print_error("%s", text);
        sj_string_free(text);
    }
    assert_int_equal(c->ir->nnode, 7);
    sj_compiled_free(c);
    sj_fn_free(f);
    sj_fn_free(gr);
    sj_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_grad_closed_form),
        cmocka_unit_test(test_third_order_fd),
        cmocka_unit_test(test_jvp_of_grad_is_hvp),
        cmocka_unit_test(test_jacfwd_jacrev_is_hessian),
        cmocka_unit_test(test_jacfwd_equals_jacrev),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_signatures_and_errors),
        cmocka_unit_test(test_cleanup_node_count),
    };
    return cmocka_run_group_tests_name("ad_compose", tests, setup, teardown);
}
