/* Low-rank-plus-diagonal rewrites: log|V|, V⁻¹B and the Cholesky factor's
 * uses for V = Σ_t Z_t G_t Z_tᵀ + D, without forming or factorising the
 * n × n matrix V.
 *
 * Stacking the terms, Z = [Z_1 … Z_T] (n × q) and G = blockdiag(G_t).  We
 * write G = Λ Λᵀ (Λ q × r) and use lme4's form (Bates et al. 2015,
 * J. Stat. Softw. 67(1), section 3):
 *
 *   M      = I_r + Λᵀ (Zᵀ D⁻¹ Z) Λ                         (r × r, L_M = chol M)
 *   log|V| = log|D| + log|M|                   (matrix determinant lemma)
 *   V⁻¹B   = D⁻¹B − D⁻¹ Z Λ M⁻¹ Λᵀ Zᵀ D⁻¹ B    (Woodbury identity)
 *
 * M is positive definite whenever D is, even where G is singular (a
 * variance at zero), so the rewrite needs no G⁻¹.  Λ is read off G's
 * construction where the covariance tree shows it: σ²I → σI, diag(v) →
 * diag(√v), L Lᵀ → L, XᵀX → Xᵀ, A ⊗ B → Λ_A ⊗ Λ_B, blockdiag → blockdiag;
 * any other G is factorised as chol(G), which needs G positive definite
 * (the dense graph did not: at a singular G the dense value exists and the
 * rewritten one reports SJ_ERR_NOT_POSITIVE_DEFINITE).
 *
 * Zᵀ D⁻¹ Z and the products with Z are built per piece of Z: a one-hot
 * piece one_hot(c) (optionally scaled per row, a random slope) turns into
 * segment sums and gathers by the codes, a dense piece into matmuls.  Cost
 * O(n q² + q³) with dense pieces, O(n + q³) with one-hot ones; nothing of
 * size n × n (or n × q for one-hot pieces) is formed.
 *
 * Consumers rewritten: logdet(V), solve(V, B), and cholesky(V) when every
 * use of its factor L is cholesky_solve(L, B) or 2 Σ log diag L (the
 * factor itself never exists).  V stays in the graph only if something else
 * uses it. */
#include <math.h>
#include <string.h>

#include "ir/alloc.h"
#include "passes/ad.h"
#include "passes/passes.h"
#include "passes/structure_match.h"

enum { MAX_TERMS = 32, MAX_PIECES = 64 };

typedef struct piece {
    int onehot;
    st_onehot oh;
    ir_val z;         /* old value of the piece */
    int64_t q, col0;  /* columns, first column in the stacked Z */
} piece;

typedef struct term {
    ir_val g;         /* old G, IR_NONE for the identity (Z Zᵀ) */
    ir_val scale;     /* old s of a term s · Z G Zᵀ (IR_NONE: 1) */
    int64_t q;
    int piece0, npiece; /* its pieces of Z */
} term;

typedef struct dpart {
    ir_val scale;     /* old s of s·I (IR_NONE: 1), when vec is IR_NONE */
    ir_val vec;       /* old v of diag_embed(v) */
} dpart;

/* A matched V and, once its first consumer is rewritten, the new-graph
 * values every consumer shares. */
typedef struct vmatch {
    int64_t n, q;
    piece piece[MAX_PIECES];
    int npiece;
    term term[MAX_TERMS];
    int nterm;
    dpart d[MAX_TERMS];
    int nd;
    int emitted;
    int blocked;      /* one grouping factor: M per level, [L, k, k] */
    int64_t levels;   /* L when blocked */
    ir_val w;         /* D⁻¹: scalar or [n] */
    int lam_diag;     /* Λ is diag(lam) */
    ir_val lam;       /* [q] or [q, r] */
    ir_val lm;        /* chol(M) */
    ir_val logdet;    /* log|V| */
} vmatch;

typedef struct wctx {
    st_uses uses;
    vmatch **vm;        /* by old value of V */
    unsigned char *kind; /* by old node: what to emit */
    int fired;
} wctx;

enum { W_NONE, W_LOGDET, W_SOLVE, W_CHOSOLVE, W_SUMLOGDIAG, W_CHOL, W_BILINEAR, W_QUADRATIC };

/* ---- matching V ---------------------------------------------------------------- */

static int add_pieces(const ir_graph *g, vmatch *m, ir_val z)
{
    const ir_node *n = ir_node_at(g, z);
    if (n->op == IR_OP_CONCAT && n->attr[0] == 1) {
        for (int i = 0; i < n->ninput; i++)
            if (!add_pieces(g, m, n->input[i]))
                return 0;
        return 1;
    }
    if (m->npiece == MAX_PIECES)
        return 0;
    piece *p = &m->piece[m->npiece++];
    memset(p, 0, sizeof *p);
    p->z = z;
    p->q = n->shape.dim[1];
    p->col0 = m->q;
    p->onehot = st_match_onehot(g, z, &p->oh);
    m->q += p->q;
    return 1;
}

/* Z G Zᵀ (or Z Zᵀ) in the shapes the builder emits. */
static int match_term(const ir_graph *g, ir_val v, ir_val *z, ir_val *gm)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op != IR_OP_MATMUL || n->shape.rank != 2 || n->attr[0])
        return 0;
    ir_val a = n->input[0], b = n->input[1];
    int tb = n->attr[1] != 0;
    /* b as Zᵀ for a given Z */
