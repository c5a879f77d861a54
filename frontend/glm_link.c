/* GLM links as graph builders: R's make.link() (stats/R/family.R and the C
 * helpers of stats/src/family.c), power(), and the loglog link of the
 * issue, g(μ) = -log(-log μ).  Every link emits ordinary ops, so anything
 * built on it is differentiated, batched and compiled like any other value.
 *
 * R's clamps are kept, because a fit that follows R's iterations must see the
 * same numbers: ε = DBL_EPSILON floors on μ and dμ/dη, the logit's
 * thresholds |η| > 30, the probit's and cauchit's clamp of η to
 * ±Φ⁻¹(1-ε) and ±F⁻¹_Cauchy(1-ε), cloglog's η <= 700.  Where a clamp is
 * active the derivative through it is 0 (select and min/max rules), as it
 * is for R's finite-difference-free code: only mu.eta carries the floor.
 *
 * Accuracy beyond R: cauchit's g(μ) = tan(π(μ - 1/2)) is evaluated as
 * -1/tan(πμ) for μ < 1/4 and 1/tan(π(1-μ)) for μ > 3/4 (R's qcauchy does the
 * same through tanpi), and its inverse as 1 - atan(1/η)/π for η > 1 and
 * -atan(1/η)/π for η < -1 (R's pcauchy), so both tails keep their relative
 * accuracy. */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "frontend/glm_link.h"

#define EPS DBL_EPSILON
#define PROBIT_THRESH 8.125890664701906      /* -qnorm(.Machine$double.eps) in R */
#define CAUCHIT_THRESH 1433540284805664.8    /* -qcauchy(.Machine$double.eps) in R */

/* ---- helpers ------------------------------------------------------------------ */

sj_value fe_glm_c(sj_graph *g, double c) { return sj_scalar(g, c); }

sj_value fe_glm_where(sj_graph *g, sj_value pred, sj_value a, sj_value b)
{
    return sj_select(g, pred, a, b);
}

sj_value fe_glm_all(sj_graph *g, sj_value flags)
{
    /* (Σ (flag == 0)) == 0; an empty vector is all valid, as in R */
    sj_value bad = sj_compare(g, SJ_EQ, flags, fe_glm_c(g, 0.0));
    return sj_compare(g, SJ_EQ, sj_sum_all(g, bad), fe_glm_c(g, 0.0));
}

sj_value fe_glm_finite(sj_graph *g, sj_value x)
{
    /* x - x is 0 for finite x, NaN for ±inf and NaN */
    return sj_compare(g, SJ_EQ, sj_sub(g, x, x), fe_glm_c(g, 0.0));
}

sj_value fe_glm_ones_like(sj_graph *g, sj_value x)
{
    /* (x == x) is 0 or 1, so 0·(x == x) + 1 is 1 even where x is NaN */
    return sj_add(g, sj_mul(g, sj_compare(g, SJ_EQ, x, x), fe_glm_c(g, 0.0)), fe_glm_c(g, 1.0));
}

sj_value fe_glm_safe(sj_graph *g, sj_value pred, sj_value x, double safe)
{
    return sj_select(g, pred, fe_glm_c(g, safe), x);
}

static sj_value c(sj_graph *g, double v) { return fe_glm_c(g, v); }
static sj_value floor_eps(sj_graph *g, sj_value x) { return sj_max(g, x, c(g, EPS)); }
static sj_value clamp(sj_graph *g, sj_value x, double lo, double hi)
{
    return sj_min(g, sj_max(g, x, c(g, lo)), c(g, hi));
}

/* ---- names ------------------------------------------------------------------- */

static const struct {
    const char *name;
    fe_link_id id;
} names[] = {
    {"identity", FE_LINK_IDENTITY}, {"log", FE_LINK_LOG},         {"logit", FE_LINK_LOGIT},
    {"probit", FE_LINK_PROBIT},     {"cauchit", FE_LINK_CAUCHIT}, {"cloglog", FE_LINK_CLOGLOG},
    {"loglog", FE_LINK_LOGLOG},     {"inverse", FE_LINK_INVERSE}, {"1/mu^2", FE_LINK_INVERSE_SQUARE},
    {"sqrt", FE_LINK_SQRT},         {"power", FE_LINK_POWER},
};

