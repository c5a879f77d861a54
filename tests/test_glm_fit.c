/* GLM fits (docs/glm.md, "Fits"): sj_glm against R's glm on warpbreaks
 * (poisson, also with prior weights and an offset), mtcars (gaussian) and
 * mtcars (Gamma, log link), from tests/data/make_glm_fit_golden.R (R 4.2.2,
 * the same fits as /work/shared/data/golden/glm_*.json):
 *   - coefficients and SEs within 1e-6 relative, deviance and AIC within
 *     1e-8, the iteration count equal to R's;
 *   - predictions with SEs, the four residual types, leverage, Cook's
 *     distance, HC0 sandwich SEs, Wald intervals, LR tests;
 *   - a rank-deficient X refused by column name with singular_ok = 0;
 *   - the graph-level fit: jvp, grad and hvp of functions of β̂ against
 *     finite differences of refits; vmap over responses and over (X, y)
 *     pairs against a loop of single fits;
 *   - errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "data/glm_fit_golden.h"

typedef struct golden {
    const char *family, *link;
    int n, p;
    const char *const *names;
    const double *x, *y, *w, *off;
    const double *coef, *se, *stat, *pv, *stats, *res[4], *hat, *cooks, *hc0, *ci90, *newx,
        *pred_link, *pred_resp;
} golden;

static const char *const wb_names[] = {"(Intercept)", "woolB", "tensionM", "tensionH"};
static const char *const mt_names[] = {"(Intercept)", "wt", "hp"};

#define GOLDEN(tag, fam, link, n, p, names, w, off)                                              \
    ((golden){fam, link, n, p, names, tag##_X, tag##_y, w, off, tag##_coef, tag##_se, tag##_stat, \
              tag##_p, tag##_stats,                                                               \
              {tag##_res_response, tag##_res_working, tag##_res_pearson, tag##_res_deviance},    \
              tag##_hat, tag##_cooks, tag##_hc0, tag##_ci90, tag##_newX, tag##_pred_link,          \
              tag##_pred_resp})

static sj_glm *fit(test_graph *e, const golden *gd)
{
    sj_glm *m = NULL;
    assert_ok(sj_glm_create(e->ctx, gd->family, gd->link, (size_t)gd->n, gd->p, gd->x, gd->names,
                            gd->y, gd->w, gd->off, &m),
              e->ctx);
    assert_ok(sj_glm_fit(m, 0), e->ctx);
    return m;
}

static void check_golden(test_graph *e, const golden *gd)
{
    sj_glm *m = fit(e, gd);
    int p = gd->p, n = gd->n;
    assert_int_equal(sj_glm_ncoef(m), p);
    for (int j = 0; j < p; j++) {
        const char *name;
        double est, se, z, pv;
        assert_ok(sj_glm_coef(m, j, &name, &est, &se, &z, &pv), e->ctx);
        assert_string_equal(name, gd->names[j]);
        print_message("%-12s %.17g (R %.17g)  se %.17g (R %.17g)\n", name, est, gd->coef[j], se,
                      gd->se[j]);
        assert_close(&est, &gd->coef[j], 1, 1e-6, 0);
        assert_close(&se, &gd->se[j], 1, 1e-6, 0);
        assert_close(&z, &gd->stat[j], 1, 1e-6, 0);
        assert_close(&pv, &gd->pv[j], 1, 1e-5, 1e-300);
    }
    double s[8];
    assert_ok(sj_glm_stats(m, &s[0], &s[1], &s[2], &s[3], &s[4], &s[5], &s[6], &s[7]), e->ctx);
    print_message("deviance %.17g (R %.17g) AIC %.17g (R %.17g)\n", s[0], gd->stats[0], s[4],
                  gd->stats[4]);
    assert_close(&s[0], &gd->stats[0], 1, 1e-8, 0); /* deviance */
    assert_close(&s[1], &gd->stats[1], 1, 1e-8, 0); /* null deviance */
    assert_close(&s[2], &gd->stats[2], 2, 0, 0);    /* df */
    assert_close(&s[4], &gd->stats[4], 1, 1e-8, 0); /* AIC */
    assert_close(&s[5], &gd->stats[5], 1, 1e-8, 0); /* BIC */
    assert_close(&s[6], &gd->stats[6], 1, 1e-6, 0); /* dispersion */
    assert_close(&s[7], &gd->stats[7], 1, 1e-8, 0); /* logLik */
    int conv, iter;
    assert_ok(sj_glm_convergence(m, &conv, &iter), e->ctx);
    assert_int_equal(conv, 1);
    assert_int_equal(iter, (int)gd->stats[8]);
    double *r = malloc((size_t)n * sizeof *r);
    for (int t = 0; t < 4; t++) {
        assert_ok(sj_glm_residuals(m, (sj_glm_resid_type)t, r), e->ctx);
        assert_close(r, gd->res[t], (size_t)n, 1e-6, 1e-9);
    }
    assert_ok(sj_glm_leverage(m, r), e->ctx);
    assert_close(r, gd->hat, (size_t)n, 1e-6, 1e-12);
    assert_ok(sj_glm_cooks(m, r), e->ctx);
    assert_close(r, gd->cooks, (size_t)n, 1e-6, 1e-12);
    double v[16], se[4], lo[4], hi[4];
    assert_ok(sj_glm_vcov(m, SJ_GLM_VCOV_HC0, v), e->ctx);
    for (int j = 0; j < p; j++)
        se[j] = sqrt(v[j * p + j]);
    assert_close(se, gd->hc0, (size_t)p, 1e-6, 0);
    assert_ok(sj_glm_confint(m, 0.9, SJ_GLM_VCOV_MODEL, lo, hi), e->ctx);
    assert_close(lo, gd->ci90, (size_t)p, 1e-6, 1e-12);
    assert_close(hi, gd->ci90 + p, (size_t)p, 1e-6, 1e-12);
    double fitv[3], fse[3];
    assert_ok(sj_glm_predict(m, 3, gd->newx, NULL, SJ_GLM_LINK, fitv, fse), e->ctx);
    assert_close(fitv, gd->pred_link, 3, 1e-6, 1e-12);
    assert_close(fse, gd->pred_link + 3, 3, 1e-6, 0);
    assert_ok(sj_glm_predict(m, 3, gd->newx, NULL, SJ_GLM_RESPONSE, fitv, fse), e->ctx);
    assert_close(fitv, gd->pred_resp, 3, 1e-6, 0);
    assert_close(fse, gd->pred_resp + 3, 3, 1e-6, 0);
    free(r);
    char *txt = sj_glm_summary_text(m, "y ~ x", "d");
    assert_non_null(txt);
    char want[64];
    snprintf(want, sizeof want, "Number of Fisher Scoring iterations: %d", (int)gd->stats[8]);
    assert_non_null(strstr(txt, want));
    assert_non_null(strstr(txt, "Coefficients:"));
    print_message("%s", txt);
    sj_string_free(txt);
    char *js = sj_glm_summary_json(m);
    assert_non_null(js);
    assert_non_null(strstr(js, "\"model\": \"glm\""));
    assert_non_null(strstr(js, "\"converged\": true"));
    sj_string_free(js);
    sj_glm_free(m);
}

