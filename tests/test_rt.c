// SPDX-License-Identifier: MIT
/*
 * The runtime object: statistics, the task dump, the stall detector and
 * misuse panics (in child processes).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "kt.h"

static int sleep_forever(void *arg)
{
    (void)arg;
    return knit_sleep_until(KNIT_FOREVER);
}

static int sleep_a_while(void *arg)
{
    (void)arg;
    return knit_sleep(100);
}

static int t_stats(void *arg)
{
    (void)arg;
    knit_stats s;
    assert_int_equal(knit_rt_stats(&s), 0);
    assert_int_equal(s.seed, 1); /* kt_config's default */
    assert_int_equal(s.workers, 1);
    /* KNIT_IO names the backend; without it AUTO takes io_uring where
     * it works, epoll elsewhere. */
    const char *io = getenv("KNIT_IO");
    if (io)
        assert_string_equal(s.io_backend, io);
    else
        assert_true(strcmp(s.io_backend, "uring") == 0 ||
                    strcmp(s.io_backend, "epoll") == 0);
    assert_int_equal(s.tasks_spawned, 1);
    assert_int_equal(s.tasks_alive, 1);
    assert_int_equal(s.stacks_in_use, 1);
    knit_task *a = knit_spawn(sleep_a_while, NULL);
    knit_task *b = knit_spawn(sleep_a_while, NULL);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(knit_rt_stats(&s), 0);
    assert_int_equal(s.tasks_spawned, 3);
    assert_int_equal(s.tasks_alive, 3);
    assert_int_equal(s.stacks_in_use, 3);
    assert_int_equal(s.timers_armed, 2);
    assert_true(s.switches >= 3);
    assert_int_equal(knit_join(a), 0);
    assert_int_equal(knit_join(b), 0);
    assert_int_equal(knit_rt_stats(&s), 0);
    assert_int_equal(s.tasks_alive, 1);
    assert_int_equal(s.stacks_in_use, 1);
    assert_int_equal(s.stacks_pooled, 2); /* kept for reuse */
    assert_int_equal(s.timers_armed, 0);
    return 0;
}

static void stats_count_tasks_stacks_and_timers(void **state)
{
    (void)state;
    knit_stats s;
    assert_int_equal(knit_rt_stats(&s), -ESRCH);
    assert_int_equal(kt_run(t_stats, NULL), 0);
}

static int t_random_seed(void *arg)
{
    knit_stats s;
    assert_int_equal(knit_rt_stats(&s), 0);
    *(uint64_t *)arg = s.seed;
    return 0;
}

static void seed_zero_picks_a_random_seed_and_reports_it(void **state)
{
    (void)state;
    knit_config cfg;
    kt_config(&cfg);
    cfg.seed = 0;
    uint64_t a = 0, b = 0;
    assert_int_equal(kt_run_cfg(&cfg, t_random_seed, &a), 0);
    assert_int_equal(kt_run_cfg(&cfg, t_random_seed, &b), 0);
    assert_true(a != 0 && b != 0 && a != b);
}

/* Draws eight numbers from knit_random into arg (uint64_t[8]). */
static int t_draw(void *arg)
{
    uint64_t *out = arg;
    for (int i = 0; i < 8; i++)
        out[i] = knit_random();
    return 0;
}

static void random_follows_the_seed(void **state)
{
    (void)state;
    knit_config cfg;
    kt_config(&cfg);
    uint64_t a[8], b[8], c[8];
    cfg.seed = 42;
    assert_int_equal(kt_run_cfg(&cfg, t_draw, a), 0);
    assert_int_equal(kt_run_cfg(&cfg, t_draw, b), 0);
    cfg.seed = 43;
    assert_int_equal(kt_run_cfg(&cfg, t_draw, c), 0);
    assert_memory_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, c, sizeof(a));
    for (int i = 1; i < 8; i++)
        assert_true(a[i] != a[i - 1]);
    /* Outside a runtime: still a sequence, not a constant. */
    assert_true(knit_random() != knit_random());
}

