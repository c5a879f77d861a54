/* Lowering of the fit op (docs/fit.md).  The problem's objective, gradient
 * and curvature (or Hessian) graphs are compiled as internal functions of
 * the kernel's module, each through the ordinary graph lowering
 * (cg_lower_graph) with its own buffer plan, and the node becomes one call
 * to the solver loop in C, ir_fit_native_run (ir/newton.c, registered in the
 * JIT as "sj_fit_run"), which is passed the addresses of those functions.
 * The whole Newton loop therefore runs inside the compiled kernel, with no C
 * API call per iteration.
 *
 * A sub-graph's constants become extra inputs of its function (after theta
 * and the data), filled from private constant arrays of the module, so the
 * code owns its data (the JIT frees it with the kernel).
 *
 * Under the relative-objective rule (the GLM's IRLS) a fourth function,
 * the three graphs inlined into one and cleaned (CSE shares η = Xβ, μ and
 * the like), gives the objective, gradient and curvature in one pass; the
 * solver calls it at the start and at each full Newton step (ir_newton).
 * A batched node of CG_FIT_LOCKSTEP_MIN or more items also gets that graph
 * vmapped over a chunk of its batch (lower_fit_lockstep.c), compiled as a
 * fifth function, with which ir_fit_native_run runs the items in lock step
 * (ir/newton_lockstep.c); the per-item functions stay for the fallback.
 *
 * The node's workspace (its temp) holds the solver's arrays and pointer
 * lists and, from a 64-aligned offset, one scratch region shared by the
 * functions (they run one at a time) as large as the largest needs.  A
 * batched fit's items run on the batch pool (sj_batch_run, whose address is
 * passed along); threads other than the caller allocate workspaces of the
 * same size (ir_fit_native_run).  The lock-step region (one chunk's solver
 * arrays and the batched function's scratch) follows; other threads
 * allocate their own likewise. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codegen/cg.h"
#include "ir/alloc.h"
#include "ir/newton.h"
#include "ir/problem.h"
#include "passes/passes.h"
#include "passes/rebuild.h"

/* A sub-graph ready for lowering: its constants (of at least one element)
 * turned into inputs after the real ones. */
typedef struct fit_sub {
    ir_graph *g;
    int64_t nconst;
    const ir_node **cnode; /* the constant nodes of the original sub-graph */
    cg_plan plan;
    int planned;
    ir_graph *src; /* the sub-graph itself when it is ours (the fused one) */
} fit_sub;

typedef struct prep_ctx {
    const ir_graph *sub;
    fit_sub *fs;
    uint32_t cap;
} prep_ctx;

