/* GLM families as graph builders: R's gaussian, binomial, poisson, Gamma and
 * inverse.gaussian (stats/R/family.R, stats/src/family.c) and MASS's
 * negative.binomial (MASS/R/negbin.R): variance, deviance residuals, the
 * AIC and log-likelihood pieces, starting values, validity checks and the
 * IRLS working quantities, plus the check of a response against the
 * family's support.  Formulas are R's, term by term (docs/glm.md); the one
 * departure is binomial's AIC, which uses w·y and w as given where R rounds
 * them (R warns about non-integer successes; we have no rounding op).
 *
 * Where R writes y log(y/μ) with 0 log 0 = 0 we use the double-where idiom
 * (the log sees a safe value where y == 0), so derivatives stay finite. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/cov.h"
#include "frontend/glm_family.h"
#include "ir/alloc.h"

/* ---- the family table ------------------------------------------------------------ */

#define MAXLINK 8

static const struct {
    const char *name;  /* R's spelling */
    const char *alias; /* also accepted */
    int dispersion;    /* estimated and counted by AIC */
    fe_link_id link[MAXLINK]; /* allowed links, canonical first, FE_NLINK-terminated */
} families[FE_NFAMILY] = {
    [FE_FAMILY_GAUSSIAN] = {"gaussian", "normal", 1,
                            {FE_LINK_IDENTITY, FE_LINK_LOG, FE_LINK_INVERSE, FE_LINK_POWER, FE_NLINK}},
    [FE_FAMILY_BINOMIAL] = {"binomial", NULL, 0,
                            {FE_LINK_LOGIT, FE_LINK_PROBIT, FE_LINK_CAUCHIT, FE_LINK_LOG,
                             FE_LINK_CLOGLOG, FE_LINK_LOGLOG, FE_NLINK}},
    [FE_FAMILY_POISSON] = {"poisson", NULL, 0,
                           {FE_LINK_LOG, FE_LINK_IDENTITY, FE_LINK_SQRT, FE_LINK_POWER, FE_NLINK}},
    [FE_FAMILY_GAMMA] = {"Gamma", NULL, 1,
                         {FE_LINK_INVERSE, FE_LINK_IDENTITY, FE_LINK_LOG, FE_LINK_POWER, FE_NLINK}},
    [FE_FAMILY_INVERSE_GAUSSIAN] = {"inverse.gaussian", "inverse_gaussian", 1,
                                    {FE_LINK_INVERSE_SQUARE, FE_LINK_INVERSE, FE_LINK_IDENTITY,
                                     FE_LINK_LOG, FE_LINK_POWER, FE_NLINK}},
    [FE_FAMILY_NEGATIVE_BINOMIAL] = {"negative.binomial", "negative_binomial", 0,
                                     {FE_LINK_LOG, FE_LINK_SQRT, FE_LINK_IDENTITY, FE_LINK_POWER,
                                      FE_NLINK}},
};

static const char *const link_names[FE_NLINK] = {
    [FE_LINK_IDENTITY] = "identity", [FE_LINK_LOG] = "log",         [FE_LINK_LOGIT] = "logit",
    [FE_LINK_PROBIT] = "probit",     [FE_LINK_CAUCHIT] = "cauchit", [FE_LINK_CLOGLOG] = "cloglog",
    [FE_LINK_LOGLOG] = "loglog",     [FE_LINK_INVERSE] = "inverse", [FE_LINK_INVERSE_SQUARE] = "1/mu^2",
    [FE_LINK_SQRT] = "sqrt",         [FE_LINK_POWER] = "power",
};

static int same(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

static int allowed(fe_family_id f, fe_link_id l)
{
    for (int k = 0; k < MAXLINK && families[f].link[k] != FE_NLINK; k++)
        if (families[f].link[k] == l)
            return 1;
    return 0;
}

static void allowed_list(fe_family_id f, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < MAXLINK && families[f].link[k] != FE_NLINK; k++)
        len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s", k ? ", " : "",
                                link_names[families[f].link[k]]);
}