#define IS_ZT(bv, tbf, zv) ((tbf) ? (bv) == (zv) : st_transposed(g, (bv)) == (zv))
    const ir_node *an = ir_node_at(g, a), *bn = ir_node_at(g, b);
    if (an->op == IR_OP_MATMUL && !an->attr[0] && !an->attr[1] && IS_ZT(b, tb, an->input[0])) {
        *z = an->input[0];
        *gm = an->input[1];
        return 1;
    }
    if (!tb && bn->op == IR_OP_MATMUL && !bn->attr[0] && IS_ZT(bn->input[1], bn->attr[1], a)) {
        *z = a;
        *gm = bn->input[0];
        return 1;
    }
    if (IS_ZT(b, tb, a)) {
        *z = a;
        *gm = IR_NONE;
        return 1;
    }
#undef IS_ZT
    return 0;
}

/* s · Z G Zᵀ (a variance times a Gram matrix, s a broadcast one-element
 * value): the term Z (s G) Zᵀ, whose factor is √s Λ_G. */
static int match_scaled_term(const ir_graph *g, ir_val v, ir_val *z, ir_val *gm, ir_val *scale)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->op != IR_OP_MUL)
        return 0;
    for (int k = 0; k < 2; k++) {
        ir_val s = st_broadcast_scalar(g, n->input[k]);
        if (s != IR_NONE && match_term(g, n->input[1 - k], z, gm)) {
            *scale = s;
            return 1;
        }
    }
    return 0;
}

static int collect(const ir_graph *g, vmatch *m, ir_val v)
{
    const ir_node *n = ir_node_at(g, v);
    if (n->shape.rank != 2 || n->shape.dim[0] != m->n || n->shape.dim[1] != m->n)
        return 0;
    if (n->op == IR_OP_ADD)
        return collect(g, m, n->input[0]) && collect(g, m, n->input[1]);
    ir_val s;
    if (st_scaled_eye(g, v, &s)) {
        if (m->nd == MAX_TERMS)
            return 0;
        m->d[m->nd++] = (dpart){s, IR_NONE};
        return 1;
    }
    if (n->op == IR_OP_DIAG_EMBED) {
        if (m->nd == MAX_TERMS)
            return 0;
        m->d[m->nd++] = (dpart){IR_NONE, n->input[0]};
        return 1;
    }
    ir_val z, gm, scale = IR_NONE;
    if ((!match_term(g, v, &z, &gm) && !match_scaled_term(g, v, &z, &gm, &scale)) ||
        m->nterm == MAX_TERMS)
        return 0;
    int64_t q0 = m->q;
    int piece0 = m->npiece;
    if (!add_pieces(g, m, z))
        return 0;
    int64_t q = m->q - q0;
    if (gm != IR_NONE) {
        const ir_shape *gs = ir_shape_of(g, gm);
        if (gs->rank != 2 || gs->dim[0] != q || gs->dim[1] != q)
            return 0;
    }
    m->term[m->nterm++] = (term){gm, scale, q, piece0, m->npiece - piece0};
    return 1;
}

static int match_blocked(const ir_graph *g, vmatch *m);

/* V = Σ Z_t G_t Z_tᵀ + D with at least one term, a diagonal part, and a
 * stacked Z narrower than V. */
static vmatch *match_v(const ir_graph *g, ir_val v)
{
    const ir_shape *s = ir_shape_of(g, v);
    if (s->rank != 2 || s->dim[0] != s->dim[1])
        return NULL;
    vmatch *m = ir_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n = s->dim[0];
    if (!collect(g, m, v) || !m->nterm || !m->nd || m->q >= m->n) {
        ir_free(m);
        return NULL;
    }
    m->blocked = match_blocked(g, m);
    return m;
}

/* ---- emitting ------------------------------------------------------------------- */

typedef struct lam {
    int diag;
    ir_val v;     /* [q] when diag, else [q, r] */
} lam;

static ir_val lam_matrix(ir_graph *ng, lam l)
{
    return l.diag ? ir_unary(ng, IR_OP_DIAG_EMBED, l.v) : l.v;
}

/* Λ with G = Λ Λᵀ, read off G's construction (see the header comment). */
static lam factor(ir_graph *ng, const ir_graph *g, const ir_val *map, ir_val gv, int64_t q)
{
    if (gv == IR_NONE)
        return (lam){1, st_fill_vector(ng, st_const(ng, 1.0), q)};
    const ir_node *n = ir_node_at(g, gv);
    ir_val s;
    if (st_scaled_eye(g, gv, &s)) {
        ir_val root = s == IR_NONE ? st_const(ng, 1.0)
                                   : ir_unary(ng, IR_OP_SQRT, st_as_scalar(ng, map[s]));
        return (lam){1, st_fill_vector(ng, root, q)};
    }
    if (n->op == IR_OP_DIAG_EMBED && n->shape.rank == 2)
        return (lam){1, ir_unary(ng, IR_OP_SQRT, map[n->input[0]])};
    if (n->op == IR_OP_MATMUL) {
        ir_val a = n->input[0], b = n->input[1];
        int ta = n->attr[0] != 0, tb = n->attr[1] != 0;
        if (!ta && ((tb && a == b) || (!tb && st_transposed(g, b) == a)))
            return (lam){0, map[a]};                 /* A Aᵀ */
        if (!ta && !tb && st_transposed(g, a) == b)
            return (lam){0, map[a]};                 /* Bᵀ B = (Bᵀ)(Bᵀ)ᵀ */
        if (ta && !tb && a == b)
            return (lam){0, st_t(ng, map[a])};       /* Aᵀ A */
    }
    if (n->op == IR_OP_KRON && n->shape.rank == 2) {
        const ir_shape *as = ir_shape_of(g, n->input[0]), *bs = ir_shape_of(g, n->input[1]);
        if (as->dim[0] == as->dim[1] && bs->dim[0] == bs->dim[1]) {
            lam la = factor(ng, g, map, n->input[0], as->dim[0]);
            lam lb = factor(ng, g, map, n->input[1], bs->dim[0]);
            if (la.diag && lb.diag) {
                int64_t d = q;
                return (lam){1, st_reshape(ng, ir_binary(ng, IR_OP_OUTER, la.v, lb.v), 1, &d)};
            }
            return (lam){0, ir_binary(ng, IR_OP_KRON, lam_matrix(ng, la), lam_matrix(ng, lb))};
        }
    }
    ir_val block[MAX_TERMS];
    int nb;
    if (st_match_blockdiag(g, gv, block, MAX_TERMS, &nb)) {
        int square = 1;
        for (int i = 0; i < nb; i++) {
            const ir_shape *bs = ir_shape_of(g, block[i]);
            square = square && bs->dim[0] == bs->dim[1];
        }
        if (square) {
            lam lb[MAX_TERMS];
            int all_diag = 1;
            for (int i = 0; i < nb; i++) {
                lb[i] = factor(ng, g, map, block[i], ir_shape_of(g, block[i])->dim[0]);
                all_diag = all_diag && lb[i].diag;
            }
            ir_val parts[MAX_TERMS];
            for (int i = 0; i < nb; i++)
                parts[i] = all_diag ? lb[i].v : lam_matrix(ng, lb[i]);
            return all_diag ? (lam){1, st_concat(ng, nb, parts, 0)}
                            : (lam){0, st_blockdiag(ng, nb, parts)};
        }
    }
    return (lam){0, ir_unary(ng, IR_OP_CHOLESKY, map[gv])};
}

