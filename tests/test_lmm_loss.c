/* The REML criterion and ML deviance (frontend/lmm_loss.c) on covariance
 * trees, against lme4 (R 4.2.2, lme4 1.1.31):
 *
 *   sleepstudy  Reaction ~ Days + (Days | Subject)
 *   sleepstudy  Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)
 *   Dyestuff    Yield ~ 1 + (1 | Batch)
 *
 * The REML values and optima are lme4's polished fits from the shared
 * golden files (../shared/data/golden/lmm_sleepstudy.json, lmm_Dyestuff.json,
 * reml_derivs_sleepstudy.json, copied below with their keys); the ML values
 * come from tests/data/make_lmm_ml_golden.R (lmm_ml_golden.h).  lme4's θ
 * (relative Cholesky factor Λ, G = σ²ΛΛᵀ) and σ are converted to our raw
 * parameters: an unstructured L = σΛ with log diagonal, variances through
 * exp(2θ) (θ = log sd) or exp(θ) (θ = log variance).  Losses are compiled
 * (native code) and evaluated by the reference evaluator; they must agree
 * with lme4 to 1e-6 relative (observed differences are printed). */
#include "cov_check.h"

#include "data/lmm_ml_golden.h"

enum { NSLEEP = 180, NDYE = 30 };

/* ---- data: tiny local CSV readers ------------------------------------------ */

