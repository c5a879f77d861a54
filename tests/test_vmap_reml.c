/* vmap of a REML gradient written the way bench/bench_vmap.c (and a user)
 * writes it: V = g1·Z1Z1ᵀ + g2·Z2Z2ᵀ + s2·I with Z1 = one_hot(codes),
 * Z2 = Z1 ⊙ days, each variance a scalar times a Gram matrix.
 *   - the Woodbury rewrite recognises the scaled terms `s · Z Zᵀ` (and a
 *     dense Z): rewritten against dense value, gradient and Hessian to 1e-10
 *     relative to the largest entry of each (test_structure_check.h);
 *   - vmap(value_and_grad(f)) compiled natively equals the single compiled
 *     function called per item, to 1e-12 relative (an entry's error over the
 *     largest entry of its item's output, as in st_compare: the gradient
 *     entries are sums of terms 10³ times larger, so an entry near zero is
 *     compared on its terms' scale);
 *   - the codegen paths this graph takes under vmap: split elementwise loops
 *     (a batched scalar times a shared matrix), tiny Cholesky factors and
 *     solves unrolled in place (2 × 2 and 4 × 4 blocks), and the batched
 *     matmul with a column operand, natively against the evaluator to
 *     1e-12. */
#include "test_structure_check.h"

enum { N = 40, GROUP = 8, Q = N / GROUP, P = 2 };

static const char *dn[] = {"n"};

/* f(theta, y, X, days, codes) as bench/bench_vmap.c builds it. */
static sj_fn *reml_fn(sj_ctx *ctx, int scale_right)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *d3[] = {"3"}, *dx[] = {"n", "2"};
    sj_value theta = sj_input(g, "theta", 1, d3), y = sj_input(g, "y", 1, dn),
             x = sj_input(g, "X", 2, dx), days = sj_input(g, "days", 1, dn),
             codes = sj_input(g, "codes", 1, dn);
    sj_value t = sj_exp(g, theta);
    const char *scalar[] = {NULL}, *col[] = {"n", "1"};
    sj_value g1 = sj_reshape(g, sj_slice(g, t, 0, 0, 1), 0, scalar);
    sj_value g2 = sj_reshape(g, sj_slice(g, t, 0, 1, 2), 0, scalar);
    sj_value s2 = sj_reshape(g, sj_slice(g, t, 0, 2, 3), 0, scalar);
    char nclass[16];
    snprintf(nclass, sizeof nclass, "%d", Q);
    sj_value z1 = sj_one_hot(g, codes, nclass);
    sj_value z2 = sj_mul(g, z1, sj_reshape(g, days, 2, col));
    sj_value k1 = sj_matmul(g, z1, sj_mT(g, z1)), k2 = sj_matmul(g, z2, sj_mT(g, z2));
    sj_value t1 = scale_right ? sj_mul(g, k1, g1) : sj_mul(g, g1, k1);
    sj_value t2 = scale_right ? sj_mul(g, k2, g2) : sj_mul(g, g2, k2);
    sj_value v = sj_add(g, sj_add(g, t1, t2), sj_mul(g, s2, sj_eye(g, "n")));
    sj_value l = sj_cholesky(g, v);
    sj_value vinv_x = sj_cholesky_solve(g, l, x), vinv_y = sj_cholesky_solve(g, l, y);
    sj_value xtvx = sj_matmul(g, sj_mT(g, x), vinv_x), b = sj_matmul(g, sj_mT(g, x), vinv_y);
    sj_value coef = sj_cholesky_solve(g, sj_cholesky(g, xtvx), b);
    sj_value ypy = sj_sub(g, sj_sum_all(g, sj_mul(g, y, vinv_y)), sj_sum_all(g, sj_mul(g, b, coef)));
    sj_value f = sj_add(g, sj_add(g, sj_logdet(g, v), sj_logdet(g, xtvx)), ypy);
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, 1, &f, &fn), ctx);
    sj_graph_free(g);
    return fn;
}

