/* Term expansion: R's terms.formula (src/library/stats/src/model.c,
 * EncodeVars and friends) and lme4's findbars / expandSlash /
 * expandDoubleVerts, on the AST of formula_parse.c.
 *
 * A term is a sorted set of variable indices.  Expanding an expression gives
 * a list of terms (duplicates removed, first occurrence kept):
 *   a + b      terms of a, then of b
 *   a - b      terms of a without those of b
 *   a : b      every union of a term of a with a term of b
 *   a * b      a + b + a:b
 *   a / b      a + (all variables of a):b
 *   (a)^k      a crossed with itself k times
 *   1, 0       intercept on / off (reversed under '-': "- 1" removes it)
 * The final list is ordered by degree, stably (R's keep.order = FALSE). */
#include <stdio.h>
#include <string.h>

#include "frontend/formula.h"
#include "ir/alloc.h"

typedef struct tlist {
    size_t n, cap;
    fe_term *t;
} tlist;

typedef struct expander {
    const fe_formula *f;
    ir_arena *arena;
    ir_err *err;
    fe_terms *out;
    size_t varcap, offcap, barcap;
    int intercept;
} expander;

static sj_status oom(expander *x)
{
    return ir_fail(x->err, SJ_ERR_OUT_OF_MEMORY, "formula: out of memory");
}

/* Grows an arena array to hold n + 1 elements. */
static int grow(ir_arena *a, void **arr, size_t *cap, size_t n, size_t elsize)
{
    if (n < *cap)
        return 1;
    size_t ncap = *cap ? 2 * *cap : 8;
    void *na = ir_arena_alloc(a, ncap * elsize);
    if (!na)
        return 0;
    if (n)
        memcpy(na, *arr, n * elsize);
    *arr = na;
    *cap = ncap;
    return 1;
}

static int term_eq(const fe_term *a, const fe_term *b)
{
    if (a->nvar != b->nvar)
        return 0;
    for (size_t i = 0; i < a->nvar; i++)
        if (a->vars[i] != b->vars[i])
            return 0;
    return 1;
}

static int tlist_has(const tlist *l, const fe_term *t)
{
    for (size_t i = 0; i < l->n; i++)
        if (term_eq(&l->t[i], t))
            return 1;
    return 0;
}

/* Appends t unless already present (terms are shared, never mutated). */
static sj_status tlist_add(expander *x, tlist *l, const fe_term *t)
{
    if (t->nvar == 0 || tlist_has(l, t))
        return SJ_OK;
    if (!grow(x->arena, (void **)&l->t, &l->cap, l->n, sizeof *l->t))
        return oom(x);
    l->t[l->n++] = *t;
    return SJ_OK;
}

static sj_status tlist_cat(expander *x, tlist *l, const tlist *m)
{
    for (size_t i = 0; i < m->n; i++) {
        sj_status st = tlist_add(x, l, &m->t[i]);
        if (st != SJ_OK)
            return st;
    }
    return SJ_OK;
}

/* The union of two terms (sorted merge). */
static sj_status term_union(expander *x, const fe_term *a, const fe_term *b, fe_term *out)
{
    size_t *v = ir_arena_alloc(x->arena, (a->nvar + b->nvar + 1) * sizeof *v);
    if (!v)
        return oom(x);
    size_t i = 0, j = 0, n = 0;
    while (i < a->nvar || j < b->nvar) {
        if (j >= b->nvar || (i < a->nvar && a->vars[i] < b->vars[j]))
            v[n++] = a->vars[i++];
        else if (i >= a->nvar || b->vars[j] < a->vars[i])
            v[n++] = b->vars[j++];
        else {
            v[n++] = a->vars[i++];
            j++;
        }
    }
    out->nvar = n;
    out->vars = v;
    out->label = NULL;
    return SJ_OK;
}