static FILE *open_data(const char *name)
{
    const char *dir = getenv("SJ_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
    return fopen(path, "r");
}

typedef struct sleep_data {
    double y[NSLEEP], days[NSLEEP];
    char subject[NSLEEP][16];
} sleep_data;

static void read_sleepstudy(sleep_data *d)
{
    FILE *f = open_data("sleepstudy.csv");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    int n = 0;
    while (n < NSLEEP && fgets(line, sizeof line, f))
        if (sscanf(line, "%lf,%lf,\"%15[^\"]\"", &d->y[n], &d->days[n], d->subject[n]) == 3)
            n++;
    fclose(f);
    assert_int_equal(n, NSLEEP);
}

typedef struct dye_data {
    double y[NDYE];
    char batch[NDYE][8];
} dye_data;

static void read_dyestuff(dye_data *d)
{
    FILE *f = open_data("Dyestuff.csv");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    int n = 0;
    while (n < NDYE && fgets(line, sizeof line, f))
        if (sscanf(line, "\"%7[^\"]\",%lf", d->batch[n], &d->y[n]) == 2)
            n++;
    fclose(f);
    assert_int_equal(n, NDYE);
}

/* ---- models -------------------------------------------------------------------- */

typedef enum model { SLEEP_CORR, SLEEP_INDEP, DYESTUFF } model;
static const char *const model_name[] = {"sleepstudy (Days | Subject)",
                                         "sleepstudy (1 | Subject) + (0 + Days | Subject)",
                                         "Dyestuff (1 | Batch)"};

/* A built model: f(theta, y, X, Z or codes) -> (REML criterion, ML deviance),
 * with its inputs filled from the data.  n is symbolic. */
typedef struct built {
    sj_fn *f;
    int nin, k;
    val in[4];
} built;

static void build_model(sj_ctx *ctx, model m, built *b)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *dn[] = {"n"}, *dx[] = {"n", m == DYESTUFF ? "1" : "2"};
    b->k = m == SLEEP_CORR ? 4 : m == SLEEP_INDEP ? 3 : 2;
    char ks[8];
    snprintf(ks, sizeof ks, "%d", b->k);
    const char *dk[] = {ks};
    sj_value theta = sj_input(g, "theta", 1, dk);
    sj_value y = sj_input(g, "y", 1, dn);
    sj_value x = sj_input(g, "X", 2, dx);
    int64_t n = m == DYESTUFF ? NDYE : NSLEEP, p = m == DYESTUFF ? 1 : 2;
    int64_t kk = b->k, xd[2] = {n, p};
    b->in[0] = val_new(1, &kk);
    b->in[1] = val_new(1, &n);
    b->in[2] = val_new(2, xd);
    sj_cov *root = NULL;
    if (m == DYESTUFF) {
        static dye_data d;
        read_dyestuff(&d);
        const char *s[NDYE];
        for (int i = 0; i < NDYE; i++) {
            s[i] = d.batch[i];
            b->in[1].data[i] = d.y[i];
            b->in[2].data[i] = 1;
        }
        b->in[3] = val_new(1, &n);
        int64_t nl;
        const char *const *levels;
        assert_ok(sj_factor_levels(g, s, NDYE, b->in[3].data, &nl, &levels), ctx);
        assert_int_equal(nl, 6);
        sj_value codes = sj_input(g, "Batch", 1, dn);
        sj_cov *kids[2] = {
            sj_cov_propagate(g, NULL, sj_cov_dummy(g, "Z", codes, "6", levels),
                             sj_cov_scalar(g, "Batch", "6", 1.0, sj_transform_exp2())),
            sj_cov_scalar(g, "residual", "n", 1.0, sj_transform_exp2())};
        root = sj_cov_sum(g, NULL, 2, kids);
    } else {
        static sleep_data d;
        read_sleepstudy(&d);
        const char *s[NSLEEP];
        for (int i = 0; i < NSLEEP; i++) {
            s[i] = d.subject[i];
            b->in[1].data[i] = d.y[i];
            b->in[2].data[2 * i] = 1;
            b->in[2].data[2 * i + 1] = d.days[i];
        }
        double codes[NSLEEP];
        int64_t nl;
        const char *const *levels;
        assert_ok(sj_factor_levels(g, s, NSLEEP, codes, &nl, &levels), ctx);
        assert_int_equal(nl, 18);
        assert_string_equal(levels[0], "308");
        if (m == SLEEP_CORR) {
            /* Z = [Z0 | Z0 ∘ Days], G = Σ ⊗ I_18, Σ = L Lᵀ. */
            int64_t zd[2] = {NSLEEP, 36};
            b->in[3] = val_new(2, zd);
            for (int i = 0; i < NSLEEP; i++) {
                b->in[3].data[36 * i + (int)codes[i]] = 1;
                b->in[3].data[36 * i + 18 + (int)codes[i]] = d.days[i];
            }
            const char *dz[] = {"n", "36"};
            sj_value z = sj_input(g, "Z", 2, dz);
            sj_cov *gk = sj_cov_kron(g, NULL, sj_cov_unstructured(g, "Subject", 2),
                                     sj_cov_identity(g, "I", "18"));
            sj_cov *kids[2] = {sj_cov_propagate(g, NULL, sj_cov_fixed(g, "Z", z), gk),
                               sj_cov_scalar(g, "residual", "n", 1.0, sj_transform_exp2())};
            root = sj_cov_sum(g, NULL, 2, kids);
        } else {
            /* Z0 from the codes, Z1 = Z0 ∘ Days as a user matrix; log variances. */
            int64_t zd[2] = {NSLEEP, 18};
            b->in[3] = val_new(2, zd);
            for (int i = 0; i < NSLEEP; i++)
                b->in[3].data[18 * i + (int)codes[i]] = d.days[i];
            const char *dz[] = {"n", "18"};
            sj_value z1 = sj_input(g, "Z1", 2, dz);
            sj_value cz = sj_constant(g, 1, (int64_t[]){NSLEEP}, codes);
            sj_cov *kids[3] = {
                sj_cov_propagate(g, "int", sj_cov_dummy(g, "Z0", cz, "18", levels),
                                 sj_cov_scalar(g, "Subject", "18", 1.0, sj_transform_exp())),
                sj_cov_propagate(g, "slope", sj_cov_fixed(g, "Z1", z1),
                                 sj_cov_scalar(g, "Subject", "18", 1.0, sj_transform_exp())),
                sj_cov_scalar(g, "residual", "n", 1.0, sj_transform_exp())};
            root = sj_cov_sum(g, NULL, 3, kids);
        }
    }
    b->nin = 4;
    assert_int_equal(sj_cov_nparam(root), b->k);
    static const char *const names[3][4] = {
        {"Subject/L_0_0", "Subject/L_1_0", "Subject/L_1_1", "residual/sigma2"},
        {"int/Subject/sigma2", "slope/Subject/sigma2", "residual/sigma2"},
        {"Batch/sigma2", "residual/sigma2"}};
    for (int i = 0; i < b->k; i++)
        assert_string_equal(sj_cov_param_name(root, i), names[m][i]);
    sj_value v;
    assert_ok(sj_cov_build(root, theta, &v), ctx);
    sj_value out[2] = {sj_reml_criterion(g, v, x, y), sj_ml_deviance(g, v, x, y)};
    assert_ok(sj_graph_status(g), ctx);
    assert_ok(sj_fn_create(g, 2, out, &b->f), ctx);
    sj_graph_free(g);
}

