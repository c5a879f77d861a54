/* Derivative rules of the linear algebra ops, in closed form rather than by
 * differentiating LAPACK's loops.  Matrices are the last two axes; leading
 * axes are batch axes.
 *
 * Symmetric inputs.  cholesky and logdet (and the A = L Lᵀ inside
 * cholesky_solve) are functions of a symmetric positive definite A.  As in
 * JAX, their rules assume that A and its tangent are symmetric, and the
 * reverse rules return the symmetric cotangent sym(Ā) = (Ā + Āᵀ)/2.  A
 * function that reads a general matrix should symmetrise it first
 * ((A + Aᵀ)/2); the tests do.
 *
 * References: I. Murray, "Differentiation of the Cholesky decomposition",
 * arXiv:1602.07527 (2016), eqs. (8) and (10); M. Giles, "An extended
 * collection of matrix derivative results for forward and reverse mode AD"
 * (2008), for solve, triangular solve and log det. */
#include "passes/ad.h"

/* ---- matmul (attr0: transpose a, attr1: transpose b), bilinear --------------- */

ir_val jvp_matmul(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    int ta = (int)n->attr[0], tb = (int)n->attr[1];
    ir_val a = n->input[0], b = n->input[1];
    return ad_add(g, ad_matmul(g, t[0], b, ta, tb), ad_matmul(g, a, t[1], ta, tb));
}

/* C = op(A) op(B):  op(A)‾ = C̄ op(B)ᵀ,  op(B)‾ = op(A)ᵀ C̄. */
void vjp_matmul(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    int ta = (int)n->attr[0], tb = (int)n->attr[1];
    ir_val a = n->input[0], b = n->input[1];
    out[0] = out[1] = IR_NONE;
    if (need[0])
        out[0] = ta ? ad_matmul(g, b, ct, tb, 1) : ad_matmul(g, ct, b, 0, !tb);
    if (need[1])
        out[1] = tb ? ad_matmul(g, ct, a, 1, ta) : ad_matmul(g, a, ct, !ta, 0);
}

/* ---- outer: [..., m] x [..., n] -> [..., m, n] ---------------------------------- */

ir_val jvp_outer(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    ir_val a = n->input[0], b = n->input[1], r = IR_NONE;
    if (t[0] != IR_NONE)
        r = ir_binary(g, IR_OP_OUTER, t[0], b);
    if (t[1] != IR_NONE)
        r = ad_add(g, r, ir_binary(g, IR_OP_OUTER, a, t[1]));
    return r;
}

/* x [..., k] as a column [..., k, 1]. */
static ir_val column(ir_graph *g, ir_val x)
{
    ir_shape s = ad_shape(g, x);
    s.dim[s.rank++] = 1;
    return ad_reshape(g, x, &s);
}

void vjp_outer(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    ir_val a = n->input[0], b = n->input[1];
    ir_shape as = ad_shape(g, a), bs = ad_shape(g, b);
    out[0] = need[0] ? ad_reshape(g, ad_matmul(g, ct, column(g, b), 0, 0), &as) : IR_NONE;
    out[1] = need[1] ? ad_reshape(g, ad_matmul(g, ct, column(g, a), 1, 0), &bs) : IR_NONE;
}

/* ---- kron: A [.., p, q] ⊗ B [.., r, s] = [.., p·r, q·s] ------------------------- */

ir_val jvp_kron(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    ir_val a = n->input[0], b = n->input[1], r = IR_NONE;
    if (t[0] != IR_NONE)
        r = ir_binary(g, IR_OP_KRON, t[0], b);
    if (t[1] != IR_NONE)
        r = ad_add(g, r, ir_binary(g, IR_OP_KRON, a, t[1]));
    return r;
}

/* With C̄ viewed as R[.., i, k, j, l] (C[i·r + k, j·s + l] = A[i,j] B[k,l]):
 * Ā[i,j] = Σ_kl R[i,k,j,l] B[k,l],  B̄[k,l] = Σ_ij R[i,k,j,l] A[i,j]. */
