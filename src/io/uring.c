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
 *
 * Connects (KNIT_IO_OP_CONNECT) are operations like reads: the kernel
 * runs the handshake and completes with its result.
 *
 * Multishot accept. A listener knit owns (ops->own: single worker) gets
 * one IORING_ACCEPT_MULTISHOT request, armed by the first accept that
 * found nothing pending. The request belongs to the listener's fd entry,
 * not to a task: every connection it takes in is queued there (struct
 * accept_queue) until knit_tcp_accept takes it, so a task cancelled while
 * it waits loses nothing, and a POLLIN wait on the listener is a wait for
 * that queue (the socket itself never looks readable: the kernel takes
 * each connection as it comes). When the queue holds
 * KNIT_IO_ACCEPT_QUEUE_MAX entries the request is cancelled and the
 * listen backlog takes over; the net layer accepts by itself again until
 * the backlog is empty, then re-arms. A failure (EMFILE, ECONNABORTED)
 * ends the request too and is queued behind the connections for the
 * accepting task to see. knit_close cancels the request and waits for its
 * last completion before returning: the request holds the listening
 * socket open in the kernel, and its last completions may bring fds,
 * which are closed with the rest of the queue.
 *
 * Divisions: state and set-up; slots and per-fd lists; the multishot
 * accept; the ops; the probes.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdatomic.h>
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
    struct fd_entry *lis;   /* or a multishot accept: its listener (NULL
                               once orphaned) */
    uint32_t gen;           /* bumped at every reuse */
    int ready;      /* w's NOP: the events it reports (0: a real poll) */
    bool multishot; /* lis's request: kept until its last completion */
    bool in_flight; /* the kernel still owes a completion */
    uint32_t next_free;
};

struct uring_state {
    struct io_uring ring;
    struct knit_io *io; /* the driver this is the state of */
    int evfd;
    struct slot *slots;
    uint32_t nslots, free_head; /* free list through next_free */
    struct fd_entry **fds;      /* per fd, allocated on first use (never
                                   moves) */
    int nfds;
    bool finishing; /* ur_fini: only multishot accepts are still served */
};

#define NO_SLOT UINT32_MAX

/*
 * A listener's multishot accept: what the kernel accepted and nobody took
 * yet, oldest first. An entry is a connected fd, or the -errno that ended
 * the request (then it is the last one until the request is re-armed).
 */
struct accept_queue {
    int *v;        /* ring buffer of cap entries */
    uint32_t head; /* index of the oldest entry */
    uint32_t len;  /* entries queued */
    uint32_t cap;  /* a power of two */
    uint32_t slot; /* the request's slot while the kernel owes it
                      completions, NO_SLOT otherwise */
    int fd;        /* the listener */
    int flags;     /* accept4 flags of the request */
    bool stopping; /* the kernel was asked to cancel the request */
};

struct fd_entry {
    struct knit_list waits;   /* struct knit_io_wait.fd_link */
    struct knit_list ops;     /* struct knit_io_op.fd_link */
    struct accept_queue *acc; /* a listener's multishot accept, or NULL */
    bool owned; /* knit's socket (ops->own), closed with knit_close */
};

static void acc_stop(struct uring_state *s, struct fd_entry *fe);
static void reap(struct uring_state *s, int *n);

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
    s->io = io;
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
    /* A listener left open: its queued fds are closed, and so are those
     * its request's last completions bring. Nothing else is handled any
     * more: a task abandoned at shutdown may still have a wait armed. */
    s->finishing = true;
    for (int i = 0; i < s->nfds; i++)
        if (s->fds[i])
            acc_stop(s, s->fds[i]);
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
    s->slots[i].lis = NULL;
    s->slots[i].ready = 0;
    s->slots[i].multishot = false;
    s->slots[i].in_flight = false;
    s->slots[i].gen++;
    s->slots[i].next_free = s->free_head;
    s->free_head = i;
}

/* A free slot in *@i and a submission entry in *@e for one request;
 * 0, -ENOMEM (no slot) or -EBUSY (the ring is wedged; the slot is
 * given back). */
static int slot_sqe(struct uring_state *s, uint32_t *i,
                    struct io_uring_sqe **e)
{
    *i = slot_get(s);
    if (*i == NO_SLOT)
        return -ENOMEM;
    *e = sqe(s);
    if (!*e) {
        slot_put(s, *i);
        return -EBUSY;
    }
    return 0;
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
        s->fds[fd]->acc = NULL;
        s->fds[fd]->owned = false;
    }
    return s->fds[fd];
}

/* The entry of @fd if it has one; never allocates. */
static struct fd_entry *fd_find(struct uring_state *s, int fd)
{
    return fd >= 0 && fd < s->nfds ? s->fds[fd] : NULL;
}

