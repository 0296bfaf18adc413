// SPDX-License-Identifier: MIT
/*
 * The runtime lock's implementation: a test-and-test-and-set spinlock
 * that yields the CPU after a short spin.
 *
 * Why not a pthread mutex: the critical sections under the runtime lock
 * are a few dozen instructions, and a contended mutex puts the waiter to
 * sleep in the kernel (a futex wait, then a futex wake from the unlock):
 * two system calls costing more than the sections themselves, measured as
 * a fifth of spawn_join_mt's cycles (bench/RESULTS.md). Here the unlock is
 * a plain release store, and a waiter spins on a load (its own cache line
 * copy) until the lock looks free. A holder that was preempted is waited
 * for with sched_yield, so a waiter on the same CPU lets it run.
 */
#ifndef KNIT_CORE_SPIN_H
#define KNIT_CORE_SPIN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/compiler.h"

struct knit_spin {
    atomic_bool held;
};

/* Spins before each sched_yield while the lock stays taken. */
#define KNIT_SPIN_TRIES 128

static inline void knit__spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The contended case of knit__spin_lock (core/spin.c would be one more
 * file for ten lines: kept here, out of line). */
static KNIT_NOINLINE void knit__spin_lock_slow(struct knit_spin *l)
{
    for (;;) {
        for (int i = 0; i < KNIT_SPIN_TRIES; i++) {
            if (!atomic_load_explicit(&l->held, memory_order_relaxed) &&
                !atomic_exchange_explicit(&l->held, true,
                                          memory_order_acquire))
                return;
            knit__spin_pause();
        }
        sched_yield();
    }
}

static inline void knit__spin_lock(struct knit_spin *l)
{
    if (knit_unlikely(
            atomic_exchange_explicit(&l->held, true, memory_order_acquire)))
        knit__spin_lock_slow(l);
}

static inline void knit__spin_unlock(struct knit_spin *l)
{
    atomic_store_explicit(&l->held, false, memory_order_release);
}

#endif