static void test_warpbreaks_poisson(void **state)
{
    golden gd = GOLDEN(wb, "poisson", NULL, 54, 4, wb_names, NULL, NULL);
    check_golden(*state, &gd);
    /* the shared golden (glm_warpbreaks_poisson.json) */
    assert_close(&gd.coef[0], (double[]){3.6919631449537955}, 1, 1e-15, 0);
}

static void test_warpbreaks_weights_offset(void **state)
{
    golden gd = GOLDEN(wbwo, "poisson", "log", 54, 4, wb_names, wb_w, wb_off);
    check_golden(*state, &gd);
}

static void test_mtcars_gaussian(void **state)
{
    golden gd = GOLDEN(mtg, "gaussian", NULL, 32, 3, mt_names, NULL, NULL);
    check_golden(*state, &gd);
    assert_close(&gd.coef[1], (double[]){-3.8778307424046816}, 1, 1e-15, 0);
}

static void test_mtcars_gamma_log(void **state)
{
    golden gd = GOLDEN(mtG, "Gamma", "log", 32, 3, mt_names, NULL, NULL);
    check_golden(*state, &gd);
    assert_close(&gd.coef[0], (double[]){3.8258701726410997}, 1, 1e-15, 0);
}

/* First k columns of an n×p matrix. */
static double *columns(const double *x, int n, int p, int k)
{
    double *r = malloc((size_t)(n * k) * sizeof *r);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            r[i * k + j] = x[i * p + j];
    return r;
}

