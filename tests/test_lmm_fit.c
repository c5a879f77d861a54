/* Linear mixed model fits (sj_lmm: frontend/lmm.c, lmm_results.c,
 * lmm_summary.c) against lme4 1.1.31 (R 4.2.2), REML and ML:
 *
 *   sleepstudy  Reaction ~ Days + (Days | Subject)
 *   sleepstudy  Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)
 *   Dyestuff    Yield ~ 1 + (1 | Batch)
 *
 * Golden values: tests/data/lmm_fit_golden.h (make_lmm_fit_golden.R: lmer
 * polished with bobyqa, rhoend 1e-12; its REML sleepstudy values equal
 * ../shared/data/golden/lmm_sleepstudy.json "polished").  Tolerances (the
 * issue's): criterion, logLik, AIC, BIC 1e-6 relative; fixed effects, their
 * SEs, standard deviations and correlations 1e-4 relative; conditional modes
 * 1e-4 (relative to the largest mode of the term's column, i.e. absolute
 * 1e-4·max|b|) and conditional SDs 1e-4 relative.  Observed differences
 * are printed.
 *
 * Also: the singular-fit flag (a constructed data set with no between-group
 * variation), non-convergence reported with max_iter 1, derivatives of β̂
 * and θ̂ with respect to y through the fit op (implicit function theorem)
 * against central differences of refits, a vmapped fit over several y
 * against a loop, errors, and the average-information optimiser option. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "data/lmm_fit_golden.h"

enum { NSLEEP = 180, NDYE = 30 };

static sj_ctx *ctx;

static int setup(void **state) { return sj_ctx_create(&ctx) == SJ_OK ? 0 : -1; }
static int teardown(void **state)
{
    sj_ctx_free(ctx);
    return 0;
}

/* ---- data -------------------------------------------------------------------------- */

