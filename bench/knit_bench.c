// SPDX-License-Identifier: MIT
/*
 * knit-bench: knit's side of the shared peer benchmark kit
 * (../shared/bench-peers). One binary with the peers' command line:
 *
 *     knit-bench <workload> [--n N] [--reps R] [--port P] [--stack-kb K]
 *                [--placement 1]
 *
 * For every workload it implements it runs the kit's exact definition and
 * prints the kit's result lines:
 *
 *     peer=knit workload=NAME value=X unit=U [key=value ...]
 *
 * Micro-benchmarks print the median of R repetitions (default 5) with
 * min= and max=; each repetition is a fresh knit_run() (one worker, or
 * one per core for the _mt workloads), and the clock runs only inside its
 * tasks, so building and tearing down the runtime is not timed.
 * timers_sleep, idle_chan and idle_sleep are single measurements. A
 * workload that is not implemented (the raw-only ctx_switch and
 * idle_chan_guarded) exits with status 2 and prints nothing. Every
 * workload checks its results and exits with status 1 and a message on
 * stderr when they are wrong.
 *
 * Only the public API (<knit.h>) is used. Divisions: helpers (clock,
 * mix64, rusage, VmRSS, result lines, repetitions), W1 yield_pingpong,
 * W2 spawn_join_1t / spawn_join_mt, W4 timers (timer_arm_cancel,
 * timeout_ready, timers_sleep), W6 idle_sleep / idle_chan, W1/W3
 * wake_pingpong and the channels, chan_throughput_4p1c_mt, the knit-only
 * skew_spawn_mt, W5 echo_server, and the command line.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <knit.h>

#define PEER "knit"
#define DEFAULT_REPS 5
#define MAX_REPS 64
/* What timers_sleep and idle_sleep give each task unless --stack-kb says. */
#define SMALL_STACK_KB 16
/* knit's default task stack (knit_config.stack_size = 0), for stack_kb=. */
#define DEFAULT_STACK_KB 64

/* Stack of the spawned tasks in KiB; 0 = the workload's own choice. */
static size_t opt_stack_kb;
/* --placement 1: the _mt workloads report on stderr, per repetition,
 * which worker ran which tasks (spawn_join_mt then counts in each task). */
static bool opt_placement;

/* Workers a per-worker table has room for. */
#define MAX_WORKERS 256

/* A per-worker counter, one cache line each (no false sharing). */
struct worker_count {
    _Alignas(64) _Atomic uint64_t n;
};

/* ---- helpers ------------------------------------------------------------- */

static _Noreturn void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Prints "knit-bench: <message>" on stderr and exits with status 1. */
static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("knit-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* The real monotonic clock in ns (not knit_now(), which is cached in ms). */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The splitmix64 finalizer, as every peer uses it for the sleep lengths. */
static uint64_t mix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* timers_sleep: task i sleeps 1..1000 ms. */
static int64_t delay_ms(uint64_t i)
{
    return (int64_t)(1 + mix64(i) % 1000);
}

/* CPU time, faults and peak RSS of the process so far. */
struct usage {
    double user_ms;   /* user CPU */
    double sys_ms;    /* system CPU */
    long minflt;      /* minor page faults */
    double maxrss_mb; /* peak resident set */
};

static double tv_ms(struct timeval tv)
{
    return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec * 1e-3;
}

static struct usage usage_now(void)
{
    struct rusage ru;
    struct usage u;
    getrusage(RUSAGE_SELF, &ru);
    u.user_ms = tv_ms(ru.ru_utime);
    u.sys_ms = tv_ms(ru.ru_stime);
    u.minflt = ru.ru_minflt;
    u.maxrss_mb = (double)ru.ru_maxrss / 1024.0;
    return u;
}

/* VmRSS of the process in bytes, from /proc/self/status (0 if unknown). */
static uint64_t vmrss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    uint64_t kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtoull(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}

/* Formats a value the way the kit does: 3 significant-ish digits. */
static void fmt_value(char *buf, size_t len, double v)
{
    double a = v < 0 ? -v : v;
    if (v != v)
        snprintf(buf, len, "nan");
    else if (a >= 1000)
        snprintf(buf, len, "%.0f", v);
    else if (a >= 10)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "%.2f", v);
}

