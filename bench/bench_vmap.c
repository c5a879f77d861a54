/* Benchmark of sj_vmap: B = 1,000 evaluations of the dense REML criterion
 * and its gradient with respect to θ (the function of bench/bench_ad.c:
 * f(θ) = log|V| + log|XᵀV⁻¹X| + yᵀPy, V = Z G Zᵀ + σ² I, random intercept and
 * slope), sleepstudy-shaped (n = 180: 18 groups of 10 days), each item with
 * its own y and θ, sharing X, days and the group codes.  Three ways, in one
 * run:
 *
 *   vmap    sj_vmap(sj_value_and_grad(f)) with in_axes θ: 0, y: 0, X, days,
 *           codes: -1, compiled once for B items, one sj_compiled_call;
 *   loop    sj_value_and_grad(f) compiled once for one item, B calls;
 *   torch   bench/peer_torch_vmap.py: functorch.vmap(grad_and_value(f)) in
 *           its own process (batched tensors if functorch is missing).
 *
 * Prints
 *
 *   BENCH vmap_reml_grad_1000_vs_loop statjit_s=<vmap> peer=statjit_loop
 *         peer_s=<loop> ratio=<loop / vmap>
 *   BENCH vmap_reml_grad_1000_vs_torch statjit_s=<vmap> peer=torch
 *         peer_s=<torch> ratio=<torch / vmap>
 *
 * and, as comments, the max relative difference between the vmap results and
 * the loop's (they must agree to rounding) and torch's.  Times are medians of
 * repeated calls (vmap and loop alternate within each repetition, half of
 * them before the peer runs and half after).  statjit's OpenBLAS thread count
 * is given to torch (torch.set_num_threads, OPENBLAS_NUM_THREADS).
 * Usage: bench_vmap [vmap_reml_grad_1000]. */
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

enum { NB = 1000, N = 180, GROUP = 10, Q = N / GROUP, P = 2 };


/* ---- data: shared design, per-item θ and y ---------------------------------------- */

typedef struct data {
    double x[N * P], days[N], codes[N];
    double *theta; /* [NB, 3] */
    double *y;     /* [NB, N] */
} data;

/* Log-variances near sleepstudy's REML fit (bench_ad's θ), jittered per item;
 * y from the model with fresh random effects and noise per item. */
static void simulate(data *d)
{
    static const double theta0[3] = {6.4, 3.5, 6.5};
    d->theta = malloc(NB * 3 * sizeof(double));
    d->y = malloc((size_t)NB * N * sizeof(double));
    if (!d->theta || !d->y)
        exit(1);
    for (int i = 0; i < N; i++) {
        d->days[i] = i % GROUP;
        d->codes[i] = i / GROUP;
        d->x[P * i] = 1;
        d->x[P * i + 1] = i % GROUP;
    }
    for (int b = 0; b < NB; b++) {
        for (int k = 0; k < 3; k++)
            d->theta[3 * b + k] = theta0[k] + 0.3 * normal();
        for (int s = 0; s < Q; s++) {
            double b0 = 25 * normal(), b1 = 6 * normal();
            for (int j = 0; j < GROUP; j++)
                d->y[(size_t)b * N + s * GROUP + j] = 250 + 10 * j + b0 + b1 * j + 25 * normal();
        }
    }
}

/* ---- the torch peer --------------------------------------------------------------- */

typedef struct peer_result {
    int ok, threads, nrep;
    double seconds, *value, *grad; /* [NB], [NB, 3] */
    char version[64], method[96];
} peer_result;

