// SPDX-License-Identifier: MIT
/*
 * A worker's spawn ring: the tasks its own thread spawned that have not
 * started yet, oldest first, with no lock on either end.
 *
 * Only the owning worker's thread pushes, at the tail. Any worker takes,
 * the owner included, from the head: it reads a batch of slots and
 * claims them with one compare-and-swap on the head, so two takers never
 * get the same task (Go's and tokio's run queues work the same way). A
 * full ring doubles: the owner copies the live slots into a buffer twice
 * the size and publishes it. A taker that loaded the old buffer still
 * reads valid slots there (nothing is written to a buffer once it is
 * replaced, and a slot it read stale makes its claim fail), so old
 * buffers are kept until the worker is torn down: at most as much again
 * as the largest buffer.
 *
 * Why slots read from any buffer are right: a taker loads the tail
 * (acquire) before the buffer (acquire). Every index below that tail was
 * pushed into the buffer current at its push, or into an older one and
 * copied into every later one while it was unclaimed; the buffer loaded
 * after the tail is that one or newer. An index the owner may overwrite
 * (tail - capacity) was claimed already, so a taker that read it fails
 * its compare-and-swap.
 */
#ifndef KNIT_CORE_RING_H
#define KNIT_CORE_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/compiler.h"

struct knit_task;

struct knit_ring_buf {
    uint64_t mask;                /* slots - 1 (a power of two) */
    struct knit_ring_buf *older;  /* the buffer it replaced, kept */
    _Atomic(struct knit_task *) slot[];
};

struct knit_ring {
    /* Claimed by takers (compare-and-swap), read by the owner when its
     * cached copy says the ring is full. */
    _Alignas(64) _Atomic uint64_t head;
    /* The owner's: the next index to push, the buffer, and the head as
     * it last read it (never ahead of the real one). */
    _Alignas(64) _Atomic uint64_t tail;
    _Atomic(struct knit_ring_buf *) buf;
    uint64_t head_seen;
};

/* Slots of a new ring's buffer. */
#define KNIT_RING_FIRST 256u

/* Prepares an empty ring; -ENOMEM. */
int knit__ring_init(struct knit_ring *r);
/* Frees its buffers (no thread uses it any more). */
void knit__ring_fini(struct knit_ring *r);

/*
 * Appends @t (the owner's thread only). The tail is stored seq_cst: the
 * caller then reads the idle count, which an idling worker bumps before
 * it looks at the rings (newq.c). False only when the ring was full and
 * could not grow (out of memory).
 */
bool knit__ring_push(struct knit_ring *r, struct knit_task *t);

/*
 * Claims up to @max of the oldest tasks, a @div-th of the ring's length
 * rounded up (at least one), into @out; how many (0: it was empty). Any
 * thread.
 */
unsigned knit__ring_take(struct knit_ring *r, struct knit_task **out,
                         unsigned div, unsigned max);

/* Tasks in the ring now (a snapshot; seq_cst loads: see push). */
static inline uint64_t knit__ring_len(struct knit_ring *r)
{
    uint64_t h = atomic_load(&r->head);
    uint64_t t = atomic_load(&r->tail);
    return t - h; /* the head never passes the tail it was loaded before */
}

/* The index of its oldest task, which names it without reading it. */
static inline uint64_t knit__ring_head(struct knit_ring *r)
{
    return atomic_load_explicit(&r->head, memory_order_acquire);
}

#endif
