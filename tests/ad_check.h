/* Helpers shared by the derivative tests (tests/test_ad_*.c): values with
 * shapes, running a function through the reference evaluator, and error
 * measures.  Header-only so that each test program stays one file. */
#ifndef SJ_AD_CHECK_H
#define SJ_AD_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define AD_MAX_OUT 64

typedef struct val {
    int rank;
    int64_t dim[SJ_MAX_RANK];
    size_t n;
    double *data;
} val;

static inline size_t val_numel(int rank, const int64_t *dim)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)dim[i];
    return n;
}

static inline val val_new(int rank, const int64_t *dim)
{
    val v = {.rank = rank};
    if (rank > 0)
        memcpy(v.dim, dim, (size_t)rank * sizeof *dim);
    v.n = val_numel(rank, dim);
    v.data = calloc(v.n ? v.n : 1, sizeof(double));
    return v;
}

static inline val val_copy(const val *a)
{
    val v = val_new(a->rank, a->dim);
    memcpy(v.data, a->data, a->n * sizeof(double));
    return v;
}

static inline void val_free(val *v)
{
    free(v->data);
    v->data = NULL;
}

static inline double val_dot(const val *a, const val *b)
{
    double s = 0;
    for (size_t i = 0; i < a->n; i++)
        s += a->data[i] * b->data[i];
    return s;
}

/* Runs f on inputs in[0..nin-1] with the reference evaluator; out[k] are new
 * values (free with val_free).  Returns the number of outputs. */
static inline int ad_run(sj_ctx *ctx, sj_fn *f, int nin, const val *in, val *out)
{
    int ranks[32];
    const int64_t *dims[32];
    const double *data[32];
    assert_true(nin <= 32);
    for (int i = 0; i < nin; i++) {
        ranks[i] = in[i].rank;
        dims[i] = in[i].dim;
        data[i] = in[i].data;
    }
    sj_compiled *c = NULL;
    assert_ok(sj_fn_specialize(f, nin, ranks, dims, &c), ctx);
    int nout = sj_compiled_noutput(c);
    assert_true(nout > 0 && nout <= AD_MAX_OUT);
    double *outs[AD_MAX_OUT];
    for (int k = 0; k < nout; k++) {
        int rank;
        int64_t d[SJ_MAX_RANK];
        assert_ok(sj_compiled_output_shape(c, k, &rank, d), ctx);
        out[k] = val_new(rank, d);
        outs[k] = out[k].data;
    }
    assert_ok(sj_compiled_eval(c, data, outs), ctx);
    sj_compiled_free(c);
    return nout;
}

static inline void ad_free_all(val *v, int n)
{
    for (int i = 0; i < n; i++)
        val_free(&v[i]);
}

/* Largest |got - want| / (atol + rtol |want|) over the elements: <= 1 passes. */
static inline double ad_excess(const double *got, const double *want, size_t n, double rtol,
                               double atol)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / (atol + rtol * fabs(want[i]));
        if (!(e <= worst)) /* NaN counts as failing */
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* Largest relative error |got - want| / max(1, |want|). */
static inline double ad_relerr(const double *got, const double *want, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / fmax(1.0, fabs(want[i]));
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

#endif
