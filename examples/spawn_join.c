// SPDX-License-Identifier: MIT
/*
 * Spawn and join: the main task starts a few tasks that each compute a
 * Fibonacci number (sleeping to stand in for slow work), then joins them
 * in the order it spawned them. knit_join waits for a task, returns its
 * function's result and frees it; a task that has already ended is joined
 * at once. A task reports failure by returning a negative errno, here
 * -EINVAL for a bad input, and its joiner receives that value unchanged.
 *
 * The runtime uses the manual clock, so every sleep is instant and exact
 * and the printed times are the same on every run.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

struct job {
    int id; /* printed with every line */
    int n;  /* compute fib(n); negative n is an error */
};

static int fib(int n)
{
    int a = 0;
    int b = 1;
    for (int i = 0; i < n; i++) {
        int next = a + b;
        a = b;
        b = next;
    }
    return a;
}

/* A task body: its int result is what knit_join hands back. */
static int fib_task(void *arg)
{
    const struct job *j = arg;
    if (j->n < 0) {
        printf("t=%lldms task %d: fib(%d) rejected, -EINVAL\n",
               (long long)knit_now(), j->id, j->n);
        return -EINVAL;
    }
    int err = knit_sleep(10 * (int64_t)j->n); /* the "slow" part */
    if (err < 0)
        return err;
    int r = fib(j->n);
    printf("t=%lldms task %d: fib(%d) = %d\n", (long long)knit_now(), j->id,
           j->n, r);
    return r;
}

static int run(void *arg)
{
    (void)arg;
    static const struct job jobs[] = {{1, 10}, {2, 20}, {3, 5}, {4, -1}};
    enum { NJOBS = sizeof(jobs) / sizeof(jobs[0]) };
    /* Every expected result, the error included. */
    static const int want[NJOBS] = {55, 6765, 5, -EINVAL};
    knit_task *tasks[NJOBS];

    for (int i = 0; i < NJOBS; i++) {
        tasks[i] = knit_spawn(fib_task, (void *)&jobs[i]);
        if (!tasks[i]) {
            fprintf(stderr, "spawn_join: knit_spawn: out of memory\n");
            /* Joining what was spawned keeps the runtime leak-free. */
            while (i-- > 0)
                (void)knit_join(tasks[i]);
            return -ENOMEM;
        }
    }
    printf("t=%lldms main: spawned %d tasks\n", (long long)knit_now(),
           (int)NJOBS);

    int failed = 0;
    for (int i = 0; i < NJOBS; i++) {
        int r = knit_join(tasks[i]); /* tasks[i] is freed from here on */
        if (r >= 0)
            printf("t=%lldms main: joined task %d -> %d\n",
                   (long long)knit_now(), jobs[i].id, r);
        else
            printf("t=%lldms main: joined task %d -> %s\n",
                   (long long)knit_now(), jobs[i].id,
                   r == -EINVAL ? "-EINVAL" : strerror(-r));
        if (r != want[i]) {
            fprintf(stderr, "spawn_join: task %d returned %d, expected %d\n",
                    jobs[i].id, r, want[i]);
            failed = 1;
        }
    }
    return failed ? -EPROTO : 0;
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
        fprintf(stderr, "spawn_join: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
