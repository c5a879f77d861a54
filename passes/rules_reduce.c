/* Derivative rules of the reductions (attr0: bitmask of reduced axes).
 * sum and mean are linear; their vjp broadcasts the cotangent back over the
 * reduced axes.  reduce_max passes the tangent of the maximal elements; where
 * several elements tie for the maximum the tangent is spread over them
 * equally (JAX's convention): d max = Σ t·[x == max] / #[x == max]. */
#include "passes/ad.h"

/* Output axis map of a reduction: input axis i of the output goes to the
 * i-th kept axis of x. */
static int kept_axes(const ir_node *n, int xrank, int64_t *map)
{
    int k = 0;
    for (int i = 0; i < xrank; i++)
        if (!(n->attr[0] & ((int64_t)1 << i)))
            map[k++] = i;
    return k;
}

/* y (shape of the reduction's output) broadcast back to the input shape. */
static ir_val expand(ir_graph *g, const ir_node *n, ir_val y)
{
    ir_shape xs = ad_shape(g, n->input[0]);
    int64_t map[IR_MAX_RANK];
    kept_axes(n, xs.rank, map);
    return ad_broadcast(g, y, &xs, map);
}

ir_val jvp_sum(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return ad_sum(g, t[0], n->attr[0]);
}
void vjp_sum(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    out[0] = expand(g, n, ct);
}

static double reduced_count(const ir_graph *g, const ir_node *n)
{
    const ir_shape *xs = ir_shape_of(g, n->input[0]);
    double c = 1;
    for (int i = 0; i < xs->rank; i++)
        if (n->attr[0] & ((int64_t)1 << i))
            c *= (double)xs->dim[i];
    return c;
}

ir_val jvp_mean(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return ir_add_node(g, IR_OP_MEAN, 1, t, n->attr, 1, NULL, NULL);
}
void vjp_mean(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    double c = reduced_count(g, n);
    out[0] = expand(g, n, ad_scale(g, ct, c > 0 ? 1.0 / c : 0.0));
}

/* [x == max] / #[x == max], of x's shape. */
static ir_val max_weights(ir_graph *g, const ir_node *n, ir_val v)
{
    ir_val x = n->input[0];
    ir_val hit = ad_cmp(g, SJ_EQ, x, expand(g, n, v));
    ir_val count = ad_sum(g, hit, n->attr[0]);
    return ir_binary(g, IR_OP_DIV, hit, expand(g, n, count));
}

ir_val jvp_reduce_max(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return ad_sum(g, ad_mul(g, t[0], max_weights(g, n, v)), n->attr[0]);
}
void vjp_reduce_max(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need,
                    ir_val *out)
{
    out[0] = ad_mul(g, expand(g, n, ct), max_weights(g, n, v));
}
