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

/* Queues the running task @t on @n and parks it (no permit was stored).
 * Out of line: the waiter record then costs the fast path nothing. */
static KNIT_NOINLINE int notify_park(struct knit_task *t, knit_notify *n)
{
    struct knit_waiter w;
    knit__waiter_prep(&w, t, "notify", n, knit__waiter_unlink);
    knit__notify_enqueue(n, &w);
    /* The caller checked the scope, under the lock held since. */
    return knit__wait_checked(&w);
}

static inline int notify_wait(struct knit_task *t, knit_notify *n)
{
    if (knit_unlikely(!t))
        knit__panic("knit_notify_wait called outside a task");
    int err = knit__scope_err(t);
    if (knit_unlikely(err))
        return err;
    if (knit__notify_try_take(n))
        return 0;
    return notify_park(t, n);
}

static KNIT_NOINLINE int notify_wait_locked(struct knit_worker *wk,
                                            knit_notify *n)
{
    knit__lock(wk);
    int err = notify_wait(wk ? wk->current : NULL, n);
    knit__unlock(wk);
    return err;
}

int knit_notify_wait(knit_notify *n)
{
    struct knit_worker *wk = knit__worker();
    /* One worker: no lock to take, and notify_wait's calls are tail calls
     * (the locked case is out of line), so this saves no register. */
    if (knit_likely(wk && !wk->shared))
        return notify_wait(wk->current, n);
    return notify_wait_locked(wk, n);
}

static void notify_one(knit_notify *n)
{
    struct notify *x = impl(n);
    if (x->waiters.next && knit__wq_wake_one(&x->waiters, 0))
        return;
    x->permit = true;
}

static KNIT_NOINLINE void notify_one_locked(knit_notify *n)
{
    KNIT_LOCKED_VOID(notify_one(n));
}

void knit_notify_one(knit_notify *n)
{
    struct knit_worker *wk = knit__worker();
    /* As in knit_notify_wait. */
    if (knit_likely(wk && !wk->shared))
        notify_one(n);
    else
        notify_one_locked(n);
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
