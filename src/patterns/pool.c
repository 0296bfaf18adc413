// SPDX-License-Identifier: MIT
/*
 * The resource pool (knit/patterns/pool.h): the slot table and the idle
 * list, acquire and release, then the background keeper (min_idle and
 * idle eviction), then close and free.
 *
 * Accounting. A knit_sem of max_size permits admits the users: a task
 * holds one permit from the moment knit_sem_acquire grants it until its
 * resource is released, and the keeper holds one while it creates. A
 * resource lives in one of max_size slots, allocated with the pool, so
 * the limit is structural: there is nowhere to put a resource beyond it.
 * Idle resources hold no permit. Every slot that is pending (being made
 * or checked) or checked out belongs to one permit holder, so a holder
 * that finds no idle resource always finds a free slot: the slots in use
 * are at most the holders other than itself.
 *
 * The semaphore does the waiting: it is FIFO, hands a released permit
 * straight to the head waiter (a newcomer cannot barge in), and a waiter
 * that is cancelled or times out leaves with nothing taken. Closing the
 * pool closes it, which wakes the waiters with -EPIPE.
 *
 * Idle resources form a list from the most recently released (taken
 * first: a hot connection stays hot) to the oldest (evicted first: the
 * surplus ages out). The keeper sleeps in a select on the next eviction
 * time and on a notify that every change of the pool pokes.
 *
 * Several workers. The slot table, the idle list, the gauges and the
 * counters are read and written under the pool's spin lock `lk`, which
 * is never held across a park nor across the user's create, check and
 * destroy: a slot being worked on outside the lock is PENDING (create,
 * check) or DYING (destroy), so nobody else touches it meanwhile.
 *
 * Built only on the public API (DESIGN section 4, layering).
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>
#include "patterns/misuse.h"

#define DEFAULT_RETRY_MS 100
#define RETRY_CAP_MS 10000

enum slot_state {
    SLOT_FREE,    /* holds nothing */
    SLOT_PENDING, /* being created or checked by a permit holder */
    SLOT_IDLE,    /* on the idle list */
    SLOT_OUT,     /* checked out */
    SLOT_DYING,   /* being destroyed; free once destroy returned */
};

/* One resource, or room for one. */
struct slot {
    void *res;          /* the resource, unless SLOT_FREE */
    int64_t idle_since; /* knit_now() at its release; SLOT_IDLE only */
    struct slot *newer; /* on the idle list, toward newest; NULL at it */
    struct slot *older; /* on the idle list, toward oldest; NULL at it */
    enum slot_state state;
};

struct knit_pool {
    knit_pool_opts o;    /* the options, copied */
    knit_sem permits;    /* max_size permits; see the top */
    knit_notify wake;    /* pokes the keeper */
    knit_task *keeper;   /* the background task, or NULL */
    knit__pspin lk;      /* guards everything below */
    struct slot *newest; /* head of the idle list */
    struct slot *oldest; /* tail of the idle list */
    unsigned idle;       /* slots SLOT_IDLE */
    unsigned out;        /* slots SLOT_OUT */
    unsigned pending;    /* slots SLOT_PENDING */
    unsigned waiting;    /* tasks inside knit_sem_acquire */
    unsigned users;      /* tasks inside knit_pool_acquire */
    atomic_bool closed;  /* knit_pool_close was called; set under lk */
    knit_pool_stats n;   /* the counters (the gauges are computed) */
    struct slot slots[]; /* o.max_size of them */
};

static void lock(const knit_pool *p)
{
    knit__pspin_lock((knit__pspin *)&p->lk);
}

static void unlock(const knit_pool *p)
{
    knit__pspin_unlock((knit__pspin *)&p->lk);
}

static bool is_closed(const knit_pool *p)
{
    return atomic_load_explicit(&p->closed, memory_order_acquire);
}

static void poke(knit_pool *p)
{
    if (p->keeper)
        knit_notify_one(&p->wake);
}

static struct slot *free_slot(knit_pool *p)
{
    for (unsigned i = 0; i < p->o.max_size; i++)
        if (p->slots[i].state == SLOT_FREE)
            return &p->slots[i];
    return NULL;
}

static void push_idle(knit_pool *p, struct slot *s)
{
    s->state = SLOT_IDLE;
    s->idle_since = knit_now();
    s->newer = NULL;
    s->older = p->newest;
    if (p->newest)
        p->newest->newer = s;
    else
        p->oldest = s;
    p->newest = s;
    p->idle++;
}

static void unlink_idle(knit_pool *p, struct slot *s)
{
    if (s->newer)
        s->newer->older = s->older;
    else
        p->newest = s->older;
    if (s->older)
        s->older->newer = s->newer;
    else
        p->oldest = s->newer;
    s->newer = s->older = NULL;
    p->idle--;
}

