/* Covariance tree operators: sum, block diagonal, propagation Z G Zᵀ,
 * Kronecker and Hadamard products, Gram matrices (torch_openreml's
 * OperatorSum, OperatorBlockDiagonal, OperatorCovariancePropagation,
 * OperatorKroneckerProduct, OperatorHadamardProduct, OperatorGram).  The
 * constructors check the children's shapes as far as they are known at
 * build time; specialisation checks the rest. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "frontend/cov.h"

enum { MAX_CHILDREN = 4096 };

static const char *dims(const sj_graph *g, const sj_cov *c, char *buf, size_t size)
{
    ir_shape s = {.rank = 2, .dim = {c->rows, c->cols}};
    return ir_shape_str(g->ir, &s, buf, size);
}

/* A new operator with children kids[0..n-1] after the common checks. */
static sj_cov *op_new(sj_graph *g, fe_cov_kind kind, const char *name, int n,
                      sj_cov *const *kids, const char *fn)
{
    if (!fe_cov_graph_ok(g))
        return NULL;
    if (name && strchr(name, '/')) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT,
                    "%s: node name '%s' contains '/', which separates parameter paths", fn, name);
        return NULL;
    }
    if (n < 1 || n > MAX_CHILDREN || !kids) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: node '%s' needs 1..%d children, got %d%s", fn,
                    name ? name : "", MAX_CHILDREN, n, kids ? "" : " (children is NULL)");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        char what[32];
        snprintf(what, sizeof what, "child %d", i);
        if (fe_cov_check_child(g, kids[i], fn, what) != 0)
            return NULL;
    }
    sj_cov *c = fe_cov_new(g, kind, name, 0, n, fn);
    if (!c)
        return NULL;
    memcpy(c->child, kids, (size_t)n * sizeof *kids);
    return c;
}

static sj_cov *shape_error(sj_graph *g, const char *fn, const char *name, const char *what,
                           const sj_cov *a, const sj_cov *b)
{
    char sa[128], sb[128];
    fe_cov_fail(g, SJ_ERR_SHAPE, "%s: node '%s': %s: node %s is %s and node %s is %s", fn,
                name ? name : "", what, fe_cov_label(a), dims(g, a, sa, sizeof sa), fe_cov_label(b),
                dims(g, b, sb, sizeof sb));
    return NULL;
}

sj_cov *sj_cov_sum(sj_graph *g, const char *name, int n, sj_cov *const *children)
{
    const char *fn = "sj_cov_sum";
    sj_cov *c = op_new(g, FE_COV_SUM, name, n, children, fn);
    if (!c)
        return NULL;
    c->rows = children[0]->rows;
    c->cols = children[0]->cols;
    for (int i = 1; i < n; i++) {
        const sj_cov *k = children[i];
        if (ir_dim_conflict(c->rows, k->rows) || ir_dim_conflict(c->cols, k->cols))
            return shape_error(g, fn, name, "terms of different shapes", children[0], k);
        c->rows = ir_dim_merge(c->rows, k->rows);
        c->cols = ir_dim_merge(c->cols, k->cols);
    }
    return c;
}

sj_cov *sj_cov_block_diagonal(sj_graph *g, const char *name, int n, sj_cov *const *children)
{
    const char *fn = "sj_cov_block_diagonal";
    sj_cov *c = op_new(g, FE_COV_BLOCK_DIAG, name, n, children, fn);
    if (!c)
        return NULL;
    int64_t rows = 0, cols = 0;
    int sized = 1;
    for (int i = 0; i < n; i++) {
        const sj_cov *k = children[i];
        if (n > 1 && (k->rows == IR_DIM_ANY || k->cols == IR_DIM_ANY)) {
            char sb[128];
            fe_cov_fail(g, SJ_ERR_SHAPE,
                        "%s: node '%s': child %d (node %s, %s) has a derived size; blocks need "
                        "sizes or dimension names", fn, name ? name : "", i, fe_cov_label(k),
                        dims(g, k, sb, sizeof sb));
            return NULL;
        }
        sized = sized && IR_DIM_IS_SIZE(k->rows) && IR_DIM_IS_SIZE(k->cols);
        if (sized) {
            rows += k->rows;
            cols += k->cols;
        }
    }
    c->rows = n == 1 ? children[0]->rows : sized ? rows : IR_DIM_ANY;
    c->cols = n == 1 ? children[0]->cols : sized ? cols : IR_DIM_ANY;
    return c;
}

