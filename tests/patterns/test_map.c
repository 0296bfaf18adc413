// SPDX-License-Identifier: MIT
/*
 * Bounded concurrency (knit/patterns/map.h): the collecting forms over an
 * array and a channel, then the stream in both orders, then the error
 * policies, cancellation and misuse. Every item's work is a sleep on the
 * manual clock, so each test asserts the exact time every item started
 * and ended, and the most items in progress at once.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "kt.h"

#define MAXN 32
#define NOT_RUN 1 /* in seen[]: the item's fn was never called */

/* What the items of one test do and what they saw. */
struct jobs {
    const int64_t *work; /* ms each item sleeps; NULL: none */
    const int *fail;     /* what each returns after its sleep; NULL: 0 */
    /* Atomics: the calls may run on several workers at once. */
    atomic_int inflight;     /* calls in progress now */
    atomic_int max_inflight; /* the most at once */
    atomic_int calls;        /* calls made */
    size_t order[MAXN];      /* indices in the order the calls started */
    int64_t start[MAXN];     /* when each started */
    int64_t end[MAXN];       /* when each returned */
    int seen[MAXN];          /* what its sleep returned; NOT_RUN */
    int item[MAXN];          /* the item it was given (-1: NULL) */
};

static void jobs_init(struct jobs *j, const int64_t *work, const int *fail)
{
    memset(j, 0, sizeof(*j));
    j->work = work;
    j->fail = fail;
    for (int i = 0; i < MAXN; i++) {
        j->seen[i] = NOT_RUN;
        j->start[i] = j->end[i] = -1;
    }
}

/* Sleeps work[i], then writes item * 10 (or i * 10) into the result. */
static int job(void *ctx, size_t i, void *item, void *result)
{
    struct jobs *j = ctx;
    assert_true(i < MAXN);
    j->order[atomic_fetch_add(&j->calls, 1)] = i;
    j->start[i] = knit_now();
    j->item[i] = item ? *(int *)item : -1;
    int now = atomic_fetch_add(&j->inflight, 1) + 1;
    int max = atomic_load(&j->max_inflight);
    while (now > max &&
           !atomic_compare_exchange_weak(&j->max_inflight, &max, now)) {
    }
    int err = knit_sleep(j->work ? j->work[i] : 0);
    atomic_fetch_sub(&j->inflight, 1);
    j->seen[i] = err;
    j->end[i] = knit_now();
    if (err < 0)
        return err;
    if (result)
        *(int *)result = (item ? *(int *)item : (int)i) * 10;
    return j->fail ? j->fail[i] : 0;
}

static void expect_i64(const int64_t *got, const int64_t *want, int n,
                       const char *what)
{
    for (int i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("%s[%d]: got %lld, want %lld", what, i, (long long)got[i],
                     (long long)want[i]);
}

static void expect_int(const int *got, const int *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("%s[%d]: got %d, want %d", what, i, got[i], want[i]);
}

static int items10[MAXN] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10,
                            11, 12, 13, 14, 15, 16, 17, 18, 19, 20};

/* ---- the collecting form over an array ---------------------------------- */

/* Whether @order holds 0 .. n - 1, each once. */
static bool is_permutation(const size_t *order, size_t n)
{
    bool seen[MAXN] = {false};
    for (size_t i = 0; i < n; i++) {
        if (order[i] >= n || seen[order[i]])
            return false;
        seen[order[i]] = true;
    }
    return true;
}

static int t_limit(void *arg)
{
    (void)arg;
    /* 10 items of 10 ms, 4 at a time: starts at 0, 0, 0, 0, 10, ... */
    static const int64_t work[10] = {10, 10, 10, 10, 10, 10, 10, 10, 10, 10};
    struct jobs j;
    jobs_init(&j, work, NULL);
    int res[10];
    int st[10];
    knit_map_opts o = {.limit = 4};
    assert_int_equal(knit_map_concurrent(&o, items10, 10, sizeof(int), res,
                                         sizeof(int), st, job, &j),
                     0);
    assert_int_equal(knit_now(), 30);
    assert_int_equal(j.max_inflight, 4);
    assert_int_equal(j.calls, 10);
    static const int64_t start[10] = {0, 0, 0, 0, 10, 10, 10, 10, 20, 20};
    expect_i64(j.start, start, 10, "start");
    for (int i = 0; i < 10; i++) {
        assert_int_equal(res[i], i * 10);
        assert_int_equal(st[i], 0);
        /* Started in input order: taken so, and on one worker also
         * called so (on several, the calls race to the log). */
        if (kt_workers() == 1)
            assert_int_equal(j.order[i], i);
    }
    assert_true(is_permutation(j.order, 10));
    return 0;
}

static void map_never_exceeds_the_limit_and_fills_every_slot(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_limit, NULL), 0);
}