/* Orphan @w's slot and ask the kernel to drop its poll. */
static void orphan(struct uring_state *s, struct knit_io_wait *w)
{
    uint32_t i = w->handle;
    knit_list_remove(&w->fd_link);
    if (i >= s->nslots || s->slots[i].w != w)
        return; /* fired, or no slot (a wait for an accept queue) */
    s->slots[i].w = NULL;
    if (s->slots[i].ready)
        return; /* a NOP: completes by itself */
    struct io_uring_sqe *e = sqe(s);
    if (e) {
        io_uring_prep_poll_remove(e, tag(s, i));
        io_uring_sqe_set_data64(e, IGNORE_TAG);
    }
}

/* ---- the multishot accept ----------------------------------------------- */

static bool multishot_accept_works(void);

/* Asks the kernel to end @q's request; its last completion follows. */
static void acc_cancel(struct uring_state *s, struct accept_queue *q)
{
    if (q->stopping || q->slot == NO_SLOT)
        return;
    struct io_uring_sqe *e = sqe(s);
    if (!e)
        return; /* the ring is wedged: the next push or stop tries again */
    io_uring_prep_cancel64(e, tag(s, q->slot), 0);
    io_uring_sqe_set_data64(e, IGNORE_TAG);
    q->stopping = true;
}

