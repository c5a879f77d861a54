/* Derivative rules of every op of ir/ops.def, checked the way JAX's
 * check_grads does, with the reference evaluator as the oracle:
 *
 *   first order   jvp against central finite differences along a random
 *                 direction; vjp against central differences of ⟨u, f⟩ per
 *                 input element; the dot-product test ⟨vjp(u), v⟩ = ⟨u, jvp(v)⟩;
 *   second order  for s(x) = ⟨u, f(x)⟩: hvp against central differences of the
 *                 gradient; the Hessian's blocks times v against hvp; Hessian
 *                 symmetry; grad(s) against vjp(u).
 *
 * The case table is checked against ops.def: an op without a case fails
 * test_every_op_has_a_case.  Tolerances (|got - want| <= atol + rtol |want|)
 * are per case; the defaults are rtol 1e-6, atol 1e-8 for first derivatives
 * (central differences with h = 1e-5 err by O(h²) ≈ 1e-10 plus rounding
 * O(ε/h) ≈ 1e-11), rtol 1e-5, atol 1e-7 for second ones, and 1e-10 relative
 * for identities that hold exactly in exact arithmetic (dot product, H v vs
 * hvp, symmetry). */
#include "ad_check.h"
#include "fit_case.h"

/* Cases leave tolerances they do not set at zero (the defaults). */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

enum { K_REAL, K_NONZERO, K_INDEX, K_SPD, K_LOWER, K_UPPER, K_GENERAL, K_BINARY };

typedef struct in_spec {
    int rank;
    int64_t dim[4];
    int kind;
    double lo, hi; /* K_REAL / K_NONZERO range; K_INDEX: number of codes in hi */
} in_spec;

typedef sj_value case_builder(sj_graph *g, const sj_value *x);

typedef struct ad_case {
    const char *op; /* the op under test, as named in ops.def */
    const char *label;
    int nin;
    in_spec in[4];
    case_builder *build;
    double rtol, atol;   /* first order; 0 = default */
    double rtol2, atol2; /* second order; 0 = default */
} ad_case;

/* ---- builders --------------------------------------------------------------- */

static sj_value sym(sj_graph *g, sj_value a)
{
    return sj_mul(g, sj_scalar(g, 0.5), sj_add(g, a, sj_mT(g, a)));
}

#define U(name, expr)                                                                   \
    static sj_value b_##name(sj_graph *g, const sj_value *x) { return expr; }

