// SPDX-License-Identifier: MIT
/*
 * Supervisors (knit/patterns/supervisor.h), issue 6 part 6. Children are
 * scripted: each incarnation runs for a given time and returns a given
 * result, or runs until it is cancelled (and may take a while to clean
 * up). Every supervisor event is logged as "time kind child value", and
 * the tests compare the whole log, so they check which children were
 * restarted, in which order, and at which exact time on the manual clock.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kt.h"

/* ---- scripted children and the event log -------------------------------- */

#define FOREVER (-1) /* a run that lasts until the child is cancelled */

struct run {
    int64_t ms; /* how long it runs; FOREVER: until cancelled */
    int result; /* what it returns when it was not cancelled */
};

struct kid {
    struct run runs[8]; /* one per incarnation; the last one repeats */
    int nruns;
    int64_t cleanup_ms; /* when cancelled: shielded cleanup, then return */
    int started;        /* incarnations started */
};

#define LOG_LINES 64
static char logbuf[LOG_LINES][64];
static atomic_int nlog; /* supervisors may log from several workers */

static void logf_(const char *fmt, ...)
{
    int i = atomic_fetch_add(&nlog, 1);
    assert_true(i < LOG_LINES);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(logbuf[i], sizeof(logbuf[0]), fmt, ap);
    va_end(ap);
}

static int kid_main(void *arg)
{
    struct kid *k = arg;
    struct run r = k->runs[k->started < k->nruns ? k->started : k->nruns - 1];
    k->started++;
    int err =
        r.ms == FOREVER ? knit_sleep_until(KNIT_FOREVER) : knit_sleep(r.ms);
    if (err < 0) {
        if (k->cleanup_ms > 0) {
            knit_scope shield;
            knit_scope_enter_shielded(&shield, KNIT_FOREVER);
            knit_sleep(k->cleanup_ms);
            knit_scope_exit(&shield);
        }
        return err;
    }
    return r.result;
}

static void on_event(const knit_supervisor_event *ev, void *arg)
{
    (void)arg;
    int v = ev->kind == KNIT_SUP_RESTARTING ? (int)ev->delay_ms
            : ev->kind == KNIT_SUP_STARTED  ? ev->restarts
                                            : ev->result;
    logf_("%lld %s %s %d", (long long)knit_now(), knit_sup_event_name(ev->kind),
          ev->name[0] ? ev->name : "-", v);
    if (ev->kind == KNIT_SUP_GAVE_UP)
        logf_("  in window %d", ev->restarts);
    if (ev->child >= 0)
        assert_string_equal(ev->name, ev->name); /* valid during the call */
}

/* Two children that end at one instant: one worker's timers order them,
 * several workers do not. On several, puts line @i + 1 first when it is
 * @first (the order one worker gives), so the log can be compared. */
static void order_same_instant(int i, const char *first)
{
    if (kt_workers() == 1 || i + 1 >= nlog || strcmp(logbuf[i + 1], first) != 0)
        return;
    char tmp[sizeof(logbuf[0])];
    memcpy(tmp, logbuf[i], sizeof(tmp));
    memcpy(logbuf[i], logbuf[i + 1], sizeof(tmp));
    memcpy(logbuf[i + 1], tmp, sizeof(tmp));
}

static void expect_log(int n, const char *const *want)
{
    for (int i = 0; i < n && i < nlog; i++)
        if (strcmp(logbuf[i], want[i]) != 0) {
            for (int j = 0; j < nlog; j++)
                print_message("  log %2d: %s\n", j, logbuf[j]);
            fail_msg("log line %d: \"%s\", want \"%s\"", i, logbuf[i], want[i]);
        }
    if (nlog != n) {
        for (int j = 0; j < nlog; j++)
            print_message("  log %2d: %s\n", j, logbuf[j]);
        fail_msg("log has %d lines, want %d", nlog, n);
    }
    nlog = 0;
}

#define EXPECT_LOG(...)                                                        \
    do {                                                                       \
        static const char *const want_[] = {__VA_ARGS__};                      \
        expect_log((int)(sizeof(want_) / sizeof(want_[0])), want_);            \
    } while (0)

/* A supervisor run inside a scope with a deadline (KNIT_FOREVER: none). */
struct sup_call {
    knit_supervisor_opts o;
    knit_child_spec *specs;
    int n;
    int64_t deadline;
    knit_supervisor_report rep;
    int result;
    int64_t ended_at;
};

