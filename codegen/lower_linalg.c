/* Linear algebra on the last two axes, looping over the leading batch axes.
 *
 * Structure ops (outer, kron, diag, diag_embed, tril, triu) are gens and fuse
 * into their readers.  matmul calls cblas_dgemm, cblas_dgemv for a vector
 * side, cblas_dsyrk for AᵀA / AAᵀ; cholesky and logdet call LAPACKE_dpotrf;
 * triangular and Cholesky solves call cblas_dtrsm, except that a Cholesky
 * solve against the identity (an explicit inverse) calls LAPACKE_dpotri; solve calls
 * LAPACKE_dgetrf/dgetrs.  The LAPACKE *_work entry points are used: they skip
 * LAPACKE's NaN scan (a NaN reaches LAPACK as in ir/eval) and never allocate
 * in column-major mode.  Small matrices (CG_SMALL_* below) use inline loops
 * instead: at those sizes a library call costs more than the arithmetic.
 * (Solve always calls LAPACK; there is no inline LU yet.)
 *
 * LAPACKE_dpotrf runs in column-major mode with 'U' on our row-major data:
 * the same bytes, so no transposed copy is made, and the upper factor of the
 * column-major view is the lower factor L of the row-major one. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codegen/cg.h"
#include "ir/alloc.h"

/* Largest matrix side lowered to inline loops rather than a library call,
 * measured on batches of 2000 matrices with OPENBLAS_NUM_THREADS=1 (µs per
 * matrix, inline vs library):
 *   cholesky  n=8 0.11 vs 0.18, n=16 0.66 vs 0.77, n=24 1.71 vs 1.70
 *   trsm      n=8 0.16 vs 0.21, n=12 0.71 vs 0.53
 *   matmul    n=4 0.013 vs 0.018, n=5 0.026 vs 0.026, n=8 0.12 vs 0.06 */
#define CG_SMALL_CHOL 16
#define CG_SMALL_TRSM 8
#define CG_SMALL_GEMM 4
/* Matrix-vector products whose matrix has at most this many elements are
 * inline loops: OpenBLAS runs dgemv on two threads from 9,216 elements, and
 * at these sizes (an IRLS step's Xβ and Xᵀr at n = 1,000, p = 10) the
 * hand-off costs more than the product, and the woken thread then spins for
 * ~0.1 s, taking the core from the batch pool. */
#define CG_INLINE_GEMV 65536
/* Matrices up to this order are factorised and solved by straight-line code
 * emitted in place (no helper call, no loops): what a vmapped per-level
 * block of a one-factor mixed model (k × k, k = 1..4) is, by the tens of
 * thousands.  The operations are those of the helpers, in the same order. */
#define CG_TINY 4

enum { ROW_MAJOR = 101, COL_MAJOR = 102, NO_TRANS = 111, TRANS = 112, UPPER = 121, LOWER = 122,
       NON_UNIT = 131, LEFT = 141, RIGHT = 142 };

/* ---- gens ---------------------------------------------------------------- */

static LLVMValueRef gen_outer(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    const ir_node *n = ir_node_at(L->g, v);
    int r = n->shape.rank;
    LLVMValueRef ia[IR_MAX_RANK], ib[IR_MAX_RANK];
    for (int k = 0; k < r - 2; k++)
        ia[k] = ib[k] = idx[k];
    ia[r - 2] = idx[r - 2];
    ib[r - 2] = idx[r - 1];
    LLVMValueRef a = cg_read(L, n->input[0], ia);
    return LLVMBuildFMul(L->b, a, cg_read(L, n->input[1], ib), "");
}

static LLVMValueRef gen_kron(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    const ir_node *n = ir_node_at(L->g, v);
    const ir_shape *sb = ir_shape_of(L->g, n->input[1]);
    int r = n->shape.rank;
    LLVMValueRef ia[IR_MAX_RANK], ib[IR_MAX_RANK];
    for (int k = 0; k < r - 2; k++)
        ia[k] = ib[k] = idx[k];
    for (int k = r - 2; k < r; k++) {
        LLVMValueRef d = cg_i64(L, sb->dim[k]);
        ia[k] = LLVMBuildUDiv(L->b, idx[k], d, "");
        ib[k] = LLVMBuildURem(L->b, idx[k], d, "");
    }
    LLVMValueRef a = cg_read(L, n->input[0], ia);
    return LLVMBuildFMul(L->b, a, cg_read(L, n->input[1], ib), "");
}

static LLVMValueRef gen_diag(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    const ir_node *n = ir_node_at(L->g, v);
    int r = n->shape.rank;
    LLVMValueRef in[IR_MAX_RANK];
    for (int k = 0; k < r; k++)
        in[k] = idx[k];
    in[r] = idx[r - 1];
    return cg_read(L, n->input[0], in);
}

static LLVMValueRef gen_diag_embed(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    const ir_node *n = ir_node_at(L->g, v);
    int r = n->shape.rank;
    LLVMValueRef e = cg_read(L, n->input[0], idx);
    LLVMValueRef on = LLVMBuildICmp(L->b, LLVMIntEQ, idx[r - 2], idx[r - 1], "");
    return LLVMBuildSelect(L->b, on, e, cg_f64(L, 0.0), "");
}

/* tril keeps j - i <= k, triu keeps j - i >= k. */
static LLVMValueRef gen_triangle(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    const ir_node *n = ir_node_at(L->g, v);
    int r = n->shape.rank;
    LLVMValueRef d = LLVMBuildNSWSub(L->b, idx[r - 1], idx[r - 2], "");
    LLVMValueRef keep = LLVMBuildICmp(L->b, n->op == IR_OP_TRIL ? LLVMIntSLE : LLVMIntSGE, d,
                                      cg_i64(L, n->attr[0]), "");
    return LLVMBuildSelect(L->b, keep, cg_read(L, n->input[0], idx), cg_f64(L, 0.0), "");
}

/* ---- helpers ------------------------------------------------------------- */

/* Calls name(args...) with argument types taken from the values. */
static LLVMValueRef call(cg_lower *L, const char *name, LLVMTypeRef ret, int n, LLVMValueRef *args)
{
    LLVMTypeRef types[16];
    for (int i = 0; i < n; i++)
        types[i] = LLVMTypeOf(args[i]);
    return cg_call(L, name, ret, n, types, args);
}