U(input, x[0])
U(const, sj_mul(g, x[0], sj_constant(g, 1, (int64_t[]){3}, (double[]){1.5, -2.0, 0.25})))
U(eye, sj_matmul(g, sj_add(g, x[0], sj_eye(g, "3")), x[0]))
U(neg, sj_neg(g, x[0]))
U(exp, sj_exp(g, x[0]))
U(log, sj_log(g, x[0]))
U(log1p, sj_log1p(g, x[0]))
U(expm1, sj_expm1(g, x[0]))
U(sqrt, sj_sqrt(g, x[0]))
U(square, sj_square(g, x[0]))
U(recip, sj_recip(g, x[0]))
U(tanh, sj_tanh(g, x[0]))
U(logistic, sj_logistic(g, x[0]))
U(lgamma, sj_lgamma(g, x[0]))
U(digamma, sj_digamma(g, x[0]))
U(polygamma1, sj_polygamma(g, 1, x[0]))
U(polygamma2, sj_polygamma(g, 2, x[0]))
U(abs, sj_abs(g, x[0]))
U(sign, sj_mul(g, sj_sign(g, x[0]), sj_square(g, x[0])))
U(ndtr, sj_ndtr(g, x[0]))
U(ndtri, sj_ndtri(g, x[0]))
U(atan, sj_atan(g, x[0]))
U(tan, sj_tan(g, x[0]))
U(add, sj_add(g, x[0], x[1]))
U(sub, sj_sub(g, x[0], x[1]))
U(mul, sj_mul(g, x[0], x[1]))
U(div, sj_div(g, x[0], x[1]))
U(pow, sj_pow(g, x[0], x[1]))
U(min, sj_min(g, x[0], x[1]))
U(max, sj_max(g, x[0], x[1]))
U(cmp, sj_add(g, sj_mul(g, sj_compare(g, SJ_LT, x[0], x[1]), x[0]), x[1]))
U(select, sj_select(g, x[0], sj_mul(g, x[1], x[2]), x[2]))
U(broadcast, sj_broadcast_to(g, x[0], 2, (const char *[]){"2", "3"}))
U(broadcast1, sj_broadcast_to(g, x[0], 3, (const char *[]){"2", "3", "4"}))
U(reshape, sj_reshape(g, x[0], 2, (const char *[]){"3", "2"}))
U(transpose, sj_transpose(g, x[0], (int[]){2, 0, 1}))
U(slice, sj_slice(g, x[0], 0, 1, 3))
U(slice_neg, sj_slice(g, x[0], 1, -2, INT64_MAX))
U(concat, sj_concat(g, 3, (sj_value[]){x[0], x[1], x[2]}, 0))
U(gather, sj_gather(g, x[0], x[1]))
U(segment_sum, sj_segment_sum(g, x[0], x[1], "3"))
U(one_hot, sj_matmul(g, sj_one_hot(g, x[0], "3"), x[1]))
U(sum, sj_sum(g, x[0], 2, (int[]){0, 2}))
U(reduce_max, sj_reduce_max(g, x[0], 1, (int[]){1}))
U(mean, sj_mean(g, x[0], 1, (int[]){0}))
U(matmul, sj_matmul(g, x[0], x[1]))
U(matvec, sj_matmul(g, x[0], x[1]))
U(outer, sj_outer(g, x[0], x[1]))
U(kron, sj_kron(g, x[0], x[1]))
U(diag, sj_diag(g, x[0]))
U(diag_embed, sj_diag_embed(g, x[0]))
U(tril, sj_tril(g, x[0], 0))
U(tril_m1, sj_tril(g, x[0], -1))
U(triu, sj_triu(g, x[0], 1))
U(cholesky, sj_cholesky(g, sym(g, x[0])))
U(trisolve, sj_triangular_solve(g, x[0], x[1], 0))
U(trisolve_t, sj_triangular_solve(g, x[0], x[1], SJ_SOLVE_TRANSPOSE))
U(trisolve_r, sj_triangular_solve(g, x[0], x[1], SJ_SOLVE_RIGHT))
U(trisolve_u, sj_triangular_solve(g, x[0], x[1], SJ_SOLVE_UPPER))
U(trisolve_urt, sj_triangular_solve(g, x[0], x[1], SJ_SOLVE_UPPER | SJ_SOLVE_RIGHT | SJ_SOLVE_TRANSPOSE))
U(chosolve, sj_cholesky_solve(g, x[0], x[1]))
U(logdet, sj_logdet(g, sym(g, x[0])))
U(eigvalsh, sj_eigvalsh(g, sym(g, x[0])))
U(eigvecsh, sj_eigvecsh(g, sym(g, x[0])))
U(solve, sj_solve(g, x[0], x[1]))
U(fit, fit_case(g, x))
#undef U

#define R(r, ...) {r, {__VA_ARGS__}, K_REAL, -1.0, 1.0}
#define RR(lo, hi, r, ...) {r, {__VA_ARGS__}, K_REAL, lo, hi}
#define NZ(r, ...) {r, {__VA_ARGS__}, K_NONZERO, 0.2, 2.0}
#define IDX(k, n) {1, {n}, K_INDEX, 0, k}
#define KIND(kind, r, ...) {r, {__VA_ARGS__}, kind, 0, 0}

