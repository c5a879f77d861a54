/* The lock-step solver of batched fits (ir/newton.h, docs/fit.md "Lock-step
 * batches").
 *
 * Run item by item, a batch of B GLM fits costs B × (Newton steps) calls of
 * the fused function, each a handful of small BLAS calls on n rows whose
 * fixed costs (packing, thread hand-off) dominate at p = 10.  Here every
 * round makes ONE call of the batched fused function, which evaluates all
 * items at their own trial points with a few large GEMMs, and each item's
 * state machine consumes its slice of the results.  The state machine is
 * ir_newton's loop under the relative-objective rule, cut at each
 * evaluation: start → (step → trial → halve …)* → done.  Only the summation
 * order of the batched function differs, so the iterates are those of the
 * per-item solver up to rounding.  Finished items keep their point (their
 * trial is set back to it, so the batched call stays finite) and their
 * results are ignored.
 *
 * The batch is cut into chunks of a size fixed at compile time (the
 * batched function is compiled for one chunk), run on the pool's threads:
 * the elementwise work and libm calls, which no GEMM takes over, are then
 * shared among the cores, and a chunk's GEMMs are still large.  A short
 * last chunk is padded with copies of its first item, which are never
 * stepped and never written.  Chunks are independent, so the results do
 * not depend on the threads. */
#include "ir/newton.h"

#include <math.h>
#include <string.h>

#include "ir/alloc.h"

enum { LS_TRIAL, LS_DONE };

/* One item's state between evaluations. */
typedef struct ls_item {
    double f;           /* objective at theta */
    double t;           /* current step fraction */
    double slack;       /* accepted increase: rounding of f */
    double full_change; /* relative change of the full step (h = 0) */
    int64_t iters;
    int h, phase;
} ls_item;

/* One chunk's solver: its arrays in a lock-step region. */
typedef struct ls {
    int64_t k, nb, max_iter; /* nb: the chunk's real items (the rest is padding) */
    int previous;            /* outputs carry the iterate before the last step */
    double tol;
    double *theta, *trial, *step; /* [c, k] */
    double *fo, *go, *co;         /* the batched function's outputs: [c], [c, k], [c, k, k] */
    double *l;                    /* [k, k]: the Cholesky factor of one step */
    ls_item *item;                /* [c] */
    const double **in;            /* the batched function's inputs */
    double *pad;                  /* the batched data of a short chunk, padded */
    double *out;                  /* the chunk's first item's output */
} ls;

/* Byte sizes of the region's arrays, in layout order. */
enum { LS_THETA, LS_TRIAL_A, LS_STEP, LS_FO, LS_GO, LS_CO, LS_L, LS_ITEM, LS_IN, LS_PAD, LS_N };
static void sizes(int64_t k, int64_t c, int64_t ninput, int64_t npad, size_t *sz)
{
    size_t d = sizeof(double), ck = (size_t)(c * k);
    size_t s[LS_N] = {ck * d, ck * d, ck * d, (size_t)c * d, ck * d, ck * (size_t)k * d,
                      (size_t)(k * k) * d, (size_t)c * sizeof(ls_item),
                      (size_t)ninput * sizeof(void *), (size_t)npad * d};
    for (int i = 0; i < LS_N; i++)
        sz[i] = ir_align64(s[i]);
}

size_t ir_fit_lockstep_work_bytes(int64_t k, int64_t c, int64_t ninput, int64_t npad)
{
    size_t sz[LS_N], total = 0;
    sizes(k, c, ninput, npad, sz);
    for (int i = 0; i < LS_N; i++)
        total += sz[i];
    return total;
}

static void layout(ls *S, char *region, int64_t c, int64_t ninput, int64_t npad)
{
    size_t sz[LS_N];
    void *at[LS_N];
    sizes(S->k, c, ninput, npad, sz);
    for (int i = 0; i < LS_N; region += sz[i], i++)
        at[i] = region;
    S->theta = at[LS_THETA];
    S->trial = at[LS_TRIAL_A];
    S->step = at[LS_STEP];
    S->fo = at[LS_FO];
    S->go = at[LS_GO];
    S->co = at[LS_CO];
    S->l = at[LS_L];
    S->item = at[LS_ITEM];
    S->in = at[LS_IN];
    S->pad = at[LS_PAD];
}

