/* Forward mode: a walker over the jvp rule table that knows no op.
 *
 * The new graph starts as a copy of the primal graph (so primal values keep
 * their ids), gets the tangent inputs, and then, in topological order, each
 * node whose inputs carry a nonzero tangent has its rule emit the tangent of
 * its output.  A node whose input tangents are all the symbolic zero is
 * skipped: its tangent is zero too. */
#include <inttypes.h>
#include <string.h>

#include "ir/alloc.h"
#include "passes/ad.h"
#include "passes/passes.h"

/* tan[v] (v < nprim) holds the seeded tangents of INPUT nodes and IR_NONE
 * elsewhere; fills in every other primal node's tangent. */
static sj_status jvp_sweep(ir_graph *g, uint32_t nprim, ir_val *tan, ir_val *buf, ir_err *err)
{
    for (uint32_t v = 0; v < nprim; v++) {
        ir_node n = g->node[v];
        if (ir_op_kind(n.op) == IR_KIND_SOURCE)
            continue;
        int any = 0;
        for (int i = 0; i < n.ninput; i++)
            any |= (buf[i] = tan[n.input[i]]) != IR_NONE;
        if (!any)
            continue;
        ir_val t = ad_jvp_rules[n.op](g, &n, (ir_val)v, buf);
        if (!ir_graph_ok(g))
            return ir_fail(err, g->err.status, "jvp of %s (value %%%u): %s", ir_op_name(n.op), v,
                           g->err.msg);
        if (t != IR_NONE && !ir_shape_equal(ir_shape_of(g, t), &n.shape)) {
            char a[128], b[128];
            return ir_fail(err, SJ_ERR_INTERNAL, "jvp rule of %s (value %%%u) made a tangent of shape %s for %s",
                           ir_op_name(n.op), v, ir_shape_str(g, ir_shape_of(g, t), a, sizeof a),
                           ir_shape_str(g, &n.shape, b, sizeof b));
        }
        tan[v] = t;
    }
    return SJ_OK;
}

/* Room for the largest input list of g. */
static ir_val *input_buffer(const ir_graph *g)
{
    int most = 1;
    for (uint32_t v = 0; v < g->nnode; v++)
        if (g->node[v].ninput > most)
            most = g->node[v].ninput;
    return ir_malloc((size_t)most * sizeof(ir_val));
}

static sj_status check_wrt(const ir_graph *g, int nwrt, const int *wrt, ir_err *err)
{
    for (int j = 0; j < nwrt; j++)
        if (wrt[j] < 0 || (uint32_t)wrt[j] >= g->ninput)
            return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "input %d is out of range (%u inputs)",
                           wrt[j], g->ninput);
    return SJ_OK;
}

static sj_status finish(ir_graph *g, ir_val *outs, uint32_t nout, ir_graph **out, ir_err *err)
{
    for (uint32_t k = 0; k < nout; k++)
        if (outs[k] == IR_NONE && ir_graph_ok(g))
            ir_fail(&g->err, SJ_ERR_INTERNAL, "output %u was not made", k);
    if (!ir_graph_ok(g) || ir_graph_set_outputs(g, nout, outs) != SJ_OK) {
        sj_status st = ir_fail(err, g->err.status, "%s", g->err.msg);
        ir_graph_free(g);
        return st;
    }
    *out = g;
    return SJ_OK;
}

