/* Benchmarks of the differentiation transforms on the dense REML criterion
 *
 *     f(θ) = log|V| + log|XᵀV⁻¹X| + yᵀPy,   V = Z G Zᵀ + σ² I,
 *
 * (−2 × the REML log-likelihood up to a constant), built through the public
 * API exactly as tests/test_ad_reml.c builds it: X = [1, days] (p = 2),
 * Z = [Z1 | Z2] with Z1 the one-hot design of the groups and Z2 = Z1 ⊙ days
 * (random intercept and random slope, uncorrelated), θ = log of the
 * intercept variance, slope variance and residual variance.  The data are
 * simulated in the shape of sleepstudy (groups of 10 rows, days 0..9) with a
 * fixed seed.  Usage: bench_ad [name...]; with no name it runs them all:
 *
 *   reml_n200    n = 200 (20 groups)
 *   reml_n1000   n = 1000 (100 groups)
 *
 * Each prints
 *
 *   BENCH reml_grad_cost_n<N> value=<t(value+grad) / t(value)> unit=x
 *   BENCH reml_hvp_cost_n1000 value=<t(hvp) / t(value)> unit=x   (n = 1000;
 *                                          the n = 200 figure is a comment)
 *   BENCH reml_value_grad_vs_torch_n<N> statjit_s=<t> peer=torch peer_s=<t>
 *                                          ratio=<peer_s / statjit_s>
 *
 * value, value_and_grad (w.r.t. θ) and hvp come from sj_value_and_grad and
 * sj_hvp of the one function; each is compiled once (sj_fn_compile) and only
 * sj_compiled_call is timed.  The three are called in turn within each
 * repetition, so they share the machine's state; figures are medians.  Half
 * of the repetitions run before the peer and half after it.
 *
 * The peer is bench/peer_torch_reml.py: the same criterion in PyTorch
 * (float64, dense, torch.linalg.cholesky / cholesky_solve, log-determinants
 * from the Cholesky diagonals), value + gradient by autograd, timed in its
 * own process over many repetitions (median).  This program writes the data
 * to a temporary file and runs `$SJ_PYTHON bench/peer_torch_reml.py FILE
 * THREADS` (SJ_PYTHON defaults to /usr/bin/python3, Debian's python3-torch)
 * and reads back its value, gradient and median time; the max relative
 * difference of value and gradient is printed as a comment.  Both sides use
 * the same OpenBLAS (Debian's torch links libopenblas) with the same number
 * of threads: statjit's OpenBLAS default (openblas_get_num_threads()), given
 * to torch as torch.set_num_threads and OPENBLAS_NUM_THREADS. */
#define _GNU_SOURCE /* mkstemp, popen, setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "bench_util.h"
#include "statjit.h"

#ifndef SJ_BENCH_DIR
#define SJ_BENCH_DIR "bench"
#endif

/* ---- data and model ----------------------------------------------------------- */

enum { GROUP = 10, P = 2 };

/* The log-variances at which every function is evaluated: intercept, slope,
 * residual (those of tests/test_ad_reml.c, near sleepstudy's REML fit). */
static const double theta0[3] = {6.4, 3.5, 6.5};

typedef struct data {
    int n, q;
    double *y, *x, *days, *codes;
} data;

/* Sleepstudy-shaped: q = n / 10 subjects, days 0..9, reaction = 250 + 10 day
 * + b0 + b1 day + e with sd(b0) = 25, sd(b1) = 6, sd(e) = 25. */
static data simulate(int n)
{
    data d = {n, n / GROUP, malloc(n * sizeof(double)), malloc(n * P * sizeof(double)),
              malloc(n * sizeof(double)), malloc(n * sizeof(double))};
    if (!d.y || !d.x || !d.days || !d.codes)
        exit(1);
    bench_seed(88172645463325252ULL ^ (uint64_t)n);
    for (int k = 0; k < d.q; k++) {
        double b0 = 25 * normal(), b1 = 6 * normal();
        for (int j = 0; j < GROUP; j++) {
            int i = k * GROUP + j;
            d.days[i] = j;
            d.codes[i] = k;
            d.x[P * i] = 1;
            d.x[P * i + 1] = j;
            d.y[i] = 250 + 10 * j + b0 + b1 * j + 25 * normal();
        }
    }
    return d;
}

static void data_free(data *d)
{
    free(d->y), free(d->x), free(d->days), free(d->codes);
}


/* ---- the torch peer ----------------------------------------------------------- */

