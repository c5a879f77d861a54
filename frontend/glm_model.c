/* sj_glm: a GLM fitted on concrete data.  The fit is one compiled function
 * (sj_glm_fit_graph, the IRLS loop inside native code) returning β̂ and the
 * per-observation quantities at β̂; the summaries (dispersion, covariance,
 * AIC, BIC) are then computed here as R's summary.glm does.  Before the fit,
 * X is checked for rank deficiency with R's limited-pivoting QR rule
 * (LINPACK dqrdc2, tolerance 1e-7): aliased columns are reported by name. */
#include <cblas.h>
#include <ctype.h>
#include <lapacke.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/cov.h"
#include "frontend/glm_model.h"
#include "frontend/handles.h"
#include "ir/eval_kernels.h"

#define DIMS(...) ((const char *const[]){__VA_ARGS__})

int fe_glm_valid(const sj_glm *m) { return m && m->magic == FE_MAGIC_GLM; }

sj_status fe_glm_enter(const sj_glm *m, const char *fn)
{
    if (!fe_glm_valid(m))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!m->fitted)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT, "%s: the model is not fitted (sj_glm_fit)",
                            fn);
    return SJ_OK;
}

static char *dupstr(const char *s)
{
    size_t k = strlen(s) + 1;
    char *r = malloc(k);
    if (r)
        memcpy(r, s, k);
    return r;
}

void sj_glm_free(sj_glm *m)
{
    if (!fe_glm_valid(m))
        return;
    m->magic = FE_MAGIC_DEAD;
    sj_glm_family_free(m->fam);
    if (m->names)
        for (int j = 0; j < m->p; j++)
            free(m->names[j]);
    free(m->names);
    free(m->x), free(m->y), free(m->w), free(m->off);
    free(m->beta), free(m->eta), free(m->mu), free(m->ww), free(m->var), free(m->mueta);
    free(m->devres), free(m->xtwx_inv);
    free(m->aliased), free(m->message);
    free(m);
}

