// SPDX-License-Identifier: MIT
/*
 * The priority worker pool (knit/patterns/priority.h). On the manual
 * clock with exact times: strict order when everything is queued, aging
 * that lets a low job overtake a stream of urgent ones at a computed
 * moment (and starvation without aging, so the test can tell), the
 * per-level counters, backpressure and try_submit, close and drain,
 * cancel with discard, a waiting submitter cancelled or timed out, and a
 * wait whose scope deadline becomes a grace period. Misuse panics run in
 * child processes.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "kt.h"

/* Every job appends its name and start time to one log. */
struct log {
    atomic_int n; /* the pool's workers may run on several workers */
    char names[64][8];
    int64_t at[64];
};

struct job {
    struct log *log;
    const char *name;
    int64_t ms;  /* how long it runs */
    int result;  /* what it returns when its sleep succeeds */
    int slept;   /* knit_sleep's result */
    int64_t end; /* knit_now() when it returned */
};

static int job_fn(void *arg)
{
    struct job *j = arg;
    struct log *l = j->log;
    int i = l ? atomic_fetch_add(&l->n, 1) : 64;
    if (i < 64) {
        snprintf(l->names[i], sizeof(l->names[0]), "%s", j->name);
        l->at[i] = knit_now();
    }
    j->slept = knit_sleep(j->ms);
    j->end = knit_now();
    return j->slept < 0 ? j->slept : j->result;
}

/* Two jobs started at one instant by two workers: on several workers
 * they log in either order. Puts entry @i + 1 first when it is @first and
 * started at the same time as entry @i (the order one worker gives). */
static void order_same_instant(struct log *l, int i, const char *first)
{
    if (kt_workers() == 1 || i + 1 >= l->n || l->at[i] != l->at[i + 1] ||
        strcmp(l->names[i + 1], first) != 0)
        return;
    char name[sizeof(l->names[0])];
    memcpy(name, l->names[i], sizeof(name));
    memcpy(l->names[i], l->names[i + 1], sizeof(name));
    memcpy(l->names[i + 1], name, sizeof(name));
}

/* Checks the log against "name@ms name@ms ...". */
static void expect_log(const struct log *l, const char *want)
{
    char got[1024] = "";
    size_t len = 0;
    for (int i = 0; i < l->n; i++)
        len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s@%lld",
                                i ? " " : "", l->names[i], (long long)l->at[i]);
    if (strcmp(got, want) != 0)
        fail_msg("order:\n got  %s\n want %s", got, want);
}

static knit_prio_pool *new_pool(int workers, int levels, size_t capacity,
                                int64_t aging_ms)
{
    knit_prio_config cfg = {.workers = workers,
                            .levels = levels,
                            .capacity = capacity,
                            .aging_ms = aging_ms};
    knit_prio_pool *p = knit_prio_pool_new(&cfg);
    assert_non_null(p);
    return p;
}

/*
 * Holds a pool's workers in a job until gate_open(): on several workers
 * they would otherwise start the first jobs the test queues before the
 * test has queued the rest. The gate logs nothing and takes no time;
 * it counts in its level's stats.
 */
static knit_notify gate;

static int gate_fn(void *arg)
{
    (void)arg;
    return knit_notify_wait(&gate);
}

static void gate_close(knit_prio_pool *p, int level, int workers)
{
    knit_notify_init(&gate);
    for (int i = 0; i < workers; i++)
        assert_int_equal(knit_prio_pool_submit(p, level, gate_fn, NULL), 0);
    kt_settle(); /* the workers wait in the gate */
}

static void gate_open(void)
{
    knit_notify_all(&gate);
}

static knit_prio_stats stats(const knit_prio_pool *p, int level)
{
    knit_prio_stats st;
    assert_int_equal(knit_prio_pool_stats(p, level, &st), 0);
    return st;
}

/* ---- order --------------------------------------------------------------- */

struct order_case {
    int64_t aging_ms;
};

