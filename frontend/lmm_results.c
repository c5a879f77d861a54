/* Results of a linear mixed model fit at θ̂ (sj_lmm, frontend/lmm.c): GLS
 * fixed effects with standard errors, conditional modes (BLUPs) with
 * conditional variances, variance components, the singular-fit flag, and
 * the accessors.
 *
 * With G = Λ Λᵀ (Λ block-diagonal, Λ_t ⊗ I per term) and D = σ² I, lme4's
 * form (Bates et al. 2015, J. Stat. Softw. 67(1), section 3):
 *
 *   M = σ² I + Λᵀ ZᵀZ Λ,   U = Λᵀ ZᵀX,   u = Λᵀ Zᵀy,
 *   XᵀV⁻¹X = (XᵀX − Uᵀ M⁻¹ U)/σ²,   XᵀV⁻¹y = (Xᵀy − Uᵀ M⁻¹ u)/σ²,
 *   β̂ = (XᵀV⁻¹X)⁻¹ XᵀV⁻¹y,  cov(β̂) = (XᵀV⁻¹X)⁻¹,
 *   b̂ = G Zᵀ V⁻¹ (y − Xβ̂) = Λ M⁻¹ Λᵀ Zᵀ (y − Xβ̂),
 *   Var(b | y, β̂) = σ² Λ M⁻¹ Λᵀ   (lme4's condVar / postVar).
 *
 * No G⁻¹ is formed, so a variance at zero (a singular fit) is fine.  The
 * matrices are q × q dense (q = Σ k_t levels_t): this runs once per fit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#include "frontend/handles.h"
#include "frontend/lmm.h"

/* Λ_t and G_t of each term, and σ², from the raw θ (layout in lmm.c). */
static void natural(sj_lmm *m)
{
    for (int t = 0; t < m->nterm; t++) {
        fe_lmm_term *tm = &m->term[t];
        const double *th = m->theta + tm->theta_off;
        int k = tm->k;
        memset(tm->lam, 0, sizeof tm->lam);
        if (k == 1) {
            tm->lam[0] = exp(th[0]);
        } else if (tm->correlated) {
            int c = 0;
            for (int i = 0; i < k; i++)
                for (int j = 0; j <= i; j++, c++)
                    tm->lam[i * k + j] = i == j ? exp(th[c]) : th[c];
        } else {
            for (int i = 0; i < k; i++)
                tm->lam[i * k + i] = exp(th[i]);
        }
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) {
                double s = 0;
                for (int l = 0; l < k; l++)
                    s += tm->lam[i * k + l] * tm->lam[j * k + l];
                tm->cov[i * k + j] = s;
            }
    }
    m->sigma2 = exp(2.0 * m->theta[m->ntheta - 1]);
}

