// SPDX-License-Identifier: MIT
/*
 * knit_select (knit/select.h).
 *
 * Two passes. The first tries every case without waiting, from a random
 * start, and completes the first that can. The second registers one
 * knit_waiter per case, all sharing a struct knit_sel, and parks. The
 * primitive that acts first claims its waiter (knit__waiter_claim): that
 * claim is what decides the winner, and a primitive whose claim fails
 * leaves the case alone, so the losers leave no trace. On waking, the
 * select unregisters every losing case before returning.
 *
 * The task's own waiter while parked is a separate record whose cancel
 * hook unregisters all cases, so a firing scope needs no special case.
 *
 * Threading: the whole select runs under the runtime lock (core/sched.h),
 * released only while it is parked, so claims made by tasks of other
 * workers and the unregistering of the losers cannot interleave; the
 * primitives' hooks it calls (knit__chan_*, knit__notify_*,
 * knit__token_*) expect the lock held and do not take it.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>

#include "chan/chan_impl.h"
#include "core/compiler.h"
#include "core/sched.h"
#include "io/driver.h"
#include "knit/select.h"
#include "sync/sync.h"

enum case_kind {
    CASE_NONE,
    CASE_RECV,
    CASE_SEND,
    CASE_JOIN,
    CASE_FD,
    CASE_DEADLINE,
    CASE_NOTIFY,
    CASE_TOKEN,
};

struct sel_case {
    int kind;         /* enum case_kind */
    int result;       /* the fired case's result */
    void *obj;        /* channel, task, notify or token */
    void *data;       /* element buffer, or int * for a join */
    int64_t deadline; /* CASE_DEADLINE */
    int fd;           /* CASE_FD */
    int events;       /* CASE_FD */
};

_Static_assert(sizeof(knit_case) >= sizeof(struct sel_case), "grow knit_case");

static inline struct sel_case *sc(knit_case *c)
{
    return (struct sel_case *)(void *)c;
}

static knit_case make(struct sel_case x)
{
    knit_case c;
    memset(&c, 0, sizeof(c));
    memcpy(&c, &x, sizeof(x));
    return c;
}

knit_case knit_case_recv(knit_chan *c, void *out)
{
    return make((struct sel_case){.kind = CASE_RECV, .obj = c, .data = out});
}

knit_case knit_case_send(knit_chan *c, const void *in)
{
    return make(
        (struct sel_case){.kind = CASE_SEND, .obj = c, .data = (void *)in});
}

knit_case knit_case_join(knit_task *t, int *result)
{
    return make((struct sel_case){.kind = CASE_JOIN, .obj = t, .data = result});
}

knit_case knit_case_fd(int fd, int events)
{
    return make((struct sel_case){.kind = CASE_FD, .fd = fd, .events = events});
}

knit_case knit_case_deadline(int64_t deadline)
{
    return make((struct sel_case){.kind = CASE_DEADLINE, .deadline = deadline});
}

knit_case knit_case_notify(knit_notify *n)
{
    return make((struct sel_case){.kind = CASE_NOTIFY, .obj = n});
}

knit_case knit_case_token(knit_token *t)
{
    return make((struct sel_case){.kind = CASE_TOKEN, .obj = t});
}

int knit_case_result(const knit_case *c)
{
    return ((const struct sel_case *)(const void *)c)->result;
}

/* ---- pass 1: completing a case without waiting -------------------------- */

/* Takes @t's result into @out and frees it, as knit_join does. */
static void reap_joined(struct knit_task *t, int *out)
{
    if (out)
        *out = t->result;
    t->joined = true;
    knit__task_unref(t);
}

/* Completes @c now if it can: its result, or -EAGAIN. */
static int try_case(struct knit_worker *w, struct sel_case *c)
{
    switch (c->kind) {
    case CASE_RECV:
        return knit__chan_try_recv(c->obj, c->data);
    case CASE_SEND:
        return knit__chan_try_send(c->obj, c->data);
    case CASE_JOIN: {
        struct knit_task *t = c->obj;
        if (!knit__task_ended(t))
            return -EAGAIN;
        reap_joined(t, c->data);
        return 0;
    }
    case CASE_FD: {
        struct pollfd p = {.fd = c->fd, .events = (short)c->events};
        if (poll(&p, 1, 0) <= 0)
            return -EAGAIN;
        if (p.revents & POLLNVAL)
            return -EBADF;
        return p.revents;
    }
    case CASE_DEADLINE:
        if (c->deadline == KNIT_FOREVER || c->deadline > knit__now(w))
            return -EAGAIN;
        return 0;
    case CASE_NOTIFY:
        return knit__notify_try_take(c->obj) ? 0 : -EAGAIN;
    case CASE_TOKEN:
        return knit__token_is_cancelled(c->obj) ? 0 : -EAGAIN;
    default:
        return -EINVAL;
    }
}

/* ---- pass 2: waiting on every case ------------------------------------------
 */

/* One registered case: its waiter and what it needs to be undone. */
struct reg {
    struct knit_io_wait io;  /* io.w is the case's waiter (all kinds) */
    struct knit_timer timer; /* CASE_DEADLINE */
    struct sel_case *c;
};

/* The select's own waiter, carrying the registrations for its hook. */
struct sel_waiter {
    struct knit_waiter w;
    struct reg *regs;
    int n;
};

static void deadline_fired(struct knit_timer *tm)
{
    struct reg *r = knit_container_of(tm, struct reg, timer);
    if (knit__waiter_claim(&r->io.w))
        knit__wake(&r->io.w, 0);
}