static peer_result run_torch(const data *d, int threads)
{
    peer_result r = {0};
    r.value = calloc(NB, sizeof(double));
    r.grad = calloc(NB * 3, sizeof(double));
    char path[] = "/tmp/statjit_bench_vmap_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f || !r.value || !r.grad) {
        printf("# torch peer: cannot write a temporary file\n");
        return r;
    }
    fprintf(f, "%d %d %d\n", NB, N, Q);
    for (int b = 0; b < NB; b++)
        fprintf(f, "%.17g %.17g %.17g\n", d->theta[3 * b], d->theta[3 * b + 1], d->theta[3 * b + 2]);
    for (int i = 0; i < N; i++)
        fprintf(f, "%.17g %.0f\n", d->days[i], d->codes[i]);
    for (int b = 0; b < NB; b++)
        for (int i = 0; i < N; i++)
            fprintf(f, "%.17g%c", d->y[(size_t)b * N + i], i + 1 < N ? ' ' : '\n');
    fclose(f);

    const char *py = getenv("SJ_PYTHON");
    char cmd[2048], nthr[16];
    snprintf(nthr, sizeof nthr, "%d", threads);
    setenv("OPENBLAS_NUM_THREADS", nthr, 1);
    snprintf(cmd, sizeof cmd, "%s %s/peer_torch_vmap.py %s %d", py ? py : "/usr/bin/python3",
             SJ_BENCH_DIR, path, threads);
    FILE *p = popen(cmd, "r");
    if (p) {
        char line[1024];
        int got = 0, nitem = 0;
        while (fgets(line, sizeof line, p)) {
            int i;
            double v, g0, g1, g2;
            if (sscanf(line, "item %d %lf %lf %lf %lf", &i, &v, &g0, &g1, &g2) == 5 && i >= 0 &&
                i < NB) {
                r.value[i] = v;
                r.grad[3 * i] = g0, r.grad[3 * i + 1] = g1, r.grad[3 * i + 2] = g2;
                nitem++;
            }
            got |= sscanf(line, "median_s %lf nrep %d", &r.seconds, &r.nrep) == 2 ? 1 : 0;
            got |= sscanf(line, "threads %d", &r.threads) == 1 ? 2 : 0;
            got |= sscanf(line, "torch %63s", r.version) == 1 ? 4 : 0;
            if (strncmp(line, "method ", 7) == 0) {
                size_t len = strcspn(line + 7, "\n");
                len = len < sizeof r.method - 1 ? len : sizeof r.method - 1;
                memcpy(r.method, line + 7, len);
                r.method[len] = 0;
            }
        }
        int status = pclose(p);
        r.ok = status == 0 && (got & 1) && nitem == NB;
    }
    unlink(path);
    if (!r.ok)
        printf("# torch peer failed: %s\n", cmd);
    return r;
}

/* ---- the benchmark ------------------------------------------------------------------ */

