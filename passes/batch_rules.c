/* The batching rule table, expanded from ir/ops.def: an op without
 * bat_<name> fails the link with the missing rule's name. */
#include "passes/batch.h"

bat_rule *const bat_rules[IR_NOP] = {
#define OP(id, name, kind, arity, shape) [IR_OP_##id] = bat_##name,
#include "ir/ops.def"
};
