/* Batching rules of the linear algebra ops.  These ops already treat leading
 * axes as batch axes (which must match), so a batched operand just carries
 * one more; an unbatched partner is broadcast along the batch axis.
 *
 * One exception avoids stacking copies of an unbatched matrix: when one side
 * of a matmul or a solve is an unbatched matrix (no batch axes of its own),
 * the batch is folded into the other operand's rows or columns and the
 * result is one larger GEMM or one solve with more right-hand sides (the
 * "single larger GEMM" of DESIGN.md; for solve and cholesky_solve the
 * factorisation is then done once, not per item):
 *
 *   A_b B      (A batched)   [nb·m, k] @ B                 a reshape, no copy
 *   A_bᵀ B                   ([k, nb·m])ᵀ @ B              one transpose
 *   A B_b      (B batched)   A @ [k, nb·n]                 transposes around
 *   A b_b      (b a column)  ([nb, k] @ Aᵀ)                 reshapes, no copy
 *   a_bᵀ B     (a a column)  [nb, k] @ B                   reshapes, no copy
 *   A B_bᵀ                   ([nb·n, k] @ Aᵀ), swap last two
 *   op(A)⁻¹ B_b  (left)      op(A)⁻¹ [n, nb·k]             transposes around
 *   B_b op(A)⁻¹  (right)     [nb·m, n] op(A)⁻¹             a reshape */
#include "passes/batch.h"

static ir_shape shape_of(const ir_graph *g, ir_val v) { return *ir_shape_of(g, v); }

static ir_val reshape(ir_graph *g, ir_val x, const ir_shape *s)
{
    if (x == IR_NONE)
        return IR_NONE;
    if (ir_shape_equal(ir_shape_of(g, x), s))
        return x;
    return ir_add_node(g, IR_OP_RESHAPE, 1, &x, NULL, 0, s, NULL);
}

/* [nb, p, q] -> [nb·p, q] (a reshape) and back. */
static ir_val fold_rows(ir_graph *g, ir_val x)
{
    if (x == IR_NONE)
        return IR_NONE;
    ir_shape s = shape_of(g, x), t = {.rank = 2, .dim = {s.dim[0] * s.dim[1], s.dim[2]}};
    return reshape(g, x, &t);
}
static ir_val unfold_rows(ir_graph *g, ir_val r, int64_t nb, int64_t p)
{
    if (r == IR_NONE)
        return IR_NONE;
    ir_shape t = {.rank = 3, .dim = {nb, p, ir_shape_of(g, r)->dim[1]}};
    return reshape(g, r, &t);
}

/* [nb, p, q] -> [p, nb·q] (a transpose) and back. */
static ir_val fold_cols(ir_graph *g, ir_val x)
{
    if (x == IR_NONE)
        return IR_NONE;
    ir_shape s = shape_of(g, x), t = {.rank = 2, .dim = {s.dim[1], s.dim[0] * s.dim[2]}};
    return reshape(g, bat_moveaxis(g, x, 0, 1), &t);
}
static ir_val unfold_cols(ir_graph *g, ir_val r, int64_t nb, int64_t q)
{
    if (r == IR_NONE)
        return IR_NONE;
    ir_shape t = {.rank = 3, .dim = {ir_shape_of(g, r)->dim[0], nb, q}};
    return bat_moveaxis(g, reshape(g, r, &t), 1, 0);
}

/* [nb, k, 1] -> [nb, k] (a reshape). */
static ir_val squeeze_last(ir_graph *g, ir_val x)
{
    if (x == IR_NONE)
        return IR_NONE;
    ir_shape s = shape_of(g, x), t = {.rank = 2, .dim = {s.dim[0], s.dim[1]}};
    return reshape(g, x, &t);
}

static ir_val matmul(ir_graph *g, ir_val a, ir_val b, int ta, int tb)
{
    ir_val in[2] = {a, b};
    int64_t attr[2] = {ta != 0, tb != 0};
    return ir_add_node(g, IR_OP_MATMUL, 2, in, attr, 2, NULL, NULL);
}

/* n's op with n's attributes on new operands (shape inferred). */
static ir_val same_op(ir_graph *g, const ir_node *n, const ir_val *x)
{
    return ir_add_node(g, n->op, n->ninput, x, n->attr, IR_NATTR, NULL, NULL);
}

