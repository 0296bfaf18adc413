// SPDX-License-Identifier: MIT
/*
 * The worker inbox (remote.h): a lock-free multi-producer stack plus the
 * driver's wake-up. A poster pushes with a compare-and-swap; the worker
 * takes the whole stack with one exchange and runs it oldest first. The
 * worker checks it with one load on every loop iteration, so an empty
 * inbox costs one relaxed load.
 *
 * Wake-ups: only a push onto an empty inbox signals the driver (a
 * poster holding the runtime lock, after its outermost unlock). The
 * worker drains after every poll (a poll may consume the signal), and
 * the drain takes everything pushed until then; a push after the drain
 * finds the inbox empty again and signals. A signal may come after the
 * drain already took its request (a harmless extra poll), never later
 * than the worker's next sleep, since the driver's eventfd keeps it.
 *
 * Teardown: after its push a poster still touches the worker's driver,
 * so it is counted in inbox_posters from before the push to after the
 * wake, and worker_fini (rt.c) waits for the count to drop to zero. The
 * count is raised before the push, so a worker that took the request
 * (acquire on the exchange) sees it raised.
 */
#include "core/remote.h"

#include <sched.h>
#include <stdatomic.h>

#include "core/sched.h"

void knit__remote_post(struct knit_worker *w, struct knit_remote *r,
                       knit_remote_fn fn)
{
    r->fn = fn;
    atomic_fetch_add_explicit(&w->inbox_posters, 1, memory_order_relaxed);
    struct knit_remote *head =
        atomic_load_explicit(&w->inbox, memory_order_relaxed);
    do
        r->next = head;
    while (!atomic_compare_exchange_weak_explicit(
        &w->inbox, &head, r, memory_order_release, memory_order_relaxed));
    if (!head) {
        /* A worker holding the runtime lock signals after its outermost
         * unlock instead: a system call inside the lock makes every other
         * worker wait for it. Its loop has not ended, so the target's
         * driver is still open then (see knit__wake_one_later). */
        struct knit_worker *self = knit__worker();
        if (self && self->locked > 0 && self->rt == w->rt)
            knit__wake_later(self, w);
        else
            w->io.ops->wake(&w->io);
    }
    atomic_fetch_sub_explicit(&w->inbox_posters, 1, memory_order_release);
}

bool knit__remote_pending(struct knit_worker *w)
{
    return atomic_load_explicit(&w->inbox, memory_order_acquire) != NULL;
}

void knit__remote_drain(struct knit_worker *w)
{
    if (!atomic_load_explicit(&w->inbox, memory_order_relaxed))
        return;
    struct knit_remote *r =
        atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
    /* Newest first as pushed: reverse into posting order. */
    struct knit_remote *fifo = NULL;
    while (r) {
        struct knit_remote *next = r->next;
        r->next = fifo;
        fifo = r;
        r = next;
    }
    while (fifo) {
        struct knit_remote *next = fifo->next; /* fifo may be gone after fn */
        fifo->fn(fifo);
        fifo = next;
    }
}

void knit__remote_quiesce(struct knit_worker *w)
{
    while (atomic_load_explicit(&w->inbox_posters, memory_order_acquire))
        sched_yield();
}
