// SPDX-License-Identifier: MIT
/*
 * Networking (knit/net.h), on loopback only: 127.0.0.1, ::1 and Unix
 * sockets in a mkdtemp directory; no other address is ever used.
 *
 * Every blocking call gets its three tests (it succeeds; -ECANCELED when
 * cancelled while parked; -ETIMEDOUT when its scope expires) plus a fired
 * scope winning over ready data. Then the stream cases: partial reads and
 * writes through tiny socket buffers, peer resets, short messages, a
 * closed fd waking its reader, UDP and Unix sockets, name resolution, the
 * accept loop under fd exhaustion (in a forked child), and 10,000
 * connections held open at once.
 *
 * The cases of the kernel's accept and connect run on both backends
 * whatever KNIT_IO says (io_uring where it works): with io_uring a
 * listener of knit's is served by a multishot accept whose queue outlives
 * the accepting tasks (many connections through it, its bound, accepting
 * tasks cancelled while connections wait, the listener closed with
 * connections queued, fd exhaustion), other listeners and several workers
 * by single-shot accepts, and TCP connects are the kernel's
 * (IORING_OP_CONNECT: refused, timed out, cancelled).
 *
 * The manual clock works for sockets: it jumps only when every task is
 * idle, and loopback delivers in the sending system call, so a task that
 * waits for data another task wrote is woken before the clock moves. Only
 * the resolver test with a real name and the EMFILE test (which measures
 * CPU time over real time) run on the monotonic clock.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "blocking/pool.h"
#include "core/compiler.h"
#include "core/sched.h"
#include "kt.h"

#define LOOP4 "127.0.0.1"
#define MIB (1024 * 1024)

/* ---- helpers ------------------------------------------------------------ */

static int listen4(int backlog)
{
    int l = knit_tcp_listen(LOOP4, 0, backlog);
    assert_true(l >= 0);
    return l;
}

/* A connected TCP pair over loopback: *c the client, *s the server side. */
static void tcp_pair(int *c, int *s)
{
    int l = listen4(16);
    *c = knit_tcp_connect(LOOP4, knit_local_port(l));
    assert_true(*c >= 0);
    *s = knit_tcp_accept(l, NULL, NULL);
    assert_true(*s >= 0);
    assert_int_equal(knit_close(l), 0);
}

static bool nonblock_cloexec(int fd)
{
    return (fcntl(fd, F_GETFL) & O_NONBLOCK) &&
           (fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static int nodelay(int fd)
{
    int v = -1;
    socklen_t len = sizeof(v);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    return v;
}

static void set_int(int fd, int level, int name, int v)
{
    assert_int_equal(setsockopt(fd, level, name, &v, sizeof(v)), 0);
}

/*
 * Tiny buffers on the path writer -> reader: the smallest send buffer the
 * kernel allows, so one write takes a few KiB at most, and a 32 KiB
 * receive buffer. Not smaller: a receive window below loopback's MSS
 * (64 KiB) leaves TCP moving on its persist timer, ~20 s per MiB.
 */
static void small_buffers(int writer, int reader)
{
    set_int(writer, SOL_SOCKET, SO_SNDBUF, 4096);
    set_int(reader, SOL_SOCKET, SO_RCVBUF, 32768);
}

/* Fills @fd's send path until it would block; returns the bytes queued. */
static size_t fill(int fd)
{
    static char junk[4096];
    size_t n = 0;
    ssize_t r;
    while ((r = send(fd, junk, sizeof(junk), MSG_NOSIGNAL)) > 0)
        n += (size_t)r;
    assert_int_equal(errno, EAGAIN);
    /* Room for less than a chunk may be left: a 3-byte write would fit. */
    while ((r = send(fd, junk, 1, MSG_NOSIGNAL)) > 0)
        n += (size_t)r;
    assert_int_equal(errno, EAGAIN);
    return n;
}

/* Reads and drops what @fd has now. */
static void drain(int fd)
{
    char buf[4096];
    while (recv(fd, buf, sizeof(buf), 0) > 0)
        ;
}

/* Closes @fd with a reset (SO_LINGER 0) instead of a FIN. */
static void reset_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    assert_int_equal(knit_close(fd), 0);
}

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 131u + (i >> 9));
}

static uint8_t *pattern_buf(size_t n)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = pattern(i);
    return p;
}

/* Waits until main is the only task left (pool jobs that outlive the
 * calls that started them finish in their own time). */
static void settle(void)
{
    knit_stats s;
    for (;;) {
        assert_int_equal(knit_rt_stats(&s), 0);
        if (s.tasks_alive == 1)
            return;
        assert_int_equal(knit_sleep(1), 0);
    }
}

/* A port on 127.0.0.1 that is bound but not listening: connects to it
 * are refused. The socket is returned so that the port stays taken. */
static int refusing_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/*
 * Makes @l's (listen(fd, 0)) accept queue full: connects raw sockets
 * until one is still connecting after 200 ms, because the kernel drops
 * SYNs while the queue is full. Returns how many fds it put in @fds.
 */
static int fill_backlog(int port, int *fds, int max)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < max; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(fds[i] >= 0);
        int r = connect(fds[i], (struct sockaddr *)&a, sizeof(a));
        assert_true(r == 0 || errno == EINPROGRESS);
        struct pollfd p = {.fd = fds[i], .events = POLLOUT};
        if (poll(&p, 1, 200) == 0)
            return i + 1;
    }
    fail_msg("the accept queue never filled");
    return 0;
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* One call under test, run in a task or inline. */
struct op {
    int fd;        /* the fd it works on */
    int port;      /* for connects */
    const char *s; /* a host or path */
    char buf[64];  /* data */
    size_t n;      /* bytes asked for */
    ssize_t r;     /* its result */
    size_t done;   /* _partial's count */
    int64_t at;    /* knit_now() when it returned */
};

#define NOT_RUN 12345

static int do_read(void *arg)
{
    struct op *o = arg;
    o->r = knit_read(o->fd, o->buf, o->n);
    o->at = knit_now();
    return 0;
}

static int do_readv(void *arg)
{
    struct op *o = arg;
    struct iovec iov[2] = {{o->buf, 1}, {o->buf + 1, o->n - 1}};
    o->r = knit_readv(o->fd, iov, 2);
    o->at = knit_now();
    return 0;
}

static int do_write(void *arg)
{
    struct op *o = arg;
    o->r = knit_write(o->fd, o->buf, o->n);
    o->at = knit_now();
    return 0;
}

static int do_writev(void *arg)
{
    struct op *o = arg;
    struct iovec iov[2] = {{o->buf, 1}, {o->buf + 1, o->n - 1}};
    o->r = knit_writev(o->fd, iov, 2);
    o->at = knit_now();
    return 0;
}

static int do_read_exact(void *arg)
{
    struct op *o = arg;
    o->r = knit_read_exact_partial(o->fd, o->buf, o->n, &o->done);
    o->at = knit_now();
    return 0;
}

static int do_accept(void *arg)
{
    struct op *o = arg;
    o->r = knit_tcp_accept(o->fd, NULL, NULL);
    o->at = knit_now();
    return 0;
}

static int do_connect(void *arg)
{
    struct op *o = arg;
    o->r = knit_tcp_connect(LOOP4, o->port);
    o->at = knit_now();
    return 0;
}

static int do_unix_connect(void *arg)
{
    struct op *o = arg;
    o->r = knit_unix_connect(o->s);
    o->at = knit_now();
    return 0;
}

static int do_recvfrom(void *arg)
{
    struct op *o = arg;
    o->r = knit_recvfrom(o->fd, o->buf, o->n, NULL, NULL);
    o->at = knit_now();
    return 0;
}

static int do_resolve(void *arg)
{
    struct op *o = arg;
    struct addrinfo *ai = NULL;
    o->r = knit_resolve(o->s, 80, SOCK_STREAM, &ai);
    if (o->r == 0) {
        assert_non_null(ai);
        freeaddrinfo(ai);
    } else {
        assert_null(ai);
    }
    o->at = knit_now();
    return 0;
}

/* Runs fn(o) as a task, cancels it once parked: -ECANCELED. */
static void expect_cancel(knit_fn fn, struct op *o)
{
    o->r = NOT_RUN;
    knit_task *t = knit_spawn(fn, o);
    assert_non_null(t);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(o->r, NOT_RUN); /* parked */
    knit_cancel(t);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(o->r, -ECANCELED);
}

/* Runs fn(o) in a scope expiring in @ms: -ETIMEDOUT exactly then. */
static void expect_timeout(knit_fn fn, struct op *o, int64_t ms)
{
    int64_t t0 = knit_now();
    knit_scope s;
    knit_scope_enter(&s, t0 + ms);
    o->r = NOT_RUN;
    fn(o);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    assert_int_equal(o->r, -ETIMEDOUT);
    assert_int_equal(o->at, t0 + ms);
}

/* Runs fn(o) in a cancelled scope: -ECANCELED at once, whatever is ready. */
static void expect_fired(knit_fn fn, struct op *o)
{
    int64_t t0 = knit_now();
    knit_scope s;
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_cancel(&s);
    o->r = NOT_RUN;
    fn(o);
    assert_int_equal(knit_scope_exit(&s), -ECANCELED);
    assert_int_equal(o->r, -ECANCELED);
    assert_int_equal(o->at, t0);
}

#define KT_CASE(name, body)                                                    \
    static void name(void **state)                                             \
    {                                                                          \
        (void)state;                                                           \
        assert_int_equal(kt_run(body, NULL), 0);                               \
    }

/* ---- both backends ------------------------------------------------------- */

/* A cmocka case that runs @body on both backends. */
#define BOTH_CASE(name, body)                                                  \
    static void name(void **state)                                             \
    {                                                                          \
        (void)state;                                                           \
        kt_run_both(body, NULL);                                                  \
    }

/* The calling worker's driver. */
static struct knit_io *io_here(void)
{
    return &knit__worker()->io;
}

static bool on_uring(void)
{
    return strcmp(io_here()->ops->name, "uring") == 0;
}

/* The fds this process has open. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* ---- TCP listen, connect, accept ------------------------------------------
 */

