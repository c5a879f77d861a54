/* GLM fit benchmarks (bench/run prints their BENCH lines):
 *
 *   glm_pois100k   one Poisson fit, n = 100,000, p = 20 (an intercept and 19
 *                  normal columns, bench/make_glm_data.R), through the public
 *                  sj_glm (sj_glm_create + sj_glm_fit: IRLS in native code,
 *                  then R's summary quantities), against R's glm
 *                  (bench/peer_glm.R) and statsmodels' GLM
 *                  (bench/peer_glm_statsmodels.py), in the same run:
 *     BENCH glm_pois100k_vs_r_glm statjit_s=... peer=r_glm peer_s=... ratio=...
 *     BENCH glm_pois100k_vs_statsmodels statjit_s=... peer=statsmodels peer_s=... ratio=...
 *   glm_batched_1000   1,000 Poisson fits, n = 1,000, p = 10, sharing X: the
 *                  graph-level fit (sj_glm_fit_graph) vmapped over the
 *                  responses, against a loop of 1,000 calls of the compiled
 *                  single fit, and against a statsmodels loop:
 *     BENCH glm_batched_1000_vs_loop statjit_s=... peer=statjit_loop peer_s=... ratio=...
 *     BENCH glm_batched_1000_vs_statsmodels statjit_s=... peer=statsmodels peer_s=... ratio=...
 *
 * ratio = peer seconds / statjit seconds (higher is better for statjit).
 * Times are medians of repeated runs after a warm-up (compiles are cached),
 * peers time only their fit calls (not reading the data).  The coefficients
 * are compared: "# max rel diff" lines. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "statjit.h"

#ifndef SJ_BENCH_DIR
#define SJ_BENCH_DIR "bench"
#endif

/* The CSV of make_glm_data.R: ny response columns y1..y<ny>, then p-1 x
 * columns; X gets the intercept. */
typedef struct data {
    size_t n;
    int p, ny;
    double *x, *y; /* n×p; ny×n (response-major) */
} data;

static void run(const char *cmd)
{
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_glm: failed: %s\n", cmd);
        exit(1);
    }
}

static data load(const char *path, size_t n, int p, int ny)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    data d = {n, p, ny, malloc(n * (size_t)p * sizeof(double)), malloc(n * (size_t)ny * sizeof(double))};
    char *line = NULL;
    size_t cap = 0;
    if (getline(&line, &cap, f) < 0)
        exit(1);
    for (size_t i = 0; i < n; i++) {
        if (getline(&line, &cap, f) < 0) {
            fprintf(stderr, "bench_glm: %s: short file\n", path);
            exit(1);
        }
        char *s = line;
        for (int k = 0; k < ny; k++) {
            d.y[(size_t)k * n + i] = strtod(s, &s);
            s++;
        }
        d.x[i * (size_t)p] = 1.0;
        for (int j = 1; j < p; j++) {
            d.x[i * (size_t)p + (size_t)j] = strtod(s, &s);
            s++;
        }
    }
    free(line);
    fclose(f);
    return d;
}

typedef struct peer {
    double seconds, coef[64];
    int ok;
} peer;

static peer run_peer(const char *cmd, int p)
{
    peer r = {0};
    FILE *f = popen(cmd, "r");
    if (!f)
        return r;
    char line[8192];
    int got = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "coef ", 5)) {
            char *s = line + 5;
            for (int j = 0; j < p && j < 64; j++)
                r.coef[j] = strtod(s, &s);
            got |= 1;
        }
        int nrep;
        if (sscanf(line, "median_s %lf nrep %d", &r.seconds, &nrep) == 2)
            got |= 2;
    }
    r.ok = pclose(f) == 0 && got == 3;
    return r;
}

static double max_rel(const double *a, const double *b, int p)
{
    double m = 0;
    for (int j = 0; j < p; j++)
        m = fmax(m, fabs(a[j] - b[j]) / fmax(1e-300, fmax(fabs(a[j]), fabs(b[j]))));
    return m;
}

