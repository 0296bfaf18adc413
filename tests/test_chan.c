// SPDX-License-Identifier: MIT
/*
 * Channels: bounded and unbounded MPMC, close and sender counting, the
 * three outcomes of every blocking call (success, -ECANCELED,
 * -ETIMEDOUT), oneshot, broadcast, watch, and the _blocking variants from
 * plain threads.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kt.h"

static int t_fifo(void *arg)
{
    (void)arg;
    knit_chan *c = knit_chan_new(sizeof(int), 4);
    assert_non_null(c);
    assert_int_equal(knit_chan_capacity(c), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(knit_chan_send(c, &i), 0);
    assert_int_equal(knit_chan_len(c), 4);
    int v = 99;
    assert_int_equal(knit_chan_try_send(c, &v), -EAGAIN);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(knit_chan_recv(c, &v), 0);
        assert_int_equal(v, i);
    }
    assert_int_equal(knit_chan_try_recv(c, &v), -EAGAIN);
    knit_chan_unref(c);
    return 0;
}

static void chan_buffers_in_fifo_order_up_to_its_capacity(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_fifo, NULL), 0);
}

struct prod {
    knit_chan *c;
    int from, n;
};

static int producer(void *arg)
{
    struct prod *p = arg;
    for (int i = 0; i < p->n; i++) {
        int v = p->from + i;
        int err = knit_chan_send(p->c, &v);
        if (err)
            return err;
    }
    knit_chan_sender_done(p->c);
    return 0;
}

static int t_backpressure(void *arg)
{
    (void)arg;
    knit_chan *c = knit_chan_new(sizeof(int), 2);
    struct prod p = {c, 0, 10};
    knit_chan_sender_add(c);
    knit_task *t = knit_spawn(producer, &p);
    kt_settle();
    /* The producer filled the buffer and waits: backpressure. */
    assert_int_equal(knit_chan_len(c), 2);
    int v, expect = 0;
    while (knit_chan_recv(c, &v) == 0) {
        assert_int_equal(v, expect);
        expect++;
        assert_true(knit_chan_len(c) <= 2);
    }
    assert_int_equal(expect, 10); /* sender_done closed it after 10 */
    assert_int_equal(knit_join(t), 0);
    knit_chan_unref(c);
    return 0;
}

static void bounded_chan_makes_a_fast_producer_wait(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_backpressure, NULL), 0);
}

static int t_mpmc(void *arg)
{
    (void)arg;
    enum { P = 4, N = 500 };
    knit_chan *c = knit_chan_new(sizeof(int), 3);
    struct prod ps[P];
    knit_task *ts[P];
    for (int i = 0; i < P; i++) {
        ps[i] = (struct prod){c, i * N, N};
        knit_chan_sender_add(c);
        ts[i] = knit_spawn(producer, &ps[i]);
    }
    static char seen[P * N];
    memset(seen, 0, sizeof(seen));
    int v, count = 0;
    int last[P] = {-1, -1, -1, -1};
    while (knit_chan_recv(c, &v) == 0) {
        assert_true(v >= 0 && v < P * N);
        assert_int_equal(seen[v], 0);
        seen[v] = 1;
        /* Each producer's values arrive in its order. */
        assert_true(v > last[v / N]);
        last[v / N] = v;
        count++;
    }
    assert_int_equal(count, P * N);
    for (int i = 0; i < P; i++)
        assert_int_equal(knit_join(ts[i]), 0);
    knit_chan_unref(c);
    return 0;
}

static void many_producers_deliver_every_value_exactly_once(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_mpmc, NULL), 0);
}

static int receiver(void *arg)
{
    knit_chan *c = arg;
    int v;
    int err = knit_chan_recv(c, &v);
    return err ? err : v;
}

static int t_close(void *arg)
{
    (void)arg;
    knit_chan *c = knit_chan_new(sizeof(int), 4);
    int v = 7;
    assert_int_equal(knit_chan_send(c, &v), 0);
    knit_chan_close(c);
    knit_chan_close(c); /* idempotent */
    assert_true(knit_chan_is_closed(c));
    assert_int_equal(knit_chan_send(c, &v), -EPIPE);
    assert_int_equal(knit_chan_try_send(c, &v), -EPIPE);
    v = 0;
    assert_int_equal(knit_chan_recv(c, &v), 0); /* drains first */
    assert_int_equal(v, 7);
    assert_int_equal(knit_chan_recv(c, &v), -EPIPE);
    assert_int_equal(knit_chan_try_recv(c, &v), -EPIPE);
    knit_chan_unref(c);

    /* Parked receivers and senders are woken with -EPIPE. */
    c = knit_chan_new(sizeof(int), 1);
    knit_task *r = knit_spawn(receiver, c);
    kt_settle();
    knit_chan_close(c);
    assert_int_equal(knit_join(r), -EPIPE);
    knit_chan_unref(c);

    c = knit_chan_new(sizeof(int), 1);
    struct prod p = {c, 0, 3};
    knit_task *s = knit_spawn(producer, &p);
    knit_chan_sender_add(c);
    kt_settle(); /* sent 0, parked on 1 */
    knit_chan_close(c);
    assert_int_equal(knit_join(s), -EPIPE); /* 1 was not sent */
    assert_int_equal(knit_chan_recv(c, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(knit_chan_recv(c, &v), -EPIPE);
    knit_chan_unref(c);
    return 0;
}

static void closed_chan_drains_then_reports_epipe(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_close, NULL), 0);
}

