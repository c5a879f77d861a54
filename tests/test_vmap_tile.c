/* Batch tiling of vmapped functions (runtime/tile.c, docs/vmap.md "Batch
 * tiling"): a tiled function against the same function in a context made
 * with SJ_NO_TILE=1 (untiled, otherwise identical).
 *
 * Tolerance: 1e-12 relative to the largest entry of each item's output (as
 * tests/test_vmap_reml.c).  The chunk kernel computes every item with the
 * same ops as the whole-batch kernel, and C is a multiple of 8 so that
 * vectorised loops split a chunk's items as they split the whole batch's;
 * but an item in the whole batch's loop remainder (B not a multiple of 8) or
 * in a BLAS call that sees C instead of B rows (batched matrices that meet a
 * shared one are one larger GEMM, and OpenBLAS may pick another kernel for
 * another size) can round differently.  The REML gradient is a difference of
 * terms 10³ times larger than itself, so such rounding shows at ~1e-12 of
 * an entry (as between untiled vmap and per-item calls).  On the REML test
 * the results are bit-identical; it prints the largest difference.
 *
 * Run with the argument "threads" (ctest: test_vmap_tile_threads) it runs
 * only the concurrent-calls test. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "runtime/handles.h"
#include "runtime/tile.h"
#include "testutil.h"

/* A context whose functions are tiled (0) or not (1). */
static sj_ctx *ctx_new(int no_tile)
{
    if (no_tile)
        setenv("SJ_NO_TILE", "1", 1);
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    unsetenv("SJ_NO_TILE");
    return ctx;
}

static double counter(const sj_ctx *ctx, const char *name)
{
    double v = -1;
    assert_ok(sj_ctx_counter(ctx, name, &v), ctx);
    return v;
}

/* ---- a small batched function: L = chol(x xᵀ + s I), and a shared output --- */

enum { K = 8 };

/* f(x [K, K], s [], m [K, K]) -> (chol(x xᵀ + s I) [K, K], 2 m [K, K]),
 * vmapped with x and s batched at `axis` (0 or the last), m shared, outputs
 * at out axes (0, -1). */
static sj_fn *chol_fn(sj_ctx *ctx, int axis, int out_axis)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *dk[] = {"8", "8"}, *ds[] = {NULL};
    sj_value x = sj_input(g, "x", 2, dk), s = sj_input(g, "s", 0, ds),
             m = sj_input(g, "m", 2, dk);
    sj_value a = sj_add(g, sj_matmul(g, x, sj_mT(g, x)), sj_mul(g, s, sj_eye(g, "8")));
    sj_value outs[2] = {sj_cholesky(g, a), sj_mul(g, m, sj_scalar(g, 2.0))};
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL, *vf = NULL;
    assert_ok(sj_fn_create(g, 2, outs, &f), ctx);
    sj_graph_free(g);
    const int in_axes[3] = {axis, 0, -1}, out_axes[2] = {out_axis, -1};
    assert_ok(sj_vmap(f, in_axes, out_axes, "b", &vf), ctx);
    sj_fn_free(f);
    return vf;
}

typedef struct chol_data {
    int64_t nb;
    double *x, *s, m[K * K];
} chol_data;

static chol_data chol_data_new(int64_t nb, uint64_t seed)
{
    chol_data d = {.nb = nb};
    d.x = malloc((size_t)nb * K * K * sizeof(double));
    d.s = malloc((size_t)nb * sizeof(double));
    assert_non_null(d.x);
    assert_non_null(d.s);
    for (int64_t i = 0; i < nb * K * K; i++)
        d.x[i] = test_uniform(&seed, -1, 1);
    for (int64_t b = 0; b < nb; b++)
        d.s[b] = test_uniform(&seed, 0.5, 1.5);
    for (int i = 0; i < K * K; i++)
        d.m[i] = test_uniform(&seed, -1, 1);
    return d;
}

static void chol_data_free(chol_data *d)
{
    free(d->x);
    free(d->s);
}