static ir_val to_input(void *ctx, ir_graph *ng, const ir_node *n, const ir_val *inputs)
{
    prep_ctx *c = ctx;
    if (n->op != IR_OP_CONST || ir_shape_numel(&n->shape) == 0)
        return pass_copy_node(ng, n, inputs);
    if (c->fs->nconst >= c->cap) {
        uint32_t cap = c->cap ? 2 * c->cap : 8;
        const ir_node **p = ir_realloc_array(c->fs->cnode, cap, sizeof *p);
        if (!p) {
            ir_fail(&ng->err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
            return IR_NONE;
        }
        c->fs->cnode = p;
        c->cap = cap;
    }
    c->fs->cnode[c->fs->nconst] = n;
    int64_t pos = (int64_t)c->sub->ninput + c->fs->nconst++;
    return ir_add_node(ng, IR_OP_INPUT, 0, NULL, &pos, 1, &n->shape, NULL);
}

static void sub_free(fit_sub *fs)
{
    if (fs->planned)
        cg_plan_free(&fs->plan);
    ir_graph_free(fs->g);
    ir_graph_free(fs->src);
    ir_free(fs->cnode);
    memset(fs, 0, sizeof *fs);
}

static sj_status sub_prepare(const ir_graph *sub, fit_sub *fs, ir_err *err)
{
    memset(fs, 0, sizeof *fs);
    prep_ctx c = {.sub = sub, .fs = fs};
    sj_status st = pass_rebuild_with(sub, NULL, to_input, &c, &fs->g, err);
    for (int64_t i = 0; st == SJ_OK && i < fs->nconst; i++) {
        char name[48];
        snprintf(name, sizeof name, "fit.const:%" PRId64, i);
        ir_val v = (ir_val)-1;
        /* the INPUT node made by to_input for constant i */
        for (uint32_t u = 0; u < fs->g->nnode; u++)
            if (fs->g->node[u].op == IR_OP_INPUT && fs->g->node[u].attr[0] == (int64_t)sub->ninput + i)
                v = (ir_val)u;
        if (v < 0 || ir_add_input_alias(fs->g, v, name) != 0)
            st = ir_fail(err, SJ_ERR_INTERNAL, "codegen: fit: constant %" PRId64 " lost", i);
    }
    if (st == SJ_OK)
        st = cg_plan_fill(fs->g, &fs->plan, err);
    fs->planned = st == SJ_OK;
    if (st != SJ_OK)
        sub_free(fs);
    return st;
}

/* The objective, gradient and curvature (or Hessian) graphs of fit node v. */
static sj_status subs_of(const ir_graph *g, ir_val v, const ir_graph **sub, ir_err *err)
{
    const ir_problem *p = ir_graph_problem(g, ir_node_at(g, v)->attr[IR_FIT_PROBLEM]);
    sub[0] = p ? p->objective : NULL;
    sub[1] = p ? p->gradient : NULL;
    sub[2] = p ? (p->curvature ? p->curvature : p->hessian) : NULL;
    if (!sub[0] || !sub[1] || !sub[2])
        return ir_fail(err, SJ_ERR_INTERNAL, "codegen: fit (value %%%d): the problem has no "
                       "derived gradient or Hessian (pass_fill_problems)", (int)v);
    return SJ_OK;
}

/* The objective, gradient and curvature graphs inlined into one graph of
 * three outputs, cleaned (CSE merges their common work), in *out; NULL
 * without error when the problem's rule does not use it. */
static sj_status fuse_subs(const ir_graph *g, ir_val v, const ir_graph *const *sub,
                           ir_graph **out, ir_err *err)
{
    *out = NULL;
    const ir_problem *p = ir_graph_problem(g, ir_node_at(g, v)->attr[IR_FIT_PROBLEM]);
    if (!p || p->rule != SJ_FIT_REL_OBJECTIVE)
        return SJ_OK;
    ir_graph *h = ir_graph_copy(sub[0]);
    if (!h)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "codegen: fit: out of memory");
    ir_val outs[3] = {h->output[0], IR_NONE, IR_NONE};
    for (int i = 1; i < 3 && ir_graph_ok(h); i++) {
        if (sub[i]->ninput != h->ninput) {
            ir_fail(&h->err, SJ_ERR_INTERNAL, "codegen: fit: the sub-graphs' inputs differ");
            break;
        }
        pass_inline(h, sub[i], h->input, &outs[i]);
    }
    sj_status st = ir_graph_ok(h) ? ir_graph_set_outputs(h, 3, outs) : h->err.status;
    if (st != SJ_OK && !ir_graph_ok(h))
        *err = h->err;
    else if (st != SJ_OK)
        st = ir_fail(err, st, "codegen: fit: out of memory");
    if (st == SJ_OK)
        st = pass_cleanup(&h, err);
    if (st != SJ_OK) {
        ir_graph_free(h);
        return st;
    }
    *out = h;
    return SJ_OK;
}

static void subs_free(fit_sub *fs)
{
    for (int i = 0; i < IR_FIT_NFN; i++)
        sub_free(&fs[i]);
}

/* fs[IR_FIT_FN_BATCHED]: the fused graph vmapped over the batch of node v,
 * when the node runs in lock step. */
static sj_status prepare_batched(const ir_graph *g, ir_val v, const ir_graph *fused, fit_sub *fs,
                                 ir_err *err)
{
    if (!fused || !cg_fit_lockstep_applies(g, v))
        return SJ_OK;
    ir_graph *b = NULL;
    sj_status st = cg_fit_lockstep_graph(g, v, fused, &b, err);
    if (st == SJ_OK)
        st = sub_prepare(b, fs, err); /* fs->cnode points into b */
    if (st == SJ_OK)
        fs->src = b;
    else
        ir_graph_free(b);
    return st;
}

/* The sub-graphs of fit node v ready for lowering: fs[0..2] the objective,
 * gradient and curvature, fs[3] the fused one, fs[4] the batched fused one
 * (g NULL when there is none). */
static sj_status prepare_all(const ir_graph *g, ir_val v, fit_sub *fs, ir_err *err)
{
    const ir_graph *sub[3];
    memset(fs, 0, IR_FIT_NFN * sizeof *fs);
    sj_status st = subs_of(g, v, sub, err);
    for (int i = 0; i < 3 && st == SJ_OK; i++)
        st = sub_prepare(sub[i], &fs[i], err);
    ir_graph *fused = NULL;
    if (st == SJ_OK)
        st = fuse_subs(g, v, sub, &fused, err);
    if (st == SJ_OK && fused) {
        st = sub_prepare(fused, &fs[3], err); /* fs[3].cnode points into fused */
        if (st == SJ_OK)
            fs[3].src = fused;
        else
            ir_graph_free(fused);
    }
    if (st == SJ_OK)
        st = prepare_batched(g, v, fs[3].src, &fs[IR_FIT_FN_BATCHED], err);
    if (st != SJ_OK)
        subs_free(fs);
    return st;
}

