/* Products with sums of one-hot Gram matrices: A M where A [n, n] is a sum
 * (add, sub, neg, scalar multiples) of
 *
 *   eye(n)                                     A M = M
 *   x_a ⊙ gather(Z_bᵀ, c_a)  (= diag(x_a) Z_a Z_bᵀ, what the one-hot pass
 *                             makes of Z_a Z_bᵀ; x_a optional)
 *                                              A M = x_a ⊙ gather(segment_sum(x_b ⊙ M, c_b), c_a)
 *
 * (Z_b = one_hot(c_b) ⊙ x_b[:, None]) becomes that sum of O(n k) products
 * instead of an O(n² k) GEMM.  Such an A is the tangent of V = Σ θ_t Z_t Z_tᵀ
 * + σ² I: the forward-over-reverse Hessian-vector product of a dense REML
 * criterion multiplies it with V⁻¹ (n × n) and with the solves (n × p), and
 * this rewrite takes its n³ GEMM away.  Every term of A must be one of the
 * above; a dense term leaves the product alone.  Only A on the left, not
 * transposed (matmul's flag), is rewritten.  Runs after the one-hot pass,
 * which makes the gathers. */
#include "passes/passes.h"
#include "passes/structure_match.h"

/* Deep enough for any sum of covariance terms; deeper trees are left alone. */
#define MAX_DEPTH 24

/* v = gather(transpose(Z_b), c_a) [n, n] with Z_b [n, q] one-hot. */
static int gram_gather(const ir_graph *g, ir_val v, st_onehot *zb, ir_val *ca)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op != IR_OP_GATHER || n->shape.rank != 2 || n->shape.dim[0] != n->shape.dim[1])
        return 0;
    ir_val z = st_transposed(g, n->input[0]);
    if (z == IR_NONE || !st_match_onehot(g, z, zb) || zb->n != n->shape.dim[1])
        return 0;
    if (ir_shape_of(g, n->input[1])->rank != 1)
        return 0;
    *ca = n->input[1];
    return 1;
}

/* The row-scaled form x_a ⊙ gather(...): returns the gather's operand side
 * (k) and x_a, or -1. */
static int scaled_gram(const ir_graph *g, const ir_node *n, ir_val *xa)
{
    for (int k = 0; k < 2; k++) {
        st_onehot zb;
        ir_val ca;
        ir_val x = st_row_broadcast(g, n->input[1 - k]);
        if (x != IR_NONE && gram_gather(g, n->input[k], &zb, &ca)) {
            *xa = x;
            return k;
        }
    }
    return -1;
}

/* The scalar multiple s ⊙ B: returns B's side, or -1. */
static int scalar_multiple(const ir_graph *g, const ir_node *n, ir_val *s)
{
    for (int k = 0; k < 2; k++) {
        ir_val sc = st_broadcast_scalar(g, n->input[1 - k]);
        if (sc != IR_NONE) {
            *s = sc;
            return k;
        }
    }
    return -1;
}

/* Whether A M can be formed term by term as above. */
static int cheap(const ir_graph *g, ir_val a, int depth)
{
    const ir_node *n = ir_node_at(g, a);
    if (depth > MAX_DEPTH || n->shape.rank != 2 || n->shape.dim[0] != n->shape.dim[1])
        return 0;
    st_onehot zb;
    ir_val ca = IR_NONE, s = IR_NONE, x = IR_NONE;
    int k;
    switch (n->op) {
    case IR_OP_EYE:
        return 1;
    case IR_OP_GATHER:
        return gram_gather(g, a, &zb, &ca);
    case IR_OP_ADD:
    case IR_OP_SUB:
        return n->ninput == 2 && ir_shape_equal(ir_shape_of(g, n->input[0]), &n->shape) &&
               ir_shape_equal(ir_shape_of(g, n->input[1]), &n->shape) &&
               cheap(g, n->input[0], depth + 1) && cheap(g, n->input[1], depth + 1);
    case IR_OP_NEG:
        return cheap(g, n->input[0], depth + 1);
    case IR_OP_MUL:
        if (scaled_gram(g, n, &x) >= 0)
            return 1;
        k = scalar_multiple(g, n, &s);
        return k >= 0 && cheap(g, n->input[k], depth + 1);
    default:
        return 0;
    }
}

/* A M in the new graph (m: M there, [n, k]); a satisfies cheap(). */
static ir_val product(ir_graph *ng, const ir_graph *g, const ir_val *map, ir_val a, ir_val m)
{
    const ir_node *n = ir_node_at(g, a);
    st_onehot zb;
    ir_val ca = IR_NONE, s = IR_NONE, x = IR_NONE;
    int k;
    switch (n->op) {
    case IR_OP_EYE:
        return m;
    case IR_OP_GATHER:
        gram_gather(g, a, &zb, &ca);
        if (zb.x != IR_NONE)
            m = st_rowmul(ng, m, st_as_vector(ng, map[zb.x]));
        return st_gather(ng, st_segsum(ng, m, map[zb.codes], zb.q), map[ca]);
    case IR_OP_ADD:
    case IR_OP_SUB:
        return ir_binary(ng, n->op, product(ng, g, map, n->input[0], m),
                         product(ng, g, map, n->input[1], m));
    case IR_OP_NEG:
        return ir_unary(ng, IR_OP_NEG, product(ng, g, map, n->input[0], m));
    default: /* IR_OP_MUL */
        k = scaled_gram(g, n, &x);
        if (k >= 0)
            return st_rowmul(ng, product(ng, g, map, n->input[k], m), st_as_vector(ng, map[x]));
        k = scalar_multiple(g, n, &s);
        return st_rowmul(ng, product(ng, g, map, n->input[k], m), st_as_scalar(ng, map[s]));
    }
}

