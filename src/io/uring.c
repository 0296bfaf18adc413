// SPDX-License-Identifier: MIT
/*
 * The io_uring backend (liburing). Readiness: every knit_io_wait is one
 * oneshot IORING_OP_POLL_ADD. Completion: a knit_io_op (knit_read after
 * it met EAGAIN) is one IORING_OP_READ, so the data arrives with the
 * completion and the read after the wake-up is saved. The submissions of
 * a whole loop iteration go to the kernel in the same io_uring_enter that
 * waits for completions, so arming costs no system call of its own (epoll
 * pays one epoll_ctl per wait).
 *
 * A completion names its wait through a slot index plus a generation, not
 * a pointer: a wait that is disarmed (its task cancelled, a select case
 * that lost) lives on a stack that is gone by the time the kernel reports
 * the cancelled poll. Disarming orphans the slot and asks the kernel to
 * remove the poll; the slot is recycled when the poll's last completion
 * arrives. Other threads wake the ring through an eventfd watched by a
 * multishot poll.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/sys.h"
#include "io/driver.h"

#define WAKE_TAG UINT64_MAX         /* the eventfd's multishot poll */
#define IGNORE_TAG (UINT64_MAX - 1) /* completions of poll removals */
#define RING_ENTRIES 1024

struct slot {
    struct knit_io_wait *w; /* NULL: free, or orphaned (in_flight) */
    struct knit_io_op *op;  /* or an operation (never orphaned) */
    uint32_t gen;           /* bumped at every reuse */
    bool in_flight;         /* the kernel still owes a completion */
    uint32_t next_free;
};

struct uring_state {
    struct io_uring ring;
    int evfd;
    struct slot *slots;
    uint32_t nslots, free_head; /* free list through next_free */
    struct fd_entry **fds; /* per fd, allocated on first use (never
                              moves) */
    int nfds;
};

#define NO_SLOT UINT32_MAX

struct fd_entry {
    struct knit_list waits; /* struct knit_io_wait.fd_link */
    struct knit_list ops;   /* struct knit_io_op.fd_link */
};

/* The next submission entry, flushing the queue to the kernel when full. */
static struct io_uring_sqe *sqe(struct uring_state *s)
{
    struct io_uring_sqe *e = io_uring_get_sqe(&s->ring);
    if (!e) {
        io_uring_submit(&s->ring);
        e = io_uring_get_sqe(&s->ring);
    }
    return e;
}

static int arm_wake(struct uring_state *s)
{
    struct io_uring_sqe *e = sqe(s);
    if (!e)
        return -EBUSY;
    io_uring_prep_poll_multishot(e, s->evfd, POLLIN);
    io_uring_sqe_set_data64(e, WAKE_TAG);
    return 0;
}

static int ur_init(struct knit_io *io, const knit_config *cfg)
{
    (void)cfg;
    struct uring_state *s = knit__calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->free_head = NO_SLOT;
    int err = io_uring_queue_init(RING_ENTRIES, &s->ring, 0);
    if (err < 0) {
        free(s);
        return err;
    }
    s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->evfd < 0 || (err = arm_wake(s)) < 0) {
        err = s->evfd < 0 ? -errno : err;
        if (s->evfd >= 0)
            knit__sys_close(s->evfd);
        io_uring_queue_exit(&s->ring);
        free(s);
        return err;
    }
    io_uring_submit(&s->ring);
    io->state = s;
    return 0;
}

static void ur_fini(struct knit_io *io)
{
    struct uring_state *s = io->state;
    if (!s)
        return;
    io_uring_queue_exit(&s->ring); /* cancels whatever is in flight */
    knit__sys_close(s->evfd);
    free(s->slots);
    for (int i = 0; i < s->nfds; i++)
        free(s->fds[i]);
    free(s->fds);
    free(s);
    io->state = NULL;
}

/* ---- slots and per-fd lists ---------------------------------------------- */

static uint32_t slot_get(struct uring_state *s)
{
    if (s->free_head == NO_SLOT) {
        uint32_t n = s->nslots ? s->nslots * 2 : 256;
        struct slot *v = knit__realloc(s->slots, n * sizeof(*v));
        if (!v)
            return NO_SLOT;
        for (uint32_t i = s->nslots; i < n; i++)
            v[i] = (struct slot){.next_free = i + 1 < n ? i + 1 : NO_SLOT};
        s->slots = v;
        s->free_head = s->nslots;
        s->nslots = n;
    }
    uint32_t i = s->free_head;
    s->free_head = s->slots[i].next_free;
    return i;
}

