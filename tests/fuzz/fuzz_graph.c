/* Fuzz target: the graph builder, transforms, specialisation, the reference
 * evaluator and (for some inputs) native code.
 *
 * The input bytes are a small program, decoded by `rd` (bytes past the end
 * read as 0, so every input decodes):
 *
 *   header   ninput (1..3); per input a rank (0..3), one dimension per axis
 *            from dim_names ("n", "m", "k", "1", "2", "3", "?") and a data
 *            mode (small integer codes, uniform, uniform with NaN/Inf/huge
 *            entries, positive)
 *   ops      up to MAX_OPS builder calls on a stack of values: every public
 *            op (sources, unary, binary, compare/select, shapes, slicing,
 *            concat, gather/segment-sum/one-hot, reductions, matmul, outer,
 *            kron, diag, tril/triu, cholesky and the solves, logdet, the REML
 *            criterion and ML deviance) plus `spd` (x xᵀ + diag(diag(x xᵀ) +
 *            1), so Cholesky sees positive definite matrices often);
 *            operands are picked from the stack, attributes from the bytes;
 *            opcode 0 ends the list
 *   outputs  1..3 values from the stack
 *   xforms   0..2 of grad, value_and_grad, jvp, vjp, hvp, jacfwd, jacrev,
 *            hessian, vmap, nested, with fuzz-chosen wrt / axes
 *   shapes   a size 0..4 per symbolic dimension (the first 8; 2 when the
 *            bytes run out); sometimes one axis is perturbed to make a shape
 *            error
 *   data     a seed for the input values
 *
 * Property: every call returns a status (with a message when it is an
 * error), never crashes, trips no sanitizer and leaks nothing; a failing call
 * leaves outputs unchanged; and where both the reference evaluator and the
 * native code run, they agree: equal statuses, and values equal within a
 * relative 1e-9 of the output's largest magnitude (NaN matches NaN, an
 * infinity the same infinity; see same_value).  Compiling costs milliseconds,
 * so only one input in SJ_FUZZ_COMPILE_EVERY (default 16; 1 = all, 0 = none),
 * chosen by a hash of the input, is compiled.
 *
 * Internal headers are used for two things the public API does not expose:
 * the declared shapes of a transformed function's inputs (to pick consistent
 * concrete sizes), and the sizes of a specialised graph's nodes (inputs whose
 * intermediates would exceed MAX_NUMEL elements are not evaluated). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/handles.h"
#include "ir/graph.h"
#include "runtime/handles.h"
#include "statjit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 32
#define MAX_STACK 64
#define MAX_NUMEL 20000
#define SENTINEL 1234.5678

typedef struct rd {
    const uint8_t *p;
    size_t n, i;
} rd;

static unsigned u8(rd *r) { return r->i < r->n ? r->p[r->i++] : 0; }
static int pickn(rd *r, int n) { return n > 0 ? (int)(u8(r) % (unsigned)n) : 0; }

static const char *const dim_names[] = {"n", "m", "k", "1", "2", "3", "?", "n"};
static const char *dim(rd *r) { return dim_names[pickn(r, 8)]; }

typedef struct prog {
    sj_graph *g;
    sj_value stack[MAX_STACK];
    int nstack;
} prog;

static void push(prog *p, sj_value v)
{
    if (v == SJ_INVALID)
        return;
    if (p->nstack == MAX_STACK) {
        memmove(p->stack, p->stack + 1, (MAX_STACK - 1) * sizeof *p->stack);
        p->nstack--;
    }
    p->stack[p->nstack++] = v;
}

/* A value from the stack, counted from the top. */
static sj_value pick(rd *r, prog *p)
{
    int n = p->nstack < 1 ? 1 : p->nstack > MAX_STACK ? MAX_STACK : p->nstack;
    int i = n - 1 - pickn(r, n);
    return p->nstack ? p->stack[i < 0 ? 0 : i] : SJ_INVALID;
}

static int rank_of(const prog *p, sj_value v)
{
    uint32_t idx = (uint32_t)(uint64_t)v;
    if (v == SJ_INVALID || idx >= p->g->ir->nnode)
        return 0;
    return ir_shape_of(p->g->ir, (ir_val)idx)->rank;
}

static const double scalars[] = {0.0, 1.0, -1.0, 0.5, 2.0, 3.0, -0.0, 1e300, -1e-300, 1e-8};

