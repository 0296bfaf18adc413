// SPDX-License-Identifier: MIT
/*
 * The pattern library (knit/patterns.h), issue 6 parts 1 and 2: backoff
 * and retry, then the token bucket, then the keyed limiter. Everything
 * runs on the manual clock and asserts exact times: delays, retry
 * attempts, the moment each acquire returns. Blocking calls get the usual
 * three tests (success, cancelled while parked, scope expired), each
 * checking that the failure left no trace: no token lost, no waiter
 * behind held up. Misuse panics run in child processes.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "kt.h"

/* ---- backoff ------------------------------------------------------------- */

static void expect_delays(knit_backoff *b, int n, const int64_t *want)
{
    for (int i = 0; i < n; i++) {
        int64_t d = knit_backoff_next(b, 0);
        if (d != want[i])
            fail_msg("delay %d: got %lld, want %lld", i, (long long)d,
                     (long long)want[i]);
    }
}

static void backoff_without_jitter_doubles_up_to_the_cap(void **state)
{
    (void)state;
    knit_backoff b;
    knit_backoff_policy p = {.initial_ms = 100, .max_ms = 1000};
    knit_backoff_init(&b, &p);
    expect_delays(&b, 7, (int64_t[]){100, 200, 400, 800, 1000, 1000, 1000});
    assert_int_equal(knit_backoff_attempts(&b), 7);

    /* The defaults: 100 ms doubling, capped at 10 s, no attempt limit. */
    knit_backoff_init(&b, NULL);
    expect_delays(
        &b, 9, (int64_t[]){100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000});
    /* All-zero storage is the same as the defaults. */
    memset(&b, 0, sizeof(b));
    expect_delays(&b, 3, (int64_t[]){100, 200, 400});
    knit_backoff_policy zero = {0};
    knit_backoff_init(&b, &zero);
    expect_delays(&b, 2, (int64_t[]){100, 200});
}

static void backoff_stops_after_max_attempts_and_reset_restarts(void **state)
{
    (void)state;
    knit_backoff b;
    knit_backoff_policy p = {.initial_ms = 100, .max_attempts = 4};
    knit_backoff_init(&b, &p);
    /* Attempts 1-3 fail and wait; the fourth was the last one. */
    expect_delays(&b, 5, (int64_t[]){100, 200, 400, -1, -1});
    assert_int_equal(knit_backoff_attempts(&b), 5);
    knit_backoff_reset(&b);
    assert_int_equal(knit_backoff_attempts(&b), 0);
    expect_delays(&b, 4, (int64_t[]){100, 200, 400, -1});

    /* One attempt allowed: no retry at all. */
    p.max_attempts = 1;
    knit_backoff_init(&b, &p);
    assert_int_equal(knit_backoff_next(&b, 0), -1);
}

static void backoff_hint_wins_when_longer_even_above_the_cap(void **state)
{
    (void)state;
    knit_backoff b;
    knit_backoff_policy p = {.initial_ms = 100, .max_ms = 1000};
    knit_backoff_init(&b, &p);
    assert_int_equal(knit_backoff_next(&b, 50), 100);    /* shorter: ignored */
    assert_int_equal(knit_backoff_next(&b, 5000), 5000); /* above max_ms */
    assert_int_equal(knit_backoff_next(&b, 0), 400);     /* sequence intact */
    assert_int_equal(knit_backoff_next(&b, -7), 800);    /* negative: none */
}

static void backoff_factor_compounds_and_below_one_is_constant(void **state)
{
    (void)state;
    knit_backoff b;
    knit_backoff_policy p = {.initial_ms = 100, .factor = 1.5};
    knit_backoff_init(&b, &p);
    /* 337.5 and 759.375 round to the nearest ms; the factor compounds on
     * the exact value, not the rounded one. */
    expect_delays(&b, 5, (int64_t[]){100, 150, 225, 338, 506});
    p.factor = 0.5;
    knit_backoff_init(&b, &p);
    expect_delays(&b, 3, (int64_t[]){100, 100, 100});
    p.factor = 3;
    p.initial_ms = 7;
    p.max_ms = 100;
    knit_backoff_init(&b, &p);
    expect_delays(&b, 4, (int64_t[]){7, 21, 63, 100});
}

/* Draws 64 jittered delays into arg (int64_t[64]), checking each bound. */
struct jitter_run {
    knit_jitter jitter;
    int64_t got[64];
};

static int t_jitter(void *arg)
{
    struct jitter_run *j = arg;
    knit_backoff b;
    knit_backoff_policy p = {
        .initial_ms = 100, .max_ms = 3000, .jitter = j->jitter};
    knit_backoff_init(&b, &p);
    int64_t cap = 100;
    int64_t prev = 100;
    for (int i = 0; i < 64; i++) {
        int64_t d = knit_backoff_next(&b, 0);
        if (j->jitter == KNIT_JITTER_FULL) {
            /* Uniform in [0, the un-jittered delay]. */
            assert_true(d >= 0 && d <= cap);
            cap = cap * 2 > 3000 ? 3000 : cap * 2;
        } else {
            /* Uniform in [initial, 3 * previous], capped. */
            int64_t hi = prev * 3 > 3000 ? 3000 : prev * 3;
            assert_true(d >= 100 && d <= hi);
            prev = d;
        }
        j->got[i] = d;
    }
    return 0;
}

static void expect_jitter_reproducible(knit_jitter jitter)
{
    knit_config cfg;
    kt_config(&cfg);
    cfg.seed = 42;
    struct jitter_run a = {.jitter = jitter};
    struct jitter_run b = {.jitter = jitter};
    struct jitter_run c = {.jitter = jitter};
    assert_int_equal(kt_run_cfg(&cfg, t_jitter, &a), 0);
    assert_int_equal(kt_run_cfg(&cfg, t_jitter, &b), 0);
    cfg.seed = 43;
    assert_int_equal(kt_run_cfg(&cfg, t_jitter, &c), 0);
    /* The same seed waits the same delays; another seed others. */
    assert_memory_equal(a.got, b.got, sizeof(a.got));
    assert_memory_not_equal(a.got, c.got, sizeof(a.got));
    /* And they are spread out, not stuck at one value. */
    int distinct = 0;
    for (int i = 1; i < 64; i++)
        distinct += a.got[i] != a.got[i - 1];
    assert_true(distinct > 32);
}

static void backoff_full_jitter_stays_in_range_and_is_seeded(void **state)
{
    (void)state;
    expect_jitter_reproducible(KNIT_JITTER_FULL);
}

