/* GLM families: the layout behind sj_glm_family.  Internal. */
#ifndef FE_GLM_FAMILY_H
#define FE_GLM_FAMILY_H

#include "frontend/glm_link.h"

typedef enum fe_family_id {
    FE_FAMILY_GAUSSIAN,
    FE_FAMILY_BINOMIAL,
    FE_FAMILY_POISSON,
    FE_FAMILY_GAMMA,
    FE_FAMILY_INVERSE_GAUSSIAN,
    FE_FAMILY_NEGATIVE_BINOMIAL,
    FE_NFAMILY
} fe_family_id;

enum { FE_MAGIC_GLM_FAMILY = 0x534a474c /* "SJGL" */ };

struct sj_glm_family {
    uint32_t magic;
    sj_ctx *ctx;
    fe_family_id id;
    fe_link link;
    double theta; /* negative binomial: NaN until set */
};

#endif