static FILE *open_data(const char *name)
{
    const char *dir = getenv("SJ_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
    return fopen(path, "r");
}

static double sy[NSLEEP], sdays[NSLEEP], scodes[NSLEEP];
static double dy[NDYE], dcodes[NDYE];
static const char *const slevels[18] = {"308", "309", "310", "330", "331", "332",
                                        "333", "334", "335", "337", "349", "350",
                                        "351", "352", "369", "370", "371", "372"};
static const char *const dlevels[6] = {"A", "B", "C", "D", "E", "F"};

static void read_data(void)
{
    static int done;
    if (done)
        return;
    FILE *f = open_data("sleepstudy.csv");
    assert_non_null(f);
    char line[256], s[16];
    assert_non_null(fgets(line, sizeof line, f));
    int n = 0;
    while (n < NSLEEP && fgets(line, sizeof line, f))
        if (sscanf(line, "%lf,%lf,\"%15[^\"]\"", &sy[n], &sdays[n], s) == 3) {
            scodes[n] = -1;
            for (int l = 0; l < 18; l++)
                if (!strcmp(s, slevels[l]))
                    scodes[n] = l;
            assert_true(scodes[n] >= 0);
            n++;
        }
    fclose(f);
    assert_int_equal(n, NSLEEP);
    f = open_data("Dyestuff.csv");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    n = 0;
    while (n < NDYE && fgets(line, sizeof line, f))
        if (sscanf(line, "\"%7[^\"]\",%lf", s, &dy[n]) == 2) {
            dcodes[n] = s[0] - 'A';
            n++;
        }
    fclose(f);
    assert_int_equal(n, NDYE);
    done = 1;
}

typedef enum model { CORR, INDEP, DYE } model;
static const char *const model_name[] = {"sleepstudy Reaction ~ Days + (Days | Subject)",
                                         "sleepstudy Reaction ~ Days + (1 | Subject) + "
                                         "(0 + Days | Subject)",
                                         "Dyestuff Yield ~ 1 + (1 | Batch)"};

static sj_lmm *make_model(model md, const double *y)
{
    read_data();
    sj_lmm *m = NULL;
    static const char *const xn[] = {"(Intercept)", "Days"};
    static const char *const dn[] = {"Days"};
    if (md == DYE) {
        double x[NDYE], one[NDYE];
        for (int i = 0; i < NDYE; i++)
            x[i] = one[i] = 1;
        assert_ok(sj_lmm_create(ctx, NDYE, 1, x, xn, y ? y : dy, &m), ctx);
        assert_ok(sj_lmm_add_term(m, "Batch", dcodes, 6, dlevels, 1, one, xn, 0), ctx);
        return m;
    }
    static double x[2 * NSLEEP], one[NSLEEP];
    for (int i = 0; i < NSLEEP; i++) {
        x[2 * i] = one[i] = 1;
        x[2 * i + 1] = sdays[i];
    }
    assert_ok(sj_lmm_create(ctx, NSLEEP, 2, x, xn, y ? y : sy, &m), ctx);
    if (md == CORR) {
        assert_ok(sj_lmm_add_term(m, "Subject", scodes, 18, slevels, 2, x, xn, 1), ctx);
    } else {
        assert_ok(sj_lmm_add_term(m, "Subject", scodes, 18, slevels, 1, one, xn, 0), ctx);
        assert_ok(sj_lmm_add_term(m, "Subject", scodes, 18, slevels, 1, sdays, dn, 0), ctx);
    }
    return m;
}

/* ---- agreement with lme4 -------------------------------------------------------- */

typedef struct golden {
    double crit;
    const double *lab, *fixef, *se, *sd, *corr, *modes, *condsd;
} golden;

#define GOLD(pfx)                                                                          \
    (golden)                                                                               \
    {                                                                                      \
        pfx##_crit, pfx##_loglik_aic_bic, pfx##_fixef, pfx##_fixef_se, pfx##_sd, pfx##_corr, \
            pfx##_modes, pfx##_condsd                                                      \
    }

static double rel(double a, double b) { return fabs(a - b) / fabs(b); }

static void check_fit(model md, int reml, golden gd)
{
    sj_lmm *m = make_model(md, NULL);
    assert_ok(sj_lmm_fit(m, reml), ctx);
    int conv, iters, sing;
    assert_ok(sj_lmm_convergence(m, &conv, &iters, &sing), ctx);
    assert_int_equal(conv, 1);
    assert_int_equal(sing, 0);
    double crit, lab[3], worst = 0;
    assert_ok(sj_lmm_criterion(m, &crit), ctx);
    assert_ok(sj_lmm_loglik(m, &lab[0], &lab[1], &lab[2]), ctx);
    double ecrit = rel(crit, gd.crit);
    print_message("%s (%s): %d Newton iterations\n  criterion %.12g (lme4 %.12g) rel %.1e\n",
                  model_name[md], reml ? "REML" : "ML", iters, crit, gd.crit, ecrit);
    assert_close(&crit, &gd.crit, 1, 1e-6, 0);
    assert_close(lab, gd.lab, 3, 1e-6, 0);
    int p = sj_lmm_nfixed(m);
    assert_int_equal(p, md == DYE ? 1 : 2);
    double efix = 0, ese = 0;
    for (int j = 0; j < p; j++) {
        double est, se, t;
        const char *name;
        assert_ok(sj_lmm_fixed(m, j, &name, &est, &se, &t), ctx);
        efix = fmax(efix, rel(est, gd.fixef[j]));
        ese = fmax(ese, rel(se, gd.se[j]));
        assert_close(&est, &gd.fixef[j], 1, 1e-4, 0);
        assert_close(&se, &gd.se[j], 1, 1e-4, 0);
        assert_true(fabs(t - est / se) < 1e-12 * fabs(t));
    }
    int nv = sj_lmm_nvarcomp(m);
    assert_int_equal(nv, md == DYE ? 2 : 3);
    double esd = 0;
    for (int i = 0; i < nv; i++) {
        const char *gname, *name;
        double v, sd;
        assert_ok(sj_lmm_varcomp(m, i, &gname, &name, &v, &sd), ctx);
        esd = fmax(esd, rel(sd, gd.sd[i]));
        assert_close(&sd, &gd.sd[i], 1, 1e-4, 0);
        assert_true(fabs(v - sd * sd) <= 1e-12 * v);
        if (i == nv - 1)
            assert_string_equal(gname, "Residual");
    }
    double ecorr = 0;
    assert_int_equal(sj_lmm_ncorr(m), md == CORR ? 1 : 0);
    if (md == CORR) {
        const char *gname, *a, *b;
        double c;
        assert_ok(sj_lmm_corr(m, 0, &gname, &a, &b, &c), ctx);
        assert_string_equal(a, "(Intercept)");
        assert_string_equal(b, "Days");
        ecorr = rel(c, gd.corr[0]);
        assert_close(&c, &gd.corr[0], 1, 1e-4, 0);
    }
    /* Conditional modes: term-major, columns, levels (as.data.frame(ranef)). */
    double emode = 0, econd = 0;
    int nterm = md == INDEP ? 2 : 1, L = md == DYE ? 6 : 18, at = 0;
    for (int t = 0; t < nterm; t++) {
        int k = md == CORR ? 2 : 1;
        for (int j = 0; j < k; j++) {
            double scale = 0;
            for (int l = 0; l < L; l++)
                scale = fmax(scale, fabs(gd.modes[at + l]));
            for (int l = 0; l < L; l++, at++) {
                double mode, cv;
                assert_ok(sj_lmm_ranef(m, t, l, j, &mode, &cv), ctx);
                double e = fabs(mode - gd.modes[at]) / scale, ec = rel(sqrt(cv), gd.condsd[at]);
                emode = fmax(emode, e);
                econd = fmax(econd, ec);
                if (e > 1e-4 || ec > 1e-4)
                    fail_msg("mode (%d, %d, %d): %.10g vs %.10g, cond sd %.10g vs %.10g", t, l,
                             j, mode, gd.modes[at], sqrt(cv), gd.condsd[at]);
            }
        }
    }
    worst = fmax(fmax(efix, ese), fmax(esd, fmax(ecorr, fmax(emode, econd))));
    print_message("  rel diff: fixef %.1e, SE %.1e, sd %.1e, corr %.1e, modes %.1e (of max), "
                  "cond sd %.1e; worst %.1e\n",
                  efix, ese, esd, ecorr, emode, econd, worst);
    /* θ̂ standard errors from the exact Hessian: finite and positive. */
    int nt;
    const double *th, *tse;
    assert_ok(sj_lmm_theta(m, &nt, &th, &tse), ctx);
    assert_int_equal(nt, md == CORR ? 4 : md == INDEP ? 3 : 2);
    for (int i = 0; i < nt; i++)
        assert_true(isfinite(tse[i]) && tse[i] > 0);
    /* Printing. */
    char *txt = sj_lmm_summary_text(m, model_name[md], NULL);
    assert_non_null(txt);
    assert_non_null(strstr(txt, "Random effects:"));
    assert_non_null(strstr(txt, reml ? "REML criterion at convergence" : "logLik"));
    sj_string_free(txt);
    char *js = sj_lmm_summary_json(m);
    assert_non_null(js);
    assert_non_null(strstr(js, "\"model\": \"lmm\""));
    assert_non_null(strstr(js, reml ? "\"reml_criterion\"" : "\"deviance\""));
    assert_non_null(strstr(js, "\"group\": \"Residual\""));
    sj_string_free(js);
    sj_lmm_free(m);
}

static void test_sleepstudy_corr_reml(void **state) { check_fit(CORR, 1, GOLD(corr_reml)); }
static void test_sleepstudy_corr_ml(void **state) { check_fit(CORR, 0, GOLD(corr_ml)); }
static void test_sleepstudy_indep_reml(void **state) { check_fit(INDEP, 1, GOLD(indep_reml)); }
static void test_sleepstudy_indep_ml(void **state) { check_fit(INDEP, 0, GOLD(indep_ml)); }
static void test_dyestuff_reml(void **state) { check_fit(DYE, 1, GOLD(dye_reml)); }
static void test_dyestuff_ml(void **state) { check_fit(DYE, 0, GOLD(dye_ml)); }

/* ---- singular fit, non-convergence ----------------------------------------------- */

/* 6 groups of 5 whose group means are all equal: the between-group variance
 * estimate is 0 (lme4 reports a singular fit). */
static void test_singular(void **state)
{
    enum { N = 30 };
    double x[N], y[N], codes[N], one[N];
    static const double dev[5] = {-2.1, -0.4, 0.3, 0.9, 1.3};
    for (int i = 0; i < N; i++) {
        x[i] = one[i] = 1;
        codes[i] = i / 5;
        y[i] = 10 + dev[(i + i / 5) % 5] * (1 + 0.1 * (i / 5));
    }
    /* subtract the group means: then all group means are 10 */
    for (int gr = 0; gr < 6; gr++) {
        double s = 0;
        for (int i = 5 * gr; i < 5 * gr + 5; i++)
            s += y[i];
        for (int i = 5 * gr; i < 5 * gr + 5; i++)
            y[i] += 10 - s / 5;
    }
    sj_lmm *m = NULL;
    assert_ok(sj_lmm_create(ctx, N, 1, x, NULL, y, &m), ctx);
    assert_ok(sj_lmm_add_term(m, "g", codes, 6, NULL, 1, one, NULL, 0), ctx);
    assert_ok(sj_lmm_fit(m, 1), ctx);
    int conv, iters, sing;
    assert_ok(sj_lmm_convergence(m, &conv, &iters, &sing), ctx);
    double v, sd;
    assert_ok(sj_lmm_varcomp(m, 0, NULL, NULL, &v, &sd), ctx);
    print_message("singular: converged %d in %d iterations, group variance %.3g\n", conv,
                  iters, v);
    assert_int_equal(sing, 1);
    assert_true(v < 1e-6);
    char *txt = sj_lmm_summary_text(m, NULL, NULL);
    assert_non_null(strstr(txt, "singular"));
    sj_string_free(txt);
    sj_lmm_free(m);
}

static void test_not_converged(void **state)
{
    sj_lmm *m = make_model(CORR, NULL);
    assert_ok(sj_lmm_set_control(m, 1, 1e-7), ctx);
    assert_ok(sj_lmm_fit(m, 1), ctx);
    int conv, iters, sing;
    assert_ok(sj_lmm_convergence(m, &conv, &iters, &sing), ctx);
    assert_int_equal(conv, 0);
    assert_int_equal(iters, 1);
    double crit;
    assert_ok(sj_lmm_criterion(m, &crit), ctx);
    assert_true(isfinite(crit));
    char *js = sj_lmm_summary_json(m);
    assert_non_null(strstr(js, "\"converged\": false"));
    sj_string_free(js);
    char *txt = sj_lmm_summary_text(m, NULL, NULL);
    assert_non_null(strstr(txt, "did not converge"));
    sj_string_free(txt);
    assert_error(sj_lmm_set_control(m, -1, 1e-7), SJ_ERR_INVALID_ARGUMENT, ctx, "max_iter");
    sj_lmm_free(m);
}

/* ---- the fit as a graph: derivatives and vmap ------------------------------------ */

/* f(theta0, y, X, codes, Z) -> (θ̂ [4], β̂ [2]) for the correlated sleepstudy
 * model, written with the public builder: the REML objective on a
 * covariance tree, its argmin by sj_fit_argmin, then the GLS β̂ at θ̂ (a
 * second build of V(θ̂)). */
static sj_value build_v(sj_graph *g, sj_value theta, sj_value codes, sj_value z)
{
    sj_value oh = sj_one_hot(g, codes, "18");
    sj_value pieces[2] = {oh, sj_mul(g, oh, sj_slice(g, z, 1, 1, 2))};
    sj_cov *gk = sj_cov_kron(g, NULL, sj_cov_unstructured(g, "Subject", 2),
                             sj_cov_identity(g, "I", "18"));
    sj_cov *kids[2] = {
        sj_cov_propagate(g, "t", sj_cov_fixed(g, "Z", sj_concat(g, 2, pieces, 1)), gk),
        sj_cov_scalar(g, "residual", "n", 1.0, sj_transform_exp2())};
    sj_value v = SJ_INVALID;
    assert_ok(sj_cov_build(sj_cov_sum(g, NULL, 2, kids), theta, &v), ctx);
    return v;
}

static void declare(sj_graph *g, const char *th, sj_value *in)
{
    const char *d4[] = {"4"}, *dn[] = {"n"}, *dx[] = {"n", "2"};
    in[0] = sj_input(g, th, 1, d4);
    in[1] = sj_input(g, "y", 1, dn);
    in[2] = sj_input(g, "X", 2, dx);
    in[3] = sj_input(g, "codes", 1, dn);
    in[4] = sj_input(g, "Z", 2, dx);
}

static sj_fn *fit_fn(void)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value in[5];
    declare(g, "theta", in);
    sj_value crit = sj_reml_criterion(g, build_v(g, in[0], in[3], in[4]), in[2], in[1]);
    sj_fn *obj = NULL;
    assert_ok(sj_fn_create(g, 1, &crit, &obj), ctx);
    sj_graph_free(g);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    declare(g, "theta0", in);
    sj_value th, it, cv;
    assert_ok(sj_fit_argmin(g, obj, NULL, in[0], 4, in + 1, 100, SJ_FIT_GRAD_NORM, 1e-9, &th,
                            &it, &cv),
              ctx);
    sj_value v = build_v(g, th, in[3], in[4]);
    sj_value l = sj_cholesky(g, v);
    sj_value vx = sj_cholesky_solve(g, l, in[2]);
    sj_value a = sj_matmul(g, sj_mT(g, in[2]), vx);
    sj_value b = sj_matmul(g, sj_mT(g, vx), in[1]);
    sj_value out[2] = {th, sj_solve(g, a, b)};
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 2, out, &f), ctx);
    sj_graph_free(g);
    sj_fn_free(obj);
    return f;
}

