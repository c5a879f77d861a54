/* The public transforms: each makes a new sj_fn holding a copy of the base
 * graph, the chain of steps (rt_xform) so far plus its own, and the signature
 * that results.  The derivative passes themselves run at materialisation
 * (runtime/materialize.c), on concrete shapes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/alloc.h"
#include "passes/passes.h"
#include "runtime/fingerprint.h"
#include "runtime/transform.h"

static void xform_clear(rt_xform *x)
{
    ir_free(x->in_axes);
    ir_free(x->out_axes);
    ir_free(x->batch_dim);
    ir_free(x->wrt);
    for (int i = 0; i < x->nname; i++)
        ir_free(x->name[i]);
    ir_free(x->name);
    memset(x, 0, sizeof *x);
}

void rt_fn_free_xforms(sj_fn *fn)
{
    for (uint32_t i = 0; i < fn->nxform; i++)
        xform_clear(&fn->xform[i]);
    ir_free(fn->xform);
    ir_graph_free(fn->sig);
    fn->xform = NULL;
    fn->nxform = 0;
    fn->sig = NULL;
}

/* ---- signatures -------------------------------------------------------------- */

/* A signature graph with old's symbols and inputs. */
static ir_graph *sig_begin(const ir_graph *old)
{
    ir_graph *g = ir_graph_new();
    if (!g)
        return NULL;
    for (uint32_t i = 0; i < old->nsym; i++)
        ir_graph_symbol(g, old->sym[i]);
    for (uint32_t i = 0; i < old->ninput; i++)
        ir_add_input(g, old->input_name[i], ir_shape_of(old, old->input[i]));
    if (!ir_graph_ok(g)) {
        ir_graph_free(g);
        return NULL;
    }
    return g;
}

/* base, or base.2, base.3, ...: a name no input of g has. */
static char *unique_name(const ir_graph *g, const char *base)
{
    size_t len = strlen(base) + 24;
    char *s = ir_malloc(len);
    if (!s)
        return NULL;
    snprintf(s, len, "%s", base);
    for (int k = 2; ir_graph_find_input(g, s) >= 0; k++)
        snprintf(s, len, "%s.%d", base, k);
    return s;
}

static sj_status add_output(ir_graph *g, ir_val *outs, uint32_t *n, const ir_shape *s, ir_err *err)
{
    int64_t none = -1;
    ir_val v = ir_add_node(g, IR_OP_INPUT, 0, NULL, &none, 1, s, NULL);
    if (v == IR_NONE)
        return ir_fail(err, g->err.status, "%s", g->err.msg);
    outs[(*n)++] = v;
    return SJ_OK;
}

static sj_status jacobian_shape(const ir_graph *old, ir_val y, ir_val x, ir_shape *s, ir_err *err)
{
    const ir_shape *ys = ir_shape_of(old, y), *xs = ir_shape_of(old, x);
    if (ys->rank + xs->rank > IR_MAX_RANK) {
        char a[128], b[128];
        return ir_fail(err, SJ_ERR_SHAPE, "a Jacobian of an output %s with respect to an input %s "
                                          "would have more than %d axes",
                       ir_shape_str(old, ys, a, sizeof a), ir_shape_str(old, xs, b, sizeof b),
                       IR_MAX_RANK);
    }
    *s = *ys;
    for (int i = 0; i < xs->rank; i++)
        s->dim[s->rank++] = xs->dim[i];
    return SJ_OK;
}

/* s with a new axis of size dim at `at`. */
static ir_shape insert_dim(const ir_shape *s, int at, int64_t dim)
{
    ir_shape t = {.rank = s->rank + 1};
    for (int i = 0, k = 0; i < t.rank && i < IR_MAX_RANK; i++)
        t.dim[i] = i == at ? dim : s->dim[k++];
    return t;
}

/* The signature of a vmap step: each batched input and output gains the batch
 * dimension (x->batch_dim, or a fresh anonymous one) at its axis. */