sj_status fe_lmm_results(sj_lmm *m)
{
    natural(m);
    size_t n = m->n;
    int p = m->p, nt = m->nterm;
    int off[FE_LMM_MAX_TERMS + 1];
    off[0] = 0;
    for (int t = 0; t < nt; t++)
        off[t + 1] = off[t] + m->term[t].k * m->term[t].nlevels;
    int q = off[nt];
    double s2 = m->sigma2;
    size_t qq = (size_t)q * q;
    double *ztz = calloc(qq, sizeof(double)), *lam = calloc(qq, sizeof(double)),
           *mm = calloc(qq, sizeof(double)), *tmp = calloc(qq, sizeof(double));
    double *ztx = calloc((size_t)q * p, sizeof(double)), *zty = calloc((size_t)q, sizeof(double));
    double *u = calloc((size_t)q * (p + 1), sizeof(double)); /* [U | u] */
    double *xtx = calloc((size_t)p * p + p, sizeof(double));
    int *col = malloc((size_t)(q > 0 ? q : 1) * sizeof *col);
    double *val = malloc((size_t)(q > 0 ? q : 1) * sizeof *val);
    m->beta = calloc((size_t)p, sizeof(double));
    m->beta_se = calloc((size_t)p, sizeof(double));
    m->beta_cov = calloc((size_t)p * p, sizeof(double));
    sj_status st = SJ_OK;
    if (!ztz || !lam || !mm || !tmp || !ztx || !zty || !u || !xtx || !col || !val || !m->beta ||
        !m->beta_se || !m->beta_cov) {
        st = fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_lmm_fit: out of memory");
        goto done;
    }
    double *xty = xtx + (size_t)p * p;
    /* Cross products, row by row over the sparse Z. */
    for (size_t i = 0; i < n; i++) {
        int nz = 0;
        for (int t = 0; t < nt; t++) {
            const fe_lmm_term *tm = &m->term[t];
            int c = (int)tm->codes[i];
            for (int j = 0; j < tm->k; j++) {
                col[nz] = off[t] + j * tm->nlevels + c;
                val[nz++] = tm->z[i * (size_t)tm->k + j];
            }
        }
        const double *xi = m->x + i * (size_t)p;
        for (int a = 0; a < nz; a++) {
            for (int b = 0; b < nz; b++)
                ztz[(size_t)col[a] * q + col[b]] += val[a] * val[b];
            for (int j = 0; j < p; j++)
                ztx[(size_t)col[a] * p + j] += val[a] * xi[j];
            zty[col[a]] += val[a] * m->y[i];
        }
        for (int j = 0; j < p; j++) {
            xty[j] += xi[j] * m->y[i];
            for (int l = 0; l < p; l++)
                xtx[j * p + l] += xi[j] * xi[l];
        }
    }
    for (int t = 0; t < nt; t++) {
        const fe_lmm_term *tm = &m->term[t];
        int L = tm->nlevels, k = tm->k;
        for (int a = 0; a < k; a++)
            for (int b = 0; b <= a; b++)
                for (int l = 0; l < L; l++)
                    lam[(size_t)(off[t] + a * L + l) * q + off[t] + b * L + l] =
                        tm->lam[a * k + b];
    }
    /* M = σ² I + Λᵀ ZᵀZ Λ. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q, q, q, 1.0, ztz, q, lam, q, 0.0, tmp,
                q);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q, q, q, 1.0, lam, q, tmp, q, 0.0, mm,
                q);
    for (int i = 0; i < q; i++)
        mm[(size_t)i * q + i] += s2;
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', q, mm, q) != 0) {
        st = fe_ctx_failf(m->ctx, SJ_ERR_NOT_POSITIVE_DEFINITE,
                          "sj_lmm_fit: σ²I + ΛᵀZᵀZΛ is not positive definite at θ̂");
        goto done;
    }
    /* [U | u] = Λᵀ [ZᵀX | Zᵀy], then W = L_M⁻¹ [U | u]. */
    for (int i = 0; i < q; i++) {
        for (int j = 0; j < p; j++)
            tmp[(size_t)i * (p + 1) + j] = ztx[(size_t)i * p + j];
        tmp[(size_t)i * (p + 1) + p] = zty[i];
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q, p + 1, q, 1.0, lam, q, tmp, p + 1,
                0.0, u, p + 1);
    memcpy(tmp, u, (size_t)q * (p + 1) * sizeof(double));
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, q, p + 1, 1.0,
                mm, q, tmp, p + 1);
    double *a = m->beta_cov, *bb = m->beta;
    for (int j = 0; j < p; j++) {
        for (int l = 0; l < p; l++) {
            double s = xtx[j * p + l];
            for (int i = 0; i < q; i++)
                s -= tmp[(size_t)i * (p + 1) + j] * tmp[(size_t)i * (p + 1) + l];
            a[j * p + l] = s / s2;
        }
        double s = xty[j];
        for (int i = 0; i < q; i++)
            s -= tmp[(size_t)i * (p + 1) + j] * tmp[(size_t)i * (p + 1) + p];
        bb[j] = s / s2;
    }
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', p, a, p) != 0) {
        st = fe_ctx_failf(m->ctx, SJ_ERR_SINGULAR,
                          "sj_lmm_fit: XᵀV⁻¹X is singular at θ̂ (X rank deficient)");
        goto done;
    }
    LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', p, 1, a, p, bb, 1);
    LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', p, a, p);
    for (int j = 0; j < p; j++)
        for (int l = j + 1; l < p; l++)
            a[j * p + l] = a[l * p + j];
    for (int j = 0; j < p; j++)
        m->beta_se[j] = sqrt(a[j * p + j]);
    /* b̂ = Λ M⁻¹ (u − U β̂). */
    double *r = zty; /* reuse: u_r */
    for (int i = 0; i < q; i++) {
        double s = u[(size_t)i * (p + 1) + p];
        for (int j = 0; j < p; j++)
            s -= u[(size_t)i * (p + 1) + j] * bb[j];
        r[i] = s;
    }
    LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', q, 1, mm, q, r, 1);
    double *bhat = ztx; /* q ≤ q·p */
    cblas_dgemv(CblasRowMajor, CblasNoTrans, q, q, 1.0, lam, q, r, 1, 0.0, bhat, 1);
    /* diag(σ² Λ M⁻¹ Λᵀ) = σ² column sums of (L_M⁻¹ Λᵀ)². */
    for (int i = 0; i < q; i++)
        for (int j = 0; j < q; j++)
            tmp[(size_t)i * q + j] = lam[(size_t)j * q + i];
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, q, q, 1.0, mm,
                q, tmp, q);
    for (int t = 0; t < nt; t++) {
        fe_lmm_term *tm = &m->term[t];
        int L = tm->nlevels, k = tm->k;
        tm->mode = malloc((size_t)L * k * sizeof(double));
        tm->condvar = malloc((size_t)L * k * sizeof(double));
        if (!tm->mode || !tm->condvar) {
            st = fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_lmm_fit: out of memory");
            goto done;
        }
        for (int l = 0; l < L; l++)
            for (int j = 0; j < k; j++) {
                int c = off[t] + j * L + l;
                double s = 0;
                for (int i = 0; i < q; i++)
                    s += tmp[(size_t)i * q + c] * tmp[(size_t)i * q + c];
                tm->mode[l * k + j] = bhat[c];
                tm->condvar[l * k + j] = s2 * s;
            }
    }
    /* Singular fit (lme4's isSingular, tol 1e-4): a diagonal entry of the
     * relative factor Λ_t/σ at its boundary 0. */
    m->singular = 0;
    for (int t = 0; t < nt; t++)
        for (int j = 0; j < m->term[t].k; j++)
            if (fabs(m->term[t].lam[j * m->term[t].k + j]) / sqrt(s2) < 1e-4)
                m->singular = 1;
