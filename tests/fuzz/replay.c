/* Replays a fuzz target's inputs without libFuzzer: every file of every
 * directory (or file) named on the command line, in name order, is passed to
 * LLVMFuzzerTestOneInput once.  Built by the ordinary compiler in the ordinary
 * (and sanitized) test builds, so the seed corpus and every crashing input
 * ever found run in ctest (fuzz_replay_<target>).  An argument NAME=VALUE
 * sets an environment variable for the inputs after it (fuzz_graph reads
 * SJ_FUZZ_COMPILE_EVERY).  A missing directory is skipped; a crash fails the
 * test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *b = realloc(buf, cap *= 2);
            if (!b)
                free(buf);
            buf = b;
        }
    }
    fclose(f);
    if (!buf)
        return -1;
    /* An exact-size copy, so ASan catches a read past the end as libFuzzer
     * would. */
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

int main(int argc, char **argv)
{
    size_t total = 0;
    int failed = 0;
    for (int a = 1; a < argc; a++) {
        char *eq = strchr(argv[a], '=');
        if (eq && !strchr(argv[a], '/')) {
            *eq = '\0';
            setenv(argv[a], eq + 1, 1);
            continue;
        }
        struct stat st;
        if (stat(argv[a], &st) != 0) {
            printf("replay: %s: missing, skipped\n", argv[a]);
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed |= run_file(argv[a]) != 0;
            total++;
            continue;
        }
        DIR *d = opendir(argv[a]);
        if (!d)
            continue;
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue; /* ., .. and .gitkeep */
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                names = realloc(names, cap * sizeof *names);
            }
            names[n++] = strdup(e->d_name);
        }
        closedir(d);
        if (n)
            qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[a], names[i]);
            failed |= run_file(path) != 0;
            free(names[i]);
        }
        free(names);
        printf("replay: %s: %zu inputs\n", argv[a], n);
        total += n;
    }
    printf("replay: %zu inputs, no crash\n", total);
    return failed;
}
