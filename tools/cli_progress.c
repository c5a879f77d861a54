/* The progress line: "statjit: fitting lmm (REML)... 1.3 s" on stderr,
 * redrawn ten times a second by a helper thread while the fit runs, erased
 * when it ends.
 *
 * Shown only when stderr is a terminal (so never in a pipe, a log file or a
 * test), and only once the work has taken longer than a short delay, so a
 * quick fit prints nothing.  stdout is never touched: --json output stays
 * one clean object.  The fits report no progress of their own, so the line
 * shows what runs and the elapsed time, nothing it cannot know.
 *
 * STATJIT_PROGRESS=0 turns the line off; STATJIT_PROGRESS=1 shows it at
 * once and even when stderr is not a terminal (to test the line itself). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define DELAY_S 0.3   /* show nothing for work shorter than this */
#define PERIOD_S 0.1  /* redraw period */

struct cli_progress {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int shown;      /* the line has been drawn (so must be erased) */
    double delay;   /* seconds before the first drawing */
    char what[96];
    struct timespec start;
};

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static void add_seconds(struct timespec *t, double s)
{
    long ns = t->tv_nsec + (long)(s * 1e9);
    t->tv_sec += ns / 1000000000L;
    t->tv_nsec = ns % 1000000000L;
}

static void *run(void *arg)
{
    cli_progress *p = arg;
    struct timespec wake;
    clock_gettime(CLOCK_MONOTONIC, &wake);
    add_seconds(&wake, p->delay);
    pthread_mutex_lock(&p->lock);
    while (!p->done) {
        int rc = pthread_cond_timedwait(&p->cond, &p->lock, &wake);
        if (p->done)
            break;
        if (rc == ETIMEDOUT) {
            fprintf(stderr, "\rstatjit: %s... %.1f s", p->what, seconds_since(&p->start));
            fflush(stderr);
            p->shown = 1;
            add_seconds(&wake, PERIOD_S);
        }
    }
    if (p->shown) {
        fputs("\r\033[K", stderr); /* back to the line start, erase it */
        fflush(stderr);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

cli_progress *cli_progress_start(const char *what)
{
    const char *env = getenv("STATJIT_PROGRESS");
    int force = env && strcmp(env, "1") == 0;
    if (env && strcmp(env, "0") == 0)
        return NULL;
    if (!force && !isatty(STDERR_FILENO))
        return NULL;

    cli_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL; /* no progress line is no error */
    snprintf(p->what, sizeof p->what, "%s", what);
    p->delay = force ? 0.0 : DELAY_S;
    clock_gettime(CLOCK_MONOTONIC, &p->start);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int ok = pthread_mutex_init(&p->lock, NULL) == 0;
    ok = ok && pthread_cond_init(&p->cond, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!ok || pthread_create(&p->thread, NULL, run, p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void cli_progress_stop(cli_progress *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->done = 1;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
