// SPDX-License-Identifier: MIT
/*
 * Asynchronous one-time initialisation with knit_once (tokio's
 * OnceCell::get_or_try_init).
 *
 * Six request handlers need a configuration that takes 100 ms to load.
 * The first one to ask runs the loader; those that ask meanwhile wait for
 * it instead of loading again. The first load fails (the config server
 * is unreachable): its caller gets the error and nothing is stored, so
 * the next waiting handler runs the loader again. That load succeeds; its
 * result is stored and every handler, then and later, gets it at once.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

struct config {
    int version;
    int max_conns;
};

static knit_once config_once; /* all-zero: not run yet */
static struct config config;  /* written once, by the successful load */
static int loads;             /* how many times the loader ran */

static long long now(void)
{
    return (long long)knit_now();
}

/* The loader: slow, and the first attempt fails. >= 0 is stored. */
static int load_config(void *arg)
{
    (void)arg;
    int attempt = ++loads;
    printf("t=%lldms   loader: attempt %d\n", now(), attempt);
    int err = knit_sleep(100); /* fetch it from a config server */
    if (err)
        return err;
    if (attempt == 1) {
        printf("t=%lldms   loader: config server unreachable\n", now());
        return -EHOSTUNREACH;
    }
    config = (struct config){.version = 7, .max_conns = 64};
    printf("t=%lldms   loader: loaded version %d\n", now(), config.version);
    return 0;
}

/* get_or_try_init: the config, or NULL and *err. */
static const struct config *get_config(int *err)
{
    int r = knit_once_call(&config_once, load_config, NULL);
    if (r < 0) {
        *err = r;
        return NULL;
    }
    return &config;
}

struct request {
    int id;
    int64_t at; /* when it arrives */
};

static int handler(void *arg)
{
    const struct request *rq = arg;
    int id = rq->id;
    int err = knit_sleep_until(rq->at);
    if (err)
        return err;
    printf("t=%lldms handler %d: needs the config%s\n", now(), id,
           knit_once_is_done(&config_once) ? " (ready)" : "");
    const struct config *c = get_config(&err);
    if (!c) {
        printf("t=%lldms handler %d: no config (%s), answers 503\n", now(), id,
               err == -EHOSTUNREACH ? "-EHOSTUNREACH" : strerror(-err));
        return 0;
    }
    printf("t=%lldms handler %d: config version %d, max_conns %d\n", now(), id,
           c->version, c->max_conns);
    return 0;
}

static int run(void *arg)
{
    (void)arg;
    knit_group g;
    knit_group_init(&g, 0);
    static const struct request rqs[] = {{1, 0},  {2, 20}, {3, 40},
                                         {4, 60}, {5, 80}, {6, 240}};
    for (int i = 0; i < 6; i++) {
        if (knit_group_spawn(&g, handler, (void *)&rqs[i]) < 0) {
            knit_group_cancel(&g);
            break;
        }
    }
    int err = knit_group_wait(&g);
    printf("%d loads for 6 handlers\n", loads);
    return err;
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
        fprintf(stderr, "once_cell: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
