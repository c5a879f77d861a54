/* Function fingerprints: one walk over a function writes its canonical byte
 * form into a sink that hashes it and, when asked, keeps the bytes. */
#include "runtime/fingerprint.h"

#include <string.h>

#include "ir/alloc.h"
#include "ir/problem.h"
#include "runtime/transform.h"

uint64_t rt_hash_mix(uint64_t h)
{
    /* The finaliser of SplitMix64 / MurmurHash3: full avalanche. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

/* Word-at-a-time multiplicative hash with the tail folded in with its length,
 * finished by rt_hash_mix.  Not cryptographic: the cache compares full keys. */
uint64_t rt_hash_bytes(uint64_t seed, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ rt_hash_mix(w)) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 32;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    if (len)
        memcpy(&w, p, len);
    h = (h ^ rt_hash_mix(w ^ ((uint64_t)len << 56))) * 0x9e3779b97f4a7c15ULL;
    return rt_hash_mix(h);
}

typedef struct sink {
    uint64_t h;
    int keep; /* also store the bytes */
    int failed;
    unsigned char *buf;
    size_t len, cap;
} sink;

/* Every put hashes its bytes as one piece.  The serialised form writes a
 * count before everything of variable length, so the byte string alone
 * determines the function. */
static void put(sink *s, const void *data, size_t len)
{
    s->h = rt_hash_bytes(s->h, data, len);
    if (!s->keep || s->failed || !len)
        return;
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + len)
            cap *= 2;
        unsigned char *b = ir_realloc(s->buf, cap);
        if (!b) {
            s->failed = 1;
            return;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
}

static void put_i64(sink *s, int64_t v) { put(s, &v, sizeof v); }

static void put_str(sink *s, const char *str)
{
    size_t n = str ? strlen(str) : 0;
    put_i64(s, (int64_t)n);
    put(s, str ? str : "", n);
}

static void put_shape(sink *s, const ir_shape *sh)
{
    put_i64(s, sh->rank);
    put(s, sh->dim, (size_t)sh->rank * sizeof sh->dim[0]);
}

static void put_graph(sink *s, const ir_graph *g)
{
    put_i64(s, g->nsym);
    for (uint32_t i = 0; i < g->nsym; i++)
        put_str(s, g->sym[i]);
    put_i64(s, g->nnode);
    for (uint32_t v = 0; v < g->nnode; v++) {
        const ir_node *n = ir_node_at(g, v);
        int64_t head[2] = {n->op, n->ninput};
        put(s, head, sizeof head);
        put(s, n->input, (size_t)n->ninput * sizeof n->input[0]);
        put(s, n->attr, sizeof n->attr);
        put_shape(s, &n->shape);
        if (n->op == IR_OP_CONST) {
            size_t numel = ir_shape_numel(&n->shape);
            put_i64(s, (int64_t)numel);
            put(s, n->data, numel * sizeof *n->data);
        }
    }
    put_i64(s, g->ninput);
    for (uint32_t i = 0; i < g->ninput; i++) {
        put_i64(s, g->input[i]);
        put_str(s, g->input_name[i]);
    }
    put_i64(s, g->noutput);
    put(s, g->output, (size_t)g->noutput * sizeof g->output[0]);
    /* The fit nodes' problems: settings and sub-graphs (0 for an absent one). */
    put_i64(s, g->nproblem);
    for (uint32_t k = 0; k < g->nproblem; k++) {
        const ir_problem *p = &g->problem[k];
        int64_t head[3] = {p->max_iter, p->rule, 0};
        memcpy(&head[2], &p->tol, sizeof p->tol);
        put(s, head, sizeof head);
        const ir_graph *sub[4] = {p->objective, p->curvature, p->gradient, p->hessian};
        for (int i = 0; i < 4; i++) {
            put_i64(s, sub[i] != NULL);
            if (sub[i])
                put_graph(s, sub[i]);
        }
    }
}

/* The function: its graph, then (when they arrive) its pending transforms.
 * The leading tag versions the format. */
static void put_fn(sink *s, const sj_fn *fn)
{
    put_str(s, "statjit-fn-v1");
    put_graph(s, fn->ir);
    /* The pending transforms (runtime/transform.h), in order. */
    put_i64(s, fn->nxform);
    for (uint32_t i = 0; i < fn->nxform; i++) {
        const rt_xform *x = &fn->xform[i];
        int64_t head[6] = {x->kind, x->output, x->flag, x->nwrt, x->nname, x->ninner};
        put(s, head, sizeof head);
        for (int j = 0; j < x->nwrt; j++)
            put_i64(s, x->wrt[j]);
        for (int j = 0; j < x->nname; j++)
            put_str(s, x->name[j]);
        if (x->kind == RT_XF_VMAP) { /* the batch axes and dimension */
            for (uint32_t j = 0; j < x->ninner; j++)
                put_i64(s, x->in_axes[j]);
            put_i64(s, x->nout_axes);
            for (int j = 0; j < x->nout_axes; j++)
                put_i64(s, x->out_axes[j]);
            put_i64(s, x->batch_dim != NULL);
            put_str(s, x->batch_dim);
        }
    }
}

uint64_t rt_fn_fingerprint(const sj_fn *fn)
{
    sink s = {.h = 0x5f3759df5f3759dfULL};
    put_fn(&s, fn);
    return s.h;
}

sj_status rt_fn_key(const sj_fn *fn, unsigned char **key, size_t *len)
{
    sink s = {.h = 0x5f3759df5f3759dfULL, .keep = 1};
    put_fn(&s, fn);
    if (s.failed) {
        ir_free(s.buf);
        *key = NULL;
        *len = 0;
        return SJ_ERR_OUT_OF_MEMORY;
    }
    *key = s.buf;
    *len = s.len;
    return SJ_OK;
}
