// SPDX-License-Identifier: MIT
/*
 * Sockets (knit/net.h): TCP listen, accept and connect, UDP bind and
 * connect, Unix stream sockets, and the local port of a socket.
 *
 * Every socket is created non-blocking and close-on-exec in the same
 * system call (SOCK_NONBLOCK | SOCK_CLOEXEC, accept4), so no fd ever
 * exists in the blocking or inheritable state, even briefly. Numeric
 * addresses are parsed with inet_pton and never reach getaddrinfo or the
 * DNS pool; names are resolved by knit__net_resolve (resolve.c).
 *
 * Accept and fd exhaustion: when the process runs out of fds (EMFILE,
 * ENFILE) the pending connection stays in the listen queue and the
 * listener stays readable, so a plain accept loop would spin. knit keeps
 * one reserve fd (an open /dev/null, process-wide, opened by the first
 * listener): on exhaustion it closes the reserve, accepts and resets every
 * pending connection with it (the clients see a reset instead of hanging),
 * takes the reserve back, and sleeps before accepting again, 10 ms
 * doubling to 1 s while the condition persists (libuv's and nginx's
 * reserve-fd trick, plus back-off so a storm of connects cannot make the
 * loop busy).
 *
 * With io_uring (single worker) a listener of knit's is served by one
 * multishot accept that the listener owns (io/driver.h, accept_arm): the
 * first accept that finds nothing pending arms it, and later accepts take
 * connections from its queue. The queue keeps the accept4 semantics the
 * loop below relies on: connections first, then the error that stopped
 * the kernel (EMFILE goes through the same reserve-fd shedding and
 * back-off), and when it is empty and stopped, the next accept calls
 * accept4 itself before arming it again. Other listeners, and every
 * listener with several workers (a socket may be used from any worker:
 * docs/internals.md), get a single-shot completion accept per call.
 * TCP connects are the kernel's too there (IORING_OP_CONNECT).
 *
 * Divisions: addresses and options, the reserve fd, TCP, UDP, Unix.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/sys.h"
#include "knit/net.h"
#include "knit/time.h"
#include "net/net.h"

#define SOCK_FLAGS (SOCK_NONBLOCK | SOCK_CLOEXEC)

/* Accept back-off while out of fds, in ms. */
#define EMFILE_BACKOFF_MIN 10
#define EMFILE_BACKOFF_MAX 1000

/* Unix connect back-off while the listener's queue is full, in ms. */
#define UNIX_BACKOFF_MIN 1
#define UNIX_BACKOFF_MAX 100

/* Pending connections reset per reserve-fd round, a bound on the work
 * one round can do while new connections keep arriving. */
#define SHED_MAX 1024

/* ---- addresses and options ---------------------------------------------- */

static int set_int_opt(int fd, int level, int name, int val)
{
    return knit__net_sys_setsockopt(fd, level, name, &val, sizeof(val));
}

static bool is_inet(int family)
{
    return family == AF_INET || family == AF_INET6;
}

/* A numeric address as a one-entry addrinfo list, without getaddrinfo. */
struct numeric_addr {
    struct addrinfo ai;         /* the list's only entry */
    struct sockaddr_storage ss; /* what ai.ai_addr points to */
};

/* Fills @n when @host is a numeric IPv4 or IPv6 address; false if not. */
static bool numeric_parse(const char *host, int port, int socktype,
                          struct numeric_addr *n)
{
    memset(n, 0, sizeof(*n));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&n->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&n->ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        n->ai.ai_addrlen = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        n->ai.ai_addrlen = sizeof(*v6);
    } else {
        return false;
    }
    n->ai.ai_family = n->ss.ss_family;
    n->ai.ai_socktype = socktype;
    n->ai.ai_addr = (struct sockaddr *)&n->ss;
    return true;
}

/*
 * The addresses of @host:@port to try in order. A numeric host is parsed
 * into @n (no lookup, no allocation: accept-and-connect-heavy code pays
 * nothing for names it does not use); a name is resolved into *@list,
 * which the caller frees with freeaddrinfo when it is not NULL.
 */