/* Both operands batched: broadcast the unbatched one. */
static ir_val both(ir_graph *g, const ir_node *n, const ir_val *in, const int *bat, int64_t nb)
{
    ir_val x[2] = {bat_operand(g, in, bat, 0, nb), bat_operand(g, in, bat, 1, nb)};
    return same_op(g, n, x);
}

#define RULE(name)                                                                         \
    ir_val bat_##name(ir_graph *g, const ir_node *n, const ir_val *in, const int *bat,     \
                      int64_t nb)

/* ---- matmul --------------------------------------------------------------------------- */

RULE(matmul)
{
    int ta = n->attr[0] != 0, tb = n->attr[1] != 0;
    int64_t m = n->shape.dim[n->shape.rank - 2], nn = n->shape.dim[n->shape.rank - 1];
    if ((bat[0] && bat[1]) || n->shape.rank != 2)
        return both(g, n, in, bat, nb);
    if (bat[0]) {
        if (ta && m == 1) /* a_b stored [k, 1]: the rows a_bᵀ are [nb, k] */
            return unfold_rows(g, matmul(g, squeeze_last(g, in[0]), in[1], 0, tb), nb, 1);
        if (!ta) /* [nb·m, k] @ op(B) */
            return unfold_rows(g, matmul(g, fold_rows(g, in[0]), in[1], 0, tb), nb, m);
        /* A_b stored [k, m]: ([k, nb·m])ᵀ @ op(B) */
        return unfold_rows(g, matmul(g, fold_cols(g, in[0]), in[1], 1, tb), nb, m);
    }
    if (!tb && nn == 1) { /* b_b stored [k, 1]: (b_bᵀ op(A)ᵀ)ᵀ, the rows b_bᵀ [nb, k] */
        ir_shape t = {.rank = 3, .dim = {nb, m, 1}};
        return reshape(g, matmul(g, squeeze_last(g, in[1]), in[0], 0, !ta), &t);
    }
    if (!tb) /* op(A) @ [k, nb·n] */
        return unfold_cols(g, matmul(g, in[0], fold_cols(g, in[1]), ta, 0), nb, nn);
    /* B_b stored [n, k]: (B_b op(A)ᵀ)ᵀ with the rows of every item at once */
    ir_val r = unfold_rows(g, matmul(g, fold_rows(g, in[1]), in[0], 0, !ta), nb, nn);
    return r == IR_NONE ? IR_NONE : bat_moveaxis(g, r, 2, 1);
}

/* ---- operands with leading batch axes: the op takes one more ------------------------ */

RULE(outer) { return both(g, n, in, bat, nb); }
RULE(kron) { return both(g, n, in, bat, nb); }
RULE(diag) { return same_op(g, n, in); }
RULE(diag_embed) { return same_op(g, n, in); }
RULE(tril) { return same_op(g, n, in); }
RULE(triu) { return same_op(g, n, in); }
RULE(cholesky) { return same_op(g, n, in); }
RULE(logdet) { return same_op(g, n, in); }
RULE(eigvalsh) { return same_op(g, n, in); }
RULE(eigvecsh) { return same_op(g, n, in); }

/* ---- solves: an unbatched matrix takes every item's right-hand sides at once --------- */

static ir_val solve_like(ir_graph *g, const ir_node *n, const ir_val *in, const int *bat,
                         int64_t nb, int right)
{
    if (bat[0] || n->shape.rank != 2)
        return both(g, n, in, bat, nb);
    int64_t p = n->shape.dim[0], q = n->shape.dim[1];
    ir_val x[2] = {in[0], right ? fold_rows(g, in[1]) : fold_cols(g, in[1])};
    ir_val r = same_op(g, n, x);
    return right ? unfold_rows(g, r, nb, p) : unfold_cols(g, r, nb, q);
}

RULE(triangular_solve)
{
    return solve_like(g, n, in, bat, nb, (n->attr[0] & SJ_SOLVE_RIGHT) != 0);
}
RULE(cholesky_solve) { return solve_like(g, n, in, bat, nb, 0); }
RULE(solve) { return solve_like(g, n, in, bat, nb, 0); }
