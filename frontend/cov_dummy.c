/* Design leaves of covariance trees: the one-hot (dummy) design of a factor,
 * interactions of two factors, and fixed user matrices; and the factor
 * coding of string data (levels sorted as R's factor() sorts them in the C
 * locale).  Codes are data: they enter the graph as a value (usually an
 * input), so a compiled model is called with new codes, while the number of
 * levels (and their names) is known when the model is built. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/cov.h"
#include "ir/alloc.h"

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

sj_cov *sj_cov_dummy(sj_graph *g, const char *name, sj_value codes, const char *nlevels,
                     const char *const *levels)
{
    const char *fn = "sj_cov_dummy";
    if (begin(g, name, fn) != 0)
        return NULL;
    const char *nm = name ? name : "";
    ir_val cv = fe_cov_arg(g, codes, fn, "codes");
    if (cv == IR_NONE)
        return NULL;
    const ir_shape *cs = ir_shape_of(g->ir, cv);
    if (cs->rank != 1) {
        char sb[128];
        fe_cov_fail(g, SJ_ERR_SHAPE, "%s: node '%s': codes must be a vector, got shape %s", fn, nm,
                    ir_shape_str(g->ir, cs, sb, sizeof sb));
        return NULL;
    }
    if (!nlevels || strcmp(nlevels, "?") == 0) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT,
                    "%s: node '%s': nlevels must be a dimension name or a size, got %s", fn, nm,
                    nlevels ? "\"?\"" : "NULL");
        return NULL;
    }
    int64_t nl;
    if (ir_graph_parse_dim(g->ir, nlevels, &nl) != 0) {
        fe_cov_error(g, fn);
        return NULL;
    }
    if (nl == 0 || (levels && !IR_DIM_IS_SIZE(nl))) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: node '%s': %s", fn, nm,
                    nl == 0 ? "nlevels is 0" : "level names need a decimal nlevels");
        return NULL;
    }
    sj_cov *c = fe_cov_new(g, FE_COV_DUMMY, name, 0, 0, fn);
    if (!c)
        return NULL;
    c->rows = cs->dim[0];
    c->cols = nl;
    c->data = codes;
    c->dim = ir_arena_strdup(&g->ir->arena, nlevels);
    if (!c->dim)
        goto oom;
    if (levels) {
        c->level = ir_arena_alloc(&g->ir->arena, (size_t)nl * sizeof *c->level);
        if (!c->level)
            goto oom;
        for (int64_t j = 0; j < nl; j++) {
            if (!levels[j]) {
                fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: node '%s': level name %" PRId64 " is NULL",
                            fn, nm, j);
                return NULL;
            }
            if (!(c->level[j] = ir_arena_strdup(&g->ir->arena, levels[j])))
                goto oom;
        }
    }
    return c;
oom:
    fe_cov_fail(g, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    return NULL;
}

sj_cov *sj_cov_dummy_interaction(sj_graph *g, const char *name, sj_cov *a, sj_cov *b)
{
    const char *fn = "sj_cov_dummy_interaction";
    if (begin(g, name, fn) != 0 || fe_cov_check_child(g, a, fn, "a") != 0 ||
        fe_cov_check_child(g, b, fn, "b") != 0)
        return NULL;
    const char *nm = name ? name : "";
    for (int k = 0; k < 2; k++) {
        const sj_cov *f = k ? b : a;
        if (f->kind != FE_COV_DUMMY || !IR_DIM_IS_SIZE(f->cols)) {
            fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT,
                        "%s: node '%s': %s (node %s) must be a dummy node with a decimal number of "
                        "levels", fn, nm, k ? "b" : "a", fe_cov_label(f));
            return NULL;
        }
    }
    if (ir_dim_conflict(a->rows, b->rows)) {
        fe_cov_fail(g, SJ_ERR_SHAPE, "%s: node '%s': the factors have %" PRId64 " and %" PRId64
                    " rows", fn, nm, a->rows, b->rows);
        return NULL;
    }
    int64_t na = a->cols, nb = b->cols;
    if (na > (INT64_C(1) << 24) / nb) {
        fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: node '%s': %" PRId64 " x %" PRId64
                    " levels is too many", fn, nm, na, nb);
        return NULL;
    }
    sj_value codes = sj_add(g, a->data, sj_mul(g, sj_scalar(g, (double)na), b->data));
    if (codes == SJ_INVALID) {
        fe_cov_error(g, fn);
        return NULL;
    }
    char nl[24];
    snprintf(nl, sizeof nl, "%" PRId64, na * nb);
    sj_cov *c = sj_cov_dummy(g, name, codes, nl, NULL);
    if (!c)
        return NULL;
    c->rows = ir_dim_merge(a->rows, b->rows);
    if (a->level && b->level) {
        c->level = ir_arena_alloc(&g->ir->arena, (size_t)(na * nb) * sizeof *c->level);
        for (int64_t j = 0; c->level && j < nb; j++)
            for (int64_t i = 0; i < na; i++) {
                size_t len = strlen(a->level[i]) + strlen(b->level[j]) + 2;
                char *s = ir_arena_alloc(&g->ir->arena, len);
                if (!s) {
                    c->level = NULL;
                    break;
                }
                snprintf(s, len, "%s:%s", a->level[i], b->level[j]);
                c->level[i + na * j] = s;
            }
        if (!c->level) {
            fe_cov_fail(g, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
            return NULL;
        }
    }
    return c;
}

sj_cov *sj_cov_fixed(sj_graph *g, const char *name, sj_value matrix)
{
    const char *fn = "sj_cov_fixed";
    if (begin(g, name, fn) != 0)
        return NULL;
    ir_val m = fe_cov_arg(g, matrix, fn, "matrix");
    if (m == IR_NONE)
        return NULL;
    const ir_shape *s = ir_shape_of(g->ir, m);
    if (s->rank != 2) {
        char sb[128];
        fe_cov_fail(g, SJ_ERR_SHAPE, "%s: node '%s': matrix must have rank 2, got shape %s", fn,
                    name ? name : "", ir_shape_str(g->ir, s, sb, sizeof sb));
        return NULL;
    }
    sj_cov *c = fe_cov_new(g, FE_COV_FIXED, name, 0, 0, fn);
    if (!c)
        return NULL;
    c->rows = s->dim[0];
    c->cols = s->dim[1];
    c->data = matrix;
    return c;
}

sj_value fe_cov_emit_dummy(sj_cov *c) { return sj_one_hot(c->g, c->data, c->dim); }

const char *sj_cov_column_name(const sj_cov *node, int64_t j)
{
    if (!fe_cov_valid(node) || node->kind != FE_COV_DUMMY || !node->level || j < 0 ||
        j >= node->cols)
        return NULL;
    return node->level[j];
}

/* ---- factor coding ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

sj_status sj_factor_levels(sj_graph *g, const char *const *strings, size_t n, double *codes,
                           int64_t *nlevels, const char *const **levels)
{
    const char *fn = "sj_factor_levels";
    if (!fe_graph_valid(g))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!ir_graph_ok(g->ir))
        return fe_ctx_fail(g->ctx, &g->ir->err);
    if ((n && (!strings || !codes)) || !nlevels || !levels)
        return fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                           !nlevels ? "nlevels" : !levels ? "levels" : !strings ? "strings" : "codes");
    if (n == 0)
        return fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: no strings (n is 0)", fn);
    for (size_t i = 0; i < n; i++)
        if (!strings[i])
            return fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: strings[%zu] is NULL", fn, i);
    const char **sorted = ir_malloc(n * sizeof *sorted);
    if (!sorted)
        return fe_cov_fail(g, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    memcpy(sorted, strings, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    size_t nl = 0;
    for (size_t i = 0; i < n; i++)
        if (nl == 0 || strcmp(sorted[nl - 1], sorted[i]) != 0)
            sorted[nl++] = sorted[i];
    const char **lv = ir_arena_alloc(&g->ir->arena, nl * sizeof *lv);
    for (size_t i = 0; lv && i < nl; i++)
        if (!(lv[i] = ir_arena_strdup(&g->ir->arena, sorted[i])))
            lv = NULL;
    ir_free(sorted);
    if (!lv)
        return fe_cov_fail(g, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    sj_status st = sj_factor_encode(g, (int64_t)nl, lv, strings, n, codes);
    if (st != SJ_OK)
        return st;
    *nlevels = (int64_t)nl;
    *levels = lv;
    return SJ_OK;
}

sj_status sj_factor_encode(sj_graph *g, int64_t nlevels, const char *const *levels,
                           const char *const *strings, size_t n, double *codes)
{
    const char *fn = "sj_factor_encode";
    if (!fe_graph_valid(g))
        return SJ_ERR_INVALID_ARGUMENT;
    if (!ir_graph_ok(g->ir))
        return fe_ctx_fail(g->ctx, &g->ir->err);
    if (nlevels < 1 || !levels || (n && (!strings || !codes)))
        return fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT, "%s: %s", fn,
                           nlevels < 1 ? "nlevels must be >= 1" : "a NULL array");
    for (int64_t j = 0; j < nlevels; j++)
        if (!levels[j] || (j && strcmp(levels[j - 1], levels[j]) >= 0))
            return fe_cov_fail(g, SJ_ERR_INVALID_ARGUMENT,
                               "%s: levels must be distinct, non-NULL and sorted (level %" PRId64 ")",
                               fn, j);
    for (size_t i = 0; i < n; i++) {
        const char *key = strings[i];
        const char *const *hit =
            key ? bsearch(&key, levels, (size_t)nlevels, sizeof *levels, cmp_str) : NULL;
        if (!hit)
            return fe_ctx_failf(g->ctx, SJ_ERR_UNKNOWN_NAME, "%s: row %zu: \"%s\" is not a level", fn,
                                i, key ? key : "(NULL)");
        codes[i] = (double)(hit - levels);
    }
    return SJ_OK;
}
