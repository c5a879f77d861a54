/* Benchmarks of the code generator and runtime, each against its peer in the
 * same run.  Usage: bench_codegen [name...]; with no name it runs them all:
 *
 *   compile_reml_graph   compile time (specialise + LLVM) of a REML-sized
 *                        graph: V = Z G Zᵀ + s2 I (n = 180, 18 groups),
 *                        logdet, Cholesky solves, XᵀV⁻¹X and its logdet,
 *                        yᵀPy; about 50 nodes.  Fresh context per run, so
 *                        every run compiles.
 *   call_overhead        sj_fn_call on a tiny graph (cache hit + native
 *                        call), per call.
 *   elementwise_vs_gcc   an 8-op elementwise chain over 10⁶ elements against
 *                        the same loop written in C and built by gcc -O3
 *                        -march=native (peer_elementwise.c).  Every
 *                        intermediate of the chain has one reader; a
 *                        variant where x*y has two is printed as a comment.
 *   cholesky_logdet_n500_vs_lapacke
 *                        L = cholesky(A) and logdet A = 2 Σ log Lᵢᵢ at
 *                        n = 500 against direct LAPACKE_dpotrf + the same
 *                        loop.
 *
 * Every figure is the median of repeated runs; ratio = peer / statjit (above
 * 1: statjit is faster).  bench/run builds this in Release and runs it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <lapacke.h>

#include "bench_util.h"
#include "statjit.h"

void peer_elementwise(const double *x, const double *y, double *out, size_t n);
void peer_elementwise_reuse(const double *x, const double *y, double *out, size_t n);
const char *peer_compiler(void);
int peer_optimized(void);

static uint64_t rng_state = 88172645463325252ULL;
static double uniform(double lo, double hi)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static double max_rel_diff(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]) / (1e-300 + fmax(fabs(a[i]), fabs(b[i])));
        if (!(d <= m))
            m = d; /* NaN propagates */
    }
    return m;
}

/* ---- compile time of a REML-sized graph ------------------------------------ */

enum { REML_N = 180, REML_Q = 18, REML_P = 3 };

/* -2 × the profiled REML log-likelihood of y = X β + Z u + e, up to a
 * constant:  logdet V + logdet XᵀV⁻¹X + (n - p) log(yᵀPy / (n - p)), with
 * yᵀPy = yᵀV⁻¹y - (XᵀV⁻¹y)ᵀ β̂; outputs it and β̂. */
static void build_reml(sj_graph *g, sj_value out[2])
{
    const char *n[] = {"n"}, *q[] = {"q"}, *np[] = {"n", "p"};
    sj_value codes = sj_input(g, "codes", 1, n);
    sj_value theta = sj_input(g, "theta", 1, q);
    sj_value s2 = sj_input(g, "s2", 0, NULL);
    sj_value x = sj_input(g, "X", 2, np);
    sj_value y = sj_input(g, "y", 1, n);

    sj_value z = sj_one_hot(g, codes, "q");
    sj_value gd = sj_diag_embed(g, sj_exp(g, sj_mul(g, sj_scalar(g, 2.0), theta)));
    sj_value v = sj_add(g, sj_matmul(g, sj_matmul(g, z, gd), sj_mT(g, z)),
                        sj_mul(g, s2, sj_eye(g, "n")));
    sj_value l = sj_cholesky(g, v);
    sj_value ldv = sj_logdet(g, v);
    sj_value vix = sj_cholesky_solve(g, l, x);
    sj_value viy = sj_cholesky_solve(g, l, y);
    sj_value xt = sj_mT(g, x);
    sj_value xvx = sj_matmul(g, xt, vix);
    sj_value ldx = sj_logdet(g, xvx);
    sj_value xvy = sj_matmul(g, xt, viy);
    sj_value beta = sj_cholesky_solve(g, sj_cholesky(g, xvx), xvy);
    sj_value ypy = sj_sub(g, sj_sum_all(g, sj_mul(g, y, viy)), sj_sum_all(g, sj_mul(g, xvy, beta)));
    sj_value dof = sj_scalar(g, REML_N - REML_P);
    sj_value sigma2 = sj_div(g, ypy, dof);
    sj_value dev = sj_add(g, sj_add(g, ldv, ldx), sj_mul(g, dof, sj_log(g, sigma2)));
    sj_value c = sj_mul(g, dof, sj_add(g, sj_scalar(g, 1.0), sj_log(g, sj_scalar(g, 2 * M_PI))));
    out[0] = sj_add(g, dev, c);
    out[1] = beta;
}

