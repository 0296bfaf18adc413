// SPDX-License-Identifier: MIT
/*
 * The blocking pools (pool.c): one per class of work, each with its own
 * thread cap, so that one class cannot starve another.
 */
#ifndef KNIT_BLOCKING_POOL_H
#define KNIT_BLOCKING_POOL_H

#include <pthread.h>
#include <stdbool.h>

#include "core/list.h"
#include "knit/common.h"

struct knit_rt;
struct knit_worker;

enum knit_pool_class {
    KNIT_POOL_USER, /* knit_spawn_blocking */
    KNIT_POOL_DNS,  /* knit_resolve */
    KNIT_POOL_FILE, /* file helpers */
    KNIT_POOL_CLASSES,
};

struct knit_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;    /* jobs arrived, or stop */
    pthread_cond_t gone;    /* a thread left */
    struct knit_list queue; /* queued job tasks (run_link), under lock */
    int nthreads;           /* threads alive */
    int nidle;              /* of those, waiting for a job */
    int max;                /* thread cap */
    bool stop;              /* runtime ending: idle threads leave */
    const char *name;       /* for thread names */
};

int knit__pools_init(struct knit_rt *rt);
/* Waits for every pool thread to leave (no job may be queued or running). */
void knit__pools_fini(struct knit_rt *rt);

/* Spawns fn(arg) as a blocking job of @cls on the current worker. */
struct knit_task *knit__spawn_blocking_in(enum knit_pool_class cls, knit_fn fn,
                                          void *arg);

/* Removes a job that no thread has taken yet; false when one has. */
bool knit__pool_unqueue(struct knit_task *t);

#endif
