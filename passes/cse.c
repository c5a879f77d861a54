/* Common subexpression elimination by hash-consing: a node equal to an
 * earlier one (same op, renamed inputs, attributes, shape and, for
 * constants, data) is replaced by it.  Inputs are never merged.  Every op of
 * the IR is pure, so merging is always safe. */
#include <string.h>

#include "ir/alloc.h"
#include "passes/passes.h"
#include "passes/rebuild.h"

typedef struct table {
    ir_val *slot; /* node of the new graph, IR_NONE if empty */
    size_t mask;
    int merged;
} table;

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdULL;
}

static uint64_t hash_node(const ir_node *n, const ir_val *in)
{
    uint64_t h = mix(0x12345, (uint64_t)n->op);
    for (int i = 0; i < n->ninput; i++)
        h = mix(h, (uint64_t)(uint32_t)in[i]);
    for (int i = 0; i < IR_NATTR; i++)
        h = mix(h, (uint64_t)n->attr[i]);
    h = mix(h, (uint64_t)n->shape.rank);
    for (int i = 0; i < n->shape.rank; i++)
        h = mix(h, (uint64_t)n->shape.dim[i]);
    if (n->data) {
        size_t m = ir_shape_numel(&n->shape);
        for (size_t i = 0; i < m && i < 64; i++) {
            uint64_t w;
            memcpy(&w, &n->data[i], sizeof w);
            h = mix(h, w);
        }
    }
    return h ^ (h >> 29);
}

static int same_node(const ir_node *a, const ir_node *b, const ir_val *in)
{
    if (a->op != b->op || a->ninput != b->ninput || !ir_shape_equal(&a->shape, &b->shape) ||
        memcmp(a->attr, b->attr, sizeof a->attr) != 0)
        return 0;
    for (int i = 0; i < a->ninput; i++)
        if (a->input[i] != in[i])
            return 0;
    if (a->data || b->data) {
        if (!a->data || !b->data)
            return 0;
        return memcmp(a->data, b->data, ir_shape_numel(&a->shape) * sizeof *a->data) == 0;
    }
    return 1;
}

static ir_val add_unique(void *ctx, ir_graph *ng, const ir_node *n, const ir_val *in)
{
    table *t = ctx;
    if (n->op == IR_OP_INPUT)
        return pass_copy_node(ng, n, in);
    for (int i = 0; i < n->ninput; i++)
        if (in[i] == IR_NONE)
            return IR_NONE;
    size_t at = hash_node(n, in) & t->mask;
    for (; t->slot[at] != IR_NONE; at = (at + 1) & t->mask) {
        if (same_node(&ng->node[t->slot[at]], n, in)) {
            t->merged = 1;
            return t->slot[at];
        }
    }
    ir_val v = pass_copy_node(ng, n, in);
    t->slot[at] = v;
    return v;
}

sj_status pass_cse(ir_graph **gp, int *changed, ir_err *err)
{
    ir_graph *g = *gp;
    *changed = 0;
    size_t cap = 16;
    while (cap < 2 * (size_t)g->nnode)
        cap *= 2;
    table t = {.slot = ir_malloc(cap * sizeof(ir_val)), .mask = cap - 1};
    if (!t.slot)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "cse: out of memory");
    for (size_t i = 0; i < cap; i++)
        t.slot[i] = IR_NONE;
    ir_graph *ng = NULL;
    sj_status st = pass_rebuild_with(g, NULL, add_unique, &t, &ng, err);
    ir_free(t.slot);
    if (st != SJ_OK)
        return st;
    if (!t.merged) {
        ir_graph_free(ng);
        return SJ_OK;
    }
    ir_graph_free(g);
    *gp = ng;
    *changed = 1;
    return SJ_OK;
}
