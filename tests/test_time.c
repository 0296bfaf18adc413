// SPDX-License-Identifier: MIT
/*
 * Time: sleeps, intervals and the manual clock. Every assertion is exact:
 * the manual clock jumps to the next timer only when every task is idle.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kt.h"

static int t_sleep_exact(void *arg)
{
    (void)arg;
    assert_int_equal(knit_now(), 0);
    assert_int_equal(knit_sleep(250), 0);
    assert_int_equal(knit_now(), 250);
    assert_int_equal(knit_sleep_until(1000), 0);
    assert_int_equal(knit_now(), 1000);
    assert_int_equal(knit_sleep_until(10), 0); /* past: returns at once */
    assert_int_equal(knit_sleep(0), 0);
    assert_int_equal(knit_sleep(-5), 0);
    assert_int_equal(knit_now(), 1000);
    return 0;
}

static void sleep_wakes_exactly_at_its_deadline(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_sleep_exact, NULL), 0);
}

struct sleeper_arg {
    int64_t ms;
    int64_t *woke_at;
    char *order;
    char tag;
};

static int sleeper(void *arg)
{
    struct sleeper_arg *a = arg;
    int err = knit_sleep(a->ms);
    *a->woke_at = knit_now();
    strncat(a->order, &a->tag, 1);
    return err;
}

static int t_sleep_order(void *arg)
{
    (void)arg;
    /* Arm order is per worker's wheel; on several, a and c may wake at
     * once on two of them (and append to order together). */
    if (kt_workers() > 1)
        skip();
    char order[8] = "";
    int64_t at[4];
    struct sleeper_arg a[4] = {{300, &at[0], order, 'a'},
                               {100, &at[1], order, 'b'},
                               {300, &at[2], order, 'c'},
                               {200, &at[3], order, 'd'}};
    knit_task *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = knit_spawn(sleeper, &a[i]);
    for (int i = 0; i < 4; i++)
        assert_int_equal(knit_join(t[i]), 0);
    /* Equal deadlines wake in the order they were armed. */
    assert_string_equal(order, "bdac");
    assert_int_equal(at[0], 300);
    assert_int_equal(at[1], 100);
    assert_int_equal(at[2], 300);
    assert_int_equal(at[3], 200);
    return 0;
}

static void sleepers_wake_in_deadline_then_arm_order(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_sleep_order, NULL), 0);
}

static int sleep_long(void *arg)
{
    (void)arg;
    return knit_sleep(1000000);
}

static int t_sleep_cancel(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(sleep_long, NULL);
    assert_int_equal(knit_sleep(10), 0);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(knit_now(), 10);
    return 0; /* kt checks the sleep's timer was disarmed */
}

static void
sleep_returns_ecanceled_when_cancelled_and_leaves_no_timer(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_sleep_cancel, NULL), 0);
}

static int t_sleep_timeout(void *arg)
{
    (void)arg;
    knit_scope s;
    knit_scope_enter(&s, 40);
    assert_int_equal(knit_sleep(100), -ETIMEDOUT);
    assert_int_equal(knit_now(), 40);
    assert_int_equal(knit_sleep(1), -ETIMEDOUT); /* still fired */
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    assert_int_equal(knit_sleep(5), 0);
    assert_int_equal(knit_now(), 45);
    return 0;
}

static void sleep_returns_etimedout_when_its_scope_expires(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_sleep_timeout, NULL), 0);
}

static int t_advance(void *arg)
{
    (void)arg;
    int64_t woke = -1;
    char order[4] = "";
    struct sleeper_arg a = {500, &woke, order, 'x'};
    knit_task *t = knit_spawn(sleeper, &a);
    kt_settle(); /* t arms its timer at 0 */
    knit_clock_advance(499);
    assert_int_equal(knit_now(), 499);
    kt_settle();
    assert_int_equal(woke, -1);
    knit_clock_advance(1);
    /* On another worker t wakes when that one sees the clock: wait. */
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(woke, 500);
    return 0;
}

static void clock_advance_fires_due_timers_only(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_advance, NULL), 0);
}

static int t_interval(void *arg)
{
    int missed = (int)(intptr_t)arg;
    knit_interval iv;
    int64_t ticks[6];
    assert_int_equal(knit_interval_init(&iv, 100, missed), 0);
    ticks[0] = knit_interval_tick(&iv); /* at once, t=0 */
    ticks[1] = knit_interval_tick(&iv); /* t=100 */
    /* Busy for 250 ms: ticks at 200 and 300 are missed. */
    knit_clock_advance(250);
    for (int i = 2; i < 6; i++)
        ticks[i] = knit_interval_tick(&iv);
    char got[128];
    snprintf(got, sizeof(got), "%lld %lld %lld %lld %lld %lld @%lld",
             (long long)ticks[0], (long long)ticks[1], (long long)ticks[2],
             (long long)ticks[3], (long long)ticks[4], (long long)ticks[5],
             (long long)knit_now());
    static const char *want[] = {
        /* burst: 200 and 300 fire at once at 350, then back on the grid */
        "0 100 200 300 400 500 @500",
        /* delay: late tick at 200 (fired at 350), then 450, 550, 650 */
        "0 100 200 450 550 650 @650",
        /* skip: 200 fires late at 350, 300 is dropped, then 400 ... */
        "0 100 200 400 500 600 @600",
    };
    assert_string_equal(got, want[missed]);
    return 0;
}

