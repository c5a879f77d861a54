/* Failure injection (SQLite's habit): every allocation the library makes
 * through ir_malloc can fail, and each failure must come back as a status --
 * SJ_ERR_OUT_OF_MEMORY with a message -- leak nothing (the ASan build checks
 * at exit) and leave the context usable.
 *
 * The pipeline below has stages: building a model graph (with a covariance
 * tree), sj_fn_create, transforms (grad, then vmap), sj_fn_specialize (where
 * the transforms run), sj_compiled_eval, sj_fn_compile and sj_compiled_call.
 * For each stage, k = 1, 2, ... : a fresh context runs the earlier stages
 * normally, the k-th allocation of the stage is made to fail, and then
 *   - the stage returned SJ_ERR_OUT_OF_MEMORY with "out of memory" in the
 *     context's message, or SJ_OK if the failure was absorbed (a cache or a
 *     scratch buffer may retry), and
 *   - the same context builds, specialises, evaluates (and for the compile
 *     and call stages compiles and calls) the whole pipeline afresh with
 *     results equal to a run without failures.
 * The sweep ends at the first k the stage does not reach (it made fewer than
 * k allocations).  LLVM's own allocations (inside sj_fn_compile) do not go
 * through ir_malloc and are not injected; see docs/reliability.md. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/alloc.h"

enum { N = 3, BATCH = 2 };
enum { ST_BUILD, ST_FN, ST_XFORM, ST_SPEC, ST_EVAL, ST_COMPILE, ST_CALL, NSTAGE };
static const char *const stage_name[NSTAGE] = {"build graph", "sj_fn_create", "transforms",
                                               "sj_fn_specialize", "sj_compiled_eval",
                                               "sj_fn_compile", "sj_compiled_call"};

/* Outputs of the transformed function: d/dθ [BATCH], d/dA [BATCH, N, N],
 * d/db [BATCH, N]. */
enum { NOUT = 3 };
static const size_t out_size[NOUT] = {BATCH, BATCH * N * N, BATCH * N};

typedef struct pipe {
    sj_ctx *ctx;
    sj_graph *g;
    sj_value out;
    sj_fn *fn, *grad, *vm;
    sj_compiled *spec, *nat;
    double *res[NOUT];
} pipe;

static double theta[1] = {0.3};
static double amat[N * N] = {4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2};
static double bvec[BATCH * N] = {1, -2, 0.5, 0.3, 0.7, -1.1};

/* f(θ, A, b) = logdet(V) + bᵀ V⁻¹ b + Σ tanh(b) with V = σ²(θ) I + A, the
 * σ² I coming from a covariance tree (a scalar leaf, exp(2θ)). */
static sj_status build(pipe *p)
{
    sj_status st = sj_graph_create(p->ctx, &p->g);
    if (st != SJ_OK)
        return st;
    sj_graph *g = p->g;
    const char *one[] = {"1"}, *nn[] = {"n", "n"}, *n1[] = {"n"};
    sj_value th = sj_input(g, "theta", 1, one);
    sj_value a = sj_input(g, "A", 2, nn);
    sj_value b = sj_input(g, "b", 1, n1);
    sj_cov *s = sj_cov_scalar(g, "s", "n", 1.0, sj_transform_exp2());
    sj_value v = SJ_INVALID;
    if (s && sj_cov_build(s, th, &v) != SJ_OK)
        v = SJ_INVALID;
    if (v != SJ_INVALID)
        v = sj_add(g, v, a);
    sj_value l = sj_cholesky(g, v);
    sj_value quad = sj_sum_all(g, sj_mul(g, b, sj_cholesky_solve(g, l, b)));
    p->out = sj_add(g, sj_add(g, sj_logdet(g, v), quad), sj_sum_all(g, sj_tanh(g, b)));
    return sj_graph_status(g);
}

static sj_status stage(pipe *p, int s)
{
    int ranks[3] = {1, 2, 2};
    int64_t d0[1] = {1}, d1[2] = {N, N}, d2[2] = {BATCH, N};
    const int64_t *dims[3] = {d0, d1, d2};
    const double *in[3] = {theta, amat, bvec};
    switch (s) {
    case ST_BUILD:
        return build(p);
    case ST_FN:
        return sj_fn_create(p->g, 1, &p->out, &p->fn);
    case ST_XFORM: {
        sj_status st = sj_grad(p->fn, 0, 0, NULL, &p->grad);
        if (st != SJ_OK)
            return st;
        int in_axes[3] = {-1, -1, 0};
        return sj_vmap(p->grad, in_axes, NULL, "B", &p->vm);
    }
    case ST_SPEC:
        return sj_fn_specialize(p->vm, 3, ranks, dims, &p->spec);
    case ST_EVAL:
        return sj_compiled_eval(p->spec, in, p->res);
    case ST_COMPILE:
        return sj_fn_compile(p->vm, 3, ranks, dims, &p->nat);
    case ST_CALL:
        return sj_compiled_call(p->nat, in, p->res);
    }
    return SJ_ERR_INTERNAL;
}

