/* Derivative rules of the elementwise ops (unary, binary, compare, select).
 *
 * A unary op's jvp and vjp are both "multiply by f'(x)"; each op writes only
 * its derivative d_<name>(x, y) (y = f(x), the primal output) and the UNARY
 * macro makes both rules.  Binary ops write their two partials.
 *
 * Points where the derivative does not exist are defined (JAX's choices):
 *   abs'(0) = sign(0) = 0;  sign' = 0;  cmp and the predicate of select have
 *   derivative 0;  max/min: where a == b each operand gets half the tangent
 *   (max(a,b)' = [a>b] + [a==b]/2 for a);  pow: ∂/∂b is 0 where a == 0, and
 *   ∂/∂a is 0 where b == 0. */
#include "passes/ad.h"

static ir_val one_minus(ir_graph *g, ir_val x)
{
    ir_shape s = ad_shape(g, x);
    return ir_binary(g, IR_OP_SUB, ad_fill(g, 1.0, &s), x);
}

static ir_val plus_const(ir_graph *g, ir_val x, double c)
{
    ir_shape s = ad_shape(g, x);
    return ir_binary(g, IR_OP_ADD, x, ad_fill(g, c, &s));
}

/* f'(x) for each unary op; IR_NONE means f' = 0. */
static ir_val d_exp(ir_graph *g, const ir_node *n, ir_val x, ir_val y) { return y; }
static ir_val d_log(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return ir_unary(g, IR_OP_RECIP, x);
}
static ir_val d_log1p(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return ir_unary(g, IR_OP_RECIP, plus_const(g, x, 1.0));
}
static ir_val d_expm1(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return plus_const(g, y, 1.0);
}
static ir_val d_sqrt(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return ad_scale(g, ir_unary(g, IR_OP_RECIP, y), 0.5);
}
static ir_val d_square(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return ad_scale(g, x, 2.0);
}
static ir_val d_recip(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return ir_unary(g, IR_OP_NEG, ir_unary(g, IR_OP_SQUARE, y));
}
static ir_val d_tanh(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return one_minus(g, ir_unary(g, IR_OP_SQUARE, y));
}
static ir_val d_logistic(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return ir_binary(g, IR_OP_MUL, y, one_minus(g, y));
}
static ir_val d_lgamma(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return ir_unary(g, IR_OP_DIGAMMA, x);
}
static ir_val d_digamma(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return ad_unary_attr(g, IR_OP_POLYGAMMA, x, 1);
}
static ir_val d_polygamma(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return ad_unary_attr(g, IR_OP_POLYGAMMA, x, n->attr[0] + 1);
}
/* abs'(0) = sign(0) = 0. */
static ir_val d_abs(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return ir_unary(g, IR_OP_SIGN, x);
}
static ir_val d_sign(ir_graph *g, const ir_node *n, ir_val x, ir_val y) { return IR_NONE; }
/* Φ'(x) = φ(x) = exp(-x²/2)/√(2π). */
static ir_val d_ndtr(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    ir_val e = ir_unary(g, IR_OP_EXP, ad_scale(g, ir_unary(g, IR_OP_SQUARE, x), -0.5));
    return ad_scale(g, e, 0.39894228040143268); /* 1/√(2π) */
}
/* (Φ⁻¹)'(p) = 1/φ(Φ⁻¹(p)) = √(2π) exp(y²/2). */
static ir_val d_ndtri(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    ir_val e = ir_unary(g, IR_OP_EXP, ad_scale(g, ir_unary(g, IR_OP_SQUARE, y), 0.5));
    return ad_scale(g, e, 2.5066282746310007); /* √(2π) */
}
/* atan'(x) = 1/(1 + x²). */
static ir_val d_atan(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return ir_unary(g, IR_OP_RECIP, plus_const(g, ir_unary(g, IR_OP_SQUARE, x), 1.0));
}
/* tan'(x) = 1 + tan²(x). */
static ir_val d_tan(ir_graph *g, const ir_node *n, ir_val x, ir_val y)
{
    return plus_const(g, ir_unary(g, IR_OP_SQUARE, y), 1.0);
}

