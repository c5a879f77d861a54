/* Covariance tree leaves with parameters: identity, σ²I, diagonal,
 * equicorrelation, compound symmetry, AR(1), unstructured (Cholesky factor)
 * and lower triangular.  Each constructor validates its arguments and sets
 * the default parameters; fe_cov_emit_leaf turns the natural-scale
 * parameter vector into the matrix with ordinary ops, so dV/dθ comes from
 * the differentiation passes.  Formulas follow torch_openreml's matrices
 * (ScalarMatrix, DiagonalMatrix, EquicorrelationMatrix,
 * CompoundSymmetricMatrix, AR1Matrix, UnconstrainedMatrix,
 * LowerTriangularMatrix). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "frontend/cov.h"
#include "ir/alloc.h"

/* Largest size of a leaf that needs an n × n constant or n² parameters. */
enum { MAX_DENSE = 4096, MAX_DIAG = 1 << 20 };

/* Checks the graph and the node name; 0 to go on. */
static int begin(sj_graph *g, const char *name, const char *fn)
{
    if (!fe_cov_graph_ok(g))
        return -1;
    if (name && strchr(name, '/')) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT,
                    "%s: node name '%s' contains '/', which separates parameter paths", fn, name);
        return -1;
    }
    return 0;
}

static int check_size(sj_graph *g, const char *name, int64_t n, int64_t lo, int64_t hi,
                      const char *fn, const char *what)
{
    if (n < lo || n > hi) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: node '%s': %s %" PRId64 " is outside %" PRId64
                    "..%" PRId64, fn, name ? name : "", what, n, lo, hi);
        return -1;
    }
    return 0;
}

/* A named or sized dimension (not "?"). */
static int parse_dim(sj_graph *g, const char *name, const char *dim, int64_t *d, const char *fn)
{
    if (!dim || strcmp(dim, "?") == 0) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT,
                    "%s: node '%s': dim must be a dimension name or a size, got %s", fn,
                    name ? name : "", dim ? "\"?\"" : "NULL");
        return -1;
    }
    if (ir_graph_parse_dim(g->ir, dim, d) != 0) {
        fe_cov_error(g, fn);
        return -1;
    }
    if (*d == 0) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: node '%s': dim is 0", fn, name ? name : "");
        return -1;
    }
    return 0;
}

sj_cov *sj_cov_identity(sj_graph *g, const char *name, const char *dim)
{
    const char *fn = "sj_cov_identity";
    int64_t d;
    if (begin(g, name, fn) != 0 || parse_dim(g, name, dim, &d, fn) != 0)
        return NULL;
    sj_cov *c = fe_cov_new(g, FE_COV_IDENTITY, name, 0, 0, fn);
    if (!c)
        return NULL;
    c->rows = c->cols = d;
    c->dim = ir_arena_strdup(&g->ir->arena, dim);
    return c->dim ? c : (fe_cov_fail(g, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn), NULL);
}

sj_cov *sj_cov_scalar(sj_graph *g, const char *name, const char *dim, double init, sj_transform t)
{
    const char *fn = "sj_cov_scalar";
    int64_t d;
    if (begin(g, name, fn) != 0 || parse_dim(g, name, dim, &d, fn) != 0)
        return NULL;
    sj_cov *c = fe_cov_new(g, FE_COV_SCALAR, name, 1, 0, fn);
    if (!c || fe_cov_param_init(c, 0, "sigma2", init, t, fn) != 0)
        return NULL;
    c->rows = c->cols = d;
    c->dim = ir_arena_strdup(&g->ir->arena, dim);
    return c->dim ? c : (fe_cov_fail(g, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn), NULL);
}

