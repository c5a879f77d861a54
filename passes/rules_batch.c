/* Batching rules of the sources, elementwise ops, data movement, indexing
 * and reductions, and the emitters every batching rule shares.  Inside the
 * batched graph a batched value has its batch axis first ([nb] ++ shape), so
 * most rules only shift axis numbers by one.
 *
 * Kind defaults: every elementwise op shares one rule (broadcast the
 * unbatched operands to the batched shape, apply the op), every reduction
 * one (shift the axis mask); the macros below expand them from ir/ops.def,
 * so a new op of those kinds is batched the day it is added.
 *
 * Indexing with batched integer codes flattens the batch into the indexed
 * axis: batch item b's codes are offset by b·(axis length), so one gather
 * or segment_sum serves every item.  A code that was out of range stays out
 * of range after the offset (it is pushed below 0 or past the flattened
 * length), so the domain error of the unbatched function is kept; its
 * message then shows the offset code. */
#include <string.h>

#include "ir/alloc.h"
#include "passes/batch.h"

/* ---- emitters ---------------------------------------------------------------------- */

static ir_shape shape_of(const ir_graph *g, ir_val v) { return *ir_shape_of(g, v); }

/* [nb] ++ s. */
static ir_shape with_batch(const ir_shape *s, int64_t nb)
{
    ir_shape t = {.rank = s->rank + 1, .dim = {nb}};
    for (int i = 0; i < s->rank && i + 1 < IR_MAX_RANK; i++)
        t.dim[i + 1] = s->dim[i];
    return t;
}

static ir_val reshape(ir_graph *g, ir_val x, const ir_shape *s)
{
    if (x == IR_NONE)
        return IR_NONE;
    if (ir_shape_equal(ir_shape_of(g, x), s))
        return x;
    return ir_add_node(g, IR_OP_RESHAPE, 1, &x, NULL, 0, s, NULL);
}

static ir_val transpose(ir_graph *g, ir_val x, const int64_t *perm)
{
    if (x == IR_NONE)
        return IR_NONE;
    int r = ir_shape_of(g, x)->rank, identity = 1;
    for (int i = 0; i < r; i++)
        identity &= perm[i] == i;
    return identity ? x : ir_add_node(g, IR_OP_TRANSPOSE, 1, &x, perm, r, NULL, NULL);
}

static ir_val fill(ir_graph *g, double c, const ir_shape *s)
{
    return ir_broadcast_trailing(g, ir_scalar(g, c), s);
}

ir_val bat_expand(ir_graph *g, ir_val x, int64_t nb) { return bat_insert_axis(g, x, 0, nb); }

ir_val bat_operand(ir_graph *g, const ir_val *in, const int *bat, int i, int64_t nb)
{
    return bat[i] ? in[i] : bat_expand(g, in[i], nb);
}

ir_val bat_insert_axis(ir_graph *g, ir_val x, int at, int64_t nb)
{
    if (x == IR_NONE)
        return IR_NONE;
    ir_shape s = shape_of(g, x), t = {.rank = s.rank + 1};
    if (t.rank > IR_MAX_RANK || at < 0 || at > s.rank) {
        ir_fail(&g->err, SJ_ERR_SHAPE, "cannot add a batch axis at %d to a value of rank %d", at,
                s.rank);
        return IR_NONE;
    }
    int64_t map[IR_MAX_RANK];
    for (int i = 0, k = 0; i < t.rank; i++) {
        if (i == at) {
            t.dim[i] = nb;
            continue;
        }
        t.dim[i] = s.dim[k];
        map[k++] = i;
    }
    return ir_add_node(g, IR_OP_BROADCAST, 1, &x, map, s.rank, &t, NULL);
}

ir_val bat_moveaxis(ir_graph *g, ir_val x, int from, int to)
{
    if (x == IR_NONE || from == to)
        return x;
    int r = ir_shape_of(g, x)->rank;
    int64_t perm[IR_NATTR];
    for (int i = 0, k = 0; i < r; i++) {
        if (i == to) {
            perm[i] = from;
            continue;
        }
        if (k == from)
            k++;
        perm[i] = k++;
    }
    return transpose(g, x, perm);
}

/* ---- kind defaults ----------------------------------------------------------------- */

/* Sources have no inputs, so the walker never calls their rule. */
static ir_val never(ir_graph *g, const ir_node *n)
{
    ir_fail(&g->err, SJ_ERR_INTERNAL, "%s has no inputs to batch", ir_op_name(n->op));
    return IR_NONE;
}

