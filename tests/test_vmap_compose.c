/* vmap composed with itself and with the derivative transforms, its
 * signature and errors, and what batching makes of a graph:
 *   vmap(vmap(f)) against a double loop;  vmap(grad(f)), vmap(hessian(f))
 *   against per-item derivatives;  the gradient of Σ_b f(x_b) as vjp of
 *   vmap(f) with a cotangent of ones (the API has no function composition,
 *   and vjp(vmap(f))(xs, 1) is exactly grad(sum ∘ vmap(f))), for batched and
 *   shared inputs;  jacfwd built as vmap over jvp (only the tangent batched)
 *   and jacrev as vmap over vjp, against sj_jacfwd / sj_jacrev;  the Hessian
 *   of a vmapped function as jacfwd(jacrev(vmap(f))) (block diagonal, with
 *   hessian(f)(x_b) on the diagonal) and as jacfwd of the summed gradient;
 *   native code (sj_fn_call) against the evaluator;  unbatched work stays
 *   unbatched, a matmul with an unbatched matrix is one GEMM;  errors.
 * Tolerance 1e-12 relative (1e-12 absolute near zero) throughout. */
#include "ad_check.h"
#include "runtime/handles.h"

static sj_ctx *ctx;

static int setup(void **state) { return sj_ctx_create(&ctx) == SJ_OK ? 0 : -1; }
static int teardown(void **state)
{
    sj_ctx_free(ctx);
    return 0;
}

#define TOL 1e-12

static val rand_val(uint64_t *rng, int rank, const int64_t *dim, double lo, double hi)
{
    val v = val_new(rank, dim);
    for (size_t i = 0; i < v.n; i++)
        v.data[i] = test_uniform(rng, lo, hi);
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

/* f(x [n], m [n, n]) = (exp(x) ⊙ (M x), logdet(I + M Mᵀ + diag(x²)) + Σ tanh(x)):
 * a vector and a scalar output. */
static sj_fn *two_output_fn(int scalar_only)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value x = sj_input(g, "x", 1, (const char *[]){"n"});
    sj_value m = sj_input(g, "m", 2, (const char *[]){"n", "n"});
    sj_value v = sj_mul(g, sj_exp(g, x), sj_matmul(g, m, x));
    sj_value a = sj_add(g, sj_add(g, sj_eye(g, "n"), sj_matmul(g, m, sj_mT(g, m))),
                        sj_diag_embed(g, sj_square(g, x)));
    sj_value s = sj_add(g, sj_logdet(g, a), sj_sum_all(g, sj_tanh(g, x)));
    assert_ok(sj_graph_status(g), ctx);
    sj_fn *f = NULL;
    sj_value outs[2] = {v, s};
    if (scalar_only)
        assert_ok(sj_fn_create(g, 1, &s, &f), ctx);
    else
        assert_ok(sj_fn_create(g, 2, outs, &f), ctx);
    sj_graph_free(g);
    return f;
}

/* ---- nesting ---------------------------------------------------------------------- */

/* vmap(vmap(f)): inner over x (axis 0, 4 items) with m shared; outer over x
 * (axis 1, 2 items) and m (axis 0).  Result [2, 4, ...] against a double
 * loop; also natively. */
