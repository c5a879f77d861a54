/* A cache miss: materialise the function for the shapes, lower it to native
 * code, and wrap both in an sj_compiled. */
#include "runtime/compile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/codegen.h"
#include "ir/alloc.h"
#include "ir/print.h"
#include "runtime/materialize.h"
#include "runtime/tile.h"

double rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Whether SJ_DUMP (a comma-separated list: graph, llvm, all) names what. */
static int dump_wants(const char *what)
{
    const char *env = getenv("SJ_DUMP");
    if (!env)
        return 0;
    size_t n = strlen(what);
    for (const char *p = env; *p;) {
        size_t len = strcspn(p, ",");
        if ((len == n && strncmp(p, what, n) == 0) || (len == 3 && strncmp(p, "all", 3) == 0))
            return 1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

static void dump(const ir_graph *spec, const cg_kernel *k)
{
    if (dump_wants("graph")) {
        char *s = ir_graph_print(spec);
        fprintf(stderr, "; statjit: specialised graph\n%s", s ? s : "(out of memory)\n");
        ir_free(s);
    }
    if (dump_wants("llvm")) {
        char *s = cg_kernel_llvm_ir(k);
        fprintf(stderr, "; statjit: LLVM IR\n%s\n", s ? s : "(not available)");
        ir_free(s);
    }
}

sj_status rt_compile(rt_cache *cache, sj_fn *fn, const ir_shape *shapes, int opt_level,
                     sj_compiled **out, double *seconds, ir_err *err)
{
    *out = NULL;
    double t0 = rt_now();
    ir_graph *spec = NULL;
    sj_status st = rt_fn_materialize(fn, shapes, &spec, err);
    if (st == SJ_OK)
        st = rt_tile_compile(cache, fn, shapes, spec, out, err);
    if (st != SJ_OK || *out) {
        if (st != SJ_OK)
            ir_graph_free(spec);
        *seconds = rt_now() - t0;
        return st;
    }
    cg_options opt = {.opt_level = opt_level};
    cg_kernel *k = NULL;
    st = cg_compile(spec, &opt, &k, err);
    if (st != SJ_OK) {
        ir_graph_free(spec);
        return st;
    }
    sj_compiled *c = rt_compiled_new(fn->ctx, spec, k);
    if (!c) {
        cg_kernel_free(k);
        ir_graph_free(spec);
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "compile: out of memory");
    }
    *seconds = rt_now() - t0;
    dump(spec, k);
    *out = c;
    return SJ_OK;
}