sj_cov *sj_cov_propagate(sj_graph *g, const char *name, sj_cov *z, sj_cov *gcov)
{
    const char *fn = "sj_cov_propagate";
    sj_cov *kids[2] = {z, gcov};
    sj_cov *c = op_new(g, FE_COV_PROPAGATE, name, 2, kids, fn);
    if (!c)
        return NULL;
    if (ir_dim_conflict(gcov->rows, gcov->cols))
        return shape_error(g, fn, name, "G must be square", gcov, gcov);
    if (ir_dim_conflict(z->cols, gcov->rows))
        return shape_error(g, fn, name, "columns of Z and rows of G differ", z, gcov);
    c->rows = c->cols = z->rows;
    return c;
}

sj_cov *sj_cov_kron(sj_graph *g, const char *name, sj_cov *a, sj_cov *b)
{
    sj_cov *kids[2] = {a, b};
    sj_cov *c = op_new(g, FE_COV_KRON, name, 2, kids, "sj_cov_kron");
    if (!c)
        return NULL;
    int rs = IR_DIM_IS_SIZE(a->rows) && IR_DIM_IS_SIZE(b->rows);
    int cs = IR_DIM_IS_SIZE(a->cols) && IR_DIM_IS_SIZE(b->cols);
    c->rows = rs ? a->rows * b->rows : a->rows == 1 ? b->rows : b->rows == 1 ? a->rows : IR_DIM_ANY;
    c->cols = cs ? a->cols * b->cols : a->cols == 1 ? b->cols : b->cols == 1 ? a->cols : IR_DIM_ANY;
    return c;
}

sj_cov *sj_cov_hadamard(sj_graph *g, const char *name, sj_cov *a, sj_cov *b)
{
    const char *fn = "sj_cov_hadamard";
    sj_cov *kids[2] = {a, b};
    sj_cov *c = op_new(g, FE_COV_HADAMARD, name, 2, kids, fn);
    if (!c)
        return NULL;
    if (ir_dim_conflict(a->rows, b->rows) || ir_dim_conflict(a->cols, b->cols))
        return shape_error(g, fn, name, "factors of different shapes", a, b);
    c->rows = ir_dim_merge(a->rows, b->rows);
    c->cols = ir_dim_merge(a->cols, b->cols);
    return c;
}

sj_cov *sj_cov_gram(sj_graph *g, const char *name, sj_cov *x, sj_gram which)
{
    const char *fn = "sj_cov_gram";
    if (fe_cov_graph_ok(g) && which != SJ_GRAM_XTX && which != SJ_GRAM_XXT) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: node '%s': unknown sj_gram %d", fn,
                    name ? name : "", (int)which);
        return NULL;
    }
    sj_cov *c = op_new(g, FE_COV_GRAM, name, 1, &x, fn);
    if (!c)
        return NULL;
    c->gram = which;
    c->rows = c->cols = which == SJ_GRAM_XTX ? x->cols : x->rows;
    return c;
}

/* ---- emission ------------------------------------------------------------------- */

static sj_value block_diagonal(sj_cov *c, const sj_value *kids)
{
    sj_graph *g = c->g;
    int n = c->nchild;
    if (n == 1)
        return kids[0];
    sj_value rows[MAX_CHILDREN], row[MAX_CHILDREN];
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++)
            row[j] = i == j ? kids[i] : fe_cov_zeros(g, c->child[i]->rows, c->child[j]->cols);
        rows[i] = sj_concat(g, n, row, 1);
    }
    return sj_concat(g, n, rows, 0);
}

sj_value fe_cov_emit_operator(sj_cov *c, const sj_value *kids)
{
    sj_graph *g = c->g;
    switch (c->kind) {
    case FE_COV_SUM: {
        sj_value v = kids[0];
        for (int i = 1; i < c->nchild; i++)
            v = sj_add(g, v, kids[i]);
        return v;
    }
    case FE_COV_BLOCK_DIAG:
        return block_diagonal(c, kids);
    case FE_COV_PROPAGATE:
        return sj_matmul(g, sj_matmul(g, kids[0], kids[1]), sj_mT(g, kids[0]));
    case FE_COV_KRON:
        return sj_kron(g, kids[0], kids[1]);
    case FE_COV_HADAMARD:
        return sj_mul(g, kids[0], kids[1]);
    case FE_COV_GRAM:
        return c->gram == SJ_GRAM_XTX ? sj_matmul(g, sj_mT(g, kids[0]), kids[0])
                                      : sj_matmul(g, kids[0], sj_mT(g, kids[0]));
    default:
        fe_cov_fail(g, SJ_ERR_INTERNAL, "not an operator");
        return SJ_INVALID;
    }
}
