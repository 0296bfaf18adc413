// SPDX-License-Identifier: MIT
/*
 * Test support: run a test body as the main task of a runtime on the
 * manual clock, then check that it left nothing behind (no task, timer or
 * stack but its own). Include after <cmocka.h>.
 *
 * cmocka's assertions may be used inside tasks: a failure longjmps back to
 * the test runner; kt_run then resets the thread so later tests still run.
 */
#ifndef KNIT_TESTS_KT_H
#define KNIT_TESTS_KT_H

#include <knit.h>

/* The defaults for tests: kt_workers() workers, manual clock, seed from
 * KNIT_SEED (or 1), no stall monitor. */
void kt_config(knit_config *cfg);

/* The workers tests run on: KNIT_TEST_WORKERS, or 1. A case that only
 * holds on one worker skips itself when this is more. */
int kt_workers(void);

/*
 * Yields until every other live task of the runtime waits in a blocking
 * call or has not been started (lazy): what "knit_yield() lets the others
 * run until they block" means on one worker, made to hold on several.
 * Fails the test after a bound of yields.
 */
void kt_settle(void);

/* Tasks not yet ended, every worker's (knit_stats counts this worker's). */
uint64_t kt_tasks_alive(void);

/* Runs fn(arg) as main with kt_config(); returns its result. */
int kt_run(knit_fn fn, void *arg);

/* Same with an explicit configuration. */
int kt_run_cfg(const knit_config *cfg, knit_fn fn, void *arg);

/*
 * Runs fn(arg) through kt_run_cfg (@cfg NULL: kt_config) in a forked
 * child with its stderr captured, for behaviour that aborts (panics,
 * overflow reports) or must not disturb the test process. Stores the
 * child's wait status in *@status and returns what it wrote to stderr
 * (a static buffer, overwritten by the next call). The child exits 0 when
 * fn returned 0, 3 otherwise.
 */
const char *kt_run_child(const knit_config *cfg, knit_fn fn, void *arg,
                         int *status);

/*
 * Runs child(arg) in a forked child with its stderr captured; child must
 * end the process (_exit). Stores the wait status in *@status and returns
 * what the child wrote to stderr (a static buffer, overwritten by the
 * next call).
 */
const char *kt_fork_capture(void (*child)(void *), void *arg, int *status);

/* Whether a runtime starts on io_uring here (asked once; the first "no"
 * prints that io_uring runs are skipped). For suites run on both
 * backends. */
bool kt_uring_works(void);

/* Runs @fn(@arg) through kt_run_cfg on epoll, then on io_uring where it
 * works, whatever KNIT_IO says; fails the test if a run does not return
 * 0. kt_both_io() is the backend asked for in the run under way
 * (KNIT_IO_EPOLL or KNIT_IO_URING), KNIT_IO_AUTO outside one. */
void kt_run_both(knit_fn fn, void *arg);
int kt_both_io(void);

/* Fails the test, showing @hay, unless @needle occurs in it. */
void kt_expect_in(const char *hay, const char *needle);

#endif
