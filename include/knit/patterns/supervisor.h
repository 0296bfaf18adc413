/* SPDX-License-Identifier: MIT */
/*
 * knit/patterns/supervisor.h - supervisors: start child tasks from specs,
 * restart them when they end, give up when they fail too often (Erlang/
 * OTP's supervisor, with exponential backoff between restarts).
 *
 * Several workers: the children may run on other workers than the
 * supervisor; on_event always runs in the supervisor's own task.
 *
 *     static const knit_child_spec kids[] = {
 *         {.name = "db",     .start = db_main},
 *         {.name = "worker", .start = worker_main,
 *          .restart = KNIT_CHILD_TRANSIENT},
 *     };
 *     knit_backoff_policy bo = {.initial_ms = 100, .max_ms = 5000};
 *     knit_supervisor_opts o = {.strategy = KNIT_SUP_REST_FOR_ONE,
 *                               .max_restarts = 3, .window_ms = 5000,
 *                               .backoff = &bo};
 *     knit_supervisor_report rep;
 *     err = knit_supervisor_run(&o, kids, 2, &rep);   // blocks
 *
 * knit_supervisor_run() is the supervisor: it runs in the calling task,
 * starts every child in order, each as its own task, and waits. When a
 * child ends, its restart type decides whether it is restarted:
 *
 *   KNIT_CHILD_PERMANENT  always, whatever it returned
 *   KNIT_CHILD_TRANSIENT  only when it failed (returned < 0)
 *   KNIT_CHILD_TEMPORARY  never
 *
 * and the strategy decides which children restart with it:
 *
 *   KNIT_SUP_ONE_FOR_ONE  only that child
 *   KNIT_SUP_ONE_FOR_ALL  every child: the others are stopped (in reverse
 *                         start order) and all restart (in start order)
 *   KNIT_SUP_REST_FOR_ONE that child and the ones started after it
 *
 * A sibling stopped for a restart is restarted whatever it returned,
 * except a temporary one, which is not restarted (as in OTP); a child
 * that ended for good (a transient one that succeeded, a temporary one)
 * is not revived by a sibling's restart.
 *
 * Stopping a child is cooperative, like all cancellation in knit: the
 * child's blocking calls return -ECANCELED and the supervisor waits until
 * it returns. A child that ignores cancellation holds its supervisor up.
 *
 * Restart intensity: a child's failure that needs a restart is counted
 * when it happens. When max_restarts restarts were already counted within
 * the last window_ms (a restart exactly window_ms old has left the
 * window), the supervisor gives up instead: it stops every child and
 * returns -ELOOP, and the report names the child. Before each restart the
 * supervisor waits as knit_backoff says (per child; the waits are not
 * counted in the window), watching the other children all the while. A
 * child that ran for window_ms or more before it ended starts its
 * backoff over.
 *
 * Shutdown: when the caller's scope fires (cancellation, deadline, or the
 * supervisor's task cancelled), the supervisor stops its children one at
 * a time in reverse start order, each waited for before the next is
 * cancelled, and returns the scope's error. No child outlives
 * knit_supervisor_run(). Supervisors nest: a child may run its own.
 *
 * Every step is reported to opts.on_event, in the supervisor's task, as it
 * happens, so a program can log restarts or export metrics.
 *
 * Worker-local, like the primitives of knit/sync.h.
 */
#ifndef KNIT_PATTERNS_SUPERVISOR_H
#define KNIT_PATTERNS_SUPERVISOR_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct knit_backoff_policy;

/* When a child is restarted (see the overview). */
typedef enum knit_child_restart {
    KNIT_CHILD_PERMANENT, /* always: the default */
    KNIT_CHILD_TRANSIENT, /* only after a failure (a result < 0) */
    KNIT_CHILD_TEMPORARY, /* never */
} knit_child_restart;

/* Which children restart together (see the overview). */
typedef enum knit_sup_strategy {
    KNIT_SUP_ONE_FOR_ONE, /* the default */
    KNIT_SUP_ONE_FOR_ALL,
    KNIT_SUP_REST_FOR_ONE,
} knit_sup_strategy;

/* One child: what to run and when to run it again. */
typedef struct knit_child_spec {
    const char *name; /* its task's name and the name in events; may be
                         NULL ("") */
    knit_fn start;    /* the child's body, start(arg); its result decides
                         a transient child's restart */
    void *arg;        /* passed to start, the same at every restart */
    knit_child_restart restart; /* KNIT_CHILD_PERMANENT by default */
    size_t stack_size;          /* its task's stack; 0: the default */
} knit_child_spec;

