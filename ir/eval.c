/* The reference evaluator: the driver, and the kernels for sources, data
 * movement, indexing and reductions.  Elementwise kernels live in
 * ir/eval_elementwise.c, linear algebra in ir/eval_linalg.c.
 *
 * The driver computes only the nodes the outputs depend on, in graph order,
 * each into its own buffer (inputs and constants are read in place), frees a
 * buffer after its last use, and copies the outputs to the caller's arrays
 * only once every node has succeeded: on any error the outputs are untouched.
 *
 * Edge conventions (the code generator must match them):
 *   - sum over an empty axis is 0; mean over an empty axis is NaN (0/0);
 *     reduce_max over an empty axis is -INFINITY.
 *   - reduce_max, min and max propagate NaN.
 *   - gather / segment_sum / one_hot indices must be integers in range
 *     (NaN and ±inf are not); otherwise SJ_ERR_DOMAIN naming the position
 *     and the bad index.
 *   - for the special functions see ir/eval_elementwise.c. */
#include "ir/eval.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir/alloc.h"
#include "ir/eval_kernels.h"

/* ---- shared helpers ------------------------------------------------------------ */

size_t ev_batch(const ir_shape *s, int keep)
{
    size_t b = 1;
    for (int i = 0; i < s->rank - keep; i++)
        b *= (size_t)s->dim[i];
    return b;
}

sj_status ev_fail(const ev_args *a, sj_status st, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ir_fail(a->err, st, "%s (value %%%d): %s", ir_op_name(a->n->op), (int)a->v, msg);
}

