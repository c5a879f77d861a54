/* Covariance tree operators: sum, block diagonal, propagation, Kronecker,
 * Hadamard and Gram, plus shared subtrees, symbolic sizes, dummy
 * interactions and string factors: V and dV/dθ against closed forms. */
#include "cov_check.h"

static sj_value theta_input(sj_graph *g, const char *k)
{
    const char *d[] = {k};
    return sj_input(g, "theta", 1, d);
}

/* s I + diag(d): names under the operator's name, then the leaves'. */
static void test_sum(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "4");
    sj_cov *kids[2] = {sj_cov_scalar(f->g, "res", "3", 2.0, sj_transform_exp()),
                       sj_cov_diagonal(f->g, "g", 3, 1.0, sj_transform_exp2())};
    sj_cov *c = sj_cov_sum(f->g, "V", 2, kids);
    assert_int_equal(sj_cov_nparam(c), 4);
    assert_string_equal(sj_cov_param_name(c, 0), "V/res/sigma2");
    assert_string_equal(sj_cov_param_name(c, 3), "V/g/sigma2_2");
    int idx = -1;
    assert_ok(sj_cov_param_index(c, "V/g/sigma2_1", &idx), f->ctx);
    assert_int_equal(idx, 2);
    double t[4] = {0.5, 0.1, 0.2, -0.3}, want[9] = {0}, j[36] = {0};
    for (int i = 0; i < 3; i++) {
        want[4 * i] = exp(t[0]) + exp(2 * t[1 + i]);
        JAC(j, 3, 4, i, i, 0) = exp(t[0]);
        JAC(j, 3, 4, i, i, 1 + i) = 2 * exp(2 * t[1 + i]);
    }
    val in = cov_vec(4, t);
    cov_check(f->ctx, f->g, c, th, 1, &in, 3, 3, want, j, 1e-13);
    val_free(&in);
}

/* diag(a I_2, L Lᵀ) with L 2 × 2 unstructured. */
static void test_block_diagonal(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "4");
    sj_cov *kids[2] = {sj_cov_scalar(f->g, "a", "2", 1.0, sj_transform_exp()),
                       sj_cov_unstructured(f->g, "u", 2)};
    sj_cov *c = sj_cov_block_diagonal(f->g, NULL, 2, kids);
    assert_int_equal(sj_cov_nparam(c), 4);
    assert_string_equal(sj_cov_param_name(c, 1), "u/L_0_0");
    double t[4] = {0.3, 0.2, -0.6, 0.4}, want[16] = {0}, j[64] = {0};
    double l00 = exp(t[1]), l10 = t[2], l11 = exp(t[3]);
    want[0] = want[5] = exp(t[0]);
    JAC(j, 4, 4, 0, 0, 0) = JAC(j, 4, 4, 1, 1, 0) = exp(t[0]);
    double u[2][2] = {{l00 * l00, l00 * l10}, {l00 * l10, l10 * l10 + l11 * l11}};
    double du[3][2][2] = {{{2 * l00 * l00, l00 * l10}, {l00 * l10, 0}},
                          {{0, l00}, {l00, 2 * l10}},
                          {{0, 0}, {0, 2 * l11 * l11}}};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            want[4 * (2 + a) + 2 + b] = u[a][b];
            for (int p = 0; p < 3; p++)
                JAC(j, 4, 4, 2 + a, 2 + b, 1 + p) = du[p][a][b];
        }
    val in = cov_vec(4, t);
    cov_check(f->ctx, f->g, c, th, 1, &in, 4, 4, want, j, 1e-13);
    val_free(&in);
}

/* Z diag(g) Zᵀ, Z a user matrix: dV/dθ_k = g_k' z_k z_kᵀ. */
static void test_propagate(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "2");
    const char *dz[] = {"n", "2"};
    sj_value zin = sj_input(f->g, "Z", 2, dz);
    sj_cov *c = sj_cov_propagate(f->g, "p", sj_cov_fixed(f->g, "Z", zin),
                                 sj_cov_diagonal(f->g, "G", 2, 1.0, sj_transform_exp()));
    assert_int_equal(sj_cov_nparam(c), 2);
    assert_string_equal(sj_cov_param_name(c, 0), "p/G/sigma2_0");
    double t[2] = {0.7, -0.2}, z[8] = {1, 0, 1, 2, 0, 3, -1, 1}, want[16], j[32];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            want[4 * a + b] = 0;
            for (int k = 0; k < 2; k++) {
                double g = exp(t[k]);
                want[4 * a + b] += z[2 * a + k] * g * z[2 * b + k];
                JAC(j, 4, 2, a, b, k) = z[2 * a + k] * g * z[2 * b + k];
            }
        }
    int64_t d2[2] = {4, 2};
    val in[2] = {cov_vec(2, t), val_new(2, d2)};
    memcpy(in[1].data, z, sizeof z);
    cov_check(f->ctx, f->g, c, th, 2, in, 4, 4, want, j, 1e-13);
    ad_free_all(in, 2);
}

