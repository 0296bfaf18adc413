/* SPDX-License-Identifier: MIT */
/*
 * Distributed crawling: several knit-crawl processes share one crawl
 * through Redis (docs/crawl.md, "Distributed mode"). Keys of crawl NAME:
 *
 *   kc:{NAME}:frontier   stream of URLs to fetch (fields url, depth, hops),
 *                        consumer group "crawlers", one consumer a process
 *   kc:{NAME}:seen       set of every URL ever added (exact, no Bloom)
 *   kc:{NAME}:stats      hash: added, acked (first acks), pages (all acks),
 *                        dups (acks of entries already acked), reclaimed
 *   kc:{NAME}:pages      stream of page summaries (url, status, bytes,
 *                        consumer), capped near 100,000 entries
 *   kc:{NAME}:meta       hash: created, seeds
 *   kc:{NAME}:rate:HOST  token bucket of one host (expires when idle)
 *
 * The guarantees rest on one order: a process adds a page's links to the
 * frontier, then stores the page locally, then XACKs its entry. So an
 * entry not acked is either waiting, held by a live process (which keeps
 * it fresh, dist_heartbeat), or held by a dead one (reclaimed by the
 * others after the reclaim time); and the crawl is finished exactly when
 * every entry ever added was acked (added == acked), since only a holder
 * of an unacked entry can still add URLs.
 *
 * Every call runs in a task of the crawler's worker and retries over a
 * lost Redis connection (with backoff) until it works, the caller's scope
 * ends, or Redis stays unreachable for a minute.
 */
#ifndef CRAWL_DIST_H
#define CRAWL_DIST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct dist;

struct dist_opts {
    const char *url;      /* redis://HOST[:PORT][/DB] */
    const char *crawl_id; /* NAME: letters, digits, '.', '_', '-' (1-64) */
    const char *consumer; /* this process in the group; NULL: HOST-PID */
    int64_t reclaim_ms;   /* an entry idle this long is reclaimed */
    FILE *log;            /* reclaims and reconnections are reported */
};

/* Whether @id is a valid crawl id (see dist_opts). */
int dist_check_id(const char *id);

/**
 * dist_open() - connect to Redis and join crawl o->crawl_id (creating its
 * stream and consumer group if needed). Call from a task.
 * Return: 0 and *@out, or a negative errno with a message in @err.
 */
int dist_open(const struct dist_opts *o, struct dist **out, char *err,
              size_t errlen);

/* Leave the crawl (this process's consumer stays, with what it holds). */
void dist_close(struct dist *d);

/**
 * dist_add() - add those of @urls (normalised, in scope) never seen in this
 * crawl to the frontier, at @depth with @hops, atomically (a Lua script).
 * Return: the number added, or a negative errno.
 */
int dist_add(struct dist *d, char *const *urls, int n, int depth, int hops);

/**
 * dist_take() - up to @max entries for this process: first those idle
 * longer than the reclaim time (a stalled or dead process's), then new
 * ones, waiting up to about 300 ms for them. Calls
 * on_entry(ctx, id, url, depth, hops) for each.
 * Return: the number of entries, or a negative errno.
 */
int dist_take(struct dist *d, int max,
              void (*on_entry)(void *ctx, const char *id, const char *url,
                               int depth, int hops),
              void *ctx);

/**
 * dist_ack() - entry @id is done: its page is stored locally and its links
 * are in the frontier. Also adds a summary of the page (@url, @status,
 * @bytes) to the pages stream. Return: 0 or a negative errno.
 */
int dist_ack(struct dist *d, const char *id, const char *url, int status,
             int64_t bytes);

/* Stop keeping entry @id fresh: this process gives it up unacked (its
 * page could not be finished), so it is reclaimed after the reclaim time,
 * by this process or another. dist_ack does it too, even when it fails. */
void dist_release(struct dist *d, const char *id);

/**
 * dist_rate_acquire() - take a token from @host's shared bucket (@rate per
 * second, burst 1), waiting as long as the bucket says.
 * Return: 0 or a negative errno (-ECANCELED / -ETIMEDOUT from the scope).
 */
int dist_rate_acquire(struct dist *d, const char *host, double rate);

/* 1 when the whole crawl is finished (see above), 0 when not, or a
 * negative errno. */
int dist_finished(struct dist *d);

/* Entries this process reclaimed from others. */
uint64_t dist_reclaimed(const struct dist *d);

/**
 * dist_status() - print the progress of crawl @crawl_id on @url to @out
 * (call from a task). Return: 0, or a negative errno with a message in
 * @err.
 */
int dist_status(const char *url, const char *crawl_id, FILE *out, char *err,
                size_t errlen);

#endif