static void
backoff_decorrelated_jitter_stays_in_range_and_is_seeded(void **state)
{
    (void)state;
    expect_jitter_reproducible(KNIT_JITTER_DECORRELATED);
}

/* ---- knit_retry_run ------------------------------------------------------ */

/* A scripted operation: attempt i (from 1) returns script[i - 1] after
 * sleeping work ms; past the script it returns the last entry. */
struct flaky {
    const int *script; /* results, one per attempt */
    int len;           /* entries in script */
    int64_t work;      /* ms each attempt takes */
    int64_t at[16];    /* when each attempt started */
    int calls;         /* attempts made */
    int64_t hints[16]; /* server_delay's answer after each attempt */
    bool cancel_self;  /* attempt 1 cancels its own task */
};

static int flaky_op(void *arg, int attempt)
{
    struct flaky *f = arg;
    assert_int_equal(attempt, f->calls + 1);
    if (f->calls < 16)
        f->at[f->calls] = knit_now();
    f->calls++;
    if (f->cancel_self)
        knit_cancel(knit_current());
    if (f->work > 0) {
        int err = knit_sleep(f->work);
        if (err < 0)
            return err;
    }
    return f->script[(attempt <= f->len ? attempt : f->len) - 1];
}

static int64_t flaky_hint(void *arg)
{
    struct flaky *f = arg;
    return f->hints[f->calls - 1];
}

static bool not_einval(int err, void *arg)
{
    (void)arg;
    return err != -EINVAL;
}

static void expect_times(const struct flaky *f, int n, const int64_t *want)
{
    assert_int_equal(f->calls, n);
    for (int i = 0; i < n; i++)
        if (f->at[i] != want[i])
            fail_msg("attempt %d at %lld, want %lld", i + 1,
                     (long long)f->at[i], (long long)want[i]);
}

static int t_retry_third(void *arg)
{
    (void)arg;
    struct flaky f = {.script = (int[]){-EIO, -ECONNRESET, 42}, .len = 3};
    knit_retry r = {.policy = {.initial_ms = 100}};
    assert_int_equal(knit_retry_run(&r, flaky_op, &f), 42);
    assert_int_equal(knit_now(), 300);
    expect_times(&f, 3, (int64_t[]){0, 100, 300});

    /* Each attempt's own time adds to the delays. */
    struct flaky g = {.script = (int[]){-EIO, -EIO, 7}, .len = 3, .work = 10};
    assert_int_equal(knit_retry_run(&r, flaky_op, &g), 7);
    expect_times(&g, 3, (int64_t[]){300, 410, 620});
    assert_int_equal(knit_now(), 630);

    /* NULL: the default policy, 100 ms first. */
    struct flaky h = {.script = (int[]){-EIO, 0}, .len = 2};
    assert_int_equal(knit_retry_run(NULL, flaky_op, &h), 0);
    expect_times(&h, 2, (int64_t[]){630, 730});
    assert_int_equal(knit_retry_run(&r, NULL, NULL), -EINVAL);
    return 0;
}

static void retry_succeeds_on_the_third_attempt_at_exact_times(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_retry_third, NULL), 0);
}

static int t_retry_stops(void *arg)
{
    (void)arg;
    knit_retry r = {.policy = {.initial_ms = 100}, .retryable = not_einval};
    struct flaky f = {.script = (int[]){-EIO, -EINVAL, 0}, .len = 3};
    assert_int_equal(knit_retry_run(&r, flaky_op, &f), -EINVAL);
    expect_times(&f, 2, (int64_t[]){0, 100});

    /* -ECANCELED from the op is never retried, whatever the predicate. */
    struct flaky g = {.script = (int[]){-ECANCELED, 0}, .len = 2};
    assert_int_equal(knit_retry_run(&r, flaky_op, &g), -ECANCELED);
    assert_int_equal(g.calls, 1);
    assert_int_equal(knit_now(), 100);
    return 0;
}

static void retry_stops_at_once_on_a_non_retryable_error(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_retry_stops, NULL), 0);
}

static int t_retry_exhausted(void *arg)
{
    (void)arg;
    knit_retry r = {.policy = {.initial_ms = 100, .max_attempts = 3}};
    struct flaky f = {.script = (int[]){-EIO, -EAGAIN, -ECONNRESET, 0},
                      .len = 4};
    assert_int_equal(knit_retry_run(&r, flaky_op, &f), -ECONNRESET);
    expect_times(&f, 3, (int64_t[]){0, 100, 300});
    assert_int_equal(knit_now(), 300); /* no wait after the last one */
    return 0;
}

static void retry_out_of_attempts_returns_the_last_error(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_retry_exhausted, NULL), 0);
}

static int t_retry_hint(void *arg)
{
    (void)arg;
    knit_retry r = {.policy = {.initial_ms = 100, .max_ms = 400},
                    .server_delay = flaky_hint};
    struct flaky f = {.script = (int[]){-EAGAIN, -EAGAIN, -EAGAIN, 1},
                      .len = 4,
                      .hints = {1000, 0, 50}};
    assert_int_equal(knit_retry_run(&r, flaky_op, &f), 1);
    /* 1000 (asked, above max_ms), then 200 and 400 (longer than 50). */
    expect_times(&f, 4, (int64_t[]){0, 1000, 1200, 1600});
    return 0;
}

static void retry_waits_as_long_as_the_server_asks(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_retry_hint, NULL), 0);
}