/* diag(a) ⊗ AR1: d(A ⊗ B) = dA ⊗ B + A ⊗ dB. */
static void test_kron(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "4");
    sj_cov *c = sj_cov_kron(f->g, "k", sj_cov_diagonal(f->g, "A", 2, 1.0, sj_transform_exp()),
                            sj_cov_ar1(f->g, "B", 3));
    assert_int_equal(sj_cov_nparam(c), 4);
    assert_string_equal(sj_cov_param_name(c, 3), "k/B/rho");
    double t[4] = {0.1, 0.4, -0.3, 0.5};
    double a[2] = {exp(t[0]), exp(t[1])}, s2 = exp(2 * t[2]), s = cov_sigmoid(t[3]);
    double rho = 2 * s - 1, drho = 2 * s * (1 - s), want[36] = {0}, j[144] = {0};
    for (int i = 0; i < 2; i++)
        for (int p = 0; p < 3; p++)
            for (int q = 0; q < 3; q++) {
                int r = 3 * i + p, cc = 3 * i + q, d = abs(p - q);
                double b = s2 * pow(rho, d);
                want[6 * r + cc] = a[i] * b;
                JAC(j, 6, 4, r, cc, i) = a[i] * b;
                JAC(j, 6, 4, r, cc, 2) = a[i] * 2 * b;
                JAC(j, 6, 4, r, cc, 3) = d ? a[i] * s2 * d * pow(rho, d - 1) * drho : 0;
            }
    val in = cov_vec(4, t);
    cov_check(f->ctx, f->g, c, th, 1, &in, 6, 6, want, j, 1e-12);
    val_free(&in);
}

/* AR1 ∘ equicorrelation. */
static void test_hadamard(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "3");
    sj_cov *c = sj_cov_hadamard(f->g, "h", sj_cov_ar1(f->g, "A", 3),
                                sj_cov_equicorrelation(f->g, "E", 3));
    assert_int_equal(sj_cov_nparam(c), 3);
    double t[3] = {0.2, 0.3, -0.4}, s2 = exp(2 * t[0]), sa = cov_sigmoid(t[1]);
    double rho = 2 * sa - 1, drho = 2 * sa * (1 - sa), se = cov_sigmoid(t[2]);
    double re = -0.5 + 1.5 * se, dre = 1.5 * se * (1 - se), want[9], j[27];
    for (int p = 0; p < 3; p++)
        for (int q = 0; q < 3; q++) {
            int d = abs(p - q);
            double av = s2 * pow(rho, d), ev = d ? re : 1;
            want[3 * p + q] = av * ev;
            JAC(j, 3, 3, p, q, 0) = 2 * av * ev;
            JAC(j, 3, 3, p, q, 1) = d ? s2 * d * pow(rho, d - 1) * drho * ev : 0;
            JAC(j, 3, 3, p, q, 2) = d ? av * dre : 0;
        }
    val in = cov_vec(3, t);
    cov_check(f->ctx, f->g, c, th, 1, &in, 3, 3, want, j, 1e-12);
    val_free(&in);
}

