/* SPDX-License-Identifier: MIT */
/*
 * knit/patterns/priority.h - a priority worker pool: N worker tasks
 * draining one bounded queue of jobs with K priority levels, with aging so
 * that low priorities are never starved.
 *
 * Several workers: a pool may be shared by tasks on different workers,
 * and its jobs run in parallel on them.
 *
 *     knit_prio_config cfg = {.workers = 4, .levels = 3, .capacity = 64,
 *                             .aging_ms = 500};
 *     knit_prio_pool *p = knit_prio_pool_new(&cfg);
 *     ...
 *     err = knit_prio_pool_submit(p, 0, handle_urgent, req); // may wait
 *     err = knit_prio_pool_try_submit(p, 2, reindex, doc);   // or -EAGAIN
 *     ...
 *     err = knit_prio_pool_wait(p);   // close, run what is queued, end
 *     knit_prio_pool_free(p);
 *
 * Levels. Level 0 is the most urgent, levels - 1 the least (like nice
 * values). A job is a function and its argument; a free worker takes the
 * queued job with the lowest *effective* level, where
 *
 *     effective = max(0, level - waited_ms / aging_ms)   (integer division)
 *
 * so a job rises one level for every aging_ms it waits, and ties go to
 * the job that was submitted first. A level-2 job with aging_ms = 100
 * competes as level 1 after 100 ms and as level 0 after 200 ms, when it
 * is older than every new level-0 job and goes first: whatever the load
 * of urgent work, a job of level L waits at most L * aging_ms plus the
 * time to run the jobs queued before it reached level 0. Aging was chosen
 * over weighted round-robin because the bound is in milliseconds (what
 * an SLO states) and it keeps strict order among jobs that have waited
 * alike. With aging_ms <= 0 the order is strict: a steady stream of
 * urgent jobs starves the others (use it only when that is wanted).
 *
 * Backpressure. The queue holds at most `capacity` jobs, all levels
 * together. knit_prio_pool_submit waits while it is full (FIFO among the
 * submitters, whatever their levels: priority applies once a job is
 * queued); knit_prio_pool_try_submit returns -EAGAIN instead. A worker
 * frees the job's slot when it takes the job, before running it.
 *
 * Closing. knit_prio_pool_close stops intake (waiting and later submits
 * get -EPIPE); the workers run every job already queued, then end.
 * knit_prio_pool_cancel also drops the queued jobs (each one's argument
 * is passed to cfg.discard, so it can be freed) and cancels the jobs
 * running: their blocking calls return -ECANCELED. knit_prio_pool_wait
 * closes, waits for the queue to drain and the workers to end, and
 * cancels instead when its caller's scope fires, so a scope deadline on
 * the wait is a grace period.
 *
 * Worker-local like the primitives of knit/sync.h: a pool serves the
 * tasks of one runtime.
 */
#ifndef KNIT_PATTERNS_PRIORITY_H
#define KNIT_PATTERNS_PRIORITY_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most priority levels a pool may have (a worker scans each level's
 * oldest job when it takes one). */
#define KNIT_PRIO_MAX_LEVELS 64

/* The shape of a pool; see knit_prio_pool_new(). */
typedef struct knit_prio_config {
    int workers;      /* worker tasks, 1..4096 */
    int levels;       /* priority levels, 1..KNIT_PRIO_MAX_LEVELS; 0 is
                         the most urgent */
    size_t capacity;  /* jobs queued at most, all levels together,
                         1..INT32_MAX */
    int64_t aging_ms; /* a queued job rises one level per aging_ms it
                         waits; <= 0: strict priority, no aging */
    void (*discard)(void *arg); /* given the argument of each queued job
                                   dropped by a cancel; may be NULL */
    const char *name; /* the workers' task name; NULL: "prio-worker" */
} knit_prio_config;

/* Counters of one priority level (jobs counted by the level they were
 * submitted at). */
typedef struct knit_prio_stats {
    uint64_t submitted;    /* jobs accepted into the queue */
    uint64_t started;      /* jobs a worker took and ran */
    uint64_t promoted;     /* of them, taken at a lower effective level
                              (more urgent) than submitted: aging at work */
    uint64_t failed;       /* of them, jobs that returned < 0 */
    uint64_t dropped;      /* jobs a cancel discarded without running */
    uint64_t queued;       /* jobs waiting now */
    int64_t wait_max_ms;   /* the longest a started job waited in the queue */
    int64_t wait_total_ms; /* the waits of the started jobs, summed (the
                              average is wait_total_ms / started) */
} knit_prio_stats;

/* A pool: heap-allocated, opaque. */
typedef struct knit_prio_pool knit_prio_pool;

