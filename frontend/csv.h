/* A small CSV reader: bytes in, a table of typed columns out.  Internal.
 *
 * fe_csv_parse is a pure function of its input bytes (no files, no locale,
 * no globals), so it can be fed to a fuzzer as is; fe_csv_read_file reads a
 * file into memory and calls it.
 *
 * The dialect is RFC 4180 with R's read.csv conventions where they differ:
 *   - The first row is the header; every name must be non-empty and unique.
 *   - Fields are separated by ','; records end at "\n", "\r\n" or a lone
 *     "\r".  A final record may lack its line end.  Empty lines are skipped
 *     (R's blank.lines.skip).
 *   - A field may be quoted with '"'; inside quotes, "" is one quote and
 *     commas and line ends are data.  Spaces and tabs around a quoted field
 *     are ignored.  A quote inside an unquoted field, text after a closing
 *     quote and an unterminated quote are errors naming line and column.
 *   - A UTF-8 byte-order mark at the start is skipped (R would keep it in the
 *     first name unless told fileEncoding = "UTF-8-BOM").
 *   - A NUL byte anywhere is an error.
 *   - Missing: an empty field (quoted or not) and the field NA (quoted or
 *     not).  R treats "" in a character column as an empty string, not NA;
 *     here it is missing in every column.
 *   - Type: a column is numeric when every non-missing field, with spaces
 *     and tabs around it removed, parses completely as a C-locale strtod
 *     number.  As in R's type.convert this accepts decimal and hexadecimal
 *     numbers, "Inf", "-Inf", "Infinity" and "NaN" in any case.  NaN is kept
 *     as a value (a model frame drops it like NA).  A numeric column whose
 *     fields are all decimal integers within R's integer range is flagged
 *     integer (R reads it as integer; this only changes how factor levels
 *     made from it are printed).  Every other column is a string column.
 *     Quoting does not affect the type: "308" is the number 308, as in R.
 * Row order is kept.
 */
#ifndef FE_CSV_H
#define FE_CSV_H

#include <stddef.h>

#include "ir/arena.h"
#include "ir/err.h"

typedef enum fe_coltype { FE_COL_NUMERIC, FE_COL_STRING } fe_coltype;

typedef struct fe_column {
    const char *name;
    fe_coltype type;
    int integer;          /* numeric and every value an integer (see above) */
    double *num;          /* numeric: nrow values (NaN where missing) */
    const char **str;     /* string: nrow values (NULL where missing) */
    unsigned char *na;    /* nrow flags: 1 where the field was missing */
    size_t nmissing;      /* fields that were missing */
} fe_column;

typedef struct fe_table {
    ir_arena arena;       /* owns everything below */
    size_t nrow, ncol;
    fe_column *cols;
    size_t *line;         /* nrow: the line (1-based) each data row starts on */
} fe_table;

/* Parses len bytes of CSV text.  On success *out is a new table (free with
 * fe_table_free).  On failure *out is NULL and err says why, e.g.
 * "line 7: 3 fields, header has 4" or "line 3, column 9: unterminated
 * quote"; the status is SJ_ERR_INVALID_ARGUMENT for malformed input and
 * SJ_ERR_OUT_OF_MEMORY when an allocation fails.  `source` names the input
 * in messages ("data.csv:7: ..."); NULL means no prefix. */
sj_status fe_csv_parse(const char *buf, size_t len, const char *source, fe_table **out,
                       ir_err *err);
/* Reads the file at path and parses it; messages start with the path. */
sj_status fe_csv_read_file(const char *path, fe_table **out, ir_err *err);
void fe_table_free(fe_table *t);

/* Index of the column called name, or -1. */
long fe_table_find(const fe_table *t, const char *name);
/* Writes "a, b, c" (the column names) into buf, truncated with "..." to fit. */
void fe_table_names(const fe_table *t, char *buf, size_t size);

#endif
