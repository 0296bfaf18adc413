// SPDX-License-Identifier: MIT
/*
 * The graceful shutdown coordinator (knit/patterns/shutdown.h). On the
 * manual clock with exact times: intake stops at the trigger, tasks in
 * flight finish within the grace, stragglers are cancelled at its
 * deadline and run their own cleanup, the report counts exactly, a force
 * (or a second signal) skips the grace, and the waiting task's own scope
 * forces the shutdown without leaving a task behind. Signals are raised
 * at the worker thread (raise), and once process-directed (kill) in a
 * child process. Misuse panics run in child processes.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "kt.h"

/* A tracked job: sleeps ms, then (when cancelled) a shielded cleanup of
 * cleanup_ms. Records what happened. */
struct job {
    int64_t ms;
    int64_t cleanup_ms;
    bool ran;
    int result;    /* knit_sleep's result */
    int64_t ended; /* knit_now() when it returned */
};

static int job_fn(void *arg)
{
    struct job *j = arg;
    j->ran = true;
    j->result = knit_sleep(j->ms);
    if (j->result < 0 && j->cleanup_ms > 0) {
        knit_scope s;
        knit_scope_enter_shielded(&s, KNIT_FOREVER);
        assert_int_equal(knit_sleep(j->cleanup_ms), 0);
        knit_scope_exit(&s);
    }
    j->ended = knit_now();
    return j->result;
}

/* An intake loop: "accepts" one item every 30 ms until the token fires. */
struct intake {
    knit_shutdown_coord *sd;
    int accepted;
    int64_t stopped_at;
};

static int intake_fn(void *arg)
{
    struct intake *in = arg;
    for (;;) {
        knit_case cs[2] = {knit_case_token(knit_shutdown_token(in->sd)),
                           knit_case_deadline(knit_now() + 30)};
        int r = knit_select(cs, 2);
        if (r < 0)
            return r;
        if (r == 0) {
            in->stopped_at = knit_now();
            return 0;
        }
        in->accepted++;
    }
}

static void expect_report(const knit_shutdown_report *r,
                          const knit_shutdown_report *want)
{
    assert_int_equal(r->signal, want->signal);
    assert_int_equal(r->forced, want->forced);
    assert_int_equal(r->spawned, want->spawned);
    assert_int_equal(r->in_flight, want->in_flight);
    assert_int_equal(r->finished, want->finished);
    assert_int_equal(r->cancelled, want->cancelled);
    assert_int_equal(r->started_at, want->started_at);
    assert_int_equal(r->elapsed_ms, want->elapsed_ms);
}

/* ---- the main path ------------------------------------------------------- */

static int t_main_path(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    struct intake in = {&sd, 0, -1};
    struct job a = {.ms = 150};
    struct job b = {.ms = 400};
    assert_int_equal(knit_shutdown_spawn(&sd, intake_fn, &in), 0);
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &a), 0);
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &b), 0);
    assert_int_equal(knit_shutdown_running(&sd), 3);
    assert_false(knit_shutdown_is_triggered(&sd));

    assert_int_equal(knit_sleep(100), 0);
    knit_shutdown_trigger(&sd);
    assert_true(knit_shutdown_is_triggered(&sd));
    assert_true(knit_token_is_cancelled(knit_shutdown_token(&sd)));
    /* Intake is closed: no new tracked task. */
    struct job late = {.ms = 1};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &late), -ECANCELED);

    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, 200, &rep), 0);
    assert_int_equal(knit_now(), 300);
    /* The intake loop stopped at the trigger, after 3 items (30, 60, 90). */
    assert_int_equal(in.stopped_at, 100);
    assert_int_equal(in.accepted, 3);
    /* a finished within the grace; b was cut at its end, t=100+200. */
    assert_int_equal(a.result, 0);
    assert_int_equal(a.ended, 150);
    assert_int_equal(b.result, -ECANCELED);
    assert_int_equal(b.ended, 300);
    assert_false(late.ran);
    expect_report(&rep, &(knit_shutdown_report){.signal = 0,
                                                .forced = false,
                                                .spawned = 3,
                                                .in_flight = 3,
                                                .finished = 2,
                                                .cancelled = 1,
                                                .started_at = 100,
                                                .elapsed_ms = 200});
    assert_int_equal(knit_shutdown_running(&sd), 0);
    knit_shutdown_destroy(&sd);
    return 0;
}

