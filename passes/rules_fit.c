/* The fit op's rules (docs/fit.md): derivatives by the implicit function
 * theorem, batching as independent problems, and the derived sub-graphs.
 *
 * At the optimum ∇θ f(θ̂, x) = 0, so dθ̂ = −H⁻¹ ∂(∇θ f)/∂x · dx with H the
 * exact Hessian ∇²θ f at θ̂.  The jvp rule inlines the tangent of the
 * gradient graph with respect to the data (pass_jvp of the gradient) at θ̂
 * into the outer graph, and the Hessian graph, and solves; the vjp rule
 * solves first (λ = H⁻ᵀ θ̄) and inlines the vjp of the gradient graph with
 * cotangent −λ.  The inlined graphs are ordinary ops (and fits, for nested
 * fits), so the result can be differentiated and batched again: nothing is
 * unrolled.  The iteration count, the converged flag and theta0 have
 * derivative zero.  A fit that did not converge is differentiated as if θ̂
 * were the optimum.
 *
 * A batched fit (attr1) runs its problem per item: the rules vmap the
 * inlined sub-graphs over the items (theta and the batched data at axis 0).
 * Batching a fit keeps its (unbatched) problem and marks which inputs carry
 * the batch axis; batching a batched fit merges the two batch axes into one. */
#include <stdio.h>
#include <string.h>

#include "ir/alloc.h"
#include "ir/newton.h"
#include "ir/problem.h"
#include "passes/ad.h"
#include "passes/batch.h"
#include "passes/passes.h"
#include "passes/rebuild.h"

/* ---- derived sub-graphs --------------------------------------------------------- */

static sj_status clean(ir_graph **g, ir_err *err)
{
    sj_status st = pass_fill_problems(*g, 0, err);
    return st == SJ_OK ? pass_cleanup(g, err) : st;
}

/* Fills p's gradient, and its Hessian if `hessian` (or if p has no
 * curvature). */
static sj_status derive(ir_problem *p, int hessian, ir_err *err)
{
    int theta = 0;
    sj_status st = SJ_OK;
    if (!p->gradient) {
        ir_graph *g = NULL;
        st = pass_grad(p->objective, 0, 1, &theta, 0, &g, err);
        if (st == SJ_OK)
            st = clean(&g, err);
        if (st != SJ_OK) {
            ir_graph_free(g);
            return st;
        }
        p->gradient = g;
    }
    if (!p->hessian && (hessian || !p->curvature)) {
        ir_graph *h = NULL;
        st = pass_jacfwd(p->gradient, 0, 1, &theta, &h, err);
        if (st == SJ_OK)
            st = clean(&h, err);
        if (st != SJ_OK) {
            ir_graph_free(h);
            return st;
        }
        p->hessian = h;
    }
    return SJ_OK;
}

sj_status pass_fill_problems(ir_graph *g, int rewrite, ir_err *err)
{
    for (uint32_t k = 0; k < g->nproblem; k++) {
        ir_problem *p = &g->problem[k];
        sj_status st = SJ_OK;
        /* The structure rewrites (Woodbury, Kronecker, one-hot) on the
         * objective and curvature before the gradient and Hessian are
         * derived, as rt_fn_materialize does for the outer graph: a mixed
         * model's REML objective is then O(n + q³) per Newton step. */
        if (rewrite && !p->gradient) {
            int changed = 0;
            st = pass_structure(&p->objective, &changed, err);
            if (st == SJ_OK && p->curvature)
                st = pass_structure(&p->curvature, &changed, err);
            if (st != SJ_OK)
                return st;
        }
        st = clean(&p->objective, err);
        if (st == SJ_OK && p->curvature)
            st = clean(&p->curvature, err);
        if (st == SJ_OK)
            st = derive(p, 0, err);
        if (st != SJ_OK)
            return st;
    }
    return SJ_OK;
}

/* ---- helpers for the rules ------------------------------------------------------ */

/* The problem of fit node n of g with its gradient and Hessian; NULL (error
 * recorded on g) on failure. */