/* Every operand batched (the unbatched broadcast along the batch axis), then
 * the op itself: the output has the operands' shape. */
static ir_val elementwise(ir_graph *g, const ir_node *n, const ir_val *in, const int *bat,
                          int64_t nb)
{
    ir_val x[4];
    for (int i = 0; i < n->ninput && i < 4; i++)
        x[i] = bat_operand(g, in, bat, i, nb);
    return ir_add_node(g, n->op, n->ninput, x, n->attr, IR_NATTR, NULL, NULL);
}

/* The reduced axes move one up. */
static ir_val reduction(ir_graph *g, const ir_node *n, const ir_val *in, int64_t nb)
{
    int64_t mask = n->attr[0] << 1;
    return ir_add_node(g, n->op, 1, in, &mask, 1, NULL, NULL);
}

#define RULE(name)                                                                         \
    ir_val bat_##name(ir_graph *g, const ir_node *n, const ir_val *in, const int *bat,     \
                      int64_t nb)
#define BAT_SOURCE(name) RULE(name) { return never(g, n); }
#define BAT_UNARY(name) RULE(name) { return elementwise(g, n, in, bat, nb); }
#define BAT_BINARY(name) BAT_UNARY(name)
#define BAT_COMPARE(name) BAT_UNARY(name)
#define BAT_SELECT(name) BAT_UNARY(name)
#define BAT_REDUCE(name) RULE(name) { return reduction(g, n, in, nb); }
/* Written by hand below (data movement, indexing) or in rules_batch_linalg.c. */
#define BAT_SHAPE(name)
#define BAT_INDEX(name)
#define BAT_LINALG(name)
#define BAT_FIT(name) /* rules_fit.c */
#define OP(id, name, kind, arity, shape) BAT_##kind(name)
#include "ir/ops.def"

/* ---- data movement ------------------------------------------------------------------ */

/* Input axis i goes to output axis attr[i] + 1; the batch axis stays first. */
RULE(broadcast)
{
    ir_shape t = with_batch(&n->shape, nb);
    int rx = ir_shape_of(g, in[0])->rank - 1;
    int64_t map[IR_NATTR] = {0};
    for (int i = 0; i < rx; i++)
        map[i + 1] = n->attr[i] + 1;
    return ir_add_node(g, IR_OP_BROADCAST, 1, in, map, rx + 1, &t, NULL);
}

/* Row-major: a leading axis is untouched by reshaping the rest. */
RULE(reshape)
{
    ir_shape t = with_batch(&n->shape, nb);
    return ir_add_node(g, IR_OP_RESHAPE, 1, in, NULL, 0, &t, NULL);
}

RULE(transpose)
{
    int64_t perm[IR_NATTR] = {0};
    for (int i = 0; i < n->shape.rank; i++)
        perm[i + 1] = n->attr[i] + 1;
    return transpose(g, in[0], perm);
}

RULE(slice)
{
    int64_t attr[3] = {n->attr[0] + 1, n->attr[1], n->attr[2]};
    return ir_add_node(g, IR_OP_SLICE, 1, in, attr, 3, NULL, NULL);
}

RULE(concat)
{
    ir_val *x = ir_arena_alloc(&g->arena, (size_t)n->ninput * sizeof *x);
    if (!x) {
        ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "out of memory batching concat");
        return IR_NONE;
    }
    for (int i = 0; i < n->ninput; i++)
        x[i] = bat_operand(g, in, bat, i, nb);
    int64_t axis = n->attr[0] + 1;
    return ir_add_node(g, IR_OP_CONCAT, n->ninput, x, &axis, 1, NULL, NULL);
}

/* ---- indexing ------------------------------------------------------------------------- */

/* Batched codes idx [nb, m] into one axis of nb blocks of `limit` rows: code
 * c of item b becomes c + b·limit when 0 <= c < limit; a code above the range
 * gains nb·limit and one below it loses nb·limit, so it stays out of range
 * (and a non-integer stays a non-integer). */
