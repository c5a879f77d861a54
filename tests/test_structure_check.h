/* Helpers shared by the structure-rewrite tests (tests/test_structure_*.c):
 * a function is run with the rewrites on and off (SJ_NO_REWRITE=1), and its
 * value, gradient and Hessian are compared; the printed specialised graph
 * shows which rewrites fired.  Header-only, like ad_check.h. */
#ifndef SJ_TEST_STRUCTURE_CHECK_H
#define SJ_TEST_STRUCTURE_CHECK_H

#include <ctype.h>
#include <stdlib.h>

#include "cov_check.h"

static inline void st_set_rewrites(int on)
{
    if (on)
        unsetenv("SJ_NO_REWRITE");
    else
        setenv("SJ_NO_REWRITE", "1", 1);
}

/* The specialised graph of f on in, printed (rewrites as currently set). */
static inline char *st_print(sj_ctx *ctx, sj_fn *f, int nin, const val *in)
{
    int ranks[32];
    const int64_t *dims[32];
    for (int i = 0; i < nin; i++) {
        ranks[i] = in[i].rank;
        dims[i] = in[i].dim;
    }
    sj_compiled *c = NULL;
    assert_ok(sj_fn_specialize(f, nin, ranks, dims, &c), ctx);
    char *s = sj_compiled_print(c);
    assert_non_null(s);
    sj_compiled_free(c);
    return s;
}

/* Largest number of elements of any value in a printed graph. */
static inline double st_largest_value(const char *text)
{
    double most = 0;
    for (const char *p = text; (p = strstr(p, " : [")) != NULL;) {
        p += 4;
        double n = 1;
        while (*p && *p != ']') {
            n *= strtod(p, (char **)&p);
            while (*p == ',' || *p == ' ')
                p++;
        }
        most = n > most ? n : most;
    }
    return most;
}

/* The "# rewrites: ..." line of a printed graph ("" if none). */
static inline void st_rewrite_line(const char *text, char *out, size_t size)
{
    out[0] = '\0';
    if (strncmp(text, "# rewrites:", 11) != 0)
        return;
    size_t n = strcspn(text, "\n");
    if (n >= size)
        n = size - 1;
    memcpy(out, text, n);
    out[n] = '\0';
}

/* Value, gradient and Hessian of output 0 of f with respect to input wrt,
 * by the evaluator. */
typedef struct st_derivs {
    val value, grad, hess;
} st_derivs;

static inline st_derivs st_eval(sj_ctx *ctx, sj_fn *f, int nin, const val *in, int wrt)
{
    st_derivs d;
    sj_fn *vg = NULL, *h = NULL;
    assert_ok(sj_value_and_grad(f, 0, 1, &wrt, &vg), ctx);
    assert_ok(sj_hessian(f, 0, 1, &wrt, &h), ctx);
    val o[AD_MAX_OUT];
    assert_int_equal(ad_run(ctx, vg, nin, in, o), 2);
    d.value = o[0];
    d.grad = o[1];
    assert_int_equal(ad_run(ctx, h, nin, in, o), 1);
    d.hess = o[0];
    sj_fn_free(vg);
    sj_fn_free(h);
    return d;
}

static inline void st_derivs_free(st_derivs *d)
{
    val_free(&d->value);
    val_free(&d->grad);
    val_free(&d->hess);
}

static inline double st_maxabs(const val *v)
{
    double m = 0;
    for (size_t i = 0; i < v->n; i++)
        m = fmax(m, fabs(v->data[i]));
    return m;
}

/* Rewritten against dense: value, gradient and Hessian of output 0 with
 * respect to input wrt agree to rtol (relative to the largest entry of each,
 * so that entries near zero are compared on the scale of the rest).  The
 * rewritten graph must show every name of `fired` (NULL-terminated) in its
 * rewrite line and the dense one none; the native code must agree with the
 * evaluator on the value. */