typedef sj_value (*unary_fn)(sj_graph *, sj_value);
static const unary_fn unary_ops[] = {sj_neg, sj_exp, sj_log, sj_log1p, sj_expm1,
                                     sj_sqrt, sj_square, sj_recip, sj_tanh, sj_logistic,
                                     sj_lgamma, sj_digamma, sj_abs, sj_sign, sj_mT,
                                     sj_sum_all, sj_diag, sj_diag_embed, sj_cholesky,
                                     sj_logdet};
typedef sj_value (*binary_fn)(sj_graph *, sj_value, sj_value);
static const binary_fn binary_ops[] = {sj_add, sj_sub, sj_mul, sj_div, sj_pow,
                                       sj_min, sj_max, sj_matmul, sj_outer, sj_kron,
                                       sj_gather, sj_cholesky_solve, sj_solve};
#define NUNARY (int)(sizeof unary_ops / sizeof *unary_ops)
#define NBINARY (int)(sizeof binary_ops / sizeof *binary_ops)

enum {
    OP_END,
    OP_UNARY,
    OP_BINARY,
    OP_SCALAR,
    OP_CONST,
    OP_EYE,
    OP_POLYGAMMA,
    OP_COMPARE,
    OP_SELECT,
    OP_BROADCAST,
    OP_RESHAPE,
    OP_TRANSPOSE,
    OP_SLICE,
    OP_CONCAT,
    OP_SEGSUM,
    OP_ONEHOT,
    OP_REDUCE,
    OP_TRI,
    OP_TRISOLVE,
    OP_SPD,
    OP_LMM,
    OP_DUP,
    NOP
};

static void dims_of(rd *r, int rank, const char **dims)
{
    for (int i = 0; i < rank; i++)
        dims[i] = dim(r);
}

static void step(rd *r, prog *p, int op)
{
    sj_graph *g = p->g;
    const char *dims[4];
    switch (op) {
    case OP_UNARY: {
        unary_fn f = unary_ops[pickn(r, NUNARY)];
        push(p, f(g, pick(r, p)));
        break;
    }
    case OP_BINARY: {
        binary_fn f = binary_ops[pickn(r, NBINARY)];
        sj_value a = pick(r, p), b = pick(r, p);
        push(p, f(g, a, b));
        break;
    }
    case OP_SCALAR:
        push(p, sj_scalar(g, scalars[pickn(r, 10)]));
        break;
    case OP_CONST: {
        int rank = pickn(r, 3);
        int64_t shape[2] = {1 + pickn(r, 3), 1 + pickn(r, 3)};
        double v[9];
        for (int i = 0; i < 9; i++)
            v[i] = (double)((int)u8(r) - 128) / 32.0;
        push(p, sj_constant(g, rank, shape, v));
        break;
    }
    case OP_EYE:
        push(p, sj_eye(g, dim(r)));
        break;
    case OP_POLYGAMMA: {
        int order = pickn(r, 4);
        push(p, sj_polygamma(g, order, pick(r, p)));
        break;
    }
    case OP_COMPARE: {
        sj_cmp c = (sj_cmp)pickn(r, 6);
        sj_value a = pick(r, p), b = pick(r, p);
        push(p, sj_compare(g, c, a, b));
        break;
    }
    case OP_SELECT: {
        sj_value c = pick(r, p), a = pick(r, p), b = pick(r, p);
        push(p, sj_select(g, c, a, b));
        break;
    }
    case OP_BROADCAST:
    case OP_RESHAPE: {
        sj_value x = pick(r, p);
        int rank = pickn(r, 4);
        dims_of(r, rank, dims);
        push(p, op == OP_BROADCAST ? sj_broadcast_to(g, x, rank, dims)
                                   : sj_reshape(g, x, rank, dims));
        break;
    }
    case OP_TRANSPOSE: {
        sj_value x = pick(r, p);
        int rank = rank_of(p, x), perm[SJ_MAX_RANK], used[SJ_MAX_RANK] = {0};
        int raw = u8(r) % 8 == 0; /* now and then a wrong permutation */
        for (int i = 0; i < rank; i++) {
            int k = pickn(r, rank - (raw ? 0 : i));
            if (!raw)
                for (int j = 0; j < rank; j++)
                    if (!used[j] && k-- == 0) {
                        k = j;
                        break;
                    }
            perm[i] = k;
            used[k] = 1;
        }
        push(p, sj_transpose(g, x, perm));
        break;
    }
    case OP_SLICE: {
        sj_value x = pick(r, p);
        int axis = pickn(r, 5) - 1;
        int64_t start = pickn(r, 7) - 3;
        int64_t stop = u8(r) % 3 == 0 ? INT64_MAX : pickn(r, 7) - 3;
        push(p, sj_slice(g, x, axis, start, stop));
        break;
    }
    case OP_CONCAT: {
        int n = 1 + pickn(r, 3);
        sj_value xs[3];
        for (int i = 0; i < n; i++)
            xs[i] = pick(r, p);
        push(p, sj_concat(g, n, xs, pickn(r, 4) - 1));
        break;
    }
    case OP_SEGSUM: {
        sj_value x = pick(r, p), idx = pick(r, p);
        push(p, sj_segment_sum(g, x, idx, dim(r)));
        break;
    }
    case OP_ONEHOT:
        push(p, sj_one_hot(g, pick(r, p), dim(r)));
        break;
    case OP_REDUCE: {
        sj_value x = pick(r, p);
        int kind = pickn(r, 3), naxes = pickn(r, 3), axes[2];
        for (int i = 0; i < naxes; i++)
            axes[i] = pickn(r, 4) - 1;
        push(p, kind == 0   ? sj_sum(g, x, naxes, axes)
                : kind == 1 ? sj_reduce_max(g, x, naxes, axes)
                            : sj_mean(g, x, naxes, axes));
        break;
    }
    case OP_TRI: {
        sj_value x = pick(r, p);
        int k = pickn(r, 5) - 2;
        push(p, u8(r) & 1 ? sj_triu(g, x, k) : sj_tril(g, x, k));
        break;
    }
    case OP_TRISOLVE: {
        sj_value a = pick(r, p), b = pick(r, p);
        push(p, sj_triangular_solve(g, a, b, u8(r) % 8));
        break;
    }
    case OP_SPD: {
        sj_value x = pick(r, p);
        sj_value a = sj_matmul(g, x, sj_mT(g, x));
        sj_value d = sj_add(g, sj_diag(g, a), sj_scalar(g, 1.0));
        push(p, sj_add(g, a, sj_diag_embed(g, d)));
        break;
    }
    case OP_LMM: {
        sj_value v = pick(r, p), x = pick(r, p), y = pick(r, p);
        push(p, u8(r) & 1 ? sj_ml_deviance(g, v, x, y) : sj_reml_criterion(g, v, x, y));
        break;
    }
    case OP_DUP:
        push(p, pick(r, p));
        break;
    default:
        break;
    }
}