static int addrs_get(const char *host, int port, int socktype, int flags,
                     struct numeric_addr *n, struct addrinfo **list,
                     const struct addrinfo **first)
{
    *list = NULL;
    if (!host || port < 0 || port > 65535)
        return -EINVAL;
    if (numeric_parse(host, port, socktype, n)) {
        *first = &n->ai;
        return 0;
    }
    int err = knit__net_resolve(host, port, socktype, flags, list);
    *first = *list;
    return err;
}

static void addrs_put(struct addrinfo *list)
{
    if (list)
        freeaddrinfo(list);
}

/* Closes @fd (waking any waiter, dropping the driver's registration). */
static void drop_fd(int fd)
{
    knit_close(fd);
}

/* The pending error of a socket whose non-blocking connect finished. */
static int so_error(int fd)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    int err = knit__net_sys_getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    return err ? err : -soerr;
}

/*
 * Connects @fd to @a, waiting for the handshake. *@stop is set when the
 * scope fired, so the caller does not try other addresses.
 */
static int connect_fd(int fd, const struct sockaddr *a, socklen_t len,
                      bool *stop)
{
    int backoff = 0;
    for (;;) {
        int err = knit__net_sys_connect(fd, a, len);
        if (err == -EINPROGRESS || err == -EINTR) {
            /* EINTR: the connect goes on in the background, as for
             * EINPROGRESS; readiness then tells when it ends. */
            int ev = knit_wait_fd(fd, POLLOUT);
            if (ev < 0) {
                *stop = true;
                return ev;
            }
            return so_error(fd);
        }
        if (err != -EAGAIN)
            return err;
        /* A Unix listener's queue is full. The socket gives no readiness
         * for that, so back off and retry. */
        backoff = backoff ? backoff * 2 : UNIX_BACKOFF_MIN;
        if (backoff > UNIX_BACKOFF_MAX)
            backoff = UNIX_BACKOFF_MAX;
        err = knit_sleep(backoff);
        if (err) {
            *stop = true;
            return err;
        }
    }
}

/* ---- the reserve fd ----------------------------------------------------- */

/*
 * Shared by every listener of the process; -1 while missing. Written only
 * under reserve_lock; read without it by reserve_ensure's fast path, so
 * that an accept costs no lock once the reserve exists.
 */
static pthread_mutex_t reserve_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int reserve_fd = -1;

static void reserve_open_locked(void)
{
    int fd = atomic_load_explicit(&reserve_fd, memory_order_relaxed);
    if (fd < 0)
        fd = knit__net_sys_open("/dev/null", O_RDONLY | O_CLOEXEC);
    /* Out of fds: stays -1 and the next caller tries again. */
    atomic_store_explicit(&reserve_fd, fd < 0 ? -1 : fd, memory_order_relaxed);
}

/* Makes sure the reserve exists while fds are still available. */
static void reserve_ensure(void)
{
    /* Relaxed: a stale -1 only costs a trip through the lock. */
    if (atomic_load_explicit(&reserve_fd, memory_order_relaxed) >= 0)
        return;
    pthread_mutex_lock(&reserve_lock);
    reserve_open_locked();
    pthread_mutex_unlock(&reserve_lock);
}

/*
 * Out of fds: spends the reserve to accept and reset what @lfd has
 * pending, then takes it back. Without a reserve it does nothing, and the
 * caller's back-off alone keeps the loop from spinning.
 */
static void shed_pending(int lfd)
{
    pthread_mutex_lock(&reserve_lock);
    int fd = atomic_load_explicit(&reserve_fd, memory_order_relaxed);
    if (fd >= 0) {
        atomic_store_explicit(&reserve_fd, -1, memory_order_relaxed);
        knit__sys_close(fd);
        for (int i = 0; i < SHED_MAX; i++) {
            int c = knit__net_sys_accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (c == -EINTR || c == -ECONNABORTED)
                continue;
            if (c < 0)
                break;
            /* Linger 0: the client gets a reset now, not an EOF that
             * looks like a served, empty answer. */
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            knit__net_sys_setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            knit__sys_close(c);
        }
        reserve_open_locked();
    }
    pthread_mutex_unlock(&reserve_lock);
}

/* ---- TCP ---------------------------------------------------------------- */

