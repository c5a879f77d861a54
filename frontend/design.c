/* Terms + table -> design matrices (R's model.frame / model.matrix with
 * treatment contrasts, lme4's mkReTrms).
 *
 * Steps: evaluate every variable on every table row (numeric values, or a
 * factor's per-row labels); drop rows where any is missing; find each
 * factor's levels among the kept rows; code every term's columns.
 *
 * Coding of a factor inside a term follows R's TermCode (stats/src/model.c):
 * the factor gets contrasts (k - 1 treatment columns) when the term without
 * it is empty or contained in an earlier term, and indicator columns (k)
 * otherwise; without an intercept, the first factor of the first term that
 * has one gets indicators (modelmatrix's "no intercept" rule).  Columns of
 * an interaction vary fastest in its first variable. */
#define _GNU_SOURCE
#include "frontend/design.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/formula.h"
#include "ir/alloc.h"

typedef struct factor {
    const char **label; /* nrow_data: the level label of each row, NULL if missing */
    double *key;        /* nrow_data: numeric sort key (numeric sources) */
    int numeric;        /* levels sort by key, else by label */
    size_t nexplicit;   /* levels = c(...) given */
    const char *const *explicit_levels;
    /* after row selection */
    size_t nlevel;
    const char **levels;
    int *code; /* n (design rows) */
} factor;

typedef struct varinfo {
    int is_factor;
    double *val; /* numeric: nrow_data values */
    factor *f;   /* factor, or a numeric variable used as a grouping factor */
    int used_as_group;
} varinfo;

typedef struct builder {
    const fe_table *t;
    const char *src;
    ir_arena *scratch; /* freed at the end */
    ir_arena *out;     /* the design's arena */
    ir_err *err;
    fe_terms terms;
    varinfo *vi;
    fe_design *d;
} builder;

/* Allocation count for n items: at least one, so a zero-size table still gets memory. */
static size_t nz(size_t n) { return n ? n : 1; }

static sj_status oom(builder *b) { return ir_fail(b->err, SJ_ERR_OUT_OF_MEMORY, "formula: out of memory"); }

static const char *const math_fns[] = {"log", "exp", "sqrt", "abs", "log2", "log10", "log1p", "expm1"};

static sj_status unknown_column(builder *b, const fe_node *n)
{
    char names[300];
    fe_table_names(b->t, names, sizeof names);
    return fe_formula_fail(b->err, SJ_ERR_UNKNOWN_NAME, b->src, n->pos,
                           "unknown column '%s' (columns: %s)", n->name, names);
}

