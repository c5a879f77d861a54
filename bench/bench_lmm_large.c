/* Mixed-model fits beyond sleepstudy (bench/run prints their BENCH lines):
 *
 *   lmm_sim5000    y ~ x1 + x2 + (x1 | g): n = 5,000 rows, 100 groups, a
 *                  correlated random intercept and slope, three fixed effects
 *                  (bench/make_lmm_sim.R, fixed seed), against lme4::lmer
 *                  (bench/peer_lmer_formula.R) in the same run:
 *     BENCH lmm_sim5000_vs_lmer statjit_s=<t> peer=lme4 peer_s=<t> ratio=<peer/statjit>
 *     BENCH lmm_sim5000_compile value=<ms> unit=ms
 *   lmm_n50000     the same model at n = 50,000, statjit alone, each run a
 *                  fresh process that reads the CSV and fits once:
 *     BENCH lmm_n50000 value=<s> unit=s
 *     BENCH lmm_n50000_peak_rss value=<MiB> unit=MiB
 *   lmm_penicillin diameter ~ 1 + (1 | plate) + (1 | sample) on lme4's
 *                  Penicillin (tests/data/penicillin.csv; crossed factors),
 *                  against lme4::lmer:
 *     BENCH lmm_penicillin_vs_lmer statjit_s=<t> peer=lme4 peer_s=<t> ratio=<peer/statjit>
 *
 * A statjit fit is what `statjit lmm DATA 'FORMULA'` does after reading the
 * CSV: the formula front end (fe_design_build: y, X, the random-effect
 * blocks), sj_lmm_create, one sj_lmm_add_term per block, sj_lmm_fit (REML)
 * and its results (β̂ and SEs, variance components, BLUPs and conditional
 * variances), sj_lmm_free.  lmer's time is that of lmer(formula, data) after
 * read.csv, the same span.
 *
 * vs_lmer times (statjit_s) are medians of repeated fits in one context
 * after the first, which compiles: compilation is excluded, and reported as
 * the first fit's compile_seconds (_compile lines).  The n = 50,000 time is
 * what a user sees from one run of the command: a fresh process, compile
 * included (the median of NPROC processes); the peak RSS is the largest of
 * those processes' own getrusage(RUSAGE_SELF) maximum resident set (the
 * whole process: the CSV table, the design, the JIT, the fit), measured
 * in processes that do nothing else.  Each vs_lmer benchmark checks that the
 * two REML criteria agree to 1e-6 relative and fails (exit status 1, a
 * message on stderr) otherwise.
 *
 * OpenBLAS runs with one thread on both sides (openblas_set_num_threads(1),
 * OPENBLAS_NUM_THREADS=1 for Rscript), as bench_lmm: the dense matrices are
 * at most q × q = 200 × 200 and on this shared 2-CPU machine spinning
 * OpenBLAS threads only add noise. */
#define _GNU_SOURCE /* popen */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>

#include "bench_util.h"
#include "frontend/csv.h"
#include "frontend/design.h"
#include "statjit.h"

#ifndef SJ_BENCH_DIR
#define SJ_BENCH_DIR "bench"
#endif
#ifndef SJ_BENCH_BUILD_DIR
#define SJ_BENCH_BUILD_DIR "."
#endif

static const char *const sim_formula = "y ~ x1 + x2 + (x1 | g)";
static const char *const pen_formula = "diameter ~ 1 + (1 | plate) + (1 | sample)";

static void die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "bench_lmm_large: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(1);
}

static void run(const char *cmd)
{
    if (system(cmd) != 0)
        die("failed: %s%s", cmd, "");
}

static fe_table *read_csv(const char *path)
{
    fe_table *t = NULL;
    ir_err err = {0};
    if (fe_csv_read_file(path, &t, &err) != SJ_OK)
        die("%s%s", err.msg, "");
    return t;
}

/* The simulated data set of n rows, written by make_lmm_sim.R into the build
 * directory (bench/data/lmm_sim_<n>.csv) on every run; same seed, same data. */
static void sim_path(int n, char *path, size_t size)
{
    char dir[768], cmd[2048];
    snprintf(dir, sizeof dir, "%s/data", SJ_BENCH_BUILD_DIR);
    mkdir(dir, 0777);
    snprintf(path, size, "%s/lmm_sim_%d.csv", dir, n);
    snprintf(cmd, sizeof cmd, "Rscript %s/make_lmm_sim.R %s %d 100", SJ_BENCH_DIR, path, n);
    run(cmd);
}

typedef struct fit_result {
    double crit, beta0, compile_s, sigma;
    int iterations, converged;
} fit_result;

