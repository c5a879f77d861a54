/* Batching (vmap): the rule table and the emitters rules share.  Internal to
 * passes/.  See docs/vmap.md.
 *
 * Every op of ir/ops.def has a batching rule bat_<name> (JAX's
 * batching.py): given the node of the unbatched graph and its inputs in the
 * batched graph, where in[i] has the batch axis at position 0 when bat[i]
 * is set and is the unbatched value otherwise (the "not batched" marker: a
 * value that depends on no batched input is computed once, never stacked),
 * the rule emits the batched result, of shape [nb] ++ shape(node), and
 * returns it.  The walker (passes/batch.c) calls a rule only when at least
 * one input is batched, and copies every other node unchanged.
 *
 * The node is the one of the unbatched graph: its input ids belong to that
 * graph, so rules read only in[], attributes and shapes.  Errors go to g->err
 * (sticky); the walker checks it after every rule.
 *
 * Kind defaults (passes/rules_batch.c): every elementwise op (unary, binary,
 * compare, select) shares one rule that broadcasts the unbatched operands to
 * the batched shape; the reductions share one that shifts the axis mask.
 * Every other op writes its own rule, and one missing fails the link.
 *
 * Closure invariant: rules emit only ops of ir/ops.def, all of which have
 * jvp, vjp and batching rules. */
#ifndef PASS_BATCH_H
#define PASS_BATCH_H

#include "ir/graph.h"

typedef ir_val bat_rule(ir_graph *g, const ir_node *n, const ir_val *in, const int *bat,
                        int64_t nb);

#define OP(id, name, kind, arity, shape)                                                   \
    ir_val bat_##name(ir_graph *g, const ir_node *n, const ir_val *in, const int *bat,     \
                      int64_t nb);
#include "ir/ops.def"

/* The table of passes/batch_rules.c, indexed by op. */
extern bat_rule *const bat_rules[IR_NOP];

/* ---- emitters (passes/rules_batch.c); all pass IR_NONE through ------------------ */

/* x (unbatched) with a batch axis of size nb in front: [nb] ++ shape(x). */
ir_val bat_expand(ir_graph *g, ir_val x, int64_t nb);
/* in[i] if batched, else bat_expand(in[i]). */
ir_val bat_operand(ir_graph *g, const ir_val *in, const int *bat, int i, int64_t nb);
/* x with its axis `from` moved to position `to` (the others keep their order). */
ir_val bat_moveaxis(ir_graph *g, ir_val x, int from, int to);
/* x (unbatched, shape s) broadcast to have a new axis of size nb at `at`. */
ir_val bat_insert_axis(ir_graph *g, ir_val x, int at, int64_t nb);

#endif
