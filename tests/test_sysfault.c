// SPDX-License-Identifier: MIT
/*
 * The syscall fault loop: a TCP echo exchange over loopback runs again
 * and again with the 1st, 2nd, 3rd ... call at one site (read, write,
 * accept, connect, socket; core/fault.h's seam) failing with one errno,
 * until the exchange runs through without meeting the fault. Each run
 * must end the way that errno calls for:
 *
 *   EINTR, EAGAIN          invisible: the exchange succeeds at once;
 *   ECONNRESET, EMFILE,    the call that met it reports it (or the peer
 *   ECONNREFUSED           sees the connection reset), nothing hangs or
 *                          leaks, and a second exchange succeeds (or, when
 *                          it hit the listener's own socket, knit_run
 *                          returns that error).
 *
 * A fault is injected before the kernel is asked, except EINTR at
 * connect: a signal interrupts a connect the kernel has started.
 *
 * EAGAIN runs on two workers with epoll: sockets then take the one-shot
 * registration, which reports data already queued. (With one worker an
 * owned socket is registered edge-triggered, and a read that says EAGAIN
 * while data is queued waits for the next edge: the kernel never does
 * that, so neither does this test.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <knit.h>

#include "core/fault.h"

#define PAYLOAD (64 * 1024)
#define MAX_ATTEMPTS 3

struct exchange {
    int lfd;
    int port;
    int attempts; /* client attempts made */
    int first_err; /* the first attempt's error, 0 if it succeeded */
    int server_errs; /* connections the server dropped on an error */
};

/* Echoes one connection until EOF or an error. */
static int serve_conn(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t n = knit_read(fd, buf, sizeof(buf));
        if (n <= 0) {
            knit_close(fd);
            return (int)n;
        }
        ssize_t w = knit_write_all(fd, buf, (size_t)n);
        if (w < 0) {
            knit_close(fd);
            return (int)w;
        }
    }
}

static int server(void *arg)
{
    struct exchange *x = arg;
    for (;;) {
        int fd = knit_tcp_accept(x->lfd, NULL, NULL);
        if (fd == -ECANCELED)
            return 0;
        if (fd < 0) {
            /* EMFILE and friends: knit sheds the pending connection and
             * the listener stays usable. */
            x->server_errs++;
            continue;
        }
        if (serve_conn(fd) < 0)
            x->server_errs++;
    }
}

/* One client exchange: 0 when every byte came back in order. */
static int client_once(int port)
{
    static char out[PAYLOAD], in[PAYLOAD];
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (char)(i * 131 + 7);
    int fd = knit_tcp_connect("127.0.0.1", port);
    if (fd < 0)
        return fd;
    ssize_t r = knit_write_all(fd, out, sizeof(out));
    if (r >= 0)
        r = knit_shutdown(fd, SHUT_WR);
    if (r >= 0)
        r = knit_read_exact(fd, in, sizeof(in));
    knit_close(fd);
    if (r < 0)
        return (int)r;
    if (r != (ssize_t)sizeof(in) || memcmp(in, out, sizeof(in)) != 0)
        return -EPROTO;
    return 0;
}

static int exchange_main(void *arg)
{
    struct exchange *x = arg;
    x->lfd = knit_tcp_listen("127.0.0.1", 0, 16);
    if (x->lfd < 0)
        return x->lfd;
    x->port = knit_local_port(x->lfd);
    knit_task *srv = knit_spawn(server, x);
    if (!srv)
        return -ENOMEM;
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 20000); /* a hang fails, not stalls */
    int r = -EIO;
    while (x->attempts < MAX_ATTEMPTS) {
        x->attempts++;
        r = client_once(x->port);
        if (x->attempts == 1)
            x->first_err = r;
        if (r == 0 || r == -ETIMEDOUT || r == -ECANCELED)
            break;
    }
    knit_scope_exit(&s);
    knit_cancel(srv);
    knit_join(srv);
    knit_close(x->lfd);
    return r;
}

/* Runs the exchange with the @n-th call at @site failing with @err.
 * Returns false once the fault was never reached (the loop is done). */
