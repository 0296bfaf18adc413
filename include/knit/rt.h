/* SPDX-License-Identifier: MIT */
/*
 * knit/rt.h - the runtime: configure it, run a main task in it (tokio's
 * block_on), look inside it.
 *
 * knit_run() starts the workers, runs main(arg) as the first task and
 * returns main's result once main has returned and every other task has
 * finished: tasks still running when main returns are cancelled (their
 * blocking calls return -ECANCELED) and awaited for up to
 * cfg.shutdown_ms. A task still there then (one that ignores
 * cancellation, say in a shielded scope that never ends) is listed on
 * stderr with what it waits on, and abandoned: its stack is released
 * without it running again, so its cleanup code never runs and the
 * objects it was waiting on still list it. Blocking jobs cannot be
 * abandoned (their threads are waited for).
 *
 * Workers: cfg.workers threads (0 = one per core) each run tasks, with
 * their own run queue, timers and I/O driver; knit_run's thread is worker
 * 0, and main runs there. A task runs on one worker from its first run to
 * its end; tasks not yet started are taken by idle workers (half of the
 * spawner's queue, at most 64 at a time; from a queue of fewer than 16
 * tasks only once its first one has waited 0.5 ms, so that a few tasks
 * spawned together and started at once by their own worker stay
 * together; use knit_spawn_on to place one). Every primitive may
 * be used between tasks of different workers. Data a program shares
 * between its tasks needs a knit_mutex (or atomics) once there are
 * several workers; with cfg.workers = 1 tasks never run at the same time.
 * The operations of knit's primitives serialise on one runtime lock today
 * (docs/internals.md): tasks run in parallel, their channel and sync
 * operations do not.
 *
 * The manual clock (KNIT_CLOCK_MANUAL) starts at 0 and moves only when every
 * task is idle (it then jumps straight to the next timer) or when a task
 * calls knit_clock_advance(): tests of timeouts run instantly and exactly.
 * With several workers "idle" means every worker idle with nothing in
 * flight between them; cfg.seed fixes the order only with one worker.
 */
#ifndef KNIT_RT_H
#define KNIT_RT_H

#include <stdio.h>

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KNIT_CLOCK_MONOTONIC 0 /* real time, CLOCK_MONOTONIC in ms */
#define KNIT_CLOCK_MANUAL 1    /* test time: moves only when idle or told */

#define KNIT_IO_AUTO 0  /* the best backend that works here */
#define KNIT_IO_EPOLL 1 /* readiness, epoll(7) */
#define KNIT_IO_URING 2 /* completion, io_uring (networking issue) */

typedef struct knit_config {
    int workers;       /* 0 = one per core */
    size_t stack_size; /* default task stack; 0 = 64 KiB */
    int clock;         /* KNIT_CLOCK_MONOTONIC (default) | KNIT_CLOCK_MANUAL */
    int io;        /* KNIT_IO_AUTO (default) | KNIT_IO_EPOLL | KNIT_IO_URING */
    uint64_t seed; /* 0 = random; fixes scheduling order (manual clock) */
    int max_blocking_threads; /* 0 = 512 */
    int stall_ms;             /* 0 = 20; -1 = off */
    /* After main returns, how long the cancelled tasks get to end: past
     * it, the ones still there are listed on stderr and abandoned. 0 =
     * 10000 ms; -1 = wait for ever. */
    int shutdown_ms;
} knit_config;

/* Counters of the running runtime (knit_rt_stats()). */
typedef struct knit_stats {
    uint64_t seed;           /* the seed this run uses (print it on failure) */
    int workers;             /* worker threads */
    const char *io_backend;  /* "epoll" or "uring" */
    uint64_t tasks_spawned;  /* since knit_run started */
    uint64_t tasks_alive;    /* spawned and not yet finished (incl. main) */
    uint64_t switches;       /* context switches into tasks */
    uint64_t stacks_mapped;  /* stacks carved from regions so far */
    uint64_t stacks_in_use;  /* stacks owned by live tasks */
    uint64_t stacks_pooled;  /* free stacks kept for reuse */
    uint64_t stacks_guarded; /* stacks protected by a guard page */
    uint64_t stacks_canary;  /* stacks past the guard budget (no guard page;
                                checked by stack pointer and a zero canary) */
    uint64_t timers_armed;   /* timers waiting in the wheels */
    uint64_t stalls;         /* stall reports made */
    /* Added with the multi-worker scheduler. The counters above from
     * switches to timers_armed are the calling worker's own. */
    int worker;      /* the calling task's worker, 0-based */
    uint64_t steals; /* tasks this worker took from others' queues */
    uint64_t stolen; /* tasks others took from this worker's queue */
} knit_stats;

/* Fills @cfg with the defaults (all fields 0 mean default). */
KNIT_API void knit_config_default(knit_config *cfg);

/**
 * knit_run() - run main(arg) as a task and return when everything ended.
 * @cfg:  configuration, or NULL for the defaults.
 * @main: the first task.
 * @arg:  its argument.
 *
 * Call from a plain thread, not from inside a task.
 * Return: main's result; -EINVAL for a bad @cfg or a NULL @main; -EBUSY
 * when called from inside a task; -ENOMEM (or another -errno) when the
 * runtime cannot be set up.
 */
KNIT_API int knit_run(const knit_config *cfg, knit_fn main, void *arg);

/**
 * knit_clock_advance() - move the manual clock forward by @ms and fire the
 * timers that became due. Call from a task of a KNIT_CLOCK_MANUAL runtime;
 * anything else is misuse and panics. Not a cancellation point.
 */
KNIT_API void knit_clock_advance(int64_t ms);

/**
 * knit_rt_stats() - copy the current runtime's counters into @out.
 * Return: 0; -ESRCH when not called from inside a runtime.
 */
KNIT_API int knit_rt_stats(knit_stats *out);

/**
 * knit_rt_worker_stats() - knit_rt_stats() as worker @worker sees it.
 * @worker: 0 .. workers - 1.
 * @out:    filled in (out->worker == @worker).
 *
 * The per-worker counters (switches, stacks, timers, steals) belong to
 * their worker, so a short task pinned there copies them; the caller
 * waits for it, shielded from cancellation (a worker held by a task that
 * never yields delays the answer). Call from a task.
 * Return: 0; -EINVAL for a worker that does not exist; -ESRCH outside a
 * runtime, -EPERM outside a task; -ENOMEM.
 */
KNIT_API int knit_rt_worker_stats(int worker, knit_stats *out);

/**
 * knit_dump() - print every task (id, name, state, what it waits on) of
 * the current runtime to @out. A no-op outside a runtime.
 */
KNIT_API void knit_dump(FILE *out);

/**
 * knit_random() - a pseudo-random 64-bit number from the current worker's
 * generator. Seeded from cfg.seed, so a run with a fixed seed draws the
 * same numbers in the same order (jitter in retry backoff, sampling).
 * Outside a runtime it falls back to a process-wide generator. Not
 * suitable for cryptography.
 */
KNIT_API uint64_t knit_random(void);

#ifdef __cplusplus
}
#endif

#endif
