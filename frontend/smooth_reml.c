/* Closed-form Gaussian REML for one smoothing parameter (docs/smooth.md).
 *
 * For X [n, m], Y [n, d] (columns sharing λ), penalty S [m, m] and weights
 * w: with A = XᵀWX = UᵀU (Cholesky) and U⁻ᵀ S U⁻¹ = V diag(s) Vᵀ (one
 * symmetric eigendecomposition, the evaluator's dsyevd kernel), z = Vᵀ U⁻ᵀ XᵀWY,
 * everything is a sum over the eigenvalues:
 *
 *   P_j(λ)  = y_jᵀWy_j − Σ_i z_ij² / (1 + λ s_i)      (RSS + λ β̂ᵀSβ̂)
 *   V(ρ)    = Σ_j (n−M)/2 (1 + log(2π P_j / (n−M)))
 *             + d/2 (Σ_i log(1 + λ s_i) − r ρ + log|A| − log|S|₊)
 *   edf     = Σ_i 1 / (1 + λ s_i)
 *
 * with ρ = log λ, r = rank S, M = m − r and σ²_j = P_j / (n − M) profiled
 * out per column.  V′ and V″ are analytic; ρ is found by a grid over the
 * range where the s_i matter, then safeguarded Newton. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#include "codegen/pool.h"
#include "frontend/handles.h"
#include "ir/alloc.h"
#include "ir/eval_kernels.h"

typedef struct reml_state {
    size_t m, d, r;
    double nm; /* n - M */
    const double *s, *z2; /* s[m], z2[m * d] = z² */
    const double *yy;    /* yᵀWy per column */
    double cst;          /* d/2 (log|A| - log|S|+) */
} reml_state;

/* V, V′, V″ at ρ. */
static double reml_eval(const reml_state *st, double rho, double *d1, double *d2)
{
    double lam = exp(rho), v = 0, g = 0, h = 0, ld = 0, q1 = 0, q2 = 0;
    for (size_t i = 0; i < st->m; i++) {
        double ls = lam * st->s[i], q = ls / (1 + ls);
        ld += log1p(ls);
        q1 += q;
        q2 += q * (1 - q);
    }
    for (size_t j = 0; j < st->d; j++) {
        double p = st->yy[j], p1 = 0, p2 = 0;
        for (size_t i = 0; i < st->m; i++) {
            double ls = lam * st->s[i], a = 1 / (1 + ls), z2 = st->z2[i * st->d + j];
            p -= z2 * a;
            p1 += z2 * ls * a * a;
            p2 += z2 * ls * (1 - ls) * a * a * a;
        }
        if (p <= 0)
            p = 1e-300;
        v += st->nm / 2 * (1 + log(2 * M_PI * p / st->nm));
        g += st->nm / 2 * p1 / p;
        h += st->nm / 2 * (p2 / p - (p1 / p) * (p1 / p));
    }
    v += st->d / 2.0 * (ld - (double)st->r * rho) + st->cst;
    g += st->d / 2.0 * (q1 - (double)st->r);
    h += st->d / 2.0 * q2;
    if (d1)
        *d1 = g;
    if (d2)
        *d2 = h;
    return v;
}

/* Grid, then safeguarded Newton on V′. */
static double reml_search(const reml_state *st, double lo, double hi, int *iters, int *conv)
{
    enum { NGRID = 81 };
    double best = lo, vbest = INFINITY;
    for (int i = 0; i < NGRID; i++) {
        double rho = lo + (hi - lo) * i / (NGRID - 1), v = reml_eval(st, rho, NULL, NULL);
        if (v < vbest)
            vbest = v, best = rho;
    }
    double step0 = (hi - lo) / (NGRID - 1), a = best - step0, b = best + step0;
    double rho = best, v = vbest;
    *conv = 0;
    int it;
    for (it = 0; it < 100; it++) {
        double g, h;
        v = reml_eval(st, rho, &g, &h);
        if (fabs(g) < 1e-10 * (1 + fabs(v))) {
            *conv = 1;
            break;
        }
        double step = h > 0 ? -g / h : (g > 0 ? -step0 : step0);
        if (fabs(step) > step0)
            step = step > 0 ? step0 : -step0;
        double nr = rho + step;
        /* stay in the bracket of the grid minimum */
        if (nr < a)
            nr = 0.5 * (rho + a);
        if (nr > b)
            nr = 0.5 * (rho + b);
        double nv = reml_eval(st, nr, NULL, NULL);
        int k = 0;
        while (nv > v + 1e-12 * (1 + fabs(v)) && k++ < 40) {
            nr = 0.5 * (rho + nr);
            nv = reml_eval(st, nr, NULL, NULL);
        }
        if (fabs(nr - rho) < 1e-14 * (1 + fabs(rho))) {
            *conv = fabs(g) < 1e-6 * (1 + fabs(v));
            break;
        }
        if (g > 0)
            b = rho;
        else
            a = rho;
        rho = nr;
    }
    *iters = it;
    return rho;
}

