/* Linear-algebra kernels of the reference evaluator.  Every op acts on the
 * last two axes (outer: the last axis) and loops over the leading batch axes,
 * which the shape rules have made identical between operands.  Products are
 * plain loops; factorisations and solves call LAPACKE's *_work routines in
 * row-major mode (the *_work variants skip LAPACKE's NaN scan, so a NaN
 * reaches LAPACK as it would reach generated code).  Empty matrices never
 * reach LAPACK.
 *
 * Conventions (the code generator must match them):
 *   - cholesky reads only the lower triangle of A and returns L with zeros
 *     above the diagonal; a matrix that is not positive definite (including
 *     one with a NaN or ±Inf in its lower triangle) is
 *     SJ_ERR_NOT_POSITIVE_DEFINITE.
 *     logdet(A) = 2 Σ log diag chol(A) with the same reading and errors.
 *   - triangular_solve reads only the triangle its flags name; a zero on the
 *     diagonal is SJ_ERR_SINGULAR.
 *   - cholesky_solve(L, B) = (L Lᵀ)⁻¹ B reads only the lower triangle of L; a
 *     zero on the diagonal of L makes L Lᵀ singular: SJ_ERR_SINGULAR.
 *   - solve(A, B) by LU with partial pivoting; an exactly singular U is
 *     SJ_ERR_SINGULAR.
 * Messages name the op, the value, the batch item and the failing position
 * (0-based rows; "leading minor k" is LAPACK's order k). */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include <lapacke.h>

#include "ir/alloc.h"
#include "ir/eval_kernels.h"

/* The last two dimensions of input i (or of the node when i < 0). */
static void matrix_dims(const ev_args *a, int i, int64_t *rows, int64_t *cols)
{
    const ir_shape *s = i < 0 ? &a->n->shape : ev_in_shape(a, i);
    *rows = s->dim[s->rank - 2];
    *cols = s->dim[s->rank - 1];
}

/* ---- products and structure -------------------------------------------------------- */

sj_status ev_matmul(const ev_args *a)
{
    int ta = a->n->attr[0] != 0, tb = a->n->attr[1] != 0;
    int64_t ra, ca, rb, cb;
    matrix_dims(a, 0, &ra, &ca);
    matrix_dims(a, 1, &rb, &cb);
    int64_t m = ta ? ca : ra, k = ta ? ra : ca, n = tb ? rb : cb;
    size_t batch = ev_batch(&a->n->shape, 2);
    for (size_t bt = 0; bt < batch; bt++) {
        const double *x = ev_in(a, 0) + bt * (size_t)(ra * ca);
        const double *y = ev_in(a, 1) + bt * (size_t)(rb * cb);
        double *o = a->out + bt * (size_t)(m * n);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0.0;
                for (int64_t l = 0; l < k; l++)
                    s += (ta ? x[l * ca + i] : x[i * ca + l]) * (tb ? y[j * cb + l] : y[l * cb + j]);
                o[i * n + j] = s;
            }
    }
    return SJ_OK;
}

sj_status ev_outer(const ev_args *a)
{
    int64_t m, n;
    matrix_dims(a, -1, &m, &n);
    size_t batch = ev_batch(&a->n->shape, 2);
    for (size_t bt = 0; bt < batch; bt++) {
        const double *x = ev_in(a, 0) + bt * (size_t)m, *y = ev_in(a, 1) + bt * (size_t)n;
        double *o = a->out + bt * (size_t)(m * n);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                o[i * n + j] = x[i] * y[j];
    }
    return SJ_OK;
}

/* out[i r + k, j s + l] = a[i, j] b[k, l] for a [p, q] and b [r, s]. */
sj_status ev_kron(const ev_args *a)
{
    int64_t p, q, r, s;
    matrix_dims(a, 0, &p, &q);
    matrix_dims(a, 1, &r, &s);
    int64_t cols = q * s;
    size_t batch = ev_batch(&a->n->shape, 2);
    for (size_t bt = 0; bt < batch; bt++) {
        const double *x = ev_in(a, 0) + bt * (size_t)(p * q);
        const double *y = ev_in(a, 1) + bt * (size_t)(r * s);
        double *o = a->out + bt * (size_t)(p * r * cols);
        for (int64_t i = 0; i < p; i++)
            for (int64_t j = 0; j < q; j++)
                for (int64_t k = 0; k < r; k++)
                    for (int64_t l = 0; l < s; l++)
                        o[(i * r + k) * cols + j * s + l] = x[i * q + j] * y[k * s + l];
    }
    return SJ_OK;
}