static int t_limit_uneven(void *arg)
{
    (void)arg;
    /* Uneven work, limit 3: each item starts when a call returns. */
    static const int64_t work[8] = {50, 10, 30, 20, 40, 10, 10, 5};
    struct jobs j;
    jobs_init(&j, work, NULL);
    knit_map_opts o = {.limit = 3};
    assert_int_equal(
        knit_map_concurrent(&o, NULL, 8, 0, NULL, 0, NULL, job, &j), 0);
    /* 0:0-50 1:0-10 2:0-30 3:10-30 4:30-70 5:30-40 6:40-50 7:50-55 */
    static const int64_t start[8] = {0, 0, 0, 10, 30, 30, 40, 50};
    static const int64_t end[8] = {50, 10, 30, 30, 70, 40, 50, 55};
    expect_i64(j.start, start, 8, "start");
    expect_i64(j.end, end, 8, "end");
    assert_int_equal(knit_now(), 70);
    assert_int_equal(j.max_inflight, 3);
    for (int i = 0; i < 8; i++)
        assert_int_equal(j.item[i], -1); /* NULL items: a parallel for */
    return 0;
}

static void map_starts_each_item_when_a_call_returns(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_limit_uneven, NULL), 0);
}

static int t_collect(void *arg)
{
    (void)arg;
    static const int64_t work[6] = {30, 10, 20, 40, 10, 10};
    static const int fail[6] = {0, -EIO, 0, -ENOENT, 0, 7};
    struct jobs j;
    jobs_init(&j, work, fail);
    int res[6] = {0};
    int st[6];
    knit_map_opts o = {.limit = 2};
    /* Two failures: every item still ran, and the count is returned. */
    assert_int_equal(knit_map_concurrent(&o, items10, 6, sizeof(int), res,
                                         sizeof(int), st, job, &j),
                     2);
    static const int want[6] = {0, -EIO, 0, -ENOENT, 0, 7};
    expect_int(st, want, 6, "status");
    assert_int_equal(j.calls, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(j.seen[i], 0); /* nobody was cancelled */
        assert_int_equal(res[i], i * 10);
    }
    /* 0:0-30 1:0-10 2:10-30 3:30-70 4:30-40 5:40-50 */
    assert_int_equal(knit_now(), 70);
    return 0;
}

static void map_collect_mode_runs_every_item_and_counts_failures(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_collect, NULL), 0);
}

static int t_fail_fast(void *arg)
{
    (void)arg;
    /* Item 1 fails at 20 ms while 0 and 2 still sleep; 3..7 never start. */
    static const int64_t work[8] = {100, 20, 100, 5, 5, 5, 5, 5};
    static const int fail[8] = {0, -EIO, 0, 0, 0, 0, 0, 0};
    struct jobs j;
    jobs_init(&j, work, fail);
    int st[8];
    knit_map_opts o = {.limit = 3, .fail_fast = true};
    assert_int_equal(
        knit_map_concurrent(&o, items10, 8, sizeof(int), NULL, 0, st, job, &j),
        -EIO);
    assert_int_equal(knit_now(), 20);
    assert_int_equal(j.calls, 3);
    /* The siblings saw -ECANCELED in their sleep, at 20 ms. */
    assert_int_equal(j.seen[0], -ECANCELED);
    assert_int_equal(j.seen[2], -ECANCELED);
    assert_int_equal(j.end[0], 20);
    assert_int_equal(j.end[2], 20);
    static const int want[8] = {-ECANCELED, -EIO,       -ECANCELED, -ECANCELED,
                                -ECANCELED, -ECANCELED, -ECANCELED, -ECANCELED};
    expect_int(st, want, 8, "status");
    for (int i = 3; i < 8; i++)
        assert_int_equal(j.seen[i], NOT_RUN);
    return 0;
}

static void
map_fail_fast_cancels_siblings_and_returns_the_first_error(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_fail_fast, NULL), 0);
}

static int t_fail_fast_ok(void *arg)
{
    (void)arg;
    static const int64_t work[4] = {10, 20, 30, 40};
    static const int fail[4] = {1, 2, 3, 4}; /* >= 0 is success */
    struct jobs j;
    jobs_init(&j, work, fail);
    int st[4];
    knit_map_opts o = {.limit = 2, .fail_fast = true};
    assert_int_equal(knit_map_concurrent(&o, NULL, 4, 0, NULL, 0, st, job, &j),
                     0);
    expect_int(st, fail, 4, "status");
    assert_int_equal(knit_now(), 60); /* 0:0-10 1:0-20 2:10-40 3:20-60 */
    return 0;
}

static void map_fail_fast_without_failure_returns_zero(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_fail_fast_ok, NULL), 0);
}

/* Runs a map of 8 items of 10 ms, 2 at a time, in a task of its own. */
struct caller {
    struct jobs j;
    int st[8];
    ssize_t result;
    int64_t deadline; /* KNIT_FOREVER: none */
    int64_t at;       /* when the map returned */
};