void vjp_kron(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    ir_val a = n->input[0], b = n->input[1];
    ir_shape as = ad_shape(g, a), bs = ad_shape(g, b);
    int nb = as.rank - 2;
    out[0] = out[1] = IR_NONE;
    if (nb + 4 > IR_MAX_RANK) {
        ir_fail(&g->err, SJ_ERR_UNSUPPORTED,
                "kron: the reverse rule needs rank %d, more than %d axes", nb + 4, IR_MAX_RANK);
        return;
    }
    ir_shape rs = as;
    rs.rank = nb + 4;
    rs.dim[nb] = as.dim[nb];
    rs.dim[nb + 1] = bs.dim[nb];
    rs.dim[nb + 2] = as.dim[nb + 1];
    rs.dim[nb + 3] = bs.dim[nb + 1];
    ir_val r = ad_reshape(g, ct, &rs);
    int64_t map[IR_MAX_RANK];
    for (int i = 0; i < nb; i++)
        map[i] = i;
    if (need[0]) {
        map[nb] = nb + 1;
        map[nb + 1] = nb + 3;
        ir_val bb = ad_broadcast(g, b, &rs, map);
        out[0] = ad_sum(g, ir_binary(g, IR_OP_MUL, r, bb), ((int64_t)1 << (nb + 1)) | ((int64_t)1 << (nb + 3)));
    }
    if (need[1]) {
        map[nb] = nb;
        map[nb + 1] = nb + 2;
        ir_val ab = ad_broadcast(g, a, &rs, map);
        out[1] = ad_sum(g, ir_binary(g, IR_OP_MUL, r, ab), ((int64_t)1 << nb) | ((int64_t)1 << (nb + 2)));
    }
}

/* ---- diag, diag_embed, tril, triu: linear ---------------------------------------- */

ir_val jvp_diag(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return ir_unary(g, IR_OP_DIAG, t[0]);
}
void vjp_diag(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    out[0] = ir_unary(g, IR_OP_DIAG_EMBED, ct);
}

ir_val jvp_diag_embed(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return ir_unary(g, IR_OP_DIAG_EMBED, t[0]);
}
void vjp_diag_embed(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need,
                    ir_val *out)
{
    out[0] = ir_unary(g, IR_OP_DIAG, ct);
}

/* Masking by a triangle is self-adjoint. */
ir_val jvp_tril(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return ad_tril(g, t[0], n->attr[0]);
}
void vjp_tril(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    out[0] = ad_tril(g, ct, n->attr[0]);
}
ir_val jvp_triu(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return ad_triu(g, t[0], n->attr[0]);
}
void vjp_triu(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    out[0] = ad_triu(g, ct, n->attr[0]);
}

/* ---- cholesky: L = chol(A), A = L Lᵀ ----------------------------------------------- */

/* Murray (2016) eq. (8): L̇ = L Φ(L⁻¹ Ȧ L⁻ᵀ), Φ = lower triangle with the
 * diagonal halved. */
ir_val jvp_cholesky(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    ir_val x = ad_trisolve(g, v, t[0], 0);
    ir_val y = ad_trisolve(g, v, x, SJ_SOLVE_RIGHT | SJ_SOLVE_TRANSPOSE);
    return ad_matmul(g, v, ad_phi(g, y), 0, 0);
}

/* S when s = m + mᵀ (over the last two axes), the form vjp_cholesky_solve
 * gives its symmetric matrix; else IR_NONE. */
static ir_val symmetric_sum(const ir_graph *g, ir_val s)
{
    const ir_node *a = ir_node_at(g, s);
    if (a->op != IR_OP_ADD || a->ninput != 2)
        return IR_NONE;
    const ir_node *t = ir_node_at(g, a->input[1]);
    int r = t->shape.rank;
    if (t->op != IR_OP_TRANSPOSE || t->input[0] != a->input[0] || r < 2 ||
        ir_shape_of(g, a->input[0])->rank != r)
        return IR_NONE;
    for (int i = 0; i < r - 2; i++)
        if (t->attr[i] != i)
            return IR_NONE;
    return t->attr[r - 2] == r - 1 && t->attr[r - 1] == r - 2 ? s : IR_NONE;
}

