// SPDX-License-Identifier: MIT
/*
 * The I/O driver interface: a runtime ops table (SQLite io_methods) so one
 * binary can run on either backend. Each worker owns one struct knit_io.
 *
 * arm() (readiness, oneshot) is mandatory; submit() (completion) is
 * optional and arrives with the io_uring backend. Backends keep their state
 * private to their file, return -errno and never panic.
 */
#ifndef KNIT_IO_DRIVER_H
#define KNIT_IO_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/list.h"
#include "core/waitq.h"
#include "knit/rt.h"

struct knit_io;

/* A task waiting for readiness of one fd; lives on the task's stack. */
struct knit_io_wait {
    struct knit_waiter w;     /* the parked task */
    struct knit_list fd_link; /* on the backend's per-fd list while armed */
    struct knit_io *io;       /* the driver it is armed in */
    int fd;                   /* the file descriptor */
    int events;               /* POLLIN and/or POLLOUT */
    int revents;              /* ready events, set when it fires */
    uint32_t handle;          /* the backend's name for it (uring: slot) */
};

/*
 * A completion-based operation (io_uring): the kernel reads into @buf
 * while the task is parked. Lives on the task's stack, and so does @buf
 * often: knit__io_op_run never returns before the kernel's completion has
 * arrived, even when the task is cancelled (the kernel is asked to stop,
 * and the task waits, shielded, until it has).
 */
struct knit_io_op {
    struct knit_waiter w;     /* the parked task */
    struct knit_list fd_link; /* on the backend's per-fd list */
    struct knit_io *io;
    int opcode;    /* KNIT_IO_OP_* */
    int fd;
    void *buf;     /* READ: filled; SEND: sent from */
    size_t len;    /* READ, SEND: bytes; CONNECT: the address's size */
    /* ACCEPT: the peer's address, or NULL; CONNECT: the address to
     * connect to (the kernel copies it when it starts the connect, while
     * the task is parked). */
    struct sockaddr *addr;
    socklen_t *addrlen;    /* ACCEPT: its size, in and out */
    int flags;             /* ACCEPT: accept4's flags */
    int res;         /* the completion's result */
    uint32_t handle; /* the backend's name for it */
    bool done;       /* the completion arrived */
    bool waiting;    /* the task is parked on w for it */
    bool forgotten;  /* knit_close'd under it: report -EBADF */
};

enum {
    KNIT_IO_OP_READ = 1, /* read(2) at the file position */
    KNIT_IO_OP_SEND,     /* send(2) with MSG_NOSIGNAL (sockets only) */
    KNIT_IO_OP_ACCEPT,   /* accept4(2); the result is the new fd */
    KNIT_IO_OP_CONNECT,  /* connect(2) to the end of the handshake: 0 */
    KNIT_IO_OP_COUNT,    /* (the number of opcodes plus one) */
};

/*
 * Connections a listener's multishot accept queues before the backend asks
 * the kernel to stop (ops->accept_arm). Completions already on their way
 * when it asks are still queued, so a burst can pass it by what arrives in
 * one loop iteration; after that the listen backlog holds the rest.
 */
#define KNIT_IO_ACCEPT_QUEUE_MAX 64