/* ΛΛᵀ + diag(ψ) (factor analytic) and ΛᵀΛ. */
static void gram_case(test_graph *f, sj_gram which)
{
    sj_value th = theta_input(f->g, which == SJ_GRAM_XXT ? "8" : "5");
    sj_cov *lam = sj_cov_lower_triangular(f->g, "Lambda", 3, 2);
    sj_cov *gr = sj_cov_gram(f->g, "fa", lam, which);
    sj_cov *kids[2] = {gr, sj_cov_diagonal(f->g, "psi", 3, 1.0, sj_transform_exp())};
    sj_cov *c = which == SJ_GRAM_XXT ? sj_cov_sum(f->g, NULL, 2, kids) : gr;
    int k = which == SJ_GRAM_XXT ? 8 : 5, n = which == SJ_GRAM_XXT ? 3 : 2;
    assert_int_equal(sj_cov_nparam(c), k);
    double t[8] = {1.5, -0.5, 2.0, 0.25, -1.0, 0.1, 0.2, 0.3};
    double l[3][2] = {{t[0], 0}, {t[1], t[2]}, {t[3], t[4]}};
    int ii[5] = {0, 1, 1, 2, 2}, jj[5] = {0, 0, 1, 0, 1};
    double want[9] = {0}, j[72] = {0};
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double s = 0;
            if (which == SJ_GRAM_XXT) {
                for (int m = 0; m < 2; m++)
                    s += l[a][m] * l[b][m];
                if (a == b) {
                    s += exp(t[5 + a]);
                    JAC(j, n, k, a, b, 5 + a) = exp(t[5 + a]);
                }
                for (int p = 0; p < 5; p++)
                    JAC(j, n, k, a, b, p) = (a == ii[p] ? l[b][jj[p]] : 0) + (b == ii[p] ? l[a][jj[p]] : 0);
            } else {
                for (int m = 0; m < 3; m++)
                    s += l[m][a] * l[m][b];
                for (int p = 0; p < 5; p++)
                    JAC(j, n, k, a, b, p) = (a == jj[p] ? l[ii[p]][b] : 0) + (b == jj[p] ? l[ii[p]][a] : 0);
            }
            want[n * a + b] = s;
        }
    val in = cov_vec(k, t);
    cov_check(f->ctx, f->g, c, th, 1, &in, n, n, want, j, 1e-13);
    val_free(&in);
}

static void test_gram_xxt(void **state) { gram_case(*state, SJ_GRAM_XXT); }
static void test_gram_xtx(void **state) { gram_case(*state, SJ_GRAM_XTX); }

/* One node used twice shares its parameter: V = S + S. */
static void test_shared_node(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "1");
    sj_cov *s = sj_cov_scalar(f->g, "s", "2", 1.0, sj_transform_exp());
    sj_cov *kids[2] = {s, s};
    sj_cov *c = sj_cov_sum(f->g, "twice", 2, kids);
    assert_int_equal(sj_cov_nparam(c), 1);
    assert_string_equal(sj_cov_param_name(c, 0), "twice/s/sigma2");
    double t = 0.25, e = exp(t), want[4] = {2 * e, 0, 0, 2 * e}, j[4] = {2 * e, 0, 0, 2 * e};
    val in = cov_vec(1, &t);
    cov_check(f->ctx, f->g, c, th, 1, &in, 2, 2, want, j, 1e-13);
    val_free(&in);
}

/* σ² K with a user matrix K, through a 1 × 1 scalar. */
static void test_scaled_fixed(void **state)
{
    test_graph *f = *state;
    sj_value th = theta_input(f->g, "1");
    const char *dk[] = {"n", "n"};
    sj_value k = sj_input(f->g, "K", 2, dk);
    sj_cov *c = sj_cov_kron(f->g, "kin", sj_cov_scalar(f->g, "s", "1", 1.0, sj_transform_exp2()),
                            sj_cov_fixed(f->g, "K", k));
    const char *r, *cc;
    assert_ok(sj_cov_shape(c, &r, &cc), f->ctx);
    assert_string_equal(r, "n");
    double t = -0.1, kd[4] = {1, 0.5, 0.5, 1}, want[4], j[4];
    for (int i = 0; i < 4; i++) {
        want[i] = exp(2 * t) * kd[i];
        j[i] = 2 * want[i];
    }
    int64_t d2[2] = {2, 2};
    val in[2] = {cov_vec(1, &t), val_new(2, d2)};
    memcpy(in[1].data, kd, sizeof kd);
    cov_check(f->ctx, f->g, c, th, 2, in, 2, 2, want, j, 1e-13);
    ad_free_all(in, 2);
}

/* A random-intercept model with symbolic n, from string factor codes:
 * V = Z diag(g) Zᵀ + s I, Z one-hot of the levels sorted as R sorts them. */
