// SPDX-License-Identifier: MIT
/*
 * The circuit breaker (knit/patterns/breaker.h). A recorder logs every
 * change of state with its manual-clock time, so each test asserts the
 * exact sequence and the exact moment of every transition: consecutive
 * and windowed failure counting, the cool-down to the millisecond, the
 * half-open trial limit under concurrent callers, a failed trial
 * reopening, outcomes of calls let through before a change ignored,
 * -ECANCELED and is_failure, trip and reset, bad arguments. Misuse
 * panics run in child processes.
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
#include <cmocka.h>

#include "kt.h"

/* ---- the recorder -------------------------------------------------------- */

enum {
    C = KNIT_BREAKER_CLOSED,
    O = KNIT_BREAKER_OPEN,
    H = KNIT_BREAKER_HALF_OPEN
};

struct change {
    knit_breaker_state from;
    knit_breaker_state to;
    int64_t at;
};

struct rec {
    knit_breaker *b;       /* to query from inside the callback */
    struct change log[32]; /* the changes, in order */
    int n;                 /* entries in log */
};

static void on_change(void *arg, knit_breaker_state from, knit_breaker_state to)
{
    struct rec *r = arg;
    assert_true(r->n < 32);
    r->log[r->n++] = (struct change){from, to, knit_now()};
    /* The new state is in place when the callback runs. */
    if (r->b)
        assert_int_equal(knit_breaker_state_get(r->b), to);
}

/* Asserts the log holds exactly these changes (from, to, at triples). */
static void expect_log(const struct rec *r, int n, const int64_t *want)
{
    if (r->n != n)
        fail_msg("%d changes logged, want %d", r->n, n);
    for (int i = 0; i < n; i++) {
        const struct change *c = &r->log[i];
        if (c->from != want[3 * i] || c->to != want[3 * i + 1] ||
            c->at != want[3 * i + 2])
            fail_msg(
                "change %d: %s -> %s at %lld, want %s -> %s at %lld", i,
                knit_breaker_state_name(c->from),
                knit_breaker_state_name(c->to), (long long)c->at,
                knit_breaker_state_name((knit_breaker_state)want[3 * i]),
                knit_breaker_state_name((knit_breaker_state)want[3 * i + 1]),
                (long long)want[3 * i + 2]);
    }
}

static knit_breaker *new_breaker(struct rec *r, knit_breaker_opts o)
{
    memset(r, 0, sizeof(*r));
    o.on_change = on_change;
    o.arg = r;
    r->b = knit_breaker_new(&o);
    assert_non_null(r->b);
    return r->b;
}

static knit_breaker_stats stats(knit_breaker *b)
{
    knit_breaker_stats s;
    knit_breaker_stats_get(b, &s);
    return s;
}

/* A backend: returns result after sleeping ms; counts its calls. */
struct backend {
    int result;
    int64_t ms;
    int calls;
};

static int backend_fn(void *arg)
{
    struct backend *be = arg;
    be->calls++;
    if (be->ms > 0) {
        int err = knit_sleep(be->ms);
        if (err < 0)
            return err;
    }
    return be->result;
}

/* One call through the breaker with an instant backend answering @res. */
static int call(knit_breaker *b, int res)
{
    struct backend be = {.result = res};
    int r = knit_breaker_call(b, backend_fn, &be);
    assert_int_equal(be.calls, r == -EBUSY && res != -EBUSY ? 0 : 1);
    return r;
}

static void sleep_until(int64_t t)
{
    assert_true(t >= knit_now());
    assert_int_equal(knit_sleep_until(t), 0);
}

/* ---- options and arguments ----------------------------------------------- */

