// SPDX-License-Identifier: MIT
/*
 * The scheduler: switching between tasks, the run queue, task start and
 * end, and the worker loop that runs timers and the I/O driver.
 *
 * Switching. A task that parks or yields switches straight to the next
 * runnable task (one context switch, no trip through the loop). Every
 * KNIT_POLL_EVERY switches, and whenever the run queue is empty, it
 * switches to the worker's own context instead, which refreshes the clock,
 * fires timers and polls the driver, so a busy run queue cannot starve
 * timers or I/O. A task that ends always returns to the worker context,
 * which frees its stack (one cannot free the stack one runs on).
 *
 * Divisions: fiber switch with sanitizer annotations; run queue; entry and
 * end of a task; parking; the worker loop.
 */
#include "core/sched.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/compiler.h"
#include "core/remote.h"

#ifdef KNIT_ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef KNIT_TSAN
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_destroy_fiber(void *fiber);
#endif

/* Spare stacks beyond the warm reserve get their pages given back at
 * most TRIM_BATCH per TRIM_PERIOD_MS (each costs a TLB flush). */
#define TRIM_PERIOD_MS 10
#define TRIM_BATCH 16

/* Switches into tasks between two visits of the worker loop (power of 2). */
#define KNIT_POLL_EVERY 64u

KNIT_TLS struct knit_worker *knit__tls_worker;

/* ---- fiber switch -------------------------------------------------------- */

/*
 * Saves the running context in @from and resumes @to. @dying: @from will
 * never be resumed (its stack is about to be freed), which ASan must know.
 */
static inline void fiber_switch(struct knit_fiber *from, struct knit_fiber *to,
                                bool dying)
{
#ifdef KNIT_ASAN
    __sanitizer_start_switch_fiber(dying ? NULL : &from->asan_fake,
                                   to->stack_lo, to->stack_size);
#else
    (void)dying;
#endif
#ifdef KNIT_TSAN
    __tsan_switch_to_fiber(to->tsan, 0);
#endif
    knit__ctx_switch(&from->ctx, &to->ctx);
#ifdef KNIT_ASAN
    __sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
}

/* Publishes what the worker runs, for the stall monitor. */
static inline void publish(struct knit_worker *w, struct knit_task *t)
{
    /* Release pairs with the monitor's acquire load of running: the
     * monitor may then read t->name and t->id, written before the spawn
     * returned. */
    atomic_store_explicit(&w->switches_pub, w->ticks, memory_order_relaxed);
    atomic_store_explicit(&w->running, t, memory_order_release);
}

/* ---- run queue -------------------------------------------------------------
 */

static inline void runq_push(struct knit_worker *w, struct knit_task *t)
{
    t->queued = true;
    knit_list_push_back(&w->runq, &t->run_link);
}

static bool attach_stack(struct knit_worker *w, struct knit_task *t);

/*
 * Takes the next task to run off the run queue (then, with several
 * workers, off the newq, its own or another's), giving a task that runs
 * for the first time its stack. A task whose stack cannot be had ends
 * with -ENOMEM without running, and the next one is taken.
 */
static inline struct knit_task *runq_pop(struct knit_worker *w)
{
    for (;;) {
        struct knit_task *t;
        struct knit_list *n = w->runq.next;
        if (knit_likely(n != &w->runq)) {
            /* Unlinked but not re-initialised: off the queue, run_link is
             * stale, and only t->queued says whether it is linked. */
            w->runq.next = n->next;
            n->next->prev = &w->runq;
            t = knit_container_of(n, struct knit_task, run_link);
            t->queued = false;
        } else if (!w->shared || !(t = knit__newq_take(w, false))) {
            return NULL;
        }
        if (knit_likely(t->stack.lo != NULL) || attach_stack(w, t))
            return t;
    }
}

static void wake_remote(struct knit_remote *r)
{
    knit__ready(knit_container_of(r, struct knit_task, wake_remote));
}

