/* Threads: one compiled function called from several threads at once gives
 * the results of a serial run; several threads compiling and calling one
 * function with different (and some equal) shapes through the cache make
 * exactly one compile per distinct shape. */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREAD 4
#define NCALL 200

/* f(A: [n, n], B: [n, m]) = (logdet A, A⁻¹ B, sum(tanh(B)) * 2 + 1, Bᵀ B). */
static sj_fn *make_fn(sj_ctx *ctx)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *nn[] = {"n", "n"}, *nm[] = {"n", "m"};
    sj_value a = sj_input(g, "A", 2, nn);
    sj_value b = sj_input(g, "B", 2, nm);
    sj_value out[4];
    out[0] = sj_logdet(g, a);
    out[1] = sj_cholesky_solve(g, sj_cholesky(g, a), b);
    out[2] = sj_add(g, sj_mul(g, sj_sum_all(g, sj_tanh(g, b)), sj_scalar(g, 2.0)),
                    sj_scalar(g, 1.0));
    out[3] = sj_matmul(g, sj_mT(g, b), b);
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, 4, out, &fn), ctx);
    sj_graph_free(g);
    return fn;
}

/* Inputs of one call, a function of (n, m, seed) only. */
static void make_inputs(int64_t n, int64_t m, uint64_t seed, double *a, double *b)
{
    uint64_t rng = seed * 0x9e3779b97f4a7c15ULL + 1;
    double *w = malloc((size_t)(n * n) * sizeof *w);
    for (int64_t i = 0; i < n * n; i++)
        w[i] = test_uniform(&rng, -1, 1);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = i == j ? (double)n : 0;
            for (int64_t k = 0; k < n; k++)
                s += w[i * n + k] * w[j * n + k];
            a[i * n + j] = s;
        }
    for (int64_t i = 0; i < n * m; i++)
        b[i] = test_uniform(&rng, -2, 2);
    free(w);
}

typedef struct result {
    double ld, sum;
    double *x;  /* n × m */
    double *bb; /* m × m */
} result;

static void result_alloc(result *r, int64_t n, int64_t m)
{
    r->x = malloc((size_t)(n * m) * sizeof *r->x);
    r->bb = malloc((size_t)(m * m) * sizeof *r->bb);
}

static void result_free(result *r)
{
    free(r->x);
    free(r->bb);
}

static void assert_same(const result *got, const result *want, int64_t n, int64_t m)
{
    assert_close(&got->ld, &want->ld, 1, 1e-13, 1e-13);
    assert_close(&got->sum, &want->sum, 1, 1e-13, 1e-13);
    assert_close(got->x, want->x, (size_t)(n * m), 1e-12, 1e-13);
    assert_close(got->bb, want->bb, (size_t)(m * m), 1e-12, 1e-13);
}

/* ---- one compiled function, many threads ---------------------------------- */

enum { N1 = 12, M1 = 3 };

typedef struct shared_call {
    sj_ctx *ctx;
    sj_compiled *c;
    pthread_barrier_t *start;
    int thread;
    result *want; /* NTHREAD * NCALL serial results */
    int failures;
    sj_status first_error;
} shared_call;

static int close_to(double got, double want)
{
    return fabs(got - want) <= 1e-13 * (1 + fabs(want));
}

static void *call_worker(void *p)
{
    shared_call *s = p;
    double a[N1 * N1], b[N1 * M1];
    result r;
    result_alloc(&r, N1, M1);
    pthread_barrier_wait(s->start);
    for (int k = 0; k < NCALL; k++) {
        int id = s->thread * NCALL + k;
        make_inputs(N1, M1, (uint64_t)id, a, b);
        const double *in[2] = {a, b};
        double *out[4] = {&r.ld, r.x, &r.sum, r.bb};
        sj_status st = sj_compiled_call(s->c, in, out);
        const result *w = &s->want[id];
        /* The same code on the same data: equal up to the last bits that a
         * multi-threaded BLAS might order differently. */
        int same = st == SJ_OK && close_to(r.ld, w->ld) && close_to(r.sum, w->sum);
        for (int i = 0; same && i < N1 * M1; i++)
            same = close_to(r.x[i], w->x[i]);
        for (int i = 0; same && i < M1 * M1; i++)
            same = close_to(r.bb[i], w->bb[i]);
        if (!same) {
            s->failures++;
            if (st != SJ_OK && s->first_error == SJ_OK)
                s->first_error = st;
        }
    }
    result_free(&r);
    return NULL;
}

