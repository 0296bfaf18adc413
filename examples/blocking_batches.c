// SPDX-License-Identifier: MIT
/*
 * CPU-heavy work off the workers (tokio's spawn_blocking with rayon-style
 * batches): a list of numbers is cut into batches; each batch is scored on
 * a blocking-pool thread with knit_spawn_blocking, so the worker stays free
 * for other tasks meanwhile; the batch results are joined like tasks and
 * combined. A second run puts the whole map under a
 * deadline that cannot be met: the joins time out at once and the jobs
 * are left to finish on their threads, their results dropped.
 *
 * The manual clock does not move while blocking jobs are in flight, so
 * the printed times are exact.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include <knit.h>

#define N 200000
#define BATCHES 8

struct batch {
    uint32_t lo, hi; /* numbers [lo, hi) */
    uint64_t score;  /* result: sum of the number of steps each takes */
};

/* Collatz steps of @x: a stand-in for real CPU work. */
static uint64_t steps(uint64_t x)
{
    uint64_t n = 0;
    while (x > 1) {
        x = x % 2 ? 3 * x + 1 : x / 2;
        n++;
    }
    return n;
}

/* Runs on a pool thread: plain C, no knit calls. */
static int score_batch(void *arg)
{
    struct batch *b = arg;
    uint64_t s = 0;
    for (uint32_t i = b->lo; i < b->hi; i++)
        s += steps(i);
    b->score = s;
    return 0;
}

/* Scores [1, N) in BATCHES jobs; returns the total or a -errno. */
static int64_t parallel_score(struct batch *b)
{
    knit_task *jobs[BATCHES];
    for (int i = 0; i < BATCHES; i++) {
        b[i].lo = 1 + (uint32_t)((uint64_t)(N - 1) * (uint64_t)i / BATCHES);
        b[i].hi =
            1 + (uint32_t)((uint64_t)(N - 1) * (uint64_t)(i + 1) / BATCHES);
        jobs[i] = knit_spawn_blocking(score_batch, &b[i]);
        if (!jobs[i])
            return -ENOMEM; /* (a real program would detach the others) */
    }
    int64_t total = 0;
    int err = 0;
    for (int i = 0; i < BATCHES; i++) {
        int r = err ? err : knit_join(jobs[i]);
        if (r < 0) {
            /* Cancelled or timed out: the job runs on; stop waiting for
             * it. Its batch record must outlive it (static here). */
            err = r;
            knit_detach(jobs[i]);
            continue;
        }
        total += (int64_t)b[i].score;
    }
    return err ? err : total;
}

static int run(void *arg)
{
    (void)arg;
    static struct batch b1[BATCHES], b2[BATCHES];

    int64_t total = parallel_score(b1);
    printf("t=%lldms scored %d numbers in %d batches: %lld steps\n",
           (long long)knit_now(), N - 1, BATCHES, (long long)total);

    /* The same work as one job, for comparison. Not on this task: a
     * long computation here would hold the worker (the stall detector
     * would name it). */
    static struct batch all = {1, N, 0};
    knit_task *one = knit_spawn_blocking(score_batch, &all);
    if (!one || knit_join(one) != 0)
        return 1;
    uint64_t check = all.score;
    printf("t=%lldms single-job check: %s\n", (long long)knit_now(),
           (uint64_t)total == check ? "same" : "DIFFERENT");

    knit_scope s;
    knit_scope_enter(&s, knit_now()); /* a deadline already passed */
    int64_t late = parallel_score(b2);
    knit_scope_exit(&s);
    printf("t=%lldms with a deadline already passed: %s\n",
           (long long)knit_now(),
           late == -ETIMEDOUT ? "-ETIMEDOUT" : "unexpected");

    return (uint64_t)total == check && late == -ETIMEDOUT ? 0 : 1;
}

int main(void)
{
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.clock = KNIT_CLOCK_MANUAL;
    cfg.workers = 1;
    cfg.seed = 1;
    int r = knit_run(&cfg, run, NULL);
    if (r != 0)
        fprintf(stderr, "blocking_batches: %d\n", r);
    return r == 0 ? 0 : 1;
}
