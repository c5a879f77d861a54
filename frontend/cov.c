/* Covariance trees, the common part: node allocation, errors, parameter
 * setters, the parameter layout of a root (names, sealing) and
 * sj_cov_build.  The matrices themselves are emitted by cov_leaves.c,
 * cov_operators.c and cov_dummy.c; transforms live in cov_transform.c.
 * See docs/covariance.md. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "frontend/cov.h"
#include "ir/alloc.h"

/* ---- errors and handles ---------------------------------------------------- */

int fe_cov_graph_ok(const sj_graph *g) { return fe_graph_valid(g) && ir_graph_ok(g->ir); }

int fe_cov_valid(const sj_cov *c) { return c && c->magic == FE_MAGIC_COV && fe_graph_valid(c->g); }

sj_status fe_cov_fail(sj_graph *g, sj_status status, const char *fmt, ...)
{
    if (ir_graph_ok(g->ir)) {
        char msg[IR_ERR_MSG];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        ir_fail(&g->ir->err, status, "%s", msg);
    }
    return fe_ctx_fail(g->ctx, &g->ir->err);
}

sj_status fe_cov_error(sj_graph *g, const char *fn)
{
    ir_err *e = &g->ir->err;
    if (ir_graph_ok(g->ir))
        ir_fail(e, SJ_ERR_INTERNAL, "failed without a message");
    size_t len = strlen(fn);
    if (strncmp(e->msg, fn, len) != 0 || e->msg[len] != ':') {
        /* Prefix in place, truncating the end (as the builder does). */
        size_t room = sizeof e->msg - 1, shift = len + 2;
        size_t keep = strnlen(e->msg, room);
        keep = keep + shift > room ? (room > shift ? room - shift : 0) : keep;
        memmove(e->msg + shift, e->msg, keep);
        e->msg[shift + keep] = '\0';
        memcpy(e->msg, fn, len);
        e->msg[len] = ':';
        e->msg[len + 1] = ' ';
    }
    return fe_ctx_fail(g->ctx, e);
}

ir_val fe_cov_arg(sj_graph *g, sj_value v, const char *fn, const char *what)
{
    uint64_t u = (uint64_t)v;
    uint32_t serial = (uint32_t)(u >> 32), idx = (uint32_t)u;
    if (v == SJ_INVALID) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: %s is SJ_INVALID", fn, what);
        return IR_NONE;
    }
    if (v < 0 || serial != g->serial || idx >= g->ir->nnode) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: %s (id %" PRId64 ") is not a value of this graph",
                    fn, what, v);
        return IR_NONE;
    }
    return (ir_val)idx;
}

const char *fe_cov_label(const sj_cov *c) { return c->label; }

int fe_cov_check_child(sj_graph *g, const sj_cov *child, const char *fn, const char *what)
{
    if (!child) {
        if (ir_graph_ok(g->ir))
            fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, what);
        return -1;
    }
    if (child->magic != FE_MAGIC_COV) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: %s is not a covariance node", fn, what);
        return -1;
    }
    if (child->g != g) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: %s (node %s) belongs to another graph", fn,
                    what, fe_cov_label(child));
        return -1;
    }
    return 0;
}

