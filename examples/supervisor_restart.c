// SPDX-License-Identifier: MIT
/*
 * A supervisor (knit/patterns/supervisor.h) restarting a flaky worker.
 *
 * Two children, one-for-one: a "metrics" task that runs until it is
 * stopped, and a "worker" whose connection keeps dropping. The worker is
 * transient (restarted only when it fails). Restarts wait with
 * exponential backoff (100, 200, 400 ms ...), and at most 3 restarts are
 * allowed within any 1000 ms (the restart intensity).
 *
 * The worker fails three times 30 ms after starting; the backoff spaces
 * the restarts out. Its fourth run holds for 3 s, a whole window, so its
 * backoff starts over at 100 ms and the old restarts no longer count.
 * Then the server goes down for good: the worker fails at once, every
 * time, and the fourth restart within 1000 ms is one too many. The
 * supervisor gives up, stops the metrics task and reports the culprit.
 *
 * Runs on the manual clock, so every printed time is exact.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

static long long now(void)
{
    return (long long)knit_now();
}

static const char *errname(int err)
{
    return err == -ECONNRESET     ? "-ECONNRESET"
           : err == -ECONNREFUSED ? "-ECONNREFUSED"
           : err == -ECANCELED    ? "-ECANCELED"
           : err == -ELOOP        ? "-ELOOP (restart intensity exceeded)"
           : err == 0             ? "0"
                                  : strerror(-err);
}

/* ---- the children -------------------------------------------------------- */

static int metrics(void *arg)
{
    (void)arg;
    /* Runs until the supervisor stops it: then this returns -ECANCELED. */
    return knit_sleep_until(KNIT_FOREVER);
}

static int worker(void *arg)
{
    int *runs = arg; /* survives restarts: the spec's arg */
    int run = ++*runs;
    if (run <= 3) {
        int err = knit_sleep(30);
        return err < 0 ? err : -ECONNRESET; /* the connection dropped */
    }
    if (run == 4) {
        printf("t=%lldms   worker: connected, serving\n", now());
        int err = knit_sleep(3000);
        return err < 0 ? err : -ECONNRESET;
    }
    return -ECONNREFUSED; /* the server is gone */
}

/* ---- observing the supervisor -------------------------------------------- */

static void on_event(const knit_supervisor_event *ev, void *arg)
{
    (void)arg;
    switch (ev->kind) {
    case KNIT_SUP_STARTED:
        if (ev->restarts == 0)
            printf("t=%lldms started %s\n", now(), ev->name);
        else
            printf("t=%lldms started %s (restart %d)\n", now(), ev->name,
                   ev->restarts);
        break;
    case KNIT_SUP_EXITED:
        printf("t=%lldms %s exited: %s\n", now(), ev->name,
               errname(ev->result));
        break;
    case KNIT_SUP_RESTARTING:
        printf("t=%lldms %s restarts in %lldms\n", now(), ev->name,
               (long long)ev->delay_ms);
        break;
    case KNIT_SUP_GAVE_UP:
        printf("t=%lldms %s: %d restarts in the last 1000ms already, "
               "giving up\n",
               now(), ev->name, ev->restarts);
        break;
    case KNIT_SUP_SHUTDOWN:
        printf("t=%lldms shutting down: %s\n", now(), errname(ev->result));
        break;
    case KNIT_SUP_STOPPED:
        printf("t=%lldms %s stopped: %s\n", now(), ev->name,
               errname(ev->result));
        break;
    }
}

static int run(void *arg)
{
    (void)arg;
    int runs = 0;
    const knit_child_spec children[] = {
        {.name = "metrics", .start = metrics},
        {.name = "worker",
         .start = worker,
         .arg = &runs,
         .restart = KNIT_CHILD_TRANSIENT},
    };
    knit_backoff_policy backoff = {.initial_ms = 100, .max_ms = 1000};
    knit_supervisor_opts o = {
        .strategy = KNIT_SUP_ONE_FOR_ONE,
        .max_restarts = 3,
        .window_ms = 1000,
        .backoff = &backoff,
        .on_event = on_event,
    };
    knit_supervisor_report rep;
    int err = knit_supervisor_run(&o, children, 2, &rep);
    printf("t=%lldms supervisor: %s\n", now(), errname(err));
    if (err == -ELOOP) {
        printf("t=%lldms culprit: %s, last error %s; %d restarts in all\n",
               now(), children[rep.child].name, errname(rep.error),
               rep.restarts);
        return 0; /* the outcome this example expects */
    }
    return err < 0 ? err : -EPROTO;
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
        fprintf(stderr, "supervisor_restart: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
