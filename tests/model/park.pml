/*
 * SPDX-License-Identifier: MIT
 *
 * park.pml: a Promela model of knit's multi-worker park/unpark protocol
 * (see README.md in this directory for the mapping to the C code).
 *
 * What runs:
 *   - NW workers (2 by default, -DNW=3 for three), each a copy of
 *     knit__worker_loop (src/core/sched.c) with poll_events, io_poll,
 *     io_poll_idle, finished and shutdown_once, and the newq / idle code
 *     of src/core/newq.c;
 *   - one pool thread (a plain thread, src/blocking/pool.c) that runs a
 *     blocking job and posts its completion to the spawning worker's
 *     inbox (knit__remote_post, src/core/remote.c);
 *   - a checker that, once nothing can move any more, asserts that
 *     everything is done and every worker has left its loop.
 *
 * The program the workers run (three tasks and one blocking job):
 *   main (M):  spawn C; [keep the CPU until C has started;] join C;
 *              return.            pinned to worker 0, starts on its runq
 *   C:         spawn L; spawn the blocking job J; return (wakes main)
 *   L:         return (with -DABANDON: parks for good, ignoring its cancel).
 * C and L may be stolen while on a newq, so C's join wake-up is a
 * cross-worker inbox post to worker 0 or a local runq push,
 * the job's completion goes to whichever worker ran C, and the shutdown
 * (main returns while L or J still live) cancels and pokes what is left.
 *
 * Variants of the C code:
 *   -DMANUAL              the manual clock's idle path (manual_idle,
 *                         knit__manual_idle) with one timer on worker 0
 *   -DABANDON             the shutdown deadline (abandon_due, cap_timeout):
 *                         L ignores its cancel
 * Bounds: -DNW=3 (three workers), -DSMALL (C spawns no L), -DNO_DUE,
 * -DNO_DIRECT, -DNO_SPINWAIT (fewer scheduler choices).
 *
 * Mutants (each must make the verifier fail; run.sh checks that):
 *   -DBUG_MANUAL_IDLE_SPLIT  with MANUAL: the drain and leaving idle in two
 *                         critical sections (the C code before the fix)
 *   -DBUG_ABANDON_NOT_DUE with ABANDON: loop_due ignores rt->abandoned
 *                         (the C code before the fix)
 *   -DBUG_UNLOCKED_IDLE   knit__idle_enter looks for work and marks the
 *                         worker idle in two critical sections instead of one
 *   -DBUG_LOOK_BEFORE_MARK knit__idle_enter looks for work before it marks
 *                         itself idle (right while spawns took the lock;
 *                         wrong since they push on rings without it)
 *   -DBUG_NONSTICKY_WAKE  the driver wake is lost unless the worker already
 *                         sleeps in epoll_wait (a condvar-like signal, not the
 *                         eventfd's counter)
 *   -DBUG_NO_WAKE_ON_PUSH knit__newq_push does not wake an idle worker
 *   -DBUG_WAKE_IF_NONEMPTY knit__remote_post signals the driver for a push
 *                         onto a non-empty inbox instead of an empty one
 *   -DBUG_DEFERRED_POST_LOST a post made under the rt lock never signals
 *                         the driver after the unlock (knit__wake_later's
 *                         slot is dropped)
 *   -DBUG_FAST_END_NO_RECHECK a task's end without the lock (end_unlocked)
 *                         does not look at main_done after counting itself,
 *                         so nobody wakes the workers when it was the last
 * Variant that must still pass:
 *   -DNO_PENDING_CHECK    io_poll blocks without looking at inbox_pending
 *                         first: the eventfd alone keeps every post's wake-up
 */

#ifndef NW
#define NW 2
#endif

#define NT 3            /* tasks */
#define M 0             /* main */
#define C 1             /* main's child, joined by main */
#define L 2             /* C's child, a leaf */

#define NONE 255
#define FREE 255        /* a free mutex */
#define POSTER 254      /* the pool thread, as a lock owner */

/* task states (enum knit_task_state, plus where a NEW task is) */
#define T_UNBORN   0    /* not spawned yet */
#define T_NEWQ     1    /* NEW, on some worker's newq (in_newq) */
#define T_TAKEN    2    /* NEW, popped off a newq by its worker, not yet run */
#define T_RUNNING  3
#define T_PARKED   4
#define T_RUNNABLE 5    /* on its worker's runq */
#define T_DONE     6

