// SPDX-License-Identifier: MIT
/*
 * The priority worker pool (knit/patterns/priority.h): the queue (one
 * FIFO list per level over a fixed array of job records), choosing the
 * next job with aging, the workers, then submit, close, cancel and wait.
 *
 * Waiting is two semaphores, so every wait is FIFO and leaves no trace
 * when cancelled: `slots` counts free places in the queue (submitters
 * acquire one, a worker releases it when it takes a job; closing it is
 * how intake stops) and `items` counts queued jobs plus one "closed"
 * permit per worker, added by close. A worker that acquires an item and
 * finds the queue empty has therefore drawn a closed permit, and ends.
 *
 * Cancelling reaches the running jobs through a token: each job runs in
 * a scope linked to it. The worker tasks themselves are never cancelled,
 * so each one always runs to its end and returns 0 (even one that had
 * not started yet), and a failed knit_join in wait can only be the
 * caller's own scope.
 *
 * Choosing: within a level, the oldest job has waited longest, so it has
 * the best effective level of its level; the best job overall is among
 * the heads of the levels. A take scans the K heads: O(K), K <= 64.
 *
 * Several workers. The queue, the free list, the stats and the flags are
 * read and written under the pool's spin lock `lk`, never held across a
 * park nor across a job or the discard callback. A submit checks for
 * close and queues its job in one critical section, so a job is queued
 * either before close (and run) or not at all.
 *
 * Built only on the public API (DESIGN section 4, layering).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>
#include "patterns/misuse.h"

#define MAX_WORKERS 4096
#define DEFAULT_NAME "prio-worker"

/* A queued job; a record of the fixed array, on a level's list or on the
 * free list. */
struct job {
    struct job *next; /* next in its level (or on the free list) */
    knit_fn fn;
    void *arg;
    int64_t enq;  /* knit_now() at submit */
    uint64_t seq; /* submit order: ties at one ms go to the first */
};

/* One level: its FIFO and its counters. */
struct level {
    struct job *head; /* oldest */
    struct job *tail; /* newest */
    knit_prio_stats st;
};

struct knit_prio_pool {
    knit_prio_config cfg;
    knit_token cancel;    /* cancelled by cancel: the running jobs stop */
    knit_sem slots;       /* free places in the queue; closed by close */
    knit_sem items;       /* queued jobs + a closed permit per worker */
    struct job *jobs;     /* cfg.capacity records */
    struct job *free;     /* unused records */
    struct level *levels; /* cfg.levels of them */
    knit_task **workers;  /* cfg.workers handles; NULL once joined */
    knit__pspin lk;       /* guards everything below */
    size_t len;           /* jobs queued */
    uint64_t seq;         /* the next job's seq */
    bool closed;          /* close or cancel happened */
    bool cancelled;       /* cancel happened */
    bool waiting;         /* a task is in knit_prio_pool_wait */
    bool joined;          /* knit_prio_pool_wait has returned */
};

/* ---- the queue ----------------------------------------------------------- */

static void push(knit_prio_pool *p, int level, knit_fn fn, void *arg)
{
    struct job *j = p->free;
    p->free = j->next; /* never empty: a slot permit guarantees a record */
    *j = (struct job){NULL, fn, arg, knit_now(), p->seq++};
    struct level *l = &p->levels[level];
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->st.submitted++;
    l->st.queued++;
    p->len++;
}

static struct job *pop(knit_prio_pool *p, int level)
{
    struct level *l = &p->levels[level];
    struct job *j = l->head;
    l->head = j->next;
    if (!l->head)
        l->tail = NULL;
    l->st.queued--;
    p->len--;
    return j;
}

static void release(knit_prio_pool *p, struct job *j)
{
    j->next = p->free;
    p->free = j;
}

static int effective(const knit_prio_pool *p, int level, const struct job *j,
                     int64_t now)
{
    if (p->cfg.aging_ms <= 0)
        return level;
    int64_t risen = (now - j->enq) / p->cfg.aging_ms;
    return risen >= level ? 0 : level - (int)risen;
}

/*
 * Takes the job to run next into *@out: the lowest effective level, then
 * the earliest submitted. Returns its level, or -1 when the queue is
 * empty.
 */
