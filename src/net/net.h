// SPDX-License-Identifier: MIT
/*
 * Private header of the networking area (src/net): the system-call
 * wrappers its files share, the entry check of every blocking net call,
 * and name resolution with getaddrinfo flags for the socket constructors.
 *
 * The wrappers follow src/core/sys.h (-1/errno becomes -errno) and are
 * the fault seam of the I/O calls (core/fault.h): each asks knit__fault
 * first, so a test or a soak run can make it fail with a chosen errno.
 */
#ifndef KNIT_NET_NET_H
#define KNIT_NET_NET_H

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/fault.h"
#include "core/sched.h"
#include "io/driver.h"

/* ---- system calls ------------------------------------------------------- */

/* Sockets knit creates are knit's: the driver may register them once for
 * good (epoll, edge-triggered), which is why they must be closed with
 * knit_close. */
static inline int knit__net_sys_socket(int domain, int type, int protocol)
{
    int fault = knit__fault(KNIT_FAULT_SOCKET);
    if (knit_unlikely(fault))
        return fault;
    int fd = socket(domain, type, protocol);
    if (fd >= 0 && (type & SOCK_NONBLOCK))
        knit__io_own(fd);
    return fd < 0 ? -errno : fd;
}

static inline int knit__net_sys_bind(int fd, const struct sockaddr *a,
                                     socklen_t len)
{
    return bind(fd, a, len) < 0 ? -errno : 0;
}

static inline int knit__net_sys_listen(int fd, int backlog)
{
    return listen(fd, backlog) < 0 ? -errno : 0;
}

static inline int knit__net_sys_accept4(int fd, struct sockaddr *a,
                                        socklen_t *len, int flags)
{
    int fault = knit__fault(KNIT_FAULT_ACCEPT);
    if (knit_unlikely(fault))
        return fault;
    int c = accept4(fd, a, len, flags);
    if (c >= 0 && (flags & SOCK_NONBLOCK))
        knit__io_own(c);
    return c < 0 ? -errno : c;
}

static inline int knit__net_sys_connect(int fd, const struct sockaddr *a,
                                        socklen_t len)
{
    int fault = knit__fault(KNIT_FAULT_CONNECT);
    if (knit_unlikely(fault && fault != -EINTR))
        return fault;
    int r = connect(fd, a, len) < 0 ? -errno : 0;
    /* A signal interrupts a connect after the kernel started it: the
     * handshake goes on in the background, as for EINPROGRESS. */
    if (knit_unlikely(fault) && (r == 0 || r == -EINPROGRESS))
        return fault;
    return r;
}

/*
 * The fault seam of a connect the kernel runs by itself (io_uring's
 * IORING_OP_CONNECT, no connect(2) of ours): 0 to go on, or the -errno to
 * fail with. EINTR is invisible there, as it is for a connect(2) that a
 * signal interrupted after the kernel had started it.
 */
static inline int knit__net_connect_fault(void)
{
    int fault = knit__fault(KNIT_FAULT_CONNECT);
    return fault == -EINTR ? 0 : fault;
}

static inline int knit__net_sys_setsockopt(int fd, int level, int name,
                                           const void *val, socklen_t len)
{
    return setsockopt(fd, level, name, val, len) < 0 ? -errno : 0;
}

static inline int knit__net_sys_getsockopt(int fd, int level, int name,
                                           void *val, socklen_t *len)
{
    return getsockopt(fd, level, name, val, len) < 0 ? -errno : 0;
}

static inline int knit__net_sys_getsockname(int fd, struct sockaddr *a,
                                            socklen_t *len)
{
    return getsockname(fd, a, len) < 0 ? -errno : 0;
}

static inline int knit__net_sys_getpeername(int fd, struct sockaddr *a,
                                            socklen_t *len)
{
    return getpeername(fd, a, len) < 0 ? -errno : 0;
}

static inline int knit__net_sys_shutdown(int fd, int how)
{
    return shutdown(fd, how) < 0 ? -errno : 0;
}

static inline ssize_t knit__net_sys_read(int fd, void *buf, size_t n)
{
    int fault = knit__fault(KNIT_FAULT_READ);
    if (knit_unlikely(fault))
        return fault;
    ssize_t r = read(fd, buf, n);
    return r < 0 ? -errno : r;
}

