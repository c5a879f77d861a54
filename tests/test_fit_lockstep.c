/* Lock-step batched fits (docs/fit.md, "Lock-step batches"): a batched fit
 * of CG_FIT_LOCKSTEP_MIN or more items under the relative-objective rule
 * evaluates all items in one call of the batched fused function per round.
 * Its results are checked against the per-item solver: the single compiled
 * fit called per item, and the reference evaluator (which runs ir_newton
 * per item over the separate sub-graphs): β̂ to 1e-10 relative, iteration
 * counts and converged flags exactly.
 *   - poisson_log: items converging after different numbers of iterations,
 *     one not converging within max_iter (all-zero counts);
 *   - binomial_logit: near-separated items (large |β̂|, some not converging);
 *   - gamma_log: a continuous family;
 *   - halvings: a pseudo-Huber objective from far starting points, where the
 *     full Newton step overshoots and most items halve many times, some
 *     items not halving at all;
 *   - chunks: 130 items in three chunks (the last one padded) on the
 *     pool, the same bytes on one thread and on four, and a failing item
 *     in each of the last two chunks reports the first;
 *   - fallback: an objective whose batched evaluation fails (a Cholesky
 *     that is not positive definite at some item's trial point) runs the
 *     batch item by item: the results are those of single fits, bit for bit;
 *   - failing_item: a negative count in two items of a Poisson batch
 *     (a deviance that is NaN at the start) fails with SJ_ERR_DOMAIN naming
 *     the first of them;
 *   - rowgram: the row-scaled Gram rewrite fires on the vmapped GLM
 *     curvature 2 (√w X)ᵀ(√w X) when B >= p (the printed graph's rewrite
 *     log), not when B < p, and equals the per-item products to 1e-12.
 * The kernel's LLVM IR names the batched function (".all_batched"), which
 * shows that the lock-step path is compiled; a batch below the threshold
 * has none. */
#include "testutil.h"

#include "codegen/pool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define DIMS(...) ((const char *const[]){__VA_ARGS__})
enum { NMAX = 120, PMAX = 4, BMAX = 160 };

/* A GLM batch: B responses of n rows sharing X [n, p]. */
typedef struct glm_case {
    const char *family, *link;
    int b, n, p, max_iter;
    double x[NMAX * PMAX], y[BMAX * NMAX];
} glm_case;

static sj_fn *glm_fn(sj_ctx *ctx, const glm_case *c)
{
    sj_graph *g = NULL;
    sj_glm_family *fam = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    assert_ok(sj_glm_family_create(ctx, c->family, c->link, 0, &fam), ctx);
    sj_value x = sj_input(g, "X", 2, DIMS("n", "p")), y = sj_input(g, "y", 1, DIMS("n"));
    sj_value o[3];
    assert_ok(sj_glm_fit_graph(g, fam, x, y, SJ_INVALID, SJ_INVALID, c->max_iter, &o[0], &o[1],
                               &o[2]),
              ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 3, o, &f), ctx);
    sj_graph_free(g);
    sj_glm_family_free(fam);
    return f;
}

/* Whether the compiled kernel of vf for these inputs has a batched fused
 * function (the lock-step path). */
static int has_lockstep(sj_ctx *ctx, sj_fn *vf, int nin, const int *rank, const int64_t **dims)
{
    sj_compiled *c = NULL;
    assert_ok(sj_fn_compile(vf, nin, rank, dims, &c), ctx);
    char *ir = sj_compiled_llvm_ir(c);
    assert_non_null(ir);
    int has = strstr(ir, ".all_batched") != NULL;
    sj_string_free(ir);
    sj_compiled_free(c);
    return has;
}