#define PC_END 9        /* the task's fn has returned: complete() next */

/* the blocking job (a stackless task on a pool queue) */
#define J_NONE     0
#define J_QUEUED   1    /* on the pool queue */
#define J_RUNNING  2    /* a pool thread took it */
#define J_DONE     3    /* ended: job_done ran, or cancelled while queued */

/* ---- shared state ---------------------------------------------------- */

byte rtl = FREE;        /* rt->lock: owner, or FREE */
byte nlive;             /* rt->nlive (tasks not DONE, incl. the job) */
byte nfast;             /* sum of worker->nended_fast: ends without the
                         * lock (task_entry's end_unlocked) */
#define NLIVE (nlive - nfast)   /* knit__nlive(rt) */
byte jwst[NT];          /* task->jw: 0 none, 1 a joiner waits, 2 ended */
byte nidle;             /* rt->nidle */
bool main_done;         /* rt->main_done (atomic) */
bool cancelled;         /* rt->shutdown_cancelled */
byte binflight;         /* rt->blocking_inflight */

bool idle[NW];          /* worker->idle (rt lock) */
bool evfd[NW];          /* the driver's eventfd: readable or not */
bool asleep[NW];        /* blocked in epoll_wait (for the mutant/checks) */
bool pending[NW];       /* worker->inbox != NULL (the lock-free stack) */
byte in_wake[NW];       /* inbox: wake_remote requests (knit__ready) */
byte in_job[NW];        /* inbox: job_done requests (blocking pool) */
byte in_poke[NW];       /* inbox: poke_remote requests (shutdown cancel) */

chan newq[NW] = [NT] of { byte };   /* worker->newq (rt lock) */
chan runq[NW] = [NT] of { byte };   /* worker->runq (worker-local) */

byte ts[NT];            /* task->state (above) */
byte tw[NT];            /* task->worker */
byte pc[NT];            /* where the task's fn is */
bool joiner[NT];        /* task->joiner is set (only main joins: C) */
bool cx[NT];            /* task->root.err == -ECANCELED */
bool poked[NT];         /* task->poke_pending was set once */

byte job = J_NONE;
byte jw = NONE;         /* the job's worker (its completion's inbox) */

byte nexited;           /* workers that left knit__worker_loop */

#ifdef MANUAL
/* The manual clock (knit__manual_idle): one timer, on worker 0's wheel,
 * due at a time after the start; the clock jumps to it when every worker
 * is idle and nothing is in flight. */
bool tmr = 1;           /* worker 0's timer is armed */
bool ntimer[NW];        /* worker->next_timer >= 0 (rt lock) */
bool clock_moved;       /* rt->manual_now has jumped to the timer */
#endif
#ifdef ABANDON
/* The shutdown deadline (cfg.shutdown_ms, sched.c abandon_due): L parks
 * for good, ignoring its cancel (a shielded scope); worker 0 gives up on
 * it once the deadline has passed and every loop stops. */
bool abandoned;         /* rt->abandoned (atomic) */
#endif

/* ---- helpers ---------------------------------------------------------- */

/* knit__wake_idle(rt, n) (newq.c): clear up to n idle marks, wake each. */
inline wake_idle(n)
{
    i = 0;
    k = n;
    do
    :: i < NW && k > 0 && nidle > 0 ->
        if
        :: idle[i] ->
            idle[i] = 0;
            nidle--;
#ifdef BUG_NONSTICKY_WAKE
            if
            :: asleep[i] -> evfd[i] = 1
            :: else -> skip     /* lost: nobody in epoll_wait yet */
            fi;
#else
            evfd[i] = 1;        /* write(evfd): stays until read */
#endif
            k--
        :: else -> skip
        fi;
        i++
    :: else -> break
    od;
    i = 0;
    k = 0
}

/* The rt-lock part of complete() (sched.c) for task/job bookkeeping:
 * nlive--, main_done, and the wake-everyone when the last task ends. */
inline complete_count(is_main)
{
    nlive--;
    if
    :: is_main -> main_done = 1
    :: else -> skip
    fi;
    if
    :: NLIVE == 0 && main_done -> wake_idle(NW)
    :: else -> skip
    fi
}

/* nidle counts the idle marks (rt lock) */
inline check_nidle()
{
    k = 0;
    i = 0;
    do
    :: i < NW -> k = k + idle[i]; i++
    :: else -> break
    od;
    assert(k == nidle);
    i = 0;
    k = 0
}