static int take_locked(knit_prio_pool *p, struct job *out, int64_t now)
{
    int best = -1;
    int best_eff = 0;
    for (int i = 0; i < p->cfg.levels; i++) {
        const struct job *j = p->levels[i].head;
        if (!j)
            continue;
        int eff = effective(p, i, j, now);
        if (best < 0 || eff < best_eff ||
            (eff == best_eff && j->seq < p->levels[best].head->seq)) {
            best = i;
            best_eff = eff;
        }
    }
    if (best < 0)
        return -1;
    struct job *j = pop(p, best);
    *out = *j;
    release(p, j);
    knit_prio_stats *st = &p->levels[best].st;
    int64_t waited = now - out->enq;
    st->started++;
    if (best_eff < best)
        st->promoted++;
    st->wait_total_ms += waited;
    if (waited > st->wait_max_ms)
        st->wait_max_ms = waited;
    return best;
}

static int take(knit_prio_pool *p, struct job *out)
{
    int64_t now = knit_now();
    knit__pspin_lock(&p->lk);
    int best = take_locked(p, out, now);
    knit__pspin_unlock(&p->lk);
    return best;
}

/* ---- workers ------------------------------------------------------------- */

static int worker(void *arg)
{
    knit_prio_pool *p = arg;
    for (;;) {
        /* Fails only when the runtime itself ends and cancels us. */
        if (knit_sem_acquire(&p->items, 1) < 0)
            return 0;
        struct job j;
        int level = take(p, &j);
        if (level < 0)
            return 0; /* a closed permit: the queue is drained */
        knit_sem_release(&p->slots, 1); /* room for the next submitter */
        knit_scope s;
        knit_scope_enter(&s, KNIT_FOREVER);
        knit_scope_link_token(&s, &p->cancel);
        int r = j.fn(j.arg);
        knit_scope_exit(&s);
        if (r < 0) {
            knit__pspin_lock(&p->lk);
            p->levels[level].st.failed++;
            knit__pspin_unlock(&p->lk);
        }
    }
}

/* ---- the pool ------------------------------------------------------------ */

static bool config_ok(const knit_prio_config *c)
{
    return c && c->workers >= 1 && c->workers <= MAX_WORKERS &&
           c->levels >= 1 && c->levels <= KNIT_PRIO_MAX_LEVELS &&
           c->capacity >= 1 && c->capacity <= (size_t)INT32_MAX;
}

static void free_pool(knit_prio_pool *p)
{
    free(p->workers);
    free(p->levels);
    free(p->jobs);
    free(p);
}

/* Joins every worker, shielded: none may outlive the caller's wait. */
static void join_workers(knit_prio_pool *p)
{
    knit_scope s;
    knit_scope_enter_shielded(&s, KNIT_FOREVER);
    for (int i = 0; i < p->cfg.workers; i++) {
        if (p->workers[i]) {
            (void)knit_join(p->workers[i]);
            p->workers[i] = NULL;
        }
    }
    knit_scope_exit(&s);
}

knit_prio_pool *knit_prio_pool_new(const knit_prio_config *cfg)
{
    if (!config_ok(cfg))
        return NULL;
    knit_prio_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cfg = *cfg;
    p->jobs = calloc(cfg->capacity, sizeof(*p->jobs));
    p->levels = calloc((size_t)cfg->levels, sizeof(*p->levels));
    p->workers = calloc((size_t)cfg->workers, sizeof(*p->workers));
    if (!p->jobs || !p->levels || !p->workers) {
        free_pool(p);
        return NULL;
    }
    for (size_t i = 0; i < cfg->capacity; i++)
        p->jobs[i].next = i + 1 < cfg->capacity ? &p->jobs[i + 1] : NULL;
    p->free = p->jobs;
    knit_token_init(&p->cancel, NULL);
    knit_sem_init(&p->slots, (unsigned)cfg->capacity);
    knit_sem_init(&p->items, 0);
    knit_task_opts o = {.name = cfg->name ? cfg->name : DEFAULT_NAME};
    for (int i = 0; i < cfg->workers; i++) {
        if (!(p->workers[i] = knit_spawn_with(&o, worker, p))) {
            knit_prio_pool_cancel(p);
            join_workers(p);
            free_pool(p);
            return NULL;
        }
    }
    return p;
}

static int check_job(const knit_prio_pool *p, int level, knit_fn fn)
{
    return fn && level >= 0 && level < p->cfg.levels ? 0 : -EINVAL;
}

/* Queues the job unless the pool is closed: one critical section with
 * close's, see the top. */
static bool push_open(knit_prio_pool *p, int level, knit_fn fn, void *arg)
{
    knit__pspin_lock(&p->lk);
    bool open = !p->closed;
    if (open)
        push(p, level, fn, arg);
    knit__pspin_unlock(&p->lk);
    return open;
}

