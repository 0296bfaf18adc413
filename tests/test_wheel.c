// SPDX-License-Identifier: MIT
/*
 * Tests for the hierarchical timer wheel (src/time/wheel.c), driven
 * directly with explicit times, no runtime. The first part pins single
 * behaviours: exact firing time, next() on every level, cancel, arm order
 * for equal deadlines, callbacks that arm and cancel, overdue deadlines,
 * the 2^36 ms horizon and long jumps. The last case runs seeded random
 * operation sequences against a reference model (an array sorted by
 * (deadline, seq)) and compares every fire and every next() exactly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "time/wheel.h"

#define HORIZON ((int64_t)1 << 36)
#define LOG_MAX 256
#define MAX_ARMS 4

/*
 * What fired, in order. The wheel's elapsed during a callback is the time
 * being fired (wheel.c says so), which makes it the fire time to check.
 */
struct fire_log {
    int n;               /* entries used */
    int ids[LOG_MAX];    /* tt.id of each fire */
    int64_t at[LOG_MAX]; /* wheel elapsed at each fire */
};

/* A timer that logs itself and then does what its fields say. */
struct tt {
    struct knit_timer t;      /* on w while armed */
    struct knit_wheel *w;     /* the wheel it is armed on */
    struct fire_log *log;     /* where fires are recorded */
    int id;                   /* recorded in the log */
    int64_t due;              /* deadline it was last armed with */
    int64_t period;           /* re-armed at due + period ... */
    int repeats;              /* ... this many more times */
    struct tt *victim;        /* cancelled by the callback when set */
    int narm;                 /* the callback arms arm[i] at arm_at[i] */
    struct tt *arm[MAX_ARMS]; /* for i < narm */
    int64_t arm_at[MAX_ARMS]; /* for i < narm */
};

static void tt_fire(struct knit_timer *t);

static void tt_init(struct tt *x, struct knit_wheel *w, struct fire_log *log,
                    int id)
{
    memset(x, 0, sizeof(*x));
    x->w = w;
    x->log = log;
    x->id = id;
}

static void tt_arm(struct tt *x, int64_t deadline)
{
    x->due = deadline;
    knit__wheel_arm(x->w, &x->t, deadline, tt_fire);
}

static void tt_fire(struct knit_timer *t)
{
    struct tt *x = knit_container_of(t, struct tt, t);
    struct fire_log *log = x->log;

    assert_false(knit__timer_is_armed(t));
    assert_true(log->n < LOG_MAX);
    log->ids[log->n] = x->id;
    log->at[log->n] = x->w->elapsed;
    log->n++;
    if (x->victim)
        knit__wheel_cancel(x->w, &x->victim->t);
    for (int i = 0; i < x->narm; i++)
        tt_arm(x->arm[i], x->arm_at[i]);
    if (x->repeats > 0) {
        x->repeats--;
        tt_arm(x, x->due + x->period);
    }
}

static void assert_wheel_empty(struct knit_wheel *w)
{
    assert_int_equal(w->armed, 0);
    assert_int_equal(knit__wheel_next(w), -1);
    for (int l = 0; l < KNIT_WHEEL_LEVELS; l++)
        assert_int_equal(w->occupied[l], 0);
}

/* Offsets that put a timer on each level, and on level boundaries. */
static const int64_t level_offsets[] = {
    1,
    63,
    64,
    100,
    4095,
    4096,
    5000,
    (1 << 18) + 7,
    (1 << 24) + 3,
    (int64_t)1 << 30,
    ((int64_t)1 << 30) + 12345,
    HORIZON - 1,
    HORIZON,
};
#define NOFFSETS (sizeof(level_offsets) / sizeof(level_offsets[0]))

/* Start times: aligned, unaligned, and just before a 2^36 boundary. */
static const int64_t starts[] = {0, 1000, 123456789, HORIZON - 3};
#define NSTARTS (sizeof(starts) / sizeof(starts[0]))

