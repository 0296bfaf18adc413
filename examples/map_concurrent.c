// SPDX-License-Identifier: MIT
/*
 * Bounded concurrency (tokio's buffer_unordered / buffered): fetch six
 * pages, at most three at a time. The fetches are simulated with sleeps
 * on the manual clock, so every time printed is exact.
 *
 *   1. a stream in completion order (buffer_unordered(3)): each result is
 *      handled as soon as its fetch ends, and its slot starts the next;
 *   2. the same in input order (buffered(3)): a fetch that ends early
 *      waits, holding its slot, until those before it are handed back;
 *   3. the whole array at once with knit_map_concurrent, one page missing
 *      (404): first with errors collected per page, then fail fast, where
 *      the 404 cancels the fetches in progress.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

#define LIMIT 3

struct site {
    const char *path; /* printed */
    int64_t latency;  /* ms the fetch takes */
    int status;       /* the HTTP status it answers */
};

struct page {
    int status;   /* 200 */
    size_t bytes; /* body length */
};

/* Everything a run prints times relative to its start. */
struct run {
    int64_t t0;       /* knit_now() when the part started */
    int inflight;     /* fetches in progress */
    int max_inflight; /* the most at once */
    bool quiet;       /* part 3: print no starts */
};

static long long since(const struct run *r)
{
    return (long long)(knit_now() - r->t0);
}

/* knit_map_fn: one fetch. */
static int fetch(void *ctx, size_t index, void *item, void *result)
{
    struct run *r = ctx;
    const struct site *s = item;
    struct page *p = result;
    (void)index;
    r->inflight++;
    if (r->inflight > r->max_inflight)
        r->max_inflight = r->inflight;
    if (!r->quiet)
        printf("t=%3lldms   fetch %s (%d in flight)\n", since(r), s->path,
               r->inflight);
    int err = knit_sleep(s->latency); /* the request */
    r->inflight--;
    if (err < 0) {
        printf("t=%3lldms   fetch %s: %s\n", since(r), s->path,
               err == -ECANCELED ? "cancelled" : strerror(-err));
        return err;
    }
    if (s->status == 404)
        return -ENOENT;
    p->status = s->status;
    p->bytes = 1000 + 10 * (size_t)s->latency;
    return 0;
}

static struct site sites[] = {
    {"/a", 120, 200}, {"/b", 40, 200}, {"/c", 80, 200},
    {"/d", 20, 200},  {"/e", 60, 200}, {"/f", 30, 200},
};
#define NSITES (sizeof(sites) / sizeof(sites[0]))

/* Parts 1 and 2: take the results one at a time as they come. */
static int stream(bool ordered)
{
    struct run r = {.t0 = knit_now()};
    knit_map_opts o = {.limit = LIMIT, .ordered = ordered};
    knit_map *m;
    int err = knit_map_start(&m, &o, sites, NSITES, sizeof(sites[0]),
                             sizeof(struct page), fetch, &r);
    if (err < 0)
        return err;
    size_t i;
    int status;
    struct page p;
    while ((err = knit_map_next(m, &i, &status, &p)) == 0) {
        if (status < 0)
            printf("t=%3lldms got %s: %s\n", since(&r), sites[i].path,
                   strerror(-status));
        else
            printf("t=%3lldms got %s: %d, %zu bytes\n", since(&r),
                   sites[i].path, p.status, p.bytes);
    }
    knit_map_free(m);
    if (err != -EPIPE) /* -EPIPE: every result taken */
        return err;
    printf("t=%3lldms all %zu pages, at most %d fetches at once\n", since(&r),
           NSITES, r.max_inflight);
    return r.max_inflight == LIMIT ? 0 : -EPROTO;
}

/* Part 3: the whole array, results in place, one call. */
static int collect(bool fail_fast)
{
    struct run r = {.t0 = knit_now(), .quiet = true};
    struct page pages[NSITES] = {{0}};
    int status[NSITES];
    knit_map_opts o = {.limit = LIMIT, .fail_fast = fail_fast};
    ssize_t n = knit_map_concurrent(&o, sites, NSITES, sizeof(sites[0]), pages,
                                    sizeof(pages[0]), status, fetch, &r);
    if (fail_fast)
        printf("t=%3lldms fail fast -> %s, the others cancelled:\n", since(&r),
               n == -ENOENT ? "-ENOENT (the 404)" : "?");
    else
        printf("t=%3lldms errors collected -> %zd of %zu failed:\n", since(&r),
               n, NSITES);
    printf("         ");
    for (size_t i = 0; i < NSITES; i++)
        printf(" %s %s%s", sites[i].path,
               status[i] == 0            ? "200"
               : status[i] == -ENOENT    ? "404"
               : status[i] == -ECANCELED ? "-ECANCELED"
                                         : "?",
               i + 1 < NSITES ? "," : "\n");
    if (fail_fast)
        return n == -ENOENT ? 0 : -EPROTO;
    return n == 1 ? 0 : (n < 0 ? (int)n : -EPROTO);
}

static int run(void *arg)
{
    (void)arg;
    int err;
    printf("1. completion order (buffer_unordered), limit %d\n", LIMIT);
    if ((err = stream(false)) < 0)
        return err;
    printf("2. input order (buffered), limit %d\n", LIMIT);
    if ((err = stream(true)) < 0)
        return err;
    sites[3].status = 404; /* /d goes missing */
    printf("3. the whole array at once, /d answers 404\n");
    if ((err = collect(false)) < 0)
        return err;
    return collect(true);
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
        fprintf(stderr, "map_concurrent: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
