// SPDX-License-Identifier: MIT
/*
 * The one waiter record. Every blocking call (sleep, join, group, I/O and,
 * later, every channel and sync primitive and select) parks its task
 * through a struct knit_waiter that lives on the parked task's stack:
 *
 *   1. the primitive links the waiter on its own wait list (or arms a
 *      timer, or an fd) and sets w->cancel to a hook that undoes that;
 *   2. knit__wait(w) parks the task; it returns at once, after calling the
 *      hook, when an enclosing scope has already fired;
 *   3. the event calls knit__wake(w, result) exactly once, after unlinking
 *      the waiter, or a firing scope calls w->cancel(w) and then
 *      knit__wake(w, -ECANCELED / -ETIMEDOUT).
 *
 * Invariant: a waiter is woken at most once, and after knit__wait returns
 * no list, timer or fd refers to it any more.
 */
#ifndef KNIT_CORE_WAITQ_H
#define KNIT_CORE_WAITQ_H

#include "core/list.h"

struct knit_task;
struct knit_waiter;

/*
 * Shared by the waiters of one knit_select, one per case: the first
 * primitive to claim one of them decides which case takes effect.
 */
struct knit_sel {
    int fired; /* index of the case that took effect, -1 until then */
};

/* Unlinks @w from whatever it waits on; called with the task parked. */
typedef void (*knit_waiter_cancel_fn)(struct knit_waiter *w);

struct knit_waiter {
    struct knit_list link;        /* on the primitive's wait list, if any */
    struct knit_task *task;       /* the parked task */
    int result;                   /* set by knit__wake */
    knit_waiter_cancel_fn cancel; /* undoes the registration */
    const char *what;             /* for knit_dump: "sleep", "join", ... */
    const void *obj;              /* the object waited on, for knit_dump */
    void *data;           /* payload: element in/out, permits wanted, ... */
    struct knit_sel *sel; /* the select it is a case of, or NULL */
    int index;            /* its case index in that select */
    /* When set, knit__wake calls this instead of readying w->task: a
     * waiter that stands for something other than a parked task (a scope
     * linked to a token). */
    void (*wake_fn)(struct knit_waiter *w, int result);
};

/*
 * Claims @w before a primitive acts on it (hands it a value, a permit...).
 * Always true for a plain waiter; for a select case only the first claim
 * of the select succeeds, and the primitive must then leave that waiter
 * alone (no value consumed or enqueued): "losers leave no trace".
 */
static inline bool knit__waiter_claim(struct knit_waiter *w)
{
    if (!w->sel)
        return true;
    if (w->sel->fired >= 0)
        return false;
    w->sel->fired = w->index;
    return true;
}

/*
 * Parks the current task until knit__wake(w). Returns w's result, or the
 * fired scope's error (after calling w->cancel) without parking.
 */
int knit__wait(struct knit_waiter *w);

/*
 * The hot operations are static inline in core/sched.h, which every user
 * includes (they read the task): knit__waiter_init (prepare @w for the
 * current task), knit__wait_checked (knit__wait for callers that checked
 * the scope), knit__wake (make @w's task runnable), knit__wq_claim and
 * knit__wq_wake_one.
 */

/* Wakes every claimable waiter on @q with @result; returns how many. */
int knit__wq_wake_all(struct knit_list *q, int result);

/* A cancel hook for waiters that sit on a plain wait list. */
void knit__waiter_unlink(struct knit_waiter *w);

#endif