static void slot_put(struct uring_state *s, uint32_t i)
{
    s->slots[i].w = NULL;
    s->slots[i].op = NULL;
    s->slots[i].in_flight = false;
    s->slots[i].gen++;
    s->slots[i].next_free = s->free_head;
    s->free_head = i;
}

static uint64_t tag(struct uring_state *s, uint32_t i)
{
    return (uint64_t)s->slots[i].gen << 32 | i;
}

static struct fd_entry *fd_entry(struct uring_state *s, int fd)
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
    if (!s->fds[fd] && (s->fds[fd] = knit__malloc(sizeof(struct fd_entry)))) {
        knit_list_init(&s->fds[fd]->waits);
        knit_list_init(&s->fds[fd]->ops);
    }
    return s->fds[fd];
}

/* ---- the ops --------------------------------------------------------------- */

static int ur_arm(struct knit_io *io, struct knit_io_wait *w)
{
    struct uring_state *s = io->state;
    struct fd_entry *fe = fd_entry(s, w->fd);
    uint32_t i = fe ? slot_get(s) : NO_SLOT;
    if (i == NO_SLOT)
        return -ENOMEM;
    struct io_uring_sqe *e = sqe(s);
    if (!e) {
        slot_put(s, i);
        return -EBUSY;
    }
    s->slots[i].w = w;
    s->slots[i].in_flight = true;
    io_uring_prep_poll_add(e, w->fd, (unsigned)w->events);
    io_uring_sqe_set_data64(e, tag(s, i));
    w->handle = i;
    knit_list_push_back(&fe->waits, &w->fd_link);
    return 0;
}

static int ur_submit(struct knit_io *io, struct knit_io_op *op)
{
    struct uring_state *s = io->state;
    if (op->opcode < KNIT_IO_OP_READ || op->opcode > KNIT_IO_OP_ACCEPT)
        return -ENOSYS;
    struct fd_entry *fe = op->fd >= 0 ? fd_entry(s, op->fd) : NULL;
    uint32_t i = fe ? slot_get(s) : NO_SLOT;
    if (i == NO_SLOT)
        return op->fd < 0 ? -EBADF : -ENOMEM;
    struct io_uring_sqe *e = sqe(s);
    if (!e) {
        slot_put(s, i);
        return -EBUSY;
    }
    s->slots[i].op = op;
    s->slots[i].in_flight = true;
    switch (op->opcode) {
    case KNIT_IO_OP_READ:
        /* Offset -1: the file position, as read(2) (sockets and pipes
         * have none). */
        io_uring_prep_read(e, op->fd, op->buf, (unsigned)op->len,
                           (uint64_t)-1);
        break;
    case KNIT_IO_OP_SEND:
        io_uring_prep_send(e, op->fd, op->buf, op->len, MSG_NOSIGNAL);
        break;
    default:
        io_uring_prep_accept(e, op->fd, op->addr, op->addrlen, op->flags);
        break;
    }
    io_uring_sqe_set_data64(e, tag(s, i));
    op->handle = i;
    knit_list_push_back(&fe->ops, &op->fd_link);
    return 0;
}

static void ur_cancel(struct knit_io *io, struct knit_io_op *op)
{
    struct uring_state *s = io->state;
    struct io_uring_sqe *e = sqe(s);
    if (!e)
        return; /* the ring is wedged; the op still completes by itself */
    io_uring_prep_cancel64(e, tag(s, op->handle), 0);
    io_uring_sqe_set_data64(e, IGNORE_TAG);
}

/* Orphan @w's slot and ask the kernel to drop its poll. */
static void orphan(struct uring_state *s, struct knit_io_wait *w)
{
    uint32_t i = w->handle;
    knit_list_remove(&w->fd_link);
    if (i >= s->nslots || s->slots[i].w != w)
        return;
    s->slots[i].w = NULL;
    struct io_uring_sqe *e = sqe(s);
    if (e) {
        io_uring_prep_poll_remove(e, tag(s, i));
        io_uring_sqe_set_data64(e, IGNORE_TAG);
    }
}

