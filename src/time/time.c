// SPDX-License-Identifier: MIT
/*
 * The public time API (knit/time.h): the cached clock, sleeps on the
 * worker's timer wheel, intervals, and the manual clock's advance.
 */
#include <errno.h>

#include "core/compiler.h"
#include "core/sched.h"
#include "knit/rt.h"
#include "knit/time.h"

int64_t knit_now(void)
{
    struct knit_worker *w = knit__worker();
    return w ? knit__now(w) : 0;
}

/* A parked sleep: the waiter and the timer that wakes it. */
struct sleeper {
    struct knit_waiter w;
    struct knit_timer timer;
};

static void sleep_fired(struct knit_timer *tm)
{
    struct sleeper *s = knit_container_of(tm, struct sleeper, timer);
    knit__wake(&s->w, 0);
}

static void sleep_cancel(struct knit_waiter *w)
{
    struct sleeper *s = knit_container_of(w, struct sleeper, w);
    knit__wheel_cancel(&w->task->worker->wheel, &s->timer);
}

int knit_sleep_until(int64_t deadline)
{
    struct knit_worker *w = knit__worker();
    if (!w || !w->current)
        knit__panic("knit_sleep called outside a task");
    if (deadline != KNIT_FOREVER && deadline <= knit__now(w))
        return knit_yield();
    struct sleeper s;
    knit__waiter_init(&s.w, "sleep", NULL, sleep_cancel);
    knit_list_init(&s.timer.link);
    if (deadline != KNIT_FOREVER)
        knit__wheel_arm(&w->wheel, &s.timer, deadline, sleep_fired);
    return knit__wait(&s.w);
}

int knit_sleep(int64_t ms)
{
    if (ms <= 0)
        return knit_yield();
    return knit_sleep_until(knit_now() + ms);
}

void knit_clock_advance(int64_t ms)
{
    struct knit_worker *w = knit__worker();
    if (!w || !w->rt->manual)
        knit__panic("knit_clock_advance needs a KNIT_CLOCK_MANUAL runtime");
    if (ms <= 0)
        return;
    knit__lock(w);
    atomic_fetch_add(&w->rt->manual_now, ms);
    knit__clock_refresh(w);
    knit__wheel_advance(&w->wheel, w->now);
    /* The other workers fire theirs when they next look at the clock;
     * an idle one is woken to. */
    if (w->rt->shared)
        knit__wake_idle(w->rt, w->rt->nworkers);
    knit__unlock(w);
}

/* ---- intervals --------------------------------------------------------- */

struct interval {
    int64_t next;   /* scheduled time of the next tick */
    int64_t period; /* ms between ticks */
    int missed;     /* KNIT_MISSED_* */
    bool started;   /* next is valid (the first tick fixes it) */
};

_Static_assert(sizeof(knit_interval) >= sizeof(struct interval),
               "grow knit_interval");

int knit_interval_init(knit_interval *iv, int64_t period_ms, int missed)
{
    struct interval *x = (struct interval *)(void *)iv;
    if (period_ms <= 0 || missed < KNIT_MISSED_BURST ||
        missed > KNIT_MISSED_SKIP)
        return -EINVAL;
    x->period = period_ms;
    x->missed = missed;
    x->next = 0;
    x->started = false;
    return 0;
}

int64_t knit_interval_tick(knit_interval *iv)
{
    struct interval *x = (struct interval *)(void *)iv;
    if (!x->started) {
        /* The first tick completes at once, like tokio's interval. */
        x->started = true;
        x->next = knit_now();
    }
    int err = knit_sleep_until(x->next);
    if (err)
        return err;
    int64_t tick = x->next;
    int64_t now = knit_now();
    switch (x->missed) {
    case KNIT_MISSED_BURST:
        x->next = tick + x->period;
        break;
    case KNIT_MISSED_DELAY:
        /* Late ticks push the schedule back: one period from now. */
        x->next = (now > tick ? now : tick) + x->period;
        break;
    default: /* KNIT_MISSED_SKIP: the next grid point after now. */
        x->next = tick + x->period;
        if (x->next <= now)
            x->next += ((now - x->next) / x->period + 1) * x->period;
        break;
    }
    return tick;
}
