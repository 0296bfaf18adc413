// SPDX-License-Identifier: MIT
/*
 * Actors (knit/patterns/actor.h), issue 6 part 5. One test actor serves
 * every case: its messages add, sleep, fail, or call the actor itself, and
 * may carry a payload they own (a strdup'd string), so that LeakSanitizer
 * catches every message or reply that is neither handled nor dropped, and
 * ASan every one dropped twice. Times are exact on the manual clock.
 * Misuse panics run in child processes.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "kt.h"

/* ---- the test actor ------------------------------------------------------ */

enum op {
    OP_ADD,       /* sum += value */
    OP_SLEEP,     /* sleep ms, then sum += value */
    OP_FAIL,      /* return value (< 0) */
    OP_PEEK,      /* check what the handler was given */
    OP_SELF_ASK,  /* ask the actor itself */
    OP_SELF_TELL, /* tell the actor itself until it fails */
};

struct msg {
    enum op op;
    int value;
    int64_t ms;
    char *owned;    /* a payload the message owns, or NULL */
    bool own_reply; /* the reply gets an owned payload */
};

struct reply {
    int sum;
    char *owned; /* owned when msg.own_reply */
};

#define LOG_MAX 64

struct st {
    knit_actor *self; /* for OP_SELF_* */
    int sum;
    int handled[LOG_MAX]; /* values, in the order handled */
    int64_t at[LOG_MAX];  /* when each was handled */
    int nhandled;
    int sleep_err;   /* what the last OP_SLEEP's sleep returned */
    int self_err;    /* what the last OP_SELF_* got */
    int self_tells;  /* tells OP_SELF_TELL queued */
    bool peek_ok;    /* OP_PEEK saw what it should */
    int stops;       /* on_stop calls */
    int stop_result; /* on_stop's result */
    int64_t stop_at; /* when on_stop ran */
};

/* drop and drop_reply have no state: they log here. */
static int dropped[LOG_MAX];
static int ndropped;
static atomic_int replies_dropped; /* atomics: set in the actor's task */
static atomic_bool reply_dropped_by_actor; /* the last one, in the actor */

/* Yields until @cond holds, without letting the clock move: a task due
 * at the same instant as the caller may run on another worker. */
#define YIELD_UNTIL(cond)                                                      \
    do {                                                                       \
        int64_t t_ = knit_now();                                               \
        for (int i_ = 0; i_ < 100000 && !(cond); i_++)                         \
            assert_int_equal(knit_yield(), 0);                                 \
        assert_int_equal(knit_now(), t_);                                      \
    } while (0)

static void reset_drops(void)
{
    ndropped = 0;
    replies_dropped = 0;
    reply_dropped_by_actor = false;
}

static int handler(void *state, void *m, void *r)
{
    struct st *s = state;
    struct msg *msg = m;
    struct reply *rep = r;
    assert_true(s->nhandled < LOG_MAX);
    s->handled[s->nhandled] = msg->value;
    s->at[s->nhandled++] = knit_now();
    free(msg->owned); /* handled: the handler owns the payload */
    switch (msg->op) {
    case OP_ADD:
        s->sum += msg->value;
        break;
    case OP_SLEEP:
        s->sleep_err = knit_sleep(msg->ms);
        if (s->sleep_err < 0)
            return s->sleep_err;
        s->sum += msg->value;
        break;
    case OP_FAIL:
        return msg->value;
    case OP_PEEK:
        /* Aligned for any type; a zeroed reply for an ask, none for a
         * tell. */
        s->peek_ok =
            ((uintptr_t)m % _Alignof(max_align_t)) == 0 &&
            (msg->value ? rep && rep->sum == 0 && !rep->owned : rep == NULL);
        break;
    case OP_SELF_ASK:
        s->self_err = knit_actor_ask(
            s->self, &(struct msg){.op = OP_ADD, .owned = strdup("x")}, NULL);
        break;
    case OP_SELF_TELL:
        s->self_tells = 0;
        while ((s->self_err = knit_actor_tell(
                    s->self, &(struct msg){.op = OP_ADD, .value = 1})) == 0)
            s->self_tells++;
        break;
    }
    if (rep) {
        rep->sum = s->sum;
        rep->owned = msg->own_reply ? strdup("reply") : NULL;
    }
    return s->sum;
}

static void drop_msg(void *m)
{
    struct msg *msg = m;
    assert_true(ndropped < LOG_MAX);
    dropped[ndropped++] = msg->value;
    free(msg->owned);
}

static void drop_reply(void *r)
{
    struct reply *rep = r;
    replies_dropped++;
    reply_dropped_by_actor =
        strcmp(knit_task_name(knit_current()), "test-actor") == 0;
    free(rep->owned);
}

