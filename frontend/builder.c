/* The public graph builder: sj_graph and one entry point per op.  Each call
 * checks its handle and arguments, maps public value ids to IR values, adds
 * NumPy-style implicit broadcasting as explicit IR broadcasts, and appends
 * nodes.  Errors are sticky on the graph (see statjit.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "frontend/handles.h"
#include "ir/alloc.h"
#include "ir/print.h"

static atomic_uint next_serial = 1;

int fe_graph_valid(const sj_graph *g)
{
    return g && g->magic == FE_MAGIC_GRAPH && fe_ctx_valid(g->ctx);
}

sj_value fe_value(const sj_graph *g, ir_val v)
{
    return v == IR_NONE ? SJ_INVALID : (sj_value)(((uint64_t)g->serial << 32) | (uint32_t)v);
}

sj_status sj_graph_create(sj_ctx *ctx, sj_graph **out)
{
    if (!fe_ctx_valid(ctx))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!out)
        return fe_ctx_failf(ctx, SJ_ERR_INVALID_ARGUMENT, "sj_graph_create: out is NULL");
    *out = NULL;
    sj_graph *g = ir_calloc(1, sizeof *g);
    ir_graph *ir = ir_graph_new();
    if (!g || !ir) {
        ir_free(g);
        ir_graph_free(ir);
        return fe_ctx_failf(ctx, SJ_ERR_OUT_OF_MEMORY, "sj_graph_create: out of memory");
    }
    g->magic = FE_MAGIC_GRAPH;
    g->serial = atomic_fetch_add(&next_serial, 1) & 0x7fffffffu;
    g->ctx = ctx;
    g->ir = ir;
    *out = g;
    return SJ_OK;
}

void sj_graph_free(sj_graph *g)
{
    if (!fe_graph_valid(g))
        return;
    g->magic = FE_MAGIC_DEAD;
    ir_graph_free(g->ir);
    ir_free(g);
}

sj_status sj_graph_status(const sj_graph *g)
{
    if (!fe_graph_valid(g))
        return SJ_ERR_INVALID_ARGUMENT;
    return g->ir->err.status;
}

size_t sj_graph_size(const sj_graph *g) { return fe_graph_valid(g) ? g->ir->nnode : 0; }

char *sj_graph_print(sj_graph *g)
{
    if (!fe_graph_valid(g))
        return NULL;
    char *s = ir_graph_print(g->ir);
    if (!s)
        fe_ctx_failf(g->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_graph_print: out of memory");
    return s;
}

/* ---- helpers -------------------------------------------------------------- */

/* Records a builder error on g (first one wins); the message reaches the
 * context through finish(). */
__attribute__((format(printf, 3, 4)))
static ir_val reject(sj_graph *g, sj_status st, const char *fmt, ...)
{
    if (ir_graph_ok(g->ir)) {
        char msg[IR_ERR_MSG];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        ir_fail(&g->ir->err, st, "%s", msg);
    }
    return IR_NONE;
}

/* The public id of v.  Every entry point returns through here: the graph was
 * healthy when the call began (CHECK_GRAPH), so an error on it now is this
 * call's.  Its message is prefixed with the public function's name and copied
 * into the context. */
static sj_value finish(sj_graph *g, ir_val v, const char *fn)
{
    if (v != IR_NONE && ir_graph_ok(g->ir))
        return fe_value(g, v);
    ir_err *e = &g->ir->err;
    if (ir_graph_ok(g->ir))
        ir_fail(e, SJ_ERR_INTERNAL, "failed without a message");
    size_t len = strlen(fn);
    if (strncmp(e->msg, fn, len) != 0 || e->msg[len] != ':') {
        /* Prefix in place: shift the message right, truncating its end. */
        size_t room = sizeof e->msg - 1, shift = len + 2;
        size_t keep = strnlen(e->msg, room);
        keep = keep + shift > room ? (room > shift ? room - shift : 0) : keep;
        memmove(e->msg + shift, e->msg, keep);
        e->msg[shift + keep] = '\0';
        memcpy(e->msg, fn, len);
        e->msg[len] = ':';
        e->msg[len + 1] = ' ';
    }
    fe_ctx_fail(g->ctx, e);
    return SJ_INVALID;
}