static void
wheel_fires_a_timer_at_its_deadline_and_not_a_ms_before(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSTARTS; i++) {
        for (size_t j = 0; j < NOFFSETS; j++) {
            struct knit_wheel w;
            struct fire_log log = {0};
            struct tt a;
            int64_t d = starts[i] + level_offsets[j];

            knit__wheel_init(&w, starts[i]);
            tt_init(&a, &w, &log, 1);
            tt_arm(&a, d);
            assert_int_equal(a.t.deadline, d);
            /* Half way first, so the timer cascades at least once. */
            assert_int_equal(
                knit__wheel_advance(&w, starts[i] + (d - starts[i]) / 2), 0);
            assert_int_equal(knit__wheel_advance(&w, d - 1), 0);
            assert_true(knit__timer_is_armed(&a.t));
            assert_int_equal(knit__wheel_next(&w), d);
            assert_int_equal(knit__wheel_advance(&w, d), 1);
            assert_int_equal(log.n, 1);
            assert_int_equal(log.at[0], d);
            assert_int_equal(w.elapsed, d);
            assert_false(knit__timer_is_armed(&a.t));
            assert_wheel_empty(&w);
        }
    }
}

static void wheel_next_is_exact_for_timers_on_every_level(void **state)
{
    struct knit_wheel w;
    struct fire_log log = {0};
    struct tt ts[NOFFSETS];
    struct tt x;
    struct tt y;
    int64_t start = 123456789;
    int64_t base = (start | 4095) + 1 + 3 * 4096; /* 4096-aligned */

    (void)state;
    knit__wheel_init(&w, start);
    /* Alone: next() is the timer's own deadline, whatever its level. */
    for (size_t j = 0; j < NOFFSETS; j++) {
        tt_init(&ts[j], &w, &log, (int)j);
        tt_arm(&ts[j], start + level_offsets[j]);
        assert_int_equal(knit__wheel_next(&w), start + level_offsets[j]);
        knit__wheel_cancel(&w, &ts[j].t);
        assert_wheel_empty(&w);
    }
    /* One 2^30 ms away is on level 5 and still exact. */
    tt_init(&x, &w, &log, 100);
    tt_arm(&x, start + ((int64_t)1 << 30) + 1);
    assert_int_equal(knit__wheel_next(&w), start + ((int64_t)1 << 30) + 1);
    knit__wheel_cancel(&w, &x.t);
    /*
     * Two timers in one level-2 slot, the later deadline armed first:
     * next() must scan the slot, not trust its front or its start.
     */
    tt_init(&x, &w, &log, 101);
    tt_init(&y, &w, &log, 102);
    tt_arm(&x, base + 60);
    tt_arm(&y, base + 3);
    assert_int_equal(knit__wheel_next(&w), base + 3);
    assert_int_equal(knit__wheel_advance(&w, base - 200), 0);
    assert_int_equal(knit__wheel_next(&w), base + 3);
    assert_int_equal(knit__wheel_advance(&w, base - 1), 0);
    assert_int_equal(knit__wheel_next(&w), base + 3);
    /* Now cascaded to level 0, each in its own slot. */
    assert_int_equal(knit__wheel_advance(&w, base), 0);
    assert_int_equal(knit__wheel_next(&w), base + 3);
    knit__wheel_cancel(&w, &x.t);
    knit__wheel_cancel(&w, &y.t);
    /* All together, armed latest first: next() walks them in order. */
    knit__wheel_init(&w, start);
    for (size_t j = NOFFSETS; j-- > 0;)
        tt_arm(&ts[j], start + level_offsets[j]);
    for (size_t j = 0; j < NOFFSETS; j++) {
        int64_t d = knit__wheel_next(&w);

        assert_int_equal(d, start + level_offsets[j]);
        assert_int_equal(knit__wheel_advance(&w, d - 1), 0);
        assert_int_equal(knit__wheel_next(&w), d);
        assert_int_equal(knit__wheel_advance(&w, d), 1);
        assert_int_equal(log.ids[log.n - 1], (int)j);
    }
    assert_wheel_empty(&w);
}

static void wheel_arm_then_cancel_leaves_nothing_armed(void **state)
{
    struct knit_wheel w;
    struct fire_log log = {0};
    struct tt ts[NOFFSETS];

    (void)state;
    knit__wheel_init(&w, 1000);
    for (size_t j = 0; j < NOFFSETS; j++) {
        tt_init(&ts[j], &w, &log, (int)j);
        tt_arm(&ts[j], 1000 + level_offsets[j]);
    }
    assert_int_equal(w.armed, NOFFSETS);
    for (size_t j = 0; j < NOFFSETS; j++) {
        knit__wheel_cancel(&w, &ts[j].t);
        assert_false(knit__timer_is_armed(&ts[j].t));
    }
    assert_wheel_empty(&w);
    assert_int_equal(knit__wheel_advance(&w, 1000 + 2 * HORIZON), 0);
    assert_int_equal(log.n, 0);
}

