/* sj_ctx: the owner of the last error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "frontend/handles.h"
#include "ir/alloc.h"
#include "runtime/cache.h"

sj_status sj_ctx_create(sj_ctx **out)
{
    if (!out)
        return SJ_ERR_INVALID_ARGUMENT;
    *out = NULL;
    sj_ctx *ctx = ir_calloc(1, sizeof *ctx);
    if (!ctx)
        return SJ_ERR_OUT_OF_MEMORY;
    ctx->cache = rt_cache_new();
    if (!ctx->cache || pthread_mutex_init(&ctx->lock, NULL) != 0) {
        rt_cache_free(ctx->cache);
        ir_free(ctx);
        return SJ_ERR_OUT_OF_MEMORY;
    }
    ctx->magic = FE_MAGIC_CTX;
    *out = ctx;
    return SJ_OK;
}

void sj_ctx_free(sj_ctx *ctx)
{
    if (!fe_ctx_valid(ctx))
        return;
    rt_cache_free(ctx->cache); /* drops its compiled functions while ctx is valid */
    ctx->magic = FE_MAGIC_DEAD;
    pthread_mutex_destroy(&ctx->lock);
    ir_free(ctx);
}

const char *sj_ctx_last_error(const sj_ctx *ctx)
{
    if (!fe_ctx_valid(ctx))
        return "invalid context handle";
    return ctx->msg;
}

int fe_ctx_valid(const sj_ctx *ctx) { return ctx && ctx->magic == FE_MAGIC_CTX; }

sj_status fe_ctx_fail(sj_ctx *ctx, const ir_err *err)
{
    pthread_mutex_lock(&ctx->lock);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", err->msg);
    pthread_mutex_unlock(&ctx->lock);
    return err->status;
}

sj_status fe_ctx_failf(sj_ctx *ctx, sj_status status, const char *fmt, ...)
{
    pthread_mutex_lock(&ctx->lock);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

const char *sj_status_name(sj_status status)
{
    switch (status) {
    case SJ_OK: return "SJ_OK";
    case SJ_ERR_INVALID_ARGUMENT: return "SJ_ERR_INVALID_ARGUMENT";
    case SJ_ERR_SHAPE: return "SJ_ERR_SHAPE";
    case SJ_ERR_UNKNOWN_NAME: return "SJ_ERR_UNKNOWN_NAME";
    case SJ_ERR_OUT_OF_MEMORY: return "SJ_ERR_OUT_OF_MEMORY";
    case SJ_ERR_NOT_POSITIVE_DEFINITE: return "SJ_ERR_NOT_POSITIVE_DEFINITE";
    case SJ_ERR_SINGULAR: return "SJ_ERR_SINGULAR";
    case SJ_ERR_DOMAIN: return "SJ_ERR_DOMAIN";
    case SJ_ERR_UNSUPPORTED: return "SJ_ERR_UNSUPPORTED";
    case SJ_ERR_INTERNAL: return "SJ_ERR_INTERNAL";
    }
    return "unknown status";
}

void sj_string_free(char *s) { ir_free(s); }