static int t_retry_deadline(void *arg)
{
    (void)arg;
    knit_retry r = {.policy = {.initial_ms = 100}};
    int always[] = {-EIO};
    knit_scope s;

    /* Attempts at 0 and 100; the next would start at 300, past 250: the
     * retry gives up at 100 instead of sleeping to the deadline. */
    struct flaky f = {.script = always, .len = 1};
    knit_scope_enter(&s, 250);
    assert_int_equal(knit_retry_run(&r, flaky_op, &f), -ETIMEDOUT);
    assert_int_equal(knit_now(), 100);
    assert_false(knit_scope_is_fired(&s)); /* the deadline has not passed */
    assert_int_equal(knit_scope_exit(&s), 0);
    expect_times(&f, 2, (int64_t[]){0, 100});

    /* A deadline at exactly the next start is too late as well: the
     * scope's timer fires first. */
    struct flaky g = {.script = always, .len = 1};
    knit_scope_enter(&s, knit_now() + 300);
    assert_int_equal(knit_retry_run(&r, flaky_op, &g), -ETIMEDOUT);
    assert_int_equal(knit_now(), 200);
    knit_scope_exit(&s);
    expect_times(&g, 2, (int64_t[]){100, 200});

    /* One ms later leaves room for the third attempt. */
    struct flaky h = {.script = (int[]){-EIO, -EIO, 5}, .len = 3};
    knit_scope_enter(&s, knit_now() + 301);
    assert_int_equal(knit_retry_run(&r, flaky_op, &h), 5);
    assert_int_equal(knit_scope_exit(&s), 0);
    expect_times(&h, 3, (int64_t[]){200, 300, 500});

    /* The deadline fires during an attempt: the op's sleep fails, and the
     * retry returns -ETIMEDOUT at the deadline. */
    struct flaky w = {.script = always, .len = 1, .work = 200};
    knit_scope_enter(&s, knit_now() + 150);
    assert_int_equal(knit_retry_run(&r, flaky_op, &w), -ETIMEDOUT);
    assert_int_equal(knit_now(), 650);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    expect_times(&w, 1, (int64_t[]){500});

    /* An outer deadline is seen through inner scopes. */
    knit_scope outer, inner;
    struct flaky x = {.script = always, .len = 1};
    knit_scope_enter(&outer, knit_now() + 150);
    knit_scope_enter(&inner, KNIT_FOREVER);
    assert_int_equal(knit_retry_run(&r, flaky_op, &x), -ETIMEDOUT);
    knit_scope_exit(&inner);
    knit_scope_exit(&outer);
    expect_times(&x, 2, (int64_t[]){650, 750});
    return 0;
}

static void
retry_ends_at_once_when_the_deadline_would_pass_in_the_wait(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_retry_deadline, NULL), 0);
}

static int retry_task(void *arg)
{
    knit_retry r = {.policy = {.initial_ms = 100}};
    return knit_retry_run(&r, flaky_op, arg);
}

static int t_retry_cancel(void *arg)
{
    (void)arg;
    struct flaky f = {.script = (int[]){-EIO}, .len = 1};
    knit_task *t = knit_spawn(retry_task, &f);
    assert_non_null(t);
    assert_int_equal(knit_sleep(150), 0); /* during the second wait */
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(knit_now(), 150);
    expect_times(&f, 2, (int64_t[]){0, 100});

    /* Cancelled and past the deadline: the cancellation wins, as in every
     * blocking call. */
    struct flaky g = {.script = (int[]){-EIO}, .len = 1, .cancel_self = true};
    knit_task *u = knit_spawn(retry_task, &g);
    assert_non_null(u);
    assert_int_equal(knit_join(u), -ECANCELED);
    assert_int_equal(g.calls, 1);
    return 0;
}

static void retry_cancelled_while_waiting_returns_ecanceled(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_retry_cancel, NULL), 0);
}

static int deadline_retry_task(void *arg)
{
    knit_scope s;
    knit_scope_enter(&s, 50);
    knit_retry r = {.policy = {.initial_ms = 100}};
    int err = knit_retry_run(&r, flaky_op, arg);
    knit_scope_exit(&s);
    return err;
}

static int t_retry_cancel_beats_deadline(void *arg)
{
    (void)arg;
    /* The attempt cancels its own task and fails without blocking; the
     * next wait would also overrun the deadline at 50. */
    struct flaky f = {.script = (int[]){-EIO}, .len = 1, .cancel_self = true};
    knit_task *t = knit_spawn(deadline_retry_task, &f);
    assert_non_null(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(f.calls, 1);
    assert_int_equal(knit_now(), 0);
    return 0;
}

static void retry_cancellation_outranks_the_deadline(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_retry_cancel_beats_deadline, NULL), 0);
}

static int t_retry_jitter_seeded(void *arg)
{
    int64_t *at = arg;
    knit_retry r = {.policy = {.initial_ms = 100,
                               .max_attempts = 6,
                               .jitter = KNIT_JITTER_FULL}};
    struct flaky f = {.script = (int[]){-EIO}, .len = 1};
    assert_int_equal(knit_retry_run(&r, flaky_op, &f), -EIO);
    assert_int_equal(f.calls, 6);
    memcpy(at, f.at, 6 * sizeof(*at));
    /* Each wait is within [0, 100 * 2^k]. */
    for (int i = 1; i < 6; i++)
        assert_true(at[i] - at[i - 1] <= (100 << (i - 1)));
    return 0;
}

static void retry_with_jitter_waits_the_same_under_a_fixed_seed(void **state)
{
    (void)state;
    int64_t a[6], b[6];
    assert_int_equal(kt_run(t_retry_jitter_seeded, a), 0);
    assert_int_equal(kt_run(t_retry_jitter_seeded, b), 0);
    assert_memory_equal(a, b, sizeof(a));
}

/* ---- the token bucket ---------------------------------------------------- */

/* One acquire in its own task and scope; records the result and time. */
struct acq {
    knit_ratelimit *lim;         /* or NULL with keyed */
    knit_keyed_ratelimit *keyed; /* when lim is NULL */
    const char *key;             /* for keyed */
    unsigned n;                  /* tokens */
    int64_t deadline;            /* of the scope; 0: none */
    int id;                      /* logged on success */
    int *log;                    /* ids in order of success; NULL: none */
    int *nlog;                   /* entries in log */
    int result;                  /* 99 until it returns */
    int64_t at;                  /* when it returned */
};

static int acq_task(void *arg)
{
    struct acq *a = arg;
    knit_scope s;
    knit_scope_enter(&s, a->deadline ? a->deadline : KNIT_FOREVER);
    a->result = a->lim ? knit_ratelimit_acquire(a->lim, a->n)
                       : knit_keyed_ratelimit_acquire(a->keyed, a->key, a->n);
    a->at = knit_now();
    if (a->result == 0 && a->log)
        a->log[(*a->nlog)++] = a->id;
    knit_scope_exit(&s);
    return a->result;
}

static knit_task *go(struct acq *a)
{
    a->result = 99;
    a->at = -1;
    knit_task *t = knit_spawn(acq_task, a);
    assert_non_null(t);
    return t;
}

static int t_bucket_rate(void *arg)
{
    (void)arg;
    knit_ratelimit l;
    assert_int_equal(knit_ratelimit_init(&l, 10, 3), 0);
    assert_int_equal(knit_ratelimit_available(&l), 3);
    /* The burst at once, then one token every 100 ms. */
    int64_t want[] = {0, 0, 0, 100, 200, 300, 400};
    for (int i = 0; i < 7; i++) {
        assert_int_equal(knit_ratelimit_acquire(&l, 1), 0);
        assert_int_equal(knit_now(), want[i]);
    }
    assert_int_equal(knit_ratelimit_available(&l), 0);
    /* Idle time refills, up to the burst and no further. */
    assert_int_equal(knit_sleep(10000), 0);
    assert_int_equal(knit_ratelimit_available(&l), 3);
    for (int i = 0; i < 4; i++)
        assert_int_equal(knit_ratelimit_acquire(&l, 1), 0);
    assert_int_equal(knit_now(), 10500);
    knit_ratelimit_destroy(&l);
    return 0;
}

