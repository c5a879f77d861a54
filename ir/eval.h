/* The reference evaluator: interprets a specialised graph on row-major f64
 * arrays, op by op, calling LAPACKE for factorizations.  It is the oracle the
 * code generator is tested against, so it favours plain loops over speed. */
#ifndef IR_EVAL_H
#define IR_EVAL_H

#include "ir/graph.h"

/* inputs[i] holds input position i (shape as in g); outputs[k] has room for
 * output k.  Kernel failures (not positive definite, singular, an index out of
 * range) return a status naming the op and value; outputs are then left
 * unchanged. */
sj_status ir_eval(const ir_graph *g, const double *const *inputs, double *const *outputs,
                  ir_err *err);

#endif
