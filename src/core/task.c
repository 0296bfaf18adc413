// SPDX-License-Identifier: MIT
/*
 * The public task API: spawn, join, detach, cancel, start, task-locals,
 * and the task struct cache.
 *
 * A task struct lives until both it has ended and its handle was given
 * back (join, detach, or its group reaped it). Its stack lives only until
 * it ends, so a finished task that nobody joined costs one small struct.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/compiler.h"
#include "core/sched.h"

static _Atomic(uint64_t) next_task_id = 1;

/*
 * Task structs come from slabs of TASKS_PER_SLAB and go back to a
 * per-worker free list, never to malloc: spawn costs no allocator call
 * once the slabs exist. Slabs are freed with the worker. Under ASan each
 * struct is malloc'd and freed on its own instead, so that a use of a
 * freed handle (a second join) is reported, not served by the struct's
 * next owner.
 */
#define TASKS_PER_SLAB 64

struct task_slab {
    struct task_slab *next;                /* the worker's slabs */
    struct knit_task tasks[TASKS_PER_SLAB]; /* carved on the free list */
};

/*
 * Slabs outlive their runtime in a small process-wide cache, so that a
 * program that runs knit_run repeatedly (tests, benchmarks) does not pay
 * the page faults of fresh memory each time.
 */
#ifndef KNIT_ASAN
#define SLAB_CACHE_MAX 16384 /* slabs kept: a million tasks, ~350 MiB */
static struct task_slab *slab_cache;
static int slab_cache_len;
static pthread_mutex_t slab_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static struct task_slab *slab_new(void)
{
    pthread_mutex_lock(&slab_cache_lock);
    struct task_slab *slab = slab_cache;
    if (slab) {
        slab_cache = slab->next;
        slab_cache_len--;
    }
    pthread_mutex_unlock(&slab_cache_lock);
    return slab ? slab : knit__malloc(sizeof(*slab));
}

static void slab_release(struct task_slab *slab)
{
    pthread_mutex_lock(&slab_cache_lock);
    if (slab_cache_len < SLAB_CACHE_MAX) {
        slab->next = slab_cache;
        slab_cache = slab;
        slab_cache_len++;
        slab = NULL;
    }
    pthread_mutex_unlock(&slab_cache_lock);
    free(slab);
}
#endif

#ifndef KNIT_ASAN
/*
 * Asks for the lines of @t, the next struct a spawn will fill, in the
 * exclusive state now: a recycled struct is cold (its last writer was
 * the worker that ran it, long ago), and otherwise the next spawn's
 * memset stalls on six misses in a row. A/B on spawn_join (one and two
 * workers): 12-14 % and 9-10 % more tasks/s (bench/RESULTS.md).
 */
static inline void prefetch_for_write(const struct knit_task *t)
{
    const char *p = (const char *)t;
    for (size_t off = 0; off < sizeof(*t); off += KNIT_CACHE_LINE)
        __builtin_prefetch(p + off, 1, 3);
    __builtin_prefetch(p + sizeof(*t) - 1, 1, 3);
}
#endif

/* A struct for a task spawned on @w's thread (its home). */
static struct knit_task *task_alloc(struct knit_worker *w)
{
#ifdef KNIT_ASAN
    struct knit_task *t = knit__calloc(1, sizeof(struct knit_task));
    if (t)
        t->home = w;
    return t;
#else
    struct knit_task *t = w->free_tasks;
    if (knit_unlikely(!t)) /* the ones others gave back, all at once */
        t = atomic_exchange_explicit(&w->free_remote, NULL,
                                     memory_order_acquire);
    if (knit_unlikely(!t)) {
        struct task_slab *slab = slab_new();
        if (!slab)
            return NULL;
        slab->next = w->task_slabs;
        w->task_slabs = slab;
        for (int i = TASKS_PER_SLAB - 1; i >= 0; i--) {
            slab->tasks[i].all_link.next = (struct knit_list *)t;
            t = &slab->tasks[i];
        }
    }
    struct knit_task *next = (struct knit_task *)t->all_link.next;
    w->free_tasks = next;
    if (next)
        prefetch_for_write(next);
    memset(t, 0, sizeof(*t));
    t->home = w;
    knit_list_init(&t->all_link);
    return t;
#endif
}