static int t_tcp_roundtrip(void *arg)
{
    (void)arg;
    int l = listen4(16);
    assert_true(nonblock_cloexec(l));
    int port = knit_local_port(l);
    assert_true(port > 0);
    int c = knit_tcp_connect(LOOP4, port);
    assert_true(c >= 0);
    struct sockaddr_storage peer;
    socklen_t plen = 0;
    int s = knit_tcp_accept(l, &peer, &plen);
    assert_true(s >= 0);
    assert_int_equal(plen, sizeof(struct sockaddr_in));
    struct sockaddr_in *in = (struct sockaddr_in *)&peer;
    assert_int_equal(in->sin_family, AF_INET);
    assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(ntohs(in->sin_port), knit_local_port(c));
    assert_true(nonblock_cloexec(c) && nonblock_cloexec(s));
    assert_int_equal(nodelay(c), 1);
    assert_int_equal(nodelay(s), 1);
    char buf[16] = {0};
    assert_int_equal(knit_write(c, "hello", 5), 5);
    assert_int_equal(knit_read(s, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(knit_write(s, "world", 5), 5);
    assert_int_equal(knit_read_exact(c, buf, 5), 5);
    assert_memory_equal(buf, "world", 5);
    assert_int_equal(knit_close(c), 0);
    assert_int_equal(knit_read(s, buf, sizeof(buf)), 0); /* EOF */
    assert_int_equal(knit_close(s), 0);
    assert_int_equal(knit_close(l), 0);
    assert_int_equal(knit_now(), 0); /* nothing waited for a timer */
    return 0;
}
KT_CASE(tcp_listen_connect_accept_and_exchange_bytes, t_tcp_roundtrip)

static int t_tcp_ipv6(void *arg)
{
    (void)arg;
    int l = knit_tcp_listen("::1", 0, 16);
    if (l == -EADDRNOTAVAIL || l == -EAFNOSUPPORT) {
        print_message("no IPv6 loopback here: skipped\n");
        return 0;
    }
    assert_true(l >= 0);
    int c = knit_tcp_connect("::1", knit_local_port(l));
    assert_true(c >= 0);
    struct sockaddr_storage peer;
    socklen_t plen = 0;
    int s = knit_tcp_accept(l, &peer, &plen);
    assert_true(s >= 0);
    assert_int_equal(peer.ss_family, AF_INET6);
    assert_int_equal(plen, sizeof(struct sockaddr_in6));
    assert_int_equal(nodelay(s), 1);
    assert_int_equal(knit_write(c, "v6", 2), 2);
    char buf[4];
    assert_int_equal(knit_read_exact(s, buf, 2), 2);
    assert_memory_equal(buf, "v6", 2);
    knit_close(c);
    knit_close(s);
    knit_close(l);
    return 0;
}
KT_CASE(tcp_works_on_ipv6_loopback, t_tcp_ipv6)

static int t_tcp_names(void *arg)
{
    (void)arg;
    /* "localhost" goes through the DNS pool for listen and connect. */
    int l = knit_tcp_listen("localhost", 0, 16);
    assert_true(l >= 0);
    int c = knit_tcp_connect("localhost", knit_local_port(l));
    assert_true(c >= 0);
    int s = knit_tcp_accept(l, NULL, NULL);
    assert_true(s >= 0);
    knit_close(c);
    knit_close(s);
    knit_close(l);
    return 0;
}
KT_CASE(tcp_listen_and_connect_resolve_names, t_tcp_names)

static int t_listen_errors(void *arg)
{
    (void)arg;
    assert_int_equal(knit_tcp_listen(LOOP4, -1, 1), -EINVAL);
    assert_int_equal(knit_tcp_listen(LOOP4, 65536, 1), -EINVAL);
    assert_int_equal(knit_tcp_listen_flags(LOOP4, 0, 1, 0x80), -EINVAL);
    int l = listen4(1);
    int port = knit_local_port(l);
    assert_int_equal(knit_tcp_listen(LOOP4, port, 1), -EADDRINUSE);
    knit_close(l);
    /* SO_REUSEPORT: two listeners share one port. */
    int a = knit_tcp_listen_flags(LOOP4, 0, 1, KNIT_LISTEN_REUSEPORT);
    assert_true(a >= 0);
    int b = knit_tcp_listen_flags(LOOP4, knit_local_port(a), 1,
                                  KNIT_LISTEN_REUSEPORT);
    assert_true(b >= 0);
    assert_int_equal(knit_local_port(a), knit_local_port(b));
    knit_close(a);
    knit_close(b);
    /* A fired scope does not matter to a numeric listen: it never waits. */
    knit_scope s;
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_cancel(&s);
    l = listen4(1);
    knit_close(l);
    /* ...but a name lookup is a cancellation point. */
    assert_int_equal(knit_tcp_listen("localhost", 0, 1), -ECANCELED);
    knit_scope_exit(&s);
    assert_int_equal(knit_local_port(-1), -EBADF);
    return 0;
}
KT_CASE(tcp_listen_reports_bad_arguments_and_busy_ports, t_listen_errors)

static void tcp_listen_works_outside_a_task(void **state)
{
    (void)state;
    int l = knit_tcp_listen(LOOP4, 0, 1);
    assert_true(l >= 0);
    assert_true(knit_local_port(l) > 0);
    assert_int_equal(knit_close(l), 0);
    l = knit_tcp_listen("localhost", 0, 1); /* looked up on this thread */
    assert_true(l >= 0);
    assert_int_equal(knit_close(l), 0);
}

static int t_accept(void *arg)
{
    (void)arg;
    int l = listen4(16);
    int port = knit_local_port(l);
    struct op o = {.fd = l};
    /* Succeeds once a client comes. */
    knit_task *t = knit_spawn(do_accept, &o);
    assert_int_equal(knit_yield(), 0);
    int c = knit_tcp_connect(LOOP4, port);
    assert_true(c >= 0);
    assert_int_equal(knit_join(t), 0);
    assert_true(o.r >= 0);
    knit_close(o.r);
    knit_close(c);
    expect_cancel(do_accept, &o);
    expect_timeout(do_accept, &o, 40);
    /* A fired scope wins over a pending connection, which stays queued. */
    c = knit_tcp_connect(LOOP4, port);
    assert_true(c >= 0);
    expect_fired(do_accept, &o);
    int s = knit_tcp_accept(l, NULL, NULL);
    assert_true(s >= 0);
    knit_close(s);
    knit_close(c);
    knit_close(l);
    return 0;
}
KT_CASE(tcp_accept_succeeds_is_cancelled_and_times_out, t_accept)

static int t_accept_errors(void *arg)
{
    (void)arg;
    assert_int_equal(knit_tcp_accept(-1, NULL, NULL), -EBADF);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_int_equal(knit_tcp_accept(fd, NULL, NULL), -EINVAL);
    close(fd);
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    assert_int_equal(knit_tcp_accept(p[0], NULL, NULL), -ENOTSOCK);
    close(p[0]);
    close(p[1]);
    return 0;
}
KT_CASE(tcp_accept_reports_bad_fds, t_accept_errors)

/* Connects the kernel ran (IORING_OP_CONNECT) so far on this worker. */
static uint64_t kernel_connects(void)
{
    return io_here()->submitted[KNIT_IO_OP_CONNECT];
}

static int t_connect_refused(void *arg)
{
    (void)arg;
    uint64_t k0 = kernel_connects();
    int port;
    int b = refusing_port(&port);
    assert_int_equal(knit_tcp_connect(LOOP4, port), -ECONNREFUSED);
    /* With io_uring the kernel ran it and said so in its completion. */
    assert_int_equal(kernel_connects() - k0, on_uring() ? 1 : 0);
    close(b);
    assert_int_equal(knit_tcp_connect(NULL, 80), -EINVAL);
    assert_int_equal(knit_tcp_connect(LOOP4, 65536), -EINVAL);
    assert_int_equal(knit_tcp_connect(LOOP4, -1), -EINVAL);
    return 0;
}
BOTH_CASE(tcp_connect_to_a_closed_port_is_refused, t_connect_refused)

static int t_connect_timeout(void *arg)
{
    (void)arg;
    uint64_t k0 = kernel_connects();
    /* Backlog 0 and nobody accepting: once the accept queue is full the
     * kernel drops SYNs, so a connect waits for a SYN-ACK that does not
     * come (for a second, until the first retransmission). */
    int l = listen4(0);
    int port = knit_local_port(l);
    int base = count_fds(); /* after the first listener's reserve fd */
    int fds[64];
    int n = fill_backlog(port, fds, 64);
    struct op o = {.port = port};
    expect_timeout(do_connect, &o, 50);
    expect_cancel(do_connect, &o);
    expect_fired(do_connect, &o);
    /* The scope fired in flight: the kernel's connect was cancelled and
     * its completion waited for (its address is on the task's stack). */
    assert_int_equal(kernel_connects() - k0, on_uring() ? 2 : 0);
    close_all(fds, n);
    assert_int_equal(count_fds(), base); /* no socket left behind */
    knit_close(l);
    return 0;
}
BOTH_CASE(tcp_connect_times_out_and_is_cancelled_on_a_full_backlog,
          t_connect_timeout)

static int t_connect_cancel_storm(void *arg)
{
    (void)arg;
    int l = listen4(0);
    int port = knit_local_port(l);
    int base = count_fds();
    int fds[64];
    int n = fill_backlog(port, fds, 64);
    /* Cancelled before it starts, while its socket is made, while the
     * kernel runs it: each ends at once and leaves nothing behind. */
    int parked = 0;
    for (int i = 0; i < 300; i++) {
        struct op o = {.port = port, .r = NOT_RUN};
        knit_task *t = knit_spawn(do_connect, &o);
        assert_non_null(t);
        for (int k = 0; k < i % 3; k++)
            assert_int_equal(knit_yield(), 0);
        knit_cancel(t);
        int r = knit_join(t);
        if (r == -ECANCELED) {
            assert_int_equal(o.r, NOT_RUN);
            continue;
        }
        assert_int_equal(r, 0);
        assert_int_equal(o.r, -ECANCELED);
        parked++;
    }
    assert_true(parked >= 100);
    close_all(fds, n);
    assert_int_equal(count_fds(), base);
    knit_close(l);
    return 0;
}
BOTH_CASE(tcp_connects_cancelled_at_any_moment_leak_nothing,
          t_connect_cancel_storm)

/* ---- reading and writing ------------------------------------------------- */

static int t_read(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s);
    struct op o = {.fd = s, .n = sizeof(o.buf), .r = NOT_RUN};
    /* Succeeds when data arrives. */
    knit_task *t = knit_spawn(do_read, &o);
    assert_int_equal(knit_sleep(20), 0);
    assert_int_equal(o.r, NOT_RUN);
    assert_int_equal(knit_write(c, "abc", 3), 3);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(o.r, 3);
    assert_int_equal(o.at, 20);
    assert_memory_equal(o.buf, "abc", 3);
    expect_cancel(do_read, &o);
    expect_timeout(do_read, &o, 25);
    expect_cancel(do_readv, &o);
    expect_timeout(do_readv, &o, 25);
    /* A fired scope wins over ready data, which stays readable. */
    assert_int_equal(knit_write(c, "xyz", 3), 3);
    expect_fired(do_read, &o);
    expect_fired(do_readv, &o);
    o.n = 2;
    do_readv(&o);
    assert_int_equal(o.r, 2);
    assert_memory_equal(o.buf, "xy", 2);
    assert_int_equal(knit_read(s, o.buf, sizeof(o.buf)), 1);
    knit_close(c);
    knit_close(s);
    return 0;
}
KT_CASE(read_succeeds_is_cancelled_and_times_out, t_read)

/*
 * Reads after a short read. On epoll a socket knit owns may then be
 * parked on before the next read (the read would fail: the backend's
 * "drained" hint); whatever came meanwhile must still be seen, and an
 * end or a reset that arrived with the last data must not leave the
 * reader parked for ever. Each read has a deadline, so a hang fails.
 */
struct reads {
    int fd;
    ssize_t r[3]; /* the results of up to three reads */
    char got[64];
    int nap;      /* ms to sleep between the first and second read */
};

static ssize_t read_within(int fd, void *buf, size_t n)
{
    knit_scope sc;
    knit_scope_enter(&sc, knit_now() + 1000);
    ssize_t r = knit_read(fd, buf, n);
    int err = knit_scope_exit(&sc);
    return err ? err : r;
}

static int reader3(void *arg)
{
    struct reads *x = arg;
    x->r[0] = read_within(x->fd, x->got, sizeof(x->got));
    if (x->nap)
        assert_int_equal(knit_sleep(x->nap), 0);
    x->r[1] = read_within(x->fd, x->got + 16, sizeof(x->got) - 16);
    x->r[2] = read_within(x->fd, x->got + 32, sizeof(x->got) - 32);
    return 0;
}

static int t_short_reads(void *arg)
{
    (void)arg;
    int c, s;
    /* Data and the end come in one wake-up of the parked reader: the
     * short read leaves the end to read. */
    tcp_pair(&c, &s);
    struct reads x = {.fd = s};
    knit_task *t = knit_spawn(reader3, &x);
    kt_settle(); /* parked in its first read */
    assert_int_equal(knit_write(c, "hello", 5), 5);
    assert_int_equal(knit_shutdown(c, SHUT_WR), 0);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(x.r[0], 5);
    assert_memory_equal(x.got, "hello", 5);
    assert_int_equal(x.r[1], 0);
    assert_int_equal(x.r[2], 0);
    knit_close(c);
    knit_close(s);
    /* The same with a reset: the data, then the error. */
    tcp_pair(&c, &s);
    memset(&x, 0, sizeof(x));
    x.fd = s;
    t = knit_spawn(reader3, &x);
    kt_settle();
    assert_int_equal(knit_write(c, "bye", 3), 3);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    knit_close(c); /* an abortive close: RST */
    assert_int_equal(knit_join(t), 0);
    /* The data may be dropped with the reset; either way nothing hangs
     * and the reset is reported. */
    assert_true(x.r[0] == 3 || x.r[0] == -ECONNRESET);
    assert_true(x.r[1] == -ECONNRESET || x.r[1] == 0);
    assert_true(x.r[2] == 0 || x.r[2] == -ECONNRESET);
    knit_close(s);
    /* Data that comes while the reader sleeps after a short read (the
     * loop polls meanwhile and finds no waiter) is read, not waited for. */
    tcp_pair(&c, &s);
    memset(&x, 0, sizeof(x));
    x.fd = s;
    x.nap = 10;
    assert_int_equal(knit_write(c, "one", 3), 3);
    t = knit_spawn(reader3, &x);
    kt_settle(); /* read "one" (short), now asleep */
    assert_int_equal(x.r[0], 3);
    assert_int_equal(knit_write(c, "two", 3), 3);
    assert_int_equal(knit_shutdown(c, SHUT_WR), 0);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(x.r[1], 3);
    assert_memory_equal(x.got + 16, "two", 3);
    assert_int_equal(x.r[2], 0);
    knit_close(c);
    knit_close(s);
    return 0;
}
KT_CASE(reads_after_a_short_read_see_new_data_the_end_and_a_reset,
        t_short_reads)

static int t_write(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s);
    small_buffers(c, s);
    struct op o = {.fd = c, .n = 3};
    memcpy(o.buf, "abc", 3);
    fill(c);
    expect_cancel(do_write, &o);
    expect_timeout(do_write, &o, 30);
    expect_cancel(do_writev, &o);
    expect_timeout(do_writev, &o, 30);
    /* Succeeds once the reader makes room. Filled again: on a slow
     * machine (TSan under load) the kernel may have freed send-buffer
     * room since (seen once). */
    fill(c);
    o.r = NOT_RUN;
    knit_task *t = knit_spawn(do_write, &o);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(o.r, NOT_RUN);
    struct op rd = {.fd = s};
    while (o.r == NOT_RUN) {
        drain(s);
        /* Waits for the sender's queued data to come across. */
        rd.n = 1;
        do_read(&rd);
        assert_int_equal(rd.r, 1);
    }
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(o.r, 3);
    knit_close(c);
    knit_close(s);
    /* A fired scope: nothing is written although there is room. */
    tcp_pair(&c, &s);
    o.fd = c;
    expect_fired(do_write, &o);
    expect_fired(do_writev, &o);
    char b;
    assert_int_equal(recv(s, &b, 1, 0), -1);
    assert_int_equal(errno, EAGAIN);
    do_writev(&o);
    assert_int_equal(o.r, 3);
    assert_int_equal(knit_read_exact(s, o.buf, 3), 3);
    assert_memory_equal(o.buf, "abc", 3);
    knit_close(c);
    knit_close(s);
    return 0;
}
KT_CASE(write_succeeds_is_cancelled_and_times_out, t_write)

