// SPDX-License-Identifier: MIT
/*
 * A worker's inbox: how code outside the worker (plain threads, the
 * blocking pool, other workers, knit_handle) gets something done on it.
 * A request is posted
 * from any thread and run by the worker in its loop, in worker context
 * (it may spawn tasks and touch the worker's primitives, not block).
 */
#ifndef KNIT_CORE_REMOTE_H
#define KNIT_CORE_REMOTE_H

#include <stdbool.h>

struct knit_worker;
struct knit_remote;

typedef void (*knit_remote_fn)(struct knit_remote *r);

/* A request; embed it in the poster's own record. */
struct knit_remote {
    struct knit_remote *next; /* in the inbox (written before the push) */
    knit_remote_fn fn;        /* run once on the worker */
};

/* Posts @r to @w and wakes it. Any thread. */
void knit__remote_post(struct knit_worker *w, struct knit_remote *r,
                       knit_remote_fn fn);

/* Runs every posted request, in posting order per poster; the worker
 * loop calls it. */
void knit__remote_drain(struct knit_worker *w);

/* Requests wait in @w's inbox (any thread; acquire). */
bool knit__remote_pending(struct knit_worker *w);

/* Waits until no poster is inside knit__remote_post on @w (teardown). */
void knit__remote_quiesce(struct knit_worker *w);

#endif