sj_status sj_glm_create(sj_ctx *ctx, const char *family, const char *link, size_t n, int p,
                        const double *X, const char *const *xnames, const double *y,
                        const double *weights, const double *offset, sj_glm **out)
{
    const char *fn = "sj_glm_create";
    if (!fe_ctx_valid(ctx))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!out || !family || !X || !y)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                            !out ? "out" : !family ? "family" : !X ? "X" : "y");
    *out = NULL;
    if (p < 1 || n < 1 || (size_t)p > n)
        return fe_ctx_failf(ctx, SJ_ERR_SHAPE, "%s: need 1 <= p <= n, got n = %zu, p = %d", fn, n,
                            p);
    for (size_t i = 0; i < n * (size_t)p; i++)
        if (!isfinite(X[i]))
            return fe_ctx_failf(ctx, SJ_ERR_DOMAIN, "%s: X[%zu, %zu] is not finite", fn,
                                i / (size_t)p + 1, i % (size_t)p + 1);
    if (offset)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(offset[i]))
                return fe_ctx_failf(ctx, SJ_ERR_DOMAIN, "%s: offset row %zu is not finite", fn,
                                    i + 1);
    /* A bare "power" has no exponent here (sj_glm_family_create takes it as
     * an argument): R's power(lambda) is spelled "power(lambda)". */
    if (link) {
        static const char pw[] = "power";
        size_t k = 0;
        while (k < sizeof pw - 1 && tolower((unsigned char)link[k]) == pw[k])
            k++;
        if (k == sizeof pw - 1 && link[k] == '\0')
            return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT,
                                "%s: link \"power\" needs its exponent: write \"power(p)\", "
                                "e.g. \"power(0.5)\" or \"power(1/3)\" (R's power(lambda))",
                                fn);
    }
    sj_glm_family *fam = NULL;
    sj_status st = sj_glm_family_create(ctx, family, link, 0.0, &fam);
    if (st != SJ_OK)
        return st;
    if ((st = sj_glm_check_response(fam, y, weights, n)) != SJ_OK) {
        sj_glm_family_free(fam);
        return st;
    }
    sj_glm *m = calloc(1, sizeof *m);
    if (!m) {
        sj_glm_family_free(fam);
        return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    m->magic = FE_MAGIC_GLM;
    m->ctx = ctx;
    m->fam = fam;
    m->n = n;
    m->p = p;
    m->singular_ok = 1;
    m->x = malloc(n * (size_t)p * sizeof *m->x);
    m->y = malloc(n * sizeof *m->y);
    m->w = malloc(n * sizeof *m->w);
    m->off = malloc(n * sizeof *m->off);
    m->names = calloc((size_t)p, sizeof *m->names);
    int ok = m->x && m->y && m->w && m->off && m->names;
    for (int j = 0; ok && j < p; j++) {
        char buf[32];
        if (!xnames || !xnames[j])
            snprintf(buf, sizeof buf, "X%d", j + 1);
        ok = (m->names[j] = dupstr(xnames && xnames[j] ? xnames[j] : buf)) != NULL;
    }
    if (!ok) {
        sj_glm_free(m);
        return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    memcpy(m->x, X, n * (size_t)p * sizeof *X);
    memcpy(m->y, y, n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        m->w[i] = weights ? weights[i] : 1.0;
        m->off[i] = offset ? offset[i] : 0.0;
    }
    for (int j = 0; j < p && !m->intercept; j++) {
        int ones = 1;
        for (size_t i = 0; i < n && ones; i++)
            ones = X[i * (size_t)p + (size_t)j] == 1.0;
        m->intercept = ones;
    }
    *out = m;
    return SJ_OK;
}

sj_status sj_glm_set_theta(sj_glm *m, double theta)
{
    if (!fe_glm_valid(m))
        return SJ_ERR_INVALID_ARGUMENT;
    m->fitted = 0;
    sj_status st = sj_glm_family_set_theta(m->fam, theta);
    if (st == SJ_OK)
        m->theta_fixed = 1;
    return st;
}

sj_status sj_glm_theta(const sj_glm *m, double *theta, double *std_error)
{
    sj_status st = fe_glm_enter(m, "sj_glm_theta");
    if (st != SJ_OK)
        return st;
    if (m->fam->id != FE_FAMILY_NEGATIVE_BINOMIAL)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_glm_theta: the %s family has no theta", sj_glm_model_family_name(m));
    if (theta)
        *theta = m->theta_fixed ? m->fam->theta : m->nb_theta;
    if (std_error)
        *std_error = m->theta_fixed ? NAN : m->nb_theta_se;
    return SJ_OK;
}

/* ---- rank ------------------------------------------------------------------------------ */

/* The lower triangle of Σ s_i² x_i x_iᵀ over the rows of m->x into a
 * (p × p), with s_i = √wt_i (sqrt_weights) or 1, rows of wt_i <= 0 left
 * out: one cache-sized dsyrk per block of rows.  -1 when out of memory. */
static int gram_lower(const sj_glm *m, const double *wt, int sqrt_weights, double *a)
{
    size_t n = m->n, p = (size_t)m->p;
    memset(a, 0, p * p * sizeof *a);
    enum { ROWS = 256 };
    double *blk = malloc(ROWS * p * sizeof *blk);
    if (!blk)
        return -1;
    for (size_t i0 = 0; i0 < n; i0 += ROWS) {
        size_t nr = n - i0 < ROWS ? n - i0 : ROWS;
        for (size_t i = 0; i < nr; i++) {
            double wi = wt[i0 + i], s = wi > 0 ? (sqrt_weights ? sqrt(wi) : 1.0) : 0.0;
            for (size_t j = 0; j < p; j++)
                blk[i * p + j] = s * m->x[(i0 + i) * p + j];
        }
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (blasint)p, (blasint)nr, 1.0, blk,
                    (blasint)p, 1.0, a, (blasint)p);
    }
    free(blk);
    return 0;
}

/* Whether X (rows of positive weight) has full column rank by a margin
 * that makes rank_check's verdict certain, from the Cholesky of its Gram
 * matrix scaled to unit diagonal: pivot j² is the share of column j's
 * squared norm left after projecting out the earlier columns, the square of
 * rank_check's ratio.  All above 1e-4 (ratios above 1e-2, against tol =
 * 1e-7) keeps the scaled Gram's condition below about 1e4·p, so rounding
 * (about p·eps·1e4) cannot move a verdict.  1: full rank; 0: undecided
 * (Gram-Schmidt decides); -1: out of memory.  A dsyrk pass instead of
 * 2p² dot/axpy passes over the columns: 40 ms to 3 ms at n = 1e5, p = 20. */
static int clearly_full_rank(const sj_glm *m)
{
    size_t p = (size_t)m->p;
    double *a = malloc(p * p * sizeof *a);
    if (!a || gram_lower(m, m->w, 0, a) != 0) {
        free(a);
        return -1;
    }
    int full = 1;
    for (size_t j = 0; j < p && full; j++)
        full = a[j * p + j] > 0;
    for (size_t j = 0; j < p && full; j++) {
        for (size_t l = 0; l < j; l++)
            a[j * p + l] /= sqrt(a[j * p + j] * a[l * p + l]);
    }
    for (size_t j = 0; j < p && full; j++) { /* unit diagonal, Cholesky in place */
        double d = 1.0;
        for (size_t l = 0; l < j; l++)
            d -= a[j * p + l] * a[j * p + l];
        full = d > 1e-4;
        for (size_t i = j + 1; i < p && full; i++) {
            double t = a[i * p + j];
            for (size_t l = 0; l < j; l++)
                t -= a[i * p + l] * a[j * p + l];
            a[i * p + j] = t / sqrt(d);
        }
    }
    free(a);
    return full;
}