static ir_problem *problem_of(ir_graph *g, const ir_node *n)
{
    ir_problem *p = ir_graph_problem(g, n->attr[IR_FIT_PROBLEM]);
    if (!p) {
        ir_fail(&g->err, SJ_ERR_INTERNAL, "fit: problem %d is not in the graph",
                (int)n->attr[IR_FIT_PROBLEM]);
        return NULL;
    }
    ir_err e = {0};
    if (derive(p, 1, &e) != SJ_OK) {
        ir_fail(&g->err, e.status, "fit: deriving the gradient and Hessian: %s", e.msg);
        return NULL;
    }
    return p;
}


/* x[..., start:stop] on the last axis. */
static ir_val slice_last(ir_graph *g, ir_val x, int64_t start, int64_t stop)
{
    int64_t attr[3] = {ir_shape_of(g, x)->rank - 1, start, stop};
    return ir_add_node(g, IR_OP_SLICE, 1, &x, attr, 3, NULL, NULL);
}

/* x with a unit axis appended (last) or removed. */
static ir_val column(ir_graph *g, ir_val x)
{
    ir_shape s = ad_shape(g, x);
    s.dim[s.rank++] = 1;
    return ad_reshape(g, x, &s);
}
static ir_val uncolumn(ir_graph *g, ir_val x)
{
    ir_shape s = ad_shape(g, x);
    s.rank--;
    return ad_reshape(g, x, &s);
}

/* sub (a graph of the problem's per-item inputs, then extra inputs) made to
 * act on the fit node's inputs: vmapped over the items when the node is
 * batched, with theta, the batched data and the extra inputs i with
 * extra_bat[i] at axis 0.  Inlined into g with args; its outputs in outs.
 * sub is consumed. */
static sj_status apply(ir_graph *g, const ir_node *n, ir_graph *sub, const int *extra_bat,
                       const ir_val *args, ir_val *outs)
{
    ir_err e = {0};
    sj_status st = SJ_OK;
    if (n->attr[IR_FIT_BATCHED]) {
        int64_t nb = n->shape.dim[0];
        uint32_t ni = sub->ninput;
        int *in_axes = ir_malloc(ni * sizeof *in_axes);
        int *out_axes = ir_malloc((sub->noutput + 1) * sizeof *out_axes);
        ir_shape *outer = ir_malloc(ni * sizeof *outer);
        ir_graph *b = NULL;
        if (!in_axes || !out_axes || !outer) {
            st = ir_fail(&e, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        } else {
            for (uint32_t i = 0; i < ni; i++) {
                int batched = i == 0 ? 1
                              : i < (uint32_t)n->ninput ? ir_fit_data_batched(n, (int)i - 1)
                                                        : extra_bat[i - (uint32_t)n->ninput];
                in_axes[i] = batched ? 0 : -1;
                outer[i] = *ir_shape_of(sub, sub->input[i]);
                if (batched) {
                    memmove(outer[i].dim + 1, outer[i].dim, (size_t)outer[i].rank * sizeof outer[i].dim[0]);
                    outer[i].dim[0] = nb;
                    outer[i].rank++;
                }
            }
            for (uint32_t k = 0; k < sub->noutput; k++)
                out_axes[k] = 0;
            st = pass_vmap(sub, in_axes, out_axes, outer, nb, &b, &e);
            if (st == SJ_OK)
                st = pass_cleanup(&b, &e);
        }
        ir_free(in_axes);
        ir_free(out_axes);
        ir_free(outer);
        ir_graph_free(sub);
        sub = b;
    }
    if (st != SJ_OK) {
        ir_graph_free(sub);
        return ir_fail(&g->err, e.status, "fit: batching a derivative graph: %s", e.msg);
    }
    st = pass_inline(g, sub, args, outs);
    ir_graph_free(sub);
    return st;
}

/* The Hessian of n's problem at theta_hat: [k, k] ([B, k, k] batched). */
static ir_val hessian_at(ir_graph *g, const ir_node *n, const ir_graph *hess, ir_val that)
{
    ir_graph *h = ir_graph_copy(hess);
    ir_val *args = ir_arena_alloc(&g->arena, (size_t)n->ninput * sizeof *args);
    if (!h || !args) {
        ir_graph_free(h);
        ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "fit: out of memory");
        return IR_NONE;
    }
    args[0] = that;
    for (int i = 1; i < n->ninput; i++)
        args[i] = n->input[i];
    ir_val out = IR_NONE;
    apply(g, n, h, NULL, args, &out);
    return out;
}

