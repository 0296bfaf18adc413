// SPDX-License-Identifier: MIT
/*
 * Cancel scopes (knit/scope.h): a chain of scopes per task, innermost
 * first, ending at the task's root scope.
 *
 * A blocking call asks knit__scope_err() for the first fired scope on the
 * chain, stopping after a shield. Firing a scope wakes its task when the
 * task is parked and the scope is visible from where it is parked (no
 * shield in between). Deadlines are wheel timers embedded in the scope,
 * disarmed on exit, so a scope costs no allocation.
 */
#include <errno.h>

#include "core/compiler.h"
#include "core/sched.h"
#include "knit/scope.h"
#include "knit/time.h"

_Static_assert(sizeof(knit_scope) >= sizeof(struct knit_scope_user),
               "grow knit_scope");

static inline struct knit_scope_user *user(knit_scope *s)
{
    return (struct knit_scope_user *)(void *)s;
}

static inline struct knit_scope_impl *impl(knit_scope *s)
{
    return &user(s)->s;
}

static inline const struct knit_scope_impl *cimpl(const knit_scope *s)
{
    return &((const struct knit_scope_user *)(const void *)s)->s;
}

/*
 * Cancellation outranks a deadline: when both a cancelled and an expired
 * scope are visible, the call reports -ECANCELED, so that code which
 * retries on -ETIMEDOUT never retries work it was told to stop.
 */
int knit__scope_err_slow(const struct knit_task *t)
{
    int err = 0;
    for (const struct knit_scope_impl *x = t->scope; x; x = x->parent) {
        if (x->err == -ECANCELED)
            return -ECANCELED;
        if (x->err)
            err = x->err;
        if (x->shield)
            break;
    }
    return err;
}

/* True when a call parked in @t's innermost scope is inside @s. */
static bool is_visible(const struct knit_task *t,
                       const struct knit_scope_impl *s)
{
    for (const struct knit_scope_impl *x = t->scope; x; x = x->parent) {
        if (x == s)
            return true;
        if (x->shield)
            return false;
    }
    return false;
}

/* Cancels what @t is parked on, if a fired scope can see it (its own
 * worker, rt lock). t->waiter is NULL once someone claimed the wait. */
static void interrupt(struct knit_task *t, int err)
{
    struct knit_waiter *w = t->waiter;
    if (t->state == KNIT_TASK_PARKED && w) {
        if (w->cancel)
            w->cancel(w);
        knit__wake(w, err);
    }
}

static void poke_run(struct knit_remote *r)
{
    struct knit_task *t = knit_container_of(r, struct knit_task, poke_remote);
    t->poke_pending = false;
    int err = knit__scope_err(t);
    if (err)
        interrupt(t, err); /* nothing to do if it has ended meanwhile */
    knit__task_unref(t);    /* the poke's reference */
}

void knit__task_poke(struct knit_task *t)
{
    /* The poke holds a reference, so that the struct outlives it even if
     * the task ends and is joined before its worker runs it. */
    if (t->poke_pending || t->state == KNIT_TASK_DONE ||
        !knit__task_try_ref(t))
        return;
    t->poke_pending = true;
    knit__remote_post(t->worker, &t->poke_remote, poke_run);
}

void knit__scope_fire(struct knit_scope_impl *s, int err)
{
    int none = 0;
    if (!atomic_compare_exchange_strong(&s->err, &none, err))
        return; /* the first error wins */
    struct knit_task *t = s->task;
    if (t->worker->rt->shared && t->worker != knit__worker()) {
        /* Its wheel and driver are its worker's: that worker does the
         * rest. The deadline timer, if any, finds the error set. */
        knit__task_poke(t);
        return;
    }
    if (s->deadline != KNIT_FOREVER) /* a root never has one */
        knit__wheel_cancel(&t->worker->wheel, &knit__scope_user(s)->timer);
    /* The chain's error, not @err: a cancel from another worker may have
     * set an enclosing scope already, and cancellation outranks this. */
    if (is_visible(t, s))
        interrupt(t, knit__scope_err(t));
}

static void deadline_fired(struct knit_timer *tm)
{
    struct knit_scope_user *u =
        knit_container_of(tm, struct knit_scope_user, timer);
    knit__scope_fire(&u->s, -ETIMEDOUT);
}

void knit__scope_root_init(struct knit_task *t)
{
    struct knit_scope_impl *r = &t->root;
    r->parent = NULL;
    r->task = t;
    r->deadline = KNIT_FOREVER;
    r->err = 0;
    r->shield = false;
    r->token_linked = false;
    t->scope = r;
}

/*
 * Links @x as @t's innermost scope under the runtime lock (a poke from
 * another worker may walk the chain). Out of line, and called only when
 * the runtime is shared: with one worker the lock is a no-op, and a lock
 * call inline makes every enter save and restore registers for it.
 */
static KNIT_NOINLINE void link_locked(struct knit_worker *w,
                                      struct knit_task *t,
                                      struct knit_scope_impl *x)
{
    knit__lock(w);
    t->scope = x;
    knit__unlock(w);
}

/* Unlinks @u (innermost scope of @t) and its token listener, under the
 * runtime lock, and returns its error (a tail call from exit); out of
 * line for the reason above. */
static KNIT_NOINLINE int unlink_locked(struct knit_worker *w,
                                       struct knit_task *t,
                                       struct knit_scope_user *u)
{
    knit__lock(w);
    if (u->s.token_linked)
        knit_list_remove(&u->token_w.link);
    t->scope = u->s.parent;
    knit__unlock(w);
    return u->s.err;
}

