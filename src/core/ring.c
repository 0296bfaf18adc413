// SPDX-License-Identifier: MIT
/*
 * The spawn ring (see ring.h): push, grow, take, and the buffer cache.
 */
#include "core/ring.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/alloc.h"

/*
 * Buffers outlive their runtime in a small process-wide cache, as task
 * slabs do (task.c): a program that runs knit_run repeatedly (tests,
 * benchmarks) would otherwise grow every ring again through fresh
 * memory, whose first touches are page faults (a burst of a million
 * spawns: 8 MiB, 6.0-6.5 M tasks/s in spawn_join_mt with a fresh
 * buffer per run against 8-10 M with the cache; bench/RESULTS.md).
 */
#define BUF_CACHE_MAX 8
static struct knit_ring_buf *buf_cache[BUF_CACHE_MAX];
static pthread_mutex_t buf_cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* A buffer of at least @slots slots: the smallest cached one that is
 * big enough, else a new one of exactly @slots. */
static struct knit_ring_buf *buf_new(uint64_t slots)
{
    struct knit_ring_buf *b = NULL;
    pthread_mutex_lock(&buf_cache_lock);
    int best = -1;
    for (int i = 0; i < BUF_CACHE_MAX; i++)
        if (buf_cache[i] && buf_cache[i]->mask + 1 >= slots &&
            (best < 0 || buf_cache[i]->mask < buf_cache[best]->mask))
            best = i;
    if (best >= 0) {
        b = buf_cache[best];
        buf_cache[best] = NULL;
    }
    pthread_mutex_unlock(&buf_cache_lock);
    if (!b) {
        b = knit__malloc(sizeof(*b) +
                         slots * sizeof(_Atomic(struct knit_task *)));
        if (!b)
            return NULL;
        b->mask = slots - 1;
    }
    b->older = NULL;
    return b;
}

/* Keeps @b in the cache in place of an empty entry or a smaller buffer;
 * frees whatever is left over. */
static void buf_release(struct knit_ring_buf *b)
{
    pthread_mutex_lock(&buf_cache_lock);
    int slot = -1;
    for (int i = 0; i < BUF_CACHE_MAX && slot < 0; i++)
        if (!buf_cache[i])
            slot = i;
    for (int i = 0; i < BUF_CACHE_MAX && slot < 0; i++)
        if (buf_cache[i]->mask < b->mask)
            slot = i;
    struct knit_ring_buf *out = b;
    if (slot >= 0) {
        out = buf_cache[slot];
        buf_cache[slot] = b;
    }
    pthread_mutex_unlock(&buf_cache_lock);
    free(out);
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
        buf_release(b);
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
