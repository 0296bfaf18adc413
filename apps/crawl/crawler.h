/* SPDX-License-Identifier: MIT */
/*
 * The crawl engine of knit-crawl.
 *
 * One task per host (its actor) owns the host's queue and robots.txt and
 * dispatches fetches, each in a task of its own, once it holds a host
 * slot (--per-host), a token of the host's rate limiter (--rate) and a
 * global slot (--concurrency), so a slow or throttled host never holds up
 * the others. A fetch retries timeouts, connection errors, 429 and 5xx
 * with exponential backoff and jitter (honouring Retry-After), releasing
 * its slots while it waits. Its result, with the links it found first,
 * goes to the store's writer (store.h); only then are the links queued,
 * so the database never holds a page whose links are lost.
 *
 * Stopping: the first SIGINT/SIGTERM stops intake (no new fetch starts),
 * lets the fetches in flight finish within the grace period, cancels what
 * is left (those URLs stay queued in the database), flushes the store and
 * returns CRAWL_INTERRUPTED; a second signal skips the grace period.
 */
#ifndef CRAWL_CRAWLER_H
#define CRAWL_CRAWLER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses of knit-crawl (documented in --help and the README). */
enum {
    CRAWL_OK = 0,           /* finished (pages may have failed: see summary) */
    CRAWL_FAILED = 1,       /* could not run: database, network setup, ... */
    CRAWL_USAGE = 2,        /* bad command line */
    CRAWL_INTERRUPTED = 130 /* stopped by SIGINT/SIGTERM; resume continues */
};

struct crawl_opts {
    char **seeds; /* start URLs (a new crawl) */
    int nseeds;
    const char *db_path;
    int concurrency;    /* fetches in flight, all hosts */
    int per_host;       /* fetches in flight per host */
    double rate;        /* requests per second per host; 0 = no limit */
    int max_depth;      /* link hops from a seed; -1 = no limit */
    long max_pages;     /* fetches to start; 0 = no limit */
    int timeout_ms;     /* per attempt */
    int retries;        /* retries after the first attempt */
    int64_t backoff_ms; /* first retry delay */
    bool same_host;     /* only the seeds' host names (any port) */
    const char *include_re; /* POSIX ERE a URL must match, or NULL */
    const char *exclude_re; /* POSIX ERE a URL must not match, or NULL */
    const char *user_agent;
    bool ignore_robots;
    int grace_ms;    /* in-flight time allowed after Ctrl-C */
    int progress;    /* 0 quiet, 1 plain lines, 2 live line (a terminal) */
    FILE *log;       /* progress and summary (stderr) */
    /* Distributed mode (dist.h): the frontier, the seen-set and the rate
     * limits live in Redis and this process is one of the crawlers; NULL:
     * a local crawl. */
    struct dist *dist;
};

/* Sets the defaults: 16 in flight, 4 per host, 10 req/s per host, ... */
void crawl_opts_default(struct crawl_opts *o);

struct crawl_summary {
    uint64_t fetched;     /* pages stored this run (any status) */
    uint64_t html;        /* of which 2xx HTML pages */
    uint64_t failed;      /* permanent failures (after retries) */
    uint64_t http_errors; /* 4xx answers, stored as they are */
    uint64_t retries;     /* attempts beyond the first */
    uint64_t redirects;   /* 3xx answers followed */
    uint64_t robots_skipped;
    uint64_t queued;      /* left in the frontier (interrupted, max pages) */
    uint64_t reclaimed;   /* distributed: entries taken over from others */
    bool distributed;
    double seconds;
    bool interrupted;
};

/*
 * crawl_run() - run a crawl as configured by @o (call from a task).
 * @resume: continue the crawl stored in o->db_path (its options are read
 *          back from it; o's seeds and scope are ignored). Not with
 *          o->dist: a distributed crawl resumes by starting a process.
 * Return: a CRAWL_* exit status; @err holds a message when CRAWL_FAILED.
 */
int crawl_run(const struct crawl_opts *o, bool resume,
              struct crawl_summary *sum, char *err, size_t errlen);

/* Print @s as the end-of-crawl summary. */
void crawl_summary_print(FILE *f, const struct crawl_summary *s,
                         const char *db_path);

#endif