static void bench_compile_reml(void)
{
    static double codes[REML_N], theta[REML_Q], xm[REML_N * REML_P], y[REML_N];
    double s2 = 0.7;
    for (int i = 0; i < REML_N; i++) {
        codes[i] = i % REML_Q;
        xm[i * REML_P] = 1;
        for (int j = 1; j < REML_P; j++)
            xm[i * REML_P + j] = uniform(-1, 1);
        y[i] = uniform(-1, 3);
    }
    for (int k = 0; k < REML_Q; k++)
        theta[k] = uniform(-0.5, 0.5);
    int ranks[5] = {1, 1, 0, 2, 1};
    int64_t dn[1] = {REML_N}, dq[1] = {REML_Q}, dnp[2] = {REML_N, REML_P};
    const int64_t *dims[5] = {dn, dq, NULL, dnp, dn};
    const double *in[5] = {codes, theta, &s2, xm, y};

    enum { NREP = 9 };
    double t[NREP], tspec[NREP];
    size_t nnode = 0;
    for (int rep = -1; rep < NREP; rep++) { /* rep -1 warms LLVM up */
        sj_ctx *ctx = NULL;
        if (sj_ctx_create(&ctx) != SJ_OK)
            exit(1);
        sj_graph *g = NULL;
        CHECK(ctx, sj_graph_create(ctx, &g));
        sj_value out[2];
        build_reml(g, out);
        CHECK(ctx, sj_graph_status(g));
        nnode = sj_graph_size(g);
        sj_fn *fn = NULL;
        CHECK(ctx, sj_fn_create(g, 2, out, &fn));
        /* Specialisation alone (no cache involved), for the breakdown. */
        sj_compiled *spec = NULL;
        double ts0 = now();
        CHECK(ctx, sj_fn_specialize(fn, 5, ranks, dims, &spec));
        double ts1 = now();
        sj_compiled_free(spec);
        sj_compiled *c = NULL;
        double t0 = now();
        CHECK(ctx, sj_fn_compile(fn, 5, ranks, dims, &c));
        double t1 = now();
        if (rep >= 0) {
            t[rep] = t1 - t0;
            tspec[rep] = ts1 - ts0;
        }
        if (rep == 0) {
            double dev[2], beta[2][REML_P];
            double *o1[2] = {&dev[0], beta[0]}, *o2[2] = {&dev[1], beta[1]};
            CHECK(ctx, sj_compiled_call(c, in, o1));
            CHECK(ctx, sj_compiled_eval(c, in, o2));
            /* What the compiled code costs per call, so that a faster compile
             * bought with slower code shows here. */
            enum { NCALL = 2000, NCREP = 9 };
            double tc[NCREP];
            for (int r = 0; r < NCREP; r++) {
                double c0 = now();
                for (int i = 0; i < NCALL; i++)
                    CHECK(ctx, sj_compiled_call(c, in, o1));
                tc[r] = (now() - c0) / NCALL;
            }
            printf("# compile_reml_graph: %zu nodes, REML deviance %.10g (reference %.10g), "
                   "max rel diff of beta %.2g; a call of the compiled graph %.2f us\n",
                   nnode, dev[0], dev[1], max_rel_diff(beta[0], beta[1], REML_P),
                   1e6 * median(tc, NCREP));
        }
        sj_compiled_free(c);
        sj_fn_free(fn);
        sj_graph_free(g);
        sj_ctx_free(ctx);
    }
    double ms = 1e3 * median(t, NREP);
    printf("# compile_reml_graph: of which specialisation %.3f ms, the rest code generation and "
           "LLVM (opt level %s)\n",
           1e3 * median(tspec, NREP), getenv("SJ_OPT_LEVEL") ? getenv("SJ_OPT_LEVEL") : "2");
    printf("BENCH compile_reml_graph value=%.3f unit=ms\n", ms);
}

/* ---- cached-call overhead ---------------------------------------------------- */

