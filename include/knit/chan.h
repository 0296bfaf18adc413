/* SPDX-License-Identifier: MIT */
/*
 * knit/chan.h - channels: bounded and unbounded MPMC queues, one-shot
 * replies, broadcast and watch.
 *
 * The rule every channel keeps: a message is never lost and never
 * duplicated, whatever is cancelled, timed out or closed. A send either
 * delivers its element (into the buffer or straight to a receiver) and
 * returns 0, or returns an error and delivered nothing; a receive either
 * takes exactly one element and returns 0, or returns an error and took
 * nothing.
 *
 * Backpressure: a bounded channel (capacity >= 1) makes senders wait while
 * it is full, so a fast producer runs at the pace of its consumers. An
 * unbounded channel (capacity 0) never makes a sender wait; create one on
 * purpose only, and watch knit_chan_high_water().
 *
 * Closing: after knit_chan_close() senders get -EPIPE at once; receivers
 * drain what is buffered, then get -EPIPE. With sender counting
 * (knit_chan_sender_add / _done) the last producer closes the channel.
 *
 * Threads: channels belong to the runtime whose task created them. Tasks
 * use the plain calls; plain threads use the _blocking variants while that
 * runtime runs (their operation is carried out by the runtime's worker).
 *
 * Elements are copied in and out (elem_size bytes); waiting senders and
 * receivers are served in FIFO order.
 */
#ifndef KNIT_CHAN_H
#define KNIT_CHAN_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct knit_chan knit_chan;

/**
 * knit_chan_new() - create a channel of @elem_size-byte elements.
 * @capacity: buffered elements; 0 makes the channel unbounded.
 * Call from a task (the channel belongs to that task's runtime).
 * Return: the channel with one reference; NULL when out of memory or
 * @elem_size is 0.
 */
KNIT_API knit_chan *knit_chan_new(size_t elem_size, size_t capacity);

/* Takes another reference to @c; returns @c. Any thread. */
KNIT_API knit_chan *knit_chan_ref(knit_chan *c);

/* Drops a reference; the last one frees @c (which must have no waiters). */
KNIT_API void knit_chan_unref(knit_chan *c);

/**
 * knit_chan_send() - copy @elem into the channel, waiting while it is full.
 * Cancellation point.
 * Return: 0; -EPIPE when the channel is closed (nothing was sent);
 * -ECANCELED / -ETIMEDOUT when the scope fired (nothing was sent);
 * -ENOMEM when an unbounded channel cannot grow (nothing was sent).
 */
KNIT_API int knit_chan_send(knit_chan *c, const void *elem);

/**
 * knit_chan_recv() - take one element into @elem, waiting while empty.
 * Cancellation point.
 * Return: 0; -EPIPE when closed and drained; -ECANCELED / -ETIMEDOUT when
 * the scope fired (nothing was taken).
 */
KNIT_API int knit_chan_recv(knit_chan *c, void *elem);

/* knit_chan_send() without waiting: 0, -EAGAIN when full, -EPIPE, -ENOMEM. */
KNIT_API int knit_chan_try_send(knit_chan *c, const void *elem);

/* knit_chan_recv() without waiting: 0, -EAGAIN when empty, -EPIPE. */
KNIT_API int knit_chan_try_recv(knit_chan *c, void *elem);

/*
 * Closes @c: waiting and later senders get -EPIPE; receivers drain the
 * buffer, then get -EPIPE. Idempotent. Not a cancellation point.
 */
KNIT_API void knit_chan_close(knit_chan *c);

/* True once @c is closed. */
KNIT_API bool knit_chan_is_closed(const knit_chan *c);

/* Elements buffered now. */
KNIT_API size_t knit_chan_len(const knit_chan *c);

/* The capacity (0 for an unbounded channel). */
KNIT_API size_t knit_chan_capacity(const knit_chan *c);

/* The most elements ever buffered at once (for unbounded channels). */
KNIT_API size_t knit_chan_high_water(const knit_chan *c);

/*
 * Sender counting: each producer is registered with knit_chan_sender_add
 * and calls knit_chan_sender_done when it has sent its last element; the
 * call that brings the count back to zero closes the channel.
 */
KNIT_API void knit_chan_sender_add(knit_chan *c);
KNIT_API void knit_chan_sender_done(knit_chan *c);

/**
 * knit_chan_send_blocking() - knit_chan_send() from a plain thread (not a
 * task), while the channel's runtime runs; blocks the calling thread.
 * Return: as knit_chan_send(); -ECANCELED when the runtime shut down
 * first; -ENOMEM.
 */
KNIT_API int knit_chan_send_blocking(knit_chan *c, const void *elem);