struct stream {
    int fd;       /* the reading end */
    size_t skip;  /* bytes of an earlier partial write to check first */
    size_t n;     /* bytes of the pattern expected after them */
    size_t reads; /* knit_read calls that returned data */
};

/* Reads @skip + @n pattern bytes in small chunks, then expects EOF. */
static int reader(void *arg)
{
    struct stream *st = arg;
    uint8_t buf[1000];
    for (int part = 0; part < 2; part++) {
        size_t want = part ? st->n : st->skip;
        size_t got = 0;
        while (got < want) {
            size_t ask = want - got < sizeof(buf) ? want - got : sizeof(buf);
            ssize_t r = knit_read(st->fd, buf, ask);
            assert_true(r > 0);
            for (ssize_t i = 0; i < r; i++)
                assert_int_equal(buf[i], pattern(got + (size_t)i));
            got += (size_t)r;
            st->reads++;
        }
    }
    assert_int_equal(knit_read(st->fd, buf, sizeof(buf)), 0);
    return 0;
}

static int t_partial(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s);
    small_buffers(c, s);
    uint8_t *big = pattern_buf(MIB);
    /* One write takes what fits. */
    ssize_t w = knit_write(c, big, MIB);
    assert_true(w > 0 && w < MIB);
    struct stream st = {.fd = s, .skip = (size_t)w, .n = MIB};
    knit_task *t = knit_spawn(reader, &st);
    /* write_all goes on until the reader has taken everything. */
    assert_int_equal(knit_write_all(c, big, MIB), MIB);
    assert_int_equal(knit_shutdown(c, SHUT_WR), 0);
    assert_int_equal(knit_join(t), 0);
    assert_true(st.reads > MIB / 1000);
    knit_close(c);
    knit_close(s);

    /* Interrupted: _partial tells exactly how much went out. */
    tcp_pair(&c, &s);
    small_buffers(c, s);
    knit_scope sc;
    knit_scope_enter(&sc, knit_now() + 30);
    size_t done = 0;
    assert_int_equal(knit_write_all_partial(c, big, MIB, &done), -ETIMEDOUT);
    assert_int_equal(knit_scope_exit(&sc), -ETIMEDOUT);
    assert_true(done > 0 && done < MIB);
    assert_int_equal(knit_shutdown(c, SHUT_WR), 0);
    st = (struct stream){.fd = s, .skip = 0, .n = done};
    assert_int_equal(reader(&st), 0);
    knit_close(c);
    knit_close(s);
    free(big);
    return 0;
}
KT_CASE(partial_reads_and_writes_through_tiny_buffers_keep_every_byte,
        t_partial)

struct writer {
    int fd;
    const uint8_t *buf;
    size_t n;
    ssize_t r;
    size_t done;
};

static int write_all_task(void *arg)
{
    struct writer *w = arg;
    w->r = knit_write_all_partial(w->fd, w->buf, w->n, &w->done);
    return 0;
}

static int t_reset(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s);
    reset_close(s);
    char buf[8];
    assert_int_equal(knit_read(c, buf, sizeof(buf)), -ECONNRESET);
    /* SIGPIPE is at its default (fatal) action: no signal may come. */
    assert_int_equal(knit_write(c, "x", 1), -EPIPE);
    struct iovec iov = {buf, 1};
    assert_int_equal(knit_writev(c, &iov, 1), -EPIPE);
    assert_int_equal(knit_write_all(c, "xy", 2), -EPIPE);
    knit_close(c);

    /* Mid-stream: the reader resets while a 1 MiB write_all is going. */
    tcp_pair(&c, &s);
    small_buffers(c, s);
    uint8_t *big = pattern_buf(MIB);
    struct writer w = {.fd = c, .buf = big, .n = MIB};
    knit_task *t = knit_spawn(write_all_task, &w);
    uint8_t got[10000];
    assert_int_equal(knit_read_exact(s, got, sizeof(got)), sizeof(got));
    assert_memory_equal(got, big, sizeof(got));
    reset_close(s);
    assert_int_equal(knit_join(t), 0);
    assert_true(w.r == -ECONNRESET || w.r == -EPIPE);
    assert_true(w.done >= sizeof(got) && w.done < MIB);
    assert_int_equal(knit_write(c, "x", 1), -EPIPE);
    knit_close(c);
    free(big);
    return 0;
}
KT_CASE(peer_reset_gives_econnreset_then_epipe_without_sigpipe, t_reset)

struct pieces {
    int fd;
    const char *parts[4];
};

static int write_pieces(void *arg)
{
    struct pieces *p = arg;
    for (int i = 0; p->parts[i]; i++) {
        if (i)
            assert_int_equal(knit_sleep(5), 0);
        size_t n = strlen(p->parts[i]);
        assert_int_equal(knit_write_all(p->fd, p->parts[i], n), n);
    }
    return 0;
}

static int t_read_exact(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s);
    struct pieces p = {c, {"hel", "lo wo", "rld", NULL}};
    knit_task *t = knit_spawn(write_pieces, &p);
    char buf[16];
    size_t done = 0;
    assert_int_equal(knit_read_exact_partial(s, buf, 11, &done), 11);
    assert_int_equal(done, 11);
    assert_memory_equal(buf, "hello world", 11);
    assert_int_equal(knit_now(), 10);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(knit_read_exact(s, buf, 0), 0);
    /* Part of a message, then a deadline. */
    assert_int_equal(knit_write(c, "abc", 3), 3);
    struct op o = {.fd = s, .n = 10};
    expect_timeout(do_read_exact, &o, 20);
    assert_int_equal(o.done, 3);
    assert_memory_equal(o.buf, "abc", 3);
    expect_cancel(do_read_exact, &o);
    assert_int_equal(o.done, 0);
    /* End of file before the end of the message. */
    assert_int_equal(knit_write(c, "12345", 5), 5);
    assert_int_equal(knit_shutdown(c, SHUT_WR), 0);
    done = 99;
    assert_int_equal(knit_read_exact_partial(s, buf, 10, &done), -EPIPE);
    assert_int_equal(done, 5);
    assert_memory_equal(buf, "12345", 5);
    assert_int_equal(knit_read_exact(s, buf, 1), -EPIPE);
    knit_close(c);
    knit_close(s);
    assert_int_equal(knit_read_exact(-1, buf, 1), -EBADF);
    assert_int_equal(knit_write_all(-1, buf, 1), -EBADF);
    return 0;
}
KT_CASE(read_exact_collects_pieces_and_reports_early_eof_as_epipe, t_read_exact)