void knit__ready_remote(struct knit_task *t)
{
    /* Called under the rt lock by whoever claimed t's waiter: one post per
     * park, so wake_remote is free. */
    knit__remote_post(t->worker, &t->wake_remote, wake_remote);
}

/* ---- switching away from the running task ----------------------------------
 */

/* Resumes @next (taken off the run queue) from the running task @cur. */
static inline void switch_to_task(struct knit_worker *w,
                                  struct knit_fiber *from,
                                  struct knit_task *next, bool dying)
{
    knit__task_set_state(next, KNIT_TASK_RUNNING);
    w->current = next;
    w->coop = 0;
    w->ticks++;
    publish(w, next);
    fiber_switch(from, &next->fiber, dying);
}

/*
 * Frees the stack of the task that ended last (w->dead_stack). Called
 * wherever a context resumes: a task cannot free the stack it runs on, so
 * the next context to run does it. The task struct is not touched: it was
 * given up when the task ended (task_entry) and may be reused already.
 */
static inline void reap_dead(struct knit_worker *w)
{
    if (w->dead_stack.lo) {
        knit__stack_free(&w->stacks, &w->dead_stack);
        w->dead_stack.lo = NULL;
#ifdef KNIT_TSAN
        __tsan_destroy_fiber(w->dead_tsan);
        w->dead_tsan = NULL;
#endif
    }
}

/*
 * knit__switch_away's general case: the loop is due, the run queue is
 * empty or holds only @cur (it yielded alone), or its first task has no
 * stack yet.
 */
static KNIT_NOINLINE int switch_away_slow(struct knit_worker *w,
                                          struct knit_task *cur)
{
    struct knit_task *next = NULL;
    if (knit_likely((w->ticks & (KNIT_POLL_EVERY - 1)) != 0))
        next = runq_pop(w);
    if (next == cur) {
        /* It yielded and nothing else is runnable: keep running. */
        knit__task_set_state(cur, KNIT_TASK_RUNNING);
        w->coop = 0;
        w->ticks++;
        return 0;
    }
    if (next) {
        switch_to_task(w, &cur->fiber, next, false);
    } else {
        w->current = NULL;
        publish(w, NULL);
        fiber_switch(&cur->fiber, &w->sched, false);
    }
    /* Resumed: whoever switched here set w->current to cur. */
    reap_dead(w);
    return 0;
}

/*
 * The running task @cur gives up the CPU (it is parked or queued): the
 * next runnable task runs, or the worker loop when it is due or nothing
 * is runnable. Nearly every switch between tasks goes through the one
 * fiber_switch below, so it returns through the same call site and the
 * return stack buffer predicts it. The fast path keeps nothing in a
 * callee-saved register across the switch (the worker is read again from
 * TLS), so it saves none of its own: the context switch saves them all.
 * Returns 0, so that knit_yield can end in a tail call.
 */
KNIT_NOINLINE int knit__switch_away(struct knit_worker *w,
                                  struct knit_task *cur)
{
    if (knit_unlikely(!knit__stack_sp_ok(&cur->stack,
                                         __builtin_frame_address(0))))
        knit__overflow_report(cur);
    struct knit_list *n = w->runq.next;
    if (knit_unlikely((w->ticks & (KNIT_POLL_EVERY - 1)) == 0 ||
                      n == &w->runq))
        return switch_away_slow(w, cur);
    struct knit_task *next = knit_container_of(n, struct knit_task, run_link);
    if (knit_unlikely(next == cur || !next->stack.lo))
        return switch_away_slow(w, cur);
    /* runq_pop, inline: the link is left stale (see there). */
    w->runq.next = n->next;
    n->next->prev = &w->runq;
    next->queued = false;
    switch_to_task(w, &cur->fiber, next, false);
    reap_dead(knit__worker());
    return 0;
}

