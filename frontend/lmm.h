/* The linear mixed model behind sj_lmm (frontend/lmm.c, lmm_results.c,
 * lmm_summary.c).  Internal. */
#ifndef FE_LMM_H
#define FE_LMM_H

#include <stddef.h>

#include "statjit.h"

enum { FE_LMM_MAX_TERMS = 32, FE_LMM_MAX_K = 16 };

typedef struct fe_lmm_term {
    char *group;
    int nlevels, k, correlated;
    double *codes;  /* n */
    double *z;      /* n × k */
    char **levels;  /* nlevels */
    char **znames;  /* k */
    int theta_off, ntheta; /* this term's slots in θ */
    /* results */
    double cov[FE_LMM_MAX_K * FE_LMM_MAX_K]; /* G_t's k × k block */
    double lam[FE_LMM_MAX_K * FE_LMM_MAX_K]; /* lower factor: cov = lam lamᵀ */
    double *mode, *condvar; /* nlevels × k (level-major) */
} fe_lmm_term;

struct sj_lmm {
    sj_ctx *ctx;
    size_t n;
    int p;
    double *x, *y;
    char **xnames;
    int nterm;
    fe_lmm_term term[FE_LMM_MAX_TERMS];
    /* fit settings */
    int max_iter;
    double tol;
    int optimizer; /* sj_lmm_optimizer */
    /* results */
    int fitted, reml;
    int ntheta;
    double *theta, *theta_se; /* raw θ (ntheta) and its standard errors */
    double sigma2;
    double criterion;
    double *beta, *beta_se, *beta_cov; /* p, p, p × p */
    int iterations, converged, singular;
    double compile_seconds, fit_seconds;
    sj_fn *hess_fn; /* the criterion's Hessian in θ (for theta_se), owned */
};

/* Emits the model's V(θ) as a covariance tree into g; returns the criterion
 * (REML or ML) of y ~ N(Xβ, V).  theta [ntheta], y [n], X [n, p], codes[t]
 * [n], zs[t] [n, k_t] are values of g.  Sets *ntheta and (if init is not
 * NULL) the raw θ of the start G_t = s2 I, σ² = s2. */
sj_value fe_lmm_objective(sj_graph *g, const sj_lmm *m, int reml, sj_value theta, sj_value y,
                          sj_value x, const sj_value *codes, const sj_value *zs, double s2,
                          int *ntheta, double *init);
/* fe_lmm_objective's reml argument for V(θ) itself instead of a criterion. */
#define FE_LMM_V 2
/* The average-information curvature of the criterion (frontend/lmm_ai.c):
 * a function of (θ, y, X, codes_t..., Z_t...) -> [ntheta, ntheta]. */
sj_status fe_lmm_ai_curvature(sj_lmm *m, int reml, double s2, int ntheta, sj_fn **out);
/* Fills the results (β̂, SEs, BLUPs, conditional variances, G blocks) from
 * m->theta.  Needs the natural parameters: sets m->sigma2. */
sj_status fe_lmm_results(sj_lmm *m);
/* Fills m->theta_se (once) from the exact Hessian at θ̂. */
sj_status fe_lmm_theta_se(sj_lmm *m);

#endif
