/* Elementwise ops and the fused loop.  An elementwise op's gen reads its
 * operands with cg_read, which recurses into inlined producers, so a chain of
 * elementwise ops (and the broadcasts, transposes and slices feeding it)
 * becomes one expression inside one loop over the output: no temporary array
 * per op.  When the whole expression is elementwise over same-shape buffers
 * the loop is flat (one counter over all elements), which vectorises best.
 * When it also reads broadcasts along leading or trailing axes — what vmap
 * makes of a batched scalar times a shared matrix, w[b] · X[i, j] — the loop
 * is split in two flat counters, outer over the leading axes and inner over
 * the trailing ones, and each broadcast reads its operand with one of them:
 * the inner loop is then one contiguous run (vectorised) instead of a nest
 * whose innermost axis may be 2 long. */
#include "codegen/cg.h"

static LLVMValueRef unary(cg_lower *L, ir_op op, int64_t attr, LLVMValueRef x)
{
    LLVMBuilderRef b = L->b;
    LLVMValueRef one = cg_f64(L, 1.0), zero = cg_f64(L, 0.0);
    switch (op) {
    case IR_OP_NEG: return LLVMBuildFNeg(b, x, "");
    case IR_OP_EXP: return cg_math(L, "exp", 1, &x);
    case IR_OP_LOG: return cg_math(L, "log", 1, &x);
    case IR_OP_LOG1P: return cg_math(L, "log1p", 1, &x);
    case IR_OP_EXPM1: return cg_math(L, "expm1", 1, &x);
    case IR_OP_SQRT: return cg_intrinsic(L, "llvm.sqrt", x);
    case IR_OP_SQUARE: return LLVMBuildFMul(b, x, x, "");
    case IR_OP_RECIP: return LLVMBuildFDiv(b, one, x, "");
    case IR_OP_TANH: return cg_math(L, "tanh", 1, &x);
    case IR_OP_LOGISTIC: { /* as ir/eval: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below */
        LLVMValueRef nx = LLVMBuildFNeg(b, cg_intrinsic(L, "llvm.fabs", x), "");
        LLVMValueRef e = cg_math(L, "exp", 1, &nx), d = LLVMBuildFAdd(b, one, e, "");
        LLVMValueRef pos = LLVMBuildFCmp(b, LLVMRealOGE, x, zero, "");
        return LLVMBuildFDiv(b, LLVMBuildSelect(b, pos, one, e, ""), d, "");
    }
    case IR_OP_LGAMMA: return cg_math(L, "sj_lgamma", 1, &x);
    case IR_OP_DIGAMMA: return cg_math(L, "sj_digamma", 1, &x);
    case IR_OP_POLYGAMMA: {
        LLVMValueRef args[2] = {cg_i32(L, (int32_t)attr), x};
        return cg_math(L, "sj_polygamma", 2, args);
    }
    case IR_OP_NDTR: return cg_math(L, "sj_ndtr", 1, &x);
    case IR_OP_NDTRI: return cg_math(L, "sj_ndtri", 1, &x);
    case IR_OP_ATAN: return cg_math(L, "atan", 1, &x);
    case IR_OP_TAN: return cg_math(L, "tan", 1, &x);
    case IR_OP_ABS: return cg_intrinsic(L, "llvm.fabs", x);
    case IR_OP_SIGN: {
        LLVMValueRef pos = LLVMBuildFCmp(b, LLVMRealOGT, x, zero, "");
        LLVMValueRef neg = LLVMBuildFCmp(b, LLVMRealOLT, x, zero, "");
        LLVMValueRef nan = LLVMBuildFCmp(b, LLVMRealUNO, x, x, "");
        LLVMValueRef s = LLVMBuildSelect(b, pos, one, LLVMBuildSelect(b, neg, cg_f64(L, -1.0), zero, ""), "");
        return LLVMBuildSelect(b, nan, x, s, "");
    }
    default: IR_ASSERT(0 && "not a unary op"); return NULL;
    }
}

static LLVMValueRef binary(cg_lower *L, ir_op op, LLVMValueRef a, LLVMValueRef c)
{
    LLVMBuilderRef b = L->b;
    switch (op) {
    case IR_OP_ADD: return LLVMBuildFAdd(b, a, c, "");
    case IR_OP_SUB: return LLVMBuildFSub(b, a, c, "");
    case IR_OP_MUL: return LLVMBuildFMul(b, a, c, "");
    case IR_OP_DIV: return LLVMBuildFDiv(b, a, c, "");
    case IR_OP_POW: {
        LLVMValueRef args[2] = {a, c};
        return cg_math(L, "pow", 2, args);
    }
    /* NaN propagates, as NumPy's minimum/maximum do. */
    case IR_OP_MIN:
    case IR_OP_MAX: {
        LLVMValueRef pick = LLVMBuildFCmp(b, op == IR_OP_MIN ? LLVMRealULT : LLVMRealUGT, a, c, "");
        LLVMValueRef r = LLVMBuildSelect(b, pick, a, c, "");
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, c, c, ""), c, r, "");
    }
    default: IR_ASSERT(0 && "not a binary op"); return NULL;
    }
}

