/* Small IR-building helpers shared by the lowering files: constants,
 * addressing, counted loops, calls and the error exit. */
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "codegen/cg.h"

LLVMValueRef cg_i64(cg_lower *L, int64_t v) { return LLVMConstInt(L->i64, (unsigned long long)v, 1); }
LLVMValueRef cg_i32(cg_lower *L, int32_t v) { return LLVMConstInt(L->i32, (unsigned long long)(int64_t)v, 1); }
LLVMValueRef cg_f64(cg_lower *L, double v) { return LLVMConstReal(L->f64, v); }

LLVMValueRef cg_gep(cg_lower *L, LLVMValueRef p, LLVMValueRef off)
{
    return LLVMBuildInBoundsGEP2(L->b, L->f64, p, &off, 1, "");
}

LLVMValueRef cg_load(cg_lower *L, LLVMValueRef p, LLVMValueRef off)
{
    return LLVMBuildLoad2(L->b, L->f64, cg_gep(L, p, off), "");
}

void cg_store(cg_lower *L, LLVMValueRef p, LLVMValueRef off, LLVMValueRef val)
{
    LLVMBuildStore(L->b, val, cg_gep(L, p, off));
}

LLVMValueRef cg_offset(cg_lower *L, const ir_shape *s, LLVMValueRef *idx)
{
    LLVMValueRef off = cg_i64(L, 0);
    int64_t stride = 1;
    for (int k = s->rank - 1; k >= 0; k--) {
        if (s->dim[k] != 1) {
            LLVMValueRef term = stride == 1 ? idx[k]
                                            : LLVMBuildNSWMul(L->b, idx[k], cg_i64(L, stride), "");
            off = LLVMBuildNSWAdd(L->b, off, term, "");
        }
        stride *= s->dim[k];
    }
    return off;
}

int64_t cg_prod(const ir_shape *s, int k)
{
    int64_t n = 1;
    for (int i = 0; i < k; i++)
        n *= s->dim[i];
    return n;
}

LLVMValueRef cg_slot(cg_lower *L, LLVMTypeRef t, const char *name)
{
    return LLVMBuildAlloca(L->ab, t, name);
}

/* Loops are emitted already rotated (test at the bottom), so the optimiser
 * needs no loop-rotate pass; the entry test is left out when the trip count
 * is a constant above zero, and a constant trip count of one emits no loop at
 * all (a batch loop over one matrix, say). */
void cg_loop_from(cg_lower *L, cg_loop *lp, LLVMValueRef lo, LLVMValueRef n)
{
    int known = LLVMIsAConstantInt(lo) && LLVMIsAConstantInt(n);
    int64_t trip = known ? LLVMConstIntGetSExtValue(n) - LLVMConstIntGetSExtValue(lo) : -1;
    lp->n = n;
    lp->novec = L->novec > 0 || (known && trip < CG_VECTOR_MIN_TRIP);
    if (trip == 1) {
        lp->var = NULL;
        lp->i = lo;
        return;
    }
    lp->var = cg_slot(L, L->i64, "i");
    LLVMBuildStore(L->b, lo, lp->var);
    lp->body = LLVMAppendBasicBlockInContext(L->cx, L->fn, "body");
    lp->exit = LLVMAppendBasicBlockInContext(L->cx, L->fn, "done");
    if (trip > 0)
        LLVMBuildBr(L->b, lp->body);
    else
        LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, lo, n, ""), lp->body, lp->exit);
    LLVMPositionBuilderAtEnd(L->b, lp->body);
    lp->i = LLVMBuildLoad2(L->b, L->i64, lp->var, "i");
}

void cg_loop_begin(cg_lower *L, cg_loop *lp, LLVMValueRef n) { cg_loop_from(L, lp, cg_i64(L, 0), n); }

/* !{!self, !{!"llvm.loop.vectorize.enable", i1 false}}: the self reference
 * makes the node distinct, one per loop. */
static LLVMMetadataRef no_vectorize(cg_lower *L)
{
    static const char key[] = "llvm.loop.vectorize.enable";
    LLVMMetadataRef ops[2] = {LLVMMDStringInContext2(L->cx, key, sizeof key - 1),
                              LLVMValueAsMetadata(LLVMConstInt(L->i1, 0, 0))};
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(L->cx, NULL, 0);
    LLVMMetadataRef id[2] = {tmp, LLVMMDNodeInContext2(L->cx, ops, 2)};
    LLVMMetadataRef loop = LLVMMDNodeInContext2(L->cx, id, 2);
    LLVMMetadataReplaceAllUsesWith(tmp, loop);
    return loop;
}

