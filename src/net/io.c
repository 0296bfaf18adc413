// SPDX-License-Identifier: MIT
/*
 * Reading and writing on non-blocking fds (knit/net.h): knit_read and
 * knit_write, their vector forms, the exact/all loops, shutdown, and the
 * datagram calls knit_sendto and knit_recvfrom.
 *
 * Every call tries the system call first and parks on readiness
 * (knit_wait_fd) only when it would block, so a socket with data waiting
 * costs one system call and no epoll_ctl. One exception: on epoll, a
 * knit_read after a short read on a socket knit owns parks first when no
 * event has come since (the try would fail; see read_ready). The scope is checked before the
 * first try: inside a fired scope a call fails at once even when data is
 * ready, the rule of every blocking call. After a wake-up the call simply
 * tries again; an error the fd reports (POLLERR, a reset) comes out of
 * that retry.
 *
 * Writes to sockets go through send/sendmsg with MSG_NOSIGNAL, so a peer
 * that is gone gives -EPIPE and never SIGPIPE. An fd that is not a socket
 * answers ENOTSOCK and the write is retried with write/writev; that costs
 * one extra system call per write on pipes and files, which is cheaper
 * than remembering, per fd, what kind of file it is.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>

#include "knit/net.h"
#include "io/driver.h"
#include "net/net.h"

/* ---- the primitive calls ------------------------------------------------ */

/*
 * One I/O call: its arguments and a non-blocking attempt that returns
 * -EAGAIN when it would block. io_retry is the one loop every call here
 * shares; it is inlined, so each attempt is a direct call.
 */
struct io_call {
    ssize_t (*attempt)(struct io_call *c);
    int fd;
    void *buf;        /* read side */
    const void *cbuf; /* write side */
    size_t n;
    const struct iovec *iov; /* vector forms */
    int iovcnt;
    const struct sockaddr *to; /* sendto */
    socklen_t tolen;
    struct sockaddr_storage *from; /* recvfrom */
    socklen_t *fromlen;
};

/* Enters as a blocking call, then tries, parking on @events meanwhile;
 * @wait_first: park before the first try (it would fail). */
static inline ssize_t io_retry(const char *name, struct io_call *c, int events,
                               bool wait_first)
{
    int err = knit__net_enter(name);
    if (err)
        return err;
    if (wait_first) {
        int ev = knit_wait_fd(c->fd, events);
        if (ev < 0)
            return ev;
    }
    for (;;) {
        ssize_t r = c->attempt(c);
        if (r == -EINTR)
            continue;
        if (r != -EAGAIN)
            return r;
        int ev = knit_wait_fd(c->fd, events);
        if (ev < 0)
            return ev;
    }
}

static ssize_t try_read(struct io_call *c)
{
    return knit__net_sys_read(c->fd, c->buf, c->n);
}

/*
 * A completion backend (io_uring): one try, then, on EAGAIN, the kernel
 * does the I/O itself when the fd is ready (KNIT_IO_OP_READ or _SEND)
 * instead of a wake-up and a second try.
 */
static ssize_t io_complete(const char *fn, struct io_call *c, int opcode,
                           void *buf)
{
    int err = knit__net_enter(fn);
    if (err)
        return err;
    ssize_t r;
    while ((r = c->attempt(c)) == -EINTR)
        ;
    if (r != -EAGAIN || c->n == 0)
        return r;
    struct knit_io_op op = {.opcode = opcode, .fd = c->fd, .buf = buf,
                            .len = c->n > UINT_MAX ? UINT_MAX : c->n};
    return knit__io_op_run(knit__net_io(), &op);
}

/* Whether the calling worker's backend completes I/O itself. */
static bool completion_backend(void)
{
    struct knit_io *io = knit__net_io();
    return io && io->ops->submit;
}

/*
 * A readiness backend with edge-triggered sockets (epoll): after a read
 * that came back short, the next one would fail with EAGAIN unless data
 * came since, which the backend knows (ops->is_drained): it parks first
 * and saves that system call (a request/response exchange makes one per
 * request otherwise, ~1.3 us on a VM).
 */
static ssize_t read_ready(struct io_call *c)
{
    struct knit_io *io = knit__net_io();
    bool hints = io && io->ops->is_drained;
    ssize_t r = io_retry("knit_read", c, POLLIN,
                         hints && io->ops->is_drained(io, c->fd));
    if (hints && r > 0 && (size_t)r < c->n)
        io->ops->read_drained(io, c->fd);
    return r;
}

ssize_t knit_read(int fd, void *buf, size_t n)
{
    struct io_call c = {.attempt = try_read, .fd = fd, .buf = buf, .n = n};
    if (!completion_backend())
        return read_ready(&c);
    return io_complete("knit_read", &c, KNIT_IO_OP_READ, buf);
}

static ssize_t try_readv(struct io_call *c)
{
    return knit__net_sys_readv(c->fd, c->iov, c->iovcnt);
}

ssize_t knit_readv(int fd, const struct iovec *iov, int iovcnt)
{
    struct io_call c = {
        .attempt = try_readv, .fd = fd, .iov = iov, .iovcnt = iovcnt};
    return io_retry("knit_readv", &c, POLLIN, false);
}