static int same(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

int fe_link_parse(const char *name, double power, fe_link *out, char *msg, size_t size)
{
    memset(out, 0, sizeof *out);
    size_t k = 0, n = sizeof names / sizeof names[0];
    while (k < n && !same(name, names[k].name))
        k++;
    if (k == n) {
        snprintf(msg, size,
                 "unknown link \"%s\" (links: identity, log, logit, probit, cauchit, cloglog, "
                 "loglog, inverse, 1/mu^2, sqrt, power)", name);
        return -1;
    }
    out->id = names[k].id;
    snprintf(out->name, sizeof out->name, "%s", names[k].name);
    if (out->id != FE_LINK_POWER)
        return 0;
    if (!isfinite(power) || power < 0) {
        snprintf(msg, size,
                 "power link: p = %g must be finite and >= 0 (R's power() turns p < 0 into "
                 "the log link; use \"inverse\" or \"1/mu^2\")", power);
        return -1;
    }
    /* R's power(): log for p <= 0, identity for p = 1, else "mu^<p rounded to 3>" */
    if (power == 0) {
        out->id = FE_LINK_LOG;
        snprintf(out->name, sizeof out->name, "log");
    } else if (power == 1) {
        out->id = FE_LINK_IDENTITY;
        snprintf(out->name, sizeof out->name, "identity");
    } else {
        out->power = power;
        snprintf(out->name, sizeof out->name, "mu^%.15g", round(power * 1000) / 1000);
    }
    return 0;
}

/* ---- builders ------------------------------------------------------------------ */

/* cauchit g(μ) = F⁻¹(μ) = tan(π(μ - 1/2)), three ways (see the top). */
static sj_value qcauchy(sj_graph *g, sj_value mu)
{
    sj_value lo = sj_compare(g, SJ_LT, mu, c(g, 0.25));
    sj_value hi = sj_compare(g, SJ_GT, mu, c(g, 0.75));
    sj_value mid = sj_tan(g, sj_mul(g, c(g, M_PI), sj_sub(g, mu, c(g, 0.5))));
    /* the tails divide by tan(πμ), tan(π(1-μ)): keep them away from 0 where
     * not taken */
    sj_value ml = sj_select(g, lo, mu, c(g, 0.25)), mh = sj_select(g, hi, mu, c(g, 0.75));
    sj_value left = sj_neg(g, sj_recip(g, sj_tan(g, sj_mul(g, c(g, M_PI), ml))));
    sj_value right = sj_recip(g, sj_tan(g, sj_mul(g, c(g, M_PI), sj_sub(g, c(g, 1.0), mh))));
    return sj_select(g, lo, left, sj_select(g, hi, right, mid));
}

/* cauchit g⁻¹(η) = F(η) = 1/2 + atan(η)/π, with R's pcauchy tails. */
static sj_value pcauchy(sj_graph *g, sj_value eta)
{
    sj_value big = sj_compare(g, SJ_GT, sj_abs(g, eta), c(g, 1.0));
    sj_value pos = sj_compare(g, SJ_GT, eta, c(g, 0.0));
    sj_value mid = sj_add(g, c(g, 0.5), sj_mul(g, sj_atan(g, eta), c(g, 1 / M_PI)));
    sj_value es = sj_select(g, big, eta, c(g, 2.0)); /* 1/η safe where not taken */
    sj_value y = sj_mul(g, sj_atan(g, sj_recip(g, es)), c(g, 1 / M_PI));
    sj_value tail = sj_select(g, pos, sj_sub(g, c(g, 1.0), y), sj_neg(g, y));
    return sj_select(g, big, tail, mid);
}

sj_value fe_link_fun(sj_graph *g, const fe_link *l, sj_value mu)
{
    switch (l->id) {
    case FE_LINK_IDENTITY: return mu;
    case FE_LINK_LOG: return sj_log(g, mu);
    case FE_LINK_LOGIT: return sj_log(g, sj_div(g, mu, sj_sub(g, c(g, 1.0), mu)));
    case FE_LINK_PROBIT: return sj_ndtri(g, mu);
    case FE_LINK_CAUCHIT: return qcauchy(g, mu);
    case FE_LINK_CLOGLOG: return sj_log(g, sj_neg(g, sj_log(g, sj_sub(g, c(g, 1.0), mu))));
    case FE_LINK_LOGLOG: return sj_neg(g, sj_log(g, sj_neg(g, sj_log(g, mu))));
    case FE_LINK_INVERSE: return sj_recip(g, mu);
    case FE_LINK_INVERSE_SQUARE: return sj_recip(g, sj_square(g, mu));
    case FE_LINK_SQRT: return sj_sqrt(g, mu);
    case FE_LINK_POWER: return sj_pow(g, mu, c(g, l->power));
    default: return SJ_INVALID;
    }
}

sj_value fe_link_inv(sj_graph *g, const fe_link *l, sj_value eta)
{
    switch (l->id) {
    case FE_LINK_IDENTITY: return eta;
    case FE_LINK_LOG: return floor_eps(g, sj_exp(g, eta));
    case FE_LINK_LOGIT: {
        /* R's logit_linkinv: t = ε below -30, 1/ε above 30, else e^η; t/(1+t) */
        sj_value lo = sj_compare(g, SJ_LT, eta, c(g, -30.0));
        sj_value hi = sj_compare(g, SJ_GT, eta, c(g, 30.0));
        sj_value t = sj_select(g, lo, c(g, EPS), sj_select(g, hi, c(g, 1 / EPS), sj_exp(g, eta)));
        return sj_div(g, t, sj_add(g, c(g, 1.0), t));
    }
    case FE_LINK_PROBIT: return sj_ndtr(g, clamp(g, eta, -PROBIT_THRESH, PROBIT_THRESH));
    case FE_LINK_CAUCHIT: return pcauchy(g, clamp(g, eta, -CAUCHIT_THRESH, CAUCHIT_THRESH));
    case FE_LINK_CLOGLOG: {
        sj_value m = sj_neg(g, sj_expm1(g, sj_neg(g, sj_exp(g, eta))));
        return clamp(g, m, EPS, 1 - EPS);
    }
    case FE_LINK_LOGLOG: return clamp(g, sj_exp(g, sj_neg(g, sj_exp(g, sj_neg(g, eta)))), EPS, 1 - EPS);
    case FE_LINK_INVERSE: return sj_recip(g, eta);
    case FE_LINK_INVERSE_SQUARE: return sj_recip(g, sj_sqrt(g, eta));
    case FE_LINK_SQRT: return sj_square(g, eta);
    case FE_LINK_POWER: return floor_eps(g, sj_pow(g, eta, c(g, 1 / l->power)));
    default: return SJ_INVALID;
    }
}

sj_value fe_link_mu_eta(sj_graph *g, const fe_link *l, sj_value eta)
{
    switch (l->id) {
    case FE_LINK_IDENTITY: return fe_glm_ones_like(g, eta);
    case FE_LINK_LOG: return floor_eps(g, sj_exp(g, eta));
    case FE_LINK_LOGIT: {
        /* R's logit_mu_eta: ε outside [-30, 30], else e^η/(1+e^η)² */
        sj_value out = sj_compare(g, SJ_GT, sj_abs(g, eta), c(g, 30.0));
        sj_value es = fe_glm_safe(g, out, eta, 0.0);
        sj_value e = sj_exp(g, es);
        sj_value v = sj_div(g, e, sj_square(g, sj_add(g, c(g, 1.0), e)));
        return sj_select(g, out, c(g, EPS), v);
    }
    case FE_LINK_PROBIT: {
        sj_value phi = sj_mul(g, sj_exp(g, sj_mul(g, sj_square(g, eta), c(g, -0.5))),
                              c(g, 0.39894228040143268));
        return floor_eps(g, phi);
    }
    case FE_LINK_CAUCHIT:
        return floor_eps(g, sj_recip(g, sj_mul(g, c(g, M_PI), sj_add(g, c(g, 1.0), sj_square(g, eta)))));
    case FE_LINK_CLOGLOG: {
        sj_value e = sj_min(g, eta, c(g, 700.0));
        return floor_eps(g, sj_mul(g, sj_exp(g, e), sj_exp(g, sj_neg(g, sj_exp(g, e)))));
    }
    case FE_LINK_LOGLOG: {
        sj_value e = sj_max(g, eta, c(g, -700.0));
        sj_value en = sj_exp(g, sj_neg(g, e));
        return floor_eps(g, sj_mul(g, en, sj_exp(g, sj_neg(g, en))));
    }
    case FE_LINK_INVERSE: return sj_neg(g, sj_recip(g, sj_square(g, eta)));
    case FE_LINK_INVERSE_SQUARE:
        return sj_div(g, c(g, -0.5), sj_pow(g, eta, c(g, 1.5)));
    case FE_LINK_SQRT: return sj_mul(g, c(g, 2.0), eta);
    case FE_LINK_POWER: {
        double p = l->power;
        return floor_eps(g, sj_mul(g, c(g, 1 / p), sj_pow(g, eta, c(g, 1 / p - 1))));
    }
    default: return SJ_INVALID;
    }
}

sj_value fe_link_valid_eta(sj_graph *g, const fe_link *l, sj_value eta)
{
    switch (l->id) {
    case FE_LINK_INVERSE: /* all(is.finite(eta)) && all(eta != 0) */
        return sj_mul(g, fe_glm_all(g, fe_glm_finite(g, eta)),
                      fe_glm_all(g, sj_compare(g, SJ_NE, eta, c(g, 0.0))));
    case FE_LINK_INVERSE_SQUARE:
    case FE_LINK_SQRT:
    case FE_LINK_POWER: /* all(is.finite(eta)) && all(eta > 0) */
        return sj_mul(g, fe_glm_all(g, fe_glm_finite(g, eta)),
                      fe_glm_all(g, sj_compare(g, SJ_GT, eta, c(g, 0.0))));
    default: /* TRUE */
        return c(g, 1.0);
    }
}
