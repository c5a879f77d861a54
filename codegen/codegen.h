/* The code generator: lowers a specialised graph (concrete shapes) to LLVM IR
 * and compiles it with ORC LLJIT into one native kernel.
 *
 * A kernel is   int32_t k(const double *const *in, double *const *out,
 *                         char *scratch)
 * It returns 0, or an sj_status after writing an error record (value, batch,
 * offending number) to the first CG_SCRATCH_HEADER bytes of scratch, which
 * cg_kernel_run turns into a message naming the op.
 *
 * Outputs are left unchanged on failure: a value is computed straight into an
 * output buffer only when no op that can fail comes after it in the graph;
 * every other output is computed in scratch and copied out at the end.
 *
 * Only codegen/ includes llvm-c headers; this header does not. */
#ifndef CG_CODEGEN_H
#define CG_CODEGEN_H

#include <stddef.h>

#include "ir/graph.h"

typedef struct cg_kernel cg_kernel;
typedef struct cg_options { int opt_level; /* 2 or 3 */ } cg_options;

/* Compiles specialised graph g (concrete shapes; outputs = g->output).
 * Thread-safe: every compile has its own LLVM context and target machine,
 * and the process-wide LLJIT accepts modules from several threads. */
sj_status cg_compile(const ir_graph *g, const cg_options *opt, cg_kernel **out, ir_err *err);
void cg_kernel_free(cg_kernel *k);
/* Bytes of scratch memory one call needs (intermediates, planned once). */
size_t cg_kernel_scratch_bytes(const cg_kernel *k);
/* Runs the kernel. Thread-safe when each concurrent call has its own scratch
 * (64-byte aligned, cg_kernel_scratch_bytes long). On failure returns the
 * status with err naming the op and value (e.g. "cholesky (value %7): matrix
 * [batch 0] is not positive definite"), and leaves outputs unchanged. */
sj_status cg_kernel_run(cg_kernel *k, const double *const *inputs, double *const *outputs,
                        void *scratch, ir_err *err);
/* The kernel of one chunk of a tiled vmapped function (runtime/tile.c) runs
 * items first .. first+C-1 of the whole batch; a message names the item,
 * index position and code of the whole function.  Per node v, lead[v][i] is
 * how many entries of axis 0 belong to one item in its operand i (i = 0, 1)
 * or in v itself (i = 2): that axis is lead·C long in the chunk and lead·B
 * in the whole function (0: not batched that way; the message then keeps
 * the kernel's own numbers), and shape[v] is its first operand's shape in
 * the whole function. */
typedef struct cg_batch_pos {
    int64_t first, chunk, count; /* first item, C, B */
    const int64_t (*lead)[3];
    const ir_shape *shape;
} cg_batch_pos;
/* cg_kernel_run in two steps, for callers that run chunks on other threads:
 * exec returns 0 or a status, with the error record (4 × int64) at the start
 * of scratch; explain turns a copy of that record into the message (pos NULL:
 * the kernel's own batch). */
int32_t cg_kernel_exec(cg_kernel *k, const double *const *inputs, double *const *outputs,
                       void *scratch);
sj_status cg_kernel_explain(const cg_kernel *k, sj_status st, const int64_t rec[4],
                            const cg_batch_pos *pos, ir_err *err);
/* The scratch bytes a kernel of g would need (the plan alone, no code). */
sj_status cg_plan_scratch_bytes(const ir_graph *g, size_t *bytes, ir_err *err);
/* Calls after which a fast-path kernel is compiled again with the full
 * pipeline (cg_kernel_run): by then its slower code (about 0.3-2 us a call
 * on a REML-sized kernel) has cost about what the fast path saved (about
 * 18 ms of a 30 ms compile), so a function called a few times compiles
 * quickly and one called thousands of times runs the optimised code. */
#define CG_TIER_UP_CALLS 1000u
/* 0 while a kernel runs the code of LLVM's fast path (small kernels, until
 * their CG_TIER_UP_CALLS-th call), 1 once it runs fully optimised code. */
int cg_kernel_tier(const cg_kernel *k);
/* The optimised LLVM IR text of the kernel (malloc'd via ir_malloc, free with ir_free). */
char *cg_kernel_llvm_ir(const cg_kernel *k);
/* Compile time of this kernel in seconds. */
double cg_kernel_compile_seconds(const cg_kernel *k);

/* What the lowering did, for tests and introspection. */
typedef struct cg_stats {
    int nloop;      /* loop nests that write a materialised value */
    int nbuffer;    /* intermediate values given scratch memory */
    int ninlined;   /* values computed inside their readers' loops */
    int nlibcall;   /* ops lowered to BLAS/LAPACK calls */
    int ninline_linalg; /* linear-algebra ops lowered to inline loops */
} cg_stats;
void cg_kernel_stats(const cg_kernel *k, cg_stats *out);

/* Bytes at the start of scratch that hold a failing kernel's error record. */
#define CG_SCRATCH_HEADER 64

#endif
