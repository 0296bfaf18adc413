// SPDX-License-Identifier: MIT
/* Cancel scopes: deadlines, nesting, shields, cancellation, knit_timeout. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kt.h"

static int t_no_fire(void *arg)
{
    (void)arg;
    knit_scope s;
    knit_scope_enter(&s, 100);
    assert_int_equal(knit_sleep(50), 0);
    assert_false(knit_scope_is_fired(&s));
    assert_int_equal(knit_scope_exit(&s), 0);
    assert_int_equal(knit_sleep(100), 0); /* the timer went with the scope */
    assert_int_equal(knit_now(), 150);
    return 0;
}

static void scope_that_does_not_fire_exits_with_zero(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_no_fire, NULL), 0);
}

static int t_nested_min(void *arg)
{
    (void)arg;
    knit_scope outer, inner;
    knit_scope_enter(&outer, 100);
    knit_scope_enter(&inner, 500);
    assert_int_equal(knit_scope_deadline(&inner), 100);
    assert_int_equal(knit_sleep(1000), -ETIMEDOUT);
    assert_int_equal(knit_now(), 100);
    /* The inner scope did not fire itself; the outer one did. */
    assert_int_equal(knit_scope_exit(&inner), 0);
    assert_int_equal(knit_scope_exit(&outer), -ETIMEDOUT);

    knit_scope_enter(&outer, 1000);
    knit_scope_enter(&inner, 300);
    assert_int_equal(knit_scope_deadline(&inner), 300);
    assert_int_equal(knit_sleep(1000), -ETIMEDOUT);
    assert_int_equal(knit_now(), 300);
    assert_int_equal(knit_scope_exit(&inner), -ETIMEDOUT);
    assert_int_equal(knit_sleep(10), 0); /* outer has not fired */
    assert_int_equal(knit_scope_exit(&outer), 0);
    return 0;
}

static void nested_scopes_take_the_earliest_deadline(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_nested_min, NULL), 0);
}

static int t_past_deadline(void *arg)
{
    (void)arg;
    assert_int_equal(knit_sleep(10), 0);
    knit_scope s;
    knit_scope_enter(&s, 5);
    assert_true(knit_scope_is_fired(&s));
    assert_int_equal(knit_yield(), -ETIMEDOUT);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    assert_int_equal(knit_now(), 10);
    return 0;
}

static void scope_with_a_past_deadline_is_fired_from_the_start(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_past_deadline, NULL), 0);
}

static int t_shield(void *arg)
{
    (void)arg;
    knit_scope outer, shield;
    knit_scope_enter(&outer, 100);
    assert_int_equal(knit_sleep(200), -ETIMEDOUT);
    /* Cleanup under a shield runs despite the fired outer scope... */
    knit_scope_enter_shielded(&shield, knit_now() + 50);
    assert_int_equal(knit_scope_deadline(&shield), 150);
    assert_int_equal(knit_sleep(20), 0);
    assert_int_equal(knit_now(), 120);
    /* ...and is bounded by its own deadline. */
    assert_int_equal(knit_sleep(1000), -ETIMEDOUT);
    assert_int_equal(knit_now(), 150);
    assert_int_equal(knit_scope_exit(&shield), -ETIMEDOUT);
    assert_int_equal(knit_sleep(1), -ETIMEDOUT); /* outer still fired */
    assert_int_equal(knit_scope_exit(&outer), -ETIMEDOUT);
    return 0;
}

static void shielded_scope_lets_cleanup_run_with_its_own_deadline(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_shield, NULL), 0);
}

struct shield_arg {
    int sleep_result;
    int64_t woke_at;
};

static int shielded_sleeper(void *arg)
{
    struct shield_arg *a = arg;
    knit_scope s;
    knit_scope_enter_shielded(&s, KNIT_FOREVER);
    a->sleep_result = knit_sleep(100);
    a->woke_at = knit_now();
    knit_scope_exit(&s);
    return knit_sleep(1); /* outside the shield: the cancel is seen */
}

static int t_shield_cancel(void *arg)
{
    (void)arg;
    struct shield_arg a = {99, -1};
    knit_task *t = knit_spawn(shielded_sleeper, &a);
    assert_int_equal(knit_sleep(10), 0);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(a.sleep_result, 0);
    assert_int_equal(a.woke_at, 100);
    return 0;
}

