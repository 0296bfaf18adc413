// SPDX-License-Identifier: MIT
/*
 * Barrier-coordinated batches (tokio's Barrier): data arrives in batches
 * of chunks, one worker task per chunk slot processes its chunk of each
 * batch in parallel with the others, and no batch is reported until every
 * chunk of it is done. The workers meet at a knit_barrier after each
 * chunk; knit_barrier_wait returns 1 for exactly one of them, the leader
 * (the last to arrive), which aggregates the batch while the results are
 * complete. The barrier is reused for every batch.
 *
 * Processing a chunk takes 10 ms per element, so the slowest chunk of a
 * batch sets its pace: the timings show each batch finishing when its
 * longest chunk does.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

#define BATCHES 3
#define WORKERS 4
#define CHUNK_MAX 5

struct chunk {
    int len;             /* elements in data */
    int data[CHUNK_MAX]; /* the values to process */
};

static const struct chunk input[BATCHES][WORKERS] = {
    {{2, {1, 2}}, {3, {3, 4, 5}}, {1, {6}}, {2, {7, 8}}},
    {{4, {1, 1, 1, 1}}, {1, {2}}, {2, {3, 3}}, {1, {4}}},
    {{1, {9}}, {1, {8}}, {5, {1, 2, 3, 4, 5}}, {2, {6, 7}}},
};

static long results[BATCHES][WORKERS]; /* one slot each: no sharing */
static knit_barrier batch_done;

static long long now(void)
{
    return (long long)knit_now();
}

/* The work on one chunk: the sum of squares, 10 ms per element. */
static int process(const struct chunk *c, long *out)
{
    int err = knit_sleep(10 * c->len);
    if (err < 0)
        return err;
    long sum = 0;
    for (int i = 0; i < c->len; i++)
        sum += (long)c->data[i] * c->data[i];
    *out = sum;
    return 0;
}

static int worker(void *arg)
{
    int w = (int)(intptr_t)arg;
    for (int b = 0; b < BATCHES; b++) {
        int err = process(&input[b][w], &results[b][w]);
        if (err < 0)
            return err;
        int len = input[b][w].len;
        printf("t=%3lldms batch %d: worker %d done (%d element%s)\n", now(), b,
               w, len, len == 1 ? "" : "s");
        int leader = knit_barrier_wait(&batch_done);
        if (leader < 0)
            return leader;
        if (leader) {
            long total = 0;
            for (int i = 0; i < WORKERS; i++)
                total += results[b][i];
            printf("t=%3lldms batch %d: complete, worker %d aggregates: "
                   "total %ld\n",
                   now(), b, w, total);
        }
    }
    return 0;
}

static int run(void *arg)
{
    (void)arg;
    knit_group g;
    knit_barrier_init(&batch_done, WORKERS);
    knit_group_init(&g, KNIT_GROUP_FAIL_FAST);
    for (int w = 0; w < WORKERS; w++) {
        int err = knit_group_spawn(&g, worker, (void *)(intptr_t)w);
        if (err < 0) {
            knit_group_cancel(&g);
            (void)knit_group_wait(&g);
            return err;
        }
    }
    int err = knit_group_wait(&g);
    if (err < 0)
        return err;
    printf("t=%3lldms all %d batches processed\n", now(), BATCHES);
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
        fprintf(stderr, "barrier_batch: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
