/* The formula front end against R: every case of tests/data/formula_golden.h
 * (made by make_formula_golden.R with model.matrix and lme4's lFormula) is
 * built from the same CSV and compared column by column -- names, X, the
 * response, the offset, and per random-effect term its label, grouping
 * levels, codes and Z block.  Then rejected formulas with the message
 * fragment and position each must produce, R's number formatting, and
 * out-of-memory at every allocation. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/formula_golden.h"
#include "frontend/csv.h"
#include "frontend/design.h"
#include "frontend/formula.h"
#include "ir/alloc.h"

static fe_table *load(const char *file)
{
    const char *dir = getenv("SJ_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", file);
    fe_table *t = NULL;
    ir_err err = {0};
    if (fe_csv_read_file(path, &t, &err) != SJ_OK) {
        print_error("%s\n", err.msg);
        fail();
    }
    return t;
}

static void check_names(const char *what, const char *const *got, const char *const *want,
                        size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (strcmp(got[j], want[j]) != 0) {
            print_error("%s %zu: got \"%s\", want \"%s\"\n", what, j, got[j], want[j]);
            fail();
        }
}

static void test_golden(void **state)
{
    (void)state;
    size_t ncase = sizeof formula_golden / sizeof *formula_golden;
    for (size_t c = 0; c < ncase; c++) {
        const fg_case *g = &formula_golden[c];
        print_message("case %zu: %s on %s\n", c + 1, g->formula, g->data);
        fe_table *t = load(g->data);
        fe_design *d = NULL;
        ir_err err = {0};
        if (fe_design_build(g->formula, t, &d, &err) != SJ_OK) {
            print_error("%s\n", err.msg);
            fail();
        }
        assert_int_equal(d->n, g->n);
        assert_int_equal(d->ndropped, g->ndropped);
        assert_int_equal(d->p, g->p);
        check_names("column", d->colnames, g->colnames, g->p);
        assert_close(d->X, g->X, g->n * g->p, 1e-15, 1e-15);
        assert_int_equal(d->nresp, g->nresp);
        check_names("response", d->resp_names, g->resp_names, g->nresp);
        assert_close(d->y, g->y, g->n * g->nresp, 1e-15, 1e-15);
        assert_int_equal(d->has_offset, g->offset != NULL);
        if (g->offset)
            assert_close(d->offset, g->offset, g->n, 1e-15, 1e-15);
        assert_int_equal(d->nre, g->nre);
        for (size_t r = 0; r < g->nre; r++) {
            const fg_re *want = &g->re[r];
            const fe_reterm *got = &d->re[r];
            assert_string_equal(got->label, want->label);
            assert_string_equal(got->group_name, want->group);
            assert_int_equal(got->nlevel, want->nlevel);
            check_names("level", got->levels, want->levels, want->nlevel);
            assert_int_equal(got->ncol, want->ncol);
            check_names("Z column", got->colnames, want->colnames, want->ncol);
            assert_close(got->group, want->codes, g->n, 0, 0);
            assert_close(got->Z, want->Z, g->n * want->ncol, 1e-15, 1e-15);
        }
        fe_design_free(d);
        fe_table_free(t);
    }
}

/* Rejected formulas: status, a fragment of the message, and the position
 * "formula:1:COL:" the message must start with (NULL: no position). */
typedef struct bad {
    const char *formula;
    sj_status status;
    const char *where;
    const char *fragment;
} bad;