/* Prints one result line; @extra is "" or space-separated key=value. */
static void emit(const char *workload, double value, const char *unit,
                 const char *extra)
{
    char v[64];
    fmt_value(v, sizeof(v), value);
    printf("peer=%s workload=%s value=%s unit=%s%s%s\n", PEER, workload, v,
           unit, extra[0] ? " " : "", extra);
    fflush(stdout);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs fn(n) @reps times and prints the median with min= and max=. */
static void rep(const char *workload, const char *unit, int reps,
                const char *extra, double (*fn)(uint64_t), uint64_t n)
{
    double v[MAX_REPS];
    char lo[64];
    char hi[64];
    char line[512];
    for (int i = 0; i < reps; i++)
        v[i] = fn(n);
    qsort(v, (size_t)reps, sizeof(v[0]), cmp_double);
    double med = reps % 2 ? v[reps / 2] : (v[reps / 2 - 1] + v[reps / 2]) / 2;
    fmt_value(lo, sizeof(lo), v[0]);
    fmt_value(hi, sizeof(hi), v[reps - 1]);
    snprintf(line, sizeof(line), "%s reps=%d min=%s max=%s", extra, reps, lo,
             hi);
    emit(workload, med, unit, line);
}

/*
 * Runs main(arg) in a fresh runtime with @workers workers (0: one per
 * core). The stall monitor is
 * off: it would report the long loops that spawn a million tasks without
 * parking, which is what these workloads are about.
 */
static void run_workers(int workers, knit_fn main, void *arg)
{
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.workers = workers;
    cfg.stall_ms = -1;
    int err = knit_run(&cfg, main, arg);
    if (err)
        die("knit_run: %s", strerror(-err));
}

/* Runs main(arg) in a fresh runtime with one worker. */
static void run(knit_fn main, void *arg)
{
    run_workers(1, main, arg);
}

/* "All cores": the workers knit_config.workers = 0 gives (one per core). */
static int ncores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Task options with the stack size of --stack-kb, or @def_kb (0: default). */
static knit_task_opts task_opts(size_t def_kb)
{
    size_t kb = opt_stack_kb ? opt_stack_kb : def_kb;
    knit_task_opts o = {.stack_size = kb * 1024};
    return o;
}

/* The stack_kb= value the lines report for @def_kb. */
static size_t stack_kb(size_t def_kb)
{
    size_t kb = opt_stack_kb ? opt_stack_kb : def_kb;
    return kb ? kb : DEFAULT_STACK_KB;
}

/* ---- W1: yield_pingpong -------------------------------------------------- */

struct pingpong {
    uint64_t per_task; /* yields each of the two tasks makes */
    uint64_t yields;   /* yields that returned 0, both tasks */
    double ns;         /* result: ns per switch */
};

static int yielder(void *arg)
{
    struct pingpong *p = arg;
    uint64_t i;
    for (i = 0; i < p->per_task; i++) {
        int err = knit_yield();
        if (err)
            return err;
    }
    p->yields += i;
    return 0;
}

static int yield_main(void *arg)
{
    struct pingpong *p = arg;
    knit_task_opts o = task_opts(0);
    knit_stats s0;
    knit_stats s1;
    knit_rt_stats(&s0);
    uint64_t t0 = now_ns();
    knit_task *a = knit_spawn_with(&o, yielder, p);
    knit_task *b = knit_spawn_with(&o, yielder, p);
    if (!a || !b)
        die("yield_pingpong: knit_spawn failed");
    int ra = knit_join(a);
    int rb = knit_join(b);
    uint64_t t1 = now_ns();
    knit_rt_stats(&s1);
    if (ra || rb || p->yields != 2 * p->per_task)
        die("yield_pingpong: %llu yields of %llu (results %d, %d)",
            (unsigned long long)p->yields,
            (unsigned long long)(2 * p->per_task), ra, rb);
    /* Each yield must have switched: ticks count switches into tasks. */
    if (s1.switches - s0.switches < 2 * p->per_task)
        die("yield_pingpong: only %llu switches for %llu yields",
            (unsigned long long)(s1.switches - s0.switches),
            (unsigned long long)(2 * p->per_task));
    p->ns = (double)(t1 - t0) / (double)(2 * p->per_task);
    return 0;
}

/* Two tasks on one worker, knit_yield() n/2 times each: ns per switch. */
static double yield_pingpong(uint64_t n)
{
    struct pingpong p = {.per_task = n / 2};
    run(yield_main, &p);
    return p.ns;
}

/* ---- W2: spawn_join_1t, spawn_join_mt ------------------------------------ */

struct spawn_join {
    const char *name; /* the workload, for messages */
    uint64_t n;       /* tasks */
    bool counted;     /* tasks count where they ran (--placement) */
    double rate;      /* result: tasks per second */
};

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

/* --placement: tasks run per worker in the current spawn_join_mt rep. */
static struct worker_count sj_ran[MAX_WORKERS];

/* return_arg that also counts where it ran (spawn_join_mt --placement). */
static int return_arg_counted(void *arg)
{
    int id = knit_worker_id();
    if (id >= 0 && id < MAX_WORKERS)
        atomic_fetch_add_explicit(&sj_ran[id].n, 1, memory_order_relaxed);
    return (int)(intptr_t)arg;
}

static int spawn_join_main(void *arg)
{
    struct spawn_join *sj = arg;
    uint64_t n = sj->n;
    knit_task_opts o = task_opts(0);
    knit_fn fn = sj->counted ? return_arg_counted : return_arg;
    uint64_t t0 = now_ns();
    knit_task **h = malloc(n * sizeof(*h));
    if (!h)
        die("%s: out of memory", sj->name);
    for (uint64_t i = 0; i < n; i++) {
        h[i] = knit_spawn_with(&o, fn, (void *)(intptr_t)i);
        if (!h[i])
            die("%s: knit_spawn failed at task %llu", sj->name,
                (unsigned long long)i);
    }
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        int r = knit_join(h[i]);
        if (r < 0)
            die("%s: join %llu: %s", sj->name, (unsigned long long)i,
                strerror(-r));
        sum += (uint64_t)r;
    }
    free(h);
    uint64_t t1 = now_ns();
    if (sum != n * (n - 1) / 2)
        die("%s: sum %llu, expected %llu", sj->name,
            (unsigned long long)sum, (unsigned long long)(n * (n - 1) / 2));
    sj->rate = (double)n / ((double)(t1 - t0) * 1e-9);
    return 0;
}

/* From the main task: spawn n tasks returning i, join in order: tasks/s. */
static double spawn_join_1t(uint64_t n)
{
    struct spawn_join sj = {.name = "spawn_join_1t", .n = n};
    run(spawn_join_main, &sj);
    return sj.rate;
}

/*
 * spawn_join_mt: the same on all cores (knit_config.workers = 0, one
 * worker per core): main spawns n tasks, task i returns i, joins them in
 * spawn order and checks the sum. The spawns go on main's worker's queue
 * of unstarted tasks, from which idle workers steal half at a time.
 */
static double spawn_join_mt(uint64_t n)
{
    struct spawn_join sj = {.name = "spawn_join_mt", .n = n,
                            .counted = opt_placement};
    for (int w = 0; w < MAX_WORKERS; w++)
        atomic_store(&sj_ran[w].n, 0);
    run_workers(0, spawn_join_main, &sj);
    if (opt_placement) {
        fprintf(stderr, "knit-bench: spawn_join_mt %.0f tasks/s, ran on "
                        "workers:", sj.rate);
        for (int w = 0; w < ncores() && w < MAX_WORKERS; w++)
            fprintf(stderr, " %llu", (unsigned long long)sj_ran[w].n);
        fputc('\n', stderr);
    }
    return sj.rate;
}