#ifndef KNIT_ASAN
/* Gives @t back to its home's free lists: its own one from its own
 * thread, else the lock-free stack (a push-only stack taken whole has no
 * ABA problem). */
static void task_give_back(struct knit_task *t)
{
    struct knit_worker *home = t->home;
    if (home == knit__worker()) {
        t->all_link.next = (struct knit_list *)home->free_tasks;
        home->free_tasks = t;
        return;
    }
    struct knit_task *head =
        atomic_load_explicit(&home->free_remote, memory_order_relaxed);
    do
        t->all_link.next = (struct knit_list *)head;
    while (!atomic_compare_exchange_weak_explicit(
        &home->free_remote, &head, t, memory_order_release,
        memory_order_relaxed));
}
#endif

static void task_free_now(struct knit_task *t);

void knit__task_unref(struct knit_task *t)
{
    if (!t->home->shared) { /* one thread: no atomic read-modify-write */
        uint8_t left =
            atomic_load_explicit(&t->refs, memory_order_relaxed) - 1;
        atomic_store_explicit(&t->refs, left, memory_order_relaxed);
        if (left == 0)
            task_free_now(t);
        return;
    }
    /* acq_rel: the last one sees every other holder's writes. */
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        task_free_now(t);
}

bool knit__task_try_ref(struct knit_task *t)
{
    uint8_t n = atomic_load_explicit(&t->refs, memory_order_relaxed);
    do
        if (n == 0)
            return false;
    while (!atomic_compare_exchange_weak_explicit(
        &t->refs, &n, n + 1, memory_order_relaxed, memory_order_relaxed));
    return true;
}

/* Unlists and recycles @t, whose last reference is gone. No runtime
 * lock: its home's books lock for the list. */
static void task_free_now(struct knit_task *t)
{
    /* The stall monitor may be reading t's id and name right now (it
     * reads only a task it saw running, and t stopped running before it
     * ended): wait until it lets go. The exchange pairs with the
     * monitor's (Dekker, with seq_cst exchanges on one word instead of
     * fences, which TSan cannot model): whichever comes second sees the
     * other's store, so either the monitor sees t no longer running or
     * this sees the monitor's hazard. */
    if (t->home->rt->monitor_running) {
        struct knit_worker *w = t->worker;
        atomic_exchange(&w->inspect_order, 0);
        while (atomic_load_explicit(&w->inspecting, memory_order_acquire) == t)
            sched_yield();
    }
    struct knit_worker *home = t->home;
    knit__books_lock(home);
    knit_list_remove(&t->all_link);
    knit__books_unlock(home);
#ifdef KNIT_ASAN
    free(t);
#else
    /* Back to the worker whose slab it is, not the one that ran it: a
     * worker that spawns what others run would otherwise carve slab
     * after slab while the others' free lists grow. */
    task_give_back(t);
#endif
}

void knit__task_cache_fini(struct knit_worker *w)
{
#ifndef KNIT_ASAN
    struct task_slab *slab = w->task_slabs;
    while (slab) {
        struct task_slab *next = slab->next;
        slab_release(slab);
        slab = next;
    }
#endif
    w->task_slabs = NULL;
    w->free_tasks = NULL;
    atomic_store(&w->free_remote, NULL);
}

/*
 * A new task struct for fn(arg), to run on @w, not yet counted or listed
 * (task_account). The struct comes from the spawning worker's slabs,
 * which only its own thread takes from, so no lock is needed here: the
 * memset of a struct another worker wrote last (cache misses) stays out
 * of the runtime lock.
 */
