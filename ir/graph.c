#include "ir/graph.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/alloc.h"
#include "ir/problem.h"

ir_graph *ir_graph_new(void)
{
    ir_graph *g = ir_calloc(1, sizeof *g);
    if (g)
        ir_arena_init(&g->arena);
    return g;
}

void ir_graph_free(ir_graph *g)
{
    if (!g)
        return;
    ir_arena_free(&g->arena);
    ir_free(g->node);
    ir_free(g->input);
    ir_free(g->input_name);
    ir_free(g->output);
    ir_free(g->sym);
    ir_free(g->rewrite);
    ir_graph_free_problems(g);
    ir_free(g);
}

static int oom(ir_graph *g)
{
    ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "out of memory while building the graph");
    return -1;
}

/* Grows *arr (of *cap elements of size elt) to hold n+1; 0 on success. */
static int reserve(void **arr, uint32_t *cap, uint32_t n, size_t elt)
{
    if (n < *cap)
        return 0;
    uint32_t ncap = *cap ? *cap * 2 : 16;
    void *p = ir_realloc_array(*arr, ncap, elt);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

int ir_graph_symbol(ir_graph *g, const char *name)
{
    char anon[32];
    if (name) {
        for (uint32_t i = 0; i < g->nsym; i++)
            if (strcmp(g->sym[i], name) == 0)
                return (int)i;
    } else {
        snprintf(anon, sizeof anon, "?%u", g->nsym);
        name = anon;
    }
    if (reserve((void **)&g->sym, &g->capsym, g->nsym, sizeof *g->sym))
        return oom(g);
    const char *copy = ir_arena_strdup(&g->arena, name);
    if (!copy)
        return oom(g);
    g->sym[g->nsym] = copy;
    return (int)g->nsym++;
}

static int is_identifier(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

int ir_graph_parse_dim(ir_graph *g, const char *spec, int64_t *dim)
{
    if (!spec || strcmp(spec, "?") == 0) {
        int k = ir_graph_symbol(g, NULL);
        if (k < 0)
            return -1;
        *dim = IR_DIM_SYM(k);
        return 0;
    }
    if (*spec >= '0' && *spec <= '9') {
        char *end;
        long long v = strtoll(spec, &end, 10);
        if (*end != '\0' || v < 0 || v > (1LL << 48)) {
            ir_fail(&g->err, SJ_ERR_INVALID_ARGUMENT,
                    "dimension \"%s\" is not a size (0 to 2^48), a name or \"?\"", spec);
            return -1;
        }
        *dim = v;
        return 0;
    }
    if (!is_identifier(spec)) {
        ir_fail(&g->err, SJ_ERR_INVALID_ARGUMENT,
                "dimension \"%s\" is not a size, a name (letters, digits, _) or \"?\"", spec);
        return -1;
    }
    int k = ir_graph_symbol(g, spec);
    if (k < 0)
        return -1;
    *dim = IR_DIM_SYM(k);
    return 0;
}

ir_val ir_add_node(ir_graph *g, ir_op op, int ninput, const ir_val *inputs,
                   const int64_t *attr, int nattr, const ir_shape *declared,
                   const double *data)
{
    if (!ir_graph_ok(g))
        return IR_NONE;
    IR_ASSERT(op < IR_NOP);
    IR_ASSERT(nattr >= 0 && nattr <= IR_NATTR);
    int arity = ir_op_arity(op);
    if ((arity >= 0 && ninput != arity) || ninput < 0) {
        ir_fail(&g->err, SJ_ERR_INTERNAL, "%s takes %d inputs, given %d",
                ir_op_name(op), arity, ninput);
        return IR_NONE;
    }
    for (int i = 0; i < ninput; i++) {
        if (inputs[i] == IR_NONE)
            return IR_NONE;
        if (inputs[i] < 0 || (uint32_t)inputs[i] >= g->nnode) {
            ir_fail(&g->err, SJ_ERR_INTERNAL, "%s: input %d is value %d, not in the graph",
                    ir_op_name(op), i, (int)inputs[i]);
            return IR_NONE;
        }
    }
    if (g->nnode >= (uint32_t)INT32_MAX - 1) {
        ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "graph has too many nodes");
        return IR_NONE;
    }
    ir_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.ninput = ninput;
    if (nattr)
        memcpy(n.attr, attr, (size_t)nattr * sizeof *attr);
    if (declared)
        n.shape = *declared;
    if (ninput) {
        n.input = ir_arena_dup(&g->arena, inputs, (size_t)ninput * sizeof *inputs);
        if (!n.input)
            return oom(g), IR_NONE;
    }
    if (data) {
        size_t count = ir_shape_numel(&n.shape);
        if (ir_shape_numel_overflows(&n.shape) || count > SIZE_MAX / sizeof(double)) {
            ir_fail(&g->err, SJ_ERR_SHAPE, "constant is too large");
            return IR_NONE;
        }
        n.data = ir_arena_dup(&g->arena, data, count * sizeof(double));
        if (!n.data)
            return oom(g), IR_NONE;
    }
    ir_shape out;
    if (ir_infer_shape(g, &n, g->nnode, &out, &g->err) != 0)
        return IR_NONE;
    n.shape = out;
    if (reserve((void **)&g->node, &g->capnode, g->nnode, sizeof *g->node))
        return oom(g), IR_NONE;
    g->node[g->nnode] = n;
    return (ir_val)g->nnode++;
}

int ir_add_input_alias(ir_graph *g, ir_val v, const char *name)
{
    if (reserve((void **)&g->input, &g->capinput, g->ninput, sizeof *g->input))
        return oom(g);
    const char **names = ir_realloc_array(g->input_name, g->capinput, sizeof *names);
    if (!names)
        return oom(g);
    g->input_name = names;
    const char *copy = ir_arena_strdup(&g->arena, name);
    if (!copy)
        return oom(g);
    g->input[g->ninput] = v;
    g->input_name[g->ninput] = copy;
    g->ninput++;
    return 0;
}

ir_val ir_add_input(ir_graph *g, const char *name, const ir_shape *shape)
{
    if (!ir_graph_ok(g))
        return IR_NONE;
    if (ir_graph_find_input(g, name) >= 0) {
        ir_fail(&g->err, SJ_ERR_INVALID_ARGUMENT, "an input called \"%s\" exists already", name);
        return IR_NONE;
    }
    int64_t pos = g->ninput;
    ir_val v = ir_add_node(g, IR_OP_INPUT, 0, NULL, &pos, 1, shape, NULL);
    if (v == IR_NONE || ir_add_input_alias(g, v, name) != 0)
        return IR_NONE;
    return v;
}

int ir_graph_find_input(const ir_graph *g, const char *name)
{
    for (uint32_t i = 0; i < g->ninput; i++)
        if (strcmp(g->input_name[i], name) == 0)
            return (int)i;
    return -1;
}

sj_status ir_graph_set_outputs(ir_graph *g, uint32_t n, const ir_val *outs)
{
    ir_val *copy = NULL;
    if (n) {
        copy = ir_malloc((size_t)n * sizeof *copy);
        if (!copy)
            return ir_fail(&g->err, SJ_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(copy, outs, (size_t)n * sizeof *copy);
    }
    ir_free(g->output);
    g->output = copy;
    g->noutput = n;
    return SJ_OK;
}

ir_graph *ir_graph_copy(const ir_graph *src)
{
    ir_graph *g = ir_graph_new();
    if (!g)
        return NULL;
    for (uint32_t i = 0; i < src->nsym; i++)
        if (ir_graph_symbol(g, src->sym[i]) < 0)
            goto fail;
    if (ir_graph_copy_problems(g, src) != 0)
        goto fail;
    for (uint32_t i = 0; i < src->nnode; i++) {
        const ir_node *n = &src->node[i];
        if (ir_add_node(g, n->op, n->ninput, n->input, n->attr, IR_NATTR,
                        &n->shape, n->data) == IR_NONE)
            goto fail;
    }
    for (uint32_t i = 0; i < src->ninput; i++)
        if (ir_add_input_alias(g, src->input[i], src->input_name[i]) != 0)
            goto fail;
    if (ir_graph_set_outputs(g, src->noutput, src->output) != SJ_OK)
        goto fail;
    if (ir_graph_merge_rewrites(g, src) != 0)
        goto fail;
    return g;
fail:
    ir_graph_free(g);
    return NULL;
}

int ir_graph_note_rewrite(ir_graph *g, const char *name, uint32_t count)
{
    for (uint32_t i = 0; i < g->nrewrite; i++)
        if (strcmp(g->rewrite[i].name, name) == 0) {
            g->rewrite[i].count += count;
            return 0;
        }
    ir_rewrite *r = ir_realloc_array(g->rewrite, g->nrewrite + 1, sizeof *r);
    if (!r)
        return -1;
    r[g->nrewrite++] = (ir_rewrite){name, count};
    g->rewrite = r;
    return 0;
}

int ir_graph_merge_rewrites(ir_graph *dst, const ir_graph *src)
{
    if (dst == src)
        return 0;
    for (uint32_t i = 0; i < src->nrewrite; i++)
        if (ir_graph_note_rewrite(dst, src->rewrite[i].name, src->rewrite[i].count) != 0)
            return -1;
    return 0;
}

ir_val ir_unary(ir_graph *g, ir_op op, ir_val x)
{
    return ir_add_node(g, op, 1, &x, NULL, 0, NULL, NULL);
}

ir_val ir_binary(ir_graph *g, ir_op op, ir_val a, ir_val b)
{
    ir_val in[2] = {a, b};
    return ir_add_node(g, op, 2, in, NULL, 0, NULL, NULL);
}

ir_val ir_scalar(ir_graph *g, double v)
{
    ir_shape s = {0};
    return ir_add_node(g, IR_OP_CONST, 0, NULL, NULL, 0, &s, &v);
}

ir_val ir_broadcast_trailing(ir_graph *g, ir_val x, const ir_shape *shape)
{
    if (x == IR_NONE || !ir_graph_ok(g))
        return IR_NONE;
    const ir_shape *xs = ir_shape_of(g, x);
    if (ir_shape_equal(xs, shape))
        return x;
    /* A higher rank than shape's is left to the broadcast rule, whose message
     * names the op, the value and both shapes. */
    int64_t map[IR_NATTR];
    for (int i = 0; i < xs->rank; i++)
        map[i] = shape->rank - xs->rank + i;
    return ir_add_node(g, IR_OP_BROADCAST, 1, &x, map, xs->rank, shape, NULL);
}
