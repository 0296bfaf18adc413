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

/* The defaults for tests: one worker, manual clock, seed from KNIT_SEED
 * (or 1), no stall monitor. */
void kt_config(knit_config *cfg);

/* Runs fn(arg) as main with kt_config(); returns its result. */
int kt_run(knit_fn fn, void *arg);

/* Same with an explicit configuration. */
int kt_run_cfg(const knit_config *cfg, knit_fn fn, void *arg);

#endif
