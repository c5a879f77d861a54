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
#include "bench/bench_util.h"

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
    sj_fn *f = bench_dense_reml_fn(ctx, 18), *vg = NULL, *h = NULL;
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
