// SPDX-License-Identifier: MIT
/*
 * knit_sem (knit/sync.h): a permit count, a closed flag and a FIFO queue
 * of waiters, each asking for w->data permits.
 *
 * Strict FIFO (tokio's batch semaphore): permits go to the head of the
 * queue only, so a large request at the head holds back the small ones
 * behind it, and neither acquire nor try_acquire takes permits while
 * anyone waits. Unlike tokio, released permits are not assigned piecemeal
 * to the head waiter; they accumulate in the count until they cover its
 * whole request. The two are equivalent for FIFO order, and this way a
 * waiter that is cancelled holds nothing to give back: its cancel hook
 * unlinks it and serves the queue again, since the new head may be
 * satisfiable with the permits that were kept for the one that left.
 *
 * Threading: every public operation runs under the runtime lock (core/
 * sched.h; a no-op with one worker), which a waiter releases while parked.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/compiler.h"
#include "core/sched.h"
#include "sync/sync.h"

struct sem {
    uint64_t permits;         /* available, kept for the head waiter */
    bool closed;              /* knit_sem_close was called */
    struct knit_list waiters; /* knit_waiter.link; data: permits wanted */
};

_Static_assert(sizeof(knit_sem) >= sizeof(struct sem), "grow");

static inline struct sem *impl(knit_sem *s)
{
    return (struct sem *)(void *)s;
}

static inline const struct sem *cimpl(const knit_sem *s)
{
    return (const struct sem *)(const void *)s;
}

static inline bool has_waiters(const struct sem *x)
{
    return x->waiters.next && !knit_list_is_empty(&x->waiters);
}

static inline uint64_t wanted(const struct knit_waiter *w)
{
    return (uint64_t)(uintptr_t)w->data;
}

/* Wakes the waiters at the head of the queue that the permits cover. */
static void serve(struct sem *x)
{
    struct knit_waiter *w;
    while ((w = knit__wq_peek(&x->waiters)) != NULL &&
           wanted(w) <= x->permits) {
        struct knit_waiter *c = knit__wq_claim(&x->waiters);
        assert(c == w);
        (void)c;
        x->permits -= wanted(w);
        knit__wake(w, 0);
    }
}

static void waiter_cancel(struct knit_waiter *w)
{
    knit__waiter_unlink(w);
    serve((struct sem *)w->obj);
}

void knit_sem_init(knit_sem *s, unsigned permits)
{
    memset(s, 0, sizeof(*s));
    impl(s)->permits = permits;
}

static int try_acquire(struct sem *x, unsigned n)
{
    if (x->closed)
        return -EPIPE;
    if (n == 0)
        return 0; /* takes nothing, so it cannot jump the queue */
    if (has_waiters(x) || x->permits < n)
        return -EAGAIN;
    x->permits -= n;
    return 0;
}

static int acquire(struct sem *x, unsigned n)
{
    struct knit_task *t = knit__task();
    if (knit_unlikely(!t))
        knit__panic("knit_sem_acquire called outside a task");
    int err = knit__scope_err(t);
    if (knit_unlikely(err))
        return err;
    err = try_acquire(x, n);
    if (err != -EAGAIN)
        return err;
    struct knit_waiter w;
    knit__waiter_init(&w, "sem", x, waiter_cancel);
    w.data = (void *)(uintptr_t)n;
    knit_list_push_back(knit__wq_lazy(&x->waiters), &w.link);
    /* 0: serve() took our permits for us; -EPIPE: closed meanwhile. */
    return knit__wait(&w);
}

static void release(struct sem *x, unsigned n)
{
    if (knit_unlikely(x->permits + n < x->permits))
        knit__panic("knit_sem_release: the permit count overflows");
    x->permits += n;
    serve(x);
}

static void sem_close(struct sem *x)
{
    if (x->closed)
        return;
    x->closed = true;
    if (x->waiters.next)
        knit__wq_wake_all(&x->waiters, -EPIPE);
}

int knit_sem_try_acquire(knit_sem *s, unsigned n)
{
    return KNIT_LOCKED(try_acquire(impl(s), n));
}

int knit_sem_acquire(knit_sem *s, unsigned n)
{
    return KNIT_LOCKED(acquire(impl(s), n));
}

void knit_sem_release(knit_sem *s, unsigned n)
{
    KNIT_LOCKED_VOID(release(impl(s), n));
}

void knit_sem_close(knit_sem *s)
{
    KNIT_LOCKED_VOID(sem_close(impl(s)));
}

bool knit_sem_is_closed(const knit_sem *s)
{
    return KNIT_LOCKED(cimpl(s)->closed);
}

size_t knit_sem_available(const knit_sem *s)
{
    /* size_t is 64 bits on knit's CPUs */
    return (size_t)KNIT_LOCKED(cimpl(s)->permits);
}
