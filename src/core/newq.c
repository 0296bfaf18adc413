// SPDX-License-Identifier: MIT
/*
 * Several workers: where tasks that have not started yet wait, how idle
 * workers take them, and how workers go idle and are woken.
 *
 * Every worker has a newq of spawned, not yet started tasks (a FIFO under
 * the runtime lock). A spawn pushes on the spawner's own newq; a worker
 * whose run queue is empty takes from its own newq, and when that is
 * empty too, steals half of the fullest other newq (Go and tokio steal
 * half, so work spreads in O(log n) steals). A task moves between
 * workers only while it has never run: it has no stack, timer or fd yet.
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

#include "core/remote.h"
#include "core/sched.h"

/* Moves the not-yet-started @t to @to's books (rt lock). */
static void migrate(struct knit_task *t, struct knit_worker *to)
{
    struct knit_worker *from = t->worker;
    if (from == to)
        return;
    knit_list_remove(&t->all_link);
    from->ntasks--;
    from->nlive--;
    knit_list_push_back(&to->tasks, &t->all_link);
    to->ntasks++;
    to->nlive++;
    t->worker = to;
}

void knit__wake_idle(struct knit_rt *rt, int n)
{
    for (int i = 0; i < rt->nworkers && n > 0 && rt->nidle > 0; i++) {
        struct knit_worker *x = &rt->workers[i];
        if (!x->idle)
            continue;
        x->idle = false;
        rt->nidle--;
        x->io.ops->wake(&x->io);
        n--;
    }
}

void knit__newq_push(struct knit_task *t)
{
    struct knit_worker *self = knit__worker();
    struct knit_worker *to = self && self->rt == t->worker->rt ? self
                                                                : t->worker;
    knit__lock(self);
    migrate(t, to);
    t->queued = true;
    t->in_newq = true;
    knit_list_push_back(&to->newq, &t->run_link);
    to->nnew++;
    if (t->worker->rt->nidle > 0)
        knit__wake_idle(t->worker->rt, 1);
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

/* Moves half (rounded up) of the fullest other newq to @w's (rt lock);
 * false when every other newq is empty. */
static bool steal_half(struct knit_worker *w)
{
    struct knit_rt *rt = w->rt;
    struct knit_worker *victim = NULL;
    for (int i = 0; i < rt->nworkers; i++) {
        struct knit_worker *x = &rt->workers[i];
        if (x != w && x->nnew > 0 && (!victim || x->nnew > victim->nnew))
            victim = x;
    }
    if (!victim)
        return false;
    uint64_t n = (victim->nnew + 1) / 2;
    victim->stolen += n;
    w->steals += n;
    while (n-- > 0) {
        struct knit_task *t = newq_pop(victim);
        migrate(t, w);
        t->queued = true;
        t->in_newq = true;
        knit_list_push_back(&w->newq, &t->run_link);
        w->nnew++;
    }
    return true;
}

struct knit_task *knit__newq_take(struct knit_worker *w)
{
    struct knit_task *t = NULL;
    knit__lock(w);
    if (w->nnew > 0 || steal_half(w))
        t = newq_pop(w);
    knit__unlock(w);
    return t;
}

/* Any newq holds a task (rt lock). */
static bool any_new(const struct knit_rt *rt)
{
    for (int i = 0; i < rt->nworkers; i++)
        if (rt->workers[i].nnew > 0)
            return true;
    return false;
}

/* The loop has something to do (rt lock): main has ended and either
 * everything else has too or the shutdown has not been started, or the
 * shutdown deadline passed. */
static bool loop_due(const struct knit_rt *rt)
{
    /* abandoned too: worker 0 wakes only the workers marked idle when it
     * gives up on the shutdown, so one about to mark itself must not
     * (found by tests/model/park.pml). */
    return atomic_load(&rt->abandoned) ||
           (atomic_load(&rt->main_done) &&
            (rt->nlive == 0 || !rt->shutdown_cancelled));
}

bool knit__idle_enter(struct knit_worker *w)
{
    struct knit_rt *rt = w->rt;
    knit__lock(w);
    bool work = any_new(rt) || loop_due(rt);
    if (!work && !w->idle) {
        w->idle = true;
        rt->nidle++;
    }
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