int knit_prio_pool_submit(knit_prio_pool *p, int level, knit_fn fn, void *arg)
{
    int err = check_job(p, level, fn);
    if (err < 0)
        return err;
    if ((err = knit_sem_acquire(&p->slots, 1)) < 0)
        return err;
    /* A slot granted just before a close must not queue a job that no
     * worker would run (they may all have ended already). */
    if (!push_open(p, level, fn, arg)) {
        knit_sem_release(&p->slots, 1);
        return -EPIPE;
    }
    knit_sem_release(&p->items, 1);
    return 0;
}

int knit_prio_pool_try_submit(knit_prio_pool *p, int level, knit_fn fn,
                              void *arg)
{
    int err = check_job(p, level, fn);
    if (err < 0)
        return err;
    if ((err = knit_sem_try_acquire(&p->slots, 1)) < 0)
        return err;
    if (!push_open(p, level, fn, arg)) { /* closed on another worker */
        knit_sem_release(&p->slots, 1);
        return -EPIPE;
    }
    knit_sem_release(&p->items, 1);
    return 0;
}

void knit_prio_pool_close(knit_prio_pool *p)
{
    knit__pspin_lock(&p->lk);
    bool was = p->closed;
    p->closed = true;
    knit__pspin_unlock(&p->lk);
    if (was)
        return;
    knit_sem_close(&p->slots);
    knit_sem_release(&p->items, (unsigned)p->cfg.workers);
}

void knit_prio_pool_cancel(knit_prio_pool *p)
{
    knit_prio_pool_close(p);
    knit__pspin_lock(&p->lk);
    bool was = p->cancelled;
    p->cancelled = true;
    knit__pspin_unlock(&p->lk);
    if (was)
        return;
    /* One job at a time: discard is the user's, run outside the lock. */
    for (int i = 0; i < p->cfg.levels; i++) {
        for (;;) {
            knit__pspin_lock(&p->lk);
            struct job *j = p->levels[i].head ? pop(p, i) : NULL;
            void *arg = NULL;
            if (j) {
                arg = j->arg;
                release(p, j);
                p->levels[i].st.dropped++;
            }
            knit__pspin_unlock(&p->lk);
            if (!j)
                break;
            if (p->cfg.discard)
                p->cfg.discard(arg);
        }
    }
    knit_token_cancel(&p->cancel);
}

int knit_prio_pool_wait(knit_prio_pool *p)
{
    knit__pspin_lock(&p->lk);
    int busy = p->joined ? 1 : p->waiting ? -EBUSY : 0;
    if (!busy)
        p->waiting = true;
    knit__pspin_unlock(&p->lk);
    if (busy)
        return busy > 0 ? 0 : busy;
    knit_prio_pool_close(p);
    int err = 0;
    for (int i = 0; i < p->cfg.workers; i++) {
        /* Workers return 0, so an error is the caller's scope, and the
         * worker was left running. */
        if ((err = knit_join(p->workers[i])) < 0)
            break;
        p->workers[i] = NULL;
    }
    if (err < 0)
        knit_prio_pool_cancel(p); /* no grace left: drop and cancel */
    join_workers(p);
    knit__pspin_lock(&p->lk);
    p->waiting = false;
    p->joined = true;
    knit__pspin_unlock(&p->lk);
    return err;
}

int knit_prio_pool_stats(const knit_prio_pool *p, int level,
                         knit_prio_stats *out)
{
    if (level < 0 || level >= p->cfg.levels)
        return -EINVAL;
    knit__pspin *lk = (knit__pspin *)&p->lk;
    knit__pspin_lock(lk);
    *out = p->levels[level].st;
    knit__pspin_unlock(lk);
    return 0;
}

size_t knit_prio_pool_len(const knit_prio_pool *p)
{
    knit__pspin *lk = (knit__pspin *)&p->lk;
    knit__pspin_lock(lk);
    size_t n = p->len;
    knit__pspin_unlock(lk);
    return n;
}

void knit_prio_pool_free(knit_prio_pool *p)
{
    if (!p)
        return;
    knit__pspin_lock(&p->lk);
    bool bad = p->waiting || !p->joined;
    knit__pspin_unlock(&p->lk);
    if (bad)
        knit__pattern_misuse(
            "knit_prio_pool_free: the workers have not been awaited "
            "(call knit_prio_pool_wait first)");
    knit_token_destroy(&p->cancel);
    free_pool(p);
}