static const double theta_start[4] = {3.0, 0.0, 1.5, 3.2};
static double xs[2 * NSLEEP], zs[2 * NSLEEP];

static void call_fit(sj_fn *f, const double *y, double *out6)
{
    for (int i = 0; i < NSLEEP; i++) {
        xs[2 * i] = zs[2 * i] = 1;
        xs[2 * i + 1] = zs[2 * i + 1] = sdays[i];
    }
    int ranks[5] = {1, 1, 2, 1, 2};
    int64_t d0[] = {4}, d1[] = {NSLEEP}, d2[] = {NSLEEP, 2};
    const int64_t *dims[5] = {d0, d1, d2, d1, d2};
    const double *in[5] = {theta_start, y, xs, scodes, zs};
    double *out[2] = {out6, out6 + 4};
    assert_ok(sj_fn_call(f, 5, ranks, dims, in, out), ctx);
}

static void test_derivatives_wrt_y(void **state)
{
    read_data();
    sj_fn *f = fit_fn();
    double base[6];
    call_fit(f, sy, base);
    /* β̂ agrees with lme4's */
    assert_close(base + 4, corr_reml_fixef, 2, 1e-6, 0);
    /* jvp with respect to y along a direction v */
    int wrt = 1;
    sj_fn *jf = NULL;
    assert_ok(sj_jvp(f, 1, &wrt, &jf), ctx);
    double v[NSLEEP];
    uint64_t rs = 7;
    for (int i = 0; i < NSLEEP; i++)
        v[i] = test_uniform(&rs, -1, 1);
    int ranks[6] = {1, 1, 2, 1, 2, 1};
    int64_t d0[] = {4}, d1[] = {NSLEEP}, d2[] = {NSLEEP, 2};
    const int64_t *dims[6] = {d0, d1, d2, d1, d2, d1};
    const double *in[6] = {theta_start, sy, xs, scodes, zs, v};
    double o[6], t[6];
    double *outs[4] = {o, o + 4, t, t + 4};
    assert_ok(sj_fn_call(jf, 6, ranks, dims, in, outs), ctx);
    /* central differences of refits */
    double h = 1e-3, yp[NSLEEP], ym[NSLEEP], fp[6], fm[6], fd[6];
    for (int i = 0; i < NSLEEP; i++) {
        yp[i] = sy[i] + h * v[i];
        ym[i] = sy[i] - h * v[i];
    }
    call_fit(f, yp, fp);
    call_fit(f, ym, fm);
    for (int i = 0; i < 6; i++)
        fd[i] = (fp[i] - fm[i]) / (2 * h);
    double e = 0;
    for (int i = 0; i < 6; i++)
        e = fmax(e, fabs(t[i] - fd[i]) / (fabs(fd[i]) + 1e-3));
    print_message("jvp of (θ̂, β̂) wrt y vs differences of refits (h = 1e-3): max rel %.1e\n",
                  e);
    assert_close(t, fd, 6, 1e-5, 1e-7);
    /* grad of β̂_Days + θ̂_3 (log σ) with respect to y, against the jvp:
     * <grad, v> = tangent of that output. */
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_fn_free(jf);
    sj_fn *vj = NULL;
    assert_ok(sj_vjp(f, 1, &wrt, &vj), ctx);
    double ct_th[4] = {0, 0, 0, 1}, ct_b[2] = {0, 1}, gy[NSLEEP];
    int r2[7] = {1, 1, 2, 1, 2, 1, 1};
    int64_t c2[] = {2};
    const int64_t *dims2[7] = {d0, d1, d2, d1, d2, d0, c2};
    const double *in2[7] = {theta_start, sy, xs, scodes, zs, ct_th, ct_b};
    double *o2[1] = {gy};
    assert_ok(sj_fn_call(vj, 7, r2, dims2, in2, o2), ctx);
    double dot = 0, want = t[3] + t[5];
    for (int i = 0; i < NSLEEP; i++)
        dot += gy[i] * v[i];
    print_message("vjp·v %.12g vs jvp %.12g (rel %.1e)\n", dot, want, fabs(dot - want) / fabs(want));
    assert_close(&dot, &want, 1, 1e-9, 1e-12);
    /* d β̂ / d y is the GLS projection at θ̂ plus the θ̂ path: a shift of y by
     * a multiple of the intercept column moves β̂_0 by it and nothing else. */
    double one[NSLEEP], ones_t[6];
    for (int i = 0; i < NSLEEP; i++)
        one[i] = 1;
    assert_ok(sj_jvp(f, 1, &wrt, &jf), ctx);
    in[5] = one;
    outs[2] = ones_t;
    outs[3] = ones_t + 4;
    assert_ok(sj_fn_call(jf, 6, ranks, dims, in, outs), ctx);
    double want1[6] = {0, 0, 0, 0, 1, 0};
    assert_close(ones_t, want1, 6, 0, 1e-8);
    sj_graph_free(g);
    sj_fn_free(jf);
    sj_fn_free(vj);
    sj_fn_free(f);
}

