// SPDX-License-Identifier: MIT
/*
 * Several workers: placement (knit_spawn_on), stealing of tasks not yet
 * started, spawn rings (bursts, cancels before the start, pokes that
 * outlive a join), cross-worker wake-ups, cancellation across workers, shutdown
 * with tasks left on other workers, per-worker statistics; and the
 * fairness bound of one worker's run queue.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "kt.h"

static int run_on(int workers, knit_fn fn, void *arg)
{
    knit_config cfg;
    kt_config(&cfg);
    cfg.workers = workers;
    return kt_run_cfg(&cfg, fn, arg);
}

/* ---- knit_spawn_on ------------------------------------------------------ */

static int report_worker(void *arg)
{
    (void)arg;
    return knit_worker_id();
}

static int t_spawn_on_places(void *arg)
{
    (void)arg;
    assert_int_equal(knit_worker_id(), 0); /* main starts on worker 0 */
    for (int round = 0; round < 3; round++) {
        for (int w = 0; w < 3; w++) {
            knit_task *t = knit_spawn_on(w, NULL, report_worker, NULL);
            assert_non_null(t);
            assert_int_equal(knit_join(t), w);
        }
    }
    knit_task_opts lazy = {.name = "lazy", .lazy = true};
    knit_task *t = knit_spawn_on(2, &lazy, report_worker, NULL);
    assert_non_null(t);
    assert_int_equal(knit_join(t), 2); /* join starts it, on worker 2 */
    errno = 0;
    assert_null(knit_spawn_on(3, NULL, report_worker, NULL));
    assert_int_equal(errno, EINVAL);
    assert_null(knit_spawn_on(-1, NULL, report_worker, NULL));
    assert_int_equal(errno, EINVAL);
    return 0;
}

static void spawn_on_runs_the_task_on_that_worker(void **state)
{
    (void)state;
    assert_int_equal(run_on(3, t_spawn_on_places, NULL), 0);
}

/* ---- knit_rt_worker_stats ---------------------------------------------- */

static int yield_n(void *arg)
{
    for (intptr_t i = 0; i < (intptr_t)arg; i++)
        knit_yield();
    return 0;
}

static int stats_cancelled(void *arg)
{
    (void)arg;
    knit_stats s;
    knit_cancel(knit_current());
    int r = knit_rt_worker_stats(1, &s);
    return r == 0 ? s.worker : r;
}

static int t_worker_stats(void *arg)
{
    (void)arg;
    knit_stats s0, s1, again;
    assert_int_equal(knit_rt_worker_stats(1, &s1), 0);
    assert_int_equal(s1.worker, 1);
    assert_int_equal(s1.workers, 2);
    /* Work placed on worker 1 shows in its counters, not in worker 0's. */
    assert_int_equal(knit_rt_worker_stats(0, &s0), 0);
    assert_int_equal(s0.worker, 0);
    knit_task *t = knit_spawn_on(1, NULL, yield_n, (void *)(intptr_t)1000);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(knit_rt_worker_stats(1, &again), 0);
    assert_true(again.switches >= s1.switches + 1000);
    assert_true(again.stacks_mapped >= 1); /* its stacks are its own */
    /* Own worker: the same as knit_rt_stats. */
    assert_int_equal(knit_rt_worker_stats(0, &again), 0);
    assert_int_equal(again.worker, 0);
    assert_true(again.switches < s0.switches + 1000);
    /* Bad worker numbers. */
    assert_int_equal(knit_rt_worker_stats(2, &again), -EINVAL);
    assert_int_equal(knit_rt_worker_stats(-1, &again), -EINVAL);
    /* A cancel does not cut the wait short (the stats task writes into
     * the caller's frame): the call still answers. */
    knit_task *c = knit_spawn_on(0, NULL, stats_cancelled, NULL);
    assert_int_equal(knit_join(c), 1);
    return 0;
}

static void worker_stats_come_from_that_worker(void **state)
{
    (void)state;
    assert_int_equal(run_on(2, t_worker_stats, NULL), 0);
    /* Outside a runtime. */
    knit_stats s;
    assert_int_equal(knit_rt_worker_stats(0, &s), -ESRCH);
}

/* ---- stealing ------------------------------------------------------------ */

static atomic_int partner_ran;

/* Holds its worker without yielding until the partner has run: only
 * another worker can run the partner, by taking it off this one's newq. */
static int hog(void *arg)
{
    (void)arg;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&partner_ran)) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 20)
            return -ETIMEDOUT; /* nobody stole the partner */
    }
    return 0;
}

static int partner(void *arg)
{
    (void)arg;
    atomic_store(&partner_ran, 1);
    return knit_worker_id();
}

