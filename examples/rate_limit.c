// SPDX-License-Identifier: MIT
/*
 * Rate limiting (knit/patterns.h and knit_interval from knit/time.h):
 *
 * 1. A producer paced by a token bucket of 5 per second with a burst of
 *    3: the first three requests go at once, then one every 200 ms.
 * 2. Two tasks share one bucket; it serves them in the order they asked,
 *    whatever each asks for (a batch of 3 holds back a single behind it).
 * 3. Load shedding with try_acquire: requests arrive every 50 ms, the
 *    bucket allows 10 a second with a burst of 2; the rest get a 429
 *    instead of a queue.
 * 4. A keyed limiter, one bucket per host as a crawler needs: each host
 *    gets 4 requests a second with a burst of 2, except one whose
 *    robots.txt asks for a Crawl-delay of 1 s.
 * 5. Steady pacing without bursts is an interval, not a bucket: one tick
 *    every 250 ms.
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

/* ---- 1: a paced producer --------------------------------------------- */

static int producer(void)
{
    knit_ratelimit lim;
    int err = knit_ratelimit_init(&lim, 5.0, 3);
    if (err < 0)
        return err;
    for (int i = 1; i <= 7; i++) {
        if ((err = knit_ratelimit_acquire(&lim, 1)) < 0)
            return err; /* cancelled or timed out: took no token */
        printf("t=%5lldms   request %d sent\n", now(), i);
    }
    knit_ratelimit_destroy(&lim);
    return 0;
}

/* ---- 2: shared, FIFO ---------------------------------------------------- */

static knit_ratelimit shared;

struct client {
    const char *name; /* printed */
    unsigned n;       /* tokens per request */
    int requests;     /* how many */
};

static int client(void *arg)
{
    const struct client *c = arg;
    for (int i = 0; i < c->requests; i++) {
        int err = knit_ratelimit_acquire(&shared, c->n);
        if (err < 0)
            return err;
        printf("t=%5lldms   %s took %u token%s\n", now(), c->name, c->n,
               c->n == 1 ? "" : "s");
        if ((err = knit_yield()) < 0) /* let the other ask: a fair queue */
            return err;
    }
    return 0;
}

static int fifo(void)
{
    int err = knit_ratelimit_init(&shared, 10.0, 3);
    if (err < 0)
        return err;
    struct client batch = {"batch ", 3, 2};
    struct client single = {"single", 1, 3};
    knit_group g;
    knit_group_init(&g, 0);
    if ((err = knit_group_spawn(&g, client, &batch)) < 0 ||
        (err = knit_group_spawn(&g, client, &single)) < 0) {
        knit_group_cancel(&g);
        (void)knit_group_wait(&g);
        return err;
    }
    err = knit_group_wait(&g);
    knit_ratelimit_destroy(&shared);
    return err;
}

/* ---- 3: load shedding ---------------------------------------------------- */

static int shed(void)
{
    knit_ratelimit lim;
    int err = knit_ratelimit_init(&lim, 10.0, 2);
    if (err < 0)
        return err;
    int served = 0;
    int refused = 0;
    for (int i = 1; i <= 10; i++) {
        if (knit_ratelimit_try_acquire(&lim, 1) == 0) {
            served++;
            printf("t=%5lldms   request %2d: 200\n", now(), i);
        } else {
            refused++;
            printf("t=%5lldms   request %2d: 429 Too Many Requests\n", now(),
                   i);
        }
        if ((err = knit_sleep(50)) < 0)
            return err;
    }
    printf("t=%5lldms   %d served, %d refused\n", now(), served, refused);
    knit_ratelimit_destroy(&lim);
    return 0;
}

/* ---- 4: per host --------------------------------------------------------- */

struct site {
    knit_keyed_ratelimit *lim; /* shared by all hosts */
    const char *host;          /* the key */
    int pages;                 /* to fetch */
};

static int crawl(void *arg)
{
    const struct site *s = arg;
    for (int i = 1; i <= s->pages; i++) {
        int err = knit_keyed_ratelimit_acquire(s->lim, s->host, 1);
        if (err < 0)
            return err;
        printf("t=%5lldms   GET http://%s/page%d\n", now(), s->host, i);
    }
    return 0;
}

static int per_host(void)
{
    /* A host's bucket is dropped after 10 s unused (and full again). */
    knit_keyed_ratelimit *lim = knit_keyed_ratelimit_new(4.0, 2, 10000);
    if (!lim)
        return -ENOMEM;
    /* robots.txt of slow.example said "Crawl-delay: 1". */
    int err = knit_keyed_ratelimit_set_rate(lim, "slow.example", 1.0, 1);
    struct site sites[] = {
        {lim, "a.example", 4}, {lim, "b.example", 4}, {lim, "slow.example", 3}};
    knit_group g;
    knit_group_init(&g, 0);
    for (int i = 0; err == 0 && i < 3; i++)
        err = knit_group_spawn(&g, crawl, &sites[i]);
    if (err < 0)
        knit_group_cancel(&g);
    int werr = knit_group_wait(&g);
    if (err == 0)
        err = werr;
    printf("t=%5lldms   hosts tracked: %zu\n", now(),
           knit_keyed_ratelimit_size(lim));
    if (err == 0 && (err = knit_sleep(10000)) == 0)
        printf("t=%5lldms   hosts tracked after 10 s idle: %zu "
               "(slow.example keeps its Crawl-delay)\n",
               now(), knit_keyed_ratelimit_size(lim));
    knit_keyed_ratelimit_free(lim);
    return err;
}

/* ---- 5: an interval ------------------------------------------------------ */

static int paced(void)
{
    knit_interval iv;
    int err = knit_interval_init(&iv, 250, KNIT_MISSED_DELAY);
    if (err < 0)
        return err;
    for (int i = 1; i <= 4; i++) {
        int64_t tick = knit_interval_tick(&iv);
        if (tick < 0)
            return (int)tick;
        printf("t=%5lldms   item %d produced\n", now(), i);
    }
    return 0;
}

static int run(void *arg)
{
    (void)arg;
    int err;
    printf("1. token bucket, 5/s, burst 3\n");
    if ((err = producer()) < 0)
        return err;
    printf("2. one bucket (10/s, burst 3), two clients, FIFO\n");
    if ((err = fifo()) < 0)
        return err;
    printf("3. try_acquire sheds load (10/s, burst 2)\n");
    if ((err = shed()) < 0)
        return err;
    printf("4. per-host limits (4/s, burst 2; slow.example 1/s)\n");
    if ((err = per_host()) < 0)
        return err;
    printf("5. interval, one every 250ms\n");
    return paced();
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
        fprintf(stderr, "rate_limit: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
