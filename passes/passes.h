/* The graph passes the runtime calls.  Every pass reads a specialised graph
 * (concrete shapes) and builds a new one by copying; the input graph is never
 * changed.  Derivative passes are generic walkers over the rule tables of
 * passes/ad.h (see docs/autodiff.md). */
#ifndef PASS_PASSES_H
#define PASS_PASSES_H

#include "ir/graph.h"

/* Forward mode.  Adds one input per wrt[j] (named names[j], of that input's
 * shape) holding its tangent; outputs are g's outputs followed by their
 * tangents (only the tangents if tangents_only).  wrt holds distinct input
 * positions. */
sj_status pass_jvp(const ir_graph *g, int nwrt, const int *wrt, const char *const *names,
                   int tangents_only, ir_graph **out, ir_err *err);

/* Reverse mode.  Adds one input per output k (named names[k], of output k's
 * shape) holding its cotangent; the outputs are the cotangents of the inputs
 * wrt[0..nwrt-1]. */
sj_status pass_vjp(const ir_graph *g, int nwrt, const int *wrt, const char *const *names,
                   ir_graph **out, ir_err *err);

/* Gradient of the one-element output `output`: outputs its value first if
 * with_value, then d output / d input wrt[j] for each j (input shapes). */
sj_status pass_grad(const ir_graph *g, int output, int nwrt, const int *wrt, int with_value,
                    ir_graph **out, ir_err *err);

/* Jacobians d output_k / d input_w of shape shape(output_k) ++ shape(input_w),
 * for output k = `output` (or every output, in order, when output < 0) and
 * each w in wrt: the outputs are ordered k-major.  jacfwd runs one forward
 * sweep per input element, jacrev one reverse sweep per output element. */
sj_status pass_jacfwd(const ir_graph *g, int output, int nwrt, const int *wrt, ir_graph **out,
                      ir_err *err);
sj_status pass_jacrev(const ir_graph *g, int output, int nwrt, const int *wrt, ir_graph **out,
                      ir_err *err);

/* Batching (vmap; passes/batch.c).  g is the unbatched concrete graph;
 * in_axes[p] is the batch axis of input p in its batched shape outer[p], or -1
 * for an input that is not batched (outer[p] is then g's shape of it); every
 * batched input has nb items.  The result has the same inputs (names,
 * positions) with the outer shapes and the same outputs, output k with a
 * batch axis of size nb at out_axes[k], or without one if out_axes[k] is -1
 * (an error if it depends on a batched input). */
sj_status pass_vmap(const ir_graph *g, const int *in_axes, const int *out_axes,
                    const ir_shape *outer, int64_t nb, ir_graph **out, ir_err *err);

/* Clean-up passes (XLA style: status plus whether the graph changed; *g is
 * replaced by the new graph when it changed). */
/* Dead code: keeps the nodes outputs depend on, and every input. */
sj_status pass_dce(ir_graph **g, int *changed, ir_err *err);
/* Common subexpressions: merges nodes with equal op, inputs, attributes,
 * shape and constant data. */
sj_status pass_cse(ir_graph **g, int *changed, ir_err *err);

/* Fit problems (passes/rules_fit.c): cleans the specialised objective and
 * curvature of every problem of g and derives the gradient graph (and the
 * Hessian, when there is no curvature), recursively for fits inside them.
 * The runtime calls it after specialisation; the fit rules derive what they
 * need themselves. */
sj_status pass_fill_problems(ir_graph *g, int rewrite, ir_err *err);

/* The clean-up pipeline (passes/pipeline.c): DCE and CSE until neither
 * changes the graph.  The graph's rewrite log is kept. */
sj_status pass_cleanup(ir_graph **g, ir_err *err);

/* Structure rewrites (passes/structure_*.c, docs/structure.md), same
 * convention: each replaces *g only when one of its rewrites fired, and
 * notes what fired in the graph's rewrite log.  A graph none applies to is
 * left as it is (the same object, unchanged). */
/* logdet / solve / Cholesky uses of V = Σ Z_t G_t Z_tᵀ + D through the
 * Woodbury identity and the matrix determinant lemma. */
sj_status pass_structure_woodbury(ir_graph **g, int *changed, ir_err *err);
/* logdet / cholesky / diag / solves of A ⊗ B through A and B. */
sj_status pass_structure_kron(ir_graph **g, int *changed, ir_err *err);
/* logdet / cholesky / diag / solves of block-diagonal matrices per block. */
sj_status pass_structure_blockdiag(ir_graph **g, int *changed, ir_err *err);
/* matmuls with one-hot designs as gather / segment_sum, Zᵀ Z as counts. */
sj_status pass_structure_onehot(ir_graph **g, int *changed, ir_err *err);
/* A M with A a sum of one-hot Gram matrices and identities (structure_gram.c). */
sj_status pass_structure_gram(ir_graph **g, int *changed, ir_err *err);
/* Batched Gram matrices (diag(s_b) X)ᵀ (diag(s_b) X) of a shared X as one GEMM
 * with X's row-wise Kronecker product (structure_rowgram.c). */
sj_status pass_structure_rowgram(ir_graph **g, int *changed, ir_err *err);

/* The structure pipeline (passes/pipeline.c): the rewrites above in order,
 * each followed by the verifier in debug builds, then DCE and CSE, repeated
 * until nothing fires.  *changed is 0 (and *g untouched) when no rewrite
 * applies. */
sj_status pass_structure(ir_graph **g, int *changed, ir_err *err);

#endif
