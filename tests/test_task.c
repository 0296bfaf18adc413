// SPDX-License-Identifier: MIT
/* Tasks: spawn, join, detach, cancel, yield, lazy start, task-locals. */
#include <errno.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kt.h"

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

static int t_spawn_join_returns_result(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(return_arg, (void *)(intptr_t)42);
    assert_non_null(t);
    assert_int_equal(knit_join(t), 42);
    return 0;
}

static void spawn_join_returns_the_task_result(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_spawn_join_returns_result, NULL), 0);
}

static int t_join_after_end(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(return_arg, (void *)(intptr_t)-7);
    kt_settle(); /* t runs to its end */
    assert_int_equal(knit_join(t), -7);
    return 0;
}

static void join_of_an_ended_task_returns_at_once(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_join_after_end, NULL), 0);
}

static int main_result(void *arg)
{
    (void)arg;
    return 1234;
}

static void run_returns_main_result(void **state)
{
    (void)state;
    assert_int_equal(kt_run(main_result, NULL), 1234);
}

static int bad_nested_run(void *arg)
{
    (void)arg;
    return knit_run(NULL, main_result, NULL);
}

static void run_rejects_bad_arguments(void **state)
{
    (void)state;
    knit_config cfg;
    kt_config(&cfg);
    assert_int_equal(knit_run(&cfg, NULL, NULL), -EINVAL);
    cfg.clock = 7;
    assert_int_equal(knit_run(&cfg, main_result, NULL), -EINVAL);
    kt_config(&cfg);
    cfg.stack_size = 100;
    assert_int_equal(knit_run(&cfg, main_result, NULL), -EINVAL);
    kt_config(&cfg);
    cfg.workers = -1;
    assert_int_equal(knit_run(&cfg, main_result, NULL), -EINVAL);
    assert_int_equal(kt_run(bad_nested_run, NULL), -EBUSY);
}

/* Appends its letter to a shared trace three times, yielding between. */
struct tracer {
    char *trace;
    char letter;
};

static int trace_yield(void *arg)
{
    struct tracer *tr = arg;
    for (int i = 0; i < 3; i++) {
        strncat(tr->trace, &tr->letter, 1);
        assert_int_equal(knit_yield(), 0);
    }
    return 0;
}

static int t_yield_round_robin(void *arg)
{
    (void)arg;
    if (kt_workers() > 1)
        skip(); /* round robin is per worker; several run tasks at once */
    char trace[16] = "";
    struct tracer a = {trace, 'a'}, b = {trace, 'b'}, c = {trace, 'c'};
    knit_task *ta = knit_spawn(trace_yield, &a);
    knit_task *tb = knit_spawn(trace_yield, &b);
    knit_task *tc = knit_spawn(trace_yield, &c);
    assert_int_equal(knit_join(ta), 0);
    assert_int_equal(knit_join(tb), 0);
    assert_int_equal(knit_join(tc), 0);
    assert_string_equal(trace, "abcabcabc");
    return 0;
}

static void yield_runs_tasks_round_robin(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_yield_round_robin, NULL), 0);
}

static int set_flag(void *arg)
{
    *(int *)arg = 1;
    return 5;
}

static int t_cancel_before_start(void *arg)
{
    (void)arg;
    int ran = 0;
    knit_task *t = knit_spawn(set_flag, &ran);
    knit_cancel(t);
    int r = knit_join(t);
    if (kt_workers() > 1 && r == 5) {
        /* Another worker started it before the cancel: it ran whole. */
        assert_int_equal(ran, 1);
        return 0;
    }
    assert_int_equal(r, -ECANCELED);
    assert_int_equal(ran, 0);
    return 0;
}

static void cancel_before_start_never_runs_the_task(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel_before_start, NULL), 0);
}

static int sleep_forever(void *arg)
{
    (void)arg;
    return knit_sleep_until(KNIT_FOREVER);
}

static int t_cancel_parked(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(sleep_forever, NULL);
    kt_settle(); /* t parks */
    knit_cancel(t);
    knit_cancel(t); /* idempotent */
    assert_int_equal(knit_join(t), -ECANCELED);
    return 0;
}