/*
 * A cancel that empties a slot leaves its occupied bit set (I3 in
 * wheel.c): the searches skip such a bit and clear it, advance before
 * elapsed passes its slot, and next() all of them once nothing is armed.
 */
static void wheel_searches_skip_and_clear_the_bits_cancels_leave(void **state)
{
    struct knit_wheel w;
    struct fire_log log = {0};
    struct tt a;
    struct tt b;
    struct tt c;

    (void)state;
    knit__wheel_init(&w, 0);
    tt_init(&a, &w, &log, 1);
    tt_init(&b, &w, &log, 2);
    tt_init(&c, &w, &log, 3);
    tt_arm(&a, 100);  /* level 1, slot 1 */
    tt_arm(&b, 5000); /* level 2, slot 1 */
    knit__wheel_cancel(&w, &a.t);
    assert_true(w.occupied[1] & 2); /* stale */
    assert_int_equal(knit__wheel_next(&w), 5000);
    assert_false(w.occupied[1] & 2);

    tt_arm(&a, 100);
    knit__wheel_cancel(&w, &a.t); /* stale again */
    /* Elapsed moves into that slot's range (its index becomes elapsed's
     * own on level 1): advance has cleared the bit on its way. */
    assert_int_equal(knit__wheel_advance(&w, 70), 0);
    assert_false(w.occupied[1] & 2);
    tt_arm(&c, 200); /* level 1, slot 3 */
    assert_int_equal(knit__wheel_next(&w), 200);
    assert_int_equal(knit__wheel_advance(&w, 200), 1);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.ids[0], 3);
    knit__wheel_cancel(&w, &b.t); /* leaves level 2's bit */
    assert_wheel_empty(&w);
}

static void
wheel_cancel_twice_and_cancel_of_a_zeroed_timer_are_no_ops(void **state)
{
    struct knit_wheel w;
    struct fire_log log = {0};
    struct knit_timer zero = {0};
    struct tt a;
    struct tt b;

    (void)state;
    knit__wheel_init(&w, 0);
    tt_init(&a, &w, &log, 1);
    tt_init(&b, &w, &log, 2);
    tt_arm(&a, 10);
    tt_arm(&b, 10);
    knit__wheel_cancel(&w, &zero);
    assert_false(knit__timer_is_armed(&zero));
    assert_int_equal(w.armed, 2);
    knit__wheel_cancel(&w, &a.t);
    knit__wheel_cancel(&w, &a.t);
    assert_int_equal(w.armed, 1);
    assert_int_equal(knit__wheel_next(&w), 10);
    /* Cancel after firing is a no-op too. */
    assert_int_equal(knit__wheel_advance(&w, 10), 1);
    assert_int_equal(log.ids[0], 2);
    knit__wheel_cancel(&w, &b.t);
    assert_wheel_empty(&w);
}

static void wheel_fires_equal_deadlines_in_arm_order_across_levels(void **state)
{
    struct knit_wheel w;
    struct fire_log log = {0};
    struct tt ts[6];
    /* One ms in each level's range: it cascades through every level. */
    int64_t far = ((int64_t)1 << 30) + (1 << 24) + (1 << 18) + 4096 + 64 + 40;

    (void)state;
    knit__wheel_init(&w, 0);
    for (int i = 0; i < 6; i++)
        tt_init(&ts[i], &w, &log, i);
    /* 10000 from 0 is level 2; from 9000 level 1; from 9990 level 0. */
    tt_arm(&ts[0], 10000);
    tt_arm(&ts[1], 10000);
    assert_int_equal(knit__wheel_advance(&w, 9000), 0);
    tt_arm(&ts[2], 10000);
    assert_int_equal(knit__wheel_advance(&w, 9990), 0);
    tt_arm(&ts[3], 10000);
    tt_arm(&ts[4], 9999);
    assert_int_equal(knit__wheel_advance(&w, 10000), 5);
    assert_int_equal(log.ids[0], 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(log.ids[1 + i], i);
        assert_int_equal(log.at[1 + i], 10000);
    }
    /* Same from level 5: armed early, cascades five times; armed late. */
    log.n = 0;
    tt_arm(&ts[5], far);
    assert_int_equal(knit__wheel_advance(&w, far - 10), 0);
    tt_arm(&ts[0], far);
    assert_int_equal(knit__wheel_advance(&w, far + 100), 2);
    assert_int_equal(log.ids[0], 5);
    assert_int_equal(log.ids[1], 0);
    assert_wheel_empty(&w);
}

