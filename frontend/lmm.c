/* Linear mixed models from matrices (sj_lmm): y = Xβ + Σ_t Z_t b_t + ε,
 * b_t ~ N(0, G_t ⊗ I_levels) per term, ε ~ N(0, σ²I).
 *
 * The model is assembled as a covariance tree (docs/covariance.md)
 *
 *   V = Σ_t Z_t (Σ_t ⊗ I_{L_t}) Z_tᵀ + σ² I,   Z_t = [onehot(c_t) ∘ z_t1 | … | onehot(c_t) ∘ z_tk]
 *
 * written densely so the structure rewrites (docs/structure.md: Woodbury,
 * Kronecker, one-hot) turn the criterion into O(n + q³) work.  Σ_t is
 * unstructured (L Lᵀ, log-Cholesky) for a correlated term, diagonal
 * (log standard deviations) otherwise, a scalar for k = 1; σ² through
 * exp(2θ).  The criterion (sj_reml_criterion / sj_ml_deviance) is minimised
 * by the fit op (sj_fit_argmin: damped Newton with the exact Hessian,
 * gradient-norm rule, a V that is not positive definite is a rejected step);
 * the whole Newton loop and the criterion at θ̂ are one native call, the
 * exact Hessian at θ̂ (standard errors of θ) a second one.  Results are in
 * frontend/lmm_results.c, printing in frontend/lmm_summary.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lapacke.h>

#include "frontend/handles.h"
#include "frontend/lmm.h"

static char *dupstr(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void free_strs(char **s, int n)
{
    if (!s)
        return;
    for (int i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

static char **dup_strs(const char *const *s, int n, const char *fallback)
{
    char **d = calloc((size_t)(n > 0 ? n : 1), sizeof *d);
    if (!d)
        return NULL;
    for (int i = 0; i < n; i++) {
        char buf[32];
        const char *src = s && s[i] ? s[i] : NULL;
        if (!src) {
            snprintf(buf, sizeof buf, "%s%d", fallback, i + 1);
            src = buf;
        }
        if (!(d[i] = dupstr(src))) {
            free_strs(d, n);
            return NULL;
        }
    }
    return d;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

sj_status sj_lmm_create(sj_ctx *ctx, size_t n, int p, const double *X, const char *const *xnames,
                        const double *y, sj_lmm **out)
{
    if (!fe_ctx_valid(ctx))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!out || !X || !y)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "sj_lmm_create: NULL argument");
    *out = NULL;
    if (p < 1 || n < 2 || (size_t)p >= n || n > ((size_t)1 << 31))
        return fe_ctx_failf(ctx, SJ_ERR_SHAPE,
                            "sj_lmm_create: need 1 <= p < n (n = %zu observations, p = %d "
                            "fixed-effect columns)", n, p);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i]))
            return fe_ctx_failf(ctx, SJ_ERR_DOMAIN,
                                "sj_lmm_create: response y[%zu] (row %zu) is not finite (%g)", i,
                                i + 1, y[i]);
        for (int j = 0; j < p; j++)
            if (!isfinite(X[i * (size_t)p + j]))
                return fe_ctx_failf(ctx, SJ_ERR_DOMAIN,
                                    "sj_lmm_create: X[%zu, %d] (row %zu) is not finite", i, j,
                                    i + 1);
    }
    sj_lmm *m = calloc(1, sizeof *m);
    if (!m)
        return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "sj_lmm_create: out of memory");
    m->ctx = ctx;
    m->n = n;
    m->p = p;
    m->max_iter = 100;
    m->tol = 1e-7;
    m->x = malloc(n * (size_t)p * sizeof *m->x);
    m->y = malloc(n * sizeof *m->y);
    m->xnames = dup_strs(xnames, p, "X");
    if (!m->x || !m->y || !m->xnames) {
        sj_lmm_free(m);
        return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "sj_lmm_create: out of memory");
    }
    memcpy(m->x, X, n * (size_t)p * sizeof *m->x);
    memcpy(m->y, y, n * sizeof *m->y);
    *out = m;
    return SJ_OK;
}

static void clear_results(sj_lmm *m)
{
    free(m->theta);
    free(m->theta_se);
    free(m->beta);
    free(m->beta_se);
    free(m->beta_cov);
    sj_fn_free(m->hess_fn);
    m->hess_fn = NULL;
    m->theta = m->theta_se = m->beta = m->beta_se = m->beta_cov = NULL;
    for (int t = 0; t < m->nterm; t++) {
        free(m->term[t].mode);
        free(m->term[t].condvar);
        m->term[t].mode = m->term[t].condvar = NULL;
    }
    m->fitted = 0;
}

void sj_lmm_free(sj_lmm *m)
{
    if (!m)
        return;
    clear_results(m);
    for (int t = 0; t < m->nterm; t++) {
        fe_lmm_term *tm = &m->term[t];
        free(tm->group);
        free(tm->codes);
        free(tm->z);
        free_strs(tm->levels, tm->nlevels);
        free_strs(tm->znames, tm->k);
    }
    free(m->x);
    free(m->y);
    free_strs(m->xnames, m->p);
    free(m);
}

sj_status sj_lmm_add_term(sj_lmm *m, const char *group, const double *codes, int nlevels,
                          const char *const *levels, int k, const double *Z,
                          const char *const *znames, int correlated)
{
    if (!m)
        return SJ_ERR_INVALID_ARGUMENT;
    sj_ctx *ctx = m->ctx;
    if (!codes || !Z)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "sj_lmm_add_term: NULL codes or Z");
    if (m->nterm >= FE_LMM_MAX_TERMS)
        return fe_ctx_failf(ctx, SJ_ERR_UNSUPPORTED, "sj_lmm_add_term: more than %d terms",
                            FE_LMM_MAX_TERMS);
    if (k < 1 || k > FE_LMM_MAX_K)
        return fe_ctx_failf(ctx, SJ_ERR_SHAPE,
                            "sj_lmm_add_term: term '%s': k = %d columns (need 1..%d)",
                            group ? group : "", k, FE_LMM_MAX_K);
    if (nlevels < 1 || nlevels > (1 << 20))
        return fe_ctx_failf(ctx, SJ_ERR_SHAPE, "sj_lmm_add_term: term '%s': %d levels",
                            group ? group : "", nlevels);
    for (size_t i = 0; i < m->n; i++) {
        double c = codes[i];
        if (!(c >= 0 && c < nlevels && c == floor(c)))
            return fe_ctx_failf(ctx, SJ_ERR_DOMAIN,
                                "sj_lmm_add_term: term '%s': code %g in row %zu is not a level "
                                "0..%d",
                                group ? group : "", c, i + 1, nlevels - 1);
        for (int j = 0; j < k; j++)
            if (!isfinite(Z[i * (size_t)k + j]))
                return fe_ctx_failf(ctx, SJ_ERR_DOMAIN,
                                    "sj_lmm_add_term: term '%s': Z[%zu, %d] is not finite",
                                    group ? group : "", i, j);
    }
    fe_lmm_term *tm = &m->term[m->nterm];
    memset(tm, 0, sizeof *tm);
    tm->nlevels = nlevels;
    tm->k = k;
    tm->correlated = correlated ? 1 : 0;
    tm->group = dupstr(group ? group : "g");
    tm->codes = malloc(m->n * sizeof *tm->codes);
    tm->z = malloc(m->n * (size_t)k * sizeof *tm->z);
    tm->levels = dup_strs(levels, nlevels, "");
    tm->znames = dup_strs(znames, k, "z");
    if (!tm->group || !tm->codes || !tm->z || !tm->levels || !tm->znames) {
        free(tm->group);
        free(tm->codes);
        free(tm->z);
        free_strs(tm->levels, nlevels);
        free_strs(tm->znames, k);
        return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "sj_lmm_add_term: out of memory");
    }
    memcpy(tm->codes, codes, m->n * sizeof *codes);
    memcpy(tm->z, Z, m->n * (size_t)k * sizeof *Z);
    m->nterm++;
    clear_results(m);
    return SJ_OK;
}

sj_status sj_lmm_set_control(sj_lmm *m, int max_iter, double tol)
{
    if (!m)
        return SJ_ERR_INVALID_ARGUMENT;
    if (max_iter < 0 || !(tol > 0))
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_lmm_set_control: need max_iter >= 0 and tol > 0 (got %d, %g)",
                            max_iter, tol);
    m->max_iter = max_iter;
    m->tol = tol;
    return SJ_OK;
}

/* ---- the model as a graph ---------------------------------------------------- */

