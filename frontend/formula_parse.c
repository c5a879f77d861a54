/* Formula parser (precedence climbing with R's operator precedence) and R's
 * deparser.
 *
 * Precedence, loosest first, as in R's ?Syntax:
 *   ~   |  ||   + - (binary)   * /   %op%   :   + - (unary)   ^ (right)
 * so "1 + Days | Subject" is (1 + Days) | Subject, "-a:b" is (-a):b and
 * "-a^2" is -(a^2). */
#include <stdio.h>
#include <string.h>

#include "frontend/formula.h"
#include "ir/alloc.h"

typedef struct parser {
    const char *src;
    fe_token *tok;
    size_t ntok, i;
    ir_arena *arena;
    ir_err *err;
} parser;

static fe_token *peek(parser *p) { return &p->tok[p->i]; }
static int is_op(parser *p, char op) { return peek(p)->kind == FE_T_OP && peek(p)->op == op; }

static fe_node *node(parser *p, fe_node_kind kind, size_t pos)
{
    fe_node *n = ir_arena_alloc(p->arena, sizeof *n);
    if (!n) {
        ir_fail(p->err, SJ_ERR_OUT_OF_MEMORY, "formula: out of memory");
        return NULL;
    }
    n->kind = kind;
    n->pos = pos;
    return n;
}

static const char *describe(fe_token *t, char *buf, size_t size)
{
    switch (t->kind) {
    case FE_T_EOF: return "end of formula";
    case FE_T_OP: snprintf(buf, size, "'%c'", t->op); return buf;
    case FE_T_OROR: return "'||'";
    default: snprintf(buf, size, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), t->text ? t->text : ""); return buf;
    }
}

static fe_node *unexpected(parser *p, const char *expected)
{
    char buf[64];
    fe_token *t = peek(p);
    if (expected)
        fe_formula_fail(p->err, SJ_ERR_INVALID_ARGUMENT, p->src, t->pos, "expected %s, found %s",
                        expected, describe(t, buf, sizeof buf));
    else
        fe_formula_fail(p->err, SJ_ERR_INVALID_ARGUMENT, p->src, t->pos, "unexpected %s",
                        describe(t, buf, sizeof buf));
    return NULL;
}

static fe_node *parse_bar(parser *p);
static fe_node *parse_unary(parser *p);

static fe_node *parse_primary(parser *p)
{
    fe_token *t = peek(p);
    fe_node *n;
    switch (t->kind) {
    case FE_T_NAME:
        p->i++;
        if (!is_op(p, '(')) {
            if (!(n = node(p, FE_N_NAME, t->pos)))
                return NULL;
            n->name = t->text;
            return n;
        }
        if (!(n = node(p, FE_N_CALL, t->pos)))
            return NULL;
        n->name = t->text;
        p->i++; /* ( */
        {
            size_t cap = 0;
            if (is_op(p, ')')) {
                p->i++;
                return n;
            }
            for (;;) {
                fe_node *arg;
                fe_token *a = peek(p);
                if (a->kind == FE_T_NAME && p->tok[p->i + 1].kind == FE_T_OP &&
                    p->tok[p->i + 1].op == '=') {
                    p->i += 2;
                    if (!(arg = node(p, FE_N_ARG, a->pos)))
                        return NULL;
                    arg->name = a->text;
                    if (!(arg->a = parse_bar(p)))
                        return NULL;
                } else if (!(arg = parse_bar(p))) {
                    return NULL;
                }
                if (n->nargs == cap) {
                    size_t ncap = cap ? 2 * cap : 4;
                    fe_node **args = ir_arena_alloc(p->arena, ncap * sizeof *args);
                    if (!args) {
                        ir_fail(p->err, SJ_ERR_OUT_OF_MEMORY, "formula: out of memory");
                        return NULL;
                    }
                    if (n->nargs)
                        memcpy(args, n->args, n->nargs * sizeof *args);
                    n->args = args;
                    cap = ncap;
                }
                n->args[n->nargs++] = arg;
                if (is_op(p, ',')) {
                    p->i++;
                    continue;
                }
                if (is_op(p, ')')) {
                    p->i++;
                    return n;
                }
                return unexpected(p, "',' or ')'");
            }
        }
    case FE_T_NUM:
        p->i++;
        if (!(n = node(p, FE_N_NUM, t->pos)))
            return NULL;
        n->num = t->num;
        n->text = t->text;
        return n;
    case FE_T_STR:
        p->i++;
        if (!(n = node(p, FE_N_STR, t->pos)))
            return NULL;
        n->name = t->text;
        return n;
    case FE_T_OP:
        if (t->op == '(') {
            p->i++;
            if (!(n = node(p, FE_N_PAREN, t->pos)))
                return NULL;
            if (is_op(p, ')'))
                return unexpected(p, "an expression");
            if (!(n->a = parse_bar(p)))
                return NULL;
            if (!is_op(p, ')'))
                return unexpected(p, "')'");
            p->i++;
            return n;
        }
        return unexpected(p, "a term");
    case FE_T_SPECIAL:
    case FE_T_OROR:
        return unexpected(p, "a term");
    case FE_T_EOF:
        return unexpected(p, "a term");
    }
    return unexpected(p, NULL);
}

