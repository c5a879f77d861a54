#include "example_model.h"

sj_value example_model(sj_graph *g)
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
