/* GLM links as graph builders (R's make.link and power(), plus loglog).
 * Internal to frontend/glm_*.c; the public face is the sj_glm_* section of
 * include/statjit.h and docs/glm.md. */
#ifndef FE_GLM_LINK_H
#define FE_GLM_LINK_H

#include "statjit.h"

typedef enum fe_link_id {
    FE_LINK_IDENTITY,
    FE_LINK_LOG,
    FE_LINK_LOGIT,
    FE_LINK_PROBIT,
    FE_LINK_CAUCHIT,
    FE_LINK_CLOGLOG,
    FE_LINK_LOGLOG,
    FE_LINK_INVERSE,
    FE_LINK_INVERSE_SQUARE, /* 1/mu^2 */
    FE_LINK_SQRT,
    FE_LINK_POWER,          /* mu^p, p > 0 and p != 1 */
    FE_NLINK
} fe_link_id;

typedef struct fe_link {
    fe_link_id id;
    double power; /* FE_LINK_POWER only */
    char name[32]; /* R's name: "logit", "1/mu^2", "mu^0.5" */
} fe_link;

/* Parses a link name (R's spelling, case-insensitive; "power" takes p).
 * R's power(p): p = 0 is the log link, p = 1 the identity.  p < 0 is
 * refused (R's power() silently gives log for it).  Returns 0, or -1 with a
 * message in msg. */
int fe_link_parse(const char *name, double power, fe_link *out, char *msg, size_t size);

/* η = g(μ), μ = g⁻¹(η), dμ/dη at η: R's linkfun, linkinv and mu.eta,
 * with R's clamps (DBL_EPSILON floors, thresholds on η). */
sj_value fe_link_fun(sj_graph *g, const fe_link *l, sj_value mu);
sj_value fe_link_inv(sj_graph *g, const fe_link *l, sj_value eta);
sj_value fe_link_mu_eta(sj_graph *g, const fe_link *l, sj_value eta);
/* R's valideta as a scalar graph value, 1.0 (valid) or 0.0. */
sj_value fe_link_valid_eta(sj_graph *g, const fe_link *l, sj_value eta);

/* Helpers shared by the GLM builders. */
sj_value fe_glm_c(sj_graph *g, double c);                       /* a scalar constant */
sj_value fe_glm_where(sj_graph *g, sj_value pred, sj_value a, sj_value b);
sj_value fe_glm_all(sj_graph *g, sj_value flags);               /* 1.0 iff every flag != 0 */
sj_value fe_glm_finite(sj_graph *g, sj_value x);                /* 1.0 where x is finite */
sj_value fe_glm_ones_like(sj_graph *g, sj_value x);             /* 1.0 in x's shape */
/* x with the elements where pred != 0 replaced by `safe`: the inner value
 * of the double-where idiom, so that a branch select() does not take keeps
 * finite values and derivatives (0·∞ would make NaN cotangents). */
sj_value fe_glm_safe(sj_graph *g, sj_value pred, sj_value x, double safe);

#endif