static void
shutdown_trigger_stops_intake_drains_and_cancels_at_the_grace(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_main_path, NULL), 0);
}

static int t_all_in_time(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    struct job early = {.ms = 20}; /* ends before the trigger */
    struct job a = {.ms = 120};
    struct job b = {.ms = 170};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &early), 0);
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &a), 0);
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &b), 0);
    assert_int_equal(knit_sleep(50), 0);
    assert_int_equal(knit_shutdown_running(&sd), 2);
    knit_shutdown_trigger(&sd);
    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, 1000, &rep), 0);
    /* Returns when the last one ends, not at the grace's end. */
    assert_int_equal(knit_now(), 170);
    assert_int_equal(b.result, 0);
    expect_report(&rep, &(knit_shutdown_report){.spawned = 3,
                                                .in_flight = 2,
                                                .finished = 2,
                                                .cancelled = 0,
                                                .started_at = 50,
                                                .elapsed_ms = 120});
    knit_shutdown_destroy(&sd);
    return 0;
}

static void
shutdown_returns_as_soon_as_everything_finished_in_time(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_all_in_time, NULL), 0);
}

static int t_cleanup(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    struct job b = {.ms = 1000, .cleanup_ms = 30};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &b), 0);
    knit_shutdown_trigger(&sd);
    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, 100, &rep), 0);
    /* Cancelled at 100, then its shielded cleanup ran for 30 ms. */
    assert_int_equal(b.result, -ECANCELED);
    assert_int_equal(b.ended, 130);
    assert_int_equal(knit_now(), 130);
    expect_report(&rep, &(knit_shutdown_report){.spawned = 1,
                                                .in_flight = 1,
                                                .finished = 0,
                                                .cancelled = 1,
                                                .started_at = 0,
                                                .elapsed_ms = 130});
    knit_shutdown_destroy(&sd);
    return 0;
}

static void shutdown_waits_for_the_cleanup_of_cancelled_tasks(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cleanup, NULL), 0);
}

static int t_late_wait(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    struct job a = {.ms = 1000};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &a), 0);
    assert_int_equal(knit_sleep(10), 0);
    knit_shutdown_trigger(&sd);
    assert_int_equal(knit_sleep(490), 0);
    /* The grace counts from the trigger (t=10): over since t=210. */
    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, 200, &rep), 0);
    assert_int_equal(knit_now(), 500);
    assert_int_equal(a.ended, 500);
    assert_int_equal(a.result, -ECANCELED);
    expect_report(&rep, &(knit_shutdown_report){.spawned = 1,
                                                .in_flight = 1,
                                                .cancelled = 1,
                                                .started_at = 10,
                                                .elapsed_ms = 490});
    knit_shutdown_destroy(&sd);
    return 0;
}

static void
shutdown_grace_counts_from_the_trigger_not_from_the_wait(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_late_wait, NULL), 0);
}

static int t_forever(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    struct job a = {.ms = 700};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &a), 0);
    knit_shutdown_trigger(&sd);
    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, KNIT_FOREVER, &rep), 0);
    assert_int_equal(a.result, 0);
    expect_report(&rep, &(knit_shutdown_report){.spawned = 1,
                                                .in_flight = 1,
                                                .finished = 1,
                                                .elapsed_ms = 700});
    knit_shutdown_destroy(&sd);
    return 0;
}

static void shutdown_without_a_grace_limit_waits_for_every_task(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_forever, NULL), 0);
}