struct knit_io_ops {
    const char *name; /* "epoll", "uring" */
    int (*init)(struct knit_io *io, const knit_config *cfg);
    void (*fini)(struct knit_io *io);
    /* Arms @w oneshot; 0, -EPERM for fds that cannot be polled, -errno. */
    int (*arm)(struct knit_io *io, struct knit_io_wait *w);
    /* Disarms @w if armed; idempotent. */
    void (*disarm)(struct knit_io *io, struct knit_io_wait *w);
    /* Waits up to @timeout_ms (-1 forever, 0 not at all) and calls
     * knit__io_ready for each ready wait; returns how many, or -errno. */
    int (*poll)(struct knit_io *io, int64_t timeout_ms);
    /* Interrupts a poll() in progress or the next one; from any thread. */
    int (*wake)(struct knit_io *io);
    /* @fd is being closed: wakes its waits with -EBADF and drops the
     * registration. */
    void (*forget)(struct knit_io *io, int fd);
    /* Optional (NULL: readiness only). Starts @op; 0 or -errno. Its
     * completion comes through knit__io_op_done. */
    int (*submit)(struct knit_io *io, struct knit_io_op *op);
    /* Asks the kernel to stop @op; its completion still comes. */
    void (*cancel)(struct knit_io *io, struct knit_io_op *op);
    /* Optional: @fd is a new socket knit created and will close with
     * knit_close, so it may be registered once for good. */
    void (*own)(struct knit_io *io, int fd);
    /*
     * Optional (NULL: none), for a listener knit owns (ops->own): starts
     * a multishot accept, which takes every connection in as it comes
     * (accept4 @flags) and queues its fd on the listener until
     * accept_take. The listener owns the request, not the task: it runs
     * on while nobody accepts, stops when the queue is full
     * (KNIT_IO_ACCEPT_QUEUE_MAX) or a connection fails, and ends with
     * knit_close (ops->forget waits for its last completion and closes
     * what is still queued). While it runs, a POLLIN wait on the listener
     * is a wait for the queue. 0 (or already running); -EOPNOTSUPP for a
     * listener knit does not own or a kernel without multishot accept;
     * -ENOMEM.
     */
    int (*accept_arm)(struct knit_io *io, int fd, int flags);
    /*
     * Optional, with accept_arm: the oldest entry of @fd's accept queue:
     * a connected fd, or the -errno with which the kernel ended the
     * request (-EMFILE ...). -EAGAIN: nothing queued and the request runs
     * (wait for POLLIN); -ENOENT: nothing queued and no request runs
     * (accept by yourself, then accept_arm).
     */
    int (*accept_take)(struct knit_io *io, int fd);
    /*
     * Optional (NULL: none), for a socket knit owns on an edge-triggered
     * backend: read_drained marks @fd as read dry (a read came back short,
     * so the socket held no more at that moment); any readiness event for
     * it clears the mark. is_drained: the mark is set, so the next read
     * would fail with EAGAIN unless it waits first. Both are hints kept
     * by the fd's worker; an fd knit does not own never has the mark.
     */
    void (*read_drained)(struct knit_io *io, int fd);
    bool (*is_drained)(struct knit_io *io, int fd);
};

struct knit_io {
    const struct knit_io_ops *ops; /* the backend */
    void *state;                   /* the backend's private state */
    uint64_t armed;                /* waits and requests in flight */
    /* Counters, for tests and soak runs. */
    uint64_t submitted[KNIT_IO_OP_COUNT]; /* operations, per opcode */
    uint64_t accept_queued;               /* fds taken from accept queues */
};

extern const struct knit_io_ops knit__io_epoll;
#ifdef KNIT_HAVE_URING
extern const struct knit_io_ops knit__io_uring;
/* Whether io_uring works here (not disabled, the opcodes it needs). */
bool knit__io_uring_usable(void);
#endif

/* Picks and initialises the backend asked for by @cfg (or KNIT_IO). */
int knit__io_init(struct knit_io *io, const knit_config *cfg);
void knit__io_fini(struct knit_io *io);

/*
 * Arms @w (its waiter already initialised) for @events on @fd in @io.
 * Return: 0; -EPERM for an fd that cannot be polled (a regular file: it is
 * always ready); another -errno from the backend.
 */
int knit__io_wait_arm(struct knit_io *io, struct knit_io_wait *w, int fd,
                      int events);

/* Disarms @w if it is still armed; safe when it fired or never armed. */
void knit__io_wait_disarm(struct knit_io_wait *w);

/* A knit_waiter cancel hook for the waiter inside a knit_io_wait. */
void knit__io_wait_cancel(struct knit_waiter *wt);

/* The wake-up eventfd both backends keep: signal it (any thread; 0 or
 * -errno) and drain it (the worker, when it fired). */
int knit__io_evfd_signal(int evfd);
void knit__io_evfd_drain(int evfd);

/* Tells the current worker's driver that @fd is a socket knit just made
 * (see ops->own); a no-op outside a runtime. */
void knit__io_own(int fd);

/* Called by a backend when @w is ready: records @revents, wakes the task. */
void knit__io_ready(struct knit_io_wait *w, int revents);

/*
 * Runs @op (opcode, fd, buf, len set) in the current task and returns its
 * result: bytes, or -errno. When the scope fires first, the kernel is
 * asked to stop and the call still waits for the completion; it then
 * returns the bytes that did arrive (none are lost), or the scope's error.
 * -ENOSYS when the backend has no completion side.
 */
ssize_t knit__io_op_run(struct knit_io *io, struct knit_io_op *op);

/* Called by a backend when @op's completion arrives with @res. */
void knit__io_op_done(struct knit_io_op *op, int res);

#endif