static void test_nested(void **state)
{
    uint64_t rng = 11;
    sj_fn *f = two_output_fn(0), *inner = NULL, *outer = NULL;
    assert_ok(sj_vmap(f, (int[]){0, -1}, (int[]){0, 0}, "i", &inner), ctx);
    assert_ok(sj_vmap(inner, (int[]){1, 0}, (int[]){0, 0}, "o", &outer), ctx);
    int r;
    assert_ok(sj_fn_input_rank(outer, 0, &r), ctx);
    assert_int_equal(r, 3);
    assert_ok(sj_fn_input_rank(outer, 1, &r), ctx);
    assert_int_equal(r, 3);
    const int n = 3, ni = 4, no = 2;
    val xs = rand_val(&rng, 3, (int64_t[]){ni, no, n}, -1, 1);
    val ms = rand_val(&rng, 3, (int64_t[]){no, n, n}, -1, 1);
    val in[2] = {xs, ms}, y[2];
    ad_run(ctx, outer, 2, in, y);
    assert_int_equal(y[0].rank, 3);
    assert_int_equal(y[0].dim[0], no);
    assert_int_equal(y[0].dim[1], ni);
    assert_int_equal(y[1].rank, 2);
    for (int o = 0; o < no; o++) {
        val mo = unstack(&ms, 0, o), xo = unstack(&xs, 1, o); /* xo [ni, n] */
        val yo0 = unstack(&y[0], 0, o), yo1 = unstack(&y[1], 0, o);
        for (int i = 0; i < ni; i++) {
            val x = unstack(&xo, 0, i), one[2] = {x, mo}, want[2];
            ad_run(ctx, f, 2, one, want);
            val g0 = unstack(&yo0, 0, i), g1 = unstack(&yo1, 0, i);
            assert_close(g0.data, want[0].data, want[0].n, TOL, TOL);
            assert_close(g1.data, want[1].data, 1, TOL, TOL);
            ad_free_all(want, 2);
            val_free(&g0);
            val_free(&g1);
            val_free(&x);
        }
        val_free(&mo);
        val_free(&xo);
        val_free(&yo0);
        val_free(&yo1);
    }
    /* Natively. */
    double *outs[2] = {malloc(y[0].n * sizeof(double)), malloc(y[1].n * sizeof(double))};
    assert_ok(sj_fn_call(outer, 2, (int[]){3, 3}, (const int64_t *[]){xs.dim, ms.dim},
                         (const double *[]){xs.data, ms.data}, outs), ctx);
    assert_close(outs[0], y[0].data, y[0].n, TOL, TOL);
    assert_close(outs[1], y[1].data, y[1].n, TOL, TOL);
    free(outs[0]);
    free(outs[1]);
    ad_free_all(y, 2);
    val_free(&xs);
    val_free(&ms);
    sj_fn_free(f);
    sj_fn_free(inner);
    sj_fn_free(outer);
}

/* ---- vmap of derivatives ------------------------------------------------------------- */

/* vmap(grad(f)) and vmap(hessian(f)) over x (m shared), and over both. */
static void test_vmap_of_derivatives(void **state)
{
    uint64_t rng = 12;
    const int n = 3, nb = 5;
    sj_fn *f = two_output_fn(1), *gf = NULL, *hf = NULL;
    assert_ok(sj_grad(f, 0, 0, NULL, &gf), ctx);
    assert_ok(sj_hessian(f, 0, 0, NULL, &hf), ctx);
    for (int both = 0; both < 2; both++) {
        sj_fn *vg = NULL, *vh = NULL;
        int axes[2] = {0, both ? 2 : -1};
        assert_ok(sj_vmap(gf, axes, NULL, NULL, &vg), ctx);
        assert_ok(sj_vmap(hf, axes, (int[]){0, 1, 2, 3}, NULL, &vh), ctx);
        val xs = rand_val(&rng, 2, (int64_t[]){nb, n}, -1, 1);
        val ms = both ? rand_val(&rng, 3, (int64_t[]){n, n, nb}, -1, 1)
                      : rand_val(&rng, 2, (int64_t[]){n, n}, -1, 1);
        val in[2] = {xs, ms}, g[2], h[4];
        ad_run(ctx, vg, 2, in, g);
        ad_run(ctx, vh, 2, in, h);
        for (int b = 0; b < nb; b++) {
            val x = unstack(&xs, 0, b), m = both ? unstack(&ms, 2, b) : val_copy(&ms);
            val one[2] = {x, m}, wg[2], wh[4];
            ad_run(ctx, gf, 2, one, wg);
            ad_run(ctx, hf, 2, one, wh);
            for (int k = 0; k < 2; k++) {
                val gb = unstack(&g[k], 0, b);
                assert_close(gb.data, wg[k].data, wg[k].n, TOL, TOL);
                val_free(&gb);
            }
            for (int k = 0; k < 4; k++) {
                int at = k; /* out_axes {0, 1, 2, 3} */
                val hb = unstack(&h[k], at, b);
                assert_close(hb.data, wh[k].data, wh[k].n, TOL, TOL);
                val_free(&hb);
            }
            ad_free_all(wg, 2);
            ad_free_all(wh, 4);
            val_free(&x);
            val_free(&m);
        }
        ad_free_all(g, 2);
        ad_free_all(h, 4);
        val_free(&xs);
        val_free(&ms);
        sj_fn_free(vg);
        sj_fn_free(vh);
    }
    sj_fn_free(f);
    sj_fn_free(gf);
    sj_fn_free(hf);
}

