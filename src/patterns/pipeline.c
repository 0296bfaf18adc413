// SPDX-License-Identifier: MIT
/*
 * Pipelines (knit/patterns/pipeline.h): building, then the source and
 * stage tasks, then running, cancelling and the counters.
 *
 * Stage 0 is the source; stage i >= 1 receives from stages[i]->in, the
 * channel stage i - 1 sends to (stages[i - 1]->out). Each channel counts
 * its senders (knit_chan_sender_add per task of the stage before it), so
 * the last task of a stage to end closes its output, whatever ended it:
 * the end always travels downstream through ordinary closes, and the
 * stage after sees -EPIPE once it has drained what was sent.
 *
 * Teardown uses the token tree. Stage i's token is a child of stage
 * i + 1's, so the last stage holds the root, and each task runs in a
 * scope linked to its stage's token. A failure in stage i cancels token i,
 * which cancels i and every stage before it (the producers feeding it)
 * and nothing after it: the stages after drain what they were sent and
 * end. knit_pipeline_cancel and the caller's cancellation cancel the
 * root: everything.
 *
 * The caller waits on a waitgroup rather than on the group, so that its
 * own cancellation goes through the root token (every task then counts
 * its items as dropped, not failed) before knit_group_wait reaps them.
 *
 * Several workers. A stage's tasks may run on different workers at once:
 * its counters are atomics (relaxed: they are statistics), the first
 * error is set by a compare-and-swap, and the run state is switched
 * under the pipeline's spin lock, which knit_pipeline_cancel takes too,
 * so a cancel from another task never reaches a token being destroyed.
 *
 * Built only on the public API (DESIGN section 4, layering).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>
#include "patterns/misuse.h"

#define NAME_MAX_LEN 31
#define ALIGN _Alignof(max_align_t)

struct stage;

/* A stage's counter: its tasks may run on several workers. */
typedef _Atomic uint64_t counter;