static sj_status fail_msg(sj_ctx *ctx, sj_status st, const char *msg)
{
    return ctx ? fe_ctx_failf(ctx, st, "sj_smooth_reml: %s", msg) : st;
}

sj_status sj_smooth_reml(sj_ctx *ctx, size_t n, size_t m, size_t d, const double *x,
                         const double *y, const double *s, const double *w, double *beta,
                         double *fitted, sj_smooth_reml_result *res)
{
    if (!x || !y || !s || !res || n == 0 || m == 0 || d == 0 || m > 20000 || n > (1u << 30) ||
        d > 100000)
        return fail_msg(ctx, SJ_ERR_INVALID_ARGUMENT, "NULL array or empty/too large dimension");
    memset(res, 0, sizeof *res);
    size_t mm = m * m;
    size_t nwork = n * m + mm * 4 + m * d * 3 + m + d + n * d;
    double *buf = ir_malloc(nwork * sizeof *buf);
    void *ework = ir_malloc(IR_EIGH_WORK((int64_t)m));
    if (!buf || !ework) {
        ir_free(buf);
        ir_free(ework);
        return fail_msg(ctx, SJ_ERR_OUT_OF_MEMORY, "out of memory");
    }
    double *xw = buf, *a = xw + n * m, *t = a + mm, *c = t + mm, *vec = c + mm, *bz = vec + mm,
           *z2 = bz + m * d, *q = z2 + m * d, *sv = q + m * d, *yy = sv + m, *yw = yy + d;
    sj_status st = SJ_OK;
    const char *msg = NULL;
    for (size_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1.0;
        if (!(wi >= 0) || !isfinite(wi)) {
            st = SJ_ERR_DOMAIN, msg = "weights must be finite and >= 0";
            goto out;
        }
        double sw = sqrt(wi);
        for (size_t j = 0; j < m; j++)
            xw[i * m + j] = sw * x[i * m + j];
        for (size_t j = 0; j < d; j++)
            yw[i * d + j] = sw * y[i * d + j];
    }
    /* A = XᵀWX (full), B = XᵀWY, yᵀWy */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)m, (int)n, 1.0, xw, (int)m,
                xw, (int)m, 0.0, a, (int)m);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)d, (int)n, 1.0, xw, (int)m,
                yw, (int)d, 0.0, bz, (int)d);
    for (size_t j = 0; j < d; j++) {
        yy[j] = 0;
        for (size_t i = 0; i < n; i++)
            yy[j] += yw[i * d + j] * yw[i * d + j];
    }
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)m, a, (lapack_int)m) != 0) {
        st = SJ_ERR_SINGULAR, msg = "XᵀWX is singular (not positive definite): the design has "
                                    "dependent columns or too few weighted rows";
        goto out;
    }
    double logdet_a = 0;
    for (size_t i = 0; i < m; i++)
        logdet_a += 2 * log(a[i * m + i]);
    /* C = U⁻ᵀ S U⁻¹ */
    memcpy(t, s, mm * sizeof *t);
    LAPACKE_dtrtrs(LAPACK_ROW_MAJOR, 'U', 'T', 'N', (lapack_int)m, (lapack_int)m, a, (lapack_int)m,
                   t, (lapack_int)m);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++)
            c[i * m + j] = t[j * m + i];
    LAPACKE_dtrtrs(LAPACK_ROW_MAJOR, 'U', 'T', 'N', (lapack_int)m, (lapack_int)m, a, (lapack_int)m,
                   c, (lapack_int)m);
    for (size_t i = 0; i < m; i++) /* symmetrise against rounding */
        for (size_t j = 0; j < i; j++)
            c[i * m + j] = c[j * m + i] = 0.5 * (c[i * m + j] + c[j * m + i]);
    ir_eigh_kernel(c, (int64_t)m, sv, vec, ework);
    double smax = 0;
    for (size_t i = 0; i < m; i++)
        smax = fmax(smax, sv[i]);
    if (!isfinite(smax)) {
        st = SJ_ERR_DOMAIN, msg = "non-finite values in X, S or the weights";
        goto out;
    }
    size_t r = 0;
    double smin = INFINITY;
    for (size_t i = 0; i < m; i++) {
        if (sv[i] > smax * 1e-10 * (double)m) {
            r++;
            smin = fmin(smin, sv[i]);
        } else
            sv[i] = 0;
    }
    if (r == 0) {
        st = SJ_ERR_DOMAIN, msg = "the penalty has rank 0: there is no smoothing parameter to "
                                  "estimate";
        goto out;
    }
    if ((double)n <= (double)(m - r)) {
        st = SJ_ERR_DOMAIN, msg = "n must exceed the dimension of the penalty's null space";
        goto out;
    }
    /* log|S|+: the eigenvalues of S itself */
    memcpy(t, s, mm * sizeof *t);
    ir_eigh_kernel(t, (int64_t)m, q, NULL, ework);
    double qmax = 0, logdet_s = 0;
    for (size_t i = 0; i < m; i++)
        qmax = fmax(qmax, fabs(q[i]));
    for (size_t i = m - r; i < m; i++)
        logdet_s += log(q[i]);
    (void)qmax;
    /* z = Vᵀ U⁻ᵀ B */
    LAPACKE_dtrtrs(LAPACK_ROW_MAJOR, 'U', 'T', 'N', (lapack_int)m, (lapack_int)d, a, (lapack_int)m,
                   bz, (lapack_int)d);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)d, (int)m, 1.0, vec, (int)m,
                bz, (int)d, 0.0, q, (int)d);
    for (size_t i = 0; i < m * d; i++)
        z2[i] = q[i] * q[i];
    reml_state rs = {m, d, r, (double)n - (double)(m - r), sv, z2, yy,
                     d / 2.0 * (logdet_a - logdet_s)};
    double lo = -log(smax) - 10, hi = -log(smin) + 10;
    res->rho = reml_search(&rs, lo, hi, &res->iterations, &res->converged);
    res->lambda = exp(res->rho);
    res->criterion = reml_eval(&rs, res->rho, &res->gradient, &res->hessian);
    res->df_resid = rs.nm;
    res->ncol = (int)d;
    res->edf = 0;
    for (size_t i = 0; i < m; i++)
        res->edf += 1 / (1 + res->lambda * sv[i]);
    res->rank = (int)r;
    res->at_bound = res->rho <= lo + 1e-9 || res->rho >= hi - 1e-9;
    if (beta || fitted) {
        /* β = U⁻¹ V diag(1/(1+λs)) z */
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < d; j++)
                q[i * d + j] /= 1 + res->lambda * sv[i];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)d, (int)m, 1.0, vec,
                    (int)m, q, (int)d, 0.0, bz, (int)d);
        LAPACKE_dtrtrs(LAPACK_ROW_MAJOR, 'U', 'N', 'N', (lapack_int)m, (lapack_int)d, a,
                       (lapack_int)m, bz, (lapack_int)d);
        if (beta)
            memcpy(beta, bz, m * d * sizeof *beta);
        if (fitted)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)d, (int)m, 1.0, x,
                        (int)m, bz, (int)d, 0.0, fitted, (int)d);
    }
