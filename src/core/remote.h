// SPDX-License-Identifier: MIT
/*
 * A worker's inbox: how code outside the worker (plain threads today,
 * other workers later) gets something done on it. A request is posted
 * from any thread and run by the worker in its loop, in worker context
 * (it may spawn tasks and touch the worker's primitives, not block).
 */
#ifndef KNIT_CORE_REMOTE_H
#define KNIT_CORE_REMOTE_H

struct knit_worker;
struct knit_remote;

typedef void (*knit_remote_fn)(struct knit_remote *r);

/* A request; embed it in the poster's own record. */
struct knit_remote {
    struct knit_remote *next; /* in the inbox; owned by the inbox lock */
    knit_remote_fn fn;        /* run once on the worker */
};

/* Posts @r to @w and wakes it. Any thread. */
void knit__remote_post(struct knit_worker *w, struct knit_remote *r,
                       knit_remote_fn fn);

/* Runs every posted request; the worker loop calls it. */
void knit__remote_drain(struct knit_worker *w);

#endif