/* Pointer to matrix b (of `size` doubles) of a batch. */
static LLVMValueRef batch_ptr(cg_lower *L, LLVMValueRef base, LLVMValueRef b, int64_t size)
{
    return cg_gep(L, base, LLVMBuildNSWMul(L->b, b, cg_i64(L, size), ""));
}

/* p[i*ld + j], ld an i64 value */
static LLVMValueRef atv(cg_lower *L, LLVMValueRef p, LLVMValueRef i, LLVMValueRef ld, LLVMValueRef j)
{
    return cg_gep(L, p, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, i, ld, ""), j, ""));
}

static LLVMValueRef at(cg_lower *L, LLVMValueRef p, LLVMValueRef i, int64_t ld, LLVMValueRef j)
{
    return atv(L, p, i, cg_i64(L, ld), j);
}

/* ---- helper functions ----------------------------------------------------- */

/* Small linear algebra (Cholesky, triangular solves) is built once per
 * kernel as an internal noinline function of the matrix sizes and called
 * wherever it is needed: a REML kernel factors and solves several small
 * systems, and each inline copy used to cost optimiser and instruction
 * selection time.  Their loops are not vectorised (L->novec). */
typedef struct helper {
    LLVMValueRef fn;
    LLVMBuilderRef b, ab;
} helper;

/* Returns the function `name` if the module has it (*fresh = 0); otherwise
 * declares it and points L's builders at its body (*fresh = 1) until
 * helper_end. */
static LLVMValueRef helper_begin(cg_lower *L, const char *name, LLVMTypeRef ret, int n,
                                 LLVMTypeRef *params, helper *save, int *fresh)
{
    LLVMValueRef f = LLVMGetNamedFunction(L->m, name);
    *fresh = !f;
    if (f)
        return f;
    f = LLVMAddFunction(L->m, name, LLVMFunctionType(ret, params, (unsigned)n, 0));
    LLVMSetLinkage(f, LLVMInternalLinkage);
    static const char *const attrs[] = {"nounwind", "noinline", "nosync", "willreturn"};
    for (size_t k = 0; k < sizeof attrs / sizeof attrs[0]; k++) {
        unsigned kind = LLVMGetEnumAttributeKindForName(attrs[k], strlen(attrs[k]));
        LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(L->cx, kind, 0));
    }
    *save = (helper){L->fn, L->b, L->ab};
    L->fn = f;
    L->b = LLVMCreateBuilderInContext(L->cx);
    L->ab = LLVMCreateBuilderInContext(L->cx);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(L->cx, f, "entry");
    LLVMPositionBuilderAtEnd(L->ab, entry);
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->cx, f, "body"));
    LLVMBuildBr(L->ab, LLVMGetNextBasicBlock(entry));
    LLVMPositionBuilderBefore(L->ab, LLVMGetBasicBlockTerminator(entry));
    L->novec++;
    return f;
}

static void helper_end(cg_lower *L, const helper *save)
{
    LLVMDisposeBuilder(L->b);
    LLVMDisposeBuilder(L->ab);
    L->fn = save->fn;
    L->b = save->b;
    L->ab = save->ab;
    L->novec--;
}

static LLVMValueRef ld(cg_lower *L, LLVMValueRef p) { return LLVMBuildLoad2(L->b, L->f64, p, ""); }

static int64_t nbatch(const ir_shape *s, int keep) { return cg_prod(s, s->rank - keep); }

static void check_info(cg_lower *L, ir_val v, LLVMValueRef info, LLVMValueRef b, sj_status st)
{
    LLVMValueRef wide = LLVMBuildSExt(L->b, info, L->i64, "");
    if (st != SJ_OK)
        cg_fail_if(L, LLVMBuildICmp(L->b, LLVMIntSGT, info, cg_i32(L, 0), ""), st, v, b, NULL, wide);
    cg_fail_if(L, LLVMBuildICmp(L->b, LLVMIntSLT, info, cg_i32(L, 0), ""), SJ_ERR_INTERNAL, v, b,
               NULL, wide);
}

/* ---- matmul ------------------------------------------------------------- */

typedef struct mm {
    LLVMValueRef a, b;    /* base pointers */
    int ta, tb, same;     /* transposes; same: both operands are one buffer */
    int64_t m, n, k, lda, ldb, sa, sb, sc;
} mm;

static void mm_describe(cg_lower *L, ir_val v, mm *d)
{
    const ir_node *nd = ir_node_at(L->g, v);
    ir_val a = cg_matmul_operand(L->g, v, 0, &d->ta), b = cg_matmul_operand(L->g, v, 1, &d->tb);
    const ir_shape *sa = ir_shape_of(L->g, a), *sb = ir_shape_of(L->g, b);
    int r = sa->rank;
    d->a = L->base[a];
    d->b = L->base[b];
    d->same = a == b;
    d->m = nd->shape.dim[r - 2];
    d->n = nd->shape.dim[r - 1];
    d->k = sa->dim[d->ta ? r - 2 : r - 1];
    d->lda = sa->dim[r - 1];
    d->ldb = sb->dim[r - 1];
    d->sa = sa->dim[r - 2] * sa->dim[r - 1];
    d->sb = sb->dim[r - 2] * sb->dim[r - 1];
    d->sc = d->m * d->n;
}

static LLVMValueRef mm_elem(cg_lower *L, LLVMValueRef p, int t, int64_t ldx, LLVMValueRef i,
                            LLVMValueRef j)
{
    return ld(L, t ? at(L, p, j, ldx, i) : at(L, p, i, ldx, j));
}

static void mm_inline(cg_lower *L, const mm *d, LLVMValueRef pa, LLVMValueRef pb, LLVMValueRef pc)
{
    cg_loop li, lj, lk;
    cg_loop_begin(L, &li, cg_i64(L, d->m));
    cg_loop_begin(L, &lj, cg_i64(L, d->n));
    LLVMValueRef acc = cg_slot(L, L->f64, "acc");
    LLVMBuildStore(L->b, cg_f64(L, 0.0), acc);
    cg_loop_begin(L, &lk, cg_i64(L, d->k));
    LLVMValueRef x = mm_elem(L, pa, d->ta, d->lda, li.i, lk.i);
    LLVMValueRef y = mm_elem(L, pb, d->tb, d->ldb, lk.i, lj.i);
    LLVMValueRef s = LLVMBuildFAdd(L->b, LLVMBuildLoad2(L->b, L->f64, acc, ""),
                                   LLVMBuildFMul(L->b, x, y, ""), "");
    LLVMBuildStore(L->b, s, acc);
    cg_loop_end(L, &lk);
    LLVMBuildStore(L->b, LLVMBuildLoad2(L->b, L->f64, acc, ""), at(L, pc, li.i, d->n, lj.i));
    cg_loop_end(L, &lj);
    cg_loop_end(L, &li);
}