/* ---- derivatives of vmap -------------------------------------------------------------- */

/* grad of Σ_b f(x_b, m) as vjp(vmap(f))(xs, m, ones): the gradient in x_b is
 * grad f(x_b), the one in the shared m is Σ_b ∂f/∂m(x_b). */
static void test_grad_of_sum_of_vmap(void **state)
{
    uint64_t rng = 13;
    const int n = 3, nb = 4;
    sj_fn *f = two_output_fn(1), *vf = NULL, *dv = NULL, *gf = NULL;
    assert_ok(sj_vmap(f, (int[]){0, -1}, NULL, "b", &vf), ctx);
    assert_ok(sj_vjp(vf, 0, NULL, &dv), ctx);
    assert_ok(sj_grad(f, 0, 0, NULL, &gf), ctx);
    assert_int_equal(sj_fn_ninput(dv), 3);
    val xs = rand_val(&rng, 2, (int64_t[]){nb, n}, -1, 1);
    val m = rand_val(&rng, 2, (int64_t[]){n, n}, -1, 1);
    val ones = val_new(1, (int64_t[]){nb});
    for (int b = 0; b < nb; b++)
        ones.data[b] = 1;
    val in[3] = {xs, m, ones}, got[2];
    ad_run(ctx, dv, 3, in, got);
    val msum = val_new(2, (int64_t[]){n, n});
    for (int b = 0; b < nb; b++) {
        val x = unstack(&xs, 0, b), one[2] = {x, m}, w[2];
        ad_run(ctx, gf, 2, one, w);
        val gb = unstack(&got[0], 0, b);
        assert_close(gb.data, w[0].data, w[0].n, TOL, TOL);
        for (size_t e = 0; e < msum.n; e++)
            msum.data[e] += w[1].data[e];
        val_free(&gb);
        val_free(&x);
        ad_free_all(w, 2);
    }
    assert_close(got[1].data, msum.data, msum.n, TOL, TOL);
    ad_free_all(got, 2);
    val_free(&msum);
    val_free(&xs);
    val_free(&m);
    val_free(&ones);
    sj_fn_free(f);
    sj_fn_free(vf);
    sj_fn_free(dv);
    sj_fn_free(gf);
}

/* jacfwd as vmap over jvp: the tangent batched over the identity's rows, x
 * and m shared, the primal output not batched (out axis -1), the tangent
 * output's batch axis last: J [n, n].  jacrev as vmap over vjp: the
 * cotangent batched over the identity's rows, the batch axis first. */
static void test_jacobians_by_vmap(void **state)
{
    uint64_t rng = 14;
    const int n = 4;
    sj_fn *f = two_output_fn(0), *fv = NULL;
    /* Output 0 alone (a vector function of x). */
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value x = sj_input(g, "x", 1, (const char *[]){"n"});
    sj_value m = sj_input(g, "m", 2, (const char *[]){"n", "n"});
    sj_value v = sj_mul(g, sj_exp(g, x), sj_matmul(g, m, sj_tanh(g, x)));
    assert_ok(sj_fn_create(g, 1, &v, &fv), ctx);
    sj_graph_free(g);
    sj_fn *j = NULL, *vj = NULL, *r = NULL, *vr = NULL, *jf = NULL, *jr = NULL;
    assert_ok(sj_jvp(fv, 1, (int[]){0}, &j), ctx);
    assert_ok(sj_vmap(j, (int[]){-1, -1, 0}, (int[]){-1, 1}, NULL, &vj), ctx);
    assert_ok(sj_vjp(fv, 1, (int[]){0}, &r), ctx);
    assert_ok(sj_vmap(r, (int[]){-1, -1, 0}, (int[]){0}, NULL, &vr), ctx);
    assert_ok(sj_jacfwd(fv, 0, 1, (int[]){0}, &jf), ctx);
    assert_ok(sj_jacrev(fv, 0, 1, (int[]){0}, &jr), ctx);
    val xv = rand_val(&rng, 1, (int64_t[]){n}, -1, 1);
    val mv = rand_val(&rng, 2, (int64_t[]){n, n}, -1, 1);
    val eye = val_new(2, (int64_t[]){n, n});
    for (int i = 0; i < n; i++)
        eye.data[i * n + i] = 1;
    val in[3] = {xv, mv, eye}, a[2], b[1], want[1], want2[1];
    ad_run(ctx, vj, 3, in, a);
    ad_run(ctx, vr, 3, in, b);
    ad_run(ctx, jf, 2, in, want);
    ad_run(ctx, jr, 2, in, want2);
    assert_int_equal(a[0].rank, 1); /* the primal, not batched */
    assert_int_equal(a[1].rank, 2);
    assert_close(a[1].data, want[0].data, want[0].n, TOL, TOL);
    assert_close(b[0].data, want2[0].data, want2[0].n, TOL, TOL);
    assert_close(want[0].data, want2[0].data, want2[0].n, TOL, TOL);
    /* Natively. */
    double *out[2] = {malloc(a[0].n * sizeof(double)), malloc(a[1].n * sizeof(double))};
    assert_ok(sj_fn_call(vj, 3, (int[]){1, 2, 2}, (const int64_t *[]){xv.dim, mv.dim, eye.dim},
                         (const double *[]){xv.data, mv.data, eye.data}, out), ctx);
    assert_close(out[1], want[0].data, want[0].n, TOL, TOL);
    free(out[0]);
    free(out[1]);
    ad_free_all(a, 2);
    ad_free_all(b, 1);
    ad_free_all(want, 1);
    ad_free_all(want2, 1);
    val_free(&xv);
    val_free(&mv);
    val_free(&eye);
    sj_fn_free(f);
    sj_fn_free(fv);
    sj_fn_free(j);
    sj_fn_free(vj);
    sj_fn_free(r);
    sj_fn_free(vr);
    sj_fn_free(jf);
    sj_fn_free(jr);
}

