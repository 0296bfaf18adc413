// SPDX-License-Identifier: MIT
/*
 * The runtime's private core: tasks, workers and the runtime object, and
 * the scheduler operations every other area uses (make a task runnable,
 * park the running one, read the clock).
 *
 * Threading. With one worker (cfg.workers == 1) every structure is
 * worker-local and nothing is locked. With several, the rule is:
 *
 *   - A started task belongs to one worker for good. Only that worker
 *     switches to it, pushes it on its run queue (runq), arms its timers
 *     and its fds. Anyone else who makes it runnable posts its wake_remote
 *     to the owner's inbox (knit__ready).
 *   - Everything that tasks of different workers share (wait lists, waiter
 *     claims, primitives' state, groups, joins that wait, the newqs and
 *     the idle marks) is read and written under the one runtime lock,
 *     rt->lock (knit__lock). The lock is never held across a park:
 *     knit__park releases it and takes it again when resumed.
 *   - Three things do without it: a worker's spawn ring (core/ring.h,
 *     lock-free), its books (the list of the task structs it allocated,
 *     under its own books lock), and a task struct's lifetime (reference
 *     counts, knit__task_unref), so that a spawn, an ordinary task's end
 *     and the join of an ended task take no shared lock.
 *   - A scope of a task on another worker is fired by setting its error
 *     and posting the task's poke: the owner does the rest (cancel hooks
 *     touch the owner's wheel and driver).
 */
#ifndef KNIT_CORE_SCHED_H
#define KNIT_CORE_SCHED_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/compiler.h"
#include "core/ctx.h"
#include "core/list.h"
#include "core/remote.h"
#include "core/ring.h"
#include "core/spin.h"
#include "core/stack.h"
#include "core/waitq.h"
#include "io/driver.h"
#include "knit/rt.h"
#include "knit/task.h"
#include "time/wheel.h"

struct knit_worker;
struct knit_rt;

/* The cache line size the hot structures are laid out for. */
#define KNIT_CACHE_LINE 64
struct knit_pool;

/* A machine context plus what the sanitizers need to know about it. */
struct knit_fiber {
    struct knit_ctx ctx; /* saved registers */
#ifdef KNIT_ASAN
    const void *stack_lo; /* the stack it runs on */
    size_t stack_size;
    void *asan_fake; /* fake-stack handle while switched out */
#endif
#ifdef KNIT_TSAN
    void *tsan; /* TSan fiber */
#endif
};

/* A cancel scope as the chain sees it: all that a task's root scope
 * needs (it has no deadline and is never linked to a token). */
struct knit_scope_impl {
    struct knit_scope_impl *parent; /* enclosing scope, NULL for the root */
    struct knit_task *task;         /* the task it belongs to */
    int64_t deadline;               /* KNIT_FOREVER or absolute ms */
    _Atomic int err; /* 0, -ETIMEDOUT or -ECANCELED; set by any worker */
    bool shield;                    /* hides the enclosing scopes */
    bool token_linked;              /* token_w is on a token's list */
};

/* A scope a task entered (the private layout behind knit_scope): the
 * chain link plus its deadline timer and token listener. Kept out of the
 * root, they would cost every task 128 bytes it never uses. */
struct knit_scope_user {
    struct knit_scope_impl s;
    struct knit_timer timer;    /* the deadline, armed when one is set */
    struct knit_waiter token_w; /* knit_scope_link_token's listener */
};

/* The user scope around @s; @s must not be a root (deadline set, or
 * linked to a token, proves it is not). */
static inline struct knit_scope_user *knit__scope_user(struct knit_scope_impl *s)
{
    return knit_container_of(s, struct knit_scope_user, s);
}

enum knit_task_state {
    KNIT_TASK_NEW,      /* spawned, has not run yet (queued, or lazy) */
    KNIT_TASK_RUNNABLE, /* has run; on a run queue again */
    KNIT_TASK_RUNNING,  /* on its worker's CPU */
    KNIT_TASK_PARKED,   /* waiting on task->waiter */
    KNIT_TASK_DONE,     /* fn returned; result is valid */
};

struct knit_group_impl;