/* R's dqrdc2 rule: columns in order; a column whose norm after projecting
 * out the accepted columns is below tol times its original norm is aliased.
 * Rows of zero weight are left out, as glm.fit does.  Returns the rank and
 * marks aliased[j]; -1 when out of memory. */
static int rank_check(const sj_glm *m, double tol, int *aliased)
{
    size_t n = m->n, p = (size_t)m->p, nr = 0;
    int full = clearly_full_rank(m);
    if (full != 0) {
        memset(aliased, 0, p * sizeof *aliased);
        return full > 0 ? (int)p : -1;
    }
    double *q = malloc(n * p * sizeof *q), *v = malloc(n * sizeof *v);
    if (!q || !v) {
        free(q), free(v);
        return -1;
    }
    int rank = 0;
    for (size_t j = 0; j < p; j++) {
        nr = 0;
        for (size_t i = 0; i < n; i++)
            if (m->w[i] > 0)
                v[nr++] = m->x[i * p + j];
        double norm0 = 0;
        for (size_t i = 0; i < nr; i++)
            norm0 += v[i] * v[i];
        norm0 = sqrt(norm0);
        for (int pass = 0; pass < 2; pass++) /* Gram-Schmidt twice */
            for (int k = 0; k < rank; k++) {
                const double *qk = q + (size_t)k * n;
                /* four partial sums: one chain of dependent adds made this
                 * loop a third of a whole fit at n = 1e5 (not OpenBLAS's
                 * ddot/daxpy: they go multi-threaded at this size, and their
                 * thread hand-offs stall on a loaded machine) */
                double d0 = 0, d1 = 0, d2 = 0, d3 = 0;
                size_t i = 0;
                for (; i + 4 <= nr; i += 4) {
                    d0 += qk[i] * v[i];
                    d1 += qk[i + 1] * v[i + 1];
                    d2 += qk[i + 2] * v[i + 2];
                    d3 += qk[i + 3] * v[i + 3];
                }
                for (; i < nr; i++)
                    d0 += qk[i] * v[i];
                double d = (d0 + d1) + (d2 + d3);
                for (i = 0; i < nr; i++)
                    v[i] -= d * qk[i];
            }
        double norm = 0;
        for (size_t i = 0; i < nr; i++)
            norm += v[i] * v[i];
        norm = sqrt(norm);
        aliased[j] = !(norm > tol * (norm0 > 0 ? norm0 : 1.0)) || norm0 == 0;
        if (!aliased[j]) {
            for (size_t i = 0; i < nr; i++)
                q[(size_t)rank * n + i] = v[i] / norm;
            rank++;
        }
    }
    free(q), free(v);
    return rank;
}

/* ---- the compiled fit -------------------------------------------------------------------- */

enum { O_BETA, O_ITER, O_CONV, O_ETA, O_MU, O_WW, O_VAR, O_MUETA, O_DEVRES, O_DEV, O_AIC, O_NULLDEV, NOUT };