/* The Hessian of a vmapped scalar function F(xs) = [f(x_b)]_b:
 * jacfwd(jacrev(F)) is [B, B, n, B, n] with hessian f(x_b) at [b, b, :, b, :]
 * and zeros elsewhere; and the Hessian of Σ_b f(x_b), as jacfwd of the
 * gradient vjp(F)(xs, 1) with respect to xs, is its block diagonal. */
static void test_hessian_of_vmap(void **state)
{
    uint64_t rng = 15;
    const int n = 3, nb = 3;
    sj_fn *f = two_output_fn(1), *vf = NULL, *jr = NULL, *hh = NULL, *hf = NULL;
    sj_fn *dv = NULL, *hs = NULL;
    assert_ok(sj_vmap(f, (int[]){0, -1}, NULL, NULL, &vf), ctx);
    assert_ok(sj_jacrev(vf, 0, 1, (int[]){0}, &jr), ctx);
    assert_ok(sj_jacfwd(jr, 0, 1, (int[]){0}, &hh), ctx);
    assert_ok(sj_hessian(f, 0, 1, (int[]){0}, &hf), ctx);
    assert_ok(sj_vjp(vf, 1, (int[]){0}, &dv), ctx);
    assert_ok(sj_jacfwd(dv, 0, 1, (int[]){0}, &hs), ctx);
    val xs = rand_val(&rng, 2, (int64_t[]){nb, n}, -1, 1);
    val m = rand_val(&rng, 2, (int64_t[]){n, n}, -1, 1);
    val ones = val_new(1, (int64_t[]){nb});
    for (int b = 0; b < nb; b++)
        ones.data[b] = 1;
    val in[3] = {xs, m, ones}, h[1], s[1];
    ad_run(ctx, hh, 2, in, h);
    ad_run(ctx, hs, 3, in, s);
    assert_int_equal(h[0].rank, 5);
    assert_int_equal(s[0].rank, 4);
    for (int b = 0; b < nb; b++) {
        val x = unstack(&xs, 0, b), one[2] = {x, m}, w[1];
        ad_run(ctx, hf, 2, one, w);
        for (int c = 0; c < nb; c++)
            for (int d = 0; d < nb; d++)
                for (int i = 0; i < n; i++)
                    for (int k = 0; k < n; k++) {
                        size_t at = ((((size_t)b * nb + c) * n + i) * nb + d) * n + k;
                        double want = b == c && c == d ? w[0].data[i * n + k] : 0;
                        assert_close(&h[0].data[at], &want, 1, TOL, TOL);
                        if (b == c) { /* s is [B, n, B, n] */
                            size_t as = (((size_t)b * n + i) * nb + d) * n + k;
                            double ws = b == d ? w[0].data[i * n + k] : 0;
                            assert_close(&s[0].data[as], &ws, 1, TOL, TOL);
                        }
                    }
        ad_free_all(w, 1);
        val_free(&x);
    }
    ad_free_all(h, 1);
    ad_free_all(s, 1);
    val_free(&xs);
    val_free(&m);
    val_free(&ones);
    sj_fn_free(f);
    sj_fn_free(vf);
    sj_fn_free(jr);
    sj_fn_free(hh);
    sj_fn_free(hf);
    sj_fn_free(dv);
    sj_fn_free(hs);
}

