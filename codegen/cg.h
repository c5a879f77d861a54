/* Internal to codegen/: the lowering state, the buffer plan, the per-op rule
 * table and the IR-building helpers every lower_*.c file shares. */
#ifndef CG_CG_H
#define CG_CG_H

#include <stdint.h>

#include <llvm-c/Core.h>

#include "codegen/codegen.h"
#include "ir/graph.h"

/* ---- buffer plan (plan.c) ------------------------------------------------- */

/* Where a value lives while the kernel runs. */
typedef enum cg_where {
    CG_NOWHERE,  /* dead, empty, or computed inside its readers (inlined) */
    CG_INPUT,    /* in[pos] */
    CG_CONST,    /* kernel-owned copy of the constant's data */
    CG_SCRATCH,  /* scratch + offset */
    CG_OUTPUT,   /* out[k]: written directly (nothing after it can fail) */
    CG_ALIAS,    /* same bytes as another value (reshape) */
    CG_CHECKS    /* empty, but its op checks non-empty inputs (one_hot into
                    zero classes): run for the checks, as the evaluator does */
} cg_where;

typedef struct cg_plan {
    uint32_t n;          /* nodes */
    uint8_t *live;       /* reaches an output */
    uint8_t *inl;        /* computed element by element inside its readers */
    uint8_t *where;      /* cg_where */
    int64_t *at;         /* input pos, output index, scratch offset or alias root */
    int64_t *temp;       /* scratch offset of the op's workspace, or -1 */
    size_t scratch;      /* bytes, header included */
    int nbuffer, ninlined;
} cg_plan;

sj_status cg_plan_fill(const ir_graph *g, cg_plan *p, ir_err *err);
void cg_plan_free(cg_plan *p);
/* The operands an op really reads: matmul reads through a transpose of the
 * last two axes (folded into the BLAS transpose flag).  Writes ninput values. */
void cg_operands(const ir_graph *g, ir_val v, ir_val *ops);
/* Matmul operand i of v with its transpose flag after folding. */
ir_val cg_matmul_operand(const ir_graph *g, ir_val v, int i, int *trans);
/* For logdet v: an earlier cholesky of the same matrix, whose factor v then
 * reads instead of factoring again (logdet A = 2 Σ log Lᵢᵢ), or IR_NONE.
 * A REML deviance takes both of V; this halves its O(n³) work. */
ir_val cg_logdet_factor(const ir_graph *g, ir_val v);

/* ---- lowering state --------------------------------------------------------- */

typedef struct cg_lower {
    const ir_graph *g;
    const cg_plan *p;
    LLVMContextRef cx;
    LLVMModuleRef m;
    LLVMBuilderRef b;
    LLVMBuilderRef ab;   /* positioned in the entry block, for allocas */
    LLVMValueRef fn;
    LLVMTypeRef f64, i64, i32, i8, i1, ptr, vd;
    LLVMValueRef in, out, scratch; /* the kernel's parameters */
    LLVMValueRef *base;  /* per node: first element, or NULL */
    LLVMValueRef *temp;  /* per node: workspace, or NULL */
    LLVMValueRef flat;   /* linear index inside a flat elementwise loop */
    /* Inside a split elementwise loop (lower_elementwise.c): the outer and
     * inner counters, which broadcasts read their operand with; else NULL. */
    LLVMValueRef split_outer, split_inner;
    double **consts;     /* kernel-owned copies of constants (per node) */
    int novec;           /* > 0: loops begun now are not vectorised */
    int in_body;         /* > 0: emitting an outlined batch body (lower_batch.c) */
    int nbody;           /* outlined batch bodies so far (their names) */
    cg_stats stats;
    ir_err *err;
} cg_lower;

/* ---- per-op rules (lower.c holds the table) --------------------------------- */

/* The element of v at multi-index idx (rank of v, i64 values). */
typedef LLVMValueRef cg_gen_fn(cg_lower *L, ir_val v, LLVMValueRef *idx);
/* Writes all of v into its buffer L->base[v]. */
typedef sj_status cg_emit_fn(cg_lower *L, ir_val v);
/* Bytes of workspace the op needs while it runs. */
typedef size_t cg_temp_fn(const ir_graph *g, ir_val v);

enum {
    CG_INDEX_ONLY = 1, /* gen only moves or masks elements: cheap to repeat */
    CG_REPLICATES = 2, /* reads an input element several times per output */
    CG_CAN_FAIL = 4,   /* may return an error status at run time */
    CG_IS_ALIAS = 8    /* output shares input 0's bytes (reshape) */
};
#define CG_ALL_INPUTS 0xffffffffu

typedef struct cg_rule {
    cg_gen_fn *gen;         /* NULL: the op always writes a buffer */
    cg_emit_fn *emit;       /* NULL only for sources and aliases */
    uint32_t elem_inputs;   /* bit i: input i is read element by element */
    unsigned flags;
    cg_temp_fn *temp;
} cg_rule;

