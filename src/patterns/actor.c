// SPDX-License-Identifier: MIT
/*
 * Actors (knit/patterns/actor.h): the handle and its reference counts,
 * the actor's task (its serving loop and its end), then tell and ask.
 *
 * The mailbox is a bounded knit_chan of envelopes: a reply slot pointer
 * (NULL for a tell) followed by the message, aligned for any type. The
 * reply slot of an ask is a capacity-1 knit_chan with two references, one
 * for each side. The rule that keeps a late answer safe: the asker that
 * gives up closes the slot and then takes whatever is in it; the actor
 * answers with a try_send, which fails once the slot is closed. So
 * exactly one side sees an answer that was not delivered, and drops it,
 * and nothing is ever written into the asker's buffers after ask
 * returned: the actor writes only into its own answer buffer.
 *
 * Stopping uses a token linked to the scope the serving loop runs in, so
 * knit_actor_stop() cancels the handler in progress without a task
 * handle: the actor's task is detached, and knit_actor_join() waits on a
 * waitgroup instead.
 *
 * Built only on the public API (DESIGN section 4, layering).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>
#include "patterns/misuse.h"

/* Round up to the alignment of any type. */
#define ALIGN_UP(n)                                                            \
    (((n) + _Alignof(max_align_t) - 1) & ~(size_t)(_Alignof(max_align_t) - 1))
/* Where the message starts in an envelope, after the reply slot. */
#define MSG_OFF ALIGN_UP(sizeof(knit_chan *))
/* Where the reply starts in an answer, after the handler's result. */
#define REPLY_OFF ALIGN_UP(sizeof(int))

struct knit_actor {
    knit_chan *mailbox;              /* envelopes; closed when it ends */
    knit_actor_fn handle;            /* the handler */
    void *state;                     /* the handler's state */
    void (*drop)(void *msg);         /* opts.drop */
    void (*drop_reply)(void *reply); /* opts.drop_reply */
    void (*on_stop)(void *state, int result); /* opts.on_stop */
    size_t msg_size;                          /* bytes per message */
    size_t reply_size;                        /* bytes per reply */
    unsigned char *env;                       /* the actor's receive buffer */
    unsigned char *answer;                    /* the actor's answer buffer */
    knit_token stop;          /* cancels the serving loop's scope */
    knit_waitgroup running;   /* 1 until the actor has ended */
    _Atomic uint64_t task_id; /* the actor's task, to catch calls to self;
                                 set by spawn and by the task itself */
    atomic_size_t handles;    /* handles given out, not yet dropped */
    atomic_size_t refs;       /* handles, plus one while the task runs */
    int result;               /* the actor's result, once it ended */
    atomic_bool stopping;     /* knit_actor_stop() was called */
    max_align_t buf[];        /* env, then answer */
};

/* True when the caller is @a's own task (its handler or callbacks). */
static bool is_self(const knit_actor *a)
{
    knit_task *t = knit_current();
    return t && knit_task_id(t) ==
                    atomic_load_explicit(&a->task_id, memory_order_relaxed);
}

static knit_chan *env_slot(const unsigned char *env)
{
    knit_chan *slot;
    memcpy(&slot, env, sizeof(slot));
    return slot;
}

/* ---- references ---------------------------------------------------------- */

/* Drops one reference to the memory; the last one frees it. */
static void put(knit_actor *a)
{
    /* acq_rel: the freeing side sees every other holder's writes. */
    if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
        return;
    knit_chan_unref(a->mailbox);
    knit_token_destroy(&a->stop);
    free(a);
}

