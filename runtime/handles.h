/* The layouts behind sj_fn and sj_compiled.  Internal. */
#ifndef RT_HANDLES_H
#define RT_HANDLES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "frontend/handles.h"
#include "ir/graph.h"
#include "runtime/scratch.h"

struct rt_fnrec;
struct rt_tile;
struct cg_kernel;

struct sj_fn {
    uint32_t magic;
    sj_ctx *ctx;
    ir_graph *ir; /* owned copy; outputs set */
    /* rt_fn_fingerprint(fn), computed once by sj_fn_create. */
    uint64_t fingerprint;
    /* The function's record in ctx's compile cache, found (by fingerprint and
     * a full comparison of the serialised function) on the first compile and
     * kept so that later lookups compare one pointer.  Owned by the cache. */
    _Atomic(struct rt_fnrec *) rec;
    /* Pending transforms (runtime/transform.c), applied in order to the
     * specialised `ir` by rt_fn_materialize; none for sj_fn_create. */
    struct rt_xform *xform;
    uint32_t nxform;
    /* The signature after the transforms: a graph of INPUT nodes only, with
     * the inputs' names and declared shapes and one unregistered INPUT node
     * per output carrying its build-time shape.  NULL when nxform == 0 (the
     * signature is then `ir` itself); read it through rt_fn_sig. */
    ir_graph *sig;
};

/* The graph whose inputs, input names, declared shapes and output shapes are
 * fn's signature. */
static inline const ir_graph *rt_fn_sig(const sj_fn *fn) { return fn->sig ? fn->sig : fn->ir; }
/* Frees fn's transform chain and signature (runtime/transform.c). */
void rt_fn_free_xforms(sj_fn *fn);

/* A specialised function.  sj_fn_specialize makes one with the graph only
 * (reference evaluator); sj_fn_compile adds native code.  Reference counted:
 * the compile cache holds one reference, every sj_fn_compile result another,
 * and the last sj_compiled_free frees it. */
struct sj_compiled {
    uint32_t magic;
    sj_ctx *ctx;
    ir_graph *ir; /* owned, specialised: concrete shapes only */
    atomic_long refs;
    struct cg_kernel *kernel; /* owned; NULL when made by sj_fn_specialize or tiled */
    /* Scratch for the kernel's intermediates, planned once per
     * specialisation: one buffer per concurrent call. */
    rt_pool scratch;
    /* A vmapped function run as chunks of a smaller batch (runtime/tile.c):
     * owned, NULL otherwise.  `ir` is then the whole function's graph (for
     * shapes, printing and the evaluator) and `kernel` is NULL. */
    struct rt_tile *tile;
};

int rt_fn_valid(const sj_fn *fn);
int rt_compiled_valid(const sj_compiled *c);

/* A new sj_compiled (one reference) owning spec and kernel (kernel may be
 * NULL); NULL when out of memory, and then neither is freed. */
sj_compiled *rt_compiled_new(sj_ctx *ctx, ir_graph *spec, struct cg_kernel *kernel);
/* Adds a reference. */
void rt_compiled_retain(sj_compiled *c);

/* Inputs up to this many have their shapes on the stack. */
#define RT_SMALL_NINPUT 16
/* Checks the public (ninput, ranks, dims) arguments against fn and turns them
 * into shapes: *out is small (room for RT_SMALL_NINPUT) or, for more inputs,
 * a buffer the caller frees with ir_free.  Errors go to fn's context, with
 * `who` (the public function) in the message. */
sj_status rt_shapes_from(const sj_fn *fn, int ninput, const int *ranks,
                         const int64_t *const *dims, ir_shape *small, ir_shape **out,
                         const char *who);

#endif