static int t_strict(void *arg)
{
    const struct order_case *c = arg;
    struct log log = {0};
    knit_prio_pool *p = new_pool(1, 3, 16, c->aging_ms);
    struct job js[] = {{&log, "a2", 10, 0, 0, 0}, {&log, "b0", 10, 0, 0, 0},
                       {&log, "c1", 10, 0, 0, 0}, {&log, "d0", 10, 0, 0, 0},
                       {&log, "e2", 10, 0, 0, 0}, {&log, "f1", 10, 0, 0, 0}};
    int levels[] = {2, 0, 1, 0, 2, 1};
    /* All queued before the worker takes one (level 0's stats are not
     * checked). */
    gate_close(p, 0, 1);
    for (int i = 0; i < 6; i++)
        assert_int_equal(knit_prio_pool_submit(p, levels[i], job_fn, &js[i]),
                         0);
    assert_int_equal(knit_prio_pool_len(p), 6);
    gate_open();
    assert_int_equal(knit_prio_pool_wait(p), 0);
    expect_log(&log, "b0@0 d0@10 c1@20 f1@30 a2@40 e2@50");
    assert_int_equal(knit_now(), 60);
    assert_int_equal(knit_prio_pool_len(p), 0);
    knit_prio_stats s2 = stats(p, 2);
    assert_int_equal(s2.submitted, 2);
    assert_int_equal(s2.started, 2);
    assert_int_equal(s2.promoted, 0);
    assert_int_equal(s2.wait_max_ms, 50);
    assert_int_equal(s2.wait_total_ms, 90);
    assert_int_equal(s2.queued, 0);
    knit_prio_pool_free(p);
    return 0;
}

static void
prio_runs_strictly_by_level_then_fifo_when_all_are_queued(void **state)
{
    (void)state;
    struct order_case strict = {0};
    assert_int_equal(kt_run(t_strict, &strict), 0);
    /* Aging slower than the whole run changes nothing. */
    struct order_case slow = {1000};
    assert_int_equal(kt_run(t_strict, &slow), 0);
}

/*
 * One worker, jobs of 30 ms. A low job (level 2) is queued at t=0 with
 * an urgent one; a feeder then queues a fresh urgent job 5 ms before each
 * pick (t=25, 55, ..., 265), so there is always urgent work.
 */
struct starve {
    int64_t aging_ms;
    knit_prio_pool *p;
    struct log log;
    struct job low;
    struct job urgent[10];
};

static int feeder(void *arg)
{
    struct starve *s = arg;
    for (int i = 1; i < 10; i++) {
        int err = knit_sleep_until(30 * i - 5);
        if (err)
            return err;
        if ((err = knit_prio_pool_submit(s->p, 0, job_fn, &s->urgent[i])) < 0)
            return err;
    }
    return 0;
}

static const char *const urgent_names[] = {"u0", "u1", "u2", "u3", "u4",
                                           "u5", "u6", "u7", "u8", "u9"};

static int t_starve(void *arg)
{
    struct starve *s = arg;
    s->p = new_pool(1, 3, 16, s->aging_ms);
    s->low = (struct job){&s->log, "low", 30, 0, 0, 0};
    for (int i = 0; i < 10; i++)
        s->urgent[i] = (struct job){&s->log, urgent_names[i], 30, 0, 0, 0};
    /* u0 first: on several workers the worker may start a job as soon as
     * it is queued, and u0 is the one it would pick of the two. */
    assert_int_equal(knit_prio_pool_submit(s->p, 0, job_fn, &s->urgent[0]), 0);
    assert_int_equal(knit_prio_pool_submit(s->p, 2, job_fn, &s->low), 0);
    knit_task *f = knit_spawn(feeder, s);
    assert_int_equal(knit_join(f), 0);
    assert_int_equal(knit_prio_pool_wait(s->p), 0);
    knit_prio_pool_free(s->p);
    return 0;
}