static int t_idle_worker_steals(void *arg)
{
    (void)arg;
    atomic_store(&partner_ran, 0);
    knit_task *h = knit_spawn_on(0, NULL, hog, NULL);
    knit_task *p = knit_spawn(partner, NULL); /* on worker 0's newq */
    assert_non_null(h);
    assert_non_null(p);
    /* main parks; worker 0 then runs the hog, which never yields. */
    assert_int_equal(knit_join(h), 0);
    assert_int_equal(knit_join(p), 1);
    knit_stats st;
    assert_int_equal(knit_rt_stats(&st), 0);
    assert_int_equal(st.worker, 0);
    assert_true(st.stolen >= 1);
    assert_int_equal(st.workers, 2);
    return 0;
}

static void an_idle_worker_takes_tasks_its_peer_cannot_run(void **state)
{
    (void)state;
    assert_int_equal(run_on(2, t_idle_worker_steals, NULL), 0);
}

/* ---- joins across workers ------------------------------------------------ */

#define JOIN_TASKS 64
#define JOIN_ROUNDS 40

static atomic_int join_ended;

static int times_seven(void *arg)
{
    int v = (int)(intptr_t)arg * 7;
    atomic_fetch_add(&join_ended, 1);
    return v;
}

/* Spawns JOIN_TASKS tasks on worker @on, lets every one end, then joins
 * them (in reverse order) from the calling task: the joins take tasks
 * that ended elsewhere, most without waiting, and give their structs
 * back to the worker that allocated them. Returns the number of wrong
 * results. */
static int spawn_end_join(int on)
{
    knit_task *t[JOIN_TASKS];
    atomic_store(&join_ended, 0);
    for (int i = 0; i < JOIN_TASKS; i++) {
        t[i] = knit_spawn_on(on, NULL, times_seven, (void *)(intptr_t)i);
        if (!t[i])
            return JOIN_TASKS;
    }
    while (atomic_load(&join_ended) < JOIN_TASKS)
        knit_yield();
    int wrong = 0;
    for (int i = JOIN_TASKS - 1; i >= 0; i--)
        if (knit_join(t[i]) != i * 7)
            wrong++;
    return wrong;
}

/* On worker 1: the same with the tasks on worker 0. */
static int spawn_end_join_from_1(void *arg)
{
    (void)arg;
    return spawn_end_join(0);
}

static int t_joins_across_workers(void *arg)
{
    (void)arg;
    for (int round = 0; round < JOIN_ROUNDS; round++) {
        /* Structs of worker 0's slabs, ended on worker 1, freed on 0. */
        assert_int_equal(spawn_end_join(1), 0);
        /* Structs of worker 1's slabs, ended on worker 0, freed on 1. */
        knit_task *t = knit_spawn_on(1, NULL, spawn_end_join_from_1, NULL);
        assert_non_null(t);
        assert_int_equal(knit_join(t), 0);
        /* And a plain spawn, which either worker may run. */
        knit_task *p = knit_spawn(times_seven, (void *)(intptr_t)round);
        assert_non_null(p);
        assert_int_equal(knit_join(p), round * 7);
    }
    return 0;
}

static void joins_take_tasks_that_ended_on_another_worker(void **state)
{
    (void)state;
    assert_int_equal(run_on(2, t_joins_across_workers, NULL), 0);
}

/* ---- spawn rings ---------------------------------------------------------- */

#define BURST 3000 /* past the first ring buffer (256): it grows */

static atomic_int burst_ran[BURST];

static int burst_body(void *arg)
{
    int i = (int)(intptr_t)arg;
    atomic_fetch_add(&burst_ran[i], 1);
    return i;
}

static int t_burst(void *arg)
{
    (void)arg;
    static knit_task *t[BURST];
    knit_stats s0, s1;
    knit_rt_stats(&s0);
    for (int i = 0; i < BURST; i++) {
        atomic_store(&burst_ran[i], 0);
        t[i] = knit_spawn(burst_body, (void *)(intptr_t)i);
        assert_non_null(t[i]);
    }
    knit_rt_stats(&s1);
    assert_int_equal(s1.tasks_spawned - s0.tasks_spawned, BURST);
    for (int i = 0; i < BURST; i++)
        assert_int_equal(knit_join(t[i]), i);
    for (int i = 0; i < BURST; i++)
        assert_int_equal(atomic_load(&burst_ran[i]), 1);
    assert_int_equal(kt_tasks_alive(), 1); /* main */
    return 0;
}

static void a_burst_past_the_ring_runs_every_task_once(void **state)
{
    (void)state;
    assert_int_equal(run_on(2, t_burst, NULL), 0);
    assert_int_equal(run_on(4, t_burst, NULL), 0);
}

#define UNSTARTED 200

static atomic_bool unstarted_ran[UNSTARTED];
static atomic_int holders;        /* hold() tasks running */
static atomic_bool holders_go;    /* they may return */