static int sup_main(void *arg)
{
    struct sup_call *c = arg;
    knit_scope s;
    knit_scope_enter(&s, c->deadline);
    c->o.on_event = on_event;
    c->result = knit_supervisor_run(&c->o, c->specs, c->n, &c->rep);
    knit_scope_exit(&s);
    c->ended_at = knit_now();
    return c->result;
}

static knit_child_spec spec(const char *name, struct kid *k,
                            knit_child_restart restart)
{
    return (knit_child_spec){
        .name = name, .start = kid_main, .arg = k, .restart = restart};
}

/* ---- strategies ------------------------------------------------------------
 */

static int t_one_for_one(void *arg)
{
    (void)arg;
    nlog = 0;
    struct kid a = {{{FOREVER, 0}}, 1, 0, 0};
    struct kid b = {{{10, -EIO}, {FOREVER, 0}}, 2, 0, 0};
    struct kid c = {{{FOREVER, 0}}, 1, 0, 0};
    knit_child_spec specs[] = {spec("a", &a, KNIT_CHILD_PERMANENT),
                               spec("b", &b, KNIT_CHILD_PERMANENT),
                               spec("c", &c, KNIT_CHILD_PERMANENT)};
    struct sup_call call = {.o = {.strategy = KNIT_SUP_ONE_FOR_ONE},
                            .specs = specs,
                            .n = 3,
                            .deadline = 50};
    assert_int_equal(sup_main(&call), -ETIMEDOUT);
    EXPECT_LOG("0 started a 0", "0 started b 0", "0 started c 0",
               "10 exited b -5", "10 restarting b 0", "10 started b 1",
               "50 shutdown - -110", "50 stopped c -125", "50 stopped b -125",
               "50 stopped a -125");
    assert_int_equal(call.rep.child, -1);
    assert_int_equal(call.rep.error, 0);
    assert_int_equal(call.rep.restarts, 1);
    assert_int_equal(a.started + b.started + c.started, 4);
    return 0;
}

static void supervisor_one_for_one_restarts_only_the_failed_child(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_one_for_one, NULL), 0);
}

static int t_one_for_all(void *arg)
{
    (void)arg;
    nlog = 0;
    struct kid a = {{{FOREVER, 0}}, 1, 0, 0};
    struct kid b = {{{10, -EIO}, {FOREVER, 0}}, 2, 0, 0};
    struct kid c = {{{FOREVER, 0}}, 1, 0, 0};
    struct kid d = {{{FOREVER, 0}}, 1, 0, 0};
    knit_child_spec specs[] = {spec("a", &a, KNIT_CHILD_PERMANENT),
                               spec("b", &b, KNIT_CHILD_PERMANENT),
                               spec("c", &c, KNIT_CHILD_TRANSIENT),
                               spec("d", &d, KNIT_CHILD_TEMPORARY)};
    struct sup_call call = {.o = {.strategy = KNIT_SUP_ONE_FOR_ALL},
                            .specs = specs,
                            .n = 4,
                            .deadline = 50};
    assert_int_equal(sup_main(&call), -ETIMEDOUT);
    /* The others stop last-started first; all restart in start order,
     * except the temporary one, which is not restarted (OTP). */
    EXPECT_LOG("0 started a 0", "0 started b 0", "0 started c 0",
               "0 started d 0", "10 exited b -5", "10 stopped d -125",
               "10 stopped c -125", "10 stopped a -125", "10 restarting a 0",
               "10 restarting b 0", "10 restarting c 0", "10 started a 1",
               "10 started b 1", "10 started c 1", "50 shutdown - -110",
               "50 stopped c -125", "50 stopped b -125", "50 stopped a -125");
    assert_int_equal(call.rep.restarts, 1);
    assert_int_equal(d.started, 1);
    return 0;
}

static void
supervisor_one_for_all_restarts_every_child_in_start_order(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_one_for_all, NULL), 0);
}