static void bucket_gives_the_burst_at_once_then_the_rate(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bucket_rate, NULL), 0);
}

static int t_bucket_n(void *arg)
{
    (void)arg;
    knit_ratelimit l;
    assert_int_equal(knit_ratelimit_init(&l, 10, 5), 0);
    assert_int_equal(knit_ratelimit_acquire(&l, 5), 0);
    assert_int_equal(knit_now(), 0);
    assert_int_equal(knit_ratelimit_acquire(&l, 3), 0);
    assert_int_equal(knit_now(), 300);
    assert_int_equal(knit_ratelimit_acquire(&l, 5), 0);
    assert_int_equal(knit_now(), 800);
    assert_int_equal(knit_ratelimit_acquire(&l, 0), 0);
    assert_int_equal(knit_now(), 800);

    /* Fractional periods: 3/s is a token every 333 1/3 ms; a wait ends
     * on the first whole ms at which the token is complete. */
    assert_int_equal(knit_ratelimit_init(&l, 3, 1), 0);
    int64_t start = knit_now();
    int64_t want[] = {0, 334, 667, 1000, 1334};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(knit_ratelimit_acquire(&l, 1), 0);
        assert_int_equal(knit_now() - start, want[i]);
    }
    /* Below one a second. */
    assert_int_equal(knit_ratelimit_init(&l, 0.5, 1), 0);
    start = knit_now();
    assert_int_equal(knit_ratelimit_acquire(&l, 1), 0);
    assert_int_equal(knit_ratelimit_acquire(&l, 1), 0);
    assert_int_equal(knit_now() - start, 2000);
    return 0;
}

static void bucket_acquire_of_n_waits_for_n_tokens(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bucket_n, NULL), 0);
}

static int t_bucket_try(void *arg)
{
    (void)arg;
    knit_ratelimit l;
    assert_int_equal(knit_ratelimit_init(&l, 10, 2), 0);
    assert_int_equal(knit_ratelimit_try_acquire(&l, 3), -EINVAL);
    assert_int_equal(knit_ratelimit_try_acquire(&l, 2), 0);
    assert_int_equal(knit_ratelimit_try_acquire(&l, 1), -EAGAIN);
    assert_int_equal(knit_ratelimit_try_acquire(&l, 0), 0);
    assert_int_equal(knit_sleep(100), 0);
    assert_int_equal(knit_ratelimit_try_acquire(&l, 2), -EAGAIN);
    assert_int_equal(knit_ratelimit_try_acquire(&l, 1), 0);

    /* A waiter for 2 is queued; at 150 one token is there, but it is the
     * waiter's: try_acquire must not take it. */
    struct acq a = {.lim = &l, .n = 2};
    knit_task *t = go(&a);
    assert_int_equal(knit_sleep(50), 0);
    assert_int_equal(knit_ratelimit_available(&l), 0);
    assert_int_equal(knit_sleep(100), 0);
    assert_int_equal(knit_ratelimit_available(&l), 1);
    assert_int_equal(knit_ratelimit_try_acquire(&l, 1), -EAGAIN);
    assert_int_equal(knit_ratelimit_try_acquire(&l, 0), -EAGAIN);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(a.at, 300);
    assert_int_equal(knit_ratelimit_try_acquire(&l, 1), -EAGAIN);
    return 0;
}

static void
bucket_try_acquire_never_takes_what_the_queue_waits_for(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bucket_try, NULL), 0);
}

static int t_bucket_fifo(void *arg)
{
    (void)arg;
    knit_ratelimit l;
    int log[8];
    int nlog = 0;
    struct acq a[5];
    knit_task *t[5];
    assert_int_equal(knit_ratelimit_init(&l, 10, 1), 0);
    assert_int_equal(knit_ratelimit_acquire(&l, 1), 0);
    for (int i = 0; i < 5; i++) {
        a[i] =
            (struct acq){.lim = &l, .n = 1, .id = i, .log = log, .nlog = &nlog};
        t[i] = go(&a[i]);
        kt_settle(); /* task i queues now */
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal(knit_join(t[i]), 0);
        assert_int_equal(a[i].at, 100 * (i + 1));
        assert_int_equal(log[i], i);
    }

    /* A big request at the head holds back a small one behind it, though
     * a single token arrives first. */
    assert_int_equal(knit_ratelimit_init(&l, 10, 3), 0);
    assert_int_equal(knit_ratelimit_acquire(&l, 3), 0);
    int64_t t0 = knit_now();
    nlog = 0;
    a[0] = (struct acq){.lim = &l, .n = 3, .id = 0, .log = log, .nlog = &nlog};
    a[1] = (struct acq){.lim = &l, .n = 1, .id = 1, .log = log, .nlog = &nlog};
    t[0] = go(&a[0]);
    kt_settle();
    t[1] = go(&a[1]);
    assert_int_equal(knit_join(t[0]), 0);
    assert_int_equal(knit_join(t[1]), 0);
    assert_int_equal(a[0].at - t0, 300);
    assert_int_equal(a[1].at - t0, 400);
    assert_int_equal(log[0], 0);
    assert_int_equal(log[1], 1);
    return 0;
}

static void bucket_serves_waiters_in_fifo_order(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bucket_fifo, NULL), 0);
}

/* The head (A, 3 tokens) fails at 150: by cancellation or by its scope's
 * deadline. B (1 token) is queued behind it and C (1 token) comes later. */
static int t_bucket_head_fails(void *arg)
{
    bool timeout = *(bool *)arg;
    knit_ratelimit l;
    assert_int_equal(knit_ratelimit_init(&l, 10, 3), 0);
    assert_int_equal(knit_ratelimit_acquire(&l, 3), 0);
    struct acq a = {.lim = &l, .n = 3, .deadline = timeout ? 150 : 0};
    struct acq b = {.lim = &l, .n = 1};
    knit_task *ta = go(&a);
    kt_settle();
    knit_task *tb = go(&b);
    assert_int_equal(knit_sleep(150), 0);
    if (!timeout)
        knit_cancel(ta);
    assert_int_equal(knit_join(ta), timeout ? -ETIMEDOUT : -ECANCELED);
    assert_int_equal(a.at, 150);
    /* A took nothing: B finds the 1.5 tokens that accrued and goes at
     * once, instead of waiting for A's turn at 300. */
    assert_int_equal(knit_join(tb), 0);
    assert_int_equal(b.at, 150);
    assert_int_equal(knit_ratelimit_available(&l), 0);
    /* The half token B left is still there: the next one is due at 200. */
    assert_int_equal(knit_ratelimit_acquire(&l, 1), 0);
    assert_int_equal(knit_now(), 200);
    knit_ratelimit_destroy(&l);
    return 0;
}