static int fam_valid(const sj_glm_family *f) { return f && f->magic == FE_MAGIC_GLM_FAMILY; }

/* "power(p)" with p a number or a ratio a/b ("power(1/3)"), spaces allowed:
 * 1 and *p set; 0 when the name is not of that form; -1 when it starts with
 * "power(" but the exponent is not a number. */
static int parse_power(const char *name, double *p)
{
    static const char pre[] = "power(";
    for (size_t k = 0; k < sizeof pre - 1; k++)
        if (tolower((unsigned char)name[k]) != pre[k])
            return 0;
    const char *s = name + sizeof pre - 1;
    char *end = NULL;
    double a = strtod(s, &end);
    if (end == s)
        return -1;
    s = end;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '/') {
        double b = strtod(s + 1, &end);
        if (end == s + 1 || b == 0)
            return -1;
        a /= b;
        s = end;
        while (isspace((unsigned char)*s))
            s++;
    }
    if (*s != ')' || s[1] != '\0')
        return -1;
    *p = a;
    return 1;
}

sj_status sj_glm_family_create(sj_ctx *ctx, const char *family, const char *link,
                               double link_power, sj_glm_family **out)
{
    if (!fe_ctx_valid(ctx))
        return SJ_ERR_INVALID_ARGUMENT;
    const char *fn = "sj_glm_family_create";
    if (!out || !family)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                            !out ? "out" : "family");
    *out = NULL;
    int f = 0;
    while (f < FE_NFAMILY && !same(family, families[f].name) &&
           !(families[f].alias && same(family, families[f].alias)))
        f++;
    if (f == FE_NFAMILY)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT,
                            "%s: unknown family \"%s\" (families: gaussian, binomial, poisson, "
                            "Gamma, inverse.gaussian, negative.binomial)", fn, family);
    fe_link l;
    char msg[256];
    const char *lname = link ? link : link_names[families[f].link[0]];
    /* "power(p)": the exponent in the name (R's power(lambda)), which then
     * overrides link_power */
    int pw = link ? parse_power(link, &link_power) : 0;
    if (pw < 0)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT,
                            "%s: link \"%s\": the exponent of power(p) must be a number or a "
                            "ratio a/b, e.g. power(0.5) or power(1/3)", fn, link);
    if (pw > 0)
        lname = "power";
    if (fe_link_parse(lname, link_power, &l, msg, sizeof msg) != 0)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "%s: %s", fn, msg);
    /* power(0) and power(1) are log and identity: allowed when those are,
     * or when the family takes power links */
    int ok = allowed((fe_family_id)f, l.id) ||
             (same(lname, "power") && allowed((fe_family_id)f, FE_LINK_POWER));
    if (!ok) {
        char list[160];
        allowed_list((fe_family_id)f, list, sizeof list);
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT,
                            "%s: link \"%s\" is not allowed for the %s family (links: %s)", fn,
                            l.name, families[f].name, list);
    }
    sj_glm_family *fam = ir_calloc(1, sizeof *fam);
    if (!fam)
        return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    fam->magic = FE_MAGIC_GLM_FAMILY;
    fam->ctx = ctx;
    fam->id = (fe_family_id)f;
    fam->link = l;
    fam->theta = NAN;
    *out = fam;
    return SJ_OK;
}

void sj_glm_family_free(sj_glm_family *fam)
{
    if (!fam_valid(fam))
        return;
    fam->magic = 0;
    ir_free(fam);
}

const char *(sj_glm_family_name)(const sj_glm_family *fam)
{
    return fam_valid(fam) ? families[fam->id].name : NULL;
}

const char *(sj_glm_link_name)(const sj_glm_family *fam)
{
    return fam_valid(fam) ? fam->link.name : NULL;
}

int sj_glm_family_has_dispersion(const sj_glm_family *fam)
{
    return fam_valid(fam) ? families[fam->id].dispersion : -1;
}