static sj_status build(sj_glm *m, int max_iter, sj_fn **out)
{
    sj_graph *g = NULL;
    sj_status st = sj_graph_create(m->ctx, &g);
    if (st != SJ_OK)
        return st;
    sj_glm_family *fam = m->fam;
    char p[24]; /* a concrete p: the fit's previous iterate needs one */
    snprintf(p, sizeof p, "%d", m->p);
    sj_value x = sj_input(g, "X", 2, DIMS("n", p));
    sj_value y = sj_input(g, "y", 1, DIMS("n"));
    sj_value w = sj_input(g, "weights", 1, DIMS("n"));
    sj_value off = sj_input(g, "offset", 1, DIMS("n"));
    sj_value o[NOUT], previous = SJ_INVALID;
    st = fe_glm_fit_graph(g, fam, x, y, w, off, max_iter, &o[O_BETA], &o[O_ITER], &o[O_CONV],
                          &previous);
    if (st == SJ_OK) {
        sj_value eta = sj_add(g, sj_matmul(g, x, o[O_BETA]), off);
        sj_value mu = sj_glm_linkinv(g, fam, eta);
        o[O_ETA] = eta;
        o[O_MU] = mu;
        /* R's fit$weights are the working weights of the last IRLS
         * iteration, at the iterate before β̂; summary.glm, vcov, hatvalues,
         * cooks.distance and sandwich use them (our iterates are R's). */
        o[O_WW] = sj_glm_working_weights(g, fam, sj_add(g, sj_matmul(g, x, previous), off), w);
        o[O_VAR] = sj_glm_variance(g, fam, mu);
        o[O_MUETA] = sj_glm_mu_eta(g, fam, eta);
        o[O_DEVRES] = sj_glm_dev_resids(g, fam, y, mu, w);
        o[O_DEV] = sj_sum_all(g, o[O_DEVRES]);
        o[O_AIC] = sj_glm_aic(g, fam, y, mu, w, o[O_DEV]);
        /* R's null deviance: the weighted mean without an offset, an
         * intercept-only fit with one, g⁻¹(offset) without an intercept. */
        sj_value mu0;
        int has_off = 0;
        for (size_t i = 0; i < m->n; i++)
            has_off |= m->off[i] != 0;
        if (!m->intercept) {
            mu0 = sj_glm_linkinv(g, fam, off);
        } else if (!has_off) {
            sj_value wm = sj_div(g, sj_sum_all(g, sj_mul(g, w, y)), sj_sum_all(g, w));
            mu0 = sj_add(g, sj_mul(g, y, sj_scalar(g, 0.0)), wm);
        } else {
            sj_value ones = sj_add(g, sj_mul(g, y, sj_scalar(g, 0.0)), sj_scalar(g, 1.0));
            sj_value x1 = sj_reshape(g, ones, 2, DIMS("n", "1")), b1 = SJ_INVALID;
            st = sj_glm_fit_graph(g, fam, x1, y, w, off, max_iter, &b1, NULL, NULL);
            mu0 = sj_glm_linkinv(g, fam, sj_add(g, sj_matmul(g, x1, b1), off));
        }
        o[O_NULLDEV] = sj_glm_deviance(g, fam, y, mu0, w);
    }
    if (st == SJ_OK)
        st = sj_graph_status(g);
    if (st == SJ_OK)
        st = sj_fn_create(g, NOUT, o, out);
    sj_graph_free(g);
    return st;
}

static sj_status alloc_results(sj_glm *m)
{
    size_t n = m->n, p = (size_t)m->p;
    double **a[] = {&m->eta, &m->mu, &m->ww, &m->var, &m->mueta, &m->devres};
    if (!m->beta && !(m->beta = malloc(p * sizeof(double))))
        return SJ_ERR_OUT_OF_MEMORY;
    if (!m->xtwx_inv && !(m->xtwx_inv = malloc(p * p * sizeof(double))))
        return SJ_ERR_OUT_OF_MEMORY;
    for (size_t k = 0; k < sizeof a / sizeof *a; k++)
        if (!*a[k] && !(*a[k] = malloc(n * sizeof(double))))
            return SJ_ERR_OUT_OF_MEMORY;
    return SJ_OK;
}

/* (XᵀWX)⁻¹ at β̂ through Cholesky. */
static sj_status invert_xtwx(sj_glm *m)
{
    size_t p = (size_t)m->p;
    double *a = m->xtwx_inv;
    if (gram_lower(m, m->ww, 1, a) != 0)
        return fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_glm_fit: out of memory");
    lapack_int info = LAPACKE_dpotrf_work(LAPACK_ROW_MAJOR, 'L', (lapack_int)p, a, (lapack_int)p);
    if (info == 0)
        info = LAPACKE_dpotri_work(LAPACK_ROW_MAJOR, 'L', (lapack_int)p, a, (lapack_int)p);
    if (info != 0)
        return fe_ctx_failf(m->ctx, SJ_ERR_NOT_POSITIVE_DEFINITE,
                            "sj_glm_fit: XᵀWX at the estimate is not positive definite");
    for (size_t j = 0; j < p; j++)
        for (size_t k = j + 1; k < p; k++)
            a[j * p + k] = a[k * p + j];
    return SJ_OK;
}

