/* The solver of the fit op (docs/fit.md): damped Newton with step halving,
 * generic over callbacks that evaluate the objective, its gradient and the
 * curvature at a point.  The reference evaluator (ir/eval_fit.c) runs it over
 * ir_eval of a problem's sub-graphs; native code (codegen/lower_fit.c) calls
 * ir_fit_native_run, which runs it over the compiled sub-graph functions, so
 * the whole loop runs inside the compiled kernel.  No LLVM here. */
#ifndef IR_NEWTON_H
#define IR_NEWTON_H

#include <float.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "statjit.h"

/* Each callback evaluates at theta ([k]) and returns SJ_OK or the status of
 * a failed evaluation (not positive definite, a domain error, ...), which
 * the solver treats as "not a valid point". */
typedef struct ir_newton_fns {
    void *ctx;
    sj_status (*objective)(void *ctx, const double *theta, double *f);
    sj_status (*gradient)(void *ctx, const double *theta, double *grad);  /* [k] */
    sj_status (*curvature)(void *ctx, const double *theta, double *c);    /* [k, k] */
    /* Optional (NULL: not used): the three at once, sharing their common
     * work (η = Xβ, μ, ... of a GLM).  Used under the relative-objective
     * rule only, at the start and at each full Newton step; results are
     * those of the three separate callbacks.  When it fails, the solver
     * falls back to the separate callbacks, so failures mean the same. */
    sj_status (*all)(void *ctx, const double *theta, double *f, double *grad, double *c);
} ir_newton_fns;

typedef struct ir_newton_settings {
    int64_t k, max_iter;
    double tol;
    int rule;     /* sj_fit_rule */
    int previous; /* also report the iterate before the last accepted step */
} ir_newton_settings;

/* Step halvings tried per Newton step (R's glm). */
#define IR_NEWTON_MAX_HALVINGS 30

/* Doubles of workspace ir_newton needs for k parameters (with room for
 * the gradient and curvature at a trial point, for fns->all). */
size_t ir_newton_work(int64_t k);

/* Minimises from theta0.  On SJ_OK, out[0..k) is the best point found,
 * out[k] the number of Newton steps taken and out[k + 1] 1.0 if the rule
 * held, else 0.0; with s->previous, out[k + 2 .. 2k + 2) is the iterate
 * before the last accepted step (theta0 when none was); the values are
 * always finite.  A step is C⁻¹∇f (C through
 * Cholesky; a C that is not positive definite gets λI added, λ growing
 * tenfold from 1e-10·max(1, max|Cᵢᵢ|)); a trial point whose objective fails,
 * is not finite or is larger is halved, up to IR_NEWTON_MAX_HALVINGS times;
 * when none is accepted the fit stops (converged when the rule is the
 * relative objective change and the full step changed f by less than tol:
 * the objective has stalled at rounding level).  A failing gradient or
 * curvature also stops it.  Returns the objective's status when it fails at
 * theta0, SJ_ERR_DOMAIN when it is not finite there (out is then theta0,
 * 0, 0). */
sj_status ir_newton(const ir_newton_fns *fns, const ir_newton_settings *s, const double *theta0,
                    double *out, double *work);

/* Parts of ir_newton the lock-step solver (ir/newton_lockstep.c) shares. */
/* Relative size of an objective change that is rounding, not progress:
 * a trial point is accepted when f_t <= f + IR_NEWTON_ROUNDING (|f| + 0.1). */
#define IR_NEWTON_ROUNDING (64 * DBL_EPSILON)
/* step = (C + λI)⁻¹ g as ir_newton takes it; l is k×k workspace.  0 on
 * success, -1 when C is not finite or no λ helps. */
int ir_newton_solve_step(const double *c, const double *g, double *step, double *l, int64_t k);
/* Writes one item's output: theta (k), the iteration count, the flag.  The
 * one place that knows the output layout (k + 2 per item). */
void ir_newton_output(double *out, const double *theta, int64_t k, int64_t iters, int converged);
/* Doubles of one item's output (with the previous iterate or not). */
static inline int64_t ir_newton_out_len(int64_t k, int previous)
{
    return k + 2 + (previous ? k : 0);
}

/* ---- native code ---------------------------------------------------------------- */

/* A compiled sub-graph: int32_t f(const double *const *in, double *const *out,
 * char *scratch), as codegen/codegen.h describes kernels. */
typedef int32_t ir_kernel_fn(const double *const *in, double *const *out, char *scratch);

/* The functions: the objective, gradient, curvature, fused (objective,
 * gradient, curvature: three outputs) and batched fused (the fused one
 * vmapped over the whole batch, for the lock-step solver); the last two
 * NULL when there are none. */