static void cancel_does_not_reach_into_a_shield(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_shield_cancel, NULL), 0);
}

struct cancel_arg {
    knit_scope *scope;
    int result;
};

static int sleep_in_scope(void *arg)
{
    struct cancel_arg *a = arg;
    knit_scope s;
    knit_scope_enter(&s, KNIT_FOREVER);
    a->scope = &s;
    a->result = knit_sleep(1000);
    int err = knit_scope_exit(&s);
    a->scope = NULL;
    /* Outside the cancelled scope the task carries on. */
    if (knit_sleep(5) != 0)
        return -1;
    return err;
}

static int t_scope_cancel_from_another_task(void *arg)
{
    (void)arg;
    struct cancel_arg a = {NULL, 0};
    knit_task *t = knit_spawn(sleep_in_scope, &a);
    assert_int_equal(knit_sleep(30), 0);
    knit_scope *s = a.scope; /* read once: t clears it once woken */
    assert_non_null(s);
    knit_scope_cancel(s);
    knit_scope_cancel(s); /* idempotent (s is still on t's stack) */
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(a.result, -ECANCELED);
    assert_int_equal(knit_now(), 35);
    return 0;
}

static void scope_cancel_from_another_task_wakes_only_that_scope(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_scope_cancel_from_another_task, NULL), 0);
}

static int t_first_error_wins(void *arg)
{
    (void)arg;
    knit_scope s;
    knit_scope_enter(&s, 10);
    knit_scope_cancel(&s);
    assert_int_equal(knit_sleep(100), -ECANCELED);
    assert_int_equal(knit_now(), 0);
    assert_int_equal(knit_scope_exit(&s), -ECANCELED);
    return 0;
}

static void cancel_before_the_deadline_reports_ecanceled(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_first_error_wins, NULL), 0);
}

static int slow(void *arg)
{
    int err = knit_sleep((int64_t)(intptr_t)arg);
    return err ? err : 7;
}

static int swallow(void *arg)
{
    (void)arg;
    knit_sleep(1000);
    return 3; /* ignores the timeout and succeeds */
}

static int t_timeout(void *arg)
{
    (void)arg;
    assert_int_equal(knit_timeout(100, slow, (void *)50), 7);
    assert_int_equal(knit_now(), 50);
    assert_int_equal(knit_timeout(100, slow, (void *)500), -ETIMEDOUT);
    assert_int_equal(knit_now(), 150);
    assert_int_equal(knit_timeout(10, swallow, NULL), 3);
    assert_int_equal(knit_timeout(KNIT_FOREVER, slow, (void *)5), 7);
    return 0;
}

static void timeout_returns_the_result_or_etimedout(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_timeout, NULL), 0);
}

static int sleep_in_timeout(void *arg)
{
    (void)arg;
    return knit_timeout(100, slow, (void *)1000);
}

static int t_cancel_outranks_timeout(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(sleep_in_timeout, NULL);
    assert_int_equal(knit_sleep(50), 0);
    knit_cancel(t);
    /* The deadline passes too before t runs again. */
    knit_clock_advance(60);
    assert_int_equal(knit_join(t), -ECANCELED);

    knit_scope outer, inner;
    knit_scope_enter(&outer, KNIT_FOREVER);
    knit_scope_enter(&inner, knit_now() + 10);
    assert_int_equal(knit_sleep(100), -ETIMEDOUT);
    knit_scope_cancel(&outer);
    assert_int_equal(knit_sleep(100), -ECANCELED);
    assert_int_equal(knit_scope_exit(&inner), -ETIMEDOUT);
    assert_int_equal(knit_scope_exit(&outer), -ECANCELED);
    return 0;
}

static void cancellation_outranks_an_expired_deadline(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel_outranks_timeout, NULL), 0);
}

static int cancel_token_later(void *arg)
{
    knit_sleep(40);
    knit_token_cancel(arg);
    return 0;
}

