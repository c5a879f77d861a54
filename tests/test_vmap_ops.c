/* Batching rules of every op of ir/ops.def, with the reference evaluator as
 * the oracle: for each case (the table of tests/test_ad_ops.c, checked
 * against ops.def: an op without a case fails test_every_op_has_a_case) and
 * every in_axes combination (each input batched at its first axis, at its
 * last position, or not batched; at least one batched), vmap(f)(xs) equals
 * stacking f(x_b) over the batch items, to 1e-12 relative (1e-12 absolute
 * near zero).  Out axes alternate between first and last.
 *
 * Per case also:
 *   native code   the vmapped function through sj_fn_call for every in_axes
 *                 combination, against the evaluator (1e-12);
 *   closure       vmap(jvp(f)) and vmap(vjp(f)) against stacking jvp(f) and
 *                 vjp(f) per item, for every combination of batched (axis 0)
 *                 and unbatched inputs, tangents and cotangents (batching the
 *                 ops the derivative rules emit, with their transpose flags);
 *                 with every input batched at axis 0, jvp(vmap(f)) = vmap(jvp(f)),
 *                 vjp(vmap(f)) = vmap(vjp(f)) (differentiating the ops the
 *                 batching rules emit), to 1e-12. */
#include "ad_check.h"
#include "fit_case.h"

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
    double rtol, atol;   /* unused here (the derivative tolerances) */
    double rtol2, atol2;
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
U(matmul_tt, sj_matmul(g, sj_mT(g, x[0]), sj_mT(g, x[1])))
U(concat1, sj_concat(g, 2, (sj_value[]){x[0], x[1]}, 1))
U(sum_all, sj_sum_all(g, x[0]))
U(trisolve_ut, sj_triangular_solve(g, x[0], x[1], SJ_SOLVE_UPPER | SJ_SOLVE_TRANSPOSE))
U(gram, sj_matmul(g, sj_mT(g, x[0]), sj_matmul(g, x[0], x[1])))
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
    /* Beyond the derivative table: layouts of the batching rules. */
    {"matmul", "aᵀ bᵀ", 2, {R(2, 3, 2), R(2, 4, 3)}, b_matmul_tt},
    {"matmul", "xᵀ (x b)", 2, {R(2, 4, 3), R(2, 3, 2)}, b_gram},
    {"gather", "of a vector", 2, {R(1, 4), IDX(4, 6)}, b_gather},
    {"segment_sum", "of a vector", 2, {R(1, 6), IDX(2, 6)}, b_segment_sum},
    {"concat", "axis 1", 2, {R(2, 2, 3), R(2, 2, 1)}, b_concat1},
    {"sum", "every axis", 1, {R(2, 2, 3)}, b_sum_all},
    {"solve", "vector right-hand side", 2, {KIND(K_GENERAL, 2, 3, 3), R(1, 3)}, b_solve},
    {"triangular_solve", "upper, left, transposed", 2, {KIND(K_UPPER, 2, 3, 3), R(2, 3, 2)}, b_trisolve_ut},
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

/* ---- stacking ------------------------------------------------------------------------ */

#define NB 3
#define TOL 1e-12

/* items[0..nb-1] (one shape) stacked along a new axis `axis`. */
static val stack(const val *items, int nb, int axis)
{
    int64_t d[SJ_MAX_RANK];
    const val *a = &items[0];
    for (int i = 0, k = 0; i <= a->rank; i++)
        d[i] = i == axis ? nb : a->dim[k++];
    val v = val_new(a->rank + 1, d);
    size_t outer = val_numel(axis, a->dim), inner = a->n / (outer ? outer : 1);
    for (size_t o = 0; o < outer; o++)
        for (int b = 0; b < nb; b++)
            memcpy(v.data + (o * (size_t)nb + (size_t)b) * inner, items[b].data + o * inner,
                   inner * sizeof(double));
    return v;
}

/* Item b of v along axis. */
static val unstack(const val *v, int axis, int b)
{
    int64_t d[SJ_MAX_RANK];
    int nb = (int)v->dim[axis];
    for (int i = 0, k = 0; i < v->rank; i++)
        if (i != axis)
            d[k++] = v->dim[i];
    val r = val_new(v->rank - 1, d);
    size_t outer = val_numel(axis, v->dim), inner = r.n / (outer ? outer : 1);
    for (size_t o = 0; o < outer; o++)
        memcpy(r.data + o * inner, v->data + (o * (size_t)nb + (size_t)b) * inner,
               inner * sizeof(double));
    return r;
}

static sj_fn *build_fn(sj_ctx *ctx, const ad_case *c)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
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
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &y, &f), ctx);
    sj_graph_free(g);
    return f;
}

