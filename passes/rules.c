/* The rule tables, expanded from ir/ops.def: an op without jvp_<name> or
 * vjp_<name> fails the link with the missing rule's name. */
#include "passes/ad.h"

jvp_rule *const ad_jvp_rules[IR_NOP] = {
#define OP(id, name, kind, arity, shape) [IR_OP_##id] = jvp_##name,
#include "ir/ops.def"
};

vjp_rule *const ad_vjp_rules[IR_NOP] = {
#define OP(id, name, kind, arity, shape) [IR_OP_##id] = vjp_##name,
#include "ir/ops.def"
};
