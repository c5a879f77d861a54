/* Buffer planning, done once per kernel before any IR is built:
 *
 *   live     nodes that reach an output (dead code is not compiled);
 *   inlined  element-generating nodes computed inside their readers' loops
 *            (fusion): a node is inlined when every reader reads it element
 *            by element and it is either cheap to repeat (moves elements
 *            only, over cheap inputs), or read once by a reader that does not
 *            replicate elements, or a cheap elementwise expression (a few
 *            adds and multiplies, no division or libm call) read a few
 *            times: recomputing it in each reader's loop costs less than
 *            writing it to memory and reading it back;
 *   where    every other value gets memory: an input, a constant, an alias
 *            (reshape), an output buffer (when no op after it can fail) or a
 *            scratch region, reused once its last reader has run. */
#include <stdint.h>
#include <string.h>

#include "codegen/cg.h"
#include "ir/alloc.h"

/* A transpose that swaps the last two axes and keeps the batch axes. */
static int swaps_last_two(const ir_node *n)
{
    int r = n->shape.rank;
    if (n->op != IR_OP_TRANSPOSE || r < 2)
        return 0;
    for (int i = 0; i < r - 2; i++)
        if (n->attr[i] != i)
            return 0;
    return n->attr[r - 2] == r - 1 && n->attr[r - 1] == r - 2;
}

ir_val cg_matmul_operand(const ir_graph *g, ir_val v, int i, int *trans)
{
    const ir_node *n = ir_node_at(g, v);
    ir_val u = n->input[i];
    *trans = n->attr[i] != 0;
    const ir_node *un = ir_node_at(g, u);
    if (swaps_last_two(un)) {
        *trans = !*trans;
        u = un->input[0];
    }
    return u;
}

ir_val cg_logdet_factor(const ir_graph *g, ir_val v)
{
    ir_val a = ir_node_at(g, v)->input[0];
    for (ir_val c = v - 1; c > a; c--) {
        const ir_node *n = ir_node_at(g, c);
        if (n->op == IR_OP_CHOLESKY && n->input[0] == a)
            return c;
    }
    return IR_NONE;
}

void cg_operands(const ir_graph *g, ir_val v, ir_val *ops)
{
    const ir_node *n = ir_node_at(g, v);
    int t;
    for (int i = 0; i < n->ninput; i++)
        ops[i] = n->op == IR_OP_MATMUL ? cg_matmul_operand(g, v, i, &t) : n->input[i];
    if (n->op == IR_OP_LOGDET) {
        ir_val c = cg_logdet_factor(g, v);
        if (c != IR_NONE)
            ops[0] = c;
    }
}

/* Working state of the planner. */
typedef struct planner {
    const ir_graph *g;
    cg_plan *p;
    uint32_t *nuse;
    uint8_t *needbuf, *repl, *cheap, *is_output;
    int32_t *cost;      /* arithmetic cost of one element of v, inlined inputs included */
    int64_t *last;      /* last node that reads each buffer root */
    int64_t *root;      /* buffer root (through aliases) */
    int64_t *stamp;     /* visit marks for reader walks */
    ir_val *ops;        /* operand scratch, max arity */
    int64_t (*live_iv)[2]; /* allocated scratch intervals [offset, end) */
    size_t nlive;
} planner;

static int elem_read(const cg_rule *r, int i)
{
    return r->elem_inputs == CG_ALL_INPUTS || (i < 32 && (r->elem_inputs >> i) & 1);
}

static void mark_live(planner *P)
{
    const ir_graph *g = P->g;
    for (uint32_t k = 0; k < g->noutput; k++) {
        P->p->live[g->output[k]] = 1;
        P->is_output[g->output[k]] = 1;
    }
    for (int64_t v = (int64_t)g->nnode - 1; v >= 0; v--) {
        if (!P->p->live[v])
            continue;
        cg_operands(g, (ir_val)v, P->ops);
        for (int i = 0; i < g->node[v].ninput; i++)
            P->p->live[P->ops[i]] = 1;
    }
}

