/* SPDX-License-Identifier: MIT */
/*
 * knit/patterns/actor.h - actors: one task owns a piece of state and
 * serves messages from a bounded mailbox, one at a time (tokio's mpsc +
 * oneshot actor, Erlang's gen_server, actix's Handler).
 *
 * Several workers: an actor's handles may be used by tasks on different
 * workers at once; its handler still runs one message at a time.
 *
 *     static int cache(void *state, void *msg, void *reply)
 *     {
 *         struct cache *c = state;
 *         struct cmd *m = msg;
 *         if (m->op == SET)
 *             return cache_set(c, m->key, m->value);   // a tell
 *         return cache_get(c, m->key, reply);           // an ask
 *     }
 *
 *     knit_actor_opts o = {.name = "cache", .msg_size = sizeof(struct cmd),
 *                          .reply_size = sizeof(struct value)};
 *     knit_actor *a = knit_actor_spawn(&o, cache, &state);
 *     err = knit_actor_tell(a, &(struct cmd){SET, "k", 1});
 *     err = knit_actor_ask(a, &(struct cmd){GET, "k"}, &v);
 *     knit_actor_unref(a);   // the last handle: drains, then stops
 *
 * Messages are fixed-size structs copied into the mailbox (msg_size bytes,
 * like a channel's elements) and handled in the order they were queued.
 * Only the actor's task calls the handler, so the state needs no lock.
 *
 * tell queues a message and returns; it waits only for room in the
 * mailbox (backpressure), never for the handler. ask queues a message with
 * a reply slot and waits for the handler's answer, bounded by the caller's
 * scope like every blocking call. The reply slot is a capacity-1 knit_chan
 * with one reference for the asker and one for the actor, and the handler
 * writes into a buffer the actor owns: a caller that times out or is
 * cancelled closes the slot and drops its reference; a late answer is
 * then discarded by exactly one of the two sides, and never written into
 * memory the caller gave back.
 *
 * Ownership: a message's payload (a pointer it carries) belongs to the
 * actor once tell queued it; a failed tell queued nothing and the message
 * is still the caller's. ask always consumes its message, because its
 * errors cannot say whether the message was queued. A message that is not
 * handled (discarded from the mailbox, or an ask that could not be
 * queued) is passed to opts.drop, and an answer the asker is no longer
 * there to take is passed to opts.drop_reply: nothing is leaked.
 *
 * The handler's result: >= 0 is success, and an ask returns it. A negative
 * result is a failure that stops the actor (Erlang's "let it crash"): the
 * ask being served gets that error, queued messages are discarded and the
 * actor's result (knit_actor_join) is the error. Outcomes that are not
 * failures (a key not found) belong in the result value or the reply.
 *
 * How an actor ends, and what becomes of queued messages:
 *
 *   knit_actor_close()    no new messages; queued ones are handled; result 0
 *   last knit_actor_unref the same as close (tokio: the last Sender dropped)
 *   knit_actor_stop()     no new messages; the handler in progress is
 *                         cancelled (its blocking calls return -ECANCELED);
 *                         queued ones are discarded; result -ECANCELED
 *   a handler error       as stop, without the cancel; result: the error
 *
 * A discarded ask returns -EPIPE to its caller; every discarded message
 * goes to opts.drop. Once the actor has ended, every tell and ask returns
 * -EPIPE, and opts.on_stop(state, result) runs in the actor's task: the
 * place to free the state.
 *
 * Handles are counted: knit_actor_spawn() returns one, knit_actor_ref()
 * adds one, knit_actor_unref() drops one, and the memory goes when the
 * last handle is dropped and the actor has ended. Worker-local, like the
 * primitives of knit/sync.h: an actor and its callers are tasks of one
 * runtime. End every actor (close, stop or drop its handles) and let it
 * run before main returns: an actor task that the runtime cancels before
 * it ever ran cannot clean up.
 */
#ifndef KNIT_PATTERNS_ACTOR_H
#define KNIT_PATTERNS_ACTOR_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An actor handle. Opaque; counted with knit_actor_ref / knit_actor_unref. */
typedef struct knit_actor knit_actor;

