// SPDX-License-Identifier: MIT
/*
 * The spawn ring (see ring.h): push, grow, take.
 */
#include "core/ring.h"

#include <errno.h>
#include <stdlib.h>

#include "core/alloc.h"

static struct knit_ring_buf *buf_new(uint64_t slots)
{
    struct knit_ring_buf *b = knit__malloc(
        sizeof(*b) + slots * sizeof(_Atomic(struct knit_task *)));
    if (!b)
        return NULL;
    b->mask = slots - 1;
    b->older = NULL;
    return b;
}

int knit__ring_init(struct knit_ring *r)
{
    struct knit_ring_buf *b = buf_new(KNIT_RING_FIRST);
    if (!b)
        return -ENOMEM;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->buf, b);
    r->head_seen = 0;
    return 0;
}

void knit__ring_fini(struct knit_ring *r)
{
    struct knit_ring_buf *b = atomic_load(&r->buf);
    while (b) {
        struct knit_ring_buf *older = b->older;
        free(b);
        b = older;
    }
    atomic_store(&r->buf, NULL);
}

/* Replaces the full buffer @b by one twice its size holding the slots
 * from r->head_seen to @tail; NULL when out of memory. */
static KNIT_NOINLINE struct knit_ring_buf *grow(struct knit_ring *r,
                                                struct knit_ring_buf *b,
                                                uint64_t tail)
{
    struct knit_ring_buf *nb = buf_new((b->mask + 1) * 2);
    if (!nb)
        return NULL;
    for (uint64_t i = r->head_seen; i != tail; i++)
        atomic_store_explicit(
            &nb->slot[i & nb->mask],
            atomic_load_explicit(&b->slot[i & b->mask], memory_order_relaxed),
            memory_order_relaxed);
    nb->older = b;
    /* Release: a taker that loads it sees the copied slots. */
    atomic_store_explicit(&r->buf, nb, memory_order_release);
    return nb;
}

bool knit__ring_push(struct knit_ring *r, struct knit_task *t)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    struct knit_ring_buf *b =
        atomic_load_explicit(&r->buf, memory_order_relaxed);
    if (knit_unlikely(tail - r->head_seen > b->mask)) {
        /* Full as last seen: look again; acquire pairs with the takers'
         * claims, whose reads of the slots come before the reuse. */
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (tail - r->head_seen > b->mask && !(b = grow(r, b, tail)))
            return false;
    }
    atomic_store_explicit(&b->slot[tail & b->mask], t, memory_order_relaxed);
    atomic_store(&r->tail, tail + 1); /* seq_cst: see ring.h */
    return true;
}

unsigned knit__ring_take(struct knit_ring *r, struct knit_task **out,
                         unsigned div, unsigned max)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    for (;;) {
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
        uint64_t len = tail - head;
        if (len == 0)
            return 0;
        uint64_t n = (len + div - 1) / div;
        if (n > max)
            n = max;
        struct knit_ring_buf *b =
            atomic_load_explicit(&r->buf, memory_order_acquire);
        for (uint64_t i = 0; i < n; i++)
            out[i] = atomic_load_explicit(&b->slot[(head + i) & b->mask],
                                          memory_order_relaxed);
        /* Release: the owner reuses these slots only after it has seen
         * the new head. On failure, head is the current one: again. */
        if (atomic_compare_exchange_weak_explicit(
                &r->head, &head, head + n, memory_order_acq_rel,
                memory_order_acquire))
            return (unsigned)n;
    }
}