/*
 * knit__switch_away for a task that holds the runtime lock (several
 * workers only): it is let go while the task is away, since whoever
 * wakes it needs it, and so does the next task.
 */
KNIT_NOINLINE int knit__switch_away_locked(struct knit_worker *w,
                                         struct knit_task *cur)
{
    unsigned held = w->locked;
    w->locked = 0;
    knit__spin_unlock(&w->rt->lock);
    if (w->wake_after_unlock)
        knit__wake_flush(w);
    knit__switch_away(w, cur);
    knit__spin_lock(&w->rt->lock);
    w->locked = held;
    return 0;
}

void knit__park(void)
{
    struct knit_worker *w = knit__worker();
    struct knit_task *t = w->current;
    knit__task_set_state(t, KNIT_TASK_PARKED);
    knit__switch_out(w, t);
}

int knit__wait(struct knit_waiter *w)
{
    struct knit_task *t = w->task;
    if (knit_unlikely(!t))
        knit__panic("a blocking knit call was made outside a task");
    /* t->waiter is read under the runtime lock by whoever claims or
     * cancels the wait; callers on worker-local waits (sleep, I/O) come
     * here without it. Re-entrant, and let go while parked. */
    struct knit_worker *wk = t->worker;
    knit__lock(wk);
    int err = knit__scope_err(t);
    if (knit_unlikely(err)) {
        if (w->cancel)
            w->cancel(w);
        knit__unlock(wk);
        return err;
    }
    t->waiter = w;
    knit__task_set_state(t, KNIT_TASK_PARKED);
    knit__switch_out(wk, t);
    knit__unlock(wk);
    return w->result;
}

int knit__coop_yield(void)
{
    return knit_yield(); /* resets the budget when it switches */
}

/* Queues the running task @t at the back and switches away; 0. */
static inline int yield_now(struct knit_worker *w, struct knit_task *t)
{
    knit__task_set_state(t, KNIT_TASK_RUNNABLE);
    runq_push(w, t);
    return knit__switch_out(w, t);
}

/* knit_yield with scopes entered or fired: the chain walk decides. */
static KNIT_NOINLINE int yield_scoped(struct knit_worker *w,
                                      struct knit_task *t)
{
    int err = knit__scope_err_slow(t);
    if (err)
        return err;
    return yield_now(w, t);
}

int knit_yield(void)
{
    struct knit_worker *w = knit__worker();
    struct knit_task *t = w ? w->current : NULL;
    if (!t)
        return 0;
    /* knit__scope_err's common case, tested here so that the fast path
     * makes no call but the final tail call, and saves no register. */
    if (knit_unlikely(t->scope != &t->root || t->root.err))
        return yield_scoped(w, t);
    return yield_now(w, t);
}

/* ---- task start and end
 * ----------------------------------------------------------- */

/*
 * Records @t's end: result, task-locals, joiner, group. Runs on any stack;
 * the caller disposes of @t's stack.
 */
static void complete(struct knit_task *t, int result);

/*
 * The ended task @t, which runs on its own stack, gives its stack up: it
 * goes to @w, to be freed by the next context that runs (reap_dead).
 */
static void give_up_stack(struct knit_worker *w, struct knit_task *t)
{
    w->dead_stack = t->stack;
    t->stack.lo = NULL;
#ifdef KNIT_TSAN
    w->dead_tsan = t->fiber.tsan;
    t->fiber.tsan = NULL;
#endif
}

/*
 * The end of an ordinary task (no group, not main) without the runtime
 * lock, several workers. Three hand-shakes replace it:
 *   - the count: nended is bumped (seq_cst) before main_done is read
 *     (seq_cst); main's end sets main_done before it sums the counts
 *     (knit__nlive), so one of the two sees the other and the last end
 *     still wakes every worker;
 *   - the joiner: an exchange on t->jw; a joiner registered before it
 *     (KNIT_JW_WAITING) is woken under the lock, if its join was not
 *     cancelled meanwhile (the cancel hook clears t->joiner under it);
 *   - the struct: the worker drops its reference (knit__task_unref),
 *     after which @t is not touched.
 * A scope fired by another worker meanwhile posts a poke that finds the
 * task DONE under the lock and does nothing (scope.c).
 */
