/* Shape rules, one per row of ir/ops.def.  The same rules run at build time
 * (symbolic dimensions: only certain conflicts are errors) and at
 * specialisation (sizes only: every mismatch is an error). */
#include "ir/shape.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir/graph.h"

int ir_shape_is_concrete(const ir_shape *s)
{
    for (int i = 0; i < s->rank; i++)
        if (!IR_DIM_IS_SIZE(s->dim[i]))
            return 0;
    return 1;
}

int ir_shape_equal(const ir_shape *a, const ir_shape *b)
{
    if (a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i])
            return 0;
    return 1;
}

/* Largest element count we accept: bytes must fit comfortably in size_t. */
#define MAX_NUMEL ((uint64_t)1 << 58)

int ir_shape_numel_overflows(const ir_shape *s)
{
    uint64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        uint64_t d = IR_DIM_IS_SIZE(s->dim[i]) ? (uint64_t)s->dim[i] : 0;
        if (d && n > MAX_NUMEL / d)
            return 1;
        n *= d;
    }
    return 0;
}

size_t ir_shape_numel(const ir_shape *s)
{
    if (ir_shape_numel_overflows(s))
        return 0;
    size_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= IR_DIM_IS_SIZE(s->dim[i]) ? (size_t)s->dim[i] : 0;
    return n;
}

const char *ir_shape_str(const ir_graph *g, const ir_shape *s, char *buf, size_t size)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->rank && used < size; i++) {
        const char *sep = i ? ", " : "";
        int64_t d = s->dim[i];
        if (IR_DIM_IS_SIZE(d))
            used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, sep, d);
        else if (IR_DIM_IS_SYM(d) && g && IR_DIM_SYM_INDEX(d) < (int)g->nsym)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", sep,
                                     g->sym[IR_DIM_SYM_INDEX(d)]);
        else
            used += (size_t)snprintf(buf + used, size - used, "%s?", sep);
    }
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

int ir_dim_conflict(int64_t a, int64_t b)
{
    return IR_DIM_IS_SIZE(a) && IR_DIM_IS_SIZE(b) && a != b;
}

int64_t ir_dim_merge(int64_t a, int64_t b)
{
    if (IR_DIM_IS_SIZE(a))
        return a;
    if (IR_DIM_IS_SIZE(b))
        return b;
    return IR_DIM_IS_SYM(a) ? a : b;
}

static int64_t dim_product(int64_t a, int64_t b)
{
    if (!IR_DIM_IS_SIZE(a) || !IR_DIM_IS_SIZE(b))
        return IR_DIM_ANY;
    if (a && b > INT64_MAX / a)
        return INT64_MAX;
    return a * b;
}

/* Everything a rule needs to read its inputs and word its errors. */
typedef struct rule_ctx {
    const ir_graph *g;
    const ir_node *n;
    int64_t value;
    const ir_shape *in[4]; /* first inputs; concat reads the graph */
    ir_err *err;
} rule_ctx;

typedef int shape_rule(rule_ctx *c, ir_shape *out);

__attribute__((format(printf, 2, 3)))
static int fail(rule_ctx *c, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ir_fail(c->err, SJ_ERR_SHAPE, "%s (value %%%" PRId64 "): %s",
            ir_op_name(c->n->op), c->value, msg);
    return -1;
}

#define SHAPE_STR(c, s, buf) ir_shape_str((c)->g, (s), (buf), sizeof(buf))

static int need_rank(rule_ctx *c, int i, int min, const char *what)
{
    if (c->in[i]->rank < min) {
        char a[128];
        return fail(c, "%s must have rank >= %d, got %s", what, min,
                    SHAPE_STR(c, c->in[i], a));
    }
    return 0;
}

/* The batch (leading) axes of inputs i and j agree; both have rank r. */
static int same_batch(rule_ctx *c, int i, int j, int keep)
{
    const ir_shape *a = c->in[i], *b = c->in[j];
    char sa[128], sb[128];
    if (a->rank != b->rank)
        return fail(c, "operands must have the same rank (batch axes are not broadcast), "
                       "got %s and %s", SHAPE_STR(c, a, sa), SHAPE_STR(c, b, sb));
    for (int k = 0; k < a->rank - keep; k++)
        if (ir_dim_conflict(a->dim[k], b->dim[k]))
            return fail(c, "batch axis %d differs: %s and %s", k,
                        SHAPE_STR(c, a, sa), SHAPE_STR(c, b, sb));
    return 0;
}