static int t_defaults(void *arg)
{
    (void)arg;
    knit_breaker *b = knit_breaker_new(NULL);
    assert_non_null(b);
    knit_breaker_stats s = stats(b);
    assert_int_equal(s.state, KNIT_BREAKER_CLOSED);
    assert_int_equal(s.since, 0);
    assert_int_equal(s.open_until, 0);
    /* Five consecutive failures open it for 10 s; one trial closes it. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(call(b, -EIO), -EIO);
    assert_int_equal(stats(b).failures, 4);
    assert_int_equal(knit_breaker_state_get(b), KNIT_BREAKER_CLOSED);
    sleep_until(7);
    assert_int_equal(call(b, -EIO), -EIO);
    s = stats(b);
    assert_int_equal(s.state, KNIT_BREAKER_OPEN);
    assert_int_equal(s.since, 7);
    assert_int_equal(s.open_until, 10007);
    assert_int_equal(s.failures, 0);
    sleep_until(10006);
    assert_int_equal(call(b, 0), -EBUSY);
    sleep_until(10007);
    assert_int_equal(call(b, 1), 1);
    assert_int_equal(knit_breaker_state_get(b), KNIT_BREAKER_CLOSED);
    knit_breaker_free(b);
    knit_breaker_free(NULL);
    return 0;
}

static void breaker_defaults_are_five_failures_and_ten_seconds(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_defaults, NULL), 0);
}

static void breaker_rejects_bad_arguments(void **state)
{
    (void)state;
    knit_breaker_opts o = {.failure_threshold = 65537, .window_ms = 10};
    assert_null(knit_breaker_new(&o));
    o.failure_threshold = 65536; /* the largest window */
    knit_breaker *b = knit_breaker_new(&o);
    assert_non_null(b);
    /* Outside a runtime too: nothing here waits. */
    struct backend be = {0};
    knit_breaker_ticket t;
    assert_int_equal(knit_breaker_call(NULL, backend_fn, &be), -EINVAL);
    assert_int_equal(knit_breaker_call(b, NULL, &be), -EINVAL);
    assert_int_equal(be.calls, 0);
    assert_int_equal(knit_breaker_allow(NULL, &t), -EINVAL);
    assert_int_equal(knit_breaker_allow(b, NULL), -EINVAL);
    knit_breaker_stats s;
    knit_breaker_stats_get(b, &s);
    assert_int_equal(s.allowed, 0);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(s.in_flight, 0);
    knit_breaker_free(b);
    /* A negative window is no window: consecutive counting. */
    o.window_ms = -5;
    o.failure_threshold = 1;
    b = knit_breaker_new(&o);
    assert_non_null(b);
    assert_int_equal(
        knit_breaker_call(b, backend_fn, &(struct backend){.result = -EIO}),
        -EIO);
    assert_int_equal(knit_breaker_state_get(b), KNIT_BREAKER_OPEN);
    knit_breaker_free(b);
    assert_string_equal(knit_breaker_state_name(KNIT_BREAKER_CLOSED), "closed");
    assert_string_equal(knit_breaker_state_name(KNIT_BREAKER_OPEN), "open");
    assert_string_equal(knit_breaker_state_name(KNIT_BREAKER_HALF_OPEN),
                        "half-open");
    assert_string_equal(knit_breaker_state_name((knit_breaker_state)7), "?");
}

/* ---- counting failures --------------------------------------------------- */

