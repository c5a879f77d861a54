/* The compile cache (see cache.h): two chained hash tables under one mutex,
 * function records by fingerprint and compiled entries by
 * (record, options, shapes). */
#include "runtime/cache.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ir/alloc.h"
#include "runtime/compile.h"
#include "runtime/fingerprint.h"
#include "runtime/tile.h"

/* One distinct function (up to identical serialised form). */
typedef struct rt_fnrec {
    struct rt_fnrec *next;
    uint64_t fingerprint;
    unsigned char *key; /* owned serialised function */
    size_t len;
} rt_fnrec;

/* One specialisation.  c is NULL while a thread compiles it. */
typedef struct entry {
    struct entry *next;
    uint64_t hash;
    const rt_fnrec *rec;
    int opt_level;
    size_t nkey;
    int64_t *key; /* owned: per input its rank, then its dims */
    sj_compiled *c;
} entry;

struct rt_cache {
    pthread_mutex_t lock;
    pthread_cond_t done; /* broadcast when an entry's compile ends */
    int opt_level;
    rt_fnrec **rec;
    size_t nrecbucket, nrec;
    entry **ent;
    size_t nentbucket, nent;
    int tile; /* rt_tiling_enabled() when the cache was made */
    /* counters */
    uint64_t compiles, hits;
    double compile_seconds;
    atomic_ulong tiled_calls; /* counted outside the lock, on every tiled call */
};

rt_cache *rt_cache_new(void)
{
    rt_cache *c = ir_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->nrecbucket = 16;
    c->nentbucket = 64;
    c->rec = ir_calloc(c->nrecbucket, sizeof *c->rec);
    c->ent = ir_calloc(c->nentbucket, sizeof *c->ent);
    if (!c->rec || !c->ent)
        goto fail;
    if (pthread_mutex_init(&c->lock, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&c->done, NULL) != 0) {
        pthread_mutex_destroy(&c->lock);
        goto fail;
    }
    c->tile = rt_tiling_enabled();
    atomic_init(&c->tiled_calls, 0);
    c->opt_level = 2;
    const char *lvl = getenv("SJ_OPT_LEVEL");
    if (lvl && lvl[0] == '3' && !lvl[1])
        c->opt_level = 3;
    return c;
fail:
    ir_free(c->rec);
    ir_free(c->ent);
    ir_free(c);
    return NULL;
}

void rt_cache_free(rt_cache *c)
{
    if (!c)
        return;
    for (size_t b = 0; b < c->nentbucket; b++) {
        for (entry *e = c->ent[b], *next; e; e = next) {
            next = e->next;
            sj_compiled_free(e->c);
            ir_free(e->key);
            ir_free(e);
        }
    }
    for (size_t b = 0; b < c->nrecbucket; b++) {
        for (rt_fnrec *r = c->rec[b], *next; r; r = next) {
            next = r->next;
            ir_free(r->key);
            ir_free(r);
        }
    }
    ir_free(c->ent);
    ir_free(c->rec);
    pthread_cond_destroy(&c->done);
    pthread_mutex_destroy(&c->lock);
    ir_free(c);
}

/* Doubles a bucket array when the load passes 1; on out of memory the table
 * just stays denser. */
#define GROW(tab, nbucket, count, type)                                                  \
    do {                                                                                 \
        if ((count) <= (nbucket))                                                        \
            break;                                                                       \
        size_t nb_ = (nbucket) * 2;                                                      \
        type **t_ = ir_calloc(nb_, sizeof *t_);                                          \
        if (!t_)                                                                         \
            break;                                                                       \
        for (size_t b_ = 0; b_ < (nbucket); b_++)                                        \
            for (type *x_ = (tab)[b_], *n_; x_; x_ = n_) {                               \
                n_ = x_->next;                                                           \
                size_t k_ = (size_t)(HASH_OF(x_) & (nb_ - 1));                           \
                x_->next = t_[k_];                                                       \
                t_[k_] = x_;                                                             \
            }                                                                            \
        ir_free(tab);                                                                    \
        (tab) = t_;                                                                      \
        (nbucket) = nb_;                                                                 \
    } while (0)

/* The record of the function fn is identical to, made if new.  Called with
 * the lock held; key is handed over (freed if an identical record exists). */
static rt_fnrec *intern(rt_cache *c, uint64_t fp, unsigned char *key, size_t len)
{
    size_t b = (size_t)(fp & (c->nrecbucket - 1));
    for (rt_fnrec *r = c->rec[b]; r; r = r->next)
        if (r->fingerprint == fp && r->len == len && memcmp(r->key, key, len) == 0) {
            ir_free(key);
            return r;
        }
    rt_fnrec *r = ir_calloc(1, sizeof *r);
    if (!r) {
        ir_free(key);
        return NULL;
    }
    r->fingerprint = fp;
    r->key = key;
    r->len = len;
    r->next = c->rec[b];
    c->rec[b] = r;
    c->nrec++;
#define HASH_OF(x) ((x)->fingerprint)
    GROW(c->rec, c->nrecbucket, c->nrec, rt_fnrec);
#undef HASH_OF
    return r;
}

/* fn's record, found once per fn (serialising it outside the lock). */
static rt_fnrec *fn_record(rt_cache *c, sj_fn *fn, ir_err *err)
{
    rt_fnrec *r = atomic_load_explicit(&fn->rec, memory_order_acquire);
    if (r)
        return r;
    unsigned char *key = NULL;
    size_t len = 0;
    if (rt_fn_key(fn, &key, &len) != SJ_OK) {
        ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "compile cache: out of memory");
        return NULL;
    }
    pthread_mutex_lock(&c->lock);
    r = intern(c, fn->fingerprint, key, len);
    pthread_mutex_unlock(&c->lock);
    if (!r) {
        ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "compile cache: out of memory");
        return NULL;
    }
    /* Racing threads intern the same record, so any winner is right. */
    atomic_store_explicit(&fn->rec, r, memory_order_release);
    return r;
}

