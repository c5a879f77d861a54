/* Lowering driver: builds the kernel function, gives every materialised value
 * its base pointer, emits each live op through the rule table (expanded from
 * ir/ops.def, so an op without a rule fails the link), and copies outputs
 * that were computed in scratch into the caller's buffers at the end. */
#include <string.h>

#include "codegen/cg.h"
#include "ir/alloc.h"

static const cg_rule *const rules[IR_NOP] = {
#define OP(id, name, kind, arity, shape) [IR_OP_##id] = &cg_rule_##name,
#include "ir/ops.def"
};

const cg_rule *cg_rule_of(ir_op op) { return rules[op]; }

/* Sources have no gen or emit of their own: the plan gives them memory. */
const cg_rule cg_rule_input = {0};
const cg_rule cg_rule_const = {0};

LLVMValueRef cg_read(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    const ir_node *n = ir_node_at(L->g, v);
    if (n->op == IR_OP_CONST && ir_shape_numel(&n->shape) == 1)
        return cg_f64(L, n->data[0]);
    if (L->p->inl[v])
        return cg_rule_of(n->op)->gen(L, v, idx);
    LLVMValueRef off = L->flat ? L->flat : cg_offset(L, &n->shape, idx);
    return cg_load(L, L->base[v], off);
}

void cg_fill(cg_lower *L, ir_val u, LLVMValueRef dst)
{
    const ir_shape *s = ir_shape_of(L->g, u);
    LLVMValueRef idx[IR_MAX_RANK];
    cg_nest nest;
    cg_nest_begin(L, &nest, s->rank, s->dim, idx);
    cg_store(L, dst, cg_offset(L, s, idx), cg_read(L, u, idx));
    cg_nest_end(L, &nest);
}

/* Base pointers of every materialised value, computed in the entry block. */
static void set_bases(cg_lower *L, double **consts)
{
    const cg_plan *p = L->p;
    for (uint32_t v = 0; v < L->g->nnode; v++) {
        if (!p->live[v])
            continue;
        LLVMValueRef off;
        switch ((cg_where)p->where[v]) {
        case CG_INPUT:
        case CG_OUTPUT:
            off = cg_i64(L, p->at[v]);
            L->base[v] = LLVMBuildLoad2(
                L->ab, L->ptr,
                LLVMBuildInBoundsGEP2(L->ab, L->ptr, p->where[v] == CG_INPUT ? L->in : L->out,
                                      &off, 1, ""), "");
            break;
        case CG_CONST:
            L->base[v] = consts[v] ? LLVMConstIntToPtr(cg_i64(L, (int64_t)(uintptr_t)consts[v]), L->ptr)
                                   : NULL;
            break;
        case CG_SCRATCH:
            off = cg_i64(L, p->at[v]);
            L->base[v] = LLVMBuildInBoundsGEP2(L->ab, L->i8, L->scratch, &off, 1, "");
            break;
        case CG_ALIAS:
            L->base[v] = L->base[p->at[v]];
            break;
        case CG_NOWHERE:
        case CG_CHECKS:
            break;
        }
        /* An empty value has no bytes but may still be named by its readers'
         * (zero-trip) loops and by library calls with a zero size: a null
         * pointer, never dereferenced (tests/fuzz/graph/crashes/
         * codegen-zero-size-reduce-segv). */
        if (!L->base[v] && ir_shape_numel(&L->g->node[v].shape) == 0)
            L->base[v] = LLVMConstPointerNull(L->ptr);
        if (p->temp[v] >= 0) {
            off = cg_i64(L, p->temp[v]);
            L->temp[v] = LLVMBuildInBoundsGEP2(L->ab, L->i8, L->scratch, &off, 1, "");
        }
    }
}

static sj_status emit_ops(cg_lower *L)
{
    for (uint32_t v = 0; v < L->g->nnode; v++) {
        const cg_plan *p = L->p;
        if (!p->live[v] || p->where[v] == CG_NOWHERE || p->where[v] == CG_INPUT ||
            p->where[v] == CG_CONST || p->where[v] == CG_ALIAS)
            continue;
        const cg_rule *r = cg_rule_of(L->g->node[v].op);
        IR_ASSERT(r->emit);
        sj_status st = r->emit(L, (ir_val)v);
        if (st != SJ_OK)
            return st;
    }
    return SJ_OK;
}

static void copy_outputs(cg_lower *L)
{
    const ir_graph *g = L->g;
    for (uint32_t k = 0; k < g->noutput; k++) {
        ir_val v = g->output[k];
        size_t numel = ir_shape_numel(ir_shape_of(g, v));
        if (numel == 0 || (L->p->where[v] == CG_OUTPUT && L->p->at[v] == (int64_t)k))
            continue;
        LLVMValueRef off = cg_i64(L, k);
        LLVMValueRef dst = LLVMBuildLoad2(
            L->b, L->ptr, LLVMBuildInBoundsGEP2(L->b, L->ptr, L->out, &off, 1, ""), "");
        cg_copy(L, dst, L->base[v], (int64_t)numel);
    }
}

static void setup_types(cg_lower *L)
{
    L->f64 = LLVMDoubleTypeInContext(L->cx);
    L->i64 = LLVMInt64TypeInContext(L->cx);
    L->i32 = LLVMInt32TypeInContext(L->cx);
    L->i8 = LLVMInt8TypeInContext(L->cx);
    L->i1 = LLVMInt1TypeInContext(L->cx);
    L->ptr = LLVMPointerTypeInContext(L->cx, 0);
    L->vd = LLVMVoidTypeInContext(L->cx);
}

/* Builds `i32 fname(ptr in, ptr out, ptr scratch)` for the planned graph. */
sj_status cg_lower_graph(cg_lower *L, const char *fname, double **consts)
{
    setup_types(L);
    LLVMTypeRef params[3] = {L->ptr, L->ptr, L->ptr};
    LLVMTypeRef ft = LLVMFunctionType(L->i32, params, 3, 0);
    L->fn = LLVMAddFunction(L->m, fname, ft);
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(L->fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(L->cx, nounwind, 0));
    L->in = LLVMGetParam(L->fn, 0);
    L->out = LLVMGetParam(L->fn, 1);
    L->scratch = LLVMGetParam(L->fn, 2);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(L->cx, L->fn, "entry");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(L->cx, L->fn, "body");
    L->b = LLVMCreateBuilderInContext(L->cx);
    L->ab = LLVMCreateBuilderInContext(L->cx);
    LLVMPositionBuilderAtEnd(L->ab, entry);
    LLVMPositionBuilderAtEnd(L->b, body);
    set_bases(L, consts);
    sj_status st = emit_ops(L);
    if (st == SJ_OK) {
        copy_outputs(L);
        LLVMBuildRet(L->b, cg_i32(L, 0));
        LLVMBuildBr(L->ab, body);
    }
    LLVMDisposeBuilder(L->b);
    LLVMDisposeBuilder(L->ab);
    return st;
}
