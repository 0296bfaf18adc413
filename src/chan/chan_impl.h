// SPDX-License-Identifier: MIT
/*
 * The channel's private layout and what knit_select needs from it.
 *
 * Invariants (the state is read and written under the runtime lock):
 *  - senders wait only while the buffer is full, receivers only while it
 *    is empty, so sendq and recvq are never both non-empty (select cases
 *    of selects that already fired may linger until their task unlinks
 *    them; knit__wq_claim skips them);
 *  - a value moves exactly once: into the buffer, or straight into a
 *    claimed receiver's w->data, or from a claimed sender's w->data;
 *  - once closed, nobody waits: close wakes every waiter with -EPIPE and
 *    later calls do not park.
 */
#ifndef KNIT_CHAN_CHAN_IMPL_H
#define KNIT_CHAN_CHAN_IMPL_H

#include <stdatomic.h>

#include "core/list.h"
#include "core/waitq.h"
#include "knit/chan.h"

struct knit_worker;

struct knit_chan {
    atomic_long refs;          /* references; the last unref frees */
    size_t elem_size;          /* bytes per element */
    size_t cap;                /* capacity; 0 = unbounded */
    char *buf;                 /* ring of bufcap elements */
    size_t bufcap;             /* slots in buf */
    size_t head;               /* index of the oldest element */
    size_t len;                /* elements buffered */
    size_t high_water;         /* largest len seen */
    struct knit_list recvq;    /* waiting receivers; w->data = out buffer */
    struct knit_list sendq;    /* waiting senders; w->data = the element */
    long senders;              /* registered producers (sender counting) */
    bool closed;               /* knit_chan_close was called */
    bool oneshot_sent;         /* oneshot: the value was sent */
    struct knit_worker *owner; /* its creator: runs the _blocking proxies */
};

/*
 * The operations without the lock, for callers that hold it already
 * (knit_select, the oneshot): the knit_chan_* function of the same name
 * is each of these under KNIT_LOCKED.
 */
int knit__chan_try_send(knit_chan *c, const void *elem);
int knit__chan_try_recv(knit_chan *c, void *elem);
int knit__chan_recv(knit_chan *c, void *elem);
void knit__chan_close(knit_chan *c);

/* For knit_select: queue @w (its data set) as a receiver / a sender. */
void knit__chan_enqueue_recv(knit_chan *c, struct knit_waiter *w);
void knit__chan_enqueue_send(knit_chan *c, struct knit_waiter *w);

/* Allocates a channel (used by knit_chan_new and knit_oneshot_new). */
knit_chan *knit__chan_alloc(size_t elem_size, size_t capacity);

#endif