/**
 * knit_prio_pool_new() - create a pool and start its workers.
 * @cfg: the shape (copied; the name is copied by each worker task).
 *
 * Not a cancellation point. Call from a task: the workers run in its
 * runtime.
 * Return: the pool; NULL when out of memory or when @cfg is NULL or out
 * of range (workers, levels, capacity).
 */
KNIT_API knit_prio_pool *knit_prio_pool_new(const knit_prio_config *cfg);

/**
 * knit_prio_pool_submit() - queue fn(arg) at priority @level, waiting
 * while the queue is full.
 * @p:     the pool.
 * @level: 0 (most urgent) to levels - 1.
 * @fn:    the job; a worker runs it and counts it failed when it returns
 *         < 0 (the result is not kept otherwise).
 * @arg:   its argument; passed to cfg.discard if the job is dropped.
 *
 * Cancellation point. Call from a task. Submitters waiting for room are
 * served in FIFO order.
 * Return: 0, the job is queued; -EPIPE when the pool is or gets closed
 * (nothing queued); -EINVAL for a bad @level or a NULL @fn; -ECANCELED /
 * -ETIMEDOUT when the caller's scope fired (nothing queued, and the
 * submitters behind the caller are not held up).
 */
KNIT_API int knit_prio_pool_submit(knit_prio_pool *p, int level, knit_fn fn,
                                   void *arg);

/**
 * knit_prio_pool_try_submit() - knit_prio_pool_submit() without waiting.
 * @p:     the pool.
 * @level: 0 (most urgent) to levels - 1.
 * @fn:    the job.
 * @arg:   its argument.
 *
 * Not a cancellation point. Fails while submitters wait, even when a
 * slot is free: the slot is theirs.
 * Return: 0; -EAGAIN when the queue is full or submitters wait; -EPIPE
 * when the pool is closed; -EINVAL for a bad @level or a NULL @fn.
 */
KNIT_API int knit_prio_pool_try_submit(knit_prio_pool *p, int level, knit_fn fn,
                                       void *arg);

/**
 * knit_prio_pool_close() - stop intake: waiting and later submits return
 * -EPIPE; the workers run the queued jobs, then end.
 * @p: the pool.
 *
 * Idempotent; not a cancellation point. Return: nothing.
 */
KNIT_API void knit_prio_pool_close(knit_prio_pool *p);

/**
 * knit_prio_pool_cancel() - close @p, drop the queued jobs and cancel the
 * running ones.
 * @p: the pool.
 *
 * Each dropped job's argument goes to cfg.discard (when set) and counts
 * in its level's `dropped`. Each job runs in a scope linked to the
 * pool's cancellation, so the running jobs see -ECANCELED from their
 * blocking calls (shielded scopes excepted), and the workers end once
 * those jobs return. Idempotent; not a cancellation point.
 * Return: nothing.
 */
KNIT_API void knit_prio_pool_cancel(knit_prio_pool *p);

/**
 * knit_prio_pool_wait() - close @p and wait until every queued job has
 * run and every worker has ended.
 * @p: the pool.
 *
 * When the caller's scope fires first, the pool is cancelled (see
 * knit_prio_pool_cancel) and the workers are still awaited (shielded), so
 * none outlives this call; a scope deadline around the wait is a grace
 * period for the queue. Once it has returned, later calls return 0 at
 * once.
 * Cancellation point. Call from a task; one task at a time, and not from
 * one of @p's jobs (it would wait for itself).
 * Return: 0; -ECANCELED / -ETIMEDOUT when the caller's scope fired (the
 * pool was cancelled; its workers have ended); -EBUSY when another task
 * is in knit_prio_pool_wait(@p).
 */
KNIT_API int knit_prio_pool_wait(knit_prio_pool *p);

/**
 * knit_prio_pool_stats() - copy the counters of priority @level.
 * @p:     the pool.
 * @level: 0 to levels - 1.
 * @out:   out; the counters.
 *
 * Not a cancellation point.
 * Return: 0; -EINVAL for a bad @level.
 */
KNIT_API int knit_prio_pool_stats(const knit_prio_pool *p, int level,
                                  knit_prio_stats *out);

/**
 * knit_prio_pool_len() - count the jobs queued now, all levels together.
 * @p: the pool.
 *
 * Not a cancellation point.
 * Return: 0 to the capacity.
 */
KNIT_API size_t knit_prio_pool_len(const knit_prio_pool *p);

/**
 * knit_prio_pool_free() - free @p.
 * @p: the pool, or NULL; knit_prio_pool_wait() must have returned.
 *
 * Not a cancellation point. Panics when @p's workers have not been
 * awaited (they would run on freed memory).
 * Return: nothing.
 */
KNIT_API void knit_prio_pool_free(knit_prio_pool *p);

#ifdef __cplusplus
}
#endif

#endif
