/* Crossed random effects: lme4's Penicillin data (tests/data/penicillin.csv,
 * 144 rows, 24 plates × 6 samples) and
 *
 *   diameter ~ 1 + (1 | plate) + (1 | sample)
 *
 * from the CSV through the formula front end (fe_csv_read_file,
 * fe_design_build: what `statjit lmm` does) to sj_lmm (REML), against lme4
 * 1.1.31 (tests/data/penicillin_golden.h from make_penicillin_golden.R: lmer
 * polished with bobyqa, rhoend 1e-12).
 *
 * Tolerances (the issue's): REML criterion, logLik, AIC and BIC 1e-6
 * relative; the fixed effect, its SE and the three standard deviations 1e-4
 * relative; conditional modes 1e-4 relative to the largest mode of their
 * term (absolute 1e-4·max|b|: some modes are near zero, where a relative
 * bound means nothing) and conditional SDs 1e-4 relative.  Observed
 * differences are printed.
 *
 * The rewrite log: the fit is compiled in a fresh context with
 * SJ_DUMP=graph, so every compiled graph (the outer fit graph and the fit
 * problem's objective, gradient and Hessian) is printed on stderr with its
 * "# rewrites:" header; stderr is captured in a temporary file.  The crossed
 * factors give one stacked Z of two one-hot pieces with different codes:
 * Woodbury (woodbury-logdet, woodbury-cholesky-solve, and woodbury-bilinear
 * for the criterion's Xᵀ V⁻¹ X, Xᵀ V⁻¹ y, yᵀ V⁻¹ y) fires on each graph, the
 * per-level factorisation (woodbury-blocked, one grouping factor only) does
 * not, and no value of n × n = 144 × 144 elements is left. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "test_structure_check.h"

#include "data/penicillin_golden.h"
#include "frontend/csv.h"
#include "frontend/design.h"

enum { NPEN = 144 };

static double rel(double a, double b) { return fabs(a - b) / fabs(b); }

static fe_design *penicillin_design(void)
{
    const char *dir = getenv("SJ_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/penicillin.csv", dir ? dir : "tests/data");
    fe_table *t = NULL;
    ir_err err = {0};
    if (fe_csv_read_file(path, &t, &err) != SJ_OK)
        fail_msg("%s", err.msg);
    fe_design *d = NULL;
    if (fe_design_build("diameter ~ 1 + (1 | plate) + (1 | sample)", t, &d, &err) != SJ_OK)
        fail_msg("%s", err.msg);
    fe_table_free(t);
    return d;
}

static sj_lmm *penicillin_model(sj_ctx *ctx, const fe_design *d)
{
    sj_lmm *m = NULL;
    assert_ok(sj_lmm_create(ctx, d->n, (int)d->p, d->X, d->colnames, d->y, &m), ctx);
    for (size_t k = 0; k < d->nre; k++) {
        const fe_reterm *re = &d->re[k];
        assert_ok(sj_lmm_add_term(m, re->group_name, re->group, (int)re->nlevel, re->levels,
                                  (int)re->ncol, re->Z, re->colnames, re->ncol > 1),
                  ctx);
    }
    return m;
}

/* The design as lme4 makes it: terms ordered by decreasing number of levels
 * (plate 24, sample 6), levels sorted as R's factor(). */
static void test_design(void **state)
{
    (void)state;
    fe_design *d = penicillin_design();
    assert_int_equal(d->n, NPEN);
    assert_int_equal(d->p, 1);
    assert_int_equal(d->nre, 2);
    assert_string_equal(d->re[0].group_name, pen_groups[0]);
    assert_string_equal(d->re[1].group_name, pen_groups[1]);
    assert_int_equal(d->re[0].nlevel, 24);
    assert_int_equal(d->re[1].nlevel, 6);
    for (int l = 0; l < 24; l++)
        assert_string_equal(d->re[0].levels[l], pen_plate_levels[l]);
    for (int l = 0; l < 6; l++)
        assert_string_equal(d->re[1].levels[l], pen_sample_levels[l]);
    fe_design_free(d);
}

static void check_modes(const sj_lmm *m, sj_ctx *ctx, int term, int nlevels, const double *modes,
                        const double *condsd, const char *name)
{
    double big = 0, emode = 0, esd = 0;
    for (int l = 0; l < nlevels; l++)
        big = fmax(big, fabs(modes[l]));
    for (int l = 0; l < nlevels; l++) {
        double b, cv;
        assert_ok(sj_lmm_ranef(m, term, l, 0, &b, &cv), ctx);
        double sd = sqrt(cv);
        emode = fmax(emode, fabs(b - modes[l]) / big);
        esd = fmax(esd, rel(sd, condsd[l]));
        assert_close(&b, &modes[l], 1, 0, 1e-4 * big);
        assert_close(&sd, &condsd[l], 1, 1e-4, 0);
    }
    print_message("  %s: modes %.1e (of max), conditional sd %.1e\n", name, emode, esd);
}