struct knit_task {
    struct knit_fiber fiber;       /* context and stack bounds */
    struct knit_stack stack;       /* its stack, until it ends */
    struct knit_worker *worker;    /* the worker it runs on */
    struct knit_list run_link;     /* on worker->runq; worker-local */
    knit_fn fn;                    /* the body */
    /*
     * What its end writes and its joiner reads, together in one cache
     * line (the second, without sanitizers): a join on another worker
     * then misses on one line, not four (bench/RESULTS.md).
     */
    bool queued; /* on a run queue or newq (run_link linked); its worker */
    /* enum knit_task_state. Its worker moves it between RUNNING, RUNNABLE
     * and PARKED without the lock, others look for NEW or DONE: atomic,
     * stored with release (knit__task_set_state). */
    _Atomic uint8_t state;
    /* References to the struct: its worker's until it has ended, the
     * handle's until it is joined, detached or reaped, and one per poke
     * in flight. The last knit__task_unref frees it, without a lock. */
    _Atomic uint8_t refs;
    /* enum knit_jw: the hand-shake of a task's end with its joiner. */
    _Atomic uint8_t jw;
    bool detached;                 /* freed when it ends */
    bool joined;                   /* a join has taken the result */
    bool lazy;                     /* waits for knit_task_start/join */
    int result;                    /* fn's result once DONE */
    /* On home->tasks until freed (home's books lock). Once freed,
     * all_link.next links it on its home's free lists. */
    struct knit_list all_link;
    struct knit_worker *home;      /* the worker whose slab it came from */
    struct knit_group_impl *group; /* owning group, or NULL */
    void *arg;                     /* its argument */
    struct knit_waiter *waiter;    /* what it is parked on, if PARKED */
    struct knit_waiter *joiner;    /* the task waiting in knit_join */
    struct knit_scope_impl *scope; /* innermost entered scope */
    struct knit_scope_impl root;   /* outermost scope; knit_cancel fires it */
    struct knit_list group_link;   /* on group->running or group->done */
    uint64_t group_index;          /* spawn order within its group */
    struct knit_task *group_owner; /* the task that owns @group */
    uint64_t group_held;           /* tasks held by groups this task owns */
    uint64_t id;                   /* unique, from 1 */
    char name[32];                 /* NUL-terminated, may be empty */
    void **locals;             /* task-local values, allocated on first set */
    bool blocking;             /* a knit_spawn_blocking job: no stack */
    uint8_t pool_class;        /* blocking job: enum knit_pool_class */
    struct knit_remote remote; /* blocking job: its completion message */
    /* Several workers only. */
    struct knit_remote wake_remote; /* readies it from another worker */
    struct knit_remote poke_remote; /* "a scope of yours fired" */
    /* poke_remote is posted (rt lock). Not beside joined and detached,
     * which a join of an ended task reads without the lock while a poke
     * may still be clearing this: a load the compiler widens over the
     * three would race. */
    bool poke_pending;
    bool in_newq;                   /* on some worker's newq (rt lock) */
    bool pinned;                    /* knit_spawn_on: never migrates */
    bool is_main;                   /* rt->main: its end ends the run */
};

/* knit_task.jw */
enum knit_jw {
    KNIT_JW_NONE,       /* running, nobody waits in knit_join */
    KNIT_JW_WAITING,    /* a joiner is registered (t->joiner, rt lock) */
    KNIT_JW_ENDED,      /* ended: a join takes the result at once */
};

