// SPDX-License-Identifier: MIT
/*
 * knit_handle: spawning into a runtime from any thread (task.h).
 *
 * A handle is refcounted and outlives its runtime: the runtime holds one
 * reference and, when its loops have ended, closes it (rt = NULL) under
 * the handle's lock. A spawn from outside checks the runtime under that
 * lock and posts its request to worker 0's inbox while still holding it,
 * so no poster touches a worker once the handle is closed (the same rule
 * as the inbox's own: a poster leaves the worker alone once it unlocks).
 *
 * Requests also sit on the handle's pending list until worker 0 runs
 * them: a request posted after worker 0's last drain is freed by the
 * close, never run (like any task not started when main returned).
 *
 * Lock order: the runtime lock, then a handle's lock, then an inbox lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/list.h"
#include "core/remote.h"
#include "core/sched.h"
#include "core/stack.h"

struct knit_handle {
    pthread_mutex_t lock;
    atomic_int refs;
    struct knit_rt *rt;       /* NULL once closed (lock) */
    struct knit_list pending; /* struct spawn_req.link, not yet run (lock) */
};

/* A spawn handed to worker 0. */
struct spawn_req {
    struct knit_remote remote; /* in worker 0's inbox */
    struct knit_list link;     /* on the handle's pending list */
    knit_handle *h;
    knit_fn fn;
    void *arg;
    size_t stack_size;
    bool named;
    char name[32];
};

static knit_handle *handle_new(struct knit_rt *rt)
{
    knit_handle *h = knit__calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    pthread_mutex_init(&h->lock, NULL);
    atomic_init(&h->refs, 1); /* the runtime's */
    h->rt = rt;
    knit_list_init(&h->pending);
    return h;
}

static void handle_free(knit_handle *h)
{
    pthread_mutex_destroy(&h->lock);
    free(h);
}

knit_handle *knit_handle_get(void)
{
    struct knit_worker *w = knit__worker();
    if (!w)
        return NULL;
    struct knit_rt *rt = w->rt;
    knit_handle *h = atomic_load_explicit(&rt->handle, memory_order_acquire);
    if (!h) {
        knit_handle *mine = handle_new(rt);
        if (!mine)
            return NULL;
        /* Two workers may race to make it: the loser frees its own. */
        if (atomic_compare_exchange_strong(&rt->handle, &h, mine))
            h = mine;
        else
            handle_free(mine);
    }
    atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
    return h;
}

void knit_handle_unref(knit_handle *h)
{
    if (h && atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1)
        handle_free(h);
}

/* Worker 0 runs a request (its inbox drain): spawn, unless main has
 * returned, in which case the task would only be cancelled unstarted. */
static void spawn_remote(struct knit_remote *r)
{
    struct spawn_req *q = knit_container_of(r, struct spawn_req, remote);
    knit_handle *h = q->h;
    pthread_mutex_lock(&h->lock);
    knit_list_remove(&q->link);
    struct knit_rt *rt = h->rt;
    pthread_mutex_unlock(&h->lock);
    if (rt && !atomic_load(&rt->main_done)) {
        knit_task_opts o = {.name = q->named ? q->name : NULL,
                            .stack_size = q->stack_size};
        knit_task *t = knit__spawn(knit__worker(), &o, q->fn, q->arg);
        /* The caller was told 0: out of memory here is said, not lost
         * in silence. */
        if (t)
            knit_detach(t);
        else
            fprintf(stderr, "knit: knit_handle_spawn: out of memory, task "
                            "\"%s\" handed over from another thread not "
                            "started\n", q->name);
    }
    free(q);
    knit_handle_unref(h);
}

int knit_handle_spawn(knit_handle *h, const knit_task_opts *o, knit_fn fn,
                      void *arg)
{
    knit_task_opts opts = o ? *o : (knit_task_opts){0};
    size_t size = opts.stack_size;
    if (!h || !fn || opts.lazy ||
        (size && (size < KNIT_STACK_MIN || size > KNIT_STACK_MAX)))
        return -EINVAL;
    struct knit_worker *self = knit__worker();
    pthread_mutex_lock(&h->lock);
    struct knit_rt *rt = h->rt;
    if (!rt || atomic_load(&rt->main_done)) {
        pthread_mutex_unlock(&h->lock);
        return -ESHUTDOWN;
    }
    if (self && self->rt == rt) {
        /* A worker of this runtime: spawn here (the runtime cannot end
         * while one of its own tasks runs). */
        pthread_mutex_unlock(&h->lock);
        knit_task *t = knit__spawn(self, &opts, fn, arg);
        if (!t)
            return -ENOMEM;
        knit_detach(t);
        return 0;
    }
    struct spawn_req *q = knit__malloc(sizeof(*q));
    if (!q) {
        pthread_mutex_unlock(&h->lock);
        return -ENOMEM;
    }
    *q = (struct spawn_req){.h = h, .fn = fn, .arg = arg,
                            .stack_size = size, .named = opts.name != NULL};
    if (opts.name) {
        strncpy(q->name, opts.name, sizeof(q->name) - 1);
        q->name[sizeof(q->name) - 1] = '\0';
    }
    atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed); /* q's */
    knit_list_push_back(&h->pending, &q->link);
    knit__remote_post(&rt->workers[0], &q->remote, spawn_remote);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

void knit__handle_close(struct knit_rt *rt)
{
    knit_handle *h = atomic_load(&rt->handle);
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->rt = NULL;
    /* Posted after worker 0's last drain: never run. */
    struct knit_list left;
    knit_list_init(&left);
    knit_list_splice_back(&left, &h->pending);
    pthread_mutex_unlock(&h->lock);
    int dropped = 0;
    struct knit_list *it, *next;
    knit_list_for_each_safe(it, next, &left)
    {
        free(knit_container_of(it, struct spawn_req, link));
        dropped++;
    }
    /* Their references, then the runtime's (which kept @h alive so far,
     * and may be the last). */
    atomic_fetch_sub_explicit(&h->refs, dropped, memory_order_relaxed);
    knit_handle_unref(h);
}
