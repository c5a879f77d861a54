#include "ir/print.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/alloc.h"
#include "ir/problem.h"

typedef struct buf {
    char *s;
    size_t len, cap;
    int failed;
} buf;

__attribute__((format(printf, 2, 3)))
static void put(buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *s = ir_realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static const char *cmp_name(int64_t c)
{
    static const char *names[] = {"lt", "le", "gt", "ge", "eq", "ne"};
    return c >= 0 && c <= SJ_NE ? names[c] : "?";
}

/* "[n, 3, ?0]": sizes, g's symbol names, "?" for a derived size.  Written
 * straight into b, so long names are never cut. */
static void put_shape(buf *b, const ir_graph *g, const ir_shape *s)
{
    put(b, "[");
    for (int i = 0; i < s->rank; i++) {
        int64_t d = s->dim[i];
        const char *sep = i ? ", " : "";
        if (IR_DIM_IS_SIZE(d))
            put(b, "%s%" PRId64, sep, d);
        else if (IR_DIM_IS_SYM(d) && IR_DIM_SYM_INDEX(d) < (int)g->nsym)
            put(b, "%s%s", sep, g->sym[IR_DIM_SYM_INDEX(d)]);
        else
            put(b, "%s?", sep);
    }
    put(b, "]");
}

/* The shortest of %.15g, %.16g, %.17g that reads back as v. */
static void put_number(buf *b, double v)
{
    char s[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v || v != v)
            break;
    }
    put(b, "%s", s);
}

static void put_list(buf *b, const char *label, const int64_t *v, int n)
{
    put(b, "[%s=", label);
    for (int i = 0; i < n; i++)
        put(b, "%s%" PRId64, i ? "," : "", v[i]);
    put(b, "]");
}

static void put_attrs(buf *b, const ir_graph *g, const ir_node *n)
{
    const int64_t *a = n->attr;
    switch (n->op) {
    case IR_OP_INPUT:
        put(b, " \"%s\"", a[0] >= 0 && (uint32_t)a[0] < g->ninput ? g->input_name[a[0]] : "?");
        break;
    case IR_OP_POLYGAMMA: put(b, "[order=%" PRId64 "]", a[0]); break;
    case IR_OP_CMP: put(b, "[%s]", cmp_name(a[0])); break;
    case IR_OP_BROADCAST: put_list(b, "axes", a, ir_shape_of(g, n->input[0])->rank); break;
    case IR_OP_TRANSPOSE: put_list(b, "perm", a, n->shape.rank); break;
    case IR_OP_SLICE:
        put(b, "[axis=%" PRId64 ",%" PRId64 ":", a[0], a[1]);
        if (a[2] != INT64_MAX) /* INT64_MAX: to the end, as x[start:] */
            put(b, "%" PRId64, a[2]);
        put(b, "]");
        break;
    case IR_OP_CONCAT: put(b, "[axis=%" PRId64 "]", a[0]); break;
    case IR_OP_SUM: case IR_OP_RMAX: case IR_OP_MEAN: {
        put(b, "[axes=");
        int first = 1;
        for (int i = 0; i < 63; i++)
            if (a[0] & ((int64_t)1 << i)) {
                put(b, "%s%d", first ? "" : ",", i);
                first = 0;
            }
        put(b, "]");
        break;
    }
    case IR_OP_MATMUL:
        if (a[0] || a[1])
            put(b, "[%s%s%s]", a[0] ? "ta" : "", a[0] && a[1] ? "," : "", a[1] ? "tb" : "");
        break;
    case IR_OP_TRIL: case IR_OP_TRIU:
        if (a[0])
            put(b, "[k=%" PRId64 "]", a[0]);
        break;
    case IR_OP_TRISOLVE:
        put(b, "[%s,%s%s]", (a[0] & SJ_SOLVE_RIGHT) ? "right" : "left",
            (a[0] & SJ_SOLVE_UPPER) ? "upper" : "lower", (a[0] & SJ_SOLVE_TRANSPOSE) ? ",trans" : "");
        break;
    case IR_OP_CONST: {
        size_t count = ir_shape_numel(&n->shape);
        put(b, " ");
        if (n->shape.rank)
            put(b, "{");
        for (size_t i = 0; i < count && i < 6; i++)
        {
            put(b, "%s", i ? ", " : "");
            put_number(b, n->data[i]);
        }
        if (count > 6)
            put(b, ", ...");
        if (n->shape.rank)
            put(b, "}");
        break;
    }
    case IR_OP_FIT:
        put(b, "[problem=%" PRId64, a[0]);
        if (a[1])
            put(b, ",batched,mask=0x%" PRIx64, a[2]);
        if (a[3])
            put(b, ",previous");
        put(b, "]");
        break;
    default: break;
    }
}

