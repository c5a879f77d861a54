/* The IR graph: an append-only list of nodes in topological order.  A value
 * is the index of the node that computes it (every node has one output), so
 * values stay valid while the graph grows.  Everything a node points to lives
 * in the graph's arena.
 *
 * Errors are sticky (the SQLite builder habit): the first failing
 * ir_add_node records its error in g->err and returns IR_NONE; any later call
 * given IR_NONE returns IR_NONE without a new message.  Passes emit freely
 * and check g->err once. */
#ifndef IR_GRAPH_H
#define IR_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "ir/arena.h"
#include "ir/err.h"
#include "ir/op.h"
#include "ir/shape.h"

typedef int32_t ir_val;
#define IR_NONE ((ir_val)-1)
#define IR_NATTR 8

typedef struct ir_node {
    ir_op op;
    int ninput;
    const ir_val *input; /* arena-owned */
    int64_t attr[IR_NATTR];
    ir_shape shape;
    const double *data; /* CONST only: row-major, arena-owned */
} ir_node;

/* One entry of a graph's rewrite log: a structure rewrite (passes/structure_*)
 * and how many times it fired on the way to this graph.  name is a static
 * string owned by the pass. */
typedef struct ir_rewrite {
    const char *name;
    uint32_t count;
} ir_rewrite;

typedef struct ir_graph {
    ir_arena arena;
    ir_node *node;
    uint32_t nnode, capnode;
    ir_val *input;            /* INPUT node of each input position */
    const char **input_name;  /* arena strings */
    uint32_t ninput, capinput;
    ir_val *output;
    uint32_t noutput;
    const char **sym;         /* dimension names; "?k" for anonymous */
    uint32_t nsym, capsym;
    ir_err err;
    ir_rewrite *rewrite;      /* rewrite log (printed as a comment header) */
    uint32_t nrewrite;
    struct ir_problem *problem; /* problems of the fit nodes (ir/problem.h), owned */
    uint32_t nproblem;
} ir_graph;

/* An owned graph, or NULL when out of memory. */
ir_graph *ir_graph_new(void);
void ir_graph_free(ir_graph *g);
/* Deep copy (nodes, inputs, outputs, symbols, rewrite log, fit problems);
 * NULL when out of memory. */
ir_graph *ir_graph_copy(const ir_graph *g);

static inline const ir_node *ir_node_at(const ir_graph *g, ir_val v)
{
    return &g->node[v];
}
static inline const ir_shape *ir_shape_of(const ir_graph *g, ir_val v)
{
    return &g->node[v].shape;
}
static inline int ir_graph_ok(const ir_graph *g) { return g->err.status == SJ_OK; }

/* The symbol index of a dimension name (added if new).  name NULL makes a
 * fresh anonymous symbol.  Returns -1 when out of memory (recorded). */
int ir_graph_symbol(ir_graph *g, const char *name);
/* Parses "n", "12", "?" or NULL into a dimension of g. */
int ir_graph_parse_dim(ir_graph *g, const char *spec, int64_t *dim);

/* Appends a node.  `declared` is the output shape of ops whose shape is
 * declared rather than inferred (sources, reshape, broadcast, segment_sum,
 * one_hot); NULL otherwise.  `data` (CONST) is copied.  Infers and checks the
 * output shape; on error records it and returns IR_NONE. */
ir_val ir_add_node(ir_graph *g, ir_op op, int ninput, const ir_val *inputs,
                   const int64_t *attr, int nattr, const ir_shape *declared,
                   const double *data);
ir_val ir_add_input(ir_graph *g, const char *name, const ir_shape *shape);
/* Registers an existing INPUT node v under name as the next input position
 * (for passes that copy a graph node by node); 0 or -1 when out of memory. */
int ir_add_input_alias(ir_graph *g, ir_val v, const char *name);
/* Position of the input called name, or -1. */
int ir_graph_find_input(const ir_graph *g, const char *name);
/* Replaces the output list. */
sj_status ir_graph_set_outputs(ir_graph *g, uint32_t n, const ir_val *outs);

/* The rewrite log.  note adds count firings of the rewrite `name` (a static
 * string); merge adds every entry of src to dst.  -1 when out of memory (the
 * log is then unchanged; the graph itself is not marked failed). */
int ir_graph_note_rewrite(ir_graph *g, const char *name, uint32_t count);
int ir_graph_merge_rewrites(ir_graph *dst, const ir_graph *src);

/* Short emitters for passes and builders. */
ir_val ir_unary(ir_graph *g, ir_op op, ir_val x);
ir_val ir_binary(ir_graph *g, ir_op op, ir_val a, ir_val b);
ir_val ir_scalar(ir_graph *g, double v);
/* x broadcast to shape, with input axis i going to output axis
 * rank(shape) - rank(x) + i (NumPy's trailing alignment). */
ir_val ir_broadcast_trailing(ir_graph *g, ir_val x, const ir_shape *shape);

#endif
