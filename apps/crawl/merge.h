/* SPDX-License-Identifier: MIT */
/*
 * knit-crawl merge: the local databases of a distributed crawl's processes
 * combined into one.
 */
#ifndef CRAWL_MERGE_H
#define CRAWL_MERGE_H

#include <stddef.h>
#include <stdio.h>

/**
 * crawl_merge() - copy the pages of @in (n databases) into the new
 * database @out (call from a task; SQLite runs on the blocking pool).
 *
 * A URL stored by several processes (an entry reclaimed from a crawler
 * that had in fact stored it) is kept once: the first copy, unless it is
 * a failure and a later one is not. Prints the counts to @log.
 * Return: 0, or a negative errno with a message in @err.
 */
int crawl_merge(const char *out, char *const *in, int n, FILE *log, char *err,
                size_t errlen);

#endif