/* Inputs of one item (theta, y) and the shared ones (X, days, codes). */
static void fill_inputs(uint64_t *rng, val *in)
{
    int64_t three = 3, n = N, xd[2] = {N, P};
    in[0] = st_random(rng, 1, &three, 1.0, 3.0);
    in[1] = st_random(rng, 1, &n, 0, 30);
    in[2] = val_new(2, xd);
    in[3] = val_new(1, &n);
    in[4] = val_new(1, &n);
    for (int i = 0; i < N; i++) {
        in[2].data[P * i] = 1;
        in[2].data[P * i + 1] = i % GROUP;
        in[3].data[i] = i % GROUP;
        in[4].data[i] = i / GROUP;
        in[1].data[i] += 10 + 2.0 * (i % GROUP);
    }
}

static void test_scaled_terms_rewrite(void **state)
{
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    static const char *const fired[] = {"woodbury-logdet", NULL};
    for (int right = 0; right < 2; right++) {
        sj_fn *f = reml_fn(ctx, right);
        uint64_t rng = 31 + (uint64_t)right;
        val in[5];
        fill_inputs(&rng, in);
        st_compare(ctx, f, 5, in, 0, fired, 1e-10);
        char *text = st_print(ctx, f, 5, in);
        assert_true(st_largest_value(text) < (double)(N * N)); /* no n × n value left */
        sj_string_free(text);
        ad_free_all(in, 5);
        sj_fn_free(f);
    }
    sj_ctx_free(ctx);
}