/* The IR value behind public id v, or IR_NONE (recorded unless an earlier
 * argument of this call failed already). */
static ir_val arg(sj_graph *g, sj_value v, const char *fn, const char *what)
{
    if (!ir_graph_ok(g->ir))
        return IR_NONE;
    if (v == SJ_INVALID)
        return reject(g, SJ_ERR_INVALID_ARGUMENT, "%s: %s is SJ_INVALID", fn, what);
    uint64_t u = (uint64_t)v;
    uint32_t serial = (uint32_t)(u >> 32), idx = (uint32_t)u;
    if (v < 0 || serial != g->serial)
        return reject(g, SJ_ERR_INVALID_ARGUMENT,
                      "%s: %s (id %" PRId64 ") is not a value of this graph", fn, what, v);
    if (idx >= g->ir->nnode)
        return reject(g, SJ_ERR_INVALID_ARGUMENT,
                      "%s: %s (id %" PRId64 ") is out of range (graph has %u values)", fn, what,
                      v, g->ir->nnode);
    return (ir_val)idx;
}

static int parse_dims(sj_graph *g, const char *fn, int rank, const char *const *dims,
                      ir_shape *s)
{
    if (rank < 0 || rank > IR_MAX_RANK) {
        reject(g, SJ_ERR_INVALID_ARGUMENT, "%s: rank %d is outside 0..%d", fn, rank, IR_MAX_RANK);
        return -1;
    }
    if (rank > 0 && !dims) {
        reject(g, SJ_ERR_INVALID_ARGUMENT, "%s: dims is NULL for rank %d", fn, rank);
        return -1;
    }
    s->rank = rank;
    for (int i = 0; i < rank; i++) {
        if (ir_graph_parse_dim(g->ir, dims[i], &s->dim[i]) != 0)
            return -1;
    }
    return 0;
}

/* Normalises a possibly negative axis; -1 (recorded) when out of range. */
static int axis_of(sj_graph *g, const char *fn, int axis, int rank)
{
    int a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) {
        reject(g, SJ_ERR_INVALID_ARGUMENT, "%s: axis %d is out of range for rank %d", fn, axis,
               rank);
        return -1;
    }
    return a;
}

static const ir_shape *shape(sj_graph *g, ir_val v) { return ir_shape_of(g->ir, v); }

/* The value the next node of g will get, for messages about a node that could
 * not be made (shape rules word theirs the same way). */
static unsigned next_value(const sj_graph *g) { return g->ir->nnode; }

/* NumPy broadcasting of a and b into out (trailing alignment; a size-1 axis
 * stretches).  Two symbols are assumed equal, never 1: only sizes known to
 * differ fail here, the rest is checked when the function is specialised.
 * Returns -1 on conflict, recording nothing. */
static int broadcast_shapes(const ir_shape *a, const ir_shape *b, ir_shape *out)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    out->rank = r;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
        if (da == 1)
            out->dim[i] = db;
        else if (db == 1)
            out->dim[i] = da;
        else if (ir_dim_conflict(da, db))
            return -1;
        else
            out->dim[i] = ir_dim_merge(da, db);
    }
    return 0;
}

/* x broadcast towards common (of rank >= x's): only missing axes and axes of
 * size 1 are expanded; every other axis keeps x's own size, so that a
 * mismatch of two symbols that only specialisation reveals is reported by the
 * op that consumes the operands, naming that op and both shapes. */
static ir_val broadcast_toward(sj_graph *g, ir_val x, const ir_shape *common)
{
    if (x == IR_NONE)
        return IR_NONE;
    const ir_shape *xs = shape(g, x);
    ir_shape t = *common;
    for (int i = 0; i < t.rank; i++) {
        int xi = i - (t.rank - xs->rank);
        if (xi >= 0 && xs->dim[xi] != 1)
            t.dim[i] = xs->dim[xi];
    }
    return ir_broadcast_trailing(g->ir, x, &t);
}