/* ---- transforms ------------------------------------------------------------ */

static int wrt_of(rd *r, const sj_fn *fn, int *wrt)
{
    unsigned mask = u8(r);
    if (mask % 4 == 0)
        return 0;
    int n = 0, ninput = sj_fn_ninput(fn);
    for (int i = 0; i < ninput && i < 8; i++)
        if (mask & (1u << i))
            wrt[n++] = i;
    if (!n)
        wrt[n++] = ninput - 1;
    return n;
}

/* Applies one transform to *fn; on failure *fn is kept (and must still
 * work).  A failing transform must say why. */
static void transform(rd *r, sj_ctx *ctx, sj_fn **fn)
{
    int kind = pickn(r, 9), wrt[8], nwrt = wrt_of(r, *fn, wrt);
    const int *w = nwrt ? wrt : NULL;
    int output = pickn(r, sj_fn_noutput(*fn) + 1); /* sometimes out of range */
    sj_fn *out = NULL;
    sj_status st;
    switch (kind) {
    case 0: st = sj_grad(*fn, output, nwrt, w, &out); break;
    case 1: st = sj_value_and_grad(*fn, output, nwrt, w, &out); break;
    case 2: st = sj_jvp(*fn, nwrt, w, &out); break;
    case 3: st = sj_vjp(*fn, nwrt, w, &out); break;
    case 4: st = sj_hvp(*fn, output, nwrt, w, &out); break;
    case 5: st = sj_jacfwd(*fn, output, nwrt, w, &out); break;
    case 6: st = sj_jacrev(*fn, output, nwrt, w, &out); break;
    case 7: st = sj_hessian(*fn, output, nwrt, w, &out); break;
    default: {
        int nin = sj_fn_ninput(*fn), nout = sj_fn_noutput(*fn);
        int in_axes[16], out_axes[16];
        for (int i = 0; i < nin && i < 16; i++) {
            int rank = 0;
            sj_fn_input_rank(*fn, i, &rank);
            in_axes[i] = pickn(r, rank + 2) - 1;
        }
        for (int k = 0; k < nout && k < 16; k++)
            out_axes[k] = 0;
        static const char *const batch_dims[] = {"b", "?", "2", NULL, "n"};
        const char *bd = batch_dims[pickn(r, 5)];
        st = sj_vmap(*fn, nin <= 16 ? in_axes : NULL, u8(r) & 1 || nout > 16 ? NULL : out_axes,
                     bd, &out);
        break;
    }
    }
    if (st != SJ_OK) {
        if (out || !*sj_ctx_last_error(ctx))
            abort();
        return;
    }
    if (!out)
        abort();
    if (u8(r) & 1) {
        sj_fn_free(*fn); /* the derived function must not need its source */
        *fn = out;
    } else {
        sj_fn *keep = *fn;
        *fn = out;
        sj_fn_free(keep);
    }
}

