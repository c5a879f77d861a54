/* Formula lexer, positioned error messages, and R's number formatting. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/formula.h"
#include "ir/alloc.h"

sj_status fe_formula_fail(ir_err *err, sj_status status, const char *src, size_t pos,
                          const char *fmt, ...)
{
    if (!err || err->status != SJ_OK)
        return err ? err->status : status;
    size_t line = 1, start = 0, len = strlen(src);
    if (pos > len)
        pos = len;
    for (size_t i = 0; i < pos; i++)
        if (src[i] == '\n') {
            line++;
            start = i + 1;
        }
    char msg[IR_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t col = pos - start + 1;
    /* The caret line, when the formula is one short line. */
    if (!strchr(src, '\n') && len <= 120)
        ir_fail(err, status, "formula:%zu:%zu: %s\n  %s\n  %*s^", line, col, msg, src,
                (int)(col - 1), "");
    else
        ir_fail(err, status, "formula:%zu:%zu: %s", line, col, msg);
    return status;
}

static int name_start(unsigned char c) { return isalpha(c) || c == '.' || c >= 0x80; }
static int name_char(unsigned char c) { return isalnum(c) || c == '.' || c == '_' || c >= 0x80; }

/* Reads a decimal number without the locale: digits, one '.', an exponent. */
static int scan_number(const char *s, size_t *len, double *value)
{
    size_t i = 0;
    int digits = 0;
    while (isdigit((unsigned char)s[i])) {
        i++;
        digits++;
    }
    if (s[i] == '.') {
        i++;
        while (isdigit((unsigned char)s[i])) {
            i++;
            digits++;
        }
    }
    if (!digits)
        return 0;
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        if (s[j] == '+' || s[j] == '-')
            j++;
        if (!isdigit((unsigned char)s[j]))
            return 0;
        while (isdigit((unsigned char)s[j]))
            j++;
        i = j;
    }
    /* Exact enough for formula constants: mantissa digits times a power of 10. */
    double m = 0;
    int scale = 0, seen_dot = 0;
    size_t k = 0;
    for (; k < i && s[k] != 'e' && s[k] != 'E'; k++) {
        if (s[k] == '.') {
            seen_dot = 1;
            continue;
        }
        m = m * 10 + (s[k] - '0');
        if (seen_dot)
            scale--;
    }
    if (k < i)
        scale += atoi(s + k + 1);
    *value = scale >= 0 ? m * pow(10, scale) : m / pow(10, -scale);
    *len = i;
    return 1;
}