static inline ssize_t knit__net_sys_readv(int fd, const struct iovec *iov,
                                          int iovcnt)
{
    int fault = knit__fault(KNIT_FAULT_READ);
    if (knit_unlikely(fault))
        return fault;
    ssize_t r = readv(fd, iov, iovcnt);
    return r < 0 ? -errno : r;
}

static inline ssize_t knit__net_sys_write(int fd, const void *buf, size_t n)
{
    int fault = knit__fault(KNIT_FAULT_WRITE);
    if (knit_unlikely(fault))
        return fault;
    ssize_t r = write(fd, buf, n);
    return r < 0 ? -errno : r;
}

static inline ssize_t knit__net_sys_writev(int fd, const struct iovec *iov,
                                           int iovcnt)
{
    int fault = knit__fault(KNIT_FAULT_WRITE);
    if (knit_unlikely(fault))
        return fault;
    ssize_t r = writev(fd, iov, iovcnt);
    return r < 0 ? -errno : r;
}

static inline ssize_t knit__net_sys_send(int fd, const void *buf, size_t n,
                                         int flags)
{
    int fault = knit__fault(KNIT_FAULT_WRITE);
    if (knit_unlikely(fault))
        return fault;
    ssize_t r = send(fd, buf, n, flags);
    return r < 0 ? -errno : r;
}

static inline ssize_t knit__net_sys_sendmsg(int fd, const struct msghdr *m,
                                            int flags)
{
    int fault = knit__fault(KNIT_FAULT_WRITE);
    if (knit_unlikely(fault))
        return fault;
    ssize_t r = sendmsg(fd, m, flags);
    return r < 0 ? -errno : r;
}

static inline ssize_t knit__net_sys_sendto(int fd, const void *buf, size_t n,
                                           int flags, const struct sockaddr *to,
                                           socklen_t tolen)
{
    int fault = knit__fault(KNIT_FAULT_WRITE);
    if (knit_unlikely(fault))
        return fault;
    ssize_t r = sendto(fd, buf, n, flags, to, tolen);
    return r < 0 ? -errno : r;
}

static inline ssize_t knit__net_sys_recvfrom(int fd, void *buf, size_t n,
                                             int flags, struct sockaddr *from,
                                             socklen_t *fromlen)
{
    int fault = knit__fault(KNIT_FAULT_READ);
    if (knit_unlikely(fault))
        return fault;
    ssize_t r = recvfrom(fd, buf, n, flags, from, fromlen);
    return r < 0 ? -errno : r;
}

static inline int knit__net_sys_open(const char *path, int flags)
{
    int fd = open(path, flags);
    return fd < 0 ? -errno : fd;
}

static inline int knit__net_sys_lstat(const char *path, struct stat *st)
{
    return lstat(path, st) < 0 ? -errno : 0;
}

static inline int knit__net_sys_unlink(const char *path)
{
    return unlink(path) < 0 ? -errno : 0;
}

/* ---- shared by the net files -------------------------------------------- */

/*
 * The entry of every blocking net call: panics outside a task (misuse, as
 * in knit_wait_fd) and returns the fired scope's error, or 0. Checking
 * before the first try is what makes a fired scope win over ready data.
 */
static inline int knit__net_enter(const char *fn)
{
    struct knit_worker *w = knit__worker();
    struct knit_task *t = w ? w->current : NULL;
    if (!t)
        knit__panic("%s called outside a task", fn);
    return knit__coop_enter(w, t);
}

/* The calling worker's I/O driver, or NULL outside a runtime. */
static inline struct knit_io *knit__net_io(void)
{
    struct knit_worker *w = knit__worker();
    return w ? &w->io : NULL;
}

/*
 * knit__net_resolve() - getaddrinfo for @host:@port with @flags added to
 * AI_NUMERICSERV (AI_PASSIVE for the bind address of a server).
 * Numeric hosts are converted on the spot; names go to the DNS pool when
 * called from a task, and are looked up on the calling thread otherwise.
 * Return: as knit_resolve.
 */
int knit__net_resolve(const char *host, int port, int socktype, int flags,
                      struct addrinfo **out);

#endif
