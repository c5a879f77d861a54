/* The CSV reader's edge cases: quoting (embedded commas, quotes, line ends),
 * line ends (LF, CRLF, CR), missing values, typing, malformed input with
 * line and column, BOM, header-only and empty files, long lines, the file
 * wrapper, out-of-memory at every allocation, and a small random-input
 * smoke test (run it under the sanitizers). */
#include "testutil.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/csv.h"
#include "ir/alloc.h"

static fe_table *parse_ok(const char *text)
{
    fe_table *t = NULL;
    ir_err err = {0};
    if (fe_csv_parse(text, strlen(text), NULL, &t, &err) != SJ_OK) {
        print_error("\"%s\": %s\n", text, err.msg);
        fail();
    }
    return t;
}

static void parse_bad(const char *text, size_t len, const char *want)
{
    fe_table *t = NULL;
    ir_err err = {0};
    sj_status st = fe_csv_parse(text, len, NULL, &t, &err);
    if (st != SJ_ERR_INVALID_ARGUMENT || t || !strstr(err.msg, want)) {
        print_error("got %s \"%s\", want SJ_ERR_INVALID_ARGUMENT with \"%s\"\n",
                    sj_status_name(st), err.msg, want);
        fail();
    }
}
#define BAD(text, want) parse_bad((text), sizeof(text) - 1, (want))

static void test_types(void **state)
{
    (void)state;
    fe_table *t = parse_ok("a,b,c,d,e\n"
                           "1,x,2.5,\"308\", Inf\n"
                           "-3,y,1e3,\"309\",-Inf\n"
                           "+4,\"z\",0x10,310,NaN \n");
    assert_int_equal(t->nrow, 3);
    assert_int_equal(t->ncol, 5);
    assert_int_equal(t->cols[0].type, FE_COL_NUMERIC);
    assert_true(t->cols[0].integer);
    double a[] = {1, -3, 4};
    assert_close(t->cols[0].num, a, 3, 0, 0);
    assert_int_equal(t->cols[1].type, FE_COL_STRING);
    assert_string_equal(t->cols[1].str[2], "z");
    assert_int_equal(t->cols[2].type, FE_COL_NUMERIC);
    assert_false(t->cols[2].integer);
    double c[] = {2.5, 1000, 16};
    assert_close(t->cols[2].num, c, 3, 0, 0);
    assert_int_equal(t->cols[3].type, FE_COL_NUMERIC); /* quoting does not make a string */
    assert_true(t->cols[3].integer);
    assert_true(isinf(t->cols[4].num[0]) && t->cols[4].num[0] > 0);
    assert_true(isinf(t->cols[4].num[1]) && t->cols[4].num[1] < 0);
    assert_true(isnan(t->cols[4].num[2]));
    assert_int_equal(t->cols[4].nmissing, 0); /* NaN is a value, not NA */
    assert_int_equal(fe_table_find(t, "d"), 3);
    assert_int_equal(fe_table_find(t, "zz"), -1);
    fe_table_free(t);

    /* One non-number makes a string column; a column of only NA is numeric. */
    t = parse_ok("a,b\n1,NA\n2x,NA\n");
    assert_int_equal(t->cols[0].type, FE_COL_STRING);
    assert_string_equal(t->cols[0].str[0], "1");
    assert_int_equal(t->cols[1].type, FE_COL_NUMERIC);
    assert_int_equal(t->cols[1].nmissing, 2);
    fe_table_free(t);
}

static void test_missing(void **state)
{
    (void)state;
    fe_table *t = parse_ok("n,s\n"
                           "1,a\n"
                           ",\n"
                           "NA,NA\n"
                           "\"NA\",\"\"\n"
                           "  ,  \n"
                           "5, b \n");
    assert_int_equal(t->nrow, 6);
    assert_int_equal(t->cols[0].type, FE_COL_NUMERIC);
    assert_int_equal(t->cols[0].nmissing, 4);
    assert_int_equal(t->cols[1].type, FE_COL_STRING);
    assert_int_equal(t->cols[1].nmissing, 4);
    for (size_t i = 1; i <= 4; i++) {
        assert_true(t->cols[0].na[i] && isnan(t->cols[0].num[i]));
        assert_true(t->cols[1].na[i] && t->cols[1].str[i] == NULL);
    }
    assert_string_equal(t->cols[1].str[5], " b "); /* strings keep their spaces */
    assert_true(t->cols[0].num[5] == 5);
    fe_table_free(t);
}

