// SPDX-License-Identifier: MIT
/*
 * A connection pool (knit/patterns/pool.h), after the database pool of
 * the tokio tutorials: ten tasks run one query each over a pool of at
 * most three connections.
 *
 * Connections are fake: opening one takes 20 ms (a sleep on the manual
 * clock), a query 30 ms, a ping 1 ms. The server drops connection #2
 * while it is in use, so the query on it fails with -ECONNRESET; the task
 * releases it as broken, the pool closes it, and the next task opens a
 * fresh one in its place. The last task has a budget of 60 ms for
 * getting a connection and gives up when the queue is longer than that.
 * A connection idle for 50 ms or more is pinged before it is handed out.
 * At the end the program prints the pool's counters, closes the pool
 * and checks that every connection opened was closed exactly once.
 *
 * Runs on the manual clock with one worker, so every printed time is
 * exact.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>

#define TASKS 10

static long long now(void)
{
    return (long long)knit_now();
}

/* ---- the fake database ------------------------------------------------ */

struct conn {
    int id;      /* #1, #2, ... in the order opened */
    bool reset;  /* the server dropped it */
    int queries; /* run on it so far */
};

struct db {
    int opened; /* connections opened */
    int closed; /* connections closed */
};

static int conn_open(void *arg, void **res)
{
    struct db *db = arg;
    int err = knit_sleep(20); /* the handshake */
    if (err < 0)
        return err;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->id = ++db->opened;
    printf("t=%3lldms   open #%d\n", now(), c->id);
    *res = c;
    return 0;
}

static void conn_close(void *arg, void *res)
{
    struct db *db = arg;
    struct conn *c = res;
    db->closed++;
    printf("t=%3lldms   close #%d%s\n", now(), c->id,
           c->reset ? " (broken)" : "");
    free(c);
}

static int conn_ping(void *arg, void *res)
{
    (void)arg;
    struct conn *c = res;
    int err = knit_sleep(1);
    printf("t=%3lldms   ping #%d: %s\n", now(), c->id,
           c->reset ? "no answer" : "ok");
    return err < 0 ? err : c->reset ? -ECONNRESET : 0;
}

static int query(struct conn *c)
{
    c->queries++;
    int err = knit_sleep(30);
    if (err < 0)
        return err;
    if (c->id == 2 && c->queries == 2)
        c->reset = true; /* the server goes away mid-query */
    return c->reset ? -ECONNRESET : 0;
}

/* ---- the tasks --------------------------------------------------------- */

static knit_pool *pool;

struct job {
    int id;         /* task number */
    int64_t budget; /* ms allowed to get a connection; <= 0: no limit */
};

static int job(void *arg)
{
    const struct job *j = arg;
    int64_t start = knit_now();
    void *res;
    knit_scope s;
    knit_scope_enter(&s, j->budget > 0 ? start + j->budget : KNIT_FOREVER);
    int err = knit_pool_acquire(pool, &res);
    (void)knit_scope_exit(&s);
    if (err < 0) {
        printf("t=%3lldms task %d gave up after %lldms: %s\n", now(), j->id,
               (long long)(knit_now() - start), strerror(-err));
        return 0; /* expected for the impatient one */
    }
    struct conn *c = res;
    printf("t=%3lldms task %d got #%d after %lldms\n", now(), j->id, c->id,
           (long long)(knit_now() - start));
    err = query(c);
    printf("t=%3lldms task %d query on #%d: %s\n", now(), j->id, c->id,
           err < 0 ? strerror(-err) : "ok");
    /* Broken: destroyed instead of returned. On every path. */
    knit_pool_release(pool, c, err == -ECONNRESET);
    return 0;
}

static int run(void *arg)
{
    (void)arg;
    struct db db = {0};
    knit_pool_opts o = {
        .create = conn_open,
        .destroy = conn_close,
        .check = conn_ping,
        .arg = &db,
        .max_size = 3,
        .check_idle_ms = 50,
    };
    pool = knit_pool_new(&o);
    if (!pool)
        return -ENOMEM;

    struct job jobs[TASKS];
    knit_group g;
    knit_group_init(&g, 0);
    for (int i = 0; i < TASKS; i++) {
        jobs[i] = (struct job){.id = i, .budget = i == TASKS - 1 ? 60 : 0};
        int err = knit_group_spawn(&g, job, &jobs[i]);
        if (err < 0) {
            knit_group_cancel(&g);
            (void)knit_group_wait(&g);
            knit_pool_free(pool);
            return err;
        }
    }
    int err = knit_group_wait(&g);

    /* A while later the idle connections are pinged before reuse. */
    if (err == 0)
        err = knit_sleep(100);
    void *res;
    if (err == 0 && (err = knit_pool_acquire(pool, &res)) == 0) {
        printf("t=%3lldms main got #%d, idle 100ms, pinged first\n", now(),
               ((struct conn *)res)->id);
        knit_pool_release(pool, res, false);
    }

    knit_pool_stats st;
    knit_pool_stats_get(pool, &st);
    printf("t=%3lldms stats: %u open (%u idle, %u in use) of %u; %llu "
           "acquired, %llu opened, %llu broken, %llu closed, %llu timed out\n",
           now(), st.size, st.idle, st.in_use, st.max_size,
           (unsigned long long)st.acquired, (unsigned long long)st.created,
           (unsigned long long)st.broken, (unsigned long long)st.destroyed,
           (unsigned long long)st.timeouts);
    knit_pool_close(pool); /* closes the idle connections */
    knit_pool_free(pool);
    printf("t=%3lldms pool closed: %d opened, %d closed\n", now(), db.opened,
           db.closed);
    if (err == 0 && db.opened != db.closed)
        err = -EPROTO;
    return err;
}

int main(void)
{
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.clock = KNIT_CLOCK_MANUAL;
    cfg.workers = 1;
    cfg.seed = 1;
    int err = knit_run(&cfg, run, NULL);
    if (err < 0) {
        fprintf(stderr, "conn_pool: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
