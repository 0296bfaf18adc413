// SPDX-License-Identifier: MIT
/*
 * knit_once (knit/sync.h): a three-state machine (not run, running, done)
 * with the task running init and a FIFO queue of callers waiting for it.
 *
 * When init succeeds every waiter is woken with DONE and reads the stored
 * result. When it fails, the turn passes to the first waiter (woken with
 * TURN, the once staying "running" on its behalf so that no newcomer can
 * slip in before it runs), or the once goes back to "not run" when nobody
 * waits. A waiter given the turn whose scope fired in the meantime passes
 * it on at once instead of running its init. A cancelled waiter was given
 * nothing (a woken waiter is runnable, and scopes cancel parked waiters
 * only), so its cancel hook only unlinks it.
 *
 * Threading: every public operation runs under the runtime lock (core/
 * sched.h; a no-op with one worker), which a waiter releases while parked.
 * init itself runs without it (it is the caller's code, and may take
 * long); the once stays RUNNING on its runner's behalf meanwhile.
 */
#include <errno.h>
#include <string.h>

#include "core/compiler.h"
#include "core/sched.h"
#include "sync/sync.h"

enum once_state {
    ONCE_NEW,     /* init has not run, or every run so far failed */
    ONCE_RUNNING, /* runner is running init (or about to) */
    ONCE_DONE,    /* init succeeded; result is final */
};

/* Wake results for waiters (errors from scopes are negative). */
enum {
    DONE = 0, /* read the stored result */
    TURN = 1, /* the last init failed: run yours */
};

struct once {
    int state;                /* enum once_state */
    int result;               /* init's result once DONE */
    struct knit_task *runner; /* the task running init, while RUNNING */
    struct knit_list waiters; /* knit_waiter.link of callers, FIFO */
};

_Static_assert(sizeof(knit_once) >= sizeof(struct once), "grow");

static inline struct once *impl(knit_once *o)
{
    return (struct once *)(void *)o;
}

/* Hands the failed initialisation to the first waiter, if any. */
static void pass_turn(struct once *x)
{
    struct knit_waiter *w = NULL;
    if (x->waiters.next)
        w = knit__wq_claim(&x->waiters);
    if (!w) {
        x->state = ONCE_NEW;
        x->runner = NULL;
        return;
    }
    x->runner = w->task;
    knit__wake(w, TURN);
}

void knit_once_init(knit_once *o)
{
    memset(o, 0, sizeof(*o));
}

/*
 * The first half of knit_once_call (rt lock): true when the caller must
 * run init now, the once being RUNNING on its behalf; otherwise *@r is the
 * call's result.
 */
static bool once_begin(struct once *x, struct knit_task *t, int *r)
{
    int err = knit__scope_err(t);
    if (knit_unlikely(err)) {
        *r = err;
        return false;
    }
    if (knit_likely(x->state == ONCE_DONE)) {
        *r = x->result;
        return false;
    }
    if (x->state == ONCE_NEW) {
        x->state = ONCE_RUNNING;
        x->runner = t;
        return true;
    }
    if (knit_unlikely(x->runner == t))
        knit__panic("knit_once_call from inside the once's own init");
    struct knit_waiter w;
    knit__waiter_init(&w, "once", x, knit__waiter_unlink);
    knit_list_push_back(knit__wq_lazy(&x->waiters), &w.link);
    err = knit__wait(&w);
    if (err != TURN) {
        *r = err < 0 ? err : x->result; /* a scope's error, or DONE */
        return false;
    }
    err = knit__scope_err(t);
    if (err) {
        pass_turn(x);
        *r = err;
        return false;
    }
    return true;
}

/* The second half (rt lock): records init's result @r. */
static void once_end(struct once *x, int r)
{
    if (r < 0) {
        pass_turn(x);
        return;
    }
    x->state = ONCE_DONE;
    x->result = r;
    x->runner = NULL;
    if (x->waiters.next)
        knit__wq_wake_all(&x->waiters, DONE);
}

int knit_once_call(knit_once *o, knit_fn init, void *arg)
{
    struct once *x = impl(o);
    struct knit_task *t = knit__task();
    if (knit_unlikely(!t))
        knit__panic("knit_once_call called outside a task");
    int r = 0; /* once_begin sets it whenever it returns false */
    if (!KNIT_LOCKED(once_begin(x, t, &r)))
        return r;
    r = init(arg);
    KNIT_LOCKED_VOID(once_end(x, r));
    return r;
}

bool knit_once_is_done(const knit_once *o)
{
    const struct once *x = (const struct once *)(const void *)o;
    return KNIT_LOCKED(x->state == ONCE_DONE);
}