/* One non-blocking write attempt; sockets never raise SIGPIPE. */
static ssize_t try_write(struct io_call *c)
{
    ssize_t r = knit__net_sys_send(c->fd, c->cbuf, c->n, MSG_NOSIGNAL);
    if (r == -ENOTSOCK)
        r = knit__net_sys_write(c->fd, c->cbuf, c->n);
    return r;
}

static ssize_t try_send(struct io_call *c)
{
    return knit__net_sys_send(c->fd, c->cbuf, c->n, MSG_NOSIGNAL);
}

ssize_t knit_write(int fd, const void *buf, size_t n)
{
    struct io_call c = {.attempt = try_write, .fd = fd, .cbuf = buf, .n = n};
    if (completion_backend()) {
        /* Sockets only: the kernel's send takes MSG_NOSIGNAL, a write to
         * a pipe would raise SIGPIPE. */
        struct io_call s = {.attempt = try_send, .fd = fd, .cbuf = buf, .n = n};
        ssize_t r = io_complete("knit_write", &s, KNIT_IO_OP_SEND, (void *)buf);
        if (r != -ENOTSOCK)
            return r;
    }
    return io_retry("knit_write", &c, POLLOUT, false);
}

static ssize_t try_writev(struct io_call *c)
{
    if (c->iovcnt < 0)
        return -EINVAL;
    /* sendmsg takes a non-const iovec array but does not write to it. */
    struct msghdr m = {.msg_iov = (struct iovec *)c->iov,
                       .msg_iovlen = (size_t)c->iovcnt};
    ssize_t r = knit__net_sys_sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (r == -ENOTSOCK)
        r = knit__net_sys_writev(c->fd, c->iov, c->iovcnt);
    return r;
}

ssize_t knit_writev(int fd, const struct iovec *iov, int iovcnt)
{
    struct io_call c = {
        .attempt = try_writev, .fd = fd, .iov = iov, .iovcnt = iovcnt};
    return io_retry("knit_writev", &c, POLLOUT, false);
}

/* ---- exact reads and whole writes --------------------------------------- */

ssize_t knit_read_exact_partial(int fd, void *buf, size_t n, size_t *done)
{
    size_t got = 0;
    ssize_t r = knit__net_enter("knit_read_exact");
    if (!r && n > SSIZE_MAX)
        r = -EINVAL;
    while (!r && got < n) {
        r = knit_read(fd, (char *)buf + got, n - got);
        if (r == 0) {
            r = -EPIPE; /* end of file inside the message */
        } else if (r > 0) {
            got += (size_t)r;
            r = 0;
        }
    }
    if (done)
        *done = got;
    return r ? r : (ssize_t)n;
}

ssize_t knit_read_exact(int fd, void *buf, size_t n)
{
    return knit_read_exact_partial(fd, buf, n, NULL);
}

ssize_t knit_write_all_partial(int fd, const void *buf, size_t n, size_t *done)
{
    size_t put = 0;
    ssize_t r = knit__net_enter("knit_write_all");
    if (!r && n > SSIZE_MAX)
        r = -EINVAL;
    while (!r && put < n) {
        r = knit_write(fd, (const char *)buf + put, n - put);
        if (r == 0) {
            r = -EIO; /* a device that takes nothing would loop forever */
        } else if (r > 0) {
            put += (size_t)r;
            r = 0;
        }
    }
    if (done)
        *done = put;
    return r ? r : (ssize_t)n;
}

ssize_t knit_write_all(int fd, const void *buf, size_t n)
{
    return knit_write_all_partial(fd, buf, n, NULL);
}

int knit_shutdown(int fd, int how)
{
    return knit__net_sys_shutdown(fd, how);
}

/* ---- datagrams ---------------------------------------------------------- */

static ssize_t try_sendto(struct io_call *c)
{
    return knit__net_sys_sendto(c->fd, c->cbuf, c->n, MSG_NOSIGNAL, c->to,
                                c->tolen);
}

ssize_t knit_sendto(int fd, const void *buf, size_t n,
                    const struct sockaddr *to, socklen_t tolen)
{
    struct io_call c = {.attempt = try_sendto,
                        .fd = fd,
                        .cbuf = buf,
                        .n = n,
                        .to = to,
                        .tolen = tolen};
    return io_retry("knit_sendto", &c, POLLOUT, false);
}

static ssize_t try_recvfrom(struct io_call *c)
{
    socklen_t len = c->from ? sizeof(*c->from) : 0;
    ssize_t r = knit__net_sys_recvfrom(c->fd, c->buf, c->n, 0,
                                       (struct sockaddr *)c->from,
                                       c->from ? &len : NULL);
    if (r >= 0 && c->fromlen)
        *c->fromlen = len;
    return r;
}

ssize_t knit_recvfrom(int fd, void *buf, size_t n,
                      struct sockaddr_storage *from, socklen_t *fromlen)
{
    struct io_call c = {.attempt = try_recvfrom,
                        .fd = fd,
                        .buf = buf,
                        .n = n,
                        .from = from,
                        .fromlen = fromlen};
    return io_retry("knit_recvfrom", &c, POLLIN, false);
}
