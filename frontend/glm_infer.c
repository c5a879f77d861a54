/* Inference on a fitted sj_glm: coefficient table (Wald z, or t where the
 * dispersion is estimated, as summary.glm), model-based and sandwich (HC0)
 * covariances, Wald intervals, the likelihood-ratio test of a nested model
 * and predictions with standard errors (predict.glm). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/glm_model.h"
#include "frontend/handles.h"

static int estimated_dispersion(const sj_glm *m)
{
    return sj_glm_family_has_dispersion(m->fam) == 1;
}

/* R's vcov(complete = TRUE): NA (NaN) in the rows and columns of aliased
 * coefficients.  Internally those are 0 (glm_model.h), so every product
 * above ignores them. */
static void nan_aliased(const sj_glm *m, double *v)
{
    size_t p = (size_t)m->p;
    for (size_t j = 0; j < p; j++)
        for (size_t k = 0; k < p; k++)
            if (fe_glm_aliased(m, (int)j) || fe_glm_aliased(m, (int)k))
                v[j * p + k] = NAN;
}

sj_status sj_glm_vcov(const sj_glm *m, sj_glm_vcov_type type, double *out)
{
    sj_status st = fe_glm_enter(m, "sj_glm_vcov");
    if (st != SJ_OK)
        return st;
    if (!out)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT, "sj_glm_vcov: out is NULL");
    size_t p = (size_t)m->p, n = m->n;
    const double *u = m->xtwx_inv;
    if (type == SJ_GLM_VCOV_MODEL) {
        for (size_t k = 0; k < p * p; k++)
            out[k] = m->dispersion * u[k];
        nan_aliased(m, out);
        return SJ_OK;
    }
    if (type != SJ_GLM_VCOV_HC0)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT, "sj_glm_vcov: unknown type %d",
                            (int)type);
    /* U (Σ sᵢsᵢᵀ) U, sᵢ = xᵢ Wᵢ (yᵢ − μᵢ)/(dμ/dη)ᵢ (sandwich's estfun.glm). */
    double *meat = calloc(p * p, sizeof *meat), *tmp = calloc(p * p, sizeof *tmp);
    if (!meat || !tmp) {
        free(meat), free(tmp);
        return fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_glm_vcov: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (!(m->w[i] > 0))
            continue;
        double s = m->ww[i] * (m->y[i] - m->mu[i]) / m->mueta[i];
        const double *xi = m->x + i * p;
        for (size_t j = 0; j < p; j++)
            for (size_t k = 0; k < p; k++)
                meat[j * p + k] += s * s * xi[j] * xi[k];
    }
    for (size_t j = 0; j < p; j++)
        for (size_t k = 0; k < p; k++) {
            double a = 0;
            for (size_t l = 0; l < p; l++)
                a += u[j * p + l] * meat[l * p + k];
            tmp[j * p + k] = a;
        }
    for (size_t j = 0; j < p; j++)
        for (size_t k = 0; k < p; k++) {
            double a = 0;
            for (size_t l = 0; l < p; l++)
                a += tmp[j * p + l] * u[l * p + k];
            out[j * p + k] = a;
        }
    free(meat), free(tmp);
    nan_aliased(m, out);
    return SJ_OK;
}

sj_status sj_glm_coef(const sj_glm *m, int i, const char **name, double *estimate,
                      double *std_error, double *statistic, double *p_value)
{
    sj_status st = fe_glm_enter(m, "sj_glm_coef");
    if (st != SJ_OK)
        return st;
    if (i < 0 || i >= m->p)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_glm_coef: coefficient %d is not in 0..%d", i, m->p - 1);
    /* aliased: NA throughout, as summary.glm; an exact fit (se 0 or of
     * rounding size): the statistic and p-value are undefined, NaN
     * (sj_glm_message says so) */
    double est = m->beta[i];
    double se = fe_glm_aliased(m, i)
                    ? NAN
                    : sqrt(m->dispersion * m->xtwx_inv[(size_t)i * (size_t)m->p + (size_t)i]);
    double z = se > 0 && !m->exact ? est / se : NAN;
    double pv = isnan(z)                  ? NAN
                : estimated_dispersion(m) ? fe_pt_two_sided(z, m->df_residual)
                                          : 2 * fe_pnorm_upper(fabs(z));
    if (name)
        *name = m->names[i];
    if (estimate)
        *estimate = est;
    if (std_error)
        *std_error = se;
    if (statistic)
        *statistic = z;
    if (p_value)
        *p_value = pv;
    return SJ_OK;
}