static ir_val node(sj_graph *g, ir_op op, int n, const ir_val *in, const int64_t *attr,
                   int nattr, const ir_shape *declared)
{
    for (int i = 0; i < n; i++)
        if (in[i] == IR_NONE)
            return IR_NONE;
    return ir_add_node(g->ir, op, n, in, attr, nattr, declared, NULL);
}

/* An invalid handle has no context to report to; a graph that failed before
 * passes SJ_INVALID through quietly, keeping its first error. */
#define CHECK_GRAPH(g)                                                                      \
    do {                                                                                    \
        if (!fe_graph_valid(g) || !ir_graph_ok((g)->ir))                                    \
            return SJ_INVALID;                                                              \
    } while (0)

/* ---- sources --------------------------------------------------------------- */

sj_value sj_input(sj_graph *g, const char *name, int rank, const char *const *dims)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_input";
    if (!name || !*name)
        return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT, "name is NULL or empty"), fn);
    ir_shape s;
    if (parse_dims(g, fn, rank, dims, &s) != 0)
        return finish(g, IR_NONE, fn);
    return finish(g, ir_add_input(g->ir, name, &s), fn);
}

sj_value sj_constant(sj_graph *g, int rank, const int64_t *dims, const double *data)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_constant";
    if (rank < 0 || rank > IR_MAX_RANK || (rank && !dims))
        return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT,
                                "rank %d needs 0..%d sizes in dims%s", rank, IR_MAX_RANK,
                                rank > 0 && rank <= IR_MAX_RANK ? " (dims is NULL)" : ""),
                      fn);
    ir_shape s = {.rank = rank};
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || dims[i] > ((int64_t)1 << 48))
            return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT,
                                    "axis %d has invalid size %" PRId64, i, dims[i]), fn);
        s.dim[i] = dims[i];
    }
    if (ir_shape_numel_overflows(&s))
        return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT, "too many elements"), fn);
    if (!data && ir_shape_numel(&s) > 0)
        return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT, "data is NULL"), fn);
    static const double none = 0;
    return finish(g, ir_add_node(g->ir, IR_OP_CONST, 0, NULL, NULL, 0, &s, data ? data : &none),
                  fn);
}

sj_value sj_scalar(sj_graph *g, double value)
{
    CHECK_GRAPH(g);
    ir_val v = ir_scalar(g->ir, value);
    return finish(g, v, "sj_scalar");
}

sj_value sj_eye(sj_graph *g, const char *dim)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_eye";
    if (!dim)
        return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT, "dim is NULL"), fn);
    ir_shape s = {.rank = 2};
    if (ir_graph_parse_dim(g->ir, dim, &s.dim[0]) != 0)
        return finish(g, IR_NONE, fn);
    s.dim[1] = s.dim[0]; /* one symbol for both axes, even for "?" */
    return finish(g, node(g, IR_OP_EYE, 0, NULL, NULL, 0, &s), fn);
}

/* ---- elementwise ------------------------------------------------------------ */

static sj_value unary(sj_graph *g, ir_op op, sj_value x, int64_t attr, const char *fn)
{
    CHECK_GRAPH(g);
    ir_val v = arg(g, x, fn, "x");
    return finish(g, node(g, op, 1, &v, &attr, 1, NULL), fn);
}

#define UNARY(fn, OPID) \
    sj_value fn(sj_graph *g, sj_value x) { return unary(g, IR_OP_##OPID, x, 0, #fn); }
UNARY(sj_neg, NEG)
UNARY(sj_exp, EXP)
UNARY(sj_log, LOG)
UNARY(sj_log1p, LOG1P)
UNARY(sj_expm1, EXPM1)
UNARY(sj_sqrt, SQRT)
UNARY(sj_square, SQUARE)
UNARY(sj_recip, RECIP)
UNARY(sj_tanh, TANH)
UNARY(sj_logistic, LOGISTIC)
UNARY(sj_lgamma, LGAMMA)
UNARY(sj_digamma, DIGAMMA)
UNARY(sj_abs, ABS)
UNARY(sj_sign, SIGN)
UNARY(sj_ndtr, NDTR)
UNARY(sj_ndtri, NDTRI)
UNARY(sj_atan, ATAN)
UNARY(sj_tan, TAN)
#undef UNARY

sj_value sj_polygamma(sj_graph *g, int order, sj_value x)
{
    CHECK_GRAPH(g);
    if (order < 0 || order > 64)
        return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT, "order %d is outside 0..64", order),
                      "sj_polygamma");
    if (order == 0)
        return unary(g, IR_OP_DIGAMMA, x, 0, "sj_polygamma");
    return unary(g, IR_OP_POLYGAMMA, x, order, "sj_polygamma");
}