static void
bucket_cancelled_head_loses_no_token_and_lets_the_next_go(void **state)
{
    (void)state;
    bool timeout = false;
    assert_int_equal(kt_run(t_bucket_head_fails, &timeout), 0);
}

static void
bucket_timed_out_head_loses_no_token_and_lets_the_next_go(void **state)
{
    (void)state;
    bool timeout = true;
    assert_int_equal(kt_run(t_bucket_head_fails, &timeout), 0);
}

/* A waiter in the middle of the queue fails; the ones around it are served
 * on their original schedule. */
static int t_bucket_middle_fails(void *arg)
{
    bool timeout = *(bool *)arg;
    knit_ratelimit l;
    assert_int_equal(knit_ratelimit_init(&l, 10, 3), 0);
    assert_int_equal(knit_ratelimit_acquire(&l, 3), 0);
    struct acq a = {.lim = &l, .n = 3};
    struct acq b = {.lim = &l, .n = 1, .deadline = timeout ? 50 : 0};
    struct acq c = {.lim = &l, .n = 1};
    knit_task *ta = go(&a);
    kt_settle();
    knit_task *tb = go(&b);
    kt_settle();
    knit_task *tc = go(&c);
    assert_int_equal(knit_sleep(50), 0);
    if (!timeout)
        knit_cancel(tb);
    assert_int_equal(knit_join(tb), timeout ? -ETIMEDOUT : -ECANCELED);
    assert_int_equal(b.at, 50);
    assert_int_equal(knit_join(ta), 0);
    assert_int_equal(knit_join(tc), 0);
    assert_int_equal(a.at, 300);
    assert_int_equal(c.at, 400); /* B's token was not spent */
    return 0;
}

static void bucket_cancelled_queued_waiter_blocks_nobody(void **state)
{
    (void)state;
    bool timeout = false;
    assert_int_equal(kt_run(t_bucket_middle_fails, &timeout), 0);
}

static void bucket_timed_out_queued_waiter_blocks_nobody(void **state)
{
    (void)state;
    bool timeout = true;
    assert_int_equal(kt_run(t_bucket_middle_fails, &timeout), 0);
}

static int t_bucket_fired_scope(void *arg)
{
    (void)arg;
    knit_ratelimit l;
    assert_int_equal(knit_ratelimit_init(&l, 10, 2), 0);
    knit_scope s;
    /* A scope already expired: the acquire fails though tokens are
     * there, and takes none. */
    knit_scope_enter(&s, 0);
    assert_int_equal(knit_ratelimit_acquire(&l, 1), -ETIMEDOUT);
    assert_int_equal(knit_ratelimit_available(&l), 2);
    /* try_acquire is not a cancellation point. */
    assert_int_equal(knit_ratelimit_try_acquire(&l, 1), 0);
    knit_scope_exit(&s);
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_cancel(&s);
    assert_int_equal(knit_ratelimit_acquire(&l, 1), -ECANCELED);
    assert_int_equal(knit_ratelimit_available(&l), 1);
    knit_scope_exit(&s);
    /* A deadline that passes while waiting: -ETIMEDOUT at the deadline,
     * and the tokens wait for the next caller. */
    assert_int_equal(knit_ratelimit_acquire(&l, 1), 0);
    knit_scope_enter(&s, 50);
    assert_int_equal(knit_ratelimit_acquire(&l, 1), -ETIMEDOUT);
    assert_int_equal(knit_now(), 50);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    assert_int_equal(knit_ratelimit_acquire(&l, 1), 0);
    assert_int_equal(knit_now(), 100);
    return 0;
}

static void bucket_acquire_in_an_expiring_scope_takes_nothing(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bucket_fired_scope, NULL), 0);
}

static int t_bucket_einval(void *arg)
{
    (void)arg;
    knit_ratelimit l;
    assert_int_equal(knit_ratelimit_init(&l, 0, 1), -EINVAL);
    assert_int_equal(knit_ratelimit_init(&l, -5, 1), -EINVAL);
    assert_int_equal(knit_ratelimit_init(&l, NAN, 1), -EINVAL);
    assert_int_equal(knit_ratelimit_init(&l, INFINITY, 1), -EINVAL);
    assert_int_equal(knit_ratelimit_init(&l, 10, 0), -EINVAL);
    /* A token every ~31 years times a burst of 4 exceeds the range. */
    assert_int_equal(knit_ratelimit_init(&l, 1e-9, 4), -EINVAL);
    assert_int_equal(knit_ratelimit_init(&l, 1e-9, 1), 0);

    /* All-zero storage: a limiter with burst 0. */
    memset(&l, 0, sizeof(l));
    assert_int_equal(knit_ratelimit_acquire(&l, 1), -EINVAL);
    assert_int_equal(knit_ratelimit_try_acquire(&l, 1), -EINVAL);
    assert_int_equal(knit_ratelimit_available(&l), 0);

    assert_int_equal(knit_ratelimit_init(&l, 10, 2), 0);
    assert_int_equal(knit_ratelimit_acquire(&l, 3), -EINVAL);
    assert_int_equal(knit_ratelimit_available(&l), 2);
    assert_int_equal(knit_ratelimit_set_rate(&l, 0, 2), -EINVAL);
    assert_int_equal(knit_ratelimit_set_rate(&l, 10, 0), -EINVAL);
    assert_int_equal(knit_ratelimit_available(&l), 2);
    assert_int_equal(knit_ratelimit_acquire(&l, 2), 0);
    assert_int_equal(knit_now(), 0);
    return 0;
}

static void bucket_rejects_bad_rates_bursts_and_requests(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bucket_einval, NULL), 0);
}

