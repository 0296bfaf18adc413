// SPDX-License-Identifier: MIT
/*
 * knit_waitgroup (knit/sync.h): a counter and the queue of tasks waiting
 * for it to reach 0.
 *
 * Reaching 0 wakes and unlinks every waiter at once, so the next round of
 * add / wait starts on an empty queue and, unlike Go's WaitGroup, reuse
 * needs no care. A cancelled waiter only leaves the queue.
 *
 * Threading: every public operation runs under the runtime lock (core/
 * sched.h; a no-op with one worker), which a waiter releases while parked.
 */
#include <errno.h>
#include <string.h>

#include "core/compiler.h"
#include "core/sched.h"
#include "sync/sync.h"

struct waitgroup {
    int64_t count;            /* outstanding jobs, never below 0 */
    struct knit_list waiters; /* knit_waiter.link of the tasks in wait */
};

_Static_assert(sizeof(knit_waitgroup) >= sizeof(struct waitgroup), "grow");

static inline struct waitgroup *impl(knit_waitgroup *wg)
{
    return (struct waitgroup *)(void *)wg;
}

void knit_waitgroup_init(knit_waitgroup *wg)
{
    memset(wg, 0, sizeof(*wg));
}

static void add(struct waitgroup *x, int n)
{
    if (knit_unlikely(x->count + n < 0))
        knit__panic("knit_waitgroup: negative counter (%lld%+d)",
                    (long long)x->count, n);
    x->count += n;
    if (x->count == 0 && x->waiters.next)
        knit__wq_wake_all(&x->waiters, 0);
}

void knit_waitgroup_add(knit_waitgroup *wg, int n)
{
    KNIT_LOCKED_VOID(add(impl(wg), n));
}

void knit_waitgroup_done(knit_waitgroup *wg)
{
    knit_waitgroup_add(wg, -1);
}

static int wg_wait(struct waitgroup *x)
{
    struct knit_task *t = knit__task();
    if (knit_unlikely(!t))
        knit__panic("knit_waitgroup_wait called outside a task");
    int err = knit__scope_err(t);
    if (knit_unlikely(err))
        return err;
    if (x->count == 0)
        return 0;
    struct knit_waiter w;
    knit__waiter_init(&w, "waitgroup", x, knit__waiter_unlink);
    knit_list_push_back(knit__wq_lazy(&x->waiters), &w.link);
    return knit__wait(&w);
}

int knit_waitgroup_wait(knit_waitgroup *wg)
{
    return KNIT_LOCKED(wg_wait(impl(wg)));
}

int64_t knit_waitgroup_count(const knit_waitgroup *wg)
{
    const struct waitgroup *x = (const struct waitgroup *)(const void *)wg;
    return KNIT_LOCKED(x->count);
}