static sj_status sig_vmap(const ir_graph *old, rt_xform *x, ir_graph **out, ir_err *err)
{
    ir_graph *g = ir_graph_new();
    ir_val *outs = ir_malloc((old->noutput ? old->noutput : 1) * sizeof *outs);
    sj_status st = SJ_OK;
    uint32_t n = 0;
    int64_t dim = 0;
    if (!g || !outs) {
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < old->nsym; i++)
        ir_graph_symbol(g, old->sym[i]);
    if (ir_graph_parse_dim(g, x->batch_dim, &dim) != 0) {
        st = ir_fail(err, g->err.status, "batch dimension: %s", g->err.msg);
        goto done;
    }
    for (uint32_t p = 0; p < old->ninput; p++) {
        const ir_shape *s = ir_shape_of(old, old->input[p]);
        ir_shape t = x->in_axes[p] >= 0 ? insert_dim(s, x->in_axes[p], dim) : *s;
        ir_add_input(g, old->input_name[p], &t);
    }
    for (uint32_t k = 0; k < old->noutput && st == SJ_OK; k++) {
        const ir_shape *s = ir_shape_of(old, old->output[k]);
        ir_shape t = x->out_axes[k] >= 0 ? insert_dim(s, x->out_axes[k], dim) : *s;
        st = add_output(g, outs, &n, &t, err);
    }
    if (st == SJ_OK && !ir_graph_ok(g))
        st = ir_fail(err, g->err.status, "%s", g->err.msg);
    if (st == SJ_OK && ir_graph_set_outputs(g, n, outs) != SJ_OK)
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == SJ_OK) {
        *out = g;
        g = NULL;
    }
done:
    ir_graph_free(g);
    ir_free(outs);
    return st;
}

/* The signature of step x applied to a function with signature old; fills in
 * x's new input names and ninner. */
static sj_status sig_apply(const ir_graph *old, rt_xform *x, ir_graph **out, ir_err *err)
{
    *out = NULL;
    x->ninner = old->ninput;
    if (x->kind == RT_XF_VMAP)
        return sig_vmap(old, x, out, err);
    ir_graph *g = sig_begin(old);
    size_t most = 2 * (size_t)old->noutput + (size_t)(x->nwrt + 1) * (old->noutput + x->nwrt + 1);
    ir_val *outs = ir_malloc(most * sizeof *outs);
    sj_status st = SJ_OK;
    uint32_t n = 0;
    if (!g || !outs) {
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    /* New inputs. */
    int nnew = x->kind == RT_XF_JVP ? x->nwrt : x->kind == RT_XF_VJP ? (int)old->noutput : 0;
    if (nnew) {
        x->name = ir_calloc((size_t)nnew, sizeof *x->name);
        if (!x->name) {
            st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
    }
    for (int j = 0; j < nnew; j++) {
        char base[300];
        const ir_shape *s;
        if (x->kind == RT_XF_JVP) {
            snprintf(base, sizeof base, "tangent:%s", old->input_name[x->wrt[j]]);
            s = ir_shape_of(old, old->input[x->wrt[j]]);
        } else {
            snprintf(base, sizeof base, "cotangent:%d", j);
            s = ir_shape_of(old, old->output[j]);
        }
        x->name[j] = unique_name(g, base);
        x->nname = j + 1;
        if (!x->name[j] || ir_add_input(g, x->name[j], s) == IR_NONE) {
            st = ir_fail(err, x->name[j] ? g->err.status : SJ_ERR_OUT_OF_MEMORY, "%s",
                         x->name[j] ? g->err.msg : "out of memory");
            goto done;
        }
    }
    /* Outputs. */
    switch (x->kind) {
    case RT_XF_JVP:
        for (int pass = x->flag ? 1 : 0; pass < 2 && st == SJ_OK; pass++)
            for (uint32_t k = 0; k < old->noutput && st == SJ_OK; k++)
                st = add_output(g, outs, &n, ir_shape_of(old, old->output[k]), err);
        break;
    case RT_XF_VJP:
    case RT_XF_GRAD:
        if (x->kind == RT_XF_GRAD && x->flag)
            st = add_output(g, outs, &n, ir_shape_of(old, old->output[x->output]), err);
        for (int j = 0; j < x->nwrt && st == SJ_OK; j++)
            st = add_output(g, outs, &n, ir_shape_of(old, old->input[x->wrt[j]]), err);
        break;
    case RT_XF_JACFWD:
    case RT_XF_JACREV: {
        int k0 = x->output < 0 ? 0 : x->output;
        int k1 = x->output < 0 ? (int)old->noutput : x->output + 1;
        for (int k = k0; k < k1 && st == SJ_OK; k++)
            for (int j = 0; j < x->nwrt && st == SJ_OK; j++) {
                ir_shape s;
                st = jacobian_shape(old, old->output[k], old->input[x->wrt[j]], &s, err);
                if (st == SJ_OK)
                    st = add_output(g, outs, &n, &s, err);
            }
        break;
    }
    case RT_XF_VMAP: /* sig_vmap */
        break;
    }
    if (st == SJ_OK && ir_graph_set_outputs(g, n, outs) != SJ_OK)
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == SJ_OK) {
        *out = g;
        g = NULL;
    }
done:
    ir_graph_free(g);
    ir_free(outs);
    return st;
}

/* ---- making transformed functions ------------------------------------------------ */

/* Resolves (nwrt, wrt) against sig: NULL/0 = every input; checks range and
 * repeats.  *res is malloc'd. */
static sj_status resolve_wrt(const ir_graph *sig, int nwrt, const int *wrt, int **res, int *nres,
                             ir_err *err)
{
    *res = NULL;
    if (nwrt < 0 || (nwrt > 0 && !wrt))
        return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "nwrt is %d%s", nwrt,
                       nwrt > 0 ? " but wrt is NULL" : "");
    int all = nwrt == 0;
    int n = all ? (int)sig->ninput : nwrt;
    int *r = ir_malloc((size_t)(n ? n : 1) * sizeof *r);
    if (!r)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
    for (int j = 0; j < n; j++) {
        r[j] = all ? j : wrt[j];
        if (r[j] < 0 || (uint32_t)r[j] >= sig->ninput) {
            ir_free(r);
            return ir_fail(err, SJ_ERR_INVALID_ARGUMENT,
                           "wrt[%d] = %d is not an input (the function has %u inputs)", j, wrt[j],
                           sig->ninput);
        }
        for (int i = 0; i < j; i++)
            if (r[i] == r[j]) {
                int twice = r[j];
                ir_free(r);
                return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "input %d (\"%s\") is listed twice in wrt",
                               twice, sig->input_name[twice]);
            }
    }
    *res = r;
    *nres = n;
    return SJ_OK;
}

