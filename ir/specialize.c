#include "ir/specialize.h"

#include <inttypes.h>
#include <string.h>

#include "ir/alloc.h"
#include "ir/problem.h"

typedef struct binding {
    int64_t size;    /* -1 while unbound */
    int input, axis; /* where it was bound, for messages */
} binding;

static sj_status bind_inputs(const ir_graph *g, const ir_shape *shapes, binding *b,
                             ir_err *err)
{
    char sa[128], sb[128];
    for (uint32_t i = 0; i < g->ninput; i++) {
        const ir_shape *decl = ir_shape_of(g, g->input[i]);
        const ir_shape *got = &shapes[i];
        const char *name = g->input_name[i];
        if (got->rank != decl->rank)
            return ir_fail(err, SJ_ERR_SHAPE, "input \"%s\" is declared %s (rank %d) but given rank %d",
                           name, ir_shape_str(g, decl, sa, sizeof sa), decl->rank, got->rank);
        for (int k = 0; k < got->rank; k++) {
            int64_t d = decl->dim[k], size = got->dim[k];
            if (size < 0 || size > ((int64_t)1 << 48))
                return ir_fail(err, SJ_ERR_INVALID_ARGUMENT,
                               "input \"%s\": axis %d has invalid size %" PRId64 " (0 to 2^48)",
                               name, k, size);
            if (IR_DIM_IS_SIZE(d) && d != size)
                return ir_fail(err, SJ_ERR_SHAPE,
                               "input \"%s\" is declared %s but given %s (axis %d must be %"
                               PRId64 ")", name, ir_shape_str(g, decl, sa, sizeof sa),
                               ir_shape_str(NULL, got, sb, sizeof sb), k, d);
            if (!IR_DIM_IS_SYM(d))
                continue;
            binding *s = &b[IR_DIM_SYM_INDEX(d)];
            if (s->size < 0) {
                *s = (binding){size, (int)i, k};
            } else if (s->size != size) {
                return ir_fail(err, SJ_ERR_SHAPE,
                               "dimension \"%s\" is %" PRId64 " in input \"%s\" (axis %d) but %"
                               PRId64 " in input \"%s\" (axis %d)",
                               g->sym[IR_DIM_SYM_INDEX(d)], s->size, g->input_name[s->input],
                               s->axis, size, name, k);
            }
        }
    }
    return SJ_OK;
}

static ir_shape resolve(const ir_shape *s, const binding *b)
{
    ir_shape r = *s;
    for (int k = 0; k < r.rank; k++)
        if (IR_DIM_IS_SYM(r.dim[k]) && b[IR_DIM_SYM_INDEX(r.dim[k])].size >= 0)
            r.dim[k] = b[IR_DIM_SYM_INDEX(r.dim[k])].size;
    return r;
}

/* A declared reshape shape may hold sizes derived at build time (IR_DIM_ANY,
 * e.g. a vector sliced from a symbolic axis that sj_matmul gives a unit axis).
 * They are recovered from the input x, now concrete: when the reshape only
 * inserts or removes one unit axis, axis by axis; otherwise a single unknown
 * is the element count divided by the known sizes (NumPy's -1).  Anything else
 * stays unknown and is reported by the caller.  A user's sj_reshape with one
 * "?" gets the same inference. */
/* A size still to be found: derived (IR_DIM_ANY) or an anonymous "?" that no
 * input binds.  A named dimension must be bound by an input. */
static int open_dim(const ir_graph *g, int64_t d)
{
    if (IR_DIM_IS_SIZE(d))
        return 0;
    if (!IR_DIM_IS_SYM(d))
        return 1;
    int k = IR_DIM_SYM_INDEX(d);
    return k < (int)g->nsym && g->sym[k][0] == '?';
}

