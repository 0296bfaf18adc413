// SPDX-License-Identifier: MIT
/*
 * Hierarchical timer wheel (tokio's shape): 6 levels of 64 slots, 1 ms
 * resolution at level 0, each level 64 times coarser than the one below,
 * so deadlines up to 2^36 ms (about two years) ahead are held exactly; later
 * ones are clamped to that horizon. Arm and cancel are O(1); advancing
 * costs O(1) per slot visited plus the timers that fire or cascade.
 *
 * Order: timers with equal deadlines fire in the order they were armed,
 * whatever the levels they passed through (each slot list is kept sorted
 * by arm sequence when timers cascade into it).
 *
 * Not thread safe: one wheel belongs to one worker.
 */
#ifndef KNIT_TIME_WHEEL_H
#define KNIT_TIME_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"

#define KNIT_WHEEL_LEVELS 6
#define KNIT_WHEEL_SLOTS 64

struct knit_timer;
typedef void (*knit_timer_fn)(struct knit_timer *t);

/* A timer; embed it in the object it belongs to. Zeroed = not armed. */
struct knit_timer {
    struct knit_list link; /* on a wheel slot list while armed */
    int64_t deadline;      /* absolute ms; valid while armed; clamped to
                              the wheel's horizon when armed beyond it */
    uint64_t seq;          /* arm order, breaks ties between equal deadlines */
    knit_timer_fn fire;    /* called by knit__wheel_advance, once */
};

struct knit_wheel_level {
    uint64_t occupied;                        /* bit s: slots[s] non-empty */
    struct knit_list slots[KNIT_WHEEL_SLOTS]; /* timers, sorted by
                                                 (deadline, seq) */
};

struct knit_wheel {
    int64_t elapsed;   /* every deadline < elapsed has fired (inside a fire
                          callback: the time being fired) */
    uint64_t next_seq; /* seq given to the next armed timer */
    uint64_t armed;    /* number of armed timers */
    struct knit_wheel_level levels[KNIT_WHEEL_LEVELS];
};

/* Makes an empty wheel whose time starts at @now. */
void knit__wheel_init(struct knit_wheel *w, int64_t now);

/*
 * Arms @t to fire at @deadline (absolute ms) calling @fire. A deadline
 * already passed (<= elapsed) fires at the next advance. @t must not be armed.
 */
void knit__wheel_arm(struct knit_wheel *w, struct knit_timer *t,
                     int64_t deadline, knit_timer_fn fire);

/* Disarms @t; a no-op when it is not armed (or already fired). */
void knit__wheel_cancel(struct knit_wheel *w, struct knit_timer *t);

static inline bool knit__timer_is_armed(const struct knit_timer *t)
{
    return knit_list_is_linked(&t->link);
}

/* The exact earliest deadline of an armed timer, or -1 when none is armed. */
int64_t knit__wheel_next(const struct knit_wheel *w);

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