static void bench_vmap_reml(void)
{
    data d;
    simulate(&d);
    sj_ctx *ctx = NULL;
    if (sj_ctx_create(&ctx) != SJ_OK)
        exit(1);
    sj_fn *f = bench_dense_reml_fn(ctx, Q), *vg = NULL, *vm = NULL;
    int wrt = 0;
    CHECK(ctx, sj_value_and_grad(f, 0, 1, &wrt, &vg));
    const int in_axes[5] = {0, 0, -1, -1, -1};
    CHECK(ctx, sj_vmap(vg, in_axes, NULL, "b", &vm));

    int ranks1[5] = {1, 1, 2, 1, 1}, ranksb[5] = {2, 2, 2, 1, 1};
    int64_t d3[1] = {3}, dn[1] = {N}, dx[2] = {N, P}, db3[2] = {NB, 3}, dbn[2] = {NB, N};
    const int64_t *dims1[5] = {d3, dn, dx, dn, dn}, *dimsb[5] = {db3, dbn, dx, dn, dn};
    sj_compiled *c1 = NULL, *cb = NULL;
    double t0 = now();
    CHECK(ctx, sj_fn_compile(vg, 5, ranks1, dims1, &c1));
    double tc1 = now() - t0;
    t0 = now();
    CHECK(ctx, sj_fn_compile(vm, 5, ranksb, dimsb, &cb));
    double tcb = now() - t0;

    double *lv = malloc(NB * sizeof(double)), *lg = malloc(NB * 3 * sizeof(double));
    double *vv = malloc(NB * sizeof(double)), *vgr = malloc(NB * 3 * sizeof(double));
    if (!lv || !lg || !vv || !vgr)
        exit(1);
    const double *inb[5] = {d.theta, d.y, d.x, d.days, d.codes};
    double *outb[2] = {vv, vgr};

    /* one repetition of each way */
#define RUN_LOOP()                                                                      \
    for (int b = 0; b < NB; b++) {                                                      \
        const double *in1[5] = {d.theta + 3 * b, d.y + (size_t)b * N, d.x, d.days, d.codes}; \
        double *out1[2] = {lv + b, lg + 3 * b};                                         \
        CHECK(ctx, sj_compiled_call(c1, in1, out1));                                    \
    }
    RUN_LOOP();
    CHECK(ctx, sj_compiled_call(cb, inb, outb));
    double w0 = now();
    RUN_LOOP();
    CHECK(ctx, sj_compiled_call(cb, inb, outb));
    double per_rep = now() - w0;
    int nrep = (int)(8.0 / per_rep);
    nrep = nrep < 6 ? 6 : nrep > 40 ? 40 : nrep;
    nrep &= ~1;
    double *tl = malloc(nrep * sizeof *tl), *tv = malloc(nrep * sizeof *tv);
    int threads = openblas_get_num_threads();
    peer_result pr = {0};
    for (int half = 0; half < 2; half++) {
        for (int rep = half * nrep / 2; rep < (half + 1) * nrep / 2; rep++)
            for (int k = 0; k < 2; k++) {
                int which = (k + rep) % 2;
                double s = now();
                if (which == 0) {
                    RUN_LOOP();
                } else {
                    CHECK(ctx, sj_compiled_call(cb, inb, outb));
                }
                (which == 0 ? tl : tv)[rep] = now() - s;
            }
        if (half == 0)
            pr = run_torch(&d, threads);
    }
#undef RUN_LOOP
    double sl = median(tl, nrep), sv = median(tv, nrep);

    double dloop = 0, dtorch = 0;
    for (int b = 0; b < NB; b++) {
        dloop = fmax(dloop, rel_diff(vv[b], lv[b]));
        if (pr.ok)
            dtorch = fmax(dtorch, rel_diff(vv[b], pr.value[b]));
        for (int k = 0; k < 3; k++) {
            dloop = fmax(dloop, rel_diff(vgr[3 * b + k], lg[3 * b + k]));
            if (pr.ok)
                dtorch = fmax(dtorch, rel_diff(vgr[3 * b + k], pr.grad[3 * b + k]));
        }
    }
    char load[64] = "?";
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (!fgets(load, sizeof load, la))
            snprintf(load, sizeof load, "?");
        load[strcspn(load, "\n")] = 0;
        fclose(la);
    }
    printf("# vmap reml n=%d (q=%d groups of %d, p=%d), %d items: item 0 value %.12g, grad % .10g "
           "% .10g % .10g; compile: one item %.3f s, vmap %.3f s (not timed below)\n",
           N, Q, GROUP, P, NB, vv[0], vgr[0], vgr[1], vgr[2], tc1, tcb);
    printf("# vmap reml: medians of %d: vmap %.6g s, loop of %d calls %.6g s (%.3g ms per call); "
           "statjit's OpenBLAS %d thread(s); load average %s\n",
           nrep, sv, NB, sl, 1e3 * sl / NB, threads, load);
    printf("# vmap vs loop: max rel diff of values and gradients %.2g\n", dloop);
    printf("BENCH vmap_reml_grad_1000_vs_loop statjit_s=%.6g peer=statjit_loop peer_s=%.6g "
           "ratio=%.3f\n", sv, sl, sl / sv);
    if (pr.ok) {
        printf("# torch %s, %s, %d thread(s) (OPENBLAS_NUM_THREADS=%d), median of %d; max rel "
               "diff vs vmap %.2g\n",
               pr.version, pr.method, pr.threads, threads, pr.nrep, dtorch);
        printf("BENCH vmap_reml_grad_1000_vs_torch statjit_s=%.6g peer=torch peer_s=%.6g "
               "ratio=%.3f\n", sv, pr.seconds, pr.seconds / sv);
    }
    fflush(stdout);
    free(tl), free(tv), free(lv), free(lg), free(vv), free(vgr);
    free(pr.value), free(pr.grad);
    free(d.theta), free(d.y);
    sj_compiled_free(c1), sj_compiled_free(cb);
    sj_fn_free(f), sj_fn_free(vg), sj_fn_free(vm);
    sj_ctx_free(ctx);
    if (!pr.ok || dloop > 1e-9)
        exit(1);
}

int main(int argc, char **argv)
{
    bench_seed(0x9e3779b97f4a7c15ULL);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "vmap_reml_grad_1000") != 0) {
            fprintf(stderr, "bench_vmap: unknown benchmark \"%s\"\n", argv[i]);
            return 2;
        }
    bench_vmap_reml();
    return 0;
}