static void test_vmap_fits(void **state)
{
    read_data();
    enum { B = 4 };
    sj_fn *f = fit_fn(), *vf = NULL;
    int in_axes[5] = {-1, 0, -1, -1, -1};
    assert_ok(sj_vmap(f, in_axes, NULL, NULL, &vf), ctx);
    static double ys[B * NSLEEP];
    uint64_t rs = 11;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < NSLEEP; i++)
            ys[b * NSLEEP + i] = sy[i] + (b ? test_uniform(&rs, -20, 20) : 0);
    for (int i = 0; i < NSLEEP; i++) {
        xs[2 * i] = zs[2 * i] = 1;
        xs[2 * i + 1] = zs[2 * i + 1] = sdays[i];
    }
    int ranks[5] = {1, 2, 2, 1, 2};
    int64_t d0[] = {4}, d1[] = {NSLEEP}, dy2[] = {B, NSLEEP}, d2[] = {NSLEEP, 2};
    const int64_t *dims[5] = {d0, dy2, d2, d1, d2};
    const double *in[5] = {theta_start, ys, xs, scodes, zs};
    double th[B * 4], be[B * 2];
    double *out[2] = {th, be};
    assert_ok(sj_fn_call(vf, 5, ranks, dims, in, out), ctx);
    double e = 0;
    for (int b = 0; b < B; b++) {
        double one[6];
        call_fit(f, ys + b * NSLEEP, one);
        assert_close(th + 4 * b, one, 4, 1e-8, 1e-10);
        assert_close(be + 2 * b, one + 4, 2, 1e-8, 1e-10);
        for (int i = 0; i < 4; i++)
            e = fmax(e, fabs(th[4 * b + i] - one[i]));
        /* and against sj_lmm on the same y */
        sj_lmm *m = make_model(CORR, ys + b * NSLEEP);
        assert_ok(sj_lmm_fit(m, 1), ctx);
        for (int j = 0; j < 2; j++) {
            double est;
            assert_ok(sj_lmm_fixed(m, j, NULL, &est, NULL, NULL), ctx);
            assert_close(&est, &be[2 * b + j], 1, 1e-7, 0);
        }
        sj_lmm_free(m);
    }
    print_message("vmap of the fit over %d y: max |Δθ̂| vs a loop %.1e\n", B, e);
    sj_fn_free(vf);
    sj_fn_free(f);
}