/*
 * Fills @x to be entered by @t: everything but the link from @t. Relaxed:
 * no other thread can see the scope before it is linked (under the
 * runtime lock when shared, which publishes it). Deciding an expired
 * deadline (@err) here, before linking, also means a cancel from another
 * worker can never be overwritten by it. (A seq_cst store was an xchg,
 * the dearest instruction of the whole enter/exit.)
 */
static inline void fill(struct knit_scope_impl *x, struct knit_task *t,
                        int64_t deadline, int err, bool shield)
{
    x->parent = t->scope;
    x->task = t;
    x->deadline = deadline < 0 ? KNIT_FOREVER : deadline;
    atomic_store_explicit(&x->err, err, memory_order_relaxed);
    x->shield = shield;
    x->token_linked = false;
}

/* Every case of knit_scope_enter: outside a task, shared runtimes,
 * expired deadlines and those beyond the wheel's fast path. */
static KNIT_NOINLINE void enter_slow(knit_scope *s, int64_t deadline,
                                     bool shield)
{
    struct knit_task *t = knit__task();
    if (!t)
        knit__panic("knit_scope_enter called outside a task");
    struct knit_scope_user *u = user(s);
    struct knit_worker *w = t->worker;
    /* now >= 0, so this also rules out KNIT_FOREVER and every negative
     * deadline (which all mean "none"). */
    bool arm = deadline > knit__now(w);
    fill(&u->s, t, deadline, !arm && deadline >= 0 ? -ETIMEDOUT : 0, shield);
    knit__timer_init(&u->timer);
    /* The wheel is this worker's and fires only from its loop, never
     * during this call: arming before the scope is linked is safe. */
    if (arm)
        knit__wheel_arm(&w->wheel, &u->timer, deadline, deadline_fired);
    if (w->rt->shared)
        link_locked(w, t, &u->s);
    else
        t->scope = &u->s;
}

/*
 * The common case inline, with no call, so that it saves no registers:
 * one worker, and no deadline or one the wheel arms on its fast path.
 */
static inline void enter(knit_scope *s, int64_t deadline, bool shield)
{
    struct knit_worker *w = knit__worker();
    struct knit_task *t = w ? w->current : NULL;
    struct knit_scope_user *u = user(s);

    if (knit_unlikely(!t || w->rt->shared))
        goto slow;
    if (deadline < 0) {
        fill(&u->s, t, deadline, 0, shield);
        knit__timer_init(&u->timer);
    } else if (deadline > knit__now(w) &&
               knit__wheel_fits(&w->wheel, deadline)) {
        fill(&u->s, t, deadline, 0, shield);
        knit__timer_init(&u->timer);
        knit__wheel_arm_fast(&w->wheel, &u->timer, deadline, deadline_fired);
    } else {
        goto slow;
    }
    t->scope = &u->s;
    return;
slow:
    enter_slow(s, deadline, shield);
}

void knit_scope_enter(knit_scope *s, int64_t deadline)
{
    enter(s, deadline, false);
}

void knit_scope_enter_shielded(knit_scope *s, int64_t deadline)
{
    enter(s, deadline, true);
}

static inline int scope_exit(knit_scope *s)
{
    struct knit_scope_user *u = user(s);
    struct knit_scope_impl *x = &u->s;
    struct knit_worker *w = knit__worker(); /* the running task's worker */
    struct knit_task *t = w ? w->current : NULL;
    if (!t || t->scope != x)
        knit__panic("knit_scope_exit: the scope is not the innermost scope "
                    "of the calling task (exited out of order or twice?)");
    /* Only this worker touches its wheel (a scope fired from another one
     * pokes this one): no lock needed for the timer. */
    knit__wheel_cancel(&w->wheel, &u->timer);
    if (knit_unlikely(w->rt->shared || x->token_linked))
        return unlink_locked(w, t, u);
    t->scope = x->parent;
    return x->err;
}

int knit_scope_exit(knit_scope *s)
{
    return scope_exit(s);
}

void knit_scope_cancel(knit_scope *s)
{
    struct knit_worker *w = knit__worker();
    knit__lock(w);
    knit__scope_fire(impl(s), -ECANCELED);
    knit__unlock(w);
}

bool knit_scope_is_fired(const knit_scope *s)
{
    return cimpl(s)->err != 0;
}

int64_t knit_scope_deadline(const knit_scope *s)
{
    int64_t d = KNIT_FOREVER;
    for (const struct knit_scope_impl *x = cimpl(s); x; x = x->parent) {
        if (x->deadline != KNIT_FOREVER &&
            (d == KNIT_FOREVER || x->deadline < d))
            d = x->deadline;
        if (x->shield)
            break;
    }
    return d;
}

int knit_timeout(int64_t ms, knit_fn fn, void *arg)
{
    knit_scope s;
    struct knit_worker *w = knit__worker(); /* NULL: enter panics */
    int64_t deadline = ms < 0 ? KNIT_FOREVER : (w ? knit__now(w) : 0) + ms;
    /* Inline here: knit_timeout is a scope around one call. */
    enter(&s, deadline, false);
    int r = fn(arg);
    int err = scope_exit(&s);
    /* A failure after our deadline fired is the deadline's doing, unless
     * an enclosing scope cancelled the task, which must show through. */
    if (err == -ETIMEDOUT && r < 0 && r != -ECANCELED)
        return -ETIMEDOUT;
    return r;
}