static int t_cancel(void *arg)
{
    (void)arg;
    knit_chan *c = knit_chan_new(sizeof(int), 1);
    knit_task *r = knit_spawn(receiver, c);
    kt_settle();
    knit_cancel(r);
    assert_int_equal(knit_join(r), -ECANCELED);
    /* The cancelled receiver left no trace: the value stays buffered. */
    int v = 5;
    assert_int_equal(knit_chan_send(c, &v), 0);
    assert_int_equal(knit_chan_len(c), 1);
    /* A cancelled sender sent nothing. */
    struct prod p = {c, 100, 1};
    knit_task *s = knit_spawn(producer, &p);
    kt_settle();
    knit_cancel(s);
    assert_int_equal(knit_join(s), -ECANCELED);
    assert_int_equal(knit_chan_recv(c, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(knit_chan_try_recv(c, &v), -EAGAIN);
    knit_chan_unref(c);
    return 0;
}

static void cancelled_send_and_recv_leave_no_trace(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel, NULL), 0);
}

static int t_timeout(void *arg)
{
    (void)arg;
    knit_chan *c = knit_chan_new(sizeof(int), 1);
    int v = 1;
    knit_scope s;
    knit_scope_enter(&s, 30);
    assert_int_equal(knit_chan_recv(c, &v), -ETIMEDOUT);
    assert_int_equal(knit_now(), 30);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    assert_int_equal(knit_chan_send(c, &v), 0);
    knit_scope_enter(&s, 50);
    assert_int_equal(knit_chan_send(c, &v), -ETIMEDOUT); /* full */
    assert_int_equal(knit_now(), 50);
    /* Inside a fired scope even a ready call fails, every time. */
    assert_int_equal(knit_chan_recv(c, &v), -ETIMEDOUT);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    assert_int_equal(knit_chan_len(c), 1);
    assert_int_equal(knit_chan_recv(c, &v), 0);
    knit_chan_unref(c);
    return 0;
}

static void send_and_recv_time_out_with_their_scope(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_timeout, NULL), 0);
}

static int t_unbounded(void *arg)
{
    (void)arg;
    knit_chan *c = knit_chan_new(sizeof(uint64_t), 0);
    assert_int_equal(knit_chan_capacity(c), 0);
    for (uint64_t i = 0; i < 10000; i++)
        assert_int_equal(knit_chan_try_send(c, &i), 0); /* never full */
    assert_int_equal(knit_chan_high_water(c), 10000);
    for (uint64_t i = 0; i < 10000; i++) {
        uint64_t v;
        assert_int_equal(knit_chan_recv(c, &v), 0);
        assert_true(v == i);
    }
    assert_int_equal(knit_chan_len(c), 0);
    assert_int_equal(knit_chan_high_water(c), 10000);
    knit_chan_unref(c);
    return 0;
}

static void unbounded_chan_grows_and_reports_its_high_water_mark(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_unbounded, NULL), 0);
}

static int t_refs(void *arg)
{
    (void)arg;
    assert_null(knit_chan_new(0, 1));
    knit_chan *c = knit_chan_new(24, 2); /* odd element size */
    assert_ptr_equal(knit_chan_ref(c), c);
    char in[24] = "twenty-three characters", out[24];
    assert_int_equal(knit_chan_send(c, in), 0);
    knit_chan_unref(c);
    assert_int_equal(knit_chan_recv(c, out), 0);
    assert_memory_equal(in, out, 24);
    knit_chan_unref(c);
    return 0;
}

static void chan_is_refcounted_and_copies_any_element_size(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_refs, NULL), 0);
}

/* ---- oneshot ------------------------------------------------------------ */

static int reply(void *arg)
{
    knit_oneshot *o = arg;
    int v = 42;
    knit_sleep(10);
    int err = knit_oneshot_send(o, &v);
    if (err == 0 && knit_oneshot_send(o, &v) != -EALREADY)
        err = -1;
    knit_oneshot_unref(o);
    return err;
}