static void inc(counter *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void dec(counter *c)
{
    atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
}

static uint64_t get(const counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* One task of a stage and its item buffers. */
struct pworker {
    struct stage *st;   /* its stage */
    unsigned char *in;  /* the item received (in_size bytes) or NULL */
    unsigned char *out; /* the item produced (out_size bytes) or NULL */
};

struct stage {
    struct knit_pipeline *p;     /* the pipeline it belongs to */
    char name[NAME_MAX_LEN + 1]; /* for the counters; "" when none */
    knit_source_fn source;       /* stage 0 only */
    knit_stage_fn fn;            /* the other stages */
    void *ctx;                   /* passed to source or fn */
    unsigned workers;            /* tasks (1 for the source) */
    size_t capacity;             /* of in; 0 for the source */
    size_t in_size;              /* bytes per input item; 0 for the source */
    size_t out_size;             /* bytes per output item; 0 for a sink */
    knit_chan *in;               /* from the stage before; NULL: source */
    knit_chan *out;              /* the next stage's in; NULL: the last */
    knit_token stop;             /* child of the next stage's (see top) */
    struct pworker *ws;          /* one per task, then their buffers */
    /* The counters knit_pipeline_stats reports (see knit_stage_stats). */
    counter n_in;            /* items received (source: produced) */
    counter n_out;           /* items sent on, or finished by a sink */
    counter n_skipped;       /* KNIT_STAGE_SKIP answers */
    counter n_errors;        /* failures of the function on its own */
    counter n_dropped;       /* items lost to a teardown */
    counter n_in_flight;     /* received, not yet done with */
    counter n_max_in_flight; /* the most n_in_flight has been */
};

enum state {
    BUILDING, /* stages may be added */
    RUNNING,  /* inside knit_pipeline_run: tokens are live */
    DONE,     /* ran (or refused to) */
};

struct knit_pipeline {
    struct stage **stages;  /* n of them, stages[0] the source */
    size_t n;               /* stages, the source included */
    size_t cap;             /* room in stages */
    knit_group group;       /* the tasks, during the run */
    knit_waitgroup running; /* tasks not yet ended */
    knit__pspin lk;         /* guards state and cancelled */
    enum state state;       /* see enum state */
    int build_err;          /* the first failed builder call, or 0 */
    atomic_int err;         /* the first failure or cancel, or 0 */
    bool cancelled;         /* knit_pipeline_cancel before the run */
};

/* ---- building ---------------------------------------------------------- */

knit_pipeline *knit_pipeline_new(void)
{
    return calloc(1, sizeof(struct knit_pipeline));
}

/* Remembers the first failed builder call; returns @err. */
static int refuse(knit_pipeline *p, int err)
{
    if (p && !p->build_err)
        p->build_err = err;
    return err;
}

static int append(knit_pipeline *p, const char *name, struct stage **out)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        struct stage **s = realloc(p->stages, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        p->stages = s;
        p->cap = cap;
    }
    struct stage *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->p = p;
    if (name)
        snprintf(st->name, sizeof(st->name), "%s", name);
    p->stages[p->n++] = st;
    *out = st;
    return 0;
}

int knit_pipeline_source(knit_pipeline *p, const char *name, size_t item_size,
                         knit_source_fn fn, void *ctx)
{
    if (!p || !fn || item_size == 0 || p->n > 0 || p->state != BUILDING)
        return refuse(p, -EINVAL);
    struct stage *st;
    int err = append(p, name, &st);
    if (err < 0)
        return refuse(p, err);
    st->source = fn;
    st->ctx = ctx;
    st->workers = 1;
    st->out_size = item_size;
    return 0;
}

int knit_pipeline_stage(knit_pipeline *p, const char *name, unsigned workers,
                        size_t capacity, size_t out_size, knit_stage_fn fn,
                        void *ctx)
{
    if (!p || !fn || workers == 0 || capacity == 0 || p->n == 0 ||
        p->stages[p->n - 1]->out_size == 0 || p->state != BUILDING)
        return refuse(p, -EINVAL);
    size_t in_size = p->stages[p->n - 1]->out_size;
    struct stage *st;
    int err = append(p, name, &st);
    if (err < 0)
        return refuse(p, err);
    st->fn = fn;
    st->ctx = ctx;
    st->workers = workers;
    st->capacity = capacity;
    st->in_size = in_size;
    st->out_size = out_size;
    return 0;
}

/* ---- the tasks --------------------------------------------------------- */

static void item_in(struct stage *st)
{
    inc(&st->n_in);
    uint64_t now =
        atomic_fetch_add_explicit(&st->n_in_flight, 1, memory_order_relaxed) +
        1;
    uint64_t max = get(&st->n_max_in_flight);
    while (now > max && !atomic_compare_exchange_weak_explicit(
                            &st->n_max_in_flight, &max, now,
                            memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* Records @err as the pipeline's error unless one came first. */
static void first_err(knit_pipeline *p, int err)
{
    int none = 0;
    (void)atomic_compare_exchange_strong(&p->err, &none, err);
}

/* A function of @st failed on its own: the first failure is the
 * pipeline's; @st and the stages before it stop (see the top). */
static void fail(struct stage *st, int err)
{
    inc(&st->n_errors);
    first_err(st->p, err);
    knit_token_cancel(&st->stop);
}

/* Sends @w's product on; false when that failed (the item is dropped). */
static bool send_on(struct stage *st, struct pworker *w)
{
    int err = knit_chan_send(st->out, w->out);
    dec(&st->n_in_flight);
    if (err < 0) {
        inc(&st->n_dropped); /* cancelled by a teardown */
        return false;
    }
    inc(&st->n_out);
    return true;
}

static void task_end(struct stage *st)
{
    if (st->out)
        knit_chan_sender_done(st->out); /* the last one closes it */
    knit_waitgroup_done(&st->p->running);
}

static int source_main(void *arg)
{
    struct pworker *w = arg;
    struct stage *st = w->st;
    knit_scope s;
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_link_token(&s, &st->stop);
    while (!knit_token_is_cancelled(&st->stop)) {
        int r = st->source(st->ctx, w->out);
        if (r == -EPIPE)
            break; /* the end */
        if (r < 0) {
            /* A failure in a teardown is the teardown's doing. */
            if (!knit_token_is_cancelled(&st->stop))
                fail(st, r);
            break;
        }
        item_in(st);
        if (!send_on(st, w))
            break;
    }
    (void)knit_scope_exit(&s);
    task_end(st);
    return 0;
}

static int stage_main(void *arg)
{
    struct pworker *w = arg;
    struct stage *st = w->st;
    knit_scope s;
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_link_token(&s, &st->stop);
    /* -EPIPE: the stage before has ended and its items are all taken;
     * -ECANCELED: this stage was stopped. */
    while (knit_chan_recv(st->in, w->in) == 0) {
        item_in(st);
        int r = st->fn(st->ctx, w->in, w->out);
        if (r < 0) {
            dec(&st->n_in_flight);
            if (knit_token_is_cancelled(&st->stop)) {
                inc(&st->n_dropped); /* cancelled by the teardown */
            } else {
                fail(st, r);
            }
            break;
        }
        if (r == KNIT_STAGE_SKIP) {
            dec(&st->n_in_flight);
            inc(&st->n_skipped);
        } else if (!st->out) {
            dec(&st->n_in_flight);
            inc(&st->n_out); /* the last stage: done with it */
        } else if (!send_on(st, w)) {
            break;
        }
    }
    (void)knit_scope_exit(&s);
    task_end(st);
    return 0;
}

/* ---- running ----------------------------------------------------------- */

/* Sizes above this are refused as -ENOMEM before malloc sees them. */
#define MAX_BYTES ((size_t)PTRDIFF_MAX)

/* @n rounded up to ALIGN; MAX_BYTES (too large) when that would pass it. */
static size_t aligned(size_t n)
{
    if (n > MAX_BYTES - ALIGN)
        return MAX_BYTES;
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

/* Creates @st's input channel and its workers' buffers. */
static int prepare(struct stage *st)
{
    size_t in = st->in_size ? aligned(st->in_size) : 0;
    size_t out = st->out_size ? aligned(st->out_size) : 0;
    size_t each = in + out; /* each <= 2 * MAX_BYTES: no wrap */
    size_t head = aligned(st->workers * sizeof(struct pworker));
    if (each > MAX_BYTES || head >= MAX_BYTES ||
        (each && st->workers > (MAX_BYTES - head) / each) ||
        (st->in_size && st->capacity > MAX_BYTES / st->in_size))
        return -ENOMEM;
    unsigned char *b = calloc(1, head + st->workers * each);
    if (!b)
        return -ENOMEM;
    st->ws = (struct pworker *)(void *)b;
    b += head;
    for (unsigned i = 0; i < st->workers; i++) {
        st->ws[i].st = st;
        if (in) {
            st->ws[i].in = b;
            b += in;
        }
        if (out) {
            st->ws[i].out = b;
            b += out;
        }
    }
    if (st->in_size && !(st->in = knit_chan_new(st->in_size, st->capacity)))
        return -ENOMEM;
    return 0;
}

/* Spawns @st's tasks; on failure the caller cancels the rest. */
static int spawn_stage(knit_pipeline *p, struct stage *st)
{
    for (unsigned i = 0; i < st->workers; i++) {
        if (st->out)
            knit_chan_sender_add(st->out);
        knit_waitgroup_add(&p->running, 1);
        int err = knit_group_spawn(
            &p->group, st->source ? source_main : stage_main, &st->ws[i]);
        if (err < 0) {
            task_end(st);
            return err;
        }
    }
    return 0;
}

static int run(knit_pipeline *p)
{
    for (size_t i = 0; i < p->n; i++) {
        int err = prepare(p->stages[i]);
        if (err < 0)
            return err;
    }
    for (size_t i = 0; i + 1 < p->n; i++)
        p->stages[i]->out = p->stages[i + 1]->in;
    /* The last stage's token is the root; each other is its successor's
     * child (see the top). */
    for (size_t i = p->n; i-- > 0;)
        knit_token_init(&p->stages[i]->stop,
                        i + 1 < p->n ? &p->stages[i + 1]->stop : NULL);
    knit_token *root = &p->stages[p->n - 1]->stop;
    knit_group_init(&p->group, 0);
    knit_waitgroup_init(&p->running);
    knit__pspin_lock(&p->lk);
    p->state = RUNNING;
    knit__pspin_unlock(&p->lk);
    int err = 0;
    /* Downstream first, so that each stage is waiting for items by the
     * time the one before it sends. */
    for (size_t i = p->n; i-- > 0 && err == 0;)
        err = spawn_stage(p, p->stages[i]);
    if (err == 0)
        err = knit_waitgroup_wait(&p->running);
    if (err < 0)
        knit_token_cancel(root); /* spawn failed, or the caller's scope */
    (void)knit_group_wait(&p->group);
    knit__pspin_lock(&p->lk);
    p->state = DONE;
    knit__pspin_unlock(&p->lk);
    for (size_t i = 0; i < p->n; i++) {
        if (p->stages[i]->in)
            knit_chan_close(p->stages[i]->in); /* already, unless torn */
        knit_token_destroy(&p->stages[i]->stop);
    }
    return err < 0 ? err : atomic_load(&p->err);
}

int knit_pipeline_run(knit_pipeline *p)
{
    if (!p)
        return -EINVAL;
    if (p->build_err)
        return p->build_err;
    if (p->n < 2 || p->stages[p->n - 1]->out_size != 0)
        return p->state != BUILDING ? -EALREADY : -EINVAL;
    knit__pspin_lock(&p->lk);
    enum state state = p->state;
    bool cancelled = p->cancelled;
    if (state == BUILDING)
        p->state = DONE;
    knit__pspin_unlock(&p->lk);
    if (state != BUILDING)
        return -EALREADY;
    if (cancelled)
        return -ECANCELED;
    return run(p);
}

void knit_pipeline_cancel(knit_pipeline *p)
{
    if (!p)
        return;
    /* Under the lock: run switches to DONE under it before it destroys
     * the tokens. knit_token_cancel never parks. */
    knit__pspin_lock(&p->lk);
    if (p->state == BUILDING) {
        p->cancelled = true;
    } else if (p->state == RUNNING) {
        first_err(p, -ECANCELED);
        knit_token_cancel(&p->stages[p->n - 1]->stop);
    }
    knit__pspin_unlock(&p->lk);
}

size_t knit_pipeline_len(const knit_pipeline *p)
{
    return p ? p->n : 0;
}

int knit_pipeline_stats(const knit_pipeline *p, size_t i, knit_stage_stats *out)
{
    if (!p || !out || i >= p->n)
        return -EINVAL;
    const struct stage *st = p->stages[i];
    *out = (knit_stage_stats){
        .name = st->name,
        .workers = st->workers,
        .capacity = st->capacity,
        .in = get(&st->n_in),
        .out = get(&st->n_out),
        .skipped = get(&st->n_skipped),
        .errors = get(&st->n_errors),
        .dropped = get(&st->n_dropped),
        .in_flight = get(&st->n_in_flight),
        .max_in_flight = get(&st->n_max_in_flight),
        .queued = st->in ? knit_chan_len(st->in) : 0,
        .high_water = st->in ? knit_chan_high_water(st->in) : 0,
    };
    return 0;
}

void knit_pipeline_free(knit_pipeline *p)
{
    if (!p)
        return;
    knit__pspin_lock(&p->lk);
    enum state state = p->state;
    knit__pspin_unlock(&p->lk);
    if (state == RUNNING)
        knit__pattern_misuse("knit_pipeline_free of a running pipeline");
    for (size_t i = 0; i < p->n; i++) {
        struct stage *st = p->stages[i];
        if (st->in)
            knit_chan_unref(st->in);
        free(st->ws);
        free(st);
    }
    free(p->stages);
    free(p);
}