/* The structure rewrites fire inside the fit's problem too: the compiled
 * function holds no n × n value anywhere (the Newton loop's objective,
 * gradient and Hessian included). */
static void test_rewrites_in_fit(void **state)
{
    read_data();
    sj_fn *f = fit_fn();
    for (int i = 0; i < NSLEEP; i++) {
        xs[2 * i] = zs[2 * i] = 1;
        xs[2 * i + 1] = zs[2 * i + 1] = sdays[i];
    }
    int ranks[5] = {1, 1, 2, 1, 2};
    int64_t d0[] = {4}, d1[] = {NSLEEP}, d2[] = {NSLEEP, 2};
    const int64_t *dims[5] = {d0, d1, d2, d1, d2};
    sj_compiled *c = NULL;
    assert_ok(sj_fn_compile(f, 5, ranks, dims, &c), ctx);
    char *txt = sj_compiled_print(c);
    assert_non_null(txt);
    int nheader = 0;
    for (const char *q = txt; (q = strstr(q, "# rewrites:")) != NULL; q++)
        nheader++;
    print_message("compiled fit: %d '# rewrites:' headers (outer graph and problem graphs)\n",
                  nheader);
    assert_non_null(strstr(txt, "woodbury-logdet"));
    assert_non_null(strstr(txt, "problem 0"));
    assert_null(strstr(txt, "[180, 180]"));
    sj_string_free(txt);
    sj_compiled_free(c);
    sj_fn_free(f);
}

