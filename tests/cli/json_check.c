/* json_check: checks values in the statjit command's --json output, against
 * numbers, strings, or values of a golden JSON file.  A test helper (the
 * tests may not use python or jq).
 *
 *   json_check OUT.json [--golden GOLDEN.json] CHECK...
 *
 * OUT.json must hold exactly one JSON object (nothing after it).  Checks:
 *
 *   num  PATH VALUE TOL    |out - VALUE| <= TOL·|VALUE|  (TOL when VALUE is 0)
 *   gold PATH GPATH TOL    the same with VALUE read from GOLDEN.json at GPATH
 *   str  PATH TEXT         a string equal to TEXT
 *   bool PATH true|false
 *   has  PATH              the key exists (any value)
 *   len  PATH N            an array of N elements
 *
 * A PATH is segments separated by '/': an object key, "[N]" (array index)
 * or "[key=value]" (the first element of an array of objects whose string
 * member key equals value; the value may contain '/' and anything but ']'
 * and '&'), "[key=value&key2=value2]" (both must match).
 * Example: fixed_effects/[name=(Intercept)]/estimate,
 * random_effects/[group=Subject&name=Days]/std_dev.
 *
 * Prints one line per check; exit status 0 when all pass, 1 when one fails,
 * 2 for a usage or parse error. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jkind;

typedef struct jval jval;
struct jval {
    jkind kind;
    int b;
    double num;
    char *str;
    size_t n;
    char **keys; /* J_OBJ */
    jval **items;
};

typedef struct parser {
    const char *s;
    size_t i, len;
    const char *file;
    int failed;
} parser;

static void perr(parser *p, const char *what)
{
    if (!p->failed) {
        size_t line = 1, col = 1;
        for (size_t k = 0; k < p->i && k < p->len; k++) {
            if (p->s[k] == '\n')
                line++, col = 1;
            else
                col++;
        }
        fprintf(stderr, "json_check: %s:%zu:%zu: %s\n", p->file, line, col, what);
    }
    p->failed = 1;
}

static void ws(parser *p)
{
    while (p->i < p->len && isspace((unsigned char)p->s[p->i]))
        p->i++;
}

static void *xcalloc(size_t n, size_t size)
{
    void *q = calloc(n ? n : 1, size);
    if (!q) {
        fputs("json_check: out of memory\n", stderr);
        exit(2);
    }
    return q;
}

static void push(jval *v, char *key, jval *item)
{
    v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
    if (key)
        v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys);
    if (!v->items || (key && !v->keys)) {
        fputs("json_check: out of memory\n", stderr);
        exit(2);
    }
    if (key)
        v->keys[v->n] = key;
    v->items[v->n++] = item;
}

static void put_utf8(char *out, size_t *k, unsigned cp)
{
    if (cp < 0x80) {
        out[(*k)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*k)++] = (char)(0xC0 | (cp >> 6));
        out[(*k)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*k)++] = (char)(0xE0 | (cp >> 12));
        out[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*k)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static char *parse_string(parser *p)
{
    p->i++; /* opening quote */
    char *out = xcalloc(p->len - p->i + 1, 1);
    size_t k = 0;
    while (p->i < p->len && p->s[p->i] != '"') {
        char c = p->s[p->i++];
        if ((unsigned char)c < 0x20) {
            perr(p, "control character in a string");
            return out;
        }
        if (c != '\\') {
            out[k++] = c;
            continue;
        }
        if (p->i >= p->len)
            break;
        c = p->s[p->i++];
        switch (c) {
        case '"': case '\\': case '/': out[k++] = c; break;
        case 'b': out[k++] = '\b'; break;
        case 'f': out[k++] = '\f'; break;
        case 'n': out[k++] = '\n'; break;
        case 'r': out[k++] = '\r'; break;
        case 't': out[k++] = '\t'; break;
        case 'u': {
            unsigned cp = 0;
            for (int d = 0; d < 4; d++) {
                if (p->i >= p->len || !isxdigit((unsigned char)p->s[p->i])) {
                    perr(p, "bad \\u escape");
                    return out;
                }
                char h = p->s[p->i++];
                cp = cp * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
            }
            put_utf8(out, &k, cp);
            break;
        }
        default: perr(p, "bad escape in a string"); return out;
        }
    }
    if (p->i >= p->len)
        perr(p, "unterminated string");
    else
        p->i++;
    out[k] = '\0';
    return out;
}

