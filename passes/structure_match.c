/* Shared pieces of the structure rewrites: see passes/structure_match.h. */
#include "passes/structure_match.h"

#include <string.h>

#include "ir/alloc.h"
#include "passes/ad.h"
#include "passes/rebuild.h"

/* ---- rebuilding ------------------------------------------------------------ */

typedef struct rebuild_ctx {
    const ir_graph *g;
    st_emit_fn *emit;
    void *ctx;
    ir_val *map;
    int started;
} rebuild_ctx;

/* pass_rebuild_with's callback: n is &g->node[v]. */
static ir_val rebuild_one(void *ctxp, ir_graph *ng, const ir_node *n, const ir_val *inputs)
{
    rebuild_ctx *c = ctxp;
    const ir_graph *g = c->g;
    ir_val v = (ir_val)(n - g->node);
    if (!c->started) {
        c->started = 1;
        if (ir_graph_merge_rewrites(ng, g) != 0) /* the log so far, then this pass's */
            ir_fail(&ng->err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
    }
    ir_val r = n->op == IR_OP_INPUT ? ST_KEEP : c->emit(c->ctx, ng, g, v, c->map);
    if (r == ST_KEEP) {
        r = pass_copy_node(ng, n, inputs);
    } else if (r != IR_NONE && ir_graph_ok(ng) && !ir_shape_equal(ir_shape_of(ng, r), &n->shape)) {
        char a[128], b[128];
        ir_fail(&ng->err, SJ_ERR_INTERNAL, "%s (value %%%d) was replaced by a value of shape "
                "%s instead of %s", ir_op_name(n->op), (int)v,
                ir_shape_str(ng, ir_shape_of(ng, r), a, sizeof a),
                ir_shape_str(g, &n->shape, b, sizeof b));
        r = IR_NONE;
    }
    c->map[v] = r;
    return r;
}

sj_status st_rebuild(const ir_graph *g, st_emit_fn *emit, void *ctx, const char *pass,
                     ir_graph **out, ir_err *err)
{
    *out = NULL;
    rebuild_ctx c = {g, emit, ctx, ir_malloc((g->nnode ? g->nnode : 1) * sizeof(ir_val)), 0};
    if (!c.map)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", pass);
    ir_err e = {SJ_OK, ""};
    sj_status st = pass_rebuild_with(g, NULL, rebuild_one, &c, out, &e);
    ir_free(c.map);
    if (st != SJ_OK)
        return ir_fail(err, st, "%s: %s", pass, e.msg);
    return SJ_OK;
}

sj_status st_uses_fill(const ir_graph *g, st_uses *u, ir_err *err)
{
    uint32_t n = g->nnode;
    u->start = ir_calloc((size_t)n + 2, sizeof *u->start);
    u->nout = ir_calloc((size_t)n + 1, sizeof *u->nout);
    size_t total = 0;
    for (uint32_t v = 0; v < n; v++)
        total += (size_t)g->node[v].ninput;
    u->list = ir_malloc((total ? total : 1) * sizeof *u->list);
    if (!u->start || !u->nout || !u->list) {
        st_uses_free(u);
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "structure rewrites: out of memory");
    }
    for (uint32_t v = 0; v < n; v++)
        for (int i = 0; i < g->node[v].ninput; i++)
            u->start[g->node[v].input[i] + 2]++;
    for (uint32_t v = 0; v < n; v++)
        u->start[v + 2] += u->start[v + 1];
    for (uint32_t v = 0; v < n; v++)
        for (int i = 0; i < g->node[v].ninput; i++)
            u->list[u->start[g->node[v].input[i] + 1]++] = v;
    for (uint32_t k = 0; k < g->noutput; k++)
        u->nout[g->output[k]]++;
    return SJ_OK;
}

void st_uses_free(st_uses *u)
{
    ir_free(u->start);
    ir_free(u->list);
    ir_free(u->nout);
    memset(u, 0, sizeof *u);
}

/* ---- recognisers ------------------------------------------------------------- */

ir_val st_transposed(const ir_graph *g, ir_val v)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op == IR_OP_TRANSPOSE && n->shape.rank == 2 && n->attr[0] == 1 && n->attr[1] == 0)
        return n->input[0];
    return IR_NONE;
}

int st_is_zero(const ir_graph *g, ir_val v)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op == IR_OP_BROADCAST || n->op == IR_OP_RESHAPE)
        return st_is_zero(g, n->input[0]);
    if (n->op != IR_OP_CONST)
        return 0;
    size_t m = ir_shape_numel(&n->shape);
    for (size_t i = 0; i < m; i++)
        if (n->data[i] != 0.0)
            return 0;
    return 1;
}

