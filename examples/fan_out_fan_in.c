// SPDX-License-Identifier: MIT
/*
 * Fan-out / fan-in with a task group (tokio's JoinSet and try_join!).
 *
 * Part 1 fans out five workers into a knit_group and fans their results
 * back in with knit_group_next, which hands them over in completion order.
 * That order follows the sleeps, not the spawn order, so the program only
 * keeps what does not depend on it (the sum); the arrival lines show it.
 *
 * Part 2 uses KNIT_GROUP_FAIL_FAST: the first worker to return an error
 * cancels the others (their sleeps return -ECANCELED), and knit_group_wait
 * returns that first error, not the -ECANCELED it caused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

struct worker {
    int id;        /* printed with every line */
    int64_t delay; /* how long the work takes, in ms */
    int result;    /* what it returns when the work is done */
};

static long long now(void)
{
    return (long long)knit_now();
}

static const char *errname(int err)
{
    switch (err) {
    case -ECANCELED:
        return "-ECANCELED";
    case -EIO:
        return "-EIO";
    default:
        return strerror(-err);
    }
}

static int work(void *arg)
{
    const struct worker *w = arg;
    int err = knit_sleep(w->delay);
    if (err < 0) {
        printf("t=%lldms worker %d: stopped, %s\n", now(), w->id, errname(err));
        return err;
    }
    printf("t=%lldms worker %d: %s\n", now(), w->id,
           w->result < 0 ? errname(w->result) : "done");
    return w->result;
}

/* Spawns every worker of @ws into @g; on failure cancels and reaps @g. */
static int fan_out(knit_group *g, struct worker *ws, int n)
{
    for (int i = 0; i < n; i++) {
        int err = knit_group_spawn(g, work, &ws[i]);
        if (err < 0) {
            fprintf(stderr, "fan_out_fan_in: spawn: %s\n", strerror(-err));
            knit_group_cancel(g);
            (void)knit_group_wait(g);
            return err;
        }
    }
    return 0;
}

static int run(void *arg)
{
    (void)arg;
    knit_group g;
    int err;
    int r;
    int sum = 0;

    /* Part 1: five squares, collected as they come. */
    struct worker sq[] = {
        {1, 40, 1}, {2, 10, 4}, {3, 50, 9}, {4, 20, 16}, {5, 30, 25}};
    knit_group_init(&g, 0);
    if ((err = fan_out(&g, sq, 5)) < 0)
        return err;
    while ((err = knit_group_next(&g, &r)) == 0) {
        printf("t=%lldms main: received %d\n", now(), r);
        sum += r;
    }
    if (err != -EPIPE) { /* -EPIPE: the group is empty, all are reaped */
        fprintf(stderr, "fan_out_fan_in: next: %s\n", strerror(-err));
        return err;
    }
    printf("t=%lldms main: sum of squares = %d\n", now(), sum);

    /* Part 2: worker 7 fails 20 ms in and cancels the slower ones. */
    struct worker batch[] = {
        {6, 10, 0}, {7, 20, -EIO}, {8, 60, 0}, {9, 100, 0}};
    knit_group_init(&g, KNIT_GROUP_FAIL_FAST);
    if ((err = fan_out(&g, batch, 4)) < 0)
        return err;
    err = knit_group_wait(&g); /* reaps every worker, then reports */
    printf("t=%lldms main: group wait -> %s\n", now(),
           err ? errname(err) : "0");
    if (err != -EIO) {
        fprintf(stderr, "fan_out_fan_in: wait gave %d, not -EIO\n", err);
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
        fprintf(stderr, "fan_out_fan_in: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