sj_cov *fe_cov_new(sj_graph *g, fe_cov_kind kind, const char *name, int nparam, int nchild,
                   const char *fn)
{
    ir_arena *a = &g->ir->arena;
    sj_cov *c = ir_arena_alloc(a, sizeof *c);
    const char *nm = c ? ir_arena_strdup(a, name ? name : "") : NULL;
    char *label = NULL;
    if (nm && nm[0] && (label = ir_arena_alloc(a, strlen(nm) + 3)))
        snprintf(label, strlen(nm) + 3, "'%s'", nm);
    fe_cov_param *p = nparam && c ? ir_arena_alloc(a, (size_t)nparam * sizeof *p) : NULL;
    sj_cov **k = nchild && c ? ir_arena_alloc(a, (size_t)nchild * sizeof *k) : NULL;
    if (!c || !nm || (nm[0] && !label) || (nparam && !p) || (nchild && !k)) {
        fe_cov_fail(g, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    c->magic = FE_MAGIC_COV;
    c->kind = kind;
    c->g = g;
    c->name = nm;
    c->label = nm[0] ? label : "(unnamed)";
    c->nparam = nparam;
    c->param = p;
    c->nchild = nchild;
    c->child = k;
    c->data = SJ_INVALID;
    c->built = SJ_INVALID;
    return c;
}

/* Checks that init lies in the range of t (its inverse exists). */
static int check_value(sj_cov *c, const char *param, double v, const sj_transform *t,
                       const char *fn, const char *what)
{
    const char *bad = fe_transform_check(t);
    char buf[256];
    if (bad) {
        fe_cov_fail(c->g, SJ_ERR_INVALID_ARGUMENT, "%s: node %s, parameter '%s': %s", fn,
                    fe_cov_label(c), param, bad);
        return -1;
    }
    double x;
    if (!isfinite(v) || sj_transform_inverse(t, v, &x) != SJ_OK || !isfinite(x)) {
        fe_cov_fail(c->g, SJ_ERR_DOMAIN,
                    "%s: node %s, parameter '%s': %s %.17g is outside the range of its transform %s",
                    fn, fe_cov_label(c), param, what, v, fe_transform_str(t, buf, sizeof buf));
        return -1;
    }
    return 0;
}

int fe_cov_param_init(sj_cov *c, int i, const char *name, double init, sj_transform t,
                      const char *fn)
{
    fe_cov_param *p = &c->param[i];
    p->name = ir_arena_strdup(&c->g->ir->arena, name);
    if (!p->name) {
        fe_cov_fail(c->g, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return -1;
    }
    if (check_value(c, name, init, &t, fn, "initial value") != 0)
        return -1;
    p->tr = t;
    p->init = init;
    p->pos = -1;
    return 0;
}

/* ---- setters ---------------------------------------------------------------- */

/* The parameter of node called param, after the checks every setter makes. */
static fe_cov_param *setter_param(sj_cov *node, const char *param, const char *fn)
{
    if (!fe_cov_valid(node))
        return NULL;
    sj_graph *g = node->g;
    if (!ir_graph_ok(g->ir)) {
        fe_ctx_fail(g->ctx, &g->ir->err);
        return NULL;
    }
    if (!param) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: node %s: param is NULL", fn, fe_cov_label(node));
        return NULL;
    }
    if (node->sealed) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT,
                    "%s: node %s is sealed (its tree's parameters were counted or built); set "
                    "parameters before sj_cov_nparam or sj_cov_build", fn, fe_cov_label(node));
        return NULL;
    }
    for (int i = 0; i < node->nparam; i++)
        if (strcmp(node->param[i].name, param) == 0)
            return &node->param[i];
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; i < node->nparam && used < sizeof list - 1; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                 node->param[i].name);
    fe_cov_fail(g, SJ_ERR_UNKNOWN_NAME, "%s: node %s has no parameter '%s' (it has: %s)", fn,
                fe_cov_label(node), param, node->nparam ? list : "none");
    return NULL;
}

sj_status sj_cov_set_init(sj_cov *node, const char *param, double value)
{
    const char *fn = "sj_cov_set_init";
    fe_cov_param *p = setter_param(node, param, fn);
    if (!p)
        return fe_cov_valid(node) ? node->g->ir->err.status : SJ_ERR_INVALID_ARGUMENT;
    if (check_value(node, param, value, &p->tr, fn, "initial value") != 0)
        return node->g->ir->err.status;
    p->init = value;
    return SJ_OK;
}

sj_status sj_cov_set_transform(sj_cov *node, const char *param, sj_transform t)
{
    const char *fn = "sj_cov_set_transform";
    fe_cov_param *p = setter_param(node, param, fn);
    if (!p)
        return fe_cov_valid(node) ? node->g->ir->err.status : SJ_ERR_INVALID_ARGUMENT;
    if (check_value(node, param, p->init, &t, fn, "the initial value") != 0)
        return node->g->ir->err.status;
    p->tr = t;
    return SJ_OK;
}