static int t_close_wakes(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s);
    struct op o = {.fd = s, .n = 8, .r = NOT_RUN};
    knit_task *t = knit_spawn(do_read, &o);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(o.r, NOT_RUN);
    assert_int_equal(knit_close(s), 0);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(o.r, -EBADF);
    assert_int_equal(knit_read(s, o.buf, 1), -EBADF);
    assert_int_equal(knit_close(-1), -EBADF);
    knit_close(c);
    return 0;
}
KT_CASE(knit_close_wakes_a_reader_with_ebadf, t_close_wakes)

static int t_shutdown_and_vectors(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s);
    struct iovec out[3] = {{"ab", 2}, {"cd", 2}, {"ef", 2}};
    assert_int_equal(knit_writev(c, out, 3), 6);
    char a[3], b[3];
    struct iovec in[2] = {{a, 3}, {b, 3}};
    assert_int_equal(knit_readv(s, in, 2), 6);
    assert_memory_equal(a, "abc", 3);
    assert_memory_equal(b, "def", 3);
    assert_int_equal(knit_writev(c, out, -1), -EINVAL);
    assert_int_equal(knit_shutdown(c, SHUT_WR), 0);
    assert_int_equal(knit_read(s, a, 1), 0);
    assert_int_equal(knit_shutdown(c, 42), -EINVAL);
    assert_int_equal(knit_shutdown(-1, SHUT_RD), -EBADF);
    knit_close(c);
    knit_close(s);
    /* Not sockets: write(2) and writev(2) take over after ENOTSOCK. */
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    assert_int_equal(knit_shutdown(p[0], SHUT_RD), -ENOTSOCK);
    assert_int_equal(knit_write(p[1], "pi", 2), 2);
    assert_int_equal(knit_writev(p[1], out, 2), 4);
    char buf[8];
    assert_int_equal(knit_read_exact(p[0], buf, 6), 6);
    assert_memory_equal(buf, "piabcd", 6);
    close(p[0]);
    close(p[1]);
    return 0;
}
KT_CASE(readv_writev_shutdown_and_pipes, t_shutdown_and_vectors)

/* ---- UDP ------------------------------------------------------------------
 */

static int t_udp(void *arg)
{
    (void)arg;
    int srv = knit_udp_bind(LOOP4, 0);
    assert_true(srv >= 0);
    assert_true(nonblock_cloexec(srv));
    int port = knit_local_port(srv);
    assert_true(port > 0);
    int cli = knit_udp_bind(LOOP4, 0);
    assert_true(cli >= 0);
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(
        knit_sendto(cli, "ping", 4, (struct sockaddr *)&to, sizeof(to)), 4);
    char buf[64];
    struct sockaddr_storage from;
    socklen_t flen = 0;
    assert_int_equal(knit_recvfrom(srv, buf, sizeof(buf), &from, &flen), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(flen, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(((struct sockaddr_in *)&from)->sin_port),
                     knit_local_port(cli));
    assert_int_equal(
        knit_sendto(srv, "pong", 4, (struct sockaddr *)&from, flen), 4);
    assert_int_equal(knit_recvfrom(cli, buf, sizeof(buf), NULL, NULL), 4);
    assert_memory_equal(buf, "pong", 4);
    /* A datagram is truncated to the buffer. */
    assert_int_equal(
        knit_sendto(cli, "0123456789", 10, (struct sockaddr *)&to, sizeof(to)),
        10);
    assert_int_equal(knit_recvfrom(srv, buf, 4, NULL, &flen), 4);
    assert_int_equal(flen, 0);
    /* Connected: knit_read / knit_write. */
    int cc = knit_udp_connect(LOOP4, port);
    assert_true(cc >= 0);
    assert_int_equal(knit_write(cc, "hi", 2), 2);
    assert_int_equal(knit_recvfrom(srv, buf, sizeof(buf), &from, &flen), 2);
    assert_int_equal(knit_sendto(srv, "yo", 2, (struct sockaddr *)&from, flen),
                     2);
    assert_int_equal(knit_read(cc, buf, sizeof(buf)), 2);
    assert_memory_equal(buf, "yo", 2);
    /* Waiting for a datagram. */
    struct op o = {.fd = srv, .n = sizeof(o.buf)};
    expect_cancel(do_recvfrom, &o);
    expect_timeout(do_recvfrom, &o, 30);
    assert_int_equal(knit_write(cc, "z", 1), 1);
    expect_fired(do_recvfrom, &o);
    o.r = NOT_RUN;
    knit_task *t = knit_spawn(do_recvfrom, &o);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(o.r, 1);
    o.fd = cc;
    expect_timeout(do_read, &o, 30);
    /* The server is gone: the next call on the connected socket says so. */
    knit_close(srv);
    assert_int_equal(knit_write(cc, "?", 1), 1);
    assert_int_equal(knit_read(cc, buf, sizeof(buf)), -ECONNREFUSED);
    knit_close(cc);
    /* Errors. */
    assert_int_equal(knit_udp_bind(LOOP4, -1), -EINVAL);
    int again = knit_udp_bind(LOOP4, knit_local_port(cli));
    assert_int_equal(again, -EADDRINUSE);
    assert_int_equal(knit_udp_connect(NULL, 1), -EINVAL);
    assert_int_equal(knit_sendto(cli, "x", 1, NULL, 0), -EDESTADDRREQ);
    assert_int_equal(
        knit_sendto(-1, "x", 1, (struct sockaddr *)&to, sizeof(to)), -EBADF);
    assert_int_equal(knit_recvfrom(-1, buf, 1, NULL, NULL), -EBADF);
    knit_close(cli);
    return 0;
}
KT_CASE(udp_bind_sendto_recvfrom_and_connected_sockets, t_udp)

/* ---- Unix stream sockets ------------------------------------------------- */

static int t_unix(void *arg)
{
    (void)arg;
    char dir[] = "/tmp/knit-net-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], file[128], missing[128], full[128];
    snprintf(path, sizeof(path), "%s/s.sock", dir);
    snprintf(file, sizeof(file), "%s/file", dir);
    snprintf(missing, sizeof(missing), "%s/missing.sock", dir);
    snprintf(full, sizeof(full), "%s/full.sock", dir);

    int l = knit_unix_listen(path, 8);
    assert_true(l >= 0);
    assert_true(nonblock_cloexec(l));
    assert_int_equal(knit_local_port(l), -EAFNOSUPPORT);
    int c = knit_unix_connect(path);
    assert_true(c >= 0);
    assert_true(nonblock_cloexec(c));
    struct sockaddr_storage peer;
    socklen_t plen = 0;
    int s = knit_tcp_accept(l, &peer, &plen);
    assert_true(s >= 0);
    assert_int_equal(peer.ss_family, AF_UNIX);
    assert_int_equal(knit_write(c, "unix", 4), 4);
    char buf[8];
    assert_int_equal(knit_read_exact(s, buf, 4), 4);
    assert_memory_equal(buf, "unix", 4);
    knit_close(c);
    knit_close(s);
    knit_close(l);
    /* The socket file is left behind: nobody listens, and a new listener
     * replaces it. */
    assert_int_equal(knit_unix_connect(path), -ECONNREFUSED);
    l = knit_unix_listen(path, 8);
    assert_true(l >= 0);
    c = knit_unix_connect(path);
    assert_true(c >= 0);
    knit_close(c);
    knit_close(l);
    /* A file that is not a socket is never removed. */
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(knit_unix_listen(file, 8), -EADDRINUSE);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    /* Errors. */
    char longp[200];
    memset(longp, 'x', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = 0;
    assert_int_equal(knit_unix_connect(missing), -ENOENT);
    assert_int_equal(knit_unix_listen(longp, 1), -ENAMETOOLONG);
    assert_int_equal(knit_unix_connect(longp), -ENAMETOOLONG);
    assert_int_equal(knit_unix_listen(NULL, 1), -EINVAL);
    assert_int_equal(knit_unix_connect(""), -EINVAL);

    /* A full queue: connect retries with back-off, within the scope. */
    l = knit_unix_listen(full, 0);
    assert_true(l >= 0);
    int fds[8];
    int n = 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, full, strlen(full) + 1);
    for (;;) {
        assert_true(n < 8);
        fds[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (connect(fds[n], (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            assert_int_equal(errno, EAGAIN);
            close(fds[n]);
            break;
        }
        n++;
    }
    struct op o = {.s = full};
    expect_timeout(do_unix_connect, &o, 30);
    expect_cancel(do_unix_connect, &o);
    expect_fired(do_unix_connect, &o);
    /* Room appears at t0 + 5: the retries at +1, +3, +7 find it at +7. */
    int64_t t0 = knit_now();
    o.r = NOT_RUN;
    knit_task *t = knit_spawn(do_unix_connect, &o);
    assert_int_equal(knit_sleep(5), 0);
    s = knit_tcp_accept(l, NULL, NULL);
    assert_true(s >= 0);
    assert_int_equal(knit_join(t), 0);
    assert_true(o.r >= 0);
    assert_int_equal(o.at, t0 + 7);
    knit_close(o.r);
    knit_close(s);
    close_all(fds, n);
    knit_close(l);

    unlink(path);
    unlink(file);
    unlink(full);
    assert_int_equal(rmdir(dir), 0);
    return 0;
}
KT_CASE(unix_sockets_listen_connect_accept_and_replace_old_files, t_unix)

/* ---- name resolution ------------------------------------------------------
 */

static bool has_loopback4(const struct addrinfo *ai, int port)
{
    for (; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET)
            continue;
        const struct sockaddr_in *in = (const void *)ai->ai_addr;
        if (ntohl(in->sin_addr.s_addr) == INADDR_LOOPBACK &&
            ntohs(in->sin_port) == port)
            return true;
    }
    return false;
}

static int t_resolve(void *arg)
{
    (void)arg;
    struct addrinfo *ai = NULL;
    assert_int_equal(knit_resolve("localhost", 80, SOCK_STREAM, &ai), 0);
    assert_true(has_loopback4(ai, 80));
    for (struct addrinfo *p = ai; p; p = p->ai_next)
        assert_int_equal(p->ai_socktype, SOCK_STREAM);
    freeaddrinfo(ai);
    assert_int_equal(knit_resolve("127.0.0.1", 53, SOCK_DGRAM, &ai), 0);
    assert_true(has_loopback4(ai, 53));
    assert_null(ai->ai_next);
    freeaddrinfo(ai);
    assert_int_equal(knit_resolve("::1", 8080, SOCK_STREAM, &ai), 0);
    assert_int_equal(ai->ai_family, AF_INET6);
    freeaddrinfo(ai);
    assert_int_equal(knit_resolve(NULL, 80, 0, &ai), -EINVAL);
    assert_int_equal(knit_resolve("localhost", -1, 0, &ai), -EINVAL);
    assert_int_equal(knit_resolve("localhost", 80, SOCK_RAW, &ai), -EINVAL);
    assert_int_equal(knit_resolve("localhost", 80, 0, NULL), -EINVAL);
    /* A fired scope: at once, numeric or not. */
    knit_scope s;
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_cancel(&s);
    assert_int_equal(knit_resolve("localhost", 80, 0, &ai), -ECANCELED);
    assert_int_equal(knit_resolve("127.0.0.1", 80, 0, &ai), -ECANCELED);
    knit_scope_exit(&s);
    return 0;
}
KT_CASE(resolve_finds_localhost_and_rejects_bad_arguments, t_resolve)

static void resolve_works_outside_a_task(void **state)
{
    (void)state;
    struct addrinfo *ai = NULL;
    assert_int_equal(knit_resolve("localhost", 7, SOCK_STREAM, &ai), 0);
    assert_true(has_loopback4(ai, 7));
    freeaddrinfo(ai);
}

static int t_resolve_invalid(void *arg)
{
    (void)arg;
    /* .invalid never resolves (RFC 6761); a resolver may still ask its
     * nameserver, so the wait is bounded and a timeout is accepted. */
    struct op o = {.s = "nonexistent.invalid"};
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 2000);
    do_resolve(&o);
    knit_scope_exit(&s);
    assert_true(o.r == -EHOSTUNREACH || o.r == -ETIMEDOUT);
    if (o.r == -ETIMEDOUT)
        print_message("the resolver took over 2 s for .invalid\n");
    knit_scope_enter(&s, knit_now() + 2000);
    int err = knit_tcp_connect("nonexistent.invalid", 80);
    knit_scope_exit(&s);
    assert_true(err == -EHOSTUNREACH || err == -ETIMEDOUT);
    settle();
    return 0;
}

static void resolve_of_an_invalid_name_is_ehostunreach(void **state)
{
    (void)state;
    knit_config cfg;
    kt_config(&cfg);
    cfg.clock = KNIT_CLOCK_MONOTONIC; /* the scope must be real time */
    assert_int_equal(kt_run_cfg(&cfg, t_resolve_invalid, NULL), 0);
}

/* A DNS pool job that holds its thread until @arg's pipe is closed. */
static int hold_dns_thread(void *arg)
{
    char c;
    while (read(*(int *)arg, &c, 1) > 0)
        ;
    return 0;
}

#define BLOCKERS 64 /* more than the DNS pool has threads (16) */

static int resolve_in_50ms(void *arg)
{
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 50);
    do_resolve(arg);
    knit_scope_exit(&s);
    return 0;
}

static int t_resolve_parked(void *arg)
{
    (void)arg;
    /* Every DNS thread is busy and jobs are queued behind them, so a
     * lookup waits, deterministically, until the test lets them go. */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    knit_task *b[BLOCKERS];
    for (int i = 0; i < BLOCKERS; i++) {
        b[i] = knit__spawn_blocking_in(KNIT_POOL_DNS, hold_dns_thread, &p[0]);
        assert_non_null(b[i]);
    }
    struct op o = {.s = "localhost"};
    expect_cancel(do_resolve, &o);
    /* A deadline while parked. The manual clock does not jump while pool
     * jobs run, so the test moves it. */
    int64_t t0 = knit_now();
    o.r = NOT_RUN;
    knit_task *t = knit_spawn(resolve_in_50ms, &o);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(o.r, NOT_RUN);
    knit_clock_advance(50);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(o.r, -ETIMEDOUT);
    assert_int_equal(o.at, t0 + 50);
    /* Succeeds once a thread is free. */
    o.r = NOT_RUN;
    t = knit_spawn(do_resolve, &o);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(o.r, NOT_RUN);
    close(p[1]);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(o.r, 0);
    for (int i = 0; i < BLOCKERS; i++)
        assert_int_equal(knit_join(b[i]), 0);
    close(p[0]);
    return 0;
}
KT_CASE(resolve_succeeds_is_cancelled_and_times_out_while_parked,
        t_resolve_parked)

static int t_resolve_races(void *arg)
{
    (void)arg;
    /* Cancel lookups at every stage: queued, running, answered but not
     * yet seen. Whichever side finishes first, nothing leaks (ASan) and
     * nothing is used after free (ASan, TSan). */
    int ok = 0, cancelled = 0, unstarted = 0;
    for (int i = 0; i < 300; i++) {
        struct op o = {.s = "localhost", .r = NOT_RUN};
        knit_task *t = knit_spawn(do_resolve, &o);
        for (int k = 0; k < i % 4; k++)
            assert_int_equal(knit_yield(), 0);
        if (i % 3 == 1)
            usleep((useconds_t)(i % 10) * 100); /* the job runs */
        if (i % 3 == 2) {
            /* Parked, main lets the loop take the answer in (a yield
             * need not poll), and the manual clock does not move before
             * the job has answered. */
            assert_int_equal(knit_sleep(1), 0);
        }
        knit_cancel(t);
        int r = knit_join(t);
        if (r == -ECANCELED) { /* cancelled before it started */
            assert_int_equal(o.r, NOT_RUN);
            unstarted++;
            continue;
        }
        assert_int_equal(r, 0);
        assert_true(o.r == 0 || o.r == -ECANCELED);
        if (o.r == 0)
            ok++;
        else
            cancelled++;
    }
    print_message("resolve races: %d answered, %d cancelled while parked, "
                  "%d never started\n",
                  ok, cancelled, unstarted);
    settle();
    return 0;
}
KT_CASE(resolve_cancelled_at_any_moment_leaks_nothing, t_resolve_races)

/* ---- accept under fd exhaustion (forked child) --------------------------- */

/* The child's server: an echo task per connection, RLIMIT_NOFILE = 32. */
struct emfile_srv {
    int lfd;     /* listener */
    int cmd;     /* commands from the parent (non-blocking) */
    int rep;     /* replies to the parent */
    int handled; /* connections served */
};

static int echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[256];
    ssize_t n;
    while ((n = knit_read(fd, buf, sizeof(buf))) > 0)
        if (knit_write_all(fd, buf, (size_t)n) < 0)
            break;
    knit_close(fd);
    return 0;
}

