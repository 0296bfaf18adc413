/* SPDX-License-Identifier: MIT */
/*
 * knit/sync.h - synchronisation primitives for tasks: what tokio::sync and
 * Go's sync package give, parking the task instead of the thread.
 *
 *   knit_mutex      mutual exclusion, FIFO hand-off (no barging)
 *   knit_rwlock     readers-writer lock, FIFO: a waiting writer blocks
 *                   readers that arrive after it
 *   knit_sem        counting semaphore: acquire/release n permits, FIFO,
 *                   close
 *   knit_notify     wake one waiter (or store one permit) / wake all
 *   knit_barrier    n tasks meet; one of them is told it is the leader
 *   knit_once       run an async initialiser once; retried while it fails
 *   knit_waitgroup  wait until a counter of outstanding jobs drops to 0
 *   knit_token      hierarchical cancellation token
 *
 * All are caller-allocated, cost no allocation and need no destruction
 * (except knit_token, which is linked to its parent):
 *
 *     static knit_mutex lock;        // all-zero: an unlocked mutex
 *     ...
 *     if ((err = knit_mutex_lock(&lock)) < 0)
 *         return err;                // cancelled or timed out: not held
 *     counter++;
 *     knit_mutex_unlock(&lock);
 *
 * All-zero bytes are a ready state (KNIT_MUTEX_INIT and friends are {0}):
 * an unlocked mutex or rwlock, a semaphore with no permits, a notify with
 * no permit, a once not yet run, a waitgroup at 0, a root token not
 * cancelled. knit_barrier needs knit_barrier_init() for its count (all
 * zero behaves as a barrier of one).
 *
 * Waiting: every call that may wait is a cancellation point. It checks the
 * caller's scopes first, so inside a fired scope it returns -ECANCELED or
 * -ETIMEDOUT at once, even when it could have succeeded without waiting.
 * A waiting call that is cancelled or times out leaves no trace: a mutex
 * waiter never gets the lock, a semaphore waiter takes no permit (and the
 * waiters behind it are served if the permits allow), a barrier waiter no
 * longer counts as arrived, and so on. Waiters are served in FIFO order.
 * The other calls (unlock, release, notify, cancel, the try_ calls) never
 * wait and are not cancellation points.
 *
 * Misuse that would corrupt state or wait forever panics with the task's
 * name, for example unlocking a mutex the caller does not hold, locking a
 * mutex the caller already holds, a waitgroup counter below zero or
 * destroying a token tasks wait on (each function's doc lists its own).
 *
 * Threads: every call is made from a task. Today a runtime runs all its
 * tasks on one worker, so a primitive must stay within one runtime; the
 * multi-worker scheduler will make them safe from any worker (DESIGN §2).
 */
#ifndef KNIT_SYNC_H
#define KNIT_SYNC_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The all-zero initialiser that KNIT_MUTEX_INIT and the others expand to. */
/* clang-format off */
#define KNIT_SYNC_ZERO_INIT {0}
/* clang-format on */

/* ---- knit_mutex -------------------------------------------------------- */

/*
 * A mutex owned by the task that locked it. Unlock hands it straight to
 * the first waiter, so a task that unlocks and locks again queues behind
 * the tasks already waiting instead of barging ahead of them. A task that
 * ends while holding a mutex leaves it locked for good: unlock on every
 * path, including the error paths of cancelled calls.
 */
KNIT_OPAQUE(knit_mutex, 48);
#define KNIT_MUTEX_INIT KNIT_SYNC_ZERO_INIT

/**
 * knit_mutex_init() - make @m an unlocked mutex (the same as zeroing it).
 * @m: the mutex; no task may hold it or wait for it.
 *
 * Not a cancellation point. Return: nothing.
 */
KNIT_API void knit_mutex_init(knit_mutex *m);

/**
 * knit_mutex_lock() - lock @m, waiting in FIFO order while another task
 * holds it.
 * @m: the mutex.
 *
 * Cancellation point. Call from a task; locking a mutex the calling task
 * already holds panics (it would wait forever).
 * Return: 0, the caller holds @m; -ECANCELED / -ETIMEDOUT when the
 * caller's scope fired (the caller does not hold @m and is no longer
 * queued).
 */
KNIT_API int knit_mutex_lock(knit_mutex *m);

