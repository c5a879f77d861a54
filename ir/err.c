#include "ir/err.h"

#include <stdarg.h>
#include <stdio.h>

sj_status ir_fail(ir_err *err, sj_status status, const char *fmt, ...)
{
    if (!err || err->status != SJ_OK)
        return err ? err->status : status;
    err->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return status;
}

void ir_err_clear(ir_err *err)
{
    err->status = SJ_OK;
    err->msg[0] = '\0';
}
