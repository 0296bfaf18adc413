// SPDX-License-Identifier: MIT
/*
 * The blocking pools (knit/blocking.h).
 *
 * A blocking job is a knit_task without a stack: knit_join, knit_detach,
 * groups and select's join case work on it unchanged. The spawning worker
 * queues it on the pool of its class; a pool thread runs fn(arg) and
 * posts the task's completion back to that worker's inbox, where the task
 * ends like any other (the joiner is woken in worker context, so the task
 * machinery stays single-threaded). The mutex hand-off and the inbox
 * order the job's writes before the worker reads the result.
 *
 * Threads start on demand, up to the class cap, and leave after
 * IDLE_SECONDS without work; knit_run waits for them at its end.
 */
#include "core/alloc.h"
#include "blocking/pool.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/compiler.h"
#include "core/remote.h"
#include "core/sched.h"
#include "knit/blocking.h"

#define IDLE_SECONDS 10

/* Caps for the pools that are not the user's (cfg.max_blocking_threads). */
#define DNS_THREADS 16
#define FILE_THREADS 64

static void job_done(struct knit_remote *r)
{
    struct knit_task *t = knit_container_of(r, struct knit_task, remote);
    t->worker->rt->blocking_inflight--;
    knit__task_end(t, t->result);
}

static void *pool_thread(void *arg)
{
    struct knit_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (knit_list_is_empty(&p->queue) && !p->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += IDLE_SECONDS;
            p->nidle++;
            int err = pthread_cond_timedwait(&p->cond, &p->lock, &ts);
            p->nidle--;
            if (err == ETIMEDOUT && knit_list_is_empty(&p->queue))
                goto out;
        }
        if (knit_list_is_empty(&p->queue))
            goto out; /* stopping */
        struct knit_list *n = knit_list_pop_front(&p->queue);
        struct knit_task *t = knit_container_of(n, struct knit_task, run_link);
        /* Only run_link (under the lock), result and remote are touched
         * here; the worker owns every other field. */
        pthread_mutex_unlock(&p->lock);
        int r = t->fn(t->arg);
        t->result = r;
        knit__remote_post(t->worker, &t->remote, job_done);
        pthread_mutex_lock(&p->lock);
    }
out:
    p->nthreads--;
    pthread_cond_broadcast(&p->gone);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void pool_init(struct knit_pool *p, int max, const char *name)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_cond_init(&p->gone, NULL);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->lock, NULL);
    knit_list_init(&p->queue);
    p->nthreads = p->nidle = 0;
    p->max = max;
    p->stop = false;
    p->name = name;
}

int knit__pools_init(struct knit_rt *rt)
{
    rt->pools = knit__calloc(KNIT_POOL_CLASSES, sizeof(*rt->pools));
    if (!rt->pools)
        return -ENOMEM;
    pool_init(&rt->pools[KNIT_POOL_USER], rt->cfg.max_blocking_threads,
              "knit-blocking");
    pool_init(&rt->pools[KNIT_POOL_DNS], DNS_THREADS, "knit-dns");
    pool_init(&rt->pools[KNIT_POOL_FILE], FILE_THREADS, "knit-file");
    return 0;
}

void knit__pools_fini(struct knit_rt *rt)
{
    if (!rt->pools)
        return;
    for (int i = 0; i < KNIT_POOL_CLASSES; i++) {
        struct knit_pool *p = &rt->pools[i];
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->cond);
        while (p->nthreads > 0)
            pthread_cond_wait(&p->gone, &p->lock);
        pthread_mutex_unlock(&p->lock);
        pthread_cond_destroy(&p->cond);
        pthread_cond_destroy(&p->gone);
        pthread_mutex_destroy(&p->lock);
    }
    free(rt->pools);
    rt->pools = NULL;
}

struct knit_task *knit__spawn_blocking_in(enum knit_pool_class cls, knit_fn fn,
                                          void *arg)
{
    struct knit_worker *w = knit__worker();
    if (!w || !w->current)
        knit__panic("knit_spawn_blocking called outside a task");
    struct knit_task *t = knit__task_new_stackless(w, fn, arg);
    if (!t)
        return NULL;
    t->blocking = true;
    t->pool_class = (uint8_t)cls;
    struct knit_pool *p = &w->rt->pools[cls];
    pthread_mutex_lock(&p->lock);
    bool need_thread = p->nidle == 0 && p->nthreads < p->max;
    if (need_thread) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        /* Pool threads take no signals: they stay for knit_signal_wait. */
        sigset_t all, old;
        knit__sigset_async(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&th, &attr, pool_thread, p) == 0)
            p->nthreads++;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (p->nthreads == 0) {
            /* No thread could start and none exists to take the job. */
            pthread_mutex_unlock(&p->lock);
            knit__lock(w);
            knit__task_set_state(t, KNIT_TASK_DONE); /* never live after all */
            knit__count_end(w);
            knit__task_unref(t); /* its worker's reference */
            knit__task_unref(t); /* and the handle's: none is returned */
            knit__unlock(w);
            return NULL;
        }
    }
    knit_list_push_back(&p->queue, &t->run_link);
    t->queued = true;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    KNIT_LOCKED_VOID(w->rt->blocking_inflight++);
    return t;
}

knit_task *knit_spawn_blocking(knit_fn fn, void *arg)
{
    return knit__spawn_blocking_in(KNIT_POOL_USER, fn, arg);
}

void knit__blocking_cancel(struct knit_task *t)
{
    /* A job no thread has taken never runs; a running one cannot be
     * interrupted and ends in its own time. */
    if (knit__pool_unqueue(t))
        knit__task_end(t, -ECANCELED);
}

bool knit__pool_unqueue(struct knit_task *t)
{
    struct knit_pool *p = &t->worker->rt->pools[t->pool_class];
    pthread_mutex_lock(&p->lock);
    bool queued = knit_list_is_linked(&t->run_link);
    if (queued) {
        knit_list_remove(&t->run_link);
        t->queued = false;
    }
    pthread_mutex_unlock(&p->lock);
    if (queued)
        t->worker->rt->blocking_inflight--;
    return queued;
}