/* ---- errors -------------------------------------------------------------------- */

static void test_errors(void **state)
{
    read_data();
    double x[4] = {1, 1, 1, 1}, y[4] = {1, 2, 3, 4}, codes[4] = {0, 0, 1, 1};
    sj_lmm *m = NULL;
    assert_error(sj_lmm_create(ctx, 4, 4, x, NULL, y, &m), SJ_ERR_SHAPE, ctx, "p < n");
    assert_error(sj_lmm_create(ctx, 4, 0, x, NULL, y, &m), SJ_ERR_SHAPE, ctx, "p < n");
    assert_error(sj_lmm_create(ctx, 4, 1, NULL, NULL, y, &m), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "NULL");
    y[2] = NAN;
    assert_error(sj_lmm_create(ctx, 4, 1, x, NULL, y, &m), SJ_ERR_DOMAIN, ctx, "row 3");
    y[2] = 3;
    assert_ok(sj_lmm_create(ctx, 4, 1, x, NULL, y, &m), ctx);
    assert_error(sj_lmm_fit(m, 1), SJ_ERR_INVALID_ARGUMENT, ctx, "no random-effect term");
    codes[3] = 2;
    assert_error(sj_lmm_add_term(m, "g", codes, 2, NULL, 1, x, NULL, 0), SJ_ERR_DOMAIN, ctx,
                 "code 2 in row 4");
    codes[3] = 0.5;
    assert_error(sj_lmm_add_term(m, "g", codes, 2, NULL, 1, x, NULL, 0), SJ_ERR_DOMAIN, ctx,
                 "not a level");
    codes[3] = 1;
    assert_error(sj_lmm_add_term(m, "g", codes, 2, NULL, 0, x, NULL, 0), SJ_ERR_SHAPE, ctx,
                 "k = 0");
    double cr;
    assert_error(sj_lmm_criterion(m, &cr), SJ_ERR_INVALID_ARGUMENT, ctx, "not been fitted");
    assert_null(sj_lmm_summary_json(m));
    sj_lmm_free(m);
    /* rank-deficient X */
    double x2[8] = {1, 2, 1, 2, 1, 2, 1, 2}, y2[4] = {1, 2, 4, 3};
    assert_ok(sj_lmm_create(ctx, 4, 2, x2, NULL, y2, &m), ctx);
    assert_ok(sj_lmm_add_term(m, "g", codes, 2, NULL, 1, x, NULL, 0), ctx);
    assert_error(sj_lmm_fit(m, 1), SJ_ERR_SINGULAR, ctx, "rank deficient");
    sj_lmm_free(m);
    /* out-of-range accessors after a fit */
    m = make_model(DYE, NULL);
    assert_ok(sj_lmm_fit(m, 1), ctx);
    assert_error(sj_lmm_fixed(m, 1, NULL, NULL, NULL, NULL), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "out of range");
    assert_error(sj_lmm_ranef(m, 0, 6, 0, NULL, NULL), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "out of range");
    assert_error(sj_lmm_corr(m, 0, NULL, NULL, NULL, NULL), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "out of range");
    sj_lmm_free(m);
}

