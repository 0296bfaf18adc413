// SPDX-License-Identifier: MIT
/*
 * What the patterns share: the misuse report, and the spin lock that
 * guards their own short critical sections now that tasks of one runtime
 * run on several workers at once.
 */
#ifndef KNIT_PATTERNS_MISUSE_H
#define KNIT_PATTERNS_MISUSE_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

_Noreturn void knit__pattern_misuse(const char *what);

/*
 * A spin lock for a pattern's plain fields: all-zero is unlocked. It
 * guards a few loads and stores between two knit calls that never park
 * (a critical section is never held across a knit call that may park,
 * nor across a user callback), so a worker spins at most for the length
 * of another worker's critical section; past a few tries it yields the
 * thread in case the holder was preempted. On one worker it is never
 * contended: one atomic exchange and one store, no runtime lock.
 */
typedef struct {
    atomic_bool held;
} knit__pspin;

static inline void knit__pspin_lock(knit__pspin *l)
{
    unsigned tries = 0;
    while (atomic_exchange_explicit(&l->held, true, memory_order_acquire)) {
        while (atomic_load_explicit(&l->held, memory_order_relaxed))
            if (++tries % 64 == 0)
                sched_yield();
    }
}

static inline void knit__pspin_unlock(knit__pspin *l)
{
    atomic_store_explicit(&l->held, false, memory_order_release);
}

#endif
