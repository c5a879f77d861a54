/* Batching (vmap): a walker over the batching rule table that knows no op.
 *
 * The new graph gets the same inputs (names, positions) with their batched
 * shapes; each batched input's batch axis is moved to the front, so that
 * inside the graph every batched value has the batch axis at position 0.
 * Then, in topological order, a node with at least one batched input has its
 * rule emit the batched result; a node with none is copied unchanged and
 * stays unbatched (JAX's not_mapped: unbatched work is done once).  At the
 * end each output's batch axis moves to its out_axes position, and an output
 * that is not batched is broadcast along a new batch axis there. */
#include <inttypes.h>
#include <string.h>

#include "ir/alloc.h"
#include "ir/problem.h"
#include "passes/batch.h"
#include "passes/passes.h"
#include "passes/rebuild.h"

static int most_inputs(const ir_graph *g)
{
    int most = 1;
    for (uint32_t v = 0; v < g->nnode; v++)
        if (g->node[v].ninput > most)
            most = g->node[v].ninput;
    return most;
}

/* The batched result must be [nb] ++ shape(n). */
static sj_status check_result(const ir_graph *g, const ir_node *n, uint32_t v, ir_val r,
                              int64_t nb, ir_err *err)
{
    const ir_shape *s = ir_shape_of(g, r);
    int ok = s->rank == n->shape.rank + 1 && s->dim[0] == nb;
    for (int i = 0; ok && i < n->shape.rank; i++)
        ok = s->dim[i + 1] == n->shape.dim[i];
    if (ok)
        return SJ_OK;
    char a[128], b[128];
    return ir_fail(err, SJ_ERR_INTERNAL,
                   "batching rule of %s (value %%%u) made shape %s for %s with %" PRId64
                   " batch items", ir_op_name(n->op), v, ir_shape_str(g, s, a, sizeof a),
                   ir_shape_str(g, &n->shape, b, sizeof b), nb);
}

sj_status pass_vmap(const ir_graph *in, const int *in_axes, const int *out_axes,
                    const ir_shape *outer, int64_t nb, ir_graph **out, ir_err *err)
{
    *out = NULL;
    uint32_t nn = in->nnode ? in->nnode : 1;
    ir_graph *g = ir_graph_new();
    ir_val *map = ir_malloc(nn * sizeof *map);
    unsigned char *bat = ir_calloc(nn, 1);
    int most = most_inputs(in);
    ir_val *buf = ir_malloc((size_t)most * sizeof *buf);
    int *bbuf = ir_malloc((size_t)most * sizeof *bbuf);
    ir_val *outs = ir_malloc((in->noutput ? in->noutput : 1) * sizeof *outs);
    sj_status st = SJ_OK;
    if (!g || !map || !bat || !buf || !bbuf || !outs) {
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "vmap: out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < in->nsym; i++)
        ir_graph_symbol(g, in->sym[i]);
    ir_graph_copy_problems(g, in); /* same indices: bat_fit keeps a fit's problem */
    for (uint32_t v = 0; v < in->nnode; v++)
        map[v] = IR_NONE;
    /* Inputs, in position order, with the batch axis moved to the front. */
    for (uint32_t p = 0; p < in->ninput; p++) {
        ir_val x = ir_add_input(g, in->input_name[p], &outer[p]);
        if (in_axes[p] >= 0) {
            x = bat_moveaxis(g, x, in_axes[p], 0);
            bat[in->input[p]] = 1;
        }
        map[in->input[p]] = x;
    }
    if (!ir_graph_ok(g)) {
        st = ir_fail(err, g->err.status, "vmap: %s", g->err.msg);
        goto done;
    }
    for (uint32_t v = 0; v < in->nnode; v++) {
        const ir_node *n = &in->node[v];
        if (n->op == IR_OP_INPUT) {
            if (map[v] == IR_NONE) {
                st = ir_fail(err, SJ_ERR_INTERNAL, "vmap: input node %%%u is not an input", v);
                goto done;
            }
            continue;
        }
        int any = 0;
        for (int i = 0; i < n->ninput; i++) {
            buf[i] = map[n->input[i]];
            any |= (bbuf[i] = bat[n->input[i]]);
        }
        if (!any) {
            map[v] = pass_copy_node(g, n, buf);
        } else {
            if (n->shape.rank + 1 > IR_MAX_RANK) {
                char a[128];
                st = ir_fail(err, SJ_ERR_SHAPE,
                             "vmap: %s (value %%%u) of shape %s would have more than %d axes with "
                             "the batch axis", ir_op_name(n->op), v,
                             ir_shape_str(in, &n->shape, a, sizeof a), IR_MAX_RANK);
                goto done;
            }
            map[v] = bat_rules[n->op](g, n, buf, bbuf, nb);
            bat[v] = 1;
        }
        if (!ir_graph_ok(g)) {
            st = ir_fail(err, g->err.status, "vmap of %s (value %%%u): %s", ir_op_name(n->op), v,
                         g->err.msg);
            goto done;
        }
        if (bat[v] && (st = check_result(g, n, v, map[v], nb, err)) != SJ_OK)
            goto done;
    }
    for (uint32_t k = 0; k < in->noutput; k++) {
        ir_val y = in->output[k];
        int at = out_axes[k];
        if (at < 0) {
            if (bat[y]) {
                st = ir_fail(err, SJ_ERR_INVALID_ARGUMENT,
                             "vmap: output %u depends on a batched input, but its out axis is -1 "
                             "(not batched)", k);
                goto done;
            }
            outs[k] = map[y];
        } else if (bat[y]) {
            outs[k] = bat_moveaxis(g, map[y], 0, at);
        } else {
            outs[k] = bat_insert_axis(g, map[y], at, nb);
        }
    }
    if (!ir_graph_ok(g) || ir_graph_set_outputs(g, in->noutput, outs) != SJ_OK) {
        st = ir_fail(err, g->err.status, "vmap: %s", g->err.msg);
        goto done;
    }
    *out = g;
    g = NULL;
done:
    ir_graph_free(g);
    ir_free(map);
    ir_free(bat);
    ir_free(buf);
    ir_free(bbuf);
    ir_free(outs);
    return st;
}