static const bad rejected[] = {
    {"Reaction ~ dayz", SJ_ERR_UNKNOWN_NAME, "formula:1:12:",
     "unknown column 'dayz' (columns: Reaction, Days, Subject)"},
    {"reaction ~ Days", SJ_ERR_UNKNOWN_NAME, "formula:1:1:", "unknown column 'reaction'"},
    {"Reaction ~ log(Days + (1 | Subject)", SJ_ERR_INVALID_ARGUMENT, "formula:1:36:",
     "expected ',' or ')', found end of formula"},
    {"Reaction ~ (Days | Subject", SJ_ERR_INVALID_ARGUMENT, "formula:1:27:", "expected ')'"},
    {"Reaction ~ Days +", SJ_ERR_INVALID_ARGUMENT, "formula:1:18:", "expected a term"},
    {"Reaction Days", SJ_ERR_INVALID_ARGUMENT, "formula:1:10:", "expected '~', found 'Days'"},
    {"", SJ_ERR_INVALID_ARGUMENT, "formula:1:1:", "empty formula"},
    {"Reaction ~ Days ~ Subject", SJ_ERR_INVALID_ARGUMENT, "formula:1:17:", "one '~'"},
    {"Reaction ~ Days $ Subject", SJ_ERR_INVALID_ARGUMENT, "formula:1:17:",
     "unexpected character '$'"},
    {"Reaction ~ Days + 2", SJ_ERR_INVALID_ARGUMENT, "formula:1:19:", "invalid model term '2'"},
    {"Reaction ~ poly(Days, 2)", SJ_ERR_UNSUPPORTED, "formula:1:12:",
     "unsupported function 'poly'"},
    {"Reaction ~ Days %in% Subject", SJ_ERR_UNSUPPORTED, "formula:1:17:",
     "operator '%in%' is not supported"},
    {"Reaction ~ Days + 1 | Subject", SJ_ERR_INVALID_ARGUMENT, "formula:1:12:",
     "must be in parentheses: (Days + 1 | Subject)"},
    {"Reaction ~ Days:(1 | Subject)", SJ_ERR_INVALID_ARGUMENT, "formula:1:17:",
     "allowed only as a term of the right-hand side"},
    {"Reaction ~ Days + ((1 | Days) | Subject)", SJ_ERR_INVALID_ARGUMENT, "formula:1:20:",
     "allowed only as a term"},
    {"Reaction ~ Days + (1 | log(Subject))", SJ_ERR_INVALID_ARGUMENT, "formula:1:24:",
     "a grouping factor must be a column name"},
    {"Reaction ~ Days + (0 | Subject)", SJ_ERR_INVALID_ARGUMENT, "formula:1:20:",
     "random-effect term has no columns"},
    {"Reaction ~ Days + (1 | subjekt)", SJ_ERR_UNKNOWN_NAME, "formula:1:24:",
     "unknown column 'subjekt'"},
    {"Subject ~ Days", SJ_ERR_INVALID_ARGUMENT, NULL, NULL}, /* numeric in sleepstudy: fine? */
    {"Reaction ~ I(Days + 'a')", SJ_ERR_INVALID_ARGUMENT, "formula:1:21:",
     "a string cannot be used in arithmetic"},
    {"Reaction ~ I(Days:Subject)", SJ_ERR_INVALID_ARGUMENT, "formula:1:18:",
     "operator ':' cannot be used in arithmetic"},
    {"Reaction ~ Days^2.5", SJ_ERR_INVALID_ARGUMENT, "formula:1:17:",
     "must be a whole number"},
    {"Reaction ~ offset(Days):Subject", SJ_ERR_INVALID_ARGUMENT, "formula:1:12:",
     "offset() is allowed only as a term of the fixed part"},
    {"Reaction ~ offset(Days, 2)", SJ_ERR_INVALID_ARGUMENT, "formula:1:12:",
     "offset() takes one argument"},
    {"Reaction ~ cbind(Days, Days)", SJ_ERR_INVALID_ARGUMENT, "formula:1:12:",
     "cbind() is allowed only as the response"},
    {"cbind(Reaction) ~ Days", SJ_ERR_INVALID_ARGUMENT, "formula:1:1:",
     "cbind() takes two arguments"},
    {"Reaction ~ log(Days, 2)", SJ_ERR_INVALID_ARGUMENT, "formula:1:12:",
     "log() takes one argument"},
    {"Reaction ~ factor(Days, levels = 1:3)", SJ_ERR_INVALID_ARGUMENT, "formula:1:34:",
     "levels must be given as c("},
    {"Reaction ~ factor(Days, levels = c(\"0\", \"0\"))", SJ_ERR_INVALID_ARGUMENT,
     "formula:1:41:", "duplicate level \"0\""},
    {"Reaction ~ factor(Days, labels = c(\"a\"))", SJ_ERR_UNSUPPORTED, "formula:1:25:",
     "factor() takes a column and optionally levels"},
    {"Reaction ~ `Days", SJ_ERR_INVALID_ARGUMENT, "formula:1:12:",
     "unterminated backquoted name"},
    {"Reaction ~ factor(Days, levels = c(\"0\", \"1", SJ_ERR_INVALID_ARGUMENT, "formula:1:41:",
     "unterminated string"},
    {"Reaction ~ 1e", SJ_ERR_INVALID_ARGUMENT, "formula:1:12:", "malformed number"},
    {"Reaction ~ 2x", SJ_ERR_INVALID_ARGUMENT, "formula:1:13:", "unexpected 'x' after a number"},
    {"Reaction ~ ()", SJ_ERR_INVALID_ARGUMENT, "formula:1:13:", "expected an expression"},
    {"Reaction ~ factor(Days, levels = c(\"99\"))", SJ_ERR_INVALID_ARGUMENT, NULL,
     "no rows left: 180 of 180 rows"},
    {"Reaction ~ Days +\n  dayz", SJ_ERR_UNKNOWN_NAME, "formula:2:3:", "unknown column 'dayz'"},
};