static void on_stop(void *state, int result)
{
    struct st *s = state;
    s->stops++;
    s->stop_result = result;
    s->stop_at = knit_now();
}

static knit_actor *spawn_cap(struct st *s, size_t capacity)
{
    memset(s, 0, sizeof(*s));
    reset_drops();
    knit_actor_opts o = {.name = "test-actor",
                         .msg_size = sizeof(struct msg),
                         .reply_size = sizeof(struct reply),
                         .capacity = capacity,
                         .drop = drop_msg,
                         .drop_reply = drop_reply,
                         .on_stop = on_stop};
    knit_actor *a = knit_actor_spawn(&o, handler, s);
    assert_non_null(a);
    s->self = a;
    return a;
}

static int tell(knit_actor *a, enum op op, int value, int64_t ms)
{
    return knit_actor_tell(a,
                           &(struct msg){.op = op, .value = value, .ms = ms});
}

/* A tell whose message owns a payload (freed by the handler or drop). */
static int tell_owned(knit_actor *a, int value)
{
    struct msg m = {.op = OP_ADD, .value = value, .owned = strdup("payload")};
    int err = knit_actor_tell(a, &m);
    if (err < 0)
        free(m.owned); /* a failed tell queued nothing: still ours */
    return err;
}

static int ask(knit_actor *a, enum op op, int value, int64_t ms,
               struct reply *out)
{
    return knit_actor_ask(a, &(struct msg){.op = op, .value = value, .ms = ms},
                          out);
}

static void expect_handled(const struct st *s, int n, const int *values,
                           const int64_t *times)
{
    if (s->nhandled != n)
        fail_msg("handled %d messages, want %d", s->nhandled, n);
    for (int i = 0; i < n; i++) {
        if (s->handled[i] != values[i])
            fail_msg("message %d: value %d, want %d", i, s->handled[i],
                     values[i]);
        if (times && s->at[i] != times[i])
            fail_msg("message %d: handled at %lld, want %lld", i,
                     (long long)s->at[i], (long long)times[i]);
    }
}

static void expect_dropped(int n, const int *values)
{
    if (ndropped != n)
        fail_msg("dropped %d messages, want %d", ndropped, n);
    for (int i = 0; i < n; i++)
        if (dropped[i] != values[i])
            fail_msg("drop %d: value %d, want %d", i, dropped[i], values[i]);
}

/* Ends @a with close and join, checks its result, drops the handle. */
static void close_and_join(knit_actor *a, int want)
{
    knit_actor_close(a);
    assert_int_equal(knit_actor_join(a), want);
    knit_actor_unref(a);
}

/* A task that asks and records what it got and when. */
struct asker {
    knit_actor *a;
    struct msg m;
    struct reply out;
    int result;
    int64_t at;
};

static int asker_main(void *arg)
{
    struct asker *k = arg;
    k->result = knit_actor_ask(k->a, &k->m, &k->out);
    k->at = knit_now();
    return k->result;
}

struct teller {
    knit_actor *a;
    struct msg m;
    int64_t deadline; /* KNIT_FOREVER: none */
};

static int teller_main(void *arg)
{
    struct teller *k = arg;
    knit_scope s;
    knit_scope_enter(&s, k->deadline);
    int err = knit_actor_tell(k->a, &k->m);
    knit_scope_exit(&s);
    if (err < 0)
        free(k->m.owned);
    return err;
}

/* ---- order, backpressure, results ---------------------------------------- */

static int t_order(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 4);
    assert_int_equal(tell(a, OP_ADD, 1, 0), 0);
    assert_int_equal(tell(a, OP_ADD, 2, 0), 0);
    assert_int_equal(tell(a, OP_ADD, 3, 0), 0);
    struct reply rep = {-1, NULL};
    /* The ask sees every tell queued before it: the sum of all four. */
    assert_int_equal(ask(a, OP_ADD, 4, 0, &rep), 10);
    assert_int_equal(rep.sum, 10);
    assert_null(rep.owned);

    /* Two clients interleave; each one's messages keep their order. */
    struct teller t1 = {a, {.op = OP_ADD, .value = 10}, KNIT_FOREVER};
    struct teller t2 = {a, {.op = OP_ADD, .value = 20}, KNIT_FOREVER};
    knit_task *x = knit_spawn(teller_main, &t1);
    knit_task *y = knit_spawn(teller_main, &t2);
    assert_int_equal(tell(a, OP_ADD, 5, 0), 0);
    assert_int_equal(knit_join(x), 0);
    assert_int_equal(knit_join(y), 0);
    assert_int_equal(ask(a, OP_ADD, 6, 0, NULL), 51);
    if (kt_workers() == 1) {
        expect_handled(&s, 8, (int[]){1, 2, 3, 4, 5, 10, 20, 6}, NULL);
    } else {
        /* The three senders run on several workers: 5, 10 and 20 come
         * in any order, between the ask before and the ask after. */
        assert_int_equal(s.nhandled, 8);
        int mid = 0;
        for (int i = 4; i < 7; i++)
            mid |= s.handled[i] == 5    ? 1
                   : s.handled[i] == 10 ? 2
                   : s.handled[i] == 20 ? 4
                                        : 8;
        assert_int_equal(mid, 7);
        for (int i = 0; i < 4; i++)
            assert_int_equal(s.handled[i], i + 1);
        assert_int_equal(s.handled[7], 6);
    }
    assert_int_equal(s.stops, 0);
    close_and_join(a, 0);
    assert_int_equal(s.stops, 1);
    assert_int_equal(s.stop_result, 0);
    expect_dropped(0, NULL);
    return 0;
}

