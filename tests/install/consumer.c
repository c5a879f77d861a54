/* A program built against an installed statjit: builds a tiny graph. */
#include <stdio.h>

#include <statjit.h>

int main(void)
{
    sj_ctx *ctx;
    sj_graph *g;
    if (sj_ctx_create(&ctx) != SJ_OK || sj_graph_create(ctx, &g) != SJ_OK)
        return 1;
    const char *n[] = {"n"};
    sj_value x = sj_input(g, "x", 1, n);
    sj_value s = sj_sum_all(g, sj_exp(g, x));
    int ok = s != SJ_INVALID && sj_graph_status(g) == SJ_OK;
    printf("consumer: %s\n", ok ? "ok" : sj_ctx_last_error(ctx));
    sj_graph_free(g);
    sj_ctx_free(ctx);
    return ok ? 0 : 1;
}
