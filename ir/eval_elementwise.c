/* Elementwise kernels of the reference evaluator, and the special functions
 * digamma and polygamma.
 *
 * Conventions (the code generator must match them):
 *   - logistic is 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) for x < 0, so it
 *     neither overflows nor loses the small tail.
 *   - sign gives -1, 0 or 1 (0 for ±0) and NaN for NaN.
 *   - min and max propagate NaN (unlike fmin/fmax).
 *   - cmp follows IEEE: every comparison with NaN is false except NE.
 *   - select takes a where pred != 0, so a NaN predicate selects a.
 *   - digamma(x): NaN at the poles x = 0, -1, -2, ... and at -inf; +inf at
 *     +inf; x < 0 through the reflection ψ(x) = ψ(1-x) - π cot(πx).
 *   - polygamma(n, x), 1 <= n <= 64 (the builder's limit): NaN at the poles
 *     x = 0, -1, -2, ... and at -inf, 0 at +inf; x > 0 by recurrence up to
 *     x >= max(20, 2n) and the Euler-Maclaurin tail of Hurwitz ζ(n+1, x);
 *     x < 0 through the reflection formula with the n-th derivative of
 *     π cot(πx). */
#include <math.h>
#include <string.h>

#include "ir/eval_kernels.h"

/* ---- special functions ------------------------------------------------------ */

/* ψ(x) for x >= 10: ln x - 1/(2x) - Σ B_2k / (2k x^2k). */
static double digamma_asymptotic(double x)
{
    static const double c[] = {1.0 / 12, -1.0 / 120, 1.0 / 252, -1.0 / 240, 1.0 / 132,
                               -691.0 / 32760, 1.0 / 12};
    double z = 1.0 / (x * x), s = 0.0;
    for (int k = (int)(sizeof c / sizeof c[0]) - 1; k >= 0; k--)
        s = (s + c[k]) * z;
    return log(x) - 0.5 / x - s;
}

/* cot(πx), with x reduced to r in [-1/2, 1/2] (cot has period 1) and cos(πr)
 * taken as sin(π(1/2 - |r|)), so it is exactly 0 at the half-integers. */
static double cot_pi(double x)
{
    double r = x - nearbyint(x);
    double c = sin(M_PI * (0.5 - fabs(r))), s = sin(M_PI * r);
    return c / s;
}

double ir_digamma(double x)
{
    if (isnan(x) || x == -INFINITY)
        return NAN;
    if (x == INFINITY)
        return INFINITY;
    if (x <= 0) {
        if (x == floor(x))
            return NAN; /* pole */
        return ir_digamma(1.0 - x) - M_PI * cot_pi(x);
    }
    double shift = 0.0;
    for (; x < 10.0; x += 1.0)
        shift += 1.0 / x;
    return digamma_asymptotic(x) - shift;
}

/* Hurwitz ζ(s, a) tail for large a (Euler-Maclaurin):
 * a^(1-s)/(s-1) + a^-s/2 + Σ_j B_2j/(2j)! (s)_(2j-1) a^(-s-2j+1). */
static double hurwitz_tail(double s, double a)
{
    /* B_2j/(2j)! for j = 1..10: B = 1/6, -1/30, 1/42, -1/30, 5/66, -691/2730,
     * 7/6, -3617/510, 43867/798, -174611/330. */
    static const double b[] = {
        1.0 / 12.0,
        -1.0 / 720.0,
        1.0 / 30240.0,
        -1.0 / 1209600.0,
        1.0 / 47900160.0,
        -691.0 / 1307674368000.0,
        1.0 / 74724249600.0,
        -3617.0 / 10670622842880000.0,
        43867.0 / 5109094217170944000.0,
        -174611.0 / 802857662698291200000.0,
    };
    double as = pow(a, -s);
    double sum = pow(a, 1.0 - s) / (s - 1.0) + 0.5 * as;
    double rising = s, term = as / a; /* (s)_(2j-1) and a^(-s-2j+1) */
    for (int j = 0; j < (int)(sizeof b / sizeof b[0]); j++) {
        double t = b[j] * rising * term;
        sum += t;
        if (fabs(t) < 1e-17 * fabs(sum))
            break;
        rising *= (s + 2 * j + 1) * (s + 2 * j + 2);
        term /= a * a;
    }
    return sum;
}

/* dⁿ/dxⁿ cot(πx) = πⁿ Pₙ(cot πx) with P₀(c) = c and
 * Pₖ₊₁(c) = -(1 + c²) Pₖ'(c).  The powers in Pₙ have one parity and the
 * coefficients one sign, so the sum does not cancel. */