/* Calls vf (batch axis 0) on d through a fresh compile in ctx; outputs
 * [nb, K, K] and [K, K].  Returns the status; *tile the chunk size. */
static sj_status chol_call(sj_ctx *ctx, sj_fn *vf, const chol_data *d, double *l, double *m2,
                           int64_t *tile)
{
    int ranks[3] = {3, 1, 2};
    int64_t dx[3] = {d->nb, K, K}, dsz[1] = {d->nb}, dm[2] = {K, K};
    const int64_t *dims[3] = {dx, dsz, dm};
    sj_compiled *c = NULL;
    assert_ok(sj_fn_compile(vf, 3, ranks, dims, &c), ctx);
    *tile = rt_compiled_tile_size(c);
    const double *in[3] = {d->x, d->s, d->m};
    double *out[2] = {l, m2};
    sj_status st = sj_compiled_call(c, in, out);
    sj_compiled_free(c);
    return st;
}

/* Tiled against untiled for nb items: equal to 1e-12; returns the chunk
 * size. */
static int64_t check_chol(sj_ctx *tiled, sj_ctx *plain, int64_t nb)
{
    sj_fn *vt = chol_fn(tiled, 0, 0), *vp = chol_fn(plain, 0, 0);
    chol_data d = chol_data_new(nb, 7 + (uint64_t)nb);
    double *lt = malloc((size_t)nb * K * K * sizeof(double));
    double *lp = malloc((size_t)nb * K * K * sizeof(double));
    double mt[K * K], mp[K * K];
    int64_t c = 0, c0 = 0;
    assert_ok(chol_call(tiled, vt, &d, lt, mt, &c), tiled);
    assert_ok(chol_call(plain, vp, &d, lp, mp, &c0), plain);
    assert_int_equal(c0, 0);
    assert_true(test_item_err(lt, lp, nb, K * K) <= 1e-12);
    assert_memory_equal(mt, mp, sizeof mt);
    free(lt);
    free(lp);
    chol_data_free(&d);
    sj_fn_free(vt);
    sj_fn_free(vp);
    return c;
}

/* A batch that is a multiple of the chunk and one that is not (the last
 * chunk padded), with an output at out axis -1 taken from one chunk. */
static void test_chunks_and_remainder(void **state)
{
    (void)state;
    sj_ctx *tiled = ctx_new(0), *plain = ctx_new(1);
    int64_t c = check_chol(tiled, plain, 1000);
    print_message("  chunk size at 1000 items: %lld\n", (long long)c);
    assert_true(c > 0 && 2 * c <= 1000);
    /* Find a batch that the chunk divides and one that it does not. */
    int seen_exact = 0, seen_rest = 0;
    for (int64_t nb = 4 * c; nb < 4 * c + 8 && !(seen_exact && seen_rest); nb++) {
        int64_t cn = check_chol(tiled, plain, nb);
        assert_true(cn > 0);
        seen_exact |= nb % cn == 0;
        seen_rest |= nb % cn != 0;
    }
    for (int64_t nb = 2 * c; !seen_exact && nb < 8 * c; nb++) {
        int64_t cn = check_chol(tiled, plain, nb);
        seen_exact |= cn > 0 && nb % cn == 0;
    }
    assert_true(seen_exact && seen_rest);
    assert_true(counter(tiled, "tiled_calls") >= 3);
    assert_true(counter(plain, "tiled_calls") == 0);
    sj_ctx_free(tiled);
    sj_ctx_free(plain);
}

/* Small batches are not tiled: fewer than two chunks. */
static void test_small_batch_untiled(void **state)
{
    (void)state;
    sj_ctx *ctx = ctx_new(0);
    sj_fn *vf = chol_fn(ctx, 0, 0);
    chol_data d = chol_data_new(5, 3);
    double l[5 * K * K], m2[K * K];
    int64_t c = -1;
    assert_ok(chol_call(ctx, vf, &d, l, m2, &c), ctx);
    assert_int_equal(c, 0);
    assert_true(counter(ctx, "tiled_calls") == 0);
    chol_data_free(&d);
    sj_fn_free(vf);
    sj_ctx_free(ctx);
}