static void actor_handles_tells_and_asks_in_send_order(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_order, NULL), 0);
}

static int t_backpressure(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 2);
    int64_t told[5];
    /* Each message takes the actor 10 ms; the mailbox holds 2. A tell
     * waits for room only: the first three return at once (the actor
     * takes the first as soon as it runs), then one every 10 ms. */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(tell(a, OP_SLEEP, i + 1, 10), 0);
        told[i] = knit_now();
    }
    assert_int_equal(told[0], 0);
    assert_int_equal(told[1], 0);
    assert_int_equal(told[2], 0);
    assert_int_equal(told[3], 10);
    assert_int_equal(told[4], 20);
    assert_int_equal(knit_actor_len(a), 2);
    assert_int_equal(tell(a, OP_ADD, 99, 0), 0); /* room at 30 */
    assert_int_equal(knit_now(), 30);
    assert_int_equal(knit_actor_try_tell(a, &(struct msg){.value = 98}),
                     -EAGAIN);
    /* An ask waits for room too, then behind the queue: 5 and 99 come
     * first, and its own message takes 10 ms. */
    struct reply rep;
    assert_int_equal(ask(a, OP_SLEEP, 6, 10, &rep), 1 + 2 + 3 + 4 + 5 + 99 + 6);
    assert_int_equal(knit_now(), 60);
    expect_handled(&s, 7, (int[]){1, 2, 3, 4, 5, 99, 6},
                   (int64_t[]){0, 10, 20, 30, 40, 50, 50});
    close_and_join(a, 0);
    return 0;
}

static void actor_tell_waits_for_mailbox_room_not_for_the_handler(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_backpressure, NULL), 0);
}

static int t_peek(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 0); /* the default capacity */
    assert_int_equal(tell(a, OP_PEEK, 0, 0), 0);
    assert_int_equal(ask(a, OP_ADD, 0, 0, NULL), 0);
    assert_true(s.peek_ok);
    s.peek_ok = false;
    struct reply rep = {77, (char *)&rep}; /* overwritten on success */
    assert_int_equal(ask(a, OP_PEEK, 1, 0, &rep), 0);
    assert_true(s.peek_ok);
    assert_int_equal(rep.sum, 0);
    assert_null(rep.owned);
    /* The default capacity: the idle actor takes the first message
     * straight away, then KNIT_ACTOR_CAPACITY are queued. */
    kt_settle(); /* the actor waits in its mailbox again */
    int n = 0;
    /* The first (also adding 1) keeps it busy while the rest queue: on
     * several workers it would otherwise handle them as they come. */
    if (knit_actor_try_tell(
            a, &(struct msg){.op = OP_SLEEP, .value = 1, .ms = 10}) == 0)
        n++;
    kt_settle(); /* it sleeps in the handler */
    while (knit_actor_try_tell(a, &(struct msg){.value = 1}) == 0)
        n++;
    assert_int_equal(n, KNIT_ACTOR_CAPACITY + 1);
    assert_int_equal(knit_actor_len(a), KNIT_ACTOR_CAPACITY);
    /* An owned reply that the asker did not want is dropped, not leaked. */
    assert_int_equal(
        knit_actor_ask(
            a, &(struct msg){.op = OP_ADD, .value = 1, .own_reply = true},
            NULL),
        KNIT_ACTOR_CAPACITY + 2);
    /* Two answers nobody read: the first ask's above, and this one. */
    assert_int_equal(replies_dropped, 2);
    close_and_join(a, 0);
    return 0;
}

static void
actor_handler_gets_an_aligned_message_and_a_zeroed_reply(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_peek, NULL), 0);
}

/* A bare actor: the largest message, no reply, no callbacks. */
struct big {
    unsigned char bytes[KNIT_ACTOR_MSG_MAX];
};

struct big_state {
    int sum;
    int calls;
    bool reply[2]; /* whether each call got a reply pointer */
};

