// SPDX-License-Identifier: MIT
/*
 * What knit_select (src/chan/select.c) needs from the sync primitives:
 * a non-blocking attempt and a way to queue a select case's waiter. A
 * queued waiter is removed with knit_list_remove(&w->link); waking always
 * goes through knit__wq_claim so that a select case that lost is skipped.
 */
#ifndef KNIT_SYNC_SYNC_H
#define KNIT_SYNC_SYNC_H

#include <stdbool.h>

#include "core/waitq.h"
#include "knit/sync.h"

/* Takes @n's stored permit if it has one. */
bool knit__notify_try_take(knit_notify *n);

/* Queues @w (set up by the caller) on @n's FIFO wait list. */
void knit__notify_enqueue(knit_notify *n, struct knit_waiter *w);

/* Queues @w on @t's wait list; knit_token_cancel wakes it with 0. */
void knit__token_enqueue(knit_token *t, struct knit_waiter *w);

#endif