/* One IRLS fit with m->fam, and R's summary quantities. */
static sj_status fit_core(sj_glm *m, int max_iter)
{
    size_t n = m->n, p = (size_t)m->p;
    sj_status st;
    sj_fn *f = NULL;
    st = build(m, max_iter, &f);
    if (st != SJ_OK)
        return st;
    int64_t nn = (int64_t)n, pp = (int64_t)p;
    const int64_t *dims[4] = {(int64_t[]){nn, pp}, &nn, &nn, &nn};
    double iter = 0, conv = 0, dev = 0, aicf = 0, nulldev = 0;
    double *outs[NOUT] = {m->beta, &iter, &conv, m->eta, m->mu, m->ww, m->var, m->mueta,
                          m->devres, &dev, &aicf, &nulldev};
    st = sj_fn_call(f, 4, (int[]){2, 1, 1, 1}, dims,
                    (const double *[]){m->x, m->y, m->w, m->off}, outs);
    sj_fn_free(f);
    if (st != SJ_OK)
        return st;
    m->converged = conv != 0;
    m->iterations = (int)iter;
    if ((st = invert_xtwx(m)) != SJ_OK)
        return st;
    m->deviance = dev;
    m->null_deviance = nulldev;
    double nok = 0, pearson = 0;
    for (size_t i = 0; i < n; i++)
        if (m->w[i] > 0) {
            nok++;
            double r = (m->y[i] - m->mu[i]) / m->mueta[i]; /* working residual */
            pearson += m->ww[i] * r * r;
        }
    m->n_ok = nok;
    m->df_residual = nok - (double)p;
    m->df_null = nok - (m->intercept ? 1.0 : 0.0);
    int disp = sj_glm_family_has_dispersion(m->fam);
    m->dispersion = disp ? (m->df_residual > 0 ? pearson / m->df_residual : NAN) : 1.0;
    m->aic = aicf + 2.0 * (double)p;
    m->loglik = (double)disp - aicf / 2.0;
    m->bic = -2.0 * m->loglik + log(nok) * ((double)p + disp);
    return SJ_OK;
}

/* ---- negative binomial θ: MASS::glm.nb's alternation ---------------------------------- */

/* MASS's theta.ml: Newton on the profile score of θ from the moment start,
 * at most limit steps, |step| <= eps^(1/4).  *info gets the information. */
static double theta_ml(const sj_glm *m, const double *mu, int limit, double *info)
{
    double sw = 0, t0 = 0;
    for (size_t i = 0; i < m->n; i++) {
        double r = m->y[i] / mu[i] - 1;
        sw += m->w[i];
        t0 += m->w[i] * r * r;
    }
    t0 = sw / t0;
    double del = 1, in = NAN;
    for (int it = 1; it < limit && fabs(del) > 1.220703125e-4; it++) {
        t0 = fabs(t0);
        double sc = 0;
        in = 0;
        for (size_t i = 0; i < m->n; i++) {
            double y = m->y[i], u = mu[i], w = m->w[i];
            sc += w * (ir_digamma(t0 + y) - ir_digamma(t0) + log(t0) + 1 - log(t0 + u) -
                       (y + t0) / (u + t0));
            in += w * (-ir_polygamma(1, t0 + y) + ir_polygamma(1, t0) - 1 / t0 + 2 / (u + t0) -
                       (y + t0) / ((u + t0) * (u + t0)));
        }
        del = sc / in;
        t0 += del;
    }
    *info = in;
    return t0 < 0 ? 0 : t0;
}

/* MASS's loglik(n, th, mu, y, w). */
static double nb_loglik(const sj_glm *m, double th, const double *mu)
{
    double l = 0;
    for (size_t i = 0; i < m->n; i++) {
        double y = m->y[i], u = mu[i];
        l += m->w[i] * (lgamma(th + y) - lgamma(th) - lgamma(y + 1) + th * log(th) +
                        y * log(u + (y == 0)) - (th + y) * log(th + u));
    }
    return l;
}

/* glm.nb: a poisson fit, then fits with θ fixed alternating with theta.ml
 * until |ΔLm|/d1 + |Δθ|/d2 <= 1e-8 (glm.control's epsilon), at most 25
 * rounds.  θ is estimated from the μ before each refit, as MASS does. */
static sj_status fit_nb(sj_glm *m, int max_iter)
{
    const char *fn = "sj_glm_fit";
    sj_glm_family *nb = m->fam, *po = NULL;
    char link[32];
    snprintf(link, sizeof link, "%s", nb->link.name);
    sj_status st = sj_glm_family_create(m->ctx, "poisson", link, 0.0, &po);
    if (st != SJ_OK)
        return st;
    m->fam = po;
    st = fit_core(m, max_iter);
    m->fam = nb;
    sj_glm_family_free(po);
    if (st != SJ_OK)
        return st;
    int limit = max_iter ? max_iter : 25;
    double *mu = malloc(m->n * sizeof *mu), info = NAN;
    if (!mu)
        return fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    memcpy(mu, m->mu, m->n * sizeof *mu);
    double th = theta_ml(m, mu, limit, &info);
    double d1 = sqrt(2 * fmax(1, m->df_residual)), d2 = 1, del = 1;
    double lm = nb_loglik(m, th, mu), lm0 = lm + 2 * d1;
    int iter = 0;
    while (++iter <= limit && fabs(lm0 - lm) / d1 + fabs(del) / d2 > 1e-8) {
        nb->theta = th;
        if ((st = fit_core(m, max_iter)) != SJ_OK)
            break;
        double t0 = th;
        th = theta_ml(m, mu, limit, &info);
        memcpy(mu, m->mu, m->n * sizeof *mu);
        del = t0 - th;
        lm0 = lm;
        lm = nb_loglik(m, th, mu);
    }
    free(mu);
    if (st != SJ_OK)
        return st;
    /* The model is the last fit; θ, logLik and AIC are MASS's final ones. */
    m->nb_theta = th;
    m->nb_theta_se = sqrt(1 / info);
    m->nb_converged = iter <= limit;
    m->loglik = lm;
    m->aic = -2 * lm + 2 * (double)m->p + 2;
    m->bic = -2 * lm + log(m->n_ok) * ((double)m->p + 1);
    return SJ_OK;
}

