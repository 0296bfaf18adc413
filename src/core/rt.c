// SPDX-License-Identifier: MIT
/*
 * The runtime object: knit_run (configuration, worker setup and
 * teardown), statistics, the task dump, panics, and stack overflow
 * reports (the SIGSEGV handler on an alternate stack).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/fault.h"
#include "blocking/pool.h"
#include "core/compiler.h"
#include "core/sched.h"
#include "knit/rt.h"
#include "knit/scope.h"

#ifdef KNIT_TSAN
void *__tsan_get_current_fiber(void);
#endif

/* Size of each worker's signal stack (ASan's handlers need room too). */
#define ALTSTACK_SIZE (64u * 1024u)

void knit_config_default(knit_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- panics and overflow reports --------------------------------------- */

_Noreturn void knit__panic(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct knit_task *t = knit__task();
    if (t)
        fprintf(stderr, "knit: %s (in task %llu \"%s\")\n", msg,
                (unsigned long long)t->id, t->name);
    else
        fprintf(stderr, "knit: %s\n", msg);
    fflush(stderr);
    abort();
}

/* Appends @s to buf at *n; async-signal-safe. */
static void put_str(char *buf, size_t *n, size_t cap, const char *s)
{
    while (*s && *n + 1 < cap)
        buf[(*n)++] = *s++;
}

static void put_u64(char *buf, size_t *n, size_t cap, uint64_t v)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i > 0 && *n + 1 < cap)
        buf[(*n)++] = tmp[--i];
}

/* Prints the overflow message and aborts. Async-signal-safe. */
_Noreturn void knit__overflow_report(const struct knit_task *t)
{
    char buf[160];
    size_t n = 0;
    put_str(buf, &n, sizeof(buf), "knit: task \"");
    put_str(buf, &n, sizeof(buf), t->name);
    put_str(buf, &n, sizeof(buf), "\" overflowed its ");
    put_u64(buf, &n, sizeof(buf), t->stack.size);
    put_str(buf, &n, sizeof(buf), "-byte stack\n");
    ssize_t r = write(STDERR_FILENO, buf, n);
    (void)r;
    /* abort() would run ASan's SIGABRT reporting on a broken stack. */
    signal(SIGABRT, SIG_DFL);
    abort();
}

static struct sigaction old_segv;
static struct sigaction old_bus;
static int handler_users; /* runtimes that installed the handler */
static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;

static void segv_handler(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    struct knit_worker *w = knit__tls_worker;
    struct knit_task *t = w ? w->current : NULL;
    if (t && t->stack.lo && knit__stack_is_guard_hit(&t->stack, si->si_addr))
        knit__overflow_report(t);
    /* Not a guard page: put the previous handler back and return, so the
     * fault happens again and is handled as if knit were not here. */
    sigaction(sig, sig == SIGSEGV ? &old_segv : &old_bus, NULL);
}

static void install_handler(void)
{
    pthread_mutex_lock(&handler_lock);
    if (handler_users++ == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = segv_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &old_segv);
        sigaction(SIGBUS, &sa, &old_bus);
    }
    pthread_mutex_unlock(&handler_lock);
}

static void uninstall_handler(void)
{
    pthread_mutex_lock(&handler_lock);
    if (--handler_users == 0) {
        sigaction(SIGSEGV, &old_segv, NULL);
        sigaction(SIGBUS, &old_bus, NULL);
    }
    pthread_mutex_unlock(&handler_lock);
}

/* ---- workers ---------------------------------------------------------- */

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != sizeof(s) || s == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)getpid();
    }
    return s ? s : 1;
}

/* Installs a signal stack for this thread; restores the old one in @old. */
static void *altstack_push(stack_t *old)
{
    void *mem = knit__malloc(ALTSTACK_SIZE);
    if (!mem)
        return NULL;
    stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, old) < 0) {
        free(mem);
        return NULL;
    }
    return mem;
}

static void altstack_pop(void *mem, const stack_t *old)
{
    if (!mem)
        return;
    sigaltstack(old, NULL);
    free(mem);
}