struct knit_worker {
    struct knit_fiber sched;       /* the worker thread's own context */
    struct knit_task *current;     /* running task, NULL in the loop */
    struct knit_rt *rt;            /* the runtime */
    /* rt->shared, copied here so that every lock call and wake-up tests
     * one byte of the worker it already has, not two dependent loads. */
    bool shared;
    struct knit_list runq;         /* runnable tasks, FIFO */
    /* The stack of the task that ended last, freed by the next context
     * that runs (lo NULL: none), and the scratch context that task was
     * switched out into (its struct may be reused at once). */
    struct knit_stack dead_stack;
    struct knit_fiber dead_fiber;
#ifdef KNIT_TSAN
    void *dead_tsan; /* the ended task's TSan fiber */
#endif
    struct knit_wheel wheel;       /* timers */
    struct knit_io io;             /* I/O driver */
    struct knit_stack_pool stacks; /* stacks */
    /* Recycled task structs of its slabs, linked through all_link.next:
     * its own list, touched only by its thread, and a lock-free stack
     * other threads push on, taken whole when the own list is empty. */
    struct knit_task *free_tasks;
    void *task_slabs;              /* task struct slabs (task.c) */
    int64_t now;                   /* cached clock, ms */
    int64_t last_trim;             /* when spare stacks were last trimmed */
    uint64_t polled_at;            /* ticks at the last poll_events */
    unsigned coop;  /* blocking calls since the last switch (fairness) */
    uint64_t ticks; /* switches into tasks */
    uint64_t rng;   /* scheduler randomness, from the seed */
    int id;         /* 0-based */
    /* Read by the stall monitor thread. */
    _Atomic(uint64_t) switches_pub;      /* ticks, published */
    _Atomic(struct knit_task *) running; /* current task, published */
    /* The task whose id and name the stall monitor is reading, or NULL: a
     * hazard pointer that freeing a task struct waits on (monitor.c). */
    _Atomic(struct knit_task *) inspecting;
    atomic_int inspect_order; /* seq_cst exchanges on it order the two */
    void *altstack;                      /* sigaltstack for overflow reports */
    unsigned lifo_streak; /* consecutive knit__ready_next front pushes */
    void *signals;        /* knit_signal_wait's state (net/signal.c), or NULL */
    /* Several workers only. */
    unsigned locked;         /* knit__lock depth of the running context */
    /* A worker whose driver this one must signal (an idle worker whose
     * mark it cleared, or one whose inbox it posted to) under the lock:
     * signalled at the outermost knit__unlock (no system call is made
     * inside the lock). */
    struct knit_worker *wake_after_unlock;
    pthread_t thread;        /* workers 1..n-1 */
    bool thread_started;
    uint64_t steal_seen;     /* id of the newq head it waits to steal */
    int64_t steal_seen_at;   /* when it first saw that head (ns) */
    uint64_t steals;         /* tasks it took from others' newq or ring */
    /* Tasks that ended on it (knit__count_end; knit__nlive sums them). */
    _Atomic uint64_t nended;

    /*
     * Written by other threads: each group on cache lines of its own, so
     * that their writes do not take the lines of the fields above (the
     * worker's own, written at every switch and lock call) from it.
     */

    /* The inbox (remote.c): a lock-free stack any thread pushes on, newest
     * first; the worker takes all of it at once. Not NULL: requests wait. */
    _Alignas(KNIT_CACHE_LINE) _Atomic(struct knit_remote *) inbox;
    /* Posters inside knit__remote_post: the worker is torn down only
     * once none is (they touch its driver after their push). */
    atomic_uint inbox_posters;
    /* Task structs of its slabs that other threads freed (task.c). */
    _Atomic(struct knit_task *) free_remote;

    /* Tasks its thread spawned, not started yet (core/ring.h; its head
     * and tail are on lines of their own). */
    struct knit_ring ring;

    /*
     * Its books: the tasks whose structs came from its slabs, listed from
     * spawn until freed, under books_lock (knit__books_lock). Written by
     * its own spawns and by frees on any thread, never under the runtime
     * lock alone: a spawn and a join take no shared lock.
     */
    _Alignas(KNIT_CACHE_LINE) struct knit_spin books_lock;
    _Atomic(struct knit_worker *) books_holder; /* re-entry: who holds it */
    unsigned books_depth;                       /* its holder's depth */
    struct knit_list tasks;      /* tasks it spawned (all_link) */
    _Atomic uint64_t nspawned;   /* tasks it spawned, ever */

    /* Under the rt lock, by any worker. */
    _Alignas(KNIT_CACHE_LINE) struct knit_list newq; /* spawned, not
                                                      * started, stealable */
    /* Entries on newq; read without the lock as a hint. */
    _Atomic uint64_t nnew;
    _Atomic uint64_t stolen; /* tasks others took from its newq and ring */
    bool idle;               /* parked in its driver, wants a wake */
    int64_t next_timer;      /* manual clock: its next timer when idle */
    uint64_t idle_epoch;     /* manual clock: rt->idle_epoch at its poll */
    uint64_t ticks_at_idle;  /* manual clock: ticks when it last went idle */
};