out:
    ir_free(buf);
    ir_free(ework);
    return st == SJ_OK ? SJ_OK : fail_msg(ctx, st, msg);
}

typedef struct batch_env {
    size_t n, m, d;
    const double *x, *y, *s, *w;
    double *beta, *fitted;
    sj_smooth_reml_result *res;
} batch_env;

static int32_t batch_item(void *envp, int64_t item, int64_t *rec)
{
    const batch_env *e = envp;
    size_t b = (size_t)item;
    sj_status st = sj_smooth_reml(NULL, e->n, e->m, e->d, e->x + b * e->n * e->m,
                                  e->y + b * e->n * e->d, e->s, e->w ? e->w + b * e->n : NULL,
                                  e->beta ? e->beta + b * e->m * e->d : NULL,
                                  e->fitted ? e->fitted + b * e->n * e->d : NULL, e->res + b);
    if (st != SJ_OK) {
        rec[0] = 0;
        rec[1] = item;
        rec[2] = rec[3] = 0;
    }
    return (int32_t)st;
}

/* Items run on the batch pool's threads (codegen/pool.h); a failing item is
 * re-run alone to put its message, naming the problem, in ctx. */
sj_status sj_smooth_reml_batch(sj_ctx *ctx, size_t nprob, size_t n, size_t m, size_t d,
                               const double *x, const double *y, const double *s,
                               const double *w, double *beta, double *fitted,
                               sj_smooth_reml_result *res)
{
    if (!res || !x || !y || !s || nprob > ((size_t)1 << 40))
        return fail_msg(ctx, SJ_ERR_INVALID_ARGUMENT, "NULL array or too many problems");
    batch_env e = {n, m, d, x, y, s, w, beta, fitted, res};
    int64_t rec[4] = {0};
    int32_t st = sj_batch_run(batch_item, &e, (int64_t)nprob, rec);
    if (st == 0)
        return SJ_OK;
    size_t b = (size_t)rec[1];
    sj_smooth_reml_result r;
    sj_status st2 = sj_smooth_reml(ctx, n, m, d, x + b * n * m, y + b * n * d, s,
                                   w ? w + b * n : NULL, NULL, NULL, &r);
    if (ctx && st2 != SJ_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", sj_ctx_last_error(ctx));
        fe_ctx_failf(ctx, st2, "problem %zu: %s", b, msg);
    }
    return st2 != SJ_OK ? st2 : (sj_status)st;
}