sj_status ev_diag(const ev_args *a)
{
    int64_t n, unused;
    matrix_dims(a, 0, &n, &unused);
    size_t batch = ev_batch(&a->n->shape, 1);
    for (size_t bt = 0; bt < batch; bt++)
        for (int64_t i = 0; i < n; i++)
            a->out[bt * (size_t)n + (size_t)i] = ev_in(a, 0)[bt * (size_t)(n * n) + (size_t)(i * n + i)];
    return SJ_OK;
}

sj_status ev_diag_embed(const ev_args *a)
{
    int64_t n, unused;
    matrix_dims(a, -1, &n, &unused);
    size_t batch = ev_batch(&a->n->shape, 2);
    memset(a->out, 0, ev_numel(a) * sizeof *a->out);
    for (size_t bt = 0; bt < batch; bt++)
        for (int64_t i = 0; i < n; i++)
            a->out[bt * (size_t)(n * n) + (size_t)(i * n + i)] = ev_in(a, 0)[bt * (size_t)n + (size_t)i];
    return SJ_OK;
}

/* Keeps element (i, j) where lower ? j <= i + k : j >= i + k (NumPy). */
static sj_status triangle(const ev_args *a, int lower)
{
    int64_t r, c, k = a->n->attr[0];
    matrix_dims(a, 0, &r, &c);
    size_t batch = ev_batch(&a->n->shape, 2);
    const double *x = ev_in(a, 0);
    for (size_t bt = 0; bt < batch; bt++)
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < c; j++) {
                size_t at = bt * (size_t)(r * c) + (size_t)(i * c + j);
                int keep = lower ? j - i <= k : j - i >= k;
                a->out[at] = keep ? x[at] : 0.0;
            }
    return SJ_OK;
}

sj_status ev_tril(const ev_args *a) { return triangle(a, 1); }
sj_status ev_triu(const ev_args *a) { return triangle(a, 0); }

/* ---- factorisations and solves ------------------------------------------------------------ */

/* Sizes LAPACK's int can hold, else SJ_ERR_UNSUPPORTED (recorded). */
static sj_status lapack_fits(const ev_args *a, int64_t n, int64_t m)
{
    if (n > INT_MAX || m > INT_MAX || n * m > INT_MAX)
        return ev_fail(a, SJ_ERR_UNSUPPORTED, "a %" PRId64 " x %" PRId64
                       " matrix is too large for LAPACK", n, m);
    return SJ_OK;
}

static sj_status lapack_internal(const ev_args *a, const char *routine, lapack_int info)
{
    return ev_fail(a, SJ_ERR_INTERNAL, "%s rejected argument %d", routine, (int)-info);
}

/* A NaN or an infinity in the lower triangle: such a matrix is not positive
 * definite (docs/reliability.md).  dpotrf would let a NaN through as a NaN
 * factor, and an infinity through as an infinite one when nothing later
 * subtracts it, where the generated code's loops divide Inf by Inf. */
static int has_nonfinite_lower(const double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++)
            if (!isfinite(x[i * n + j]))
                return 1;
    return 0;
}

/* l = lower Cholesky factor of the lower triangle of x (n x n), zeros above;
 * batch item bt, for messages. */
static sj_status factor(const ev_args *a, const double *x, double *l, int64_t n, size_t bt)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            l[i * n + j] = j <= i ? x[i * n + j] : 0.0;
    if (n == 0)
        return SJ_OK;
    char b[96];
    /* Checked here: OpenBLAS's dpotrf lets a NaN or an infinity through. */
    if (has_nonfinite_lower(x, n))
        return ev_fail(a, SJ_ERR_NOT_POSITIVE_DEFINITE,
                       "matrix %s contains NaN or Inf, so is not positive definite",
                       ev_batch_str(ev_in_shape(a, 0), 2, bt, b, sizeof b));
    lapack_int info = LAPACKE_dpotrf_work(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, l, (lapack_int)n);
    if (info < 0)
        return lapack_internal(a, "dpotrf", info);
    if (info == 0)
        return SJ_OK;
    return ev_fail(a, SJ_ERR_NOT_POSITIVE_DEFINITE,
                   "matrix %s is not positive definite (leading minor %d)",
                   ev_batch_str(ev_in_shape(a, 0), 2, bt, b, sizeof b), (int)info);
}