/* A matrix-vector product (m or n is 1) as C = Σ_k op(A)[:, k] op(B)[k, :]:
 * the long side is the inner loop, so each entry of C sums over k in order
 * (as a dot product would) and the loop vectorises across entries.  Used
 * when the reduction would stride through memory; otherwise mm_inline's
 * dot products read it contiguously. */
static void mv_axpy(cg_lower *L, const mm *d, LLVMValueRef pa, LLVMValueRef pb, LLVMValueRef pc)
{
    cg_zero(L, pc, d->m * d->n);
    cg_loop lk, li, lj;
    cg_loop_begin(L, &lk, cg_i64(L, d->k));
    cg_loop_begin(L, &li, cg_i64(L, d->m));
    cg_loop_begin(L, &lj, cg_i64(L, d->n));
    LLVMValueRef x = mm_elem(L, pa, d->ta, d->lda, li.i, lk.i);
    LLVMValueRef y = mm_elem(L, pb, d->tb, d->ldb, lk.i, lj.i);
    LLVMValueRef c = at(L, pc, li.i, d->n, lj.i);
    LLVMBuildStore(L->b, LLVMBuildFAdd(L->b, ld(L, c), LLVMBuildFMul(L->b, x, y, ""), ""), c);
    cg_loop_end(L, &lj);
    cg_loop_end(L, &li);
    cg_loop_end(L, &lk);
}

/* Whether matmul d is a matrix-vector product small enough for inline loops. */
static int mv_small(const mm *d)
{
    return (d->n == 1 || d->m == 1) && !d->same && (double)d->m * (double)d->n * (double)d->k <=
                                                       CG_INLINE_GEMV;
}

/* The inline matrix-vector product: dot products when the matrix's rows
 * are the reduction (contiguous), else mv_axpy. */
static void mv_inline(cg_lower *L, const mm *d, LLVMValueRef pa, LLVMValueRef pb, LLVMValueRef pc)
{
    int dots = d->n == 1 ? !d->ta : d->tb;
    if (dots)
        mm_inline(L, d, pa, pb, pc);
    else
        mv_axpy(L, d, pa, pb, pc);
}

static LLVMValueRef i32c(cg_lower *L, int64_t v) { return cg_i32(L, (int32_t)(v > 0 ? v : 1)); }

/* C = op(A) op(A)ᵀ from dsyrk (lower triangle), mirrored to the upper one. */
static void mm_syrk(cg_lower *L, const mm *d, LLVMValueRef pa, LLVMValueRef pc)
{
    LLVMValueRef args[11] = {cg_i32(L, ROW_MAJOR), cg_i32(L, LOWER), cg_i32(L, d->ta ? TRANS : NO_TRANS),
                             i32c(L, d->m), i32c(L, d->k), cg_f64(L, 1.0), pa, i32c(L, d->lda),
                             cg_f64(L, 0.0), pc, i32c(L, d->m)};
    call(L, "cblas_dsyrk", L->vd, 11, args);
    cg_loop li, lj;
    cg_loop_begin(L, &li, cg_i64(L, d->m));
    cg_loop_from(L, &lj, LLVMBuildNSWAdd(L->b, li.i, cg_i64(L, 1), ""), cg_i64(L, d->m));
    LLVMBuildStore(L->b, ld(L, at(L, pc, lj.i, d->m, li.i)), at(L, pc, li.i, d->m, lj.i));
    cg_loop_end(L, &lj);
    cg_loop_end(L, &li);
}

static void mm_blas(cg_lower *L, const mm *d, LLVMValueRef pa, LLVMValueRef pb, LLVMValueRef pc)
{
    LLVMValueRef one = cg_f64(L, 1.0), zero = cg_f64(L, 0.0), inc = cg_i32(L, 1);
    int64_t ra = d->ta ? d->k : d->m, rb = d->tb ? d->n : d->k;
    if (d->same && d->ta != d->tb) {
        mm_syrk(L, d, pa, pc);
    } else if (d->n == 1) {
        LLVMValueRef args[12] = {cg_i32(L, ROW_MAJOR), cg_i32(L, d->ta ? TRANS : NO_TRANS), i32c(L, ra),
                                 i32c(L, d->lda), one, pa, i32c(L, d->lda), pb, inc, zero, pc, inc};
        call(L, "cblas_dgemv", L->vd, 12, args);
    } else if (d->m == 1) {
        LLVMValueRef args[12] = {cg_i32(L, ROW_MAJOR), cg_i32(L, d->tb ? NO_TRANS : TRANS), i32c(L, rb),
                                 i32c(L, d->ldb), one, pb, i32c(L, d->ldb), pa, inc, zero, pc, inc};
        call(L, "cblas_dgemv", L->vd, 12, args);
    } else {
        LLVMValueRef args[14] = {cg_i32(L, ROW_MAJOR), cg_i32(L, d->ta ? TRANS : NO_TRANS),
                                 cg_i32(L, d->tb ? TRANS : NO_TRANS), i32c(L, d->m), i32c(L, d->n),
                                 i32c(L, d->k), one, pa, i32c(L, d->lda), pb, i32c(L, d->ldb), zero,
                                 pc, i32c(L, d->n)};
        call(L, "cblas_dgemm", L->vd, 14, args);
    }
}

static sj_status emit_matmul(cg_lower *L, ir_val v)
{
    mm d;
    mm_describe(L, v, &d);
    const ir_shape *s = ir_shape_of(L->g, v);
    int64_t nb = nbatch(s, 2);
    if (d.k == 0) {
        cg_zero(L, L->base[v], nb * d.sc);
        return SJ_OK;
    }
    int small = d.m <= CG_SMALL_GEMM && d.n <= CG_SMALL_GEMM && d.k <= CG_SMALL_GEMM;
    int t;
    ir_val cap[3] = {cg_matmul_operand(L->g, v, 0, &t), cg_matmul_operand(L->g, v, 1, &t), v};
    cg_batch lb;
    cg_batch_begin(L, &lb, nb, 2.0 * (double)d.m * (double)d.n * (double)d.k, 3, cap);
    d.a = L->base[cap[0]];
    d.b = L->base[cap[1]];
    LLVMValueRef pa = batch_ptr(L, d.a, lb.b, d.sa), pb = batch_ptr(L, d.b, lb.b, d.sb);
    LLVMValueRef pc = batch_ptr(L, L->base[v], lb.b, d.sc);
    int mv = !small && mv_small(&d);
    if (small) {
        L->novec++;
        mm_inline(L, &d, pa, pb, pc);
        L->novec--;
    } else if (mv) {
        mv_inline(L, &d, pa, pb, pc);
    } else
        mm_blas(L, &d, pa, pb, pc);
    cg_batch_end(L, &lb);
    if (small || mv)
        L->stats.ninline_linalg++;
    else
        L->stats.nlibcall++;
    return SJ_OK;
}