sj_cov *sj_cov_diagonal(sj_graph *g, const char *name, int64_t dim, double init, sj_transform t)
{
    const char *fn = "sj_cov_diagonal";
    if (begin(g, name, fn) != 0 || check_size(g, name, dim, 1, MAX_DIAG, fn, "dim") != 0)
        return NULL;
    sj_cov *c = fe_cov_new(g, FE_COV_DIAGONAL, name, (int)dim, 0, fn);
    if (!c)
        return NULL;
    for (int i = 0; i < dim; i++) {
        char pn[32];
        snprintf(pn, sizeof pn, "sigma2_%d", i);
        if (fe_cov_param_init(c, i, pn, init, t, fn) != 0)
            return NULL;
    }
    c->rows = c->cols = dim;
    return c;
}

/* Leaves of a correlation ρ (with an optional variance first). */
static sj_cov *correlated(sj_graph *g, fe_cov_kind kind, const char *name, int64_t dim,
                          int64_t lo, double rho_lo, const char *fn)
{
    if (begin(g, name, fn) != 0 || check_size(g, name, dim, lo, MAX_DENSE, fn, "dim") != 0)
        return NULL;
    int has_var = kind != FE_COV_EQUICORR;
    sj_cov *c = fe_cov_new(g, kind, name, has_var + 1, 0, fn);
    if (!c)
        return NULL;
    if (has_var && fe_cov_param_init(c, 0, "sigma2", 1.0, sj_transform_exp2(), fn) != 0)
        return NULL;
    if (fe_cov_param_init(c, has_var, "rho", 0.0, sj_transform_sigmoid_range(rho_lo, 1.0), fn) != 0)
        return NULL;
    c->rows = c->cols = dim;
    return c;
}

sj_cov *sj_cov_equicorrelation(sj_graph *g, const char *name, int64_t dim)
{
    return correlated(g, FE_COV_EQUICORR, name, dim, 2, dim > 1 ? -1.0 / (double)(dim - 1) : -1,
                      "sj_cov_equicorrelation");
}

sj_cov *sj_cov_compound_symmetric(sj_graph *g, const char *name, int64_t dim)
{
    return correlated(g, FE_COV_COMPSYM, name, dim, 2, dim > 1 ? -1.0 / (double)(dim - 1) : -1,
                      "sj_cov_compound_symmetric");
}

sj_cov *sj_cov_ar1(sj_graph *g, const char *name, int64_t dim)
{
    return correlated(g, FE_COV_AR1, name, dim, 1, -1.0, "sj_cov_ar1");
}

/* Lower-triangular rows × cols: parameters L_i_j, i >= j, row by row. */
static sj_cov *lower(sj_graph *g, fe_cov_kind kind, const char *name, int64_t rows, int64_t cols,
                     const char *fn)
{
    if (begin(g, name, fn) != 0 || check_size(g, name, rows, 1, MAX_DENSE, fn, "rows") != 0 ||
        check_size(g, name, cols, 1, rows, fn, "cols") != 0)
        return NULL;
    int64_t np = 0;
    for (int64_t i = 0; i < rows; i++)
        np += (i < cols ? i : cols - 1) + 1;
    sj_cov *c = fe_cov_new(g, kind, name, (int)np, 0, fn);
    if (!c)
        return NULL;
    int k = 0;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j <= i && j < cols; j++) {
            char pn[48];
            snprintf(pn, sizeof pn, "L_%" PRId64 "_%" PRId64, i, j);
            sj_transform t = kind == FE_COV_UNSTRUCTURED && i == j ? sj_transform_exp()
                                                                   : sj_transform_identity();
            if (fe_cov_param_init(c, k++, pn, i == j ? 1.0 : 0.0, t, fn) != 0)
                return NULL;
        }
    c->rows = rows;
    c->cols = kind == FE_COV_UNSTRUCTURED ? rows : cols;
    return c;
}

sj_cov *sj_cov_unstructured(sj_graph *g, const char *name, int64_t dim)
{
    return lower(g, FE_COV_UNSTRUCTURED, name, dim, dim, "sj_cov_unstructured");
}