done:
    free(ztz);
    free(lam);
    free(mm);
    free(tmp);
    free(ztx);
    free(zty);
    free(u);
    free(xtx);
    free(col);
    free(val);
    return st;
}

/* ---- accessors ------------------------------------------------------------------ */

static sj_status need_fit(const sj_lmm *m, const char *fn)
{
    if (!m)
        return SJ_ERR_INVALID_ARGUMENT;
    if (!m->fitted)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT, "%s: the model has not been fitted "
                            "(call sj_lmm_fit first)", fn);
    return SJ_OK;
}

sj_status sj_lmm_criterion(const sj_lmm *m, double *value)
{
    sj_status st = need_fit(m, "sj_lmm_criterion");
    if (st == SJ_OK && value)
        *value = m->criterion;
    return st;
}

sj_status sj_lmm_loglik(const sj_lmm *m, double *loglik, double *aic, double *bic)
{
    sj_status st = need_fit(m, "sj_lmm_loglik");
    if (st != SJ_OK)
        return st;
    double df = (double)(m->p + m->ntheta);
    if (loglik)
        *loglik = -0.5 * m->criterion;
    if (aic)
        *aic = m->criterion + 2.0 * df;
    if (bic)
        *bic = m->criterion + log((double)m->n) * df;
    return SJ_OK;
}

sj_status sj_lmm_convergence(const sj_lmm *m, int *converged, int *iterations, int *singular)
{
    sj_status st = need_fit(m, "sj_lmm_convergence");
    if (st != SJ_OK)
        return st;
    if (converged)
        *converged = m->converged;
    if (iterations)
        *iterations = m->iterations;
    if (singular)
        *singular = m->singular;
    return SJ_OK;
}

int sj_lmm_nfixed(const sj_lmm *m) { return m ? m->p : -1; }

sj_status sj_lmm_fixed(const sj_lmm *m, int i, const char **name, double *estimate,
                       double *std_error, double *t_value)
{
    sj_status st = need_fit(m, "sj_lmm_fixed");
    if (st != SJ_OK)
        return st;
    if (i < 0 || i >= m->p)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_lmm_fixed: index %d out of range 0..%d", i, m->p - 1);
    if (name)
        *name = m->xnames[i];
    if (estimate)
        *estimate = m->beta[i];
    if (std_error)
        *std_error = m->beta_se[i];
    if (t_value)
        *t_value = m->beta[i] / m->beta_se[i];
    return SJ_OK;
}