static int t_rest_for_one(void *arg)
{
    (void)arg;
    nlog = 0;
    struct kid a = {{{FOREVER, 0}}, 1, 0, 0};
    struct kid b = {{{10, -EIO}, {FOREVER, 0}}, 2, 0, 0};
    struct kid c = {{{FOREVER, 0}}, 1, 0, 0};
    struct kid d = {{{FOREVER, 0}}, 1, 0, 0};
    knit_child_spec specs[] = {spec("a", &a, KNIT_CHILD_PERMANENT),
                               spec("b", &b, KNIT_CHILD_PERMANENT),
                               spec("c", &c, KNIT_CHILD_PERMANENT),
                               spec("d", &d, KNIT_CHILD_PERMANENT)};
    struct sup_call call = {.o = {.strategy = KNIT_SUP_REST_FOR_ONE},
                            .specs = specs,
                            .n = 4,
                            .deadline = 50};
    assert_int_equal(sup_main(&call), -ETIMEDOUT);
    EXPECT_LOG("0 started a 0", "0 started b 0", "0 started c 0",
               "0 started d 0", "10 exited b -5", "10 stopped d -125",
               "10 stopped c -125", "10 restarting b 0", "10 restarting c 0",
               "10 restarting d 0", "10 started b 1", "10 started c 1",
               "10 started d 1", "50 shutdown - -110", "50 stopped d -125",
               "50 stopped c -125", "50 stopped b -125", "50 stopped a -125");
    assert_int_equal(a.started, 1);
    return 0;
}

static void
supervisor_rest_for_one_restarts_the_child_and_those_after_it(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_rest_for_one, NULL), 0);
}

static int t_sibling_ended_too(void *arg)
{
    (void)arg;
    /* One worker only: which of two ends at the same instant comes first
     * is one worker's timer order; across workers there is none. */
    if (kt_workers() > 1)
        return 0;
    nlog = 0;
    /* a and b fail at the same instant. a's end is handled first; b has
     * already returned when a's restart comes to stop it: it is logged
     * as exited (its own result) and restarts with the set, counted
     * once. A transient sibling that had succeeded stays ended. */
    struct kid a = {{{10, -EIO}, {FOREVER, 0}}, 2, 0, 0};
    struct kid b = {{{10, -ENOSPC}, {FOREVER, 0}}, 2, 0, 0};
    struct kid c = {{{10, 0}}, 1, 0, 0};
    knit_child_spec specs[] = {spec("a", &a, KNIT_CHILD_PERMANENT),
                               spec("b", &b, KNIT_CHILD_PERMANENT),
                               spec("c", &c, KNIT_CHILD_TRANSIENT)};
    struct sup_call call = {.o = {.strategy = KNIT_SUP_ONE_FOR_ALL},
                            .specs = specs,
                            .n = 3,
                            .deadline = 50};
    assert_int_equal(sup_main(&call), -ETIMEDOUT);
    EXPECT_LOG("0 started a 0", "0 started b 0", "0 started c 0",
               "10 exited a -5", "10 exited c 0", "10 exited b -28",
               "10 restarting a 0", "10 restarting b 0", "10 started a 1",
               "10 started b 1", "50 shutdown - -110", "50 stopped b -125",
               "50 stopped a -125");
    assert_int_equal(call.rep.restarts, 1);
    return 0;
}

static void supervisor_sibling_that_ended_on_its_own_restarts_once_with_the_set(
    void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_sibling_ended_too, NULL), 0);
}

/* ---- restart types ---------------------------------------------------------
 */

static int t_restart_types(void *arg)
{
    (void)arg;
    nlog = 0;
    struct kid t1 = {{{10, -EIO}, {10, 0}}, 2, 0, 0};
    struct kid t2 = {{{20, 7}}, 1, 0, 0};
    struct kid x = {{{5, -EIO}}, 1, 0, 0};
    knit_child_spec specs[] = {spec("t1", &t1, KNIT_CHILD_TRANSIENT),
                               spec("t2", &t2, KNIT_CHILD_TRANSIENT),
                               spec("x", &x, KNIT_CHILD_TEMPORARY)};
    struct sup_call call = {.specs = specs, .n = 3, .deadline = KNIT_FOREVER};
    /* A transient child restarts after a failure only; a temporary one
     * never; when nothing is left to run, the supervisor returns 0. */
    assert_int_equal(sup_main(&call), 0);
    assert_int_equal(call.ended_at, 20);
    order_same_instant(7, "20 exited t2 7");
    EXPECT_LOG("0 started t1 0", "0 started t2 0", "0 started x 0",
               "5 exited x -5", "10 exited t1 -5", "10 restarting t1 0",
               "10 started t1 1", "20 exited t2 7", "20 exited t1 0");
    assert_int_equal(call.rep.child, -1);
    assert_int_equal(call.rep.restarts, 1);

    /* A permanent child restarts even after a success. */
    struct kid p = {{{10, 0}}, 1, 0, 0};
    knit_child_spec ps[] = {spec("p", &p, KNIT_CHILD_PERMANENT)};
    struct sup_call pc = {
        .o = {.max_restarts = 2}, .specs = ps, .n = 1, .deadline = 45};
    assert_int_equal(sup_main(&pc), -ETIMEDOUT);
    EXPECT_LOG("20 started p 0", "30 exited p 0", "30 restarting p 0",
               "30 started p 1", "40 exited p 0", "40 restarting p 0",
               "40 started p 2", "45 shutdown - -110", "45 stopped p -125");
    return 0;
}