static void pipe_init(pipe *p, sj_ctx *ctx)
{
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    for (int k = 0; k < NOUT; k++) {
        p->res[k] = malloc(out_size[k] * sizeof(double));
        for (size_t i = 0; i < out_size[k]; i++)
            p->res[k][i] = NAN;
    }
}

static void pipe_free(pipe *p)
{
    sj_compiled_free(p->nat);
    sj_compiled_free(p->spec);
    sj_fn_free(p->vm);
    sj_fn_free(p->grad);
    sj_fn_free(p->fn);
    sj_graph_free(p->g);
    for (int k = 0; k < NOUT; k++)
        free(p->res[k]);
}

/* Runs stages [0, upto) without failures, asserting success; the results of
 * eval (or of the native call if upto passes ST_CALL) land in p->res. */
static void run_clean(pipe *p, int upto)
{
    for (int s = 0; s < upto; s++)
        assert_ok(stage(p, s), p->ctx);
}

static double *want[NOUT];

static void check_results(pipe *p)
{
    for (int k = 0; k < NOUT; k++)
        assert_close(p->res[k], want[k], out_size[k], 1e-12, 1e-12);
}

/* The context still works after a failure: a whole fresh pipeline in it. */
static void check_usable(sj_ctx *ctx, int native)
{
    pipe q;
    pipe_init(&q, ctx);
    run_clean(&q, native ? NSTAGE : ST_COMPILE);
    check_results(&q);
    pipe_free(&q);
}

static void sweep(int s, long *nk, long *noom, long *nabsorbed)
{
    int native = s >= ST_COMPILE;
    for (long k = 1;; k++) {
        sj_ctx *ctx = NULL;
        assert_ok(sj_ctx_create(&ctx), NULL);
        pipe p;
        pipe_init(&p, ctx);
        run_clean(&p, s);
        ir_alloc_fail_at(k);
        sj_status st = stage(&p, s);
        int reached = !ir_alloc_fail_pending();
        ir_alloc_fail_at(0);
        if (!reached) {
            /* The stage made fewer than k allocations: the sweep is done. */
            assert_ok(st, ctx);
            pipe_free(&p);
            sj_ctx_free(ctx);
            *nk = k - 1;
            return;
        }
        if (st == SJ_OK) {
            (*nabsorbed)++;
        } else {
            if (st != SJ_ERR_OUT_OF_MEMORY || !strstr(sj_ctx_last_error(ctx), "out of memory"))
                print_error("stage %s, allocation %ld: got %s \"%s\"\n", stage_name[s], k,
                            sj_status_name(st), sj_ctx_last_error(ctx));
            assert_int_equal(st, SJ_ERR_OUT_OF_MEMORY);
            assert_non_null(strstr(sj_ctx_last_error(ctx), "out of memory"));
            (*noom)++;
        }
        /* A failed graph keeps its error; anything else made so far is
         * freed by its owner as usual. */
        pipe_free(&p);
        check_usable(ctx, native);
        sj_ctx_free(ctx);
    }
}

static void test_sweep(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    pipe p;
    pipe_init(&p, ctx);
    run_clean(&p, ST_COMPILE);
    for (int k = 0; k < NOUT; k++) {
        want[k] = malloc(out_size[k] * sizeof(double));
        memcpy(want[k], p.res[k], out_size[k] * sizeof(double));
        for (size_t i = 0; i < out_size[k]; i++)
            assert_true(isfinite(want[k][i]));
    }
    pipe_free(&p);
    sj_ctx_free(ctx);

    long total = 0;
    for (int s = 0; s < NSTAGE; s++) {
        long nk = 0, noom = 0, nabsorbed = 0;
        sweep(s, &nk, &noom, &nabsorbed);
        print_message("%-18s %4ld allocations failed one at a time: %ld out of memory, "
                      "%ld absorbed\n", stage_name[s], nk, noom, nabsorbed);
        assert_true(nk > 0 || s == ST_CALL || s == ST_EVAL);
        total += nk;
    }
    print_message("failure-injection sweep: %ld runs\n", total);
    for (int k = 0; k < NOUT; k++)
        free(want[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