/* Destroys the resource of @s (out of every list and gauge already).
 * Called and returns with the lock held; drops it around destroy. */
static void discard(knit_pool *p, struct slot *s)
{
    s->state = SLOT_DYING;
    void *res = s->res;
    unlock(p);
    if (p->o.destroy)
        p->o.destroy(p->o.arg, res);
    lock(p);
    p->n.destroyed++;
    s->res = NULL;
    s->state = SLOT_FREE;
}

static bool needs_check(const knit_pool *p, const struct slot *s)
{
    return p->o.check && (p->o.check_idle_ms <= 0 ||
                          knit_now() - s->idle_since >= p->o.check_idle_ms);
}

/* With a permit held: an idle resource (checked if due), else a new one.
 * Called and returns with the lock held. */
static int checkout(knit_pool *p, void **res)
{
    struct slot *s;
    int err;
    while (!is_closed(p) && (s = p->newest) != NULL) {
        unlink_idle(p, s);
        if (needs_check(p, s)) {
            s->state = SLOT_PENDING;
            p->pending++;
            unlock(p);
            err = p->o.check(p->o.arg, s->res);
            lock(p);
            p->pending--;
            if (err < 0) {
                p->n.check_failures++;
                discard(p, s);
                continue;
            }
            if (is_closed(p)) {
                discard(p, s);
                return -EPIPE;
            }
        }
        s->state = SLOT_OUT;
        p->out++;
        *res = s->res;
        return 0;
    }
    if (is_closed(p))
        return -EPIPE;
    s = free_slot(p);
    assert(s); /* see the top: the slots in use are held by others */
    s->state = SLOT_PENDING;
    p->pending++;
    void *r = NULL;
    unlock(p);
    err = p->o.create(p->o.arg, &r);
    lock(p);
    p->pending--;
    if (err < 0) {
        p->n.create_errors++;
        s->state = SLOT_FREE;
        return err;
    }
    p->n.created++;
    s->res = r;
    if (is_closed(p)) {
        discard(p, s);
        return -EPIPE;
    }
    s->state = SLOT_OUT;
    p->out++;
    *res = r;
    return 0;
}

int knit_pool_acquire(knit_pool *p, void **res)
{
    if (!res)
        return -EINVAL;
    *res = NULL;
    if (!p)
        return -EINVAL;
    lock(p);
    p->users++;
    p->waiting++;
    unlock(p);
    int err = knit_sem_acquire(&p->permits, 1);
    lock(p);
    p->waiting--;
    if (err < 0) {
        if (err == -ETIMEDOUT)
            p->n.timeouts++;
        else if (err == -ECANCELED)
            p->n.cancelled++;
        p->users--;
        unlock(p);
        return err;
    }
    err = checkout(p, res);
    if (err == 0)
        p->n.acquired++;
    p->users--;
    unlock(p);
    if (err < 0)
        knit_sem_release(&p->permits, 1); /* to the next waiter */
    poke(p); /* fewer idle: the keeper may top up */
    return err;
}

void knit_pool_release(knit_pool *p, void *res, bool broken)
{
    struct slot *s = NULL;
    if (p) {
        lock(p);
        for (unsigned i = 0; i < p->o.max_size && !s; i++)
            if (p->slots[i].state == SLOT_OUT && p->slots[i].res == res)
                s = &p->slots[i];
        if (!s)
            unlock(p);
    }
    if (!s)
        knit__pattern_misuse(
            "knit_pool_release: the resource is not checked out of this "
            "pool (released twice?)");
    p->out--;
    if (broken)
        p->n.broken++;
    if (broken || is_closed(p))
        discard(p, s);
    else
        push_idle(p, s);
    unlock(p);
    /* After the push: the head waiter, woken with this permit, takes the
     * resource (or creates one in place of a destroyed one). */
    knit_sem_release(&p->permits, 1);
    poke(p);
}

/* ---- the keeper -------------------------------------------------------- */

/* Destroys the idle resources past min_idle that have been idle for
 * idle_ms; returns when the next one is due (KNIT_FOREVER: none). Called
 * and returns with the lock held. */
static int64_t evict(knit_pool *p, int64_t now)
{
    if (p->o.idle_ms <= 0)
        return KNIT_FOREVER;
    while (p->idle > p->o.min_idle) {
        /* idle > min_idle >= 0: the idle list is not empty. */
        struct slot *s = p->oldest;
        // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): see above
        int64_t due = s->idle_since + p->o.idle_ms;
        if (due > now)
            return due;
        unlink_idle(p, s);
        p->n.evicted++;
        discard(p, s);
    }
    return KNIT_FOREVER;
}

static bool wants_more(const knit_pool *p)
{
    return p->idle < p->o.min_idle;
}

