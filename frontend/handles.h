/* The layouts behind the public handles sj_ctx and sj_graph, and the checks
 * every entry point makes before it touches one.  Internal. */
#ifndef FE_HANDLES_H
#define FE_HANDLES_H

#include <pthread.h>
#include <stdint.h>

#include "ir/err.h"
#include "ir/graph.h"
#include "statjit.h"

enum {
    FE_MAGIC_CTX = 0x534a4358,   /* "SJCX" */
    FE_MAGIC_GRAPH = 0x534a4752, /* "SJGR" */
    FE_MAGIC_FN = 0x534a464e,    /* "SJFN" */
    FE_MAGIC_COMPILED = 0x534a434f, /* "SJCO" */
    FE_MAGIC_DEAD = 0x44454144   /* set on free, to catch some use-after-free */
};

struct rt_cache;

struct sj_ctx {
    uint32_t magic;
    pthread_mutex_t lock; /* guards msg */
    char msg[IR_ERR_MSG];
    struct rt_cache *cache; /* compile cache (runtime/cache.c), owned */
};

struct sj_graph {
    uint32_t magic;
    uint32_t serial; /* unique per process: the high half of every sj_value */
    sj_ctx *ctx;
    ir_graph *ir;
};

/* Copies err's message into ctx's last error and returns err->status. */
sj_status fe_ctx_fail(sj_ctx *ctx, const ir_err *err);
/* Formats a message into ctx's last error and returns status. */
sj_status fe_ctx_failf(sj_ctx *ctx, sj_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int fe_ctx_valid(const sj_ctx *ctx);
int fe_graph_valid(const sj_graph *g);

/* The value id of node v of g, and back. */
sj_value fe_value(const sj_graph *g, ir_val v);

#endif