/* Appends a warning of the fit to m->message ("; " between two). */
static void warn(sj_glm *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(sj_glm *m, const char *fmt, ...)
{
    char buf[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t old = m->message ? strlen(m->message) : 0, add = strlen(buf);
    char *s = realloc(m->message, old + add + 3);
    if (!s)
        return; /* the message is lost, the fit is not */
    snprintf(s + old, add + 3, "%s%s", old ? "; " : "", buf);
    m->message = s;
}

/* Moves the results of a fit on the `rank` columns that are not aliased
 * into their places among all p: β̂ NaN where aliased, (XᵀWX)⁻¹ 0 in the
 * aliased rows and columns.  In place, from the end (no entry is read after
 * it is overwritten: a source index never exceeds its destination). */
static void expand_aliased(sj_glm *m)
{
    int p = m->p, r = m->rank;
    for (int j = p - 1, rj = r - 1; j >= 0; j--)
        m->beta[j] = m->aliased[j] ? NAN : m->beta[rj--];
    int *col = malloc((size_t)p * sizeof *col); /* reduced index of column j, or -1 */
    int k = 0;
    if (!col) /* cannot happen in practice; keep a consistent (zero) covariance */
        return (void)memset(m->xtwx_inv, 0, (size_t)p * (size_t)p * sizeof *m->xtwx_inv);
    for (int j = 0; j < p; j++)
        col[j] = m->aliased[j] ? -1 : k++;
    for (int j = p - 1; j >= 0; j--)
        for (int l = p - 1; l >= 0; l--)
            m->xtwx_inv[(size_t)j * (size_t)p + (size_t)l] =
                col[j] < 0 || col[l] < 0
                    ? 0.0
                    : m->xtwx_inv[(size_t)col[j] * (size_t)r + (size_t)col[l]];
    free(col);
}

/* R's warnings after glm.fit, and ours for an exact fit. */
static void fit_warnings(sj_glm *m)
{
    const double eps = 10 * DBL_EPSILON; /* glm.fit's */
    if (!m->converged)
        warn(m, "glm.fit: algorithm did not converge (%d iterations); the estimates are the "
                "last iterate", m->iterations);
    size_t lo = 0, hi = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->w[i] > 0) {
            lo += m->mu[i] < eps;
            hi += m->mu[i] > 1 - eps;
        }
    if (m->fam->id == FE_FAMILY_BINOMIAL && lo + hi > 0)
        warn(m, "glm.fit: fitted probabilities numerically 0 or 1 occurred (%zu of %.0f rows): "
                "the data are (quasi-)separated, some coefficients are tending to +-Inf and "
                "their standard errors are not meaningful", lo + hi, m->n_ok);
    if ((m->fam->id == FE_FAMILY_POISSON || m->fam->id == FE_FAMILY_NEGATIVE_BINOMIAL) && lo > 0)
        warn(m, "glm.fit: fitted rates numerically 0 occurred (%zu of %.0f rows): some "
                "coefficients are tending to -Inf", lo, m->n_ok);
    /* Every response at the edge of the family's support: the likelihood
     * has no maximum (η → ∓Inf); R stops by its rule without a warning. */
    fe_family_id fid = m->fam->id;
    size_t y0 = 0, y1 = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->w[i] > 0) {
            y0 += m->y[i] == 0;
            y1 += m->y[i] == 1;
        }
    int binom = fid == FE_FAMILY_BINOMIAL;
    int counts = fid == FE_FAMILY_POISSON || fid == FE_FAMILY_NEGATIVE_BINOMIAL;
    if (m->n_ok > 0 && ((binom && ((double)y0 == m->n_ok || (double)y1 == m->n_ok)) ||
                        (counts && (double)y0 == m->n_ok)))
        warn(m, "every response is %s: the maximum-likelihood estimate does not exist (the "
                "linear predictor tends to %s); the estimates are the iterate where the "
                "convergence rule stopped", (double)y0 == m->n_ok ? "0" : "1",
             (double)y0 == m->n_ok ? "-Inf" : "+Inf");
    double syy = 0;
    for (size_t i = 0; i < m->n; i++)
        syy += m->w[i] * m->y[i] * m->y[i];
    m->exact = sj_glm_family_has_dispersion(m->fam) == 1 &&
               m->deviance <= 1e-20 * fmax(syy, 1e-300);
    if (m->exact)
        warn(m, "the fit is exact (residual deviance %.3g): the dispersion is 0, standard "
                "errors are 0, z/t statistics and p-values are undefined (NaN) and the "
                "log-likelihood unbounded (AIC -Inf or meaningless)", m->deviance);
}

