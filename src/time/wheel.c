// SPDX-License-Identifier: MIT
/*
 * Hierarchical timer wheel (see wheel.h for the contract). This file holds,
 * in order: the geometry (which level and slot a deadline belongs in), slot
 * insertion, arm and cancel, the search for the earliest occupied slot, and
 * advance, which fires level-0 slots and cascades higher ones.
 *
 * Geometry. Level L has 64 slots of 64^L ms, so it spans 64^(L+1) ms. Seen
 * from elapsed (e), the levels split the future into disjoint ranges that
 * grow with the level: level 0 holds the rest of e's 64 ms block, one
 * deadline per slot; level 1 the rest of e's 4096 ms block, 64 ms per slot;
 * and so on up to level 5, whose slots are 2^30 ms wide. Level 5 is also a
 * ring: its slots at or behind e's own index hold deadlines in the next
 * 2^36 ms block (one rotation ahead), which is what lets any deadline up to
 * e + 2^36 be held even when that crosses a 2^36 boundary.
 *
 * Invariants (checked by the randomized test against a reference model):
 *
 * I1 Placement. An armed timer sits in the slot that locate() computes from
 *    its deadline and the *current* elapsed: deadlines <= elapsed in level
 *    0 at elapsed's own index (the "due slot"), later ones at the level of
 *    the highest bit where deadline and elapsed differ. Advance preserves
 *    this because it visits slots in time order and never moves elapsed
 *    past the start of an occupied slot without processing it; a slot's
 *    index at its level does not change while elapsed stays before it.
 *    Two consequences: every timer with a given deadline is in the same
 *    slot, and cancel can recompute a timer's slot instead of storing it.
 *
 * I2 Order. Every list is in arm order, except the due slot's, which is
 *    sorted by (deadline, arm order); other level-0 lists hold a single
 *    deadline. Higher-level lists' order matters only when they cascade,
 *    and arm order there makes equal deadlines land in their level-0 slot
 *    in arm order. No sequence number is stored: every insertion but one
 *    appends a timer newer than all others in its list. A fresh arm is
 *    the newest timer of all; a cascade moves a slot's timers, in order,
 *    into the lower slots that cover its range, which are empty when it
 *    starts (by I1, every timer due in that range is in the cascading
 *    slot, fire callbacks' timers too). The one exception is an overdue
 *    deadline armed after later-due timers, which insert() walks back
 *    past them in the due slot.
 *
 * I3 Occupied. Bit s of occupied[L] is set if level L's slot s is
 *    non-empty. A cancel leaves the bit of a slot it empties (a stale
 *    bit): next_slot() clears stale bits as it meets them, so no search
 *    ever returns an empty slot, and knit__wheel_next() clears them all
 *    once nothing is armed. Firing and cascading clear bits eagerly.
 *
 * I4 Horizon. 0 <= deadline <= elapsed + 2^36 for every armed timer; arm
 *    clamps deadlines to that range and rewrites t->deadline, so the
 *    deadline a timer reports is the one at which it really fires.
 *
 * During a fire callback, elapsed is the time being fired (the deadline of
 * the timer, or the old elapsed for a timer that was already overdue), so
 * a callback arming a timer relative to elapsed sees the time it fires at.
 */
#include "time/wheel.h"

#include <assert.h>

#define SLOT_BITS KNIT_WHEEL_SLOT_BITS
#define SLOT_MASK ((uint64_t)KNIT_WHEEL_SLOTS - 1)
#define HORIZON KNIT_WHEEL_HORIZON
/*
 * The largest elapsed the wheel accepts: next_slot() computes times up to
 * two horizons past elapsed (the start of e's 2^36 block plus one rotation
 * plus a slot) and must not overflow. That is still 290 million years of ms.
 */
#define MAX_ELAPSED (INT64_MAX - 2 * HORIZON)

_Static_assert(KNIT_WHEEL_SLOTS == 64, "one 64-bit occupied word per level");
_Static_assert(HORIZON < INT64_MAX / 4, "times fit in int64_t");

static struct knit_timer *timer_of(struct knit_list *n)
{
    return knit_container_of(n, struct knit_timer, link);
}

static uint64_t slot_bit(unsigned slot)
{
    return UINT64_C(1) << slot;
}

/* Rotates right, so that bit @n of @x becomes bit 0. */
static uint64_t rotr64(uint64_t x, unsigned n)
{
    n &= 63;
    return (x >> n) | (x << ((64 - n) & 63));
}

/* Bit b belongs to level b / 6; bits from 36 up (the next 2^36 block)
 * to the top level, whose ring holds them (I4 keeps them within one
 * rotation). */
