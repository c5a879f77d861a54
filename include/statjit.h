/*
 * statjit: compile statistical models to native code.
 *
 * The one public header.  Everything is reached through opaque handles:
 *
 *   sj_ctx       a context: owns the last error message; every other handle
 *                belongs to exactly one context.
 *   sj_graph     a builder: an append-only tensor graph with symbolic shapes.
 *   sj_fn        a function: a snapshot of a graph's inputs and chosen outputs.
 *   sj_compiled  a function specialised to concrete input shapes.
 *
 * Values are integer ids (sj_value) returned by the builder calls.  A builder
 * call that fails records the first error on its graph and returns
 * SJ_INVALID; later calls given SJ_INVALID return SJ_INVALID quietly, so a
 * whole model can be built and checked once with sj_graph_status().
 *
 * Every other call returns an sj_status; on failure the context keeps a
 * message naming the cause (sj_ctx_last_error).  Nothing aborts the process.
 *
 * Arrays are row-major float64.  Linear algebra acts on the last two axes;
 * leading axes are batch axes and must match exactly (use sj_broadcast_to).
 *
 * Dimensions are given as strings: a name ("n") that means the same size
 * wherever it appears, a decimal number ("3"), or "?" (or NULL) for a size
 * known only when the function is specialised.
 */
#ifndef STATJIT_H
#define STATJIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SJ_VERSION_MAJOR 0
#define SJ_VERSION_MINOR 1
#define SJ_VERSION_PATCH 0

/* Most axes a tensor can have. */
#define SJ_MAX_RANK 8

typedef enum sj_status {
    SJ_OK = 0,
    SJ_ERR_INVALID_ARGUMENT, /* NULL, out-of-range id, wrong handle, bad flag */
    SJ_ERR_SHAPE,            /* shapes that do not fit an op */
    SJ_ERR_UNKNOWN_NAME,     /* an input or dimension name that is not there */
    SJ_ERR_OUT_OF_MEMORY,
    SJ_ERR_NOT_POSITIVE_DEFINITE, /* cholesky / logdet / cholesky-based solve */
    SJ_ERR_SINGULAR,         /* general solve of a singular matrix */
    SJ_ERR_DOMAIN,           /* e.g. a gather index that is not a valid row */
    SJ_ERR_UNSUPPORTED,
    SJ_ERR_INTERNAL
} sj_status;

typedef struct sj_ctx sj_ctx;
typedef struct sj_graph sj_graph;
typedef struct sj_fn sj_fn;
typedef struct sj_compiled sj_compiled;

/* A value in a graph.  Ids of one graph are meaningless in another. */
typedef int64_t sj_value;
#define SJ_INVALID ((sj_value)-1)

/* Comparisons for sj_compare; the result is 1.0 where true, else 0.0. */
typedef enum sj_cmp { SJ_LT, SJ_LE, SJ_GT, SJ_GE, SJ_EQ, SJ_NE } sj_cmp;

/* Flags for sj_triangular_solve. */
enum {
    SJ_SOLVE_RIGHT = 1,      /* solve X op(A) = B instead of op(A) X = B */
    SJ_SOLVE_UPPER = 2,      /* A is upper triangular instead of lower */
    SJ_SOLVE_TRANSPOSE = 4   /* op(A) = Aᵀ instead of A */
};

/* ---- context ------------------------------------------------------------ */

/* Creates a context.  Free it with sj_ctx_free after every handle made from
 * it has been freed. */
sj_status sj_ctx_create(sj_ctx **out);
void sj_ctx_free(sj_ctx *ctx);
/* Message of the last failed call made with this context ("" if none).  The
 * string is owned by the context and valid until its next failing call. */
const char *sj_ctx_last_error(const sj_ctx *ctx);
/* Name of a status code, e.g. "SJ_ERR_SHAPE". */
const char *sj_status_name(sj_status status);

/* ---- graph builder ------------------------------------------------------- */

sj_status sj_graph_create(sj_ctx *ctx, sj_graph **out);
void sj_graph_free(sj_graph *g);
/* SJ_OK, or the first error any builder call on g met (message in the ctx). */
sj_status sj_graph_status(const sj_graph *g);
/* Number of nodes in g (for tests and debugging). */
size_t sj_graph_size(const sj_graph *g);
/* Prints the graph in text form; the caller frees the string with
 * sj_string_free.  NULL on failure (message in the ctx). */
char *sj_graph_print(sj_graph *g);
void sj_string_free(char *s);

/* Declares an input.  dims[i] is a dimension name, a decimal size or "?". */
sj_value sj_input(sj_graph *g, const char *name, int rank,
                  const char *const *dims);
/* A constant of a concrete shape; data is copied. */
sj_value sj_constant(sj_graph *g, int rank, const int64_t *shape,
                     const double *data);
sj_value sj_scalar(sj_graph *g, double value);
/* Identity matrix of size dim × dim (dim as in sj_input). */
sj_value sj_eye(sj_graph *g, const char *dim);

/* Elementwise unary. */
sj_value sj_neg(sj_graph *g, sj_value x);
sj_value sj_exp(sj_graph *g, sj_value x);
sj_value sj_log(sj_graph *g, sj_value x);
sj_value sj_log1p(sj_graph *g, sj_value x);
sj_value sj_expm1(sj_graph *g, sj_value x);
sj_value sj_sqrt(sj_graph *g, sj_value x);
sj_value sj_square(sj_graph *g, sj_value x);
sj_value sj_recip(sj_graph *g, sj_value x);
sj_value sj_tanh(sj_graph *g, sj_value x);
sj_value sj_logistic(sj_graph *g, sj_value x);
sj_value sj_lgamma(sj_graph *g, sj_value x);
sj_value sj_digamma(sj_graph *g, sj_value x);
sj_value sj_abs(sj_graph *g, sj_value x);
sj_value sj_sign(sj_graph *g, sj_value x);
/* Φ(x), the standard normal CDF, and Φ⁻¹(p), its inverse (the probit):
 * accurate to a few ulp in both tails (docs/glm.md). */
sj_value sj_ndtr(sj_graph *g, sj_value x);
sj_value sj_ndtri(sj_graph *g, sj_value p);
sj_value sj_atan(sj_graph *g, sj_value x);
sj_value sj_tan(sj_graph *g, sj_value x);
/* polygamma(order, x): the (order)-th derivative of digamma. */
sj_value sj_polygamma(sj_graph *g, int order, sj_value x);

/* Elementwise binary, with NumPy broadcasting (inserted as explicit
 * broadcasts in the graph). */
sj_value sj_add(sj_graph *g, sj_value a, sj_value b);
sj_value sj_sub(sj_graph *g, sj_value a, sj_value b);
sj_value sj_mul(sj_graph *g, sj_value a, sj_value b);
sj_value sj_div(sj_graph *g, sj_value a, sj_value b);
sj_value sj_pow(sj_graph *g, sj_value a, sj_value b);
sj_value sj_min(sj_graph *g, sj_value a, sj_value b);
sj_value sj_max(sj_graph *g, sj_value a, sj_value b);
sj_value sj_compare(sj_graph *g, sj_cmp cmp, sj_value a, sj_value b);
/* where(pred != 0, a, b), broadcasting all three. */
sj_value sj_select(sj_graph *g, sj_value pred, sj_value a, sj_value b);

/* Shapes and data movement. */
sj_value sj_broadcast_to(sj_graph *g, sj_value x, int rank,
                         const char *const *dims);
sj_value sj_reshape(sj_graph *g, sj_value x, int rank,
                    const char *const *dims);
sj_value sj_transpose(sj_graph *g, sj_value x, const int *perm);
/* Swaps the last two axes. */
sj_value sj_mT(sj_graph *g, sj_value x);
/* x[start:stop] along axis; negative start/stop count from the end and
 * stop == INT64_MAX means the end. */
sj_value sj_slice(sj_graph *g, sj_value x, int axis, int64_t start,
                  int64_t stop);
sj_value sj_concat(sj_graph *g, int n, const sj_value *xs, int axis);
/* Rows of x selected by idx (integer codes 0..rows-1, stored as doubles):
 * out[i, ...] = x[idx[i], ...]. */
sj_value sj_gather(sj_graph *g, sj_value x, sj_value idx);
/* out[k, ...] = sum of x[i, ...] over i with idx[i] == k, k < nseg. */
sj_value sj_segment_sum(sj_graph *g, sj_value x, sj_value idx,
                        const char *nseg);
/* out[i, k] = (idx[i] == k), k < nclass: a one-hot design matrix. */
sj_value sj_one_hot(sj_graph *g, sj_value idx, const char *nclass);