/* Bytes of one item's workspace of fit node v (subs prepared): the
 * per-item functions only. */
static size_t work_bytes(const ir_graph *g, ir_val v, const fit_sub *fs)
{
    const ir_node *n = ir_node_at(g, v);
    int64_t k = ir_fit_nparam(n), maxconst = 0;
    size_t scratch = 0;
    for (int i = 0; i < IR_FIT_FN_BATCHED; i++) {
        if (fs[i].nconst > maxconst)
            maxconst = fs[i].nconst;
        if (fs[i].plan.scratch > scratch)
            scratch = fs[i].plan.scratch;
    }
    return ir_fit_native_work_bytes(k, n->ninput - 1, maxconst) + scratch;
}

/* Where the lock-step regions are: the kernel's (for the calling
 * thread) follows the per-item workspace; each holds one chunk's solver
 * arrays (ir_fit_lockstep_work_bytes), then the batched function's scratch.
 * All zero without a batched function. */
typedef struct ls_layout {
    size_t at, bytes, scratch; /* offset in the workspace, size, scratch offset in it */
    int64_t chunk;
} ls_layout;

static ls_layout lockstep_layout(const ir_graph *g, ir_val v, const fit_sub *fs)
{
    ls_layout l = {0};
    const fit_sub *b = &fs[IR_FIT_FN_BATCHED];
    if (!b->g)
        return l;
    const ir_node *n = ir_node_at(g, v);
    int64_t k = ir_fit_nparam(n), nd = n->ninput - 1, npad = 0;
    l.chunk = cg_fit_lockstep_chunk(n->shape.dim[0]);
    for (int j = 0; j < nd; j++) {
        ir_shape s = ir_fit_item_shape(g, n, j + 1);
        npad += ir_fit_data_batched(n, j) ? l.chunk * (int64_t)ir_shape_numel(&s) : 0;
    }
    l.at = ir_align64(work_bytes(g, v, fs));
    l.scratch = ir_fit_lockstep_work_bytes(k, l.chunk, 1 + nd + b->nconst, npad);
    l.bytes = l.scratch + b->plan.scratch;
    return l;
}

/* The node's whole workspace: one item's, and the kernel's lock-step region. */
static size_t node_bytes(const ir_graph *g, ir_val v, const fit_sub *fs)
{
    ls_layout l = lockstep_layout(g, v, fs);
    return l.at ? l.at + l.bytes : work_bytes(g, v, fs);
}

static size_t temp_fit(const ir_graph *g, ir_val v)
{
    fit_sub fs[IR_FIT_NFN];
    ir_err err = {0};
    if (prepare_all(g, v, fs, &err) != SJ_OK)
        return 0;
    size_t bytes = node_bytes(g, v, fs);
    subs_free(fs);
    return bytes;
}