static jval *parse_value(parser *p, int depth)
{
    jval *v = xcalloc(1, sizeof *v);
    ws(p);
    if (depth > 64) {
        perr(p, "nested too deeply");
        return v;
    }
    if (p->i >= p->len) {
        perr(p, "unexpected end of input");
        return v;
    }
    char c = p->s[p->i];
    if (c == '{' || c == '[') {
        int obj = c == '{';
        v->kind = obj ? J_OBJ : J_ARR;
        p->i++;
        ws(p);
        if (p->i < p->len && p->s[p->i] == (obj ? '}' : ']')) {
            p->i++;
            return v;
        }
        for (;;) {
            char *key = NULL;
            if (obj) {
                ws(p);
                if (p->i >= p->len || p->s[p->i] != '"') {
                    perr(p, "expected a key string");
                    return v;
                }
                key = parse_string(p);
                ws(p);
                if (p->i >= p->len || p->s[p->i] != ':') {
                    perr(p, "expected ':'");
                    return v;
                }
                p->i++;
            }
            push(v, key, parse_value(p, depth + 1));
            if (p->failed)
                return v;
            ws(p);
            if (p->i < p->len && p->s[p->i] == ',') {
                p->i++;
                continue;
            }
            if (p->i < p->len && p->s[p->i] == (obj ? '}' : ']')) {
                p->i++;
                return v;
            }
            perr(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            return v;
        }
    }
    if (c == '"') {
        v->kind = J_STR;
        v->str = parse_string(p);
        return v;
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        size_t wl = strlen(words[w]);
        if (p->len - p->i >= wl && strncmp(p->s + p->i, words[w], wl) == 0) {
            p->i += wl;
            v->kind = w == 2 ? J_NULL : J_BOOL;
            v->b = w == 0;
            return v;
        }
    }
    /* A number in JSON's grammar (strtod alone would accept "nan", hex...). */
    size_t j = p->i;
    if (j < p->len && p->s[j] == '-')
        j++;
    size_t digits = j;
    while (j < p->len && isdigit((unsigned char)p->s[j]))
        j++;
    if (j == digits) {
        perr(p, "expected a value");
        return v;
    }
    if (j < p->len && p->s[j] == '.') {
        j++;
        size_t f = j;
        while (j < p->len && isdigit((unsigned char)p->s[j]))
            j++;
        if (j == f) {
            perr(p, "expected digits after '.'");
            return v;
        }
    }
    if (j < p->len && (p->s[j] == 'e' || p->s[j] == 'E')) {
        j++;
        if (j < p->len && (p->s[j] == '+' || p->s[j] == '-'))
            j++;
        size_t e = j;
        while (j < p->len && isdigit((unsigned char)p->s[j]))
            j++;
        if (j == e) {
            perr(p, "expected digits in the exponent");
            return v;
        }
    }
    char buf[64];
    size_t len = j - p->i < sizeof buf - 1 ? j - p->i : sizeof buf - 1;
    memcpy(buf, p->s + p->i, len);
    buf[len] = '\0';
    v->kind = J_NUM;
    v->num = strtod(buf, NULL);
    p->i = j;
    return v;
}

static void jfree(jval *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        if (v->keys)
            free(v->keys[i]);
        jfree(v->items[i]);
    }
    free(v->keys);
    free(v->items);
    free(v->str);
    free(v);
}

static jval *load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "json_check: cannot open %s\n", path);
        exit(2);
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = xcalloc(cap, 1);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            buf = realloc(buf, cap *= 2);
            if (!buf)
                exit(2);
        }
    }
    fclose(f);
    parser p = {buf, 0, len, path, 0};
    ws(&p);
    if (p.i >= len || buf[p.i] != '{')
        perr(&p, "expected one JSON object");
    jval *v = parse_value(&p, 0);
    ws(&p);
    if (!p.failed && p.i != len)
        perr(&p, "text after the JSON object");
    free(buf);
    if (p.failed) {
        jfree(v);
        exit(2);
    }
    return v;
}

/* Whether object it has every string member of the selector
 * "key=value&key=value" held in [sel, end). */
static int matches(const jval *it, const char *sel, const char *end)
{
    if (it->kind != J_OBJ)
        return 0;
    while (sel < end) {
        const char *amp = memchr(sel, '&', (size_t)(end - sel));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(sel, '=', (size_t)(stop - sel));
        if (!eq)
            return 0;
        size_t klen = (size_t)(eq - sel), vlen = (size_t)(stop - eq - 1);
        int ok = 0;
        for (size_t m = 0; m < it->n && !ok; m++)
            ok = strlen(it->keys[m]) == klen && strncmp(it->keys[m], sel, klen) == 0 &&
                 it->items[m]->kind == J_STR && strlen(it->items[m]->str) == vlen &&
                 strncmp(it->items[m]->str, eq + 1, vlen) == 0;
        if (!ok)
            return 0;
        sel = stop + (amp != NULL);
    }
    return 1;
}

