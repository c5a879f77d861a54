/* Fuzz target: the CSV reader.  Property: any bytes give a table or a status
 * with a message, never a crash, a sanitizer report or a leak.  A table that
 * parses is also checked for its invariants (every column has nrow values,
 * missing flags agree with the values, names are unique), then handed to the
 * design builder with a formula made of its first columns, so the CSV's odd
 * corners (empty names, NaN, Inf, hex numbers, huge integers) reach the model
 * frame code too. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/csv.h"
#include "frontend/design.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_table(const fe_table *t)
{
    for (size_t j = 0; j < t->ncol; j++) {
        const fe_column *c = &t->cols[j];
        if (!c->name || !*c->name)
            abort();
        for (size_t k = 0; k < j; k++)
            if (strcmp(t->cols[k].name, c->name) == 0)
                abort();
        size_t nmissing = 0;
        for (size_t i = 0; i < t->nrow; i++) {
            nmissing += c->na[i];
            if (c->type == FE_COL_NUMERIC && c->na[i] && !isnan(c->num[i]))
                abort();
            if (c->type == FE_COL_STRING && c->na[i] != (c->str[i] == NULL))
                abort();
        }
        if (nmissing != c->nmissing)
            abort();
    }
    char names[64];
    fe_table_names(t, names, sizeof names);
    if (strlen(names) >= sizeof names)
        abort();
}

/* A backquoted name for the formula, or 0 if name cannot be quoted. */
static int quote(char *buf, size_t size, const char *name)
{
    if (strchr(name, '`') || strchr(name, '\\') || strlen(name) + 3 > size)
        return 0;
    snprintf(buf, size, "`%s`", name);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fe_table *t = NULL;
    ir_err err = {0};
    sj_status st = fe_csv_parse((const char *)data, size, "fuzz.csv", &t, &err);
    if (st != SJ_OK) {
        if (t || !err.msg[0] || err.status != st)
            abort();
        return 0;
    }
    check_table(t);
    if (t->ncol >= 2) {
        char a[128], b[128], c[128], formula[1024];
        if (quote(a, sizeof a, t->cols[0].name) && quote(b, sizeof b, t->cols[1].name)) {
            if (t->ncol >= 3 && quote(c, sizeof c, t->cols[2].name))
                snprintf(formula, sizeof formula, "%s ~ %s * %s + (1 | %s)", a, b, c, c);
            else
                snprintf(formula, sizeof formula, "%s ~ %s", a, b);
            fe_design *d = NULL;
            ir_err derr = {0};
            st = fe_design_build(formula, t, &d, &derr);
            if (st == SJ_OK) {
                if (d->n + d->ndropped != t->nrow)
                    abort();
                fe_design_free(d);
            } else if (d || !derr.msg[0]) {
                abort();
            }
        }
    }
    fe_table_free(t);
    return 0;
}
