/* One-hot products: a matmul with a one-hot design Z = one_hot(c) [n, q]
 * (optionally scaled per row, Z = one_hot(c) * x[:, None]) becomes an
 * indexing op, O(n k) instead of O(n q k):
 *
 *   Z B   -> x ⊙ gather(B, c)              Zᵀ B  -> segment_sum(x ⊙ B, c)
 *   A Z   -> segment_sum(x ⊙ Aᵀ, c)ᵀ       A Zᵀ  -> (x ⊙ gather(Aᵀ, c))ᵀ
 *   Z_aᵀ Z_b -> the counts: diag(segment_sum(x_a x_b, c)) for one factor,
 *               the two-way table of (c_a, c_b) for two.
 *
 * Z itself (n × q) is then no longer needed and DCE removes it.  Zᵀ may be
 * written as matmul's transpose flag or as a transpose node. */
#include "ir/alloc.h"
#include "passes/passes.h"
#include "passes/structure_match.h"

typedef struct oside {
    int onehot, trans;
    st_onehot oh;
} oside;

/* Operand i of matmul n: one-hot (through a transpose node or flag)? */
static oside side(const ir_graph *g, const ir_node *n, int i)
{
    oside s = {0};
    ir_val v = n->input[i];
    s.trans = n->attr[i] != 0;
    ir_val t = st_transposed(g, v);
    if (t != IR_NONE && st_match_onehot(g, t, &s.oh)) {
        s.onehot = 1;
        s.trans = !s.trans;
        return s;
    }
    s.onehot = st_match_onehot(g, v, &s.oh);
    return s;
}

static ir_val scale(ir_graph *ng, const ir_val *map, const st_onehot *oh)
{
    return oh->x == IR_NONE ? IR_NONE : st_as_vector(ng, map[oh->x]);
}

static ir_val scaled(ir_graph *ng, ir_val b, ir_val x)
{
    return x == IR_NONE ? b : st_rowmul(ng, b, x);
}

static ir_val emit(void *ctxp, ir_graph *ng, const ir_graph *g, ir_val v, const ir_val *map)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op != IR_OP_MATMUL || n->shape.rank != 2)
        return ST_KEEP;
    oside a = side(g, n, 0), b = side(g, n, 1);
    if (!a.onehot && !b.onehot)
        return ST_KEEP;
    if (a.onehot && a.trans && b.onehot && !b.trans) {
        ir_graph_note_rewrite(ng, "onehot-gram", 1);
        return st_onehot_gram(ng, map[a.oh.codes], scale(ng, map, &a.oh), a.oh.q,
                              map[b.oh.codes], scale(ng, map, &b.oh), b.oh.q,
                              a.oh.codes == b.oh.codes, IR_NONE);
    }
    ir_graph_note_rewrite(ng, "onehot-matmul", 1);
    if (a.onehot) {
        ir_val bv = map[n->input[1]];
        if (n->attr[1])
            bv = st_t(ng, bv);
        ir_val c = map[a.oh.codes], x = scale(ng, map, &a.oh);
        if (!a.trans) /* Z B */
            return scaled(ng, st_gather(ng, bv, c), x);
        return st_segsum(ng, scaled(ng, bv, x), c, a.oh.q); /* Zᵀ B */
    }
    ir_val av = map[n->input[0]];
    ir_val at = n->attr[0] ? av : st_t(ng, av); /* op(A)ᵀ */
    ir_val c = map[b.oh.codes], x = scale(ng, map, &b.oh);
    if (!b.trans) /* A Z = (Zᵀ op(A)ᵀ)ᵀ */
        return st_t(ng, st_segsum(ng, scaled(ng, at, x), c, b.oh.q));
    return st_t(ng, scaled(ng, st_gather(ng, at, c), x)); /* A Zᵀ = (Z op(A)ᵀ)ᵀ */
}

sj_status pass_structure_onehot(ir_graph **gp, int *changed, ir_err *err)
{
    ir_graph *g = *gp;
    *changed = 0;
    int any = 0;
    for (uint32_t v = 0; v < g->nnode && !any; v++) {
        const ir_node *n = &g->node[v];
        if (n->op == IR_OP_MATMUL && n->shape.rank == 2)
            any = side(g, n, 0).onehot || side(g, n, 1).onehot;
    }
    if (!any)
        return SJ_OK;
    ir_graph *ng = NULL;
    sj_status st = st_rebuild(g, emit, NULL, "onehot", &ng, err);
    if (st != SJ_OK)
        return st;
    ir_graph_free(g);
    *gp = ng;
    *changed = 1;
    return SJ_OK;
}