sj_status sj_glm_fit(sj_glm *m, int max_iter)
{
    const char *fn = "sj_glm_fit";
    if (!fe_glm_valid(m))
        return SJ_ERR_INVALID_ARGUMENT;
    if (max_iter < 0)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT, "%s: max_iter = %d must be >= 0", fn,
                            max_iter);
    m->fitted = 0;
    free(m->message);
    m->message = NULL;
    size_t n = m->n, p = (size_t)m->p;
    if (!m->aliased && !(m->aliased = calloc(p, sizeof *m->aliased)))
        return fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    int rank = rank_check(m, 1e-7, m->aliased);
    if (rank < 0)
        return fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    char list[512] = "";
    size_t len = 0;
    for (size_t j = 0; j < p && len < sizeof list - 8; j++)
        if (m->aliased[j])
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "",
                                    m->names[j]);
    if (rank < (int)p && (!m->singular_ok || rank == 0))
        return fe_ctx_failf(m->ctx, SJ_ERR_SINGULAR,
                            "%s: X is rank deficient (rank %d < %zu columns): coefficients not "
                            "defined because of singularities (aliased): %s%s",
                            fn, rank, p, list,
                            rank == 0 ? " (no column is left to fit)"
                                      : " (singular.ok is off: sj_glm_set_singular_ok)");
    if (alloc_results(m) != SJ_OK)
        return fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    /* Fit on the columns that are not aliased, as glm.fit does after its
     * pivoted QR: m->x and m->p are the reduced design during the fit. */
    double *xfull = m->x, *xr = NULL;
    if (rank < (int)p) {
        if (!(xr = malloc(n * (size_t)rank * sizeof *xr)))
            return fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0, k = 0; j < p; j++)
                if (!m->aliased[j])
                    xr[i * (size_t)rank + k++] = xfull[i * p + j];
        m->x = xr;
        m->p = rank;
    }
    sj_status st = m->fam->id == FE_FAMILY_NEGATIVE_BINOMIAL && !m->theta_fixed
                       ? fit_nb(m, max_iter)
                       : fit_core(m, max_iter);
    m->x = xfull;
    m->p = (int)p;
    m->rank = rank;
    free(xr);
    if (st != SJ_OK)
        return st;
    if (rank < (int)p) {
        expand_aliased(m);
        warn(m, "X is rank deficient (rank %d < %zu columns): %zu coefficient%s not defined "
                "because of singularities (aliased, NA): %s",
             rank, p, p - (size_t)rank, p - (size_t)rank > 1 ? "s" : "", list);
    }
    fit_warnings(m);
    m->fitted = 1;
    return SJ_OK;
}

sj_status sj_glm_set_singular_ok(sj_glm *m, int singular_ok)
{
    if (!fe_glm_valid(m))
        return SJ_ERR_INVALID_ARGUMENT;
    if (singular_ok != 0 && singular_ok != 1)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_glm_set_singular_ok: singular_ok = %d must be 0 or 1", singular_ok);
    m->singular_ok = singular_ok;
    m->fitted = 0;
    return SJ_OK;
}

int sj_glm_rank(const sj_glm *m) { return fe_glm_valid(m) && m->fitted ? m->rank : -1; }

sj_status sj_glm_aliased(const sj_glm *m, int i, int *aliased)
{
    sj_status st = fe_glm_enter(m, "sj_glm_aliased");
    if (st != SJ_OK)
        return st;
    if (i < 0 || i >= m->p || !aliased)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_glm_aliased: %s", !aliased ? "aliased is NULL"
                                                           : "coefficient index out of range");
    *aliased = fe_glm_aliased(m, i);
    return SJ_OK;
}

const char *sj_glm_message(const sj_glm *m)
{
    if (!fe_glm_valid(m) || !m->fitted)
        return NULL;
    return m->message ? m->message : "";
}

int sj_glm_ncoef(const sj_glm *m) { return fe_glm_valid(m) ? m->p : -1; }

const char *sj_glm_model_family_name(const sj_glm *m)
{
    return fe_glm_valid(m) ? (sj_glm_family_name)(m->fam) : NULL;
}

const char *sj_glm_model_link_name(const sj_glm *m)
{
    return fe_glm_valid(m) ? (sj_glm_link_name)(m->fam) : NULL;
}