/*
 * The handler: handle one message. @state is knit_actor_spawn's @state;
 * @msg points to a copy of the message (msg_size bytes, aligned for any
 * type, valid until the handler returns). @reply is NULL for a tell; for
 * an ask it points to reply_size zeroed bytes that are copied to the
 * asker when the handler returns >= 0 (a valid pointer even when
 * reply_size is 0). Returns >= 0 (an ask returns it), or a negative errno,
 * which stops the actor. May block: it runs in the actor's task.
 */
typedef int (*knit_actor_fn)(void *state, void *msg, void *reply);

/* Default mailbox capacity (knit_actor_opts.capacity == 0). */
#define KNIT_ACTOR_CAPACITY 32

/* Largest msg_size and reply_size: messages are small structs staged on
 * the caller's stack; put big payloads behind a pointer. */
#define KNIT_ACTOR_MSG_MAX 1024

/* Options for knit_actor_spawn(); msg_size is required. */
typedef struct knit_actor_opts {
    const char *name;  /* the actor task's name (knit_dump); may be NULL */
    size_t msg_size;   /* bytes per message, 1..KNIT_ACTOR_MSG_MAX */
    size_t reply_size; /* bytes per ask reply, 0..KNIT_ACTOR_MSG_MAX; 0:
                          asks return only the handler's result */
    size_t capacity;   /* mailbox slots; 0: KNIT_ACTOR_CAPACITY. Always
                          bounded: a full mailbox makes tell and ask wait */
    size_t stack_size; /* the actor task's stack; 0: the runtime default */
    /* Releases what a message owns when it is not handled: discarded from
     * the mailbox (stop, handler error; called in the actor's task) or an
     * ask that could not be queued (in the asker's task). NULL: messages
     * own nothing. Must not touch the actor's state. */
    void (*drop)(void *msg);
    /* Releases what an ask's reply owns when the asker has gone (its scope
     * fired) and the answer (result >= 0) cannot be delivered; called in
     * the actor's or the asker's task. NULL: replies own nothing. */
    void (*drop_reply)(void *reply);
    /* Called once in the actor's task after the last message, with the
     * actor's result; NULL: nothing to do. The place to free @state. */
    void (*on_stop)(void *state, int result);
} knit_actor_opts;

/**
 * knit_actor_spawn() - start an actor: a task that calls handle(state,
 * msg, reply) for each message of its mailbox, one at a time.
 * @o:      options; msg_size from 1 to KNIT_ACTOR_MSG_MAX.
 * @handle: the handler.
 * @state:  the actor's state, handed to every callback. The actor owns it
 *          from now on (free it in on_stop).
 *
 * Call from a task (the mailbox belongs to its runtime). Not a
 * cancellation point; the actor starts running when the caller next
 * waits or yields.
 * Return: a handle (one reference); NULL when out of memory, when @o or
 * @handle is NULL, for a msg_size or reply_size out of range, or for a
 * stack size knit_spawn_with() refuses. On failure nothing ran and @state is
 * still the caller's.
 */
KNIT_API knit_actor *knit_actor_spawn(const knit_actor_opts *o,
                                      knit_actor_fn handle, void *state);

/**
 * knit_actor_ref() - take another handle to @a.
 * @a: the actor.
 *
 * Not a cancellation point.
 * Return: @a.
 */
KNIT_API knit_actor *knit_actor_ref(knit_actor *a);

/**
 * knit_actor_unref() - drop a handle to @a.
 * @a: the actor, or NULL (nothing happens).
 *
 * Dropping the last handle closes the mailbox as knit_actor_close() does:
 * the actor handles what is queued, then ends; nobody can join it any
 * more. The memory is freed once the actor has ended and no handle is
 * left. Not a cancellation point; never waits. Dropping more handles than
 * were taken panics.
 * Return: nothing.
 */
KNIT_API void knit_actor_unref(knit_actor *a);

/**
 * knit_actor_tell() - queue @msg for @a and return without an answer.
 * @a:   the actor.
 * @msg: msg_size bytes, copied. Its payload belongs to the actor once
 *       queued (the handler or opts.drop releases it); after a failure
 *       it is still the caller's.
 *
 * Cancellation point: waits while the mailbox is full (backpressure),
 * never for the handler. Called by the actor's own handler, a full
 * mailbox would wait forever, so it fails with -EDEADLK instead.
 * Return: 0, queued; -EPIPE when @a is closed, stopped or ended;
 * -ECANCELED / -ETIMEDOUT when the caller's scope fired while it waited
 * for room; -EDEADLK, see above. On every error nothing was queued.
 */