static int t_dump(void *arg)
{
    (void)arg;
    knit_task_opts o = {.name = "sleeper"};
    knit_task *t = knit_spawn_with(&o, sleep_forever, NULL);
    knit_task_opts lz = {.name = "idle", .lazy = true};
    knit_task *l = knit_spawn_with(&lz, sleep_forever, NULL);
    assert_int_equal(knit_yield(), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    knit_dump(f);
    fclose(f);
    kt_expect_in(buf, "3 live tasks");
    kt_expect_in(buf, "\"main\": running");
    kt_expect_in(buf, "\"sleeper\": parked on sleep");
    kt_expect_in(buf, "\"idle\": lazy, not started");
    free(buf);
    knit_cancel(t);
    knit_cancel(l);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(knit_join(l), -ECANCELED);
    return 0;
}

static void dump_lists_every_task_with_its_state(void **state)
{
    (void)state;
    knit_dump(stderr); /* a no-op outside a runtime */
    assert_int_equal(kt_run(t_dump, NULL), 0);
}

static int spin_until_reported(void *arg)
{
    (void)arg;
    knit_stats s;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* On a loaded machine main itself may have been reported before this
     * task ran: wait for a report made while this one runs. */
    knit_rt_stats(&s);
    uint64_t before = s.stalls;
    /* Holds the worker without yielding until the monitor reports it
     * (at most 20 s, so a broken detector fails instead of hanging). */
    do {
        knit_rt_stats(&s);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (s.stalls == before && t.tv_sec - t0.tv_sec < 20);
    return s.stalls == before + 1 ? 0 : -1;
}

static int t_stall(void *arg)
{
    (void)arg;
    knit_task_opts o = {.name = "spinner"};
    return knit_join(knit_spawn_with(&o, spin_until_reported, NULL));
}

static void stall_detector_names_the_task_holding_its_worker(void **state)
{
    (void)state;
    knit_config cfg;
    kt_config(&cfg);
    cfg.clock = KNIT_CLOCK_MONOTONIC;
    cfg.stall_ms = 10;
    int status;
    const char *err = kt_run_child(&cfg, t_stall, NULL, &status);
    kt_expect_in(err, "knit: stall: task ");
    kt_expect_in(err, "\"spinner\" has held worker 0 for ");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static int t_advance_monotonic(void *arg)
{
    (void)arg;
    knit_clock_advance(10);
    return 0;
}

static void clock_advance_on_the_real_clock_panics(void **state)
{
    (void)state;
    knit_config cfg;
    kt_config(&cfg);
    cfg.clock = KNIT_CLOCK_MONOTONIC;
    int status;
    const char *err = kt_run_child(&cfg, t_advance_monotonic, NULL, &status);
    kt_expect_in(err,
                 "knit: knit_clock_advance needs a KNIT_CLOCK_MANUAL runtime");
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static int return_zero(void *arg)
{
    (void)arg;
    return 0;
}

static int t_double_join(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(return_zero, NULL);
    knit_detach(t);
    return knit_join(t); /* misuse */
}

static void join_of_a_detached_task_panics(void **state)
{
    (void)state;
    knit_config cfg;
    kt_config(&cfg);
    int status;
    const char *err = kt_run_child(&cfg, t_double_join, NULL, &status);
    kt_expect_in(err, "which is joined, detached or owned by a group");
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static int exit_scope_out_of_order(void *arg)
{
    (void)arg;
    knit_scope a, b;
    knit_scope_enter(&a, KNIT_FOREVER);
    knit_scope_enter(&b, KNIT_FOREVER);
    knit_scope_exit(&a); /* misuse: b is innermost */
    return 0;
}

static void exiting_scopes_out_of_order_panics(void **state)
{
    (void)state;
    knit_config cfg;
    kt_config(&cfg);
    int status;
    const char *err =
        kt_run_child(&cfg, exit_scope_out_of_order, NULL, &status);
    kt_expect_in(err, "knit_scope_exit: the scope is not the "
                      "innermost scope of the calling task");
    kt_expect_in(err, "(in task ");
    assert_true(WIFSIGNALED(status));
}

/* ---- shutdown: tasks that ignore cancellation ---------------------------- */

/* Waits, shielded, on a channel nobody sends to: cancellation cannot
 * reach it. */
static int deaf(void *arg)
{
    knit_scope s;
    knit_scope_enter_shielded(&s, KNIT_FOREVER);
    int v;
    int r = knit_chan_recv(arg, &v);
    knit_scope_exit(&s);
    return r;
}

static int t_leave_deaf_tasks(void *arg)
{
    (void)arg;
    knit_chan *c = knit_chan_new(sizeof(int), 1);
    knit_task_opts o = {.name = "deaf-one"};
    knit_detach(knit_spawn_on(0, &o, deaf, c));
    o.name = "deaf-two";
    knit_detach(knit_spawn_on(1, &o, deaf, c));
    knit_sleep(1); /* the manual clock moves once both are parked */
    return 5; /* the channel is abandoned with them */
}

/* In a forked child: two workers, a 50 ms shutdown deadline. */
static void leave_deaf_tasks_child(void *arg)
{
    (void)arg;
    knit_config cfg;
    kt_config(&cfg);
    cfg.workers = 2;
    cfg.shutdown_ms = 50;
    int r = knit_run(&cfg, t_leave_deaf_tasks, NULL);
    _exit(r == 5 ? 0 : 3); /* _exit: the abandoned memory is no leak */
}

static void stuck_tasks_are_listed_and_abandoned_after_shutdown_ms(void **state)
{
    (void)state;
    int status;
    const char *out = kt_fork_capture(leave_deaf_tasks_child, NULL, &status);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    kt_expect_in(out, "2 task(s) did not end within 50 ms");
    kt_expect_in(out, "\"deaf-one\": parked on chan recv");
    kt_expect_in(out, "\"deaf-two\": parked on chan recv");
    kt_expect_in(out, "[worker 1]");
}

static void a_negative_shutdown_ms_other_than_forever_is_refused(void **state)
{
    (void)state;
    knit_config cfg;
    kt_config(&cfg);
    cfg.shutdown_ms = -2;
    assert_int_equal(knit_run(&cfg, return_zero, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stats_count_tasks_stacks_and_timers),
        cmocka_unit_test(seed_zero_picks_a_random_seed_and_reports_it),
        cmocka_unit_test(random_follows_the_seed),
        cmocka_unit_test(dump_lists_every_task_with_its_state),
        cmocka_unit_test(stall_detector_names_the_task_holding_its_worker),
        cmocka_unit_test(clock_advance_on_the_real_clock_panics),
        cmocka_unit_test(join_of_a_detached_task_panics),
        cmocka_unit_test(exiting_scopes_out_of_order_panics),
        cmocka_unit_test(stuck_tasks_are_listed_and_abandoned_after_shutdown_ms),
        cmocka_unit_test(a_negative_shutdown_ms_other_than_forever_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
