/* The one-hot rewrite (passes/structure_onehot.c): products with a one-hot
 * design Z = one_hot(c) (and a row-scaled Z · x, a random slope) on either
 * side and transposed, and Z_aᵀ Z_b, become gathers and segment sums; the
 * rewritten graph equals the dense one in value, gradient and Hessian. */
#include "test_structure_check.h"

static void test_products(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *dn[] = {"n"}, *dn1[] = {"n", "1"}, *db[] = {"4", "3"}, *dy[] = {"n", "2"},
               *da[] = {"2", "n"}, *da2[] = {"2", "4"};
    sj_value b = sj_input(g, "B", 2, db), y = sj_input(g, "y", 2, dy), a = sj_input(g, "A", 2, da),
             a2 = sj_input(g, "A2", 2, da2), c = sj_input(g, "c", 1, dn),
             c2 = sj_input(g, "c2", 1, dn), x = sj_input(g, "x", 1, dn);
    sj_value z = sj_one_hot(g, c, "4"), z2 = sj_one_hot(g, c2, "3");
    sj_value zs = sj_mul(g, z, sj_reshape(g, x, 2, dn1));
    sj_value terms[6] = {
        sj_sum_all(g, sj_square(g, sj_matmul(g, zs, b))),              /* Z B */
        sj_sum_all(g, sj_square(g, sj_matmul(g, sj_mT(g, z), y))),     /* Zᵀ y */
        sj_sum_all(g, sj_square(g, sj_matmul(g, a, z))),               /* A Z */
        sj_sum_all(g, sj_square(g, sj_matmul(g, a2, sj_mT(g, zs)))),   /* A Zᵀ */
        sj_mul(g, sj_sum_all(g, sj_square(g, sj_matmul(g, sj_mT(g, zs), z2))),
               sj_sum_all(g, b)),                                      /* crossed table */
        sj_mul(g, sj_sum_all(g, sj_square(g, sj_matmul(g, sj_mT(g, z), z))),
               sj_sum_all(g, y))};                                     /* counts */
    sj_value out = terms[0];
    for (int i = 1; i < 6; i++)
        out = sj_add(g, out, terms[i]);
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    uint64_t rng = 21;
    int64_t n = 17, bd[2] = {4, 3}, yd[2] = {n, 2}, ad[2] = {2, n}, a2d[2] = {2, 4};
    val in[7] = {st_random(&rng, 2, bd, -1, 1), st_random(&rng, 2, yd, -1, 1),
                 st_random(&rng, 2, ad, -1, 1), st_random(&rng, 2, a2d, -1, 1),
                 st_codes(&rng, n, 4), st_codes(&rng, n, 3), st_random(&rng, 1, &n, -2, 2)};
    static const char *const fired[] = {"onehot-matmul", "onehot-gram", NULL};
    for (int wrt = 0; wrt < 4; wrt++)
        st_compare(ctx, f, 7, in, wrt, fired, 1e-10);
    /* Z (n × 4) itself is gone: only the codes remain. */
    char *text = st_print(ctx, f, 7, in);
    assert_null(strstr(text, "one_hot"));
    sj_string_free(text);
    ad_free_all(in, 7);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_products),
    };
    return cmocka_run_group_tests_name("structure_onehot", tests, NULL, NULL);
}
