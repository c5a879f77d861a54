/* The printer: golden text for small graphs.  The builder's graph shows the
 * symbolic dimension names; the specialised graph shows concrete sizes. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Compares printed text with the golden one; on a difference shows both and
 * the first differing line. */
static void expect_text_impl(char *got, const char *want, const char *file, int line)
{
    if (!got) {
        print_error("%s:%d: printer returned NULL\n", file, line);
        _fail(file, line);
    }
    if (strcmp(got, want) != 0) {
        size_t i = 0, ln = 1;
        while (got[i] && got[i] == want[i])
            ln += got[i++] == '\n';
        print_error("%s:%d: printed text differs at line %zu\n--- got:\n%s--- want:\n%s---\n",
                    file, line, ln, got, want);
        sj_string_free(got);
        _fail(file, line);
    }
    sj_string_free(got);
}
#define expect_text(got, want) expect_text_impl((got), (want), __FILE__, __LINE__)

/* Least squares through the normal equations. */
static void build_ols(test_graph *f, sj_value *beta, sj_value *rss)
{
    const char *dX[] = {"n", "p"}, *dy[] = {"n"};
    sj_value X = sj_input(f->g, "X", 2, dX), y = sj_input(f->g, "y", 1, dy);
    sj_value xtx = sj_matmul(f->g, sj_mT(f->g, X), X);
    sj_value xty = sj_matmul(f->g, sj_mT(f->g, X), y);
    *beta = sj_cholesky_solve(f->g, sj_cholesky(f->g, xtx), xty);
    sj_value r = sj_sub(f->g, y, sj_matmul(f->g, X, *beta));
    *rss = sj_sum_all(f->g, sj_square(f->g, r));
    assert_ok(sj_graph_status(f->g), f->ctx);
}

static const char ols_body[] =
    "  %2 = transpose[perm=1,0] %0 : [p, n]\n"
    "  %3 = matmul %2, %0 : [p, p]\n"
    "  %4 = transpose[perm=1,0] %0 : [p, n]\n"
    "  %5 = reshape %1 : [n, 1]\n"
    "  %6 = matmul %4, %5 : [p, 1]\n"
    "  %7 = reshape %6 : [p]\n"
    "  %8 = cholesky %3 : [p, p]\n"
    "  %9 = reshape %7 : [p, 1]\n"
    "  %10 = cholesky_solve %8, %9 : [p, 1]\n"
    "  %11 = reshape %10 : [p]\n"
    "  %12 = reshape %11 : [p, 1]\n"
    "  %13 = matmul %0, %12 : [n, 1]\n"
    "  %14 = reshape %13 : [n]\n"
    "  %15 = sub %1, %14 : [n]\n"
    "  %16 = square %15 : [n]\n"
    "  %17 = sum[axes=0] %16 : []\n";

static void test_graph_symbolic(void **state)
{
    test_graph *f = *state;
    sj_value beta, rss;
    build_ols(f, &beta, &rss);
    char want[2048];
    snprintf(want, sizeof want,
             "graph(X: [n, p], y: [n]) {\n"
             "  %%0 = input \"X\" : [n, p]\n"
             "  %%1 = input \"y\" : [n]\n"
             "%s"
             "  return\n"
             "}\n",
             ols_body);
    expect_text(sj_graph_print(f->g), want);
}

static void test_compiled_concrete(void **state)
{
    test_graph *f = *state;
    sj_value beta, rss;
    build_ols(f, &beta, &rss);
    sj_value outs[] = {beta, rss};
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(f->g, 2, outs, &fn), f->ctx);
    int ranks[] = {2, 1};
    int64_t dX[] = {10, 3}, dy[] = {10};
    const int64_t *dims[] = {dX, dy};
    sj_compiled *c = NULL;
    assert_ok(sj_fn_specialize(fn, 2, ranks, dims, &c), f->ctx);
    expect_text(sj_compiled_print(c),
                "graph(X: [10, 3], y: [10]) {\n"
                "  %0 = input \"X\" : [10, 3]\n"
                "  %1 = input \"y\" : [10]\n"
                "  %2 = transpose[perm=1,0] %0 : [3, 10]\n"
                "  %3 = matmul %2, %0 : [3, 3]\n"
                "  %4 = transpose[perm=1,0] %0 : [3, 10]\n"
                "  %5 = reshape %1 : [10, 1]\n"
                "  %6 = matmul %4, %5 : [3, 1]\n"
                "  %7 = reshape %6 : [3]\n"
                "  %8 = cholesky %3 : [3, 3]\n"
                "  %9 = reshape %7 : [3, 1]\n"
                "  %10 = cholesky_solve %8, %9 : [3, 1]\n"
                "  %11 = reshape %10 : [3]\n"
                "  %12 = reshape %11 : [3, 1]\n"
                "  %13 = matmul %0, %12 : [10, 1]\n"
                "  %14 = reshape %13 : [10]\n"
                "  %15 = sub %1, %14 : [10]\n"
                "  %16 = square %15 : [10]\n"
                "  %17 = sum[axes=0] %16 : []\n"
                "  return %11, %17\n"
                "}\n");
    sj_compiled_free(c);
    sj_fn_free(fn);
}