static ir_val offset_codes(ir_graph *g, ir_val idx, int64_t limit, int64_t nb)
{
    if (idx == IR_NONE)
        return IR_NONE;
    ir_shape s = shape_of(g, idx), bs = {.rank = 1, .dim = {nb}};
    double *off = ir_arena_alloc(&g->arena, (size_t)(nb ? nb : 1) * sizeof *off);
    if (!off) {
        ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "out of memory for batched codes");
        return IR_NONE;
    }
    for (int64_t b = 0; b < nb; b++)
        off[b] = (double)b * (double)limit;
    ir_val c = ir_add_node(g, IR_OP_CONST, 0, NULL, NULL, 0, &bs, off);
    int64_t map0 = 0;
    c = ir_add_node(g, IR_OP_BROADCAST, 1, &c, &map0, 1, &s, NULL);
    int64_t ge = SJ_GE, lt = SJ_LT;
    ir_val hi_in[2] = {idx, fill(g, (double)limit, &s)}, lo_in[2] = {idx, fill(g, 0.0, &s)};
    ir_val hi = ir_add_node(g, IR_OP_CMP, 2, hi_in, &ge, 1, NULL, NULL);
    ir_val lo = ir_add_node(g, IR_OP_CMP, 2, lo_in, &lt, 1, NULL, NULL);
    ir_val shift = ir_binary(g, IR_OP_MUL, ir_binary(g, IR_OP_SUB, hi, lo),
                             fill(g, (double)nb * (double)limit, &s));
    return ir_binary(g, IR_OP_ADD, ir_binary(g, IR_OP_ADD, idx, c), shift);
}

/* [nb, m, ...] -> [nb·m, ...]. */
static ir_val merge_leading(ir_graph *g, ir_val x)
{
    if (x == IR_NONE)
        return IR_NONE;
    ir_shape s = shape_of(g, x), t = {.rank = s.rank - 1};
    t.dim[0] = s.dim[0] * s.dim[1];
    for (int i = 2; i < s.rank; i++)
        t.dim[i - 1] = s.dim[i];
    return reshape(g, x, &t);
}
/* out[b, i, ...] = x[b, idx[b, i], ...]. */
RULE(gather)
{
    ir_val x = in[0], idx = in[1];
    if (!bat[1]) { /* rows of every item at once: gather along axis 1 */
        ir_val pair[2] = {bat_moveaxis(g, x, 0, 1), idx};
        return bat_moveaxis(g, ir_add_node(g, IR_OP_GATHER, 2, pair, NULL, 0, NULL, NULL), 1, 0);
    }
    int64_t m = n->shape.dim[0];
    ir_val codes;
    if (!bat[0]) {
        codes = merge_leading(g, idx);
    } else {
        int64_t rows = ir_shape_of(g, x)->dim[1];
        x = merge_leading(g, x);
        codes = merge_leading(g, offset_codes(g, idx, rows, nb));
    }
    ir_val pair[2] = {x, codes};
    ir_val r = ir_add_node(g, IR_OP_GATHER, 2, pair, NULL, 0, NULL, NULL);
    ir_shape t = with_batch(&n->shape, nb);
    t.dim[1] = m;
    return reshape(g, r, &t);
}

/* out[b, k, ...] = Σ_{i: idx[b, i] = k} x[b, i, ...]. */
RULE(segment_sum)
{
    int64_t nseg = n->shape.dim[0];
    if (!bat[1]) { /* one segment_sum along axis 1 */
        ir_val pair[2] = {bat_moveaxis(g, in[0], 0, 1), in[1]};
        ir_shape t = shape_of(g, pair[0]);
        t.dim[0] = nseg;
        return bat_moveaxis(g, ir_add_node(g, IR_OP_SEGSUM, 2, pair, NULL, 0, &t, NULL), 1, 0);
    }
    ir_val x = merge_leading(g, bat_operand(g, in, bat, 0, nb));
    ir_val pair[2] = {x, merge_leading(g, offset_codes(g, in[1], nseg, nb))};
    if (x == IR_NONE || pair[1] == IR_NONE)
        return IR_NONE;
    ir_shape t = shape_of(g, x);
    t.dim[0] = nb * nseg;
    ir_val r = ir_add_node(g, IR_OP_SEGSUM, 2, pair, NULL, 0, &t, NULL);
    ir_shape u = with_batch(&n->shape, nb);
    return reshape(g, r, &u);
}

/* The codes of every item in one vector. */
RULE(one_hot)
{
    ir_val codes = merge_leading(g, in[0]);
    if (codes == IR_NONE)
        return IR_NONE;
    ir_shape t = {.rank = 2, .dim = {ir_shape_of(g, codes)->dim[0], n->shape.dim[1]}};
    ir_val r = ir_add_node(g, IR_OP_ONE_HOT, 1, &codes, NULL, 0, &t, NULL);
    ir_shape u = with_batch(&n->shape, nb);
    return reshape(g, r, &u);
}
