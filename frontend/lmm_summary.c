/* Printing a linear mixed model fit (sj_lmm): text in the layout of lme4's
 * summary() of an lmerMod (4 significant digits, as print.summary.merMod with
 * its default digits), and the JSON object of the CLI (numbers with %.17g).
 * Scaled residuals are not printed. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/handles.h"
#include "frontend/lmm.h"
#include "ir/alloc.h"

typedef struct buf {
    char *s;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) {
        b->oom = 1;
        return;
    }
    if (b->len + (size_t)need + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)need + 1)
            cap *= 2;
        char *s = ir_realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)need;
}

static char *finish(buf *b, const sj_lmm *m)
{
    if (b->oom) {
        ir_free(b->s);
        fe_ctx_failf(m->ctx, SJ_ERR_OUT_OF_MEMORY, "sj_lmm_summary: out of memory");
        return NULL;
    }
    return b->s;
}

/* A JSON string literal. */
static void put_str(buf *b, const char *s)
{
    put(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(b, "\\%c", c);
        else if (c < 0x20)
            put(b, "\\u%04x", c);
        else
            put(b, "%c", c);
    }
    put(b, "\"");
}

static void put_num(buf *b, double x)
{
    if (isfinite(x))
        put(b, "%.17g", x);
    else
        put(b, "null");
}

/* R's format(x, digits = 4) for one number, roughly: 4 significant digits,
 * fixed notation unless the number is very large or small. */
static void fmt4(char *out, size_t n, double x)
{
    if (!isfinite(x)) {
        snprintf(out, n, "%s", isnan(x) ? "NaN" : x > 0 ? "Inf" : "-Inf");
        return;
    }
    double ax = fabs(x);
    if (ax != 0 && (ax >= 1e15 || ax < 1e-4)) {
        snprintf(out, n, "%.3e", x);
        return;
    }
    int mag = ax == 0 ? 0 : (int)floor(log10(ax));
    int dec = 3 - mag;
    if (dec < 0)
        dec = 0;
    snprintf(out, n, "%.*f", dec, x);
}

static sj_status check(const sj_lmm *m)
{
    if (!m)
        return SJ_ERR_INVALID_ARGUMENT;
    if (!m->fitted)
        return fe_ctx_failf(m->ctx, SJ_ERR_INVALID_ARGUMENT,
                            "sj_lmm_summary: the model has not been fitted");
    return SJ_OK;
}

char *sj_lmm_summary_text(const sj_lmm *m, const char *formula, const char *data_name)
{
    if (check(m) != SJ_OK)
        return NULL;
    buf b = {0};
    char s1[64], s2[64], s3[64];
    put(&b, "Linear mixed model fit by %s ['lmerMod']\n", m->reml ? "REML" : "maximum likelihood");
    if (formula)
        put(&b, "Formula: %s\n", formula);
    if (data_name)
        put(&b, "   Data: %s\n", data_name);
    put(&b, "\n");
    double ll, aic, bic;
    sj_lmm_loglik(m, &ll, &aic, &bic);
    if (m->reml) {
        put(&b, "REML criterion at convergence: %.1f\n\n", m->criterion);
    } else {
        put(&b, "     AIC      BIC   logLik deviance df.resid \n");
        put(&b, "%8.1f %8.1f %8.1f %8.1f %8d \n\n", aic, bic, ll, m->criterion,
            (int)m->n - m->p - m->ntheta);
    }
    /* Random effects. */
    put(&b, "Random effects:\n");
    int gw = 8, nw = 4;
    for (int t = 0; t < m->nterm; t++) {
        if ((int)strlen(m->term[t].group) + 3 > gw)
            gw = (int)strlen(m->term[t].group) + 3;
        for (int j = 0; j < m->term[t].k; j++)
            if ((int)strlen(m->term[t].znames[j]) > nw)
                nw = (int)strlen(m->term[t].znames[j]);
    }
    int anycorr = sj_lmm_ncorr(m) > 0;
    put(&b, " %-*s %-*s %-9s %-9s%s\n", gw, "Groups", nw, "Name", "Variance", "Std.Dev.",
        anycorr ? " Corr" : "");
    for (int t = 0; t < m->nterm; t++) {
        const fe_lmm_term *tm = &m->term[t];
        /* lme4 names a repeated grouping factor "Subject.1", "Subject.2" */
        char gname[96];
        int rep = 0;
        for (int u = 0; u < t; u++)
            rep += strcmp(m->term[u].group, tm->group) == 0;
        if (rep)
            snprintf(gname, sizeof gname, "%s.%d", tm->group, rep);
        else
            snprintf(gname, sizeof gname, "%s", tm->group);
        for (int j = 0; j < tm->k; j++) {
            double v = tm->cov[j * tm->k + j];
            fmt4(s1, sizeof s1, v);
            fmt4(s2, sizeof s2, sqrt(v));
            put(&b, " %-*s %-*s %-9s %-9s", gw, j == 0 ? gname : "", nw, tm->znames[j], s1,
                s2);
            if (tm->correlated)
                for (int l = 0; l < j; l++) {
                    double d = sqrt(tm->cov[j * tm->k + j] * tm->cov[l * tm->k + l]);
                    put(&b, " %5.2f", d > 0 ? tm->cov[j * tm->k + l] / d : 0.0);
                }
            put(&b, "\n");
        }
    }
    fmt4(s1, sizeof s1, m->sigma2);
    fmt4(s2, sizeof s2, sqrt(m->sigma2));
    put(&b, " %-*s %-*s %-9s %-9s\n", gw, "Residual", nw, "", s1, s2);
    put(&b, "Number of obs: %zu, groups:  ", m->n);
    for (int t = 0; t < m->nterm; t++) {
        int dup = 0;
        for (int u = 0; u < t; u++)
            dup |= strcmp(m->term[u].group, m->term[t].group) == 0;
        if (!dup)
            put(&b, "%s%s, %d", t ? "; " : "", m->term[t].group, m->term[t].nlevels);
    }
    put(&b, "\n\nFixed effects:\n");
    int xw = 11;
    for (int j = 0; j < m->p; j++)
        if ((int)strlen(m->xnames[j]) > xw)
            xw = (int)strlen(m->xnames[j]);
    put(&b, "%-*s %10s %10s %8s\n", xw, "", "Estimate", "Std. Error", "t value");
    for (int j = 0; j < m->p; j++) {
        fmt4(s1, sizeof s1, m->beta[j]);
        fmt4(s2, sizeof s2, m->beta_se[j]);
        fmt4(s3, sizeof s3, m->beta[j] / m->beta_se[j]);
        put(&b, "%-*s %10s %10s %8s\n", xw, m->xnames[j], s1, s2, s3);
    }
    if (m->p > 1) {
        put(&b, "\nCorrelation of Fixed Effects:\n%-*s", xw, "");
        for (int j = 0; j < m->p - 1; j++) /* R abbreviates "(Intercept)" to "(Intr)" */
            put(&b, " %-6.6s", strcmp(m->xnames[j], "(Intercept)") ? m->xnames[j] : "(Intr)");
        put(&b, "\n");
        for (int i = 1; i < m->p; i++) {
            put(&b, "%-*s", xw, m->xnames[i]);
            for (int j = 0; j < i; j++)
                put(&b, " %6.3f", m->beta_cov[i * m->p + j] /
                                      sqrt(m->beta_cov[i * m->p + i] * m->beta_cov[j * m->p + j]));
            put(&b, "\n");
        }
    }
    if (m->singular)
        put(&b, "optimizer (Newton) convergence code: 0 (OK)\nboundary (singular) fit: see help('isSingular')\n");
    if (m->converged)
        put(&b, "\nConverged in %d Newton iterations.\n", m->iterations);
    else
        put(&b, "\nWarning: the fit did not converge in %d Newton iterations\n", m->iterations);
    return finish(&b, m);
}

