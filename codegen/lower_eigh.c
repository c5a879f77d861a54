/* Lowering of the symmetric eigendecomposition (eigvalsh, eigvecsh): one
 * call per batch item to ir_eigh_kernel (registered as "sj_eigh" in jit.c),
 * the evaluator's own kernel around LAPACKE_dsyevd_work, so that generated
 * code and the evaluator agree bit for bit, sign convention included.  The
 * workspace (the column-major copy, eigenvalues and dsyevd's work arrays) is
 * the op's scratch; the loop over the batch is serial.  Each op runs its own
 * decomposition: a graph reading both eigvalsh A and eigvecsh A decomposes A
 * twice (O(n³) each; these matrices are small in the smoothing fits). */
#include "codegen/cg.h"
#include "ir/eval_kernels.h"

static size_t temp_eigh(const ir_graph *g, ir_val v)
{
    const ir_shape *s = ir_shape_of(g, ir_node_at(g, v)->input[0]);
    int64_t n = s->dim[s->rank - 1];
    return n > 0 ? IR_EIGH_WORK(n) : 0;
}

static sj_status emit_eigh(cg_lower *L, ir_val v, int vectors)
{
    ir_val a = ir_node_at(L->g, v)->input[0];
    const ir_shape *s = ir_shape_of(L->g, a);
    int64_t n = s->dim[s->rank - 1];
    if (n == 0)
        return SJ_OK;
    int64_t nb = cg_prod(s, s->rank - 2), out_size = vectors ? n * n : n;
    LLVMValueRef null = LLVMConstPointerNull(L->ptr);
    cg_loop lp;
    cg_loop_begin(L, &lp, cg_i64(L, nb));
    LLVMValueRef pa = cg_gep(L, L->base[a], LLVMBuildNSWMul(L->b, lp.i, cg_i64(L, n * n), ""));
    LLVMValueRef po = cg_gep(L, L->base[v], LLVMBuildNSWMul(L->b, lp.i, cg_i64(L, out_size), ""));
    LLVMTypeRef types[5] = {L->ptr, L->i64, L->ptr, L->ptr, L->ptr};
    LLVMValueRef args[5] = {pa, cg_i64(L, n), vectors ? null : po, vectors ? po : null, L->temp[v]};
    LLVMValueRef info = cg_call(L, "sj_eigh", L->i32, 5, types, args);
    cg_fail_if(L, LLVMBuildICmp(L->b, LLVMIntSLT, info, cg_i32(L, 0), ""), SJ_ERR_INTERNAL, v,
               lp.i, NULL, LLVMBuildSExt(L->b, info, L->i64, ""));
    cg_loop_end(L, &lp);
    L->stats.nlibcall++;
    return SJ_OK;
}

static sj_status emit_eigvalsh(cg_lower *L, ir_val v) { return emit_eigh(L, v, 0); }
static sj_status emit_eigvecsh(cg_lower *L, ir_val v) { return emit_eigh(L, v, 1); }

const cg_rule cg_rule_eigvalsh = {NULL, emit_eigvalsh, 0, CG_CAN_FAIL, temp_eigh};
const cg_rule cg_rule_eigvecsh = {NULL, emit_eigvecsh, 0, CG_CAN_FAIL, temp_eigh};
