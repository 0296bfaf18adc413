// SPDX-License-Identifier: MIT
/*
 * Lazy start: knit_spawn_with(.lazy = true) makes a task that does not run
 * until it is joined (or knit_task_start is called), like a Rust future
 * that does nothing until it is awaited. An eager task, spawned the usual
 * way, starts as soon as its spawner parks. Here both are spawned at t=0;
 * the eager one runs during main's 100 ms sleep, the lazy one only when
 * main joins it. A lazy task cancelled before it is ever started does not
 * run at all: its join returns -ECANCELED.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

struct job {
    const char *name; /* printed */
    bool started;     /* set by the task when it begins */
};

static long long now(void)
{
    return (long long)knit_now();
}

static int work(void *arg)
{
    struct job *j = arg;
    j->started = true;
    printf("t=%lldms %s: started\n", now(), j->name);
    int err = knit_sleep(10);
    if (err < 0)
        return err;
    printf("t=%lldms %s: finished\n", now(), j->name);
    return 0;
}

static knit_task *spawn(struct job *j, bool lazy)
{
    knit_task_opts o = {.name = j->name, .lazy = lazy};
    knit_task *t = knit_spawn_with(&o, work, j);
    if (!t)
        fprintf(stderr, "lazy_start: cannot spawn %s\n", j->name);
    return t;
}

static const char *yes_no(bool b)
{
    return b ? "yes" : "no";
}

static int run(void *arg)
{
    (void)arg;
    struct job eager = {"eager", false};
    struct job lazy = {"lazy", false};
    struct job never = {"never", false};

    knit_task *te = spawn(&eager, false);
    knit_task *tl = spawn(&lazy, true);
    knit_task *tn = spawn(&never, true);
    if (!te || !tl || !tn)
        return -ENOMEM; /* runtime shutdown cancels what was spawned */
    printf("t=%lldms main: spawned eager, lazy and never\n", now());

    int err = knit_sleep(100);
    if (err < 0)
        return err;
    printf("t=%lldms main: after sleep: eager started=%s, lazy started=%s\n",
           now(), yes_no(eager.started), yes_no(lazy.started));

    int re = knit_join(te);
    printf("t=%lldms main: joined eager -> %d\n", now(), re);
    printf("t=%lldms main: joining lazy\n", now());
    int rl = knit_join(tl); /* starts it, then waits */
    printf("t=%lldms main: joined lazy -> %d\n", now(), rl);

    knit_cancel(tn); /* never started, so it never will */
    int rn = knit_join(tn);
    printf("t=%lldms main: cancelled never, join -> %s, started=%s\n", now(),
           rn == -ECANCELED ? "-ECANCELED" : strerror(-rn),
           yes_no(never.started));

    if (re || rl || rn != -ECANCELED || never.started) {
        fprintf(stderr, "lazy_start: unexpected result\n");
        return -EPROTO;
    }
    return 0;
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
        fprintf(stderr, "lazy_start: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
