// SPDX-License-Identifier: MIT
/*
 * Supervisors (knit/patterns/supervisor.h): the child wrapper and the
 * helpers that start and stop one child, the restart intensity, the
 * restart decision (strategy, restart types, backoff), shutdown, and the
 * supervisor's loop.
 *
 * Each child runs as its own named task, wrapped so that it runs in a
 * scope linked to a per-incarnation token: the supervisor stops one child
 * by cancelling its token, then joins its task, which is exactly
 * OTP's "terminate this child and wait". When a child returns on its own
 * the wrapper stamps it with a sequence number and pokes a notify; the
 * supervisor, parked on that notify (in a scope whose deadline is the
 * next restart due), handles the children that ended in the order they
 * ended. A notify stores a permit when nobody waits, so no end is missed
 * while the supervisor is busy stopping or starting others.
 *
 * Several workers. The children may run on other workers than the
 * supervisor: the only fields a child writes, its ended_seq and the
 * supervisor's seq, are atomics (the stamp is released before the
 * notify, acquired by the supervisor's scan). Everything else is the
 * supervisor task's own.
 *
 * Built only on the public API (DESIGN section 4, layering).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>

#define DEFAULT_MAX_RESTARTS 3
#define DEFAULT_WINDOW_MS 5000

/* A child's life, as the supervisor sees it. */
enum child_state {
    C_DONE,    /* not running and not to be restarted (or not started) */
    C_RUNNING, /* its task runs (or has ended, see ended_seq) */
    C_PENDING, /* to be started at due */
};

struct sup;

struct child {
    knit_child_spec spec; /* copied from the caller */
    struct sup *sup;      /* the supervisor */
    int index;            /* in the specs */
    enum child_state state;
    knit_task *task;            /* while C_RUNNING */
    knit_token token;           /* cancels this incarnation's scope */
    knit_backoff backoff;       /* delays before its restarts */
    int64_t started_at;         /* when this incarnation started */
    int64_t due;                /* C_PENDING: when to start it */
    _Atomic uint64_t ended_seq; /* set by the wrapper when start returned; 0
                             while running; orders the ends (its result
                             is the task's, read by knit_join) */
    int restarts;               /* times it was restarted */
    bool again;                 /* in the restart being decided */
};

struct sup {
    knit_sup_strategy strategy;
    int max_restarts;  /* resolved: restarts allowed in the window */
    int64_t window_ms; /* resolved */
    bool backoff;      /* false: restart at once */
    void (*on_event)(const knit_supervisor_event *ev, void *arg);
    void *event_arg;
    struct child *c; /* n children */
    int n;
    knit_notify ended;    /* a child returned on its own */
    _Atomic uint64_t seq; /* last ended_seq handed out */
    int64_t *times;       /* restarts counted in the window, oldest first */
    int ntimes;           /* entries in times */
    int cap;              /* slots in times */
    int restarts;         /* restarts counted in all */
    int culprit;          /* the child that exceeded the intensity, or -1 */
    int culprit_err;      /* its last result */
};

/* ---- events -------------------------------------------------------------- */

const char *knit_sup_event_name(int kind)
{
    switch (kind) {
    case KNIT_SUP_STARTED:
        return "started";
    case KNIT_SUP_EXITED:
        return "exited";
    case KNIT_SUP_STOPPED:
        return "stopped";
    case KNIT_SUP_RESTARTING:
        return "restarting";
    case KNIT_SUP_GAVE_UP:
        return "gave up";
    case KNIT_SUP_SHUTDOWN:
        return "shutdown";
    default:
        return "?";
    }
}

static void emit(struct sup *s, knit_sup_event_kind kind, struct child *c,
                 int result, int64_t delay, int restarts)
{
    if (!s->on_event)
        return;
    knit_supervisor_event ev = {
        .kind = kind,
        .child = c ? c->index : -1,
        .name = c && c->spec.name ? c->spec.name : "",
        .result = result,
        .delay_ms = delay,
        .restarts = restarts,
    };
    s->on_event(&ev, s->event_arg);
}

/* ---- one child ----------------------------------------------------------- */

/* The child's end stamp, 0 while it runs (set by its own task). */
static uint64_t ended(const struct child *c)
{
    return atomic_load_explicit(&c->ended_seq, memory_order_acquire);
}

static int child_main(void *arg)
{
    struct child *c = arg;
    knit_scope scope;
    knit_scope_enter(&scope, KNIT_FOREVER);
    knit_scope_link_token(&scope, &c->token);
    int r = c->spec.start(c->spec.arg);
    (void)knit_scope_exit(&scope);
    uint64_t seq = atomic_fetch_add(&c->sup->seq, 1) + 1;
    atomic_store_explicit(&c->ended_seq, seq, memory_order_release);
    knit_notify_one(&c->sup->ended);
    return r;
}