/* ---- cholesky and logdet --------------------------------------------------- */

/* i64 sj_chol_small(ptr a, i64 n): in-place Cholesky of the n×n row-major
 * matrix at a (lower triangle read, upper zeroed).  Returns 0, or like dpotrf
 * the order of the leading minor that is not positive definite. */
static LLVMValueRef chol_small_fn(cg_lower *L)
{
    LLVMTypeRef params[2] = {L->ptr, L->i64};
    helper save;
    int fresh;
    LLVMValueRef f = helper_begin(L, "sj_chol_small", L->i64, 2, params, &save, &fresh);
    if (!fresh)
        return f;
    LLVMBuilderRef B = L->b;
    LLVMValueRef a = LLVMGetParam(f, 0), n = LLVMGetParam(f, 1);
    cg_loop lj, lk, li, lk2;
    cg_loop_begin(L, &lj, n);
    LLVMValueRef j = lj.i, s = cg_slot(L, L->f64, "s");
    LLVMBuildStore(B, ld(L, atv(L, a, j, n, j)), s);
    cg_loop_begin(L, &lk, j);
    LLVMValueRef t = ld(L, atv(L, a, j, n, lk.i));
    LLVMBuildStore(B, LLVMBuildFSub(B, LLVMBuildLoad2(B, L->f64, s, ""), LLVMBuildFMul(B, t, t, ""), ""), s);
    cg_loop_end(L, &lk);
    LLVMValueRef dsq = LLVMBuildLoad2(B, L->f64, s, "");
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(L->cx, f, "fail");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(L->cx, f, "ok");
    /* Not positive, NaN, or +Inf (an infinity in the lower triangle: not
     * positive definite, as in ir/eval, where later steps would divide
     * Inf by Inf or leave an infinite factor). */
    LLVMValueRef pos = LLVMBuildFCmp(B, LLVMRealOGT, dsq, cg_f64(L, 0.0), "");
    LLVMValueRef fin = LLVMBuildFCmp(B, LLVMRealOLT, dsq, cg_f64(L, INFINITY), "");
    LLVMBuildCondBr(B, LLVMBuildAnd(B, pos, fin, ""), ok, fail);
    LLVMPositionBuilderAtEnd(B, fail);
    LLVMBuildRet(B, LLVMBuildNSWAdd(B, j, cg_i64(L, 1), ""));
    LLVMPositionBuilderAtEnd(B, ok);
    LLVMValueRef d = cg_intrinsic(L, "llvm.sqrt", dsq);
    LLVMBuildStore(B, d, atv(L, a, j, n, j));
    cg_loop_from(L, &li, LLVMBuildNSWAdd(B, j, cg_i64(L, 1), ""), n);
    LLVMBuildStore(B, ld(L, atv(L, a, li.i, n, j)), s);
    cg_loop_begin(L, &lk2, j);
    LLVMValueRef p = LLVMBuildFMul(B, ld(L, atv(L, a, li.i, n, lk2.i)), ld(L, atv(L, a, j, n, lk2.i)), "");
    LLVMBuildStore(B, LLVMBuildFSub(B, LLVMBuildLoad2(B, L->f64, s, ""), p, ""), s);
    cg_loop_end(L, &lk2);
    LLVMBuildStore(B, LLVMBuildFDiv(B, LLVMBuildLoad2(B, L->f64, s, ""), d, ""), atv(L, a, li.i, n, j));
    LLVMBuildStore(B, cg_f64(L, 0.0), atv(L, a, j, n, li.i));
    cg_loop_end(L, &li);
    cg_loop_end(L, &lj);
    LLVMBuildRet(B, cg_i64(L, 0));
    helper_end(L, &save);
    return f;
}

/* In-place Cholesky of the n×n matrix at a through sj_chol_small; fails with
 * SJ_ERR_NOT_POSITIVE_DEFINITE like dpotrf. */
static void chol_inline(cg_lower *L, ir_val v, LLVMValueRef a, int64_t n, LLVMValueRef b)
{
    LLVMValueRef f = chol_small_fn(L);
    LLVMValueRef args[2] = {a, cg_i64(L, n)};
    LLVMValueRef info = LLVMBuildCall2(L->b, LLVMGlobalGetValueType(f), f, args, 2, "");
    cg_fail_if(L, LLVMBuildICmp(L->b, LLVMIntNE, info, cg_i64(L, 0), ""),
               SJ_ERR_NOT_POSITIVE_DEFINITE, v, b, NULL, info);
}

/* Cholesky through LAPACK (dpotrf touches the lower triangle only). */
static void chol_lapack(cg_lower *L, ir_val v, LLVMValueRef a, int64_t n, LLVMValueRef b)
{
    LLVMValueRef args[5] = {cg_i32(L, COL_MAJOR), cg_i32(L, 'U'), cg_i32(L, (int32_t)n), a,
                            cg_i32(L, (int32_t)n)};
    LLVMValueRef info = call(L, "LAPACKE_dpotrf_work", L->i32, 5, args);
    check_info(L, v, info, b, SJ_ERR_NOT_POSITIVE_DEFINITE);
    /* OpenBLAS lets a NaN or an infinity through.  A non-finite entry of the
     * lower triangle either makes a later pivot NaN or -Inf (dpotrf fails) or
     * leaves a non-finite diagonal (an Inf pivot, whose column then divides
     * to zero): ir/eval rejects both, so the diagonal is scanned. */
    cg_loop li;
    cg_loop_begin(L, &li, cg_i64(L, n));
    LLVMValueRef d = ld(L, at(L, a, li.i, n, li.i));
    LLVMValueRef fin = LLVMBuildFCmp(L->b, LLVMRealOLT, cg_intrinsic(L, "llvm.fabs", d),
                                     cg_f64(L, INFINITY), "");
    cg_fail_if(L, LLVMBuildNot(L->b, fin, ""), SJ_ERR_NOT_POSITIVE_DEFINITE, v, b,
               NULL, LLVMBuildNSWAdd(L->b, li.i, cg_i64(L, 1), ""));
    cg_loop_end(L, &li);
}