sj_status sj_cov_fix(sj_cov *node, const char *param, double value)
{
    const char *fn = "sj_cov_fix";
    fe_cov_param *p = setter_param(node, param, fn);
    if (!p)
        return fe_cov_valid(node) ? node->g->ir->err.status : SJ_ERR_INVALID_ARGUMENT;
    if (!isfinite(value))
        return fe_cov_fail(node->g, SJ_ERR_DOMAIN, "%s: node %s, parameter '%s': value %g is not finite",
                           fn, fe_cov_label(node), param, value);
    p->fixed = 1;
    p->value = value;
    return SJ_OK;
}

sj_status sj_cov_unfix(sj_cov *node, const char *param)
{
    fe_cov_param *p = setter_param(node, param, "sj_cov_unfix");
    if (!p)
        return fe_cov_valid(node) ? node->g->ir->err.status : SJ_ERR_INVALID_ARGUMENT;
    p->fixed = 0;
    return SJ_OK;
}

/* ---- layout ------------------------------------------------------------------- */

typedef struct walk {
    sj_graph *g;
    fe_cov_slot *slot;
    int nslot, capslot;
    int failed;
} walk;

static int push_slot(walk *w, sj_cov *leaf, int index, const char *prefix)
{
    if (w->nslot == w->capslot) {
        int cap = w->capslot ? 2 * w->capslot : 16;
        fe_cov_slot *s = ir_realloc_array(w->slot, (size_t)cap, sizeof *s);
        if (!s)
            return -1;
        w->slot = s;
        w->capslot = cap;
    }
    const char *pn = leaf->param[index].name;
    size_t len = strlen(prefix) + strlen(leaf->name) + strlen(pn) + 2;
    char *full = ir_arena_alloc(&w->g->ir->arena, len);
    if (!full)
        return -1;
    snprintf(full, len, "%s%s%s%s", prefix, leaf->name, leaf->name[0] ? "/" : "", pn);
    w->slot[w->nslot++] = (fe_cov_slot){.leaf = leaf, .index = index, .name = full};
    return 0;
}

/* Depth-first, children in order; a node met again is skipped (its
 * parameters are shared).  Marks nodes visited and sealed. */
static void collect(walk *w, sj_cov *c, const char *prefix)
{
    if (w->failed || c->visit)
        return;
    c->visit = 1;
    c->sealed = 1;
    for (int i = 0; i < c->nparam; i++)
        if (!c->param[i].fixed && push_slot(w, c, i, prefix) != 0) {
            w->failed = 1;
            return;
        }
    if (!c->nchild)
        return;
    char buf[1024];
    const char *sub = prefix;
    if (c->name[0]) {
        snprintf(buf, sizeof buf, "%s%s/", prefix, c->name);
        sub = buf;
    }
    for (int i = 0; i < c->nchild; i++)
        collect(w, c->child[i], sub);
}

static void unmark(sj_cov *c)
{
    if (!c->visit)
        return;
    c->visit = 0;
    for (int i = 0; i < c->nchild; i++)
        unmark(c->child[i]);
}

/* The root's layout, computed (and the tree sealed) on first use.  -1 with
 * the error recorded. */
