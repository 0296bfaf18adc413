// SPDX-License-Identifier: MIT
/*
 * Reading and writing on non-blocking fds (knit/net.h): knit_read and
 * knit_write, their vector forms, the exact/all loops, shutdown, and the
 * datagram calls knit_sendto and knit_recvfrom.
 *
 * Every call tries the system call first and parks on readiness
 * (knit_wait_fd) only when it would block, so a socket with data waiting
 * costs one system call and no epoll_ctl. The scope is checked before the
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
#include "net/net.h"

/* ---- the primitive calls ------------------------------------------------ */

ssize_t knit_read(int fd, void *buf, size_t n)
{
    int err = knit__net_enter("knit_read");
    if (err)
        return err;
    for (;;) {
        ssize_t r = knit__net_sys_read(fd, buf, n);
        if (r == -EAGAIN) {
            int ev = knit_wait_fd(fd, POLLIN);
            if (ev < 0)
                return ev;
        } else if (r != -EINTR) {
            return r;
        }
    }
}

ssize_t knit_readv(int fd, const struct iovec *iov, int iovcnt)
{
    int err = knit__net_enter("knit_readv");
    if (err)
        return err;
    for (;;) {
        ssize_t r = knit__net_sys_readv(fd, iov, iovcnt);
        if (r == -EAGAIN) {
            int ev = knit_wait_fd(fd, POLLIN);
            if (ev < 0)
                return ev;
        } else if (r != -EINTR) {
            return r;
        }
    }
}

/* One non-blocking write attempt; sockets never raise SIGPIPE. */
static ssize_t try_write(int fd, const void *buf, size_t n)
{
    ssize_t r = knit__net_sys_send(fd, buf, n, MSG_NOSIGNAL);
    if (r == -ENOTSOCK)
        r = knit__net_sys_write(fd, buf, n);
    return r;
}

ssize_t knit_write(int fd, const void *buf, size_t n)
{
    int err = knit__net_enter("knit_write");
    if (err)
        return err;
    for (;;) {
        ssize_t r = try_write(fd, buf, n);
        if (r == -EAGAIN) {
            int ev = knit_wait_fd(fd, POLLOUT);
            if (ev < 0)
                return ev;
        } else if (r != -EINTR) {
            return r;
        }
    }
}

static ssize_t try_writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0)
        return -EINVAL;
    /* sendmsg takes a non-const iovec array but does not write to it. */
    struct msghdr m = {.msg_iov = (struct iovec *)iov,
                       .msg_iovlen = (size_t)iovcnt};
    ssize_t r = knit__net_sys_sendmsg(fd, &m, MSG_NOSIGNAL);
    if (r == -ENOTSOCK)
        r = knit__net_sys_writev(fd, iov, iovcnt);
    return r;
}

ssize_t knit_writev(int fd, const struct iovec *iov, int iovcnt)
{
    int err = knit__net_enter("knit_writev");
    if (err)
        return err;
    for (;;) {
        ssize_t r = try_writev(fd, iov, iovcnt);
        if (r == -EAGAIN) {
            int ev = knit_wait_fd(fd, POLLOUT);
            if (ev < 0)
                return ev;
        } else if (r != -EINTR) {
            return r;
        }
    }
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

ssize_t knit_sendto(int fd, const void *buf, size_t n,
                    const struct sockaddr *to, socklen_t tolen)
{
    int err = knit__net_enter("knit_sendto");
    if (err)
        return err;
    for (;;) {
        ssize_t r = knit__net_sys_sendto(fd, buf, n, MSG_NOSIGNAL, to, tolen);
        if (r == -EAGAIN) {
            int ev = knit_wait_fd(fd, POLLOUT);
            if (ev < 0)
                return ev;
        } else if (r != -EINTR) {
            return r;
        }
    }
}

ssize_t knit_recvfrom(int fd, void *buf, size_t n,
                      struct sockaddr_storage *from, socklen_t *fromlen)
{
    int err = knit__net_enter("knit_recvfrom");
    if (err)
        return err;
    for (;;) {
        socklen_t len = from ? sizeof(*from) : 0;
        ssize_t r = knit__net_sys_recvfrom(
            fd, buf, n, 0, (struct sockaddr *)from, from ? &len : NULL);
        if (r >= 0) {
            if (fromlen)
                *fromlen = len;
            return r;
        }
        if (r == -EAGAIN) {
            int ev = knit_wait_fd(fd, POLLIN);
            if (ev < 0)
                return ev;
        } else if (r != -EINTR) {
            return r;
        }
    }
}
