/* Text (R's summary.glm layout) and JSON summaries of a fitted sj_glm. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/glm_model.h"
#include "frontend/handles.h"

static const char *stars(double p)
{
    return p < 0.001 ? "***" : p < 0.01 ? "**" : p < 0.05 ? "*" : p < 0.1 ? "." : " ";
}

/* Drops trailing zeros of the fraction (of the mantissa when sci). */
static void trim(char *b, int sci)
{
    char *e = sci ? strchr(b, 'e') : b + strlen(b), *d = strchr(b, '.');
    if (!d || (sci && !e))
        return;
    char *q = e - 1;
    while (q > d && *q == '0')
        q--;
    if (q == d)
        q--;
    memmove(q + 1, e, strlen(e) + 1);
}

/* format.pval(p, digits = 3, eps = DBL_EPSILON) as summary.glm prints it:
 * "< 2e-16" below ε, fixed notation from 1e-3 up, else scientific. */
static void pval(char *buf, size_t size, double p)
{
    if (isnan(p))
        snprintf(buf, size, "NA");
    else if (p < 2.220446e-16)
        snprintf(buf, size, "< 2e-16");
    else {
        /* 3 significant digits; fixed when not wider than scientific */
        char fx[64], sc[64];
        int ex = (int)floor(log10(p)), dec = 2 - ex;
        snprintf(fx, sizeof fx, "%.*f", dec > 0 ? dec : 0, p);
        snprintf(sc, sizeof sc, "%.2e", p);
        trim(fx, 0);
        trim(sc, 1);
        snprintf(buf, size, "%s", ex >= -3 || strlen(fx) <= strlen(sc) ? fx : sc);
    }
}

/* Decimals needed to show x with at most `digits` significant digits,
 * trailing zeros dropped (R's formatReal). */
static int decimals_for(double x, int digits)
{
    if (x == 0 || !isfinite(x))
        return 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%.*e", digits - 1, fabs(x));
    int sig = digits;
    for (int k = digits; k > 1 && buf[k] == '0'; k--) /* buf: d.ddd e±xx */
        sig--;
    int e = atoi(strchr(buf, 'e') + 1);
    int d = sig - 1 - e;
    return d > 0 ? d : 0;
}

/* printCoefmat's Estimate and Std. Error columns: rounded to
 * max(1, digits − digmin) decimals, then formatted together with
 * digits = 4: the common number of decimals. */
static int coef_decimals(const sj_glm *m)
{
    const int digits = 4;
    double lo = INFINITY;
    for (int j = 0; j < m->p; j++) {
        double se = sqrt(m->dispersion * m->xtwx_inv[(size_t)j * (size_t)m->p + (size_t)j]);
        double v[2] = {fabs(m->beta[j]), se};
        for (int k = 0; k < 2; k++)
            if (v[k] != 0 && isfinite(v[k]))
                lo = fmin(lo, v[k]);
    }
    int round_dec = isfinite(lo) ? digits - (1 + (int)floor(log10(lo))) : 1;
    if (round_dec < 1)
        round_dec = 1;
    int dec = 0;
    for (int j = 0; j < m->p; j++) {
        double se = sqrt(m->dispersion * m->xtwx_inv[(size_t)j * (size_t)m->p + (size_t)j]);
        double v[2] = {m->beta[j], se};
        for (int k = 0; k < 2; k++) {
            double sc = pow(10, round_dec), r = round(v[k] * sc) / sc;
            int d = decimals_for(r, digits);
            if (d > dec)
                dec = d;
        }
    }
    return dec > round_dec ? round_dec : dec;
}

static void fixed_or_na(char *buf, size_t size, int dec, double v)
{
    if (isnan(v))
        snprintf(buf, size, "NA");
    else
        snprintf(buf, size, "%.*f", dec, v);
}

char *sj_glm_summary_text(const sj_glm *m, const char *formula, const char *data)
{
    if (fe_glm_enter(m, "sj_glm_summary_text") != SJ_OK)
        return NULL;
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f) {
        fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_glm_summary_text: out of memory");
        return NULL;
    }
    const char *fam = (sj_glm_family_name)(m->fam), *link = (sj_glm_link_name)(m->fam);
    int est_disp = sj_glm_family_has_dispersion(m->fam) == 1;
    fprintf(f, "\nCall:\nglm(formula = %s, family = %s(link = \"%s\")%s%s)\n\n",
            formula ? formula : "y ~ X", fam, link, data ? ", data = " : "", data ? data : "");
    int wname = 0;
    for (int j = 0; j < m->p; j++)
        if ((int)strlen(m->names[j]) > wname)
            wname = (int)strlen(m->names[j]);
    int dec = coef_decimals(m);
    int nrow = m->p;
    char(*cell)[48] = malloc((size_t)nrow * 4 * sizeof *cell); /* cell[c * nrow + j] */
    if (!cell) {
        fclose(f);
        free(s);
        fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_glm_summary_text: out of memory");
        return NULL;
    }