static int layout(sj_cov *root, const char *fn)
{
    if (!fe_cov_valid(root))
        return -1;
    sj_graph *g = root->g;
    if (!ir_graph_ok(g->ir)) {
        fe_ctx_fail(g->ctx, &g->ir->err);
        return -1;
    }
    if (root->has_layout)
        return 0;
    walk w = {.g = g};
    collect(&w, root, "");
    unmark(root);
    if (w.failed) {
        ir_free(w.slot);
        fe_cov_fail(g, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return -1;
    }
    for (int i = 0; i < w.nslot; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(w.slot[i].name, w.slot[j].name) == 0) {
                fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT,
                            "%s: two free parameters (%d and %d) of the tree under node %s are "
                            "named '%s'; give their nodes distinct names", fn, j, i,
                            fe_cov_label(root), w.slot[i].name);
                ir_free(w.slot);
                return -1;
            }
    fe_cov_slot *copy = NULL;
    if (w.nslot) {
        copy = ir_arena_dup(&g->ir->arena, w.slot, (size_t)w.nslot * sizeof *copy);
        ir_free(w.slot);
        if (!copy) {
            fe_cov_fail(g, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
            return -1;
        }
    }
    root->slot = copy;
    root->nslot = w.nslot;
    root->has_layout = 1;
    return 0;
}

int sj_cov_nparam(sj_cov *root)
{
    return layout(root, "sj_cov_nparam") == 0 ? root->nslot : -1;
}

/* Checks i against the layout (recording nothing on the graph: a query). */
static int slot_index(sj_cov *root, int i, const char *fn)
{
    if (layout(root, fn) != 0)
        return -1;
    if (i < 0 || i >= root->nslot) {
        fe_ctx_failf(root->g->ctx, SJ_ERR_INVALID_ARGUMENT,
                     "%s: parameter %d is out of range (node %s has %d free parameters)", fn, i,
                     fe_cov_label(root), root->nslot);
        return -1;
    }
    return 0;
}

const char *sj_cov_param_name(sj_cov *root, int i)
{
    return slot_index(root, i, "sj_cov_param_name") == 0 ? root->slot[i].name : NULL;
}

sj_status sj_cov_param_index(sj_cov *root, const char *name, int *index)
{
    const char *fn = "sj_cov_param_index";
    if (!fe_cov_valid(root))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!name || !index)
        return fe_ctx_failf(root->g->ctx, SJ_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                            name ? "index" : "name");
    if (layout(root, fn) != 0)
        return root->g->ir->err.status;
    for (int i = 0; i < root->nslot; i++)
        if (strcmp(root->slot[i].name, name) == 0) {
            *index = i;
            return SJ_OK;
        }
    return fe_ctx_failf(root->g->ctx, SJ_ERR_UNKNOWN_NAME,
                        "%s: the tree under node %s has no free parameter '%s'", fn,
                        fe_cov_label(root), name);
}

sj_status sj_cov_param_transform(sj_cov *root, int i, sj_transform *t)
{
    const char *fn = "sj_cov_param_transform";
    if (!fe_cov_valid(root))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!t)
        return fe_ctx_failf(root->g->ctx, SJ_ERR_INVALID_ARGUMENT, "%s: t is NULL", fn);
    if (slot_index(root, i, fn) != 0)
        return ir_graph_ok(root->g->ir) ? SJ_ERR_INVALID_ARGUMENT : root->g->ir->err.status;
    const fe_cov_slot *s = &root->slot[i];
    *t = s->leaf->param[s->index].tr;
    return SJ_OK;
}

sj_status sj_cov_init(sj_cov *root, double *theta, size_t n)
{
    const char *fn = "sj_cov_init";
    if (!fe_cov_valid(root))
        return SJ_ERR_INVALID_ARGUMENT;
    if (layout(root, fn) != 0)
        return root->g->ir->err.status;
    if (n != (size_t)root->nslot || (n && !theta))
        return fe_ctx_failf(root->g->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "%s: theta has room for %zu values%s, node %s has %d free parameters",
                            fn, n, theta ? "" : " (NULL)", fe_cov_label(root), root->nslot);
    for (int i = 0; i < root->nslot; i++) {
        const fe_cov_param *p = &root->slot[i].leaf->param[root->slot[i].index];
        if (sj_transform_inverse(&p->tr, p->init, &theta[i]) != SJ_OK)
            return fe_ctx_failf(root->g->ctx, SJ_ERR_INTERNAL, "%s: no raw value for '%s'", fn,
                                root->slot[i].name);
    }
    return SJ_OK;
}