void cg_loop_end(cg_lower *L, cg_loop *lp)
{
    if (!lp->var)
        return;
    LLVMValueRef next = LLVMBuildNSWAdd(L->b, lp->i, cg_i64(L, 1), "");
    LLVMBuildStore(L->b, next, lp->var);
    LLVMValueRef br = LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, next, lp->n, ""),
                                      lp->body, lp->exit);
    if (lp->novec) {
        unsigned kind = LLVMGetMDKindIDInContext(L->cx, "llvm.loop", 9);
        LLVMSetMetadata(br, kind, LLVMMetadataAsValue(L->cx, no_vectorize(L)));
    }
    LLVMPositionBuilderAtEnd(L->b, lp->exit);
}

void cg_nest_begin(cg_lower *L, cg_nest *nest, int rank, const int64_t *dims, LLVMValueRef *idx)
{
    nest->rank = rank;
    for (int k = 0; k < rank; k++) { /* a unit axis gets no loop (cg_loop_from) */
        cg_loop_begin(L, &nest->lp[k], cg_i64(L, dims[k]));
        idx[k] = nest->lp[k].i;
    }
}

void cg_nest_end(cg_lower *L, cg_nest *nest)
{
    for (int k = nest->rank - 1; k >= 0; k--)
        cg_loop_end(L, &nest->lp[k]);
}

static LLVMValueRef declare(cg_lower *L, const char *name, LLVMTypeRef ft)
{
    LLVMValueRef f = LLVMGetNamedFunction(L->m, name);
    if (!f) {
        f = LLVMAddFunction(L->m, name, ft);
        LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(L->cx, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
    }
    return f;
}

LLVMValueRef cg_call(cg_lower *L, const char *name, LLVMTypeRef ret, int n, LLVMTypeRef *types,
                     LLVMValueRef *args)
{
    LLVMTypeRef ft = LLVMFunctionType(ret, types, (unsigned)n, 0);
    return LLVMBuildCall2(L->b, ft, declare(L, name, ft), args, (unsigned)n, "");
}

static void add_fn_attr(cg_lower *L, LLVMValueRef f, const char *name, uint64_t v)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(L->cx, kind, v));
}

LLVMValueRef cg_math(cg_lower *L, const char *name, int n, LLVMValueRef *args)
{
    LLVMTypeRef types[2];
    for (int i = 0; i < n; i++)
        types[i] = LLVMTypeOf(args[i]);
    LLVMTypeRef ft = LLVMFunctionType(L->f64, types, (unsigned)n, 0);
    LLVMValueRef f = LLVMGetNamedFunction(L->m, name);
    if (!f) {
        f = declare(L, name, ft);
        add_fn_attr(L, f, "memory", 0); /* memory(none): no errno, no state */
        add_fn_attr(L, f, "willreturn", 0);
        add_fn_attr(L, f, "nosync", 0);
    }
    return LLVMBuildCall2(L->b, ft, f, args, (unsigned)n, "");
}

LLVMValueRef cg_intrinsic(cg_lower *L, const char *name, LLVMValueRef x)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef t = L->f64;
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(L->m, id, &t, 1);
    LLVMTypeRef ft = LLVMIntrinsicGetType(L->cx, id, &t, 1);
    return LLVMBuildCall2(L->b, ft, f, &x, 1, "");
}

void cg_fail_if(cg_lower *L, LLVMValueRef cond, sj_status st, ir_val v, LLVMValueRef batch,
                LLVMValueRef extra, LLVMValueRef info)
{
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(L->cx, L->fn, "fail");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(L->cx, L->fn, "ok");
    LLVMBuildCondBr(L->b, cond, fail, ok);
    LLVMPositionBuilderAtEnd(L->b, fail);
    LLVMValueRef rec[4] = {cg_i64(L, v), batch ? batch : cg_i64(L, 0),
                           extra ? LLVMBuildBitCast(L->b, extra, L->i64, "") : cg_i64(L, 0),
                           info ? info : cg_i64(L, 0)};
    for (int i = 0; i < 4; i++) {
        LLVMValueRef off = cg_i64(L, i);
        LLVMBuildStore(L->b, rec[i], LLVMBuildInBoundsGEP2(L->b, L->i64, L->scratch, &off, 1, ""));
    }
    LLVMBuildRet(L->b, cg_i32(L, (int32_t)st));
    LLVMPositionBuilderAtEnd(L->b, ok);
}

void cg_zero(cg_lower *L, LLVMValueRef p, int64_t n)
{
    if (n > 0)
        LLVMBuildMemSet(L->b, p, LLVMConstInt(L->i8, 0, 0), cg_i64(L, n * 8), 8);
}

void cg_copy(cg_lower *L, LLVMValueRef dst, LLVMValueRef src, int64_t n)
{
    if (n > 0)
        LLVMBuildMemCpy(L->b, dst, 8, src, 8, cg_i64(L, n * 8));
}
