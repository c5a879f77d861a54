/* Batched native fits (docs/fit.md, "Batching" and "Native code"): the
 * items of a batched fit run on the batch pool, each in a workspace of its
 * own, and GLM fits evaluate objective, gradient and curvature in one fused
 * compiled function.
 *   - batch_equals_single: 40 Poisson fits sharing X (vmap over y), with
 *     items that converge after different numbers of iterations and one
 *     that does not converge within max_iter, equal the single compiled fit
 *     of each item (β̂ to 1e-12 relative, iterations and flag exactly) and
 *     the reference evaluator (which uses the separate functions: the fused
 *     one changes no result; 1e-12);
 *   - threads_bitwise: the batch on one thread and on the pool (4 threads,
 *     OpenBLAS on one thread as ctest sets it) gives the same bytes;
 *   - failing_item: a batch of 64 small fits whose objective is NaN at the
 *     start of two items fails with SJ_ERR_DOMAIN naming the first of them
 *     in batch order, on one thread and on the pool;
 *   - concurrent_calls: four threads calling the batched function at once
 *     (the pool is then busy for all but one) get the serial results
 *     (exactly); for ThreadSanitizer (ctest -R thread). */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/pool.h"

#define DIMS(...) ((const char *const[]){__VA_ARGS__})
enum { B = 40, N = 60, P = 3, MAXIT = 8 };

typedef struct fixture {
    sj_ctx *ctx;
    sj_fn *f, *vf;
    double x[N * P], y[B * N];
} fixture;

/* Item k: counts around exp(Xβ_k), β_k growing with k, so the items need
 * different numbers of IRLS iterations; item NOCONV is all zeros
 * (the MLE of the intercept is −∞: μ shrinks by about e per step, no convergence
 * within MAXIT). */
enum { NOCONV = 17 };
static void make_data(fixture *F)
{
    uint64_t r = 42;
    for (int i = 0; i < N; i++) {
        F->x[i * P] = 1;
        F->x[i * P + 1] = test_uniform(&r, -1, 1);
        F->x[i * P + 2] = test_uniform(&r, -1, 1);
    }
    for (int k = 0; k < B; k++)
        for (int i = 0; i < N; i++) {
            double s = 0.2 + 0.1 * (k % 13);
            double mu = exp(0.3 + s * 3 * F->x[i * P + 1] - s * F->x[i * P + 2]);
            F->y[k * N + i] = floor(mu * test_uniform(&r, 0.5, 1.5) + 0.5);
            if (k == NOCONV)
                F->y[k * N + i] = 0;
        }
}

static int setup(void **state)
{
    fixture *F = calloc(1, sizeof *F);
    if (!F || sj_ctx_create(&F->ctx) != SJ_OK)
        return -1;
    make_data(F);
    sj_graph *g = NULL;
    sj_glm_family *fam = NULL;
    if (sj_graph_create(F->ctx, &g) != SJ_OK ||
        sj_glm_family_create(F->ctx, "poisson", NULL, 0, &fam) != SJ_OK)
        return -1;
    sj_value x = sj_input(g, "X", 2, DIMS("n", "p")), y = sj_input(g, "y", 1, DIMS("n"));
    sj_value o[3];
    sj_status st = sj_glm_fit_graph(g, fam, x, y, SJ_INVALID, SJ_INVALID, MAXIT, &o[0], &o[1],
                                    &o[2]);
    if (st == SJ_OK)
        st = sj_fn_create(g, 3, o, &F->f);
    if (st == SJ_OK)
        st = sj_vmap(F->f, (int[]){-1, 0}, NULL, NULL, &F->vf);
    sj_graph_free(g);
    sj_glm_family_free(fam);
    *state = F;
    return st == SJ_OK ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *F = *state;
    cg_pool_set_threads(0);
    sj_fn_free(F->vf);
    sj_fn_free(F->f);
    sj_ctx_free(F->ctx);
    free(F);
    return 0;
}

static const int64_t dx[2] = {N, P}, dn = N, db[2] = {B, N};

static sj_status call_batch(fixture *F, const double *y, double *b, double *it, double *cv)
{
    return sj_fn_call(F->vf, 2, (int[]){2, 2}, (const int64_t *[]){dx, db},
                      (const double *[]){F->x, y}, (double *[]){b, it, cv});
}

static void batch_equals_single(void **state)
{
    fixture *F = *state;
    double b[B * P], it[B], cv[B];
    assert_ok(call_batch(F, F->y, b, it, cv), F->ctx);
    int iters_seen[MAXIT + 2] = {0}, nconv = 0;
    for (int k = 0; k < B; k++) {
        double bk[P], itk, cvk;
        assert_ok(sj_fn_call(F->f, 2, (int[]){2, 1}, (const int64_t *[]){dx, &dn},
                             (const double *[]){F->x, F->y + k * N}, (double *[]){bk, &itk, &cvk}),
                  F->ctx);
        assert_close(b + k * P, bk, P, 1e-12, 1e-13);
        assert_true(it[k] == itk);
        assert_true(cv[k] == cvk);
        iters_seen[(int)it[k] <= MAXIT ? (int)it[k] : MAXIT + 1]++;
        nconv += cv[k] == 1.0;
    }
    /* the data cover what they are meant to */
    assert_true(cv[NOCONV] == 0.0 && it[NOCONV] == MAXIT);
    assert_int_equal(nconv, B - 1);
    int distinct = 0;
    for (int i = 0; i <= MAXIT + 1; i++)
        distinct += iters_seen[i] > 0;
    assert_true(distinct >= 3);
    /* the reference evaluator (separate objective, gradient and curvature) */
    sj_compiled *c = NULL;
    assert_ok(sj_fn_compile(F->vf, 2, (int[]){2, 2}, (const int64_t *[]){dx, db}, &c), F->ctx);
    double be[B * P], ite[B], cve[B];
    assert_ok(sj_compiled_eval(c, (const double *[]){F->x, F->y}, (double *[]){be, ite, cve}),
              F->ctx);
    sj_compiled_free(c);
    for (int k = 0; k < B; k++) {
        if (k != NOCONV) /* −∞ is approached along a flat valley: compare the others */
            assert_close(b + k * P, be + k * P, P, 1e-12, 1e-13);
        assert_true(it[k] == ite[k] && cv[k] == cve[k]);
    }
}