static int t_consecutive(void *arg)
{
    (void)arg;
    struct rec r;
    knit_breaker *b = new_breaker(
        &r, (knit_breaker_opts){.failure_threshold = 3, .open_ms = 1000});
    sleep_until(10);
    call(b, -EIO);
    sleep_until(20);
    call(b, -EIO);
    assert_int_equal(stats(b).failures, 2);
    sleep_until(25);
    call(b, 0); /* a success starts the count again */
    assert_int_equal(stats(b).failures, 0);
    sleep_until(30);
    call(b, -EIO);
    sleep_until(40);
    call(b, -EIO);
    assert_int_equal(r.n, 0);
    sleep_until(50);
    assert_int_equal(call(b, -ETIMEDOUT), -ETIMEDOUT); /* the third */
    expect_log(&r, 1, (int64_t[]){C, O, 50});
    /* Open: rejected at once, the backend not called, until 1050. */
    sleep_until(60);
    assert_int_equal(call(b, 0), -EBUSY);
    sleep_until(1049);
    assert_int_equal(call(b, 0), -EBUSY);
    assert_int_equal(knit_breaker_state_get(b), KNIT_BREAKER_OPEN);
    sleep_until(1050);
    assert_int_equal(call(b, 5), 5); /* the trial, and it worked */
    expect_log(&r, 3, (int64_t[]){C, O, 50, O, H, 1050, H, C, 1050});
    knit_breaker_stats s = stats(b);
    assert_int_equal(s.allowed, 7);
    assert_int_equal(s.rejected, 2);
    assert_int_equal(s.succeeded, 2);
    assert_int_equal(s.failed, 5);
    assert_int_equal(s.opened, 1);
    assert_int_equal(s.since, 1050);
    assert_int_equal(s.in_flight, 0);
    knit_breaker_free(b);
    return 0;
}

static void
breaker_opens_after_consecutive_failures_at_the_exact_time(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_consecutive, NULL), 0);
}

static int t_window(void *arg)
{
    (void)arg;
    struct rec r;
    knit_breaker *b = new_breaker(
        &r, (knit_breaker_opts){
                .failure_threshold = 3, .window_ms = 100, .open_ms = 500});
    /* Failures at 0, 50, 100 span exactly 100 ms: not within the window.
     * The successes in between do not matter. */
    call(b, -EIO);
    sleep_until(50);
    call(b, 0);
    call(b, -EIO);
    call(b, 0);
    sleep_until(100);
    call(b, -EIO);
    assert_int_equal(r.n, 0);
    assert_int_equal(stats(b).failures, 2); /* 50 and 100 are recent */
    sleep_until(149);
    call(b, 0);
    /* 50, 100, 149: 99 ms apart. */
    call(b, -EIO);
    expect_log(&r, 1, (int64_t[]){C, O, 149});
    assert_int_equal(stats(b).open_until, 649);
    /* Closing forgets the window. */
    sleep_until(649);
    call(b, 0);
    expect_log(&r, 3, (int64_t[]){C, O, 149, O, H, 649, H, C, 649});
    call(b, -EIO);
    call(b, -EIO);
    assert_int_equal(stats(b).failures, 2);
    sleep_until(760);
    assert_int_equal(stats(b).failures, 0); /* aged out of the window */
    call(b, -EIO);
    assert_int_equal(knit_breaker_state_get(b), KNIT_BREAKER_CLOSED);
    knit_breaker_free(b);
    return 0;
}

static void breaker_window_counts_failures_within_window_ms(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_window, NULL), 0);
}

static bool not_found_is_fine(int err, void *arg)
{
    (void)arg;
    return err != -ENOENT;
}

static int t_classify(void *arg)
{
    (void)arg;
    struct rec r;
    knit_breaker *b =
        new_breaker(&r, (knit_breaker_opts){.failure_threshold = 2,
                                            .is_failure = not_found_is_fine});
    call(b, -EIO);
    /* -ECANCELED is neither: the count stays. */
    assert_int_equal(call(b, -ECANCELED), -ECANCELED);
    assert_int_equal(stats(b).failures, 1);
    /* -ENOENT: the backend answered, a success; the count restarts. */
    assert_int_equal(call(b, -ENOENT), -ENOENT);
    assert_int_equal(stats(b).failures, 0);
    call(b, -EIO);
    assert_int_equal(r.n, 0);
    call(b, -EIO);
    expect_log(&r, 1, (int64_t[]){C, O, 0});
    knit_breaker_stats s = stats(b);
    assert_int_equal(s.succeeded, 1);
    assert_int_equal(s.failed, 3);
    assert_int_equal(s.ignored, 1);
    knit_breaker_free(b);
    return 0;
}