static void
prio_aging_lets_a_low_job_overtake_a_stream_of_urgent_ones(void **state)
{
    (void)state;
    /*
     * aging 100 ms: the low job competes as level 2 until t=100, level 1
     * until t=200, level 0 from t=200. At the pick at t=210 it ties with
     * u7 (level 0, queued at 205) and is older, so it goes first.
     */
    static struct starve s;
    memset(&s, 0, sizeof(s));
    s.aging_ms = 100;
    assert_int_equal(kt_run(t_starve, &s), 0);
    expect_log(&s.log, "u0@0 u1@30 u2@60 u3@90 u4@120 u5@150 u6@180 low@210 "
                       "u7@240 u8@270 u9@300");
}

static int t_aging_stats(void *arg)
{
    struct starve *s = arg;
    s->p = new_pool(1, 3, 16, s->aging_ms);
    s->low = (struct job){&s->log, "low", 30, 0, 0, 0};
    for (int i = 0; i < 10; i++)
        s->urgent[i] = (struct job){&s->log, urgent_names[i], 30, 0, 0, 0};
    /* u0 first: on several workers the worker may start a job as soon as
     * it is queued, and u0 is the one it would pick of the two. */
    assert_int_equal(knit_prio_pool_submit(s->p, 0, job_fn, &s->urgent[0]), 0);
    assert_int_equal(knit_prio_pool_submit(s->p, 2, job_fn, &s->low), 0);
    knit_task *f = knit_spawn(feeder, s);
    assert_int_equal(knit_join(f), 0);
    assert_int_equal(knit_prio_pool_wait(s->p), 0);
    knit_prio_stats low = stats(s->p, 2);
    knit_prio_stats urg = stats(s->p, 0);
    knit_prio_stats mid = stats(s->p, 1);
    assert_int_equal(low.submitted, 1);
    assert_int_equal(low.started, 1);
    assert_int_equal(urg.started, 10);
    assert_int_equal(urg.promoted, 0); /* level 0 cannot rise */
    assert_int_equal(mid.submitted, 0);
    if (s->aging_ms > 0) {
        assert_int_equal(low.promoted, 1);
        assert_int_equal(low.wait_max_ms, 210);
        /* u0 waited 0, u1-u6 5 ms each (queued 5 ms before their
         * pick), u7-u9 35 ms each (low went first at 210). */
        assert_int_equal(urg.wait_max_ms, 35);
        assert_int_equal(urg.wait_total_ms, 0 + 5 * 6 + 35 * 3);
    } else {
        assert_int_equal(low.promoted, 0);
        assert_int_equal(low.wait_max_ms, 300);
        assert_int_equal(urg.wait_total_ms, 0 + 5 * 9);
    }
    knit_prio_pool_free(s->p);
    return 0;
}

static void prio_stats_count_promotions_and_waits_per_level(void **state)
{
    (void)state;
    static struct starve s;
    memset(&s, 0, sizeof(s));
    s.aging_ms = 100;
    assert_int_equal(kt_run(t_aging_stats, &s), 0);
    memset(&s, 0, sizeof(s));
    s.aging_ms = 0;
    assert_int_equal(kt_run(t_aging_stats, &s), 0);
}

static void
prio_without_aging_a_stream_of_urgent_jobs_starves_a_low_one(void **state)
{
    (void)state;
    static struct starve s;
    memset(&s, 0, sizeof(s));
    s.aging_ms = 0;
    assert_int_equal(kt_run(t_starve, &s), 0);
    /* The low job runs only once the feeder has stopped. */
    expect_log(&s.log, "u0@0 u1@30 u2@60 u3@90 u4@120 u5@150 u6@180 u7@210 "
                       "u8@240 u9@270 low@300");
}

/* ---- workers and failures ------------------------------------------------ */

