/* TEMPORARY scaffold, replaced by the real evaluator before commit. */
#include "ir/eval.h"
sj_status ir_eval(const ir_graph *g, const double *const *inputs, double *const *outputs, ir_err *err)
{
    (void)g; (void)inputs; (void)outputs;
    return ir_fail(err, SJ_ERR_UNSUPPORTED, "evaluator not written yet");
}