/* Evaluates a numeric expression on every table row (NaN where missing). */
static sj_status eval_num(builder *b, const fe_node *n, double **out)
{
    size_t nr = b->t->nrow;
    double *v = ir_arena_alloc(b->scratch, (nr ? nr : 1) * sizeof *v);
    if (!v)
        return oom(b);
    *out = v;
    sj_status st;
    double *a, *c;
    switch (n->kind) {
    case FE_N_NUM:
        for (size_t i = 0; i < nr; i++)
            v[i] = n->num;
        return SJ_OK;
    case FE_N_NAME: {
        long j = fe_table_find(b->t, n->name);
        if (j < 0)
            return unknown_column(b, n);
        const fe_column *col = &b->t->cols[j];
        if (col->type != FE_COL_NUMERIC)
            return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, n->pos,
                                   "column '%s' holds strings; it cannot be used in arithmetic",
                                   n->name);
        memcpy(v, col->num, nr * sizeof *v);
        return SJ_OK;
    }
    case FE_N_PAREN:
        if ((st = eval_num(b, n->a, &a)) != SJ_OK)
            return st;
        *out = a;
        return SJ_OK;
    case FE_N_UNARY:
        if ((st = eval_num(b, n->a, &a)) != SJ_OK)
            return st;
        for (size_t i = 0; i < nr; i++)
            v[i] = n->op == '-' ? -a[i] : a[i];
        return SJ_OK;
    case FE_N_BINARY:
        if (!strchr("+-*/^", n->op))
            return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, n->oppos,
                                   "operator '%s' cannot be used in arithmetic",
                                   n->op == 'B' ? "||" : (char[]){n->op, 0});
        if ((st = eval_num(b, n->a, &a)) != SJ_OK || (st = eval_num(b, n->b, &c)) != SJ_OK)
            return st;
        for (size_t i = 0; i < nr; i++)
            switch (n->op) {
            case '+': v[i] = a[i] + c[i]; break;
            case '-': v[i] = a[i] - c[i]; break;
            case '*': v[i] = a[i] * c[i]; break;
            case '/': v[i] = a[i] / c[i]; break;
            default: v[i] = pow(a[i], c[i]); break;
            }
        return SJ_OK;
    case FE_N_CALL: {
        int k = -1;
        if (strcmp(n->name, "I") != 0) {
            for (size_t q = 0; q < sizeof math_fns / sizeof *math_fns; q++)
                if (strcmp(n->name, math_fns[q]) == 0)
                    k = (int)q;
            if (k < 0) {
                if (!strcmp(n->name, "factor") || !strcmp(n->name, "as.factor") ||
                    !strcmp(n->name, "offset") || !strcmp(n->name, "cbind"))
                    return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, n->pos,
                                           "%s() cannot be used here", n->name);
                return fe_formula_fail(b->err, SJ_ERR_UNSUPPORTED, b->src, n->pos,
                                       "unsupported function '%s' (supported: I, factor, "
                                       "offset, cbind, log, exp, sqrt, abs, log2, log10, "
                                       "log1p, expm1)",
                                       n->name);
            }
        }
        if (n->nargs != 1 || n->args[0]->kind == FE_N_ARG)
            return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, n->pos,
                                   "%s() takes one argument", n->name);
        if ((st = eval_num(b, n->args[0], &a)) != SJ_OK)
            return st;
        for (size_t i = 0; i < nr; i++)
            switch (k) {
            case -1: v[i] = a[i]; break;
            case 0: v[i] = log(a[i]); break;
            case 1: v[i] = exp(a[i]); break;
            case 2: v[i] = sqrt(a[i]); break;
            case 3: v[i] = fabs(a[i]); break;
            case 4: v[i] = log2(a[i]); break;
            case 5: v[i] = log10(a[i]); break;
            case 6: v[i] = log1p(a[i]); break;
            default: v[i] = expm1(a[i]); break;
            }
        return SJ_OK;
    }
    case FE_N_STR:
        return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, n->pos,
                               "a string cannot be used in arithmetic");
    case FE_N_ARG:
        return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, n->pos, "unexpected '='");
    }
    return ir_fail(b->err, SJ_ERR_INTERNAL, "formula: unknown node");
}

/* The per-row labels of a factor made from n: a column of strings, or the
 * values of a numeric expression printed as R prints them. */
static sj_status factor_source(builder *b, const fe_node *n, factor *f)
{
    size_t nr = b->t->nrow;
    f->label = ir_arena_alloc(b->scratch, (nr ? nr : 1) * sizeof *f->label);
    f->key = ir_arena_alloc(b->scratch, (nr ? nr : 1) * sizeof *f->key);
    if (!f->label || !f->key)
        return oom(b);
    const fe_node *m = n;
    while (m->kind == FE_N_PAREN)
        m = m->a;
    int integer = 0;
    if (m->kind == FE_N_NAME) {
        long j = fe_table_find(b->t, m->name);
        if (j < 0)
            return unknown_column(b, m);
        const fe_column *col = &b->t->cols[j];
        if (col->type == FE_COL_STRING) {
            for (size_t i = 0; i < nr; i++)
                f->label[i] = col->str[i];
            return SJ_OK;
        }
        integer = col->integer;
    }
    double *v;
    sj_status st = eval_num(b, n, &v);
    if (st != SJ_OK)
        return st;
    f->numeric = 1;
    for (size_t i = 0; i < nr; i++) {
        f->key[i] = v[i];
        if (isnan(v[i])) {
            f->label[i] = NULL;
            continue;
        }
        char buf[64];
        if (integer)
            snprintf(buf, sizeof buf, "%lld", (long long)v[i]);
        else
            fe_format_num(buf, sizeof buf, v[i]);
        if (!(f->label[i] = ir_arena_strdup(b->scratch, buf)))
            return oom(b);
    }
    return SJ_OK;
}

