/* The README's example: builds, through the public API only,
 *
 *     V = Z G Zᵀ + s2·I,   Z one-hot from group codes,  G = diag(exp(2θ)),
 *     f = logdet(V) + yᵀ V⁻¹ y,
 *
 * with symbolic sizes n (rows) and q (groups), specialises it to the bundled
 * 12-row, 3-group data and prints f. */
#include <stdio.h>
#include <stdlib.h>

#include "statjit.h"

#define CHECK(call)                                                                     \
    do {                                                                                \
        sj_status st_ = (call);                                                         \
        if (st_ != SJ_OK) {                                                             \
            fprintf(stderr, "example_reml: %s: %s\n", sj_status_name(st_),              \
                    sj_ctx_last_error(ctx));                                            \
            return 1;                                                                   \
        }                                                                               \
    } while (0)

/* f(codes, theta, s2, y) as a graph; returns the output value. */
static sj_value build(sj_graph *g)
{
    const char *n[] = {"n"}, *q[] = {"q"};
    sj_value codes = sj_input(g, "codes", 1, n);
    sj_value theta = sj_input(g, "theta", 1, q);
    sj_value s2 = sj_input(g, "s2", 0, NULL);
    sj_value y = sj_input(g, "y", 1, n);

    sj_value z = sj_one_hot(g, codes, "q");
    sj_value gdiag = sj_diag_embed(g, sj_exp(g, sj_mul(g, sj_scalar(g, 2.0), theta)));
    sj_value zgzt = sj_matmul(g, sj_matmul(g, z, gdiag), sj_mT(g, z));
    sj_value v = sj_add(g, zgzt, sj_mul(g, s2, sj_eye(g, "n")));

    sj_value l = sj_cholesky(g, v);
    sj_value alpha = sj_cholesky_solve(g, l, y);
    sj_value quad = sj_sum_all(g, sj_mul(g, y, alpha));
    return sj_add(g, sj_logdet(g, v), quad);
}

int main(void)
{
    static const double codes[12] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2};
    static const double y[12] = {1.2, 0.8, 1.5, 1.1, -0.3, 0.2, -0.6, 0.1, 2.1, 2.6, 1.9, 2.4};
    static const double theta[3] = {0.1, -0.2, 0.3};
    static const double s2 = 0.5;

    sj_ctx *ctx = NULL;
    if (sj_ctx_create(&ctx) != SJ_OK)
        return 1;
    sj_graph *g = NULL;
    CHECK(sj_graph_create(ctx, &g));
    sj_value f = build(g);
    CHECK(sj_graph_status(g));

    sj_fn *fn = NULL;
    CHECK(sj_fn_create(g, 1, &f, &fn));
    int ranks[4] = {1, 1, 0, 1};
    int64_t dn[1] = {12}, dq[1] = {3};
    const int64_t *dims[4] = {dn, dq, NULL, dn};
    sj_compiled *c = NULL;
    CHECK(sj_fn_specialize(fn, 4, ranks, dims, &c));

    const double *in[4] = {codes, theta, &s2, y};
    double value = 0;
    double *out[1] = {&value};
    CHECK(sj_compiled_eval(c, in, out));

    char *text = sj_graph_print(g);
    if (text)
        printf("%s", text);
    sj_string_free(text);
    printf("n = 12 rows, q = 3 groups, theta = (0.1, -0.2, 0.3), s2 = 0.5\n");
    printf("logdet(V) + y'V^-1y = %.12f\n", value);

    sj_compiled_free(c);
    sj_fn_free(fn);
    sj_graph_free(g);
    sj_ctx_free(ctx);
    return 0;
}
