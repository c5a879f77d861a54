/* The sleepstudy fit, Reaction ~ Days + (Days | Subject) by REML, statjit's
 * sj_lmm against lme4::lmer in the same run (bench/peer_lmer.R through
 * Rscript, repeated in one R process after a warm-up; median).
 *
 *   BENCH lmm_sleepstudy_vs_lmer statjit_s=<t> peer=lmer peer_s=<t> ratio=<lmer/statjit>
 *   BENCH lmm_sleepstudy_compile value=<ms> unit=ms
 *
 * statjit_s is the median of whole sj_lmm fits (create, add the term, fit:
 * graph building, compile-cache lookups, the native Newton loop, the Hessian
 * at θ̂, GLS, BLUPs and conditional variances; free) after the first fit,
 * so it excludes compilation; the compile time is that first fit's, from the
 * context's compile_seconds counter (specialisation, rewrites, derivatives,
 * LLVM).
 *
 * Both sides run OpenBLAS with one thread (openblas_set_num_threads(1) here,
 * OPENBLAS_NUM_THREADS=1 for Rscript): the matrices of this model are at most
 * 36 × 36, where threads only add hand-offs, and on a loaded machine
 * OpenBLAS's spinning threads made single fits 100 times slower. */
#define _GNU_SOURCE /* popen */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "bench_util.h"
#include "statjit.h"

#ifndef SJ_BENCH_DIR
#define SJ_BENCH_DIR "bench"
#endif

enum { N = 180, NREP = 200, NREP_PEER = 50 };

static double y[N], x[2 * N], codes[N];
static const char *const levels[18] = {"308", "309", "310", "330", "331", "332",
                                       "333", "334", "335", "337", "349", "350",
                                       "351", "352", "369", "370", "371", "372"};

static int read_data(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256], s[16];
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    int n = 0;
    while (n < N && fgets(line, sizeof line, f)) {
        double days;
        if (sscanf(line, "%lf,%lf,\"%15[^\"]\"", &y[n], &days, s) != 3)
            continue;
        x[2 * n] = 1;
        x[2 * n + 1] = days;
        codes[n] = -1;
        for (int l = 0; l < 18; l++)
            if (!strcmp(s, levels[l]))
                codes[n] = l;
        n++;
    }
    fclose(f);
    return n == N ? 0 : -1;
}

static int fit(sj_ctx *ctx, double *crit)
{
    static const char *const xn[] = {"(Intercept)", "Days"};
    sj_lmm *m = NULL;
    sj_status st = sj_lmm_create(ctx, N, 2, x, xn, y, &m);
    if (st == SJ_OK)
        st = sj_lmm_add_term(m, "Subject", codes, 18, levels, 2, x, xn, 1);
    if (st == SJ_OK)
        st = sj_lmm_fit(m, 1);
    if (st == SJ_OK)
        st = sj_lmm_criterion(m, crit);
    sj_lmm_free(m);
    if (st != SJ_OK)
        fprintf(stderr, "bench_lmm: %s: %s\n", sj_status_name(st), sj_ctx_last_error(ctx));
    return st == SJ_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/../tests/data/sleepstudy.csv", SJ_BENCH_DIR);
    if (read_data(path) != 0) {
        fprintf(stderr, "bench_lmm: cannot read %s\n", path);
        return 1;
    }
    openblas_set_num_threads(1);
    sj_ctx *ctx = NULL;
    if (sj_ctx_create(&ctx) != SJ_OK)
        return 1;
    double crit = 0, c0 = 0, c1 = 0;
    double t0 = now();
    if (fit(ctx, &crit) != 0)
        return 1;
    double first = now() - t0;
    sj_ctx_counter(ctx, "compile_seconds", &c1);
    double t[NREP];
    for (int i = 0; i < NREP; i++) {
        double a = now();
        if (fit(ctx, &crit) != 0)
            return 1;
        t[i] = now() - a;
    }
    double s = median(t, NREP);
    /* the peer */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "OPENBLAS_NUM_THREADS=1 Rscript %s/peer_lmer.R %s %d 2>/dev/null", SJ_BENCH_DIR, path,
             NREP_PEER);
    FILE *p = popen(cmd, "r");
    double peer = NAN, pcrit = NAN;
    int nrep = 0;
    char line[256];
    while (p && fgets(line, sizeof line, p)) {
        sscanf(line, "criterion %lf", &pcrit);
        sscanf(line, "median_s %lf nrep %d", &peer, &nrep);
    }
    if (p)
        pclose(p);
    printf("# lmm sleepstudy REML: statjit criterion %.12g, lmer %.12g; first fit %.3f s "
           "(compile %.3f s); statjit median of %d fits, lmer median of %d\n",
           crit, pcrit, first, c1 - c0, NREP, nrep);
    if (!isfinite(peer)) {
        printf("# peer_lmer.R did not run (Rscript with lme4 needed)\n");
        printf("BENCH lmm_sleepstudy_vs_lmer statjit_s=%.6g peer=lmer peer_s=nan ratio=nan\n", s);
    } else {
        printf("BENCH lmm_sleepstudy_vs_lmer statjit_s=%.6g peer=lmer peer_s=%.6g ratio=%.2f\n",
               s, peer, peer / s);
    }
    printf("BENCH lmm_sleepstudy_compile value=%.1f unit=ms\n", 1e3 * (c1 - c0));
    sj_ctx_free(ctx);
    (void)argc;
    (void)argv;
    return 0;
}