ir_val st_broadcast_scalar(const ir_graph *g, ir_val v)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op == IR_OP_BROADCAST && ir_shape_numel(ir_shape_of(g, n->input[0])) == 1)
        return n->input[0];
    return IR_NONE;
}

ir_val st_row_broadcast(const ir_graph *g, ir_val v)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op != IR_OP_BROADCAST || n->shape.rank != 2)
        return IR_NONE;
    ir_val x = n->input[0];
    const ir_shape *xs = ir_shape_of(g, x);
    if (xs->rank == 1 && n->attr[0] == 0 && xs->dim[0] == n->shape.dim[0])
        return x;
    if (xs->rank == 2 && n->attr[0] == 0 && n->attr[1] == 1 && xs->dim[0] == n->shape.dim[0] &&
        xs->dim[1] == 1)
        return x;
    return IR_NONE;
}

int st_scaled_eye(const ir_graph *g, ir_val v, ir_val *scale)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op == IR_OP_EYE && n->shape.rank == 2) {
        *scale = IR_NONE;
        return 1;
    }
    if (n->op != IR_OP_MUL || n->shape.rank != 2)
        return 0;
    for (int k = 0; k < 2; k++) {
        ir_val e = n->input[k], s = n->input[1 - k];
        if (ir_node_at(g, e)->op != IR_OP_EYE)
            continue;
        ir_val sc = st_broadcast_scalar(g, s);
        if (sc != IR_NONE) {
            *scale = sc;
            return 1;
        }
    }
    return 0;
}

int st_match_onehot(const ir_graph *g, ir_val z, st_onehot *oh)
{
    const ir_node *n = ir_node_at(g, z);
    if (n->shape.rank != 2)
        return 0;
    if (n->op == IR_OP_ONE_HOT) {
        *oh = (st_onehot){n->input[0], IR_NONE, n->shape.dim[0], n->shape.dim[1]};
        return 1;
    }
    if (n->op != IR_OP_MUL)
        return 0;
    for (int k = 0; k < 2; k++) {
        const ir_node *h = ir_node_at(g, n->input[k]);
        if (h->op != IR_OP_ONE_HOT)
            continue;
        ir_val x = st_row_broadcast(g, n->input[1 - k]);
        if (x == IR_NONE)
            continue;
        *oh = (st_onehot){h->input[0], x, n->shape.dim[0], n->shape.dim[1]};
        return 1;
    }
    return 0;
}

int st_match_blockdiag(const ir_graph *g, ir_val v, ir_val *block, int max, int *nblock)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op != IR_OP_CONCAT || n->shape.rank != 2 || n->attr[0] != 0 || n->ninput < 2 ||
        n->ninput > max)
        return 0;
    int nb = n->ninput;
    for (int i = 0; i < nb; i++) {
        const ir_node *row = ir_node_at(g, n->input[i]);
        if (row->op != IR_OP_CONCAT || row->attr[0] != 1 || row->ninput != nb)
            return 0;
        for (int j = 0; j < nb; j++)
            if (j != i && !st_is_zero(g, row->input[j]))
                return 0;
        block[i] = row->input[i];
    }
    *nblock = nb;
    return 1;
}

/* ---- emitters ---------------------------------------------------------------- */

ir_val st_matmul(ir_graph *ng, ir_val a, ir_val b, int ta, int tb)
{
    return ad_matmul(ng, a, b, ta, tb);
}

ir_val st_t(ir_graph *ng, ir_val x) { return ad_mT(ng, x); }

ir_val st_reshape(ir_graph *ng, ir_val x, int rank, const int64_t *dims)
{
    ir_shape s = {.rank = rank};
    for (int i = 0; i < rank; i++)
        s.dim[i] = dims[i];
    if (x != IR_NONE && ir_graph_ok(ng) && ir_shape_equal(ir_shape_of(ng, x), &s))
        return x;
    return ad_reshape(ng, x, &s);
}

ir_val st_as_scalar(ir_graph *ng, ir_val s) { return st_reshape(ng, s, 0, NULL); }

ir_val st_as_vector(ir_graph *ng, ir_val x)
{
    if (x == IR_NONE || !ir_graph_ok(ng))
        return IR_NONE;
    int64_t n = ir_shape_of(ng, x)->dim[0];
    return st_reshape(ng, x, 1, &n);
}

ir_val st_rowmul(ir_graph *ng, ir_val b, ir_val w)
{
    if (b == IR_NONE || w == IR_NONE || !ir_graph_ok(ng))
        return IR_NONE;
    ir_shape bs = *ir_shape_of(ng, b);
    const ir_shape *ws = ir_shape_of(ng, w);
    int64_t map[1] = {0};
    ir_val wb = ws->rank == 0 ? ir_broadcast_trailing(ng, w, &bs) : ad_broadcast(ng, w, &bs, map);
    return ir_binary(ng, IR_OP_MUL, b, wb);
}

