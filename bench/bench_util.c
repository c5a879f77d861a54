#include "bench_util.h"

#include <math.h>
#include <time.h>

double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng_state = 88172645463325252ULL;

void bench_seed(uint64_t seed) { rng_state = seed ? seed : 88172645463325252ULL; }

double uniform01(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

double normal(void)
{
    return sqrt(-2.0 * log(uniform01())) * cos(2.0 * M_PI * uniform01());
}

double rel_diff(double a, double b)
{
    return fabs(a - b) / (1e-300 + fmax(fabs(a), fabs(b)));
}

sj_fn *bench_dense_reml_fn(sj_ctx *ctx, int q)
{
    sj_graph *g = NULL;
    CHECK(ctx, sj_graph_create(ctx, &g));
    const char *d3[] = {"3"}, *dn[] = {"n"}, *dx[] = {"n", "2"};
    sj_value theta = sj_input(g, "theta", 1, d3);
    sj_value y = sj_input(g, "y", 1, dn);
    sj_value x = sj_input(g, "X", 2, dx);
    sj_value days = sj_input(g, "days", 1, dn);
    sj_value codes = sj_input(g, "codes", 1, dn);

    sj_value t = sj_exp(g, theta);
    const char *scalar[] = {NULL};
    sj_value g1 = sj_reshape(g, sj_slice(g, t, 0, 0, 1), 0, scalar);
    sj_value g2 = sj_reshape(g, sj_slice(g, t, 0, 1, 2), 0, scalar);
    sj_value s2 = sj_reshape(g, sj_slice(g, t, 0, 2, 3), 0, scalar);
    const char *col[] = {"n", "1"};
    char nclass[32];
    snprintf(nclass, sizeof nclass, "%d", q);
    sj_value z1 = sj_one_hot(g, codes, nclass);
    sj_value z2 = sj_mul(g, z1, sj_reshape(g, days, 2, col));
    sj_value v = sj_add(g, sj_add(g, sj_mul(g, g1, sj_matmul(g, z1, sj_mT(g, z1))),
                                  sj_mul(g, g2, sj_matmul(g, z2, sj_mT(g, z2)))),
                        sj_mul(g, s2, sj_eye(g, "n")));
    sj_value l = sj_cholesky(g, v);
    sj_value vinv_x = sj_cholesky_solve(g, l, x);
    sj_value vinv_y = sj_cholesky_solve(g, l, y);
    sj_value xtvx = sj_matmul(g, sj_mT(g, x), vinv_x);
    sj_value b = sj_matmul(g, sj_mT(g, x), vinv_y);
    sj_value coef = sj_cholesky_solve(g, sj_cholesky(g, xtvx), b);
    sj_value ypy = sj_sub(g, sj_sum_all(g, sj_mul(g, y, vinv_y)), sj_sum_all(g, sj_mul(g, b, coef)));
    sj_value f = sj_add(g, sj_add(g, sj_logdet(g, v), sj_logdet(g, xtvx)), ypy);
    CHECK(ctx, sj_graph_status(g));
    sj_fn *fn = NULL;
    CHECK(ctx, sj_fn_create(g, 1, &f, &fn));
    sj_graph_free(g);
    return fn;
}