static void test_lrtest(void **state)
{
    test_graph *e = *state;
    golden gd = GOLDEN(wb, "poisson", NULL, 54, 4, wb_names, NULL, NULL);
    sj_glm *full = fit(e, &gd), *red = NULL;
    double *x2 = columns(wb_X, 54, 4, 2), st, df, pv;
    assert_ok(sj_glm_create(e->ctx, "poisson", NULL, 54, 2, x2, wb_names, wb_y, NULL, NULL, &red),
              e->ctx);
    assert_ok(sj_glm_fit(red, 0), e->ctx);
    assert_ok(sj_glm_lrtest(full, red, &st, &df, &pv), e->ctx);
    assert_close(&st, &wb_lrt[0], 1, 1e-8, 0);
    assert_close(&df, &wb_lrt[1], 1, 0, 0);
    assert_close(&pv, &wb_lrt[2], 1, 1e-6, 1e-300);
    assert_error(sj_glm_lrtest(red, full, &st, &df, &pv), SJ_ERR_INVALID_ARGUMENT, e->ctx,
                 "fewer coefficients");
    sj_glm_free(full);
    sj_glm_free(red);
    free(x2);
    /* Gamma: Δdeviance scaled by the full model's dispersion */
    golden g3 = GOLDEN(mtG, "Gamma", "log", 32, 3, mt_names, NULL, NULL);
    full = fit(e, &g3);
    x2 = columns(mtG_X, 32, 3, 2);
    assert_ok(sj_glm_create(e->ctx, "Gamma", "log", 32, 2, x2, mt_names, mtG_y, NULL, NULL, &red),
              e->ctx);
    assert_ok(sj_glm_fit(red, 0), e->ctx);
    assert_ok(sj_glm_lrtest(full, red, &st, &df, &pv), e->ctx);
    assert_close(&st, &mtG_lrt[0], 1, 1e-6, 0);
    assert_close(&pv, &mtG_lrt[2], 1, 1e-5, 1e-300);
    sj_glm_free(full);
    sj_glm_free(red);
    free(x2);
}

/* MASS::glm.nb: θ estimated by alternation; and θ fixed. */
static void test_negative_binomial(void **state)
{
    test_graph *e = *state;
    sj_glm *m = NULL;
    assert_ok(sj_glm_create(e->ctx, "negative.binomial", NULL, 54, 4, wb_X, wb_names, wb_y, NULL,
                            NULL, &m),
              e->ctx);
    assert_ok(sj_glm_fit(m, 0), e->ctx);
    double th, thse, b[4], se[4], s[8];
    assert_ok(sj_glm_theta(m, &th, &thse), e->ctx);
    print_message("theta %.12g (MASS %.12g), SE %.12g (MASS %.12g)\n", th, wbnb_stats[0], thse,
                  wbnb_stats[1]);
    assert_close(&th, &wbnb_stats[0], 1, 1e-5, 0);
    assert_close(&thse, &wbnb_stats[1], 1, 1e-4, 0);
    for (int j = 0; j < 4; j++)
        assert_ok(sj_glm_coef(m, j, NULL, &b[j], &se[j], NULL, NULL), e->ctx);
    /* The inner fits start from mustart, MASS's from the previous μ: both
     * stop at glm.control's tolerance, a little apart. */
    assert_close(b, wbnb_coef, 4, 1e-4, 0);
    assert_close(se, wbnb_se, 4, 1e-4, 0);
    assert_ok(sj_glm_stats(m, &s[0], NULL, NULL, NULL, &s[4], NULL, NULL, &s[7]), e->ctx);
    assert_close(&s[0], &wbnb_stats[2], 1, 1e-5, 0);
    assert_close(&s[4], &wbnb_stats[3], 1, 1e-7, 0);
    assert_close(&s[7], &wbnb_stats[4], 1, 1e-7, 0);
    /* θ fixed at MASS's estimate: the same coefficients (MASS's last fit used
     * the θ before the final update, hence the 1e-4) */
    assert_ok(sj_glm_set_theta(m, wbnb_stats[0]), e->ctx);
    assert_ok(sj_glm_fit(m, 0), e->ctx);
    for (int j = 0; j < 4; j++)
        assert_ok(sj_glm_coef(m, j, NULL, &b[j], NULL, NULL, NULL), e->ctx);
    assert_close(b, wbnb_coef, 4, 1e-4, 0);
    assert_ok(sj_glm_theta(m, &th, &thse), e->ctx);
    assert_true(th == wbnb_stats[0] && isnan(thse));
    sj_glm_free(m);
}