/* Implicit broadcasting appears as explicit broadcast nodes with their axis
 * maps; only size-1 and missing axes are stretched. */
static void test_broadcasts(void **state)
{
    test_graph *f = *state;
    const char *dc[] = {"n", "1"}, *dr[] = {"1", "p"}, *dv[] = {"p"};
    sj_value col = sj_input(f->g, "col", 2, dc), row = sj_input(f->g, "row", 2, dr);
    sj_value v = sj_input(f->g, "v", 1, dv);
    sj_value s = sj_add(f->g, col, row);
    sj_value t = sj_mul(f->g, s, v);
    sj_value u = sj_div(f->g, sj_scalar(f->g, 1), t);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(f->g, 1, &u, &fn), f->ctx);
    expect_text(sj_graph_print(f->g),
                "graph(col: [n, 1], row: [1, p], v: [p]) {\n"
                "  %0 = input \"col\" : [n, 1]\n"
                "  %1 = input \"row\" : [1, p]\n"
                "  %2 = input \"v\" : [p]\n"
                "  %3 = broadcast[axes=0,1] %0 : [n, p]\n"
                "  %4 = broadcast[axes=0,1] %1 : [n, p]\n"
                "  %5 = add %3, %4 : [n, p]\n"
                "  %6 = broadcast[axes=1] %2 : [n, p]\n"
                "  %7 = mul %5, %6 : [n, p]\n"
                "  %8 = const 1 : []\n"
                "  %9 = broadcast[axes=] %8 : [n, p]\n"
                "  %10 = div %9, %7 : [n, p]\n"
                "  return\n"
                "}\n");
    int ranks[] = {2, 2, 1};
    int64_t dcol[] = {2, 1}, drow[] = {1, 3}, dvv[] = {3};
    const int64_t *dims[] = {dcol, drow, dvv};
    sj_compiled *c = NULL;
    assert_ok(sj_fn_specialize(fn, 3, ranks, dims, &c), f->ctx);
    expect_text(sj_compiled_print(c),
                "graph(col: [2, 1], row: [1, 3], v: [3]) {\n"
                "  %0 = input \"col\" : [2, 1]\n"
                "  %1 = input \"row\" : [1, 3]\n"
                "  %2 = input \"v\" : [3]\n"
                "  %3 = broadcast[axes=0,1] %0 : [2, 3]\n"
                "  %4 = broadcast[axes=0,1] %1 : [2, 3]\n"
                "  %5 = add %3, %4 : [2, 3]\n"
                "  %6 = broadcast[axes=1] %2 : [2, 3]\n"
                "  %7 = mul %5, %6 : [2, 3]\n"
                "  %8 = const 1 : []\n"
                "  %9 = broadcast[axes=] %8 : [2, 3]\n"
                "  %10 = div %9, %7 : [2, 3]\n"
                "  return %10\n"
                "}\n");
    sj_compiled_free(c);
    sj_fn_free(fn);
}

/* Every attribute form, anonymous dimensions ("?0"), constants in shortest
 * round-trip form and elided after six values. */
