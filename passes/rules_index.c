/* Derivative rules of the indexing ops.  gather and segment_sum are linear in
 * x and each other's transposes; the integer codes (idx) and one_hot have
 * derivative zero. */
#include "passes/ad.h"

ir_val jvp_gather(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    if (t[0] == IR_NONE)
        return IR_NONE;
    ir_val in[2] = {t[0], n->input[1]};
    return ir_add_node(g, IR_OP_GATHER, 2, in, NULL, 0, NULL, NULL);
}
void vjp_gather(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    ir_shape xs = ad_shape(g, n->input[0]);
    ir_val in[2] = {ct, n->input[1]};
    out[0] = need[0] ? ir_add_node(g, IR_OP_SEGSUM, 2, in, NULL, 0, &xs, NULL) : IR_NONE;
    out[1] = IR_NONE;
}

ir_val jvp_segment_sum(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    if (t[0] == IR_NONE)
        return IR_NONE;
    ir_val in[2] = {t[0], n->input[1]};
    return ir_add_node(g, IR_OP_SEGSUM, 2, in, NULL, 0, &n->shape, NULL);
}
void vjp_segment_sum(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need,
                     ir_val *out)
{
    ir_val in[2] = {ct, n->input[1]};
    out[0] = need[0] ? ir_add_node(g, IR_OP_GATHER, 2, in, NULL, 0, NULL, NULL) : IR_NONE;
    out[1] = IR_NONE;
}

ir_val jvp_one_hot(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t) { return IR_NONE; }
void vjp_one_hot(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    out[0] = IR_NONE;
}
