// SPDX-License-Identifier: MIT
/*
 * Bounded and unbounded MPMC channels (knit/chan.h).
 *
 * A ring buffer plus two FIFO wait queues of knit_waiters. Every hand-off
 * happens in the context of the task that makes it possible: a sender
 * finding a waiting receiver copies straight into the receiver's buffer
 * and makes it runnable next; a receiver that frees a slot moves the first
 * waiting sender's element into the buffer. A woken task therefore never
 * has to retry, and a cancelled waiter has simply been unlinked before
 * anything touched it: no value is lost or duplicated.
 *
 * Threads: every public operation runs under the runtime lock (core/
 * sched.h; a no-op with one worker), so tasks of any worker may share a
 * channel; a waiter parks with the lock released, and whoever claims it
 * readies it (through the waiter's own worker when that is another). The
 * knit__chan_* operations of chan_impl.h, knit__chan_alloc aside, expect
 * the lock held. Plain threads delegate: the _blocking
 * variants post a request to the channel's worker, which runs the
 * operation in a proxy task and signals the thread.
 *
 * Divisions: buffer; send; recv; close and counting; select hooks;
 * the _blocking delegation.
 */
#include "core/alloc.h"
#include "chan/chan_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/compiler.h"
#include "core/remote.h"
#include "core/sched.h"

/* Initial and minimum ring size of an unbounded channel. */
#define UNBOUNDED_MIN 16

/* ---- buffer ---------------------------------------------------------- */

/* Copies one element; constant sizes compile to plain moves. */
static inline void copy_elem(void *dst, const void *src, size_t n)
{
    switch (n) {
    case 4:
        memcpy(dst, src, 4);
        break;
    case 8:
        memcpy(dst, src, 8);
        break;
    case 16:
        memcpy(dst, src, 16);
        break;
    default:
        memcpy(dst, src, n);
        break;
    }
}

static inline char *slot(const knit_chan *c, size_t i)
{
    size_t idx = c->head + i;
    if (idx >= c->bufcap)
        idx -= c->bufcap;
    return c->buf + idx * c->elem_size;
}

/* Grows an unbounded ring; false when out of memory. Cold and out of line:
 * inlined, it made every send save six registers. */
static KNIT_NOINLINE __attribute__((cold)) bool grow(knit_chan *c)
{
    size_t ncap = c->bufcap * 2;
    char *nbuf = knit__malloc(ncap * c->elem_size);
    if (!nbuf)
        return false;
    for (size_t i = 0; i < c->len; i++)
        memcpy(nbuf + i * c->elem_size, slot(c, i), c->elem_size);
    free(c->buf);
    c->buf = nbuf;
    c->bufcap = ncap;
    c->head = 0;
    return true;
}

/* Appends @elem; the caller checked there is room (bounded). */
static inline int push(knit_chan *c, const void *elem)
{
    if (c->len == c->bufcap && (c->cap != 0 || !grow(c)))
        return -ENOMEM;
    copy_elem(slot(c, c->len), elem, c->elem_size);
    c->len++;
    if (c->len > c->high_water)
        c->high_water = c->len;
    return 0;
}

static inline void pop(knit_chan *c, void *elem)
{
    copy_elem(elem, slot(c, 0), c->elem_size);
    c->head = c->head + 1 == c->bufcap ? 0 : c->head + 1;
    c->len--;
    if (c->len == 0 && c->cap == 0 && c->bufcap > 4 * UNBOUNDED_MIN) {
        /* Drained after a burst: give the memory back. */
        char *small = knit__malloc(UNBOUNDED_MIN * c->elem_size);
        if (small) {
            free(c->buf);
            c->buf = small;
            c->bufcap = UNBOUNDED_MIN;
        }
        c->head = 0;
    }
}

static inline bool has_room(const knit_chan *c)
{
    return c->cap == 0 || c->len < c->cap;
}

