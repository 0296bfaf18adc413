// SPDX-License-Identifier: MIT
/*
 * knit_select: each case type fires, the losers leave no trace, the scope
 * wins when it fires first, ready cases are chosen fairly (or in order
 * when biased), and bad arguments are refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "kt.h"

static int send_later(void *arg)
{
    knit_chan *c = arg;
    int v = 77;
    knit_sleep(20);
    return knit_chan_send(c, &v);
}

static int t_recv_fires(void *arg)
{
    (void)arg;
    knit_chan *a = knit_chan_new(sizeof(int), 1);
    knit_chan *b = knit_chan_new(sizeof(int), 1);
    knit_task *t = knit_spawn(send_later, b);
    int va = 0, vb = 0;
    knit_case cases[] = {
        knit_case_recv(a, &va),
        knit_case_recv(b, &vb),
        knit_case_deadline(knit_now() + 100),
    };
    assert_int_equal(knit_select(cases, 3), 1);
    assert_int_equal(knit_case_result(&cases[1]), 0);
    assert_int_equal(vb, 77);
    assert_int_equal(va, 0);
    assert_int_equal(knit_now(), 20);
    assert_int_equal(knit_join(t), 0);
    /* The losing recv left nothing queued on a: a plain send and recv
     * still pair up, and the deadline's timer is gone (kt checks). */
    int v = 5;
    assert_int_equal(knit_chan_try_send(a, &v), 0);
    assert_int_equal(knit_chan_try_recv(a, &v), 0);
    assert_int_equal(v, 5);
    knit_chan_unref(a);
    knit_chan_unref(b);
    return 0;
}

static void select_recv_case_fires_and_the_losers_leave_no_trace(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_recv_fires, NULL), 0);
}

static int t_deadline_fires(void *arg)
{
    (void)arg;
    knit_chan *a = knit_chan_new(sizeof(int), 1);
    int v = 0, out = 9;
    assert_int_equal(knit_chan_try_send(a, &out), 0); /* a is full */
    knit_case cases[] = {
        knit_case_recv(a, &v),
        knit_case_send(a, &out),
        knit_case_deadline(knit_now() + 40),
    };
    /* Case 0 is ready at once: it wins, even though 2 is also listed. */
    assert_int_equal(knit_select_biased(cases, 3), 0);
    assert_int_equal(v, 9);
    /* Now a is empty: the send case wins at once. */
    assert_int_equal(knit_select_biased(&cases[1], 2), 0);
    assert_int_equal(knit_chan_len(a), 1);
    /* Full again and nobody receives: the deadline fires. */
    cases[2] = knit_case_deadline(knit_now() + 40);
    assert_int_equal(knit_select(&cases[1], 2), 1);
    assert_int_equal(knit_now(), 40);
    assert_int_equal(knit_chan_len(a), 1); /* the send left no trace */
    knit_chan_unref(a);
    return 0;
}

static void select_send_and_deadline_cases(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_deadline_fires, NULL), 0);
}

static int slow_task(void *arg)
{
    int err = knit_sleep((int64_t)(intptr_t)arg);
    return err ? err : 31;
}

static int t_join_case(void *arg)
{
    (void)arg;
    knit_task *fast = knit_spawn(slow_task, (void *)10);
    knit_task *slow = knit_spawn(slow_task, (void *)50);
    int rf = 0, rs = 0;
    knit_case cases[] = {knit_case_join(slow, &rs), knit_case_join(fast, &rf)};
    assert_int_equal(knit_select(cases, 2), 1);
    assert_int_equal(rf, 31);
    assert_int_equal(rs, 0);
    /* The losing join did not take slow: it can be joined normally. */
    assert_int_equal(knit_join(slow), 31);
    assert_int_equal(knit_now(), 50);
    return 0;
}

static void select_join_case_reaps_only_the_winner(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_join_case, NULL), 0);
}

static int write_later(void *arg)
{
    int fd = (int)(intptr_t)arg;
    knit_sleep(15);
    return write(fd, "x", 1) == 1 ? 0 : -EIO;
}

static int t_fd_case(void *arg)
{
    (void)arg;
    int fds[2];
    assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
    knit_task *t = knit_spawn(write_later, (void *)(intptr_t)fds[1]);
    knit_case cases[] = {knit_case_deadline(knit_now() + 100),
                         knit_case_fd(fds[0], POLLIN)};
    assert_int_equal(knit_select(cases, 2), 1);
    assert_int_equal(knit_case_result(&cases[1]), POLLIN);
    assert_int_equal(knit_now(), 15);
    assert_int_equal(knit_join(t), 0);
    /* An fd case that loses leaves nothing armed. */
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1);
    cases[0] = knit_case_deadline(knit_now() + 5);
    assert_int_equal(knit_select(cases, 2), 0);
    assert_int_equal(knit_now(), 20);
    close(fds[0]);
    close(fds[1]);
    return 0;
}

static void select_fd_case_fires_on_readiness(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_fd_case, NULL), 0);
}

static int notify_later(void *arg)
{
    knit_notify *n = arg;
    knit_sleep(10);
    knit_notify_one(n);
    return 0;
}

static int cancel_later(void *arg)
{
    knit_token *tok = arg;
    knit_sleep(30);
    knit_token_cancel(tok);
    return 0;
}

