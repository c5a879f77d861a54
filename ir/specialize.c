#include "ir/specialize.h"

#include <inttypes.h>
#include <string.h>

#include "ir/alloc.h"

typedef struct binding {
    int64_t size;    /* -1 while unbound */
    int input, axis; /* where it was bound, for messages */
} binding;

static sj_status bind_inputs(const ir_graph *g, const ir_shape *shapes, binding *b,
                             ir_err *err)
{
    char sa[128], sb[128];
    for (uint32_t i = 0; i < g->ninput; i++) {
        const ir_shape *decl = ir_shape_of(g, g->input[i]);
        const ir_shape *got = &shapes[i];
        const char *name = g->input_name[i];
        if (got->rank != decl->rank)
            return ir_fail(err, SJ_ERR_SHAPE, "input \"%s\" is declared %s (rank %d) but given rank %d",
                           name, ir_shape_str(g, decl, sa, sizeof sa), decl->rank, got->rank);
        for (int k = 0; k < got->rank; k++) {
            int64_t d = decl->dim[k], size = got->dim[k];
            if (size < 0 || size > ((int64_t)1 << 48))
                return ir_fail(err, SJ_ERR_SHAPE, "input \"%s\": axis %d has invalid size %" PRId64,
                               name, k, size);
            if (IR_DIM_IS_SIZE(d) && d != size)
                return ir_fail(err, SJ_ERR_SHAPE,
                               "input \"%s\" is declared %s but given %s", name,
                               ir_shape_str(g, decl, sa, sizeof sa),
                               ir_shape_str(NULL, got, sb, sizeof sb));
            if (!IR_DIM_IS_SYM(d))
                continue;
            binding *s = &b[IR_DIM_SYM_INDEX(d)];
            if (s->size < 0) {
                *s = (binding){size, (int)i, k};
            } else if (s->size != size) {
                return ir_fail(err, SJ_ERR_SHAPE,
                               "dimension \"%s\" is %" PRId64 " in input \"%s\" (axis %d) but %"
                               PRId64 " in input \"%s\" (axis %d)",
                               g->sym[IR_DIM_SYM_INDEX(d)], s->size, g->input_name[s->input],
                               s->axis, size, name, k);
            }
        }
    }
    return SJ_OK;
}

static ir_shape resolve(const ir_shape *s, const binding *b)
{
    ir_shape r = *s;
    for (int k = 0; k < r.rank; k++)
        if (IR_DIM_IS_SYM(r.dim[k]) && b[IR_DIM_SYM_INDEX(r.dim[k])].size >= 0)
            r.dim[k] = b[IR_DIM_SYM_INDEX(r.dim[k])].size;
    return r;
}

static sj_status copy_nodes(const ir_graph *g, const ir_shape *shapes, const binding *b,
                            ir_graph *out, ir_err *err)
{
    for (uint32_t v = 0; v < g->nnode; v++) {
        const ir_node *n = ir_node_at(g, v);
        ir_shape decl = n->op == IR_OP_INPUT ? shapes[n->attr[0]] : resolve(&n->shape, b);
        ir_val nv = ir_add_node(out, n->op, n->ninput, n->input, n->attr, IR_NATTR, &decl,
                                n->data);
        if (nv == IR_NONE)
            return ir_fail(err, out->err.status, "%s", out->err.msg);
        if (!ir_shape_is_concrete(ir_shape_of(out, nv))) {
            char sa[128];
            return ir_fail(err, SJ_ERR_SHAPE,
                           "%s (value %%%u) has shape %s: a dimension no input binds", ir_op_name(n->op),
                           v, ir_shape_str(g, &n->shape, sa, sizeof sa));
        }
    }
    return SJ_OK;
}

sj_status ir_specialize(const ir_graph *g, const ir_shape *shapes, ir_graph **out, ir_err *err)
{
    *out = NULL;
    binding *b = ir_malloc((g->nsym ? g->nsym : 1) * sizeof *b);
    ir_graph *s = ir_graph_new();
    if (!b || !s) {
        ir_free(b);
        ir_graph_free(s);
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while specialising");
    }
    for (uint32_t k = 0; k < g->nsym; k++)
        b[k] = (binding){-1, -1, -1};
    sj_status st = bind_inputs(g, shapes, b, err);
    if (st == SJ_OK)
        st = copy_nodes(g, shapes, b, s, err);
    for (uint32_t i = 0; st == SJ_OK && i < g->ninput; i++) {
        /* Same input list as g: names and positions. */
        if (ir_add_input_alias(s, g->input[i], g->input_name[i]) != 0)
            st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while specialising");
    }
    if (st == SJ_OK && ir_graph_set_outputs(s, g->noutput, g->output) != SJ_OK)
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while specialising");
    ir_free(b);
    if (st != SJ_OK) {
        ir_graph_free(s);
        return st;
    }
    *out = s;
    return SJ_OK;
}