static int t_bucket_set_rate(void *arg)
{
    (void)arg;
    knit_ratelimit l;
    assert_int_equal(knit_ratelimit_init(&l, 1, 1), 0);
    assert_int_equal(knit_ratelimit_acquire(&l, 1), 0);
    struct acq a = {.lim = &l, .n = 1};
    knit_task *t = go(&a);
    assert_int_equal(knit_sleep(100), 0);
    /* At 100 the bucket holds 0.1 token; at 10/s the rest takes 90 ms,
     * and the waiter, due at 1000, recomputes. */
    assert_int_equal(knit_ratelimit_set_rate(&l, 10, 1), 0);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(a.at, 190);

    /* Lowering the rate slows the waiter down; the tokens held stay. */
    assert_int_equal(knit_ratelimit_init(&l, 10, 4), 0);
    assert_int_equal(knit_ratelimit_acquire(&l, 4), 0);
    int64_t t0 = knit_now();
    a = (struct acq){.lim = &l, .n = 2};
    t = go(&a);
    assert_int_equal(knit_sleep(50), 0);                    /* 0.5 token held */
    assert_int_equal(knit_ratelimit_set_rate(&l, 2, 4), 0); /* 500 ms each */
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(a.at - t0, 50 + 750); /* 1.5 more tokens */

    /* A smaller burst caps what is held, and fails a waiter that now
     * asks for more than the bucket can hold. */
    assert_int_equal(knit_sleep(10000), 0);
    assert_int_equal(knit_ratelimit_available(&l), 4);
    assert_int_equal(knit_ratelimit_set_rate(&l, 2, 2), 0);
    assert_int_equal(knit_ratelimit_available(&l), 2);
    assert_int_equal(knit_ratelimit_set_rate(&l, 2, 4), 0);
    assert_int_equal(knit_ratelimit_available(&l), 2);
    a = (struct acq){.lim = &l, .n = 4};
    t = go(&a);
    assert_int_equal(knit_sleep(10), 0);
    assert_int_equal(knit_ratelimit_set_rate(&l, 2, 3), 0);
    assert_int_equal(knit_join(t), -EINVAL);
    return 0;
}

static void bucket_set_rate_keeps_tokens_and_reschedules_the_head(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bucket_set_rate, NULL), 0);
}

/* Tokens come from the clock, not from a refill task: a seeded workload
 * of many tasks gives the same grants twice. */
struct storm {
    knit_ratelimit lim;
    int64_t at[64];
};

static int t_bucket_storm(void *arg)
{
    struct storm *s = arg;
    assert_int_equal(knit_ratelimit_init(&s->lim, 20, 4), 0);
    knit_group g;
    knit_group_init(&g, 0);
    struct acq a[64];
    for (int i = 0; i < 64; i++) {
        a[i] = (struct acq){.lim = &s->lim, .n = 1 + (unsigned)(i % 3)};
        a[i].result = 99;
        assert_int_equal(knit_group_spawn(&g, acq_task, &a[i]), 0);
        assert_int_equal(knit_sleep((int64_t)(knit_random() % 40)), 0);
    }
    assert_int_equal(knit_group_wait(&g), 0);
    int64_t prev = -1;
    unsigned tokens = 0;
    for (int i = 0; i < 64; i++) {
        s->at[i] = a[i].at;
        assert_true(a[i].at >= prev); /* FIFO: grants in arrival order */
        prev = a[i].at;
        tokens += a[i].n;
    }
    /* All but the first burst of tokens came at 20/s: 50 ms each. */
    assert_true(knit_now() >= (int64_t)(tokens - 4) * 50);
    return 0;
}

static void bucket_is_deterministic_under_a_seeded_workload(void **state)
{
    (void)state;
    struct storm a, b;
    assert_int_equal(kt_run(t_bucket_storm, &a), 0);
    assert_int_equal(kt_run(t_bucket_storm, &b), 0);
    assert_memory_equal(a.at, b.at, sizeof(a.at));
}

/* ---- the keyed limiter --------------------------------------------------- */

struct crawl {
    knit_keyed_ratelimit *k;
    const char *key;
    int64_t at[4];
};

static int crawl_task(void *arg)
{
    struct crawl *c = arg;
    for (int i = 0; i < 4; i++) {
        int err = knit_keyed_ratelimit_acquire(c->k, c->key, 1);
        if (err < 0)
            return err;
        c->at[i] = knit_now();
    }
    return 0;
}

static int t_keyed_independent(void *arg)
{
    (void)arg;
    knit_keyed_ratelimit *k = knit_keyed_ratelimit_new(10, 2, KNIT_FOREVER);
    assert_non_null(k);
    assert_int_equal(knit_keyed_ratelimit_size(k), 0);
    struct crawl a = {.k = k, .key = "a.example"};
    struct crawl b = {.k = k, .key = "b.example"};
    knit_task *ta = knit_spawn(crawl_task, &a);
    knit_task *tb = knit_spawn(crawl_task, &b);
    assert_int_equal(knit_join(ta), 0);
    assert_int_equal(knit_join(tb), 0);
    /* Each host gets its own burst of 2 and its own 10/s. */
    int64_t want[] = {0, 0, 100, 200};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(a.at[i], want[i]);
        assert_int_equal(b.at[i], want[i]);
    }
    assert_int_equal(knit_keyed_ratelimit_size(k), 2);
    assert_int_equal(knit_keyed_ratelimit_try_acquire(k, "a.example", 1),
                     -EAGAIN);
    assert_int_equal(knit_keyed_ratelimit_try_acquire(k, "c.example", 2), 0);
    assert_int_equal(knit_keyed_ratelimit_try_acquire(k, "c.example", 3),
                     -EINVAL);
    assert_int_equal(knit_keyed_ratelimit_acquire(k, "c.example", 3), -EINVAL);
    assert_int_equal(knit_keyed_ratelimit_acquire(k, NULL, 1), -EINVAL);
    assert_int_equal(knit_keyed_ratelimit_try_acquire(k, NULL, 1), -EINVAL);
    assert_int_equal(knit_keyed_ratelimit_size(k), 3);
    /* Keys are compared exactly. */
    assert_int_equal(knit_keyed_ratelimit_try_acquire(k, "C.example", 2), 0);
    assert_int_equal(knit_keyed_ratelimit_size(k), 4);
    knit_keyed_ratelimit_free(k);
    knit_keyed_ratelimit_free(NULL);

    assert_null(knit_keyed_ratelimit_new(0, 1, 0));
    assert_null(knit_keyed_ratelimit_new(1, 0, 0));
    assert_null(knit_keyed_ratelimit_new(NAN, 1, 0));
    return 0;
}

static void keyed_limits_each_key_on_its_own(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_keyed_independent, NULL), 0);
}

