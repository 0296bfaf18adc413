// SPDX-License-Identifier: MIT
/*
 * The epoll backend (readiness). Each fd with waiting tasks is registered
 * EPOLLONESHOT with the union of what its waiters want; when it fires, the
 * matching waiters are woken and the fd is re-armed for the rest. An
 * eventfd, registered level-triggered, lets other threads interrupt
 * epoll_wait.
 *
 * Two ways to register:
 *  - Sockets knit creates (ops->own) are registered once, edge-triggered,
 *    for everything, at their first wait; later waits cost no system call.
 *    That is safe because knit's calls always try the I/O first and wait
 *    only after EAGAIN, and this thread both reads the fd and runs
 *    epoll_wait, so an edge after the EAGAIN cannot be missed; an edge
 *    before it is at worst a spurious wake-up (the retry sees EAGAIN and
 *    waits again). Such sockets must be closed with knit_close, which
 *    drops the registration and the entry.
 *  - Any other fd (knit_wait_fd on the application's own fds) gets one
 *    EPOLLONESHOT registration per wait with the union of its waiters'
 *    events: one epoll_ctl per wait, but an fd the application closes
 *    behind knit's back can never leave a stale registration.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/sys.h"
#include "io/driver.h"

#define EVENTFD_TAG UINT64_MAX
#define MAX_EVENTS 256

struct fd_entry {
    struct knit_list waits; /* struct knit_io_wait.fd_link */
    bool added;             /* registered with epoll_ctl(ADD) before */
    bool owned;             /* knit's socket: edge-triggered, for good */
    /* owned: a read came back short and no event has come since, so a
     * read now would fail (ops->read_drained). An edge that arrives
     * later is queued in the kernel until the next epoll_wait, which
     * clears this whether or not a task waits; so a reader that sees it
     * set may wait first without missing data. */
    bool drained;
    /* The peer closed or reset (an event said RDHUP, HUP or ERR): no
     * edge comes after that, and a read that returns the last data
     * short leaves the end or the error still to read, so the fd is
     * never marked drained again. */
    bool ended;
};

struct epoll_state {
    int epfd;              /* the epoll instance */
    int evfd;              /* wake-up eventfd */
    struct fd_entry **fds; /* indexed by fd; NULL until first used */
    int nfds;              /* entries in fds */
};

static int ep_init(struct knit_io *io, const knit_config *cfg)
{
    (void)cfg;
    struct epoll_state *s = knit__calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int err;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        err = -errno;
        goto out_free;
    }
    s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->evfd < 0) {
        err = -errno;
        goto out_close_epfd;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EVENTFD_TAG};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev) < 0) {
        err = -errno;
        goto out_close_evfd;
    }
    io->state = s;
    return 0;
out_close_evfd:
    knit__sys_close(s->evfd);
out_close_epfd:
    knit__sys_close(s->epfd);
out_free:
    free(s);
    return err;
}

static void ep_fini(struct knit_io *io)
{
    struct epoll_state *s = io->state;
    if (!s)
        return;
    knit__sys_close(s->evfd);
    knit__sys_close(s->epfd);
    for (int i = 0; i < s->nfds; i++)
        free(s->fds[i]);
    free(s->fds);
    free(s);
    io->state = NULL;
}

/* The entry for @fd, created on first use (entries never move). */
static struct fd_entry *entry(struct epoll_state *s, int fd)
{
    if (fd >= s->nfds) {
        int n = s->nfds ? s->nfds : 64;
        while (n <= fd)
            n *= 2;
        struct fd_entry **v = knit__realloc(s->fds, (size_t)n * sizeof(*v));
        if (!v)
            return NULL;
        memset(v + s->nfds, 0, (size_t)(n - s->nfds) * sizeof(*v));
        s->fds = v;
        s->nfds = n;
    }
    if (!s->fds[fd]) {
        struct fd_entry *e = knit__malloc(sizeof(*e));
        if (!e)
            return NULL;
        knit_list_init(&e->waits);
        e->added = false;
        e->owned = false;
        e->drained = false;
        e->ended = false;
        s->fds[fd] = e;
    }
    return s->fds[fd];
}

static uint32_t to_epoll(int events)
{
    uint32_t e = EPOLLONESHOT;
    if (events & POLLIN)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & POLLOUT)
        e |= EPOLLOUT;
    return e;
}

static int from_epoll(uint32_t e)
{
    int r = 0;
    if (e & (EPOLLIN | EPOLLRDHUP))
        r |= POLLIN;
    if (e & EPOLLOUT)
        r |= POLLOUT;
    if (e & EPOLLERR)
        r |= POLLERR;
    if (e & EPOLLHUP)
        r |= POLLHUP;
    return r;
}

/* Registers @fd for the union of its waiters' events. */
static int rearm(struct epoll_state *s, int fd, struct fd_entry *e)
{
    int events = 0;
    struct knit_list *it;
    knit_list_for_each(it, &e->waits)
    {
        events |= knit_container_of(it, struct knit_io_wait, fd_link)->events;
    }
    struct epoll_event ev = {.events = to_epoll(events),
                             .data.u64 = (uint64_t)fd};
    int op = e->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int r = epoll_ctl(s->epfd, op, fd, &ev);
    if (r < 0 && errno == ENOENT && op == EPOLL_CTL_MOD)
        r = epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
    else if (r < 0 && errno == EEXIST && op == EPOLL_CTL_ADD)
        r = epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
    if (r < 0)
        return -errno;
    e->added = true;
    return 0;
}