/* Splits the cotangent ct of L = chol(A) (v) into terms ±tril(S tril(L))
 * with S = m + mᵀ symmetric, which vjp_cholesky_solve emits, and the rest.
 * For such a term the adjoint is simply ±S/2: with dA = dL Lᵀ + L dLᵀ and S
 * symmetric, ⟨S/2, dA⟩ = ⟨S L, dL⟩ = ⟨tril(S L), dL⟩ for lower dL.  So the
 * chain A → L → (L Lᵀ)⁻¹ B costs no n×n products and solves (Murray's
 * general formula below costs a GEMM and two n-column TRSMs, 4n³ flops, and
 * the S tril(L) product 2n³ more).  Adds the ±S/2 terms to *direct and the
 * rest to *rest; sign is ±1.  Walks only the sums and negations the walker
 * and that rule make. */
static void split_cotangent(ir_graph *g, ir_val v, ir_val ct, double sign, ir_val *direct,
                            ir_val *rest)
{
    const ir_node *c = ir_node_at(g, ct);
    ir_shape cs = c->shape;
    if (c->op == IR_OP_ADD && c->ninput == 2 && ir_shape_equal(ir_shape_of(g, c->input[0]), &cs) &&
        ir_shape_equal(ir_shape_of(g, c->input[1]), &cs)) {
        ir_val a = c->input[0], b = c->input[1];
        split_cotangent(g, v, a, sign, direct, rest);
        split_cotangent(g, v, b, sign, direct, rest);
        return;
    }
    if (c->op == IR_OP_NEG) {
        split_cotangent(g, v, c->input[0], -sign, direct, rest);
        return;
    }
    if (c->op == IR_OP_TRIL && c->attr[0] == 0) {
        const ir_node *m = ir_node_at(g, c->input[0]);
        if (m->op == IR_OP_MATMUL && m->attr[0] == 0 && m->attr[1] == 0) {
            const ir_node *lt = ir_node_at(g, m->input[1]);
            ir_val s = symmetric_sum(g, m->input[0]);
            if (lt->op == IR_OP_TRIL && lt->attr[0] == 0 && lt->input[0] == v && s != IR_NONE) {
                *direct = ad_add(g, *direct, ad_scale(g, s, 0.5 * sign));
                return;
            }
        }
    }
    *rest = ad_add(g, *rest, ad_scale(g, ct, sign));
}

/* The adjoint of the above: Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹) (Murray eq. (10),
 * symmetrised), except for the terms split_cotangent recognises. */
void vjp_cholesky(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    ir_val direct = IR_NONE, rest = IR_NONE;
    split_cotangent(g, v, ct, 1.0, &direct, &rest);
    if (direct == IR_NONE)
        rest = ct; /* nothing recognised: keep ct rather than its rebuilt copy */
    if (rest != IR_NONE) {
        ir_val p = ad_phi(g, ad_matmul(g, v, rest, 1, 0));
        ir_val x = ad_trisolve(g, v, p, SJ_SOLVE_TRANSPOSE);
        ir_val s = ad_trisolve(g, v, x, SJ_SOLVE_RIGHT);
        rest = ad_sym(g, s);
    }
    out[0] = ad_add(g, direct, rest);
}

/* ---- triangular_solve: X = op(A)⁻¹ B, or B op(A)⁻¹ with SJ_SOLVE_RIGHT ------------- */

/* Only A's triangle is read, so its tangent and cotangent are masked to it. */
static ir_val triangle(ir_graph *g, ir_val x, int64_t flags)
{
    return (flags & SJ_SOLVE_UPPER) ? ad_triu(g, x, 0) : ad_tril(g, x, 0);
}

/* Left: Ẋ = op(A)⁻¹ (Ḃ - op(Ȧ) X);  right: Ẋ = (Ḃ - X op(Ȧ)) op(A)⁻¹. */
ir_val jvp_triangular_solve(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    int64_t flags = n->attr[0];
    int tr = (flags & SJ_SOLVE_TRANSPOSE) != 0;
    ir_val r = t[1];
    if (t[0] != IR_NONE) {
        ir_val am = triangle(g, t[0], flags);
        r = ad_sub(g, r, (flags & SJ_SOLVE_RIGHT) ? ad_matmul(g, v, am, 0, tr)
                                                   : ad_matmul(g, am, v, tr, 0));
    }
    return ad_trisolve(g, n->input[0], r, flags);
}