static void breaker_ignores_ecanceled_and_asks_is_failure(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_classify, NULL), 0);
}

/* ---- half-open ----------------------------------------------------------- */

struct trial {
    knit_breaker *b;
    struct backend be;
    int result;
    int64_t at; /* when the call returned */
};

static int trial_fn(void *arg)
{
    struct trial *t = arg;
    t->result = knit_breaker_call(t->b, backend_fn, &t->be);
    t->at = knit_now();
    return 0;
}

static int t_trials(void *arg)
{
    (void)arg;
    struct rec r;
    knit_breaker *b =
        new_breaker(&r, (knit_breaker_opts){.failure_threshold = 1,
                                            .open_ms = 100,
                                            .half_open_max = 2,
                                            .success_threshold = 3});
    call(b, -EIO);
    sleep_until(100);
    /* Four callers at once: two trials go through, two are rejected. */
    struct trial tr[4];
    knit_task *t[4];
    for (int i = 0; i < 4; i++) {
        tr[i] = (struct trial){.b = b, .be = {.result = 0, .ms = 10}};
        t[i] = knit_spawn(trial_fn, &tr[i]);
    }
    assert_int_equal(knit_sleep(1), 0);
    knit_breaker_stats s = stats(b);
    assert_int_equal(s.state, KNIT_BREAKER_HALF_OPEN);
    assert_int_equal(s.in_flight, 2);
    /* And so is a fifth, while the two are in flight. */
    assert_int_equal(call(b, 0), -EBUSY);
    for (int i = 0; i < 4; i++)
        assert_int_equal(knit_join(t[i]), 0);
    /* The first two to start went through: on one worker, t[0] and
     * t[1]; on several, any two. */
    int through = 0;
    for (int i = 0; i < 4; i++) {
        bool ok = tr[i].result == 0;
        through += ok;
        if (kt_workers() == 1)
            assert_true(ok == (i < 2));
        assert_int_equal(tr[i].result, ok ? 0 : -EBUSY);
        assert_int_equal(tr[i].be.calls, ok ? 1 : 0);
        assert_int_equal(tr[i].at, ok ? 110 : 100);
    }
    assert_int_equal(through, 2);
    /* Two successes of three: still half-open. An abandoned trial frees
     * its slot and counts nothing. */
    s = stats(b);
    assert_int_equal(s.state, KNIT_BREAKER_HALF_OPEN);
    assert_int_equal(s.successes, 2);
    assert_int_equal(s.rejected, 3);
    knit_breaker_ticket a;
    knit_breaker_ticket c;
    knit_breaker_ticket d;
    assert_int_equal(knit_breaker_allow(b, &a), 0);
    assert_int_equal(knit_breaker_allow(b, &c), 0);
    assert_int_equal(knit_breaker_allow(b, &d), -EBUSY);
    knit_breaker_record(b, &a, -ECANCELED);
    assert_int_equal(knit_breaker_allow(b, &d), 0);
    knit_breaker_record(b, &d, 0);
    assert_int_equal(knit_breaker_state_get(b), KNIT_BREAKER_CLOSED);
    /* The third success closed it; c, let through in half-open, now
     * counts for nothing. */
    expect_log(&r, 3, (int64_t[]){C, O, 0, O, H, 100, H, C, 110});
    knit_breaker_record(b, &c, -EIO);
    s = stats(b);
    assert_int_equal(s.state, KNIT_BREAKER_CLOSED);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.ignored, 2);
    knit_breaker_free(b);
    return 0;
}

static void
breaker_half_open_lets_only_half_open_max_trials_through(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_trials, NULL), 0);
}

