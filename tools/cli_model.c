/* From a CSV file and a formula to a fitted model and its summary.
 *
 *   CSV (fe_csv_read_file) -> design (fe_design_build: X, y, offset, the
 *   random-effect blocks, as model.matrix and lme4's lFormula make them)
 *   -> sj_lmm_* or sj_glm_* -> summary text or JSON on stdout.
 *
 * What R does and we do too:
 *   - Rows with a missing value in a variable the model uses are dropped
 *     (na.omit); for glm that includes the --weights and --offset columns,
 *     as model.frame includes weights and offset.  A note on stderr counts
 *     them.
 *   - lmm: each (x | g) term is one correlated block (lme4's default);
 *     (x || g) was split by the formula front end into (1 | g) + (0 + x | g),
 *     independent blocks.  An offset is subtracted from the response (for a
 *     Gaussian model that is the same fit).
 *   - glm: cbind(s, f) responses become proportions s / (s + f) with prior
 *     weights (s + f) times the --weights column (binomial()$initialize;
 *     0 where s + f = 0); --offset adds to the sum of offset() terms. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "frontend/csv.h"
#include "frontend/design.h"
#include "ir/alloc.h"
#include "statjit.h"

static const char *cmd_name(const cli_options *opt)
{
    return opt->cmd == CLI_CMD_GLM ? "glm" : "lmm";
}

/* Prints "statjit CMD: message" on stderr; returns CLI_FAIL. */
static int fail(const cli_options *opt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const cli_options *opt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "statjit %s: ", cmd_name(opt));
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_FAIL;
}

/* The data set's name as R's summary prints it: the file name without its
 * directory and a .csv extension ("sleepstudy"). */
static void data_name(const char *path, char *buf, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(buf, size, "%s", base);
    size_t len = strlen(buf);
    if (len > 4 && (strcmp(buf + len - 4, ".csv") == 0 || strcmp(buf + len - 4, ".CSV") == 0))
        buf[len - 4] = '\0';
}

