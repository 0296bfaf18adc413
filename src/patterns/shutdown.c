// SPDX-License-Identifier: MIT
/*
 * The graceful shutdown coordinator (knit/patterns/shutdown.h): state and
 * accounting, the tracked tasks' wrapper, the signal listener, then
 * knit_shutdown_wait, which runs the shutdown's steps in order.
 *
 * Two tokens carry the two stages. `stop` is the public one: cancelling
 * it stops intake. `hard` is private: every tracked task runs its body in
 * a scope linked to it, so cancelling it is the hard stop, and the wait's
 * grace scope is linked to it too, so a force (a second signal) ends the
 * grace early. Tracked tasks are detached and counted in a waitgroup
 * instead of a group: nothing needs reaping, any task may spawn into the
 * coordinator, and draining is knit_waitgroup_wait.
 *
 * Several workers. The flags and the report are read and written under
 * the coordinator's spin lock `lk` (never held across a park); a spawn
 * checks the trigger and counts its task in one critical section with
 * the trigger's, so in_flight counts exactly the tasks admitted before.
 *
 * Built only on the public API (DESIGN section 4, layering).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>
#include "patterns/misuse.h"

/* knit_shutdown_coord's layout. All-zero bytes are a ready coordinator. */
struct shutdown {
    knit_token stop;             /* cancelled at the trigger: no intake */
    knit_token hard;             /* cancelled at the hard stop */
    knit_waitgroup live;         /* tracked tasks not yet ended */
    sigset_t sigs;               /* the listener's set */
    knit_task *listener;         /* the signal task, or NULL */
    knit__pspin lk;              /* guards the fields below */
    knit_shutdown_report report; /* filled in as the shutdown goes */
    atomic_bool triggered;       /* the trigger happened */
    bool hard_stopped;           /* the hard stop happened */
    bool waiting;                /* a task is in knit_shutdown_wait */
    bool done;                   /* knit_shutdown_wait has returned */
};

_Static_assert(sizeof(knit_shutdown_coord) >= sizeof(struct shutdown),
               "grow knit_shutdown_coord");

static inline struct shutdown *impl(knit_shutdown_coord *sd)
{
    return (struct shutdown *)(void *)sd;
}

static inline const struct shutdown *cimpl(const knit_shutdown_coord *sd)
{
    return (const struct shutdown *)(const void *)sd;
}

void knit_shutdown_init(knit_shutdown_coord *sd)
{
    memset(impl(sd), 0, sizeof(struct shutdown));
}

knit_token *knit_shutdown_token(knit_shutdown_coord *sd)
{
    return &impl(sd)->stop;
}

bool knit_shutdown_is_triggered(const knit_shutdown_coord *sd)
{
    return atomic_load_explicit(&cimpl(sd)->triggered, memory_order_acquire);
}

size_t knit_shutdown_running(const knit_shutdown_coord *sd)
{
    return (size_t)knit_waitgroup_count(&cimpl(sd)->live);
}

/* ---- the two stages ------------------------------------------------------ */

/* Returns whether this call was the trigger. */
static bool trigger(struct shutdown *x, int sig)
{
    int64_t now = knit_now();
    knit__pspin_lock(&x->lk);
    bool first = !atomic_load_explicit(&x->triggered, memory_order_relaxed);
    if (first) {
        atomic_store_explicit(&x->triggered, true, memory_order_release);
        x->report.signal = sig;
        x->report.started_at = now;
        x->report.in_flight = (uint64_t)knit_waitgroup_count(&x->live);
    }
    knit__pspin_unlock(&x->lk);
    if (first)
        knit_token_cancel(&x->stop);
    return first;
}