/* sj_chol_small for a tiny constant n, unrolled in place: the same
 * operations in the same order, failing like chol_inline. */
static void chol_tiny(cg_lower *L, ir_val v, LLVMValueRef a, int64_t n, LLVMValueRef b)
{
    LLVMBuilderRef B = L->b;
#define A(i, j) at(L, a, cg_i64(L, (i)), n, cg_i64(L, (j)))
    for (int64_t j = 0; j < n; j++) {
        LLVMValueRef s = ld(L, A(j, j));
        for (int64_t k = 0; k < j; k++) {
            LLVMValueRef t = ld(L, A(j, k));
            s = LLVMBuildFSub(B, s, LLVMBuildFMul(B, t, t, ""), "");
        }
        LLVMValueRef pos = LLVMBuildFCmp(B, LLVMRealOGT, s, cg_f64(L, 0.0), "");
        LLVMValueRef fin = LLVMBuildFCmp(B, LLVMRealOLT, s, cg_f64(L, INFINITY), "");
        cg_fail_if(L, LLVMBuildNot(B, LLVMBuildAnd(B, pos, fin, ""), ""),
                   SJ_ERR_NOT_POSITIVE_DEFINITE, v, b, NULL, cg_i64(L, j + 1));
        LLVMValueRef d = cg_intrinsic(L, "llvm.sqrt", s);
        LLVMBuildStore(B, d, A(j, j));
        for (int64_t i = j + 1; i < n; i++) {
            LLVMValueRef si = ld(L, A(i, j));
            for (int64_t k = 0; k < j; k++)
                si = LLVMBuildFSub(B, si, LLVMBuildFMul(B, ld(L, A(i, k)), ld(L, A(j, k)), ""), "");
            LLVMBuildStore(B, LLVMBuildFDiv(B, si, d, ""), A(i, j));
            LLVMBuildStore(B, cg_f64(L, 0.0), A(j, i));
        }
    }
#undef A
}

static void factor(cg_lower *L, ir_val v, LLVMValueRef a, int64_t n, LLVMValueRef b)
{
    if (n <= CG_TINY)
        chol_tiny(L, v, a, n, b);
    else if (n <= CG_SMALL_CHOL)
        chol_inline(L, v, a, n, b);
    else
        chol_lapack(L, v, a, n, b);
}

/* Copies the lower triangle of every matrix of u (read element by element)
 * to dst, and zeroes the upper one when zero_upper: all a factorisation
 * reads, and as the peer (LAPACKE user) does it, half the stores of a full
 * copy followed by a zeroing pass. */
static void fill_lower(cg_lower *L, ir_val u, LLVMValueRef dst, int zero_upper)
{
    const ir_shape *s = ir_shape_of(L->g, u);
    int r = s->rank;
    int64_t n = s->dim[r - 1];
    LLVMValueRef idx[IR_MAX_RANK];
    cg_nest nest;
    cg_loop lj;
    if (n <= CG_SMALL_CHOL)
        L->novec++;
    cg_nest_begin(L, &nest, r - 1, s->dim, idx);
    LLVMValueRef next = LLVMBuildNSWAdd(L->b, idx[r - 2], cg_i64(L, 1), "");
    cg_loop_begin(L, &lj, next);
    idx[r - 1] = lj.i;
    cg_store(L, dst, cg_offset(L, s, idx), cg_read(L, u, idx));
    cg_loop_end(L, &lj);
    if (zero_upper) {
        idx[r - 1] = next;
        LLVMValueRef p = cg_gep(L, dst, cg_offset(L, s, idx));
        LLVMValueRef bytes = LLVMBuildNSWMul(L->b, LLVMBuildNSWSub(L->b, cg_i64(L, n), next, ""),
                                             cg_i64(L, 8), "");
        LLVMBuildMemSet(L->b, p, LLVMConstInt(L->i8, 0, 0), bytes, 8);
    }
    cg_nest_end(L, &nest);
    if (n <= CG_SMALL_CHOL)
        L->novec--;
}

static void count_linalg(cg_lower *L, int inline_loops)
{
    if (inline_loops)
        L->stats.ninline_linalg++;
    else
        L->stats.nlibcall++;
}

static double chol_flops(int64_t n) { return (double)n * (double)n * (double)n / 3.0; }

static sj_status emit_cholesky(cg_lower *L, ir_val v)
{
    const ir_shape *s = ir_shape_of(L->g, v);
    int64_t n = s->dim[s->rank - 1];
    if (n > 0)
        fill_lower(L, ir_node_at(L->g, v)->input[0], L->base[v], 1);
    cg_batch lb;
    cg_batch_begin(L, &lb, nbatch(s, 2), chol_flops(n), 1, &v);
    factor(L, v, batch_ptr(L, L->base[v], lb.b, n * n), n, lb.b);
    cg_batch_end(L, &lb);
    count_linalg(L, n <= CG_SMALL_CHOL);
    return SJ_OK;
}

static size_t temp_logdet(const ir_graph *g, ir_val v)
{
    if (cg_logdet_factor(g, v) != IR_NONE)
        return 0;
    return ir_shape_numel(ir_shape_of(g, ir_node_at(g, v)->input[0])) * sizeof(double);
}

/* logdet A = 2 Σ log Lᵢᵢ, factoring a copy of A unless a cholesky of A has
 * already been computed (cg_logdet_factor). */