/* Batch axes that are not 0 (inputs or outputs) are not tiled: a chunk
 * would not be a contiguous slice. */
static void test_other_axes_untiled(void **state)
{
    (void)state;
    sj_ctx *ctx = ctx_new(0);
    enum { NB = 1000 };
    for (int variant = 0; variant < 2; variant++) {
        /* variant 0: x batched at its last axis; 1: the factor's batch axis last */
        sj_fn *vf = chol_fn(ctx, variant == 0 ? 2 : 0, variant == 0 ? 0 : 2);
        chol_data d = chol_data_new(NB, 11);
        int ranks[3] = {3, 1, 2};
        int64_t dx0[3] = {NB, K, K}, dx2[3] = {K, K, NB}, dsz[1] = {NB}, dm[2] = {K, K};
        const int64_t *dims[3] = {variant == 0 ? dx2 : dx0, dsz, dm};
        sj_compiled *c = NULL;
        assert_ok(sj_fn_compile(vf, 3, ranks, dims, &c), ctx);
        assert_int_equal(rt_compiled_tile_size(c), 0);
        double *l = malloc(NB * K * K * sizeof(double)), m2[K * K];
        const double *in[3] = {d.x, d.s, d.m};
        double *out[2] = {l, m2};
        assert_ok(sj_compiled_call(c, in, out), ctx);
        free(l);
        sj_compiled_free(c);
        chol_data_free(&d);
        sj_fn_free(vf);
    }
    assert_true(counter(ctx, "tiled_calls") == 0);
    sj_ctx_free(ctx);
}

/* A graph with a fit node is not tiled: its items already run on the pool
 * or in lock step (a batch of 200 GLM fits would otherwise be cut into
 * chunks of a few items by its per-item scratch). */