/* The batch (native, lock step) against single fits and the evaluator. */
static void check_glm(const glm_case *c, int want_noconv)
{
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), ctx);
    sj_fn *f = glm_fn(ctx, c), *vf = NULL;
    assert_ok(sj_vmap(f, (int[]){-1, 0}, NULL, NULL, &vf), ctx);
    int p = c->p, b = c->b;
    int64_t dx[2] = {c->n, p}, dn = c->n, db[2] = {b, c->n};
    const int64_t *dims[2] = {dx, db};
    assert_true(has_lockstep(ctx, vf, 2, (int[]){2, 2}, dims));
    double *bv = malloc((size_t)(b * p) * sizeof *bv), it[BMAX], cv[BMAX];
    double *be = malloc((size_t)(b * p) * sizeof *be), ite[BMAX], cve[BMAX];
    assert_ok(sj_fn_call(vf, 2, (int[]){2, 2}, dims, (const double *[]){c->x, c->y},
                         (double *[]){bv, it, cv}),
              ctx);
    sj_compiled *cc = NULL;
    assert_ok(sj_fn_compile(vf, 2, (int[]){2, 2}, dims, &cc), ctx);
    assert_ok(sj_compiled_eval(cc, (const double *[]){c->x, c->y}, (double *[]){be, ite, cve}),
              ctx);
    sj_compiled_free(cc);
    int distinct = 0, nconv = 0, last = -1;
    for (int k = 0; k < b; k++) {
        double bk[PMAX], itk, cvk;
        assert_ok(sj_fn_call(f, 2, (int[]){2, 1}, (const int64_t *[]){dx, &dn},
                             (const double *[]){c->x, c->y + k * c->n},
                             (double *[]){bk, &itk, &cvk}),
                  ctx);
        if (it[k] != itk || cv[k] != cvk || it[k] != ite[k] || cv[k] != cve[k])
            fail_msg("%s item %d: iterations %g / %g / %g, converged %g / %g / %g", c->family, k,
                     it[k], itk, ite[k], cv[k], cvk, cve[k]);
        if (cv[k] == 1.0) { /* a diverging fit's β̂ is rounding-sensitive */
            assert_close(bv + k * p, bk, (size_t)p, 1e-10, 1e-12);
            assert_close(bv + k * p, be + k * p, (size_t)p, 1e-10, 1e-12);
        }
        nconv += cv[k] == 1.0;
        distinct += (int)it[k] != last;
        last = (int)it[k];
    }
    /* the data cover what they are meant to */
    assert_true(distinct >= 2);
    if (want_noconv)
        assert_true(nconv < b);
    free(bv);
    free(be);
    sj_fn_free(vf);
    sj_fn_free(f);
    sj_ctx_free(ctx);
}

/* X: an intercept and p - 1 uniform columns. */
static void make_x(glm_case *c, uint64_t *r)
{
    for (int i = 0; i < c->n; i++) {
        c->x[i * c->p] = 1;
        for (int j = 1; j < c->p; j++)
            c->x[i * c->p + j] = test_uniform(r, -1, 1);
    }
}

/* The linear predictor of item k at row i: slopes growing with k. */
static double eta(const glm_case *c, int k, int i, double scale)
{
    double s = scale * (0.2 + 0.15 * (k % 11)), e = 0.2;
    for (int j = 1; j < c->p; j++)
        e += (j % 2 ? s : -0.5 * s) * c->x[i * c->p + j];
    return e;
}

static void poisson_log(void **state)
{
    (void)state;
    glm_case *c = calloc(1, sizeof *c);
    *c = (glm_case){.family = "poisson", .link = "log", .b = 32, .n = 100, .p = 3, .max_iter = 8};
    uint64_t r = 7;
    make_x(c, &r);
    for (int k = 0; k < c->b; k++)
        for (int i = 0; i < c->n; i++)
            c->y[k * c->n + i] =
                k == 5 ? 0 : floor(exp(eta(c, k, i, 1.5)) * test_uniform(&r, 0.5, 1.5) + 0.5);
    check_glm(c, 1); /* item 5: the MLE of the intercept is −∞ */
    free(c);
}