static int all_ones(const double *z, size_t n, int k, int j)
{
    for (size_t i = 0; i < n; i++)
        if (z[i * (size_t)k + j] != 1.0)
            return 0;
    return 1;
}

sj_value fe_lmm_objective(sj_graph *g, const sj_lmm *m, int reml, sj_value theta, sj_value y,
                          sj_value x, const sj_value *codes, const sj_value *zs, double s2,
                          int *ntheta, double *init)
{
    sj_cov *kids[FE_LMM_MAX_TERMS + 1];
    for (int t = 0; t < m->nterm; t++) {
        const fe_lmm_term *tm = &m->term[t];
        char lv[24], nm[24];
        snprintf(lv, sizeof lv, "%d", tm->nlevels);
        sj_value oh = sj_one_hot(g, codes[t], lv);
        sj_value piece[FE_LMM_MAX_K];
        for (int j = 0; j < tm->k; j++)
            piece[j] = all_ones(tm->z, m->n, tm->k, j)
                           ? oh
                           : sj_mul(g, oh, sj_slice(g, zs[t], 1, j, j + 1));
        sj_value z = tm->k == 1 ? piece[0] : sj_concat(g, tm->k, piece, 1);
        sj_cov *gt;
        snprintf(nm, sizeof nm, "t%d", t);
        /* Start: each of the K random-effect columns and the residual
         * take an equal share s2/(K+1) of the OLS residual variance, a
         * column's variance scaled by its mean square (a moment-style
         * start; robust where G = σ²_ols I is far off for slopes). */
        int kall = 0;
        for (int u = 0; u < m->nterm; u++)
            kall += m->term[u].k;
        double share = s2 / (kall + 1), sv[FE_LMM_MAX_K];
        for (int j = 0; j < tm->k; j++) {
            double ms = 0;
            for (size_t i = 0; i < m->n; i++)
                ms += tm->z[i * (size_t)tm->k + j] * tm->z[i * (size_t)tm->k + j];
            ms /= (double)m->n;
            sv[j] = ms > 0 ? share / ms : share;
        }
        if (tm->k == 1) {
            gt = sj_cov_scalar(g, "G", lv, sv[0], sj_transform_exp2());
        } else {
            sj_cov *sig;
            if (tm->correlated) {
                sig = sj_cov_unstructured(g, "G", tm->k);
                for (int j = 0; j < tm->k && sig; j++) {
                    char pn[32];
                    snprintf(pn, sizeof pn, "L_%d_%d", j, j);
                    sj_cov_set_init(sig, pn, sqrt(sv[j]));
                }
            } else {
                sig = sj_cov_diagonal(g, "G", tm->k, 1.0, sj_transform_exp2());
                for (int j = 0; j < tm->k && sig; j++) {
                    char pn[32];
                    snprintf(pn, sizeof pn, "sigma2_%d", j);
                    sj_cov_set_init(sig, pn, sv[j]);
                }
            }
            gt = sj_cov_kron(g, NULL, sig, sj_cov_identity(g, "I", lv));
        }
        kids[t] = sj_cov_propagate(g, nm, sj_cov_fixed(g, "Z", z), gt);
    }
    int kall = 0;
    for (int u = 0; u < m->nterm; u++)
        kall += m->term[u].k;
    kids[m->nterm] = sj_cov_scalar(g, "residual", "n", s2 / (kall + 1), sj_transform_exp2());
    sj_cov *root = sj_cov_sum(g, NULL, m->nterm + 1, kids);
    int nt = root ? sj_cov_nparam(root) : -1;
    if (nt < 0)
        return SJ_INVALID;
    if (ntheta)
        *ntheta = nt;
    if (init && sj_cov_init(root, init, (size_t)nt) != SJ_OK)
        return SJ_INVALID;
    if (theta == SJ_INVALID)
        return SJ_INVALID;
    sj_value v;
    if (sj_cov_build(root, theta, &v) != SJ_OK)
        return SJ_INVALID;
    if (reml == FE_LMM_V)
        return v;
    return reml ? sj_reml_criterion(g, v, x, y) : sj_ml_deviance(g, v, x, y);
}

