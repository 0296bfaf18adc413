// SPDX-License-Identifier: MIT
/*
 * Broadcast channels (knit/chan.h): a ring of the last @capacity values,
 * numbered by a sequence; each subscriber keeps the number of the next
 * value it wants. Senders never wait. A subscriber whose next value was
 * overwritten learns it lagged (-EOVERFLOW, once), jumps to the oldest
 * value kept and goes on. Waiting subscribers sit on one knit_waiter list
 * and re-check after every send.
 *
 * Threading: the public operations on a knit_bcast run under the runtime
 * lock (core/sched.h; a no-op with one worker). A knit_bcast_rx is its
 * subscriber's own; its fields change only under the lock too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/sched.h"
#include "knit/chan.h"

struct knit_bcast {
    size_t elem_size;       /* bytes per value */
    size_t cap;             /* values kept */
    char *ring;             /* cap values; value s is at s % cap */
    uint64_t tail;          /* sequence number of the next value sent */
    struct knit_list waitq; /* subscribers waiting for a value */
    size_t nsubs;           /* live subscribers */
    bool closed;
};

struct knit_bcast_rx {
    knit_bcast *b;
    uint64_t next;   /* sequence number of the next value to read */
    uint64_t missed; /* values skipped by the last lag */
};

knit_bcast *knit_bcast_new(size_t elem_size, size_t capacity)
{
    if (!elem_size || !capacity || capacity > SIZE_MAX / elem_size)
        return NULL;
    knit_bcast *b = knit__calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->ring = knit__malloc(elem_size * capacity);
    if (!b->ring) {
        free(b);
        return NULL;
    }
    b->elem_size = elem_size;
    b->cap = capacity;
    knit_list_init(&b->waitq);
    return b;
}

void knit_bcast_free(knit_bcast *b)
{
    /* Locked: the last rx_free may have run on another worker. */
    size_t nsubs = KNIT_LOCKED(b->nsubs);
    if (nsubs)
        knit__panic("knit_bcast_free with %zu subscribers alive", nsubs);
    free(b->ring);
    free(b);
}

static int bcast_send(knit_bcast *b, const void *elem)
{
    if (b->closed)
        return -EPIPE;
    memcpy(b->ring + (b->tail % b->cap) * b->elem_size, elem, b->elem_size);
    b->tail++;
    knit__wq_wake_all(&b->waitq, 0);
    return 0;
}

int knit_bcast_send(knit_bcast *b, const void *elem)
{
    return KNIT_LOCKED(bcast_send(b, elem));
}

static void bcast_close(knit_bcast *b)
{
    b->closed = true;
    knit__wq_wake_all(&b->waitq, 0);
}

void knit_bcast_close(knit_bcast *b)
{
    KNIT_LOCKED_VOID(bcast_close(b));
}

static void subscribe(knit_bcast *b, knit_bcast_rx *rx)
{
    rx->b = b;
    rx->next = b->tail;
    b->nsubs++;
}

knit_bcast_rx *knit_bcast_subscribe(knit_bcast *b)
{
    knit_bcast_rx *rx = knit__calloc(1, sizeof(*rx));
    if (!rx)
        return NULL;
    KNIT_LOCKED_VOID(subscribe(b, rx));
    return rx;
}

void knit_bcast_rx_free(knit_bcast_rx *rx)
{
    KNIT_LOCKED_VOID(rx->b->nsubs--);
    free(rx);
}

uint64_t knit_bcast_rx_missed(const knit_bcast_rx *rx)
{
    return rx->missed; /* written by its own task's recv only */
}

static int bcast_recv(knit_bcast_rx *rx, void *elem)
{
    knit_bcast *b = rx->b;
    struct knit_task *t = knit__task();
    if (!t)
        knit__panic("knit_bcast_recv called outside a task");
    for (;;) {
        /* The scope first, as every blocking call: a fired scope wins
         * over a value, a lag report or the end. */
        int err = knit__scope_err(t);
        if (err)
            return err;
        uint64_t oldest = b->tail > b->cap ? b->tail - b->cap : 0;
        if (rx->next < oldest) {
            rx->missed = oldest - rx->next;
            rx->next = oldest;
            return -EOVERFLOW;
        }
        if (rx->next < b->tail) {
            memcpy(elem, b->ring + (rx->next % b->cap) * b->elem_size,
                   b->elem_size);
            rx->next++;
            return 0;
        }
        if (b->closed)
            return -EPIPE;
        struct knit_waiter w;
        knit__waiter_init(&w, "bcast recv", b, knit__waiter_unlink);
        knit_list_push_back(&b->waitq, &w.link);
        err = knit__wait(&w);
        if (err)
            return err;
    }
}

int knit_bcast_recv(knit_bcast_rx *rx, void *elem)
{
    return KNIT_LOCKED(bcast_recv(rx, elem));
}