static sj_status interact(expander *x, const tlist *a, const tlist *b, tlist *out)
{
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++) {
            fe_term t;
            sj_status st = term_union(x, &a->t[i], &b->t[j], &t);
            if (st == SJ_OK)
                st = tlist_add(x, out, &t);
            if (st != SJ_OK)
                return st;
        }
    return SJ_OK;
}

/* The variable for expression n (found by its deparsed text, else added). */
static sj_status add_var(expander *x, const fe_node *n, size_t *index)
{
    char *label = fe_deparse(x->arena, n);
    if (!label)
        return oom(x);
    fe_terms *o = x->out;
    for (size_t i = 0; i < o->nvar; i++)
        if (strcmp(o->vars[i].label, label) == 0) {
            *index = i;
            return SJ_OK;
        }
    if (!grow(x->arena, (void **)&o->vars, &x->varcap, o->nvar, sizeof *o->vars))
        return oom(x);
    o->vars[o->nvar].expr = n;
    o->vars[o->nvar].label = label;
    *index = o->nvar++;
    return SJ_OK;
}

static const fe_node *strip_parens(const fe_node *n)
{
    while (n->kind == FE_N_PAREN)
        n = n->a;
    return n;
}

enum { CTX_TOP = 1, CTX_BAR_LHS = 2 };

static sj_status expand(expander *x, const fe_node *n, int parity, int ctx, tlist *out);

/* The grouping side of a bar: a list of groups, each a list of variables
 * (lme4's expandSlash: a/b gives b:a and a). */
typedef struct glist {
    size_t n;
    size_t *len;
    size_t **vars;
} glist;

static sj_status groups(expander *x, const fe_node *n, glist *g)
{
    const char *src = x->f->src;
    n = strip_parens(n);
    if (n->kind == FE_N_NAME) {
        size_t v;
        sj_status st = add_var(x, n, &v);
        if (st != SJ_OK)
            return st;
        g->n = 1;
        g->len = ir_arena_alloc(x->arena, sizeof *g->len);
        g->vars = ir_arena_alloc(x->arena, sizeof *g->vars);
        if (!g->len || !g->vars || !(g->vars[0] = ir_arena_alloc(x->arena, sizeof(size_t))))
            return oom(x);
        g->len[0] = 1;
        g->vars[0][0] = v;
        return SJ_OK;
    }
    if (n->kind == FE_N_BINARY && (n->op == ':' || n->op == '/')) {
        glist l = {0}, r = {0};
        sj_status st = groups(x, n->a, &l);
        if (st == SJ_OK)
            st = groups(x, n->b, &r);
        if (st != SJ_OK)
            return st;
        if (r.n != 1 || (n->op == ':' && l.n != 1))
            return fe_formula_fail(x->err, SJ_ERR_UNSUPPORTED, src, n->oppos,
                                   "nesting '/' inside an interaction of grouping factors is not "
                                   "supported");
        size_t len = l.len[0] + r.len[0];
        size_t *v = ir_arena_alloc(x->arena, len * sizeof *v);
        g->n = n->op == ':' ? 1 : 1 + l.n;
        g->len = ir_arena_alloc(x->arena, g->n * sizeof *g->len);
        g->vars = ir_arena_alloc(x->arena, g->n * sizeof *g->vars);
        if (!v || !g->len || !g->vars)
            return oom(x);
        if (n->op == ':') { /* g1:g2 */
            memcpy(v, l.vars[0], l.len[0] * sizeof *v);
            memcpy(v + l.len[0], r.vars[0], r.len[0] * sizeof *v);
        } else { /* g1/g2: g2:g1, then the groups of g1 */
            memcpy(v, r.vars[0], r.len[0] * sizeof *v);
            memcpy(v + r.len[0], l.vars[0], l.len[0] * sizeof *v);
            memcpy(g->len + 1, l.len, l.n * sizeof *l.len);
            memcpy(g->vars + 1, l.vars, l.n * sizeof *l.vars);
        }
        g->len[0] = len;
        g->vars[0] = v;
        return SJ_OK;
    }
    return fe_formula_fail(x->err, SJ_ERR_INVALID_ARGUMENT, src, n->pos,
                           "a grouping factor must be a column name, an interaction g1:g2 or a "
                           "nesting g1/g2");
}

