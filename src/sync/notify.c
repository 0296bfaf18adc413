// SPDX-License-Identifier: MIT
/*
 * knit_notify (knit/sync.h): one stored permit and a FIFO queue of
 * waiters, which may include knit_select notify cases (see sync.h).
 *
 * Invariant: a stored permit and a waiter never coexist, since a wait
 * consumes the permit before it queues and notify_one stores one only
 * when no claimable waiter is left. A notification is never lost: a
 * waiter that was woken with it is runnable, out of reach of its scope's
 * cancel hook, and returns 0 even when its scope fires before it runs.
 *
 * Threading: every public operation runs under the runtime lock (core/
 * sched.h; a no-op with one worker), which a waiter releases while parked.
 */
#include <errno.h>
#include <string.h>

#include "core/compiler.h"
#include "core/sched.h"
#include "sync/sync.h"

struct notify {
    bool permit;              /* notify_one found nobody waiting */
    struct knit_list waiters; /* knit_waiter.link, FIFO */
};

_Static_assert(sizeof(knit_notify) >= sizeof(struct notify), "grow");

static inline struct notify *impl(knit_notify *n)
{
    return (struct notify *)(void *)n;
}

void knit_notify_init(knit_notify *n)
{
    memset(n, 0, sizeof(*n));
}

bool knit__notify_try_take(knit_notify *n)
{
    struct notify *x = impl(n);
    if (!x->permit)
        return false;
    x->permit = false;
    return true;
}

void knit__notify_enqueue(knit_notify *n, struct knit_waiter *w)
{
    knit_list_push_back(knit__wq_lazy(&impl(n)->waiters), &w->link);
}

static int notify_wait(struct knit_task *t, knit_notify *n)
{
    if (knit_unlikely(!t))
        knit__panic("knit_notify_wait called outside a task");
    int err = knit__scope_err(t);
    if (knit_unlikely(err))
        return err;
    if (knit__notify_try_take(n))
        return 0;
    struct knit_waiter w;
    knit__waiter_prep(&w, t, "notify", n, knit__waiter_unlink);
    knit__notify_enqueue(n, &w);
    /* The scope was checked above, under the lock held since. */
    return knit__wait_checked(&w);
}

int knit_notify_wait(knit_notify *n)
{
    struct knit_worker *wk = knit__worker();
    /* One worker: no lock, and notify_wait can end in a tail call. */
    if (knit_likely(wk && !wk->shared))
        return notify_wait(wk->current, n);
    knit__lock(wk);
    int err = notify_wait(wk ? wk->current : NULL, n);
    knit__unlock(wk);
    return err;
}

static void notify_one(knit_notify *n)
{
    struct notify *x = impl(n);
    if (x->waiters.next && knit__wq_wake_one(&x->waiters, 0))
        return;
    x->permit = true;
}

void knit_notify_one(knit_notify *n)
{
    struct knit_worker *wk = knit__worker();
    if (knit_likely(wk && !wk->shared)) { /* as in knit_notify_wait */
        notify_one(n);
        return;
    }
    KNIT_LOCKED_VOID(notify_one(n));
}

static void notify_all(knit_notify *n)
{
    struct notify *x = impl(n);
    if (x->waiters.next)
        knit__wq_wake_all(&x->waiters, 0);
}

void knit_notify_all(knit_notify *n)
{
    KNIT_LOCKED_VOID(notify_all(n));
}