KNIT_API int knit_actor_tell(knit_actor *a, const void *msg);

/**
 * knit_actor_try_tell() - knit_actor_tell() without waiting.
 * @a:   the actor.
 * @msg: msg_size bytes, copied.
 *
 * Not a cancellation point. Safe from the actor's own handler.
 * Return: 0, queued; -EAGAIN when the mailbox is full; -EPIPE when @a is
 * closed, stopped or ended. On every error nothing was queued.
 */
KNIT_API int knit_actor_try_tell(knit_actor *a, const void *msg);

/**
 * knit_actor_ask() - queue @msg for @a and wait for the handler's answer.
 * @a:     the actor.
 * @msg:   msg_size bytes, copied. Consumed whatever the result: the
 *         handler gets it, or else opts.drop does (in this task when it
 *         could not be queued).
 * @reply: out, reply_size bytes, written only when the result is >= 0;
 *         NULL when the reply is not wanted.
 *
 * Cancellation point: waits for room in the mailbox, then for the answer,
 * both bounded by the caller's scope. A caller whose scope fires after
 * the message was queued just leaves: the message may still be handled,
 * and its answer then goes to opts.drop_reply (tokio drops it the same
 * way). The actor never writes into @reply after this call returned.
 * Return: the handler's result (>= 0); the handler's error (< 0), which
 * also stopped the actor; -EPIPE when @a is closed, stopped or ended
 * before it handled the message; -ECANCELED / -ETIMEDOUT when the
 * caller's scope fired (before or after queuing); -EDEADLK when called
 * from @a's own handler (it would wait for itself); -ENOMEM when the
 * reply slot cannot be allocated.
 */
KNIT_API int knit_actor_ask(knit_actor *a, const void *msg, void *reply);

/**
 * knit_actor_close() - stop taking messages; the actor handles what is
 * queued, then ends with result 0 (unless a handler fails meanwhile).
 * @a: the actor.
 *
 * Later tells and asks, and those waiting for room, return -EPIPE.
 * Idempotent; not a cancellation point; never waits (knit_actor_join
 * does).
 * Return: nothing.
 */
KNIT_API void knit_actor_close(knit_actor *a);

/**
 * knit_actor_stop() - stop @a now: no new messages, the handler in
 * progress is cancelled, queued messages are discarded.
 * @a: the actor.
 *
 * The handler's blocking calls return -ECANCELED from now on; whatever it
 * returns goes to its asker. Queued asks return -EPIPE, queued messages go
 * to opts.drop. The actor's result is the interrupted handler's error, or
 * else -ECANCELED. Idempotent, and a no-op on an actor that has ended;
 * not a cancellation point; never waits (knit_actor_join does).
 * Return: nothing.
 */
KNIT_API void knit_actor_stop(knit_actor *a);

/**
 * knit_actor_join() - wait until @a has ended and return its result.
 * @a: the actor; the handle stays the caller's (unref it afterwards).
 *
 * Cancellation point. Any number of tasks may join, any number of times.
 * Joining from @a's own handler panics (it would wait for itself).
 * Return: 0 when it ended after close or the last unref; the first
 * handler error; -ECANCELED after knit_actor_stop() or when its task was
 * cancelled (see there); -ECANCELED / -ETIMEDOUT when the caller's scope
 * fired first (@a goes on).
 */
KNIT_API int knit_actor_join(knit_actor *a);

/**
 * knit_actor_len() - count the messages waiting in @a's mailbox.
 * @a: the actor.
 *
 * The message being handled is not counted. Not a cancellation point.
 * Return: 0 to the capacity.
 */
KNIT_API size_t knit_actor_len(const knit_actor *a);

/**
 * knit_actor_is_closed() - tell whether @a takes no more messages.
 * @a: the actor.
 *
 * Not a cancellation point.
 * Return: true after close, stop, the last unref or a handler error (the
 * actor may still be draining); false while tell and ask can queue.
 */
KNIT_API bool knit_actor_is_closed(const knit_actor *a);

#ifdef __cplusplus
}
#endif

#endif
