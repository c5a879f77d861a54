/* The hand-written peer of the elementwise benchmark: the same 8-op chain as
 * bench_codegen's graph, as one plain C loop.  bench/CMakeLists.txt compiles
 * this file alone with gcc -O3 -march=native. */
#include <stddef.h>

/* out = |max((x y + x - y)² / y, x) - y|, element by element: a chain in
 * which every intermediate is used once. */
void peer_elementwise(const double *restrict x, const double *restrict y, double *restrict out,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double c = x[i] * y[i] + x[i] - y[i];
        double e = c * c / y[i];
        double f = e > x[i] ? e : x[i];
        double g = f - y[i];
        out[i] = g < 0 ? -g : g;
    }
}

/* The same, but with x y used twice (|max(...) - x y|): a graph in which an
 * intermediate has two readers. */
void peer_elementwise_reuse(const double *restrict x, const double *restrict y,
                            double *restrict out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double a = x[i] * y[i];
        double c = a + x[i] - y[i];
        double e = c * c / y[i];
        double f = e > x[i] ? e : x[i];
        double g = f - a;
        out[i] = g < 0 ? -g : g;
    }
}

/* Which compiler built this file, for the report. */
const char *peer_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}

/* The optimisation level this file was built with (1 when optimising). */
int peer_optimized(void)
{
#ifdef __OPTIMIZE__
    return 1;
#else
    return 0;
#endif
}
