/* Derivative rules of the sources and the data-movement ops.  All of these
 * are linear: the jvp applies the op itself to the tangent (ad_same_op), the
 * vjp is the transpose (broadcast -> sum, slice -> zero padding by concat,
 * concat -> slices, transpose -> inverse permutation, reshape -> reshape
 * back). */
#include "passes/ad.h"

/* n's op with n's attributes and declared shape applied to new inputs. */
static ir_val same_op(ir_graph *g, const ir_node *n, const ir_val *in)
{
    return ir_add_node(g, n->op, n->ninput, in, n->attr, IR_NATTR, &n->shape, NULL);
}

/* ---- sources: the walkers seed input tangents; constants have none ---------- */

ir_val jvp_input(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t) { return IR_NONE; }
void vjp_input(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out) {}
ir_val jvp_const(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t) { return IR_NONE; }
void vjp_const(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out) {}
ir_val jvp_eye(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t) { return IR_NONE; }
void vjp_eye(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out) {}

/* ---- data movement ------------------------------------------------------------ */

ir_val jvp_broadcast(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return same_op(g, n, t);
}
void vjp_broadcast(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    ir_shape xs = ad_shape(g, n->input[0]);
    out[0] = ad_unbroadcast(g, ct, &xs, n->attr);
}

ir_val jvp_reshape(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return same_op(g, n, t);
}
void vjp_reshape(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    ir_shape xs = ad_shape(g, n->input[0]);
    out[0] = ad_reshape(g, ct, &xs);
}

ir_val jvp_transpose(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return same_op(g, n, t);
}
void vjp_transpose(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    int r = n->shape.rank;
    int64_t inv[IR_NATTR];
    for (int i = 0; i < r; i++)
        inv[n->attr[i]] = i;
    out[0] = ir_add_node(g, IR_OP_TRANSPOSE, 1, &ct, inv, r, NULL, NULL);
}

ir_val jvp_slice(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return same_op(g, n, t);
}
/* The cotangent of x[start:stop] is ct padded with zeros to x's shape. */
void vjp_slice(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    ir_shape xs = ad_shape(g, n->input[0]);
    int axis = (int)n->attr[0];
    int64_t d = xs.dim[axis], start = n->attr[1];
    if (start < 0)
        start += d;
    int64_t len = n->shape.dim[axis], after = d - start - len;
    ir_val parts[3];
    int np = 0;
    if (start > 0) {
        ir_shape s = xs;
        s.dim[axis] = start;
        parts[np++] = ad_fill(g, 0.0, &s);
    }
    parts[np++] = ct;
    if (after > 0) {
        ir_shape s = xs;
        s.dim[axis] = after;
        parts[np++] = ad_fill(g, 0.0, &s);
    }
    int64_t a = axis;
    out[0] = np == 1 ? ct : ir_add_node(g, IR_OP_CONCAT, np, parts, &a, 1, NULL, NULL);
}

/* Zero tangents of some operands are materialised: concat needs them all. */
ir_val jvp_concat(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    ir_val stack[16], *in = n->ninput <= 16 ? stack : ir_arena_alloc(&g->arena, (size_t)n->ninput * sizeof *in);
    if (!in) {
        ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "out of memory in the jvp of concat");
        return IR_NONE;
    }
    for (int i = 0; i < n->ninput; i++) {
        if (t[i] != IR_NONE) {
            in[i] = t[i];
        } else {
            ir_shape s = ad_shape(g, n->input[i]);
            in[i] = ad_fill(g, 0.0, &s);
        }
    }
    return same_op(g, n, in);
}
void vjp_concat(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    int64_t axis = n->attr[0], off = 0;
    for (int i = 0; i < n->ninput; i++) {
        int64_t len = ir_shape_of(g, n->input[i])->dim[axis];
        out[i] = IR_NONE;
        if (need[i]) {
            int64_t attr[3] = {axis, off, off + len};
            out[i] = ir_add_node(g, IR_OP_SLICE, 1, &ct, attr, 3, NULL, NULL);
        }
        off += len;
    }
}