static int map_caller(void *arg)
{
    struct caller *c = arg;
    static const int64_t work[8] = {10, 10, 10, 10, 10, 10, 10, 10};
    jobs_init(&c->j, work, NULL);
    knit_map_opts o = {.limit = 2};
    knit_scope s;
    knit_scope_enter(&s, c->deadline);
    c->result = knit_map_concurrent(&o, items10, 8, sizeof(int), NULL, 0, c->st,
                                    job, &c->j);
    (void)knit_scope_exit(&s);
    c->at = knit_now();
    return 0;
}

static void expect_stopped_at_25(struct caller *c, int err)
{
    assert_int_equal(c->result, err);
    assert_int_equal(c->at, 25);
    /* 0-3 ran; 4 and 5 were running at 25 and saw -ECANCELED; 6 and 7
     * never started. */
    assert_int_equal(c->j.calls, 6);
    static const int want[8] = {0,          0,          0,          0,
                                -ECANCELED, -ECANCELED, -ECANCELED, -ECANCELED};
    expect_int(c->st, want, 8, "status");
    assert_int_equal(c->j.seen[4], -ECANCELED);
    assert_int_equal(c->j.seen[5], -ECANCELED);
    assert_int_equal(c->j.end[4], 25);
    assert_int_equal(c->j.seen[6], NOT_RUN);
}

static int t_cancel_caller(void *arg)
{
    (void)arg;
    struct caller c = {.deadline = KNIT_FOREVER};
    knit_task *t = knit_spawn(map_caller, &c);
    assert_non_null(t);
    assert_int_equal(knit_sleep(25), 0);
    knit_cancel(t);
    assert_int_equal(knit_join(t), 0);
    expect_stopped_at_25(&c, -ECANCELED);
    return 0;
}

static void map_cancelling_the_caller_cancels_items_in_progress(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel_caller, NULL), 0);
}

static int t_deadline(void *arg)
{
    (void)arg;
    struct caller c = {.deadline = 25};
    map_caller(&c);
    expect_stopped_at_25(&c, -ETIMEDOUT);
    return 0;
}

static void map_scope_deadline_returns_etimedout(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_deadline, NULL), 0);
}

static int t_fired_scope(void *arg)
{
    (void)arg;
    struct jobs j;
    jobs_init(&j, NULL, NULL);
    knit_map_opts o = {.limit = 2};
    knit_scope s;
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_cancel(&s);
    assert_int_equal(
        knit_map_concurrent(&o, NULL, 4, 0, NULL, 0, NULL, job, &j),
        -ECANCELED);
    assert_int_equal(knit_scope_exit(&s), -ECANCELED);
    assert_int_equal(j.calls, 0); /* no item started */
    return 0;
}

static void map_in_a_fired_scope_starts_nothing(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_fired_scope, NULL), 0);
}

/* ---- empty input, bad arguments ----------------------------------------- */

static int t_empty(void *arg)
{
    (void)arg;
    struct jobs j;
    jobs_init(&j, NULL, NULL);
    knit_map_opts o = {.limit = 3};
    assert_int_equal(
        knit_map_concurrent(&o, NULL, 0, 0, NULL, 0, NULL, job, &j), 0);
    knit_map *m;
    assert_int_equal(knit_map_start(&m, &o, NULL, 0, 0, sizeof(int), job, &j),
                     0);
    assert_int_equal(knit_map_next(m, NULL, NULL, NULL), -EPIPE);
    assert_int_equal(knit_map_next(m, NULL, NULL, NULL), -EPIPE);
    knit_map_free(m);
    knit_chan *c = knit_chan_new(sizeof(int), 1);
    assert_non_null(c);
    knit_chan_close(c);
    assert_int_equal(knit_map_concurrent_chan(&o, c, sizeof(int), job, &j), 0);
    assert_int_equal(knit_map_start_chan(&m, &o, c, sizeof(int), 0, job, &j),
                     0);
    assert_int_equal(knit_map_next(m, NULL, NULL, NULL), -EPIPE);
    knit_map_free(m);
    knit_chan_unref(c);
    assert_int_equal(j.calls, 0);
    assert_int_equal(knit_now(), 0);
    return 0;
}

static void map_empty_input_returns_at_once(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_empty, NULL), 0);
}