static int t_nothing(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    memset(&sd, 0, sizeof(sd)); /* all-zero: ready */
    assert_int_equal(knit_sleep(5), 0);
    knit_shutdown_trigger(&sd);
    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, 100, &rep), 0);
    assert_int_equal(knit_now(), 5);
    expect_report(&rep, &(knit_shutdown_report){.started_at = 5});
    knit_shutdown_destroy(&sd);
    return 0;
}

static void shutdown_all_zero_with_no_task_reports_zeros_at_once(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_nothing, NULL), 0);
}

/* ---- trigger, force ------------------------------------------------------ */

struct later {
    knit_shutdown_coord *sd;
    int64_t at;
    bool force; /* else trigger */
};

static int later_fn(void *arg)
{
    struct later *l = arg;
    int err = knit_sleep_until(l->at);
    if (err)
        return err;
    if (l->force)
        knit_shutdown_force(l->sd);
    else
        knit_shutdown_trigger(l->sd);
    return 0;
}

static int t_force(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    struct job a = {.ms = 120};
    struct job b = {.ms = 5000};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &a), 0);
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &b), 0);
    struct later trig = {&sd, 100, false};
    struct later again = {&sd, 130, false}; /* idempotent: no effect */
    struct later force = {&sd, 150, true};
    knit_task *t1 = knit_spawn(later_fn, &trig);
    knit_task *t2 = knit_spawn(later_fn, &again);
    knit_task *t3 = knit_spawn(later_fn, &force);
    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, 1000, &rep), 0);
    /* The grace would have run to t=1100; the force cut it at t=150. */
    assert_int_equal(knit_now(), 150);
    assert_int_equal(a.result, 0);
    assert_int_equal(b.result, -ECANCELED);
    assert_int_equal(b.ended, 150);
    expect_report(&rep, &(knit_shutdown_report){.forced = true,
                                                .spawned = 2,
                                                .in_flight = 2,
                                                .finished = 1,
                                                .cancelled = 1,
                                                .started_at = 100,
                                                .elapsed_ms = 50});
    assert_int_equal(knit_join(t1), 0);
    assert_int_equal(knit_join(t2), 0);
    assert_int_equal(knit_join(t3), 0);
    knit_shutdown_force(&sd); /* after the wait: a no-op */
    assert_int_equal(knit_shutdown_wait(&sd, 0, &rep), 0);
    assert_true(rep.forced);
    assert_int_equal(rep.cancelled, 1);
    knit_shutdown_destroy(&sd);
    return 0;
}

static void shutdown_force_skips_the_rest_of_the_grace(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_force, NULL), 0);
}

static int t_force_first(void *arg)
{
    (void)arg;
    /* One worker only: "b not started yet" needs b queued behind us; on
     * several workers it starts at once on another. */
    if (kt_workers() > 1)
        return 0;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    struct job a = {.ms = 100};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &a), 0);
    assert_int_equal(knit_sleep(20), 0); /* a runs, parked in its sleep */
    struct job b = {.ms = 100};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &b), 0);
    /* Force with no trigger before, and b not started yet. */
    knit_shutdown_force(&sd);
    assert_true(knit_shutdown_is_triggered(&sd));
    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, 1000, &rep), 0);
    assert_int_equal(knit_now(), 20);
    assert_int_equal(a.result, -ECANCELED);
    assert_false(b.ran); /* like a task cancelled before it started */
    expect_report(&rep, &(knit_shutdown_report){.forced = true,
                                                .spawned = 2,
                                                .in_flight = 2,
                                                .cancelled = 2,
                                                .started_at = 20});
    knit_shutdown_destroy(&sd);
    return 0;
}

static void
shutdown_force_alone_triggers_and_a_task_not_started_never_runs(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_force_first, NULL), 0);
}

/* ---- the waiting task's own scope -----------------------------------------
 */

struct waiter {
    knit_shutdown_coord *sd;
    int64_t grace;
    int64_t deadline; /* of a scope around the wait; KNIT_FOREVER: none */
    knit_shutdown_report rep;
    int64_t returned_at;
};

