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
#include "op_cases.h"

/* Cases leave tolerances they do not set at zero (the defaults). */

static const ad_case cases[] = {OP_CASES};
#define NCASE ((int)(sizeof cases / sizeof cases[0]))

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
    op_cases_check_complete(cases, NCASE, "derivative");
}

int main(void)
{
    return op_cases_run("ad_ops", cases, NCASE, test_every_op_has_a_case, check_case);
}