/* θ layout per term (depth-first order of the tree): k = 1: log sd;
 * correlated: L_i_j row by row, log on the diagonal; else log sds. */
static int term_ntheta(const fe_lmm_term *tm)
{
    return tm->k == 1 ? 1 : tm->correlated ? tm->k * (tm->k + 1) / 2 : tm->k;
}

/* Inputs of the fit graph: [theta0,] y, X, codes_t..., z_t... */
typedef struct lmm_graph {
    sj_graph *g;
    sj_value theta, y, x, codes[FE_LMM_MAX_TERMS], zs[FE_LMM_MAX_TERMS];
} lmm_graph;

static sj_status declare(sj_lmm *m, lmm_graph *lg, int ntheta, const char *thname)
{
    sj_status st = sj_graph_create(m->ctx, &lg->g);
    if (st != SJ_OK)
        return st;
    char ks[24], ps[24];
    snprintf(ks, sizeof ks, "%d", ntheta);
    snprintf(ps, sizeof ps, "%d", m->p);
    const char *dk[] = {ks}, *dn[] = {"n"}, *dx[] = {"n", ps};
    lg->theta = sj_input(lg->g, thname, 1, dk);
    lg->y = sj_input(lg->g, "y", 1, dn);
    lg->x = sj_input(lg->g, "X", 2, dx);
    for (int t = 0; t < m->nterm; t++) {
        char nm[32];
        snprintf(nm, sizeof nm, "codes%d", t);
        lg->codes[t] = sj_input(lg->g, nm, 1, dn);
    }
    for (int t = 0; t < m->nterm; t++) {
        char nm[32], kz[24];
        snprintf(nm, sizeof nm, "Z%d", t);
        snprintf(kz, sizeof kz, "%d", m->term[t].k);
        const char *dz[] = {"n", kz};
        lg->zs[t] = sj_input(lg->g, nm, 2, dz);
    }
    return sj_graph_status(lg->g);
}