static int waiter_fn(void *arg)
{
    struct waiter *w = arg;
    knit_scope s;
    knit_scope_enter(&s, w->deadline);
    int err = knit_shutdown_wait(w->sd, w->grace, &w->rep);
    knit_scope_exit(&s);
    w->returned_at = knit_now();
    return err;
}

static int t_wait_cancelled(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    struct job a = {.ms = 200};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &a), 0);
    struct waiter w = {&sd, 1000, KNIT_FOREVER, {0}, -1};
    knit_task *t = knit_spawn(waiter_fn, &w);
    assert_int_equal(knit_sleep(50), 0);
    knit_cancel(t); /* before any trigger */
    assert_int_equal(knit_join(t), -ECANCELED);
    /* Forced at once; a was cancelled and awaited before the return. */
    assert_int_equal(w.returned_at, 50);
    assert_int_equal(a.result, -ECANCELED);
    assert_int_equal(a.ended, 50);
    assert_int_equal(knit_shutdown_running(&sd), 0);
    expect_report(&w.rep, &(knit_shutdown_report){.forced = true,
                                                  .spawned = 1,
                                                  .in_flight = 1,
                                                  .cancelled = 1,
                                                  .started_at = 50});
    knit_shutdown_destroy(&sd);
    return 0;
}

static void
shutdown_wait_cancelled_before_the_trigger_forces_and_awaits_all(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_wait_cancelled, NULL), 0);
}

static int t_wait_deadline(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    struct job a = {.ms = 60};
    struct job b = {.ms = 500};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &a), 0);
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &b), 0);
    knit_shutdown_trigger(&sd);
    /* The grace is 1000 ms, but the waiter's own scope ends at 100. */
    struct waiter w = {&sd, 1000, 100, {0}, -1};
    assert_int_equal(waiter_fn(&w), -ETIMEDOUT);
    assert_int_equal(w.returned_at, 100);
    assert_int_equal(a.result, 0);
    assert_int_equal(b.result, -ECANCELED);
    assert_int_equal(b.ended, 100);
    expect_report(&w.rep, &(knit_shutdown_report){.forced = true,
                                                  .spawned = 2,
                                                  .in_flight = 2,
                                                  .finished = 1,
                                                  .cancelled = 1,
                                                  .elapsed_ms = 100});
    knit_shutdown_destroy(&sd);
    return 0;
}

static void
shutdown_wait_whose_scope_expires_forces_and_returns_etimedout(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_wait_deadline, NULL), 0);
}

static int t_wait_twice(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    struct job a = {.ms = 40};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &a), 0);
    struct waiter w = {&sd, 100, KNIT_FOREVER, {0}, -1};
    knit_task *t = knit_spawn(waiter_fn, &w);
    kt_settle(); /* w parks, waiting for the trigger */
    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, 100, &rep), -EBUSY);
    assert_int_equal(knit_sleep(10), 0);
    knit_shutdown_trigger(&sd);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(w.returned_at, 40);
    /* Later calls return at once with the same report. */
    memset(&rep, 0xff, sizeof(rep));
    assert_int_equal(knit_shutdown_wait(&sd, 0, &rep), 0);
    expect_report(&rep, &w.rep);
    expect_report(&rep, &(knit_shutdown_report){.spawned = 1,
                                                .in_flight = 1,
                                                .finished = 1,
                                                .started_at = 10,
                                                .elapsed_ms = 30});
    assert_int_equal(knit_shutdown_wait(&sd, 0, NULL), 0);
    assert_int_equal(knit_now(), 40);
    knit_shutdown_destroy(&sd);
    return 0;
}

static void
shutdown_second_wait_is_busy_then_returns_the_same_report(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_wait_twice, NULL), 0);
}

/* ---- spawning ------------------------------------------------------------ */

static int named_fn(void *arg)
{
    char *name = arg; /* copied: the name goes with the task */
    snprintf(name, 32, "%s", knit_task_name(knit_current()));
    return 0;
}

