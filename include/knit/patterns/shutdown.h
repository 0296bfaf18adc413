/* SPDX-License-Identifier: MIT */
/*
 * knit/patterns/shutdown.h - a graceful shutdown coordinator: signals, a
 * root token, stop intake, drain within a grace period, cancel the rest,
 * report.
 *
 * Several workers: a coordinator may be shared by tasks on different
 * workers (spawn, trigger, force, queries).
 *
 * The steps every service takes on Ctrl-C, in one object:
 *
 *   1. Something starts the shutdown: a signal caught by
 *      knit_shutdown_listen() (SIGINT, SIGTERM), or a task calling
 *      knit_shutdown_trigger() (an admin command, a fatal error).
 *   2. Intake stops: the coordinator's token (knit_shutdown_token) is
 *      cancelled, so accept loops and producers that wait on it (in a
 *      knit_select with knit_case_token, or knit_token_wait) or check it
 *      (knit_token_is_cancelled) take no new work; knit_shutdown_spawn()
 *      refuses new tasks with -ECANCELED.
 *   3. The work in flight drains: the tasks started with
 *      knit_shutdown_spawn() keep running and may finish, for up to a
 *      grace period counted from the trigger.
 *   4. What is left is cancelled: when the grace period is over (or at
 *      once on a second signal or knit_shutdown_force()), every tracked
 *      task still running is cancelled: its blocking calls return
 *      -ECANCELED and it unwinds through its own error paths.
 *   5. knit_shutdown_wait() returns once every tracked task has ended,
 *      with a report: how many were in flight, finished, cancelled, how
 *      long it took, which signal started it.
 *
 *     knit_shutdown_coord sd;
 *     knit_shutdown_init(&sd);
 *     sigset_t set;
 *     sigemptyset(&set);
 *     sigaddset(&set, SIGINT);
 *     sigaddset(&set, SIGTERM);
 *     if ((err = knit_shutdown_listen(&sd, &set)) < 0)
 *         return err;
 *     knit_shutdown_spawn(&sd, acceptor, &srv);  // waits on the token
 *     ...
 *     knit_shutdown_report rep;
 *     knit_shutdown_wait(&sd, 5000, &rep);       // 5 s of grace
 *     knit_shutdown_destroy(&sd);
 *
 * Tracked tasks are detached: the coordinator counts them (no reaping, so
 * an accept loop may spawn one per connection for days) and runs each in
 * a scope linked to its hard-stop token. Their results are not kept; a
 * task that must report one does so through its argument.
 *
 * The first signal starts the shutdown and a second one of the set skips
 * what is left of the grace period, like pressing Ctrl-C twice.
 * Programmatically the two steps are separate calls: knit_shutdown_trigger
 * is idempotent, knit_shutdown_force cuts the grace short.
 *
 * Caller-allocated (knit_shutdown_coord, since knit_shutdown is the
 * socket call of knit/net.h); all-zero bytes are a ready coordinator (as
 * after knit_shutdown_init). Worker-local like the primitives of
 * knit/sync.h: one coordinator serves the tasks of one runtime.
 */
#ifndef KNIT_PATTERNS_SHUTDOWN_H
#define KNIT_PATTERNS_SHUTDOWN_H

#include "knit/common.h"
#include "knit/signal.h"
#include "knit/sync.h"
#include "knit/task.h"