static int t_einval(void *arg)
{
    (void)arg;
    struct jobs j;
    jobs_init(&j, NULL, NULL);
    knit_map_opts zero = {.limit = 0};
    knit_map_opts ok = {.limit = 2};
    int st[3] = {5, 5, 5};
    knit_map *m = (knit_map *)&j; /* must stay untouched */
    knit_chan *c = knit_chan_new(sizeof(int), 1);
    assert_non_null(c);
    assert_int_equal(knit_map_concurrent(&zero, items10, 3, sizeof(int), NULL,
                                         0, st, job, &j),
                     -EINVAL);
    assert_int_equal(st[0], 5); /* a failed call has no effect */
    assert_int_equal(knit_map_concurrent(&ok, items10, 3, sizeof(int), NULL, 0,
                                         NULL, NULL, &j),
                     -EINVAL);
    assert_int_equal(knit_map_concurrent(NULL, items10, 3, sizeof(int), NULL, 0,
                                         NULL, job, &j),
                     -EINVAL);
    assert_int_equal(knit_map_concurrent_chan(&zero, c, sizeof(int), job, &j),
                     -EINVAL);
    assert_int_equal(knit_map_concurrent_chan(&ok, c, sizeof(int), NULL, &j),
                     -EINVAL);
    assert_int_equal(knit_map_concurrent_chan(&ok, NULL, sizeof(int), job, &j),
                     -EINVAL);
    assert_int_equal(knit_map_concurrent_chan(&ok, c, 0, job, &j), -EINVAL);
    assert_int_equal(knit_map_start(&m, &zero, NULL, 3, 0, 0, job, &j),
                     -EINVAL);
    assert_int_equal(knit_map_start(&m, &ok, NULL, 3, 0, 0, NULL, &j), -EINVAL);
    assert_int_equal(knit_map_start(NULL, &ok, NULL, 3, 0, 0, job, &j),
                     -EINVAL);
    assert_int_equal(knit_map_start_chan(&m, &zero, c, sizeof(int), 0, job, &j),
                     -EINVAL);
    assert_int_equal(knit_map_start_chan(&m, &ok, c, sizeof(int), 0, NULL, &j),
                     -EINVAL);
    assert_int_equal(
        knit_map_start_chan(&m, &ok, NULL, sizeof(int), 0, job, &j), -EINVAL);
    assert_int_equal(knit_map_start_chan(&m, &ok, c, 0, 0, job, &j), -EINVAL);
    assert_ptr_equal(m, (knit_map *)&j);
    assert_int_equal(knit_map_next(NULL, NULL, NULL, NULL), -EINVAL);
    knit_map_free(NULL);
    knit_chan_unref(c);
    assert_int_equal(j.calls, 0);
    return 0;
}

static void map_rejects_zero_limit_and_null_fn(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_einval, NULL), 0);
}

static int t_enomem(void *arg)
{
    (void)arg;
    struct jobs j;
    jobs_init(&j, NULL, NULL);
    knit_map *m = NULL;
    knit_chan *c = knit_chan_new(sizeof(int), 1);
    assert_non_null(c);
    /* A worker record each for more workers than memory can hold. */
    knit_map_opts huge = {.limit = SIZE_MAX / 2};
    assert_int_equal(knit_map_start_chan(&m, &huge, c, sizeof(int), 0, job, &j),
                     -ENOMEM);
    assert_int_equal(knit_map_concurrent_chan(&huge, c, sizeof(int), job, &j),
                     -ENOMEM);
    /* A result buffer too large for any allocation. */
    knit_map_opts ok = {.limit = 2};
    assert_int_equal(knit_map_start(&m, &ok, NULL, 4, 0, SIZE_MAX - 8, job, &j),
                     -ENOMEM);
    assert_int_equal(knit_map_start_chan(&m, &ok, c, SIZE_MAX - 8, 0, job, &j),
                     -ENOMEM);
    assert_null(m);
    knit_chan_unref(c); /* the failed calls kept no reference */
    assert_int_equal(j.calls, 0);
    return 0;
}

static void map_too_large_to_allocate_returns_enomem(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_enomem, NULL), 0);
}

/* ---- the stream --------------------------------------------------------- */

/* Takes every result of @m, recording index, status, value and time. */
struct taken {
    int n;
    size_t index[MAXN];
    int status[MAXN];
    int value[MAXN];
    int64_t at[MAXN];
};

static int take_all(knit_map *m, struct taken *t)
{
    int err;
    memset(t, 0, sizeof(*t));
    for (;;) {
        int v = -1;
        err = knit_map_next(m, &t->index[t->n], &t->status[t->n], &v);
        if (err < 0)
            break;
        t->value[t->n] = v;
        t->at[t->n++] = knit_now();
    }
    return err;
}

static void expect_taken(const struct taken *t, int n, const size_t *index,
                         const int64_t *at)
{
    assert_int_equal(t->n, n);
    for (int i = 0; i < n; i++) {
        if (t->index[i] != index[i])
            fail_msg("result %d: index %zu, want %zu", i, t->index[i],
                     index[i]);
        if (t->at[i] != at[i])
            fail_msg("result %d: at %lld, want %lld", i, (long long)t->at[i],
                     (long long)at[i]);
    }
}

static const int64_t stream_work[5] = {50, 10, 40, 20, 30};

static int t_unordered(void *arg)
{
    (void)arg;
    struct jobs j;
    jobs_init(&j, stream_work, NULL);
    knit_map_opts o = {.limit = 3};
    knit_map *m;
    assert_int_equal(
        knit_map_start(&m, &o, items10, 5, sizeof(int), sizeof(int), job, &j),
        0);
    struct taken t;
    assert_int_equal(take_all(m, &t), -EPIPE);
    /* Completion order: 1 ends at 10 and its slot takes 3 (10-30), which
     * frees it for 4 (30-60); 2 ends at 40, 0 at 50. */
    static const size_t index[5] = {1, 3, 2, 0, 4};
    static const int64_t at[5] = {10, 30, 40, 50, 60};
    expect_taken(&t, 5, index, at);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(t.value[i], (int)t.index[i] * 10);
        assert_int_equal(t.status[i], 0);
    }
    assert_int_equal(j.max_inflight, 3);
    assert_int_equal(knit_map_next(m, NULL, NULL, NULL), -EPIPE);
    knit_map_free(m);
    return 0;
}