/* Sum over axis 0 of [n, d] -> [d]. */
static sj_value colsum(sj_graph *g, sj_value v) { return sj_sum(g, v, 1, (int[]){0}); }

/* The REML criterion in ρ up to terms free of ρ (which move neither ρ̂ nor
 * its derivatives): Σ_j (n−M)/2 log P_j + d/2 (log|XᵀWX + λS| − rρ),
 * P_j = y_jᵀWy_j − b_jᵀ(XᵀWX + λS)⁻¹b_j, b = XᵀWY.  rho [1]. */
static sj_value reml_objective(sj_graph *g, sj_value rho, sj_value x, sj_value y, sj_value s,
                               sj_value w, double df_resid, double ncol, double rank)
{
    sj_value xtw = w == SJ_INVALID ? sj_mT(g, x) : sj_mul(g, sj_mT(g, x), w); /* [m, n] */
    sj_value a = sj_matmul(g, xtw, x), b = sj_matmul(g, xtw, y);
    sj_value wy = w == SJ_INVALID ? y : sj_mT(g, sj_mul(g, sj_mT(g, y), w));
    sj_value yy = colsum(g, sj_mul(g, y, wy)); /* [d] */
    sj_value r = sj_sum_all(g, rho), lam = sj_exp(g, r);
    sj_value h = sj_add(g, a, sj_mul(g, lam, s));
    sj_value l = sj_cholesky(g, h);
    sj_value p = sj_sub(g, yy, colsum(g, sj_mul(g, b, sj_cholesky_solve(g, l, b))));
    sj_value v = sj_mul(g, sj_scalar(g, df_resid / 2), sj_sum_all(g, sj_log(g, p)));
    sj_value ld = sj_sub(g, sj_logdet(g, h), sj_mul(g, sj_scalar(g, rank), r));
    return sj_add(g, v, sj_mul(g, sj_scalar(g, ncol / 2), ld));
}

/* Input i of g's shape as names for a new graph's sj_input: sizes as
 * numbers, symbols as sym[k]. */
static void dims_of(sj_graph *g, sj_value v, char buf[][24], const char **names, const char *sym)
{
    ir_val iv = (ir_val)(uint32_t)(uint64_t)v;
    const ir_shape *sh = ir_shape_of(g->ir, iv);
    for (int k = 0; k < sh->rank; k++) {
        if (IR_DIM_IS_SIZE(sh->dim[k])) {
            snprintf(buf[k], 24, "%lld", (long long)sh->dim[k]);
            names[k] = buf[k];
        } else {
            snprintf(buf[k], 24, "%c", sym[k]);
            names[k] = buf[k];
        }
    }
}

