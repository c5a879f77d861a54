/* Symmetric eigendecomposition (eigvalsh, eigvecsh) for the reference
 * evaluator, and the kernel generated code calls (ir_eigh_kernel), so that
 * both paths produce the same bits.
 *
 * Conventions (docs/ir.md):
 *   - only the lower triangle of A is read (as for cholesky);
 *   - eigenvalues ascending (LAPACK dsyevd, divide and conquer, jobz = 'V'
 *     for both ops so that eigvalsh and eigvecsh agree exactly);
 *   - eigenvector j is column j of eigvecsh, scaled so that its
 *     largest-magnitude component (the first on ties) is positive;
 *   - a NaN in the lower triangle, or a decomposition that does not
 *     converge (dsyevd info > 0), gives NaN outputs rather than an error;
 *   - a 0 x 0 matrix gives empty outputs. */
#include <math.h>
#include <string.h>

#include <lapacke.h>

#include "ir/alloc.h"
#include "ir/eval_kernels.h"

int32_t ir_eigh_kernel(const double *a, int64_t n, double *w, double *vecs, void *work)
{
    if (n <= 0)
        return 0;
    double *m = work, *ev = m + n * n, *dw = ev + n;
    lapack_int lwork = (lapack_int)(1 + 6 * n + 2 * n * n), liwork = (lapack_int)(3 + 5 * n);
    lapack_int *iw = (lapack_int *)(dw + lwork);
    int bad = 0;
    /* Row-major lower triangle = column-major upper triangle of the same
     * symmetric matrix. */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double x = j <= i ? a[i * n + j] : a[j * n + i];
            bad |= isnan(x);
            m[j * n + i] = x; /* column-major */
        }
    lapack_int info = 0;
    if (!bad)
        info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)n, m, (lapack_int)n,
                                   ev, dw, lwork, iw, liwork);
    if (info < 0)
        return (int32_t)info;
    if (bad || info > 0) {
        if (w)
            for (int64_t i = 0; i < n; i++)
                w[i] = NAN;
        if (vecs)
            for (int64_t i = 0; i < n * n; i++)
                vecs[i] = NAN;
        return 0;
    }
    if (w)
        memcpy(w, ev, (size_t)n * sizeof *w);
    if (vecs)
        for (int64_t j = 0; j < n; j++) {
            const double *col = m + j * n; /* eigenvector j, contiguous */
            int64_t k = 0;
            for (int64_t i = 1; i < n; i++)
                if (fabs(col[i]) > fabs(col[k]))
                    k = i;
            double s = col[k] < 0 ? -1.0 : 1.0;
            for (int64_t i = 0; i < n; i++)
                vecs[i * n + j] = s * col[i];
        }
    return 0;
}

static sj_status eigh(const ev_args *a, int vectors)
{
    const ir_shape *s = ev_in_shape(a, 0);
    int64_t n = s->dim[s->rank - 1];
    if (n > 46340 / 2)
        return ev_fail(a, SJ_ERR_UNSUPPORTED, "matrix of order %lld is too large for LAPACK",
                       (long long)n);
    size_t batch = ev_batch(s, 2), nn = (size_t)(n * n);
    void *work = ir_malloc(IR_EIGH_WORK(n));
    if (!work)
        return ev_fail(a, SJ_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t bt = 0; bt < batch; bt++) {
        int32_t info = ir_eigh_kernel(ev_in(a, 0) + bt * nn, n,
                                      vectors ? NULL : a->out + bt * (size_t)n,
                                      vectors ? a->out + bt * nn : NULL, work);
        if (info < 0) {
            ir_free(work);
            return ev_fail(a, SJ_ERR_INTERNAL, "dsyevd rejected argument %d", (int)-info);
        }
    }
    ir_free(work);
    return SJ_OK;
}

sj_status ev_eigvalsh(const ev_args *a) { return eigh(a, 0); }
sj_status ev_eigvecsh(const ev_args *a) { return eigh(a, 1); }
