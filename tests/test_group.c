// SPDX-License-Identifier: MIT
/* Task groups: next (JoinSet), wait, fail-fast, cancel, knit_race. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "kt.h"

/* Sleeps arg ms, then returns arg (or the sleep's error). */
static int sleep_then_return(void *arg)
{
    int ms = (int)(intptr_t)arg;
    int err = knit_sleep(ms);
    return err ? err : ms;
}

/* Sleeps -arg ms, then fails with -EIO. */
static int sleep_then_fail(void *arg)
{
    int err = knit_sleep((int)(intptr_t)arg);
    return err ? err : -EIO;
}

static int t_next_in_completion_order(void *arg)
{
    (void)arg;
    knit_group g;
    knit_group_init(&g, 0);
    int ms[] = {30, 10, 20};
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            knit_group_spawn(&g, sleep_then_return, (void *)(intptr_t)ms[i]),
            0);
    assert_int_equal(knit_group_len(&g), 3);
    int r;
    assert_int_equal(knit_group_next(&g, &r), 0);
    assert_int_equal(r, 10);
    assert_int_equal(knit_now(), 10);
    assert_int_equal(knit_group_next(&g, &r), 0);
    assert_int_equal(r, 20);
    assert_int_equal(knit_group_next(&g, &r), 0);
    assert_int_equal(r, 30);
    assert_int_equal(knit_group_next(&g, &r), -EPIPE);
    assert_int_equal(knit_group_len(&g), 0);
    return 0;
}

static void group_next_yields_results_in_completion_order(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_next_in_completion_order, NULL), 0);
}

static int t_wait_all(void *arg)
{
    (void)arg;
    knit_group g;
    knit_group_init(&g, 0);
    for (int i = 1; i <= 50; i++)
        assert_int_equal(
            knit_group_spawn(&g, sleep_then_return, (void *)(intptr_t)i), 0);
    assert_int_equal(knit_group_wait(&g), 0);
    assert_int_equal(knit_now(), 50);
    assert_int_equal(knit_group_len(&g), 0);
    /* An empty group waits for nothing and can be reused. */
    assert_int_equal(knit_group_wait(&g), 0);
    assert_int_equal(knit_group_spawn(&g, sleep_then_return, (void *)5), 0);
    assert_int_equal(knit_group_wait(&g), 0);
    return 0;
}

static void group_wait_joins_every_task(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_wait_all, NULL), 0);
}

static int t_first_error(void *arg)
{
    (void)arg;
    knit_group g;
    knit_group_init(&g, 0);
    assert_int_equal(knit_group_spawn(&g, sleep_then_return, (void *)100), 0);
    assert_int_equal(knit_group_spawn(&g, sleep_then_fail, (void *)20), 0);
    assert_int_equal(knit_group_spawn(&g, sleep_then_fail, (void *)30), 0);
    /* Without fail-fast every task runs to its end. */
    assert_int_equal(knit_group_wait(&g), -EIO);
    assert_int_equal(knit_now(), 100);
    return 0;
}

static void group_wait_reports_the_first_error(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_first_error, NULL), 0);
}

static int t_fail_fast(void *arg)
{
    (void)arg;
    knit_group g;
    knit_group_init(&g, KNIT_GROUP_FAIL_FAST);
    for (int i = 0; i < 5; i++)
        assert_int_equal(knit_group_spawn(&g, sleep_then_return, (void *)1000),
                         0);
    assert_int_equal(knit_group_spawn(&g, sleep_then_fail, (void *)20), 0);
    assert_int_equal(knit_group_wait(&g), -EIO);
    assert_int_equal(knit_now(), 20); /* the others were cancelled */
    return 0;
}

static void fail_fast_group_cancels_the_rest_on_first_error(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_fail_fast, NULL), 0);
}

static int t_cancel_group(void *arg)
{
    (void)arg;
    knit_group g;
    knit_group_init(&g, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(knit_group_spawn(&g, sleep_then_return, (void *)1000),
                         0);
    assert_int_equal(knit_sleep(10), 0);
    knit_group_cancel(&g);
    assert_int_equal(knit_group_spawn(&g, sleep_then_return, (void *)1),
                     -ECANCELED);
    int r, n = 0;
    while (knit_group_next(&g, &r) == 0) {
        assert_int_equal(r, -ECANCELED);
        n++;
    }
    assert_int_equal(n, 3);
    assert_int_equal(knit_now(), 10);
    /* Explicit cancellation is not an error of the group's tasks. */
    assert_int_equal(knit_group_wait(&g), 0);
    return 0;
}

static void cancelled_group_ends_its_tasks_and_refuses_new_ones(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel_group, NULL), 0);
}

static int t_wait_timeout(void *arg)
{
    (void)arg;
    knit_group g;
    knit_group_init(&g, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(knit_group_spawn(&g, sleep_then_return, (void *)1000),
                         0);
    knit_scope s;
    knit_scope_enter(&s, 50);
    /* Times out, cancels the children, and still waits for them. */
    assert_int_equal(knit_group_wait(&g), -ETIMEDOUT);
    assert_int_equal(knit_group_len(&g), 0);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    assert_int_equal(knit_now(), 50);
    return 0;
}

static void group_wait_timeout_cancels_and_reaps_children(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_wait_timeout, NULL), 0);
}

