/* The batch pool: runs the items of a batched linear-algebra loop on a few
 * threads (codegen/pool.c).  Generated code calls sj_batch_run (registered in
 * the JIT as an absolute symbol) with the loop body outlined as a function
 * (codegen/lower_batch.c).  This header has no llvm-c dependency, so tests
 * and the JIT's symbol table can include it. */
#ifndef CG_POOL_H
#define CG_POOL_H

#include <stdint.h>

/* One batch item: returns 0, or a status after writing a 4 × int64 error
 * record (value, batch item, offending number, info; see cg_fail_if) to rec. */
typedef int32_t cg_batch_body(void *env, int64_t item, int64_t *rec);

/* Runs body(env, b, ·) for b = 0 .. n-1, split across the pool's threads when
 * it has any (and is not busy with another batch), with OpenBLAS set to one
 * thread meanwhile.  Items are independent: results do not depend on the
 * split.  Returns 0, or the status of the first failing item in batch order,
 * whose error record is then copied to rec (the kernel's scratch header). */
int32_t sj_batch_run(cg_batch_body *body, void *env, int64_t n, int64_t *rec);

/* Threads a batch may use, the caller's included: n >= 1, or 0 for the
 * default (the CPUs online, at most CG_POOL_MAX).  Returns the previous
 * setting.  For tests and benchmarks (1 runs every batch serially). */
#define CG_POOL_MAX 16
int cg_pool_set_threads(int n);

#endif
