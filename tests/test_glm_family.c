/* GLM families and links (frontend/glm_*.c) against R.
 *
 *   - every allowed family/link pair on R's grids (data/glm_family_golden.h,
 *     made by data/make_glm_family_golden.R): linkfun, linkinv, mu.eta,
 *     variance, dev.resids and aic, through the reference evaluator and
 *     through native code;
 *   - derivatives of the builders against central finite differences;
 *   - family/link pairs that are not allowed, unknown names, bad θ;
 *   - response checks that name the first bad row;
 *   - end to end without a fit: deviance and AIC at R's β̂ for warpbreaks
 *     (poisson), mtcars (gaussian) and mtcars (Gamma, log), against the
 *     goldens of /work/shared/data/golden/glm_*.json (values copied below).
 *
 * Tolerances: 1e-13 relative (plus 1e-300 absolute) against R for short
 * chains of libm calls; the exceptions are named where they occur. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "data/glm_family_golden.h"

/* ---- evaluation -------------------------------------------------------------------- */

/* Evaluates the function (outs of e->g) at rank-1 inputs of lengths len[i],
 * by the reference evaluator (native = 0) or compiled code (native = 1). */
static void eval_vec(test_graph *e, int nout, const sj_value *outs, int nin, const int64_t *len,
                     const double *const *in, double *const *res, int native)
{
    assert_ok(sj_graph_status(e->g), e->ctx);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(e->g, nout, outs, &fn), e->ctx);
    assert_int_equal(sj_fn_ninput(fn), nin);
    int ranks[8];
    const int64_t *dims[8];
    for (int i = 0; i < nin; i++) {
        ranks[i] = 1;
        dims[i] = &len[i];
    }
    sj_compiled *c = NULL;
    if (native) {
        assert_ok(sj_fn_compile(fn, nin, ranks, dims, &c), e->ctx);
        assert_ok(sj_compiled_call(c, in, res), e->ctx);
    } else {
        assert_ok(sj_fn_specialize(fn, nin, ranks, dims, &c), e->ctx);
        assert_ok(sj_compiled_eval(c, in, res), e->ctx);
    }
    sj_compiled_free(c);
    sj_fn_free(fn);
}

static sj_value vec(sj_graph *g, const char *name, const char *dim)
{
    return sj_input(g, name, 1, (const char *[]){dim});
}

static sj_glm_family *family(test_graph *e, const char *f, const char *link, double p)
{
    sj_glm_family *fam = NULL;
    assert_ok(sj_glm_family_create(e->ctx, f, link, p, &fam), e->ctx);
    if (strcmp(f, "negative.binomial") == 0)
        assert_ok(sj_glm_family_set_theta(fam, GLM_GOLDEN_THETA), e->ctx);
    return fam;
}

/* ---- R's grids ----------------------------------------------------------------------- */

