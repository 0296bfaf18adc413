// SPDX-License-Identifier: MIT
/*
 * Several workers: where tasks that have not started yet wait, how idle
 * workers take them, and how workers go idle and are woken.
 *
 * Spawned tasks that have not started yet wait in two places. A task a
 * worker's own thread spawns goes on that worker's spawn ring (ring.h),
 * with no lock; a task spawned from outside (another runtime's thread,
 * knit_run's main) or when the ring cannot grow goes on the worker's
 * newq, a FIFO under the runtime lock (the inject queue). A worker whose
 * run queue is empty takes a batch off its own ring, else its own newq,
 * and when both are empty steals half of the fullest other newq or ring,
 * at most STEAL_MAX tasks, straight onto its run queue (Go and tokio
 * steal half, so work spreads in O(log n) steals). Every KNIT_POLL_EVERY
 * switches the newq goes first, so the ring cannot starve it. A task
 * moves between workers only while it has never run: it has no stack,
 * timer or fd yet. A task on a run queue is no longer stealable; a batch
 * taken from one's own queue is kept small (TAKE_MAX) so that most of a
 * burst stays where an idle worker can take it.
 *
 * Park/unpark (model-checked in tests/model/park.pml): a worker about to
 * sleep in its driver marks itself idle (rt->nidle, seq_cst) and then
 * looks for work, under the runtime lock; a spawn pushes on its ring
 * (the tail stored seq_cst) and then reads rt->nidle, and if a worker is
 * idle, clears its mark and signals its driver under the lock. Either the
 * spawner sees the mark, or the worker sees the task: no wake-up is lost.
 * A spawn signals only when its push made the ring non-empty or
 * STEAL_BURST long (or on the manual clock): an idle worker that saw
 * fewer tasks is coming back for them anyway (steal_soon). The last task
 * ending wakes every idle worker. The driver's eventfd keeps a signal
 * made before the worker reaches epoll_wait.
 */
#include <errno.h>
#include <time.h>

#include "core/ring.h"

#include "core/remote.h"
#include "core/sched.h"

/* Tasks a worker moves from its own newq to its run queue at once. */
#define TAKE_MAX 8
/* Tasks one steal moves at most. */
#define STEAL_MAX 64
/* A newq at least this long is stolen from at once... */
#define STEAL_BURST 16
/* ...a shorter one only once its first task has waited this long. */
#define STEAL_DELAY_NS 500000

/* Clears the idle mark of the first idle worker (rt lock) and returns
 * it, to be signalled once the lock is let go; NULL when none is idle. */
static struct knit_worker *claim_idle(struct knit_rt *rt)
{
    for (int i = 0; i < rt->nworkers && rt->nidle > 0; i++) {
        struct knit_worker *x = &rt->workers[i];
        if (x->idle) {
            x->idle = false;
            atomic_fetch_sub(&rt->nidle, 1);
            return x;
        }
    }
    return NULL;
}

void knit__wake_idle(struct knit_rt *rt, int n)
{
    struct knit_worker *x;
    while (n-- > 0 && (x = claim_idle(rt)) != NULL)
        x->io.ops->wake(&x->io);
}

/*
 * A system call inside the lock would make every other worker wait for
 * it, so the signal waits for the outermost unlock. A worker whose idle
 * mark was cleared cannot miss it: its driver keeps the signal until its
 * next poll (park/unpark above). Only a worker thread takes the lock, and
 * no worker's driver is closed before every worker thread has left its
 * loop, so the target is still there.
 */
void knit__wake_later(struct knit_worker *self, struct knit_worker *x)
{
    struct knit_worker *prev = self->wake_after_unlock;
    if (knit_unlikely(prev != NULL && prev != x))
        prev->io.ops->wake(&prev->io); /* one slot: the older one now */
    self->wake_after_unlock = x;
}

void knit__wake_one_later(struct knit_worker *self)
{
    struct knit_worker *x = claim_idle(self->rt);
    if (x)
        knit__wake_later(self, x);
}

void knit__wake_flush(struct knit_worker *w)
{
    struct knit_worker *x = w->wake_after_unlock;
    w->wake_after_unlock = NULL;
    x->io.ops->wake(&x->io);
}

/* Pushes @t on @to's newq (rt lock), waking an idle worker for it. */
static void newq_push_locked(struct knit_worker *self, struct knit_worker *to,
                             struct knit_task *t)
{
    t->queued = true;
    t->in_newq = true;
    knit_list_push_back(&to->newq, &t->run_link);
    atomic_fetch_add_explicit(&to->nnew, 1, memory_order_relaxed);
    if (knit_unlikely(atomic_load(&to->rt->nidle) > 0)) {
        if (self == to)
            knit__wake_one_later(self);
        else
            knit__wake_idle(to->rt, 1);
    }
}