static struct knit_task *task_make(struct knit_worker *w, knit_fn fn,
                                   void *arg)
{
    struct knit_worker *self = knit__worker();
    struct knit_worker *home = self && self->rt == w->rt ? self : w;
    struct knit_task *t = task_alloc(home);
    if (!t)
        return NULL;
    t->worker = w;
    atomic_init(&t->refs, 2); /* its worker's and its handle's */
    t->fn = fn;
    t->arg = arg;
    knit__task_set_state(t, KNIT_TASK_NEW);
    t->id = atomic_fetch_add_explicit(&next_task_id, 1, memory_order_relaxed);
    knit_list_init(&t->run_link);
    knit_list_init(&t->group_link);
    knit__scope_root_init(t);
    return t;
}

/* Lists and counts the task from task_make on its home's books (before
 * it is queued: its end, counted where it runs, must not come first). */
static void task_account(struct knit_task *t)
{
    struct knit_worker *home = t->home;
    knit__books_lock(home);
    knit_list_push_back(&home->tasks, &t->all_link);
    atomic_store_explicit(
        &home->nspawned,
        atomic_load_explicit(&home->nspawned, memory_order_relaxed) + 1,
        memory_order_relaxed);
    knit__books_unlock(home);
}

struct knit_task *knit__task_new_stackless(struct knit_worker *w, knit_fn fn,
                                           void *arg)
{
    struct knit_task *t = task_make(w, fn, arg);
    if (t)
        task_account(t);
    return t;
}

/*
 * The stack is attached when the task first runs (attach_stack in
 * sched.c), not here: a million tasks spawned before any runs hold no
 * stack, and a spawn-then-join loop keeps reusing one warm stack.
 */
struct knit_task *knit__spawn(struct knit_worker *w, const knit_task_opts *o,
                              knit_fn fn, void *arg)
{
    size_t size = o && o->stack_size ? o->stack_size : w->rt->cfg.stack_size;
    if (!fn || size < KNIT_STACK_MIN || size > KNIT_STACK_MAX)
        return NULL;
    struct knit_task *t = task_make(w, fn, arg);
    if (!t)
        return NULL;
    t->stack.size = size; /* wanted; the stack comes at the first run */
    if (o && o->name) {
        strncpy(t->name, o->name, sizeof(t->name) - 1);
        t->name[sizeof(t->name) - 1] = '\0';
    }
    t->lazy = o && o->lazy;
    task_account(t);
    if (!t->lazy)
        knit__task_enqueue_new(t);
    return t;
}

/* knit_spawn_on's hand-over: @t joins its worker's run queue there. */
static void place(struct knit_remote *r)
{
    struct knit_task *t = knit_container_of(r, struct knit_task, wake_remote);
    if (t->state == KNIT_TASK_NEW && !t->queued && !t->lazy)
        knit__task_place_local(t);
}

knit_task *knit_spawn_on(int worker, const knit_task_opts *o, knit_fn fn,
                         void *arg)
{
    struct knit_worker *self = knit__worker();
    if (!self)
        knit__panic("knit_spawn_on called outside a knit runtime");
    struct knit_rt *rt = self->rt;
    if (worker < 0 || worker >= rt->nworkers) {
        errno = EINVAL;
        return NULL;
    }
    struct knit_worker *to = &rt->workers[worker];
    knit_task_opts opts = o ? *o : (knit_task_opts){0};
    bool lazy = opts.lazy;
    opts.lazy = true; /* queued below, on @to, not on a newq */
    struct knit_task *t = knit__spawn(to, &opts, fn, arg);
    if (!t) {
        errno = fn ? ENOMEM : EINVAL;
        return NULL;
    }
    knit__lock(self);
    t->pinned = true;
    t->lazy = lazy;
    if (!lazy) {
        if (to == self)
            knit__task_place_local(t);
        else
            knit__remote_post(to, &t->wake_remote, place);
    }
    knit__unlock(self);
    return t;
}

int knit_worker_id(void)
{
    struct knit_worker *w = knit__worker();
    return w ? w->id : -1;
}