static const ad_case cases[] = {
    {"input", "identity", 1, {R(1, 3)}, b_input},
    {"const", "times a constant", 1, {R(1, 3)}, b_const},
    {"eye", "(x + I) x", 1, {R(2, 3, 3)}, b_eye},
    {"neg", NULL, 1, {R(2, 2, 3)}, b_neg},
    {"exp", NULL, 1, {R(2, 2, 3)}, b_exp},
    {"log", NULL, 1, {RR(0.5, 2.0, 1, 4)}, b_log},
    {"log1p", NULL, 1, {RR(-0.5, 2.0, 1, 4)}, b_log1p},
    {"expm1", NULL, 1, {R(1, 4)}, b_expm1},
    {"sqrt", NULL, 1, {RR(0.5, 2.0, 1, 4)}, b_sqrt},
    {"square", NULL, 1, {R(1, 4)}, b_square},
    {"recip", NULL, 1, {RR(0.5, 2.0, 1, 4)}, b_recip},
    {"tanh", NULL, 1, {R(1, 4)}, b_tanh},
    {"logistic", NULL, 1, {RR(-3, 3, 1, 4)}, b_logistic},
    {"lgamma", NULL, 1, {RR(0.5, 4.0, 1, 4)}, b_lgamma},
    {"digamma", NULL, 1, {RR(0.5, 4.0, 1, 4)}, b_digamma},
    {"polygamma", "order 1", 1, {RR(0.5, 4.0, 1, 4)}, b_polygamma1},
    {"polygamma", "order 2", 1, {RR(0.5, 4.0, 1, 4)}, b_polygamma2, 0, 0, 1e-5, 1e-6},
    {"abs", "away from 0", 1, {NZ(1, 5)}, b_abs},
    {"sign", "sign(x) x²", 1, {NZ(1, 5)}, b_sign},
    {"ndtr", NULL, 1, {RR(-3.0, 3.0, 1, 4)}, b_ndtr},
    {"ndtri", NULL, 1, {RR(0.05, 0.95, 1, 4)}, b_ndtri},
    {"atan", NULL, 1, {RR(-3.0, 3.0, 1, 4)}, b_atan},
    {"tan", NULL, 1, {RR(-1.2, 1.2, 1, 4)}, b_tan},
    {"add", NULL, 2, {R(2, 2, 3), R(2, 2, 3)}, b_add},
    {"add", "broadcast operand", 2, {R(2, 2, 3), R(1, 3)}, b_add},
    {"sub", NULL, 2, {R(1, 4), R(1, 4)}, b_sub},
    {"mul", NULL, 2, {R(1, 4), R(1, 4)}, b_mul},
    {"div", NULL, 2, {R(1, 4), RR(0.5, 2.0, 1, 4)}, b_div},
    {"pow", NULL, 2, {RR(0.5, 2.0, 1, 4), RR(-1.5, 1.5, 1, 4)}, b_pow},
    {"min", NULL, 2, {R(1, 6), R(1, 6)}, b_min},
    {"max", NULL, 2, {R(1, 6), R(1, 6)}, b_max},
    {"cmp", "[a < b] a + b", 2, {R(1, 6), R(1, 6)}, b_cmp},
    {"select", "where(p, a b, b)", 3, {KIND(K_BINARY, 1, 6), R(1, 6), R(1, 6)}, b_select},
    {"broadcast", "new axis", 1, {R(1, 3)}, b_broadcast},
    {"broadcast", "stretched unit axis", 1, {R(2, 3, 1)}, b_broadcast1},
    {"reshape", NULL, 1, {R(2, 2, 3)}, b_reshape},
    {"transpose", NULL, 1, {R(3, 2, 3, 4)}, b_transpose},
    {"slice", NULL, 1, {R(2, 4, 3)}, b_slice},
    {"slice", "negative start", 1, {R(2, 4, 3)}, b_slice_neg},
    {"concat", NULL, 3, {R(2, 2, 3), R(2, 1, 3), R(2, 2, 3)}, b_concat},
    {"gather", NULL, 2, {R(2, 3, 2), IDX(3, 5)}, b_gather},
    {"segment_sum", NULL, 2, {R(2, 5, 2), IDX(3, 5)}, b_segment_sum},
    {"one_hot", "one_hot(idx) x", 2, {IDX(3, 5), R(2, 3, 2)}, b_one_hot},
    {"sum", NULL, 1, {R(3, 2, 3, 4)}, b_sum},
    {"reduce_max", NULL, 1, {R(2, 3, 4)}, b_reduce_max},
    {"mean", NULL, 1, {R(2, 2, 3)}, b_mean},
    {"matmul", NULL, 2, {R(2, 2, 3), R(2, 3, 4)}, b_matmul},
    {"matmul", "batched", 2, {R(3, 2, 2, 3), R(3, 2, 3, 2)}, b_matmul},
    {"matmul", "matrix-vector", 2, {R(2, 2, 3), R(1, 3)}, b_matvec},
    {"outer", NULL, 2, {R(1, 3), R(1, 2)}, b_outer},
    {"kron", NULL, 2, {R(2, 2, 2), R(2, 2, 3)}, b_kron},
    {"diag", NULL, 1, {R(2, 3, 3)}, b_diag},
    {"diag_embed", NULL, 1, {R(1, 3)}, b_diag_embed},
    {"tril", NULL, 1, {R(2, 3, 3)}, b_tril},
    {"tril", "k = -1", 1, {R(2, 3, 4)}, b_tril_m1},
    {"triu", "k = 1", 1, {R(2, 3, 3)}, b_triu},
    {"cholesky", "of (A + Aᵀ)/2", 1, {KIND(K_SPD, 2, 3, 3)}, b_cholesky},
    {"cholesky", "batched", 1, {KIND(K_SPD, 3, 2, 3, 3)}, b_cholesky},
    {"triangular_solve", "lower, left", 2, {KIND(K_LOWER, 2, 3, 3), R(2, 3, 2)}, b_trisolve},
    {"triangular_solve", "lower, left, transposed", 2, {KIND(K_LOWER, 2, 3, 3), R(2, 3, 2)}, b_trisolve_t},
    {"triangular_solve", "lower, right", 2, {KIND(K_LOWER, 2, 3, 3), R(2, 2, 3)}, b_trisolve_r},
    {"triangular_solve", "upper, left", 2, {KIND(K_UPPER, 2, 3, 3), R(2, 3, 2)}, b_trisolve_u},
    {"triangular_solve", "upper, right, transposed", 2, {KIND(K_UPPER, 2, 3, 3), R(2, 2, 3)}, b_trisolve_urt},
    {"cholesky_solve", NULL, 2, {KIND(K_LOWER, 2, 3, 3), R(2, 3, 2)}, b_chosolve},
    {"cholesky_solve", "vector right-hand side", 2, {KIND(K_LOWER, 2, 3, 3), R(1, 3)}, b_chosolve},
    {"logdet", "of (A + Aᵀ)/2", 1, {KIND(K_SPD, 2, 3, 3)}, b_logdet},
    {"logdet", "batched", 1, {KIND(K_SPD, 3, 2, 3, 3)}, b_logdet},
    {"eigvalsh", "of (A + Aᵀ)/2", 1, {KIND(K_SPD, 2, 3, 3)}, b_eigvalsh},
    {"eigvalsh", "batched", 1, {KIND(K_SPD, 3, 2, 3, 3)}, b_eigvalsh},
    {"eigvecsh", "of (A + Aᵀ)/2", 1, {KIND(K_SPD, 2, 3, 3)}, b_eigvecsh},
    {"eigvecsh", "batched", 1, {KIND(K_SPD, 3, 2, 3, 3)}, b_eigvecsh},
    {"solve", NULL, 2, {KIND(K_GENERAL, 2, 3, 3), R(2, 3, 2)}, b_solve},
    {"fit", "argmin Σ w exp θ − aθ + θ²/2", 2, {R(1, 3), RR(0.5, 2.0, 1, 3)}, b_fit},
};
#define NCASE ((int)(sizeof cases / sizeof cases[0]))