static int t_two_workers(void *arg)
{
    (void)arg;
    struct log log = {0};
    knit_prio_pool *p = new_pool(2, 2, 8, 0);
    struct job js[] = {{&log, "a1", 50, 0, 0, 0},
                       {&log, "b0", 30, -EIO, 0, 0},
                       {&log, "c1", 10, 7, 0, 0},
                       {&log, "d0", 40, 0, 0, 0},
                       {&log, "e1", 10, -EIO, 0, 0}};
    int levels[] = {1, 0, 1, 0, 1};
    gate_close(p, 0, 2); /* level 0's started is not checked */
    for (int i = 0; i < 5; i++)
        assert_int_equal(knit_prio_pool_submit(p, levels[i], job_fn, &js[i]),
                         0);
    gate_open();
    assert_int_equal(knit_prio_pool_wait(p), 0);
    /* Two at a time: b0 and d0 first, then the level-1 jobs as the
     * workers come free (b0 ends at 30, d0 at 40, c1 at 40). */
    order_same_instant(&log, 0, "b0");
    expect_log(&log, "b0@0 d0@0 a1@30 c1@40 e1@50");
    assert_int_equal(knit_now(), 80);
    assert_int_equal(stats(p, 0).failed, 1);
    assert_int_equal(stats(p, 1).failed, 1);
    assert_int_equal(stats(p, 1).started, 3);
    knit_prio_pool_free(p);
    return 0;
}

static void prio_workers_run_in_parallel_and_failures_are_counted(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_two_workers, NULL), 0);
}

/* ---- backpressure -------------------------------------------------------- */

struct submitter {
    knit_prio_pool *p;
    int level;
    struct job *job;
    int64_t deadline; /* of a scope around the submit */
    int result;
    int64_t returned_at;
};

static int submit_fn(void *arg)
{
    struct submitter *s = arg;
    knit_scope sc;
    knit_scope_enter(&sc, s->deadline);
    s->result = knit_prio_pool_submit(s->p, s->level, job_fn, s->job);
    knit_scope_exit(&sc);
    s->returned_at = knit_now();
    return 0;
}

static int t_backpressure(void *arg)
{
    (void)arg;
    struct log log = {0};
    knit_prio_pool *p = new_pool(1, 2, 2, 0);
    struct job js[5];
    const char *names[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++)
        js[i] = (struct job){&log, names[i], 100, 0, 0, 0};
    gate_close(p, 1, 1); /* level 1's submitted is not checked */
    assert_int_equal(knit_prio_pool_submit(p, 1, job_fn, &js[0]), 0);
    assert_int_equal(knit_prio_pool_submit(p, 1, job_fn, &js[1]), 0);
    /* Full: try_submit refuses, submit waits. */
    assert_int_equal(knit_prio_pool_try_submit(p, 0, job_fn, &js[2]), -EAGAIN);
    assert_int_equal(knit_prio_pool_len(p), 2);
    gate_open();
    /* The worker takes a at t=0, freeing a slot: c gets in at once. */
    assert_int_equal(knit_prio_pool_submit(p, 1, job_fn, &js[2]), 0);
    assert_int_equal(knit_now(), 0);
    /* Then the queue holds b and c until b is taken at t=100. */
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &js[3]), 0);
    assert_int_equal(knit_now(), 100);
    assert_int_equal(knit_prio_pool_try_submit(p, 0, job_fn, &js[4]), -EAGAIN);
    assert_int_equal(knit_prio_pool_wait(p), 0);
    /* d (level 0) passed c once it was queued. */
    expect_log(&log, "a@0 b@100 d@200 c@300");
    assert_int_equal(stats(p, 1).wait_max_ms, 300);
    assert_int_equal(stats(p, 0).submitted, 1);
    knit_prio_pool_free(p);
    return 0;
}

static void
prio_submit_waits_while_full_and_try_submit_says_eagain(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_backpressure, NULL), 0);
}