static void check_golden(void **state, int native)
{
    test_graph *e = *state;
    size_t ncase = sizeof glm_golden / sizeof glm_golden[0];
    for (size_t k = 0; k < ncase; k++) {
        const struct glm_golden *r = &glm_golden[k];
        sj_graph *g = NULL;
        assert_ok(sj_graph_create(e->ctx, &g), e->ctx);
        test_graph t = {e->ctx, g};
        sj_glm_family *fam = family(&t, r->family, r->link, r->power);
        sj_value mu = vec(g, "mu", "n"), eta = vec(g, "eta", "n"), y = vec(g, "y", "n"),
                 wt = vec(g, "wt", "n");
        sj_value dev = sj_glm_deviance(g, fam, y, mu, wt);
        sj_value outs[6] = {sj_glm_linkfun(g, fam, mu), sj_glm_linkinv(g, fam, eta),
                            sj_glm_mu_eta(g, fam, eta),  sj_glm_variance(g, fam, mu),
                            sj_glm_dev_resids(g, fam, y, mu, wt),
                            sj_glm_aic(g, fam, y, mu, wt, dev)};
        double got[6][6], aic;
        double *res[6] = {got[0], got[1], got[2], got[3], got[4], &aic};
        const double *in[4] = {r->mu, r->eta, r->y, r->wt};
        print_message("%-18s %-9s %s\n", r->family, sj_glm_link_name(fam), native ? "native" : "");
        eval_vec(&t, 6, outs, 4, (int64_t[]){6, 6, 6, 6}, in, res, native);
        /* cauchit's linkfun at μ = 1e-10 and loglog's tails: a few ulp of
         * tan/exp chains; 1e-13 holds everywhere on these grids */
        assert_close(got[0], r->linkfun, 6, 1e-13, 1e-300);
        assert_close(got[1], r->linkinv, 6, 1e-13, 1e-300);
        assert_close(got[2], r->mu_eta, 6, 1e-13, 1e-300);
        assert_close(got[3], r->variance, 6, 1e-13, 1e-300);
        assert_close(got[4], r->dev_resids, 6, 1e-12, 1e-13);
        assert_close(&aic, &r->aic, 1, 1e-12, 0);
        sj_glm_family_free(fam);
        sj_graph_free(g);
    }
}

static void test_golden_eval(void **state) { check_golden(state, 0); }
static void test_golden_native(void **state) { check_golden(state, 1); }

/* ---- derivatives ------------------------------------------------------------------------- */

/* d/dx of out(x) (a scalar function of input 0; inputs 1.. fixed) by grad,
 * against central differences with h relative to |x|. */
static void check_grad(test_graph *e, sj_value out, int nin, const int64_t *len,
                       const double *const *in, double rtol)
{
    sj_fn *fn = NULL, *gr = NULL;
    assert_ok(sj_fn_create(e->g, 1, &out, &fn), e->ctx);
    assert_ok(sj_grad(fn, 0, 1, (int[]){0}, &gr), e->ctx);
    int ranks[8];
    const int64_t *dims[8];
    for (int i = 0; i < nin; i++) {
        ranks[i] = 1;
        dims[i] = &len[i];
    }
    size_t n = (size_t)len[0];
    double *gv = calloc(n, sizeof *gv), *fd = calloc(n, sizeof *fd), *x = malloc(n * sizeof *x);
    assert_ok(sj_fn_call(gr, nin, ranks, dims, in, (double *[]){gv}), e->ctx);
    memcpy(x, in[0], n * sizeof *x);
    const double *in2[8];
    for (int i = 0; i < nin; i++)
        in2[i] = in[i];
    in2[0] = x;
    for (size_t i = 0; i < n; i++) {
        double h = 1e-6 * fmax(fabs(in[0][i]), 1e-3), fp, fm;
        x[i] = in[0][i] + h;
        assert_ok(sj_fn_call(fn, nin, ranks, dims, in2, (double *[]){&fp}), e->ctx);
        x[i] = in[0][i] - h;
        assert_ok(sj_fn_call(fn, nin, ranks, dims, in2, (double *[]){&fm}), e->ctx);
        x[i] = in[0][i];
        fd[i] = (fp - fm) / (2 * h);
    }
    assert_close(gv, fd, n, rtol, 1e-8);
    free(gv);
    free(fd);
    free(x);
    sj_fn_free(gr);
    sj_fn_free(fn);
}

/* ∂deviance/∂μ and ∂aic/∂μ for every family; d Σ linkinv(η)/dη for the links
 * with special functions (probit, cauchit in both tails, loglog, cloglog). */
