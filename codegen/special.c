/* Special functions the generated code calls (registered in the JIT as
 * absolute symbols).  digamma and polygamma are the reference evaluator's own
 * (ir_digamma, ir_polygamma), so compiled code matches the oracle exactly;
 * log-gamma goes through lgamma_r so that concurrent kernels do not race on
 * the global signgam.  Plain C, no LLVM. */
#include <math.h>

#include "codegen/cg.h"

double cg_lgamma(double x)
{
    int sign;
    return lgamma_r(x, &sign);
}