static int t_submit_cancel(void *arg)
{
    (void)arg;
    struct log log = {0};
    knit_prio_pool *p = new_pool(1, 2, 1, 0);
    struct job a = {&log, "a", 100, 0, 0, 0};
    struct job b = {&log, "b", 100, 0, 0, 0};
    struct job x = {&log, "x", 100, 0, 0, 0};
    struct job y = {&log, "y", 100, 0, 0, 0};
    struct job c = {&log, "c", 100, 0, 0, 0};
    assert_int_equal(knit_prio_pool_submit(p, 1, job_fn, &a), 0);
    kt_settle(); /* the worker takes a */
    assert_int_equal(knit_prio_pool_submit(p, 1, job_fn, &b), 0);
    /* Full. x is cancelled while waiting, y times out, c is behind them. */
    struct submitter sx = {p, 0, &x, KNIT_FOREVER, 1, -1};
    struct submitter sy = {p, 0, &y, 50, 1, -1};
    struct submitter sc = {p, 1, &c, KNIT_FOREVER, 1, -1};
    knit_task *tx = knit_spawn(submit_fn, &sx);
    knit_task *ty = knit_spawn(submit_fn, &sy);
    knit_task *tc = knit_spawn(submit_fn, &sc);
    assert_int_equal(knit_sleep(10), 0);
    knit_cancel(tx);
    assert_int_equal(knit_join(tx), 0);
    assert_int_equal(sx.result, -ECANCELED);
    assert_int_equal(sx.returned_at, 10);
    assert_int_equal(knit_join(ty), 0);
    assert_int_equal(sy.result, -ETIMEDOUT);
    assert_int_equal(sy.returned_at, 50);
    /* Neither left a trace: c gets the slot b frees at t=100. */
    assert_int_equal(knit_join(tc), 0);
    assert_int_equal(sc.result, 0);
    assert_int_equal(sc.returned_at, 100);
    assert_int_equal(knit_prio_pool_wait(p), 0);
    expect_log(&log, "a@0 b@100 c@200");
    assert_int_equal(stats(p, 0).submitted, 0);
    assert_int_equal(stats(p, 1).submitted, 3);
    knit_prio_pool_free(p);
    return 0;
}

static void prio_cancelled_or_timed_out_submitter_queues_nothing(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_submit_cancel, NULL), 0);
}

static int t_submit_fired(void *arg)
{
    (void)arg;
    knit_prio_pool *p = new_pool(1, 1, 4, 0);
    struct job a = {NULL, "a", 10, 0, 0, 0};
    /* A fired scope fails the submit even with room in the queue. */
    knit_scope sc;
    knit_scope_enter(&sc, knit_now());
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &a), -ETIMEDOUT);
    knit_scope_exit(&sc);
    assert_int_equal(knit_prio_pool_len(p), 0);
    assert_int_equal(knit_prio_pool_wait(p), 0);
    assert_int_equal(stats(p, 0).submitted, 0);
    knit_prio_pool_free(p);
    return 0;
}

static void prio_submit_in_a_fired_scope_queues_nothing(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_submit_fired, NULL), 0);
}

/* ---- close, cancel, wait ------------------------------------------------- */

static int t_close(void *arg)
{
    (void)arg;
    struct log log = {0};
    knit_prio_pool *p = new_pool(1, 2, 2, 0);
    struct job a = {&log, "a", 100, 0, 0, 0};
    struct job b = {&log, "b", 100, 0, 0, 0};
    struct job c = {&log, "c", 100, 0, 0, 0};
    struct job d = {&log, "d", 100, 0, 0, 0};
    assert_int_equal(knit_prio_pool_submit(p, 1, job_fn, &a), 0);
    kt_settle(); /* the worker takes a */
    assert_int_equal(knit_prio_pool_submit(p, 1, job_fn, &b), 0);
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &c), 0);
    /* Full: d waits, and the close turns it away. */
    struct submitter sd = {p, 0, &d, KNIT_FOREVER, 1, -1};
    knit_task *td = knit_spawn(submit_fn, &sd);
    assert_int_equal(knit_sleep(20), 0);
    knit_prio_pool_close(p);
    knit_prio_pool_close(p); /* idempotent */
    assert_int_equal(knit_join(td), 0);
    assert_int_equal(sd.result, -EPIPE);
    assert_int_equal(sd.returned_at, 20);
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &d), -EPIPE);
    assert_int_equal(knit_prio_pool_try_submit(p, 0, job_fn, &d), -EPIPE);
    /* The queued jobs still run, in order. */
    assert_int_equal(knit_prio_pool_wait(p), 0);
    expect_log(&log, "a@0 c@100 b@200");
    assert_int_equal(knit_now(), 300);
    assert_int_equal(stats(p, 0).submitted, 1);
    knit_prio_pool_free(p);
    return 0;
}