static int t_spawn_errors(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    struct job j = {.ms = 1};
    assert_int_equal(knit_shutdown_spawn(&sd, NULL, &j), -EINVAL);
    knit_task_opts lazy = {.lazy = true};
    assert_int_equal(knit_shutdown_spawn_with(&sd, &lazy, job_fn, &j), -EINVAL);
    /* knit_spawn_with refuses a 2 GiB stack: the spawn fails cleanly. */
    knit_task_opts huge = {.stack_size = (size_t)2 << 30};
    assert_int_equal(knit_shutdown_spawn_with(&sd, &huge, job_fn, &j), -ENOMEM);
    assert_int_equal(knit_shutdown_running(&sd), 0);
    char name[32] = "";
    knit_task_opts named = {.name = "conn-7"};
    assert_int_equal(knit_shutdown_spawn_with(&sd, &named, named_fn, name), 0);
    assert_int_equal(knit_sleep(1), 0);
    assert_string_equal(name, "conn-7");
    assert_false(j.ran);

    /* A child token of the coordinator's is cancelled by the trigger. */
    knit_token child;
    knit_token_init(&child, knit_shutdown_token(&sd));
    knit_shutdown_trigger(&sd);
    assert_true(knit_token_is_cancelled(&child));
    knit_token_destroy(&child);
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &j), -ECANCELED);
    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, 0, &rep), 0);
    expect_report(&rep, &(knit_shutdown_report){.spawned = 1, .started_at = 1});
    knit_shutdown_destroy(&sd);
    return 0;
}

static void shutdown_spawn_refuses_bad_arguments_and_closed_intake(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_spawn_errors, NULL), 0);
}

/* A tracked task that spawns more tracked tasks (an accept loop). */
struct acceptor {
    knit_shutdown_coord *sd;
    struct job conns[3];
    int spawned;
    int refused;
};

static int acceptor_fn(void *arg)
{
    struct acceptor *a = arg;
    for (int i = 0; i < 3; i++) {
        int err = knit_sleep(40);
        if (err)
            return err;
        a->conns[i].ms = 100;
        if (knit_shutdown_spawn(a->sd, job_fn, &a->conns[i]) == 0)
            a->spawned++;
        else
            a->refused++;
    }
    return 0;
}

static int t_nested(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    struct acceptor acc = {.sd = &sd};
    assert_int_equal(knit_shutdown_spawn(&sd, acceptor_fn, &acc), 0);
    assert_int_equal(knit_sleep(100), 0); /* conns at 40 and 80 */
    knit_shutdown_trigger(&sd);
    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, 500, &rep), 0);
    /* The acceptor's third accept (t=120) was refused. */
    assert_int_equal(acc.spawned, 2);
    assert_int_equal(acc.refused, 1);
    assert_int_equal(acc.conns[1].ended, 180);
    assert_int_equal(knit_now(), 180);
    expect_report(&rep, &(knit_shutdown_report){.spawned = 3,
                                                .in_flight = 3,
                                                .finished = 3,
                                                .started_at = 100,
                                                .elapsed_ms = 80});
    knit_shutdown_destroy(&sd);
    return 0;
}

static void shutdown_tracked_tasks_may_spawn_until_the_trigger(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_nested, NULL), 0);
}

/* ---- signals ------------------------------------------------------------- */

static sigset_t int_term(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    return s;
}

struct raiser {
    int64_t at[2];
    int sig[2];
};

/* kill(), not raise(): the listener may wait on another worker, and a
 * thread-directed signal is only seen by its own thread. */
static int raiser_fn(void *arg)
{
    struct raiser *r = arg;
    for (int i = 0; i < 2; i++) {
        if (r->sig[i] == 0)
            break;
        int err = knit_sleep_until(r->at[i]);
        if (err)
            return err;
        if (kill(getpid(), r->sig[i]) != 0)
            return -EIO;
    }
    return 0;
}

