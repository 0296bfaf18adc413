/* SPDX-License-Identifier: MIT */
/*
 * robots.h - robots.txt rules for one user agent (RFC 9309).
 *
 * knit-crawl fetches /robots.txt once per host and keeps only what applies
 * to itself: crawl_robots_parse() picks the group (or the merged groups)
 * naming the crawler's product token, else the "*" group, else none, and
 * keeps its Allow/Disallow rules and Crawl-delay. crawl_robots_allowed()
 * then answers for each request target of that host.
 *
 * Which object to use when robots.txt cannot be had is the crawler's call
 * (RFC 9309 2.3.1.3-4): a 4xx means no rules (crawl_robots_allow_all()),
 * a 5xx or an unreachable host means no crawling for now
 * (crawl_robots_disallow_all()).
 *
 * Objects are immutable once made, so one object may be read by several
 * threads at once; nothing here blocks or touches the runtime.
 */
#ifndef CRAWL_ROBOTS_H
#define CRAWL_ROBOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of robots.txt considered; the rest is ignored (RFC 9309 2.5). */
#define CRAWL_ROBOTS_MAX_SIZE (500 * 1024)
/* Allow/Disallow rules kept per object; later ones are ignored. */
#define CRAWL_ROBOTS_MAX_RULES 10000
/* Longest Allow/Disallow value kept (bytes); longer rules are ignored. */
#define CRAWL_ROBOTS_MAX_VALUE 8192
/* Crawl-delay ceiling in milliseconds. */
#define CRAWL_ROBOTS_MAX_DELAY_MS 60000

/* The rules that apply to one user agent. Opaque. */
struct crawl_robots;

/**
 * crawl_robots_parse() - keep the rules of robots.txt that apply to @ua.
 * @txt: the file's bytes; may hold NULs or garbage, lack a final newline,
 *       use LF, CRLF or CR line ends and start with a UTF-8 BOM.
 * @len: bytes at @txt; only the first CRAWL_ROBOTS_MAX_SIZE are read.
 * @ua:  the crawler's user agent; only its product token (the leading
 *       letters, digits, '-' and '_', e.g. "knit-crawl" of
 *       "knit-crawl/1.0") is used, compared case-insensitively. NULL or an
 *       empty token matches only the "*" group.
 *
 * Every group naming @ua is merged (RFC 9309 2.2.1); when none does, the
 * "*" groups are used; when there is none either, everything is allowed.
 * Unknown lines (Sitemap, Host, garbage) are skipped and do not end a group.
 * Return: a new object, freed with crawl_robots_free(); NULL only when out
 * of memory.
 */
struct crawl_robots *crawl_robots_parse(const char *txt, size_t len,
                                        const char *ua);

/**
 * crawl_robots_allow_all() - an object allowing every path, no delay
 * (for a robots.txt answered with 4xx).
 * Return: a new object; NULL only when out of memory.
 */
struct crawl_robots *crawl_robots_allow_all(void);

/**
 * crawl_robots_disallow_all() - an object refusing every path but
 * "/robots.txt", no delay (for a 5xx or unreachable robots.txt).
 * Return: a new object; NULL only when out of memory.
 */
struct crawl_robots *crawl_robots_disallow_all(void);

/**
 * crawl_robots_allowed() - whether @path may be fetched.
 * @r:    the host's rules.
 * @path: the request target: path plus optional "?query", starting with
 *        '/' (NULL or "" stand for "/").
 *
 * The matching rule with the longest pattern wins and Allow wins a tie;
 * '*' matches any run of bytes, a final '$' anchors at the end of @path.
 * Pattern and path are compared after percent-normalisation (hex digits in
 * upper case, unreserved characters decoded, other bytes outside printable
 * ASCII encoded), so "/a%7eb" and "/a~b" are the same. "/robots.txt" is
 * always allowed. Time is O(rules x pattern x path) in the worst case,
 * never exponential.
 * Return: true when allowed; false when refused, or when a path longer than
 * 1 KiB cannot be normalised for lack of memory.
 */
bool crawl_robots_allowed(const struct crawl_robots *r, const char *path);

/**
 * crawl_robots_delay_ms() - the Crawl-delay of the group(s) used.
 * Return: the delay in milliseconds (fractional seconds such as "0.5"
 * are honoured to the millisecond; the largest value of merged groups
 * wins), at most CRAWL_ROBOTS_MAX_DELAY_MS; 0 when absent or invalid.
 */
int64_t crawl_robots_delay_ms(const struct crawl_robots *r);

/* Frees @r; NULL is a no-op. */
void crawl_robots_free(struct crawl_robots *r);

#endif /* CRAWL_ROBOTS_H */