static void interval_burst_catches_up_missed_ticks(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_interval, (void *)KNIT_MISSED_BURST), 0);
}

static void interval_delay_restarts_from_the_late_tick(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_interval, (void *)KNIT_MISSED_DELAY), 0);
}

static void interval_skip_keeps_to_the_grid(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_interval, (void *)KNIT_MISSED_SKIP), 0);
}

static int t_interval_errors(void *arg)
{
    (void)arg;
    knit_interval iv;
    assert_int_equal(knit_interval_init(&iv, 0, KNIT_MISSED_BURST), -EINVAL);
    assert_int_equal(knit_interval_init(&iv, 10, 9), -EINVAL);
    assert_int_equal(knit_interval_init(&iv, 10, KNIT_MISSED_SKIP), 0);
    assert_int_equal(knit_interval_tick(&iv), 0);
    knit_scope s;
    knit_scope_enter(&s, 5);
    assert_int_equal(knit_interval_tick(&iv), -ETIMEDOUT);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    knit_cancel(knit_current());
    assert_int_equal(knit_interval_tick(&iv), -ECANCELED);
    return 0;
}

static void interval_rejects_bad_arguments_and_honours_scopes(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_interval_errors, NULL), 0);
}

/* A seeded workload of 10,000 sleeps whose trace must be identical when
 * run twice (tokio's paused_time_is_deterministic). */
struct trace {
    uint64_t hash;
    int n;
};

struct det_arg {
    struct trace *tr;
    uint64_t seed;
    int id;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int det_task(void *arg)
{
    struct det_arg *a = arg;
    uint64_t r = a->seed ^ (uint64_t)a->id;
    for (int i = 0; i < 100; i++) {
        r = mix(r + 1);
        assert_int_equal(knit_sleep((int64_t)(r % 50)), 0);
        a->tr->hash =
            mix(a->tr->hash ^ ((uint64_t)knit_now() << 16) ^ (uint64_t)a->id);
        a->tr->n++;
    }
    return 0;
}

static int t_deterministic(void *arg)
{
    struct trace *tr = arg;
    struct det_arg args[100];
    knit_group g;
    knit_group_init(&g, 0);
    for (int i = 0; i < 100; i++) {
        args[i] = (struct det_arg){tr, 99, i};
        assert_int_equal(knit_group_spawn(&g, det_task, &args[i]), 0);
    }
    assert_int_equal(knit_group_wait(&g), 0);
    return 0;
}

static void manual_clock_runs_are_deterministic(void **state)
{
    (void)state;
    /* The hash records the interleaving, fixed by the seed on one worker
     * only (and tr would be written by several at once). */
    if (kt_workers() > 1)
        skip();
    struct trace a = {0, 0}, b = {0, 0};
    assert_int_equal(kt_run(t_deterministic, &a), 0);
    assert_int_equal(kt_run(t_deterministic, &b), 0);
    assert_int_equal(a.n, 10000);
    assert_int_equal(b.n, 10000);
    assert_true(a.hash == b.hash);
}

static int t_monotonic(void *arg)
{
    (void)arg;
    int64_t t0 = knit_now();
    assert_true(t0 > 0);
    assert_int_equal(knit_sleep(2), 0);
    assert_true(knit_now() >= t0 + 2);
    return 0;
}

static void monotonic_clock_sleeps_at_least_the_time_asked(void **state)
{
    (void)state;
    knit_config cfg;
    kt_config(&cfg);
    cfg.clock = KNIT_CLOCK_MONOTONIC;
    assert_int_equal(kt_run_cfg(&cfg, t_monotonic, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sleep_wakes_exactly_at_its_deadline),
        cmocka_unit_test(sleepers_wake_in_deadline_then_arm_order),
        cmocka_unit_test(
            sleep_returns_ecanceled_when_cancelled_and_leaves_no_timer),
        cmocka_unit_test(sleep_returns_etimedout_when_its_scope_expires),
        cmocka_unit_test(clock_advance_fires_due_timers_only),
        cmocka_unit_test(interval_burst_catches_up_missed_ticks),
        cmocka_unit_test(interval_delay_restarts_from_the_late_tick),
        cmocka_unit_test(interval_skip_keeps_to_the_grid),
        cmocka_unit_test(interval_rejects_bad_arguments_and_honours_scopes),
        cmocka_unit_test(manual_clock_runs_are_deterministic),
        cmocka_unit_test(monotonic_clock_sleeps_at_least_the_time_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