/* B̄ = op(A)⁻ᵀ X̄ (left) or X̄ op(A)⁻ᵀ (right); op(A)‾ = -B̄ Xᵀ (left) or
 * -Xᵀ B̄ (right), transposed back when op(A) = Aᵀ, masked to the triangle. */
void vjp_triangular_solve(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need,
                          ir_val *out)
{
    int64_t flags = n->attr[0];
    int tr = (flags & SJ_SOLVE_TRANSPOSE) != 0;
    ir_val bbar = ad_trisolve(g, n->input[0], ct, flags ^ SJ_SOLVE_TRANSPOSE);
    out[1] = need[1] ? bbar : IR_NONE;
    out[0] = IR_NONE;
    if (need[0]) {
        ir_val m;
        if (flags & SJ_SOLVE_RIGHT)
            m = tr ? ad_matmul(g, bbar, v, 1, 0) : ad_matmul(g, v, bbar, 1, 0);
        else
            m = tr ? ad_matmul(g, v, bbar, 0, 1) : ad_matmul(g, bbar, v, 0, 1);
        out[0] = ad_neg(g, triangle(g, m, flags));
    }
}

/* ---- cholesky_solve: X = (L Lᵀ)⁻¹ B as a function of L (lower) and B --------------- */

/* TA when dl is the tangent jvp_cholesky made of L from the tangent TA of A,
 * dl = L Φ(L⁻¹ TA L⁻ᵀ); else IR_NONE.  Then dl Lᵀ + L dlᵀ = L (Φ(Y) + Φ(Y)ᵀ) Lᵀ
 * = L Y Lᵀ = TA (Y = L⁻¹ TA L⁻ᵀ symmetric, as TA is by the convention of the
 * cholesky rules), so Ȧ needs neither dl nor the two n×n products. */
static ir_val cholesky_tangent_source(const ir_graph *g, ir_val l, ir_val dl)
{
    const ir_node *m = ir_node_at(g, dl);
    if (m->op != IR_OP_MATMUL || m->attr[0] || m->attr[1] || m->input[0] != l)
        return IR_NONE;
    const ir_node *p = ir_node_at(g, m->input[1]); /* Φ(y) = tril(y) - diag/2 */
    if (p->op != IR_OP_SUB)
        return IR_NONE;
    const ir_node *tr = ir_node_at(g, p->input[0]);
    if (tr->op != IR_OP_TRIL || tr->attr[0] != 0)
        return IR_NONE;
    const ir_node *y = ir_node_at(g, tr->input[0]);
    if (y->op != IR_OP_TRISOLVE || y->attr[0] != (SJ_SOLVE_RIGHT | SJ_SOLVE_TRANSPOSE) ||
        y->input[0] != l)
        return IR_NONE;
    const ir_node *x = ir_node_at(g, y->input[1]);
    if (x->op != IR_OP_TRISOLVE || x->attr[0] != 0 || x->input[0] != l)
        return IR_NONE;
    return x->input[1];
}

/* b is an identity: eye(n), or eye(n) broadcast over leading batch axes. */
static int is_eye(const ir_graph *g, ir_val b)
{
    const ir_node *n = ir_node_at(g, b);
    if (n->op == IR_OP_EYE)
        return 1;
    if (n->op != IR_OP_BROADCAST)
        return 0;
    const ir_node *e = ir_node_at(g, n->input[0]);
    int r = n->shape.rank;
    return e->op == IR_OP_EYE && e->shape.rank == 2 && r >= 2 && n->attr[0] == r - 2 &&
           n->attr[1] == r - 1 && e->shape.dim[0] == n->shape.dim[r - 2] &&
           e->shape.dim[1] == n->shape.dim[r - 1];
}

/* Ȧ = L̇ Lᵀ + L L̇ᵀ (L̇ masked to the lower triangle);  Ẋ = A⁻¹ (Ḃ - Ȧ X).
 * When L̇ is the Cholesky tangent of Ȧ, Ȧ is read off it.  When moreover B
 * is the identity (X = A⁻¹, the inverse the logdet rules write) and constant,
 * Ẋ = -X (Ȧ X): a GEMM instead of two n-column triangular solves (the same
 * flops, at GEMM's speed), and Ȧ X is cheap when Ȧ is structured
 * (structure_gram.c). */