sj_status sj_glm_family_set_theta(sj_glm_family *fam, double theta)
{
    if (!fam_valid(fam))
        return SJ_ERR_INVALID_ARGUMENT;
    const char *fn = "sj_glm_family_set_theta";
    if (fam->id != FE_FAMILY_NEGATIVE_BINOMIAL)
        return fe_ctx_failf(fam->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "%s: the %s family has no theta", fn, families[fam->id].name);
    if (!(theta > 0) || !isfinite(theta))
        return fe_ctx_failf(fam->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "%s: theta = %g must be finite and > 0", fn, theta);
    fam->theta = theta;
    return SJ_OK;
}

/* ---- argument checks ---------------------------------------------------------------- */

/* Entry check of a builder: 0 to go on, -1 to return SJ_INVALID (quietly
 * when g already failed). */
static int enter(sj_graph *g, const sj_glm_family *fam, const char *fn, int nv,
                 const sj_value *v, const char *const *what)
{
    if (!fe_graph_valid(g) || !ir_graph_ok(g->ir))
        return -1;
    if (!fam_valid(fam)) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: family is not a valid sj_glm_family", fn);
        return -1;
    }
    for (int i = 0; i < nv; i++)
        if (fe_cov_arg(g, v[i], fn, what[i]) == IR_NONE)
            return -1;
    return 0;
}

static sj_value done(sj_graph *g, sj_value v) { return ir_graph_ok(g->ir) ? v : SJ_INVALID; }

/* The family's θ as a constant; SJ_INVALID (recorded) when not set. */
static sj_value theta_of(sj_graph *g, const sj_glm_family *fam, const char *fn)
{
    if (isnan(fam->theta)) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT,
                    "%s: negative.binomial theta is not set (sj_glm_family_set_theta, or the "
                    "sj_glm_nb_* builders with theta as a value)", fn);
        return SJ_INVALID;
    }
    return sj_scalar(g, fam->theta);
}

#define ARGS(...) (int)(sizeof((sj_value[]){__VA_ARGS__}) / sizeof(sj_value)), (sj_value[]){__VA_ARGS__}
#define NAMES(...) (const char *const[]){__VA_ARGS__}

static sj_value c(sj_graph *g, double v) { return sj_scalar(g, v); }

/* x log(y_safe/mu) where x != 0, else 0 (R's y_log_y and 0 log 0 = 0).
 * Where x == 0 the value is −x log μ (= 0): it keeps the mixed derivative
 * ∂²/∂x∂μ = −1/μ of x log(y/μ), which the implicit derivative of a fit with
 * respect to a zero response needs (a constant 0 there would drop it). */
static sj_value xlog_ratio(sj_graph *g, sj_value x, sj_value y, sj_value mu)
{
    sj_value zero = sj_compare(g, SJ_EQ, x, c(g, 0.0));
    sj_value ys = fe_glm_safe(g, zero, y, 1.0), ms = fe_glm_safe(g, zero, mu, 1.0);
    sj_value pos = sj_compare(g, SJ_GT, mu, c(g, 0.0));
    sj_value mz = fe_glm_safe(g, sj_sub(g, c(g, 1.0), pos), mu, 1.0);
    sj_value at0 = sj_neg(g, sj_mul(g, x, sj_log(g, mz)));
    return sj_select(g, zero, at0, sj_mul(g, x, sj_log(g, sj_div(g, ys, ms))));
}

/* x log(mu), 0 where x == 0. */
static sj_value xlogy(sj_graph *g, sj_value x, sj_value mu)
{
    sj_value zero = sj_compare(g, SJ_EQ, x, c(g, 0.0));
    sj_value ms = fe_glm_safe(g, zero, mu, 1.0);
    return sj_select(g, zero, c(g, 0.0), sj_mul(g, x, sj_log(g, ms)));
}

/* ---- negative binomial with θ a value ------------------------------------------------- */