typedef struct peer_result {
    int ok;
    double value, grad[3], seconds;
    int threads, nrep;
    char version[64];
} peer_result;

static peer_result run_torch(const data *d, int threads)
{
    peer_result r = {0};
    char path[] = "/tmp/statjit_bench_reml_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        printf("# torch peer: cannot write a temporary file\n");
        return r;
    }
    fprintf(f, "%d %d\n%.17g %.17g %.17g\n", d->n, d->q, theta0[0], theta0[1], theta0[2]);
    for (int i = 0; i < d->n; i++)
        fprintf(f, "%.17g %.17g %.0f\n", d->y[i], d->days[i], d->codes[i]);
    fclose(f);

    const char *py = getenv("SJ_PYTHON");
    char cmd[2048], nthr[16];
    snprintf(nthr, sizeof nthr, "%d", threads);
    setenv("OPENBLAS_NUM_THREADS", nthr, 1); /* the peer's OpenBLAS, like ours */
    snprintf(cmd, sizeof cmd, "%s %s/peer_torch_reml.py %s %d", py ? py : "/usr/bin/python3",
             SJ_BENCH_DIR, path, threads);
    FILE *p = popen(cmd, "r");
    if (p) {
        char line[512];
        int got = 0;
        while (fgets(line, sizeof line, p)) {
            got |= sscanf(line, "value %lf", &r.value) == 1 ? 1 : 0;
            got |= sscanf(line, "grad %lf %lf %lf", &r.grad[0], &r.grad[1], &r.grad[2]) == 3 ? 2 : 0;
            got |= sscanf(line, "median_s %lf nrep %d", &r.seconds, &r.nrep) == 2 ? 4 : 0;
            got |= sscanf(line, "threads %d", &r.threads) == 1 ? 8 : 0;
            got |= sscanf(line, "torch %63s", r.version) == 1 ? 16 : 0;
        }
        int status = pclose(p);
        r.ok = status == 0 && (got & 7) == 7;
    }
    unlink(path);
    if (!r.ok)
        printf("# torch peer failed: %s\n", cmd);
    return r;
}

/* ---- the benchmark --------------------------------------------------------------- */