static sj_status emit_logdet(cg_lower *L, ir_val v)
{
    ir_val a = ir_node_at(L->g, v)->input[0], c = cg_logdet_factor(L->g, v);
    const ir_shape *s = ir_shape_of(L->g, a);
    int64_t n = s->dim[s->rank - 1];
    if (n > 0 && c == IR_NONE)
        fill_lower(L, a, L->temp[v], 0);
    cg_batch lb;
    cg_loop li;
    ir_val cap[2] = {v, c};
    cg_batch_begin(L, &lb, nbatch(s, 2), c == IR_NONE ? chol_flops(n) : (double)n, c == IR_NONE ? 1 : 2,
                   cap);
    LLVMValueRef acc = cg_slot(L, L->f64, "logdet");
    LLVMBuildStore(L->b, cg_f64(L, 0.0), acc);
    if (n > 0) {
        LLVMValueRef p = batch_ptr(L, c == IR_NONE ? L->temp[v] : L->base[c], lb.b, n * n);
        if (c == IR_NONE)
            factor(L, v, p, n, lb.b);
        cg_loop_begin(L, &li, cg_i64(L, n));
        LLVMValueRef x = ld(L, at(L, p, li.i, n, li.i));
        LLVMValueRef sum = LLVMBuildFAdd(L->b, LLVMBuildLoad2(L->b, L->f64, acc, ""),
                                         cg_math(L, "log", 1, &x), "");
        LLVMBuildStore(L->b, sum, acc);
        cg_loop_end(L, &li);
    }
    LLVMValueRef r = LLVMBuildFMul(L->b, cg_f64(L, 2.0), LLVMBuildLoad2(L->b, L->f64, acc, ""), "");
    cg_store(L, L->base[v], lb.b, r);
    cg_batch_end(L, &lb);
    if (c == IR_NONE)
        count_linalg(L, n <= CG_SMALL_CHOL);
    return SJ_OK;
}

/* ---- triangular and Cholesky solves --------------------------------------- */

/* Fails with SJ_ERR_SINGULAR when the n×n matrix at a has a zero diagonal
 * element (as LAPACK's dtrtrs does). */
static void check_diagonal(cg_lower *L, ir_val v, LLVMValueRef a, int64_t n, LLVMValueRef b)
{
    cg_loop li;
    cg_loop_begin(L, &li, cg_i64(L, n));
    LLVMValueRef d = ld(L, at(L, a, li.i, n, li.i));
    cg_fail_if(L, LLVMBuildFCmp(L->b, LLVMRealOEQ, d, cg_f64(L, 0.0), ""), SJ_ERR_SINGULAR, v, b,
               NULL, LLVMBuildNSWAdd(L->b, li.i, cg_i64(L, 1), ""));
    cg_loop_end(L, &li);
}

/* Substitution multiplies by the reciprocal of the pivot, as OpenBLAS's
 * dtrsm (the evaluator's and the large-matrix path) does: on a subnormal
 * pivot 1/d overflows to ±Inf, and dividing instead would give a finite
 * answer where the library gives an infinite one (tests/fuzz/graph/crashes/
 * trsm-subnormal-pivot). */
static LLVMValueRef recip(cg_lower *L, LLVMValueRef d)
{
    return LLVMBuildFDiv(L->b, cg_f64(L, 1.0), d, "");
}

/* void sj_trsm_small_<flags>(ptr a, i64 n, ptr x, i64 rows, i64 cols):
 * solves in place X (rows × cols, row-major at x) := op(A)⁻¹ X, or X op(A)⁻¹
 * with SJ_SOLVE_RIGHT, by substitution; one function per flags value.  The
 * system matrix M is op(A) for a left solve and op(A)ᵀ for a right one (X's
 * rows are then the systems). */
static LLVMValueRef trsm_small_fn(cg_lower *L, unsigned flags)
{
    char name[40];
    snprintf(name, sizeof name, "sj_trsm_small_%u", flags);
    LLVMTypeRef params[5] = {L->ptr, L->i64, L->ptr, L->i64, L->i64};
    helper save;
    int fresh;
    LLVMValueRef f = helper_begin(L, name, L->vd, 5, params, &save, &fresh);
    if (!fresh)
        return f;
    LLVMBuilderRef B = L->b;
    LLVMValueRef a = LLVMGetParam(f, 0), n = LLVMGetParam(f, 1), x = LLVMGetParam(f, 2);
    LLVMValueRef rows = LLVMGetParam(f, 3), cols = LLVMGetParam(f, 4);
    int left = !(flags & SJ_SOLVE_RIGHT), trans = (flags & SJ_SOLVE_TRANSPOSE) != 0;
    int upper = (flags & SJ_SOLVE_UPPER) != 0;
    int swap = left ? trans : !trans;          /* M[i][k] = A[k][i] */
    int forward = swap ? upper : !upper;       /* M is lower triangular */
    LLVMValueRef nsys = left ? cols : rows;
#define M(i, k) ld(L, swap ? atv(L, a, (k), n, (i)) : atv(L, a, (i), n, (k)))
#define X(i, c) (left ? atv(L, x, (i), cols, (c)) : atv(L, x, (c), cols, (i)))
    cg_loop lc, li, lk;
    cg_loop_begin(L, &lc, nsys);
    cg_loop_begin(L, &li, n);
    LLVMValueRef i = forward ? li.i : LLVMBuildNSWSub(B, LLVMBuildNSWSub(B, n, cg_i64(L, 1), ""), li.i, "");
    LLVMValueRef s = cg_slot(L, L->f64, "s");
    LLVMBuildStore(B, ld(L, X(i, lc.i)), s);
    if (forward)
        cg_loop_begin(L, &lk, i);
    else
        cg_loop_from(L, &lk, LLVMBuildNSWAdd(B, i, cg_i64(L, 1), ""), n);
    LLVMValueRef p = LLVMBuildFMul(B, M(i, lk.i), ld(L, X(lk.i, lc.i)), "");
    LLVMBuildStore(B, LLVMBuildFSub(B, LLVMBuildLoad2(B, L->f64, s, ""), p, ""), s);
    cg_loop_end(L, &lk);
    LLVMBuildStore(B, LLVMBuildFMul(B, LLVMBuildLoad2(B, L->f64, s, ""), recip(L, M(i, i)), ""),
                   X(i, lc.i));
    cg_loop_end(L, &li);
    cg_loop_end(L, &lc);
#undef M
#undef X
    LLVMBuildRetVoid(B);
    helper_end(L, &save);
    return f;
}

static void trsm_inline(cg_lower *L, LLVMValueRef a, int64_t n, LLVMValueRef x, int64_t rows,
                        int64_t cols, unsigned flags)
{
    LLVMValueRef f = trsm_small_fn(L, flags);
    LLVMValueRef args[5] = {a, cg_i64(L, n), x, cg_i64(L, rows), cg_i64(L, cols)};
    LLVMBuildCall2(L->b, LLVMGlobalGetValueType(f), f, args, 5, "");
}

