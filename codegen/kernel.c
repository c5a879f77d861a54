/* cg_kernel: compile (plan, lower, JIT), run (and turn a failing kernel's
 * error record into a message), introspection, free. */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codegen/cg.h"
#include "ir/alloc.h"
#include "ir/problem.h"

typedef int32_t kernel_fn(const double *const *in, double *const *out, char *scratch);

struct cg_kernel {
    cg_code *code;
    _Atomic(kernel_fn *) fn;
    size_t scratch;
    /* Tiering: a kernel compiled by the fast path counts its calls; the call
     * that reaches CG_TIER_UP_CALLS compiles it again with the full pipeline
     * and publishes that code, which later calls use (docs/codegen.md). */
    atomic_uint calls;
    cg_code *full_code;
    atomic_int tier; /* 0: fast-path code, 1: full pipeline */
    /* What cg_kernel_llvm_ir needs to lower and optimise again: the graph
     * (owned by the caller, which keeps it as long as the kernel), the
     * function's name, opt level and codegen path. */
    const ir_graph *g;
    char name[48];
    int opt, quick;
    double seconds;
    cg_stats stats;
    uint32_t nnode;
    uint8_t *ops;       /* op of every node, for messages */
    ir_shape *batch;    /* shape of every node's first operand: batch axes for messages */
    double **consts;    /* per node: copies of constant data, or NULL */
};

static atomic_ulong next_kernel = 1;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void free_consts(cg_kernel *k)
{
    if (!k->consts)
        return;
    for (uint32_t v = 0; v < k->nnode; v++)
        ir_free(k->consts[v]);
    ir_free(k->consts);
    k->consts = NULL;
}

void cg_kernel_free(cg_kernel *k)
{
    if (!k)
        return;
    cg_code_free(k->code);
    cg_code_free(k->full_code);
    free_consts(k);
    ir_free(k->ops);
    ir_free(k->batch);
    ir_free(k);
}

/* The specialised graph must have concrete shapes and BLAS-sized axes. */
static sj_status check_graph(const ir_graph *g, ir_err *err)
{
    for (uint32_t v = 0; v < g->nnode; v++) {
        const ir_shape *s = &g->node[v].shape;
        if (!ir_shape_is_concrete(s))
            return ir_fail(err, SJ_ERR_INVALID_ARGUMENT,
                           "codegen: %s (value %%%u) has a symbolic shape; specialise first",
                           ir_op_name(g->node[v].op), v);
        for (int i = 0; i < s->rank; i++)
            if (s->dim[i] > INT32_MAX)
                return ir_fail(err, SJ_ERR_UNSUPPORTED,
                               "codegen: %s (value %%%u): axis %d of size %" PRId64
                               " is too large for BLAS", ir_op_name(g->node[v].op), v, i, s->dim[i]);
    }
    return SJ_OK;
}

static sj_status copy_consts(const ir_graph *g, const cg_plan *p, cg_kernel *k, ir_err *err)
{
    k->nnode = g->nnode;
    k->consts = ir_calloc(g->nnode ? g->nnode : 1, sizeof *k->consts);
    k->ops = ir_malloc(g->nnode ? g->nnode : 1);
    k->batch = ir_malloc((g->nnode ? g->nnode : 1) * sizeof *k->batch);
    if (!k->consts || !k->ops || !k->batch)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "codegen: out of memory");
    for (uint32_t v = 0; v < g->nnode; v++) {
        const ir_node *n = &g->node[v];
        k->ops[v] = (uint8_t)n->op;
        k->batch[v] = n->ninput ? *ir_shape_of(g, n->input[0]) : n->shape;
        size_t numel = ir_shape_numel(&n->shape);
        if (n->op != IR_OP_CONST || !p->live[v] || numel == 0)
            continue;
        if (!(k->consts[v] = ir_malloc(numel * sizeof(double))))
            return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "codegen: out of memory");
        memcpy(k->consts[v], n->data, numel * sizeof(double));
    }
    return SJ_OK;
}

/* Elements the loops of g touch: each live op counted by its largest
 * operand or result (live NULL: every node). */
static double loop_elems(const ir_graph *g, const uint8_t *live)
{
    double elems = 0;
    for (uint32_t v = 0; v < g->nnode; v++) {
        const ir_node *n = &g->node[v];
        if ((live && !live[v]) || n->op == IR_OP_INPUT || n->op == IR_OP_CONST)
            continue;
        double most = (double)ir_shape_numel(&n->shape);
        for (int i = 0; i < (int)n->ninput; i++) {
            double in = (double)ir_shape_numel(ir_shape_of(g, n->input[i]));
            most = in > most ? in : most;
        }
        elems += most;
    }
    return elems;
}

