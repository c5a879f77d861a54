/* The batch pool (pool.h): a few threads, created on first use, that share
 * the items of one batched linear-algebra loop with the calling thread.
 *
 * One batch uses the pool at a time; a kernel that finds it busy (another
 * thread's kernel is in a batch) runs its batch serially, as does one whose
 * batch is nested in another's item.  Items are claimed in increasing order,
 * a chunk at a time, from an atomic counter.  Each item writes only its own
 * output matrices, so the result is the same whatever thread runs it.
 *
 * Errors: an item that fails lowers `fail_at` to its index; no item after
 * fail_at is started, every item before it still runs, so the smallest failing
 * index found is the first failing item in batch order (what the serial loop
 * reports), and its error record is the one copied out.
 *
 * OpenBLAS: its thread count is process-wide.  While a batch runs on the
 * pool it is set to 1 (each item's BLAS/LAPACK call then runs on the thread
 * that made it, and the machine is not oversubscribed), and restored after. */
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "codegen/pool.h"

typedef struct result {
    int64_t item; /* first failing item this participant ran, or INT64_MAX */
    int32_t st;
    int64_t rec[4];
} result;

static struct {
    pthread_mutex_t lock;   /* the fields below, and job changes */
    pthread_cond_t go, done;
    pthread_mutex_t busy;   /* held by the batch that uses the pool */
    int nworker;            /* threads created */
    unsigned long gen;      /* job generation */
    int njoin;              /* workers that may take part in the current job */
    int open;               /* the current job still takes workers */
    int active;             /* workers in the current job, still running */
    /* the current job */
    cg_batch_body *body;
    void *env;
    int64_t n, chunk;
    /* claimed by every chunk: a cache line of their own */
    _Alignas(64) atomic_llong next;
    _Alignas(64) atomic_llong fail_at;
    _Alignas(64) result res[CG_POOL_MAX];
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER, .busy = PTHREAD_MUTEX_INITIALIZER};

static atomic_int setting; /* cg_pool_set_threads; 0: default */
static _Thread_local int in_item; /* this thread is running a pool item */

int cg_pool_set_threads(int n)
{
    return atomic_exchange(&setting, n < 0 ? 0 : n);
}

static int threads_wanted(void)
{
    int n = atomic_load(&setting);
    if (n <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus < 1 ? 1 : (int)cpus;
    }
    return n > CG_POOL_MAX ? CG_POOL_MAX : n;
}

static void lower_fail_at(int64_t item)
{
    long long cur = atomic_load(&pool.fail_at);
    while (item < cur && !atomic_compare_exchange_weak(&pool.fail_at, &cur, item))
        ;
}

/* Runs chunks of the current job until none is left (or all that are left
 * come after a failing item). */
static void participate(result *r)
{
    cg_batch_body *body = pool.body;
    void *env = pool.env;
    int64_t n = pool.n, chunk = pool.chunk;
    r->item = INT64_MAX;
    in_item = 1;
    for (;;) {
        int64_t start = atomic_fetch_add(&pool.next, chunk);
        if (start >= n || start > atomic_load_explicit(&pool.fail_at, memory_order_relaxed))
            break;
        int64_t end = start + chunk < n ? start + chunk : n;
        for (int64_t b = start; b < end; b++) {
            if (b > atomic_load_explicit(&pool.fail_at, memory_order_relaxed))
                break;
            int64_t rec[4] = {0};
            int32_t st = body(env, b, rec);
            if (st != 0) {
                if (b < r->item) {
                    r->item = b;
                    r->st = st;
                    memcpy(r->rec, rec, sizeof rec);
                }
                lower_fail_at(b);
                break;
            }
        }
    }
    in_item = 0;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg; /* 1.. : result slot */
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.gen == seen)
            pthread_cond_wait(&pool.go, &pool.lock);
        seen = pool.gen;
        if (!pool.open || id > pool.njoin)
            continue; /* woken too late: the caller has done the work */
        pool.active++;
        pthread_mutex_unlock(&pool.lock);
        participate(&pool.res[id]);
        pthread_mutex_lock(&pool.lock);
        if (--pool.active == 0)
            pthread_cond_signal(&pool.done);
    }
    return NULL;
}

/* Creates workers up to `want` (under pool.lock); returns how many exist. */
static int grow(int want)
{
    while (pool.nworker < want) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int e = pthread_create(&t, &a, worker, (void *)(intptr_t)(pool.nworker + 1));
        pthread_attr_destroy(&a);
        if (e != 0)
            break;
        pool.nworker++;
    }
    return pool.nworker;
}

static int32_t run_serial(cg_batch_body *body, void *env, int64_t n, int64_t *rec)
{
    for (int64_t b = 0; b < n; b++) {
        int64_t r[4] = {0};
        int32_t st = body(env, b, r);
        if (st != 0) {
            memcpy(rec, r, sizeof r);
            return st;
        }
    }
    return 0;
}

int32_t sj_batch_run(cg_batch_body *body, void *env, int64_t n, int64_t *rec)
{
    int want = threads_wanted();
    if (n < 2 || want < 2 || in_item || pthread_mutex_trylock(&pool.busy) != 0)
        return run_serial(body, env, n, rec);
    pthread_mutex_lock(&pool.lock);
    int nw = grow(want - 1);
    if (nw > n - 1)
        nw = (int)(n - 1);
    pool.body = body;
    pool.env = env;
    pool.n = n;
    /* Small chunks: a worker the scheduler delays holds up the end of the
     * batch by one chunk at most. */
    int64_t chunk = n / (16 * (nw + 1));
    pool.chunk = chunk < 1 ? 1 : chunk;
    atomic_store(&pool.next, 0);
    atomic_store(&pool.fail_at, INT64_MAX);
    for (int i = 0; i <= nw; i++)
        pool.res[i].item = INT64_MAX;
    pool.njoin = nw;
    pool.open = 1;
    pool.active = 0;
    pool.gen++;
    int blas = openblas_get_num_threads();
    if (blas > 1)
        openblas_set_num_threads(1);
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.lock);

    participate(&pool.res[0]);

    /* Only workers that joined are waited for: one the scheduler has not
     * run yet finds the job closed and goes back to sleep. */
    pthread_mutex_lock(&pool.lock);
    pool.open = 0;
    while (pool.active > 0)
        pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    if (blas > 1)
        openblas_set_num_threads(blas);
    const result *first = NULL;
    for (int i = 0; i <= nw; i++)
        if (pool.res[i].item != INT64_MAX && (!first || pool.res[i].item < first->item))
            first = &pool.res[i];
    int32_t st = 0;
    if (first) {
        memcpy(rec, first->rec, sizeof first->rec);
        st = first->st;
    }
    pthread_mutex_unlock(&pool.busy);
    return st;
}