/* factor(x), factor(x, levels = c("L", "M", "H")), as.factor(x). */
static sj_status factor_call(builder *b, const fe_node *n, factor *f)
{
    const fe_node *x = NULL, *levels = NULL;
    for (size_t i = 0; i < n->nargs; i++) {
        const fe_node *a = n->args[i];
        if (a->kind == FE_N_ARG && strcmp(a->name, "levels") == 0 && !levels &&
            strcmp(n->name, "factor") == 0)
            levels = a->a;
        else if (a->kind != FE_N_ARG && !x)
            x = a;
        else
            return fe_formula_fail(b->err, SJ_ERR_UNSUPPORTED, b->src, a->pos,
                                   "%s() takes a column and optionally levels = c(...)", n->name);
    }
    if (!x)
        return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, n->pos,
                               "%s() needs an argument", n->name);
    sj_status st = factor_source(b, x, f);
    if (st != SJ_OK || !levels)
        return st;
    if (levels->kind == FE_N_STR) {
        f->nexplicit = 1;
        f->explicit_levels = &levels->name;
        return SJ_OK;
    }
    if (levels->kind != FE_N_CALL || strcmp(levels->name, "c") != 0 || levels->nargs == 0)
        return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, levels->pos,
                               "levels must be given as c(\"a\", \"b\", ...)");
    const char **given = ir_arena_alloc(b->scratch, levels->nargs * sizeof *given);
    if (!given)
        return oom(b);
    f->explicit_levels = given;
    for (size_t i = 0; i < levels->nargs; i++) {
        const fe_node *a = levels->args[i];
        char buf[64];
        if (a->kind == FE_N_STR) {
            given[i] = a->name;
        } else if (a->kind == FE_N_NUM ||
                   (a->kind == FE_N_UNARY && a->op == '-' && a->a->kind == FE_N_NUM)) {
            fe_format_num(buf, sizeof buf, a->kind == FE_N_NUM ? a->num : -a->a->num);
            if (!(given[i] = ir_arena_strdup(b->scratch, buf)))
                return oom(b);
        } else {
            return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, a->pos,
                                   "a level must be a string or a number");
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(f->explicit_levels[k], f->explicit_levels[i]) == 0)
                return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, a->pos,
                                       "duplicate level \"%s\"", f->explicit_levels[i]);
    }
    f->nexplicit = levels->nargs;
    /* Values outside the given levels become missing, as in R. */
    for (size_t r = 0; r < b->t->nrow; r++) {
        if (!f->label[r])
            continue;
        size_t k = 0;
        while (k < f->nexplicit && strcmp(f->label[r], f->explicit_levels[k]) != 0)
            k++;
        if (k == f->nexplicit)
            f->label[r] = NULL;
    }
    return SJ_OK;
}

/* Classifies and evaluates variable k. */
static sj_status eval_var(builder *b, size_t k)
{
    const fe_node *n = b->terms.vars[k].expr;
    varinfo *v = &b->vi[k];
    const fe_node *m = n;
    while (m->kind == FE_N_PAREN)
        m = m->a;
    if (m->kind == FE_N_NAME) {
        long j = fe_table_find(b->t, m->name);
        if (j < 0)
            return unknown_column(b, m);
        if (b->t->cols[j].type == FE_COL_STRING)
            v->is_factor = 1;
    } else if (m->kind == FE_N_CALL &&
               (strcmp(m->name, "factor") == 0 || strcmp(m->name, "as.factor") == 0)) {
        v->is_factor = 1;
        if (!(v->f = ir_arena_alloc(b->scratch, sizeof *v->f)))
            return oom(b);
        return factor_call(b, m, v->f);
    } else if (m->kind == FE_N_CALL && strcmp(m->name, "cbind") == 0) {
        return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, m->pos,
                               "cbind() is allowed only as the response");
    }
    if (v->is_factor || v->used_as_group) {
        if (!(v->f = ir_arena_alloc(b->scratch, sizeof *v->f)))
            return oom(b);
        sj_status st = factor_source(b, n, v->f);
        if (st != SJ_OK || v->is_factor)
            return st;
    }
    return eval_num(b, n, &v->val);
}

