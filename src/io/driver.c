// SPDX-License-Identifier: MIT
/*
 * Driver selection and the readiness wait built on it (knit_wait_fd).
 */
#include "io/driver.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sched.h"
#include "core/sys.h"
#include "knit/net.h"
#include "knit/scope.h"

/* KNIT_IO_AUTO picks io_uring when it works here: on the TCP echo
 * benchmark it serves 104k requests/s at 9.4 us of server CPU each,
 * against epoll's 80k at 12.2 us (bench/README.md). */
#define KNIT_URING_DEFAULT 1

int knit__io_init(struct knit_io *io, const knit_config *cfg)
{
    memset(io, 0, sizeof(*io));
    int want = cfg->io;
    const char *env = getenv("KNIT_IO");
    if (env && want == KNIT_IO_AUTO) {
        if (strcmp(env, "epoll") == 0)
            want = KNIT_IO_EPOLL;
        else if (strcmp(env, "uring") == 0)
            want = KNIT_IO_URING;
    }
#ifdef KNIT_HAVE_URING
    if (want == KNIT_IO_URING || (want == KNIT_IO_AUTO && KNIT_URING_DEFAULT &&
                                  knit__io_uring_usable())) {
        io->ops = &knit__io_uring;
        int err = io->ops->init(io, cfg);
        if (err == 0 || want == KNIT_IO_URING)
            return err; /* asked for by name: no silent fallback */
    }
#else
    if (want == KNIT_IO_URING)
        return -ENOSYS; /* built without liburing */
#endif
    io->ops = &knit__io_epoll;
    return io->ops->init(io, cfg);
}

void knit__io_fini(struct knit_io *io)
{
    if (io->ops)
        io->ops->fini(io);
    io->ops = NULL;
}

void knit__io_ready(struct knit_io_wait *w, int revents)
{
    /* revents < 0: the wait failed (-EBADF: knit_close). */
    w->revents = revents;
    w->io->armed--;
    /* Readiness is not consumed: a select case that lost leaves no trace.
     * The claim is under the runtime lock: the select's other cases may
     * be claimed from other workers. */
    struct knit_worker *self = knit__worker();
    knit__lock(self);
    if (knit__waiter_claim(&w->w))
        knit__wake(&w->w, revents);
    knit__unlock(self);
}

int knit__io_evfd_signal(int evfd)
{
    uint64_t one = 1;
    if (write(evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return -errno;
    return 0;
}

void knit__io_evfd_drain(int evfd)
{
    uint64_t v;
    ssize_t r = read(evfd, &v, sizeof(v));
    (void)r; /* EAGAIN: already drained */
}

void knit__io_own(int fd)
{
    struct knit_worker *w = knit__worker();
    /* With several workers a socket may be waited on from any of them,
     * so each wait registers it one-shot in its own worker's driver. */
    if (w && w->io.ops->own && !w->rt->shared)
        w->io.ops->own(&w->io, fd);
}

void knit__io_op_done(struct knit_io_op *op, int res)
{
    op->res = op->forgotten && res == -ECANCELED ? -EBADF : res;
    op->done = true;
    op->io->armed--;
    if (op->waiting) {
        op->waiting = false;
        knit__wake(&op->w, op->res);
    }
}

/* The scope fired while the op ran: ask the kernel to stop it. */
static void op_cancel(struct knit_waiter *wt)
{
    struct knit_io_op *op = knit_container_of(wt, struct knit_io_op, w);
    op->waiting = false;
    op->io->ops->cancel(op->io, op);
}

ssize_t knit__io_op_run(struct knit_io *io, struct knit_io_op *op)
{
    if (!io->ops->submit)
        return -ENOSYS;
    op->io = io;
    op->done = op->waiting = op->forgotten = false;
    knit_list_init(&op->fd_link);
    knit__waiter_init(&op->w, "io", NULL, op_cancel);
    int err = io->ops->submit(io, op);
    if (err)
        return err;
    io->armed++;
    io->submitted[op->opcode]++;
    op->waiting = true;
    int r = knit__wait(&op->w);
    if (op->done)
        return op->res;
    /* Cancelled in flight: the kernel may still write into op->buf, so
     * wait for the completion, whatever the scope says. */
    knit_scope shield;
    knit_scope_enter_shielded(&shield, KNIT_FOREVER);
    while (!op->done) {
        knit__waiter_init(&op->w, "io cancel", NULL, NULL);
        op->waiting = true;
        knit__wait(&op->w);
    }
    knit_scope_exit(&shield);
    return op->res > 0 ? op->res : r;
}

int knit__io_wait_arm(struct knit_io *io, struct knit_io_wait *w, int fd,
                      int events)
{
    knit_list_init(&w->fd_link);
    w->io = io;
    w->fd = fd;
    w->events = events;
    w->revents = 0;
    int err = io->ops->arm(io, w);
    if (err == 0)
        io->armed++;
    return err;
}

void knit__io_wait_disarm(struct knit_io_wait *w)
{
    if (knit_list_is_linked(&w->fd_link)) {
        w->io->ops->disarm(w->io, w);
        w->io->armed--;
    }
}

void knit__io_wait_cancel(struct knit_waiter *wt)
{
    knit__io_wait_disarm(knit_container_of(wt, struct knit_io_wait, w));
}

int knit_wait_fd(int fd, int events)
{
    if (fd < 0 || events == 0 || (events & ~(POLLIN | POLLOUT)))
        return -EINVAL;
    struct knit_worker *wk = knit__worker();
    if (!wk || !wk->current)
        knit__panic("knit_wait_fd called outside a task");
    int err = knit__scope_err(wk->current);
    if (err)
        return err;
    struct knit_io_wait w;
    knit__waiter_init(&w.w, "fd", NULL, knit__io_wait_cancel);
    err = knit__io_wait_arm(&wk->io, &w, fd, events);
    if (err == -EPERM)
        return events; /* regular files and the like are always ready */
    if (err)
        return err;
    return knit__wait(&w.w);
}

int knit_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    struct knit_worker *w = knit__worker();
    if (w)
        w->io.ops->forget(&w->io, fd);
    return knit__sys_close(fd);
}
