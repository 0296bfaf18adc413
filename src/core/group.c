// SPDX-License-Identifier: MIT
/*
 * Task groups (knit/group.h) and knit_race.
 *
 * A group keeps its children on two lists: running, and done-but-not-
 * reaped. A child that ends moves itself from one to the other and wakes
 * the owner when the owner waits for it (next: any child; wait: the last).
 * The owner task counts the children its groups hold, and each child
 * records its owner, so that an owner ending with children left is caught
 * (knit__group_check_owner_exit) without touching the group, which lived
 * on the owner's stack and is gone by then.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/compiler.h"
#include "core/sched.h"
#include "knit/group.h"
#include "knit/scope.h"

struct knit_group_impl {
    struct knit_list running;   /* children still running (group_link) */
    struct knit_list done;      /* ended, not yet reaped (group_link) */
    struct knit_task *owner;    /* the task that initialised it */
    struct knit_waiter *waiter; /* the owner, parked in next or wait */
    size_t nrunning;            /* entries on running */
    size_t ndone;               /* entries on done */
    uint64_t nspawned;          /* children ever spawned (group_index) */
    int first_err;              /* first child error, 0 if none */
    unsigned flags;             /* KNIT_GROUP_* */
    bool cancelled;             /* knit_group_cancel or fail-fast fired */
    bool wait_all;              /* the waiter wants every child ended */
};

_Static_assert(sizeof(knit_group) >= sizeof(struct knit_group_impl),
               "grow knit_group");

static inline struct knit_group_impl *impl(knit_group *g)
{
    return (struct knit_group_impl *)(void *)g;
}

void knit_group_init(knit_group *g, unsigned flags)
{
    struct knit_group_impl *x = impl(g);
    knit_list_init(&x->running);
    knit_list_init(&x->done);
    x->owner = knit__task();
    if (!x->owner)
        knit__panic("knit_group_init called outside a task");
    x->waiter = NULL;
    x->nrunning = x->ndone = 0;
    x->nspawned = 0;
    x->first_err = 0;
    x->flags = flags;
    x->cancelled = false;
    x->wait_all = false;
}

static void cancel_children(struct knit_group_impl *x)
{
    struct knit_list *it, *tmp;
    x->cancelled = true;
    knit_list_for_each_safe(it, tmp, &x->running)
    {
        knit_cancel(knit_container_of(it, struct knit_task, group_link));
    }
}

/* Spawns fn(arg) into @x; NULL when out of memory. */
static struct knit_task *group_add(struct knit_group_impl *x, knit_fn fn,
                                   void *arg)
{
    struct knit_worker *w = knit__worker();
    if (!w)
        knit__panic("knit_group_spawn called outside a knit runtime");
    struct knit_task *t = knit__spawn(w, NULL, fn, arg);
    if (!t)
        return NULL;
    t->group = x;
    t->group_owner = x->owner;
    t->group_index = x->nspawned++;
    knit_list_push_back(&x->running, &t->group_link);
    x->nrunning++;
    x->owner->group_held++;
    return t;
}

static int group_spawn(knit_group *g, knit_fn fn, void *arg)
{
    struct knit_group_impl *x = impl(g);
    if (x->cancelled)
        return -ECANCELED;
    return group_add(x, fn, arg) ? 0 : -ENOMEM;
}

void knit__group_task_done(struct knit_task *t)
{
    struct knit_group_impl *x = t->group;
    knit_list_remove(&t->group_link);
    knit_list_push_back(&x->done, &t->group_link);
    x->nrunning--;
    x->ndone++;
    int r = t->result;
    if (r < 0 && !(r == -ECANCELED && x->cancelled)) {
        if (!x->first_err)
            x->first_err = r;
        if ((x->flags & KNIT_GROUP_FAIL_FAST) && !x->cancelled)
            cancel_children(x);
    }
    if (x->waiter && (!x->wait_all || x->nrunning == 0)) {
        struct knit_waiter *w = x->waiter;
        x->waiter = NULL;
        knit__wake(w, 0);
    }
}

/* Frees a reaped child and returns its result. */
static int reap(struct knit_group_impl *x, struct knit_task *t)
{
    int r = t->result;
    knit_list_remove(&t->group_link);
    x->ndone--;
    t->group = NULL;
    knit__task_unref(t);
    x->owner->group_held--;
    return r;
}

static void group_wait_cancel(struct knit_waiter *w)
{
    struct knit_group_impl *x = (struct knit_group_impl *)w->obj;
    if (x->waiter == w)
        x->waiter = NULL;
}

/* Parks until a child ends (or, with @all, until none runs). */
static int park_on(struct knit_group_impl *x, bool all)
{
    struct knit_waiter w;
    knit__waiter_init(&w, all ? "group wait" : "group next", x,
                      group_wait_cancel);
    /* The waker or the cancel hook clears x->waiter before knit__wait
     * returns (waitq.h's invariant), so &w never outlives this frame. */
    x->waiter = &w;
    x->wait_all = all;
    return knit__wait(&w); // NOLINT(clang-analyzer-core.StackAddressEscape)
}

