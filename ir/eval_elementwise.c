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
 *     π cot(πx).
 *   - ndtr(x) = Φ(x) = erfc(-x/√2)/2, with the rounding of -x/√2 corrected to
 *     first order, so both tails keep full relative accuracy (a few ulp,
 *     about 1e-15 relative, down to the underflow of Φ near x = -38.5);
 *     0 at -inf, 1 at +inf, NaN for NaN.
 *   - ndtri(p) = Φ⁻¹(p): Wichura's AS241 (PPND16, Appl. Statist. 37, 1988;
 *     about 1e-16 relative) and, outside the central region |p - 1/2| <=
 *     0.425, one Newton step on Φ in the tail's own scale, so the result is
 *     within a few ulp of the exact quantile (about 1e-15 relative).
 *     -inf at 0, +inf at 1, NaN outside [0, 1] and for NaN.
 *   - atan and tan are libm's. */
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

/* Φ(x) = erfc(t)/2 with t = -x/√2.  t is rounded: with t = t_hi + t_lo
 * (t_lo from an fma and the low part of 1/√2), erfc(t) ≈ erfc(t_hi) -
 * t_lo (2/√π) exp(-t_hi²), which removes the error 2|t|·ulp(t) that the
 * rounding of t would otherwise cause in the tails (7e-15 at x = -8). */
double ir_ndtr(double x)
{
    static const double r_hi = 0.70710678118654757;      /* 1/√2 rounded */
    static const double r_lo = -4.8336466567264567e-17;  /* 1/√2 - r_hi */
    static const double inv_sqrt_pi = 0.56418958354775628;
    if (isnan(x))
        return x;
    double t = -x * r_hi;
    double t_lo = fma(-x, r_hi, -t) + -x * r_lo;
    double e = erfc(t);
    if (!isfinite(x))
        return e * 0.5;
    return 0.5 * e - t_lo * inv_sqrt_pi * exp(-t * t);
}

/* AS241's rational approximations (Wichura 1988): central region in
 * r = 0.180625 - q², tails in r = √(-log min(p, 1-p)). */
static double poly7(const double *c, double x)
{
    double s = c[7];
    for (int k = 6; k >= 0; k--)
        s = s * x + c[k];
    return s;
}

double ir_ndtri(double p)
{
    static const double a[8] = {3.3871328727963666080e0, 1.3314166789178437745e+2,
                                1.9715909503065514427e+3, 1.3731693765509461125e+4,
                                4.5921953931549871457e+4, 6.7265770927008700853e+4,
                                3.3430575583588128105e+4, 2.5090809287301226727e+3};
    static const double b[8] = {1.0, 4.2313330701600911252e+1, 6.8718700749205790830e+2,
                                5.3941960214247511077e+3, 2.1213794301586595867e+4,
                                3.9307895800092710610e+4, 2.8729085735721942674e+4,
                                5.2264952788528545610e+3};
    static const double c[8] = {1.42343711074968357734e0, 4.63033784615654529590e0,
                                5.76949722146069140550e0, 3.64784832476320460504e0,
                                1.27045825245236838258e0, 2.41780725177450611770e-1,
                                2.27238449892691845833e-2, 7.74545014278341407640e-4};
    static const double d[8] = {1.0, 2.05319162663775882187e0, 1.67638483018380384940e0,
                                6.89767334985100004550e-1, 1.48103976427480074590e-1,
                                1.51986665636164571966e-2, 5.47593808499534494600e-4,
                                1.05075007164441684324e-9};
    static const double e[8] = {6.65790464350110377720e0, 5.46378491116411436990e0,
                                1.78482653991729133580e0, 2.96560571828504891230e-1,
                                2.65321895265761230930e-2, 1.24266094738807843860e-3,
                                2.71155556874348757815e-5, 2.01033439929228813265e-7};
    static const double f[8] = {1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1,
                                1.48753612908506148525e-2, 7.86869131145613259100e-4,
                                1.84631831751005468180e-5, 1.42151175831644588870e-7,
                                2.04426310338993978564e-15};
    static const double sqrt_2pi = 2.5066282746310007;
    if (isnan(p) || p < 0 || p > 1)
        return NAN;
    if (p == 0)
        return -INFINITY;
    if (p == 1)
        return INFINITY;
    double q = p - 0.5;
    if (fabs(q) <= 0.425) {
        double r = 0.180625 - q * q;
        return q * poly7(a, r) / poly7(b, r);
    }
    double tail = q < 0 ? p : 1.0 - p; /* 1 - p is exact for p > 1/2 */
    double r = sqrt(-log(tail)), z;
    if (r <= 5.0)
        z = poly7(c, r - 1.6) / poly7(d, r - 1.6);
    else
        z = poly7(e, r - 5.0) / poly7(f, r - 5.0);
    z = -z; /* the lower-tail quantile, < 0 */
    /* Newton on Φ(z) = tail: Φ(z) and tail have full relative accuracy, so
     * the step is accurate to ulp(tail)/φ(z), a few ulp of z. */
    if (tail >= 1e-300) {
        double phi = exp(-0.5 * z * z) / sqrt_2pi;
        z -= (ir_ndtr(z) - tail) / phi;
    }
    return q < 0 ? z : -z;
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
UNARY(ndtr, ir_ndtr(x))
UNARY(ndtri, ir_ndtri(x))
UNARY(atan, atan(x))
UNARY(tan, tan(x))
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