static int t_keyed_evict(void *arg)
{
    (void)arg;
    knit_keyed_ratelimit *k = knit_keyed_ratelimit_new(10, 2, 1000);
    assert_non_null(k);
    assert_int_equal(knit_keyed_ratelimit_acquire(k, "a", 2), 0);
    assert_int_equal(knit_keyed_ratelimit_size(k), 1);
    /* Full again at 200, but used less than 1000 ms ago until 1000. */
    assert_int_equal(knit_sleep(999), 0);
    assert_int_equal(knit_keyed_ratelimit_size(k), 1);
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(knit_keyed_ratelimit_size(k), 0);
    /* Coming back, the key starts full, as it would have been. */
    assert_int_equal(knit_keyed_ratelimit_try_acquire(k, "a", 2), 0);
    assert_int_equal(knit_keyed_ratelimit_size(k), 1);

    /* Idle but not yet full: kept until the bucket has refilled. */
    knit_keyed_ratelimit *slow = knit_keyed_ratelimit_new(0.5, 2, 100);
    assert_non_null(slow);
    int64_t t0 = knit_now();
    assert_int_equal(knit_keyed_ratelimit_acquire(slow, "s", 2), 0);
    assert_int_equal(knit_sleep(200), 0);
    assert_int_equal(knit_keyed_ratelimit_size(slow), 1);
    assert_int_equal(knit_sleep(3799), 0);
    assert_int_equal(knit_keyed_ratelimit_size(slow), 1);
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(knit_now() - t0, 4000);
    assert_int_equal(knit_keyed_ratelimit_size(slow), 0);
    knit_keyed_ratelimit_free(slow);

    /* Many keys: the table grows; then they all expire and the sweep run
     * by the next call frees them (ASan would report a leak or a double
     * free otherwise). */
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "host-%d", i);
        assert_int_equal(knit_keyed_ratelimit_try_acquire(k, key, 1), 0);
    }
    /* 1000: "a", idle and full since the slow part, no longer counts. */
    assert_int_equal(knit_keyed_ratelimit_size(k), 1000);
    for (int i = 0; i < 1000; i += 7) {
        snprintf(key, sizeof(key), "host-%d", i);
        assert_int_equal(knit_keyed_ratelimit_try_acquire(k, key, 1), 0);
        assert_int_equal(knit_keyed_ratelimit_try_acquire(k, key, 1), -EAGAIN);
    }
    assert_int_equal(knit_sleep(1000), 0);
    assert_int_equal(knit_keyed_ratelimit_size(k), 0);
    assert_int_equal(knit_keyed_ratelimit_try_acquire(k, "fresh", 1), 0);
    assert_int_equal(knit_keyed_ratelimit_size(k), 1);
    knit_keyed_ratelimit_free(k);

    /* idle_ms < 0: never evicted. */
    k = knit_keyed_ratelimit_new(10, 1, KNIT_FOREVER);
    assert_non_null(k);
    assert_int_equal(knit_keyed_ratelimit_try_acquire(k, "x", 1), 0);
    assert_int_equal(knit_sleep(100000), 0);
    assert_int_equal(knit_keyed_ratelimit_size(k), 1);
    knit_keyed_ratelimit_free(k);
    return 0;
}

static void keyed_evicts_a_key_idle_and_full_and_size_drops(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_keyed_evict, NULL), 0);
}

static int t_keyed_set_rate(void *arg)
{
    (void)arg;
    knit_keyed_ratelimit *k = knit_keyed_ratelimit_new(10, 1, 100);
    assert_non_null(k);
    /* Crawl-delay: 2 for this host, set before its first request. */
    assert_int_equal(knit_keyed_ratelimit_set_rate(k, "slow", 0.5, 1), 0);
    assert_int_equal(knit_keyed_ratelimit_size(k), 1);
    struct crawl s = {.k = k, .key = "slow"};
    struct crawl f = {.k = k, .key = "fast"};
    knit_task *ts = knit_spawn(crawl_task, &s);
    knit_task *tf = knit_spawn(crawl_task, &f);
    assert_int_equal(knit_join(ts), 0);
    assert_int_equal(knit_join(tf), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s.at[i], 2000 * i);
        assert_int_equal(f.at[i], 100 * i);
    }
    /* The override outlives idleness: the key is pinned. */
    assert_int_equal(knit_sleep(100000), 0);
    assert_int_equal(knit_keyed_ratelimit_size(k), 1);
    assert_int_equal(knit_keyed_ratelimit_try_acquire(k, "slow", 1), 0);
    assert_int_equal(knit_keyed_ratelimit_try_acquire(k, "slow", 1), -EAGAIN);
    int64_t t0 = knit_now();
    assert_int_equal(knit_keyed_ratelimit_acquire(k, "slow", 1), 0);
    assert_int_equal(knit_now() - t0, 2000);

    assert_int_equal(knit_keyed_ratelimit_set_rate(k, "slow", -1, 1), -EINVAL);
    assert_int_equal(knit_keyed_ratelimit_set_rate(k, "slow", 1, 0), -EINVAL);
    assert_int_equal(knit_keyed_ratelimit_set_rate(k, NULL, 1, 1), -EINVAL);
    assert_int_equal(knit_keyed_ratelimit_set_rate(k, "none", 0, 0), 0);
    assert_int_equal(knit_keyed_ratelimit_size(k), 1); /* "none" not made */

    /* Rate 0 restores the defaults and unpins: after 100 ms idle (and
     * full at 10/s), the key goes. */
    assert_int_equal(knit_keyed_ratelimit_set_rate(k, "slow", 0, 0), 0);
    t0 = knit_now();
    assert_int_equal(knit_keyed_ratelimit_acquire(k, "slow", 1), 0);
    assert_int_equal(knit_now() - t0, 100);
    assert_int_equal(knit_sleep(100), 0);
    assert_int_equal(knit_keyed_ratelimit_size(k), 0);

    /* A burst override: 3 at once for this key. */
    assert_int_equal(knit_keyed_ratelimit_set_rate(k, "big", 10, 3), 0);
    assert_int_equal(knit_keyed_ratelimit_try_acquire(k, "big", 3), 0);
    assert_int_equal(knit_keyed_ratelimit_try_acquire(k, "small", 3), -EINVAL);
    knit_keyed_ratelimit_free(k);
    return 0;
}

static void keyed_set_rate_overrides_one_key_and_pins_it(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_keyed_set_rate, NULL), 0);
}

/* B sleeps to 100 and then uses another key, which sweeps; by then A has
 * been due its token on "h" at 100, so "h" is idle-enough (idle_ms 0) and
 * full, but A is still inside its acquire: "h" must stay. */
struct sweeper {
    knit_keyed_ratelimit *k;
    size_t size_seen; /* size() at 100, before A ran */
    int result;
};