/* Reductions over the listed axes (removed from the shape). */
sj_value sj_sum(sj_graph *g, sj_value x, int naxes, const int *axes);
sj_value sj_reduce_max(sj_graph *g, sj_value x, int naxes, const int *axes);
sj_value sj_mean(sj_graph *g, sj_value x, int naxes, const int *axes);
/* Sum over every axis: a scalar. */
sj_value sj_sum_all(sj_graph *g, sj_value x);

/* Linear algebra. */
/* a @ b.  A vector operand is treated as NumPy does (a column on the right,
 * a row on the left, the unit axis removed from the result). */
sj_value sj_matmul(sj_graph *g, sj_value a, sj_value b);
sj_value sj_outer(sj_graph *g, sj_value a, sj_value b);
sj_value sj_kron(sj_graph *g, sj_value a, sj_value b);
sj_value sj_diag(sj_graph *g, sj_value x);
sj_value sj_diag_embed(sj_graph *g, sj_value v);
/* Lower (tril) or upper (triu) part; k shifts the diagonal as in NumPy. */
sj_value sj_tril(sj_graph *g, sj_value x, int k);
sj_value sj_triu(sj_graph *g, sj_value x, int k);
/* Lower Cholesky factor L with A = L Lᵀ. */
sj_value sj_cholesky(sj_graph *g, sj_value a);
/* Solves op(A) X = B, or X op(A) = B with SJ_SOLVE_RIGHT. */
sj_value sj_triangular_solve(sj_graph *g, sj_value a, sj_value b,
                             unsigned flags);
/* A⁻¹ B given the lower Cholesky factor L of A. */
sj_value sj_cholesky_solve(sj_graph *g, sj_value l, sj_value b);
/* log det A of a symmetric positive definite A (through Cholesky). */
sj_value sj_logdet(sj_graph *g, sj_value a);
/* A⁻¹ B for a general square A (through LU). */
sj_value sj_solve(sj_graph *g, sj_value a, sj_value b);
/* Symmetric eigendecomposition A = V diag(w) Vᵀ of a symmetric A (lower
 * triangle read; LAPACK dsyevd).  eigvalsh: w [..., n], ascending;
 * eigvecsh: V [..., n, n], eigenvector j in column j with its
 * largest-magnitude component positive.  Derivatives assume distinct
 * eigenvalues (docs/ir.md); a NaN in A gives NaN results. */
sj_value sj_eigvalsh(sj_graph *g, sj_value a);
sj_value sj_eigvecsh(sj_graph *g, sj_value a);

/* ---- functions ------------------------------------------------------------ */

/* A function of all of g's inputs (in declaration order) returning the given
 * values.  The graph is copied: g may be changed or freed afterwards. */
sj_status sj_fn_create(sj_graph *g, int noutput, const sj_value *outputs,
                       sj_fn **out);
void sj_fn_free(sj_fn *fn);
int sj_fn_ninput(const sj_fn *fn);
int sj_fn_noutput(const sj_fn *fn);
/* Position of the input called name. */
sj_status sj_fn_input_index(const sj_fn *fn, const char *name, int *index);
/* Declared rank of input i. */
sj_status sj_fn_input_rank(const sj_fn *fn, int i, int *rank);

/* Specialises fn to concrete input shapes: ranks[i] and dims[i][0..rank-1]
 * per input.  Checks every shape in the graph.  The result holds no
 * reference to fn. */
sj_status sj_fn_specialize(sj_fn *fn, int ninput, const int *ranks,
                           const int64_t *const *dims, sj_compiled **out);
void sj_compiled_free(sj_compiled *c);
int sj_compiled_noutput(const sj_compiled *c);
/* Shape of output k: its rank and, if dims is not NULL, its sizes (room for
 * SJ_MAX_RANK). */
sj_status sj_compiled_output_shape(const sj_compiled *c, int k, int *rank,
                                   int64_t *dims);
/* Number of elements of output k. */
sj_status sj_compiled_output_size(const sj_compiled *c, int k, size_t *size);
/* Prints the specialised graph; free with sj_string_free. */
char *sj_compiled_print(const sj_compiled *c);
/* Runs the reference evaluator: inputs[i] holds input i, outputs[k] has room
 * for output k.  On failure the outputs are left unchanged. */
sj_status sj_compiled_eval(sj_compiled *c, const double *const *inputs,
                           double *const *outputs);

/* ---- compiling and calling ------------------------------------------------- */

/*
 * Native code.  sj_fn_compile specialises fn to concrete input shapes and
 * compiles it with LLVM; the result is kept in the context's compile cache,
 * keyed by (function, input shapes, options).  The function part of the key
 * is a fingerprint of fn's graph, checked against a full copy of it, so two
 * sj_fn made from identical graphs share their compiled code and a hash
 * collision can never return another function's code.  A cache hit costs a
 * hash of the shapes, a lookup under a mutex and a reference increment.
 *
 * Ownership: compiled functions are reference counted.  sj_fn_compile
 * returns a new reference (to the object the cache holds, on a hit: two
 * compiles of the same key return the same pointer); the caller owns it and
 * releases it with sj_compiled_free.  The cache keeps its own reference until
 * sj_ctx_free.  Release every reference, and free every sj_fn, before
 * sj_ctx_free.  A compiled function does not refer to the sj_fn it came from.
 *
 * Threads: sj_fn_compile, sj_fn_call and sj_compiled_call may be called from
 * several threads at once, on the same or different functions of one
 * context.  Two threads compiling the same key make one entry: the second
 * waits for the first.  Each concurrent call gets its own scratch memory.
 *
 * Memory: the space for intermediates is planned once per specialisation.
 * Scratch buffers are reused through a per-function free list, so a
 * steady-state call allocates nothing (a buffer is allocated only when every
 * existing one is in use by another thread).
 *
 * Errors: a kernel failure (a matrix that is not positive definite, a
 * singular solve, a gather index out of range) returns its status with a
 * message naming the op; the call's outputs are then left unchanged.
 *
 * Options: code is optimised at LLVM's O2, or O3 when the environment
 * variable SJ_OPT_LEVEL=3 is set when the context is created; the level is
 * part of the cache key.
 *
 * Tiling: a function whose last transform is sj_vmap, compiled for a large
 * batch (every batched input at axis 0, every output at out axis 0 or -1),
 * is compiled for a chunk of the batch sized to stay in cache, and a call
 * runs the chunks (on the batch pool's threads); results, errors and the
 * outputs-unchanged-on-failure rule are those of the untiled function.  The
 * chunk's code is a cache entry of its own (counted in "compiles"; the
 * tiled entry is not), sj_compiled_llvm_ir returns it, and sj_compiled_print
 * and sj_compiled_eval use the whole batch's graph.  SJ_NO_TILE=1 in the
 * environment when the context is created turns tiling off (docs/vmap.md,
 * "Batch tiling").
 *
 * Introspection: set SJ_DUMP=graph, SJ_DUMP=llvm or SJ_DUMP=graph,llvm (or
 * all) to print the specialised graph and/or the generated LLVM IR to stderr
 * on every compile (cache misses only); sj_compiled_print and
 * sj_compiled_llvm_ir return them as strings.
 */

/* Specialises fn to the input shapes (as in sj_fn_specialize) and compiles
 * it, through the cache.  *out is a new reference: release it with
 * sj_compiled_free.  Shape errors are reported as by sj_fn_specialize. */
sj_status sj_fn_compile(sj_fn *fn, int ninput, const int *ranks,
                        const int64_t *const *dims, sj_compiled **out);

/* Runs the native code of c: inputs[i] holds input i, outputs[k] has room
 * for output k (sizes from sj_compiled_output_size).  Allocates nothing in
 * steady state.  On failure the outputs are left unchanged.  c must come
 * from sj_fn_compile (sj_fn_specialize results have no native code and give
 * SJ_ERR_INVALID_ARGUMENT; use sj_compiled_eval for them). */
sj_status sj_compiled_call(sj_compiled *c, const double *const *inputs,
                           double *const *outputs);

/* sj_fn_compile (a cache hit after the first call with these shapes) then
 * sj_compiled_call, releasing the reference afterwards. */
sj_status sj_fn_call(sj_fn *fn, int ninput, const int *ranks,
                     const int64_t *const *dims, const double *const *inputs,
                     double *const *outputs);

/* The LLVM IR generated for c, as text; free with sj_string_free.  NULL (and
 * a message in the ctx) for a function without native code. */
char *sj_compiled_llvm_ir(const sj_compiled *c);

/* Reads one of the context's counters:
 *   "compiles"         native compiles done (cache misses that succeeded),
 *   "cache_hits"       sj_fn_compile / sj_fn_call lookups served from cache,
 *   "compile_seconds"  wall time spent in those compiles (specialisation and
 *                      code generation), in seconds,
 *   "cache_entries"    compiled functions the cache holds,
 *   "tiled_calls"      successful calls of tiled vmapped functions (below).
 * Any other name gives SJ_ERR_UNKNOWN_NAME. */