static fe_node *binary(parser *p, char op, size_t oppos, fe_node *a, fe_node *b)
{
    fe_node *n = node(p, FE_N_BINARY, a->pos);
    if (!n)
        return NULL;
    n->op = op;
    n->oppos = oppos;
    n->a = a;
    n->b = b;
    return n;
}

static fe_node *parse_power(parser *p)
{
    fe_node *a = parse_primary(p);
    if (!a || !is_op(p, '^'))
        return a;
    size_t oppos = peek(p)->pos;
    p->i++;
    fe_node *b = parse_unary(p); /* right-associative; 2^-1 is allowed */
    return b ? binary(p, '^', oppos, a, b) : NULL;
}

static fe_node *parse_unary(parser *p)
{
    if (is_op(p, '-') || is_op(p, '+')) {
        fe_token *t = peek(p);
        p->i++;
        fe_node *n = node(p, FE_N_UNARY, t->pos);
        if (!n)
            return NULL;
        n->op = t->op;
        n->oppos = t->pos;
        return (n->a = parse_unary(p)) ? n : NULL;
    }
    return parse_power(p);
}

static fe_node *parse_colon(parser *p)
{
    fe_node *a = parse_unary(p);
    while (a && is_op(p, ':')) {
        size_t oppos = peek(p)->pos;
        p->i++;
        fe_node *b = parse_unary(p);
        a = b ? binary(p, ':', oppos, a, b) : NULL;
    }
    return a;
}

static fe_node *parse_special(parser *p)
{
    fe_node *a = parse_colon(p);
    if (a && peek(p)->kind == FE_T_SPECIAL) {
        fe_token *t = peek(p);
        fe_formula_fail(p->err, SJ_ERR_UNSUPPORTED, p->src, t->pos,
                        "operator '%s' is not supported", t->text);
        return NULL;
    }
    return a;
}

static fe_node *parse_product(parser *p)
{
    fe_node *a = parse_special(p);
    while (a && (is_op(p, '*') || is_op(p, '/'))) {
        fe_token *t = peek(p);
        p->i++;
        fe_node *b = parse_special(p);
        a = b ? binary(p, t->op, t->pos, a, b) : NULL;
    }
    return a;
}

static fe_node *parse_sum(parser *p)
{
    fe_node *a = parse_product(p);
    while (a && (is_op(p, '+') || is_op(p, '-'))) {
        fe_token *t = peek(p);
        p->i++;
        fe_node *b = parse_product(p);
        a = b ? binary(p, t->op, t->pos, a, b) : NULL;
    }
    return a;
}

static fe_node *parse_bar(parser *p)
{
    fe_node *a = parse_sum(p);
    while (a && (is_op(p, '|') || peek(p)->kind == FE_T_OROR)) {
        fe_token *t = peek(p);
        char op = t->kind == FE_T_OROR ? 'B' : '|';
        p->i++;
        fe_node *b = parse_sum(p);
        a = b ? binary(p, op, t->pos, a, b) : NULL;
    }
    return a;
}