static void test_derivatives(void **state)
{
    test_graph *e = *state;
    static const struct {
        const char *f, *link;
        double y[5], mu[5];
    } c[] = {
        {"gaussian", "identity", {-1, 0.5, 2, 3, 10}, {0.3, 0.6, 1.5, 4, 9}},
        {"binomial", "logit", {0, 0.25, 0.5, 1, 1}, {0.1, 0.3, 0.5, 0.7, 0.95}},
        {"poisson", "log", {0, 1, 3, 0, 7}, {0.5, 1.2, 2, 0.1, 9}},
        {"Gamma", "inverse", {0.5, 0.2, 1.3, 2.5, 12}, {0.6, 0.3, 1, 3, 10}},
        {"inverse.gaussian", "1/mu^2", {0.5, 0.2, 1.3, 2.5, 12}, {0.6, 0.3, 1, 3, 10}},
        {"negative.binomial", "log", {0, 1, 3, 0, 7}, {0.5, 1.2, 2, 0.1, 9}},
    };
    static const double w[5] = {1, 2, 1, 0.5, 3};
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        sj_graph *g = NULL;
        assert_ok(sj_graph_create(e->ctx, &g), e->ctx);
        test_graph t = {e->ctx, g};
        sj_glm_family *fam = family(&t, c[k].f, c[k].link, 0);
        sj_value mu = vec(g, "mu", "n"), y = vec(g, "y", "n"), wt = vec(g, "w", "n");
        sj_value dev = sj_glm_deviance(g, fam, y, mu, wt);
        const double *in[3] = {c[k].mu, c[k].y, w};
        check_grad(&t, dev, 3, (int64_t[]){5, 5, 5}, in, 1e-6);
        check_grad(&t, sj_glm_aic(g, fam, y, mu, wt, dev), 3, (int64_t[]){5, 5, 5}, in, 1e-6);
        sj_glm_family_free(fam);
        sj_graph_free(g);
    }
    static const struct {
        const char *link;
        double eta[6];
    } l[] = {
        {"probit", {-6, -2, -0.3, 0.4, 2.5, 7}},
        {"cauchit", {-50, -3, -0.5, 0.9, 1.5, 20}},
        {"cloglog", {-5, -1, 0, 0.5, 1, 2.5}},
        {"loglog", {-2.5, -1, 0, 0.5, 1, 5}},
        {"logit", {-8, -1, 0, 0.5, 1, 8}},
    };
    for (size_t k = 0; k < sizeof l / sizeof l[0]; k++) {
        sj_graph *g = NULL;
        assert_ok(sj_graph_create(e->ctx, &g), e->ctx);
        test_graph t = {e->ctx, g};
        sj_glm_family *fam = family(&t, "binomial", l[k].link, 0);
        sj_value eta = vec(g, "eta", "n");
        const double *in[1] = {l[k].eta};
        check_grad(&t, sj_sum_all(g, sj_glm_linkinv(g, fam, eta)), 1, (int64_t[]){6}, in, 1e-6);
        /* the derivative of linkinv is mu.eta (no clamp active on this grid);
         * cloglog's linkinv -expm1(-e^η) differentiates through expm1' =
         * expm1 + 1, which cancels in the upper tail (4.6e-12 at η = 2.5);
         * elsewhere different but equivalent formulas: 1e-12 */
        sj_fn *fn = NULL, *gr = NULL;
        sj_value s = sj_sum_all(g, sj_glm_linkinv(g, fam, eta)), me = sj_glm_mu_eta(g, fam, eta);
        assert_ok(sj_fn_create(g, 2, (sj_value[]){s, me}, &fn), e->ctx);
        assert_ok(sj_grad(fn, 0, 0, NULL, &gr), e->ctx);
        double gv[6], mev[6], sv;
        const int64_t n6 = 6;
        assert_ok(sj_fn_call(gr, 1, (int[]){1}, (const int64_t *[]){&n6}, in, (double *[]){gv}),
                  e->ctx);
        assert_ok(sj_fn_call(fn, 1, (int[]){1}, (const int64_t *[]){&n6}, in,
                             (double *[]){&sv, mev}), e->ctx);
        assert_close(gv, mev, 6, strcmp(l[k].link, "cloglog") ? 1e-12 : 1e-10, 1e-300);
        sj_fn_free(gr);
        sj_fn_free(fn);
        sj_glm_family_free(fam);
        sj_graph_free(g);
    }
}

