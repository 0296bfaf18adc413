/* SPDX-License-Identifier: MIT */
/*
 * knit/patterns/pool.h - a resource pool: database connections, API
 * clients, anything costly to make that several tasks take turns using
 * (deadpool and bb8 in Rust, database/sql's pool in Go).
 *
 * Several workers: a pool may be shared by tasks on different workers;
 * create, check and destroy may then run in parallel.
 *
 *     static int  conn_open(void *arg, void **res);   // may block
 *     static void conn_close(void *arg, void *res);   // must not block
 *     static int  conn_ping(void *arg, void *res);    // may block
 *
 *     knit_pool_opts o = {.create = conn_open, .destroy = conn_close,
 *                         .check = conn_ping, .arg = &db,
 *                         .max_size = 10, .min_idle = 2,
 *                         .idle_ms = 60000, .check_idle_ms = 5000};
 *     knit_pool *p = knit_pool_new(&o);
 *     ...
 *     void *c;
 *     if ((err = knit_pool_acquire(p, &c)) < 0)
 *         return err;                  // -ETIMEDOUT: the scope's deadline
 *     err = query(c, sql);
 *     knit_pool_release(p, c, err == -ECONNRESET);   // broken: destroyed
 *     ...
 *     knit_pool_close(p);
 *     knit_pool_free(p);
 *
 * Size. At most max_size resources exist at once, counting those idle in
 * the pool, those checked out and those being created or checked. A
 * knit_sem of max_size permits enforces it: an acquirer takes a permit
 * (waiting in FIFO order when all are taken), then takes the idle
 * resource returned most recently, or creates one when none is idle; the
 * permit goes back with the resource at knit_pool_release(). So waiters
 * are served first come, first served, and a waiter that gives up
 * (cancelled, or its scope's deadline passed) takes nothing with it.
 *
 * Deadlines come from the caller's scopes, as everywhere in knit: the
 * wait for a permit, create() and check() all run in the caller's task
 * and see its deadline. A failure at any step gives the permit back.
 *
 * Health. A resource may go bad while it sits idle (the server closed the
 * connection). With a check callback, an idle resource is checked before
 * it is handed out when it has been idle for check_idle_ms or more
 * (every checkout when check_idle_ms <= 0); one that fails is destroyed
 * and the acquirer moves on to the next idle resource, or creates a
 * fresh one. A resource that broke while checked out is released with
 * broken = true and destroyed instead of returned.
 *
 * Background work. With min_idle > 0 the pool keeps that many resources
 * idle and ready, creating them one at a time in a background task (up to
 * max_size in all; after a failed create it waits retry_ms, doubling, as
 * knit_backoff does, before trying again). With idle_ms > 0, resources
 * idle for idle_ms are destroyed, oldest first, down to min_idle, at
 * exactly idle_ms after their release. The same background task does
 * both; a pool with neither needs no task.
 *
 * Closing. knit_pool_close() wakes every waiting acquirer with -EPIPE,
 * makes later acquires fail with -EPIPE, destroys the idle resources and
 * stops the background task; resources checked out at that moment are
 * destroyed when they are released. knit_pool_free() then frees the pool.
 * Every resource create() made is passed to destroy() exactly once.
 *
 * Worker-local like the primitives of knit/sync.h: a pool serves the
 * tasks of one runtime.
 */
#ifndef KNIT_PATTERNS_POOL_H
#define KNIT_PATTERNS_POOL_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The shape and callbacks of a pool; see knit_pool_new(). */
typedef struct knit_pool_opts {
    /* Makes one resource and stores it in *res: >= 0 success, < 0 a
     * negative errno (the acquirer gets it). May block: it runs in the
     * acquirer's task, under its scopes, or in the background task. The
     * resources alive at once must be distinct values (a pointer, or an
     * integer such as an fd cast to one). Required. */
    int (*create)(void *arg, void **res);
    /* Frees one resource. Must not block: it runs inside
     * knit_pool_release(), knit_pool_close() and the background task.
     * NULL: nothing to free. */
    void (*destroy)(void *arg, void *res);
    /* Checks an idle resource before it is handed out: >= 0 healthy,
     * < 0 broken (it is destroyed). May block, in the acquirer's task; a
     * check cut short by the acquirer's scope counts as failed, since a
     * half-done exchange leaves the resource in an unknown state. NULL:
     * no check. */
    int (*check)(void *arg, void *res);
    void *arg;             /* passed to the three callbacks */
    unsigned max_size;     /* resources alive at once, >= 1 */
    unsigned min_idle;     /* kept idle by the background task, <= max_size */
    int64_t idle_ms;       /* > 0: destroy a resource idle this long, down
                              to min_idle; <= 0: never */
    int64_t check_idle_ms; /* > 0: check only resources idle at least this
                              long; <= 0: check at every checkout */
    int64_t retry_ms;      /* first wait after a failed background create,
                              doubling up to 10 s (or retry_ms if more);
                              <= 0: 100 */
} knit_pool_opts;