static int big_handler(void *state, void *m, void *reply)
{
    struct big_state *s = state;
    const struct big *b = m;
    s->reply[s->calls++ % 2] = reply != NULL;
    for (size_t i = 0; i < sizeof(b->bytes); i++)
        s->sum += b->bytes[i];
    return b->bytes[sizeof(b->bytes) - 1];
}

static int t_big(void *arg)
{
    (void)arg;
    struct big_state s = {0};
    knit_actor_opts o = {.msg_size = sizeof(struct big), .capacity = 1};
    knit_actor *a = knit_actor_spawn(&o, big_handler, &s);
    assert_non_null(a);
    struct big b;
    memset(&b, 1, sizeof(b));
    b.bytes[sizeof(b.bytes) - 1] = 42;
    assert_int_equal(knit_actor_tell(a, &b), 0);
    assert_int_equal(knit_actor_ask(a, &b, NULL), 42);
    assert_int_equal(s.sum, 2 * (KNIT_ACTOR_MSG_MAX - 1 + 42));
    assert_int_equal(s.calls, 2);
    assert_false(s.reply[0]); /* the tell */
    assert_true(s.reply[1]);  /* the ask: valid even with reply_size 0 */
    close_and_join(a, 0);
    return 0;
}

static void actor_carries_the_largest_message_without_a_reply(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_big, NULL), 0);
}

/* ---- asks that give up -----------------------------------------------------
 */

/* Sleeps until @at, then cancels @victim. */
struct canceller {
    int64_t at;
    knit_task *victim;
};

static int canceller_main(void *arg)
{
    struct canceller *c = arg;
    int err = knit_sleep_until(c->at);
    if (err == 0)
        knit_cancel(c->victim);
    return err;
}

static int t_ask_timeout(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 4);
    knit_scope sc;
    struct reply rep = {-7, NULL};
    /* The handler answers at 50 with an owned reply; the asker leaves at
     * 10. Its reply buffer is never written, and the late answer is
     * dropped exactly once (LeakSanitizer and ASan watch the payload). */
    knit_scope_enter(&sc, knit_now() + 10);
    int err = knit_actor_ask(a,
                             &(struct msg){.op = OP_SLEEP,
                                           .value = 5,
                                           .ms = 50,
                                           .own_reply = true,
                                           .owned = strdup("m")},
                             &rep);
    assert_int_equal(knit_scope_exit(&sc), -ETIMEDOUT);
    assert_int_equal(err, -ETIMEDOUT);
    assert_int_equal(knit_now(), 10);
    assert_int_equal(rep.sum, -7);
    assert_int_equal(replies_dropped, 0);
    assert_int_equal(knit_sleep(40), 0); /* t=50: the answer is dropped */
    YIELD_UNTIL(replies_dropped != 0);   /* the actor is due at 50 too */
    assert_int_equal(replies_dropped, 1);
    assert_int_equal(rep.sum, -7);
    assert_int_equal(s.sleep_err, 0); /* the message was still handled */
    assert_int_equal(ask(a, OP_ADD, 1, 0, &rep), 6);
    assert_int_equal(rep.sum, 6);
    if (kt_workers() > 1) {
        /* The two races below are ordered by one worker's timer wheel;
         * timers of tasks on different workers have no such order. */
        close_and_join(a, 0);
        assert_int_equal(s.sum, 5 + 1);
        return 0;
    }

    /* The asker gives up at the instant the answer comes. Its deadline
     * timer was armed before the handler's sleep, so it runs first,
     * closes the slot, finds it empty, and the actor drops the answer. */
    replies_dropped = 0;
    int64_t t0 = knit_now();
    knit_scope_enter(&sc, t0 + 20);
    err = knit_actor_ask(
        a, &(struct msg){.op = OP_SLEEP, .value = 1, .ms = 20, .own_reply = 1},
        &rep);
    knit_scope_exit(&sc);
    assert_int_equal(err, -ETIMEDOUT);
    assert_int_equal(knit_now(), t0 + 20);
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(replies_dropped, 1);
    assert_true(reply_dropped_by_actor);

    /* The other order: the asker is woken (cancelled) first, but the
     * actor runs before it and its answer lands in the slot; the asker
     * then takes it out after closing and drops it itself. */
    replies_dropped = 0;
    struct canceller c = {.at = knit_now() + 20};
    knit_task *ct = knit_spawn(canceller_main, &c);
    assert_int_equal(knit_sleep(0), 0); /* its timer is armed first */
    struct asker k = {
        .a = a, .m = {.op = OP_SLEEP, .value = 1, .ms = 20, .own_reply = true}};
    c.victim = knit_spawn(asker_main, &k);
    assert_int_equal(knit_join(ct), 0);
    assert_int_equal(knit_join(c.victim), -ECANCELED);
    assert_int_equal(k.at, c.at);
    assert_int_equal(replies_dropped, 1);
    assert_false(reply_dropped_by_actor);
    close_and_join(a, 0);
    assert_int_equal(s.sum, 5 + 1 + 1 + 1);
    return 0;
}