#ifdef __cplusplus
extern "C" {
#endif

KNIT_OPAQUE(knit_shutdown_coord, 512);

/* What a shutdown did, filled in by knit_shutdown_wait(). */
typedef struct knit_shutdown_report {
    int signal;         /* the signal that started it; 0: a trigger call */
    bool forced;        /* the grace period was cut short: a second
                           signal, knit_shutdown_force(), or the waiting
                           task's own scope */
    uint64_t spawned;   /* tasks started through the coordinator, in all */
    uint64_t in_flight; /* of them, still running at the trigger */
    uint64_t finished;  /* of those, ended before the hard stop */
    uint64_t cancelled; /* of those, running at the hard stop: cancelled */
    int64_t started_at; /* knit_now() at the trigger */
    int64_t elapsed_ms; /* from the trigger until the last task ended */
} knit_shutdown_report;

/**
 * knit_shutdown_init() - make @sd a coordinator that has not been
 * triggered and tracks no task (the same as zeroing it).
 * @sd: the coordinator; any contents (an old one must be destroyed).
 *
 * Not a cancellation point; may be called outside a runtime.
 * Return: nothing.
 */
KNIT_API void knit_shutdown_init(knit_shutdown_coord *sd);

/**
 * knit_shutdown_token() - the token cancelled when the shutdown starts.
 * @sd: the coordinator.
 *
 * Intake loops wait on it (knit_case_token in a knit_select,
 * knit_token_wait) or check it (knit_token_is_cancelled) and stop taking
 * work once it is cancelled. Child tokens may be made under it
 * (knit_token_init(&child, knit_shutdown_token(sd))); destroy them
 * before knit_shutdown_destroy(). Do not cancel it directly: call
 * knit_shutdown_trigger(), which also records the time.
 * Return: the token, valid until knit_shutdown_destroy().
 */
KNIT_API knit_token *knit_shutdown_token(knit_shutdown_coord *sd);

/**
 * knit_shutdown_spawn() - start fn(arg) as a task tracked by @sd.
 * @sd:  the coordinator.
 * @fn:  the task body.
 * @arg: its argument.
 *
 * The task runs inside a scope that the hard stop cancels (the grace
 * period's end, a second signal, knit_shutdown_force). It is detached:
 * @sd counts it until it ends and keeps no result. A task spawned before
 * the trigger that has not started by the hard stop never runs @fn.
 * Not a cancellation point. Call from a task; tracked tasks may spawn
 * more.
 * Return: 0; -ECANCELED when the shutdown has started (intake is
 * closed; @fn never runs); -EINVAL when @fn is NULL; -ENOMEM.
 */
KNIT_API int knit_shutdown_spawn(knit_shutdown_coord *sd, knit_fn fn,
                                 void *arg);

/**
 * knit_shutdown_spawn_with() - knit_shutdown_spawn() with task options
 * (a name for knit_dump, a stack size).
 * @sd:  the coordinator.
 * @o:   options, or NULL; o->lazy is refused (a detached lazy task
 *       would never start).
 * @fn:  the task body.
 * @arg: its argument.
 *
 * Not a cancellation point. Call from a task.
 * Return: as knit_shutdown_spawn(); also -EINVAL when o->lazy is set,
 * and -ENOMEM for a stack size knit_spawn_with() refuses.
 */
KNIT_API int knit_shutdown_spawn_with(knit_shutdown_coord *sd,
                                      const knit_task_opts *o, knit_fn fn,
                                      void *arg);

/**
 * knit_shutdown_listen() - let the signals of @set drive @sd: the first
 * one triggers the shutdown, the next one forces it.
 * @sd:  the coordinator.
 * @set: the signals, usually SIGINT and SIGTERM; copied. As for
 *       knit_signal_wait(): not SIGKILL, SIGSTOP, SIGSEGV or SIGBUS.
 *
 * Catches @set at once (knit_signal_watch), so a signal that arrives
 * before the listening task runs is kept, not fatal; see knit/signal.h
 * for what catching means for threads and child processes. Starts one
 * task that waits for the signals; knit_shutdown_wait() and
 * knit_shutdown_destroy() stop it. Not a cancellation point. Call from a
 * task, once per coordinator.
 * Return: 0; -EALREADY when @sd already listens; -EINVAL for a NULL,
 * empty or refused @set; -ENOMEM; -EMFILE / -ENFILE when no signalfd can
 * be created.
 */
KNIT_API int knit_shutdown_listen(knit_shutdown_coord *sd, const sigset_t *set);

/**
 * knit_shutdown_trigger() - start the shutdown now: cancel the token,
 * refuse new tasks, start the grace period.
 * @sd: the coordinator.
 *
 * Idempotent: a later call changes nothing (use knit_shutdown_force to
 * skip the grace period). Not a cancellation point. Call from a task.
 * Return: nothing.
 */
KNIT_API void knit_shutdown_trigger(knit_shutdown_coord *sd);

/**
 * knit_shutdown_force() - end the grace period now: trigger the shutdown
 * if it has not started, and cancel every tracked task still running.
 * @sd: the coordinator.
 *
 * What a second Ctrl-C does. Idempotent, and a no-op once
 * knit_shutdown_wait() has returned. Not a cancellation point. Call from
 * a task.
 * Return: nothing.
 */
KNIT_API void knit_shutdown_force(knit_shutdown_coord *sd);

/**
 * knit_shutdown_is_triggered() - tell whether the shutdown has started.
 * @sd: the coordinator.
 *
 * Not a cancellation point.
 * Return: true after the trigger (a signal, a trigger or force call);
 * false before.
 */
KNIT_API bool knit_shutdown_is_triggered(const knit_shutdown_coord *sd);

/**
 * knit_shutdown_running() - count the tracked tasks that have not ended.
 * @sd: the coordinator.
 *
 * Not a cancellation point.
 * Return: the number of tasks started by knit_shutdown_spawn() still
 * running (or not yet started).
 */
KNIT_API size_t knit_shutdown_running(const knit_shutdown_coord *sd);

/**
 * knit_shutdown_wait() - wait for the shutdown to start, drain, and end.
 * @sd:       the coordinator.
 * @grace_ms: how long tracked tasks may keep running after the trigger
 *            before they are cancelled, counted from the trigger (not
 *            from this call); KNIT_FOREVER or any negative value: no
 *            limit (only a force or a second signal cancels them).
 * @report:   out, may be NULL; what happened.
 *
 * Waits for the trigger, then until every tracked task has ended or the
 * grace period is over, then cancels the tasks still running and waits
 * for them to end (they run their own cleanup; a task that ignores
 * cancellation delays this), then stops the signal listener. When the
 * caller's scope fires first (before or during the shutdown), the
 * shutdown is forced and every tracked task is still awaited, so no
 * tracked task outlives this call. Once it has returned, later calls
 * return 0 at once with the same report.
 *
 * Cancellation point. Call from a task, one at a time, and not from a
 * tracked task (it would wait for itself).
 * Return: 0; -ECANCELED / -ETIMEDOUT when the caller's scope fired (the
 * shutdown was forced and completed; @report is filled); -EBUSY when
 * another task is in knit_shutdown_wait(@sd).
 */
KNIT_API int knit_shutdown_wait(knit_shutdown_coord *sd, int64_t grace_ms,
                                knit_shutdown_report *report);

/**
 * knit_shutdown_destroy() - end @sd's life; its storage may then be
 * reused.
 * @sd: the coordinator; no tracked task may be running.
 *
 * Stops the signal listener if knit_shutdown_wait() did not (waiting,
 * shielded, for that task to end, which is immediate) and unlinks the
 * tokens. Not a cancellation point. Call from a task. Panics when tracked
 * tasks are still running, when a task is in knit_shutdown_wait(@sd), or
 * (through knit_token_destroy) when tasks wait on the token.
 * Return: nothing.
 */
KNIT_API void knit_shutdown_destroy(knit_shutdown_coord *sd);

#ifdef __cplusplus
}
#endif

#endif