static int t_reopen(void *arg)
{
    (void)arg;
    struct rec r;
    knit_breaker *b =
        new_breaker(&r, (knit_breaker_opts){.failure_threshold = 2,
                                            .open_ms = 300,
                                            .success_threshold = 2});
    sleep_until(5);
    call(b, -EIO);
    call(b, -EIO); /* open at 5 until 305 */
    sleep_until(305);
    assert_int_equal(call(b, 0), 0); /* one good trial of two */
    sleep_until(320);
    assert_int_equal(call(b, -EIO), -EIO); /* a failed one: open again */
    knit_breaker_stats s = stats(b);
    assert_int_equal(s.state, KNIT_BREAKER_OPEN);
    assert_int_equal(s.open_until, 620); /* a full cool-down from 320 */
    sleep_until(619);
    assert_int_equal(call(b, 0), -EBUSY);
    /* The state query makes the timed move at 620, before any call. */
    sleep_until(620);
    assert_int_equal(knit_breaker_state_get(b), KNIT_BREAKER_HALF_OPEN);
    /* The earlier good trial does not carry over. */
    sleep_until(630);
    call(b, 0);
    assert_int_equal(knit_breaker_state_get(b), KNIT_BREAKER_HALF_OPEN);
    sleep_until(640);
    call(b, 0);
    expect_log(
        &r, 5,
        (int64_t[]){C, O, 5, O, H, 305, H, O, 320, O, H, 620, H, C, 640});
    s = stats(b);
    assert_int_equal(s.opened, 2);
    assert_int_equal(s.since, 640);
    knit_breaker_free(b);
    return 0;
}

static void breaker_failed_trial_reopens_for_a_full_cool_down(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_reopen, NULL), 0);
}

/* ---- outcomes across changes, switches ----------------------------------- */

static int t_stale(void *arg)
{
    (void)arg;
    struct rec r;
    knit_breaker *b = new_breaker(
        &r, (knit_breaker_opts){.failure_threshold = 1, .open_ms = 50});
    /* Two calls in flight; the first fails and opens the breaker. The
     * second's success, let through while closed, is ignored. */
    knit_breaker_ticket x;
    knit_breaker_ticket y;
    assert_int_equal(knit_breaker_allow(b, &x), 0);
    assert_int_equal(knit_breaker_allow(b, &y), 0);
    assert_int_equal(stats(b).in_flight, 2);
    knit_breaker_record(b, &x, -EIO);
    knit_breaker_record(b, &y, 0);
    knit_breaker_stats s = stats(b);
    assert_int_equal(s.state, KNIT_BREAKER_OPEN);
    assert_int_equal(s.ignored, 1);
    assert_int_equal(s.succeeded, 0);
    assert_int_equal(s.in_flight, 0);
    /* A closed-state call still in flight when the cool-down ends: its
     * record makes the move to half-open and is then ignored. */
    knit_breaker_reset(b);
    assert_int_equal(knit_breaker_allow(b, &x), 0);
    knit_breaker_trip(b);
    sleep_until(50);
    knit_breaker_record(b, &x, -EIO);
    expect_log(&r, 4, (int64_t[]){C, O, 0, O, C, 0, C, O, 0, O, H, 50});
    assert_int_equal(stats(b).ignored, 2);
    assert_int_equal(knit_breaker_allow(b, &y), 0); /* the trial slot */
    knit_breaker_record(b, &y, 0);
    assert_int_equal(knit_breaker_state_get(b), KNIT_BREAKER_CLOSED);
    knit_breaker_free(b);
    return 0;
}

static void
breaker_ignores_outcomes_of_calls_let_through_before_a_change(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_stale, NULL), 0);
}