/* ---- data and comparison ---------------------------------------------------- */

static double uniform(uint64_t *s, double lo, double hi)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return lo + (hi - lo) * ((double)(x >> 11) / 9007199254740992.0);
}

static void fill(double *x, size_t n, int mode, uint64_t *s)
{
    static const double special[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e308, -1e-310, 1.0};
    for (size_t i = 0; i < n; i++) {
        switch (mode) {
        case 0: x[i] = (double)(int)uniform(s, 0, 3); break;
        case 1: x[i] = uniform(s, -2, 2); break;
        case 2: {
            double u = uniform(s, 0, 1);
            x[i] = u < 0.3 ? special[(int)uniform(s, 0, 8)] : uniform(s, -2, 2);
            break;
        }
        default: x[i] = uniform(s, 0.1, 3); break;
        }
    }
}

/* Same value up to rounding: NaN matches NaN, an infinity the same one,
 * finite values within rtol of scale (the output's largest finite
 * magnitude, at least 1). */
static int same_value(double a, double b, double scale)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b))
        return a == b;
    return fabs(a - b) <= 1e-9 * scale;
}

static int env_int(const char *name, int dflt)
{
    const char *s = getenv(name);
    return s && *s ? atoi(s) : dflt;
}

static uint64_t hash(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 1099511628211ull;
    return h;
}

static void report(const char *what, const uint8_t *d, size_t n)
{
    fprintf(stderr, "fuzz_graph: %s\n", what);
    (void)d;
    (void)n;
    abort();
}

/* Whether a factorisation's verdict on these inputs is at rounding level:
 * a matrix singular in exact arithmetic (integer data make many) is called
 * positive definite or not by its last bits, which BLAS and the generated
 * code round differently.  Perturbing every input by a relative 1e-10 and
 * seeing either side's status change shows the verdict is ill-posed; a real
 * disagreement survives all eight perturbations. */
static int status_ill_posed(sj_compiled *c, sj_compiled *nc, int ninput, double *const *in,
                            const size_t *insize, int noutput, const size_t *osize,
                            sj_status se, sj_status sn)
{
    int flips = 0;
    uint64_t seed = 977;
    double **pin = calloc((size_t)ninput, sizeof *pin), **out = calloc((size_t)noutput, sizeof *out);
    for (int i = 0; i < ninput; i++)
        pin[i] = malloc((insize[i] ? insize[i] : 1) * sizeof **pin);
    for (int k = 0; k < noutput; k++)
        out[k] = malloc((osize[k] ? osize[k] : 1) * sizeof **out);
    for (int t = 0; t < 8 && !flips; t++) {
        for (int i = 0; i < ninput; i++)
            for (size_t j = 0; j < insize[i]; j++)
                pin[i][j] = in[i][j] * (1 + 1e-10 * uniform(&seed, -1, 1));
        flips = sj_compiled_eval(c, (const double *const *)pin, out) != se ||
                sj_compiled_call(nc, (const double *const *)pin, out) != sn;
    }
    for (int i = 0; i < ninput; i++)
        free(pin[i]);
    for (int k = 0; k < noutput; k++)
        free(out[k]);
    free(pin);
    free(out);
    return flips;
}

static int numerical_verdict(sj_status s)
{
    return s == SJ_ERR_NOT_POSITIVE_DEFINITE || s == SJ_ERR_SINGULAR;
}

