/* The CSV reader (dialect and typing rules in csv.h).  One pass splits the
 * bytes into records of fields, kept row-major as strings; a second pass per
 * column decides its type and converts. */
#define _GNU_SOURCE /* strtod_l, newlocale: numbers in the C locale whatever the process's */
#include "frontend/csv.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/alloc.h"

typedef struct lexer {
    const char *s;
    size_t len, i;
    size_t line, linestart; /* current line (1-based) and its first byte */
    const char *source;
    ir_arena *arena;
    ir_err *err;
} lexer;

/* Record cells, row-major, grown by doubling (ir_realloc, freed at the end). */
typedef struct cells {
    const char **v;
    size_t n, cap;
    size_t *line; /* start line per record */
    size_t nrec, reccap;
} cells;

static sj_status failat(lexer *lx, size_t pos, const char *what)
{
    size_t line = lx->line, start = lx->linestart;
    return ir_fail(lx->err, SJ_ERR_INVALID_ARGUMENT, "%s%sline %zu, column %zu: %s",
                   lx->source ? lx->source : "", lx->source ? ": " : "", line,
                   pos - start + 1, what);
}

static sj_status oom(lexer *lx)
{
    return ir_fail(lx->err, SJ_ERR_OUT_OF_MEMORY, "%s%sout of memory reading CSV",
                   lx->source ? lx->source : "", lx->source ? ": " : "");
}

static int is_eol(char c) { return c == '\n' || c == '\r'; }
static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Consumes one line end at lx->i ("\r\n", "\n" or "\r"). */
static void eat_eol(lexer *lx)
{
    if (lx->s[lx->i] == '\r' && lx->i + 1 < lx->len && lx->s[lx->i + 1] == '\n')
        lx->i++;
    lx->i++;
    lx->line++;
    lx->linestart = lx->i;
}

static sj_status push_cell(lexer *lx, cells *c, const char *text)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        const char **v = ir_realloc_array(c->v, cap, sizeof *v);
        if (!v)
            return oom(lx);
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = text;
    return SJ_OK;
}

/* Reads one field starting at lx->i; stops at the ',' / line end / end. */
static sj_status read_field(lexer *lx, cells *c)
{
    const char *s = lx->s;
    size_t j = lx->i;
    while (j < lx->len && is_blank(s[j]))
        j++;
    if (j < lx->len && s[j] == '"') {
        size_t open = j, openline = lx->line, openstart = lx->linestart;
        j++;
        /* First pass over the quoted text to size it. */
        size_t n = 0, k = j;
        for (;;) {
            if (k >= lx->len) {
                lx->line = openline;
                lx->linestart = openstart;
                return failat(lx, open, "unterminated quote");
            }
            if (s[k] == '\0')
                return failat(lx, k, "NUL byte in a field");
            if (s[k] == '"') {
                if (k + 1 < lx->len && s[k + 1] == '"') {
                    k += 2;
                    n++;
                    continue;
                }
                break;
            }
            if (s[k] == '\r' || s[k] == '\n') {
                /* A line end inside quotes is data; keep line numbers right. */
                if (s[k] == '\r' && k + 1 < lx->len && s[k + 1] == '\n') {
                    n++;
                    k++;
                }
                n++;
                k++;
                lx->line++;
                lx->linestart = k;
                continue;
            }
            n++;
            k++;
        }
        char *text = ir_arena_alloc(lx->arena, n + 1);
        if (!text)
            return oom(lx);
        size_t m = 0;
        for (size_t q = j; q < k; q++) {
            text[m++] = s[q];
            if (s[q] == '"')
                q++; /* the second of a doubled quote */
        }
        text[m] = '\0';
        k++; /* closing quote */
        while (k < lx->len && is_blank(s[k]))
            k++;
        if (k < lx->len && s[k] != ',' && !is_eol(s[k]))
            return failat(lx, k, s[k] == '\0' ? "NUL byte in a field"
                                              : "unexpected character after a closing quote");
        lx->i = k;
        return push_cell(lx, c, text);
    }
    j = lx->i;
    while (j < lx->len && s[j] != ',' && !is_eol(s[j])) {
        if (s[j] == '"')
            return failat(lx, j, "quote inside an unquoted field");
        if (s[j] == '\0')
            return failat(lx, j, "NUL byte in a field");
        j++;
    }
    char *text = ir_arena_alloc(lx->arena, j - lx->i + 1);
    if (!text)
        return oom(lx);
    memcpy(text, s + lx->i, j - lx->i);
    lx->i = j;
    return push_cell(lx, c, text);
}