static void fill_reshape(const ir_graph *g, const ir_shape *x, ir_shape *d)
{
    for (int k = 0; k < d->rank; k++)
        if (!IR_DIM_IS_SIZE(d->dim[k]) && !open_dim(g, d->dim[k]))
            return;
    int nunknown = 0;
    for (int k = 0; k < d->rank; k++)
        nunknown += !IR_DIM_IS_SIZE(d->dim[k]);
    if (!nunknown)
        return;
    const ir_shape *lo = d->rank < x->rank ? d : x, *hi = d->rank < x->rank ? x : d;
    if (hi->rank == lo->rank + 1) {
        for (int at = 0; at < hi->rank; at++) {
            if (hi->dim[at] != 1)
                continue;
            int fits = 1;
            for (int k = 0, j = 0; fits && k < hi->rank; k++) {
                if (k == at)
                    continue;
                int64_t u = hi->dim[k], v = lo->dim[j++];
                fits = !IR_DIM_IS_SIZE(u) || !IR_DIM_IS_SIZE(v) || u == v;
            }
            if (!fits)
                continue;
            for (int k = 0, j = 0; k < hi->rank; k++) {
                if (k == at) {
                    if (hi == d)
                        d->dim[k] = 1;
                    continue;
                }
                if (hi == d)
                    d->dim[k] = IR_DIM_IS_SIZE(d->dim[k]) ? d->dim[k] : x->dim[j];
                else
                    d->dim[j] = IR_DIM_IS_SIZE(d->dim[j]) ? d->dim[j] : x->dim[k];
                j++;
            }
            return;
        }
    }
    if (nunknown != 1)
        return;
    size_t known = 1;
    int at = -1;
    for (int k = 0; k < d->rank; k++) {
        if (IR_DIM_IS_SIZE(d->dim[k]))
            known *= (size_t)d->dim[k];
        else
            at = k;
    }
    size_t total = ir_shape_numel(x);
    if (known && total % known == 0)
        d->dim[at] = (int64_t)(total / known);
}

/* A broadcast's declared output axes of unknown (derived) size take the size
 * of the input axis mapped to them, when that axis is not stretched. */
static void fill_broadcast(const ir_graph *g, const ir_node *n, const ir_shape *x, ir_shape *d)
{
    for (int i = 0; i < x->rank; i++) {
        int64_t to = n->attr[i];
        if (to >= 0 && to < d->rank && open_dim(g, d->dim[to]) && x->dim[i] != 1)
            d->dim[to] = x->dim[i];
    }
}

/* The name of the first symbol of s that no input binds, or NULL. */
static const char *unbound_name(const ir_graph *g, const ir_shape *s)
{
    for (int k = 0; k < s->rank; k++)
        if (IR_DIM_IS_SYM(s->dim[k]) && IR_DIM_SYM_INDEX(s->dim[k]) < (int)g->nsym)
            return g->sym[IR_DIM_SYM_INDEX(s->dim[k])];
    return NULL;
}

/* Specialises sub-graph sub (NULL: none) of a fit node to the per-item
 * shapes of its inputs. */
static sj_status specialize_sub(const ir_graph *sub, const ir_shape *shapes, uint32_t v,
                                const char *what, ir_graph **out, ir_err *err)
{
    *out = NULL;
    if (!sub)
        return SJ_OK;
    ir_err e = {0};
    if (ir_specialize(sub, shapes, out, &e) != SJ_OK)
        return ir_fail(err, e.status, "fit (value %%%u): %s: %s", v, what, e.msg);
    return SJ_OK;
}

/* A fit node's problem, specialised to the shapes of the node's inputs in
 * out, becomes a new problem of out; attr[0] is set to its index.  (One
 * problem per fit node: two nodes of one problem may see different shapes.) */
static sj_status specialize_fit(const ir_graph *g, const ir_node *n, uint32_t v, ir_graph *out,
                                int64_t *attr, ir_err *err)
{
    const ir_problem *p = ir_graph_problem(g, n->attr[0]);
    if (!p || !p->objective)
        return ir_fail(err, SJ_ERR_INTERNAL, "fit (value %%%u): problem %" PRId64 " is not in "
                       "the graph", v, n->attr[0]);
    ir_shape *shapes = ir_malloc((size_t)n->ninput * sizeof *shapes);
    if (!shapes)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while specialising");
    for (int i = 0; i < n->ninput; i++)
        shapes[i] = ir_fit_item_shape(out, n, i);
    ir_problem q = *p;
    q.objective = q.curvature = q.gradient = q.hessian = NULL;
    sj_status st = SJ_OK;
    if (p->objective->ninput != (uint32_t)n->ninput)
        st = ir_fail(err, SJ_ERR_SHAPE, "fit (value %%%u): the objective takes %u inputs, the fit "
                     "gives it %d", v, p->objective->ninput, n->ninput);
    else if (p->curvature && p->curvature->ninput != (uint32_t)n->ninput)
        st = ir_fail(err, SJ_ERR_SHAPE, "fit (value %%%u): the curvature takes %u inputs, the fit "
                     "gives it %d", v, p->curvature->ninput, n->ninput);
    if (st == SJ_OK)
        st = specialize_sub(p->objective, shapes, v, "objective", &q.objective, err);
    if (st == SJ_OK)
        st = specialize_sub(p->curvature, shapes, v, "curvature", &q.curvature, err);
    if (st == SJ_OK)
        st = specialize_sub(p->gradient, shapes, v, "gradient", &q.gradient, err);
    if (st == SJ_OK)
        st = specialize_sub(p->hessian, shapes, v, "hessian", &q.hessian, err);
    ir_free(shapes);
    if (st != SJ_OK) {
        ir_problem_clear(&q);
        return st;
    }
    int k = ir_graph_add_problem(out, &q);
    if (k < 0)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while specialising");
    attr[0] = k;
    return SJ_OK;
}

