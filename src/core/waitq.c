// SPDX-License-Identifier: MIT
/*
 * The waiter record's cold operations (see waitq.h): waking a whole list
 * and the cancel hook of plain FIFO wait lists. Parking is knit__wait
 * (sched.c); the hot ones are inline in core/sched.h.
 */
#include "core/waitq.h"

#include "core/compiler.h"
#include "core/sched.h"

void knit__waiter_unlink(struct knit_waiter *w)
{
    knit_list_remove(&w->link);
}

int knit__wq_wake_all(struct knit_list *q, int result)
{
    int n = 0;
    while (knit__wq_wake_one(q, result))
        n++;
    return n;
}