static int need_square(rule_ctx *c, int i, const char *what)
{
    const ir_shape *s = c->in[i];
    if (need_rank(c, i, 2, what))
        return -1;
    if (ir_dim_conflict(s->dim[s->rank - 1], s->dim[s->rank - 2])) {
        char a[128];
        return fail(c, "%s must be square, got %s", what, SHAPE_STR(c, s, a));
    }
    return 0;
}

static int shape_declared(rule_ctx *c, ir_shape *out)
{
    *out = c->n->shape;
    if (c->n->op == IR_OP_EYE && (out->rank != 2 || ir_dim_conflict(out->dim[0], out->dim[1])))
        return fail(c, "identity must be a square matrix");
    if (c->n->op == IR_OP_CONST && !ir_shape_is_concrete(out))
        return fail(c, "a constant needs a concrete shape");
    return 0;
}

static int shape_same(rule_ctx *c, ir_shape *out)
{
    *out = *c->in[0];
    for (int i = 1; i < c->n->ninput; i++) {
        const ir_shape *s = c->in[i];
        int bad = s->rank != out->rank;
        for (int k = 0; !bad && k < s->rank; k++)
            bad = ir_dim_conflict(s->dim[k], out->dim[k]);
        if (bad) {
            char a[128], b[128];
            return fail(c, "operands must have one shape (broadcast explicitly), got %s and %s",
                        SHAPE_STR(c, c->in[0], a), SHAPE_STR(c, s, b));
        }
        for (int k = 0; k < s->rank; k++)
            out->dim[k] = ir_dim_merge(out->dim[k], s->dim[k]);
    }
    if (c->n->op == IR_OP_POLYGAMMA && c->n->attr[0] < 1)
        return fail(c, "order must be >= 1, got %" PRId64, c->n->attr[0]);
    if (c->n->op == IR_OP_CMP && (c->n->attr[0] < SJ_LT || c->n->attr[0] > SJ_NE))
        return fail(c, "unknown comparison %" PRId64, c->n->attr[0]);
    return 0;
}

static int shape_broadcast(rule_ctx *c, ir_shape *out)
{
    const ir_shape *x = c->in[0];
    *out = c->n->shape;
    char a[128], b[128];
    if (x->rank > out->rank)
        return fail(c, "cannot broadcast %s to the lower rank of %s",
                    SHAPE_STR(c, x, a), SHAPE_STR(c, out, b));
    for (int i = 0; i < x->rank; i++) {
        int64_t to = c->n->attr[i];
        if (to < 0 || to >= out->rank || (i && to <= c->n->attr[i - 1]))
            return fail(c, "axis map must increase within the output rank %d", out->rank);
        int64_t d = x->dim[i];
        if (d != 1 && ir_dim_conflict(d, out->dim[to]))
            return fail(c, "cannot broadcast %s to %s: axis %d has size %" PRId64,
                        SHAPE_STR(c, x, a), SHAPE_STR(c, out, b), i, d);
    }
    return 0;
}

static int shape_reshape(rule_ctx *c, ir_shape *out)
{
    *out = c->n->shape;
    const ir_shape *x = c->in[0];
    if (ir_shape_is_concrete(x) && ir_shape_is_concrete(out) &&
        (ir_shape_numel(x) != ir_shape_numel(out) || ir_shape_numel_overflows(out))) {
        char a[128], b[128];
        return fail(c, "cannot reshape %s into %s: element counts differ",
                    SHAPE_STR(c, x, a), SHAPE_STR(c, out, b));
    }
    return 0;
}

static int shape_transpose(rule_ctx *c, ir_shape *out)
{
    const ir_shape *x = c->in[0];
    unsigned seen = 0;
    out->rank = x->rank;
    for (int i = 0; i < x->rank; i++) {
        int64_t p = c->n->attr[i];
        if (p < 0 || p >= x->rank || (seen & (1u << p))) {
            char a[128], pl[128];
            size_t used = 0;
            pl[0] = '\0';
            for (int k = 0; k < x->rank && used < sizeof pl; k++)
                used += (size_t)snprintf(pl + used, sizeof pl - used, "%s%" PRId64,
                                         k ? "," : "", c->n->attr[k]);
            return fail(c, "perm (%s) is not a permutation of the %d axes of %s", pl, x->rank,
                        SHAPE_STR(c, x, a));
        }
        seen |= 1u << p;
        out->dim[i] = x->dim[p];
    }
    return 0;
}