/* ---- W4: timer_arm_cancel, timeout_ready --------------------------------- */

struct timer_loop {
    uint64_t n;  /* operations */
    double rate; /* result: operations per second */
};

/* Checks once, untimed, that a scope with a deadline arms a wheel timer. */
static void check_scope_arms_timer(void)
{
    knit_stats s0;
    knit_stats s1;
    knit_stats s2;
    knit_scope s;
    knit_rt_stats(&s0);
    knit_scope_enter(&s, knit_now() + 1000);
    knit_rt_stats(&s1);
    int err = knit_scope_exit(&s);
    knit_rt_stats(&s2);
    if (err || s1.timers_armed != s0.timers_armed + 1 ||
        s2.timers_armed != s0.timers_armed)
        die("timer_arm_cancel: the scope did not arm and disarm a timer "
            "(armed %llu -> %llu -> %llu, exit %d)",
            (unsigned long long)s0.timers_armed,
            (unsigned long long)s1.timers_armed,
            (unsigned long long)s2.timers_armed, err);
}

static int arm_cancel_main(void *arg)
{
    struct timer_loop *tl = arg;
    uint64_t ok = 0;
    check_scope_arms_timer();
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < tl->n; i++) {
        knit_scope s;
        /* A 1 s deadline: arms a wheel timer; exit cancels it unfired. */
        knit_scope_enter(&s, knit_now() + 1000);
        ok += knit_scope_exit(&s) == 0;
    }
    uint64_t t1 = now_ns();
    if (ok != tl->n)
        die("timer_arm_cancel: %llu of %llu scopes fired",
            (unsigned long long)(tl->n - ok), (unsigned long long)tl->n);
    tl->rate = (double)tl->n / ((double)(t1 - t0) * 1e-9);
    return 0;
}

/* n times: a 1 s timer is armed in the wheel and cancelled: ops/s. */
static double timer_arm_cancel(uint64_t n)
{
    struct timer_loop tl = {.n = n};
    run(arm_cancel_main, &tl);
    return tl.rate;
}

static int timeout_main(void *arg)
{
    struct timer_loop *tl = arg;
    uint64_t sum = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < tl->n; i++) {
        int r = knit_timeout(1000, return_arg, (void *)(intptr_t)i);
        if (r < 0)
            die("timeout_ready: knit_timeout: %s", strerror(-r));
        sum += (uint64_t)r;
    }
    uint64_t t1 = now_ns();
    if (sum != tl->n * (tl->n - 1) / 2)
        die("timeout_ready: sum %llu, expected %llu", (unsigned long long)sum,
            (unsigned long long)(tl->n * (tl->n - 1) / 2));
    tl->rate = (double)tl->n / ((double)(t1 - t0) * 1e-9);
    return 0;
}

/* n times: knit_timeout(1 s) around a function that returns i: ops/s. */
static double timeout_ready(uint64_t n)
{
    struct timer_loop tl = {.n = n};
    run(timeout_main, &tl);
    return tl.rate;
}

/* ---- W4: timers_sleep ---------------------------------------------------- */

/* Shared by the sleeping tasks (one worker, so plain fields suffice). */
struct sleepers {
    uint64_t n;       /* tasks */
    uint64_t done;    /* tasks whose sleep ended */
    uint64_t failed;  /* sleeps that returned an error */
    knit_notify all_done; /* the last task to wake notifies main */
    int64_t maxd;     /* longest sleep, ms */
    double spawn_ms;  /* result: time to spawn every task */
    double wall_ms;   /* result: first spawn to last wake-up */
    struct usage u0;  /* usage before the first spawn */
    struct usage u1;  /* usage after the last wake-up */
};

static struct sleepers sl;

static int sleeper(void *arg)
{
    int err = knit_sleep(delay_ms((uint64_t)(uintptr_t)arg));
    if (err)
        sl.failed++;
    if (++sl.done == sl.n)
        knit_notify_one(&sl.all_done);
    return err;
}

static int timers_sleep_main(void *arg)
{
    (void)arg;
    knit_task_opts o = task_opts(SMALL_STACK_KB);
    knit_notify_init(&sl.all_done);
    sl.maxd = 0;
    for (uint64_t i = 0; i < sl.n; i++)
        if (delay_ms(i) > sl.maxd)
            sl.maxd = delay_ms(i);
    sl.u0 = usage_now();
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < sl.n; i++) {
        knit_task *t = knit_spawn_with(&o, sleeper, (void *)(uintptr_t)i);
        if (!t)
            die("timers_sleep: knit_spawn failed at task %llu",
                (unsigned long long)i);
        knit_detach(t);
    }
    sl.spawn_ms = (double)(now_ns() - t0) * 1e-6;
    if (sl.done < sl.n && knit_notify_wait(&sl.all_done) != 0)
        die("timers_sleep: knit_notify_wait failed");
    sl.wall_ms = (double)(now_ns() - t0) * 1e-6;
    sl.u1 = usage_now();
    if (sl.failed)
        die("timers_sleep: %llu sleeps failed", (unsigned long long)sl.failed);
    return 0;
}

/* n tasks each sleep d(i) = 1 + mix64(i) % 1000 ms; one run, three lines. */
static void timers_sleep(uint64_t n)
{
    char ex[384];
    memset(&sl, 0, sizeof(sl));
    sl.n = n;
    run(timers_sleep_main, NULL);
    double user = sl.u1.user_ms - sl.u0.user_ms;
    double sys = sl.u1.sys_ms - sl.u0.sys_ms;
    snprintf(ex, sizeof(ex),
             "threads=1 n=%llu spawn_ms=%.0f maxrss_mb=%.0f cpu_user_ms=%.0f "
             "cpu_sys_ms=%.0f minflt=%ld stack_kb=%zu",
             (unsigned long long)n, sl.spawn_ms, sl.u1.maxrss_mb, user, sys,
             sl.u1.minflt - sl.u0.minflt, stack_kb(SMALL_STACK_KB));
    emit("timers_sleep_wall", sl.wall_ms, "ms", ex);
    emit("timers_sleep_over", sl.wall_ms - (double)sl.maxd,
         "ms_beyond_max_sleep", ex);
    emit("timers_sleep_cpu", user + sys, "ms_cpu", ex);
}

