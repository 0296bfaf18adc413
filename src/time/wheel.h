// SPDX-License-Identifier: MIT
/*
 * Hierarchical timer wheel (tokio's shape): 6 levels of 64 slots, 1 ms
 * resolution at level 0, each level 64 times coarser than the one below,
 * so deadlines up to 2^36 ms (about two years) ahead are held exactly; later
 * ones are clamped to that horizon. Arm and cancel are O(1); advancing
 * costs O(1) per slot visited plus the timers that fire or cascade.
 *
 * Order: timers with equal deadlines fire in the order they were armed,
 * whatever the levels they passed through (each slot list is kept in arm
 * order when timers cascade into it).
 *
 * Not thread safe: one wheel belongs to one worker.
 */
#ifndef KNIT_TIME_WHEEL_H
#define KNIT_TIME_WHEEL_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/compiler.h"
#include "core/list.h"

#define KNIT_WHEEL_LEVELS 6
#define KNIT_WHEEL_SLOT_BITS 6
#define KNIT_WHEEL_SLOTS (1 << KNIT_WHEEL_SLOT_BITS)
/* 2^36 ms: what the top level spans, and the farthest a deadline may be
 * ahead of elapsed. */
#define KNIT_WHEEL_HORIZON                                                     \
    ((int64_t)1 << (KNIT_WHEEL_SLOT_BITS * KNIT_WHEEL_LEVELS))

struct knit_timer;
typedef void (*knit_timer_fn)(struct knit_timer *t);

/* A timer; embed it in the object it belongs to. Zeroed = not armed. */
struct knit_timer {
    struct knit_list link; /* on a wheel slot list while armed */
    int64_t deadline;      /* absolute ms; valid while armed; clamped to
                              the wheel's horizon when armed beyond it */
    knit_timer_fn fire;    /* called by knit__wheel_advance, once */
};

struct knit_wheel {
    int64_t elapsed; /* every deadline < elapsed has fired (inside a fire
                        callback: the time being fired) */
    uint64_t armed;  /* number of armed timers */
    /* Bit s of occupied[l] is set when the list of level l, slot s is
     * non-empty, and may stay set after a cancel empties it (I3). */
    uint64_t occupied[KNIT_WHEEL_LEVELS];
    /*
     * Level l, slot s is slots[l * KNIT_WHEEL_SLOTS + s]: timers in arm
     * order (the due slot: by deadline, then arm order).
     */
    struct knit_list slots[KNIT_WHEEL_LEVELS * KNIT_WHEEL_SLOTS];
};

/* Makes an empty wheel whose time starts at @now. */
void knit__wheel_init(struct knit_wheel *w, int64_t now);

/* Makes @t not armed (as zeroing it does). */
static inline void knit__timer_init(struct knit_timer *t)
{
    t->link.next = NULL; /* knit_list_is_linked() reads only this */
}

static inline bool knit__timer_is_armed(const struct knit_timer *t)
{
    return knit_list_is_linked(&t->link);
}

/*
 * Arm and cancel are inline: a scope with a deadline does both on every
 * enter and exit (timer_arm_cancel in bench/). Below, the common paths;
 * the geometry they rely on is explained at the top of wheel.c.
 */

/* Indexed by the highest set bit b of (elapsed ^ deadline) | 63: the
 * level b / 6, or the top level from bit 36 up (see wheel.c). */
extern const uint8_t knit__wheel_level_of_bit[64];

/*
 * The level for @deadline, with elapsed < @deadline <= elapsed +
 * KNIT_WHEEL_HORIZON: where the highest bit that differs from @elapsed
 * falls (invariant I1 in wheel.c). Forcing the low six bits on puts every
 * deadline of elapsed's own 64 ms block on level 0 (and keeps clz's
 * argument non-zero); a difference at or above bit 36 (the next 2^36
 * block) goes to the top level, whose ring holds it.
 */
static inline unsigned knit__wheel_level(int64_t elapsed, int64_t deadline)
{
    uint64_t masked =
        ((uint64_t)elapsed ^ (uint64_t)deadline) | (KNIT_WHEEL_SLOTS - 1);

    /* 63 ^ clz is 63 - clz (the highest set bit), without a sign
     * extension before the table index. */
    return knit__wheel_level_of_bit[63 ^ (unsigned)__builtin_clzll(masked)];
}

