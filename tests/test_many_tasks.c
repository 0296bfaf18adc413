// SPDX-License-Identifier: MIT
/*
 * A million tasks alive at once: they all start, park, and are cancelled
 * and joined. This is what the region-carved stacks and the guard budget
 * are for (a mapping per stack would exceed vm.max_map_count).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "kt.h"

#define N 1000000

static int park_until_cancelled(void *arg)
{
    int *started = arg;
    (*started)++;
    return knit_sleep_until(KNIT_FOREVER);
}

static int t_million(void *arg)
{
    (void)arg;
    knit_task **tasks = malloc(sizeof(*tasks) * N);
    assert_non_null(tasks);
    int started = 0;
    knit_task_opts o = {.stack_size = 16384};
    for (int i = 0; i < N; i++) {
        tasks[i] = knit_spawn_with(&o, park_until_cancelled, &started);
        assert_non_null(tasks[i]);
    }
    assert_int_equal(knit_yield(), 0); /* every one runs and parks */
    assert_int_equal(started, N);
    knit_stats s;
    assert_int_equal(knit_rt_stats(&s), 0);
    assert_int_equal(s.tasks_alive, N + 1);
    assert_int_equal(s.stacks_in_use, N + 1);
    assert_int_equal(s.stacks_guarded + s.stacks_canary, s.stacks_mapped);
    for (int i = 0; i < N; i++)
        knit_cancel(tasks[i]);
    for (int i = 0; i < N; i++)
        assert_int_equal(knit_join(tasks[i]), -ECANCELED);
    free(tasks);
    return 0;
}

static void a_million_tasks_live_at_once(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_million, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_million_tasks_live_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