static void map_stream_unordered_is_completion_order(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_unordered, NULL), 0);
}

static int t_ordered(void *arg)
{
    (void)arg;
    struct jobs j;
    jobs_init(&j, stream_work, NULL);
    knit_map_opts o = {.limit = 3, .ordered = true};
    knit_map *m;
    assert_int_equal(
        knit_map_start(&m, &o, items10, 5, sizeof(int), sizeof(int), job, &j),
        0);
    struct taken t;
    assert_int_equal(take_all(m, &t), -EPIPE);
    /* Input order. 1 and 2 finish first but wait, holding their slots,
     * for 0 (at 50): so 3 and 4 start only at 50 (tokio's buffered). */
    static const size_t index[5] = {0, 1, 2, 3, 4};
    static const int64_t at[5] = {50, 50, 50, 70, 80};
    expect_taken(&t, 5, index, at);
    static const int64_t start[5] = {0, 0, 0, 50, 50};
    expect_i64(j.start, start, 5, "start");
    for (int i = 0; i < 5; i++)
        assert_int_equal(t.value[i], i * 10);
    knit_map_free(m);
    return 0;
}

static void map_stream_ordered_delivers_in_input_order(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_ordered, NULL), 0);
}

static int t_slow_consumer(void *arg)
{
    (void)arg;
    /* Items are instant; the consumer takes 100 ms per result. */
    struct jobs j;
    jobs_init(&j, NULL, NULL);
    knit_map_opts o = {.limit = 2};
    knit_map *m;
    assert_int_equal(knit_map_start(&m, &o, NULL, 6, 0, 0, job, &j), 0);
    int taken = 0;
    int most_ahead = 0;
    size_t i;
    while (knit_map_next(m, &i, NULL, NULL) == 0) {
        taken++;
        /* Started but not taken: never more than the limit. On one
         * worker the worker whose result was just taken has not started
         * its next item yet; on several it may have. */
        int calls = j.calls;
        if (calls - taken > most_ahead)
            most_ahead = calls - taken;
        assert_true(calls - (taken - (kt_workers() == 1)) <= 2);
        assert_int_equal(knit_sleep(100), 0);
    }
    assert_int_equal(taken, 6);
    if (kt_workers() == 1)
        assert_int_equal(most_ahead, 1);
    assert_true(most_ahead >= 1 && most_ahead <= 2);
    /* Item k starts when result k - 2 has been taken. */
    static const int64_t start[6] = {0, 0, 0, 100, 200, 300};
    expect_i64(j.start, start, 6, "start");
    knit_map_free(m);
    return 0;
}

static void map_stream_slow_consumer_holds_the_map_back(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_slow_consumer, NULL), 0);
}

static int t_stream_collect(void *arg)
{
    (void)arg;
    static const int fail[5] = {0, -EIO, 0, -EBADMSG, 0};
    struct jobs j;
    jobs_init(&j, stream_work, fail);
    knit_map_opts o = {.limit = 3};
    knit_map *m;
    assert_int_equal(
        knit_map_start(&m, &o, items10, 5, sizeof(int), sizeof(int), job, &j),
        0);
    struct taken t;
    assert_int_equal(take_all(m, &t), -EPIPE);
    static const size_t index[5] = {1, 3, 2, 0, 4};
    static const int64_t at[5] = {10, 30, 40, 50, 60};
    expect_taken(&t, 5, index, at);
    static const int status[5] = {-EIO, -EBADMSG, 0, 0, 0};
    expect_int(t.status, status, 5, "status");
    knit_map_free(m);
    return 0;
}

static void map_stream_collect_mode_hands_back_every_failure(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_stream_collect, NULL), 0);
}

static int t_stream_fail_fast(void *arg)
{
    bool ordered = *(bool *)arg;
    /* Item 3 fails at 30 ms (it started at 10, when 1 ended). */
    static const int fail[5] = {0, 0, 0, -EIO, 0};
    struct jobs j;
    jobs_init(&j, stream_work, fail);
    knit_map_opts o = {.limit = 3, .ordered = ordered, .fail_fast = true};
    knit_map *m;
    assert_int_equal(
        knit_map_start(&m, &o, items10, 5, sizeof(int), sizeof(int), job, &j),
        0);
    struct taken t;
    assert_int_equal(take_all(m, &t), -EPIPE);
    if (ordered) {
        /* Input order: 1 and 2 wait for 0 (at 50), so 3 starts only at 50
         * and fails at 70, handed back after 0-2; 4 is cancelled. */
        static const size_t index[4] = {0, 1, 2, 3};
        static const int64_t at[4] = {50, 50, 50, 70};
        expect_taken(&t, 4, index, at);
        assert_int_equal(t.status[3], -EIO);
        knit_map_free(m);
        assert_int_equal(j.seen[4], -ECANCELED);
        assert_int_equal(j.end[4], 70);
        return 0;
    }
    /* Completion order: 1 at 10, then 3's failure at 30 ends the stream;
     * 0 and 2 were cancelled at 30 and 4 never started. */
    static const size_t index[2] = {1, 3};
    static const int64_t at[2] = {10, 30};
    expect_taken(&t, 2, index, at);
    assert_int_equal(t.status[0], 0);
    assert_int_equal(t.status[1], -EIO);
    /* The cancelled siblings unwind when they next run; free waits. */
    knit_map_free(m);
    assert_int_equal(knit_now(), 30);
    assert_int_equal(j.seen[0], -ECANCELED);
    assert_int_equal(j.seen[2], -ECANCELED);
    assert_int_equal(j.end[0], 30);
    assert_int_equal(j.seen[4], NOT_RUN);
    return 0;
}