static void actor_ask_timeout_drops_the_late_answer_safely(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_ask_timeout, NULL), 0);
}

static int t_ask_cancel(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 4);
    struct asker k = {.a = a,
                      .m = {.op = OP_SLEEP,
                            .value = 3,
                            .ms = 20,
                            .own_reply = true,
                            .owned = strdup("m")},
                      .out = {-7, NULL}};
    knit_task *t = knit_spawn(asker_main, &k);
    assert_int_equal(knit_sleep(5), 0);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(k.at, 5);
    assert_int_equal(k.out.sum, -7);
    /* The actor finishes the message at 20 and drops the answer. */
    assert_int_equal(knit_sleep(15), 0);
    YIELD_UNTIL(replies_dropped != 0); /* the actor is due at 20 too */
    assert_int_equal(replies_dropped, 1);
    assert_int_equal(s.sum, 3);
    close_and_join(a, 0);
    return 0;
}

static void actor_ask_cancelled_while_waiting_for_the_answer(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_ask_cancel, NULL), 0);
}

static int t_full_mailbox(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 1);
    assert_int_equal(tell(a, OP_SLEEP, 1, 100), 0);
    kt_settle();                                /* the actor takes it */
    assert_int_equal(tell(a, OP_ADD, 2, 0), 0); /* the mailbox is full */

    /* A tell whose scope expires while it waits for room queues nothing
     * and still owns its message. */
    struct teller tl = {
        a, {.op = OP_ADD, .value = 3, .owned = strdup("t")}, knit_now() + 10};
    knit_task *t = knit_spawn(teller_main, &tl);
    assert_int_equal(knit_join(t), -ETIMEDOUT);
    assert_int_equal(knit_now(), 10);

    /* An ask that expires there queues nothing either; its message is
     * consumed: dropped in the asker's task. */
    knit_scope sc;
    knit_scope_enter(&sc, knit_now() + 10);
    assert_int_equal(
        knit_actor_ask(
            a, &(struct msg){.op = OP_ADD, .value = 4, .owned = strdup("a")},
            NULL),
        -ETIMEDOUT);
    knit_scope_exit(&sc);
    assert_int_equal(knit_now(), 20);
    expect_dropped(1, (int[]){4});

    /* Cancelled while waiting for room: the same. */
    struct teller tc = {
        a, {.op = OP_ADD, .value = 5, .owned = strdup("c")}, KNIT_FOREVER};
    t = knit_spawn(teller_main, &tc);
    struct asker k = {.a = a,
                      .m = {.op = OP_ADD, .value = 6, .owned = strdup("k")}};
    knit_task *u = knit_spawn(asker_main, &k);
    assert_int_equal(knit_sleep(5), 0);
    knit_cancel(t);
    knit_cancel(u);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(knit_join(u), -ECANCELED);
    expect_dropped(2, (int[]){4, 6});

    /* A scope already fired: nothing waits, nothing is queued. */
    knit_scope_enter(&sc, knit_now());
    assert_int_equal(tell(a, OP_ADD, 7, 0), -ETIMEDOUT);
    assert_int_equal(ask(a, OP_ADD, 8, 0, NULL), -ETIMEDOUT);
    knit_scope_exit(&sc);
    expect_dropped(3, (int[]){4, 6, 8});

    assert_int_equal(knit_actor_len(a), 1);
    close_and_join(a, 0);
    expect_handled(&s, 2, (int[]){1, 2}, (int64_t[]){0, 100});
    return 0;
}

static void
actor_tell_and_ask_that_give_up_on_a_full_mailbox_queue_nothing(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_full_mailbox, NULL), 0);
}

/* ---- how actors end --------------------------------------------------------
 */