static void prio_close_turns_submitters_away_and_drains_the_queue(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_close, NULL), 0);
}

/* A job that closes its own pool: the submitter it lets in (by freeing a
 * slot) must still be turned away, since it runs after the close. */
struct closer {
    knit_prio_pool *p;
};

static int closer_fn(void *arg)
{
    struct closer *c = arg;
    knit_prio_pool_close(c->p);
    return 0;
}

static int t_close_race(void *arg)
{
    (void)arg;
    /* One worker only: on several, the woken submitter runs at once, and
     * may queue b before closer_fn closes (b then runs: no job is lost). */
    if (kt_workers() > 1)
        return 0;
    knit_prio_pool *p = new_pool(1, 1, 1, 0);
    struct closer cl = {p};
    struct job b = {NULL, "b", 10, 0, 0, 0};
    assert_int_equal(knit_prio_pool_submit(p, 0, closer_fn, &cl), 0);
    /* Full: this submit waits until the worker takes closer_fn, which
     * frees the slot (waking us) and then closes the pool. */
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &b), -EPIPE);
    assert_int_equal(knit_prio_pool_wait(p), 0);
    assert_int_equal(b.end, 0);
    assert_int_equal(stats(p, 0).submitted, 1);
    assert_int_equal(stats(p, 0).started, 1);
    knit_prio_pool_free(p);
    return 0;
}

static void prio_submit_woken_just_before_a_close_is_turned_away(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_close_race, NULL), 0);
}

static int discarded;
static void *discarded_args[8];

static void discard(void *arg)
{
    discarded_args[discarded++] = arg;
}

static int t_grace(void *arg)
{
    (void)arg;
    struct log log = {0};
    discarded = 0;
    knit_prio_config cfg = {.workers = 1,
                            .levels = 2,
                            .capacity = 8,
                            .discard = discard,
                            .name = "grace-worker"};
    knit_prio_pool *p = knit_prio_pool_new(&cfg);
    assert_non_null(p);
    struct job a = {&log, "a", 100, 0, 0, 0};
    struct job b = {&log, "b", 100, 0, 0, 0};
    struct job c = {&log, "c", 100, 0, 0, 0};
    struct job d = {&log, "d", 100, 0, 0, 0};
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &a), 0);
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &b), 0);
    assert_int_equal(knit_prio_pool_submit(p, 1, job_fn, &c), 0);
    assert_int_equal(knit_prio_pool_submit(p, 1, job_fn, &d), 0);
    /* 150 ms of grace: a runs, b is cut at 150, c and d are dropped. */
    knit_scope sc;
    knit_scope_enter(&sc, 150);
    assert_int_equal(knit_prio_pool_wait(p), -ETIMEDOUT);
    knit_scope_exit(&sc);
    assert_int_equal(knit_now(), 150);
    expect_log(&log, "a@0 b@100");
    assert_int_equal(a.slept, 0);
    assert_int_equal(b.slept, -ECANCELED);
    assert_int_equal(b.end, 150);
    assert_int_equal(discarded, 2);
    assert_ptr_equal(discarded_args[0], &c);
    assert_ptr_equal(discarded_args[1], &d);
    knit_prio_stats s0 = stats(p, 0);
    knit_prio_stats s1 = stats(p, 1);
    assert_int_equal(s0.started, 2);
    assert_int_equal(s0.failed, 1); /* b returned -ECANCELED */
    assert_int_equal(s1.dropped, 2);
    assert_int_equal(s1.started, 0);
    assert_int_equal(s1.queued, 0);
    assert_int_equal(knit_prio_pool_len(p), 0);
    /* Later waits return at once. */
    assert_int_equal(knit_prio_pool_wait(p), 0);
    knit_prio_pool_free(p);
    return 0;
}

static void prio_wait_whose_scope_expires_cancels_and_discards(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_grace, NULL), 0);
}