static void count_uses(planner *P)
{
    const ir_graph *g = P->g;
    for (uint32_t v = 0; v < g->nnode; v++) {
        if (!P->p->live[v])
            continue;
        const cg_rule *r = cg_rule_of(g->node[v].op);
        cg_operands(g, (ir_val)v, P->ops);
        for (int i = 0; i < g->node[v].ninput; i++) {
            ir_val u = P->ops[i];
            P->nuse[u]++;
            if (!elem_read(r, i))
                P->needbuf[u] = 1;
            if (r->flags & CG_REPLICATES)
                P->repl[u] = 1;
        }
    }
}

/* Rough cost of one element of an op: moves 0, add-like 1, division and
 * square root 4 (their latency), libm and special functions 20. */
static int op_cost(ir_op op)
{
    switch (op) {
    case IR_OP_NEG: case IR_OP_SQUARE: case IR_OP_ABS: case IR_OP_SIGN: case IR_OP_ADD:
    case IR_OP_SUB: case IR_OP_MUL: case IR_OP_MIN: case IR_OP_MAX: case IR_OP_CMP:
    case IR_OP_SELECT: case IR_OP_OUTER: case IR_OP_KRON:
        return 1;
    case IR_OP_DIV: case IR_OP_RECIP: case IR_OP_SQRT:
        return 4;
    default:
        return cg_rule_of(op)->flags & CG_INDEX_ONLY ? 0 : 20;
    }
}

/* A value read by several element-by-element readers is recomputed in each
 * when the extra work, cost × (reads - 1), stays within this; costlier or
 * more widely read values are materialised once.  x*y read twice (bench
 * elementwise variant) went from 0.42 to about 1.0 of gcc's loop. */
#define CG_RECOMPUTE_MAX 4

static void choose_inlined(planner *P)
{
    const ir_graph *g = P->g;
    for (uint32_t v = 0; v < g->nnode; v++) {
        const ir_node *n = &g->node[v];
        const cg_rule *r = cg_rule_of(n->op);
        if (!P->p->live[v] || !r->gen)
            continue;
        int cheap = (r->flags & CG_INDEX_ONLY) != 0;
        int64_t cost = op_cost(n->op);
        for (int i = 0; i < n->ninput; i++) {
            ir_val u = n->input[i];
            cheap = cheap && (!P->p->inl[u] || P->cheap[u]);
            if (P->p->inl[u])
                cost += P->cost[u];
        }
        P->cheap[v] = (uint8_t)cheap;
        P->cost[v] = (int32_t)(cost < INT32_MAX ? cost : INT32_MAX);
        if (P->is_output[v] || P->needbuf[v])
            continue;
        int recompute = !P->repl[v] && cost * (int64_t)(P->nuse[v] - 1) <= CG_RECOMPUTE_MAX;
        if (cheap || (P->nuse[v] == 1 && !P->repl[v]) || recompute) {
            P->p->inl[v] = 1;
            P->p->ninlined++;
        }
    }
}

/* Records that materialised node `reader` reads the buffers under u. */
static void note_reads(planner *P, ir_val u, int64_t reader)
{
    if (P->stamp[u] == reader)
        return;
    P->stamp[u] = reader;
    if (!P->p->inl[u]) {
        int64_t r = P->root[u];
        if (P->last[r] < reader)
            P->last[r] = reader;
        return;
    }
    const ir_node *n = ir_node_at(P->g, u);
    for (int i = 0; i < n->ninput; i++)
        note_reads(P, n->input[i], reader);
}

static void find_last_reads(planner *P)
{
    const ir_graph *g = P->g;
    for (uint32_t v = 0; v < g->nnode; v++) {
        P->root[v] = v;
        P->last[v] = -1;
        P->stamp[v] = -1;
        if (cg_rule_of(g->node[v].op)->flags & CG_IS_ALIAS)
            P->root[v] = P->root[g->node[v].input[0]];
    }
    for (uint32_t v = 0; v < g->nnode; v++) {
        if (!P->p->live[v] || P->p->inl[v])
            continue;
        cg_operands(g, (ir_val)v, P->ops);
        for (int i = 0; i < g->node[v].ninput; i++)
            note_reads(P, P->ops[i], v);
    }
    for (uint32_t k = 0; k < g->noutput; k++)
        P->last[P->root[g->output[k]]] = INT64_MAX;
}

