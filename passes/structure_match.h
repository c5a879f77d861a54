/* Shared pieces of the structure rewrites (passes/structure_*.c): a rebuild
 * that exposes the old-to-new value map, use lists, recognisers that see
 * through the shapes the builder emits (explicit broadcasts, vector
 * reshapes, transposes), and small emitters.  Internal to passes/.
 *
 * Every structure pass works the same way: it reads the old graph g,
 * decides which nodes to replace, and copies g into a new graph node by
 * node; a replaced node maps to the value of the cheaper expression emitted
 * in its place.  What the replaced node fed on stays in the new graph until
 * DCE removes it (the pipeline runs DCE and CSE after every structure pass).
 * See docs/structure.md. */
#ifndef PASS_STRUCTURE_MATCH_H
#define PASS_STRUCTURE_MATCH_H

#include "ir/graph.h"

/* ---- rebuilding ------------------------------------------------------------ */

/* Returned by an emit callback: copy the node unchanged. */
#define ST_KEEP ((ir_val)-2)

/* Called for every node v of g in order; map[u] is the new value of every
 * u < v.  Returns the new value of v, or ST_KEEP to copy it. */
typedef ir_val st_emit_fn(void *ctx, ir_graph *ng, const ir_graph *g, ir_val v,
                          const ir_val *map);

/* Copies g into a new graph through emit (inputs, outputs, symbols and the
 * rewrite log carried over).  Errors of the new graph are reported through
 * err, prefixed with `pass`. */
sj_status st_rebuild(const ir_graph *g, st_emit_fn *emit, void *ctx, const char *pass,
                     ir_graph **out, ir_err *err);

/* Users of every node: the users of v are list[start[v] .. start[v + 1]);
 * a node using v twice is listed twice.  Outputs are counted in nout[v]. */
typedef struct st_uses {
    uint32_t *start, *list, *nout;
} st_uses;
sj_status st_uses_fill(const ir_graph *g, st_uses *u, ir_err *err);
void st_uses_free(st_uses *u);
static inline uint32_t st_nuser(const st_uses *u, ir_val v)
{
    return u->start[v + 1] - u->start[v];
}

/* ---- recognisers (old graph) --------------------------------------------- */

/* v is a matrix transpose ([m, n] -> [n, m]); returns its operand or IR_NONE. */
ir_val st_transposed(const ir_graph *g, ir_val v);
/* v holds zeros only: a constant of zeros or a broadcast of one. */
int st_is_zero(const ir_graph *g, ir_val v);
/* v is a broadcast of a one-element value s to v's shape: returns s. */
ir_val st_broadcast_scalar(const ir_graph *g, ir_val v);
/* v ([n, k]) is x broadcast along rows: x of shape [n] (axis 0 -> 0) or
 * [n, 1] (stretched along axis 1).  Returns x or IR_NONE. */
ir_val st_row_broadcast(const ir_graph *g, ir_val v);
/* v is an identity eye(n) or s·eye(n) (s a broadcast one-element value).
 * Returns 1 and *scale = s (IR_NONE for a plain identity), else 0. */
int st_scaled_eye(const ir_graph *g, ir_val v, ir_val *scale);

/* A one-hot design Z = one_hot(codes) [n, q], optionally scaled per row:
 * Z = one_hot(codes) * x[:, None] (a random slope).  x is IR_NONE when
 * unscaled. */
typedef struct st_onehot {
    ir_val codes, x;
    int64_t n, q;
} st_onehot;
int st_match_onehot(const ir_graph *g, ir_val z, st_onehot *oh);

/* A block-diagonal matrix as the covariance builder emits it:
 * concat(axis 0, [concat(axis 1, [B_0, 0, ...]), ...]) with zero
 * off-diagonal blocks and square or rectangular diagonal blocks.  Fills
 * block[0..*nblock-1] (at most max) and returns 1, else 0. */
int st_match_blockdiag(const ir_graph *g, ir_val v, ir_val *block, int max, int *nblock);

/* ---- emitters (new graph; errors are sticky on ng) -------------------------- */

ir_val st_matmul(ir_graph *ng, ir_val a, ir_val b, int ta, int tb);
ir_val st_t(ir_graph *ng, ir_val x);
ir_val st_reshape(ir_graph *ng, ir_val x, int rank, const int64_t *dims);
/* A one-element value as a scalar (rank 0). */
ir_val st_as_scalar(ir_graph *ng, ir_val s);
/* A [n] or [n, 1] value as a vector [n]. */
ir_val st_as_vector(ir_graph *ng, ir_val x);
/* B ([n] or [n, k]) times w per row: w is a scalar (rank 0) or a vector [n]. */
ir_val st_rowmul(ir_graph *ng, ir_val b, ir_val w);
/* A vector [n] filled with scalar s (rank 0). */
ir_val st_fill_vector(ir_graph *ng, ir_val s, int64_t n);
ir_val st_segsum(ir_graph *ng, ir_val x, ir_val codes, int64_t nseg);
ir_val st_gather(ir_graph *ng, ir_val x, ir_val codes);
ir_val st_concat(ir_graph *ng, int n, const ir_val *xs, int axis);
ir_val st_slice(ir_graph *ng, ir_val x, int axis, int64_t start, int64_t stop);
ir_val st_sum_all(ir_graph *ng, ir_val x);
ir_val st_const(ir_graph *ng, double c);
/* The block-diagonal matrix of blocks[0..n-1] (zeros off the diagonal). */
ir_val st_blockdiag(ir_graph *ng, int n, const ir_val *blocks);
/* Z_aᵀ diag(w) Z_b for one-hot Z_a = one_hot(ca) * xa, Z_b = one_hot(cb) * xb
 * (xa, xb: row scales [n] or IR_NONE; w: [n] or IR_NONE for ones): a
 * diagonal of segment sums when the codes are the same value (same_codes,
 * qa == qb), else the qa × qb two-way table summed over segments
 * ca·qb + cb.  Unweighted and unscaled, these are the counts. */
ir_val st_onehot_gram(ir_graph *ng, ir_val ca, ir_val xa, int64_t qa, ir_val cb, ir_val xb,
                      int64_t qb, int same_codes, ir_val w);
/* 2 Σ log diag(L): the log-determinant of L Lᵀ from its Cholesky factor. */
ir_val st_logdet_chol(ir_graph *ng, ir_val l);

#endif