/* The slot of @deadline on @level. */
static inline unsigned knit__wheel_slot(int64_t deadline, unsigned level)
{
    return (unsigned)((uint64_t)deadline >> (KNIT_WHEEL_SLOT_BITS * level)) &
           (KNIT_WHEEL_SLOTS - 1);
}

/* knit__wheel_arm() for an overdue, negative or too distant deadline. */
void knit__wheel_arm_slow(struct knit_wheel *w, struct knit_timer *t,
                          int64_t deadline, knit_timer_fn fire);

/* True when @head is the slot list where @t belongs (invariant I1). */
bool knit__wheel_is_home(struct knit_wheel *w, const struct knit_timer *t,
                         const struct knit_list *head);

/*
 * True when knit__wheel_arm_fast() may arm a timer at @deadline: elapsed <
 * @deadline <= elapsed + HORIZON, in one unsigned compare (a deadline at
 * or before elapsed wraps to at least 2^64 - 2 * HORIZON, since elapsed
 * <= INT64_MAX - 2 * HORIZON, see wheel.c).
 */
static inline bool knit__wheel_fits(const struct knit_wheel *w,
                                    int64_t deadline)
{
    return (uint64_t)deadline - (uint64_t)w->elapsed - 1 <
           (uint64_t)KNIT_WHEEL_HORIZON;
}

/* knit__wheel_arm() for a deadline that knit__wheel_fits(). */
static inline void knit__wheel_arm_fast(struct knit_wheel *w,
                                        struct knit_timer *t, int64_t deadline,
                                        knit_timer_fn fire)
{
    unsigned level;
    unsigned slot;

    assert(!knit__timer_is_armed(t) && knit__wheel_fits(w, deadline));
    t->deadline = deadline;
    t->fire = fire;
    w->armed++;
    /*
     * A future deadline's slot is not the due slot, so its list is in arm
     * order (on level 0 all of it has this one deadline), and @t is the
     * newest: it goes last, the order I2 wants, with no walk.
     */
    level = knit__wheel_level(w->elapsed, deadline);
    slot = knit__wheel_slot(deadline, level);
    knit_list_push_back(&w->slots[level * KNIT_WHEEL_SLOTS + slot], &t->link);
    w->occupied[level] |= UINT64_C(1) << slot;
}

/*
 * Arms @t to fire at @deadline (absolute ms) calling @fire. A deadline
 * already passed (<= elapsed) fires at the next advance. @t must not be armed.
 */
static inline void knit__wheel_arm(struct knit_wheel *w, struct knit_timer *t,
                                   int64_t deadline, knit_timer_fn fire)
{
    if (knit_likely(knit__wheel_fits(w, deadline)))
        knit__wheel_arm_fast(w, t, deadline, fire);
    else
        knit__wheel_arm_slow(w, t, deadline, fire);
}

/* Disarms @t; a no-op when it is not armed (or already fired). */
static inline void knit__wheel_cancel(struct knit_wheel *w,
                                      struct knit_timer *t)
{
    struct knit_list *next = t->link.next;
    struct knit_list *prev = t->link.prev;

    if (!knit__timer_is_armed(t))
        return;
    /* A lone timer's neighbours are both its slot's head (I1). */
    assert(next != prev || knit__wheel_is_home(w, t, prev));
    /*
     * The slot's occupied bit stays set even if this empties it: the
     * searches clear such stale bits when they meet them (I3 in wheel.c),
     * which keeps the cancel of a lone timer (every scope exit) from
     * working out which bit is its own.
     */
    prev->next = next;
    next->prev = prev;
    knit__timer_init(t);
    w->armed--;
}

/* The exact earliest deadline of an armed timer, or -1 when none is armed.
 * Not const: it clears the stale occupied bits it meets. */
int64_t knit__wheel_next(struct knit_wheel *w);

/*
 * Fires, in (deadline, arm order), every timer whose deadline is <= @now,
 * then sets elapsed to @now (never backwards). A fire callback may arm or
 * cancel any timer, including itself; timers it arms with a deadline
 * <= @now fire in this same call. A callback must not call advance
 * itself, and one that keeps re-arming at or before @now loops forever.
 * Returns the number fired.
 */
int knit__wheel_advance(struct knit_wheel *w, int64_t now);

#endif