/* Follows path from root; NULL when a segment does not match. */
static const jval *lookup(const jval *root, const char *path)
{
    const jval *v = root;
    const char *s = path;
    while (*s && v) {
        const char *end;
        if (*s == '[') {
            end = strchr(s, ']');
            if (!end)
                return NULL;
            const char *eq = memchr(s, '=', (size_t)(end - s));
            if (v->kind != J_ARR)
                return NULL;
            if (!eq) {
                size_t idx = strtoul(s + 1, NULL, 10);
                v = idx < v->n ? v->items[idx] : NULL;
            } else {
                const jval *found = NULL;
                for (size_t i = 0; i < v->n && !found; i++)
                    if (matches(v->items[i], s + 1, end))
                        found = v->items[i];
                v = found;
            }
            s = end + 1;
        } else {
            end = strchr(s, '/');
            if (!end)
                end = s + strlen(s);
            size_t klen = (size_t)(end - s);
            const jval *found = NULL;
            if (v->kind == J_OBJ)
                for (size_t m = 0; m < v->n && !found; m++)
                    if (strlen(v->keys[m]) == klen && strncmp(v->keys[m], s, klen) == 0)
                        found = v->items[m];
            v = found;
            s = end;
        }
        if (*s == '/')
            s++;
    }
    return v;
}

static int check_num(const char *path, const jval *v, double want, double tol)
{
    if (!v || v->kind != J_NUM) {
        printf("FAIL %s: %s (expected %.17g)\n", path, v ? "not a number" : "missing", want);
        return 1;
    }
    double diff = fabs(v->num - want), scale = want != 0 ? fabs(want) : 1.0;
    int ok = diff <= tol * scale;
    printf("%s %s = %.17g, expected %.17g (relative difference %.3g, tolerance %.3g)\n",
           ok ? "ok  " : "FAIL", path, v->num, want, diff / scale, tol);
    return !ok;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: json_check OUT.json [--golden GOLDEN.json] CHECK...\n", stderr);
        return 2;
    }
    jval *out = load(argv[1]), *gold = NULL;
    int i = 2, nfail = 0, ncheck = 0;
    if (i + 1 < argc && strcmp(argv[i], "--golden") == 0) {
        gold = load(argv[i + 1]);
        i += 2;
    }
    while (i < argc) {
        const char *op = argv[i];
        int need = strcmp(op, "num") == 0 || strcmp(op, "gold") == 0 ? 3
                   : strcmp(op, "has") == 0                          ? 1
                                                                     : 2;
        if (i + need >= argc) {
            fprintf(stderr, "json_check: check '%s' needs %d arguments\n", op, need);
            goto bad;
        }
        const char *path = argv[i + 1];
        const jval *v = lookup(out, path);
        ncheck++;
        if (strcmp(op, "num") == 0) {
            nfail += check_num(path, v, strtod(argv[i + 2], NULL), strtod(argv[i + 3], NULL));
        } else if (strcmp(op, "gold") == 0) {
            const jval *g = gold ? lookup(gold, argv[i + 2]) : NULL;
            if (!g || g->kind != J_NUM) {
                fprintf(stderr, "json_check: golden value %s not found\n", argv[i + 2]);
                goto bad;
            }
            nfail += check_num(path, v, g->num, strtod(argv[i + 3], NULL));
        } else if (strcmp(op, "str") == 0) {
            int ok = v && v->kind == J_STR && strcmp(v->str, argv[i + 2]) == 0;
            printf("%s %s = %s%s%s, expected \"%s\"\n", ok ? "ok  " : "FAIL", path,
                   v && v->kind == J_STR ? "\"" : "",
                   !v ? "missing" : v->kind == J_STR ? v->str : "not a string",
                   v && v->kind == J_STR ? "\"" : "", argv[i + 2]);
            nfail += !ok;
        } else if (strcmp(op, "bool") == 0) {
            int want = strcmp(argv[i + 2], "true") == 0;
            int ok = v && v->kind == J_BOOL && v->b == want;
            printf("%s %s = %s, expected %s\n", ok ? "ok  " : "FAIL", path,
                   !v ? "missing" : v->kind != J_BOOL ? "not a boolean" : v->b ? "true" : "false",
                   argv[i + 2]);
            nfail += !ok;
        } else if (strcmp(op, "has") == 0) {
            printf("%s %s %s\n", v ? "ok  " : "FAIL", path, v ? "present" : "missing");
            nfail += !v;
        } else if (strcmp(op, "len") == 0) {
            size_t want = strtoul(argv[i + 2], NULL, 10);
            int ok = v && v->kind == J_ARR && v->n == want;
            printf("%s %s has %zu elements, expected %zu\n", ok ? "ok  " : "FAIL", path,
                   v && v->kind == J_ARR ? v->n : 0, want);
            nfail += !ok;
        } else {
            fprintf(stderr, "json_check: unknown check '%s'\n", op);
            goto bad;
        }
        i += need + 1;
    }
    printf("%d of %d checks passed\n", ncheck - nfail, ncheck);
    jfree(out);
    jfree(gold);
    return nfail ? 1 : 0;
bad:
    jfree(out);
    jfree(gold);
    return 2;
}