static void unregister(struct reg *r)
{
    struct knit_waiter *w = &r->io.w;
    switch (r->c->kind) {
    case CASE_RECV:
    case CASE_SEND:
    case CASE_NOTIFY:
    case CASE_TOKEN:
        knit_list_remove(&w->link);
        break;
    case CASE_JOIN:
        knit__join_unregister(r->c->obj, w);
        break;
    case CASE_FD:
        knit__io_wait_disarm(&r->io);
        break;
    case CASE_DEADLINE:
        knit__wheel_cancel(&w->task->worker->wheel, &r->timer);
        break;
    default:
        break;
    }
}

static void unregister_all(struct knit_waiter *w)
{
    struct sel_waiter *sw = knit_container_of(w, struct sel_waiter, w);
    for (int i = 0; i < sw->n; i++)
        unregister(&sw->regs[i]);
}

/* Registers case @i; 0, or an error to report as that case's result. */
/* register_case's answer for a join case whose task has ended: not an
 * errno, not an fd event mask. */
#define JOIN_NOW INT_MIN

static int register_case(struct knit_worker *wk, struct reg *r,
                         struct knit_sel *sel, int i)
{
    struct sel_case *c = r->c;
    struct knit_waiter *w = &r->io.w;
    knit__waiter_init(w, "select case", c->obj, NULL);
    w->sel = sel;
    w->index = i;
    w->data = c->data;
    knit_list_init(&r->io.fd_link);
    knit_list_init(&r->timer.link);
    switch (c->kind) {
    case CASE_RECV:
        knit__chan_enqueue_recv(c->obj, w);
        return 0;
    case CASE_SEND:
        knit__chan_enqueue_send(c->obj, w);
        return 0;
    case CASE_JOIN: {
        struct knit_task *t = c->obj;
        if (t->joiner || t->joined || t->detached || t->group)
            knit__panic("knit_case_join on task %llu, which is joined, "
                        "detached, owned by a group or already awaited",
                        (unsigned long long)t->id);
        knit_task_start(t);
        if (!knit__join_register(t, w))
            return JOIN_NOW; /* it ended since the first pass */
        return 0;
    }
    case CASE_FD: {
        int err = knit__io_wait_arm(&wk->io, &r->io, c->fd, c->events);
        if (err == -EPERM)
            return c->events; /* regular file: always ready */
        return err;
    }
    case CASE_DEADLINE:
        if (c->deadline != KNIT_FOREVER)
            knit__wheel_arm(&wk->wheel, &r->timer, c->deadline, deadline_fired);
        return 0;
    case CASE_NOTIFY:
        knit__notify_enqueue(c->obj, w);
        return 0;
    case CASE_TOKEN:
        knit__token_enqueue(c->obj, w);
        return 0;
    default:
        return -EINVAL;
    }
}

static int select_impl(knit_case *cases, int n, bool biased)
{
    struct knit_worker *wk = knit__worker();
    struct knit_task *t = wk ? wk->current : NULL;
    if (!t)
        knit__panic("knit_select called outside a task");
    if (n < 1 || n > KNIT_SELECT_MAX || !cases)
        return -EINVAL;
    for (int i = 0; i < n; i++)
        if (sc(&cases[i])->kind <= CASE_NONE ||
            sc(&cases[i])->kind > CASE_TOKEN)
            return -EINVAL;
    int err = knit__scope_err(t);
    if (err)
        return err;

    int start = biased ? 0 : (int)(knit__rand(wk) % (uint64_t)n);
    for (int k = 0; k < n; k++) {
        int i = start + k < n ? start + k : start + k - n;
        int r = try_case(wk, sc(&cases[i]));
        if (r != -EAGAIN) {
            sc(&cases[i])->result = r;
            return i;
        }
    }

    struct knit_sel sel = {.fired = -1};
    struct reg regs[KNIT_SELECT_MAX];
    struct sel_waiter sw = {.regs = regs, .n = 0};
    for (int i = 0; i < n; i++) {
        regs[i].c = sc(&cases[i]);
        int r = register_case(wk, &regs[i], &sel, i);
        if (r) {
            /* This case completes on the spot (an fd that cannot wait, a
             * task that ended since the first pass): undo the
             * registrations so far; it wins. */
            sw.n = i;
            unregister_all(&sw.w);
            if (r == JOIN_NOW) {
                reap_joined(regs[i].c->obj, regs[i].c->data);
                r = 0;
            }
            sc(&cases[i])->result = r;
            return i;
        }
        sw.n = i + 1;
    }
    knit__waiter_init(&sw.w, "select", NULL, unregister_all);
    err = knit__wait(&sw.w);
    int fired = sel.fired;
    if (fired < 0)
        return err; /* the scope fired; the hook unregistered everything */
    for (int i = 0; i < n; i++)
        if (i != fired)
            unregister(&regs[i]);
    struct sel_case *c = sc(&cases[fired]);
    c->result = regs[fired].io.w.result;
    if (c->kind == CASE_JOIN)
        reap_joined(c->obj, c->data);
    if (c->kind == CASE_FD && c->result > 0)
        c->result = regs[fired].io.revents;
    return fired;
}

int knit_select(knit_case *cases, int n)
{
    return KNIT_LOCKED(select_impl(cases, n, false));
}

int knit_select_biased(knit_case *cases, int n)
{
    return KNIT_LOCKED(select_impl(cases, n, true));
}
