/* Design matrices from a formula and a table, as R's model.frame +
 * model.matrix and lme4's lFormula make them.  Internal (the CLI and the
 * model builders use it); see docs/formula.md for the rules.
 *
 * All matrices are row-major doubles.  Rows of the table with a missing
 * value in any variable the formula uses (response, fixed terms, offset,
 * random-effect terms and grouping factors) are dropped, as R's na.omit
 * does; so are rows where a computed variable (log(x), I(a/b)) is NaN.
 * Factor levels are those present in the kept rows (R's
 * drop.unused.levels = TRUE, which lm and lmer use). */
#ifndef FE_DESIGN_H
#define FE_DESIGN_H

#include <stddef.h>

#include "frontend/csv.h"
#include "ir/arena.h"
#include "ir/err.h"

/* One random-effect term (lhs | g) after lme4's expansion. */
typedef struct fe_reterm {
    const char *label;      /* "Days | Subject" */
    const char *group_name; /* "Subject"; "g2:g1" for an interaction */
    size_t nlevel;
    const char **levels;    /* level names; "a:x" for an interaction */
    double *group;          /* n codes, 0-based, into levels */
    size_t ncol;
    const char **colnames;  /* columns of the model matrix of lhs: "(Intercept)", "Days" */
    double *Z;              /* n × ncol */
} fe_reterm;

typedef struct fe_design {
    ir_arena arena;         /* owns everything below */
    size_t n;               /* rows used */
    size_t nrow_data;       /* rows in the table */
    size_t ndropped;        /* rows dropped for missing values (nrow_data - n) */
    size_t *rows;           /* n: the table row (0-based) of each design row */

    size_t nresp;           /* 0 (one-sided), 1, or 2 for cbind(successes, failures) */
    const char **resp_names;
    double *y;              /* n × nresp */

    size_t p;               /* fixed-effect columns */
    const char **colnames;  /* R's names: "(Intercept)", "woolB", "woolB:tensionM" */
    double *X;              /* n × p */
    size_t *assign;         /* p: 0 for the intercept, else 1 + the term's index (R's "assign") */
    int intercept;
    size_t nterm;
    const char **term_labels; /* R's term.labels: "wool", "tension", "wool:tension" */

    int has_offset;
    double *offset;         /* n; the sum of all offset() terms, zeros if none */

    size_t nre;
    fe_reterm *re;          /* ordered as lme4 orders them: by decreasing number of
                               levels, stably */
} fe_design;

/* Builds the design of formula on data.  On success *out is new (free with
 * fe_design_free).  Errors: SJ_ERR_INVALID_ARGUMENT for syntax and misuse
 * ("formula:1:9: expected ')'"), SJ_ERR_UNKNOWN_NAME for an unknown column
 * ("formula:1:14: unknown column 'dayz' (columns: Reaction, Days,
 * Subject)"), SJ_ERR_UNSUPPORTED for functions and operators outside the
 * supported set, SJ_ERR_OUT_OF_MEMORY. */
sj_status fe_design_build(const char *formula, const fe_table *data, fe_design **out,
                          ir_err *err);
void fe_design_free(fe_design *d);

#endif