static int mark_ran(void *arg)
{
    atomic_store(&unstarted_ran[(intptr_t)arg], true);
    return 0;
}

/* Keeps its worker without yielding until holders_go: it can take
 * nothing off a ring meanwhile. */
static int hold(void *arg)
{
    (void)arg;
    atomic_fetch_add(&holders, 1);
    while (!atomic_load(&holders_go))
        ;
    return 0;
}

/* Tasks cancelled while they wait on main's spawn ring, which nobody
 * can take from (worker 0 runs main, every other worker a hold()): each
 * ends with -ECANCELED once taken, and its body never runs. */
static int t_cancel_unstarted(void *arg)
{
    int workers = (int)(intptr_t)arg;
    knit_task *h[8];
    atomic_store(&holders, 0);
    atomic_store(&holders_go, false);
    for (int w = 1; w < workers; w++)
        h[w] = knit_spawn_on(w, NULL, hold, NULL);
    while (atomic_load(&holders) < workers - 1)
        knit_yield();
    knit_task *t[UNSTARTED];
    for (int i = 0; i < UNSTARTED; i++) {
        atomic_store(&unstarted_ran[i], false);
        t[i] = knit_spawn(mark_ran, (void *)(intptr_t)i);
    }
    for (int i = 0; i < UNSTARTED; i++)
        knit_cancel(t[i]);
    atomic_store(&holders_go, true);
    for (int i = 0; i < UNSTARTED; i++) {
        assert_int_equal(knit_join(t[i]), -ECANCELED);
        assert_false(atomic_load(&unstarted_ran[i]));
    }
    for (int w = 1; w < workers; w++)
        assert_int_equal(knit_join(h[w]), 0);
    return 0;
}

static void cancelled_unstarted_tasks_never_run(void **state)
{
    (void)state;
    assert_int_equal(run_on(2, t_cancel_unstarted, (void *)2), 0);
    assert_int_equal(run_on(4, t_cancel_unstarted, (void *)4), 0);
}

#define POKE_ROUNDS 200

static atomic_bool spinner_started;

static int spin_until_cancelled(void *arg)
{
    (void)arg;
    atomic_store(&spinner_started, true);
    int err;
    while ((err = knit_yield()) == 0)
        ;
    return err;
}

/* A cancel from worker 0 pokes the task on worker 1 through its inbox;
 * the task may end (at its next yield) and be joined before the poke
 * runs. The poke holds its own reference, so the struct outlives it
 * (ASan: no use after free). */
static int t_poke_then_join(void *arg)
{
    (void)arg;
    for (int round = 0; round < POKE_ROUNDS; round++) {
        atomic_store(&spinner_started, false);
        knit_task *t = knit_spawn_on(1, NULL, spin_until_cancelled, NULL);
        assert_non_null(t);
        while (!atomic_load(&spinner_started))
            knit_yield();
        knit_cancel(t);
        assert_int_equal(knit_join(t), -ECANCELED);
    }
    return 0;
}

static void a_poke_in_flight_outlives_the_join(void **state)
{
    (void)state;
    assert_int_equal(run_on(2, t_poke_then_join, NULL), 0);
}

/* ---- cross-worker wake-ups, cancellation, shutdown ------------------------ */

struct ping {
    knit_chan *to_b, *to_a;
    int rounds;
};

static int pong(void *arg)
{
    struct ping *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        int v;
        if (knit_chan_recv(p->to_b, &v) != 0 || v != i)
            return -EPROTO;
        v = -i;
        if (knit_chan_send(p->to_a, &v) != 0)
            return -EPIPE;
    }
    return knit_worker_id();
}

static int t_ping_across_workers(void *arg)
{
    (void)arg;
    struct ping p = {knit_chan_new(sizeof(int), 1), knit_chan_new(sizeof(int), 1),
                     2000};
    knit_task *b = knit_spawn_on(1, NULL, pong, &p);
    for (int i = 0; i < p.rounds; i++) {
        int v = i;
        assert_int_equal(knit_chan_send(p.to_b, &v), 0);
        assert_int_equal(knit_chan_recv(p.to_a, &v), 0);
        assert_int_equal(v, -i);
    }
    assert_int_equal(knit_join(b), 1);
    knit_chan_unref(p.to_b);
    knit_chan_unref(p.to_a);
    return 0;
}

static void values_pass_between_tasks_of_two_workers(void **state)
{
    (void)state;
    assert_int_equal(run_on(2, t_ping_across_workers, NULL), 0);
}

static int sleep_long(void *arg)
{
    (void)arg;
    return knit_sleep(1000000);
}