/* SJ_BENCH_NO_PEERS=1 skips the peers (for profiling statjit alone). */
static int no_peers(void)
{
    const char *e = getenv("SJ_BENCH_NO_PEERS");
    return e && *e && strcmp(e, "0") != 0;
}

static const char *python(void)
{
    const char *py = getenv("SJ_BENCH_PYTHON");
    return py ? py : "/usr/bin/python3";
}

static void pois100k(const char *dir)
{
    enum { N = 100000, P = 20, NREP = 5 };
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/glm_pois100k.csv", dir);
    snprintf(cmd, sizeof cmd, "Rscript %s/make_glm_data.R %s %d %d 1", SJ_BENCH_DIR, path, N, P);
    run(cmd);
    data d = load(path, N, P, 1);
    sj_ctx *ctx = NULL;
    CHECK(ctx, sj_ctx_create(&ctx));
    double t[NREP], beta[P];
    int iter = 0, conv = 0;
    for (int r = -1; r < NREP; r++) { /* r = -1: warm-up (compiles) */
        double t0 = now();
        sj_glm *m = NULL;
        CHECK(ctx, sj_glm_create(ctx, "poisson", NULL, N, P, d.x, NULL, d.y, NULL, NULL, &m));
        CHECK(ctx, sj_glm_fit(m, 0));
        for (int j = 0; j < P; j++)
            CHECK(ctx, sj_glm_coef(m, j, NULL, &beta[j], NULL, NULL, NULL));
        CHECK(ctx, sj_glm_convergence(m, &conv, &iter));
        sj_glm_free(m);
        if (r >= 0)
            t[r] = now() - t0;
    }
    double s = median(t, NREP);
    printf("# glm pois100k: statjit median of %d: %.6g s, %d iterations, converged %d\n", NREP, s,
           iter, conv);
    snprintf(cmd, sizeof cmd, "Rscript %s/peer_glm.R %s 3", SJ_BENCH_DIR, path);
    peer r = no_peers() ? (peer){0} : run_peer(cmd, P);
    if (r.ok) {
        printf("# R glm: median %.6g s; max rel diff of coefficients %.3g\n", r.seconds,
               max_rel(beta, r.coef, P));
        printf("BENCH glm_pois100k_vs_r_glm statjit_s=%.6g peer=r_glm peer_s=%.6g ratio=%.3f\n", s,
               r.seconds, r.seconds / s);
    } else {
        printf("# R glm peer failed: %s\n", cmd);
    }
    snprintf(cmd, sizeof cmd, "%s %s/peer_glm_statsmodels.py %s single 3", python(), SJ_BENCH_DIR,
             path);
    r = no_peers() ? (peer){0} : run_peer(cmd, P);
    if (r.ok) {
        printf("# statsmodels GLM: median %.6g s; max rel diff of coefficients %.3g\n", r.seconds,
               max_rel(beta, r.coef, P));
        printf("BENCH glm_pois100k_vs_statsmodels statjit_s=%.6g peer=statsmodels peer_s=%.6g "
               "ratio=%.3f\n",
               s, r.seconds, r.seconds / s);
    } else {
        printf("# statsmodels peer failed: %s\n", cmd);
    }
    free(d.x), free(d.y);
    remove(path);
    sj_ctx_free(ctx);
}

static sj_fn *fit_fn(sj_ctx *ctx)
{
    sj_graph *g = NULL;
    CHECK(ctx, sj_graph_create(ctx, &g));
    sj_glm_family *fam = NULL;
    CHECK(ctx, sj_glm_family_create(ctx, "poisson", NULL, 0, &fam));
    sj_value x = sj_input(g, "X", 2, (const char *[]){"n", "p"});
    sj_value y = sj_input(g, "y", 1, (const char *[]){"n"});
    sj_value o[3];
    CHECK(ctx, sj_glm_fit_graph(g, fam, x, y, SJ_INVALID, SJ_INVALID, 0, &o[0], &o[1], &o[2]));
    sj_fn *f = NULL;
    CHECK(ctx, sj_fn_create(g, 3, o, &f));
    sj_graph_free(g);
    sj_glm_family_free(fam);
    return f;
}