static void binomial_logit(void **state)
{
    (void)state;
    glm_case *c = calloc(1, sizeof *c);
    *c = (glm_case){.family = "binomial", .link = "logit", .b = 24, .n = 60, .p = 2,
                    .max_iter = 25};
    uint64_t r = 11;
    make_x(c, &r);
    for (int k = 0; k < c->b; k++)
        for (int i = 0; i < c->n; i++) {
            /* items 3k + 2: separated by x except for one flipped row */
            double e = eta(c, k, i, k % 3 == 2 ? 40.0 : 3.0);
            double pr = 1 / (1 + exp(-e));
            c->y[k * c->n + i] = test_uniform(&r, 0, 1) < pr;
            if (k % 3 == 2 && i == k)
                c->y[k * c->n + i] = 1 - c->y[k * c->n + i];
        }
    check_glm(c, 0);
    free(c);
}

static void gamma_log(void **state)
{
    (void)state;
    glm_case *c = calloc(1, sizeof *c);
    *c = (glm_case){.family = "Gamma", .link = "log", .b = 16, .n = 80, .p = 4, .max_iter = 25};
    uint64_t r = 5;
    make_x(c, &r);
    for (int k = 0; k < c->b; k++)
        for (int i = 0; i < c->n; i++) /* shape-2 gamma noise: a sum of two exponentials */
            c->y[k * c->n + i] = exp(eta(c, k, i, 1.0)) * 0.5 *
                                 (-log(test_uniform(&r, 1e-3, 1)) - log(test_uniform(&r, 1e-3, 1)));
    check_glm(c, 0);
    free(c);
}

/* The fit of obj, the objective f(θ [2], a [2]) built in h (freed here),
 * from theta0: inputs theta0 and a. */
static sj_fn *pair_fit(sj_ctx *ctx, sj_graph *h, sj_value obj, int max_iter, double tol)
{
    sj_fn *of = NULL;
    assert_ok(sj_fn_create(h, 1, &obj, &of), ctx);
    sj_graph_free(h);
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value t0 = sj_input(g, "theta0", 1, DIMS("2")), ga = sj_input(g, "a", 1, DIMS("2")), o[3];
    assert_ok(sj_fit_argmin(g, of, NULL, t0, 1, &ga, max_iter, SJ_FIT_REL_OBJECTIVE, tol, &o[0],
                            &o[1], &o[2]),
              ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 3, o, &f), ctx);
    sj_graph_free(g);
    sj_fn_free(of);
    return f;
}

/* nb items of pair_fit f in lock step (th_hat, it, cv) and one by one
 * (th1, it1, cv1). */
static void pair_batch_and_items(sj_ctx *ctx, sj_fn *f, int nb, const double *t0v,
                                 const double *av, double *th_hat, double *it, double *cv,
                                 double *th1, double *it1, double *cv1)
{
    sj_fn *vf = NULL;
    assert_ok(sj_vmap(f, NULL, NULL, NULL, &vf), ctx);
    int64_t dd[2] = {nb, 2}, d1 = 2;
    const int64_t *dims[2] = {dd, dd};
    assert_true(has_lockstep(ctx, vf, 2, (int[]){2, 2}, dims));
    assert_ok(sj_fn_call(vf, 2, (int[]){2, 2}, dims, (const double *[]){t0v, av},
                         (double *[]){th_hat, it, cv}),
              ctx);
    for (int k = 0; k < nb; k++)
        assert_ok(sj_fn_call(f, 2, (int[]){1, 1}, (const int64_t *[]){&d1, &d1},
                             (const double *[]){t0v + 2 * k, av + 2 * k},
                             (double *[]){th1 + 2 * k, it1 + k, cv1 + k}),
                  ctx);
    sj_fn_free(vf);
}

/* f(θ, a) = Σ sqrt(1 + (θ − a)²): Newton from |θ − a| > 1 overshoots (the
 * full step lands at −(θ − a)³), so the step is halved. */
