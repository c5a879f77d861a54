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
} ir_newton_fns;

typedef struct ir_newton_settings {
    int64_t k, max_iter;
    double tol;
    int rule; /* sj_fit_rule */
} ir_newton_settings;

/* Step halvings tried per Newton step (R's glm). */
#define IR_NEWTON_MAX_HALVINGS 30

/* Doubles of workspace ir_newton needs for k parameters. */
size_t ir_newton_work(int64_t k);

/* Minimises from theta0.  On SJ_OK, out[0..k) is the best point found,
 * out[k] the number of Newton steps taken and out[k + 1] 1.0 if the rule
 * held, else 0.0; the values are always finite.  A step is C⁻¹∇f (C through
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
    IR_FIT_INFO_NCONST,   /* 3 entries: constants appended to each function's inputs */
    IR_FIT_INFO_SCRATCH = IR_FIT_INFO_NCONST + 3, /* byte offset of the functions' scratch in work */
    IR_FIT_INFO_ITEM      /* ndata entries: elements per batch item of data j */
};
/* The pointer array: the objective, gradient and curvature functions, then
 * the constant arrays (const double *const *) of each. */
enum { IR_FIT_PTR_FN = 0, IR_FIT_PTR_CONSTS = 3, IR_FIT_NPTR = 6 };

/* Byte offset (64-aligned) at which the functions' scratch starts in the
 * workspace of ir_fit_native_run. */
size_t ir_fit_native_work_bytes(int64_t k, int64_t ndata, int64_t maxconst);

/* Runs the fit of one fit node natively: in[0] = theta0, in[1 + j] = data j,
 * out the node's output, work its workspace (64-aligned), rec the kernel's
 * error record (CG_SCRATCH_HEADER bytes), v the node.  Returns 0, or the
 * status of an objective that fails at a starting point after writing the
 * record (v, batch item). */
int32_t ir_fit_native_run(const void *const *ptrs, const int64_t *info, const double *const *in,
                          double *out, char *work, char *rec, int64_t v);

#endif
