// SPDX-License-Identifier: MIT
/*
 * knit_mutex (knit/sync.h): an owner and a FIFO queue of waiters.
 *
 * Unlock never makes the mutex free while tasks wait: it hands ownership
 * to the first waiter and wakes it, so a task that unlocks and locks again
 * at once queues behind the waiters (no barging, no starvation). Hence
 * "owner == NULL" implies an empty queue, and lock and try_lock need to
 * look at the owner only. A waiter that is cancelled was never handed the
 * mutex (a handed-over waiter is runnable, and scopes only cancel parked
 * waiters), so its cancel hook only unlinks it.
 *
 * Threading: every public operation runs under the runtime lock (core/
 * sched.h; a no-op with one worker), which a waiter releases while parked.
 */
#include <errno.h>
#include <string.h>

#include "core/compiler.h"
#include "core/sched.h"
#include "sync/sync.h"

struct mutex {
    struct knit_task *owner;  /* the holder, NULL when unlocked */
    struct knit_list waiters; /* knit_waiter.link of lockers, FIFO */
};

_Static_assert(sizeof(knit_mutex) >= sizeof(struct mutex), "grow");

static inline struct mutex *impl(knit_mutex *m)
{
    return (struct mutex *)(void *)m;
}

static struct knit_task *self(const char *fn)
{
    struct knit_task *t = knit__task();
    if (knit_unlikely(!t))
        knit__panic("%s called outside a task", fn);
    return t;
}

void knit_mutex_init(knit_mutex *m)
{
    memset(m, 0, sizeof(*m));
}

static int try_lock(struct mutex *x)
{
    struct knit_task *t = self("knit_mutex_try_lock");
    if (x->owner)
        return -EAGAIN;
    x->owner = t;
    return 0;
}

int knit_mutex_try_lock(knit_mutex *m)
{
    return KNIT_LOCKED(try_lock(impl(m)));
}

static int lock(struct mutex *x)
{
    struct knit_task *t = self("knit_mutex_lock");
    int err = knit__scope_err(t);
    if (knit_unlikely(err))
        return err;
    if (knit_likely(!x->owner)) {
        x->owner = t;
        return 0;
    }
    if (knit_unlikely(x->owner == t))
        knit__panic("knit_mutex_lock on a mutex the task already holds");
    struct knit_waiter w;
    knit__waiter_init(&w, "mutex", x, knit__waiter_unlink);
    knit_list_push_back(knit__wq_lazy(&x->waiters), &w.link);
    /* On success the unlocker has made us the owner. */
    return knit__wait(&w);
}

int knit_mutex_lock(knit_mutex *m)
{
    return KNIT_LOCKED(lock(impl(m)));
}

static void unlock(struct mutex *x)
{
    struct knit_task *t = knit__task();
    if (knit_unlikely(!x->owner || x->owner != t))
        knit__panic("knit_mutex_unlock of a mutex the caller does not hold "
                    "(%s)",
                    x->owner ? "held by another task" : "not locked");
    struct knit_waiter *w = NULL;
    if (x->waiters.next)
        w = knit__wq_claim(&x->waiters);
    x->owner = w ? w->task : NULL;
    if (w)
        knit__wake(w, 0);
}

void knit_mutex_unlock(knit_mutex *m)
{
    KNIT_LOCKED_VOID(unlock(impl(m)));
}

bool knit_mutex_is_locked(const knit_mutex *m)
{
    const struct mutex *x = (const struct mutex *)(const void *)m;
    return KNIT_LOCKED(x->owner != NULL);
}