static void halvings(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), ctx);
    enum { NB = 20 };
    sj_graph *h = NULL;
    assert_ok(sj_graph_create(ctx, &h), ctx);
    sj_value th = sj_input(h, "theta", 1, DIMS("2")), a = sj_input(h, "a", 1, DIMS("2"));
    sj_value d = sj_sub(h, th, a);
    sj_value obj = sj_sum_all(h, sj_sqrt(h, sj_add(h, sj_square(h, d), sj_scalar(h, 1.0))));
    sj_fn *f = pair_fit(ctx, h, obj, 40, 1e-12);
    double t0v[NB * 2], av[NB * 2], th_hat[NB * 2], it[NB], cv[NB], th1[NB * 2], it1[NB], cv1[NB];
    for (int i = 0; i < NB * 2; i++) {
        av[i] = 0.1 * i;
        t0v[i] = av[i] + (i % 4 == 0 ? 0.5 : 0.7 * (i % 9) * (i % 9)); /* up to 45 away */
    }
    pair_batch_and_items(ctx, f, NB, t0v, av, th_hat, it, cv, th1, it1, cv1);
    for (int k = 0; k < NB; k++) {
        assert_close(th_hat + 2 * k, th1 + 2 * k, 2, 1e-10, 1e-12);
        assert_true(it[k] == it1[k] && cv[k] == cv1[k] && cv[k] == 1.0);
        assert_true(fabs(th_hat[2 * k] - av[2 * k]) < 1e-6);
    }
    sj_fn_free(f);
    sj_ctx_free(ctx);
}

/* 130 items: three chunks of 44 (the last one 42 items, padded), run on
 * the pool; the same bytes on one thread and on four. */
static void chunks(void **state)
{
    (void)state;
    glm_case *c = calloc(1, sizeof *c);
    *c = (glm_case){.family = "poisson", .link = "log", .b = 130, .n = 40, .p = 3, .max_iter = 25};
    uint64_t r = 13;
    make_x(c, &r);
    for (int k = 0; k < c->b; k++)
        for (int i = 0; i < c->n; i++)
            c->y[k * c->n + i] = floor(exp(eta(c, k, i, 1.0)) * test_uniform(&r, 0.5, 1.5) + 0.5);
    check_glm(c, 0);
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), ctx);
    sj_fn *f = glm_fn(ctx, c), *vf = NULL;
    assert_ok(sj_vmap(f, (int[]){-1, 0}, NULL, NULL, &vf), ctx);
    int64_t dx[2] = {c->n, c->p}, db[2] = {c->b, c->n};
    const int64_t *dims[2] = {dx, db};
    double b1[BMAX * PMAX], it1[BMAX], cv1[BMAX], b4[BMAX * PMAX], it4[BMAX], cv4[BMAX];
    cg_pool_set_threads(1);
    assert_ok(sj_fn_call(vf, 2, (int[]){2, 2}, dims, (const double *[]){c->x, c->y},
                         (double *[]){b1, it1, cv1}),
              ctx);
    cg_pool_set_threads(4);
    assert_ok(sj_fn_call(vf, 2, (int[]){2, 2}, dims, (const double *[]){c->x, c->y},
                         (double *[]){b4, it4, cv4}),
              ctx);
    assert_memory_equal(b1, b4, sizeof(double) * (size_t)(c->b * c->p));
    assert_memory_equal(it1, it4, sizeof(double) * (size_t)c->b);
    assert_memory_equal(cv1, cv4, sizeof(double) * (size_t)c->b);
    /* failing items in the last two chunks: the first in batch order */
    c->y[120 * c->n + 1] = -0.05;
    c->y[97 * c->n + 3] = -0.05;
    for (int threads = 1; threads <= 4; threads += 3) {
        cg_pool_set_threads(threads);
        sj_status st = sj_fn_call(vf, 2, (int[]){2, 2}, dims, (const double *[]){c->x, c->y},
                                  (double *[]){b4, it4, cv4});
        assert_int_equal(st, SJ_ERR_DOMAIN);
        if (!strstr(sj_ctx_last_error(ctx), "[batch 97]"))
            fail_msg("threads %d: %s", threads, sj_ctx_last_error(ctx));
    }
    cg_pool_set_threads(0);
    sj_fn_free(vf);
    sj_fn_free(f);
    sj_ctx_free(ctx);
    free(c);
}

