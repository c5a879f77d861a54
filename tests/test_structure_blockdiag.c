/* The block-diagonal rewrite (passes/structure_blockdiag.c): logdet,
 * cholesky (and the factor's diag and solves) and solve of
 * blockdiag(A_1, …, A_T) per block — batched when the blocks have one size;
 * the rewritten graph equals the dense one in value, gradient and Hessian. */
#include "test_structure_check.h"

static sj_value spd(sj_graph *g, sj_value p, int64_t k)
{
    char ks[24];
    snprintf(ks, sizeof ks, "%d", (int)k);
    return sj_add(g, sj_matmul(g, p, sj_mT(g, p)),
                  sj_mul(g, sj_scalar(g, (double)k), sj_eye(g, ks)));
}

/* Blocks of sizes sizes[0..nb-1] from inputs P0, P1, …; f sums logdet,
 * ⟨(LLᵀ)⁻¹X, W⟩, ⟨B⁻¹X, W⟩ and 2 Σ log diag L. */
static void check_blocks(int nb, const int64_t *sizes, const char *const *fired)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_cov *kids[8];
    int64_t total = 0;
    uint64_t rng = 41;
    val in[10];
    for (int i = 0; i < nb; i++) {
        char name[24], ks[24];
        snprintf(name, sizeof name, "P%d", i);
        snprintf(ks, sizeof ks, "%d", (int)sizes[i]);
        const char *d[] = {ks, ks};
        sj_value p = sj_input(g, name, 2, d);
        kids[i] = sj_cov_fixed(g, name, spd(g, p, sizes[i]));
        int64_t pd[2] = {sizes[i], sizes[i]};
        in[i] = st_random(&rng, 2, pd, -1, 1);
        total += sizes[i];
    }
    char ts[24];
    snprintf(ts, sizeof ts, "%d", (int)total);
    const char *dx[] = {ts, "2"};
    sj_value x = sj_input(g, "X", 2, dx), w = sj_input(g, "W", 2, dx);
    int64_t xd[2] = {total, 2};
    in[nb] = st_random(&rng, 2, xd, -1, 1);
    in[nb + 1] = st_random(&rng, 2, xd, -1, 1);
    sj_value bd;
    assert_ok(sj_cov_build(sj_cov_block_diagonal(g, NULL, nb, kids), SJ_INVALID, &bd), ctx);
    sj_value l = sj_cholesky(g, bd);
    sj_value out = sj_add(
        g, sj_add(g, sj_logdet(g, bd), sj_sum_all(g, sj_mul(g, sj_cholesky_solve(g, l, x), w))),
        sj_add(g, sj_sum_all(g, sj_mul(g, sj_solve(g, bd, x), w)),
               sj_mul(g, sj_scalar(g, 2.0), sj_sum_all(g, sj_log(g, sj_diag(g, l))))));
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    st_compare(ctx, f, nb + 2, in, 0, fired, 1e-10);
    st_compare(ctx, f, nb + 2, in, nb, fired, 1e-10);
    ad_free_all(in, nb + 2);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

static void test_equal_blocks_batched(void **state)
{
    static const int64_t sizes[3] = {2, 2, 2};
    static const char *const fired[] = {"blockdiag-logdet", "blockdiag-cholesky",
                                        "blockdiag-diag", "blockdiag-cholesky-solve",
                                        "blockdiag-solve", NULL};
    check_blocks(3, sizes, fired);
}

static void test_unequal_blocks(void **state)
{
    static const int64_t sizes[2] = {2, 3};
    static const char *const fired[] = {"blockdiag-logdet", "blockdiag-cholesky",
                                        "blockdiag-diag", "blockdiag-cholesky-solve",
                                        "blockdiag-solve", NULL};
    check_blocks(2, sizes, fired);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_blocks_batched),
        cmocka_unit_test(test_unequal_blocks),
    };
    return cmocka_run_group_tests_name("structure_blockdiag", tests, NULL, NULL);
}