static LLVMValueRef gen_unary(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    const ir_node *n = ir_node_at(L->g, v);
    return unary(L, n->op, n->attr[0], cg_read(L, n->input[0], idx));
}

static LLVMValueRef gen_binary(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    const ir_node *n = ir_node_at(L->g, v);
    LLVMValueRef a = cg_read(L, n->input[0], idx);
    return binary(L, n->op, a, cg_read(L, n->input[1], idx));
}

static LLVMValueRef gen_cmp(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    static const LLVMRealPredicate pred[] = {
        [SJ_LT] = LLVMRealOLT, [SJ_LE] = LLVMRealOLE, [SJ_GT] = LLVMRealOGT,
        [SJ_GE] = LLVMRealOGE, [SJ_EQ] = LLVMRealOEQ, [SJ_NE] = LLVMRealUNE};
    const ir_node *n = ir_node_at(L->g, v);
    LLVMValueRef a = cg_read(L, n->input[0], idx), c = cg_read(L, n->input[1], idx);
    LLVMValueRef t = LLVMBuildFCmp(L->b, pred[n->attr[0]], a, c, "");
    return LLVMBuildSelect(L->b, t, cg_f64(L, 1.0), cg_f64(L, 0.0), "");
}

static LLVMValueRef gen_select(cg_lower *L, ir_val v, LLVMValueRef *idx)
{
    const ir_node *n = ir_node_at(L->g, v);
    LLVMValueRef p = cg_read(L, n->input[0], idx);
    LLVMValueRef a = cg_read(L, n->input[1], idx), c = cg_read(L, n->input[2], idx);
    LLVMValueRef t = LLVMBuildFCmp(L->b, LLVMRealUNE, p, cg_f64(L, 0.0), "");
    return LLVMBuildSelect(L->b, t, a, c, "");
}

static int elementwise(ir_op op)
{
    ir_kind k = ir_op_kind(op);
    return k == IR_KIND_UNARY || k == IR_KIND_BINARY || k == IR_KIND_COMPARE ||
           k == IR_KIND_SELECT;
}

/* The expression under v is elementwise all the way to its buffers. */
static int flat_tree(cg_lower *L, ir_val v)
{
    const ir_node *n = ir_node_at(L->g, v);
    if (!elementwise(n->op))
        return 0;
    for (int i = 0; i < n->ninput; i++) {
        ir_val u = n->input[i];
        if (L->p->inl[u] && !flat_tree(L, u))
            return 0;
    }
    return 1;
}

/* Broadcast b (of the output's shape s) read in a loop split after axis k:
 * its operand is a buffer or a one-element constant, and it is one element
 * (read at 0), axes 0..k-1 of s (read with the outer counter) or axes
 * k..rank-1 (the inner counter), in order and without stretching. */
static int split_broadcast(cg_lower *L, ir_val b, int k)
{
    const ir_node *n = ir_node_at(L->g, b);
    ir_val x = n->input[0];
    const ir_shape *xs = ir_shape_of(L->g, x);
    const ir_node *xn = ir_node_at(L->g, x);
    size_t numel = ir_shape_numel(xs);
    if (L->p->inl[x] && !(xn->op == IR_OP_CONST && numel == 1))
        return 0;
    if (numel == 1)
        return 1;
    int r = n->shape.rank;
    for (int first = 0; first <= k; first += k) {
        int ok = xs->rank == (first ? r - k : k);
        for (int i = 0; ok && i < xs->rank; i++)
            ok = n->attr[i] == first + i && xs->dim[i] == n->shape.dim[first + i];
        if (ok)
            return 1;
    }
    return 0;
}

/* The expression under v is elementwise down to buffers of v's shape and
 * broadcasts split_broadcast accepts. */