/* ---- W6: idle_sleep ------------------------------------------------------ */

/* Prints an idle-memory line: RSS growth per task, with the raw values. */
static void emit_idle(const char *workload, uint64_t n, uint64_t rss0,
                      uint64_t rss1)
{
    char ex[256];
    snprintf(ex, sizeof(ex),
             "threads=1 n=%llu rss_before_kb=%llu rss_after_kb=%llu "
             "stack_kb=%zu",
             (unsigned long long)n, (unsigned long long)(rss0 / 1024),
             (unsigned long long)(rss1 / 1024), stack_kb(SMALL_STACK_KB));
    emit(workload, ((double)rss1 - (double)rss0) / (double)n,
         "bytes_per_task", ex);
}

struct idle {
    uint64_t n;       /* tasks */
    uint64_t started; /* tasks that reached their sleep */
    uint64_t rss0;    /* VmRSS before the first spawn, bytes */
    uint64_t rss1;    /* VmRSS with every task parked */
};

static struct idle idle;

static int idler(void *arg)
{
    (void)arg;
    idle.started++;
    return knit_sleep(3600 * 1000); /* -ECANCELED when cancelled */
}

static int idle_sleep_main(void *arg)
{
    (void)arg;
    knit_task_opts o = task_opts(SMALL_STACK_KB);
    uint64_t n = idle.n;
    knit_task **h = malloc(n * sizeof(*h));
    if (!h)
        die("idle_sleep: out of memory");
    idle.rss0 = vmrss_bytes();
    for (uint64_t i = 0; i < n; i++) {
        h[i] = knit_spawn_with(&o, idler, NULL);
        if (!h[i])
            die("idle_sleep: knit_spawn failed at task %llu",
                (unsigned long long)i);
    }
    while (idle.started < n)
        knit_yield();
    idle.rss1 = vmrss_bytes();
    for (uint64_t i = 0; i < n; i++)
        knit_cancel(h[i]);
    uint64_t cancelled = 0;
    for (uint64_t i = 0; i < n; i++)
        cancelled += knit_join(h[i]) == -ECANCELED;
    free(h);
    if (cancelled != n)
        die("idle_sleep: %llu of %llu sleeps ended by cancellation",
            (unsigned long long)cancelled, (unsigned long long)n);
    return 0;
}

/* n tasks parked in a 1 h sleep: RSS growth per task. */
static void idle_sleep(uint64_t n)
{
    memset(&idle, 0, sizeof(idle));
    idle.n = n;
    run(idle_sleep_main, NULL);
    emit_idle("idle_sleep", n, idle.rss0, idle.rss1);
}

/* ---- W6: idle_chan ------------------------------------------------------- */

struct idle_chan {
    uint64_t n;        /* tasks, each with its own channel */
    knit_chan **chans; /* the spawner keeps the sending sides */
    uint64_t started;  /* tasks parked in recv */
    uint64_t rss0, rss1;
};

static struct idle_chan ic;

static int chan_idler(void *arg)
{
    knit_chan *c = arg;
    uint64_t v;
    ic.started++;
    int err = knit_chan_recv(c, &v);
    return err ? err : (int)(v & 0x7fffffff);
}

static int idle_chan_main(void *arg)
{
    (void)arg;
    knit_task_opts o = task_opts(SMALL_STACK_KB);
    uint64_t n = ic.n;
    knit_task **h = malloc(n * sizeof(*h));
    ic.chans = malloc(n * sizeof(*ic.chans));
    if (!h || !ic.chans)
        die("idle_chan: out of memory");
    ic.rss0 = vmrss_bytes();
    for (uint64_t i = 0; i < n; i++) {
        ic.chans[i] = knit_chan_new(sizeof(uint64_t), 1);
        h[i] = ic.chans[i] ? knit_spawn_with(&o, chan_idler, ic.chans[i])
                           : NULL;
        if (!h[i])
            die("idle_chan: out of memory at task %llu",
                (unsigned long long)i);
    }
    while (ic.started < n)
        knit_yield();
    ic.rss1 = vmrss_bytes();
    uint64_t sum = 0, want = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (knit_chan_send(ic.chans[i], &i) != 0)
            die("idle_chan: send %llu failed", (unsigned long long)i);
        want += i & 0x7fffffff;
    }
    for (uint64_t i = 0; i < n; i++) {
        int r = knit_join(h[i]);
        if (r < 0)
            die("idle_chan: task %llu: %s", (unsigned long long)i,
                strerror(-r));
        sum += (uint64_t)r;
        knit_chan_unref(ic.chans[i]);
    }
    free(h);
    free(ic.chans);
    if (sum != want)
        die("idle_chan: sum %llu, expected %llu", (unsigned long long)sum,
            (unsigned long long)want);
    return 0;
}

/* n tasks each blocked in recv on its own capacity-1 channel. */
static void idle_chan(uint64_t n)
{
    memset(&ic, 0, sizeof(ic));
    ic.n = n;
    run(idle_chan_main, NULL);
    emit_idle("idle_chan", n, ic.rss0, ic.rss1);
}

/* ---- W1/W3: wake_pingpong, chan_throughput_1p1c, chan_pingpong ---------- */

struct wake_pp {
    knit_notify a, b; /* A waits on a, B waits on b */
    uint64_t iters;   /* round trips */
    uint64_t done;    /* B's completed iterations */
    double ns;        /* result: ns per switch */
};