static double cot_pi_derivative(int order, double x)
{
    double p[IR_POLYGAMMA_MAX_ORDER + 2] = {0, 1}, q[IR_POLYGAMMA_MAX_ORDER + 2];
    for (int k = 0; k < order; k++) {
        memset(q, 0, sizeof q);
        for (int j = 1; j <= k + 1; j++) {
            q[j - 1] -= j * p[j];
            q[j + 1] -= j * p[j];
        }
        memcpy(p, q, sizeof p);
    }
    double c = cot_pi(x), sum = 0.0;
    for (int j = order + 1; j >= 0; j--)
        sum = sum * c + p[j];
    return pow(M_PI, order) * sum;
}

/* ψ⁽ⁿ⁾(x) = (-1)ⁿ⁺¹ n! ζ(n+1, x) for x > 0. */
static double polygamma_positive(int order, double x)
{
    double s = order + 1.0, factorial = 1.0;
    for (int k = 2; k <= order; k++)
        factorial *= k;
    double target = order > 10 ? 2.0 * order : 20.0, sum = 0.0;
    for (; x < target; x += 1.0)
        sum += pow(x, -s);
    sum += hurwitz_tail(s, x);
    return (order % 2 ? 1.0 : -1.0) * factorial * sum;
}

double ir_polygamma(int order, double x)
{
    if (isnan(x) || x == -INFINITY || order < 1 || order > IR_POLYGAMMA_MAX_ORDER)
        return NAN;
    if (x == INFINITY)
        return 0.0;
    if (x > 0)
        return polygamma_positive(order, x);
    if (x == floor(x))
        return NAN; /* pole */
    /* reflection: ψ⁽ⁿ⁾(x) = (-1)ⁿ ψ⁽ⁿ⁾(1-x) - π dⁿ/dxⁿ cot(πx) */
    return (order % 2 ? -1.0 : 1.0) * polygamma_positive(order, 1.0 - x) -
           M_PI * cot_pi_derivative(order, x);
}

/* ---- unary ---------------------------------------------------------------------- */

/* lgamma_r: lgamma itself writes the global signgam, a data race when
 * functions are evaluated from several threads. */
static double log_gamma(double x)
{
    int sign;
    return lgamma_r(x, &sign);
}

static double logistic(double x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double sign(double x)
{
    if (isnan(x))
        return x;
    return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
}

#define UNARY(name, expr)                                        \
    sj_status ev_##name(const ev_args *a)                        \
    {                                                            \
        const double *in = ev_in(a, 0);                          \
        size_t n = ev_numel(a);                                  \
        for (size_t i = 0; i < n; i++) {                         \
            double x = in[i];                                    \
            a->out[i] = (expr);                                  \
        }                                                        \
        return SJ_OK;                                            \
    }

UNARY(neg, -x)
UNARY(exp, exp(x))
UNARY(log, log(x))
UNARY(log1p, log1p(x))
UNARY(expm1, expm1(x))
UNARY(sqrt, sqrt(x))
UNARY(square, x * x)
UNARY(recip, 1.0 / x)
UNARY(tanh, tanh(x))
UNARY(logistic, logistic(x))
UNARY(lgamma, log_gamma(x))
UNARY(digamma, ir_digamma(x))
UNARY(polygamma, ir_polygamma((int)a->n->attr[0], x))
UNARY(abs, fabs(x))
UNARY(sign, sign(x))
#undef UNARY

/* ---- binary ------------------------------------------------------------------------ */

static double min_nan(double x, double y) { return isnan(x) || isnan(y) ? NAN : x < y ? x : y; }
static double max_nan(double x, double y) { return isnan(x) || isnan(y) ? NAN : x > y ? x : y; }

static double compare(int64_t cmp, double x, double y)
{
    switch (cmp) {
    case SJ_LT: return x < y;
    case SJ_LE: return x <= y;
    case SJ_GT: return x > y;
    case SJ_GE: return x >= y;
    case SJ_EQ: return x == y;
    default: return x != y;
    }
}

#define BINARY(name, expr)                                       \
    sj_status ev_##name(const ev_args *a)                        \
    {                                                            \
        const double *p = ev_in(a, 0), *q = ev_in(a, 1);         \
        size_t n = ev_numel(a);                                  \
        for (size_t i = 0; i < n; i++) {                         \
            double x = p[i], y = q[i];                           \
            a->out[i] = (expr);                                  \
        }                                                        \
        return SJ_OK;                                            \
    }

BINARY(add, x + y)
BINARY(sub, x - y)
BINARY(mul, x * y)
BINARY(div, x / y)
BINARY(pow, pow(x, y))
BINARY(min, min_nan(x, y))
BINARY(max, max_nan(x, y))
BINARY(cmp, compare(a->n->attr[0], x, y))
#undef BINARY

sj_status ev_select(const ev_args *a)
{
    const double *pred = ev_in(a, 0), *x = ev_in(a, 1), *y = ev_in(a, 2);
    size_t n = ev_numel(a);
    for (size_t i = 0; i < n; i++)
        a->out[i] = pred[i] != 0 ? x[i] : y[i];
    return SJ_OK;
}