/* First-fit allocation of a 64-byte aligned region of scratch. */
static int64_t alloc_region(planner *P, size_t bytes)
{
    int64_t size = (int64_t)ir_align64(bytes), at = CG_SCRATCH_HEADER;
    size_t i = 0;
    for (; i < P->nlive; i++) {
        if (P->live_iv[i][0] - at >= size)
            break;
        at = P->live_iv[i][1];
    }
    memmove(&P->live_iv[i + 1], &P->live_iv[i], (P->nlive - i) * sizeof P->live_iv[0]);
    P->live_iv[i][0] = at;
    P->live_iv[i][1] = at + size;
    P->nlive++;
    if ((size_t)(at + size) > P->p->scratch)
        P->p->scratch = (size_t)(at + size);
    return at;
}

static void free_region(planner *P, int64_t at)
{
    for (size_t i = 0; i < P->nlive; i++)
        if (P->live_iv[i][0] == at) {
            memmove(&P->live_iv[i], &P->live_iv[i + 1], (P->nlive - i - 1) * sizeof P->live_iv[0]);
            P->nlive--;
            return;
        }
}

/* The last node that can fail; values after it may go straight to outputs. */
static int64_t last_failing(planner *P)
{
    int64_t last = -1;
    for (uint32_t v = 0; v < P->g->nnode; v++)
        if (P->p->live[v] && (cg_rule_of(P->g->node[v].op)->flags & CG_CAN_FAIL))
            last = v;
    return last;
}

static int first_output(const ir_graph *g, ir_val v)
{
    for (uint32_t k = 0; k < g->noutput; k++)
        if (g->output[k] == v)
            return (int)k;
    return -1;
}

/* An op that can fail and reads something non-empty: its checks (index
 * ranges) must run even when its result is empty
 * (tests/fuzz/graph/crashes/codegen-empty-one-hot-check). */
static int checks_inputs(const ir_graph *g, ir_val v)
{
    const ir_node *n = &g->node[v];
    if (!(cg_rule_of(n->op)->flags & CG_CAN_FAIL))
        return 0;
    for (int i = 0; i < n->ninput; i++)
        if (ir_shape_numel(ir_shape_of(g, n->input[i])) > 0)
            return 1;
    return 0;
}

static void place(planner *P, ir_val v, int64_t last_fail)
{
    const ir_graph *g = P->g;
    const ir_node *n = &g->node[v];
    cg_plan *p = P->p;
    const cg_rule *r = cg_rule_of(n->op);
    size_t numel = ir_shape_numel(&n->shape);
    if (n->op == IR_OP_INPUT) {
        p->where[v] = CG_INPUT;
        p->at[v] = n->attr[0];
    } else if (n->op == IR_OP_CONST) {
        p->where[v] = CG_CONST;
    } else if (r->flags & CG_IS_ALIAS) {
        p->where[v] = CG_ALIAS;
        p->at[v] = P->root[v];
    } else if (numel == 0 && !p->inl[v] && checks_inputs(g, v)) {
        p->where[v] = CG_CHECKS;
    } else if (p->inl[v] || numel == 0) {
        p->where[v] = CG_NOWHERE;
    } else if (P->is_output[v] && v > last_fail) {
        p->where[v] = CG_OUTPUT;
        p->at[v] = first_output(g, v);
    } else {
        p->where[v] = CG_SCRATCH;
        p->at[v] = alloc_region(P, numel * sizeof(double));
        p->nbuffer++;
    }
    if (r->temp && (numel > 0 || p->where[v] == CG_CHECKS)) {
        size_t t = r->temp(g, v);
        if (t)
            p->temp[v] = alloc_region(P, t);
    }
}

