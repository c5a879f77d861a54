/* Error reporting inside the library: a status plus a message.  User errors
 * travel as ir_err up to the public API, which copies them into the context;
 * broken invariants are assertions (IR_ASSERT), not errors. */
#ifndef IR_ERR_H
#define IR_ERR_H

#include <assert.h>
#include "statjit.h"

#define IR_ERR_MSG 512

typedef struct ir_err {
    sj_status status;
    char msg[IR_ERR_MSG];
} ir_err;

/* Records status and a printf-style message; returns status so callers can
 * write `return ir_fail(err, SJ_ERR_SHAPE, "...")`.  err may be NULL.  Keeps
 * the first error if one is already recorded. */
sj_status ir_fail(ir_err *err, sj_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ir_err_clear(ir_err *err);

#define IR_ASSERT(cond) assert(cond)

#endif
