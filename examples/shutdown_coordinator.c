// SPDX-License-Identifier: MIT
/*
 * A graceful shutdown coordinator (knit/patterns/shutdown.h) for a small
 * service: a producer queues jobs on a bounded channel and three workers
 * run them, the scenario of tokio's "broadcast shutdown" recipe.
 *
 * On Ctrl-C the coordinator's token is cancelled: the producer, which
 * waits on it in a select, queues nothing more and closes the channel.
 * The workers finish the jobs they hold and drain the queue, for up to
 * GRACE_MS after the signal; the one still busy then is cancelled and
 * reports it. knit_shutdown_wait returns when every tracked task has
 * ended, with a report.
 *
 * So that it runs without a human, an "operator" task sends the process
 * SIGINT at t=310 ms, exactly what Ctrl-C in a terminal does; a second
 * Ctrl-C would skip the rest of the grace period.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <knit.h>

#define GRACE_MS 250

struct job {
    int id;
    int64_t ms; /* how long it takes */
};

struct app {
    knit_shutdown_coord sd;
    knit_chan *jobs; /* producer -> workers, 2 places */
};

struct worker {
    struct app *app;
    int id;
};

static long long now(void)
{
    return (long long)knit_now();
}

/* Queues a job every 30 ms until the shutdown starts. */
static int producer(void *arg)
{
    struct app *app = arg;
    knit_token *stop = knit_shutdown_token(&app->sd);
    static const int64_t cost[] = {120, 200, 90, 450};
    int64_t next = knit_now();
    for (int n = 1;; n++) {
        struct job j = {n, cost[(n - 1) % 4]};
        knit_case wait[] = {knit_case_token(stop), knit_case_deadline(next)};
        if (knit_select_biased(wait, 2) != 1)
            break;
        /* The send waits while the queue is full (backpressure); the
         * shutdown interrupts that wait too. */
        knit_case put[] = {knit_case_token(stop),
                           knit_case_send(app->jobs, &j)};
        if (knit_select_biased(put, 2) != 1)
            break;
        printf("t=%lldms producer: job %d queued\n", now(), n);
        next += 30;
    }
    printf("t=%lldms producer: shutdown, no new jobs\n", now());
    knit_chan_close(app->jobs); /* the workers drain what is queued */
    return 0;
}

static int worker(void *arg)
{
    struct worker *w = arg;
    struct job j;
    int err;
    while ((err = knit_chan_recv(w->app->jobs, &j)) == 0) {
        printf("t=%lldms worker %d: job %d started (%lld ms)\n", now(), w->id,
               j.id, (long long)j.ms);
        if ((err = knit_sleep(j.ms)) < 0) {
            /* The hard stop: this job did not finish in the grace. */
            printf("t=%lldms worker %d: job %d cancelled\n", now(), w->id,
                   j.id);
            return err;
        }
        printf("t=%lldms worker %d: job %d done\n", now(), w->id, j.id);
    }
    printf("t=%lldms worker %d: queue drained, leaving\n", now(), w->id);
    return err == -EPIPE ? 0 : err;
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case 0:
        return "a trigger call";
    case SIGINT:
        return "SIGINT";
    case SIGTERM:
        return "SIGTERM";
    default:
        return "a signal";
    }
}

/* Presses Ctrl-C at t=310 ms. */
static int operator(void *arg)
{
    (void)arg;
    int err = knit_sleep_until(310);
    if (err)
        return err;
    printf("t=%lldms operator: Ctrl-C\n", now());
    return kill(getpid(), SIGINT) == 0 ? 0 : -errno;
}

static int run(void *arg)
{
    (void)arg;
    struct app app;
    knit_shutdown_init(&app.sd);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int err = knit_shutdown_listen(&app.sd, &set);
    if (err < 0)
        return err;
    if (!(app.jobs = knit_chan_new(sizeof(struct job), 2)))
        return -ENOMEM;

    struct worker ws[3] = {{&app, 1}, {&app, 2}, {&app, 3}};
    knit_task_opts po = {.name = "producer"};
    err = knit_shutdown_spawn_with(&app.sd, &po, producer, &app);
    for (int i = 0; i < 3 && err == 0; i++)
        err = knit_shutdown_spawn(&app.sd, worker, &ws[i]);
    knit_task *op = err == 0 ? knit_spawn(operator, NULL) : NULL;
    if (!op)
        knit_shutdown_trigger(&app.sd); /* could not start: wind down */

    knit_shutdown_report rep;
    knit_shutdown_wait(&app.sd, GRACE_MS, &rep);
    printf("t=%lldms main: every task has ended\n", now());
    printf("report: started by %s at t=%lldms, %llu tasks in flight, "
           "%llu finished, %llu cancelled, %lld ms%s\n",
           signal_name(rep.signal), (long long)rep.started_at,
           (unsigned long long)rep.in_flight, (unsigned long long)rep.finished,
           (unsigned long long)rep.cancelled, (long long)rep.elapsed_ms,
           rep.forced ? " (forced)" : "");
    int rop = op ? knit_join(op) : err;
    knit_shutdown_destroy(&app.sd);
    knit_chan_unref(app.jobs);
    return rop;
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
        fprintf(stderr, "shutdown_coordinator: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
