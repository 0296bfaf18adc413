// SPDX-License-Identifier: MIT
/*
 * A priority worker pool (knit/patterns/priority.h), exercise 3 of the
 * async-patterns tutorial: two workers drain one bounded queue of jobs at
 * three levels (0 urgent, 1 normal, 2 background).
 *
 * A burst fills the queue: try_submit is refused, submit waits for room
 * (backpressure), and the burst runs urgent first. Then urgent jobs keep
 * coming as fast as the two workers run them, so urgent work is always
 * waiting: with strict priority the background job runs only when none
 * is left. With aging_ms = 200 it rises one level per 200 ms of waiting,
 * and once it is as urgent as the newest arrivals and older than them,
 * it goes first. Finally the pool is closed, the queue drains, and the
 * counters of each level are printed; then the same run with strict
 * priority shows when the background job would have started.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

struct job {
    char name[16];
    int level;
    int64_t queued_at;
};

static bool verbose;            /* print each step */
static int64_t reindex_started; /* when the background job started */

static long long now(void)
{
    return (long long)knit_now();
}

static int run_job(void *arg)
{
    struct job *j = arg;
    if (strcmp(j->name, "reindex") == 0)
        reindex_started = knit_now();
    if (verbose)
        printf("t=%lldms   start %-8s (level %d, waited %lld ms)\n", now(),
               j->name, j->level, now() - (long long)j->queued_at);
    return knit_sleep(100); /* the work itself */
}

static struct job jobs[32];
static int njobs;

static struct job *make(const char *name, int level)
{
    struct job *j = &jobs[njobs++];
    snprintf(j->name, sizeof(j->name), "%s", name);
    j->level = level;
    j->queued_at = knit_now();
    return j;
}

/* Submits a job, waiting while the queue is full (backpressure). */
static int submit(knit_prio_pool *p, const char *name, int level)
{
    struct job *j = make(name, level);
    int err = knit_prio_pool_submit(p, level, run_job, j);
    if (err == 0 && verbose && knit_now() > j->queued_at)
        printf("t=%lldms %s got a place after waiting %lld ms\n", now(), name,
               now() - (long long)j->queued_at);
    j->queued_at = knit_now(); /* its wait in the queue starts now */
    return err;
}

static int scenario(int64_t aging_ms)
{
    knit_prio_config cfg = {
        .workers = 2, .levels = 3, .capacity = 4, .aging_ms = aging_ms};
    knit_prio_pool *p = knit_prio_pool_new(&cfg);
    if (!p)
        return -ENOMEM;
    njobs = 0;
    int64_t t0 = knit_now();

    if (verbose)
        printf("t=%lldms a burst of 6 jobs for a queue of 4\n", now());
    int err = 0;
    const char *burst[] = {"reindex", "thumb-1", "pay-1",
                           "pay-2",   "thumb-2", "pay-3"};
    const int level[] = {2, 1, 0, 0, 1, 0};
    for (int i = 0; i < 6 && err == 0; i++)
        err = submit(p, burst[i], level[i]);
    if (err == 0) {
        struct job *j = make("pay-4", 0);
        err = knit_prio_pool_try_submit(p, 0, run_job, j);
        if (verbose)
            printf("t=%lldms try_submit pay-4: %s\n", now(),
                   err == -EAGAIN ? "-EAGAIN, the queue is full" : "queued");
        njobs--; /* not queued: reuse the record */
        err = submit(p, "pay-4", 0);
    }

    /* Urgent work arrives every 50 ms: as fast as two workers run it. */
    for (int i = 5; i <= 10 && err == 0; i++) {
        char name[16];
        snprintf(name, sizeof(name), "pay-%d", i);
        if ((err = knit_sleep_until(t0 + (i - 3) * 50)) == 0)
            err = submit(p, name, 0);
    }

    if (verbose)
        printf("t=%lldms closing; the queue drains\n", now());
    int werr = knit_prio_pool_wait(p);
    if (verbose) {
        printf("t=%lldms all done\n", now());
        static const char *names[] = {"urgent", "normal", "background"};
        for (int l = 0; l < 3; l++) {
            knit_prio_stats st;
            knit_prio_pool_stats(p, l, &st);
            printf("level %d %-10s: %llu run, %llu promoted by aging, "
                   "longest wait %lld ms\n",
                   l, names[l], (unsigned long long)st.started,
                   (unsigned long long)st.promoted, (long long)st.wait_max_ms);
        }
    }
    knit_prio_pool_free(p);
    return err < 0 ? err : werr;
}

static int run(void *arg)
{
    (void)arg;
    verbose = true;
    int err = scenario(200);
    if (err < 0)
        return err;
    /* The same again with strict priority, quietly, to compare. */
    verbose = false;
    int64_t t0 = knit_now();
    if ((err = scenario(0)) < 0)
        return err;
    printf("with aging_ms = 0 (strict), reindex starts at t=%lldms, "
           "when no urgent job is left\n",
           (long long)(reindex_started - t0));
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
        fprintf(stderr, "priority_pool: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
