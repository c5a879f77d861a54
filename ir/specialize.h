/* Specialisation: binds every symbolic dimension of a graph to a size, given
 * the concrete shapes of its inputs, and re-infers every shape, so that all
 * mismatches the build could not see are reported now. */
#ifndef IR_SPECIALIZE_H
#define IR_SPECIALIZE_H

#include "ir/graph.h"

/* shapes[i] is the shape of input position i.  On success *out is a new graph
 * with the same nodes, inputs and outputs and only concrete shapes. */
sj_status ir_specialize(const ir_graph *g, const ir_shape *shapes, ir_graph **out,
                        ir_err *err);

#endif
