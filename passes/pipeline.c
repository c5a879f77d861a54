/* The pass pipelines (XLA's pass-pipeline habit: one list, in order,
 * repeated until nothing changes).  Each pass returns a status and whether
 * it changed the graph; a pass that changes it replaces *g.
 *
 *   cleanup    DCE, CSE — after every transform.
 *   structure  the structure rewrites (docs/structure.md), each one that
 *              fires verified (debug builds) and cleaned at once — before
 *              the transform chain, so derivatives are taken of the cheap
 *              graph, and again after each transform. */
#include "ir/verify.h"
#include "passes/passes.h"

typedef sj_status pass_fn(ir_graph **g, int *changed, ir_err *err);

typedef struct pass_entry {
    const char *name;
    pass_fn *run;
} pass_entry;

static const pass_entry cleanup[] = {
    {"dce", pass_dce},
    {"cse", pass_cse},
};

/* Woodbury first: it must see V = Σ Z G Zᵀ + D as the builder wrote it,
 * before the one-hot rewrite turns the products inside V into gathers.
 * Kronecker and block-diagonal rewrites then split what is left (and what
 * Woodbury emitted) into small factors; one-hot products go last, then the
 * products with sums of the one-hot Gram matrices they leave (the tangents
 * of a dense V in derivative graphs). */
static const pass_entry structure[] = {
    {"structure-woodbury", pass_structure_woodbury},
    {"structure-kron", pass_structure_kron},
    {"structure-blockdiag", pass_structure_blockdiag},
    {"structure-onehot", pass_structure_onehot},
    {"structure-gram", pass_structure_gram},
    {"structure-rowgram", pass_structure_rowgram},
};

/* Enough for any graph: each round that changes something removes nodes. */
#define MAX_ROUNDS 16

/* Runs one clean-up pass, moving the rewrite log over to the graph it returns (the
 * clean-up passes rebuild graphs without it). */
static sj_status run_keeping_log(const pass_entry *p, ir_graph **g, int *changed, ir_err *err)
{
    ir_graph *before = *g;
    ir_rewrite *log = before->rewrite;
    uint32_t nlog = before->nrewrite;
    before->rewrite = NULL;
    before->nrewrite = 0;
    sj_status st = p->run(g, changed, err);
    ir_graph *after = *g; /* `before` when unchanged or on error */
    IR_ASSERT(after->rewrite == NULL); /* clean-up passes write no log */
    after->rewrite = log;
    after->nrewrite = nlog;
    return st;
}

sj_status pass_cleanup(ir_graph **g, ir_err *err)
{
    for (int round = 0; round < MAX_ROUNDS; round++) {
        int any = 0;
        for (size_t i = 0; i < sizeof cleanup / sizeof cleanup[0]; i++) {
            int changed = 0;
            sj_status st = run_keeping_log(&cleanup[i], g, &changed, err);
            if (st != SJ_OK)
                return st;
            any |= changed;
        }
        if (!any)
            break;
    }
    return SJ_OK;
}

sj_status pass_structure(ir_graph **g, int *changed, ir_err *err)
{
    *changed = 0;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        int any = 0;
        for (size_t i = 0; i < sizeof structure / sizeof structure[0]; i++) {
            int ch = 0;
            sj_status st = structure[i].run(g, &ch, err);
            if (st != SJ_OK)
                return st;
            if (!ch)
                continue;
#ifndef NDEBUG
            if (ir_verify(*g, err) != SJ_OK)
                return SJ_ERR_INTERNAL; /* a bug in the pass: the message names the node */
#endif
            /* Clean at once, so that the next pass sees no dead pattern
             * (the V a rewrite has just made unused, say). */
            if ((st = pass_cleanup(g, err)) != SJ_OK)
                return st;
            any = 1;
        }
        if (!any)
            break;
        *changed = 1;
    }
    return SJ_OK;
}