static void trsm_blas(cg_lower *L, LLVMValueRef a, int64_t n, LLVMValueRef x, int64_t rows,
                      int64_t cols, unsigned flags)
{
    LLVMValueRef args[12] = {cg_i32(L, ROW_MAJOR), cg_i32(L, (flags & SJ_SOLVE_RIGHT) ? RIGHT : LEFT),
                             cg_i32(L, (flags & SJ_SOLVE_UPPER) ? UPPER : LOWER),
                             cg_i32(L, (flags & SJ_SOLVE_TRANSPOSE) ? TRANS : NO_TRANS),
                             cg_i32(L, NON_UNIT), i32c(L, rows), i32c(L, cols), cg_f64(L, 1.0), a,
                             i32c(L, n), x, i32c(L, cols)};
    call(L, "cblas_dtrsm", L->vd, 12, args);
}

/* sj_trsm_small_<flags> for a tiny constant n, unrolled in place (the same
 * operations in the same order). */
static void trsm_tiny(cg_lower *L, LLVMValueRef a, int64_t n, LLVMValueRef x, int64_t rows,
                      int64_t cols, unsigned flags)
{
    LLVMBuilderRef B = L->b;
    int left = !(flags & SJ_SOLVE_RIGHT), trans = (flags & SJ_SOLVE_TRANSPOSE) != 0;
    int upper = (flags & SJ_SOLVE_UPPER) != 0;
    int swap = left ? trans : !trans;
    int forward = swap ? upper : !upper;
    int64_t nsys = left ? cols : rows;
#define C(v) cg_i64(L, (v))
#define M(i, k) ld(L, swap ? at(L, a, C(k), n, C(i)) : at(L, a, C(i), n, C(k)))
#define X(i, c) (left ? at(L, x, C(i), cols, C(c)) : at(L, x, C(c), cols, C(i)))
    for (int64_t c = 0; c < nsys; c++)
        for (int64_t li = 0; li < n; li++) {
            int64_t i = forward ? li : n - 1 - li;
            LLVMValueRef s = ld(L, X(i, c));
            for (int64_t k = forward ? 0 : i + 1; k < (forward ? i : n); k++)
                s = LLVMBuildFSub(B, s, LLVMBuildFMul(B, M(i, k), ld(L, X(k, c)), ""), "");
            LLVMBuildStore(B, LLVMBuildFMul(B, s, recip(L, M(i, i)), ""), X(i, c));
        }
#undef X
#undef M
#undef C
}

static void trsm(cg_lower *L, LLVMValueRef a, int64_t n, LLVMValueRef x, int64_t rows, int64_t cols,
                 unsigned flags)
{
    if (n <= CG_TINY && (flags & SJ_SOLVE_RIGHT ? rows : cols) <= 4 * CG_TINY)
        trsm_tiny(L, a, n, x, rows, cols, flags);
    else if (n <= CG_SMALL_TRSM)
        trsm_inline(L, a, n, x, rows, cols, flags);
    else
        trsm_blas(L, a, n, x, rows, cols, flags);
}

/* Every matrix of v (last two axes) is the identity: an eye, broadcast along
 * batch axes or reshaped or transposed without touching its two axes.  The
 * derivative rules write A⁻¹ as cholesky_solve(chol(A), I) (logdet), and vmap
 * broadcasts that I over the batch. */
static int is_identity(const ir_graph *g, ir_val v)
{
    const ir_node *n = ir_node_at(g, v);
    int r = n->shape.rank;
    if (r < 2 || n->shape.dim[r - 1] != n->shape.dim[r - 2])
        return 0;
    const ir_shape *xs = n->ninput == 1 ? ir_shape_of(g, n->input[0]) : NULL;
    int rx = xs ? xs->rank : 0;
    switch (n->op) {
    case IR_OP_EYE:
        return 1;
    case IR_OP_BROADCAST: /* the eye's two axes land on the last two, unstretched */
        if (rx < 2 || xs->dim[rx - 1] != n->shape.dim[r - 1] || xs->dim[rx - 2] != n->shape.dim[r - 2])
            return 0;
        if (!((n->attr[rx - 2] == r - 2 && n->attr[rx - 1] == r - 1) ||
              (n->attr[rx - 2] == r - 1 && n->attr[rx - 1] == r - 2)))
            return 0;
        return is_identity(g, n->input[0]);
    case IR_OP_RESHAPE: /* same last two axes: every n×n block is kept whole */
        if (rx < 2 || xs->dim[rx - 1] != n->shape.dim[r - 1] || xs->dim[rx - 2] != n->shape.dim[r - 2])
            return 0;
        return is_identity(g, n->input[0]);
    case IR_OP_TRANSPOSE:
        if (n->attr[r - 2] < r - 2 || n->attr[r - 1] < r - 2)
            return 0;
        return is_identity(g, n->input[0]);
    default:
        return 0;
    }
}

/* X = (L Lᵀ)⁻¹ for every n×n factor L (lower triangle read, from `factor`)
 * into x: the lower triangle copied, LAPACK's dpotri (dtrtri then dlauum,
 * n³/3 + n³/3 flops where the two n-column solves of the general path take
 * 2n³), then the upper triangle filled by symmetry.  In column-major mode
 * with 'U' on row-major data, as for dpotrf. */
static void inverse_lapack(cg_lower *L, ir_val v, ir_val factor, int64_t n, int64_t nb)
{
    fill_lower(L, factor, L->base[v], 0);
    cg_batch lb;
    cg_loop li, lj;
    cg_batch_begin(L, &lb, nb, 2.0 * chol_flops(n), 1, &v);
    LLVMValueRef px = batch_ptr(L, L->base[v], lb.b, n * n);
    if (ir_node_at(L->g, factor)->op != IR_OP_CHOLESKY)
        check_diagonal(L, v, px, n, lb.b);
    LLVMValueRef args[5] = {cg_i32(L, COL_MAJOR), cg_i32(L, 'U'), cg_i32(L, (int32_t)n), px,
                            cg_i32(L, (int32_t)n)};
    check_info(L, v, call(L, "LAPACKE_dpotri_work", L->i32, 5, args), lb.b, SJ_ERR_SINGULAR);
    cg_loop_begin(L, &li, cg_i64(L, n));
    cg_loop_from(L, &lj, LLVMBuildNSWAdd(L->b, li.i, cg_i64(L, 1), ""), cg_i64(L, n));
    LLVMBuildStore(L->b, ld(L, at(L, px, lj.i, n, li.i)), at(L, px, li.i, n, lj.i));
    cg_loop_end(L, &lj);
    cg_loop_end(L, &li);
    cg_batch_end(L, &lb);
}

