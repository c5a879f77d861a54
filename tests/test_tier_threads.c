/* Tiering (codegen/kernel.c): a small kernel starts on the code of LLVM's fast
 * path and is compiled again with the full pipeline at its
 * CG_TIER_UP_CALLS-th call.  Both codes must compute the same bits (no
 * fast-math: vectorising reorders no sums), and threads calling across the
 * switch must all get those bits (run under ThreadSanitizer: the name has
 * "thread"). */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "runtime/handles.h"

enum { N = 12, NTHREAD = 4 };
#define NCALL ((int)(CG_TIER_UP_CALLS / NTHREAD) + 50)

/* Elementwise chains, reductions, a matmul and a Cholesky on small inputs:
 * loops the full pipeline vectorises and the fast path does not. */
static sj_compiled *make_kernel(sj_ctx *ctx)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *nn[] = {"n", "n"}, *n1[] = {"n"};
    sj_value a = sj_input(g, "A", 2, nn), x = sj_input(g, "x", 1, n1);
    sj_value spd = sj_add(g, sj_matmul(g, a, sj_mT(g, a)), sj_eye(g, "n"));
    sj_value y = sj_mul(g, sj_tanh(g, x), sj_exp(g, sj_neg(g, sj_square(g, x))));
    sj_value out[3] = {sj_logdet(g, spd), sj_cholesky_solve(g, sj_cholesky(g, spd), y),
                       sj_sum_all(g, sj_mul(g, a, sj_log1p(g, sj_abs(g, a))))};
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, 3, out, &fn), ctx);
    sj_graph_free(g);
    int ranks[2] = {2, 1};
    int64_t nn_dims[2] = {N, N}, n_dims[1] = {N};
    const int64_t *dims[2] = {nn_dims, n_dims};
    sj_compiled *c = NULL;
    assert_ok(sj_fn_compile(fn, 2, ranks, dims, &c), ctx);
    sj_fn_free(fn);
    return c;
}

typedef struct inputs {
    double a[N * N], x[N];
} inputs;

typedef struct outputs {
    double ld, sol[N], s;
} outputs;

static void fill(inputs *in)
{
    uint64_t rng = 42;
    for (int i = 0; i < N * N; i++)
        in->a[i] = test_uniform(&rng, -1, 1);
    for (int i = 0; i < N; i++)
        in->x[i] = test_uniform(&rng, -2, 2);
}

static sj_status call(sj_compiled *c, const inputs *in, outputs *o)
{
    const double *ins[2] = {in->a, in->x};
    double *outs[3] = {&o->ld, o->sol, &o->s};
    return sj_compiled_call(c, ins, outs);
}

static void assert_same_bits(const outputs *got, const outputs *want)
{
    assert_memory_equal(got, want, sizeof *got);
}

static void test_tier_up_keeps_bits(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), ctx);
    sj_compiled *c = make_kernel(ctx);
    assert_int_equal(cg_kernel_tier(c->kernel), 0); /* small: the fast path */
    inputs in;
    fill(&in);
    outputs first, o;
    memset(&first, 0, sizeof first);
    assert_ok(call(c, &in, &first), ctx);
    for (unsigned k = 1; k < CG_TIER_UP_CALLS + 10; k++) {
        memset(&o, 0, sizeof o);
        assert_ok(call(c, &in, &o), ctx);
        assert_same_bits(&o, &first);
        assert_int_equal(cg_kernel_tier(c->kernel), k + 1 >= CG_TIER_UP_CALLS);
    }
    sj_compiled_free(c);
    sj_ctx_free(ctx);
}