const uint8_t knit__wheel_level_of_bit[64] = {
    0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, /* bits 0-15 */
    2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 5, 5, /* bits 16-31 */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* bits 32-47 */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* bits 48-63 */
};

/* The slot list for @deadline under the current elapsed (invariant I1). */
static struct knit_list *locate(struct knit_wheel *w, int64_t deadline,
                                unsigned *level, unsigned *slot)
{
    if (deadline <= w->elapsed) {
        *level = 0; /* the due slot */
        *slot = (unsigned)((uint64_t)w->elapsed & SLOT_MASK);
    } else {
        *level = knit__wheel_level(w->elapsed, deadline);
        *slot = knit__wheel_slot(deadline, *level);
    }
    return &w->slots[*level * KNIT_WHEEL_SLOTS + *slot];
}

/*
 * True when @u, already in a list of @level, must stay after @t, which is
 * newer than every timer of that list (invariant I2).
 */
static bool goes_after(const struct knit_timer *u, const struct knit_timer *t,
                       unsigned level)
{
    return level == 0 && u->deadline > t->deadline;
}

/*
 * Links @t, newer than every timer in its slot (I2), into that slot. The
 * walk starts at the tail and stops at once everywhere but in the due
 * slot, where an overdue deadline armed out of order walks past the
 * later-due timers.
 */
static void insert(struct knit_wheel *w, struct knit_timer *t)
{
    unsigned level;
    unsigned slot;
    struct knit_list *head = locate(w, t->deadline, &level, &slot);
    struct knit_list *pos = head->prev;

    while (pos != head && goes_after(timer_of(pos), t, level))
        pos = pos->prev;
    knit_list_insert_after(pos, &t->link);
    w->occupied[level] |= slot_bit(slot);
}

void knit__wheel_init(struct knit_wheel *w, int64_t now)
{
    assert(now >= 0 && now <= MAX_ELAPSED);
    w->elapsed = now;
    w->armed = 0;
    for (unsigned l = 0; l < KNIT_WHEEL_LEVELS; l++)
        w->occupied[l] = 0;
    for (unsigned i = 0; i < KNIT_WHEEL_LEVELS * KNIT_WHEEL_SLOTS; i++)
        knit_list_init(&w->slots[i]);
}

/*
 * The arms the inline knit__wheel_arm() leaves: deadlines at or before
 * elapsed (the due slot, which may take a walk in insert), negative ones
 * and ones beyond the horizon.
 */
void knit__wheel_arm_slow(struct knit_wheel *w, struct knit_timer *t,
                          int64_t deadline, knit_timer_fn fire)
{
    assert(!knit__timer_is_armed(t));
    /*
     * Negative deadlines are all overdue anyway (elapsed >= 0); making them
     * 0 keeps knit__wheel_next() from ever returning a deadline that reads
     * as its "nothing armed" -1. Both operands are >= 0 below, so the
     * subtraction cannot overflow even for INT64_MAX ("never").
     */
    if (deadline < 0)
        deadline = 0;
    else if (deadline - w->elapsed > HORIZON)
        deadline = w->elapsed + HORIZON;
    t->deadline = deadline;
    t->fire = fire;
    insert(w, t);
    w->armed++;
}

bool knit__wheel_is_home(struct knit_wheel *w, const struct knit_timer *t,
                         const struct knit_list *head)
{
    unsigned level;
    unsigned slot;

    return head == locate(w, t->deadline, &level, &slot);
}

/*
 * Finds the non-empty slot that starts first, and when it starts. Because
 * the levels cover disjoint, increasing ranges of the future, that slot is
 * on the lowest non-empty level, at the first occupied index from
 * elapsed's own index on (rotating the bitmap makes that a ctz). Clears
 * the stale bits (I3) it meets on the way. Returns false when the wheel
 * is empty.
 */