static int emfile_acceptor(void *arg)
{
    struct emfile_srv *srv = arg;
    for (;;) {
        int fd = knit_tcp_accept(srv->lfd, NULL, NULL);
        if (fd < 0)
            return fd == -ECANCELED ? 0 : fd;
        knit_task *t = knit_spawn(echo_conn, (void *)(intptr_t)fd);
        if (!t) {
            knit_close(fd);
            continue;
        }
        knit_detach(t);
        srv->handled++;
    }
}

static int64_t cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int emfile_main(void *arg)
{
    struct emfile_srv *srv = arg;
    srv->lfd = knit_tcp_listen(LOOP4, 0, 512);
    if (srv->lfd < 0)
        return 10;
    int port = knit_local_port(srv->lfd);
    if (write(srv->rep, &port, sizeof(port)) != sizeof(port))
        return 11;
    knit_task *acc = knit_spawn(emfile_acceptor, srv);
    int64_t cpu0 = 0, wall0 = 0;
    for (;;) {
        char c;
        if (knit_read_exact(srv->cmd, &c, 1) != 1)
            return 12;
        if (c == 'S') { /* saturation starts */
            cpu0 = cpu_ms();
            wall0 = wall_ms();
        } else if (c == 'E') { /* and ends */
            int64_t m[3] = {cpu_ms() - cpu0, wall_ms() - wall0,
                            (int64_t)io_here()->accept_queued};
            if (write(srv->rep, m, sizeof(m)) != sizeof(m))
                return 13;
        } else {
            break;
        }
    }
    knit_cancel(acc);
    int err = knit_join(acc);
    knit_close(srv->lfd);
    return err ? 14 : 0; /* main's return cancels the echo tasks */
}

static int emfile_child(int cmd, int rep, int io)
{
    struct rlimit rl = {32, 32};
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 20;
    fcntl(cmd, F_SETFL, O_NONBLOCK);
    struct emfile_srv srv = {.cmd = cmd, .rep = rep};
    knit_config cfg;
    kt_config(&cfg);
    cfg.clock = KNIT_CLOCK_MONOTONIC; /* real back-off sleeps */
    cfg.io = io;
    return knit_run(&cfg, emfile_main, &srv);
}

/* A blocking client of the child's server; -1 if the connect failed. */
static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1: @fd got @c back; 0: reset or closed; -1: no answer within 10 s. */
static int client_echo(int fd, char c)
{
    if (send(fd, &c, 1, MSG_NOSIGNAL) != 1)
        return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1)
        return -1;
    char got;
    ssize_t n = recv(fd, &got, 1, 0);
    return n == 1 && got == c ? 1 : 0;
}

#define EMFILE_CLIENTS 200

static pid_t emfile_pid; /* the server child while it runs */

/* Kills the child if the test failed before it could end it. */
static int emfile_teardown(void **state)
{
    (void)state;
    if (emfile_pid > 0) {
        kill(emfile_pid, SIGKILL);
        waitpid(emfile_pid, NULL, 0);
        emfile_pid = 0;
    }
    return 0;
}

/* The accept loop of a server on backend @io, RLIMIT_NOFILE = 32, under
 * 200 clients. */