static int t_handler_error(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 4);
    assert_int_equal(tell(a, OP_SLEEP, 1, 10), 0);
    struct asker failing = {.a = a, .m = {.op = OP_FAIL, .value = -EIO}};
    struct asker queued = {
        .a = a, .m = {.op = OP_ADD, .value = 3, .owned = strdup("q")}};
    knit_task *f = knit_spawn(asker_main, &failing);
    kt_settle();
    assert_int_equal(tell_owned(a, 2), 0);
    knit_task *q = knit_spawn(asker_main, &queued);
    kt_settle();
    assert_int_equal(knit_actor_len(a), 3);

    /* The failing ask gets the handler's error; what was queued behind
     * it is discarded: the ask gets -EPIPE, both payloads are dropped in
     * queue order, and the actor's result is the error. */
    assert_int_equal(knit_actor_join(a), -EIO);
    assert_int_equal(knit_now(), 10);
    assert_int_equal(knit_join(f), -EIO);
    assert_int_equal(knit_join(q), -EPIPE);
    expect_dropped(2, (int[]){2, 3});
    expect_handled(&s, 2, (int[]){1, -EIO}, (int64_t[]){0, 10});
    assert_int_equal(s.stops, 1);
    assert_int_equal(s.stop_result, -EIO);
    assert_true(knit_actor_is_closed(a));

    /* Ended: everything fails with -EPIPE, asks consume their message. */
    assert_int_equal(tell_owned(a, 4), -EPIPE);
    assert_int_equal(knit_actor_try_tell(a, &(struct msg){.value = 5}), -EPIPE);
    assert_int_equal(
        knit_actor_ask(
            a, &(struct msg){.op = OP_ADD, .value = 6, .owned = strdup("x")},
            NULL),
        -EPIPE);
    expect_dropped(3, (int[]){2, 3, 6});
    assert_int_equal(knit_actor_join(a), -EIO); /* again: the same */
    knit_actor_stop(a);                         /* a no-op now */
    knit_actor_close(a);
    assert_int_equal(knit_actor_join(a), -EIO);
    knit_actor_unref(a);
    assert_int_equal(s.stops, 1);

    /* A failing tell stops it too; only join can see why. The actor
     * sleeps first, so that on several workers the second tell still
     * finds it running. */
    a = spawn_cap(&s, 4);
    assert_int_equal(tell(a, OP_SLEEP, 0, 1), 0);
    kt_settle();
    assert_int_equal(tell(a, OP_FAIL, -ENOSPC, 0), 0);
    assert_int_equal(tell_owned(a, 1), 0);
    assert_int_equal(knit_actor_join(a), -ENOSPC);
    expect_dropped(1, (int[]){1});
    knit_actor_unref(a);
    return 0;
}

static void actor_handler_error_stops_it_and_discards_the_queue(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_handler_error, NULL), 0);
}

static int t_stop(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 4);
    struct asker busy = {.a = a, .m = {.op = OP_SLEEP, .value = 1, .ms = 100}};
    struct asker queued = {
        .a = a, .m = {.op = OP_ADD, .value = 3, .owned = strdup("q")}};
    knit_task *b = knit_spawn(asker_main, &busy);
    kt_settle();
    assert_int_equal(tell_owned(a, 2), 0);
    knit_task *q = knit_spawn(asker_main, &queued);
    assert_int_equal(knit_sleep(10), 0);

    /* Stop: the handler's sleep is cancelled and its error goes to its
     * asker; the queue is discarded; the result is that error. */
    knit_actor_stop(a);
    assert_true(knit_actor_is_closed(a));
    assert_int_equal(tell(a, OP_ADD, 9, 0), -EPIPE);
    assert_int_equal(knit_actor_join(a), -ECANCELED);
    assert_int_equal(knit_now(), 10);
    assert_int_equal(knit_join(b), -ECANCELED);
    assert_int_equal(busy.at, 10);
    assert_int_equal(s.sleep_err, -ECANCELED);
    assert_int_equal(knit_join(q), -EPIPE);
    expect_dropped(2, (int[]){2, 3});
    expect_handled(&s, 1, (int[]){1}, NULL);
    assert_int_equal(s.stops, 1);
    assert_int_equal(s.stop_result, -ECANCELED);
    knit_actor_unref(a);

    /* Stopped while idle: -ECANCELED as well. */
    a = spawn_cap(&s, 4);
    assert_int_equal(ask(a, OP_ADD, 1, 0, NULL), 1);
    knit_actor_stop(a);
    knit_actor_stop(a); /* idempotent */
    assert_int_equal(knit_actor_join(a), -ECANCELED);
    knit_actor_unref(a);

    /* Stopped before it ever ran: nothing is handled, all is dropped.
     * One worker only: on several, the new actor starts at once on
     * another worker, and when it does is not the test's to choose. */
    if (kt_workers() == 1) {
        a = spawn_cap(&s, 4);
        assert_int_equal(tell_owned(a, 1), 0);
        assert_int_equal(tell_owned(a, 2), 0);
        knit_actor_stop(a);
        assert_int_equal(knit_actor_join(a), -ECANCELED);
        expect_handled(&s, 0, NULL, NULL);
        expect_dropped(2, (int[]){1, 2});
        assert_int_equal(s.stops, 1);
        knit_actor_unref(a);
    }

    /* A stop after close discards what close would have drained. */
    a = spawn_cap(&s, 4);
    assert_int_equal(tell(a, OP_SLEEP, 1, 10), 0);
    assert_int_equal(tell_owned(a, 2), 0);
    knit_actor_close(a);
    assert_int_equal(knit_sleep(5), 0);
    knit_actor_stop(a);
    assert_int_equal(knit_actor_join(a), -ECANCELED);
    expect_dropped(1, (int[]){2});
    knit_actor_unref(a);

    /* A stop after the end changes nothing. */
    a = spawn_cap(&s, 4);
    close_and_join(knit_actor_ref(a), 0);
    knit_actor_stop(a);
    assert_int_equal(knit_actor_join(a), 0);
    knit_actor_unref(a);
    return 0;
}

