/* Covariance tree leaves: the value of V for a known θ and dV/dθ (jacfwd
 * and jacrev, evaluator and native code) against hand-written closed forms,
 * for every leaf type. */
#include "cov_check.h"

static sj_value theta_input(sj_graph *g, const char *k)
{
    const char *d[] = {k};
    return sj_input(g, "theta", 1, d);
}

static void test_identity(void **state)
{
    test_graph *f = *state;
    const char *dn[] = {"n"};
    sj_value x = sj_input(f->g, "x", 1, dn); /* binds n */
    (void)x;
    sj_cov *c = sj_cov_identity(f->g, "I", "n");
    assert_non_null(c);
    assert_int_equal(sj_cov_nparam(c), 0);
    const char *r, *cc;
    assert_ok(sj_cov_shape(c, &r, &cc), f->ctx);
    assert_string_equal(r, "n");
    val in = cov_vec(3, NULL);
    double want[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    cov_check(f->ctx, f->g, c, SJ_INVALID, 1, &in, 3, 3, want, NULL, 1e-14);
    val_free(&in);
}

static void test_scalar(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "1");
    sj_cov *c = sj_cov_scalar(f->g, "R", "3", 1.0, sj_transform_exp2());
    assert_non_null(c);
    assert_int_equal(sj_cov_nparam(c), 1);
    assert_string_equal(sj_cov_param_name(c, 0), "R/sigma2");
    double t = 0.3, s2 = exp(2 * t), want[9] = {0}, j[9] = {0};
    for (int i = 0; i < 3; i++) {
        want[4 * i] = s2;
        j[4 * i] = 2 * s2;
    }
    val in = cov_vec(1, &t);
    cov_check(f->ctx, f->g, c, th, 1, &in, 3, 3, want, j, 1e-13);
    val_free(&in);
}

static void test_diagonal(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "3");
    sj_cov *c = sj_cov_diagonal(f->g, "g", 3, 1.0, sj_transform_exp2());
    assert_int_equal(sj_cov_nparam(c), 3);
    assert_string_equal(sj_cov_param_name(c, 0), "g/sigma2_0");
    assert_string_equal(sj_cov_param_name(c, 2), "g/sigma2_2");
    double t[3] = {0.1, -0.4, 1.2}, want[9] = {0}, j[27] = {0};
    for (int i = 0; i < 3; i++) {
        want[4 * i] = exp(2 * t[i]);
        JAC(j, 3, 3, i, i, i) = 2 * exp(2 * t[i]);
    }
    val in = cov_vec(3, t);
    cov_check(f->ctx, f->g, c, th, 1, &in, 3, 3, want, j, 1e-13);
    val_free(&in);
}

static void test_equicorrelation(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "1");
    sj_cov *c = sj_cov_equicorrelation(f->g, "E", 4);
    assert_int_equal(sj_cov_nparam(c), 1);
    assert_string_equal(sj_cov_param_name(c, 0), "E/rho");
    double t = -0.7, lo = -1.0 / 3, s = cov_sigmoid(t), rho = lo + (1 - lo) * s;
    double drho = (1 - lo) * s * (1 - s), want[16], j[16];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            want[4 * a + b] = a == b ? 1 : rho;
            j[4 * a + b] = a == b ? 0 : drho;
        }
    val in = cov_vec(1, &t);
    cov_check(f->ctx, f->g, c, th, 1, &in, 4, 4, want, j, 1e-13);
    /* The default initial ρ is 0. */
    double raw;
    assert_ok(sj_cov_init(c, &raw, 1), f->ctx);
    assert_true(fabs(lo + (1 - lo) * cov_sigmoid(raw)) < 1e-15);
    val_free(&in);
}

static void test_compound_symmetric(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "2");
    sj_cov *c = sj_cov_compound_symmetric(f->g, "cs", 3);
    assert_int_equal(sj_cov_nparam(c), 2);
    assert_string_equal(sj_cov_param_name(c, 0), "cs/sigma2");
    assert_string_equal(sj_cov_param_name(c, 1), "cs/rho");
    double t[2] = {0.4, 0.9}, lo = -0.5, s = cov_sigmoid(t[1]);
    double s2 = exp(2 * t[0]), rho = lo + (1 - lo) * s, drho = (1 - lo) * s * (1 - s);
    double want[9], j[18];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            double m = a == b ? 1 : rho;
            want[3 * a + b] = s2 * m;
            JAC(j, 3, 2, a, b, 0) = 2 * s2 * m;
            JAC(j, 3, 2, a, b, 1) = a == b ? 0 : s2 * drho;
        }
    val in = cov_vec(2, t);
    cov_check(f->ctx, f->g, c, th, 1, &in, 3, 3, want, j, 1e-13);
    val_free(&in);
}

static void ar1_case(test_graph *f, double rho_raw)
{
    sj_value th = theta_input(f->g, "2");
    sj_cov *c = sj_cov_ar1(f->g, "ar", 4);
    assert_int_equal(sj_cov_nparam(c), 2);
    assert_string_equal(sj_cov_param_name(c, 1), "ar/rho");
    double t[2] = {-0.2, rho_raw}, s = cov_sigmoid(t[1]);
    double s2 = exp(2 * t[0]), rho = -1 + 2 * s, drho = 2 * s * (1 - s);
    double want[16], j[32];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            int d = abs(a - b);
            want[4 * a + b] = s2 * pow(rho, d);
            JAC(j, 4, 2, a, b, 0) = 2 * s2 * pow(rho, d);
            JAC(j, 4, 2, a, b, 1) = d == 0 ? 0 : s2 * d * pow(rho, d - 1) * drho;
        }
    val in = cov_vec(2, t);
    cov_check(f->ctx, f->g, c, th, 1, &in, 4, 4, want, j, 1e-12);
    val_free(&in);
}

