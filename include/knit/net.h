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
 * Return: 0; -EBADF; another -errno from close(2).
 */
KNIT_API int knit_close(int fd);

/* ---- TCP ------------------------------------------------------------- */

#define KNIT_LISTEN_REUSEPORT 1u /* SO_REUSEPORT: several listeners share */

/**
 * knit_tcp_listen() - listen on @host:@port (SO_REUSEADDR).
 * @host: an address or name to bind ("127.0.0.1", "::1", "localhost"), or
 *        NULL for every IPv4 address. @port: 0 picks a free port
 *        (knit_local_port tells which).
 * Return: the listening fd; -errno (e.g. -EADDRINUSE, -EINVAL).
 */
KNIT_API int knit_tcp_listen(const char *host, int port, int backlog);

/* knit_tcp_listen() with KNIT_LISTEN_* @flags. */
KNIT_API int knit_tcp_listen_flags(const char *host, int port, int backlog,
                                   unsigned flags);

/**
 * knit_tcp_accept() - wait for and accept one connection on @lfd (any
 * stream listener: TCP or Unix).
 * @peer, @len: out, may be NULL; the peer's address.
 * Cancellation point. When the process is out of fds (EMFILE, ENFILE) it
 * does not spin: it frees its reserve fd, accepts and closes the pending
 * connection (so the client sees a reset instead of hanging), takes the
 * reserve back and waits a little before accepting again.
 * Return: the connection's fd (non-blocking, TCP_NODELAY on TCP);
 * -ECANCELED / -ETIMEDOUT; another -errno.
 */
KNIT_API int knit_tcp_accept(int lfd, struct sockaddr_storage *peer,
                             socklen_t *len);

/**
 * knit_tcp_connect() - connect to @host:@port, trying each address the
 * name resolves to in order.
 * Cancellation point; the scope's deadline bounds resolution and every
 * attempt.
 * Return: the connected fd (non-blocking, TCP_NODELAY); -ECONNREFUSED,
 * -ETIMEDOUT, -ENETUNREACH ... (the last attempt's error); -EAI_* mapped
 * to -EHOSTUNREACH when the name does not resolve; -ECANCELED.
 */
KNIT_API int knit_tcp_connect(const char *host, int port);

/* The local port @fd is bound to, or -errno. */
KNIT_API int knit_local_port(int fd);

/* ---- reading and writing ----------------------------------------------- */

/**
 * knit_read() - read up to @n bytes, waiting until some are available.
 * Cancellation point.
 * Return: bytes read (> 0); 0 at end of file; -ECONNRESET, -EBADF,
 * -ECANCELED / -ETIMEDOUT, another -errno.
 */
KNIT_API ssize_t knit_read(int fd, void *buf, size_t n);

/**
 * knit_write() - write up to @n bytes, waiting until some can be written.
 * Cancellation point.
 * Return: bytes written (> 0); -EPIPE when the peer is gone (no SIGPIPE);
 * -ECANCELED / -ETIMEDOUT; another -errno.
 */
KNIT_API ssize_t knit_write(int fd, const void *buf, size_t n);

KNIT_API ssize_t knit_readv(int fd, const struct iovec *iov, int iovcnt);
KNIT_API ssize_t knit_writev(int fd, const struct iovec *iov, int iovcnt);

/**
 * knit_read_exact() - read exactly @n bytes.
 * Cancellation point.
 * Return: @n; -EPIPE when end of file comes first (-EPIPE, not 0, so that
 * a short message is never mistaken for a whole one); another error as
 * knit_read. How much was read before an error: knit_read_exact_partial.
 */
KNIT_API ssize_t knit_read_exact(int fd, void *buf, size_t n);

/**
 * knit_write_all() - write all @n bytes.
 * Cancellation point.
 * Return: @n; an error as knit_write. How much was written before an
 * error: knit_write_all_partial.
 */
KNIT_API ssize_t knit_write_all(int fd, const void *buf, size_t n);

/* knit_read_exact() that also stores the bytes read in *@done. */
KNIT_API ssize_t knit_read_exact_partial(int fd, void *buf, size_t n,
                                         size_t *done);

/* knit_write_all() that also stores the bytes written in *@done. */
KNIT_API ssize_t knit_write_all_partial(int fd, const void *buf, size_t n,
                                        size_t *done);

/* shutdown(2) for one or both directions: 0 or -errno. */
KNIT_API int knit_shutdown(int fd, int how);

/* ---- UDP ---------------------------------------------------------------- */

/* A UDP socket bound to @host:@port (NULL host: any IPv4): fd or -errno. */
KNIT_API int knit_udp_bind(const char *host, int port);

/* A UDP socket connected to @host:@port (use knit_read / knit_write). */
KNIT_API int knit_udp_connect(const char *host, int port);

/**
 * knit_sendto() - send one datagram to @to.
 * Cancellation point. Return: bytes sent; -errno.
 */
KNIT_API ssize_t knit_sendto(int fd, const void *buf, size_t n,
                             const struct sockaddr *to, socklen_t tolen);

/**
 * knit_recvfrom() - receive one datagram (truncated to @n bytes).
 * @from, @fromlen: out, may be NULL.
 * Cancellation point. Return: bytes received; -errno.
 */
KNIT_API ssize_t knit_recvfrom(int fd, void *buf, size_t n,
                               struct sockaddr_storage *from,
                               socklen_t *fromlen);

/* ---- Unix stream sockets --------------------------------------------------- */

/* Listens on the filesystem path @path (an old socket file is replaced). */
KNIT_API int knit_unix_listen(const char *path, int backlog);

/* Connects to the Unix socket at @path. Cancellation point. */
KNIT_API int knit_unix_connect(const char *path);

/* ---- names ------------------------------------------------------------------ */

/**
 * knit_resolve() - resolve @host:@port (getaddrinfo on the DNS pool).
 * @socktype: SOCK_STREAM, SOCK_DGRAM or 0 for both.
 * @out: the list; free it with freeaddrinfo().
 * Cancellation point: the scope's deadline applies; a cancelled lookup
 * keeps running on its thread and its result is freed.
 * Return: 0; -EHOSTUNREACH when the name does not resolve; -ENOMEM;
 * -ECANCELED / -ETIMEDOUT.
 */
KNIT_API int knit_resolve(const char *host, int port, int socktype,
                          struct addrinfo **out);

#ifdef __cplusplus
}
#endif

#endif
