// SPDX-License-Identifier: MIT
/*
 * Task stacks: pooling, rounding, the guard budget, canaries, and the
 * overflow report (checked in child processes, since it aborts).
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
#include <unistd.h>
#include <cmocka.h>

#include "core/sched.h"
#include "core/stack.h"
#include "kt.h"

static void stack_is_rounded_to_pages_and_its_bottom_is_checked(void **state)
{
    (void)state;
    struct knit_stack_pool p;
    struct knit_stack s;
    knit__stack_pool_init(&p);
    long old = knit__stack_set_guard_budget(0); /* an unguarded stack */
    assert_int_equal(knit__stack_alloc(&p, 10000, &s), 0);
    knit__stack_set_guard_budget(old);
    assert_false(s.guarded);
    assert_int_equal(s.size % knit__page_size(), 0);
    assert_true(s.size >= 10000);
    assert_true(knit__stack_bottom_ok(&s)); /* its bottom page untouched */
    memset((char *)s.lo + 64, 0xab, s.size - 64); /* the whole stack works */
    assert_true(knit__stack_bottom_ok(&s)); /* resident, still zero */
    *(uint64_t *)s.lo = 0x5a5a;             /* as an overflow would */
    assert_false(knit__stack_bottom_ok(&s));
    *(uint64_t *)s.lo = 0;
    /* The stack pointer check: a margin above lo, anything in the stack. */
    assert_false(knit__stack_sp_ok(&s, (char *)s.lo + 16));
    assert_false(knit__stack_sp_ok(&s, (char *)s.lo - 64));
    assert_true(knit__stack_sp_ok(&s, (char *)s.lo + s.size - 64));
    knit__stack_free(&p, &s);
    assert_int_equal(p.in_use, 0);
    knit__stack_pool_fini(&p);
}

static void freed_stacks_are_reused_lifo(void **state)
{
    (void)state;
    struct knit_stack_pool p;
    struct knit_stack a, b, c;
    knit__stack_pool_init(&p);
    assert_int_equal(knit__stack_alloc(&p, 65536, &a), 0);
    assert_int_equal(knit__stack_alloc(&p, 65536, &b), 0);
    assert_ptr_not_equal(a.lo, b.lo);
    knit__stack_free(&p, &a);
    knit__stack_free(&p, &b);
    assert_int_equal(knit__stack_pool_free_count(&p), 2);
    assert_int_equal(knit__stack_alloc(&p, 65536, &c), 0);
    assert_ptr_equal(c.lo, b.lo);
    assert_true(knit__stack_bottom_ok(&c));
    assert_int_equal(p.mapped, 2);
    knit__stack_free(&p, &c);
    knit__stack_pool_fini(&p);
}

static void guard_budget_is_spent_then_canaries_take_over(void **state)
{
    (void)state;
    long old = knit__stack_set_guard_budget(3);
    struct knit_stack_pool p;
    struct knit_stack s[5];
    knit__stack_pool_init(&p);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(knit__stack_alloc(&p, 16384, &s[i]), 0);
        assert_int_equal(s[i].guarded, i < 3);
        /* The page below every stack is either a guard or a red zone. */
        assert_true(knit__stack_is_guard_hit(&s[i], (char *)s[i].lo - 1));
        assert_false(knit__stack_is_guard_hit(&s[i], (char *)s[i].lo + 64));
    }
    assert_int_equal(p.guarded, 3);
    assert_int_equal(p.canary, 2);
    for (int i = 0; i < 5; i++)
        knit__stack_free(&p, &s[i]);
    knit__stack_pool_fini(&p);
    /* The pool gave its guards back with its regions. */
    assert_int_equal(knit__stack_set_guard_budget(old), 3);
}