static void test_fit_untiled(void **state)
{
    (void)state;
    enum { NB = 200, N = 60, P = 3 };
    sj_ctx *ctx = ctx_new(0);
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_glm_family *fam = NULL;
    assert_ok(sj_glm_family_create(ctx, "poisson", NULL, 0, &fam), ctx);
    sj_value x = sj_input(g, "X", 2, (const char *[]){"n", "p"});
    sj_value y = sj_input(g, "y", 1, (const char *[]){"n"});
    sj_value o[3];
    assert_ok(sj_glm_fit_graph(g, fam, x, y, SJ_INVALID, SJ_INVALID, 0, &o[0], &o[1], &o[2]), ctx);
    sj_fn *f = NULL, *vf = NULL;
    assert_ok(sj_fn_create(g, 3, o, &f), ctx);
    assert_ok(sj_vmap(f, (int[]){-1, 0}, NULL, NULL, &vf), ctx);
    static double xd[N * P], yd[NB * N], beta[NB * P], it[NB], cv[NB];
    uint64_t rng = 9;
    for (int i = 0; i < N; i++) {
        xd[P * i] = 1;
        for (int j = 1; j < P; j++)
            xd[P * i + j] = test_uniform(&rng, -1, 1);
    }
    for (int i = 0; i < NB * N; i++)
        yd[i] = floor(test_uniform(&rng, 0, 4));
    sj_compiled *c = NULL;
    assert_ok(sj_fn_compile(vf, 2, (int[]){2, 2}, (const int64_t *[]){(int64_t[]){N, P},
                                                                       (int64_t[]){NB, N}},
                            &c),
              ctx);
    assert_int_equal(rt_compiled_tile_size(c), 0);
    assert_ok(sj_compiled_call(c, (const double *[]){xd, yd}, (double *[]){beta, it, cv}), ctx);
    for (int b = 0; b < NB; b++)
        assert_true(cv[b] == 1.0);
    assert_true(counter(ctx, "tiled_calls") == 0);
    sj_compiled_free(c);
    sj_fn_free(vf);
    sj_fn_free(f);
    sj_glm_family_free(fam);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* Items 713 and 900 are not positive definite: the tiled call fails as the
 * untiled one does (status and message naming item 713), with the outputs
 * unchanged. */
static void test_failing_item(void **state)
{
    (void)state;
    enum { NB = 1000 };
    sj_ctx *ctx[2] = {ctx_new(0), ctx_new(1)};
    char msg[2][512];
    for (int k = 0; k < 2; k++) {
        sj_fn *vf = chol_fn(ctx[k], 0, 0);
        chol_data d = chol_data_new(NB, 5);
        d.s[713] = -1e3;
        d.s[900] = -1e3;
        double *l = malloc(NB * K * K * sizeof(double)), m2[K * K];
        for (int i = 0; i < NB * K * K; i++)
            l[i] = 42;
        for (int i = 0; i < K * K; i++)
            m2[i] = 43;
        int64_t c = 0;
        assert_int_equal(chol_call(ctx[k], vf, &d, l, m2, &c), SJ_ERR_NOT_POSITIVE_DEFINITE);
        assert_true(k == 0 ? c > 0 && 713 / c > 0 : c == 0); /* a later chunk */
        snprintf(msg[k], sizeof msg[k], "%s", sj_ctx_last_error(ctx[k]));
        print_message("  %s: %s\n", k ? "untiled" : "tiled", msg[k]);
        for (int i = 0; i < NB * K * K; i++)
            assert_true(l[i] == 42);
        for (int i = 0; i < K * K; i++)
            assert_true(m2[i] == 43);
        free(l);
        chol_data_free(&d);
        sj_fn_free(vf);
    }
    assert_string_equal(msg[0], msg[1]);
    assert_non_null(strstr(msg[0], "[batch 713]"));
    sj_ctx_free(ctx[0]);
    sj_ctx_free(ctx[1]);
}

/* f(x [R, 4], codes [2]) = (gather(x, codes) @ w, w ⊙ w) with x and codes
 * batched (gather then offsets each item's codes), w [4, 4] shared.
 * Outputs at out axes 0 and -1. */
static sj_fn *gather_fn(sj_ctx *ctx)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *dx[] = {"6", "4"}, *dc[] = {"2"}, *dw[] = {"4", "4"};
    sj_value x = sj_input(g, "x", 2, dx), codes = sj_input(g, "codes", 1, dc),
             w = sj_input(g, "w", 2, dw);
    sj_value outs[2] = {sj_matmul(g, sj_exp(g, sj_gather(g, x, codes)), w), sj_mul(g, w, w)};
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL, *vf = NULL;
    assert_ok(sj_fn_create(g, 2, outs, &f), ctx);
    sj_graph_free(g);
    const int in_axes[3] = {0, 0, -1}, out_axes[2] = {0, -1};
    assert_ok(sj_vmap(f, in_axes, out_axes, "b", &vf), ctx);
    sj_fn_free(f);
    return vf;
}

/* An out-of-range code (too large, then negative) in a later chunk: the
 * tiled message names the position, offset code and range of the whole
 * function, as untiled. */