#define OP(id, name, kind, arity, shape) extern const cg_rule cg_rule_##name;
#include "ir/ops.def"

const cg_rule *cg_rule_of(ir_op op);
/* A broadcast's element inside a split elementwise loop (lower_elementwise.c). */
LLVMValueRef cg_split_read(cg_lower *L, ir_val b);

/* ---- shared emitters (emit.c) ----------------------------------------------- */

LLVMValueRef cg_i64(cg_lower *L, int64_t v);
LLVMValueRef cg_i32(cg_lower *L, int32_t v);
LLVMValueRef cg_f64(cg_lower *L, double v);
/* &p[off] for a double array. */
LLVMValueRef cg_gep(cg_lower *L, LLVMValueRef p, LLVMValueRef off);
LLVMValueRef cg_load(cg_lower *L, LLVMValueRef p, LLVMValueRef off);
void cg_store(cg_lower *L, LLVMValueRef p, LLVMValueRef off, LLVMValueRef val);
/* Row-major offset of idx in shape s. */
LLVMValueRef cg_offset(cg_lower *L, const ir_shape *s, LLVMValueRef *idx);
/* A stack slot in the entry block (promoted to a register by the optimiser). */
LLVMValueRef cg_slot(cg_lower *L, LLVMTypeRef t, const char *name);

/* A counted loop: for (i = 0; i < n; i++).  Loops whose trip count is a
 * constant below CG_VECTOR_MIN_TRIP, and every loop begun while L->novec > 0
 * (small inline linear algebra), carry llvm.loop.vectorize.enable=false:
 * vectorised, they became masked loads, gathers and scatters behind run-time
 * alias checks, a large part of the REML kernel's IR, for no speed at these
 * sizes.  See docs/codegen.md. */
#define CG_VECTOR_MIN_TRIP 16
typedef struct cg_loop {
    LLVMValueRef var, i, n; /* var NULL: one iteration, no loop */
    LLVMBasicBlockRef body, exit;
    int novec;
} cg_loop;
void cg_loop_begin(cg_lower *L, cg_loop *lp, LLVMValueRef n);
void cg_loop_end(cg_lower *L, cg_loop *lp);
/* for i = lo .. n-1 (lo and n are i64 values). */
void cg_loop_from(cg_lower *L, cg_loop *lp, LLVMValueRef lo, LLVMValueRef n);

/* Nested loops over the first `rank` axes of s; idx receives the indices. */
typedef struct cg_nest {
    int rank;
    cg_loop lp[IR_MAX_RANK];
} cg_nest;
void cg_nest_begin(cg_lower *L, cg_nest *nest, int rank, const int64_t *dims, LLVMValueRef *idx);
void cg_nest_end(cg_lower *L, cg_nest *nest);

/* A loop over the nb items of a batch (lower_batch.c): a plain counted loop,
 * or, when the batch holds at least CG_PAR_MIN_FLOPS of work, a body outlined
 * into its own function and run by sj_batch_run across the pool's threads
 * (codegen/pool.h).  Between begin and end, t->b is the item index; the body
 * may read L->base and L->temp of the cap[0..ncap-1] values only (others'
 * pointers belong to the kernel's frame), and may fail (cg_fail_if): the
 * first failing item in batch order is reported.  Items must write disjoint
 * memory.  A batch loop begun inside an outlined body stays serial. */
#define CG_BATCH_MAXCAP 6
typedef struct cg_batch {
    int64_t nb;
    int outlined;
    LLVMValueRef b;
    cg_loop lp;
    int ncap;
    ir_val cap[CG_BATCH_MAXCAP];
    LLVMValueRef saved[CG_BATCH_MAXCAP][2];
    LLVMValueRef env, body, save_fn, save_scratch;
    LLVMBuilderRef save_b, save_ab;
} cg_batch;
void cg_batch_begin(cg_lower *L, cg_batch *t, int64_t nb, double flops_per_item, int ncap,
                    const ir_val *cap);
void cg_batch_end(cg_lower *L, cg_batch *t);

/* Calls an external function, declared on first use with the given type. */
LLVMValueRef cg_call(cg_lower *L, const char *name, LLVMTypeRef ret, int n,
                     LLVMTypeRef *types, LLVMValueRef *args);
/* Calls a pure libm-style double function (readnone, so it can be hoisted). */
LLVMValueRef cg_math(cg_lower *L, const char *name, int n, LLVMValueRef *args);
LLVMValueRef cg_intrinsic(cg_lower *L, const char *name, LLVMValueRef x);
/* If cond: record (v, batch, extra, info) in the error header and return st. */
void cg_fail_if(cg_lower *L, LLVMValueRef cond, sj_status st, ir_val v, LLVMValueRef batch,
                LLVMValueRef extra, LLVMValueRef info);