static void supervisor_restart_types_permanent_transient_temporary(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_restart_types, NULL), 0);
}

/* ---- intensity -------------------------------------------------------------
 */

static int t_intensity(void *arg)
{
    (void)arg;
    nlog = 0;
    /* At most 2 restarts within 100 ms. Failures at 10 and 20 restart;
     * the third incarnation holds until 110, when the restart at 10 is
     * exactly 100 ms old: it has left the window, so this is only the
     * second restart in it. At 120 the one at 20 has left too. The
     * failure at 130 would be the third restart since 30 (at 110 and
     * 120 before it): the supervisor gives up and stops the rest. */
    struct kid w = {{{10, -EIO}, {10, -EIO}, {90, -EIO}, {10, -EIO}}, 4, 0, 0};
    struct kid other = {{{FOREVER, 0}}, 1, 0, 0};
    knit_child_spec specs[] = {spec("other", &other, KNIT_CHILD_PERMANENT),
                               spec("w", &w, KNIT_CHILD_PERMANENT)};
    struct sup_call call = {.o = {.max_restarts = 2, .window_ms = 100},
                            .specs = specs,
                            .n = 2,
                            .deadline = KNIT_FOREVER};
    assert_int_equal(sup_main(&call), -ELOOP);
    assert_int_equal(call.ended_at, 130);
    EXPECT_LOG("0 started other 0", "0 started w 0", "10 exited w -5",
               "10 restarting w 0", "10 started w 1", "20 exited w -5",
               "20 restarting w 0", "20 started w 2", "110 exited w -5",
               "110 restarting w 0", "110 started w 3", "120 exited w -5",
               "120 restarting w 0", "120 started w 4", "130 exited w -5",
               "130 gave up w -5", "  in window 2", "130 shutdown - -40",
               "130 stopped other -125");
    assert_int_equal(call.rep.child, 1);
    assert_int_equal(call.rep.error, -EIO);
    assert_int_equal(call.rep.restarts, 4);

    /* The same failures 10 ms apart: the third restart gives up. */
    struct kid fast = {{{10, -EIO}}, 1, 0, 0};
    knit_child_spec fs[] = {spec("fast", &fast, KNIT_CHILD_PERMANENT)};
    struct sup_call fc = {.o = {.max_restarts = 2, .window_ms = 100},
                          .specs = fs,
                          .n = 1,
                          .deadline = KNIT_FOREVER};
    assert_int_equal(sup_main(&fc), -ELOOP);
    assert_int_equal(fc.ended_at, 160);
    assert_int_equal(fast.started, 3);
    assert_int_equal(fc.rep.child, 0);
    assert_int_equal(fc.rep.restarts, 2);
    nlog = 0;

    /* max_restarts < 0: no restart at all. */
    struct kid once = {{{0, -EIO}}, 1, 0, 0};
    knit_child_spec os[] = {spec("once", &once, KNIT_CHILD_TRANSIENT)};
    struct sup_call oc = {.o = {.max_restarts = -1},
                          .specs = os,
                          .n = 1,
                          .deadline = KNIT_FOREVER};
    assert_int_equal(sup_main(&oc), -ELOOP);
    EXPECT_LOG("160 started once 0", "160 exited once -5",
               "160 gave up once -5", "  in window 0", "160 shutdown - -40");
    assert_int_equal(oc.rep.restarts, 0);
    return 0;
}

static void
supervisor_intensity_counts_only_restarts_inside_the_window(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_intensity, NULL), 0);
}

