// SPDX-License-Identifier: MIT
/*
 * Graceful shutdown on Ctrl-C (tokio's signal::ctrl_c plus a shutdown
 * broadcast): three workers take jobs in a loop; on Ctrl-C they take no
 * new job, the jobs in flight get a grace period (a scope deadline) to
 * finish, whatever still runs after it is cancelled, and a summary is
 * printed.
 *
 * So that it runs without a human, an "operator" task sends the process
 * SIGINT at t=300 ms, exactly what Ctrl-C in a terminal does. SIGINT is
 * watched from the start, so even an early Ctrl-C is kept for
 * knit_ctrl_c instead of killing the program.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <knit.h>

#define GRACE_MS 200

struct app {
    knit_token stop; /* cancelled on Ctrl-C: take no new job */
    int done;        /* jobs finished */
    int cancelled;   /* jobs cut short after the grace period */
};

struct worker {
    struct app *app;
    int id;
    int64_t job_ms; /* how long one job takes */
};

static int worker(void *arg)
{
    struct worker *w = arg;
    for (int job = 1; !knit_token_is_cancelled(&w->app->stop); job++) {
        int err = knit_sleep(w->job_ms); /* the work itself */
        long long now = (long long)knit_now();
        if (err) {
            printf("t=%lldms worker %d: job %d cancelled\n", now, w->id, job);
            w->app->cancelled++;
            return err;
        }
        printf("t=%lldms worker %d: job %d done\n", now, w->id, job);
        w->app->done++;
    }
    printf("t=%lldms worker %d: no new jobs, leaving\n", (long long)knit_now(),
           w->id);
    return 0;
}

/* Presses Ctrl-C at t=300 ms. */
static int operator(void *arg)
{
    (void)arg;
    int err = knit_sleep_until(300);
    if (err)
        return err;
    printf("t=%lldms operator: Ctrl-C\n", (long long)knit_now());
    return kill(getpid(), SIGINT) == 0 ? 0 : -errno;
}

static int run(void *arg)
{
    (void)arg;
    sigset_t intr;
    sigemptyset(&intr);
    sigaddset(&intr, SIGINT);
    int err = knit_signal_watch(&intr);
    if (err)
        return err;
    struct app app = {.done = 0, .cancelled = 0};
    knit_token_init(&app.stop, NULL);
    struct worker ws[] = {{&app, 0, 120}, {&app, 1, 170}, {&app, 2, 260}};
    knit_group g;
    knit_group_init(&g, 0);
    for (int i = 0; i < 3; i++)
        if (knit_group_spawn(&g, worker, &ws[i]) != 0)
            knit_token_cancel(&app.stop); /* out of memory: wind down */
    knit_task *op = knit_spawn(operator, NULL);

    knit_ctrl_c(); /* on an error (none expected), shut down anyway */
    int64_t t0 = knit_now();
    printf("t=%lldms main: Ctrl-C: no new jobs, grace until t=%lldms\n",
           (long long)t0, (long long)(t0 + GRACE_MS));
    knit_token_cancel(&app.stop);

    /* Let the jobs in flight finish, but no longer than the grace. */
    knit_scope grace;
    knit_scope_enter(&grace, t0 + GRACE_MS);
    int result;
    while ((err = knit_group_next(&g, &result)) == 0)
        ;
    knit_scope_exit(&grace);
    if (err == -ETIMEDOUT) {
        printf("t=%lldms main: grace period over, cancelling %zu\n",
               (long long)knit_now(), knit_group_len(&g));
        knit_group_cancel(&g);
    }
    knit_group_wait(&g); /* reaps the cancelled ones */
    int rop = op ? knit_join(op) : -ENOMEM;
    knit_token_destroy(&app.stop);

    printf("summary: %d jobs done, %d cancelled, shutdown took %lld ms\n",
           app.done, app.cancelled, (long long)(knit_now() - t0));
    return rop;
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
