/* SPDX-License-Identifier: MIT */
/*
 * knit/scope.h - cancel scopes: deadlines and cancellation with structure.
 *
 * A scope is a region of a task's code with an optional deadline:
 *
 *     knit_scope s;
 *     knit_scope_enter(&s, knit_now() + 5000);
 *     err = fetch(url);              // its blocking calls see the deadline
 *     if (knit_scope_exit(&s) == -ETIMEDOUT) ...
 *
 * When a scope fires (its deadline passes or knit_scope_cancel() is called)
 * every blocking call inside it, in this task, returns at once with
 * -ETIMEDOUT or -ECANCELED, every time, until the scope is exited; a task
 * parked inside it is woken. When both kinds have fired, -ECANCELED wins.
 * Scopes nest: an inner blocking call sees every enclosing scope, so the
 * effective deadline is the minimum. A shielded scope hides the enclosing
 * scopes, which is how cleanup code gets to run (give the shield its own
 * deadline so cleanup is bounded).
 *
 * Scopes live on the task's stack and must be exited in reverse order of
 * entry, by the task that entered them.
 */
#ifndef KNIT_SCOPE_H
#define KNIT_SCOPE_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

KNIT_OPAQUE(knit_scope, 192);

/**
 * knit_scope_enter() - open a scope in the current task.
 * @s:        caller-allocated scope, any contents.
 * @deadline: absolute time on knit_now()'s clock, or KNIT_FOREVER. A
 *            deadline already passed makes the scope fired from the start.
 * Call from a task; not a cancellation point.
 */
KNIT_API void knit_scope_enter(knit_scope *s, int64_t deadline);

/* knit_scope_enter() for a shielded scope (see the overview). */
KNIT_API void knit_scope_enter_shielded(knit_scope *s, int64_t deadline);

/**
 * knit_scope_exit() - close the innermost scope @s.
 * Return: 0 when it did not fire; -ETIMEDOUT when its deadline passed;
 * -ECANCELED when it was cancelled (the first of the two wins). Exiting a
 * scope that is not the innermost one panics.
 */
KNIT_API int knit_scope_exit(knit_scope *s);

/*
 * Cancels @s: blocking calls inside it return -ECANCELED. May be called by
 * any task of the same runtime while @s is entered. Idempotent.
 */
KNIT_API void knit_scope_cancel(knit_scope *s);

struct knit_token;

/*
 * Links @s to the cancellation token @tok (knit/sync.h): cancelling the
 * token (or an ancestor of it) cancels @s, as knit_scope_cancel would, for
 * as long as @s is entered. A token already cancelled cancels @s now. One
 * token per scope; call from the task that entered @s.
 */
KNIT_API void knit_scope_link_token(knit_scope *s, struct knit_token *tok);

/* True when @s has fired (deadline passed or cancelled). */
KNIT_API bool knit_scope_is_fired(const knit_scope *s);

/*
 * The effective deadline inside @s: the earliest deadline of @s and the
 * scopes around it up to the nearest shield, or KNIT_FOREVER.
 */
KNIT_API int64_t knit_scope_deadline(const knit_scope *s);

/**
 * knit_timeout() - run fn(arg) inside a scope whose deadline is @ms from
 * now (KNIT_FOREVER or a negative @ms: no deadline).
 *
 * Cancellation point (through fn). When the deadline fires, fn's blocking
 * calls return -ETIMEDOUT and fn is expected to return an error soon.
 * Return: fn's result when it is >= 0, even if the deadline fired after
 * fn's last blocking call; -ETIMEDOUT when the deadline fired and fn
 * failed; -ECANCELED (fn's result) when the task was cancelled, which
 * outranks the deadline; otherwise fn's own error.
 */
KNIT_API int knit_timeout(int64_t ms, knit_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
