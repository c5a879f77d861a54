/* Covariance trees: the node layout shared by frontend/cov*.c.  Internal.
 *
 * A node is allocated in its graph's arena (freed with the graph).  Leaves
 * own their parameters; operators own only pointers to their children.  A
 * root caches its parameter layout (the free parameters in depth-first
 * order of first appearance) once sealed; sj_cov_build emits each node once
 * per build (memo keyed by a build stamp). */
#ifndef FE_COV_H
#define FE_COV_H

#include <stdint.h>

#include "frontend/handles.h"
#include "ir/graph.h"

enum { FE_MAGIC_COV = 0x534a4356 /* "SJCV" */ };

typedef enum fe_cov_kind {
    FE_COV_IDENTITY,
    FE_COV_SCALAR,
    FE_COV_DIAGONAL,
    FE_COV_EQUICORR,
    FE_COV_COMPSYM,
    FE_COV_AR1,
    FE_COV_UNSTRUCTURED,
    FE_COV_LOWER_TRI,
    FE_COV_DUMMY,
    FE_COV_FIXED,
    FE_COV_SUM,
    FE_COV_BLOCK_DIAG,
    FE_COV_PROPAGATE,
    FE_COV_KRON,
    FE_COV_HADAMARD,
    FE_COV_GRAM
} fe_cov_kind;

typedef struct fe_cov_param {
    const char *name; /* local name, arena */
    sj_transform tr;
    double init;      /* natural scale */
    double value;     /* natural scale, when fixed */
    int fixed;
    int pos;          /* θ position during a build (-1 when fixed) */
} fe_cov_param;

/* One free parameter of a root's layout. */
typedef struct fe_cov_slot {
    sj_cov *leaf;
    int index;        /* into leaf->param */
    const char *name; /* full name, arena */
} fe_cov_slot;

struct sj_cov {
    uint32_t magic;
    fe_cov_kind kind;
    sj_graph *g;
    const char *name;  /* "" when unnamed */
    const char *label; /* "'name'" or "(unnamed)", for messages */
    int64_t rows, cols; /* IR dimensions (sizes, symbols or IR_DIM_ANY) */
    int nparam;
    fe_cov_param *param;
    int nchild;
    sj_cov **child;
    sj_value data;     /* DUMMY: codes; FIXED: the matrix */
    const char *dim;   /* IDENTITY, SCALAR: dimension spec; DUMMY: nlevels spec */
    const char **level; /* DUMMY: column names or NULL */
    int gram;          /* GRAM: sj_gram */
    int sealed;
    int nslot;         /* layout, valid when has_layout */
    int has_layout;
    fe_cov_slot *slot;
    uint32_t stamp;    /* build memo */
    sj_value built;
    int visit;         /* scratch mark for tree walks */
};

/* Records a build error on g (first one wins) and copies it to the context;
 * returns status. */
sj_status fe_cov_fail(sj_graph *g, sj_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copies g's recorded error to the context, prefixed with fn unless it is
 * already, and returns its status (SJ_INTERNAL if none is recorded). */
sj_status fe_cov_error(sj_graph *g, const char *fn);
/* True when g is a valid graph with no recorded error. */
int fe_cov_graph_ok(const sj_graph *g);
/* The IR value of public id v of g, or IR_NONE after recording an error
 * naming fn and what. */
ir_val fe_cov_arg(sj_graph *g, sj_value v, const char *fn, const char *what);
/* "'name'" or "(unnamed)" for messages. */
const char *fe_cov_label(const sj_cov *c);
/* Allocates a node of g (NULL and recorded when out of memory). */
sj_cov *fe_cov_new(sj_graph *g, fe_cov_kind kind, const char *name, int nparam, int nchild,
                   const char *fn);
/* Sets parameter i of leaf c. */
int fe_cov_param_init(sj_cov *c, int i, const char *name, double init, sj_transform t,
                      const char *fn);
/* Checks a child argument: NULL (quietly when g already failed), another
 * graph's node, or a dead handle. */
int fe_cov_check_child(sj_graph *g, const sj_cov *child, const char *fn, const char *what);
/* A valid node handle. */
int fe_cov_valid(const sj_cov *c);

/* Transforms (cov_transform.c). */
/* NULL when t is a valid chain, else what is wrong with it. */
const char *fe_transform_check(const sj_transform *t);
int fe_transform_equal(const sj_transform *a, const sj_transform *b);
/* Applies t elementwise to x in the graph. */
sj_value fe_transform_emit(sj_graph *g, const sj_transform *t, sj_value x);
/* A short description ("exp", "sigmoid_range(-1, 1) then ...") into buf. */
const char *fe_transform_str(const sj_transform *t, char *buf, size_t size);

/* Emission (cov_leaves.c, cov_operators.c, cov_dummy.c): the matrix of one
 * node from its parameter vector `par` (natural scale, rank 1 of length
 * nparam; SJ_INVALID when nparam is 0) or its children's built values. */
sj_value fe_cov_emit_leaf(sj_cov *c, sj_value par);
sj_value fe_cov_emit_operator(sj_cov *c, const sj_value *kids);
sj_value fe_cov_emit_dummy(sj_cov *c);
/* Scalar k of a rank-1 vector. */
sj_value fe_cov_element(sj_graph *g, sj_value vec, int64_t k);
/* A rank-2 value of zeros with IR dimensions rows × cols. */
sj_value fe_cov_zeros(sj_graph *g, int64_t rows, int64_t cols);
/* The dimension string of an IR dimension (a size, a symbol's name, or "?"),
 * arena-owned; NULL when out of memory. */
const char *fe_cov_dim_str(sj_graph *g, int64_t d);

#endif