/* The codes and row scale of a one-hot piece in the new graph. */
static ir_val codes_of(const ir_val *map, const piece *p) { return map[p->oh.codes]; }
static ir_val scale_of(ir_graph *ng, const ir_val *map, const piece *p)
{
    return p->oh.x == IR_NONE ? IR_NONE : st_as_vector(ng, map[p->oh.x]);
}

/* Z_pᵀ X for X [n, k]: [q_p, k]. */
static ir_val zt_times(ir_graph *ng, const ir_val *map, const piece *p, ir_val x)
{
    if (!p->onehot)
        return st_matmul(ng, map[p->z], x, 1, 0);
    ir_val s = scale_of(ng, map, p);
    return st_segsum(ng, s == IR_NONE ? x : st_rowmul(ng, x, s), codes_of(map, p), p->q);
}

/* Z_p S for S [q_p, k]: [n, k]. */
static ir_val z_times(ir_graph *ng, const ir_val *map, const piece *p, ir_val s)
{
    if (!p->onehot)
        return st_matmul(ng, map[p->z], s, 0, 0);
    ir_val x = scale_of(ng, map, p);
    ir_val r = st_gather(ng, s, codes_of(map, p));
    return x == IR_NONE ? r : st_rowmul(ng, r, x);
}

/* Z_aᵀ diag(w) Z_b: [q_a, q_b]; wv is w as a vector [n]; w = wv = IR_NONE
 * for w = 1. */
static ir_val cross_block(ir_graph *ng, const ir_val *map, const piece *a, const piece *b,
                          ir_val w, ir_val wv)
{
    if (a->onehot && b->onehot)
        return st_onehot_gram(ng, codes_of(map, a), scale_of(ng, map, a), a->q, codes_of(map, b),
                              scale_of(ng, map, b), b->q, a->oh.codes == b->oh.codes, wv);
    if (a->onehot || b->onehot) {
        const piece *oh = a->onehot ? a : b, *dz = a->onehot ? b : a;
        ir_val x = scale_of(ng, map, oh), ww = wv;
        if (x != IR_NONE)
            ww = ww == IR_NONE ? x : ir_binary(ng, IR_OP_MUL, ww, x);
        ir_val zd = map[dz->z];
        ir_val t = st_segsum(ng, ww == IR_NONE ? zd : st_rowmul(ng, zd, ww), codes_of(map, oh),
                             oh->q);
        return a->onehot ? t : st_t(ng, t);
    }
    return st_matmul(ng, map[a->z], w == IR_NONE ? map[b->z] : st_rowmul(ng, map[b->z], w), 1,
                     0);
}

/* ---- one grouping factor: M block-diagonal by level ---------------------------- */

/* When every piece of Z is one_hot(c) (optionally row-scaled) for one and the
 * same codes c with L levels — a random intercept and slopes on one factor,
 * pieces 0..k-1 effect-major — and each term's G keeps the levels apart
 * (σ²I, diag(v), A ⊗ s·I_L with Λ = Λ_A ⊗ √s I_L), then Zᵀ D⁻¹ Z, Λ and
 * hence M are block-diagonal after ordering the columns level-major: level l
 * has its own k × k blocks
 *
 *   C_l[a, b] = Σ_{i: c_i = l} w_i x_ai x_bi,   M_l = I_k + Λ_lᵀ C_l Λ_l,
 *
 * so M is emitted as [L, k, k] and factorised by one batched Cholesky: O(n k²
 * + L k³) instead of O((L k)³) for a dense r × r M.  Λ_l is [L, k] (diagonal
 * Λ) or [L, k, k]. */
enum { MAX_BLOCK_K = 16 };

/* Term t's G keeps the levels of its pieces apart (see above). */
static int term_level_ok(const ir_graph *g, const term *t, int64_t levels)
{
    ir_val s;
    if (t->g == IR_NONE || st_scaled_eye(g, t->g, &s))
        return 1;
    const ir_node *n = ir_node_at(g, t->g);
    if (n->op == IR_OP_DIAG_EMBED && n->shape.rank == 2)
        return 1;
    if (n->op != IR_OP_KRON || n->shape.rank != 2)
        return 0;
    const ir_shape *as = ir_shape_of(g, n->input[0]), *bs = ir_shape_of(g, n->input[1]);
    return as->rank == 2 && as->dim[0] == as->dim[1] && as->dim[0] == t->npiece &&
           bs->rank == 2 && bs->dim[0] == levels && bs->dim[1] == levels &&
           st_scaled_eye(g, n->input[1], &s);
}

