/* Shapes with symbolic dimensions.  A dimension is a size >= 0, a symbol of
 * the graph (IR_DIM_SYM(k)) or IR_DIM_ANY (a derived size known only after
 * specialisation).  A specialised graph has sizes only. */
#ifndef IR_SHAPE_H
#define IR_SHAPE_H

#include <stddef.h>
#include <stdint.h>

#include "statjit.h"

#define IR_MAX_RANK SJ_MAX_RANK
#define IR_DIM_ANY ((int64_t)-1)
#define IR_DIM_SYM(k) ((int64_t)-2 - (int64_t)(k))
#define IR_DIM_IS_SYM(d) ((d) <= -2)
#define IR_DIM_SYM_INDEX(d) ((int)(-2 - (d)))
#define IR_DIM_IS_SIZE(d) ((d) >= 0)

typedef struct ir_shape {
    int rank;
    int64_t dim[IR_MAX_RANK];
} ir_shape;

struct ir_graph;
struct ir_node;
struct ir_err;

/* Every dimension is a size. */
int ir_shape_is_concrete(const ir_shape *s);
int ir_shape_equal(const ir_shape *a, const ir_shape *b);
/* Number of elements; 0 and *overflow = 1 if it does not fit in size_t. */
size_t ir_shape_numel(const ir_shape *s);
int ir_shape_numel_overflows(const ir_shape *s);
/* Writes "[n, 3, ?]" using g's symbol names (g may be NULL). */
const char *ir_shape_str(const struct ir_graph *g, const ir_shape *s,
                         char *buf, size_t size);
/* Two dimensions that cannot be the same size: both sizes and different (at
 * build time a symbol may still turn out to equal anything). */
int ir_dim_conflict(int64_t a, int64_t b);
/* The more specific of two compatible dimensions. */
int64_t ir_dim_merge(int64_t a, int64_t b);

/* Runs node n's shape rule over the shapes of its inputs; writes the output
 * shape to *out.  Errors name the op, the value and the shapes. */
int ir_infer_shape(const struct ir_graph *g, const struct ir_node *n,
                   int64_t value, ir_shape *out, struct ir_err *err);

#endif