static void free_model(built *b)
{
    sj_fn_free(b->f);
    ad_free_all(b->in, b->nin);
}

/* Our raw θ from lme4's θ and σ. */
static void theta_from_lme4(model m, const double *th, double sigma, double *raw)
{
    switch (m) {
    case SLEEP_CORR:
        raw[0] = log(sigma * th[0]);
        raw[1] = sigma * th[1];
        raw[2] = log(sigma * th[2]);
        raw[3] = log(sigma);
        break;
    case SLEEP_INDEP: /* log variances */
        raw[0] = log(sigma * sigma * th[0] * th[0]);
        raw[1] = log(sigma * sigma * th[1] * th[1]);
        raw[2] = log(sigma * sigma);
        break;
    case DYESTUFF:
        raw[0] = log(sigma * th[0]);
        raw[1] = log(sigma);
        break;
    }
}

/* (REML, ML) at raw θ, natively and by the evaluator (which must agree). */
static void losses(sj_ctx *ctx, built *b, const double *raw, double out[2])
{
    memcpy(b->in[0].data, raw, (size_t)b->k * sizeof *raw);
    val o[AD_MAX_OUT], e[AD_MAX_OUT];
    assert_int_equal(cov_call(ctx, b->f, b->nin, b->in, o), 2);
    assert_int_equal(ad_run(ctx, b->f, b->nin, b->in, e), 2);
    for (int k = 0; k < 2; k++) {
        out[k] = o[k].data[0];
        assert_close(e[k].data, o[k].data, 1, 1e-12, 0);
    }
    ad_free_all(o, 2);
    ad_free_all(e, 2);
}

static void check_model(model m, const double *reml_theta, double reml_sigma, double reml_crit,
                        const double *ml_theta, double ml_sigma, double ml_dev)
{
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    built b;
    build_model(ctx, m, &b);
    double raw[4], got[2];
    if (reml_theta)
        theta_from_lme4(m, reml_theta, reml_sigma, raw);
    else
        memcpy(raw, (const double[]){6.4418538111210832, 3.579572321375263, 6.4824707650035478},
               3 * sizeof(double)); /* reml_derivs_sleepstudy.json part1.B.theta */
    losses(ctx, &b, raw, got);
    double e1 = fabs(got[0] - reml_crit) / reml_crit;
    print_message("%s\n  REML %.15g (lme4 %.15g) rel diff %.2e\n", model_name[m], got[0],
                  reml_crit, e1);
    assert_close(&got[0], &reml_crit, 1, 1e-6, 0);
    /* At the REML optimum the gradient in θ vanishes (a reparametrisation
     * of lme4's profiled optimum). */
    sj_fn *vg = NULL;
    int wrt = 0;
    assert_ok(sj_value_and_grad(b.f, 0, 1, &wrt, &vg), ctx);
    val o[AD_MAX_OUT];
    assert_int_equal(cov_call(ctx, vg, b.nin, b.in, o), 2);
    double gmax = 0;
    for (int i = 0; i < b.k; i++)
        gmax = fmax(gmax, fabs(o[1].data[i]));
    print_message("  |grad REML| at the optimum %.2e\n", gmax);
    assert_true(gmax < 1e-3);
    ad_free_all(o, 2);
    sj_fn_free(vg);

    theta_from_lme4(m, ml_theta, ml_sigma, raw);
    losses(ctx, &b, raw, got);
    double e2 = fabs(got[1] - ml_dev) / ml_dev;
    print_message("  ML   %.15g (lme4 %.15g) rel diff %.2e\n", got[1], ml_dev, e2);
    assert_close(&got[1], &ml_dev, 1, 1e-6, 0);
    free_model(&b);
    sj_ctx_free(ctx);
}