/* ---- what batching makes of a graph --------------------------------------------------- */

/* y = cholesky_solve(chol(A), X_b) + B_b W with A and W shared: the
 * Cholesky factor is computed once (rank 2), the solve takes every item's
 * right-hand side at once, and B_b W is one GEMM of [nb·m, k] by W. */
static void test_unbatched_work_stays_unbatched(void **state)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value a = sj_input(g, "a", 2, (const char *[]){"n", "n"});
    sj_value x = sj_input(g, "x", 2, (const char *[]){"n", "k"});
    sj_value bm = sj_input(g, "b", 2, (const char *[]){"n", "p"});
    sj_value w = sj_input(g, "w", 2, (const char *[]){"p", "k"});
    sj_value y = sj_add(g, sj_cholesky_solve(g, sj_cholesky(g, a), x), sj_matmul(g, bm, w));
    sj_fn *f = NULL, *vf = NULL;
    assert_ok(sj_fn_create(g, 1, &y, &f), ctx);
    sj_graph_free(g);
    assert_ok(sj_vmap(f, (int[]){-1, 0, 0, -1}, NULL, NULL, &vf), ctx);
    const int n = 4, k = 2, p = 3, nb = 5;
    sj_compiled *c = NULL;
    int64_t da[2] = {n, n}, dx[3] = {nb, n, k}, db[3] = {nb, n, p}, dw[2] = {p, k};
    assert_ok(sj_fn_specialize(vf, 4, (int[]){2, 3, 3, 2}, (const int64_t *[]){da, dx, db, dw},
                               &c), ctx);
    int nchol = 0, ngemm = 0, nsolve = 0;
    for (uint32_t v = 0; v < c->ir->nnode; v++) {
        const ir_node *nd = &c->ir->node[v];
        if (nd->op == IR_OP_CHOLESKY) {
            nchol++;
            assert_int_equal(nd->shape.rank, 2);
        } else if (nd->op == IR_OP_MATMUL) {
            ngemm++;
            assert_int_equal(nd->shape.rank, 2);
            assert_int_equal(nd->shape.dim[0], nb * n);
        } else if (nd->op == IR_OP_CHOSOLVE) {
            nsolve++;
            assert_int_equal(nd->shape.rank, 2);
            assert_int_equal(nd->shape.dim[1], nb * k);
        } else if (nd->op == IR_OP_BROADCAST) {
            fail_msg("a broadcast (value %%%u) stacks an unbatched value", v);
        }
    }
    assert_int_equal(nchol, 1);
    assert_int_equal(ngemm, 1);
    assert_int_equal(nsolve, 1);
    sj_compiled_free(c);
    sj_fn_free(f);
    sj_fn_free(vf);
}

/* ---- signatures, caching, errors ------------------------------------------------------- */