static const char *const op_names[] = {
#define OP(id, name, kind, arity, shape) #name,
#include "ir/ops.def"
};

/* ---- data ---------------------------------------------------------------------- */

static val make_input(const in_spec *s, uint64_t *rng)
{
    val v = val_new(s->rank, s->dim);
    int64_t n = s->rank >= 2 ? s->dim[s->rank - 1] : 0;
    size_t nn = (size_t)(n * n);
    for (size_t i = 0; i < v.n; i++) {
        double u = test_uniform(rng, 0, 1);
        switch (s->kind) {
        case K_REAL: v.data[i] = s->lo + (s->hi - s->lo) * u; break;
        case K_NONZERO: v.data[i] = (u < 0.5 ? -1 : 1) * test_uniform(rng, s->lo, s->hi); break;
        case K_INDEX: v.data[i] = floor(u * s->hi); break;
        case K_BINARY: v.data[i] = u < 0.5 ? 0.0 : 1.0; break;
        default: v.data[i] = test_uniform(rng, -0.5, 0.5); break;
        }
    }
    if (s->kind == K_SPD) { /* M Mᵀ + n I per batch item */
        for (size_t b = 0; b < v.n / nn; b++) {
            double m[16], *a = v.data + b * nn;
            memcpy(m, a, nn * sizeof *m);
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) {
                    double t = i == j ? (double)n * 0.5 : 0;
                    for (int64_t k = 0; k < n; k++)
                        t += m[i * n + k] * m[j * n + k];
                    a[i * n + j] = t;
                }
        }
    } else if (s->kind == K_LOWER || s->kind == K_UPPER || s->kind == K_GENERAL) {
        for (size_t b = 0; b < v.n / nn; b++)
            for (int64_t i = 0; i < n; i++) {
                double *a = v.data + b * nn + i * n;
                a[i] = 1.0 + test_uniform(rng, 0, 1);
                for (int64_t j = 0; j < n; j++)
                    if ((s->kind == K_LOWER && j > i) || (s->kind == K_UPPER && j < i))
                        a[j] = 0;
            }
    }
    return v;
}