/* ---- average-information steps (sj_lmm_set_optimizer, frontend/lmm_ai.c) -------
 *
 * The AI fit converges to the criterion of the exact-Hessian fit and of lme4
 * within 1e-6 relative (the tolerance), and both optimisers reach
 * the same variance components within 1e-4 relative (the criterion is flat
 * to second order there: a gradient of 1e-7 leaves them uncertain to
 * ~1e-6).  Iteration counts of both are printed. */

static void compare_ai(model md, int reml, double golden_crit)
{
    double crit[2], vc[2][8];
    int iters[2], nvc = 0;
    for (int opt = 0; opt < 2; opt++) {
        sj_lmm *m = make_model(md, NULL);
        assert_ok(sj_lmm_set_optimizer(m, opt ? SJ_LMM_AVERAGE_INFORMATION : SJ_LMM_NEWTON), ctx);
        assert_ok(sj_lmm_fit(m, reml), ctx);
        int conv, sing;
        assert_ok(sj_lmm_convergence(m, &conv, &iters[opt], &sing), ctx);
        assert_true(conv);
        assert_ok(sj_lmm_criterion(m, &crit[opt]), ctx);
        nvc = sj_lmm_nvarcomp(m);
        for (int i = 0; i < nvc; i++)
            assert_ok(sj_lmm_varcomp(m, i, NULL, NULL, &vc[opt][i], NULL), ctx);
        sj_lmm_free(m);
    }
    print_message("%-36s %s: Newton %d iterations, AI %d; criterion AI %.10f, Newton %.10f, "
                  "lme4 %.10f (AI rel %.1e)\n",
                  model_name[md], reml ? "REML" : "ML  ", iters[0], iters[1], crit[1], crit[0],
                  golden_crit, fabs(crit[1] / golden_crit - 1));
    assert_close(&crit[1], &golden_crit, 1, 1e-6, 0);
    assert_close(&crit[1], &crit[0], 1, 1e-6, 0);
    assert_close(vc[1], vc[0], (size_t)nvc, 1e-4, 0);
}

