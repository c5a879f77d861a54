/* Concurrency across different functions: several threads each build their
 * own graph, derive functions from it (grad, vmap), and compile and call
 * them, while sharing one context and one cache; functions that are equal
 * (same graph) share compiled code.  Every result must equal the serial
 * run's.  Run under ThreadSanitizer by scripts/test (ctest -R thread). */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#define NTHREAD 4
#define NROUND 6

enum { N = 5 };

/* Function `kind` of x [n]: three different models, two threads each on
 * kinds 0 and 1 (shared compiled code), the rest distinct. */
static sj_fn *make(sj_ctx *ctx, int kind, int derive)
{
    sj_graph *g = NULL;
    if (sj_graph_create(ctx, &g) != SJ_OK)
        return NULL;
    const char *n1[] = {"n"};
    sj_value x = sj_input(g, "x", 1, n1), y;
    if (kind == 0)
        y = sj_sum_all(g, sj_tanh(g, sj_mul(g, x, x)));
    else if (kind == 1)
        y = sj_logdet(g, sj_add(g, sj_outer(g, x, x), sj_eye(g, "n")));
    else
        y = sj_sum_all(g, sj_exp(g, sj_neg(g, sj_abs(g, x))));
    sj_fn *fn = NULL, *d = NULL;
    sj_fn_create(g, 1, &y, &fn);
    sj_graph_free(g);
    if (!fn || !derive)
        return fn;
    sj_grad(fn, 0, 0, NULL, &d);
    sj_fn_free(fn);
    return d;
}

static void input(int round, double *x)
{
    for (int i = 0; i < N; i++)
        x[i] = 0.1 * (i + 1) - 0.05 * round;
}

typedef struct job {
    sj_ctx *ctx;
    int kind;
    pthread_barrier_t *start;
    double got[NROUND][N];
    int failures;
} job;

static void *worker(void *p)
{
    job *j = p;
    pthread_barrier_wait(j->start);
    for (int r = 0; r < NROUND; r++) {
        /* A fresh function each round: the cache must find the same code. */
        sj_fn *fn = make(j->ctx, j->kind % 3, 1);
        int rank = 1;
        int64_t d[1] = {N};
        const int64_t *dims[1] = {d};
        double x[N];
        input(r, x);
        const double *in[1] = {x};
        double *out[1] = {j->got[r]};
        if (!fn || sj_fn_call(fn, 1, &rank, dims, in, out) != SJ_OK)
            j->failures++;
        sj_fn_free(fn);
    }
    return NULL;
}

static void test_different_functions(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    /* The serial run, through the evaluator of a separate specialisation. */
    double want[3][NROUND][N];
    for (int k = 0; k < 3; k++) {
        sj_fn *fn = make(ctx, k, 1);
        assert_non_null(fn);
        int rank = 1;
        int64_t d[1] = {N};
        const int64_t *dims[1] = {d};
        sj_compiled *c = NULL;
        assert_ok(sj_fn_specialize(fn, 1, &rank, dims, &c), ctx);
        for (int r = 0; r < NROUND; r++) {
            double x[N];
            input(r, x);
            const double *in[1] = {x};
            double *out[1] = {want[k][r]};
            assert_ok(sj_compiled_eval(c, in, out), ctx);
        }
        sj_compiled_free(c);
        sj_fn_free(fn);
    }
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREAD);
    pthread_t th[NTHREAD];
    static job jobs[NTHREAD];
    for (int t = 0; t < NTHREAD; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t] = (job){.ctx = ctx, .kind = t, .start = &start};
        assert_int_equal(pthread_create(&th[t], NULL, worker, &jobs[t]), 0);
    }
    for (int t = 0; t < NTHREAD; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start);
    for (int t = 0; t < NTHREAD; t++) {
        assert_int_equal(jobs[t].failures, 0);
        for (int r = 0; r < NROUND; r++)
            assert_close(jobs[t].got[r], want[t % 3][r], N, 1e-12, 1e-13);
    }
    /* Kinds 0, 1, 2 (thread 3 repeats kind 0): three compiled functions. */
    double entries = 0;
    assert_ok(sj_ctx_counter(ctx, "cache_entries", &entries), ctx);
    assert_true(entries == 3);
    sj_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_different_functions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
