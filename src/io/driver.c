// SPDX-License-Identifier: MIT
/*
 * Driver selection and the readiness wait built on it (knit_wait_fd).
 */
#include "io/driver.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "core/sched.h"
#include "core/sys.h"
#include "knit/net.h"

/* Whether KNIT_IO_AUTO picks io_uring when it works (else epoll). */
#define KNIT_URING_DEFAULT 0

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
    /* Readiness is not consumed: a select case that lost leaves no trace. */
    if (knit__waiter_claim(&w->w))
        knit__wake(&w->w, revents);
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