sj_status sj_glm_confint(const sj_glm *m, double level, sj_glm_vcov_type type, double *lower,
                         double *upper)
{
    sj_status st = fe_glm_enter(m, "sj_glm_confint");
    if (st != SJ_OK)
        return st;
    if (!(level > 0 && level < 1) || !lower || !upper)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_glm_confint: level must be in (0, 1) and lower, upper not NULL");
    size_t p = (size_t)m->p;
    double *v = malloc(p * p * sizeof *v);
    if (!v)
        return fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_glm_confint: out of memory");
    if ((st = sj_glm_vcov(m, type, v)) == SJ_OK) {
        double q = fe_qnorm(0.5 + level / 2);
        for (size_t j = 0; j < p; j++) {
            double se = sqrt(v[j * p + j]);
            lower[j] = m->beta[j] - q * se;
            upper[j] = m->beta[j] + q * se;
        }
    }
    free(v);
    return st;
}

sj_status sj_glm_lrtest(const sj_glm *full, const sj_glm *reduced, double *stat, double *df,
                        double *p_value)
{
    sj_status st = fe_glm_enter(full, "sj_glm_lrtest");
    if (st == SJ_OK)
        st = fe_glm_enter(reduced, "sj_glm_lrtest");
    if (st != SJ_OK)
        return st;
    if (full->n != reduced->n || full->fam->id != reduced->fam->id ||
        full->fam->link.id != reduced->fam->link.id || reduced->rank >= full->rank)
        return fe_ctx_failf(full->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_glm_lrtest: the models must share n, family and link, and the "
                            "reduced one have fewer coefficients (rank %d vs %d)",
                            reduced->rank, full->rank);
    double d = (double)(full->rank - reduced->rank);
    double s = (reduced->deviance - full->deviance) / full->dispersion;
    if (stat)
        *stat = s;
    if (df)
        *df = d;
    if (p_value)
        *p_value = fe_pchisq_upper(s, d);
    return SJ_OK;
}

sj_status sj_glm_predict(const sj_glm *m, size_t n_new, const double *X_new,
                         const double *offset_new, int type, double *out_fit, double *out_se)
{
    sj_status st = fe_glm_enter(m, "sj_glm_predict");
    if (st != SJ_OK)
        return st;
    if (!X_new || !out_fit || n_new == 0 || (type != SJ_GLM_LINK && type != SJ_GLM_RESPONSE))
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_glm_predict: X_new and out_fit must not be NULL, n_new > 0 and "
                            "type SJ_GLM_LINK or SJ_GLM_RESPONSE");
    size_t p = (size_t)m->p;
    double *eta = malloc(n_new * sizeof *eta), *d = malloc(n_new * sizeof *d);
    if (!eta || !d) {
        free(eta), free(d);
        return fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_glm_predict: out of memory");
    }
    for (size_t i = 0; i < n_new; i++) {
        const double *xi = X_new + i * p;
        double e = offset_new ? offset_new[i] : 0.0, q = 0;
        for (size_t j = 0; j < p; j++) /* predict.glm: aliased columns are left out */
            e += fe_glm_aliased(m, (int)j) ? 0.0 : xi[j] * m->beta[j];
        for (size_t j = 0; j < p; j++)
            for (size_t k = 0; k < p; k++)
                q += xi[j] * m->xtwx_inv[j * p + k] * xi[k];
        eta[i] = e;
        d[i] = sqrt(m->dispersion * q);
    }
    if (type == SJ_GLM_LINK) {
        memcpy(out_fit, eta, n_new * sizeof *eta);
        if (out_se)
            memcpy(out_se, d, n_new * sizeof *d);
    } else {
        double *me = malloc(n_new * sizeof *me);
        st = me ? fe_glm_eval_link(m, 0, n_new, eta, out_fit) : SJ_ERR_OUT_OF_MEMORY;
        if (st == SJ_OK && out_se)
            st = fe_glm_eval_link(m, 1, n_new, eta, me);
        if (st == SJ_OK && out_se)
            for (size_t i = 0; i < n_new; i++)
                out_se[i] = d[i] * fabs(me[i]);
        free(me);
    }
    free(eta), free(d);
    return st;
}
