/* Helpers shared by the covariance-tree tests (tests/test_cov_*.c): build a
 * tree's V(θ), evaluate it and its Jacobian dV/dθ (jacfwd, and jacrev as a
 * cross-check) with the reference evaluator and the native code, and
 * compare with closed forms.  Header-only, like ad_check.h. */
#ifndef SJ_COV_CHECK_H
#define SJ_COV_CHECK_H

#include "ad_check.h"

/* Runs f natively (sj_fn_call) and returns its outputs as new values. */
static inline int cov_call(sj_ctx *ctx, sj_fn *f, int nin, const val *in, val *out)
{
    int ranks[32];
    const int64_t *dims[32];
    const double *data[32];
    for (int i = 0; i < nin; i++) {
        ranks[i] = in[i].rank;
        dims[i] = in[i].dim;
        data[i] = in[i].data;
    }
    sj_compiled *c = NULL;
    assert_ok(sj_fn_compile(f, nin, ranks, dims, &c), ctx);
    int nout = sj_compiled_noutput(c);
    double *outs[AD_MAX_OUT];
    for (int k = 0; k < nout; k++) {
        int rank;
        int64_t d[SJ_MAX_RANK];
        assert_ok(sj_compiled_output_shape(c, k, &rank, d), ctx);
        out[k] = val_new(rank, d);
        outs[k] = out[k].data;
    }
    assert_ok(sj_compiled_call(c, data, outs), ctx);
    sj_compiled_free(c);
    return nout;
}

/* V of root built from input theta (input 0 of g unless the tree has no
 * parameters), evaluated on inputs in[0..nin-1]; checks V against want_v
 * (r × c) and, when the tree has parameters, dV/dθ (r × c × k, JAX layout)
 * against want_j.  Both the evaluator and the native code are checked. */
static inline void cov_check(sj_ctx *ctx, sj_graph *g, sj_cov *root, sj_value theta, int nin,
                             const val *in, int64_t r, int64_t c, const double *want_v,
                             const double *want_j, double rtol)
{
    int k = sj_cov_nparam(root);
    assert_true(k >= 0);
    sj_value v = SJ_INVALID;
    assert_ok(sj_cov_build(root, theta, &v), ctx);
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 1, &v, &f), ctx);
    val out[AD_MAX_OUT], nat[AD_MAX_OUT];
    assert_int_equal(ad_run(ctx, f, nin, in, out), 1);
    assert_int_equal(out[0].rank, 2);
    assert_int_equal(out[0].dim[0], r);
    assert_int_equal(out[0].dim[1], c);
    assert_close(out[0].data, want_v, (size_t)(r * c), rtol, 1e-13);
    assert_int_equal(cov_call(ctx, f, nin, in, nat), 1);
    assert_close(nat[0].data, want_v, (size_t)(r * c), rtol, 1e-13);
    ad_free_all(out, 1);
    ad_free_all(nat, 1);
    if (k > 0) {
        int wrt = 0;
        sj_fn *jf = NULL, *jr = NULL;
        assert_ok(sj_jacfwd(f, 0, 1, &wrt, &jf), ctx);
        assert_ok(sj_jacrev(f, 0, 1, &wrt, &jr), ctx);
        val jo[AD_MAX_OUT], ro[AD_MAX_OUT], no[AD_MAX_OUT];
        assert_int_equal(ad_run(ctx, jf, nin, in, jo), 1);
        assert_int_equal(ad_run(ctx, jr, nin, in, ro), 1);
        assert_int_equal(jo[0].rank, 3);
        assert_int_equal(jo[0].dim[2], k);
        assert_close(jo[0].data, want_j, (size_t)(r * c * k), rtol, 1e-12);
        assert_close(ro[0].data, want_j, (size_t)(r * c * k), rtol, 1e-12);
        assert_int_equal(cov_call(ctx, jf, nin, in, no), 1);
        assert_close(no[0].data, want_j, (size_t)(r * c * k), rtol, 1e-12);
        ad_free_all(jo, 1);
        ad_free_all(ro, 1);
        ad_free_all(no, 1);
        sj_fn_free(jf);
        sj_fn_free(jr);
    }
    sj_fn_free(f);
}

/* A vector value holding data[0..n-1]. */
static inline val cov_vec(int64_t n, const double *data)
{
    val v = val_new(1, &n);
    if (data)
        memcpy(v.data, data, (size_t)n * sizeof *data);
    return v;
}

static inline double cov_sigmoid(double x) { return 1 / (1 + exp(-x)); }

/* J[i, j, p] of an r × c × k Jacobian. */
#define JAC(J, c, k, i, j, p) (J)[((i) * (c) + (j)) * (k) + (p)]

#endif