sj_status sj_ctx_counter(const sj_ctx *ctx, const char *name, double *value);

/* ---- transforms ------------------------------------------------------------- */

/* Each transform takes a function and returns a new one (free it with
 * sj_fn_free; fn may be freed first) that can be specialised, compiled,
 * called and transformed again, to any depth: sj_grad of an sj_grad is the
 * Hessian's rows, sj_jvp of an sj_grad a Hessian-vector product, and so on.
 * Derivatives are taken when the function is specialised, on the concrete
 * graph, and the result is cleaned of dead and duplicated nodes.
 *
 * Inputs to differentiate are given as positions (wrt[0..nwrt-1], distinct;
 * nwrt = 0 with wrt NULL means every input in order); sj_fn_input_indices
 * turns names into positions.  Errors: an unknown position or a repeated one
 * is SJ_ERR_INVALID_ARGUMENT, an output that is not a scalar where one is
 * needed (grad, value_and_grad, hvp, hessian) is SJ_ERR_SHAPE naming its
 * shape, a Jacobian with more than SJ_MAX_RANK axes is SJ_ERR_SHAPE.
 *
 * New inputs get names: "tangent:<input name>" for tangents and
 * "cotangent:<k>" for the cotangent of output k; if the name is taken a
 * suffix ".2", ".3", ... makes it unique.  Their declared shapes are those of
 * the input (output) they belong to, and at specialisation they must have
 * exactly its concrete shape.
 *
 * Conventions at non-differentiable points and for symmetric matrices are in
 * docs/autodiff.md (abs'(0) = 0; ties of max/min share the derivative;
 * cholesky and logdet take symmetric perturbations). */

/* Positions of the inputs called names[0..n-1] (SJ_ERR_UNKNOWN_NAME for a
 * name that is not an input). */
sj_status sj_fn_input_indices(const sj_fn *fn, int n, const char *const *names, int *indices);

/* Forward mode.  Inputs: fn's inputs, then one tangent per wrt input.
 * Outputs: fn's outputs, then each output's tangent (same shapes). */
sj_status sj_jvp(sj_fn *fn, int nwrt, const int *wrt, sj_fn **out);
/* Reverse mode.  Inputs: fn's inputs, then one cotangent per output of fn.
 * Outputs: the cotangent of each wrt input (its shape). */
sj_status sj_vjp(sj_fn *fn, int nwrt, const int *wrt, sj_fn **out);
/* Gradient of the scalar output `output`.  Inputs: fn's.  Outputs: the
 * derivative with respect to each wrt input (its shape). */
sj_status sj_grad(sj_fn *fn, int output, int nwrt, const int *wrt, sj_fn **out);
/* As sj_grad, with the value of the output first: outputs value, gradients. */
sj_status sj_value_and_grad(sj_fn *fn, int output, int nwrt, const int *wrt, sj_fn **out);
/* Hessian-vector product of the scalar output `output` (forward over
 * reverse).  Inputs: fn's, then one vector per wrt input (named
 * "tangent:<name>", its shape).  Outputs: per wrt input u, Σ_w ∂²f/∂u∂w · v_w
 * (u's shape). */
sj_status sj_hvp(sj_fn *fn, int output, int nwrt, const int *wrt, sj_fn **out);
/* Jacobians of output `output`, by forward (one sweep per input element) or
 * reverse mode (one sweep per output element).  Inputs: fn's.  Outputs: per
 * wrt input w, d output / d w of shape shape(output) ++ shape(w) (JAX's
 * layout). */
sj_status sj_jacfwd(sj_fn *fn, int output, int nwrt, const int *wrt, sj_fn **out);
sj_status sj_jacrev(sj_fn *fn, int output, int nwrt, const int *wrt, sj_fn **out);
/* Hessian of the scalar output `output` (jacfwd of the gradient).  Inputs:
 * fn's.  Outputs: for each pair (u, w) of wrt inputs, u-major, the block
 * ∂²f/∂u∂w of shape shape(u) ++ shape(w). */
sj_status sj_hessian(sj_fn *fn, int output, int nwrt, const int *wrt, sj_fn **out);

/* ---- covariance trees and mixed-model losses -------------------------------- */

/*
 * A covariance tree (in the style of torch_openreml) is a tree of nodes, each
 * producing a matrix from its parameters: leaves (identity, σ²I, diagonal,
 * equicorrelation, compound symmetry, AR(1), unstructured, lower triangular,
 * a one-hot design, a user matrix) and operators (sum, block diagonal,
 * propagation Z G Zᵀ, Kronecker, Hadamard, Gram).  sj_cov_build emits the
 * root's matrix V(θ) into the graph as ordinary ops, so V and any loss built
 * on it can be differentiated, batched and compiled like any other value.
 *
 * Nodes belong to the graph they were made with and live until
 * sj_graph_free (there is no per-node free).  Constructors return NULL on
 * failure; the error is recorded on the graph (sticky, like every builder
 * call: a constructor given a NULL child after an earlier failure returns
 * NULL quietly) and its message, naming the node, is in the context.  A node
 * may be the child of several operators: its parameters are then shared
 * (counted once).
 *
 * Parameters.  Every leaf parameter has a local name ("sigma2", "rho",
 * "sigma2_0", "L_1_0"), a transform from the raw value θ_i to the value used
 * in the matrix (its natural scale: a variance, a correlation, an entry of a
 * Cholesky factor), an initial value and a free/fixed flag.  The full name
 * is the path of node names from the root, '/'-separated, skipping unnamed
 * (NULL or "") operators: "model/Subject/L_1_0".  Free parameters, in
 * depth-first order of first appearance (children in order), make up the θ
 * vector of sj_cov_build; fixed parameters are baked into the graph as
 * constants.  Full names of the free parameters must be distinct.
 *
 * Initial and fixed values are given in the NATURAL scale (σ² = 1, ρ = 0);
 * sj_cov_init returns the raw θ that maps to them.  Defaults: σ² = 1 through
 * exp(2θ); ρ = 0 through a sigmoid onto (−1/(n−1), 1) (equicorrelation,
 * compound symmetry) or (−1, 1) (AR1); unstructured L = I with exp on the
 * diagonal and identity off it; lower triangular entries 1 on the diagonal,
 * 0 below, identity transform.
 *
 * Sealing.  The first sj_cov_nparam, sj_cov_param_*, sj_cov_init or
 * sj_cov_build on a root seals every node of its tree: the θ layout never
 * changes afterwards, and the setters (sj_cov_set_init, sj_cov_set_transform,
 * sj_cov_fix, sj_cov_unfix) on a sealed node fail.  A sealed node may still
 * become the child of a new operator.  See docs/covariance.md.
 */
typedef struct sj_cov sj_cov;

/* Transforms from raw θ to the natural scale, applied elementwise. */
typedef enum sj_transform_kind {
    SJ_TRANSFORM_IDENTITY,      /* θ */
    SJ_TRANSFORM_EXP,           /* exp(θ) */
    SJ_TRANSFORM_EXP2,          /* exp(2θ): a variance from a log standard deviation */
    SJ_TRANSFORM_SIGMOID,       /* 1 / (1 + exp(−θ)) */
    SJ_TRANSFORM_SIGMOID_RANGE, /* a + (b − a) sigmoid(θ), onto (a, b) */
    SJ_TRANSFORM_SCALE_SHIFT,   /* a θ + b */
    SJ_TRANSFORM_POWER          /* θ^a */
} sj_transform_kind;

#define SJ_TRANSFORM_MAX_STEPS 4

/* A chain of up to SJ_TRANSFORM_MAX_STEPS steps, step[0] applied first.  A
 * zeroed sj_transform (nstep 0) is the identity.  nstep < 0 marks a chain
 * that grew too long in sj_transform_then; using it is an error. */
typedef struct sj_transform {
    int nstep;
    struct {
        sj_transform_kind kind;
        double a, b;
    } step[SJ_TRANSFORM_MAX_STEPS];
} sj_transform;

sj_transform sj_transform_identity(void);
sj_transform sj_transform_exp(void);
sj_transform sj_transform_exp2(void);
sj_transform sj_transform_sigmoid(void);
/* Onto (lo, hi); lo < hi. */
sj_transform sj_transform_sigmoid_range(double lo, double hi);
/* scale θ + shift; scale != 0. */
sj_transform sj_transform_scale_shift(double scale, double shift);
/* θ^p; p != 0.  Its inverse needs a positive value. */
sj_transform sj_transform_power(double p);
/* `first` then `next` (next ∘ first). */
sj_transform sj_transform_then(sj_transform first, sj_transform next);
/* The natural value of raw x (NaN for an invalid chain). */
double sj_transform_apply(const sj_transform *t, double x);
/* The raw x with apply(x) = y: SJ_OK, or SJ_ERR_DOMAIN when y is outside the
 * chain's range, SJ_ERR_INVALID_ARGUMENT for an invalid chain. */