static void emfile_case(int io)
{
    int cmd[2], rep[2];
    assert_int_equal(pipe2(cmd, O_CLOEXEC), 0);
    assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        close(cmd[1]);
        close(rep[0]);
        _exit(emfile_child(cmd[0], rep[1], io));
    }
    emfile_pid = pid;
    close(cmd[0]);
    close(rep[1]);
    int port;
    assert_int_equal(read(rep[0], &port, sizeof(port)), sizeof(port));

    /* Saturate: 200 clients, one every 5 ms, against ~20 free fds. */
    int fds[EMFILE_CLIENTS];
    assert_int_equal(write(cmd[1], "S", 1), 1);
    for (int i = 0; i < EMFILE_CLIENTS; i++) {
        fds[i] = client_connect(port);
        assert_true(fds[i] >= 0);
        /* A client already reset fails here and is counted below. */
        (void)send(fds[i], "a", 1, MSG_NOSIGNAL);
        usleep(5000);
    }
    assert_int_equal(write(cmd[1], "E", 1), 1);
    int64_t m[3];
    assert_int_equal(read(rep[0], m, sizeof(m)), sizeof(m));

    /* Every client was either served or reset; none hangs. */
    int served = 0, refused = 0;
    for (int i = 0; i < EMFILE_CLIENTS; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        if (poll(&p, 1, 10000) != 1)
            fail_msg("client %d: neither served nor reset after 10 s", i);
        char got;
        ssize_t n = recv(fds[i], &got, 1, 0);
        if (n == 1) {
            assert_int_equal(got, 'a');
            served++;
        } else {
            refused++;
            close(fds[i]);
            fds[i] = -1;
        }
    }
    /* The served connections are still served while saturated. */
    for (int i = 0; i < EMFILE_CLIENTS; i++)
        if (fds[i] >= 0)
            assert_int_equal(client_echo(fds[i], 'b'), 1);
    print_message("EMFILE (%s): %d served, %d reset; child CPU %lld ms "
                  "over %lld ms saturated (%.1f%%); %lld from a multishot "
                  "accept's queue\n",
                  io == KNIT_IO_URING ? "io_uring" : "epoll", served, refused,
                  (long long)m[0], (long long)m[1],
                  100.0 * (double)m[0] / (double)(m[1] ? m[1] : 1),
                  (long long)m[2]);
    /* With io_uring the connections came through the multishot accept,
     * and its EMFILE went through the same shedding and back-off. */
    if (io == KNIT_IO_URING)
        assert_true(m[2] > 0);
    else
        assert_int_equal(m[2], 0);
    assert_true(served >= 5);
    assert_true(refused >= EMFILE_CLIENTS / 2);
    assert_int_equal(served + refused, EMFILE_CLIENTS);
    /* Generous: noisy machines and sanitizers; a spinning loop is ~100%. */
    assert_true(m[0] * 2 < m[1]);

    /* Recovery: once the served clients leave, new ones are served. */
    for (int i = 0; i < EMFILE_CLIENTS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    for (int i = 0; i < 10; i++) {
        fds[i] = client_connect(port);
        assert_true(fds[i] >= 0);
        assert_int_equal(client_echo(fds[i], 'c'), 1);
    }
    close_all(fds, 10);

    assert_int_equal(write(cmd[1], "Q", 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    emfile_pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(cmd[1]);
    close(rep[0]);
}

static void accept_survives_emfile_without_spinning_on_epoll(void **state)
{
    (void)state;
    emfile_case(KNIT_IO_EPOLL);
}

static void accept_survives_emfile_without_spinning_on_io_uring(void **state)
{
    (void)state;
    if (!kt_uring_works())
        skip();
    emfile_case(KNIT_IO_URING);
}

/* ---- the kernel's accept: multishot queue, single shots ------------------ */

/* Connections taken from multishot accept queues so far on this worker. */
static uint64_t queued_accepts(void)
{
    return io_here()->accept_queued;
}

static knit_task_opts tiny_stack = {.stack_size = 16384};

/* An accept loop and its clients: each client sends one byte, gets it
 * back from the echo task of its connection, and leaves. */
struct crowd {
    int lfd;
    int port;
    int n;               /* connections the acceptor takes */
    knit_sem connecting; /* bounds connects in flight below the backlog */
    int accepted;        /* connections accepted */
    int served;          /* clients whose byte came back */
};

/* Spawns an echo task for @fd. */
static void serve_detached(int fd)
{
    knit_task *t =
        knit_spawn_with(&tiny_stack, echo_conn, (void *)(intptr_t)fd);
    assert_non_null(t);
    knit_detach(t);
}

/* Accepts c->n connections, every second one with its peer's address. */
static int crowd_acceptor(void *arg)
{
    struct crowd *c = arg;
    for (int i = 0; i < c->n; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = 0;
        int fd = i % 2 ? knit_tcp_accept(c->lfd, &peer, &plen)
                       : knit_tcp_accept(c->lfd, NULL, NULL);
        if (fd < 0)
            return fd;
        if (i % 2) {
            assert_int_equal(peer.ss_family, AF_INET);
            assert_int_equal(plen, sizeof(struct sockaddr_in));
        }
        assert_true(nonblock_cloexec(fd));
        assert_int_equal(nodelay(fd), 1);
        c->accepted++;
        serve_detached(fd);
    }
    return 0;
}

static int crowd_client(void *arg)
{
    struct crowd *c = arg;
    assert_int_equal(knit_sem_acquire(&c->connecting, 1), 0);
    int fd = knit_tcp_connect(LOOP4, c->port);
    knit_sem_release(&c->connecting, 1);
    if (fd < 0)
        return fd;
    char b = 'm';
    int err = knit_write(fd, &b, 1) == 1 && knit_read_exact(fd, &b, 1) == 1 &&
                      b == 'm'
                  ? 0
                  : -EPROTO;
    if (!err)
        c->served++;
    knit_close(fd);
    return err;
}

#define CROWD 500

/* CROWD clients, @inflight of them connecting at a time, against one
 * accept loop; returns the connections taken from an accept queue. */
static uint64_t crowd_run(int inflight)
{
    struct crowd c = {.n = CROWD};
    c.lfd = listen4(512);
    c.port = knit_local_port(c.lfd);
    int base = count_fds();
    knit_sem_init(&c.connecting, (unsigned)inflight);
    uint64_t q0 = queued_accepts();
    knit_task *acc = knit_spawn(crowd_acceptor, &c);
    assert_non_null(acc);
    knit_task *cl[CROWD];
    for (int i = 0; i < CROWD; i++) {
        cl[i] = knit_spawn_with(&tiny_stack, crowd_client, &c);
        assert_non_null(cl[i]);
    }
    for (int i = 0; i < CROWD; i++)
        assert_int_equal(knit_join(cl[i]), 0);
    assert_int_equal(knit_join(acc), 0);
    assert_int_equal(c.served, CROWD);
    settle(); /* the echo tasks see their EOF */
    assert_int_equal(count_fds(), base);
    knit_close(c.lfd);
    uint64_t q = queued_accepts() - q0;
    print_message("%s: %d connecting at a time: %llu of %d connections "
                  "came from the multishot accept's queue\n",
                  io_here()->ops->name, inflight, (unsigned long long)q, CROWD);
    return q;
}

static int t_many_accepts(void *arg)
{
    (void)arg;
    /* The accept loop keeps up: with io_uring every connection but the
     * odd one comes through the multishot accept. */
    uint64_t q = crowd_run(32);
    if (on_uring())
        assert_true(q >= CROWD * 9 / 10);
    else
        assert_int_equal(q, 0);
    /* It falls behind: the queue fills and stops the kernel's accept; the
     * loop takes the rest from the backlog by itself, and arms it again
     * once that is empty. Every client is served either way. */
    q = crowd_run(256);
    if (!on_uring())
        assert_int_equal(q, 0);
    return 0;
}
BOTH_CASE(accept_takes_many_connections_through_the_kernel, t_many_accepts)

static int t_queue_bound(void *arg)
{
    (void)arg;
    enum { N = KNIT_IO_ACCEPT_QUEUE_MAX * 3 };
    int l = listen4(N + 16);
    int port = knit_local_port(l);
    int base = count_fds();
    /* An accept that finds nothing: with io_uring it arms the listener's
     * multishot accept, which runs on after the call has timed out. */
    struct op o = {.fd = l};
    expect_timeout(do_accept, &o, 1);
    int c[N];
    for (int i = 0; i < N; i++) {
        c[i] = knit_tcp_connect(LOOP4, port);
        assert_true(c[i] >= 0);
        char b = (char)i;
        assert_int_equal(knit_write(c[i], &b, 1), 1);
    }
    assert_int_equal(knit_sleep(1), 0); /* the loop takes in what came */
    /* Nobody accepts: the queue fills to its bound, then the kernel is
     * told to stop and the listen backlog holds the rest. */
    int queued = count_fds() - base - N;
    print_message("%s: %d connections queued by the kernel's accept\n",
                  io_here()->ops->name, queued);
    if (on_uring()) {
        assert_true(queued >= KNIT_IO_ACCEPT_QUEUE_MAX);
        assert_true(queued <= KNIT_IO_ACCEPT_QUEUE_MAX + 4);
    } else {
        assert_int_equal(queued, 0);
    }
    /* Every connection is there, in order: the queue's, the backlog's. */
    for (int i = 0; i < N; i++) {
        int s = knit_tcp_accept(l, NULL, NULL);
        assert_true(s >= 0);
        char b;
        assert_int_equal(knit_read(s, &b, 1), 1);
        assert_int_equal((unsigned char)b, (unsigned char)i);
        knit_close(s);
    }
    for (int i = 0; i < N; i++)
        knit_close(c[i]);
    assert_int_equal(count_fds(), base);
    /* Queue and backlog are empty: the next accept arms it again. */
    expect_timeout(do_accept, &o, 1);
    int c1 = knit_tcp_connect(LOOP4, port);
    assert_true(c1 >= 0);
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(count_fds(), base + 1 + (on_uring() ? 1 : 0));
    int s1 = knit_tcp_accept(l, NULL, NULL);
    assert_true(s1 >= 0);
    knit_close(s1);
    knit_close(c1);
    knit_close(l);
    return 0;
}
BOTH_CASE(multishot_accept_queue_is_bounded_by_the_backlog, t_queue_bound)

/* Accepts until cancelled; every connection gets an echo task. */
static int crowd_acceptor_forever(void *arg)
{
    struct crowd *c = arg;
    for (;;) {
        int fd = knit_tcp_accept(c->lfd, NULL, NULL);
        if (fd < 0)
            return fd == -ECANCELED ? 0 : fd;
        c->accepted++;
        serve_detached(fd);
    }
}

static int t_cancel_pending(void *arg)
{
    (void)arg;
    enum { N = 300 };
    struct crowd c = {.n = N};
    c.lfd = listen4(N);
    c.port = knit_local_port(c.lfd);
    int base = count_fds();
    knit_sem_init(&c.connecting, 4); /* connections trickle in */
    uint64_t q0 = queued_accepts();
    knit_task *cl[N];
    for (int i = 0; i < N; i++) {
        cl[i] = knit_spawn_with(&tiny_stack, crowd_client, &c);
        assert_non_null(cl[i]);
    }
    /* Acceptors come and go while connections keep arriving: each one is
     * cancelled after 0 to 3 rounds, before it starts, while it takes
     * connections, parked, or just woken with connections queued. A
     * connection is never lost: each client is served exactly once. */
    int rounds = 0;
    while (c.served < N) {
        assert_true(++rounds < 100000);
        knit_task *a = knit_spawn(crowd_acceptor_forever, &c);
        assert_non_null(a);
        for (int k = 0; k < rounds % 4; k++)
            assert_int_equal(knit_yield(), 0);
        knit_cancel(a);
        int r = knit_join(a);
        assert_true(r == 0 || r == -ECANCELED);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(knit_join(cl[i]), 0);
    assert_int_equal(c.accepted, N);
    settle();
    print_message("%s: %d acceptors cancelled, %llu connections from the "
                  "queue\n",
                  io_here()->ops->name, rounds,
                  (unsigned long long)(queued_accepts() - q0));
    assert_true(rounds > N / 4);
    if (on_uring())
        assert_true(queued_accepts() > q0);
    assert_int_equal(count_fds(), base);
    knit_close(c.lfd);
    return 0;
}
BOTH_CASE(accepts_cancelled_with_connections_pending_lose_none,
          t_cancel_pending)

static int t_close_queued(void *arg)
{
    (void)arg;
    enum { N = 10 };
    int l = listen4(64);
    int port = knit_local_port(l);
    int base = count_fds(); /* the listener included */
    struct op o = {.fd = l};
    expect_timeout(do_accept, &o, 1); /* io_uring: the kernel accepts on */
    int c[N];
    for (int i = 0; i < N; i++) {
        c[i] = knit_tcp_connect(LOOP4, port);
        assert_true(c[i] >= 0);
    }
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(count_fds(), base + N + (on_uring() ? N : 0));
    /* Closing the listener closes what was queued on it, and the socket
     * itself is gone when knit_close returns: its port refuses. */
    assert_int_equal(knit_close(l), 0);
    assert_int_equal(count_fds(), base - 1 + N);
    for (int i = 0; i < N; i++) {
        char b;
        ssize_t r = knit_read(c[i], &b, 1);
        assert_true(r == 0 || r == -ECONNRESET);
        knit_close(c[i]);
    }
    assert_int_equal(knit_tcp_connect(LOOP4, port), -ECONNREFUSED);
    assert_int_equal(count_fds(), base - 1);

    /* A task waiting for the queue is woken with -EBADF. */
    l = listen4(8);
    o = (struct op){.fd = l, .r = NOT_RUN};
    knit_task *t = knit_spawn(do_accept, &o);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(o.r, NOT_RUN);
    assert_int_equal(knit_close(l), 0);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(o.r, -EBADF);

    /* A Unix listener: the queue gives the peer's address too, and its
     * path refuses once the listener is closed with one queued. */
    char dir[] = "/tmp/knit-net-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/q.sock", dir);
    l = knit_unix_listen(path, 8);
    assert_true(l >= 0);
    o.fd = l;
    expect_timeout(do_accept, &o, 1);
    int u[2];
    for (int i = 0; i < 2; i++) {
        u[i] = knit_unix_connect(path);
        assert_true(u[i] >= 0);
    }
    struct sockaddr_storage peer;
    socklen_t plen = 0;
    int s = knit_tcp_accept(l, &peer, &plen);
    assert_true(s >= 0);
    assert_int_equal(peer.ss_family, AF_UNIX);
    assert_true(plen >= sizeof(sa_family_t));
    assert_int_equal(knit_close(l), 0);
    assert_int_equal(knit_unix_connect(path), -ECONNREFUSED);
    knit_close(s);
    for (int i = 0; i < 2; i++)
        knit_close(u[i]);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(count_fds(), base - 1);
    return 0;
}
BOTH_CASE(closing_a_listener_closes_its_queued_connections, t_close_queued)

/* What a run left open for the test to check after it. */
struct left_open {
    int lfd;    /* the listener, never closed in the run */
    int c[8];   /* its clients, connected */
    int queued; /* fds the kernel's accept held when the run ended */
};

static int t_left_open(void *arg)
{
    struct left_open *lo = arg;
    lo->lfd = listen4(16);
    int port = knit_local_port(lo->lfd);
    int base = count_fds();
    struct op o = {.fd = lo->lfd};
    expect_timeout(do_accept, &o, 1);
    for (int i = 0; i < 8; i++) {
        lo->c[i] = knit_tcp_connect(LOOP4, port);
        assert_true(lo->c[i] >= 0);
    }
    assert_int_equal(knit_sleep(1), 0);
    lo->queued = count_fds() - base - 8;
    return 0; /* the listener stays open: the runtime's end must cope */
}

static void a_run_ending_with_connections_queued_leaves_no_fd(void **state)
{
    (void)state;
    static const int ios[] = {KNIT_IO_EPOLL, KNIT_IO_URING};
    for (size_t i = 0; i < sizeof(ios) / sizeof(ios[0]); i++) {
        if (ios[i] == KNIT_IO_URING && !kt_uring_works())
            continue;
        knit_config cfg;
        kt_config(&cfg);
        cfg.io = ios[i];
        struct left_open lo;
        int before = count_fds();
        assert_int_equal(kt_run_cfg(&cfg, t_left_open, &lo), 0);
        assert_int_equal(lo.queued, ios[i] == KNIT_IO_URING ? 8 : 0);
        /* Only the listener and the clients are left: the queued
         * connections were closed with the ring (the reserve fd may be
         * new in this process). */
        int left = count_fds() - before;
        assert_true(left == 9 || left == 10);
        /* And the listener is a listener again: accept4 takes the
         * connections still in its backlog, none on io_uring. */
        int n = 0, fd;
        while ((fd = accept4(lo.lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
            close(fd);
            n++;
        }
        assert_int_equal(n, ios[i] == KNIT_IO_URING ? 0 : 8);
        close(lo.lfd);
        close_all(lo.c, 8);
    }
}

static int wait_readable_fd(void *arg)
{
    struct op *o = arg;
    o->r = knit_wait_fd(o->fd, POLLIN);
    o->at = knit_now();
    return 0;
}

static int t_wait_listener(void *arg)
{
    (void)arg;
    /* With io_uring a listener's readiness is its accept queue's while
     * the kernel accepts for it: the socket itself never looks readable
     * then, since each connection is taken in as it comes. */
    int l = listen4(8);
    int port = knit_local_port(l);
    struct op o = {.fd = l};
    expect_timeout(do_accept, &o, 1);
    int c = knit_tcp_connect(LOOP4, port);
    assert_true(c >= 0);
    assert_int_equal(knit_sleep(1), 0);
    /* Queued already: ready at once (twice: readiness is not taken).
     * Only io_uring: epoll registers knit's sockets edge-triggered, which
     * holds for waits that follow an EAGAIN (src/io/epoll.c), not this. */
    if (on_uring()) {
        assert_int_equal(knit_wait_fd(l, POLLIN), POLLIN);
        assert_int_equal(knit_wait_fd(l, POLLIN), POLLIN);
    }
    int s = knit_tcp_accept(l, NULL, NULL);
    assert_true(s >= 0);
    knit_close(s);
    knit_close(c);
    /* Nothing queued: waits, times out, is cancelled, leaves no trace. */
    expect_timeout(wait_readable_fd, &o, 5);
    expect_cancel(wait_readable_fd, &o);
    /* Two waiters: a connection wakes both. */
    struct op w1 = {.fd = l, .r = NOT_RUN}, w2 = {.fd = l, .r = NOT_RUN};
    knit_task *t1 = knit_spawn(wait_readable_fd, &w1);
    knit_task *t2 = knit_spawn(wait_readable_fd, &w2);
    assert_int_equal(knit_yield(), 0);
    assert_int_equal(w1.r, NOT_RUN);
    c = knit_tcp_connect(LOOP4, port);
    assert_true(c >= 0);
    assert_int_equal(knit_join(t1), 0);
    assert_int_equal(knit_join(t2), 0);
    assert_int_equal(w1.r, POLLIN);
    assert_int_equal(w2.r, POLLIN);
    s = knit_tcp_accept(l, NULL, NULL);
    assert_true(s >= 0);
    knit_close(s);
    knit_close(c);
    knit_close(l);
    return 0;
}
BOTH_CASE(wait_fd_on_a_listener_sees_its_accept_queue, t_wait_listener)

static int t_foreign_listener(void *arg)
{
    (void)arg;
    /* A listener knit did not create: the application may close it with
     * close(2), so nothing of the kernel's may keep it open between
     * accepts. Each accept is a single shot. */
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 8), 0);
    int port = knit_local_port(l);
    uint64_t q0 = queued_accepts();
    uint64_t a0 = io_here()->submitted[KNIT_IO_OP_ACCEPT];
    for (int i = 0; i < 3; i++) {
        struct op o = {.fd = l, .r = NOT_RUN};
        knit_task *t = knit_spawn(do_accept, &o);
        assert_int_equal(knit_yield(), 0);
        assert_int_equal(o.r, NOT_RUN);
        int c = knit_tcp_connect(LOOP4, port);
        assert_true(c >= 0);
        assert_int_equal(knit_join(t), 0);
        assert_true(o.r >= 0);
        assert_int_equal(nodelay((int)o.r), 1);
        knit_close((int)o.r);
        knit_close(c);
    }
    assert_int_equal(queued_accepts(), q0);
    assert_int_equal(io_here()->submitted[KNIT_IO_OP_ACCEPT] - a0,
                     on_uring() ? 3 : 0);
    close(l);
    assert_int_equal(knit_tcp_connect(LOOP4, port), -ECONNREFUSED);
    return 0;
}
BOTH_CASE(accept_on_a_foreign_listener_takes_one_at_a_time, t_foreign_listener)

static int t_workers_accept(void *arg)
{
    (void)arg;
    /* Several workers: a socket may be used from any of them, so no
     * worker's ring may own a request on the listener (docs/internals.md,
     * "Workers and the runtime lock"). */
    struct crowd c = {.n = 100};
    c.lfd = listen4(128);
    c.port = knit_local_port(c.lfd);
    knit_sem_init(&c.connecting, 32);
    knit_task *acc = knit_spawn_on(1, NULL, crowd_acceptor, &c);
    assert_non_null(acc);
    knit_task *cl[100];
    for (int i = 0; i < c.n; i++) {
        cl[i] = knit_spawn_on(0, NULL, crowd_client, &c);
        assert_non_null(cl[i]);
    }
    for (int i = 0; i < c.n; i++)
        assert_int_equal(knit_join(cl[i]), 0);
    assert_int_equal(knit_join(acc), 0);
    assert_int_equal(c.served, c.n);
    settle();
    struct knit_rt *rt = knit__worker()->rt;
    for (int i = 0; i < rt->nworkers; i++)
        assert_int_equal(rt->workers[i].io.accept_queued, 0);
    knit_close(c.lfd);
    return 0;
}

static void several_workers_accept_one_connection_at_a_time(void **state)
{
    (void)state;
    static const int ios[] = {KNIT_IO_EPOLL, KNIT_IO_URING};
    for (size_t i = 0; i < sizeof(ios) / sizeof(ios[0]); i++) {
        if (ios[i] == KNIT_IO_URING && !kt_uring_works())
            continue;
        knit_config cfg;
        kt_config(&cfg);
        cfg.workers = 2;
        cfg.io = ios[i];
        assert_int_equal(kt_run_cfg(&cfg, t_workers_accept, NULL), 0);
    }
}

/* ---- 10,000 connections at once -------------------------------------------
 */

#ifndef C10K
#define C10K 10000
#endif
#ifdef KNIT_TSAN
/* TSan counts every fiber as a thread and dies past 8128 of them. */
#define C10K_HERE 2000
#else
#define C10K_HERE C10K
#endif
#define C10K_FDS (2 * C10K_HERE + 100)

struct c10k {
    int n;                /* connections */
    int lfd;              /* listener */
    int port;             /* its port */
    knit_sem connecting;  /* bounds SYNs in flight below the backlog */
    knit_waitgroup ready; /* clients that got their echo */
    knit_token release;   /* cancelled when every connection is up */
    int clients_open;     /* client fds open now */
    int servers_open;     /* server fds open now */
    knit_group servers;   /* one task per accepted connection */
};

static int c10k_server(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;
    int err = 0;
    if (knit_read_exact(fd, &c, 1) != 1 || knit_write(fd, &c, 1) != 1)
        err = -EPROTO;
    /* Held open until the client leaves. */
    while (!err && knit_read(fd, &c, 1) > 0)
        ;
    knit_close(fd);
    return err;
}

static knit_task_opts small_stack = {.stack_size = 16384};

struct c10k_conn {
    struct c10k *x;
    int fd;
};

static int c10k_server_wrap(void *arg)
{
    struct c10k_conn *cc = arg;
    struct c10k *x = cc->x;
    int fd = cc->fd;
    free(cc);
    x->servers_open++;
    int err = c10k_server((void *)(intptr_t)fd);
    x->servers_open--;
    return err;
}

static int c10k_acceptor(void *arg)
{
    struct c10k *x = arg;
    for (int i = 0; i < x->n; i++) {
        int fd = knit_tcp_accept(x->lfd, NULL, NULL);
        if (fd < 0)
            return fd;
        struct c10k_conn *cc = malloc(sizeof(*cc));
        assert_non_null(cc);
        cc->x = x;
        cc->fd = fd;
        knit_task *t = knit_spawn_with(&small_stack, c10k_server_wrap, cc);
        assert_non_null(t);
        knit_detach(t);
    }
    return 0;
}

static int c10k_client(void *arg)
{
    struct c10k *x = arg;
    assert_int_equal(knit_sem_acquire(&x->connecting, 1), 0);
    int fd = knit_tcp_connect(LOOP4, x->port);
    knit_sem_release(&x->connecting, 1);
    if (fd < 0)
        return fd;
    x->clients_open++;
    char c = 'k';
    int err = 0;
    if (knit_write(fd, &c, 1) != 1 || knit_read_exact(fd, &c, 1) != 1)
        err = -EPROTO;
    knit_waitgroup_done(&x->ready);
    if (!err)
        err = knit_token_wait(&x->release);
    x->clients_open--;
    knit_close(fd);
    return err;
}

static int t_c10k(void *arg)
{
    (void)arg;
    struct c10k *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    x->n = C10K_HERE;
    if (x->n != C10K)
        print_message("%d connections only: TSan\n", x->n);
    x->lfd = knit_tcp_listen(LOOP4, 0, 4096);
    assert_true(x->lfd >= 0);
    x->port = knit_local_port(x->lfd);
    knit_sem_init(&x->connecting, 512);
    knit_waitgroup_init(&x->ready);
    knit_waitgroup_add(&x->ready, x->n);
    knit_token_init(&x->release, NULL);
    knit_task *acc = knit_spawn(c10k_acceptor, x);
    assert_non_null(acc);
    knit_task **cl = calloc((size_t)x->n, sizeof(*cl));
    assert_non_null(cl);
    for (int i = 0; i < x->n; i++) {
        cl[i] = knit_spawn_with(&small_stack, c10k_client, x);
        assert_non_null(cl[i]);
    }
    assert_int_equal(knit_waitgroup_wait(&x->ready), 0);
    assert_int_equal(knit_join(acc), 0);
    /* Every connection is open at once, on both sides. */
    assert_int_equal(x->clients_open, x->n);
    assert_int_equal(x->servers_open, x->n);
    knit_token_cancel(&x->release);
    for (int i = 0; i < x->n; i++)
        assert_int_equal(knit_join(cl[i]), 0);
    /* The detached servers see EOF and end. */
    while (x->servers_open > 0)
        assert_int_equal(knit_yield(), 0);
    settle();
    knit_token_destroy(&x->release);
    knit_close(x->lfd);
    free(cl);
    free(x);
    return 0;
}

/*
 * The split variant, for a hard fd limit below 2n: a forked child (its own
 * fd table) opens the n client connections with plain blocking sockets,
 * and this process's knit server holds all n open at once.
 */
struct c10k_split {
    struct c10k x;
    int ready_fd; /* the child writes one byte when its n echoes came back */
    int go_fd;    /* closing it tells the child to close its connections */
};

static void c10k_child(int port, int n, int ready_fd, int go_fd)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, LOOP4, &a.sin_addr);
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        char c = 'k';
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1 || c != 'k')
            _exit(4);
    }
    char one = 1;
    if (write(ready_fd, &one, 1) != 1)
        _exit(5);
    char buf;
    while (read(go_fd, &buf, 1) > 0) /* until the parent closes it */
        ;
    _exit(0); /* the kernel closes the n connections */
}