static void many_free_stacks_are_given_back_to_the_kernel(void **state)
{
    (void)state;
    struct knit_stack_pool p;
    enum { N = 600 };
    static struct knit_stack s[N];
    knit__stack_pool_init(&p);
    for (int i = 0; i < N; i++) {
        assert_int_equal(knit__stack_alloc(&p, 16384, &s[i]), 0);
        memset((char *)s[i].lo + 8, 1, 4096); /* commit a page */
    }
    for (int i = 0; i < N; i++)
        knit__stack_free(&p, &s[i]);
    assert_int_equal(knit__stack_pool_free_count(&p), N);
    /* Trimming keeps a warm reserve of 256 and gives the rest back, a
     * batch at a time. */
    assert_int_equal(knit__stack_pool_trim(&p, 100), 100);
    assert_int_equal(knit__stack_pool_trim(&p, 1000), N - 256 - 100);
    assert_int_equal(knit__stack_pool_trim(&p, 1000), 0);
    assert_int_equal(knit__stack_pool_free_count(&p), N);
    /* Every stack handed out again is whole, warm or cold. */
    for (int i = 0; i < N; i++) {
        assert_int_equal(knit__stack_alloc(&p, 16384, &s[i]), 0);
        assert_true(knit__stack_bottom_ok(&s[i]));
    }
    assert_int_equal(p.mapped, N);
    for (int i = 0; i < N; i++)
        knit__stack_free(&p, &s[i]);
    knit__stack_pool_fini(&p);
}

/* ---- overflow reports, in a child process ------------------------------- */

/* Recurses until @limit (never reached on a 16 KiB stack). */
static __attribute__((noinline)) int recurse(int n, int limit)
{
    volatile char pad[512];
    pad[0] = (char)n;
    pad[511] = (char)n;
    if (n == limit)
        return 0;
    return recurse(n + 1, limit) + pad[0] + pad[511];
}

static int overflow_task(void *arg)
{
    (void)arg;
    return recurse(0, 1 << 30);
}

static int t_overflow(void *arg)
{
    (void)arg;
    knit_task_opts o = {.name = "deep", .stack_size = 16384};
    return knit_join(knit_spawn_with(&o, overflow_task, NULL));
}

static int smash_canary(void *arg)
{
    (void)arg;
    /* As an overflow that came and went would; the task then ends. */
    *(volatile uint64_t *)knit__task()->stack.lo = 0x5a5a;
    return knit_yield();
}

/* Recurses until its frame is near the bottom of its (unguarded) stack,
 * then parks there: the switch finds the stack pointer below the margin. */
static __attribute__((noinline)) int sink(const char *lo)
{
    volatile char pad[64];
    pad[0] = 1;
    if ((const char *)__builtin_frame_address(0) > lo + 320)
        return sink(lo) + pad[0];
    return knit_yield() + pad[0];
}

static int park_deep(void *arg)
{
    (void)arg;
    return sink(knit__task()->stack.lo);
}

static int t_park_deep(void *arg)
{
    (void)arg;
    knit__stack_set_guard_budget(0); /* in the child only */
    knit_task_opts o = {.name = "sinker", .stack_size = 16384};
    return knit_join(knit_spawn_with(&o, park_deep, NULL));
}

static int t_canary(void *arg)
{
    (void)arg;
    knit__stack_set_guard_budget(0); /* in the child only */
    knit_task_opts o = {.name = "smasher", .stack_size = 16384};
    return knit_join(knit_spawn_with(&o, smash_canary, NULL));
}

static void stack_overflow_names_the_task_and_aborts(void **state)
{
    (void)state;
    int status;
    const char *err = kt_run_child(NULL, t_overflow, NULL, &status);
    kt_expect_in(err, "knit: task \"deep\" overflowed its 16384-byte stack");
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void smashed_canary_is_reported_when_its_task_ends(void **state)
{
    (void)state;
    int status;
    const char *err = kt_run_child(NULL, t_canary, NULL, &status);
    kt_expect_in(err, "knit: task \"smasher\" overflowed its 16384-byte stack");
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void task_parked_at_its_stack_bottom_is_reported(void **state)
{
    (void)state;
    int status;
    const char *err = kt_run_child(NULL, t_park_deep, NULL, &status);
    kt_expect_in(err, "knit: task \"sinker\" overflowed its 16384-byte stack");
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stack_is_rounded_to_pages_and_its_bottom_is_checked),
        cmocka_unit_test(freed_stacks_are_reused_lifo),
        cmocka_unit_test(guard_budget_is_spent_then_canaries_take_over),
        cmocka_unit_test(many_free_stacks_are_given_back_to_the_kernel),
        cmocka_unit_test(stack_overflow_names_the_task_and_aborts),
        cmocka_unit_test(smashed_canary_is_reported_when_its_task_ends),
        cmocka_unit_test(task_parked_at_its_stack_bottom_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