/* ---- Σ P ⊙ G with P holding low-rank terms --------------------------------- */

/* The value under reshapes (a [n] and its [n, 1] view are the same data). */
static ir_val base(const ir_graph *g, ir_val v)
{
    while (ir_node_at(g, v)->op == IR_OP_RESHAPE)
        v = ir_node_at(g, v)->input[0];
    return v;
}

/* Whether cheap A (see cheap()) is symmetric: every Gram term is
 * x ⊙ gather(Zᵀ, c) with Z = one_hot(c) ⊙ x (the same codes and scales). */
static int symmetric(const ir_graph *g, ir_val a, int depth)
{
    const ir_node *n = ir_node_at(g, a);
    st_onehot zb;
    ir_val ca = IR_NONE, s = IR_NONE, x = IR_NONE;
    int k;
    if (depth > MAX_DEPTH)
        return 0;
    switch (n->op) {
    case IR_OP_EYE:
        return 1;
    case IR_OP_GATHER:
        return gram_gather(g, a, &zb, &ca) && zb.x == IR_NONE && ca == zb.codes;
    case IR_OP_ADD:
    case IR_OP_SUB:
        return symmetric(g, n->input[0], depth + 1) && symmetric(g, n->input[1], depth + 1);
    case IR_OP_NEG:
        return symmetric(g, n->input[0], depth + 1);
    case IR_OP_MUL:
        k = scaled_gram(g, n, &x);
        if (k >= 0) {
            gram_gather(g, n->input[k], &zb, &ca);
            return zb.x != IR_NONE && ca == zb.codes && base(g, x) == base(g, zb.x);
        }
        k = scalar_multiple(g, n, &s);
        return k >= 0 && symmetric(g, n->input[k], depth + 1);
    default:
        return 0;
    }
}

/* Inner size up to which a product U Wᵀ ([n, k] [k, n]) counts as low rank. */
#define LOWRANK_MAX_K 16

/* P [n, n] = op(U) op(W) of inner size k ≤ LOWRANK_MAX_K, k ≤ n / 8. */
static int lowrank(const ir_graph *g, const ir_node *n)
{
    if (n->op != IR_OP_MATMUL || n->shape.rank != 2)
        return 0;
    const ir_shape *as = ir_shape_of(g, n->input[0]);
    int64_t k = n->attr[0] ? as->dim[0] : as->dim[1];
    return k <= LOWRANK_MAX_K && 8 * k <= n->shape.dim[0];
}

/* Walks the linear tree of P for Σ P ⊙ G: add, sub, neg, scalar multiples,
 * transposes (when G is symmetric), low-rank products; anything else is a
 * dense term.  Returns the number of low-rank terms, -1 when the tree is too
 * large. */
static int count_lowrank(const ir_graph *g, ir_val p, int sym, int depth, int *nodes)
{
    const ir_node *n = ir_node_at(g, p);
    ir_val s = IR_NONE;
    int k, a, b;
    if (depth > MAX_DEPTH || ++*nodes > 256)
        return -1;
    switch (n->op) {
    case IR_OP_ADD:
    case IR_OP_SUB:
        if (!ir_shape_equal(ir_shape_of(g, n->input[0]), &n->shape) ||
            !ir_shape_equal(ir_shape_of(g, n->input[1]), &n->shape))
            return 0;
        a = count_lowrank(g, n->input[0], sym, depth + 1, nodes);
        b = count_lowrank(g, n->input[1], sym, depth + 1, nodes);
        return a < 0 || b < 0 ? -1 : a + b;
    case IR_OP_NEG:
        return count_lowrank(g, n->input[0], sym, depth + 1, nodes);
    case IR_OP_MUL:
        k = scalar_multiple(g, n, &s);
        return k < 0 ? 0 : count_lowrank(g, n->input[k], sym, depth + 1, nodes);
    case IR_OP_TRANSPOSE:
        return sym && n->shape.rank == 2 ? count_lowrank(g, n->input[0], sym, depth + 1, nodes)
                                         : 0;
    default:
        /* A product: low rank, or any product when G is symmetric. */
        return lowrank(g, n) || (sym && n->op == IR_OP_MATMUL && n->shape.rank == 2);
    }
}

/* Σ P ⊙ G in the new graph, term by term: Σ (U Wᵀ) ⊙ G = Σ U ⊙ (G W) with
 * G W formed by product(); a dense term D gives Σ D ⊙ G. */
