/* Derivative rules of the symmetric eigendecomposition A = V diag(w) Vᵀ
 * (eigvalsh: w, eigvecsh: V).  As for cholesky, A and its tangent are
 * assumed symmetric and the reverse rules return symmetric cotangents.
 * The eigenvalues are assumed distinct: with F_ij = 1/(w_j - w_i) (i ≠ j),
 * F_ii = 0 and M = Vᵀ Ȧ V,
 *
 *   ẇ = diag(M),            V̇ = V (F ⊙ M),
 *   Ā = V diag(w̄) Vᵀ        (from w̄),
 *   Ā = sym(V (F ⊙ Vᵀ V̄) Vᵀ)  (from V̄).
 *
 * F ⊙ M has a zero diagonal, so V̇ keeps the unit norm of each column and the
 * sign convention of eigvecsh (locally constant) does not enter.  Repeated
 * eigenvalues make F infinite: the eigenvectors are then not differentiable
 * and the rules give non-finite values.  Reference: M. Giles, "An extended
 * collection of matrix derivative results for forward and reverse mode AD"
 * (2008), section 3.1. */
#include "passes/ad.h"

static ir_val vecs_of(ir_graph *g, const ir_node *n, ir_val v)
{
    return n->op == IR_OP_EIGVECSH ? v : ir_unary(g, IR_OP_EIGVECSH, n->input[0]);
}

static ir_val vals_of(ir_graph *g, const ir_node *n, ir_val v)
{
    return n->op == IR_OP_EIGVALSH ? v : ir_unary(g, IR_OP_EIGVALSH, n->input[0]);
}

/* F: (1 - I) / (w_j - w_i + I), finite on the diagonal. */
static ir_val gaps(ir_graph *g, ir_val a, ir_val w)
{
    ir_shape s = ad_shape(g, a);
    int r = s.rank;
    int64_t map[IR_MAX_RANK];
    for (int i = 0; i < r - 2; i++)
        map[i] = i;
    map[r - 2] = r - 1;
    ir_val wj = ad_broadcast(g, w, &s, map);
    map[r - 2] = r - 2;
    ir_val wi = ad_broadcast(g, w, &s, map);
    ir_val eye = ad_eye_like(g, a);
    ir_val d = ir_binary(g, IR_OP_ADD, ir_binary(g, IR_OP_SUB, wj, wi), eye);
    ir_val off = ir_binary(g, IR_OP_SUB, ad_fill(g, 1.0, &s), eye);
    return ir_binary(g, IR_OP_DIV, off, d);
}

/* M = Vᵀ T V. */
static ir_val rotate(ir_graph *g, ir_val vecs, ir_val t)
{
    return ad_matmul(g, ad_matmul(g, vecs, t, 1, 0), vecs, 0, 0);
}

ir_val jvp_eigvalsh(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    if (t[0] == IR_NONE)
        return IR_NONE;
    return ir_unary(g, IR_OP_DIAG, rotate(g, vecs_of(g, n, v), t[0]));
}

ir_val jvp_eigvecsh(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    if (t[0] == IR_NONE)
        return IR_NONE;
    ir_val f = gaps(g, n->input[0], vals_of(g, n, v));
    return ad_matmul(g, v, ir_binary(g, IR_OP_MUL, f, rotate(g, v, t[0])), 0, 0);
}

void vjp_eigvalsh(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    out[0] = IR_NONE;
    if (!need[0] || ct == IR_NONE)
        return;
    ir_val vecs = vecs_of(g, n, v);
    ir_shape s = ad_shape(g, vecs);
    int64_t map[IR_MAX_RANK];
    for (int i = 0; i < s.rank - 2; i++)
        map[i] = i;
    map[s.rank - 2] = s.rank - 1;
    ir_val scaled = ir_binary(g, IR_OP_MUL, vecs, ad_broadcast(g, ct, &s, map));
    out[0] = ad_matmul(g, scaled, vecs, 0, 1);
}

void vjp_eigvecsh(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    out[0] = IR_NONE;
    if (!need[0] || ct == IR_NONE)
        return;
    ir_val f = gaps(g, n->input[0], vals_of(g, n, v));
    ir_val inner = ir_binary(g, IR_OP_MUL, f, ad_matmul(g, v, ct, 1, 0));
    out[0] = ad_sym(g, ad_matmul(g, ad_matmul(g, v, inner, 0, 0), v, 0, 1));
}