/* A bound, listening socket for @ai. */
static int listen_one(const struct addrinfo *ai, int backlog, unsigned flags)
{
    int fd = knit__net_sys_socket(ai->ai_family, ai->ai_socktype | SOCK_FLAGS,
                                  ai->ai_protocol);
    if (fd < 0)
        return fd;
    int err = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (!err && (flags & KNIT_LISTEN_REUSEPORT))
        err = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (!err)
        err = knit__net_sys_bind(fd, ai->ai_addr, ai->ai_addrlen);
    if (!err)
        err = knit__net_sys_listen(fd, backlog);
    if (err) {
        drop_fd(fd);
        return err;
    }
    return fd;
}

int knit_tcp_listen_flags(const char *host, int port, int backlog,
                          unsigned flags)
{
    if (flags & ~KNIT_LISTEN_REUSEPORT)
        return -EINVAL;
    struct numeric_addr n;
    struct addrinfo *list;
    const struct addrinfo *ai;
    int err = addrs_get(host ? host : "0.0.0.0", port, SOCK_STREAM, AI_PASSIVE,
                        &n, &list, &ai);
    if (err)
        return err;
    /* The first address that binds wins; the last error otherwise. */
    int fd = -EADDRNOTAVAIL;
    for (; ai; ai = ai->ai_next) {
        fd = listen_one(ai, backlog, flags);
        if (fd >= 0)
            break;
    }
    addrs_put(list);
    if (fd >= 0)
        reserve_ensure();
    return fd;
}

int knit_tcp_listen(const char *host, int port, int backlog)
{
    return knit_tcp_listen_flags(host, port, backlog, 0);
}

/*
 * With a completion backend, an accept that found nothing pending is
 * handed to the kernel (KNIT_IO_OP_ACCEPT), which completes it when a
 * connection comes: one system call fewer than a wake-up and a retry.
 * Otherwise, and when the backend cannot, -EAGAIN (wait for readiness).
 * A connection accepted after a cancel is still returned, not lost.
 */
static int accept_completion(struct knit_io *io, int lfd,
                             struct sockaddr_storage *ss, socklen_t *sl)
{
    if (!io || !io->ops->submit)
        return -EAGAIN;
    struct knit_io_op op = {.opcode = KNIT_IO_OP_ACCEPT, .fd = lfd,
                            .addr = (struct sockaddr *)ss, .addrlen = sl,
                            .flags = SOCK_FLAGS};
    ssize_t fd = knit__io_op_run(io, &op);
    if (fd >= 0)
        knit__io_own((int)fd);
    return fd == -ENOSYS ? -EAGAIN : (int)fd;
}

/*
 * Nothing was pending: the kernel takes over. A listener of knit's gets
 * a multishot accept, and -EAGAIN sends the caller to wait for its queue;
 * any other listener (or a kernel without it) a single-shot completion
 * accept.
 */
static int accept_kernel(struct knit_io *io, int lfd,
                         struct sockaddr_storage *ss, socklen_t *sl)
{
    if (io && io->ops->accept_arm &&
        io->ops->accept_arm(io, lfd, SOCK_FLAGS) == 0)
        return -EAGAIN;
    return accept_completion(io, lfd, ss, sl);
}

/*
 * An fd taken from a multishot accept's queue. The kernel reports no
 * address for those, so the peer's comes from getpeername when the
 * caller asks for it (@ss is left alone otherwise). A connection reset
 * before it was taken has no peer any more (ENOTCONN): it is skipped
 * like an aborted one.
 */
static int accept_dequeued(int fd, struct sockaddr_storage *ss, socklen_t *sl,
                           bool want_peer)
{
    knit__io_own(fd);
    if (!want_peer)
        return fd;
    int err = knit__net_sys_getpeername(fd, (struct sockaddr *)ss, sl);
    if (err) {
        drop_fd(fd);
        return -ECONNABORTED;
    }
    return fd;
}

/*
 * One try: the listener's accept queue while its multishot accept runs
 * or holds connections, else accept4, else the kernel (accept_kernel).
 * The result is as accept4's: an fd, -EAGAIN to wait for POLLIN, or an
 * error (the queue's errors are the ones accept4 would have met).
 */
static int accept_try(int lfd, struct sockaddr_storage *ss, socklen_t *sl,
                      bool want_peer)
{
    struct knit_io *io = knit__net_io();
    if (io && io->ops->accept_take) {
        int fd = io->ops->accept_take(io, lfd);
        if (fd >= 0)
            return accept_dequeued(fd, ss, sl, want_peer);
        if (fd != -ENOENT)
            return fd;
    }
    int fd = knit__net_sys_accept4(lfd, (struct sockaddr *)ss, sl, SOCK_FLAGS);
    if (fd == -EAGAIN)
        fd = accept_kernel(io, lfd, ss, sl);
    return fd;
}