static int differentiable(const in_spec *s) { return s->kind != K_INDEX && s->kind != K_BINARY; }

/* ---- the checks ---------------------------------------------------------------- */


#define H_FD 1e-5

/* f (or its derived functions) at the case's inputs. */
typedef struct setup {
    const ad_case *c;
    sj_ctx *ctx;
    int nin, nd, d[4];
    val x[4];
} setup;

static sj_fn *build_fn(setup *s, const val *u)
{
    const ad_case *c = s->c;
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(s->ctx, &g), s->ctx);
    sj_value xs[4];
    for (int i = 0; i < c->nin; i++) {
        char buf[4][24], name[16];
        const char *dims[4];
        for (int k = 0; k < c->in[i].rank; k++) {
            snprintf(buf[k], sizeof buf[k], "%lld", (long long)c->in[i].dim[k]);
            dims[k] = buf[k];
        }
        snprintf(name, sizeof name, "x%d", i);
        xs[i] = sj_input(g, name, c->in[i].rank, dims);
    }
    sj_value y = c->build(g, xs);
    if (u) /* s(x) = ⟨u, f(x)⟩ */
        y = sj_sum_all(g, sj_mul(g, y, sj_constant(g, u->rank, u->dim, u->data)));
    assert_ok(sj_graph_status(g), s->ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &y, &f), s->ctx);
    sj_graph_free(g);
    return f;
}

/* x + t·v over the differentiable inputs. */
static void shifted(const setup *s, const val *v, double t, val *out)
{
    for (int i = 0; i < s->nin; i++)
        out[i] = val_copy(&s->x[i]);
    for (int j = 0; j < s->nd; j++)
        for (size_t e = 0; e < v[j].n; e++)
            out[s->d[j]].data[e] += t * v[j].data[e];
}

/* Central difference of output k of f along v (all outputs if k < 0 ... one). */
static void fd_dir(setup *s, sj_fn *f, const val *v, int nextra, const val *extra, val *out)
{
    val xp[8], xm[8], yp[AD_MAX_OUT], ym[AD_MAX_OUT];
    shifted(s, v, H_FD, xp);
    shifted(s, v, -H_FD, xm);
    for (int i = 0; i < nextra; i++) {
        xp[s->nin + i] = val_copy(&extra[i]);
        xm[s->nin + i] = val_copy(&extra[i]);
    }
    int n = ad_run(s->ctx, f, s->nin + nextra, xp, yp);
    ad_run(s->ctx, f, s->nin + nextra, xm, ym);
    for (int k = 0; k < n; k++) {
        out[k] = val_copy(&yp[k]);
        for (size_t e = 0; e < out[k].n; e++)
            out[k].data[e] = (yp[k].data[e] - ym[k].data[e]) / (2 * H_FD);
    }
    ad_free_all(xp, s->nin + nextra);
    ad_free_all(xm, s->nin + nextra);
    ad_free_all(yp, n);
    ad_free_all(ym, n);
}

static void report(const char *what, const ad_case *c, const double *got, const double *want,
                   size_t n, double rtol, double atol)
{
    double ex = ad_excess(got, want, n, rtol, atol);
    if (ex > 1) {
        print_error("%s of %s (%s): worst error is %.3g times the tolerance (rtol %g, atol %g)\n",
                    what, c->op, c->label ? c->label : "", ex, rtol, atol);
        assert_close(got, want, n, rtol, atol);
    }
}

