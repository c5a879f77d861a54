/* Block-diagonal structure: factorisations, log-determinants and solves of
 * B = blockdiag(B_1, …, B_T) (square blocks, as sj_cov_block_diagonal emits
 * them) block by block:
 *
 *   chol(B)           = blockdiag(chol B_t)
 *   log|B|            = Σ_t log|B_t|
 *   diag(B)           = concat(diag B_t)
 *   B⁻¹X, (LLᵀ)⁻¹X    = concat over t of the block's solve of its rows of X
 *
 * When every block has the same size k (T ≥ 2), cholesky and logdet run
 * batched: the blocks are stacked into one [T, k, k] value and factorised by
 * one batched op (many small Cholesky factors in one call).  Costs Σ k_t³
 * instead of (Σ k_t)³. */
#include "ir/alloc.h"
#include "passes/passes.h"
#include "passes/structure_match.h"

enum { MAX_BLOCKS = 4096 };

/* Square diagonal blocks of v. */
static int square_blocks(const ir_graph *g, ir_val v, ir_val *block, int *nb)
{
    if (!st_match_blockdiag(g, v, block, MAX_BLOCKS, nb))
        return 0;
    for (int i = 0; i < *nb; i++) {
        const ir_shape *s = ir_shape_of(g, block[i]);
        if (s->rank != 2 || s->dim[0] != s->dim[1])
            return 0;
    }
    return 1;
}

static int same_size(const ir_graph *g, const ir_val *block, int nb)
{
    for (int i = 1; i < nb; i++)
        if (ir_shape_of(g, block[i])->dim[0] != ir_shape_of(g, block[0])->dim[0])
            return 0;
    return 1;
}

/* The blocks stacked into [T, k, k] (new graph). */
static ir_val stack(ir_graph *ng, const ir_val *nb_new, int nb, int64_t k)
{
    ir_val *part = ir_malloc((size_t)nb * sizeof *part);
    if (!part) {
        ir_fail(&ng->err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        return IR_NONE;
    }
    int64_t d[3] = {1, k, k};
    for (int i = 0; i < nb; i++)
        part[i] = st_reshape(ng, nb_new[i], 3, d);
    ir_val s = st_concat(ng, nb, part, 0);
    ir_free(part);
    return s;
}

typedef struct bctx {
    ir_val *block, *mapped;
} bctx;

static ir_val emit(void *ctxp, ir_graph *ng, const ir_graph *g, ir_val v, const ir_val *map)
{
    bctx *c = ctxp;
    const ir_node *n = ir_node_at(g, v);
    int nb;
    if (n->ninput < 1 || !(n->op == IR_OP_LOGDET || n->op == IR_OP_CHOLESKY ||
                           n->op == IR_OP_DIAG || n->op == IR_OP_CHOSOLVE || n->op == IR_OP_SOLVE))
        return ST_KEEP;
    if ((n->op == IR_OP_CHOSOLVE || n->op == IR_OP_SOLVE) && n->input[1] == n->input[0])
        return ST_KEEP;
    if (!square_blocks(g, n->input[0], c->block, &nb))
        return ST_KEEP;
    for (int i = 0; i < nb; i++)
        c->mapped[i] = map[c->block[i]];
    int64_t k = ir_shape_of(g, c->block[0])->dim[0];
    int batched = same_size(g, c->block, nb);
    switch (n->op) {
    case IR_OP_LOGDET: {
        ir_graph_note_rewrite(ng, "blockdiag-logdet", 1);
        if (batched)
            return st_sum_all(ng, ir_unary(ng, IR_OP_LOGDET, stack(ng, c->mapped, nb, k)));
        ir_val s = IR_NONE;
        for (int i = 0; i < nb; i++) {
            ir_val l = ir_unary(ng, IR_OP_LOGDET, c->mapped[i]);
            s = s == IR_NONE ? l : ir_binary(ng, IR_OP_ADD, s, l);
        }
        return s;
    }
    case IR_OP_CHOLESKY: {
        ir_graph_note_rewrite(ng, "blockdiag-cholesky", 1);
        if (batched) {
            ir_val l = ir_unary(ng, IR_OP_CHOLESKY, stack(ng, c->mapped, nb, k));
            int64_t d[2] = {k, k};
            for (int i = 0; i < nb; i++)
                c->mapped[i] = st_reshape(ng, st_slice(ng, l, 0, i, i + 1), 2, d);
        } else {
            for (int i = 0; i < nb; i++)
                c->mapped[i] = ir_unary(ng, IR_OP_CHOLESKY, c->mapped[i]);
        }
        return st_blockdiag(ng, nb, c->mapped);
    }
    case IR_OP_DIAG:
        ir_graph_note_rewrite(ng, "blockdiag-diag", 1);
        for (int i = 0; i < nb; i++)
            c->mapped[i] = ir_unary(ng, IR_OP_DIAG, c->mapped[i]);
        return st_concat(ng, nb, c->mapped, 0);
    default: { /* solve, cholesky_solve */
        ir_graph_note_rewrite(ng, n->op == IR_OP_SOLVE ? "blockdiag-solve"
                                                       : "blockdiag-cholesky-solve", 1);
        ir_val x = map[n->input[1]];
        int64_t row = 0;
        for (int i = 0; i < nb; i++) {
            int64_t ki = ir_shape_of(g, c->block[i])->dim[0];
            c->mapped[i] = ir_binary(ng, n->op, c->mapped[i], st_slice(ng, x, 0, row, row + ki));
            row += ki;
        }
        return st_concat(ng, nb, c->mapped, 0);
    }
    }
}

sj_status pass_structure_blockdiag(ir_graph **gp, int *changed, ir_err *err)
{
    ir_graph *g = *gp;
    *changed = 0;
    bctx c = {ir_malloc(MAX_BLOCKS * sizeof(ir_val)), ir_malloc(MAX_BLOCKS * sizeof(ir_val))};
    sj_status st = SJ_OK;
    if (!c.block || !c.mapped) {
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "blockdiag: out of memory");
        goto done;
    }
    int any = 0, nb;
    for (uint32_t v = 0; v < g->nnode && !any; v++) {
        const ir_node *n = &g->node[v];
        if (n->op == IR_OP_LOGDET || n->op == IR_OP_CHOLESKY || n->op == IR_OP_DIAG ||
            ((n->op == IR_OP_CHOSOLVE || n->op == IR_OP_SOLVE) && n->input[1] != n->input[0]))
            any = square_blocks(g, n->input[0], c.block, &nb);
    }
    if (any) {
        ir_graph *ng = NULL;
        st = st_rebuild(g, emit, &c, "blockdiag", &ng, err);
        if (st == SJ_OK) {
            ir_graph_free(g);
            *gp = ng;
            *changed = 1;
        }
    }
done:
    ir_free(c.block);
    ir_free(c.mapped);
    return st;
}
