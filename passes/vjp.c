/* Reverse mode: a walker over the vjp rule table that knows no op.
 *
 * The new graph starts as a copy of the primal graph (primal values keep
 * their ids, so the forward values the rules need are there), then the
 * cotangents are seeded at the outputs and, in reverse topological order,
 * each active node with a nonzero cotangent has its rule emit the cotangents
 * of its active inputs, which are summed per node.  A node is active when it
 * depends on an input being differentiated; rules are told which inputs are
 * (need[]), so no cotangent is made for constants. */
#include <string.h>

#include "ir/alloc.h"
#include "passes/ad.h"
#include "passes/passes.h"

typedef struct sweep {
    ir_graph *g;
    uint32_t nprim;
    unsigned char *active; /* per primal node */
    ir_val *ct;            /* per primal node; IR_NONE = zero */
    int *need;             /* per input of a node */
    ir_val *contrib;
} sweep;

static sj_status sweep_init(sweep *s, const ir_graph *in, int nwrt, const int *wrt, ir_err *err)
{
    memset(s, 0, sizeof *s);
    for (int j = 0; j < nwrt; j++)
        if (wrt[j] < 0 || (uint32_t)wrt[j] >= in->ninput)
            return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "input %d is out of range (%u inputs)",
                           wrt[j], in->ninput);
    int most = 1;
    for (uint32_t v = 0; v < in->nnode; v++)
        if (in->node[v].ninput > most)
            most = in->node[v].ninput;
    s->nprim = in->nnode;
    size_t np = s->nprim ? s->nprim : 1;
    s->g = ir_graph_copy(in);
    s->active = ir_calloc(np, 1);
    s->ct = ir_malloc(np * sizeof *s->ct);
    s->need = ir_malloc((size_t)most * sizeof *s->need);
    s->contrib = ir_malloc((size_t)most * sizeof *s->contrib);
    if (!s->g || !s->active || !s->ct || !s->need || !s->contrib)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "reverse mode: out of memory");
    for (int j = 0; j < nwrt; j++)
        s->active[in->input[wrt[j]]] = 1;
    for (uint32_t v = 0; v < s->nprim; v++) {
        const ir_node *n = &in->node[v];
        for (int i = 0; i < n->ninput && !s->active[v]; i++)
            s->active[v] = s->active[n->input[i]];
    }
    return SJ_OK;
}

static void sweep_free(sweep *s)
{
    ir_graph_free(s->g);
    ir_free(s->active);
    ir_free(s->ct);
    ir_free(s->need);
    ir_free(s->contrib);
}

static void clear_ct(sweep *s)
{
    for (uint32_t v = 0; v < s->nprim; v++)
        s->ct[v] = IR_NONE;
}

/* Adds c to the cotangent of primal value v, if v is active. */
static void seed(sweep *s, ir_val v, ir_val c)
{
    if (s->active[v])
        s->ct[v] = ad_add(s->g, s->ct[v], c);
}

/* Propagates the seeded cotangents to every active node. */
static sj_status vjp_sweep(sweep *s, ir_err *err)
{
    ir_graph *g = s->g;
    for (uint32_t v = s->nprim; v-- > 0;) {
        ir_node n = g->node[v];
        if (s->ct[v] == IR_NONE || !s->active[v] || ir_op_kind(n.op) == IR_KIND_SOURCE)
            continue;
        for (int i = 0; i < n.ninput; i++) {
            s->need[i] = s->active[n.input[i]];
            s->contrib[i] = IR_NONE;
        }
        ad_vjp_rules[n.op](g, &n, (ir_val)v, s->ct[v], s->need, s->contrib);
        for (int i = 0; i < n.ninput && ir_graph_ok(g); i++) {
            ir_val c = s->contrib[i], x = n.input[i];
            if (!s->need[i] || c == IR_NONE)
                continue;
            if (!ir_shape_equal(ir_shape_of(g, c), ir_shape_of(g, x))) {
                char a[128], b[128];
                return ir_fail(err, SJ_ERR_INTERNAL,
                               "vjp rule of %s (value %%%u) made a cotangent of shape %s for "
                               "input %d of shape %s", ir_op_name(n.op), v,
                               ir_shape_str(g, ir_shape_of(g, c), a, sizeof a), i,
                               ir_shape_str(g, ir_shape_of(g, x), b, sizeof b));
            }
            s->ct[x] = ad_add(g, s->ct[x], c);
        }
        if (!ir_graph_ok(g))
            return ir_fail(err, g->err.status, "vjp of %s (value %%%u): %s", ir_op_name(n.op), v,
                           g->err.msg);
    }
    return SJ_OK;
}

/* Sets the outputs and hands the graph over. */
static sj_status finish(sweep *s, ir_val *outs, uint32_t nout, ir_graph **out, ir_err *err)
{
    ir_graph *g = s->g;
    for (uint32_t k = 0; k < nout && ir_graph_ok(g); k++)
        if (outs[k] == IR_NONE)
            ir_fail(&g->err, SJ_ERR_INTERNAL, "output %u was not made", k);
    if (!ir_graph_ok(g) || ir_graph_set_outputs(g, nout, outs) != SJ_OK)
        return ir_fail(err, g->err.status, "%s", g->err.msg);
    *out = g;
    s->g = NULL;
    return SJ_OK;
}