/* The worker's xorshift64 generator: cfg.seed fixes the sequence, hence
 * every choice drawn from it (select's start case, knit_random). */
static inline uint64_t knit__rand(struct knit_worker *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return x;
}

struct knit_rt {
    knit_config cfg;             /* normalised configuration */
    struct knit_worker *workers; /* cfg.workers entries */
    int nworkers;
    bool shared; /* nworkers > 1: take rt->lock (see the top) */
    /* The lock and what its critical sections write, on a line of their
     * own: taking the lock brings them along. */
    _Alignas(KNIT_CACHE_LINE) struct knit_spin lock; /* core/spin.h */
    /* Workers with idle set: changed under the rt lock, read by spawns
     * without it (seq_cst: see newq.c). */
    atomic_int nidle;
    uint64_t idle_epoch; /* manual clock: bumped by a worker that went idle
                          * after running tasks (rt lock) */
    struct knit_task *main; /* the first task */
    int main_result;
    atomic_bool main_done;
    bool shutdown_cancelled;     /* remaining tasks have been cancelled */
    int64_t shutdown_at;         /* monotonic ms when that happened */
    atomic_bool abandoned;       /* cfg.shutdown_ms passed: loops stop */
    bool manual;                 /* KNIT_CLOCK_MANUAL */
    _Atomic int64_t manual_now;  /* the manual clock; written under lock */
    struct knit_pool *pools;     /* blocking pools, one per class */
    int blocking_inflight;       /* blocking jobs queued or running (lock) */
    atomic_uint_fast64_t stalls; /* stall reports */
    pthread_t monitor;           /* the stall monitor thread */
    bool monitor_running;
    atomic_bool monitor_stop;
    pthread_mutex_t monitor_lock; /* with monitor_cond, to stop it quickly */
    pthread_cond_t monitor_cond;
    /* knit_handle_get's handle (handle.c), made at the first call; the
     * runtime holds a reference and closes it at its end. */
    _Atomic(struct knit_handle *) handle;
};

/* The worker of the calling thread, NULL outside a runtime. */
/* initial-exec: one fs-relative load, no __tls_get_addr call. */
extern _Thread_local __attribute__((
    tls_model("initial-exec"))) struct knit_worker *knit__tls_worker;
static inline struct knit_worker *knit__worker(void)
{
    return knit__tls_worker;
}

/* The running task, NULL when in the scheduler loop or outside. */
static inline struct knit_task *knit__task(void)
{
    struct knit_worker *w = knit__worker();
    return w ? w->current : NULL;
}

/*
 * The runtime lock (see the top). A no-op with one worker; re-entrant
 * within one context (w->locked counts); released across knit__park.
 * Every shared primitive's operation runs between the two.
 */
static inline void knit__lock(struct knit_worker *w)
{
    if (w && knit_unlikely(w->shared) && w->locked++ == 0)
        knit__spin_lock(&w->rt->lock);
}

/* Signals w->wake_after_unlock's driver (newq.c); lock not held. */
void knit__wake_flush(struct knit_worker *w);

static inline void knit__unlock(struct knit_worker *w)
{
    if (w && knit_unlikely(w->shared) && --w->locked == 0) {
        knit__spin_unlock(&w->rt->lock);
        if (knit_unlikely(w->wake_after_unlock != NULL))
            knit__wake_flush(w);
    }
}

/* The value of @expr, evaluated under the runtime lock: the public
 * wrapper of a primitive's operation is `return KNIT_LOCKED(op(...));`. */
#define KNIT_LOCKED(expr)                                                      \
    __extension__({                                                            \
        struct knit_worker *knit_lw_ = knit__worker();                         \
        knit__lock(knit_lw_);                                                  \
        __typeof__(expr) knit_lr_ = (expr);                                    \
        knit__unlock(knit_lw_);                                                \
        knit_lr_;                                                              \
    })