sj_status sj_transform_inverse(const sj_transform *t, double y, double *x);

/* Leaves.  dim strings are as in sj_input but must be a name or a size (not
 * "?"); integer sizes must be >= 1 (>= 2 for equicorrelation and compound
 * symmetry). */
/* I (dim × dim); no parameters. */
sj_cov *sj_cov_identity(sj_graph *g, const char *name, const char *dim);
/* σ² I (dim × dim); parameter "sigma2" with the given natural init and
 * transform (pass sj_transform_exp2() for the usual log-sd scale). */
sj_cov *sj_cov_scalar(sj_graph *g, const char *name, const char *dim, double init,
                      sj_transform t);
/* diag(σ²_0, ..., σ²_{dim-1}); parameters "sigma2_<i>", all with this init
 * and transform. */
sj_cov *sj_cov_diagonal(sj_graph *g, const char *name, int64_t dim, double init,
                        sj_transform t);
/* (1 − ρ) I + ρ J; parameter "rho". */
sj_cov *sj_cov_equicorrelation(sj_graph *g, const char *name, int64_t dim);
/* σ² ((1 − ρ) I + ρ J); parameters "sigma2", "rho". */
sj_cov *sj_cov_compound_symmetric(sj_graph *g, const char *name, int64_t dim);
/* σ² ρ^|i−j|; parameters "sigma2", "rho". */
sj_cov *sj_cov_ar1(sj_graph *g, const char *name, int64_t dim);
/* L Lᵀ with L lower triangular (dim × dim), positive definite by
 * construction: parameters "L_<i>_<j>" (i >= j, row by row), exp on the
 * diagonal, identity below it. */
sj_cov *sj_cov_unstructured(sj_graph *g, const char *name, int64_t dim);
/* A lower-triangular rows × cols matrix Λ (cols <= rows), entries "L_<i>_<j>"
 * (i >= j, row by row), identity transforms: with sj_cov_gram(SJ_GRAM_XXT)
 * and a diagonal, a factor-analytic ΛΛᵀ + Ψ. */
sj_cov *sj_cov_lower_triangular(sj_graph *g, const char *name, int64_t rows, int64_t cols);
/* The one-hot design Z (n × nlevels) of integer codes 0..nlevels-1 stored as
 * doubles in a rank-1 value (usually an input, so the data comes at call
 * time).  levels: NULL, or nlevels names (copied) for the columns, in which
 * case nlevels must be a decimal size.  No parameters. */
sj_cov *sj_cov_dummy(sj_graph *g, const char *name, sj_value codes, const char *nlevels,
                     const char *const *levels);
/* The interaction a:b of two dummy nodes with decimal level counts: codes
 * a + na·b (the first factor varies fastest, as R's interaction()), na·nb
 * columns named "<a level>:<b level>" (all combinations, empty ones kept). */
sj_cov *sj_cov_dummy_interaction(sj_graph *g, const char *name, sj_cov *a, sj_cov *b);
/* A user matrix (rank 2, e.g. a kinship matrix given as an input); no
 * parameters.  Scale it with sj_cov_kron(sj_cov_scalar(g, .., "1", ..), K). */
sj_cov *sj_cov_fixed(sj_graph *g, const char *name, sj_value matrix);

/* Operators.  Children must be non-NULL nodes of the same graph. */
sj_cov *sj_cov_sum(sj_graph *g, const char *name, int n, sj_cov *const *children);
sj_cov *sj_cov_block_diagonal(sj_graph *g, const char *name, int n, sj_cov *const *children);
/* Z G Zᵀ (cols(Z) = rows(G)). */
sj_cov *sj_cov_propagate(sj_graph *g, const char *name, sj_cov *z, sj_cov *gcov);
sj_cov *sj_cov_kron(sj_graph *g, const char *name, sj_cov *a, sj_cov *b);
/* Elementwise product (equal shapes). */
sj_cov *sj_cov_hadamard(sj_graph *g, const char *name, sj_cov *a, sj_cov *b);
typedef enum sj_gram { SJ_GRAM_XTX, SJ_GRAM_XXT } sj_gram;
/* XᵀX or XXᵀ. */
sj_cov *sj_cov_gram(sj_graph *g, const char *name, sj_cov *x, sj_gram which);

/* Setters on a leaf's parameter (local name), before the node is sealed.
 * Values are natural-scale and must lie in the transform's range. */
sj_status sj_cov_set_init(sj_cov *node, const char *param, double value);
sj_status sj_cov_set_transform(sj_cov *node, const char *param, sj_transform t);
sj_status sj_cov_fix(sj_cov *node, const char *param, double value);
sj_status sj_cov_unfix(sj_cov *node, const char *param);

/* Number of free parameters of the tree under root (the length of θ), or -1
 * on error (message in the context).  Seals the tree. */
int sj_cov_nparam(sj_cov *root);
/* Full name of free parameter i; owned by the graph.  NULL on error. */
const char *sj_cov_param_name(sj_cov *root, int i);
/* Position of the free parameter with this full name. */
sj_status sj_cov_param_index(sj_cov *root, const char *name, int *index);
/* The transform of free parameter i. */
sj_status sj_cov_param_transform(sj_cov *root, int i, sj_transform *t);
/* Raw initial θ: theta[0..n-1], n = sj_cov_nparam(root). */
sj_status sj_cov_init(sj_cov *root, double *theta, size_t n);
/* Emits V(θ) into the graph: theta is a rank-1 value of length
 * sj_cov_nparam(root) (declare it with a decimal size), ignored (may be
 * SJ_INVALID) when the tree has no free parameter.  Shared subtrees are
 * emitted once per call. */
sj_status sj_cov_build(sj_cov *root, sj_value theta, sj_value *v);
/* Rows and columns of a node as dimension strings ("12", a name, or "?" for a
 * size known only at specialisation); owned by the graph. */
sj_status sj_cov_shape(const sj_cov *node, const char **rows, const char **cols);
/* Column names of a dummy node: j < nlevels; NULL if it has none. */
const char *sj_cov_column_name(const sj_cov *node, int64_t j);

/* Factor coding of strings (R's factor() in the C locale: levels are the
 * distinct strings sorted by strcmp).  codes[i] (n doubles, for an input of
 * sj_cov_dummy) is the level index of strings[i]; *levels (owned by g) lists
 * the *nlevels names. */
sj_status sj_factor_levels(sj_graph *g, const char *const *strings, size_t n,
                           double *codes, int64_t *nlevels, const char *const **levels);
/* Codes of new strings against known levels; a string that is not a level is
 * SJ_ERR_UNKNOWN_NAME naming it and its row. */
sj_status sj_factor_encode(sj_graph *g, int64_t nlevels, const char *const *levels,
                           const char *const *strings, size_t n, double *codes);

/* Gaussian losses of y ~ N(Xβ, V), dense: V (n × n) symmetric positive
 * definite, X (n × p) of full column rank, y (n).  Through the Cholesky
 * factors of V and XᵀV⁻¹X:
 *   REML  −2ℓ_R = log|V| + log|XᵀV⁻¹X| + yᵀPy + (n − p) log 2π,
 *   ML    −2ℓ   = log|V| + yᵀPy + n log 2π   (at the GLS β̂; yᵀPy = r̂ᵀV⁻¹r̂),
 * P = V⁻¹ − V⁻¹X(XᵀV⁻¹X)⁻¹XᵀV⁻¹.  With σ² a parameter of V (not profiled),
 * the REML value equals lme4's "REML criterion" and the ML value lme4's
 * deviance at the same variance components.  Scalars; SJ_INVALID on error. */
sj_value sj_reml_criterion(sj_graph *g, sj_value v, sj_value x, sj_value y);
sj_value sj_ml_deviance(sj_graph *g, sj_value v, sj_value x, sj_value y);