static int t_notify_token(void *arg)
{
    (void)arg;
    knit_notify n;
    memset(&n, 0, sizeof(n));
    knit_token root, child;
    knit_token_init(&root, NULL);
    knit_token_init(&child, &root);
    knit_task *a = knit_spawn(notify_later, &n);
    knit_task *b = knit_spawn(cancel_later, &root);
    knit_case cases[] = {knit_case_token(&child), knit_case_notify(&n)};
    assert_int_equal(knit_select(cases, 2), 1);
    assert_int_equal(knit_now(), 10);
    assert_int_equal(knit_select(cases, 2), 0); /* the parent's cancel */
    assert_int_equal(knit_now(), 30);
    assert_int_equal(knit_join(a), 0);
    assert_int_equal(knit_join(b), 0);
    /* The notify case that lost took no permit. */
    knit_notify_one(&n);
    assert_int_equal(knit_select_biased(cases, 2), 0); /* token first... */
    assert_int_equal(knit_notify_wait(&n), 0); /* ...the permit is there */
    knit_token_destroy(&child);
    knit_token_destroy(&root);
    return 0;
}

static void select_notify_and_token_cases(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_notify_token, NULL), 0);
}

static int t_scope_wins(void *arg)
{
    (void)arg;
    knit_chan *a = knit_chan_new(sizeof(int), 1);
    int v;
    knit_case cases[] = {knit_case_recv(a, &v),
                         knit_case_deadline(knit_now() + 100)};
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 25);
    assert_int_equal(knit_select(cases, 2), -ETIMEDOUT);
    assert_int_equal(knit_now(), 25);
    assert_int_equal(knit_select(cases, 2), -ETIMEDOUT); /* every time */
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    /* Nothing registered is left: a send lands in the buffer. */
    v = 3;
    assert_int_equal(knit_chan_try_send(a, &v), 0);
    assert_int_equal(knit_chan_len(a), 1);
    knit_chan_unref(a);
    return 0;
}

static void select_returns_the_scope_error_when_it_fires_first(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_scope_wins, NULL), 0);
}

static int select_forever(void *arg)
{
    knit_chan *a = arg;
    int v;
    knit_case cases[] = {knit_case_recv(a, &v),
                         knit_case_deadline(KNIT_FOREVER)};
    return knit_select(cases, 2);
}

static int t_cancel(void *arg)
{
    (void)arg;
    knit_chan *a = knit_chan_new(sizeof(int), 1);
    knit_task *t = knit_spawn(select_forever, a);
    assert_int_equal(knit_yield(), 0);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    int v = 8;
    assert_int_equal(knit_chan_send(a, &v), 0);
    assert_int_equal(knit_chan_len(a), 1); /* no receiver was left */
    knit_chan_unref(a);
    return 0;
}

static void cancelled_select_unregisters_every_case(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel, NULL), 0);
}

static int t_closed(void *arg)
{
    (void)arg;
    knit_chan *a = knit_chan_new(sizeof(int), 1);
    knit_chan_close(a);
    int v;
    knit_case cases[] = {knit_case_recv(a, &v)};
    assert_int_equal(knit_select(cases, 1), 0);
    assert_int_equal(knit_case_result(&cases[0]), -EPIPE);
    cases[0] = knit_case_send(a, &v);
    assert_int_equal(knit_select(cases, 1), 0);
    assert_int_equal(knit_case_result(&cases[0]), -EPIPE);
    knit_chan_unref(a);
    return 0;
}

static void select_reports_a_closed_channel_as_the_case_result(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_closed, NULL), 0);
}

static int t_fair(void *arg)
{
    (void)arg;
    knit_chan *a = knit_chan_new(sizeof(int), 0);
    knit_chan *b = knit_chan_new(sizeof(int), 0);
    int v = 1, count[2] = {0, 0};
    for (int i = 0; i < 2000; i++) {
        knit_chan_try_send(a, &v);
        knit_chan_try_send(b, &v);
    }
    for (int i = 0; i < 2000; i++) {
        knit_case cases[] = {knit_case_recv(a, &v), knit_case_recv(b, &v)};
        int r = knit_select(cases, 2);
        assert_true(r == 0 || r == 1);
        count[r]++;
    }
    /* Both always ready: a random start splits the choices. */
    assert_true(count[0] > 800 && count[1] > 800);
    for (int i = 0; i < 100; i++) {
        knit_case cases[] = {knit_case_recv(a, &v), knit_case_recv(b, &v)};
        assert_int_equal(knit_select_biased(cases, 2), 0);
    }
    knit_chan_unref(a);
    knit_chan_unref(b);
    return 0;
}

static void select_picks_ready_cases_fairly_unless_biased(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_fair, NULL), 0);
}

static int t_invalid(void *arg)
{
    (void)arg;
    knit_case cases[KNIT_SELECT_MAX + 1];
    memset(cases, 0, sizeof(cases));
    assert_int_equal(knit_select(cases, 0), -EINVAL);
    assert_int_equal(knit_select(cases, KNIT_SELECT_MAX + 1), -EINVAL);
    assert_int_equal(knit_select(cases, 1), -EINVAL); /* zeroed case */
    return 0;
}

static void select_refuses_bad_arguments(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_invalid, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(select_recv_case_fires_and_the_losers_leave_no_trace),
        cmocka_unit_test(select_send_and_deadline_cases),
        cmocka_unit_test(select_join_case_reaps_only_the_winner),
        cmocka_unit_test(select_fd_case_fires_on_readiness),
        cmocka_unit_test(select_notify_and_token_cases),
        cmocka_unit_test(select_returns_the_scope_error_when_it_fires_first),
        cmocka_unit_test(cancelled_select_unregisters_every_case),
        cmocka_unit_test(select_reports_a_closed_channel_as_the_case_result),
        cmocka_unit_test(select_picks_ready_cases_fairly_unless_biased),
        cmocka_unit_test(select_refuses_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
