// SPDX-License-Identifier: MIT
/*
 * The stall detector: a thread that looks at every worker a few times per
 * cfg.stall_ms and names a task that has held its worker longer than that
 * without switching (a CPU-bound loop, a blocking syscall).
 *
 * It costs the workers nothing but two plain stores per switch (see
 * publish() in sched.c). The report is made once per stall episode.
 * The report reads the task's id and name from its struct, which the
 * worker may free and reuse the moment the stall ends; w->inspecting is a
 * hazard pointer that makes freeing a task struct wait while the monitor reads.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/sched.h"

struct watch {
    uint64_t switches; /* the worker's switch count when last seen */
    int64_t since;     /* when that count was first seen, ms */
    bool reported;     /* this episode has been reported */
};

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void check(struct knit_rt *rt, struct knit_worker *w, struct watch *s,
                  int64_t now)
{
    uint64_t sw = atomic_load_explicit(&w->switches_pub, memory_order_relaxed);
    struct knit_task *t =
        atomic_load_explicit(&w->running, memory_order_acquire);
    if (!t || sw != s->switches) {
        s->switches = sw;
        s->since = now;
        s->reported = false;
        return;
    }
    int64_t held = now - s->since;
    if (held < rt->cfg.stall_ms || s->reported)
        return;
    /* Announce the read, then check t still runs (see task_free_now in task.c). */
    atomic_store_explicit(&w->inspecting, t, memory_order_relaxed);
    atomic_exchange(&w->inspect_order, 0);
    bool still = atomic_load_explicit(&w->running, memory_order_relaxed) == t &&
                 atomic_load_explicit(&w->switches_pub,
                                      memory_order_relaxed) == sw;
    char name[sizeof(t->name)];
    uint64_t id = 0;
    if (still) {
        id = t->id;
        memcpy(name, t->name, sizeof(name));
        name[sizeof(name) - 1] = '\0';
    }
    atomic_store_explicit(&w->inspecting, NULL, memory_order_release);
    if (!still)
        return;
    s->reported = true;
    atomic_fetch_add(&rt->stalls, 1);
    fprintf(stderr,
            "knit: stall: task %llu \"%s\" has held worker %d for %lld "
            "ms without yielding (limit %d ms)\n",
            (unsigned long long)id, name, w->id, (long long)held,
            rt->cfg.stall_ms);
}

static void *monitor_main(void *arg)
{
    struct knit_rt *rt = arg;
    struct watch *watches = knit__calloc((size_t)rt->nworkers, sizeof(*watches));
    if (!watches)
        return NULL;
    int64_t period = rt->cfg.stall_ms / 4 > 0 ? rt->cfg.stall_ms / 4 : 1;
    pthread_mutex_lock(&rt->monitor_lock);
    while (!atomic_load(&rt->monitor_stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)(period % 1000) * 1000000L;
        ts.tv_sec += period / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&rt->monitor_cond, &rt->monitor_lock, &ts);
        int64_t now = real_ms();
        for (int i = 0; i < rt->nworkers; i++)
            check(rt, &rt->workers[i], &watches[i], now);
    }
    pthread_mutex_unlock(&rt->monitor_lock);
    free(watches);
    return NULL;
}

int knit__monitor_start(struct knit_rt *rt)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rt->monitor_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&rt->monitor_lock, NULL);
    atomic_store(&rt->monitor_stop, false);
    /* The monitor takes no signals: they stay for knit_signal_wait. */
    sigset_t all, old;
    knit__sigset_async(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&rt->monitor, NULL, monitor_main, rt);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        pthread_cond_destroy(&rt->monitor_cond);
        pthread_mutex_destroy(&rt->monitor_lock);
        return -err;
    }
    rt->monitor_running = true;
    return 0;
}

void knit__monitor_stop(struct knit_rt *rt)
{
    if (!rt->monitor_running)
        return;
    pthread_mutex_lock(&rt->monitor_lock);
    atomic_store(&rt->monitor_stop, true);
    pthread_cond_signal(&rt->monitor_cond);
    pthread_mutex_unlock(&rt->monitor_lock);
    pthread_join(rt->monitor, NULL);
    pthread_cond_destroy(&rt->monitor_cond);
    pthread_mutex_destroy(&rt->monitor_lock);
    rt->monitor_running = false;
}