/* Runs f natively through sj_fn_call; out[k] shaped like like[k]. */
static void native_run(sj_ctx *ctx, sj_fn *f, int nin, const val *in, int nout, const val *like,
                       val *out)
{
    int ranks[16];
    const int64_t *dims[16];
    const double *data[16];
    double *outs[AD_MAX_OUT];
    for (int i = 0; i < nin; i++) {
        ranks[i] = in[i].rank;
        dims[i] = in[i].dim;
        data[i] = in[i].data;
    }
    for (int k = 0; k < nout; k++) {
        out[k] = val_new(like[k].rank, like[k].dim);
        outs[k] = out[k].data;
    }
    assert_ok(sj_fn_call(f, nin, ranks, dims, data, outs), ctx);
}

typedef struct stats {
    int combos, natives;
    double worst;
} stats;

/* vmap(f) with in_axes `axes` (inputs drawn from spec, nb items each where
 * batched) against stacking f per item; out axes first or last. */
static void check_vmap(sj_ctx *ctx, sj_fn *f, int nin, const in_spec *spec, const int *axes,
                       int out_last, uint64_t *rng, int native, stats *st)
{
    val items[8][NB], shared[8], stacked[8], per[NB][AD_MAX_OUT], x[8];
    assert_true(nin <= 8);
    for (int i = 0; i < nin; i++) {
        if (axes[i] >= 0) {
            for (int b = 0; b < NB; b++)
                items[i][b] = make_input(&spec[i], rng);
            stacked[i] = stack(items[i], NB, axes[i]);
        } else {
            shared[i] = make_input(&spec[i], rng);
            stacked[i] = val_copy(&shared[i]);
        }
    }
    int nout = 0;
    for (int b = 0; b < NB; b++) {
        for (int i = 0; i < nin; i++)
            x[i] = axes[i] >= 0 ? items[i][b] : shared[i];
        nout = ad_run(ctx, f, nin, x, per[b]);
    }
    int out_axes[AD_MAX_OUT];
    for (int k = 0; k < nout; k++)
        out_axes[k] = out_last ? per[0][k].rank : 0;
    sj_fn *fv = NULL;
    assert_ok(sj_vmap(f, axes, out_axes, "b", &fv), ctx);
    assert_int_equal(sj_fn_ninput(fv), nin);
    for (int i = 0; i < nin; i++) {
        int r;
        assert_ok(sj_fn_input_rank(fv, i, &r), ctx);
        assert_int_equal(r, spec[i].rank + (axes[i] >= 0));
    }
    val y[AD_MAX_OUT];
    assert_int_equal(ad_run(ctx, fv, nin, stacked, y), nout);
    for (int k = 0; k < nout; k++) {
        assert_int_equal(y[k].rank, per[0][k].rank + 1);
        assert_int_equal(y[k].dim[out_axes[k]], NB);
        for (int b = 0; b < NB; b++) {
            val yb = unstack(&y[k], out_axes[k], b);
            assert_int_equal(yb.n, per[b][k].n);
            assert_close(yb.data, per[b][k].data, yb.n, TOL, TOL);
            double e = ad_relerr(yb.data, per[b][k].data, yb.n);
            st->worst = e > st->worst ? e : st->worst;
            val_free(&yb);
        }
    }
    st->combos++;
    if (native) {
        val z[AD_MAX_OUT];
        native_run(ctx, fv, nin, stacked, nout, y, z);
        for (int k = 0; k < nout; k++)
            assert_close(z[k].data, y[k].data, y[k].n, TOL, TOL);
        ad_free_all(z, nout);
        st->natives++;
    }
    ad_free_all(y, nout);
    for (int b = 0; b < NB; b++)
        ad_free_all(per[b], nout);
    for (int i = 0; i < nin; i++) {
        if (axes[i] >= 0)
            ad_free_all(items[i], NB);
        else
            val_free(&shared[i]);
        val_free(&stacked[i]);
    }
    sj_fn_free(fv);
}

static in_spec real_spec(const val *like)
{
    in_spec s = {.rank = like->rank, .kind = K_REAL, .lo = -1, .hi = 1};
    for (int i = 0; i < like->rank; i++)
        s.dim[i] = like->dim[i];
    return s;
}

/* The outputs of f and g on the same stacked inputs agree (1e-12). */
static void check_same(sj_ctx *ctx, sj_fn *f, sj_fn *g, int nin, const val *in, const char *what)
{
    val a[AD_MAX_OUT], b[AD_MAX_OUT];
    int na = ad_run(ctx, f, nin, in, a), nb = ad_run(ctx, g, nin, in, b);
    assert_int_equal(na, nb);
    for (int k = 0; k < na; k++) {
        assert_int_equal(a[k].n, b[k].n);
        if (ad_excess(a[k].data, b[k].data, a[k].n, TOL, TOL) > 1)
            print_error("%s: output %d differs\n", what, k);
        assert_close(a[k].data, b[k].data, a[k].n, TOL, TOL);
    }
    ad_free_all(a, na);
    ad_free_all(b, nb);
}

/* check_vmap for every in_axes combination: per input -1, 0 or (if `last`)
 * its rank, with at least one batched; out axes alternate first / last. */