/* s · Z Zᵀ with a dense Z, in logdet and solve. */
static void test_scaled_dense_term(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *d2[] = {"2"}, *dz[] = {"n", "3"}, *db[] = {"n", "2"};
    sj_value theta = sj_input(g, "theta", 1, d2), z = sj_input(g, "Z", 2, dz),
             bm = sj_input(g, "B", 2, db);
    sj_value t = sj_exp(g, theta);
    const char *scalar[] = {NULL};
    sj_value s1 = sj_reshape(g, sj_slice(g, t, 0, 0, 1), 0, scalar);
    sj_value s2 = sj_reshape(g, sj_slice(g, t, 0, 1, 2), 0, scalar);
    sj_value v = sj_add(g, sj_mul(g, s1, sj_matmul(g, z, sj_mT(g, z))),
                        sj_mul(g, sj_eye(g, "n"), s2));
    sj_value out = sj_add(g, sj_logdet(g, v), sj_sum_all(g, sj_mul(g, sj_solve(g, v, bm), bm)));
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    uint64_t rng = 33;
    int64_t two = 2, zd[2] = {20, 3}, bd[2] = {20, 2};
    val in[3] = {st_random(&rng, 1, &two, -0.5, 0.5), st_random(&rng, 2, zd, -1, 1),
                 st_random(&rng, 2, bd, -1, 1)};
    static const char *const fired[] = {"woodbury-logdet", "woodbury-solve", NULL};
    st_compare(ctx, f, 3, in, 0, fired, 1e-10);
    ad_free_all(in, 3);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

static void test_vmap_equals_single_calls(void **state)
{
    enum { NB = 25 };
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    sj_fn *f = reml_fn(ctx, 0), *vg = NULL, *vm = NULL;
    int wrt = 0;
    assert_ok(sj_value_and_grad(f, 0, 1, &wrt, &vg), ctx);
    const int in_axes[5] = {0, 0, -1, -1, -1};
    assert_ok(sj_vmap(vg, in_axes, NULL, "b", &vm), ctx);
    uint64_t rng = 41;
    double theta[NB * 3], y[NB * N];
    val in[5];
    for (int b = 0; b < NB; b++) {
        fill_inputs(&rng, in);
        memcpy(theta + 3 * b, in[0].data, 3 * sizeof(double));
        memcpy(y + N * b, in[1].data, N * sizeof(double));
        if (b + 1 < NB)
            ad_free_all(in, 5);
    }
    int ranks1[5] = {1, 1, 2, 1, 1}, ranksb[5] = {2, 2, 2, 1, 1};
    int64_t d3[1] = {3}, dnn[1] = {N}, dx[2] = {N, P}, db3[2] = {NB, 3}, dbn[2] = {NB, N};
    const int64_t *dims1[5] = {d3, dnn, dx, dnn, dnn}, *dimsb[5] = {db3, dbn, dx, dnn, dnn};
    sj_compiled *c1 = NULL, *cb = NULL;
    assert_ok(sj_fn_compile(vg, 5, ranks1, dims1, &c1), ctx);
    assert_ok(sj_fn_compile(vm, 5, ranksb, dimsb, &cb), ctx);
    /* the rewrites fired in the vmapped function too, and no n × n is left */
    char *text = sj_compiled_print(cb);
    assert_non_null(strstr(text, "woodbury-logdet"));
    assert_true(st_largest_value(text) < (double)NB * N * N);
    sj_string_free(text);
    double lv[NB], lg[NB * 3], vv[NB], vgr[NB * 3];
    for (int b = 0; b < NB; b++) {
        const double *in1[5] = {theta + 3 * b, y + N * b, in[2].data, in[3].data, in[4].data};
        double *out1[2] = {lv + b, lg + 3 * b};
        assert_ok(sj_compiled_call(c1, in1, out1), ctx);
    }
    const double *inb[5] = {theta, y, in[2].data, in[3].data, in[4].data};
    double *outb[2] = {vv, vgr};
    assert_ok(sj_compiled_call(cb, inb, outb), ctx);
    double ev = test_item_err(vv, lv, NB, 1), eg = test_item_err(vgr, lg, NB, 3);
    print_message("  vmap vs single calls: value %.2g, gradient %.2g\n", ev, eg);
    assert_true(ev <= 1e-12 && eg <= 1e-12);
    /* and the single calls against the evaluator */
    val o[AD_MAX_OUT];
    val one[5] = {val_new(1, d3), val_new(1, dnn), in[2], in[3], in[4]};
    memcpy(one[0].data, theta, 3 * sizeof(double));
    memcpy(one[1].data, y, N * sizeof(double));
    assert_int_equal(ad_run(ctx, vg, 5, one, o), 2);
    assert_true(test_item_err(lv, o[0].data, 1, 1) <= 1e-12 && test_item_err(lg, o[1].data, 1, 3) <= 1e-12);
    ad_free_all(o, 2);
    val_free(&one[0]);
    val_free(&one[1]);
    ad_free_all(in, 5);
    sj_compiled_free(c1);
    sj_compiled_free(cb);
    sj_fn_free(f);
    sj_fn_free(vg);
    sj_fn_free(vm);
    sj_ctx_free(ctx);
}

/* The codegen paths under vmap, natively against the evaluator:
 * w[b] · X (split loop), X ⊙ w[b] + c (either order, a one-element
 * constant), 2 × 2 and 4 × 4 batched factors and solves (left, right,
 * transposed), Aᵀ b_b with a column b_b, a_bᵀ B. */
static void test_codegen_paths(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    for (int k = 2; k <= 4; k += 2) {
        assert_ok(sj_graph_create(ctx, &g), ctx);
        char kk[8];
        snprintf(kk, sizeof kk, "%d", k);
        const char *dw[] = {NULL}, *dxs[] = {"6", "5"}, *dm[] = {"3", kk, kk},
                   *dr[] = {"3", kk, "2"}, *dcol[] = {"6", "1"}, *da[] = {"6", "3"};
        sj_value w = sj_input(g, "w", 0, dw), x = sj_input(g, "X", 2, dxs),
                 m = sj_input(g, "M", 3, dm), r = sj_input(g, "R", 3, dr),
                 c = sj_input(g, "c", 2, dcol), a = sj_input(g, "A", 2, da);
        sj_value e1 = sj_mul(g, w, x);
        sj_value e2 = sj_add(g, sj_mul(g, x, sj_exp(g, w)), sj_scalar(g, 1.5));
        sj_value gram = sj_add(g, sj_matmul(g, m, sj_mT(g, m)),
                               sj_mul(g, sj_add(g, w, sj_scalar(g, 2.0)), sj_eye(g, kk)));
        sj_value l = sj_cholesky(g, gram);
        sj_value s1 = sj_cholesky_solve(g, l, r);
        sj_value s2 = sj_triangular_solve(g, l, sj_mT(g, r), SJ_SOLVE_RIGHT | SJ_SOLVE_TRANSPOSE);
        sj_value s3 = sj_triangular_solve(g, l, r, SJ_SOLVE_TRANSPOSE);
        sj_value p1 = sj_matmul(g, sj_mT(g, a), sj_mul(g, c, w));   /* Aᵀ b_b */
        sj_value p2 = sj_matmul(g, sj_mT(g, sj_mul(g, c, w)), a);   /* a_bᵀ A */
        sj_value outs[8] = {e1, e2, sj_logdet(g, gram), s1, s2, s3, p1, p2};
        assert_ok(sj_graph_status(g), ctx);
        sj_fn *f = NULL, *vf = NULL;
        assert_ok(sj_fn_create(g, 8, outs, &f), ctx);
        const int in_axes[6] = {0, -1, -1, -1, -1, -1};
        assert_ok(sj_vmap(f, in_axes, NULL, "b", &vf), ctx);
        uint64_t rng = 51 + (uint64_t)k;
        int64_t nb = 40, xd[2] = {6, 5}, md[3] = {3, k, k}, rd[3] = {3, k, 2}, cd[2] = {6, 1},
                ad[2] = {6, 3};
        val in[6] = {st_random(&rng, 1, &nb, -0.5, 0.5), st_random(&rng, 2, xd, -1, 1),
                     st_random(&rng, 3, md, -1, 1), st_random(&rng, 3, rd, -1, 1),
                     st_random(&rng, 2, cd, -1, 1), st_random(&rng, 2, ad, -1, 1)};
        val want[AD_MAX_OUT], got[AD_MAX_OUT];
        int nout = ad_run(ctx, vf, 6, in, want);
        assert_int_equal(cov_call(ctx, vf, 6, in, got), nout);
        for (int o = 0; o < nout; o++)
            assert_close(got[o].data, want[o].data, want[o].n, 1e-12, 1e-12);
        ad_free_all(want, nout);
        ad_free_all(got, nout);
        ad_free_all(in, 6);
        sj_fn_free(f);
        sj_fn_free(vf);
        sj_graph_free(g);
    }
    sj_ctx_free(ctx);
}

/* A tiny batched factor that is not positive definite names its batch item
 * and the minor, as the helper and LAPACK paths do. */
static void test_tiny_cholesky_error(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *dm[] = {"4", "2", "2"};
    sj_value m = sj_input(g, "M", 3, dm);
    sj_value out = sj_cholesky(g, m);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    int64_t md[3] = {4, 2, 2};
    val in = val_new(3, md);
    for (int b = 0; b < 4; b++) {
        double *p = in.data + 4 * b;
        p[0] = 2, p[1] = 0, p[2] = 1, p[3] = b == 2 ? 0.25 : 3; /* item 2: 2·0.25 - 1 < 0 */
    }
    int rank = 3;
    const int64_t *dims[1] = {md};
    const double *data[1] = {in.data};
    val o = val_new(3, md);
    double *outs[1] = {o.data};
    sj_status st = sj_fn_call(f, 1, &rank, dims, data, outs);
    assert_int_equal(st, SJ_ERR_NOT_POSITIVE_DEFINITE);
    const char *msg = sj_ctx_last_error(ctx);
    print_message("  %s\n", msg);
    assert_non_null(strstr(msg, "2"));
    val_free(&o);
    val_free(&in);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scaled_terms_rewrite),
        cmocka_unit_test(test_scaled_dense_term),
        cmocka_unit_test(test_vmap_equals_single_calls),
        cmocka_unit_test(test_codegen_paths),
        cmocka_unit_test(test_tiny_cholesky_error),
    };
    return cmocka_run_group_tests_name("vmap_reml", tests, NULL, NULL);
}