static void test_quotes(void **state)
{
    (void)state;
    fe_table *t = parse_ok("\"name, full\",\"q\"\n"
                           "\"Smith, J\",\"say \"\"hi\"\"\"\n"
                           "\"two\nlines\",\"\"\"\"\n"
                           "  \"padded\"  ,x\n");
    assert_string_equal(t->cols[0].name, "name, full");
    assert_int_equal(t->nrow, 3);
    assert_string_equal(t->cols[0].str[0], "Smith, J");
    assert_string_equal(t->cols[1].str[0], "say \"hi\"");
    assert_string_equal(t->cols[0].str[1], "two\nlines");
    assert_string_equal(t->cols[1].str[1], "\"");
    assert_string_equal(t->cols[0].str[2], "padded");
    assert_int_equal(t->line[0], 2);
    assert_int_equal(t->line[1], 3);
    assert_int_equal(t->line[2], 5); /* the quoted line end counted */
    fe_table_free(t);
}

static void test_line_ends(void **state)
{
    (void)state;
    const char *texts[] = {
        "a,b\r\n1,x\r\n2,y\r\n", "a,b\n1,x\n2,y", "a,b\r1,x\r2,y\r", "a,b\n\n1,x\n\r\n\n2,y\n\n",
        "\xEF\xBB\xBF" "a,b\n1,x\n2,y\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        fe_table *t = parse_ok(texts[i]);
        assert_int_equal(t->nrow, 2);
        assert_string_equal(t->cols[0].name, "a");
        assert_string_equal(t->cols[1].name, "b");
        assert_int_equal(t->cols[0].type, FE_COL_NUMERIC);
        assert_string_equal(t->cols[1].str[1], "y"); /* no stray \r */
        fe_table_free(t);
    }
    /* A quoted CRLF is data, kept as is. */
    fe_table *t = parse_ok("a\r\n\"x\r\ny\"\r\n");
    assert_string_equal(t->cols[0].str[0], "x\r\ny");
    fe_table_free(t);
    /* Blank lines skipped, line numbers still right in errors. */
    BAD("a,b\n\n\n1,2\n3\n", "line 5: 1 field, header has 2");
    BAD("a,b\r\n1,2\r\n3,4,5\r\n", "line 3: 3 fields, header has 2");
}

static void test_header(void **state)
{
    (void)state;
    fe_table *t = parse_ok("a,b,c\n");
    assert_int_equal(t->nrow, 0);
    assert_int_equal(t->ncol, 3);
    assert_int_equal(t->cols[2].type, FE_COL_NUMERIC);
    char names[32];
    fe_table_names(t, names, sizeof names);
    assert_string_equal(names, "a, b, c");
    fe_table_names(t, names, 8);
    assert_string_equal(names, "a, ...");
    fe_table_free(t);
    BAD("", "empty file: no header row");
    BAD("\n\r\n\n", "empty file");
    BAD("\xEF\xBB\xBF", "empty file");
    BAD("a,,c\n1,2,3\n", "line 1: column 2 has an empty name");
    BAD("a,b,a\n1,2,3\n", "duplicate column name 'a' (columns 1 and 3)");
    BAD("a,\" \"\n1,2\n", "column 2 has an empty name");
}

static void test_malformed(void **state)
{
    (void)state;
    BAD("a,b\n1,\"x\n", "line 2, column 3: unterminated quote");
    BAD("a,b\n\"x\ny\",\"z\n", "line 3, column 4: unterminated quote");
    BAD("a,b\n1,x\"y\n", "line 2, column 4: quote inside an unquoted field");
    BAD("a,b\n1,\"x\"y\n", "line 2, column 6: unexpected character after a closing quote");
    BAD("a,b\n1,x\0y\n", "line 2, column 4: NUL byte in a field");
    BAD("a,b\n1,\"x\0y\"\n", "line 2, column 5: NUL byte");
    BAD("a,b,c\n1,2\n", "line 2: 2 fields, header has 3");
    BAD("a,b\n1,2,\n", "line 2: 3 fields, header has 2");
    /* The source name prefixes messages. */
    fe_table *t = NULL;
    ir_err err = {0};
    assert_int_equal(fe_csv_parse("a\n\"", 3, "data.csv", &t, &err), SJ_ERR_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "data.csv: line 2, column 1: unterminated quote");
}