static void test_ar1_positive(void **state) { ar1_case(*state, 0.8); }
static void test_ar1_negative(void **state) { ar1_case(*state, -1.1); }

/* dV/dθ_p = E Lᵀ + L Eᵀ with E = dL/dθ_p. */
static void test_unstructured(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "6");
    sj_cov *c = sj_cov_unstructured(f->g, "Subject", 3);
    assert_int_equal(sj_cov_nparam(c), 6);
    const char *names[] = {"L_0_0", "L_1_0", "L_1_1", "L_2_0", "L_2_1", "L_2_2"};
    for (int p = 0; p < 6; p++) {
        char full[64];
        snprintf(full, sizeof full, "Subject/%s", names[p]);
        assert_string_equal(sj_cov_param_name(c, p), full);
    }
    double t[6] = {0.3, -0.5, 0.1, 0.7, 0.2, -0.3}, l[3][3] = {{0}}, want[9], j[54];
    int ii[6] = {0, 1, 1, 2, 2, 2}, jj[6] = {0, 0, 1, 0, 1, 2};
    for (int p = 0; p < 6; p++)
        l[ii[p]][jj[p]] = ii[p] == jj[p] ? exp(t[p]) : t[p];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            double s = 0;
            for (int k = 0; k < 3; k++)
                s += l[a][k] * l[b][k];
            want[3 * a + b] = s;
            for (int p = 0; p < 6; p++) {
                double e = ii[p] == jj[p] ? exp(t[p]) : 1; /* E = e at (ii, jj) */
                double d = 0;
                if (a == ii[p])
                    d += e * l[b][jj[p]];
                if (b == ii[p])
                    d += l[a][jj[p]] * e;
                JAC(j, 3, 6, a, b, p) = d;
            }
        }
    val in = cov_vec(6, t);
    cov_check(f->ctx, f->g, c, th, 1, &in, 3, 3, want, j, 1e-13);
    /* Default: L = I, so raw θ = 0 everywhere. */
    double raw[6];
    assert_ok(sj_cov_init(c, raw, 6), f->ctx);
    for (int p = 0; p < 6; p++)
        assert_true(raw[p] == 0);
    val_free(&in);
}

static void test_lower_triangular(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "5");
    sj_cov *c = sj_cov_lower_triangular(f->g, "Lambda", 3, 2);
    assert_int_equal(sj_cov_nparam(c), 5);
    assert_string_equal(sj_cov_param_name(c, 4), "Lambda/L_2_1");
    double t[5] = {1.5, -0.5, 2.0, 0.25, -1.0};
    double want[6] = {1.5, 0, -0.5, 2.0, 0.25, -1.0}, j[30] = {0};
    int pos[5] = {0, 2, 3, 4, 5};
    for (int p = 0; p < 5; p++)
        j[pos[p] * 5 + p] = 1;
    val in = cov_vec(5, t);
    cov_check(f->ctx, f->g, c, th, 1, &in, 3, 2, want, j, 1e-14);
    val_free(&in);
}

static void test_dummy_and_fixed(void **state)
{
    test_graph *f = *state;
    const char *dn[] = {"n"}, *dm[] = {"n", "2"};
    sj_value codes = sj_input(f->g, "codes", 1, dn);
    sj_value m = sj_input(f->g, "M", 2, dm);
    const char *levels[] = {"a", "b", "c"};
    sj_cov *z = sj_cov_dummy(f->g, "Z", codes, "3", levels);
    sj_cov *x = sj_cov_fixed(f->g, "X", m);
    assert_non_null(z);
    assert_non_null(x);
    assert_string_equal(sj_cov_column_name(z, 2), "c");
    assert_null(sj_cov_column_name(z, 3));
    assert_null(sj_cov_column_name(x, 0));
    assert_int_equal(sj_cov_nparam(z), 0);
    double cd[5] = {2, 0, 1, 2, 0}, md[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    int64_t d2[2] = {5, 2};
    val in[2] = {cov_vec(5, cd), val_new(2, d2)};
    memcpy(in[1].data, md, sizeof md);
    double want[15] = {0};
    for (int i = 0; i < 5; i++)
        want[3 * i + (int)cd[i]] = 1;
    cov_check(f->ctx, f->g, z, SJ_INVALID, 2, in, 5, 3, want, NULL, 0);
    cov_check(f->ctx, f->g, x, SJ_INVALID, 2, in, 5, 2, md, NULL, 0);
    ad_free_all(in, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_scalar, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_diagonal, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_equicorrelation, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_compound_symmetric, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_ar1_positive, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_ar1_negative, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_unstructured, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_lower_triangular, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_dummy_and_fixed, test_graph_setup, test_graph_teardown),
    };
    return cmocka_run_group_tests_name("cov_leaves", tests, NULL, NULL);
}
