/* The layout behind sj_glm (a GLM fitted on concrete data).  Internal to
 * frontend/glm_model.c, glm_infer.c, glm_check.c and glm_summary.c. */
#ifndef FE_GLM_MODEL_H
#define FE_GLM_MODEL_H

#include "frontend/glm_family.h"

enum { FE_MAGIC_GLM = 0x534a474d /* "SJGM" */ };

struct sj_glm {
    uint32_t magic;
    sj_ctx *ctx;
    sj_glm_family *fam; /* owned */
    size_t n;
    int p;
    double *x, *y, *w, *off; /* copies: n×p, n, n, n */
    char **names;            /* p column names */
    int intercept;           /* a column of ones is present */
    int singular_ok;         /* R's singular.ok: 1 (default) drop aliased columns, 0 refuse */
    /* results of sj_glm_fit: aliased columns (R's dqrdc2 rule, in column
     * order) have NaN coefficients; the fit is on the other `rank` columns */
    int rank, *aliased; /* aliased: p flags */
    char *message;      /* warnings of the last fit, "" when none (malloc'd) */
    int exact;          /* an exact fit (dispersion estimated, deviance ~ 0): no statistics */
    /* results of sj_glm_fit (fitted != 0) */
    int fitted, converged, iterations;
    double *beta, *eta, *mu, *ww, *var, *mueta, *devres; /* p, then n each */
    /* ww: R's fit$weights, the working weights of the last IRLS iteration
     * (at the iterate before β̂), as summary.glm and hatvalues use them */
    double *xtwx_inv; /* (XᵀWX)⁻¹, p×p; 0 in the rows and columns of aliased
                       * coefficients (NaN only in what the API returns) */
    double deviance, null_deviance, aic, loglik, bic, dispersion, df_residual, df_null;
    double n_ok;       /* observations with weight > 0 */
    /* negative binomial: θ fixed by sj_glm_set_theta, or estimated (glm.nb) */
    int theta_fixed, nb_converged;
    double nb_theta, nb_theta_se;
};

int fe_glm_valid(const sj_glm *m);
/* Whether coefficient j is aliased (fitted models only). */
static inline int fe_glm_aliased(const sj_glm *m, int j) { return m->aliased && m->aliased[j]; }
/* Validity and fitted checks of an entry point; SJ_OK or a recorded error. */
sj_status fe_glm_enter(const sj_glm *m, const char *fn);
/* Evaluates a family function elementwise on n values through a small graph
 * (the reference evaluator): which 0 linkinv, 1 mu_eta. */
sj_status fe_glm_eval_link(const sj_glm *m, int which, size_t n, const double *in, double *out);
/* Upper tail probabilities: standard normal, Student t (two-sided |t|) and
 * chi-square. */
/* sj_glm_fit_graph with, when previous is not NULL, the iterate before the
 * last IRLS step (R's last working weights are there; frontend/glm_fit.c). */
sj_status fe_glm_fit_graph(sj_graph *g, const sj_glm_family *fam, sj_value x, sj_value y,
                           sj_value weights, sj_value offset, int max_iter, sj_value *beta,
                           sj_value *iterations, sj_value *converged, sj_value *previous);
double fe_pnorm_upper(double z);
double fe_pt_two_sided(double t, double df);
double fe_pchisq_upper(double x, double df);
double fe_qnorm(double p);

#endif