typedef struct lvl_entry {
    const char *label;
    double key;
    size_t row; /* design row */
    int numeric;
} lvl_entry;

static int cmp_entry(const void *pa, const void *pb)
{
    const lvl_entry *a = pa, *b = pb;
    if (a->numeric) {
        if (a->key != b->key)
            return a->key < b->key ? -1 : 1;
    } else {
        int c = strcmp(a->label, b->label);
        if (c)
            return c;
    }
    return a->row < b->row ? -1 : a->row > b->row;
}

/* Levels and codes of a factor over the kept rows. */
static sj_status factor_levels(builder *b, factor *f)
{
    size_t n = b->d->n;
    f->code = ir_arena_alloc(b->scratch, (n ? n : 1) * sizeof *f->code);
    if (!f->code)
        return oom(b);
    if (f->nexplicit) {
        /* Given order; unused levels dropped. */
        size_t *used = ir_arena_alloc(b->scratch, f->nexplicit * sizeof *used);
        size_t *map = ir_arena_alloc(b->scratch, f->nexplicit * sizeof *map);
        f->levels = ir_arena_alloc(b->scratch, f->nexplicit * sizeof *f->levels);
        if (!used || !map || !f->levels)
            return oom(b);
        for (size_t i = 0; i < n; i++) {
            const char *l = f->label[b->d->rows[i]];
            size_t k = 0;
            while (strcmp(l, f->explicit_levels[k]) != 0)
                k++;
            used[k] = 1;
            f->code[i] = (int)k;
        }
        for (size_t k = 0; k < f->nexplicit; k++)
            if (used[k]) {
                map[k] = f->nlevel;
                f->levels[f->nlevel++] = f->explicit_levels[k];
            }
        for (size_t i = 0; i < n; i++)
            f->code[i] = (int)map[f->code[i]];
        return SJ_OK;
    }
    lvl_entry *e = ir_malloc((n ? n : 1) * sizeof *e);
    f->levels = ir_arena_alloc(b->scratch, (n ? n : 1) * sizeof *f->levels);
    if (!e || !f->levels) {
        ir_free(e);
        return oom(b);
    }
    for (size_t i = 0; i < n; i++) {
        size_t r = b->d->rows[i];
        e[i] = (lvl_entry){f->label[r], f->key[r], i, f->numeric};
    }
    qsort(e, n, sizeof *e, cmp_entry);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(e[i].label, e[i - 1].label) != 0)
            f->levels[f->nlevel++] = e[i].label;
        f->code[e[i].row] = (int)f->nlevel - 1;
    }
    ir_free(e);
    return SJ_OK;
}

/* ---- model matrix ---------------------------------------------------------- */

/* Columns of a model matrix, growing in the design's arena. */
typedef struct mcols {
    size_t ncol, cap;
    const char **names;
    double **cols; /* each n values (scratch) */
    size_t *assign;
} mcols;

static sj_status mcols_add(builder *b, mcols *m, const char *name, double *col, size_t assign)
{
    if (m->ncol == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        const char **names = ir_arena_alloc(b->scratch, cap * sizeof *names);
        double **cols = ir_arena_alloc(b->scratch, cap * sizeof *cols);
        size_t *as = ir_arena_alloc(b->scratch, cap * sizeof *as);
        if (!names || !cols || !as)
            return oom(b);
        if (m->ncol) {
            memcpy(names, m->names, m->ncol * sizeof *names);
            memcpy(cols, m->cols, m->ncol * sizeof *cols);
            memcpy(as, m->assign, m->ncol * sizeof *as);
        }
        m->names = names;
        m->cols = cols;
        m->assign = as;
        m->cap = cap;
    }
    m->names[m->ncol] = ir_arena_strdup(b->out, name);
    if (!m->names[m->ncol])
        return oom(b);
    m->cols[m->ncol] = col;
    m->assign[m->ncol++] = assign;
    return SJ_OK;
}