sj_status sj_smooth_reml_graph(sj_graph *g, sj_value x, sj_value y, sj_value s, sj_value w,
                               const sj_smooth_reml_result *fit, sj_value *lambda,
                               sj_value *beta, sj_value *fitted)
{
    if (lambda)
        *lambda = SJ_INVALID;
    if (beta)
        *beta = SJ_INVALID;
    if (fitted)
        *fitted = SJ_INVALID;
    if (!fe_graph_valid(g))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!ir_graph_ok(g->ir))
        return g->ir->err.status;
    if (!fit || x == SJ_INVALID || y == SJ_INVALID || s == SJ_INVALID)
        return fe_ctx_failf(g->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_smooth_reml_graph: NULL fit or SJ_INVALID x, y or s");
    if (fit->ncol < 1 || !isfinite(fit->rho) || !(fit->df_resid > 0) || fit->rank < 1)
        return fe_ctx_failf(g->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_smooth_reml_graph: fit is not a result of sj_smooth_reml "
                            "(ncol %d, rho %g, df_resid %g, rank %d)",
                            fit->ncol, fit->rho, fit->df_resid, fit->rank);
    /* validate the values (and their ranks) through the builder */
    sj_value probe[4] = {sj_mT(g, x), sj_mT(g, y), sj_mT(g, s),
                         w == SJ_INVALID ? x : sj_mul(g, w, sj_scalar(g, 1.0))};
    sj_status st = sj_graph_status(g);
    if (st != SJ_OK)
        return st;
    (void)probe;
    sj_value want[4] = {x, y, s, w};
    static const int rank[4] = {2, 2, 2, 1};
    static const char *const what[4] = {"x [n, m]", "y [n, d]", "s [m, m]", "w [n]"};
    for (int i = 0; i < 4; i++) {
        if (want[i] == SJ_INVALID)
            continue;
        const ir_shape *sh = ir_shape_of(g->ir, (ir_val)(uint32_t)(uint64_t)want[i]);
        if (sh->rank != rank[i]) {
            ir_fail(&g->ir->err, SJ_ERR_SHAPE, "sj_smooth_reml_graph: %s has rank %d", what[i],
                    sh->rank);
            return fe_ctx_fail(g->ctx, &g->ir->err);
        }
    }
    /* ρ̂ = argmin of the criterion, as a fit op started at the search's ρ̂:
     * exact derivatives of any order in x, y, s, w (implicit function
     * theorem with the exact d²V/dρ²), and a batch of problems under vmap
     * runs one Newton loop per item. */
    sj_graph *og = NULL;
    sj_fn *obj = NULL;
    char bx[2][24], by[2][24], bs[2][24], bw[1][24];
    const char *nx[2], *ny[2], *ns[2], *nw[1];
    dims_of(g, x, bx, nx, "nm");
    dims_of(g, y, by, ny, "nd");
    dims_of(g, s, bs, ns, "mm");
    int has_w = w != SJ_INVALID;
    if (has_w)
        dims_of(g, w, bw, nw, "n");
    sj_value data[4] = {x, y, s, w};
    if ((st = sj_graph_create(g->ctx, &og)) == SJ_OK) {
        sj_value rho = sj_input(og, "rho", 1, (const char *[]){"1"});
        sj_value ox = sj_input(og, "x", 2, nx), oy = sj_input(og, "y", 2, ny);
        sj_value os = sj_input(og, "s", 2, ns);
        sj_value ow = has_w ? sj_input(og, "w", 1, nw) : SJ_INVALID;
        sj_value f = reml_objective(og, rho, ox, oy, os, ow, fit->df_resid, fit->ncol,
                                    (double)fit->rank);
        if ((st = sj_graph_status(og)) == SJ_OK)
            st = sj_fn_create(og, 1, &f, &obj);
    }
    sj_value th = SJ_INVALID;
    if (st == SJ_OK) {
        int64_t one = 1;
        sj_value rho0 = sj_constant(g, 1, &one, &fit->rho);
        /* gradient rule: |V′| below 1e-9 (V′ is a sum of O(n) terms whose
         * rounding is ~1e-13 n); Newton's steps leave far less */
        st = sj_fit_argmin(g, obj, NULL, rho0, has_w ? 4 : 3, data, 50, SJ_FIT_GRAD_NORM, 1e-9,
                           &th, NULL, NULL);
    }
    sj_fn_free(obj);
    sj_graph_free(og);
    if (st != SJ_OK)
        return st;
    sj_value xtw = has_w ? sj_mul(g, sj_mT(g, x), w) : sj_mT(g, x); /* [m, n] */
    sj_value a = sj_matmul(g, xtw, x), b = sj_matmul(g, xtw, y);
    sj_value lam = sj_exp(g, sj_sum_all(g, th));
    sj_value l = sj_cholesky(g, sj_add(g, a, sj_mul(g, lam, s)));
    sj_value bt = sj_cholesky_solve(g, l, b);
    if (lambda)
        *lambda = lam;
    if (beta)
        *beta = bt;
    if (fitted)
        *fitted = sj_matmul(g, x, bt);
    return sj_graph_status(g);
}
