// SPDX-License-Identifier: MIT
/*
 * Select with a timeout and a shutdown branch (tokio's select! over a
 * channel, a sleep and ctrl_c): a consumer waits for the first of three
 * events: a job arrives, no job came for 250 ms (it reports being idle),
 * or shutdown is requested. Here shutdown is a cancellation token that an
 * "operator" task cancels at t=1000, standing in for Ctrl-C so that the
 * output is deterministic; a real program has a task wait in
 * knit_ctrl_c() and cancel the token (see graceful_shutdown.c).
 *
 * Exactly one case takes effect per select: when the deadline or the
 * token wins, no job is taken from the channel, so none is lost.
 */
#include <errno.h>
#include <stdio.h>

#include <knit.h>

struct ctx {
    knit_chan *jobs;
    knit_token shutdown;
};

/* Sends jobs with irregular gaps, then stays quiet. */
static int producer(void *arg)
{
    struct ctx *c = arg;
    static const int gaps[] = {100, 50, 400, 30, 20};
    for (int i = 0; i < 5; i++) {
        int err = knit_sleep(gaps[i]);
        if (err)
            return err;
        int job = 100 + i;
        err = knit_chan_send(c->jobs, &job);
        if (err)
            return err;
    }
    return 0;
}

/* Requests shutdown at t=1000, as Ctrl-C would. */
static int operator(void *arg)
{
    struct ctx *c = arg;
    int err = knit_sleep_until(1000);
    if (err)
        return err;
    printf("t=%lldms operator: shutdown\n", (long long)knit_now());
    knit_token_cancel(&c->shutdown);
    return 0;
}

static int consumer(struct ctx *c)
{
    int handled = 0;
    for (;;) {
        int job = 0;
        knit_case cases[] = {
            knit_case_recv(c->jobs, &job),
            knit_case_deadline(knit_now() + 250),
            knit_case_token(&c->shutdown),
        };
        int which = knit_select(cases, 3);
        long long now = (long long)knit_now();
        if (which == 0) {
            if (knit_case_result(&cases[0]) != 0)
                return knit_case_result(&cases[0]);
            printf("t=%lldms consumer: job %d\n", now, job);
            handled++;
        } else if (which == 1) {
            printf("t=%lldms consumer: idle for 250 ms\n", now);
        } else if (which == 2) {
            printf("t=%lldms consumer: shutting down after %d jobs\n", now,
                   handled);
            return handled;
        } else {
            return which; /* the task's own scope fired */
        }
    }
}

static int run(void *arg)
{
    (void)arg;
    struct ctx c;
    c.jobs = knit_chan_new(sizeof(int), 4);
    if (!c.jobs)
        return -ENOMEM;
    knit_token_init(&c.shutdown, NULL);
    knit_task *p = knit_spawn(producer, &c);
    knit_task *o = knit_spawn(operator, &c);
    int handled = (p && o) ? consumer(&c) : -ENOMEM;
    int rp = p ? knit_join(p) : 0;
    int ro = o ? knit_join(o) : 0;
    knit_token_destroy(&c.shutdown);
    knit_chan_unref(c.jobs);
    if (handled != 5 || rp != 0 || ro != 0) {
        fprintf(stderr, "select_shutdown: handled %d, producer %d, "
                        "operator %d\n",
                handled, rp, ro);
        return 1;
    }
    return 0;
}

int main(void)
{
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.clock = KNIT_CLOCK_MANUAL;
    cfg.workers = 1;
    cfg.seed = 1;
    return knit_run(&cfg, run, NULL) == 0 ? 0 : 1;
}