static int sweeper_task(void *arg)
{
    struct sweeper *s = arg;
    int err = knit_sleep(100);
    if (err < 0)
        return err;
    s->size_seen = knit_keyed_ratelimit_size(s->k);
    s->result = knit_keyed_ratelimit_try_acquire(s->k, "other", 1);
    return 0;
}

static int t_keyed_no_evict_waiting(void *arg)
{
    (void)arg;
    knit_keyed_ratelimit *k = knit_keyed_ratelimit_new(10, 1, 0);
    assert_non_null(k);
    struct sweeper sw = {.k = k, .result = 99};
    knit_task *ts = knit_spawn(sweeper_task, &sw);
    kt_settle(); /* its timer is armed first */
    assert_int_equal(knit_keyed_ratelimit_acquire(k, "h", 1), 0);
    struct acq a = {.keyed = k, .key = "h", .n = 1};
    knit_task *ta = go(&a);
    assert_int_equal(knit_join(ts), 0);
    assert_int_equal(knit_join(ta), 0);
    assert_int_equal(sw.result, 0);
    assert_int_equal(sw.size_seen, 1); /* "h", held by its waiter */
    assert_int_equal(a.at, 100);

    /* A cancelled keyed waiter: nothing taken, the key still works. */
    a = (struct acq){.keyed = k, .key = "h", .n = 1};
    ta = go(&a);
    assert_int_equal(knit_sleep(50), 0);
    /* "h" with its waiter, and "other", refilling until 200. */
    assert_int_equal(knit_keyed_ratelimit_size(k), 2);
    knit_cancel(ta);
    assert_int_equal(knit_join(ta), -ECANCELED);
    assert_int_equal(knit_keyed_ratelimit_acquire(k, "h", 1), 0);
    assert_int_equal(knit_now(), 200);
    knit_keyed_ratelimit_free(k);
    return 0;
}

static void keyed_never_evicts_a_key_with_a_waiter(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_keyed_no_evict_waiting, NULL), 0);
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

static knit_ratelimit doomed;

static int wait_doomed(void *arg)
{
    (void)arg;
    return knit_ratelimit_acquire(&doomed, 1);
}

static int t_destroy_waited(void *arg)
{
    (void)arg;
    assert_int_equal(knit_ratelimit_init(&doomed, 1, 1), 0);
    assert_int_equal(knit_ratelimit_acquire(&doomed, 1), 0);
    knit_task *t = knit_spawn(wait_doomed, NULL);
    assert_int_equal(knit_sleep(10), 0);
    knit_ratelimit_destroy(&doomed); /* misuse: t waits on it */
    return knit_join(t);
}

static void bucket_destroy_with_a_waiter_panics(void **state)
{
    (void)state;
    expect_panic(t_destroy_waited, "knit: knit_ratelimit_destroy: tasks are "
                                   "waiting on the limiter (in task 1");
}

static knit_keyed_ratelimit *doomed_keyed;

static int wait_doomed_keyed(void *arg)
{
    (void)arg;
    return knit_keyed_ratelimit_acquire(doomed_keyed, "h", 1);
}

static int t_free_waited(void *arg)
{
    (void)arg;
    doomed_keyed = knit_keyed_ratelimit_new(1, 1, 0);
    assert_non_null(doomed_keyed);
    assert_int_equal(knit_keyed_ratelimit_acquire(doomed_keyed, "h", 1), 0);
    knit_task *t = knit_spawn(wait_doomed_keyed, NULL);
    assert_int_equal(knit_sleep(10), 0);
    knit_keyed_ratelimit_free(doomed_keyed); /* misuse */
    return knit_join(t);
}

static void keyed_free_with_a_waiter_panics(void **state)
{
    (void)state;
    expect_panic(t_free_waited, "knit: knit_keyed_ratelimit_free: tasks are "
                                "waiting on the limiter");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_without_jitter_doubles_up_to_the_cap),
        cmocka_unit_test(backoff_stops_after_max_attempts_and_reset_restarts),
        cmocka_unit_test(backoff_hint_wins_when_longer_even_above_the_cap),
        cmocka_unit_test(backoff_factor_compounds_and_below_one_is_constant),
        cmocka_unit_test(backoff_full_jitter_stays_in_range_and_is_seeded),
        cmocka_unit_test(
            backoff_decorrelated_jitter_stays_in_range_and_is_seeded),
        cmocka_unit_test(retry_succeeds_on_the_third_attempt_at_exact_times),
        cmocka_unit_test(retry_stops_at_once_on_a_non_retryable_error),
        cmocka_unit_test(retry_out_of_attempts_returns_the_last_error),
        cmocka_unit_test(retry_waits_as_long_as_the_server_asks),
        cmocka_unit_test(
            retry_ends_at_once_when_the_deadline_would_pass_in_the_wait),
        cmocka_unit_test(retry_cancelled_while_waiting_returns_ecanceled),
        cmocka_unit_test(retry_cancellation_outranks_the_deadline),
        cmocka_unit_test(retry_with_jitter_waits_the_same_under_a_fixed_seed),
        cmocka_unit_test(bucket_gives_the_burst_at_once_then_the_rate),
        cmocka_unit_test(bucket_acquire_of_n_waits_for_n_tokens),
        cmocka_unit_test(
            bucket_try_acquire_never_takes_what_the_queue_waits_for),
        cmocka_unit_test(bucket_serves_waiters_in_fifo_order),
        cmocka_unit_test(
            bucket_cancelled_head_loses_no_token_and_lets_the_next_go),
        cmocka_unit_test(
            bucket_timed_out_head_loses_no_token_and_lets_the_next_go),
        cmocka_unit_test(bucket_cancelled_queued_waiter_blocks_nobody),
        cmocka_unit_test(bucket_timed_out_queued_waiter_blocks_nobody),
        cmocka_unit_test(bucket_acquire_in_an_expiring_scope_takes_nothing),
        cmocka_unit_test(bucket_rejects_bad_rates_bursts_and_requests),
        cmocka_unit_test(bucket_set_rate_keeps_tokens_and_reschedules_the_head),
        cmocka_unit_test(bucket_is_deterministic_under_a_seeded_workload),
        cmocka_unit_test(keyed_limits_each_key_on_its_own),
        cmocka_unit_test(keyed_evicts_a_key_idle_and_full_and_size_drops),
        cmocka_unit_test(keyed_set_rate_overrides_one_key_and_pins_it),
        cmocka_unit_test(keyed_never_evicts_a_key_with_a_waiter),
        cmocka_unit_test(bucket_destroy_with_a_waiter_panics),
        cmocka_unit_test(keyed_free_with_a_waiter_panics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
