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

/* Unlinks @w from whatever it waits on; called with the task parked. */
typedef void (*knit_waiter_cancel_fn)(struct knit_waiter *w);

struct knit_waiter {
    struct knit_list link;        /* on the primitive's wait list, if any */
    struct knit_task *task;       /* the parked task */
    int result;                   /* set by knit__wake */
    knit_waiter_cancel_fn cancel; /* undoes the registration */
    const char *what;             /* for knit_dump: "sleep", "join", ... */
    const void *obj;              /* the object waited on, for knit_dump */
};

/* Prepares @w for the current task. */
void knit__waiter_init(struct knit_waiter *w, const char *what, const void *obj,
                       knit_waiter_cancel_fn cancel);

/*
 * Parks the current task until knit__wake(w). Returns w's result, or the
 * fired scope's error (after calling w->cancel) without parking.
 */
int knit__wait(struct knit_waiter *w);

/* Makes @w's task runnable; knit__wait then returns @result. */
void knit__wake(struct knit_waiter *w, int result);

/*
 * Wakes the first waiter of the list @q with @result; returns false when
 * the list is empty. The waiter is unlinked first.
 */
bool knit__wq_wake_one(struct knit_list *q, int result);

/* Wakes every waiter on @q with @result; returns how many. */
int knit__wq_wake_all(struct knit_list *q, int result);

/* A cancel hook for waiters that sit on a plain wait list. */
void knit__waiter_unlink(struct knit_waiter *w);

#endif