static int all_finite(const double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Item b stops at theta: its output is written, its trial frozen there. */
static void finish(ls *S, int64_t b, int converged)
{
    ls_item *it = &S->item[b];
    int64_t k = S->k;
    it->phase = LS_DONE;
    memcpy(S->trial + b * k, S->theta + b * k, (size_t)k * sizeof(double));
    ir_newton_output(S->out + b * ir_newton_out_len(k, S->previous), S->theta + b * k, k,
                     it->iters, converged);
}

/* Item b's previous iterate (its output's tail) is its current point. */
static void note_previous(ls *S, int64_t b)
{
    int64_t k = S->k;
    if (S->previous)
        memcpy(S->out + b * ir_newton_out_len(k, 1) + k + 2, S->theta + b * k,
               (size_t)k * sizeof(double));
}

/* trial = theta − t · step for item b. */
static void set_trial(ls *S, int64_t b)
{
    int64_t k = S->k;
    double t = S->item[b].t;
    for (int64_t i = 0; i < k; i++)
        S->trial[b * k + i] = S->theta[b * k + i] - t * S->step[b * k + i];
}

/* Item b is at an accepted point whose f, ∇f and C are in the outputs of
 * the last call: the next Newton step, or the end (ir_newton's checks in
 * its order). */
static void next_step(ls *S, int64_t b)
{
    ls_item *it = &S->item[b];
    int64_t k = S->k;
    const double *g = S->go + b * k, *c = S->co + b * k * k;
    if (!all_finite(g, k) || it->iters >= S->max_iter ||
        ir_newton_solve_step(c, g, S->step + b * k, S->l, k) != 0) {
        finish(S, b, 0);
        return;
    }
    it->phase = LS_TRIAL;
    it->h = 0;
    it->t = 1.0;
    it->full_change = INFINITY;
    it->slack = IR_NEWTON_ROUNDING * (fabs(it->f) + 0.1);
    set_trial(S, b);
}

/* Item b's trial point was evaluated: accept it, halve the step, or stop
 * when no halving is left (converged if the objective has stalled at
 * rounding level, as in ir_newton). */
static void take_trial(ls *S, int64_t b)
{
    ls_item *it = &S->item[b];
    int64_t k = S->k;
    double ft = S->fo[b];
    if (isfinite(ft)) {
        if (it->h == 0)
            it->full_change = fabs(ft - it->f) / (fabs(ft) + 0.1);
        if (ft <= it->f + it->slack) {
            double change = fabs(ft - it->f) / (fabs(ft) + 0.1);
            note_previous(S, b);
            memcpy(S->theta + b * k, S->trial + b * k, (size_t)k * sizeof(double));
            it->f = ft;
            it->iters++;
            if (change < S->tol)
                finish(S, b, 1);
            else
                next_step(S, b);
            return;
        }
    }
    if (it->h < IR_NEWTON_MAX_HALVINGS) {
        it->h++;
        it->t *= 0.5;
        set_trial(S, b);
        return;
    }
    finish(S, b, it->full_change < S->tol);
}

/* The start of every item (all evaluated at theta0 in the first call): the
 * first item, in batch order, whose objective or theta0 is not finite ends
 * the batch with SJ_ERR_DOMAIN, as ir_newton does for one item. */
static int64_t take_start(ls *S)
{
    int64_t k = S->k;
    for (int64_t b = 0; b < S->nb; b++)
        if (!isfinite(S->fo[b]) || !all_finite(S->trial + b * k, k))
            return b;
    memcpy(S->theta, S->trial, (size_t)(S->nb * k) * sizeof(double));
    for (int64_t b = 0; b < S->nb; b++) {
        S->item[b] = (ls_item){.f = S->fo[b]};
        note_previous(S, b);
        next_step(S, b);
    }
    return -1;
}

/* What every chunk shares. */
typedef struct ls_job {
    const int64_t *info;
    const double *const *in;
    double *out;
    int64_t v, chunk, ndata, nconst, npad;
    ir_kernel_fn *fn;
    const double *const *consts;
} ls_job;

/* The inputs of the batched function for the chunk of items b0 .. b0 + m:
 * the trial points, the data (a short chunk's batched data copied into
 * S->pad and padded with its first item), the constants. */
static void chunk_inputs(const ls_job *J, ls *S, int64_t b0, int64_t m)
{
    const int64_t *info = J->info;
    int64_t k = S->k, c = J->chunk, mask = info[IR_FIT_INFO_MASK];
    double *pad = S->pad;
    S->in[0] = S->trial;
    memcpy(S->trial, J->in[0] + b0 * k, (size_t)(m * k) * sizeof(double));
    for (int64_t b = m; b < c; b++)
        memcpy(S->trial + b * k, S->trial, (size_t)k * sizeof(double));
    for (int64_t j = 0; j < J->ndata; j++) {
        int64_t item = info[IR_FIT_INFO_ITEM + j];
        const double *x = J->in[1 + j];
        if (!((mask >> j) & 1)) {
            S->in[1 + j] = x;
        } else if (m == c) {
            S->in[1 + j] = x + b0 * item;
        } else {
            memcpy(pad, x + b0 * item, (size_t)(m * item) * sizeof(double));
            for (int64_t b = m; b < c; b++)
                memcpy(pad + b * item, pad, (size_t)item * sizeof(double));
            S->in[1 + j] = pad;
            pad += c * item;
        }
    }
    for (int64_t i = 0; i < J->nconst; i++)
        S->in[1 + J->ndata + i] = J->consts[i];
}

/* Runs chunk q in the region `region`: rounds until every item is done. */
static int32_t run_chunk(const void *env, char *region, int64_t q, int64_t *rec)
{
    const ls_job *J = env;
    const int64_t *info = J->info;
    int64_t k = info[IR_FIT_INFO_K], b0 = q * J->chunk, m = info[IR_FIT_INFO_NBATCH] - b0;
    int previous = info[IR_FIT_INFO_PREVIOUS] != 0;
    ls S = {.k = k, .nb = m < J->chunk ? m : J->chunk, .max_iter = info[IR_FIT_INFO_MAX_ITER],
            .previous = previous, .out = J->out + b0 * ir_newton_out_len(k, previous)};
    memcpy(&S.tol, &info[IR_FIT_INFO_TOL], sizeof S.tol);
    layout(&S, region, J->chunk, 1 + J->ndata + J->nconst, J->npad);
    chunk_inputs(J, &S, b0, S.nb);
    double *const res[3] = {S.fo, S.go, S.co};
    char *scratch = region + info[IR_FIT_INFO_LSCRATCH];
    for (int round = 0;; round++) {
        if (J->fn((const double *const *)S.in, res, scratch) != 0)
            return IR_FIT_LOCKSTEP_FALLBACK;
        if (round == 0) {
            int64_t bad = take_start(&S);
            if (bad >= 0) {
                int64_t r[4] = {J->v, b0 + bad, 0, 0};
                memcpy(rec, r, sizeof r);
                return (int32_t)SJ_ERR_DOMAIN;
            }
        } else {
            for (int64_t b = 0; b < S.nb; b++)
                if (S.item[b].phase == LS_TRIAL)
                    take_trial(&S, b);
        }
        int active = 0;
        for (int64_t b = 0; b < S.nb && !active; b++)
            active = S.item[b].phase != LS_DONE;
        if (!active)
            return 0;
    }
}

/* Doubles of a short chunk's padded copies of the batched data. */
static int64_t pad_doubles(const int64_t *info)
{
    int64_t n = 0;
    for (int64_t j = 0; j < info[IR_FIT_INFO_NDATA]; j++)
        if ((info[IR_FIT_INFO_MASK] >> j) & 1)
            n += info[IR_FIT_INFO_ITEM + j];
    return n * info[IR_FIT_INFO_CHUNK];
}

int32_t ir_fit_lockstep_run(const void *const *ptrs, const int64_t *info, const double *const *in,
                            double *out, char *work, char *rec, int64_t v)
{
    ls_job J = {.info = info, .in = in, .out = out, .v = v, .chunk = info[IR_FIT_INFO_CHUNK],
                .ndata = info[IR_FIT_INFO_NDATA],
                .nconst = info[IR_FIT_INFO_NCONST + IR_FIT_FN_BATCHED], .npad = pad_doubles(info),
                .consts = ptrs[IR_FIT_PTR_CONSTS + IR_FIT_FN_BATCHED]};
    memcpy(&J.fn, &ptrs[IR_FIT_PTR_FN + IR_FIT_FN_BATCHED], sizeof J.fn);
    int64_t nchunk = (info[IR_FIT_INFO_NBATCH] + J.chunk - 1) / J.chunk;
    ir_fit_runner *runner;
    memcpy(&runner, &ptrs[IR_FIT_PTR_RUN], sizeof runner);
    int64_t r[4] = {0};
    int32_t st = ir_fit_run_units(runner, run_chunk, &J, nchunk, work + info[IR_FIT_INFO_LOCKSTEP],
                                  (size_t)info[IR_FIT_INFO_LBYTES], v, J.chunk, r);
    if (st != 0)
        memcpy(rec, r, sizeof r);
    return st;
}