static void test_ai_sleepstudy_corr(void **state)
{
    compare_ai(CORR, 1, corr_reml_crit);
    compare_ai(CORR, 0, corr_ml_crit);
}
static void test_ai_sleepstudy_indep(void **state)
{
    compare_ai(INDEP, 1, indep_reml_crit);
    compare_ai(INDEP, 0, indep_ml_crit);
}
static void test_ai_dyestuff(void **state)
{
    compare_ai(DYE, 1, dye_reml_crit);
    compare_ai(DYE, 0, dye_ml_crit);
}

static void test_ai_errors(void **state)
{
    assert_int_equal(sj_lmm_set_optimizer(NULL, SJ_LMM_NEWTON), SJ_ERR_INVALID_ARGUMENT);
    sj_lmm *m = make_model(DYE, NULL);
    assert_error(sj_lmm_set_optimizer(m, (sj_lmm_optimizer)7), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "unknown optimizer");
    sj_lmm_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sleepstudy_corr_reml),
        cmocka_unit_test(test_sleepstudy_corr_ml),
        cmocka_unit_test(test_sleepstudy_indep_reml),
        cmocka_unit_test(test_sleepstudy_indep_ml),
        cmocka_unit_test(test_dyestuff_reml),
        cmocka_unit_test(test_dyestuff_ml),
        cmocka_unit_test(test_singular),
        cmocka_unit_test(test_not_converged),
        cmocka_unit_test(test_derivatives_wrt_y),
        cmocka_unit_test(test_vmap_fits),
        cmocka_unit_test(test_rewrites_in_fit),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_ai_sleepstudy_corr),
        cmocka_unit_test(test_ai_sleepstudy_indep),
        cmocka_unit_test(test_ai_dyestuff),
        cmocka_unit_test(test_ai_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