/* Broadcasts each of n values to their common NumPy shape, for op. */
static int broadcast_all(sj_graph *g, ir_op op, int n, ir_val *v)
{
    for (int i = 0; i < n; i++)
        if (v[i] == IR_NONE)
            return -1;
    ir_shape common = *shape(g, v[0]);
    for (int i = 1; i < n; i++) {
        ir_shape next;
        if (broadcast_shapes(&common, shape(g, v[i]), &next) != 0) {
            char sa[128], sb[128];
            reject(g, SJ_ERR_SHAPE, "%s (value %%%u): operand shapes %s and %s do not broadcast",
                   ir_op_name(op), next_value(g), ir_shape_str(g->ir, shape(g, v[i - 1]), sa, sizeof sa),
                   ir_shape_str(g->ir, shape(g, v[i]), sb, sizeof sb));
            return -1;
        }
        common = next;
    }
    for (int i = 0; i < n; i++)
        if ((v[i] = broadcast_toward(g, v[i], &common)) == IR_NONE)
            return -1;
    return 0;
}

static sj_value binary(sj_graph *g, ir_op op, sj_value a, sj_value b, int64_t attr,
                       const char *fn)
{
    CHECK_GRAPH(g);
    ir_val v[2] = {arg(g, a, fn, "a"), arg(g, b, fn, "b")};
    if (broadcast_all(g, op, 2, v) != 0)
        return finish(g, IR_NONE, fn);
    return finish(g, node(g, op, 2, v, &attr, 1, NULL), fn);
}

#define BINARY(fn, OPID)                                                    \
    sj_value fn(sj_graph *g, sj_value a, sj_value b)                        \
    {                                                                       \
        return binary(g, IR_OP_##OPID, a, b, 0, #fn);                       \
    }
BINARY(sj_add, ADD)
BINARY(sj_sub, SUB)
BINARY(sj_mul, MUL)
BINARY(sj_div, DIV)
BINARY(sj_pow, POW)
BINARY(sj_min, MIN)
BINARY(sj_max, MAX)
#undef BINARY

sj_value sj_compare(sj_graph *g, sj_cmp cmp, sj_value a, sj_value b)
{
    CHECK_GRAPH(g);
    if ((int)cmp < (int)SJ_LT || (int)cmp > (int)SJ_NE)
        return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT, "unknown comparison %d", (int)cmp),
                      "sj_compare");
    return binary(g, IR_OP_CMP, a, b, cmp, "sj_compare");
}

sj_value sj_select(sj_graph *g, sj_value pred, sj_value a, sj_value b)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_select";
    ir_val v[3] = {arg(g, pred, fn, "pred"), arg(g, a, fn, "a"), arg(g, b, fn, "b")};
    if (broadcast_all(g, IR_OP_SELECT, 3, v) != 0)
        return finish(g, IR_NONE, fn);
    return finish(g, node(g, IR_OP_SELECT, 3, v, NULL, 0, NULL), fn);
}

/* ---- data movement ----------------------------------------------------------- */

sj_value sj_broadcast_to(sj_graph *g, sj_value x, int rank, const char *const *dims)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_broadcast_to";
    ir_val v = arg(g, x, fn, "x");
    ir_shape s;
    if (v == IR_NONE || parse_dims(g, fn, rank, dims, &s) != 0)
        return finish(g, IR_NONE, fn);
    return finish(g, ir_broadcast_trailing(g->ir, v, &s), fn);
}

