// SPDX-License-Identifier: MIT
/*
 * Retry with exponential backoff (knit/patterns.h). A simulated flaky
 * server is fetched four ways:
 *
 * 1. knit_retry_run: refused, then a hang cut short by a per-attempt
 *    timeout, then "503, Retry-After: 1 s", then success on the 4th try.
 *    The waits are 100 ms, 200 ms, then the server's 1000 ms (longer
 *    than the 400 ms knit would have waited).
 * 2. A 404 is not worth retrying: the predicate stops at once.
 * 3. The whole retry inside a 500 ms scope against a server that is
 *    down: it gives up as soon as the next attempt could not start
 *    before the deadline, instead of sleeping to it.
 * 4. Stepwise knit_backoff, for a loop that does its own waiting: two
 *    workers share one connection permit, and a worker that failed gives
 *    the permit back while it backs off, so the other one gets work done.
 *
 * Runs on the manual clock, so every printed time is exact. No jitter, so
 * the waits are plain to read; real clients want KNIT_JITTER_FULL.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

static long long now(void)
{
    return (long long)knit_now();
}

/* The errno names this program prints. */
static const char *errname(int err)
{
    return err >= 0               ? "ok"
           : err == -ECONNREFUSED ? "-ECONNREFUSED"
           : err == -ETIMEDOUT    ? "-ETIMEDOUT"
           : err == -EAGAIN       ? "-EAGAIN (503)"
           : err == -ENOENT       ? "-ENOENT (404)"
           : err == -ECANCELED    ? "-ECANCELED"
                                  : strerror(-err);
}

/* ---- 1: knit_retry_run ------------------------------------------------- */

struct server {
    const char *name;    /* printed */
    int64_t retry_after; /* the last answer's Retry-After, ms; 0: none */
    int down;            /* 1: every attempt is refused */
};

/* A request that hangs: the per-attempt timeout ends it. */
static int hang(void *arg)
{
    (void)arg;
    return knit_sleep(1000);
}

static int fetch_once(void *arg, int attempt)
{
    struct server *s = arg;
    long long start = now();
    int err;
    s->retry_after = 0;
    if (s->down || attempt == 1) {
        err = -ECONNREFUSED;
    } else if (attempt == 2) {
        err = knit_timeout(50, hang, NULL);
    } else if (attempt == 3) {
        err = knit_sleep(10); /* the server thinks, then answers 503 */
        s->retry_after = 1000;
        err = err < 0 ? err : -EAGAIN;
    } else {
        err = knit_sleep(20); /* the page */
        err = err < 0 ? err : 200;
    }
    printf("t=%lld..%lldms   %s attempt %d -> %s\n", start, now(), s->name,
           attempt, errname(err));
    return err;
}

/* 404 (-ENOENT) will not change by asking again; the rest may. */
static bool worth_retrying(int err, void *arg)
{
    (void)arg;
    return err != -ENOENT;
}

static int64_t retry_after(void *arg)
{
    const struct server *s = arg;
    return s->retry_after;
}

static int not_found(void *arg, int attempt)
{
    (void)arg;
    printf("t=%lld..%lldms   missing attempt %d -> %s\n", now(), now(), attempt,
           errname(-ENOENT));
    return -ENOENT;
}

/* ---- 4: stepwise backoff, the permit given back while waiting ---------- */

static knit_sem conn; /* one connection to share */

struct worker {
    const char *name; /* printed */
    int failures;     /* attempts that fail before one works */
    int64_t work;     /* ms an attempt holds the connection */
};

static int worker(void *arg)
{
    struct worker *w = arg;
    knit_backoff_policy p = {.initial_ms = 100, .max_attempts = 5};
    knit_backoff b;
    knit_backoff_init(&b, &p);
    for (;;) {
        int err = knit_sem_acquire(&conn, 1);
        if (err < 0)
            return err;
        long long start = now();
        err = knit_sleep(w->work);
        bool ok = err == 0 && knit_backoff_attempts(&b) >= w->failures;
        knit_sem_release(&conn, 1); /* before waiting, not after */
        if (err < 0)
            return err;
        if (ok) {
            printf("t=%lld..%lldms   %s: done after %d failed attempts\n",
                   start, now(), w->name, knit_backoff_attempts(&b));
            return 0;
        }
        int64_t d = knit_backoff_next(&b, 0);
        if (d < 0)
            return -EIO; /* out of attempts */
        printf("t=%lld..%lldms   %s: failed, permit released, retrying in "
               "%lldms\n",
               start, now(), w->name, (long long)d);
        if ((err = knit_sleep(d)) < 0)
            return err;
    }
}

static int run(void *arg)
{
    (void)arg;
    int bad = 0;

    printf("t=%lldms 1. flaky server, up to 5 attempts\n", now());
    struct server flaky = {"flaky", 0, 0};
    knit_retry r = {.policy = {.initial_ms = 100, .max_attempts = 5},
                    .retryable = worth_retrying,
                    .server_delay = retry_after};
    int res = knit_retry_run(&r, fetch_once, &flaky);
    printf("t=%lldms retry -> %d\n", now(), res);
    bad |= res != 200;

    printf("t=%lldms 2. a page that does not exist\n", now());
    res = knit_retry_run(&r, not_found, NULL);
    printf("t=%lldms retry -> %s, not retried\n", now(), errname(res));
    bad |= res != -ENOENT;

    printf("t=%lldms 3. server down, 500ms budget for everything\n", now());
    struct server down = {"down", 0, 1};
    r.policy.max_attempts = 0; /* no limit: the deadline bounds it */
    knit_scope s;
    int64_t deadline = knit_now() + 500;
    knit_scope_enter(&s, deadline);
    res = knit_retry_run(&r, fetch_once, &down);
    knit_scope_exit(&s);
    printf("t=%lldms retry -> %s (the next attempt was due after the "
           "deadline t=%lldms)\n",
           now(), errname(res), (long long)deadline);
    bad |= res != -ETIMEDOUT;

    printf("t=%lldms 4. two workers, one connection, stepwise backoff\n",
           now());
    knit_sem_init(&conn, 1);
    struct worker a = {"A", 2, 30};
    struct worker b = {"B", 0, 80};
    knit_group g;
    knit_group_init(&g, 0);
    if ((res = knit_group_spawn(&g, worker, &a)) < 0 ||
        (res = knit_group_spawn(&g, worker, &b)) < 0) {
        knit_group_cancel(&g);
        (void)knit_group_wait(&g);
        return res;
    }
    res = knit_group_wait(&g);
    printf("t=%lldms both workers -> %s\n", now(), errname(res));
    bad |= res != 0;

    if (bad) {
        fprintf(stderr, "retry_backoff: unexpected result\n");
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
        fprintf(stderr, "retry_backoff: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
