// SPDX-License-Identifier: MIT
/*
 * knit_waitgroup (knit/sync.h): a counter and the queue of tasks waiting
 * for it to reach 0.
 *
 * Reaching 0 wakes and unlinks every waiter at once, so the next round of
 * add / wait starts on an empty queue and, unlike Go's WaitGroup, reuse
 * needs no care. A cancelled waiter only leaves the queue.
 *
 * Threading: one worker per runtime and cooperative switches, so no lock
 * or atomic is needed here; the multi-worker scheduler will revisit this.
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

void knit_waitgroup_add(knit_waitgroup *wg, int n)
{
    struct waitgroup *x = impl(wg);
    if (knit_unlikely(x->count + n < 0))
        knit__panic("knit_waitgroup: negative counter (%lld%+d)",
                    (long long)x->count, n);
    x->count += n;
    if (x->count == 0 && x->waiters.next)
        knit__wq_wake_all(&x->waiters, 0);
}

void knit_waitgroup_done(knit_waitgroup *wg)
{
    knit_waitgroup_add(wg, -1);
}

int knit_waitgroup_wait(knit_waitgroup *wg)
{
    struct waitgroup *x = impl(wg);
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

int64_t knit_waitgroup_count(const knit_waitgroup *wg)
{
    return ((const struct waitgroup *)(const void *)wg)->count;
}