/* ---- jvp and vjp ---------------------------------------------------------------- */

ir_val jvp_fit(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    int nd = n->ninput - 1, nwrt = 0;
    int *wrt = ir_arena_alloc(&g->arena, (size_t)(nd + 1) * sizeof *wrt);
    const char **names = ir_arena_alloc(&g->arena, (size_t)(nd + 1) * sizeof *names);
    ir_val *args = ir_arena_alloc(&g->arena, (size_t)(2 * nd + 2) * sizeof *args);
    if (!wrt || !names || !args) {
        ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "fit: out of memory");
        return IR_NONE;
    }
    for (int j = 0; j < nd; j++)
        if (t[j + 1] != IR_NONE) {
            char name[48];
            snprintf(name, sizeof name, "fit.tangent:%d", j);
            names[nwrt] = ir_arena_strdup(&g->arena, name);
            wrt[nwrt++] = j + 1;
        }
    if (nwrt == 0) /* theta0 has no effect on the optimum */
        return IR_NONE;
    ir_problem *p = problem_of(g, n);
    if (!p)
        return IR_NONE;
    const ir_graph *grad = p->gradient, *hess = p->hessian;
    int64_t k = ir_fit_nparam(n);
    ir_val that = slice_last(g, v, 0, k);
    ir_graph *J = NULL;
    ir_err e = {0};
    if (pass_jvp(grad, nwrt, wrt, names, 1, &J, &e) != SJ_OK ||
        pass_cleanup(&J, &e) != SJ_OK) {
        ir_graph_free(J);
        ir_fail(&g->err, e.status, "fit: tangent of the gradient: %s", e.msg);
        return IR_NONE;
    }
    args[0] = that;
    for (int i = 1; i <= nd; i++)
        args[i] = n->input[i];
    int *tbat = ir_arena_alloc(&g->arena, (size_t)nwrt * sizeof *tbat);
    if (!tbat) {
        ir_graph_free(J);
        ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "fit: out of memory");
        return IR_NONE;
    }
    for (int w = 0; w < nwrt; w++) {
        args[nd + 1 + w] = t[wrt[w]];
        tbat[w] = ir_fit_data_batched(n, wrt[w] - 1); /* a tangent is shaped as its input */
    }
    ir_val jt = IR_NONE;
    if (apply(g, n, J, tbat, args, &jt) != SJ_OK)
        return IR_NONE;
    ir_val h = hessian_at(g, n, hess, that);
    ir_val d = ad_neg(g, uncolumn(g, ir_binary(g, IR_OP_SOLVE, h, column(g, jt))));
    ir_shape zs = ad_shape(g, d);
    zs.dim[zs.rank - 1] = ir_newton_out_len(k, n->attr[IR_FIT_PREVIOUS] != 0) - k; /* counts, flag, previous iterate */
    ir_val parts[2] = {d, ad_fill(g, 0.0, &zs)};
    int64_t axis = zs.rank - 1;
    return ir_add_node(g, IR_OP_CONCAT, 2, parts, &axis, 1, NULL, NULL);
}

