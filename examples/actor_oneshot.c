// SPDX-License-Identifier: MIT
/*
 * An actor with oneshot replies (tokio's mpsc + oneshot actor). One task,
 * the actor, owns a counter. Clients send it requests {op, amount, reply}
 * on a bounded channel and wait on the request's knit_oneshot for the
 * answer. Requests are served one at a time, so clients adding at once
 * each get a distinct total. Main stops the actor by closing the channel:
 * the actor serves what is queued, then knit_chan_recv returns -EPIPE.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

enum op { OP_ADD, OP_GET };

struct request {
    enum op op;
    int amount;          /* for OP_ADD */
    knit_oneshot *reply; /* the actor sends the counter here, then unrefs */
};

struct client {
    int id;
    int amount;    /* added at each request */
    knit_chan *rq; /* the actor's mailbox */
};

static long long now(void)
{
    return (long long)knit_now();
}

static int actor(void *arg)
{
    knit_chan *rq = arg;
    int counter = 0;
    struct request req;
    int err;
    while ((err = knit_chan_recv(rq, &req)) == 0) {
        if (req.op == OP_ADD)
            counter += req.amount;
        err = knit_sleep(5); /* each request takes the actor 5 ms */
        if (err == 0)
            err = knit_oneshot_send(req.reply, &counter);
        knit_oneshot_unref(req.reply); /* the actor's side, in every case */
        if (err < 0 && err != -EPIPE)  /* -EPIPE: the client left */
            break;
    }
    if (err != -EPIPE) {
        /* Failing: drop queued replies, so their clients get -EPIPE. */
        knit_chan_close(rq);
        while (knit_chan_try_recv(rq, &req) == 0)
            knit_oneshot_unref(req.reply);
        return err;
    }
    printf("t=%lldms actor: mailbox closed, counter = %d\n", now(), counter);
    return counter;
}

/* Sends one request and waits for the reply: 0 with *out set, or -errno. */
static int call(knit_chan *rq, enum op op, int amount, int *out)
{
    struct request req = {op, amount, knit_oneshot_new(sizeof(int))};
    if (!req.reply)
        return -ENOMEM;
    int err = knit_chan_send(rq, &req);
    if (err < 0) {
        /* Nothing was delivered: both sides of the reply are still ours. */
        knit_oneshot_unref(req.reply);
        knit_oneshot_unref(req.reply);
        return err;
    }
    err = knit_oneshot_recv(req.reply, out); /* -EPIPE: actor dropped it */
    knit_oneshot_unref(req.reply);
    return err;
}

static int client(void *arg)
{
    const struct client *c = arg;
    int err = 0;
    for (int i = 0; i < 2 && err == 0; i++) {
        int total;
        if (i > 0 && (err = knit_sleep(20)) < 0) /* think between calls */
            break;
        if ((err = call(c->rq, OP_ADD, c->amount, &total)) == 0)
            printf("t=%lldms client %d: add %d -> %d\n", now(), c->id,
                   c->amount, total);
    }
    return err;
}

static int run(void *arg)
{
    (void)arg;
    knit_chan *rq = knit_chan_new(sizeof(struct request), 2);
    knit_task *a = rq ? knit_spawn(actor, rq) : NULL;
    if (!a) {
        if (rq)
            knit_chan_unref(rq);
        return -ENOMEM;
    }
    struct client cs[] = {{1, 1, rq}, {2, 10, rq}, {3, 100, rq}};
    knit_group g;
    knit_group_init(&g, 0);
    int err = 0;
    for (int i = 0; i < 3 && err == 0; i++)
        err = knit_group_spawn(&g, client, &cs[i]);
    if (err < 0)
        knit_group_cancel(&g);
    int gerr = knit_group_wait(&g);
    int total;
    if (err == 0 && (err = gerr) == 0 &&
        (err = call(rq, OP_GET, 0, &total)) == 0)
        printf("t=%lldms main: get -> %d\n", now(), total);
    knit_chan_close(rq);  /* shutdown: the actor drains, then sees -EPIPE */
    int r = knit_join(a); /* the actor's result: the final counter */
    if (err == 0 && r != 222)
        err = r < 0 ? r : -EPROTO;
    knit_chan_unref(rq);
    return err;
}

int main(void)
{
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.clock = KNIT_CLOCK_MANUAL; /* sleeps are instant and exact */
    cfg.workers = 1;
    cfg.seed = 1;
    int err = knit_run(&cfg, run, NULL);
    if (err < 0) {
        fprintf(stderr, "actor_oneshot: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
