/* The Gram rewrites (passes/structure_gram.c): with G = t0 Z Zᵀ + t1 Z₂Z₂ᵀ
 * + t2 I (Z one-hot, Z₂ = Z ⊙ x a random slope; the one-hot pass makes the
 * Gram matrices gathers), G B becomes segment sums and gathers
 * (gram-matmul), and Σ P ⊙ G with P a sum of low-rank products, their
 * transposes and a dense product becomes sums over n × k values
 * (gram-trace).  The rewritten graph equals the dense one in value,
 * gradient and Hessian; the REML Hessian-vector product that motivated the
 * rewrites is checked against torch in test_ad_reml.c. */
#include "test_structure_check.h"

static void test_gram(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *d3[] = {"3"}, *dn[] = {"n"}, *dn1[] = {"n", "1"}, *dk[] = {"n", "2"},
               *dnn[] = {"n", "n"}, *scalar[] = {NULL};
    sj_value theta = sj_input(g, "theta", 1, d3), u = sj_input(g, "U", 2, dk),
             w = sj_input(g, "W", 2, dk), b = sj_input(g, "B", 2, dk),
             d = sj_input(g, "D", 2, dnn), e = sj_input(g, "E", 2, dnn),
             c = sj_input(g, "c", 1, dn), x = sj_input(g, "x", 1, dn);
    sj_value t = sj_exp(g, theta);
    sj_value t0 = sj_reshape(g, sj_slice(g, t, 0, 0, 1), 0, scalar);
    sj_value t1 = sj_reshape(g, sj_slice(g, t, 0, 1, 2), 0, scalar);
    sj_value t2 = sj_reshape(g, sj_slice(g, t, 0, 2, 3), 0, scalar);
    sj_value z = sj_one_hot(g, c, "4");
    sj_value z2 = sj_mul(g, z, sj_reshape(g, x, 2, dn1));
    sj_value gm = sj_add(g, sj_add(g, sj_mul(g, t0, sj_matmul(g, z, sj_mT(g, z))),
                                   sj_mul(g, t1, sj_matmul(g, z2, sj_mT(g, z2)))),
                         sj_mul(g, t2, sj_eye(g, "n")));
    /* G B: gram-matmul. */
    sj_value term1 = sj_sum_all(g, sj_square(g, sj_matmul(g, gm, b)));
    /* Σ P ⊙ G: gram-trace, with low-rank terms, a transpose and a dense
     * product. */
    sj_value uw = sj_matmul(g, u, sj_mT(g, w));
    sj_value p = sj_sub(g, sj_add(g, uw, sj_mul(g, sj_scalar(g, 0.5), sj_mT(g, uw))),
                        sj_matmul(g, d, e));
    sj_value term2 = sj_sum_all(g, sj_mul(g, p, gm));
    sj_value out = sj_add(g, term1, sj_mul(g, term2, term2));
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    uint64_t rng = 33;
    int64_t n = 17, kd[2] = {n, 2}, nn[2] = {n, n}, three = 3;
    val in[8] = {st_random(&rng, 1, &three, -0.5, 0.5), st_random(&rng, 2, kd, -1, 1),
                 st_random(&rng, 2, kd, -1, 1),         st_random(&rng, 2, kd, -1, 1),
                 st_random(&rng, 2, nn, -1, 1),         st_random(&rng, 2, nn, -1, 1),
                 st_codes(&rng, n, 4),                  st_random(&rng, 1, &n, -2, 2)};
    static const char *const fired[] = {"gram-matmul", "gram-trace", NULL};
    for (int wrt = 0; wrt < 4; wrt++)
        st_compare(ctx, f, 8, in, wrt, fired, 1e-10);
    ad_free_all(in, 8);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* A dense term in G (here a user matrix) leaves both products alone. */
static void test_dense_term(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *dn[] = {"n"}, *dk[] = {"n", "2"}, *dnn[] = {"n", "n"};
    sj_value u = sj_input(g, "U", 2, dk), m = sj_input(g, "M", 2, dnn),
             c = sj_input(g, "c", 1, dn);
    sj_value z = sj_one_hot(g, c, "4");
    sj_value gm = sj_add(g, sj_matmul(g, z, sj_mT(g, z)), m);
    sj_value out = sj_add(g, sj_sum_all(g, sj_matmul(g, gm, u)),
                          sj_sum_all(g, sj_mul(g, sj_matmul(g, u, sj_mT(g, u)), gm)));
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    uint64_t rng = 34;
    int64_t n = 17, kd[2] = {n, 2}, nn[2] = {n, n};
    val in[3] = {st_random(&rng, 2, kd, -1, 1), st_random(&rng, 2, nn, -1, 1),
                 st_codes(&rng, n, 4)};
    char *text = st_print(ctx, f, 3, in);
    assert_null(strstr(text, "gram-"));
    sj_string_free(text);
    ad_free_all(in, 3);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gram),
        cmocka_unit_test(test_dense_term),
    };
    return cmocka_run_group_tests_name("structure_gram", tests, NULL, NULL);
}
