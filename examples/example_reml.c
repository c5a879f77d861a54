/* The README's example: builds, through the public API only,
 *
 *     V = Z G Zᵀ + s2·I,   Z one-hot from group codes,  G = diag(exp(2θ)),
 *     f = logdet(V) + yᵀ V⁻¹ y,
 *
 * with symbolic sizes n (rows) and q (groups), compiles it to native code for
 * the bundled 12-row, 3-group data, and prints the graph and f. */
#include <stdio.h>
#include <stdlib.h>

#include "example_model.h"
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
    sj_value f = example_model(g);
    CHECK(sj_graph_status(g));

    sj_fn *fn = NULL;
    CHECK(sj_fn_create(g, 1, &f, &fn));
    int ranks[4] = {1, 1, 0, 1};
    int64_t dn[1] = {12}, dq[1] = {3};
    const int64_t *dims[4] = {dn, dq, NULL, dn};
    sj_compiled *c = NULL;
    CHECK(sj_fn_compile(fn, 4, ranks, dims, &c)); /* native code through LLVM */

    const double *in[4] = {codes, theta, &s2, y};
    double value = 0;
    double *out[1] = {&value};
    CHECK(sj_compiled_call(c, in, out));

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