static sj_value nb_variance(sj_graph *g, sj_value mu, sj_value theta)
{
    return sj_add(g, mu, sj_div(g, sj_square(g, mu), theta));
}

/* MASS: 2 w (y log(max(1, y)/μ) - (y + θ) log((y + θ)/(μ + θ))). */
static sj_value nb_dev(sj_graph *g, sj_value y, sj_value mu, sj_value w, sj_value theta)
{
    sj_value a = sj_mul(g, y, sj_log(g, sj_div(g, sj_max(g, y, c(g, 1.0)), mu)));
    sj_value yt = sj_add(g, y, theta);
    sj_value b = sj_mul(g, yt, sj_log(g, sj_div(g, yt, sj_add(g, mu, theta))));
    return sj_mul(g, sj_mul(g, c(g, 2.0), w), sj_sub(g, a, b));
}

/* Σ w [lgamma(θ+y) - lgamma(θ) - lgamma(y+1) + θ log θ + y log μ - (θ+y) log(θ+μ)]:
 * MASS's negative.binomial()$aic is -2 times this. */
static sj_value nb_loglik(sj_graph *g, sj_value y, sj_value mu, sj_value w, sj_value theta)
{
    sj_value yt = sj_add(g, y, theta);
    sj_value t = sj_sub(g, sj_lgamma(g, yt), sj_lgamma(g, theta));
    t = sj_sub(g, t, sj_lgamma(g, sj_add(g, y, c(g, 1.0))));
    t = sj_add(g, t, sj_mul(g, theta, sj_log(g, theta)));
    t = sj_add(g, t, xlogy(g, y, mu));
    t = sj_sub(g, t, sj_mul(g, yt, sj_log(g, sj_add(g, mu, theta))));
    return sj_sum_all(g, sj_mul(g, w, t));
}

/* Entry check of the sj_glm_nb_* builders (no family). */
static int nb_enter(sj_graph *g, const char *fn, int nv, const sj_value *v,
                    const char *const *what)
{
    if (!fe_graph_valid(g) || !ir_graph_ok(g->ir))
        return -1;
    for (int i = 0; i < nv; i++)
        if (fe_cov_arg(g, v[i], fn, what[i]) == IR_NONE)
            return -1;
    return 0;
}

sj_value sj_glm_nb_variance(sj_graph *g, sj_value mu, sj_value theta)
{
    if (nb_enter(g, "sj_glm_nb_variance", ARGS(mu, theta), NAMES("mu", "theta")))
        return SJ_INVALID;
    return done(g, nb_variance(g, mu, theta));
}

sj_value sj_glm_nb_dev_resids(sj_graph *g, sj_value y, sj_value mu, sj_value weights,
                              sj_value theta)
{
    if (nb_enter(g, "sj_glm_nb_dev_resids", ARGS(y, mu, weights, theta),
                 NAMES("y", "mu", "weights", "theta")))
        return SJ_INVALID;
    return done(g, nb_dev(g, y, mu, weights, theta));
}

sj_value sj_glm_nb_loglik(sj_graph *g, sj_value y, sj_value mu, sj_value weights, sj_value theta)
{
    if (nb_enter(g, "sj_glm_nb_loglik", ARGS(y, mu, weights, theta),
                 NAMES("y", "mu", "weights", "theta")))
        return SJ_INVALID;
    return done(g, nb_loglik(g, y, mu, weights, theta));
}

/* ---- links ----------------------------------------------------------------------------- */

sj_value sj_glm_linkfun(sj_graph *g, const sj_glm_family *fam, sj_value mu)
{
    if (enter(g, fam, "sj_glm_linkfun", ARGS(mu), NAMES("mu")))
        return SJ_INVALID;
    return done(g, fe_link_fun(g, &fam->link, mu));
}

sj_value sj_glm_linkinv(sj_graph *g, const sj_glm_family *fam, sj_value eta)
{
    if (enter(g, fam, "sj_glm_linkinv", ARGS(eta), NAMES("eta")))
        return SJ_INVALID;
    return done(g, fe_link_inv(g, &fam->link, eta));
}