/* A numeric column named by an option (--weights, --offset). */
static int option_column(const cli_options *opt, const fe_table *t, const char *option,
                         const char *name, long *index)
{
    *index = fe_table_find(t, name);
    if (*index < 0) {
        char names[400];
        fe_table_names(t, names, sizeof names);
        fprintf(stderr, "statjit %s: %s: unknown column '%s' (columns: %s)\n", cmd_name(opt),
                option, name, names);
        return CLI_FAIL;
    }
    if (t->cols[*index].type != FE_COL_NUMERIC) {
        fprintf(stderr, "statjit %s: %s: column '%s' is not numeric\n", cmd_name(opt), option,
                name);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* A copy of t holding only the rows where keep[i] is set; the strings and
 * names are shared with t (which must outlive the copy). */
static fe_table *filter_rows(const fe_table *t, const unsigned char *keep)
{
    fe_table *f = ir_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    ir_arena_init(&f->arena);
    size_t n = 0;
    for (size_t i = 0; i < t->nrow; i++)
        n += keep[i] != 0;
    f->nrow = n;
    f->ncol = t->ncol;
    f->cols = ir_arena_alloc(&f->arena, (t->ncol ? t->ncol : 1) * sizeof *f->cols);
    f->line = ir_arena_alloc(&f->arena, (n ? n : 1) * sizeof *f->line);
    if (!f->cols || !f->line)
        goto oom;
    for (size_t j = 0; j < t->ncol; j++) {
        const fe_column *c = &t->cols[j];
        fe_column *o = &f->cols[j];
        *o = *c;
        o->na = ir_arena_alloc(&f->arena, n ? n : 1);
        if (c->type == FE_COL_NUMERIC)
            o->num = ir_arena_alloc(&f->arena, (n ? n : 1) * sizeof *o->num);
        else
            o->str = ir_arena_alloc(&f->arena, (n ? n : 1) * sizeof *o->str);
        if (!o->na || (c->type == FE_COL_NUMERIC ? !o->num : !o->str))
            goto oom;
        o->nmissing = 0;
        for (size_t i = 0, k = 0; i < t->nrow; i++) {
            if (!keep[i])
                continue;
            o->na[k] = c->na[i];
            o->nmissing += c->na[i] != 0;
            if (c->type == FE_COL_NUMERIC)
                o->num[k] = c->num[i];
            else
                o->str[k] = c->str[i];
            k++;
        }
    }
    for (size_t i = 0, k = 0; i < t->nrow; i++)
        if (keep[i])
            f->line[k++] = t->line[i];
    return f;
oom:
    fe_table_free(f);
    return NULL;
}

static void note_dropped(size_t ndropped)
{
    if (ndropped)
        fprintf(stderr, "note: %zu row%s with missing values dropped\n", ndropped,
                ndropped == 1 ? "" : "s");
}

/* Writes a summary string to stdout (with a final newline) and frees it. */
static int print_summary(const cli_options *opt, sj_ctx *ctx, char *s)
{
    if (!s) {
        fprintf(stderr, "statjit %s: cannot make the summary: %s\n", cmd_name(opt),
                sj_ctx_last_error(ctx));
        return CLI_FAIL;
    }
    size_t len = strlen(s);
    fputs(s, stdout);
    if (len == 0 || s[len - 1] != '\n')
        fputc('\n', stdout);
    sj_string_free(s);
    if (fflush(stdout) != 0) {
        perror("statjit: writing the summary");
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* ---- lmm ----------------------------------------------------------------- */

static int run_lmm(const cli_options *opt, sj_ctx *ctx, const fe_design *d)
{
    if (d->nresp == 0)
        return fail(opt, "the formula has no response: write 'y ~ ...'");
    if (d->nresp != 1)
        return fail(opt, "a two-column response cbind(...) is for glm --family binomial");
    if (d->nre == 0)
        return fail(opt, "the formula has no random-effect term such as (1 | g) or (x | g); "
                         "'statjit glm' fits models without");
    double *y = ir_malloc((d->n ? d->n : 1) * sizeof *y);
    if (!y)
        return fail(opt, "out of memory");
    for (size_t i = 0; i < d->n; i++)
        y[i] = d->y[i] - (d->has_offset ? d->offset[i] : 0.0);

    int status = CLI_FAIL;
    sj_lmm *m = NULL;
    if (sj_lmm_create(ctx, d->n, (int)d->p, d->X, d->colnames, y, &m) != SJ_OK)
        goto fit_error;
    for (size_t k = 0; k < d->nre; k++) {
        const fe_reterm *re = &d->re[k];
        /* Group names made unique as lme4 prints them: the second term of
         * the same factor is "Subject.1" (R's make.unique), e.g. for
         * (Days || Subject). */
        char group[512];
        size_t dup = 0;
        for (size_t j = 0; j < k; j++)
            dup += strcmp(d->re[j].group_name, re->group_name) == 0;
        if (dup)
            snprintf(group, sizeof group, "%s.%zu", re->group_name, dup);
        else
            snprintf(group, sizeof group, "%s", re->group_name);
        if (sj_lmm_add_term(m, group, re->group, (int)re->nlevel, re->levels, (int)re->ncol,
                            re->Z, re->colnames, re->ncol > 1) != SJ_OK)
            goto fit_error;
    }
    cli_progress *progress = cli_progress_start(opt->ml ? "fitting lmm (ML)" : "fitting lmm (REML)");
    sj_status st = sj_lmm_fit(m, !opt->ml);
    cli_progress_stop(progress);
    if (st != SJ_OK)
        goto fit_error;

    /* The text summary says both; with --json, stderr does (as lmer's
     * messages would). */
    int converged = 0, iterations = 0, singular = 0;
    if (opt->json && sj_lmm_convergence(m, &converged, &iterations, &singular) == SJ_OK) {
        if (!converged)
            fprintf(stderr, "warning: the fit did not converge (%d iterations)\n", iterations);
        if (singular)
            fprintf(stderr, "boundary (singular) fit: a variance is zero or a correlation "
                            "is +-1\n");
    }
    char name[256];
    data_name(opt->data, name, sizeof name);
    status = print_summary(opt, ctx, opt->json ? sj_lmm_summary_json(m)
                                               : sj_lmm_summary_text(m, opt->formula, name));
    sj_lmm_free(m);
    ir_free(y);
    return status;
fit_error:
    fprintf(stderr, "statjit lmm: %s\n", sj_ctx_last_error(ctx));
    sj_lmm_free(m);
    ir_free(y);
    return CLI_FAIL;
}

/* ---- glm ----------------------------------------------------------------- */

static int run_glm(const cli_options *opt, sj_ctx *ctx, const fe_design *d, const double *wcol,
                   const double *ocol)
{
    const char *family = opt->family ? opt->family : "gaussian";
    if (d->nresp == 0)
        return fail(opt, "the formula has no response: write 'y ~ ...'");
    if (d->nre != 0)
        return fail(opt, "(%s) is a random-effect term; 'statjit lmm' fits mixed models",
                    d->re[0].label);
    if (d->nresp == 2 && !cli_same_name(family, "binomial"))
        return fail(opt, "a two-column response cbind(successes, failures) needs --family "
                         "binomial (the family is %s)", family);

    size_t n = d->n, nn = n ? n : 1;
    double *y = ir_malloc(nn * sizeof *y);
    double *w = ir_malloc(nn * sizeof *w);
    double *off = ir_malloc(nn * sizeof *off);
    if (!y || !w || !off) {
        ir_free(y), ir_free(w), ir_free(off);
        return fail(opt, "out of memory");
    }
    int have_w = wcol != NULL || d->nresp == 2;
    int have_off = ocol != NULL || d->has_offset;
    for (size_t i = 0; i < n; i++) {
        size_t row = d->rows[i];
        double prior = wcol ? wcol[row] : 1.0;
        if (d->nresp == 2) {
            double s = d->y[2 * i], f = d->y[2 * i + 1], trials = s + f;
            y[i] = trials == 0 ? 0.0 : s / trials;
            w[i] = prior * trials;
        } else {
            y[i] = d->y[i];
            w[i] = prior;
        }
        off[i] = (d->has_offset ? d->offset[i] : 0.0) + (ocol ? ocol[row] : 0.0);
    }

    int status = CLI_FAIL;
    sj_glm *m = NULL;
    if (sj_glm_create(ctx, family, opt->link, n, (int)d->p, d->X, d->colnames, y,
                      have_w ? w : NULL, have_off ? off : NULL, &m) != SJ_OK)
        goto fit_error;
    cli_progress *progress = cli_progress_start("fitting glm");
    sj_status st = sj_glm_fit(m, 25); /* R's glm.control(maxit = 25) */
    cli_progress_stop(progress);
    if (st != SJ_OK)
        goto fit_error;
    /* The text summary ends with the fit's warnings; with --json, stderr
     * has them too (as R's warnings), and the object's "message". */
    const char *msg = sj_glm_message(m);
    if (opt->json && msg && msg[0])
        fprintf(stderr, "warning: %s\n", msg);
    char name[256];
    data_name(opt->data, name, sizeof name);
    status = print_summary(opt, ctx, opt->json ? sj_glm_summary_json(m)
                                               : sj_glm_summary_text(m, opt->formula, name));
    sj_glm_free(m);
    ir_free(y), ir_free(w), ir_free(off);
    return status;
fit_error:
    fprintf(stderr, "statjit glm: %s\n", sj_ctx_last_error(ctx));
    sj_glm_free(m);
    ir_free(y), ir_free(w), ir_free(off);
    return CLI_FAIL;
}

/* ---- driver -------------------------------------------------------------- */

int cli_run_model(const cli_options *opt)
{
    sj_ctx *ctx = NULL;
    if (sj_ctx_create(&ctx) != SJ_OK) {
        fprintf(stderr, "statjit: cannot create a context (out of memory)\n");
        return CLI_FAIL;
    }
    int status = CLI_FAIL;
    fe_table *table = NULL, *kept = NULL;
    fe_design *d = NULL;
    unsigned char *keep = NULL;
    ir_err err = {0};

    if (fe_csv_read_file(opt->data, &table, &err) != SJ_OK) {
        fprintf(stderr, "statjit %s: %s\n", cmd_name(opt), err.msg);
        goto done;
    }

    /* --weights / --offset: rows where they are missing are dropped before
     * the design is built, as model.frame drops them. */
    long wj = -1, oj = -1;
    size_t nextra = 0;
    const fe_table *data = table;
    if (opt->cmd == CLI_CMD_GLM && (opt->weights || opt->offset)) {
        if (opt->weights && option_column(opt, table, "--weights", opt->weights, &wj) != CLI_OK)
            goto done;
        if (opt->offset && option_column(opt, table, "--offset", opt->offset, &oj) != CLI_OK)
            goto done;
        keep = ir_malloc(table->nrow ? table->nrow : 1);
        if (!keep)
            goto oom;
        for (size_t i = 0; i < table->nrow; i++) {
            int miss = (wj >= 0 && (table->cols[wj].na[i] || isnan(table->cols[wj].num[i]))) ||
                       (oj >= 0 && (table->cols[oj].na[i] || isnan(table->cols[oj].num[i])));
            keep[i] = !miss;
            nextra += (size_t)miss;
        }
        if (nextra) {
            if (!(kept = filter_rows(table, keep)))
                goto oom;
            data = kept;
        }
    }

    sj_status st = fe_design_build(opt->formula, data, &d, &err);
    if (st != SJ_OK) {
        fprintf(stderr, "statjit %s: %s\n", cmd_name(opt), err.msg);
        goto done;
    }
    if (d->n == 0) {
        fprintf(stderr, "statjit %s: no rows left after dropping %zu with missing values\n",
                cmd_name(opt), d->ndropped + nextra);
        goto done;
    }
    note_dropped(d->ndropped + nextra);

    if (opt->cmd == CLI_CMD_GLM)
        status = run_glm(opt, ctx, d, wj >= 0 ? data->cols[wj].num : NULL,
                         oj >= 0 ? data->cols[oj].num : NULL);
    else
        status = run_lmm(opt, ctx, d);
    goto done;
oom:
    fprintf(stderr, "statjit %s: out of memory\n", cmd_name(opt));
done:
    fe_design_free(d);
    fe_table_free(kept);
    fe_table_free(table);
    ir_free(keep);
    sj_ctx_free(ctx);
    return status;
}

char *cli_find_data(const char *name)
{
    char exe[4096], *path = NULL;
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *candidates[3];
    int ncand = 0;
    char beside[4096 + 64];
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(beside, sizeof beside, "%s/../share/statjit", exe);
            candidates[ncand++] = beside;
        }
    }
#ifdef SJ_CLI_SOURCE_DATA_DIR
    candidates[ncand++] = SJ_CLI_SOURCE_DATA_DIR;
#endif
    for (int i = 0; i < ncand && !path; i++) {
        size_t size = strlen(candidates[i]) + strlen(name) + 2;
        char *p = malloc(size);
        if (!p)
            return NULL;
        snprintf(p, size, "%s/%s", candidates[i], name);
        FILE *f = fopen(p, "rb");
        if (f) {
            fclose(f);
            path = p;
        } else {
            free(p);
        }
    }
    return path;
}