static int drop_unsent(void *arg)
{
    knit_oneshot_unref(arg);
    return 0;
}

static int t_oneshot(void *arg)
{
    (void)arg;
    knit_oneshot *o = knit_oneshot_new(sizeof(int));
    knit_task *t = knit_spawn(reply, o);
    int v = 0;
    assert_int_equal(knit_oneshot_recv(o, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(knit_now(), 10);
    assert_int_equal(knit_oneshot_recv(o, &v), -EPIPE); /* only one */
    knit_oneshot_unref(o);
    assert_int_equal(knit_join(t), 0);

    o = knit_oneshot_new(sizeof(int));
    t = knit_spawn(drop_unsent, o);
    assert_int_equal(knit_oneshot_recv(o, &v), -EPIPE);
    knit_oneshot_unref(o);
    assert_int_equal(knit_join(t), 0);

    o = knit_oneshot_new(sizeof(int));
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 5);
    assert_int_equal(knit_oneshot_recv(o, &v), -ETIMEDOUT);
    knit_scope_exit(&s);
    knit_oneshot_unref(o); /* the receiver gives up */
    assert_int_equal(knit_oneshot_send(o, &v), -EPIPE);
    knit_oneshot_unref(o);
    return 0;
}

static void oneshot_delivers_one_value_or_epipe(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_oneshot, NULL), 0);
}

/* ---- broadcast ------------------------------------------------------- */

struct sub_arg {
    knit_bcast_rx *rx;
    int sum;
    int n;
};

static int subscriber(void *arg)
{
    struct sub_arg *a = arg;
    int v, err;
    while ((err = knit_bcast_recv(a->rx, &v)) == 0) {
        a->sum += v;
        a->n++;
    }
    return err == -EPIPE ? 0 : err;
}

static int t_bcast(void *arg)
{
    (void)arg;
    knit_bcast *b = knit_bcast_new(sizeof(int), 4);
    struct sub_arg a = {knit_bcast_subscribe(b), 0, 0};
    struct sub_arg c = {knit_bcast_subscribe(b), 0, 0};
    knit_task *ta = knit_spawn(subscriber, &a);
    knit_task *tc = knit_spawn(subscriber, &c);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(knit_bcast_send(b, &i), 0);
        assert_int_equal(knit_yield(), 0);
    }
    knit_bcast_close(b);
    assert_int_equal(knit_bcast_send(b, &a.n), -EPIPE);
    assert_int_equal(knit_join(ta), 0);
    assert_int_equal(knit_join(tc), 0);
    assert_int_equal(a.n, 3);
    assert_int_equal(a.sum, 6);
    assert_int_equal(c.sum, 6);
    knit_bcast_rx_free(a.rx);
    knit_bcast_rx_free(c.rx);
    knit_bcast_free(b);

    /* A subscriber that lags loses the oldest values, once reported. */
    b = knit_bcast_new(sizeof(int), 4);
    knit_bcast_rx *rx = knit_bcast_subscribe(b);
    for (int i = 0; i < 10; i++)
        assert_int_equal(knit_bcast_send(b, &i), 0);
    int v;
    assert_int_equal(knit_bcast_recv(rx, &v), -EOVERFLOW);
    assert_int_equal(knit_bcast_rx_missed(rx), 6);
    for (int i = 6; i < 10; i++) {
        assert_int_equal(knit_bcast_recv(rx, &v), 0);
        assert_int_equal(v, i);
    }
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 7);
    assert_int_equal(knit_bcast_recv(rx, &v), -ETIMEDOUT);
    knit_scope_exit(&s);
    knit_bcast_rx_free(rx);
    knit_bcast_free(b);
    return 0;
}

static void
bcast_gives_every_subscriber_every_value_and_reports_lag(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bcast, NULL), 0);
}

/* ---- watch ------------------------------------------------------------ */

static int watcher(void *arg)
{
    knit_watch_rx *rx = arg;
    int v, last = -1, changes = 0;
    while (knit_watch_changed(rx) == 0) {
        knit_watch_borrow(rx, &v);
        if (v <= last)
            return -1;
        last = v;
        changes++;
    }
    return changes * 1000 + last;
}