#define UNARY(name)                                                                        \
    ir_val jvp_##name(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)            \
    {                                                                                      \
        return ad_mul(g, t[0], d_##name(g, n, n->input[0], v));                            \
    }                                                                                      \
    void vjp_##name(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need,   \
                    ir_val *out)                                                           \
    {                                                                                      \
        out[0] = ad_mul(g, ct, d_##name(g, n, n->input[0], v));                            \
    }
UNARY(exp)
UNARY(log)
UNARY(log1p)
UNARY(expm1)
UNARY(sqrt)
UNARY(square)
UNARY(recip)
UNARY(tanh)
UNARY(logistic)
UNARY(lgamma)
UNARY(digamma)
UNARY(polygamma)
UNARY(abs)
UNARY(sign)
UNARY(ndtr)
UNARY(ndtri)
UNARY(atan)
UNARY(tan)
#undef UNARY

/* neg is linear: no multiplication by -1. */
ir_val jvp_neg(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return ad_neg(g, t[0]);
}
void vjp_neg(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    out[0] = ad_neg(g, ct);
}

/* ---- binary ----------------------------------------------------------------- */

ir_val jvp_add(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return ad_add(g, t[0], t[1]);
}
void vjp_add(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    out[0] = ct;
    out[1] = ct;
}

ir_val jvp_sub(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return ad_sub(g, t[0], t[1]);
}
void vjp_sub(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    out[0] = ct;
    out[1] = need[1] ? ad_neg(g, ct) : IR_NONE;
}

/* mul is bilinear. */
ir_val jvp_mul(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return ad_add(g, ad_mul(g, t[0], n->input[1]), ad_mul(g, n->input[0], t[1]));
}
void vjp_mul(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    out[0] = need[0] ? ad_mul(g, ct, n->input[1]) : IR_NONE;
    out[1] = need[1] ? ad_mul(g, n->input[0], ct) : IR_NONE;
}

/* d(a/b) = da/b - db·(a/b)/b. */
static ir_val div_b(ir_graph *g, ir_val x, ir_val b)
{
    return x == IR_NONE ? IR_NONE : ir_binary(g, IR_OP_DIV, x, b);
}
ir_val jvp_div(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    ir_val b = n->input[1];
    return ad_sub(g, div_b(g, t[0], b), div_b(g, ad_mul(g, t[1], v), b));
}
void vjp_div(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    ir_val b = n->input[1];
    out[0] = need[0] ? div_b(g, ct, b) : IR_NONE;
    out[1] = need[1] ? ad_neg(g, div_b(g, ad_mul(g, ct, v), b)) : IR_NONE;
}

/* pow(a, b): ∂a = b·a^(b-1) (0 where b == 0), ∂b = a^b·log a (0 where a == 0). */
static ir_val pow_da(ir_graph *g, ir_val a, ir_val b)
{
    ir_shape s = ad_shape(g, a);
    ir_val zero = ad_fill(g, 0.0, &s);
    ir_val p = ir_binary(g, IR_OP_POW, a, plus_const(g, b, -1.0));
    return ad_select(g, ad_cmp(g, SJ_EQ, b, zero), zero, ir_binary(g, IR_OP_MUL, b, p));
}
static ir_val pow_db(ir_graph *g, ir_val a, ir_val y)
{
    ir_shape s = ad_shape(g, a);
    ir_val zero = ad_fill(g, 0.0, &s);
    ir_val lg = ad_select(g, ad_cmp(g, SJ_EQ, a, zero), zero, ir_unary(g, IR_OP_LOG, a));
    return ir_binary(g, IR_OP_MUL, y, lg);
}
ir_val jvp_pow(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    ir_val a = n->input[0], b = n->input[1];
    ir_val ra = t[0] == IR_NONE ? IR_NONE : ad_mul(g, t[0], pow_da(g, a, b));
    ir_val rb = t[1] == IR_NONE ? IR_NONE : ad_mul(g, t[1], pow_db(g, a, v));
    return ad_add(g, ra, rb);
}
void vjp_pow(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    ir_val a = n->input[0], b = n->input[1];
    out[0] = need[0] ? ad_mul(g, ct, pow_da(g, a, b)) : IR_NONE;
    out[1] = need[1] ? ad_mul(g, ct, pow_db(g, a, v)) : IR_NONE;
}

/* Weight of a in max(a, b) (first = SJ_GT) or min(a, b) (SJ_LT): 1 where a
 * wins, 1/2 on a tie, 0 where b wins; b's weight is 1 minus it. */
static ir_val minmax_weight(ir_graph *g, sj_cmp wins, ir_val a, ir_val b)
{
    return ir_binary(g, IR_OP_ADD, ad_cmp(g, wins, a, b), ad_scale(g, ad_cmp(g, SJ_EQ, a, b), 0.5));
}
static ir_val minmax_jvp(ir_graph *g, sj_cmp wins, const ir_node *n, const ir_val *t)
{
    ir_val w = minmax_weight(g, wins, n->input[0], n->input[1]);
    return ad_add(g, ad_mul(g, t[0], w), ad_mul(g, t[1], t[1] == IR_NONE ? IR_NONE : one_minus(g, w)));
}
static void minmax_vjp(ir_graph *g, sj_cmp wins, const ir_node *n, ir_val ct, const int *need,
                       ir_val *out)
{
    ir_val w = minmax_weight(g, wins, n->input[0], n->input[1]);
    out[0] = need[0] ? ad_mul(g, ct, w) : IR_NONE;
    out[1] = need[1] ? ad_mul(g, ct, one_minus(g, w)) : IR_NONE;
}
ir_val jvp_max(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return minmax_jvp(g, SJ_GT, n, t);
}
void vjp_max(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    minmax_vjp(g, SJ_GT, n, ct, need, out);
}
ir_val jvp_min(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    return minmax_jvp(g, SJ_LT, n, t);
}
void vjp_min(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    minmax_vjp(g, SJ_LT, n, ct, need, out);
}

/* Comparisons are piecewise constant. */
ir_val jvp_cmp(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t) { return IR_NONE; }
void vjp_cmp(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    out[0] = out[1] = IR_NONE;
}

/* select(p, a, b): the tangent flows through the chosen branch; p has none. */
ir_val jvp_select(ir_graph *g, const ir_node *n, ir_val v, const ir_val *t)
{
    if (t[1] == IR_NONE && t[2] == IR_NONE)
        return IR_NONE;
    ir_val ta = t[1] != IR_NONE ? t[1] : ad_zeros_like(g, t[2]);
    ir_val tb = t[2] != IR_NONE ? t[2] : ad_zeros_like(g, t[1]);
    return ad_select(g, n->input[0], ta, tb);
}
void vjp_select(ir_graph *g, const ir_node *n, ir_val v, ir_val ct, const int *need, ir_val *out)
{
    ir_val zero = ad_zeros_like(g, ct);
    out[0] = IR_NONE;
    out[1] = need[1] ? ad_select(g, n->input[0], ct, zero) : IR_NONE;
    out[2] = need[2] ? ad_select(g, n->input[0], zero, ct) : IR_NONE;
}