/* Creates one idle resource when a slot and a permit are free: 1 when it
 * did, 0 when it could not try, a negative errno when create failed.
 * Called and returns with the lock held. */
static int top_up(knit_pool *p)
{
    struct slot *s = free_slot(p);
    if (!s || knit_sem_try_acquire(&p->permits, 1) < 0)
        return 0;
    s->state = SLOT_PENDING;
    p->pending++;
    void *r = NULL;
    unlock(p);
    int err = p->o.create(p->o.arg, &r);
    lock(p);
    p->pending--;
    if (err < 0) {
        p->n.create_errors++;
        s->state = SLOT_FREE;
    } else {
        p->n.created++;
        s->res = r;
        if (is_closed(p))
            discard(p, s);
        else
            push_idle(p, s);
        err = 1;
    }
    unlock(p);
    knit_sem_release(&p->permits, 1); /* a waiter takes the new one */
    lock(p);
    return err;
}

static int keeper(void *arg)
{
    knit_pool *p = arg;
    int64_t first = p->o.retry_ms > 0 ? p->o.retry_ms : DEFAULT_RETRY_MS;
    knit_backoff_policy bp = {
        .initial_ms = first,
        .max_ms = first > RETRY_CAP_MS ? first : RETRY_CAP_MS,
    };
    knit_backoff b;
    knit_backoff_init(&b, &bp);
    int64_t retry_at = 0; /* no background create before this */
    while (!is_closed(p)) {
        int64_t now = knit_now();
        lock(p);
        int64_t next = evict(p, now);
        if (wants_more(p)) {
            if (now >= retry_at) {
                int made = top_up(p);
                unlock(p);
                if (made == 1) {
                    knit_backoff_reset(&b);
                    continue;
                }
                if (made < 0) {
                    /* After close the create failed because we were
                     * cancelled: the loop ends. */
                    retry_at = knit_now() + knit_backoff_next(&b, 0);
                    continue;
                }
                lock(p);
            } else if (next == KNIT_FOREVER || retry_at < next) {
                next = retry_at;
            }
        }
        unlock(p);
        knit_case cases[2] = {knit_case_notify(&p->wake),
                              knit_case_deadline(next)};
        if (knit_select_biased(cases, 2) < 0)
            break; /* cancelled: the pool is closing */
    }
    return 0;
}

/* ---- life cycle -------------------------------------------------------- */

knit_pool *knit_pool_new(const knit_pool_opts *o)
{
    if (!o || !o->create || o->max_size == 0 || o->min_idle > o->max_size)
        return NULL;
    bool needs_keeper = o->min_idle > 0 || o->idle_ms > 0;
    if (needs_keeper && !knit_current())
        return NULL;
    knit_pool *p = calloc(1, sizeof(*p) + o->max_size * sizeof(p->slots[0]));
    if (!p)
        return NULL;
    p->o = *o;
    knit_sem_init(&p->permits, o->max_size);
    p->n.max_size = o->max_size;
    if (needs_keeper) {
        knit_task_opts to = {.name = "knit-pool"};
        p->keeper = knit_spawn_with(&to, keeper, p);
        if (!p->keeper) {
            free(p);
            return NULL;
        }
    }
    return p;
}

void knit_pool_close(knit_pool *p)
{
    lock(p);
    if (is_closed(p)) {
        unlock(p);
        return;
    }
    atomic_store_explicit(&p->closed, true, memory_order_release);
    unlock(p);
    knit_sem_close(&p->permits);
    lock(p);
    while (p->oldest) {
        struct slot *s = p->oldest;
        unlink_idle(p, s);
        discard(p, s);
    }
    unlock(p);
    if (p->keeper)
        knit_cancel(p->keeper);
}

void knit_pool_free(knit_pool *p)
{
    if (!p)
        return;
    lock(p);
    unsigned out = p->out;
    unsigned users = p->users;
    unlock(p);
    if (out)
        knit__pattern_misuse("knit_pool_free: resources are still checked out");
    if (users)
        knit__pattern_misuse(
            "knit_pool_free: tasks are still inside knit_pool_acquire");
    knit_pool_close(p);
    if (p->keeper) {
        /* Shielded: the keeper must be gone before its pool is, even
         * when the caller is cancelled. It was cancelled by the close,
         * so this is short. */
        knit_scope s;
        knit_scope_enter_shielded(&s, KNIT_FOREVER);
        (void)knit_join(p->keeper);
        (void)knit_scope_exit(&s);
    }
    free(p);
}

void knit_pool_stats_get(const knit_pool *p, knit_pool_stats *out)
{
    lock(p);
    *out = p->n;
    out->idle = p->idle;
    out->in_use = p->out;
    out->pending = p->pending;
    out->size = p->idle + p->out + p->pending;
    out->waiting = p->waiting;
    out->closed = is_closed(p);
    unlock(p);
}
