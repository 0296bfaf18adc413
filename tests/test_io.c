// SPDX-License-Identifier: MIT
/* Readiness waits through the I/O driver (knit_wait_fd). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "kt.h"

static void nonblocking_pipe(int fds[2])
{
    assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
}

struct reader {
    int fd;
    int revents;
    int64_t at;
};

static int wait_readable(void *arg)
{
    struct reader *r = arg;
    r->revents = knit_wait_fd(r->fd, POLLIN);
    r->at = knit_now();
    return r->revents < 0 ? r->revents : 0;
}

static int t_ready(void *arg)
{
    (void)arg;
    int fds[2];
    nonblocking_pipe(fds);
    struct reader r = {fds[0], 0, -1};
    knit_task *t = knit_spawn(wait_readable, &r);
    assert_int_equal(knit_sleep(30), 0);
    assert_int_equal(r.revents, 0); /* still parked */
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(r.revents, POLLIN);
    assert_int_equal(r.at, 30);
    /* Writable at once. */
    assert_int_equal(knit_wait_fd(fds[1], POLLOUT), POLLOUT);
    close(fds[0]);
    close(fds[1]);
    return 0;
}

static void wait_fd_returns_when_the_fd_becomes_ready(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_ready, NULL), 0);
}

static int t_cancel(void *arg)
{
    (void)arg;
    int fds[2];
    nonblocking_pipe(fds);
    struct reader r = {fds[0], 0, -1};
    knit_task *t = knit_spawn(wait_readable, &r);
    assert_int_equal(knit_yield(), 0);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    /* The registration is gone: data arriving now wakes nobody, and a new
     * wait on the same fd works. */
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(knit_wait_fd(fds[0], POLLIN), POLLIN);
    close(fds[0]);
    close(fds[1]);
    return 0;
}

static void wait_fd_returns_ecanceled_and_disarms(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel, NULL), 0);
}

static int t_timeout(void *arg)
{
    (void)arg;
    int fds[2];
    nonblocking_pipe(fds);
    knit_scope s;
    knit_scope_enter(&s, 75);
    assert_int_equal(knit_wait_fd(fds[0], POLLIN), -ETIMEDOUT);
    assert_int_equal(knit_now(), 75);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    close(fds[0]);
    close(fds[1]);
    return 0;
}

static void wait_fd_returns_etimedout_when_the_scope_expires(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_timeout, NULL), 0);
}

static int t_errors(void *arg)
{
    (void)arg;
    int fds[2];
    nonblocking_pipe(fds);
    assert_int_equal(knit_wait_fd(-1, POLLIN), -EINVAL);
    assert_int_equal(knit_wait_fd(fds[0], 0), -EINVAL);
    assert_int_equal(knit_wait_fd(fds[0], POLLPRI), -EINVAL);
    close(fds[0]);
    close(fds[1]);
    assert_int_equal(knit_wait_fd(fds[0], POLLIN), -EBADF);
    /* Regular files are always ready, as with poll(2). */
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(knit_wait_fd(fileno(f), POLLIN | POLLOUT),
                     POLLIN | POLLOUT);
    fclose(f);
    return 0;
}

static void wait_fd_rejects_bad_arguments(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_errors, NULL), 0);
}

static int wait_writable(void *arg)
{
    struct reader *r = arg;
    r->revents = knit_wait_fd(r->fd, POLLOUT);
    return 0;
}

static int t_two_waiters(void *arg)
{
    (void)arg;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    /* Fill sv[0]'s send buffer so it is not writable. */
    char buf[4096] = {0};
    while (write(sv[0], buf, sizeof(buf)) > 0)
        ;
    struct reader rd = {sv[0], 0, -1}, wr = {sv[0], 0, -1};
    knit_task *a = knit_spawn(wait_readable, &rd);
    knit_task *b = knit_spawn(wait_writable, &wr);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(write(sv[1], "x", 1), 1); /* sv[0] readable */
    assert_int_equal(knit_join(a), 0);
    assert_int_equal(rd.revents, POLLIN);
    assert_int_equal(wr.revents, 0);          /* the writer still waits */
    while (read(sv[1], buf, sizeof(buf)) > 0) /* drain: sv[0] writable */
        ;
    assert_int_equal(knit_join(b), 0);
    assert_true(wr.revents & POLLOUT);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static void two_tasks_wait_on_one_fd_for_different_events(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_two_waiters, NULL), 0);
}

static int t_hangup(void *arg)
{
    (void)arg;
    int fds[2];
    nonblocking_pipe(fds);
    struct reader r = {fds[0], 0, -1};
    knit_task *t = knit_spawn(wait_readable, &r);
    assert_int_equal(knit_yield(), 0);
    close(fds[1]);
    assert_int_equal(knit_join(t), 0);
    assert_true(r.revents & POLLHUP);
    close(fds[0]);
    return 0;
}

static void wait_fd_reports_hangup(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_hangup, NULL), 0);
}

static int t_close_wakes(void *arg)
{
    (void)arg;
    int fds[2];
    nonblocking_pipe(fds);
    struct reader a = {fds[0], 0, -1}, b = {fds[0], 0, -1};
    knit_task *ta = knit_spawn(wait_readable, &a);
    knit_task *tb = knit_spawn(wait_readable, &b);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(knit_close(fds[0]), 0);
    /* Both waiters are back with -EBADF instead of parked forever. */
    assert_int_equal(knit_join(ta), -EBADF);
    assert_int_equal(knit_join(tb), -EBADF);
    assert_int_equal(a.revents, -EBADF);
    assert_int_equal(knit_close(fds[0]), -EBADF);
    assert_int_equal(knit_close(-1), -EBADF);
    /* The fd number is reused cleanly by the next pipe. */
    int again[2];
    nonblocking_pipe(again);
    assert_int_equal(write(again[1], "z", 1), 1);
    assert_int_equal(knit_wait_fd(again[0], POLLIN), POLLIN);
    knit_close(again[0]);
    knit_close(again[1]);
    knit_close(fds[1]);
    return 0;
}

static void knit_close_wakes_waiters_with_ebadf(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_close_wakes, NULL), 0);
}

static void *write_later(void *arg)
{
    int fd = *(int *)arg;
    usleep(20000);
    ssize_t r = write(fd, "y", 1);
    (void)r;
    return NULL;
}

static int t_other_thread(void *arg)
{
    (void)arg;
    int fds[2];
    nonblocking_pipe(fds);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_later, &fds[1]), 0);
    /* No timer is armed: the idle worker blocks in the driver until the
     * other thread's write makes the pipe readable. */
    assert_int_equal(knit_wait_fd(fds[0], POLLIN), POLLIN);
    assert_int_equal(knit_now(), 0);
    pthread_join(th, NULL);
    close(fds[0]);
    close(fds[1]);
    return 0;
}

static void idle_worker_is_woken_by_an_fd_from_another_thread(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_other_thread, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wait_fd_returns_when_the_fd_becomes_ready),
        cmocka_unit_test(wait_fd_returns_ecanceled_and_disarms),
        cmocka_unit_test(wait_fd_returns_etimedout_when_the_scope_expires),
        cmocka_unit_test(wait_fd_rejects_bad_arguments),
        cmocka_unit_test(two_tasks_wait_on_one_fd_for_different_events),
        cmocka_unit_test(wait_fd_reports_hangup),
        cmocka_unit_test(knit_close_wakes_waiters_with_ebadf),
        cmocka_unit_test(idle_worker_is_woken_by_an_fd_from_another_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
