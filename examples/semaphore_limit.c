// SPDX-License-Identifier: MIT
/*
 * A semaphore-limited section (tokio's Semaphore, Go's buffered-channel
 * semaphore): ten tasks want to use a resource that takes at most three
 * users at once, say a remote API with a concurrency limit. Each task
 * takes a permit with knit_sem_acquire before entering the section and
 * gives it back with knit_sem_release when it leaves; the others wait in
 * FIFO order. The program counts the tasks inside the section and prints
 * the highest count it saw, which must be 3, and when each task entered
 * and left.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

#define TASKS 10
#define LIMIT 3

static knit_sem permits; /* LIMIT permits: the section's capacity */
static int inside;       /* tasks in the section now */
static int max_inside;   /* the most ever seen at once */

struct job {
    int id;        /* printed */
    int64_t work;  /* ms spent inside the section */
    int64_t start; /* when it asked for a permit */
};

static long long now(void)
{
    return (long long)knit_now();
}

static int job(void *arg)
{
    struct job *j = arg;
    j->start = knit_now();
    int err = knit_sem_acquire(&permits, 1);
    if (err < 0)
        return err; /* cancelled: took no permit, nothing to give back */
    inside++;
    if (inside > max_inside)
        max_inside = inside;
    printf("t=%3lldms task %d enters after waiting %3lldms (%d inside)\n",
           now(), j->id, (long long)(knit_now() - j->start), inside);
    err = knit_sleep(j->work);
    inside--;
    printf("t=%3lldms task %d leaves\n", now(), j->id);
    knit_sem_release(&permits, 1); /* on every path, like a guard */
    return err;
}

static int run(void *arg)
{
    (void)arg;
    struct job jobs[TASKS];
    knit_group g;
    knit_sem_init(&permits, LIMIT);
    knit_group_init(&g, 0);
    for (int i = 0; i < TASKS; i++) {
        jobs[i].id = i;
        jobs[i].work = 40 + 20 * (i % 3);
        int err = knit_group_spawn(&g, job, &jobs[i]);
        if (err < 0) {
            knit_group_cancel(&g);
            (void)knit_group_wait(&g);
            return err;
        }
    }
    int err = knit_group_wait(&g);
    if (err < 0)
        return err;
    printf("t=%3lldms all done: at most %d of %d tasks inside at once "
           "(limit %d), %zu permits free\n",
           now(), max_inside, TASKS, LIMIT, knit_sem_available(&permits));
    return max_inside == LIMIT ? 0 : -EPROTO;
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
        fprintf(stderr, "semaphore_limit: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