static int subset_of(const fe_term *a, const fe_term *b) /* a ⊆ b */
{
    size_t j = 0;
    for (size_t i = 0; i < a->nvar; i++) {
        while (j < b->nvar && b->vars[j] < a->vars[i])
            j++;
        if (j == b->nvar || b->vars[j] != a->vars[i])
            return 0;
    }
    return 1;
}

/* R's TermCode: 1 (contrasts) or 2 (indicators) for variable index k of term t. */
static int term_code(const fe_term *terms, size_t t, size_t k)
{
    const fe_term *term = &terms[t];
    if (term->nvar == 1)
        return 1;
    size_t red[term->nvar];
    fe_term r = {.nvar = 0, .vars = red};
    for (size_t i = 0; i < term->nvar; i++)
        if (i != k)
            red[r.nvar++] = term->vars[i];
    for (size_t u = 0; u < t; u++)
        if (subset_of(&r, &terms[u]))
            return 1;
    return 2;
}

/* Appends the model matrix of (terms, intercept) to m; assign values are
 * 1 + term index. */
static sj_status model_matrix(builder *b, const fe_term *terms, size_t nterm, int intercept,
                              mcols *m)
{
    size_t n = b->d->n;
    sj_status st;
    if (intercept) {
        double *one = ir_arena_alloc(b->scratch, (n ? n : 1) * sizeof *one);
        if (!one)
            return oom(b);
        for (size_t i = 0; i < n; i++)
            one[i] = 1;
        if ((st = mcols_add(b, m, "(Intercept)", one, 0)) != SJ_OK)
            return st;
    }
    /* The no-intercept rule: first factor of the first term holding one. */
    size_t full_t = (size_t)-1, full_k = 0;
    if (!intercept)
        for (size_t t = 0; t < nterm && full_t == (size_t)-1; t++)
            for (size_t k = 0; k < terms[t].nvar; k++) {
                varinfo *v = &b->vi[terms[t].vars[k]];
                if (v->is_factor && v->f->nlevel > 1) {
                    full_t = t;
                    full_k = k;
                    break;
                }
            }
    for (size_t t = 0; t < nterm; t++) {
        const fe_term *term = &terms[t];
        size_t nv = term->nvar;
        /* For each variable: first level and number of columns (1 if numeric). */
        size_t first[nv], count[nv], idx[nv];
        size_t total = 1;
        for (size_t k = 0; k < nv; k++) {
            varinfo *v = &b->vi[term->vars[k]];
            idx[k] = 0;
            if (!v->is_factor) {
                first[k] = 0;
                count[k] = 1;
            } else {
                int code = (t == full_t && k == full_k) ? 2 : term_code(terms, t, k);
                if (code == 1 && v->f->nlevel < 2)
                    return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src,
                                           b->terms.vars[term->vars[k]].expr->pos,
                                           "factor '%s' has %zu level%s in the rows used; "
                                           "contrasts need 2 or more",
                                           b->terms.vars[term->vars[k]].label, v->f->nlevel,
                                           v->f->nlevel == 1 ? "" : "s");
                first[k] = code == 1 ? 1 : 0;
                count[k] = v->f->nlevel - first[k];
            }
            total *= count[k];
        }
        for (size_t c = 0; c < total; c++) {
            double *col = ir_arena_alloc(b->scratch, (n ? n : 1) * sizeof *col);
            if (!col)
                return oom(b);
            char name[1024];
            size_t used = 0;
            name[0] = '\0';
            for (size_t i = 0; i < n; i++)
                col[i] = 1;
            for (size_t k = 0; k < nv; k++) {
                size_t var = term->vars[k];
                varinfo *v = &b->vi[var];
                const char *label = b->terms.vars[var].label;
                if (!v->is_factor) {
                    for (size_t i = 0; i < n; i++)
                        col[i] *= v->val[b->d->rows[i]];
                    used += (size_t)snprintf(name + used, used < sizeof name ? sizeof name - used : 0,
                                             "%s%s", k ? ":" : "", label);
                } else {
                    size_t level = first[k] + idx[k];
                    for (size_t i = 0; i < n; i++)
                        col[i] *= v->f->code[i] == (int)level;
                    used += (size_t)snprintf(name + used, used < sizeof name ? sizeof name - used : 0,
                                             "%s%s%s", k ? ":" : "", label, v->f->levels[level]);
                }
                if (used >= sizeof name)
                    used = sizeof name - 1;
            }
            if ((st = mcols_add(b, m, name, col, t + 1)) != SJ_OK)
                return st;
            /* Next combination; the first variable varies fastest. */
            for (size_t k = 0; k < nv; k++) {
                if (++idx[k] < count[k])
                    break;
                idx[k] = 0;
            }
        }
    }
    return SJ_OK;
}