static sj_status check_output(const ir_graph *sig, int output, int scalar, ir_err *err)
{
    if (output < 0 || (uint32_t)output >= sig->noutput)
        return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "output %d is out of range (%u outputs)",
                       output, sig->noutput);
    const ir_shape *s = ir_shape_of(sig, sig->output[output]);
    if (scalar && s->rank != 0) {
        char a[128];
        return ir_fail(err, SJ_ERR_SHAPE, "output %d has shape %s; only a scalar (shape []) output "
                                          "can be differentiated this way",
                       output, ir_shape_str(sig, s, a, sizeof a));
    }
    return SJ_OK;
}

/* A copy of n ints (NULL for NULL). */
static int *dup_ints(const int *a, int n)
{
    if (!a)
        return NULL;
    int *b = ir_malloc((size_t)(n ? n : 1) * sizeof *b);
    if (b)
        memcpy(b, a, (size_t)n * sizeof *b);
    return b;
}

/* Appends a deep copy of fn's steps to f's (f->xform has room for them). */
static sj_status copy_chain(sj_fn *f, const sj_fn *fn, ir_err *err)
{
    for (uint32_t i = 0; i < fn->nxform; i++) {
        const rt_xform *a = &fn->xform[i];
        rt_xform *b = &f->xform[f->nxform++];
        *b = *a;
        b->wrt = ir_malloc((size_t)(a->nwrt ? a->nwrt : 1) * sizeof *b->wrt);
        b->name = ir_calloc((size_t)(a->nname ? a->nname : 1), sizeof *b->name);
        b->nname = 0;
        b->in_axes = dup_ints(a->in_axes, (int)a->ninner);
        b->out_axes = dup_ints(a->out_axes, a->nout_axes);
        b->batch_dim = a->batch_dim ? ir_strdup(a->batch_dim) : NULL;
        if (!b->wrt || !b->name || (a->in_axes && !b->in_axes) ||
            (a->out_axes && !b->out_axes) || (a->batch_dim && !b->batch_dim))
            return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(b->wrt, a->wrt, (size_t)a->nwrt * sizeof *b->wrt);
        for (int j = 0; j < a->nname; j++) {
            if (!(b->name[j] = ir_strdup(a->name[j])))
                return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
            b->nname = j + 1;
        }
    }
    return SJ_OK;
}