static void test_rejected(void **state)
{
    (void)state;
    fe_table *t = load("sleepstudy.csv");
    int nfail = 0;
    for (size_t i = 0; i < sizeof rejected / sizeof *rejected; i++) {
        const bad *b = &rejected[i];
        fe_design *d = NULL;
        ir_err err = {0};
        sj_status st = fe_design_build(b->formula, t, &d, &err);
        if (!b->fragment) { /* a control: a numeric response builds */
            assert_int_equal(st, SJ_OK);
            fe_design_free(d);
            continue;
        }
        int ok = st == b->status && d == NULL && strstr(err.msg, b->fragment) &&
                 (!b->where || strncmp(err.msg, b->where, strlen(b->where)) == 0);
        if (!ok) {
            print_error("\"%s\": got %s \"%s\", want %s starting \"%s\" with \"%s\"\n", b->formula,
                        sj_status_name(st), err.msg, sj_status_name(b->status),
                        b->where ? b->where : "", b->fragment);
            nfail++;
        }
    }
    fe_table_free(t);
    assert_int_equal(nfail, 0);
}

/* Messages carry the formula and a caret under the column. */
static void test_caret(void **state)
{
    (void)state;
    fe_formula *f = NULL;
    ir_err err = {0};
    assert_int_equal(fe_formula_parse("y ~ log(x", &f, &err), SJ_ERR_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "formula:1:10: expected ',' or ')', found end of formula\n"
                                 "  y ~ log(x\n"
                                 "           ^");
}