/* Starts @c's next incarnation: 0, or -ENOMEM. */
static int start_child(struct sup *s, struct child *c)
{
    /* A cancelled token stays cancelled: each incarnation gets a fresh
     * one. The old one has no waiter: its scope was exited. */
    knit_token_destroy(&c->token);
    knit_token_init(&c->token, NULL);
    atomic_store_explicit(&c->ended_seq, 0, memory_order_relaxed);
    knit_task_opts to = {.name = c->spec.name,
                         .stack_size = c->spec.stack_size};
    c->task = knit_spawn_with(&to, child_main, c);
    if (!c->task) {
        c->state = C_DONE;
        return -ENOMEM;
    }
    c->state = C_RUNNING;
    c->started_at = knit_now();
    emit(s, KNIT_SUP_STARTED, c, 0, 0, c->restarts);
    return 0;
}

/* Joins @c's task, which has ended or was told to; returns its result.
 * Shielded: a supervisor that is itself being cancelled must still wait,
 * or the child would outlive it. */
static int reap(struct child *c)
{
    knit_scope shield;
    knit_scope_enter_shielded(&shield, KNIT_FOREVER);
    int r = knit_join(c->task);
    (void)knit_scope_exit(&shield);
    c->task = NULL;
    c->state = C_DONE;
    return r;
}

/*
 * Stops a running child and waits for it. Returns true when it had
 * already returned on its own (an end not yet handled), false when the
 * supervisor's cancel ended it; *@r gets its result either way.
 */
static bool stop_child(struct sup *s, struct child *c, int *r)
{
    bool own = ended(c) != 0;
    if (!own)
        knit_token_cancel(&c->token);
    *r = reap(c);
    emit(s, own ? KNIT_SUP_EXITED : KNIT_SUP_STOPPED, c, *r, 0, 0);
    return own;
}

/* Whether a child that returned @r on its own is to run again. */
static bool wants_restart(const struct child *c, int r)
{
    switch (c->spec.restart) {
    case KNIT_CHILD_PERMANENT:
        return true;
    case KNIT_CHILD_TRANSIENT:
        return r < 0;
    default:
        return false;
    }
}

/* ---- intensity ----------------------------------------------------------- */

/*
 * Counts a restart now, unless max_restarts are already counted within
 * the window: then returns -ELOOP and counts nothing. -ENOMEM when the
 * record cannot grow. The record holds at most max_restarts times, so it
 * stays small whatever the limit is.
 */
static int count_restart(struct sup *s)
{
    int64_t now = knit_now();
    int keep = 0;
    while (keep < s->ntimes && s->times[keep] <= now - s->window_ms)
        keep++; /* left the window */
    if (keep > 0) {
        s->ntimes -= keep;
        memmove(s->times, s->times + keep, sizeof(*s->times) * s->ntimes);
    }
    if (s->ntimes >= s->max_restarts)
        return -ELOOP;
    if (s->ntimes == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        if (cap > s->max_restarts)
            cap = s->max_restarts;
        int64_t *t = realloc(s->times, sizeof(*t) * (size_t)cap);
        if (!t)
            return -ENOMEM;
        s->times = t;
        s->cap = cap;
    }
    s->times[s->ntimes++] = now;
    s->restarts++;
    return 0;
}

/* ---- the restart decision ------------------------------------------------ */

/* Stops every child, last started first, and returns @why. */
static int stop_all(struct sup *s, int why)
{
    emit(s, KNIT_SUP_SHUTDOWN, NULL, why, 0, 0);
    for (int i = s->n - 1; i >= 0; i--) {
        struct child *c = &s->c[i];
        int r;
        if (c->state == C_RUNNING)
            (void)stop_child(s, c, &r);
        c->state = C_DONE;
    }
    return why;
}

/*
 * @c returned on its own: reap it and restart what the strategy says.
 * Returns 0, or -ELOOP / -ENOMEM, for which the caller shuts down.
 */
static int child_ended(struct sup *s, struct child *c)
{
    int r = reap(c);
    emit(s, KNIT_SUP_EXITED, c, r, 0, 0);
    if (!wants_restart(c, r))
        return 0; /* ended for good; the siblings are not affected */
    int err = count_restart(s);
    if (err == -ELOOP) {
        s->culprit = c->index;
        s->culprit_err = r;
        emit(s, KNIT_SUP_GAVE_UP, c, r, 0, s->ntimes);
    }
    if (err < 0)
        return err;

    int64_t now = knit_now();
    int64_t delay = 0;
    if (s->backoff) {
        /* A child that held up for a whole window starts over. */
        if (now - c->started_at >= s->window_ms)
            knit_backoff_reset(&c->backoff);
        delay = knit_backoff_next(&c->backoff, 0);
    }
    int64_t due = now + delay;

    /* The children that restart with it: [lo, hi]. */
    int lo = c->index;
    int hi = lo;
    if (s->strategy == KNIT_SUP_ONE_FOR_ALL)
        lo = 0;
    if (s->strategy != KNIT_SUP_ONE_FOR_ONE)
        hi = s->n - 1;
    for (int i = hi; i >= lo; i--) { /* stopped in reverse start order */
        struct child *o = &s->c[i];
        o->again = o == c;
        if (o == c)
            continue;
        if (o->state == C_PENDING) {
            o->again = true;
            if (o->due > due)
                due = o->due; /* the set restarts together, when the
                                 latest of them is due */
        } else if (o->state == C_RUNNING) {
            int ro;
            bool own = stop_child(s, o, &ro);
            /* One that had ended on its own restarts if its own end
             * asks for it; one the supervisor stopped restarts unless
             * it is temporary (OTP). No extra restart is counted. */
            o->again = own ? wants_restart(o, ro)
                           : o->spec.restart != KNIT_CHILD_TEMPORARY;
        }
    }
    for (int i = lo; i <= hi; i++) {
        struct child *o = &s->c[i];
        if (!o->again)
            continue;
        if (o->state != C_PENDING)
            o->restarts++; /* a pending one is only rescheduled */
        o->state = C_PENDING;
        o->due = due;
        emit(s, KNIT_SUP_RESTARTING, o, 0, due - now, 0);
    }
    return 0;
}