/* Batching (JAX's vmap): a function that maps fn over a batch axis of its
 * inputs, as if fn were called once per batch item and the results stacked.
 * Inputs: fn's, each with the batch axis inserted at in_axes[i] (an axis
 * 0..rank, where rank is the input's rank in fn), or unchanged when in_axes[i]
 * is -1 (shared by every item, not batched).  Outputs: fn's, each with the
 * batch axis at out_axes[k] (0..rank of output k); an output that does not
 * depend on a batched input is broadcast along it.  out_axes[k] = -1 returns
 * output k without a batch axis, which is allowed only if it depends on no
 * batched input (else SJ_ERR_INVALID_ARGUMENT when specialised).  in_axes
 * NULL batches every input at axis 0, out_axes NULL puts every batch axis
 * first.  batch_dim names the batch dimension in the signature (as in
 * sj_input: a name, a size, or "?" / NULL for an anonymous one); a size
 * there must then be the batch size.
 *
 * The result composes with every transform in both orders and nests
 * (vmap of vmap).  Batching is done at specialisation, on the concrete graph:
 * work that depends on no batched input is done once, and a matmul or solve
 * whose other operand is an unbatched matrix becomes one larger GEMM or one
 * solve with more right-hand sides.
 *
 * Errors: an axis out of range, or no batched input, is
 * SJ_ERR_INVALID_ARGUMENT; an input or output that would have more than
 * SJ_MAX_RANK axes is SJ_ERR_SHAPE.  When specialised, batched inputs of
 * different batch sizes are SJ_ERR_SHAPE naming both inputs and their sizes. */
sj_status sj_vmap(sj_fn *fn, const int *in_axes, const int *out_axes, const char *batch_dim,
                  sj_fn **out);

/* ---- fits ---------------------------------------------------------------- */

/*
 * The argmin of an objective, as one op of the graph (docs/fit.md):
 *
 *   theta_hat = argmin over theta of f(theta, data_1, ..., data_m),
 *
 * found by damped Newton from theta0.  The step is C⁻¹∇f with C the exact
 * Hessian of f (from the differentiation passes) or, if given, a curvature
 * function (Fisher information for IRLS, average information for REML); a
 * step whose objective is larger, not finite, or fails to evaluate (a matrix
 * that is not positive definite, a value outside a domain) is halved, up to
 * 30 times, as R's glm does.  A curvature that is not positive definite is
 * made so by adding a multiple of the identity (Levenberg).  The fit stops
 * when the convergence rule holds, after max_iter steps, or when no halving
 * decreases the objective; theta_hat is then the best point found (never a
 * NaN), with converged = 0.
 *
 * Fits are differentiable with respect to the data (jvp, vjp, grad, hessian,
 * to any order) by the implicit function theorem at theta_hat, with the
 * exact Hessian, and batchable (sj_vmap runs one independent fit per item,
 * each with its own iteration count and flag).  theta0, the iteration count
 * and the flag have derivative zero.  Native code runs the whole Newton loop
 * inside the compiled function.
 */
typedef enum sj_fit_rule {
    SJ_FIT_REL_OBJECTIVE = 0, /* |f - f_prev| / (|f| + 0.1) < tol after a step (R's glm) */
    SJ_FIT_GRAD_NORM = 1      /* max_i |∂f/∂theta_i| < tol (checked before each step) */
} sj_fit_rule;

/* Adds a fit to g.  objective: a function whose inputs are theta (rank 1)
 * then the m = ndata data values, in order, with their ranks (and sizes,
 * where both are sizes), and whose output 0 is a scalar (rank 0); its other
 * outputs are ignored.  curvature: NULL, or a function of the same inputs
 * whose output 0 is a [k, k] matrix, symmetric positive definite where the
 * fit goes.  The functions' graphs are copied (they may be freed after this
 * call); a function with pending transforms (grad, vmap, ...) must have
 * concrete declared input shapes.  theta0: a rank-1 value of g; data[j]:
 * values of g.  max_iter >= 0 Newton steps at most; rule and tol > 0 the
 * convergence rule.  Outputs (any may be NULL): theta_hat [k], iterations
 * (a scalar: Newton steps taken) and converged (a scalar, 1 or 0).
 *
 * Errors (sticky on g, message in the context): a handle or value of another
 * graph, a NULL required argument, max_iter < 0, tol not > 0 or an unknown
 * rule is SJ_ERR_INVALID_ARGUMENT; mismatched input counts, ranks or sizes,
 * or an output that is not a scalar ([k, k] for the curvature) is
 * SJ_ERR_SHAPE naming the input; a transformed function with symbolic input
 * shapes is SJ_ERR_UNSUPPORTED.  When the function is called: an objective
 * that fails or is not finite at theta0 returns the objective's status (a
 * not-finite value: SJ_ERR_DOMAIN). */
sj_status sj_fit_argmin(sj_graph *g, sj_fn *objective, sj_fn *curvature, sj_value theta0,
                        int ndata, const sj_value *data, int max_iter, sj_fit_rule rule,
                        double tol, sj_value *theta_hat, sj_value *iterations,
                        sj_value *converged);
/* sj_fit_argmin that also outputs `previous` (may be NULL): the iterate
 * before the last accepted Newton step, theta0 when no step was taken; R's
 * glm reports its working weights and (XᵀWX)⁻¹ there.  Like the iteration
 * count it is a by-product of the solver, with derivative zero.  theta0 must
 * have a concrete size (else SJ_ERR_UNSUPPORTED). */
sj_status sj_fit_argmin_previous(sj_graph *g, sj_fn *objective, sj_fn *curvature,
                                 sj_value theta0, int ndata, const sj_value *data, int max_iter,
                                 sj_fit_rule rule, double tol, sj_value *theta_hat,
                                 sj_value *iterations, sj_value *converged, sj_value *previous);

/* ---- GLM families and links ---------------------------------------------- */

/*
 * A GLM family with its link (R's family objects: gaussian, binomial,
 * poisson, Gamma, inverse.gaussian, MASS's negative.binomial), and builders
 * that emit the per-observation quantities a fit needs into a graph as
 * ordinary ops, so they are differentiated, batched and compiled like any
 * other value.  Formulas, clamps and conventions are R's (stats/R/family.R,
 * MASS/R/negbin.R); docs/glm.md lists them.
 *
 * Families (case-insensitive; R's spelling, '_' for '.' accepted) and their
 * links, the first canonical (NULL link = canonical):
 *   gaussian           identity, log, inverse, power
 *   binomial           logit, probit, cauchit, log, cloglog, loglog
 *   poisson            log, identity, sqrt, power
 *   Gamma              inverse, identity, log, power
 *   inverse.gaussian   1/mu^2, inverse, identity, log, power
 *   negative.binomial  log, sqrt, identity, power
 * "power" takes link_power = p >= 0 (R's power(p): μ^p; p = 0 is log, p = 1
 * identity), or is spelled with its exponent, "power(0.5)", "power(1/3)"
 * (which then wins over link_power); link_power is ignored by the other
 * links.  Binomial responses
 * are proportions in [0, 1] with the number of trials as prior weights (0/1
 * responses with weights 1).
 *
 * Builders take the graph, the family and values that broadcast together
 * (y, mu, eta, weights: usually vectors of length n; weights are R's prior
 * weights, pass ones for none).  They record errors on the graph like every
 * builder call and return SJ_INVALID after one.
 */
typedef struct sj_glm_family sj_glm_family;

/* Creates a family.  An unknown family or link, or a link the family does
 * not allow, is SJ_ERR_INVALID_ARGUMENT naming both (message in ctx).
 * Free with sj_glm_family_free (after which it must not be used). */
sj_status sj_glm_family_create(sj_ctx *ctx, const char *family, const char *link,
                               double link_power, sj_glm_family **out);
void sj_glm_family_free(sj_glm_family *fam);
/* R's names: "poisson", "Gamma", "negative.binomial"; "log", "1/mu^2",
 * "mu^0.5".  NULL for an invalid handle. */
const char *sj_glm_family_name(const sj_glm_family *fam);
const char *sj_glm_link_name(const sj_glm_family *fam);
/* 1 when the family has a dispersion that is estimated and counted as a
 * parameter by AIC (gaussian, Gamma, inverse.gaussian), else 0; -1 for an
 * invalid handle. */
int sj_glm_family_has_dispersion(const sj_glm_family *fam);
/* Negative binomial θ (> 0, finite), used by the builders below as a
 * constant.  Until it is set they fail with SJ_ERR_INVALID_ARGUMENT; a fit
 * that estimates θ (MASS::glm.nb) uses the sj_glm_nb_* builders instead.
 * Other families: SJ_ERR_INVALID_ARGUMENT. */
sj_status sj_glm_family_set_theta(sj_glm_family *fam, double theta);

/* The link: η = g(μ), μ = g⁻¹(η), dμ/dη (R's linkfun, linkinv, mu.eta). */
sj_value sj_glm_linkfun(sj_graph *g, const sj_glm_family *fam, sj_value mu);
sj_value sj_glm_linkinv(sj_graph *g, const sj_glm_family *fam, sj_value eta);
sj_value sj_glm_mu_eta(sj_graph *g, const sj_glm_family *fam, sj_value eta);
/* The variance function V(μ). */
sj_value sj_glm_variance(sj_graph *g, const sj_glm_family *fam, sj_value mu);
/* R's dev.resids: the weighted unit deviances w·d(y, μ), per observation. */
sj_value sj_glm_dev_resids(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value mu,
                           sj_value weights);