static sj_status copy_nodes(const ir_graph *g, const ir_shape *shapes, const binding *b,
                            ir_graph *out, ir_err *err)
{
    for (uint32_t v = 0; v < g->nnode; v++) {
        const ir_node *n = ir_node_at(g, v);
        ir_shape decl = n->op == IR_OP_INPUT ? shapes[n->attr[0]] : resolve(&n->shape, b);
        if (n->op == IR_OP_RESHAPE)
            fill_reshape(g, ir_shape_of(out, n->input[0]), &decl);
        else if (n->op == IR_OP_BROADCAST)
            fill_broadcast(g, n, ir_shape_of(out, n->input[0]), &decl);
        /* Shapes that are declared rather than inferred must be concrete now. */
        int declared = ir_op_kind(n->op) == IR_KIND_SOURCE || n->op == IR_OP_RESHAPE ||
                       n->op == IR_OP_BROADCAST || n->op == IR_OP_SEGSUM ||
                       n->op == IR_OP_ONE_HOT;
        int64_t need = n->op == IR_OP_SEGSUM ? 0 : n->op == IR_OP_ONE_HOT ? 1 : -1;
        for (int k = 0; declared && k < decl.rank; k++) {
            if (IR_DIM_IS_SIZE(decl.dim[k]) || (need >= 0 && k != need))
                continue;
            char sa[128];
            const char *sym = unbound_name(g, &decl);
            if (sym && sym[0] != '?')
                return ir_fail(err, SJ_ERR_SHAPE,
                               "%s (value %%%u) has shape %s: dimension \"%s\" is bound by no input",
                               ir_op_name(n->op), v, ir_shape_str(g, &n->shape, sa, sizeof sa), sym);
            return ir_fail(err, SJ_ERR_SHAPE,
                           "%s (value %%%u) has shape %s: axis %d has a size no input binds",
                           ir_op_name(n->op), v, ir_shape_str(g, &n->shape, sa, sizeof sa), k);
        }
        int64_t attr[IR_NATTR];
        memcpy(attr, n->attr, sizeof attr);
        if (n->op == IR_OP_FIT) {
            sj_status st = specialize_fit(g, n, v, out, attr, err);
            if (st != SJ_OK)
                return st;
        }
        ir_val nv = ir_add_node(out, n->op, n->ninput, n->input, attr, IR_NATTR, &decl,
                                n->data);
        if (nv == IR_NONE)
            return ir_fail(err, out->err.status, "%s", out->err.msg);
        if (n->op == IR_OP_FIT && ir_fit_check(out, nv, err) != SJ_OK)
            return err->status;
        if (!ir_shape_is_concrete(ir_shape_of(out, nv))) {
            char sa[128];
            return ir_fail(err, SJ_ERR_INTERNAL, "%s (value %%%u): shape %s is not concrete after "
                           "specialisation", ir_op_name(n->op), v,
                           ir_shape_str(g, ir_shape_of(out, nv), sa, sizeof sa));
        }
    }
    return SJ_OK;
}

sj_status ir_specialize(const ir_graph *g, const ir_shape *shapes, ir_graph **out, ir_err *err)
{
    *out = NULL;
    binding *b = ir_malloc((g->nsym ? g->nsym : 1) * sizeof *b);
    ir_graph *s = ir_graph_new();
    if (!b || !s) {
        ir_free(b);
        ir_graph_free(s);
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while specialising");
    }
    for (uint32_t k = 0; k < g->nsym; k++)
        b[k] = (binding){-1, -1, -1};
    sj_status st = bind_inputs(g, shapes, b, err);
    if (st == SJ_OK)
        st = copy_nodes(g, shapes, b, s, err);
    for (uint32_t i = 0; st == SJ_OK && i < g->ninput; i++) {
        /* Same input list as g: names and positions. */
        if (ir_add_input_alias(s, g->input[i], g->input_name[i]) != 0)
            st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while specialising");
    }
    if (st == SJ_OK && ir_graph_set_outputs(s, g->noutput, g->output) != SJ_OK)
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "out of memory while specialising");
    ir_free(b);
    if (st != SJ_OK) {
        ir_graph_free(s);
        return st;
    }
    *out = s;
    return SJ_OK;
}
