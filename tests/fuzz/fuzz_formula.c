/* Fuzz target: the formula front end -- lexer, parser, deparser, term
 * expansion and the design builder.  The input bytes (up to the first NUL)
 * are a formula; it is parsed, its terms expanded, and its design built on a
 * fixed table (numeric, factor and missing values, the columns of
 * tests/data/groups.csv).  Property: a design or a status with a message,
 * never a crash, a sanitizer report or a leak; a design has consistent
 * sizes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/csv.h"
#include "frontend/design.h"
#include "frontend/formula.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char table_csv[] =
    "\"y\",\"x\",\"g1\",\"g2\",\"f\",\"w\",\"s\",\"z\"\n"
    "10.2,1,\"A\",\"x\",\"p\",0.5,3,0\n"
    "11.5,2,\"A\",\"x\",\"q\",1.5,5,0\n"
    "9.8,3,\"A\",\"y\",\"p\",NA,2,1\n"
    "12.1,4,\"A\",\"y\",\"q\",2.5,7,0\n"
    "14.0,1,\"B\",\"x\",\"p\",3,1,1\n"
    "15.2,2,\"B\",\"x\",\"q\",,4,0\n"
    "13.9,3,\"B\",\"y\",\"p\",4,6,1\n"
    "16.4,4,\"B\",\"y\",\"q\",4.5,2,0\n"
    "8.1,1,\"C\",\"x\",NA,5,9,1\n"
    "7.7,2,\"C\",\"x\",\"p\",5.5,3,Inf\n"
    "8.8,3,\"C\",\"z\",\"q\",6,5,0\n"
    "9.9,4,\"C\",\"z\",,6.5,8,-0\n";

static fe_table *table(void)
{
    static fe_table *t;
    if (!t) {
        ir_err err = {0};
        if (fe_csv_parse(table_csv, sizeof table_csv - 1, "table", &t, &err) != SJ_OK)
            abort();
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *src = malloc(size + 1);
    memcpy(src, data, size);
    src[size] = '\0';

    fe_formula *f = NULL;
    ir_err err = {0};
    sj_status st = fe_formula_parse(src, &f, &err);
    if (st != SJ_OK) {
        if (f || !err.msg[0])
            abort();
    } else {
        if (f->lhs)
            (void)fe_deparse(&f->arena, f->lhs);
        if (f->rhs)
            (void)fe_deparse(&f->arena, f->rhs);
        fe_terms terms;
        ir_err terr = {0};
        if (fe_terms_expand(f, &f->arena, &terms, &terr) != SJ_OK && !terr.msg[0])
            abort();
        fe_formula_free(f);

        fe_design *d = NULL;
        ir_err derr = {0};
        st = fe_design_build(src, table(), &d, &derr);
        if (st == SJ_OK) {
            if (d->n + d->ndropped != d->nrow_data)
                abort();
            for (size_t r = 0; r < d->nre; r++)
                for (size_t i = 0; i < d->n; i++)
                    if (!(d->re[r].group[i] >= 0 && d->re[r].group[i] < (double)d->re[r].nlevel))
                        abort();
            fe_design_free(d);
        } else if (d || !derr.msg[0]) {
            abort();
        }
    }
    free(src);
    return 0;
}