/* Their sum, the deviance (a scalar). */
sj_value sj_glm_deviance(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value mu,
                         sj_value weights);
/* R's family$aic(y, n, mu, wt, dev) (a scalar): −2 log-likelihood, the
 * dispersion set from dev (a scalar, usually sj_glm_deviance) where the
 * family has one, plus 2 for it.  The model's AIC is this + 2·rank. */
sj_value sj_glm_aic(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value mu,
                    sj_value weights, sj_value dev);
/* R's logLik of the model: has_dispersion − aic/2 (a scalar). */
sj_value sj_glm_loglik(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value mu,
                       sj_value weights, sj_value dev);
/* R's family$initialize: starting μ (binomial (w y + 1/2)/(w + 1), poisson
 * y + 0.1, negative binomial y + (y == 0)/6, the others y). */
sj_value sj_glm_mustart(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value weights);
/* R's valideta and validmu as scalars: 1.0 valid, 0.0 not. */
sj_value sj_glm_valid_eta(sj_graph *g, const sj_glm_family *fam, sj_value eta);
sj_value sj_glm_valid_mu(sj_graph *g, const sj_glm_family *fam, sj_value mu);
/* IRLS (glm.fit): working weights w (dμ/dη)² / V(μ) and working response
 * η + (y − μ)/(dμ/dη), μ = g⁻¹(η) (subtract an offset from the latter). */
sj_value sj_glm_working_weights(sj_graph *g, const sj_glm_family *fam, sj_value eta,
                                sj_value weights);
sj_value sj_glm_working_response(sj_graph *g, const sj_glm_family *fam, sj_value y,
                                 sj_value eta);

/* Negative binomial with θ a graph value (a scalar, e.g. estimated), for
 * MASS::glm.nb's alternation: V = μ + μ²/θ; MASS's dev.resids; and the
 * log-likelihood Σ w [lgamma(θ+y) − lgamma(θ) − lgamma(y+1) + θ log θ
 * + y log μ − (θ+y) log(θ+μ)] that theta.ml maximises. */
sj_value sj_glm_nb_variance(sj_graph *g, sj_value mu, sj_value theta);
sj_value sj_glm_nb_dev_resids(sj_graph *g, sj_value y, sj_value mu, sj_value weights,
                              sj_value theta);
sj_value sj_glm_nb_loglik(sj_graph *g, sj_value y, sj_value mu, sj_value weights,
                          sj_value theta);

/* Checks a response against the family's support and the weights (NULL =
 * all 1): every y and weight finite, weights >= 0; binomial y in [0, 1]
 * (rows of weight 0 ignored, as R sets their y to 0); poisson and negative
 * binomial y >= 0; Gamma and inverse.gaussian y > 0; gaussian with the log
 * link y > 0 and with the inverse link y != 0 (R: "cannot find valid
 * starting values").  SJ_OK, or SJ_ERR_DOMAIN with a message naming the
 * first bad row, 1-based as in R ("row 7: negative count -1 for the poisson
 * family") in the family's context. */
sj_status sj_glm_check_response(const sj_glm_family *fam, const double *y,
                                const double *weights, size_t n);

/* ---- GLM fits ------------------------------------------------------------ */

/*
 * Generalised linear models fitted as R's glm does (docs/glm.md, "Fits"):
 * IRLS is the fit op (sj_fit_argmin) with the deviance as objective and
 * 2 XᵀWX (Fisher information) as curvature, R's starting values (one
 * weighted least-squares step from mustart), step-halving when the deviance
 * increases or μ/η leave the family's domain, and R's convergence rule
 * |Δdev|/(|dev| + 0.1) < 1e-8.  The loop runs inside compiled code.
 */

/* The fit as graph values: X [n, p], y [n], weights [n] and offset [n]
 * values of g (weights / offset SJ_INVALID for ones / zeros); max_iter 0 is
 * R's 25.  Outputs: beta [p] (β̂), iterations (R's count, the start step
 * included) and converged (1 or 0); the last two may be NULL.  β̂ is
 * differentiable with respect to X, y, weights and offset (implicit function
 * theorem, any order) and batchable with sj_vmap (one fit per item, each
 * with its own count and flag).  X must have full column rank (sj_glm
 * reports aliased columns by name). */
sj_status sj_glm_fit_graph(sj_graph *g, const sj_glm_family *fam, sj_value x, sj_value y,
                           sj_value weights, sj_value offset, int max_iter, sj_value *beta,
                           sj_value *iterations, sj_value *converged);

/* A fitted model on concrete data. */
typedef struct sj_glm sj_glm;
/* family/link in R's spelling, case-insensitive (link NULL = canonical;
 * R's power(lambda) is spelled "power(0.5)" or "power(1/3)", also accepted
 * by sj_glm_family_create; a bare "power" is refused here, as it has no
 * exponent); X n×p row-major,
 * copied; xnames p column names (NULL: "X1".."Xp"); weights/offset may be
 * NULL.  The response is checked (sj_glm_check_response). */
sj_status sj_glm_create(sj_ctx *ctx, const char *family, const char *link, size_t n, int p,
                        const double *X, const char *const *xnames, const double *y,
                        const double *weights, const double *offset, sj_glm **out);
/* Negative binomial only: θ fixed (as MASS::negative.binomial(theta)); without
 * it sj_glm_fit estimates θ by alternation as MASS::glm.nb does. */
sj_status sj_glm_set_theta(sj_glm *m, double theta);
/* Fits (compiled code).  max_iter 0 = R's 25.  A rank-deficient X is
 * handled as R's glm does (LINPACK dqrdc2 order, tolerance 1e-7: the later
 * of linearly dependent columns is aliased, an all-zero column always):
 * the fit is on the other columns and the aliased coefficients are NaN
 * with sj_glm_aliased set (NA in the summaries), and sj_glm_message names
 * them.  With sj_glm_set_singular_ok(m, 0) (R's singular.ok = FALSE), or
 * when every column is aliased, a rank-deficient X is SJ_ERR_SINGULAR
 * naming the aliased columns.  Not converging, separation and fitted
 * values at the boundary are not errors: SJ_OK, the last iterate as the
 * estimate, sj_glm_convergence and sj_glm_message say what happened. */
sj_status sj_glm_fit(sj_glm *m, int max_iter);
/* R's glm(singular.ok = ): 1 (the default) fits around aliased columns, 0
 * refuses a rank-deficient X.  Applies to the next sj_glm_fit. */
sj_status sj_glm_set_singular_ok(sj_glm *m, int singular_ok);
/* After a fit: the rank of X (the number of coefficients estimated), -1
 * for an invalid or unfitted model; whether coefficient i is aliased. */
int sj_glm_rank(const sj_glm *m);
sj_status sj_glm_aliased(const sj_glm *m, int i, int *aliased);
/* The warnings of the last successful fit as one message, R's wording
 * where R warns ("glm.fit: algorithm did not converge", "glm.fit: fitted
 * probabilities numerically 0 or 1 occurred", "glm.fit: fitted rates
 * numerically 0 occurred", aliased coefficients by name) and an exact fit
 * (residual deviance 0: z/t statistics NaN), "; " between two; "" when
 * there is none; NULL before a fit.  Owned by m. */
const char *sj_glm_message(const sj_glm *m);
void sj_glm_free(sj_glm *m);
int sj_glm_ncoef(const sj_glm *m);
/* statistic is z or t (t where the dispersion is estimated), p_value two-sided.
 * Any output pointer may be NULL.  An aliased coefficient has NaN estimate,
 * standard error, statistic and p-value (R's NA); in an exact fit (an
 * estimated dispersion and a residual deviance of 0 up to rounding: SEs 0)
 * the statistic and p-value are NaN and sj_glm_message says so. */
sj_status sj_glm_coef(const sj_glm *m, int i, const char **name, double *estimate,
                      double *std_error, double *statistic, double *p_value);
sj_status sj_glm_stats(const sj_glm *m, double *deviance, double *null_deviance,
                       double *df_residual, double *df_null, double *aic, double *bic,
                       double *dispersion, double *loglik);
sj_status sj_glm_convergence(const sj_glm *m, int *converged, int *iterations);
/* NB θ (estimated or fixed) and its standard error (NaN when fixed). */
sj_status sj_glm_theta(const sj_glm *m, double *theta, double *std_error);
/* Family and link of a model.  sj_glm_family_name / sj_glm_link_name accept
 * an sj_glm as well as an sj_glm_family (in C, through _Generic). */
const char *sj_glm_model_family_name(const sj_glm *m);
const char *sj_glm_model_link_name(const sj_glm *m);
#ifndef __cplusplus
#define sj_glm_family_name(h)                                                              \
    _Generic((h), sj_glm *: sj_glm_model_family_name, const sj_glm *: sj_glm_model_family_name, \
             default: sj_glm_family_name)(h)