static int worker_init(struct knit_worker *w, struct knit_rt *rt, int id)
{
    memset(w, 0, sizeof(*w));
    w->rt = rt;
    w->shared = rt->shared;
    w->id = id;
    w->rng = rt->cfg.seed + (uint64_t)id * 0x9e3779b97f4a7c15u;
    w->next_timer = -1;
    atomic_init(&w->inbox, NULL);
    atomic_init(&w->inbox_posters, 0);
    knit_list_init(&w->runq);
    knit_list_init(&w->tasks);
    knit_list_init(&w->newq);
    knit__stack_pool_init(&w->stacks);
    knit__clock_refresh(w);
    knit__wheel_init(&w->wheel, w->now);
    int err = knit__ring_init(&w->ring);
    if (err)
        return err;
    err = knit__io_init(&w->io, &rt->cfg);
    if (err)
        knit__ring_fini(&w->ring);
    return err;
}

/*
 * Makes the calling thread @w's: its stack is the worker's own context,
 * knit__worker() finds it, and stack overflows get a signal stack.
 */
static void worker_bind(struct knit_worker *w, stack_t *old_ss)
{
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *lo;
        size_t size;
        if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
#ifdef KNIT_ASAN
            w->sched.stack_lo = lo;
            w->sched.stack_size = size;
#else
            (void)lo;
            (void)size;
#endif
        }
        pthread_attr_destroy(&attr);
    }
#ifdef KNIT_TSAN
    w->sched.tsan = __tsan_get_current_fiber();
#endif
    w->altstack = altstack_push(old_ss);
    knit__tls_worker = w;
}

static void worker_unbind(struct knit_worker *w, const stack_t *old_ss)
{
    knit__signal_fini(w); /* on the thread whose mask it changed */
    knit__tls_worker = NULL;
    altstack_pop(w->altstack, old_ss);
    w->altstack = NULL;
}

/* Workers 1..n-1 run on threads of their own (worker 0 on knit_run's). */
static void *worker_thread(void *arg)
{
    struct knit_worker *w = arg;
    stack_t old_ss;
    worker_bind(w, &old_ss);
    knit__worker_loop(w);
    worker_unbind(w, &old_ss);
    return NULL;
}

/* Starts workers 1..n-1; their threads take no process signals (those
 * are for knit_signal_wait). Returns how many started. */