/* Runs the statement @stmt under the runtime lock. */
#define KNIT_LOCKED_VOID(stmt)                                                 \
    do {                                                                       \
        struct knit_worker *knit_lw_ = knit__worker();                         \
        knit__lock(knit_lw_);                                                  \
        stmt;                                                                  \
        knit__unlock(knit_lw_);                                                \
    } while (0)

/* Release: a worker that took a NEW task off a ring wrote t->worker
 * before the task's first state change, and a cancel that reads any
 * state but NEW (acquire) may then read t->worker (task.c). A plain
 * store on x86. */
static inline void knit__task_set_state(struct knit_task *t, int state)
{
    atomic_store_explicit(&t->state, (uint8_t)state, memory_order_release);
}

/* t->worker read by a thread that may race with a worker taking @t off
 * a spawn ring (a dump of every task). */
static inline struct knit_worker *
knit__task_worker_peek(const struct knit_task *t)
{
    return __atomic_load_n(&t->worker, __ATOMIC_RELAXED);
}

/* The running task @cur, parked or queued, gives up the CPU (sched.c);
 * the _locked one when it holds the runtime lock, which it lets go while
 * away. Both return 0, for tail calls. */
int knit__switch_away(struct knit_worker *w, struct knit_task *cur);
int knit__switch_away_locked(struct knit_worker *w, struct knit_task *cur);

static inline int knit__switch_out(struct knit_worker *w,
                                   struct knit_task *cur)
{
    if (knit_unlikely(w->locked))
        return knit__switch_away_locked(w, cur);
    return knit__switch_away(w, cur);
}

/* Posts @t to its own worker's inbox, which readies it (another worker's
 * task; rt lock held). */
void knit__ready_remote(struct knit_task *t);

/* True when @t must be readied through its own worker's inbox. One byte
 * of @t's worker decides it with one worker: no TLS read. */
static inline bool knit__is_foreign(const struct knit_task *t)
{
    return knit_unlikely(t->worker->shared) && t->worker != knit__worker();
}

/*
 * For readying @t, a task of this worker: false when it is queued, running
 * or done (nothing to do); else marks it queued and RUNNABLE (a NEW task
 * stays NEW: its first run enters task_entry), and the caller links it.
 */
static inline bool knit__ready_mark(struct knit_task *t)
{
    uint8_t st = atomic_load_explicit(&t->state, memory_order_relaxed);
    if (t->queued || st == KNIT_TASK_DONE || st == KNIT_TASK_RUNNING)
        return false;
    if (knit_likely(st != KNIT_TASK_NEW)) /* parked, the common case */
        knit__task_set_state(t, KNIT_TASK_RUNNABLE);
    t->queued = true;
    return true;
}

/* Makes @t runnable (it must be NEW-but-started, or PARKED). From another
 * worker, posts it to its own. Inline: it is half of every wake-up. */
static inline void knit__ready(struct knit_task *t)
{
    if (knit__is_foreign(t)) {
        knit__ready_remote(t);
        return;
    }
    if (knit__ready_mark(t))
        knit_list_push_back(&t->worker->runq, &t->run_link);
}

/* Front pushes allowed in a row before knit__ready_next goes FIFO. */
#define KNIT_LIFO_STREAK_MAX 16u

/*
 * Makes @t runnable next (front of the run queue), for a direct hand-off
 * such as a channel value given to a waiting receiver. Capped: after a
 * streak of such pushes, @t goes to the back, so two tasks passing values
 * cannot starve the others.
 */
static inline void knit__ready_next(struct knit_task *t)
{
    struct knit_worker *w = t->worker;
    if (knit__is_foreign(t)) {
        knit__ready_remote(t);
        return;
    }
    if (!knit__ready_mark(t))
        return;
    if (knit_unlikely(w->lifo_streak >= KNIT_LIFO_STREAK_MAX)) {
        w->lifo_streak = 0;
        knit_list_push_back(&w->runq, &t->run_link);
        return;
    }
    w->lifo_streak++;
    knit_list_push_front(&w->runq, &t->run_link);
}

