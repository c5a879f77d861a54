/* Parameter transforms: raw θ -> natural scale, as chains of elementwise
 * steps (torch_openreml's TransformChain).  The same chain is evaluated in
 * C (for initial values and their inverses) and emitted as graph ops (so
 * its derivatives come from the differentiation passes). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "frontend/cov.h"

static sj_transform one(sj_transform_kind kind, double a, double b)
{
    sj_transform t = {.nstep = 1};
    t.step[0].kind = kind;
    t.step[0].a = a;
    t.step[0].b = b;
    return t;
}

sj_transform sj_transform_identity(void) { return (sj_transform){.nstep = 0}; }
sj_transform sj_transform_exp(void) { return one(SJ_TRANSFORM_EXP, 0, 0); }
sj_transform sj_transform_exp2(void) { return one(SJ_TRANSFORM_EXP2, 0, 0); }
sj_transform sj_transform_sigmoid(void) { return one(SJ_TRANSFORM_SIGMOID, 0, 0); }
sj_transform sj_transform_sigmoid_range(double lo, double hi)
{
    return one(SJ_TRANSFORM_SIGMOID_RANGE, lo, hi);
}
sj_transform sj_transform_scale_shift(double scale, double shift)
{
    return one(SJ_TRANSFORM_SCALE_SHIFT, scale, shift);
}
sj_transform sj_transform_power(double p) { return one(SJ_TRANSFORM_POWER, p, 0); }

sj_transform sj_transform_then(sj_transform first, sj_transform next)
{
    if (first.nstep < 0 || next.nstep < 0 || first.nstep + next.nstep > SJ_TRANSFORM_MAX_STEPS)
        return (sj_transform){.nstep = -1};
    for (int i = 0; i < next.nstep; i++)
        first.step[first.nstep + i] = next.step[i];
    first.nstep += next.nstep;
    return first;
}

const char *fe_transform_check(const sj_transform *t)
{
    if (t->nstep < 0)
        return "the transform chain is longer than SJ_TRANSFORM_MAX_STEPS";
    if (t->nstep > SJ_TRANSFORM_MAX_STEPS)
        return "the transform has more than SJ_TRANSFORM_MAX_STEPS steps";
    for (int i = 0; i < t->nstep; i++) {
        double a = t->step[i].a, b = t->step[i].b;
        switch (t->step[i].kind) {
        case SJ_TRANSFORM_IDENTITY:
        case SJ_TRANSFORM_EXP:
        case SJ_TRANSFORM_EXP2:
        case SJ_TRANSFORM_SIGMOID:
            break;
        case SJ_TRANSFORM_SIGMOID_RANGE:
            if (!isfinite(a) || !isfinite(b) || !(a < b))
                return "sigmoid_range needs finite lo < hi";
            break;
        case SJ_TRANSFORM_SCALE_SHIFT:
            if (!isfinite(a) || !isfinite(b) || a == 0)
                return "scale_shift needs a finite, non-zero scale and a finite shift";
            break;
        case SJ_TRANSFORM_POWER:
            if (!isfinite(a) || a == 0)
                return "power needs a finite, non-zero exponent";
            break;
        default:
            return "unknown transform kind";
        }
    }
    return NULL;
}

int fe_transform_equal(const sj_transform *a, const sj_transform *b)
{
    if (a->nstep != b->nstep)
        return 0;
    for (int i = 0; i < a->nstep; i++)
        if (a->step[i].kind != b->step[i].kind || a->step[i].a != b->step[i].a ||
            a->step[i].b != b->step[i].b)
            return 0;
    return 1;
}

static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

double sj_transform_apply(const sj_transform *t, double x)
{
    if (!t || fe_transform_check(t))
        return NAN;
    for (int i = 0; i < t->nstep; i++) {
        double a = t->step[i].a, b = t->step[i].b;
        switch (t->step[i].kind) {
        case SJ_TRANSFORM_IDENTITY: break;
        case SJ_TRANSFORM_EXP: x = exp(x); break;
        case SJ_TRANSFORM_EXP2: x = exp(2 * x); break;
        case SJ_TRANSFORM_SIGMOID: x = sigmoid(x); break;
        case SJ_TRANSFORM_SIGMOID_RANGE: x = a + (b - a) * sigmoid(x); break;
        case SJ_TRANSFORM_SCALE_SHIFT: x = a * x + b; break;
        case SJ_TRANSFORM_POWER: x = pow(x, a); break;
        }
    }
    return x;
}

sj_status sj_transform_inverse(const sj_transform *t, double y, double *x)
{
    if (!t || !x || fe_transform_check(t))
        return SJ_ERR_INVALID_ARGUMENT;
    for (int i = t->nstep - 1; i >= 0; i--) {
        double a = t->step[i].a, b = t->step[i].b, u;
        switch (t->step[i].kind) {
        case SJ_TRANSFORM_IDENTITY: break;
        case SJ_TRANSFORM_EXP:
            if (!(y > 0))
                return SJ_ERR_DOMAIN;
            y = log(y);
            break;
        case SJ_TRANSFORM_EXP2:
            if (!(y > 0))
                return SJ_ERR_DOMAIN;
            y = 0.5 * log(y);
            break;
        case SJ_TRANSFORM_SIGMOID:
            if (!(y > 0 && y < 1))
                return SJ_ERR_DOMAIN;
            y = log(y) - log1p(-y);
            break;
        case SJ_TRANSFORM_SIGMOID_RANGE:
            u = (y - a) / (b - a);
            if (!(u > 0 && u < 1))
                return SJ_ERR_DOMAIN;
            y = log(u) - log1p(-u);
            break;
        case SJ_TRANSFORM_SCALE_SHIFT: y = (y - b) / a; break;
        case SJ_TRANSFORM_POWER:
            if (!(y > 0 || (y == 0 && a > 0)))
                return SJ_ERR_DOMAIN;
            y = pow(y, 1 / a);
            break;
        }
        if (!isfinite(y))
            return SJ_ERR_DOMAIN;
    }
    *x = y;
    return SJ_OK;
}

sj_value fe_transform_emit(sj_graph *g, const sj_transform *t, sj_value x)
{
    for (int i = 0; i < t->nstep; i++) {
        double a = t->step[i].a, b = t->step[i].b;
        switch (t->step[i].kind) {
        case SJ_TRANSFORM_IDENTITY: break;
        case SJ_TRANSFORM_EXP: x = sj_exp(g, x); break;
        case SJ_TRANSFORM_EXP2: x = sj_exp(g, sj_mul(g, sj_scalar(g, 2.0), x)); break;
        case SJ_TRANSFORM_SIGMOID: x = sj_logistic(g, x); break;
        case SJ_TRANSFORM_SIGMOID_RANGE:
            x = sj_add(g, sj_scalar(g, a), sj_mul(g, sj_scalar(g, b - a), sj_logistic(g, x)));
            break;
        case SJ_TRANSFORM_SCALE_SHIFT:
            x = sj_add(g, sj_mul(g, sj_scalar(g, a), x), sj_scalar(g, b));
            break;
        case SJ_TRANSFORM_POWER: x = sj_pow(g, x, sj_scalar(g, a)); break;
        }
    }
    return x;
}

const char *fe_transform_str(const sj_transform *t, char *buf, size_t size)
{
    if (fe_transform_check(t)) {
        snprintf(buf, size, "(invalid)");
        return buf;
    }
    if (t->nstep == 0) {
        snprintf(buf, size, "identity");
        return buf;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->nstep && used < size; i++) {
        double a = t->step[i].a, b = t->step[i].b;
        const char *sep = i ? " then " : "";
        int n = 0;
        switch (t->step[i].kind) {
        case SJ_TRANSFORM_IDENTITY: n = snprintf(buf + used, size - used, "%sidentity", sep); break;
        case SJ_TRANSFORM_EXP: n = snprintf(buf + used, size - used, "%sexp", sep); break;
        case SJ_TRANSFORM_EXP2: n = snprintf(buf + used, size - used, "%sexp2", sep); break;
        case SJ_TRANSFORM_SIGMOID: n = snprintf(buf + used, size - used, "%ssigmoid", sep); break;
        case SJ_TRANSFORM_SIGMOID_RANGE:
            n = snprintf(buf + used, size - used, "%ssigmoid_range(%g, %g)", sep, a, b);
            break;
        case SJ_TRANSFORM_SCALE_SHIFT:
            n = snprintf(buf + used, size - used, "%sscale_shift(%g, %g)", sep, a, b);
            break;
        case SJ_TRANSFORM_POWER: n = snprintf(buf + used, size - used, "%spower(%g)", sep, a); break;
        }
        used += n > 0 ? (size_t)n : 0;
    }
    return buf;
}