static void wheel_periodic_timer_rearms_itself_from_its_callback(void **state)
{
    struct knit_wheel w;
    struct fire_log log = {0};
    struct tt a;

    (void)state;
    /* Stepping 1 ms at a time: each period fires exactly on time. */
    knit__wheel_init(&w, 0);
    tt_init(&a, &w, &log, 1);
    a.period = 7;
    a.repeats = 5;
    tt_arm(&a, 10);
    for (int64_t now = 1; now <= 100; now++)
        knit__wheel_advance(&w, now);
    assert_int_equal(log.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(log.at[i], 10 + 7 * i);
    assert_wheel_empty(&w);
    /* One jump past them all: re-arms due by then fire in the same call. */
    log.n = 0;
    a.repeats = 5;
    tt_arm(&a, 110);
    assert_int_equal(knit__wheel_advance(&w, 1000), 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(log.at[i], 110 + 7 * i);
    assert_wheel_empty(&w);
}

static void
wheel_callback_cancels_another_timer_due_in_the_same_advance(void **state)
{
    struct knit_wheel w;
    struct fire_log log = {0};
    struct tt a;
    struct tt b;
    struct tt c;
    struct tt d;
    struct tt e;

    (void)state;
    knit__wheel_init(&w, 0);
    tt_init(&a, &w, &log, 1);
    tt_init(&b, &w, &log, 2);
    tt_init(&c, &w, &log, 3);
    tt_init(&d, &w, &log, 4);
    tt_init(&e, &w, &log, 5);
    /* b is due with a, in the same slot, and is next in line. */
    a.victim = &b;
    tt_arm(&a, 50);
    tt_arm(&b, 50);
    /* d is due later in the same advance, still on a higher level. */
    c.victim = &d;
    tt_arm(&c, 5000);
    tt_arm(&d, 7000);
    tt_arm(&e, 6000);
    assert_int_equal(knit__wheel_advance(&w, 10000), 3);
    assert_int_equal(log.ids[0], 1);
    assert_int_equal(log.ids[1], 3);
    assert_int_equal(log.ids[2], 5);
    assert_false(knit__timer_is_armed(&b.t));
    assert_false(knit__timer_is_armed(&d.t));
    assert_wheel_empty(&w);
}

/*
 * A callback arming timers due by @now: they fire in the same call, in
 * (deadline, seq) order with everything still due, so one whose deadline
 * is already behind the time being fired goes before the rest of that
 * time's timers, and one at that time goes after them.
 */
static void
wheel_callback_arming_due_timers_fires_them_in_the_same_advance(void **state)
{
    struct knit_wheel w;
    struct fire_log log = {0};
    struct tt a;
    struct tt b;
    struct tt c;
    struct tt x[4];
    static const int expect[] = {1, 10, 2, 11, 3, 12};

    (void)state;
    knit__wheel_init(&w, 0);
    tt_init(&a, &w, &log, 1);
    tt_init(&b, &w, &log, 2);
    tt_init(&c, &w, &log, 3);
    for (int i = 0; i < 4; i++)
        tt_init(&x[i], &w, &log, 10 + i);
    a.narm = 4;
    for (int i = 0; i < 4; i++)
        a.arm[i] = &x[i];
    a.arm_at[0] = 50;
    a.arm_at[1] = 100;
    a.arm_at[2] = 150;
    a.arm_at[3] = 300;
    tt_arm(&a, 100);
    tt_arm(&b, 100);
    tt_arm(&c, 120);
    assert_int_equal(knit__wheel_advance(&w, 200), 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(log.ids[i], expect[i]);
    assert_int_equal(log.at[1], 100);
    assert_int_equal(log.at[5], 150);
    assert_int_equal(knit__wheel_next(&w), 300);
    knit__wheel_cancel(&w, &x[3].t);
    assert_wheel_empty(&w);
}

static void wheel_fires_a_past_deadline_at_the_next_advance(void **state)
{
    struct knit_wheel w;
    struct fire_log log = {0};
    struct tt a;
    struct tt b;
    struct tt c;
    struct tt d;

    (void)state;
    knit__wheel_init(&w, 1000);
    tt_init(&a, &w, &log, 1);
    tt_init(&b, &w, &log, 2);
    tt_init(&c, &w, &log, 3);
    tt_init(&d, &w, &log, 4);
    tt_arm(&a, 990);
    tt_arm(&b, 1000);
    tt_arm(&c, 950);
    assert_int_equal(knit__wheel_next(&w), 950);
    /* Advancing to elapsed itself, or backwards, still fires them. */
    assert_int_equal(knit__wheel_advance(&w, 500), 3);
    assert_int_equal(w.elapsed, 1000);
    /* Overdue ones fire by deadline, not just by arm order. */
    assert_int_equal(log.ids[0], 3);
    assert_int_equal(log.ids[1], 1);
    assert_int_equal(log.ids[2], 2);
    /* A negative deadline reads as 0, so next() never returns it as -1. */
    tt_arm(&d, -1);
    assert_int_equal(d.t.deadline, 0);
    assert_int_equal(knit__wheel_next(&w), 0);
    assert_int_equal(knit__wheel_advance(&w, 1000), 1);
    assert_wheel_empty(&w);
}

/*
 * Deadlines more than 2^36 ms (about 2.2 years) past elapsed are clamped to
 * elapsed + 2^36 when armed: t->deadline is rewritten, next() reports the
 * clamped value, the timer fires then, and it ranks by seq with timers
 * armed for that exact time. INT64_MAX ("never") is no exception; callers
 * that mean never should not arm at all.
 */
static void wheel_clamps_a_deadline_beyond_the_horizon(void **state)
{
    struct knit_wheel w;
    struct fire_log log = {0};
    struct tt a;
    struct tt b;
    struct tt c;
    int64_t start = 5;
    int64_t edge = start + HORIZON;

    (void)state;
    knit__wheel_init(&w, start);
    tt_init(&a, &w, &log, 1);
    tt_init(&b, &w, &log, 2);
    tt_init(&c, &w, &log, 3);
    tt_arm(&a, INT64_MAX);
    tt_arm(&b, edge);
    tt_arm(&c, edge + 1);
    assert_int_equal(a.t.deadline, edge);
    assert_int_equal(b.t.deadline, edge);
    assert_int_equal(c.t.deadline, edge);
    assert_int_equal(knit__wheel_next(&w), edge);
    assert_int_equal(knit__wheel_advance(&w, edge - 1), 0);
    assert_int_equal(knit__wheel_next(&w), edge);
    assert_int_equal(knit__wheel_advance(&w, INT64_MAX / 4), 3);
    assert_int_equal(log.ids[0], 1);
    assert_int_equal(log.ids[1], 2);
    assert_int_equal(log.ids[2], 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(log.at[i], edge);
    assert_wheel_empty(&w);
}

/* Sorts @ids by the deadlines in @due, stably (so ties stay in arm order). */
static void sort_by_due(int *ids, int n, const int64_t *due)
{
    for (int i = 1; i < n; i++) {
        int id = ids[i];
        int j = i;

        for (; j > 0 && due[ids[j - 1]] > due[id]; j--)
            ids[j] = ids[j - 1];
        ids[j] = id;
    }
}

static void
wheel_large_jump_fires_everything_due_in_deadline_order(void **state)
{
    enum { N = 200 };
    static struct tt ts[N];
    struct knit_wheel w;
    struct fire_log log = {0};
    int64_t due[N];
    int ids[N];
    int n = 0;
    uint64_t r = 88172645463325252u;
    int64_t now = 1000000000;

    (void)state;
    knit__wheel_init(&w, 777);
    for (int i = 0; i < N; i++) {
        int64_t off;

        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        /* Spread over every level, some ties, some past the jump. */
        off = (int64_t)(r % 4 == 0 ? r % 64 : r % ((uint64_t)now * 2));
        if (i % 10 == 9)
            off = due[r % (uint64_t)i] - 777;
        due[i] = 777 + off;
        tt_init(&ts[i], &w, &log, i);
        tt_arm(&ts[i], due[i]);
        if (due[i] <= now)
            ids[n++] = i;
    }
    sort_by_due(ids, n, due);
    assert_true(n > 50 && n < N);
    assert_int_equal(knit__wheel_advance(&w, now), n);
    assert_int_equal(log.n, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(log.ids[i], ids[i]);
        assert_int_equal(log.at[i], due[ids[i]]);
    }
    assert_int_equal(w.armed, N - n);
    for (int i = 0; i < N; i++)
        knit__wheel_cancel(&w, &ts[i].t);
    assert_wheel_empty(&w);
}

/*
 * The randomized property test. Wheel and model take the same operations;
 * each fire is checked, inside the callback, against the model's front
 * entry, so the whole fire sequence, the time each fires at and the
 * advance it fires in are compared exactly.
 */
#define PT_TIMERS 96
#define PT_SEEDS 20
#define PT_OPS 20000
/* Callback arms of already-due timers allowed per advance (no livelock). */
#define PT_DUE_BUDGET 64

struct model_entry {
    int id;           /* index in prop.timers */
    int64_t deadline; /* after the contract's clamping */
    uint64_t seq;     /* arm order */
};

struct prop;

struct ptimer {
    struct knit_timer t; /* on prop.w while armed */
    struct prop *p;      /* the run it belongs to */
    int id;              /* its index in prop.timers */
};

struct prop {
    struct knit_wheel w;
    struct ptimer timers[PT_TIMERS];
    struct model_entry m[PT_TIMERS]; /* armed, sorted by (deadline, seq) */
    int mn;                          /* entries in m */
    bool armed[PT_TIMERS];           /* by id: has an entry in m */
    int64_t me;                      /* model elapsed */
    uint64_t mseq;                   /* model next seq */
    int64_t now;                     /* @now of the advance running */
    int fired;                       /* fires seen in that advance */
    int due_budget;                  /* see bound_due() */
    bool draining;                   /* callbacks check but do not act */
    uint64_t rng;                    /* splitmix64 state */
    unsigned seed;                   /* printed on failure */
    long op;                         /* printed on failure */
};

#define PCHECK(p, cond)                                                        \
    do {                                                                       \
        if (!(cond))                                                           \
            fail_msg("seed %u op %ld: %s (line %d)", (p)->seed, (p)->op,       \
                     #cond, __LINE__);                                         \
    } while (0)

static uint64_t rnd(struct prop *p)
{
    /* splitmix64: fixed seeds give fixed sequences on every platform. */
    uint64_t z = (p->rng += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in [0, n]. */
static int64_t upto(struct prop *p, int64_t n)
{
    return (int64_t)(rnd(p) % ((uint64_t)n + 1));
}

static int model_find(const struct prop *p, int id)
{
    if (!p->armed[id])
        return -1;
    for (int i = 0; i < p->mn; i++)
        if (p->m[i].id == id)
            return i;
    return -1;
}

static void model_remove(struct prop *p, int i)
{
    p->armed[p->m[i].id] = false;
    memmove(&p->m[i], &p->m[i + 1], (size_t)(p->mn - i - 1) * sizeof(p->m[0]));
    p->mn--;
}

/* The contract, restated simply: clamp, then sort by (deadline, seq). */
static void model_arm(struct prop *p, int id, int64_t deadline)
{
    struct model_entry e;
    int i = p->mn;

    if (deadline < 0)
        deadline = 0;
    else if (deadline - p->me > HORIZON)
        deadline = p->me + HORIZON;
    e.id = id;
    e.deadline = deadline;
    e.seq = p->mseq++;
    while (i > 0 && p->m[i - 1].deadline > deadline) {
        p->m[i] = p->m[i - 1];
        i--;
    }
    p->m[i] = e;
    p->mn++;
    p->armed[id] = true;
}

static void prop_fire(struct knit_timer *t);

static int64_t random_deadline(struct prop *p)
{
    int64_t me = p->me;
    uint64_t k = rnd(p) % 100;

    if (k < 17 && p->mn > 0) /* a tie with some armed timer */
        return p->m[upto(p, p->mn - 1)].deadline;
    if (k < 27)
        return me - upto(p, 100);
    if (k < 32)
        return me;
    if (k < 60)
        return me + 1 + upto(p, 70);
    if (k < 80)
        return me + 1 + upto(p, 5000);
    if (k < 90)
        return me + 1 + upto(p, 1 << 24);
    if (k < 95)
        return me + 1 + upto(p, HORIZON);
    if (k < 98)
        return me + HORIZON - 3 + upto(p, 6);
    return k == 98 ? INT64_MAX : me + HORIZON * 1000;
}

static void both_arm(struct prop *p, int id, int64_t deadline)
{
    struct ptimer *pt = &p->timers[id];
    int i;

    knit__wheel_arm(&p->w, &pt->t, deadline, prop_fire);
    model_arm(p, id, deadline);
    i = model_find(p, id);
    PCHECK(p, pt->t.deadline == p->m[i].deadline);
}

static void both_cancel(struct prop *p, int id)
{
    int i = model_find(p, id);

    knit__wheel_cancel(&p->w, &p->timers[id].t);
    if (i >= 0)
        model_remove(p, i);
}

/*
 * Inside a callback, a timer armed due by now fires in the same advance and
 * may arm another: a budget per advance keeps that loop finite.
 */
static int64_t bound_due(struct prop *p, int64_t d)
{
    if (p->now < 0 || d > p->now)
        return d;
    if (p->due_budget == 0)
        return p->now + 1;
    p->due_budget--;
    return d;
}

/*
 * Arms a random timer; if it is armed already, sometimes cancels it
 * instead, and otherwise does nothing (so the wheel fills up to about
 * two thirds of the timers).
 */
static void random_arm_or_cancel(struct prop *p)
{
    int id = (int)upto(p, PT_TIMERS - 1);

    if (model_find(p, id) < 0)
        both_arm(p, id, bound_due(p, random_deadline(p)));
    else if (upto(p, 3) == 0)
        both_cancel(p, id);
}

static void prop_fire(struct knit_timer *t)
{
    struct ptimer *pt = knit_container_of(t, struct ptimer, t);
    struct prop *p = pt->p;
    const struct model_entry *front = &p->m[0];
    uint64_t k;

    /* It must be the model's least (deadline, seq), and due by now. */
    PCHECK(p, p->now >= 0);
    PCHECK(p, p->mn > 0);
    PCHECK(p, front->id == pt->id);
    PCHECK(p, front->deadline <= p->now);
    PCHECK(p, !knit__timer_is_armed(t));
    if (front->deadline > p->me)
        p->me = front->deadline;
    PCHECK(p, p->w.elapsed == p->me);
    model_remove(p, 0);
    p->fired++;
    PCHECK(p, p->w.armed == (uint64_t)p->mn);
    if (p->draining)
        return;
    k = rnd(p) % 100;
    if (k < 10) /* periodic: re-arm itself, maybe already due */
        both_arm(p, pt->id, bound_due(p, p->me - 5 + upto(p, 20)));
    else if (k < 25)
        random_arm_or_cancel(p); /* perhaps itself: it is unarmed now */
    else if (k < 40)
        both_cancel(p, (int)upto(p, PT_TIMERS - 1));
}

/* Mostly small steps; rare long jumps, which empty most of the wheel. */
static int64_t random_step(struct prop *p)
{
    uint64_t k = rnd(p) % 1000;

    if (k < 450)
        return upto(p, 3);
    if (k < 750)
        return upto(p, 100);
    if (k < 900)
        return upto(p, 5000);
    if (k < 970 && p->mn > 0) { /* to a near deadline, or 1 ms short */
        int i = (int)upto(p, p->mn < 4 ? p->mn - 1 : 3);
        int64_t d = p->m[i].deadline - upto(p, 1);

        return d > p->me ? d - p->me : 0;
    }
    if (k < 995)
        return upto(p, 1 << 26);
    return upto(p, HORIZON * 2);
}

static void prop_advance(struct prop *p, int64_t now)
{
    int n;

    p->now = now > p->me ? now : p->me;
    p->fired = 0;
    p->due_budget = PT_DUE_BUDGET;
    n = knit__wheel_advance(&p->w, now);
    PCHECK(p, n == p->fired);
    /* Nothing due may be left behind for a later advance. */
    PCHECK(p, p->mn == 0 || p->m[0].deadline > p->now);
    p->me = p->now;
    p->now = -1;
    PCHECK(p, p->w.elapsed == p->me);
}

/* Slow checks of the wheel's own structure, every so often. */
static void prop_check_structure(struct prop *p)
{
    for (int l = 0; l < KNIT_WHEEL_LEVELS; l++) {
        for (int s = 0; s < KNIT_WHEEL_SLOTS; s++) {
            bool bit = (p->w.occupied[l] >> s) & 1;

            /* I3: a set bit may be stale, a clear one never lies. */
            PCHECK(p, bit || knit_list_is_empty(
                                 &p->w.slots[l * KNIT_WHEEL_SLOTS + s]));
        }
    }
}

static void prop_run(struct prop *p, unsigned seed)
{
    static const int64_t starts_by_seed[] = {0, HORIZON - 100,
                                             ((int64_t)1 << 30) - 1};
    int64_t start;

    memset(p, 0, sizeof(*p));
    p->seed = seed;
    p->rng = seed * 0x2545f4914f6cdd1du + 1;
    p->now = -1;
    start = seed < 3 ? starts_by_seed[seed] : upto(p, (int64_t)1 << 40);
    knit__wheel_init(&p->w, start);
    p->me = start;
    for (int i = 0; i < PT_TIMERS; i++) {
        p->timers[i].p = p;
        p->timers[i].id = i;
    }
    for (p->op = 0; p->op < PT_OPS; p->op++) {
        uint64_t k = rnd(p) % 100;

        if (k < 55)
            random_arm_or_cancel(p);
        else if (k < 62)
            both_cancel(p, (int)upto(p, PT_TIMERS - 1));
        else
            prop_advance(p, p->me + random_step(p));
        PCHECK(p, knit__wheel_next(&p->w) == (p->mn ? p->m[0].deadline : -1));
        PCHECK(p, p->w.armed == (uint64_t)p->mn);
        for (int i = 0; i < PT_TIMERS; i++)
            PCHECK(p, knit__timer_is_armed(&p->timers[i].t) == p->armed[i]);
        if (p->op % 256 == 0)
            prop_check_structure(p);
    }
    /* Drain: everything left fires, in order, at its deadline. */
    p->draining = true;
    prop_advance(p, p->me + 2 * HORIZON);
    PCHECK(p, p->mn == 0);
    PCHECK(p, knit__wheel_next(&p->w) == -1);
    prop_check_structure(p);
}

static void
wheel_matches_a_sorted_array_model_under_random_operations(void **state)
{
    static struct prop p;

    (void)state;
    for (unsigned seed = 0; seed < PT_SEEDS; seed++)
        prop_run(&p, seed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            wheel_fires_a_timer_at_its_deadline_and_not_a_ms_before),
        cmocka_unit_test(wheel_next_is_exact_for_timers_on_every_level),
        cmocka_unit_test(wheel_arm_then_cancel_leaves_nothing_armed),
        cmocka_unit_test(wheel_searches_skip_and_clear_the_bits_cancels_leave),
        cmocka_unit_test(
            wheel_cancel_twice_and_cancel_of_a_zeroed_timer_are_no_ops),
        cmocka_unit_test(
            wheel_fires_equal_deadlines_in_arm_order_across_levels),
        cmocka_unit_test(wheel_periodic_timer_rearms_itself_from_its_callback),
        cmocka_unit_test(
            wheel_callback_cancels_another_timer_due_in_the_same_advance),
        cmocka_unit_test(
            wheel_callback_arming_due_timers_fires_them_in_the_same_advance),
        cmocka_unit_test(wheel_fires_a_past_deadline_at_the_next_advance),
        cmocka_unit_test(wheel_clamps_a_deadline_beyond_the_horizon),
        cmocka_unit_test(
            wheel_large_jump_fires_everything_due_in_deadline_order),
        cmocka_unit_test(
            wheel_matches_a_sorted_array_model_under_random_operations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
