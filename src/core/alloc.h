// SPDX-License-Identifier: MIT
/*
 * The runtime's allocator seam: every malloc, calloc and realloc of knit
 * (src/core, time, io, sync, chan, net, blocking) goes through these, so a
 * test can make the Nth allocation from now fail (knit__alloc_fail_after)
 * and check that each one ends in a clean -ENOMEM and no leak (the OOM
 * loop of tests/test_oom.c). Off, the seam costs one relaxed load and a
 * predicted branch per allocation.
 */
#ifndef KNIT_CORE_ALLOC_H
#define KNIT_CORE_ALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/compiler.h"

/* 0: off; n > 0: the n-th allocation from now fails (then off again). */
extern atomic_long knit__alloc_countdown;

/* Make the @n-th allocation from now return NULL (0: never). For tests. */
void knit__alloc_fail_after(long n);

/* Whether the countdown is still running (the failure has not come). */
bool knit__alloc_fault_pending(void);

static inline bool knit__alloc_fails(void)
{
    if (knit_likely(atomic_load_explicit(&knit__alloc_countdown,
                                         memory_order_relaxed) == 0))
        return false;
    long prev = atomic_fetch_sub(&knit__alloc_countdown, 1);
    if (prev == 1)
        return true;
    if (prev <= 0) /* another thread took the failure: stay off */
        atomic_store(&knit__alloc_countdown, 0);
    return false;
}

static inline void *knit__malloc(size_t n)
{
    return knit__alloc_fails() ? NULL : malloc(n);
}

static inline void *knit__calloc(size_t n, size_t size)
{
    return knit__alloc_fails() ? NULL : calloc(n, size);
}

/* knit__calloc for @n objects of @size that need @align (a power of two,
 * a multiple of sizeof(void *)); freed with free(). */
static inline void *knit__calloc_aligned(size_t n, size_t size, size_t align)
{
    if (knit__alloc_fails() || (size && n > SIZE_MAX / size))
        return NULL;
    size_t bytes = (n * size + align - 1) & ~(align - 1);
    void *p = aligned_alloc(align, bytes ? bytes : align);
    if (p)
        memset(p, 0, bytes);
    return p;
}

static inline void *knit__realloc(void *p, size_t n)
{
    return knit__alloc_fails() ? NULL : realloc(p, n);
}

#endif