sj_cov *sj_cov_lower_triangular(sj_graph *g, const char *name, int64_t rows, int64_t cols)
{
    return lower(g, FE_COV_LOWER_TRI, name, rows, cols, "sj_cov_lower_triangular");
}

/* ---- emission ----------------------------------------------------------------- */

static const char *num(char *buf, int64_t n)
{
    snprintf(buf, 24, "%" PRId64, n);
    return buf;
}

/* The rows × cols lower-triangular matrix whose entries (i >= j, row by
 * row) are the elements of par: a gather of par (with a zero appended for
 * the upper part) by constant positions, reshaped. */
static sj_value lower_from(sj_graph *g, sj_value par, int64_t np, int64_t rows, int64_t cols)
{
    int64_t n = rows * cols, one = 1;
    double *idx = ir_malloc((size_t)n * sizeof *idx), zero = 0;
    if (!idx) {
        fe_cov_fail(g, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        return SJ_INVALID;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            idx[i * cols + j] = j <= i ? (double)k++ : (double)np;
    sj_value ci = sj_constant(g, 1, &n, idx);
    ir_free(idx);
    sj_value ext[2] = {par, sj_constant(g, 1, &one, &zero)};
    char r[24], c[24];
    const char *dims[2] = {num(r, rows), num(c, cols)};
    return sj_reshape(g, sj_gather(g, sj_concat(g, 2, ext, 0), ci), 2, dims);
}

sj_value fe_cov_emit_leaf(sj_cov *c, sj_value par)
{
    sj_graph *g = c->g;
    int64_t n = c->rows;
    char nb[24];
    const char *nn[2] = {NULL, NULL};
    if (IR_DIM_IS_SIZE(n))
        nn[0] = nn[1] = num(nb, n);
    switch (c->kind) {
    case FE_COV_IDENTITY:
        return sj_eye(g, c->dim);
    case FE_COV_SCALAR:
        return sj_mul(g, fe_cov_element(g, par, 0), sj_eye(g, c->dim));
    case FE_COV_DIAGONAL:
        return sj_diag_embed(g, par);
    case FE_COV_EQUICORR:
    case FE_COV_COMPSYM: {
        /* I + ρ (J − I), times σ² for compound symmetry. */
        sj_value eye = sj_eye(g, nn[0]);
        sj_value off = sj_sub(g, sj_broadcast_to(g, sj_scalar(g, 1.0), 2, nn), eye);
        sj_value rho = fe_cov_element(g, par, c->kind == FE_COV_COMPSYM);
        sj_value v = sj_add(g, eye, sj_mul(g, rho, off));
        return c->kind == FE_COV_COMPSYM ? sj_mul(g, fe_cov_element(g, par, 0), v) : v;
    }
    case FE_COV_AR1: {
        /* σ² ρ^|i−j|; pow's derivative in its base is taken as 0 where the
         * exponent is 0 (docs/autodiff.md), so the diagonal is exact. */
        double *lag = ir_malloc((size_t)(n * n) * sizeof *lag);
        if (!lag) {
            fe_cov_fail(g, SJ_ERR_OUT_OF_MEMORY, "out of memory");
            return SJ_INVALID;
        }
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                lag[i * n + j] = (double)(i > j ? i - j : j - i);
        int64_t shape[2] = {n, n};
        sj_value d = sj_constant(g, 2, shape, lag);
        ir_free(lag);
        return sj_mul(g, fe_cov_element(g, par, 0), sj_pow(g, fe_cov_element(g, par, 1), d));
    }
    case FE_COV_UNSTRUCTURED: {
        sj_value l = lower_from(g, par, c->nparam, n, n);
        return sj_matmul(g, l, sj_mT(g, l));
    }
    case FE_COV_LOWER_TRI:
        return lower_from(g, par, c->nparam, c->rows, c->cols);
    case FE_COV_FIXED:
        return c->data;
    default:
        fe_cov_fail(g, SJ_ERR_INTERNAL, "not a leaf with parameters");
        return SJ_INVALID;
    }
}
