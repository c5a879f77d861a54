/* Automatic differentiation: the rule tables and the emitters rules share.
 * Internal to passes/.  See docs/autodiff.md.
 *
 * Every op of ir/ops.def has two rules, named after its row:
 *
 *   jvp_<name>  forward mode: given the tangents t[i] of the node's inputs,
 *               emits and returns the tangent of its output;
 *   vjp_<name>  reverse mode: given the cotangent ct of its output, emits the
 *               cotangent of each input i with need[i] set into out[i].
 *
 * IR_NONE is the symbolic zero (JAX's Zero): a zero tangent or cotangent is
 * never materialised, rules skip it, and a rule may return IR_NONE for a zero
 * result (derivatives of cmp, sign, one_hot, indices).  Errors go to g->err
 * (sticky); the walkers check it after every rule.
 *
 * The node is passed as a copy: rules append to g, which may move g->node.
 * Primal values keep their ids in the graph being built (the walkers start
 * from a copy of the primal graph), so n->input[i] and v name primal values.
 *
 * Closure invariant: rules emit only ops of ir/ops.def, all of which have
 * both rules, so derivatives of any order exist. */
#ifndef PASS_AD_H
#define PASS_AD_H

#include "ir/graph.h"

typedef ir_val jvp_rule(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t);
typedef void vjp_rule(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need,
                      ir_val *out);

#define OP(id, name, kind, arity, shape)                                                   \
    ir_val jvp_##name(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t);           \
    void vjp_##name(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need,   \
                    ir_val *out);
#include "ir/ops.def"

/* The tables of passes/rules.c, indexed by op. */
extern jvp_rule *const ad_jvp_rules[IR_NOP];
extern vjp_rule *const ad_vjp_rules[IR_NOP];

/* ---- emitters (passes/ad_emit.c); all pass IR_NONE and errors through ---- */

/* A copy of v's shape (stable while g grows). */
ir_shape ad_shape(const ir_graph *g, ir_val v);
/* Scalar c broadcast to shape s. */
ir_val ad_fill(ir_graph *g, double c, const ir_shape *s);
/* Zeros of v's shape / of shape s. */
ir_val ad_zeros_like(ir_graph *g, ir_val v);
/* a + b where either may be the symbolic zero (IR_NONE): returns the other. */
ir_val ad_add(ir_graph *g, ir_val a, ir_val b);
/* a * b (same shapes) where a zero factor (IR_NONE) gives the zero. */
ir_val ad_mul(ir_graph *g, ir_val a, ir_val b);
ir_val ad_sub(ir_graph *g, ir_val a, ir_val b);
ir_val ad_neg(ir_graph *g, ir_val a);
/* x * c for a constant c. */
ir_val ad_scale(ir_graph *g, ir_val x, double c);
/* 1.0 where cmp(a, b) holds, else 0.0. */
ir_val ad_cmp(ir_graph *g, sj_cmp c, ir_val a, ir_val b);
ir_val ad_select(ir_graph *g, ir_val pred, ir_val a, ir_val b);
/* Elementwise op with attr0 (polygamma). */
ir_val ad_unary_attr(ir_graph *g, ir_op op, ir_val x, int64_t attr0);
/* Swap of the last two axes. */
ir_val ad_mT(ir_graph *g, ir_val x);
ir_val ad_matmul(ir_graph *g, ir_val a, ir_val b, int ta, int tb);
ir_val ad_trisolve(ir_graph *g, ir_val a, ir_val b, int64_t flags);
ir_val ad_tril(ir_graph *g, ir_val x, int64_t k);
ir_val ad_triu(ir_graph *g, ir_val x, int64_t k);
ir_val ad_reshape(ir_graph *g, ir_val x, const ir_shape *s);
/* x broadcast to s with input axis i going to output axis map[i]. */
ir_val ad_broadcast(ir_graph *g, ir_val x, const ir_shape *s, const int64_t *map);
/* Sum over the axes in mask (removed). */
ir_val ad_sum(ir_graph *g, ir_val x, int64_t mask);
/* The reverse of a broadcast of x_shape to ct's shape with axis map map:
 * sums ct over the new axes and over stretched size-1 axes, then reshapes to
 * x_shape. */
ir_val ad_unbroadcast(ir_graph *g, ir_val ct, const ir_shape *x_shape, const int64_t *map);
/* Identity of size n broadcast to batch axes of `like` ([..., n, n]). */
ir_val ad_eye_like(ir_graph *g, ir_val like);
/* Lower triangle with halved diagonal: tril(x) - diag_embed(diag(x)) / 2. */
ir_val ad_phi(ir_graph *g, ir_val x);
/* (x + xᵀ) / 2 over the last two axes. */
ir_val ad_sym(ir_graph *g, ir_val x);

/* The Jacobian of shape out_s ++ in_s from its pieces: by_column, part j is
 * the column for input element j (shape out_s); otherwise part i is the row
 * for output element i (shape in_s).  IR_NONE parts are zero. */
ir_val ad_stack_jacobian(ir_graph *g, int nparts, const ir_val *parts, const ir_shape *out_s,
                         const ir_shape *in_s, int by_column);
/* A constant of shape s that is 1 at flat index i and 0 elsewhere. */
ir_val ad_basis(ir_graph *g, const ir_shape *s, size_t i);

#endif