static int t_cancel(void *arg)
{
    (void)arg;
    struct log log = {0};
    knit_prio_pool *p = new_pool(2, 1, 8, 0);
    struct job a = {&log, "a", 100, 0, 0, 0};
    struct job b = {&log, "b", 100, 0, 0, 0};
    struct job c = {&log, "c", 100, 0, 0, 0};
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &a), 0);
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &b), 0);
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &c), 0);
    assert_int_equal(knit_sleep(30), 0);
    knit_prio_pool_cancel(p); /* no discard callback: just dropped */
    knit_prio_pool_cancel(p); /* idempotent */
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &c), -EPIPE);
    assert_int_equal(knit_prio_pool_wait(p), 0);
    assert_int_equal(knit_now(), 30);
    order_same_instant(&log, 0, "a");
    expect_log(&log, "a@0 b@0");
    assert_int_equal(a.slept, -ECANCELED);
    assert_int_equal(b.slept, -ECANCELED);
    assert_int_equal(c.end, 0);
    assert_int_equal(stats(p, 0).dropped, 1);
    assert_int_equal(stats(p, 0).failed, 2);
    knit_prio_pool_free(p);
    return 0;
}

static void prio_cancel_drops_the_queue_and_cancels_running_jobs(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel, NULL), 0);
}

static int t_cancel_early(void *arg)
{
    (void)arg;
    /* Cancelled before its workers ever ran: they still start and end. */
    knit_prio_pool *p = new_pool(3, 1, 4, 0);
    struct job a = {NULL, "a", 100, 0, 0, 0};
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &a), 0);
    knit_prio_pool_cancel(p);
    assert_int_equal(knit_prio_pool_wait(p), 0);
    assert_int_equal(knit_now(), 0);
    knit_prio_stats st = stats(p, 0);
    if (kt_workers() == 1) {
        assert_int_equal(st.dropped, 1);
    } else {
        /* On several workers a pool worker may be stolen, start and take
         * a before the cancel: then a runs in the cancelled scope and
         * fails at once. Either way it is counted exactly once. */
        assert_int_equal(st.dropped + st.started, 1);
        if (st.started == 1) {
            assert_int_equal(a.slept, -ECANCELED);
            assert_int_equal(st.failed, 1);
        }
    }
    knit_prio_pool_free(p);
    return 0;
}

static void prio_cancel_before_the_workers_start_still_ends_them(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel_early, NULL), 0);
}

static int waiter_fn(void *arg)
{
    return knit_prio_pool_wait(arg);
}

static int t_wait_busy(void *arg)
{
    (void)arg;
    knit_prio_pool *p = new_pool(1, 1, 4, 0);
    struct job a = {NULL, "a", 50, 0, 0, 0};
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &a), 0);
    knit_task *t = knit_spawn(waiter_fn, p);
    kt_settle();
    assert_int_equal(knit_prio_pool_wait(p), -EBUSY);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(knit_now(), 50);
    assert_int_equal(knit_prio_pool_wait(p), 0);
    knit_prio_pool_free(p);
    return 0;
}

static void prio_second_concurrent_wait_is_busy(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_wait_busy, NULL), 0);
}

static int t_wait_cancelled(void *arg)
{
    (void)arg;
    knit_prio_pool *p = new_pool(1, 1, 4, 0);
    struct job a = {NULL, "a", 500, 0, 0, 0};
    struct job b = {NULL, "b", 500, 0, 0, 0};
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &a), 0);
    assert_int_equal(knit_prio_pool_submit(p, 0, job_fn, &b), 0);
    knit_task *t = knit_spawn(waiter_fn, p);
    assert_int_equal(knit_sleep(40), 0);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(knit_now(), 40);
    assert_int_equal(a.slept, -ECANCELED);
    assert_int_equal(a.end, 40);
    assert_int_equal(stats(p, 0).dropped, 1);
    knit_prio_pool_free(p);
    return 0;
}

static void
prio_wait_cancelled_cancels_the_pool_and_awaits_the_workers(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_wait_cancelled, NULL), 0);
}

/* ---- arguments ----------------------------------------------------------- */

