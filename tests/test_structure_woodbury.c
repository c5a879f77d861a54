/* The Woodbury / determinant-lemma rewrite (passes/structure_woodbury.c):
 * on random mixed models — one factor, crossed factors with a correlated
 * random slope and a diagonal residual, nested factors with a dense design
 * term — the rewritten graph equals the dense one in value, gradient and
 * Hessian (1e-10 relative); the printed graph names the rewrites; a V
 * without a diagonal part is left alone; with one grouping factor (every
 * piece of Z one-hot on the same codes, G keeping levels apart) M is
 * factorised per level (woodbury-blocked: a random intercept and two slopes
 * with an unstructured Σ ⊗ I, intercept and slope terms sharing the codes
 * with scalar and diagonal ⊗ s·I variances), and not for crossed factors;
 * and sleepstudy's REML criterion,
 * written with one-hot designs, still matches lme4 at its optimum with no
 * n × n value left in the graph. */
#include "test_structure_check.h"

static const char *dn[] = {"n"};

/* y ~ 1 + x + (1 | g), g with 5 levels, REML and the Cholesky path. */
static void test_one_factor_reml(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *d2[] = {"2"}, *dx[] = {"n", "2"};
    sj_value theta = sj_input(g, "theta", 1, d2), y = sj_input(g, "y", 1, dn),
             x = sj_input(g, "X", 2, dx), codes = sj_input(g, "g", 1, dn);
    sj_cov *kids[2] = {sj_cov_propagate(g, NULL, sj_cov_dummy(g, "Z", codes, "5", NULL),
                                        sj_cov_scalar(g, "g", "5", 1.0, sj_transform_exp2())),
                       sj_cov_scalar(g, "residual", "n", 1.0, sj_transform_exp2())};
    sj_cov *root = sj_cov_sum(g, NULL, 2, kids);
    sj_fn *f = st_reml_fn(ctx, g, root, theta, x, y);
    uint64_t rng = 11;
    int64_t n = 40, two = 2, xd[2] = {n, 2};
    val in[4] = {st_random(&rng, 1, &two, -0.5, 0.5), st_random(&rng, 1, &n, -2, 2),
                 st_random(&rng, 2, xd, -1, 1), st_codes(&rng, n, 5)};
    static const char *const fired[] = {"woodbury-blocked", "woodbury-cholesky-solve",
                                        "woodbury-logdet", NULL};
    st_compare(ctx, f, 4, in, 0, fired, 1e-10);
    ad_free_all(in, 4);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* V = Z₁G₁Z₁ᵀ + Z₂G₂Z₂ᵀ + diag(d): Z₁ = [one_hot(a) | one_hot(a)·x] with
 * G₁ = Σ ⊗ I (Σ unstructured 2 × 2, a correlated random slope), Z₂ =
 * one_hot(b) crossed with a, G₂ diagonal; f = log|V| + ⟨V⁻¹B, W⟩ through
 * sj_logdet and sj_solve. */
static void test_crossed_slopes_logdet_solve(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *d6[] = {"6"}, *db[] = {"n", "2"};
    sj_value theta = sj_input(g, "theta", 1, d6), a = sj_input(g, "a", 1, dn),
             b = sj_input(g, "b", 1, dn), x = sj_input(g, "x", 1, dn),
             ld = sj_input(g, "logd", 1, dn), bm = sj_input(g, "B", 2, db),
             w = sj_input(g, "W", 2, db);
    const char *dn1[] = {"n", "1"};
    sj_value za = sj_one_hot(g, a, "4");
    sj_value z1parts[2] = {za, sj_mul(g, za, sj_reshape(g, x, 2, dn1))};
    sj_value z1 = sj_concat(g, 2, z1parts, 1);
    sj_cov *t1 = sj_cov_propagate(g, "s", sj_cov_fixed(g, "Z1", z1),
                                  sj_cov_kron(g, NULL, sj_cov_unstructured(g, "A", 2),
                                              sj_cov_identity(g, "I", "4")));
    sj_cov *t2 = sj_cov_propagate(g, "c", sj_cov_dummy(g, "Z2", b, "3", NULL),
                                  sj_cov_diagonal(g, "B", 3, 1.0, sj_transform_exp2()));
    sj_cov *kids[2] = {t1, t2};
    sj_cov *root = sj_cov_sum(g, NULL, 2, kids);
    assert_int_equal(sj_cov_nparam(root), 6);
    sj_value v;
    assert_ok(sj_cov_build(root, theta, &v), ctx);
    v = sj_add(g, v, sj_diag_embed(g, sj_exp(g, ld)));
    sj_value out = sj_add(g, sj_logdet(g, v), sj_sum_all(g, sj_mul(g, sj_solve(g, v, bm), w)));
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    uint64_t rng = 12;
    int64_t n = 36, six = 6, bd[2] = {n, 2};
    val in[7] = {st_random(&rng, 1, &six, -0.4, 0.4), st_codes(&rng, n, 4), st_codes(&rng, n, 3),
                 st_random(&rng, 1, &n, 0, 3), st_random(&rng, 1, &n, -0.3, 0.3),
                 st_random(&rng, 2, bd, -1, 1), st_random(&rng, 2, bd, -1, 1)};
    static const char *const fired[] = {"woodbury-logdet", "woodbury-solve", NULL};
    st_compare(ctx, f, 7, in, 0, fired, 1e-10);
    ad_free_all(in, 7);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* Nested factors a and a:b stacked in one Z with G = blockdiag(σ²_a I,
 * σ²_ab I), plus a dense design term with an AR(1) G (no factor is known:
 * chol(G)), in the REML criterion. */
static void test_nested_and_dense_reml(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *d5[] = {"5"}, *dx[] = {"n", "2"}, *dz[] = {"n", "4"};
    sj_value theta = sj_input(g, "theta", 1, d5), y = sj_input(g, "y", 1, dn),
             x = sj_input(g, "X", 2, dx), a = sj_input(g, "a", 1, dn),
             b = sj_input(g, "b", 1, dn), zd = sj_input(g, "Zd", 2, dz);
    sj_cov *da = sj_cov_dummy(g, "a", a, "3", NULL), *db = sj_cov_dummy(g, "b", b, "2", NULL);
    sj_cov *dab = sj_cov_dummy_interaction(g, "ab", da, db);
    sj_value zparts[2] = {sj_one_hot(g, a, "3"), SJ_INVALID};
    sj_value ab;
    assert_ok(sj_cov_build(dab, SJ_INVALID, &ab), ctx); /* one_hot(a + 3 b) */
    zparts[1] = ab;
    sj_value z = sj_concat(g, 2, zparts, 1);
    sj_cov *blocks[2] = {sj_cov_scalar(g, "a", "3", 1.0, sj_transform_exp2()),
                         sj_cov_scalar(g, "ab", "6", 1.0, sj_transform_exp2())};
    sj_cov *kids[3] = {
        sj_cov_propagate(g, "nest", sj_cov_fixed(g, "Z", z),
                         sj_cov_block_diagonal(g, NULL, 2, blocks)),
        sj_cov_propagate(g, "dense", sj_cov_fixed(g, "Zd", zd), sj_cov_ar1(g, "ar", 4)),
        sj_cov_scalar(g, "residual", "n", 1.0, sj_transform_exp2())};
    sj_cov *root = sj_cov_sum(g, NULL, 3, kids);
    assert_int_equal(sj_cov_nparam(root), 5);
    sj_fn *f = st_reml_fn(ctx, g, root, theta, x, y);
    uint64_t rng = 13;
    int64_t n = 30, five = 5, xd[2] = {n, 2}, zdd[2] = {n, 4};
    val in[6] = {st_random(&rng, 1, &five, -0.4, 0.4), st_random(&rng, 1, &n, -2, 2),
                 st_random(&rng, 2, xd, -1, 1), st_codes(&rng, n, 3), st_codes(&rng, n, 2),
                 st_random(&rng, 2, zdd, -1, 1)};
    static const char *const fired[] = {"woodbury-cholesky-solve", "woodbury-logdet", NULL};
    st_compare(ctx, f, 6, in, 0, fired, 1e-10);
    ad_free_all(in, 6);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* No diagonal part: V = Z G Zᵀ + AR(1) (dense Z), and Z Zᵀ + A for a
 * general A.  Nothing applies and the graph is left exactly as it was
 * (golden text for the small one). */
static void test_no_match_unchanged(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *d3[] = {"3"}, *dz[] = {"4", "2"};
    sj_value theta = sj_input(g, "theta", 1, d3), z = sj_input(g, "Z", 2, dz);
    sj_cov *kids[2] = {sj_cov_propagate(g, NULL, sj_cov_fixed(g, "Z", z),
                                        sj_cov_scalar(g, "g", "2", 1.0, sj_transform_exp2())),
                       sj_cov_ar1(g, "ar", 4)};
    sj_cov *root = sj_cov_sum(g, NULL, 2, kids);
    sj_value v;
    assert_ok(sj_cov_build(root, theta, &v), ctx);
    sj_value out = sj_logdet(g, v);
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    int64_t three = 3, zd[2] = {4, 2};
    val in[2] = {val_new(1, &three), val_new(2, zd)};
    st_set_rewrites(0);
    char *dense = st_print(ctx, f, 2, in);
    st_set_rewrites(1);
    char *text = st_print(ctx, f, 2, in);
    assert_string_equal(text, dense);
    assert_null(strstr(text, "# rewrites"));
    sj_string_free(dense);
    sj_string_free(text);
    ad_free_all(in, 2);
    sj_fn_free(f);
    sj_graph_free(g);

    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *da[] = {"4", "4"};
    z = sj_input(g, "Z", 2, dz);
    sj_value a = sj_input(g, "A", 2, da);
    out = sj_logdet(g, sj_add(g, sj_matmul(g, z, sj_mT(g, z)), a));
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    val in2[2] = {val_new(2, zd), val_new(2, (int64_t[]){4, 4})};
    text = st_print(ctx, f, 2, in2);
    assert_string_equal(text, "graph(Z: [4, 2], A: [4, 4]) {\n"
                              "  %0 = input \"Z\" : [4, 2]\n"
                              "  %1 = input \"A\" : [4, 4]\n"
                              "  %2 = transpose[perm=1,0] %0 : [2, 4]\n"
                              "  %3 = matmul %0, %2 : [4, 4]\n"
                              "  %4 = add %3, %1 : [4, 4]\n"
                              "  %5 = logdet %4 : []\n"
                              "  return %5\n"
                              "}\n");
    sj_string_free(text);
    ad_free_all(in2, 2);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* ---- one grouping factor: M per level (woodbury-blocked) ------------------------- */

/* Three pieces on one factor a (intercept and two slopes) with G = Σ ⊗ I_5,
 * Σ unstructured 3 × 3, and a diagonal D: log|V| + ⟨V⁻¹B, W⟩ through
 * sj_logdet and sj_solve.  M is factorised per level ([5, 3, 3]). */
static void test_blocked_three_pieces_solve(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *d6[] = {"6"}, *db[] = {"n", "3"}, *dx[] = {"n", "2"};
    sj_value theta = sj_input(g, "theta", 1, d6), a = sj_input(g, "a", 1, dn),
             x = sj_input(g, "x", 2, dx), ld = sj_input(g, "logd", 1, dn),
             bm = sj_input(g, "B", 2, db), w = sj_input(g, "W", 2, db);
    sj_value za = sj_one_hot(g, a, "5");
    sj_value zp[3] = {za, sj_mul(g, za, sj_slice(g, x, 1, 0, 1)),
                      sj_mul(g, za, sj_slice(g, x, 1, 1, 2))};
    sj_cov *t1 = sj_cov_propagate(g, "s", sj_cov_fixed(g, "Z", sj_concat(g, 3, zp, 1)),
                                  sj_cov_kron(g, NULL, sj_cov_unstructured(g, "A", 3),
                                              sj_cov_identity(g, "I", "5")));
    sj_value v;
    assert_ok(sj_cov_build(t1, theta, &v), ctx);
    v = sj_add(g, v, sj_diag_embed(g, sj_exp(g, ld)));
    sj_value out = sj_add(g, sj_logdet(g, v), sj_sum_all(g, sj_mul(g, sj_solve(g, v, bm), w)));
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    uint64_t rng = 21;
    int64_t n = 40, six = 6, bd[2] = {n, 3}, xd[2] = {n, 2};
    val in[6] = {st_random(&rng, 1, &six, -0.4, 0.4), st_codes(&rng, n, 5),
                 st_random(&rng, 2, xd, -1.5, 1.5), st_random(&rng, 1, &n, -0.3, 0.3),
                 st_random(&rng, 2, bd, -1, 1), st_random(&rng, 2, bd, -1, 1)};
    static const char *const fired[] = {"woodbury-blocked", "woodbury-logdet", "woodbury-solve",
                                        NULL};
    st_compare(ctx, f, 6, in, 0, fired, 1e-10);
    ad_free_all(in, 6);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* Two terms on the same codes value, (1 | a) + (0 + x | a) with scalar
 * variances, plus an independent-slopes term on a as diag(σ²_j) ⊗ (s·I)
 * scaled by a variance: Λ per level is diagonal ([6, 4]); REML through the
 * Cholesky path. */
static void test_blocked_shared_codes_reml(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *d6[] = {"6"}, *dx[] = {"n", "3"}, *dn1[] = {"n", "1"};
    sj_value theta = sj_input(g, "theta", 1, d6), y = sj_input(g, "y", 1, dn),
             x = sj_input(g, "X", 2, dx), a = sj_input(g, "a", 1, dn);
    sj_value za = sj_one_hot(g, a, "6");
    sj_value x1 = sj_slice(g, x, 1, 1, 2), x2 = sj_reshape(g, sj_slice(g, x, 1, 2, 3), 2, dn1);
    sj_value zp[2] = {sj_mul(g, za, x1), sj_mul(g, za, x2)};
    sj_cov *kids[4] = {
        sj_cov_propagate(g, "i", sj_cov_fixed(g, "Z0", za),
                         sj_cov_scalar(g, "a", "6", 1.0, sj_transform_exp2())),
        sj_cov_propagate(g, "s", sj_cov_fixed(g, "Z1", zp[0]),
                         sj_cov_scalar(g, "b", "6", 1.0, sj_transform_exp2())),
        sj_cov_propagate(g, "d", sj_cov_fixed(g, "Z2", sj_concat(g, 2, zp, 1)),
                         sj_cov_kron(g, NULL, sj_cov_diagonal(g, "D", 2, 1.0,
                                                             sj_transform_exp2()),
                                     sj_cov_scalar(g, "c", "6", 1.0, sj_transform_exp2()))),
        sj_cov_scalar(g, "residual", "n", 1.0, sj_transform_exp2())};
    sj_cov *root = sj_cov_sum(g, NULL, 4, kids);
    assert_int_equal(sj_cov_nparam(root), 6);
    sj_fn *f = st_reml_fn(ctx, g, root, theta, x, y);
    uint64_t rng = 22;
    int64_t n = 48, six = 6, xd[2] = {n, 3};
    val in[4] = {st_random(&rng, 1, &six, -0.4, 0.4), st_random(&rng, 1, &n, -2, 2),
                 st_random(&rng, 2, xd, -1, 1), st_codes(&rng, n, 6)};
    for (int64_t i = 0; i < n; i++)
        in[2].data[3 * i] = 1; /* an intercept */
    static const char *const fired[] = {"woodbury-blocked", "woodbury-cholesky-solve",
                                        "woodbury-logdet", NULL};
    st_compare(ctx, f, 4, in, 0, fired, 1e-10);
    ad_free_all(in, 4);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* Crossed or nested factors, or a dense piece, keep the dense r × r M. */
static void test_blocked_not_for_crossed(void **state)
{
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_fn *f = st_crossed_reml(ctx, g, "4", "3", "1");
    uint64_t rng = 23;
    int64_t n = 30, three = 3, xd[2] = {n, 1};
    val in[5] = {st_random(&rng, 1, &three, -0.4, 0.4), st_random(&rng, 1, &n, -2, 2),
                 st_random(&rng, 2, xd, 1, 1), st_codes(&rng, n, 4), st_codes(&rng, n, 3)};
    static const char *const fired[] = {"woodbury-cholesky-solve", "woodbury-logdet", NULL};
    st_compare(ctx, f, 5, in, 0, fired, 1e-10);
    char *text = st_print(ctx, f, 5, in);
    assert_null(strstr(text, "woodbury-blocked"));
    sj_string_free(text);
    ad_free_all(in, 5);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

/* ---- sleepstudy, Reaction ~ Days + (Days | Subject), one-hot designs ---------- */

enum { NSLEEP = 180 };

static void read_sleepstudy(double *y, double *days, char (*subject)[16])
{
    const char *dir = getenv("SJ_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/sleepstudy.csv", dir ? dir : "tests/data");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    int n = 0;
    while (n < NSLEEP && fgets(line, sizeof line, f))
        if (sscanf(line, "%lf,%lf,\"%15[^\"]\"", &y[n], &days[n], subject[n]) == 3)
            n++;
    fclose(f);
    assert_int_equal(n, NSLEEP);
}

static void test_sleepstudy_onehot_lme4(void **state)
{
    static double y[NSLEEP], days[NSLEEP];
    static char subject[NSLEEP][16];
    read_sleepstudy(y, days, subject);
    sj_ctx *ctx = NULL;
    sj_graph *g = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    assert_ok(sj_graph_create(ctx, &g), ctx);
    const char *s[NSLEEP];
    for (int i = 0; i < NSLEEP; i++)
        s[i] = subject[i];
    int64_t n = NSLEEP, four = 4, xd[2] = {n, 2};
    val in[4] = {val_new(1, &four), val_new(1, &n), val_new(2, xd), val_new(1, &n)};
    int64_t nl;
    const char *const *levels;
    assert_ok(sj_factor_levels(g, s, NSLEEP, in[3].data, &nl, &levels), ctx);
    assert_int_equal(nl, 18);
    for (int i = 0; i < NSLEEP; i++) {
        in[1].data[i] = y[i];
        in[2].data[2 * i] = 1;
        in[2].data[2 * i + 1] = days[i];
    }
    const char *dx[] = {"n", "2"}, *dn1[] = {"n", "1"};
    sj_value theta = sj_input(g, "theta", 1, (const char *[]){"4"}),
             yv = sj_input(g, "y", 1, dn), x = sj_input(g, "X", 2, dx),
             codes = sj_input(g, "Subject", 1, dn);
    /* Z = [one_hot(Subject) | one_hot(Subject) · Days], G = Σ ⊗ I_18. */
    sj_value z0 = sj_one_hot(g, codes, "18");
    sj_value dayscol = sj_reshape(g, sj_slice(g, x, 1, 1, 2), 2, dn1);
    sj_value zp[2] = {z0, sj_mul(g, z0, dayscol)};
    sj_cov *gk = sj_cov_kron(g, NULL, sj_cov_unstructured(g, "Subject", 2),
                             sj_cov_identity(g, "I", "18"));
    sj_cov *kids[2] = {sj_cov_propagate(g, NULL, sj_cov_fixed(g, "Z", sj_concat(g, 2, zp, 1)), gk),
                       sj_cov_scalar(g, "residual", "n", 1.0, sj_transform_exp2())};
    sj_cov *root = sj_cov_sum(g, NULL, 2, kids);
    sj_value v;
    assert_ok(sj_cov_build(root, theta, &v), ctx);
    sj_value out = sj_reml_criterion(g, v, x, yv);
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    /* lmm_sleepstudy.json: polished theta_lme4, sigma, REMLcrit. */
    const double th[3] = {0.96673279147144553, 0.01516905988036828, 0.23090959808530717};
    const double sigma = 25.591815892624137, remlcrit = 1743.628271958491;
    in[0].data[0] = log(sigma * th[0]);
    in[0].data[1] = sigma * th[1];
    in[0].data[2] = log(sigma * th[2]);
    in[0].data[3] = log(sigma);
    st_set_rewrites(1);
    val o[AD_MAX_OUT];
    assert_int_equal(cov_call(ctx, f, 4, in, o), 1);
    print_message("REML %.15g (lme4 %.15g) rel diff %.2e\n", o[0].data[0], remlcrit,
                  fabs(o[0].data[0] - remlcrit) / remlcrit);
    assert_close(o[0].data, &remlcrit, 1, 1e-6, 0);
    ad_free_all(o, 1);
    char *text = st_print(ctx, f, 4, in);
    assert_true(st_largest_value(text) < (double)(NSLEEP * NSLEEP));
    sj_string_free(text);
    /* Derivatives away from the optimum, where the gradient is not zero. */
    for (int i = 0; i < 4; i++)
        in[0].data[i] += 0.1 * (i + 1);
    static const char *const fired[] = {"woodbury-blocked", "woodbury-cholesky-solve",
                                        "woodbury-logdet", NULL};
    st_compare(ctx, f, 4, in, 0, fired, 1e-10);
    ad_free_all(in, 4);
    sj_fn_free(f);
    sj_graph_free(g);
    sj_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_factor_reml),
        cmocka_unit_test(test_crossed_slopes_logdet_solve),
        cmocka_unit_test(test_nested_and_dense_reml),
        cmocka_unit_test(test_no_match_unchanged),
        cmocka_unit_test(test_blocked_three_pieces_solve),
        cmocka_unit_test(test_blocked_shared_codes_reml),
        cmocka_unit_test(test_blocked_not_for_crossed),
        cmocka_unit_test(test_sleepstudy_onehot_lme4),
    };
    return cmocka_run_group_tests_name("structure_woodbury", tests, NULL, NULL);
}
