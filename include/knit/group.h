/* SPDX-License-Identifier: MIT */
/*
 * knit/group.h - task groups (nurseries, tokio's JoinSet and try_join!).
 *
 * A group owns the tasks spawned into it. knit_group_next() hands back
 * results in completion order; knit_group_wait() waits for all of them.
 * With KNIT_GROUP_FAIL_FAST the first task that returns an error (< 0)
 * cancels the others. If the task waiting on the group is cancelled or its
 * deadline passes, knit_group_wait() cancels the children and still waits
 * for them before returning, so no child ever outlives its group.
 *
 *     knit_group g;
 *     knit_group_init(&g, KNIT_GROUP_FAIL_FAST);
 *     for (i = 0; i < n; i++)
 *         knit_group_spawn(&g, fetch, urls[i]);
 *     err = knit_group_wait(&g);
 *
 * A group lives on its owner's stack and is used by the task that
 * initialised it. Returning from that task while the group still holds
 * tasks is a bug: knit reports it loudly (and aborts in debug builds).
 */
#ifndef KNIT_GROUP_H
#define KNIT_GROUP_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KNIT_GROUP_FAIL_FAST 1u /* first error cancels the rest */

KNIT_OPAQUE(knit_group, 128);

/* Initialises @g for the current task. @flags: 0 or KNIT_GROUP_FAIL_FAST. */
KNIT_API void knit_group_init(knit_group *g, unsigned flags);

/**
 * knit_group_spawn() - start fn(arg) as a task owned by @g.
 * Not a cancellation point.
 * Return: 0; -ENOMEM (fn never runs); -ECANCELED when @g was cancelled.
 */
KNIT_API int knit_group_spawn(knit_group *g, knit_fn fn, void *arg);

/**
 * knit_group_next() - wait for the next task of @g to end and reap it.
 * @result: out; the task's return value.
 * Cancellation point.
 * Return: 0; -EPIPE when the group holds no task; -ECANCELED / -ETIMEDOUT
 * when the caller's scope fired (the tasks keep running).
 */
KNIT_API int knit_group_next(knit_group *g, int *result);

/**
 * knit_group_wait() - wait until every task of @g has ended, and reap them.
 * Cancellation point; on cancellation it cancels the tasks and waits for
 * them anyway (shielded), then returns.
 * Return: 0; the first error a task returned (-ECANCELED results caused by
 * cancelling the group do not count); -ECANCELED / -ETIMEDOUT when the
 * caller's scope fired.
 */
KNIT_API int knit_group_wait(knit_group *g);

/* Cancels every task of @g; later spawns fail with -ECANCELED. */
KNIT_API void knit_group_cancel(knit_group *g);

/* Number of tasks @g holds (running or ended but not yet reaped). */
KNIT_API size_t knit_group_len(const knit_group *g);

/**
 * knit_race() - run fns[i](args[i]) for i < n; the first to end wins.
 * The others are cancelled and awaited before knit_race returns.
 * @winner: out, may be NULL; the index of the winning function.
 * Cancellation point.
 * Return: the winner's result; -EINVAL when n < 1; -ENOMEM when a task
 * could not be spawned; -ECANCELED / -ETIMEDOUT when the caller's scope
 * fired first.
 */
KNIT_API int knit_race(int n, const knit_fn *fns, void *const *args,
                       int *winner);

#ifdef __cplusplus
}
#endif

#endif