static inline void st_compare(sj_ctx *ctx, sj_fn *f, int nin, const val *in, int wrt,
                              const char *const *fired, double rtol)
{
    char line[512];
    st_set_rewrites(0);
    char *dense_text = st_print(ctx, f, nin, in);
    st_rewrite_line(dense_text, line, sizeof line);
    assert_string_equal(line, "");
    st_derivs dense = st_eval(ctx, f, nin, in, wrt);
    st_set_rewrites(1);
    char *text = st_print(ctx, f, nin, in);
    st_rewrite_line(text, line, sizeof line);
    for (int i = 0; fired && fired[i]; i++)
        if (!strstr(line, fired[i]))
            fail_msg("rewrite %s did not fire: \"%s\"\n%s", fired[i], line, text);
    st_derivs fast = st_eval(ctx, f, nin, in, wrt);
    double ev = ad_excess(fast.value.data, dense.value.data, 1, rtol, 0);
    double eg = ad_excess(fast.grad.data, dense.grad.data, dense.grad.n, 0,
                          rtol * fmax(st_maxabs(&dense.grad), 1e-300));
    double eh = ad_excess(fast.hess.data, dense.hess.data, dense.hess.n, 0,
                          rtol * fmax(st_maxabs(&dense.hess), 1e-300));
    print_message("  %s\n  largest value: %.0f elements (dense %.0f); value %.15g; excess over "
                  "tolerance: value %.2g grad %.2g hessian %.2g\n", line,
                  st_largest_value(text), st_largest_value(dense_text), fast.value.data[0], ev,
                  eg, eh);
    assert_true(ev <= 1 && eg <= 1 && eh <= 1);
    val nat[AD_MAX_OUT] = {{0}};
    int nout = cov_call(ctx, f, nin, in, nat);
    assert_close(nat[0].data, fast.value.data, 1, 1e-12, 0);
    ad_free_all(nat, nout);
    st_derivs_free(&dense);
    st_derivs_free(&fast);
    sj_string_free(dense_text);
    sj_string_free(text);
}

/* A symmetric positive definite p × p matrix P Pᵀ + p I from random P. */
static inline void st_spd(uint64_t *rng, int64_t p, double *out)
{
    double *m = malloc((size_t)(p * p) * sizeof *m);
    for (int64_t i = 0; i < p * p; i++)
        m[i] = test_uniform(rng, -1, 1);
    for (int64_t i = 0; i < p; i++)
        for (int64_t j = 0; j < p; j++) {
            double s = i == j ? (double)p : 0;
            for (int64_t k = 0; k < p; k++)
                s += m[i * p + k] * m[j * p + k];
            out[i * p + j] = s;
        }
    free(m);
}

static inline val st_random(uint64_t *rng, int rank, const int64_t *dims, double lo, double hi)
{
    val v = val_new(rank, dims);
    for (size_t i = 0; i < v.n; i++)
        v.data[i] = test_uniform(rng, lo, hi);
    return v;
}

/* Integer codes 0..q-1, every level present (the first q rows), the rest
 * random. */
static inline val st_codes(uint64_t *rng, int64_t n, int64_t q)
{
    val v = val_new(1, &n);
    for (int64_t i = 0; i < n; i++)
        v.data[i] = i < q ? (double)i : floor(test_uniform(rng, 0, (double)q));
    return v;
}

/* The function of g's REML criterion of y ~ X with covariance tree root at
 * theta (sj_reml_criterion), for the caller to free. */
static inline sj_fn *st_reml_fn(sj_ctx *ctx, sj_graph *g, sj_cov *root, sj_value theta,
                                sj_value x, sj_value y)
{
    sj_value v;
    assert_ok(sj_cov_build(root, theta, &v), ctx);
    sj_value out = sj_reml_criterion(g, v, x, y);
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &out, &f), ctx);
    return f;
}

/* The REML criterion of y ~ X (p columns) with crossed random intercepts
 * of factors a (qa levels) and b (qb levels): inputs theta [3], y, X, a,
 * b; graph and function owned by the caller. */
static inline sj_fn *st_crossed_reml(sj_ctx *ctx, sj_graph *g, const char *qa, const char *qb,
                                     const char *p)
{
    const char *dn[] = {"n"}, *dx[] = {"n", p}, *d3[] = {"3"};
    sj_value theta = sj_input(g, "theta", 1, d3), y = sj_input(g, "y", 1, dn),
             x = sj_input(g, "X", 2, dx), a = sj_input(g, "a", 1, dn), b = sj_input(g, "b", 1, dn);
    sj_cov *kids[3] = {sj_cov_propagate(g, "a", sj_cov_dummy(g, "Za", a, qa, NULL),
                                        sj_cov_scalar(g, "a", qa, 1.0, sj_transform_exp2())),
                       sj_cov_propagate(g, "b", sj_cov_dummy(g, "Zb", b, qb, NULL),
                                        sj_cov_scalar(g, "b", qb, 1.0, sj_transform_exp2())),
                       sj_cov_scalar(g, "residual", "n", 1.0, sj_transform_exp2())};
    return st_reml_fn(ctx, g, sj_cov_sum(g, NULL, 3, kids), theta, x, y);
}

#endif