sj_status pass_jvp(const ir_graph *in, int nwrt, const int *wrt, const char *const *names,
                   int tangents_only, ir_graph **out, ir_err *err)
{
    *out = NULL;
    if (check_wrt(in, nwrt, wrt, err) != SJ_OK)
        return err->status;
    uint32_t nprim = in->nnode, nout = in->noutput;
    ir_graph *g = ir_graph_copy(in);
    ir_val *tan = ir_malloc((nprim ? nprim : 1) * sizeof *tan);
    ir_val *buf = input_buffer(in);
    ir_val *outs = ir_malloc((2 * nout + 1) * sizeof *outs);
    sj_status st = SJ_OK;
    if (!g || !tan || !buf || !outs) {
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "jvp: out of memory");
        goto done;
    }
    for (uint32_t v = 0; v < nprim; v++)
        tan[v] = IR_NONE;
    for (int j = 0; j < nwrt; j++) {
        ir_val x = in->input[wrt[j]];
        ir_shape s = ad_shape(in, x);
        tan[x] = ir_add_input(g, names[j], &s);
        if (tan[x] == IR_NONE) {
            st = ir_fail(err, g->err.status, "jvp: %s", g->err.msg);
            goto done;
        }
    }
    st = jvp_sweep(g, nprim, tan, buf, err);
    if (st != SJ_OK)
        goto done;
    uint32_t k = 0;
    if (!tangents_only)
        for (uint32_t i = 0; i < nout; i++)
            outs[k++] = in->output[i];
    for (uint32_t i = 0; i < nout; i++) {
        ir_val t = tan[in->output[i]];
        outs[k++] = t != IR_NONE ? t : ad_zeros_like(g, in->output[i]);
    }
    st = finish(g, outs, k, out, err);
    g = NULL;
done:
    ir_graph_free(g);
    ir_free(tan);
    ir_free(buf);
    ir_free(outs);
    return st;
}

sj_status pass_jacfwd(const ir_graph *in, int output, int nwrt, const int *wrt, ir_graph **out,
                      ir_err *err)
{
    *out = NULL;
    if (check_wrt(in, nwrt, wrt, err) != SJ_OK)
        return err->status;
    if (output >= (int)in->noutput)
        return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "jacfwd: output %d is out of range", output);
    uint32_t nprim = in->nnode;
    int k0 = output < 0 ? 0 : output, k1 = output < 0 ? (int)in->noutput : output + 1;
    int nk = k1 - k0;
    ir_graph *g = ir_graph_copy(in);
    ir_val *tan = ir_malloc((nprim ? nprim : 1) * sizeof *tan);
    ir_val *buf = input_buffer(in);
    ir_val *outs = ir_malloc(((size_t)nk * (size_t)nwrt + 1) * sizeof *outs);
    ir_val *cols = NULL;
    sj_status st = SJ_OK;
    if (!g || !tan || !buf || !outs) {
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "jacfwd: out of memory");
        goto done;
    }
    for (int w = 0; w < nwrt; w++) {
        ir_val x = in->input[wrt[w]];
        ir_shape xs = ad_shape(in, x);
        size_t nx = ir_shape_numel(&xs);
        ir_free(cols);
        cols = ir_malloc(((size_t)nk * nx + 1) * sizeof *cols);
        if (!cols) {
            st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "jacfwd: out of memory");
            goto done;
        }
        for (size_t j = 0; j < nx; j++) {
            for (uint32_t v = 0; v < nprim; v++)
                tan[v] = IR_NONE;
            tan[x] = ad_basis(g, &xs, j);
            if ((st = jvp_sweep(g, nprim, tan, buf, err)) != SJ_OK)
                goto done;
            for (int k = k0; k < k1; k++)
                cols[(size_t)(k - k0) * nx + j] = tan[in->output[k]];
        }
        for (int k = k0; k < k1; k++) {
            ir_shape ys = ad_shape(in, in->output[k]);
            outs[(size_t)(k - k0) * (size_t)nwrt + (size_t)w] =
                ad_stack_jacobian(g, (int)nx, cols + (size_t)(k - k0) * nx, &ys, &xs, 1);
        }
        if (!ir_graph_ok(g)) {
            st = ir_fail(err, g->err.status, "jacfwd: %s", g->err.msg);
            goto done;
        }
    }
    st = finish(g, outs, (uint32_t)(nk * nwrt), out, err);
    g = NULL;
done:
    ir_graph_free(g);
    ir_free(tan);
    ir_free(buf);
    ir_free(outs);
    ir_free(cols);
    return st;
}
