/* The per-op cases shared by tests/test_ad_ops.c (derivative rules) and
 * tests/test_vmap_ops.c (batching rules): input specifications, one small
 * builder per case, the case list OP_CASES (every op of ir/ops.def has at
 * least one; both tests check it), the op names and the input generator.
 * Header-only so that each test program stays one file. */
#ifndef SJ_OP_CASES_H
#define SJ_OP_CASES_H

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
    double rtol, atol;   /* derivative tests, first order; 0 = default */
    double rtol2, atol2; /* second order; 0 = default */
} ad_case;

/* ---- builders --------------------------------------------------------------- */

static inline sj_value sym(sj_graph *g, sj_value a)
{
    return sj_mul(g, sj_scalar(g, 0.5), sj_add(g, a, sj_mT(g, a)));
}

#define U(name, expr)                                                                   \
    static inline sj_value b_##name(sj_graph *g, const sj_value *x) { return expr; }

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

#define OP_CASES {"input", "identity", 1, {R(1, 3)}, b_input}, \
    {"const", "times a constant", 1, {R(1, 3)}, b_const}, \
    {"eye", "(x + I) x", 1, {R(2, 3, 3)}, b_eye}, \
    {"neg", NULL, 1, {R(2, 2, 3)}, b_neg}, \
    {"exp", NULL, 1, {R(2, 2, 3)}, b_exp}, \
    {"log", NULL, 1, {RR(0.5, 2.0, 1, 4)}, b_log}, \
    {"log1p", NULL, 1, {RR(-0.5, 2.0, 1, 4)}, b_log1p}, \
    {"expm1", NULL, 1, {R(1, 4)}, b_expm1}, \
    {"sqrt", NULL, 1, {RR(0.5, 2.0, 1, 4)}, b_sqrt}, \
    {"square", NULL, 1, {R(1, 4)}, b_square}, \
    {"recip", NULL, 1, {RR(0.5, 2.0, 1, 4)}, b_recip}, \
    {"tanh", NULL, 1, {R(1, 4)}, b_tanh}, \
    {"logistic", NULL, 1, {RR(-3, 3, 1, 4)}, b_logistic}, \
    {"lgamma", NULL, 1, {RR(0.5, 4.0, 1, 4)}, b_lgamma}, \
    {"digamma", NULL, 1, {RR(0.5, 4.0, 1, 4)}, b_digamma}, \
    {"polygamma", "order 1", 1, {RR(0.5, 4.0, 1, 4)}, b_polygamma1}, \
    {"polygamma", "order 2", 1, {RR(0.5, 4.0, 1, 4)}, b_polygamma2, 0, 0, 1e-5, 1e-6}, \
    {"abs", "away from 0", 1, {NZ(1, 5)}, b_abs}, \
    {"sign", "sign(x) x²", 1, {NZ(1, 5)}, b_sign}, \
    {"ndtr", NULL, 1, {RR(-3.0, 3.0, 1, 4)}, b_ndtr}, \
    {"ndtri", NULL, 1, {RR(0.05, 0.95, 1, 4)}, b_ndtri}, \
    {"atan", NULL, 1, {RR(-3.0, 3.0, 1, 4)}, b_atan}, \
    {"tan", NULL, 1, {RR(-1.2, 1.2, 1, 4)}, b_tan}, \
    {"add", NULL, 2, {R(2, 2, 3), R(2, 2, 3)}, b_add}, \
    {"add", "broadcast operand", 2, {R(2, 2, 3), R(1, 3)}, b_add}, \
    {"sub", NULL, 2, {R(1, 4), R(1, 4)}, b_sub}, \
    {"mul", NULL, 2, {R(1, 4), R(1, 4)}, b_mul}, \
    {"div", NULL, 2, {R(1, 4), RR(0.5, 2.0, 1, 4)}, b_div}, \
    {"pow", NULL, 2, {RR(0.5, 2.0, 1, 4), RR(-1.5, 1.5, 1, 4)}, b_pow}, \
    {"min", NULL, 2, {R(1, 6), R(1, 6)}, b_min}, \
    {"max", NULL, 2, {R(1, 6), R(1, 6)}, b_max}, \
    {"cmp", "[a < b] a + b", 2, {R(1, 6), R(1, 6)}, b_cmp}, \
    {"select", "where(p, a b, b)", 3, {KIND(K_BINARY, 1, 6), R(1, 6), R(1, 6)}, b_select}, \
    {"broadcast", "new axis", 1, {R(1, 3)}, b_broadcast}, \
    {"broadcast", "stretched unit axis", 1, {R(2, 3, 1)}, b_broadcast1}, \
    {"reshape", NULL, 1, {R(2, 2, 3)}, b_reshape}, \
    {"transpose", NULL, 1, {R(3, 2, 3, 4)}, b_transpose}, \
    {"slice", NULL, 1, {R(2, 4, 3)}, b_slice}, \
    {"slice", "negative start", 1, {R(2, 4, 3)}, b_slice_neg}, \
    {"concat", NULL, 3, {R(2, 2, 3), R(2, 1, 3), R(2, 2, 3)}, b_concat}, \
    {"gather", NULL, 2, {R(2, 3, 2), IDX(3, 5)}, b_gather}, \
    {"segment_sum", NULL, 2, {R(2, 5, 2), IDX(3, 5)}, b_segment_sum}, \
    {"one_hot", "one_hot(idx) x", 2, {IDX(3, 5), R(2, 3, 2)}, b_one_hot}, \
    {"sum", NULL, 1, {R(3, 2, 3, 4)}, b_sum}, \
    {"reduce_max", NULL, 1, {R(2, 3, 4)}, b_reduce_max}, \
    {"mean", NULL, 1, {R(2, 2, 3)}, b_mean}, \
    {"matmul", NULL, 2, {R(2, 2, 3), R(2, 3, 4)}, b_matmul}, \
    {"matmul", "batched", 2, {R(3, 2, 2, 3), R(3, 2, 3, 2)}, b_matmul}, \
    {"matmul", "matrix-vector", 2, {R(2, 2, 3), R(1, 3)}, b_matvec}, \
    {"outer", NULL, 2, {R(1, 3), R(1, 2)}, b_outer}, \
    {"kron", NULL, 2, {R(2, 2, 2), R(2, 2, 3)}, b_kron}, \
    {"diag", NULL, 1, {R(2, 3, 3)}, b_diag}, \
    {"diag_embed", NULL, 1, {R(1, 3)}, b_diag_embed}, \
    {"tril", NULL, 1, {R(2, 3, 3)}, b_tril}, \
    {"tril", "k = -1", 1, {R(2, 3, 4)}, b_tril_m1}, \
    {"triu", "k = 1", 1, {R(2, 3, 3)}, b_triu}, \
    {"cholesky", "of (A + Aᵀ)/2", 1, {KIND(K_SPD, 2, 3, 3)}, b_cholesky}, \
    {"cholesky", "batched", 1, {KIND(K_SPD, 3, 2, 3, 3)}, b_cholesky}, \
    {"triangular_solve", "lower, left", 2, {KIND(K_LOWER, 2, 3, 3), R(2, 3, 2)}, b_trisolve}, \
    {"triangular_solve", "lower, left, transposed", 2, {KIND(K_LOWER, 2, 3, 3), R(2, 3, 2)}, b_trisolve_t}, \
    {"triangular_solve", "lower, right", 2, {KIND(K_LOWER, 2, 3, 3), R(2, 2, 3)}, b_trisolve_r}, \
    {"triangular_solve", "upper, left", 2, {KIND(K_UPPER, 2, 3, 3), R(2, 3, 2)}, b_trisolve_u}, \
    {"triangular_solve", "upper, right, transposed", 2, {KIND(K_UPPER, 2, 3, 3), R(2, 2, 3)}, b_trisolve_urt}, \
    {"cholesky_solve", NULL, 2, {KIND(K_LOWER, 2, 3, 3), R(2, 3, 2)}, b_chosolve}, \
    {"cholesky_solve", "vector right-hand side", 2, {KIND(K_LOWER, 2, 3, 3), R(1, 3)}, b_chosolve}, \
    {"logdet", "of (A + Aᵀ)/2", 1, {KIND(K_SPD, 2, 3, 3)}, b_logdet}, \
    {"logdet", "batched", 1, {KIND(K_SPD, 3, 2, 3, 3)}, b_logdet}, \
    {"eigvalsh", "of (A + Aᵀ)/2", 1, {KIND(K_SPD, 2, 3, 3)}, b_eigvalsh}, \
    {"eigvalsh", "batched", 1, {KIND(K_SPD, 3, 2, 3, 3)}, b_eigvalsh}, \
    {"eigvecsh", "of (A + Aᵀ)/2", 1, {KIND(K_SPD, 2, 3, 3)}, b_eigvecsh}, \
    {"eigvecsh", "batched", 1, {KIND(K_SPD, 3, 2, 3, 3)}, b_eigvecsh}, \
    {"solve", NULL, 2, {KIND(K_GENERAL, 2, 3, 3), R(2, 3, 2)}, b_solve}, \
    {"fit", "argmin Σ w exp θ − aθ + θ²/2", 2, {R(1, 3), RR(0.5, 2.0, 1, 3)}, b_fit},

