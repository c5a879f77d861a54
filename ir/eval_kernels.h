/* Internal to the reference evaluator (ir/eval*.c): one kernel per row of
 * ir/ops.def, named ev_<name>, plus the helpers the kernel files share.
 *
 * A kernel reads its inputs' values (row-major, shapes from the graph) and
 * writes every element of a->out, which has room for numel(node shape)
 * elements and is owned by the driver.  It never touches the caller's
 * arrays, so a failing kernel leaves the outputs unchanged. */
#ifndef IR_EVAL_KERNELS_H
#define IR_EVAL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "ir/graph.h"
#include "ir/newton.h" /* ir_fit_native_run, which generated code calls */

typedef struct ev_args {
    const ir_graph *g;
    ir_val v;                 /* the node being computed */
    const ir_node *n;
    const double *const *val; /* value of every node computed so far */
    double *out;
    ir_err *err;
} ev_args;

typedef sj_status ev_kernel(const ev_args *a);

#define OP(id, name, kind, arity, shape) sj_status ev_##name(const ev_args *a);
#include "ir/ops.def"

static inline const double *ev_in(const ev_args *a, int i) { return a->val[a->n->input[i]]; }
static inline const ir_shape *ev_in_shape(const ev_args *a, int i)
{
    return ir_shape_of(a->g, a->n->input[i]);
}
static inline size_t ev_numel(const ev_args *a) { return ir_shape_numel(&a->n->shape); }

/* Product of the first rank - keep dimensions (the batch of a matrix op). */
size_t ev_batch(const ir_shape *s, int keep);

/* Records "<op> (value %<v>): <message>" with status st; returns st. */
sj_status ev_fail(const ev_args *a, sj_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the multi-index of batch item b of shape s (all but the last `keep`
 * axes) as "[batch 1, 2]"; "[batch 0]" when there are no batch axes. */
const char *ev_batch_str(const ir_shape *s, int keep, size_t b, char *buf, size_t size);

/* The special functions behind digamma and polygamma (conventions in
 * ir/eval_elementwise.c); generated code may call them to match the oracle. */
#define IR_POLYGAMMA_MAX_ORDER 64
double ir_digamma(double x);
double ir_polygamma(int order, double x);
/* The standard normal CDF Φ and its inverse (same file). */
double ir_ndtr(double x);
double ir_ndtri(double p);
/* Symmetric eigendecomposition of the n x n row-major a (lower triangle
 * read; ir/eval_eigh.c): eigenvalues ascending into w (if not NULL),
 * eigenvectors as the columns of vecs (if not NULL), each with its
 * largest-magnitude component positive.  work holds IR_EIGH_WORK(n) bytes.
 * A NaN in the lower triangle, or a decomposition that does not converge,
 * gives NaN outputs.  Returns LAPACK's info (0, or < 0 for a bad argument).
 * Generated code calls it, so both paths agree bit for bit. */
#define IR_EIGH_WORK(n) ((size_t)(3 * (n) * (n) + 7 * (n) + 1) * sizeof(double) + \
                         (size_t)(3 + 5 * (n)) * sizeof(int64_t))
int32_t ir_eigh_kernel(const double *a, int64_t n, double *w, double *vecs, void *work);

#endif