static struct knit_worker *worker_or_panic(const char *what)
{
    struct knit_worker *w = knit__worker();
    if (!w)
        knit__panic("%s called outside a knit runtime", what);
    return w;
}

knit_task *knit_spawn(knit_fn fn, void *arg)
{
    return knit__spawn(worker_or_panic("knit_spawn"), NULL, fn, arg);
}

knit_task *knit_spawn_with(const knit_task_opts *o, knit_fn fn, void *arg)
{
    return knit__spawn(worker_or_panic("knit_spawn_with"), o, fn, arg);
}

void knit_task_start(knit_task *t)
{
    if (t->blocking)
        return;
    struct knit_worker *w = knit__worker();
    knit__lock(w);
    if (t->lazy && t->state == KNIT_TASK_NEW && !t->queued) {
        t->lazy = false;
        if (!t->pinned)
            knit__task_enqueue_new(t);
        else if (t->worker == w)
            knit__task_place_local(t);
        else
            knit__remote_post(t->worker, &t->wake_remote, place);
    }
    knit__unlock(w);
}

void knit__join_unregister(struct knit_task *t, struct knit_waiter *w)
{
    if (t->joiner == w) {
        t->joiner = NULL;
        /* Back to none, unless the task has ended meanwhile: its end
         * then finds no joiner under the lock and wakes nobody. */
        uint8_t waiting = KNIT_JW_WAITING;
        atomic_compare_exchange_strong(&t->jw, &waiting, KNIT_JW_NONE);
    }
}

static void join_cancel(struct knit_waiter *w)
{
    knit__join_unregister((struct knit_task *)w->obj, w);
}

bool knit__join_register(struct knit_task *t, struct knit_waiter *w)
{
    uint8_t none = KNIT_JW_NONE;
    if (!atomic_compare_exchange_strong(&t->jw, &none, KNIT_JW_WAITING))
        return false;
    t->joiner = w;
    return true;
}

/* knit_join's misuse checks; the running task. */
static struct knit_task *join_check(const knit_task *t)
{
    if (t->joined || t->detached || t->group)
        knit__panic("knit_join on task %llu (\"%s\"), which is joined, "
                    "detached or owned by a group",
                    (unsigned long long)t->id, t->name);
    struct knit_task *self = knit__task();
    if (!self)
        knit__panic("knit_join called outside a task");
    if (t == self)
        knit__panic("a task cannot join itself");
    return self;
}

/* Takes the result of the ended @t and gives its handle back. */
static int join_take(knit_task *t)
{
    int r = t->result;
    t->joined = true;
    knit__task_unref(t);
    return r;
}

static int join_locked(knit_task *t)
{
    struct knit_task *self = join_check(t);
    if (!knit__task_ended(t)) {
        if (t->joiner)
            knit__panic("two tasks join task %llu at once",
                        (unsigned long long)t->id);
        int err = knit__scope_err(self);
        if (err)
            return err; /* not even a lazy task is started */
        knit_task_start(t);
        struct knit_waiter w;
        knit__waiter_init(&w, "join", t, join_cancel);
        if (knit__join_register(t, &w)) {
            err = knit__wait(&w);
            if (err)
                return err;
        }
    }
    return join_take(t);
}

int knit_join(knit_task *t)
{
    /* A task that has ended is joined without the runtime lock: its
     * result was stored before t->jw said so, and the struct is freed by
     * whoever drops the last reference. */
    if (knit__task_ended(t)) {
        join_check(t);
        return join_take(t);
    }
    return KNIT_LOCKED(join_locked(t));
}

static void detach_locked(knit_task *t)
{
    if (t->joined || t->detached || t->group)
        knit__panic("knit_detach on task %llu, which is joined, detached "
                    "or owned by a group",
                    (unsigned long long)t->id);
    t->detached = true;
    knit_task_start(t);
    /* Now if it has ended, else by its worker when it does. */
    knit__task_unref(t);
}

void knit_detach(knit_task *t)
{
    KNIT_LOCKED_VOID(detach_locked(t));
}