static int wake_b(void *arg)
{
    struct wake_pp *p = arg;
    for (uint64_t i = 0; i < p->iters; i++) {
        int err = knit_notify_wait(&p->b);
        if (err)
            return err;
        p->done++;
        knit_notify_one(&p->a);
    }
    return 0;
}

static int wake_main(void *arg)
{
    struct wake_pp *p = arg;
    knit_notify_init(&p->a);
    knit_notify_init(&p->b);
    knit_task_opts o = task_opts(0);
    knit_task *b = knit_spawn_with(&o, wake_b, p);
    if (!b)
        die("wake_pingpong: knit_spawn failed");
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < p->iters; i++) {
        knit_notify_one(&p->b);
        int err = knit_notify_wait(&p->a);
        if (err)
            die("wake_pingpong: %s", strerror(-err));
    }
    uint64_t t1 = now_ns();
    if (knit_join(b) != 0 || p->done != p->iters)
        die("wake_pingpong: %llu of %llu iterations",
            (unsigned long long)p->done, (unsigned long long)p->iters);
    p->ns = (double)(t1 - t0) / (double)(2 * p->iters);
    return 0;
}

/* A: notify(B); wait(A). B: wait(B); notify(A). n/2 iterations. */
static double wake_pingpong(uint64_t n)
{
    struct wake_pp p = {.iters = n / 2};
    run(wake_main, &p);
    return p.ns;
}

struct chan_tp {
    knit_chan *c;
    uint64_t n;
    uint64_t sum;
    double rate; /* result: messages per second */
};

static int tp_producer(void *arg)
{
    struct chan_tp *p = arg;
    for (uint64_t i = 0; i < p->n; i++) {
        int err = knit_chan_send(p->c, &i);
        if (err)
            return err;
    }
    knit_chan_close(p->c);
    return 0;
}

static int tp_main(void *arg)
{
    struct chan_tp *p = arg;
    p->c = knit_chan_new(sizeof(uint64_t), 1024);
    if (!p->c)
        die("chan_throughput_1p1c: out of memory");
    knit_task_opts o = task_opts(0);
    uint64_t t0 = now_ns();
    knit_task *prod = knit_spawn_with(&o, tp_producer, p);
    if (!prod)
        die("chan_throughput_1p1c: knit_spawn failed");
    uint64_t v, sum = 0;
    while (knit_chan_recv(p->c, &v) == 0)
        sum += v;
    uint64_t t1 = now_ns();
    if (knit_join(prod) != 0 || sum != p->n * (p->n - 1) / 2)
        die("chan_throughput_1p1c: sum %llu, expected %llu",
            (unsigned long long)sum,
            (unsigned long long)(p->n * (p->n - 1) / 2));
    knit_chan_unref(p->c);
    p->rate = (double)p->n / ((double)(t1 - t0) * 1e-9);
    return 0;
}

/* Capacity 1024, u64, one producer task and the consumer: msgs/s. */
static double chan_throughput_1p1c(uint64_t n)
{
    struct chan_tp p = {.n = n};
    run(tp_main, &p);
    return p.rate;
}

struct chan_pp {
    knit_chan *c1, *c2;
    uint64_t n;
    double ns; /* result: ns per round trip */
};

static int pp_echo(void *arg)
{
    struct chan_pp *p = arg;
    uint64_t v;
    while (knit_chan_recv(p->c1, &v) == 0)
        if (knit_chan_send(p->c2, &v))
            return -1;
    return 0;
}

static int pp_main(void *arg)
{
    struct chan_pp *p = arg;
    p->c1 = knit_chan_new(sizeof(uint64_t), 1);
    p->c2 = knit_chan_new(sizeof(uint64_t), 1);
    if (!p->c1 || !p->c2)
        die("chan_pingpong: out of memory");
    knit_task_opts o = task_opts(0);
    knit_task *b = knit_spawn_with(&o, pp_echo, p);
    if (!b)
        die("chan_pingpong: knit_spawn failed");
    uint64_t s = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < p->n; i++) {
        uint64_t v;
        if (knit_chan_send(p->c1, &i) || knit_chan_recv(p->c2, &v))
            die("chan_pingpong: channel error");
        s += v;
    }
    uint64_t t1 = now_ns();
    knit_chan_close(p->c1);
    if (knit_join(b) != 0 || s != p->n * (p->n - 1) / 2)
        die("chan_pingpong: sum %llu", (unsigned long long)s);
    knit_chan_unref(p->c1);
    knit_chan_unref(p->c2);
    p->ns = (double)(t1 - t0) / (double)p->n;
    return 0;
}

/* Two capacity-1 channels, n round trips: ns per round trip. */
static double chan_pingpong(uint64_t n)
{
    struct chan_pp p = {.n = n};
    run(pp_main, &p);
    return p.ns;
}

/* ---- W3: chan_throughput_4p1c_mt ----------------------------------------- */

#define MP_PRODUCERS 4

struct chan_mp {
    knit_chan *c;     /* capacity 1024, u64 elements */
    uint64_t per;     /* values each producer sends */
    uint64_t sum;     /* consumer: sum of what it received */
    uint64_t count;   /* consumer: messages received */
    int consumer_w;   /* the worker the consumer ran on */
    int producer_w[MP_PRODUCERS]; /* and each producer */
    double rate;      /* result: messages per second */
};

struct mp_producer_arg {
    struct chan_mp *m;
    int p;         /* producer number */
    uint64_t base; /* sends base .. base + per - 1 */
};

static int mp_producer(void *arg)
{
    struct mp_producer_arg *a = arg;
    int err = 0;
    a->m->producer_w[a->p] = knit_worker_id(); /* started: stays there */
    for (uint64_t i = a->base; i < a->base + a->m->per && !err; i++)
        err = knit_chan_send(a->m->c, &i);
    knit_chan_sender_done(a->m->c); /* the last one closes the channel */
    return err;
}

