/* Damped Newton for the fit op; see ir/newton.h and docs/fit.md.
 *
 * The loop is R's glm.fit (IRLS is Newton with Fisher information as the
 * curvature): a step is accepted when the objective at the new point is
 * finite and not larger than at the current one; otherwise the step is
 * halved, up to 30 times.  The relative-objective rule is glm's
 * |dev - devold| / (|dev| + 0.1) < epsilon. */
#include "ir/newton.h"

#include "ir/alloc.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

size_t ir_newton_work(int64_t k)
{
    return (size_t)(5 * k + 3 * k * k + 1);
}

/* In-place lower Cholesky of the k×k row-major a (reads the lower
 * triangle); 0 on success, -1 if not positive definite. */
static int cholesky(double *a, int64_t k)
{
    for (int64_t j = 0; j < k; j++) {
        double d = a[j * k + j];
        for (int64_t p = 0; p < j; p++)
            d -= a[j * k + p] * a[j * k + p];
        if (!(d > 0) || !isfinite(d))
            return -1;
        d = sqrt(d);
        a[j * k + j] = d;
        for (int64_t i = j + 1; i < k; i++) {
            double s = a[i * k + j];
            for (int64_t p = 0; p < j; p++)
                s -= a[i * k + p] * a[j * k + p];
            a[i * k + j] = s / d;
        }
    }
    return 0;
}

/* step = (C + λI)⁻¹ g, with the smallest λ of 0, λ0, 10 λ0, ... that makes
 * C + λI positive definite (λ0 = 1e-10 max(1, max |Cᵢᵢ|)).  l is k×k
 * workspace.  0 on success. */
int ir_newton_solve_step(const double *c, const double *g, double *step, double *l, int64_t k)
{
    double scale = 1.0;
    for (int64_t i = 0; i < k * k; i++)
        if (!isfinite(c[i]))
            return -1;
    for (int64_t i = 0; i < k; i++)
        scale = fmax(scale, fabs(c[i * k + i]));
    double lambda = 0.0;
    for (int attempt = 0; attempt < 40; attempt++) {
        memcpy(l, c, (size_t)(k * k) * sizeof *l);
        for (int64_t i = 0; i < k; i++)
            l[i * k + i] += lambda;
        if (cholesky(l, k) == 0) {
            for (int64_t i = 0; i < k; i++) { /* L y = g */
                double s = g[i];
                for (int64_t p = 0; p < i; p++)
                    s -= l[i * k + p] * step[p];
                step[i] = s / l[i * k + i];
            }
            for (int64_t i = k; i-- > 0;) { /* Lᵀ x = y */
                double s = step[i];
                for (int64_t p = i + 1; p < k; p++)
                    s -= l[p * k + i] * step[p];
                step[i] = s / l[i * k + i];
            }
            for (int64_t i = 0; i < k; i++)
                if (!isfinite(step[i]))
                    return -1;
            return 0;
        }
        lambda = lambda > 0 ? lambda * 10 : 1e-10 * scale;
    }
    return -1;
}