static void test_failing_code(void **state)
{
    (void)state;
    enum { NB = 40000 };
    sj_ctx *ctx[2] = {ctx_new(0), ctx_new(1)};
    double *x = malloc(NB * 24 * sizeof(double)), *codes = malloc(NB * 2 * sizeof(double));
    double *out = malloc(NB * 8 * sizeof(double)), w[16], w2[16];
    assert_true(x && codes && out);
    uint64_t rng = 3;
    for (int i = 0; i < NB * 24; i++)
        x[i] = test_uniform(&rng, -1, 1);
    for (int i = 0; i < 16; i++)
        w[i] = test_uniform(&rng, -1, 1);
    for (int bad = 0; bad < 3; bad++) {
        char msg[2][512];
        for (int i = 0; i < NB * 2; i++)
            codes[i] = i % 6;
        if (bad < 2)
            codes[2 * 31234 + 1] = bad == 0 ? 9 : -2;
        for (int k = 0; k < 2; k++) {
            sj_fn *vf = gather_fn(ctx[k]);
            int ranks[3] = {3, 2, 2};
            int64_t dx[3] = {NB, 6, 4}, dc[2] = {NB, 2}, dw[2] = {4, 4};
            const int64_t *dims[3] = {dx, dc, dw};
            sj_compiled *c = NULL;
            assert_ok(sj_fn_compile(vf, 3, ranks, dims, &c), ctx[k]);
            int64_t chunk = rt_compiled_tile_size(c);
            assert_true(k == 0 ? chunk > 0 && 31234 / chunk > 0 : chunk == 0);
            const double *in[3] = {x, codes, w};
            double *o[2] = {out, w2};
            sj_status st = sj_compiled_call(c, in, o);
            snprintf(msg[k], sizeof msg[k], "%s", st ? sj_ctx_last_error(ctx[k]) : "");
            assert_int_equal(st, bad < 2 ? SJ_ERR_DOMAIN : SJ_OK);
            sj_compiled_free(c);
            sj_fn_free(vf);
        }
        print_message("  %s\n", msg[0]);
        assert_string_equal(msg[0], msg[1]);
    }
    free(x);
    free(codes);
    free(out);
    sj_ctx_free(ctx[0]);
    sj_ctx_free(ctx[1]);
}

/* vmap(vmap(f)): the outer batch is tiled. */
static void test_nested_vmap(void **state)
{
    (void)state;
    enum { NB = 400, NI = 4 };
    sj_ctx *ctx[2] = {ctx_new(0), ctx_new(1)};
    double *l[2];
    chol_data d = chol_data_new(NB * NI, 9);
    double m2[K * K];
    int64_t tile[2];
    for (int k = 0; k < 2; k++) {
        sj_fn *inner = chol_fn(ctx[k], 0, 0), *outer = NULL;
        const int in_axes[3] = {0, 0, -1}, out_axes[2] = {0, -1};
        assert_ok(sj_vmap(inner, in_axes, out_axes, "a", &outer), ctx[k]);
        int ranks[3] = {4, 2, 2};
        int64_t dx[4] = {NB, NI, K, K}, dsz[2] = {NB, NI}, dm[2] = {K, K};
        const int64_t *dims[3] = {dx, dsz, dm};
        sj_compiled *c = NULL;
        assert_ok(sj_fn_compile(outer, 3, ranks, dims, &c), ctx[k]);
        tile[k] = rt_compiled_tile_size(c);
        l[k] = malloc(NB * NI * K * K * sizeof(double));
        const double *in[3] = {d.x, d.s, d.m};
        double *out[2] = {l[k], m2};
        assert_ok(sj_compiled_call(c, in, out), ctx[k]);
        sj_compiled_free(c);
        sj_fn_free(inner);
        sj_fn_free(outer);
    }
    print_message("  nested: chunk %lld of %d outer items\n", (long long)tile[0], NB);
    assert_true(tile[0] > 0 && tile[1] == 0);
    assert_true(test_item_err(l[0], l[1], NB * NI, K * K) <= 1e-12);
    free(l[0]);
    free(l[1]);
    chol_data_free(&d);
    sj_ctx_free(ctx[0]);
    sj_ctx_free(ctx[1]);
}

/* ---- the REML gradient of bench/bench_vmap.c ------------------------------------- */

enum { RN = 180, RGROUP = 10, RQ = RN / RGROUP, RB = 1000 };

typedef struct reml_data {
    double theta[RB * 3], y[RB * RN], x[RN * 2], days[RN], codes[RN];
} reml_data;