static void test_signature_and_cache(void **state)
{
    sj_fn *f = two_output_fn(0), *j = NULL, *vj = NULL, *v1 = NULL, *v2 = NULL, *v3 = NULL;
    assert_ok(sj_jvp(f, 1, (int[]){0}, &j), ctx);
    assert_ok(sj_vmap(j, (int[]){0, -1, 1}, NULL, "batch", &vj), ctx);
    assert_int_equal(sj_fn_ninput(vj), 3);
    assert_int_equal(sj_fn_noutput(vj), 4);
    int idx = -1, r = -1;
    assert_ok(sj_fn_input_index(vj, "tangent:x", &idx), ctx);
    assert_int_equal(idx, 2);
    assert_ok(sj_fn_input_rank(vj, 2, &r), ctx);
    assert_int_equal(r, 2);
    assert_ok(sj_fn_input_rank(vj, 1, &r), ctx);
    assert_int_equal(r, 2);
    /* vmap of vmap keeps names; its derivative adds tangents of the batched shape. */
    sj_fn *jv = NULL;
    assert_ok(sj_jvp(vj, 1, (int[]){1}, &jv), ctx);
    assert_ok(sj_fn_input_index(jv, "tangent:m", &idx), ctx);
    assert_int_equal(idx, 3);

    /* Different axes are different functions; the same ones share code. */
    assert_ok(sj_vmap(f, (int[]){0, -1}, NULL, NULL, &v1), ctx);
    assert_ok(sj_vmap(f, (int[]){1, -1}, NULL, NULL, &v2), ctx);
    assert_ok(sj_vmap(f, (int[]){0, -1}, NULL, NULL, &v3), ctx);
    assert_true(v1->fingerprint != v2->fingerprint);
    assert_true(v1->fingerprint == v3->fingerprint);
    int64_t dx[2] = {3, 3}, dm[2] = {3, 3};
    double xd[9], md[9], o1[2][9], o2[2][9];
    for (int i = 0; i < 9; i++) {
        xd[i] = 0.1 * i - 0.3;
        md[i] = 0.05 * i * i - 0.2;
    }
    double before, after;
    assert_ok(sj_ctx_counter(ctx, "compiles", &before), ctx);
    const int64_t *dims[2] = {dx, dm};
    const double *data[2] = {xd, md};
    assert_ok(sj_fn_call(v1, 2, (int[]){2, 2}, dims, data, (double *[]){o1[0], o1[1]}), ctx);
    assert_ok(sj_fn_call(v2, 2, (int[]){2, 2}, dims, data, (double *[]){o2[0], o2[1]}), ctx);
    assert_ok(sj_fn_call(v3, 2, (int[]){2, 2}, dims, data, (double *[]){o2[0], o2[1]}), ctx);
    assert_ok(sj_ctx_counter(ctx, "compiles", &after), ctx);
    assert_true(after - before == 2);
    assert_close(o2[0], o1[0], 9, 0, 0);
    sj_fn_free(f);
    sj_fn_free(j);
    sj_fn_free(vj);
    sj_fn_free(jv);
    sj_fn_free(v1);
    sj_fn_free(v2);
    sj_fn_free(v3);
}

static void test_errors(void **state)
{
    sj_fn *f = two_output_fn(0), *v = NULL;
    /* At transform time. */
    assert_error(sj_vmap(f, (int[]){2, 0}, NULL, NULL, &v), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "in_axes[0] = 2");
    assert_error(sj_vmap(f, (int[]){-2, 0}, NULL, NULL, &v), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "in_axes[0] = -2");
    assert_error(sj_vmap(f, (int[]){-1, -1}, NULL, NULL, &v), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "no input is batched");
    assert_error(sj_vmap(f, NULL, (int[]){0, 1}, NULL, &v), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "out_axes[1] = 1");
    assert_error(sj_vmap(f, NULL, NULL, "not a name", &v), SJ_ERR_INVALID_ARGUMENT, ctx,
                 "batch dimension");
    assert_error(sj_vmap(f, NULL, NULL, NULL, NULL), SJ_ERR_INVALID_ARGUMENT, ctx, "out is NULL");
    assert_int_equal(sj_vmap(NULL, NULL, NULL, NULL, &v), SJ_ERR_INVALID_ARGUMENT);
    {
        sj_graph *g = NULL;
        assert_ok(sj_graph_create(ctx, &g), ctx);
        const char *d8[8] = {"1", "1", "1", "1", "1", "1", "1", "2"};
        sj_value x = sj_input(g, "big", 8, d8);
        sj_value y = sj_exp(g, x);
        sj_fn *fb = NULL;
        assert_ok(sj_fn_create(g, 1, &y, &fb), ctx);
        sj_graph_free(g);
        assert_error(sj_vmap(fb, NULL, NULL, NULL, &v), SJ_ERR_SHAPE, ctx, "more than 8 axes");
        sj_fn_free(fb);
    }

    /* At specialisation. */
    sj_fn *vb = NULL;
    assert_ok(sj_vmap(f, (int[]){0, 2}, NULL, "b", &vb), ctx);
    int64_t dx[2] = {3, 2}, dm[3] = {2, 2, 4};
    sj_compiled *c = NULL;
    assert_error(sj_fn_specialize(vb, 2, (int[]){2, 3}, (const int64_t *[]){dx, dm}, &c),
                 SJ_ERR_SHAPE, ctx, "inconsistent batch sizes");
    const char *msg = sj_ctx_last_error(ctx);
    assert_non_null(strstr(msg, "\"x\" has 3 items"));
    assert_non_null(strstr(msg, "\"m\" has 4"));
    int64_t dx1[1] = {3}, dm1[3] = {2, 2, 3};
    assert_error(sj_fn_specialize(vb, 2, (int[]){1, 3}, (const int64_t *[]){dx1, dm1}, &c),
                 SJ_ERR_SHAPE, ctx, "input \"x\" is declared [b, n] (rank 2) but given rank 1");
    int64_t dm2[2] = {2, 2};
    assert_error(sj_fn_specialize(vb, 2, (int[]){2, 2}, (const int64_t *[]){dx, dm2}, &c),
                 SJ_ERR_SHAPE, ctx, "input \"m\" is declared [n, n, b] (rank 3) but given rank 2");
    sj_fn *vn = NULL;
    assert_ok(sj_vmap(f, (int[]){0, -1}, (int[]){-1, 0}, NULL, &vn), ctx);
    int64_t dm3[2] = {2, 2};
    assert_error(sj_fn_specialize(vn, 2, (int[]){2, 2}, (const int64_t *[]){dx, dm3}, &c),
                 SJ_ERR_INVALID_ARGUMENT, ctx, "output 0 depends on a batched input");
    sj_fn *v3 = NULL;
    assert_ok(sj_vmap(f, (int[]){0, -1}, NULL, "4", &v3), ctx);
    assert_error(sj_fn_specialize(v3, 2, (int[]){2, 2}, (const int64_t *[]){dx, dm3}, &c),
                 SJ_ERR_SHAPE, ctx, "the batch dimension is 4");
    sj_fn_free(f);
    sj_fn_free(vb);
    sj_fn_free(vn);
    sj_fn_free(v3);
}