int knit_tcp_accept(int lfd, struct sockaddr_storage *peer, socklen_t *len)
{
    int err = knit__net_enter("knit_tcp_accept");
    if (err)
        return err;
    reserve_ensure(); /* for listeners knit did not create */
    int backoff = 0;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        /* Filled by accept4 or getpeername; stays so when neither ran. */
        ss.ss_family = AF_UNSPEC;
        int fd = accept_try(lfd, &ss, &sl, peer || len);
        if (fd >= 0) {
            /* AF_UNSPEC: a queued fd whose address nobody asked for, so
             * the option is simply tried (a Unix socket refuses it). */
            int family = ss.ss_family;
            if (is_inet(family) || family == AF_UNSPEC)
                set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
            if (peer)
                memcpy(peer, &ss, sl < sizeof(ss) ? sl : sizeof(ss));
            if (len)
                *len = sl;
            return fd;
        }
        switch (fd) {
        case -EAGAIN:
            /* Nothing pending: the exhaustion, if any, is over. */
            backoff = 0;
            err = knit_wait_fd(lfd, POLLIN);
            if (err < 0)
                return err;
            break;
        case -EMFILE:
        case -ENFILE:
            shed_pending(lfd);
            backoff = backoff ? backoff * 2 : EMFILE_BACKOFF_MIN;
            if (backoff > EMFILE_BACKOFF_MAX)
                backoff = EMFILE_BACKOFF_MAX;
            err = knit_sleep(backoff);
            if (err)
                return err;
            break;
        case -EINTR:
        case -ECONNABORTED:
        /* Errors of the new connection that accept(2) passes on: the
         * listener is fine, try the next one (see accept(2), NOTES). */
        case -EPROTO:
        case -ENOPROTOOPT:
        case -ENETDOWN:
        case -EHOSTDOWN:
        case -ENONET:
        case -EHOSTUNREACH:
        case -ENETUNREACH:
        case -EOPNOTSUPP:
            err = knit__scope_err(knit__task());
            if (err)
                return err;
            break;
        default:
            return fd;
        }
    }
}

/*
 * A TCP connect with a completion backend: the kernel runs the handshake
 * (IORING_OP_CONNECT) and completes with its result, in place of
 * connect(2), a readiness wait and getsockopt(SO_ERROR). @a may live on
 * the caller's stack: knit__io_op_run returns only after the completion,
 * also when the scope fires (the kernel is asked to stop and waited for).
 * Where the backend has no completions, connect_fd. See connect_fd for
 * @stop.
 */
static int connect_tcp(int fd, const struct sockaddr *a, socklen_t len,
                       bool *stop)
{
    struct knit_io *io = knit__net_io();
    if (!io || !io->ops->submit)
        return connect_fd(fd, a, len, stop);
    int err = knit__net_connect_fault();
    if (err)
        return err;
    struct knit_io_op op = {.opcode = KNIT_IO_OP_CONNECT, .fd = fd,
                            .addr = (struct sockaddr *)a, .len = len};
    ssize_t r = knit__io_op_run(io, &op);
    if (r == -ENOSYS)
        return connect_fd(fd, a, len, stop);
    if (r == -EINTR) {
        /* Interrupted after the kernel started it: the handshake goes on,
         * as for EINPROGRESS. */
        int ev = knit_wait_fd(fd, POLLOUT);
        r = ev < 0 ? ev : so_error(fd);
    }
    if (r < 0 && knit__scope_err(knit__task()))
        *stop = true;
    return (int)r;
}

/* Connects a new socket to @ai; see connect_fd for @stop. */
static int connect_one(const struct addrinfo *ai, bool *stop)
{
    int fd = knit__net_sys_socket(ai->ai_family, ai->ai_socktype | SOCK_FLAGS,
                                  ai->ai_protocol);
    if (fd < 0)
        return fd;
    /* Only TCP: a UDP connect never waits, and a Unix one meets a full
     * queue as EAGAIN, which only connect_fd's back-off handles. */
    bool tcp = ai->ai_socktype == SOCK_STREAM && is_inet(ai->ai_family);
    int err = tcp ? connect_tcp(fd, ai->ai_addr, ai->ai_addrlen, stop)
                  : connect_fd(fd, ai->ai_addr, ai->ai_addrlen, stop);
    if (err) {
        drop_fd(fd);
        return err;
    }
    if (ai->ai_socktype == SOCK_STREAM && is_inet(ai->ai_family))
        set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    return fd;
}