static void end_unlocked(struct knit_worker *w, struct knit_task *t, int r)
{
    struct knit_rt *rt = w->rt;
    knit__locals_run_dtors(t);
    t->result = r; /* (t->waiter is NULL: it runs) */
    knit__task_set_state(t, KNIT_TASK_DONE);
    knit__count_end(w);
    bool last = atomic_load(&rt->main_done);
    if (atomic_exchange(&t->jw, KNIT_JW_ENDED) == KNIT_JW_WAITING) {
        knit__lock(w);
        struct knit_waiter *j = t->joiner;
        if (j) {
            t->joiner = NULL;
            if (knit__waiter_claim(j)) /* a select's join case may lose */
                knit__wake(j, 0);
        }
        knit__unlock(w);
    }
    give_up_stack(w, t);
    knit__task_unref(t);
    if (last) {
        knit__lock(w);
        if (knit__nlive(rt) == 0)
            knit__wake_idle(rt, rt->nworkers); /* everyone may leave now */
        knit__unlock(w);
    }
}

static KNIT_NORETURN void task_entry(void *arg)
{
    struct knit_task *t = arg;
#ifdef KNIT_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    reap_dead(t->worker);
    /* Cancelled while another worker was taking it off a newq: it never
     * runs fn, as if the cancel had come first. */
    int r = knit_unlikely(t->root.err == -ECANCELED) ? -ECANCELED
                                                     : t->fn(t->arg);
    struct knit_worker *w = t->worker;
    if (knit_unlikely(!knit__stack_bottom_ok(&t->stack)))
        knit__overflow_report(t);
    /* No longer running for the stall monitor before the struct may be
     * freed (its hazard protocol in task_free_now relies on that). */
    publish(w, NULL);
    /* After the end, a joiner on another worker may free @t at once, so
     * the switch below saves this dying context in the worker's scratch
     * fiber, not in t. */
    if (knit_likely(w->shared) && !t->group && !t->is_main &&
        t->group_held == 0) {
        end_unlocked(w, t, r);
    } else {
        knit__lock(w);
        complete(t, r);
        give_up_stack(w, t);
        knit__task_unref(t);
        knit__unlock(w);
    }
    /* Straight to the next runnable task (often the joiner complete()
     * just woke), or to the worker loop when it is due or nothing is
     * runnable; whoever runs next frees the stack we are standing on. */
    struct knit_task *next = NULL;
    if (knit_likely((w->ticks & (KNIT_POLL_EVERY - 1)) != 0))
        next = runq_pop(w);
    if (next) {
        switch_to_task(w, &w->dead_fiber, next, true);
    } else {
        w->current = NULL;
        fiber_switch(&w->dead_fiber, &w->sched, true);
    }
    KNIT_UNREACHABLE();
}

static void complete(struct knit_task *t, int result)
{
    struct knit_worker *w = t->worker;
    struct knit_rt *rt = w->rt;
    knit__locals_run_dtors(t);
    knit__group_check_owner_exit(t);
    t->result = result;
    knit__task_set_state(t, KNIT_TASK_DONE);
    t->waiter = NULL;
    atomic_store(&t->jw, KNIT_JW_ENDED);
    knit__count_end(w);
    if (t == rt->main) {
        rt->main_result = result;
        atomic_store(&rt->main_done, true);
        rt->main = NULL; /* the struct is recycled once freed */
    }
    if (rt->shared && atomic_load(&rt->main_done) && knit__nlive(rt) == 0)
        knit__wake_idle(rt, rt->nworkers); /* everyone may leave now */
    if (t->joiner) {
        struct knit_waiter *j = t->joiner;
        t->joiner = NULL;
        if (knit__waiter_claim(j)) /* a select's join case may have lost */
            knit__wake(j, 0);
    }
    if (t->group)
        knit__group_task_done(t);
}

