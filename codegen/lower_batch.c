/* Batch loops of linear algebra, serial or across cores.
 *
 * A batched factorisation, solve or product loops over its batch items.
 * When the batch holds enough work (CG_PAR_MIN_FLOPS, measured below), the
 * loop body is outlined into an internal function
 *
 *     i32 sj_batch_body_<k>(ptr env, i64 item, ptr rec)
 *
 * and the kernel calls sj_batch_run (pool.c) with it, which shares the items
 * among the pool's threads.  env is an array, in the kernel's frame, of the
 * base pointers the body reads (the `cap` values' buffers and workspaces);
 * inside the body they are loaded back, so the emitters write the same code
 * either way.  The body's error exits (cg_fail_if) write their record to
 * `rec`, and sj_batch_run copies the first failing item's record to the
 * kernel's scratch header.  Smaller batches get the plain loop. */
#include <stdio.h>
#include <string.h>

#include "codegen/cg.h"

/* Total flops below which a batch stays a serial loop.  Waking the pool and
 * the chunk hand-out cost about 10-20 µs here; measured on batches of Cholesky
 * factorisations (see docs/codegen.md, "Batches across cores"). */
#define CG_PAR_MIN_FLOPS 2e5
/* What one item costs beyond its flops (a call, pointer arithmetic), in
 * flops: batches of tiny matrices are worth splitting too. */
#define CG_PAR_ITEM_FLOPS 200.0

void cg_batch_begin(cg_lower *L, cg_batch *t, int64_t nb, double flops_per_item, int ncap,
                    const ir_val *cap)
{
    memset(t, 0, sizeof *t);
    t->nb = nb;
    t->outlined = nb >= 2 && (double)nb * (flops_per_item + CG_PAR_ITEM_FLOPS) >= CG_PAR_MIN_FLOPS &&
                  ncap <= CG_BATCH_MAXCAP && !L->in_body;
    if (!t->outlined) {
        cg_loop_begin(L, &t->lp, cg_i64(L, nb));
        t->b = t->lp.i;
        return;
    }
    /* env: two slots per captured value (buffer, workspace), in the kernel. */
    t->ncap = ncap;
    LLVMTypeRef envt = LLVMArrayType(L->ptr, (unsigned)(2 * ncap));
    t->env = LLVMBuildAlloca(L->ab, envt, "env");
    for (int k = 0; k < ncap; k++) {
        t->cap[k] = cap[k];
        LLVMValueRef p[2] = {L->base[cap[k]], L->temp[cap[k]]};
        for (int j = 0; j < 2; j++) {
            if (!p[j])
                continue;
            LLVMValueRef idx = cg_i64(L, 2 * k + j);
            LLVMBuildStore(L->b, p[j], LLVMBuildInBoundsGEP2(L->b, L->ptr, t->env, &idx, 1, ""));
        }
    }
    /* the body function */
    char name[48];
    snprintf(name, sizeof name, "sj_batch_body_%d", L->nbody++);
    LLVMTypeRef params[3] = {L->ptr, L->i64, L->ptr};
    t->body = LLVMAddFunction(L->m, name, LLVMFunctionType(L->i32, params, 3, 0));
    LLVMSetLinkage(t->body, LLVMInternalLinkage);
    static const char *const attrs[] = {"nounwind", "noinline"};
    for (size_t k = 0; k < sizeof attrs / sizeof attrs[0]; k++) {
        unsigned kind = LLVMGetEnumAttributeKindForName(attrs[k], strlen(attrs[k]));
        LLVMAddAttributeAtIndex(t->body, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(L->cx, kind, 0));
    }
    t->save_fn = L->fn;
    t->save_b = L->b;
    t->save_ab = L->ab;
    t->save_scratch = L->scratch;
    L->fn = t->body;
    L->b = LLVMCreateBuilderInContext(L->cx);
    L->ab = LLVMCreateBuilderInContext(L->cx);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(L->cx, t->body, "entry");
    LLVMPositionBuilderAtEnd(L->ab, entry);
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->cx, t->body, "body"));
    LLVMBuildBr(L->ab, LLVMGetNextBasicBlock(entry));
    LLVMPositionBuilderBefore(L->ab, LLVMGetBasicBlockTerminator(entry));
    LLVMValueRef env = LLVMGetParam(t->body, 0);
    L->scratch = LLVMGetParam(t->body, 2);
    for (int k = 0; k < ncap; k++) {
        LLVMValueRef *p[2] = {&L->base[cap[k]], &L->temp[cap[k]]};
        for (int j = 0; j < 2; j++) {
            t->saved[k][j] = *p[j];
            if (!*p[j] || LLVMIsConstant(*p[j]))
                continue; /* constants' data: an address usable anywhere */
            LLVMValueRef idx = cg_i64(L, 2 * k + j);
            *p[j] = LLVMBuildLoad2(L->ab, L->ptr, LLVMBuildInBoundsGEP2(L->ab, L->ptr, env, &idx, 1, ""), "");
        }
    }
    L->in_body++;
    t->b = LLVMGetParam(t->body, 1);
}

void cg_batch_end(cg_lower *L, cg_batch *t)
{
    if (!t->outlined) {
        cg_loop_end(L, &t->lp);
        return;
    }
    LLVMBuildRet(L->b, cg_i32(L, 0));
    LLVMDisposeBuilder(L->b);
    LLVMDisposeBuilder(L->ab);
    for (int k = t->ncap - 1; k >= 0; k--) { /* reverse: a value captured twice */
        L->base[t->cap[k]] = t->saved[k][0];
        L->temp[t->cap[k]] = t->saved[k][1];
    }
    L->in_body--;
    L->fn = t->save_fn;
    L->b = t->save_b;
    L->ab = t->save_ab;
    L->scratch = t->save_scratch;
    LLVMValueRef args[4] = {t->body, t->env, cg_i64(L, t->nb), L->scratch};
    LLVMTypeRef types[4] = {L->ptr, L->ptr, L->i64, L->ptr};
    LLVMValueRef st = cg_call(L, "sj_batch_run", L->i32, 4, types, args);
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(L->cx, L->fn, "fail");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(L->cx, L->fn, "ok");
    LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntNE, st, cg_i32(L, 0), ""), fail, ok);
    LLVMPositionBuilderAtEnd(L->b, fail);
    LLVMBuildRet(L->b, st);
    LLVMPositionBuilderAtEnd(L->b, ok);
}
