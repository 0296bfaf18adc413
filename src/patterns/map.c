// SPDX-License-Identifier: MIT
/*
 * Bounded concurrency (knit/patterns/map.h): knit_map_concurrent, its
 * channel variant and the streaming map. First the map object and its
 * worker task, then the collecting forms, then the stream.
 *
 * A map runs W = min(limit, items) worker tasks in a knit_group owned by
 * the task that started it. Each worker takes the next item from the
 * source (an index counter over an array, or knit_chan_recv on the input
 * channel), calls fn on it and hands the result on, then takes the next.
 * So at most W calls are in progress and the limit holds by construction,
 * with nothing to count. Everything a worker does runs in a scope linked
 * to the map's stop token: cancelling the token (fail fast, knit_map_free,
 * the caller cancelled) makes the calls in progress see -ECANCELED and
 * the workers stop taking items.
 *
 * Results are handed on in one of two ways:
 *  - direct (knit_map_concurrent*): fn writes into the caller's results[i]
 *    and the worker stores the status; the caller waits on a waitgroup.
 *  - streamed (knit_map_start*): fn writes into the worker's own buffer;
 *    the worker sends itself on the done channel (so the channel holds
 *    finished items in completion order) and waits on its notify until
 *    knit_map_next has copied the result out. An undelivered result keeps
 *    its worker, so items in progress plus results not taken never exceed
 *    W, the bound tokio's buffered(n) and buffer_unordered(n) keep. In
 *    input order, the items started and not delivered are the indices
 *    [head, head + W), so a ring of W entries reorders them.
 *
 * Several workers. The workers may run on different workers at once: the
 * next array index is taken with an atomic increment; a channel source
 * is read under the `recv_lock` mutex, so that indices follow the channel's
 * order (the ordered stream relies on it); the failure count and the
 * first failure are atomics. Everything else a worker writes reaches the
 * owner through a knit primitive (done channel, waitgroup).
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

/* One worker task and what it holds. */
struct worker {
    struct knit_map *m;    /* the map it works for */
    knit_notify taken;     /* stream: knit_map_next took its result */
    size_t index;          /* stream: the item it finished last */
    int status;            /* stream: fn's return value for that item */
    unsigned char *item;   /* channel source: the item received */
    unsigned char *result; /* stream: fn's result buffer, or NULL */
};

struct knit_map {
    knit_group group;        /* the workers; used by owner only */
    knit_token stop;         /* cancelled to stop every worker */
    knit_waitgroup running;  /* direct: workers not yet ended */
    knit_task *owner;        /* the task that started the map */
    knit_map_fn fn;          /* the work */
    void *ctx;               /* its context */
    unsigned char *items;    /* array source, or NULL (NULL items) */
    size_t n;                /* array source: items in it */
    size_t item_size;        /* bytes per item */
    knit_chan *in;           /* channel source (our reference), or NULL */
    knit_mutex recv_lock;    /* channel source: one receiver at a time */
    atomic_size_t next;      /* items taken so far: the next index */
    unsigned char *results;  /* direct: the caller's results, or NULL */
    size_t result_size;      /* bytes per result */
    int *status;             /* direct: the caller's status, or NULL */
    knit_chan *done;         /* stream: finished workers, in order */
    struct worker **ring;    /* stream, ordered: workers by index % W */
    size_t head;             /* stream, ordered: next index to deliver */
    size_t nworkers;         /* W */
    atomic_size_t failed;    /* direct: items whose fn failed */
    atomic_int err;          /* direct, fail fast: the first failure */
    bool ordered;            /* stream: deliver in input order */
    bool fail_fast;          /* the first failure stops the map */
    bool stream;             /* streamed rather than direct */
    bool ended;              /* stream: -EPIPE from now on */
    struct worker workers[]; /* nworkers of them; buffers follow */
};

/* ---- the map and its workers ------------------------------------------ */

/* Where a map's items come from. */
struct source {
    void *items;      /* array, or NULL */
    size_t n;         /* array length */
    size_t item_size; /* bytes per item */
    knit_chan *in;    /* channel, or NULL for an array */
};

#define ALIGN _Alignof(max_align_t)
/* Sizes above this are refused as -ENOMEM before malloc sees them. */
#define MAX_BYTES ((size_t)PTRDIFF_MAX)