/* Elements one evaluation of fit node n's sub-graphs touches, over its
 * batch. */
static double fit_elems(const ir_graph *g, const ir_node *n)
{
    const ir_problem *p = ir_graph_problem(g, n->attr[IR_FIT_PROBLEM]);
    if (!p)
        return INFINITY;
    const ir_graph *sub[4] = {p->objective, p->gradient, p->curvature, p->hessian};
    double elems = 0;
    for (int i = 0; i < 4; i++)
        if (sub[i])
            elems += loop_elems(sub[i], NULL);
    return elems * (n->attr[IR_FIT_BATCHED] ? (double)n->shape.dim[0] : 1.0);
}

int cg_quick_codegen(const ir_graph *g, const uint8_t *live, int opt_level)
{
    if (opt_level >= 3)
        return 0;
    double fit = 0;
    for (uint32_t v = 0; v < g->nnode; v++)
        if (live[v] && g->node[v].op == IR_OP_FIT)
            fit += fit_elems(g, &g->node[v]);
    return loop_elems(g, live) <= CG_QUICK_MAX_ELEMS && fit <= CG_QUICK_FIT_MAX_ELEMS;
}

/* Lowers g into a new module named k->name; *m and *tsc on success. */
static sj_status lower_module(const ir_graph *g, const cg_plan *p, const cg_kernel *k,
                              const char *name, LLVMModuleRef *m, void **tsc, cg_stats *stats,
                              ir_err *err)
{
    cg_lower L = {.g = g, .p = p, .err = err};
    sj_status st = cg_jit_module(name, &L.cx, &L.m, tsc, err);
    if (st != SJ_OK)
        return st;
    L.base = ir_calloc(g->nnode ? g->nnode : 1, sizeof *L.base);
    L.temp = ir_calloc(g->nnode ? g->nnode : 1, sizeof *L.temp);
    if (!L.base || !L.temp)
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "codegen: out of memory");
    if (st == SJ_OK)
        st = cg_lower_graph(&L, name, k->consts);
    ir_free(L.base);
    ir_free(L.temp);
    if (st != SJ_OK) {
        cg_jit_discard(L.m, *tsc);
        *tsc = NULL;
        return st;
    }
    *m = L.m;
    if (stats)
        *stats = L.stats;
    return SJ_OK;
}

static sj_status lower_and_jit(const ir_graph *g, const cg_plan *p, int opt, cg_kernel *k,
                               ir_err *err)
{
    snprintf(k->name, sizeof k->name, "sj_kernel_%lu", atomic_fetch_add(&next_kernel, 1));
    k->g = g;
    k->opt = opt;
    k->quick = cg_quick_codegen(g, p->live, opt);
    LLVMModuleRef m = NULL;
    void *tsc = NULL;
    cg_stats stats;
    sj_status st = lower_module(g, p, k, k->name, &m, &tsc, &stats, err);
    if (st != SJ_OK)
        return st;
    void *addr = NULL;
    st = cg_jit_compile(m, tsc, k->name, opt, k->quick, &k->code, &addr, err);
    if (st != SJ_OK)
        return st;
    atomic_init(&k->fn, (kernel_fn *)(uintptr_t)addr);
    atomic_init(&k->calls, 0);
    atomic_init(&k->tier, !k->quick);
    k->stats = stats;
    k->stats.nbuffer = p->nbuffer;
    k->stats.ninlined = p->ninlined;
    return SJ_OK;
}

sj_status cg_compile(const ir_graph *g, const cg_options *opt, cg_kernel **out, ir_err *err)
{
    if (!g || !out)
        return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "cg_compile: %s is NULL", g ? "out" : "graph");
    *out = NULL;
    double t0 = now();
    sj_status st = check_graph(g, err);
    if (st != SJ_OK)
        return st;
    cg_kernel *k = ir_calloc(1, sizeof *k);
    if (!k)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "codegen: out of memory");
    cg_plan p;
    st = cg_plan_fill(g, &p, err);
    if (st != SJ_OK) {
        ir_free(k);
        return st;
    }
    st = copy_consts(g, &p, k, err);
    if (st == SJ_OK)
        st = lower_and_jit(g, &p, opt && opt->opt_level >= 3 ? 3 : 2, k, err);
    k->scratch = p.scratch;
    cg_plan_free(&p);
    if (st != SJ_OK) {
        cg_kernel_free(k);
        return st;
    }
    k->seconds = now() - t0;
    *out = k;
    return SJ_OK;
}