static int t_defaults(void *arg)
{
    (void)arg;
    /* NULL options: one-for-one, 3 restarts in 5 s, no delay, no events.
     * The fourth failure in a row gives up. */
    struct kid k = {{{0, -EIO}}, 1, 0, 0};
    knit_child_spec s = spec("k", &k, KNIT_CHILD_PERMANENT);
    knit_supervisor_report rep = {7, 7, 7};
    assert_int_equal(knit_supervisor_run(NULL, &s, 1, &rep), -ELOOP);
    assert_int_equal(k.started, 4);
    assert_int_equal(rep.child, 0);
    assert_int_equal(rep.error, -EIO);
    assert_int_equal(rep.restarts, 3);
    assert_int_equal(knit_now(), 0);

    /* A NULL report is fine; a spec without a name too. */
    struct kid ok = {{{5, 0}}, 1, 0, 0};
    knit_child_spec anon = {
        .start = kid_main, .arg = &ok, .restart = KNIT_CHILD_TRANSIENT};
    assert_int_equal(knit_supervisor_run(NULL, &anon, 1, NULL), 0);
    assert_int_equal(knit_now(), 5);
    return 0;
}

static void
supervisor_defaults_allow_three_restarts_in_five_seconds(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_defaults, NULL), 0);
}

/* ---- backoff ---------------------------------------------------------------
 */

static int t_backoff(void *arg)
{
    (void)arg;
    nlog = 0;
    /* Delays of 100, 200, 400, then capped at 400. The fifth incarnation
     * holds for 2 s, a whole window: the next delay starts over at 100. */
    struct kid k = {
        {{0, -EIO}, {0, -EIO}, {0, -EIO}, {0, -EIO}, {2000, -EIO}, {0, -EIO}},
        6,
        0,
        0};
    knit_child_spec specs[] = {spec("k", &k, KNIT_CHILD_PERMANENT)};
    knit_backoff_policy bo = {
        .initial_ms = 100, .max_ms = 400, .max_attempts = 2 /* not used */};
    struct sup_call call = {
        .o = {.max_restarts = 10, .window_ms = 1000, .backoff = &bo},
        .specs = specs,
        .n = 1,
        .deadline = 3350};
    assert_int_equal(sup_main(&call), -ETIMEDOUT);
    EXPECT_LOG("0 started k 0", "0 exited k -5", "0 restarting k 100",
               "100 started k 1", "100 exited k -5", "100 restarting k 200",
               "300 started k 2", "300 exited k -5", "300 restarting k 400",
               "700 started k 3", "700 exited k -5", "700 restarting k 400",
               "1100 started k 4", "3100 exited k -5", "3100 restarting k 100",
               "3200 started k 5", "3200 exited k -5", "3200 restarting k 200",
               "3350 shutdown - -110");
    assert_int_equal(k.started, 6); /* the restart due at 3400 was not made */
    assert_int_equal(call.rep.restarts, 6);
    return 0;
}

static void
supervisor_backoff_delays_are_exact_and_reset_after_a_stable_run(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_backoff, NULL), 0);
}

static int t_backoff_watches(void *arg)
{
    (void)arg;
    nlog = 0;
    /* One-for-one: while a waits out its delay, b fails and gets its
     * own; each restarts on time. */
    struct kid a = {{{0, -EIO}, {FOREVER, 0}}, 2, 0, 0};
    struct kid b = {{{30, -EIO}, {FOREVER, 0}}, 2, 0, 0};
    knit_child_spec specs[] = {spec("a", &a, KNIT_CHILD_PERMANENT),
                               spec("b", &b, KNIT_CHILD_PERMANENT)};
    knit_backoff_policy bo = {.initial_ms = 100};
    struct sup_call call = {
        .o = {.backoff = &bo}, .specs = specs, .n = 2, .deadline = 200};
    assert_int_equal(sup_main(&call), -ETIMEDOUT);
    EXPECT_LOG("0 started a 0", "0 started b 0", "0 exited a -5",
               "0 restarting a 100", "30 exited b -5", "30 restarting b 100",
               "100 started a 1", "130 started b 1", "200 shutdown - -110",
               "200 stopped b -125", "200 stopped a -125");

    /* Rest-for-one: b waits to restart at 100 when a fails at 50 with a
     * delay of 100; the set {a, b} restarts together at 150. */
    struct kid c = {{{50, -EIO}, {FOREVER, 0}}, 2, 0, 0};
    struct kid d = {{{0, -EIO}, {FOREVER, 0}}, 2, 0, 0};
    knit_child_spec rs[] = {spec("c", &c, KNIT_CHILD_PERMANENT),
                            spec("d", &d, KNIT_CHILD_PERMANENT)};
    struct sup_call rc = {
        .o = {.strategy = KNIT_SUP_REST_FOR_ONE, .backoff = &bo},
        .specs = rs,
        .n = 2,
        .deadline = 400};
    assert_int_equal(sup_main(&rc), -ETIMEDOUT);
    EXPECT_LOG("200 started c 0", "200 started d 0", "200 exited d -5",
               "200 restarting d 100", "250 exited c -5",
               "250 restarting c 100", "250 restarting d 100",
               "350 started c 1", "350 started d 1", "400 shutdown - -110",
               "400 stopped d -125", "400 stopped c -125");
    return 0;
}

