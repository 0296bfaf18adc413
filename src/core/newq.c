// SPDX-License-Identifier: MIT
/*
 * Several workers: where tasks that have not started yet wait, how idle
 * workers take them, and how workers go idle and are woken.
 *
 * Every worker has a newq of spawned, not yet started tasks (a FIFO under
 * the runtime lock). A spawn pushes on the spawner's own newq. A worker
 * whose run queue is empty takes a batch off its own newq onto its run
 * queue, and when that is empty too, steals half of the fullest other
 * newq, at most STEAL_MAX tasks, straight onto its run queue (Go and
 * tokio steal half, so work spreads in O(log n) steals; the cap bounds
 * the time the lock is held, since the list is walked). A task moves
 * between workers only while it has never run: it has no stack, timer or
 * fd yet. A task on a run queue is no longer stealable; a batch taken
 * from one's own newq is kept small (TAKE_MAX) so that most of a burst
 * stays where an idle worker can take it.
 *
 * Park/unpark (model-checked in tests/model/park.pml): a worker about to
 * sleep in its driver looks for work and marks itself idle in one
 * critical section; whoever makes work (a push on a newq, the last task
 * ending) clears the idle mark of a worker and signals its driver in
 * another. Either the pusher sees the mark, or the worker sees the work:
 * no wake-up is lost. The driver's eventfd keeps a signal made before the
 * worker reaches epoll_wait.
 */
#include <errno.h>
#include <time.h>

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
            rt->nidle--;
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
void knit__wake_one_later(struct knit_worker *self)
{
    struct knit_worker *x = claim_idle(self->rt);
    if (!x)
        return;
    if (knit_unlikely(self->wake_after_unlock != NULL))
        self->wake_after_unlock->io.ops->wake(&self->wake_after_unlock->io);
    self->wake_after_unlock = x;
}

void knit__wake_flush(struct knit_worker *w)
{
    struct knit_worker *x = w->wake_after_unlock;
    w->wake_after_unlock = NULL;
    x->io.ops->wake(&x->io);
}

/* The task struct stays on the books (tasks list) of the worker whose
 * slab it came from; t->worker says where it will run. */
void knit__newq_push(struct knit_task *t)
{
    struct knit_worker *self = knit__worker();
    struct knit_worker *to = self && self->rt == t->worker->rt ? self
                                                                : t->worker;
    knit__lock(self);
    t->worker = to;
    t->queued = true;
    t->in_newq = true;
    knit_list_push_back(&to->newq, &t->run_link);
    to->nnew++;
    if (knit_unlikely(to->rt->nidle > 0)) {
        if (self == to)
            knit__wake_one_later(self);
        else
            knit__wake_idle(to->rt, 1);
    }
    knit__unlock(self);
}

/* Takes the first task of @x's newq (rt lock; x->nnew > 0). */
static struct knit_task *newq_pop(struct knit_worker *x)
{
    struct knit_list *n = knit_list_pop_front(&x->newq);
    struct knit_task *t = knit_container_of(n, struct knit_task, run_link);
    x->nnew--;
    t->queued = false;
    t->in_newq = false;
    return t;
}

/* Takes @n >= 1 tasks off the front of @x's newq for @w (rt lock;
 * x->nnew >= n): the first is returned, the others go to the back of
 * @w's run queue. All are @w's from now on. */