static int t_switches(void *arg)
{
    (void)arg;
    struct rec r;
    knit_breaker *b = new_breaker(
        &r, (knit_breaker_opts){.failure_threshold = 3, .open_ms = 100});
    call(b, -EIO);
    call(b, -EIO);
    /* Reset while closed forgets the failures, with no change. */
    knit_breaker_reset(b);
    assert_int_equal(stats(b).failures, 0);
    call(b, -EIO);
    call(b, -EIO);
    assert_int_equal(knit_breaker_state_get(b), KNIT_BREAKER_CLOSED);
    assert_int_equal(r.n, 0);
    /* Trip opens; tripping again restarts the cool-down, no change. */
    sleep_until(10);
    knit_breaker_trip(b);
    assert_int_equal(stats(b).open_until, 110);
    sleep_until(60);
    knit_breaker_trip(b);
    assert_int_equal(stats(b).open_until, 160);
    sleep_until(159);
    assert_int_equal(call(b, 0), -EBUSY);
    sleep_until(160);
    assert_int_equal(knit_breaker_state_get(b), KNIT_BREAKER_HALF_OPEN);
    /* Trip from half-open, then reset from open. */
    knit_breaker_trip(b);
    sleep_until(170);
    knit_breaker_reset(b);
    assert_int_equal(call(b, 3), 3);
    expect_log(&r, 4, (int64_t[]){C, O, 10, O, H, 160, H, O, 160, O, C, 170});
    knit_breaker_stats s = stats(b);
    assert_int_equal(s.opened, 2);
    assert_int_equal(s.open_until, 0);
    knit_breaker_free(b);
    return 0;
}

static void breaker_trip_and_reset_switch_by_hand(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_switches, NULL), 0);
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

static int t_record_twice(void *arg)
{
    (void)arg;
    knit_breaker *b = knit_breaker_new(NULL);
    knit_breaker_ticket t;
    assert_int_equal(knit_breaker_allow(b, &t), 0);
    knit_breaker_record(b, &t, 0);
    knit_breaker_record(b, &t, 0); /* misuse */
    return 0;
}

static void breaker_record_twice_panics(void **state)
{
    (void)state;
    expect_panic(t_record_twice, "knit: knit_breaker_record: not a ticket of "
                                 "this breaker waiting to be recorded");
}

static int t_record_rejected(void *arg)
{
    (void)arg;
    knit_breaker *b = knit_breaker_new(NULL);
    knit_breaker_trip(b);
    knit_breaker_ticket t;
    assert_int_equal(knit_breaker_allow(b, &t), -EBUSY);
    knit_breaker_record(b, &t, 0); /* misuse: nothing to record */
    return 0;
}

static void breaker_record_of_a_rejected_ticket_panics(void **state)
{
    (void)state;
    expect_panic(t_record_rejected, "knit: knit_breaker_record: not a ticket "
                                    "of this breaker");
}

static int t_free_in_flight(void *arg)
{
    (void)arg;
    knit_breaker *b = knit_breaker_new(NULL);
    knit_breaker_ticket t;
    assert_int_equal(knit_breaker_allow(b, &t), 0);
    knit_breaker_free(b); /* misuse */
    return 0;
}

static void breaker_free_with_a_call_in_flight_panics(void **state)
{
    (void)state;
    expect_panic(t_free_in_flight, "knit: knit_breaker_free: a call let "
                                   "through was not recorded (in task ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(breaker_defaults_are_five_failures_and_ten_seconds),
        cmocka_unit_test(breaker_rejects_bad_arguments),
        cmocka_unit_test(
            breaker_opens_after_consecutive_failures_at_the_exact_time),
        cmocka_unit_test(breaker_window_counts_failures_within_window_ms),
        cmocka_unit_test(breaker_ignores_ecanceled_and_asks_is_failure),
        cmocka_unit_test(
            breaker_half_open_lets_only_half_open_max_trials_through),
        cmocka_unit_test(breaker_failed_trial_reopens_for_a_full_cool_down),
        cmocka_unit_test(
            breaker_ignores_outcomes_of_calls_let_through_before_a_change),
        cmocka_unit_test(breaker_trip_and_reset_switch_by_hand),
        cmocka_unit_test(breaker_record_twice_panics),
        cmocka_unit_test(breaker_record_of_a_rejected_ticket_panics),
        cmocka_unit_test(breaker_free_with_a_call_in_flight_panics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