/* One fit of formula on table t as `statjit lmm` makes it (REML). */
static fit_result fit(sj_ctx *ctx, const fe_table *t, const char *formula)
{
    fit_result r = {0};
    fe_design *d = NULL;
    ir_err err = {0};
    if (fe_design_build(formula, t, &d, &err) != SJ_OK)
        die("formula: %s%s", err.msg, "");
    if (d->has_offset || d->nresp != 1 || d->nre == 0)
        die("%s: need one response, no offset and a random-effect term%s", formula, "");
    sj_lmm *m = NULL;
    CHECK(ctx, sj_lmm_create(ctx, d->n, (int)d->p, d->X, d->colnames, d->y, &m));
    for (size_t k = 0; k < d->nre; k++) {
        const fe_reterm *re = &d->re[k];
        CHECK(ctx, sj_lmm_add_term(m, re->group_name, re->group, (int)re->nlevel, re->levels,
                                   (int)re->ncol, re->Z, re->colnames, re->ncol > 1));
    }
    double c0 = 0, c1 = 0;
    CHECK(ctx, sj_ctx_counter(ctx, "compile_seconds", &c0));
    CHECK(ctx, sj_lmm_fit(m, 1));
    CHECK(ctx, sj_ctx_counter(ctx, "compile_seconds", &c1));
    r.compile_s = c1 - c0;
    int singular = 0;
    CHECK(ctx, sj_lmm_criterion(m, &r.crit));
    CHECK(ctx, sj_lmm_convergence(m, &r.converged, &r.iterations, &singular));
    CHECK(ctx, sj_lmm_fixed(m, 0, NULL, &r.beta0, NULL, NULL));
    CHECK(ctx, sj_lmm_varcomp(m, sj_lmm_nvarcomp(m) - 1, NULL, NULL, NULL, &r.sigma));
    sj_lmm_free(m);
    fe_design_free(d);
    if (!r.converged)
        die("%s: the fit did not converge%s", formula, "");
    return r;
}

typedef struct peer {
    double crit, seconds;
    int nrep, ok;
} peer;

static peer run_lmer(const char *path, const char *formula, int nrep)
{
    char cmd[2048], line[512];
    snprintf(cmd, sizeof cmd, "OPENBLAS_NUM_THREADS=1 Rscript %s/peer_lmer_formula.R %s '%s' %d",
             SJ_BENCH_DIR, path, formula, nrep);
    peer r = {NAN, NAN, 0, 0};
    FILE *f = popen(cmd, "r");
    if (!f)
        return r;
    int got = 0;
    while (fgets(line, sizeof line, f)) {
        got |= sscanf(line, "criterion %lf", &r.crit) == 1;
        got |= 2 * (sscanf(line, "median_s %lf nrep %d", &r.seconds, &r.nrep) == 2);
    }
    r.ok = pclose(f) == 0 && got == 3;
    return r;
}

/* Fits formula on the CSV at path nrep + 1 times in one context (the first
 * compiles), runs lmer nrep_peer times, prints the BENCH lines and checks the
 * criteria. */
static int vs_lmer(const char *name, const char *path, const char *formula, int nrep,
                   int nrep_peer)
{
    fe_table *t = read_csv(path);
    sj_ctx *ctx = NULL;
    CHECK(ctx, sj_ctx_create(&ctx));
    double t0 = now();
    fit_result first = fit(ctx, t, formula);
    double first_s = now() - t0;
    double *ts = malloc((size_t)nrep * sizeof *ts);
    fit_result r = first;
    for (int i = 0; i < nrep; i++) {
        double a = now();
        r = fit(ctx, t, formula);
        ts[i] = now() - a;
    }
    double s = median(ts, nrep);
    free(ts);
    sj_ctx_free(ctx);
    fe_table_free(t);
    peer p = run_lmer(path, formula, nrep_peer);
    printf("# %s: %s on %s; statjit REML criterion %.12f (%d Newton iterations), first fit "
           "%.3f s of which compile %.3f s; median of %d fits after it\n",
           name, formula, path, r.crit, r.iterations, first_s, first.compile_s, nrep);
    if (!p.ok) {
        fprintf(stderr, "bench_lmm_large: %s: the lme4 peer (bench/peer_lmer_formula.R) did not "
                        "run: Rscript with lme4 is needed (scripts/setup --bench)\n", name);
        return 1;
    }
    double rel = rel_diff(r.crit, p.crit);
    printf("# lme4 REML criterion %.12f (median of %d lmer calls); relative difference %.2g "
           "(required <= 1e-6)\n",
           p.crit, p.nrep, rel);
    if (!(rel <= 1e-6)) {
        fprintf(stderr, "bench_lmm_large: %s: REML criteria differ: statjit %.12f, lme4 %.12f "
                        "(relative %.3g > 1e-6)\n", name, r.crit, p.crit, rel);
        return 1;
    }
    printf("BENCH %s_vs_lmer statjit_s=%.6g peer=lme4 peer_s=%.6g ratio=%.2f\n", name, s,
           p.seconds, p.seconds / s);
    printf("BENCH %s_compile value=%.1f unit=ms\n", name, 1e3 * first.compile_s);
    return 0;
}

