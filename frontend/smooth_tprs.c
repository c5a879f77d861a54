/* The 1-D thin-plate regression spline basis (mgcv's bs = "tp" with m = 2,
 * docs/smooth.md), full rank, with knots at given points κ_1..κ_K:
 *
 *   f(t) = Σ_j δ_j η(|t − κ_j|) + α_0 + α_1 t,   Tᵀδ = 0,  T = [1, κ],
 *   η(r) = r³/12 (Γ(1/2 − m)/(2^{2m} √π (m−1)!) r^{2m−1} for m = 2),
 *   penalty δᵀEδ, E_ij = η(|κ_i − κ_j|)  (= ∫ f″² for this f).
 *
 * The constraint is absorbed with δ = Z δ̃, Z an orthonormal basis of the
 * null space of Tᵀ (the last K − 2 columns of the Householder Q of T), so
 * the design is [E(t) Z | 1 | t] ([n, K]) and the penalty blockdiag(ZᵀEZ, 0).
 * The basis is elementwise ops, a matmul with the constant Z and a concat,
 * so it is differentiable in t (|d|³ is C²) and batches like any graph.
 * mgcv truncates the eigenbasis of E to k columns; with k = K (knots at the
 * unique covariate values) nothing is truncated and the two bases span the
 * same space with the same penalty functional. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lapacke.h>

#include "frontend/handles.h"
#include "ir/alloc.h"
#include "ir/graph.h"

#define TPRS_MAX_KNOTS 5000

static double eta(double r) { return r * r * r / 12.0; }

static const char *bad_tprs_knots(size_t nknots, const double *knots)
{
    if (!knots)
        return "knots is NULL";
    if (nknots < 3 || nknots > TPRS_MAX_KNOTS)
        return "nknots must be in 3..5000";
    for (size_t i = 0; i < nknots; i++) {
        if (!isfinite(knots[i]))
            return "knots must be finite";
        if (i && !(knots[i] > knots[i - 1]))
            return "knots must be strictly increasing";
    }
    return NULL;
}

/* Z [K, K-2] (row-major): the last K − 2 columns of Q in T = QR. */
static sj_status null_basis(size_t nk, const double *knots, double *z)
{
    int k = (int)nk;
    double *q = ir_malloc(nk * nk * sizeof *q), tau[2];
    if (!q)
        return SJ_ERR_OUT_OF_MEMORY;
    memset(q, 0, nk * nk * sizeof *q);
    for (int i = 0; i < k; i++) {
        q[(size_t)i * nk] = 1.0;
        q[(size_t)i * nk + 1] = knots[i];
    }
    sj_status st = SJ_OK;
    if (LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, k, 2, q, k, tau) != 0 ||
        LAPACKE_dorgqr(LAPACK_ROW_MAJOR, k, k, 2, q, k, tau) != 0)
        st = SJ_ERR_SINGULAR;
    else
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k - 2; j++)
                z[(size_t)i * (nk - 2) + j] = q[(size_t)i * nk + j + 2];
    ir_free(q);
    return st;
}

sj_value sj_tprs_basis(sj_graph *g, sj_value t, size_t nknots, const double *knots)
{
    if (!fe_graph_valid(g))
        return SJ_INVALID;
    const char *why = bad_tprs_knots(nknots, knots);
    if (why) {
        if (ir_graph_ok(g->ir)) {
            ir_fail(&g->ir->err, SJ_ERR_INVALID_ARGUMENT, "sj_tprs_basis: %s", why);
            fe_ctx_fail(g->ctx, &g->ir->err);
        }
        return SJ_INVALID;
    }
    double *z = ir_malloc(nknots * (nknots - 2) * sizeof *z);
    double *one = ir_malloc(nknots * sizeof *one);
    if (!z || !one || null_basis(nknots, knots, z) != SJ_OK) {
        ir_free(z);
        ir_free(one);
        if (ir_graph_ok(g->ir)) {
            ir_fail(&g->ir->err, SJ_ERR_OUT_OF_MEMORY, "sj_tprs_basis: out of memory");
            fe_ctx_fail(g->ctx, &g->ir->err);
        }
        return SJ_INVALID;
    }
    for (size_t i = 0; i < nknots; i++)
        one[i] = 1.0;
    int64_t kk = (int64_t)nknots, zs[2] = {kk, kk - 2}, c1 = 1;
    sj_value kn = sj_constant(g, 1, &kk, knots);
    sj_value d = sj_sub(g, sj_outer(g, t, sj_constant(g, 1, &kk, one)), kn); /* [n, K] */
    sj_value e = sj_mul(g, sj_mul(g, sj_square(g, d), sj_abs(g, d)), sj_scalar(g, 1.0 / 12.0));
    sj_value ez = sj_matmul(g, e, sj_constant(g, 2, zs, z)); /* [n, K-2] */
    sj_value tc = sj_outer(g, t, sj_constant(g, 1, &c1, one)); /* [n, 1] */
    sj_value ones = sj_add(g, sj_mul(g, tc, sj_scalar(g, 0.0)), sj_scalar(g, 1.0));
    sj_value parts[3] = {ez, ones, tc};
    ir_free(z);
    ir_free(one);
    return sj_concat(g, 3, parts, 1);
}

sj_status sj_tprs_penalty(size_t nknots, const double *knots, double *s)
{
    if (!s || bad_tprs_knots(nknots, knots))
        return SJ_ERR_INVALID_ARGUMENT;
    size_t k = nknots, r = nknots - 2;
    double *z = ir_malloc(k * r * sizeof *z), *ez = ir_malloc(k * r * sizeof *ez);
    sj_status st = z && ez ? null_basis(k, knots, z) : SJ_ERR_OUT_OF_MEMORY;
    if (st == SJ_OK) {
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < r; j++) {
                double v = 0;
                for (size_t l = 0; l < k; l++)
                    v += eta(fabs(knots[i] - knots[l])) * z[l * r + j];
                ez[i * r + j] = v;
            }
        memset(s, 0, k * k * sizeof *s);
        for (size_t a = 0; a < r; a++)
            for (size_t b = 0; b <= a; b++) {
                double v = 0;
                for (size_t i = 0; i < k; i++)
                    v += z[i * r + a] * ez[i * r + b];
                s[a * k + b] = s[b * k + a] = v;
            }
    }
    ir_free(z);
    ir_free(ez);
    return st;
}