static int match_blocked(const ir_graph *g, vmatch *m)
{
    if (m->npiece < 1 || m->npiece > MAX_BLOCK_K)
        return 0;
    const piece *p0 = &m->piece[0];
    for (int p = 0; p < m->npiece; p++) {
        const piece *pc = &m->piece[p];
        if (!pc->onehot || pc->oh.codes != p0->oh.codes || pc->q != p0->q)
            return 0;
    }
    for (int t = 0; t < m->nterm; t++)
        if (!term_level_ok(g, &m->term[t], p0->q))
            return 0;
    m->levels = p0->q;
    return 1;
}

/* scalar s (rank 0) times x, any shape. */
static ir_val scale_by(ir_graph *ng, ir_val x, ir_val s)
{
    if (!ir_graph_ok(ng))
        return IR_NONE;
    ir_shape xs = *ir_shape_of(ng, x);
    return ir_binary(ng, IR_OP_MUL, x, ir_broadcast_trailing(ng, s, &xs));
}

/* Term t's Λ per level: [L, k_t] (diag) or [L, k_t, k_t]. */
static lam level_factor(ir_graph *ng, const ir_graph *g, const ir_val *map, const term *t,
                        int64_t levels)
{
    int64_t k = t->npiece;
    ir_shape vs = {.rank = 2, .dim = {levels, k}};
    ir_val s;
    lam r;
    if (t->g == IR_NONE) {
        r = (lam){1, ad_fill(ng, 1.0, &vs)};
    } else if (st_scaled_eye(g, t->g, &s)) {
        r = (lam){1, s == IR_NONE ? ad_fill(ng, 1.0, &vs)
                                  : ir_broadcast_trailing(
                                        ng, ir_unary(ng, IR_OP_SQRT, st_as_scalar(ng, map[s])),
                                        &vs)};
    } else {
        const ir_node *n = ir_node_at(g, t->g);
        if (n->op == IR_OP_DIAG_EMBED) { /* √v, effect-major [k L] -> [L, k] */
            int64_t kl[2] = {k, levels};
            r = (lam){1, st_t(ng, st_reshape(ng, ir_unary(ng, IR_OP_SQRT, map[n->input[0]]), 2,
                                             kl))};
        } else { /* A ⊗ s·I_L: Λ_l = √s Λ_A for every level */
            lam la = factor(ng, g, map, n->input[0], k);
            ir_shape bs = la.diag ? vs : (ir_shape){.rank = 3, .dim = {levels, k, k}};
            r = (lam){la.diag, ir_broadcast_trailing(ng, la.v, &bs)};
            st_scaled_eye(g, n->input[1], &s);
            if (s != IR_NONE)
                r.v = scale_by(ng, r.v, ir_unary(ng, IR_OP_SQRT, st_as_scalar(ng, map[s])));
        }
    }
    if (t->scale != IR_NONE)
        r.v = scale_by(ng, r.v, ir_unary(ng, IR_OP_SQRT, st_as_scalar(ng, map[t->scale])));
    return r;
}

/* The Cholesky factor of M = I + Λᵀ C Λ (per level when C is [levels, k,
 * k]); Λ diagonal (all_diag): C ∘ λλᵀ. */
static ir_val inner_cholesky(ir_graph *ng, const vmatch *m, ir_val c, int all_diag)
{
    ir_val mm = all_diag ? ir_binary(ng, IR_OP_MUL, c, ir_binary(ng, IR_OP_OUTER, m->lam, m->lam))
                         : st_matmul(ng, m->lam, st_matmul(ng, c, m->lam, 0, 0), 1, 0);
    if (!ir_graph_ok(ng))
        return IR_NONE;
    return ir_unary(ng, IR_OP_CHOLESKY, ir_binary(ng, IR_OP_ADD, mm, ad_eye_like(ng, mm)));
}

/* Per-level blocks [L, k_t, k_t] on the diagonal of [L, k, k]. */
static ir_val blockdiag_levels(ir_graph *ng, int n, const ir_val *blocks, int64_t levels)
{
    if (n == 1)
        return blocks[0];
    ir_val rows[MAX_BLOCK_K], row[MAX_BLOCK_K];
    for (int i = 0; i < n && ir_graph_ok(ng); i++) {
        for (int j = 0; j < n && ir_graph_ok(ng); j++) {
            if (i == j) {
                row[j] = blocks[i];
                continue;
            }
            ir_shape z = {.rank = 3,
                          .dim = {levels, ir_shape_of(ng, blocks[i])->dim[1],
                                  ir_shape_of(ng, blocks[j])->dim[2]}};
            row[j] = ad_fill(ng, 0.0, &z);
        }
        rows[i] = ir_graph_ok(ng) ? st_concat(ng, n, row, 2) : IR_NONE;
    }
    return ir_graph_ok(ng) ? st_concat(ng, n, rows, 1) : IR_NONE;
}

/* Λ per level and chol(M) per level; m->w is set, wv is D⁻¹ as [n] or
 * IR_NONE for a scalar D⁻¹ (applied to the per-level sums). */