/* --one-fit PATH: what one `statjit lmm` run does after starting (read the CSV,
 * fit once, compile included) in this fresh process; prints the wall time of
 * the fit, its compile part, a second (cached) fit, and the process's peak
 * resident set so far. */
/* User + system CPU seconds of a getrusage result. */
static double cpu_seconds(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + 1e-6 * (double)ru->ru_utime.tv_usec +
           (double)ru->ru_stime.tv_sec + 1e-6 * (double)ru->ru_stime.tv_usec;
}

static int one_fit(const char *path)
{
    fe_table *t = read_csv(path);
    sj_ctx *ctx = NULL;
    CHECK(ctx, sj_ctx_create(&ctx));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu0 = cpu_seconds(&ru);
    double t0 = now();
    fit_result r = fit(ctx, t, sim_formula);
    double cold = now() - t0;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = cpu_seconds(&ru) - cpu0;
    long rss_kib = ru.ru_maxrss; /* Linux: KiB */
    t0 = now();
    fit_result r2 = fit(ctx, t, sim_formula);
    double warm = now() - t0;
    printf("one_fit cold_s %.9g compile_s %.9g warm_s %.9g maxrss_kib %ld crit %.17g iter %d "
           "cpu_s %.9g\n",
           cold, r.compile_s, warm, rss_kib, r2.crit, r.iterations, cpu);
    sj_ctx_free(ctx);
    fe_table_free(t);
    return 0;
}

static int n50000(const char *self)
{
    enum { NPROC = 3 };
    char path[1024], cmd[2200], line[512];
    sim_path(50000, path, sizeof path);
    double cold[NPROC], comp[NPROC], warm[NPROC], cpu[NPROC], crit = NAN;
    long rss = 0;
    int iter = 0;
    for (int i = 0; i < NPROC; i++) {
        snprintf(cmd, sizeof cmd, "%s --one-fit %s", self, path);
        FILE *f = popen(cmd, "r");
        int got = 0;
        while (f && fgets(line, sizeof line, f)) {
            long k = 0;
            if (sscanf(line, "one_fit cold_s %lf compile_s %lf warm_s %lf maxrss_kib %ld crit %lf "
                             "iter %d cpu_s %lf",
                       &cold[i], &comp[i], &warm[i], &k, &crit, &iter, &cpu[i]) == 7) {
                got = 1;
                if (k > rss)
                    rss = k;
            }
        }
        if (!f || pclose(f) != 0 || !got)
            die("the n = 50,000 fit failed: %s%s", cmd, "");
    }
    double sc = median(cold, NPROC), sp = median(comp, NPROC), sw = median(warm, NPROC);
    printf("# lmm n = 50000: %s, 100 groups; REML criterion %.12f in %d Newton iterations; a "
           "fresh process's first fit %.3f s wall (%.3f s CPU) = compile %.3f s + %.3f s; a "
           "second fit (cached code) %.3f s; medians of %d processes, peak RSS the largest\n",
           sim_formula, crit, iter, sc, median(cpu, NPROC), sp, sc - sp, sw, NPROC);
    printf("BENCH lmm_n50000 value=%.3f unit=s\n", sc);
    printf("BENCH lmm_n50000_peak_rss value=%.1f unit=MiB\n", (double)rss / 1024.0);
    return 0;
}

int main(int argc, char **argv)
{
    openblas_set_num_threads(1);
    if (argc > 2 && !strcmp(argv[1], "--one-fit"))
        return one_fit(argv[2]);
    const char *which = argc > 1 ? argv[1] : "all";
    int all = !strcmp(which, "all"), status = 0, any = 0;
    if (all || !strcmp(which, "lmm_sim5000")) {
        char path[1024];
        sim_path(5000, path, sizeof path);
        status |= vs_lmer("lmm_sim5000", path, sim_formula, 21, 11);
        any = 1;
    }
    if (all || !strcmp(which, "lmm_n50000")) {
        char self[1024];
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        if (len <= 0)
            die("cannot find this program (/proc/self/exe)%s%s", "", "");
        self[len] = '\0';
        status |= n50000(self);
        any = 1;
    }
    if (all || !strcmp(which, "lmm_penicillin")) {
        char path[1024];
        snprintf(path, sizeof path, "%s/../tests/data/penicillin.csv", SJ_BENCH_DIR);
        status |= vs_lmer("lmm_penicillin", path, pen_formula, 201, 51);
        any = 1;
    }
    if (!any) {
        fprintf(stderr, "bench_lmm_large: unknown benchmark '%s' (lmm_sim5000, lmm_n50000, "
                        "lmm_penicillin)\n", which);
        return 2;
    }
    return status;
}