/* Residual variance of the OLS fit (the start: G_t = σ²_ols I, σ² = σ²_ols). */
static sj_status ols_s2(sj_lmm *m, double *s2)
{
    int p = m->p;
    size_t n = m->n;
    double *a = calloc((size_t)(p * p + p), sizeof *a);
    if (!a)
        return fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_lmm_fit: out of memory");
    double *b = a + p * p;
    for (size_t i = 0; i < n; i++) {
        const double *xi = m->x + i * (size_t)p;
        for (int j = 0; j < p; j++) {
            b[j] += xi[j] * m->y[i];
            for (int l = 0; l < p; l++)
                a[j * p + l] += xi[j] * xi[l];
        }
    }
    lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', p, 1, a, p, b, 1);
    if (info != 0) {
        free(a);
        /* dposv's info: the leading minor of order info is singular, so
         * column info is zero or a combination of the columns before it */
        int j = info > 0 && info <= p ? (int)info - 1 : 0;
        return fe_ctx_failf(m->ctx, SJ_ERR_SINGULAR,
                            "sj_lmm_fit: the fixed-effects design X is rank deficient: column "
                            "%d (%s) is %s (lme4 drops such a column; remove it)",
                            j + 1, m->xnames[j], info < 0 ? "invalid" :
                            "all zero or a combination of the columns before it");
    }
    double rss = 0;
    for (size_t i = 0; i < n; i++) {
        double r = m->y[i];
        for (int j = 0; j < p; j++)
            r -= m->x[i * (size_t)p + j] * b[j];
        rss += r * r;
    }
    free(a);
    /* y fitted exactly by X (a constant y with an intercept): the residual
     * variance is 0 at the optimum and the criterion has no minimum (lme4
     * reports a REML criterion of -Inf); refused with its cause. */
    double yy = 0;
    for (size_t i = 0; i < n; i++)
        yy += m->y[i] * m->y[i];
    if (!(rss > 1e-24 * yy) || n <= (size_t)p)
        return fe_ctx_failf(m->ctx, SJ_ERR_DOMAIN,
                            "sj_lmm_fit: y is fitted exactly by the fixed effects (residual sum "
                            "of squares %.3g%s): the residual variance would be 0 and the "
                            "criterion has no minimum", rss,
                            n <= (size_t)p ? ", n <= p" : ", e.g. y constant");
    *s2 = rss / (double)(n - (size_t)p);
    return SJ_OK;
}