static void emit_blocked(ir_graph *ng, const ir_graph *g, const ir_val *map, vmatch *m,
                         ir_val wv)
{
    int64_t levels = m->levels, k = m->npiece;
    lam lt[MAX_TERMS];
    int all_diag = 1;
    for (int t = 0; t < m->nterm; t++) {
        lt[t] = level_factor(ng, g, map, &m->term[t], levels);
        all_diag = all_diag && lt[t].diag;
    }
    ir_val parts[MAX_TERMS];
    for (int t = 0; t < m->nterm; t++)
        parts[t] = all_diag || !lt[t].diag ? lt[t].v : ir_unary(ng, IR_OP_DIAG_EMBED, lt[t].v);
    m->lam_diag = all_diag;
    m->lam = all_diag ? st_concat(ng, m->nterm, parts, 1)
                      : blockdiag_levels(ng, m->nterm, parts, levels);
    /* C_l: the k² weighted cross sums per level in one segment sum. */
    ir_val col[MAX_BLOCK_K * MAX_BLOCK_K];
    int64_t n1[2] = {m->n, 1};
    for (int a = 0; a < k && ir_graph_ok(ng); a++)
        for (int b = 0; b < k && ir_graph_ok(ng); b++) {
            if (b < a) {
                col[a * k + b] = col[b * k + a];
                continue;
            }
            ir_val c = wv, xa = scale_of(ng, map, &m->piece[a]),
                   xb = scale_of(ng, map, &m->piece[b]);
            if (xa != IR_NONE)
                c = c == IR_NONE ? xa : ir_binary(ng, IR_OP_MUL, c, xa);
            if (xb != IR_NONE)
                c = c == IR_NONE ? xb : ir_binary(ng, IR_OP_MUL, c, xb);
            if (c == IR_NONE)
                c = st_fill_vector(ng, st_const(ng, 1.0), m->n);
            col[a * k + b] = st_reshape(ng, c, 2, n1);
        }
    if (!ir_graph_ok(ng))
        return;
    ir_val cs = st_segsum(ng, st_concat(ng, (int)(k * k), col, 1), codes_of(map, &m->piece[0]),
                          levels);
    int64_t lkk[3] = {levels, k, k};
    ir_val c = st_reshape(ng, cs, 3, lkk);
    if (wv == IR_NONE) /* a scalar D⁻¹ */
        c = scale_by(ng, c, m->w);
    m->lm = inner_cholesky(ng, m, c, all_diag);
    ir_graph_note_rewrite(ng, "woodbury-blocked", 1);
}

/* Zᵀ D⁻¹ B for B [n, c], the products with the data first: with a scalar
 * D⁻¹ = w the segment sums are of B itself (free of θ when B is data) and w
 * scales the small result.  Per piece: up[p] [q_p, c]. */
static void zt_winv(ir_graph *ng, const ir_val *map, vmatch *m, ir_val b, ir_val *up)
{
    int scalar = ir_graph_ok(ng) && ir_shape_of(ng, m->w)->rank == 0;
    ir_val bt = scalar ? b : st_rowmul(ng, b, m->w);
    for (int p = 0; p < m->npiece; p++) {
        up[p] = zt_times(ng, map, &m->piece[p], bt);
        if (scalar)
            up[p] = scale_by(ng, up[p], m->w);
    }
}

/* S = Λ M⁻¹ Λᵀ Zᵀ D⁻¹ B for B [n, c] through the per-level M: [L, k, c]. */
static ir_val emit_s_blocked(ir_graph *ng, const ir_val *map, vmatch *m, ir_val b)
{
    int64_t levels = m->levels, k = m->npiece;
    if (!ir_graph_ok(ng))
        return IR_NONE;
    int64_t nc = ir_shape_of(ng, b)->dim[1];
    int64_t l1c[3] = {levels, 1, nc};
    ir_val up[MAX_PIECES];
    zt_winv(ng, map, m, b, up);
    for (int p = 0; p < k; p++)
        up[p] = st_reshape(ng, up[p], 3, l1c);
    ir_val u = st_concat(ng, (int)k, up, 1); /* [L, k, c] */
    ir_val lamb = IR_NONE;
    if (m->lam_diag && ir_graph_ok(ng)) {
        ir_shape us = *ir_shape_of(ng, u);
        int64_t axes[2] = {0, 1};
        lamb = ad_broadcast(ng, m->lam, &us, axes);
        u = ir_binary(ng, IR_OP_MUL, u, lamb);
    } else {
        u = st_matmul(ng, m->lam, u, 1, 0);
    }
    ir_val s = ir_binary(ng, IR_OP_CHOSOLVE, m->lm, u);
    return m->lam_diag ? ir_binary(ng, IR_OP_MUL, s, lamb) : st_matmul(ng, m->lam, s, 0, 0);
}

/* Piece p's rows of S: [q_p, c]. */
static ir_val s_piece(ir_graph *ng, const vmatch *m, ir_val s, int p)
{
    const piece *pc = &m->piece[p];
    if (!m->blocked)
        return st_slice(ng, s, 0, pc->col0, pc->col0 + pc->q);
    if (!ir_graph_ok(ng))
        return IR_NONE;
    int64_t lc[2] = {m->levels, ir_shape_of(ng, s)->dim[2]};
    return st_reshape(ng, st_slice(ng, s, 1, p, p + 1), 2, lc);
}