static void map_stream_fail_fast_hands_back_the_failure_last(void **state)
{
    (void)state;
    bool ordered = false;
    assert_int_equal(kt_run(t_stream_fail_fast, &ordered), 0);
    ordered = true;
    assert_int_equal(kt_run(t_stream_fail_fast, &ordered), 0);
}

static int t_ordered_fail_fast(void *arg)
{
    (void)arg;
    /* Item 2 fails at 10 while 0 (the head) still runs: the failure is
     * handed back at once, out of order, and 0 and 1 are cancelled. */
    static const int64_t work[4] = {50, 30, 10, 10};
    static const int fail[4] = {0, 0, -EPROTO, 0};
    struct jobs j;
    jobs_init(&j, work, fail);
    knit_map_opts o = {.limit = 3, .ordered = true, .fail_fast = true};
    knit_map *m;
    assert_int_equal(knit_map_start(&m, &o, NULL, 4, 0, 0, job, &j), 0);
    size_t i = 99;
    int st = 0;
    assert_int_equal(knit_map_next(m, &i, &st, NULL), 0);
    assert_int_equal(i, 2);
    assert_int_equal(st, -EPROTO);
    assert_int_equal(knit_now(), 10);
    assert_int_equal(knit_map_next(m, &i, &st, NULL), -EPIPE);
    knit_map_free(m);
    assert_int_equal(knit_now(), 10);
    assert_int_equal(j.seen[0], -ECANCELED);
    assert_int_equal(j.seen[1], -ECANCELED);
    assert_int_equal(j.seen[3], NOT_RUN);
    return 0;
}

static void
map_stream_ordered_fail_fast_hands_back_the_failure_at_once(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_ordered_fail_fast, NULL), 0);
}

static int t_next_deadline(void *arg)
{
    (void)arg;
    struct jobs j;
    jobs_init(&j, stream_work, NULL);
    knit_map_opts o = {.limit = 3};
    knit_map *m;
    assert_int_equal(knit_map_start(&m, &o, NULL, 5, 0, sizeof(int), job, &j),
                     0);
    /* A deadline before the first result: -ETIMEDOUT, nothing taken. */
    knit_scope s;
    size_t i;
    knit_scope_enter(&s, knit_now() + 5);
    assert_int_equal(knit_map_next(m, &i, NULL, NULL), -ETIMEDOUT);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    assert_int_equal(knit_now(), 5);
    /* The map kept running: the first result is still there for us. */
    assert_int_equal(knit_map_next(m, &i, NULL, NULL), 0);
    assert_int_equal(i, 1);
    assert_int_equal(knit_now(), 10);
    /* A scope cancelled while parked: -ECANCELED, again nothing taken. */
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_cancel(&s);
    assert_int_equal(knit_map_next(m, &i, NULL, NULL), -ECANCELED);
    assert_int_equal(knit_scope_exit(&s), -ECANCELED);
    struct taken t;
    assert_int_equal(take_all(m, &t), -EPIPE);
    static const size_t index[4] = {3, 2, 0, 4};
    static const int64_t at[4] = {30, 40, 50, 60};
    expect_taken(&t, 4, index, at);
    knit_map_free(m);
    return 0;
}

static void map_stream_next_timed_out_or_cancelled_takes_nothing(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_next_deadline, NULL), 0);
}

static int canceller(void *arg)
{
    knit_scope *s = arg;
    int err = knit_sleep(15);
    knit_scope_cancel(s);
    return err;
}

static int t_next_cancel_parked(void *arg)
{
    (void)arg;
    struct jobs j;
    jobs_init(&j, stream_work, NULL);
    knit_map_opts o = {.limit = 1};
    knit_map *m;
    assert_int_equal(knit_map_start(&m, &o, NULL, 5, 0, 0, job, &j), 0);
    knit_scope s;
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_task *t = knit_spawn(canceller, &s);
    assert_non_null(t);
    assert_int_equal(knit_map_next(m, NULL, NULL, NULL), -ECANCELED);
    assert_int_equal(knit_now(), 15);
    assert_int_equal(knit_scope_exit(&s), -ECANCELED);
    assert_int_equal(knit_join(t), 0);
    /* Free while item 0 runs: it is cancelled, 1..4 never start. */
    knit_map_free(m);
    assert_int_equal(knit_now(), 15);
    assert_int_equal(j.seen[0], -ECANCELED);
    assert_int_equal(j.calls, 1);
    return 0;
}