/* any_new (newq.c): res = some newq holds a task */
inline any_new(res)
{
    res = 0;
    i = 0;
    do
    :: i < NW -> res = res || len(newq[i]) > 0; i++
    :: else -> break
    od;
    i = 0
}

/* loop_due (newq.c) */
#if defined(ABANDON) && !defined(BUG_ABANDON_NOT_DUE)
#define LOOP_DUE (abandoned || (main_done && (NLIVE == 0 || !cancelled)))
#else
#define LOOP_DUE (main_done && (NLIVE == 0 || !cancelled))
#endif

/* Writes worker x's eventfd (its driver's wake). */
inline signal(x)
{
#ifdef BUG_NONSTICKY_WAKE
    atomic {
        if
        :: asleep[x] -> evfd[x] = 1
        :: else -> skip
        fi
    }
#else
    evfd[x] = 1
#endif
}

/*
 * knit__remote_post(x, ...) (remote.c): the compare-and-swap that pushes
 * the request is one step (it also tells whether the inbox was empty);
 * the driver wake, made only by a push onto an empty inbox, is the next
 * (post_wake), or, for a worker that holds the rt lock, comes after its
 * unlock (defer_wake, flush_wake). A drain may run between the push and
 * the wake (the wake then only costs a poll). @was: a local of the
 * caller, for the CAS's answer.
 */
inline post_push(x, kind, was)
{
    atomic {
        was = pending[x];
        if
        :: kind == 0 -> in_wake[x]++
        :: kind == 1 -> in_job[x]++
        :: kind == 2 -> in_poke[x]++
        fi;
        pending[x] = 1
    };
#ifdef BUG_WAKE_IF_NONEMPTY
    /* mutant: the wake rule inverted (only a push onto a non-empty
     * inbox signals), so the first request after a drain is not
     * announced */
    was = !was;
#endif
    skip
}

inline post_wake(x, was)
{
    if
    :: !was -> signal(x)
    :: else -> skip
    fi
}

inline post(x, kind, me, was)
{
    post_push(x, kind, was);
    post_wake(x, was)
}

/* knit__wake_later: the worker's one deferred wake (wlater, a local of
 * worker()); an older one for another worker is signalled at once. */
inline defer_wake(x, was)
{
#ifdef BUG_DEFERRED_POST_LOST
    was = 1;    /* mutant: the deferred wake of a post is dropped */
#endif
    if
    :: !was ->
        if
        :: wlater != NONE && wlater != x -> signal(wlater)
        :: else -> skip
        fi;
        wlater = x
    :: else -> skip
    fi
}

/* knit__unlock -> knit__wake_flush: write(evfd) outside the lock */
inline flush_wake()
{
    if
    :: wlater != NONE -> signal(wlater); wlater = NONE
    :: else -> skip
    fi
}

#define K_WAKE 0
#define K_JOB  1
#define K_POKE 2

/*
 * knit__lock(w); knit__remote_drain(w); knit__unlock(w) (io_poll and
 * poll_events, sched.c; remote.c). One step: the rt lock makes it atomic
 * for the other workers (they post under the rt lock), and the pool
 * thread's push is one atomic step of its own, which may come before or
 * after the drain, or between its own push and wake. The relaxed load
 * and the exchange that takes the stack may be merged: a push between
 * them is taken as well, as if it had come before the load.
 * leave: knit__idle_leave in the same section (not with
 * BUG_MANUAL_IDLE_SPLIT).
 */
inline lock_drain_unlock(me, leave)
{
    if
    :: !leave && !pending[me] ->
        skip    /* an empty inbox: no drain, no lock (sched.c) */
    :: else ->
    atomic {
        rtl == FREE -> rtl = me;
        if
        :: leave && idle[me] -> idle[me] = 0; nidle--
        :: else -> skip
        fi;
        if
        :: pending[me] ->   /* the unlocked acquire load */
            /* the exchange that takes the whole stack */
            lw = in_wake[me]; lj = in_job[me]; lp = in_poke[me];
            in_wake[me] = 0; in_job[me] = 0; in_poke[me] = 0;
            pending[me] = 0;
            /* run the requests (still under the rt lock) */
            if
            :: lw > 0 ->
                /* wake_remote -> knit__ready(main), local now */
                assert(tw[M] == me);
                if
                :: ts[M] == T_PARKED -> ts[M] = T_RUNNABLE; runq[me]!M
                :: else -> skip
                fi
            :: else -> skip
            fi;
            if
            :: lj > 0 ->
                /* job_done: blocking_inflight--; knit__task_end */
                job = J_DONE;
                binflight--;
                complete_count(0)
            :: else -> skip
            fi;
            /* poke_run: interrupt() a parked task of ours whose scope
             * fired: none is interrupted (only main parks, and main is
             * done by the time of the shutdown; with ABANDON, L parks
             * in a shielded scope) */
            lw = 0; lj = 0; lp = 0
        :: else -> skip
        fi;
        rtl = FREE
    }
    fi
}