/* Shapes and pointers of the data inputs (after theta): y, X, codes, Zs. */
typedef struct lmm_args {
    int nin;
    int ranks[3 + 2 * FE_LMM_MAX_TERMS];
    int64_t dims[3 + 2 * FE_LMM_MAX_TERMS][2];
    const int64_t *dp[3 + 2 * FE_LMM_MAX_TERMS];
    const double *in[3 + 2 * FE_LMM_MAX_TERMS];
} lmm_args;

static void fill_args(const sj_lmm *m, const double *theta, int ntheta, lmm_args *a)
{
    int i = 0;
    int64_t n = (int64_t)m->n;
    a->ranks[i] = 1, a->dims[i][0] = ntheta, a->in[i++] = theta;
    a->ranks[i] = 1, a->dims[i][0] = n, a->in[i++] = m->y;
    a->ranks[i] = 2, a->dims[i][0] = n, a->dims[i][1] = m->p, a->in[i++] = m->x;
    for (int t = 0; t < m->nterm; t++)
        a->ranks[i] = 1, a->dims[i][0] = n, a->in[i++] = m->term[t].codes;
    for (int t = 0; t < m->nterm; t++)
        a->ranks[i] = 2, a->dims[i][0] = n, a->dims[i][1] = m->term[t].k,
        a->in[i++] = m->term[t].z;
    a->nin = i;
    for (int j = 0; j < i; j++)
        a->dp[j] = a->dims[j];
}

sj_status sj_lmm_fit(sj_lmm *m, int reml)
{
    if (!m)
        return SJ_ERR_INVALID_ARGUMENT;
    sj_ctx *ctx = m->ctx;
    if (m->nterm < 1)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_lmm_fit: no random-effect term (use sj_lmm_add_term)");
    clear_results(m);
    double s2 = 1.0;
    sj_status st = ols_s2(m, &s2);
    if (st != SJ_OK)
        return st;
    int nt = 0;
    for (int t = 0; t < m->nterm; t++) {
        m->term[t].theta_off = nt;
        m->term[t].ntheta = term_ntheta(&m->term[t]);
        nt += m->term[t].ntheta;
    }
    nt += 1;
    double *theta0 = calloc((size_t)nt, sizeof *theta0);
    double *thhat = calloc((size_t)nt, sizeof *thhat);
    sj_fn *obj = NULL, *fitfn = NULL, *hfn = NULL, *aifn = NULL;
    lmm_graph og = {0}, fg = {0};
    double t0 = now(), c0 = 0;
    sj_ctx_counter(ctx, "compile_seconds", &c0);
    if (!theta0 || !thhat) {
        st = fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "sj_lmm_fit: out of memory");
        goto done;
    }
    /* The objective f(θ, data). */
    if ((st = declare(m, &og, nt, "theta")) != SJ_OK)
        goto done;
    int ntc = 0;
    sj_value crit = fe_lmm_objective(og.g, m, reml, og.theta, og.y, og.x, og.codes, og.zs, s2,
                                     &ntc, theta0);
    if ((st = sj_graph_status(og.g)) != SJ_OK)
        goto done;
    if (ntc != nt) {
        st = fe_ctx_failf(ctx, SJ_ERR_INTERNAL, "sj_lmm_fit: θ layout %d != %d", ntc, nt);
        goto done;
    }
    if ((st = sj_fn_create(og.g, 1, &crit, &obj)) != SJ_OK)
        goto done;
    /* The fit: θ̂, iterations, converged, and the criterion at θ̂. */
    if ((st = declare(m, &fg, nt, "theta0")) != SJ_OK)
        goto done;
    sj_value data[2 + 2 * FE_LMM_MAX_TERMS];
    int nd = 0;
    data[nd++] = fg.y;
    data[nd++] = fg.x;
    for (int t = 0; t < m->nterm; t++)
        data[nd++] = fg.codes[t];
    for (int t = 0; t < m->nterm; t++)
        data[nd++] = fg.zs[t];
    sj_value out[4];
    /* average-information steps (frontend/lmm_ai.c) or the exact Hessian */
    if (m->optimizer == SJ_LMM_AVERAGE_INFORMATION &&
        (st = fe_lmm_ai_curvature(m, reml, s2, nt, &aifn)) != SJ_OK)
        goto done;
    if ((st = sj_fit_argmin(fg.g, obj, aifn, fg.theta, nd, data, m->max_iter, SJ_FIT_GRAD_NORM,
                            m->tol, &out[0], &out[1], &out[2])) != SJ_OK)
        goto done;
    out[3] = fe_lmm_objective(fg.g, m, reml, out[0], fg.y, fg.x, fg.codes, fg.zs, s2, NULL,
                              NULL);
    if ((st = sj_graph_status(fg.g)) != SJ_OK)
        goto done;
    if ((st = sj_fn_create(fg.g, 4, out, &fitfn)) != SJ_OK)
        goto done;
    int wrt = 0;
    if ((st = sj_hessian(obj, 0, 1, &wrt, &hfn)) != SJ_OK)
        goto done;
    lmm_args a;
    fill_args(m, theta0, nt, &a);
    double iters = 0, conv = 0, critv = 0;
    double *outs[4] = {thhat, &iters, &conv, &critv};
    if ((st = sj_fn_call(fitfn, a.nin, a.ranks, a.dp, a.in, outs)) != SJ_OK)
        goto done;
    m->theta = thhat;
    thhat = NULL;
    m->ntheta = nt;
    m->reml = reml ? 1 : 0;
    m->criterion = critv;
    m->iterations = (int)iters;
    m->converged = conv != 0;
    /* The exact Hessian at θ̂ (standard errors of θ) is computed on first
     * use (sj_lmm_theta), with this function. */
    m->hess_fn = hfn;
    hfn = NULL;
    st = fe_lmm_results(m);
    if (st == SJ_OK)
        m->fitted = 1;