/* What happened (knit_supervisor_event.kind). */
typedef enum knit_sup_event_kind {
    KNIT_SUP_STARTED,    /* the child's task was started; restarts: how
                            many times it was restarted before */
    KNIT_SUP_EXITED,     /* the child returned on its own; result */
    KNIT_SUP_STOPPED,    /* the child returned after the supervisor
                            cancelled it (sibling restart, shutdown); result */
    KNIT_SUP_RESTARTING, /* the child will start again after delay_ms */
    KNIT_SUP_GAVE_UP,    /* restarting the child would exceed the
                            intensity; result: its last result; restarts:
                            the restarts counted in the window */
    KNIT_SUP_SHUTDOWN,   /* the supervisor stops its children; child -1;
                            result: why (-ELOOP, -ECANCELED, -ETIMEDOUT,
                            -ENOMEM) */
} knit_sup_event_kind;

/* One event, valid during the on_event call. */
typedef struct knit_supervisor_event {
    knit_sup_event_kind kind;
    int child;        /* index in the specs; -1 for the supervisor */
    const char *name; /* the child's name ("" when none or for -1) */
    int result;       /* see the kinds; 0 otherwise */
    int64_t delay_ms; /* RESTARTING: the wait before the restart */
    int restarts;     /* see the kinds; 0 otherwise */
} knit_supervisor_event;

/* How the supervisor behaves; all-zero (or NULL) means the defaults. */
typedef struct knit_supervisor_opts {
    knit_sup_strategy strategy; /* KNIT_SUP_ONE_FOR_ONE by default */
    /* The intensity: restarts allowed within window_ms; 0: 3; < 0: none
     * (the first restart gives up). */
    int max_restarts;
    int64_t window_ms; /* the intensity window; <= 0: 5000 */
    /* The delays before restarts, per child; NULL: restart at once (as
     * OTP does). Its max_attempts is not used: the intensity bounds the
     * restarts. Jitter draws from knit_random(). */
    const struct knit_backoff_policy *backoff;
    /* Called for every event, in the supervisor's task; NULL: none. It
     * should not block: the supervisor does nothing else meanwhile. */
    void (*on_event)(const knit_supervisor_event *ev, void *arg);
    void *event_arg; /* passed to on_event */
} knit_supervisor_opts;

/* How knit_supervisor_run() ended. */
typedef struct knit_supervisor_report {
    int child;    /* the child that exceeded the intensity, or -1 */
    int error;    /* that child's last result (0 when child is -1) */
    int restarts; /* restarts counted in all: one per failure, however
                     many children it restarted */
} knit_supervisor_report;

/**
 * knit_supervisor_run() - start @n children from @children and supervise
 * them until none is left to run, the intensity is exceeded or the
 * caller's scope fires.
 * @o:        options, or NULL for the defaults.
 * @children: @n specs (copied pointers: the names and args must live
 *            until this returns).
 * @n:        the number of children, >= 1.
 * @report:   out, may be NULL; filled on every return but -EINVAL.
 *
 * Cancellation point: blocks for as long as the children are supervised.
 * Call from a task. Every child has ended when it returns.
 * Return: 0 when every child ended for good (no permanent child left, no
 * transient one failing); -ELOOP when a restart would exceed the
 * intensity (every child stopped; @report names the child); -ECANCELED /
 * -ETIMEDOUT when the caller's scope fired (every child stopped);
 * -ENOMEM when a child's task could not be spawned (every child
 * stopped); -EINVAL for a NULL @children, @n < 1, a spec without start,
 * or an unknown strategy or restart type (nothing started).
 */
KNIT_API int knit_supervisor_run(const knit_supervisor_opts *o,
                                 const knit_child_spec *children, int n,
                                 knit_supervisor_report *report);

/**
 * knit_sup_event_name() - a name for an event kind, for logs.
 * @kind: a knit_sup_event_kind.
 *
 * Return: "started", "exited", "stopped", "restarting", "gave up",
 * "shutdown", or "?" for an unknown value.
 */
KNIT_API const char *knit_sup_event_name(int kind);

#ifdef __cplusplus
}
#endif

#endif