/* Negative binomial with θ a value: loglik = -aic/2 at the family's θ, and
 * its θ-derivative (what MASS's theta.ml solves) against differences. */
static void test_negative_binomial_theta(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_glm_family *fam = family(e, "negative.binomial", NULL, 0);
    sj_value th = vec(g, "theta", "1"), y = vec(g, "y", "n"), mu = vec(g, "mu", "n"),
             w = vec(g, "w", "n");
    sj_value ths = sj_sum_all(g, th);
    sj_value ll = sj_glm_nb_loglik(g, y, mu, w, ths);
    sj_value dev = sj_glm_deviance(g, fam, y, mu, w);
    sj_value outs[4] = {ll, sj_glm_aic(g, fam, y, mu, w, dev),
                        sj_sum_all(g, sj_sub(g, sj_glm_nb_dev_resids(g, y, mu, w, ths),
                                             sj_glm_dev_resids(g, fam, y, mu, w))),
                        sj_sum_all(g, sj_sub(g, sj_glm_nb_variance(g, mu, ths),
                                             sj_glm_variance(g, fam, mu)))};
    static const double thv[1] = {GLM_GOLDEN_THETA}, yv[5] = {0, 1, 3, 0, 7},
                        muv[5] = {0.5, 1.2, 2, 0.1, 9}, wv[5] = {1, 2, 1, 0.5, 3};
    double r[4];
    eval_vec(e, 4, outs, 4, (int64_t[]){1, 5, 5, 5}, (const double *[]){thv, yv, muv, wv},
             (double *[]){&r[0], &r[1], &r[2], &r[3]}, 0);
    assert_close(&r[0], (double[]){-0.5 * r[1]}, 1, 1e-14, 0);
    assert_close(&r[2], (double[]){0}, 1, 0, 0);
    assert_close(&r[3], (double[]){0}, 1, 0, 0);
    check_grad(e, ll, 4, (int64_t[]){1, 5, 5, 5}, (const double *[]){thv, yv, muv, wv}, 1e-6);
    sj_glm_family_free(fam);
}

/* ---- names, pairs, θ ----------------------------------------------------------------------- */

