/* SPDX-License-Identifier: MIT */
/*
 * knit/blocking.h - run blocking work (a syscall that cannot be made
 * asynchronous, a C library that blocks, CPU-heavy work) on a pool of
 * plain threads, so that it never freezes a worker (tokio's
 * spawn_blocking).
 *
 * knit_spawn_blocking returns an ordinary task handle: knit_join waits
 * for the job and returns its result, and the joiner can be cancelled or
 * time out promptly like any task. The job itself cannot be interrupted:
 * it runs to its end on its thread and its result is then dropped (or
 * kept for a later join). A job must not call knit functions that need a
 * task (it runs on a plain thread); the _blocking channel calls are fine.
 *
 * The pool is elastic: threads are started on demand up to
 * cfg.max_blocking_threads (default 512) and leave after 10 s idle.
 * Separate pools serve DNS lookups and file I/O (knit_resolve, file
 * helpers), so a stuck resolver cannot starve file reads or user jobs.
 */
#ifndef KNIT_BLOCKING_H
#define KNIT_BLOCKING_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * knit_spawn_blocking() - run fn(arg) on a blocking-pool thread.
 * Call from a task. Not a cancellation point.
 * Return: a task handle to join or detach; NULL when out of memory.
 */
KNIT_API knit_task *knit_spawn_blocking(knit_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
