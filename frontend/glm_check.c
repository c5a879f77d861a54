/* Model checking on a fitted sj_glm: residuals of R's four types, fitted
 * values, leverage (hatvalues) and Cook's distance (cooks.distance.glm). */
#include <math.h>
#include <string.h>

#include "frontend/glm_model.h"
#include "frontend/handles.h"

sj_status sj_glm_residuals(const sj_glm *m, sj_glm_resid_type type, double *out)
{
    sj_status st = fe_glm_enter(m, "sj_glm_residuals");
    if (st != SJ_OK)
        return st;
    if (!out)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT, "sj_glm_residuals: out is NULL");
    for (size_t i = 0; i < m->n; i++) {
        double r = m->y[i] - m->mu[i];
        switch (type) {
        case SJ_GLM_RESID_RESPONSE: out[i] = r; break;
        case SJ_GLM_RESID_WORKING: out[i] = r / m->mueta[i]; break;
        case SJ_GLM_RESID_PEARSON: out[i] = r * sqrt(m->w[i]) / sqrt(m->var[i]); break;
        case SJ_GLM_RESID_DEVIANCE:
            out[i] = (r > 0 ? 1.0 : r < 0 ? -1.0 : 0.0) * sqrt(fmax(m->devres[i], 0.0));
            break;
        default:
            return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                                "sj_glm_residuals: unknown type %d", (int)type);
        }
    }
    return SJ_OK;
}

sj_status sj_glm_fitted(const sj_glm *m, double *out)
{
    sj_status st = fe_glm_enter(m, "sj_glm_fitted");
    if (st != SJ_OK)
        return st;
    if (!out)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT, "sj_glm_fitted: out is NULL");
    memcpy(out, m->mu, m->n * sizeof *out);
    return SJ_OK;
}

/* hᵢ = Wᵢ xᵢᵀ (XᵀWX)⁻¹ xᵢ (aliased columns: 0 rows and columns in (XᵀWX)⁻¹). */
sj_status sj_glm_leverage(const sj_glm *m, double *out)
{
    sj_status st = fe_glm_enter(m, "sj_glm_leverage");
    if (st != SJ_OK)
        return st;
    if (!out)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT, "sj_glm_leverage: out is NULL");
    size_t p = (size_t)m->p;
    for (size_t i = 0; i < m->n; i++) {
        const double *xi = m->x + i * p;
        double q = 0;
        for (size_t j = 0; j < p; j++)
            for (size_t k = 0; k < p; k++)
                q += xi[j] * m->xtwx_inv[j * p + k] * xi[k];
        out[i] = m->w[i] > 0 ? m->ww[i] * q : 0.0;
    }
    return SJ_OK;
}

/* (rᴾᵢ / (1 − hᵢ))² hᵢ / (φ p), p the rank (cooks.distance.glm). */
sj_status sj_glm_cooks(const sj_glm *m, double *out)
{
    sj_status st = sj_glm_leverage(m, out);
    if (st != SJ_OK)
        return st;
    for (size_t i = 0; i < m->n; i++) {
        double h = out[i];
        double r = (m->y[i] - m->mu[i]) * sqrt(m->w[i]) / sqrt(m->var[i]) / (1 - h);
        out[i] = r * r * h / (m->dispersion * m->rank);
    }
    return SJ_OK;
}