static void batched(const char *dir)
{
    enum { B = 1000, N = 1000, P = 10, NREP = 5 };
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/glm_batched.csv", dir);
    snprintf(cmd, sizeof cmd, "Rscript %s/make_glm_data.R %s %d %d %d", SJ_BENCH_DIR, path, N, P,
             B);
    run(cmd);
    data d = load(path, N, P, B);
    sj_ctx *ctx = NULL;
    CHECK(ctx, sj_ctx_create(&ctx));
    sj_fn *f = fit_fn(ctx), *vf = NULL;
    CHECK(ctx, sj_vmap(f, (int[]){-1, 0}, NULL, NULL, &vf));
    int64_t dx[2] = {N, P}, dn = N, db[2] = {B, N};
    sj_compiled *c1 = NULL, *cb = NULL;
    CHECK(ctx, sj_fn_compile(f, 2, (int[]){2, 1}, (const int64_t *[]){dx, &dn}, &c1));
    CHECK(ctx, sj_fn_compile(vf, 2, (int[]){2, 2}, (const int64_t *[]){dx, db}, &cb));
    double *bv = malloc((size_t)B * P * sizeof *bv), *bl = malloc((size_t)B * P * sizeof *bl);
    double itv[B], cvv[B], itl, cvl, tv[NREP], tl[NREP];
    int nconv = 0;
    for (int r = -1; r < NREP; r++) {
        double t0 = now();
        CHECK(ctx, sj_compiled_call(cb, (const double *[]){d.x, d.y}, (double *[]){bv, itv, cvv}));
        double t1 = now();
        for (int k = 0; k < B; k++)
            CHECK(ctx, sj_compiled_call(c1, (const double *[]){d.x, d.y + (size_t)k * N},
                                        (double *[]){bl + (size_t)k * P, &itl, &cvl}));
        double t2 = now();
        if (r >= 0) {
            tv[r] = t1 - t0;
            tl[r] = t2 - t1;
        }
    }
    for (int k = 0; k < B; k++)
        nconv += cvv[k] == 1.0;
    double sv = median(tv, NREP), sl = median(tl, NREP);
    printf("# glm batched: %d fits n = %d p = %d: vmap %.6g s, loop %.6g s (%.3g ms per fit); %d "
           "converged; max rel diff vmap vs loop %.3g\n",
           B, N, P, sv, sl, 1e3 * sl / B, nconv, max_rel(bv, bl, B * P));
    printf("BENCH glm_batched_1000_vs_loop statjit_s=%.6g peer=statjit_loop peer_s=%.6g "
           "ratio=%.3f\n",
           sv, sl, sl / sv);
    snprintf(cmd, sizeof cmd, "%s %s/peer_glm_statsmodels.py %s loop 1", python(), SJ_BENCH_DIR,
             path);
    peer r = no_peers() ? (peer){0} : run_peer(cmd, P);
    if (r.ok) {
        printf("# statsmodels loop: %.6g s; max rel diff of the first fit %.3g\n", r.seconds,
               max_rel(bv, r.coef, P));
        printf("BENCH glm_batched_1000_vs_statsmodels statjit_s=%.6g peer=statsmodels "
               "peer_s=%.6g ratio=%.3f\n",
               sv, r.seconds, r.seconds / sv);
    } else {
        printf("# statsmodels peer failed: %s\n", cmd);
    }
    sj_compiled_free(c1);
    sj_compiled_free(cb);
    sj_fn_free(vf);
    sj_fn_free(f);
    free(bv), free(bl), free(d.x), free(d.y);
    remove(path);
    sj_ctx_free(ctx);
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "all";
    char dir[] = "/tmp/sj_bench_glm_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (!strcmp(which, "all") || !strcmp(which, "glm_pois100k"))
        pois100k(dir);
    if (!strcmp(which, "all") || !strcmp(which, "glm_batched_1000"))
        batched(dir);
    rmdir(dir);
    return 0;
}