static void test_rank_deficient(void **state)
{
    test_graph *e = *state;
    /* warpbreaks with a fifth column tensionM + tensionH (aliased) */
    double x[54 * 5];
    for (int i = 0; i < 54; i++) {
        for (int j = 0; j < 4; j++)
            x[i * 5 + j] = wb_X[i * 4 + j];
        x[i * 5 + 4] = wb_X[i * 4 + 2] + wb_X[i * 4 + 3];
    }
    const char *names[] = {"(Intercept)", "woolB", "tensionM", "tensionH", "tensionMH"};
    sj_glm *m = NULL;
    assert_ok(sj_glm_create(e->ctx, "poisson", NULL, 54, 5, x, names, wb_y, NULL, NULL, &m),
              e->ctx);
    /* R's singular.ok = FALSE: refused (the default, R-like dropping, is
     * tested in test_fit_robustness.c) */
    assert_ok(sj_glm_set_singular_ok(m, 0), e->ctx);
    assert_error(sj_glm_fit(m, 0), SJ_ERR_SINGULAR, e->ctx, "aliased): tensionMH");
    assert_error(sj_glm_coef(m, 0, NULL, NULL, NULL, NULL, NULL), SJ_ERR_INVALID_ARGUMENT, e->ctx,
                 "not fitted");
    sj_glm_free(m);
}

static void test_errors(void **state)
{
    test_graph *e = *state;
    sj_glm *m = NULL;
    double x[2] = {1, 1}, y[2] = {1, -1};
    assert_error(sj_glm_create(e->ctx, "poison", NULL, 2, 1, x, NULL, y, NULL, NULL, &m),
                 SJ_ERR_INVALID_ARGUMENT, e->ctx, "poison");
    assert_error(sj_glm_create(e->ctx, "poisson", NULL, 2, 1, x, NULL, y, NULL, NULL, &m),
                 SJ_ERR_DOMAIN, e->ctx, "row 2");
    assert_error(sj_glm_create(e->ctx, "poisson", NULL, 2, 3, x, NULL, y, NULL, NULL, &m),
                 SJ_ERR_SHAPE, e->ctx, "p <= n");
    assert_error(sj_glm_create(e->ctx, "poisson", NULL, 2, 1, NULL, NULL, y, NULL, NULL, &m),
                 SJ_ERR_INVALID_ARGUMENT, e->ctx, "X is NULL");
    assert_null(m);
    y[1] = 2;
    assert_ok(sj_glm_create(e->ctx, "poisson", NULL, 2, 1, x, NULL, y, NULL, NULL, &m), e->ctx);
    assert_error(sj_glm_fit(m, -1), SJ_ERR_INVALID_ARGUMENT, e->ctx, "max_iter");
    assert_ok(sj_glm_fit(m, 0), e->ctx);
    assert_string_equal(sj_glm_family_name(m), "poisson");
    assert_string_equal(sj_glm_link_name(m), "log");
    const char *name;
    double est;
    assert_ok(sj_glm_coef(m, 0, &name, &est, NULL, NULL, NULL), e->ctx);
    assert_string_equal(name, "X1");
    assert_close(&est, (double[]){log(1.5)}, 1, 1e-8, 0);
    assert_error(sj_glm_coef(m, 1, NULL, NULL, NULL, NULL, NULL), SJ_ERR_INVALID_ARGUMENT, e->ctx,
                 "not in 0..0");
    assert_int_equal(sj_glm_ncoef(NULL), -1);
    assert_null(sj_glm_summary_json(NULL));
    sj_glm_free(m);
    sj_glm_free(NULL);
}