static int mp_consumer(void *arg)
{
    struct chan_mp *m = arg;
    uint64_t v;
    m->consumer_w = knit_worker_id();
    while (knit_chan_recv(m->c, &v) == 0) {
        m->sum += v;
        m->count++;
    }
    return 0;
}

static int mp_main(void *arg)
{
    struct chan_mp *m = arg;
    struct mp_producer_arg pa[MP_PRODUCERS];
    knit_task *prod[MP_PRODUCERS];
    knit_task_opts o = task_opts(0);
    m->c = knit_chan_new(sizeof(uint64_t), 1024);
    if (!m->c)
        die("chan_throughput_4p1c_mt: out of memory");
    for (int p = 0; p < MP_PRODUCERS; p++)
        knit_chan_sender_add(m->c);
    uint64_t t0 = now_ns();
    knit_task *cons = knit_spawn_with(&o, mp_consumer, m);
    if (!cons)
        die("chan_throughput_4p1c_mt: knit_spawn failed");
    for (int p = 0; p < MP_PRODUCERS; p++) {
        pa[p] = (struct mp_producer_arg){
            .m = m, .p = p, .base = (uint64_t)p * m->per};
        prod[p] = knit_spawn_with(&o, mp_producer, &pa[p]);
        if (!prod[p])
            die("chan_throughput_4p1c_mt: knit_spawn failed");
    }
    int rc = knit_join(cons);
    uint64_t t1 = now_ns();
    for (int p = 0; p < MP_PRODUCERS; p++)
        if (knit_join(prod[p]) != 0)
            rc = -1;
    uint64_t total = m->per * MP_PRODUCERS;
    if (rc != 0 || m->count != total || m->sum != total * (total - 1) / 2)
        die("chan_throughput_4p1c_mt: %llu messages summing to %llu, "
            "expected %llu summing to %llu (rc %d)",
            (unsigned long long)m->count, (unsigned long long)m->sum,
            (unsigned long long)total,
            (unsigned long long)(total * (total - 1) / 2), rc);
    knit_chan_unref(m->c);
    m->rate = (double)total / ((double)(t1 - t0) * 1e-9);
    return 0;
}

/*
 * chan_throughput_4p1c_mt: one bounded channel (capacity 1024, u64), 4
 * producer tasks each send n/4 distinct values (producer p sends
 * p*n/4 .. (p+1)*n/4 - 1), one consumer task receives and sums them all;
 * all cores (knit_config.workers = 0). Timed from spawning the consumer
 * to its end (the peers time the same span); the last producer's
 * knit_chan_sender_done closes the channel. msgs/s = 4*(n/4) / elapsed.
 */
static double chan_throughput_4p1c_mt(uint64_t n)
{
    struct chan_mp m = {.per = n / MP_PRODUCERS};
    run_workers(0, mp_main, &m);
    if (opt_placement) {
        fprintf(stderr, "knit-bench: chan_throughput_4p1c_mt %.0f msgs/s, "
                        "consumer on worker %d, producers on",
                m.rate, m.consumer_w);
        for (int p = 0; p < MP_PRODUCERS; p++)
            fprintf(stderr, " %d", m.producer_w[p]);
        fputc('\n', stderr);
    }
    return m.rate;
}

/* ---- skew_spawn_mt (knit only) ------------------------------------------- */

/* Iterations of the splitmix64 chain one skew task computes: 16-24 us
 * here (3-5 ns each, with the clock of the VM); work_us= reports the
 * measured cost of one body without the runtime. */
#define SKEW_ITERS 5000

/* The CPU-bound body: a dependent chain of mix64, no memory, no calls. */
static uint64_t skew_work(uint64_t i)
{
    uint64_t x = i;
    for (int k = 0; k < SKEW_ITERS; k++)
        x = mix64(x);
    return x;
}

struct skew {
    uint64_t n;        /* tasks */
    uint64_t want;     /* expected sum of the results */
    int workers;       /* of the runtime */
    double rate;       /* result: tasks per second */
    struct worker_count ran[MAX_WORKERS];
};

static struct skew sk;

static int skew_task(void *arg)
{
    uint64_t x = skew_work((uint64_t)(uintptr_t)arg);
    int id = knit_worker_id();
    if (id >= 0 && id < MAX_WORKERS)
        atomic_fetch_add_explicit(&sk.ran[id].n, 1, memory_order_relaxed);
    return (int)(x & 0x7fffffff);
}

/* On worker 0: spawn every task, then join them in spawn order. */
static int skew_spawner(void *arg)
{
    (void)arg;
    knit_task_opts o = task_opts(0);
    uint64_t n = sk.n;
    knit_task **h = malloc(n * sizeof(*h));
    if (!h)
        die("skew_spawn_mt: out of memory");
    if (knit_worker_id() != 0)
        die("skew_spawn_mt: the spawner runs on worker %d",
            knit_worker_id());
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        h[i] = knit_spawn_with(&o, skew_task, (void *)(uintptr_t)i);
        if (!h[i])
            die("skew_spawn_mt: knit_spawn failed at task %llu",
                (unsigned long long)i);
    }
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        int r = knit_join(h[i]);
        if (r < 0)
            die("skew_spawn_mt: join %llu: %s", (unsigned long long)i,
                strerror(-r));
        sum += (uint64_t)r;
    }
    uint64_t t1 = now_ns();
    free(h);
    if (sum != sk.want)
        die("skew_spawn_mt: sum %llu, expected %llu", (unsigned long long)sum,
            (unsigned long long)sk.want);
    sk.rate = (double)n / ((double)(t1 - t0) * 1e-9);
    return 0;
}

static int skew_main(void *arg)
{
    (void)arg;
    knit_stats st;
    knit_rt_stats(&st);
    sk.workers = st.workers;
    knit_task *t = knit_spawn_on(0, NULL, skew_spawner, NULL);
    if (!t)
        die("skew_spawn_mt: knit_spawn_on failed");
    return knit_join(t);
}