const char *ev_batch_str(const ir_shape *s, int keep, size_t b, char *buf, size_t size)
{
    int nb = s->rank - keep;
    size_t idx[IR_MAX_RANK] = {0};
    for (int i = nb - 1; i >= 0; i--) {
        idx[i] = b % (size_t)s->dim[i];
        b /= (size_t)s->dim[i];
    }
    size_t used = (size_t)snprintf(buf, size, "[batch ");
    for (int i = 0; i < (nb ? nb : 1) && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%zu", i ? ", " : "", idx[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

static void copy_values(double *dst, const double *src, size_t n)
{
    if (n)
        memcpy(dst, src, n * sizeof *dst);
}

/* Row-major strides of s. */
static void fill_strides(const ir_shape *s, int64_t *stride)
{
    int64_t k = 1;
    for (int i = s->rank - 1; i >= 0; i--) {
        stride[i] = k;
        k *= s->dim[i];
    }
}

/* Advances the multi-index idx over shape s and moves *off by stride. */
static void step(int64_t *idx, const ir_shape *s, int64_t *off, const int64_t *stride)
{
    for (int i = s->rank - 1; i >= 0; i--) {
        *off += stride[i];
        if (++idx[i] < s->dim[i])
            return;
        *off -= stride[i] * s->dim[i];
        idx[i] = 0;
    }
}

/* out[o] = in[base + Σ o_i stride_i] for every multi-index o of shape s. */
static void copy_strided(double *out, const ir_shape *s, const double *in, int64_t base,
                         const int64_t *stride)
{
    size_t n = ir_shape_numel(s);
    int64_t idx[IR_MAX_RANK] = {0}, off = base;
    for (size_t k = 0; k < n; k++) {
        out[k] = in[off];
        step(idx, s, &off, stride);
    }
}

/* ---- sources -------------------------------------------------------------------- */

/* Inputs and constants are read in place by the driver; these run only if a
 * caller dispatches them directly. */
sj_status ev_input(const ev_args *a)
{
    return ev_fail(a, SJ_ERR_INTERNAL, "inputs are not computed");
}

sj_status ev_const(const ev_args *a)
{
    copy_values(a->out, a->n->data, ev_numel(a));
    return SJ_OK;
}

sj_status ev_eye(const ev_args *a)
{
    int64_t n = a->n->shape.dim[0];
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            a->out[i * n + j] = i == j;
    return SJ_OK;
}

/* ---- data movement ------------------------------------------------------------------ */

/* Input dims of size 1 broadcast (stride 0); output axes no input axis maps to
 * repeat the input. */
sj_status ev_broadcast(const ev_args *a)
{
    const ir_shape *x = ev_in_shape(a, 0);
    int64_t xs[IR_MAX_RANK], stride[IR_MAX_RANK] = {0};
    fill_strides(x, xs);
    for (int i = 0; i < x->rank; i++)
        stride[a->n->attr[i]] = x->dim[i] == 1 ? 0 : xs[i];
    copy_strided(a->out, &a->n->shape, ev_in(a, 0), 0, stride);
    return SJ_OK;
}

sj_status ev_reshape(const ev_args *a)
{
    copy_values(a->out, ev_in(a, 0), ev_numel(a));
    return SJ_OK;
}

/* attr[i] is the input axis of output axis i. */
sj_status ev_transpose(const ev_args *a)
{
    const ir_shape *x = ev_in_shape(a, 0);
    int64_t xs[IR_MAX_RANK], stride[IR_MAX_RANK];
    fill_strides(x, xs);
    for (int i = 0; i < x->rank; i++)
        stride[i] = xs[a->n->attr[i]];
    copy_strided(a->out, &a->n->shape, ev_in(a, 0), 0, stride);
    return SJ_OK;
}

/* Start normalised as in shape.c; the node's shape already has the length. */
sj_status ev_slice(const ev_args *a)
{
    const ir_shape *x = ev_in_shape(a, 0);
    int64_t axis = a->n->attr[0], start = a->n->attr[1];
    if (start < 0)
        start += x->dim[axis];
    int64_t stride[IR_MAX_RANK];
    fill_strides(x, stride);
    if (ev_numel(a))
        copy_strided(a->out, &a->n->shape, ev_in(a, 0), start * stride[axis], stride);
    return SJ_OK;
}

sj_status ev_concat(const ev_args *a)
{
    const ir_shape *s = &a->n->shape;
    int axis = (int)a->n->attr[0];
    size_t outer = ev_batch(s, s->rank - axis), inner = 1;
    for (int i = axis + 1; i < s->rank; i++)
        inner *= (size_t)s->dim[i];
    size_t row = (size_t)s->dim[axis] * inner, at = 0;
    for (int k = 0; k < a->n->ninput; k++) {
        size_t len = (size_t)ev_in_shape(a, k)->dim[axis] * inner;
        const double *x = ev_in(a, k);
        for (size_t o = 0; o < outer; o++)
            copy_values(a->out + o * row + at, x + o * len, len);
        at += len;
    }
    return SJ_OK;
}

/* ---- indexing ---------------------------------------------------------------------------- */

/* idx[i] as a row number below limit, or -1 (recorded) if it is not one. */
static int64_t index_at(const ev_args *a, const double *idx, size_t i, int64_t limit,
                        const char *what)
{
    double d = idx[i];
    if (d >= 0 && d < (double)limit && d == floor(d))
        return (int64_t)d;
    ev_fail(a, SJ_ERR_DOMAIN,
            "index at position %zu is %.17g, not an integer %s in 0..%" PRId64, i, d, what,
            limit - 1);
    return -1;
}

/* Elements per row along axis 0. */
static size_t row_size(const ir_shape *s)
{
    size_t r = 1;
    for (int i = 1; i < s->rank; i++)
        r *= (size_t)s->dim[i];
    return r;
}

sj_status ev_gather(const ev_args *a)
{
    const ir_shape *x = ev_in_shape(a, 0);
    size_t row = row_size(x), n = (size_t)a->n->shape.dim[0];
    const double *idx = ev_in(a, 1);
    for (size_t i = 0; i < n; i++) {
        int64_t k = index_at(a, idx, i, x->dim[0], "row of x");
        if (k < 0)
            return a->err->status;
        copy_values(a->out + i * row, ev_in(a, 0) + (size_t)k * row, row);
    }
    return SJ_OK;
}

sj_status ev_segment_sum(const ev_args *a)
{
    const ir_shape *x = ev_in_shape(a, 0);
    size_t row = row_size(x), n = (size_t)x->dim[0];
    const double *idx = ev_in(a, 1), *xv = ev_in(a, 0);
    memset(a->out, 0, ev_numel(a) * sizeof *a->out);
    for (size_t i = 0; i < n; i++) {
        int64_t k = index_at(a, idx, i, a->n->shape.dim[0], "segment");
        if (k < 0)
            return a->err->status;
        for (size_t j = 0; j < row; j++)
            a->out[(size_t)k * row + j] += xv[i * row + j];
    }
    return SJ_OK;
}

sj_status ev_one_hot(const ev_args *a)
{
    size_t n = (size_t)a->n->shape.dim[0];
    int64_t nclass = a->n->shape.dim[1];
    const double *idx = ev_in(a, 0);
    memset(a->out, 0, ev_numel(a) * sizeof *a->out);
    for (size_t i = 0; i < n; i++) {
        int64_t k = index_at(a, idx, i, nclass, "class");
        if (k < 0)
            return a->err->status;
        a->out[i * (size_t)nclass + (size_t)k] = 1.0;
    }
    return SJ_OK;
}

/* ---- reductions ------------------------------------------------------------------------------ */

typedef enum { RED_SUM, RED_MAX, RED_MEAN } reduction;

static sj_status reduce(const ev_args *a, reduction r)
{
    const ir_shape *x = ev_in_shape(a, 0);
    int64_t mask = a->n->attr[0], os[IR_MAX_RANK], stride[IR_MAX_RANK];
    fill_strides(&a->n->shape, os);
    size_t count = 1;
    for (int i = 0, j = 0; i < x->rank; i++) {
        int reduced = (mask >> i) & 1;
        stride[i] = reduced ? 0 : os[j++];
        if (reduced)
            count *= (size_t)x->dim[i];
    }
    size_t nout = ev_numel(a), nx = ir_shape_numel(x);
    for (size_t k = 0; k < nout; k++)
        a->out[k] = r == RED_MAX ? -INFINITY : 0.0;
    const double *xv = ev_in(a, 0);
    int64_t idx[IR_MAX_RANK] = {0}, off = 0;
    for (size_t k = 0; k < nx; k++) {
        double *o = &a->out[off], v = xv[k];
        if (r != RED_MAX)
            *o += v;
        else if (isnan(v) || v > *o)
            *o = v;
        step(idx, x, &off, stride);
    }
    if (r == RED_MEAN)
        for (size_t k = 0; k < nout; k++)
            a->out[k] /= (double)count; /* 0/0 = NaN for an empty axis */
    return SJ_OK;
}

sj_status ev_sum(const ev_args *a) { return reduce(a, RED_SUM); }
sj_status ev_reduce_max(const ev_args *a) { return reduce(a, RED_MAX); }
sj_status ev_mean(const ev_args *a) { return reduce(a, RED_MEAN); }

/* ---- driver ------------------------------------------------------------------------------------ */

static ev_kernel *const kernels[IR_NOP] = {
#define OP(id, name, kind, arity, shape) [IR_OP_##id] = ev_##name,
#include "ir/ops.def"
};

/* Stands in for the NULL an empty input may be given as. */
static const double empty_input[1];

typedef struct evaluation {
    const ir_graph *g;
    const double **val; /* value of each node (borrowed or owned) */
    double **own;       /* the buffers we allocated */
    uint32_t *last;     /* last node reading each value; UINT32_MAX for outputs */
    unsigned char *live;
} evaluation;

/* Marks the nodes the outputs depend on and the last reader of each. */
static void fill_liveness(evaluation *e)
{
    const ir_graph *g = e->g;
    for (uint32_t k = 0; k < g->noutput; k++) {
        e->live[g->output[k]] = 1;
        e->last[g->output[k]] = UINT32_MAX;
    }
    for (uint32_t v = g->nnode; v-- > 0;) {
        const ir_node *n = ir_node_at(g, v);
        for (int i = 0; e->live[v] && i < n->ninput; i++) {
            ir_val in = n->input[i];
            e->live[in] = 1;
            if (e->last[in] == 0) /* no later reader seen (node 0 reads nothing) */
                e->last[in] = v;
        }
    }
}

static sj_status compute_node(evaluation *e, uint32_t v, const double *const *inputs,
                              ir_err *err)
{
    const ir_node *n = ir_node_at(e->g, v);
    if (n->op == IR_OP_INPUT) {
        const double *p = inputs[n->attr[0]];
        e->val[v] = p ? p : empty_input;
        return SJ_OK;
    }
    if (n->op == IR_OP_CONST) {
        e->val[v] = n->data ? n->data : empty_input;
        return SJ_OK;
    }
    size_t numel = ir_shape_numel(&n->shape);
    if (!(e->own[v] = ir_malloc(numel * sizeof(double))))
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "%s (value %%%u): out of memory for %zu values",
                       ir_op_name(n->op), v, numel);
    e->val[v] = e->own[v];
    ev_args a = {.g = e->g, .v = (ir_val)v, .n = n, .val = e->val, .out = e->own[v], .err = err};
    return kernels[n->op](&a);
}

/* Frees the buffers whose last reader is node v. */
static void release_inputs(evaluation *e, uint32_t v)
{
    const ir_node *n = ir_node_at(e->g, v);
    for (int i = 0; i < n->ninput; i++) {
        ir_val in = n->input[i];
        if (e->last[in] == v && e->own[in]) {
            ir_free(e->own[in]);
            e->own[in] = NULL;
            e->val[in] = NULL;
        }
    }
}

static sj_status run(evaluation *e, const double *const *inputs, double *const *outputs,
                     ir_err *err)
{
    const ir_graph *g = e->g;
    fill_liveness(e);
    for (uint32_t v = 0; v < g->nnode; v++) {
        if (!e->live[v])
            continue;
        sj_status st = compute_node(e, v, inputs, err);
        if (st != SJ_OK)
            return st;
        release_inputs(e, v);
    }
    for (uint32_t k = 0; k < g->noutput; k++)
        copy_values(outputs[k], e->val[g->output[k]],
                    ir_shape_numel(ir_shape_of(g, g->output[k])));
    return SJ_OK;
}

sj_status ir_eval(const ir_graph *g, const double *const *inputs, double *const *outputs,
                  ir_err *err)
{
    uint32_t nn = g->nnode;
    evaluation e = {.g = g};
    e.val = ir_calloc(nn, sizeof *e.val);
    e.own = ir_calloc(nn, sizeof *e.own);
    e.last = ir_calloc(nn, sizeof *e.last);
    e.live = ir_calloc(nn, sizeof *e.live);
    sj_status st = SJ_ERR_OUT_OF_MEMORY;
    if (e.val && e.own && e.last && e.live)
        st = run(&e, inputs, outputs, err);
    else
        ir_fail(err, st, "out of memory while evaluating");
    for (uint32_t v = 0; e.own && v < nn; v++)
        ir_free(e.own[v]);
    ir_free(e.val);
    ir_free(e.own);
    ir_free(e.last);
    ir_free(e.live);
    return st;
}