/* Cancels the tasks still running. @forced: before the grace was over. */
static void hard_stop(struct shutdown *x, bool forced)
{
    (void)trigger(x, 0);
    knit__pspin_lock(&x->lk);
    bool skip = x->hard_stopped || x->done;
    if (!skip) {
        x->hard_stopped = true;
        x->report.forced = forced;
        /* No task can join after the trigger, so the ones running now
         * are exactly the in-flight tasks that did not finish in time. */
        x->report.cancelled = (uint64_t)knit_waitgroup_count(&x->live);
    }
    knit__pspin_unlock(&x->lk);
    if (!skip)
        knit_token_cancel(&x->hard);
}

void knit_shutdown_trigger(knit_shutdown_coord *sd)
{
    trigger(impl(sd), 0);
}

void knit_shutdown_force(knit_shutdown_coord *sd)
{
    hard_stop(impl(sd), true);
}

/* ---- tracked tasks ------------------------------------------------------- */

struct job {
    struct shutdown *x;
    knit_fn fn;
    void *arg;
};

static int run_job(void *arg)
{
    struct job j = *(struct job *)arg;
    free(arg);
    struct shutdown *x = j.x;
    int r = -ECANCELED;
    /* Like a task cancelled before it started: the hard stop came first. */
    if (!knit_token_is_cancelled(&x->hard)) {
        knit_scope s;
        knit_scope_enter(&s, KNIT_FOREVER);
        knit_scope_link_token(&s, &x->hard);
        r = j.fn(j.arg);
        knit_scope_exit(&s);
    }
    knit_waitgroup_done(&x->live); /* last: x may go away after this */
    return r;
}

int knit_shutdown_spawn_with(knit_shutdown_coord *sd, const knit_task_opts *o,
                             knit_fn fn, void *arg)
{
    struct shutdown *x = impl(sd);
    if (!fn || (o && o->lazy))
        return -EINVAL;
    if (atomic_load_explicit(&x->triggered, memory_order_acquire))
        return -ECANCELED;
    struct job *j = malloc(sizeof(*j));
    if (!j)
        return -ENOMEM;
    *j = (struct job){x, fn, arg};
    /* Counted before it can run, so it cannot be counted out first; and
     * under the lock, so that a trigger either counts it or refuses it. */
    knit__pspin_lock(&x->lk);
    bool late = atomic_load_explicit(&x->triggered, memory_order_relaxed);
    if (!late)
        knit_waitgroup_add(&x->live, 1);
    knit__pspin_unlock(&x->lk);
    if (late) {
        free(j);
        return -ECANCELED;
    }
    knit_task *t = knit_spawn_with(o, run_job, j);
    if (!t) {
        knit_waitgroup_done(&x->live);
        free(j);
        return -ENOMEM;
    }
    knit_detach(t);
    knit__pspin_lock(&x->lk);
    x->report.spawned++;
    knit__pspin_unlock(&x->lk);
    return 0;
}

int knit_shutdown_spawn(knit_shutdown_coord *sd, knit_fn fn, void *arg)
{
    return knit_shutdown_spawn_with(sd, NULL, fn, arg);
}

/* ---- signals ------------------------------------------------------------- */

static int listen_task(void *arg)
{
    struct shutdown *x = arg;
    for (;;) {
        int sig = knit_signal_wait(&x->sigs);
        if (sig < 0)
            return sig == -ECANCELED ? 0 : sig; /* stopped by wait/destroy */
        if (!trigger(x, sig)) {
            hard_stop(x, true); /* a second Ctrl-C: no more grace */
            return 0;
        }
    }
}

int knit_shutdown_listen(knit_shutdown_coord *sd, const sigset_t *set)
{
    struct shutdown *x = impl(sd);
    if (x->listener)
        return -EALREADY;
    if (!set)
        return -EINVAL;
    /* Catch now: the listener runs later, and a signal arriving in
     * between must be kept, not kill the process. */
    int err = knit_signal_watch(set);
    if (err < 0)
        return err;
    x->sigs = *set;
    knit_task_opts o = {.name = "shutdown-signals"};
    x->listener = knit_spawn_with(&o, listen_task, x);
    return x->listener ? 0 : -ENOMEM;
}