/* ---- the graph-level fit: derivatives and batches ----------------------------------------- */

#define DIMS(...) ((const char *const[]){__VA_ARGS__})
enum { N = 30, P = 3, NH = 10 };

static void sim(uint64_t seed, double *x, double *y, int n)
{
    uint64_t r = seed;
    for (int i = 0; i < n; i++) {
        x[i * P] = 1;
        x[i * P + 1] = test_uniform(&r, -1, 1);
        x[i * P + 2] = test_uniform(&r, -1, 1);
        double mu = exp(0.5 + 0.6 * x[i * P + 1] - 0.4 * x[i * P + 2]);
        /* a count near mu, deterministic */
        y[i] = floor(mu * test_uniform(&r, 0.3, 1.7) + 0.5);
    }
}

/* Graph: inputs X, y, w, off, Xh, yh; outputs β̂, held-out poisson loss
 * L = Σ exp(Xh β̂) − yh·Xh β̂, iterations, converged. */
static sj_fn *fit_fn(test_graph *e)
{
    sj_ctx *ctx = e->ctx;
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_glm_family *fam = NULL;
    assert_ok(sj_glm_family_create(ctx, "poisson", NULL, 0, &fam), ctx);
    sj_value x = sj_input(g, "X", 2, DIMS("n", "p")), y = sj_input(g, "y", 1, DIMS("n"));
    sj_value w = sj_input(g, "w", 1, DIMS("n")), off = sj_input(g, "off", 1, DIMS("n"));
    sj_value xh = sj_input(g, "Xh", 2, DIMS("m", "p")), yh = sj_input(g, "yh", 1, DIMS("m"));
    sj_value b, it, cv;
    assert_ok(sj_glm_fit_graph(g, fam, x, y, w, off, 0, &b, &it, &cv), ctx);
    sj_value eh = sj_matmul(g, xh, b);
    sj_value loss = sj_sum_all(g, sj_sub(g, sj_exp(g, eh), sj_mul(g, yh, eh)));
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 4, (sj_value[]){b, loss, it, cv}, &f), ctx);
    sj_graph_free(g);
    sj_glm_family_free(fam);
    return f;
}

typedef struct data {
    double x[N * P], y[N], w[N], off[N], xh[NH * P], yh[NH];
} data;

static void make_data(data *d)
{
    sim(7, d->x, d->y, N);
    sim(8, d->xh, d->yh, NH);
    for (int i = 0; i < N; i++) {
        d->w[i] = 1 + 0.5 * (i % 3);
        d->off[i] = 0.1 * (i % 4);
    }
}

static const int RANKS[6] = {2, 1, 1, 1, 2, 1};

static void call(test_graph *e, sj_fn *f, int nin, const double *const *in, double *const *out,
                 const int *ranks, const int64_t *const *dims)
{
    assert_ok(sj_fn_call(f, nin, ranks, dims, in, out), e->ctx);
}

static const int64_t dn[2] = {N, P}, dh[2] = {NH, P}, nn = N, mh = NH, pp = P;

static double loss_at(test_graph *e, sj_fn *f, const data *d, double *beta)
{
    double b[P], l, it, cv;
    call(e, f, 6, (const double *[]){d->x, d->y, d->w, d->off, d->xh, d->yh},
         (double *[]){b, &l, &it, &cv}, RANKS, (const int64_t *[]){dn, &nn, &nn, &nn, dh, &mh});
    assert_true(cv == 1.0);
    if (beta)
        memcpy(beta, b, sizeof b);
    return l;
}