static bool run_with_fault(const knit_config *cfg, enum knit_fault_site site,
                           int err, long n, struct exchange *x)
{
    memset(x, 0, sizeof(*x));
    knit__fault_after(site, n, err);
    int r = knit_run(cfg, exchange_main, x);
    bool reached = !knit__fault_pending(site);
    knit__fault_after(site, 0, 0);
    /* Setting up (the listener's socket) may meet the fault: then the
     * run reports it, having made no exchange. */
    bool setup_failed = x->attempts == 0 && r == -err;
    if (r != 0 && !setup_failed)
        fail_msg("fault %d at site %d call %ld: exchange ended with %d "
                 "after %d attempts",
                 err, site, n, r, x->attempts);
    if (setup_failed)
        x->attempts = 1; /* as one failed attempt, for the checks */
    return reached;
}

/* The loop for one (site, errno): returns the fault points exercised. */
static long fault_loop(const knit_config *cfg, enum knit_fault_site site,
                       int err, bool invisible)
{
    long n = 1;
    struct exchange x;
    for (; run_with_fault(cfg, site, err, n, &x); n++) {
        if (invisible) {
            if (x.attempts != 1)
                fail_msg("fault %d at site %d call %ld should be invisible "
                         "but took %d attempts (first: %d)",
                         err, site, n, x.attempts, x.first_err);
        } else if (x.attempts > 2) {
            fail_msg("fault %d at site %d call %ld: %d attempts", err, site,
                     n, x.attempts);
        }
        if (n > 10000)
            fail_msg("the fault loop does not end");
    }
    assert_true(n > 1); /* the site was reached at least once */
    return n - 1;
}

static void config(knit_config *cfg, int workers, int io)
{
    knit_config_default(cfg);
    cfg->workers = workers;
    cfg->io = io;
    cfg->stall_ms = -1;
}

static void eintr_is_invisible(void **state)
{
    (void)state;
    knit_config cfg;
    config(&cfg, 1, KNIT_IO_AUTO);
    long points = 0;
    points += fault_loop(&cfg, KNIT_FAULT_READ, EINTR, true);
    points += fault_loop(&cfg, KNIT_FAULT_WRITE, EINTR, true);
    points += fault_loop(&cfg, KNIT_FAULT_ACCEPT, EINTR, true);
    points += fault_loop(&cfg, KNIT_FAULT_CONNECT, EINTR, true);
    printf("EINTR: %ld fault points\n", points);
}

static void eagain_is_invisible(void **state)
{
    (void)state;
    knit_config cfg;
    config(&cfg, 2, KNIT_IO_EPOLL);
    long points = 0;
    points += fault_loop(&cfg, KNIT_FAULT_READ, EAGAIN, true);
    points += fault_loop(&cfg, KNIT_FAULT_WRITE, EAGAIN, true);
    points += fault_loop(&cfg, KNIT_FAULT_ACCEPT, EAGAIN, true);
    printf("EAGAIN: %ld fault points\n", points);
}

static void resets_and_exhaustion_fail_one_exchange(void **state)
{
    (void)state;
    knit_config cfg;
    config(&cfg, 1, KNIT_IO_AUTO);
    long points = 0;
    points += fault_loop(&cfg, KNIT_FAULT_READ, ECONNRESET, false);
    points += fault_loop(&cfg, KNIT_FAULT_WRITE, ECONNRESET, false);
    points += fault_loop(&cfg, KNIT_FAULT_ACCEPT, EMFILE, false);
    points += fault_loop(&cfg, KNIT_FAULT_SOCKET, EMFILE, false);
    points += fault_loop(&cfg, KNIT_FAULT_CONNECT, ECONNREFUSED, false);
    printf("ECONNRESET/EMFILE/ECONNREFUSED: %ld fault points\n", points);
}

static void a_bad_knit_faults_spec_is_refused(void **state)
{
    (void)state;
    assert_int_equal(knit__fault_parse("read=ECONNRESET:100,accept=EMFILE:5"),
                     0);
    assert_int_equal(knit__fault_parse("read=EBOGUS:1"), -EINVAL);
    assert_int_equal(knit__fault_parse("nosuch=EINTR:1"), -EINVAL);
    assert_int_equal(knit__fault_parse("read=EINTR:2000000"), -EINVAL);
    assert_int_equal(knit__fault_parse("read=EINTR"), -EINVAL);
    assert_int_equal(knit__fault_parse(""), 0); /* everything off */
    assert_int_equal(knit__fault(KNIT_FAULT_READ), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_bad_knit_faults_spec_is_refused),
        cmocka_unit_test(eintr_is_invisible),
        cmocka_unit_test(eagain_is_invisible),
        cmocka_unit_test(resets_and_exhaustion_fail_one_exchange),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