/**
 * knit_mutex_try_lock() - lock @m if it is free, without waiting.
 * @m: the mutex.
 *
 * Not a cancellation point. Call from a task. A mutex is never free while
 * tasks wait for it (unlock hands it to them), so this never jumps a queue.
 * Return: 0, the caller holds @m; -EAGAIN when it is held.
 */
KNIT_API int knit_mutex_try_lock(knit_mutex *m);

/**
 * knit_mutex_unlock() - release @m, handing it to the first waiter.
 * @m: the mutex, held by the calling task.
 *
 * Not a cancellation point. Panics when the calling task does not hold @m.
 * Return: nothing.
 */
KNIT_API void knit_mutex_unlock(knit_mutex *m);

/**
 * knit_mutex_is_locked() - tell whether some task holds @m.
 * @m: the mutex.
 *
 * Not a cancellation point.
 * Return: true when a task holds @m; false when it is unlocked.
 */
KNIT_API bool knit_mutex_is_locked(const knit_mutex *m);

/* ---- knit_rwlock ------------------------------------------------------- */

/*
 * A readers-writer lock: any number of readers or one writer. Fair (FIFO,
 * like tokio's RwLock): a task that finds waiters queued joins the queue,
 * so a waiting writer blocks the readers that come after it and writers
 * cannot starve. A consequence: a task that takes the read lock twice may
 * deadlock when a writer queued in between; do not nest read locks.
 */
KNIT_OPAQUE(knit_rwlock, 64);
#define KNIT_RWLOCK_INIT KNIT_SYNC_ZERO_INIT

/**
 * knit_rwlock_init() - make @l an unlocked rwlock (the same as zeroing it).
 * @l: the rwlock; no task may hold it or wait for it.
 *
 * Not a cancellation point. Return: nothing.
 */
KNIT_API void knit_rwlock_init(knit_rwlock *l);

/**
 * knit_rwlock_read_lock() - take a shared lock on @l, waiting in FIFO
 * order while a writer holds it or any task waits for it.
 * @l: the rwlock.
 *
 * Cancellation point. Call from a task; panics when the caller holds the
 * write lock.
 * Return: 0; -ECANCELED / -ETIMEDOUT when the caller's scope fired (no
 * lock held, no longer queued).
 */
KNIT_API int knit_rwlock_read_lock(knit_rwlock *l);

/**
 * knit_rwlock_try_read_lock() - knit_rwlock_read_lock() without waiting.
 * @l: the rwlock.
 *
 * Not a cancellation point.
 * Return: 0; -EAGAIN when a writer holds @l or tasks wait for it.
 */
KNIT_API int knit_rwlock_try_read_lock(knit_rwlock *l);

/**
 * knit_rwlock_read_unlock() - drop a shared lock taken on @l.
 * @l: the rwlock.
 *
 * Not a cancellation point. The last reader out lets the first waiting
 * writer in. Panics when @l holds no read lock.
 * Return: nothing.
 */
KNIT_API void knit_rwlock_read_unlock(knit_rwlock *l);

/**
 * knit_rwlock_write_lock() - take the exclusive lock on @l, waiting in FIFO
 * order while it is held or other tasks wait for it.
 * @l: the rwlock.
 *
 * Cancellation point. Call from a task; panics when the caller already
 * holds the write lock.
 * Return: 0; -ECANCELED / -ETIMEDOUT when the caller's scope fired (no
 * lock held, no longer queued; readers it was holding back go ahead).
 */
KNIT_API int knit_rwlock_write_lock(knit_rwlock *l);

/**
 * knit_rwlock_try_write_lock() - knit_rwlock_write_lock() without waiting.
 * @l: the rwlock.
 *
 * Not a cancellation point. Call from a task.
 * Return: 0; -EAGAIN when @l is held or tasks wait for it.
 */
KNIT_API int knit_rwlock_try_write_lock(knit_rwlock *l);

/**
 * knit_rwlock_write_unlock() - drop the exclusive lock on @l.
 * @l: the rwlock, write-locked by the calling task.
 *
 * Not a cancellation point. Wakes the waiters at the head of the queue: one
 * writer, or every reader up to the next waiting writer. Panics when the
 * calling task does not hold the write lock.
 * Return: nothing.
 */
KNIT_API void knit_rwlock_write_unlock(knit_rwlock *l);

/* ---- knit_sem ---------------------------------------------------------- */

