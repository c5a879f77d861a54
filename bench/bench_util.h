/* Helpers shared by the benchmark programs: wall time, medians of repeated
 * runs, a seedable xorshift generator and a check that exits with the
 * context's message. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "statjit.h"

/* Exits with the status and the context's message unless call is SJ_OK. */
#define CHECK(ctx, call)                                                                \
    do {                                                                                \
        sj_status st_ = (call);                                                         \
        if (st_ != SJ_OK) {                                                             \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, sj_status_name(st_), \
                    sj_ctx_last_error(ctx));                                            \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

/* Monotonic wall time in seconds. */
double now(void);
/* Median of v[0..n-1] (sorts v). */
double median(double *v, int n);
/* The generator behind uniform01 and normal; programs seed it for
 * repeatable data. */
void bench_seed(uint64_t seed);
/* Uniform on (0, 1), never 0. */
double uniform01(void);
/* Standard normal (Box–Muller). */
double normal(void);
/* |a − b| / max(|a|, |b|). */
double rel_diff(double a, double b);
/* The sleepstudy-shaped REML criterion written densely (as
 * tests/test_ad_reml.c does): f(theta[3], y[n], X[n, 2], days[n], codes[n])
 * with V = e^θ₀ Z₁Z₁ᵀ + e^θ₁ Z₂Z₂ᵀ + e^θ₂ I, Z₁ = one_hot(codes, q),
 * Z₂ = Z₁ · days.  Exits with the message on a failure. */
sj_fn *bench_dense_reml_fn(sj_ctx *ctx, int q);

#endif