static int shape_slice(rule_ctx *c, ir_shape *out)
{
    const ir_shape *x = c->in[0];
    int64_t axis = c->n->attr[0], start = c->n->attr[1], stop = c->n->attr[2];
    if (axis < 0 || axis >= x->rank)
        return fail(c, "axis %" PRId64 " is out of range for rank %d", axis, x->rank);
    *out = *x;
    int64_t d = x->dim[axis];
    if (!IR_DIM_IS_SIZE(d)) {
        int from_start = start >= 0 && stop >= 0 && stop != INT64_MAX;
        out->dim[axis] = from_start && stop >= start ? stop - start : IR_DIM_ANY;
        return 0;
    }
    if (start < 0)
        start += d;
    if (stop == INT64_MAX)
        stop = d;
    else if (stop < 0)
        stop += d;
    if (start < 0 || stop > d || start > stop)
        return fail(c, "slice [%" PRId64 ":%" PRId64 "] is out of range for axis %" PRId64
                       " of size %" PRId64, c->n->attr[1], c->n->attr[2], axis, d);
    out->dim[axis] = stop - start;
    return 0;
}

static int shape_concat(rule_ctx *c, ir_shape *out)
{
    int64_t axis = c->n->attr[0];
    if (c->n->ninput < 1)
        return fail(c, "needs at least one operand");
    *out = *ir_shape_of(c->g, c->n->input[0]);
    if (axis < 0 || axis >= out->rank)
        return fail(c, "axis %" PRId64 " is out of range for rank %d", axis, out->rank);
    for (int i = 1; i < c->n->ninput; i++) {
        const ir_shape *s = ir_shape_of(c->g, c->n->input[i]);
        int bad = s->rank != out->rank;
        for (int k = 0; !bad && k < s->rank; k++)
            bad = k != axis && ir_dim_conflict(s->dim[k], out->dim[k]);
        if (bad) {
            char a[128], b[128];
            return fail(c, "operand %d has shape %s, which does not fit %s outside axis %" PRId64,
                        i, SHAPE_STR(c, s, a), SHAPE_STR(c, ir_shape_of(c->g, c->n->input[0]), b),
                        axis);
        }
        for (int k = 0; k < s->rank; k++)
            out->dim[k] = k == axis ? (IR_DIM_IS_SIZE(out->dim[k]) && IR_DIM_IS_SIZE(s->dim[k])
                                           ? out->dim[k] + s->dim[k] : IR_DIM_ANY)
                                    : ir_dim_merge(out->dim[k], s->dim[k]);
    }
    return 0;
}

static int need_index_vector(rule_ctx *c, int i)
{
    if (c->in[i]->rank != 1) {
        char a[128];
        return fail(c, "index must be a vector, got %s", SHAPE_STR(c, c->in[i], a));
    }
    return 0;
}

static int shape_gather(rule_ctx *c, ir_shape *out)
{
    if (need_rank(c, 0, 1, "x") || need_index_vector(c, 1))
        return -1;
    *out = *c->in[0];
    out->dim[0] = c->in[1]->dim[0];
    return 0;
}

static int shape_segment_sum(rule_ctx *c, ir_shape *out)
{
    if (need_rank(c, 0, 1, "x") || need_index_vector(c, 1))
        return -1;
    if (ir_dim_conflict(c->in[0]->dim[0], c->in[1]->dim[0])) {
        char a[128], b[128];
        return fail(c, "x %s and index %s differ in length", SHAPE_STR(c, c->in[0], a),
                    SHAPE_STR(c, c->in[1], b));
    }
    int64_t nseg = c->n->shape.dim[0];
    *out = *c->in[0];
    out->dim[0] = nseg;
    return 0;
}

static int shape_one_hot(rule_ctx *c, ir_shape *out)
{
    if (need_index_vector(c, 0))
        return -1;
    int64_t nclass = c->n->shape.dim[1];
    out->rank = 2;
    out->dim[0] = c->in[0]->dim[0];
    out->dim[1] = nclass;
    return 0;
}

static int shape_reduce(rule_ctx *c, ir_shape *out)
{
    const ir_shape *x = c->in[0];
    int64_t mask = c->n->attr[0];
    if (mask < 0 || (x->rank < 63 && (mask >> x->rank) != 0))
        return fail(c, "reduced axes (mask 0x%" PRIx64 ") are out of range for rank %d",
                    mask, x->rank);
    out->rank = 0;
    for (int i = 0; i < x->rank; i++)
        if (!(mask & ((int64_t)1 << i)))
            out->dim[out->rank++] = x->dim[i];
    return 0;
}