sj_value sj_reshape(sj_graph *g, sj_value x, int rank, const char *const *dims)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_reshape";
    ir_val v = arg(g, x, fn, "x");
    ir_shape s;
    if (v == IR_NONE || parse_dims(g, fn, rank, dims, &s) != 0)
        return finish(g, IR_NONE, fn);
    return finish(g, node(g, IR_OP_RESHAPE, 1, &v, NULL, 0, &s), fn);
}

sj_value sj_transpose(sj_graph *g, sj_value x, const int *perm)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_transpose";
    ir_val v = arg(g, x, fn, "x");
    if (v == IR_NONE)
        return finish(g, IR_NONE, fn);
    int rank = shape(g, v)->rank;
    if (rank && !perm)
        return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT, "perm is NULL"), fn);
    int64_t p[IR_NATTR];
    for (int i = 0; i < rank; i++)
        p[i] = perm[i];
    return finish(g, node(g, IR_OP_TRANSPOSE, 1, &v, p, rank, NULL), fn);
}

/* The permutation that swaps the last two of rank axes. */
static void swap_last_two(int rank, int64_t *p)
{
    for (int i = 0; i < rank; i++)
        p[i] = i;
    p[rank - 2] = rank - 1;
    p[rank - 1] = rank - 2;
}

sj_value sj_mT(sj_graph *g, sj_value x)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_mT";
    ir_val v = arg(g, x, fn, "x");
    if (v == IR_NONE)
        return finish(g, IR_NONE, fn);
    const ir_shape *xs = shape(g, v);
    if (xs->rank < 2) {
        char sa[128];
        return finish(g, reject(g, SJ_ERR_SHAPE, "transpose (value %%%u): x must have rank >= 2, got %s",
                                next_value(g), ir_shape_str(g->ir, xs, sa, sizeof sa)), fn);
    }
    int64_t p[IR_NATTR];
    swap_last_two(xs->rank, p);
    return finish(g, node(g, IR_OP_TRANSPOSE, 1, &v, p, xs->rank, NULL), fn);
}

sj_value sj_slice(sj_graph *g, sj_value x, int axis, int64_t start, int64_t stop)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_slice";
    ir_val v = arg(g, x, fn, "x");
    if (v == IR_NONE)
        return finish(g, IR_NONE, fn);
    int a = axis_of(g, fn, axis, shape(g, v)->rank);
    if (a < 0)
        return finish(g, IR_NONE, fn);
    int64_t attr[3] = {a, start, stop};
    return finish(g, node(g, IR_OP_SLICE, 1, &v, attr, 3, NULL), fn);
}

sj_value sj_concat(sj_graph *g, int n, const sj_value *xs, int axis)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_concat";
    if (n < 1 || n > 4096 || !xs)
        return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT,
                                "needs 1..4096 values in xs, got %d%s", n,
                                xs ? "" : " (xs is NULL)"), fn);
    ir_val in[4096];
    for (int i = 0; i < n; i++)
        if ((in[i] = arg(g, xs[i], fn, "an operand")) == IR_NONE)
            return finish(g, IR_NONE, fn);
    int a = axis_of(g, fn, axis, shape(g, in[0])->rank);
    if (a < 0)
        return finish(g, IR_NONE, fn);
    int64_t attr = a;
    return finish(g, node(g, IR_OP_CONCAT, n, in, &attr, 1, NULL), fn);
}

sj_value sj_gather(sj_graph *g, sj_value x, sj_value idx)
{
    CHECK_GRAPH(g);
    ir_val v[2] = {arg(g, x, "sj_gather", "x"), arg(g, idx, "sj_gather", "idx")};
    return finish(g, node(g, IR_OP_GATHER, 2, v, NULL, 0, NULL), "sj_gather");
}

/* A declared shape whose axis `at` (of `rank`) is the size spec. */
static int sized_shape(sj_graph *g, const char *spec, int rank, int at, ir_shape *s)
{
    if (!spec) {
        reject(g, SJ_ERR_INVALID_ARGUMENT, "size is NULL");
        return -1;
    }
    s->rank = rank;
    for (int i = 0; i < rank; i++)
        s->dim[i] = IR_DIM_ANY;
    if (ir_graph_parse_dim(g->ir, spec, &s->dim[at]) != 0)
        return -1;
    return 0;
}

