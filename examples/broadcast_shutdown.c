// SPDX-License-Identifier: MIT
/*
 * Graceful shutdown through a broadcast channel (tokio's broadcast plus
 * select! on "shutdown or next tick").
 *
 * Each worker does a bit of work every period. Between ticks it waits on
 * its knit_bcast subscriber inside a cancel scope whose deadline is the
 * next tick: -ETIMEDOUT from knit_bcast_recv means "time to work", a
 * SHUTDOWN value (or -EPIPE, the channel closed) means "stop". Main sends
 * SHUTDOWN after 105 ms, closes the channel and waits for the group.
 * Worker 3 is busy at that moment; the broadcast keeps the value for it,
 * so it stops as soon as its work is done: no signal is lost.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

enum { MSG_SHUTDOWN = 1 };

struct worker {
    int id;
    int64_t period;    /* ms between ticks */
    int64_t work;      /* ms each tick's work takes */
    knit_bcast_rx *rx; /* subscribed by main before the worker starts */
    int ticks;         /* out: how many ticks it did */
};

static long long now(void)
{
    return (long long)knit_now();
}

static int work(void *arg)
{
    struct worker *w = arg;
    int64_t next = knit_now() + w->period;
    for (;;) {
        knit_scope s;
        int msg = 0;
        knit_scope_enter(&s, next); /* wait for a message until the tick */
        int err = knit_bcast_recv(w->rx, &msg);
        int serr = knit_scope_exit(&s);
        if (err == -ETIMEDOUT && serr == -ETIMEDOUT) {
            w->ticks++;
            printf("t=%lldms worker %d: tick %d\n", now(), w->id, w->ticks);
            if ((err = knit_sleep(w->work)) < 0) /* the work itself */
                return err;
            next += w->period;
        } else if ((err == 0 && msg == MSG_SHUTDOWN) || err == -EPIPE) {
            printf("t=%lldms worker %d: %s, stopping\n", now(), w->id,
                   err ? "channel closed" : "shutdown received");
            return 0;
        } else if (err < 0 && err != -EOVERFLOW) {
            return err; /* cancelled from outside */
        }
        /* Any other message, or a lag (-EOVERFLOW): keep waiting. */
    }
}

/* Runs the workers, shuts them down after 105 ms and waits for them. */
static int supervise(knit_bcast *b, struct worker *ws, int n)
{
    knit_group g;
    knit_group_init(&g, 0);
    for (int i = 0; i < n; i++) {
        int err = knit_group_spawn(&g, work, &ws[i]);
        if (err < 0) {
            knit_group_cancel(&g);
            (void)knit_group_wait(&g);
            return err;
        }
    }
    int err = knit_sleep(105);
    if (err == 0) {
        printf("t=%lldms main: sending shutdown\n", now());
        int msg = MSG_SHUTDOWN;
        err = knit_bcast_send(b, &msg);
        knit_bcast_close(b); /* a worker that missed it sees -EPIPE */
    }
    if (err < 0)
        knit_group_cancel(&g);
    int gerr = knit_group_wait(&g); /* every worker has stopped after it */
    return err < 0 ? err : gerr;
}

static int run(void *arg)
{
    (void)arg;
    struct worker ws[] = {
        {1, 20, 2, NULL, 0}, {2, 30, 5, NULL, 0}, {3, 50, 10, NULL, 0}};
    enum { N = sizeof(ws) / sizeof(ws[0]) };
    knit_bcast *b = knit_bcast_new(sizeof(int), 1);
    if (!b)
        return -ENOMEM;
    int err = 0;
    /* Subscribe before spawning: a subscriber sees only later values. */
    for (int i = 0; i < N && err == 0; i++)
        if (!(ws[i].rx = knit_bcast_subscribe(b)))
            err = -ENOMEM;
    if (err == 0 && (err = supervise(b, ws, N)) == 0) {
        printf("t=%lldms main: all workers stopped\n", now());
        for (int i = 0; i < N; i++)
            printf("worker %d: %d ticks\n", ws[i].id, ws[i].ticks);
    }
    for (int i = 0; i < N; i++)
        if (ws[i].rx)
            knit_bcast_rx_free(ws[i].rx); /* every subscriber first */
    knit_bcast_free(b);
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
        fprintf(stderr, "broadcast_shutdown: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