/* ---- the pool thread ------------------------------------------------- */

proctype pool_thread()
{
    bool was;
end_idle:
    /* pool_thread: pop a job off the pool queue (pool lock) */
    atomic { job == J_QUEUED -> job = J_RUNNING };
    /* t->fn(t->arg) runs here, then its completion goes to the inbox */
    post(jw, K_JOB, POSTER, was)
}

/* ---- a worker --------------------------------------------------------- */

proctype worker(byte me)
{
    byte t = NONE, x, i, k, v, lw, lj, lp;
    byte postto = NONE;
    byte wlater = NONE; /* worker->wake_after_unlock */
    bool lastm;         /* end_unlocked: main_done as it read it */
    bool work, due, parked, spinw, block, moved, inflight, pl, capped;
    bool was;

    /*
     * Step granularity: each shared action (a critical section of the rt
     * lock, an unlocked load or store of an atomic, an eventfd read or
     * write) is one step; steps on the worker's own state (its runq, its
     * locals) are folded into a neighbouring step.
     */
loop:
    /* knit__worker_loop: main_done is loaded without the lock, then
     * finished() locks and reads nlive. main_done only ever goes from
     * false to true, so the load and the locked read may be one step
     * (it blocks, and lets others run, while the lock is taken). */
    atomic {
        if
        :: main_done ->
            rtl == FREE;
            if
            :: NLIVE == 0 -> goto exit
            :: else -> skip
            fi
        :: else -> goto poll_decide
        fi
    };
    /* shutdown_once(): cancel everything left, once */
    atomic {
        rtl == FREE -> rtl = me;
        if
        :: !cancelled ->
            cancelled = 1;
            /* knit__cancel_all: every worker's tasks (cancel_locked) */
            x = 0;
            do
            :: x < NT ->
                if
                :: ts[x] == T_NEWQ || ts[x] == T_TAKEN ->
                    /* NEW on a ring (which cannot unlink it) or being
                     * taken: only its error is set; whoever takes it
                     * ends it unrun (attach_stack, task_entry) */
                    cx[x] = 1
                :: ts[x] == T_RUNNING ||
                   ts[x] == T_PARKED || ts[x] == T_RUNNABLE ->
                    /* started (or being taken): fire its root scope */
                    cx[x] = 1;
                    /* a parked task of this worker would be interrupted
                     * here; only main parks and main is done (and, with
                     * ABANDON, L, which ignores it) */
                    assert(ts[x] != T_PARKED || x == L)
                :: else -> skip
                fi;
                x++
            :: else -> break
            od;
            x = 0;
            /* the blocking job: unqueued if no pool thread has it */
            if
            :: job == J_QUEUED ->
                job = J_DONE;
                binflight--;
                complete_count(0)
            :: else -> skip
            fi
        :: else -> skip
        fi
    };
    /* knit__scope_fire on another worker's task: knit__task_poke posts to
     * its inbox (under the rt lock, still held) */
    x = 0;
    do
    :: x < NT ->
        if
        :: cx[x] && !poked[x] && tw[x] != me &&
           (ts[x] == T_RUNNING ||
            ts[x] == T_PARKED || ts[x] == T_RUNNABLE) ->
            poked[x] = 1;
            post_push(tw[x], K_POKE, was);
            defer_wake(tw[x], was)
        :: else -> skip
        fi;
        x++
    :: else -> break
    od;
    atomic { x = 0; rtl = FREE };
    flush_wake();
#ifdef ABANDON
    /* abandon_due(): others follow rt->abandoned; worker 0 decides when
     * shutdown_left() is 0 (the deadline has passed: any time here) */
    if
    :: abandoned -> goto exit
    :: else -> skip
    fi;
    if
    :: me == 0 && cancelled ->
        if
        :: d_step {
               rtl == FREE ->
               /* knit__dump_stuck; abandoned = true; wake everyone */
               abandoned = 1;
               wake_idle(NW)
           };
           goto exit
        :: skip
        fi
    :: else -> skip
    fi;
#endif

poll_decide:
    /* poll when the runq is empty, or when due (every KNIT_POLL_EVERY
     * switches: any time, for the model) */
    atomic {
        if
        :: len(runq[me]) == 0 -> due = 0
#ifdef NO_DUE
        :: len(runq[me]) > 0 -> due = 0; goto pick
#else
        :: len(runq[me]) > 0 -> due = 1
        :: len(runq[me]) > 0 -> due = 0; goto pick
#endif
        fi
    };

    /* ---- poll_events ---- */
    /* lock; knit__remote_drain; unlock */
    lock_drain_unlock(me, 0);
    /* if (finished(w)) return; (main_done load, then lock: see above);
     * then: runq not empty: return (no I/O is armed in the model) */
    atomic {
        if
        :: main_done ->
            rtl == FREE;
            if
            :: NLIVE == 0 -> goto pick
            :: else -> skip
            fi
        :: else -> skip
        fi;
        if
        :: len(runq[me]) > 0 -> goto pick
        :: else -> skip
        fi
    };
#ifdef MANUAL
    /* ---- manual_idle (sched.c) ---- */
    /* io_poll(w, 0) */
    evfd[me] = 0;
    lock_drain_unlock(me, 0);
    atomic {
        if
        :: len(runq[me]) > 0 -> goto pick
        :: else -> skip
        fi
    };
    /* knit__manual_idle (newq.c) */
mmove:
    /* marked idle first, then the look, as in knit__idle_enter (the
     * caller leaves idle after its poll if there was work) */
    atomic {
        rtl == FREE -> rtl = me;
        ntimer[me] = (me == 0 && tmr);
        if
        :: !idle[me] -> idle[me] = 1; nidle++
        :: else -> skip
        fi
    };
    d_step {
        any_new(work);
        work = work || LOOP_DUE;
        moved = 0;
        if
        :: !work ->
            if
            :: nidle == NW && binflight == 0 ->
                inflight = 0;
                i = 0;
                do
                :: i < NW -> inflight = inflight || pending[i]; i++
                :: else -> break
                od;
                i = 0;
                if
                :: !inflight && ntimer[0] ->
                    /* "every task is idle": no worker holds a runnable
                     * task (include/knit/rt.h, newq.c) */
                    do
                    :: i < NW -> assert(len(runq[i]) == 0); i++
                    :: else -> break
                    od;
                    i = 0;
                    clock_moved = 1;
                    wake_idle(NW);
                    moved = 1
                :: else -> skip
                fi
            :: else -> skip
            fi
        :: else -> skip
        fi;
        block = !(work || moved);
        work = 0;
        moved = 0;
        inflight = 0;
        rtl = FREE
    };
    /* if (!knit__manual_idle(..)) io_poll(w, -1) */
mpoll:
    pl = block;
#ifndef NO_PENDING_CHECK
    if
    :: block && pending[me] -> block = 0; evfd[me] = 0
    :: else -> skip
    fi;
#endif
    if
    :: block ->
msleep: atomic { evfd[me] -> evfd[me] = 0; block = 0 }
    :: else -> skip
    fi;
#ifndef BUG_MANUAL_IDLE_SPLIT
    /* as sched.c does: leave idle and drain in one critical section */
    lock_drain_unlock(me, 1);
    pl = 0;
#else
    if
    :: pl -> pl = 0; lock_drain_unlock(me, 0)
    :: else -> skip
    fi;
    /* knit__idle_leave */
mleave:
    d_step {
        rtl == FREE ->
        if
        :: idle[me] -> idle[me] = 0; nidle--
        :: else -> skip
        fi
    };
#endif
    /* clock refresh, timers_advance: worker 0 fires its timer */
    d_step {
        rtl == FREE ->
        if
        :: me == 0 && clock_moved && tmr -> tmr = 0
        :: else -> skip
        fi
    };
    goto pick;
#endif
    /* ---- io_poll_idle(w, -1): no timers in the model ---- */
#ifdef ABANDON
    /* cap_timeout(): worker 0 sleeps no longer than the shutdown deadline
     * once the shutdown has started (shutdown_left: main_done, then the
     * lock for shutdown_cancelled) */
    d_step { rtl == FREE -> capped = (me == 0 && main_done && cancelled) };
#endif
#ifdef BUG_UNLOCKED_IDLE
    d_step { rtl == FREE -> any_new(work); work = work || LOOP_DUE };
    if
    :: !work ->
        d_step {
            rtl == FREE ->
            if
            :: !idle[me] -> idle[me] = 1; nidle++
            :: else -> skip
            fi
        }
    :: else -> skip
    fi;
    block = !work;
#else
    /* knit__idle_enter, under the lock: mark idle (seq_cst), then look
     * for work (seq_cst loads of the rings, which spawns push on without
     * the lock), and unmark if there is some; no work: io_poll(w, -1),
     * else io_poll(w, 0) */
#ifdef BUG_LOOK_BEFORE_MARK
    /* mutant: the look first, as when spawns took the lock */
    atomic { rtl == FREE -> rtl = me; any_new(work); work = work || LOOP_DUE };
    d_step {
        if
        :: !work && !idle[me] -> idle[me] = 1; nidle++
        :: else -> skip
        fi;
        check_nidle();
        block = !work;
        rtl = FREE
    };
#else
    atomic {
        rtl == FREE -> rtl = me;
        pl = idle[me];
        if
        :: !idle[me] -> idle[me] = 1; nidle++
        :: else -> skip
        fi
    };
    d_step {
        any_new(work);
        work = work || LOOP_DUE;
        if
        :: work && !pl -> idle[me] = 0; nidle--
        :: else -> skip
        fi;
        pl = 0;
        check_nidle();
        block = !work;
        rtl = FREE
    };
#endif
#endif
    /* ---- io_poll ---- */
#ifndef NO_PENDING_CHECK
    /* a pending inbox never blocks (unlocked acquire load) */
    if
    :: block && pending[me] -> block = 0
    :: else -> skip
    fi;
#endif
    if
    :: !block ->
        evfd[me] = 0    /* epoll_wait(0): reads the eventfd if set */
    :: else ->
#ifdef BUG_NONSTICKY_WAKE
        asleep[me] = 1;
#endif
        /* epoll_wait(-1): sleeps until the eventfd is written */
sleep:  if
        :: atomic { evfd[me] -> evfd[me] = 0; asleep[me] = 0; block = 0 }
#ifdef ABANDON
        :: atomic { capped -> block = 0 }    /* the capped timeout ran out */
#endif
        fi
    fi;
#ifdef ABANDON
    capped = 0;
#endif
    /* lock; knit__remote_drain; unlock */
    lock_drain_unlock(me, 0);
    if
    :: !work ->
        /* knit__idle_leave */
        d_step {
            rtl == FREE ->
            if
            :: idle[me] -> idle[me] = 0; nidle--
            :: else -> skip
            fi
        }
    :: else -> work = 0
    fi;

pick:
    /* the next task: the newq first when due (take_new), else runq_pop:
     * the runq, then the newq */
    atomic {
        t = NONE;
        if
        :: due -> goto take_new
        :: else -> skip
        fi;
pop:
        if
        :: len(runq[me]) > 0 -> runq[me]?t; goto exec_task
        :: else -> skip
        fi
    };
take_new:
    /* knit__newq_take: own ring, else steal half of the fullest other;
     * each a compare-and-swap on the ring's head, no lock (the model has
     * no newq under the lock: every spawn is a worker's own) */
    atomic {
        t = NONE;
        if
        :: len(newq[me]) == 0 ->
            v = NONE;
            i = 0;
            do
            :: i < NW ->
                if
                :: i != me && len(newq[i]) > 0 &&
                   (v == NONE || len(newq[i]) > len(newq[v])) -> v = i
                :: else -> skip
                fi;
                i++
            :: else -> break
            od;
            if
            :: v != NONE ->
                k = (len(newq[v]) + 1) / 2;
                do
                :: k > 0 -> newq[v]?x; newq[me]!x; tw[x] = me; k--
                :: else -> break
                od
            :: else -> skip
            fi
        :: else -> skip
        fi;
        if
        :: len(newq[me]) > 0 -> newq[me]?t; ts[t] = T_TAKEN; tw[t] = me
        :: else -> skip
        fi;
        v = 0; k = 0; x = 0; i = 0;
        if
        :: t != NONE -> due = 0; goto exec_task
        :: t == NONE && due -> due = 0; goto pop   /* take_new found none */
        :: else -> goto loop
        fi
    };

    /* ---- running a task (switch_to_task .. switch_away/task_entry) ---- */
exec_task:
    /* state = RUNNING; task_entry: cancelled before it ever ran? */
    atomic {
        ts[t] = T_RUNNING;
        if
        :: cx[t] && pc[t] == 0 -> pc[t] = PC_END
        :: else -> skip
        fi;
        if
#ifdef ABANDON
        :: t == L && pc[t] == 0 -> pc[t] = 1    /* parks for good, below */
#else
        :: t == L && pc[t] == 0 -> pc[t] = PC_END
#endif
        :: else -> skip
        fi;
#ifdef SMALL
        /* the smaller program: C spawns no L */
        if
        :: t == C && pc[t] == 0 -> pc[t] = 1
        :: else -> skip
        fi;
#endif
        skip
    };
step:
    if
    :: pc[t] == 0 ->
        /* M spawns C, C spawns L: knit__spawn + knit__newq_push, a push
         * on the spawner's own ring: no lock, the tail stored seq_cst
         * (the spawn count is bumped before, under the books lock) */
        atomic {
            x = (t == M -> C : L);
            nlive++;
            ts[x] = T_NEWQ;
            tw[x] = me;
            newq[me]!x;
            pc[t] = 1;
            x = 0;
            /* main may then keep the CPU until C has started elsewhere
             * (a CPU-bound task that never yields): only a woken worker,
             * or one that saw the work before sleeping, can take C */
#ifndef NO_SPINWAIT
            if
            :: t == M -> spinw = 1
            :: skip
            fi;
#endif
            skip
        };
        /* ring_pushed (newq.c): rt->nidle (seq_cst), then the ring's
         * length: a worker is woken only for a push that made the ring
         * non-empty (or for any, on the manual clock) */
        was = nidle > 0;
        atomic {
            if
#ifdef MANUAL
            :: was -> skip
#else
            :: was && len(newq[me]) == 1 -> skip
#endif
            :: else -> was = 0
            fi
        };
#ifndef BUG_NO_WAKE_ON_PUSH
        /* knit__wake_one_later under the lock: the first idle worker's
         * mark is cleared, its driver signalled after the unlock */
        if
        :: was ->
            atomic {
                rtl == FREE ->
                i = 0;
                do
                :: i == NW -> break
                :: i < NW ->
                    if
                    :: idle[i] -> idle[i] = 0; nidle--; wlater = i; i = NW
                    :: else -> i++
                    fi
                od;
                i = 0;
                was = 0
            }
        :: else -> skip
        fi;
#endif
        was = 0;
        flush_wake();
        if
        :: spinw ->
spinning:   atomic { ts[C] != T_NEWQ -> spinw = 0 }
        :: else -> skip
        fi;
        goto step
    :: pc[t] == 1 && t == M ->
        /* knit_join(C): lock; done? else set the joiner and park
         * (switch_away lets the lock go) */
        atomic {
            rtl == FREE ->
            pc[M] = PC_END;
            if
            :: jwst[C] == 2 -> goto step     /* knit__task_ended */
            :: else ->                        /* knit__join_register */
                assert(jwst[C] == 0);
                jwst[C] = 1; joiner[C] = 1; ts[M] = T_PARKED;
                goto switched_away
            fi
        }
#ifdef ABANDON
    :: pc[t] == 1 && t == L ->
        /* waits in a shielded scope that never ends: cancels and pokes
         * do not interrupt it */
        atomic { rtl == FREE -> ts[L] = T_PARKED; goto switched_away }
#endif
    :: pc[t] == 1 && t == C ->
        /* knit_spawn_blocking: a live stackless task on the pool queue */
        d_step {
            rtl == FREE ->
            nlive++;
            binflight++;
            job = J_QUEUED;
            jw = me;
            pc[t] = PC_END
        };
        goto step
    :: pc[t] == PC_END && t != M ->
        /* end_unlocked (sched.c): DONE and the count without the lock
         * (a seq_cst increment), then main_done is read (seq_cst) */
        atomic { ts[t] = T_DONE; nfast++ };
        lastm = main_done;
#ifdef BUG_FAST_END_NO_RECHECK
        lastm = 0;  /* mutant: the last end does not look at main_done */
#endif
        /* the joiner hand-shake: an exchange on t->jw */
        atomic {
            x = jwst[t]; jwst[t] = 2;
            if
            :: x == 1 -> skip
            :: else -> x = 0; goto fast_last
            fi
        };
        /* a joiner waits: lock, wake t->joiner if still set */
        atomic {
            rtl == FREE -> rtl = me;
            x = 0;
            postto = NONE;
            if
            :: joiner[t] ->
                joiner[t] = 0;
                if
                :: tw[M] != me -> postto = tw[M]
                :: else ->
                    assert(ts[M] == T_PARKED);
                    ts[M] = T_RUNNABLE;
                    runq[me]!M
                fi
            :: else -> skip
            fi;
            if
            :: postto == NONE -> rtl = FREE
            :: else -> skip
            fi
        };
        if
        :: postto != NONE ->
            post_push(postto, K_WAKE, was);
            defer_wake(postto, was);
            atomic { rtl = FREE; postto = NONE };
            flush_wake()
        :: else -> skip
        fi;
fast_last:
        /* main had ended when the count was read: the last end wakes
         * every worker (lock; knit__nlive == 0 -> wake_idle) */
        if
        :: lastm ->
            atomic {
                rtl == FREE ->
                if
                :: NLIVE == 0 -> wake_idle(NW)
                :: else -> skip
                fi
            }
        :: else -> skip
        fi;
        lastm = 0;
        goto switched_away
    :: pc[t] == PC_END && t == M ->
        /* task_entry: lock; complete(t, r); unlock */
        atomic {
            rtl == FREE -> rtl = me;
            ts[t] = T_DONE;
            jwst[t] = 2;
            complete_count(t == M);
            postto = NONE;
            if
            :: joiner[t] ->
                /* knit__wake(joiner) -> knit__ready(main) */
                joiner[t] = 0;
                if
                :: tw[M] != me -> postto = tw[M]
                :: else ->
                    assert(ts[M] == T_PARKED);
                    ts[M] = T_RUNNABLE;
                    runq[me]!M
                fi
            :: else -> skip
            fi;
            if
            :: postto == NONE -> rtl = FREE; goto switched_away
            :: else -> skip
            fi
        };
        post_push(postto, K_WAKE, was);
        defer_wake(postto, was);
        atomic { rtl = FREE; postto = NONE };
        flush_wake();
        goto switched_away
    fi;

switched_away:
    /* task_entry / switch_away: straight to the next runnable task (the
     * runq, then a newq), or back to the worker context */
    atomic {
        t = NONE;
        due = 0;
        if
        :: goto loop
#ifndef NO_DIRECT
        :: len(runq[me]) > 0 -> runq[me]?t; goto exec_task
        :: len(runq[me]) == 0 -> goto take_new
#endif
        fi
    };

exit:
    nexited++
}