/* One repetition: its rate and where the tasks ran. */
struct skew_rep {
    double rate;
    uint64_t ran[MAX_WORKERS];
};

static int cmp_skew_rep(const void *a, const void *b)
{
    return cmp_double(&((const struct skew_rep *)a)->rate,
                      &((const struct skew_rep *)b)->rate);
}

/* @reps fresh runtimes with @workers workers, sorted by rate into @out. */
static void skew_reps(int workers, int reps, struct skew_rep *out)
{
    for (int r = 0; r < reps; r++) {
        for (int w = 0; w < MAX_WORKERS; w++)
            atomic_store(&sk.ran[w].n, 0);
        run_workers(workers, skew_main, NULL);
        uint64_t total = 0;
        out[r].rate = sk.rate;
        for (int w = 0; w < MAX_WORKERS; w++) {
            out[r].ran[w] = atomic_load(&sk.ran[w].n);
            total += out[r].ran[w];
        }
        if (total != sk.n)
            die("skew_spawn_mt: %llu of %llu tasks counted",
                (unsigned long long)total, (unsigned long long)sk.n);
    }
    qsort(out, (size_t)reps, sizeof(out[0]), cmp_skew_rep);
}

/*
 * skew_spawn_mt (knit only): a task pinned on worker 0 (knit_spawn_on)
 * spawns n CPU-bound tasks, each a chain of SKEW_ITERS mix64 (~20 us, no
 * blocking, result checked), then joins them in spawn order. Only
 * stealing from worker 0's queue of unstarted tasks can spread them.
 * Runs reps with one worker, then reps on all cores; prints the median
 * all-core rate (tasks/s) with the 1-worker median (rate_1w=), the
 * speed-up, and how many tasks ran on each worker in the median
 * all-core rep (ran_wI=). With an even reps, "median" is the upper of
 * the two middle reps here (the counts must come from one rep).
 */
static void skew_spawn_mt(uint64_t n, int reps)
{
    static struct skew_rep one[MAX_REPS], all[MAX_REPS];
    char ex[1024];
    memset(&sk, 0, sizeof(sk));
    sk.n = n;
    /* The expected sum, and the bare cost of a task body. */
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++)
        sk.want += skew_work(i) & 0x7fffffff;
    double work_us = (double)(now_ns() - t0) * 1e-3 / (double)n;

    skew_reps(1, reps, one);
    skew_reps(0, reps, all);
    int nw = sk.workers;
    const struct skew_rep *m1 = &one[reps / 2];
    const struct skew_rep *mn = &all[reps / 2];
    int len = snprintf(ex, sizeof(ex),
                       "threads=%d n=%llu work_us=%.1f rate_1w=%.0f "
                       "speedup=%.2f",
                       nw, (unsigned long long)n, work_us, m1->rate,
                       mn->rate / m1->rate);
    for (int w = 0; w < nw && w < MAX_WORKERS && len < (int)sizeof(ex); w++)
        len += snprintf(ex + len, sizeof(ex) - (size_t)len, " ran_w%d=%llu",
                        w, (unsigned long long)mn->ran[w]);
    if (len < (int)sizeof(ex))
        snprintf(ex + len, sizeof(ex) - (size_t)len,
                 " reps=%d min=%.0f max=%.0f", reps, all[0].rate,
                 all[reps - 1].rate);
    emit("skew_spawn_mt", mn->rate, "tasks_per_s", ex);
}

/* ---- W5: echo_server ----------------------------------------------------- */

static int echo_port;

/* One connection: echo whatever arrives (4096-byte buffer). */
static int echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = knit_read(fd, buf, sizeof(buf))) > 0)
        if (knit_write_all(fd, buf, (size_t)n) < 0)
            break;
    knit_close(fd);
    return 0;
}

static int echo_accept(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    knit_task_opts o = task_opts(16);
    for (;;) {
        int fd = knit_tcp_accept(lfd, NULL, NULL); /* TCP_NODELAY set */
        if (fd < 0)
            return fd == -ECANCELED ? 0 : fd;
        knit_task *t = knit_spawn_with(&o, echo_conn, (void *)(intptr_t)fd);
        if (!t) {
            knit_close(fd);
            continue;
        }
        knit_detach(t);
    }
}

/* Serves until SIGTERM; the runtime's end cancels the connections. */
static int echo_main(void *arg)
{
    (void)arg;
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    int err = knit_signal_watch(&term);
    if (err)
        die("echo_server: knit_signal_watch: %s", strerror(-err));
    int lfd = knit_tcp_listen("127.0.0.1", echo_port, 4096);
    if (lfd < 0)
        die("echo_server: listen on port %d: %s", echo_port, strerror(-lfd));
    knit_task *acc = knit_spawn(echo_accept, (void *)(intptr_t)lfd);
    if (!acc)
        die("echo_server: knit_spawn failed");
    knit_signal_wait(&term);
    knit_cancel(acc);
    knit_join(acc);
    knit_close(lfd);
    return 0;
}

static void echo_server(void)
{
    run(echo_main, NULL);
}

static _Noreturn void usage(void)
{
    fprintf(stderr,
            "usage: knit-bench <workload> [--n N] [--reps R] [--port P] "
            "[--stack-kb K] [--placement 1]\n"
            "workloads: yield_pingpong wake_pingpong spawn_join_1t "
            "spawn_join_mt chan_throughput_1p1c chan_throughput_4p1c_mt "
            "chan_pingpong timer_arm_cancel timeout_ready timers_sleep "
            "idle_chan idle_sleep echo_server skew_spawn_mt\n");
    exit(1);
}