static void supervisor_keeps_watching_children_during_a_backoff(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_backoff_watches, NULL), 0);
}

/* ---- shutdown --------------------------------------------------------------
 */

static int t_cancel_task(void *arg)
{
    (void)arg;
    nlog = 0;
    /* Each child takes 10 ms to clean up once cancelled: the next one is
     * cancelled only after the previous one returned. */
    struct kid a = {{{FOREVER, 0}}, 1, 10, 0};
    struct kid b = {{{FOREVER, 0}}, 1, 10, 0};
    struct kid c = {{{FOREVER, 0}}, 1, 10, 0};
    knit_child_spec specs[] = {spec("a", &a, KNIT_CHILD_PERMANENT),
                               spec("b", &b, KNIT_CHILD_PERMANENT),
                               spec("c", &c, KNIT_CHILD_PERMANENT)};
    struct sup_call call = {.specs = specs, .n = 3, .deadline = KNIT_FOREVER};
    knit_task *t = knit_spawn(sup_main, &call);
    assert_non_null(t);
    assert_int_equal(knit_sleep(5), 0);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(knit_now(), 35);
    EXPECT_LOG("0 started a 0", "0 started b 0", "0 started c 0",
               "5 shutdown - -125", "15 stopped c -125", "25 stopped b -125",
               "35 stopped a -125");

    /* Cancelled while a restart waits: nothing more is started. */
    struct kid d = {{{0, -EIO}}, 1, 0, 0};
    knit_child_spec ds[] = {spec("d", &d, KNIT_CHILD_PERMANENT)};
    knit_backoff_policy bo = {.initial_ms = 100};
    struct sup_call dc = {
        .o = {.backoff = &bo}, .specs = ds, .n = 1, .deadline = KNIT_FOREVER};
    t = knit_spawn(sup_main, &dc);
    assert_int_equal(knit_sleep(50), 0);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(knit_now(), 85);
    EXPECT_LOG("35 started d 0", "35 exited d -5", "35 restarting d 100",
               "85 shutdown - -125");
    assert_int_equal(d.started, 1);
    return 0;
}

static void
supervisor_cancelled_stops_children_in_reverse_order_one_by_one(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel_task, NULL), 0);
}

/* A child that runs a supervisor of its own. */
static knit_child_spec inner_specs[2];

static int inner_sup(void *arg)
{
    (void)arg;
    knit_supervisor_opts o = {.on_event = on_event};
    return knit_supervisor_run(&o, inner_specs, 2, NULL);
}

static int t_nested(void *arg)
{
    (void)arg;
    /* One worker only: the inner supervisor and the outer one log at the
     * same instants from their own tasks, in no order across workers. */
    if (kt_workers() > 1)
        return 0;
    nlog = 0;
    struct kid x = {{{FOREVER, 0}}, 1, 0, 0};
    struct kid y = {{{10, -EIO}, {FOREVER, 0}}, 2, 0, 0};
    struct kid z = {{{FOREVER, 0}}, 1, 5, 0};
    inner_specs[0] = spec("x", &x, KNIT_CHILD_PERMANENT);
    inner_specs[1] = spec("y", &y, KNIT_CHILD_PERMANENT);
    knit_child_spec specs[] = {
        {.name = "inner", .start = inner_sup, .stack_size = 128 * 1024},
        spec("z", &z, KNIT_CHILD_PERMANENT)};
    struct sup_call call = {.specs = specs, .n = 2, .deadline = 30};
    assert_int_equal(sup_main(&call), -ETIMEDOUT);
    /* The tree shuts down depth-first, last started first. */
    EXPECT_LOG("0 started inner 0", "0 started z 0", "0 started x 0",
               "0 started y 0", "10 exited y -5", "10 restarting y 0",
               "10 started y 1", "30 shutdown - -110", "35 stopped z -125",
               "35 shutdown - -125", "35 stopped y -125", "35 stopped x -125",
               "35 stopped inner -125");
    return 0;
}