char *sj_lmm_summary_json(const sj_lmm *m)
{
    if (check(m) != SJ_OK)
        return NULL;
    buf b = {0};
    double ll, aic, bic;
    sj_lmm_loglik(m, &ll, &aic, &bic);
    put(&b, "{\"model\": \"lmm\", \"criterion\": \"%s\", \"%s\": ", m->reml ? "REML" : "ML",
        m->reml ? "reml_criterion" : "deviance");
    put_num(&b, m->criterion);
    put(&b, ", \"loglik\": ");
    put_num(&b, ll);
    put(&b, ", \"aic\": ");
    put_num(&b, aic);
    put(&b, ", \"bic\": ");
    put_num(&b, bic);
    put(&b, ", \"n\": %zu, \"fixed_effects\": [", m->n);
    for (int j = 0; j < m->p; j++) {
        put(&b, "%s{\"name\": ", j ? ", " : "");
        put_str(&b, m->xnames[j]);
        put(&b, ", \"estimate\": ");
        put_num(&b, m->beta[j]);
        put(&b, ", \"std_error\": ");
        put_num(&b, m->beta_se[j]);
        put(&b, ", \"t_value\": ");
        put_num(&b, m->beta[j] / m->beta_se[j]);
        put(&b, "}");
    }
    put(&b, "], \"random_effects\": [");
    int nv = sj_lmm_nvarcomp(m);
    for (int i = 0; i < nv; i++) {
        const char *gname, *name;
        double v, sd;
        sj_lmm_varcomp(m, i, &gname, &name, &v, &sd);
        put(&b, "%s{\"group\": ", i ? ", " : "");
        put_str(&b, gname);
        put(&b, ", \"name\": ");
        put_str(&b, name);
        put(&b, ", \"variance\": ");
        put_num(&b, v);
        put(&b, ", \"std_dev\": ");
        put_num(&b, sd);
        put(&b, "}");
    }
    put(&b, "], \"correlations\": [");
    int nc = sj_lmm_ncorr(m);
    for (int i = 0; i < nc; i++) {
        const char *gname, *a, *bn;
        double c;
        sj_lmm_corr(m, i, &gname, &a, &bn, &c);
        put(&b, "%s{\"group\": ", i ? ", " : "");
        put_str(&b, gname);
        put(&b, ", \"names\": [");
        put_str(&b, a);
        put(&b, ", ");
        put_str(&b, bn);
        put(&b, "], \"corr\": ");
        put_num(&b, c);
        put(&b, "}");
    }
    put(&b, "], \"converged\": %s, \"iterations\": %d, \"singular\": %s}", 
        m->converged ? "true" : "false", m->iterations, m->singular ? "true" : "false");
    return finish(&b, m);
}