sj_value sj_segment_sum(sj_graph *g, sj_value x, sj_value idx, const char *nseg)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_segment_sum";
    ir_val v[2] = {arg(g, x, fn, "x"), arg(g, idx, fn, "idx")};
    ir_shape s;
    if (v[0] == IR_NONE || v[1] == IR_NONE)
        return finish(g, IR_NONE, fn);
    int rank = shape(g, v[0])->rank;
    if (sized_shape(g, nseg, rank ? rank : 1, 0, &s) != 0)
        return finish(g, IR_NONE, fn);
    return finish(g, node(g, IR_OP_SEGSUM, 2, v, NULL, 0, &s), fn);
}

sj_value sj_one_hot(sj_graph *g, sj_value idx, const char *nclass)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_one_hot";
    ir_val v = arg(g, idx, fn, "idx");
    ir_shape s;
    if (v == IR_NONE || sized_shape(g, nclass, 2, 1, &s) != 0)
        return finish(g, IR_NONE, fn);
    return finish(g, node(g, IR_OP_ONE_HOT, 1, &v, NULL, 0, &s), fn);
}

/* ---- reductions --------------------------------------------------------------- */

static sj_value reduce(sj_graph *g, ir_op op, sj_value x, int naxes, const int *axes,
                       const char *fn)
{
    CHECK_GRAPH(g);
    ir_val v = arg(g, x, fn, "x");
    if (v == IR_NONE)
        return finish(g, IR_NONE, fn);
    int rank = shape(g, v)->rank;
    if (naxes < 0 || naxes > rank || (naxes && !axes))
        return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT, "%d axes given for rank %d%s",
                                naxes, rank, naxes && !axes ? " (axes is NULL)" : ""), fn);
    int64_t mask = 0;
    for (int i = 0; i < naxes; i++) {
        int a = axis_of(g, fn, axes[i], rank);
        if (a < 0)
            return finish(g, IR_NONE, fn);
        if (mask & ((int64_t)1 << a))
            return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT, "axis %d given twice", axes[i]),
                          fn);
        mask |= (int64_t)1 << a;
    }
    return finish(g, node(g, op, 1, &v, &mask, 1, NULL), fn);
}

sj_value sj_sum(sj_graph *g, sj_value x, int naxes, const int *axes)
{
    return reduce(g, IR_OP_SUM, x, naxes, axes, "sj_sum");
}
sj_value sj_reduce_max(sj_graph *g, sj_value x, int naxes, const int *axes)
{
    return reduce(g, IR_OP_RMAX, x, naxes, axes, "sj_reduce_max");
}
sj_value sj_mean(sj_graph *g, sj_value x, int naxes, const int *axes)
{
    return reduce(g, IR_OP_MEAN, x, naxes, axes, "sj_mean");
}

sj_value sj_sum_all(sj_graph *g, sj_value x)
{
    CHECK_GRAPH(g);
    ir_val v = arg(g, x, "sj_sum_all", "x");
    if (v == IR_NONE)
        return finish(g, IR_NONE, "sj_sum_all");
    int64_t mask = ((int64_t)1 << shape(g, v)->rank) - 1;
    return finish(g, node(g, IR_OP_SUM, 1, &v, &mask, 1, NULL), "sj_sum_all");
}

/* ---- linear algebra ------------------------------------------------------------ */

/* x reshaped with a unit axis inserted at position `at` (x has rank < 8). */
static ir_val insert_unit_axis(sj_graph *g, ir_val x, int at)
{
    const ir_shape *s = shape(g, x);
    IR_ASSERT(s->rank < IR_MAX_RANK);
    ir_shape r = {.rank = s->rank + 1};
    for (int i = 0, j = 0; i < r.rank; i++)
        r.dim[i] = i == at ? 1 : s->dim[j++];
    return node(g, IR_OP_RESHAPE, 1, &x, NULL, 0, &r);
}