/* ---- shapes ----------------------------------------------------------------------- */

const char *fe_cov_dim_str(sj_graph *g, int64_t d)
{
    char buf[32];
    if (IR_DIM_IS_SIZE(d)) {
        snprintf(buf, sizeof buf, "%" PRId64, d);
        return ir_arena_strdup(&g->ir->arena, buf);
    }
    if (IR_DIM_IS_SYM(d)) {
        const char *s = g->ir->sym[IR_DIM_SYM_INDEX(d)];
        if (s[0] != '?')
            return s;
    }
    return "?";
}

sj_status sj_cov_shape(const sj_cov *node, const char **rows, const char **cols)
{
    if (!fe_cov_valid(node))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!rows || !cols)
        return fe_ctx_failf(node->g->ctx, SJ_ERR_INVALID_ARGUMENT, "sj_cov_shape: %s is NULL",
                            rows ? "cols" : "rows");
    *rows = fe_cov_dim_str(node->g, node->rows);
    *cols = fe_cov_dim_str(node->g, node->cols);
    if (!*rows || !*cols)
        return fe_ctx_failf(node->g->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_cov_shape: out of memory");
    return SJ_OK;
}

/* ---- building ------------------------------------------------------------------------ */

sj_value fe_cov_element(sj_graph *g, sj_value vec, int64_t k)
{
    return sj_reshape(g, sj_slice(g, vec, 0, k, k + 1), 0, NULL);
}

sj_value fe_cov_zeros(sj_graph *g, int64_t rows, int64_t cols)
{
    ir_shape s = {.rank = 2, .dim = {rows, cols}};
    ir_val z = ir_scalar(g->ir, 0.0);
    ir_val v = z == IR_NONE ? IR_NONE : ir_broadcast_trailing(g->ir, z, &s);
    return fe_value(g, v);
}

typedef struct build {
    sj_graph *g;
    sj_value theta;
    uint32_t stamp;
    const char *fn;
} build;

/* A leaf's parameters in the natural scale as one vector: runs of fixed
 * parameters become constants, runs of free ones with consecutive θ
 * positions and one transform a slice of θ through that transform. */
