/* The op enum and per-op facts, expanded from ir/ops.def. */
#ifndef IR_OP_H
#define IR_OP_H

typedef enum ir_op {
#define OP(id, name, kind, arity, shape) IR_OP_##id,
#include "ir/ops.def"
    IR_NOP
} ir_op;

typedef enum ir_kind {
    IR_KIND_SOURCE,
    IR_KIND_UNARY,
    IR_KIND_BINARY,
    IR_KIND_COMPARE,
    IR_KIND_SELECT,
    IR_KIND_SHAPE,
    IR_KIND_INDEX,
    IR_KIND_REDUCE,
    IR_KIND_LINALG,
    IR_KIND_FIT
} ir_kind;

const char *ir_op_name(ir_op op);
ir_kind ir_op_kind(ir_op op);
/* Number of inputs, -1 for variadic. */
int ir_op_arity(ir_op op);
/* Elementwise ops (unary, binary, compare, select) map equal-shaped inputs
 * to an output of the same shape, element by element. */
int ir_op_is_elementwise(ir_op op);

#endif
