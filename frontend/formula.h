/* Model formulas in R and lme4 syntax: the lexer, the parser (an AST whose
 * nodes keep their byte positions), R's deparser, and term expansion (R's
 * terms.formula: a*b, a/b, (a+b)^2, a - b, intercept rules, lme4's random
 * effect bars).  Internal; design.h turns expanded terms and a table into
 * matrices.  The grammar and the rules are described in docs/formula.md.
 *
 * Errors are reported as "formula:LINE:COL: message", followed by the
 * formula and a caret under the column when it fits on one line. */
#ifndef FE_FORMULA_H
#define FE_FORMULA_H

#include <stddef.h>

#include "ir/arena.h"
#include "ir/err.h"

/* ---- lexer ---------------------------------------------------------------- */

typedef enum fe_tok_kind {
    FE_T_EOF,
    FE_T_NAME,   /* identifier or `backquoted name` */
    FE_T_NUM,    /* 2, 0.5, 1e-3, 2L */
    FE_T_STR,    /* "L" or 'L' */
    FE_T_OP,     /* one of ~ + - * / : ^ | ( ) , = */
    FE_T_OROR,   /* || */
    FE_T_SPECIAL /* %in% or another %op% (rejected by the parser) */
} fe_tok_kind;

typedef struct fe_token {
    fe_tok_kind kind;
    char op;          /* FE_T_OP */
    size_t pos, len;  /* byte range in the source */
    const char *text; /* NAME: the name; STR: the unescaped value; NUM: source text
                         (arena-owned, NUL-terminated) */
    double num;
} fe_token;

/* Splits src into tokens (ending with FE_T_EOF), allocated in arena. */
sj_status fe_formula_lex(const char *src, ir_arena *arena, fe_token **out, size_t *ntok,
                         ir_err *err);

/* ---- AST ------------------------------------------------------------------ */

typedef enum fe_node_kind {
    FE_N_NAME,   /* name: column name */
    FE_N_NUM,    /* num (text: source spelling) */
    FE_N_STR,    /* name: the string */
    FE_N_CALL,   /* name(args...); an argument may be FE_N_ARG */
    FE_N_ARG,    /* name = a (only as a call argument) */
    FE_N_BINARY, /* a op b; op one of + - * / : ^ | and 'B' for || */
    FE_N_UNARY,  /* op a; op '+' or '-' */
    FE_N_PAREN   /* ( a ) */
} fe_node_kind;

typedef struct fe_node fe_node;
struct fe_node {
    fe_node_kind kind;
    char op;
    size_t pos;   /* byte offset of the node's first character */
    size_t oppos; /* BINARY: the operator's offset */
    const char *name;
    const char *text;
    double num;
    fe_node *a, *b;
    fe_node **args;
    size_t nargs;
};

typedef struct fe_formula {
    ir_arena arena; /* owns the nodes and strings */
    const char *src;
    fe_node *lhs; /* NULL for a one-sided formula "~ x" */
    fe_node *rhs;
    size_t tilde; /* offset of '~' */
} fe_formula;

/* Parses src.  On success *out is a new formula (free with fe_formula_free);
 * on failure NULL and err holds e.g. "formula:1:9: expected ')'". */
sj_status fe_formula_parse(const char *src, fe_formula **out, ir_err *err);
void fe_formula_free(fe_formula *f);

/* R's deparse of an expression, e.g. "I(wt^2)", "log(x + 1)",
 * "factor(tension, levels = c(\"L\", \"M\", \"H\"))".  Arena-allocated;
 * NULL when out of memory. */
char *fe_deparse(ir_arena *arena, const fe_node *n);

/* Formats x as R's as.character does for doubles (15 significant digits,
 * fixed or scientific, whichever is narrower; "1e+05", "0.001", "Inf"),
 * independent of the C locale.  size >= 32. */
void fe_format_num(char *buf, size_t size, double x);

/* Records an error at byte offset pos of src: "formula:L:C: msg" plus the
 * formula and a caret line.  Returns status. */
sj_status fe_formula_fail(ir_err *err, sj_status status, const char *src, size_t pos,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- terms (R's terms.formula, lme4's findbars) ---------------------------- */

/* A variable: one distinct expression (by its deparsed text), e.g. wool,
 * log(hp), factor(cyl).  Variables are numbered in order of appearance. */
typedef struct fe_var {
    const fe_node *expr;
    const char *label;
} fe_var;

/* A term: a set of variables, ascending; the empty set is the intercept. */
typedef struct fe_term {
    size_t nvar;
    size_t *vars;
    const char *label; /* "wool:tension" */
} fe_term;

/* One random-effect term (lhs | group) after lme4's expansion of g1/g2 and
 * ||: the left side's terms and intercept, and the grouping factor as the
 * interaction of one or more variables. */
typedef struct fe_bar {
    size_t nterm;
    fe_term *terms;
    int intercept;
    size_t ngroup;
    size_t *group; /* variables; the grouping factor is their interaction */
    const char *group_label; /* "Subject", "g2:g1" */
    const char *label;       /* "Days | Subject" */
    size_t pos;              /* offset of the '(' */
} fe_bar;

typedef struct fe_terms {
    const fe_node *response; /* NULL when one-sided */
    size_t nvar;
    fe_var *vars;
    size_t nterm;
    fe_term *terms; /* ordered as R orders them: by degree, then as written */
    int intercept;
    size_t noffset;
    const fe_node **offsets; /* the argument of each offset(...) */
    size_t nbar;
    fe_bar *bars; /* in formula order (design.c reorders as lme4 does) */
} fe_terms;

/* Expands the formula's right-hand side.  Everything is allocated in arena
 * (which may be the formula's). */
sj_status fe_terms_expand(const fe_formula *f, ir_arena *arena, fe_terms *out, ir_err *err);

#endif