/*
 * A counting semaphore (tokio's batch semaphore). knit_sem_acquire(s, n)
 * takes n permits at once; waiters are served strictly in FIFO order, so a
 * large request at the head of the queue holds back smaller ones behind it
 * until enough permits are released (no starvation of large requests). A
 * request for more permits than will ever be released waits until it is
 * cancelled or the semaphore is closed, and blocks every waiter behind it.
 * Permits are not owned: any task may release them.
 *
 * Closing (knit_sem_close) wakes every waiter with -EPIPE and makes every
 * later acquire fail with -EPIPE; releasing still adds permits.
 */
KNIT_OPAQUE(knit_sem, 64);
/* A semaphore with no permits. */
#define KNIT_SEM_INIT KNIT_SYNC_ZERO_INIT

/**
 * knit_sem_init() - make @s an open semaphore holding @permits permits.
 * @s:       the semaphore; no task may wait on it.
 * @permits: the permits available at first.
 *
 * Not a cancellation point. Return: nothing.
 */
KNIT_API void knit_sem_init(knit_sem *s, unsigned permits);

/**
 * knit_sem_acquire() - take @n permits from @s, waiting in FIFO order
 * until they are available.
 * @s: the semaphore.
 * @n: permits wanted; 0 succeeds at once on an open semaphore.
 *
 * Cancellation point. Call from a task.
 * Return: 0, the caller took @n permits; -EPIPE when @s is or gets closed
 * (nothing taken); -ECANCELED / -ETIMEDOUT when the caller's scope fired
 * (nothing taken; the waiters behind the caller are served if the
 * available permits now suffice).
 */
KNIT_API int knit_sem_acquire(knit_sem *s, unsigned n);

/**
 * knit_sem_try_acquire() - take @n permits from @s without waiting.
 * @s: the semaphore.
 * @n: permits wanted.
 *
 * Not a cancellation point. Fails while tasks wait, even when enough
 * permits are available: they are kept for the head of the queue.
 * Return: 0 (always for @n == 0 on an open semaphore); -EAGAIN when @n permits
 * are not available or tasks wait; -EPIPE when @s is closed.
 */
KNIT_API int knit_sem_try_acquire(knit_sem *s, unsigned n);

/**
 * knit_sem_release() - give @n permits to @s.
 * @s: the semaphore.
 * @n: permits returned (or added).
 *
 * Not a cancellation point. Wakes the waiters at the head of the queue
 * whose requests the permits now cover. Panics when the count of available
 * permits would overflow.
 * Return: nothing.
 */
KNIT_API void knit_sem_release(knit_sem *s, unsigned n);

/**
 * knit_sem_close() - close @s: every waiter returns -EPIPE, and so does
 * every later acquire.
 * @s: the semaphore.
 *
 * Idempotent; not a cancellation point. Return: nothing.
 */
KNIT_API void knit_sem_close(knit_sem *s);

/**
 * knit_sem_is_closed() - tell whether @s has been closed.
 * @s: the semaphore.
 *
 * Not a cancellation point.
 * Return: true after knit_sem_close(@s); false before.
 */
KNIT_API bool knit_sem_is_closed(const knit_sem *s);

/**
 * knit_sem_available() - count the permits @s holds now.
 * @s: the semaphore.
 *
 * Not a cancellation point. While a waiter is queued the count is below
 * its request and the permits are kept for it.
 * Return: the number of available permits.
 */
KNIT_API size_t knit_sem_available(const knit_sem *s);

/* ---- knit_notify ------------------------------------------------------- */

/*
 * Notify (tokio's Notify): knit_notify_one() wakes one waiting task, or,
 * when none waits, stores a single permit that the next knit_notify_wait()
 * consumes without waiting (several notifications with nobody waiting
 * still store one permit). knit_notify_all() wakes the tasks waiting now
 * and stores nothing. Usable as a case of knit_select (knit_case_notify).
 */
KNIT_OPAQUE(knit_notify, 48);
#define KNIT_NOTIFY_INIT KNIT_SYNC_ZERO_INIT

/**
 * knit_notify_init() - make @n a notify with no permit (the same as
 * zeroing it).
 * @n: the notify; no task may wait on it.
 *
 * Not a cancellation point. Return: nothing.
 */
KNIT_API void knit_notify_init(knit_notify *n);