/* After a push on @self's ring: an idle worker is woken if the ring
 * became non-empty or STEAL_BURST long (see the top). */
static void ring_pushed(struct knit_worker *self)
{
    struct knit_rt *rt = self->rt;
    if (knit_likely(atomic_load(&rt->nidle) == 0)) /* seq_cst: see top */
        return;
    uint64_t len = knit__ring_len(&self->ring);
    if (len != 1 && len != STEAL_BURST && !rt->manual)
        return;
    knit__lock(self);
    knit__wake_one_later(self);
    knit__unlock(self);
}

/* The task struct stays on the books of the worker whose slab it came
 * from; t->worker says where it will run. */
void knit__newq_push(struct knit_task *t)
{
    struct knit_worker *self = knit__worker();
    if (self && self->rt == t->worker->rt) {
        t->worker = self; /* a spawn goes on the spawner's own queue */
        if (knit_likely(knit__ring_push(&self->ring, t))) {
            ring_pushed(self);
            return;
        }
        /* The ring could not grow: the newq takes it. */
    }
    knit__lock(self);
    newq_push_locked(self, t->worker, t);
    knit__unlock(self);
}

/* Takes the first task of @x's newq (rt lock; x->nnew > 0). */
static struct knit_task *newq_pop(struct knit_worker *x)
{
    struct knit_list *n = knit_list_pop_front(&x->newq);
    struct knit_task *t = knit_container_of(n, struct knit_task, run_link);
    atomic_fetch_sub_explicit(&x->nnew, 1, memory_order_relaxed);
    t->queued = false;
    t->in_newq = false;
    return t;
}

/* Makes @t, just taken off a newq or ring, @w's: it runs there. Stored
 * atomically: a dump may read it meanwhile (knit__task_worker_peek). */
static void adopt(struct knit_worker *w, struct knit_task *t)
{
    __atomic_store_n(&t->worker, w, __ATOMIC_RELAXED);
}

/* @t, taken for @w, waits at the back of @w's run queue. */
static void adopt_queued(struct knit_worker *w, struct knit_task *t)
{
    adopt(w, t);
    t->queued = true;
    knit_list_push_back(&w->runq, &t->run_link);
}

/* Takes @n >= 1 tasks off the front of @x's newq for @w (rt lock;
 * x->nnew >= n): the first is returned, the others go to the back of
 * @w's run queue. All are @w's from now on. */
static struct knit_task *take_batch(struct knit_worker *w,
                                    struct knit_worker *x, uint64_t n)
{
    struct knit_task *first = newq_pop(x);
    adopt(w, first);
    while (--n > 0)
        adopt_queued(w, newq_pop(x));
    return first;
}

/* Takes a batch off @x's ring for @w as take_batch does, a @div-th of
 * it, at most @max (<= STEAL_MAX); NULL when it was empty. */