/* Ends @t's life as a task that never ran on its own stack: any stack it
 * was given goes back to @w's pool, and @t is freed if nobody will (rt
 * lock). */
static void release(struct knit_worker *w, struct knit_task *t)
{
    if (t->stack.lo) /* blocking tasks and unstarted ones have none */
        knit__stack_free(&w->stacks, &t->stack);
    t->stack.lo = NULL;
#ifdef KNIT_TSAN
    if (t->fiber.tsan)
        __tsan_destroy_fiber(t->fiber.tsan);
    t->fiber.tsan = NULL;
#endif
    knit__task_unref(t); /* the worker's reference */
}

void knit__task_finish_unstarted(struct knit_task *t, int result)
{
    if (t->queued) {
        knit_list_remove(&t->run_link);
        t->queued = false;
        if (t->in_newq) {
            t->in_newq = false;
            t->worker->nnew--;
        }
    }
    knit__task_end(t, result);
}

void knit__task_end(struct knit_task *t, int result)
{
    struct knit_worker *self = knit__worker();
    knit__lock(self);
    complete(t, result);
    release(t->worker, t);
    knit__unlock(self);
}

/* Gives the NEW task @t its stack and context; on failure ends it, and
 * so it does a task cancelled before it started (a cancel leaves a task
 * on a spawn ring for whoever takes it: task.c). */
static KNIT_NOINLINE bool attach_stack(struct knit_worker *w,
                                       struct knit_task *t)
{
    if (knit_unlikely(atomic_load_explicit(&t->root.err,
                                           memory_order_relaxed) ==
                      -ECANCELED)) {
        knit__task_end(t, -ECANCELED);
        return false;
    }
    if (knit__stack_alloc(&w->stacks, t->stack.size, &t->stack) != 0) {
        knit__task_end(t, -ENOMEM);
        return false;
    }
    knit__task_prepare(t);
    return true;
}

/* Prepares @t's context so that its first run enters task_entry. */
void knit__task_prepare(struct knit_task *t)
{
#ifdef KNIT_ASAN
    t->fiber.stack_lo = t->stack.lo;
    t->fiber.stack_size = t->stack.size;
    t->fiber.asan_fake = NULL;
#endif
    knit__ctx_make(&t->fiber.ctx, t->stack.lo, t->stack.size, task_entry, t);
#ifdef KNIT_TSAN
    void *__tsan_create_fiber(unsigned flags);
    t->fiber.tsan = __tsan_create_fiber(0);
#endif
}

void knit__task_place_local(struct knit_task *t)
{
    runq_push(t->worker, t);
}

void knit__task_enqueue_new(struct knit_task *t)
{
    if (t->worker->rt->shared)
        knit__newq_push(t);
    else
        runq_push(t->worker, t);
}

/* ---- the worker loop
 * -------------------------------------------------------------- */

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void knit__clock_refresh(struct knit_worker *w)
{
    w->now = w->rt->manual ? atomic_load_explicit(&w->rt->manual_now,
                                                  memory_order_relaxed)
                           : monotonic_ms();
}

/* Fires due timers under the runtime lock (their callbacks wake
 * waiters and fire scopes, which other workers' tasks may claim); with
 * none armed, only moves the wheel's time, which is the worker's own. */
static void timers_advance(struct knit_worker *w)
{
    if (w->wheel.armed == 0) {
        knit__wheel_advance(&w->wheel, w->now);
        return;
    }
    knit__lock(w);
    knit__wheel_advance(&w->wheel, w->now);
    knit__unlock(w);
}

/*
 * Polls the driver, then runs what the inbox holds. Every poll is followed
 * by a drain: a poll may consume the inbox's wake-up, and the requests it
 * announced must not wait for the next one. A pending inbox never blocks.
 */