/* ---- the checker ------------------------------------------------------ */

/* Runs when nothing else can move: every worker must have left its loop
 * (one that sleeps in epoll_wait here was never woken: a lost wake-up),
 * every task must be done, and every request that matters drained. */
proctype checker()
{
    byte i;
    timeout ->
    assert(nexited == NW);          /* nobody sleeps forever */
#ifdef ABANDON
    if
    :: abandoned -> goto abandoned_end   /* L was left behind */
    :: else -> skip
    fi;
#endif
    assert(NLIVE == 0 && main_done);
    assert(ts[M] == T_DONE && ts[C] == T_DONE);
    assert(ts[L] == T_DONE || ts[L] == T_UNBORN);
    assert(job == J_DONE || job == J_NONE);
    assert(binflight == 0);
    i = 0;
    do
    :: i < NW ->
        /* wake-ups and job completions were all drained; a poke may be
         * left in an inbox (its task ended first: worker_fini, rt.c) */
        assert(in_wake[i] == 0 && in_job[i] == 0);
        assert(len(newq[i]) == 0 && len(runq[i]) == 0);
        i++
    :: else -> break
    od;
abandoned_end:
    skip
}

init
{
    byte w = 0;
    atomic {
        /* knit_run (rt.c): main is spawned pinned to worker 0 and placed
         * on its runq (knit__task_place_local), then the workers start
         * (worker 0 is the calling thread) */
        nlive = 1;
        ts[M] = T_TAKEN;
        tw[M] = 0;
        runq[0]!M;
        do
        :: w < NW -> run worker(w); w++
        :: else -> break
        od;
        run pool_thread();
        run checker()
    }
}

/* Termination as a liveness property (run with -a -f, weak fairness):
 * every run ends with every worker out of its loop. */
ltl terminates { <> (nexited == NW) }