static void threads_bitwise(void **state)
{
    fixture *F = *state;
    double b1[B * P], it1[B], cv1[B], b4[B * P], it4[B], cv4[B];
    cg_pool_set_threads(1);
    assert_ok(call_batch(F, F->y, b1, it1, cv1), F->ctx);
    cg_pool_set_threads(4);
    for (int rep = 0; rep < 3; rep++) {
        assert_ok(call_batch(F, F->y, b4, it4, cv4), F->ctx);
        assert_memory_equal(b1, b4, sizeof b1);
        assert_memory_equal(it1, it4, sizeof it1);
        assert_memory_equal(cv1, cv4, sizeof cv1);
    }
    cg_pool_set_threads(0);
}

/* f(θ, a) = Σ (θ − a)² + Σ log a over items a [NB, 2], from θ0 = a: the
 * objective is NaN at the start of an item with a negative entry. */
static void failing_item(void **state)
{
    fixture *F = *state;
    sj_ctx *ctx = F->ctx;
    enum { NB = 64 };
    sj_graph *h = NULL, *g = NULL;
    assert_ok(sj_graph_create(ctx, &h), ctx);
    sj_value th = sj_input(h, "theta", 1, DIMS("2")), a = sj_input(h, "a", 1, DIMS("2"));
    sj_value obj = sj_add(h, sj_sum_all(h, sj_square(h, sj_sub(h, th, a))),
                          sj_sum_all(h, sj_log(h, a)));
    sj_fn *of = NULL;
    assert_ok(sj_fn_create(h, 1, &obj, &of), ctx);
    sj_graph_free(h);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value ga = sj_input(g, "a", 1, DIMS("2")), o[3];
    assert_ok(sj_fit_argmin(g, of, NULL, ga, 1, &ga, 10, SJ_FIT_REL_OBJECTIVE, 1e-10, &o[0],
                            &o[1], &o[2]),
              ctx);
    sj_fn *f = NULL, *vf = NULL;
    assert_ok(sj_fn_create(g, 3, o, &f), ctx);
    sj_graph_free(g);
    assert_ok(sj_vmap(f, NULL, NULL, NULL, &vf), ctx);
    double av[NB * 2], th_hat[NB * 2], it[NB], cv[NB];
    for (int i = 0; i < NB * 2; i++)
        av[i] = 1.0 + 0.01 * i;
    int64_t da[2] = {NB, 2};
    for (int threads = 1; threads <= 4; threads += 3) {
        cg_pool_set_threads(threads);
        assert_ok(sj_fn_call(vf, 1, (int[]){2}, (const int64_t *[]){da}, (const double *[]){av},
                             (double *[]){th_hat, it, cv}),
                  ctx);
        for (int k = 0; k < NB; k++)
            assert_true(cv[k] == 1.0 && fabs(th_hat[2 * k] - av[2 * k]) < 1e-12);
    }
    av[2 * 50 + 1] = -1; /* items 50 and 21 fail; 21 is reported */
    av[2 * 21] = -2;
    for (int threads = 1; threads <= 4; threads += 3) {
        cg_pool_set_threads(threads);
        sj_status st = sj_fn_call(vf, 1, (int[]){2}, (const int64_t *[]){da},
                                  (const double *[]){av}, (double *[]){th_hat, it, cv});
        assert_int_equal(st, SJ_ERR_DOMAIN);
        const char *msg = sj_ctx_last_error(ctx);
        if (!strstr(msg, "batch 21") || strstr(msg, "batch 50"))
            fail_msg("threads %d: the message does not name item 21 alone: %s", threads, msg);
    }
    cg_pool_set_threads(0);
    sj_fn_free(vf);
    sj_fn_free(f);
    sj_fn_free(of);
}

typedef struct worker_arg {
    fixture *F;
    double b[B * P], it[B], cv[B];
    sj_status st;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int rep = 0; rep < 3 && a->st == SJ_OK; rep++)
        a->st = call_batch(a->F, a->F->y, a->b, a->it, a->cv);
    return NULL;
}

static void concurrent_calls(void **state)
{
    fixture *F = *state;
    double b[B * P], it[B], cv[B];
    cg_pool_set_threads(1);
    assert_ok(call_batch(F, F->y, b, it, cv), F->ctx);
    cg_pool_set_threads(3);
    enum { NT = 4 };
    worker_arg *a = calloc(NT, sizeof *a);
    pthread_t t[NT];
    assert_non_null(a);
    for (int i = 0; i < NT; i++) {
        a[i].F = F;
        assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].st, SJ_OK);
        assert_memory_equal(a[i].b, b, sizeof b);
        assert_memory_equal(a[i].it, it, sizeof it);
        assert_memory_equal(a[i].cv, cv, sizeof cv);
    }
    free(a);
    cg_pool_set_threads(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_equals_single),
        cmocka_unit_test(threads_bitwise),
        cmocka_unit_test(failing_item),
        cmocka_unit_test(concurrent_calls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