static void test_names_and_pairs(void **state)
{
    test_graph *e = *state;
    static const struct {
        const char *f, *link;
        double p;
        const char *family, *name;
        int disp;
    } ok[] = {
        {"gaussian", NULL, 0, "gaussian", "identity", 1},
        {"BINOMIAL", NULL, 0, "binomial", "logit", 0},
        {"poisson", NULL, 0, "poisson", "log", 0},
        {"gamma", NULL, 0, "Gamma", "inverse", 1},
        {"Inverse.Gaussian", NULL, 0, "inverse.gaussian", "1/mu^2", 1},
        {"negative_binomial", NULL, 0, "negative.binomial", "log", 0},
        {"binomial", "LogLog", 0, "binomial", "loglog", 0},
        {"poisson", "power", 0.5, "poisson", "mu^0.5", 0},
        {"poisson", "power", 0, "poisson", "log", 0},
        {"Gamma", "power", 1, "Gamma", "identity", 1},
        {"binomial", "power", 0, "binomial", "log", 0},
        {"Gamma", "power", 0.3333333, "Gamma", "mu^0.333", 1},
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        sj_glm_family *fam = NULL;
        assert_ok(sj_glm_family_create(e->ctx, ok[k].f, ok[k].link, ok[k].p, &fam), e->ctx);
        assert_string_equal(sj_glm_family_name(fam), ok[k].family);
        assert_string_equal(sj_glm_link_name(fam), ok[k].name);
        assert_int_equal(sj_glm_family_has_dispersion(fam), ok[k].disp);
        sj_glm_family_free(fam);
    }
    static const struct {
        const char *f, *link;
        double p;
        const char *frag;
    } bad[] = {
        {"poisson", "logit", 0, "link \"logit\" is not allowed for the poisson family (links: log, identity, sqrt, power)"},
        {"binomial", "identity", 0, "link \"identity\" is not allowed for the binomial family"},
        {"binomial", "power", 0.5, "link \"mu^0.5\" is not allowed for the binomial family"},
        {"Gamma", "probit", 0, "not allowed for the Gamma family"},
        {"inverse.gaussian", "sqrt", 0, "\"sqrt\" is not allowed for the inverse.gaussian"},
        {"gaussian", "cloglog", 0, "not allowed for the gaussian family"},
        {"negative.binomial", "inverse", 0, "not allowed for the negative.binomial family"},
        {"quasi", NULL, 0, "unknown family \"quasi\""},
        {"poisson", "logarithm", 0, "unknown link \"logarithm\""},
        {"poisson", "power", -1, "p = -1 must be finite and >= 0"},
        {"poisson", "power", NAN, "must be finite"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        sj_glm_family *fam = (sj_glm_family *)1;
        assert_error(sj_glm_family_create(e->ctx, bad[k].f, bad[k].link, bad[k].p, &fam),
                     SJ_ERR_INVALID_ARGUMENT, e->ctx, bad[k].frag);
        assert_null(fam);
    }
    assert_int_equal(sj_glm_family_create(NULL, "poisson", NULL, 0, NULL), SJ_ERR_INVALID_ARGUMENT);
    assert_error(sj_glm_family_create(e->ctx, NULL, NULL, 0, &(sj_glm_family *){NULL}),
                 SJ_ERR_INVALID_ARGUMENT, e->ctx, "family is NULL");
    /* θ: negative binomial only, > 0; builders need it */
    sj_glm_family *nb = NULL, *po = NULL;
    assert_ok(sj_glm_family_create(e->ctx, "negative.binomial", "sqrt", 0, &nb), e->ctx);
    assert_ok(sj_glm_family_create(e->ctx, "poisson", NULL, 0, &po), e->ctx);
    assert_error(sj_glm_family_set_theta(po, 2), SJ_ERR_INVALID_ARGUMENT, e->ctx, "has no theta");
    assert_error(sj_glm_family_set_theta(nb, 0), SJ_ERR_INVALID_ARGUMENT, e->ctx, "theta = 0");
    assert_error(sj_glm_family_set_theta(nb, INFINITY), SJ_ERR_INVALID_ARGUMENT, e->ctx, "theta");
    sj_value mu = vec(e->g, "mu", "n");
    assert_int_equal(sj_glm_variance(e->g, nb, mu), SJ_INVALID);
    assert_error(sj_graph_status(e->g), SJ_ERR_INVALID_ARGUMENT, e->ctx,
                 "sj_glm_variance: negative.binomial theta is not set");
    /* sticky: later calls return SJ_INVALID quietly */
    assert_int_equal(sj_glm_linkinv(e->g, po, mu), SJ_INVALID);
    sj_glm_family_free(nb);
    sj_glm_family_free(po);
}

static void test_builder_errors(void **state)
{
    test_graph *e = *state;
    sj_glm_family *fam = family(e, "poisson", NULL, 0);
    sj_value mu = vec(e->g, "mu", "n");
    assert_int_equal(sj_glm_linkinv(e->g, NULL, mu), SJ_INVALID);
    assert_error(sj_graph_status(e->g), SJ_ERR_INVALID_ARGUMENT, e->ctx,
                 "sj_glm_linkinv: family is not a valid sj_glm_family");
    sj_graph *g2 = NULL;
    assert_ok(sj_graph_create(e->ctx, &g2), e->ctx);
    sj_value y2 = vec(g2, "y", "n");
    assert_int_equal(sj_glm_deviance(g2, fam, y2, mu, y2), SJ_INVALID);
    assert_error(sj_graph_status(g2), SJ_ERR_INVALID_ARGUMENT, e->ctx,
                 "sj_glm_deviance: mu (id");
    sj_graph_free(g2);
    sj_glm_family_free(fam);
    assert_null(sj_glm_family_name(NULL));
    assert_int_equal(sj_glm_family_has_dispersion(NULL), -1);
}

/* ---- response checks -------------------------------------------------------------------------- */

static void test_check_response(void **state)
{
    test_graph *e = *state;
    static const double counts[8] = {0, 3, 1, 2, 5, 0, -1, 4};
    static const double props[4] = {0, 0.5, 1, 1.5}, props_w[4] = {1, 2, 1, 3};
    static const double pos[3] = {1, 0, 2}, real[3] = {-1, 0, 2};
    sj_glm_family *po = family(e, "poisson", NULL, 0), *bi = family(e, "binomial", "probit", 0),
                  *ga = family(e, "Gamma", "log", 0), *ig = family(e, "inverse.gaussian", NULL, 0),
                  *nb = family(e, "negative.binomial", NULL, 0), *gl = family(e, "gaussian", "log", 0),
                  *gi = family(e, "gaussian", "inverse", 0), *gn = family(e, "gaussian", NULL, 0);
    assert_error(sj_glm_check_response(po, counts, NULL, 8), SJ_ERR_DOMAIN, e->ctx,
                 "row 7: negative count -1 for the poisson family");
    assert_ok(sj_glm_check_response(po, counts, NULL, 6), e->ctx);
    assert_error(sj_glm_check_response(nb, counts, NULL, 8), SJ_ERR_DOMAIN, e->ctx,
                 "row 7: negative count -1 for the negative.binomial family");
    assert_error(sj_glm_check_response(bi, props, props_w, 4), SJ_ERR_DOMAIN, e->ctx,
                 "row 4: proportion 1.5 outside [0, 1] for the binomial family");
    /* weight 0: R sets y to 0, so the row is not checked */
    assert_ok(sj_glm_check_response(bi, props, (double[]){1, 2, 1, 0}, 4), e->ctx);
    assert_error(sj_glm_check_response(bi, props, (double[]){1, -2, 1, 0}, 4), SJ_ERR_DOMAIN,
                 e->ctx, "row 2: negative weight -2");
    assert_error(sj_glm_check_response(ga, pos, NULL, 3), SJ_ERR_DOMAIN, e->ctx,
                 "row 2: non-positive value 0 for the Gamma family");
    assert_error(sj_glm_check_response(ig, real, NULL, 3), SJ_ERR_DOMAIN, e->ctx,
                 "row 1: non-positive value -1 for the inverse.gaussian family");
    assert_error(sj_glm_check_response(gl, real, NULL, 3), SJ_ERR_DOMAIN, e->ctx,
                 "row 1: value -1 <= 0 with the log link");
    assert_error(sj_glm_check_response(gi, real, NULL, 3), SJ_ERR_DOMAIN, e->ctx,
                 "row 2: value 0 = 0 with the inverse link");
    assert_ok(sj_glm_check_response(gn, real, NULL, 3), e->ctx);
    assert_error(sj_glm_check_response(gn, (double[]){1, NAN}, NULL, 2), SJ_ERR_DOMAIN, e->ctx,
                 "row 2: response nan is not finite");
    assert_error(sj_glm_check_response(gn, real, (double[]){1, 1, INFINITY}, 3), SJ_ERR_DOMAIN,
                 e->ctx, "row 3: non-finite weight inf");
    assert_error(sj_glm_check_response(gn, NULL, NULL, 3), SJ_ERR_INVALID_ARGUMENT, e->ctx,
                 "y is NULL");
    assert_ok(sj_glm_check_response(gn, NULL, NULL, 0), e->ctx);
    sj_glm_family *all[] = {po, bi, ga, ig, nb, gl, gi, gn};
    for (size_t k = 0; k < 8; k++)
        sj_glm_family_free(all[k]);
}

/* ---- the other builders -------------------------------------------------------------------------- */

/* mustart, validity, IRLS quantities, against R's formulas by hand. */
static void test_start_valid_irls(void **state)
{
    test_graph *e = *state;
    sj_graph *g = e->g;
    sj_glm_family *bi = family(e, "binomial", NULL, 0), *po = family(e, "poisson", "sqrt", 0),
                  *nb = family(e, "negative.binomial", NULL, 0), *ga = family(e, "Gamma", NULL, 0);
    sj_value y = vec(g, "y", "n"), w = vec(g, "w", "n"), eta = vec(g, "eta", "n");
    sj_value outs[8] = {
        sj_glm_mustart(g, bi, y, w),        sj_glm_mustart(g, po, y, w),
        sj_glm_mustart(g, nb, y, w),        sj_glm_working_weights(g, po, eta, w),
        sj_glm_working_response(g, po, y, eta), sj_glm_valid_eta(g, po, eta),
        sj_glm_valid_mu(g, bi, y),          sj_glm_valid_eta(g, ga, eta)};
    static const double yv[3] = {0, 0.5, 1}, wv[3] = {2, 4, 1}, etav[3] = {0.5, 1, 2};
    double r[8][3];
    eval_vec(e, 8, outs, 3, (int64_t[]){3, 3, 3}, (const double *[]){yv, wv, etav},
             (double *[]){r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]}, 0);
    assert_close(r[0], ((double[]){0.5 / 3, 2.5 / 5, 1.5 / 2}), 3, 1e-15, 0);
    assert_close(r[1], ((double[]){0.1, 0.6, 1.1}), 3, 1e-15, 0);
    assert_close(r[2], ((double[]){1.0 / 6, 0.5, 1}), 3, 1e-15, 0);
    /* sqrt link: μ = η², dμ/dη = 2η, V = μ: w (2η)²/η² = 4w */
    assert_close(r[3], ((double[]){8, 16, 4}), 3, 1e-15, 0);
    /* η + (y - η²)/(2η) */
    assert_close(r[4], ((double[]){0.25, 0.75, 1.25}), 3, 1e-15, 0);
    assert_close(r[5], ((double[]){1}), 1, 0, 0);
    assert_close(r[6], ((double[]){0}), 1, 0, 0); /* y has 0 and 1: not inside (0, 1) */
    assert_close(r[7], ((double[]){1}), 1, 0, 0); /* Gamma's inverse link: η != 0 */
    sj_glm_family *fams[4] = {bi, po, nb, ga};
    for (int k = 0; k < 4; k++)
        sj_glm_family_free(fams[k]);
}