/* An owned socket's one registration: edge-triggered, every event. */
static int add_owned(struct epoll_state *s, int fd, struct fd_entry *e)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP |
                                       EPOLLET,
                             .data.u64 = (uint64_t)fd};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 &&
        (errno != EEXIST || epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev) < 0))
        return -errno;
    e->added = true;
    return 0;
}

static int ep_arm(struct knit_io *io, struct knit_io_wait *w)
{
    struct epoll_state *s = io->state;
    struct fd_entry *e = entry(s, w->fd);
    if (!e)
        return -ENOMEM;
    if (e->owned) {
        int err = e->added ? 0 : add_owned(s, w->fd, e);
        if (err == 0)
            knit_list_push_back(&e->waits, &w->fd_link);
        return err;
    }
    knit_list_push_back(&e->waits, &w->fd_link);
    int err = rearm(s, w->fd, e);
    if (err)
        knit_list_remove(&w->fd_link);
    return err;
}

static void ep_disarm(struct knit_io *io, struct knit_io_wait *w)
{
    (void)io;
    /* A spurious oneshot event for the others is filtered in ep_poll. */
    knit_list_remove(&w->fd_link);
}

static void dispatch(struct epoll_state *s, int fd, uint32_t events)
{
    if (fd < 0 || fd >= s->nfds || !s->fds[fd])
        return;
    struct fd_entry *e = s->fds[fd];
    int revents = from_epoll(events);
    e->drained = false; /* whatever came, a read may find it */
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        e->ended = true;
    struct knit_list *it, *tmp;
    knit_list_for_each_safe(it, tmp, &e->waits)
    {
        struct knit_io_wait *w =
            knit_container_of(it, struct knit_io_wait, fd_link);
        int mine = revents & (w->events | POLLERR | POLLHUP);
        if (mine) {
            knit_list_remove(&w->fd_link);
            knit__io_ready(w, mine);
        }
    }
    if (e->owned)
        return; /* edge-triggered: stays registered */
    if (!knit_list_is_empty(&e->waits) && rearm(s, fd, e) < 0) {
        /* The fd went bad under us: tell its waiters. */
        while (!knit_list_is_empty(&e->waits)) {
            struct knit_io_wait *w =
                knit_container_of(e->waits.next, struct knit_io_wait, fd_link);
            knit_list_remove(&w->fd_link);
            knit__io_ready(w, POLLERR);
        }
    }
}

static int ep_poll(struct knit_io *io, int64_t timeout_ms)
{
    struct epoll_state *s = io->state;
    struct epoll_event evs[MAX_EVENTS];
    int timeout = timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms;
    int n = epoll_wait(s->epfd, evs, MAX_EVENTS, timeout);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u64 == EVENTFD_TAG) {
            knit__io_evfd_drain(s->evfd);
            continue;
        }
        dispatch(s, (int)evs[i].data.u64, evs[i].events);
    }
    return n;
}

static int ep_wake(struct knit_io *io)
{
    struct epoll_state *s = io->state;
    return knit__io_evfd_signal(s->evfd);
}

static void ep_forget(struct knit_io *io, int fd)
{
    struct epoll_state *s = io->state;
    if (fd < 0 || fd >= s->nfds || !s->fds[fd])
        return;
    struct fd_entry *e = s->fds[fd];
    while (!knit_list_is_empty(&e->waits)) {
        struct knit_io_wait *w =
            knit_container_of(e->waits.next, struct knit_io_wait, fd_link);
        knit_list_remove(&w->fd_link);
        knit__io_ready(w, -EBADF);
    }
    if (e->added)
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
    e->added = false;
    e->owned = false;
    e->drained = false;
    e->ended = false;
}

/* @fd is a new socket of knit's: whatever its number meant before is gone
 * (a socket closed with close(2) leaves the kernel's registration behind
 * it dropped already, but not our entry). */
static void ep_own(struct knit_io *io, int fd)
{
    struct epoll_state *s = io->state;
    struct fd_entry *e = entry(s, fd);
    if (!e)
        return; /* no memory: the fd stays on the one-shot path */
    if (e->added || !knit_list_is_empty(&e->waits))
        ep_forget(io, fd);
    e->owned = true;
    e->drained = false; /* a new socket under an old number */
    e->ended = false;
}

static void ep_read_drained(struct knit_io *io, int fd)
{
    struct epoll_state *s = io->state;
    struct fd_entry *e = fd >= 0 && fd < s->nfds ? s->fds[fd] : NULL;
    if (e && e->owned && !e->ended)
        e->drained = true;
}

static bool ep_is_drained(struct knit_io *io, int fd)
{
    struct epoll_state *s = io->state;
    return fd >= 0 && fd < s->nfds && s->fds[fd] && s->fds[fd]->drained;
}

const struct knit_io_ops knit__io_epoll = {
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .arm = ep_arm,
    .disarm = ep_disarm,
    .poll = ep_poll,
    .wake = ep_wake,
    .forget = ep_forget,
    .own = ep_own,
    .read_drained = ep_read_drained,
    .is_drained = ep_is_drained,
};