sj_value sj_glm_mu_eta(sj_graph *g, const sj_glm_family *fam, sj_value eta)
{
    if (enter(g, fam, "sj_glm_mu_eta", ARGS(eta), NAMES("eta")))
        return SJ_INVALID;
    return done(g, fe_link_mu_eta(g, &fam->link, eta));
}

sj_value sj_glm_valid_eta(sj_graph *g, const sj_glm_family *fam, sj_value eta)
{
    if (enter(g, fam, "sj_glm_valid_eta", ARGS(eta), NAMES("eta")))
        return SJ_INVALID;
    return done(g, fe_link_valid_eta(g, &fam->link, eta));
}

/* ---- family builders ---------------------------------------------------------------------- */

static sj_value variance(sj_graph *g, const sj_glm_family *fam, sj_value mu, const char *fn)
{
    switch (fam->id) {
    case FE_FAMILY_GAUSSIAN: return fe_glm_ones_like(g, mu);
    case FE_FAMILY_BINOMIAL: return sj_mul(g, mu, sj_sub(g, c(g, 1.0), mu));
    case FE_FAMILY_POISSON: return mu;
    case FE_FAMILY_GAMMA: return sj_square(g, mu);
    case FE_FAMILY_INVERSE_GAUSSIAN: return sj_mul(g, mu, sj_square(g, mu));
    case FE_FAMILY_NEGATIVE_BINOMIAL: return nb_variance(g, mu, theta_of(g, fam, fn));
    default: return SJ_INVALID;
    }
}

sj_value sj_glm_variance(sj_graph *g, const sj_glm_family *fam, sj_value mu)
{
    const char *fn = "sj_glm_variance";
    if (enter(g, fam, fn, ARGS(mu), NAMES("mu")))
        return SJ_INVALID;
    return done(g, variance(g, fam, mu, fn));
}

static sj_value dev_resids(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value mu,
                           sj_value w, const char *fn)
{
    sj_value one = c(g, 1.0), two = c(g, 2.0);
    switch (fam->id) {
    case FE_FAMILY_GAUSSIAN: /* w (y - μ)² */
        return sj_mul(g, w, sj_square(g, sj_sub(g, y, mu)));
    case FE_FAMILY_BINOMIAL: { /* 2 w (y log(y/μ) + (1-y) log((1-y)/(1-μ))) */
        sj_value y1 = sj_sub(g, one, y), m1 = sj_sub(g, one, mu);
        sj_value s = sj_add(g, xlog_ratio(g, y, y, mu), xlog_ratio(g, y1, y1, m1));
        return sj_mul(g, sj_mul(g, two, w), s);
    }
    case FE_FAMILY_POISSON: /* 2 (y > 0 ? w (y log(y/μ) - (y - μ)) : μ w): one formula, as
                             * y log(y/μ) is 0 at y = 0 */
        return sj_mul(g, two, sj_mul(g, w, sj_sub(g, xlog_ratio(g, y, y, mu), sj_sub(g, y, mu))));
    case FE_FAMILY_GAMMA: { /* -2 w (log(y == 0 ? 1 : y/μ) - (y - μ)/μ) */
        sj_value zero = sj_compare(g, SJ_EQ, y, c(g, 0.0));
        sj_value ratio = sj_select(g, zero, one, sj_div(g, y, mu));
        sj_value s = sj_sub(g, sj_log(g, ratio), sj_div(g, sj_sub(g, y, mu), mu));
        return sj_mul(g, sj_mul(g, c(g, -2.0), w), s);
    }
    case FE_FAMILY_INVERSE_GAUSSIAN: /* w (y - μ)² / (y μ²) */
        return sj_div(g, sj_mul(g, w, sj_square(g, sj_sub(g, y, mu))),
                      sj_mul(g, y, sj_square(g, mu)));
    case FE_FAMILY_NEGATIVE_BINOMIAL: return nb_dev(g, y, mu, w, theta_of(g, fam, fn));
    default: return SJ_INVALID;
    }
}

