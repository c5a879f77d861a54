/* The layouts behind sj_fn and sj_compiled.  Internal. */
#ifndef RT_HANDLES_H
#define RT_HANDLES_H

#include "frontend/handles.h"
#include "ir/graph.h"

struct sj_fn {
    uint32_t magic;
    sj_ctx *ctx;
    ir_graph *ir; /* owned copy; outputs set */
};

struct sj_compiled {
    uint32_t magic;
    sj_ctx *ctx;
    ir_graph *ir; /* owned, specialised: concrete shapes only */
};

int rt_fn_valid(const sj_fn *fn);
int rt_compiled_valid(const sj_compiled *c);

#endif