static int t_watch(void *arg)
{
    (void)arg;
    int init = 0;
    knit_watch *w = knit_watch_new(sizeof(int), &init);
    knit_watch_rx *rx = knit_watch_subscribe(w);
    knit_task *t = knit_spawn(watcher, rx);
    kt_settle();
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(knit_watch_send(w, &i), 0);
        if (i % 2)
            kt_settle();
    }
    /* 2 and 4 were overwritten before the watcher looked: it saw the
     * latest value each time it woke (1, 3, 5). On several workers it may
     * also run between two sends and see 2 or 4 (in order: it checks). */
    knit_watch_close(w);
    int r = knit_join(t);
    assert_int_equal(r % 1000, 5);
    if (kt_workers() > 1)
        assert_in_range(r / 1000, 3, 5);
    else
        assert_int_equal(r / 1000, 3);
    knit_watch_rx *late = knit_watch_subscribe(w);
    int v;
    knit_watch_borrow(late, &v);
    assert_int_equal(v, 5);
    assert_int_equal(knit_watch_changed(late), -EPIPE);
    knit_watch_rx_free(late);
    knit_watch_rx_free(rx);
    knit_watch_free(w);
    return 0;
}

static void watch_shows_the_latest_value_and_wakes_on_change(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_watch, NULL), 0);
}

/* ---- fairness ------------------------------------------------------------ */

struct hog {
    knit_chan *c;
    int *flag;
    int seen_at; /* channel operations done when the other task had run */
};

static int hog(void *arg)
{
    struct hog *h = arg;
    uint64_t v = 0;
    /* Send and receive on its own buffered channel: every call completes
     * at once, so without the budget this task would never switch. */
    for (int ops = 0; ops < 10000; ops += 2) {
        if (*h->flag && h->seen_at < 0)
            h->seen_at = ops;
        if (knit_chan_send(h->c, &v) || knit_chan_recv(h->c, &v))
            return -1;
    }
    return 0;
}

static int set_flag_task(void *arg)
{
    *(int *)arg = 1;
    return 0;
}

static int t_budget(void *arg)
{
    (void)arg;
    /* The budget is per worker: with several, b may run on another at any
     * time (and flag would be a data race). */
    if (kt_workers() > 1)
        skip();
    int flag = 0;
    struct hog h = {knit_chan_new(sizeof(uint64_t), 4), &flag, -1};
    knit_task *a = knit_spawn(hog, &h);
    knit_task *b = knit_spawn(set_flag_task, &flag);
    assert_int_equal(knit_join(a), 0);
    assert_int_equal(knit_join(b), 0);
    /* The other ready task ran within one budget of blocking calls. */
    assert_true(h.seen_at >= 0);
    assert_true(h.seen_at <= 128 + 2);
    knit_chan_unref(h.c);
    return 0;
}

static void a_task_whose_calls_never_block_still_lets_others_run(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_budget, NULL), 0);
}

/* ---- plain threads ----------------------------------------------------- */

struct thread_arg {
    knit_chan *in, *out;
    int n;
};

static void *thread_echo(void *arg)
{
    struct thread_arg *a = arg;
    for (int i = 0; i < a->n; i++) {
        int v;
        if (knit_chan_recv_blocking(a->in, &v) != 0)
            return (void *)1;
        v *= 2;
        if (knit_chan_send_blocking(a->out, &v) != 0)
            return (void *)2;
    }
    return NULL;
}

static int t_threads(void *arg)
{
    (void)arg;
    struct thread_arg a = {knit_chan_new(sizeof(int), 1),
                           knit_chan_new(sizeof(int), 1), 200};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thread_echo, &a), 0);
    for (int i = 0; i < a.n; i++) {
        int v;
        assert_int_equal(knit_chan_send(a.in, &i), 0);
        assert_int_equal(knit_chan_recv(a.out, &v), 0);
        assert_int_equal(v, 2 * i);
    }
    void *ret;
    pthread_join(th, &ret);
    assert_null(ret);
    knit_chan_unref(a.in);
    knit_chan_unref(a.out);
    return 0;
}

static void plain_threads_use_the_blocking_variants(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_threads, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chan_buffers_in_fifo_order_up_to_its_capacity),
        cmocka_unit_test(bounded_chan_makes_a_fast_producer_wait),
        cmocka_unit_test(many_producers_deliver_every_value_exactly_once),
        cmocka_unit_test(closed_chan_drains_then_reports_epipe),
        cmocka_unit_test(cancelled_send_and_recv_leave_no_trace),
        cmocka_unit_test(send_and_recv_time_out_with_their_scope),
        cmocka_unit_test(unbounded_chan_grows_and_reports_its_high_water_mark),
        cmocka_unit_test(chan_is_refcounted_and_copies_any_element_size),
        cmocka_unit_test(oneshot_delivers_one_value_or_epipe),
        cmocka_unit_test(
            bcast_gives_every_subscriber_every_value_and_reports_lag),
        cmocka_unit_test(watch_shows_the_latest_value_and_wakes_on_change),
        cmocka_unit_test(plain_threads_use_the_blocking_variants),
        cmocka_unit_test(a_task_whose_calls_never_block_still_lets_others_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