/* Zeroes n doubles at p. */
void cg_zero(cg_lower *L, LLVMValueRef p, int64_t n);
void cg_copy(cg_lower *L, LLVMValueRef dst, LLVMValueRef src, int64_t n);

/* The element of v at idx: a load when v has a buffer, else its gen. */
LLVMValueRef cg_read(cg_lower *L, ir_val v, LLVMValueRef *idx);
/* Writes every element of u (read element by element) to dst, row-major. */
void cg_fill(cg_lower *L, ir_val u, LLVMValueRef dst);
/* Product of the first k dims of s. */
int64_t cg_prod(const ir_shape *s, int k);

/* Shared rule parts. */
sj_status cg_emit_generated(cg_lower *L, ir_val v);

/* ---- lock-step batched fits (lower_fit_lockstep.c) -------------------------- */

/* Batches at least this large run in lock step (smaller ones per item on
 * the pool: one GEMM over a few items saves little). */
#define CG_FIT_LOCKSTEP_MIN 8
/* Items per chunk at most: the batched function is compiled for one chunk
 * of ceil(B / ceil(B / 64)) items.  Chunks spread over the pool's threads
 * (the elementwise and libm work is as large as item by item and only
 * threads share it), yet a chunk's GEMMs still have 64 rows, and its
 * scratch stays small. */
#define CG_FIT_LOCKSTEP_CHUNK 64
int64_t cg_fit_lockstep_chunk(int64_t nb);
/* Whether fit node v of g gets a batched fused function: batched, at least
 * CG_FIT_LOCKSTEP_MIN items, relative-objective rule (the fused function's). */
int cg_fit_lockstep_applies(const ir_graph *g, ir_val v);
/* The fused graph of fit node v (inputs theta [k], data; outputs f, ∇f, C)
 * vmapped over one chunk of the node's batch (theta and the batched data at
 * axis 0, the shared data unbatched; outputs [c], [c, k], [c, k, k]),
 * cleaned and structure-rewritten, in *out. */
sj_status cg_fit_lockstep_graph(const ir_graph *g, ir_val v, const ir_graph *fused,
                                ir_graph **out, ir_err *err);

/* Builds `i32 fname(ptr in, ptr out, ptr scratch)` from L->g and L->p into
 * L->m; consts[v] is the kernel's copy of constant v's data. */
sj_status cg_lower_graph(cg_lower *L, const char *fname, double **consts);

/* ---- JIT (jit.c) ------------------------------------------------------------ */

typedef struct cg_code cg_code;
/* Creates a context and module set up for the JIT's target. */
sj_status cg_jit_module(const char *name, LLVMContextRef *cx, LLVMModuleRef *m, void **tsc,
                        ir_err *err);
/* Verifies (debug builds), optimises and compiles m (consumed, with tsc);
 * returns the code handle and the address of `fname`.  quick: machine code
 * by LLVM's fast path (cg_quick_codegen). */
sj_status cg_jit_compile(LLVMModuleRef m, void *tsc, const char *fname, int opt_level, int quick,
                         cg_code **code, void **addr, ir_err *err);
/* Optimises m as cg_jit_compile does and returns its text (m and tsc
 * consumed; nothing is compiled). */
sj_status cg_jit_text(LLVMModuleRef m, void *tsc, int opt_level, int quick, char **text,
                      ir_err *err);

/* Whether a kernel of g gets its machine code by LLVM's fast path (FastISel,
 * no loop strength reduction or machine-level optimisation): at opt level 2, when its loops touch few elements
 * (at most CG_QUICK_MAX_ELEMS summed over the ops, each counted by its
 * largest operand or result) and one evaluation of its fits' sub-graphs
 * (objective, gradient, curvature, Hessian, times the fit's batch) touches
 * at most CG_QUICK_FIT_MAX_ELEMS: a fit iterates, so its bound is per
 * evaluation, and a small mixed model's fit kernel (sleepstudy: 78,000)
 * compiles in 0.66 s instead of 2.07 s and fits in 0.44 ms instead of
 * 0.36 ms until the tier-up.  Then the IR pipeline
 * leaves out loop vectorisation and every function is marked optnone after
 * it, so machine-code generation, the larger part of a compile, takes about
 * half the time; the code is slower by about a ns per element
 * (docs/codegen.md, "the fast machine-code path"). */
int cg_quick_codegen(const ir_graph *g, const uint8_t *live, int opt_level);
#define CG_QUICK_MAX_ELEMS 16384
#define CG_QUICK_FIT_MAX_ELEMS 100000
/* Disposes of a module not handed to cg_jit_compile. */
void cg_jit_discard(LLVMModuleRef m, void *tsc);
void cg_code_free(cg_code *c);

/* ---- special functions (special.c) ----------------------------------------- */

double cg_lgamma(double x);

#endif