static void
actor_stop_cancels_the_handler_and_discards_what_is_queued(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_stop, NULL), 0);
}

static int t_close(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 4);
    assert_int_equal(tell(a, OP_SLEEP, 1, 10), 0);
    assert_int_equal(tell(a, OP_SLEEP, 2, 10), 0);
    struct asker k = {.a = a, .m = {.op = OP_SLEEP, .value = 3, .ms = 10}};
    knit_task *t = knit_spawn(asker_main, &k);
    kt_settle();
    knit_actor_close(a);
    assert_true(knit_actor_is_closed(a));
    assert_int_equal(tell_owned(a, 4), -EPIPE);
    assert_int_equal(ask(a, OP_ADD, 5, 0, NULL), -EPIPE);
    /* What was queued is still handled, the ask answered. */
    assert_int_equal(knit_actor_join(a), 0);
    assert_int_equal(knit_now(), 30);
    assert_int_equal(knit_join(t), 6);
    assert_int_equal(k.at, 30);
    expect_handled(&s, 3, (int[]){1, 2, 3}, (int64_t[]){0, 10, 20});
    assert_int_equal(s.stop_at, 30);
    expect_dropped(1, (int[]){5});
    knit_actor_unref(a);
    return 0;
}

static void actor_close_handles_what_is_queued_then_ends_with_0(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_close, NULL), 0);
}

static int t_last_unref(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 4);
    knit_actor *b = knit_actor_ref(a);
    assert_ptr_equal(a, b);
    assert_int_equal(tell(a, OP_SLEEP, 1, 10), 0);
    assert_int_equal(tell_owned(a, 2), 0);
    knit_actor_unref(a);
    assert_false(knit_actor_is_closed(b)); /* one handle is left */
    assert_int_equal(tell(b, OP_SLEEP, 3, 10), 0);
    knit_actor_unref(b); /* the last: drains, then stops */
    knit_actor_unref(NULL);
    assert_int_equal(s.stops, 0);
    assert_int_equal(knit_sleep(100), 0);
    expect_handled(&s, 3, (int[]){1, 2, 3}, (int64_t[]){0, 10, 10});
    assert_int_equal(s.stops, 1);
    assert_int_equal(s.stop_result, 0);
    assert_int_equal(s.stop_at, 20);
    /* The memory is gone (LeakSanitizer checks it), so is the task
     * (kt_run checks it). */

    /* The last handle dropped while the actor is busy, and before it
     * ever ran. */
    a = spawn_cap(&s, 4);
    assert_int_equal(tell(a, OP_SLEEP, 1, 10), 0);
    knit_actor_unref(a);
    assert_int_equal(knit_sleep(11), 0);
    assert_int_equal(s.stops, 1);
    assert_int_equal(s.stop_at, 110);
    a = spawn_cap(&s, 4);
    knit_actor_unref(a);
    kt_settle();
    assert_int_equal(s.stops, 1);
    assert_int_equal(s.stop_result, 0);
    expect_handled(&s, 0, NULL, NULL);
    return 0;
}

static void actor_last_unref_drains_the_mailbox_and_stops_it(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_last_unref, NULL), 0);
}

/* ---- calls to itself, join, bad arguments, misuse --------------------------
 */

static int t_self(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 3);
    /* Asking itself would wait for itself: -EDEADLK, message dropped. */
    assert_int_equal(ask(a, OP_SELF_ASK, 1, 0, NULL), 0);
    assert_int_equal(s.self_err, -EDEADLK);
    expect_dropped(1, (int[]){0});
    /* Telling itself works while there is room, then -EDEADLK. */
    assert_int_equal(ask(a, OP_SELF_TELL, 2, 0, NULL), 0);
    assert_int_equal(s.self_tells, 3);
    assert_int_equal(s.self_err, -EDEADLK);
    close_and_join(a, 0);
    assert_int_equal(s.sum, 3);
    return 0;
}

static void actor_calls_to_itself_fail_instead_of_deadlocking(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_self, NULL), 0);
}

static int joiner(void *arg)
{
    return knit_actor_join(arg);
}

