/* The Kronecker rewrite (passes/structure_kron.c): logdet, cholesky (and
 * the factor's diag and solves) and solve of A ⊗ B through A and B; the
 * rewritten graph equals the dense one in value, gradient and Hessian. */
#include "test_structure_check.h"

/* P Pᵀ + k I: symmetric positive definite, a smooth function of P. */
static sj_value spd(sj_graph *g, sj_value p, const char *k)
{
    return sj_add(g, sj_matmul(g, p, sj_mT(g, p)),
                  sj_mul(g, sj_scalar(g, atof(k)), sj_eye(g, k)));
}

static void test_kron(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *dp[] = {"3", "3"}, *dq[] = {"2", "2"}, *dx[] = {"6", "2"};
    sj_value p = sj_input(g, "P", 2, dp), q = sj_input(g, "Q", 2, dq), x = sj_input(g, "X", 2, dx),
             w = sj_input(g, "W", 2, dx);
    sj_value k = sj_kron(g, spd(g, p, "3"), spd(g, q, "2"));
    sj_value l = sj_cholesky(g, k);
    sj_value terms[4] = {
        sj_logdet(g, k), sj_sum_all(g, sj_mul(g, sj_cholesky_solve(g, l, x), w)),
        sj_sum_all(g, sj_mul(g, sj_solve(g, k, x), w)),
        sj_mul(g, sj_scalar(g, 2.0), sj_sum_all(g, sj_log(g, sj_diag(g, l))))};
    sj_value out = sj_add(g, sj_add(g, terms[0], terms[1]), sj_add(g, terms[2], terms[3]));
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    uint64_t rng = 31;
    int64_t pd[2] = {3, 3}, qd[2] = {2, 2}, xd[2] = {6, 2};
    val in[4] = {st_random(&rng, 2, pd, -1, 1), st_random(&rng, 2, qd, -1, 1),
                 st_random(&rng, 2, xd, -1, 1), st_random(&rng, 2, xd, -1, 1)};
    static const char *const fired[] = {"kron-logdet", "kron-cholesky", "kron-diag",
                                        "kron-cholesky-solve", "kron-solve", NULL};
    for (int wrt = 0; wrt < 3; wrt++)
        st_compare(ctx, f, 4, in, wrt, fired, 1e-10);
    char *text = st_print(ctx, f, 4, in);
    assert_null(strstr(text, "= kron")); /* the 6 × 6 product is never formed */
    sj_string_free(text);
    ad_free_all(in, 4);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kron),
    };
    return cmocka_run_group_tests_name("structure_kron", tests, NULL, NULL);
}