/* A string column is not a response; strings are not numbers anywhere. */
static void test_string_misuse(void **state)
{
    (void)state;
    fe_table *t = load("warpbreaks.csv");
    static const struct {
        const char *formula, *fragment;
    } cases[] = {
        {"wool ~ tension", "formula:1:1: the response 'wool' holds strings"},
        {"breaks ~ log(wool)", "formula:1:14: column 'wool' holds strings"},
        {"breaks ~ factor(wool, levels = c(\"A\"))", "has 1 level in the rows used"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fe_design *d = NULL;
        ir_err err = {0};
        assert_int_equal(fe_design_build(cases[i].formula, t, &d, &err), SJ_ERR_INVALID_ARGUMENT);
        if (!strstr(err.msg, cases[i].fragment)) {
            print_error("\"%s\": got \"%s\", want \"%s\"\n", cases[i].formula, err.msg,
                        cases[i].fragment);
            fail();
        }
    }
    fe_table_free(t);
}

/* Term expansion on its own: R's term labels and order. */
static void test_terms(void **state)
{
    (void)state;
    static const struct {
        const char *formula;
        int intercept;
        const char *labels; /* term labels joined with ", " */
        size_t nbar;
    } cases[] = {
        {"y ~ a*b*c", 1, "a, b, c, a:b, a:c, b:c, a:b:c", 0},
        {"y ~ a*b - a:b", 1, "a, b", 0},
        {"y ~ (a + b + c)^2 - b:c", 1, "a, b, c, a:b, a:c", 0},
        {"y ~ a/b", 1, "a, a:b", 0},
        {"y ~ (a + b)/c", 1, "a, b, a:b:c", 0},
        {"y ~ b:a + a", 1, "a, b:a", 0},
        {"y ~ a + a + a:a", 1, "a", 0},
        {"y ~ 0 + a", 0, "a", 0},
        {"y ~ a - 1", 0, "a", 0},
        {"y ~ a + -1", 0, "a", 0},
        {"y ~ -1 + a + 1", 1, "a", 0},
        {"y ~ a - 0", 1, "a", 0},
        {"y ~ a + (1 | g) + offset(o)", 1, "a", 1},
        {"y ~ (1 | g1/g2/g3)", 1, "", 3},
        {"y ~ (a + b || g)", 1, "", 3},
        {"~ x", 1, "x", 0},
        {"y ~ log(x + 1) + I((x - 2)^2)", 1, "log(x + 1), I((x - 2)^2)", 0},
        {"y ~ `odd name` + x.1 + .x", 1, "`odd name`, x.1, .x", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fe_formula *f = NULL;
        ir_err err = {0};
        assert_int_equal(fe_formula_parse(cases[i].formula, &f, &err), SJ_OK);
        fe_terms T;
        if (fe_terms_expand(f, &f->arena, &T, &err) != SJ_OK) {
            print_error("%s: %s\n", cases[i].formula, err.msg);
            fail();
        }
        char buf[256] = "";
        for (size_t k = 0; k < T.nterm; k++) {
            if (k)
                strcat(buf, ", ");
            strcat(buf, T.terms[k].label);
        }
        if (strcmp(buf, cases[i].labels) != 0 || T.intercept != cases[i].intercept ||
            T.nbar != cases[i].nbar) {
            print_error("%s: got \"%s\" intercept %d bars %zu\n", cases[i].formula, buf,
                        T.intercept, T.nbar);
            fail();
        }
        if (i == 13) { /* (1 | g1/g2/g3): lme4's g3:g2:g1, g2:g1, g1 */
            assert_string_equal(T.bars[0].group_label, "g3:g2:g1");
            assert_string_equal(T.bars[1].group_label, "g2:g1");
            assert_string_equal(T.bars[2].group_label, "g1");
        }
        if (i == 14) { /* (a + b || g) */
            assert_string_equal(T.bars[0].label, "1 | g");
            assert_string_equal(T.bars[1].label, "0 + a | g");
            assert_string_equal(T.bars[2].label, "0 + b | g");
        }
        fe_formula_free(f);
    }
}

/* R's as.character for doubles. */
static void test_format_num(void **state)
{
    (void)state;
    static const struct {
        double x;
        const char *s;
    } cases[] = {
        {1e5, "1e+05"},   {123456, "123456"}, {0.001, "0.001"}, {1e-4, "1e-04"},
        {1.0 / 3, "0.333333333333333"}, {-2.5, "-2.5"}, {100, "100"}, {1e15, "1e+15"},
        {0.1, "0.1"},     {3.14159, "3.14159"}, {1e300, "1e+300"}, {-0.0001234, "-0.0001234"},
        {INFINITY, "Inf"}, {NAN, "NaN"}, {0, "0"}, {2.875, "2.875"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[64];
        fe_format_num(buf, sizeof buf, cases[i].x);
        if (strcmp(buf, cases[i].s) != 0) {
            print_error("%.17g: got \"%s\", want \"%s\"\n", cases[i].x, buf, cases[i].s);
            fail();
        }
    }
}

/* Every allocation of a build fails in turn: an error, never a crash or leak. */
static void test_out_of_memory(void **state)
{
    (void)state;
    fe_table *t = load("groups.csv");
    const char *formula = "y ~ x * f + log(w) + offset(x) + (0 + f | g1) + (1 | g1/g2)";
    for (long k = 1;; k++) {
        fe_design *d = NULL;
        ir_err err = {0};
        ir_alloc_fail_at(k);
        sj_status st = fe_design_build(formula, t, &d, &err);
        ir_alloc_fail_at(0);
        if (st == SJ_OK) {
            assert_true(k > 5);
            fe_design_free(d);
            break;
        }
        assert_int_equal(st, SJ_ERR_OUT_OF_MEMORY);
        assert_null(d);
    }
    fe_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),        cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_caret),         cmocka_unit_test(test_string_misuse),
        cmocka_unit_test(test_terms),         cmocka_unit_test(test_format_num),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