size_t cg_kernel_scratch_bytes(const cg_kernel *k) { return k->scratch; }
double cg_kernel_compile_seconds(const cg_kernel *k) { return k->seconds; }
void cg_kernel_stats(const cg_kernel *k, cg_stats *out) { *out = k->stats; }
/* Lowered and optimised again, as the compile did (the same graph, name,
 * constants' addresses and options give the same module). */
char *cg_kernel_llvm_ir(const cg_kernel *k)
{
    if (!k || !k->g)
        return NULL;
    ir_err err = {0};
    cg_plan p;
    if (cg_plan_fill(k->g, &p, &err) != SJ_OK)
        return NULL;
    LLVMModuleRef m = NULL;
    void *tsc = NULL;
    char *text = NULL;
    int full = atomic_load(&k->tier);
    if (lower_module(k->g, &p, k, k->name, &m, &tsc, NULL, &err) == SJ_OK)
        cg_jit_text(m, tsc, k->opt, k->quick && !full, &text, &err);
    cg_plan_free(&p);
    return text;
}

/* "[batch i, j]": the multi-index of batch item b over the axes of s before
 * its last two (as ir/eval words it). */
static const char *batch_str(const ir_shape *s, int64_t b, char *buf, size_t size)
{
    int nb = s->rank >= 2 ? s->rank - 2 : 0;
    int64_t idx[IR_MAX_RANK] = {0};
    for (int i = nb - 1; i >= 0; i--) {
        idx[i] = s->dim[i] ? b % s->dim[i] : 0;
        b = s->dim[i] ? b / s->dim[i] : 0;
    }
    size_t used = (size_t)snprintf(buf, size, "[batch ");
    for (int i = 0; i < (nb ? nb : 1) && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? ", " : "", idx[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

/* Moves batch item b of node v's first operand from the chunk's batch to the
 * whole function's: *s becomes that operand's whole shape.  Items of axis 0
 * come lead entries each, so the chunk's first item is entry first·lead of
 * axis 0, and one axis-0 entry spans the flat batch axes after it. */
static int64_t whole_batch_item(const cg_kernel *k, const cg_batch_pos *pos, uint32_t v,
                                int64_t b, ir_shape *s)
{
    *s = k->batch[v];
    if (!pos || pos->lead[v][0] <= 0)
        return b;
    *s = pos->shape[v];
    int nb = s->rank >= 2 ? s->rank - 2 : 0;
    int64_t span = 1;
    for (int i = 1; i < nb; i++)
        span *= s->dim[i];
    return nb ? b + pos->first * pos->lead[v][0] * span : b;
}

/* A domain error's (position, code, limit) in the whole function.  The codes
 * (operand 1; 0 of one_hot) move by first·lead positions.  When the range
 * is per item (gather's rows, segment_sum's segments: offset_codes in
 * passes/rules_batch.c offsets item b's codes by b·limit, and pushes those
 * out of range by ±nb·limit), the code moves by first·limit, plus or minus
 * (B - C)·limit, and the limit is B·limit. */
static void whole_domain(const cg_batch_pos *pos, ir_op op, uint32_t v, int64_t *at,
                         double *code, int64_t *limit)
{
    if (!pos)
        return;
    const int64_t *lead = pos->lead[v];
    *at += pos->first * lead[op == IR_OP_ONE_HOT ? 0 : 1];
    int64_t per = op == IR_OP_GATHER ? lead[0] : op == IR_OP_SEGSUM ? lead[2] : 0;
    if (per <= 0)
        return;
    double push = (double)(pos->count - pos->chunk) * (double)per;
    *code += (double)pos->first * (double)per +
             (*code >= (double)*limit ? push : *code < 0 ? -push : 0);
    *limit = pos->count * per;
}

sj_status cg_kernel_explain(const cg_kernel *k, sj_status st, const int64_t rec[4],
                            const cg_batch_pos *pos, ir_err *err)
{
    if (!k || !rec)
        return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "cg_kernel_explain: %s is NULL",
                       k ? "the record" : "the kernel");
    double extra;
    memcpy(&extra, &rec[2], sizeof extra);
    uint32_t v = (uint32_t)rec[0];
    if (rec[0] < 0 || v >= k->nnode)
        return ir_fail(err, SJ_ERR_INTERNAL, "kernel failed with a bad error record");
    const char *op = ir_op_name((ir_op)k->ops[v]);
    char b[96];
    ir_shape s;
    int64_t item = whole_batch_item(k, pos, v, rec[1], &s);
    if ((ir_op)k->ops[v] == IR_OP_FIT) { /* ir_fit_native_run: (v, batch item) */
        b[0] = '\0';
        if (s.rank >= 2)
            snprintf(b, sizeof b, " [batch %" PRId64 "]", item);
        if (st == SJ_ERR_DOMAIN)
            return ir_fail(err, st, "fit (value %%%u): the objective is not finite at the "
                           "starting point%s", v, b);
        return ir_fail(err, st, "fit (value %%%u): the objective fails at the starting point%s "
                       "(%s)", v, b, sj_status_name(st));
    }
    batch_str(&s, item, b, sizeof b);
    switch (st) {
    case SJ_ERR_NOT_POSITIVE_DEFINITE:
        return ir_fail(err, st, "%s (value %%%u): matrix %s is not positive definite "
                       "(leading minor %" PRId64 ")", op, v, b, rec[3]);
    case SJ_ERR_SINGULAR:
        return ir_fail(err, st, "%s (value %%%u): matrix %s is singular (zero pivot at row %"
                       PRId64 ")", op, v, b, rec[3] - 1);
    case SJ_ERR_DOMAIN: {
        int64_t at = rec[1], limit = rec[3];
        whole_domain(pos, (ir_op)k->ops[v], v, &at, &extra, &limit);
        return ir_fail(err, st, "%s (value %%%u): index at position %" PRId64 " is %.17g, not "
                       "an integer in 0..%" PRId64, op, v, at, extra, limit - 1);
    }
    default:
        return ir_fail(err, st, "%s (value %%%u): LAPACK rejected argument %" PRId64 " %s", op,
                       v, -rec[3], b);
    }
}

/* The full-pipeline code of a fast-path kernel, compiled by the one call
 * that reaches the threshold while the others go on with the fast code.  It
 * is the same graph, plan and constants, so it computes the same bits (no
 * fast-math flags: vectorising reorders no sums).  A failure keeps the fast
 * code: it is an optimisation, not part of the call. */
static void tier_up(cg_kernel *k)
{
    ir_err err = {0};
    cg_plan p;
    if (cg_plan_fill(k->g, &p, &err) != SJ_OK)
        return;
    char name[sizeof k->name + 8];
    snprintf(name, sizeof name, "%s_full", k->name);
    LLVMModuleRef m = NULL;
    void *tsc = NULL, *addr = NULL;
    if (lower_module(k->g, &p, k, name, &m, &tsc, NULL, &err) == SJ_OK &&
        cg_jit_compile(m, tsc, name, k->opt, 0, &k->full_code, &addr, &err) == SJ_OK) {
        atomic_store_explicit(&k->fn, (kernel_fn *)(uintptr_t)addr, memory_order_release);
        atomic_store(&k->tier, 1);
    }
    cg_plan_free(&p);
}

int cg_kernel_tier(const cg_kernel *k) { return atomic_load(&k->tier); }

int32_t cg_kernel_exec(cg_kernel *k, const double *const *inputs, double *const *outputs,
                       void *scratch)
{
    if (k->quick && atomic_load_explicit(&k->tier, memory_order_relaxed) == 0 &&
        atomic_fetch_add_explicit(&k->calls, 1, memory_order_relaxed) + 1 == CG_TIER_UP_CALLS)
        tier_up(k);
    kernel_fn *fn = atomic_load_explicit(&k->fn, memory_order_acquire);
    return fn(inputs, outputs, scratch);
}

sj_status cg_kernel_run(cg_kernel *k, const double *const *inputs, double *const *outputs,
                        void *scratch, ir_err *err)
{
    int32_t st = cg_kernel_exec(k, inputs, outputs, scratch);
    if (st == 0)
        return SJ_OK;
    int64_t rec[4];
    memcpy(rec, scratch, sizeof rec);
    return cg_kernel_explain(k, (sj_status)st, rec, NULL, err);
}

sj_status cg_plan_scratch_bytes(const ir_graph *g, size_t *bytes, ir_err *err)
{
    if (!g || !bytes)
        return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "cg_plan_scratch_bytes: %s is NULL",
                       g ? "bytes" : "graph");
    sj_status st = check_graph(g, err);
    cg_plan p;
    if (st == SJ_OK)
        st = cg_plan_fill(g, &p, err);
    if (st != SJ_OK)
        return st;
    *bytes = p.scratch;
    cg_plan_free(&p);
    return SJ_OK;
}