static void test_attributes(void **state)
{
    test_graph *f = *state;
    sj_graph *g = f->g;
    const char *dv[] = {"?", "3"}, *dw[] = {"m"};
    sj_value v = sj_input(g, "v", 2, dv), w = sj_input(g, "w", 1, dw);
    double cd[] = {0.1, 2, -3.5, 1e300, 1.0 / 3, 7, 8};
    int64_t cs[] = {7};
    sj_value k = sj_constant(g, 1, cs, cd);
    sj_value p = sj_add(g, v, sj_scalar(g, 0.5));
    sj_value q = sj_compare(g, SJ_LE, p, sj_slice(g, p, 1, 0, INT64_MAX));
    sj_value t = sj_transpose(g, q, (int[]){1, 0});
    sj_value u = sj_triangular_solve(g, sj_eye(g, "3"), t, SJ_SOLVE_UPPER | SJ_SOLVE_TRANSPOSE);
    sj_tril(g, sj_outer(g, w, w), -1);
    sj_triu(g, sj_exp(g, v), 0);
    sj_polygamma(g, 2, sj_reduce_max(g, u, 1, (int[]){1}));
    sj_value o = sj_one_hot(g, k, "4");
    sj_segment_sum(g, o, k, "g");
    sj_concat(g, 2, (sj_value[]){k, k}, 0);
    sj_slice(g, v, 0, -2, 5);
    sj_mean(g, sj_select(g, v, v, p), 2, (int[]){0, 1});
    assert_ok(sj_graph_status(g), f->ctx);
    expect_text(sj_graph_print(g),
                "graph(v: [?0, 3], w: [m]) {\n"
                "  %0 = input \"v\" : [?0, 3]\n"
                "  %1 = input \"w\" : [m]\n"
                "  %2 = const {0.1, 2, -3.5, 1e+300, 0.3333333333333333, 7, ...} : [7]\n"
                "  %3 = const 0.5 : []\n"
                "  %4 = broadcast[axes=] %3 : [?0, 3]\n"
                "  %5 = add %0, %4 : [?0, 3]\n"
                "  %6 = slice[axis=1,0:] %5 : [?0, 3]\n"
                "  %7 = cmp[le] %5, %6 : [?0, 3]\n"
                "  %8 = transpose[perm=1,0] %7 : [3, ?0]\n"
                "  %9 = eye : [3, 3]\n"
                "  %10 = triangular_solve[left,upper,trans] %9, %8 : [3, ?0]\n"
                "  %11 = outer %1, %1 : [m, m]\n"
                "  %12 = tril[k=-1] %11 : [m, m]\n"
                "  %13 = exp %0 : [?0, 3]\n"
                "  %14 = triu %13 : [?0, 3]\n"
                "  %15 = reduce_max[axes=1] %10 : [3]\n"
                "  %16 = polygamma[order=2] %15 : [3]\n"
                "  %17 = one_hot %2 : [7, 4]\n"
                "  %18 = segment_sum %17, %2 : [g, 4]\n"
                "  %19 = concat[axis=0] %2, %2 : [14]\n"
                "  %20 = slice[axis=0,-2:5] %0 : [?, 3]\n"
                "  %21 = select %0, %0, %5 : [?0, 3]\n"
                "  %22 = mean[axes=0,1] %21 : []\n"
                "  return\n"
                "}\n");
}

/* Long dimension and input names are printed whole. */
static void test_long_names(void **state)
{
    test_graph *f = *state;
    char dim[301], name[201];
    memset(dim, 'd', sizeof dim - 1);
    dim[sizeof dim - 1] = '\0';
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    const char *dims[] = {dim, dim, "2"};
    sj_value x = sj_input(f->g, name, 3, dims);
    sj_neg(f->g, x);
    assert_ok(sj_graph_status(f->g), f->ctx);
    size_t size = 4096;
    char *want = test_malloc(size);
    snprintf(want, size,
             "graph(%s: [%s, %s, 2]) {\n"
             "  %%0 = input \"%s\" : [%s, %s, 2]\n"
             "  %%1 = neg %%0 : [%s, %s, 2]\n"
             "  return\n"
             "}\n",
             name, dim, dim, name, dim, dim, dim, dim);
    expect_text(sj_graph_print(f->g), want);
    test_free(want);
}

/* A graph that failed prints the nodes made before the error. */
static void test_failed_graph(void **state)
{
    test_graph *f = *state;
    const char *d[] = {"2", "3"};
    sj_value a = sj_input(f->g, "a", 2, d);
    assert_int_equal(sj_cholesky(f->g, a), SJ_INVALID);
    assert_int_equal(sj_exp(f->g, a), SJ_INVALID);
    expect_text(sj_graph_print(f->g),
                "graph(a: [2, 3]) {\n"
                "  %0 = input \"a\" : [2, 3]\n"
                "  return\n"
                "}\n");
}

/* An empty graph and a function of no inputs. */
static void test_empty(void **state)
{
    test_graph *f = *state;
    expect_text(sj_graph_print(f->g), "graph() {\n  return\n}\n");
    sj_value c = sj_scalar(f->g, -0.25);
    sj_fn *fn = NULL;
    assert_ok(sj_fn_create(f->g, 1, &c, &fn), f->ctx);
    sj_compiled *cc = NULL;
    assert_ok(sj_fn_specialize(fn, 0, NULL, NULL, &cc), f->ctx);
    expect_text(sj_compiled_print(cc),
                "graph() {\n"
                "  %0 = const -0.25 : []\n"
                "  return %0\n"
                "}\n");
    sj_compiled_free(cc);
    sj_fn_free(fn);
}

#define T(name) cmocka_unit_test_setup_teardown(name, test_graph_setup, test_graph_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_graph_symbolic), T(test_compiled_concrete), T(test_broadcasts),
        T(test_attributes), T(test_long_names), T(test_failed_graph), T(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