/* Reads one record; *nfield gets its field count (0 at end of input). */
static sj_status read_record(lexer *lx, cells *c, size_t *nfield)
{
    *nfield = 0;
    while (lx->i < lx->len && is_eol(lx->s[lx->i])) /* blank lines */
        eat_eol(lx);
    if (lx->i >= lx->len)
        return SJ_OK;
    for (;;) {
        sj_status st = read_field(lx, c);
        if (st != SJ_OK)
            return st;
        (*nfield)++;
        if (lx->i >= lx->len)
            return SJ_OK;
        if (lx->s[lx->i] == ',') {
            lx->i++;
            continue;
        }
        eat_eol(lx);
        return SJ_OK;
    }
}

/* Field text with spaces and tabs trimmed: [*b, *e). */
static void trim(const char *t, const char **b, const char **e)
{
    const char *p = t, *q = t + strlen(t);
    while (p < q && is_blank(*p))
        p++;
    while (q > p && is_blank(q[-1]))
        q--;
    *b = p;
    *e = q;
}

static int is_missing(const char *t)
{
    const char *b, *e;
    trim(t, &b, &e);
    return b == e || (e - b == 2 && b[0] == 'N' && b[1] == 'A');
}

/* Parses a trimmed field as a number in the C locale; 1 if it all parses. */
static int parse_number(const char *t, locale_t cloc, double *out, int *integer)
{
    const char *b, *e;
    trim(t, &b, &e);
    char tmp[128];
    size_t n = (size_t)(e - b);
    char *heap = NULL, *buf = tmp;
    if (n >= sizeof tmp) {
        heap = ir_malloc(n + 1);
        if (!heap)
            return -1;
        buf = heap;
    }
    memcpy(buf, b, n);
    buf[n] = '\0';
    char *end;
    double v = strtod_l(buf, &end, cloc);
    int ok = n > 0 && end == buf + n;
    if (ok) {
        *out = v;
        size_t k = (buf[0] == '+' || buf[0] == '-') ? 1 : 0;
        int digits = k < n;
        for (size_t q = k; q < n; q++)
            digits &= buf[q] >= '0' && buf[q] <= '9';
        *integer = digits && fabs(v) <= INT_MAX;
    }
    ir_free(heap);
    return ok;
}