static int t_c10k_split(void *arg)
{
    struct c10k_split *sp = arg;
    struct c10k *x = &sp->x;
    knit_task *acc = knit_spawn(c10k_acceptor, x);
    assert_non_null(acc);
    char one;
    assert_int_equal(knit_read_exact(sp->ready_fd, &one, 1), 1);
    assert_int_equal(knit_join(acc), 0);
    /* Every server task sees its client's byte and holds on. */
    while (x->servers_open < x->n)
        assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(x->servers_open, x->n);
    knit_close(sp->go_fd);
    while (x->servers_open > 0)
        assert_int_equal(knit_sleep(1), 0);
    settle();
    knit_close(x->lfd);
    return 0;
}

static void ten_thousand_connections_are_held_open_at_once(void **state)
{
    (void)state;
    struct rlimit old, rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    rl = old;
    rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int r = -1;
    if (rl.rlim_max >= C10K_FDS) {
        r = kt_run(t_c10k, NULL); /* both sides in this runtime */
    } else if (rl.rlim_max >= C10K + 100) {
        struct c10k_split *sp = calloc(1, sizeof(*sp));
        assert_non_null(sp);
        sp->x.n = C10K_HERE;
        sp->x.lfd = knit_tcp_listen(LOOP4, 0, 4096);
        assert_true(sp->x.lfd >= 0);
        sp->x.port = knit_local_port(sp->x.lfd);
        int ready[2], go[2];
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(ready[0]);
            close(go[1]);
            close(sp->x.lfd);
            c10k_child(sp->x.port, sp->x.n, ready[1], go[0]);
        }
        close(ready[1]);
        close(go[0]);
        fcntl(ready[0], F_SETFL, O_NONBLOCK);
        sp->ready_fd = ready[0];
        sp->go_fd = go[1];
        knit_config cfg;
        kt_config(&cfg);
        cfg.clock = KNIT_CLOCK_MONOTONIC; /* the child runs on real time */
        r = kt_run_cfg(&cfg, t_c10k_split, sp);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(ready[0]);
        free(sp);
    } else {
        print_message("RLIMIT_NOFILE hard limit %llu < %d: skipped\n",
                      (unsigned long long)old.rlim_max, C10K + 100);
        skip();
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(r, 0);
}