static void bench_reml(int n)
{
    data d = simulate(n);
    sj_ctx *ctx = NULL;
    if (sj_ctx_create(&ctx) != SJ_OK)
        exit(1);
    sj_fn *f = bench_dense_reml_fn(ctx, d.q), *vg = NULL, *hv = NULL;
    int wrt = 0;
    CHECK(ctx, sj_value_and_grad(f, 0, 1, &wrt, &vg));
    CHECK(ctx, sj_hvp(f, 0, 1, &wrt, &hv));

    int ranks[6] = {1, 1, 2, 1, 1, 1};
    int64_t d3[1] = {3}, dn[1] = {n}, dx[2] = {n, P};
    const int64_t *dims[6] = {d3, dn, dx, dn, dn, d3};
    sj_compiled *cf = NULL, *cvg = NULL, *chv = NULL;
    double t0 = now();
    CHECK(ctx, sj_fn_compile(f, 5, ranks, dims, &cf));
    CHECK(ctx, sj_fn_compile(vg, 5, ranks, dims, &cvg));
    CHECK(ctx, sj_fn_compile(hv, 6, ranks, dims, &chv));
    double tcompile = now() - t0;

    const double tangent[3] = {0.3, -0.5, 0.8};
    const double *in[6] = {theta0, d.y, d.x, d.days, d.codes, tangent};
    double value = 0, value2 = 0, grad[3] = {0}, hvp[3] = {0};
    double *of[1] = {&value}, *ovg[2] = {&value2, grad}, *ohv[1] = {hvp};

    /* Warm up, and size the repetitions to about two seconds in all. */
    CHECK(ctx, sj_compiled_call(cf, in, of));
    CHECK(ctx, sj_compiled_call(cvg, in, ovg));
    CHECK(ctx, sj_compiled_call(chv, in, ohv));
    double w0 = now();
    CHECK(ctx, sj_compiled_call(cf, in, of));
    CHECK(ctx, sj_compiled_call(cvg, in, ovg));
    CHECK(ctx, sj_compiled_call(chv, in, ohv));
    double per_rep = now() - w0;
    int nrep = (int)(2.0 / per_rep);
    nrep = nrep < 22 ? 22 : nrep > 1000 ? 1000 : nrep;
    nrep &= ~1;
    double *tf = malloc(nrep * sizeof *tf), *tvg = malloc(nrep * sizeof *tvg),
           *thv = malloc(nrep * sizeof *thv);
    if (!tf || !tvg || !thv)
        exit(1);
    /* Half of the repetitions before the peer runs and half after, so that a
     * change in the machine's load during the run weighs on both sides. */
    int threads = openblas_get_num_threads();
    peer_result pr = {0};
    for (int half = 0; half < 2; half++) {
        for (int rep = half * nrep / 2; rep < (half + 1) * nrep / 2; rep++) {
            /* Rotate the order, so no function always follows the same one. */
            for (int k = 0; k < 3; k++) {
                int which = (k + rep) % 3;
                double s = now();
                if (which == 0)
                    CHECK(ctx, sj_compiled_call(cf, in, of));
                else if (which == 1)
                    CHECK(ctx, sj_compiled_call(cvg, in, ovg));
                else
                    CHECK(ctx, sj_compiled_call(chv, in, ohv));
                double e = now() - s;
                (which == 0 ? tf : which == 1 ? tvg : thv)[rep] = e;
            }
        }
        if (half == 0)
            pr = run_torch(&d, threads);
    }
    double sf = median(tf, nrep), svg = median(tvg, nrep), shv = median(thv, nrep);
    free(tf), free(tvg), free(thv);

    printf("# reml n=%d (q=%d groups of %d, p=%d): value %.12g, grad % .10g % .10g % .10g; "
           "compile of the three %.3f s (not timed below)\n",
           n, d.q, GROUP, P, value, grad[0], grad[1], grad[2], tcompile);
    char load[64] = "?";
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (!fgets(load, sizeof load, la))
            snprintf(load, sizeof load, "?");
        load[strcspn(load, "\n")] = 0;
        fclose(la);
    }
    printf("# reml n=%d: medians of %d calls: value %.6g s, value+grad %.6g s, hvp %.6g s; "
           "statjit's OpenBLAS %d thread(s); load average %s\n",
           n, nrep, sf, svg, shv, threads, load);
    printf("BENCH reml_grad_cost_n%d value=%.3f unit=x\n", n, svg / sf);
    if (n == 1000)
        printf("BENCH reml_hvp_cost_n%d value=%.3f unit=x\n", n, shv / sf);
    else
        printf("# reml_hvp_cost_n%d value=%.3f unit=x\n", n, shv / sf);
    if (pr.ok) {
        double dv = rel_diff(value2, pr.value), dg = 0;
        for (int i = 0; i < 3; i++)
            dg = fmax(dg, rel_diff(grad[i], pr.grad[i]));
        printf("# reml n=%d: torch %s with %d thread(s) (torch.set_num_threads; its OpenBLAS "
               "OPENBLAS_NUM_THREADS=%d), statjit's OpenBLAS %d thread(s); torch median of %d; "
               "max rel diff value %.2g, grad %.2g\n",
               n, pr.version, pr.threads, threads, threads, pr.nrep, dv, dg);
        printf("BENCH reml_value_grad_vs_torch_n%d statjit_s=%.6g peer=torch peer_s=%.6g "
               "ratio=%.3f\n",
               n, svg, pr.seconds, pr.seconds / svg);
    }
    fflush(stdout);

    sj_compiled_free(cf), sj_compiled_free(cvg), sj_compiled_free(chv);
    sj_fn_free(f), sj_fn_free(vg), sj_fn_free(hv);
    sj_ctx_free(ctx);
    data_free(&d);
    if (!pr.ok)
        exit(1);
}

static void bench_n200(void)
{
    bench_reml(200);
}
static void bench_n1000(void)
{
    bench_reml(1000);
}

/* ---- driver -------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*run)(void);
} benches[] = {
    {"reml_n200", bench_n200},
    {"reml_n1000", bench_n1000},
};
enum { NBENCH = sizeof benches / sizeof benches[0] };

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int known = 0;
        for (int k = 0; k < NBENCH; k++)
            known |= strcmp(argv[i], benches[k].name) == 0;
        if (!known) {
            fprintf(stderr, "bench_ad: unknown benchmark \"%s\"\n", argv[i]);
            return 2;
        }
    }
    for (int k = 0; k < NBENCH; k++) {
        int run = argc < 2;
        for (int i = 1; i < argc; i++)
            run |= strcmp(argv[i], benches[k].name) == 0;
        if (run)
            benches[k].run();
    }
    return 0;
}