int sj_lmm_nvarcomp(const sj_lmm *m)
{
    if (!m)
        return -1;
    int c = 1;
    for (int t = 0; t < m->nterm; t++)
        c += m->term[t].k;
    return c;
}

sj_status sj_lmm_varcomp(const sj_lmm *m, int i, const char **group, const char **name,
                         double *variance, double *std_dev)
{
    sj_status st = need_fit(m, "sj_lmm_varcomp");
    if (st != SJ_OK)
        return st;
    int c = 0;
    for (int t = 0; t < m->nterm; t++) {
        const fe_lmm_term *tm = &m->term[t];
        if (i < c + tm->k) {
            int j = i - c;
            double v = tm->cov[j * tm->k + j];
            if (group)
                *group = tm->group;
            if (name)
                *name = tm->znames[j];
            if (variance)
                *variance = v;
            if (std_dev)
                *std_dev = sqrt(v);
            return SJ_OK;
        }
        c += tm->k;
    }
    if (i == c) {
        if (group)
            *group = "Residual";
        if (name)
            *name = "";
        if (variance)
            *variance = m->sigma2;
        if (std_dev)
            *std_dev = sqrt(m->sigma2);
        return SJ_OK;
    }
    return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                        "sj_lmm_varcomp: index %d out of range 0..%d", i, c);
}

int sj_lmm_ncorr(const sj_lmm *m)
{
    if (!m)
        return -1;
    int c = 0;
    for (int t = 0; t < m->nterm; t++)
        if (m->term[t].correlated)
            c += m->term[t].k * (m->term[t].k - 1) / 2;
    return c;
}

/* Correlations of correlated terms, per term in lower-triangle row order:
 * (1,0), (2,0), (2,1), ... */
sj_status sj_lmm_corr(const sj_lmm *m, int i, const char **group, const char **name_a,
                      const char **name_b, double *corr)
{
    sj_status st = need_fit(m, "sj_lmm_corr");
    if (st != SJ_OK)
        return st;
    int c = 0;
    for (int t = 0; t < m->nterm; t++) {
        const fe_lmm_term *tm = &m->term[t];
        if (!tm->correlated)
            continue;
        int k = tm->k;
        for (int a = 1; a < k; a++)
            for (int b = 0; b < a; b++, c++)
                if (c == i) {
                    if (group)
                        *group = tm->group;
                    if (name_a)
                        *name_a = tm->znames[b];
                    if (name_b)
                        *name_b = tm->znames[a];
                    if (corr) {
                        double d = sqrt(tm->cov[a * k + a] * tm->cov[b * k + b]);
                        *corr = d > 0 ? tm->cov[a * k + b] / d : 0.0;
                    }
                    return SJ_OK;
                }
    }
    return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                        "sj_lmm_corr: index %d out of range (%d correlations)", i, c);
}

sj_status sj_lmm_ranef(const sj_lmm *m, int term, int level, int j, double *mode,
                       double *cond_var)
{
    sj_status st = need_fit(m, "sj_lmm_ranef");
    if (st != SJ_OK)
        return st;
    if (term < 0 || term >= m->nterm || level < 0 || level >= m->term[term].nlevels || j < 0 ||
        j >= m->term[term].k)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_lmm_ranef: (term %d, level %d, column %d) out of range", term,
                            level, j);
    const fe_lmm_term *tm = &m->term[term];
    if (mode)
        *mode = tm->mode[level * tm->k + j];
    if (cond_var)
        *cond_var = tm->condvar[level * tm->k + j];
    return SJ_OK;
}

sj_status sj_lmm_theta(const sj_lmm *m, int *ntheta, const double **theta,
                       const double **theta_se)
{
    sj_status st = need_fit(m, "sj_lmm_theta");
    if (st != SJ_OK)
        return st;
    /* the standard errors are computed on first use: m is logically const */
    if (theta_se && (st = fe_lmm_theta_se((sj_lmm *)m)) != SJ_OK)
        return st;
    if (ntheta)
        *ntheta = m->ntheta;
    if (theta)
        *theta = m->theta;
    if (theta_se)
        *theta_se = m->theta_se;
    return SJ_OK;
}
