/* The clean-up pipeline run after every transform (XLA's pass-pipeline
 * habit: one list, in order, repeated until nothing changes).  Each pass
 * returns a status and whether it changed the graph. */
#include "passes/passes.h"

typedef sj_status pass_fn(ir_graph **g, int *changed, ir_err *err);

static const struct {
    const char *name;
    pass_fn *run;
} cleanup[] = {
    {"dce", pass_dce},
    {"cse", pass_cse},
};

/* Enough for any graph: each round that changes something removes nodes. */
#define MAX_ROUNDS 16

sj_status pass_cleanup(ir_graph **g, ir_err *err)
{
    for (int round = 0; round < MAX_ROUNDS; round++) {
        int any = 0;
        for (size_t i = 0; i < sizeof cleanup / sizeof cleanup[0]; i++) {
            int changed = 0;
            sj_status st = cleanup[i].run(g, &changed, err);
            if (st != SJ_OK)
                return st;
            any |= changed;
        }
        if (!any)
            break;
    }
    return SJ_OK;
}