#define CELL(c, j) cell[(size_t)(c) * (size_t)nrow + (size_t)(j)]
    int width[4] = {8, 10, 7, 8}; /* the headers' widths */
    /* p-values in fixed notation share their decimals (format.pval formats
     * the fixed ones as one vector) */
    int pdec = 0, wstar = 0;
    for (int j = 0; j < nrow; j++) {
        double p;
        sj_glm_coef(m, j, NULL, NULL, NULL, NULL, &p);
        pval(CELL(3, j), sizeof CELL(3, j), p);
        if (!strchr(CELL(3, j), 'e') && !strchr(CELL(3, j), '<') && decimals_for(p, 3) > pdec)
            pdec = decimals_for(p, 3);
        if ((int)strlen(stars(p)) > wstar && strcmp(stars(p), " "))
            wstar = (int)strlen(stars(p));
    }
    for (int j = 0; j < nrow; j++) {
        double e, se, z, p;
        sj_glm_coef(m, j, NULL, &e, &se, &z, &p);
        /* NaN (an aliased coefficient, or the statistic of an exact fit)
         * prints as R's NA */
        fixed_or_na(CELL(0, j), sizeof CELL(0, j), dec, e);
        fixed_or_na(CELL(1, j), sizeof CELL(1, j), dec, se);
        fixed_or_na(CELL(2, j), sizeof CELL(2, j), 3, z);
        pval(CELL(3, j), sizeof CELL(3, j), p);
        if (!strchr(CELL(3, j), 'e') && !strchr(CELL(3, j), '<') && strcmp(CELL(3, j), "NA"))
            snprintf(CELL(3, j), sizeof CELL(3, j), "%.*f", pdec, p);
        for (int c = 0; c < 4; c++)
            if ((int)strlen(CELL(c, j)) > width[c])
                width[c] = (int)strlen(CELL(c, j));
    }
    if (m->rank < m->p)
        fprintf(f, "Coefficients: (%d not defined because of singularities)\n", m->p - m->rank);
    else
        fprintf(f, "Coefficients:\n");
    fprintf(f, "%-*s %*s %*s %*s %*s%*s\n", wname, "", width[0], "Estimate",
            width[1], "Std. Error", width[2], est_disp ? "t value" : "z value", width[3],
            est_disp ? "Pr(>|t|)" : "Pr(>|z|)", wstar ? wstar + 1 : 0, "");
    for (int j = 0; j < nrow; j++) {
        double p;
        sj_glm_coef(m, j, NULL, NULL, NULL, NULL, &p);
        fprintf(f, "%-*s %*s %*s %*s %*s", wname, m->names[j], width[0], CELL(0, j), width[1],
                CELL(1, j), width[2], CELL(2, j), width[3], CELL(3, j));
        if (wstar)
            fprintf(f, " %-*s", wstar, stars(p));
        fputc('\n', f);
    }
#undef CELL
    free(cell);
    fprintf(f, "---\nSignif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1\n\n");
    if (est_disp)
        fprintf(f, "(Dispersion parameter for %s family taken to be %.7g)\n\n", fam, m->dispersion);
    else
        fprintf(f, "(Dispersion parameter for %s family taken to be 1)\n\n", fam);
    /* summary.glm: the two deviances formatted together with 5 significant
     * digits, AIC with 5 */
    int dd = decimals_for(m->null_deviance, 5), dr = decimals_for(m->deviance, 5);
    dd = dd > dr ? dd : dr;
    char a[64], b[64];
    snprintf(a, sizeof a, "%.*f", dd, m->null_deviance);
    snprintf(b, sizeof b, "%.*f", dd, m->deviance);
    int wd = (int)(strlen(a) > strlen(b) ? strlen(a) : strlen(b));
    fprintf(f, "    Null deviance: %*s  on %.0f  degrees of freedom\n", wd, a, m->df_null);
    fprintf(f, "Residual deviance: %*s  on %.0f  degrees of freedom\n", wd, b, m->df_residual);
    fprintf(f, "AIC: %.*f\n\nNumber of Fisher Scoring iterations: %d\n",
            decimals_for(m->aic, 5), m->aic, m->iterations);
    if (m->message && m->message[0])
        fprintf(f, "Warning: %s\n", m->message);
    if (fclose(f) != 0 || !s) {
        free(s);
        fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_glm_summary_text: out of memory");
        return NULL;
    }
    return s;
}

static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void jnum(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.17g", v);
    else
        fputs("null", f);
}

char *sj_glm_summary_json(const sj_glm *m)
{
    if (fe_glm_enter(m, "sj_glm_summary_json") != SJ_OK)
        return NULL;
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f) {
        fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_glm_summary_json: out of memory");
        return NULL;
    }
    fputs("{\"model\": \"glm\", \"family\": ", f);
    jstr(f, (sj_glm_family_name)(m->fam));
    fputs(", \"link\": ", f);
    jstr(f, (sj_glm_link_name)(m->fam));
    fputs(", \"coefficients\": [", f);
    for (int j = 0; j < m->p; j++) {
        const char *name;
        double e, se, z, p;
        sj_glm_coef(m, j, &name, &e, &se, &z, &p);
        fputs(j ? ", {\"name\": " : "{\"name\": ", f);
        jstr(f, name);
        fprintf(f, ", \"aliased\": %s", fe_glm_aliased(m, j) ? "true" : "false");
        double v[4] = {e, se, z, p};
        const char *k[4] = {"estimate", "std_error", "statistic", "p_value"};
        for (int i = 0; i < 4; i++) {
            fprintf(f, ", \"%s\": ", k[i]);
            jnum(f, v[i]);
        }
        fputc('}', f);
    }
    fputs("]", f);
    double v[] = {m->deviance, m->null_deviance, m->df_residual, m->df_null,
                  m->aic,      m->bic,           m->dispersion,  m->loglik};
    const char *k[] = {"deviance", "null_deviance", "df_residual", "df_null",
                       "aic",      "bic",           "dispersion",  "loglik"};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        fprintf(f, ", \"%s\": ", k[i]);
        jnum(f, v[i]);
    }
    fprintf(f, ", \"n\": %zu, \"rank\": %d, \"converged\": %s, \"iterations\": %d, \"message\": ",
            m->n, m->rank, m->converged ? "true" : "false", m->iterations);
    jstr(f, m->message ? m->message : "");
    fputc('}', f);
    if (fclose(f) != 0 || !s) {
        free(s);
        fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_glm_summary_json: out of memory");
        return NULL;
    }
    return s;
}
