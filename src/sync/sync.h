// SPDX-License-Identifier: MIT
/*
 * What knit_select (src/chan/select.c) needs from the sync primitives:
 * a non-blocking attempt and a way to queue a select case's waiter, both
 * called with the runtime lock held (they do not take it). A
 * queued waiter is removed with knit_list_remove(&w->link); waking always
 * goes through knit__wq_claim so that a select case that lost is skipped.
 * Also two wait-queue helpers that the primitives of src/sync share.
 */
#ifndef KNIT_SYNC_SYNC_H
#define KNIT_SYNC_SYNC_H

#include <stdbool.h>

#include "core/waitq.h"
#include "knit/sync.h"

/*
 * Makes a wait queue head usable: all-zero primitives hold a zeroed head
 * (next == NULL), initialised on first use.
 */
static inline struct knit_list *knit__wq_lazy(struct knit_list *q)
{
    if (q->next == NULL)
        knit_list_init(q);
    return q;
}

/*
 * The first waiter of @q that can still be claimed, left queued and
 * unclaimed, for primitives that must look at a waiter's request (w->data)
 * before deciding to serve it; waiters of selects that already fired are
 * unlinked on the way, as knit__wq_claim does. NULL when there is none
 * (also for a zeroed head).
 * Serving it is then knit__wq_claim(q), which returns this same waiter.
 */
static inline struct knit_waiter *knit__wq_peek(struct knit_list *q)
{
    while (q->next && !knit_list_is_empty(q)) {
        struct knit_waiter *w =
            knit_container_of(q->next, struct knit_waiter, link);
        if (!w->sel || w->sel->fired < 0)
            return w;
        knit_list_remove(&w->link);
    }
    return NULL;
}

/* Takes @n's stored permit if it has one. */
bool knit__notify_try_take(knit_notify *n);

/* Queues @w (set up by the caller) on @n's FIFO wait list. */
void knit__notify_enqueue(knit_notify *n, struct knit_waiter *w);

/* Queues @w on @t's wait list; knit_token_cancel wakes it with 0. */
void knit__token_enqueue(knit_token *t, struct knit_waiter *w);

/* knit_token_is_cancelled without the lock. */
bool knit__token_is_cancelled(const knit_token *t);

#endif