static void cancel_locked(knit_task *t)
{
    /* Acquire: a state other than NEW means t->worker is settled. */
    uint8_t st = atomic_load_explicit(&t->state, memory_order_acquire);
    if (st == KNIT_TASK_DONE)
        return;
    if (t->blocking) {
        knit__blocking_cancel(t);
        return;
    }
    if (st == KNIT_TASK_NEW) {
        /* Never ran, and never will run fn. On a newq, on this worker's
         * run queue (pinned) or not started at all (lazy): it ends now
         * with -ECANCELED. */
        bool shared = knit__worker()->shared;
        if (t->in_newq || !shared || t->lazy ||
            (t->pinned && t->worker == knit__worker() && t->queued)) {
            atomic_store(&t->root.err, -ECANCELED);
            knit__task_finish_unstarted(t, -ECANCELED);
            return;
        }
        if (!t->pinned) {
            /* On a spawn ring, which cannot unlink it, or being taken by
             * a worker this instant: whoever takes it ends it without
             * running it (attach_stack, task_entry). Its joiner waits
             * until then; every ring is emptied by its workers. */
            int none = 0;
            atomic_compare_exchange_strong(&t->root.err, &none, -ECANCELED);
            return;
        }
    }
    knit__scope_fire(&t->root, -ECANCELED);
}

void knit_cancel(knit_task *t)
{
    KNIT_LOCKED_VOID(cancel_locked(t));
}

void knit__cancel_all(struct knit_worker *w)
{
    struct knit_list *it, *tmp;
    knit__books_lock(w);
    knit_list_for_each_safe(it, tmp, &w->tasks)
    {
        struct knit_task *t = knit_container_of(it, struct knit_task, all_link);
        /* A NEW task is finished (and maybe freed) on the spot, so the
         * safe iterator must not look at it again: tmp was read first.
         * One whose last reference is gone is still listed until its
         * freer gets this lock: it has ended, and is left alone. */
        cancel_locked(t);
    }
    knit__books_unlock(w);
}

knit_task *knit_current(void)
{
    return knit__task();
}

uint64_t knit_task_id(const knit_task *t)
{
    return t->id;
}

const char *knit_task_name(const knit_task *t)
{
    return t->name;
}

/* ---- task-locals -----------------------------------------------------------
 */

static _Atomic(int) nlocal_keys;
static void (*local_dtors[KNIT_TASK_LOCALS])(void *);

int knit_task_local_new(void (*dtor)(void *value))
{
    int key = atomic_fetch_add(&nlocal_keys, 1);
    if (key >= KNIT_TASK_LOCALS) {
        atomic_fetch_sub(&nlocal_keys, 1);
        return -EAGAIN;
    }
    local_dtors[key] = dtor;
    return key;
}

void *knit_task_local_get(int key)
{
    struct knit_task *t = knit__task();
    if (!t || key < 0 || key >= KNIT_TASK_LOCALS)
        return NULL;
    return t->locals ? t->locals[key] : NULL;
}

int knit_task_local_set(int key, void *value)
{
    struct knit_task *t = knit__task();
    if (key < 0 || key >= atomic_load(&nlocal_keys))
        return -EINVAL;
    if (!t)
        return -ESRCH;
    if (!t->locals) {
        if (!value)
            return 0;
        t->locals = knit__calloc(KNIT_TASK_LOCALS, sizeof(*t->locals));
        if (!t->locals)
            return -ENOMEM;
    }
    t->locals[key] = value;
    return 0;
}

void knit__locals_run_dtors(struct knit_task *t)
{
    if (!t->locals)
        return;
    int n = atomic_load_explicit(&nlocal_keys, memory_order_relaxed);
    for (int k = 0; k < n; k++) {
        void *v = t->locals[k];
        if (v && local_dtors[k]) {
            t->locals[k] = NULL;
            local_dtors[k](v);
        }
    }
    free(t->locals);
    t->locals = NULL;
}
