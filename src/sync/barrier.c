// SPDX-License-Identifier: MIT
/*
 * knit_barrier (knit/sync.h): the number of tasks per generation, how many
 * have arrived in the current one and the queue of those waiting.
 *
 * The task whose arrival completes a generation is the leader: it wakes
 * the others, resets the count for the next generation and returns 1
 * without waiting. Every waiter woken that way belongs to the finished
 * generation, and waiters of the next one queue behind on the same (then
 * empty) list. A waiter that is cancelled or times out while parked has
 * not been woken by a leader, so it still belongs to the current
 * generation: its cancel hook unlinks it and takes its arrival back, and
 * the barrier then needs another task to trip, exactly as if the cancelled
 * one had never come.
 *
 * Threading: every public operation runs under the runtime lock (core/
 * sched.h; a no-op with one worker), which a waiter releases while parked.
 */
#include <errno.h>
#include <string.h>

#include "core/compiler.h"
#include "core/sched.h"
#include "sync/sync.h"

struct barrier {
    unsigned n;               /* tasks per generation; 0 counts as 1 */
    unsigned arrived;         /* waiting in the current generation */
    struct knit_list waiters; /* knit_waiter.link of the arrived */
};

_Static_assert(sizeof(knit_barrier) >= sizeof(struct barrier), "grow");

static inline struct barrier *impl(knit_barrier *b)
{
    return (struct barrier *)(void *)b;
}

static void waiter_cancel(struct knit_waiter *w)
{
    struct barrier *x = (struct barrier *)w->obj;
    knit__waiter_unlink(w);
    x->arrived--;
}

void knit_barrier_init(knit_barrier *b, unsigned n)
{
    memset(b, 0, sizeof(*b));
    impl(b)->n = n;
}

static int barrier_wait(struct barrier *x)
{
    struct knit_task *t = knit__task();
    if (knit_unlikely(!t))
        knit__panic("knit_barrier_wait called outside a task");
    int err = knit__scope_err(t);
    if (knit_unlikely(err))
        return err;
    knit__wq_lazy(&x->waiters);
    if (++x->arrived >= x->n) {
        x->arrived = 0;
        knit__wq_wake_all(&x->waiters, 0);
        return 1;
    }
    struct knit_waiter w;
    knit__waiter_init(&w, "barrier", x, waiter_cancel);
    knit_list_push_back(&x->waiters, &w.link);
    return knit__wait(&w);
}

int knit_barrier_wait(knit_barrier *b)
{
    return KNIT_LOCKED(barrier_wait(impl(b)));
}