static sj_value leaf_params(build *b, sj_cov *c)
{
    sj_graph *g = b->g;
    if (c->nparam == 0)
        return SJ_INVALID;
    sj_value piece[64], *pieces = piece;
    if (c->nparam > 64 && !(pieces = ir_malloc((size_t)c->nparam * sizeof *pieces))) {
        fe_cov_fail(g, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", b->fn);
        return SJ_INVALID;
    }
    int npiece = 0;
    for (int k = 0; k < c->nparam;) {
        const fe_cov_param *p = &c->param[k];
        int end = k + 1;
        if (p->fixed) {
            while (end < c->nparam && c->param[end].fixed)
                end++;
            double vals[256];
            int64_t len = end - k > 256 ? 256 : end - k;
            end = k + (int)len;
            for (int i = 0; i < len; i++)
                vals[i] = c->param[k + i].value;
            pieces[npiece++] = sj_constant(g, 1, &len, vals);
        } else {
            while (end < c->nparam && !c->param[end].fixed &&
                   c->param[end].pos == p->pos + (end - k) &&
                   fe_transform_equal(&c->param[end].tr, &p->tr))
                end++;
            sj_value raw = sj_slice(g, b->theta, 0, p->pos, p->pos + (end - k));
            pieces[npiece++] = fe_transform_emit(g, &p->tr, raw);
        }
        k = end;
    }
    sj_value v = npiece == 1 ? pieces[0] : sj_concat(g, npiece, pieces, 0);
    if (pieces != piece)
        ir_free(pieces);
    return v;
}

static const char *kind_name(fe_cov_kind k)
{
    static const char *const names[] = {
        [FE_COV_IDENTITY] = "identity", [FE_COV_SCALAR] = "scalar",
        [FE_COV_DIAGONAL] = "diagonal", [FE_COV_EQUICORR] = "equicorrelation",
        [FE_COV_COMPSYM] = "compound_symmetric", [FE_COV_AR1] = "ar1",
        [FE_COV_UNSTRUCTURED] = "unstructured", [FE_COV_LOWER_TRI] = "lower_triangular",
        [FE_COV_DUMMY] = "dummy", [FE_COV_FIXED] = "fixed", [FE_COV_SUM] = "sum",
        [FE_COV_BLOCK_DIAG] = "block_diagonal", [FE_COV_PROPAGATE] = "propagate",
        [FE_COV_KRON] = "kron", [FE_COV_HADAMARD] = "hadamard", [FE_COV_GRAM] = "gram"};
    return names[k];
}

static sj_value emit(build *b, sj_cov *c)
{
    if (c->stamp == b->stamp)
        return c->built;
    sj_value kids[64], *k = kids, v = SJ_INVALID;
    if (c->nchild > 64 && !(k = ir_malloc((size_t)c->nchild * sizeof *k))) {
        fe_cov_fail(b->g, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", b->fn);
        return SJ_INVALID;
    }
    int ok = 1;
    for (int i = 0; i < c->nchild && ok; i++)
        ok = (k[i] = emit(b, c->child[i])) != SJ_INVALID;
    if (ok) {
        if (c->nchild)
            v = fe_cov_emit_operator(c, k);
        else if (c->kind == FE_COV_DUMMY)
            v = fe_cov_emit_dummy(c);
        else {
            sj_value par = leaf_params(b, c);
            v = c->nparam && par == SJ_INVALID ? SJ_INVALID : fe_cov_emit_leaf(c, par);
        }
        if (v == SJ_INVALID && ir_graph_ok(b->g->ir))
            fe_cov_fail(b->g, SJ_ERR_INTERNAL, "emitted nothing");
        if (v == SJ_INVALID) { /* name the node where the failure happened */
            char pre[256];
            snprintf(pre, sizeof pre, "%s: node %s (%s)", b->fn, fe_cov_label(c), kind_name(c->kind));
            fe_cov_error(b->g, pre);
        }
    }
    if (k != kids)
        ir_free(k);
    c->stamp = b->stamp;
    c->built = v;
    return v;
}

sj_status sj_cov_build(sj_cov *root, sj_value theta, sj_value *v)
{
    static atomic_uint next_stamp = 1;
    const char *fn = "sj_cov_build";
    if (v)
        *v = SJ_INVALID;
    if (!fe_cov_valid(root))
        return SJ_ERR_INVALID_ARGUMENT;
    sj_graph *g = root->g;
    if (!v)
        return fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: v is NULL", fn);
    if (layout(root, fn) != 0)
        return g->ir->err.status;
    if (root->nslot > 0) {
        ir_val t = fe_cov_arg(g, theta, fn, "theta");
        if (t == IR_NONE)
            return g->ir->err.status;
        const ir_shape *s = ir_shape_of(g->ir, t);
        char sb[128];
        if (s->rank != 1 || (IR_DIM_IS_SIZE(s->dim[0]) && s->dim[0] != root->nslot))
            return fe_cov_fail(g, SJ_ERR_SHAPE,
                               "%s: theta must be a vector of the %d free parameters of node %s, "
                               "got shape %s", fn, root->nslot, fe_cov_label(root),
                               ir_shape_str(g->ir, s, sb, sizeof sb));
    }
    for (int i = 0; i < root->nslot; i++)
        root->slot[i].leaf->param[root->slot[i].index].pos = i;
    build b = {.g = g, .theta = theta, .stamp = atomic_fetch_add(&next_stamp, 1), .fn = fn};
    if (b.stamp == 0)
        b.stamp = atomic_fetch_add(&next_stamp, 1);
    sj_value out = emit(&b, root);
    if (out == SJ_INVALID)
        return fe_ctx_fail(g->ctx, &g->ir->err);
    *v = out;
    return SJ_OK;
}