static int all_finite(const double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

sj_status ir_newton(const ir_newton_fns *fns, const ir_newton_settings *s, const double *theta0,
                    double *out, double *work)
{
    int64_t k = s->k;
    double *theta = work, *trial = theta + k, *grad = trial + k, *step = grad + k;
    double *c = step + k, *l = c + k * k, *grad_t = l + k * k, *c_t = grad_t + k;
    memcpy(theta, theta0, (size_t)k * sizeof *theta);
    ir_newton_output(out, theta0, k, 0, 0);
    double *previous = s->previous ? out + k + 2 : NULL;
    if (previous)
        memcpy(previous, theta0, (size_t)k * sizeof *previous);
    /* The fused callback: f, ∇f and C in one evaluation at the start and at
     * each full step (the point accepted in almost every IRLS step).  have
     * says that grad and c hold ∇f and C at theta. */
    int fused = fns->all && s->rule == SJ_FIT_REL_OBJECTIVE, have = 0;
    double f;
    sj_status st = fused ? fns->all(fns->ctx, theta, &f, grad, c) : SJ_ERR_INTERNAL;
    if (st == SJ_OK)
        have = 1;
    else
        st = fns->objective(fns->ctx, theta, &f);
    if (st != SJ_OK)
        return st;
    if (!isfinite(f) || !all_finite(theta, k))
        return SJ_ERR_DOMAIN;
    int64_t iters = 0;
    int converged = 0;
    for (;;) {
        if (!have && fns->gradient(fns->ctx, theta, grad) != SJ_OK)
            break;
        if (!all_finite(grad, k))
            break;
        if (s->rule == SJ_FIT_GRAD_NORM) {
            double norm = 0.0;
            for (int64_t i = 0; i < k; i++)
                norm = fmax(norm, fabs(grad[i]));
            if (norm < s->tol) {
                converged = 1;
                break;
            }
        }
        if (iters >= s->max_iter)
            break;
        if ((!have && fns->curvature(fns->ctx, theta, c) != SJ_OK) ||
            ir_newton_solve_step(c, grad, step, l, k) != 0)
            break;
        double t = 1.0, ft = NAN, full_change = INFINITY;
        /* An increase at rounding level is no increase: near the optimum the
         * Newton step's decrease (½ gᵀC⁻¹g) falls below the rounding of f,
         * and rejecting it would stall the fit at √eps accuracy. */
        double slack = IR_NEWTON_ROUNDING * (fabs(f) + 0.1);
        int accepted = 0, have_t = 0;
        for (int h = 0; h <= IR_NEWTON_MAX_HALVINGS; h++, t *= 0.5) {
            for (int64_t i = 0; i < k; i++)
                trial[i] = theta[i] - t * step[i];
            have_t = fused && h == 0 && fns->all(fns->ctx, trial, &ft, grad_t, c_t) == SJ_OK;
            if (!have_t && fns->objective(fns->ctx, trial, &ft) != SJ_OK)
                continue;
            if (!isfinite(ft))
                continue;
            if (h == 0)
                full_change = fabs(ft - f) / (fabs(ft) + 0.1);
            if (ft <= f + slack) {
                accepted = 1;
                break;
            }
        }
        if (!accepted) {
            /* No decrease: converged only if f has stalled at rounding level. */
            converged = s->rule == SJ_FIT_REL_OBJECTIVE && full_change < s->tol;
            break;
        }
        double change = fabs(ft - f) / (fabs(ft) + 0.1);
        if (previous)
            memcpy(previous, theta, (size_t)k * sizeof *previous);
        memcpy(theta, trial, (size_t)k * sizeof *theta);
        have = have_t;
        if (have) {
            memcpy(grad, grad_t, (size_t)k * sizeof *grad);
            memcpy(c, c_t, (size_t)(k * k) * sizeof *c);
        }
        f = ft;
        iters++;
        if (s->rule == SJ_FIT_REL_OBJECTIVE && change < s->tol) {
            converged = 1;
            break;
        }
    }
    ir_newton_output(out, theta, k, iters, converged);
    return SJ_OK;
}

void ir_newton_output(double *out, const double *theta, int64_t k, int64_t iters, int converged)
{
    memmove(out, theta, (size_t)k * sizeof *out);
    out[k] = (double)iters;
    out[k + 1] = converged ? 1.0 : 0.0;
}

/* ---- native code ---------------------------------------------------------------- */

size_t ir_fit_native_work_bytes(int64_t k, int64_t ndata, int64_t maxconst)
{
    size_t bytes = ir_newton_work(k) * sizeof(double) +
                   (size_t)(1 + ndata + maxconst + 1) * sizeof(void *);
    return ir_align64(bytes);
}

typedef struct native {
    ir_kernel_fn *fn[4];
    const double *const *consts[4];
    int64_t nconst[4], ndata;
    const double **in; /* theta, data of the item, then constants */
    char *scratch;
} native;

static sj_status call(native *n, int which, const double *theta, double *const *res)
{
    n->in[0] = theta;
    for (int64_t i = 0; i < n->nconst[which]; i++)
        n->in[1 + n->ndata + i] = n->consts[which][i];
    return (sj_status)n->fn[which]((const double *const *)n->in, res, n->scratch);
}

static sj_status native_objective(void *ctx, const double *theta, double *f)
{
    return call(ctx, 0, theta, (double *[]){f});
}
static sj_status native_gradient(void *ctx, const double *theta, double *g)
{
    return call(ctx, 1, theta, (double *[]){g});
}
static sj_status native_curvature(void *ctx, const double *theta, double *c)
{
    return call(ctx, 2, theta, (double *[]){c});
}
static sj_status native_all(void *ctx, const double *theta, double *f, double *g, double *c)
{
    return call(ctx, IR_FIT_FN_ALL, theta, (double *[]){f, g, c});
}

/* What every batch item shares: the node's description and arrays. */
typedef struct fit_job {
    const void *const *ptrs;
    const int64_t *info;
    const double *const *in;
    double *out;
    int64_t v;
} fit_job;

/* Workspaces of one batched native fit, one per thread at work: slot 0 is
 * the caller's, the others are allocated by the thread that first needs
 * one (`bytes` each, 64-aligned) and freed after the batch. */
typedef struct fit_slots {
    size_t bytes;
    char *slot[IR_FIT_MAX_SLOTS], *raw[IR_FIT_MAX_SLOTS]; /* raw: as allocated */
    atomic_int busy[IR_FIT_MAX_SLOTS];
    ir_fit_unit_fn *unit;
    const void *env;
    int64_t v, per;
} fit_slots;

/* Takes a free workspace: its index in *i; NULL when it cannot be
 * allocated (*i is then still taken: give it back). */
static char *slot_take(fit_slots *s, int *i)
{
    for (*i = 0; *i < IR_FIT_MAX_SLOTS; ++*i) {
        if (atomic_exchange_explicit(&s->busy[*i], 1, memory_order_acquire) != 0)
            continue;
        if (!s->slot[*i] && (s->raw[*i] = ir_malloc(s->bytes + 64)))
            s->slot[*i] = (char *)(((uintptr_t)s->raw[*i] + 63) & ~(uintptr_t)63);
        return s->slot[*i];
    }
    *i = -1; /* more threads than slots: cannot happen */
    return NULL;
}

/* A pool item: unit u in a free workspace. */
static int32_t pool_unit(void *env, int64_t u, int64_t *rec)
{
    fit_slots *s = env;
    int i;
    char *work = slot_take(s, &i);
    int32_t st = work ? s->unit(s->env, work, u, rec)
                      : (int32_t)(i < 0 ? SJ_ERR_INTERNAL : SJ_ERR_OUT_OF_MEMORY);
    if (!work) {
        int64_t r[4] = {s->v, u * s->per, 0, 0};
        memcpy(rec, r, sizeof r);
    }
    if (i >= 0)
        atomic_store_explicit(&s->busy[i], 0, memory_order_release);
    return st;
}

int32_t ir_fit_run_units(ir_fit_runner *runner, ir_fit_unit_fn *unit, const void *env, int64_t n,
                         char *work, size_t bytes, int64_t v, int64_t per, int64_t *rec)
{
    if (n < 2 || !runner) {
        for (int64_t u = 0; u < n; u++) {
            int64_t r[4] = {0};
            int32_t st = unit(env, work, u, r);
            if (st != 0) {
                memcpy(rec, r, sizeof r);
                return st;
            }
        }
        return 0;
    }
    fit_slots s = {.bytes = bytes, .unit = unit, .env = env, .v = v, .per = per};
    s.slot[0] = work;
    for (int i = 0; i < IR_FIT_MAX_SLOTS; i++)
        atomic_init(&s.busy[i], 0);
    int64_t r[4] = {0};
    int32_t st = runner(pool_unit, &s, n, r);
    for (int i = 1; i < IR_FIT_MAX_SLOTS; i++)
        ir_free(s.raw[i]);
    if (st != 0)
        memcpy(rec, r, sizeof r);
    return st;
}

/* Runs item b in the workspace `work`. */
static int32_t run_item(const void *env, char *work, int64_t b, int64_t *rec)
{
    const fit_job *J = env;
    const int64_t *info = J->info;
    int64_t k = info[IR_FIT_INFO_K], ndata = info[IR_FIT_INFO_NDATA];
    int64_t batched = info[IR_FIT_INFO_BATCHED], mask = info[IR_FIT_INFO_MASK];
    ir_newton_settings s = {.k = k, .max_iter = info[IR_FIT_INFO_MAX_ITER],
                            .rule = (int)info[IR_FIT_INFO_RULE],
                            .previous = info[IR_FIT_INFO_PREVIOUS] != 0};
    memcpy(&s.tol, &info[IR_FIT_INFO_TOL], sizeof s.tol);
    native n = {.ndata = ndata};
    for (int i = 0; i < IR_FIT_FN_BATCHED; i++) {
        memcpy(&n.fn[i], &J->ptrs[IR_FIT_PTR_FN + i], sizeof n.fn[i]);
        n.consts[i] = J->ptrs[IR_FIT_PTR_CONSTS + i];
        n.nconst[i] = info[IR_FIT_INFO_NCONST + i];
    }
    double *nw = (double *)(void *)work;
    n.in = (const double **)(void *)(work + ir_newton_work(k) * sizeof(double));
    n.scratch = work + info[IR_FIT_INFO_SCRATCH];
    ir_newton_fns fns = {&n, native_objective, native_gradient, native_curvature,
                         n.fn[IR_FIT_FN_ALL] ? native_all : NULL};
    for (int64_t j = 0; j < ndata; j++) {
        int64_t off = batched && ((mask >> j) & 1) ? b * info[IR_FIT_INFO_ITEM + j] : 0;
        n.in[1 + j] = J->in[1 + j] + off;
    }
    const double *theta0 = J->in[0] + (batched ? b * k : 0);
    sj_status st = ir_newton(&fns, &s, theta0, J->out + b * ir_newton_out_len(k, s.previous), nw);
    if (st != SJ_OK) {
        int64_t r[4] = {J->v, b, 0, 0};
        memcpy(rec, r, sizeof r);
        return (int32_t)st;
    }
    return 0;
}

int32_t ir_fit_native_run(const void *const *ptrs, const int64_t *info, const double *const *in,
                          double *out, char *work, char *rec, int64_t v)
{
    int64_t nb = info[IR_FIT_INFO_NBATCH];
    if (ptrs[IR_FIT_PTR_FN + IR_FIT_FN_BATCHED]) {
        int32_t st = ir_fit_lockstep_run(ptrs, info, in, out, work, rec, v);
        if (st != IR_FIT_LOCKSTEP_FALLBACK)
            return st;
    }
    fit_job J = {.ptrs = ptrs, .info = info, .in = in, .out = out, .v = v};
    ir_fit_runner *runner;
    memcpy(&runner, &ptrs[IR_FIT_PTR_RUN], sizeof runner);
    int64_t r[4] = {0};
    int32_t st = ir_fit_run_units(runner, run_item, &J, nb, work, (size_t)info[IR_FIT_INFO_WORK],
                                  v, 1, r);
    if (st != 0)
        memcpy(rec, r, sizeof r);
    return st;
}