sj_value sj_glm_dev_resids(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value mu,
                           sj_value weights)
{
    const char *fn = "sj_glm_dev_resids";
    if (enter(g, fam, fn, ARGS(y, mu, weights), NAMES("y", "mu", "weights")))
        return SJ_INVALID;
    return done(g, dev_resids(g, fam, y, mu, weights, fn));
}

sj_value sj_glm_deviance(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value mu,
                         sj_value weights)
{
    const char *fn = "sj_glm_deviance";
    if (enter(g, fam, fn, ARGS(y, mu, weights), NAMES("y", "mu", "weights")))
        return SJ_INVALID;
    return done(g, sj_sum_all(g, dev_resids(g, fam, y, mu, weights, fn)));
}

/* log dbinom(k; m, μ) = lchoose(m, k) + k log μ + (m-k) log(1-μ). */
static sj_value log_dbinom(sj_graph *g, sj_value k, sj_value m, sj_value mu)
{
    sj_value one = c(g, 1.0);
    sj_value mk = sj_sub(g, m, k);
    sj_value lchoose = sj_sub(g, sj_sub(g, sj_lgamma(g, sj_add(g, m, one)),
                                        sj_lgamma(g, sj_add(g, k, one))),
                              sj_lgamma(g, sj_add(g, mk, one)));
    return sj_add(g, lchoose, sj_add(g, xlogy(g, k, mu), xlogy(g, mk, sj_sub(g, one, mu))));
}

static sj_value aic(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value mu, sj_value w,
                    sj_value dev, const char *fn)
{
    sj_value one = c(g, 1.0), two = c(g, 2.0), two_pi = c(g, 2 * M_PI);
    switch (fam->id) {
    case FE_FAMILY_GAUSSIAN: { /* nobs (log(2π dev/nobs) + 1) + 2 - Σ log w */
        sj_value nobs = sj_sum_all(g, fe_glm_ones_like(g, y));
        sj_value a = sj_mul(g, nobs, sj_add(g, sj_log(g, sj_mul(g, sj_div(g, dev, nobs), two_pi)), one));
        sj_value logw = sj_sum_all(g, sj_log(g, sj_mul(g, w, fe_glm_ones_like(g, y))));
        return sj_sub(g, sj_add(g, a, two), logw);
    }
    case FE_FAMILY_BINOMIAL: { /* -2 Σ_{w > 0} dbinom(w y, w, μ, log) (R rounds w y and w) */
        sj_value pos = sj_compare(g, SJ_GT, w, c(g, 0.0));
        sj_value ld = log_dbinom(g, sj_mul(g, w, y), w, mu);
        return sj_mul(g, c(g, -2.0), sj_sum_all(g, sj_select(g, pos, ld, c(g, 0.0))));
    }
    case FE_FAMILY_POISSON: { /* -2 Σ w dpois(y, μ, log) */
        sj_value ld = sj_sub(g, sj_sub(g, xlogy(g, y, mu), mu), sj_lgamma(g, sj_add(g, y, one)));
        return sj_mul(g, c(g, -2.0), sj_sum_all(g, sj_mul(g, w, ld)));
    }
    case FE_FAMILY_GAMMA: { /* -2 Σ w dgamma(y, shape 1/disp, scale μ disp, log) + 2, disp = dev/Σw */
        sj_value disp = sj_div(g, dev, sj_sum_all(g, sj_mul(g, w, fe_glm_ones_like(g, y))));
        sj_value a = sj_recip(g, disp), s = sj_mul(g, mu, disp);
        sj_value ld = sj_sub(g, sj_neg(g, sj_lgamma(g, a)), sj_mul(g, a, sj_log(g, s)));
        ld = sj_add(g, ld, sj_mul(g, sj_sub(g, a, one), sj_log(g, y)));
        ld = sj_sub(g, ld, sj_div(g, y, s));
        return sj_add(g, sj_mul(g, c(g, -2.0), sj_sum_all(g, sj_mul(g, w, ld))), two);
    }
    case FE_FAMILY_INVERSE_GAUSSIAN: { /* Σw (1 + log(2π dev/Σw)) + 3 Σ w log y + 2 */
        sj_value sw = sj_sum_all(g, sj_mul(g, w, fe_glm_ones_like(g, y)));
        sj_value a = sj_mul(g, sw, sj_add(g, one, sj_log(g, sj_mul(g, sj_div(g, dev, sw), two_pi))));
        sj_value b = sj_mul(g, c(g, 3.0), sj_sum_all(g, sj_mul(g, w, sj_log(g, y))));
        return sj_add(g, sj_add(g, a, b), two);
    }
    case FE_FAMILY_NEGATIVE_BINOMIAL:
        return sj_mul(g, c(g, -2.0), nb_loglik(g, y, mu, w, theta_of(g, fam, fn)));
    default: return SJ_INVALID;
    }
}

