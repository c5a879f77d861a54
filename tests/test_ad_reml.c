/* An independent check of reverse-over-forward differentiation through
 * dense linear algebra: the gradient and Hessian of the REML criterion
 *
 *     f(θ) = log|V| + log|XᵀV⁻¹X| + yᵀPy,   V = Z G Zᵀ + σ² I,
 *
 * on sleepstudy (n = 180, X = [1, Days], Z for (1|Subject) + (0+Days|Subject),
 * θ = log of the intercept variance, slope variance and residual variance, at
 * θ = (6.4, 3.5, 6.5)), against PyTorch autograd in float64.  The golden
 * values come from tests/data/make_reml_torch_golden.py; agreement is
 * required to 1e-8 relative. */
#include "ad_check.h"

#include "data/reml_torch_golden.h"

static int load_sleepstudy(double *y, double *days, double *codes)
{
    const char *dir = getenv("SJ_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/sleepstudy.csv", dir ? dir : "tests/data");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256], subjects[32][16];
    int n = 0, nsub = 0;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f) && n < 180) {
        char subj[16];
        if (sscanf(line, "%lf,%lf,\"%15[^\"]\"", &y[n], &days[n], subj) != 3)
            break;
        int k = 0;
        while (k < nsub && strcmp(subjects[k], subj) != 0)
            k++;
        if (k == nsub)
            snprintf(subjects[nsub++], sizeof subjects[0], "%s", subj);
        codes[n++] = k;
    }
    fclose(f);
    return n == 180 && nsub == 18 ? 0 : -1;
}

/* f(theta, y, x, days, codes) with symbolic n (rows). */
static sj_fn *reml_fn(sj_ctx *ctx)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *d3[] = {"3"}, *dn[] = {"n"}, *dx[] = {"n", "2"};
    sj_value theta = sj_input(g, "theta", 1, d3);
    sj_value y = sj_input(g, "y", 1, dn);
    sj_value x = sj_input(g, "X", 2, dx);
    sj_value days = sj_input(g, "days", 1, dn);
    sj_value codes = sj_input(g, "codes", 1, dn);

    sj_value t = sj_exp(g, theta);
    const char *scalar[] = {NULL};
    sj_value g1 = sj_reshape(g, sj_slice(g, t, 0, 0, 1), 0, scalar);
    sj_value g2 = sj_reshape(g, sj_slice(g, t, 0, 1, 2), 0, scalar);
    sj_value s2 = sj_reshape(g, sj_slice(g, t, 0, 2, 3), 0, scalar);
    const char *col[] = {"n", "1"};
    sj_value z1 = sj_one_hot(g, codes, "18"); /* 18 subjects */
    sj_value z2 = sj_mul(g, z1, sj_reshape(g, days, 2, col));
    sj_value v = sj_add(g, sj_add(g, sj_mul(g, g1, sj_matmul(g, z1, sj_mT(g, z1))),
                                  sj_mul(g, g2, sj_matmul(g, z2, sj_mT(g, z2)))),
                        sj_mul(g, s2, sj_eye(g, "n")));
    sj_value l = sj_cholesky(g, v);
    sj_value vinv_x = sj_cholesky_solve(g, l, x);
    sj_value vinv_y = sj_cholesky_solve(g, l, y);
    sj_value xtvx = sj_matmul(g, sj_mT(g, x), vinv_x);
    sj_value b = sj_matmul(g, sj_mT(g, x), vinv_y);
    sj_value coef = sj_cholesky_solve(g, sj_cholesky(g, xtvx), b);
    sj_value ypy = sj_sub(g, sj_sum_all(g, sj_mul(g, y, vinv_y)), sj_sum_all(g, sj_mul(g, b, coef)));
    sj_value f = sj_add(g, sj_add(g, sj_logdet(g, v), sj_logdet(g, xtvx)), ypy);
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, 1, &f, &fn), ctx);
    sj_graph_free(g);
    return fn;
}

static void test_reml_gradient_and_hessian_match_torch(void **state)
{
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    int64_t n = 180, d3 = 3, dx[2] = {180, 2};
    val in[5] = {val_new(1, &d3), val_new(1, &n), val_new(2, dx), val_new(1, &n), val_new(1, &n)};
    assert_int_equal(load_sleepstudy(in[1].data, in[3].data, in[4].data), 0);
    memcpy(in[0].data, reml_golden_theta, sizeof reml_golden_theta);
    for (int i = 0; i < 180; i++) {
        in[2].data[2 * i] = 1.0;
        in[2].data[2 * i + 1] = in[3].data[i];
    }
    sj_fn *f = reml_fn(ctx), *vg = NULL, *h = NULL;
    int wrt = 0;
    assert_ok(sj_value_and_grad(f, 0, 1, &wrt, &vg), ctx);
    assert_ok(sj_hessian(f, 0, 1, &wrt, &h), ctx);
    val o[AD_MAX_OUT], ho[AD_MAX_OUT];
    assert_int_equal(ad_run(ctx, vg, 5, in, o), 2);
    assert_int_equal(ad_run(ctx, h, 5, in, ho), 1);
    print_message("value %.15g (torch %.15g)\n", o[0].data[0], reml_golden_value);
    print_message("grad  % .15g % .15g % .15g\n", o[1].data[0], o[1].data[1], o[1].data[2]);
    print_message("rel err: value %.2e grad %.2e hessian %.2e\n",
                  fabs(o[0].data[0] - reml_golden_value) / fabs(reml_golden_value),
                  ad_relerr(o[1].data, reml_golden_grad, 3), ad_relerr(ho[0].data, reml_golden_hessian, 9));
    assert_close(o[0].data, &reml_golden_value, 1, 1e-8, 0);
    assert_close(o[1].data, reml_golden_grad, 3, 1e-8, 0);
    assert_int_equal(ho[0].n, 9);
    assert_close(ho[0].data, reml_golden_hessian, 9, 1e-8, 0);
    ad_free_all(o, 2);
    ad_free_all(ho, 1);
    ad_free_all(in, 5);
    sj_fn_free(f);
    sj_fn_free(vg);
    sj_fn_free(h);
    sj_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reml_gradient_and_hessian_match_torch),
    };
    return cmocka_run_group_tests_name("ad_reml", tests, NULL, NULL);
}
