/* Data movement, indexing and reductions.  Broadcast, transpose, slice and
 * eye are index maps: their gens read the operand at a remapped index, so
 * they fold into whatever loop reads them.  Reshape shares its operand's
 * bytes.  Concat, gather, segment_sum, one_hot and the reductions write their
 * buffer with their own loops, reading operands element by element (so the
 * elementwise expression feeding a sum is fused into the sum's loop). */
#include <math.h>

#include "codegen/cg.h"

static LLVMValueRef gen_broadcast(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    if (L->split_inner) /* inside a split elementwise loop (lower_elementwise.c) */
        return cg_split_read(L, v);
    const ir_node *n = ir_node_at(L->g, v);
    const ir_shape *x = ir_shape_of(L->g, n->input[0]);
    LLVMValueRef in[IR_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        in[i] = x->dim[i] == 1 ? cg_i64(L, 0) : idx[n->attr[i]];
    return cg_read(L, n->input[0], in);
}

static LLVMValueRef gen_transpose(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    const ir_node *n = ir_node_at(L->g, v);
    LLVMValueRef in[IR_MAX_RANK];
    for (int i = 0; i < n->shape.rank; i++)
        in[n->attr[i]] = idx[i];
    return cg_read(L, n->input[0], in);
}

static int64_t slice_start(const ir_graph *g, const ir_node *n)
{
    int64_t start = n->attr[1];
    return start < 0 ? start + ir_shape_of(g, n->input[0])->dim[n->attr[0]] : start;
}

static LLVMValueRef gen_slice(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    const ir_node *n = ir_node_at(L->g, v);
    LLVMValueRef in[IR_MAX_RANK];
    for (int i = 0; i < n->shape.rank; i++)
        in[i] = idx[i];
    int axis = (int)n->attr[0];
    in[axis] = LLVMBuildNSWAdd(L->b, idx[axis], cg_i64(L, slice_start(L->g, n)), "");
    return cg_read(L, n->input[0], in);
}

static LLVMValueRef gen_eye(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    LLVMValueRef t = LLVMBuildICmp(L->b, LLVMIntEQ, idx[0], idx[1], "");
    return LLVMBuildSelect(L->b, t, cg_f64(L, 1.0), cg_f64(L, 0.0), "");
}

static sj_status emit_concat(cg_lower *L, ir_val v)
{
    const ir_node *n = ir_node_at(L->g, v);
    int axis = (int)n->attr[0];
    int64_t at = 0;
    for (int j = 0; j < n->ninput; j++) {
        const ir_shape *s = ir_shape_of(L->g, n->input[j]);
        LLVMValueRef idx[IR_MAX_RANK], out[IR_MAX_RANK];
        cg_nest nest;
        cg_nest_begin(L, &nest, s->rank, s->dim, idx);
        for (int k = 0; k < s->rank; k++)
            out[k] = k == axis ? LLVMBuildNSWAdd(L->b, idx[k], cg_i64(L, at), "") : idx[k];
        cg_store(L, L->base[v], cg_offset(L, &n->shape, out), cg_read(L, n->input[j], idx));
        cg_nest_end(L, &nest);
        at += s->dim[axis];
    }
    L->stats.nloop++;
    return SJ_OK;
}

/* The integer code idx[i] as i64, failing with SJ_ERR_DOMAIN unless it is a
 * whole number in 0..limit-1. */
static LLVMValueRef read_code(cg_lower *L, ir_val v, ir_val idxv, LLVMValueRef i, int64_t limit)
{
    LLVMValueRef f = cg_read(L, idxv, &i);
    LLVMValueRef whole = LLVMBuildFCmp(L->b, LLVMRealOEQ, cg_intrinsic(L, "llvm.floor", f), f, "");
    LLVMValueRef lo = LLVMBuildFCmp(L->b, LLVMRealOGE, f, cg_f64(L, 0.0), "");
    LLVMValueRef hi = LLVMBuildFCmp(L->b, LLVMRealOLT, f, cg_f64(L, (double)limit), "");
    LLVMValueRef ok = LLVMBuildAnd(L->b, whole, LLVMBuildAnd(L->b, lo, hi, ""), "");
    cg_fail_if(L, LLVMBuildNot(L->b, ok, ""), SJ_ERR_DOMAIN, v, i, f, cg_i64(L, limit));
    return LLVMBuildFPToSI(L->b, f, L->i64, "");
}

static sj_status emit_gather(cg_lower *L, ir_val v)
{
    const ir_node *n = ir_node_at(L->g, v);
    const ir_shape *x = ir_shape_of(L->g, n->input[0]);
    cg_loop lp;
    cg_loop_begin(L, &lp, cg_i64(L, n->shape.dim[0]));
    LLVMValueRef idx[IR_MAX_RANK], in[IR_MAX_RANK];
    in[0] = read_code(L, v, n->input[1], lp.i, x->dim[0]);
    idx[0] = lp.i;
    cg_nest nest;
    cg_nest_begin(L, &nest, x->rank - 1, x->dim + 1, idx + 1);
    for (int k = 1; k < x->rank; k++)
        in[k] = idx[k];
    cg_store(L, L->base[v], cg_offset(L, &n->shape, idx), cg_read(L, n->input[0], in));
    cg_nest_end(L, &nest);
    cg_loop_end(L, &lp);
    L->stats.nloop++;
    return SJ_OK;
}

static sj_status emit_segment_sum(cg_lower *L, ir_val v)
{
    const ir_node *n = ir_node_at(L->g, v);
    const ir_shape *x = ir_shape_of(L->g, n->input[0]);
    cg_zero(L, L->base[v], (int64_t)ir_shape_numel(&n->shape));
    cg_loop lp;
    cg_loop_begin(L, &lp, cg_i64(L, x->dim[0]));
    LLVMValueRef idx[IR_MAX_RANK], out[IR_MAX_RANK];
    out[0] = read_code(L, v, n->input[1], lp.i, n->shape.dim[0]);
    idx[0] = lp.i;
    cg_nest nest;
    cg_nest_begin(L, &nest, x->rank - 1, x->dim + 1, idx + 1);
    for (int k = 1; k < x->rank; k++)
        out[k] = idx[k];
    LLVMValueRef p = cg_gep(L, L->base[v], cg_offset(L, &n->shape, out));
    LLVMValueRef sum = LLVMBuildFAdd(L->b, LLVMBuildLoad2(L->b, L->f64, p, ""),
                                     cg_read(L, n->input[0], idx), "");
    LLVMBuildStore(L->b, sum, p);
    cg_nest_end(L, &nest);
    cg_loop_end(L, &lp);
    L->stats.nloop++;
    return SJ_OK;
}

static sj_status emit_one_hot(cg_lower *L, ir_val v)
{
    const ir_node *n = ir_node_at(L->g, v);
    int64_t nclass = n->shape.dim[1];
    cg_zero(L, L->base[v], (int64_t)ir_shape_numel(&n->shape));
    cg_loop lp;
    cg_loop_begin(L, &lp, cg_i64(L, n->shape.dim[0]));
    LLVMValueRef idx[2] = {lp.i, read_code(L, v, n->input[0], lp.i, nclass)};
    cg_store(L, L->base[v], cg_offset(L, &n->shape, idx), cg_f64(L, 1.0));
    cg_loop_end(L, &lp);
    L->stats.nloop++;
    return SJ_OK;
}

/* Sum, max or mean over the axes in attr0's mask: a loop nest over the kept
 * axes around a nest over the reduced axes, summing in row-major order. */
static sj_status emit_reduce(cg_lower *L, ir_val v)
{
    const ir_node *n = ir_node_at(L->g, v);
    const ir_shape *x = ir_shape_of(L->g, n->input[0]);
    int64_t mask = n->attr[0], kept[IR_MAX_RANK], red[IR_MAX_RANK], count = 1;
    int nk = 0, nr = 0;
    for (int i = 0; i < x->rank; i++) {
        if (mask & ((int64_t)1 << i)) {
            red[nr++] = x->dim[i];
            count *= x->dim[i];
        } else {
            kept[nk++] = x->dim[i];
        }
    }
    LLVMValueRef oi[IR_MAX_RANK], ri[IR_MAX_RANK], in[IR_MAX_RANK];
    cg_nest outer, inner;
    cg_nest_begin(L, &outer, nk, kept, oi);
    LLVMValueRef acc = cg_slot(L, L->f64, "acc");
    LLVMBuildStore(L->b, cg_f64(L, n->op == IR_OP_RMAX ? -INFINITY : 0.0), acc);
    cg_nest_begin(L, &inner, nr, red, ri);
    for (int i = 0, a = 0, b = 0; i < x->rank; i++)
        in[i] = (mask & ((int64_t)1 << i)) ? ri[b++] : oi[a++];
    LLVMValueRef e = cg_read(L, n->input[0], in);
    LLVMValueRef cur = LLVMBuildLoad2(L->b, L->f64, acc, "");
    LLVMValueRef next;
    if (n->op == IR_OP_RMAX) { /* NaN wins, as in NumPy */
        LLVMValueRef take = LLVMBuildFCmp(L->b, LLVMRealUGT, e, cur, "");
        next = LLVMBuildSelect(L->b, LLVMBuildFCmp(L->b, LLVMRealUNO, cur, cur, ""), cur,
                               LLVMBuildSelect(L->b, take, e, cur, ""), "");
    } else {
        next = LLVMBuildFAdd(L->b, cur, e, "");
    }
    LLVMBuildStore(L->b, next, acc);
    cg_nest_end(L, &inner);
    LLVMValueRef r = LLVMBuildLoad2(L->b, L->f64, acc, "");
    if (n->op == IR_OP_MEAN)
        r = LLVMBuildFDiv(L->b, r, cg_f64(L, (double)count), "");
    cg_store(L, L->base[v], cg_offset(L, &n->shape, oi), r);
    cg_nest_end(L, &outer);
    L->stats.nloop++;
    return SJ_OK;
}

const cg_rule cg_rule_eye = {gen_eye, cg_emit_generated, 0, CG_INDEX_ONLY, NULL};
const cg_rule cg_rule_broadcast = {gen_broadcast, cg_emit_generated, CG_ALL_INPUTS,
                                   CG_INDEX_ONLY | CG_REPLICATES, NULL};
const cg_rule cg_rule_reshape = {NULL, NULL, 0, CG_IS_ALIAS, NULL};
const cg_rule cg_rule_transpose = {gen_transpose, cg_emit_generated, CG_ALL_INPUTS, CG_INDEX_ONLY,
                                   NULL};
const cg_rule cg_rule_slice = {gen_slice, cg_emit_generated, CG_ALL_INPUTS, CG_INDEX_ONLY, NULL};
const cg_rule cg_rule_concat = {NULL, emit_concat, CG_ALL_INPUTS, 0, NULL};
const cg_rule cg_rule_gather = {NULL, emit_gather, CG_ALL_INPUTS, CG_REPLICATES | CG_CAN_FAIL,
                                NULL};
const cg_rule cg_rule_segment_sum = {NULL, emit_segment_sum, CG_ALL_INPUTS, CG_CAN_FAIL, NULL};
const cg_rule cg_rule_one_hot = {NULL, emit_one_hot, CG_ALL_INPUTS, CG_CAN_FAIL, NULL};
const cg_rule cg_rule_sum = {NULL, emit_reduce, CG_ALL_INPUTS, 0, NULL};
const cg_rule cg_rule_reduce_max = {NULL, emit_reduce, CG_ALL_INPUTS, 0, NULL};
const cg_rule cg_rule_mean = {NULL, emit_reduce, CG_ALL_INPUTS, 0, NULL};