sj_status fe_formula_parse(const char *src, fe_formula **out, ir_err *err)
{
    *out = NULL;
    if (!src)
        return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "formula: NULL formula");
    fe_formula *f = ir_calloc(1, sizeof *f);
    if (!f)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "formula: out of memory");
    ir_arena_init(&f->arena);
    sj_status st;
    char *copy = ir_arena_strdup(&f->arena, src);
    if (!copy) {
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "formula: out of memory");
        goto fail;
    }
    f->src = copy;
    parser p = {.src = copy, .arena = &f->arena, .err = err};
    if ((st = fe_formula_lex(copy, &f->arena, &p.tok, &p.ntok, err)) != SJ_OK)
        goto fail;
    if (peek(&p)->kind == FE_T_EOF) {
        st = fe_formula_fail(err, SJ_ERR_INVALID_ARGUMENT, copy, 0, "empty formula");
        goto fail;
    }
    if (!is_op(&p, '~')) {
        if (!(f->lhs = parse_bar(&p)))
            goto failed;
        if (!is_op(&p, '~')) {
            unexpected(&p, "'~'");
            goto failed;
        }
    }
    f->tilde = peek(&p)->pos;
    p.i++;
    if (!(f->rhs = parse_bar(&p)))
        goto failed;
    if (peek(&p)->kind != FE_T_EOF) {
        if (is_op(&p, '~'))
            fe_formula_fail(err, SJ_ERR_INVALID_ARGUMENT, copy, peek(&p)->pos,
                            "a formula has one '~'");
        else
            unexpected(&p, NULL);
        goto failed;
    }
    *out = f;
    return SJ_OK;
failed:
    st = err ? err->status : SJ_ERR_INVALID_ARGUMENT;
    if (st == SJ_OK)
        st = SJ_ERR_INTERNAL;
fail:
    fe_formula_free(f);
    return st;
}

void fe_formula_free(fe_formula *f)
{
    if (!f)
        return;
    ir_arena_free(&f->arena);
    ir_free(f);
}

/* ---- deparse -------------------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t len)
{
    if (b->oom)
        return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *ns = ir_realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = '\0';
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static int syntactic(const char *s)
{
    static const char *reserved[] = {"if", "else", "repeat", "while", "function", "for", "next",
                                     "break", "TRUE", "FALSE", "NULL", "Inf", "NaN", "NA", "in"};
    if (!s[0])
        return 0;
    unsigned char c = (unsigned char)s[0];
    if (!(c == '.' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
        return 0;
    if (c == '.' && s[1] >= '0' && s[1] <= '9')
        return 0;
    for (const char *q = s; *q; q++) {
        unsigned char d = (unsigned char)*q;
        if (!(d == '.' || d == '_' || d >= 0x80 || (d >= 'a' && d <= 'z') ||
              (d >= 'A' && d <= 'Z') || (d >= '0' && d <= '9')))
            return 0;
    }
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strcmp(s, reserved[i]) == 0)
            return 0;
    return 1;
}

static void deparse(sbuf *b, const fe_node *n)
{
    char num[64];
    switch (n->kind) {
    case FE_N_NAME:
        if (syntactic(n->name)) {
            puts_(b, n->name);
        } else {
            puts_(b, "`");
            puts_(b, n->name);
            puts_(b, "`");
        }
        return;
    case FE_N_NUM:
        fe_format_num(num, sizeof num, n->num);
        puts_(b, num);
        if (n->text[strlen(n->text) - 1] == 'L')
            puts_(b, "L");
        return;
    case FE_N_STR:
        puts_(b, "\"");
        for (const char *q = n->name; *q; q++) {
            if (*q == '"' || *q == '\\')
                puts_(b, "\\");
            if (*q == '\n')
                puts_(b, "\\n");
            else if (*q == '\t')
                puts_(b, "\\t");
            else
                put(b, q, 1);
        }
        puts_(b, "\"");
        return;
    case FE_N_CALL:
        puts_(b, n->name);
        puts_(b, "(");
        for (size_t i = 0; i < n->nargs; i++) {
            if (i)
                puts_(b, ", ");
            deparse(b, n->args[i]);
        }
        puts_(b, ")");
        return;
    case FE_N_ARG:
        puts_(b, n->name);
        puts_(b, " = ");
        deparse(b, n->a);
        return;
    case FE_N_PAREN:
        puts_(b, "(");
        deparse(b, n->a);
        puts_(b, ")");
        return;
    case FE_N_UNARY:
        put(b, &n->op, 1);
        deparse(b, n->a);
        return;
    case FE_N_BINARY:
        deparse(b, n->a);
        switch (n->op) {
        case '/': case '^': case ':': put(b, &n->op, 1); break;
        case 'B': puts_(b, " || "); break;
        default:
            puts_(b, " ");
            put(b, &n->op, 1);
            puts_(b, " ");
        }
        deparse(b, n->b);
        return;
    }
}

char *fe_deparse(ir_arena *arena, const fe_node *n)
{
    sbuf b = {0};
    deparse(&b, n);
    char *s = b.oom ? NULL : ir_arena_strdup(arena, b.s ? b.s : "");
    ir_free(b.s);
    return s;
}