static void cancel_wakes_a_parked_task_with_ecanceled(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel_parked, NULL), 0);
}

static int cancelled_keeps_failing(void *arg)
{
    int *count = arg;
    knit_cancel(knit_current());
    for (int i = 0; i < 3; i++)
        if (knit_yield() == -ECANCELED && knit_sleep(10) == -ECANCELED)
            (*count)++;
    return 0;
}

static int t_cancel_self(void *arg)
{
    (void)arg;
    int count = 0;
    knit_task *t = knit_spawn(cancelled_keeps_failing, &count);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(count, 3);
    assert_int_equal(knit_now(), 0); /* no sleep happened */
    return 0;
}

static void every_blocking_call_fails_after_cancel(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel_self, NULL), 0);
}

static int t_join_times_out(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(sleep_forever, NULL);
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 100);
    assert_int_equal(knit_join(t), -ETIMEDOUT);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    assert_int_equal(knit_now(), 100);
    /* The handle is still valid. */
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    return 0;
}

static void join_times_out_and_leaves_the_task_valid(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_join_times_out, NULL), 0);
}

static int t_join_cancelled(void *arg)
{
    knit_task *target = arg;
    return knit_join(target);
}

static int t_join_cancel(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(sleep_forever, NULL);
    knit_task *j = knit_spawn(t_join_cancelled, t);
    kt_settle();
    knit_cancel(j);
    assert_int_equal(knit_join(j), -ECANCELED);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    return 0;
}

static void join_returns_ecanceled_when_the_joiner_is_cancelled(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_join_cancel, NULL), 0);
}

static int t_detach(void *arg)
{
    (void)arg;
    int ran[2] = {0, 0}; /* one each: they may run at once on two workers */
    knit_detach(knit_spawn(set_flag, &ran[0]));
    knit_task *done = knit_spawn(set_flag, &ran[1]);
    kt_settle();
    assert_int_equal(ran[0], 1);
    assert_int_equal(ran[1], 1);
    knit_detach(done); /* already ended: freed now */
    return 0;
}

static void detached_tasks_run_and_free_themselves(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_detach, NULL), 0);
}

static int t_lazy(void *arg)
{
    (void)arg;
    int ran = 0;
    knit_task_opts o = {.name = "lazy", .lazy = true};
    knit_task *t = knit_spawn_with(&o, set_flag, &ran);
    assert_non_null(t);
    assert_int_equal(knit_sleep(50), 0);
    assert_int_equal(ran, 0); /* nothing ran it yet */
    assert_int_equal(knit_join(t), 5);
    assert_int_equal(ran, 1);
    return 0;
}

static void lazy_task_starts_only_when_joined(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_lazy, NULL), 0);
}

static int check_identity(void *arg)
{
    knit_task **self = arg;
    *self = knit_current();
    return 0;
}

static int t_identity(void *arg)
{
    (void)arg;
    knit_task *seen = NULL;
    knit_task_opts o = {.name = "a-rather-long-task-name-that-is-cut-short"};
    knit_task *t = knit_spawn_with(&o, check_identity, &seen);
    assert_string_equal(knit_task_name(t), "a-rather-long-task-name-that-is");
    uint64_t id = knit_task_id(t);
    assert_true(id > knit_task_id(knit_current()));
    assert_string_equal(knit_task_name(knit_current()), "main");
    kt_settle();
    assert_ptr_equal(seen, t);
    assert_int_equal(knit_join(t), 0);
    return 0;
}

static void current_id_and_name_identify_tasks(void **state)
{
    (void)state;
    assert_null(knit_current());
    assert_int_equal(kt_run(t_identity, NULL), 0);
}