sj_status fe_csv_parse(const char *buf, size_t len, const char *source, fe_table **out,
                       ir_err *err)
{
    *out = NULL;
    fe_table *t = ir_calloc(1, sizeof *t);
    lexer lx = {.s = buf, .len = len, .line = 1, .source = source, .err = err};
    if (!t)
        return oom(&lx);
    ir_arena_init(&t->arena);
    lx.arena = &t->arena;
    cells c = {0};
    sj_status st = SJ_OK;
    locale_t cloc = (locale_t)0;
    const char *pre = source ? source : "", *sep = source ? ": " : "";

    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        lx.i = lx.linestart = 3;
    size_t ncol;
    if ((st = read_record(&lx, &c, &ncol)) != SJ_OK)
        goto done;
    if (ncol == 0) {
        st = ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "%s%sempty file: no header row", pre, sep);
        goto done;
    }
    for (size_t j = 0; j < ncol; j++) {
        const char *b, *e;
        trim(c.v[j], &b, &e);
        if (b == e) {
            st = ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "%s%sline 1: column %zu has an empty name",
                         pre, sep, j + 1);
            goto done;
        }
        for (size_t k = 0; k < j; k++)
            if (strcmp(c.v[k], c.v[j]) == 0) {
                st = ir_fail(err, SJ_ERR_INVALID_ARGUMENT,
                             "%s%sline 1: duplicate column name '%s' (columns %zu and %zu)", pre,
                             sep, c.v[j], k + 1, j + 1);
                goto done;
            }
    }
    for (;;) {
        size_t line = lx.line, nf;
        /* The record's line is where its first field starts, after blank lines. */
        size_t save = c.n;
        while (lx.i < lx.len && is_eol(lx.s[lx.i]))
            eat_eol(&lx);
        line = lx.line;
        if ((st = read_record(&lx, &c, &nf)) != SJ_OK)
            goto done;
        if (nf == 0)
            break;
        if (nf != ncol) {
            st = ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "%s%sline %zu: %zu field%s, header has %zu",
                         pre, sep, line, nf, nf == 1 ? "" : "s", ncol);
            goto done;
        }
        (void)save;
        if (c.nrec == c.reccap) {
            size_t cap = c.reccap ? 2 * c.reccap : 64;
            size_t *l = ir_realloc_array(c.line, cap, sizeof *l);
            if (!l) {
                st = oom(&lx);
                goto done;
            }
            c.line = l;
            c.reccap = cap;
        }
        c.line[c.nrec++] = line;
    }

    size_t nrow = c.nrec;
    t->nrow = nrow;
    t->ncol = ncol;
    t->cols = ir_arena_alloc(&t->arena, ncol * sizeof *t->cols);
    t->line = ir_arena_dup(&t->arena, c.line, nrow * sizeof *t->line);
    if (!t->cols || (nrow && !t->line)) {
        st = oom(&lx);
        goto done;
    }
    cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!cloc) {
        st = oom(&lx);
        goto done;
    }
    for (size_t j = 0; j < ncol; j++) {
        fe_column *col = &t->cols[j];
        col->name = c.v[j];
        col->na = ir_arena_alloc(&t->arena, nrow ? nrow : 1);
        col->num = ir_arena_alloc(&t->arena, (nrow ? nrow : 1) * sizeof *col->num);
        if (!col->na || !col->num) {
            st = oom(&lx);
            goto done;
        }
        int numeric = 1, integer = 1;
        for (size_t i = 0; i < nrow; i++) {
            const char *f = c.v[(i + 1) * ncol + j];
            if (is_missing(f)) {
                col->na[i] = 1;
                col->num[i] = NAN;
                col->nmissing++;
                continue;
            }
            if (!numeric)
                continue;
            int isint = 0;
            int r = parse_number(f, cloc, &col->num[i], &isint);
            if (r < 0) {
                st = oom(&lx);
                goto done;
            }
            numeric = r;
            integer &= isint;
        }
        if (numeric) {
            col->type = FE_COL_NUMERIC;
            col->integer = integer;
            continue;
        }
        col->type = FE_COL_STRING;
        col->num = NULL;
        col->str = ir_arena_alloc(&t->arena, (nrow ? nrow : 1) * sizeof *col->str);
        if (!col->str) {
            st = oom(&lx);
            goto done;
        }
        for (size_t i = 0; i < nrow; i++)
            col->str[i] = col->na[i] ? NULL : c.v[(i + 1) * ncol + j];
    }

done:
    if (cloc)
        freelocale(cloc);
    ir_free(c.v);
    ir_free(c.line);
    if (st != SJ_OK) {
        fe_table_free(t);
        return st;
    }
    *out = t;
    return SJ_OK;
}

sj_status fe_csv_read_file(const char *path, fe_table **out, ir_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    sj_status st = SJ_OK;
    for (;;) {
        if (cap - len < 65536) {
            size_t ncap = cap ? 2 * cap : 65536;
            char *nb = ir_realloc(buf, ncap);
            if (!nb) {
                st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "%s: out of memory reading the file", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                st = ir_fail(err, SJ_ERR_INVALID_ARGUMENT, "%s: read error: %s", path,
                             strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st == SJ_OK)
        st = fe_csv_parse(buf, len, path, out, err);
    ir_free(buf);
    return st;
}

void fe_table_free(fe_table *t)
{
    if (!t)
        return;
    ir_arena_free(&t->arena);
    ir_free(t);
}

long fe_table_find(const fe_table *t, const char *name)
{
    for (size_t j = 0; j < t->ncol; j++)
        if (strcmp(t->cols[j].name, name) == 0)
            return (long)j;
    return -1;
}

void fe_table_names(const fe_table *t, char *buf, size_t size)
{
    if (!size)
        return;
    buf[0] = '\0';
    size_t used = 0;
    for (size_t j = 0; j < t->ncol; j++) {
        const char *name = t->cols[j].name;
        size_t need = strlen(name) + (j ? 2 : 0);
        if (used + need + 4 >= size) { /* room for ", ..." */
            snprintf(buf + used, size - used, "%s...", j ? ", " : "");
            return;
        }
        used += (size_t)snprintf(buf + used, size - used, "%s%s", j ? ", " : "", name);
    }
}