/* Joins variable labels with ':'. */
static const char *join_labels(expander *x, const size_t *vars, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(x->out->vars[vars[i]].label) + 1;
    char *s = ir_arena_alloc(x->arena, len);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(s, ":");
        strcat(s, x->out->vars[vars[i]].label);
    }
    return s;
}

static sj_status push_bar(expander *x, const fe_bar *b)
{
    fe_terms *o = x->out;
    if (!grow(x->arena, (void **)&o->bars, &x->barcap, o->nbar, sizeof *o->bars))
        return oom(x);
    o->bars[o->nbar++] = *b;
    return SJ_OK;
}

/* (lhs | group) or (lhs || group), n being the bar node inside parens. */
static sj_status expand_bar(expander *x, const fe_node *paren, const fe_node *n)
{
    tlist lhs = {0};
    int saved = x->intercept;
    x->intercept = 1;
    sj_status st = expand(x, n->a, 1, CTX_BAR_LHS, &lhs);
    int intercept = x->intercept;
    x->intercept = saved;
    if (st != SJ_OK)
        return st;
    glist g = {0};
    if ((st = groups(x, n->b, &g)) != SJ_OK)
        return st;
    const char *lhs_text = fe_deparse(x->arena, n->a);
    if (!lhs_text)
        return oom(x);
    for (size_t k = 0; k < lhs.n; k++)
        if (!(lhs.t[k].label = join_labels(x, lhs.t[k].vars, lhs.t[k].nvar)))
            return oom(x);
    if (!intercept && lhs.n == 0)
        return fe_formula_fail(x->err, SJ_ERR_INVALID_ARGUMENT, x->f->src, n->a->pos,
                               "random-effect term has no columns");
    for (size_t k = 0; k < g.n; k++) {
        fe_bar b = {.ngroup = g.len[k], .group = g.vars[k], .pos = paren->pos};
        if (!(b.group_label = join_labels(x, g.vars[k], g.len[k])))
            return oom(x);
        if (n->op == '|') {
            b.nterm = lhs.n;
            b.terms = lhs.t;
            b.intercept = intercept;
            size_t len = strlen(lhs_text) + strlen(b.group_label) + 4;
            char *label = ir_arena_alloc(x->arena, len);
            if (!label)
                return oom(x);
            snprintf(label, len, "%s | %s", lhs_text, b.group_label);
            b.label = label;
            if ((st = push_bar(x, &b)) != SJ_OK)
                return st;
            continue;
        }
        /* ||: (1 | g) and one (0 + t | g) per term, as lme4's expandDoubleVerts. */
        if (intercept) {
            fe_bar one = b;
            one.intercept = 1;
            size_t len = strlen(b.group_label) + 5;
            char *label = ir_arena_alloc(x->arena, len);
            if (!label)
                return oom(x);
            snprintf(label, len, "1 | %s", b.group_label);
            one.label = label;
            if ((st = push_bar(x, &one)) != SJ_OK)
                return st;
        }
        for (size_t t = 0; t < lhs.n; t++) {
            fe_bar one = b;
            one.nterm = 1;
            one.terms = &lhs.t[t];
            one.intercept = 0;
            size_t len = strlen(lhs.t[t].label) + strlen(b.group_label) + 8;
            char *label = ir_arena_alloc(x->arena, len);
            if (!label)
                return oom(x);
            snprintf(label, len, "0 + %s | %s", lhs.t[t].label, b.group_label);
            one.label = label;
            if ((st = push_bar(x, &one)) != SJ_OK)
                return st;
        }
    }
    return SJ_OK;
}