static sj_status emit_solve_tri(cg_lower *L, ir_val v)
{
    const ir_node *nd = ir_node_at(L->g, v);
    const ir_shape *s = &nd->shape;
    int64_t n = ir_shape_of(L->g, nd->input[0])->dim[s->rank - 1];
    int64_t rows = s->dim[s->rank - 2], cols = s->dim[s->rank - 1];
    unsigned flags = nd->op == IR_OP_TRISOLVE ? (unsigned)nd->attr[0] : 0;
    if (nd->op == IR_OP_CHOSOLVE && n > CG_SMALL_TRSM && is_identity(L->g, nd->input[1])) {
        inverse_lapack(L, v, nd->input[0], n, nbatch(s, 2));
        count_linalg(L, 0);
        return SJ_OK;
    }
    cg_fill(L, nd->input[1], L->base[v]);
    cg_batch lb;
    ir_val cap[2] = {nd->input[0], v};
    double flops = (double)n * (double)n * (double)(rows * cols / (n ? n : 1));
    cg_batch_begin(L, &lb, nbatch(s, 2), nd->op == IR_OP_TRISOLVE ? flops : 2 * flops, 2, cap);
    LLVMValueRef pa = batch_ptr(L, L->base[nd->input[0]], lb.b, n * n);
    LLVMValueRef px = batch_ptr(L, L->base[v], lb.b, rows * cols);
    /* A factor from our cholesky has a positive diagonal already. */
    if (ir_node_at(L->g, nd->input[0])->op != IR_OP_CHOLESKY)
        check_diagonal(L, v, pa, n, lb.b);
    if (nd->op == IR_OP_TRISOLVE) {
        trsm(L, pa, n, px, rows, cols, flags);
    } else { /* (L Lᵀ)⁻¹ B = L⁻ᵀ (L⁻¹ B) */
        trsm(L, pa, n, px, rows, cols, 0);
        trsm(L, pa, n, px, rows, cols, SJ_SOLVE_TRANSPOSE);
    }
    cg_batch_end(L, &lb);
    count_linalg(L, n <= CG_SMALL_TRSM);
    return SJ_OK;
}

/* ---- general solve ---------------------------------------------------------- */

/* The LU factors, then one pivot vector per batch item (items may run on
 * different threads). */
static size_t temp_solve(const ir_graph *g, ir_val v)
{
    const ir_shape *a = ir_shape_of(g, ir_node_at(g, v)->input[0]);
    size_t lu = ir_shape_numel(a) * sizeof(double);
    return ir_align64(lu) + (size_t)nbatch(a, 2) * (size_t)a->dim[a->rank - 1] * sizeof(int32_t);
}

static sj_status emit_solve(cg_lower *L, ir_val v)
{
    const ir_node *nd = ir_node_at(L->g, v);
    const ir_shape *sa = ir_shape_of(L->g, nd->input[0]), *s = &nd->shape;
    int64_t n = sa->dim[sa->rank - 1], nrhs = s->dim[s->rank - 1];
    size_t lu = ir_align64(ir_shape_numel(sa) * sizeof(double));
    cg_fill(L, nd->input[0], L->temp[v]);
    cg_fill(L, nd->input[1], L->base[v]);
    cg_batch lb;
    double flops = 2.0 * chol_flops(n) + 2.0 * (double)n * (double)n * (double)nrhs;
    cg_batch_begin(L, &lb, nbatch(s, 2), flops, 1, &v);
    LLVMValueRef off = LLVMBuildNSWAdd(L->b, cg_i64(L, (int64_t)lu),
                                       LLVMBuildNSWMul(L->b, lb.b, cg_i64(L, 4 * n), ""), "");
    LLVMValueRef ipiv = LLVMBuildInBoundsGEP2(L->b, L->i8, L->temp[v], &off, 1, "");
    LLVMValueRef pa = batch_ptr(L, L->temp[v], lb.b, n * n);
    LLVMValueRef px = batch_ptr(L, L->base[v], lb.b, n * nrhs);
    LLVMValueRef f[6] = {cg_i32(L, ROW_MAJOR), i32c(L, n), i32c(L, n), pa, i32c(L, n), ipiv};
    check_info(L, v, call(L, "LAPACKE_dgetrf_work", L->i32, 6, f), lb.b, SJ_ERR_SINGULAR);
    LLVMValueRef r[8] = {cg_i32(L, ROW_MAJOR), cg_i32(L, 'N'), i32c(L, n), i32c(L, nrhs), pa,
                         i32c(L, n), ipiv, px};
    LLVMValueRef r9[9] = {r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], i32c(L, nrhs)};
    check_info(L, v, call(L, "LAPACKE_dgetrs_work", L->i32, 9, r9), lb.b, SJ_OK);
    cg_batch_end(L, &lb);
    L->stats.nlibcall++;
    return SJ_OK;
}

/* ---- rules -------------------------------------------------------------------- */

#define BIT(i) (1u << (i))
const cg_rule cg_rule_matmul = {NULL, emit_matmul, 0, 0, NULL};
const cg_rule cg_rule_outer = {gen_outer, cg_emit_generated, CG_ALL_INPUTS, CG_REPLICATES, NULL};
const cg_rule cg_rule_kron = {gen_kron, cg_emit_generated, CG_ALL_INPUTS, CG_REPLICATES, NULL};
const cg_rule cg_rule_diag = {gen_diag, cg_emit_generated, CG_ALL_INPUTS, CG_INDEX_ONLY, NULL};
const cg_rule cg_rule_diag_embed = {gen_diag_embed, cg_emit_generated, CG_ALL_INPUTS,
                                    CG_INDEX_ONLY | CG_REPLICATES, NULL};
const cg_rule cg_rule_tril = {gen_triangle, cg_emit_generated, CG_ALL_INPUTS, CG_INDEX_ONLY, NULL};
const cg_rule cg_rule_triu = {gen_triangle, cg_emit_generated, CG_ALL_INPUTS, CG_INDEX_ONLY, NULL};
const cg_rule cg_rule_cholesky = {NULL, emit_cholesky, BIT(0), CG_CAN_FAIL, NULL};
const cg_rule cg_rule_triangular_solve = {NULL, emit_solve_tri, BIT(1), CG_CAN_FAIL, NULL};
const cg_rule cg_rule_cholesky_solve = {NULL, emit_solve_tri, BIT(1), CG_CAN_FAIL, NULL};
const cg_rule cg_rule_logdet = {NULL, emit_logdet, BIT(0), CG_CAN_FAIL, temp_logdet};
const cg_rule cg_rule_solve = {NULL, emit_solve, BIT(0) | BIT(1), CG_CAN_FAIL, temp_solve};