knit_actor *knit_actor_ref(knit_actor *a)
{
    /* relaxed: the caller holds a handle, so the count cannot reach 0. */
    atomic_fetch_add_explicit(&a->handles, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
    return a;
}

void knit_actor_unref(knit_actor *a)
{
    if (!a)
        return;
    size_t h = atomic_fetch_sub_explicit(&a->handles, 1, memory_order_acq_rel);
    if (h == 0)
        knit__pattern_misuse(
            "knit_actor_unref: more handles dropped than taken");
    if (h == 1)
        knit_chan_close(a->mailbox); /* as the last Sender dropped */
    put(a);
}

/* ---- the actor's task ---------------------------------------------------- */

/* A message that will not be handled: release its payload and tell its
 * asker, whose receive then returns -EPIPE. */
static void discard(knit_actor *a, unsigned char *env)
{
    knit_chan *slot = env_slot(env);
    if (a->drop)
        a->drop(env + MSG_OFF);
    if (slot) {
        knit_chan_close(slot);
        knit_chan_unref(slot);
    }
}

/* An answer nobody will read: release what its reply owns. */
static void drop_answer(const knit_actor *a, unsigned char *answer)
{
    int r;
    memcpy(&r, answer, sizeof(r));
    if (r >= 0 && a->drop_reply)
        a->drop_reply(answer + REPLY_OFF);
}

/* Hands one message to the handler and its answer to the asker. */
static int serve_one(knit_actor *a)
{
    knit_chan *slot = env_slot(a->env);
    void *reply = NULL;
    if (slot) {
        memset(a->answer, 0, REPLY_OFF + a->reply_size);
        reply = a->answer + REPLY_OFF;
    }
    int r = a->handle(a->state, a->env + MSG_OFF, reply);
    if (slot) {
        memcpy(a->answer, &r, sizeof(r));
        /* -EPIPE: the asker closed the slot when it gave up, so this
         * side is the one that drops the answer. */
        if (knit_chan_try_send(slot, a->answer) < 0)
            drop_answer(a, a->answer);
        knit_chan_unref(slot);
    }
    return r;
}

/* The serving loop; returns the actor's result. It runs in a scope linked
 * to the stop token, so that knit_actor_stop() reaches the handler. */
static int serve(knit_actor *a)
{
    knit_scope s;
    knit_scope_enter(&s, KNIT_FOREVER);
    knit_scope_link_token(&s, &a->stop);
    int result;
    for (;;) {
        int err = knit_chan_recv(a->mailbox, a->env);
        if (err < 0) {
            /* -EPIPE: closed and drained, a normal end, unless the close
             * was a stop's. Otherwise stopped, or the task itself was
             * cancelled. */
            result = atomic_load(&a->stopping) ? -ECANCELED
                     : err == -EPIPE           ? 0
                                               : err;
            break;
        }
        if (atomic_load(&a->stopping)) {
            discard(a, a->env);
            result = -ECANCELED;
            break;
        }
        int r = serve_one(a);
        if (r < 0) {
            result = r;
            break;
        }
        if (atomic_load(&a->stopping)) {
            result = -ECANCELED;
            break;
        }
    }
    (void)knit_scope_exit(&s);
    return result;
}

static int actor_main(void *arg)
{
    knit_actor *a = arg;
    /* Before any handler runs: on another worker the task may start
     * before knit_actor_spawn has stored its id. */
    atomic_store_explicit(&a->task_id, knit_task_id(knit_current()),
                          memory_order_relaxed);
    int result = serve(a);
    /* Nothing queued now or later will be handled. Closing first makes
     * waiting and later senders fail, so the drain below terminates. */
    knit_chan_close(a->mailbox);
    while (knit_chan_try_recv(a->mailbox, a->env) == 0)
        discard(a, a->env);
    a->result = result;
    if (a->on_stop)
        a->on_stop(a->state, result);
    knit_waitgroup_done(&a->running); /* joiners hold handles: a lives */
    put(a);
    return result;
}

knit_actor *knit_actor_spawn(const knit_actor_opts *o, knit_actor_fn handle,
                             void *state)
{
    if (!o || !handle || o->msg_size == 0 || o->msg_size > KNIT_ACTOR_MSG_MAX ||
        o->reply_size > KNIT_ACTOR_MSG_MAX)
        return NULL;
    size_t env_size = MSG_OFF + o->msg_size;
    size_t answer_size = REPLY_OFF + o->reply_size;
    knit_actor *a = calloc(1, sizeof(*a) + ALIGN_UP(env_size) + answer_size);
    if (!a)
        return NULL;
    a->mailbox = knit_chan_new(env_size,
                               o->capacity ? o->capacity : KNIT_ACTOR_CAPACITY);
    if (!a->mailbox)
        goto out_free;
    a->handle = handle;
    a->state = state;
    a->drop = o->drop;
    a->drop_reply = o->drop_reply;
    a->on_stop = o->on_stop;
    a->msg_size = o->msg_size;
    a->reply_size = o->reply_size;
    a->env = (unsigned char *)a->buf;
    a->answer = a->env + ALIGN_UP(env_size);
    knit_token_init(&a->stop, NULL);
    knit_waitgroup_init(&a->running);
    /* Counted before the task exists: it may end before spawn returns
     * once tasks can be stolen by other workers. */
    knit_waitgroup_add(&a->running, 1);
    atomic_init(&a->handles, 1);
    atomic_init(&a->refs, 2); /* the caller's handle and the task */
    knit_task_opts to = {.name = o->name, .stack_size = o->stack_size};
    knit_task *t = knit_spawn_with(&to, actor_main, a);
    if (!t)
        goto out_unref_mailbox;
    atomic_store_explicit(&a->task_id, knit_task_id(t), memory_order_relaxed);
    knit_detach(t);
    return a;

out_unref_mailbox:
    knit_chan_unref(a->mailbox);
out_free:
    free(a);
    return NULL;
}

/* ---- callers ------------------------------------------------------------- */

int knit_actor_tell(knit_actor *a, const void *msg)
{
    _Alignas(max_align_t) unsigned char env[MSG_OFF + KNIT_ACTOR_MSG_MAX];
    memset(env, 0, MSG_OFF); /* no reply slot */
    memcpy(env + MSG_OFF, msg, a->msg_size);
    if (is_self(a)) {
        /* The actor cannot make room in its own mailbox while it waits. */
        int err = knit_chan_try_send(a->mailbox, env);
        return err == -EAGAIN ? -EDEADLK : err;
    }
    return knit_chan_send(a->mailbox, env);
}

int knit_actor_try_tell(knit_actor *a, const void *msg)
{
    _Alignas(max_align_t) unsigned char env[MSG_OFF + KNIT_ACTOR_MSG_MAX];
    memset(env, 0, MSG_OFF);
    memcpy(env + MSG_OFF, msg, a->msg_size);
    return knit_chan_try_send(a->mailbox, env);
}

int knit_actor_ask(knit_actor *a, const void *msg, void *reply)
{
    _Alignas(max_align_t) unsigned char env[MSG_OFF + KNIT_ACTOR_MSG_MAX];
    _Alignas(max_align_t) unsigned char answer[REPLY_OFF + KNIT_ACTOR_MSG_MAX];
    memcpy(env + MSG_OFF, msg, a->msg_size);
    if (is_self(a)) {
        if (a->drop)
            a->drop(env + MSG_OFF);
        return -EDEADLK;
    }
    knit_chan *slot = knit_chan_new(REPLY_OFF + a->reply_size, 1);
    if (!slot) {
        if (a->drop)
            a->drop(env + MSG_OFF);
        return -ENOMEM;
    }
    knit_chan_ref(slot); /* the actor's side, queued with the message */
    memcpy(env, &slot, sizeof(slot));
    int err = knit_chan_send(a->mailbox, env);
    if (err < 0) {
        /* Nothing was queued: both sides of the slot are still ours. */
        knit_chan_unref(slot);
        knit_chan_unref(slot);
        if (a->drop)
            a->drop(env + MSG_OFF);
        return err;
    }
    err = knit_chan_recv(slot, answer);
    if (err == 0) {
        memcpy(&err, answer, sizeof(err)); /* the handler's result */
        if (err >= 0 && reply)
            memcpy(reply, answer + REPLY_OFF, a->reply_size);
        else if (!reply)
            drop_answer(a, answer); /* a reply nobody asked for */
    } else if (err != -EPIPE) {
        /* The scope fired. Close first, so that the actor's answer either
         * lands before the close (and is taken here) or fails after it
         * (and is dropped there): never both, never neither. */
        knit_chan_close(slot);
        if (knit_chan_try_recv(slot, answer) == 0)
            drop_answer(a, answer);
    }
    knit_chan_unref(slot);
    return err;
}

/* ---- ending -------------------------------------------------------------- */

void knit_actor_close(knit_actor *a)
{
    knit_chan_close(a->mailbox);
}

void knit_actor_stop(knit_actor *a)
{
    atomic_store(&a->stopping, true);
    knit_token_cancel(&a->stop);
    knit_chan_close(a->mailbox);
}

int knit_actor_join(knit_actor *a)
{
    if (is_self(a))
        knit__pattern_misuse("knit_actor_join: an actor cannot join itself");
    int err = knit_waitgroup_wait(&a->running);
    return err < 0 ? err : a->result;
}

size_t knit_actor_len(const knit_actor *a)
{
    return knit_chan_len(a->mailbox);
}

bool knit_actor_is_closed(const knit_actor *a)
{
    return knit_chan_is_closed(a->mailbox);
}
