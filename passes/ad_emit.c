/* Small emitters shared by the derivative rules.  Each works on concrete
 * shapes, treats IR_NONE as the symbolic zero where documented in ad.h, and
 * leaves errors on the graph (sticky). */
#include "passes/ad.h"

/* IR_NONE (an emission that failed, the graph's error already recorded) has
 * no node: a scalar shape stands in, and what is built from it fails too. */
ir_shape ad_shape(const ir_graph *g, ir_val v)
{
    return v == IR_NONE ? (ir_shape){.rank = 0} : *ir_shape_of(g, v);
}

ir_val ad_fill(ir_graph *g, double c, const ir_shape *s)
{
    return ir_broadcast_trailing(g, ir_scalar(g, c), s);
}

ir_val ad_zeros_like(ir_graph *g, ir_val v)
{
    if (v == IR_NONE)
        return IR_NONE;
    ir_shape s = ad_shape(g, v);
    return ad_fill(g, 0.0, &s);
}

ir_val ad_add(ir_graph *g, ir_val a, ir_val b)
{
    if (a == IR_NONE)
        return b;
    if (b == IR_NONE)
        return a;
    return ir_binary(g, IR_OP_ADD, a, b);
}

ir_val ad_mul(ir_graph *g, ir_val a, ir_val b)
{
    if (a == IR_NONE || b == IR_NONE)
        return IR_NONE;
    return ir_binary(g, IR_OP_MUL, a, b);
}

ir_val ad_neg(ir_graph *g, ir_val a)
{
    return a == IR_NONE ? IR_NONE : ir_unary(g, IR_OP_NEG, a);
}

ir_val ad_sub(ir_graph *g, ir_val a, ir_val b)
{
    if (b == IR_NONE)
        return a;
    if (a == IR_NONE)
        return ad_neg(g, b);
    return ir_binary(g, IR_OP_SUB, a, b);
}

ir_val ad_scale(ir_graph *g, ir_val x, double c)
{
    if (x == IR_NONE)
        return IR_NONE;
    if (c == 1.0)
        return x;
    if (c == -1.0)
        return ir_unary(g, IR_OP_NEG, x);
    ir_shape s = ad_shape(g, x);
    return ir_binary(g, IR_OP_MUL, x, ad_fill(g, c, &s));
}

ir_val ad_cmp(ir_graph *g, sj_cmp c, ir_val a, ir_val b)
{
    ir_val in[2] = {a, b};
    int64_t attr = c;
    return ir_add_node(g, IR_OP_CMP, 2, in, &attr, 1, NULL, NULL);
}

ir_val ad_select(ir_graph *g, ir_val pred, ir_val a, ir_val b)
{
    ir_val in[3] = {pred, a, b};
    return ir_add_node(g, IR_OP_SELECT, 3, in, NULL, 0, NULL, NULL);
}

ir_val ad_unary_attr(ir_graph *g, ir_op op, ir_val x, int64_t attr0)
{
    return ir_add_node(g, op, 1, &x, &attr0, 1, NULL, NULL);
}

ir_val ad_mT(ir_graph *g, ir_val x)
{
    if (x == IR_NONE)
        return IR_NONE;
    int r = ir_shape_of(g, x)->rank;
    int64_t p[IR_NATTR];
    for (int i = 0; i < r; i++)
        p[i] = i;
    p[r - 2] = r - 1;
    p[r - 1] = r - 2;
    return ir_add_node(g, IR_OP_TRANSPOSE, 1, &x, p, r, NULL, NULL);
}

ir_val ad_matmul(ir_graph *g, ir_val a, ir_val b, int ta, int tb)
{
    if (a == IR_NONE || b == IR_NONE)
        return IR_NONE;
    ir_val in[2] = {a, b};
    int64_t attr[2] = {ta != 0, tb != 0};
    return ir_add_node(g, IR_OP_MATMUL, 2, in, attr, 2, NULL, NULL);
}

ir_val ad_trisolve(ir_graph *g, ir_val a, ir_val b, int64_t flags)
{
    if (b == IR_NONE)
        return IR_NONE;
    ir_val in[2] = {a, b};
    return ir_add_node(g, IR_OP_TRISOLVE, 2, in, &flags, 1, NULL, NULL);
}

ir_val ad_tril(ir_graph *g, ir_val x, int64_t k)
{
    return x == IR_NONE ? IR_NONE : ir_add_node(g, IR_OP_TRIL, 1, &x, &k, 1, NULL, NULL);
}

ir_val ad_triu(ir_graph *g, ir_val x, int64_t k)
{
    return x == IR_NONE ? IR_NONE : ir_add_node(g, IR_OP_TRIU, 1, &x, &k, 1, NULL, NULL);
}

ir_val ad_reshape(ir_graph *g, ir_val x, const ir_shape *s)
{
    if (x == IR_NONE)
        return IR_NONE;
    if (ir_shape_equal(ir_shape_of(g, x), s))
        return x;
    return ir_add_node(g, IR_OP_RESHAPE, 1, &x, NULL, 0, s, NULL);
}