static double *row_major(builder *b, const mcols *m)
{
    size_t n = b->d->n;
    double *x = ir_arena_alloc(b->out, nz(n * m->ncol) * sizeof *x);
    if (!x)
        return NULL;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m->ncol; j++)
            x[i * m->ncol + j] = m->cols[j][i];
    return x;
}

/* ---- grouping factors -------------------------------------------------------- */

typedef struct tuple {
    const int *codes; /* per component, strided */
    size_t stride, k, row;
} tuple;

static int cmp_tuple(const void *pa, const void *pb)
{
    const tuple *a = pa, *b = pb;
    for (size_t j = 0; j < a->k; j++) {
        int x = a->codes[j * a->stride + a->row], y = b->codes[j * b->stride + b->row];
        if (x != y)
            return x < y ? -1 : 1;
    }
    return a->row < b->row ? -1 : a->row > b->row;
}

/* The grouping factor of a bar: the interaction of its variables, levels
 * "a:x" ordered with the first component slowest, only those that occur. */
static sj_status group_factor(builder *b, const fe_bar *bar, fe_reterm *re)
{
    size_t n = b->d->n, k = bar->ngroup;
    int *codes = ir_arena_alloc(b->scratch, nz(n * k) * sizeof *codes);
    tuple *tu = ir_malloc((n ? n : 1) * sizeof *tu);
    re->group = ir_arena_alloc(b->out, (n ? n : 1) * sizeof *re->group);
    re->levels = ir_arena_alloc(b->out, (n ? n : 1) * sizeof *re->levels);
    if (!codes || !tu || !re->group || !re->levels) {
        ir_free(tu);
        return oom(b);
    }
    for (size_t j = 0; j < k; j++) {
        factor *f = b->vi[bar->group[j]].f;
        memcpy(codes + j * n, f->code, n * sizeof *codes);
    }
    for (size_t i = 0; i < n; i++)
        tu[i] = (tuple){codes, n, k, i};
    qsort(tu, n, sizeof *tu, cmp_tuple);
    re->nlevel = 0;
    for (size_t i = 0; i < n; i++) {
        int fresh = i == 0;
        for (size_t j = 0; j < k && !fresh; j++)
            fresh = codes[j * n + tu[i].row] != codes[j * n + tu[i - 1].row];
        if (fresh) {
            size_t len = 1;
            for (size_t j = 0; j < k; j++)
                len += strlen(b->vi[bar->group[j]].f->levels[codes[j * n + tu[i].row]]) + 1;
            char *name = ir_arena_alloc(b->out, len);
            if (!name) {
                ir_free(tu);
                return oom(b);
            }
            for (size_t j = 0; j < k; j++) {
                if (j)
                    strcat(name, ":");
                strcat(name, b->vi[bar->group[j]].f->levels[codes[j * n + tu[i].row]]);
            }
            re->levels[re->nlevel++] = name;
        }
        re->group[tu[i].row] = (double)(re->nlevel - 1);
    }
    ir_free(tu);
    return SJ_OK;
}

/* ---- the whole build ----------------------------------------------------------- */