static sj_status expand(expander *x, const fe_node *n, int parity, int ctx, tlist *out)
{
    const char *src = x->f->src;
    sj_status st;
    switch (n->kind) {
    case FE_N_PAREN: {
        const fe_node *in = strip_parens(n);
        if (in->kind == FE_N_BINARY && (in->op == '|' || in->op == 'B')) {
            if (!(ctx & CTX_TOP) || (ctx & CTX_BAR_LHS) || !parity)
                return fe_formula_fail(x->err, SJ_ERR_INVALID_ARGUMENT, src, n->pos,
                                       "a random-effect term (... | g) is allowed only as a "
                                       "term of the right-hand side");
            return expand_bar(x, n, in);
        }
        return expand(x, in, parity, ctx, out);
    }
    case FE_N_NUM:
        if (n->num == 0 || n->num == 1) {
            x->intercept = parity ? n->num == 1 : n->num == 0;
            return SJ_OK;
        }
        return fe_formula_fail(x->err, SJ_ERR_INVALID_ARGUMENT, src, n->pos,
                               "invalid model term '%s': only 0 and 1 may stand alone", n->text);
    case FE_N_STR:
        return fe_formula_fail(x->err, SJ_ERR_INVALID_ARGUMENT, src, n->pos,
                               "a string is not a model term");
    case FE_N_ARG:
        return fe_formula_fail(x->err, SJ_ERR_INVALID_ARGUMENT, src, n->pos, "unexpected '='");
    case FE_N_CALL:
        if (strcmp(n->name, "offset") == 0) {
            if (!(ctx & CTX_TOP) || (ctx & CTX_BAR_LHS) || !parity)
                return fe_formula_fail(x->err, SJ_ERR_INVALID_ARGUMENT, src, n->pos,
                                       "offset() is allowed only as a term of the fixed part");
            if (n->nargs != 1 || n->args[0]->kind == FE_N_ARG)
                return fe_formula_fail(x->err, SJ_ERR_INVALID_ARGUMENT, src, n->pos,
                                       "offset() takes one argument");
            fe_terms *o = x->out;
            if (!grow(x->arena, (void **)&o->offsets, &x->offcap, o->noffset, sizeof *o->offsets))
                return oom(x);
            o->offsets[o->noffset++] = n->args[0];
            return SJ_OK;
        }
        /* any other call is one variable */
        __attribute__((fallthrough));
    case FE_N_NAME: {
        fe_term t = {.nvar = 1};
        if (!(t.vars = ir_arena_alloc(x->arena, sizeof *t.vars)))
            return oom(x);
        if ((st = add_var(x, n, &t.vars[0])) != SJ_OK)
            return st;
        return tlist_add(x, out, &t);
    }
    case FE_N_UNARY: {
        if (n->op == '+')
            return expand(x, n->a, parity, ctx, out);
        tlist drop = {0};
        return expand(x, n->a, !parity, ctx & ~CTX_TOP, &drop); /* "-x" alone adds nothing */
    }
    case FE_N_BINARY:
        break;
    }
    tlist a = {0}, b = {0};
    switch (n->op) {
    case '+':
        if ((st = expand(x, n->a, parity, ctx, &a)) != SJ_OK ||
            (st = expand(x, n->b, parity, ctx, &b)) != SJ_OK)
            return st;
        if ((st = tlist_cat(x, out, &a)) != SJ_OK)
            return st;
        return tlist_cat(x, out, &b);
    case '-':
        if ((st = expand(x, n->a, parity, ctx, &a)) != SJ_OK ||
            (st = expand(x, n->b, !parity, ctx & ~CTX_TOP, &b)) != SJ_OK)
            return st;
        for (size_t i = 0; i < a.n; i++)
            if (!tlist_has(&b, &a.t[i]) && (st = tlist_add(x, out, &a.t[i])) != SJ_OK)
                return st;
        return SJ_OK;
    case ':':
    case '*':
    case '/': {
        int inner = ctx & ~CTX_TOP;
        if ((st = expand(x, n->a, parity, inner, &a)) != SJ_OK ||
            (st = expand(x, n->b, parity, inner, &b)) != SJ_OK)
            return st;
        if (n->op == ':')
            return interact(x, &a, &b, out);
        if ((st = tlist_cat(x, out, &a)) != SJ_OK)
            return st;
        if (n->op == '*') {
            if ((st = tlist_cat(x, out, &b)) != SJ_OK)
                return st;
            return interact(x, &a, &b, out);
        }
        /* a / b = a + (all of a):b */
        tlist all = {0};
        fe_term u = {0};
        for (size_t i = 0; i < a.n; i++)
            if ((st = term_union(x, &u, &a.t[i], &u)) != SJ_OK)
                return st;
        if (u.nvar && (st = tlist_add(x, &all, &u)) != SJ_OK)
            return st;
        if (!u.nvar)
            return tlist_cat(x, out, &b);
        return interact(x, &all, &b, out);
    }
    case '^': {
        const fe_node *k = strip_parens(n->b);
        /* Range first: converting a huge (or NaN) power to long is undefined. */
        if (k->kind != FE_N_NUM || !(k->num >= 1 && k->num <= 32) ||
            k->num != (double)(long)k->num)
            return fe_formula_fail(x->err, SJ_ERR_INVALID_ARGUMENT, src, n->b->pos,
                                   "the power of a formula term must be a whole number from 1 "
                                   "to 32 (use I(x^2) for arithmetic)");
        if ((st = expand(x, n->a, parity, ctx & ~CTX_TOP, &a)) != SJ_OK)
            return st;
        tlist acc = {0};
        if ((st = tlist_cat(x, &acc, &a)) != SJ_OK)
            return st;
        for (long i = 1; i < (long)k->num; i++) {
            tlist next = {0};
            if ((st = tlist_cat(x, &next, &acc)) != SJ_OK ||
                (st = tlist_cat(x, &next, &a)) != SJ_OK ||
                (st = interact(x, &acc, &a, &next)) != SJ_OK)
                return st;
            acc = next;
        }
        return tlist_cat(x, out, &acc);
    }
    case '|':
    case 'B':
        return fe_formula_fail(x->err, SJ_ERR_INVALID_ARGUMENT, src, n->pos,
                               "a random-effect term must be in parentheses: (%s)",
                               fe_deparse(x->arena, n) ? fe_deparse(x->arena, n) : "...");
    }
    return fe_formula_fail(x->err, SJ_ERR_INTERNAL, src, n->pos, "unknown operator");
}