/* Writes the flat shape key (rank, dims per input) to key; returns its length. */
static size_t shape_key(const ir_shape *shapes, uint32_t ninput, int64_t *key)
{
    size_t n = 0;
    for (uint32_t i = 0; i < ninput; i++) {
        key[n++] = shapes[i].rank;
        for (int k = 0; k < shapes[i].rank; k++)
            key[n++] = shapes[i].dim[k];
    }
    return n;
}

static entry *find(rt_cache *c, uint64_t h, const rt_fnrec *rec, int opt, const int64_t *key,
                   size_t nkey)
{
    for (entry *e = c->ent[h & (c->nentbucket - 1)]; e; e = e->next)
        if (e->hash == h && e->rec == rec && e->opt_level == opt && e->nkey == nkey &&
            memcmp(e->key, key, nkey * sizeof *key) == 0)
            return e;
    return NULL;
}

static void unlink_entry(rt_cache *c, entry *e)
{
    entry **p = &c->ent[e->hash & (c->nentbucket - 1)];
    while (*p != e)
        p = &(*p)->next;
    *p = e->next;
    c->nent--;
}

sj_status rt_cache_get(rt_cache *c, sj_fn *fn, const ir_shape *shapes, sj_compiled **out,
                       ir_err *err)
{
    *out = NULL;
    const rt_fnrec *rec = fn_record(c, fn, err);
    if (!rec)
        return err->status;

    uint32_t ninput = rt_fn_sig(fn)->ninput;
    int64_t small[16 * (1 + IR_MAX_RANK)];
    int64_t *key = small;
    if (ninput > 16) {
        key = ir_malloc((size_t)ninput * (1 + IR_MAX_RANK) * sizeof *key);
        if (!key)
            return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "compile cache: out of memory");
    }
    size_t nkey = shape_key(shapes, ninput, key);
    int opt = c->opt_level;
    uint64_t h = rt_hash_bytes(rt_hash_mix((uint64_t)(uintptr_t)rec) ^ (uint64_t)opt, key,
                               nkey * sizeof *key);

    sj_status st = SJ_OK;
    pthread_mutex_lock(&c->lock);
    entry *e;
    while ((e = find(c, h, rec, opt, key, nkey)) && !e->c)
        pthread_cond_wait(&c->done, &c->lock); /* another thread is compiling it */
    if (e) {
        rt_compiled_retain(e->c);
        c->hits++;
        *out = e->c;
        pthread_mutex_unlock(&c->lock);
        goto done;
    }

    /* A miss: claim the key, then compile without the lock. */
    e = ir_calloc(1, sizeof *e);
    int64_t *ekey = e ? ir_malloc((nkey ? nkey : 1) * sizeof *ekey) : NULL;
    if (!ekey) {
        pthread_mutex_unlock(&c->lock);
        ir_free(e);
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "compile cache: out of memory");
        goto done;
    }
    memcpy(ekey, key, nkey * sizeof *key);
    e->hash = h;
    e->rec = rec;
    e->opt_level = opt;
    e->nkey = nkey;
    e->key = ekey;
    size_t b = h & (c->nentbucket - 1);
    e->next = c->ent[b];
    c->ent[b] = e;
    c->nent++;
    pthread_mutex_unlock(&c->lock);

    sj_compiled *compiled = NULL;
    double seconds = 0;
    st = rt_compile(c, fn, shapes, opt, &compiled, &seconds, err);

    pthread_mutex_lock(&c->lock);
    if (st == SJ_OK) {
        e->c = compiled; /* the cache's reference */
        rt_compiled_retain(compiled);
        *out = compiled;
        /* A tiled function's native compile is its chunk's, counted there. */
        if (!compiled->tile) {
            c->compiles++;
            c->compile_seconds += seconds;
        }
#define HASH_OF(x) ((x)->hash)
        GROW(c->ent, c->nentbucket, c->nent, entry);
#undef HASH_OF
    } else {
        unlink_entry(c, e);
        ir_free(e->key);
        ir_free(e);
    }
    pthread_cond_broadcast(&c->done);
    pthread_mutex_unlock(&c->lock);
done:
    if (key != small)
        ir_free(key);
    return st;
}

sj_status rt_cache_counter(rt_cache *c, const char *name, double *value)
{
    static const char *const names[] = {"compiles", "cache_hits", "compile_seconds",
                                        "cache_entries", "tiled_calls"};
    int k = -1;
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            k = i;
    if (k < 0)
        return SJ_ERR_UNKNOWN_NAME;
    pthread_mutex_lock(&c->lock);
    switch (k) {
    case 0: *value = (double)c->compiles; break;
    case 1: *value = (double)c->hits; break;
    case 2: *value = c->compile_seconds; break;
    case 4: *value = (double)atomic_load(&c->tiled_calls); break;
    default: {
        size_t n = 0; /* finished entries only */
        for (size_t b = 0; b < c->nentbucket; b++)
            for (entry *e = c->ent[b]; e; e = e->next)
                n += e->c != NULL;
        *value = (double)n;
    }
    }
    pthread_mutex_unlock(&c->lock);
    return SJ_OK;
}

int rt_cache_tiling(const rt_cache *c) { return c->tile; }

void rt_cache_note_tiled_call(rt_cache *c)
{
    atomic_fetch_add_explicit(&c->tiled_calls, 1, memory_order_relaxed);
}