static void test_string_factor_symbolic_n(void **state)
{
    test_graph *f = *state;
    const char *batch[6] = {"B", "A", "C", "A", "B", "B"};
    double codes[6];
    int64_t nl = 0;
    const char *const *levels = NULL;
    assert_ok(sj_factor_levels(f->g, batch, 6, codes, &nl, &levels), f->ctx);
    assert_int_equal(nl, 3);
    assert_string_equal(levels[0], "A");
    assert_string_equal(levels[2], "C");
    double want_codes[6] = {1, 0, 2, 0, 1, 1};
    assert_close(codes, want_codes, 6, 0, 0);
    const char *fresh[2] = {"C", "A"};
    double fc[2];
    assert_ok(sj_factor_encode(f->g, nl, levels, fresh, 2, fc), f->ctx);
    assert_true(fc[0] == 2 && fc[1] == 0);
    const char *bad[1] = {"D"};
    assert_error(sj_factor_encode(f->g, nl, levels, bad, 1, fc), SJ_ERR_UNKNOWN_NAME, f->ctx,
                 "\"D\" is not a level");

    sj_value th = theta_input(f->g, "4");
    const char *dn[] = {"n"};
    sj_value cin = sj_input(f->g, "batch", 1, dn);
    sj_cov *z = sj_cov_dummy(f->g, "Batch", cin, "3", levels);
    assert_string_equal(sj_cov_column_name(z, 1), "B");
    sj_cov *kids[2] = {sj_cov_propagate(f->g, NULL, z, sj_cov_diagonal(f->g, "G", 3, 1, sj_transform_exp())),
                       sj_cov_scalar(f->g, "resid", "n", 1, sj_transform_exp())};
    sj_cov *c = sj_cov_sum(f->g, NULL, 2, kids);
    assert_int_equal(sj_cov_nparam(c), 4);
    double t[4] = {0.1, 0.2, 0.3, -0.5}, want[36], j[144];
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            int same = codes[a] == codes[b];
            int lv = (int)codes[a];
            want[6 * a + b] = (same ? exp(t[lv]) : 0) + (a == b ? exp(t[3]) : 0);
            for (int p = 0; p < 3; p++)
                JAC(j, 6, 4, a, b, p) = same && p == lv ? exp(t[p]) : 0;
            JAC(j, 6, 4, a, b, 3) = a == b ? exp(t[3]) : 0;
        }
    val in[2] = {cov_vec(4, t), cov_vec(6, codes)};
    cov_check(f->ctx, f->g, c, th, 2, in, 6, 6, want, j, 1e-13);
    ad_free_all(in, 2);
}

/* a:b has na·nb columns, the first factor varying fastest (R's order). */
static void test_dummy_interaction(void **state)
{
    test_graph *f = *state;
    const char *dn[] = {"n"};
    sj_value ca = sj_input(f->g, "a", 1, dn), cb = sj_input(f->g, "b", 1, dn);
    const char *la[] = {"x", "y"}, *lb[] = {"p", "q", "r"};
    sj_cov *a = sj_cov_dummy(f->g, "A", ca, "2", la), *b = sj_cov_dummy(f->g, "B", cb, "3", lb);
    sj_cov *ab = sj_cov_dummy_interaction(f->g, "A:B", a, b);
    assert_non_null(ab);
    assert_string_equal(sj_cov_column_name(ab, 0), "x:p");
    assert_string_equal(sj_cov_column_name(ab, 1), "y:p");
    assert_string_equal(sj_cov_column_name(ab, 5), "y:r");
    double da[4] = {0, 1, 1, 0}, db[4] = {0, 2, 1, 2}, want[24] = {0};
    for (int i = 0; i < 4; i++)
        want[6 * i + (int)(da[i] + 2 * db[i])] = 1;
    val in[2] = {cov_vec(4, da), cov_vec(4, db)};
    cov_check(f->ctx, f->g, ab, SJ_INVALID, 2, in, 4, 6, want, NULL, 0);
    ad_free_all(in, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sum, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_block_diagonal, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_propagate, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_kron, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_hadamard, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_gram_xxt, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_gram_xtx, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_shared_node, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_scaled_fixed, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_string_factor_symbolic_n, test_graph_setup, test_graph_teardown),
        cmocka_unit_test_setup_teardown(test_dummy_interaction, test_graph_setup, test_graph_teardown),
    };
    return cmocka_run_group_tests_name("cov_operators", tests, NULL, NULL);
}