/* ---- end to end at R's estimates ----------------------------------------------------------------- */

/* Deviance and AIC (family aic + 2 p) at β̂ for X β̂ with the family's link;
 * X has columns cols[0..p-1] (NULL = intercept), n rows. */
static void check_at_beta(test_graph *e, const char *f, const char *link, int n, int p,
                          const double *const *cols, const double *y, const double *beta,
                          double want_dev, double want_aic, double want_loglik)
{
    sj_graph *g = e->g;
    sj_glm_family *fam = family(e, f, link, 0);
    assert_ok(sj_glm_check_response(fam, y, NULL, (size_t)n), e->ctx);
    double *x = malloc((size_t)(n * p) * sizeof *x), *w = malloc((size_t)n * sizeof *w);
    for (int i = 0; i < n; i++) {
        w[i] = 1;
        for (int j = 0; j < p; j++)
            x[i * p + j] = cols[j] ? cols[j][i] : 1.0;
    }
    sj_value xv = sj_input(g, "X", 2, (const char *[]){"n", "p"}), bv = vec(g, "beta", "p"),
             yv = vec(g, "y", "n"), wv = vec(g, "w", "n");
    sj_value mu = sj_glm_linkinv(g, fam, sj_matmul(g, xv, bv));
    sj_value dev = sj_glm_deviance(g, fam, yv, mu, wv);
    sj_value aic = sj_add(g, sj_glm_aic(g, fam, yv, mu, wv, dev), sj_scalar(g, 2.0 * p));
    sj_value ll = sj_glm_loglik(g, fam, yv, mu, wv, dev);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(g, 3, (sj_value[]){dev, aic, ll}, &fn), e->ctx);
    double r[3];
    int64_t nn = n, pp = p;
    for (int native = 0; native < 2; native++) {
        sj_compiled *c = NULL;
        int ranks[4] = {2, 1, 1, 1};
        const int64_t *dims[4] = {(int64_t[]){nn, pp}, &pp, &nn, &nn};
        const double *in[4] = {x, beta, y, w};
        if (native) {
            assert_ok(sj_fn_compile(fn, 4, ranks, dims, &c), e->ctx);
            assert_ok(sj_compiled_call(c, in, (double *[]){&r[0], &r[1], &r[2]}), e->ctx);
        } else {
            assert_ok(sj_fn_specialize(fn, 4, ranks, dims, &c), e->ctx);
            assert_ok(sj_compiled_eval(c, in, (double *[]){&r[0], &r[1], &r[2]}), e->ctx);
        }
        print_message("%s(%s) %s: deviance %.17g (R %.17g), AIC %.17g (R %.17g)\n", f,
                      sj_glm_link_name(fam), native ? "native" : "eval", r[0], want_dev, r[1],
                      want_aic);
        assert_close(&r[0], &want_dev, 1, 1e-10, 0);
        assert_close(&r[1], &want_aic, 1, 1e-10, 0);
        assert_close(&r[2], &want_loglik, 1, 1e-10, 0);
        sj_compiled_free(c);
    }
    sj_fn_free(fn);
    free(x);
    free(w);
    sj_glm_family_free(fam);
}