sj_status fe_formula_lex(const char *src, ir_arena *arena, fe_token **out, size_t *ntok,
                         ir_err *err)
{
    size_t cap = 16, n = 0, i = 0;
    fe_token *toks = ir_malloc(cap * sizeof *toks);
    if (!toks)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "formula: out of memory");
    sj_status st = SJ_OK;
    for (;;) {
        while (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r')
            i++;
        if (n == cap) {
            fe_token *t = ir_realloc_array(toks, cap * 2, sizeof *toks);
            if (!t) {
                st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "formula: out of memory");
                goto done;
            }
            toks = t;
            cap *= 2;
        }
        fe_token *t = &toks[n];
        memset(t, 0, sizeof *t);
        t->pos = i;
        unsigned char c = (unsigned char)src[i];
        if (c == '\0') {
            t->kind = FE_T_EOF;
            n++;
            break;
        }
        if (c == '.' && isdigit((unsigned char)src[i + 1]))
            goto number;
        if (name_start(c)) {
            size_t j = i;
            while (name_char((unsigned char)src[j]))
                j++;
            t->kind = FE_T_NAME;
            t->len = j - i;
            char *s = ir_arena_alloc(arena, t->len + 1);
            if (!s)
                goto oom;
            memcpy(s, src + i, t->len);
            t->text = s;
            i = j;
            n++;
            continue;
        }
        if (c == '`') {
            size_t j = i + 1;
            while (src[j] && src[j] != '`')
                j++;
            if (!src[j]) {
                st = fe_formula_fail(err, SJ_ERR_INVALID_ARGUMENT, src, i,
                                     "unterminated backquoted name");
                goto done;
            }
            if (j == i + 1) {
                st = fe_formula_fail(err, SJ_ERR_INVALID_ARGUMENT, src, i, "empty backquoted name");
                goto done;
            }
            t->kind = FE_T_NAME;
            t->len = j + 1 - i;
            char *s = ir_arena_alloc(arena, j - i);
            if (!s)
                goto oom;
            memcpy(s, src + i + 1, j - i - 1);
            t->text = s;
            i = j + 1;
            n++;
            continue;
        }
        if (isdigit(c)) {
        number:;
            size_t len;
            if (!scan_number(src + i, &len, &t->num)) {
                st = fe_formula_fail(err, SJ_ERR_INVALID_ARGUMENT, src, i, "malformed number");
                goto done;
            }
            if (src[i + len] == 'L')
                len++;
            if (name_char((unsigned char)src[i + len])) {
                st = fe_formula_fail(err, SJ_ERR_INVALID_ARGUMENT, src, i + len,
                                     "unexpected '%c' after a number", src[i + len]);
                goto done;
            }
            t->kind = FE_T_NUM;
            t->len = len;
            char *s = ir_arena_alloc(arena, len + 1);
            if (!s)
                goto oom;
            memcpy(s, src + i, len);
            t->text = s;
            i += len;
            n++;
            continue;
        }
        if (c == '"' || c == '\'') {
            size_t j = i + 1, m = 0;
            char *s = ir_arena_alloc(arena, strlen(src + i) + 1);
            if (!s)
                goto oom;
            while (src[j] && src[j] != (char)c) {
                if (src[j] == '\\' && src[j + 1]) {
                    char e = src[j + 1];
                    s[m++] = e == 'n' ? '\n' : e == 't' ? '\t' : e;
                    j += 2;
                    continue;
                }
                s[m++] = src[j++];
            }
            if (!src[j]) {
                st = fe_formula_fail(err, SJ_ERR_INVALID_ARGUMENT, src, i, "unterminated string");
                goto done;
            }
            t->kind = FE_T_STR;
            t->text = s;
            t->len = j + 1 - i;
            i = j + 1;
            n++;
            continue;
        }
        if (c == '|' && src[i + 1] == '|') {
            t->kind = FE_T_OROR;
            t->len = 2;
            i += 2;
            n++;
            continue;
        }
        if (c == '%') {
            size_t j = i + 1;
            while (src[j] && src[j] != '%')
                j++;
            if (!src[j]) {
                st = fe_formula_fail(err, SJ_ERR_INVALID_ARGUMENT, src, i, "unterminated %%operator%%");
                goto done;
            }
            t->kind = FE_T_SPECIAL;
            t->len = j + 1 - i;
            char *s = ir_arena_alloc(arena, t->len + 1);
            if (!s)
                goto oom;
            memcpy(s, src + i, t->len);
            t->text = s;
            i = j + 1;
            n++;
            continue;
        }
        if (strchr("~+-*/:^|(),=", c)) {
            t->kind = FE_T_OP;
            t->op = (char)c;
            t->len = 1;
            i++;
            n++;
            continue;
        }
        if (c >= 0x20 && c < 0x7f)
            st = fe_formula_fail(err, SJ_ERR_INVALID_ARGUMENT, src, i, "unexpected character '%c'", c);
        else
            st = fe_formula_fail(err, SJ_ERR_INVALID_ARGUMENT, src, i,
                                 "unexpected byte 0x%02x", c);
        goto done;
    }
done:
    if (st != SJ_OK) {
        ir_free(toks);
        return st;
    }
    *out = ir_arena_dup(arena, toks, n * sizeof *toks);
    ir_free(toks);
    if (!*out)
        return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "formula: out of memory");
    *ntok = n;
    return SJ_OK;
oom:
    ir_free(toks);
    return ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "formula: out of memory");
}

void fe_format_num(char *buf, size_t size, double x)
{
    if (isnan(x)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(x)) {
        snprintf(buf, size, x > 0 ? "Inf" : "-Inf");
        return;
    }
    if (x == 0) {
        snprintf(buf, size, "0");
        return;
    }
    /* 15 significant digits, read back from %e without trusting the
     * locale's decimal point: the digits, then the exponent after 'e'. */
    char e[64];
    snprintf(e, sizeof e, "%.14e", fabs(x));
    char dig[16];
    int nd = 0;
    const char *p = e;
    for (; *p && *p != 'e'; p++)
        if (isdigit((unsigned char)*p) && nd < 15)
            dig[nd++] = *p;
    int exp10 = *p ? atoi(p + 1) : 0;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    int neg = x < 0;
    int sciw = neg + nd + (nd > 1) + 4 + (abs(exp10) >= 100);
    int left = exp10 >= 0 ? exp10 + 1 : 1;
    int rgt = exp10 >= 0 ? (nd - exp10 - 1 > 0 ? nd - exp10 - 1 : 0) : nd - exp10 - 1;
    int fixw = neg + left + (rgt ? rgt + 1 : 0);
    char out[400];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (fixw <= sciw) {
        /* digit k has weight 10^(exp10 - k) */
        for (int w = left - 1; w >= -rgt; w--) {
            if (w == -1)
                out[o++] = '.';
            int k = exp10 - w;
            out[o++] = (k >= 0 && k < nd) ? dig[k] : '0';
        }
    } else {
        out[o++] = dig[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int k = 1; k < nd; k++)
                out[o++] = dig[k];
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d", exp10 < 0 ? '-' : '+',
                              abs(exp10));
    }
    out[o] = '\0';
    snprintf(buf, size, "%s", out);
}