void vjp_fit(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    int nd = n->ninput - 1, nwrt = 0;
    for (int i = 0; i < n->ninput; i++)
        out[i] = IR_NONE;
    int *wrt = ir_arena_alloc(&g->arena, (size_t)(nd + 1) * sizeof *wrt);
    ir_val *args = ir_arena_alloc(&g->arena, (size_t)(nd + 2) * sizeof *args);
    ir_val *outs = ir_arena_alloc(&g->arena, (size_t)(nd + 1) * sizeof *outs);
    if (!wrt || !args || !outs) {
        ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "fit: out of memory");
        return;
    }
    for (int j = 0; j < nd; j++)
        if (need[j + 1])
            wrt[nwrt++] = j + 1;
    if (nwrt == 0)
        return;
    ir_problem *p = problem_of(g, n);
    if (!p)
        return;
    const ir_graph *grad = p->gradient, *hess = p->hessian;
    int64_t k = ir_fit_nparam(n);
    ir_val that = slice_last(g, v, 0, k);
    ir_val h = hessian_at(g, n, hess, that);
    ir_val lam = uncolumn(g, ir_binary(g, IR_OP_SOLVE, ad_mT(g, h),
                                       column(g, slice_last(g, ct, 0, k))));
    const char *name = "fit.cotangent";
    ir_graph *V = NULL;
    ir_err e = {0};
    if (pass_vjp(grad, nwrt, wrt, &name, &V, &e) != SJ_OK || pass_cleanup(&V, &e) != SJ_OK) {
        ir_graph_free(V);
        ir_fail(&g->err, e.status, "fit: cotangent of the gradient: %s", e.msg);
        return;
    }
    args[0] = that;
    for (int i = 1; i <= nd; i++)
        args[i] = n->input[i];
    args[nd + 1] = ad_neg(g, lam);
    static const int lam_batched = 1;
    if (apply(g, n, V, &lam_batched, args, outs) != SJ_OK)
        return;
    for (int w = 0; w < nwrt; w++) {
        int j = wrt[w] - 1;
        ir_val c = outs[w];
        if (n->attr[IR_FIT_BATCHED] && !ir_fit_data_batched(n, j))
            c = ad_sum(g, c, 1); /* shared data: the items' cotangents add up */
        out[wrt[w]] = c;
    }
}

/* ---- batching ------------------------------------------------------------------- */

/* x [nb, B, ...] as [nb·B, ...]. */
static ir_val merge_axes(ir_graph *g, ir_val x)
{
    ir_shape s = ad_shape(g, x), t = {.rank = s.rank - 1};
    t.dim[0] = s.dim[0] * s.dim[1];
    for (int i = 2; i < s.rank; i++)
        t.dim[i - 1] = s.dim[i];
    return ad_reshape(g, x, &t);
}

ir_val bat_fit(ir_graph *g, const ir_node *n, const ir_val *in, const int *bat, int64_t nb)
{
    int nd = n->ninput - 1;
    ir_val *x = ir_arena_alloc(&g->arena, (size_t)n->ninput * sizeof *x);
    if (!x) {
        ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "fit: out of memory");
        return IR_NONE;
    }
    int64_t attr[4] = {n->attr[IR_FIT_PROBLEM], 1, 0, n->attr[IR_FIT_PREVIOUS]};
    if (!n->attr[IR_FIT_BATCHED]) {
        x[0] = bat_operand(g, in, bat, 0, nb);
        for (int j = 0; j < nd; j++) {
            x[j + 1] = in[j + 1];
            if (bat[j + 1])
                attr[2] |= (int64_t)1 << j;
        }
        return ir_add_node(g, IR_OP_FIT, n->ninput, x, attr, 4, NULL, NULL);
    }
    /* Already batched over B items: every input batched at either level gets
     * both axes, [nb, B, ...], merged into one of nb·B items. */
    int64_t B = n->shape.dim[0];
    for (int i = 0; i < n->ninput; i++) {
        int inner = i == 0 || ir_fit_data_batched(n, i - 1), outer = bat[i];
        ir_val y = in[i];
        if (!inner && !outer) {
            x[i] = y;
            continue;
        }
        if (!outer)
            y = bat_expand(g, y, nb);
        else if (!inner)
            y = bat_insert_axis(g, y, 1, B);
        x[i] = merge_axes(g, y);
        if (i > 0)
            attr[2] |= (int64_t)1 << (i - 1);
    }
    ir_val r = ir_add_node(g, IR_OP_FIT, n->ninput, x, attr, 4, NULL, NULL);
    ir_shape s = {.rank = 3, .dim = {nb, B, n->shape.dim[1]}};
    return ad_reshape(g, r, &s);
}