static struct knit_task *take_batch(struct knit_worker *w,
                                    struct knit_worker *x, uint64_t n)
{
    struct knit_task *first = newq_pop(x);
    first->worker = w;
    while (--n > 0) {
        struct knit_task *t = newq_pop(x);
        t->worker = w;
        t->queued = true;
        knit_list_push_back(&w->runq, &t->run_link);
    }
    return first;
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The fullest newq of a worker other than @w, or NULL (rt lock). */
static struct knit_worker *fullest_other(struct knit_worker *w)
{
    struct knit_rt *rt = w->rt;
    struct knit_worker *victim = NULL;
    for (int i = 0; i < rt->nworkers; i++) {
        struct knit_worker *x = &rt->workers[i];
        if (x != w && x->nnew > 0 && (!victim || x->nnew > victim->nnew))
            victim = x;
    }
    return victim;
}

/*
 * Whether @w may steal from @victim's newq now (rt lock). A long newq,
 * yes: a burst is shared at once. A short one only once its first task
 * has waited STEAL_DELAY_NS there, as @w has seen it (the first look
 * starts the wait; no clock is read on the spawn path): a few tasks
 * spawned together that their own worker starts within microseconds
 * (producers and the consumer of a channel) stay together instead of
 * being pulled apart, which would turn every hand-off between them into
 * a cross-worker wake-up; a busy worker's tasks are still taken after a
 * short wait. Go's stealer holds back in the same way before taking a
 * running P's runnext. The manual clock steals at once (tests).
 */
static bool steal_due(struct knit_worker *w, struct knit_worker *victim)
{
    if (victim->nnew >= STEAL_BURST || w->rt->manual)
        return true;
    const struct knit_task *head =
        knit_container_of(victim->newq.next, struct knit_task, run_link);
    int64_t now = monotonic_ns();
    if (w->steal_seen != head->id) {
        w->steal_seen = head->id;
        w->steal_seen_at = now;
        return false;
    }
    return now - w->steal_seen_at >= STEAL_DELAY_NS;
}

/* Takes half (rounded up, at most STEAL_MAX) of the fullest other newq
 * for @w as take_batch does, if steal_due (rt lock); else NULL. */
static struct knit_task *steal_half(struct knit_worker *w)
{
    struct knit_worker *victim = fullest_other(w);
    if (!victim || !steal_due(w, victim))
        return NULL;
    uint64_t n = (victim->nnew + 1) / 2;
    if (n > STEAL_MAX)
        n = STEAL_MAX;
    victim->stolen += n;
    w->steals += n;
    return take_batch(w, victim, n);
}

/*
 * A task not yet started, for @w: off its own newq first, a batch of up
 * to TAKE_MAX (a quarter of it, at least one, so that most of a burst
 * stays stealable), else a steal. The first task is returned, the rest
 * wait at the back of @w's run queue.
 */
struct knit_task *knit__newq_take(struct knit_worker *w)
{
    struct knit_task *t;
    knit__lock(w);
    if (w->nnew > 0) {
        uint64_t n = (w->nnew + 3) / 4;
        t = take_batch(w, w, n < TAKE_MAX ? n : TAKE_MAX);
    } else {
        t = steal_half(w);
    }
    knit__unlock(w);
    return t;
}

uint64_t knit__nlive(struct knit_rt *rt)
{
    /* Every task counted ended here was counted spawned in rt->nlive
     * before (its spawn happened before it ran), so this never wraps;
     * an end counted after the loop read its worker only makes it high. */
    uint64_t ended = 0;
    for (int i = 0; i < rt->nworkers; i++)
        ended += atomic_load(&rt->workers[i].nended_fast);
    return rt->nlive - ended;
}

/* Any newq holds a task (rt lock). */
static bool any_new(const struct knit_rt *rt)
{
    for (int i = 0; i < rt->nworkers; i++)
        if (rt->workers[i].nnew > 0)
            return true;
    return false;
}

/* @w has a task not yet started to take now (rt lock): one of its own,
 * or one it may steal (steal_due). */
static bool new_for(struct knit_worker *w)
{
    if (w->nnew > 0)
        return true;
    struct knit_worker *victim = fullest_other(w);
    return victim && steal_due(w, victim);
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
    bool work = new_for(w) || loop_due(rt);
    if (!work && !w->idle) {
        w->idle = true;
        rt->nidle++;
    }
    /* Tasks it may steal once they have waited: come back for them. */
    *steal_soon = !work && any_new(rt);
    knit__unlock(w);
    return !work;
}

void knit__idle_leave(struct knit_worker *w)
{
    knit__lock(w);
    if (w->idle) {
        w->idle = false;
        w->rt->nidle--;
    }
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
            x->idle = false;
            rt->nidle--;
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
    if (any_new(rt) || loop_due(rt)) {
        knit__unlock(w);
        return true; /* not idle: go round the loop again */
    }
    if (w->ticks != w->ticks_at_idle) {
        w->ticks_at_idle = w->ticks;
        rt->idle_epoch++;
    }
    w->idle_epoch = rt->idle_epoch; /* it polled just before this */
    if (!w->idle) {
        w->idle = true;
        rt->nidle++;
    }
    if (rt->nidle == rt->nworkers && rt->blocking_inflight == 0 &&
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