static void io_poll_leave(struct knit_worker *w, int64_t timeout,
                          bool leave_idle)
{
    if (timeout != 0 &&
        knit__remote_pending(w))
        timeout = 0;
    w->io.ops->poll(&w->io, timeout);
    /* An empty inbox needs no drain (a post after this look signals the
     * driver, so the next poll returns at once): no lock either. */
    if (!leave_idle && !knit__remote_pending(w))
        return;
    knit__lock(w);
    /* Leaving idle and draining in one critical section: a worker that
     * counted this one idle must not see its inbox empty while a task
     * the drain readied waits (the manual clock would move under it;
     * found by tests/model/park.pml). */
    if (leave_idle)
        knit__idle_leave(w);
    knit__remote_drain(w);
    knit__unlock(w);
}

static void io_poll(struct knit_worker *w, int64_t timeout)
{
    io_poll_leave(w, timeout, false);
}

/* Whether the loop may stop: main has ended and every task with it. */
static bool finished(struct knit_worker *w)
{
    struct knit_rt *rt = w->rt;
    if (!atomic_load_explicit(&rt->main_done, memory_order_relaxed))
        return false;
    if (!rt->shared)
        return knit__nlive(rt) == 0;
    knit__lock(w);
    bool done = knit__nlive(rt) == 0;
    knit__unlock(w);
    return done;
}

/* Milliseconds (real time) left before the cancelled tasks are
 * abandoned, or -1 when there is no such deadline (yet). */
static int64_t shutdown_left(struct knit_worker *w)
{
    struct knit_rt *rt = w->rt;
    if (rt->cfg.shutdown_ms < 0 || w->id != 0 ||
        !atomic_load_explicit(&rt->main_done, memory_order_relaxed))
        return -1;
    knit__lock(w);
    int64_t at = rt->shutdown_cancelled ? rt->shutdown_at : -1;
    knit__unlock(w);
    if (at < 0)
        return -1;
    int64_t left = at + rt->cfg.shutdown_ms - monotonic_ms();
    return left > 0 ? left : 0;
}

/* A poll timeout no longer than the shutdown deadline (worker 0). */
static int64_t cap_timeout(struct knit_worker *w, int64_t timeout)
{
    int64_t left = shutdown_left(w);
    if (left >= 0 && (timeout < 0 || timeout > left))
        return left;
    return timeout;
}

/* Several workers: sleeps in the driver up to @timeout unless there is
 * work to take (park/unpark: newq.c). */
static void io_poll_idle(struct knit_worker *w, int64_t timeout)
{
    timeout = cap_timeout(w, timeout);
    if (!w->rt->shared || timeout == 0) {
        io_poll(w, timeout);
        return;
    }
    bool steal_soon;
    if (!knit__idle_enter(w, &steal_soon)) {
        io_poll(w, 0);
        return;
    }
    if (steal_soon && (timeout < 0 || timeout > 1))
        timeout = 1; /* ms: look again when those tasks may be taken */
    io_poll_leave(w, timeout, true);
}

/* Idle on the manual clock: let ready I/O and requests in, then jump
 * straight to the next timer. With no timer, only I/O, the inbox or (with
 * several workers) another worker can wake us. */
static void manual_idle(struct knit_worker *w)
{
    struct knit_rt *rt = w->rt;
    io_poll(w, 0);
    if (!knit_list_is_empty(&w->runq))
        return;
    if (rt->shared) {
        bool moved = knit__manual_idle(w, knit__wheel_next(&w->wheel));
        io_poll_leave(w, moved ? 0 : cap_timeout(w, -1), true);
        knit__clock_refresh(w);
        timers_advance(w);
        return;
    }
    if (rt->blocking_inflight > 0) {
        /* Work outside the loop is in flight: not idle yet. */
        io_poll(w, cap_timeout(w, -1));
        return;
    }
    int64_t next = knit__wheel_next(&w->wheel);
    if (next >= 0) {
        if (next > atomic_load(&rt->manual_now))
            atomic_store(&rt->manual_now, next);
        knit__clock_refresh(w);
        timers_advance(w);
        return;
    }
    io_poll(w, cap_timeout(w, -1));
}