static void map_stream_next_cancelled_while_parked_then_free(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_next_cancel_parked, NULL), 0);
}

static int t_free_midway(void *arg)
{
    (void)arg;
    struct jobs j;
    jobs_init(&j, stream_work, NULL);
    knit_map_opts o = {.limit = 3, .ordered = true};
    knit_map *m;
    assert_int_equal(knit_map_start(&m, &o, NULL, 5, 0, 0, job, &j), 0);
    assert_int_equal(knit_sleep(45), 0);
    /* At 45: 1 and 2 are done and wait for 0, which runs. Freeing from a
     * cancelled scope still waits for everything (shielded). */
    knit_scope s;
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_cancel(&s);
    knit_map_free(m);
    assert_int_equal(knit_scope_exit(&s), -ECANCELED);
    assert_int_equal(knit_now(), 45);
    assert_int_equal(j.seen[0], -ECANCELED);
    assert_int_equal(j.seen[1], 0);
    assert_int_equal(j.seen[2], 0);
    assert_int_equal(j.calls, 3);
    return 0;
}

static void map_free_cancels_items_in_progress_and_waits_for_them(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_free_midway, NULL), 0);
}

/* ---- over a channel ----------------------------------------------------- */

struct producer {
    knit_chan *c;
    int count;          /* items to send: 100, 101, ... */
    int64_t sent[MAXN]; /* when each send returned */
    int err;            /* the send that failed, or 0 */
};

static int produce(void *arg)
{
    struct producer *p = arg;
    for (int i = 0; i < p->count; i++) {
        int v = 100 + i;
        if ((p->err = knit_chan_send(p->c, &v)) < 0)
            break;
        p->sent[i] = knit_now();
    }
    knit_chan_close(p->c);
    return 0;
}

static int t_chan(void *arg)
{
    (void)arg;
    static const int64_t work[6] = {10, 10, 10, 10, 10, 10};
    struct jobs j;
    jobs_init(&j, work, NULL);
    struct producer p = {.c = knit_chan_new(sizeof(int), 1), .count = 6};
    assert_non_null(p.c);
    knit_task *t = knit_spawn(produce, &p);
    assert_non_null(t);
    knit_map_opts o = {.limit = 2};
    assert_int_equal(knit_map_concurrent_chan(&o, p.c, sizeof(int), job, &j),
                     0);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(knit_now(), 30);
    assert_int_equal(j.max_inflight, 2);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(j.item[i], 100 + i); /* index = receive order */
        assert_int_equal(j.start[i], i / 2 * 10);
    }
    /* Backpressure: the producer runs at the map's pace; items 3 and 4
     * wait for a free call slot, buffered one at a time. */
    static const int64_t sent[6] = {0, 0, 0, 10, 10, 20};
    expect_i64(p.sent, sent, 6, "sent");
    knit_chan_unref(p.c);
    return 0;
}

static void map_chan_takes_items_only_when_a_slot_is_free(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_chan, NULL), 0);
}

static int t_chan_fail_fast(void *arg)
{
    (void)arg;
    static const int64_t work[8] = {30, 10, 30, 30, 30, 30, 30, 30};
    static const int fail[8] = {0, -EIO, 0, 0, 0, 0, 0, 0};
    struct jobs j;
    jobs_init(&j, work, fail);
    knit_chan *c = knit_chan_new(sizeof(int), 8);
    assert_non_null(c);
    for (int i = 0; i < 8; i++) {
        int v = 100 + i;
        assert_int_equal(knit_chan_send(c, &v), 0);
    }
    knit_chan_close(c);
    knit_map_opts o = {.limit = 2, .fail_fast = true};
    assert_int_equal(knit_map_concurrent_chan(&o, c, sizeof(int), job, &j),
                     -EIO);
    assert_int_equal(knit_now(), 10);
    assert_int_equal(j.seen[0], -ECANCELED);
    /* Only 0 and 1 were taken: the other six wait in the channel. */
    assert_int_equal(knit_chan_len(c), 6);
    int v;
    assert_int_equal(knit_chan_recv(c, &v), 0);
    assert_int_equal(v, 102);
    knit_chan_unref(c);
    return 0;
}

static void map_chan_fail_fast_leaves_the_rest_in_the_channel(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_chan_fail_fast, NULL), 0);
}