/* Doubles @q's room (the ring is unrolled into the new buffer). */
static int acc_grow(struct accept_queue *q)
{
    uint32_t cap = q->cap * 2;
    int *v = knit__malloc(cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (uint32_t k = 0; k < q->len; k++)
        v[k] = q->v[(q->head + k) & (q->cap - 1)];
    free(q->v);
    q->v = v;
    q->head = 0;
    q->cap = cap;
    return 0;
}

/*
 * The queue of @fe changed (an entry came, or the request ended): every
 * POLLIN wait on the listener is woken, and each accepting task tries
 * again. Readiness is not consumed, as for a poll.
 */
static void wake_readers(struct uring_state *s, struct fd_entry *fe)
{
    if (s->finishing)
        return;
    struct knit_list *it, *tmp;
    knit_list_for_each_safe(it, tmp, &fe->waits)
    {
        struct knit_io_wait *w =
            knit_container_of(it, struct knit_io_wait, fd_link);
        if (w->events & POLLIN) {
            orphan(s, w);
            knit__io_ready(w, POLLIN);
        }
    }
}

/* Queues @v (an accepted fd, or the request's -errno) on @fe. */
static void acc_push(struct uring_state *s, struct fd_entry *fe, int v)
{
    struct accept_queue *q = fe->acc;
    if (q->len == q->cap && acc_grow(q) < 0) {
        /* Past the bound and out of memory: the connection cannot be
         * kept, so its client gets a reset rather than a hang. */
        if (v >= 0) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(v, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            knit__sys_close(v);
        }
        wake_readers(s, fe);
        return;
    }
    q->v[(q->head + q->len) & (q->cap - 1)] = v;
    q->len++;
    /* Full: stop taking connections in; the backlog holds them. The
     * request is armed again only when the queue is empty and accept4
     * finds the backlog empty too (the net layer's accept_try): a
     * request re-armed on a full backlog would take all of it in at once,
     * as fds, past any bound. */
    if (q->len >= KNIT_IO_ACCEPT_QUEUE_MAX)
        acc_cancel(s, q);
    wake_readers(s, fe);
}

/* Starts @fe's multishot accept; 0 or -errno. */
static int acc_start(struct uring_state *s, struct fd_entry *fe)
{
    struct accept_queue *q = fe->acc;
    uint32_t i;
    struct io_uring_sqe *e;
    int err = slot_sqe(s, &i, &e);
    if (err)
        return err;
    s->slots[i].lis = fe;
    s->slots[i].multishot = true;
    s->slots[i].in_flight = true;
    io_uring_prep_multishot_accept(e, q->fd, NULL, NULL, q->flags);
    io_uring_sqe_set_data64(e, tag(s, i));
    q->slot = i;
    s->io->armed++;
    return 0;
}

/* A completion of the multishot accept in slot @i. */
static void acc_complete(struct uring_state *s, uint32_t i,
                         const struct io_uring_cqe *c)
{
    struct fd_entry *fe = s->slots[i].lis;
    bool last = !(c->flags & IORING_CQE_F_MORE);
    if (last) {
        slot_put(s, i);
        s->io->armed--;
    }
    if (!fe) {
        /* Orphaned (acc_stop could not wait): nobody takes it. */
        if (c->res >= 0)
            knit__sys_close(c->res);
        return;
    }
    struct accept_queue *q = fe->acc;
    if (last) {
        q->slot = NO_SLOT;
        q->stopping = false;
    }
    /* A last completion may carry an fd (the completion queue was full)
     * or the error that ended it; -ECANCELED is ours (full, or closing). */
    if (c->res >= 0 || (last && c->res != -ECANCELED))
        acc_push(s, fe, c->res);
    else if (last)
        wake_readers(s, fe); /* no request now: waiters accept by themselves */
}

/*
 * Submits what is queued, waits for a completion and handles every one
 * that came. Returns -errno when the ring fails.
 */
static int reap_wait(struct uring_state *s)
{
    int err = io_uring_submit_and_wait(&s->ring, 1);
    if (err < 0 && err != -EINTR && err != -EBUSY && err != -EAGAIN)
        return err;
    int n = 0;
    reap(s, &n);
    return 0;
}

/*
 * Ends @fe's multishot accept, if it has one, and closes what it queued.
 * The request holds the listening socket open in the kernel (its port
 * stays bound, a Unix path keeps answering) and its last completions may
 * bring fds, so this waits for the last one, handling the ring's other
 * completions meanwhile as the loop would.
 */
static void acc_stop(struct uring_state *s, struct fd_entry *fe)
{
    struct accept_queue *q = fe->acc;
    if (!q)
        return;
    while (q->slot != NO_SLOT) {
        acc_cancel(s, q);
        if (reap_wait(s) < 0) {
            /* The ring failed: the request's late fds are closed as they
             * come (acc_complete's orphan case). */
            s->slots[q->slot].lis = NULL;
            break;
        }
    }
    fe->acc = NULL;
    for (; q->len > 0; q->len--) {
        int v = q->v[q->head];
        q->head = (q->head + 1) & (q->cap - 1);
        if (v >= 0)
            knit__sys_close(v);
    }
    free(q->v);
    free(q);
}

/* A new accept queue, with room for a full queue (no allocation later
 * unless a burst passes the bound). */
static struct accept_queue *acc_new(void)
{
    struct accept_queue *q = knit__calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->cap = KNIT_IO_ACCEPT_QUEUE_MAX;
    q->v = knit__malloc(q->cap * sizeof(*q->v));
    if (!q->v) {
        free(q);
        return NULL;
    }
    q->slot = NO_SLOT;
    return q;
}

static int ur_accept_arm(struct knit_io *io, int fd, int flags)
{
    struct uring_state *s = io->state;
    if (fd < 0 || !multishot_accept_works())
        return -EOPNOTSUPP;
    struct fd_entry *fe = fd_entry(s, fd);
    if (!fe)
        return -ENOMEM;
    /* Only knit's own listeners: one closed with close(2) instead of
     * knit_close would stay open (and accepting) inside the request. */
    if (!fe->owned)
        return -EOPNOTSUPP;
    if (!fe->acc && !(fe->acc = acc_new()))
        return -ENOMEM;
    struct accept_queue *q = fe->acc;
    if (q->slot != NO_SLOT)
        return 0;
    q->fd = fd;
    q->flags = flags;
    return acc_start(s, fe);
}

static int ur_accept_take(struct knit_io *io, int fd)
{
    struct uring_state *s = io->state;
    struct fd_entry *fe = fd_find(s, fd);
    struct accept_queue *q = fe ? fe->acc : NULL;
    if (!q)
        return -ENOENT;
    if (q->len == 0)
        return q->slot != NO_SLOT ? -EAGAIN : -ENOENT;
    int v = q->v[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    if (v >= 0)
        io->accept_queued++;
    return v;
}

/* ---- the ops --------------------------------------------------------------- */

/* Arms @w with a slot: a oneshot poll, or, when @ready is set, a NOP
 * that reports @ready (the task has not parked yet: it cannot be woken
 * now, so the loop does it). */
static int arm_slot(struct uring_state *s, struct fd_entry *fe,
                    struct knit_io_wait *w, int ready)
{
    uint32_t i;
    struct io_uring_sqe *e;
    int err = slot_sqe(s, &i, &e);
    if (err)
        return err;
    s->slots[i].w = w;
    s->slots[i].ready = ready;
    s->slots[i].in_flight = true;
    if (ready)
        io_uring_prep_nop(e);
    else
        io_uring_prep_poll_add(e, w->fd, (unsigned)w->events);
    io_uring_sqe_set_data64(e, tag(s, i));
    w->handle = i;
    knit_list_push_back(&fe->waits, &w->fd_link);
    return 0;
}

static int ur_arm(struct knit_io *io, struct knit_io_wait *w)
{
    struct uring_state *s = io->state;
    struct fd_entry *fe = fd_entry(s, w->fd);
    if (!fe)
        return -ENOMEM;
    struct accept_queue *q = fe->acc;
    /* A listener whose multishot accept runs, or has queued entries, is
     * readable when its queue is: a poll would not see the connections
     * the kernel takes in as they come. */
    if (!q || !(w->events & POLLIN) || (q->len == 0 && q->slot == NO_SLOT))
        return arm_slot(s, fe, w, 0);
    if (q->len > 0)
        return arm_slot(s, fe, w, POLLIN);
    w->handle = NO_SLOT; /* woken by acc_push or the request's end */
    knit_list_push_back(&fe->waits, &w->fd_link);
    return 0;
}

static int ur_submit(struct knit_io *io, struct knit_io_op *op)
{
    struct uring_state *s = io->state;
    if (op->opcode < KNIT_IO_OP_READ || op->opcode >= KNIT_IO_OP_COUNT)
        return -ENOSYS;
    if (op->fd < 0)
        return -EBADF;
    struct fd_entry *fe = fd_entry(s, op->fd);
    if (!fe)
        return -ENOMEM;
    uint32_t i;
    struct io_uring_sqe *e;
    int err = slot_sqe(s, &i, &e);
    if (err)
        return err;
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
    case KNIT_IO_OP_CONNECT:
        io_uring_prep_connect(e, op->fd, op->addr, (socklen_t)op->len);
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
    if (s->slots[i].multishot) {
        acc_complete(s, i, c);
        return;
    }
    if (s->finishing)
        return;
    struct knit_io_wait *w = s->slots[i].w;
    struct knit_io_op *op = s->slots[i].op;
    int ready = s->slots[i].ready;
    slot_put(s, i);
    if (op) {
        knit_list_remove(&op->fd_link);
        knit__io_op_done(op, c->res);
        return;
    }
    if (!w)
        return; /* orphaned: its task is gone */
    knit_list_remove(&w->fd_link);
    /* A poll mask, or -errno as epoll_ctl would have said it (-EBADF);
     * for a NOP, the readiness it stands for. */
    knit__io_ready(w, ready ? ready : c->res);
}

/* Handles every completion that has arrived; adds their number to *@n. */
static void reap(struct uring_state *s, int *n)
{
    struct io_uring_cqe *c;
    unsigned head, k = 0;
    io_uring_for_each_cqe(&s->ring, head, c)
    {
        complete(s, c);
        k++;
    }
    io_uring_cq_advance(&s->ring, k);
    *n += (int)k;
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
    reap(s, &n);
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
    acc_stop(s, fe);
    fe->owned = false;
}

/* @fd is a new socket of knit's. Whatever its number meant before (a
 * socket closed with close(2)) is gone: its waits end with -EBADF and
 * its multishot accept is stopped. */
static void ur_own(struct knit_io *io, int fd)
{
    struct uring_state *s = io->state;
    struct fd_entry *fe = fd_entry(s, fd);
    if (!fe)
        return; /* no memory: no multishot accept for it */
    if (fe->acc || !knit_list_is_empty(&fe->waits) ||
        !knit_list_is_empty(&fe->ops))
        ur_forget(io, fd);
    fe->owned = true;
}

/* ---- the probes --------------------------------------------------------- */

/*
 * Asks a kernel whether it has IORING_ACCEPT_MULTISHOT (Linux 5.19): an
 * accept on an eventfd fails with ENOTSOCK where the flag is known and
 * with EINVAL (the request is refused before the fd is looked at) where
 * it is not. 1, 0, or -1 when the question could not be asked (out of
 * fds, say).
 */
static int probe_multishot_accept(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(2, &ring, 0) < 0)
        return -1;
    int r = -1;
    int efd = eventfd(0, EFD_CLOEXEC);
    struct io_uring_sqe *e = efd >= 0 ? io_uring_get_sqe(&ring) : NULL;
    struct io_uring_cqe *c;
    if (e) {
        io_uring_prep_multishot_accept(e, efd, NULL, NULL, SOCK_CLOEXEC);
        if (io_uring_submit_and_wait(&ring, 1) == 1 &&
            io_uring_peek_cqe(&ring, &c) == 0)
            r = c->res == -EINVAL ? 0 : 1;
    }
    if (efd >= 0)
        knit__sys_close(efd);
    io_uring_queue_exit(&ring);
    return r;
}

/* probe_multishot_accept's answer, asked once per process (an unanswered
 * question is asked again next time). */
static bool multishot_accept_works(void)
{
    static atomic_int known; /* 0: not asked yet; 1 yes; -1 no */
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k == 0) {
        int r = probe_multishot_accept();
        if (r < 0)
            return false;
        k = r ? 1 : -1;
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k > 0;
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
    .own = ur_own,
    .accept_arm = ur_accept_arm,
    .accept_take = ur_accept_take,
};