static void test_sleepstudy_correlated(void **state)
{
    /* lmm_sleepstudy.json: polished.theta_lme4, polished.sigma, polished.REMLcrit */
    static const double th[3] = {0.96673279147144553, 0.01516905988036828, 0.23090959808530717};
    check_model(SLEEP_CORR, th, 25.591815892624137, 1743.628271958491,
                ml_sleepstudy_corr_theta_lme4, ml_sleepstudy_corr_sigma, ml_sleepstudy_corr_deviance);
}

static void test_sleepstudy_independent(void **state)
{
    /* reml_derivs_sleepstudy.json: part1.B (θ = log variances), lmer_REMLcrit */
    check_model(SLEEP_INDEP, NULL, 0, 1743.6692935813121, ml_sleepstudy_indep_theta_lme4,
                ml_sleepstudy_indep_sigma, ml_sleepstudy_indep_deviance);
}

static void test_dyestuff(void **state)
{
    /* lmm_Dyestuff.json: polished.theta_lme4, polished.sigma, polished.REMLcrit */
    static const double th[1] = {0.84832376733208137};
    check_model(DYESTUFF, th, 49.510100090729232, 319.65427684225739, ml_dyestuff_theta_lme4,
                ml_dyestuff_sigma, ml_dyestuff_deviance);
}

/* Gradient and Hessian of the REML criterion of the independent model at
 * θ = (6.5, 3.5, 6.5) (log variances) against the analytic values of
 * reml_derivs_sleepstudy.json part1.A (R, checked there by numDeriv). */
static void test_reml_derivatives(void **state)
{
    static const double value = 1743.7445441184502;
    static const double grad[3] = {0.56558324053765574, -0.91530761385182657, 2.5353291064491543};
    static const double hess[9] = {9.7932966573456, 0.61001931783070873, 2.1342680220582473,
                                   0.61001931783071317, 12.435770530332764, 2.0474575320099566,
                                   2.1342680220582499, 2.0474575320099708, 144.00183833538881};
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    built b;
    build_model(ctx, SLEEP_INDEP, &b);
    double raw[3] = {6.5, 3.5, 6.5};
    memcpy(b.in[0].data, raw, sizeof raw);
    sj_fn *vg = NULL, *h = NULL;
    int wrt = 0;
    assert_ok(sj_value_and_grad(b.f, 0, 1, &wrt, &vg), ctx);
    assert_ok(sj_hessian(b.f, 0, 1, &wrt, &h), ctx);
    val o[AD_MAX_OUT], ho[AD_MAX_OUT];
    assert_int_equal(cov_call(ctx, vg, b.nin, b.in, o), 2);
    assert_int_equal(cov_call(ctx, h, b.nin, b.in, ho), 1);
    print_message("value %.15g grad rel err %.2e hessian rel err %.2e\n", o[0].data[0],
                  ad_relerr(o[1].data, grad, 3), ad_relerr(ho[0].data, hess, 9));
    assert_close(o[0].data, &value, 1, 1e-10, 0);
    assert_close(o[1].data, grad, 3, 1e-8, 1e-9);
    assert_close(ho[0].data, hess, 9, 1e-8, 1e-9);
    ad_free_all(o, 2);
    ad_free_all(ho, 1);
    sj_fn_free(vg);
    sj_fn_free(h);
    free_model(&b);
    sj_ctx_free(ctx);
}

/* The losses batch: vmap over a batch of θ (data unbatched) equals a loop. */
static void test_batched_over_theta(void **state)
{
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    built b;
    build_model(ctx, DYESTUFF, &b);
    const int in_axes[4] = {0, -1, -1, -1};
    sj_fn *vf = NULL;
    assert_ok(sj_vmap(b.f, in_axes, NULL, "B", &vf), ctx);
    double thetas[3][2] = {{3.5, 3.9}, {3.7, 3.8}, {3.2, 4.0}}, want[2][3];
    for (int i = 0; i < 3; i++) {
        double got[2];
        losses(ctx, &b, thetas[i], got);
        want[0][i] = got[0];
        want[1][i] = got[1];
    }
    int64_t bd[2] = {3, 2};
    val in[4] = {val_new(2, bd), b.in[1], b.in[2], b.in[3]};
    memcpy(in[0].data, thetas, sizeof thetas);
    val o[AD_MAX_OUT], e[AD_MAX_OUT];
    assert_int_equal(cov_call(ctx, vf, 4, in, o), 2);
    assert_int_equal(ad_run(ctx, vf, 4, in, e), 2);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(o[k].n, 3);
        assert_close(o[k].data, want[k], 3, 1e-12, 0);
        assert_close(e[k].data, want[k], 3, 1e-12, 0);
    }
    ad_free_all(o, 2);
    ad_free_all(e, 2);
    val_free(&in[0]);
    sj_fn_free(vf);
    free_model(&b);
    sj_ctx_free(ctx);
}