/* @n rounded up to ALIGN, or 0 when that would pass MAX_BYTES. */
static size_t aligned(size_t n)
{
    if (n > MAX_BYTES - ALIGN)
        return 0;
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

/* *@total += @count * @size; false when the sum would pass MAX_BYTES. */
static bool add_bytes(size_t *total, size_t count, size_t size)
{
    if (size && count > (MAX_BYTES - *total) / size)
        return false;
    *total += count * size;
    return true;
}

static int check_opts(const knit_map_opts *o, knit_map_fn fn)
{
    return !o || o->limit == 0 || !fn ? -EINVAL : 0;
}

/*
 * Allocates a map for @src with its workers and their buffers: an item
 * buffer each for a channel source, a result buffer each and the done
 * channel when @stream, a ring when @stream and ordered. Starts nothing.
 */
static int create(struct knit_map **mp, const knit_map_opts *o,
                  const struct source *src, size_t result_size, bool stream,
                  knit_map_fn fn, void *ctx)
{
    size_t w = src->in || o->limit < src->n ? o->limit : src->n;
    size_t item_buf = src->in ? aligned(src->item_size) : 0;
    size_t res_buf = stream && result_size ? aligned(result_size) : 0;
    if ((src->in && !item_buf) || (stream && result_size && !res_buf))
        return -ENOMEM;
    size_t head = sizeof(struct knit_map);
    size_t total = 0;
    if (!add_bytes(&head, w, sizeof(struct worker)) ||
        !(total = aligned(head)) || !add_bytes(&total, w, item_buf) ||
        !add_bytes(&total, w, res_buf) ||
        !add_bytes(&total, stream && o->ordered ? w : 0,
                   sizeof(struct worker *)))
        return -ENOMEM;
    struct knit_map *m = calloc(1, total);
    if (!m)
        return -ENOMEM;
    if (stream &&
        !(m->done = knit_chan_new(sizeof(struct worker *), w ? w : 1))) {
        free(m);
        return -ENOMEM;
    }
    /* calloc made the token a root not cancelled, the waitgroup 0 and
     * every notify empty. */
    unsigned char *p = (unsigned char *)m + aligned(head);
    for (size_t i = 0; i < w; i++) {
        struct worker *wk = &m->workers[i];
        wk->m = m;
        if (item_buf) {
            wk->item = p;
            p += item_buf;
        }
        if (res_buf) {
            wk->result = p;
            p += res_buf;
        }
    }
    if (stream && o->ordered)
        m->ring = (struct worker **)(void *)p;
    knit_group_init(&m->group, 0);
    m->owner = knit_current();
    m->fn = fn;
    m->ctx = ctx;
    m->items = src->items;
    m->n = src->n;
    m->item_size = src->item_size;
    m->in = src->in ? knit_chan_ref(src->in) : NULL;
    m->result_size = result_size;
    m->nworkers = w;
    m->ordered = o->ordered;
    m->fail_fast = o->fail_fast;
    m->stream = stream;
    *mp = m;
    return 0;
}

/* Takes the next item: 0; -EPIPE when there is none left; -ECANCELED
 * when the map stopped while the worker waited for one. */
static int take(struct knit_map *m, struct worker *w, size_t *index,
                void **item)
{
    if (m->in) {
        /* The index is taken with the item, under the mutex: a receiver
         * on another worker cannot number a later item first. */
        int err = knit_mutex_lock(&m->recv_lock);
        if (err < 0)
            return err;
        size_t i = 0;
        err = knit_chan_recv(m->in, w->item);
        if (err == 0)
            i = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed);
        knit_mutex_unlock(&m->recv_lock);
        *index = i;
        *item = w->item;
        return err;
    }
    size_t i = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed);
    if (i >= m->n)
        return -EPIPE; /* next may pass n, by one per worker at most */
    *item = m->items ? m->items + i * m->item_size : NULL;
    *index = i;
    return 0;
}

static void *result_slot(struct knit_map *m, struct worker *w, size_t index)
{
    if (m->stream) {
        if (w->result)
            memset(w->result, 0, m->result_size);
        return w->result;
    }
    return m->results ? m->results + index * m->result_size : NULL;
}