static ir_val trace_product(ir_graph *ng, const ir_graph *g, const ir_val *map, ir_val p,
                            ir_val gv)
{
    const ir_node *n = ir_node_at(g, p);
    ir_val s = IR_NONE;
    int k;
    switch (n->op) {
    case IR_OP_ADD:
    case IR_OP_SUB:
        if (!ir_shape_equal(ir_shape_of(g, n->input[0]), &n->shape) ||
            !ir_shape_equal(ir_shape_of(g, n->input[1]), &n->shape))
            break;
        return ir_binary(ng, n->op, trace_product(ng, g, map, n->input[0], gv),
                         trace_product(ng, g, map, n->input[1], gv));
    case IR_OP_NEG:
        return ir_unary(ng, IR_OP_NEG, trace_product(ng, g, map, n->input[0], gv));
    case IR_OP_MUL:
        k = scalar_multiple(g, n, &s);
        if (k < 0)
            break;
        return ir_binary(ng, IR_OP_MUL, st_as_scalar(ng, map[s]),
                         trace_product(ng, g, map, n->input[k], gv));
    case IR_OP_TRANSPOSE:
        if (n->shape.rank != 2)
            break;
        return trace_product(ng, g, map, n->input[0], gv); /* G symmetric */
    default:
        if (n->op == IR_OP_MATMUL && n->shape.rank == 2 && !lowrank(g, n)) {
            /* Σ (A B) ⊙ G = Σ B ⊙ (Aᵀ G) = Σ Bᵀ ⊙ (G A) for symmetric G
             * (count_lowrank admitted it only then): G A is cheap, A B an
             * n² k GEMM. */
            ir_val a = map[n->input[0]], b = map[n->input[1]];
            if (n->attr[0])
                a = st_t(ng, a);
            if (!n->attr[1])
                b = st_t(ng, b); /* op(B)ᵀ */
            return st_sum_all(ng, ir_binary(ng, IR_OP_MUL, b, product(ng, g, map, gv, a)));
        }
        if (!lowrank(g, n))
            break;
        ir_val u = map[n->input[0]], w = map[n->input[1]];
        if (n->attr[0])
            u = st_t(ng, u); /* op(U) [n, k] */
        if (!n->attr[1])
            w = st_t(ng, w); /* op(W)ᵀ [n, k] */
        return st_sum_all(ng, ir_binary(ng, IR_OP_MUL, u, product(ng, g, map, gv, w)));
    }
    return st_sum_all(ng, ir_binary(ng, IR_OP_MUL, map[p], map[gv]));
}

/* n = sum over both axes of P ⊙ G (either order), G cheap, P with a low-rank
 * term: *p, *gv. */
static int trace_match(const ir_graph *g, const ir_node *n, ir_val *p, ir_val *gv)
{
    if (n->op != IR_OP_SUM || n->shape.rank != 0)
        return 0;
    const ir_node *m = ir_node_at(g, n->input[0]);
    if (m->op != IR_OP_MUL || m->shape.rank != 2 || m->shape.dim[0] != m->shape.dim[1] ||
        n->attr[0] != 3)
        return 0;
    for (int k = 0; k < 2; k++) {
        ir_val a = m->input[k], b = m->input[1 - k];
        if (!ir_shape_equal(ir_shape_of(g, a), &m->shape) ||
            !ir_shape_equal(ir_shape_of(g, b), &m->shape) || !cheap(g, b, 0))
            continue;
        int nodes = 0;
        if (count_lowrank(g, a, symmetric(g, b, 0), 0, &nodes) > 0) {
            *p = a;
            *gv = b;
            return 1;
        }
    }
    return 0;
}

static int matches(const ir_graph *g, const ir_node *n)
{
    ir_val p, gv;
    if (trace_match(g, n, &p, &gv))
        return 1;
    return n->op == IR_OP_MATMUL && n->shape.rank == 2 && n->attr[0] == 0 &&
           cheap(g, n->input[0], 0);
}

static ir_val emit(void *ctxp, ir_graph *ng, const ir_graph *g, ir_val v, const ir_val *map)
{
    (void)ctxp;
    const ir_node *n = ir_node_at(g, v);
    if (!matches(g, n))
        return ST_KEEP;
    ir_val p, gv;
    if (trace_match(g, n, &p, &gv)) {
        ir_graph_note_rewrite(ng, "gram-trace", 1);
        return trace_product(ng, g, map, p, gv);
    }
    ir_val m = map[n->input[1]];
    if (n->attr[1])
        m = st_t(ng, m);
    ir_graph_note_rewrite(ng, "gram-matmul", 1);
    return product(ng, g, map, n->input[0], m);
}

sj_status pass_structure_gram(ir_graph **gp, int *changed, ir_err *err)
{
    ir_graph *g = *gp;
    *changed = 0;
    int any = 0;
    for (uint32_t v = 0; v < g->nnode && !any; v++)
        any = matches(g, &g->node[v]);
    if (!any)
        return SJ_OK;
    ir_graph *ng = NULL;
    sj_status st = st_rebuild(g, emit, NULL, "gram", &ng, err);
    if (st != SJ_OK)
        return st;
    ir_graph_free(g);
    *gp = ng;
    *changed = 1;
    return SJ_OK;
}