static int group_next(knit_group *g, int *result)
{
    struct knit_group_impl *x = impl(g);
    while (knit_list_is_empty(&x->done)) {
        if (x->nrunning == 0)
            return -EPIPE;
        int err = park_on(x, false);
        if (err)
            return err;
    }
    struct knit_task *t =
        knit_container_of(x->done.next, struct knit_task, group_link);
    int r = reap(x, t);
    if (result)
        *result = r;
    return 0;
}

static int group_wait(knit_group *g)
{
    struct knit_group_impl *x = impl(g);
    int err = 0;
    while (x->nrunning > 0) {
        err = park_on(x, true);
        if (err)
            break;
    }
    if (err) {
        /* Cancelled while waiting: no child may outlive the group, so
         * cancel them and wait again where nothing can interrupt us. */
        cancel_children(x);
        knit_scope shield;
        knit_scope_enter_shielded(&shield, KNIT_FOREVER);
        while (x->nrunning > 0)
            park_on(x, true);
        knit_scope_exit(&shield);
    }
    while (!knit_list_is_empty(&x->done))
        reap(x, knit_container_of(x->done.next, struct knit_task, group_link));
    int first = x->first_err;
    x->first_err = 0;
    x->cancelled = false;
    return err ? err : first;
}

/* ---- the public calls: each under the runtime lock (sched.h) ---------- */

int knit_group_spawn(knit_group *g, knit_fn fn, void *arg)
{
    return KNIT_LOCKED(group_spawn(g, fn, arg));
}

int knit_group_next(knit_group *g, int *result)
{
    return KNIT_LOCKED(group_next(g, result));
}

int knit_group_wait(knit_group *g)
{
    return KNIT_LOCKED(group_wait(g));
}

void knit_group_cancel(knit_group *g)
{
    KNIT_LOCKED_VOID(cancel_children(impl(g)));
}

size_t knit_group_len(const knit_group *g)
{
    const struct knit_group_impl *x =
        (const struct knit_group_impl *)(const void *)g;
    return KNIT_LOCKED(x->nrunning + x->ndone);
}

void knit__group_check_owner_exit(struct knit_task *t)
{
    if (t->group_held == 0)
        return;
    struct knit_rt *rt = t->worker->rt;
    size_t running = 0, done = 0;
    struct knit_list *it, *tmp;
    for (int i = 0; i < rt->nworkers; i++) {
        knit__books_lock(&rt->workers[i]);
        knit_list_for_each(it, &rt->workers[i].tasks)
        {
            struct knit_task *c =
                knit_container_of(it, struct knit_task, all_link);
            if (c->group && c->group_owner == t) {
                if (c->state == KNIT_TASK_DONE)
                    done++;
                else
                    running++;
            }
        }
        knit__books_unlock(&rt->workers[i]);
    }
    fprintf(stderr,
            "knit: task %llu (\"%s\") returned while its group still holds "
            "%zu running and %zu unreaped tasks; call knit_group_wait before "
            "returning\n",
            (unsigned long long)t->id, t->name, running, done);
#ifndef NDEBUG
    abort();
#endif
    /* Release builds: the group's memory went away with the owner's
     * stack, so cut the children loose: cancelled and detached. */
    for (int i = 0; i < rt->nworkers; i++) {
        knit__books_lock(&rt->workers[i]);
        knit_list_for_each_safe(it, tmp, &rt->workers[i].tasks)
        {
            struct knit_task *c =
                knit_container_of(it, struct knit_task, all_link);
            if (!c->group || c->group_owner != t)
                continue;
            c->group = NULL;
            c->group_owner = NULL;
            knit_list_init(&c->group_link);
            if (c->state == KNIT_TASK_DONE) {
                knit__task_unref(c);
            } else {
                c->detached = true;
                knit_cancel(c);
                knit__task_unref(c); /* by its worker, when it ends */
            }
        }
        knit__books_unlock(&rt->workers[i]);
    }
    t->group_held = 0;
}

static int race(int n, const knit_fn *fns, void *const *args, int *winner)
{
    if (n < 1 || !fns)
        return -EINVAL;
    knit_group g;
    knit_group_init(&g, 0);
    struct knit_group_impl *x = impl(&g);
    int result = 0;
    for (int i = 0; i < n; i++) {
        if (!group_add(x, fns[i], args ? args[i] : NULL)) {
            result = -ENOMEM;
            break;
        }
    }
    while (!result && knit_list_is_empty(&x->done))
        result = park_on(x, false);
    if (!result) {
        struct knit_task *t =
            knit_container_of(x->done.next, struct knit_task, group_link);
        if (winner)
            *winner = (int)t->group_index;
        result = t->result;
    }
    /* The losers are cancelled and awaited; their results do not matter. */
    cancel_children(x);
    group_wait(&g);
    return result;
}

int knit_race(int n, const knit_fn *fns, void *const *args, int *winner)
{
    return KNIT_LOCKED(race(n, fns, args, winner));
}