static int t_next_cancelled(void *arg)
{
    (void)arg;
    knit_group g;
    knit_group_init(&g, 0);
    assert_int_equal(knit_group_spawn(&g, sleep_then_return, (void *)100), 0);
    knit_scope s;
    knit_scope_enter(&s, 10);
    int r = 0;
    assert_int_equal(knit_group_next(&g, &r), -ETIMEDOUT);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    assert_int_equal(knit_group_len(&g), 1); /* still running */
    assert_int_equal(knit_group_next(&g, &r), 0);
    assert_int_equal(r, 100);
    return 0;
}

static void group_next_times_out_and_leaves_tasks_running(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_next_cancelled, NULL), 0);
}

/* A tree: each node spawns two children in a group, to depth 6. */
static int tree(void *arg)
{
    int depth = (int)(intptr_t)arg;
    if (depth == 0)
        return knit_sleep(1) ? -1 : 1;
    knit_group g;
    knit_group_init(&g, KNIT_GROUP_FAIL_FAST);
    for (int i = 0; i < 2; i++)
        if (knit_group_spawn(&g, tree, (void *)(intptr_t)(depth - 1)))
            return -ENOMEM;
    int sum = 0, r, err;
    while ((err = knit_group_next(&g, &r)) == 0)
        sum += r;
    if (err != -EPIPE) {
        /* Cancelled: wait cancels the children and reaps them. */
        assert_int_equal(knit_group_wait(&g), err);
        return err;
    }
    return sum;
}

static int t_tree(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(tree, (void *)6);
    assert_int_equal(knit_join(t), 64);
    return 0;
}

static void nested_groups_form_a_tree(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_tree, NULL), 0);
}

static int t_tree_cancel(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(tree, (void *)6);
    kt_settle(); /* let the tree grow: its leaves sleep */
    assert_int_equal(kt_tasks_alive(), 1 + 127); /* main + the whole tree */
    knit_cancel(t);
    /* Every level's wait cancels and reaps its children first. */
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(knit_now(), 0);
    return 0;
}

static void cancelling_the_root_of_a_group_tree_ends_every_task(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_tree_cancel, NULL), 0);
}

static int t_race(void *arg)
{
    (void)arg;
    knit_fn fns[3] = {sleep_then_return, sleep_then_return, sleep_then_fail};
    void *args[3] = {(void *)300, (void *)100, (void *)200};
    int winner = -1;
    assert_int_equal(knit_race(3, fns, args, &winner), 100);
    assert_int_equal(winner, 1);
    assert_int_equal(knit_now(), 100); /* losers cancelled, not awaited */
    args[2] = (void *)50;
    assert_int_equal(knit_race(3, fns, args, &winner), -EIO);
    assert_int_equal(winner, 2);
    assert_int_equal(knit_race(0, fns, args, NULL), -EINVAL);
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 10);
    assert_int_equal(knit_race(2, fns, args, &winner), -ETIMEDOUT);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    return 0;
}

static void race_returns_the_first_to_end_and_cancels_the_rest(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_race, NULL), 0);
}

static int leave_group_open(void *arg)
{
    (void)arg;
    knit_group g;
    knit_group_init(&g, 0);
    knit_group_spawn(&g, sleep_then_return, (void *)100);
    return 0; /* bug: returns without knit_group_wait */
}

static int t_leave_open(void *arg)
{
    (void)arg;
    knit_task_opts o = {.name = "leaky"};
    return knit_join(knit_spawn_with(&o, leave_group_open, NULL));
}

static void leaving_a_group_with_running_tasks_is_reported(void **state)
{
    (void)state;
    int status;
    const char *err = kt_run_child(NULL, t_leave_open, NULL, &status);
    kt_expect_in(err, "(\"leaky\") returned while its group still holds "
                      "1 running");
#ifndef NDEBUG
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
#else
    assert_true(WIFEXITED(status));
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(group_next_yields_results_in_completion_order),
        cmocka_unit_test(group_wait_joins_every_task),
        cmocka_unit_test(group_wait_reports_the_first_error),
        cmocka_unit_test(fail_fast_group_cancels_the_rest_on_first_error),
        cmocka_unit_test(cancelled_group_ends_its_tasks_and_refuses_new_ones),
        cmocka_unit_test(group_wait_timeout_cancels_and_reaps_children),
        cmocka_unit_test(group_next_times_out_and_leaves_tasks_running),
        cmocka_unit_test(nested_groups_form_a_tree),
        cmocka_unit_test(cancelling_the_root_of_a_group_tree_ends_every_task),
        cmocka_unit_test(race_returns_the_first_to_end_and_cancels_the_rest),
        cmocka_unit_test(leaving_a_group_with_running_tasks_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