static void test_fit_against_lme4(void **state)
{
    (void)state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    fe_design *d = penicillin_design();
    sj_lmm *m = penicillin_model(ctx, d);
    assert_ok(sj_lmm_fit(m, 1), ctx);
    int conv, iters, sing;
    assert_ok(sj_lmm_convergence(m, &conv, &iters, &sing), ctx);
    assert_int_equal(conv, 1);
    assert_int_equal(sing, 0);
    double crit, lab[3];
    assert_ok(sj_lmm_criterion(m, &crit), ctx);
    assert_ok(sj_lmm_loglik(m, &lab[0], &lab[1], &lab[2]), ctx);
    print_message("Penicillin REML: %d Newton iterations\n  criterion %.12g (lme4 %.12g) rel "
                  "%.1e\n",
                  iters, crit, pen_crit, rel(crit, pen_crit));
    assert_close(&crit, &pen_crit, 1, 1e-6, 0);
    assert_close(lab, pen_loglik_aic_bic, 3, 1e-6, 0);
    assert_int_equal(sj_lmm_nfixed(m), 1);
    double est, se, t;
    const char *name;
    assert_ok(sj_lmm_fixed(m, 0, &name, &est, &se, &t), ctx);
    assert_string_equal(name, "(Intercept)");
    print_message("  fixed effect %.1e, SE %.1e\n", rel(est, pen_fixef), rel(se, pen_fixef_se));
    assert_close(&est, &pen_fixef, 1, 1e-4, 0);
    assert_close(&se, &pen_fixef_se, 1, 1e-4, 0);
    assert_int_equal(sj_lmm_nvarcomp(m), 3);
    static const char *const groups[3] = {"plate", "sample", "Residual"};
    double esd = 0;
    for (int i = 0; i < 3; i++) {
        const char *gname, *vname;
        double v, sd;
        assert_ok(sj_lmm_varcomp(m, i, &gname, &vname, &v, &sd), ctx);
        assert_string_equal(gname, groups[i]);
        esd = fmax(esd, rel(sd, pen_sd[i]));
        assert_close(&sd, &pen_sd[i], 1, 1e-4, 0);
    }
    print_message("  standard deviations %.1e\n", esd);
    check_modes(m, ctx, 0, 24, pen_plate_modes, pen_plate_condsd, "plate");
    check_modes(m, ctx, 1, 6, pen_sample_modes, pen_sample_condsd, "sample");
    sj_lmm_free(m);
    fe_design_free(d);
    sj_ctx_free(ctx);
}

static void test_rewrite_log(void **state)
{
    (void)state;
    fe_design *d = penicillin_design();
    /* stderr to a temporary file while the fit compiles */
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), 2) >= 0);
    setenv("SJ_DUMP", "graph", 1);
    unsetenv("SJ_NO_REWRITE");
    sj_ctx *ctx = NULL;
    sj_status st = sj_ctx_create(&ctx);
    sj_lmm *m = NULL;
    if (st == SJ_OK) {
        m = penicillin_model(ctx, d);
        st = sj_lmm_fit(m, 1);
    }
    unsetenv("SJ_DUMP");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_ok(st, ctx);
    long len = ftell(tmp);
    assert_true(len > 0);
    char *text = malloc((size_t)len + 1);
    assert_non_null(text);
    rewind(tmp);
    assert_int_equal(fread(text, 1, (size_t)len, tmp), (size_t)len);
    text[len] = '\0';
    fclose(tmp);
    /* every "# rewrites:" header: the top graph's and the problem's */
    int nlog = 0;
    for (const char *p = text; (p = strstr(p, "# rewrites:")) != NULL; p++) {
        size_t n = strcspn(p, "\n");
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
        print_message("  %s\n", line);
        assert_non_null(strstr(line, "woodbury-logdet"));
        assert_non_null(strstr(line, "woodbury-cholesky-solve"));
        assert_non_null(strstr(line, "woodbury-bilinear"));
        assert_null(strstr(line, "woodbury-blocked"));
        nlog++;
    }
    /* the outer graph, then the problem's objective, gradient and Hessian */
    assert_int_equal(nlog, 4);
    double big = st_largest_value(text);
    print_message("  largest value in the compiled graphs: %.0f elements (n x n = %d)\n", big,
                  NPEN * NPEN);
    assert_true(big < (double)NPEN * NPEN);
    free(text);
    sj_lmm_free(m);
    sj_ctx_free(ctx);
    fe_design_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design),
        cmocka_unit_test(test_fit_against_lme4),
        cmocka_unit_test(test_rewrite_log),
    };
    return cmocka_run_group_tests_name("lmm_crossed", tests, NULL, NULL);
}
