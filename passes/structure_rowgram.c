/* Batched Gram matrices of a row-scaled shared matrix as one GEMM:
 *
 *   G_b = A_bᵀ A_b,  A_b = diag(s_b) X     (A [B, n, p], s [B, n], X [n, p] shared)
 *       = Σ_i s_bi² x_i x_iᵀ
 *   G   = reshape((s ⊙ s) [B, n] @ K [n, p²], [B, p, p]),  K[i, j p + l] = X[i, j] X[i, l]
 *
 * K, the row-wise Kronecker product of X with itself, depends on X alone,
 * so it is formed once.  G is symmetric, so only K's columns j <= l are
 * formed (p(p+1)/2 of them: the GEMM does about half the work) and the
 * result's columns are spread to the p × p entries by a gather.  This is what vmap makes of a GLM's curvature
 * 2 Xᵀ W X = 2 (√W X)ᵀ (√W X) over a batch of responses sharing X (the
 * lock-step batched fit, docs/fit.md): B small products, each with its own
 * packing of A_b and per-call overhead, become one GEMM of B × n × p² with
 * no [B, n, p] value formed.  The flops are the same; the rule fires when
 * B >= p, where K (n p² numbers) is no larger than the A it replaces
 * (B n p).
 *
 * Pattern (what the batching rules emit): matmul [B, p, p] of Aᵀ (the
 * transpose flag or a transpose node with perm (0, 2, 1)) and A, with
 * A = mul of s broadcast along the last axis ([B, n] or [B, n, 1]) and X
 * ([n, p]) broadcast along a leading batch axis (either order). */
#include "ir/alloc.h"
#include "passes/ad.h"
#include "passes/passes.h"
#include "passes/structure_match.h"

typedef struct rowgram {
    ir_val s, x; /* s [B, n] or [B, n, 1]; x [n, p] */
} rowgram;

/* v is x [B, n, p]ᵀ: the transpose of the last two axes of a rank-3 value. */
static ir_val batch_transposed(const ir_graph *g, ir_val v)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op == IR_OP_TRANSPOSE && n->shape.rank == 3 && n->attr[0] == 0 && n->attr[1] == 2 &&
        n->attr[2] == 1)
        return n->input[0];
    return IR_NONE;
}

/* Operand i of matmul n, seen through a transpose node: the value and
 * whether the product reads it transposed. */
static ir_val operand(const ir_graph *g, const ir_node *n, int i, int *trans)
{
    ir_val t = batch_transposed(g, n->input[i]);
    *trans = (n->attr[i] != 0) ^ (t != IR_NONE);
    return t != IR_NONE ? t : n->input[i];
}

/* v [B, n, p] is s [B, n] (or [B, n, 1]) broadcast along the last axis. */
static int is_row_scale(const ir_graph *g, ir_val v)
{
    const ir_node *n = ir_node_at(g, v);
    const ir_shape *in = n->op == IR_OP_BROADCAST ? ir_shape_of(g, n->input[0]) : NULL;
    if (!in || n->attr[0] != 0 || n->attr[1] != 1 || in->dim[0] != n->shape.dim[0] ||
        in->dim[1] != n->shape.dim[1])
        return 0;
    return in->rank == 2 || (in->rank == 3 && n->attr[2] == 2 && in->dim[2] == 1);
}

/* v [B, n, p] is x [n, p] broadcast along a new leading axis. */
static int is_shared(const ir_graph *g, ir_val v)
{
    const ir_node *n = ir_node_at(g, v);
    return n->op == IR_OP_BROADCAST && ir_shape_of(g, n->input[0])->rank == 2 &&
           n->attr[0] == 1 && n->attr[1] == 2;
}

/* Matmul node v is Aᵀ A with A = diag(s_b) X as above, and B >= p. */
static int match(const ir_graph *g, ir_val v, rowgram *m)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op != IR_OP_MATMUL || n->shape.rank != 3)
        return 0;
    int ta, tb;
    ir_val a = operand(g, n, 0, &ta), b = operand(g, n, 1, &tb);
    if (a != b || !ta || tb)
        return 0;
    const ir_node *an = ir_node_at(g, a);
    if (an->op != IR_OP_MUL || an->shape.rank != 3 || an->shape.dim[0] < an->shape.dim[2])
        return 0;
    for (int k = 0; k < 2; k++)
        if (is_row_scale(g, an->input[k]) && is_shared(g, an->input[1 - k])) {
            m->s = ir_node_at(g, an->input[k])->input[0];
            m->x = ir_node_at(g, an->input[1 - k])->input[0];
            return 1;
        }
    return 0;
}