/* f(θ, a) = Σ (θ − a)² + 10⁻³ Σ diag(chol(diag(θ))): the Cholesky fails
 * (a status, not a NaN) at a trial point with θ_i <= 0, which the items
 * with a negative a reach.  The batched function then fails for the whole
 * chunk, and the batch runs item by item (the fallback), where such a trial
 * point is halved: the results are those of single fits. */
static void fallback(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), ctx);
    enum { NB = 12 };
    sj_graph *h = NULL;
    assert_ok(sj_graph_create(ctx, &h), ctx);
    sj_value th = sj_input(h, "theta", 1, DIMS("2")), a = sj_input(h, "a", 1, DIMS("2"));
    sj_value chol = sj_cholesky(h, sj_diag_embed(h, th));
    sj_value obj = sj_add(h, sj_sum_all(h, sj_square(h, sj_sub(h, th, a))),
                          sj_mul(h, sj_scalar(h, 1e-3), sj_sum_all(h, sj_diag(h, chol))));
    sj_fn *f = pair_fit(ctx, h, obj, 30, 1e-10);
    double t0v[NB * 2], av[NB * 2], th_hat[NB * 2], it[NB], cv[NB], th1[NB * 2], it1[NB], cv1[NB];
    for (int k = 0; k < NB; k++) {
        t0v[2 * k] = t0v[2 * k + 1] = 1.0;
        av[2 * k] = k % 3 == 1 ? -0.5 : 0.5 + 0.1 * k;
        av[2 * k + 1] = 0.7;
    }
    pair_batch_and_items(ctx, f, NB, t0v, av, th_hat, it, cv, th1, it1, cv1);
    for (int k = 0; k < NB; k++) {
        assert_memory_equal(th_hat + 2 * k, th1 + 2 * k, 2 * sizeof(double));
        assert_true(it[k] == it1[k] && cv[k] == cv1[k]);
        assert_true(th_hat[2 * k] > 0 && (k % 3 == 1 || fabs(th_hat[2 * k] - av[2 * k]) < 1e-2));
    }
    sj_fn_free(f);
    sj_ctx_free(ctx);
}

static void failing_item(void **state)
{
    (void)state;
    glm_case *c = calloc(1, sizeof *c);
    *c = (glm_case){.family = "poisson", .link = "log", .b = 12, .n = 30, .p = 2, .max_iter = 25};
    uint64_t r = 3;
    make_x(c, &r);
    for (int k = 0; k < c->b; k++)
        for (int i = 0; i < c->n; i++)
            c->y[k * c->n + i] = floor(exp(eta(c, k, i, 1.0)) + 0.5);
    /* a count of −0.05: R's start (μ = y + 0.1) is fine, the deviance's
     * y log(y / μ) is not; items 9 and 6 fail, 6 is reported */
    c->y[9 * c->n + 4] = -0.05;
    c->y[6 * c->n + 2] = -0.05;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), ctx);
    sj_fn *f = glm_fn(ctx, c), *vf = NULL;
    assert_ok(sj_vmap(f, (int[]){-1, 0}, NULL, NULL, &vf), ctx);
    int64_t dx[2] = {c->n, c->p}, db[2] = {c->b, c->n};
    const int64_t *dims[2] = {dx, db};
    assert_true(has_lockstep(ctx, vf, 2, (int[]){2, 2}, dims));
    double bv[BMAX * PMAX], it[BMAX], cv[BMAX];
    sj_status st = sj_fn_call(vf, 2, (int[]){2, 2}, dims, (const double *[]){c->x, c->y},
                              (double *[]){bv, it, cv});
    assert_int_equal(st, SJ_ERR_DOMAIN);
    const char *msg = sj_ctx_last_error(ctx);
    if (!strstr(msg, "not finite at the starting point [batch 6]"))
        fail_msg("the message does not name item 6: %s", msg);
    /* below CG_FIT_LOCKSTEP_MIN items: per item, no batched function */
    int64_t dsmall[2] = {4, c->n};
    assert_false(has_lockstep(ctx, vf, 2, (int[]){2, 2}, (const int64_t *[]){dx, dsmall}));
    sj_fn_free(vf);
    sj_fn_free(f);
    sj_ctx_free(ctx);
    free(c);
}

