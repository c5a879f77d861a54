/* Pending transforms of an sj_fn (grad, jvp, ...).  A transformed function
 * keeps its base graph and a chain of steps; rt_fn_materialize applies the
 * chain to the specialised base graph.  The signature of every step's result
 * (input names, declared shapes, output shapes) is computed when the
 * transform is made, so the function can be queried and transformed again
 * before any shape is known.  Internal. */
#ifndef RT_TRANSFORM_H
#define RT_TRANSFORM_H

#include "runtime/handles.h"

typedef enum rt_xform_kind {
    RT_XF_JVP,    /* flag: only the tangents are outputs */
    RT_XF_VJP,
    RT_XF_GRAD,   /* flag: the value first */
    RT_XF_JACFWD, /* output < 0: every output */
    RT_XF_JACREV,
    RT_XF_VMAP    /* in_axes, out_axes, batch_dim; no new inputs */
} rt_xform_kind;

/* One step: applies to a function of ninner inputs and makes one of
 * ninner + nname inputs (the new ones named name[]). */
typedef struct rt_xform {
    rt_xform_kind kind;
    int output;
    int flag;
    int nwrt;
    int *wrt;
    int nname;
    char **name;
    uint32_t ninner;
    /* RT_XF_VMAP only: the batch axis of each of the ninner inputs (-1: not
     * batched) and of each of the nout_axes outputs (-1: none), and the batch
     * dimension as given to sj_vmap (NULL for "?"). */
    int *in_axes;
    int nout_axes;
    int *out_axes;
    char *batch_dim;
} rt_xform;

/* Applies step x to the concrete graph g (which has x->ninner inputs); the
 * result's added inputs are checked against shapes[ninner..].  shapes are the
 * input shapes of the step's result (see rt_xform_inner_shapes). */
sj_status rt_xform_apply(const rt_xform *x, const ir_graph *g, const ir_shape *shapes,
                         ir_graph **out, ir_err *err);

/* The input shapes of the function step x applies to (x->ninner of them, into
 * inner) given those of its result (shapes): a prefix for the derivative
 * steps, the batch axes removed for vmap.  Checks what can be checked before
 * the step runs: for vmap, that each batched input has its batch axis and
 * that all batch sizes agree (naming both inputs otherwise).  names[p] is
 * input p's name (the same at every step: steps only append inputs). */
sj_status rt_xform_inner_shapes(const rt_xform *x, const ir_shape *shapes,
                                const char *const *names, ir_shape *inner, ir_err *err);

#endif