/* A private constant global of the module. */
static LLVMValueRef global(cg_lower *L, LLVMTypeRef t, LLVMValueRef init, const char *name)
{
    LLVMValueRef gv = LLVMAddGlobal(L->m, t, name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
    return gv;
}

/* Lowers sub-graph fs as the internal function `name`; *fn its address and
 * *consts the constant array of pointers to its constants (NULL if none). */
static sj_status lower_sub(cg_lower *L, fit_sub *fs, const char *name, LLVMValueRef *fn,
                           LLVMValueRef *consts)
{
    const ir_graph *g = fs->g;
    size_t nn = g->nnode ? g->nnode : 1;
    cg_lower S = {.g = g, .p = &fs->plan, .cx = L->cx, .m = L->m, .err = L->err};
    S.base = ir_calloc(nn, sizeof *S.base);
    S.temp = ir_calloc(nn, sizeof *S.temp);
    double **cdata = ir_calloc(nn, sizeof *cdata);
    sj_status st = SJ_OK;
    if (!S.base || !S.temp || !cdata)
        st = ir_fail(L->err, SJ_ERR_OUT_OF_MEMORY, "codegen: out of memory");
    if (st == SJ_OK)
        st = cg_lower_graph(&S, name, cdata);
    ir_free(S.base);
    ir_free(S.temp);
    ir_free(cdata);
    if (st != SJ_OK)
        return st;
    LLVMSetLinkage(S.fn, LLVMInternalLinkage);
    *fn = S.fn;
    L->stats.nloop += S.stats.nloop;
    L->stats.nlibcall += S.stats.nlibcall;
    L->stats.ninline_linalg += S.stats.ninline_linalg;
    *consts = LLVMConstNull(L->ptr);
    if (fs->nconst == 0)
        return SJ_OK;
    LLVMValueRef *ptrs = ir_malloc((size_t)fs->nconst * sizeof *ptrs);
    if (!ptrs)
        return ir_fail(L->err, SJ_ERR_OUT_OF_MEMORY, "codegen: out of memory");
    for (int64_t i = 0; i < fs->nconst; i++) {
        const ir_node *c = fs->cnode[i];
        size_t numel = ir_shape_numel(&c->shape);
        LLVMValueRef *vals = ir_malloc(numel * sizeof *vals);
        if (!vals) {
            ir_free(ptrs);
            return ir_fail(L->err, SJ_ERR_OUT_OF_MEMORY, "codegen: out of memory");
        }
        for (size_t j = 0; j < numel; j++)
            vals[j] = LLVMConstReal(L->f64, c->data[j]);
        LLVMTypeRef at = LLVMArrayType2(L->f64, numel);
        ptrs[i] = global(L, at, LLVMConstArray2(L->f64, vals, numel), "fit.const");
        ir_free(vals);
    }
    LLVMTypeRef pt = LLVMArrayType2(L->ptr, (uint64_t)fs->nconst);
    *consts = global(L, pt, LLVMConstArray2(L->ptr, ptrs, (uint64_t)fs->nconst), "fit.consts");
    ir_free(ptrs);
    return SJ_OK;
}

static sj_status emit_fit(cg_lower *L, ir_val v)
{
    const ir_graph *g = L->g;
    const ir_node *n = ir_node_at(g, v);
    const ir_problem *p = ir_graph_problem(g, n->attr[IR_FIT_PROBLEM]);
    fit_sub fs[IR_FIT_NFN];
    sj_status st = prepare_all(g, v, fs, L->err);
    if (st != SJ_OK)
        return st;
    LLVMValueRef fns[IR_FIT_NFN], consts[IR_FIT_NFN];
    size_t len = 0;
    const char *kname = LLVMGetValueName2(L->fn, &len);
    static const char *const what[IR_FIT_NFN] = {"objective", "gradient", "curvature", "all",
                                                 "all_batched"};
    for (int i = 0; i < IR_FIT_NFN && st == SJ_OK; i++) {
        char name[160];
        snprintf(name, sizeof name, "%.*s.fit%d.%s", (int)(len < 100 ? len : 100), kname, (int)v,
                 what[i]);
        fns[i] = consts[i] = LLVMConstNull(L->ptr);
        if (fs[i].g)
            st = lower_sub(L, &fs[i], name, &fns[i], &consts[i]);
    }
    if (st != SJ_OK) {
        subs_free(fs);
        return st;
    }
    int64_t k = ir_fit_nparam(n), nd = n->ninput - 1;
    int batched = n->attr[IR_FIT_BATCHED] != 0;
    int64_t ninfo = IR_FIT_INFO_ITEM + nd, maxconst = 0;
    for (int i = 0; i < IR_FIT_FN_BATCHED; i++)
        if (fs[i].nconst > maxconst)
            maxconst = fs[i].nconst;
    LLVMValueRef *info = ir_malloc((size_t)ninfo * sizeof *info);
    if (!info) {
        subs_free(fs);
        return ir_fail(L->err, SJ_ERR_OUT_OF_MEMORY, "codegen: out of memory");
    }
    ls_layout ls = lockstep_layout(g, v, fs);
    int64_t tol;
    memcpy(&tol, &p->tol, sizeof tol);
    int64_t head[IR_FIT_INFO_ITEM] = {
        [IR_FIT_INFO_K] = k,
        [IR_FIT_INFO_NDATA] = nd,
        [IR_FIT_INFO_NBATCH] = batched ? n->shape.dim[0] : 1,
        [IR_FIT_INFO_BATCHED] = batched,
        [IR_FIT_INFO_MASK] = batched ? n->attr[IR_FIT_MASK] : 0,
        [IR_FIT_INFO_MAX_ITER] = p->max_iter,
        [IR_FIT_INFO_RULE] = p->rule,
        [IR_FIT_INFO_TOL] = tol,
        [IR_FIT_INFO_PREVIOUS] = n->attr[IR_FIT_PREVIOUS] != 0,
        [IR_FIT_INFO_NCONST] = fs[0].nconst,
        [IR_FIT_INFO_NCONST + 1] = fs[1].nconst,
        [IR_FIT_INFO_NCONST + 2] = fs[2].nconst,
        [IR_FIT_INFO_NCONST + 3] = fs[3].nconst,
        [IR_FIT_INFO_NCONST + 4] = fs[4].nconst,
        [IR_FIT_INFO_SCRATCH] = (int64_t)ir_fit_native_work_bytes(k, nd, maxconst),
        [IR_FIT_INFO_WORK] = (int64_t)work_bytes(g, v, fs),
        [IR_FIT_INFO_LOCKSTEP] = (int64_t)ls.at,
        [IR_FIT_INFO_LBYTES] = (int64_t)ls.bytes,
        [IR_FIT_INFO_LSCRATCH] = (int64_t)ls.scratch,
        [IR_FIT_INFO_CHUNK] = ls.chunk,
    };
    for (int i = 0; i < IR_FIT_INFO_ITEM; i++)
        info[i] = cg_i64(L, head[i]);
    for (int64_t j = 0; j < nd; j++) {
        ir_shape s = ir_fit_item_shape(g, n, (int)j + 1);
        info[IR_FIT_INFO_ITEM + j] = cg_i64(L, (int64_t)ir_shape_numel(&s));
    }
    subs_free(fs);
    LLVMValueRef ginfo = global(L, LLVMArrayType2(L->i64, (uint64_t)ninfo),
                                LLVMConstArray2(L->i64, info, (uint64_t)ninfo), "fit.info");
    ir_free(info);
    /* The batch pool's runner, for a batch of two or more items. */
    LLVMValueRef runner = LLVMConstNull(L->ptr);
    if (batched && n->shape.dim[0] >= 2) {
        runner = LLVMGetNamedFunction(L->m, "sj_batch_run");
        if (!runner) {
            LLVMTypeRef rt[4] = {L->ptr, L->ptr, L->i64, L->ptr};
            runner = LLVMAddFunction(L->m, "sj_batch_run", LLVMFunctionType(L->i32, rt, 4, 0));
        }
    }
    LLVMValueRef pv[IR_FIT_NPTR];
    for (int i = 0; i < IR_FIT_NFN; i++) {
        pv[IR_FIT_PTR_FN + i] = fns[i];
        pv[IR_FIT_PTR_CONSTS + i] = consts[i];
    }
    pv[IR_FIT_PTR_RUN] = runner;
    LLVMValueRef gptrs = global(L, LLVMArrayType2(L->ptr, IR_FIT_NPTR),
                                LLVMConstArray2(L->ptr, pv, IR_FIT_NPTR), "fit.fns");
    /* The node's inputs as a pointer array on the stack. */
    LLVMTypeRef inty = LLVMArrayType2(L->ptr, (uint64_t)n->ninput);
    LLVMValueRef in = cg_slot(L, inty, "fit.in");
    for (int i = 0; i < n->ninput; i++) {
        LLVMValueRef base = L->base[n->input[i]];
        LLVMValueRef off = cg_i64(L, i);
        LLVMBuildStore(L->b, base ? base : LLVMConstNull(L->ptr),
                       LLVMBuildInBoundsGEP2(L->b, L->ptr, in, &off, 1, ""));
    }
    LLVMValueRef out = L->base[v] ? L->base[v] : LLVMConstNull(L->ptr);
    LLVMValueRef work = L->temp[v] ? L->temp[v] : LLVMConstNull(L->ptr);
    LLVMTypeRef types[7] = {L->ptr, L->ptr, L->ptr, L->ptr, L->ptr, L->ptr, L->i64};
    LLVMValueRef args[7] = {gptrs, ginfo, in, out, work, L->scratch, cg_i64(L, v)};
    LLVMValueRef st32 = cg_call(L, "sj_fit_run", L->i32, 7, types, args);
    L->stats.nlibcall++;
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(L->cx, L->fn, "fit.fail");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(L->cx, L->fn, "fit.ok");
    LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntNE, st32, cg_i32(L, 0), ""), fail, ok);
    LLVMPositionBuilderAtEnd(L->b, fail);
    LLVMBuildRet(L->b, st32);
    LLVMPositionBuilderAtEnd(L->b, ok);
    return SJ_OK;
}

const cg_rule cg_rule_fit = {NULL, emit_fit, 0, CG_CAN_FAIL, temp_fit};