static void every_combination(sj_ctx *ctx, sj_fn *f, int nin, const in_spec *spec, int last,
                              int native, uint64_t *rng, stats *st)
{
    int nchoice[8], choice[8][3], total = 1;
    for (int i = 0; i < nin; i++) {
        int r = spec[i].rank;
        nchoice[i] = 0;
        choice[i][nchoice[i]++] = -1;
        choice[i][nchoice[i]++] = 0;
        if (last && r > 0)
            choice[i][nchoice[i]++] = r;
        total *= nchoice[i];
    }
    for (int code = 0; code < total; code++) {
        int axes[8], rest = code, any = 0;
        for (int i = 0; i < nin; i++) {
            axes[i] = choice[i][rest % nchoice[i]];
            rest /= nchoice[i];
            any |= axes[i] >= 0;
        }
        if (any)
            check_vmap(ctx, f, nin, spec, axes, code & 1, rng, native, st);
    }
}

static void check_case(void **state)
{
    const ad_case *c = *state;
    sj_ctx *ctx = NULL;
    assert_ok(sj_ctx_create(&ctx), NULL);
    uint64_t rng = 0x7654321ull + (uint64_t)(c - cases) * 104729u;
    sj_fn *f = build_fn(ctx, c);
    stats st = {0};

    every_combination(ctx, f, c->nin, c->in, 1, 1, &rng, &st);
    int ncombo = st.combos;
    double ncompile = 0;
    assert_ok(sj_ctx_counter(ctx, "compiles", &ncompile), ctx);
    assert_int_equal((int)ncompile, st.natives); /* each combination is compiled */

    /* Closure: batching what the derivative rules emit, and differentiating
     * what the batching rules emit. */
    int d[4], nd = 0;
    for (int i = 0; i < c->nin; i++)
        if (differentiable(&c->in[i]))
            d[nd++] = i;
    val x0[4], y0[1];
    for (int i = 0; i < c->nin; i++)
        x0[i] = make_input(&c->in[i], &rng);
    ad_run(ctx, f, c->nin, x0, y0);
    in_spec js[8], vs[8];
    int zeros[8] = {0};
    for (int i = 0; i < c->nin; i++)
        js[i] = vs[i] = c->in[i];
    for (int j = 0; j < nd; j++)
        js[c->nin + j] = real_spec(&x0[d[j]]);
    vs[c->nin] = real_spec(&y0[0]);
    sj_fn *fj = NULL, *fv = NULL, *vf = NULL, *jvf = NULL, *vjf = NULL, *vvf = NULL, *vfv = NULL;
    assert_ok(sj_jvp(f, nd, d, &fj), ctx);
    assert_ok(sj_vjp(f, nd, d, &fv), ctx);
    every_combination(ctx, fj, c->nin + nd, js, 0, 0, &rng, &st);
    every_combination(ctx, fv, c->nin + 1, vs, 0, 0, &rng, &st);

    assert_ok(sj_vmap(f, zeros, zeros, NULL, &vf), ctx);
    assert_ok(sj_jvp(vf, nd, d, &jvf), ctx);
    assert_ok(sj_vmap(fj, zeros, zeros, NULL, &vjf), ctx);
    assert_ok(sj_vjp(vf, nd, d, &vvf), ctx);
    assert_ok(sj_vmap(fv, zeros, zeros, NULL, &vfv), ctx);
    val in[8], items[NB];
    for (int i = 0; i < c->nin + nd; i++) {
        for (int b = 0; b < NB; b++)
            items[b] = make_input(&js[i], &rng);
        in[i] = stack(items, NB, 0);
        ad_free_all(items, NB);
    }
    check_same(ctx, jvf, vjf, c->nin + nd, in, "jvp(vmap(f)) vs vmap(jvp(f))");
    ad_free_all(in + c->nin, nd);
    for (int b = 0; b < NB; b++)
        items[b] = make_input(&vs[c->nin], &rng);
    in[c->nin] = stack(items, NB, 0);
    ad_free_all(items, NB);
    check_same(ctx, vvf, vfv, c->nin + 1, in, "vjp(vmap(f)) vs vmap(vjp(f))");
    ad_free_all(in, c->nin + 1);

    print_message("%-17s %-26s %2d in_axes combinations (%d native), %3d of jvp/vjp, worst %.1e\n",
                  c->op, c->label ? c->label : "", ncombo, st.natives, st.combos - ncombo, st.worst);
    ad_free_all(x0, c->nin);
    val_free(&y0[0]);
    sj_fn_free(f);
    sj_fn_free(fj);
    sj_fn_free(fv);
    sj_fn_free(vf);
    sj_fn_free(jvf);
    sj_fn_free(vjf);
    sj_fn_free(vvf);
    sj_fn_free(vfv);
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
            print_error("op %s has no batching test case\n", op_names[k]);
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
    return _cmocka_run_group_tests("vmap_ops", tests, NCASE + 1, NULL, NULL);
}
