/* Turns a function into the concrete graph that is evaluated or compiled for
 * given input shapes: specialisation now; the function's pending transforms
 * (grad, vmap, ...) are applied here as they arrive. */
#ifndef RT_MATERIALIZE_H
#define RT_MATERIALIZE_H

#include "runtime/handles.h"

/* shapes[i] is the concrete shape of input i of fn. */
sj_status rt_fn_materialize(const sj_fn *fn, const ir_shape *shapes, ir_graph **out,
                            ir_err *err);

/* 0 when SJ_NO_REWRITE is set (non-empty and not "0"): the structure
 * rewrites are then skipped. */
int rt_structure_rewrites_enabled(void);

#endif