/* Fails the test unless every op of ir/ops.def has a case in cases[0..n-1]
 * (what: "derivative" or "batching", for the message). */
static inline void op_cases_check_complete(const ad_case *cases, int n, const char *what)
{
    int missing = 0;
    for (size_t k = 0; k < sizeof op_names / sizeof op_names[0]; k++) {
        int found = 0;
        for (int i = 0; i < n && !found; i++)
            found = strcmp(cases[i].op, op_names[k]) == 0;
        if (!found) {
            print_error("op %s has no %s test case\n", op_names[k], what);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
}

/* Runs `complete` and then `check` once per case (the case as its state),
 * each named "op: label". */
static inline int op_cases_run(const char *group, const ad_case *cases, int n,
                               CMUnitTestFunction complete, CMUnitTestFunction check)
{
    struct CMUnitTest *tests = calloc((size_t)n + 1, sizeof *tests);
    char (*names)[96] = calloc((size_t)n, sizeof *names);
    if (!tests || !names)
        return 1;
    tests[0] = (struct CMUnitTest){"every op has a case", complete, NULL, NULL, NULL};
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%s%s%s", cases[i].op, cases[i].label ? ": " : "",
                 cases[i].label ? cases[i].label : "");
        tests[i + 1] = (struct CMUnitTest){names[i], check, NULL, NULL, (void *)&cases[i]};
    }
    int failed = _cmocka_run_group_tests(group, tests, (size_t)n + 1, NULL, NULL);
    free(tests);
    free(names);
    return failed;
}

#endif
