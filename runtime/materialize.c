#include "runtime/materialize.h"

#include "ir/specialize.h"

sj_status rt_fn_materialize(const sj_fn *fn, const ir_shape *shapes, ir_graph **out, ir_err *err)
{
    return ir_specialize(fn->ir, shapes, out, err);
}