/**
 * knit_notify_wait() - consume @n's stored permit, or wait for a
 * notification.
 * @n: the notify.
 *
 * Cancellation point. Call from a task. Waiters are woken in FIFO order.
 * Return: 0; -ECANCELED / -ETIMEDOUT when the caller's scope fired (no
 * permit consumed, no notification swallowed).
 */
KNIT_API int knit_notify_wait(knit_notify *n);

/**
 * knit_notify_one() - wake the first waiter of @n, or store one permit
 * when none waits (a permit already stored stays the only one).
 * @n: the notify.
 *
 * Not a cancellation point. Return: nothing.
 */
KNIT_API void knit_notify_one(knit_notify *n);

/**
 * knit_notify_all() - wake every task waiting on @n now.
 * @n: the notify.
 *
 * Stores no permit, so later waiters wait for the next notification. Not a
 * cancellation point. Return: nothing.
 */
KNIT_API void knit_notify_all(knit_notify *n);

/* ---- knit_barrier ------------------------------------------------------ */

/*
 * A reusable barrier for n tasks (tokio's Barrier): each knit_barrier_wait
 * waits until n tasks have arrived, then all n return, the last to arrive
 * (the leader) with 1 and the others with 0, and the barrier is ready for
 * the next generation. A waiter that is cancelled or times out leaves: it
 * no longer counts, so the barrier still needs n tasks waiting at once to
 * trip (it never trips early with the cancelled one missing).
 */
KNIT_OPAQUE(knit_barrier, 64);

/**
 * knit_barrier_init() - make @b a barrier for @n tasks.
 * @b: the barrier; no task may wait on it.
 * @n: tasks per generation; 0 is taken as 1.
 *
 * Not a cancellation point. Return: nothing.
 */
KNIT_API void knit_barrier_init(knit_barrier *b, unsigned n);

/**
 * knit_barrier_wait() - arrive at @b and wait for the rest of the
 * generation.
 * @b: the barrier.
 *
 * Cancellation point. Call from a task.
 * Return: 1 for the leader (the task whose arrival tripped the barrier,
 * which does not wait); 0 for the others; -ECANCELED / -ETIMEDOUT when the
 * caller's scope fired before the barrier tripped (the caller no longer
 * counts as arrived).
 */
KNIT_API int knit_barrier_wait(knit_barrier *b);

/* ---- knit_once --------------------------------------------------------- */

/*
 * Asynchronous one-time initialisation (tokio's OnceCell::get_or_try_init).
 * The first caller of knit_once_call() runs init(arg), which may block;
 * callers that arrive meanwhile wait. When init succeeds (returns >= 0)
 * its result is stored and every caller, then and later, gets it without
 * running anything. When init fails (returns < 0) its caller gets the
 * error, nothing is stored, and the first waiting caller (or else the next
 * caller) runs its own init: a failed initialisation is retried.
 */
KNIT_OPAQUE(knit_once, 64);
#define KNIT_ONCE_INIT KNIT_SYNC_ZERO_INIT

/**
 * knit_once_init() - make @o a once that has not run (the same as zeroing
 * it).
 * @o: the once; no task may be in knit_once_call(@o).
 *
 * Not a cancellation point. Return: nothing.
 */
KNIT_API void knit_once_init(knit_once *o);

/**
 * knit_once_call() - make sure @o is initialised, running init(arg) if this
 * caller is the one to do it.
 * @o:    the once.
 * @init: the initialiser; >= 0 success (the value stored), < 0 failure.
 * @arg:  its argument.
 *
 * Cancellation point. Call from a task; calling it from inside @o's own
 * running init panics (it would wait for itself).
 * Return: the stored result (>= 0) once @o is initialised, whoever ran
 * init; init's error (< 0) when this caller ran it and it failed;
 * -ECANCELED / -ETIMEDOUT when the caller's scope fired while it waited or
 * before it started (init was not run by this caller).
 */
KNIT_API int knit_once_call(knit_once *o, knit_fn init, void *arg);

/**
 * knit_once_is_done() - tell whether an init of @o has succeeded.
 * @o: the once.
 *
 * Not a cancellation point.
 * Return: true once a result is stored; false before.
 */
KNIT_API bool knit_once_is_done(const knit_once *o);

/* ---- knit_waitgroup ---------------------------------------------------- */

/*
 * A counter of outstanding jobs (Go's sync.WaitGroup): add before starting
 * a job, done when it ends, wait until the counter is 0. Reaching 0 wakes
 * every waiter, so the waitgroup may be reused at once.
 */
