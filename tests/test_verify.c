/* The verifier accepts graphs the builder makes and names each broken
 * invariant (these are pass bugs, reported as SJ_ERR_INTERNAL). */
#include <string.h>

#include "ir/graph.h"
#include "ir/verify.h"
#include "testutil.h"

static ir_graph *small_graph(void)
{
    ir_graph *g = ir_graph_new();
    ir_shape s = {2, {3, 3}};
    ir_val a = ir_add_input(g, "a", &s);
    ir_val e = ir_unary(g, IR_OP_EXP, a);
    ir_val m = ir_binary(g, IR_OP_ADD, e, a);
    ir_val l = ir_unary(g, IR_OP_CHOLESKY, m);
    ir_graph_set_outputs(g, 1, &l);
    assert_int_equal(g->err.status, SJ_OK);
    return g;
}

static void accepts_built_graph(void **state)
{
    ir_graph *g = small_graph();
    ir_err err = {0};
    assert_int_equal(ir_verify(g, &err), SJ_OK);
    ir_graph_free(g);
}

static void rejects_wrong_stored_shape(void **state)
{
    ir_graph *g = small_graph();
    g->node[2].shape.dim[0] = 4;
    ir_err err = {0};
    assert_int_equal(ir_verify(g, &err), SJ_ERR_INTERNAL);
    assert_non_null(strstr(err.msg, "add (value %2): stored shape [4, 3], rule gives"));
    ir_graph_free(g);
}

static void rejects_forward_reference(void **state)
{
    ir_graph *g = small_graph();
    ((ir_val *)g->node[1].input)[0] = 3;
    ir_err err = {0};
    assert_int_equal(ir_verify(g, &err), SJ_ERR_INTERNAL);
    assert_non_null(strstr(err.msg, "exp (value %1): input 0 is %3, not an earlier value"));
    ir_graph_free(g);
}

static void rejects_bad_output(void **state)
{
    ir_graph *g = small_graph();
    g->output[0] = 9;
    ir_err err = {0};
    assert_int_equal(ir_verify(g, &err), SJ_ERR_INTERNAL);
    assert_non_null(strstr(err.msg, "output 0 is %9"));
    ir_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_built_graph),
        cmocka_unit_test(rejects_wrong_stored_shape),
        cmocka_unit_test(rejects_forward_reference),
        cmocka_unit_test(rejects_bad_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