/* x with its unit axis at position `at` removed. */
static ir_val drop_unit_axis(sj_graph *g, ir_val x, int at)
{
    if (x == IR_NONE)
        return IR_NONE;
    const ir_shape *s = shape(g, x);
    ir_shape r = {.rank = s->rank - 1};
    for (int i = 0, j = 0; i < s->rank; i++)
        if (i != at)
            r.dim[j++] = s->dim[i];
    return node(g, IR_OP_RESHAPE, 1, &x, NULL, 0, &r);
}

/* Broadcasts the batch (leading) axes of two matrices as NumPy's matmul does:
 * missing and size-1 batch axes stretch.  ua and ub are the user's shapes,
 * for the message. */
static int broadcast_batch(sj_graph *g, ir_val *a, ir_val *b, const ir_shape *ua,
                           const ir_shape *ub)
{
    const ir_shape *sa = shape(g, *a), *sb = shape(g, *b);
    ir_shape ba = *sa, bb = *sb, common;
    ba.rank -= 2;
    bb.rank -= 2;
    if (broadcast_shapes(&ba, &bb, &common) != 0) {
        char s1[128], s2[128];
        reject(g, SJ_ERR_SHAPE, "matmul (value %%%u): batch axes of %s and %s do not broadcast",
               next_value(g), ir_shape_str(g->ir, ua, s1, sizeof s1),
               ir_shape_str(g->ir, ub, s2, sizeof s2));
        return -1;
    }
    ir_shape ta = common, tb = common;
    ta.rank += 2;
    tb.rank += 2;
    ta.dim[common.rank] = sa->dim[sa->rank - 2];
    ta.dim[common.rank + 1] = sa->dim[sa->rank - 1];
    tb.dim[common.rank] = sb->dim[sb->rank - 2];
    tb.dim[common.rank + 1] = sb->dim[sb->rank - 1];
    *a = broadcast_toward(g, *a, &ta);
    *b = broadcast_toward(g, *b, &tb);
    return *a == IR_NONE || *b == IR_NONE ? -1 : 0;
}

sj_value sj_matmul(sj_graph *g, sj_value a, sj_value b)
{
    CHECK_GRAPH(g);
    const char *fn = "sj_matmul";
    ir_val va = arg(g, a, fn, "a"), vb = arg(g, b, fn, "b");
    if (va == IR_NONE || vb == IR_NONE)
        return finish(g, IR_NONE, fn);
    ir_shape ua = *shape(g, va), ub = *shape(g, vb);
    int ra = ua.rank, rb = ub.rank;
    char s1[128], s2[128];
    if (ra == 0 || rb == 0)
        return finish(g, reject(g, SJ_ERR_SHAPE,
                                "matmul (value %%%u): operands must not be scalars, got %s and %s",
                                next_value(g), ir_shape_str(g->ir, &ua, s1, sizeof s1),
                                ir_shape_str(g->ir, &ub, s2, sizeof s2)), fn);
    /* The contracted sizes, checked here so the message shows the user's
     * shapes rather than those of the inserted unit axes. */
    int64_t ka = ua.dim[ra - 1], kb = ub.dim[rb == 1 ? 0 : rb - 2];
    if (ir_dim_conflict(ka, kb))
        return finish(g, reject(g, SJ_ERR_SHAPE,
                                "matmul (value %%%u): inner dimensions differ: a is %s and b is %s",
                                next_value(g), ir_shape_str(g->ir, &ua, s1, sizeof s1),
                                ir_shape_str(g->ir, &ub, s2, sizeof s2)), fn);
    if (ra == 1)
        va = insert_unit_axis(g, va, 0);
    if (rb == 1)
        vb = insert_unit_axis(g, vb, 1);
    if (va == IR_NONE || vb == IR_NONE || broadcast_batch(g, &va, &vb, &ua, &ub) != 0)
        return finish(g, IR_NONE, fn);
    int64_t attr[2] = {0, 0};
    ir_val in[2] = {va, vb};
    ir_val r = node(g, IR_OP_MATMUL, 2, in, attr, 2, NULL);
    if (r != IR_NONE && rb == 1)
        r = drop_unit_axis(g, r, shape(g, r)->rank - 1);
    if (r != IR_NONE && ra == 1)
        r = drop_unit_axis(g, r, shape(g, r)->rank - (rb == 1 ? 1 : 2));
    return finish(g, r, fn);
}