ir_val ad_broadcast(ir_graph *g, ir_val x, const ir_shape *s, const int64_t *map)
{
    if (x == IR_NONE)
        return IR_NONE;
    int r = ir_shape_of(g, x)->rank;
    if (ir_shape_equal(ir_shape_of(g, x), s)) {
        int identity = 1;
        for (int i = 0; i < r; i++)
            identity &= map[i] == i;
        if (identity)
            return x;
    }
    return ir_add_node(g, IR_OP_BROADCAST, 1, &x, map, r, s, NULL);
}

ir_val ad_sum(ir_graph *g, ir_val x, int64_t mask)
{
    if (x == IR_NONE)
        return IR_NONE;
    if (mask == 0)
        return x;
    return ir_add_node(g, IR_OP_SUM, 1, &x, &mask, 1, NULL, NULL);
}

ir_val ad_unbroadcast(ir_graph *g, ir_val ct, const ir_shape *xs, const int64_t *map)
{
    if (ct == IR_NONE)
        return IR_NONE;
    ir_shape os = ad_shape(g, ct);
    int64_t mask = 0;
    int mapped[IR_MAX_RANK] = {0};
    for (int i = 0; i < xs->rank; i++) {
        mapped[map[i]] = 1;
        if (xs->dim[i] != os.dim[map[i]]) /* a stretched size-1 axis */
            mask |= (int64_t)1 << map[i];
    }
    for (int k = 0; k < os.rank; k++)
        if (!mapped[k])
            mask |= (int64_t)1 << k;
    return ad_reshape(g, ad_sum(g, ct, mask), xs);
}

ir_val ad_eye_like(ir_graph *g, ir_val like)
{
    ir_shape s = ad_shape(g, like);
    ir_shape e = {.rank = 2, .dim = {s.dim[s.rank - 1], s.dim[s.rank - 1]}};
    ir_val eye = ir_add_node(g, IR_OP_EYE, 0, NULL, NULL, 0, &e, NULL);
    return ir_broadcast_trailing(g, eye, &s);
}

ir_val ad_phi(ir_graph *g, ir_val x)
{
    if (x == IR_NONE)
        return IR_NONE;
    ir_val d = ir_unary(g, IR_OP_DIAG_EMBED, ir_unary(g, IR_OP_DIAG, x));
    return ad_sub(g, ad_tril(g, x, 0), ad_scale(g, d, 0.5));
}

ir_val ad_sym(ir_graph *g, ir_val x)
{
    if (x == IR_NONE)
        return IR_NONE;
    return ad_scale(g, ir_binary(g, IR_OP_ADD, x, ad_mT(g, x)), 0.5);
}

ir_val ad_basis(ir_graph *g, const ir_shape *s, size_t i)
{
    size_t n = ir_shape_numel(s);
    double *e = ir_arena_alloc(&g->arena, (n ? n : 1) * sizeof *e);
    if (!e) {
        ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "out of memory for a basis vector");
        return IR_NONE;
    }
    e[i] = 1.0;
    return ir_add_node(g, IR_OP_CONST, 0, NULL, NULL, 0, s, e);
}

ir_val ad_stack_jacobian(ir_graph *g, int nparts, const ir_val *parts, const ir_shape *out_s,
                         const ir_shape *in_s, int by_column)
{
    ir_shape js = *out_s;
    if (out_s->rank + in_s->rank > IR_MAX_RANK) {
        ir_fail(&g->err, SJ_ERR_SHAPE, "a Jacobian would have rank %d, more than %d",
                out_s->rank + in_s->rank, IR_MAX_RANK);
        return IR_NONE;
    }
    for (int i = 0; i < in_s->rank; i++)
        js.dim[js.rank++] = in_s->dim[i];
    int64_t m = (int64_t)ir_shape_numel(out_s), n = (int64_t)ir_shape_numel(in_s);
    int any = 0;
    for (int i = 0; i < nparts; i++)
        any |= parts[i] != IR_NONE;
    if (!any || m == 0 || n == 0)
        return ad_fill(g, 0.0, &js);
    ir_shape piece = {.rank = 2, .dim = {by_column ? m : 1, by_column ? 1 : n}};
    ir_val *in = ir_arena_alloc(&g->arena, (size_t)nparts * sizeof *in);
    if (!in) {
        ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "out of memory for a Jacobian");
        return IR_NONE;
    }
    for (int i = 0; i < nparts; i++)
        in[i] = parts[i] == IR_NONE ? ad_fill(g, 0.0, &piece) : ad_reshape(g, parts[i], &piece);
    int64_t axis = by_column ? 1 : 0;
    ir_val mat = nparts == 1 ? in[0] : ir_add_node(g, IR_OP_CONCAT, nparts, in, &axis, 1, NULL, NULL);
    return ad_reshape(g, mat, &js);
}
