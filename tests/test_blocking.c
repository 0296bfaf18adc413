// SPDX-License-Identifier: MIT
/*
 * The blocking pool: jobs run on plain threads and are joined like tasks;
 * a joiner can be cancelled or time out while its job still runs; a job
 * that no thread has taken can be cancelled; the pool is capped.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "kt.h"

static int blocking_sleep(void *arg)
{
    usleep((useconds_t)(intptr_t)arg);
    return 42;
}

static int t_join(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn_blocking(blocking_sleep, (void *)2000);
    assert_non_null(t);
    assert_int_equal(knit_join(t), 42);
    /* The worker kept running tasks meanwhile; the manual clock did not
     * jump while the job was in flight. */
    assert_int_equal(knit_now(), 0);
    return 0;
}

static void blocking_job_is_joined_like_a_task(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_join, NULL), 0);
}

/* A parallel map: sum of squares of [lo, hi). */
struct batch {
    int64_t lo, hi;
    int64_t sum;
};

static int square_sum(void *arg)
{
    struct batch *b = arg;
    int64_t s = 0;
    for (int64_t i = b->lo; i < b->hi; i++)
        s += i * i % 1000003;
    b->sum = s;
    return 0;
}

static int t_map(void *arg)
{
    (void)arg;
    enum { N = 100000, B = 32 };
    struct batch b[B];
    knit_task *ts[B];
    for (int i = 0; i < B; i++) {
        b[i] = (struct batch){(int64_t)i * N / B, (int64_t)(i + 1) * N / B, 0};
        ts[i] = knit_spawn_blocking(square_sum, &b[i]);
        assert_non_null(ts[i]);
    }
    int64_t total = 0;
    for (int i = 0; i < B; i++) {
        assert_int_equal(knit_join(ts[i]), 0);
        total += b[i].sum;
    }
    struct batch all = {0, N, 0};
    square_sum(&all);
    assert_true(total == all.sum);
    return 0;
}

static void parallel_map_over_blocking_batches_is_exact(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_map, NULL), 0);
}

/* A job that waits until the test releases it. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    atomic_int ran;
};

static int wait_gate(void *arg)
{
    struct gate *g = arg;
    atomic_fetch_add(&g->ran, 1);
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    return 7;
}

static void open_gate(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static int join_job(void *arg)
{
    return knit_join(arg);
}

static int t_cancel_joiner(void *arg)
{
    struct gate *g = arg;
    knit_task *job = knit_spawn_blocking(wait_gate, g);
    knit_task *joiner = knit_spawn(join_job, job);
    assert_int_equal(knit_yield(), 0);
    knit_cancel(joiner);
    /* Prompt: the job still runs, the joiner is already back. */
    assert_int_equal(knit_join(joiner), -ECANCELED);
    /* With a timeout too: the handle stays valid. */
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 10);
    knit_clock_advance(10);
    assert_int_equal(knit_join(job), -ETIMEDOUT);
    knit_scope_exit(&s);
    open_gate(g);
    assert_int_equal(knit_join(job), 7);
    return 0;
}

static void joiner_of_a_running_job_can_be_cancelled_promptly(void **state)
{
    (void)state;
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false,
                     0};
    assert_int_equal(kt_run(t_cancel_joiner, &g), 0);
}

static int t_cancel_queued(void *arg)
{
    struct gate *g = arg;
    knit_task *first = knit_spawn_blocking(wait_gate, g);
    knit_task *second = knit_spawn_blocking(wait_gate, g);
    /* One thread (cfg.max_blocking_threads = 1): second is queued. */
    while (atomic_load(&g->ran) == 0)
        assert_int_equal(knit_yield(), 0);
    knit_cancel(second);
    assert_int_equal(knit_join(second), -ECANCELED);
    open_gate(g);
    assert_int_equal(knit_join(first), 7);
    assert_int_equal(atomic_load(&g->ran), 1); /* second never ran */
    return 0;
}

static void
queued_job_cancelled_before_a_thread_takes_it_never_runs(void **state)
{
    (void)state;
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false,
                     0};
    knit_config cfg;
    kt_config(&cfg);
    cfg.max_blocking_threads = 1;
    assert_int_equal(kt_run_cfg(&cfg, t_cancel_queued, &g), 0);
}

static atomic_int slow_started, slow_finished;

static int slow_job(void *arg)
{
    (void)arg;
    atomic_store(&slow_started, 1);
    usleep(20000);
    atomic_store(&slow_finished, 1);
    return 0;
}

static int t_detached(void *arg)
{
    (void)arg;
    knit_detach(knit_spawn_blocking(slow_job, NULL));
    knit_task *queued = knit_spawn_blocking(slow_job, NULL);
    knit_detach(queued);
    while (atomic_load(&slow_started) == 0)
        assert_int_equal(knit_yield(), 0);
    return 0; /* knit_run waits for the running job before returning */
}

static void
runtime_end_waits_for_running_jobs_and_cancels_queued_ones(void **state)
{
    (void)state;
    knit_config cfg;
    kt_config(&cfg);
    cfg.max_blocking_threads = 1;
    assert_int_equal(knit_run(&cfg, t_detached, NULL), 0);
    assert_int_equal(atomic_load(&slow_finished), 1);
}

static int t_job_done_before_main(void *arg)
{
    (void)arg;
    knit_detach(knit_spawn_blocking(blocking_sleep, (void *)1000));
    usleep(20000); /* the job ends while main still runs, unnoticed */
    return 0;
}

static void runtime_ends_when_a_detached_job_finished_first(void **state)
{
    (void)state;
    knit_config cfg;
    kt_config(&cfg);
    /* Hung forever before: the job's completion was drained as the last
     * task, then the idle loop blocked in the driver. */
    assert_int_equal(knit_run(&cfg, t_job_done_before_main, NULL), 0);
    cfg.clock = KNIT_CLOCK_MONOTONIC;
    assert_int_equal(knit_run(&cfg, t_job_done_before_main, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blocking_job_is_joined_like_a_task),
        cmocka_unit_test(runtime_ends_when_a_detached_job_finished_first),
        cmocka_unit_test(parallel_map_over_blocking_batches_is_exact),
        cmocka_unit_test(joiner_of_a_running_job_can_be_cancelled_promptly),
        cmocka_unit_test(
            queued_job_cancelled_before_a_thread_takes_it_never_runs),
        cmocka_unit_test(
            runtime_end_waits_for_running_jobs_and_cancels_queued_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