sj_status sj_glm_convergence(const sj_glm *m, int *converged, int *iterations)
{
    sj_status st = fe_glm_enter(m, "sj_glm_convergence");
    if (st != SJ_OK)
        return st;
    if (converged)
        *converged = m->converged;
    if (iterations)
        *iterations = m->iterations;
    return SJ_OK;
}

sj_status sj_glm_stats(const sj_glm *m, double *deviance, double *null_deviance,
                       double *df_residual, double *df_null, double *aic, double *bic,
                       double *dispersion, double *loglik)
{
    sj_status st = fe_glm_enter(m, "sj_glm_stats");
    if (st != SJ_OK)
        return st;
    double *o[] = {deviance, null_deviance, df_residual, df_null, aic, bic, dispersion, loglik};
    double v[] = {m->deviance, m->null_deviance, m->df_residual, m->df_null,
                  m->aic,      m->bic,           m->dispersion,  m->loglik};
    for (int k = 0; k < 8; k++)
        if (o[k])
            *o[k] = v[k];
    return SJ_OK;
}

/* ---- link evaluation for predict and residuals ------------------------------------------- */

sj_status fe_glm_eval_link(const sj_glm *m, int which, size_t n, const double *in, double *out)
{
    sj_graph *g = NULL;
    sj_status st = sj_graph_create(m->ctx, &g);
    if (st != SJ_OK)
        return st;
    sj_value e = sj_input(g, "eta", 1, DIMS("n"));
    sj_value r = which == 0 ? sj_glm_linkinv(g, m->fam, e) : sj_glm_mu_eta(g, m->fam, e);
    sj_fn *f = NULL;
    st = sj_graph_status(g);
    if (st == SJ_OK)
        st = sj_fn_create(g, 1, &r, &f);
    sj_graph_free(g);
    if (st != SJ_OK)
        return st;
    sj_compiled *c = NULL;
    int64_t nn = (int64_t)n;
    st = sj_fn_specialize(f, 1, (int[]){1}, (const int64_t *[]){&nn}, &c);
    if (st == SJ_OK)
        st = sj_compiled_eval(c, (const double *[]){in}, (double *[]){out});
    sj_compiled_free(c);
    sj_fn_free(f);
    return st;
}

/* ---- distributions -------------------------------------------------------------------------- */

double fe_pnorm_upper(double z) { return ir_ndtr(-z); }
double fe_qnorm(double p) { return ir_ndtri(p); }

/* Continued fraction of the regularised incomplete beta (Lentz). */
static double betacf(double a, double b, double x)
{
    const double tiny = 1e-300, eps = 1e-16;
    double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < tiny)
        d = tiny;
    d = 1 / d;
    double h = d;
    for (int k = 1; k < 10000; k++) {
        double m2 = 2.0 * k, aa = k * (b - k) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        d = fabs(d) < tiny ? tiny : d;
        c = 1 + aa / c;
        c = fabs(c) < tiny ? tiny : c;
        d = 1 / d;
        h *= d * c;
        aa = -(a + k) * (qab + k) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        d = fabs(d) < tiny ? tiny : d;
        c = 1 + aa / c;
        c = fabs(c) < tiny ? tiny : c;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < eps)
            break;
    }
    return h;
}

/* I_x(a, b). */
static double ibeta(double a, double b, double x)
{
    if (x <= 0)
        return 0;
    if (x >= 1)
        return 1;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2))
        return exp(lbt) * betacf(a, b, x) / a;
    return 1 - exp(lbt) * betacf(b, a, 1 - x) / b;
}

double fe_pt_two_sided(double t, double df)
{
    if (isnan(t) || isnan(df))
        return NAN;
    if (isinf(df))
        return 2 * fe_pnorm_upper(fabs(t));
    return ibeta(df / 2, 0.5, df / (df + t * t));
}

/* Upper regularised incomplete gamma Q(a, x). */
static double gammq(double a, double x)
{
    if (x <= 0)
        return 1;
    double gln = lgamma(a);
    if (x < a + 1) { /* series for P */
        double ap = a, sum = 1 / a, del = sum;
        for (int k = 0; k < 100000; k++) {
            ap += 1;
            del *= x / ap;
            sum += del;
            if (fabs(del) < fabs(sum) * 1e-17)
                break;
        }
        return 1 - sum * exp(-x + a * log(x) - gln);
    }
    const double tiny = 1e-300;
    double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
    for (int i = 1; i < 100000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        d = fabs(d) < tiny ? tiny : d;
        c = b + an / c;
        c = fabs(c) < tiny ? tiny : c;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-16)
            break;
    }
    return exp(-x + a * log(x) - gln) * h;
}

double fe_pchisq_upper(double x, double df) { return gammq(df / 2, x / 2); }