static int t_join_scope(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 4);
    assert_int_equal(tell(a, OP_SLEEP, 1, 100), 0);
    knit_scope sc;
    knit_scope_enter(&sc, knit_now() + 10);
    assert_int_equal(knit_actor_join(a), -ETIMEDOUT);
    knit_scope_exit(&sc);
    assert_int_equal(knit_now(), 10);
    knit_task *t = knit_spawn(joiner, a);
    knit_task *u = knit_spawn(joiner, a);
    assert_int_equal(knit_sleep(10), 0);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(knit_now(), 20);
    /* The actor went on; the other joiner sees its end. */
    knit_actor_close(a);
    assert_int_equal(knit_join(u), 0);
    assert_int_equal(knit_now(), 100);
    assert_int_equal(s.sum, 1);
    knit_actor_unref(a);
    return 0;
}

static void actor_join_returns_early_when_its_scope_fires(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_join_scope, NULL), 0);
}

static int t_bad(void *arg)
{
    (void)arg;
    struct st s = {0};
    knit_actor_opts o = {.msg_size = sizeof(struct msg), .on_stop = on_stop};
    assert_null(knit_actor_spawn(NULL, handler, &s));
    assert_null(knit_actor_spawn(&o, NULL, &s));
    knit_actor_opts bad = o;
    bad.msg_size = 0;
    assert_null(knit_actor_spawn(&bad, handler, &s));
    bad.msg_size = KNIT_ACTOR_MSG_MAX + 1;
    assert_null(knit_actor_spawn(&bad, handler, &s));
    bad = o;
    bad.reply_size = KNIT_ACTOR_MSG_MAX + 1;
    assert_null(knit_actor_spawn(&bad, handler, &s));
    bad = o;
    bad.stack_size = 1; /* knit_spawn_with refuses it */
    assert_null(knit_actor_spawn(&bad, handler, &s));
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(s.stops, 0); /* nothing ran */
    assert_int_equal(s.nhandled, 0);
    return 0;
}

static void actor_spawn_rejects_bad_options_and_runs_nothing(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bad, NULL), 0);
}

static void expect_panic(knit_fn fn, const char *msg)
{
    int status;
    const char *err = kt_run_child(NULL, fn, NULL, &status);
    kt_expect_in(err, msg);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static int join_self_handler(void *state, void *msg, void *reply)
{
    (void)msg;
    (void)reply;
    return knit_actor_join(*(knit_actor **)state);
}

static int t_join_self(void *arg)
{
    (void)arg;
    static knit_actor *self;
    knit_actor_opts o = {.name = "selfish", .msg_size = 1};
    self = knit_actor_spawn(&o, join_self_handler, &self);
    assert_non_null(self);
    knit_actor_tell(self, "x");
    knit_actor_close(self);
    knit_actor_join(self);
    return 0;
}

static void actor_join_from_its_own_handler_panics(void **state)
{
    (void)state;
    expect_panic(t_join_self,
                 "knit: knit_actor_join: an actor cannot join itself (in "
                 "task ");
    kt_expect_in(kt_run_child(NULL, t_join_self, NULL, &(int){0}),
                 "\"selfish\")");
}

static int t_unref_twice(void *arg)
{
    (void)arg;
    struct st s;
    knit_actor *a = spawn_cap(&s, 4);
    tell(a, OP_SLEEP, 1, 100); /* the task keeps the memory alive */
    knit_actor_unref(a);
    knit_actor_unref(a); /* misuse */
    return 0;
}

static void actor_unref_of_more_handles_than_taken_panics(void **state)
{
    (void)state;
    expect_panic(t_unref_twice,
                 "knit: knit_actor_unref: more handles dropped than taken");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(actor_handles_tells_and_asks_in_send_order),
        cmocka_unit_test(actor_tell_waits_for_mailbox_room_not_for_the_handler),
        cmocka_unit_test(
            actor_handler_gets_an_aligned_message_and_a_zeroed_reply),
        cmocka_unit_test(actor_carries_the_largest_message_without_a_reply),
        cmocka_unit_test(actor_ask_timeout_drops_the_late_answer_safely),
        cmocka_unit_test(actor_ask_cancelled_while_waiting_for_the_answer),
        cmocka_unit_test(
            actor_tell_and_ask_that_give_up_on_a_full_mailbox_queue_nothing),
        cmocka_unit_test(actor_handler_error_stops_it_and_discards_the_queue),
        cmocka_unit_test(
            actor_stop_cancels_the_handler_and_discards_what_is_queued),
        cmocka_unit_test(actor_close_handles_what_is_queued_then_ends_with_0),
        cmocka_unit_test(actor_last_unref_drains_the_mailbox_and_stops_it),
        cmocka_unit_test(actor_calls_to_itself_fail_instead_of_deadlocking),
        cmocka_unit_test(actor_join_returns_early_when_its_scope_fires),
        cmocka_unit_test(actor_spawn_rejects_bad_options_and_runs_nothing),
        cmocka_unit_test(actor_join_from_its_own_handler_panics),
        cmocka_unit_test(actor_unref_of_more_handles_than_taken_panics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