static struct knit_task *ring_batch(struct knit_worker *w,
                                    struct knit_worker *x, unsigned div,
                                    unsigned max)
{
    struct knit_task *got[STEAL_MAX];
    unsigned n = knit__ring_take(&x->ring, got, div, max);
    if (n == 0)
        return NULL;
    adopt(w, got[0]);
    for (unsigned i = 1; i < n; i++)
        adopt_queued(w, got[i]);
    if (x != w) {
        atomic_fetch_add_explicit(&x->stolen, n, memory_order_relaxed);
        w->steals += n;
    }
    return got[0];
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Tasks on @x's newq (a hint without the rt lock). */
static uint64_t nnew(struct knit_worker *x)
{
    return atomic_load_explicit(&x->nnew, memory_order_relaxed);
}

static uint64_t ring_len(struct knit_worker *x)
{
    return knit__ring_len(&x->ring);
}

/* The worker other than @w whose queue (@len_of: nnew or ring_len) is
 * the longest, its length in *len; NULL when all are empty (rt lock for
 * the newqs). */
static struct knit_worker *fullest(struct knit_worker *w,
                                   uint64_t (*len_of)(struct knit_worker *),
                                   uint64_t *len)
{
    struct knit_rt *rt = w->rt;
    struct knit_worker *victim = NULL;
    *len = 0;
    for (int i = 0; i < rt->nworkers; i++) {
        struct knit_worker *x = &rt->workers[i];
        uint64_t n = x != w ? len_of(x) : 0;
        if (n > *len) {
            victim = x;
            *len = n;
        }
    }
    return victim;
}

/*
 * Whether @w may steal now from a queue @len long whose oldest task is
 * named @key (a task id, or a ring index). A long queue, yes: a burst is
 * shared at once. A short one only once its first task has waited
 * STEAL_DELAY_NS there, as @w has seen it (the first look starts the
 * wait; no clock is read on the spawn path): a few tasks spawned
 * together that their own worker starts within microseconds (producers
 * and the consumer of a channel) stay together instead of being pulled
 * apart, which would turn every hand-off between them into a
 * cross-worker wake-up; a busy worker's tasks are still taken after a
 * short wait. Go's stealer holds back in the same way before taking a
 * running P's runnext. The manual clock steals at once (tests).
 */
static bool steal_due(struct knit_worker *w, uint64_t len, uint64_t key)
{
    if (len >= STEAL_BURST || w->rt->manual)
        return true;
    int64_t now = monotonic_ns();
    if (w->steal_seen != key) {
        w->steal_seen = key;
        w->steal_seen_at = now;
        return false;
    }
    return now - w->steal_seen_at >= STEAL_DELAY_NS;
}

/* The key steal_due knows a newq's oldest task by (rt lock). */
static uint64_t newq_key(struct knit_worker *x)
{
    return knit_container_of(x->newq.next, struct knit_task, run_link)->id;
}

/* ...and a ring's: its head index, tagged with the worker's id and the
 * top bit so that it never equals a task id (those stay below 2^63). */
static uint64_t ring_key(struct knit_worker *x)
{
    return UINT64_C(1) << 63 | (uint64_t)x->id << 48 |
           (knit__ring_head(&x->ring) & ((UINT64_C(1) << 48) - 1));
}

/* Takes half (rounded up, at most STEAL_MAX) of the fullest other newq
 * for @w as take_batch does, if steal_due (rt lock); else NULL. */
static struct knit_task *steal_half(struct knit_worker *w)
{
    uint64_t len;
    struct knit_worker *victim = fullest(w, nnew, &len);
    if (!victim || !steal_due(w, len, newq_key(victim)))
        return NULL;
    uint64_t n = (len + 1) / 2;
    if (n > STEAL_MAX)
        n = STEAL_MAX;
    atomic_fetch_add_explicit(&victim->stolen, n, memory_order_relaxed);
    w->steals += n;
    return take_batch(w, victim, n);
}

/* Half (at most STEAL_MAX) of the fullest other ring, if steal_due. */
static struct knit_task *steal_ring(struct knit_worker *w)
{
    uint64_t len;
    struct knit_worker *victim = fullest(w, ring_len, &len);
    if (!victim || !steal_due(w, len, ring_key(victim)))
        return NULL;
    return ring_batch(w, victim, 2, STEAL_MAX);
}

/* Some newq holds a task (a hint without the rt lock). */
static bool any_newq(const struct knit_rt *rt)
{
    for (int i = 0; i < rt->nworkers; i++)
        if (nnew(&rt->workers[i]) > 0)
            return true;
    return false;
}

/* From the newqs, under the rt lock: a batch of @w's own (TAKE_MAX, a
 * quarter, at least one), else a steal; NULL when none is due. */
static struct knit_task *newq_take_locked(struct knit_worker *w)
{
    if (!any_newq(w->rt))
        return NULL;
    struct knit_task *t;
    knit__lock(w);
    if (nnew(w) > 0) {
        uint64_t n = (nnew(w) + 3) / 4;
        t = take_batch(w, w, n < TAKE_MAX ? n : TAKE_MAX);
    } else {
        t = steal_half(w);
    }
    knit__unlock(w);
    return t;
}

/*
 * A task not yet started, for @w: off its own ring first (a batch as for
 * the newq), then the newqs, then another's ring; the newqs first when
 * @newq_first (now and then, so that the ring cannot starve them). The
 * first task is returned, the rest wait at the back of @w's run queue.
 */
struct knit_task *knit__newq_take(struct knit_worker *w, bool newq_first)
{
    struct knit_task *t = NULL;
    if (newq_first)
        t = newq_take_locked(w);
    if (!t)
        t = ring_batch(w, w, 4, TAKE_MAX);
    if (!t && !newq_first)
        t = newq_take_locked(w);
    if (!t)
        t = steal_ring(w);
    return t;
}

uint64_t knit__nlive(struct knit_rt *rt)
{
    uint64_t ended = 0, spawned = 0;
    for (int i = 0; i < rt->nworkers; i++)
        ended += atomic_load(&rt->workers[i].nended);
    for (int i = 0; i < rt->nworkers; i++)
        spawned += atomic_load(&rt->workers[i].nspawned);
    return spawned - ended;
}

/* Any newq or ring holds a task (rt lock, for the newqs). */
static bool any_new(struct knit_rt *rt)
{
    for (int i = 0; i < rt->nworkers; i++)
        if (nnew(&rt->workers[i]) > 0 || ring_len(&rt->workers[i]) > 0)
            return true;
    return false;
}

/* @w has a task not yet started to take now (rt lock): one of its own,
 * or one it may steal (steal_due). */
static bool new_for(struct knit_worker *w)
{
    if (nnew(w) > 0 || ring_len(w) > 0)
        return true;
    uint64_t len;
    struct knit_worker *victim = fullest(w, nnew, &len);
    if (victim && steal_due(w, len, newq_key(victim)))
        return true;
    victim = fullest(w, ring_len, &len);
    return victim && steal_due(w, len, ring_key(victim));
}

/* Marks @w idle (rt lock); seq_cst, before it looks for work. */
static void mark_idle(struct knit_worker *w)
{
    if (!w->idle) {
        w->idle = true;
        atomic_fetch_add(&w->rt->nidle, 1);
    }
}

static void unmark_idle(struct knit_worker *w)
{
    if (w->idle) {
        w->idle = false;
        atomic_fetch_sub(&w->rt->nidle, 1);
    }
}

/* The loop has something to do (rt lock): main has ended and either
 * everything else has too or the shutdown has not been started, or the
 * shutdown deadline passed. */
static bool loop_due(struct knit_rt *rt)
{
    /* abandoned too: worker 0 wakes only the workers marked idle when it
     * gives up on the shutdown, so one about to mark itself must not
     * (found by tests/model/park.pml). */
    return atomic_load(&rt->abandoned) ||
           (atomic_load(&rt->main_done) &&
            (knit__nlive(rt) == 0 || !rt->shutdown_cancelled));
}

bool knit__idle_enter(struct knit_worker *w, bool *steal_soon)
{
    struct knit_rt *rt = w->rt;
    knit__lock(w);
    /* Marked, then the look: a spawn that pushes after the look sees
     * the mark (see the top). */
    bool was_idle = w->idle;
    mark_idle(w);
    bool work = new_for(w) || loop_due(rt);
    if (work && !was_idle)
        unmark_idle(w);
    /* Tasks it may steal once they have waited: come back for them. */
    *steal_soon = !work && any_new(rt);
    knit__unlock(w);
    return !work;
}

void knit__idle_leave(struct knit_worker *w)
{
    knit__lock(w);
    unmark_idle(w);
    knit__unlock(w);
}

/* Wakes the idle workers whose last poll is older than the epoch, so
 * that they look at their fds again (rt lock); how many. */
static int wake_stale(struct knit_rt *rt)
{
    int n = 0;
    for (int i = 0; i < rt->nworkers; i++) {
        struct knit_worker *x = &rt->workers[i];
        if (x->idle && x->idle_epoch != rt->idle_epoch) {
            unmark_idle(x);
            x->io.ops->wake(&x->io);
            n++;
        }
    }
    return n;
}

/*
 * The manual clock with several workers moves when every worker is idle
 * and nothing is in flight (no newq entry, no inbox request, no blocking
 * job), and every worker has polled its driver since the last task ran
 * anywhere: a task on one worker may have made another's fd ready (a
 * write on a pipe), and that worker must see it before time jumps. A
 * worker that ran tasks since it was last idle starts a new epoch; idle
 * workers of an older one are woken to poll again. When all are idle in
 * the current epoch, the last one moves the clock to the earliest timer
 * of all workers and wakes them all to fire what became due.
 */
bool knit__manual_idle(struct knit_worker *w, int64_t next_timer)
{
    struct knit_rt *rt = w->rt;
    bool moved = false;
    knit__lock(w);
    w->next_timer = next_timer;
    /* Marked before the look, as in knit__idle_enter; the caller leaves
     * idle after its next poll either way. */
    mark_idle(w);
    if (any_new(rt) || loop_due(rt)) {
        knit__unlock(w);
        return true; /* not idle: go round the loop again */
    }
    if (w->ticks != w->ticks_at_idle) {
        w->ticks_at_idle = w->ticks;
        rt->idle_epoch++;
    }
    w->idle_epoch = rt->idle_epoch; /* it polled just before this */
    if (atomic_load(&rt->nidle) == rt->nworkers &&
        rt->blocking_inflight == 0 &&
        wake_stale(rt) == 0) {
        int64_t min = -1;
        bool inflight = false;
        for (int i = 0; i < rt->nworkers; i++) {
            struct knit_worker *x = &rt->workers[i];
            if (knit__remote_pending(x))
                inflight = true;
            if (x->next_timer >= 0 && (min < 0 || x->next_timer < min))
                min = x->next_timer;
        }
        if (!inflight && min >= 0) {
            if (min > atomic_load(&rt->manual_now))
                atomic_store(&rt->manual_now, min);
            knit__wake_idle(rt, rt->nworkers);
            moved = true;
        }
    }
    knit__unlock(w);
    return moved;
}