/* Prepares @w for the task @t (the running one). */
static inline void knit__waiter_prep(struct knit_waiter *w,
                                     struct knit_task *t, const char *what,
                                     const void *obj,
                                     knit_waiter_cancel_fn cancel)
{
    knit_list_init(&w->link);
    w->task = t;
    w->result = 0;
    w->cancel = cancel;
    w->what = what;
    w->obj = obj;
    w->data = NULL;
    w->sel = NULL;
    w->index = 0;
    w->wake_fn = NULL;
}

/* Prepares @w for the current task. */
static inline void knit__waiter_init(struct knit_waiter *w, const char *what,
                                     const void *obj,
                                     knit_waiter_cancel_fn cancel)
{
    knit__waiter_prep(w, knit__task(), what, obj, cancel);
}

/*
 * Makes @w's task runnable; knit__wait then returns @result. The caller
 * has unlinked @w and, for a waiter it did not just queue, claimed it.
 */
static inline void knit__wake(struct knit_waiter *w, int result)
{
    if (knit_unlikely(w->wake_fn != NULL)) {
        w->wake_fn(w, result);
        return;
    }
    struct knit_task *t = w->task;
    w->result = result;
    /* For a select, t->waiter is the select's own record, not @w: either
     * way the task waits on nothing any more. */
    t->waiter = NULL;
    knit__ready(t);
}

/*
 * Unlinks and returns the first waiter of @q that can still be claimed,
 * claimed; waiters of selects that already fired are unlinked and
 * skipped. NULL when there is none.
 */
static inline struct knit_waiter *knit__wq_claim(struct knit_list *q)
{
    struct knit_list *n;
    while ((n = q->next) != q) {
        /* Self-linked once off: a cancel hook may remove it again. */
        q->next = n->next;
        n->next->prev = q;
        knit_list_init(n);
        struct knit_waiter *w = knit_container_of(n, struct knit_waiter, link);
        if (knit__waiter_claim(w))
            return w;
    }
    return NULL;
}

/*
 * knit__wait for a caller that found no scope error (knit__scope_err,
 * knit__coop_pass/check) under the runtime lock and has held the lock
 * since: scopes are fired under that lock, and with one worker nothing
 * else runs, so no scope can have fired in between and it parks at once.
 * Inline: the caller's frame holds @w anyway. Returns w's result.
 */
static inline int knit__wait_checked(struct knit_waiter *w)
{
    struct knit_task *t = w->task;
    t->waiter = w;
    knit__task_set_state(t, KNIT_TASK_PARKED);
    knit__switch_out(t->worker, t);
    return w->result;
}

/*
 * Claims, unlinks and wakes the first claimable waiter of @q with
 * @result; returns false when there is none.
 */
static inline bool knit__wq_wake_one(struct knit_list *q, int result)
{
    struct knit_waiter *w = knit__wq_claim(q);
    if (!w)
        return false;
    knit__wake(w, result);
    return true;
}

/* Switches away from the running task until something readies it. */
void knit__park(void);

/* The cached clock of @w. */
static inline int64_t knit__now(struct knit_worker *w)
{
    return w->now;
}

/* The error of the innermost fired scope visible to @t, or 0. */
int knit__scope_err_slow(const struct knit_task *t);
static inline int knit__scope_err(const struct knit_task *t)
{
    /* The common case: only the root scope, not cancelled. */
    if (t->scope == &t->root && !t->root.err)
        return 0;
    return knit__scope_err_slow(t);
}

/* Blocking calls a task may make without a switch before one yields. */
#define KNIT_COOP_BUDGET 128

int knit__coop_yield(void);

/*
 * The entry check of a blocking call: the scope's error, and, once the
 * running task has made KNIT_COOP_BUDGET blocking calls without being
 * switched out (all completed at once: a fast peer, a full buffer), a
 * yield first, so that no task can hold its worker (tokio's coop budget).
 */
static inline int knit__coop_enter(struct knit_worker *w, struct knit_task *t)
{
    if (knit_unlikely(++w->coop >= KNIT_COOP_BUDGET))
        return knit__coop_yield();
    return knit__scope_err(t);
}

