/* SPDX-License-Identifier: MIT */
/*
 * knit/task.h - tasks: spawn, join, detach, cancel, yield, task-locals.
 *
 * A task is a C function `int fn(void *arg)` running on its own small
 * stack (64 KiB by default, committed lazily, so a million idle tasks fit
 * in memory). Every blocking knit call parks the task and lets the worker
 * run others. A started task never changes threads, so thread-locals and
 * errno stay valid inside it.
 *
 * Ownership: knit_spawn() returns a handle that must be given back exactly
 * once, by knit_join() (which waits and returns the result) or by
 * knit_detach() (the task is freed when it ends). Tasks spawned into a
 * group (knit/group.h) belong to the group instead.
 *
 * Cancellation: knit_cancel() cancels the task's root scope, so each
 * blocking call in it returns -ECANCELED (except inside a shielded scope)
 * until it returns. A task cancelled before it started never runs.
 */
#ifndef KNIT_TASK_H
#define KNIT_TASK_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options for knit_spawn_with(); all-zero means the defaults. */
typedef struct knit_task_opts {
    const char *name;  /* shown by knit_dump and panics; copied (31 chars) */
    size_t stack_size; /* 0 = the runtime's default */
    bool lazy;         /* start only when first joined (or knit_task_start) */
} knit_task_opts;

/* Most task-local keys a process may create. */
#define KNIT_TASK_LOCALS 16

/**
 * knit_spawn() - start fn(arg) as a new task.
 *
 * It goes on the current worker's queue of tasks not yet started; with
 * several workers an idle one may take it before it first runs. Once it
 * runs, it stays on that worker to the end (thread-locals and errno are
 * safe in tasks). Safe from any task. Not a cancellation point.
 * Return: the task handle; NULL when out of memory (fn never runs).
 */
KNIT_API knit_task *knit_spawn(knit_fn fn, void *arg);

/**
 * knit_spawn_with() - knit_spawn() with a name, a stack size or lazy start.
 * @o: options, or NULL for the defaults.
 * Return: the task handle; NULL when out of memory or when a stack size
 * below 8 KiB or above 1 GiB is asked for (fn never runs).
 */
KNIT_API knit_task *knit_spawn_with(const knit_task_opts *o, knit_fn fn,
                                    void *arg);

/**
 * knit_spawn_on() - knit_spawn_with() on worker @worker (0-based), which
 * it never leaves: no other worker takes it. For affinity (a task that
 * owns a worker-local resource) and for tests.
 * Return: the task handle; NULL with errno EINVAL for a worker that does
 * not exist or bad options, ENOMEM when out of memory (fn never runs).
 */
KNIT_API knit_task *knit_spawn_on(int worker, const knit_task_opts *o,
                                  knit_fn fn, void *arg);

/*
 * A way into a running runtime from any thread (tokio's Handle): a plain
 * thread, a blocking job, a library callback. Refcounted; it outlives
 * the runtime, whose end only closes it.
 */
typedef struct knit_handle knit_handle;

/**
 * knit_handle_get() - a new reference to the current runtime's handle.
 * Call from a task (or a worker); give it to other threads.
 * Return: the handle; NULL outside a runtime or when out of memory.
 */
KNIT_API knit_handle *knit_handle_get(void);

/* Drops a reference from knit_handle_get(); the last one frees it. NULL
 * is ignored. Any thread, also after the runtime ended. */
KNIT_API void knit_handle_unref(knit_handle *h);

/**
 * knit_handle_spawn() - start fn(arg) as a detached task of @h's runtime,
 * from any thread.
 * @o: options (name, stack size; lazy is refused), or NULL.
 *
 * From a task of that runtime it is knit_spawn_with() + knit_detach().
 * From anywhere else the spawn is handed to worker 0 (its inbox) and the
 * call returns at once; the task goes on worker 0's queue of tasks not
 * yet started, where idle workers steal it. A task handed over before
 * main returned but not started by then is cancelled before it runs, as
 * every task not yet started is at shutdown; results therefore go back
 * through a channel (knit_chan_recv_blocking) or the like, not a join.
 * Not a cancellation point; never blocks on the runtime.
 * Return: 0 (handed over); -EINVAL for a NULL @h or @fn, a lazy task or a
 * bad stack size; -ESHUTDOWN once the runtime's main has returned;
 * -ENOMEM.
 */
KNIT_API int knit_handle_spawn(knit_handle *h, const knit_task_opts *o,
                               knit_fn fn, void *arg);

/* The 0-based index of the worker the calling task runs on; -1 outside a
 * runtime. */
KNIT_API int knit_worker_id(void);

/**
 * knit_join() - wait for @t to end, free it and return its result.
 *
 * Cancellation point. Starts a lazy task.
 * Return: fn's return value; -ECANCELED when @t was cancelled before it
 * started. When the caller's own scope fires first, returns -ECANCELED or
 * -ETIMEDOUT and @t is left running and valid: join it again, cancel it or
 * detach it. Joining twice, or joining a detached task, panics.
 */
KNIT_API int knit_join(knit_task *t);

/* Gives up the handle: @t is freed when it ends. Not a cancellation point. */
KNIT_API void knit_detach(knit_task *t);

/*
 * Cancels @t's root scope: its blocking calls return -ECANCELED from now on
 * (shielded scopes excepted). A task that has not started never runs and
 * ends with -ECANCELED: at once, or with several workers when a worker
 * takes it off its spawner's queue (the queues are drained promptly; a
 * join waits until then). Cancelling a finished task does nothing.
 */
KNIT_API void knit_cancel(knit_task *t);

/* Starts a lazy task now (knit_join does it too); a no-op otherwise. */
KNIT_API void knit_task_start(knit_task *t);

/**
 * knit_yield() - let every other runnable task run once.
 * Cancellation point.
 * Return: 0; -ECANCELED / -ETIMEDOUT when the current scope has fired.
 */
KNIT_API int knit_yield(void);

/* The running task, or NULL outside a task. */
KNIT_API knit_task *knit_current(void);

/* The task's id (unique within the process, starting at 1). */
KNIT_API uint64_t knit_task_id(const knit_task *t);

/* The task's name ("" when it has none). */
KNIT_API const char *knit_task_name(const knit_task *t);

/**
 * knit_task_local_new() - create a task-local key.
 * @dtor: called with a task's non-NULL value when that task ends, on the
 * task's worker as the last of its code (with several workers, at the same
 * time as other workers' tasks: data it shares needs atomics or a lock);
 * may be NULL.
 * Return: the key (>= 0); -EAGAIN when all KNIT_TASK_LOCALS keys are used.
 */
KNIT_API int knit_task_local_new(void (*dtor)(void *value));

/* The current task's value for @key (NULL when unset or outside a task). */
KNIT_API void *knit_task_local_get(int key);

/**
 * knit_task_local_set() - set the current task's value for @key.
 * Return: 0; -EINVAL for a bad key; -ESRCH outside a task.
 */
KNIT_API int knit_task_local_set(int key, void *value);

#ifdef __cplusplus
}
#endif

#endif