/* Resolves @host:@port and connects to the first address that answers. */
static int connect_host(const char *host, int port, int socktype)
{
    struct numeric_addr n;
    struct addrinfo *list;
    const struct addrinfo *ai;
    int err = addrs_get(host, port, socktype, 0, &n, &list, &ai);
    if (err)
        return err;
    int fd = -EHOSTUNREACH;
    bool stop = false;
    for (; ai && !stop; ai = ai->ai_next) {
        fd = connect_one(ai, &stop);
        if (fd >= 0)
            break;
    }
    addrs_put(list);
    return fd;
}

int knit_tcp_connect(const char *host, int port)
{
    int err = knit__net_enter("knit_tcp_connect");
    if (err)
        return err;
    return connect_host(host, port, SOCK_STREAM);
}

int knit_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int err = knit__net_sys_getsockname(fd, (struct sockaddr *)&ss, &len);
    if (err)
        return err;
    /* getsockname filled ss: see knit_tcp_accept. */
    if (ss.ss_family == AF_INET) // NOLINT(clang-analyzer-core.UndefinedBinaryOperatorResult)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}

/* ---- UDP ---------------------------------------------------------------- */

int knit_udp_bind(const char *host, int port)
{
    struct numeric_addr n;
    struct addrinfo *list;
    const struct addrinfo *ai;
    int err = addrs_get(host ? host : "0.0.0.0", port, SOCK_DGRAM, AI_PASSIVE,
                        &n, &list, &ai);
    if (err)
        return err;
    int fd = -EADDRNOTAVAIL;
    for (; ai; ai = ai->ai_next) {
        fd = knit__net_sys_socket(ai->ai_family, ai->ai_socktype | SOCK_FLAGS,
                                  ai->ai_protocol);
        if (fd < 0)
            continue;
        err = knit__net_sys_bind(fd, ai->ai_addr, ai->ai_addrlen);
        if (!err)
            break;
        drop_fd(fd);
        fd = err;
    }
    addrs_put(list);
    return fd;
}

int knit_udp_connect(const char *host, int port)
{
    /* A UDP connect only records the peer: it never waits, but the name
     * lookup may (and checks the scope then). */
    return connect_host(host, port, SOCK_DGRAM);
}

/* ---- Unix stream sockets ------------------------------------------------ */

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
    if (!path || !path[0])
        return -EINVAL;
    size_t n = strlen(path);
    if (n >= sizeof(sa->sun_path))
        return -ENAMETOOLONG;
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, n + 1);
    return 0;
}

int knit_unix_listen(const char *path, int backlog)
{
    struct sockaddr_un sa;
    int err = unix_addr(path, &sa);
    if (err)
        return err;
    /* Replace a socket file left by an earlier server, never anything
     * else: a regular file there makes bind fail with EADDRINUSE. */
    struct stat st;
    if (knit__net_sys_lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        knit__net_sys_unlink(path);
    int fd = knit__net_sys_socket(AF_UNIX, SOCK_STREAM | SOCK_FLAGS, 0);
    if (fd < 0)
        return fd;
    err = knit__net_sys_bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (!err)
        err = knit__net_sys_listen(fd, backlog);
    if (err) {
        drop_fd(fd);
        return err;
    }
    reserve_ensure();
    return fd;
}

int knit_unix_connect(const char *path)
{
    int err = knit__net_enter("knit_unix_connect");
    if (err)
        return err;
    struct sockaddr_un sa;
    err = unix_addr(path, &sa);
    if (err)
        return err;
    int fd = knit__net_sys_socket(AF_UNIX, SOCK_STREAM | SOCK_FLAGS, 0);
    if (fd < 0)
        return fd;
    bool stop = false;
    err = connect_fd(fd, (struct sockaddr *)&sa, sizeof(sa), &stop);
    if (err) {
        drop_fd(fd);
        return err;
    }
    return fd;
}