static int t_token_link(void *arg)
{
    (void)arg;
    knit_token root, child;
    knit_token_init(&root, NULL);
    knit_token_init(&child, &root);
    knit_task *t = knit_spawn(cancel_token_later, &root);
    knit_scope s;
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_link_token(&s, &child);
    assert_int_equal(knit_sleep(1000), -ECANCELED); /* parent cancelled */
    assert_int_equal(knit_now(), 40);
    assert_int_equal(knit_scope_exit(&s), -ECANCELED);
    assert_int_equal(knit_join(t), 0);
    /* A cancelled token cancels a newly linked scope at once. */
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_link_token(&s, &child);
    assert_true(knit_scope_is_fired(&s));
    assert_int_equal(knit_scope_exit(&s), -ECANCELED);
    /* An exited scope is unlinked: cancelling its token later is safe. */
    knit_token other;
    knit_token_init(&other, NULL);
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_link_token(&s, &other);
    assert_int_equal(knit_sleep(5), 0);
    assert_int_equal(knit_scope_exit(&s), 0);
    knit_token_cancel(&other);
    knit_token_destroy(&other);
    knit_token_destroy(&child);
    knit_token_destroy(&root);
    return 0;
}

static void scope_linked_to_a_token_is_cancelled_with_it(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_token_link, NULL), 0);
}

/* 200 nested scopes, each with a later deadline than its parent's parent:
 * the innermost call sees the outermost (earliest) deadline. */
static int nest(int depth)
{
    if (depth == 0)
        return knit_sleep(100000);
    knit_scope s;
    knit_scope_enter(&s, 1000 + depth);
    int r = nest(depth - 1);
    int e = knit_scope_exit(&s);
    /* Depth 1 is the innermost scope and has the earliest deadline. */
    if (depth == 1 && e != -ETIMEDOUT)
        return -100;
    if (depth > 1 && e != 0)
        return -101;
    return r;
}

static int t_deep(void *arg)
{
    (void)arg;
    /* Entered with deadlines 1200, 1199, ..., 1001. */
    assert_int_equal(nest(200), -ETIMEDOUT);
    assert_int_equal(knit_now(), 1001);
    return 0;
}

/* Runs @fn on a 1 MiB stack: deep recursion under ASan needs it. */
static int on_big_stack(void *fn)
{
    knit_task_opts o = {.name = "deep", .stack_size = 1 << 20};
    knit_task *t = knit_spawn_with(&o, (knit_fn)fn, NULL);
    assert_non_null(t);
    return knit_join(t);
}

static void two_hundred_nested_scopes_fire_the_innermost_earliest(void **state)
{
    (void)state;
    assert_int_equal(kt_run(on_big_stack, (void *)t_deep), 0);
}

static int nest_outer_first(int depth, int max)
{
    if (depth == max)
        return knit_sleep(100000);
    knit_scope s;
    knit_scope_enter(&s, 1000 + depth); /* outermost has the earliest */
    int r = nest_outer_first(depth + 1, max);
    int e = knit_scope_exit(&s);
    if (depth == 0 && e != -ETIMEDOUT)
        return -100;
    if (depth > 0 && e != 0)
        return -101;
    return r;
}

static int t_deep_outer(void *arg)
{
    (void)arg;
    assert_int_equal(nest_outer_first(0, 300), -ETIMEDOUT);
    assert_int_equal(knit_now(), 1000);
    return 0;
}

static void
three_hundred_nested_scopes_obey_the_outermost_deadline(void **state)
{
    (void)state;
    assert_int_equal(kt_run(on_big_stack, (void *)t_deep_outer), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scope_that_does_not_fire_exits_with_zero),
        cmocka_unit_test(nested_scopes_take_the_earliest_deadline),
        cmocka_unit_test(scope_with_a_past_deadline_is_fired_from_the_start),
        cmocka_unit_test(shielded_scope_lets_cleanup_run_with_its_own_deadline),
        cmocka_unit_test(cancel_does_not_reach_into_a_shield),
        cmocka_unit_test(scope_cancel_from_another_task_wakes_only_that_scope),
        cmocka_unit_test(cancel_before_the_deadline_reports_ecanceled),
        cmocka_unit_test(timeout_returns_the_result_or_etimedout),
        cmocka_unit_test(cancellation_outranks_an_expired_deadline),
        cmocka_unit_test(scope_linked_to_a_token_is_cancelled_with_it),
        cmocka_unit_test(two_hundred_nested_scopes_fire_the_innermost_earliest),
        cmocka_unit_test(
            three_hundred_nested_scopes_obey_the_outermost_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
