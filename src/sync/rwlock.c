// SPDX-License-Identifier: MIT
/*
 * knit_rwlock (knit/sync.h): a reader count, a writer and one FIFO queue
 * holding waiting readers and writers alike.
 *
 * Fairness comes from the single queue: a task that finds anyone waiting
 * queues too, so a waiting writer holds back the readers behind it. The
 * lock is granted by serve(), which wakes from the head of the queue
 * either one writer (when nobody holds the lock) or every reader up to the
 * next writer (when no writer holds it), updating the counts on the woken
 * tasks' behalf, so the lock is theirs before they run. serve() runs on
 * every unlock and when a cancelled waiter leaves the queue: a writer that
 * gives up may let the readers queued behind it in.
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

struct rwlock {
    uint64_t readers;         /* tasks holding the read lock */
    struct knit_task *writer; /* the task holding the write lock, or NULL */
    struct knit_list waiters; /* knit_waiter.link; data: WRITER or NULL */
};

_Static_assert(sizeof(knit_rwlock) >= sizeof(struct rwlock), "grow");

/* A waiter's data: a writer; readers carry NULL. */
#define WRITER ((void *)(uintptr_t)1)

static inline struct rwlock *impl(knit_rwlock *l)
{
    return (struct rwlock *)(void *)l;
}

static struct knit_task *self(const char *fn)
{
    struct knit_task *t = knit__task();
    if (knit_unlikely(!t))
        knit__panic("%s called outside a task", fn);
    return t;
}

static inline bool has_waiters(const struct rwlock *x)
{
    return x->waiters.next && !knit_list_is_empty(&x->waiters);
}

/* Grants the lock to the waiters at the head of the queue that may have it. */
static void serve(struct rwlock *x)
{
    struct knit_waiter *w;
    while (!x->writer && (w = knit__wq_peek(&x->waiters)) != NULL) {
        bool writer = w->data == WRITER;
        if (writer && x->readers)
            return;
        struct knit_waiter *c = knit__wq_claim(&x->waiters);
        assert(c == w);
        (void)c;
        if (writer)
            x->writer = w->task;
        else
            x->readers++;
        knit__wake(w, 0);
    }
}

static void waiter_cancel(struct knit_waiter *w)
{
    knit__waiter_unlink(w);
    serve((struct rwlock *)w->obj);
}

static int wait_for(struct rwlock *x, bool writer)
{
    struct knit_waiter w;
    knit__waiter_init(&w, writer ? "rwlock write" : "rwlock read", x,
                      waiter_cancel);
    w.data = writer ? WRITER : NULL;
    knit_list_push_back(knit__wq_lazy(&x->waiters), &w.link);
    return knit__wait(&w);
}

void knit_rwlock_init(knit_rwlock *l)
{
    memset(l, 0, sizeof(*l));
}

static int try_read_lock(struct rwlock *x)
{
    if (x->writer || has_waiters(x))
        return -EAGAIN;
    x->readers++;
    return 0;
}

static int read_lock(struct rwlock *x)
{
    struct knit_task *t = self("knit_rwlock_read_lock");
    int err = knit__scope_err(t);
    if (knit_unlikely(err))
        return err;
    if (knit_unlikely(x->writer == t))
        knit__panic("knit_rwlock_read_lock by the task holding the write "
                    "lock");
    if (knit_likely(!x->writer && !has_waiters(x))) {
        x->readers++;
        return 0;
    }
    return wait_for(x, false);
}

static void read_unlock(struct rwlock *x)
{
    if (knit_unlikely(x->readers == 0))
        knit__panic("knit_rwlock_read_unlock of a rwlock not read-locked");
    if (--x->readers == 0)
        serve(x);
}

static int try_write_lock(struct rwlock *x)
{
    struct knit_task *t = self("knit_rwlock_try_write_lock");
    if (x->writer || x->readers || has_waiters(x))
        return -EAGAIN;
    x->writer = t;
    return 0;
}

static int write_lock(struct rwlock *x)
{
    struct knit_task *t = self("knit_rwlock_write_lock");
    int err = knit__scope_err(t);
    if (knit_unlikely(err))
        return err;
    if (knit_unlikely(x->writer == t))
        knit__panic("knit_rwlock_write_lock by the task already holding it");
    if (knit_likely(!x->writer && !x->readers && !has_waiters(x))) {
        x->writer = t;
        return 0;
    }
    return wait_for(x, true);
}

static void write_unlock(struct rwlock *x)
{
    if (knit_unlikely(!x->writer || x->writer != knit__task()))
        knit__panic("knit_rwlock_write_unlock of a rwlock the caller has not "
                    "write-locked");
    x->writer = NULL;
    serve(x);
}

int knit_rwlock_try_read_lock(knit_rwlock *l)
{
    return KNIT_LOCKED(try_read_lock(impl(l)));
}

int knit_rwlock_read_lock(knit_rwlock *l)
{
    return KNIT_LOCKED(read_lock(impl(l)));
}

void knit_rwlock_read_unlock(knit_rwlock *l)
{
    KNIT_LOCKED_VOID(read_unlock(impl(l)));
}

int knit_rwlock_try_write_lock(knit_rwlock *l)
{
    return KNIT_LOCKED(try_write_lock(impl(l)));
}

int knit_rwlock_write_lock(knit_rwlock *l)
{
    return KNIT_LOCKED(write_lock(impl(l)));
}

void knit_rwlock_write_unlock(knit_rwlock *l)
{
    KNIT_LOCKED_VOID(write_unlock(impl(l)));
}