knit_chan *knit__chan_alloc(size_t elem_size, size_t capacity)
{
    if (elem_size == 0)
        return NULL;
    size_t bufcap = capacity ? capacity : UNBOUNDED_MIN;
    if (bufcap > (SIZE_MAX - sizeof(knit_chan)) / elem_size)
        return NULL;
    /* A bounded channel's ring never moves: it lives in the same block
     * (one allocation, and 24-32 bytes less for a small one). An
     * unbounded ring grows and shrinks on its own. */
    size_t inline_bytes = capacity ? bufcap * elem_size : 0;
    knit_chan *c = knit__calloc(1, sizeof(*c) + inline_bytes);
    if (!c)
        return NULL;
    c->elem_size = elem_size;
    c->cap = capacity;
    c->bufcap = bufcap;
    c->buf = capacity ? (char *)(c + 1) : knit__malloc(bufcap * elem_size);
    if (!c->buf) {
        free(c);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    knit_list_init(&c->recvq);
    knit_list_init(&c->sendq);
    c->owner = knit__worker();
    return c;
}

knit_chan *knit_chan_new(size_t elem_size, size_t capacity)
{
    return knit__chan_alloc(elem_size, capacity);
}

knit_chan *knit_chan_ref(knit_chan *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void knit_chan_unref(knit_chan *c)
{
    /* acq_rel: the freeing thread sees every other holder's writes. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* A select of another worker may still be unlinking a lost case. */
    if (KNIT_LOCKED(!knit_list_is_empty(&c->recvq) ||
                    !knit_list_is_empty(&c->sendq)))
        knit__panic("knit_chan_unref freed a channel that tasks wait on");
    if (c->cap == 0) /* a bounded ring is part of the block */
        free(c->buf);
    free(c);
}

/* ---- send ------------------------------------------------------------ */

/* Completes a send without waiting: 0, -EAGAIN (full), -EPIPE, -ENOMEM.
 * Inline in knit_chan_send, out of line for the others. */
static inline int try_send(knit_chan *c, const void *elem)
{
    if (knit_unlikely(c->closed))
        return -EPIPE;
    if (knit_unlikely(!knit_list_is_empty(&c->recvq))) {
        struct knit_waiter *w = knit__wq_claim(&c->recvq);
        if (w) {
            copy_elem(w->data, elem, c->elem_size);
            w->result = 0;
            /* knit__wake, but readied next; a receiver of another worker
             * is posted to its own (knit__ready_next). */
            w->task->waiter = NULL;
            knit__ready_next(w->task);
            return 0;
        }
    }
    if (!has_room(c))
        return -EAGAIN;
    return push(c, elem);
}

int knit__chan_try_send(knit_chan *c, const void *elem)
{
    return try_send(c, elem);
}

int knit_chan_try_send(knit_chan *c, const void *elem)
{
    return KNIT_LOCKED(try_send(c, elem));
}

static void chan_waiter_cancel(struct knit_waiter *w)
{
    knit_list_remove(&w->link);
}

/* Parks the running task @t on @c's senders (chan_send found it full).
 * Out of line: the fast path then ends in a tail call. */
static KNIT_NOINLINE int send_park(struct knit_task *t, knit_chan *c,
                                   const void *elem)
{
    struct knit_waiter w;
    knit__waiter_prep(&w, t, "chan send", c, chan_waiter_cancel);
    w.data = (void *)elem;
    knit_list_push_back(&c->sendq, &w.link);
    /* The caller checked the scope, under the lock held since. */
    return knit__wait_checked(&w);
}

/* chan_send when the entry check has something to say (budget spent, a
 * scope entered or fired). */
static KNIT_NOINLINE int send_checked(struct knit_worker *wk,
                                      struct knit_task *t, knit_chan *c,
                                      const void *elem)
{
    int err = knit__coop_check(wk, t);
    if (knit_unlikely(err))
        return err;
    err = try_send(c, elem);
    if (err != -EAGAIN)
        return err;
    return send_park(t, c, elem);
}

static inline int chan_send(struct knit_worker *wk, knit_chan *c,
                            const void *elem)
{
    struct knit_task *t = wk ? wk->current : NULL;
    if (knit_unlikely(!t))
        knit__panic("knit_chan_send called outside a task");
    if (knit_unlikely(!knit__coop_pass(wk, t)))
        return send_checked(wk, t, c, elem);
    int err = try_send(c, elem);
    if (err != -EAGAIN)
        return err;
    return send_park(t, c, elem);
}

/* chan_send under the runtime lock (several workers, or no runtime). */
static KNIT_NOINLINE int send_locked(struct knit_worker *wk, knit_chan *c,
                                     const void *elem)
{
    knit__lock(wk);
    int err = chan_send(wk, c, elem);
    knit__unlock(wk);
    return err;
}

int knit_chan_send(knit_chan *c, const void *elem)
{
    struct knit_worker *wk = knit__worker();
    /* One worker: no lock to take, and nothing to do after chan_send, so
     * its calls can be tail calls and its fast path saves no register. */
    if (knit_likely(wk && !wk->shared))
        return chan_send(wk, c, elem);
    return send_locked(wk, c, elem);
}

void knit__chan_enqueue_send(knit_chan *c, struct knit_waiter *w)
{
    knit_list_push_back(&c->sendq, &w->link);
}

/* ---- recv ------------------------------------------------------------ */

/* Moves the first claimable waiting sender's element into the buffer. */
static void refill_from_sender(knit_chan *c)
{
    struct knit_waiter *s = knit__wq_claim(&c->sendq);
    if (!s)
        return;
    copy_elem(slot(c, c->len), s->data, c->elem_size);
    c->len++;
    knit__wake(s, 0);
}

/* Completes a receive without waiting: 0, -EAGAIN (empty), -EPIPE.
 * Inline in knit_chan_recv, out of line for the others. */
static inline int try_recv(knit_chan *c, void *elem)
{
    if (knit_likely(c->len > 0)) {
        pop(c, elem);
        if (knit_unlikely(!knit_list_is_empty(&c->sendq)))
            refill_from_sender(c);
        return 0;
    }
    if (!knit_list_is_empty(&c->sendq)) {
        /* Only reachable for a select send case on an empty buffer. */
        struct knit_waiter *s = knit__wq_claim(&c->sendq);
        if (s) {
            copy_elem(elem, s->data, c->elem_size);
            knit__wake(s, 0);
            return 0;
        }
    }
    return c->closed ? -EPIPE : -EAGAIN;
}

int knit__chan_try_recv(knit_chan *c, void *elem)
{
    return try_recv(c, elem);
}

int knit_chan_try_recv(knit_chan *c, void *elem)
{
    return KNIT_LOCKED(try_recv(c, elem));
}

/* Parks the running task @t on @c's receivers (as send_park). */
static KNIT_NOINLINE int recv_park(struct knit_task *t, knit_chan *c,
                                   void *elem)
{
    struct knit_waiter w;
    knit__waiter_prep(&w, t, "chan recv", c, chan_waiter_cancel);
    w.data = elem;
    knit_list_push_back(&c->recvq, &w.link);
    /* The caller checked the scope, under the lock held since. */
    return knit__wait_checked(&w);
}

/* chan_recv when the entry check has something to say (as send_checked). */
static KNIT_NOINLINE int recv_checked(struct knit_worker *wk,
                                      struct knit_task *t, knit_chan *c,
                                      void *elem)
{
    int err = knit__coop_check(wk, t);
    if (knit_unlikely(err))
        return err;
    err = try_recv(c, elem);
    if (err != -EAGAIN)
        return err;
    return recv_park(t, c, elem);
}

static inline int chan_recv(struct knit_worker *wk, knit_chan *c, void *elem)
{
    struct knit_task *t = wk ? wk->current : NULL;
    if (knit_unlikely(!t))
        knit__panic("knit_chan_recv called outside a task");
    if (knit_unlikely(!knit__coop_pass(wk, t)))
        return recv_checked(wk, t, c, elem);
    int err = try_recv(c, elem);
    if (err != -EAGAIN)
        return err;
    return recv_park(t, c, elem);
}

int knit__chan_recv(knit_chan *c, void *elem)
{
    return chan_recv(knit__worker(), c, elem);
}

/* chan_recv under the runtime lock (several workers, or no runtime). */
static KNIT_NOINLINE int recv_locked(struct knit_worker *wk, knit_chan *c,
                                     void *elem)
{
    knit__lock(wk);
    int err = chan_recv(wk, c, elem);
    knit__unlock(wk);
    return err;
}

int knit_chan_recv(knit_chan *c, void *elem)
{
    struct knit_worker *wk = knit__worker();
    if (knit_likely(wk && !wk->shared)) /* as in knit_chan_send */
        return chan_recv(wk, c, elem);
    return recv_locked(wk, c, elem);
}

void knit__chan_enqueue_recv(knit_chan *c, struct knit_waiter *w)
{
    knit_list_push_back(&c->recvq, &w->link);
}

/* ---- close, counting, queries ------------------------------------------ */

void knit__chan_close(knit_chan *c)
{
    if (c->closed)
        return;
    c->closed = true;
    /* Receivers wait only on an empty buffer, senders only on a full one:
     * the senders' elements were never sent, and they are told so. */
    knit__wq_wake_all(&c->recvq, -EPIPE);
    knit__wq_wake_all(&c->sendq, -EPIPE);
}

void knit_chan_close(knit_chan *c)
{
    KNIT_LOCKED_VOID(knit__chan_close(c));
}

bool knit_chan_is_closed(const knit_chan *c)
{
    return KNIT_LOCKED(c->closed);
}

size_t knit_chan_len(const knit_chan *c)
{
    return KNIT_LOCKED(c->len);
}

size_t knit_chan_capacity(const knit_chan *c)
{
    return c->cap; /* fixed at creation: no lock */
}

size_t knit_chan_high_water(const knit_chan *c)
{
    return KNIT_LOCKED(c->high_water);
}

void knit_chan_sender_add(knit_chan *c)
{
    KNIT_LOCKED_VOID(c->senders++);
}

static void sender_done(knit_chan *c)
{
    if (c->senders <= 0)
        knit__panic("knit_chan_sender_done without a matching sender_add");
    if (--c->senders == 0)
        knit__chan_close(c);
}

void knit_chan_sender_done(knit_chan *c)
{
    KNIT_LOCKED_VOID(sender_done(c));
}

/* ---- _blocking: delegation to the channel's worker ----------------------- */

struct blocking_op {
    struct knit_remote remote; /* posted to the channel's worker */
    knit_chan *c;
    void *elem; /* the caller's element buffer */
    bool send;  /* send or recv */
    int result;
    bool done; /* under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void finish_op(struct blocking_op *op, int result)
{
    pthread_mutex_lock(&op->lock);
    op->result = result;
    op->done = true;
    pthread_cond_signal(&op->cond);
    pthread_mutex_unlock(&op->lock);
}

static int proxy_task(void *arg)
{
    struct blocking_op *op = arg;
    int r = op->send ? knit_chan_send(op->c, op->elem)
                     : knit_chan_recv(op->c, op->elem);
    finish_op(op, r);
    return 0;
}

static void start_proxy(struct knit_remote *r)
{
    struct blocking_op *op = knit_container_of(r, struct blocking_op, remote);
    knit_task_opts o = {.name = op->send ? "send_blocking" : "recv_blocking"};
    knit_task *t = knit__spawn(op->c->owner, &o, proxy_task, op);
    if (!t) {
        finish_op(op, -ENOMEM);
        return;
    }
    knit_detach(t);
}

static int blocking(knit_chan *c, void *elem, bool send)
{
    if (knit__worker())
        knit__panic("knit_chan_%s_blocking called from a knit worker; use "
                    "knit_chan_%s in tasks",
                    send ? "send" : "recv", send ? "send" : "recv");
    if (!c->owner)
        return -ESRCH;
    struct blocking_op op = {.c = c, .elem = elem, .send = send};
    pthread_mutex_init(&op.lock, NULL);
    pthread_cond_init(&op.cond, NULL);
    knit__remote_post(c->owner, &op.remote, start_proxy);
    pthread_mutex_lock(&op.lock);
    while (!op.done)
        pthread_cond_wait(&op.cond, &op.lock);
    pthread_mutex_unlock(&op.lock);
    pthread_cond_destroy(&op.cond);
    pthread_mutex_destroy(&op.lock);
    return op.result;
}

int knit_chan_send_blocking(knit_chan *c, const void *elem)
{
    return blocking(c, (void *)elem, true);
}

int knit_chan_recv_blocking(knit_chan *c, void *elem)
{
    return blocking(c, elem, false);
}
