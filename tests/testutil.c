#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void assert_close_impl(const double *got, const double *want, size_t n, double rtol, double atol,
                       const char *file, int line)
{
    for (size_t i = 0; i < n; i++) {
        double tol = atol + rtol * fabs(want[i]);
        int same_nonfinite = !isfinite(want[i]) && (got[i] == want[i] || (isnan(got[i]) && isnan(want[i])));
        if (!same_nonfinite && !(fabs(got[i] - want[i]) <= tol)) {
            print_error("%s:%d: element %zu: got %.17g, want %.17g (|diff| %.3g > tol %.3g = "
                        "%.1g + %.1g*|want|)\n",
                        file, line, i, got[i], want[i], fabs(got[i] - want[i]), tol, atol, rtol);
            _fail(file, line);
        }
    }
}

void assert_ok_impl(sj_status st, const sj_ctx *ctx, const char *file, int line)
{
    if (st != SJ_OK) {
        print_error("%s:%d: status %s: %s\n", file, line, sj_status_name(st),
                    ctx ? sj_ctx_last_error(ctx) : "");
        _fail(file, line);
    }
}

void assert_error_impl(sj_status st, sj_status want, const sj_ctx *ctx, const char *fragment,
                       const char *file, int line)
{
    const char *msg = ctx ? sj_ctx_last_error(ctx) : "";
    if (st != want || (fragment && !strstr(msg, fragment))) {
        print_error("%s:%d: got %s \"%s\", want %s with \"%s\"\n", file, line, sj_status_name(st),
                    msg, sj_status_name(want), fragment ? fragment : "");
        _fail(file, line);
    }
}

double test_uniform(uint64_t *state, double lo, double hi)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return lo + (hi - lo) * ((double)(x >> 11) / 9007199254740992.0);
}

int test_graph_setup(void **state)
{
    test_graph *f = test_calloc(1, sizeof *f);
    if (!f || sj_ctx_create(&f->ctx) != SJ_OK || sj_graph_create(f->ctx, &f->g) != SJ_OK)
        return -1;
    *state = f;
    return 0;
}

int test_graph_teardown(void **state)
{
    test_graph *f = *state;
    sj_graph_free(f->g);
    sj_ctx_free(f->ctx);
    test_free(f);
    return 0;
}

double test_item_err(const double *a, const double *b, int64_t nb, int64_t m)
{
    double worst = 0;
    for (int64_t i = 0; i < nb; i++) {
        double scale = 0, e = 0;
        for (int64_t k = 0; k < m; k++) {
            scale = fmax(scale, fabs(b[i * m + k]));
            e = fmax(e, fabs(a[i * m + k] - b[i * m + k]));
        }
        double r = e / fmax(scale, 1e-300);
        worst = r > worst || isnan(r) ? r : worst;
    }
    return worst;
}