/* Linear algebra over a larger batch, natively against the evaluator, with
 * the matrix batched and the right-hand sides shared and the other way
 * round (the folded one-GEMM / one-solve layouts). */
static void test_native_linalg_batch(void **state)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value a = sj_input(g, "a", 2, (const char *[]){"n", "n"});
    sj_value x = sj_input(g, "x", 2, (const char *[]){"n", "k"});
    sj_value spd = sj_add(g, sj_matmul(g, a, sj_mT(g, a)), sj_eye(g, "n"));
    sj_value l = sj_cholesky(g, spd);
    sj_value outs[5] = {
        l,
        sj_solve(g, spd, x),
        sj_triangular_solve(g, l, x, SJ_SOLVE_TRANSPOSE),
        sj_add(g, sj_logdet(g, spd), sj_sum_all(g, sj_cholesky_solve(g, l, x))),
        sj_matmul(g, sj_mT(g, x), sj_matmul(g, a, x)),
    };
    sj_fn *f = NULL;
    assert_ok(sj_fn_create(g, 5, outs, &f), ctx);
    sj_graph_free(g);
    uint64_t rng = 16;
    const int n = 5, k = 3, nb = 40;
    for (int which = 0; which < 3; which++) {
        int axes[3][2] = {{0, -1}, {-1, 2}, {1, 0}};
        sj_fn *v = NULL;
        assert_ok(sj_vmap(f, axes[which], NULL, NULL, &v), ctx);
        int64_t da[3], dx[3];
        int ra = 2 + (axes[which][0] >= 0), rx = 2 + (axes[which][1] >= 0);
        for (int i = 0; i < ra; i++)
            da[i] = i == axes[which][0] ? nb : n;
        for (int i = 0, j = 0; i < rx; i++)
            dx[i] = i == axes[which][1] ? nb : (j++ == 0 ? n : k);
        val av = rand_val(&rng, ra, da, -1, 1), xv = rand_val(&rng, rx, dx, -1, 1);
        val in[2] = {av, xv}, y[5];
        int ny = ad_run(ctx, v, 2, in, y);
        double *o[5];
        for (int i = 0; i < ny; i++)
            o[i] = malloc(y[i].n * sizeof(double));
        assert_ok(sj_fn_call(v, 2, (int[]){ra, rx}, (const int64_t *[]){da, dx},
                             (const double *[]){av.data, xv.data}, o), ctx);
        for (int i = 0; i < ny; i++) {
            assert_close(o[i], y[i].data, y[i].n, 1e-10, 1e-12);
            free(o[i]);
        }
        ad_free_all(y, ny);
        val_free(&av);
        val_free(&xv);
        sj_fn_free(v);
    }
    sj_fn_free(f);
}