/* Counters of a pool (knit_pool_stats_get()). */
typedef struct knit_pool_stats {
    unsigned max_size;       /* the limit */
    unsigned size;           /* resources alive: idle + in_use + pending */
    unsigned idle;           /* in the pool, ready to hand out */
    unsigned in_use;         /* checked out */
    unsigned pending;        /* being created or checked */
    unsigned waiting;        /* tasks waiting for a permit */
    uint64_t acquired;       /* acquires that returned a resource */
    uint64_t created;        /* create() calls that succeeded */
    uint64_t create_errors;  /* create() calls that failed */
    uint64_t check_failures; /* check() calls that failed */
    uint64_t broken;         /* resources released as broken */
    uint64_t evicted;        /* resources destroyed after idle_ms */
    uint64_t destroyed;      /* destroy() calls, for every reason */
    uint64_t timeouts;       /* acquires whose wait ended in -ETIMEDOUT */
    uint64_t cancelled;      /* acquires whose wait ended in -ECANCELED */
    bool closed;             /* knit_pool_close() was called */
} knit_pool_stats;

/* A pool: heap-allocated, opaque. */
typedef struct knit_pool knit_pool;

/**
 * knit_pool_new() - create a pool; start its background task when
 * min_idle > 0 or idle_ms > 0.
 * @o: the shape and callbacks (copied).
 *
 * The background task starts creating the min_idle resources at once.
 * Not a cancellation point. Call from a task when a background task is
 * needed; otherwise anywhere.
 * Return: the pool; NULL when out of memory, when @o is NULL, has no
 * create callback, a max_size of 0 or a min_idle above max_size, or when
 * a background task is needed outside a task.
 */
KNIT_API knit_pool *knit_pool_new(const knit_pool_opts *o);

/**
 * knit_pool_acquire() - check a resource out of @p, waiting in FIFO order
 * while max_size are in use.
 * @p:   the pool.
 * @res: out; the resource on success, NULL on failure.
 *
 * Takes the idle resource released most recently, after checking it when
 * o->check_idle_ms says so (one that fails is destroyed and the next one
 * is tried); creates one when none is idle. Give it back with
 * knit_pool_release() on every path.
 *
 * Cancellation point: the wait, create() and check() see the caller's
 * scopes. Call from a task.
 * Return: 0, *@res is checked out to the caller; -EPIPE when @p is or
 * gets closed (nothing checked out; a resource made or checked meanwhile
 * is destroyed); create()'s error when it failed; -ECANCELED /
 * -ETIMEDOUT when the caller's scope fired while waiting (no permit
 * taken; the waiters behind are served) or before the call; -EINVAL when
 * @p or @res is NULL. On every error the permit is back in the pool.
 */
KNIT_API int knit_pool_acquire(knit_pool *p, void **res);

/**
 * knit_pool_release() - give a resource back to @p.
 * @p:      the pool.
 * @res:    a resource checked out of @p by knit_pool_acquire().
 * @broken: true when the resource must not be used again (a connection
 *          reset, a protocol error): it is destroyed, not returned.
 *
 * A resource released to a closed pool is destroyed too. The permit goes
 * to the first waiter, which takes the resource (or creates one in place
 * of a destroyed one). Not a cancellation point. Call from a task of the
 * pool's runtime. Panics when @res is not checked out of @p (released
 * twice, or never acquired). O(max_size).
 * Return: nothing.
 */
KNIT_API void knit_pool_release(knit_pool *p, void *res, bool broken);

/**
 * knit_pool_close() - close @p: waiting and later acquires fail with
 * -EPIPE, idle resources are destroyed now and checked-out ones when they
 * are released; the background task is cancelled.
 * @p: the pool.
 *
 * Idempotent; not a cancellation point. Return: nothing.
 */
KNIT_API void knit_pool_close(knit_pool *p);

/**
 * knit_pool_free() - close @p if needed, wait for its background task to
 * end and free it.
 * @p: the pool, or NULL.
 *
 * The wait for the background task (cancelled by the close; its create()
 * returns early) is shielded, so it happens even in a cancelled task;
 * once this returns, no callback runs any more. Call from a task when @p
 * has a background task. Panics when a resource is still checked out or
 * a task is still inside knit_pool_acquire() (wait for the tasks that
 * use the pool first).
 * Return: nothing.
 */
KNIT_API void knit_pool_free(knit_pool *p);

/**
 * knit_pool_stats_get() - copy @p's counters into @out.
 * @p:   the pool.
 * @out: filled in.
 *
 * Not a cancellation point. Return: nothing.
 */
KNIT_API void knit_pool_stats_get(const knit_pool *p, knit_pool_stats *out);

#ifdef __cplusplus
}
#endif

#endif