static int t_bad_stack(void *arg)
{
    (void)arg;
    knit_task_opts small = {.stack_size = 1024};
    knit_task_opts huge = {.stack_size = (size_t)4 << 30};
    assert_null(knit_spawn_with(&small, return_arg, NULL));
    assert_null(knit_spawn_with(&huge, return_arg, NULL));
    assert_null(knit_spawn(NULL, NULL));
    knit_task_opts big = {.stack_size = 1 << 20};
    knit_task *t = knit_spawn_with(&big, return_arg, (void *)3);
    assert_int_equal(knit_join(t), 3);
    return 0;
}

static void spawn_rejects_bad_stack_sizes(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bad_stack, NULL), 0);
}

/* Atomic: with several workers, the destructors of tasks that end on
 * different workers run at the same time (as the tasks' own code). */
static atomic_int dtor_calls;
static void count_dtor(void *v)
{
    atomic_fetch_add(&dtor_calls, (int)(intptr_t)v);
}

static int use_local(void *arg)
{
    int key = (int)(intptr_t)arg;
    assert_null(knit_task_local_get(key));
    assert_int_equal(knit_task_local_set(key, (void *)10), 0);
    assert_int_equal(knit_yield(), 0);
    assert_ptr_equal(knit_task_local_get(key), (void *)10);
    return 0;
}

static int t_locals(void *arg)
{
    int key = (int)(intptr_t)arg;
    assert_int_equal(knit_task_local_set(key, (void *)1), 0);
    knit_task *a = knit_spawn(use_local, arg);
    knit_task *b = knit_spawn(use_local, arg);
    assert_int_equal(knit_join(a), 0);
    assert_int_equal(knit_join(b), 0);
    assert_int_equal(atomic_load(&dtor_calls), 20);
    assert_ptr_equal(knit_task_local_get(key), (void *)1);
    assert_int_equal(knit_task_local_set(key, NULL), 0);
    assert_int_equal(knit_task_local_set(KNIT_TASK_LOCALS, NULL), -EINVAL);
    assert_int_equal(knit_task_local_set(-1, NULL), -EINVAL);
    return 0;
}

static void task_locals_are_per_task_and_destroyed_at_the_end(void **state)
{
    (void)state;
    int key = knit_task_local_new(count_dtor);
    assert_true(key >= 0);
    assert_int_equal(knit_task_local_set(key, NULL), -ESRCH);
    assert_int_equal(kt_run(t_locals, (void *)(intptr_t)key), 0);
}

static int t_leftovers(void *arg)
{
    int *cancelled = arg;
    knit_task *t = knit_spawn(sleep_forever, NULL);
    (void)t; /* never joined: main's end cancels and awaits it */
    knit_detach(knit_spawn(sleep_forever, NULL));
    kt_settle();
    *cancelled = 1;
    return 9;
}

static void run_cancels_tasks_left_when_main_returns(void **state)
{
    (void)state;
    int flag = 0;
    knit_config cfg;
    kt_config(&cfg);
    /* Not kt_run: this test leaves tasks behind on purpose. */
    assert_int_equal(knit_run(&cfg, t_leftovers, &flag), 9);
    assert_int_equal(flag, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spawn_join_returns_the_task_result),
        cmocka_unit_test(join_of_an_ended_task_returns_at_once),
        cmocka_unit_test(run_returns_main_result),
        cmocka_unit_test(run_rejects_bad_arguments),
        cmocka_unit_test(yield_runs_tasks_round_robin),
        cmocka_unit_test(cancel_before_start_never_runs_the_task),
        cmocka_unit_test(cancel_wakes_a_parked_task_with_ecanceled),
        cmocka_unit_test(every_blocking_call_fails_after_cancel),
        cmocka_unit_test(join_times_out_and_leaves_the_task_valid),
        cmocka_unit_test(join_returns_ecanceled_when_the_joiner_is_cancelled),
        cmocka_unit_test(detached_tasks_run_and_free_themselves),
        cmocka_unit_test(lazy_task_starts_only_when_joined),
        cmocka_unit_test(current_id_and_name_identify_tasks),
        cmocka_unit_test(spawn_rejects_bad_stack_sizes),
        cmocka_unit_test(task_locals_are_per_task_and_destroyed_at_the_end),
        cmocka_unit_test(run_cancels_tasks_left_when_main_returns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