/* A batch of zero items: outputs with a zero-length batch axis. */
static void test_empty_batch(void **state)
{
    sj_fn *f = two_output_fn(0), *v = NULL;
    assert_ok(sj_vmap(f, (int[]){0, -1}, (int[]){1, 0}, NULL, &v), ctx);
    int64_t dx[2] = {0, 3}, dm[2] = {3, 3};
    double xd[1] = {0}, md[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, o0[1], o1[1];
    sj_compiled *c = NULL;
    assert_ok(sj_fn_specialize(v, 2, (int[]){2, 2}, (const int64_t *[]){dx, dm}, &c), ctx);
    int rank;
    int64_t d[SJ_MAX_RANK];
    assert_ok(sj_compiled_output_shape(c, 0, &rank, d), ctx);
    assert_int_equal(rank, 2);
    assert_int_equal(d[0], 3);
    assert_int_equal(d[1], 0);
    assert_ok(sj_compiled_eval(c, (const double *[]){xd, md}, (double *[]){o0, o1}), ctx);
    assert_ok(sj_fn_call(v, 2, (int[]){2, 2}, (const int64_t *[]){dx, dm},
                         (const double *[]){xd, md}, (double *[]){o0, o1}), ctx);
    sj_compiled_free(c);
    sj_fn_free(f);
    sj_fn_free(v);
}

/* A gather whose batched codes are out of range is still a domain error. */
static void test_batched_codes_out_of_range(void **state)
{
    sj_graph *g = NULL;
    assert_ok(sj_graph_create(ctx, &g), ctx);
    sj_value x = sj_input(g, "x", 1, (const char *[]){"3"});
    sj_value i = sj_input(g, "i", 1, (const char *[]){"2"});
    sj_value y = sj_gather(g, x, i);
    sj_fn *f = NULL, *v = NULL;
    assert_ok(sj_fn_create(g, 1, &y, &f), ctx);
    sj_graph_free(g);
    assert_ok(sj_vmap(f, NULL, NULL, NULL, &v), ctx);
    int64_t dx[2] = {2, 3}, di[2] = {2, 2};
    double xd[6] = {1, 2, 3, 4, 5, 6}, out[4];
    const double bad[3][4] = {{0, 3, 1, 2}, {0, 1, -1, 2}, {0, 1, 0.5, 2}};
    sj_compiled *c = NULL;
    assert_ok(sj_fn_specialize(v, 2, (int[]){2, 2}, (const int64_t *[]){dx, di}, &c), ctx);
    for (int k = 0; k < 3; k++) {
        assert_error(sj_compiled_eval(c, (const double *[]){xd, bad[k]}, (double *[]){out}),
                     SJ_ERR_DOMAIN, ctx, "index");
        assert_error(sj_fn_call(v, 2, (int[]){2, 2}, (const int64_t *[]){dx, di},
                                (const double *[]){xd, bad[k]}, (double *[]){out}),
                     SJ_ERR_DOMAIN, ctx, NULL);
    }
    const double good[4] = {2, 0, 1, 1};
    assert_ok(sj_compiled_eval(c, (const double *[]){xd, good}, (double *[]){out}), ctx);
    const double want[4] = {3, 1, 5, 5};
    assert_close(out, want, 4, 0, 0);
    sj_compiled_free(c);
    sj_fn_free(f);
    sj_fn_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_vmap_of_derivatives),
        cmocka_unit_test(test_grad_of_sum_of_vmap),
        cmocka_unit_test(test_jacobians_by_vmap),
        cmocka_unit_test(test_hessian_of_vmap),
        cmocka_unit_test(test_unbatched_work_stays_unbatched),
        cmocka_unit_test(test_signature_and_cache),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_native_linalg_batch),
        cmocka_unit_test(test_empty_batch),
        cmocka_unit_test(test_batched_codes_out_of_range),
    };
    return cmocka_run_group_tests_name("vmap_compose", tests, setup, teardown);
}