static int split_tree(cg_lower *L, ir_val v, int k)
{
    const ir_node *n = ir_node_at(L->g, v);
    if (!elementwise(n->op))
        return 0;
    for (int i = 0; i < n->ninput; i++) {
        ir_val u = n->input[i];
        if (!L->p->inl[u])
            continue;
        const ir_node *un = ir_node_at(L->g, u);
        if (un->op == IR_OP_BROADCAST ? !split_broadcast(L, u, k) : !split_tree(L, u, k))
            return 0;
    }
    return 1;
}

/* Called by broadcast's gen inside a split loop. */
LLVMValueRef cg_split_read(cg_lower *L, ir_val b)
{
    const ir_node *n = ir_node_at(L->g, b);
    ir_val x = n->input[0];
    const ir_shape *xs = ir_shape_of(L->g, x);
    const ir_node *xn = ir_node_at(L->g, x);
    if (xn->op == IR_OP_CONST && ir_shape_numel(xs) == 1)
        return cg_f64(L, xn->data[0]);
    LLVMValueRef off = ir_shape_numel(xs) == 1 ? cg_i64(L, 0)
                       : xs->rank && n->attr[0] == 0 ? L->split_outer
                                                     : L->split_inner;
    return cg_load(L, L->base[x], off);
}

sj_status cg_emit_generated(cg_lower *L, ir_val v)
{
    const ir_node *n = ir_node_at(L->g, v);
    cg_gen_fn *gen = cg_rule_of(n->op)->gen;
    LLVMValueRef idx[IR_MAX_RANK];
    int split = 0;
    for (int k = 1; k < n->shape.rank && !split && elementwise(n->op); k++)
        if (split_tree(L, v, k))
            split = k;
    if (split && n->shape.rank > 1 && !flat_tree(L, v)) {
        int64_t outer = 1, inner = 1;
        for (int d = 0; d < n->shape.rank; d++)
            *(d < split ? &outer : &inner) *= n->shape.dim[d];
        cg_loop lo, li;
        cg_loop_begin(L, &lo, cg_i64(L, outer));
        LLVMValueRef at = LLVMBuildNUWMul(L->b, lo.i, cg_i64(L, inner), "");
        cg_loop_begin(L, &li, cg_i64(L, inner));
        L->flat = LLVMBuildNUWAdd(L->b, at, li.i, "");
        L->split_outer = lo.i;
        L->split_inner = li.i;
        cg_store(L, L->base[v], L->flat, gen(L, v, idx));
        L->flat = L->split_outer = L->split_inner = NULL;
        cg_loop_end(L, &li);
        cg_loop_end(L, &lo);
    } else if (n->shape.rank > 1 && flat_tree(L, v)) {
        cg_loop lp;
        cg_loop_begin(L, &lp, cg_i64(L, (int64_t)ir_shape_numel(&n->shape)));
        L->flat = lp.i;
        cg_store(L, L->base[v], lp.i, gen(L, v, idx));
        L->flat = NULL;
        cg_loop_end(L, &lp);
    } else {
        cg_nest nest;
        cg_nest_begin(L, &nest, n->shape.rank, n->shape.dim, idx);
        cg_store(L, L->base[v], cg_offset(L, &n->shape, idx), gen(L, v, idx));
        cg_nest_end(L, &nest);
    }
    L->stats.nloop++;
    return SJ_OK;
}

#define UNARY_RULE(name) \
    const cg_rule cg_rule_##name = {gen_unary, cg_emit_generated, CG_ALL_INPUTS, 0, NULL};
UNARY_RULE(neg)
UNARY_RULE(exp)
UNARY_RULE(log)
UNARY_RULE(log1p)
UNARY_RULE(expm1)
UNARY_RULE(sqrt)
UNARY_RULE(square)
UNARY_RULE(recip)
UNARY_RULE(tanh)
UNARY_RULE(logistic)
UNARY_RULE(lgamma)
UNARY_RULE(digamma)
UNARY_RULE(polygamma)
UNARY_RULE(abs)
UNARY_RULE(sign)
UNARY_RULE(ndtr)
UNARY_RULE(ndtri)
UNARY_RULE(atan)
UNARY_RULE(tan)

#define BINARY_RULE(name) \
    const cg_rule cg_rule_##name = {gen_binary, cg_emit_generated, CG_ALL_INPUTS, 0, NULL};
BINARY_RULE(add)
BINARY_RULE(sub)
BINARY_RULE(mul)
BINARY_RULE(div)
BINARY_RULE(pow)
BINARY_RULE(min)
BINARY_RULE(max)

const cg_rule cg_rule_cmp = {gen_cmp, cg_emit_generated, CG_ALL_INPUTS, 0, NULL};
const cg_rule cg_rule_select = {gen_select, cg_emit_generated, CG_ALL_INPUTS, 0, NULL};