/* The running child that ended first and is not handled yet, or NULL. */
static struct child *first_ended(struct sup *s)
{
    struct child *first = NULL;
    uint64_t first_seq = 0;
    for (int i = 0; i < s->n; i++) {
        struct child *c = &s->c[i];
        uint64_t seq = c->state == C_RUNNING ? ended(c) : 0;
        if (seq != 0 && (!first || seq < first_seq)) {
            first = c;
            first_seq = seq;
        }
    }
    return first;
}

/* ---- the loop ------------------------------------------------------------ */

static int supervise(struct sup *s)
{
    for (int i = 0; i < s->n; i++)
        if (start_child(s, &s->c[i]) < 0)
            return stop_all(s, -ENOMEM);
    for (;;) {
        struct child *c;
        while ((c = first_ended(s)) != NULL) {
            int err = child_ended(s, c);
            if (err < 0)
                return stop_all(s, err);
        }
        /* Start what is due, in start order; find the next due. */
        int64_t now = knit_now();
        int64_t next = KNIT_FOREVER;
        bool running = false;
        for (int i = 0; i < s->n; i++) {
            c = &s->c[i];
            if (c->state == C_PENDING && c->due <= now && start_child(s, c) < 0)
                return stop_all(s, -ENOMEM);
            if (c->state == C_PENDING && (next < 0 || c->due < next))
                next = c->due;
            running |= c->state == C_RUNNING;
        }
        if (!running && next == KNIT_FOREVER)
            return 0; /* every child ended for good */
        knit_scope wait;
        knit_scope_enter(&wait, next);
        int err = knit_notify_wait(&s->ended);
        int werr = knit_scope_exit(&wait);
        /* Our own deadline is a restart coming due; anything else is
         * the caller's scope firing, which ends the supervision. */
        if (err < 0 && werr != -ETIMEDOUT)
            return stop_all(s, err);
    }
}

static bool valid(const knit_supervisor_opts *o,
                  const knit_child_spec *children, int n)
{
    if (!children || n < 1)
        return false;
    if (o && (o->strategy < KNIT_SUP_ONE_FOR_ONE ||
              o->strategy > KNIT_SUP_REST_FOR_ONE))
        return false;
    for (int i = 0; i < n; i++)
        if (!children[i].start || children[i].restart < KNIT_CHILD_PERMANENT ||
            children[i].restart > KNIT_CHILD_TEMPORARY)
            return false;
    return true;
}

int knit_supervisor_run(const knit_supervisor_opts *o,
                        const knit_child_spec *children, int n,
                        knit_supervisor_report *report)
{
    static const knit_supervisor_opts defaults;
    if (!valid(o, children, n))
        return -EINVAL;
    if (!o)
        o = &defaults;
    struct sup s = {
        .strategy = o->strategy,
        .max_restarts = o->max_restarts == 0  ? DEFAULT_MAX_RESTARTS
                        : o->max_restarts < 0 ? 0
                                              : o->max_restarts,
        .window_ms = o->window_ms > 0 ? o->window_ms : DEFAULT_WINDOW_MS,
        .backoff = o->backoff != NULL,
        .on_event = o->on_event,
        .event_arg = o->event_arg,
        .n = n,
        .culprit = -1,
    };
    knit_notify_init(&s.ended);
    int err = -ENOMEM;
    s.c = calloc((size_t)n, sizeof(*s.c));
    if (s.c) {
        knit_backoff_policy p = {0};
        if (o->backoff) {
            p = *o->backoff;
            p.max_attempts = 0; /* the intensity bounds the restarts */
        }
        for (int i = 0; i < n; i++) {
            struct child *c = &s.c[i];
            c->spec = children[i];
            c->sup = &s;
            c->index = i;
            c->state = C_DONE;
            knit_token_init(&c->token, NULL);
            knit_backoff_init(&c->backoff, &p);
        }
        err = supervise(&s);
        for (int i = 0; i < n; i++)
            knit_token_destroy(&s.c[i].token);
    }
    free(s.c);
    free(s.times);
    if (report) {
        report->child = s.culprit;
        report->error = s.culprit < 0 ? 0 : s.culprit_err;
        report->restarts = s.restarts;
    }
    return err;
}
