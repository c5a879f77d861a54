/* The solver of the fit op (docs/fit.md): damped Newton with step halving,
 * generic over callbacks that evaluate the objective, its gradient and the
 * curvature at a point.  The reference evaluator (ir/eval_fit.c) runs it over
 * ir_eval of a problem's sub-graphs; native code (codegen/lower_fit.c) calls
 * ir_fit_native_run, which runs it over the compiled sub-graph functions, so
 * the whole loop runs inside the compiled kernel.  No LLVM here. */
#ifndef IR_NEWTON_H
#define IR_NEWTON_H

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

/* ---- native code ---------------------------------------------------------------- */

/* A compiled sub-graph: int32_t f(const double *const *in, double *const *out,
 * char *scratch), as codegen/codegen.h describes kernels. */
typedef int32_t ir_kernel_fn(const double *const *in, double *const *out, char *scratch);

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
    IR_FIT_INFO_NCONST,   /* 4 entries: constants appended to each function's inputs */
    IR_FIT_INFO_SCRATCH = IR_FIT_INFO_NCONST + 4, /* byte offset of the functions' scratch in work */
    IR_FIT_INFO_WORK,     /* bytes of the whole workspace (one batch item's) */
    IR_FIT_INFO_ITEM      /* ndata entries: elements per batch item of data j */
};
/* The pointer array: the objective, gradient, curvature and fused
 * (objective, gradient, curvature: three outputs; NULL when there is none)
 * functions, then the constant arrays (const double *const *) of each, then
 * the batch runner (sj_batch_run of codegen/pool.h; NULL: run the items in
 * order on the calling thread). */
enum { IR_FIT_PTR_FN = 0, IR_FIT_PTR_CONSTS = 4, IR_FIT_PTR_RUN = 8, IR_FIT_NPTR = 9 };
/* The fused function's index among the four. */
#define IR_FIT_FN_ALL 3

/* The batch runner's signature (codegen/pool.h's sj_batch_run, declared
 * here again so that ir/ does not include codegen/). */
typedef int32_t ir_fit_item_fn(void *env, int64_t item, int64_t *rec);
typedef int32_t ir_fit_runner(ir_fit_item_fn *body, void *env, int64_t n, int64_t *rec);

/* Workspaces a batched native fit may use at once (one per pool thread:
 * at least CG_POOL_MAX of codegen/pool.h, plus the caller). */
#define IR_FIT_MAX_SLOTS 17

/* Byte offset (64-aligned) at which the functions' scratch starts in the
 * workspace of ir_fit_native_run. */
size_t ir_fit_native_work_bytes(int64_t k, int64_t ndata, int64_t maxconst);

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