static void test_one_function_many_threads(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    sj_fn *fn = make_fn(ctx);
    int ranks[2] = {2, 2};
    int64_t dnn[2] = {N1, N1}, dnm[2] = {N1, M1};
    const int64_t *dims[2] = {dnn, dnm};
    sj_compiled *c = NULL;
    assert_ok(sj_fn_compile(fn, 2, ranks, dims, &c), ctx);

    /* The serial run, and a check of it against the reference evaluator. */
    result *want = calloc(NTHREAD * NCALL, sizeof *want);
    double a[N1 * N1], b[N1 * M1];
    for (int id = 0; id < NTHREAD * NCALL; id++) {
        result *r = &want[id];
        result_alloc(r, N1, M1);
        make_inputs(N1, M1, (uint64_t)id, a, b);
        const double *in[2] = {a, b};
        double *out[4] = {&r->ld, r->x, &r->sum, r->bb};
        assert_ok(sj_compiled_call(c, in, out), ctx);
        if (id % 97 == 0) {
            result e;
            result_alloc(&e, N1, M1);
            double *eo[4] = {&e.ld, e.x, &e.sum, e.bb};
            assert_ok(sj_compiled_eval(c, in, eo), ctx);
            assert_same(r, &e, N1, M1);
            result_free(&e);
        }
    }

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREAD);
    pthread_t th[NTHREAD];
    shared_call args[NTHREAD];
    for (int t = 0; t < NTHREAD; t++) {
        args[t] = (shared_call){.ctx = ctx, .c = c, .start = &start, .thread = t, .want = want};
        assert_int_equal(pthread_create(&th[t], NULL, call_worker, &args[t]), 0);
    }
    for (int t = 0; t < NTHREAD; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start);
    for (int t = 0; t < NTHREAD; t++) {
        if (args[t].failures)
            print_error("thread %d: %d of %d calls differ (first error %s: %s)\n", t,
                        args[t].failures, NCALL, sj_status_name(args[t].first_error),
                        sj_ctx_last_error(ctx));
        assert_int_equal(args[t].failures, 0);
    }
    for (int id = 0; id < NTHREAD * NCALL; id++)
        result_free(&want[id]);
    free(want);
    sj_compiled_free(c);
    sj_fn_free(fn);
    sj_ctx_free(ctx);
}

/* ---- one function, many shapes, many threads, through the cache ------------- */

#define NCACHECALL 40

typedef struct shared_fn {
    sj_ctx *ctx;
    sj_fn *fn;
    pthread_barrier_t *start;
    int thread;
    int64_t n, m;
    int failures;
    char first_msg[256];
} shared_fn;

static void *fn_worker(void *p)
{
    shared_fn *s = p;
    int64_t n = s->n, m = s->m;
    double *a = malloc((size_t)(n * n) * sizeof *a), *b = malloc((size_t)(n * m) * sizeof *b);
    result r, e;
    result_alloc(&r, n, m);
    result_alloc(&e, n, m);
    int ranks[2] = {2, 2};
    int64_t dnn[2] = {n, n}, dnm[2] = {n, m};
    const int64_t *dims[2] = {dnn, dnm};
    sj_compiled *ref = NULL;
    if (sj_fn_specialize(s->fn, 2, ranks, dims, &ref) != SJ_OK)
        s->failures++;
    pthread_barrier_wait(s->start);
    for (int k = 0; ref && k < NCACHECALL; k++) {
        make_inputs(n, m, (uint64_t)(1000 * s->thread + k), a, b);
        const double *in[2] = {a, b};
        double *out[4] = {&r.ld, r.x, &r.sum, r.bb};
        double *eo[4] = {&e.ld, e.x, &e.sum, e.bb};
        sj_status st = sj_fn_call(s->fn, 2, ranks, dims, in, out);
        sj_status se = sj_compiled_eval(ref, in, eo);
        int ok = st == SJ_OK && se == SJ_OK && fabs(r.ld - e.ld) <= 1e-10 * (1 + fabs(e.ld)) &&
                 fabs(r.sum - e.sum) <= 1e-10 * (1 + fabs(e.sum));
        for (int64_t i = 0; ok && i < n * m; i++)
            ok = fabs(r.x[i] - e.x[i]) <= 1e-10 * (1 + fabs(e.x[i]));
        for (int64_t i = 0; ok && i < m * m; i++)
            ok = fabs(r.bb[i] - e.bb[i]) <= 1e-10 * (1 + fabs(e.bb[i]));
        if (!ok && s->failures++ == 0)
            snprintf(s->first_msg, sizeof s->first_msg, "call %d: %s / %s", k,
                     sj_status_name(st), sj_status_name(se));
    }
    sj_compiled_free(ref);
    result_free(&r);
    result_free(&e);
    free(a);
    free(b);
    return NULL;
}

static void test_cache_many_threads(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    sj_fn *fn = make_fn(ctx);
    /* Threads 0 and 1 share a shape, so one waits for the other's compile. */
    static const int64_t shapes[NTHREAD][2] = {{6, 2}, {6, 2}, {9, 1}, {4, 5}};
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREAD);
    pthread_t th[NTHREAD];
    shared_fn args[NTHREAD];
    for (int t = 0; t < NTHREAD; t++) {
        args[t] = (shared_fn){.ctx = ctx, .fn = fn, .start = &start, .thread = t,
                              .n = shapes[t][0], .m = shapes[t][1]};
        assert_int_equal(pthread_create(&th[t], NULL, fn_worker, &args[t]), 0);
    }
    for (int t = 0; t < NTHREAD; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start);
    for (int t = 0; t < NTHREAD; t++) {
        if (args[t].failures)
            print_error("thread %d: %d failures, first: %s (%s)\n", t, args[t].failures,
                        args[t].first_msg, sj_ctx_last_error(ctx));
        assert_int_equal(args[t].failures, 0);
    }
    double compiles = -1, hits = -1, entries = -1;
    assert_ok(sj_ctx_counter(ctx, "compiles", &compiles), ctx);
    assert_ok(sj_ctx_counter(ctx, "cache_hits", &hits), ctx);
    assert_ok(sj_ctx_counter(ctx, "cache_entries", &entries), ctx);
    assert_true(compiles == 3);
    assert_true(entries == 3);
    assert_true(hits == NTHREAD * NCACHECALL - 3);
    sj_fn_free(fn);
    sj_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_function_many_threads),
        cmocka_unit_test(test_cache_many_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