static bool next_slot(struct knit_wheel *w, unsigned *level, unsigned *slot,
                      int64_t *when)
{
    for (unsigned l = 0; l < KNIT_WHEEL_LEVELS; l++) {
        unsigned shift = SLOT_BITS * l;
        unsigned cur;
        unsigned from;
        unsigned s;
        int64_t start;

        if (w->occupied[l] == 0)
            continue;
        cur = (unsigned)(((uint64_t)w->elapsed >> shift) & SLOT_MASK);
        /*
         * Level 0's own index is the due slot and comes first. Above it,
         * the own index is empty except on level 5, where it holds the
         * next rotation and so comes last: start the search after it.
         */
        from = l == 0 ? cur : cur + 1;
        for (;;) {
            uint64_t occupied = w->occupied[l];

            if (occupied == 0)
                break;
            s = (from + (unsigned)__builtin_ctzll(rotr64(occupied, from))) &
                (unsigned)SLOT_MASK;
            if (!knit_list_is_empty(&w->slots[l * KNIT_WHEEL_SLOTS + s]))
                break;
            w->occupied[l] &= ~slot_bit(s); /* stale (I3) */
        }
        if (w->occupied[l] == 0)
            continue;
        start = (w->elapsed & ~(((int64_t)1 << (shift + SLOT_BITS)) - 1)) +
                ((int64_t)s << shift);
        /*
         * Level 0 starts at elapsed itself for the due slot. Above it, a
         * slot at or behind elapsed's index only occurs on level 5 and
         * means the next rotation of the ring.
         */
        if (l > 0 && start <= w->elapsed) {
            assert(l == KNIT_WHEEL_LEVELS - 1);
            start += HORIZON;
        }
        *level = l;
        *slot = s;
        *when = start;
        return true;
    }
    return false;
}

int64_t knit__wheel_next(struct knit_wheel *w)
{
    const struct knit_list *head;
    const struct knit_list *n;
    unsigned level;
    unsigned slot;
    int64_t when;
    int64_t min;

    if (w->armed == 0) {
        /* Only stale bits (I3) can be left: drop them all at once. */
        for (unsigned l = 0; l < KNIT_WHEEL_LEVELS; l++)
            w->occupied[l] = 0;
        return -1;
    }
    if (!next_slot(w, &level, &slot, &when))
        return -1;
    head = &w->slots[level * KNIT_WHEEL_SLOTS + slot];
    /* Level 0 lists are sorted by deadline (I2): the front is the least. */
    min = timer_of(head->next)->deadline;
    if (level == 0)
        return min;
    /*
     * A higher slot covers 64^level ms in arm order, so scan it. This is
     * O(slot size) but only runs when the worker is about to sleep, and the
     * slot that starts first holds the earliest deadline since slots cover
     * disjoint ranges.
     */
    knit_list_for_each(n, head)
    {
        const struct knit_timer *t =
            knit_container_of(n, const struct knit_timer, link);

        if (t->deadline < min)
            min = t->deadline;
    }
    return min;
}

/*
 * Fires level-0 @slot, whose time is elapsed. Popping one timer at a time
 * (rather than detaching the list) lets callbacks cancel timers still in
 * it, and lets overdue timers they arm, which land in this same slot
 * because it is now the due slot, fire in (deadline, arm) order with it.
 * Callbacks must not call knit__wheel_advance(): elapsed is mid-step here.
 */
static int fire_slot(struct knit_wheel *w, unsigned slot)
{
    struct knit_list *head = &w->slots[slot];
    struct knit_list *n;
    int fired = 0;

    while ((n = knit_list_pop_front(head)) != NULL) {
        struct knit_timer *t = timer_of(n);

        /* Clear before the callback, which may arm into this slot again. */
        if (knit_list_is_empty(head))
            w->occupied[0] &= ~slot_bit(slot);
        w->armed--;
        fired++;
        t->fire(t);
    }
    return fired;
}

/*
 * Moves every timer of a higher-level slot, whose start is now elapsed, to
 * the finer slots that now cover it (a deadline equal to the start goes to
 * the due slot). No callback runs here, so detaching the list first is safe.
 */
static void cascade(struct knit_wheel *w, unsigned level, unsigned slot)
{
    struct knit_list batch;
    struct knit_list *n;

    knit_list_init(&batch);
    knit_list_splice_back(&batch, &w->slots[level * KNIT_WHEEL_SLOTS + slot]);
    w->occupied[level] &= ~slot_bit(slot);
    /* Taken in arm order, so equal deadlines stay in arm order (I2). */
    while ((n = knit_list_pop_front(&batch)) != NULL)
        insert(w, timer_of(n));
}

int knit__wheel_advance(struct knit_wheel *w, int64_t now)
{
    unsigned level;
    unsigned slot;
    int64_t when;
    int fired = 0;

    /* Never backwards, but overdue timers fire whatever @now says. */
    if (now < w->elapsed)
        now = w->elapsed;
    assert(now <= MAX_ELAPSED);
    /*
     * Slots are taken strictly in time order and re-searched after each,
     * since callbacks and cascades change what is occupied. Each visit
     * either fires timers or moves them to a lower level, so a jump of any
     * length costs O(slots visited + timers moved), not O(ms).
     */
    while (next_slot(w, &level, &slot, &when) && when <= now) {
        w->elapsed = when;
        if (level == 0)
            fired += fire_slot(w, slot);
        else
            cascade(w, level, slot);
    }
    w->elapsed = now;
    return fired;
}