int main(void)
{
    /* The default action of SIGPIPE kills: the reset tests prove that no
     * write ever raises it. */
    signal(SIGPIPE, SIG_DFL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tcp_listen_connect_accept_and_exchange_bytes),
        cmocka_unit_test(tcp_works_on_ipv6_loopback),
        cmocka_unit_test(tcp_listen_and_connect_resolve_names),
        cmocka_unit_test(tcp_listen_reports_bad_arguments_and_busy_ports),
        cmocka_unit_test(tcp_listen_works_outside_a_task),
        cmocka_unit_test(tcp_accept_succeeds_is_cancelled_and_times_out),
        cmocka_unit_test(tcp_accept_reports_bad_fds),
        cmocka_unit_test(tcp_connect_to_a_closed_port_is_refused),
        cmocka_unit_test(
            tcp_connect_times_out_and_is_cancelled_on_a_full_backlog),
        cmocka_unit_test(tcp_connects_cancelled_at_any_moment_leak_nothing),
        cmocka_unit_test(read_succeeds_is_cancelled_and_times_out),
        cmocka_unit_test(write_succeeds_is_cancelled_and_times_out),
        cmocka_unit_test(
            partial_reads_and_writes_through_tiny_buffers_keep_every_byte),
        cmocka_unit_test(
            peer_reset_gives_econnreset_then_epipe_without_sigpipe),
        cmocka_unit_test(
            read_exact_collects_pieces_and_reports_early_eof_as_epipe),
        cmocka_unit_test(knit_close_wakes_a_reader_with_ebadf),
        cmocka_unit_test(readv_writev_shutdown_and_pipes),
        cmocka_unit_test(udp_bind_sendto_recvfrom_and_connected_sockets),
        cmocka_unit_test(
            unix_sockets_listen_connect_accept_and_replace_old_files),
        cmocka_unit_test(resolve_finds_localhost_and_rejects_bad_arguments),
        cmocka_unit_test(resolve_works_outside_a_task),
        cmocka_unit_test(resolve_of_an_invalid_name_is_ehostunreach),
        cmocka_unit_test(
            resolve_succeeds_is_cancelled_and_times_out_while_parked),
        cmocka_unit_test(resolve_cancelled_at_any_moment_leaks_nothing),
        cmocka_unit_test_teardown(
            accept_survives_emfile_without_spinning_on_epoll, emfile_teardown),
        cmocka_unit_test_teardown(
            accept_survives_emfile_without_spinning_on_io_uring,
            emfile_teardown),
        cmocka_unit_test(accept_takes_many_connections_through_the_kernel),
        cmocka_unit_test(multishot_accept_queue_is_bounded_by_the_backlog),
        cmocka_unit_test(accepts_cancelled_with_connections_pending_lose_none),
        cmocka_unit_test(closing_a_listener_closes_its_queued_connections),
        cmocka_unit_test(wait_fd_on_a_listener_sees_its_accept_queue),
        cmocka_unit_test(a_run_ending_with_connections_queued_leaves_no_fd),
        cmocka_unit_test(accept_on_a_foreign_listener_takes_one_at_a_time),
        cmocka_unit_test(several_workers_accept_one_connection_at_a_time),
        cmocka_unit_test(ten_thousand_connections_are_held_open_at_once),
        cmocka_unit_test(
            reads_after_a_short_read_see_new_data_the_end_and_a_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