/* glm_warpbreaks_poisson.json, glm_default. */
static void test_warpbreaks_poisson(void **state)
{
    static const double beta[4] = {3.6919631449537955, -0.20598844264886362,
                                   -0.32132043160019147, -0.5184884965173439};
    check_at_beta(*state, "poisson", NULL, 54, 4,
                  (const double *const[]){NULL, wb_woolB, wb_tensionM, wb_tensionH}, wb_breaks,
                  beta, 210.39188876245387, 493.0559664179577, -242.52798320897884);
}

/* glm_mtcars_gaussian.json, glm_default. */
static void test_mtcars_gaussian(void **state)
{
    static const double beta[3] = {37.227270116447194, -3.8778307424046816, -0.031772946982160995};
    check_at_beta(*state, "gaussian", NULL, 32, 3, (const double *const[]){NULL, mt_wt, mt_hp},
                  mt_mpg, beta, 195.04775474146606, 156.6523388256413, -74.32616941282065);
}

/* glm_mtcars_gamma_log.json, glm_default. */
static void test_mtcars_gamma_log(void **state)
{
    static const double beta[3] = {3.8258701726410997, -0.19698666595880887,
                                   -0.0015601051287639175};
    check_at_beta(*state, "Gamma", "log", 32, 3, (const double *const[]){NULL, mt_wt, mt_hp},
                  mt_mpg, beta, 0.36816082819816315, 145.27526500641002, -68.63763250320501);
}

#define T(name) cmocka_unit_test_setup_teardown(name, test_graph_setup, test_graph_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_golden_eval),
        T(test_golden_native),
        T(test_derivatives),
        T(test_negative_binomial_theta),
        T(test_names_and_pairs),
        T(test_builder_errors),
        T(test_check_response),
        T(test_start_valid_irls),
        T(test_warpbreaks_poisson),
        T(test_mtcars_gaussian),
        T(test_mtcars_gamma_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
