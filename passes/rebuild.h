/* Copying a graph node by node into a new one, the way every clean-up pass
 * builds its result.  Internal to passes/. */
#ifndef PASS_REBUILD_H
#define PASS_REBUILD_H

#include "ir/graph.h"

/* Called for each kept node with its inputs already renamed; returns the
 * value it maps to in ng (an existing one to merge it, or a new node). */
typedef ir_val rebuild_fn(void *ctx, ir_graph *ng, const ir_node *n, const ir_val *inputs);

/* Copies the nodes v of g with keep[v] (all if keep is NULL) into a new
 * graph, in order, with their symbols, inputs (names and positions) and
 * outputs.  add (NULL: append a copy) may merge a node into an earlier one. */
sj_status pass_rebuild_with(const ir_graph *g, const unsigned char *keep, rebuild_fn *add,
                            void *ctx, ir_graph **out, ir_err *err);
/* pass_rebuild_with with plain copying (the ctx argument is unused). */
sj_status pass_rebuild(const ir_graph *g, const unsigned char *keep, void *unused,
                       ir_graph **out, ir_err *err);

/* Appends a copy of n with the given inputs. */
ir_val pass_copy_node(ir_graph *ng, const ir_node *n, const ir_val *inputs);

/* Appends the nodes of the concrete graph sub to g, with sub's input p
 * replaced by args[p] (of the same shape); outs[k] receives sub's output k.
 * The problems of sub's fit nodes are copied into g.  Errors are recorded on
 * g (sticky) and returned. */
sj_status pass_inline(ir_graph *g, const ir_graph *sub, const ir_val *args, ir_val *outs);

#endif