/*
 * knit__coop_enter split for hot paths: knit__coop_pass counts the call
 * and is true when there is nothing to check (budget left, only the root
 * scope and it has not fired). When false, the caller goes out of line and
 * calls knit__coop_check, which decides as knit__coop_enter would have,
 * without counting the call again. The fast path then makes no call.
 */
static inline bool knit__coop_pass(struct knit_worker *w,
                                   const struct knit_task *t)
{
    return ++w->coop < KNIT_COOP_BUDGET && t->scope == &t->root &&
           !t->root.err;
}

static inline int knit__coop_check(struct knit_worker *w,
                                   const struct knit_task *t)
{
    if (w->coop >= KNIT_COOP_BUDGET)
        return knit__coop_yield();
    return knit__scope_err(t);
}

/* Prepares @t's root scope. */
void knit__scope_root_init(struct knit_task *t);

/* Fires @s with @err (first error wins) and wakes its task if needed
 * (rt lock). */
void knit__scope_fire(struct knit_scope_impl *s, int err);
/* Asks @t's worker to re-check @t's scopes (rt lock). */
void knit__task_poke(struct knit_task *t);

/* Task lifecycle pieces shared by task.c, sched.c and group.c. */
struct knit_task *knit__spawn(struct knit_worker *w, const knit_task_opts *o,
                              knit_fn fn, void *arg);
/* Drops one reference to @t (its worker's, its handle's or a poke's):
 * the last one frees the struct. Any thread, any lock or none. */
void knit__task_unref(struct knit_task *t);
/* Takes a reference for a poke, unless the last one was dropped
 * already (@t is then being freed: it has ended). */
bool knit__task_try_ref(struct knit_task *t);
void knit__group_task_done(struct knit_task *t);
void knit__task_prepare(struct knit_task *t);     /* context for first run */
void knit__task_enqueue_new(struct knit_task *t); /* queue a NEW task */
/* Queues the NEW task @t on its own worker's run queue, which must be the
 * caller's: it will not migrate. */
void knit__task_place_local(struct knit_task *t);
/* Ends a task that never ran (cancelled before start) with @result. */
void knit__task_finish_unstarted(struct knit_task *t, int result);
/* Ends @t, which is not running on its own stack (unstarted, or a
 * blocking job), with @result: joiner, group, stack, detached free. */
void knit__task_end(struct knit_task *t, int result);
/* A task struct without stack or context, counted live (blocking jobs). */
struct knit_task *knit__task_new_stackless(struct knit_worker *w, knit_fn fn,
                                           void *arg);
/* knit_cancel for a blocking job (blocking/pool.c). */
void knit__blocking_cancel(struct knit_task *t);
void knit__locals_run_dtors(struct knit_task *t);
void knit__task_cache_fini(struct knit_worker *w);
void knit__cancel_all(struct knit_worker *w); /* shutdown */

/* Several workers (newq.c; all under no lock unless said). */
void knit__newq_push(struct knit_task *t);             /* a NEW task */
/* A task not yet started for @w, its own or stolen; the newqs first
 * when @newq_first. */
struct knit_task *knit__newq_take(struct knit_worker *w, bool newq_first);
void knit__wake_idle(struct knit_rt *rt, int n); /* rt lock held */
/* Signals @x's driver at @self's outermost knit__unlock (rt lock held,
 * @x a worker of the same runtime). */
void knit__wake_later(struct knit_worker *self, struct knit_worker *x);
/* Clears one idle worker's mark for @self, signalled at its outermost
 * knit__unlock (rt lock held). */
void knit__wake_one_later(struct knit_worker *self);
/* Marks @w idle unless there is work; false when there is. *steal_soon:
 * idle, but another newq holds tasks it may steal after a short wait. */
bool knit__idle_enter(struct knit_worker *w, bool *steal_soon);
void knit__idle_leave(struct knit_worker *w);
/* Manual clock: @w is idle with its next timer at @next_timer (-1:
 * none); true when the clock moved or there is work (go round again). */
bool knit__manual_idle(struct knit_worker *w, int64_t next_timer);