typedef struct step_spec {
    rt_xform_kind kind;
    int output, flag;
} step_spec;

/* A new function: fn's base graph and chain, plus steps (each with the same
 * wrt positions, which every step keeps valid since steps only append
 * inputs). */
static sj_status derive(sj_fn *fn, const char *who, int output, int need_scalar,
                        const step_spec *steps, int nsteps, int nwrt, const int *wrt,
                        sj_fn **out)
{
    if (!rt_fn_valid(fn))
        return SJ_ERR_INVALID_ARGUMENT;
    sj_ctx *ctx = fn->ctx;
    if (!out)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "%s: out is NULL", who);
    *out = NULL;
    ir_err err = {0};
    const ir_graph *sig = rt_fn_sig(fn);
    int *w = NULL, nw = 0;
    if (resolve_wrt(sig, nwrt, wrt, &w, &nw, &err) != SJ_OK)
        return fe_ctx_failf(ctx, err.status, "%s: %s", who, err.msg);
    if (output >= 0 && check_output(sig, output, need_scalar, &err) != SJ_OK) {
        ir_free(w);
        return fe_ctx_failf(ctx, err.status, "%s: %s", who, err.msg);
    }
    sj_fn *f = ir_calloc(1, sizeof *f);
    if (!f) {
        ir_free(w);
        return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", who);
    }
    f->magic = FE_MAGIC_FN;
    f->ctx = ctx;
    atomic_init(&f->rec, NULL);
    f->ir = ir_graph_copy(fn->ir);
    f->xform = ir_calloc(fn->nxform + (uint32_t)nsteps, sizeof *f->xform);
    sj_status st = SJ_OK;
    if (!f->ir || !f->xform) {
        st = ir_fail(&err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    if ((st = copy_chain(f, fn, &err)) != SJ_OK)
        goto fail;
    const ir_graph *cur = sig;
    ir_graph *owned = NULL;
    for (int i = 0; i < nsteps; i++) {
        rt_xform *x = &f->xform[f->nxform++];
        x->kind = steps[i].kind;
        x->output = steps[i].output;
        x->flag = steps[i].flag;
        x->nwrt = nw;
        x->wrt = ir_malloc((size_t)(nw ? nw : 1) * sizeof *x->wrt);
        if (!x->wrt) {
            st = ir_fail(&err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
            ir_graph_free(owned);
            goto fail;
        }
        memcpy(x->wrt, w, (size_t)nw * sizeof *w);
        ir_graph *next = NULL;
        st = sig_apply(cur, x, &next, &err);
        ir_graph_free(owned);
        if (st != SJ_OK)
            goto fail;
        cur = owned = next;
    }
    f->sig = owned;
    f->fingerprint = rt_fn_fingerprint(f);
    ir_free(w);
    *out = f;
    return SJ_OK;
fail:
    ir_free(w);
    rt_fn_free_xforms(f);
    ir_graph_free(f->ir);
    ir_free(f);
    return fe_ctx_failf(ctx, st, "%s: %s", who, err.msg);
}

sj_status sj_fn_input_indices(const sj_fn *fn, int n, const char *const *names, int *indices)
{
    if (!rt_fn_valid(fn))
        return SJ_ERR_INVALID_ARGUMENT;
    if (n < 0 || (n > 0 && (!names || !indices)))
        return fe_ctx_failf(fn->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_fn_input_indices: n is %d with %s NULL", n, names ? "indices" : "names");
    for (int i = 0; i < n; i++) {
        sj_status st = sj_fn_input_index(fn, names[i], &indices[i]);
        if (st != SJ_OK)
            return st;
    }
    return SJ_OK;
}

sj_status sj_jvp(sj_fn *fn, int nwrt, const int *wrt, sj_fn **out)
{
    step_spec s[] = {{RT_XF_JVP, -1, 0}};
    return derive(fn, "sj_jvp", -1, 0, s, 1, nwrt, wrt, out);
}

sj_status sj_vjp(sj_fn *fn, int nwrt, const int *wrt, sj_fn **out)
{
    step_spec s[] = {{RT_XF_VJP, -1, 0}};
    return derive(fn, "sj_vjp", -1, 0, s, 1, nwrt, wrt, out);
}

static sj_status output_given(sj_fn *fn, int output, const char *who)
{
    if (rt_fn_valid(fn) && output < 0)
        return fe_ctx_failf(fn->ctx, SJ_ERR_INVALID_ARGUMENT, "%s: output %d is out of range", who,
                            output);
    return SJ_OK;
}

#define CHECK_OUTPUT(who)                                                                  \
    do {                                                                                   \
        sj_status st_ = output_given(fn, output, who);                                     \
        if (st_ != SJ_OK)                                                                  \
            return st_;                                                                    \
    } while (0)

sj_status sj_grad(sj_fn *fn, int output, int nwrt, const int *wrt, sj_fn **out)
{
    CHECK_OUTPUT("sj_grad");
    step_spec s[] = {{RT_XF_GRAD, output, 0}};
    return derive(fn, "sj_grad", output, 1, s, 1, nwrt, wrt, out);
}

sj_status sj_value_and_grad(sj_fn *fn, int output, int nwrt, const int *wrt, sj_fn **out)
{
    CHECK_OUTPUT("sj_value_and_grad");
    step_spec s[] = {{RT_XF_GRAD, output, 1}};
    return derive(fn, "sj_value_and_grad", output, 1, s, 1, nwrt, wrt, out);
}

sj_status sj_hvp(sj_fn *fn, int output, int nwrt, const int *wrt, sj_fn **out)
{
    CHECK_OUTPUT("sj_hvp");
    step_spec s[] = {{RT_XF_GRAD, output, 0}, {RT_XF_JVP, -1, 1}};
    return derive(fn, "sj_hvp", output, 1, s, 2, nwrt, wrt, out);
}

sj_status sj_jacfwd(sj_fn *fn, int output, int nwrt, const int *wrt, sj_fn **out)
{
    CHECK_OUTPUT("sj_jacfwd");
    step_spec s[] = {{RT_XF_JACFWD, output, 0}};
    return derive(fn, "sj_jacfwd", output, 0, s, 1, nwrt, wrt, out);
}

sj_status sj_jacrev(sj_fn *fn, int output, int nwrt, const int *wrt, sj_fn **out)
{
    CHECK_OUTPUT("sj_jacrev");
    step_spec s[] = {{RT_XF_JACREV, output, 0}};
    return derive(fn, "sj_jacrev", output, 0, s, 1, nwrt, wrt, out);
}

sj_status sj_hessian(sj_fn *fn, int output, int nwrt, const int *wrt, sj_fn **out)
{
    CHECK_OUTPUT("sj_hessian");
    step_spec s[] = {{RT_XF_GRAD, output, 0}, {RT_XF_JACFWD, -1, 0}};
    return derive(fn, "sj_hessian", output, 1, s, 2, nwrt, wrt, out);
}

/* ---- vmap ---------------------------------------------------------------------------- */

/* Checks the axes against sig (the function vmap applies to). */
static sj_status check_axes(const ir_graph *sig, const int *in_axes, const int *out_axes,
                            ir_err *err)
{
    int nbatched = 0;
    for (uint32_t p = 0; p < sig->ninput; p++) {
        int a = in_axes ? in_axes[p] : 0, r = ir_shape_of(sig, sig->input[p])->rank;
        if (a < -1 || a > r)
            return ir_fail(err, SJ_ERR_INVALID_ARGUMENT,
                           "in_axes[%u] = %d is not -1 or an axis 0..%d of input \"%s\" (rank %d)",
                           p, a, r, sig->input_name[p], r);
        if (a >= 0 && r + 1 > IR_MAX_RANK)
            return ir_fail(err, SJ_ERR_SHAPE,
                           "input \"%s\" has rank %d: with the batch axis it would have more than "
                           "%d axes", sig->input_name[p], r, IR_MAX_RANK);
        nbatched += a >= 0;
    }
    if (!nbatched)
        return ir_fail(err, SJ_ERR_INVALID_ARGUMENT,
                       "no input is batched (every in_axes entry is -1): the batch size is unknown");
    for (uint32_t k = 0; k < sig->noutput; k++) {
        int a = out_axes ? out_axes[k] : 0, r = ir_shape_of(sig, sig->output[k])->rank;
        if (a < -1 || a > r)
            return ir_fail(err, SJ_ERR_INVALID_ARGUMENT,
                           "out_axes[%u] = %d is not -1 or an axis 0..%d of output %u (rank %d)",
                           k, a, r, k, r);
        if (a >= 0 && r + 1 > IR_MAX_RANK)
            return ir_fail(err, SJ_ERR_SHAPE,
                           "output %u has rank %d: with the batch axis it would have more than %d "
                           "axes", k, r, IR_MAX_RANK);
    }
    return SJ_OK;
}

sj_status sj_vmap(sj_fn *fn, const int *in_axes, const int *out_axes, const char *batch_dim,
                  sj_fn **out)
{
    static const char who[] = "sj_vmap";
    if (!rt_fn_valid(fn))
        return SJ_ERR_INVALID_ARGUMENT;
    sj_ctx *ctx = fn->ctx;
    if (!out)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "%s: out is NULL", who);
    *out = NULL;
    ir_err err = {0};
    const ir_graph *sig = rt_fn_sig(fn);
    if (check_axes(sig, in_axes, out_axes, &err) != SJ_OK)
        return fe_ctx_failf(ctx, err.status, "%s: %s", who, err.msg);
    sj_fn *f = ir_calloc(1, sizeof *f);
    if (!f)
        return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", who);
    f->magic = FE_MAGIC_FN;
    f->ctx = ctx;
    atomic_init(&f->rec, NULL);
    f->ir = ir_graph_copy(fn->ir);
    f->xform = ir_calloc(fn->nxform + 1, sizeof *f->xform);
    sj_status st = SJ_OK;
    if (!f->ir || !f->xform) {
        st = ir_fail(&err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    if ((st = copy_chain(f, fn, &err)) != SJ_OK)
        goto fail;
    rt_xform *x = &f->xform[f->nxform++];
    x->kind = RT_XF_VMAP;
    x->output = -1;
    x->nout_axes = (int)sig->noutput;
    x->wrt = ir_malloc(sizeof *x->wrt);
    x->in_axes = ir_malloc((sig->ninput ? sig->ninput : 1) * sizeof *x->in_axes);
    x->out_axes = ir_malloc((sig->noutput ? sig->noutput : 1) * sizeof *x->out_axes);
    x->batch_dim = batch_dim && strcmp(batch_dim, "?") != 0 ? ir_strdup(batch_dim) : NULL;
    if (!x->wrt || !x->in_axes || !x->out_axes || (batch_dim && strcmp(batch_dim, "?") != 0 &&
                                                   !x->batch_dim)) {
        st = ir_fail(&err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    for (uint32_t p = 0; p < sig->ninput; p++)
        x->in_axes[p] = in_axes ? in_axes[p] : 0;
    for (uint32_t k = 0; k < sig->noutput; k++)
        x->out_axes[k] = out_axes ? out_axes[k] : 0;
    ir_graph *next = NULL;
    if ((st = sig_apply(sig, x, &next, &err)) != SJ_OK)
        goto fail;
    f->sig = next;
    f->fingerprint = rt_fn_fingerprint(f);
    *out = f;
    return SJ_OK;
fail:
    rt_fn_free_xforms(f);
    ir_graph_free(f->ir);
    ir_free(f);
    return fe_ctx_failf(ctx, st, "%s: %s", who, err.msg);
}

sj_status rt_xform_inner_shapes(const rt_xform *x, const ir_shape *shapes,
                                const char *const *names, ir_shape *inner, ir_err *err)
{
    if (x->kind != RT_XF_VMAP) {
        for (uint32_t p = 0; p < x->ninner; p++)
            inner[p] = shapes[p];
        return SJ_OK;
    }
    int first = -1;
    for (uint32_t p = 0; p < x->ninner; p++) {
        int a = x->in_axes[p];
        inner[p] = shapes[p];
        if (a < 0)
            continue;
        const ir_shape *s = &shapes[p];
        if (a >= s->rank) {
            char b[128];
            return ir_fail(err, SJ_ERR_SHAPE,
                           "vmap: input \"%s\" is given shape %s, which has no batch axis %d",
                           names[p], ir_shape_str(NULL, s, b, sizeof b), a);
        }
        if (first < 0) {
            first = (int)p;
        } else if (s->dim[a] != shapes[first].dim[x->in_axes[first]]) {
            char b0[128], b1[128];
            return ir_fail(err, SJ_ERR_SHAPE,
                           "vmap: inconsistent batch sizes: input \"%s\" has %" PRId64
                           " items (axis %d of %s) but input \"%s\" has %" PRId64
                           " (axis %d of %s)", names[first],
                           shapes[first].dim[x->in_axes[first]], x->in_axes[first],
                           ir_shape_str(NULL, &shapes[first], b0, sizeof b0), names[p], s->dim[a],
                           a, ir_shape_str(NULL, s, b1, sizeof b1));
        }
        inner[p].rank--;
        for (int k = a; k < inner[p].rank; k++)
            inner[p].dim[k] = s->dim[k + 1];
    }
    /* A batch dimension given as a size fixes the batch size. */
    const char *bd = x->batch_dim;
    if (first >= 0 && bd && bd[0] >= '0' && bd[0] <= '9') {
        int64_t want = strtoll(bd, NULL, 10), got = shapes[first].dim[x->in_axes[first]];
        if (want != got)
            return ir_fail(err, SJ_ERR_SHAPE,
                           "vmap: the batch dimension is %s but input \"%s\" has %" PRId64
                           " items (axis %d)", bd, names[first], got, x->in_axes[first]);
    }
    return SJ_OK;
}

/* ---- applying a step at materialisation ------------------------------------------- */

sj_status rt_xform_apply(const rt_xform *x, const ir_graph *g, const ir_shape *shapes,
                         ir_graph **out, ir_err *err)
{
    sj_status st;
    const char *const *names = (const char *const *)x->name;
    switch (x->kind) {
    case RT_XF_JVP:
        st = pass_jvp(g, x->nwrt, x->wrt, names, x->flag, out, err);
        break;
    case RT_XF_VJP:
        st = pass_vjp(g, x->nwrt, x->wrt, names, out, err);
        break;
    case RT_XF_GRAD:
        st = pass_grad(g, x->output, x->nwrt, x->wrt, x->flag, out, err);
        break;
    case RT_XF_JACFWD:
        st = pass_jacfwd(g, x->output, x->nwrt, x->wrt, out, err);
        break;
    case RT_XF_JACREV:
        st = pass_jacrev(g, x->output, x->nwrt, x->wrt, out, err);
        break;
    case RT_XF_VMAP: {
        int64_t nb = 0;
        for (uint32_t p = 0; p < x->ninner; p++)
            if (x->in_axes[p] >= 0) {
                nb = shapes[p].dim[x->in_axes[p]];
                break;
            }
        st = pass_vmap(g, x->in_axes, x->out_axes, shapes, nb, out, err);
        break;
    }
    default:
        st = ir_fail(err, SJ_ERR_INTERNAL, "unknown transform %d", (int)x->kind);
    }
    if (st != SJ_OK)
        return st;
    /* The added inputs take the concrete shapes of what they belong to. */
    const ir_graph *r = *out;
    for (uint32_t p = x->ninner; p < r->ninput; p++) {
        const ir_shape *want = ir_shape_of(r, r->input[p]);
        if (!ir_shape_equal(want, &shapes[p])) {
            char a[128], b[128];
            st = ir_fail(err, SJ_ERR_SHAPE, "input \"%s\" must have shape %s here, given %s",
                         r->input_name[p], ir_shape_str(r, want, a, sizeof a),
                         ir_shape_str(NULL, &shapes[p], b, sizeof b));
            ir_graph_free(*out);
            *out = NULL;
            return st;
        }
    }
    return SJ_OK;
}