/* A tiny case by hand: V = s I (n = 2), X = 1, y = (1, 3):
 * β̂ = 2, yᵀPy = 2/s, log|V| = 2 log s, log|XᵀV⁻¹X| = log(2/s). */
static void test_closed_form_and_errors(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *d2[] = {"2"}, *dx[] = {"2", "1"}, *d22[] = {"2", "2"}, *d3[] = {"3"};
    sj_value v = sj_input(g, "V", 2, d22), x = sj_input(g, "X", 2, dx), y = sj_input(g, "y", 1, d2);
    sj_value out[2] = {sj_reml_criterion(g, v, x, y), sj_ml_deviance(g, v, x, y)};
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 2, out, &f), ctx);
    int64_t s22[2] = {2, 2}, s21[2] = {2, 1}, two = 2;
    double s = 1.7;
    val in[3] = {val_new(2, s22), val_new(2, s21), val_new(1, &two)};
    in[0].data[0] = in[0].data[3] = s;
    in[1].data[0] = in[1].data[1] = 1;
    in[2].data[0] = 1;
    in[2].data[1] = 3;
    val o[AD_MAX_OUT];
    assert_int_equal(cov_call(ctx, f, 3, in, o), 2);
    double l2pi = log(2 * M_PI);
    double want_reml = 2 * log(s) + log(2 / s) + 2 / s + l2pi;
    double want_ml = 2 * log(s) + 2 / s + 2 * l2pi;
    assert_close(o[0].data, &want_reml, 1, 1e-14, 0);
    assert_close(o[1].data, &want_ml, 1, 1e-14, 0);
    ad_free_all(o, 2);
    /* A V that is not positive definite is an error status at call time. */
    in[0].data[0] = -1;
    double r0, r1, *outs[2] = {&r0, &r1};
    const double *data[3] = {in[0].data, in[1].data, in[2].data};
    const int ranks[3] = {2, 2, 1};
    const int64_t *dims[3] = {s22, s21, &two};
    assert_int_equal(sj_fn_call(f, 3, ranks, dims, data, outs), SJ_ERR_NOT_POSITIVE_DEFINITE);
    ad_free_all(in, 3);
    sj_fn_free(f);
    /* Shape errors name the shapes. */
    sj_value y3 = sj_input(g, "y3", 1, d3);
    assert_int_equal(sj_reml_criterion(g, v, x, y3), SJ_INVALID);
    assert_error(sj_graph_status(g), SJ_ERR_SHAPE, ctx, "different numbers of rows");
    assert_error(SJ_ERR_SHAPE, SJ_ERR_SHAPE, ctx, "y is [3]");
    sj_graph_free(g);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value xv = sj_input(g, "x", 1, d2);
    assert_int_equal(sj_ml_deviance(g, xv, xv, xv), SJ_INVALID);
    assert_error(sj_graph_status(g), SJ_ERR_SHAPE, ctx, "sj_ml_deviance: V must be a matrix");
    /* Later calls pass the first error through quietly. */
    assert_int_equal(sj_reml_criterion(g, SJ_INVALID, SJ_INVALID, SJ_INVALID), SJ_INVALID);
    assert_error(sj_graph_status(g), SJ_ERR_SHAPE, ctx, "sj_ml_deviance");
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sleepstudy_correlated),
        cmocka_unit_test(test_sleepstudy_independent),
        cmocka_unit_test(test_dyestuff),
        cmocka_unit_test(test_reml_derivatives),
        cmocka_unit_test(test_batched_over_theta),
        cmocka_unit_test(test_closed_form_and_errors),
    };
    return cmocka_run_group_tests_name("lmm_loss", tests, NULL, NULL);
}