static void check_case(void **state)
{
    const ad_case *c = *state;
    setup s = {.c = c, .nin = c->nin};
    assert_ok(sj_ctx_create(&s.ctx), NULL);
    sj_ctx *ctx = s.ctx;
    uint64_t rng = 0x1234567ull + (uint64_t)(c - cases) * 7919u;
    for (int i = 0; i < c->nin; i++) {
        s.x[i] = make_input(&c->in[i], &rng);
        if (differentiable(&c->in[i]))
            s.d[s.nd++] = i;
    }
    double rtol = c->rtol ? c->rtol : 1e-6, atol = c->atol ? c->atol : 1e-8;
    double rtol2 = c->rtol2 ? c->rtol2 : 1e-5, atol2 = c->atol2 ? c->atol2 : 1e-7;
    double err_jvp = 0, err_vjp = 0, err_hvp = 0;

    sj_fn *f = build_fn(&s, NULL);
    val y[1];
    ad_run(ctx, f, s.nin, s.x, y);
    val v[4], u = val_new(y[0].rank, y[0].dim);
    for (int j = 0; j < s.nd; j++) {
        const val *xd = &s.x[s.d[j]];
        v[j] = val_new(xd->rank, xd->dim);
        for (size_t e = 0; e < v[j].n; e++)
            v[j].data[e] = test_uniform(&rng, -1, 1);
    }
    for (size_t e = 0; e < u.n; e++)
        u.data[e] = test_uniform(&rng, -1, 1);

    /* jvp against central differences along v. */
    sj_fn *fj = NULL;
    assert_ok(sj_jvp(f, s.nd, s.d, &fj), ctx);
    assert_int_equal(sj_fn_ninput(fj), s.nin + s.nd);
    assert_int_equal(sj_fn_noutput(fj), 2);
    val jin[8], jout[2], fd[1];
    for (int i = 0; i < s.nin; i++)
        jin[i] = s.x[i];
    for (int j = 0; j < s.nd; j++)
        jin[s.nin + j] = v[j];
    ad_run(ctx, fj, s.nin + s.nd, jin, jout);
    assert_close(jout[0].data, y[0].data, y[0].n, 1e-14, 1e-14);
    fd_dir(&s, f, v, 0, NULL, fd);
    report("jvp", c, jout[1].data, fd[0].data, fd[0].n, rtol, atol);
    err_jvp = ad_relerr(jout[1].data, fd[0].data, fd[0].n);
    val_free(&fd[0]);

    /* vjp against central differences of ⟨u, f⟩, element by element. */
    sj_fn *fv = NULL;
    assert_ok(sj_vjp(f, s.nd, s.d, &fv), ctx);
    assert_int_equal(sj_fn_ninput(fv), s.nin + 1);
    assert_int_equal(sj_fn_noutput(fv), s.nd);
    val vin[8], vout[4];
    for (int i = 0; i < s.nin; i++)
        vin[i] = s.x[i];
    vin[s.nin] = u;
    ad_run(ctx, fv, s.nin + 1, vin, vout);
    for (int j = 0; j < s.nd; j++) {
        val want = val_new(vout[j].rank, vout[j].dim);
        for (size_t e = 0; e < want.n; e++) {
            val dir[4];
            for (int k = 0; k < s.nd; k++)
                dir[k] = val_new(v[k].rank, v[k].dim);
            dir[j].data[e] = 1;
            fd_dir(&s, f, dir, 0, NULL, fd);
            want.data[e] = val_dot(&u, &fd[0]);
            val_free(&fd[0]);
            ad_free_all(dir, s.nd);
        }
        report("vjp", c, vout[j].data, want.data, want.n, rtol, atol);
        double e = ad_relerr(vout[j].data, want.data, want.n);
        err_vjp = e > err_vjp ? e : err_vjp;
        val_free(&want);
    }

    /* The dot-product test: ⟨vjp(u), v⟩ = ⟨u, jvp(v)⟩. */
    double lhs = 0, rhs = val_dot(&u, &jout[1]);
    for (int j = 0; j < s.nd; j++)
        lhs += val_dot(&vout[j], &v[j]);
    assert_close(&lhs, &rhs, 1, 1e-10, 1e-12);

    /* Second order on s(x) = ⟨u, f(x)⟩. */
    sj_fn *fs = build_fn(&s, &u), *fg = NULL, *fh = NULL, *fH = NULL;
    assert_ok(sj_grad(fs, 0, s.nd, s.d, &fg), ctx);
    assert_ok(sj_hvp(fs, 0, s.nd, s.d, &fh), ctx);
    assert_ok(sj_hessian(fs, 0, s.nd, s.d, &fH), ctx);
    val gout[4], hout[4], Hout[16], fdg[4];
    ad_run(ctx, fg, s.nin, s.x, gout);
    for (int j = 0; j < s.nd; j++) /* grad(⟨u, f⟩) = vjp(u) */
        assert_close(gout[j].data, vout[j].data, gout[j].n, 1e-12, 1e-13);
    ad_run(ctx, fh, s.nin + s.nd, jin, hout);
    fd_dir(&s, fg, v, 0, NULL, fdg);
    for (int j = 0; j < s.nd; j++) {
        report("hvp", c, hout[j].data, fdg[j].data, fdg[j].n, rtol2, atol2);
        double e = ad_relerr(hout[j].data, fdg[j].data, fdg[j].n);
        err_hvp = e > err_hvp ? e : err_hvp;
    }
    ad_run(ctx, fH, s.nin, s.x, Hout);
    for (int a = 0; a < s.nd; a++) {
        size_t na = v[a].n;
        val hv = val_new(v[a].rank, v[a].dim);
        for (int b = 0; b < s.nd; b++) {
            const val *hab = &Hout[a * s.nd + b], *hba = &Hout[b * s.nd + a];
            size_t nb = v[b].n;
            assert_int_equal(hab->n, na * nb);
            assert_int_equal(hab->rank, v[a].rank + v[b].rank);
            for (size_t i = 0; i < na; i++)
                for (size_t k = 0; k < nb; k++) {
                    hv.data[i] += hab->data[i * nb + k] * v[b].data[k];
                    assert_close(&hab->data[i * nb + k], &hba->data[k * na + i], 1, 1e-10, 1e-12);
                }
        }
        assert_close(hv.data, hout[a].data, na, 1e-10, 1e-12);
        val_free(&hv);
    }
    print_message("%-17s %-26s jvp %.1e  vjp %.1e  hvp %.1e\n", c->op, c->label ? c->label : "",
                  err_jvp, err_vjp, err_hvp);

    ad_free_all(gout, s.nd);
    ad_free_all(hout, s.nd);
    ad_free_all(fdg, s.nd);
    ad_free_all(Hout, s.nd * s.nd);
    ad_free_all(vout, s.nd);
    ad_free_all(jout, 2);
    ad_free_all(v, s.nd);
    ad_free_all(s.x, s.nin);
    val_free(&u);
    val_free(&y[0]);
    sj_fn_free(f);
    sj_fn_free(fj);
    sj_fn_free(fv);
    sj_fn_free(fs);
    sj_fn_free(fg);
    sj_fn_free(fh);
    sj_fn_free(fH);
    sj_ctx_free(ctx);
}

/* Every op of ops.def has at least one case. */
static void test_every_op_has_a_case(void **state)
{
    int missing = 0;
    for (size_t k = 0; k < sizeof op_names / sizeof op_names[0]; k++) {
        int found = 0;
        for (int i = 0; i < NCASE && !found; i++)
            found = strcmp(cases[i].op, op_names[k]) == 0;
        if (!found) {
            print_error("op %s has no derivative test case\n", op_names[k]);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
}

int main(void)
{
    struct CMUnitTest tests[NCASE + 1];
    static char names[NCASE][96];
    tests[0] = (struct CMUnitTest)cmocka_unit_test(test_every_op_has_a_case);
    for (int i = 0; i < NCASE; i++) {
        snprintf(names[i], sizeof names[i], "%s%s%s", cases[i].op, cases[i].label ? ": " : "",
                 cases[i].label ? cases[i].label : "");
        tests[i + 1] = (struct CMUnitTest){names[i], check_case, NULL, NULL, (void *)&cases[i]};
    }
    return _cmocka_run_group_tests("ad_ops", tests, NCASE + 1, NULL, NULL);
}