ir_val jvp_cholesky_solve(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    ir_val l = n->input[0], r = t[1];
    ir_val da = t[0] == IR_NONE ? IR_NONE : cholesky_tangent_source(g, l, t[0]);
    if (da != IR_NONE && r == IR_NONE && is_eye(g, n->input[1]))
        return ad_neg(g, ad_matmul(g, v, ad_matmul(g, da, v, 0, 0), 0, 0));
    if (da != IR_NONE) {
        r = ad_sub(g, r, ad_matmul(g, da, v, 0, 0));
        return ir_binary(g, IR_OP_CHOSOLVE, l, r);
    }
    if (t[0] != IR_NONE) {
        /* tril(L): only the lower triangle is read, whatever the rest holds. */
        ir_val dl = ad_tril(g, t[0], 0);
        l = ad_tril(g, l, 0);
        ir_val a1 = ad_matmul(g, dl, ad_matmul(g, l, v, 1, 0), 0, 0);
        ir_val a2 = ad_matmul(g, l, ad_matmul(g, dl, v, 1, 0), 0, 0);
        r = ad_sub(g, r, ad_add(g, a1, a2));
    }
    return r == IR_NONE ? IR_NONE : ir_binary(g, IR_OP_CHOSOLVE, l, r);
}

/* B̄ = A⁻¹ X̄;  Ā = -B̄ Xᵀ;  L̄ = tril((Ā + Āᵀ) tril(L)). */
void vjp_cholesky_solve(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need,
                        ir_val *out)
{
    ir_val l = n->input[0];
    ir_val bbar = ir_binary(g, IR_OP_CHOSOLVE, l, ct);
    out[1] = need[1] ? bbar : IR_NONE;
    out[0] = IR_NONE;
    if (need[0]) {
        ir_val m = ad_matmul(g, bbar, v, 0, 1);
        m = ir_binary(g, IR_OP_ADD, m, ad_mT(g, m));
        out[0] = ad_neg(g, ad_tril(g, ad_matmul(g, m, ad_tril(g, l, 0), 0, 0), 0));
    }
}

/* ---- logdet of a symmetric positive definite A --------------------------------------- */

/* A⁻¹ through the Cholesky factor: cholesky_solve(chol(A), I). */
static ir_val inverse_spd(ir_graph *g, ir_val a)
{
    ir_val l = ir_unary(g, IR_OP_CHOLESKY, a);
    return ir_binary(g, IR_OP_CHOSOLVE, l, ad_eye_like(g, a));
}

/* d log det A = tr(A⁻¹ Ȧ) = Σ (A⁻¹ ⊙ Ȧ) (A⁻¹ symmetric). */
ir_val jvp_logdet(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    ir_val a = n->input[0];
    int r = ir_shape_of(g, a)->rank;
    ir_val prod = ir_binary(g, IR_OP_MUL, inverse_spd(g, a), t[0]);
    return ad_sum(g, prod, (int64_t)3 << (r - 2));
}

/* Ā = ḡ A⁻¹ (symmetric). */
void vjp_logdet(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    ir_val a = n->input[0];
    ir_shape as = ad_shape(g, a);
    int64_t map[IR_MAX_RANK];
    for (int i = 0; i < as.rank - 2; i++)
        map[i] = i;
    ir_val c = ad_broadcast(g, ct, &as, map);
    out[0] = ir_binary(g, IR_OP_MUL, c, inverse_spd(g, a));
}

/* ---- solve: X = A⁻¹ B (LU) ---------------------------------------------------------------- */

/* Ẋ = A⁻¹ (Ḃ - Ȧ X). */
ir_val jvp_solve(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    ir_val r = ad_sub(g, t[1], ad_matmul(g, t[0], v, 0, 0));
    return r == IR_NONE ? IR_NONE : ir_binary(g, IR_OP_SOLVE, n->input[0], r);
}

/* B̄ = A⁻ᵀ X̄;  Ā = -B̄ Xᵀ. */
void vjp_solve(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    ir_val bbar = ir_binary(g, IR_OP_SOLVE, ad_mT(g, n->input[0]), ct);
    out[1] = need[1] ? bbar : IR_NONE;
    out[0] = need[0] ? ad_neg(g, ad_matmul(g, bbar, v, 0, 1)) : IR_NONE;
}
