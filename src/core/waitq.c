// SPDX-License-Identifier: MIT
/*
 * The waiter record's operations (see waitq.h): park on one, wake one, and
 * the two helpers for plain FIFO wait lists.
 */
#include "core/waitq.h"

#include "core/compiler.h"
#include "core/sched.h"

void knit__waiter_init(struct knit_waiter *w, const char *what, const void *obj,
                       knit_waiter_cancel_fn cancel)
{
    knit_list_init(&w->link);
    w->task = knit__task();
    w->result = 0;
    w->cancel = cancel;
    w->what = what;
    w->obj = obj;
    w->data = NULL;
    w->sel = NULL;
    w->index = 0;
    w->wake_fn = NULL;
}

int knit__wait(struct knit_waiter *w)
{
    struct knit_task *t = w->task;
    if (!t)
        knit__panic("a blocking knit call was made outside a task");
    /* t->waiter is read under the runtime lock by whoever claims or
     * cancels the wait; callers on worker-local waits (sleep, I/O) come
     * here without it. Re-entrant, and let go while parked. */
    struct knit_worker *wk = t->worker;
    knit__lock(wk);
    int err = knit__scope_err(t);
    if (knit_unlikely(err)) {
        if (w->cancel)
            w->cancel(w);
        knit__unlock(wk);
        return err;
    }
    t->waiter = w;
    knit__park();
    knit__unlock(wk);
    return w->result;
}

void knit__wake(struct knit_waiter *w, int result)
{
    if (knit_unlikely(w->wake_fn != NULL)) {
        w->wake_fn(w, result);
        return;
    }
    struct knit_task *t = w->task;
    w->result = result;
    /* For a select, t->waiter is the select's own record, not @w: either
     * way the task waits on nothing any more. */
    t->waiter = NULL;
    knit__ready(t);
}

void knit__waiter_unlink(struct knit_waiter *w)
{
    knit_list_remove(&w->link);
}

struct knit_waiter *knit__wq_claim(struct knit_list *q)
{
    struct knit_list *n;
    while ((n = knit_list_pop_front(q)) != NULL) {
        struct knit_waiter *w = knit_container_of(n, struct knit_waiter, link);
        if (knit__waiter_claim(w))
            return w;
    }
    return NULL;
}

bool knit__wq_wake_one(struct knit_list *q, int result)
{
    struct knit_waiter *w = knit__wq_claim(q);
    if (!w)
        return false;
    knit__wake(w, result);
    return true;
}

int knit__wq_wake_all(struct knit_list *q, int result)
{
    int n = 0;
    while (knit__wq_wake_one(q, result))
        n++;
    return n;
}
