/* The verifier: checks a graph's invariants — inputs precede their users,
 * arities match the op table, every stored shape is what the op's shape rule
 * infers, inputs and outputs name real nodes.  Passes run it after each
 * rewrite in debug builds; a failure there is a bug in a pass. */
#ifndef IR_VERIFY_H
#define IR_VERIFY_H

#include "ir/graph.h"

sj_status ir_verify(const ir_graph *g, ir_err *err);

#endif