/* The shared values of a matched V: D⁻¹, Λ, chol(M), log|V|. */
static void emit_shared(ir_graph *ng, const ir_graph *g, const ir_val *map, vmatch *m)
{
    if (m->emitted)
        return;
    m->emitted = 1;
    /* D: a scalar when every part is s·I, else a vector. */
    int all_scalar = 1;
    for (int i = 0; i < m->nd; i++)
        all_scalar = all_scalar && m->d[i].vec == IR_NONE;
    ir_val d = IR_NONE;
    for (int i = 0; i < m->nd; i++) {
        ir_val part = m->d[i].vec != IR_NONE ? map[m->d[i].vec]
                      : m->d[i].scale != IR_NONE ? st_as_scalar(ng, map[m->d[i].scale])
                                                 : st_const(ng, 1.0);
        if (!all_scalar && m->d[i].vec == IR_NONE)
            part = st_fill_vector(ng, part, m->n);
        d = d == IR_NONE ? part : ir_binary(ng, IR_OP_ADD, d, part);
    }
    m->w = ir_unary(ng, IR_OP_RECIP, d);
    ir_val logdet_d = all_scalar ? ir_binary(ng, IR_OP_MUL, st_const(ng, (double)m->n),
                                             ir_unary(ng, IR_OP_LOG, d))
                                 : st_sum_all(ng, ir_unary(ng, IR_OP_LOG, d));
    /* With a scalar D⁻¹ = w, C = w Zᵀ Z: the sums are of the data alone (free
     * of θ in a mixed model) and w scales the q × q result. */
    ir_val wv = all_scalar ? IR_NONE : m->w;
    if (m->blocked) {
        emit_blocked(ng, g, map, m, wv);
        m->logdet = ir_binary(ng, IR_OP_ADD, logdet_d, st_logdet_chol(ng, m->lm));
        return;
    }

    /* Λ = blockdiag(Λ_t). */
    lam lt[MAX_TERMS];
    int all_diag = 1;
    for (int t = 0; t < m->nterm; t++) {
        lt[t] = factor(ng, g, map, m->term[t].g, m->term[t].q);
        if (m->term[t].scale != IR_NONE) /* s G = (√s Λ)(√s Λ)ᵀ */
            lt[t].v = st_rowmul(ng, lt[t].v,
                                ir_unary(ng, IR_OP_SQRT, st_as_scalar(ng, map[m->term[t].scale])));
        all_diag = all_diag && lt[t].diag;
    }
    ir_val parts[MAX_TERMS];
    for (int t = 0; t < m->nterm; t++)
        parts[t] = all_diag ? lt[t].v : lam_matrix(ng, lt[t]);
    m->lam_diag = all_diag;
    m->lam = all_diag ? st_concat(ng, m->nterm, parts, 0) : st_blockdiag(ng, m->nterm, parts);

    /* C = Zᵀ D⁻¹ Z from its blocks (upper ones computed, lower transposed). */
    int np = m->npiece;
    ir_val *blk = ir_malloc((size_t)(np * np + np) * sizeof *blk);
    if (!blk) {
        ir_fail(&ng->err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        return;
    }
    ir_val *rows = blk + np * np;
    for (int a = 0; a < np; a++)
        for (int b = a; b < np; b++) {
            blk[a * np + b] = cross_block(ng, map, &m->piece[a], &m->piece[b], wv, wv);
            if (b != a)
                blk[b * np + a] = st_t(ng, blk[a * np + b]);
        }
    for (int a = 0; a < np && ir_graph_ok(ng); a++)
        rows[a] = st_concat(ng, np, blk + a * np, 1);
    ir_val c = ir_graph_ok(ng) ? st_concat(ng, np, rows, 0) : IR_NONE;
    ir_free(blk);
    if (all_scalar)
        c = scale_by(ng, c, m->w);

    m->lm = inner_cholesky(ng, m, c, all_diag);
    m->logdet = ir_binary(ng, IR_OP_ADD, logdet_d, st_logdet_chol(ng, m->lm));
}

/* S = Λ M⁻¹ Λᵀ Zᵀ D⁻¹ B for B [n, c]: [q, c], or [L, k, c] when blocked. */
static ir_val emit_s(ir_graph *ng, const ir_val *map, vmatch *m, ir_val b)
{
    if (m->blocked)
        return emit_s_blocked(ng, map, m, b);
    ir_val up[MAX_PIECES];
    zt_winv(ng, map, m, b, up);
    ir_val u = st_concat(ng, m->npiece, up, 0);
    u = m->lam_diag ? st_rowmul(ng, u, m->lam) : st_matmul(ng, m->lam, u, 1, 0);
    ir_val s = ir_binary(ng, IR_OP_CHOSOLVE, m->lm, u);
    return m->lam_diag ? st_rowmul(ng, s, m->lam) : st_matmul(ng, m->lam, s, 0, 0);
}

/* V⁻¹ B = D⁻¹ (B − Z S) for B [n, c]. */
static ir_val emit_solve(ir_graph *ng, const ir_val *map, vmatch *m, ir_val b)
{
    ir_val s = emit_s(ng, map, m, b);
    ir_val zs = IR_NONE;
    for (int p = 0; p < m->npiece; p++) {
        ir_val part = z_times(ng, map, &m->piece[p], s_piece(ng, m, s, p));
        zs = zs == IR_NONE ? part : ir_binary(ng, IR_OP_ADD, zs, part);
    }
    return st_rowmul(ng, ir_binary(ng, IR_OP_SUB, b, zs), m->w);
}

/* Aᵀ V⁻¹ B for A [n, a], B [n, c] and a scalar D⁻¹ = w:
 *
 *   Aᵀ V⁻¹ B = w (Aᵀ B − (Zᵀ A)ᵀ S)      ([a, c])
 *
 * Aᵀ B, Zᵀ A and (in S) Zᵀ B are products with the data: when A and B are
 * data they do not depend on θ, so no derivative with respect to θ does
 * O(n) work — the REML criterion's Xᵀ V⁻¹ X, Xᵀ V⁻¹ y and yᵀ V⁻¹ y then cost
 * O(n) once per evaluation and O(q) per derivative direction (lme4
 * precomputes the same cross products). */
static ir_val emit_bilinear(ir_graph *ng, const ir_val *map, vmatch *m, ir_val a, ir_val b)
{
    ir_val s = emit_s(ng, map, m, b);
    ir_val acc = IR_NONE;
    for (int p = 0; p < m->npiece; p++) {
        ir_val part = st_matmul(ng, zt_times(ng, map, &m->piece[p], a), s_piece(ng, m, s, p), 1,
                                0);
        acc = acc == IR_NONE ? part : ir_binary(ng, IR_OP_ADD, acc, part);
    }
    return scale_by(ng, ir_binary(ng, IR_OP_SUB, st_matmul(ng, a, b, 1, 0), acc), m->w);
}

/* ---- the pass --------------------------------------------------------------------- */

/* The factor L = cholesky(V) is used only by cholesky_solve(L, ·) and
 * Σ log diag L, and is no output. */
static int factor_uses_ok(const ir_graph *g, const st_uses *u, ir_val l)
{
    if (u->nout[l] || !st_nuser(u, l))
        return 0;
    for (uint32_t i = u->start[l]; i < u->start[l + 1]; i++) {
        const ir_node *n = ir_node_at(g, (ir_val)u->list[i]);
        if (n->op == IR_OP_CHOSOLVE && n->input[0] == l && n->input[1] != l)
            continue;
        if (n->op != IR_OP_DIAG)
            return 0;
        ir_val dv = (ir_val)u->list[i];
        if (u->nout[dv] || !st_nuser(u, dv))
            return 0;
        for (uint32_t j = u->start[dv]; j < u->start[dv + 1]; j++) {
            ir_val lv = (ir_val)u->list[j];
            const ir_node *ln = ir_node_at(g, lv);
            if (ln->op != IR_OP_LOG || u->nout[lv] || !st_nuser(u, lv))
                return 0;
            for (uint32_t k = u->start[lv]; k < u->start[lv + 1]; k++) {
                const ir_node *sn = ir_node_at(g, (ir_val)u->list[k]);
                if (sn->op != IR_OP_SUM || sn->attr[0] != 1)
                    return 0;
            }
        }
    }
    return 1;
}

/* The rewritten solve (solve(V, B) or cholesky_solve(chol V, B), B [n, c])
 * that v is, possibly through reshapes keeping n rows ([n, 1] <-> [n]), or
 * IR_NONE. */
static ir_val solve_behind(const ir_graph *g, const wctx *c, ir_val v)
{
    for (;;) {
        if (c->kind[v] == W_SOLVE || c->kind[v] == W_CHOSOLVE)
            return v;
        const ir_node *n = ir_node_at(g, v);
        if (n->op != IR_OP_RESHAPE)
            return IR_NONE;
        v = n->input[0];
    }
}

/* The matched V of a rewritten solve node. */
static vmatch *vm_of_solve(const ir_graph *g, const wctx *c, ir_val sv)
{
    const ir_node *n = ir_node_at(g, sv);
    return c->kind[sv] == W_SOLVE ? c->vm[n->input[0]]
                                  : c->vm[ir_node_at(g, n->input[0])->input[0]];
}

/* D of a matched V is a scalar multiple of I (every part s·I). */
static int d_scalar(const vmatch *m)
{
    for (int i = 0; i < m->nd; i++)
        if (m->d[i].vec != IR_NONE)
            return 0;
    return 1;
}

/* Aᵀ R with R a rewritten solve V⁻¹B of the same rows, a scalar D:
 * matmul(transpose(A), R) or matmul[ta](A, R), all rank 2.  Sets *a. */
static int match_bilinear(const ir_graph *g, const wctx *c, const ir_node *n, ir_val *a,
                          ir_val *sv)
{
    if (n->op != IR_OP_MATMUL || n->shape.rank != 2 || n->attr[1])
        return 0;
    *sv = solve_behind(g, c, n->input[1]);
    if (*sv == IR_NONE || !ir_shape_equal(ir_shape_of(g, n->input[1]), ir_shape_of(g, *sv)) ||
        !d_scalar(vm_of_solve(g, c, *sv)))
        return 0;
    *a = n->attr[0] ? n->input[0] : st_transposed(g, n->input[0]);
    const vmatch *m = vm_of_solve(g, c, *sv);
    return *a != IR_NONE && ir_shape_of(g, *a)->rank == 2 && ir_shape_of(g, *a)->dim[0] == m->n;
}

/* Σ a ⊙ r over [n] vectors with r a rewritten solve V⁻¹b (b [n, 1]), a
 * scalar D: aᵀ V⁻¹ b.  Sets *a (the other factor). */
static int match_quadratic(const ir_graph *g, const wctx *c, const ir_node *n, ir_val *a,
                           ir_val *sv)
{
    if (n->op != IR_OP_SUM || n->attr[0] != 1 || n->shape.rank != 0)
        return 0;
    const ir_node *mn = ir_node_at(g, n->input[0]);
    if (mn->op != IR_OP_MUL || mn->shape.rank != 1)
        return 0;
    for (int k = 0; k < 2; k++) {
        *sv = solve_behind(g, c, mn->input[k]);
        if (*sv != IR_NONE && ir_node_at(g, *sv)->shape.dim[1] == 1 &&
            mn->shape.dim[0] == ir_node_at(g, *sv)->shape.dim[0] &&
            d_scalar(vm_of_solve(g, c, *sv))) {
            *a = mn->input[1 - k];
            return 1;
        }
    }
    return 0;
}

/* The matched V behind value v (computed once per V). */
static vmatch *lookup(const ir_graph *g, wctx *c, ir_val v, unsigned char *tried)
{
    if (!tried[v]) {
        tried[v] = 1;
        c->vm[v] = match_v(g, v);
    }
    return c->vm[v];
}

static ir_val emit(void *ctxp, ir_graph *ng, const ir_graph *g, ir_val v, const ir_val *map)
{
    wctx *c = ctxp;
    const ir_node *n = ir_node_at(g, v);
    switch (c->kind[v]) {
    case W_LOGDET: {
        vmatch *m = c->vm[n->input[0]];
        emit_shared(ng, g, map, m);
        ir_graph_note_rewrite(ng, "woodbury-logdet", 1);
        return m->logdet;
    }
    case W_SOLVE: {
        vmatch *m = c->vm[n->input[0]];
        emit_shared(ng, g, map, m);
        ir_graph_note_rewrite(ng, "woodbury-solve", 1);
        return emit_solve(ng, map, m, map[n->input[1]]);
    }
    case W_CHOSOLVE: {
        vmatch *m = c->vm[ir_node_at(g, n->input[0])->input[0]];
        emit_shared(ng, g, map, m);
        ir_graph_note_rewrite(ng, "woodbury-cholesky-solve", 1);
        return emit_solve(ng, map, m, map[n->input[1]]);
    }
    case W_SUMLOGDIAG: {
        ir_val l = ir_node_at(g, ir_node_at(g, n->input[0])->input[0])->input[0];
        vmatch *m = c->vm[ir_node_at(g, l)->input[0]];
        emit_shared(ng, g, map, m);
        ir_graph_note_rewrite(ng, "woodbury-logdet", 1);
        return ir_binary(ng, IR_OP_MUL, st_const(ng, 0.5), m->logdet);
    }
    case W_BILINEAR:
    case W_QUADRATIC: {
        ir_val a, sv;
        if (c->kind[v] == W_BILINEAR)
            match_bilinear(g, c, n, &a, &sv);
        else
            match_quadratic(g, c, n, &a, &sv);
        vmatch *m = vm_of_solve(g, c, sv);
        emit_shared(ng, g, map, m);
        ir_val b = map[ir_node_at(g, sv)->input[1]], av = map[a];
        if (c->kind[v] == W_BILINEAR) {
            ir_graph_note_rewrite(ng, "woodbury-bilinear", 1);
            return emit_bilinear(ng, map, m, av, b);
        }
        int64_t n1[2] = {m->n, 1};
        ir_graph_note_rewrite(ng, "woodbury-bilinear", 1);
        return st_as_scalar(ng, emit_bilinear(ng, map, m, st_reshape(ng, av, 2, n1), b));
    }
    default:
        return ST_KEEP;
    }
}

sj_status pass_structure_woodbury(ir_graph **gp, int *changed, ir_err *err)
{
    ir_graph *g = *gp;
    uint32_t nn = g->nnode;
    *changed = 0;
    wctx c = {0};
    unsigned char *tried = NULL;
    sj_status st = st_uses_fill(g, &c.uses, err);
    if (st != SJ_OK)
        return st;
    c.vm = ir_calloc(g->nnode ? g->nnode : 1, sizeof *c.vm);
    c.kind = ir_calloc(g->nnode ? g->nnode : 1, 1);
    tried = ir_calloc(g->nnode ? g->nnode : 1, 1);
    if (!c.vm || !c.kind || !tried) {
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "woodbury: out of memory");
        goto done;
    }
    int any = 0;
    for (uint32_t v = 0; v < g->nnode; v++) {
        const ir_node *n = &g->node[v];
        switch (n->op) {
        case IR_OP_LOGDET:
            if (lookup(g, &c, n->input[0], tried))
                c.kind[v] = W_LOGDET, any = 1;
            break;
        case IR_OP_SOLVE:
            if (n->input[1] != n->input[0] && lookup(g, &c, n->input[0], tried))
                c.kind[v] = W_SOLVE, any = 1;
            break;
        case IR_OP_CHOLESKY:
            if (factor_uses_ok(g, &c.uses, (ir_val)v) && lookup(g, &c, n->input[0], tried))
                c.kind[v] = W_CHOL;
            break;
        case IR_OP_CHOSOLVE:
            if (c.kind[n->input[0]] == W_CHOL)
                c.kind[v] = W_CHOSOLVE, any = 1;
            break;
        case IR_OP_MATMUL: {
            ir_val a, sv;
            if (match_bilinear(g, &c, n, &a, &sv))
                c.kind[v] = W_BILINEAR, any = 1;
            break;
        }
        case IR_OP_SUM: {
            ir_val a, sv;
            if (match_quadratic(g, &c, n, &a, &sv)) {
                c.kind[v] = W_QUADRATIC, any = 1;
                break;
            }
            const ir_node *ln = ir_node_at(g, n->input[0]);
            if (n->attr[0] != 1 || ln->op != IR_OP_LOG)
                break;
            const ir_node *dn = ir_node_at(g, ln->input[0]);
            if (dn->op == IR_OP_DIAG && c.kind[dn->input[0]] == W_CHOL)
                c.kind[v] = W_SUMLOGDIAG, any = 1;
            break;
        }
        default:
            break;
        }
    }
    if (any) {
        ir_graph *ng = NULL;
        st = st_rebuild(g, emit, &c, "woodbury", &ng, err);
        if (st == SJ_OK) {
            ir_graph_free(g);
            *gp = ng;
            *changed = 1;
        }
    }
done:
    if (c.vm)
        for (uint32_t v = 0; v < nn; v++)
            ir_free(c.vm[v]);
    ir_free(c.vm);
    st_uses_free(&c.uses);
    ir_free(tried);
    ir_free(c.kind);
    return st;
}
