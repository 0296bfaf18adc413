// SPDX-License-Identifier: MIT
/*
 * The worker inbox (remote.h): a mutex-protected FIFO of requests plus the
 * driver's wake-up. The worker checks a flag without the lock on every
 * loop iteration, so an empty inbox costs one relaxed load.
 */
#include "core/remote.h"

#include <pthread.h>
#include <stdatomic.h>

#include "core/sched.h"

void knit__remote_post(struct knit_worker *w, struct knit_remote *r,
                       knit_remote_fn fn)
{
    r->fn = fn;
    r->next = NULL;
    pthread_mutex_lock(&w->inbox_lock);
    if (w->inbox_tail)
        w->inbox_tail->next = r;
    else
        w->inbox_head = r;
    w->inbox_tail = r;
    /* Only the first request since the last drain signals the driver:
     * the signal stays pending until the worker polls, and its drain
     * (after that poll, under this lock) takes every request posted
     * since. Release pairs with the acquire in knit__remote_drain. */
    bool signalled = atomic_load_explicit(&w->inbox_pending,
                                          memory_order_relaxed);
    atomic_store_explicit(&w->inbox_pending, true, memory_order_release);
    /* Wake under the lock: once a poster has unlocked, it never touches
     * the worker again, so the worker may be torn down (see rt.c). */
    if (!signalled)
        w->io.ops->wake(&w->io);
    pthread_mutex_unlock(&w->inbox_lock);
}

void knit__remote_drain(struct knit_worker *w)
{
    if (!atomic_load_explicit(&w->inbox_pending, memory_order_acquire))
        return;
    pthread_mutex_lock(&w->inbox_lock);
    struct knit_remote *r = w->inbox_head;
    w->inbox_head = w->inbox_tail = NULL;
    atomic_store_explicit(&w->inbox_pending, false, memory_order_relaxed);
    pthread_mutex_unlock(&w->inbox_lock);
    while (r) {
        struct knit_remote *next = r->next; /* r may be gone after fn */
        r->fn(r);
        r = next;
    }
}