/* vmap over w of 2 (√w X)ᵀ(√w X), as the GLM's curvature writes it. */
static void rowgram_case(int nb, int want_rewrite)
{
    enum { N = 50, P = 4 };
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), ctx);
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value w = sj_input(g, "w", 1, DIMS("n")), x = sj_input(g, "X", 2, DIMS("n", "p"));
    sj_value a = sj_mul(g, sj_reshape(g, sj_sqrt(g, w), 2, DIMS("n", "1")), x);
    sj_value out = sj_mul(g, sj_scalar(g, 2.0), sj_matmul(g, sj_mT(g, a), a));
    sj_fn *f = NULL, *vf = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    sj_graph_free(g);
    assert_ok(sj_vmap(f, (int[]){0, -1}, NULL, NULL, &vf), ctx);
    double *wv = malloc((size_t)(nb * N) * sizeof *wv), xv[N * P];
    double *gv = malloc((size_t)(nb * P * P) * sizeof *gv);
    uint64_t r = 9;
    for (int i = 0; i < nb * N; i++)
        wv[i] = test_uniform(&r, 0.1, 3);
    for (int i = 0; i < N * P; i++)
        xv[i] = test_uniform(&r, -2, 2);
    int64_t dw[2] = {nb, N}, dx[2] = {N, P}, d1 = N;
    const int64_t *dims[2] = {dw, dx};
    sj_compiled *c = NULL;
    assert_ok(sj_fn_compile(vf, 2, (int[]){2, 2}, dims, &c), ctx);
    char *text = sj_compiled_print(c);
    assert_non_null(text);
    if ((strstr(text, "rowgram") != NULL) != want_rewrite)
        fail_msg("B = %d, p = %d: the rewrite %s:\n%s", nb, P,
                 want_rewrite ? "did not fire" : "fired", text);
    sj_string_free(text);
    assert_ok(sj_compiled_call(c, (const double *[]){wv, xv}, (double *[]){gv}), ctx);
    sj_compiled_free(c);
    for (int k = 0; k < nb; k++) {
        double gk[P * P];
        assert_ok(sj_fn_call(f, 2, (int[]){1, 2}, (const int64_t *[]){&d1, dx},
                             (const double *[]){wv + k * N, xv}, (double *[]){gk}),
                  ctx);
        assert_close(gv + k * P * P, gk, P * P, 1e-12, 1e-12);
    }
    free(wv);
    free(gv);
    sj_fn_free(vf);
    sj_fn_free(f);
    sj_ctx_free(ctx);
}

static void rowgram(void **state)
{
    (void)state;
    rowgram_case(16, 1);
    rowgram_case(3, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(poisson_log),  cmocka_unit_test(binomial_logit),
        cmocka_unit_test(gamma_log),    cmocka_unit_test(halvings),
        cmocka_unit_test(chunks),       cmocka_unit_test(fallback),
        cmocka_unit_test(failing_item), cmocka_unit_test(rowgram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