static void test_long_lines(void **state)
{
    (void)state;
    size_t n = 200000, ncol = 2000;
    char *text = malloc(n + ncol * 8 + 64);
    assert_non_null(text);
    /* One 200 000-character field, then a row of 2000 columns. */
    size_t o = (size_t)sprintf(text, "s\n\"");
    memset(text + o, 'x', n);
    o += n;
    o += (size_t)sprintf(text + o, "\"\n");
    fe_table *t = parse_ok(text);
    assert_int_equal(strlen(t->cols[0].str[0]), n);
    fe_table_free(t);
    o = 0;
    for (size_t j = 0; j < ncol; j++)
        o += (size_t)sprintf(text + o, "%sc%zu", j ? "," : "", j);
    text[o++] = '\n';
    for (size_t j = 0; j < ncol; j++)
        o += (size_t)sprintf(text + o, "%s%zu", j ? "," : "", j);
    text[o] = '\0';
    t = parse_ok(text);
    assert_int_equal(t->ncol, ncol);
    assert_int_equal(t->nrow, 1);
    assert_true(t->cols[ncol - 1].num[0] == (double)(ncol - 1));
    fe_table_free(t);
    free(text);
}

/* Numbers read the same whatever the process's LC_NUMERIC. */
static void test_locale(void **state)
{
    (void)state;
    const char *old = setlocale(LC_NUMERIC, NULL);
    char saved[64];
    snprintf(saved, sizeof saved, "%s", old ? old : "C");
    if (!setlocale(LC_NUMERIC, "de_DE.UTF-8") && !setlocale(LC_NUMERIC, "fr_FR.UTF-8"))
        skip();
    fe_table *t = parse_ok("x\n2.5\n");
    setlocale(LC_NUMERIC, saved);
    assert_int_equal(t->cols[0].type, FE_COL_NUMERIC);
    assert_true(t->cols[0].num[0] == 2.5);
    fe_table_free(t);
}

static void test_file(void **state)
{
    (void)state;
    fe_table *t = NULL;
    ir_err err = {0};
    assert_int_equal(fe_csv_read_file("/nonexistent/x.csv", &t, &err), SJ_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "/nonexistent/x.csv: cannot open"));
    const char *dir = getenv("SJ_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/mtcars.csv", dir ? dir : "tests/data");
    ir_err_clear(&err);
    assert_int_equal(fe_csv_read_file(path, &t, &err), SJ_OK);
    assert_int_equal(t->nrow, 32);
    assert_int_equal(t->ncol, 12);
    assert_int_equal(t->cols[0].type, FE_COL_STRING);
    assert_string_equal(t->cols[0].str[0], "Mazda RX4");
    assert_int_equal(t->cols[fe_table_find(t, "cyl")].type, FE_COL_NUMERIC);
    assert_true(t->cols[fe_table_find(t, "cyl")].integer);
    assert_false(t->cols[fe_table_find(t, "wt")].integer);
    fe_table_free(t);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    const char *text = "a,\"b c\",d\n1,\"x,y\",NA\n2,z,3.5\n,w,\n";
    for (long k = 1;; k++) {
        fe_table *t = NULL;
        ir_err err = {0};
        ir_alloc_fail_at(k);
        sj_status st = fe_csv_parse(text, strlen(text), NULL, &t, &err);
        ir_alloc_fail_at(0);
        if (st == SJ_OK) {
            assert_true(k > 3);
            fe_table_free(t);
            break;
        }
        assert_int_equal(st, SJ_ERR_OUT_OF_MEMORY);
        assert_null(t);
    }
}

/* Random short inputs over CSV's special bytes: a status, never a crash. */
static void test_random_inputs(void **state)
{
    (void)state;
    static const char alphabet[] = {',', '"', '\n', '\r', 'a', '1', '.', ' ', 'N', 'A', '\0',
                                    'e', '-', '\xEF'};
    uint64_t rng = 12345;
    char buf[64];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)test_uniform(&rng, 0, sizeof buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = alphabet[(size_t)test_uniform(&rng, 0, sizeof alphabet)];
        fe_table *t = NULL;
        ir_err err = {0};
        sj_status st = fe_csv_parse(buf, len, NULL, &t, &err);
        assert_true(st == SJ_OK || st == SJ_ERR_INVALID_ARGUMENT);
        assert_true((st == SJ_OK) == (t != NULL));
        if (t) {
            for (size_t j = 0; j < t->ncol; j++)
                for (size_t i = 0; i < t->nrow; i++)
                    if (t->cols[j].type == FE_COL_STRING && t->cols[j].str[i])
                        assert_true(strlen(t->cols[j].str[i]) <= len);
        } else {
            assert_true(err.msg[0] != '\0');
        }
        fe_table_free(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),       cmocka_unit_test(test_missing),
        cmocka_unit_test(test_quotes),      cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_header),      cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_long_lines),  cmocka_unit_test(test_locale),
        cmocka_unit_test(test_file),        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_random_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