static void release(planner *P, ir_val v, uint32_t *head, uint32_t *next)
{
    if (P->p->temp[v] >= 0)
        free_region(P, P->p->temp[v]);
    for (uint32_t r = head[v]; r != UINT32_MAX; r = next[r])
        if (P->p->where[r] == CG_SCRATCH)
            free_region(P, P->p->at[r]);
}

static sj_status allocate(planner *P, ir_err *err)
{
    const ir_graph *g = P->g;
    uint32_t *head = ir_malloc(g->nnode * sizeof *head), *next = ir_malloc(g->nnode * sizeof *next);
    if (!head || !next) {
        ir_free(head);
        ir_free(next);
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "codegen: out of memory");
    }
    for (uint32_t v = 0; v < g->nnode; v++)
        head[v] = UINT32_MAX;
    for (uint32_t v = 0; v < g->nnode; v++) { /* buckets: roots by last reader */
        int64_t l = P->last[v];
        if (P->root[v] == v && l >= 0 && l != INT64_MAX) {
            next[v] = head[l];
            head[l] = v;
        }
    }
    int64_t last_fail = last_failing(P);
    P->p->scratch = CG_SCRATCH_HEADER;
    for (uint32_t v = 0; v < g->nnode; v++) {
        if (!P->p->live[v])
            continue;
        place(P, (ir_val)v, last_fail);
        release(P, (ir_val)v, head, next);
    }
    ir_free(head);
    ir_free(next);
    return SJ_OK;
}

static void planner_free(planner *P)
{
    ir_free(P->nuse);
    ir_free(P->needbuf);
    ir_free(P->repl);
    ir_free(P->cheap);
    ir_free(P->cost);
    ir_free(P->is_output);
    ir_free(P->last);
    ir_free(P->root);
    ir_free(P->stamp);
    ir_free(P->ops);
    ir_free(P->live_iv);
}

sj_status cg_plan_fill(const ir_graph *g, cg_plan *p, ir_err *err)
{
    size_t n = g->nnode ? g->nnode : 1;
    int maxin = 1;
    for (uint32_t v = 0; v < g->nnode; v++)
        if (g->node[v].ninput > maxin)
            maxin = g->node[v].ninput;
    memset(p, 0, sizeof *p);
    p->n = g->nnode;
    planner P = {.g = g, .p = p};
    p->live = ir_calloc(n, 1);
    p->inl = ir_calloc(n, 1);
    p->where = ir_calloc(n, 1);
    p->at = ir_calloc(n, sizeof *p->at);
    p->temp = ir_malloc(n * sizeof *p->temp);
    P.nuse = ir_calloc(n, sizeof *P.nuse);
    P.needbuf = ir_calloc(n, 1);
    P.repl = ir_calloc(n, 1);
    P.cheap = ir_calloc(n, 1);
    P.cost = ir_calloc(n, sizeof *P.cost);
    P.is_output = ir_calloc(n, 1);
    P.last = ir_malloc(n * sizeof *P.last);
    P.root = ir_malloc(n * sizeof *P.root);
    P.stamp = ir_malloc(n * sizeof *P.stamp);
    P.ops = ir_malloc((size_t)maxin * sizeof *P.ops);
    P.live_iv = ir_malloc(2 * n * sizeof *P.live_iv);
    if (!p->live || !p->inl || !p->where || !p->at || !p->temp || !P.nuse || !P.needbuf ||
        !P.repl || !P.cheap || !P.cost || !P.is_output || !P.last || !P.root || !P.stamp || !P.ops ||
        !P.live_iv) {
        planner_free(&P);
        cg_plan_free(p);
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "codegen: out of memory");
    }
    for (size_t v = 0; v < n; v++)
        p->temp[v] = -1;
    mark_live(&P);
    count_uses(&P);
    choose_inlined(&P);
    find_last_reads(&P);
    sj_status st = allocate(&P, err);
    planner_free(&P);
    if (st != SJ_OK)
        cg_plan_free(p);
    return st;
}

void cg_plan_free(cg_plan *p)
{
    ir_free(p->live);
    ir_free(p->inl);
    ir_free(p->where);
    ir_free(p->at);
    ir_free(p->temp);
    memset(p, 0, sizeof *p);
}