static int t_chan_stream(void *arg)
{
    (void)arg;
    static const int64_t work[5] = {50, 10, 40, 20, 30};
    struct jobs j;
    jobs_init(&j, work, NULL);
    struct producer p = {.c = knit_chan_new(sizeof(int), 5), .count = 5};
    assert_non_null(p.c);
    knit_task *t = knit_spawn(produce, &p);
    assert_non_null(t);
    knit_map_opts o = {.limit = 3, .ordered = true};
    knit_map *m;
    assert_int_equal(
        knit_map_start_chan(&m, &o, p.c, sizeof(int), sizeof(int), job, &j), 0);
    knit_chan_unref(p.c); /* the map holds its own reference */
    struct taken t2;
    assert_int_equal(take_all(m, &t2), -EPIPE);
    static const size_t index[5] = {0, 1, 2, 3, 4};
    static const int64_t at[5] = {50, 50, 50, 70, 80};
    expect_taken(&t2, 5, index, at);
    for (int i = 0; i < 5; i++)
        assert_int_equal(t2.value[i], (100 + i) * 10);
    knit_map_free(m);
    assert_int_equal(knit_join(t), 0);
    return 0;
}

static void map_stream_over_a_channel_in_input_order(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_chan_stream, NULL), 0);
}

static int t_chan_stream_free(void *arg)
{
    (void)arg;
    static const int64_t work[4] = {10, 10, 10, 10};
    struct jobs j;
    jobs_init(&j, work, NULL);
    knit_chan *c = knit_chan_new(sizeof(int), 4);
    assert_non_null(c);
    knit_map_opts o = {.limit = 2};
    knit_map *m;
    assert_int_equal(knit_map_start_chan(&m, &o, c, sizeof(int), 0, job, &j),
                     0);
    /* The workers wait for items on an open, empty channel: the caller's
     * deadline ends the wait, and freeing releases them. */
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 100);
    assert_int_equal(knit_map_next(m, NULL, NULL, NULL), -ETIMEDOUT);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    knit_map_free(m);
    assert_int_equal(knit_now(), 100);
    assert_false(knit_chan_is_closed(c)); /* not the map's to close */
    knit_chan_unref(c);
    assert_int_equal(j.calls, 0);
    return 0;
}

static void map_stream_free_releases_workers_waiting_for_items(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_chan_stream_free, NULL), 0);
}

/* ---- misuse ------------------------------------------------------------- */

static knit_map *shared;

static int next_elsewhere(void *arg)
{
    (void)arg;
    return knit_map_next(shared, NULL, NULL, NULL);
}

static int t_foreign_next(void *arg)
{
    (void)arg;
    static const int64_t work[2] = {10, 10};
    struct jobs j;
    jobs_init(&j, work, NULL);
    knit_map_opts o = {.limit = 1};
    assert_int_equal(knit_map_start(&shared, &o, NULL, 2, 0, 0, job, &j), 0);
    knit_task *t = knit_spawn(next_elsewhere, NULL);
    (void)knit_join(t);
    knit_map_free(shared);
    return 0;
}

static void map_next_from_another_task_panics(void **state)
{
    (void)state;
    int status;
    const char *err = kt_run_child(NULL, t_foreign_next, NULL, &status);
    kt_expect_in(err, "knit_map_next called by a task that did not start");
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_never_exceeds_the_limit_and_fills_every_slot),
        cmocka_unit_test(map_starts_each_item_when_a_call_returns),
        cmocka_unit_test(map_collect_mode_runs_every_item_and_counts_failures),
        cmocka_unit_test(
            map_fail_fast_cancels_siblings_and_returns_the_first_error),
        cmocka_unit_test(map_fail_fast_without_failure_returns_zero),
        cmocka_unit_test(map_cancelling_the_caller_cancels_items_in_progress),
        cmocka_unit_test(map_scope_deadline_returns_etimedout),
        cmocka_unit_test(map_in_a_fired_scope_starts_nothing),
        cmocka_unit_test(map_empty_input_returns_at_once),
        cmocka_unit_test(map_rejects_zero_limit_and_null_fn),
        cmocka_unit_test(map_too_large_to_allocate_returns_enomem),
        cmocka_unit_test(map_stream_unordered_is_completion_order),
        cmocka_unit_test(map_stream_ordered_delivers_in_input_order),
        cmocka_unit_test(map_stream_slow_consumer_holds_the_map_back),
        cmocka_unit_test(map_stream_collect_mode_hands_back_every_failure),
        cmocka_unit_test(map_stream_fail_fast_hands_back_the_failure_last),
        cmocka_unit_test(
            map_stream_ordered_fail_fast_hands_back_the_failure_at_once),
        cmocka_unit_test(map_stream_next_timed_out_or_cancelled_takes_nothing),
        cmocka_unit_test(map_stream_next_cancelled_while_parked_then_free),
        cmocka_unit_test(map_free_cancels_items_in_progress_and_waits_for_them),
        cmocka_unit_test(map_chan_takes_items_only_when_a_slot_is_free),
        cmocka_unit_test(map_chan_fail_fast_leaves_the_rest_in_the_channel),
        cmocka_unit_test(map_stream_over_a_channel_in_input_order),
        cmocka_unit_test(map_stream_free_releases_workers_waiting_for_items),
        cmocka_unit_test(map_next_from_another_task_panics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