KNIT_OPAQUE(knit_waitgroup, 48);
#define KNIT_WAITGROUP_INIT KNIT_SYNC_ZERO_INIT

/**
 * knit_waitgroup_init() - make @wg a waitgroup at 0 (the same as zeroing
 * it).
 * @wg: the waitgroup; no task may wait on it.
 *
 * Not a cancellation point. Return: nothing.
 */
KNIT_API void knit_waitgroup_init(knit_waitgroup *wg);

/**
 * knit_waitgroup_add() - add @n to @wg's counter; at 0 every waiter wakes.
 * @wg: the waitgroup.
 * @n:  the change, which may be negative.
 *
 * Not a cancellation point. Panics when the counter would go below 0.
 * Return: nothing.
 */
KNIT_API void knit_waitgroup_add(knit_waitgroup *wg, int n);

/**
 * knit_waitgroup_done() - knit_waitgroup_add(@wg, -1): one job has ended.
 * @wg: the waitgroup.
 *
 * Not a cancellation point. Panics when the counter is already 0.
 * Return: nothing.
 */
KNIT_API void knit_waitgroup_done(knit_waitgroup *wg);

/**
 * knit_waitgroup_wait() - wait until @wg's counter is 0.
 * @wg: the waitgroup.
 *
 * Cancellation point. Call from a task.
 * Return: 0; -ECANCELED / -ETIMEDOUT when the caller's scope fired.
 */
KNIT_API int knit_waitgroup_wait(knit_waitgroup *wg);

/**
 * knit_waitgroup_count() - read @wg's counter.
 * @wg: the waitgroup.
 *
 * Not a cancellation point.
 * Return: the counter, >= 0.
 */
KNIT_API int64_t knit_waitgroup_count(const knit_waitgroup *wg);

/* ---- knit_token -------------------------------------------------------- */

/*
 * A hierarchical cancellation token (tokio_util's CancellationToken).
 * Cancelling a token cancels every token below it and wakes the tasks
 * waiting on any of them; cancelling a child leaves its parent alone. A
 * token starts cancelled when its parent already is. Cancellation is
 * final.
 *
 * A token with a parent or children is linked to them, so it must be
 * unlinked with knit_token_destroy() before its storage goes away. Tokens
 * may be destroyed in any order: the children of a destroyed token move up
 * to its parent (or become roots) and still see that parent's
 * cancellation. A root without children needs no destroy. An all-zero
 * token is a root that is not cancelled.
 */
KNIT_OPAQUE(knit_token, 96);
/* A root token, not cancelled. */
#define KNIT_TOKEN_INIT KNIT_SYNC_ZERO_INIT

/**
 * knit_token_init() - make @t a token under @parent.
 * @t:      the token; any contents (an old token must be destroyed first).
 * @parent: its parent, or NULL for a root.
 *
 * @t starts cancelled when @parent is cancelled. Not a cancellation point.
 * Return: nothing.
 */
KNIT_API void knit_token_init(knit_token *t, knit_token *parent);

/**
 * knit_token_cancel() - cancel @t and every token below it, waking every
 * task waiting on them.
 * @t: the token.
 *
 * Idempotent; not a cancellation point. Return: nothing.
 */
KNIT_API void knit_token_cancel(knit_token *t);

/**
 * knit_token_is_cancelled() - tell whether @t has been cancelled.
 * @t: the token.
 *
 * Not a cancellation point.
 * Return: true when @t or one of its ancestors was cancelled; false else.
 */
KNIT_API bool knit_token_is_cancelled(const knit_token *t);

/**
 * knit_token_wait() - wait until @t is cancelled.
 * @t: the token.
 *
 * Cancellation point. Call from a task.
 * Return: 0 once @t is cancelled (at once if it already is); -ECANCELED /
 * -ETIMEDOUT when the caller's scope fired first.
 */
KNIT_API int knit_token_wait(knit_token *t);

/**
 * knit_token_destroy() - unlink @t from its parent and move its children
 * up to that parent (or make them roots).
 * @t: the token; no task may wait on it.
 *
 * Afterwards @t's storage may be reused or freed. Not a cancellation
 * point. Panics when tasks wait on @t. Return: nothing.
 */
KNIT_API void knit_token_destroy(knit_token *t);

#ifdef __cplusplus
}
#endif

#endif