/* Hands the result of item @index on; < 0 when the worker must stop. */
static int hand_on(struct knit_map *m, struct worker *w, size_t index, int r)
{
    bool first_failure = r < 0 && m->fail_fast;
    if (r < 0)
        atomic_fetch_add_explicit(&m->failed, 1, memory_order_relaxed);
    if (!m->stream) {
        if (!first_failure)
            return 0;
        int none = 0; /* two may fail at once on several workers */
        (void)atomic_compare_exchange_strong(&m->err, &none, r);
        knit_token_cancel(&m->stop); /* the siblings see -ECANCELED */
        return -ECANCELED;
    }
    w->index = index;
    w->status = r;
    /* Never waits: each worker has at most one entry in the channel, and
     * its capacity is W. Fails only when the map stopped meanwhile. */
    int err = knit_chan_send(m->done, &w);
    if (err < 0)
        return err;
    if (first_failure) {
        /* Sent first, so knit_map_next hands it back after the results
         * that finished before it; no worker sends after the cancel. */
        knit_token_cancel(&m->stop);
        return -ECANCELED;
    }
    return knit_notify_wait(&w->taken);
}

static int worker_main(void *arg)
{
    struct worker *w = arg;
    struct knit_map *m = w->m;
    knit_scope s;
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_link_token(&s, &m->stop);
    while (!knit_token_is_cancelled(&m->stop)) {
        size_t index;
        void *item;
        if (take(m, w, &index, &item) < 0)
            break;
        int r = m->fn(m->ctx, index, item, result_slot(m, w, index));
        if (m->status)
            m->status[index] = r;
        /* Stopped while fn ran: nobody wants the result any more, and a
         * failure now is most likely the stop's own -ECANCELED. */
        if (knit_token_is_cancelled(&m->stop))
            break;
        if (hand_on(m, w, index, r) < 0)
            break;
    }
    (void)knit_scope_exit(&s);
    if (m->stream)
        knit_chan_sender_done(m->done); /* the last one closes it */
    else
        knit_waitgroup_done(&m->running);
    return 0;
}

/* Starts every worker; on failure the caller stops and reaps the map. */
static int spawn_workers(struct knit_map *m)
{
    int err = 0;
    /* Hold the done channel open while spawning: with no worker at all
     * (no item), releasing it closes the channel at once. */
    if (m->stream)
        knit_chan_sender_add(m->done);
    for (size_t i = 0; i < m->nworkers && !err; i++) {
        if (m->stream)
            knit_chan_sender_add(m->done);
        else
            knit_waitgroup_add(&m->running, 1);
        err = knit_group_spawn(&m->group, worker_main, &m->workers[i]);
        if (err < 0) {
            if (m->stream)
                knit_chan_sender_done(m->done);
            else
                knit_waitgroup_done(&m->running);
        }
    }
    if (m->stream)
        knit_chan_sender_done(m->done);
    return err;
}

/* Stops the workers and waits until every one has ended. */
static void stop(struct knit_map *m)
{
    knit_token_cancel(&m->stop);
    /* Shielded inside when the caller's scope has fired: no worker
     * outlives the map. The workers return 0, so nothing to report. */
    (void)knit_group_wait(&m->group);
}

static void destroy(struct knit_map *m)
{
    if (m->done)
        knit_chan_unref(m->done);
    if (m->in)
        knit_chan_unref(m->in);
    free(m);
}

/* ---- the collecting forms ---------------------------------------------- */

static ssize_t run_direct(struct knit_map *m)
{
    /* Still 0, so this only reports a fired scope: then nothing starts
     * (on several workers a worker would otherwise start an item before
     * the stop below reaches it). */
    int err = knit_waitgroup_wait(&m->running);
    if (err == 0)
        err = spawn_workers(m);
    if (err == 0)
        err = knit_waitgroup_wait(&m->running);
    stop(m);
    int first = atomic_load(&m->err);
    ssize_t r = err < 0     ? err
                : first < 0 ? first
                            : (ssize_t)atomic_load(&m->failed);
    destroy(m);
    return r;
}

