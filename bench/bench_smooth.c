/* BENCH smooth_batched_1000_vs_mgcv: 1,000 Gaussian REML P-spline fits
 * (n = 500, m = 20 cubic B-splines, second-order difference penalty shared
 * by all problems).  statjit: the design of every problem from one compiled
 * sj_bspline_basis call over all positions, then sj_smooth_reml_batch
 * (λ, coefficients, fitted values, EDF).  Peer: a loop of mgcv::gam with
 * the same knots and penalty in one R process (bench/peer_smooth_mgcv.R),
 * timed inside R (data loading excluded).  ratio = peer time / statjit time
 * (median of 5 runs for statjit); λ of the first problems is compared. */
#define _GNU_SOURCE /* mkstemp, popen */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "statjit.h"

enum { NPROB = 1000, N = 500, M = 20 };

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double unif(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static double smooth_normal(void)
{
    double u = unif(), v = unif();
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int die(sj_ctx *ctx, const char *what)
{
    fprintf(stderr, "bench_smooth: %s: %s\n", what, ctx ? sj_ctx_last_error(ctx) : "");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "smooth_batched_1000_vs_mgcv") != 0) {
        fprintf(stderr, "bench_smooth: unknown benchmark %s\n", argv[1]);
        return 2;
    }
    sj_ctx *ctx;
    if (sj_ctx_create(&ctx) != SJ_OK)
        return 1;
    double *x = malloc(sizeof(double) * NPROB * N), *y = malloc(sizeof(double) * NPROB * N);
    for (int b = 0; b < NPROB; b++) {
        double *xb = x + (size_t)b * N;
        for (int i = 0; i < N; i++)
            xb[i] = unif();
        qsort(xb, N, sizeof *xb, cmp);
        double amp = 0.5 + unif(), sd = 0.1 + 0.4 * unif();
        for (int i = 0; i < N; i++)
            y[(size_t)b * N + i] = amp * sin(2 * M_PI * xb[i]) + xb[i] + sd * smooth_normal();
    }
    /* knots from the range [0, 1], shared by all problems */
    double knots[M + 4], s[M * M];
    sj_pspline_knots((double[]){0.0, 1.0}, 2, M, 3, knots);
    sj_difference_penalty(M, 2, s);

    sj_graph *g;
    sj_graph_create(ctx, &g);
    sj_value t = sj_input(g, "t", 1, (const char *[]){"n"});
    sj_value bas = sj_bspline_basis(g, t, M + 4, knots, 3, 0);
    sj_fn *fn;
    if (sj_fn_create(g, 1, &bas, &fn) != SJ_OK)
        return die(ctx, "basis");
    int64_t nall = (int64_t)NPROB * N;
    const int64_t *dims[1] = {&nall};
    double *xm = malloc(sizeof(double) * (size_t)nall * M);
    double *fit = malloc(sizeof(double) * (size_t)nall);
    sj_smooth_reml_result *res = malloc(sizeof *res * NPROB);
    /* warm-up: compiles the basis */
    if (sj_fn_call(fn, 1, (int[]){1}, dims, (const double *[]){x}, (double *[]){xm}) != SJ_OK)
        return die(ctx, "basis call");
    double times[5];
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        if (sj_fn_call(fn, 1, (int[]){1}, dims, (const double *[]){x}, (double *[]){xm}) != SJ_OK)
            return die(ctx, "basis call");
        if (sj_smooth_reml_batch(ctx, NPROB, N, M, 1, xm, y, s, NULL, NULL, fit, res) != SJ_OK)
            return die(ctx, "reml");
        times[r] = now() - t0;
    }
    qsort(times, 5, sizeof *times, cmp);
    double ours = times[2];

    char path[] = "/tmp/sj_bench_smooth_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f)
        return die(NULL, "temporary file");
    double hdr[3] = {NPROB, N, M};
    fwrite(hdr, sizeof(double), 3, f);
    fwrite(knots, sizeof(double), M + 4, f);
    fwrite(x, sizeof(double), (size_t)nall, f);
    fwrite(y, sizeof(double), (size_t)nall, f);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "Rscript %s/peer_smooth_mgcv.R %s 2>/dev/null", SJ_BENCH_DIR, path);
    FILE *p = popen(cmd, "r");
    double peer = NAN, maxrel = 0;
    char line[256];
    while (p && fgets(line, sizeof line, p)) {
        double v;
        int i;
        if (sscanf(line, "time %lf", &v) == 1)
            peer = v;
        else if (sscanf(line, "lambda %d %lf", &i, &v) == 2 && i >= 0 && i < NPROB)
            maxrel = fmax(maxrel, fabs(res[i].lambda / v - 1));
    }
    if (p)
        pclose(p);
    unlink(path);
    double edf = 0;
    for (int b = 0; b < NPROB; b++)
        edf += res[b].edf;
    printf("# smooth_batched_1000_vs_mgcv: n = %d, m = %d; mean EDF %.4f; max rel diff of "
           "lambda vs mgcv (first 5) %.2g\n",
           N, M, edf / NPROB, maxrel);
    printf("BENCH smooth_batched_1000_vs_mgcv statjit_s=%.6g peer=mgcv peer_s=%.6g ratio=%.4g\n",
           ours, peer, peer / ours);
    free(x), free(y), free(xm), free(fit), free(res);
    sj_fn_free(fn);
    sj_graph_free(g);
    sj_ctx_free(ctx);
    return isfinite(peer) ? 0 : 1;
}