#define sj_glm_link_name(h)                                                                \
    _Generic((h), sj_glm *: sj_glm_model_link_name, const sj_glm *: sj_glm_model_link_name,    \
             default: sj_glm_link_name)(h)
#endif
/* The covariance of β̂: p×p row-major.  Model-based (dispersion × (XᵀWX)⁻¹)
 * or the sandwich HC0 (sandwich::vcovHC(type = "HC0")); NaN in the rows and
 * columns of aliased coefficients (R's vcov(complete = TRUE)). */
typedef enum sj_glm_vcov_type { SJ_GLM_VCOV_MODEL = 0, SJ_GLM_VCOV_HC0 = 1 } sj_glm_vcov_type;
sj_status sj_glm_vcov(const sj_glm *m, sj_glm_vcov_type type, double *out);
/* Wald intervals β̂ ± q·se at the given level (confint.default: normal q). */
sj_status sj_glm_confint(const sj_glm *m, double level, sj_glm_vcov_type type, double *lower,
                         double *upper);
/* Likelihood-ratio test of reduced nested in full (anova(reduced, full,
 * test = "Chisq")): stat = Δdeviance / dispersion(full), df = Δrank. */
sj_status sj_glm_lrtest(const sj_glm *full, const sj_glm *reduced, double *stat, double *df,
                        double *p_value);
/* Predictions for new data: type 0 link, 1 response; out_se (may be NULL)
 * the standard errors (R's predict.glm(se.fit = TRUE); aliased columns of
 * X_new are ignored, as R does). */
enum { SJ_GLM_LINK = 0, SJ_GLM_RESPONSE = 1 };
sj_status sj_glm_predict(const sj_glm *m, size_t n_new, const double *X_new,
                         const double *offset_new, int type, double *out_fit, double *out_se);
/* Residuals (n): R's residuals.glm types. */
typedef enum sj_glm_resid_type {
    SJ_GLM_RESID_RESPONSE,
    SJ_GLM_RESID_WORKING,
    SJ_GLM_RESID_PEARSON,
    SJ_GLM_RESID_DEVIANCE
} sj_glm_resid_type;
sj_status sj_glm_residuals(const sj_glm *m, sj_glm_resid_type type, double *out);
/* Fitted values μ̂ (n), leverage (hatvalues) and Cook's distance (n each). */
sj_status sj_glm_fitted(const sj_glm *m, double *out);
sj_status sj_glm_leverage(const sj_glm *m, double *out);
sj_status sj_glm_cooks(const sj_glm *m, double *out);
/* R-like text (summary.glm layout) and the CLI JSON object: model "glm",
 * family, link, coefficients [{name, aliased, estimate, std_error,
 * statistic, p_value}] (null for NaN), deviance, null_deviance, df_residual,
 * df_null, aic, dispersion, loglik, n, rank, converged, iterations, message
 * (sj_glm_message).  malloc'd, free with sj_string_free. */
char *sj_glm_summary_text(const sj_glm *m, const char *formula_or_null,
                          const char *data_name_or_null);
char *sj_glm_summary_json(const sj_glm *m);

/* ---- linear mixed models ------------------------------------------------- */

/*
 * A linear mixed model from matrices (lme4's lmer without the formula):
 *   y = Xβ + Σ_t Z_t b_t + ε,  b_t ~ N(0, G_t ⊗ I_levels),  ε ~ N(0, σ²I),
 * fitted by REML or ML through the fit op (damped Newton on the exact
 * Hessian; docs/lmm.md).  G_t is unstructured (log-Cholesky) for a
 * correlated term, diagonal otherwise.  Errors: bad shapes SJ_ERR_SHAPE, a
 * non-finite y or X entry or a code that is not a level SJ_ERR_DOMAIN, a
 * rank-deficient X SJ_ERR_SINGULAR; results before a successful fit
 * SJ_ERR_INVALID_ARGUMENT.  A fit that does not converge is SJ_OK with
 * converged = 0 (sj_lmm_convergence).
 */
typedef struct sj_lmm sj_lmm;
/* X: n×p row-major, y: n; names copied (NULL names: "X1", ...). */
sj_status sj_lmm_create(sj_ctx *ctx, size_t n, int p, const double *X,
                        const char *const *xnames, const double *y, sj_lmm **out);
/* A random-effect term: group codes (0..nlevels-1 as doubles, length n), level
 * names, k columns Z (n×k row-major; the columns that multiply the group's
 * effects, e.g. 1 and Days), their names; correlated = 1 for an unstructured
 * k×k G, 0 for independent (diagonal). */
sj_status sj_lmm_add_term(sj_lmm *m, const char *group, const double *codes, int nlevels,
                          const char *const *levels, int k, const double *Z,
                          const char *const *znames, int correlated);
/* Newton steps at most (default 100) and the gradient-norm tolerance
 * (default 1e-7, on the criterion's gradient in the raw θ). */
sj_status sj_lmm_set_control(sj_lmm *m, int max_iter, double tol);
/* The curvature of the Newton steps: the exact Hessian of the criterion
 * (default), or average information (AI-REML, Gilmour, Thompson & Cullis
 * 1995): for the criterion −2ℓ, AI_ij = yᵀP V̇_i P V̇_j P y (REML and ML;
 * P y = V⁻¹(y − Xβ̂)), V̇_i = ∂V/∂θ_i, built as a graph from the covariance
 * tree (forward derivatives of V(θ)a) and compiled with the fit.  Same
 * damping, step halving and convergence rule.  An unknown value is
 * SJ_ERR_INVALID_ARGUMENT. */
typedef enum sj_lmm_optimizer {
    SJ_LMM_NEWTON = 0,
    SJ_LMM_AVERAGE_INFORMATION = 1
} sj_lmm_optimizer;
sj_status sj_lmm_set_optimizer(sj_lmm *m, sj_lmm_optimizer optimizer);
sj_status sj_lmm_fit(sj_lmm *m, int reml /* 1 REML, 0 ML */);
void sj_lmm_free(sj_lmm *m);
/* after a fit: */
sj_status sj_lmm_criterion(const sj_lmm *m, double *reml_criterion_or_deviance);
sj_status sj_lmm_loglik(const sj_lmm *m, double *loglik, double *aic, double *bic);
sj_status sj_lmm_convergence(const sj_lmm *m, int *converged, int *iterations, int *singular);
int sj_lmm_nfixed(const sj_lmm *m);
sj_status sj_lmm_fixed(const sj_lmm *m, int i, const char **name, double *estimate,
                       double *std_error, double *t_value);
int sj_lmm_nvarcomp(const sj_lmm *m); /* variance components incl. the last "Residual" */
sj_status sj_lmm_varcomp(const sj_lmm *m, int i, const char **group, const char **name,
                         double *variance, double *std_dev);
int sj_lmm_ncorr(const sj_lmm *m);
sj_status sj_lmm_corr(const sj_lmm *m, int i, const char **group, const char **name_a,
                      const char **name_b, double *corr);
/* Conditional mode of effect j of level `level` of term `term`, and its
 * conditional variance (lme4's condVar: given β̂). */
sj_status sj_lmm_ranef(const sj_lmm *m, int term, int level, int j, double *mode,
                       double *cond_var);
/* Raw θ̂ (per term: log sd for k = 1; log-Cholesky entries L_i_j row by row
 * for a correlated term, log sds otherwise; last log σ) and standard errors
 * from the exact Hessian of the criterion (cov = 2 H⁻¹; NaN when H is not
 * positive definite).  Owned by m. */
sj_status sj_lmm_theta(const sj_lmm *m, int *ntheta, const double **theta,
                       const double **theta_se);
/* printing, used by the CLI: R-like text (as summary() of an lmerMod) and a
 * JSON object (keys: model "lmm", criterion "REML"/"ML", reml_criterion or
 * deviance, loglik, aic, bic, n, fixed_effects [{name, estimate, std_error,
 * t_value}], random_effects [{group, name, variance, std_dev}] with last
 * group "Residual", correlations [{group, names:[a,b], corr}], converged,
 * iterations, singular).  Both return malloc'd strings freed with
 * sj_string_free (NULL on error). */
char *sj_lmm_summary_text(const sj_lmm *m, const char *formula_or_null,
                          const char *data_name_or_null);
char *sj_lmm_summary_json(const sj_lmm *m);

/* ---- smoothing -------------------------------------------------------------
 * Penalised smoothing (docs/smooth.md): B-spline and 1-D thin-plate bases as
 * graph builders (differentiable in the positions t), difference and
 * thin-plate penalties, closed-form Gaussian REML for one smoothing
 * parameter, and response geometry (simplex, sphere). */