/* Parses a positive integer no larger than @max, or exits. */
static uint64_t parse_count(const char *flag, const char *s, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v == 0 || v > max) {
        fprintf(stderr, "knit-bench: bad value for %s: %s\n", flag, s);
        usage();
    }
    return v;
}

int main(int argc, char **argv)
{
    uint64_t n = 0;
    int reps = DEFAULT_REPS;
    char ex[128];

    if (argc < 2)
        usage();
    const char *w = argv[1];
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            fprintf(stderr, "knit-bench: %s needs a value\n", argv[i]);
            usage();
        }
        if (!strcmp(argv[i], "--n"))
            n = parse_count("--n", argv[i + 1], UINT64_MAX);
        else if (!strcmp(argv[i], "--reps"))
            reps = (int)parse_count("--reps", argv[i + 1], MAX_REPS);
        else if (!strcmp(argv[i], "--port"))
            echo_port = (int)parse_count("--port", argv[i + 1], 65535);
        else if (!strcmp(argv[i], "--placement"))
            opt_placement = parse_count("--placement", argv[i + 1], 1);
        else if (!strcmp(argv[i], "--stack-kb"))
            opt_stack_kb = parse_count("--stack-kb", argv[i + 1], 1u << 20);
        else {
            fprintf(stderr, "knit-bench: unknown flag %s\n", argv[i]);
            usage();
        }
    }
#define N_OR(d) (n ? n : (uint64_t)(d))
    if (!strcmp(w, "yield_pingpong")) {
        n = N_OR(10000000);
        if (n < 2)
            die("yield_pingpong needs --n >= 2");
        snprintf(ex, sizeof(ex),
                 "threads=1 n=%llu impl=knit_yield stack_kb=%zu",
                 (unsigned long long)n, stack_kb(0));
        rep(w, "ns_per_switch", reps, ex, yield_pingpong, n);
    } else if (!strcmp(w, "spawn_join_1t")) {
        /* Task i returns i as an int. */
        n = N_OR(1000000);
        if (n > (uint64_t)INT_MAX + 1)
            die("spawn_join_1t needs --n <= %d", INT_MAX);
        snprintf(ex, sizeof(ex),
                 "threads=1 n=%llu impl=knit_spawn+knit_join stack_kb=%zu",
                 (unsigned long long)n, stack_kb(0));
        rep(w, "tasks_per_s", reps, ex, spawn_join_1t, n);
    } else if (!strcmp(w, "timer_arm_cancel")) {
        n = N_OR(1000000);
        snprintf(ex, sizeof(ex),
                 "threads=1 n=%llu impl=scope_enter(now+1s)+scope_exit",
                 (unsigned long long)n);
        rep(w, "ops_per_s", reps, ex, timer_arm_cancel, n);
    } else if (!strcmp(w, "timeout_ready")) {
        n = N_OR(1000000);
        if (n > (uint64_t)INT_MAX + 1)
            die("timeout_ready needs --n <= %d", INT_MAX);
        snprintf(ex, sizeof(ex),
                 "threads=1 n=%llu impl=knit_timeout(1s,return_i)",
                 (unsigned long long)n);
        rep(w, "ops_per_s", reps, ex, timeout_ready, n);
    } else if (!strcmp(w, "wake_pingpong")) {
        n = N_OR(10000000);
        snprintf(ex, sizeof(ex),
                 "threads=1 n=%llu impl=knit_notify_one+knit_notify_wait",
                 (unsigned long long)n);
        rep(w, "ns_per_switch", reps, ex, wake_pingpong, n);
    } else if (!strcmp(w, "chan_throughput_1p1c")) {
        n = N_OR(10000000);
        snprintf(ex, sizeof(ex),
                 "threads=1 n=%llu cap=1024 impl=knit_chan_send+recv",
                 (unsigned long long)n);
        rep(w, "msgs_per_s", reps, ex, chan_throughput_1p1c, n);
    } else if (!strcmp(w, "spawn_join_mt")) {
        n = N_OR(1000000);
        if (n > (uint64_t)INT_MAX + 1)
            die("spawn_join_mt needs --n <= %d", INT_MAX);
        snprintf(ex, sizeof(ex),
                 "threads=%d n=%llu impl=knit_spawn+knit_join stack_kb=%zu",
                 ncores(), (unsigned long long)n, stack_kb(0));
        rep(w, "tasks_per_s", reps, ex, spawn_join_mt, n);
    } else if (!strcmp(w, "chan_throughput_4p1c_mt")) {
        n = N_OR(10000000);
        if (n < MP_PRODUCERS)
            die("chan_throughput_4p1c_mt needs --n >= %d", MP_PRODUCERS);
        snprintf(ex, sizeof(ex),
                 "threads=%d n=%llu cap=1024 producers=%d "
                 "impl=knit_chan_send+recv",
                 ncores(), (unsigned long long)n, MP_PRODUCERS);
        rep(w, "msgs_per_s", reps, ex, chan_throughput_4p1c_mt, n);
    } else if (!strcmp(w, "skew_spawn_mt")) {
        skew_spawn_mt(N_OR(50000), reps);
    } else if (!strcmp(w, "chan_pingpong")) {
        n = N_OR(1000000);
        snprintf(ex, sizeof(ex),
                 "threads=1 n=%llu cap=1 impl=knit_chan_send+recv",
                 (unsigned long long)n);
        rep(w, "ns_per_roundtrip", reps, ex, chan_pingpong, n);
    } else if (!strcmp(w, "echo_server")) {
        if (!echo_port)
            die("echo_server needs --port P");
        echo_server();
    } else if (!strcmp(w, "timers_sleep")) {
        timers_sleep(N_OR(1000000));
    } else if (!strcmp(w, "idle_chan")) {
        idle_chan(N_OR(100000));
    } else if (!strcmp(w, "idle_sleep")) {
        idle_sleep(N_OR(100000));
    } else {
        /* Not implemented here (or unknown): the kit skips status 2. */
        return 2;
    }
#undef N_OR
    return 0;
}