/* The cotangent of input position p (zeros if it got none). */
static ir_val input_ct(sweep *s, const ir_graph *in, int p)
{
    ir_val x = in->input[p];
    return s->ct[x] != IR_NONE ? s->ct[x] : ad_zeros_like(s->g, x);
}

sj_status pass_vjp(const ir_graph *in, int nwrt, const int *wrt, const char *const *names,
                   ir_graph **out, ir_err *err)
{
    *out = NULL;
    sweep s;
    ir_val *outs = NULL;
    sj_status st = sweep_init(&s, in, nwrt, wrt, err);
    if (st != SJ_OK)
        goto done;
    clear_ct(&s);
    for (uint32_t k = 0; k < in->noutput; k++) {
        ir_shape ys = ad_shape(in, in->output[k]);
        ir_val c = ir_add_input(s.g, names[k], &ys);
        if (c == IR_NONE) {
            st = ir_fail(err, s.g->err.status, "vjp: %s", s.g->err.msg);
            goto done;
        }
        seed(&s, in->output[k], c);
    }
    if ((st = vjp_sweep(&s, err)) != SJ_OK)
        goto done;
    outs = ir_malloc(((size_t)nwrt + 1) * sizeof *outs);
    if (!outs) {
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "vjp: out of memory");
        goto done;
    }
    for (int j = 0; j < nwrt; j++)
        outs[j] = input_ct(&s, in, wrt[j]);
    st = finish(&s, outs, (uint32_t)nwrt, out, err);
done:
    sweep_free(&s);
    ir_free(outs);
    return st;
}

sj_status pass_grad(const ir_graph *in, int output, int nwrt, const int *wrt, int with_value,
                    ir_graph **out, ir_err *err)
{
    *out = NULL;
    if (output < 0 || (uint32_t)output >= in->noutput)
        return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "grad: output %d is out of range (%u outputs)",
                       output, in->noutput);
    ir_val y = in->output[output];
    ir_shape ys = ad_shape(in, y);
    if (ir_shape_numel(&ys) != 1) {
        char a[128];
        return ir_fail(err, SJ_ERR_SHAPE, "grad: output %d has shape %s, not a scalar", output,
                       ir_shape_str(in, &ys, a, sizeof a));
    }
    sweep s;
    ir_val *outs = NULL;
    sj_status st = sweep_init(&s, in, nwrt, wrt, err);
    if (st != SJ_OK)
        goto done;
    clear_ct(&s);
    seed(&s, y, ad_fill(s.g, 1.0, &ys));
    if ((st = vjp_sweep(&s, err)) != SJ_OK)
        goto done;
    outs = ir_malloc(((size_t)nwrt + 2) * sizeof *outs);
    if (!outs) {
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "grad: out of memory");
        goto done;
    }
    uint32_t k = 0;
    if (with_value)
        outs[k++] = y;
    for (int j = 0; j < nwrt; j++)
        outs[k++] = input_ct(&s, in, wrt[j]);
    st = finish(&s, outs, k, out, err);
done:
    sweep_free(&s);
    ir_free(outs);
    return st;
}

sj_status pass_jacrev(const ir_graph *in, int output, int nwrt, const int *wrt, ir_graph **out,
                      ir_err *err)
{
    *out = NULL;
    if (output >= (int)in->noutput)
        return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "jacrev: output %d is out of range", output);
    int k0 = output < 0 ? 0 : output, k1 = output < 0 ? (int)in->noutput : output + 1;
    sweep s;
    ir_val *outs = NULL, *rows = NULL;
    sj_status st = sweep_init(&s, in, nwrt, wrt, err);
    if (st != SJ_OK)
        goto done;
    outs = ir_malloc(((size_t)(k1 - k0) * (size_t)nwrt + 1) * sizeof *outs);
    if (!outs) {
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "jacrev: out of memory");
        goto done;
    }
    for (int k = k0; k < k1; k++) {
        ir_val y = in->output[k];
        ir_shape ys = ad_shape(in, y);
        size_t ny = ir_shape_numel(&ys);
        ir_free(rows);
        rows = ir_malloc(((size_t)nwrt * ny + 1) * sizeof *rows);
        if (!rows) {
            st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "jacrev: out of memory");
            goto done;
        }
        for (size_t i = 0; i < ny; i++) {
            clear_ct(&s);
            seed(&s, y, ad_basis(s.g, &ys, i));
            if ((st = vjp_sweep(&s, err)) != SJ_OK)
                goto done;
            for (int w = 0; w < nwrt; w++)
                rows[(size_t)w * ny + i] = s.ct[in->input[wrt[w]]];
        }
        for (int w = 0; w < nwrt; w++) {
            ir_shape xs = ad_shape(in, in->input[wrt[w]]);
            outs[(size_t)(k - k0) * (size_t)nwrt + (size_t)w] =
                ad_stack_jacobian(s.g, (int)ny, rows + (size_t)w * ny, &ys, &xs, 0);
        }
        if (!ir_graph_ok(s.g)) {
            st = ir_fail(err, s.g->err.status, "jacrev: %s", s.g->err.msg);
            goto done;
        }
    }
    st = finish(&s, outs, (uint32_t)((k1 - k0) * nwrt), out, err);
done:
    sweep_free(&s);
    ir_free(outs);
    ir_free(rows);
    return st;
}