/* Re-reads the clock (monotonic or manual) into w->now. */
void knit__clock_refresh(struct knit_worker *w);
/* Runs the worker loop until main has ended and every task with it. */
void knit__worker_loop(struct knit_worker *w);
void knit__group_check_owner_exit(struct knit_task *t);

/* Prints "knit: <message> (task "<name>" id N)" and aborts. */
_Noreturn void knit__panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * Fills @set with every signal except the synchronous fault signals
 * (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS): knit's own threads
 * block these so process signals reach knit_signal_wait; blocking a
 * fault signal would make a crash skip every handler (ASan's included).
 */
static inline void knit__sigset_async(sigset_t *set)
{
    sigfillset(set);
    sigdelset(set, SIGSEGV);
    sigdelset(set, SIGBUS);
    sigdelset(set, SIGILL);
    sigdelset(set, SIGFPE);
    sigdelset(set, SIGTRAP);
    sigdelset(set, SIGSYS);
}

/* Restores what knit_signal_wait changed on @w's thread (net/signal.c). */
void knit__signal_fini(struct knit_worker *w);

/*
 * Tasks not yet DONE in the whole runtime, no lock needed: the workers'
 * spawn counts less their end counts. The ends are summed first: every
 * end seen is of a task whose spawn was counted before it ran, so the
 * spawns summed after include it and the difference never wraps. Read
 * after main_done by an end, it never undercounts (see end_unlocked).
 */
uint64_t knit__nlive(struct knit_rt *rt);

/* Counts a task's end on @w (seq_cst with several workers: see
 * end_unlocked). */
static inline void knit__count_end(struct knit_worker *w)
{
    if (w->shared)
        atomic_fetch_add(&w->nended, 1);
    else
        atomic_store_explicit(
            &w->nended,
            atomic_load_explicit(&w->nended, memory_order_relaxed) + 1,
            memory_order_relaxed);
}

/*
 * @home's books lock (see struct knit_worker), a no-op with one worker.
 * Re-entrant for the worker thread that holds it. Innermost: it may be
 * taken under the runtime lock, never the other way round, and a thread
 * holding one takes another only under the runtime lock (the walks of
 * shutdown and group clean-up), so they cannot deadlock.
 */
static inline void knit__books_lock(struct knit_worker *home)
{
    if (!home->shared)
        return;
    struct knit_worker *self = knit__worker();
    if (self && atomic_load_explicit(&home->books_holder,
                                     memory_order_relaxed) == self) {
        home->books_depth++;
        return;
    }
    knit__spin_lock(&home->books_lock);
    atomic_store_explicit(&home->books_holder, self, memory_order_relaxed);
    home->books_depth = 1;
}

static inline void knit__books_unlock(struct knit_worker *home)
{
    if (!home->shared || --home->books_depth > 0)
        return;
    atomic_store_explicit(&home->books_holder, NULL, memory_order_relaxed);
    knit__spin_unlock(&home->books_lock);
}

/*
 * Registers the waiter @w as @t's joiner (rt lock): false when @t ended
 * without the lock meanwhile (its result is there to take). Otherwise
 * an end that comes now takes the lock and wakes t->joiner.
 */
bool knit__join_register(struct knit_task *t, struct knit_waiter *w);
/* Undoes knit__join_register if @w is still the joiner (rt lock). */
void knit__join_unregister(struct knit_task *t, struct knit_waiter *w);

/* Whether @t has ended, with its result readable: acquire on t->jw, which
 * an end stores after the result, with or without the rt lock. */
static inline bool knit__task_ended(const struct knit_task *t)
{
    return atomic_load_explicit(&t->jw, memory_order_acquire) ==
           KNIT_JW_ENDED;
}

/* Lists the tasks still live after cfg.shutdown_ms on stderr (rt lock). */
void knit__dump_stuck(struct knit_rt *rt);

/* Closes the runtime's knit_handle, if any (handle.c): after the loops. */
void knit__handle_close(struct knit_rt *rt);

/* Stall monitor (monitor.c). */
int knit__monitor_start(struct knit_rt *rt);
void knit__monitor_stop(struct knit_rt *rt);

/* Stack overflow reporting (rt.c): prints and aborts. */
_Noreturn void knit__overflow_report(const struct knit_task *t);

#endif