static sj_value linalg2(sj_graph *g, ir_op op, sj_value a, sj_value b, int64_t attr,
                        const char *fn)
{
    CHECK_GRAPH(g);
    ir_val v[2] = {arg(g, a, fn, "a"), arg(g, b, fn, "b")};
    return finish(g, node(g, op, 2, v, &attr, 1, NULL), fn);
}

sj_value sj_outer(sj_graph *g, sj_value a, sj_value b)
{
    return linalg2(g, IR_OP_OUTER, a, b, 0, "sj_outer");
}
sj_value sj_kron(sj_graph *g, sj_value a, sj_value b)
{
    return linalg2(g, IR_OP_KRON, a, b, 0, "sj_kron");
}

sj_value sj_diag(sj_graph *g, sj_value x) { return unary(g, IR_OP_DIAG, x, 0, "sj_diag"); }
sj_value sj_diag_embed(sj_graph *g, sj_value v)
{
    return unary(g, IR_OP_DIAG_EMBED, v, 0, "sj_diag_embed");
}
sj_value sj_tril(sj_graph *g, sj_value x, int k) { return unary(g, IR_OP_TRIL, x, k, "sj_tril"); }
sj_value sj_triu(sj_graph *g, sj_value x, int k) { return unary(g, IR_OP_TRIU, x, k, "sj_triu"); }
sj_value sj_cholesky(sj_graph *g, sj_value a)
{
    return unary(g, IR_OP_CHOLESKY, a, 0, "sj_cholesky");
}
sj_value sj_logdet(sj_graph *g, sj_value a) { return unary(g, IR_OP_LOGDET, a, 0, "sj_logdet"); }
sj_value sj_eigvalsh(sj_graph *g, sj_value a)
{
    return unary(g, IR_OP_EIGVALSH, a, 0, "sj_eigvalsh");
}
sj_value sj_eigvecsh(sj_graph *g, sj_value a)
{
    return unary(g, IR_OP_EIGVECSH, a, 0, "sj_eigvecsh");
}

/* A solve whose right-hand side may be a vector (treated as one column, or
 * one row when solving from the right). */
static sj_value solve_like(sj_graph *g, ir_op op, sj_value a, sj_value b, int64_t flags,
                           const char *fn)
{
    CHECK_GRAPH(g);
    ir_val v[2] = {arg(g, a, fn, "a"), arg(g, b, fn, "b")};
    if (v[0] == IR_NONE || v[1] == IR_NONE)
        return finish(g, IR_NONE, fn);
    int vector = shape(g, v[1])->rank == 1 && shape(g, v[0])->rank == 2;
    int at = (flags & SJ_SOLVE_RIGHT) ? 0 : 1;
    if (vector)
        v[1] = insert_unit_axis(g, v[1], at);
    ir_val r = node(g, op, 2, v, &flags, 1, NULL);
    if (vector)
        r = drop_unit_axis(g, r, at);
    return finish(g, r, fn);
}

sj_value sj_triangular_solve(sj_graph *g, sj_value a, sj_value b, unsigned flags)
{
    CHECK_GRAPH(g);
    if (flags & ~(unsigned)(SJ_SOLVE_RIGHT | SJ_SOLVE_UPPER | SJ_SOLVE_TRANSPOSE))
        return finish(g, reject(g, SJ_ERR_INVALID_ARGUMENT, "unknown flags 0x%x", flags),
                      "sj_triangular_solve");
    return solve_like(g, IR_OP_TRISOLVE, a, b, flags, "sj_triangular_solve");
}
sj_value sj_cholesky_solve(sj_graph *g, sj_value l, sj_value b)
{
    return solve_like(g, IR_OP_CHOSOLVE, l, b, 0, "sj_cholesky_solve");
}
sj_value sj_solve(sj_graph *g, sj_value a, sj_value b)
{
    return solve_like(g, IR_OP_SOLVE, a, b, 0, "sj_solve");
}