ssize_t knit_map_concurrent(const knit_map_opts *o, void *items, size_t n,
                            size_t item_size, void *results, size_t result_size,
                            int *status, knit_map_fn fn, void *ctx)
{
    int err = check_opts(o, fn);
    if (err < 0)
        return err;
    if (status)
        for (size_t i = 0; i < n; i++)
            status[i] = -ECANCELED; /* until the item has run */
    if (n == 0)
        return 0;
    struct source src = {.items = items, .n = n, .item_size = item_size};
    struct knit_map *m;
    if ((err = create(&m, o, &src, 0, false, fn, ctx)) < 0)
        return err;
    m->results = results;
    m->result_size = result_size;
    m->status = status;
    return run_direct(m);
}

ssize_t knit_map_concurrent_chan(const knit_map_opts *o, knit_chan *in,
                                 size_t item_size, knit_map_fn fn, void *ctx)
{
    int err = check_opts(o, fn);
    if (err < 0)
        return err;
    if (!in || item_size == 0)
        return -EINVAL;
    struct source src = {.item_size = item_size, .in = in};
    struct knit_map *m;
    if ((err = create(&m, o, &src, 0, false, fn, ctx)) < 0)
        return err;
    return run_direct(m);
}

/* ---- the stream -------------------------------------------------------- */

static int start(knit_map **mp, const knit_map_opts *o,
                 const struct source *src, size_t result_size, knit_map_fn fn,
                 void *ctx)
{
    struct knit_map *m;
    int err = create(&m, o, src, result_size, true, fn, ctx);
    if (err < 0)
        return err;
    if ((err = spawn_workers(m)) < 0) {
        stop(m);
        destroy(m);
        return err;
    }
    *mp = m;
    return 0;
}

int knit_map_start(knit_map **mp, const knit_map_opts *o, void *items, size_t n,
                   size_t item_size, size_t result_size, knit_map_fn fn,
                   void *ctx)
{
    int err = check_opts(o, fn);
    if (err < 0)
        return err;
    if (!mp)
        return -EINVAL;
    struct source src = {.items = items, .n = n, .item_size = item_size};
    return start(mp, o, &src, result_size, fn, ctx);
}

int knit_map_start_chan(knit_map **mp, const knit_map_opts *o, knit_chan *in,
                        size_t item_size, size_t result_size, knit_map_fn fn,
                        void *ctx)
{
    int err = check_opts(o, fn);
    if (err < 0)
        return err;
    if (!mp || !in || item_size == 0)
        return -EINVAL;
    struct source src = {.item_size = item_size, .in = in};
    return start(mp, o, &src, result_size, fn, ctx);
}

static void check_owner(const struct knit_map *m, const char *what)
{
    if (knit_current() != m->owner)
        knit__pattern_misuse(what);
}

/* Copies @w's result out and lets @w take its next item. */
static int deliver(struct knit_map *m, struct worker *w, size_t *index,
                   int *status, void *result)
{
    if (index)
        *index = w->index;
    if (status)
        *status = w->status;
    if (result && w->result)
        memcpy(result, w->result, m->result_size);
    knit_notify_one(&w->taken);
    return 0;
}

int knit_map_next(knit_map *m, size_t *index, int *status, void *result)
{
    if (!m)
        return -EINVAL;
    check_owner(m, "knit_map_next called by a task that did not start "
                   "the map");
    for (;;) {
        if (m->ended)
            return -EPIPE;
        struct worker *w;
        if (m->ordered && m->nworkers &&
            (w = m->ring[m->head % m->nworkers]) != NULL) {
            m->ring[m->head % m->nworkers] = NULL;
            m->head++;
            return deliver(m, w, index, status, result);
        }
        int err = knit_chan_recv(m->done, &w);
        if (err == -EPIPE) {
            m->ended = true; /* every worker has ended */
            return -EPIPE;
        }
        if (err < 0)
            return err;
        if (w->status < 0 && m->fail_fast) {
            m->ended = true; /* the rest were cancelled */
            return deliver(m, w, index, status, result);
        }
        if (!m->ordered)
            return deliver(m, w, index, status, result);
        /* Started and undelivered items lie in [head, head + W). */
        if (w->index - m->head >= m->nworkers)
            knit__pattern_misuse(
                "knit_map_next: an ordered result fell outside the "
                "window (internal error)");
        m->ring[w->index % m->nworkers] = w;
    }
}

void knit_map_free(knit_map *m)
{
    if (!m)
        return;
    check_owner(m, "knit_map_free called by a task that did not start the "
                   "map");
    stop(m);
    destroy(m);
}