static void
supervisor_nested_in_a_supervisor_shuts_down_depth_first(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_nested, NULL), 0);
}

/* ---- arguments -------------------------------------------------------------
 */

static int t_bad(void *arg)
{
    (void)arg;
    struct kid k = {{{0, 0}}, 1, 0, 0};
    knit_child_spec good = spec("k", &k, KNIT_CHILD_PERMANENT);
    knit_supervisor_report rep = {7, 7, 7};
    assert_int_equal(knit_supervisor_run(NULL, NULL, 1, &rep), -EINVAL);
    assert_int_equal(knit_supervisor_run(NULL, &good, 0, &rep), -EINVAL);
    assert_int_equal(knit_supervisor_run(NULL, &good, -1, &rep), -EINVAL);
    knit_child_spec bad = good;
    bad.start = NULL;
    assert_int_equal(knit_supervisor_run(NULL, &bad, 1, &rep), -EINVAL);
    bad = good;
    bad.restart = (knit_child_restart)3;
    assert_int_equal(knit_supervisor_run(NULL, &bad, 1, &rep), -EINVAL);
    knit_supervisor_opts o = {.strategy = (knit_sup_strategy)3};
    assert_int_equal(knit_supervisor_run(&o, &good, 1, &rep), -EINVAL);
    assert_int_equal(rep.child, 7); /* untouched */
    assert_int_equal(k.started, 0);

    /* A child whose task cannot be spawned (a stack knit_spawn_with
     * refuses): the others are stopped and the run fails. */
    nlog = 0;
    struct kid a = {{{FOREVER, 0}}, 1, 0, 0};
    knit_child_spec specs[] = {spec("a", &a, KNIT_CHILD_PERMANENT), good};
    specs[1].stack_size = 1;
    struct sup_call call = {.specs = specs, .n = 2, .deadline = KNIT_FOREVER};
    assert_int_equal(sup_main(&call), -ENOMEM);
    EXPECT_LOG("0 started a 0", "0 shutdown - -12", "0 stopped a -125");

    assert_string_equal(knit_sup_event_name(KNIT_SUP_STARTED), "started");
    assert_string_equal(knit_sup_event_name(KNIT_SUP_EXITED), "exited");
    assert_string_equal(knit_sup_event_name(KNIT_SUP_STOPPED), "stopped");
    assert_string_equal(knit_sup_event_name(KNIT_SUP_RESTARTING), "restarting");
    assert_string_equal(knit_sup_event_name(KNIT_SUP_GAVE_UP), "gave up");
    assert_string_equal(knit_sup_event_name(KNIT_SUP_SHUTDOWN), "shutdown");
    assert_string_equal(knit_sup_event_name(-1), "?");
    return 0;
}

static void
supervisor_rejects_bad_arguments_and_reports_spawn_failure(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bad, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(supervisor_one_for_one_restarts_only_the_failed_child),
        cmocka_unit_test(
            supervisor_one_for_all_restarts_every_child_in_start_order),
        cmocka_unit_test(
            supervisor_rest_for_one_restarts_the_child_and_those_after_it),
        cmocka_unit_test(
            supervisor_sibling_that_ended_on_its_own_restarts_once_with_the_set),
        cmocka_unit_test(
            supervisor_restart_types_permanent_transient_temporary),
        cmocka_unit_test(
            supervisor_intensity_counts_only_restarts_inside_the_window),
        cmocka_unit_test(
            supervisor_defaults_allow_three_restarts_in_five_seconds),
        cmocka_unit_test(
            supervisor_backoff_delays_are_exact_and_reset_after_a_stable_run),
        cmocka_unit_test(supervisor_keeps_watching_children_during_a_backoff),
        cmocka_unit_test(
            supervisor_cancelled_stops_children_in_reverse_order_one_by_one),
        cmocka_unit_test(
            supervisor_nested_in_a_supervisor_shuts_down_depth_first),
        cmocka_unit_test(
            supervisor_rejects_bad_arguments_and_reports_spawn_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