/* A sub-graph of a problem, indented by two spaces. */
static void put_sub(buf *b, const char *what, const ir_graph *sub)
{
    if (!sub)
        return;
    char *s = ir_graph_print(sub);
    if (!s) {
        b->failed = 1;
        return;
    }
    put(b, "  %s ", what);
    for (const char *line = s; *line;) {
        size_t len = strcspn(line, "\n");
        put(b, "%s%.*s\n", line == s ? "" : "  ", (int)len, line);
        line += len + (line[len] == '\n');
    }
    ir_free(s);
}

/* The problem table of the fit nodes, after the graph. */
static void put_problems(buf *b, const ir_graph *g)
{
    for (uint32_t k = 0; k < g->nproblem; k++) {
        const ir_problem *p = &g->problem[k];
        put(b, "problem %u [max_iter=%" PRId64 ",tol=", k, p->max_iter);
        put_number(b, p->tol);
        put(b, ",%s] {\n", p->rule == SJ_FIT_GRAD_NORM ? "grad_norm" : "rel_objective");
        put_sub(b, "objective", p->objective);
        put_sub(b, "curvature", p->curvature);
        put_sub(b, "gradient", p->gradient);
        put_sub(b, "hessian", p->hessian);
        put(b, "}\n");
    }
}

char *ir_graph_print(const ir_graph *g)
{
    buf b = {ir_malloc(256), 0, 256, 0};
    if (!b.s)
        return NULL;
    if (g->nrewrite) {
        /* Which structure rewrites made this graph (passes/structure_*). */
        put(&b, "# rewrites:");
        for (uint32_t i = 0; i < g->nrewrite; i++) {
            put(&b, "%s %s", i ? "," : "", g->rewrite[i].name);
            if (g->rewrite[i].count > 1)
                put(&b, " x%u", g->rewrite[i].count);
        }
        put(&b, "\n");
    }
    put(&b, "graph(");
    for (uint32_t i = 0; i < g->ninput; i++) {
        put(&b, "%s%s: ", i ? ", " : "", g->input_name[i]);
        put_shape(&b, g, ir_shape_of(g, g->input[i]));
    }
    put(&b, ") {\n");
    for (uint32_t v = 0; v < g->nnode; v++) {
        const ir_node *n = ir_node_at(g, v);
        put(&b, "  %%%u = %s", v, ir_op_name(n->op));
        put_attrs(&b, g, n);
        for (int i = 0; i < n->ninput; i++)
            put(&b, "%s %%%d", i ? "," : "", (int)n->input[i]);
        put(&b, " : ");
        put_shape(&b, g, &n->shape);
        put(&b, "\n");
    }
    put(&b, "  return");
    for (uint32_t i = 0; i < g->noutput; i++)
        put(&b, "%s %%%d", i ? "," : "", (int)g->output[i]);
    put(&b, "\n}\n");
    put_problems(&b, g);
    if (b.failed) {
        ir_free(b.s);
        return NULL;
    }
    return b.s;
}
