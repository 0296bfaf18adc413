// SPDX-License-Identifier: MIT
/*
 * Callback chains the knit way. In Rust a chain of asynchronous steps is
 * written with combinators:
 *
 *     fetch(id)
 *         .and_then(|raw| parse(raw))       // only on success
 *         .or_else(|e| from_cache(id, e))   // only on failure
 *         .and_then(|nums| store(nums))
 *         .then(|res| log(res))             // always
 *
 * and nothing runs until the chain is awaited (futures are lazy). In
 * knit each step is a plain function call that may block, so the chain
 * is sequential code in a task: `and_then` is "if it failed, stop here",
 * `or_else` is "if it failed, try this instead", `then` is the code after
 * the steps, run on every path. The lazy part is a lazy task
 * (knit_task_opts.lazy): spawned now, it runs only when first joined.
 *
 * Three requests show the three paths: all steps succeed; the fetch
 * fails and the cache answers instead; the parse fails, which skips the
 * store and reaches the final step with the error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

struct request {
    int id;
    const char *payload; /* what the server answers; NULL: unreachable */
    char raw[32];        /* the fetched text */
    int nums[4];         /* the parsed numbers */
    int n;
    int sum; /* what store computed */
};

static long long now(void)
{
    return (long long)knit_now();
}

static const char *err_name(int err)
{
    switch (err) {
    case -ECONNREFUSED:
        return "-ECONNREFUSED";
    case -EBADMSG:
        return "-EBADMSG";
    default:
        return strerror(-err);
    }
}

/* Step 1: fetch over the network (50 ms). */
static int fetch(struct request *r)
{
    int err = knit_sleep(50);
    if (err)
        return err;
    if (!r->payload)
        return -ECONNREFUSED;
    snprintf(r->raw, sizeof(r->raw), "%s", r->payload);
    printf("t=%lldms request %d: fetched \"%s\"\n", now(), r->id, r->raw);
    return 0;
}

/* The fallback: a local cache (10 ms). */
static int from_cache(struct request *r, int why)
{
    printf("t=%lldms request %d: fetch failed (%s), asking the cache\n", now(),
           r->id, err_name(why));
    int err = knit_sleep(10);
    if (err)
        return err;
    snprintf(r->raw, sizeof(r->raw), "1,2,3");
    printf("t=%lldms request %d: cached \"%s\"\n", now(), r->id, r->raw);
    return 0;
}

/* Step 2: parse comma-separated numbers (no waiting). */
static int parse(struct request *r)
{
    r->n = 0;
    for (const char *p = r->raw; *p && r->n < 4;) {
        if (*p < '0' || *p > '9')
            return -EBADMSG;
        int v = 0;
        while (*p >= '0' && *p <= '9')
            v = v * 10 + (*p++ - '0');
        r->nums[r->n++] = v;
        if (*p == ',')
            p++;
    }
    printf("t=%lldms request %d: parsed %d numbers\n", now(), r->id, r->n);
    return 0;
}

/* Step 3: store them (30 ms); the result is their sum. */
static int store(struct request *r)
{
    int err = knit_sleep(30);
    if (err)
        return err;
    r->sum = 0;
    for (int i = 0; i < r->n; i++)
        r->sum += r->nums[i];
    printf("t=%lldms request %d: stored\n", now(), r->id);
    return r->sum;
}

/* The whole chain, as one task. */
static int chain(void *arg)
{
    struct request *r = arg;
    printf("t=%lldms request %d: chain starts\n", now(), r->id);
    int res = fetch(r);
    if (res < 0 && res != -ECANCELED)
        res = from_cache(r, res); /* or_else */
    if (res >= 0)
        res = parse(r); /* and_then */
    if (res >= 0)
        res = store(r); /* and_then */
    /* then: runs on every path, with the result or the first error. */
    if (res >= 0)
        printf("t=%lldms request %d: done, sum %d\n", now(), r->id, res);
    else
        printf("t=%lldms request %d: failed with %s\n", now(), r->id,
               err_name(res));
    return res;
}

static int run(void *arg)
{
    (void)arg;
    struct request rs[] = {
        {.id = 1, .payload = "42,17,8"},
        {.id = 2, .payload = NULL},
        {.id = 3, .payload = "4,x"},
    };
    knit_task *ts[3];
    /* Building the chains runs nothing: they are lazy tasks. */
    knit_task_opts lazy = {.name = "chain", .lazy = true};
    for (int i = 0; i < 3; i++) {
        if (!(ts[i] = knit_spawn_with(&lazy, chain, &rs[i]))) {
            while (i-- > 0) {
                knit_cancel(ts[i]); /* never started: it never runs */
                knit_join(ts[i]);
            }
            return -ENOMEM;
        }
    }
    printf("t=%lldms main: 3 chains built, none started\n", now());
    int err = knit_sleep(100);
    printf("t=%lldms main: awaiting them one by one\n", now());
    for (int i = 0; i < 3; i++) {
        int res = knit_join(ts[i]); /* starts the chain, waits for it */
        printf("t=%lldms main: request %d -> %d\n", now(), rs[i].id, res);
    }
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
        fprintf(stderr, "then_chain: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