static int shape_matmul(rule_ctx *c, ir_shape *out)
{
    if (need_rank(c, 0, 2, "a") || need_rank(c, 1, 2, "b") || same_batch(c, 0, 1, 2))
        return -1;
    const ir_shape *a = c->in[0], *b = c->in[1];
    int r = a->rank;
    int ta = c->n->attr[0] != 0, tb = c->n->attr[1] != 0;
    int64_t m = a->dim[r - 2 + ta], ka = a->dim[r - 1 - ta];
    int64_t kb = b->dim[r - 2 + tb], n = b->dim[r - 1 - tb];
    if (ir_dim_conflict(ka, kb)) {
        char sa[128], sb[128];
        return fail(c, "inner dimensions differ: a%s is %s and b%s is %s", ta ? "ᵀ" : "",
                    SHAPE_STR(c, a, sa), tb ? "ᵀ" : "", SHAPE_STR(c, b, sb));
    }
    *out = *a;
    for (int k = 0; k < r - 2; k++)
        out->dim[k] = ir_dim_merge(a->dim[k], b->dim[k]);
    out->dim[r - 2] = m;
    out->dim[r - 1] = n;
    return 0;
}

static int shape_outer(rule_ctx *c, ir_shape *out)
{
    if (need_rank(c, 0, 1, "a") || need_rank(c, 1, 1, "b") || same_batch(c, 0, 1, 1))
        return -1;
    const ir_shape *a = c->in[0], *b = c->in[1];
    if (a->rank >= IR_MAX_RANK) {
        char sa[128], sb[128];
        return fail(c, "result of %s and %s would have more than %d axes", SHAPE_STR(c, a, sa),
                    SHAPE_STR(c, b, sb), IR_MAX_RANK);
    }
    *out = *a;
    out->rank = a->rank + 1;
    out->dim[a->rank] = b->dim[b->rank - 1];
    return 0;
}

static int shape_kron(rule_ctx *c, ir_shape *out)
{
    if (need_rank(c, 0, 2, "a") || need_rank(c, 1, 2, "b") || same_batch(c, 0, 1, 2))
        return -1;
    const ir_shape *a = c->in[0], *b = c->in[1];
    int r = a->rank;
    *out = *a;
    out->dim[r - 2] = dim_product(a->dim[r - 2], b->dim[r - 2]);
    out->dim[r - 1] = dim_product(a->dim[r - 1], b->dim[r - 1]);
    return 0;
}

static int shape_diag(rule_ctx *c, ir_shape *out)
{
    if (need_square(c, 0, "x"))
        return -1;
    *out = *c->in[0];
    out->rank--;
    out->dim[out->rank - 1] = ir_dim_merge(c->in[0]->dim[out->rank - 1], c->in[0]->dim[out->rank]);
    return 0;
}

static int shape_diag_embed(rule_ctx *c, ir_shape *out)
{
    if (need_rank(c, 0, 1, "v"))
        return -1;
    if (c->in[0]->rank >= IR_MAX_RANK) {
        char a[128];
        return fail(c, "result for %s would have more than %d axes", SHAPE_STR(c, c->in[0], a),
                    IR_MAX_RANK);
    }
    *out = *c->in[0];
    out->dim[out->rank] = out->dim[out->rank - 1];
    out->rank++;
    return 0;
}

static int shape_matrix_same(rule_ctx *c, ir_shape *out)
{
    if (need_rank(c, 0, 2, "x"))
        return -1;
    *out = *c->in[0];
    return 0;
}

static int shape_square_same(rule_ctx *c, ir_shape *out)
{
    if (need_square(c, 0, "a"))
        return -1;
    *out = *c->in[0];
    return 0;
}