sj_status ev_cholesky(const ev_args *a)
{
    int64_t n, unused;
    matrix_dims(a, 0, &n, &unused);
    if (lapack_fits(a, n, n) != SJ_OK)
        return a->err->status;
    size_t batch = ev_batch(&a->n->shape, 2), nn = (size_t)(n * n);
    for (size_t bt = 0; bt < batch; bt++)
        if (factor(a, ev_in(a, 0) + bt * nn, a->out + bt * nn, n, bt) != SJ_OK)
            return a->err->status;
    return SJ_OK;
}

sj_status ev_logdet(const ev_args *a)
{
    int64_t n, unused;
    matrix_dims(a, 0, &n, &unused);
    if (lapack_fits(a, n, n) != SJ_OK)
        return a->err->status;
    size_t batch = ev_batch(&a->n->shape, 0), nn = (size_t)(n * n);
    double *l = ir_malloc(nn * sizeof *l);
    if (!l)
        return ev_fail(a, SJ_ERR_OUT_OF_MEMORY, "out of memory");
    sj_status st = SJ_OK;
    for (size_t bt = 0; bt < batch && st == SJ_OK; bt++) {
        st = factor(a, ev_in(a, 0) + bt * nn, l, n, bt);
        double s = 0.0;
        for (int64_t i = 0; i < n; i++)
            s += log(l[i * n + i]);
        a->out[bt] = 2.0 * s;
    }
    ir_free(l);
    return st;
}

/* The first zero on the diagonal of the n x n matrix x, or -1. */
static int64_t zero_diagonal(const double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i * n + i] == 0.0)
            return i;
    return -1;
}

static sj_status singular_triangle(const ev_args *a, size_t bt, int64_t row, const char *what)
{
    char b[96];
    ev_batch_str(ev_in_shape(a, 0), 2, bt, b, sizeof b);
    return ev_fail(a, SJ_ERR_SINGULAR, "%s %s is singular (zero on the diagonal at row %" PRId64
                   ")", what, b, row);
}

/* x (n x m, row-major) ← op(A)⁻¹ x for triangular A. */
static sj_status trsolve_left(const ev_args *a, const double *A, double *x, int64_t n, int64_t m,
                              char uplo, char trans)
{
    if (n == 0 || m == 0)
        return SJ_OK;
    lapack_int info = LAPACKE_dtrtrs_work(LAPACK_ROW_MAJOR, uplo, trans, 'N', (lapack_int)n,
                                          (lapack_int)m, A, (lapack_int)n, x, (lapack_int)m);
    return info < 0 ? lapack_internal(a, "dtrtrs", info) : SJ_OK;
}

static void transpose_into(double *dst, const double *src, int64_t rows, int64_t cols)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            dst[j * rows + i] = src[i * cols + j];
}

/* Left: op(A) X = B with B [n, m].  Right: X op(A) = B with B [m, n], solved
 * as op(A)ᵀ Xᵀ = Bᵀ. */
sj_status ev_triangular_solve(const ev_args *a)
{
    int64_t flags = a->n->attr[0], n, unused, br, bc;
    int right = (flags & SJ_SOLVE_RIGHT) != 0, trans = (flags & SJ_SOLVE_TRANSPOSE) != 0;
    char uplo = (flags & SJ_SOLVE_UPPER) ? 'U' : 'L';
    matrix_dims(a, 0, &n, &unused);
    matrix_dims(a, 1, &br, &bc);
    int64_t m = right ? br : bc;
    if (lapack_fits(a, n, m) != SJ_OK)
        return a->err->status;
    size_t batch = ev_batch(&a->n->shape, 2), nn = (size_t)(n * n), nm = (size_t)(n * m);
    double *t = right ? ir_malloc(nm * sizeof *t) : NULL;
    if (right && !t)
        return ev_fail(a, SJ_ERR_OUT_OF_MEMORY, "out of memory");
    sj_status st = SJ_OK;
    for (size_t bt = 0; bt < batch && st == SJ_OK; bt++) {
        const double *A = ev_in(a, 0) + bt * nn, *B = ev_in(a, 1) + bt * nm;
        double *x = a->out + bt * nm;
        int64_t zero = zero_diagonal(A, n);
        if (zero >= 0) {
            st = singular_triangle(a, bt, zero, "triangular matrix");
        } else if (!right) {
            memcpy(x, B, nm * sizeof *x);
            st = trsolve_left(a, A, x, n, m, uplo, trans ? 'T' : 'N');
        } else {
            transpose_into(t, B, m, n);
            st = trsolve_left(a, A, t, n, m, uplo, trans ? 'N' : 'T');
            transpose_into(x, t, n, m);
        }
    }
    ir_free(t);
    return st;
}