/* Runs the specialised (and maybe compiled) function on fuzz-made data. */
static void run(rd *r, sj_ctx *ctx, sj_fn *fn, sj_compiled *c, int ninput, const int *ranks,
                const int64_t *const *dims, int compile, const uint8_t *data, size_t size)
{
    /* Skip inputs whose intermediates are large: the fuzzer looks for
     * crashes, not for slow O(n^3) on big sizes. */
    for (uint32_t v = 0; v < c->ir->nnode; v++)
        if (ir_shape_numel_overflows(&c->ir->node[v].shape) ||
            ir_shape_numel(&c->ir->node[v].shape) > MAX_NUMEL)
            return;
    int noutput = sj_compiled_noutput(c);
    double **in = calloc((size_t)ninput, sizeof *in);
    size_t *insize = calloc((size_t)ninput + 1, sizeof *insize);
    double **ev = calloc((size_t)noutput, sizeof *ev);
    double **nat = calloc((size_t)noutput, sizeof *nat);
    size_t *osize = calloc((size_t)noutput, sizeof *osize);
    uint64_t seed = u8(r) + 1;
    unsigned modes = u8(r) | u8(r) << 8;
    for (int i = 0; i < ninput; i++) {
        size_t n = 1;
        for (int k = 0; k < ranks[i]; k++)
            n *= (size_t)dims[i][k];
        insize[i] = n;
        in[i] = malloc((n ? n : 1) * sizeof **in);
        fill(in[i], n, i < 8 ? (modes >> (2 * i)) & 3 : 1, &seed);
    }
    for (int k = 0; k < noutput; k++) {
        if (sj_compiled_output_size(c, k, &osize[k]) != SJ_OK)
            abort();
        ev[k] = malloc((osize[k] ? osize[k] : 1) * sizeof **ev);
        nat[k] = malloc((osize[k] ? osize[k] : 1) * sizeof **nat);
        for (size_t j = 0; j < osize[k]; j++)
            ev[k][j] = nat[k][j] = SENTINEL;
    }
    sj_status se = sj_compiled_eval(c, (const double *const *)in, ev);
    if (se != SJ_OK) {
        if (!*sj_ctx_last_error(ctx))
            report("evaluator failed without a message", data, size);
        for (int k = 0; k < noutput; k++)
            for (size_t j = 0; j < osize[k]; j++)
                if (ev[k][j] != SENTINEL)
                    report("evaluator failed but changed an output", data, size);
    }
    if (compile) {
        sj_compiled *nc = NULL;
        sj_status sc = sj_fn_compile(fn, ninput, ranks, dims, &nc);
        if (sc != SJ_OK && sc != SJ_ERR_UNSUPPORTED && sc != SJ_ERR_OUT_OF_MEMORY) {
            fprintf(stderr, "compile: %s: %s\n", sj_status_name(sc), sj_ctx_last_error(ctx));
            report("specialised, but compiling failed", data, size);
        }
        if (sc == SJ_OK) {
            sj_status sn = sj_compiled_call(nc, (const double *const *)in, nat);
            if (sn != SJ_OK) {
                for (int k = 0; k < noutput; k++)
                    for (size_t j = 0; j < osize[k]; j++)
                        if (nat[k][j] != SENTINEL)
                            report("native call failed but changed an output", data, size);
            }
            /* Cholesky with infinities: both now call a matrix with a
             * non-finite lower triangle not positive definite
             * (docs/reliability.md, finding 5), so the statuses must agree. */
            int ill_posed = sn != se && (sn == SJ_OK || numerical_verdict(sn)) &&
                            (se == SJ_OK || numerical_verdict(se)) &&
                            status_ill_posed(c, nc, ninput, in, insize, noutput, osize, se, sn);
            if (sn != se && !ill_posed) {
                fprintf(stderr, "evaluator %s, native %s: %s\n", sj_status_name(se),
                        sj_status_name(sn), sj_ctx_last_error(ctx));
                report("evaluator and native code disagree on the status", data, size);
            }
            for (int k = 0; sn == SJ_OK && se == SJ_OK && k < noutput; k++) {
                double scale = 1;
                for (size_t j = 0; j < osize[k]; j++) {
                    if (isfinite(ev[k][j]) && fabs(ev[k][j]) > scale)
                        scale = fabs(ev[k][j]);
                    if (isfinite(nat[k][j]) && fabs(nat[k][j]) > scale)
                        scale = fabs(nat[k][j]);
                }
                for (size_t j = 0; j < osize[k]; j++)
                    if (!same_value(ev[k][j], nat[k][j], scale)) {
                        fprintf(stderr, "output %d element %zu: evaluator %.17g, native %.17g\n",
                                k, j, ev[k][j], nat[k][j]);
                        report("evaluator and native code disagree on a value", data, size);
                    }
            }
            sj_compiled_free(nc);
        }
    }
    for (int i = 0; i < ninput; i++)
        free(in[i]);
    for (int k = 0; k < noutput; k++) {
        free(ev[k]);
        free(nat[k]);
    }
    free(in);
    free(insize);
    free(ev);
    free(nat);
    free(osize);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int compile_every = env_int("SJ_FUZZ_COMPILE_EVERY", 16);
    if (size > 512)
        return 0;
    rd r = {data, size, 0};
    sj_ctx *ctx = NULL;
    if (sj_ctx_create(&ctx) != SJ_OK)
        abort();
    prog p = {0};
    if (sj_graph_create(ctx, &p.g) != SJ_OK)
        abort();

    int ninput = 1 + pickn(&r, 3);
    for (int i = 0; i < ninput; i++) {
        const char *dims[4];
        int rank = pickn(&r, 4);
        dims_of(&r, rank, dims);
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        push(&p, sj_input(p.g, name, rank, dims));
    }
    for (int k = 0; k < MAX_OPS; k++) {
        int op = pickn(&r, NOP);
        if (op == OP_END)
            break;
        step(&r, &p, op);
        if (sj_graph_status(p.g) != SJ_OK)
            break;
    }
    sj_value outs[3];
    int nout = 1 + pickn(&r, 3);
    for (int k = 0; k < nout; k++)
        outs[k] = pick(&r, &p);
    sj_status gs = sj_graph_status(p.g);
    sj_fn *fn = NULL;
    sj_status st = sj_fn_create(p.g, nout, outs, &fn);
    if (gs != SJ_OK && (st == SJ_OK || !*sj_ctx_last_error(ctx)))
        abort(); /* a failed graph must not make a function */
    if (u8(&r) & 1) {
        char *s = sj_graph_print(p.g);
        sj_string_free(s);
    }
    sj_graph_free(p.g);
    if (st != SJ_OK)
        goto done;

    int nxform = pickn(&r, 3);
    for (int t = 0; t < nxform; t++)
        transform(&r, ctx, &fn);

    /* Concrete sizes for the signature's symbols. */
    const ir_graph *sig = rt_fn_sig(fn);
    static const int64_t sizes[] = {2, 3, 1, 4, 0};
    int64_t symsize[8];
    for (int k = 0; k < 8; k++)
        symsize[k] = sizes[pickn(&r, 5)];
    int nin = (int)sig->ninput;
    int *ranks = calloc((size_t)nin + 1, sizeof *ranks);
    int64_t *dimbuf = calloc((size_t)nin * SJ_MAX_RANK + 1, sizeof *dimbuf);
    const int64_t **dims = calloc((size_t)nin + 1, sizeof *dims);
    for (int i = 0; i < nin; i++) {
        const ir_shape *s = ir_shape_of(sig, sig->input[i]);
        ranks[i] = s->rank;
        dims[i] = dimbuf + i * SJ_MAX_RANK;
        for (int k = 0; k < s->rank; k++) {
            int64_t d = s->dim[k];
            dimbuf[i * SJ_MAX_RANK + k] = IR_DIM_IS_SIZE(d)  ? d
                                          : IR_DIM_IS_SYM(d) ? symsize[IR_DIM_SYM_INDEX(d) % 8]
                                                             : 2;
        }
    }
    if (nin && u8(&r) % 16 == 15) { /* a wrong size somewhere */
        int i = pickn(&r, nin);
        if (ranks[i])
            dimbuf[i * SJ_MAX_RANK + pickn(&r, ranks[i])] += 1;
    }
    sj_compiled *c = NULL;
    st = sj_fn_specialize(fn, nin, ranks, dims, &c);
    if (st != SJ_OK) {
        if (c || !*sj_ctx_last_error(ctx))
            abort();
    } else {
        if (u8(&r) % 4 == 0 || getenv("SJ_FUZZ_VERBOSE")) {
            char *s = sj_compiled_print(c);
            if (s && getenv("SJ_FUZZ_VERBOSE")) /* for triage of a finding */
                fprintf(stderr, "%s\n", s);
            sj_string_free(s);
        }
        int compile = compile_every > 0 && hash(data, size) % (uint64_t)compile_every == 0;
        run(&r, ctx, fn, c, nin, ranks, dims, compile, data, size);
        sj_compiled_free(c);
    }
    free(ranks);
    free(dimbuf);
    free(dims);
done:
    sj_fn_free(fn);
    sj_ctx_free(ctx);
    return 0;
}