static sj_status response(builder *b, const fe_node *lhs)
{
    fe_design *d = b->d;
    const fe_node *m = lhs;
    while (m->kind == FE_N_PAREN)
        m = m->a;
    d->nresp = 1;
    if (m->kind == FE_N_CALL && strcmp(m->name, "cbind") == 0) {
        if (m->nargs != 2 || m->args[0]->kind == FE_N_ARG || m->args[1]->kind == FE_N_ARG)
            return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, m->pos,
                                   "cbind() takes two arguments: successes and failures");
        d->nresp = 2;
    } else if (m->kind == FE_N_NAME) {
        long j = fe_table_find(b->t, m->name);
        if (j < 0)
            return unknown_column(b, m);
        if (b->t->cols[j].type != FE_COL_NUMERIC)
            return fe_formula_fail(b->err, SJ_ERR_INVALID_ARGUMENT, b->src, m->pos,
                                   "the response '%s' holds strings; it must be numeric", m->name);
    }
    d->resp_names = ir_arena_alloc(b->out, 2 * sizeof *d->resp_names);
    if (!d->resp_names)
        return oom(b);
    return SJ_OK;
}

sj_status fe_design_build(const char *formula, const fe_table *data, fe_design **out,
                          ir_err *err)
{
    *out = NULL;
    fe_formula *f = NULL;
    sj_status st = fe_formula_parse(formula, &f, err);
    if (st != SJ_OK)
        return st;
    ir_arena scratch;
    ir_arena_init(&scratch);
    fe_design *d = ir_calloc(1, sizeof *d);
    if (!d) {
        fe_formula_free(f);
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "formula: out of memory");
    }
    ir_arena_init(&d->arena);
    builder b = {.t = data, .src = f->src, .scratch = &scratch, .out = &d->arena, .err = err, .d = d};
    size_t nr = data->nrow;
    d->nrow_data = nr;
    if ((st = fe_terms_expand(f, &scratch, &b.terms, err)) != SJ_OK)
        goto done;
    fe_terms *T = &b.terms;

    /* Evaluate variables, the response and offsets on every row. */
    b.vi = ir_arena_alloc(&scratch, (T->nvar ? T->nvar : 1) * sizeof *b.vi);
    unsigned char *drop = ir_arena_alloc(&scratch, nr ? nr : 1);
    if (!b.vi || !drop) {
        st = oom(&b);
        goto done;
    }
    for (size_t r = 0; r < T->nbar; r++)
        for (size_t j = 0; j < T->bars[r].ngroup; j++)
            b.vi[T->bars[r].group[j]].used_as_group = 1;
    for (size_t k = 0; k < T->nvar; k++) {
        if ((st = eval_var(&b, k)) != SJ_OK)
            goto done;
        varinfo *v = &b.vi[k];
        for (size_t i = 0; i < nr; i++)
            if ((v->f && !v->f->label[i]) || (v->val && isnan(v->val[i])))
                drop[i] = 1;
    }
    double *resp[2] = {NULL, NULL};
    if (T->response) {
        if ((st = response(&b, T->response)) != SJ_OK)
            goto done;
        const fe_node *m = T->response;
        while (m->kind == FE_N_PAREN)
            m = m->a;
        for (size_t j = 0; j < d->nresp; j++) {
            const fe_node *part = d->nresp == 2 ? m->args[j] : T->response;
            if ((st = eval_num(&b, part, &resp[j])) != SJ_OK)
                goto done;
            if (!(d->resp_names[j] = fe_deparse(&d->arena, part))) {
                st = oom(&b);
                goto done;
            }
            for (size_t i = 0; i < nr; i++)
                if (isnan(resp[j][i]))
                    drop[i] = 1;
        }
    }
    double *off = NULL;
    for (size_t k = 0; k < T->noffset; k++) {
        double *v;
        if ((st = eval_num(&b, T->offsets[k], &v)) != SJ_OK)
            goto done;
        if (!off)
            off = v;
        else
            for (size_t i = 0; i < nr; i++)
                off[i] += v[i];
    }
    if (off)
        for (size_t i = 0; i < nr; i++)
            if (isnan(off[i]))
                drop[i] = 1;

    /* Rows kept. */
    for (size_t i = 0; i < nr; i++)
        d->n += !drop[i];
    d->ndropped = nr - d->n;
    if (d->n == 0) {
        st = ir_fail(err, SJ_ERR_INVALID_ARGUMENT,
                     "formula: no rows left: %zu of %zu rows have a missing value in a variable "
                     "the formula uses",
                     d->ndropped, nr);
        goto done;
    }
    size_t n = d->n;
    d->rows = ir_arena_alloc(&d->arena, n * sizeof *d->rows);
    if (!d->rows) {
        st = oom(&b);
        goto done;
    }
    for (size_t i = 0, j = 0; i < nr; i++)
        if (!drop[i])
            d->rows[j++] = i;
    for (size_t k = 0; k < T->nvar; k++)
        if (b.vi[k].f && (st = factor_levels(&b, b.vi[k].f)) != SJ_OK)
            goto done;

    /* Response and offset. */
    d->y = ir_arena_alloc(&d->arena, nz(n * d->nresp) * sizeof *d->y);
    d->offset = ir_arena_alloc(&d->arena, n * sizeof *d->offset);
    if (!d->y || !d->offset) {
        st = oom(&b);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d->nresp; j++)
            d->y[i * d->nresp + j] = resp[j][d->rows[i]];
        d->offset[i] = off ? off[d->rows[i]] : 0;
    }
    d->has_offset = off != NULL;

    /* Fixed effects. */
    mcols m = {0};
    if ((st = model_matrix(&b, T->terms, T->nterm, T->intercept, &m)) != SJ_OK)
        goto done;
    d->intercept = T->intercept;
    d->p = m.ncol;
    d->colnames = ir_arena_dup(&d->arena, m.names, (m.ncol ? m.ncol : 1) * sizeof *m.names);
    d->assign = ir_arena_dup(&d->arena, m.assign, (m.ncol ? m.ncol : 1) * sizeof *m.assign);
    d->X = row_major(&b, &m);
    d->nterm = T->nterm;
    d->term_labels = ir_arena_alloc(&d->arena, (T->nterm ? T->nterm : 1) * sizeof *d->term_labels);
    if (!d->colnames || !d->assign || !d->X || !d->term_labels) {
        st = oom(&b);
        goto done;
    }
    for (size_t t = 0; t < T->nterm; t++)
        if (!(d->term_labels[t] = ir_arena_strdup(&d->arena, T->terms[t].label))) {
            st = oom(&b);
            goto done;
        }

    /* Random effects, then lme4's order: decreasing number of levels, stably. */
    d->nre = T->nbar;
    d->re = ir_arena_alloc(&d->arena, (T->nbar ? T->nbar : 1) * sizeof *d->re);
    if (!d->re) {
        st = oom(&b);
        goto done;
    }
    for (size_t r = 0; r < T->nbar; r++) {
        const fe_bar *bar = &T->bars[r];
        fe_reterm *re = &d->re[r];
        mcols z = {0};
        if ((st = model_matrix(&b, bar->terms, bar->nterm, bar->intercept, &z)) != SJ_OK ||
            (st = group_factor(&b, bar, re)) != SJ_OK)
            goto done;
        re->label = ir_arena_strdup(&d->arena, bar->label);
        re->group_name = ir_arena_strdup(&d->arena, bar->group_label);
        re->ncol = z.ncol;
        re->colnames = ir_arena_dup(&d->arena, z.names, z.ncol * sizeof *z.names);
        re->Z = row_major(&b, &z);
        if (!re->label || !re->group_name || !re->colnames || !re->Z) {
            st = oom(&b);
            goto done;
        }
    }
    for (size_t i = 1; i < d->nre; i++) {
        fe_reterm v = d->re[i];
        size_t j = i;
        while (j > 0 && d->re[j - 1].nlevel < v.nlevel) {
            d->re[j] = d->re[j - 1];
            j--;
        }
        d->re[j] = v;
    }

done:
    ir_arena_free(&scratch);
    fe_formula_free(f);
    if (st != SJ_OK) {
        fe_design_free(d);
        return st;
    }
    *out = d;
    return SJ_OK;
}

void fe_design_free(fe_design *d)
{
    if (!d)
        return;
    ir_arena_free(&d->arena);
    ir_free(d);
}
