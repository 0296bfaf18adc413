/* SPDX-License-Identifier: MIT */
/*
 * knit-crawl's storage: one SQLite database (WAL mode) holding the crawl's
 * options, its frontier and the pages fetched.
 *
 *   meta(key, value)           the options a resume must reuse
 *   frontier(url, depth, state, hops)
 *                              every URL ever queued: state 0 = to fetch,
 *                              1 = fetched (its page row exists),
 *                              2 = skipped (robots.txt)
 *   pages(url, final_url, status, depth, content_type, bytes, title,
 *         links_out, fetched_at, error, attempts, redirect_to)
 *
 * Every SQLite call runs on knit's blocking pool, so the crawler's worker
 * never waits on the disk. Results reach the database through one writer
 * task fed by a bounded channel (a producer that outruns the disk waits:
 * backpressure), which commits them in batched transactions. A page row,
 * the links it adds to the frontier and its frontier state change commit
 * in the same transaction, so after a crash (even SIGKILL) the database
 * is always a consistent prefix of the crawl: a page is either stored with
 * its links queued, or still queued itself and fetched again on resume.
 */
#ifndef CRAWL_STORE_H
#define CRAWL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct store;

/* The outcome of one URL, as the writer stores it. */
struct store_page {
    char *url;          /* the URL fetched (normalised) */
    char *final_url;    /* the URL that answered (== url: no redirects) */
    int status;         /* HTTP status; 0 when no response */
    int depth;
    char *content_type; /* or NULL */
    int64_t bytes;
    char *title;        /* or NULL */
    int links_out;      /* links found on the page */
    double fetched_at;  /* Unix time */
    char *error;        /* why it failed for good, or NULL */
    int attempts;
    char *redirect_to;  /* Location of a 3xx, or NULL */
    bool skipped;       /* robots.txt forbids it: frontier state 2, no row */
    /* URLs first seen on this page, queued at @depth + 1 (or at @depth
     * for a redirect's target, with hops + 1). */
    char **links;
    int nlinks;
    int link_depth;
    int link_hops;
    /* Called by the writer once the page's transaction ended (@err 0:
     * committed), before it frees the page; NULL: no call. It must not
     * block. The distributed crawl acks its entry only after this. */
    void (*committed)(void *ctx, int err);
    void *committed_ctx;
};

/* Frees what a store_page owns (its strings and links), not the struct. */
void store_page_clear(struct store_page *p);

/**
 * store_open() - open or create the database at @path (call from a task).
 * @fresh: start a new crawl: refuse (-EEXIST) a database that already has
 *         a frontier; false: resume, refusing (-ENOENT) one without.
 * Return: 0 and *@out, or a negative errno with a message in @err.
 */
int store_open(const char *path, bool fresh, struct store **out, char *err,
               size_t errlen);

/* Waits for the writer (if started) and closes the database. */
void store_close(struct store *s);

/* meta key/value access (from a task). get returns a malloc'd copy or
 * NULL. */
int store_meta_set(struct store *s, const char *key, const char *value);
char *store_meta_get(struct store *s, const char *key);

/*
 * Queue @urls (n of them) at @depth directly, in one transaction (the
 * seeds of a new crawl). Already known URLs are left as they are.
 */
int store_add_urls(struct store *s, char *const *urls, int n, int depth);

/*
 * Read the frontier back (resume): on_url(ctx, url, depth, hops, state)
 * for every row, in insertion order. Counts come back through @done
 * (state 1) and @queued (state 0).
 */
int store_load(struct store *s,
               void (*on_url)(void *ctx, const char *url, int depth, int hops,
                              int state),
               void *ctx);

/* Start the writer task; @capacity pages may wait in its channel. */
int store_writer_start(struct store *s, size_t capacity);

/*
 * Hand @p to the writer (which takes ownership of its contents and
 * zeroes *@p). Waits while the writer's channel is full. Cancellation
 * point: -ECANCELED / -ETIMEDOUT leave *@p to the caller.
 */
int store_submit(struct store *s, struct store_page *p);

/* Close the channel and wait until everything submitted is committed.
 * Returns 0, or the first SQLite error the writer met (negative). */
int store_writer_finish(struct store *s);

/* Pages committed so far, and transactions. */
uint64_t store_committed(const struct store *s);
uint64_t store_transactions(const struct store *s);

/* The last SQLite error message, or "". */
const char *store_error(const struct store *s);

/*
 * Export every page as one JSON object per line to @out_path ("-":
 * stdout). Runs on the blocking pool (call from a task).
 */
int store_export_jsonl(struct store *s, const char *out_path);

/* Write the url column of the pages matching an SQL condition, sorted,
 * one per line, to @out (tests, the demo's self-check). Returns the count
 * or a negative errno. */
int64_t store_list_urls(struct store *s, const char *where, FILE *out);

/* Count rows of pages matching an SQL condition (tests, summaries), or
 * a negative errno. */
int64_t store_count(struct store *s, const char *where);

#endif
