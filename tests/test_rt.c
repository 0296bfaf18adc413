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

/* Asserts that @needle is in @hay; prints @hay when it is not. */
static void expect_in(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in the child's stderr:\n%s", needle, hay);
}

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
    assert_string_equal(s.io_backend, "epoll");
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
    expect_in(buf, "3 live tasks");
    expect_in(buf, "\"main\": running");
    expect_in(buf, "\"sleeper\": parked on sleep");
    expect_in(buf, "\"idle\": lazy, not started");
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

/* ---- in child processes ------------------------------------------------- */

static char *run_child(const knit_config *cfg, knit_fn fn, int *status)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        int r = kt_run_cfg(cfg, fn, NULL);
        _exit(r == 0 ? 0 : 3);
    }
    close(fds[1]);
    static char buf[8192];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) - 1 &&
           (r = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, status, 0), pid);
    return buf;
}

static int spin_until_reported(void *arg)
{
    (void)arg;
    knit_stats s;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Holds the worker without yielding until the monitor reports it
     * (at most 20 s, so a broken detector fails instead of hanging). */
    do {
        knit_rt_stats(&s);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (s.stalls == 0 && t.tv_sec - t0.tv_sec < 20);
    return s.stalls == 1 ? 0 : -1;
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
    char *err = run_child(&cfg, t_stall, &status);
    expect_in(err, "knit: stall: task ");
    expect_in(err, "\"spinner\" has held worker 0 for ");
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
    char *err = run_child(&cfg, t_advance_monotonic, &status);
    expect_in(err,
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
    char *err = run_child(&cfg, t_double_join, &status);
    expect_in(err, "which is joined, detached or owned by a group");
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
    char *err = run_child(&cfg, exit_scope_out_of_order, &status);
    expect_in(err, "knit_scope_exit: the scope is not the "
                   "innermost scope of the calling task");
    expect_in(err, "(in task ");
    assert_true(WIFSIGNALED(status));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stats_count_tasks_stacks_and_timers),
        cmocka_unit_test(seed_zero_picks_a_random_seed_and_reports_it),
        cmocka_unit_test(dump_lists_every_task_with_its_state),
        cmocka_unit_test(stall_detector_names_the_task_holding_its_worker),
        cmocka_unit_test(clock_advance_on_the_real_clock_panics),
        cmocka_unit_test(join_of_a_detached_task_panics),
        cmocka_unit_test(exiting_scopes_out_of_order_panics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