/* Stable sort of terms by degree (insertion sort; formulas are short). */
static void order_terms(fe_term *t, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        fe_term v = t[i];
        size_t j = i;
        while (j > 0 && t[j - 1].nvar > v.nvar) {
            t[j] = t[j - 1];
            j--;
        }
        t[j] = v;
    }
}

sj_status fe_terms_expand(const fe_formula *f, ir_arena *arena, fe_terms *out, ir_err *err)
{
    memset(out, 0, sizeof *out);
    expander x = {.f = f, .arena = arena, .err = err, .out = out, .intercept = 1};
    out->response = f->lhs;
    tlist terms = {0};
    sj_status st = expand(&x, f->rhs, 1, CTX_TOP, &terms);
    if (st != SJ_OK)
        return st;
    order_terms(terms.t, terms.n);
    for (size_t k = 0; k < terms.n; k++)
        if (!(terms.t[k].label = join_labels(&x, terms.t[k].vars, terms.t[k].nvar)))
            return oom(&x);
    for (size_t b = 0; b < out->nbar; b++) /* the lhs of a bar keeps R's order too */
        if (out->bars[b].nterm > 1) {
            fe_term *copy = ir_arena_dup(arena, out->bars[b].terms,
                                         out->bars[b].nterm * sizeof *copy);
            if (!copy)
                return oom(&x);
            order_terms(copy, out->bars[b].nterm);
            out->bars[b].terms = copy;
        }
    out->nterm = terms.n;
    out->terms = terms.t;
    out->intercept = x.intercept;
    return SJ_OK;
}
