#include "ir/op.h"

static const struct {
    const char *name;
    ir_kind kind;
    int arity;
} op_info[IR_NOP] = {
#define OP(id, name, kind, arity, shape) [IR_OP_##id] = {#name, IR_KIND_##kind, arity},
#include "ir/ops.def"
};

const char *ir_op_name(ir_op op) { return op < IR_NOP ? op_info[op].name : "?"; }
ir_kind ir_op_kind(ir_op op) { return op_info[op].kind; }
int ir_op_arity(ir_op op) { return op_info[op].arity; }

int ir_op_is_elementwise(ir_op op)
{
    switch (op_info[op].kind) {
    case IR_KIND_UNARY:
    case IR_KIND_BINARY:
    case IR_KIND_COMPARE:
    case IR_KIND_SELECT:
        return 1;
    default:
        return 0;
    }
}