static int t_signals(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    sigset_t set = int_term();
    assert_int_equal(knit_shutdown_listen(&sd, &set), 0);
    struct job a = {.ms = 5000};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &a), 0);
    struct raiser r = {{100, 160}, {SIGTERM, SIGINT}};
    knit_task *t = knit_spawn(raiser_fn, &r);
    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, 3000, &rep), 0);
    /* SIGTERM at 100 started it; SIGINT at 160 skipped the grace. */
    assert_int_equal(knit_now(), 160);
    assert_int_equal(a.result, -ECANCELED);
    assert_int_equal(a.ended, 160);
    expect_report(&rep, &(knit_shutdown_report){.signal = SIGTERM,
                                                .forced = true,
                                                .spawned = 1,
                                                .in_flight = 1,
                                                .cancelled = 1,
                                                .started_at = 100,
                                                .elapsed_ms = 60});
    assert_int_equal(knit_join(t), 0);
    knit_shutdown_destroy(&sd); /* the listener was stopped by the wait */
    return 0;
}

static void shutdown_first_signal_triggers_and_the_second_forces(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_signals, NULL), 0);
}

static int t_signal_one(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    sigset_t set = int_term();
    assert_int_equal(knit_shutdown_listen(&sd, &set), 0);
    struct job a = {.ms = 80};
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &a), 0);
    /* Before the listener has run: the signal is kept, not fatal. To
     * the process, not raise()'s thread: the listener may read its
     * signals on another worker. */
    assert_int_equal(kill(getpid(), SIGINT), 0);
    knit_shutdown_report rep;
    assert_int_equal(knit_shutdown_wait(&sd, 500, &rep), 0);
    assert_int_equal(a.result, 0);
    expect_report(&rep, &(knit_shutdown_report){.signal = SIGINT,
                                                .spawned = 1,
                                                .in_flight = 1,
                                                .finished = 1,
                                                .elapsed_ms = 80});
    knit_shutdown_destroy(&sd);
    return 0;
}

static void shutdown_signal_before_the_listener_runs_is_kept(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_signal_one, NULL), 0);
}

static int t_listen_errors(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    assert_int_equal(knit_shutdown_listen(&sd, NULL), -EINVAL);
    sigset_t empty;
    sigemptyset(&empty);
    assert_int_equal(knit_shutdown_listen(&sd, &empty), -EINVAL);
    sigset_t kill9;
    sigemptyset(&kill9);
    sigaddset(&kill9, SIGKILL);
    assert_int_equal(knit_shutdown_listen(&sd, &kill9), -EINVAL);
    sigset_t set = int_term();
    assert_int_equal(knit_shutdown_listen(&sd, &set), 0);
    assert_int_equal(knit_shutdown_listen(&sd, &set), -EALREADY);
    assert_int_equal(knit_sleep(10), 0);
    assert_false(knit_shutdown_is_triggered(&sd));
    /* Never waited for: destroy stops the listener. */
    knit_shutdown_destroy(&sd);
    return 0;
}

static void shutdown_listen_refuses_bad_sets_and_a_second_call(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_listen_errors, NULL), 0);
}

/* In a child process: a process-directed SIGINT (kill), as from a
 * terminal. Returns nonzero (the child's exit status 3) on a mismatch. */
static int t_kill_child(void *arg)
{
    (void)arg;
    knit_shutdown_coord sd;
    knit_shutdown_init(&sd);
    sigset_t set = int_term();
    if (knit_shutdown_listen(&sd, &set) != 0)
        return 1;
    struct job a = {.ms = 300};
    if (knit_shutdown_spawn(&sd, job_fn, &a) != 0)
        return 2;
    if (knit_sleep(50) != 0 || kill(getpid(), SIGINT) != 0)
        return 3;
    knit_shutdown_report rep;
    int err = knit_shutdown_wait(&sd, 100, &rep);
    knit_shutdown_destroy(&sd);
    if (err != 0 || rep.signal != SIGINT || rep.started_at != 50 ||
        rep.cancelled != 1 || rep.elapsed_ms != 100 || rep.forced ||
        a.result != -ECANCELED) {
        fprintf(stderr,
                "err %d signal %d started %lld cancelled %llu "
                "elapsed %lld forced %d result %d\n",
                err, rep.signal, (long long)rep.started_at,
                (unsigned long long)rep.cancelled, (long long)rep.elapsed_ms,
                rep.forced, a.result);
        return 4;
    }
    return 0;
}