/* knit_chan_recv() from a plain thread; see knit_chan_send_blocking(). */
KNIT_API int knit_chan_recv_blocking(knit_chan *c, void *elem);

/* ---- oneshot: one value, once (tokio::sync::oneshot) ------------------ */

typedef struct knit_oneshot knit_oneshot;

/*
 * A one-value channel with two references, one for the sender side and one
 * for the receiver side: each side calls knit_oneshot_unref when done (a
 * creator that never hands the sender side over drops both itself).
 * Return: NULL when out of memory or @elem_size is 0.
 */
KNIT_API knit_oneshot *knit_oneshot_new(size_t elem_size);

/* Drops one side's reference; a sender dropping it unsent closes it. */
KNIT_API void knit_oneshot_unref(knit_oneshot *o);

/**
 * knit_oneshot_send() - deliver the value. Never waits.
 * Return: 0; -EALREADY when a value was sent before; -EPIPE when the
 * receiver is gone (its reference was dropped).
 */
KNIT_API int knit_oneshot_send(knit_oneshot *o, const void *elem);

/**
 * knit_oneshot_recv() - wait for the value.
 * Cancellation point.
 * Return: 0; -EPIPE when the sender dropped its side unsent (or the value
 * was already taken); -ECANCELED / -ETIMEDOUT.
 */
KNIT_API int knit_oneshot_recv(knit_oneshot *o, void *elem);

/* ---- broadcast: every subscriber sees every value ---------------------- */

typedef struct knit_bcast knit_bcast;
typedef struct knit_bcast_rx knit_bcast_rx;

/*
 * A broadcast channel keeping the last @capacity values (>= 1). Senders
 * never wait: a subscriber that falls more than @capacity values behind
 * gets -EOVERFLOW once (knit_bcast_rx_missed tells how many it lost) and
 * then continues from the oldest value still kept.
 * Return: NULL when out of memory or an argument is 0.
 */
KNIT_API knit_bcast *knit_bcast_new(size_t elem_size, size_t capacity);

/* Frees @b; every subscriber must have been freed first. */
KNIT_API void knit_bcast_free(knit_bcast *b);

/* Sends to every current subscriber: 0, or -EPIPE when closed. */
KNIT_API int knit_bcast_send(knit_bcast *b, const void *elem);

/* Closes @b: subscribers drain what they have not seen, then get -EPIPE. */
KNIT_API void knit_bcast_close(knit_bcast *b);

/* A subscriber that sees every value sent from now on; NULL on ENOMEM. */
KNIT_API knit_bcast_rx *knit_bcast_subscribe(knit_bcast *b);

/* Frees a subscriber. */
KNIT_API void knit_bcast_rx_free(knit_bcast_rx *rx);

/**
 * knit_bcast_recv() - the next value this subscriber has not seen.
 * Cancellation point.
 * Return: 0; -EOVERFLOW once after a lag (nothing copied; the next call
 * continues); -EPIPE when closed and drained; -ECANCELED / -ETIMEDOUT.
 */
KNIT_API int knit_bcast_recv(knit_bcast_rx *rx, void *elem);

/* How many values the last -EOVERFLOW skipped. */
KNIT_API uint64_t knit_bcast_rx_missed(const knit_bcast_rx *rx);

/* ---- watch: the latest value and "changed since I looked" ------------- */

typedef struct knit_watch knit_watch;
typedef struct knit_watch_rx knit_watch_rx;

/* A watch holding a copy of @initial. NULL on ENOMEM or elem_size 0. */
KNIT_API knit_watch *knit_watch_new(size_t elem_size, const void *initial);

/* Frees @w; every receiver must have been freed first. */
KNIT_API void knit_watch_free(knit_watch *w);

/* Replaces the value and wakes every receiver: 0, or -EPIPE when closed. */
KNIT_API int knit_watch_send(knit_watch *w, const void *elem);

/* Closes @w: knit_watch_changed returns -EPIPE once nothing is unseen. */
KNIT_API void knit_watch_close(knit_watch *w);

/* A receiver that has seen the current value; NULL on ENOMEM. */
KNIT_API knit_watch_rx *knit_watch_subscribe(knit_watch *w);

KNIT_API void knit_watch_rx_free(knit_watch_rx *rx);

/* Copies the current value into @elem and marks it seen. */
KNIT_API void knit_watch_borrow(knit_watch_rx *rx, void *elem);

/**
 * knit_watch_changed() - wait until a value newer than the last one this
 * receiver saw is there (it is not marked seen: borrow it).
 * Cancellation point.
 * Return: 0; -EPIPE when closed with nothing new; -ECANCELED / -ETIMEDOUT.
 */
KNIT_API int knit_watch_changed(knit_watch_rx *rx);

#ifdef __cplusplus
}
#endif

#endif