static void test_derivatives(void **state)
{
    test_graph *e = *state;
    sj_fn *f = fit_fn(e);
    data d;
    make_data(&d);
    double beta[P];
    loss_at(e, f, &d, beta);

    /* grad of the held-out loss with respect to X, y, w, off vs central FD of refits */
    sj_fn *gf = NULL;
    assert_ok(sj_grad(f, 1, 4, (int[]){0, 1, 2, 3}, &gf), e->ctx);
    double gx[N * P], gy[N], gw[N], go[N];
    call(e, gf, 6, (const double *[]){d.x, d.y, d.w, d.off, d.xh, d.yh},
         (double *[]){gx, gy, gw, go}, RANKS, (const int64_t *[]){dn, &nn, &nn, &nn, dh, &mh});
    double *arrs[4] = {d.x, d.y, d.w, d.off}, *grads[4] = {gx, gy, gw, go};
    int lens[4] = {N * P, N, N, N};
    for (int a = 0; a < 4; a++)
        for (int k = 0; k < lens[a]; k += 7) {
            if (a == 1 && d.y[k] == 0)
                continue; /* y = 0 is the edge of the support: one-sided */
            double h = 1e-5, save = arrs[a][k];
            arrs[a][k] = save + h;
            double lp = loss_at(e, f, &d, NULL);
            arrs[a][k] = save - h;
            double lm = loss_at(e, f, &d, NULL);
            arrs[a][k] = save;
            double fd = (lp - lm) / (2 * h);
            assert_close(&grads[a][k], &fd, 1, 1e-5, 1e-7);
        }

    /* jvp of β̂ with respect to y vs FD */
    sj_fn *jf = NULL;
    assert_ok(sj_jvp(f, 1, (int[]){1}, &jf), e->ctx);
    double ty[N], out[4 * 2 + 2 * P][P];
    for (int i = 0; i < N; i++)
        ty[i] = d.y[i] > 0 ? sin(i + 1.0) : 0.0;
    double b0[P], l0, it0, cv0, tb[P], tl, tit, tcv;
    assert_ok(sj_fn_call(jf, 7, (int[]){2, 1, 1, 1, 2, 1, 1},
                         (const int64_t *[]){dn, &nn, &nn, &nn, dh, &mh, &nn},
                         (const double *[]){d.x, d.y, d.w, d.off, d.xh, d.yh, ty},
                         (double *[]){b0, &l0, &it0, &cv0, tb, &tl, &tit, &tcv}),
              e->ctx);
    (void)out;
    double bp[P], bm[P], ysave[N];
    memcpy(ysave, d.y, sizeof ysave);
    for (int i = 0; i < N; i++)
        d.y[i] = ysave[i] + 1e-3 * ty[i];
    loss_at(e, f, &d, bp);
    for (int i = 0; i < N; i++)
        d.y[i] = ysave[i] - 1e-3 * ty[i];
    loss_at(e, f, &d, bm);
    memcpy(d.y, ysave, sizeof ysave);
    double gdot = 0;
    for (int i = 0; i < N; i++)
        gdot += gy[i] * ty[i];
    assert_close(&tl, &gdot, 1, 1e-10, 1e-12); /* forward and reverse agree */
    for (int j = 0; j < P; j++) {
        double fd = (bp[j] - bm[j]) / 2e-3;
        assert_close(&tb[j], &fd, 1, 1e-6, 1e-9);
    }
    assert_true(tit == 0 && tcv == 0);

    /* second order: hvp of the held-out loss with respect to y vs FD of the gradient */
    sj_fn *hf = NULL, *gyf = NULL;
    assert_ok(sj_hvp(f, 1, 1, (int[]){1}, &hf), e->ctx);
    assert_ok(sj_grad(f, 1, 1, (int[]){1}, &gyf), e->ctx);
    double hv[N], g1[N], g2[N];
    assert_ok(sj_fn_call(hf, 7, (int[]){2, 1, 1, 1, 2, 1, 1},
                         (const int64_t *[]){dn, &nn, &nn, &nn, dh, &mh, &nn},
                         (const double *[]){d.x, d.y, d.w, d.off, d.xh, d.yh, ty}, (double *[]){hv}),
              e->ctx);
    for (int i = 0; i < N; i++)
        d.y[i] = ysave[i] + 1e-5 * ty[i];
    call(e, gyf, 6, (const double *[]){d.x, d.y, d.w, d.off, d.xh, d.yh}, (double *[]){g1}, RANKS,
         (const int64_t *[]){dn, &nn, &nn, &nn, dh, &mh});
    for (int i = 0; i < N; i++)
        d.y[i] = ysave[i] - 1e-5 * ty[i];
    call(e, gyf, 6, (const double *[]){d.x, d.y, d.w, d.off, d.xh, d.yh}, (double *[]){g2}, RANKS,
         (const int64_t *[]){dn, &nn, &nn, &nn, dh, &mh});
    memcpy(d.y, ysave, sizeof ysave);
    for (int i = 0; i < N; i++) {
        double fd = (g1[i] - g2[i]) / 2e-5;
        assert_close(&hv[i], &fd, 1, 1e-5, 1e-8);
    }
    sj_fn_free(hf);
    sj_fn_free(gyf);
    sj_fn_free(jf);
    sj_fn_free(gf);
    sj_fn_free(f);
}