/* A constant vector of n entries. */
static ir_val const_vector(ir_graph *ng, const double *c, int64_t n)
{
    ir_shape s = {.rank = 1, .dim = {n}};
    return ir_add_node(ng, IR_OP_CONST, 0, NULL, NULL, 0, &s, c);
}

/* The pairs j <= l of p columns, numbered row by row: ja, la [p(p+1)/2] the
 * columns of each, full [p²] the pair of entry (j, l) of a p × p matrix.
 * NULL when out of memory. */
static double *pairs(int64_t p, double **la, double **full)
{
    int64_t m = p * (p + 1) / 2;
    double *ja = ir_malloc((size_t)(2 * m + p * p) * sizeof *ja);
    if (!ja)
        return NULL;
    *la = ja + m;
    *full = ja + 2 * m;
    for (int64_t j = 0, q = 0; j < p; j++)
        for (int64_t l = j; l < p; l++, q++) {
            ja[q] = (double)j;
            (*la)[q] = (double)l;
            (*full)[j * p + l] = (*full)[l * p + j] = (double)q;
        }
    return ja;
}

/* Σ_i s2[b, i] x_i x_iᵀ for every b, as [nb, p, p]: Kᵀ [m, n], the products
 * of X's columns j <= l (the matrix is symmetric: about half of K's p²
 * columns), one GEMM s2 Kᵀᵀ [nb, m], then its columns spread to the p²
 * entries by a gather. */
static ir_val gram(ir_graph *ng, ir_val s2, ir_val x, int64_t nb)
{
    int64_t p = ir_shape_of(ng, x)->dim[1], m = p * (p + 1) / 2;
    double *la, *full, *ja = pairs(p, &la, &full);
    if (!ja) {
        ir_fail(&ng->err, SJ_ERR_OUT_OF_MEMORY, "rowgram: out of memory");
        return IR_NONE;
    }
    ir_val xt = st_t(ng, x);
    ir_val kt = ad_mul(ng, st_gather(ng, xt, const_vector(ng, ja, m)),
                       st_gather(ng, xt, const_vector(ng, la, m)));
    ir_val half = st_t(ng, st_matmul(ng, s2, kt, 0, 1)); /* [m, nb] */
    ir_val g = st_t(ng, st_gather(ng, half, const_vector(ng, full, p * p)));
    ir_free(ja);
    return st_reshape(ng, g, 3, (int64_t[]){nb, p, p});
}

static ir_val emit(void *ctx, ir_graph *ng, const ir_graph *g, ir_val v, const ir_val *map)
{
    (void)ctx;
    rowgram m;
    if (!match(g, v, &m))
        return ST_KEEP;
    const ir_shape *out = &ir_node_at(g, v)->shape;
    int64_t nb = out->dim[0], n = ir_shape_of(g, m.x)->dim[0];
    ir_val s = st_reshape(ng, map[m.s], 2, (int64_t[]){nb, n});
    ir_graph_note_rewrite(ng, "rowgram", 1);
    return gram(ng, ad_mul(ng, s, s), map[m.x], nb);
}

sj_status pass_structure_rowgram(ir_graph **gp, int *changed, ir_err *err)
{
    ir_graph *g = *gp;
    rowgram m;
    *changed = 0;
    int any = 0;
    for (uint32_t v = 0; v < g->nnode && !any; v++)
        any = match(g, (ir_val)v, &m);
    if (!any)
        return SJ_OK;
    ir_graph *ng = NULL;
    sj_status st = st_rebuild(g, emit, NULL, "rowgram", &ng, err);
    if (st != SJ_OK)
        return st;
    ir_graph_free(g);
    *gp = ng;
    *changed = 1;
    return SJ_OK;
}