done:;
    double c1 = 0;
    sj_ctx_counter(ctx, "compile_seconds", &c1);
    m->compile_seconds = c1 - c0;
    m->fit_seconds = now() - t0 - m->compile_seconds;
    if (st != SJ_OK)
        clear_results(m);
    sj_fn_free(obj);
    sj_fn_free(fitfn);
    sj_fn_free(hfn);
    sj_fn_free(aifn);
    sj_graph_free(og.g);
    sj_graph_free(fg.g);
    free(theta0);
    free(thhat);
    return st;
}

/* Standard errors of θ̂ from the exact Hessian of the criterion at θ̂ (one
 * native call of the Hessian function compiled with the fit): the criterion
 * is −2ℓ, so cov(θ̂) = 2 H⁻¹; NaN where H is not positive definite (a fit at
 * a boundary). */
sj_status fe_lmm_theta_se(sj_lmm *m)
{
    if (m->theta_se)
        return SJ_OK;
    int nt = m->ntheta;
    double *hess = malloc((size_t)nt * nt * sizeof *hess);
    double *se = malloc((size_t)nt * sizeof *se);
    if (!hess || !se) {
        free(hess);
        free(se);
        return fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_lmm_theta: out of memory");
    }
    lmm_args a;
    fill_args(m, m->theta, nt, &a);
    double *houts[1] = {hess};
    sj_status st = sj_fn_call(m->hess_fn, a.nin, a.ranks, a.dp, a.in, houts);
    if (st != SJ_OK) {
        free(hess);
        free(se);
        return st;
    }
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', nt, hess, nt) == 0 &&
        LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', nt, hess, nt) == 0) {
        for (int i = 0; i < nt; i++)
            se[i] = sqrt(2.0 * hess[i * nt + i]);
    } else {
        for (int i = 0; i < nt; i++)
            se[i] = NAN;
    }
    free(hess);
    m->theta_se = se;
    return SJ_OK;
}