/* B-spline basis of the given degree at positions t [n] over the full knot
 * sequence knots[0..nknots-1] (non-decreasing, boundary knots repeated as
 * wanted): [n, nknots - degree - 1], or its deriv-th derivative in t.
 * Cox–de Boor with elementwise ops; intervals are [k_i, k_{i+1}), the last
 * nonempty one closed.  SJ_INVALID for bad knots. */
sj_value sj_bspline_basis(sj_graph *g, sj_value t, size_t nknots, const double *knots,
                          int degree, int deriv);
/* Periodic basis on [knots[0], knots[nknots-1]) (period their difference):
 * [n, nknots - 1]; t must lie in that interval. */
sj_value sj_bspline_basis_periodic(sj_graph *g, sj_value t, size_t nknots, const double *knots,
                                   int degree, int deriv);
/* mgcv's P-spline knots (bs = "ps") for k basis functions of the given
 * degree over the range of x: writes k + degree + 1 knots, returns that count
 * (0 on bad arguments). */
size_t sj_pspline_knots(const double *x, size_t n, int k, int degree, double *knots);
/* degree + 1 copies of min x, ninterior knots at quantiles i/(ninterior+1)
 * (R's type 7), degree + 1 copies of max x: returns ninterior + 2 degree + 2. */
size_t sj_quantile_knots(const double *x, size_t n, int ninterior, int degree, double *knots);
/* The 1-D thin-plate regression spline basis (mgcv's bs = "tp", m = 2)
 * with knots at knots[0..nknots-1] (strictly increasing, 3 <= nknots <=
 * 5000), full rank (no eigen-truncation): [n, nknots], columns
 * η(|t − κ|) Z (η(r) = r³/12, Z [nknots, nknots − 2] an orthonormal basis of
 * the null space of [1, κ]ᵀ), then 1 and t.  Differentiable in t.
 * SJ_INVALID (and SJ_ERR_INVALID_ARGUMENT on g) for bad knots.  Its penalty
 * (nknots x nknots, row-major): blockdiag(ZᵀEZ, 0₂), E_ij = η(|κ_i − κ_j|),
 * i.e. ∫ f″² of the fitted function; SJ_ERR_INVALID_ARGUMENT for bad knots. */
sj_value sj_tprs_basis(sj_graph *g, sj_value t, size_t nknots, const double *knots);
sj_status sj_tprs_penalty(size_t nknots, const double *knots, double *s);
/* S = DᵀD, D the order-th difference matrix, for m coefficients (m x m,
 * row-major), as mgcv's "ps" smooth; its null space (m x order, orthonormal
 * columns: polynomials of degree < order in the coefficient index). */
sj_status sj_difference_penalty(int m, int order, double *s);
sj_status sj_difference_penalty_null_space(int m, int order, double *z);

typedef struct sj_smooth_reml_result {
    double lambda, rho;  /* λ = exp(ρ) */
    double criterion;    /* REML criterion V(ρ) (σ² profiled, summed over columns) */
    double gradient;     /* dV/dρ at the returned ρ */
    double edf;          /* effective degrees of freedom tr((XᵀWX + λS)⁻¹XᵀWX) */
    double hessian;      /* d²V/dρ² at the returned ρ */
    double df_resid;     /* n - M, M = m - rank: the REML degrees of freedom */
    int rank;            /* rank of the penalty (relative to XᵀWX) */
    int ncol;            /* d */
    int iterations, converged, at_bound;
} sj_smooth_reml_result;
/* Gaussian REML for λ in β = (XᵀWX + λS)⁻¹XᵀWY: X [n, m], Y [n, d] (the
 * columns share λ, each has its own σ²), S [m, m], w [n] or NULL, all
 * row-major.  One Cholesky of XᵀWX and one symmetric eigendecomposition;
 * grid then safeguarded Newton in ρ.  beta [m, d] and fitted [n, d] may be
 * NULL.  SJ_ERR_SINGULAR when XᵀWX is singular, SJ_ERR_DOMAIN for a penalty
 * of rank 0 or bad weights, with a message in ctx (which may be NULL). */
sj_status sj_smooth_reml(sj_ctx *ctx, size_t n, size_t m, size_t d, const double *x,
                         const double *y, const double *s, const double *w, double *beta,
                         double *fitted, sj_smooth_reml_result *res);
/* The fit as a differentiable graph: x [n, m], y [n, d], s [m, m], w [n]
 * (or SJ_INVALID for unit weights) are values of g; fit is a converged
 * sj_smooth_reml result for the same kind of problem, which supplies the
 * start ρ̂, the rank of S and n − M (its own data need not be these values).
 * ρ is a fit op (sj_fit_argmin, Newton in ρ on the criterion, started at
 * fit->rho, |dV/dρ| < 1e-9, at most 50 steps), then λ = exp ρ,
 * β = (XᵀWX + λS)⁻¹XᵀWY and the fitted values Xβ.  So λ, β and the fitted
 * values have exact derivatives of any order (implicit function theorem)
 * with respect to x, y, s, w and anything they are built from (e.g. the
 * positions t of sj_bspline_basis), and batch under sj_vmap (one Newton
 * loop per item, each from fit->rho).  Any of lambda, beta, fitted may be
 * NULL.  Errors: SJ_ERR_INVALID_ARGUMENT for a NULL fit, SJ_INVALID data or
 * a fit that is not a result (rank < 1, df_resid <= 0, ρ not finite); the
 * data's shape errors as the builders report them. */
sj_status sj_smooth_reml_graph(sj_graph *g, sj_value x, sj_value y, sj_value s, sj_value w,
                               const sj_smooth_reml_result *fit, sj_value *lambda,
                               sj_value *beta, sj_value *fitted);
/* Response geometry, row-wise on [n, D] matrices (differentiable builders).
 * Compositions: closure x / Σx; clr log x − mean log x; alr log(x_j/x_D)
 * for j < D ([n, D−1], d = D given) and its inverse (closure of
 * (exp y, 1)).  Unit sphere: exp_p(v) = cos|v| p + sin|v| v/|v| for tangent
 * v at p (0 < |v| < π); log_p(x) = θ u/|u|, u = x − (p·x)p,
 * θ = 2 atan(|x−p|/|x+p|) (undefined at x = ±p). */
sj_value sj_closure(sj_graph *g, sj_value x);
sj_value sj_clr(sj_graph *g, sj_value x);
sj_value sj_alr(sj_graph *g, sj_value x, int64_t d);
sj_value sj_alr_inv(sj_graph *g, sj_value y);
sj_value sj_sphere_exp(sj_graph *g, sj_value p, sj_value v);
sj_value sj_sphere_log(sj_graph *g, sj_value p, sj_value x);
/* Simplex (Aitchison geometry): log_p(x) = clr x − clr p, exp_p(v) =
 * closure(exp(clr p + v)); the Fréchet mean of the rows of x [n, D] is the
 * closed geometric mean [D]. */
sj_value sj_simplex_log(sj_graph *g, sj_value p, sj_value x);
sj_value sj_simplex_exp(sj_graph *g, sj_value p, sj_value v);
sj_value sj_simplex_mean(sj_graph *g, sj_value x);
/* The Fréchet (Karcher) mean of the rows of x [n, D] (unit vectors) on the
 * unit sphere: the argmin over unit p of mean_i d(p, x_i)², d the geodesic
 * distance, as a fit op (sj_fit_argmin, damped Newton with the exact
 * Hessian from the normalised extrinsic mean, gradient rule 1e-11, at most
 * 100 steps) over θ with p = θ/|θ| and (|θ|² − 1)² added to fix the radius.
 * So the mean is differentiable in x to any order by the implicit function
 * theorem and batches under sj_vmap.  *mean [D]; *converged (may be NULL) a
 * scalar 1 or 0.  Identical rows give that row (converged).  Data whose
 * extrinsic mean is 0 (e.g. an antipodal pair: no unique mean) fail when
 * called with SJ_ERR_DOMAIN (the objective is not finite at the start).
 * Errors here: SJ_ERR_INVALID_ARGUMENT (NULL mean, bad x), SJ_ERR_SHAPE
 * (x not of rank 2). */
sj_status sj_sphere_mean(sj_graph *g, sj_value x, sj_value *mean, sj_value *converged);

/* nprob problems sharing S: x [nprob, n, m], y [nprob, n, d], w [nprob, n]
 * or NULL, beta [nprob, m, d], fitted [nprob, n, d], res [nprob]. */
sj_status sj_smooth_reml_batch(sj_ctx *ctx, size_t nprob, size_t n, size_t m, size_t d,
                               const double *x, const double *y, const double *s,
                               const double *w, double *beta, double *fitted,
                               sj_smooth_reml_result *res);

#ifdef __cplusplus
}
#endif
#endif