static void shutdown_process_directed_sigint_in_a_child(void **state)
{
    (void)state;
    int status;
    const char *err = kt_run_child(NULL, t_kill_child, NULL, &status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child status %#x, stderr:\n%s", status, err);
}

/* ---- misuse -------------------------------------------------------------- */

static void expect_panic(knit_fn fn, const char *msg)
{
    int status;
    const char *err = kt_run_child(NULL, fn, NULL, &status);
    kt_expect_in(err, msg);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static int t_destroy_running(void *arg)
{
    (void)arg;
    static knit_shutdown_coord sd;
    static struct job a = {.ms = 100};
    knit_shutdown_init(&sd);
    assert_int_equal(knit_shutdown_spawn(&sd, job_fn, &a), 0);
    knit_shutdown_destroy(&sd); /* misuse */
    return 0;
}

static void shutdown_destroy_with_running_tasks_panics(void **state)
{
    (void)state;
    expect_panic(t_destroy_running, "knit: knit_shutdown_destroy: tracked "
                                    "tasks are still running");
}

static int t_destroy_waited(void *arg)
{
    (void)arg;
    static knit_shutdown_coord sd;
    static struct waiter w;
    knit_shutdown_init(&sd);
    w = (struct waiter){&sd, 0, KNIT_FOREVER, {0}, -1};
    knit_task *t = knit_spawn(waiter_fn, &w);
    kt_settle();
    knit_shutdown_destroy(&sd); /* misuse */
    return knit_join(t);
}

static void shutdown_destroy_while_a_task_waits_panics(void **state)
{
    (void)state;
    expect_panic(t_destroy_waited, "knit: knit_shutdown_destroy: a task is "
                                   "in knit_shutdown_wait");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            shutdown_trigger_stops_intake_drains_and_cancels_at_the_grace),
        cmocka_unit_test(
            shutdown_returns_as_soon_as_everything_finished_in_time),
        cmocka_unit_test(shutdown_waits_for_the_cleanup_of_cancelled_tasks),
        cmocka_unit_test(
            shutdown_grace_counts_from_the_trigger_not_from_the_wait),
        cmocka_unit_test(shutdown_without_a_grace_limit_waits_for_every_task),
        cmocka_unit_test(shutdown_all_zero_with_no_task_reports_zeros_at_once),
        cmocka_unit_test(shutdown_force_skips_the_rest_of_the_grace),
        cmocka_unit_test(
            shutdown_force_alone_triggers_and_a_task_not_started_never_runs),
        cmocka_unit_test(
            shutdown_wait_cancelled_before_the_trigger_forces_and_awaits_all),
        cmocka_unit_test(
            shutdown_wait_whose_scope_expires_forces_and_returns_etimedout),
        cmocka_unit_test(
            shutdown_second_wait_is_busy_then_returns_the_same_report),
        cmocka_unit_test(
            shutdown_spawn_refuses_bad_arguments_and_closed_intake),
        cmocka_unit_test(shutdown_tracked_tasks_may_spawn_until_the_trigger),
        cmocka_unit_test(shutdown_first_signal_triggers_and_the_second_forces),
        cmocka_unit_test(shutdown_signal_before_the_listener_runs_is_kept),
        cmocka_unit_test(shutdown_listen_refuses_bad_sets_and_a_second_call),
        cmocka_unit_test(shutdown_process_directed_sigint_in_a_child),
        cmocka_unit_test(shutdown_destroy_with_running_tasks_panics),
        cmocka_unit_test(shutdown_destroy_while_a_task_waits_panics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
