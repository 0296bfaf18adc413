/* SPDX-License-Identifier: MIT */
/*
 * knit-crawl's progress display: a live single line, redrawn in place, on
 * a terminal (mode 2); a plain line every few seconds otherwise (mode 1,
 * for logs and pipes); nothing in mode 0 (--quiet).
 */
#ifndef CRAWL_PROGRESS_H
#define CRAWL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct progress_sample {
    uint64_t done;      /* pages stored */
    uint64_t queued;    /* URLs waiting */
    uint64_t in_flight; /* fetches running */
    uint64_t errors;    /* permanent failures */
    uint64_t retries;
    uint64_t hosts;     /* hosts seen */
    uint64_t throttled; /* hosts waiting for their rate limit now */
};

struct progress;

/* A display writing to @out in @mode (0, 1, 2); NULL for mode 0. */
struct progress *progress_new(FILE *out, int mode);

/* How often progress_update wants to be called, in ms. */
int64_t progress_interval_ms(const struct progress *p);

/* Show @s (pages/s from the previous sample). @final ends a live line
 * with a newline. Rate-limits itself: call as often as you like. */
void progress_update(struct progress *p, const struct progress_sample *s,
                     bool final);

/* Frees @p; NULL is a no-op. */
void progress_free(struct progress *p);

#endif