enum { IR_FIT_FN_ALL = 3, IR_FIT_FN_BATCHED = 4, IR_FIT_NFN = 5 };
/* Layout of the info array generated code passes to ir_fit_native_run. */
enum {
    IR_FIT_INFO_K,        /* parameters */
    IR_FIT_INFO_NDATA,    /* data inputs */
    IR_FIT_INFO_NBATCH,   /* batch items (1 when not batched) */
    IR_FIT_INFO_BATCHED,  /* theta0 and the output have the batch axis */
    IR_FIT_INFO_MASK,     /* batched data inputs (bit j: data j) */
    IR_FIT_INFO_MAX_ITER,
    IR_FIT_INFO_RULE,
    IR_FIT_INFO_TOL,      /* the double's bits */
    IR_FIT_INFO_PREVIOUS, /* the output carries the previous iterate (IR_FIT_PREVIOUS) */
    IR_FIT_INFO_NCONST,   /* IR_FIT_NFN entries: constants appended to each function's inputs */
    /* byte offset of the functions' scratch in work */
    IR_FIT_INFO_SCRATCH = IR_FIT_INFO_NCONST + IR_FIT_NFN,
    IR_FIT_INFO_WORK,     /* bytes of the per-item workspace (one batch item's) */
    IR_FIT_INFO_LOCKSTEP, /* byte offset in work of the lock-step region (0: none) */
    IR_FIT_INFO_LBYTES,   /* bytes of one chunk's lock-step region */
    IR_FIT_INFO_LSCRATCH, /* byte offset in the region of the batched function's scratch */
    IR_FIT_INFO_CHUNK,    /* items per call of the batched function (a chunk) */
    IR_FIT_INFO_ITEM      /* ndata entries: elements per batch item of data j */
};
/* The pointer array: the IR_FIT_NFN functions, then the constant arrays
 * (const double *const *) of each, then the batch runner (sj_batch_run of
 * codegen/pool.h; NULL: run the items in order on the calling thread). */
enum {
    IR_FIT_PTR_FN = 0,
    IR_FIT_PTR_CONSTS = IR_FIT_NFN,
    IR_FIT_PTR_RUN = 2 * IR_FIT_NFN,
    IR_FIT_NPTR
};

/* The batch runner's signature (codegen/pool.h's sj_batch_run, declared
 * here again so that ir/ does not include codegen/). */
typedef int32_t ir_fit_item_fn(void *env, int64_t item, int64_t *rec);
typedef int32_t ir_fit_runner(ir_fit_item_fn *body, void *env, int64_t n, int64_t *rec);

/* Workspaces a batched native fit may use at once (one per pool thread:
 * at least CG_POOL_MAX of codegen/pool.h, plus the caller). */
#define IR_FIT_MAX_SLOTS 17

/* One unit (an item, or a lock-step chunk) of a batched native fit, run in
 * the workspace `work`: 0, or a status after writing its error record. */
typedef int32_t ir_fit_unit_fn(const void *env, char *work, int64_t u, int64_t *rec);
/* Runs unit(env, ·, u, ·) for u = 0 .. n-1, each in a workspace of `bytes`
 * (64-aligned): in order in `work` on the calling thread when there is no
 * runner or one unit, else on the runner, one workspace per thread at work
 * (`work` the first; the others allocated by the thread that first needs
 * one, freed after the batch).  A workspace that cannot be allocated fails
 * its unit with SJ_ERR_OUT_OF_MEMORY, the record naming node v and item
 * u·per.  Returns 0 or the first failing unit's status, its record in rec. */
int32_t ir_fit_run_units(ir_fit_runner *runner, ir_fit_unit_fn *unit, const void *env, int64_t n,
                         char *work, size_t bytes, int64_t v, int64_t per, int64_t *rec);

/* Byte offset (64-aligned) at which the functions' scratch starts in the
 * workspace of ir_fit_native_run. */
size_t ir_fit_native_work_bytes(int64_t k, int64_t ndata, int64_t maxconst);

/* ---- lock-step batches (ir/newton_lockstep.c) -------------------------------------- */

/* Bytes (a multiple of 64) of one chunk's lock-step arrays: c items of k
 * parameters, a batched function of ninput inputs, and npad doubles for
 * the padded batched data of a short last chunk. */
size_t ir_fit_lockstep_work_bytes(int64_t k, int64_t c, int64_t ninput, int64_t npad);

/* Runs the items of a batched fit in lock step, in chunks of
 * info[IR_FIT_INFO_CHUNK] items (the last one padded with copies of its
 * first item), the chunks shared among the pool's threads.  Per chunk, each
 * round makes one call of the batched fused function (IR_FIT_FN_BATCHED),
 * which evaluates every item at its own trial point, and each item's state
 * machine (ir_newton's logic under the relative-objective rule) takes its
 * results; finished items keep their point and their results are ignored.
 * The arguments are ir_fit_native_run's.  Returns 0;
 * IR_FIT_LOCKSTEP_FALLBACK when the batched function failed (the caller
 * then runs the items one by one, so that failures mean what they mean
 * there); SJ_ERR_DOMAIN for the first item, in batch order, whose objective
 * is not finite at its start, after writing the record (v, b); or
 * SJ_ERR_OUT_OF_MEMORY when a thread's region cannot be allocated. */
#define IR_FIT_LOCKSTEP_FALLBACK (-1)
int32_t ir_fit_lockstep_run(const void *const *ptrs, const int64_t *info, const double *const *in,
                            double *out, char *work, char *rec, int64_t v);

/* Runs the fit of one fit node natively: in[0] = theta0, in[1 + j] = data j,
 * out the node's output, work its workspace (64-aligned), rec the kernel's
 * error record (CG_SCRATCH_HEADER bytes), v the node.  Returns 0, or the
 * status of an objective that fails at a starting point after writing the
 * record (v, batch item; the first such item in batch order).  A batch of
 * two or more items is shared among the pool's threads through the runner
 * (ptrs[IR_FIT_PTR_RUN]); threads other than the caller get workspaces of
 * their own (allocated per call; SJ_ERR_OUT_OF_MEMORY if that fails).  The
 * items are independent, so the results do not depend on the split. */
int32_t ir_fit_native_run(const void *const *ptrs, const int64_t *info, const double *const *in,
                          double *out, char *work, char *rec, int64_t v);

#endif
