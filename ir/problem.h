/* The problems of the fit op (docs/fit.md).  A graph owns a table of them
 * (g->problem, g->nproblem); a fit node names one by index (attr0).  A
 * problem holds sub-graphs, each an ordinary ir_graph with the inputs
 * (theta [k], data_1, ..., data_m) in that order:
 *
 *   objective  f(theta, data...) -> scalar (rank 0), its only output;
 *   curvature  C(theta, data...) -> [k, k], optional (Fisher information,
 *              average information); without it the solver uses the Hessian;
 *   gradient   derived: ∇θ f -> [k];
 *   hessian    derived: ∇²θ f -> [k, k].
 *
 * The derived graphs are filled by passes/rules_fit.c (pass_fill_problems)
 * once the graph is specialised; a problem of a graph with symbolic shapes
 * has none.  Specialising the outer graph specialises the objective and
 * curvature of every fit node to the shapes of that node's inputs (one
 * problem per fit node in the specialised graph).
 *
 * A fit node's sub-graphs see one problem: when the node is batched (attr1),
 * theta0 and the batched data inputs carry a leading batch axis that the
 * sub-graphs do not have, and the solver runs each item on its own. */
#ifndef IR_PROBLEM_H
#define IR_PROBLEM_H

#include "ir/graph.h"

typedef struct ir_problem {
    ir_graph *objective;
    ir_graph *curvature; /* NULL: the Hessian */
    ir_graph *gradient;  /* derived, NULL until filled */
    ir_graph *hessian;   /* derived, NULL until filled */
    int64_t max_iter;    /* Newton steps at most (>= 0) */
    double tol;          /* > 0 */
    int rule;            /* SJ_FIT_REL_OBJECTIVE or SJ_FIT_GRAD_NORM */
} ir_problem;

/* Attributes of the fit node. */
#define IR_FIT_PROBLEM 0 /* attr0: index into g->problem */
#define IR_FIT_BATCHED 1 /* attr1: 1 if theta0 is [B, k] and the output [B, k + 2] */
#define IR_FIT_MASK 2    /* attr2: bit j set if data input j (node input j + 1) is batched */
/* attr3: 1 if the output also carries the previous iterate (the point before
 * the last accepted step, theta0 if none was): [2k + 2], that iterate after
 * the iteration count and flag.  R's glm reports the working weights there. */
#define IR_FIT_PREVIOUS 3
/* Data inputs a fit node may have (bits of attr2). */
#define IR_FIT_MAX_DATA 62

/* Problem k of g, or NULL if k is out of range. */
static inline ir_problem *ir_graph_problem(const ir_graph *g, int64_t k)
{
    return k >= 0 && (uint64_t)k < g->nproblem ? &g->problem[k] : NULL;
}

/* Appends p to g's table, taking ownership of its graphs (freed on failure
 * too).  Returns the index, or -1 when out of memory (recorded on g). */
int ir_graph_add_problem(ir_graph *g, ir_problem *p);
/* Deep copy of p's graphs and settings into *out; -1 when out of memory. */
int ir_problem_copy(const ir_problem *p, ir_problem *out);
/* Frees p's graphs and zeroes it. */
void ir_problem_clear(ir_problem *p);
/* Appends deep copies of every problem of src to dst (indices are kept when
 * dst has none yet).  -1 when out of memory (recorded on dst). */
int ir_graph_copy_problems(ir_graph *dst, const ir_graph *src);
/* Frees every problem of g (ir_graph_free does this). */
void ir_graph_free_problems(ir_graph *g);

/* Number of data inputs of fit node n, and whether data input j is batched. */
static inline int ir_fit_ndata(const ir_node *n) { return n->ninput - 1; }
static inline int ir_fit_data_batched(const ir_node *n, int j)
{
    return n->attr[IR_FIT_BATCHED] && ((n->attr[IR_FIT_MASK] >> j) & 1);
}

/* The parameters k of fit node n (of concrete output shape). */
static inline int64_t ir_fit_nparam(const ir_node *n)
{
    return (n->shape.dim[n->shape.rank - 1] - 2) / (n->attr[IR_FIT_PREVIOUS] ? 2 : 1);
}

/* Checks that problem k of g fits node v (a fit node of g): the objective
 * has 1 + ndata inputs of the node's per-item ranks (and, where both are
 * sizes, dimensions), one scalar output; the curvature (if any) the same
 * inputs and a [k, k] output; derived graphs likewise.  Errors are
 * SJ_ERR_SHAPE naming the value and the input. */
sj_status ir_fit_check(const ir_graph *g, ir_val v, ir_err *err);

/* The per-item shape of input i of fit node n (the batch axis removed). */
ir_shape ir_fit_item_shape(const ir_graph *g, const ir_node *n, int i);

#endif
