/* Memory: the REML criterion and its gradient of a crossed mixed model at
 * n = 50,000 observations and q = 200 random effects (150 + 50 levels) run
 * through the evaluator with no n × n value — the dense V alone would be
 * 2.5·10⁹ doubles (20 GB).  The largest value of the materialised graphs is
 * checked from their printed shapes, and the process's peak resident size
 * is printed and bounded. */
#include <sys/resource.h>
#include <time.h>

#include "test_structure_check.h"

enum { N = 50000, Q1 = 150, Q2 = 50, P = 3 };

static void test_reml_grad_large(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_fn *f = st_crossed_reml(ctx, g, "150", "50", "3"), *vg = NULL;
    int wrt = 0;
    assert_ok(sj_value_and_grad(f, 0, 1, &wrt, &vg), ctx);

    uint64_t rng = 51;
    int64_t n = N, three = 3, xd[2] = {N, P};
    val in[5] = {val_new(1, &three), val_new(1, &n), val_new(2, xd), st_codes(&rng, n, Q1),
                 st_codes(&rng, n, Q2)};
    in[0].data[0] = 0.3;
    in[0].data[1] = -0.2;
    in[0].data[2] = 0.1;
    for (int64_t i = 0; i < N; i++) {
        in[2].data[P * i] = 1;
        in[2].data[P * i + 1] = test_uniform(&rng, -1, 1);
        in[2].data[P * i + 2] = test_uniform(&rng, 0, 5);
        in[1].data[i] = in[2].data[P * i + 1] - 0.5 * in[2].data[P * i + 2] +
                        0.3 * (in[3].data[i] / Q1) + test_uniform(&rng, -2, 2);
    }
    st_set_rewrites(1);
    char *text = st_print(ctx, vg, 5, in);
    char line[256];
    st_rewrite_line(text, line, sizeof line);
    double most = st_largest_value(text);
    print_message("%s\nlargest value of value_and_grad: %.0f elements (n q = %d, n² = %.3g)\n",
                  line, most, N * (Q1 + Q2), (double)N * N);
    assert_non_null(strstr(line, "woodbury-logdet"));
    assert_true(most <= (double)N * (Q1 + Q2)); /* O(n q), far below n² */
    sj_string_free(text);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    val o[AD_MAX_OUT];
    assert_int_equal(ad_run(ctx, vg, 5, in, o), 2);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    print_message("REML %.10g, grad (%.6g, %.6g, %.6g) in %.2f s (evaluator); peak RSS %.0f MB\n",
                  o[0].data[0], o[1].data[0], o[1].data[1], o[1].data[2],
                  (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
                  (double)ru.ru_maxrss / 1024);
    assert_true(isfinite(o[0].data[0]));
    for (int i = 0; i < 3; i++)
        assert_true(isfinite(o[1].data[i]));
    assert_true((double)ru.ru_maxrss * 1024 < 2e9); /* the dense V would need 20 GB */
    ad_free_all(o, 2);
    ad_free_all(in, 5);
    sj_fn_free(vg);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reml_grad_large),
    };
    return cmocka_run_group_tests_name("structure_memory", tests, NULL, NULL);
}