sj_status ev_cholesky_solve(const ev_args *a)
{
    int64_t n, unused, m;
    matrix_dims(a, 0, &n, &unused);
    matrix_dims(a, 1, &unused, &m);
    if (lapack_fits(a, n, m) != SJ_OK)
        return a->err->status;
    size_t batch = ev_batch(&a->n->shape, 2), nn = (size_t)(n * n), nm = (size_t)(n * m);
    for (size_t bt = 0; bt < batch; bt++) {
        const double *L = ev_in(a, 0) + bt * nn;
        double *x = a->out + bt * nm;
        int64_t zero = zero_diagonal(L, n);
        if (zero >= 0)
            return singular_triangle(a, bt, zero, "Cholesky factor");
        memcpy(x, ev_in(a, 1) + bt * nm, nm * sizeof *x);
        if (n == 0 || m == 0)
            continue;
        lapack_int info = LAPACKE_dpotrs_work(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, (lapack_int)m,
                                              L, (lapack_int)n, x, (lapack_int)m);
        if (info < 0)
            return lapack_internal(a, "dpotrs", info);
    }
    return SJ_OK;
}

/* x (n x m) ← A⁻¹ x through LU in lu (n x n scratch) and ipiv. */
static sj_status lu_solve(const ev_args *a, const double *A, double *x, int64_t n, int64_t m,
                          double *lu, lapack_int *ipiv, size_t bt)
{
    if (n == 0)
        return SJ_OK;
    memcpy(lu, A, (size_t)(n * n) * sizeof *lu);
    lapack_int info = LAPACKE_dgetrf_work(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)n, lu,
                                          (lapack_int)n, ipiv);
    if (info < 0)
        return lapack_internal(a, "dgetrf", info);
    if (info > 0) {
        char b[96];
        ev_batch_str(ev_in_shape(a, 0), 2, bt, b, sizeof b);
        return ev_fail(a, SJ_ERR_SINGULAR,
                       "matrix %s is singular (U[%d, %d] = 0 in its LU factorisation)", b,
                       (int)info - 1, (int)info - 1);
    }
    if (m == 0)
        return SJ_OK;
    info = LAPACKE_dgetrs_work(LAPACK_ROW_MAJOR, 'N', (lapack_int)n, (lapack_int)m, lu,
                               (lapack_int)n, ipiv, x, (lapack_int)m);
    return info < 0 ? lapack_internal(a, "dgetrs", info) : SJ_OK;
}

sj_status ev_solve(const ev_args *a)
{
    int64_t n, unused, m;
    matrix_dims(a, 0, &n, &unused);
    matrix_dims(a, 1, &unused, &m);
    if (lapack_fits(a, n, m) != SJ_OK)
        return a->err->status;
    size_t batch = ev_batch(&a->n->shape, 2), nn = (size_t)(n * n), nm = (size_t)(n * m);
    double *lu = ir_malloc(nn * sizeof *lu);
    lapack_int *ipiv = ir_malloc((size_t)n * sizeof *ipiv);
    sj_status st = lu && ipiv ? SJ_OK : ev_fail(a, SJ_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t bt = 0; bt < batch && st == SJ_OK; bt++) {
        double *x = a->out + bt * nm;
        memcpy(x, ev_in(a, 1) + bt * nm, nm * sizeof *x);
        st = lu_solve(a, ev_in(a, 0) + bt * nn, x, n, m, lu, ipiv, bt);
    }
    ir_free(lu);
    ir_free(ipiv);
    return st;
}