static void ur_disarm(struct knit_io *io, struct knit_io_wait *w)
{
    orphan(io->state, w);
}

static void complete(struct uring_state *s, struct io_uring_cqe *c)
{
    uint64_t ud = io_uring_cqe_get_data64(c);
    if (ud == IGNORE_TAG)
        return;
    if (ud == WAKE_TAG) {
        knit__io_evfd_drain(s->evfd);
        if (!(c->flags & IORING_CQE_F_MORE))
            arm_wake(s); /* the multishot poll ended: start another */
        return;
    }
    uint32_t i = (uint32_t)ud;
    if (i >= s->nslots || s->slots[i].gen != (uint32_t)(ud >> 32))
        return;
    struct knit_io_wait *w = s->slots[i].w;
    struct knit_io_op *op = s->slots[i].op;
    slot_put(s, i);
    if (op) {
        knit_list_remove(&op->fd_link);
        knit__io_op_done(op, c->res);
        return;
    }
    if (!w)
        return; /* orphaned: its task is gone */
    knit_list_remove(&w->fd_link);
    /* A poll mask, or -errno as epoll_ctl would have said it (-EBADF). */
    knit__io_ready(w, c->res);
}

static int ur_poll(struct knit_io *io, int64_t timeout_ms)
{
    struct uring_state *s = io->state;
    struct io_uring_cqe *c = NULL;
    int err;
    if (timeout_ms == 0) {
        err = io_uring_submit(&s->ring);
    } else if (timeout_ms < 0) {
        err = io_uring_submit_and_wait(&s->ring, 1);
    } else {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = timeout_ms % 1000 * 1000000};
        err = io_uring_submit_and_wait_timeout(&s->ring, &c, 1, &ts, NULL);
    }
    if (err < 0 && err != -ETIME && err != -EINTR && err != -EBUSY)
        return err;
    int n = 0;
    unsigned head;
    io_uring_for_each_cqe(&s->ring, head, c)
    {
        complete(s, c);
        n++;
    }
    io_uring_cq_advance(&s->ring, (unsigned)n);
    return n;
}

static int ur_wake(struct knit_io *io)
{
    struct uring_state *s = io->state;
    return knit__io_evfd_signal(s->evfd);
}

static void ur_forget(struct knit_io *io, int fd)
{
    struct uring_state *s = io->state;
    if (fd < 0 || fd >= s->nfds || !s->fds[fd])
        return;
    struct fd_entry *fe = s->fds[fd];
    while (!knit_list_is_empty(&fe->waits)) {
        struct knit_io_wait *w =
            knit_container_of(fe->waits.next, struct knit_io_wait, fd_link);
        orphan(s, w);
        knit__io_ready(w, -EBADF);
    }
    /* Operations hold the file open in the kernel: stop them; each ends
     * with -EBADF once its completion arrives. */
    while (!knit_list_is_empty(&fe->ops)) {
        struct knit_io_op *op =
            knit_container_of(fe->ops.next, struct knit_io_op, fd_link);
        knit_list_remove(&op->fd_link);
        op->forgotten = true;
        ur_cancel(io, op);
    }
}

/* Whether this kernel runs io_uring with what the backend needs. */
bool knit__io_uring_usable(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(8, &ring, 0) < 0)
        return false;
    struct io_uring_probe *p = io_uring_get_probe_ring(&ring);
    bool ok = p && io_uring_opcode_supported(p, IORING_OP_POLL_ADD) &&
              io_uring_opcode_supported(p, IORING_OP_POLL_REMOVE) &&
              io_uring_opcode_supported(p, IORING_OP_READ) &&
              io_uring_opcode_supported(p, IORING_OP_ASYNC_CANCEL);
    io_uring_free_probe(p);
    io_uring_queue_exit(&ring);
    return ok;
}

const struct knit_io_ops knit__io_uring = {
    .name = "uring",
    .init = ur_init,
    .fini = ur_fini,
    .arm = ur_arm,
    .disarm = ur_disarm,
    .poll = ur_poll,
    .wake = ur_wake,
    .forget = ur_forget,
    .submit = ur_submit,
    .cancel = ur_cancel,
};
