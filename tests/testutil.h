/* Helpers shared by the cmocka test programs. */
#ifndef SJ_TESTUTIL_H
#define SJ_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "statjit.h"

/* Fails the test unless |got - want| <= atol + rtol * |want| for every
 * element; the message shows the index, both values and the tolerance. */
void assert_close_impl(const double *got, const double *want, size_t n, double rtol,
                       double atol, const char *file, int line);
#define assert_close(got, want, n, rtol, atol) \
    assert_close_impl((got), (want), (n), (rtol), (atol), __FILE__, __LINE__)

/* Fails the test with the context's message unless st == SJ_OK. */
void assert_ok_impl(sj_status st, const sj_ctx *ctx, const char *file, int line);
#define assert_ok(st, ctx) assert_ok_impl((st), (ctx), __FILE__, __LINE__)

/* Fails unless st == want and the context's message contains `fragment`. */
void assert_error_impl(sj_status st, sj_status want, const sj_ctx *ctx, const char *fragment,
                       const char *file, int line);
#define assert_error(st, want, ctx, fragment) \
    assert_error_impl((st), (want), (ctx), (fragment), __FILE__, __LINE__)

/* The common fixture: a context and an empty graph in it.  Use
 * test_graph_setup / test_graph_teardown as cmocka setup and teardown; the
 * state is a test_graph *. */
typedef struct test_graph {
    sj_ctx *ctx;
    sj_graph *g;
} test_graph;
int test_graph_setup(void **state);
int test_graph_teardown(void **state);

/* Deterministic uniform numbers in [lo, hi) (xorshift; tests stay repeatable). */
double test_uniform(uint64_t *state, double lo, double hi);
/* Largest |a - b| over the largest |b|, per item of nb items of m entries
 * (NaN when an item's difference is NaN). */
double test_item_err(const double *a, const double *b, int64_t nb, int64_t m);

#endif