/* Polls the driver and timers once; blocks when nothing is runnable. */
static void poll_events(struct knit_worker *w)
{
    struct knit_rt *rt = w->rt;
    w->lifo_streak = 0;
    if (knit__remote_pending(w)) {
        knit__lock(w);
        knit__remote_drain(w);
        knit__unlock(w);
    }
    if (finished(w))
        return; /* the drain ended the last task (a blocking job): done */
    knit__clock_refresh(w);
    timers_advance(w);
    if (w->now - w->last_trim >= TRIM_PERIOD_MS) {
        /* Spread the page give-backs of spare stacks over time. */
        w->last_trim = w->now;
        knit__stack_pool_trim(&w->stacks, TRIM_BATCH);
    }
    if (!knit_list_is_empty(&w->runq)) {
        if (w->io.armed)
            io_poll(w, 0);
        return;
    }
    if (rt->manual) {
        manual_idle(w);
        return;
    }
    int64_t next = knit__wheel_next(&w->wheel);
    int64_t timeout = next < 0 ? -1 : (next > w->now ? next - w->now : 0);
    io_poll_idle(w, timeout);
    knit__clock_refresh(w);
    timers_advance(w);
}

/* Several workers: the next task of a newq (its own, or stolen). */
static struct knit_task *take_new(struct knit_worker *w)
{
    struct knit_task *t;
    while ((t = knit__newq_take(w, true)) != NULL)
        if (attach_stack(w, t))
            return t;
    return NULL;
}

/* Main returned: cancel what is left (once, by the first worker to see
 * it) and wait for it. */
static void shutdown_once(struct knit_worker *w)
{
    struct knit_rt *rt = w->rt;
    knit__lock(w);
    if (!rt->shutdown_cancelled) {
        rt->shutdown_cancelled = true;
        rt->shutdown_at = monotonic_ms();
        for (int i = 0; i < rt->nworkers; i++)
            knit__cancel_all(&rt->workers[i]);
    }
    knit__unlock(w);
}

/* Past the shutdown deadline: list what is stuck and let every loop go.
 * Worker 0 decides; the others follow rt->abandoned. */
static bool abandon_due(struct knit_worker *w)
{
    struct knit_rt *rt = w->rt;
    if (atomic_load(&rt->abandoned))
        return true;
    if (shutdown_left(w) != 0)
        return false;
    knit__lock(w);
    knit__dump_stuck(rt);
    atomic_store(&rt->abandoned, true);
    if (rt->shared)
        knit__wake_idle(rt, rt->nworkers);
    knit__unlock(w);
    return true;
}

void knit__worker_loop(struct knit_worker *w)
{
    struct knit_rt *rt = w->rt;
    for (;;) {
        reap_dead(w);
        if (atomic_load_explicit(&rt->main_done, memory_order_relaxed)) {
            if (finished(w))
                break;
            shutdown_once(w);
            if (abandon_due(w))
                break;
        }
        /* Poll when idle or every KNIT_POLL_EVERY switches, not on every
         * return here (a task ending comes back here each time). */
        bool due = w->ticks - w->polled_at >= KNIT_POLL_EVERY;
        if (knit_list_is_empty(&w->runq) || due) {
            w->polled_at = w->ticks;
            poll_events(w);
        }
        /* Now and then a task not yet started goes first, so that two
         * tasks passing work back and forth cannot hold the newq back. */
        struct knit_task *t = NULL;
        if (due && rt->shared)
            t = take_new(w);
        if (!t)
            t = runq_pop(w);
        if (t)
            switch_to_task(w, &w->sched, t, false);
    }
}
