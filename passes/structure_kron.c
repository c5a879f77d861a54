/* Kronecker structure: factorisations, log-determinants and solves of
 * A ⊗ B (A p × p, B r × r) through the factors of A and B, never forming a
 * pr × pr factor:
 *
 *   log|A ⊗ B|        = r log|A| + p log|B|
 *   chol(A ⊗ B)       = chol(A) ⊗ chol(B)
 *   diag(A ⊗ B)       = vec(diag(A) diag(B)ᵀ)
 *   (A ⊗ B)⁻¹ X       = vec(A⁻¹ X_m B⁻ᵀ) per column of X, X_m the p × r
 *                       matrix of a column (row-major vec, as kron's layout);
 *                       A⁻¹ (B⁻¹) by cholesky_solve when A ⊗ B is given
 *                       by its factor L_A ⊗ L_B, by solve otherwise
 *
 * (Van Loan 2000, "The ubiquitous Kronecker product", J. Comput. Appl.
 * Math. 123.)  Costs O(p³ + r³ + pr(p + r)k) instead of O(p³r³). */
#include "passes/ad.h"
#include "passes/passes.h"
#include "passes/structure_match.h"

/* v = kron(A, B) of square A and B, both at least 2 × 2. */
static int square_kron(const ir_graph *g, ir_val v, ir_val *a, ir_val *b)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op != IR_OP_KRON || n->shape.rank != 2)
        return 0;
    const ir_shape *as = ir_shape_of(g, n->input[0]), *bs = ir_shape_of(g, n->input[1]);
    if (as->dim[0] != as->dim[1] || bs->dim[0] != bs->dim[1] || as->dim[0] < 2 ||
        bs->dim[0] < 2)
        return 0;
    *a = n->input[0];
    *b = n->input[1];
    return 1;
}

static ir_val swap01(ir_graph *ng, ir_val t)
{
    int64_t perm[3] = {1, 0, 2};
    return ir_add_node(ng, IR_OP_TRANSPOSE, 1, &t, perm, 3, NULL, NULL);
}

/* (A ⊗ B)⁻¹ X through op(A, ·) and op(B, ·) (solve or cholesky_solve). */
static ir_val kron_solve(ir_graph *ng, ir_op op, ir_val a, ir_val b, ir_val x)
{
    if (!ir_graph_ok(ng))
        return IR_NONE;
    int64_t p = ir_shape_of(ng, a)->dim[0], r = ir_shape_of(ng, b)->dim[0];
    int64_t k = ir_shape_of(ng, x)->dim[1];
    int64_t s1[2] = {p, r * k}, s2[3] = {p, r, k}, s3[2] = {r, p * k}, s4[3] = {r, p, k},
            s5[2] = {p * r, k};
    ir_val y = ir_binary(ng, op, a, st_reshape(ng, x, 2, s1));
    y = st_reshape(ng, swap01(ng, st_reshape(ng, y, 3, s2)), 2, s3);
    y = ir_binary(ng, op, b, y);
    y = swap01(ng, st_reshape(ng, y, 3, s4));
    return st_reshape(ng, y, 2, s5);
}

static ir_val emit(void *ctxp, ir_graph *ng, const ir_graph *g, ir_val v, const ir_val *map)
{
    const ir_node *n = ir_node_at(g, v);
    ir_val a, b;
    if (n->ninput < 1 || !square_kron(g, n->input[0], &a, &b))
        return ST_KEEP;
    int64_t p = ir_shape_of(g, a)->dim[0], r = ir_shape_of(g, b)->dim[0];
    switch (n->op) {
    case IR_OP_LOGDET:
        ir_graph_note_rewrite(ng, "kron-logdet", 1);
        return ir_binary(ng, IR_OP_ADD,
                         ir_binary(ng, IR_OP_MUL, st_const(ng, (double)r),
                                   ir_unary(ng, IR_OP_LOGDET, map[a])),
                         ir_binary(ng, IR_OP_MUL, st_const(ng, (double)p),
                                   ir_unary(ng, IR_OP_LOGDET, map[b])));
    case IR_OP_CHOLESKY:
        ir_graph_note_rewrite(ng, "kron-cholesky", 1);
        return ir_binary(ng, IR_OP_KRON, ir_unary(ng, IR_OP_CHOLESKY, map[a]),
                         ir_unary(ng, IR_OP_CHOLESKY, map[b]));
    case IR_OP_DIAG: {
        ir_graph_note_rewrite(ng, "kron-diag", 1);
        int64_t pr = p * r;
        return st_reshape(ng, ir_binary(ng, IR_OP_OUTER, ir_unary(ng, IR_OP_DIAG, map[a]),
                                        ir_unary(ng, IR_OP_DIAG, map[b])), 1, &pr);
    }
    case IR_OP_CHOSOLVE:
    case IR_OP_SOLVE:
        if (n->input[1] == n->input[0])
            return ST_KEEP;
        ir_graph_note_rewrite(ng, n->op == IR_OP_SOLVE ? "kron-solve" : "kron-cholesky-solve", 1);
        return kron_solve(ng, n->op, map[a], map[b], map[n->input[1]]);
    default:
        return ST_KEEP;
    }
}

static int applies(const ir_graph *g, const ir_node *n)
{
    ir_val a, b;
    switch (n->op) {
    case IR_OP_LOGDET: case IR_OP_CHOLESKY: case IR_OP_DIAG:
        return square_kron(g, n->input[0], &a, &b);
    case IR_OP_CHOSOLVE: case IR_OP_SOLVE:
        return n->input[1] != n->input[0] && square_kron(g, n->input[0], &a, &b);
    default:
        return 0;
    }
}

sj_status pass_structure_kron(ir_graph **gp, int *changed, ir_err *err)
{
    ir_graph *g = *gp;
    *changed = 0;
    int any = 0;
    for (uint32_t v = 0; v < g->nnode && !any; v++)
        any = applies(g, &g->node[v]);
    if (!any)
        return SJ_OK;
    ir_graph *ng = NULL;
    sj_status st = st_rebuild(g, emit, NULL, "kron", &ng, err);
    if (st != SJ_OK)
        return st;
    ir_graph_free(g);
    *gp = ng;
    *changed = 1;
    return SJ_OK;
}