static void reml_data_fill(reml_data *d)
{
    uint64_t rng = 99;
    for (int i = 0; i < RN; i++) {
        d->days[i] = i % RGROUP;
        d->codes[i] = i / RGROUP;
        d->x[2 * i] = 1;
        d->x[2 * i + 1] = i % RGROUP;
    }
    for (int b = 0; b < RB; b++) {
        d->theta[3 * b] = 6.4 + test_uniform(&rng, -0.5, 0.5);
        d->theta[3 * b + 1] = 3.5 + test_uniform(&rng, -0.5, 0.5);
        d->theta[3 * b + 2] = 6.5 + test_uniform(&rng, -0.5, 0.5);
        for (int i = 0; i < RN; i++)
            d->y[b * RN + i] = 250 + 10 * (i % RGROUP) + test_uniform(&rng, -40, 40);
    }
}

/* vmap(value_and_grad(REML)) compiled for RB items in ctx. */
static sj_compiled *reml_compile(sj_ctx *ctx)
{
    sj_fn *f = bench_dense_reml_fn(ctx, RQ), *vg = NULL, *vm = NULL;
    int wrt = 0;
    assert_ok(sj_value_and_grad(f, 0, 1, &wrt, &vg), ctx);
    const int in_axes[5] = {0, 0, -1, -1, -1};
    assert_ok(sj_vmap(vg, in_axes, NULL, "b", &vm), ctx);
    int ranks[5] = {2, 2, 2, 1, 1};
    int64_t d3[2] = {RB, 3}, dy[2] = {RB, RN}, dx[2] = {RN, 2}, dn[1] = {RN};
    const int64_t *dims[5] = {d3, dy, dx, dn, dn};
    sj_compiled *c = NULL;
    assert_ok(sj_fn_compile(vm, 5, ranks, dims, &c), ctx);
    sj_fn_free(f);
    sj_fn_free(vg);
    sj_fn_free(vm);
    return c;
}

static void reml_call(sj_compiled *c, const reml_data *d, double *value, double *grad)
{
    const double *in[5] = {d->theta, d->y, d->x, d->days, d->codes};
    double *out[2] = {value, grad};
    assert_ok(sj_compiled_call(c, in, out), NULL);
}

static void test_reml_value_and_grad(void **state)
{
    (void)state;
    static reml_data d;
    reml_data_fill(&d);
    sj_ctx *tiled = ctx_new(0), *plain = ctx_new(1);
    sj_compiled *ct = reml_compile(tiled), *cp = reml_compile(plain);
    int64_t chunk = rt_compiled_tile_size(ct);
    print_message("  REML: chunk size %lld of %d items\n", (long long)chunk, RB);
    assert_true(chunk > 0 && rt_compiled_tile_size(cp) == 0);
    /* one native compile each: the chunk's, and the whole batch's */
    assert_true(counter(tiled, "compiles") == 1 && counter(plain, "compiles") == 1);
    char *ir = sj_compiled_llvm_ir(ct);
    assert_non_null(ir);
    sj_string_free(ir);
    static double vt[RB], gt[RB * 3], vp[RB], gp[RB * 3];
    reml_call(ct, &d, vt, gt);
    reml_call(cp, &d, vp, gp);
    double ev = test_item_err(vt, vp, RB, 1), eg = test_item_err(gt, gp, RB, 3);
    int same = memcmp(vt, vp, sizeof vt) == 0 && memcmp(gt, gp, sizeof gt) == 0;
    print_message("  REML tiled vs untiled: value %.2g, gradient %.2g (bit-identical: %s)\n", ev,
                  eg, same ? "yes" : "no");
    assert_true(ev <= 1e-12 && eg <= 1e-12);
    assert_true(counter(tiled, "tiled_calls") == 1);
    sj_compiled_free(ct);
    sj_compiled_free(cp);
    sj_ctx_free(tiled);
    sj_ctx_free(plain);
}

/* ---- concurrent calls ------------------------------------------------------------- */

typedef struct job {
    sj_compiled *c;
    const reml_data *d;
    const double *want_v, *want_g;
    int ok;
} job;