sj_value sj_glm_aic(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value mu,
                    sj_value weights, sj_value dev)
{
    const char *fn = "sj_glm_aic";
    if (enter(g, fam, fn, ARGS(y, mu, weights, dev), NAMES("y", "mu", "weights", "dev")))
        return SJ_INVALID;
    return done(g, aic(g, fam, y, mu, weights, dev, fn));
}

sj_value sj_glm_loglik(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value mu,
                       sj_value weights, sj_value dev)
{
    const char *fn = "sj_glm_loglik";
    if (enter(g, fam, fn, ARGS(y, mu, weights, dev), NAMES("y", "mu", "weights", "dev")))
        return SJ_INVALID;
    sj_value a = aic(g, fam, y, mu, weights, dev, fn);
    return done(g, sj_sub(g, c(g, families[fam->id].dispersion), sj_mul(g, c(g, 0.5), a)));
}

sj_value sj_glm_mustart(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value weights)
{
    if (enter(g, fam, "sj_glm_mustart", ARGS(y, weights), NAMES("y", "weights")))
        return SJ_INVALID;
    sj_value r;
    switch (fam->id) {
    case FE_FAMILY_BINOMIAL: /* (w y + 1/2)/(w + 1) */
        r = sj_div(g, sj_add(g, sj_mul(g, weights, y), c(g, 0.5)), sj_add(g, weights, c(g, 1.0)));
        break;
    case FE_FAMILY_POISSON: r = sj_add(g, y, c(g, 0.1)); break;
    case FE_FAMILY_NEGATIVE_BINOMIAL: /* y + (y == 0)/6 */
        r = sj_add(g, y, sj_div(g, sj_compare(g, SJ_EQ, y, c(g, 0.0)), c(g, 6.0)));
        break;
    default: r = y; break;
    }
    return done(g, r);
}

sj_value sj_glm_valid_mu(sj_graph *g, const sj_glm_family *fam, sj_value mu)
{
    if (enter(g, fam, "sj_glm_valid_mu", ARGS(mu), NAMES("mu")))
        return SJ_INVALID;
    sj_value zero = c(g, 0.0), r;
    switch (fam->id) {
    case FE_FAMILY_BINOMIAL: /* all(is.finite(mu)) && all(mu > 0 & mu < 1) */
        r = sj_mul(g, fe_glm_all(g, fe_glm_finite(g, mu)),
                   fe_glm_all(g, sj_mul(g, sj_compare(g, SJ_GT, mu, zero),
                                        sj_compare(g, SJ_LT, mu, c(g, 1.0)))));
        break;
    case FE_FAMILY_POISSON:
    case FE_FAMILY_GAMMA: /* all(is.finite(mu)) && all(mu > 0) */
        r = sj_mul(g, fe_glm_all(g, fe_glm_finite(g, mu)),
                   fe_glm_all(g, sj_compare(g, SJ_GT, mu, zero)));
        break;
    case FE_FAMILY_NEGATIVE_BINOMIAL: /* all(mu > 0) */
        r = fe_glm_all(g, sj_compare(g, SJ_GT, mu, zero));
        break;
    default: r = c(g, 1.0); break; /* gaussian, inverse.gaussian: TRUE */
    }
    return done(g, r);
}