/* A Poisson GLM fit of n rows, p = 3, compiled; y from a fixed generator. */
static sj_compiled *glm_kernel(sj_ctx *ctx, int64_t n, double *x, double *y)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_glm_family *fam = NULL;
    assert_ok(sj_glm_family_create(ctx, "poisson", NULL, 0, &fam), ctx);
    sj_value xv = sj_input(g, "X", 2, (const char *[]){"n", "p"});
    sj_value yv = sj_input(g, "y", 1, (const char *[]){"n"});
    sj_value o[3];
    assert_ok(sj_glm_fit_graph(g, fam, xv, yv, SJ_INVALID, SJ_INVALID, 0, &o[0], &o[1], &o[2]),
              ctx);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, 3, o, &fn), ctx);
    sj_graph_free(g);
    sj_glm_family_free(fam);
    uint64_t rng = 7;
    for (int64_t i = 0; i < n; i++) {
        x[3 * i] = 1, x[3 * i + 1] = test_uniform(&rng, -1, 1), x[3 * i + 2] = test_uniform(&rng, -1, 1);
        y[i] = floor(test_uniform(&rng, 0, 2 + 2 * x[3 * i + 1]));
    }
    sj_compiled *c = NULL;
    assert_ok(sj_fn_compile(fn, 2, (int[]){2, 1}, (const int64_t *[]){(int64_t[]){n, 3}, &n}, &c),
              ctx);
    sj_fn_free(fn);
    return c;
}

/* A fit kernel is on the fast path when one evaluation of its sub-graphs
 * touches few elements (n = 30 rows), not when it touches many (n = 5,000:
 * every Newton step runs those loops), and tiers up with the same bits. */
static void test_fit_kernel_tiers(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), ctx);
    static double x[5000 * 3], y[5000];
    sj_compiled *big = glm_kernel(ctx, 5000, x, y);
    assert_int_equal(cg_kernel_tier(big->kernel), 1);
    sj_compiled_free(big);
    sj_compiled *c = glm_kernel(ctx, 30, x, y);
    assert_int_equal(cg_kernel_tier(c->kernel), 0);
    double first[5], o[5];
    const double *in[2] = {x, y};
    assert_ok(sj_compiled_call(c, in, (double *[]){first, first + 3, first + 4}), ctx);
    assert_true(first[4] == 1.0);
    for (unsigned k = 1; k < CG_TIER_UP_CALLS + 10; k++) {
        assert_ok(sj_compiled_call(c, in, (double *[]){o, o + 3, o + 4}), ctx);
        assert_memory_equal(o, first, sizeof o);
    }
    assert_int_equal(cg_kernel_tier(c->kernel), 1);
    sj_compiled_free(c);
    sj_ctx_free(ctx);
}

typedef struct worker {
    sj_compiled *c;
    const inputs *in;
    const outputs *want;
    int mismatches, failures;
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    for (int k = 0; k < NCALL; k++) {
        outputs o;
        memset(&o, 0, sizeof o);
        if (call(w->c, w->in, &o) != SJ_OK)
            w->failures++;
        else if (memcmp(&o, w->want, sizeof o) != 0)
            w->mismatches++;
    }
    return NULL;
}

static void test_threads_across_the_switch(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), ctx);
    sj_compiled *c = make_kernel(ctx);
    inputs in;
    fill(&in);
    outputs want;
    memset(&want, 0, sizeof want);
    assert_ok(call(c, &in, &want), ctx);
    pthread_t t[NTHREAD];
    worker w[NTHREAD];
    for (int i = 0; i < NTHREAD; i++) {
        w[i] = (worker){c, &in, &want, 0, 0};
        assert_int_equal(pthread_create(&t[i], NULL, run_worker, &w[i]), 0);
    }
    for (int i = 0; i < NTHREAD; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
        assert_int_equal(w[i].mismatches, 0);
    }
    assert_int_equal(cg_kernel_tier(c->kernel), 1); /* NTHREAD * NCALL > threshold */
    sj_compiled_free(c);
    sj_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tier_up_keeps_bits),
        cmocka_unit_test(test_threads_across_the_switch),
        cmocka_unit_test(test_fit_kernel_tiers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