static int start_threads(struct knit_rt *rt)
{
    sigset_t all, old;
    knit__sigset_async(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int started = 0;
    for (int i = 1; i < rt->nworkers; i++) {
        struct knit_worker *w = &rt->workers[i];
        if (pthread_create(&w->thread, NULL, worker_thread, w) != 0)
            break;
        w->thread_started = true;
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return started;
}

static void worker_fini(struct knit_worker *w)
{
    /* Ended tasks whose handles were never given back. A poke still in
     * an inbox no longer matters: no worker runs. */
    while (!knit_list_is_empty(&w->tasks)) {
        struct knit_task *t =
            knit_container_of(w->tasks.next, struct knit_task, all_link);
        atomic_store(&t->refs, 1); /* whatever held the others is gone */
        knit__task_unref(t);
    }
    knit__task_cache_fini(w);
    knit__signal_fini(w);
    knit__remote_quiesce(w);
    knit__io_fini(&w->io);
    knit__ring_fini(&w->ring);
    knit__stack_pool_fini(&w->stacks);
}

static int normalise(knit_config *cfg)
{
    if (cfg->workers < 0 || cfg->max_blocking_threads < 0 ||
        cfg->stall_ms < -1 || cfg->shutdown_ms < -1)
        return -EINVAL;
    if (cfg->clock != KNIT_CLOCK_MONOTONIC && cfg->clock != KNIT_CLOCK_MANUAL)
        return -EINVAL;
    if (cfg->io < KNIT_IO_AUTO || cfg->io > KNIT_IO_URING)
        return -EINVAL;
    if (cfg->stack_size == 0)
        cfg->stack_size = KNIT_STACK_DEFAULT;
    if (cfg->stack_size < KNIT_STACK_MIN || cfg->stack_size > KNIT_STACK_MAX)
        return -EINVAL;
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n > 0 ? (int)n : 1;
    }
    if (cfg->max_blocking_threads == 0)
        cfg->max_blocking_threads = 512;
    if (cfg->stall_ms == 0)
        cfg->stall_ms = 20;
    if (cfg->shutdown_ms == 0)
        cfg->shutdown_ms = 10000;
    if (cfg->seed == 0)
        cfg->seed = random_seed();
    return 0;
}

int knit_run(const knit_config *cfg_in, knit_fn main_fn, void *arg)
{
    if (!main_fn)
        return -EINVAL;
    if (knit__worker())
        return -EBUSY;
    struct knit_rt *rt =
        knit__calloc_aligned(1, sizeof(*rt), _Alignof(struct knit_rt));
    if (!rt)
        return -ENOMEM;
    int err;
    if (cfg_in)
        rt->cfg = *cfg_in;
    err = normalise(&rt->cfg);
    if (err)
        goto out_free_rt;
    rt->manual = rt->cfg.clock == KNIT_CLOCK_MANUAL;
    const char *faults = getenv("KNIT_FAULTS");
    if (faults && *faults && knit__fault_parse(faults) < 0) {
        fprintf(stderr,
                "knit: cannot parse KNIT_FAULTS=\"%s\" (want "
                "site=ERRNO:ppm,... with site read, write, accept, connect "
                "or socket)\n",
                faults);
        err = -EINVAL;
        goto out_free_rt;
    }
    err = knit__pools_init(rt);
    if (err)
        goto out_free_rt;
    /* multi-worker: enabled. cfg.workers threads, this one is worker 0. */
    rt->nworkers = rt->cfg.workers;
    rt->shared = rt->nworkers > 1;
    rt->workers = knit__calloc_aligned((size_t)rt->nworkers,
                                       sizeof(*rt->workers),
                                       _Alignof(struct knit_worker));
    if (!rt->workers) {
        err = -ENOMEM;
        goto out_free_rt;
    }
    int ninit = 0;
    while (ninit < rt->nworkers) {
        err = worker_init(&rt->workers[ninit], rt, ninit);
        ninit++;
        if (err)
            goto out_fini_workers;
    }
    struct knit_worker *w = &rt->workers[0];
    stack_t old_ss;
    worker_bind(w, &old_ss);
    install_handler();

    /* Main is pinned to worker 0: it runs on the thread that called
     * knit_run, whatever that thread set up before. */
    knit_task_opts o = {.name = "main", .lazy = true};
    rt->main = knit__spawn(w, &o, main_fn, arg);
    if (!rt->main) {
        err = -ENOMEM;
        goto out_restore;
    }
    rt->main->lazy = false;
    rt->main->pinned = true;
    knit__task_place_local(rt->main);
    /* complete() records main's result; the loop frees it on its end. */
    rt->main->detached = true;
    rt->main->is_main = true;
    if (rt->cfg.stall_ms > 0)
        knit__monitor_start(rt);
    /* Workers that cannot start are simply not there: the others take
     * their share (each loop ends when everything has ended). */
    int started = start_threads(rt);
    if (started + 1 < rt->nworkers) {
        knit__lock(w);
        rt->nworkers = started + 1;
        knit__unlock(w);
    }
    knit__worker_loop(w);
    for (int i = 1; i < rt->nworkers; i++)
        if (rt->workers[i].thread_started)
            pthread_join(rt->workers[i].thread, NULL);
    knit__monitor_stop(rt);
    /* No other thread posts to a worker from here on. */
    knit__handle_close(rt);
    /* Every job has ended; let the pool threads go before the workers. */
    knit__pools_fini(rt);
    err = rt->main_result;

out_restore:
    uninstall_handler();
    worker_unbind(w, &old_ss);
out_fini_workers:
    for (int i = 0; i < ninit; i++)
        worker_fini(&rt->workers[i]);
    free(rt->workers);
out_free_rt:
    knit__pools_fini(rt);
    free(rt);
    return err;
}

atomic_long knit__alloc_countdown;

void knit__alloc_fail_after(long n)
{
    atomic_store(&knit__alloc_countdown, n > 0 ? n : 0);
}

bool knit__alloc_fault_pending(void)
{
    return atomic_load(&knit__alloc_countdown) > 0;
}

uint64_t knit_random(void)
{
    struct knit_worker *w = knit__worker();
    if (w)
        return knit__rand(w);
    /* Plain threads share one splitmix64 sequence seeded at first use. */
    static _Atomic uint64_t state;
    uint64_t s = atomic_load(&state);
    if (s == 0) {
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&state, &zero, random_seed());
    }
    uint64_t z = atomic_fetch_add(&state, 0x9e3779b97f4a7c15u) +
                 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* ---- looking inside -------------------------------------------------------
 */

int knit_rt_stats(knit_stats *out)
{
    struct knit_worker *w = knit__worker();
    if (!w)
        return -ESRCH;
    struct knit_rt *rt = w->rt;
    memset(out, 0, sizeof(*out));
    out->seed = rt->cfg.seed;
    out->workers = rt->nworkers;
    out->io_backend = w->io.ops->name;
    knit__lock(w);
    for (int i = 0; i < rt->nworkers; i++)
        out->tasks_spawned += atomic_load(&rt->workers[i].nspawned);
    out->tasks_alive = knit__nlive(rt);
    out->steals = w->steals;
    out->stolen = atomic_load(&w->stolen);
    knit__unlock(w);
    out->worker = w->id;
    out->switches = w->ticks;
    out->stacks_mapped = w->stacks.mapped;
    out->stacks_in_use = w->stacks.in_use;
    out->stacks_pooled = knit__stack_pool_free_count(&w->stacks);
    out->stacks_guarded = w->stacks.guarded;
    out->stacks_canary = w->stacks.canary;
    out->timers_armed = w->wheel.armed;
    out->stalls = atomic_load(&rt->stalls);
    return 0;
}

static int stats_here(void *arg)
{
    return knit_rt_stats(arg);
}

int knit_rt_worker_stats(int worker, knit_stats *out)
{
    struct knit_worker *w = knit__worker();
    if (!w)
        return -ESRCH;
    if (worker < 0 || worker >= w->rt->nworkers)
        return -EINVAL;
    if (worker == w->id)
        return knit_rt_stats(out);
    if (!knit__task())
        return -EPERM;
    knit_task_opts o = {.name = "knit stats"};
    knit_task *t = knit_spawn_on(worker, &o, stats_here, out);
    if (!t)
        return -ENOMEM;
    /* Shielded: @out is written by @t, so @t must end before we return. */
    knit_scope s;
    knit_scope_enter_shielded(&s, KNIT_FOREVER);
    int r = knit_join(t);
    knit_scope_exit(&s);
    return r;
}

static const char *state_name(const struct knit_task *t)
{
    switch (atomic_load_explicit(&t->state, memory_order_relaxed)) {
    case KNIT_TASK_NEW:
        return t->lazy ? "lazy, not started" : "new";
    case KNIT_TASK_RUNNABLE:
        return "runnable";
    case KNIT_TASK_RUNNING:
        return "running";
    case KNIT_TASK_PARKED:
        return "parked";
    default:
        return "done";
    }
}

/* Prints @w's tasks, one line each (rt lock with several workers). */
static void dump_worker(FILE *out, struct knit_worker *w, bool only_live)
{
    struct knit_list *it;
    knit__books_lock(w);
    knit_list_for_each(it, &w->tasks)
    {
        const struct knit_task *t =
            knit_container_of(it, struct knit_task, all_link);
        if (only_live && t->state == KNIT_TASK_DONE)
            continue;
        fprintf(out, "  task %llu \"%s\": %s", (unsigned long long)t->id,
                t->name, state_name(t));
        if (t->state == KNIT_TASK_PARKED && t->waiter) {
            fprintf(out, " on %s", t->waiter->what);
            if (t->waiter->obj)
                fprintf(out, " (%p)", t->waiter->obj);
        }
        if (t->blocking)
            fputs(" (a blocking job)", out);
        if (knit__task_ended(t))
            fprintf(out, ", result %d, not joined", t->result);
        const struct knit_worker *runs_on = knit__task_worker_peek(t);
        fprintf(out, " [worker %d]\n", runs_on->id);
    }
    knit__books_unlock(w);
}

void knit_dump(FILE *out)
{
    struct knit_worker *w = knit__worker();
    if (!w)
        return;
    knit__lock(w);
    fprintf(out, "knit: %d worker(s), %llu live tasks, now=%lld ms, seed=%llu\n",
            w->rt->nworkers, (unsigned long long)knit__nlive(w->rt),
            (long long)w->now, (unsigned long long)w->rt->cfg.seed);
    for (int i = 0; i < w->rt->nworkers; i++)
        dump_worker(out, &w->rt->workers[i], false);
    knit__unlock(w);
}

void knit__dump_stuck(struct knit_rt *rt)
{
    fprintf(stderr,
            "knit: main returned, and %llu task(s) did not end within %d ms "
            "of being cancelled; abandoning them:\n",
            (unsigned long long)knit__nlive(rt), rt->cfg.shutdown_ms);
    for (int i = 0; i < rt->nworkers; i++)
        dump_worker(stderr, &rt->workers[i], true);
    fflush(stderr);
}