static int shape_trisolve(rule_ctx *c, ir_shape *out)
{
    if (c->n->attr[0] & ~(int64_t)(SJ_SOLVE_RIGHT | SJ_SOLVE_UPPER | SJ_SOLVE_TRANSPOSE))
        return fail(c, "unknown flags 0x%" PRIx64, c->n->attr[0]);
    if (need_square(c, 0, "a") || need_rank(c, 1, 2, "b") || same_batch(c, 0, 1, 2))
        return -1;
    const ir_shape *a = c->in[0], *b = c->in[1];
    int r = a->rank, right = (c->n->attr[0] & SJ_SOLVE_RIGHT) != 0;
    int64_t nb = right ? b->dim[r - 1] : b->dim[r - 2];
    if (ir_dim_conflict(a->dim[r - 1], nb)) {
        char sa[128], sb[128];
        return fail(c, "a %s does not fit b %s (solving from the %s)", SHAPE_STR(c, a, sa),
                    SHAPE_STR(c, b, sb), right ? "right" : "left");
    }
    *out = *b;
    return 0;
}

static int shape_solve(rule_ctx *c, ir_shape *out)
{
    if (need_square(c, 0, "a") || need_rank(c, 1, 2, "b") || same_batch(c, 0, 1, 2))
        return -1;
    const ir_shape *a = c->in[0], *b = c->in[1];
    int r = a->rank;
    if (ir_dim_conflict(a->dim[r - 1], b->dim[r - 2])) {
        char sa[128], sb[128];
        return fail(c, "a %s does not fit b %s", SHAPE_STR(c, a, sa), SHAPE_STR(c, b, sb));
    }
    *out = *b;
    return 0;
}

static int shape_logdet(rule_ctx *c, ir_shape *out)
{
    if (need_square(c, 0, "a"))
        return -1;
    *out = *c->in[0];
    out->rank -= 2;
    return 0;
}

/* fit: theta0 [k] (batched: [B, k]) -> [k + 2] ([B, k + 2]), with the
 * previous iterate (attr3) [2k + 2]; batched data
 * inputs have the batch axis B first.  The data against the problem's
 * sub-graphs is checked by ir_fit_check (verifier, specialisation). */
static int shape_fit(rule_ctx *c, ir_shape *out)
{
    char sa[128], sb[128];
    if (c->n->ninput < 1)
        return fail(c, "needs theta0");
    int batched = c->n->attr[1] != 0, previous = c->n->attr[3] != 0;
    if (c->n->attr[3] != 0 && c->n->attr[3] != 1)
        return fail(c, "the previous-iterate flag is %" PRId64 ", not 0 or 1", c->n->attr[3]);
    const ir_shape *t = ir_shape_of(c->g, c->n->input[0]);
    if (t->rank != 1 + batched)
        return fail(c, "theta0 must have rank %d, got %s", 1 + batched, SHAPE_STR(c, t, sa));
    if (batched) {
        if (c->n->attr[2] < 0 || c->n->ninput - 1 > 62 ||
            (c->n->ninput - 1 < 62 && (c->n->attr[2] >> (c->n->ninput - 1)) != 0))
            return fail(c, "batched-data mask 0x%" PRIx64 " does not fit %d data inputs",
                        c->n->attr[2], c->n->ninput - 1);
        for (int j = 0; j + 1 < c->n->ninput; j++) {
            if (!((c->n->attr[2] >> j) & 1))
                continue;
            const ir_shape *d = ir_shape_of(c->g, c->n->input[j + 1]);
            if (d->rank < 1 || ir_dim_conflict(d->dim[0], t->dim[0]))
                return fail(c, "batched data input %d %s does not have theta0's batch axis %s",
                            j + 1, SHAPE_STR(c, d, sa), SHAPE_STR(c, t, sb));
        }
    }
    *out = *t;
    int64_t k = t->dim[t->rank - 1];
    out->dim[t->rank - 1] = IR_DIM_IS_SIZE(k) ? (previous ? 2 * k : k) + 2 : IR_DIM_ANY;
    return 0;
}

static shape_rule *const rules[IR_NOP] = {
#define OP(id, name, kind, arity, shape) [IR_OP_##id] = shape,
#include "ir/ops.def"
};

int ir_infer_shape(const ir_graph *g, const ir_node *n, int64_t value, ir_shape *out,
                   ir_err *err)
{
    rule_ctx c = {.g = g, .n = n, .value = value, .err = err};
    for (int i = 0; i < n->ninput && i < 4; i++)
        c.in[i] = ir_shape_of(g, n->input[i]);
    memset(out, 0, sizeof *out);
    if (rules[n->op](&c, out) != 0)
        return -1;
    if (ir_shape_is_concrete(out) && ir_shape_numel_overflows(out)) {
        char a[128];
        return fail(&c, "result %s has too many elements", SHAPE_STR(&c, out, a));
    }
    return 0;
}