static void test_vmap(void **state)
{
    test_graph *e = *state;
    sj_fn *f = fit_fn(e);
    enum { B = 6 };
    data d;
    make_data(&d);
    /* B responses sharing X: y batched */
    double ys[B][N], b[B][P], l[B], it[B], cv[B];
    for (int k = 0; k < B; k++)
        for (int i = 0; i < N; i++)
            ys[k][i] = d.y[i] + (double)((i + k) % 3);
    sj_fn *vf = NULL;
    assert_ok(sj_vmap(f, (int[]){-1, 0, -1, -1, -1, -1}, NULL, NULL, &vf), e->ctx);
    int64_t by[2] = {B, N};
    assert_ok(sj_fn_call(vf, 6, (int[]){2, 2, 1, 1, 2, 1},
                         (const int64_t *[]){dn, by, &nn, &nn, dh, &mh},
                         (const double *[]){d.x, &ys[0][0], d.w, d.off, d.xh, d.yh},
                         (double *[]){&b[0][0], l, it, cv}),
              e->ctx);
    for (int k = 0; k < B; k++) {
        data dk = d;
        memcpy(dk.y, ys[k], sizeof dk.y);
        double bk[P];
        double lk = loss_at(e, f, &dk, bk);
        assert_close(b[k], bk, P, 1e-12, 1e-14);
        assert_close(&l[k], &lk, 1, 1e-12, 0);
        assert_true(cv[k] == 1.0 && it[k] >= 2);
    }
    sj_fn_free(vf);
    /* (X, y) pairs batched */
    double xs[B][N * P];
    for (int k = 0; k < B; k++)
        for (int i = 0; i < N * P; i++)
            xs[k][i] = d.x[i] * (i % P ? 1.0 + 0.1 * k : 1.0);
    assert_ok(sj_vmap(f, (int[]){0, 0, -1, -1, -1, -1}, NULL, NULL, &vf), e->ctx);
    int64_t bx[3] = {B, N, P};
    assert_ok(sj_fn_call(vf, 6, (int[]){3, 2, 1, 1, 2, 1},
                         (const int64_t *[]){bx, by, &nn, &nn, dh, &mh},
                         (const double *[]){&xs[0][0], &ys[0][0], d.w, d.off, d.xh, d.yh},
                         (double *[]){&b[0][0], l, it, cv}),
              e->ctx);
    for (int k = 0; k < B; k++) {
        data dk = d;
        memcpy(dk.y, ys[k], sizeof dk.y);
        memcpy(dk.x, xs[k], sizeof dk.x);
        double bk[P];
        loss_at(e, f, &dk, bk);
        assert_close(b[k], bk, P, 1e-12, 1e-14);
        assert_true(cv[k] == 1.0);
    }
    sj_fn_free(vf);
    sj_fn_free(f);
    (void)pp;
}

#define T(name) cmocka_unit_test_setup_teardown(name, test_graph_setup, test_graph_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_warpbreaks_poisson), T(test_warpbreaks_weights_offset), T(test_mtcars_gaussian),
        T(test_mtcars_gamma_log),   T(test_lrtest),                    T(test_rank_deficient), T(test_negative_binomial),
        T(test_errors),             T(test_derivatives),               T(test_vmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
