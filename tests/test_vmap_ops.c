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
#include "op_cases.h"


static const ad_case cases[] = {
    OP_CASES
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
    op_cases_check_complete(cases, NCASE, "batching");
}

int main(void)
{
    return op_cases_run("vmap_ops", cases, NCASE, test_every_op_has_a_case, check_case);
}