static void *call_many(void *arg)
{
    job *j = arg;
    double *v = malloc(RB * sizeof(double)), *g = malloc(RB * 3 * sizeof(double));
    j->ok = v && g;
    for (int rep = 0; rep < 8 && j->ok; rep++) {
        const double *in[5] = {j->d->theta, j->d->y, j->d->x, j->d->days, j->d->codes};
        double *out[2] = {v, g};
        j->ok = sj_compiled_call(j->c, in, out) == SJ_OK &&
                memcmp(v, j->want_v, RB * sizeof(double)) == 0 &&
                memcmp(g, j->want_g, RB * 3 * sizeof(double)) == 0;
    }
    free(v);
    free(g);
    return NULL;
}

typedef struct chol_job {
    sj_ctx *ctx;
    sj_fn *vf;
    const chol_data *d;
    const double *want;
    int ok;
} chol_job;

static void *chol_many(void *arg)
{
    chol_job *j = arg;
    size_t n = (size_t)j->d->nb * K * K;
    double *l = malloc(n * sizeof(double)), m2[K * K];
    j->ok = l != NULL;
    for (int rep = 0; rep < 8 && j->ok; rep++) {
        int64_t c = 0;
        j->ok = chol_call(j->ctx, j->vf, j->d, l, m2, &c) == SJ_OK && c > 0 &&
                j->d->nb % c != 0 && memcmp(l, j->want, n * sizeof(double)) == 0;
    }
    free(l);
    return NULL;
}

/* Two threads call one tiled function at once: each gets the single-thread
 * result, bit for bit (every call runs the same chunks on the same code);
 * the REML gradient (no remainder), then the factor with a padded last
 * chunk (each call pads in its own area), through sj_fn_call's cache. */
static void test_vmap_tile_threads(void **state)
{
    (void)state;
    static reml_data d;
    reml_data_fill(&d);
    sj_ctx *ctx = ctx_new(0);
    sj_compiled *c = reml_compile(ctx);
    assert_true(rt_compiled_tile_size(c) > 0);
    static double v[RB], g[RB * 3];
    reml_call(c, &d, v, g);
    job jobs[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        jobs[i] = (job){.c = c, .d = &d, .want_v = v, .want_g = g};
        assert_int_equal(pthread_create(&th[i], NULL, call_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_true(jobs[i].ok);
    }
    assert_true(counter(ctx, "tiled_calls") == 17);
    sj_compiled_free(c);

    sj_fn *vf = chol_fn(ctx, 0, 0);
    chol_data cd = chol_data_new(1001, 21);
    double *want = malloc(1001 * K * K * sizeof(double)), m2[K * K];
    int64_t chunk = 0;
    assert_ok(chol_call(ctx, vf, &cd, want, m2, &chunk), ctx);
    assert_true(chunk > 0 && 1001 % chunk != 0);
    chol_job cj[2];
    for (int i = 0; i < 2; i++) {
        cj[i] = (chol_job){.ctx = ctx, .vf = vf, .d = &cd, .want = want};
        assert_int_equal(pthread_create(&th[i], NULL, chol_many, &cj[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_true(cj[i].ok);
    }
    free(want);
    chol_data_free(&cd);
    sj_fn_free(vf);
    sj_ctx_free(ctx);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_chunks_and_remainder), cmocka_unit_test(test_small_batch_untiled),
        cmocka_unit_test(test_other_axes_untiled),   cmocka_unit_test(test_failing_item),
        cmocka_unit_test(test_failing_code),         cmocka_unit_test(test_fit_untiled),
        cmocka_unit_test(test_nested_vmap),          cmocka_unit_test(test_reml_value_and_grad),
        cmocka_unit_test(test_vmap_tile_threads),
    };
    const struct CMUnitTest threads[] = {cmocka_unit_test(test_vmap_tile_threads)};
    if (argc > 1 && strcmp(argv[1], "threads") == 0)
        return cmocka_run_group_tests(threads, NULL, NULL);
    return cmocka_run_group_tests(all, NULL, NULL);
}