static int t_cancel_across(void *arg)
{
    (void)arg;
    knit_task *t[8];
    for (int i = 0; i < 8; i++)
        t[i] = knit_spawn_on(1 + i % 2, NULL, sleep_long, NULL);
    assert_int_equal(knit_sleep(10), 0); /* all of them are asleep */
    for (int i = 0; i < 8; i++)
        knit_cancel(t[i]);
    for (int i = 0; i < 8; i++)
        assert_int_equal(knit_join(t[i]), -ECANCELED);
    /* A task cancelled before it could start never runs its body. */
    knit_task *u = knit_spawn_on(2, NULL, sleep_long, NULL);
    knit_cancel(u);
    assert_int_equal(knit_join(u), -ECANCELED);
    assert_int_equal(knit_now(), 10); /* nothing waited for the sleeps */
    return 0;
}

static void cancel_reaches_tasks_parked_on_other_workers(void **state)
{
    (void)state;
    assert_int_equal(run_on(3, t_cancel_across, NULL), 0);
}

static atomic_int shut_cancelled;

static int sleep_and_count(void *arg)
{
    (void)arg;
    if (knit_sleep(1000000) == -ECANCELED)
        atomic_fetch_add(&shut_cancelled, 1);
    return 0;
}

static int t_main_leaves_tasks(void *arg)
{
    (void)arg;
    for (int i = 0; i < 6; i++)
        knit_detach(knit_spawn_on(i % 3, NULL, sleep_and_count, NULL));
    assert_int_equal(knit_sleep(5), 0);
    return 7;
}

static void run_cancels_tasks_left_on_every_worker(void **state)
{
    (void)state;
    atomic_store(&shut_cancelled, 0);
    knit_config cfg;
    kt_config(&cfg);
    cfg.workers = 3;
    /* Not kt_run: leaving tasks behind is the point here. */
    assert_int_equal(knit_run(&cfg, t_main_leaves_tasks, NULL), 7);
    assert_int_equal(atomic_load(&shut_cancelled), 6);
}

/* ---- fairness on one worker ------------------------------------------------ */

struct pingpong {
    knit_chan *ab, *ba;
    int exchanged; /* values B has received */
    int seen_by_c; /* exchanged when the third task first ran, or -1 */
};

static int pp_a(void *arg)
{
    struct pingpong *p = arg;
    for (int i = 0; i < 2000; i++) {
        int v = i;
        if (knit_chan_send(p->ab, &v) || knit_chan_recv(p->ba, &v))
            return -1;
    }
    return 0;
}

static int pp_b(void *arg)
{
    struct pingpong *p = arg;
    for (int i = 0; i < 2000; i++) {
        int v;
        if (knit_chan_recv(p->ab, &v))
            return -1;
        p->exchanged++;
        if (knit_chan_send(p->ba, &v))
            return -1;
    }
    return 0;
}

static int pp_c(void *arg)
{
    struct pingpong *p = arg;
    p->seen_by_c = p->exchanged;
    return 0;
}

static int t_pingpong_fair(void *arg)
{
    (void)arg;
    struct pingpong p = {knit_chan_new(sizeof(int), 1),
                         knit_chan_new(sizeof(int), 1), 0, -1};
    knit_task *a = knit_spawn(pp_a, &p);
    knit_task *b = knit_spawn(pp_b, &p);
    knit_task *c = knit_spawn(pp_c, &p); /* ready behind the pair */
    assert_int_equal(knit_join(a), 0);
    assert_int_equal(knit_join(b), 0);
    assert_int_equal(knit_join(c), 0);
    /* Each hand-off makes the receiver runnable next, ahead of c; the
     * streak cap must let c in within one budget of hand-offs. */
    assert_true(p.seen_by_c >= 0);
    assert_true(p.seen_by_c <= 128);
    knit_chan_unref(p.ab);
    knit_chan_unref(p.ba);
    return 0;
}

static void a_ping_pong_pair_cannot_starve_a_third_task(void **state)
{
    (void)state;
    assert_int_equal(run_on(1, t_pingpong_fair, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spawn_on_runs_the_task_on_that_worker),
        cmocka_unit_test(worker_stats_come_from_that_worker),
        cmocka_unit_test(an_idle_worker_takes_tasks_its_peer_cannot_run),
        cmocka_unit_test(values_pass_between_tasks_of_two_workers),
        cmocka_unit_test(joins_take_tasks_that_ended_on_another_worker),
        cmocka_unit_test(a_burst_past_the_ring_runs_every_task_once),
        cmocka_unit_test(cancelled_unstarted_tasks_never_run),
        cmocka_unit_test(a_poke_in_flight_outlives_the_join),
        cmocka_unit_test(cancel_reaches_tasks_parked_on_other_workers),
        cmocka_unit_test(run_cancels_tasks_left_on_every_worker),
        cmocka_unit_test(a_ping_pong_pair_cannot_starve_a_third_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
