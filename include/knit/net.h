/* SPDX-License-Identifier: MIT */
/*
 * knit/net.h - sockets and file descriptors as sequential code.
 *
 * Fds are plain non-blocking file descriptors: knit makes the ones it
 * creates non-blocking and close-on-exec, and you may use any fd knit did
 * not create with knit_read/knit_write/knit_wait_fd once it is
 * non-blocking. Every call that can wait parks only the calling task, is a
 * cancellation point, and takes its deadline from the enclosing scope:
 *
 *     knit_scope s;
 *     knit_scope_enter(&s, knit_now() + 5000);   // idle timeout
 *     ssize_t n = knit_read(fd, buf, sizeof buf); // -ETIMEDOUT after 5 s
 *     knit_scope_exit(&s);
 *
 * Writes to a socket whose peer is gone return -EPIPE; they never raise
 * SIGPIPE. Closing an fd with knit_close wakes every task waiting on it
 * with -EBADF (plain close(2) would leave them parked).
 */
#ifndef KNIT_NET_H
#define KNIT_NET_H

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "knit/common.h"

/* Declared here too: strict C11 builds get it from <netdb.h> only with
 * POSIX feature macros. */
struct addrinfo;

#ifdef __cplusplus
extern "C" {
#endif

/**
 * knit_wait_fd() - wait until @fd is ready for @events.
 * @events: POLLIN, POLLOUT or both.
 * Cancellation point. Regular files are always ready.
 * Return: the ready events (> 0, may include POLLERR / POLLHUP); -EINVAL
 * for bad @events or a negative fd; -EBADF for a closed fd (also when
 * knit_close closes it while waiting); -ECANCELED / -ETIMEDOUT.
 */
KNIT_API int knit_wait_fd(int fd, int events);

/**
 * knit_close() - close @fd, first waking every task waiting on it with
 * -EBADF. Not a cancellation point.
 * Sockets knit created (knit_tcp_listen, _accept, _connect, UDP, Unix)
 * must be closed with it, in the runtime, not with close(2): on io_uring
 * a listener's multishot accept (see knit_tcp_accept) holds the socket
 * open in the kernel until knit_close stops it (or the runtime ends).
 * Closing such a listener waits for the kernel to let go of it
 * (briefly, without switching tasks), so its port or path is free when
 * the call returns, and closes the connections it had accepted that no
 * task took yet (their clients see them closed).
 * Return: 0; -EBADF; another -errno from close(2).
 */
KNIT_API int knit_close(int fd);

/* ---- TCP ---------------------------------------------------------------- */

#define KNIT_LISTEN_REUSEPORT 1u /* SO_REUSEPORT: several listeners share */

/**
 * knit_tcp_listen() - listen on @host:@port (SO_REUSEADDR).
 * @host: an address or name to bind ("127.0.0.1", "::1", "localhost"), or
 *        NULL for every IPv4 address. @port: 0 picks a free port
 *        (knit_local_port tells which). @backlog: as listen(2).
 * A numeric @host needs no lookup: the call never waits and works outside
 * a task too. A name is resolved as by knit_resolve (a cancellation point
 * in a task); the first of its addresses that binds is used.
 * Return: the listening fd; -EINVAL for a bad @port; -EADDRINUSE,
 * -EADDRNOTAVAIL, -EACCES, -EMFILE, another -errno of socket(2), bind(2)
 * or listen(2) (the last address's); -EHOSTUNREACH, -ENOMEM, -ECANCELED,
 * -ETIMEDOUT from the lookup of a name.
 */
KNIT_API int knit_tcp_listen(const char *host, int port, int backlog);

/* knit_tcp_listen() with KNIT_LISTEN_* @flags; -EINVAL for unknown flags. */
KNIT_API int knit_tcp_listen_flags(const char *host, int port, int backlog,
                                   unsigned flags);

/**
 * knit_tcp_accept() - wait for and accept one connection on @lfd (any
 * stream listener: TCP or Unix).
 * @peer, @len: out, may be NULL; the peer's address.
 * Cancellation point. A connection is never lost to a cancel: it is
 * either returned (the call then succeeds although the scope fired) or
 * left for the next accept.
 * With io_uring on one worker, a listener knit created is served by a
 * multishot accept, started by the first accept that finds nothing
 * pending: the kernel takes connections in as they come and queues them
 * on the listener (about 64 at most; when the queue is full it stops and the
 * listen backlog holds the rest until the queue and backlog are empty
 * again), and later accepts take them from there without a system call
 * (plus a getpeername(2) when @peer or @len is given; a connection reset
 * before it was taken is then skipped). The queue outlives the accepting
 * task; knit_close of the listener ends it. Other listeners, and every
 * listener with several workers, get one completion accept per call.
 * When the process is out of fds (EMFILE, ENFILE), whichever path met
 * it, the call does not spin and does not return: it frees its reserve
 * fd (one per process, opened by the first listener), accepts and closes
 * the pending connections with a reset (so their clients see ECONNRESET
 * instead of hanging), takes the reserve back and sleeps before
 * accepting again, 10 ms doubling to 1 s while the exhaustion lasts.
 * Aborted connections (ECONNABORTED, EPROTO and the other errors
 * accept(2) passes on from the new connection) are skipped.
 * Return: the connection's fd (non-blocking, close-on-exec, TCP_NODELAY on
 * TCP); -ECANCELED / -ETIMEDOUT; -EBADF, -ENOTSOCK, -EINVAL (not
 * listening), -ENOBUFS, -ENOMEM, another -errno of accept4(2).
 */
KNIT_API int knit_tcp_accept(int lfd, struct sockaddr_storage *peer,
                             socklen_t *len);

/**
 * knit_tcp_connect() - connect to @host:@port, trying each address the
 * name resolves to in order.
 * Cancellation point; the scope's deadline bounds resolution and every
 * attempt, and when it fires no further address is tried. With io_uring
 * the kernel runs each attempt (IORING_OP_CONNECT); a cancelled attempt
 * returns once the kernel has stopped it.
 * Return: the connected fd (non-blocking, close-on-exec, TCP_NODELAY);
 * -ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH ... (the last attempt's error);
 * -EHOSTUNREACH when the name does not resolve; -EINVAL for a NULL @host
 * or a bad @port; -ENOMEM; -EMFILE; -ECANCELED / -ETIMEDOUT from the
 * scope.
 */
KNIT_API int knit_tcp_connect(const char *host, int port);

/* The local port of the IPv4/IPv6 socket @fd; -EAFNOSUPPORT for another
 * family; -EBADF, -ENOTSOCK. */
KNIT_API int knit_local_port(int fd);

/* ---- reading and writing ------------------------------------------------ */

/**
 * knit_read() - read up to @n bytes, waiting until some are available.
 * Cancellation point.
 * Return: bytes read (> 0); 0 at end of file (or when @n is 0);
 * -ECONNRESET, -EBADF (also when knit_close closes @fd meanwhile),
 * -ECANCELED / -ETIMEDOUT, another -errno of read(2).
 */
KNIT_API ssize_t knit_read(int fd, void *buf, size_t n);

/**
 * knit_write() - write up to @n bytes, waiting until some can be written.
 * Cancellation point.
 * Sockets are written with send(MSG_NOSIGNAL); other fds (ENOTSOCK) with
 * write(2), so a pipe whose reader is gone still raises SIGPIPE unless the
 * program ignores it.
 * Return: bytes written (> 0, or 0 when @n is 0); -EPIPE when the peer
 * is gone (no SIGPIPE); -ECONNRESET; -EBADF; -ECANCELED / -ETIMEDOUT;
 * another -errno of send(2) or write(2).
 */
KNIT_API ssize_t knit_write(int fd, const void *buf, size_t n);

/*
 * knit_readv() / knit_writev() - knit_read / knit_write with several
 * buffers (readv(2); sendmsg(MSG_NOSIGNAL) or writev(2)). Cancellation
 * points. Return: as knit_read / knit_write; -EINVAL for a bad @iovcnt.
 */
KNIT_API ssize_t knit_readv(int fd, const struct iovec *iov, int iovcnt);
KNIT_API ssize_t knit_writev(int fd, const struct iovec *iov, int iovcnt);

/**
 * knit_read_exact() - read exactly @n bytes.
 * Cancellation point.
 * Return: @n; -EPIPE when end of file comes first (-EPIPE, not 0, so that
 * a short message is never mistaken for a whole one); -EINVAL when @n
 * exceeds SSIZE_MAX; another error as knit_read. How much was read before
 * an error: knit_read_exact_partial.
 */
KNIT_API ssize_t knit_read_exact(int fd, void *buf, size_t n);

/**
 * knit_write_all() - write all @n bytes.
 * Cancellation point.
 * Return: @n; -EINVAL when @n exceeds SSIZE_MAX; -EIO when the fd takes
 * no bytes; an error as knit_write. How much was written before an error:
 * knit_write_all_partial.
 */
KNIT_API ssize_t knit_write_all(int fd, const void *buf, size_t n);

/* knit_read_exact() that also stores the bytes read in *@done (also on
 * success, then @n; @done may be NULL). */
KNIT_API ssize_t knit_read_exact_partial(int fd, void *buf, size_t n,
                                         size_t *done);

/* knit_write_all() that also stores the bytes written in *@done (also on
 * success, then @n; @done may be NULL). */
KNIT_API ssize_t knit_write_all_partial(int fd, const void *buf, size_t n,
                                        size_t *done);

/* shutdown(2) for one or both directions (SHUT_RD, SHUT_WR, SHUT_RDWR).
 * Not a cancellation point. Return: 0; -EINVAL, -ENOTCONN, -EBADF,
 * -ENOTSOCK. */
KNIT_API int knit_shutdown(int fd, int how);

/* ---- UDP ---------------------------------------------------------------- */

/*
 * A UDP socket bound to @host:@port (NULL host: any IPv4). Names are
 * resolved as by knit_tcp_listen. Return: the fd; -EINVAL for a bad @port;
 * -EADDRINUSE, -EADDRNOTAVAIL, another -errno of socket(2) or bind(2);
 * the lookup's errors.
 */
KNIT_API int knit_udp_bind(const char *host, int port);

/*
 * A UDP socket connected to @host:@port (use knit_read / knit_write; a
 * datagram refused by the peer's host shows as -ECONNREFUSED on a later
 * call). Cancellation point only through the lookup of a name. Return: the
 * fd; -EINVAL; -ENETUNREACH, another -errno of socket(2) or connect(2);
 * the lookup's errors.
 */
KNIT_API int knit_udp_connect(const char *host, int port);

/**
 * knit_sendto() - send one datagram to @to.
 * Cancellation point. Return: bytes sent; -EMSGSIZE; -ECANCELED /
 * -ETIMEDOUT; another -errno of sendto(2).
 */
KNIT_API ssize_t knit_sendto(int fd, const void *buf, size_t n,
                             const struct sockaddr *to, socklen_t tolen);

/**
 * knit_recvfrom() - receive one datagram (truncated to @n bytes).
 * @from, @fromlen: out, may be NULL.
 * Cancellation point. Return: bytes received; -ECONNREFUSED (connected
 * socket whose peer refused an earlier datagram); -ECANCELED / -ETIMEDOUT;
 * another -errno of recvfrom(2).
 */
KNIT_API ssize_t knit_recvfrom(int fd, void *buf, size_t n,
                               struct sockaddr_storage *from,
                               socklen_t *fromlen);

/* ---- Unix stream sockets ------------------------------------------------ */

/*
 * Listens on the filesystem path @path. An old socket file there is
 * replaced; any other file is left alone (-EADDRINUSE). Not a cancellation
 * point. Return: the fd; -EINVAL for a NULL or empty @path; -ENAMETOOLONG;
 * -EADDRINUSE, -EACCES, -ENOENT, another -errno of socket(2), bind(2) or
 * listen(2).
 */
KNIT_API int knit_unix_listen(const char *path, int backlog);

/*
 * Connects to the Unix socket at @path. Cancellation point: while the
 * listener's queue is full it retries, 1 ms doubling to 100 ms apart.
 * Return: the fd; -EINVAL; -ENAMETOOLONG; -ENOENT; -ECONNREFUSED;
 * -ECANCELED / -ETIMEDOUT; another -errno of socket(2) or connect(2).
 */
KNIT_API int knit_unix_connect(const char *path);

/* ---- names -------------------------------------------------------------- */

/**
 * knit_resolve() - resolve @host:@port (getaddrinfo on the DNS pool).
 * @socktype: SOCK_STREAM, SOCK_DGRAM or 0 for both.
 * @out: the list; free it with freeaddrinfo().
 * Numeric addresses are converted on the spot, without the pool.
 * Cancellation point: the scope's deadline applies; a cancelled lookup
 * keeps running on its thread and its result is freed. Outside a task the
 * lookup runs on the calling thread.
 * Return: 0; -EINVAL for a NULL @host or @out, a bad @port or @socktype;
 * -EHOSTUNREACH when the name does not resolve (EAI_NONAME, EAI_AGAIN,
 * EAI_FAIL ...); -ENOMEM; -errno of EAI_SYSTEM; -ECANCELED / -ETIMEDOUT.
 */
KNIT_API int knit_resolve(const char *host, int port, int socktype,
                          struct addrinfo **out);

#ifdef __cplusplus
}
#endif

#endif