/* Cancels and joins the listener. Shielded: whoever calls this must not
 * leave it running, whatever its own scope says. */
static void stop_listener(struct shutdown *x)
{
    if (!x->listener)
        return;
    knit_cancel(x->listener);
    knit_scope s;
    knit_scope_enter_shielded(&s, KNIT_FOREVER);
    (void)knit_join(x->listener);
    knit_scope_exit(&s);
    x->listener = NULL;
}

/* ---- wait and destroy ---------------------------------------------------- */

/*
 * The caller's scope error, or 0. knit_token_wait checks the scopes
 * before anything else, and on the stop token, cancelled by now, it
 * never parks: a probe that neither waits nor lets other tasks run.
 */
static int caller_scope_err(struct shutdown *x)
{
    return knit_token_wait(&x->stop);
}

/* Step 3: drain within the grace. Returns the caller's scope error. */
static int drain(struct shutdown *x, int64_t grace_ms)
{
    if (knit_waitgroup_count(&x->live) == 0)
        return caller_scope_err(x);
    knit__pspin_lock(&x->lk);
    int64_t started = x->report.started_at;
    knit__pspin_unlock(&x->lk);
    int64_t deadline = grace_ms < 0 ? KNIT_FOREVER : started + grace_ms;
    knit_scope grace;
    knit_scope_enter(&grace, deadline);
    knit_scope_link_token(&grace, &x->hard); /* a force ends the grace */
    int err = knit_waitgroup_wait(&x->live);
    knit_scope_exit(&grace);
    if (err == 0)
        return 0;
    /* The grace ended (its deadline, or a force), or the caller's own
     * scope fired: in every case, cancel what is left. */
    int cerr = caller_scope_err(x);
    hard_stop(x, cerr != 0); /* does nothing after a force */
    return cerr;
}

int knit_shutdown_wait(knit_shutdown_coord *sd, int64_t grace_ms,
                       knit_shutdown_report *report)
{
    struct shutdown *x = impl(sd);
    knit__pspin_lock(&x->lk);
    int busy = x->done ? 1 : x->waiting ? -EBUSY : 0;
    if (x->done && report)
        *report = x->report; /* it is over: the same report again */
    if (!busy)
        x->waiting = true;
    knit__pspin_unlock(&x->lk);
    if (busy)
        return busy > 0 ? 0 : busy;

    int err = knit_token_wait(&x->stop); /* steps 1 and 2: the trigger */
    if (err < 0)
        hard_stop(x, true); /* the caller is going away: no grace */
    else
        err = drain(x, grace_ms);

    /* Step 4: the cancelled tasks unwind; wait for every one of them. */
    knit_scope s;
    knit_scope_enter_shielded(&s, KNIT_FOREVER);
    (void)knit_waitgroup_wait(&x->live);
    knit_scope_exit(&s);
    int64_t now = knit_now();
    stop_listener(x);
    knit__pspin_lock(&x->lk);
    x->report.elapsed_ms = now - x->report.started_at;
    x->report.finished = x->report.in_flight - x->report.cancelled;
    x->waiting = false;
    x->done = true;
    if (report)
        *report = x->report;
    knit__pspin_unlock(&x->lk);
    return err;
}

void knit_shutdown_destroy(knit_shutdown_coord *sd)
{
    struct shutdown *x = impl(sd);
    knit__pspin_lock(&x->lk);
    bool waiting = x->waiting;
    knit__pspin_unlock(&x->lk);
    if (waiting)
        knit__pattern_misuse(
            "knit_shutdown_destroy: a task is in knit_shutdown_wait");
    if (knit_waitgroup_count(&x->live) != 0)
        knit__pattern_misuse(
            "knit_shutdown_destroy: tracked tasks are still running");
    stop_listener(x);
    knit_token_destroy(&x->stop);
    knit_token_destroy(&x->hard);
    memset(x, 0, sizeof(*x));
}