sj_value sj_glm_working_weights(sj_graph *g, const sj_glm_family *fam, sj_value eta,
                                sj_value weights)
{
    const char *fn = "sj_glm_working_weights";
    if (enter(g, fam, fn, ARGS(eta, weights), NAMES("eta", "weights")))
        return SJ_INVALID;
    sj_value mu = fe_link_inv(g, &fam->link, eta), d = fe_link_mu_eta(g, &fam->link, eta);
    return done(g, sj_div(g, sj_mul(g, weights, sj_square(g, d)), variance(g, fam, mu, fn)));
}

sj_value sj_glm_working_response(sj_graph *g, const sj_glm_family *fam, sj_value y, sj_value eta)
{
    if (enter(g, fam, "sj_glm_working_response", ARGS(y, eta), NAMES("y", "eta")))
        return SJ_INVALID;
    sj_value mu = fe_link_inv(g, &fam->link, eta), d = fe_link_mu_eta(g, &fam->link, eta);
    return done(g, sj_add(g, eta, sj_div(g, sj_sub(g, y, mu), d)));
}

/* ---- response check ------------------------------------------------------------------------ */

sj_status sj_glm_check_response(const sj_glm_family *fam, const double *y,
                                const double *weights, size_t n)
{
    if (!fam_valid(fam))
        return SJ_ERR_INVALID_ARGUMENT;
    const char *fn = "sj_glm_check_response", *name = families[fam->id].name;
    if (!y && n > 0)
        return fe_ctx_failf(fam->ctx, SJ_ERR_INVALID_ARGUMENT, "%s: y is NULL", fn);
    for (size_t i = 0; i < n; i++) {
        double v = y[i], w = weights ? weights[i] : 1.0;
        size_t row = i + 1;
        if (!isfinite(w) || w < 0)
            return fe_ctx_failf(fam->ctx, SJ_ERR_DOMAIN, "%s: row %zu: %s weight %g", fn, row,
                                isfinite(w) ? "negative" : "non-finite", w);
        if (!isfinite(v))
            return fe_ctx_failf(fam->ctx, SJ_ERR_DOMAIN,
                                "%s: row %zu: response %g is not finite (%s family)", fn, row, v,
                                name);
        const char *bad = NULL;
        switch (fam->id) {
        case FE_FAMILY_BINOMIAL:
            if (w > 0 && (v < 0 || v > 1))
                bad = "proportion %g outside [0, 1]";
            break;
        case FE_FAMILY_POISSON:
        case FE_FAMILY_NEGATIVE_BINOMIAL:
            if (v < 0)
                bad = "negative count %g";
            break;
        case FE_FAMILY_GAMMA:
        case FE_FAMILY_INVERSE_GAUSSIAN:
            if (v <= 0)
                bad = "non-positive value %g";
            break;
        case FE_FAMILY_GAUSSIAN:
            if (fam->link.id == FE_LINK_LOG && v <= 0)
                bad = "value %g <= 0 with the log link (no valid starting value)";
            else if (fam->link.id == FE_LINK_INVERSE && v == 0)
                bad = "value %g = 0 with the inverse link (no valid starting value)";
            break;
        default: break;
        }
        if (bad) {
            char what[96];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            snprintf(what, sizeof what, bad, v);
#pragma GCC diagnostic pop
            return fe_ctx_failf(fam->ctx, SJ_ERR_DOMAIN, "%s: row %zu: %s for the %s family", fn,
                                row, what, name);
        }
    }
    return SJ_OK;
}