ir_val st_fill_vector(ir_graph *ng, ir_val s, int64_t n)
{
    ir_shape vs = {.rank = 1, .dim = {n}};
    return ir_broadcast_trailing(ng, s, &vs);
}

ir_val st_segsum(ir_graph *ng, ir_val x, ir_val codes, int64_t nseg)
{
    if (x == IR_NONE || !ir_graph_ok(ng))
        return IR_NONE;
    ir_shape s = *ir_shape_of(ng, x);
    s.dim[0] = nseg;
    ir_val in[2] = {x, codes};
    return ir_add_node(ng, IR_OP_SEGSUM, 2, in, NULL, 0, &s, NULL);
}

ir_val st_gather(ir_graph *ng, ir_val x, ir_val codes)
{
    return ir_binary(ng, IR_OP_GATHER, x, codes);
}

ir_val st_concat(ir_graph *ng, int n, const ir_val *xs, int axis)
{
    if (n == 1)
        return xs[0];
    int64_t a = axis;
    return ir_add_node(ng, IR_OP_CONCAT, n, xs, &a, 1, NULL, NULL);
}

ir_val st_slice(ir_graph *ng, ir_val x, int axis, int64_t start, int64_t stop)
{
    if (x == IR_NONE || !ir_graph_ok(ng))
        return IR_NONE;
    if (start == 0 && ir_shape_of(ng, x)->dim[axis] == stop)
        return x;
    int64_t a[3] = {axis, start, stop};
    return ir_add_node(ng, IR_OP_SLICE, 1, &x, a, 3, NULL, NULL);
}

ir_val st_sum_all(ir_graph *ng, ir_val x)
{
    if (x == IR_NONE || !ir_graph_ok(ng))
        return IR_NONE;
    int r = ir_shape_of(ng, x)->rank;
    return r == 0 ? x : ad_sum(ng, x, ((int64_t)1 << r) - 1);
}

ir_val st_const(ir_graph *ng, double c) { return ir_scalar(ng, c); }

ir_val st_blockdiag(ir_graph *ng, int n, const ir_val *blocks)
{
    if (n == 1)
        return blocks[0];
    if (!ir_graph_ok(ng))
        return IR_NONE;
    ir_val *rows = ir_malloc((size_t)n * 2 * sizeof *rows);
    if (!rows) {
        ir_fail(&ng->err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        return IR_NONE;
    }
    ir_val *row = rows + n;
    for (int i = 0; i < n && ir_graph_ok(ng); i++) {
        for (int j = 0; j < n && ir_graph_ok(ng); j++) {
            if (i == j) {
                row[j] = blocks[i];
                continue;
            }
            ir_shape s = {.rank = 2,
                          .dim = {ir_shape_of(ng, blocks[i])->dim[0],
                                  ir_shape_of(ng, blocks[j])->dim[1]}};
            row[j] = ad_fill(ng, 0.0, &s);
        }
        rows[i] = ir_graph_ok(ng) ? st_concat(ng, n, row, 1) : IR_NONE;
    }
    ir_val v = ir_graph_ok(ng) ? st_concat(ng, n, rows, 0) : IR_NONE;
    ir_free(rows);
    return v;
}

ir_val st_logdet_chol(ir_graph *ng, ir_val l)
{
    ir_val s = st_sum_all(ng, ir_unary(ng, IR_OP_LOG, ir_unary(ng, IR_OP_DIAG, l)));
    return ir_binary(ng, IR_OP_MUL, st_const(ng, 2.0), s);
}

ir_val st_onehot_gram(ir_graph *ng, ir_val ca, ir_val xa, int64_t qa, ir_val cb, ir_val xb,
                      int64_t qb, int same_codes, ir_val w)
{
    if (!ir_graph_ok(ng))
        return IR_NONE;
    int64_t n = ir_shape_of(ng, ca)->dim[0];
    ir_val ww = w;
    if (xa != IR_NONE)
        ww = ww == IR_NONE ? xa : ir_binary(ng, IR_OP_MUL, ww, xa);
    if (xb != IR_NONE)
        ww = ww == IR_NONE ? xb : ir_binary(ng, IR_OP_MUL, ww, xb);
    if (ww == IR_NONE)
        ww = st_fill_vector(ng, st_const(ng, 1.0), n);
    if (same_codes && qa == qb)
        return ir_unary(ng, IR_OP_DIAG_EMBED, st_segsum(ng, ww, ca, qa));
    ir_val code = ir_binary(ng, IR_OP_ADD, st_rowmul(ng, ca, st_const(ng, (double)qb)), cb);
    int64_t dims[2] = {qa, qb};
    return st_reshape(ng, st_segsum(ng, ww, code, qa * qb), 2, dims);
}