static int t_bad(void *arg)
{
    (void)arg;
    assert_null(knit_prio_pool_new(NULL));
    knit_prio_config ok = {.workers = 1, .levels = 2, .capacity = 1};
    knit_prio_config c = ok;
    c.workers = 0;
    assert_null(knit_prio_pool_new(&c));
    c = ok;
    c.workers = 4097;
    assert_null(knit_prio_pool_new(&c));
    c = ok;
    c.levels = 0;
    assert_null(knit_prio_pool_new(&c));
    c = ok;
    c.levels = KNIT_PRIO_MAX_LEVELS + 1;
    assert_null(knit_prio_pool_new(&c));
    c = ok;
    c.capacity = 0;
    assert_null(knit_prio_pool_new(&c));

    knit_prio_pool *p = knit_prio_pool_new(&ok);
    assert_non_null(p);
    struct job a = {NULL, "a", 1, 0, 0, 0};
    assert_int_equal(knit_prio_pool_submit(p, -1, job_fn, &a), -EINVAL);
    assert_int_equal(knit_prio_pool_submit(p, 2, job_fn, &a), -EINVAL);
    assert_int_equal(knit_prio_pool_submit(p, 0, NULL, &a), -EINVAL);
    assert_int_equal(knit_prio_pool_try_submit(p, 2, job_fn, &a), -EINVAL);
    assert_int_equal(knit_prio_pool_try_submit(p, 0, NULL, &a), -EINVAL);
    knit_prio_stats st;
    assert_int_equal(knit_prio_pool_stats(p, 2, &st), -EINVAL);
    assert_int_equal(knit_prio_pool_stats(p, -1, &st), -EINVAL);
    assert_int_equal(knit_prio_pool_try_submit(p, 1, job_fn, &a), 0);
    assert_int_equal(knit_prio_pool_wait(p), 0);
    assert_int_equal(a.end, 1);
    knit_prio_pool_free(p);
    knit_prio_pool_free(NULL);
    return 0;
}

static void prio_refuses_bad_configs_levels_and_jobs(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bad, NULL), 0);
}

/* ---- misuse -------------------------------------------------------------- */

static int t_free_early(void *arg)
{
    (void)arg;
    knit_prio_config cfg = {.workers = 1, .levels = 1, .capacity = 1};
    knit_prio_pool *p = knit_prio_pool_new(&cfg);
    assert_non_null(p);
    knit_prio_pool_free(p); /* misuse: workers not awaited */
    return 0;
}

static void prio_free_before_wait_panics(void **state)
{
    (void)state;
    int status;
    const char *err = kt_run_child(NULL, t_free_early, NULL, &status);
    kt_expect_in(err, "knit: knit_prio_pool_free: the workers have not been "
                      "awaited");
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            prio_runs_strictly_by_level_then_fifo_when_all_are_queued),
        cmocka_unit_test(
            prio_aging_lets_a_low_job_overtake_a_stream_of_urgent_ones),
        cmocka_unit_test(
            prio_without_aging_a_stream_of_urgent_jobs_starves_a_low_one),
        cmocka_unit_test(prio_stats_count_promotions_and_waits_per_level),
        cmocka_unit_test(prio_workers_run_in_parallel_and_failures_are_counted),
        cmocka_unit_test(
            prio_submit_waits_while_full_and_try_submit_says_eagain),
        cmocka_unit_test(prio_cancelled_or_timed_out_submitter_queues_nothing),
        cmocka_unit_test(prio_submit_in_a_fired_scope_queues_nothing),
        cmocka_unit_test(prio_close_turns_submitters_away_and_drains_the_queue),
        cmocka_unit_test(prio_submit_woken_just_before_a_close_is_turned_away),
        cmocka_unit_test(prio_wait_whose_scope_expires_cancels_and_discards),
        cmocka_unit_test(prio_cancel_drops_the_queue_and_cancels_running_jobs),
        cmocka_unit_test(prio_cancel_before_the_workers_start_still_ends_them),
        cmocka_unit_test(prio_second_concurrent_wait_is_busy),
        cmocka_unit_test(
            prio_wait_cancelled_cancels_the_pool_and_awaits_the_workers),
        cmocka_unit_test(prio_refuses_bad_configs_levels_and_jobs),
        cmocka_unit_test(prio_free_before_wait_panics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