static void bench_call_overhead(void)
{
    sj_ctx *ctx = NULL;
    if (sj_ctx_create(&ctx) != SJ_OK)
        exit(1);
    sj_graph *g = NULL;
    CHECK(ctx, sj_graph_create(ctx, &g));
    const char *n[] = {"n"};
    sj_value x = sj_input(g, "x", 1, n);
    sj_value f = sj_add(g, sj_mul(g, x, sj_scalar(g, 2.0)), sj_scalar(g, 1.0));
    CHECK(ctx, sj_graph_status(g));
    sj_fn *fn = NULL;
    CHECK(ctx, sj_fn_create(g, 1, &f, &fn));
    double xv[4] = {1, 2, 3, 4}, yv[4];
    int ranks[1] = {1};
    int64_t d[1] = {4};
    const int64_t *dims[1] = {d};
    const double *in[1] = {xv};
    double *out[1] = {yv};
    CHECK(ctx, sj_fn_call(fn, 1, ranks, dims, in, out)); /* compiles */
    sj_compiled *c = NULL;
    CHECK(ctx, sj_fn_compile(fn, 1, ranks, dims, &c));

    enum { NREP = 11, NCALL = 200000 };
    double t_fn[NREP], t_c[NREP];
    for (int rep = 0; rep < NREP; rep++) {
        double t0 = now();
        for (int i = 0; i < NCALL; i++)
            if (sj_fn_call(fn, 1, ranks, dims, in, out) != SJ_OK)
                exit(1);
        double t1 = now();
        for (int i = 0; i < NCALL; i++)
            if (sj_compiled_call(c, in, out) != SJ_OK)
                exit(1);
        double t2 = now();
        t_fn[rep] = (t1 - t0) / NCALL;
        t_c[rep] = (t2 - t1) / NCALL;
    }
    double compiles = 0, hits = 0;
    sj_ctx_counter(ctx, "compiles", &compiles);
    sj_ctx_counter(ctx, "cache_hits", &hits);
    printf("# call_overhead: f(x) = 2x + 1 on 4 elements; %.0f compile(s), %.0f cache hits; "
           "sj_compiled_call alone %.3f us; result %g %g %g %g\n",
           compiles, hits, 1e6 * median(t_c, NREP), yv[0], yv[1], yv[2], yv[3]);
    printf("BENCH call_overhead value=%.3f unit=us\n", 1e6 * median(t_fn, NREP));
    sj_compiled_free(c);
    sj_fn_free(fn);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* ---- elementwise chain against gcc -O3 ------------------------------------------ */

typedef void peer_fn(const double *x, const double *y, double *out, size_t n);

/* Times one compiled elementwise function of (x, y) against its peer loop:
 * medians of alternating runs; writes the max relative difference. */
static void time_elementwise(sj_ctx *ctx, sj_compiled *comp, peer_fn *peer, const double *xv,
                             const double *yv, double *o1, double *o2, size_t n, double *ts_med,
                             double *tp_med, double *diff)
{
    enum { NREP = 31 };
    const double *in[2] = {xv, yv};
    double *out[1] = {o1};
    double ts[NREP], tp[NREP];
    for (int rep = -2; rep < NREP; rep++) { /* two warm-up rounds */
        /* Alternate which side goes first, so neither always inherits the
         * other's cache and clock state. */
        for (int side = 0; side < 2; side++) {
            int mine = (side == 0) == (rep % 2 == 0);
            double t0 = now();
            if (mine)
                CHECK(ctx, sj_compiled_call(comp, in, out));
            else
                peer(xv, yv, o2, n);
            double t = now() - t0;
            if (rep >= 0)
                *(mine ? &ts[rep] : &tp[rep]) = t;
        }
    }
    *ts_med = median(ts, NREP);
    *tp_med = median(tp, NREP);
    *diff = max_rel_diff(o1, o2, n);
}

/* The 8 ops of peer_elementwise.c, in the same order; with reuse, the last
 * subtraction takes x y (a second reader of op 1) instead of y. */
static sj_compiled *compile_chain(sj_ctx *ctx, int reuse, int64_t n)
{
    sj_graph *g = NULL;
    CHECK(ctx, sj_graph_create(ctx, &g));
    const char *dn[] = {"n"};
    sj_value x = sj_input(g, "x", 1, dn), y = sj_input(g, "y", 1, dn);
    sj_value a = sj_mul(g, x, y);                   /* 1 */
    sj_value b = sj_add(g, a, x);                   /* 2 */
    sj_value c = sj_sub(g, b, y);                   /* 3 */
    sj_value d = sj_square(g, c);                   /* 4 */
    sj_value e = sj_div(g, d, y);                   /* 5 */
    sj_value f = sj_max(g, e, x);                   /* 6 */
    sj_value h = sj_sub(g, f, reuse ? a : y);       /* 7 */
    sj_value r = sj_abs(g, h);                      /* 8 */
    CHECK(ctx, sj_graph_status(g));
    sj_fn *fn = NULL;
    CHECK(ctx, sj_fn_create(g, 1, &r, &fn));
    int ranks[2] = {1, 1};
    int64_t d1[1] = {n};
    const int64_t *dims[2] = {d1, d1};
    sj_compiled *comp = NULL;
    CHECK(ctx, sj_fn_compile(fn, 2, ranks, dims, &comp));
    sj_fn_free(fn);
    sj_graph_free(g);
    return comp;
}

static void bench_elementwise(void)
{
    enum { N = 1000000 };
    sj_ctx *ctx = NULL;
    if (sj_ctx_create(&ctx) != SJ_OK)
        exit(1);
    double *xv = malloc(N * sizeof *xv), *yv = malloc(N * sizeof *yv);
    double *o1 = malloc(N * sizeof *o1), *o2 = malloc(N * sizeof *o2);
    if (!xv || !yv || !o1 || !o2)
        exit(1);
    for (size_t i = 0; i < N; i++) {
        xv[i] = uniform(0.5, 2);
        yv[i] = uniform(0.5, 2);
    }
    memset(o1, 0, N * sizeof *o1);
    memset(o2, 0, N * sizeof *o2);

    sj_compiled *reuse = compile_chain(ctx, 1, N);
    double rs, rp, rd;
    time_elementwise(ctx, reuse, peer_elementwise_reuse, xv, yv, o1, o2, N, &rs, &rp, &rd);
    sj_compiled_free(reuse);
    printf("# elementwise (variant: x*y read twice) statjit_s=%.6g peer_s=%.6g ratio=%.3f, "
           "max rel diff %.2g\n",
           rs, rp, rp / rs, rd);

    sj_compiled *chain = compile_chain(ctx, 0, N);
    double s, p, diff;
    time_elementwise(ctx, chain, peer_elementwise, xv, yv, o1, o2, N, &s, &p, &diff);
    sj_compiled_free(chain);
    printf("# elementwise_vs_gcc: a chain of 8 ops over %d elements; peer built by %s%s; "
           "max rel diff %.2g\n",
           N, peer_compiler(), peer_optimized() ? "" : " WITHOUT optimisation", diff);
    printf("BENCH elementwise_vs_gcc statjit_s=%.6g peer=gcc_O3 peer_s=%.6g ratio=%.3f\n", s, p,
           p / s);
    free(xv), free(yv), free(o1), free(o2);
    sj_ctx_free(ctx);
}

/* ---- cholesky + logdet against LAPACKE ------------------------------------------ */

/* The peer: L = lower triangle of A (zeros above), factored in place.  A
 * row-major lower factor is a column-major upper one, so dpotrf works on the
 * row-major array directly with no transposed copy. */
static int peer_cholesky_logdet(const double *a, double *l, double *logdet, int n)
{
    for (int i = 0; i < n; i++) {
        memcpy(l + (size_t)i * n, a + (size_t)i * n, (size_t)(i + 1) * sizeof *l);
        memset(l + (size_t)i * n + i + 1, 0, (size_t)(n - i - 1) * sizeof *l);
    }
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', n, l, n);
    if (info != 0)
        return (int)info;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += log(l[(size_t)i * n + i]);
    *logdet = 2 * s;
    return 0;
}

static void bench_cholesky(void)
{
    enum { N = 500, NREP = 41 };
    sj_ctx *ctx = NULL;
    if (sj_ctx_create(&ctx) != SJ_OK)
        exit(1);
    sj_graph *g = NULL;
    CHECK(ctx, sj_graph_create(ctx, &g));
    const char *nn[] = {"n", "n"};
    sj_value a = sj_input(g, "A", 2, nn);
    sj_value outs[2];
    outs[0] = sj_cholesky(g, a);
    outs[1] = sj_mul(g, sj_scalar(g, 2.0), sj_sum_all(g, sj_log(g, sj_diag(g, outs[0]))));
    CHECK(ctx, sj_graph_status(g));
    sj_fn *fn = NULL;
    CHECK(ctx, sj_fn_create(g, 2, outs, &fn));
    int ranks[1] = {2};
    int64_t d[2] = {N, N};
    const int64_t *dims[1] = {d};
    sj_compiled *comp = NULL;
    CHECK(ctx, sj_fn_compile(fn, 1, ranks, dims, &comp));

    /* A = M Mᵀ / N + I: well conditioned, positive definite. */
    double *m = malloc((size_t)N * N * sizeof *m), *am = malloc((size_t)N * N * sizeof *am);
    double *l1 = malloc((size_t)N * N * sizeof *l1), *l2 = malloc((size_t)N * N * sizeof *l2);
    if (!m || !am || !l1 || !l2)
        exit(1);
    for (size_t i = 0; i < (size_t)N * N; i++)
        m[i] = uniform(-1, 1);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, N, 1.0 / N, m, N, m, N, 0.0, am, N);
    for (int i = 0; i < N; i++)
        am[(size_t)i * N + i] += 1.0;
    const double *in[1] = {am};
    double ld1 = 0, ld2 = 0;
    double *out[2] = {l1, &ld1};
    double ts[NREP], tp[NREP];
    for (int rep = -2; rep < NREP; rep++) { /* two warm-up rounds */
        for (int side = 0; side < 2; side++) { /* alternating order, as above */
            int mine = (side == 0) == (rep % 2 == 0);
            double t0 = now();
            if (mine)
                CHECK(ctx, sj_compiled_call(comp, in, out));
            else if (peer_cholesky_logdet(am, l2, &ld2, N) != 0) {
                fprintf(stderr, "bench_codegen: LAPACKE_dpotrf failed\n");
                exit(1);
            }
            double t = now() - t0;
            if (rep >= 0)
                *(mine ? &ts[rep] : &tp[rep]) = t;
        }
    }
    double s = median(ts, NREP), p = median(tp, NREP);
    printf("# cholesky_logdet_n500_vs_lapacke: logdet %.12g (peer %.12g), max rel diff of L %.2g\n",
           ld1, ld2, max_rel_diff(l1, l2, (size_t)N * N));
    printf("BENCH cholesky_logdet_n500_vs_lapacke statjit_s=%.6g peer=lapacke peer_s=%.6g "
           "ratio=%.3f\n",
           s, p, p / s);
    free(m), free(am), free(l1), free(l2);
    sj_compiled_free(comp);
    sj_fn_free(fn);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* ---- driver -------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*run)(void);
} benches[] = {
    {"compile_reml_graph", bench_compile_reml},
    {"call_overhead", bench_call_overhead},
    {"elementwise_vs_gcc", bench_elementwise},
    {"cholesky_logdet_n500_vs_lapacke", bench_cholesky},
};
enum { NBENCH = sizeof benches / sizeof benches[0] };

int main(int argc, char **argv)
{
    int info = argc < 2;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--info") == 0)
            info = 1;
    if (info) {
        const char *core = getenv("OPENBLAS_CORETYPE");
        printf("# OpenBLAS %s, core in use %s (OPENBLAS_CORETYPE=%s), %d thread(s); "
               "elementwise peer built by %s\n",
               openblas_get_config(), openblas_get_corename(), core ? core : "unset",
               openblas_get_num_threads(), peer_compiler());
    }
    for (int k = 0; k < NBENCH; k++) {
        int run = argc < 2;
        for (int i = 1; i < argc; i++)
            run |= strcmp(argv[i], benches[k].name) == 0;
        if (run) {
            benches[k].run();
            fflush(stdout);
        }
    }
    for (int i = 1; i < argc; i++) {
        int known = strcmp(argv[i], "--info") == 0;
        for (int k = 0; k < NBENCH; k++)
            known |= strcmp(argv[i], benches[k].name) == 0;
        if (!known) {
            fprintf(stderr, "bench_codegen: unknown benchmark \"%s\"\n", argv[i]);
            return 2;
        }
    }
    return 0;
}
